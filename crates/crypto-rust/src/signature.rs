//! Backend for [`sotto_crypto::signature::SignatureProvider`].

/// RustCrypto implementation of [`sotto_crypto::signature::SignatureProvider`].
#[derive(Debug)]
pub(crate) struct RustSignature;

impl sotto_crypto::signature::SignatureProvider for RustSignature {}
