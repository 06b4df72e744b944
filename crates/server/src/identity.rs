//! Identities of a TLS client certificate, for the authentication module (SAN URIs, then the
//! subject CN: a user's certificate) and the federation module (the domains a peer server's
//! certificate is valid for, RFC 5922 §7.1). The transport has already verified the chain.

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

/// The SIP domains a DER certificate is valid for (RFC 5922 §7.1): its SAN DNS names and the
/// hosts of its user-less SAN `sip:`/`sips:` URIs, lower case; the subject CN only when the
/// certificate has no SAN of either kind. Empty if it cannot be parsed.
pub fn client_domains(der: &[u8]) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut has_san = false;
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => {
                    has_san = true;
                    out.push(d.to_ascii_lowercase());
                }
                GeneralName::URI(u) => {
                    has_san = true;
                    let rest = u.strip_prefix("sips:").or_else(|| u.strip_prefix("sip:"));
                    if let Some(host) = rest.filter(|r| !r.contains('@')) {
                        let host = host.split([';', '?', ':']).next().unwrap_or_default();
                        out.push(host.to_ascii_lowercase());
                    }
                }
                _ => {}
            }
        }
    }
    if !has_san
        && let Some(cn) = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())
    {
        out.push(cn.to_ascii_lowercase());
    }
    out
}

/// Whether a certificate valid for `domains` (see [`client_domains`]) covers `domain`: an exact
/// match, or a `*.` wildcard for exactly one more label.
pub fn covers(domains: &[String], domain: &str) -> bool {
    let d = domain.to_ascii_lowercase();
    domains.iter().any(|c| {
        c == &d
            || c.strip_prefix("*.").is_some_and(|suffix| {
                d.split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix)
            })
    })
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
        // No DNS SAN and a user URI: the CN is not used, the user URI is no domain.
        assert!(client_domains(cert.der()).is_empty());
    }

    #[test]
    fn domains_of_a_server_certificate() {
        let mut params =
            rcgen::CertificateParams::new(vec!["A.example".to_owned(), "*.b.example".to_owned()])
                .unwrap();
        params.subject_alt_names.push(rcgen::SanType::URI(
            rcgen::string::Ia5String::try_from("sip:c.example").unwrap(),
        ));
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "ignored.example");
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let d = client_domains(cert.der());
        assert_eq!(d, ["a.example", "*.b.example", "c.example"]);
        assert!(covers(&d, "a.example") && covers(&d, "C.example"));
        assert!(covers(&d, "x.b.example"));
        assert!(!covers(&d, "b.example") && !covers(&d, "y.x.b.example"));
        assert!(!covers(&d, "ignored.example") && !covers(&d, "d.example"));
        // Only a CN: the CN.
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "e.example");
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(client_domains(cert.der()), ["e.example"]);
    }
}
