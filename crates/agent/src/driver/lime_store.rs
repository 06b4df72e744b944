//! The agent's LIME state on disk: `lime.sqlite` in the data directory (owner-only): the
//! device's keys blob and one blob per session ([`sotto_lime::Changes`]), each batch of
//! changes in one transaction, written before a message leaves or is shown.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use sotto_crypto::CryptoProvider;
use sotto_lime::{Changes, LimeUser};

/// The file name in the data directory.
pub const FILE_NAME: &str = "lime.sqlite";

/// The store of one agent.
#[derive(Debug)]
pub struct LimeStore {
    path: PathBuf,
    conn: Connection,
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("LIME store {}: {e}", path.display())
}

impl LimeStore {
    /// Opens (creating) the store in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, String> {
        let path = data_dir.join(FILE_NAME);
        std::fs::create_dir_all(data_dir).map_err(|e| err(&path, e))?;
        let conn = Connection::open(&path).map_err(|e| err(&path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600));
        }
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS keys (device TEXT PRIMARY KEY, state BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS sessions (
                 device TEXT NOT NULL, peer TEXT NOT NULL, state BLOB NOT NULL,
                 PRIMARY KEY (device, peer));",
        )
        .map_err(|e| err(&path, e))?;
        Ok(LimeStore { path, conn })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The device `device` as stored, if it is.
    pub fn load(&self, p: &CryptoProvider, device: &str) -> Result<Option<LimeUser>, String> {
        let keys: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT state FROM keys WHERE device = ?1", [device], |r| {
                r.get(0)
            })
            .optional()
            .map_err(|e| err(&self.path, e))?;
        let Some(keys) = keys else {
            return Ok(None);
        };
        let mut st = self
            .conn
            .prepare("SELECT peer, state FROM sessions WHERE device = ?1")
            .map_err(|e| err(&self.path, e))?;
        let sessions = st
            .query_map([device], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| err(&self.path, e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err(&self.path, e))?;
        LimeUser::from_bytes(p, &keys, &sessions)
            .map(Some)
            .map_err(|e| err(&self.path, e))
    }

    /// Writes what changed in `user`, in one transaction.
    pub fn commit(&mut self, user: &mut LimeUser) -> Result<(), String> {
        let changes: Changes = user.take_changes().map_err(|e| err(&self.path, e))?;
        if changes.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(|e| err(&self.path, e))?;
        if let Some(keys) = &changes.keys {
            tx.execute(
                "INSERT OR REPLACE INTO keys (device, state) VALUES (?1, ?2)",
                params![user.device_id(), &keys[..]],
            )
            .map_err(|e| err(&self.path, e))?;
        }
        for (peer, state) in &changes.sessions {
            tx.execute(
                "INSERT OR REPLACE INTO sessions (device, peer, state) VALUES (?1, ?2, ?3)",
                params![user.device_id(), peer, &state[..]],
            )
            .map_err(|e| err(&self.path, e))?;
        }
        tx.commit().map_err(|e| err(&self.path, e))
    }
}
