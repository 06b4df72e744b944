//! Backend for [`sotto_crypto::hash::HashProvider`].

/// RustCrypto implementation of [`sotto_crypto::hash::HashProvider`].
#[derive(Debug)]
pub(crate) struct RustHash;

impl sotto_crypto::hash::HashProvider for RustHash {}
