//! Posts X3DH messages to the LIME key server over HTTPS, as liblinphone does for liblime:
//! `Content-Type: x3dh/octet-stream`, the device id in `X-Lime-user-identity` (and `From`),
//! HTTP digest with the account's credentials when challenged. One request per connection;
//! the server's certificate is checked against the account's CA.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use sotto_net::rustls;
use sotto_sip::digest::{ClientSecret, DigestClient, parse_challenges, select_challenge};

/// A key server.
pub struct LimeClient {
    host: String,
    port: u16,
    path: String,
    tls: Arc<rustls::ClientConfig>,
    digest: DigestClient,
}

impl std::fmt::Debug for LimeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "LimeClient(https://{}:{}{})",
            self.host, self.port, self.path
        )
    }
}

struct Reply {
    status: u16,
    challenges: Vec<String>,
    body: Vec<u8>,
}

impl LimeClient {
    /// A client of `url` (`https://host[:port]/path`), trusting the roots in `tls`.
    pub fn new(url: &str, tls: Arc<rustls::ClientConfig>) -> Result<Self, String> {
        let rest = url
            .strip_prefix("https://")
            .ok_or_else(|| format!("LIME server URL {url}: expected https://"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h.trim_matches(['[', ']']).to_owned(),
                p.parse()
                    .map_err(|_| format!("LIME server URL {url}: bad port"))?,
            ),
            _ => (authority.to_owned(), 443),
        };
        Ok(LimeClient {
            host,
            port,
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            tls,
            digest: DigestClient::new(sotto_crypto_rust::provider()),
        })
    }

    fn request(&self, device: &str, auth: Option<&str>, body: &[u8]) -> Result<Reply, String> {
        let e = |what: &str, x: &dyn std::fmt::Display| {
            format!("LIME server {}:{}: {what}: {x}", self.host, self.port)
        };
        let addr = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|x| e("address", &x))?
            .next()
            .ok_or_else(|| e("address", &"none"))?;
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
            .map_err(|x| e("connect", &x))?;
        tcp.set_read_timeout(Some(Duration::from_secs(15)))
            .map_err(|x| e("socket", &x))?;
        let name = rustls::pki_types::ServerName::try_from(self.host.clone())
            .map_err(|x| e("server name", &x))?;
        let conn =
            rustls::ClientConnection::new(self.tls.clone(), name).map_err(|x| e("TLS", &x))?;
        let mut s = rustls::StreamOwned::new(conn, tcp);
        let mut head = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Type: \
             x3dh/octet-stream\r\nX-Lime-user-identity: {device}\r\nFrom: {device}\r\n\
             Content-Length: {}\r\n",
            self.path,
            self.host,
            body.len()
        );
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        s.write_all(head.as_bytes()).map_err(|x| e("write", &x))?;
        s.write_all(body).map_err(|x| e("write", &x))?;
        let mut all = Vec::new();
        if let Err(x) = s.read_to_end(&mut all)
            && all.is_empty()
        {
            return Err(e("read", &x));
        }
        let end = all
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| e("reply", &"no HTTP head"))?;
        let text = String::from_utf8_lossy(&all[..end]).into_owned();
        let mut lines = text.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| e("reply", &"no status"))?;
        let challenges = lines
            .filter_map(|l| l.split_once(':'))
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case("www-authenticate"))
            .map(|(_, v)| v.trim().to_owned())
            .collect();
        Ok(Reply {
            status,
            challenges,
            body: all[end + 4..].to_vec(),
        })
    }

    /// Posts `body` for `device` with the account `username`/`password`; returns the X3DH
    /// reply (HTTP 200), or why not.
    pub fn post(
        &mut self,
        device: &str,
        username: &str,
        password: &str,
        body: &[u8],
    ) -> Result<Vec<u8>, String> {
        let mut reply = self.request(device, None, body)?;
        if reply.status == 401 {
            let challenges: Vec<_> = reply
                .challenges
                .iter()
                .flat_map(|v| parse_challenges(v).unwrap_or_default())
                .collect();
            let c = select_challenge(&challenges)
                .ok_or("the LIME server sent no digest challenge we can answer")?;
            let creds = self
                .digest
                .respond(
                    c,
                    "POST",
                    &self.path,
                    username,
                    ClientSecret::Password(password),
                )
                .map_err(|x| format!("digest: {x}"))?;
            reply = self.request(device, Some(&creds.to_string()), body)?;
        }
        match reply.status {
            200 => Ok(reply.body),
            401 | 403 => Err(format!(
                "the LIME server refused the credentials of user {username:?} (HTTP {})",
                reply.status
            )),
            s => Err(format!("the LIME server answered HTTP {s}")),
        }
    }
}
