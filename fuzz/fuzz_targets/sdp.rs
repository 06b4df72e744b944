//! Fuzz target: the SDP parser, serializer, typed attributes and the answerer.
//!
//! Beyond "no panic on any input": whatever parses and serializes must parse back to the same
//! model; every attribute is decoded through each typed decoder; and the description is
//! answered as an offer (under each encryption policy) with a deterministic key source, and
//! an accepted answer must be accepted back by `process_answer` with mirrored keys.

#![no_main]

#[path = "../../crates/sdp/tests/common/answer_check.rs"]
mod answer_check;

use libfuzzer_sys::fuzz_target;
use sotto_sdp::{Crypto, Fingerprint, Rtcp, Rtpmap, Session, Setup, ZrtpHash, sdes_present};

fuzz_target!(|data: &[u8]| {
    let _ = sdes_present(data);
    let Ok(s) = Session::parse(data) else {
        return;
    };
    if let Ok(text) = s.to_sdp() {
        // invariant: our own output always parses, to the same model.
        let back = Session::parse(text.as_bytes()).expect("serialized SDP parses");
        assert_eq!(back, s);
    }
    for a in s
        .attributes
        .iter()
        .chain(s.media.iter().flat_map(|m| m.attributes.iter()))
    {
        if let Ok(c) = Crypto::from_attribute(a) {
            let _ = c.check_supported();
            // invariant: a decoded crypto value re-encodes to something that decodes equal.
            assert_eq!(Crypto::parse(&c.to_value()).expect("re-encoded crypto"), c);
        }
        let _ = Rtpmap::from_attribute(a);
        let _ = ZrtpHash::from_attribute(a);
        let _ = Fingerprint::from_attribute(a);
        let _ = Setup::from_attribute(a);
        let _ = Rtcp::from_attribute(a);
    }
    answer_check::check_answers(&s);
});
