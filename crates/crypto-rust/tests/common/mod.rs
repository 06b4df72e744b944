//! Helpers shared by the vector tests: hex decoding and loading the JSON vector files
//! under `tests/vectors/` (paths relative to this crate, so the tests run from a clone).

#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;

/// Decodes lower- or upper-case hex with no separators; panics (test failure) on bad input.
pub(crate) fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// Encodes bytes as lower-case hex.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Reads and parses `tests/vectors/<rel>`.
pub(crate) fn load(rel: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The string field `key` of `v`, hex-decoded.
pub(crate) fn field(v: &serde_json::Value, key: &str) -> Vec<u8> {
    unhex(
        v.get(key)
            .and_then(|x| x.as_str())
            .unwrap_or_else(|| panic!("missing field {key} in {v}")),
    )
}

/// The string field `key` of `v`.
pub(crate) fn text<'a>(v: &'a serde_json::Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(|x| x.as_str())
        .unwrap_or_else(|| panic!("missing field {key} in {v}"))
}

/// The array field `key` of `v`.
pub(crate) fn array<'a>(v: &'a serde_json::Value, key: &str) -> &'a Vec<serde_json::Value> {
    v.get(key)
        .and_then(|x| x.as_array())
        .unwrap_or_else(|| panic!("missing array {key} in {v}"))
}
