//! An answer to a request the parser refused (RFC 4475 §3.1.2: a broken start line, an
//! unquoted display name...): when the headers a response needs can still be read (Via,
//! From, To, Call-ID, CSeq), the sender gets `400 Bad Request` (or `505` for another SIP
//! version) with a Warning saying what was wrong, instead of silence. Responses, ACKs and
//! anything whose headers cannot be read get nothing, as before.

use bytes::Bytes;
use std::net::IpAddr;

/// Most Via values an answer copies: far above any real path (Max-Forwards starts at 70), far
/// below the 256 header fields a message may carry. A request with more gets no answer: ours
/// could not be read back.
const MAX_VIAS: usize = 100;
/// Longest field value copied: with its name and our tag the line stays well within the
/// parser's 8 KB line bound. A longer one counts as unreadable.
const MAX_VALUE_BYTES: usize = 4096;
/// Largest answer: half the parser's 64 KB message bound. A request whose fields would make a
/// larger one gets no answer.
const MAX_ANSWER_BYTES: usize = 32 * 1024;

/// The header fields a response copies, read leniently (folded lines joined, compact
/// forms known, names case-insensitive).
#[derive(Default)]
struct Salvaged {
    vias: Vec<String>,
    from: Option<String>,
    to: Option<String>,
    call_id: Option<String>,
    cseq: Option<String>,
}

fn header_lines(head: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for raw in head.split('\n').skip(1) {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.starts_with([' ', '\t']) {
            if let Some(last) = lines.last_mut() {
                last.push(' ');
                last.push_str(line.trim());
            }
        } else if !line.is_empty() {
            lines.push(line.to_owned());
        }
    }
    lines
}

fn salvage(head: &str) -> Salvaged {
    let mut s = Salvaged::default();
    for line in header_lines(head) {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().to_owned();
        if value.len() > MAX_VALUE_BYTES || value.contains(|c: char| c.is_control() && c != '\t') {
            // A bare CR, a NUL...: copied into the answer it would make that malformed too
            // (and would let the sender inject a line), so the field counts as unreadable; so
            // does one too long for the answer's line to be read back.
            continue;
        }
        match name.trim().to_ascii_lowercase().as_str() {
            "via" | "v" => s.vias.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
            ),
            "from" | "f" => s.from = Some(value),
            "to" | "t" => s.to = Some(value),
            "call-id" | "i" => s.call_id = Some(value),
            "cseq" => s.cseq = Some(value),
            _ => {}
        }
    }
    s
}

/// The response to an unparsable `data` from `source`, if one can be built; `reason` goes
/// into the Warning.
pub(super) fn bad_request(data: &[u8], source: IpAddr, reason: &str) -> Option<Bytes> {
    let text = std::str::from_utf8(data).ok()?;
    // Without an empty line (a datagram cut short, as RFC 4475's `baddn`), all of it is head.
    let end = text
        .find("\r\n\r\n")
        .or_else(|| text.find("\n\n"))
        .unwrap_or(text.len());
    let head = &text[..end];
    let start = head.lines().next()?.trim();
    if start.starts_with("SIP/") {
        return None; // a response: never answered
    }
    let version = start.rsplit(' ').next().unwrap_or_default();
    let s = salvage(head);
    let (from, to, call_id, cseq) = (s.from?, s.to?, s.call_id?, s.cseq?);
    let top_via = s.vias.first()?;
    if s.vias.len() > MAX_VIAS {
        return None;
    }
    if cseq
        .split_whitespace()
        .nth(1)
        .is_none_or(|m| m.eq_ignore_ascii_case("ACK"))
    {
        return None;
    }
    let status = if version.starts_with("SIP/") && !version.eq_ignore_ascii_case("SIP/2.0") {
        "505 Version Not Supported"
    } else {
        "400 Bad Request"
    };
    let mut out = format!("SIP/2.0 {status}\r\n");
    // RFC 3261 §18.2.1: the top Via gets received= with the address the request came from.
    out.push_str(&format!("Via: {top_via};received={source}\r\n"));
    for v in &s.vias[1..] {
        out.push_str(&format!("Via: {v}\r\n"));
    }
    out.push_str(&format!("From: {from}\r\n"));
    if to.contains(";tag=") {
        out.push_str(&format!("To: {to}\r\n"));
    } else {
        out.push_str(&format!("To: {to};tag=bad-request\r\n"));
    }
    out.push_str(&format!("Call-ID: {call_id}\r\nCSeq: {cseq}\r\n"));
    let reason: String = reason
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .take(200)
        .collect();
    out.push_str(&format!(
        "Warning: 399 sotto \"malformed request: {reason}\"\r\nContent-Length: 0\r\n\r\n"
    ));
    (out.len() <= MAX_ANSWER_BYTES).then(|| Bytes::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 9));

    #[test]
    fn a_broken_start_line_gets_400_with_the_dialog_headers() {
        let req = "INVITE <sip:user@example.com> SIP/2.0\r\nTo: sip:user@example.com\r\n\
                   From: sip:caller@example.net;tag=39291\r\nCall-ID: x@y\r\nCSeq: 1 INVITE\r\n\
                   Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bK1, SIP/2.0/UDP 192.0.2.6\r\n\r\n";
        let r = bad_request(req.as_bytes(), SRC, "bad \"uri\"").unwrap();
        let r = std::str::from_utf8(&r).unwrap();
        assert!(r.starts_with("SIP/2.0 400 Bad Request\r\n"), "{r}");
        assert!(r.contains("Via: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bK1;received=192.0.2.9\r\n"));
        assert!(r.contains("Via: SIP/2.0/UDP 192.0.2.6\r\n"));
        assert!(r.contains("To: sip:user@example.com;tag=bad-request\r\n"));
        assert!(r.contains("CSeq: 1 INVITE\r\n") && r.contains("Call-ID: x@y\r\n"));
        assert!(
            r.contains("Warning: 399 sotto \"malformed request: bad uri\""),
            "{r}"
        );
    }

    #[test]
    fn responses_acks_and_unreadable_headers_get_nothing() {
        let resp =
            "SIP/2.0 200 OK\r\nVia: a\r\nFrom: b\r\nTo: c\r\nCall-ID: d\r\nCSeq: 1 INVITE\r\n\r\n";
        assert!(bad_request(resp.as_bytes(), SRC, "x").is_none());
        let ack =
            "ACK sip:a SIP/2.0\r\nVia: a\r\nFrom: b\r\nTo: c\r\nCall-ID: d\r\nCSeq: 1 ACK\r\n\r\n";
        assert!(bad_request(ack.as_bytes(), SRC, "x").is_none());
        let no_via =
            "OPTIONS sip:a SIP/2.0\r\nFrom: b\r\nTo: c\r\nCall-ID: d\r\nCSeq: 1 OPTIONS\r\n\r\n";
        assert!(bad_request(no_via.as_bytes(), SRC, "x").is_none());
        assert!(bad_request(b"\xff\xfe garbage", SRC, "x").is_none());
    }

    #[test]
    fn a_control_character_in_a_copied_field_is_never_echoed() {
        // Found by the proxy_packet fuzz target: a bare CR in To came back in the 400.
        let req = "BYE sip:b@h SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.5;branch=z9hG4bK1\r\n\
                   From: <sip:a@h>;tag=1\r\nTo: <sip:b@h\r.x>\r\nCall-ID: d\r\nCSeq: 1 BYE\r\n\r\n";
        assert!(bad_request(req.as_bytes(), SRC, "bare CR").is_none());
        let nul = req
            .replace("Call-ID: d", "Call-ID: d\0e")
            .replace("\r.x", ".x");
        assert!(bad_request(nul.as_bytes(), SRC, "NUL").is_none());
        let fine = req.replace("\r.x", ".x");
        assert!(bad_request(fine.as_bytes(), SRC, "x").is_some());
    }

    #[test]
    fn empty_via_values_are_skipped_and_too_many_vias_get_nothing() {
        // Found by the proxy_packet fuzz target: commas made hundreds of empty Via lines, an
        // answer with more header fields than a message may have.
        let req = |vias: &str| {
            format!(
                "OPTIONS <sip:a> SIP/2.0\r\nVia: {vias}\r\nFrom: <sip:b>;tag=1\r\nTo: <sip:a>\r\n\
                 Call-ID: d\r\nCSeq: 1 OPTIONS\r\n\r\n"
            )
        };
        let r = bad_request(
            req("SIP/2.0/UDP h;branch=z9hG4bK1,, ,SIP/2.0/UDP g").as_bytes(),
            SRC,
            "x",
        )
        .unwrap();
        let r = std::str::from_utf8(&r).unwrap();
        assert_eq!(r.matches("Via: ").count(), 2, "{r}");
        assert!(r.contains("Via: SIP/2.0/UDP g\r\n"), "{r}");
        let many = vec!["SIP/2.0/UDP h"; MAX_VIAS + 1].join(",");
        assert!(bad_request(req(&many).as_bytes(), SRC, "x").is_none());
        let enough = vec!["SIP/2.0/UDP h"; MAX_VIAS].join(",");
        assert!(bad_request(req(&enough).as_bytes(), SRC, "x").is_some());
        // Long fields: one past the value bound is unreadable, many within it too large.
        let long = format!("SIP/2.0/UDP {}", "h".repeat(MAX_VALUE_BYTES));
        assert!(bad_request(req(&long).as_bytes(), SRC, "x").is_none());
        let big = format!("SIP/2.0/UDP {}", "h".repeat(MAX_VALUE_BYTES - 20));
        let bulky = [big.as_str(); 10].join("\r\nVia: ");
        assert!(bad_request(req(&bulky).as_bytes(), SRC, "x").is_none());
    }

    #[test]
    fn another_version_gets_505() {
        let req = "OPTIONS sip:a SIP/7.0\r\nv: SIP/7.0/UDP h\r\nf: b;tag=1\r\nt: c\r\ni: d\r\nCSeq: 1 OPTIONS\r\n\r\n";
        let r = bad_request(req.as_bytes(), SRC, "x").unwrap();
        assert!(r.starts_with(b"SIP/2.0 505 "));
    }
}
