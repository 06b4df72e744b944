//! Sanity: RFC 3261 §8.2 / §16.3 request checks and the RFC 4475 §3.3 application-layer cases,
//! through `sotto_sip::validate` (which names the status owed): 400, 416 unsupported URI scheme,
//! 420 with Unsupported, 483 Max-Forwards exhausted, 505 version; and loop detection (482,
//! §16.3 step 4).
//!
//! A request addressed to the server itself (REGISTER to our domain, OPTIONS to us) is checked
//! as a UAS/registrar would (Require; an OPTIONS with Max-Forwards 0 may still be answered,
//! §16.3 step 3 allows it); everything else as a proxy (Proxy-Require, Max-Forwards).

use std::sync::Arc;
use std::time::Instant;

use sotto_crypto::CryptoProvider;
use sotto_sip::message::{Method, Request, StatusCode};
use sotto_sip::validate::{Fault, Policy, Role, validate_request};

use crate::branch;
use crate::config::SanityConfig;
use crate::pipeline::{Locality, Module, Reply, RequestContext, Verdict};

/// Option tags the registrar understands in Require.
pub const REGISTRAR_EXTENSIONS: [&str; 3] = ["path", "gruu", "outbound"];

/// The sanity module.
#[derive(Debug)]
pub struct Sanity {
    config: SanityConfig,
    locality: Arc<Locality>,
    provider: &'static CryptoProvider,
    proxy: Policy,
    uas: Policy,
    registrar: Policy,
}

impl Sanity {
    /// A module for a server with `locality`.
    pub fn new(
        config: SanityConfig,
        locality: Arc<Locality>,
        provider: &'static CryptoProvider,
    ) -> Self {
        let ext: Vec<String> = REGISTRAR_EXTENSIONS.iter().map(|s| s.to_string()).collect();
        let mut registrar = Policy::for_role(Role::Registrar);
        registrar.supported_extensions = ext.clone();
        let mut uas = Policy::for_role(Role::Uas);
        uas.supported_extensions = ext;
        Sanity {
            config,
            locality,
            provider,
            proxy: Policy::for_role(Role::Proxy),
            uas,
            registrar,
        }
    }
}

/// Whether `req` is for the server itself rather than for a user behind it.
pub fn is_for_server(locality: &Locality, req: &Request) -> bool {
    let to_us = locality.is_local_host(req.uri().host()) && req.uri().user().is_none();
    match req.method() {
        Method::Register => locality.is_local_host(req.uri().host()),
        Method::Options => to_us && req.routes().map(|r| r.is_empty()).unwrap_or(true),
        _ => false,
    }
}

impl Module for Sanity {
    fn name(&self) -> &'static str {
        "sanity"
    }

    fn on_request(&mut self, ctx: &mut RequestContext, _now: Instant) -> Verdict {
        if !self.config.enabled {
            return Verdict::Continue;
        }
        let req = &ctx.request;
        let policy = if *req.method() == Method::Register && is_for_server(&self.locality, req) {
            &self.registrar
        } else if is_for_server(&self.locality, req) {
            &self.uas
        } else {
            &self.proxy
        };
        if let Err(e) = validate_request(req, policy) {
            tracing::debug!(error = %e, "request failed validation");
            if *req.method() == Method::Ack {
                return Verdict::Drop;
            }
            let status = e.status().map_or(StatusCode::BAD_REQUEST, StatusCode);
            let mut reply = Reply::new(status);
            if let Fault::BadExtension { unsupported } = &e.fault {
                reply = reply.with("Unsupported", unsupported.join(", "));
            }
            return reply.verdict();
        }
        // RFC 4475 §3.4.1 (`badbranch`): the magic cookie alone names no transaction.
        if req
            .via_top()
            .is_ok_and(|v| v.branch.as_deref() == Some("z9hG4bK"))
        {
            if *req.method() == Method::Ack {
                return Verdict::Drop;
            }
            return Reply::new(StatusCode::BAD_REQUEST)
                .with(
                    "Warning",
                    "399 sotto \"Via branch is the bare magic cookie\"",
                )
                .verdict();
        }
        let hash = branch::loop_hash(self.provider, req);
        if branch::is_loop(&self.locality, req, &hash) {
            if *req.method() == Method::Ack {
                return Verdict::Drop;
            }
            return Reply::new(StatusCode::LOOP_DETECTED).verdict();
        }
        Verdict::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::{locality, parse_request, with_source};

    fn module() -> Sanity {
        Sanity::new(
            SanityConfig::default(),
            Arc::new(locality()),
            sotto_crypto_rust::provider(),
        )
    }

    fn run(text: &str) -> Verdict {
        let mut ctx = with_source(parse_request(text), "127.0.0.1:40000");
        module().on_request(&mut ctx, Instant::now())
    }

    fn status(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Reply(r) => Some(r.status.0),
            _ => None,
        }
    }

    const OK_INVITE: &str = "INVITE sip:bob@example.test SIP/2.0\r\n\
        Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK1\r\n\
        Max-Forwards: 70\r\nTo: <sip:bob@example.test>\r\n\
        From: <sip:alice@example.test>;tag=a\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n\
        Content-Length: 0\r\n\r\n";

    #[test]
    fn good_request_continues() {
        assert_eq!(run(OK_INVITE), Verdict::Continue);
    }

    #[test]
    fn max_forwards_zero_is_483_but_options_to_us_passes() {
        let req = OK_INVITE.replace("Max-Forwards: 70", "Max-Forwards: 0");
        assert_eq!(status(&run(&req)), Some(483));
        let opt = req
            .replace("INVITE sip:bob@example.test", "OPTIONS sip:example.test")
            .replace("1 INVITE", "1 OPTIONS");
        assert_eq!(run(&opt), Verdict::Continue);
    }

    #[test]
    fn proxy_require_gives_420_with_unsupported() {
        let req = OK_INVITE.replace(
            "Max-Forwards: 70\r\n",
            "Max-Forwards: 70\r\nProxy-Require: foo, bar\r\n",
        );
        let v = run(&req);
        assert_eq!(status(&v), Some(420));
        let Verdict::Reply(r) = v else { unreachable!() };
        assert_eq!(r.headers, vec![("Unsupported".into(), "foo, bar".into())]);
    }

    #[test]
    fn unknown_version_is_505() {
        let req = OK_INVITE.replace("example.test SIP/2.0\r\n", "example.test SIP/7.0\r\n");
        assert_eq!(status(&run(&req)), Some(505));
    }

    #[test]
    fn bad_ack_is_dropped_not_answered() {
        let req = OK_INVITE
            .replace("INVITE sip", "ACK sip")
            .replace("1 INVITE", "1 BYE");
        assert_eq!(run(&req), Verdict::Drop);
    }

    #[test]
    fn our_own_via_with_same_hash_is_a_loop() {
        let provider = sotto_crypto_rust::provider();
        let req = parse_request(OK_INVITE);
        let hash = branch::loop_hash(provider, &req);
        let our = format!(
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch={}\r\n",
            branch::new_branch(provider, &hash)
        );
        let looped = OK_INVITE.replacen("Via:", &format!("{our}Via:"), 1);
        assert_eq!(status(&run(&looped)), Some(482));
        // A spiral: same Vias, another Request-URI.
        let spiral = looped.replace(
            "INVITE sip:bob@example.test",
            "INVITE sip:carol@example.test",
        );
        assert_eq!(run(&spiral), Verdict::Continue);
    }
}
