//! Back-pressure on a TCP connection both ways at once must not deadlock the transport.
//!
//! The consumer (like the server's driver) stops reading the incoming queue while it sends
//! many messages on one connection, more than that connection's outbound queue holds; the
//! peer meanwhile sends many messages, more than the incoming queue holds. The connection's
//! task must keep writing while it waits for room in the incoming queue: it used to wait
//! only for that room, the consumer waited for room in the outbound queue, and the server
//! hung for good (the proxy bench's `call_tls` at 3000 calls/s).
//!
//! Bounded: fixed message counts, every wait under [`WAIT`] (a failure bound, not a measure).

use std::time::Duration;

use bytes::Bytes;
use sotto_net::{Transport, TransportConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(20);
/// Messages each way: above the incoming queue (1 here) and the 64-message outbound queue the
/// connections had when this hung (it is now bounded in bytes, and sends never wait).
const N: usize = 300;

fn message(i: usize) -> String {
    format!(
        "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:1;branch=z9hG4bK{i}\r\n\
         From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: {i}\r\n\
         CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    )
}

#[tokio::test]
async fn sending_while_the_peer_floods_does_not_deadlock() {
    let (transport, mut rx) = Transport::new(TransportConfig {
        incoming_queue: 1,
        ..TransportConfig::default()
    });
    let addr = transport
        .listen_tcp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let peer = TcpStream::connect(addr).await.unwrap();
    let (mut peer_rd, mut peer_wr) = peer.into_split();
    // The peer writes N messages and reads everything sent to it, concurrently.
    let writer = tokio::spawn(async move {
        for i in 0..N {
            peer_wr.write_all(message(i).as_bytes()).await.unwrap();
        }
        peer_wr
    });
    let want = N * message(0).len();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while got.len() < want {
            let n = peer_rd.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed after {} bytes", got.len());
            got.extend_from_slice(&buf[..n]);
        }
        got
    });
    let work = async {
        // The first message names the connection; then N sends without reading.
        let first = rx.recv().await.expect("a message");
        for i in 0..N {
            transport
                .reply(&first, Bytes::from(message(i)))
                .await
                .expect("queued");
        }
        // Now everything the peer sent arrives too.
        for _ in 1..N {
            rx.recv().await.expect("a message");
        }
    };
    tokio::time::timeout(WAIT, work)
        .await
        .expect("the transport deadlocked: sends and receives stopped");
    let got = tokio::time::timeout(WAIT, reader)
        .await
        .expect("the peer got everything")
        .unwrap();
    let expected: String = (0..N).map(message).collect();
    assert_eq!(String::from_utf8(got).unwrap(), expected);
    drop(writer.await.unwrap());
}
