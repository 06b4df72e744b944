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
//! Destinations are IP literals (contacts, Record-Route and Path entries carry them); a
//! contact that registered over TCP/TLS is reached over its registration connection
//! (RFC 5626 flow reuse).
//!
//! Flow tokens (RFC 5626 §5.3, [`crate::proxy::flow`]): a Route value naming us may carry the
//! flow token our Record-Route put there. Each is verified (a forged or altered one gives
//! 403). The last of our values names the side the request goes to: if it carries a token
//! (not naming the connection the request arrived on), the request goes over that flow,
//! whatever its Request-URI (the Contact of a device behind NAT is unreachable); otherwise
//! it is routed normally.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use sotto_sip::transport::{ConnectionId, Destination, TransportKind};
use sotto_sip::message::{Method, Scheme, StatusCode, Uri};
use sotto_store::{Binding, BindingStore};

use crate::config::RouterConfig;
use crate::modules::registrar::aor_of;
use crate::modules::sanity::is_for_server;
use crate::pipeline::{Locality, Module, Reply, RequestContext, Target, Verdict};
use crate::proxy::flow::{Flow, FlowTokens};

/// Methods this server handles.
pub const ALLOW: &str = "INVITE, ACK, CANCEL, BYE, OPTIONS, MESSAGE, REGISTER, INFO, UPDATE, PRACK, SUBSCRIBE, NOTIFY, REFER";

/// The router module.
pub struct Router {
    config: RouterConfig,
    locality: Arc<Locality>,
    bindings: Arc<dyn BindingStore>,
    flows: Option<Arc<FlowTokens>>,
    /// Requests sent over the flow a token named.
    flow_routed: u64,
    /// Requests refused for a token that did not verify.
    flow_refused: u64,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router").finish_non_exhaustive()
    }
}

/// The transport a URI asks for: `transport=` parameter, `sips:` means TLS, else UDP.
pub fn transport_of(uri: &Uri) -> TransportKind {
    match uri.transport().map(str::to_ascii_lowercase).as_deref() {
        Some("tls") => TransportKind::Tls,
        Some("tcp") if uri.scheme() == Scheme::Sips => TransportKind::Tls,
        Some("tcp") => TransportKind::Tcp,
        _ if uri.scheme() == Scheme::Sips => TransportKind::Tls,
        _ => TransportKind::Udp,
    }
}

/// Where to send a request for `uri` (no DNS: the host must be an IP literal).
pub fn destination_for(uri: &Uri) -> Option<Destination> {
    let host = uri.host().trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = host.parse().ok()?;
    let transport = transport_of(uri);
    let port = uri.port().unwrap_or(if transport == TransportKind::Tls {
        5061
    } else {
        5060
    });
    Some(Destination::new(transport, SocketAddr::new(ip, port)))
}

fn kind_of(token: &str) -> Option<TransportKind> {
    match token.to_ascii_uppercase().as_str() {
        "UDP" => Some(TransportKind::Udp),
        "TCP" => Some(TransportKind::Tcp),
        "TLS" => Some(TransportKind::Tls),
        _ => None,
    }
}

/// The target for one binding (its flow if it registered over a connection, else its Path or
/// contact address).
pub fn target_for(b: &Binding) -> Option<Target> {
    let uri = Uri::parse(&b.contact).ok()?;
    let registered_over = b.transport.as_deref().and_then(kind_of);
    let first_path = b.path.first().and_then(|p| {
        let p = p.trim();
        let inner = p
            .strip_prefix('<')
            .and_then(|s| s.split_once('>'))
            .map_or(p, |(u, _)| u);
        Uri::parse(inner).ok()
    });
    let destination = match (registered_over, b.source, &b.flow, first_path) {
        (_, _, _, Some(path)) => destination_for(&path)?,
        (Some(kind), Some(source), Some(flow), None) if kind.is_stream() => Destination {
            transport: kind,
            remote: source,
            connection: flow.parse().ok().map(ConnectionId),
            server_name: None,
        },
        _ => destination_for(&uri)?,
    };
    Some(Target {
        uri,
        destination,
        route: b.path.clone(),
        registered_over,
    })
}

impl Router {
    /// A router over `bindings`.
    pub fn new(
        config: RouterConfig,
        locality: Arc<Locality>,
        bindings: Arc<dyn BindingStore>,
    ) -> Self {
        Router {
            config,
            locality,
            bindings,
            flows: None,
            flow_routed: 0,
            flow_refused: 0,
        }
    }

    /// Follows the flow tokens of Route values naming us, verified with `tokens` (the
    /// proxy's, which issued them in its Record-Route). Without it, tokens are ignored.
    pub fn with_flow_tokens(mut self, tokens: Arc<FlowTokens>) -> Self {
        self.flows = Some(tokens);
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

    fn local_targets(&self, ctx: &RequestContext) -> Verdict {
        let uri = ctx.request.uri();
        let found = if uri.has_param("gr") {
            match uri.param("gr").flatten() {
                // pub-gruu: the AOR's bindings of that instance.
                Some(instance) => aor_of(uri).map(|aor| {
                    self.bindings.bindings(&aor, ctx.wall).map(|bs| {
                        bs.into_iter()
                            .filter(|b| b.instance_id.as_deref() == Some(instance))
                            .collect()
                    })
                }),
                // temp-gruu: looked up by its value.
                None => Some(
                    self.bindings
                        .by_temp_gruu(uri.as_str(), ctx.wall)
                        .map(|b| b.into_iter().collect()),
                ),
            }
        } else {
            aor_of(uri).map(|aor| self.bindings.bindings(&aor, ctx.wall))
        };
        let mut bindings: Vec<Binding> = match found {
            None => return Reply::new(StatusCode::NOT_FOUND).verdict(),
            Some(Err(e)) => {
                tracing::error!(error = %e, "binding store failed");
                return Reply::new(StatusCode::SERVER_INTERNAL_ERROR).verdict();
            }
            Some(Ok(b)) => b,
        };
        bindings.sort_by(|a, b| b.q.unwrap_or(1.0).total_cmp(&a.q.unwrap_or(1.0)));
        let targets: Vec<Target> = bindings.iter().filter_map(target_for).collect();
        if targets.is_empty() {
            return Reply::new(StatusCode::TEMPORARILY_UNAVAILABLE).verdict();
        }
        Verdict::Forward(targets)
    }
}

impl Module for Router {
    fn name(&self) -> &'static str {
        "router"
    }

    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("flow_routed_total", self.flow_routed);
        out("flow_token_refused_total", self.flow_refused);
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
        let decided = if let Some(flow) = flow {
            // RFC 5626 §5.3: over the flow the token names, whatever the Request-URI.
            self.flow_routed += 1;
            Verdict::Forward(vec![Target {
                uri: ctx.request.uri().clone(),
                destination: flow.destination(),
                route: Vec::new(),
                registered_over: Some(flow.transport),
            }])
        } else if let Some(route) = next_route {
            match destination_for(&route.uri) {
                Some(d) => Verdict::Forward(vec![Target {
                    uri: ctx.request.uri().clone(),
                    destination: d,
                    route: Vec::new(),
                    registered_over: None,
                }]),
                None => Reply::new(StatusCode::NOT_FOUND).verdict(),
            }
        } else if popped > 0 && !self.locality.is_self(ctx.request.uri()) {
            // In a dialog we record-routed: straight to the remote target.
            match destination_for(ctx.request.uri()) {
                Some(d) => Verdict::Forward(vec![Target {
                    uri: ctx.request.uri().clone(),
                    destination: d,
                    route: Vec::new(),
                    registered_over: None,
                }]),
                None => Reply::new(StatusCode::NOT_FOUND).verdict(),
            }
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
