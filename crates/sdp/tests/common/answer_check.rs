//! The answerer's round-trip check, shared by the `sdp` fuzz target and the replay of what it
//! found (`tests/fuzz_regressions.rs`): include with
//! `#[path = ".../crates/sdp/tests/common/answer_check.rs"] mod answer_check;`.

use sotto_sdp::{
    EncryptionMode, EncryptionPolicy, LocalCapabilities, Session, answer, process_answer,
};

/// A key source with no security at all: the check needs determinism, not secrecy.
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

/// Answers `offer` under each encryption policy: every answer must serialize to a description
/// that parses, and one that `process_answer` accepts back must carry the keys `answer` gave
/// (mirrored). Returns how many answers were accepted back.
pub(crate) fn check_answers(offer: &Session) -> usize {
    let caps = LocalCapabilities::new("127.0.0.1", 7200);
    let rng = CountingRng(core::sync::atomic::AtomicU8::new(0));
    let mut accepted = 0;
    for (mode, best_effort_sdes) in [
        (EncryptionMode::Mandatory, false),
        (EncryptionMode::Optional, true),
        (EncryptionMode::None, false),
    ] {
        let policy = EncryptionPolicy {
            mode,
            best_effort_sdes,
        };
        let Ok((ans, _, keys)) = answer(offer, &caps, &policy, &rng) else {
            continue;
        };
        let Ok(text) = ans.to_sdp() else { continue };
        // invariant: our answer always serializes to a parseable description.
        let ans = Session::parse(text.as_bytes()).expect("answer parses");
        if let Ok((_, back)) = process_answer(offer, &ans, &policy) {
            accepted += 1;
            assert_eq!(back.is_some(), keys.is_some(), "{mode:?}: keys");
            if let (Some(a), Some(b)) = (&back, &keys) {
                assert_eq!(a.remote, vec![b.local.clone()], "{mode:?}: mirrored keys");
            }
        }
    }
    accepted
}
