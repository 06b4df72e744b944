//! Via branches of forwarded requests and loop detection (RFC 3261 §16.6 step 8, §16.3
//! step 4): a branch is `z9hG4bK-sotto-<loop hash>.<random>`, where the loop hash covers the
//! fields a looping request keeps unchanged (Request-URI, From and To tags, Call-ID, CSeq
//! number, Proxy-Require). A request that reaches us again carrying our own Via with the same
//! loop hash is a loop (482); one whose Request-URI changed is a spiral and goes on.

use sotto_crypto::CryptoProvider;
use sotto_crypto::hash::HashAlgorithm;
use sotto_sip::message::{Request, Via};

use crate::pipeline::Locality;

const PREFIX: &str = "z9hG4bK-sotto-";

/// 16 hex digits over the loop-invariant fields of `req` (empty if the hash is unavailable).
pub(crate) fn loop_hash(provider: &CryptoProvider, req: &Request) -> String {
    let Some(mut h) = provider.hash.start(HashAlgorithm::Sha256) else {
        return String::new();
    };
    let h_ = req.headers();
    let field = |v: Option<&str>| v.unwrap_or("").to_owned();
    let parts = [
        req.uri().as_str().to_owned(),
        field(req.from_tag().ok().flatten()),
        field(req.to_tag().ok().flatten()),
        field(req.call_id().ok()),
        req.cseq().map(|c| c.seq.to_string()).unwrap_or_default(),
        h_.list("Proxy-Require").join(","),
    ];
    for p in &parts {
        h.update(&(p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let out = h.finish();
    let h = out.as_ref();
    sotto_crypto::hex::encode(h.get(..8).unwrap_or(h))
}

/// A fresh branch for a request whose loop hash is `hash`.
pub(crate) fn new_branch(provider: &CryptoProvider, hash: &str) -> String {
    let mut r = [0u8; 8];
    // A failed RNG leaves zeros: the branch stays unique enough through the loop hash only
    // for one request; the provider never fails in practice.
    let _ = provider.rng.fill(&mut r);
    format!("{PREFIX}{hash}.{}", sotto_crypto::hex::encode(&r))
}

/// Whether `via` was added by this server (its sent-by is one of our listeners).
pub(crate) fn is_our_via(locality: &Locality, via: &Via) -> bool {
    let port = via.port_or_default();
    locality.is_local_host(&via.host)
        && locality.listeners.iter().any(|(_, a)| a.port() == port)
        && via.branch.as_deref().is_some_and(|b| b.starts_with(PREFIX))
}

/// Whether `req` is looping: one of its Vias is ours and carries `hash`.
pub(crate) fn is_loop(locality: &Locality, req: &Request, hash: &str) -> bool {
    if hash.is_empty() {
        return false;
    }
    let Ok(vias) = req.vias() else {
        return false;
    };
    vias.iter().any(|v| {
        is_our_via(locality, v)
            && v.branch
                .as_deref()
                .and_then(|b| b.strip_prefix(PREFIX))
                .and_then(|rest| rest.split('.').next())
                == Some(hash)
    })
}
