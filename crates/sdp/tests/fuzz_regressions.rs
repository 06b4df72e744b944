//! Inputs the `sdp` fuzz target found, replayed (files in `tests/vectors/fuzz/`) through the
//! same check the target runs.

#[path = "common/answer_check.rs"]
mod answer_check;

use sotto_sdp::Session;

/// An offer with several audio sections, the keyed one refused (no common codec) and a later
/// plain one accepted: `answer` returned the refused section's keys for the accepted plain
/// stream. The keys must be those of the chosen stream — here none, as our own answer says.
#[test]
fn answer_returns_the_keys_of_the_chosen_stream() {
    let data = include_bytes!("vectors/fuzz/answer-keys-of-chosen-stream.sdp");
    let offer = Session::parse(data).expect("the input parses");
    assert!(
        answer_check::check_answers(&offer) > 0,
        "at least one answer is accepted back"
    );
}
