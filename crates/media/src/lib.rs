//! # sotto-media: the sans-IO media core
//!
//! RTP/RTCP packets, SRTP/SRTCP protection (RFC 3711, RFC 6188, RFC 7714) over the
//! [`sotto_crypto`] API, and the packet-modifier hook through which an application can
//! observe or transform packets.

#![forbid(unsafe_code)]
