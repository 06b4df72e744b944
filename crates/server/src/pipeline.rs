//! The module chain (style guide §5.4): every new request is offered to the modules in order
//! (anti_flood → sanity → authentication → registrar → router → forward); each returns a
//! [`Verdict`]. `Continue` hands the request to the next module; the first other verdict ends
//! the chain. Modules are sans-IO: time comes in as `now` (and `ctx.wall` for the stores).

use std::net::{IpAddr, SocketAddr};
use std::time::{Instant, SystemTime};

use sotto_sip::message::{Request, StatusCode, Uri};
use sotto_sip::transport::{ConnectionId, Destination, TransportKind};

pub use crate::locality::{Alias, Locality};
use crate::store_ops::{StoreAnswer, StoreOp};

/// What a module decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Hand the request to the next module.
    Continue,
    /// Answer the request here.
    Reply(Reply),
    /// Forward the request to these targets (parallel forking when several).
    Forward(Vec<Target>),
    /// Drop the request silently (flood, ban, or nothing sensible to answer).
    Drop,
    /// Ask again with the answer to this store operation in [`RequestContext::answer`] (the
    /// module is asked again from its start, the modules before it are not).
    Fetch(StoreOp),
}

/// A response the pipeline asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// Headers to add, in order.
    pub headers: Vec<(String, String)>,
}

impl Reply {
    /// A reply with no extra header.
    pub fn new(status: StatusCode) -> Self {
        Reply {
            status,
            headers: Vec::new(),
        }
    }

    /// Adds a header.
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// Wraps into a verdict.
    pub fn verdict(self) -> Verdict {
        Verdict::Reply(self)
    }
}

/// Where a target's requests go.
#[derive(Debug, Clone, PartialEq)]
pub enum NextHop {
    /// An address already known (a contact, a flow, an IP literal).
    Address(Destination),
    /// A host name to locate first (RFC 3263): the proxy asks the IO edge and waits for the
    /// candidates without blocking.
    Resolve {
        /// The URI whose host, port and transport are looked up (a Route value, the
        /// Request-URI).
        uri: Uri,
        /// Only TLS candidates (a `sips:` URI, a federated domain, a TLS inbound hop).
        tls_only: bool,
        /// The far side is another domain's server (federation): our Record-Route toward it
        /// names our domain, which it can resolve and verify.
        peer: bool,
    },
}

impl NextHop {
    /// The transport, when the address is known.
    pub fn transport(&self) -> Option<TransportKind> {
        match self {
            NextHop::Address(d) => Some(d.transport),
            NextHop::Resolve { .. } => None,
        }
    }
}

/// One place to send a forwarded request.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    /// The Request-URI the branch carries.
    pub uri: Uri,
    /// Where the branch is sent.
    pub hop: NextHop,
    /// Route values to put in front (the Path of the registration, RFC 3327), in order.
    pub route: Vec<String>,
    /// The transport the contact registered over, if it came from a registration.
    pub registered_over: Option<TransportKind>,
    /// Our address on the target's side, when known (the address its registration arrived
    /// on): what our Record-Route and Via name toward it.
    pub local: Option<SocketAddr>,
}

impl Target {
    /// A target reached through `hop`, with no Path, registration or known local address.
    pub fn new(uri: Uri, hop: NextHop) -> Self {
        Target {
            uri,
            hop,
            route: Vec::new(),
            registered_over: None,
            local: None,
        }
    }

    /// A target at a known address.
    pub fn to(uri: Uri, destination: Destination) -> Self {
        Target::new(uri, NextHop::Address(destination))
    }

    /// The destination, when the address is known.
    pub fn destination(&self) -> Option<&Destination> {
        match &self.hop {
            NextHop::Address(d) => Some(d),
            NextHop::Resolve { .. } => None,
        }
    }
}

/// A request travelling through the chain, with where it came from.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The request (modules may change it, e.g. the router pops our Route).
    pub request: Request,
    /// The peer that sent it.
    pub source: SocketAddr,
    /// The transport it came over.
    pub transport: TransportKind,
    /// Our address it arrived on.
    pub local: SocketAddr,
    /// The connection it came over (TCP/TLS).
    pub connection: Option<ConnectionId>,
    /// Identities of the TLS client certificate the connection presented (SAN URIs, then the
    /// CN), if any. The transport verified the chain before.
    pub client_identities: Vec<String>,
    /// The domains the TLS client certificate is valid for (SAN DNS names, and the hosts of
    /// user-less SAN `sip:` URIs; RFC 5922 §7.1): a peer server's.
    pub client_domains: Vec<String>,
    /// The domain of the peer server this request came from, once the federation module
    /// accepted it.
    pub federated: Option<String>,
    /// Wall-clock time (for the stores).
    pub wall: SystemTime,
    /// The authenticated user name, once the authentication module accepted the request.
    pub authenticated: Option<String>,
    /// Set by a module that saw an authentication failure; reported to every module.
    pub auth_failure: bool,
    /// The account (user name) the failed authentication was for.
    pub auth_account: Option<String>,
    /// Targets chosen by the router, for the forward module.
    pub targets: Vec<Target>,
    /// Set when a downgrade was allowed by policy: responses then carry a Warning.
    pub insecure_hop: bool,
    /// The answer to the store operation the module being asked again fetched.
    pub answer: Option<StoreAnswer>,
}

impl RequestContext {
    /// A context for `request` received from `source` over `transport`.
    pub fn new(
        request: Request,
        source: SocketAddr,
        transport: TransportKind,
        wall: SystemTime,
    ) -> Self {
        RequestContext {
            request,
            source,
            transport,
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            connection: None,
            client_identities: Vec::new(),
            client_domains: Vec::new(),
            federated: None,
            wall,
            authenticated: None,
            auth_failure: false,
            auth_account: None,
            targets: Vec::new(),
            insecure_hop: false,
            answer: None,
        }
    }
}

/// One step of the chain.
pub trait Module: Send {
    /// A short name (logs, config).
    fn name(&self) -> &'static str;

    /// Looks at a request and decides.
    fn on_request(&mut self, ctx: &mut RequestContext, now: Instant) -> Verdict;

    /// A request from `source` for `account` failed authentication (anti-flood counts these).
    fn on_auth_failure(&mut self, _source: IpAddr, _account: Option<&str>, _now: Instant) {}

    /// Reports the module's figures for metrics as `(name, value)`: a name ending in `_total`
    /// is a counter, any other a gauge (e.g. anti-flood's `bans_total`).
    fn counters(&self, _out: &mut dyn FnMut(&'static str, u64)) {}

    /// Reports what this module holds against sources at `now` (bans, lockouts), for the
    /// operator (`sotto ban list`).
    fn blocks(&self, _now: Instant, _out: &mut Vec<Block>) {}

    /// Lifts every block this module holds against `source` (`sotto ban lift`); returns how
    /// many were lifted.
    fn lift(&mut self, _source: IpAddr) -> usize {
        0
    }
}

/// A block a module holds against a source address: a ban of the whole address, or one
/// account locked out from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The module that holds it.
    pub module: &'static str,
    /// The source address.
    pub source: IpAddr,
    /// The account locked out from `source`; `None`: the whole address is banned.
    pub account: Option<String>,
    /// Why, in a few words.
    pub reason: String,
    /// Time left.
    pub remaining: std::time::Duration,
}

/// The ordered module chain.
#[derive(Default)]
pub struct Pipeline {
    modules: Vec<Box<dyn Module>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.modules.iter().map(|m| m.name()))
            .finish()
    }
}

impl Pipeline {
    /// An empty chain.
    pub fn new() -> Self {
        Pipeline::default()
    }

    /// Appends a module.
    pub fn push(&mut self, module: Box<dyn Module>) {
        self.modules.push(module);
    }

    /// The module names, in order.
    pub fn names(&self) -> Vec<&'static str> {
        self.modules.iter().map(|m| m.name()).collect()
    }

    /// Every module's blocks at `now` ([`Module::blocks`]).
    pub fn blocks(&self, now: Instant) -> Vec<Block> {
        let mut out = Vec::new();
        for m in &self.modules {
            m.blocks(now, &mut out);
        }
        out
    }

    /// Lifts every module's blocks on `source` ([`Module::lift`]); returns how many.
    pub fn lift(&mut self, source: IpAddr) -> usize {
        self.modules.iter_mut().map(|m| m.lift(source)).sum()
    }

    /// Every module's figures ([`Module::counters`]) as `(module, name, value)`.
    pub fn counters(&self, out: &mut dyn FnMut(&'static str, &'static str, u64)) {
        for m in &self.modules {
            let module = m.name();
            m.counters(&mut |name, value| out(module, name, value));
        }
    }

    /// Runs the chain. A chain that ends in `Continue` (nothing decided) answers 500, which
    /// only a misconfigured chain can reach. Returns the verdict and the deciding module.
    pub fn run(&mut self, ctx: &mut RequestContext, now: Instant) -> (Verdict, &'static str) {
        let (verdict, module, _) = self.run_from(0, ctx, now);
        (verdict, module)
    }

    /// Runs the chain from module `start` (0: the first): the verdict, the module that gave
    /// it, and its position (where to start again after a [`Verdict::Fetch`]). Modules see
    /// an authentication failure once the chain has decided, not on a fetch.
    pub fn run_from(
        &mut self,
        start: usize,
        ctx: &mut RequestContext,
        now: Instant,
    ) -> (Verdict, &'static str, usize) {
        let mut decided = (
            Reply::new(StatusCode::SERVER_INTERNAL_ERROR).verdict(),
            "none",
            self.modules.len(),
        );
        for (i, m) in self.modules.iter_mut().enumerate().skip(start) {
            let v = m.on_request(ctx, now);
            if v != Verdict::Continue {
                decided = (v, m.name(), i);
                break;
            }
        }
        if matches!(decided.0, Verdict::Fetch(_)) {
            return decided;
        }
        // An answer nobody took (a module that did not ask) is not kept for the next one.
        ctx.answer = None;
        if ctx.auth_failure {
            let ip = ctx.source.ip();
            for m in self.modules.iter_mut() {
                m.on_auth_failure(ip, ctx.auth_account.as_deref(), now);
            }
        }
        decided
    }
}
