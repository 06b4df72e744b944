//! Inputs the `cargo fuzz` targets (`fuzz/`) found, replayed with the target's checks.
//!
//! `tests/vectors/fuzz/<target>/` holds the inputs byte-exact (see its `PROVENANCE.md`); each
//! file is run through the same assertions as the fuzz target, so a new file is a new case.

use sotto_sip::digest::{Challenge, Credentials, DigestError, parse_challenges};
use std::path::PathBuf;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors/fuzz")
        .join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fuzz regression folder present")
        .map(|e| e.expect("readable entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .map(|p| {
            let bytes = std::fs::read(&p).expect("readable input");
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

/// The `sip_digest` target's round trips: whatever parses prints to text that parses back
/// to the same value.
fn digest_round_trips(value: &str) {
    if let Ok(c) = Challenge::parse(value) {
        assert_eq!(Challenge::parse(&c.to_string()), Ok(c));
    }
    if let Ok(list) = parse_challenges(value) {
        let printed = list
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        assert_eq!(parse_challenges(&printed), Ok(list));
    }
    if let Ok(creds) = Credentials::parse(value) {
        assert_eq!(Credentials::parse(&creds.to_string()), Ok(creds));
    }
}

#[test]
fn sip_digest_inputs_round_trip() {
    for (path, bytes) in inputs("sip_digest") {
        let (_flags, rest) = bytes.split_first().expect("flags byte");
        let value = String::from_utf8_lossy(rest);
        eprintln!("{}", path.display());
        digest_round_trips(&value);
    }
}

#[test]
fn bare_cr_in_quoted_string_is_malformed() {
    let (_, bytes) = inputs("sip_digest")
        .into_iter()
        .find(|(p, _)| p.ends_with("bare_cr_in_quoted_username.bin"))
        .expect("the bare-CR input");
    let value = String::from_utf8_lossy(bytes.get(1..).unwrap_or_default()).into_owned();
    let at = value.find('\r').expect("the input has a bare CR");
    assert!(matches!(
        Credentials::parse(&value),
        Err(DigestError::Malformed { .. })
    ));
    // The same value with the CR turned into a line fold (CRLF SP) parses; the fold reads as
    // one SP, which prints and parses back unchanged.
    let mut folded = value.clone();
    folded.replace_range(at..at + 1, "\r\n ");
    let creds = Credentials::parse(&folded).expect("a folded quoted string parses");
    assert_eq!(creds.username, "  ufasa");
    digest_round_trips(&folded);
    // A bare LF is refused too.
    let mut lf = value;
    lf.replace_range(at..at + 1, "\n");
    assert!(matches!(
        Credentials::parse(&lf),
        Err(DigestError::Malformed { .. })
    ));
}
