//! The default store: one SQLite file in WAL mode.
//!
//! The schema is created on first open and its version kept in `PRAGMA user_version`
//! ([`SCHEMA_VERSION`](crate::SCHEMA_VERSION)). Every row starts with a `format` column (the
//! record's format version). Writes that read first run in `BEGIN IMMEDIATE` transactions, so
//! several processes on one host (a server and `sotto user`) can share the file.

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

const BINDING_COLUMNS: &str = "format, aor, contact, contact_params, instance_id, reg_id, \
     call_id, cseq, expires_at, q, path, source, transport, flow, user_agent, temp_gruu";

/// Users and bindings in one SQLite database file.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
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
        Self::init(conn)
    }

    /// A private in-memory database (tests; lost when dropped).
    pub fn open_in_memory() -> Result<Self, Error> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(mut conn: Connection) -> Result<Self, Error> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
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
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // SQLite transactions roll back on drop, so a poisoned lock still guards a usable
        // connection.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Database size figures: `(page_count, page_size_bytes, freelist_count)`, after a WAL
    /// checkpoint so the main file holds every page.
    pub fn page_stats(&self) -> Result<(u64, u64, u64), Error> {
        let conn = self.lock();
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

fn put_tx(tx: &rusqlite::Transaction<'_>, record: &UserRecord) -> Result<(), Error> {
    for realm in realms_of(record) {
        tx.execute(
            "DELETE FROM users WHERE username = ?1 AND realm = ?2",
            params![record.username(), realm],
        )?;
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

impl UserStore for SqliteStore {
    fn get(&self, username: &str, realm: &str) -> Result<Option<UserRecord>, Error> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
            "SELECT format, algorithm, ha1 FROM users WHERE username = ?1 AND realm = ?2 \
             ORDER BY algorithm",
        )?;
        let mut rows = stmt.query(params![username, realm])?;
        let mut record = UserRecord::new(username);
        let mut any = false;
        while let Some(row) = rows.next()? {
            check_format(row.get(0)?, USER_FORMAT, "user")?;
            let name: String = row.get(1)?;
            let hex: Zeroizing<String> = Zeroizing::new(row.get(2)?);
            let algorithm =
                Algorithm::from_name(&name).ok_or(Error::Corrupt { field: "algorithm" })?;
            let ha1 =
                Ha1::from_hex(algorithm, &hex).map_err(|_| Error::Corrupt { field: "ha1" })?;
            record.insert(realm, ha1);
            any = true;
        }
        Ok(any.then_some(record))
    }

    fn put(&self, record: &UserRecord) -> Result<(), Error> {
        check_record(record)?;
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        put_tx(&tx, record)?;
        tx.commit()?;
        Ok(())
    }

    fn create(&self, record: &UserRecord) -> Result<(), Error> {
        check_record(record)?;
        let realms = realms_of(record);
        if realms.is_empty() {
            return Err(Error::InvalidRecord { field: "entries" });
        }
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for realm in &realms {
            let exists: Option<i64> = tx
                .query_row(
                    "SELECT 1 FROM users WHERE username = ?1 AND realm = ?2 LIMIT 1",
                    params![record.username(), realm],
                    |r| r.get(0),
                )
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
        Ok(())
    }

    fn delete(&self, username: &str) -> Result<bool, Error> {
        let conn = self.lock();
        let n = conn.execute("DELETE FROM users WHERE username = ?1", params![username])?;
        Ok(n > 0)
    }

    fn list(&self) -> Result<Vec<UserInfo>, Error> {
        let conn = self.lock();
        let mut stmt = conn.prepare_cached(
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
    let sql = format!(
        "SELECT {BINDING_COLUMNS} FROM bindings WHERE aor = ?1 AND binding_key = ?2 \
         AND expires_at > ?3"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![aor, key, now_secs.unwrap_or(i64::MIN)])?;
    match rows.next()? {
        Some(row) => Ok(Some(binding_from_row(row)?)),
        None => Ok(None),
    }
}

fn write_binding(conn: &Connection, b: &Binding) -> Result<(), Error> {
    let sql = format!(
        "INSERT OR REPLACE INTO bindings (binding_key, {BINDING_COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    stmt.execute(params![
        b.key().storage_form(),
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
        b.path.join("\n"),
        b.source.map(|s| s.to_string()),
        b.transport,
        b.flow,
        b.user_agent,
        b.temp_gruu,
    ])?;
    Ok(())
}

impl BindingStore for SqliteStore {
    fn bindings(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, Error> {
        let conn = self.lock();
        let sql =
            format!("SELECT {BINDING_COLUMNS} FROM bindings WHERE aor = ?1 AND expires_at > ?2");
        let mut stmt = conn.prepare_cached(&sql)?;
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
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let existing = select_one(&tx, &new.aor, &key, Some(unix_secs(now)))?;
        let delete = |tx: &rusqlite::Transaction<'_>| {
            tx.execute(
                "DELETE FROM bindings WHERE aor = ?1 AND binding_key = ?2",
                params![new.aor, key],
            )
        };
        let outcome = match step7(&new, existing, now) {
            Step7::OutOfOrder(existing) => return Ok(Upsert::OutOfOrder { existing }),
            Step7::Absent => {
                delete(&tx)?;
                Upsert::Absent
            }
            Step7::Remove(previous) => {
                delete(&tx)?;
                Upsert::Removed { previous }
            }
            Step7::Insert => {
                write_binding(&tx, &new)?;
                Upsert::Inserted
            }
            Step7::Replace(previous) => {
                write_binding(&tx, &new)?;
                Upsert::Updated { previous }
            }
        };
        tx.commit()?;
        Ok(outcome)
    }

    fn remove(&self, aor: &str, key: &BindingKey) -> Result<Option<Binding>, Error> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let key = key.storage_form();
        let existing = select_one(&tx, aor, &key, None)?;
        if existing.is_some() {
            tx.execute(
                "DELETE FROM bindings WHERE aor = ?1 AND binding_key = ?2",
                params![aor, key],
            )?;
        }
        tx.commit()?;
        Ok(existing)
    }

    fn remove_all(&self, aor: &str, now: SystemTime) -> Result<usize, Error> {
        let mut conn = self.lock();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let active: i64 = tx.query_row(
            "SELECT count(*) FROM bindings WHERE aor = ?1 AND expires_at > ?2",
            params![aor, unix_secs(now)],
            |r| r.get(0),
        )?;
        tx.execute("DELETE FROM bindings WHERE aor = ?1", params![aor])?;
        tx.commit()?;
        Ok(usize::try_from(active).unwrap_or(0))
    }

    fn by_temp_gruu(&self, temp_gruu: &str, now: SystemTime) -> Result<Option<Binding>, Error> {
        let conn = self.lock();
        let sql = format!(
            "SELECT {BINDING_COLUMNS} FROM bindings WHERE temp_gruu = ?1 AND expires_at > ?2 \
             LIMIT 1"
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut rows = stmt.query(params![temp_gruu, unix_secs(now)])?;
        match rows.next()? {
            Some(row) => Ok(Some(binding_from_row(row)?)),
            None => Ok(None),
        }
    }

    fn purge_expired(&self, now: SystemTime) -> Result<usize, Error> {
        let conn = self.lock();
        let n = conn.execute(
            "DELETE FROM bindings WHERE expires_at <= ?1",
            params![unix_secs(now)],
        )?;
        Ok(n)
    }

    fn count(&self) -> Result<usize, Error> {
        let conn = self.lock();
        let n: i64 = conn.query_row("SELECT count(*) FROM bindings", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}
