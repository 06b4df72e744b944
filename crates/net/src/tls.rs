//! TLS configuration for SIP over TLS (RFC 3261 §26.2, RFC 5630 §3): rustls server and client
//! configs from PEM, optional or required client certificates verified against a configured CA,
//! and the [`TlsInfo`] a connection exposes to the layer above.
//!
//! Both TLS 1.3 and TLS 1.2 are enabled. Every config is built with the crate's single rustls
//! crypto provider ([`provider`], *ring*) passed explicitly, so the process-wide default provider
//! is never consulted. There is no way to disable certificate verification in this module.

use std::path::Path;
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// The TLS versions every config built here accepts: TLS 1.3 first, then TLS 1.2.
static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The rustls crypto provider used by every config of this crate (*ring*).
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether, and how strictly, a TLS server asks its clients for a certificate.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum ClientAuth {
    /// Do not ask for a client certificate.
    #[default]
    None,
    /// Ask for a certificate; a client may send none, but one it sends must chain to `roots`.
    Optional {
        /// Trust anchors (DER) for client certificates.
        roots: Vec<CertificateDer<'static>>,
    },
    /// Require a certificate that chains to `roots`; the handshake fails without one.
    Required {
        /// Trust anchors (DER) for client certificates.
        roots: Vec<CertificateDer<'static>>,
    },
}

/// What a TLS connection negotiated, exposed with every message received on it.
///
/// The server side uses `peer_certificates` to match a client's From URI against the
/// certificate's subjectAltName URI or CN (RFC 5922 §7.1); that matching is not done here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsInfo {
    /// `"TLSv1.3"` or `"TLSv1.2"`.
    pub version: &'static str,
    /// The IANA name of the negotiated cipher suite, e.g. `"TLS13_AES_256_GCM_SHA384"`.
    pub cipher_suite: String,
    /// The peer's certificate chain (DER), end-entity first; empty if the peer sent none.
    pub peer_certificates: Vec<CertificateDer<'static>>,
    /// On a server: the SNI the client sent. On a client: the name the server was verified for.
    pub server_name: Option<String>,
}

impl TlsInfo {
    /// Reads the negotiated parameters of an established connection.
    pub(crate) fn from_common(common: &rustls::CommonState, server_name: Option<String>) -> Self {
        let version = match common.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "unknown",
        };
        let cipher_suite = common
            .negotiated_cipher_suite()
            .map(|s| {
                let suite = s.suite();
                suite
                    .as_str()
                    .map_or_else(|| format!("{suite:?}"), str::to_owned)
            })
            .unwrap_or_default();
        let peer_certificates = common
            .peer_certificates()
            .map(<[CertificateDer<'static>]>::to_vec)
            .unwrap_or_default();
        Self {
            version,
            cipher_suite,
            peer_certificates,
            server_name,
        }
    }
}

/// Parses every `CERTIFICATE` section of a PEM buffer; fails if there is none.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(Error::Pem)?;
    if certs.is_empty() {
        return Err(Error::Pem(rustls_pki_types::pem::Error::NoItemsFound));
    }
    Ok(certs)
}

/// Parses the first private key (PKCS#8, PKCS#1 or SEC1) of a PEM buffer.
pub fn private_key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(Error::Pem)
}

/// Reads a PEM file of certificates (see [`certs_from_pem`]).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    certs_from_pem(&std::fs::read(path).map_err(Error::Io)?)
}

/// Reads a PEM file holding a private key (see [`private_key_from_pem`]).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    private_key_from_pem(&std::fs::read(path).map_err(Error::Io)?)
}

fn root_store(roots: Vec<CertificateDer<'static>>) -> Result<Arc<RootCertStore>, Error> {
    if roots.is_empty() {
        return Err(Error::Pem(rustls_pki_types::pem::Error::NoItemsFound));
    }
    let mut store = RootCertStore::empty();
    for root in roots {
        store.add(root).map_err(Error::Tls)?;
    }
    Ok(Arc::new(store))
}

/// Builds a TLS server config from a certificate chain (end-entity first) and its key.
pub fn server_config(
    cert_chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    let provider = provider();
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(VERSIONS)
        .map_err(Error::Tls)?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Optional { roots } => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(root_store(roots)?, provider)
                    .allow_unauthenticated()
                    .build()
                    .map_err(Error::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
        ClientAuth::Required { roots } => {
            let verifier =
                WebPkiClientVerifier::builder_with_provider(root_store(roots)?, provider)
                    .build()
                    .map_err(Error::Verifier)?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let config = builder
        .with_single_cert(cert_chain, key)
        .map_err(Error::Tls)?;
    Ok(Arc::new(config))
}

/// Builds a TLS server config from PEM files: certificate chain and private key.
pub fn server_config_from_files(
    cert_path: &Path,
    key_path: &Path,
    client_auth: ClientAuth,
) -> Result<Arc<rustls::ServerConfig>, Error> {
    server_config(
        read_certs(cert_path)?,
        read_private_key(key_path)?,
        client_auth,
    )
}

/// Builds a TLS client config that verifies servers against `roots` (DER trust anchors) and,
/// if `client_cert` is given, presents that chain and key when the server asks for one.
pub fn client_config(
    roots: Vec<CertificateDer<'static>>,
    client_cert: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
) -> Result<Arc<rustls::ClientConfig>, Error> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(VERSIONS)
        .map_err(Error::Tls)?
        .with_root_certificates(root_store(roots)?);
    let config = match client_cert {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(Error::Tls)?,
    };
    Ok(Arc::new(config))
}

/// Builds a TLS client config that verifies servers against the CA certificates of a PEM file.
pub fn client_config_from_ca_file(ca_path: &Path) -> Result<Arc<rustls::ClientConfig>, Error> {
    client_config(read_certs(ca_path)?, None)
}
