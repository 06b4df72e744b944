//! Identities of a TLS client certificate (RFC 5922 §7.1: SAN URIs, then the subject CN),
//! for the authentication module. The transport has already verified the chain.

use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

/// The SAN URIs of a DER certificate, then its CN; empty if it cannot be parsed.
pub fn client_identities(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if let GeneralName::URI(u) = name {
                out.push((*u).to_owned());
            }
        }
    }
    if let Some(cn) = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
    {
        out.push(cn.to_owned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn san_uri_then_cn() {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.subject_alt_names = vec![rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from("sip:alice@example.test").unwrap(),
        )];
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "alice@example.test");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(
            client_identities(cert.der()),
            vec![
                "sip:alice@example.test".to_owned(),
                "alice@example.test".to_owned()
            ]
        );
        assert!(client_identities(b"not a certificate").is_empty());
    }
}
