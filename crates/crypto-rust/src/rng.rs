//! Backend for [`sotto_crypto::rng::SecureRandom`].

/// RustCrypto implementation of [`sotto_crypto::rng::SecureRandom`].
#[derive(Debug)]
pub(crate) struct RustRng;

impl sotto_crypto::rng::SecureRandom for RustRng {}
