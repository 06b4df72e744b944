//! SIP transactions (RFC 3261 §17), sans-IO.
