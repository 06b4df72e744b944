//! Backend for [`sotto_crypto::kdf::KdfProvider`].

/// RustCrypto implementation of [`sotto_crypto::kdf::KdfProvider`].
#[derive(Debug)]
pub(crate) struct RustKdf;

impl sotto_crypto::kdf::KdfProvider for RustKdf {}
