//! In-memory stores: for tests, and for a server that may forget everything on restart.
//!
//! ## Compact bindings
//!
//! A registrar may hold millions of contacts, so the bindings are not kept as [`Binding`]
//! values (fifteen fields, most of them owned strings with their own allocations and
//! capacity slack). Each address of record is **one boxed byte string** ([`Record`]): the AOR,
//! then each of its bindings packed as length-prefixed fields (see [`encode_binding`]). The
//! set of records is keyed by the AOR inside the record itself, so the AOR is stored once.
//! A registered contact with no GRUU costs one hash-table slot (16 bytes) and its share of one
//! allocation of about its text length. Records are decoded into [`Binding`]s on the way out
//! and rebuilt on a change (an AOR has a handful of bindings at most).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use sotto_sip::digest::{Algorithm, Ha1, UserRecord};

use crate::binding::{Step7, step7};
use crate::user::{check_record, realms_of};
use crate::{Binding, BindingKey, BindingStore, Error, Upsert, UserInfo, UserStore};

/// Users and bindings kept in memory behind one lock. Lost when dropped.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// username → realm → base algorithm name → HA1.
    users: BTreeMap<String, BTreeMap<String, BTreeMap<&'static str, Ha1>>>,
    /// One record per AOR with its bindings (expired ones included until purged).
    records: HashSet<Record>,
    /// How many bindings `records` holds.
    count: usize,
    /// temp GRUU → the AOR of the binding that holds it.
    temp_gruus: HashMap<Box<str>, Box<str>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        MemoryStore::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Every operation leaves `Inner` consistent before it can panic, so a poisoned lock
        // still guards valid data.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// The stored bindings of `aor`, expired ones included.
    fn load(&self, aor: &str) -> Result<Vec<Binding>, Error> {
        match self.records.get(aor.as_bytes()) {
            Some(r) => r.decode(),
            None => Ok(Vec::new()),
        }
    }

    /// Replaces the bindings of `aor` (`old` as stored, `new` to store) and keeps the GRUU
    /// index and the count in step.
    fn store(&mut self, aor: &str, old: &[Binding], new: &[Binding]) {
        for b in old {
            if let Some(g) = &b.temp_gruu
                && self.temp_gruus.get(g.as_str()).is_some_and(|a| &**a == aor)
            {
                self.temp_gruus.remove(g.as_str());
            }
        }
        for b in new {
            if let Some(g) = &b.temp_gruu {
                self.temp_gruus.insert(g.as_str().into(), aor.into());
            }
        }
        self.count = self.count.saturating_sub(old.len()) + new.len();
        if new.is_empty() {
            self.records.remove(aor.as_bytes());
        } else {
            self.records.replace(Record::encode(aor, new));
        }
    }

    /// Removes the binding of `aor` with `key` (expired or not) and returns it.
    fn take(&mut self, aor: &str, key: &BindingKey) -> Result<Option<Binding>, Error> {
        let old = self.load(aor)?;
        let Some(pos) = old.iter().position(|b| b.key() == *key) else {
            return Ok(None);
        };
        let mut new = old.clone();
        let taken = new.swap_remove(pos);
        self.store(aor, &old, &new);
        Ok(Some(taken))
    }
}

impl UserStore for MemoryStore {
    fn get(&self, username: &str, realm: &str) -> Result<Option<UserRecord>, Error> {
        let inner = self.lock();
        let Some(by_alg) = inner.users.get(username).and_then(|r| r.get(realm)) else {
            return Ok(None);
        };
        let mut record = UserRecord::new(username);
        for ha1 in by_alg.values() {
            record.insert(realm, ha1.clone());
        }
        Ok(Some(record))
    }

    fn put(&self, record: &UserRecord) -> Result<(), Error> {
        check_record(record)?;
        let mut inner = self.lock();
        put_locked(&mut inner, record);
        Ok(())
    }

    fn create(&self, record: &UserRecord) -> Result<(), Error> {
        check_record(record)?;
        let realms = realms_of(record);
        if realms.is_empty() {
            return Err(Error::InvalidRecord { field: "entries" });
        }
        let mut inner = self.lock();
        if let Some(stored) = inner.users.get(record.username())
            && let Some(realm) = realms.iter().find(|r| stored.contains_key(*r))
        {
            return Err(Error::UserExists {
                username: record.username().to_owned(),
                realm: realm.clone(),
            });
        }
        put_locked(&mut inner, record);
        Ok(())
    }

    fn delete(&self, username: &str) -> Result<bool, Error> {
        Ok(self.lock().users.remove(username).is_some())
    }

    fn list(&self) -> Result<Vec<UserInfo>, Error> {
        let inner = self.lock();
        let mut out = Vec::new();
        for (username, realms) in &inner.users {
            for (realm, by_alg) in realms {
                let algorithms = by_alg
                    .keys()
                    .filter_map(|name| Algorithm::from_name(name))
                    .collect();
                out.push(UserInfo::new(username.clone(), realm.clone(), algorithms));
            }
        }
        Ok(out)
    }
}

fn put_locked(inner: &mut Inner, record: &UserRecord) {
    let realms = realms_of(record);
    if realms.is_empty() {
        return;
    }
    let user = inner.users.entry(record.username().to_owned()).or_default();
    for realm in &realms {
        user.remove(realm);
    }
    for (realm, ha1) in record.entries() {
        user.entry(realm.to_owned())
            .or_default()
            .insert(ha1.algorithm().name(), ha1.clone());
    }
}

impl BindingStore for MemoryStore {
    fn bindings(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, Error> {
        let mut list = self.lock().load(aor)?;
        list.retain(|b| b.is_active(now));
        Ok(list)
    }

    fn upsert(&self, binding: &Binding, now: SystemTime) -> Result<Upsert, Error> {
        let new = binding.checked()?;
        let key = new.key();
        let mut inner = self.lock();
        let old = inner.load(&new.aor)?;
        let pos = old.iter().position(|b| b.key() == key);
        let existing = pos
            .and_then(|p| old.get(p))
            .filter(|b| b.is_active(now))
            .cloned();
        let decision = step7(&new, existing, now);
        if let Step7::OutOfOrder(existing) = decision {
            return Ok(Upsert::OutOfOrder { existing });
        }
        // Every other outcome drops the stored binding with this key (an expired leftover
        // included); Insert and Replace add the new one.
        let mut list = old.clone();
        if let Some(p) = pos {
            list.swap_remove(p);
        }
        let outcome = match decision {
            Step7::Absent => Upsert::Absent,
            Step7::Remove(previous) => Upsert::Removed { previous },
            Step7::Insert => Upsert::Inserted,
            Step7::Replace(previous) => Upsert::Updated { previous },
            Step7::OutOfOrder(existing) => Upsert::OutOfOrder { existing },
        };
        let adds = matches!(outcome, Upsert::Inserted | Upsert::Updated { .. });
        if adds {
            list.push(new);
        }
        if adds || pos.is_some() {
            inner.store(&binding.aor, &old, &list);
        }
        Ok(outcome)
    }

    fn remove(&self, aor: &str, key: &BindingKey) -> Result<Option<Binding>, Error> {
        self.lock().take(aor, key)
    }

    fn remove_all(&self, aor: &str, now: SystemTime) -> Result<usize, Error> {
        let mut inner = self.lock();
        let old = inner.load(aor)?;
        inner.store(aor, &old, &[]);
        Ok(old.iter().filter(|b| b.is_active(now)).count())
    }

    fn by_temp_gruu(&self, temp_gruu: &str, now: SystemTime) -> Result<Option<Binding>, Error> {
        let inner = self.lock();
        let Some(aor) = inner.temp_gruus.get(temp_gruu) else {
            return Ok(None);
        };
        Ok(inner
            .load(aor)?
            .into_iter()
            .find(|b| b.temp_gruu.as_deref() == Some(temp_gruu))
            .filter(|b| b.is_active(now)))
    }

    fn purge_expired(&self, now: SystemTime) -> Result<usize, Error> {
        let mut inner = self.lock();
        let now = crate::unix_secs(now);
        // Only the expiry of each binding is read to find the records to rewrite.
        let stale: Vec<Box<str>> = inner
            .records
            .iter()
            .filter(|r| r.any_expired(now))
            .map(|r| r.aor().into())
            .collect();
        let mut purged = 0;
        for aor in stale {
            let old = inner.load(&aor)?;
            let kept: Vec<Binding> = old
                .iter()
                .filter(|b| crate::unix_secs(b.expires_at) > now)
                .cloned()
                .collect();
            purged += old.len() - kept.len();
            inner.store(&aor, &old, &kept);
        }
        Ok(purged)
    }

    fn count(&self) -> Result<usize, Error> {
        Ok(self.lock().count)
    }
}

/// All the bindings of one AOR in one allocation: `varint(len) aor`, then for each binding
/// `varint(len) entry` (see [`encode_binding`]). Hashed and compared by its AOR only, so the
/// set of records is a map keyed by AOR that stores each AOR once.
#[derive(Clone)]
struct Record(Box<[u8]>);

impl Record {
    fn encode(aor: &str, bindings: &[Binding]) -> Record {
        let mut out = Vec::with_capacity(aor.len() + 1 + 96 * bindings.len());
        put_bytes(&mut out, aor.as_bytes());
        let mut entry = Vec::new();
        for b in bindings {
            entry.clear();
            encode_binding(&mut entry, b);
            put_bytes(&mut out, &entry);
        }
        Record(out.into_boxed_slice())
    }

    /// The AOR bytes (empty if the record were malformed, which [`Record::encode`] never
    /// makes).
    fn aor_bytes(&self) -> &[u8] {
        Reader::new(&self.0).bytes().unwrap_or_default()
    }

    fn aor(&self) -> &str {
        std::str::from_utf8(self.aor_bytes()).unwrap_or_default()
    }

    /// The packed bindings.
    fn entries(&self) -> impl Iterator<Item = Option<&[u8]>> {
        let mut r = Reader::new(&self.0);
        let aor = r.bytes();
        let mut failed = aor.is_none();
        std::iter::from_fn(move || {
            if failed || r.is_empty() {
                return None;
            }
            let e = r.bytes();
            failed = e.is_none();
            Some(e)
        })
    }

    fn decode(&self) -> Result<Vec<Binding>, Error> {
        let aor = self.aor();
        self.entries()
            .map(|e| {
                e.and_then(|e| decode_binding(aor, e))
                    .ok_or(Error::Corrupt { field: "binding" })
            })
            .collect()
    }

    /// Whether a binding has expired at `now` (Unix seconds); a malformed one counts as
    /// expired so that purging rewrites (and reports) it.
    fn any_expired(&self, now: i64) -> bool {
        self.entries().any(|e| {
            e.and_then(|e| Reader::new(e).varint())
                .and_then(|s| i64::try_from(s).ok())
                .is_none_or(|s| s <= now)
        })
    }
}

impl Hash for Record {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.aor_bytes().hash(state);
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Self) -> bool {
        self.aor_bytes() == other.aor_bytes()
    }
}

impl Eq for Record {}

impl Borrow<[u8]> for Record {
    fn borrow(&self) -> &[u8] {
        self.aor_bytes()
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("aor", &self.aor())
            .field("bytes", &self.0.len())
            .finish()
    }
}

const HAS_INSTANCE: u8 = 1;
const HAS_REG_ID: u8 = 1 << 1;
const HAS_Q: u8 = 1 << 2;
const HAS_SOURCE: u8 = 1 << 3;
const HAS_TRANSPORT: u8 = 1 << 4;
const HAS_FLOW: u8 = 1 << 5;
const HAS_USER_AGENT: u8 = 1 << 6;
const HAS_TEMP_GRUU: u8 = 1 << 7;

/// One binding without its AOR: `varint(expires, Unix seconds)` first (read alone by
/// [`Record::any_expired`]), `varint(cseq)`, a byte of presence flags, the contact, its
/// parameters and the Call-ID as `varint(len) bytes`, then the optional fields present in
/// the flags, in flag order, then the Path count and values.
fn encode_binding(out: &mut Vec<u8>, b: &Binding) {
    put_varint(out, crate::unix_secs(b.expires_at).unsigned_abs());
    put_varint(out, u64::from(b.cseq));
    let flag = |present: bool, bit: u8| if present { bit } else { 0 };
    out.push(
        flag(b.instance_id.is_some(), HAS_INSTANCE)
            | flag(b.reg_id.is_some(), HAS_REG_ID)
            | flag(b.q.is_some(), HAS_Q)
            | flag(b.source.is_some(), HAS_SOURCE)
            | flag(b.transport.is_some(), HAS_TRANSPORT)
            | flag(b.flow.is_some(), HAS_FLOW)
            | flag(b.user_agent.is_some(), HAS_USER_AGENT)
            | flag(b.temp_gruu.is_some(), HAS_TEMP_GRUU),
    );
    put_bytes(out, b.contact.as_bytes());
    put_bytes(out, b.contact_params.as_bytes());
    put_bytes(out, b.call_id.as_bytes());
    if let Some(s) = &b.instance_id {
        put_bytes(out, s.as_bytes());
    }
    if let Some(r) = b.reg_id {
        put_varint(out, u64::from(r));
    }
    if let Some(q) = b.q {
        out.extend_from_slice(&q.to_le_bytes());
    }
    match b.source {
        Some(SocketAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_le_bytes());
        }
        Some(SocketAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.ip().octets());
            out.extend_from_slice(&a.port().to_le_bytes());
            put_varint(out, u64::from(a.flowinfo()));
            put_varint(out, u64::from(a.scope_id()));
        }
        None => {}
    }
    for s in [&b.transport, &b.flow, &b.user_agent, &b.temp_gruu]
        .into_iter()
        .flatten()
    {
        put_bytes(out, s.as_bytes());
    }
    put_varint(out, b.path.len() as u64);
    for p in &b.path {
        put_bytes(out, p.as_bytes());
    }
}

/// The inverse of [`encode_binding`]; `None` if `entry` is not one.
fn decode_binding(aor: &str, entry: &[u8]) -> Option<Binding> {
    let mut r = Reader::new(entry);
    let expires = i64::try_from(r.varint()?).ok()?;
    let cseq = u32::try_from(r.varint()?).ok()?;
    let flags = r.byte()?;
    let has = |bit: u8| flags & bit != 0;
    let contact = r.string()?;
    let contact_params = r.string()?;
    let call_id = r.string()?;
    let mut b = Binding::new(aor, contact, call_id, cseq, crate::from_unix_secs(expires));
    b.contact_params = contact_params;
    if has(HAS_INSTANCE) {
        b.instance_id = Some(r.string()?);
    }
    if has(HAS_REG_ID) {
        b.reg_id = Some(u32::try_from(r.varint()?).ok()?);
    }
    if has(HAS_Q) {
        b.q = Some(f32::from_le_bytes(r.array()?));
    }
    if has(HAS_SOURCE) {
        b.source = Some(match r.byte()? {
            4 => {
                let ip = Ipv4Addr::from(r.array::<4>()?);
                SocketAddr::V4(SocketAddrV4::new(ip, u16::from_le_bytes(r.array()?)))
            }
            6 => {
                let ip = Ipv6Addr::from(r.array::<16>()?);
                let port = u16::from_le_bytes(r.array()?);
                let flowinfo = u32::try_from(r.varint()?).ok()?;
                let scope = u32::try_from(r.varint()?).ok()?;
                SocketAddr::V6(SocketAddrV6::new(ip, port, flowinfo, scope))
            }
            _ => return None,
        });
    }
    if has(HAS_TRANSPORT) {
        b.transport = Some(r.string()?);
    }
    if has(HAS_FLOW) {
        b.flow = Some(r.string()?);
    }
    if has(HAS_USER_AGENT) {
        b.user_agent = Some(r.string()?);
    }
    if has(HAS_TEMP_GRUU) {
        b.temp_gruu = Some(r.string()?);
    }
    let n = r.varint()?;
    // Each value takes at least one byte: a count beyond what is left is corrupt.
    if n > entry.len() as u64 {
        return None;
    }
    b.path = (0..n).map(|_| r.string()).collect::<Option<_>>()?;
    r.is_empty().then_some(b)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// Reads what `put_*` wrote; every read is bounds-checked and returns `None` past the end.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(b: &'a [u8]) -> Self {
        Reader { rest: b }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.rest.split_first()?;
        self.rest = rest;
        Some(b)
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.rest.split_at_checked(n)?;
        self.rest = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f).checked_shl(shift)?;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = usize::try_from(self.varint()?).ok()?;
        self.take(n)
    }

    fn string(&mut self) -> Option<String> {
        std::str::from_utf8(self.bytes()?).ok().map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn full() -> Binding {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_123);
        let mut b = Binding::new("sip:a@example.test", "sip:a@192.0.2.1:5070", "cid", 7, t);
        b.contact_params = ";+sip.instance=\"<urn:uuid:1>\";reg-id=2".into();
        b.instance_id = Some("urn:uuid:1".into());
        b.reg_id = Some(u32::MAX);
        b.q = Some(0.5);
        b.source = Some(SocketAddr::V6(SocketAddrV6::new(
            Ipv6Addr::LOCALHOST,
            5080,
            9,
            3,
        )));
        b.transport = Some("TLS".into());
        b.flow = Some("42".into());
        b.user_agent = Some("ua/1 é".into());
        b.temp_gruu = Some("sip:tgruu.x@example.test;gr".into());
        b.path = vec!["<sip:p1;lr>".into(), "<sip:p2;lr>".into()];
        b
    }

    #[test]
    fn packed_binding_round_trips() {
        let mut bare = Binding::new(
            "sip:b@example.test",
            "sip:b@h",
            "c",
            0,
            SystemTime::UNIX_EPOCH,
        );
        bare.source = Some("127.0.0.1:9".parse().expect("addr"));
        for b in [full(), bare] {
            let r = Record::encode(&b.aor, std::slice::from_ref(&b));
            assert_eq!(r.aor(), b.aor);
            assert_eq!(r.decode().expect("decode"), vec![b]);
        }
        let two = [full(), {
            let mut b = full();
            b.reg_id = None;
            b
        }];
        let r = Record::encode("sip:a@example.test", &two);
        assert_eq!(r.decode().expect("decode"), two.to_vec());
    }

    #[test]
    fn truncated_or_altered_records_do_not_decode_or_panic() {
        let r = Record::encode("sip:a@example.test", &[full()]);
        for n in 0..r.0.len() {
            let cut = Record(r.0.get(..n).unwrap_or_default().into());
            assert!(
                cut.decode().is_err() || cut.decode().is_ok_and(|v| v.is_empty()),
                "{n}"
            );
            let _ = cut.any_expired(0);
        }
        for i in 0..r.0.len() {
            let mut bytes = r.0.to_vec();
            if let Some(b) = bytes.get_mut(i) {
                *b ^= 0xff;
            }
            let _ = Record(bytes.into()).decode();
        }
    }
}
