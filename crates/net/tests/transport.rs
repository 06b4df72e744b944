//! UDP, TCP and IPv6 transport tests on loopback: round trips, stream framing, keep-alive,
//! connection reuse, limits.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{WAIT, next, options};
use sotto_net::{Destination, Error, Transport, TransportConfig, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

fn any(addr: &str) -> SocketAddr {
    addr.parse().expect("socket address")
}

/// Reads until EOF or error; returns what was read. Fails the test after [`WAIT`].
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, stream.read_to_end(&mut out))
        .await
        .expect("connection was not closed");
    out
}

#[tokio::test]
async fn udp_round_trip_and_reply_from_same_socket() {
    let (server, mut server_rx) = Transport::new(TransportConfig::default());
    let (client, mut client_rx) = Transport::new(TransportConfig::default());
    let server_addr = server.bind_udp(any("127.0.0.1:0")).await.unwrap();
    let client_addr = client.bind_udp(any("127.0.0.1:0")).await.unwrap();
    assert_ne!(server_addr.port(), 0);

    let request = Bytes::from(options("udp-1", 0));
    let sent = client
        .send(
            &Destination::new(TransportKind::Udp, server_addr),
            request.clone(),
        )
        .await
        .unwrap();
    assert_eq!(sent.local, client_addr);
    assert_eq!(sent.connection, None);

    let got = next(&mut server_rx).await;
    assert_eq!(got.data, request);
    assert_eq!(got.source, client_addr);
    assert_eq!(got.local, server_addr);
    assert_eq!(got.transport, TransportKind::Udp);
    assert!(got.connection.is_none() && got.tls.is_none());

    let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    server.reply(&got, response.clone()).await.unwrap();
    let back = next(&mut client_rx).await;
    assert_eq!(back.data, response);
    assert_eq!(back.source, server_addr);
}

#[tokio::test]
async fn udp_keepalives_and_oversize_datagrams_are_dropped() {
    let config = TransportConfig {
        max_datagram_bytes: 1000,
        ..TransportConfig::default()
    };
    let (server, mut rx) = Transport::new(config);
    let addr = server.bind_udp(any("127.0.0.1:0")).await.unwrap();
    let raw = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    raw.send_to(b"\r\n\r\n", addr).await.unwrap();
    raw.send_to(&options("too-big", 1500), addr).await.unwrap();
    raw.send_to(b"", addr).await.unwrap();
    let ok = options("fits", 10);
    raw.send_to(&ok, addr).await.unwrap();
    // Datagrams on loopback arrive in order: the first delivered must be the valid one.
    let got = next(&mut rx).await;
    assert_eq!(&got.data[..], &ok[..]);

    // Sending an oversize datagram is refused locally.
    let err = server
        .send(
            &Destination::new(TransportKind::Udp, raw.local_addr().unwrap()),
            Bytes::from(options("too-big", 1500)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::TooLarge {
                max_bytes: 1000,
                ..
            }
        ),
        "{err:?}"
    );
}

#[tokio::test]
async fn tcp_framing_split_writes_and_coalesced_messages() {
    let (server, mut rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tcp(any("127.0.0.1:0")).await.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();

    // One message with a body, written in three pieces that split the header and the body.
    let first = options("split", 20);
    let cuts = [10, first.len() - 5];
    stream.write_all(&first[..cuts[0]]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    stream.write_all(&first[cuts[0]..cuts[1]]).await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    stream.write_all(&first[cuts[1]..]).await.unwrap();

    // Two messages (and a leading CRLF, RFC 3261 §7.5) in one write.
    let second = options("two-a", 0);
    let third = options("two-b", 7);
    let mut both = b"\r\n".to_vec();
    both.extend_from_slice(&second);
    both.extend_from_slice(&third);
    stream.write_all(&both).await.unwrap();

    let a = next(&mut rx).await;
    let b = next(&mut rx).await;
    let c = next(&mut rx).await;
    assert_eq!(&a.data[..], &first[..]);
    assert_eq!(&b.data[..], &second[..]);
    assert_eq!(&c.data[..], &third[..]);
    assert_eq!(a.transport, TransportKind::Tcp);
    assert_eq!(a.source, stream.local_addr().unwrap());
    assert!(a.connection.is_some());
    assert_eq!(a.connection, b.connection);
    assert_eq!(b.connection, c.connection);

    // The reply goes back on the same connection.
    let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    let sent = server.reply(&c, response.clone()).await.unwrap();
    assert!(sent.reused);
    assert_eq!(sent.connection, c.connection);
    let mut buf = vec![0u8; response.len()];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf, response);
}

#[tokio::test]
async fn crlf_ping_gets_crlf_pong_even_when_split() {
    let (server, mut rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tcp(any("127.0.0.1:0")).await.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();

    stream.write_all(b"\r\n\r\n").await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(WAIT, stream.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");

    // A ping split in two writes is still one ping.
    stream.write_all(b"\r\n").await.unwrap();
    stream.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    stream.write_all(b"\r\n").await.unwrap();
    tokio::time::timeout(WAIT, stream.read_exact(&mut pong))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&pong, b"\r\n");

    // The connection still carries messages afterwards.
    let msg = options("after-ping", 0);
    stream.write_all(&msg).await.unwrap();
    assert_eq!(&next(&mut rx).await.data[..], &msg[..]);
}

#[tokio::test]
async fn framing_errors_close_only_that_connection() {
    let config = TransportConfig {
        limits: sotto_sip::parse::Limits {
            max_message_bytes: 2048,
            ..Default::default()
        },
        ..TransportConfig::default()
    };
    let (server, mut rx) = Transport::new(config);
    let addr = server.listen_tcp(any("127.0.0.1:0")).await.unwrap();

    // No Content-Length on a stream: closed, nothing delivered.
    let mut s1 = TcpStream::connect(addr).await.unwrap();
    s1.write_all(b"OPTIONS sip:a@127.0.0.1 SIP/2.0\r\nCall-ID: x\r\n\r\n")
        .await
        .unwrap();
    assert!(read_to_close(&mut s1).await.is_empty());

    // A Content-Length beyond the limit: closed before the body is read.
    let mut s2 = TcpStream::connect(addr).await.unwrap();
    let head = "MESSAGE sip:a@127.0.0.1 SIP/2.0\r\nContent-Length: 100000\r\n\r\n";
    s2.write_all(head.as_bytes()).await.unwrap();
    assert!(read_to_close(&mut s2).await.is_empty());

    // Endless header bytes with no blank line: closed once past the limit.
    let mut s3 = TcpStream::connect(addr).await.unwrap();
    let junk = vec![b'A'; 4096];
    let _ = s3.write_all(&junk).await; // the server may close mid-write
    assert!(read_to_close(&mut s3).await.is_empty());

    // The server is unharmed: a good message on a new connection is delivered.
    let mut s4 = TcpStream::connect(addr).await.unwrap();
    let msg = options("good", 3);
    s4.write_all(&msg).await.unwrap();
    let got = next(&mut rx).await;
    assert_eq!(&got.data[..], &msg[..]);
    // Only that last connection is still in the table.
    let conns = server.connections();
    assert_eq!(conns.len(), 1, "{conns:?}");
    assert_eq!(Some(conns[0].0), got.connection);
}

#[tokio::test]
async fn tcp_connection_is_reused_in_both_directions() {
    let (server, mut server_rx) = Transport::new(TransportConfig::default());
    let (client, mut client_rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tcp(any("127.0.0.1:0")).await.unwrap();
    let dest = Destination::new(TransportKind::Tcp, addr);

    let first = client
        .send(&dest, Bytes::from(options("r1", 0)))
        .await
        .unwrap();
    assert!(!first.reused);
    let id = first.connection.expect("a connection id");
    let second = client
        .send(&dest, Bytes::from(options("r2", 0)))
        .await
        .unwrap();
    assert!(second.reused);
    assert_eq!(second.connection, Some(id));
    assert_eq!(second.local, first.local);
    assert_eq!(client.connections().len(), 1);

    let a = next(&mut server_rx).await;
    let b = next(&mut server_rx).await;
    assert_eq!(a.connection, b.connection);
    assert_eq!(a.source, first.local);

    // The server's request to the client's address reuses the inbound connection
    // (the client has no listener at all, so a new connection could not succeed).
    let to_client = Destination::new(TransportKind::Tcp, a.source);
    let sent = server
        .send(&to_client, Bytes::from(options("back", 0)))
        .await
        .unwrap();
    assert!(sent.reused);
    assert_eq!(sent.connection, a.connection);
    let got = next(&mut client_rx).await;
    assert_eq!(got.connection, Some(id));
    assert_eq!(got.source, addr);
}

#[tokio::test]
async fn stale_connection_id_falls_back_to_a_new_connection() {
    let (server, mut server_rx) = Transport::new(TransportConfig::default());
    let (client, _client_rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tcp(any("127.0.0.1:0")).await.unwrap();
    let dest = Destination {
        connection: Some(sotto_net::ConnectionId(9999)),
        ..Destination::new(TransportKind::Tcp, addr)
    };
    let sent = client
        .send(&dest, Bytes::from(options("s", 0)))
        .await
        .unwrap();
    assert!(!sent.reused);
    assert_ne!(sent.connection, Some(sotto_net::ConnectionId(9999)));
    assert_eq!(next(&mut server_rx).await.source, sent.local);
}

#[tokio::test]
async fn idle_connections_are_closed() {
    let config = TransportConfig {
        idle_timeout: Duration::from_millis(200),
        ..TransportConfig::default()
    };
    let (server, _rx) = Transport::new(config);
    let addr = server.listen_tcp(any("127.0.0.1:0")).await.unwrap();
    let mut stream = TcpStream::connect(addr).await.unwrap();
    assert!(read_to_close(&mut stream).await.is_empty());
}

#[tokio::test]
async fn ipv6_loopback_udp_and_tcp() {
    let (server, mut rx) = Transport::new(TransportConfig::default());
    let (client, _crx) = Transport::new(TransportConfig::default());
    let udp = server.bind_udp(any("[::1]:0")).await.unwrap();
    let tcp = server.listen_tcp(any("[::1]:0")).await.unwrap();
    assert!(udp.is_ipv6() && tcp.is_ipv6());
    let client_udp = client.bind_udp(any("[::1]:0")).await.unwrap();

    let m1 = Bytes::from(options("v6-udp", 0));
    client
        .send(&Destination::new(TransportKind::Udp, udp), m1.clone())
        .await
        .unwrap();
    let got = next(&mut rx).await;
    assert_eq!(got.data, m1);
    assert_eq!(got.source, client_udp);

    let m2 = Bytes::from(options("v6-tcp", 4));
    let sent = client
        .send(&Destination::new(TransportKind::Tcp, tcp), m2.clone())
        .await
        .unwrap();
    assert!(sent.local.is_ipv6());
    let got = next(&mut rx).await;
    assert_eq!(got.data, m2);
    assert_eq!(got.transport, TransportKind::Tcp);
    assert_eq!(got.source, sent.local);
}

#[tokio::test]
async fn udp_send_without_a_socket_of_that_family_fails() {
    let (t, _rx) = Transport::new(TransportConfig::default());
    t.bind_udp(any("127.0.0.1:0")).await.unwrap();
    let err = t
        .send(
            &Destination::new(TransportKind::Udp, any("[::1]:5060")),
            Bytes::from_static(b"x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoUdpSocket(_)), "{err:?}");
}

#[tokio::test]
async fn connect_to_a_closed_port_fails_cleanly() {
    // Bind then drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (t, _rx) = Transport::new(TransportConfig::default());
    let err = t
        .send(
            &Destination::new(TransportKind::Tcp, port),
            Bytes::from(options("c", 0)),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Connect { .. }), "{err:?}");
    assert!(t.connections().is_empty());
}
