//! The LIME key server's store in SQLite (the default): devices with their identity key and
//! signed prekey, and their one-time prekeys. Every call is one `BEGIN IMMEDIATE`
//! transaction, so a bundle's OPk is deleted in the transaction that reads it: no OPk is
//! served twice, also to concurrent requests and to several processes sharing the file.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use sotto_lime::CurveId;
use sotto_lime::keyserver::{DeviceRecord, KeyStore, StoreError, StoreOutcome};
use sotto_lime::protocol::SpkUpload;
use sotto_lime::x3dh::PeerBundle;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS lime_devices (
    device     TEXT PRIMARY KEY,
    curve      INTEGER NOT NULL,
    ik         BLOB NOT NULL,
    spk        BLOB NOT NULL,
    spk_sig    BLOB NOT NULL,
    spk_id     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lime_opks (
    device     TEXT NOT NULL REFERENCES lime_devices(device) ON DELETE CASCADE,
    id         INTEGER NOT NULL,
    opk        BLOB NOT NULL,
    PRIMARY KEY (device, id)
) WITHOUT ROWID;";

/// The key server's SQLite store.
#[derive(Debug)]
pub struct SqliteKeyStore {
    conn: Mutex<Connection>,
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl SqliteKeyStore {
    /// Opens (creating) the store in the file at `path`.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(err)?;
        Self::init(conn)
    }

    /// A store in memory (tests).
    pub fn in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory().map_err(err)?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(Duration::from_secs(5)).map_err(err)?;
        conn.execute_batch("PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;")
            .map_err(err)?;
        conn.execute_batch(SCHEMA).map_err(err)?;
        Ok(SqliteKeyStore {
            conn: Mutex::new(conn),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn opk_count(tx: &rusqlite::Transaction<'_>, device: &str) -> Result<usize, StoreError> {
    let n: i64 = tx
        .query_row(
            "SELECT COUNT(*) FROM lime_opks WHERE device = ?1",
            [device],
            |r| r.get(0),
        )
        .map_err(err)?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}

fn insert_opks(
    tx: &rusqlite::Transaction<'_>,
    device: &str,
    opks: &[(Vec<u8>, u32)],
) -> Result<(), StoreError> {
    let mut st = tx
        .prepare_cached("INSERT OR REPLACE INTO lime_opks (device, id, opk) VALUES (?1, ?2, ?3)")
        .map_err(err)?;
    for (k, id) in opks {
        st.execute(params![device, id, k]).map_err(err)?;
    }
    Ok(())
}

impl KeyStore for SqliteKeyStore {
    fn register(
        &self,
        device: &str,
        record: &DeviceRecord,
        opks: &[(Vec<u8>, u32)],
        max_opks: usize,
    ) -> Result<StoreOutcome, StoreError> {
        if opks.len() > max_opks {
            return Ok(StoreOutcome::Limit);
        }
        let mut c = self.lock();
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let n = tx
            .execute(
                "INSERT OR IGNORE INTO lime_devices (device, curve, ik, spk, spk_sig, spk_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    device,
                    record.curve.id(),
                    record.ik,
                    record.spk.spk,
                    record.spk.signature,
                    record.spk.id
                ],
            )
            .map_err(err)?;
        if n == 0 {
            return Ok(StoreOutcome::Conflict);
        }
        insert_opks(&tx, device, opks)?;
        tx.commit().map_err(err)?;
        Ok(StoreOutcome::Done)
    }

    fn device(&self, device: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.lock()
            .query_row(
                "SELECT curve, ik, spk, spk_sig, spk_id FROM lime_devices WHERE device = ?1",
                [device],
                |r| {
                    Ok((
                        r.get::<_, u8>(0)?,
                        r.get::<_, Vec<u8>>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, Vec<u8>>(3)?,
                        r.get::<_, u32>(4)?,
                    ))
                },
            )
            .optional()
            .map_err(err)?
            .map(|(curve, ik, spk, signature, id)| {
                Ok(DeviceRecord {
                    curve: CurveId::from_id(curve).ok_or_else(|| err("unknown curve stored"))?,
                    ik,
                    spk: SpkUpload { spk, signature, id },
                })
            })
            .transpose()
    }

    fn delete(&self, device: &str) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute("DELETE FROM lime_devices WHERE device = ?1", [device])
            .map_err(err)?;
        Ok(n > 0)
    }

    fn set_spk(&self, device: &str, spk: &SpkUpload) -> Result<bool, StoreError> {
        let n = self
            .lock()
            .execute(
                "UPDATE lime_devices SET spk = ?2, spk_sig = ?3, spk_id = ?4 WHERE device = ?1",
                params![device, spk.spk, spk.signature, spk.id],
            )
            .map_err(err)?;
        Ok(n > 0)
    }

    fn add_opks(
        &self,
        device: &str,
        opks: &[(Vec<u8>, u32)],
        max_opks: usize,
    ) -> Result<StoreOutcome, StoreError> {
        let mut c = self.lock();
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let known: Option<i64> = tx
            .query_row(
                "SELECT 1 FROM lime_devices WHERE device = ?1",
                [device],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        if known.is_none() {
            return Ok(StoreOutcome::Conflict);
        }
        if opk_count(&tx, device)? + opks.len() > max_opks {
            return Ok(StoreOutcome::Limit);
        }
        insert_opks(&tx, device, opks)?;
        tx.commit().map_err(err)?;
        Ok(StoreOutcome::Done)
    }

    fn opk_ids(&self, device: &str) -> Result<Vec<u32>, StoreError> {
        let c = self.lock();
        let mut st = c
            .prepare_cached("SELECT id FROM lime_opks WHERE device = ?1 ORDER BY id")
            .map_err(err)?;
        let ids = st
            .query_map([device], |r| r.get::<_, u32>(0))
            .map_err(err)?
            .collect::<Result<Vec<u32>, _>>()
            .map_err(err)?;
        Ok(ids)
    }

    fn take_bundle(&self, device: &str) -> Result<Option<PeerBundle>, StoreError> {
        let mut c = self.lock();
        let tx = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let Some((ik, spk, spk_signature, spk_id)) = tx
            .query_row(
                "SELECT ik, spk, spk_sig, spk_id FROM lime_devices WHERE device = ?1",
                [device],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()
            .map_err(err)?
        else {
            return Ok(None);
        };
        let opk: Option<(Vec<u8>, u32)> = tx
            .query_row(
                "SELECT opk, id FROM lime_opks WHERE device = ?1 ORDER BY id LIMIT 1",
                [device],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        if let Some((_, id)) = &opk {
            tx.execute(
                "DELETE FROM lime_opks WHERE device = ?1 AND id = ?2",
                params![device, id],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)?;
        Ok(Some(PeerBundle {
            device_id: device.to_owned(),
            ik,
            spk,
            spk_id,
            spk_signature,
            opk,
        }))
    }
}
