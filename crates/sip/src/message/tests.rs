//! Unit tests of the message model: construction, edits and serialization.

use super::*;
use crate::parse::{Limits, parse_message};

const INVITE: &[u8] = b"INVITE sip:bob@example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK776asdhds;rport\r\n\
v: SIP/2.0/TCP 127.0.0.1:5070;branch=z9hG4bKnext\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@example.com>\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=1928301774\r\n\
i: a84b4c76e66710@127.0.0.1\r\n\
CSeq: 314159 INVITE\r\n\
m: <sip:alice@127.0.0.1>;expires=60;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000A95A0E128>\"\r\nContact: *\r\n\
X-Custom:   kept ;; as is\r\n\
Content-Type: application/sdp\r\n\
l: 5\r\n\r\nv=0\r\n";

fn parse(b: &[u8]) -> Message {
    parse_message(Bytes::copy_from_slice(b), &Limits::default()).unwrap()
}

#[test]
fn typed_access() {
    let m = parse(INVITE);
    let Message::Request(r) = &m else {
        panic!("not a request")
    };
    assert_eq!(r.method(), &Method::Invite);
    assert_eq!(r.uri().user(), Some("bob"));
    let v = m.via_top().unwrap();
    assert_eq!(v.branch.as_deref(), Some("z9hG4bK776asdhds"));
    assert_eq!(v.rport, Some(None));
    assert_eq!(v.port, Some(5060));
    assert_eq!(m.vias().unwrap().len(), 2);
    assert_eq!(
        m.cseq().unwrap(),
        CSeq {
            seq: 314159,
            method: Method::Invite
        }
    );
    assert_eq!(m.call_id().unwrap(), "a84b4c76e66710@127.0.0.1");
    assert_eq!(m.from_tag().unwrap(), Some("1928301774"));
    assert_eq!(m.to_tag().unwrap(), None);
    assert_eq!(m.max_forwards().unwrap(), Some(70));
    assert_eq!(m.content_length().unwrap(), Some(5));
    let c = m.contacts().unwrap();
    assert_eq!(c.len(), 2);
    let a = c[0].addr().unwrap();
    assert_eq!(a.expires(), Some(60));
    assert_eq!(
        a.sip_instance().as_deref(),
        Some("<urn:uuid:00000000-0000-1000-8000-000A95A0E128>")
    );
    assert!(c[1].is_wildcard());
    assert_eq!(m.headers().get("x-custom"), Some("kept ;; as is"));
    assert_eq!(m.body().as_ref(), b"v=0\r\n");
    assert_eq!(m.to_bytes().as_ref(), INVITE);
}

#[test]
fn proxy_edits_keep_framing() {
    let Message::Request(mut r) = parse(INVITE) else {
        panic!("not a request")
    };
    let mf = r.max_forwards().unwrap().unwrap();
    r.headers_mut().set("Max-Forwards", (mf - 1).to_string());
    r.headers_mut()
        .insert_first("Via", "SIP/2.0/UDP 127.0.0.1:5080;branch=z9hG4bKproxy");
    r.headers_mut()
        .insert_first("Record-Route", "<sip:127.0.0.1:5080;lr>");
    let out = r.to_bytes();
    let again = parse(&out);
    assert_eq!(again.max_forwards().unwrap(), Some(69));
    assert_eq!(again.via_top().unwrap().host, "127.0.0.1");
    assert_eq!(again.via_top().unwrap().port, Some(5080));
    assert_eq!(again.vias().unwrap().len(), 3);
    assert_eq!(
        again.record_routes().unwrap()[0].uri.as_str(),
        "sip:127.0.0.1:5080;lr"
    );
    assert_eq!(again.headers().get("X-Custom"), Some("kept ;; as is"));
    assert_eq!(again.body().as_ref(), b"v=0\r\n");
    // unknown header line copied byte for byte
    assert!(
        out.windows(27)
            .any(|w| w == b"X-Custom:   kept ;; as is\r\n")
    );

    r.set_body(Bytes::from_static(b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\n"));
    let again = parse(&r.to_bytes());
    assert_eq!(again.content_length().unwrap(), Some(31));
    assert_eq!(again.headers().count("Content-Length"), 1);
    assert_eq!(again.body().len(), 31);
}

#[test]
fn response_from_request() {
    let Message::Request(r) = parse(INVITE) else {
        panic!("not a request")
    };
    let mut resp = Response::from_request(&r, StatusCode::RINGING);
    assert!(resp.set_to_tag("as83kd9bs"));
    assert!(!resp.set_to_tag("again"));
    let bytes = resp.to_bytes();
    assert!(bytes.starts_with(b"SIP/2.0 180 Ringing\r\n"));
    let Message::Response(p) = parse(&bytes) else {
        panic!("not a response")
    };
    assert_eq!(p.status(), StatusCode::RINGING);
    assert!(p.status().is_provisional() && !p.status().is_final());
    assert_eq!(p.vias().unwrap(), r.vias().unwrap());
    assert_eq!(p.call_id().unwrap(), r.call_id().unwrap());
    assert_eq!(p.cseq().unwrap(), r.cseq().unwrap());
    assert_eq!(p.from_tag().unwrap(), Some("1928301774"));
    assert_eq!(p.to_tag().unwrap(), Some("as83kd9bs"));
    assert_eq!(p.content_length().unwrap(), Some(0));
    assert!(p.contacts().unwrap().is_empty());
}

#[test]
fn build_request() {
    let mut r = Request::new(Method::Register, "sip:example.com".parse().unwrap());
    let via = Via::new("UDP", "127.0.0.1", Some(5062), "z9hG4bKreg1").with_rport();
    r.headers_mut().push("Via", via.to_string());
    r.headers_mut().push("From", "<sip:a@example.com>;tag=x");
    r.headers_mut().push("To", "<sip:a@example.com>");
    r.headers_mut().push("Call-ID", "reg1");
    r.headers_mut().push(
        "CSeq",
        CSeq {
            seq: 1,
            method: Method::Register,
        }
        .to_string(),
    );
    let bytes = r.to_bytes();
    assert!(bytes.starts_with(b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bKreg1;rport\r\n"));
    assert!(bytes.ends_with(b"Content-Length: 0\r\n\r\n"));
    let m = parse(&bytes);
    assert_eq!(m.via_top().unwrap(), via);
    assert_eq!(
        "FOO".parse::<Method>().unwrap(),
        Method::Extension("FOO".into())
    );
    assert!("FO O".parse::<Method>().is_err());
    assert_eq!(StatusCode(404).reason_phrase(), "Not Found");
    assert_eq!(StatusCode(499).reason_phrase(), "Request Failure");
}
