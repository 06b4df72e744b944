//! Registrar bindings (RFC 3261 §10.3, RFC 5626 §6, RFC 5627 §5, RFC 3327).
//!
//! A binding maps an address of record to one contact. Which stored binding a new one
//! replaces is decided by its [`BindingKey`]:
//!
//! - with `+sip.instance` and `reg-id` (outbound, RFC 5626 §6): the AOR, instance ID and
//!   reg-id; one instance may hold one binding per reg-id (one per flow);
//! - with `+sip.instance` only (RFC 5627 §5, RFC 5626 §6): the AOR and the instance ID, so a
//!   device that changes address replaces its own binding instead of adding one;
//! - otherwise (RFC 3261 §10.3 step 7): the AOR and the contact URI. The caller passes the URI
//!   in a canonical form (RFC 3261 §19.1.4 comparison); the store compares it byte for byte.
//!
//! [`BindingStore::upsert`] applies step 7: a binding with the same Call-ID and a CSeq not
//! higher than the stored one is refused ([`Upsert::OutOfOrder`]); a binding whose expiry is
//! not after `now` removes the stored one (an unregistration, `expires=0`).

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::Error;

/// One contact registered for an address of record.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Binding {
    /// The address of record (canonical form, e.g. `sip:alice@example.test`).
    pub aor: String,
    /// The contact URI, without angle brackets or header parameters.
    pub contact: String,
    /// The Contact header parameters to give back in responses and to use for callee
    /// capabilities (RFC 3840), raw, e.g. `;+sip.instance="<urn:uuid:…>";reg-id=1`; without
    /// `expires` and `q`, which have their own fields. Empty if none.
    pub contact_params: String,
    /// The `+sip.instance` value (RFC 5626 §4.1, RFC 5627), without quotes or angle brackets.
    pub instance_id: Option<String>,
    /// The `reg-id` value (RFC 5626 §4.2); only meaningful with an instance ID.
    pub reg_id: Option<u32>,
    /// The Call-ID of the REGISTER that created or last refreshed the binding.
    pub call_id: String,
    /// Its CSeq number.
    pub cseq: u32,
    /// When the binding expires (stored with second precision).
    pub expires_at: SystemTime,
    /// The `q` preference, 0.0 to 1.0 (RFC 3261 §10.2.1.2), if given.
    pub q: Option<f32>,
    /// The Path header values of the REGISTER, in order (RFC 3327), each one non-empty and on
    /// one line.
    pub path: Vec<String>,
    /// Where the REGISTER came from (the `received`/`rport` address).
    pub source: Option<SocketAddr>,
    /// The transport it came over (`UDP`, `TCP`, `TLS`, `WS`, `WSS`).
    pub transport: Option<String>,
    /// The connection or flow it came over (RFC 5626 flow token, or a transport connection id).
    pub flow: Option<String>,
    /// The User-Agent header of the REGISTER.
    pub user_agent: Option<String>,
    /// The latest temp GRUU handed out for this binding (RFC 5627 §3.2), if any.
    pub temp_gruu: Option<String>,
}

impl Binding {
    /// A binding with the required fields; the optional ones are empty.
    pub fn new(
        aor: impl Into<String>,
        contact: impl Into<String>,
        call_id: impl Into<String>,
        cseq: u32,
        expires_at: SystemTime,
    ) -> Self {
        Binding {
            aor: aor.into(),
            contact: contact.into(),
            contact_params: String::new(),
            instance_id: None,
            reg_id: None,
            call_id: call_id.into(),
            cseq,
            expires_at,
            q: None,
            path: Vec::new(),
            source: None,
            transport: None,
            flow: None,
            user_agent: None,
            temp_gruu: None,
        }
    }

    /// The key that decides which stored binding this one replaces (see the module doc).
    pub fn key(&self) -> BindingKey {
        match &self.instance_id {
            Some(id) => BindingKey::Instance {
                instance_id: id.clone(),
                reg_id: self.reg_id,
            },
            None => BindingKey::Contact(self.contact.clone()),
        }
    }

    /// Whether the binding is still in force at `now` (second precision, as stored).
    pub fn is_active(&self, now: SystemTime) -> bool {
        crate::unix_secs(self.expires_at) > crate::unix_secs(now)
    }

    /// An estimate of the heap bytes this binding owns (string and vector capacities), for
    /// memory sizing.
    pub fn heap_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::capacity);
        self.aor.capacity()
            + self.contact.capacity()
            + self.contact_params.capacity()
            + opt(&self.instance_id)
            + self.call_id.capacity()
            + self.path.capacity() * std::mem::size_of::<String>()
            + self.path.iter().map(String::capacity).sum::<usize>()
            + opt(&self.transport)
            + opt(&self.flow)
            + opt(&self.user_agent)
            + opt(&self.temp_gruu)
    }

    /// Checks the rules of the stored format; returns the binding with its expiry truncated to
    /// the second.
    pub(crate) fn checked(&self) -> Result<Binding, Error> {
        let one_line = |s: &str| !s.contains(['\r', '\n']);
        if self.aor.is_empty() || !one_line(&self.aor) {
            return Err(Error::InvalidRecord { field: "aor" });
        }
        if self.contact.is_empty() || !one_line(&self.contact) {
            return Err(Error::InvalidRecord { field: "contact" });
        }
        if let Some(q) = self.q
            && !(0.0..=1.0).contains(&q)
        {
            return Err(Error::InvalidRecord { field: "q" });
        }
        if self.path.iter().any(|p| p.is_empty() || !one_line(p)) {
            return Err(Error::InvalidRecord { field: "path" });
        }
        if self.instance_id.as_deref().is_some_and(str::is_empty) {
            return Err(Error::InvalidRecord {
                field: "instance_id",
            });
        }
        let mut b = self.clone();
        b.expires_at = crate::from_unix_secs(crate::unix_secs(self.expires_at));
        Ok(b)
    }
}

/// What identifies a binding within its address of record (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BindingKey {
    /// No instance ID: the contact URI (RFC 3261 §10.3).
    Contact(String),
    /// An instance ID, with the reg-id if the contact used outbound (RFC 5626 §6).
    Instance {
        /// The `+sip.instance` value.
        instance_id: String,
        /// The `reg-id`, if any.
        reg_id: Option<u32>,
    },
}

impl BindingKey {
    /// A text form unique per key, used as a database key.
    pub(crate) fn storage_form(&self) -> String {
        match self {
            BindingKey::Contact(uri) => format!("c {uri}"),
            BindingKey::Instance {
                instance_id,
                reg_id: None,
            } => format!("i {instance_id}"),
            BindingKey::Instance {
                instance_id,
                reg_id: Some(r),
            } => format!("r {r} {instance_id}"),
        }
    }
}

/// What [`BindingStore::upsert`] did.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Upsert {
    /// No active binding had this key; the binding was added.
    Inserted,
    /// An active binding with this key was replaced (a refresh or a move).
    Updated {
        /// The binding as it was.
        previous: Binding,
    },
    /// The binding had expired on arrival (`expires=0`) and the active one with its key was
    /// removed.
    Removed {
        /// The binding removed.
        previous: Binding,
    },
    /// The binding had expired on arrival and no active binding had its key: nothing changed.
    Absent,
    /// Same Call-ID as the stored binding but a CSeq not higher (RFC 3261 §10.3 step 7): the
    /// request is out of order and must fail; nothing changed.
    OutOfOrder {
        /// The stored binding, unchanged.
        existing: Binding,
    },
}

/// The registrar's location service. Time comes in as `now`; nothing here reads a clock.
///
/// Expired bindings are never returned, but stay stored until
/// [`purge_expired`](Self::purge_expired) removes them.
pub trait BindingStore: Send + Sync {
    /// The active bindings of `aor` at `now`, in no particular order.
    fn bindings(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, Error>;

    /// Adds, refreshes or removes the binding with `binding.key()` in `binding.aor`,
    /// following RFC 3261 §10.3 step 7 (see [`Upsert`]). Atomic.
    fn upsert(&self, binding: &Binding, now: SystemTime) -> Result<Upsert, Error>;

    /// Removes the binding of `aor` with `key`, whatever its Call-ID and CSeq; returns it
    /// (expired or not) if there was one.
    fn remove(&self, aor: &str, key: &BindingKey) -> Result<Option<Binding>, Error>;

    /// Removes every binding of `aor` (`Contact: *`, RFC 3261 §10.3 step 6); returns how many
    /// active ones were removed at `now`.
    fn remove_all(&self, aor: &str, now: SystemTime) -> Result<usize, Error>;

    /// The active binding whose latest temp GRUU is `temp_gruu`, if any.
    fn by_temp_gruu(&self, temp_gruu: &str, now: SystemTime) -> Result<Option<Binding>, Error>;

    /// Deletes the bindings expired at `now`; returns how many.
    fn purge_expired(&self, now: SystemTime) -> Result<usize, Error>;

    /// How many bindings are stored, expired ones not yet purged included.
    fn count(&self) -> Result<usize, Error>;

    /// Starts a batch (group commit): until [`batch_end`](Self::batch_end) the store may make
    /// this process's writes durable together (SQLite: one transaction, begun by the first
    /// write). Nothing written in a batch may be acknowledged before `batch_end` returned
    /// `Ok`. Default: nothing (every write is durable when it returns).
    fn batch_begin(&self) -> Result<(), Error> {
        Ok(())
    }

    /// Ends the batch begun by [`batch_begin`](Self::batch_begin): its writes are durable (as
    /// far as the store's sync setting goes) when this returns `Ok`. Default: nothing.
    fn batch_end(&self) -> Result<(), Error> {
        Ok(())
    }
}

/// The decision of RFC 3261 §10.3 step 7, shared by the stores: given the active binding with
/// the same key (if any), what `upsert` does.
pub(crate) enum Step7 {
    Insert,
    Replace(Binding),
    Remove(Binding),
    Absent,
    OutOfOrder(Binding),
}

pub(crate) fn step7(new: &Binding, existing: Option<Binding>, now: SystemTime) -> Step7 {
    let removing = !new.is_active(now);
    match existing {
        None if removing => Step7::Absent,
        None => Step7::Insert,
        Some(old) if old.call_id == new.call_id && new.cseq <= old.cseq => Step7::OutOfOrder(old),
        Some(old) if removing => Step7::Remove(old),
        Some(old) => Step7::Replace(old),
    }
}
