//! What "this server" means (RFC 3261 §16.4: a Route or Request-URI naming us; §16.6: what
//! our Via and Record-Route name): our domains, aliases, listeners, and the machine's
//! interface addresses behind wildcard listeners.

use std::net::{IpAddr, SocketAddr};
use std::sync::RwLock;

use sotto_sip::message::{Scheme, Uri};
use sotto_sip::transport::TransportKind;

/// One `[server] aliases` entry: a host (name or IP address) that means this server, on
/// every port we listen on or on the one given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// Lower case, IPv6 without brackets.
    pub host: String,
    /// The port, if the alias is for one port only.
    pub port: Option<u16>,
}

impl Alias {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
    pub fn parse(text: &str) -> Option<Alias> {
        let t = text.trim();
        if t.is_empty() {
            return None;
        }
        let unbracketed = t
            .strip_prefix('[')
            .and_then(|r| r.strip_suffix(']'))
            .unwrap_or(t);
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Some(Alias {
                host: ip.to_string(),
                port: None,
            });
        }
        if let Ok(sa) = t.parse::<SocketAddr>() {
            return Some(Alias {
                host: sa.ip().to_string(),
                port: Some(sa.port()),
            });
        }
        let (host, port) = match t.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse().ok()?)),
            None => (t, None),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ok = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        ok.then(|| Alias {
            host: host.to_ascii_lowercase(),
            port,
        })
    }
}

/// The server's own names and addresses: what "local" and "this server" mean.
///
/// A wildcard listener (`0.0.0.0`, `[::]`) stands for every address of the machine's
/// interfaces ([`Locality::set_interfaces`], enumerated by the IO edge at start and on
/// change) and for the whole loopback network; `aliases` add names and addresses (Flexisip's
/// `aliases`, kamailio's `alias`).
#[derive(Debug, Default)]
pub struct Locality {
    /// Local domains (lower case).
    pub domains: Vec<String>,
    /// Other names and addresses of this server.
    pub aliases: Vec<Alias>,
    /// Listening addresses, with the transport of each.
    pub listeners: Vec<(TransportKind, SocketAddr)>,
    /// The host our Record-Route and Via name, when set (a public name or address); else
    /// the address a request arrived on.
    pub public_host: Option<String>,
    /// The machine's interface addresses (for wildcard listeners).
    interfaces: RwLock<Vec<IpAddr>>,
}

/// The default port of a URI: 5061 for TLS (`sips:`, `transport=tls`), else 5060.
fn default_port_of(uri: &Uri) -> u16 {
    let tls = uri.scheme() == Scheme::Sips
        || uri
            .transport()
            .is_some_and(|t| t.eq_ignore_ascii_case("tls"));
    if tls { 5061 } else { 5060 }
}

/// A host without IPv6 brackets, lower case.
fn bare(host: &str) -> String {
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl Locality {
    /// The locality of `domains` served on `listeners`.
    pub fn new(domains: Vec<String>, listeners: Vec<(TransportKind, SocketAddr)>) -> Self {
        Locality {
            domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            listeners,
            ..Locality::default()
        }
    }

    /// Replaces the interface addresses wildcard listeners stand for.
    pub fn set_interfaces(&self, addresses: Vec<IpAddr>) {
        // A poisoned lock only means another thread panicked while writing a Vec: take it.
        let mut w = self.interfaces.write().unwrap_or_else(|e| e.into_inner());
        *w = addresses;
    }

    /// The interface addresses known.
    pub fn interfaces(&self) -> Vec<IpAddr> {
        self.interfaces
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether `ip` is an address of this server: a listener's, or (behind a wildcard
    /// listener of its family) an interface's or a loopback one; or an alias.
    pub fn is_local_ip(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        let wildcard_v4 = self
            .listeners
            .iter()
            .any(|(_, a)| a.ip() == IpAddr::from([0u8; 4]));
        let wildcard_v6 = self
            .listeners
            .iter()
            .any(|(_, a)| a.ip() == IpAddr::from([0u16; 8]));
        if self.listeners.iter().any(|(_, a)| a.ip() == ip) {
            return true;
        }
        // `[::]` on Linux takes IPv4 too (dual stack).
        let wildcard = match ip {
            IpAddr::V4(_) => wildcard_v4 || wildcard_v6,
            IpAddr::V6(_) => wildcard_v6,
        };
        if wildcard
            && (ip.is_loopback()
                || self
                    .interfaces
                    .read()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .any(|a| a.to_canonical() == ip))
        {
            return true;
        }
        self.aliases
            .iter()
            .any(|a| a.host.parse::<IpAddr>().is_ok_and(|h| h == ip))
    }

    /// Whether `host` (a domain, an alias or an IP literal, possibly in brackets) is ours.
    pub fn is_local_host(&self, host: &str) -> bool {
        let h = bare(host);
        if self.domains.contains(&h) || self.aliases.iter().any(|a| a.host == h) {
            return true;
        }
        h.parse::<IpAddr>().is_ok_and(|ip| self.is_local_ip(ip))
    }

    fn listens_on_port(&self, port: u16) -> bool {
        self.listeners.iter().any(|(_, a)| a.port() == port)
    }

    /// Whether `uri` names this server itself: one of our domains or aliases (on one of our
    /// ports, or with no port), or one of our addresses on one of our ports (the URI's
    /// default port when it gives none: `sip:127.0.0.1` is port 5060).
    pub fn is_self(&self, uri: &Uri) -> bool {
        let h = bare(uri.host());
        let port = uri.port();
        if self.domains.contains(&h) {
            return port.is_none_or(|p| self.listens_on_port(p));
        }
        for a in self.aliases.iter().filter(|a| a.host == h) {
            let ok = match a.port {
                Some(ap) => port.unwrap_or_else(|| default_port_of(uri)) == ap,
                None => port.is_none_or(|p| self.listens_on_port(p)),
            };
            if ok {
                return true;
            }
        }
        h.parse::<IpAddr>().is_ok_and(|ip| {
            self.is_local_ip(ip)
                && self.listens_on_port(port.unwrap_or_else(|| default_port_of(uri)))
        })
    }

    /// Whether sending to `addr` over `transport` would reach this server itself.
    pub fn is_own_address(&self, transport: TransportKind, addr: SocketAddr) -> bool {
        self.listeners
            .iter()
            .any(|(t, a)| *t == transport && a.port() == addr.port())
            && self.is_local_ip(addr.ip())
    }

    /// The listener for `transport`, if any.
    pub fn listener(&self, transport: TransportKind) -> Option<SocketAddr> {
        self.listeners
            .iter()
            .find(|(t, _)| *t == transport)
            .map(|(_, a)| *a)
    }

    /// Our address toward `remote` over `transport`: the listener's own address when it is
    /// not a wildcard; else `known` (the address the peer's messages arrive on) when given;
    /// else a loopback address for a loopback peer, else the first non-loopback interface
    /// address of the peer's family.
    pub fn local_ip_towards(
        &self,
        transport: TransportKind,
        remote: Option<IpAddr>,
        known: Option<IpAddr>,
    ) -> Option<IpAddr> {
        let listener = self.listener(transport)?.ip();
        if !listener.is_unspecified() {
            return Some(listener);
        }
        let v4 = remote.is_none_or(|r| r.to_canonical().is_ipv4());
        if let Some(k) = known.map(|k| k.to_canonical())
            && !k.is_unspecified()
            && k.is_ipv4() == v4
        {
            return Some(k);
        }
        if remote.is_some_and(|r| r.to_canonical().is_loopback()) {
            return Some(if v4 {
                IpAddr::from([127, 0, 0, 1])
            } else {
                IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1])
            });
        }
        let interfaces = self.interfaces();
        interfaces
            .iter()
            .find(|a| a.is_ipv4() == v4 && !a.is_loopback())
            .or_else(|| interfaces.iter().find(|a| a.is_ipv4() == v4))
            .copied()
    }

    /// `host:port` naming us on `transport` toward `remote` (see
    /// [`Locality::local_ip_towards`]), the configured public host first; the first domain
    /// when nothing better is known.
    pub fn advertised(
        &self,
        transport: TransportKind,
        remote: Option<IpAddr>,
        known: Option<IpAddr>,
    ) -> Option<String> {
        let port = self.listener(transport)?.port();
        let host = match &self.public_host {
            Some(h) => h.clone(),
            None => match self.local_ip_towards(transport, remote, known) {
                Some(IpAddr::V6(ip)) => format!("[{ip}]"),
                Some(ip) => ip.to_string(),
                None => self
                    .domains
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "localhost".into()),
            },
        };
        Some(format!("{host}:{port}"))
    }

    /// The host another domain's server reaches us by (federation): the public host, else
    /// our first domain (its certificate names it; the peer resolves it by DNS).
    pub fn peer_host(&self) -> String {
        self.public_host
            .clone()
            .or_else(|| self.domains.first().cloned())
            .unwrap_or_else(|| "localhost".into())
    }
}

#[cfg(test)]
mod tests;
