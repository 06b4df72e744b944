//! Which of our addresses a datagram arrived on when its socket is bound to a wildcard
//! (`0.0.0.0`, `[::]`): the address the kernel would answer its sender from. Found once per
//! peer address by connecting a throw-away UDP socket toward it (no packet is sent), then
//! kept; the proxy names that address in its Via and Record-Route.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// Peers remembered at most (a flood of sources cannot grow it without bound).
const MAX_PEERS: usize = 4096;

/// The local address of each peer of one wildcard-bound socket.
#[derive(Debug)]
pub(crate) struct LocalRoutes {
    bound: SocketAddr,
    peers: HashMap<IpAddr, IpAddr>,
}

impl LocalRoutes {
    /// For a socket bound to `bound`.
    pub(crate) fn new(bound: SocketAddr) -> Self {
        LocalRoutes {
            bound,
            peers: HashMap::new(),
        }
    }

    /// Our address for datagrams from `source`: the bound address itself unless it is a
    /// wildcard; the bound address again if the route cannot be found.
    pub(crate) fn local_for(&mut self, source: SocketAddr) -> SocketAddr {
        if !self.bound.ip().is_unspecified() {
            return self.bound;
        }
        let peer = source.ip().to_canonical();
        if let Some(ip) = self.peers.get(&peer) {
            return SocketAddr::new(*ip, self.bound.port());
        }
        let Some(ip) = route_to(peer) else {
            return self.bound;
        };
        if self.peers.len() >= MAX_PEERS {
            self.peers.clear();
        }
        self.peers.insert(peer, ip);
        SocketAddr::new(ip, self.bound.port())
    }
}

/// The source address the kernel picks to reach `peer`.
fn route_to(peer: IpAddr) -> Option<IpAddr> {
    let any = match peer {
        IpAddr::V4(_) => SocketAddr::from(([0, 0, 0, 0], 0)),
        IpAddr::V6(_) => SocketAddr::from(([0u16; 8], 0)),
    };
    let probe = UdpSocket::bind(any).ok()?;
    probe.connect(SocketAddr::new(peer, 9)).ok()?;
    let ip = probe.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_socket_names_the_address_toward_the_peer() {
        let mut r = LocalRoutes::new("0.0.0.0:5060".parse().unwrap());
        let local = r.local_for("127.0.0.5:40000".parse().unwrap());
        assert!(local.ip().is_loopback(), "{local}");
        assert_eq!(local.port(), 5060);
        // IPv4-mapped sources of a dual-stack socket too.
        let mut r = LocalRoutes::new("[::]:5060".parse().unwrap());
        let local = r.local_for("[::ffff:127.0.0.1]:40000".parse().unwrap());
        assert!(local.ip().is_loopback(), "{local}");
        // A bound address is itself.
        let mut r = LocalRoutes::new("127.0.0.1:5060".parse().unwrap());
        assert_eq!(
            r.local_for("127.0.0.9:1".parse().unwrap()),
            "127.0.0.1:5060".parse::<SocketAddr>().unwrap()
        );
    }
}
