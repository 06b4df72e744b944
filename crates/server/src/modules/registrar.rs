//! Registrar: RFC 3261 §10.3 (several contacts per address of record, expires with
//! min/default/max and 423 Interval Too Brief + Min-Expires, refresh, removal of one contact or
//! of all with `*`, Call-ID/CSeq ordering), RFC 5627 GRUUs (pub-gruu and temp-gruu in the
//! 200 OK for a contact with `+sip.instance` when the UA supports `gruu`), RFC 5626 flows (the
//! TCP/TLS connection a contact registered over is remembered so requests reach the device
//! over it), RFC 3327 Path. The 200 OK lists every current contact with its remaining expiry.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::CryptoProvider;
use sotto_sip::message::{Method, NameAddr, Request, StatusCode};
use sotto_store::{Binding, BindingStore, Upsert};

use crate::config::RegistrarConfig;
use crate::modules::sanity::is_for_server;
use crate::modules::store_outage::StoreOutage;
use crate::pipeline::{Locality, Module, Reply, RequestContext, Verdict};
use crate::store_ops::{RegisterChange, Registered, StoreAnswer, StoreOp};

/// The registrar module.
pub struct Registrar {
    config: RegistrarConfig,
    locality: Arc<Locality>,
    provider: &'static CryptoProvider,
    outage: StoreOutage,
}

impl std::fmt::Debug for Registrar {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registrar")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The canonical address of record of a SIP URI: `sip:user@host` (host lower case, no port,
/// no parameters; `sips:` folds into `sip:`). `None` without a user part.
pub fn aor_of(uri: &sotto_sip::message::Uri) -> Option<String> {
    let user = uri.user()?;
    Some(format!("sip:{}@{}", user, uri.host().to_ascii_lowercase()))
}

fn supports(req: &Request, tag: &str) -> bool {
    req.headers()
        .get_all("Supported")
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(tag))
}

impl Registrar {
    /// A registrar (its changes go to the store as [`StoreOp::Register`]).
    pub fn new(
        config: RegistrarConfig,
        locality: Arc<Locality>,
        provider: &'static CryptoProvider,
    ) -> Self {
        Registrar {
            config,
            locality,
            provider,
            outage: StoreOutage::default(),
        }
    }

    /// Appends 24 random hex digits to `out`.
    fn push_random_token(&self, out: &mut String) {
        let mut r = [0u8; 12];
        let _ = self.provider.rng.fill(&mut r);
        out.push_str(&sotto_crypto::hex::encode(&r));
    }

    /// The binding for one Contact of `ctx`'s REGISTER.
    fn binding(&self, ctx: &RequestContext, aor: &str, c: &NameAddr, expires: u32) -> Binding {
        let req = &ctx.request;
        let cseq = req.cseq().map(|c| c.seq).unwrap_or(0);
        let call_id = req.call_id().unwrap_or("").to_owned();
        let at = ctx.wall + Duration::from_secs(u64::from(expires));
        let mut b = Binding::new(aor, c.uri.as_str(), call_id, cseq, at);
        for p in c.params.iter().filter(|p| {
            !p.name.eq_ignore_ascii_case("expires") && !p.name.eq_ignore_ascii_case("q")
        }) {
            b.contact_params.push(';');
            b.contact_params.push_str(&p.name);
            if let Some(v) = &p.value {
                b.contact_params.push('=');
                b.contact_params.push_str(v);
            }
        }
        b.instance_id = c
            .sip_instance()
            .map(|i| i.trim_start_matches('<').trim_end_matches('>').to_owned())
            .filter(|i| !i.is_empty());
        b.reg_id = if self.config.outbound {
            c.param("reg-id").flatten().and_then(|v| v.parse().ok())
        } else {
            None
        };
        b.q = c.q();
        if supports(req, "path") {
            b.path = req
                .headers()
                .paths()
                .map(|ps| ps.iter().map(ToString::to_string).collect())
                .unwrap_or_default();
        }
        b.source = Some(ctx.source);
        b.transport = Some(ctx.transport.via_token().to_owned());
        // The connection, and our address it arrived on: what our Record-Route names toward
        // this device (`router::parse_flow` reads it back).
        b.flow = ctx.connection.map(|c| {
            let mut f = c.0.to_string();
            if !ctx.local.ip().is_unspecified() {
                f.push('@');
                f.push_str(&ctx.local.to_string());
            }
            f
        });
        b.user_agent = req.headers().get("User-Agent").map(str::to_owned);
        if self.config.gruu && b.instance_id.is_some() && supports(req, "gruu") {
            let host = aor.rsplit_once('@').map_or("", |(_, h)| h);
            let mut t = String::with_capacity(40 + host.len());
            t.push_str("sip:tgruu.");
            self.push_random_token(&mut t);
            t.push('@');
            t.push_str(host);
            t.push_str(";gr");
            b.temp_gruu = Some(t);
        }
        b
    }
}

/// Whether two bindings have the same [`sotto_store::BindingKey`] (without building the keys).
fn same_key(a: &Binding, b: &Binding) -> bool {
    match (&a.instance_id, &b.instance_id) {
        (Some(x), Some(y)) => x == y && a.reg_id == b.reg_id,
        (None, None) => a.contact == b.contact,
        _ => false,
    }
}

/// The 200 OK listing `current`, the bindings of `aor` in force at `wall`.
fn ok_listing(
    req: &Request,
    aor: &str,
    mut current: Vec<Binding>,
    wall: SystemTime,
    gruu_on: bool,
) -> Verdict {
    current.sort_by(|a, b| a.contact.cmp(&b.contact));
    let gruu = gruu_on && supports(req, "gruu");
    let mut reply = Reply::new(StatusCode::OK);
    for b in &current {
        let secs = |t: SystemTime| {
            t.duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        };
        let left = secs(b.expires_at).saturating_sub(secs(wall));
        let mut v = String::with_capacity(b.contact.len() + b.contact_params.len() + 24);
        // Writing to a String cannot fail.
        let _ = write!(v, "<{}>;expires={left}{}", b.contact, b.contact_params);
        if let (true, Some(instance)) = (gruu, &b.instance_id) {
            let _ = write!(v, ";pub-gruu=\"{aor};gr={instance}\"");
            if let Some(t) = &b.temp_gruu {
                let _ = write!(v, ";temp-gruu=\"{t}\"");
            }
        }
        reply = reply.with("Contact", v);
    }
    if current.iter().any(|b| b.reg_id.is_some()) && supports(req, "outbound") {
        reply = reply.with("Require", "outbound");
    }
    if supports(req, "path") {
        for p in req.headers().get_all("Path") {
            reply = reply.with("Path", p);
        }
    }
    reply.verdict()
}

impl Module for Registrar {
    fn name(&self) -> &'static str {
        "registrar"
    }

    fn counters(&self, out: &mut dyn FnMut(&'static str, u64)) {
        out("store_failures_total", self.outage.total());
    }

    fn on_request(&mut self, ctx: &mut RequestContext, _now: Instant) -> Verdict {
        let answer = ctx.answer.take();
        let req = &ctx.request;
        if !self.config.enabled
            || *req.method() != Method::Register
            || !is_for_server(&self.locality, req)
        {
            return Verdict::Continue;
        }
        let Ok(to) = req.to() else {
            return Reply::new(StatusCode::BAD_REQUEST).verdict();
        };
        if !self.locality.is_local_host(to.uri.host()) {
            return Reply::new(StatusCode::FORBIDDEN).verdict();
        }
        let Some(aor) = aor_of(&to.uri) else {
            return Reply::new(StatusCode::BAD_REQUEST).verdict();
        };
        if let Some(user) = &ctx.authenticated
            && to.uri.user() != Some(user.as_str())
        {
            return Reply::new(StatusCode::FORBIDDEN).verdict();
        }
        let Ok(contacts) = req.contacts() else {
            return Reply::new(StatusCode::BAD_REQUEST).verdict();
        };
        let header_expires = req.headers().expires().ok().flatten();
        let wall = ctx.wall;
        let change = if contacts.iter().any(|c| c.is_wildcard()) {
            if contacts.len() != 1 || header_expires != Some(0) {
                return Reply::new(StatusCode::BAD_REQUEST).verdict();
            }
            RegisterChange::RemoveAll { aor: aor.clone() }
        } else {
            let min = u32::try_from(self.config.min_expires.as_secs()).unwrap_or(u32::MAX);
            let max = u32::try_from(self.config.max_expires.as_secs()).unwrap_or(u32::MAX);
            let default = u32::try_from(self.config.default_expires.as_secs()).unwrap_or(u32::MAX);
            let mut new = Vec::new();
            for c in contacts.iter().filter_map(|c| c.addr()) {
                let expires = c.expires().or(header_expires).unwrap_or(default);
                if expires != 0 && expires < min {
                    return Reply::new(StatusCode::INTERVAL_TOO_BRIEF)
                        .with("Min-Expires", min.to_string())
                        .verdict();
                }
                new.push(self.binding(ctx, &aor, c, expires.min(max)));
            }
            RegisterChange::Upsert {
                aor: aor.clone(),
                bindings: new,
                max_contacts: self.config.max_contacts,
            }
        };
        if let Some(StoreAnswer::Registered(result)) = &answer {
            match result {
                Ok(_) => self.outage.answered("registrar"),
                Err(e) => return self.outage.failed("registrar", e),
            }
        }
        match answer {
            Some(StoreAnswer::Registered(Ok(Registered::Current(current)))) => {
                ok_listing(req, &aor, current, wall, self.config.gruu)
            }
            Some(StoreAnswer::Registered(Ok(Registered::TooManyContacts))) => {
                Reply::new(StatusCode::FORBIDDEN)
                    .with("Warning", "399 sotto \"too many contacts\"")
                    .verdict()
            }
            Some(StoreAnswer::Registered(Ok(Registered::OutOfOrder))) => {
                Reply::new(StatusCode::SERVER_INTERNAL_ERROR)
                    .with("Warning", "399 sotto \"out-of-order REGISTER\"")
                    .verdict()
            }
            // The request's bindings (with their fresh temp GRUUs) travel in the operation;
            // asked again, the module lists what the store applied.
            _ => Verdict::Fetch(StoreOp::Register(change)),
        }
    }
}

/// Applies a REGISTER's `change` to `store` at `wall` (one operation at the store's edge,
/// [`StoreOp::Register`]): the bindings in force afterwards, as the store applied them (no
/// second read of the store), or why the change was refused.
pub(crate) fn apply(
    change: &RegisterChange,
    store: &dyn BindingStore,
    wall: SystemTime,
) -> Result<Registered, sotto_store::Error> {
    let (aor, new, max_contacts) = match change {
        RegisterChange::RemoveAll { aor } => {
            store.remove_all(aor, wall)?;
            return Ok(Registered::Current(store.bindings(aor, wall)?));
        }
        RegisterChange::Upsert {
            aor,
            bindings,
            max_contacts,
        } => (aor, bindings, *max_contacts),
    };
    let mut current = store.bindings(aor, wall)?;
    let added = new
        .iter()
        .filter(|b| b.is_active(wall) && !current.iter().any(|e| same_key(e, b)))
        .count();
    if current.len() + added > max_contacts {
        return Ok(Registered::TooManyContacts);
    }
    for b in new {
        match store.upsert(b, wall)? {
            Upsert::OutOfOrder { .. } => return Ok(Registered::OutOfOrder),
            Upsert::Inserted | Upsert::Updated { .. } => {
                match current.iter_mut().find(|e| same_key(e, b)) {
                    Some(slot) => *slot = b.clone(),
                    None => current.push(b.clone()),
                }
            }
            _ => current.retain(|e| !same_key(e, b)),
        }
    }
    Ok(Registered::Current(current))
}

#[cfg(test)]
mod tests;
