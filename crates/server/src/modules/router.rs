//! Router: chooses where a request goes (RFC 3261 §16.4, §16.5, §16.12; RFC 5627 §5.4).
//!
//! - Route values naming this server are removed (loose routing, §16.4); if Route values
//!   remain, the request goes to the first one, else an in-dialog request goes to its
//!   Request-URI (the remote target).
//! - OPTIONS to the server itself is answered here (200, §11.2).
//! - A Request-URI in a local domain is looked up in the location service: every active
//!   binding becomes a target (parallel forking); a GRUU selects its instance only. No binding
//!   gives 480, whether the user exists or not (no enumeration).
//! - Anything else is refused with 403: this is not an open relay.
//!
//! - With federation on, a request of one of our authenticated users for another domain
//!   goes to that domain's server, found by DNS (RFC 3263, TLS only).
//!
//! A next hop that is an IP literal is a known address; a host name is located by DNS
//! (RFC 3263) before the branch is sent ([`NextHop::Resolve`]). A contact that registered
//! over TCP/TLS is reached over its registration connection (RFC 5626 flow reuse).
//!
//! Flow tokens (RFC 5626 §5.3, [`crate::proxy::flow`]): a Route value naming us may carry the
//! flow token our Record-Route put there. Each is verified (a forged or altered one gives
//! 403). The last of our values names the side the request goes to: if it carries a token
//! (not naming the connection the request arrived on), the request goes over that flow,
//! whatever its Request-URI (the Contact of a device behind NAT is unreachable); otherwise
//! it is routed normally.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use sotto_sip::message::{Method, Scheme, StatusCode, Uri};
use sotto_sip::resolve::literal_destination;
use sotto_sip::transport::{ConnectionId, Destination, TransportKind};
use sotto_store::Binding;

use crate::config::{FederationConfig, RouterConfig};
use crate::modules::registrar::aor_of;
use crate::modules::sanity::is_for_server;
use crate::modules::store_outage::StoreOutage;
use crate::pipeline::{Locality, Module, NextHop, Reply, RequestContext, Target, Verdict};
use crate::proxy::flow::{Flow, FlowTokens};
use crate::store_ops::{StoreAnswer, StoreOp};

/// Methods this server handles.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER, INFO, UPDATE, PRACK, SUBSCRIBE, NOTIFY, REFER";

/// The router module.
pub struct Router {
    config: RouterConfig,
    locality: Arc<Locality>,
    flows: Option<Arc<FlowTokens>>,
    federation: FederationConfig,
    /// Requests sent over the flow a token named.
    flow_routed: u64,
    /// Requests refused for a token that did not verify.
    flow_refused: u64,
    outage: StoreOutage,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

/// Where to send a request for `uri` when its host is an IP literal (else `None`: see
/// [`hop_for`]).
pub fn destination_for(uri: &Uri) -> Option<Destination> {
    let (transport, addr) = literal_destination(uri)?;
    Some(Destination::new(transport, addr))
}

/// The next hop for `uri`: its address when the host is an IP literal, else a DNS lookup
/// (RFC 3263; TLS only when `tls_only` or for a `sips:` URI).
pub fn hop_for(uri: &Uri, tls_only: bool, peer: bool) -> NextHop {
    match destination_for(uri) {
        Some(d) => NextHop::Address(d),
        None => NextHop::Resolve {
            uri: uri.clone(),
            tls_only: tls_only || uri.scheme() == Scheme::Sips,
            peer,
        },
    }
}

/// The binding's flow as stored by the registrar: `<connection id>` or
/// `<connection id>@<our address it arrived on>`.
pub fn parse_flow(flow: &str) -> Option<(ConnectionId, Option<SocketAddr>)> {
    let (id, local) = match flow.split_once('@') {
        Some((id, local)) => (id, local.parse().ok()),
        None => (flow, None),
    };
    Some((ConnectionId(id.parse().ok()?), local))
}

/// The target for one binding (its flow if it registered over a connection, else its Path or
/// contact address, looked up by DNS when it is a name).
pub fn target_for(b: &Binding) -> Option<Target> {
    let uri = Uri::parse(&b.contact).ok()?;
    let registered_over = b.transport.as_deref().and_then(TransportKind::from_token);
    let first_path = b.path.first().and_then(|p| {
        let p = p.trim();
        let inner = p
            .strip_prefix('<')
            .and_then(|s| s.split_once('>'))
            .map_or(p, |(u, _)| u);
        Uri::parse(inner).ok()
    });
    let flow = b.flow.as_deref().and_then(parse_flow);
    let hop = match (registered_over, b.source, flow, first_path) {
        (_, _, _, Some(path)) => hop_for(&path, false, false),
        (Some(kind), Some(source), Some((id, _)), None) if kind.is_stream() => {
            NextHop::Address(Destination {
                transport: kind,
                remote: source,
                connection: Some(id),
                server_name: None,
            })
        }
        _ => hop_for(&uri, registered_over == Some(TransportKind::Tls), false),
    };
    Some(Target {
        uri,
        hop,
        route: b.path.clone(),
        registered_over,
        local: flow.and_then(|(_, local)| local),
    })
}

impl Router {
    /// A router (bindings are fetched from the store: [`StoreOp::Bindings`],
    /// [`StoreOp::TempGruu`]).
    pub fn new(config: RouterConfig, locality: Arc<Locality>) -> Self {
        Router {
            config,
            locality,
            flows: None,
            federation: FederationConfig::default(),
            flow_routed: 0,
            flow_refused: 0,
            outage: StoreOutage::default(),
        }
    }

    /// Follows the flow tokens of Route values naming us, verified with `tokens` (the
    /// proxy's, which issued them in its Record-Route). Without it, tokens are ignored.
    pub fn with_flow_tokens(mut self, tokens: Arc<FlowTokens>) -> Self {
        self.flows = Some(tokens);
        self
    }

    /// Sends requests of our users for other domains to those domains' servers.
    pub fn with_federation(mut self, federation: FederationConfig) -> Self {
        self.federation = federation;
        self
    }

    /// Removes the leading Route values that name us; returns their URIs, in order.
    fn pop_own_routes(&self, ctx: &mut RequestContext) -> Result<Vec<Uri>, ()> {
        let routes = ctx.request.routes().map_err(|_| ())?;
        let ours = routes
            .iter()
            .take_while(|r| self.locality.is_self(&r.uri))
            .count();
        if ours > 0 {
            let h = ctx.request.headers_mut();
            h.remove("Route");
            for r in routes.iter().skip(ours) {
                h.push("Route", r.to_string());
            }
        }
        Ok(routes.into_iter().take(ours).map(|r| r.uri).collect())
    }

    /// The flow the request goes over, from the tokens of our popped Route values (module
    /// doc); `Err` for a token that does not verify.
    fn flow_of(&self, ctx: &RequestContext, popped: &[Uri]) -> Result<Option<Flow>, ()> {
        let Some(tokens) = &self.flows else {
            return Ok(None);
        };
        let arrived = Flow::arrived_on(ctx.transport, ctx.connection, ctx.source);
        tokens.select(popped, arrived).map_err(|e| {
            tracing::info!(error = %e, source = %ctx.source, "flow token refused");
        })
    }

    fn local_targets(&mut self, ctx: &mut RequestContext) -> Verdict {
        let uri = ctx.request.uri();
        // pub-gruu: the AOR's bindings of that instance; temp-gruu: looked up by its value.
        let (op, instance) = if uri.has_param("gr") {
            match uri.param("gr").flatten() {
                Some(instance) => (
                    aor_of(uri).map(|aor| StoreOp::Bindings { aor }),
                    Some(instance.to_owned()),
                ),
                None => (
                    Some(StoreOp::TempGruu {
                        uri: uri.as_str().to_owned(),
                    }),
                    None,
                ),
            }
        } else {
            (aor_of(uri).map(|aor| StoreOp::Bindings { aor }), None)
        };
        let Some(op) = op else {
            return Reply::new(StatusCode::NOT_FOUND).verdict();
        };
        let mut bindings: Vec<Binding> = match ctx.answer.take() {
            Some(StoreAnswer::Bindings(Ok(b))) => {
                self.outage.answered("router");
                b
            }
            Some(StoreAnswer::Bindings(Err(e))) => return self.outage.failed("router", &e),
            _ => return Verdict::Fetch(op),
        };
        if let Some(instance) = instance {
            bindings.retain(|b| b.instance_id.as_deref() == Some(instance.as_str()));
        }
        bindings.sort_by(|a, b| b.q.unwrap_or(1.0).total_cmp(&a.q.unwrap_or(1.0)));
        let targets: Vec<Target> = bindings.iter().filter_map(target_for).collect();
        if targets.is_empty() {
            return Reply::new(StatusCode::TEMPORARILY_UNAVAILABLE).verdict();
        }
        Verdict::Forward(targets)
    }
}

impl Router {
    /// Whether a request for `uri` (not ours) goes to its domain's server: federation on, the
    /// domain allowed, and the request from one of our users, authenticated (never relayed
    /// for anyone else: no open relay).
    fn federates(&self, ctx: &RequestContext, uri: &Uri) -> bool {
        ctx.authenticated.is_some()
            && ctx.federated.is_none()
            && uri.is_sip()
            && self.federation.allows(uri.host())
    }
}

impl Module for Router {
    fn name(&self) -> &'static str {
        "router"
    }

    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("flow_routed_total", self.flow_routed);
        out("flow_token_refused_total", self.flow_refused);
        out("store_failures_total", self.outage.total());
    }

    fn on_request(&mut self, ctx: &mut RequestContext, _now: Instant) -> Verdict {
        if !self.config.enabled {
            return Verdict::Continue;
        }
        let Ok(popped) = self.pop_own_routes(ctx) else {
            return Reply::new(StatusCode::BAD_REQUEST).verdict();
        };
        let Ok(flow) = self.flow_of(ctx, &popped) else {
            self.flow_refused += 1;
            return Reply::new(StatusCode::FORBIDDEN)
                .with("Warning", "399 sotto \"invalid flow token\"")
                .verdict();
        };
        let popped = popped.len();
        let next_route = ctx.request.routes().ok().and_then(|r| r.into_iter().next());
        let inbound_tls = ctx.transport == TransportKind::Tls;
        let decided = if let Some(flow) = flow {
            // RFC 5626 §5.3: over the flow the token names, whatever the Request-URI.
            self.flow_routed += 1;
            let mut t = Target::to(ctx.request.uri().clone(), flow.destination());
            t.registered_over = Some(flow.transport);
            Verdict::Forward(vec![t])
        } else if let Some(route) = next_route {
            Verdict::Forward(vec![Target::new(
                ctx.request.uri().clone(),
                hop_for(&route.uri, inbound_tls, false),
            )])
        } else if popped > 0 && !self.locality.is_self(ctx.request.uri()) {
            // In a dialog we record-routed: straight to the remote target.
            let uri = ctx.request.uri().clone();
            let hop = hop_for(&uri, inbound_tls, false);
            Verdict::Forward(vec![Target::new(uri, hop)])
        } else if is_for_server(&self.locality, &ctx.request) {
            match ctx.request.method() {
                Method::Options => Reply::new(StatusCode::OK)
                    .with("Allow", ALLOW)
                    .with("Accept", "application/sdp")
                    .verdict(),
                _ => Reply::new(StatusCode::FORBIDDEN).verdict(),
            }
        } else {
            let uri = ctx.request.uri();
            let local = self.locality.is_local_host(uri.host())
                && (uri.port().is_none() || self.locality.is_self(uri));
            if local && uri.user().is_some() {
                self.local_targets(ctx)
            } else if local {
                Reply::new(StatusCode::NOT_FOUND).verdict()
            } else if self.federates(ctx, uri) {
                // One of our users calls another domain: its server, by DNS, over TLS.
                let hop = NextHop::Resolve {
                    uri: uri.clone(),
                    tls_only: true,
                    peer: true,
                };
                Verdict::Forward(vec![Target::new(uri.clone(), hop)])
            } else {
                Reply::new(StatusCode::FORBIDDEN)
                    .with("Warning", "399 sotto \"relaying denied\"")
                    .verdict()
            }
        };
        match decided {
            Verdict::Forward(targets) => {
                ctx.targets = targets;
                Verdict::Continue
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests;
