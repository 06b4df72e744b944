//! User agents and the proxy core in one process, on virtual time: each agent's TLS flow to
//! the proxy is a pair of [`Link`]s (TLS is reliable and ordered: give it delay and jitter,
//! not loss). The proxy runs as `sotto init` configures it: a wildcard TLS listener
//! (`0.0.0.0:5061`) for a named domain, digest authentication on, memory stores.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sotto_agent::config::Encryption;
use sotto_agent::{Flow, TlsSummary, UaConfig, UaEvent, UserAgent};
use sotto_server::config::ServerConfig;
use sotto_server::proxy::{Packet, Proxy, ProxyEvent};
use sotto_sip::digest::{Algorithm, UserRecord};
use sotto_sip::message::Uri;
use sotto_sip::transport::{ConnectionId, Destination, TransportKind};
use sotto_store::{MemoryStore, UserStore};
use zeroize::Zeroizing;

use crate::clock::VirtualClock;
use crate::link::{Link, LinkConfig, LinkStats};

/// The proxy's listener, as the config `sotto init` writes it.
const LISTEN: &str = "0.0.0.0:5061";
/// The proxy's address on the emulated machine.
const PROXY_IP: Ipv4Addr = Ipv4Addr::LOCALHOST;
/// Bound on the moves of one settling round (a loop between engines is a bug).
const MAX_MOVES: usize = 100_000;

/// An agent of a [`Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgentId(pub usize);

struct Node {
    ua: UserAgent,
    /// The flow as the agent sees it (from the proxy).
    flow: Flow,
    /// Agent to proxy.
    up: Link<Bytes>,
    /// Proxy to agent.
    down: Link<Bytes>,
    events: Vec<UaEvent>,
    /// Every message the agent received, in order.
    inbox: Vec<Bytes>,
}

/// Agents and a proxy on virtual time; see the [module documentation](self).
pub struct Network {
    /// The time every engine is driven with.
    pub clock: VirtualClock,
    proxy: Proxy,
    proxy_addr: SocketAddr,
    store: Arc<MemoryStore>,
    config: ServerConfig,
    nodes: Vec<Node>,
    proxy_events: Vec<ProxyEvent>,
    unroutable: u64,
    seed: u64,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("agents", &self.nodes.len())
            .field("elapsed", &self.clock.elapsed())
            .finish_non_exhaustive()
    }
}

impl Network {
    /// A proxy for `domain` with the defaults of the config `sotto init` writes.
    pub fn new(domain: &str) -> Self {
        Self::with_config(ServerConfig::for_domain(domain))
    }

    /// A proxy with `config` on the wildcard TLS listener.
    pub fn with_config(config: ServerConfig) -> Self {
        let clock = VirtualClock::new();
        let store = Arc::new(MemoryStore::new());
        let listeners = vec![(TransportKind::Tls, LISTEN.parse().expect("listener"))];
        let proxy = Proxy::new(
            &config,
            listeners,
            store.clone(),
            store.clone(),
            sotto_crypto_rust::provider(),
            clock.now(),
        )
        .expect("a proxy for the test");
        proxy.locality().set_interfaces(vec![IpAddr::V4(PROXY_IP)]);
        Network {
            clock,
            proxy,
            proxy_addr: SocketAddr::new(IpAddr::V4(PROXY_IP), 5061),
            store,
            config,
            nodes: Vec::new(),
            proxy_events: Vec::new(),
            unroutable: 0,
            seed: 1,
        }
    }

    /// The domain served.
    pub fn domain(&self) -> &str {
        self.config.domains.first().map_or("", String::as_str)
    }

    /// Adds a user with `password` to the proxy's store.
    pub fn add_user(&mut self, user: &str, password: &str) {
        let mut r = UserRecord::new(user);
        r.set_password(
            sotto_crypto_rust::provider(),
            &self.config.realm,
            password,
            &[Algorithm::Sha256, Algorithm::Md5],
        )
        .expect("a password record");
        self.store.put(&r).expect("stored");
    }

    /// The settings of an agent for `user` (password `<user>-pw`) with `encryption`, as the
    /// account file `sotto user add` writes them, on this network's domain.
    pub fn agent_config(&self, user: &str, encryption: Encryption) -> UaConfig {
        let domain = self.domain().to_owned();
        let mut proxy = Destination::new(TransportKind::Tls, self.proxy_addr);
        proxy.server_name = Some(domain.clone());
        UaConfig {
            identity: Uri::parse(&format!("sip:{user}@{domain}")).expect("identity"),
            username: user.to_owned(),
            password: Zeroizing::new(format!("{user}-pw")),
            instance: format!(
                "urn:uuid:00000000-0000-4000-8000-{:012}",
                self.nodes.len() + 1
            ),
            register_expires: Duration::from_secs(3600),
            proxy_uri: Uri::parse(&format!("sips:{domain}")).expect("proxy URI"),
            proxy,
            encryption,
            methods: vec![sotto_agent::config::KeyExchange::Sdes],
            zrtp_preferences: Default::default(),
            zrtp_cache: None,
            dtls_certificate: None,
            trusted_hosts: Vec::new(),
            user_agent: "sotto-testkit".into(),
            tls_listen: None,
            udp_listen: None,
            sdes_without_tls: false,
            client_certificate: false,
        }
    }

    /// Adds user `user` and an agent for it (see [`Network::agent_config`]) whose flow to the
    /// proxy crosses `link` both ways; it registers at once.
    pub fn add_agent(&mut self, user: &str, encryption: Encryption, link: LinkConfig) -> AgentId {
        let config = self.agent_config(user, encryption);
        self.add_user(user, &format!("{user}-pw"));
        self.add_agent_with(config, link)
    }

    /// Adds an agent with `config`; it registers at once.
    pub fn add_agent_with(&mut self, config: UaConfig, link: LinkConfig) -> AgentId {
        let i = self.nodes.len();
        let host = u8::try_from(i + 10).expect("fewer than 245 agents");
        let local = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, host)), 40000);
        let connection = ConnectionId(i as u64 + 1);
        let mut ua = UserAgent::new(config, sotto_crypto_rust::provider()).expect("an agent");
        ua.set_flow(local, Some(connection));
        ua.register(self.clock.now()).expect("registration sent");
        self.seed += 2;
        self.nodes.push(Node {
            ua,
            flow: Flow {
                transport: TransportKind::Tls,
                remote: self.proxy_addr,
                local,
                connection: Some(connection),
                tls: Some(TlsSummary {
                    version: "TLSv1.3".into(),
                    cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
                }),
            },
            // The flow is TLS: ordered and lossless, whatever its delays.
            up: Link::new(link.as_stream(), self.seed),
            down: Link::new(link.as_stream(), self.seed + 1),
            events: Vec::new(),
            inbox: Vec::new(),
        });
        AgentId(i)
    }

    fn node(&mut self, id: AgentId) -> &mut Node {
        self.nodes.get_mut(id.0).expect("an agent of this network")
    }

    /// Agent `id`.
    pub fn ua(&mut self, id: AgentId) -> &mut UserAgent {
        &mut self.node(id).ua
    }

    /// Agent `id`'s local address (its flow's).
    pub fn address(&self, id: AgentId) -> SocketAddr {
        self.nodes
            .get(id.0)
            .map(|n| n.flow.local)
            .expect("an agent")
    }

    /// Agent `id`'s events so far.
    pub fn events(&self, id: AgentId) -> &[UaEvent] {
        self.nodes.get(id.0).map_or(&[], |n| n.events.as_slice())
    }

    /// Takes agent `id`'s events so far.
    pub fn take_events(&mut self, id: AgentId) -> Vec<UaEvent> {
        std::mem::take(&mut self.node(id).events)
    }

    /// The proxy core.
    pub fn proxy(&mut self) -> &mut Proxy {
        &mut self.proxy
    }

    /// What the proxy reported so far.
    pub fn proxy_events(&self) -> &[ProxyEvent] {
        &self.proxy_events
    }

    /// Messages the proxy sent nowhere known.
    pub fn unroutable(&self) -> u64 {
        self.unroutable
    }

    /// What agent `id`'s links did: (to the proxy, from the proxy).
    pub fn link_stats(&self, id: AgentId) -> (LinkStats, LinkStats) {
        self.nodes
            .get(id.0)
            .map(|n| (n.up.stats(), n.down.stats()))
            .expect("an agent")
    }

    /// Changes how agent `id`'s links behave from now on.
    pub fn set_link(&mut self, id: AgentId, link: LinkConfig) {
        let n = self.node(id);
        n.up.set_config(link.as_stream());
        n.down.set_config(link.as_stream());
    }

    /// Every message agent `id` received so far, in order.
    pub fn inbox(&self, id: AgentId) -> &[Bytes] {
        self.nodes.get(id.0).map_or(&[], |n| n.inbox.as_slice())
    }

    /// Sends `bytes` to the proxy over agent `id`'s flow, as if the agent had (a peer that
    /// misbehaves, or a message the agent has no verb for).
    pub fn send_raw(&mut self, id: AgentId, bytes: Bytes) {
        let now = self.clock.now();
        self.node(id).up.send(now, bytes);
    }

    /// Moves every message due now between the engines until nothing moves.
    pub fn settle(&mut self) {
        let now = self.clock.now();
        let wall = self.clock.wall();
        for _ in 0..MAX_MOVES {
            let mut moved = false;
            for n in &mut self.nodes {
                while let Some(out) = n.ua.poll_transmit() {
                    moved = true;
                    if out.destination.remote == self.proxy_addr {
                        n.up.send(now, out.bytes);
                    } else {
                        self.unroutable += 1;
                    }
                }
                while let Some(ev) = n.ua.poll_event() {
                    moved = true;
                    n.events.push(ev);
                }
            }
            while let Some(t) = self.proxy.poll_transmit() {
                moved = true;
                let to = self.nodes.iter_mut().find(|n| {
                    t.destination
                        .connection
                        .is_some_and(|c| n.flow.connection == Some(c))
                        || t.destination.remote == n.flow.local
                });
                match to {
                    Some(n) => n.down.send(now, t.data),
                    None => self.unroutable += 1,
                }
            }
            while let Some(ev) = self.proxy.poll_event() {
                moved = true;
                self.proxy_events.push(ev);
            }
            for n in &mut self.nodes {
                while let Some(data) = n.up.poll_receive(now) {
                    moved = true;
                    let packet = Packet {
                        data,
                        source: n.flow.local,
                        local: self.proxy_addr,
                        transport: TransportKind::Tls,
                        connection: n.flow.connection,
                        client_identities: Vec::new(),
                        client_domains: Vec::new(),
                    };
                    self.proxy.handle_packet(packet, now, wall);
                }
                while let Some(data) = n.down.poll_receive(now) {
                    moved = true;
                    n.inbox.push(data.clone());
                    let flow = n.flow.clone();
                    n.ua.handle_incoming(data, &flow, now);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("messages kept moving at one instant: a loop between engines");
    }

    /// The next instant something is due (a timer, a message arriving).
    fn next_due(&self) -> Option<Instant> {
        self.nodes
            .iter()
            .flat_map(|n| {
                [
                    n.ua.poll_timeout(),
                    n.up.poll_timeout(),
                    n.down.poll_timeout(),
                ]
            })
            .chain([self.proxy.poll_timeout()])
            .flatten()
            .min()
    }

    /// Runs until `done` holds or `limit` of virtual time has passed; whether it held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Network) -> bool) -> bool {
        let end = self.clock.now() + limit;
        for _ in 0..MAX_MOVES * 10 {
            self.settle();
            if done(self) {
                return true;
            }
            match self.next_due() {
                Some(t) if t <= end => {
                    self.clock.advance_to(t);
                    let now = self.clock.now();
                    for n in &mut self.nodes {
                        if n.ua.poll_timeout().is_some_and(|t| t <= now) {
                            n.ua.handle_timeout(now);
                        }
                    }
                    if self.proxy.poll_timeout().is_some_and(|t| t <= now) {
                        self.proxy.handle_timeout(now);
                    }
                }
                _ => {
                    self.clock.advance_to(end);
                    self.settle();
                    return done(self);
                }
            }
        }
        panic!("a timer kept firing without time moving: an engine's poll_timeout is stuck");
    }

    /// Runs for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(d, |_| false);
    }

    /// Whether agent `id` is registered.
    pub fn ua_registered(&self, id: AgentId) -> bool {
        self.nodes.get(id.0).is_some_and(|n| n.ua.is_registered())
    }

    /// Whether agent `id` has an event matching `f`.
    pub fn saw(&self, id: AgentId, f: impl Fn(&UaEvent) -> bool) -> bool {
        self.events(id).iter().any(f)
    }
}
