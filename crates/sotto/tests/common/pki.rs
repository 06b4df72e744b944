//! Test helper: certificates made with rcgen for the TLS tests — a fresh test CA with a
//! certificate for 127.0.0.1, a client certificate issued by the CA `sotto init` wrote, and
//! CA bundles.
//!
//! Included with `#[path = "common/pki.rs"] mod pki;`.

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A test CA and a certificate for 127.0.0.1 issued by it (SANs: IP 127.0.0.1 for rustls,
/// DNS "127.0.0.1" for linphonec, which matches dNSName only; server and client auth), as
/// PEM files.
pub(crate) struct TestPki {
    /// The CA certificate.
    pub(crate) ca: PathBuf,
    /// The end-entity certificate.
    pub(crate) cert: PathBuf,
    /// Its private key.
    pub(crate) key: PathBuf,
}

/// Writes a fresh [`TestPki`] into `dir` (created if absent) as `<name>-ca.pem`,
/// `<name>-cert.pem` and `<name>-key.pem`; the CA is named `sotto test CA <name>`.
pub(crate) fn test_pki(dir: &Path, name: &str) -> TestPki {
    std::fs::create_dir_all(dir).expect("mkdir pki");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("sotto test CA {name}"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    leaf.subject_alt_names = vec![
        rcgen::SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
        rcgen::SanType::DnsName(rcgen::string::Ia5String::try_from("127.0.0.1").expect("ia5")),
    ];
    leaf.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf.use_authority_key_identifier_extension = true;
    let cert = leaf.signed_by(&key, &issuer).expect("sign leaf");
    let pki = TestPki {
        ca: dir.join(format!("{name}-ca.pem")),
        cert: dir.join(format!("{name}-cert.pem")),
        key: dir.join(format!("{name}-key.pem")),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).expect("write CA");
    std::fs::write(&pki.cert, cert.pem()).expect("write cert");
    std::fs::write(&pki.key, key.serialize_pem()).expect("write key");
    pki
}

/// A client certificate for `uri` (SAN URI, client auth only, common name `holder`) issued
/// by the CA `sotto init --domain <domain>` wrote: its DN rebuilt as init writes it, its key
/// read from `ca_key`. Returns (certificate PEM, private key PEM).
pub(crate) fn init_ca_client_cert(
    ca_key: &Path,
    domain: &str,
    uri: &str,
    holder: &str,
) -> (String, String) {
    let ca_key_pem = std::fs::read_to_string(ca_key).expect("read ca.key");
    let ca_key = rcgen::KeyPair::from_pem(&ca_key_pem).expect("CA key");
    let mut ca = rcgen::CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name.push(
        rcgen::DnType::CommonName,
        format!("sotto local CA for {domain}"),
    );
    ca.distinguished_name
        .push(rcgen::DnType::OrganizationName, "sotto");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("client key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, holder);
    params.subject_alt_names = vec![rcgen::SanType::URI(
        rcgen::string::Ia5String::try_from(uri).expect("URI"),
    )];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    let cert = params.signed_by(&key, &issuer).expect("sign client cert");
    (cert.pem(), key.serialize_pem())
}

/// Concatenates PEM files into `out` (a CA bundle); returns `out`.
pub(crate) fn pem_bundle(out: &Path, parts: &[&Path]) -> PathBuf {
    let mut pem = String::new();
    for p in parts {
        pem.push_str(&std::fs::read_to_string(p).expect("read PEM"));
    }
    std::fs::write(out, pem).expect("write PEM bundle");
    out.to_path_buf()
}

/// A test CA that issues domain certificates (RFC 5922: `DNS:<domain>`, server and client
/// auth), as a public CA would for the servers of several domains.
pub(crate) struct DomainCa {
    /// The CA certificate (PEM file).
    pub(crate) ca: PathBuf,
    dir: PathBuf,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

impl DomainCa {
    /// A fresh CA, its certificate written to `dir/<name>-ca.pem`.
    pub(crate) fn new(dir: &Path, name: &str) -> DomainCa {
        std::fs::create_dir_all(dir).expect("mkdir pki");
        let key = rcgen::KeyPair::generate().expect("CA key");
        let mut params = rcgen::CertificateParams::default();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("sotto test CA {name}"));
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).expect("self-sign CA");
        let ca = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca, cert.pem()).expect("write CA");
        DomainCa {
            ca,
            dir: dir.to_path_buf(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A certificate for `domain` (SAN `DNS:<domain>`), written to `<domain>.pem` and
    /// `<domain>.key`; returns (certificate, key) paths.
    pub(crate) fn issue(&self, domain: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().expect("leaf key");
        let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, domain);
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        let (c, k) = (
            self.dir.join(format!("{domain}.pem")),
            self.dir.join(format!("{domain}.key")),
        );
        std::fs::write(&c, cert.pem()).expect("write cert");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c, k)
    }
}
