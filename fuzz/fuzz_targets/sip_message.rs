//! Fuzz target: the SIP parser, framing, typed accessors, validation and serialization.
//!
//! Properties checked on every input (beyond "no panic, no unbounded allocation"):
//! - an unmodified parsed message serializes to exactly the bytes it was parsed from;
//! - a modified message (Via prepended, Max-Forwards set, header removed) serializes to bytes
//!   that parse again, with the same body and the edits visible;
//! - stream framing never reports a message longer than the buffer.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use sotto_sip::message::Message;
use sotto_sip::parse::{Frame, Limits, frame_stream, parse_message};
use sotto_sip::validate::{Policy, Role, validate};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    if let Ok(Frame::Message { len } | Frame::KeepAlive { len }) = frame_stream(data, &limits) {
        assert!(len <= data.len());
    }
    let Ok(msg) = parse_message(Bytes::copy_from_slice(data), &limits) else {
        return;
    };
    let raw = msg.to_bytes();
    let mut start = 0;
    while data.get(start..start + 2) == Some(b"\r\n") {
        start += 2;
    }
    assert_eq!(data.get(start..start + raw.len()), Some(&raw[..]));

    // typed accessors and validation must not panic
    let _ = msg.via_top();
    let _ = msg.vias();
    let _ = msg.cseq();
    let _ = msg.call_id();
    let _ = msg.from_tag();
    let _ = msg.to_tag();
    let _ = msg.max_forwards();
    let _ = msg.contacts();
    let _ = msg.routes();
    let _ = msg.record_routes();
    let _ = msg.content_length();
    for role in [Role::Proxy, Role::Uas, Role::Registrar] {
        let _ = validate(&msg, &Policy::for_role(role));
    }
    if let Message::Request(r) = &msg {
        let _ = r.uri().equivalent(r.uri());
    }

    // a proxy-style edit must re-serialize to something that parses back
    let mut edited = msg.clone();
    let before = edited.headers().len();
    edited
        .headers_mut()
        .insert_first("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfuzz");
    edited.headers_mut().set("Max-Forwards", "69");
    let out = edited.to_bytes();
    let again = parse_message(out.clone(), &limits.clone_with_room())
        .unwrap_or_else(|e| panic!("re-parse failed: {e}\n{:?}", String::from_utf8_lossy(&out)));
    assert_eq!(again.body(), msg.body());
    assert_eq!(
        again.headers().get("Via"),
        Some("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKfuzz")
    );
    assert_eq!(again.headers().get("Max-Forwards"), Some("69"));
    assert!(again.headers().len() <= before + 3);
});

trait Room {
    fn clone_with_room(&self) -> Limits;
}

impl Room for Limits {
    /// The edit adds a few hundred bytes and two fields: give the re-parse that much room.
    fn clone_with_room(&self) -> Limits {
        Limits {
            max_message_bytes: self.max_message_bytes + 512,
            max_headers: self.max_headers + 3,
            max_line_bytes: self.max_line_bytes,
        }
    }
}
