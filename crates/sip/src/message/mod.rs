//! SIP message model (RFC 3261 §7, §20, §25).
