//! Forward: the last module. It applies the transport-security policy to the router's targets
//! and hands them to the stateful proxy (`crate::proxy`, RFC 3261 §16.6), which builds the
//! branches (Via, Max-Forwards, Record-Route) and aggregates their responses.
//!
//! - **No silent downgrade:** a request must not cross from a TLS hop to a plain one (or back),
//!   e.g. reach over UDP a user who registered over TLS. Refused with 403 and a Warning by
//!   default; with `downgrade = flag` it is forwarded and every response carries a Warning.
//! - **SDES never on a plain hop:** a body with `a=crypto` (SDP security descriptions carry the
//!   SRTP keys in clear) is refused with 488 + Warning unless both hops are TLS.

use std::time::Instant;

use sotto_sip::message::StatusCode;
use sotto_sip::transport::TransportKind;

use crate::config::{DowngradePolicy, ForwardConfig};
use crate::pipeline::{Module, NextHop, Reply, RequestContext, Target, Verdict};

/// The Warning added when a downgrade is refused or flagged.
pub const DOWNGRADE_WARNING: &str = "399 sotto \"TLS hop downgraded to a non-TLS hop\"";
/// The Warning of the 488 given to SDES over a plain hop.
pub const SDES_WARNING: &str = "399 sotto \"SDES keys are never sent over a non-TLS hop\"";

/// The forward module.
#[derive(Debug)]
pub struct Forward {
    config: ForwardConfig,
}

impl Forward {
    /// A module with `config`.
    pub fn new(config: ForwardConfig) -> Self {
        Forward { config }
    }
}

/// Whether `body` holds an SDP `a=crypto` line (RFC 4568).
pub fn has_sdes(body: &[u8]) -> bool {
    body.split(|&b| b == b'\n').any(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        line.len() >= 9
            && line
                .get(..9)
                .is_some_and(|p| p.eq_ignore_ascii_case(b"a=crypto:"))
    })
}

fn is_tls(t: TransportKind) -> bool {
    t == TransportKind::Tls
}

/// Whether forwarding from `inbound` over `out` changes the hop's security (a contact that
/// registered over TLS is a TLS hop, whatever reaches it).
pub fn downgrades(
    inbound: TransportKind,
    out: TransportKind,
    registered_over: Option<TransportKind>,
) -> bool {
    let registered_tls = registered_over.is_some_and(is_tls);
    is_tls(inbound) != is_tls(out) || (registered_tls && !is_tls(inbound))
}

/// [`downgrades`] for a target; one located by DNS is checked once its candidates are known
/// (the lookup asks for TLS only when the inbound hop is TLS).
fn target_downgrades(inbound: TransportKind, target: &Target) -> bool {
    match target.hop.transport() {
        Some(out) => downgrades(inbound, out, target.registered_over),
        None => false,
    }
}

impl Module for Forward {
    fn name(&self) -> &'static str {
        "forward"
    }

    fn on_request(&mut self, ctx: &mut RequestContext, _now: Instant) -> Verdict {
        if !self.config.enabled || ctx.targets.is_empty() {
            return Reply::new(StatusCode::FORBIDDEN).verdict();
        }
        let mut targets = std::mem::take(&mut ctx.targets);
        let sdes = has_sdes(ctx.request.body());
        if sdes
            && (!is_tls(ctx.transport)
                || targets
                    .iter()
                    .any(|t| t.hop.transport().is_some_and(|out| !is_tls(out))))
        {
            return Reply::new(StatusCode::NOT_ACCEPTABLE_HERE)
                .with("Warning", SDES_WARNING)
                .verdict();
        }
        // A hop located by DNS keeps to TLS when the request came over TLS or carries keys.
        for t in &mut targets {
            if let NextHop::Resolve { tls_only, .. } = &mut t.hop {
                *tls_only |= sdes || is_tls(ctx.transport);
            }
        }
        let (safe, unsafe_): (Vec<Target>, Vec<Target>) = targets
            .into_iter()
            .partition(|t| !target_downgrades(ctx.transport, t));
        match self.config.downgrade {
            DowngradePolicy::Refuse if safe.is_empty() => Reply::new(StatusCode::FORBIDDEN)
                .with("Warning", DOWNGRADE_WARNING)
                .verdict(),
            DowngradePolicy::Refuse => Verdict::Forward(safe),
            DowngradePolicy::Flag => {
                ctx.insecure_hop = !unsafe_.is_empty();
                let mut all = safe;
                all.extend(unsafe_);
                Verdict::Forward(all)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::modules::testutil::ctx_from;
    use sotto_sip::message::Uri;
    use sotto_sip::transport::Destination;

    fn target(t: TransportKind, registered: Option<TransportKind>) -> Target {
        let mut target = Target::to(
            Uri::parse("sip:bob@127.0.0.1:5090").unwrap(),
            Destination::new(t, "127.0.0.1:5090".parse().unwrap()),
        );
        target.registered_over = registered;
        target
    }

    fn run(
        config: ForwardConfig,
        inbound: TransportKind,
        targets: Vec<Target>,
        body: &str,
    ) -> (Verdict, bool) {
        let mut ctx = ctx_from("127.0.0.1:4000");
        ctx.transport = inbound;
        ctx.targets = targets;
        ctx.request.set_body(body.as_bytes().to_vec());
        let v = Forward::new(config).on_request(&mut ctx, Instant::now());
        (v, ctx.insecure_hop)
    }

    fn status(v: &Verdict) -> Option<u16> {
        match v {
            Verdict::Reply(r) => Some(r.status.0),
            _ => None,
        }
    }

    #[test]
    fn same_security_forwards() {
        let (v, flagged) = run(
            ForwardConfig::default(),
            TransportKind::Udp,
            vec![target(TransportKind::Udp, None)],
            "",
        );
        assert!(matches!(v, Verdict::Forward(ref t) if t.len() == 1));
        assert!(!flagged);
        let (v, _) = run(
            ForwardConfig::default(),
            TransportKind::Tls,
            vec![target(TransportKind::Tls, Some(TransportKind::Tls))],
            "",
        );
        assert!(matches!(v, Verdict::Forward(_)));
    }

    #[test]
    fn downgrade_is_refused_by_default() {
        let (v, _) = run(
            ForwardConfig::default(),
            TransportKind::Udp,
            vec![target(TransportKind::Tls, Some(TransportKind::Tls))],
            "",
        );
        assert_eq!(status(&v), Some(403));
        let (v, _) = run(
            ForwardConfig::default(),
            TransportKind::Tls,
            vec![target(TransportKind::Udp, Some(TransportKind::Udp))],
            "",
        );
        assert_eq!(status(&v), Some(403));
        // Only the safe branch of two is kept.
        let (v, _) = run(
            ForwardConfig::default(),
            TransportKind::Tls,
            vec![
                target(TransportKind::Udp, Some(TransportKind::Udp)),
                target(TransportKind::Tls, Some(TransportKind::Tls)),
            ],
            "",
        );
        let Verdict::Forward(t) = v else {
            panic!("not forwarded")
        };
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].hop.transport(), Some(TransportKind::Tls));
    }

    #[test]
    fn downgrade_is_flagged_when_configured() {
        let config = ForwardConfig {
            downgrade: DowngradePolicy::Flag,
            ..ForwardConfig::default()
        };
        let (v, flagged) = run(
            config,
            TransportKind::Udp,
            vec![target(TransportKind::Tls, Some(TransportKind::Tls))],
            "",
        );
        assert!(matches!(v, Verdict::Forward(_)));
        assert!(flagged);
    }

    #[test]
    fn sdes_only_over_tls_on_both_hops() {
        let sdp = "v=0\r\nm=audio 4000 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz\r\n";
        let (v, _) = run(
            ForwardConfig::default(),
            TransportKind::Udp,
            vec![target(TransportKind::Udp, None)],
            sdp,
        );
        assert_eq!(status(&v), Some(488));
        let (v, _) = run(
            ForwardConfig::default(),
            TransportKind::Tls,
            vec![target(TransportKind::Tls, None)],
            sdp,
        );
        assert!(matches!(v, Verdict::Forward(_)));
        assert!(!has_sdes(b"v=0\r\na=cryptex\r\n"));
    }

    #[test]
    fn nothing_to_forward_is_refused() {
        let (v, _) = run(ForwardConfig::default(), TransportKind::Udp, Vec::new(), "");
        assert_eq!(status(&v), Some(403));
    }
}
