//! Backend for [`sotto_crypto::agreement::AgreementProvider`].

/// RustCrypto implementation of [`sotto_crypto::agreement::AgreementProvider`].
#[derive(Debug)]
pub(crate) struct RustAgreement;

impl sotto_crypto::agreement::AgreementProvider for RustAgreement {}
