//! The ZRTP key-continuity cache on disk: `zrtp-cache.sqlite` in the agent's data directory
//! (owner-only permissions). Loaded once at start; written back whole, in one SQLite
//! transaction (so a crash leaves the old cache or the new one, never half of each), after a
//! call's keys are agreed or its SAS is confirmed. Our ZID is drawn on first use and kept.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use sotto_crypto::rng::SecureRandom;
use sotto_crypto::secret::SecretBytes;
use sotto_media::zrtp::{PeerSecrets, ZidCache};

/// The file name in the data directory.
pub const FILE_NAME: &str = "zrtp-cache.sqlite";

/// A cache file.
#[derive(Debug, Clone)]
pub struct ZidStore {
    path: PathBuf,
}

fn err(path: &Path, e: impl std::fmt::Display) -> String {
    format!("ZRTP cache {}: {e}", path.display())
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS own (id INTEGER PRIMARY KEY CHECK (id = 0), zid BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS peers (
    zid BLOB PRIMARY KEY,
    rs1 BLOB, rs2 BLOB, pbx BLOB, aux BLOB,
    verified INTEGER NOT NULL,
    unsafe_mismatch INTEGER NOT NULL,
    uri TEXT,
    seq INTEGER NOT NULL
);";

impl ZidStore {
    /// The cache in `data_dir`.
    pub fn in_dir(data_dir: &Path) -> Self {
        ZidStore {
            path: data_dir.join(FILE_NAME),
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn open(&self) -> Result<Connection, String> {
        if let Some(d) = self.path.parent() {
            std::fs::create_dir_all(d).map_err(|e| err(&self.path, e))?;
        }
        let c = Connection::open(&self.path).map_err(|e| err(&self.path, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600));
        }
        c.execute_batch(SCHEMA).map_err(|e| err(&self.path, e))?;
        // Files written before the auxiliary secret was kept lack its column.
        let has_aux = c.prepare("SELECT aux FROM peers LIMIT 0").is_ok();
        if !has_aux {
            c.execute_batch("ALTER TABLE peers ADD COLUMN aux BLOB")
                .map_err(|e| err(&self.path, e))?;
        }
        Ok(c)
    }

    /// Loads the cache, creating it (with a new random ZID) when there is none.
    pub fn load(&self, rng: &dyn SecureRandom) -> Result<ZidCache, String> {
        let c = self.open()?;
        let own: Option<Vec<u8>> = c
            .query_row("SELECT zid FROM own WHERE id = 0", [], |r| r.get(0))
            .optional()
            .map_err(|e| err(&self.path, e))?;
        let zid: [u8; 12] = match own {
            Some(z) => z
                .try_into()
                .map_err(|_| err(&self.path, "our ZID is not 12 octets"))?,
            None => {
                let mut z = [0u8; 12];
                rng.fill(&mut z).map_err(|e| err(&self.path, e))?;
                c.execute(
                    "INSERT INTO own (id, zid) VALUES (0, ?1)",
                    params![z.to_vec()],
                )
                .map_err(|e| err(&self.path, e))?;
                z
            }
        };
        let mut cache = ZidCache::new(zid);
        let mut q = c
            .prepare("SELECT zid, rs1, rs2, pbx, verified, unsafe_mismatch, uri, aux FROM peers")
            .map_err(|e| err(&self.path, e))?;
        let rows = q
            .query_map([], |r| {
                let secret = |v: Option<Vec<u8>>| {
                    v.map(|b| SecretBytes::from_slice(&zeroize::Zeroizing::new(b)))
                };
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    PeerSecrets {
                        rs1: secret(r.get(1)?),
                        rs2: secret(r.get(2)?),
                        pbx: secret(r.get(3)?),
                        verified: r.get::<_, i64>(4)? != 0,
                        unsafe_mismatch: r.get::<_, i64>(5)? != 0,
                        uri: r.get(6)?,
                        aux: secret(r.get(7)?),
                    },
                ))
            })
            .map_err(|e| err(&self.path, e))?;
        for row in rows {
            let (z, p) = row.map_err(|e| err(&self.path, e))?;
            if let Ok(z) = <[u8; 12]>::try_from(z) {
                cache.insert(z, p);
            }
        }
        cache.mark_saved();
        Ok(cache)
    }

    /// Writes every peer of `cache` in one transaction.
    pub fn save(&self, cache: &ZidCache) -> Result<(), String> {
        let mut c = self.open()?;
        let t = c.transaction().map_err(|e| err(&self.path, e))?;
        t.execute("DELETE FROM peers", [])
            .map_err(|e| err(&self.path, e))?;
        for (seq, (zid, p)) in cache.peers().enumerate() {
            let blob = |s: &Option<SecretBytes>| s.as_ref().map(|s| s.expose().to_vec());
            t.execute(
                "INSERT INTO peers (zid, rs1, rs2, pbx, verified, unsafe_mismatch, uri, seq, aux) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    zid.to_vec(),
                    blob(&p.rs1),
                    blob(&p.rs2),
                    blob(&p.pbx),
                    p.verified,
                    p.unsafe_mismatch,
                    p.uri,
                    seq as i64,
                    blob(&p.aux)
                ],
            )
            .map_err(|e| err(&self.path, e))?;
        }
        t.commit().map_err(|e| err(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_zid_secrets_and_flags() {
        let dir = tempfile::tempdir().unwrap();
        let store = ZidStore::in_dir(dir.path());
        let rng = sotto_crypto_rust::provider().rng;
        let mut c = store.load(rng).unwrap();
        let zid = *c.zid();
        c.update(
            [7; 12],
            SecretBytes::from_slice(&[1; 32]),
            sotto_media::zrtp::CacheStatus::New,
            Some("sip:bob@example.test"),
        );
        c.set_verified([7; 12], true);
        c.set_aux([7; 12], Some(SecretBytes::from_slice(&[9; 16])));
        store.save(&c).unwrap();
        let back = store.load(rng).unwrap();
        assert_eq!(back.zid(), &zid, "our ZID is kept");
        let p = back.peer(&[7; 12]).unwrap();
        assert_eq!(p.rs1.as_ref().unwrap().expose(), &[1; 32]);
        assert!(p.verified && !p.unsafe_mismatch);
        assert_eq!(p.uri.as_deref(), Some("sip:bob@example.test"));
        assert_eq!(p.aux.as_ref().unwrap().expose(), &[9; 16]);
    }
}
