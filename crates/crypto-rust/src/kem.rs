//! Backend for [`sotto_crypto::kem::KemProvider`].

/// RustCrypto implementation of [`sotto_crypto::kem::KemProvider`].
#[derive(Debug)]
pub(crate) struct RustKem;

impl sotto_crypto::kem::KemProvider for RustKem {}
