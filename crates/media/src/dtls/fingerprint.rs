//! The SDP side of DTLS-SRTP: `a=fingerprint` (RFC 8122 §5) and `a=setup` (RFC 4145 §4,
//! RFC 5763 §5).

use sotto_crypto::CryptoProvider;
use sotto_crypto::hash::HashAlgorithm;

/// A certificate fingerprint: `<hash-func> <hex pairs separated by colons>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// The hash function.
    pub algorithm: HashAlgorithm,
    /// The hash of the certificate's DER.
    pub digest: Vec<u8>,
}

/// The SDP name of a hash function (RFC 8122 §5: lower case; peers write either case).
fn algorithm_name(a: HashAlgorithm) -> &'static str {
    match a {
        HashAlgorithm::Sha1 => "sha-1",
        HashAlgorithm::Sha256 => "sha-256",
        HashAlgorithm::Sha384 => "sha-384",
        HashAlgorithm::Sha512 => "sha-512",
        _ => "md5",
    }
}

impl Fingerprint {
    /// The fingerprint of `certificate_der` with `algorithm`.
    pub fn of(
        provider: &CryptoProvider,
        algorithm: HashAlgorithm,
        certificate_der: &[u8],
    ) -> Option<Self> {
        let h = provider.hash.hash(algorithm, &[certificate_der])?;
        Some(Fingerprint {
            algorithm,
            digest: h.as_ref().to_vec(),
        })
    }

    /// Parses an `a=fingerprint` value. MD5 (and MD2) are refused: RFC 8122 §5 forbids them
    /// as too weak to bind a certificate.
    pub fn parse(value: &str) -> Option<Self> {
        let (name, hex) = value.trim().split_once(' ')?;
        let algorithm = match name.to_ascii_lowercase().as_str() {
            "sha-1" => HashAlgorithm::Sha1,
            "sha-256" => HashAlgorithm::Sha256,
            "sha-384" => HashAlgorithm::Sha384,
            "sha-512" => HashAlgorithm::Sha512,
            _ => return None,
        };
        let digest = hex
            .trim()
            .split(':')
            .map(|pair| {
                (pair.len() == 2)
                    .then(|| u8::from_str_radix(pair, 16).ok())
                    .flatten()
            })
            .collect::<Option<Vec<u8>>>()?;
        (digest.len() == algorithm.output_len()).then_some(Fingerprint { algorithm, digest })
    }

    /// Whether `certificate_der` hashes to this fingerprint (constant-time comparison).
    pub fn matches(&self, provider: &CryptoProvider, certificate_der: &[u8]) -> bool {
        provider
            .hash
            .hash(self.algorithm, &[certificate_der])
            .is_some_and(|h| sotto_crypto::ct_eq(h.as_ref(), &self.digest))
    }
}

impl std::fmt::Display for Fingerprint {
    /// The SDP form: `sha-256 AB:CD:...` (upper-case hex, as browsers and Linphone write it).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(algorithm_name(self.algorithm))?;
        for (i, b) in self.digest.iter().enumerate() {
            write!(f, "{}{b:02X}", if i == 0 { ' ' } else { ':' })?;
        }
        Ok(())
    }
}

/// `a=setup` (RFC 4145 §4): who opens the connection — here, who sends the ClientHello.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setup {
    /// Will be the client.
    Active,
    /// Will be the server.
    Passive,
    /// Either; the answerer decides (an offer's value, RFC 5763 §5).
    ActPass,
    /// Keep the roles of the existing association.
    HoldConn,
}

impl Setup {
    /// Parses a value.
    pub fn parse(value: &str) -> Option<Self> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "active" => Setup::Active,
            "passive" => Setup::Passive,
            "actpass" => Setup::ActPass,
            "holdconn" => Setup::HoldConn,
            _ => return None,
        })
    }

    /// The SDP value.
    pub fn as_str(self) -> &'static str {
        match self {
            Setup::Active => "active",
            Setup::Passive => "passive",
            Setup::ActPass => "actpass",
            Setup::HoldConn => "holdconn",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_parse_in_either_case_and_print_as_peers_write_them() {
        let v = "SHA-256 87:7D:0A:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd";
        let f = Fingerprint::parse(v).unwrap();
        assert_eq!(f.algorithm, HashAlgorithm::Sha256);
        assert_eq!(f.digest[0], 0x87);
        assert_eq!(
            f.to_string(),
            "sha-256 87:7D:0A:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD"
        );
        assert!(Fingerprint::parse("md5 00:11").is_none(), "MD5 refused");
        assert!(
            Fingerprint::parse("sha-256 00:11").is_none(),
            "wrong length"
        );
        assert!(
            Fingerprint::parse("sha-1 0:11:22:33:44:55:66:77:88:99:00:11:22:33:44:55:66:77:88:99")
                .is_none()
        );
        assert!(Fingerprint::parse("sha-256").is_none());
    }

    #[test]
    fn setup_values() {
        for s in [
            Setup::Active,
            Setup::Passive,
            Setup::ActPass,
            Setup::HoldConn,
        ] {
            assert_eq!(Setup::parse(s.as_str()), Some(s));
        }
        assert_eq!(Setup::parse(" ACTPASS"), Some(Setup::ActPass));
        assert_eq!(Setup::parse("both"), None);
    }
}
