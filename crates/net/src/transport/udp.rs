//! UDP: sending (inline, or through a sending thread that keeps a burst from blocking the
//! runtime) and the receive loop of a bound socket.

use super::*;

impl Transport {
    pub(super) async fn send_udp(
        &self,
        remote: SocketAddr,
        local: Option<SocketAddr>,
        data: Bytes,
    ) -> Result<Sent, Error> {
        let max = self.shared.config.max_datagram_bytes;
        if data.len() > max {
            return Err(Error::TooLarge {
                len_bytes: data.len(),
                max_bytes: max,
            });
        }
        let endpoint = {
            let sockets = lock(&self.shared.udp);
            // The socket a message arrived on: its exact address, or the wildcard socket on
            // that port (a wildcard socket reports the address the peer reached it at).
            let by_local = local.and_then(|l| {
                sockets.iter().find(|e| e.local == l).or_else(|| {
                    sockets
                        .iter()
                        .find(|e| e.local.ip().is_unspecified() && e.local.port() == l.port())
                })
            });
            let by_family = || {
                sockets
                    .iter()
                    .find(|e| e.local.is_ipv4() == remote.is_ipv4())
            };
            by_local
                .or_else(by_family)
                .cloned()
                .ok_or(Error::NoUdpSocket(remote))?
        };
        let local = endpoint.local;
        let data = match &endpoint.sender {
            Some(tx) => match tx.try_send((data, remote)) {
                Ok(()) => None,
                Err(std::sync::mpsc::TrySendError::Full((data, _)))
                | Err(std::sync::mpsc::TrySendError::Disconnected((data, _))) => Some(data),
            },
            None => Some(data),
        };
        if let Some(data) = data {
            endpoint
                .socket
                .send_to(&data, remote)
                .await
                .map_err(Error::Io)?;
        }
        Ok(Sent {
            connection: None,
            local,
            reused: false,
        })
    }
}

/// The body of a UDP sending thread ([`TransportConfig::udp_send_thread`]): sends what is
/// queued, in order, until the transport is dropped. The socket shares the async socket's
/// non-blocking mode, so a full send buffer is waited out in short sleeps (bounded), then the
/// datagram is dropped, as a congested link would.
pub(super) fn udp_send_thread(
    socket: std::net::UdpSocket,
    queue: std::sync::mpsc::Receiver<(Bytes, SocketAddr)>,
) {
    const RETRIES: u32 = 200;
    const PAUSE: Duration = Duration::from_micros(50);
    while let Ok((data, remote)) = queue.recv() {
        let mut tries = 0;
        loop {
            match socket.send_to(&data, remote) {
                Ok(_) => break,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && tries < RETRIES => {
                    tries += 1;
                    std::thread::sleep(PAUSE);
                }
                Err(e) => {
                    tracing::debug!(error = %e, dest = %remote, "udp send failed");
                    break;
                }
            }
        }
    }
}

pub(super) async fn udp_loop(shared: Arc<Shared>, socket: Arc<UdpSocket>, local: SocketAddr) {
    let max = shared.config.max_datagram_bytes;
    // One byte more than the maximum, so an oversize datagram is seen as such, not truncated.
    let mut buf = vec![0u8; max.saturating_add(1)];
    let mut stop = shared.stop.clone();
    let mut routes = crate::route::LocalRoutes::new(local);
    let mut control = nix::cmsg_space!(nix::sys::time::TimeSpec);
    loop {
        let received = tokio::select! {
            _ = stop.changed() => return,
            r = recv_stamped(&socket, &mut buf, &mut control) => r,
        };
        let (n, source, received) = match received {
            Ok(v) => v,
            Err(e) => {
                // ICMP errors surface here on some systems; the socket stays usable.
                tracing::debug!(error = %e, "udp receive error");
                continue;
            }
        };
        if n > max {
            tracing::warn!(
                len_bytes = n,
                max_bytes = max,
                "oversize UDP datagram dropped"
            );
            continue;
        }
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        // Pure CRLF datagrams are keep-alives (RFC 5626 §4.4.1 uses STUN on UDP; CRLF is
        // what many UAs send anyway): nothing to deliver.
        if datagram.iter().all(|b| matches!(b, b'\r' | b'\n')) {
            continue;
        }
        let incoming = Incoming {
            data: Bytes::copy_from_slice(datagram),
            source,
            local: routes.local_for(source),
            transport: TransportKind::Udp,
            connection: None,
            tls: None,
            received,
        };
        if shared.incoming.send(incoming).await.is_err() {
            return;
        }
    }
}

/// Receives one datagram with the kernel's receive timestamp (SO_TIMESTAMPNS), converted to
/// an [`Instant`] (the time it waited is taken off now); without a timestamp, now.
async fn recv_stamped(
    socket: &UdpSocket,
    buf: &mut [u8],
    control: &mut [u8],
) -> std::io::Result<(usize, SocketAddr, std::time::Instant)> {
    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg};
    use std::os::fd::AsRawFd as _;
    loop {
        socket.readable().await?;
        let fd = socket.as_raw_fd();
        let got = socket.try_io(tokio::io::Interest::READABLE, || {
            let mut iov = [std::io::IoSliceMut::new(buf)];
            let msg = recvmsg::<SockaddrStorage>(fd, &mut iov, Some(control), MsgFlags::empty())
                .map_err(std::io::Error::from)?;
            let stamp = msg.cmsgs().ok().and_then(|mut c| {
                c.find_map(|m| match m {
                    ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                    _ => None,
                })
            });
            let source = msg.address.and_then(|a| socket_addr(&a));
            Ok((msg.bytes, source, stamp))
        });
        match got {
            Ok((n, Some(source), stamp)) => {
                let now = std::time::Instant::now();
                let waited = stamp
                    .and_then(|ts| {
                        let at = std::time::UNIX_EPOCH
                            + std::time::Duration::new(ts.tv_sec() as u64, ts.tv_nsec() as u32);
                        std::time::SystemTime::now().duration_since(at).ok()
                    })
                    .unwrap_or_default();
                return Ok((n, source, now.checked_sub(waited).unwrap_or(now)));
            }
            // A datagram without an address we know: skip it.
            Ok((_, None, _)) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
}

fn socket_addr(a: &nix::sys::socket::SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = a.as_sockaddr_in() {
        return Some(SocketAddr::V4(std::net::SocketAddrV4::from(*v4)));
    }
    a.as_sockaddr_in6()
        .map(|v6| SocketAddr::V6(std::net::SocketAddrV6::from(*v6)))
}
