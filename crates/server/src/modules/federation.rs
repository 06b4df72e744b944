//! Federation: requests that come from other domains (RFC 5922; GNU SIP Witch's "domain
//! calling": anyone reachable at their SIP URI, servers authenticating each other over TLS).
//!
//! - A request whose From is in one of our domains, or that is addressed to this server
//!   itself (OPTIONS, REGISTER), is not this module's business.
//! - From another domain, with federation off (the default): refused with 403 and a Warning.
//!   This server speaks for its own users only, and nobody may hand it a request in the name
//!   of someone else's.
//! - With federation on: accepted only if it arrived over TLS from a server whose certificate
//!   (its chain verified by the transport against the federation CA) covers the From domain
//!   (RFC 5922 §7.2: SAN DNS name or `sip:` URI), and the domain is allowed. Then
//!   `ctx.federated` names the domain. Anything else is refused with 403 and a Warning saying
//!   why, and logged: nobody can send as `alice@a.example` except `a.example`'s server.

use std::time::Instant;

use sotto_sip::message::{Method, StatusCode};
use sotto_sip::transport::TransportKind;

use crate::config::FederationConfig;
use crate::identity::covers;
use crate::modules::sanity::is_for_server;
use crate::pipeline::{Locality, Module, Reply, RequestContext, Verdict};

/// The federation module.
pub struct Federation {
    config: FederationConfig,
    locality: std::sync::Arc<Locality>,
    accepted: u64,
    refused: u64,
}

impl std::fmt::Debug for Federation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Federation")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Federation {
    /// A module with `config` for the server of `locality`.
    pub fn new(config: FederationConfig, locality: std::sync::Arc<Locality>) -> Self {
        Federation {
            config,
            locality,
            accepted: 0,
            refused: 0,
        }
    }

    fn refuse(&mut self, ctx: &RequestContext, domain: &str, why: &str) -> Verdict {
        self.refused += 1;
        tracing::warn!(
            from_domain = domain,
            source = %ctx.source,
            transport = ctx.transport.as_str(),
            reason = why,
            "request from another domain refused"
        );
        Reply::new(StatusCode::FORBIDDEN)
            .with("Warning", format!("399 sotto \"{why}\""))
            .verdict()
    }
}

impl Module for Federation {
    fn name(&self) -> &'static str {
        "federation"
    }

    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("accepted_total", self.accepted);
        out("refused_total", self.refused);
    }

    fn on_request(&mut self, ctx: &mut RequestContext, _now: Instant) -> Verdict {
        let req = &ctx.request;
        if *req.method() == Method::Register || is_for_server(&self.locality, req) {
            return Verdict::Continue;
        }
        let Ok(from) = req.from() else {
            return Reply::new(StatusCode::BAD_REQUEST).verdict();
        };
        if !from.uri.is_sip() {
            return self.refuse(ctx, from.uri.host(), "From is not a SIP URI");
        }
        let domain = from.uri.host().to_ascii_lowercase();
        if self.locality.is_local_host(&domain) {
            return Verdict::Continue;
        }
        if !self.config.enabled {
            return self.refuse(
                ctx,
                &domain,
                "requests from other domains are not accepted here (federation is off)",
            );
        }
        if !self.config.allows(&domain) {
            return self.refuse(ctx, &domain, &format!("{domain} is not a federated domain"));
        }
        if ctx.transport != TransportKind::Tls {
            return self.refuse(
                ctx,
                &domain,
                &format!("a request from {domain} must come over TLS from its server"),
            );
        }
        if !covers(&ctx.client_domains, &domain) {
            let presented = if ctx.client_domains.is_empty() {
                "no certificate".to_owned()
            } else {
                format!("a certificate for {}", ctx.client_domains.join(", "))
            };
            return self.refuse(
                ctx,
                &domain,
                &format!("the sending server presented {presented}, not one for {domain}"),
            );
        }
        self.accepted += 1;
        ctx.federated = Some(domain);
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{locality, parse_request, with_source};

    fn invite_from(domain: &str) -> RequestContext {
        let req = parse_request(&format!(
            "INVITE sip:bob@example.test SIP/2.0\r\nVia: SIP/2.0/TLS 192.0.2.1;branch=z9hG4bK1\r\n\
             To: <sip:bob@example.test>\r\nFrom: <sip:alice@{domain}>;tag=1\r\nCall-ID: x\r\n\
             CSeq: 1 INVITE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
        ));
        let mut ctx = with_source(req, "192.0.2.1:40000");
        ctx.transport = TransportKind::Tls;
        ctx
    }

    fn module(enabled: bool, domains: &[&str]) -> Federation {
        Federation::new(
            FederationConfig {
                enabled,
                domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            },
            std::sync::Arc::new(locality()),
        )
    }

    fn status(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Reply(r) => Some(r.status.0),
            _ => None,
        }
    }

    #[test]
    fn local_users_and_requests_for_the_server_pass() {
        let mut m = module(false, &[]);
        let mut ctx = invite_from("example.test");
        assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
        let mut ctx = invite_from("127.0.0.1");
        assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
    }

    #[test]
    fn other_domains_are_refused_when_federation_is_off() {
        let mut m = module(false, &[]);
        let mut ctx = invite_from("a.example");
        ctx.client_domains = vec!["a.example".into()];
        let v = m.on_request(&mut ctx, Instant::now());
        assert_eq!(status(&v), Some(403));
        let Verdict::Reply(r) = v else { panic!() };
        assert!(
            r.headers[0].1.contains("federation is off"),
            "{:?}",
            r.headers
        );
    }

    #[test]
    fn the_sending_server_must_prove_the_from_domain() {
        let mut m = module(true, &[]);
        // The right certificate: accepted, and the domain noted.
        let mut ctx = invite_from("a.example");
        ctx.client_domains = vec!["a.example".into()];
        assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
        assert_eq!(ctx.federated.as_deref(), Some("a.example"));
        // Another domain's certificate, none at all, or not over TLS: refused.
        let mut ctx = invite_from("a.example");
        ctx.client_domains = vec!["c.example".into()];
        let v = m.on_request(&mut ctx, Instant::now());
        let Verdict::Reply(r) = v else { panic!() };
        assert_eq!(r.status.0, 403);
        assert!(
            r.headers[0].1.contains("certificate for c.example"),
            "{:?}",
            r.headers
        );
        let mut ctx = invite_from("a.example");
        assert_eq!(status(&m.on_request(&mut ctx, Instant::now())), Some(403));
        let mut ctx = invite_from("a.example");
        ctx.client_domains = vec!["a.example".into()];
        ctx.transport = TransportKind::Udp;
        assert_eq!(status(&m.on_request(&mut ctx, Instant::now())), Some(403));
        assert_eq!((m.accepted, m.refused), (1, 3));
    }

    #[test]
    fn only_listed_domains_when_a_list_is_given() {
        let mut m = module(true, &["b.example"]);
        let mut ctx = invite_from("a.example");
        ctx.client_domains = vec!["a.example".into()];
        assert_eq!(status(&m.on_request(&mut ctx, Instant::now())), Some(403));
        let mut ctx = invite_from("b.example");
        ctx.client_domains = vec!["b.example".into()];
        assert_eq!(m.on_request(&mut ctx, Instant::now()), Verdict::Continue);
    }
}
