//! Fuzz target: the SDP parser, serializer, typed attributes and the answerer.
//!
//! Beyond "no panic on any input": whatever parses and serializes must parse back to the same
//! model; every attribute is decoded through each typed decoder; and the description is
//! answered as an offer (under each encryption policy) with a deterministic key source, and
//! an accepted answer must be accepted back by `process_answer` with mirrored keys.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_sdp::{
    Crypto, EncryptionMode, EncryptionPolicy, Fingerprint, LocalCapabilities, Rtcp, Rtpmap,
    Session, Setup, ZrtpHash, answer, process_answer, sdes_present,
};

/// A key source with no security at all: fuzzing needs determinism, not secrecy.
#[derive(Debug)]
struct CountingRng(core::sync::atomic::AtomicU8);

impl sotto_crypto::rng::SecureRandom for CountingRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), sotto_crypto::Error> {
        for b in dest {
            *b = self.0.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }
}

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
    let caps = LocalCapabilities::new("127.0.0.1", 7200);
    let rng = CountingRng(core::sync::atomic::AtomicU8::new(0));
    for (mode, best_effort_sdes) in [
        (EncryptionMode::Mandatory, false),
        (EncryptionMode::Optional, true),
        (EncryptionMode::None, false),
    ] {
        let policy = EncryptionPolicy {
            mode,
            best_effort_sdes,
        };
        if let Ok((ans, _, keys)) = answer(&s, &caps, &policy, &rng) {
            let Ok(text) = ans.to_sdp() else { continue };
            // invariant: our answer always serializes to a parseable description.
            let ans = Session::parse(text.as_bytes()).expect("answer parses");
            if let Ok((_, back)) = process_answer(&s, &ans, &policy) {
                assert_eq!(back.is_some(), keys.is_some());
                if let (Some(a), Some(b)) = (&back, &keys) {
                    assert_eq!(a.remote, vec![b.local.clone()]);
                }
            }
        }
    }
});
