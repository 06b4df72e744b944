//! The default store: one SQLite file in WAL mode.
//!
//! The schema is created on first open and its version kept in `PRAGMA user_version`
//! ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION)). Every row starts with a `format` column (the
//! record's format version). Writes that read first run in `BEGIN IMMEDIATE` transactions, so
//! several processes on one host (a server and `sotto user`) can share the file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use sotto_sip::digest::{Algorithm, Ha1, UserRecord};
use zeroize::Zeroizing;

use crate::binding::{Step7, step7};
use crate::user::{check_record, realms_of};
use crate::{
    BINDING_FORMAT, Binding, BindingKey, BindingStore, Error, SCHEMA_VERSION, USER_FORMAT, Upsert,
    UserInfo, UserStore, from_unix_secs, unix_secs,
};

/// How long a write waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Prepared statements kept per connection (every statement of the hot paths fits).
const STATEMENT_CACHE: usize = 64;
/// WAL pages between automatic checkpoints (4 KiB pages: a WAL file of up to 32 MiB).
const WAL_AUTOCHECKPOINT: i64 = 8192;
/// (User, realm) records cached at most: the cache is emptied when it is full. About 0.5 KiB
/// each, so at most about 2 MiB; bigger user bases cycle through it (a miss is one select).
const USER_CACHE_MAX: usize = 4096;

const SCHEMA_V1: &str = "
CREATE TABLE users (
    format    INTEGER NOT NULL,
    username  TEXT NOT NULL,
    realm     TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    ha1       TEXT NOT NULL,
    PRIMARY KEY (username, realm, algorithm)
) WITHOUT ROWID;
CREATE TABLE bindings (
    format         INTEGER NOT NULL,
    aor            TEXT NOT NULL,
    binding_key    TEXT NOT NULL,
    contact        TEXT NOT NULL,
    contact_params TEXT NOT NULL,
    instance_id    TEXT,
    reg_id         INTEGER,
    call_id        TEXT NOT NULL,
    cseq           INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    q              REAL,
    path           TEXT NOT NULL,
    source         TEXT,
    transport      TEXT,
    flow           TEXT,
    user_agent     TEXT,
    temp_gruu      TEXT,
    PRIMARY KEY (aor, binding_key)
) WITHOUT ROWID;
CREATE INDEX bindings_expires_at ON bindings (expires_at);
CREATE INDEX bindings_temp_gruu ON bindings (temp_gruu) WHERE temp_gruu IS NOT NULL;
";

/// The binding columns [`binding_from_row`] reads, in its order (a macro so that the SQL
/// texts are literals, built at compile time).
macro_rules! binding_columns {
    () => {
        "format, aor, contact, contact_params, instance_id, reg_id, call_id, cseq, expires_at, \
         q, path, source, transport, flow, user_agent, temp_gruu"
    };
}

/// Users and bindings in one SQLite database file.
///
/// User lookups are cached: [`UserStore::get`] answers from memory while `PRAGMA
/// data_version` (which changes when another connection, e.g. `sotto user passwd` in another
/// process, commits to the file) is unchanged since the entry was read; this store's own
/// writes update the cache. Open one store per file per process and use it for both users
/// and bindings: commits of another connection to the same file (bindings included) empty the
/// cache.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Db>,
}

/// The connection and what is cached from it (under one lock).
#[derive(Debug)]
struct Db {
    conn: Connection,
    users: UserCache,
    /// Between [`BindingStore::batch_begin`] and [`BindingStore::batch_end`]: writes join one
    /// open transaction, committed by `batch_end`.
    batching: bool,
}

/// HA1 records by (user name, realm), valid while the database's `data_version` is
/// `version`. Only found users are cached (a lookup of an unknown name reads the database).
#[derive(Debug, Default)]
struct UserCache {
    version: Option<i64>,
    records: HashMap<(String, String), UserRecord>,
}

impl Db {
    /// The user cache, emptied first if another connection committed since it was filled.
    fn fresh_users(&mut self) -> Result<&mut UserCache, Error> {
        let version: i64 = self
            .conn
            .prepare_cached("PRAGMA data_version")?
            .query_row([], |r| r.get(0))?;
        if self.users.version != Some(version) {
            self.users.records.clear();
            self.users.version = Some(version);
        }
        Ok(&mut self.users)
    }
}

/// A write (`BEGIN IMMEDIATE`), run through cached statements so that neither `BEGIN` nor
/// `COMMIT` is parsed per call. Rolled back if dropped unfinished. In a batch it is a
/// savepoint of the batch's transaction (begun by the batch's first write): finishing it
/// releases the savepoint, and the batch's end commits.
struct WriteTx<'c> {
    conn: &'c Connection,
    savepoint: bool,
    open: bool,
}

impl<'c> WriteTx<'c> {
    fn begin(db: &'c Db) -> Result<Self, Error> {
        let conn = &db.conn;
        if db.batching || !conn.is_autocommit() {
            if conn.is_autocommit() {
                conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
            }
            conn.prepare_cached("SAVEPOINT sotto_write")?.execute([])?;
            return Ok(WriteTx {
                conn,
                savepoint: true,
                open: true,
            });
        }
        conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        Ok(WriteTx {
            conn,
            savepoint: false,
            open: true,
        })
    }

    fn commit(mut self) -> Result<(), Error> {
        let sql = if self.savepoint {
            "RELEASE sotto_write"
        } else {
            "COMMIT"
        };
        self.conn.prepare_cached(sql)?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl std::ops::Deref for WriteTx<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn
    }
}

impl Drop for WriteTx<'_> {
    fn drop(&mut self) {
        if !self.open || self.conn.is_autocommit() {
            return;
        }
        let run = |sql: &str| {
            self.conn
                .prepare_cached(sql)
                .and_then(|mut s| s.execute([]))
        };
        // A failed rollback leaves nothing better to do: the batch's end (or the next
        // transaction's BEGIN failing) reports the state.
        if self.savepoint {
            let _ = run("ROLLBACK TO sotto_write").and_then(|_| run("RELEASE sotto_write"));
        } else {
            let _ = run("ROLLBACK");
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`: WAL mode, schema created or checked.
    ///
    /// A new file is created readable by its owner only (mode 0600 on Unix): it holds HA1
    /// values, which are password-equivalent.
    pub fn open(path: &Path) -> Result<Self, Error> {
        create_private_file(path)?;
        let conn = Connection::open(path)?;
        let journal: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
        if !journal.eq_ignore_ascii_case("wal") {
            return Err(Error::Backend(
                format!("SQLite refused WAL mode (journal_mode is {journal})").into(),
            ));
        }
        // Checkpoint (copy the WAL back into the file, with an fsync) every WAL_AUTOCHECKPOINT
        // pages rather than SQLite's 1,000: registrations rewrite the same few pages, so a
        // checkpoint copies about as many pages either way, and runs (and syncs) less often.
        conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
        Self::init(conn)
    }

    /// A private in-memory database (tests; lost when dropped).
    pub fn open_in_memory() -> Result<Self, Error> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, Error> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
        match version {
            0 => {
                tx.execute_batch(SCHEMA_V1)?;
                tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            }
            v if v == SCHEMA_VERSION => {}
            v if v > SCHEMA_VERSION => {
                return Err(Error::SchemaTooNew {
                    found: v,
                    supported: SCHEMA_VERSION,
                });
            }
            _ => {
                return Err(Error::Corrupt {
                    field: "user_version",
                });
            }
        }
        tx.commit()?;
        Ok(SqliteStore {
            conn: Mutex::new(Db {
                conn,
                users: UserCache::default(),
                batching: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Db> {
        // SQLite transactions roll back on drop, so a poisoned lock still guards a usable
        // connection.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Database size figures: `(page_count, page_size_bytes, freelist_count)`, after a WAL
    /// checkpoint so the main file holds every page.
    pub fn page_stats(&self) -> Result<(u64, u64, u64), Error> {
        let db = self.lock();
        let conn = &db.conn;
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .optional()?;
        let get = |name: &str| -> Result<u64, Error> {
            let v: i64 = conn.pragma_query_value(None, name, |r| r.get(0))?;
            u64::try_from(v).map_err(|_| Error::Corrupt { field: "pragma" })
        };
        Ok((
            get("page_count")?,
            get("page_size")?,
            get("freelist_count")?,
        ))
    }
}

/// Creates `path` with owner-only permissions if it does not exist yet.
fn create_private_file(path: &Path) -> Result<(), Error> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn check_format(found: i64, supported: i64, record: &'static str) -> Result<(), Error> {
    if found == supported {
        Ok(())
    } else {
        Err(Error::UnknownFormat {
            record,
            found,
            supported,
        })
    }
}

fn put_tx(tx: &Connection, record: &UserRecord) -> Result<(), Error> {
    for realm in realms_of(record) {
        tx.prepare_cached("DELETE FROM users WHERE username = ?1 AND realm = ?2")?
            .execute(params![record.username(), realm])?;
    }
    let mut insert = tx.prepare_cached(
        "INSERT INTO users (format, username, realm, algorithm, ha1) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (realm, ha1) in record.entries() {
        insert.execute(params![
            USER_FORMAT,
            record.username(),
            realm,
            ha1.algorithm().name(),
            ha1.as_hex()
        ])?;
    }
    Ok(())
}

/// Reads the user's HA1 values for `realm` from the database.
fn select_user(
    conn: &Connection,
    username: &str,
    realm: &str,
) -> Result<Option<UserRecord>, Error> {
    let mut stmt = conn.prepare_cached(
        "SELECT format, algorithm, ha1 FROM users WHERE username = ?1 AND realm = ?2 \
         ORDER BY algorithm",
    )?;
    let mut rows = stmt.query(params![username, realm])?;
    let mut record = UserRecord::new(username);
    let mut any = false;
    while let Some(row) = rows.next()? {
        check_format(row.get(0)?, USER_FORMAT, "user")?;
        let name = row
            .get_ref(1)?
            .as_str()
            .map_err(|_| Error::Corrupt { field: "algorithm" })?;
        let algorithm = Algorithm::from_name(name).ok_or(Error::Corrupt { field: "algorithm" })?;
        let hex: Zeroizing<String> = Zeroizing::new(row.get(2)?);
        let ha1 = Ha1::from_hex(algorithm, &hex).map_err(|_| Error::Corrupt { field: "ha1" })?;
        record.insert(realm, ha1);
        any = true;
    }
    Ok(any.then_some(record))
}

impl UserStore for SqliteStore {
    fn get(&self, username: &str, realm: &str) -> Result<Option<UserRecord>, Error> {
        let mut db = self.lock();
        let db = &mut *db;
        let cache = db.fresh_users()?;
        // The key is built once per lookup; `HashMap` cannot look a tuple of `String`s up by
        // a tuple of `&str`s.
        let key = (username.to_owned(), realm.to_owned());
        if let Some(record) = cache.records.get(&key) {
            return Ok(Some(record.clone()));
        }
        let found = select_user(&db.conn, username, realm)?;
        if let Some(record) = &found {
            if db.users.records.len() >= USER_CACHE_MAX {
                db.users.records.clear();
            }
            db.users.records.insert(key, record.clone());
        }
        Ok(found)
    }

    fn put(&self, record: &UserRecord) -> Result<(), Error> {
        check_record(record)?;
        let mut db = self.lock();
        let db = &mut *db;
        let tx = WriteTx::begin(db)?;
        put_tx(&tx, record)?;
        tx.commit()?;
        db.users.forget(record.username());
        Ok(())
    }

    fn create(&self, record: &UserRecord) -> Result<(), Error> {
        check_record(record)?;
        let realms = realms_of(record);
        if realms.is_empty() {
            return Err(Error::InvalidRecord { field: "entries" });
        }
        let mut db = self.lock();
        let db = &mut *db;
        let tx = WriteTx::begin(db)?;
        for realm in &realms {
            let exists: Option<i64> = tx
                .prepare_cached("SELECT 1 FROM users WHERE username = ?1 AND realm = ?2 LIMIT 1")?
                .query_row(params![record.username(), realm], |r| r.get(0))
                .optional()?;
            if exists.is_some() {
                return Err(Error::UserExists {
                    username: record.username().to_owned(),
                    realm: realm.clone(),
                });
            }
        }
        put_tx(&tx, record)?;
        tx.commit()?;
        db.users.forget(record.username());
        Ok(())
    }

    fn delete(&self, username: &str) -> Result<bool, Error> {
        let mut db = self.lock();
        let n = db
            .conn
            .execute("DELETE FROM users WHERE username = ?1", params![username])?;
        db.users.forget(username);
        Ok(n > 0)
    }

    fn list(&self) -> Result<Vec<UserInfo>, Error> {
        let db = self.lock();
        let mut stmt = db.conn.prepare_cached(
            "SELECT format, username, realm, algorithm FROM users \
             ORDER BY username, realm, algorithm",
        )?;
        let mut rows = stmt.query([])?;
        let mut out: Vec<UserInfo> = Vec::new();
        while let Some(row) = rows.next()? {
            check_format(row.get(0)?, USER_FORMAT, "user")?;
            let username: String = row.get(1)?;
            let realm: String = row.get(2)?;
            let name: String = row.get(3)?;
            let algorithm =
                Algorithm::from_name(&name).ok_or(Error::Corrupt { field: "algorithm" })?;
            match out.last_mut() {
                Some(last) if last.username == username && last.realm == realm => {
                    last.algorithms.push(algorithm);
                }
                _ => out.push(UserInfo::new(username, realm, vec![algorithm])),
            }
        }
        Ok(out)
    }
}

impl UserCache {
    /// Drops the cached records of `username` (every realm), after this store changed them.
    fn forget(&mut self, username: &str) {
        self.records.retain(|(u, _), _| u != username);
    }
}

fn binding_from_row(row: &Row<'_>) -> Result<Binding, Error> {
    check_format(row.get(0)?, BINDING_FORMAT, "binding")?;
    let reg_id: Option<i64> = row.get(5)?;
    let reg_id = reg_id
        .map(u32::try_from)
        .transpose()
        .map_err(|_| Error::Corrupt { field: "reg_id" })?;
    let cseq: i64 = row.get(7)?;
    let cseq = u32::try_from(cseq).map_err(|_| Error::Corrupt { field: "cseq" })?;
    let q: Option<f64> = row.get(9)?;
    let path: String = row.get(10)?;
    let source: Option<String> = row.get(11)?;
    let source = source
        .map(|s| s.parse())
        .transpose()
        .map_err(|_| Error::Corrupt { field: "source" })?;
    let mut b = Binding::new(
        row.get::<_, String>(1)?,
        row.get::<_, String>(2)?,
        row.get::<_, String>(6)?,
        cseq,
        from_unix_secs(row.get(8)?),
    );
    b.contact_params = row.get(3)?;
    b.instance_id = row.get(4)?;
    b.reg_id = reg_id;
    // f64 → f32 narrowing is exact: the value was written from an f32.
    b.q = q.map(|q| q as f32);
    b.path = if path.is_empty() {
        Vec::new()
    } else {
        path.split('\n').map(str::to_owned).collect()
    };
    b.source = source;
    b.transport = row.get(12)?;
    b.flow = row.get(13)?;
    b.user_agent = row.get(14)?;
    b.temp_gruu = row.get(15)?;
    Ok(b)
}

fn select_one(
    conn: &Connection,
    aor: &str,
    key: &str,
    now_secs: Option<i64>,
) -> Result<Option<Binding>, Error> {
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        binding_columns!(),
        " FROM bindings WHERE aor = ?1 AND binding_key = ?2 AND expires_at > ?3"
    ))?;
    let mut rows = stmt.query(params![aor, key, now_secs.unwrap_or(i64::MIN)])?;
    match rows.next()? {
        Some(row) => Ok(Some(binding_from_row(row)?)),
        None => Ok(None),
    }
}

fn write_binding(conn: &Connection, key: &str, b: &Binding) -> Result<(), Error> {
    let mut stmt = conn.prepare_cached(concat!(
        "INSERT OR REPLACE INTO bindings (binding_key, ",
        binding_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    ))?;
    let path = if b.path.is_empty() {
        std::borrow::Cow::Borrowed("")
    } else {
        std::borrow::Cow::Owned(b.path.join("\n"))
    };
    stmt.execute(params![
        key,
        BINDING_FORMAT,
        b.aor,
        b.contact,
        b.contact_params,
        b.instance_id,
        b.reg_id.map(i64::from),
        b.call_id,
        i64::from(b.cseq),
        unix_secs(b.expires_at),
        b.q.map(f64::from),
        path,
        b.source.map(|s| s.to_string()),
        b.transport,
        b.flow,
        b.user_agent,
        b.temp_gruu,
    ])?;
    Ok(())
}

fn delete_binding(conn: &Connection, aor: &str, key: &str) -> Result<(), Error> {
    conn.prepare_cached("DELETE FROM bindings WHERE aor = ?1 AND binding_key = ?2")?
        .execute(params![aor, key])?;
    Ok(())
}

impl BindingStore for SqliteStore {
    fn bindings(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, Error> {
        let db = self.lock();
        let mut stmt = db.conn.prepare_cached(concat!(
            "SELECT ",
            binding_columns!(),
            " FROM bindings WHERE aor = ?1 AND expires_at > ?2"
        ))?;
        let mut rows = stmt.query(params![aor, unix_secs(now)])?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(binding_from_row(row)?);
        }
        Ok(out)
    }

    fn upsert(&self, binding: &Binding, now: SystemTime) -> Result<Upsert, Error> {
        let new = binding.checked()?;
        let key = new.key().storage_form();
        let db = self.lock();
        let tx = WriteTx::begin(&db)?;
        let existing = select_one(&tx, &new.aor, &key, Some(unix_secs(now)))?;
        let outcome = match step7(&new, existing, now) {
            // Nothing written: the transaction is rolled back when dropped.
            Step7::OutOfOrder(existing) => return Ok(Upsert::OutOfOrder { existing }),
            Step7::Absent => {
                delete_binding(&tx, &new.aor, &key)?;
                Upsert::Absent
            }
            Step7::Remove(previous) => {
                delete_binding(&tx, &new.aor, &key)?;
                Upsert::Removed { previous }
            }
            Step7::Insert => {
                write_binding(&tx, &key, &new)?;
                Upsert::Inserted
            }
            Step7::Replace(previous) => {
                write_binding(&tx, &key, &new)?;
                Upsert::Updated { previous }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn remove(&self, aor: &str, key: &BindingKey) -> Result<Option<Binding>, Error> {
        let db = self.lock();
        let tx = WriteTx::begin(&db)?;
        let key = key.storage_form();
        let existing = select_one(&tx, aor, &key, None)?;
        if existing.is_some() {
            delete_binding(&tx, aor, &key)?;
        }
        tx.commit()?;
        Ok(existing)
    }

    fn remove_all(&self, aor: &str, now: SystemTime) -> Result<usize, Error> {
        let db = self.lock();
        let tx = WriteTx::begin(&db)?;
        let active: i64 = tx
            .prepare_cached("SELECT count(*) FROM bindings WHERE aor = ?1 AND expires_at > ?2")?
            .query_row(params![aor, unix_secs(now)], |r| r.get(0))?;
        tx.prepare_cached("DELETE FROM bindings WHERE aor = ?1")?
            .execute(params![aor])?;
        tx.commit()?;
        Ok(usize::try_from(active).unwrap_or(0))
    }

    fn by_temp_gruu(&self, temp_gruu: &str, now: SystemTime) -> Result<Option<Binding>, Error> {
        let db = self.lock();
        let mut stmt = db.conn.prepare_cached(concat!(
            "SELECT ",
            binding_columns!(),
            " FROM bindings WHERE temp_gruu = ?1 AND expires_at > ?2 LIMIT 1"
        ))?;
        let mut rows = stmt.query(params![temp_gruu, unix_secs(now)])?;
        match rows.next()? {
            Some(row) => Ok(Some(binding_from_row(row)?)),
            None => Ok(None),
        }
    }

    fn purge_expired(&self, now: SystemTime) -> Result<usize, Error> {
        let db = self.lock();
        let n = db.conn.execute(
            "DELETE FROM bindings WHERE expires_at <= ?1",
            params![unix_secs(now)],
        )?;
        Ok(n)
    }

    fn batch_begin(&self) -> Result<(), Error> {
        self.lock().batching = true;
        Ok(())
    }

    fn batch_end(&self) -> Result<(), Error> {
        let mut db = self.lock();
        db.batching = false;
        if db.conn.is_autocommit() {
            return Ok(());
        }
        let committed = db
            .conn
            .prepare_cached("COMMIT")
            .and_then(|mut s| s.execute([]));
        if let Err(e) = committed {
            let _ = db
                .conn
                .prepare_cached("ROLLBACK")
                .and_then(|mut s| s.execute([]));
            return Err(e.into());
        }
        Ok(())
    }

    fn count(&self) -> Result<usize, Error> {
        let db = self.lock();
        let n: i64 = db
            .conn
            .query_row("SELECT count(*) FROM bindings", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
