//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// The path of a file under `tests/`.
pub(crate) fn test_path(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(rel)
}

/// Reads a file under `tests/`.
pub(crate) fn read(rel: &str) -> Vec<u8> {
    std::fs::read(test_path(rel)).unwrap_or_else(|e| panic!("reading {rel}: {e}"))
}

/// Lowercase hex of `b`.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The default RNG (RustCrypto backend).
pub(crate) fn rng() -> &'static dyn sotto_crypto::rng::SecureRandom {
    sotto_crypto_rust::provider().rng
}
