//! Cheap checks on an SDP body that do not need a full parse (for proxies).
//!
//! A proxy (issue 4) must refuse SDES keys over a hop that is not TLS. [`sdes_present`]
//! answers whether a body carries an `a=crypto` line, even when the rest of the description
//! is malformed or the body is a multipart MIME body containing SDP: it looks for a line
//! starting with `a=crypto:` (ASCII case-insensitive), allowing CRLF or LF line ends.

/// Whether `body` contains an `a=crypto:` line (RFC 4568 SDES keys).
pub fn sdes_present(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_prefix(b" ").unwrap_or(line);
        line.get(..9)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"a=crypto:"))
    })
}

#[cfg(test)]
mod tests {
    use super::sdes_present;

    #[test]
    fn finds_crypto_lines_with_any_line_ending() {
        assert!(sdes_present(
            b"v=0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n"
        ));
        assert!(sdes_present(b"a=CRYPTO:1 X inline:x"));
        assert!(sdes_present(b"v=0\nm=audio 1 RTP/SAVP 0\na=crypto:1 x\n"));
        assert!(!sdes_present(b"v=0\r\na=cryptox:1\r\n"));
        assert!(!sdes_present(b"v=0\r\ns=a=crypto:1\r\n"));
        assert!(!sdes_present(b""));
        assert!(!sdes_present(b"a=crypto"));
    }
}
