//! Sending on a named connection only (`Transport::send_on`), opening connections in the
//! background (`Transport::send_nowait`), and bursts written whole and in order.
//!
//! Loopback only; every wait is bounded by [`WAIT`] (a failure bound, never a measure).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use common::{Ca, WAIT, next, options};
use sotto_net::tls::{self, ClientAuth};
use sotto_net::{Destination, Error, Queued, Transport, TransportConfig, TransportKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("socket address")
}

/// Waits (bounded) until `transport` has no connection left.
async fn until_no_connections(transport: &Transport) {
    tokio::time::timeout(WAIT, async {
        while !transport.connections().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the connection was not closed");
}

/// Reads exactly `len` bytes from `stream`, bounded by [`WAIT`].
async fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    tokio::time::timeout(WAIT, stream.read_exact(&mut buf))
        .await
        .expect("timed out reading")
        .expect("read failed");
    buf
}

#[tokio::test]
async fn send_on_uses_the_named_connection_and_fails_fast_when_it_is_gone() {
    let (server, mut rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tcp(loopback()).await.unwrap();
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&options("flow-1", 0)).await.unwrap();
    let got = next(&mut rx).await;
    let id = got.connection.expect("a connection id");

    // On the connection it names: delivered.
    let response = Bytes::from_static(b"SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    let sent = server
        .send_on(&got.reply_destination(), response.clone())
        .await
        .unwrap();
    assert_eq!(sent.connection, Some(id));
    assert!(sent.reused);
    assert_eq!(read_exactly(&mut client, response.len()).await, response);

    // A listener standing where a fallback connect would go.
    let trap = TcpListener::bind(loopback()).await.unwrap();
    let trap_addr = trap.local_addr().unwrap();

    // The id names a connection to another peer: refused, and nothing new is opened.
    let other_peer = Destination {
        connection: Some(id),
        ..Destination::new(TransportKind::Tcp, trap_addr)
    };
    let err = server
        .send_on(&other_peer, Bytes::from(options("x", 0)))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::NoConnection { connection: Some(c), .. } if c == id),
        "{err:?}"
    );
    // No id at all: refused too.
    let err = server
        .send_on(
            &Destination::new(TransportKind::Tcp, trap_addr),
            Bytes::from(options("y", 0)),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::NoConnection {
                connection: None,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(server.connections().len(), 1);

    // The client goes away: its flow is gone and send_on says so at once, without
    // connecting anywhere (a connect would show in the table, even while under way).
    drop(client);
    until_no_connections(&server).await;
    let err = server
        .send_on(&got.reply_destination(), response.clone())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoConnection { .. }), "{err:?}");
    assert!(server.connections().is_empty());

    // `send` to the same stale id does fall back to connecting to the address.
    let stale = Destination {
        connection: Some(id),
        ..Destination::new(TransportKind::Tcp, trap_addr)
    };
    let sent = server
        .send(&stale, Bytes::from(options("z", 0)))
        .await
        .unwrap();
    assert!(!sent.reused);
    assert_ne!(sent.connection, Some(id));
    let (mut accepted, _) = tokio::time::timeout(WAIT, trap.accept())
        .await
        .unwrap()
        .unwrap();
    let z = options("z", 0);
    assert_eq!(read_exactly(&mut accepted, z.len()).await, z);
}

#[tokio::test]
async fn send_on_over_udp_is_a_plain_send() {
    let (t, _rx) = Transport::new(TransportConfig::default());
    t.bind_udp(loopback()).await.unwrap();
    let peer = UdpSocket::bind(loopback()).await.unwrap();
    let dest = Destination::new(TransportKind::Udp, peer.local_addr().unwrap());
    let data = Bytes::from(options("udp", 3));
    let sent = t.send_on(&dest, data.clone()).await.unwrap();
    assert_eq!(sent.connection, None);
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf.get(..n), Some(&data[..]));
}

#[tokio::test]
async fn send_nowait_queues_behind_a_connection_being_opened() {
    let listener = TcpListener::bind(loopback()).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (client, _rx) = Transport::new(TransportConfig::default());
    let dest = Destination::new(TransportKind::Tcp, addr);
    let first = options("bg-1", 5);
    let second = options("bg-2", 0);

    let Queued::Connecting(connecting) = client
        .send_nowait(&dest, Bytes::from(first.clone()))
        .await
        .unwrap()
    else {
        panic!("a new connection was expected");
    };
    // Entered in the table at once: the second message queues on it, in order.
    let Queued::Sent(queued) = client
        .send_nowait(&dest, Bytes::from(second.clone()))
        .await
        .unwrap()
    else {
        panic!("the second message should queue on the connection being opened");
    };
    assert_eq!(queued.connection, Some(connecting.connection));
    assert!(queued.reused);
    let id = connecting.connection;

    let opened = tokio::time::timeout(WAIT, connecting.outcome())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.connection, Some(id));
    assert!(!opened.local.ip().is_unspecified());
    let (mut peer, from) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(from, opened.local);
    let mut want = first.clone();
    want.extend_from_slice(&second);
    assert_eq!(read_exactly(&mut peer, want.len()).await, want);

    // Once open, a send reports the connection's real local address.
    let third = client
        .send(&dest, Bytes::from(options("bg-3", 0)))
        .await
        .unwrap();
    assert_eq!(third.local, opened.local);
    assert_eq!(third.connection, Some(id));
}

#[tokio::test]
async fn send_nowait_does_not_wait_for_a_stuck_tls_handshake() {
    // A TCP listener that accepts and then says nothing: a TLS handshake with it never ends.
    let stuck = TcpListener::bind(loopback()).await.unwrap();
    let stuck_addr = stuck.local_addr().unwrap();
    let hold = tokio::spawn(async move {
        let (s, _) = stuck.accept().await.unwrap();
        s
    });
    let ca = Ca::new("send_on test CA");
    let (client, _rx) = Transport::new(TransportConfig {
        tls_client: Some(tls::client_config(vec![ca.cert()], None).unwrap()),
        handshake_timeout: Duration::from_millis(300),
        ..TransportConfig::default()
    });
    client.bind_udp(loopback()).await.unwrap();
    let udp_peer = UdpSocket::bind(loopback()).await.unwrap();

    let Queued::Connecting(connecting) = client
        .send_nowait(
            &Destination::new(TransportKind::Tls, stuck_addr),
            Bytes::from(options("stuck", 0)),
        )
        .await
        .unwrap()
    else {
        panic!("a new connection was expected");
    };
    // While that handshake hangs, other sends go out.
    let data = Bytes::from(options("meanwhile", 0));
    client
        .send(
            &Destination::new(TransportKind::Udp, udp_peer.local_addr().unwrap()),
            data.clone(),
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(WAIT, udp_peer.recv_from(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(buf.get(..n), Some(&data[..]));

    // The handshake then times out; the connection leaves the table.
    let err = tokio::time::timeout(WAIT, connecting.outcome())
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::Handshake { .. }), "{err:?}");
    assert!(client.connections().is_empty());
    drop(hold);
}

#[tokio::test]
async fn a_burst_on_one_tls_connection_arrives_whole_and_in_order() {
    const N: usize = 400;
    let ca = Ca::new("burst CA");
    let leaf = ca.server(&["127.0.0.1"]);
    let server_config =
        tls::server_config(leaf.chain.clone(), leaf.key(), ClientAuth::None).unwrap();
    let (server, mut server_rx) = Transport::new(TransportConfig::default());
    let addr = server.listen_tls(loopback(), server_config).await.unwrap();
    let (client, mut client_rx) = Transport::new(TransportConfig {
        tls_client: Some(tls::client_config(vec![ca.cert()], None).unwrap()),
        ..TransportConfig::default()
    });
    client
        .send(
            &Destination::new(TransportKind::Tls, addr),
            Bytes::from(options("hello", 0)),
        )
        .await
        .unwrap();
    let got = next(&mut server_rx).await;
    let back = got.reply_destination();

    // N messages of ~700 bytes (well over one 64 KiB write) queued as fast as possible, from
    // another task, while this one receives.
    let sender = {
        let server = server.clone();
        tokio::spawn(async move {
            for i in 0..N {
                let m = Bytes::from(options(&format!("burst-{i}"), 400));
                server.send_on(&back, m).await.unwrap();
            }
        })
    };
    for i in 0..N {
        let m = next(&mut client_rx).await;
        assert_eq!(
            &m.data[..],
            &options(&format!("burst-{i}"), 400)[..],
            "message {i}"
        );
    }
    tokio::time::timeout(WAIT, sender).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_peer_that_does_not_keep_up_gets_queue_full_instead_of_stalling_the_sender() {
    // Ten messages of this size fill the queue exactly.
    let one = options("fill", 800);
    let max = 10 * one.len();
    let (server, mut rx) = Transport::new(TransportConfig {
        max_queued_bytes: max,
        ..TransportConfig::default()
    });
    let addr = server.listen_tcp(loopback()).await.unwrap();
    let mut client = TcpStream::connect(addr).await.unwrap();
    client.write_all(&options("q", 0)).await.unwrap();
    let got = next(&mut rx).await;
    let back = got.reply_destination();
    let id = got.connection.expect("a connection id");

    // A stream send queues without waiting, so on this single-threaded runtime the
    // connection's task cannot write anything until this loop yields: the queue fills.
    let mut queued = 0;
    let err = loop {
        match server.send_on(&back, Bytes::from(one.clone())).await {
            Ok(_) => queued += 1,
            Err(e) => break e,
        }
        assert!(queued <= 10, "the queue took more than its bound");
    };
    assert_eq!(queued, 10);
    assert!(
        matches!(err, Error::QueueFull { connection, queued_bytes } if connection == id && queued_bytes == max),
        "{err:?}"
    );
    // `send` refuses too, rather than opening another connection to the peer.
    let err = server
        .send(&back, Bytes::from(one.clone()))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::QueueFull { .. }), "{err:?}");
    assert_eq!(server.connections().len(), 1);

    // What was queued is written whole, and the queue takes messages again.
    assert_eq!(
        read_exactly(&mut client, queued * one.len()).await,
        one.repeat(queued)
    );
    tokio::time::timeout(WAIT, async {
        while server
            .send_on(&back, Bytes::from(one.clone()))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the queue never drained");
    assert_eq!(read_exactly(&mut client, one.len()).await, one);
}
