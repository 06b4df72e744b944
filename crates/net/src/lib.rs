//! # sotto-net: transports at the edge
//!
//! SIP over UDP, TCP and TLS (rustls) on tokio, with stream framing, connection reuse and
//! CRLF keep-alive. Protocol decisions stay in the sans-IO cores.

#![forbid(unsafe_code)]
