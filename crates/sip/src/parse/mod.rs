//! SIP parser and serializer: framing and syntax (RFC 3261 §7, §25).
