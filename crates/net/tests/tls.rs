//! TLS transport tests on loopback with a CA made by rcgen: server verification, wrong CA,
//! TLS 1.2 and 1.3, client certificates exposed in `TlsInfo`, connection reuse.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{Ca, next, options};
use sotto_net::tls::{self, ClientAuth};
use sotto_net::{Destination, Error, Transport, TransportConfig, TransportKind};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("socket address")
}

fn client_transport(config: Arc<rustls::ClientConfig>) -> (Transport, sotto_net::IncomingReceiver) {
    Transport::new(TransportConfig {
        tls_client: Some(config),
        ..TransportConfig::default()
    })
}

/// A TLS 1.2-only client config (to check the server still speaks TLS 1.2).
fn tls12_client(ca: &Ca, client_cert: Option<&common::Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS12])
        .unwrap()
        .with_root_certificates(roots);
    Arc::new(match client_cert {
        Some(leaf) => builder
            .with_client_auth_cert(leaf.chain.clone(), leaf.key())
            .unwrap(),
        None => builder.with_no_client_auth(),
    })
}

#[tokio::test]
async fn tls13_round_trip_with_verified_server_and_reuse() {
    let ca = Ca::new("sotto test CA");
    let leaf = ca.server(&["127.0.0.1"]);
    let server_config =
        tls::server_config(leaf.chain.clone(), leaf.key(), ClientAuth::None).unwrap();
    let (server, mut server_rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tls(loopback(), server_config).await.unwrap();

    let (client, mut client_rx) =
        client_transport(tls::client_config(vec![ca.cert()], None).unwrap());
    let dest = Destination::new(TransportKind::Tls, addr);
    let request = Bytes::from(options("tls-1", 11));
    let sent = client.send(&dest, request.clone()).await.unwrap();
    assert!(!sent.reused);

    let got = next(&mut server_rx).await;
    assert_eq!(got.data, request);
    assert_eq!(got.transport, TransportKind::Tls);
    assert_eq!(got.source, sent.local);
    let info = got.tls.clone().expect("TLS info on a TLS message");
    assert_eq!(info.version, "TLSv1.3");
    assert!(
        info.cipher_suite.starts_with("TLS13_"),
        "{}",
        info.cipher_suite
    );
    assert!(info.peer_certificates.is_empty());

    // Second send reuses the TLS connection; the reply comes back on it.
    let again = client
        .send(&dest, Bytes::from(options("tls-2", 0)))
        .await
        .unwrap();
    assert!(again.reused);
    assert_eq!(again.connection, sent.connection);
    let got2 = next(&mut server_rx).await;
    assert_eq!(got2.connection, got.connection);

    let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    server.reply(&got2, response.clone()).await.unwrap();
    let back = next(&mut client_rx).await;
    assert_eq!(back.data, response);
    assert_eq!(back.connection, sent.connection);
    let client_info = back.tls.expect("client side TLS info");
    assert_eq!(client_info.server_name.as_deref(), Some("127.0.0.1"));
    assert_eq!(client_info.peer_certificates, leaf.chain);
}

#[tokio::test]
async fn tls12_is_accepted() {
    let ca = Ca::new("sotto test CA");
    let leaf = ca.server(&["127.0.0.1"]);
    let server_config =
        tls::server_config(leaf.chain.clone(), leaf.key(), ClientAuth::None).unwrap();
    let (server, mut rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tls(loopback(), server_config).await.unwrap();
    let (client, _crx) = client_transport(tls12_client(&ca, None));
    client
        .send(
            &Destination::new(TransportKind::Tls, addr),
            Bytes::from(options("tls12", 0)),
        )
        .await
        .unwrap();
    let info = next(&mut rx).await.tls.expect("TLS info");
    assert_eq!(info.version, "TLSv1.2");
    assert!(
        info.cipher_suite.starts_with("TLS_ECDHE_"),
        "{}",
        info.cipher_suite
    );
}

#[tokio::test]
async fn wrong_ca_or_wrong_name_fails_the_handshake() {
    let ca = Ca::new("sotto test CA");
    let other = Ca::new("someone else");
    let leaf = ca.server(&["sip.example.test"]);
    let server_config =
        tls::server_config(leaf.chain.clone(), leaf.key(), ClientAuth::None).unwrap();
    let (server, _rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tls(loopback(), server_config).await.unwrap();

    // Trusting another CA.
    let (client, _crx) = client_transport(tls::client_config(vec![other.cert()], None).unwrap());
    let dest = Destination {
        server_name: Some("sip.example.test".into()),
        ..Destination::new(TransportKind::Tls, addr)
    };
    let err = client
        .send(&dest, Bytes::from(options("bad-ca", 0)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(client.connections().is_empty());

    // Right CA, but the certificate is not for 127.0.0.1 (the default server name).
    let (client, _crx) = client_transport(tls::client_config(vec![ca.cert()], None).unwrap());
    let err = client
        .send(
            &Destination::new(TransportKind::Tls, addr),
            Bytes::from(options("bad-name", 0)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");

    // Right CA and name: works (so the two failures above were about trust, not setup).
    client
        .send(&dest, Bytes::from(options("good", 0)))
        .await
        .unwrap();
}

#[tokio::test]
async fn tls_without_client_config_is_refused() {
    let (client, _rx) = Transport::new(TransportConfig::default());
    let err = client
        .send(
            &Destination::new(TransportKind::Tls, "127.0.0.1:5061".parse().unwrap()),
            Bytes::from(options("x", 0)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoTlsClientConfig), "{err:?}");
}

#[tokio::test]
async fn client_certificate_is_verified_and_exposed() {
    let ca = Ca::new("sotto test CA");
    let leaf = ca.server(&["127.0.0.1"]);
    let alice = ca.client("sip:alice@example.test", "alice");
    let server_config = tls::server_config(
        leaf.chain.clone(),
        leaf.key(),
        ClientAuth::Required {
            roots: vec![ca.cert()],
        },
    )
    .unwrap();
    let (server, mut rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tls(loopback(), server_config).await.unwrap();
    let dest = Destination::new(TransportKind::Tls, addr);

    // TLS 1.3 client presenting alice's certificate (PEM-loaded, as the CLI would).
    let chain = tls::certs_from_pem(alice.cert_pem.as_bytes()).unwrap();
    let key = tls::private_key_from_pem(alice.key_pem.as_bytes()).unwrap();
    let (client, _crx) =
        client_transport(tls::client_config(vec![ca.cert()], Some((chain, key))).unwrap());
    client
        .send(&dest, Bytes::from(options("mtls", 0)))
        .await
        .unwrap();
    let info = next(&mut rx).await.tls.expect("TLS info");
    assert_eq!(info.version, "TLSv1.3");
    assert_eq!(info.peer_certificates, alice.chain);

    // A TLS 1.2 client with no certificate: the handshake fails on the client side.
    let (anon, _arx) = client_transport(tls12_client(&ca, None));
    let err = anon
        .send(&dest, Bytes::from(options("anon", 0)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");

    // A certificate from another CA: refused as well.
    let mallory = Ca::new("rogue").client("sip:alice@example.test", "alice");
    let (rogue, _rrx) = client_transport(tls12_client(&ca, Some(&mallory)));
    let err = rogue
        .send(&dest, Bytes::from(options("rogue", 0)))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
}

#[tokio::test]
async fn optional_client_auth_accepts_anonymous_clients() {
    let ca = Ca::new("sotto test CA");
    let leaf = ca.server(&["127.0.0.1"]);
    let alice = ca.client("sip:alice@example.test", "alice");
    let server_config = tls::server_config(
        leaf.chain.clone(),
        leaf.key(),
        ClientAuth::Optional {
            roots: vec![ca.cert()],
        },
    )
    .unwrap();
    let (server, mut rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tls(loopback(), server_config).await.unwrap();
    let dest = Destination::new(TransportKind::Tls, addr);

    let (anon, _arx) = client_transport(tls::client_config(vec![ca.cert()], None).unwrap());
    anon.send(&dest, Bytes::from(options("anon", 0)))
        .await
        .unwrap();
    assert!(
        next(&mut rx)
            .await
            .tls
            .expect("TLS info")
            .peer_certificates
            .is_empty()
    );

    let (named, _nrx) = client_transport(
        tls::client_config(vec![ca.cert()], Some((alice.chain.clone(), alice.key()))).unwrap(),
    );
    named
        .send(&dest, Bytes::from(options("named", 0)))
        .await
        .unwrap();
    assert_eq!(
        next(&mut rx).await.tls.expect("TLS info").peer_certificates,
        alice.chain
    );
}

#[tokio::test]
async fn pem_files_load_and_bad_pem_is_an_error() {
    let ca = Ca::new("sotto test CA");
    let leaf = ca.server(&["127.0.0.1"]);
    let dir = std::env::temp_dir().join(format!("sotto-net-pem-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let ca_file = dir.join("ca.pem");
    std::fs::write(&cert, &leaf.cert_pem).unwrap();
    std::fs::write(&key, &leaf.key_pem).unwrap();
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let server_config = tls::server_config_from_files(&cert, &key, ClientAuth::None).unwrap();
    let client_config = tls::client_config_from_ca_file(&ca_file).unwrap();

    let (server, mut rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tls(loopback(), server_config).await.unwrap();
    let (client, _crx) = client_transport(client_config);
    client
        .send(
            &Destination::new(TransportKind::Tls, addr),
            Bytes::from(options("pem", 0)),
        )
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.transport, TransportKind::Tls);

    assert!(matches!(
        tls::certs_from_pem(b"not pem"),
        Err(Error::Pem(_))
    ));
    assert!(matches!(
        tls::private_key_from_pem(leaf.cert_pem.as_bytes()),
        Err(Error::Pem(_))
    ));
    // A key that does not match the certificate is refused when building the config.
    let other = ca.server(&["127.0.0.1"]);
    assert!(tls::server_config(leaf.chain.clone(), other.key(), ClientAuth::None).is_err());
    std::fs::remove_dir_all(&dir).unwrap();
}
