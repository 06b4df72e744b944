//! Test helper: a rustls client stream to a server under test, trusting the CA of a
//! `sotto init` data directory (`ca.pem`).
//!
//! Included with `#[path = "common/tls_client.rs"] mod tls_client;`.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, ClientConnection, StreamOwned};

/// A TLS client stream over TCP.
pub(crate) type TlsStream = StreamOwned<ClientConnection, TcpStream>;

/// A client config that trusts the CA certificate in `ca`.
pub(crate) fn config(ca: &Path) -> Arc<ClientConfig> {
    sotto_net::tls::client_config_from_ca_file(ca).expect("TLS client config from the CA file")
}

/// A TLS client for server name `name` on `tcp`; rustls runs the handshake on the first read
/// or write.
pub(crate) fn over(tcp: TcpStream, config: &Arc<ClientConfig>, name: &str) -> TlsStream {
    let name = rustls_pki_types::ServerName::try_from(name.to_owned()).expect("a server name");
    let conn = ClientConnection::new(config.clone(), name).expect("a TLS client connection");
    StreamOwned::new(conn, tcp)
}

/// As [`over`], with the handshake completed (it fails the test if it does not complete
/// within `tcp`'s read timeout).
pub(crate) fn handshaken(tcp: TcpStream, config: &Arc<ClientConfig>, name: &str) -> TlsStream {
    let mut tls = over(tcp, config, name);
    while tls.conn.is_handshaking() {
        tls.conn
            .complete_io(&mut tls.sock)
            .expect("TLS handshake with the server");
    }
    tls
}
