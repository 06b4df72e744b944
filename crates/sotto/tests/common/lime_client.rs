//! Clients of the LIME key server for tests: an HTTPS poster with digest authentication (as
//! liblinphone posts for liblime), and Linphone's liblime itself (the driver shared with the
//! LIME crate's tests, `crates/lime/tests/common/liblime.rs`).

#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;

#[path = "../../../lime/tests/common/liblime.rs"]
mod liblime;
pub use liblime::*;

use sotto_sip::digest::{ClientSecret, DigestClient, parse_challenges, select_challenge};

/// One HTTP response: status, headers, body.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Posts to the key server at `addr` over HTTPS (trusting `ca`, server name `name`).
pub struct LimePoster {
    addr: SocketAddr,
    name: String,
    config: Arc<rustls::ClientConfig>,
    path: String,
    digest: DigestClient,
}

impl LimePoster {
    pub fn new(addr: SocketAddr, name: &str, ca: &Path, path: &str) -> LimePoster {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(ca).expect("CA file");
        use rustls_pki_types::pem::PemObject;
        roots
            .add(rustls_pki_types::CertificateDer::from_pem_slice(&pem).expect("CA PEM"))
            .expect("CA root");
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        LimePoster {
            addr,
            name: name.to_owned(),
            config: Arc::new(config),
            path: path.to_owned(),
            digest: DigestClient::new(sotto_crypto_rust::provider()),
        }
    }

    /// One request on its own connection.
    pub fn raw(&self, headers: &[(&str, String)], body: &[u8]) -> Reply {
        let name = rustls_pki_types::ServerName::try_from(self.name.clone()).expect("name");
        let conn = rustls::ClientConnection::new(self.config.clone(), name).expect("TLS");
        let tcp = TcpStream::connect(self.addr).expect("connect to the key server");
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let mut req = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.path,
            self.name,
            body.len()
        );
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("write head");
        s.write_all(body).expect("write body");
        let mut all = Vec::new();
        let _ = s.read_to_end(&mut all);
        let end = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a response head");
        let head = String::from_utf8_lossy(&all[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status");
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Reply {
            status,
            headers,
            body: all[end + 4..].to_vec(),
        }
    }

    /// Posts an X3DH message from `device` with the credentials of `user`: challenged
    /// first, then answered (as liblinphone does).
    pub fn post(&mut self, device: &str, user: &str, password: &str, body: &[u8]) -> Reply {
        let base = vec![
            ("Content-Type", "x3dh/octet-stream".to_owned()),
            ("X-Lime-user-identity", device.to_owned()),
        ];
        let first = self.raw(&base, body);
        if first.status != 401 {
            return first;
        }
        let challenges: Vec<_> = first
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("WWW-Authenticate"))
            .flat_map(|(_, v)| parse_challenges(v).unwrap_or_default())
            .collect();
        let c = select_challenge(&challenges).expect("a digest challenge");
        let creds = self
            .digest
            .respond(
                c,
                "POST",
                &self.path,
                user,
                ClientSecret::Password(password),
            )
            .expect("digest response");
        let mut h = base;
        h.push(("Authorization", creds.to_string()));
        self.raw(&h, body)
    }
}
