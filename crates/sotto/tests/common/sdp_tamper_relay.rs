//! A UDP SIP forwarder in front of a callee that rewrites what the callee's SDP says of its
//! DTLS certificate (`a=fingerprint`), as a proxy on the signalling path could: the media
//! still flows straight between the two ends, and the caller must notice that the
//! certificate it meets on the media path is not the one the SDP named.

#![allow(dead_code, unreachable_pub)]

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running relay; stopped on drop.
pub struct SdpTamperRelay {
    /// The SIP port the caller calls (`sip:bob@127.0.0.1:<sip>`).
    pub sip: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn bind() -> UdpSocket {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind relay socket");
    s.set_read_timeout(Some(Duration::from_millis(5)))
        .expect("read timeout");
    s
}

fn port(s: &UdpSocket) -> u16 {
    s.local_addr().expect("local addr").port()
}

/// `msg` with every `from` replaced by `to` in its head, `a=fingerprint` lines of its body
/// replaced by `fingerprint` (when given), and its Content-Length recomputed.
fn rewrite(msg: &str, swaps: &[(String, String)], fingerprint: Option<&str>) -> String {
    let (head, body) = msg.split_once("\r\n\r\n").unwrap_or((msg, ""));
    let body: String = body
        .split_inclusive("\r\n")
        .map(|l| match fingerprint {
            Some(f) if l.starts_with("a=fingerprint:") => format!("a=fingerprint:{f}\r\n"),
            _ => l.to_owned(),
        })
        .collect();
    let mut head = head.to_owned();
    for (from, to) in swaps {
        head = head.replace(from.as_str(), to);
    }
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("content-length"))
        .collect();
    let cl = format!("Content-Length: {}", body.len());
    lines.push(&cl);
    format!("{}\r\n\r\n{body}", lines.join("\r\n"))
}

impl SdpTamperRelay {
    /// A relay in front of the callee's SIP port `callee_sip` that writes `fingerprint`
    /// (e.g. `sha-256 AB:…`) in place of the callee's in every SDP it passes back.
    pub fn start(callee_sip: u16, fingerprint: String) -> SdpTamperRelay {
        let s1 = bind(); // faces the caller
        let s2 = bind(); // faces the callee
        let (sip, s2_port) = (port(&s1), port(&s2));
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            let callee: SocketAddr = ([127, 0, 0, 1], callee_sip).into();
            let mut caller: Option<SocketAddr> = None;
            let mut buf = [0u8; 8192];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((n, src)) = s1.recv_from(&mut buf) {
                    caller = Some(src);
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let swaps = [
                        (
                            format!("127.0.0.1:{}", src.port()),
                            format!("127.0.0.1:{s2_port}"),
                        ),
                        (
                            format!("127.0.0.1:{sip}"),
                            format!("127.0.0.1:{callee_sip}"),
                        ),
                    ];
                    let _ = s2.send_to(rewrite(&text, &swaps, None).as_bytes(), callee);
                }
                if let (Ok((n, _)), Some(c)) = (s2.recv_from(&mut buf), caller) {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    let swaps = [
                        (
                            format!("127.0.0.1:{s2_port}"),
                            format!("127.0.0.1:{}", c.port()),
                        ),
                        (
                            format!("127.0.0.1:{callee_sip}"),
                            format!("127.0.0.1:{sip}"),
                        ),
                    ];
                    let out = rewrite(&text, &swaps, Some(&fingerprint));
                    let _ = s1.send_to(out.as_bytes(), c);
                }
            }
        });
        SdpTamperRelay {
            sip,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SdpTamperRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
