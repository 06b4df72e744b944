//! The agent's DTLS-SRTP certificate on disk: `dtls-certificate.der` (the X.509 certificate,
//! whose SHA-256 fingerprint our SDP carries) and `dtls-key.der` (its PKCS#8 private key,
//! owner-only) in the data directory. Made on first use and kept, as Linphone keeps its own,
//! so the fingerprint a peer sees stays the same from call to call.

use std::io::Write;
use std::path::{Path, PathBuf};

use sotto_crypto::CryptoProvider;
use sotto_crypto::dtls::DtlsCertificate;
use sotto_crypto::secret::SecretBytes;

/// The certificate's file name.
pub const CERTIFICATE_FILE: &str = "dtls-certificate.der";
/// The private key's file name.
pub const KEY_FILE: &str = "dtls-key.der";

/// Where the certificate lives.
#[derive(Debug, Clone)]
pub struct CertificateStore {
    dir: PathBuf,
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("DTLS certificate {}: {e}", path.display())
}

/// Writes `bytes` to `path` whole or not at all (a temporary file renamed over it), with
/// `mode` permissions.
fn write_atomically(path: &Path, bytes: &[u8], mode: u32) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(&tmp).map_err(|e| err(&tmp, e))?;
    f.write_all(bytes).map_err(|e| err(&tmp, e))?;
    f.sync_all().map_err(|e| err(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| err(path, e))
}

impl CertificateStore {
    /// The certificate in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        CertificateStore {
            dir: data_dir.to_owned(),
        }
    }

    /// The certificate file's path.
    pub fn certificate_path(&self) -> PathBuf {
        self.dir.join(CERTIFICATE_FILE)
    }

    /// The certificate kept here, or a new one (ECDSA P-256, self-signed) made and kept.
    pub fn load_or_create(&self, provider: &CryptoProvider) -> Result<DtlsCertificate, String> {
        let (cert, key) = (self.certificate_path(), self.dir.join(KEY_FILE));
        if cert.exists() && key.exists() {
            return Ok(DtlsCertificate {
                certificate_der: std::fs::read(&cert).map_err(|e| err(&cert, e))?,
                private_key_der: SecretBytes::new(std::fs::read(&key).map_err(|e| err(&key, e))?),
            });
        }
        std::fs::create_dir_all(&self.dir).map_err(|e| err(&self.dir, e))?;
        let made = provider
            .dtls
            .generate_certificate("sotto-agent")
            .map_err(|e| err(&cert, e))?;
        // The key first: a crash between the two leaves no certificate without its key.
        write_atomically(&key, made.private_key_der.expose(), 0o600)?;
        write_atomically(&cert, &made.certificate_der, 0o644)?;
        Ok(made)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_made_once_and_kept() {
        let dir = std::env::temp_dir().join(format!("sotto-dtls-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = CertificateStore::in_dir(&dir);
        let p = sotto_crypto_rust::provider();
        let first = store.load_or_create(p).unwrap();
        let again = store.load_or_create(p).unwrap();
        assert_eq!(first.certificate_der, again.certificate_der);
        assert_eq!(
            first.private_key_der.expose(),
            again.private_key_der.expose()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is the owner's only");
        }
        // The key still works: a session starts with it.
        let s = p.dtls.session(&sotto_crypto::dtls::DtlsConfig {
            role: sotto_crypto::dtls::DtlsRole::Client,
            certificate: &again,
            profiles: &sotto_crypto::dtls::SrtpProfile::ALL,
            mtu: 1200,
        });
        assert!(s.is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
