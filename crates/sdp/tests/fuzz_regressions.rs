//! Inputs the `sdp` fuzz target found, replayed (files in `tests/vectors/fuzz/`).

use sotto_sdp::{
    EncryptionMode, EncryptionPolicy, LocalCapabilities, Session, answer, process_answer,
};

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

/// An offer with several audio sections, the keyed one refused (no common codec) and a later
/// plain one accepted: `answer` returned the refused section's keys for the accepted plain
/// stream. The keys must be those of the chosen stream — here none, as our own answer says.
#[test]
fn answer_returns_the_keys_of_the_chosen_stream() {
    let data = include_bytes!("vectors/fuzz/answer-keys-of-chosen-stream.sdp");
    let offer = Session::parse(data).expect("the input parses");
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
        let Ok((ans, _, keys)) = answer(&offer, &caps, &policy, &rng) else {
            continue;
        };
        let ans = Session::parse(ans.to_sdp().unwrap().as_bytes()).unwrap();
        let (_, back) = process_answer(&offer, &ans, &policy).expect("our answer checks");
        assert_eq!(back.is_some(), keys.is_some(), "{mode:?}");
        if let (Some(a), Some(b)) = (&back, &keys) {
            assert_eq!(a.remote, vec![b.local.clone()]);
        }
    }
}
