//! # sotto-store: what the server keeps between requests and across restarts
//!
//! Two small store traits, in the style of libsignal's protocol stores: the server's logic
//! takes only the store it needs, and the store never reads a clock (time is passed in as
//! `now: SystemTime`).
//!
//! - [`UserStore`]: digest secrets per user. Only HA1 values (RFC 7616 §3.4.2, one per realm
//!   and base algorithm, as [`sotto_sip::digest::UserRecord`] holds them) are stored, never a
//!   password.
//! - [`BindingStore`]: the registrar's location service (RFC 3261 §10.3), with several
//!   contacts per address of record, `+sip.instance`/`reg-id` keys (RFC 5626 §6, RFC 5627),
//!   Path (RFC 3327), the flow a contact registered over, and the latest temp GRUU.
//!
//! Implementations, behind the same traits (both are `Send + Sync` and object safe):
//!
//! | store | survives a restart | shared between processes |
//! |---|---|---|
//! | [`MemoryStore`] | no | no |
//! | [`SqliteStore`] (default) | yes: one file, WAL mode | same host only (SQLite locking) |
//! | `RedisStore` (bindings only; feature `redis`, on by default) | as the Redis server is configured | yes: every process on one Redis |
//!
//! ## Stored format
//!
//! Every stored record starts with a format version (`format` column, [`USER_FORMAT`],
//! [`BINDING_FORMAT`]); the SQLite schema version is `PRAGMA user_version`
//! ([`SCHEMA_VERSION`]). Records are written column by column, never as a serde dump of an
//! internal struct, so a released format can be read by later builds. A database written by a
//! newer build is refused with [`Error::SchemaTooNew`] rather than misread.
//!
//! Times are stored as whole seconds since the Unix epoch: [`Binding::expires_at`] is
//! truncated to the second by every store, so all stores answer alike.

#![forbid(unsafe_code)]

mod binding;
#[cfg(feature = "postgres")]
mod lime_postgres;
mod lime_sqlite;
mod memory;
#[cfg(feature = "redis")]
mod redis;
mod sqlite;
mod user;

#[cfg(feature = "redis")]
pub use self::redis::{DEFAULT_NAMESPACE, MAX_CAS_ATTEMPTS, REDIS_BINDING_FORMAT, RedisStore};
pub use binding::{Binding, BindingKey, BindingStore, Upsert};
#[cfg(feature = "postgres")]
pub use lime_postgres::PgKeyStore;
pub use lime_sqlite::SqliteKeyStore;
pub use memory::MemoryStore;
pub use sqlite::SqliteStore;
pub use user::{UserInfo, UserStore};

/// The format version written in front of every stored user (HA1) record.
pub const USER_FORMAT: i64 = 1;
/// The format version written in front of every stored binding record.
pub const BINDING_FORMAT: i64 = 1;
/// The SQLite schema version (`PRAGMA user_version`) this build creates and reads.
pub const SCHEMA_VERSION: i64 = 1;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The backend (SQLite, file system) failed.
    #[error("storage backend failed: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync + 'static>),
    /// [`UserStore::create`] found the user already stored for that realm.
    #[error("user {username:?} already exists in realm {realm:?}")]
    UserExists {
        /// The user name.
        username: String,
        /// The realm it already has HA1 values for.
        realm: String,
    },
    /// A stored record carries a format version this build cannot read.
    #[error("stored {record} record has format version {found}; this build reads {supported}")]
    UnknownFormat {
        /// Which kind of record (`"user"`, `"binding"`).
        record: &'static str,
        /// The version found.
        found: i64,
        /// The version this build reads.
        supported: i64,
    },
    /// The database was written by a newer build (its schema version is higher than ours).
    #[error("database schema version {found} is newer than this build's {supported}")]
    SchemaTooNew {
        /// `PRAGMA user_version` of the database.
        found: i64,
        /// [`SCHEMA_VERSION`].
        supported: i64,
    },
    /// A stored value cannot be decoded (the named field).
    #[error("stored record is corrupt: bad {field}")]
    Corrupt {
        /// The column or field that failed to decode.
        field: &'static str,
    },
    /// A record given to the store breaks a rule of the stored format (the named field).
    #[error("record rejected: invalid {field}")]
    InvalidRecord {
        /// The field that is invalid.
        field: &'static str,
    },
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Backend(Box::new(e))
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Backend(Box::new(e))
    }
}

/// The latest stored time: 2^40 seconds after the epoch (about year 36800). Later times are
/// stored as this one, so a far-future expiry stays in the future and fits every platform.
const MAX_UNIX_SECS: i64 = 1 << 40;

/// Whole seconds since the Unix epoch (0 before it, [`MAX_UNIX_SECS`] at most).
pub(crate) fn unix_secs(t: std::time::SystemTime) -> i64 {
    match t.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs())
            .unwrap_or(MAX_UNIX_SECS)
            .min(MAX_UNIX_SECS),
        Err(_) => 0,
    }
}

/// The inverse of [`unix_secs`] (clamped to `0..=MAX_UNIX_SECS`).
pub(crate) fn from_unix_secs(secs: i64) -> std::time::SystemTime {
    let secs = secs.clamp(0, MAX_UNIX_SECS).unsigned_abs();
    std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs)
}
