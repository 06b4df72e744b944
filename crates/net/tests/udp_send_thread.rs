//! UDP datagrams sent from the per-socket sending thread
//! (`TransportConfig::udp_send_thread`): every one arrives, in order, from the bound address,
//! and replies still come back through the async receive path.
//!
//! Loopback only; every wait is bounded by [`WAIT`] (a failure bound, never a measure).

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::{WAIT, next, options};
use sotto_net::{Destination, Transport, TransportConfig, TransportKind};
use tokio::net::UdpSocket;

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("socket address")
}

#[tokio::test]
async fn datagrams_leave_from_the_sending_thread_in_order() {
    let (sender, mut sender_rx) = Transport::new(TransportConfig {
        udp_send_thread: true,
        ..TransportConfig::default()
    });
    let local = sender.bind_udp(loopback()).await.unwrap();
    let peer = UdpSocket::bind(loopback()).await.unwrap();
    let peer_addr = peer.local_addr().unwrap();

    // Sent in windows, each read before the next is sent: in flight at once, a window takes
    // far less than any receive buffer (the kernel accounts about 2 KiB per small datagram),
    // so every datagram must arrive whatever the machine's buffer sizes or load; the order
    // within and across windows is the sending thread's.
    const COUNT: usize = 200;
    const WINDOW: usize = 16;
    let dest = Destination::new(TransportKind::Udp, peer_addr);
    let mut buf = vec![0u8; 2048];
    for window in (0..COUNT).step_by(WINDOW) {
        for i in window..window + WINDOW {
            let sent = sender
                .send(&dest, Bytes::from(options(&format!("thread-{i}"), 0)))
                .await
                .unwrap();
            assert_eq!(sent.local, local);
        }
        for i in window..window + WINDOW {
            let (n, from) = tokio::time::timeout(WAIT, peer.recv_from(&mut buf))
                .await
                .expect("a datagram was lost or late")
                .unwrap();
            assert_eq!(from, local, "sent from the bound socket");
            let text = String::from_utf8_lossy(&buf[..n]);
            assert!(
                text.contains(&format!("branch=z9hG4bK-thread-{i}\r\n")),
                "datagram {i} out of order: {text}"
            );
        }
    }

    // The receive side is unchanged: a datagram to the bound socket reaches the receiver.
    peer.send_to(&options("reply", 0), local).await.unwrap();
    let got = next(&mut sender_rx).await;
    assert_eq!(got.source, peer_addr);
    assert_eq!(got.transport, TransportKind::Udp);
}
