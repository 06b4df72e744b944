//! The LIME key server's store on PostgreSQL (sqlx): for several key-server processes on one
//! database. Every call is one statement or one transaction; a bundle's OPk is taken by one
//! `DELETE … RETURNING` on a row locked with `FOR UPDATE SKIP LOCKED`, so concurrent
//! requests, in one process or many, never get the same OPk.
//!
//! The trait is synchronous (the key server's logic is sans-IO): calls run on a small runtime
//! of this store's own. Call them from a thread that is not driving async tasks (the HTTPS
//! edge runs the service on tokio's blocking pool).

use sotto_lime::CurveId;
use sotto_lime::keyserver::{DeviceRecord, KeyStore, StoreError, StoreOutcome};
use sotto_lime::protocol::SpkUpload;
use sotto_lime::x3dh::PeerBundle;
use sqlx::Row;
use sqlx::postgres::{PgPool, PgPoolOptions};

const SCHEMA: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS lime_devices (
        device  TEXT PRIMARY KEY,
        curve   SMALLINT NOT NULL,
        ik      BYTEA NOT NULL,
        spk     BYTEA NOT NULL,
        spk_sig BYTEA NOT NULL,
        spk_id  BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS lime_opks (
        device TEXT NOT NULL REFERENCES lime_devices(device) ON DELETE CASCADE,
        id     BIGINT NOT NULL,
        opk    BYTEA NOT NULL,
        PRIMARY KEY (device, id))",
];

/// An arbitrary key of the advisory lock that serializes schema creation.
const SCHEMA_LOCK: i64 = 0x5077_0111_4e00;

/// The key server's PostgreSQL store.
#[derive(Debug)]
pub struct PgKeyStore {
    /// Always `Some` until dropped (then shut down without blocking: it may be dropped on an
    /// async worker).
    runtime: Option<tokio::runtime::Runtime>,
    pool: PgPool,
}

impl Drop for PgKeyStore {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl PgKeyStore {
    /// Connects to `url` (`postgres://user@host:port/db`) and creates the tables if needed.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(err)?;
        let pool = rt.block_on(async {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .connect(url)
                .await
                .map_err(err)?;
            let mut tx = pool.begin().await.map_err(err)?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(SCHEMA_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(err)?;
            for s in SCHEMA {
                sqlx::query(s).execute(&mut *tx).await.map_err(err)?;
            }
            tx.commit().await.map_err(err)?;
            Ok::<_, StoreError>(pool)
        })?;
        Ok(PgKeyStore {
            runtime: Some(rt),
            pool,
        })
    }

    /// Runs `f` to completion on the store's runtime.
    fn run<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        match &self.runtime {
            Some(rt) => rt.block_on(f),
            None => unreachable!("the runtime is only taken on drop"),
        }
    }
}

async fn insert_opks(
    tx: &mut sqlx::PgConnection,
    device: &str,
    opks: &[(Vec<u8>, u32)],
) -> Result<(), StoreError> {
    for (k, id) in opks {
        sqlx::query(
            "INSERT INTO lime_opks (device, id, opk) VALUES ($1, $2, $3)
             ON CONFLICT (device, id) DO UPDATE SET opk = EXCLUDED.opk",
        )
        .bind(device)
        .bind(i64::from(*id))
        .bind(k)
        .execute(&mut *tx)
        .await
        .map_err(err)?;
    }
    Ok(())
}

fn id_of(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| err("a stored id out of range"))
}

impl KeyStore for PgKeyStore {
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
        self.run(async {
            let mut tx = self.pool.begin().await.map_err(err)?;
            let inserted = sqlx::query(
                "INSERT INTO lime_devices (device, curve, ik, spk, spk_sig, spk_id)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (device) DO NOTHING",
            )
            .bind(device)
            .bind(i16::from(record.curve.id()))
            .bind(&record.ik)
            .bind(&record.spk.spk)
            .bind(&record.spk.signature)
            .bind(i64::from(record.spk.id))
            .execute(&mut *tx)
            .await
            .map_err(err)?
            .rows_affected();
            if inserted == 0 {
                return Ok(StoreOutcome::Conflict);
            }
            insert_opks(&mut tx, device, opks).await?;
            tx.commit().await.map_err(err)?;
            Ok(StoreOutcome::Done)
        })
    }

    fn device(&self, device: &str) -> Result<Option<DeviceRecord>, StoreError> {
        self.run(async {
            let row = sqlx::query(
                "SELECT curve, ik, spk, spk_sig, spk_id FROM lime_devices WHERE device = $1",
            )
            .bind(device)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
            row.map(|r| {
                let curve: i16 = r.try_get(0).map_err(err)?;
                Ok(DeviceRecord {
                    curve: u8::try_from(curve)
                        .ok()
                        .and_then(CurveId::from_id)
                        .ok_or_else(|| err("unknown curve stored"))?,
                    ik: r.try_get(1).map_err(err)?,
                    spk: SpkUpload {
                        spk: r.try_get(2).map_err(err)?,
                        signature: r.try_get(3).map_err(err)?,
                        id: id_of(r.try_get(4).map_err(err)?)?,
                    },
                })
            })
            .transpose()
        })
    }

    fn delete(&self, device: &str) -> Result<bool, StoreError> {
        self.run(async {
            let n = sqlx::query("DELETE FROM lime_devices WHERE device = $1")
                .bind(device)
                .execute(&self.pool)
                .await
                .map_err(err)?
                .rows_affected();
            Ok(n > 0)
        })
    }

    fn set_spk(&self, device: &str, spk: &SpkUpload) -> Result<bool, StoreError> {
        self.run(async {
            let n = sqlx::query(
                "UPDATE lime_devices SET spk = $2, spk_sig = $3, spk_id = $4 WHERE device = $1",
            )
            .bind(device)
            .bind(&spk.spk)
            .bind(&spk.signature)
            .bind(i64::from(spk.id))
            .execute(&self.pool)
            .await
            .map_err(err)?
            .rows_affected();
            Ok(n > 0)
        })
    }

    fn add_opks(
        &self,
        device: &str,
        opks: &[(Vec<u8>, u32)],
        max_opks: usize,
    ) -> Result<StoreOutcome, StoreError> {
        self.run(async {
            let mut tx = self.pool.begin().await.map_err(err)?;
            // The device row locked: two uploads for one device count one after the other.
            let known = sqlx::query("SELECT 1 FROM lime_devices WHERE device = $1 FOR UPDATE")
                .bind(device)
                .fetch_optional(&mut *tx)
                .await
                .map_err(err)?;
            if known.is_none() {
                return Ok(StoreOutcome::Conflict);
            }
            let held: i64 = sqlx::query("SELECT COUNT(*) FROM lime_opks WHERE device = $1")
                .bind(device)
                .fetch_one(&mut *tx)
                .await
                .map_err(err)?
                .try_get(0)
                .map_err(err)?;
            if usize::try_from(held).unwrap_or(usize::MAX) + opks.len() > max_opks {
                return Ok(StoreOutcome::Limit);
            }
            insert_opks(&mut tx, device, opks).await?;
            tx.commit().await.map_err(err)?;
            Ok(StoreOutcome::Done)
        })
    }

    fn opk_ids(&self, device: &str) -> Result<Vec<u32>, StoreError> {
        self.run(async {
            let rows = sqlx::query("SELECT id FROM lime_opks WHERE device = $1 ORDER BY id")
                .bind(device)
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
            rows.iter()
                .map(|r| id_of(r.try_get(0).map_err(err)?))
                .collect()
        })
    }

    fn take_bundle(&self, device: &str) -> Result<Option<PeerBundle>, StoreError> {
        let Some(record) = self.device(device)? else {
            return Ok(None);
        };
        let opk = self.run(async {
            let row = sqlx::query(
                "DELETE FROM lime_opks WHERE (device, id) = (
                     SELECT device, id FROM lime_opks WHERE device = $1
                     ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING opk, id",
            )
            .bind(device)
            .fetch_optional(&self.pool)
            .await
            .map_err(err)?;
            row.map(|r| {
                Ok::<_, StoreError>((
                    r.try_get::<Vec<u8>, _>(0).map_err(err)?,
                    id_of(r.try_get(1).map_err(err)?)?,
                ))
            })
            .transpose()
        })?;
        Ok(Some(PeerBundle {
            device_id: device.to_owned(),
            ik: record.ik,
            spk: record.spk.spk,
            spk_id: record.spk.id,
            spk_signature: record.spk.signature,
            opk,
        }))
    }
}
