//! Backend for [`sotto_crypto::cipher::CipherProvider`].

/// RustCrypto implementation of [`sotto_crypto::cipher::CipherProvider`].
#[derive(Debug)]
pub(crate) struct RustCipher;

impl sotto_crypto::cipher::CipherProvider for RustCipher {}
