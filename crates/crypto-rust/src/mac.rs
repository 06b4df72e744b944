//! Backend for [`sotto_crypto::mac::MacProvider`].

/// RustCrypto implementation of [`sotto_crypto::mac::MacProvider`].
#[derive(Debug)]
pub(crate) struct RustMac;

impl sotto_crypto::mac::MacProvider for RustMac {}
