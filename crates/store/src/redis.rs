//! The shared store: registrar bindings (RFC 3261 §10.3, RFC 5626 §6, RFC 5627) in Redis, so
//! several server processes see one location service and any of them can route a call to a
//! contact registered through another.
//!
//! ## Key layout (version 1 of the layout, in every key name)
//!
//! With the namespace `ns` (default [`DEFAULT_NAMESPACE`]):
//!
//! | key | type | content |
//! |---|---|---|
//! | `ns:v1:aor:<aor>` | hash | field: the binding key's text form; value: the encoded binding |
//! | `ns:v1:expiry` | sorted set | member `<aor>\n<binding key>`; score: expiry, Unix seconds |
//! | `ns:v1:gruu` | hash | field: a temp GRUU; value: the member of the binding holding it |
//!
//! ## Stored format
//!
//! A binding value is an explicit byte encoding, never a serde dump: its first byte is the
//! format version ([`REDIS_BINDING_FORMAT`]); then, in this order, the contact, contact
//! parameters, instance ID, reg-id, Call-ID, CSeq, expiry, q, Path, source, transport, flow,
//! User-Agent and temp GRUU. A string is a 4-byte big-endian length and its UTF-8 bytes; an
//! optional value is a byte 0 (absent) or 1 followed by the value; integers are big-endian;
//! `q` is the big-endian IEEE 754 bits of the `f32`; the source address is its text form; the
//! Path is a 4-byte count followed by that many strings. The AOR is not repeated in the value
//! (it is in the key). A value of an unknown version is refused with
//! [`Error::UnknownFormat`](crate::Error::UnknownFormat), never misread.
//!
//! ## Consistency between processes
//!
//! Every change of one binding is a compare-and-set, done by one Lua script (`EVALSHA`): it
//! applies the change (hash field, expiry set, GRUU index) only if the stored value is still
//! the one the RFC 3261 §10.3 step 7 decision was made on, else the store reads again and
//! decides again (at most [`MAX_CAS_ATTEMPTS`] times). So two processes racing on one contact
//! can never both accept the same Call-ID and CSeq, and a lower CSeq never overwrites a higher
//! one.
//!
//! ## Connections
//!
//! Connections are opened on demand and kept in a small idle pool; a connection that failed
//! with an I/O error is dropped, and an operation that found its pooled connection broken (the
//! Redis server restarted) is run once more on a new one. If the server failed after applying
//! a change but before answering, that retry sees the change already made, and may answer
//! [`Upsert::OutOfOrder`](crate::Upsert::OutOfOrder) for it: the phone then registers again
//! with the next CSeq.

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use ::redis::{Client, Connection, ConnectionLike, RedisError, Script};

use crate::binding::{Step7, step7};
use crate::{Binding, BindingKey, BindingStore, Error, Upsert, from_unix_secs, unix_secs};

/// The format version written as the first byte of every binding value in Redis.
pub const REDIS_BINDING_FORMAT: u8 = 1;

/// The namespace [`RedisStore::open`] puts its keys under.
pub const DEFAULT_NAMESPACE: &str = "sotto";

/// How many times one change is decided again after another process changed the same binding.
pub const MAX_CAS_ATTEMPTS: usize = 32;

/// How long opening a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one command may wait for its reply.
const IO_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;
/// Expired bindings read per round by `purge_expired`.
const PURGE_BATCH: usize = 1000;

/// Compare-and-set of one binding. KEYS: aor hash, expiry set, GRUU index. ARGV: field,
/// expected value ("" = absent), new value ("" = delete), new expiry, member, old GRUU and new
/// GRUU ("-" = none, "+<gruu>" = some). Returns 1 if applied, 0 if the stored value changed.
const CAS_LUA: &str = r"
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if not cur then cur = '' end
if cur ~= ARGV[2] then return 0 end
if string.sub(ARGV[6], 1, 1) == '+' then
  local og = string.sub(ARGV[6], 2)
  if redis.call('HGET', KEYS[3], og) == ARGV[5] then redis.call('HDEL', KEYS[3], og) end
end
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[5])
else
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[5])
  if string.sub(ARGV[7], 1, 1) == '+' then
    redis.call('HSET', KEYS[3], string.sub(ARGV[7], 2), ARGV[5])
  end
end
return 1
";

/// Registrar bindings in a Redis server (or any server speaking its protocol, e.g. Valkey),
/// shared by every process that opens the same URL and namespace.
///
/// Implements [`BindingStore`] only: users (HA1 values) stay in each server's own
/// [`SqliteStore`](crate::SqliteStore).
pub struct RedisStore {
    client: Client,
    idle: Mutex<Vec<Connection>>,
    namespace: String,
    expiry_key: String,
    gruu_key: String,
    cas: Script,
}

impl fmt::Debug for RedisStore {
    // The URL may hold a password: only the namespace is shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// Why an operation on one connection failed.
enum Fail {
    Redis(RedisError),
    Store(Error),
}

impl From<RedisError> for Fail {
    fn from(e: RedisError) -> Self {
        Fail::Redis(e)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Store(e)
    }
}

impl From<RedisError> for Error {
    fn from(e: RedisError) -> Self {
        Error::Backend(Box::new(e))
    }
}

impl From<Fail> for Error {
    fn from(f: Fail) -> Self {
        match f {
            Fail::Redis(e) => e.into(),
            Fail::Store(e) => e,
        }
    }
}

/// Whether a connection that returned `e` must be dropped.
fn is_broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_unrecoverable_error()
}

impl RedisStore {
    /// Connects to `url` (`redis://127.0.0.1:6379/0`, `redis://:password@host/0`,
    /// `unix:///run/redis.sock`, `redis+unix:///path?db=0`), checks the server answers, and
    /// uses the keys of [`DEFAULT_NAMESPACE`].
    pub fn open(url: &str) -> Result<Self, Error> {
        Self::open_with_namespace(url, DEFAULT_NAMESPACE)
    }

    /// Like [`open`](Self::open), with the keys under `namespace` instead (several
    /// deployments, or tests, on one Redis database). `namespace` must not be empty.
    pub fn open_with_namespace(url: &str, namespace: &str) -> Result<Self, Error> {
        if namespace.is_empty() {
            return Err(Error::InvalidRecord { field: "namespace" });
        }
        let client = Client::open(url)?;
        let store = RedisStore {
            client,
            idle: Mutex::new(Vec::new()),
            namespace: namespace.to_owned(),
            expiry_key: format!("{namespace}:v1:expiry"),
            gruu_key: format!("{namespace}:v1:gruu"),
            cas: Script::new(CAS_LUA),
        };
        store.with_conn(|con| {
            let pong: String = ::redis::cmd("PING").query(con)?;
            if pong == "PONG" {
                Ok(())
            } else {
                Err(Fail::Store(Error::Backend(
                    format!("unexpected answer to PING: {pong:?}").into(),
                )))
            }
        })?;
        Ok(store)
    }

    /// The namespace of this store's keys.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The hash key holding the bindings of `aor`.
    pub fn aor_key(&self, aor: &str) -> String {
        format!("{}:v1:aor:{aor}", self.namespace)
    }

    fn lock_idle(&self) -> MutexGuard<'_, Vec<Connection>> {
        // The pool is a plain list: a panic while holding the lock cannot leave it invalid.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connect(&self) -> Result<Connection, Error> {
        let con = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        con.set_read_timeout(Some(IO_TIMEOUT))?;
        con.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(con)
    }

    fn release(&self, con: Connection) {
        if con.is_open() {
            let mut idle = self.lock_idle();
            if idle.len() < MAX_IDLE {
                idle.push(con);
            }
        }
    }

    /// Runs `op` on a pooled (or new) connection; runs it once more on a new connection if the
    /// pooled one turned out broken.
    fn with_conn<T>(
        &self,
        mut op: impl FnMut(&mut Connection) -> Result<T, Fail>,
    ) -> Result<T, Error> {
        let pooled = self.lock_idle().pop();
        let was_pooled = pooled.is_some();
        let mut con = match pooled {
            Some(c) => c,
            None => self.connect()?,
        };
        match op(&mut con) {
            Ok(v) => {
                self.release(con);
                Ok(v)
            }
            Err(Fail::Redis(e)) if is_broken(&e) => {
                drop(con);
                if !was_pooled {
                    return Err(e.into());
                }
                let mut con = self.connect()?;
                let result = op(&mut con);
                match &result {
                    Err(Fail::Redis(e)) if is_broken(e) => {}
                    _ => self.release(con),
                }
                result.map_err(Error::from)
            }
            Err(e) => {
                self.release(con);
                Err(e.into())
            }
        }
    }

    /// Applies one change if the stored value of `field` is still `expected`. `new` is the
    /// binding to store (`None`: delete); `old_gruu` the temp GRUU of the stored binding.
    #[allow(clippy::too_many_arguments)]
    fn cas(
        &self,
        con: &mut Connection,
        aor: &str,
        field: &str,
        expected: Option<&[u8]>,
        new: Option<(&[u8], &Binding)>,
        old_gruu: Option<&str>,
    ) -> Result<bool, Fail> {
        let gruu_arg = |g: Option<&str>| match g {
            Some(g) => format!("+{g}"),
            None => "-".to_owned(),
        };
        let (value, expires, new_gruu): (&[u8], i64, Option<&str>) = match new {
            Some((value, b)) => (value, unix_secs(b.expires_at), b.temp_gruu.as_deref()),
            None => (&[], 0, None),
        };
        let applied: i64 = self
            .cas
            .key(self.aor_key(aor))
            .key(&self.expiry_key)
            .key(&self.gruu_key)
            .arg(field)
            .arg(expected.unwrap_or(&[]))
            .arg(value)
            .arg(expires)
            .arg(member(aor, field))
            .arg(gruu_arg(old_gruu))
            .arg(gruu_arg(new_gruu))
            .invoke(con)?;
        Ok(applied == 1)
    }

    /// Deletes `field` of `aor` if it still holds `raw`; returns the decoded binding (or
    /// `None` if it is undecodable) and whether the deletion happened.
    fn cas_delete(
        &self,
        con: &mut Connection,
        aor: &str,
        field: &str,
        raw: &[u8],
    ) -> Result<(Result<Binding, Error>, bool), Fail> {
        let decoded = decode(aor, field, raw);
        let gruu = decoded.as_ref().ok().and_then(|b| b.temp_gruu.clone());
        let done = self.cas(con, aor, field, Some(raw), None, gruu.as_deref())?;
        Ok((decoded, done))
    }

    /// Removes `field` of `aor` whatever it holds; returns the binding removed, if any.
    fn remove_field(
        &self,
        con: &mut Connection,
        aor: &str,
        field: &str,
    ) -> Result<Option<Binding>, Fail> {
        let key = self.aor_key(aor);
        for _ in 0..MAX_CAS_ATTEMPTS {
            let raw: Option<Vec<u8>> = ::redis::cmd("HGET").arg(&key).arg(field).query(con)?;
            let Some(raw) = raw else {
                return Ok(None);
            };
            let (decoded, done) = self.cas_delete(con, aor, field, &raw)?;
            if done {
                return Ok(Some(decoded?));
            }
        }
        Err(contention())
    }
}

fn contention() -> Fail {
    Fail::Store(Error::Backend(
        format!("binding changed concurrently {MAX_CAS_ATTEMPTS} times in a row").into(),
    ))
}

/// The expiry-set member (and GRUU index value) naming one binding. An AOR holds no line
/// break, so the first `\n` separates it from the binding key.
fn member(aor: &str, field: &str) -> String {
    format!("{aor}\n{field}")
}

impl BindingStore for RedisStore {
    fn bindings(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, Error> {
        let key = self.aor_key(aor);
        self.with_conn(|con| {
            let flat: Vec<Vec<u8>> = ::redis::cmd("HGETALL").arg(&key).query(con)?;
            let mut out = Vec::new();
            for pair in flat.chunks_exact(2) {
                if let [field, raw] = pair {
                    let field = std::str::from_utf8(field).map_err(|_| corrupt("binding_key"))?;
                    let b = decode(aor, field, raw)?;
                    if b.is_active(now) {
                        out.push(b);
                    }
                }
            }
            Ok(out)
        })
    }

    fn upsert(&self, binding: &Binding, now: SystemTime) -> Result<Upsert, Error> {
        let new = binding.checked()?;
        let field = new.key().storage_form();
        let encoded = encode(&new)?;
        let key = self.aor_key(&new.aor);
        self.with_conn(|con| {
            for _ in 0..MAX_CAS_ATTEMPTS {
                let raw: Option<Vec<u8>> = ::redis::cmd("HGET").arg(&key).arg(&field).query(con)?;
                let stored = raw
                    .as_deref()
                    .map(|r| decode(&new.aor, &field, r))
                    .transpose()?;
                let old_gruu = stored.as_ref().and_then(|b| b.temp_gruu.clone());
                let active = stored.filter(|b| b.is_active(now));
                let (outcome, write) = match step7(&new, active, now) {
                    Step7::OutOfOrder(existing) => return Ok(Upsert::OutOfOrder { existing }),
                    Step7::Absent => (Upsert::Absent, false),
                    Step7::Remove(previous) => (Upsert::Removed { previous }, false),
                    Step7::Insert => (Upsert::Inserted, true),
                    Step7::Replace(previous) => (Upsert::Updated { previous }, true),
                };
                if !write && raw.is_none() {
                    return Ok(outcome);
                }
                let value = write.then_some((encoded.as_slice(), &new));
                if self.cas(
                    con,
                    &new.aor,
                    &field,
                    raw.as_deref(),
                    value,
                    old_gruu.as_deref(),
                )? {
                    return Ok(outcome);
                }
            }
            Err(contention())
        })
    }

    fn remove(&self, aor: &str, key: &BindingKey) -> Result<Option<Binding>, Error> {
        let field = key.storage_form();
        self.with_conn(|con| self.remove_field(con, aor, &field))
    }

    fn remove_all(&self, aor: &str, now: SystemTime) -> Result<usize, Error> {
        let key = self.aor_key(aor);
        self.with_conn(|con| {
            let fields: Vec<String> = ::redis::cmd("HKEYS").arg(&key).query(con)?;
            let mut active = 0;
            for field in &fields {
                if let Some(b) = self.remove_field(con, aor, field)?
                    && b.is_active(now)
                {
                    active += 1;
                }
            }
            Ok(active)
        })
    }

    fn by_temp_gruu(&self, temp_gruu: &str, now: SystemTime) -> Result<Option<Binding>, Error> {
        self.with_conn(|con| {
            let member: Option<String> = ::redis::cmd("HGET")
                .arg(&self.gruu_key)
                .arg(temp_gruu)
                .query(con)?;
            let Some((aor, field)) = member.as_deref().and_then(|m| m.split_once('\n')) else {
                return Ok(None);
            };
            let raw: Option<Vec<u8>> = ::redis::cmd("HGET")
                .arg(self.aor_key(aor))
                .arg(field)
                .query(con)?;
            let Some(raw) = raw else {
                return Ok(None);
            };
            let b = decode(aor, field, &raw)?;
            Ok((b.is_active(now) && b.temp_gruu.as_deref() == Some(temp_gruu)).then_some(b))
        })
    }

    fn purge_expired(&self, now: SystemTime) -> Result<usize, Error> {
        let now_secs = unix_secs(now);
        self.with_conn(|con| {
            let mut purged = 0;
            loop {
                let batch: Vec<String> = ::redis::cmd("ZRANGEBYSCORE")
                    .arg(&self.expiry_key)
                    .arg("-inf")
                    .arg(now_secs)
                    .arg("LIMIT")
                    .arg(0)
                    .arg(PURGE_BATCH)
                    .query(con)?;
                let mut progress = 0;
                for m in &batch {
                    let Some((aor, field)) = m.split_once('\n') else {
                        let _: i64 = ::redis::cmd("ZREM")
                            .arg(&self.expiry_key)
                            .arg(m)
                            .query(con)?;
                        progress += 1;
                        continue;
                    };
                    let raw: Option<Vec<u8>> = ::redis::cmd("HGET")
                        .arg(self.aor_key(aor))
                        .arg(field)
                        .query(con)?;
                    let Some(raw) = raw else {
                        // A member without its binding (removed by hand): drop it.
                        let _: i64 = ::redis::cmd("ZREM")
                            .arg(&self.expiry_key)
                            .arg(m)
                            .query(con)?;
                        progress += 1;
                        continue;
                    };
                    // A record this build cannot decode is still purged by its expiry score.
                    let still_active = decode(aor, field, &raw).is_ok_and(|b| b.is_active(now));
                    if still_active {
                        continue;
                    }
                    if self.cas_delete(con, aor, field, &raw)?.1 {
                        purged += 1;
                        progress += 1;
                    }
                }
                if batch.len() < PURGE_BATCH || progress == 0 {
                    return Ok(purged);
                }
            }
        })
    }

    fn count(&self) -> Result<usize, Error> {
        self.with_conn(|con| {
            let n: u64 = ::redis::cmd("ZCARD").arg(&self.expiry_key).query(con)?;
            Ok(usize::try_from(n).unwrap_or(usize::MAX))
        })
    }
}

// ---- the stored format ----

fn corrupt(field: &'static str) -> Error {
    Error::Corrupt { field }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn str(&mut self, s: &str, field: &'static str) -> Result<(), Error> {
        let len = u32::try_from(s.len()).map_err(|_| Error::InvalidRecord { field })?;
        self.u32(len);
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn opt_str(&mut self, s: Option<&str>, field: &'static str) -> Result<(), Error> {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s, field)?;
            }
        }
        Ok(())
    }
}

/// Encodes `b` (already checked) in format [`REDIS_BINDING_FORMAT`]; the AOR is left out.
fn encode(b: &Binding) -> Result<Vec<u8>, Error> {
    let mut w = Writer(Vec::with_capacity(128 + b.heap_bytes()));
    w.u8(REDIS_BINDING_FORMAT);
    w.str(&b.contact, "contact")?;
    w.str(&b.contact_params, "contact_params")?;
    w.opt_str(b.instance_id.as_deref(), "instance_id")?;
    match b.reg_id {
        None => w.u8(0),
        Some(r) => {
            w.u8(1);
            w.u32(r);
        }
    }
    w.str(&b.call_id, "call_id")?;
    w.u32(b.cseq);
    w.i64(unix_secs(b.expires_at));
    match b.q {
        None => w.u8(0),
        Some(q) => {
            w.u8(1);
            w.u32(q.to_bits());
        }
    }
    let count = u32::try_from(b.path.len()).map_err(|_| Error::InvalidRecord { field: "path" })?;
    w.u32(count);
    for p in &b.path {
        w.str(p, "path")?;
    }
    w.opt_str(b.source.map(|s| s.to_string()).as_deref(), "source")?;
    w.opt_str(b.transport.as_deref(), "transport")?;
    w.opt_str(b.flow.as_deref(), "flow")?;
    w.opt_str(b.user_agent.as_deref(), "user_agent")?;
    w.opt_str(b.temp_gruu.as_deref(), "temp_gruu")?;
    Ok(w.0)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], Error> {
        let end = self.pos.checked_add(n).ok_or(corrupt(field))?;
        let bytes = self.buf.get(self.pos..end).ok_or(corrupt(field))?;
        self.pos = end;
        Ok(bytes)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, Error> {
        let b = self.take(1, field)?;
        b.first().copied().ok_or(corrupt(field))
    }

    fn u32(&mut self, field: &'static str) -> Result<u32, Error> {
        let b: [u8; 4] = self
            .take(4, field)?
            .try_into()
            .map_err(|_| corrupt(field))?;
        Ok(u32::from_be_bytes(b))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, Error> {
        let b: [u8; 8] = self
            .take(8, field)?
            .try_into()
            .map_err(|_| corrupt(field))?;
        Ok(i64::from_be_bytes(b))
    }

    fn present(&mut self, field: &'static str) -> Result<bool, Error> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(corrupt(field)),
        }
    }

    fn string(&mut self, field: &'static str) -> Result<String, Error> {
        let len = usize::try_from(self.u32(field)?).map_err(|_| corrupt(field))?;
        let bytes = self.take(len, field)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| corrupt(field))
    }

    fn opt_string(&mut self, field: &'static str) -> Result<Option<String>, Error> {
        if self.present(field)? {
            self.string(field).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// Decodes a binding value of `aor` stored under `field`, checking the value belongs there.
fn decode(aor: &str, field: &str, raw: &[u8]) -> Result<Binding, Error> {
    let mut r = Reader { buf: raw, pos: 0 };
    let format = r.u8("format")?;
    if format != REDIS_BINDING_FORMAT {
        return Err(Error::UnknownFormat {
            record: "binding",
            found: i64::from(format),
            supported: i64::from(REDIS_BINDING_FORMAT),
        });
    }
    let contact = r.string("contact")?;
    let contact_params = r.string("contact_params")?;
    let instance_id = r.opt_string("instance_id")?;
    let reg_id = if r.present("reg_id")? {
        Some(r.u32("reg_id")?)
    } else {
        None
    };
    let call_id = r.string("call_id")?;
    let cseq = r.u32("cseq")?;
    let expires_at = r.i64("expires_at")?;
    let q = if r.present("q")? {
        let q = f32::from_bits(r.u32("q")?);
        if !(0.0..=1.0).contains(&q) {
            return Err(corrupt("q"));
        }
        Some(q)
    } else {
        None
    };
    let path_count = r.u32("path")?;
    let mut path = Vec::new();
    for _ in 0..path_count {
        // Each entry takes at least its 4-byte length: a bad count fails at the end of the
        // value, before allocating more than the value's size.
        path.push(r.string("path")?);
    }
    let source = r
        .opt_string("source")?
        .map(|s| s.parse::<SocketAddr>())
        .transpose()
        .map_err(|_| corrupt("source"))?;
    let transport = r.opt_string("transport")?;
    let flow = r.opt_string("flow")?;
    let user_agent = r.opt_string("user_agent")?;
    let temp_gruu = r.opt_string("temp_gruu")?;
    if r.pos != raw.len() {
        return Err(corrupt("length"));
    }
    let mut b = Binding::new(aor, contact, call_id, cseq, from_unix_secs(expires_at));
    b.contact_params = contact_params;
    b.instance_id = instance_id;
    b.reg_id = reg_id;
    b.q = q;
    b.path = path;
    b.source = source;
    b.transport = transport;
    b.flow = flow;
    b.user_agent = user_agent;
    b.temp_gruu = temp_gruu;
    if b.key().storage_form() != field {
        return Err(corrupt("binding_key"));
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    fn full() -> Binding {
        let mut b = Binding::new(
            "sip:alice@example.test",
            "sip:alice@192.0.2.1:5061;transport=tls",
            "call-1",
            7,
            UNIX_EPOCH + Duration::from_secs(1_800_003_600),
        );
        b.contact_params = ";reg-id=1".to_owned();
        b.instance_id = Some("urn:uuid:1".to_owned());
        b.reg_id = Some(1);
        b.q = Some(0.5);
        b.path = vec!["<sip:e1;lr>".to_owned(), "<sip:e2;lr>".to_owned()];
        b.source = Some("[::1]:5060".parse().expect("addr"));
        b.transport = Some("TLS".to_owned());
        b.flow = Some("f".to_owned());
        b.user_agent = Some("ua".to_owned());
        b.temp_gruu = Some("sip:t@example.test;gr".to_owned());
        b
    }

    #[test]
    fn encoding_round_trips() {
        for b in [
            full(),
            Binding::new("sip:a@x", "sip:a@y", "c", 1, UNIX_EPOCH),
        ] {
            let raw = encode(&b).expect("encode");
            assert_eq!(raw.first(), Some(&REDIS_BINDING_FORMAT));
            let field = b.key().storage_form();
            assert_eq!(decode(&b.aor, &field, &raw).expect("decode"), b);
        }
    }

    #[test]
    fn every_truncation_and_a_wrong_key_are_refused() {
        let b = full();
        let field = b.key().storage_form();
        let raw = encode(&b).expect("encode");
        for len in 0..raw.len() {
            let cut = raw.get(..len).expect("prefix");
            assert!(
                matches!(decode(&b.aor, &field, cut), Err(Error::Corrupt { .. })),
                "prefix of {len} bytes accepted"
            );
        }
        let mut longer = raw.clone();
        longer.push(0);
        assert!(matches!(
            decode(&b.aor, &field, &longer),
            Err(Error::Corrupt { field: "length" })
        ));
        assert!(matches!(
            decode(&b.aor, "c sip:other", &raw),
            Err(Error::Corrupt {
                field: "binding_key"
            })
        ));
        let mut v2 = raw;
        if let Some(first) = v2.first_mut() {
            *first = 2;
        }
        assert!(matches!(
            decode(&b.aor, &field, &v2),
            Err(Error::UnknownFormat { found: 2, .. })
        ));
    }

    #[test]
    fn a_huge_path_count_fails_without_allocating_it() {
        let mut raw =
            encode(&Binding::new("sip:a@x", "sip:a@y", "c", 1, UNIX_EPOCH)).expect("encode");
        // The path count sits after: format 1, contact 4+7, params 4, instance 1, reg-id 1,
        // call-id 4+1, cseq 4, expiry 8, q 1.
        let at = 1 + 11 + 4 + 1 + 1 + 5 + 4 + 8 + 1;
        raw.splice(at..at + 4, u32::MAX.to_be_bytes());
        assert!(matches!(
            decode("sip:a@x", "c sip:a@y", &raw),
            Err(Error::Corrupt { field: "path" })
        ));
    }
}
