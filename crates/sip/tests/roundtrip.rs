//! Property tests: serialize ∘ parse round trips (RFC 3261 §7 message syntax).
//!
//! - generated wire messages (any header names incl. compact forms, folded values, arbitrary
//!   bodies) parse, keep every field in order, and serialize back byte for byte;
//! - edited messages serialize to bytes that parse to the same fields and body, with one
//!   correct Content-Length;
//! - built messages (`Request::new` + typed values) survive print → parse → print;
//! - typed values (Via, CSeq, name-addr) survive Display → parse.

use bytes::Bytes;
use proptest::prelude::*;
use sotto_sip::message::{CSeq, HeaderName, Message, Method, NameAddr, Param, Request, Uri, Via};
use sotto_sip::parse::{Frame, Limits, frame_stream, parse_message};

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Via",
            "v",
            "To",
            "t",
            "Subject",
            "s",
            "X-Custom",
            "Supported",
            "k",
            "User-Agent",
            "i",
            "Call-ID"
        ])
        .prop_map(str::to_owned),
        "[A-Za-z][A-Za-z0-9.!%*_+`'~-]{0,15}",
    ]
    .prop_filter("Content-Length is framing", |n| {
        HeaderName::new(n) != HeaderName::CONTENT_LENGTH
    })
}

/// A header value without CR/LF, starting and ending with a visible character (or empty).
fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[!-~]([ -~]{0,60}[!-~])?",
        "[a-z]{1,8}( [a-zé\u{4e2d}]{1,8}){0,4}",
    ]
}

/// Optionally fold a value at its spaces (`SP` becomes `CRLF SP`).
fn fold(v: &str, mask: u64) -> String {
    let mut out = String::new();
    for (i, part) in v.split(' ').enumerate() {
        if i > 0 {
            if mask >> (i % 64) & 1 == 1 {
                out.push_str("\r\n ");
            } else {
                out.push(' ');
            }
        }
        out.push_str(part);
    }
    out
}

fn method() -> impl Strategy<Value = Method> {
    prop_oneof![
        prop::sample::select(vec![
            Method::Invite,
            Method::Ack,
            Method::Bye,
            Method::Register,
            Method::Options,
            Method::Message
        ]),
        "[A-Z][A-Za-z0-9.!%*_+`'~-]{0,10}".prop_map(|s| s.parse::<Method>().unwrap()),
    ]
}

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
        (0u8..=255, 0u8..=255).prop_map(|(a, b)| format!("127.{a}.{b}.1")),
        Just("[::1]".to_owned()),
    ]
}

fn uri() -> impl Strategy<Value = Uri> {
    (
        prop::bool::ANY,
        prop::option::of("[a-zA-Z0-9_.!~*'()&=+$,;?/-]{1,12}|%[0-9A-F]{2}"),
        host(),
        prop::option::of(1u16..),
        prop::collection::vec(("[a-z]{1,6}", prop::option::of("[a-z0-9]{1,6}")), 0..3),
    )
        .prop_map(|(sips, user, host, port, params)| {
            let mut s = if sips {
                "sips:".to_owned()
            } else {
                "sip:".to_owned()
            };
            if let Some(u) = user {
                s.push_str(&u);
                s.push('@');
            }
            s.push_str(&host);
            if let Some(p) = port {
                s.push_str(&format!(":{p}"));
            }
            for (k, v) in params {
                s.push(';');
                s.push_str(&k);
                if let Some(v) = v {
                    s.push('=');
                    s.push_str(&v);
                }
            }
            Uri::parse(&s).unwrap_or_else(|e| panic!("{s}: {e}"))
        })
}

#[derive(Debug, Clone)]
struct Wire {
    bytes: Vec<u8>,
    fields: Vec<(String, String)>,
    body: Vec<u8>,
}

fn wire_request() -> impl Strategy<Value = Wire> {
    (
        method(),
        uri(),
        prop::collection::vec((header_name(), header_value(), any::<u64>()), 0..20),
        prop::collection::vec(any::<u8>(), 0..300),
        prop::bool::ANY,
        prop::sample::select(vec![":", ": ", " : ", ":\t", ":   "]),
    )
        .prop_map(|(m, u, hs, body, with_cl, sep)| {
            let mut bytes = format!("{m} {u} SIP/2.0\r\n").into_bytes();
            let mut fields = Vec::new();
            for (n, v, mask) in hs {
                let folded = fold(&v, mask);
                bytes.extend_from_slice(format!("{n}{sep}{folded}\r\n").as_bytes());
                fields.push((n, folded));
            }
            if with_cl {
                bytes.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
                fields.push(("Content-Length".to_owned(), body.len().to_string()));
            }
            bytes.extend_from_slice(b"\r\n");
            bytes.extend_from_slice(&body);
            Wire {
                bytes,
                fields,
                body,
            }
        })
}

fn fields(m: &Message, skip_cl: bool) -> Vec<(HeaderName, String)> {
    m.headers()
        .iter_named()
        .filter(|(n, _)| !skip_cl || *n != HeaderName::CONTENT_LENGTH)
        .map(|(n, v)| (n, v.to_owned()))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn parse_then_serialize_is_identity(w in wire_request()) {
        let m = parse_message(Bytes::from(w.bytes.clone()), &Limits::default()).unwrap();
        let got: Vec<(String, String)> = m.headers().iter().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
        prop_assert_eq!(got, w.fields.clone());
        prop_assert_eq!(m.body().as_ref(), &w.body[..]);
        let out = m.to_bytes();
        prop_assert_eq!(out.as_ref(), &w.bytes[..]);
        // and with Content-Length the same bytes frame as one stream message
        if w.fields.iter().any(|(n, _)| n == "Content-Length") {
            prop_assert_eq!(frame_stream(&w.bytes, &Limits::default()).unwrap(), Frame::Message { len: w.bytes.len() });
        }
    }

    #[test]
    fn edited_messages_reparse(w in wire_request(), extra in header_value(), new_body in prop::collection::vec(any::<u8>(), 0..100)) {
        let mut m = parse_message(Bytes::from(w.bytes), &Limits::default()).unwrap();
        m.headers_mut().insert_first("Via", "SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKprop");
        m.headers_mut().push("X-Added", extra.clone());
        m.set_body(new_body.clone());
        let out = m.to_bytes();
        let again = parse_message(out.clone(), &Limits::default()).unwrap();
        prop_assert_eq!(fields(&again, true), fields(&m, true));
        prop_assert_eq!(again.body().as_ref(), &new_body[..]);
        prop_assert_eq!(again.content_length().unwrap(), Some(new_body.len()));
        prop_assert_eq!(again.headers().count("Content-Length"), 1);
        // serializing the re-parsed (unmodified) message gives the same bytes
        prop_assert_eq!(again.to_bytes(), out);
    }

    #[test]
    fn built_requests_roundtrip(
        m in method(), u in uri(), h in host(), port in prop::option::of(1u16..),
        branch in "[A-Za-z0-9.-]{1,16}", seq in any::<u32>(), tag in "[A-Za-z0-9]{1,10}",
        display in prop::option::of("[ -~]{0,20}"), body in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut r = Request::new(m.clone(), u.clone());
        let via = Via::new("UDP", &h, port, &format!("z9hG4bK{branch}")).with_rport();
        let from = NameAddr { display_name: display.clone(), uri: u.clone(), params: vec![Param::new("tag", Some(tag.clone()))] };
        r.headers_mut().push("Via", via.to_string());
        r.headers_mut().push("From", from.to_string());
        r.headers_mut().push("To", NameAddr::new(u.clone()).to_string());
        r.headers_mut().push("Call-ID", format!("{seq}@{h}"));
        r.headers_mut().push("CSeq", CSeq { seq, method: m.clone() }.to_string());
        r.set_body(body.clone());
        let p = parse_message(r.to_bytes(), &Limits::default()).unwrap();
        let Message::Request(p) = p else { panic!("request expected") };
        prop_assert_eq!(p.method(), &m);
        prop_assert_eq!(p.uri(), &u);
        prop_assert_eq!(p.via_top().unwrap(), via);
        prop_assert_eq!(p.from().unwrap(), from);
        prop_assert_eq!(p.from_tag().unwrap(), Some(tag.as_str()));
        prop_assert_eq!(p.cseq().unwrap(), CSeq { seq, method: m });
        prop_assert_eq!(p.body().as_ref(), &body[..]);
        prop_assert_eq!(p.to_bytes(), r.to_bytes());
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_message(Bytes::from(data.clone()), &Limits::default());
        let _ = frame_stream(&data, &Limits::default());
    }
}
