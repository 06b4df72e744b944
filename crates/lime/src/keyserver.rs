//! The key server's protocol logic, sans-IO: a request body and the authenticated device id
//! in, a reply body out. Storage is behind [`KeyStore`] (memory here; SQLite and PostgreSQL
//! at the server's edge), whose `take_bundle` hands an OPk out at most once.
//!
//! Per-device limits against abuse: at most [`Limits::max_opks`] OPks held, at most
//! [`Limits::max_bundle_devices`] devices asked for in one request.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use crate::CurveId;
use crate::protocol::{BundleEntry, ErrorCode, MessageType, Request, Response, SpkUpload};
use crate::x3dh::PeerBundle;

/// A registered device as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Its curve.
    pub curve: CurveId,
    /// Its identity public key.
    pub ik: Vec<u8>,
    /// Its current signed prekey.
    pub spk: SpkUpload,
}

/// Why the store failed (answered with `db_error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key store: {0}")]
pub struct StoreError(pub String);

/// What a [`KeyStore::register`] or [`KeyStore::add_opks`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Done.
    Done,
    /// The device is registered already (register) or not at all (others).
    Conflict,
    /// The device would hold more OPks than allowed.
    Limit,
}

/// The key server's storage. Implementations make each call atomic; `take_bundle` removes
/// the OPk it returns in the same transaction, so no OPk is ever served twice, also under
/// concurrent requests and across server instances sharing the store.
pub trait KeyStore: Send + Sync {
    /// Registers a device with its keys.
    fn register(
        &self,
        device: &str,
        record: &DeviceRecord,
        opks: &[(Vec<u8>, u32)],
        max_opks: usize,
    ) -> Result<StoreOutcome, StoreError>;
    /// The device, if registered.
    fn device(&self, device: &str) -> Result<Option<DeviceRecord>, StoreError>;
    /// Deletes a device and its keys; false if it was not registered.
    fn delete(&self, device: &str) -> Result<bool, StoreError>;
    /// Replaces a device's SPk; false if it is not registered.
    fn set_spk(&self, device: &str, spk: &SpkUpload) -> Result<bool, StoreError>;
    /// Adds OPks (ids already held are replaced).
    fn add_opks(
        &self,
        device: &str,
        opks: &[(Vec<u8>, u32)],
        max_opks: usize,
    ) -> Result<StoreOutcome, StoreError>;
    /// The ids of the OPks held for a device.
    fn opk_ids(&self, device: &str) -> Result<Vec<u32>, StoreError>;
    /// A device's bundle, taking one of its OPks (if any) out for good.
    fn take_bundle(&self, device: &str) -> Result<Option<PeerBundle>, StoreError>;
}

/// Limits per device.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// OPks held for one device.
    pub max_opks: usize,
    /// Devices asked for in one getPeerBundle.
    pub max_bundle_devices: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_opks: 500,
            max_bundle_devices: 200,
        }
    }
}

/// The key server logic over a store.
pub struct KeyServer<S: KeyStore> {
    store: S,
    curves: Vec<CurveId>,
    limits: Limits,
}

impl<S: KeyStore> KeyServer<S> {
    /// A server accepting users on `curves`.
    pub fn new(store: S, curves: Vec<CurveId>, limits: Limits) -> Self {
        KeyServer {
            store,
            curves,
            limits,
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The reply to `body` sent by the authenticated `device` (its GRUU).
    pub fn handle(&self, device: &str, body: &[u8]) -> Vec<u8> {
        let curve = body
            .get(2)
            .copied()
            .and_then(CurveId::from_id)
            .unwrap_or(CurveId::C25519);
        let reply = match Request::parse(body) {
            Err((code, text)) => Response::Error(code, text.into()),
            Ok(_) if device.is_empty() => {
                Response::Error(ErrorCode::MissingSenderId, "no device id".into())
            }
            Ok((curve, _)) if !self.curves.contains(&curve) => {
                Response::Error(ErrorCode::BadCurve, "curve not served here".into())
            }
            Ok((curve, req)) => self
                .dispatch(device, curve, req)
                .unwrap_or_else(|e| Response::Error(ErrorCode::DbError, e.0)),
        };
        reply.encode(curve)
    }

    fn dispatch(&self, device: &str, curve: CurveId, req: Request) -> Result<Response, StoreError> {
        let err = |c, t: &str| Ok(Response::Error(c, t.into()));
        // Every request but registration needs the device registered, on this curve.
        if !matches!(req, Request::RegisterUser { .. }) {
            match self.store.device(device)? {
                None => return err(ErrorCode::UserNotFound, "device not registered"),
                Some(r) if r.curve != curve => {
                    return err(ErrorCode::BadCurve, "the device uses another curve");
                }
                Some(_) => {}
            }
        }
        let max = self.limits.max_opks;
        Ok(match req {
            Request::RegisterUser { ik, spk, opks } => {
                let record = DeviceRecord { curve, ik, spk };
                match self.store.register(device, &record, &opks, max)? {
                    StoreOutcome::Done => Response::Ack(MessageType::RegisterUser),
                    StoreOutcome::Conflict => {
                        return err(ErrorCode::UserAlreadyIn, "device registered already");
                    }
                    StoreOutcome::Limit => {
                        return err(ErrorCode::ResourceLimitReached, "too many OPks");
                    }
                }
            }
            Request::DeleteUser => {
                self.store.delete(device)?;
                Response::Ack(MessageType::DeleteUser)
            }
            Request::PostSpk(spk) => {
                self.store.set_spk(device, &spk)?;
                Response::Ack(MessageType::PostSpk)
            }
            Request::PostOpks(opks) => match self.store.add_opks(device, &opks, max)? {
                StoreOutcome::Done => Response::Ack(MessageType::PostOpks),
                StoreOutcome::Conflict => return err(ErrorCode::UserNotFound, "not registered"),
                StoreOutcome::Limit => {
                    return err(ErrorCode::ResourceLimitReached, "too many OPks");
                }
            },
            Request::GetSelfOpks => Response::SelfOpks(self.store.opk_ids(device)?),
            Request::GetPeerBundle(ids) => {
                if ids.is_empty() || ids.len() > self.limits.max_bundle_devices {
                    return err(ErrorCode::BadRequest, "bad number of devices");
                }
                let mut entries = Vec::with_capacity(ids.len());
                for id in ids {
                    // A device on another curve has no bundle for us (and keeps its OPks).
                    let same_curve = self.store.device(&id)?.map(|r| r.curve) == Some(curve);
                    let bundle = match same_curve {
                        true => self.store.take_bundle(&id)?,
                        false => None,
                    };
                    entries.push(match bundle {
                        Some(b) => BundleEntry::Bundle(b),
                        None => BundleEntry::NoBundle(id),
                    });
                }
                Response::PeerBundles(entries)
            }
        })
    }
}

/// A device's keys in memory.
#[derive(Debug, Clone)]
struct Held {
    record: DeviceRecord,
    opks: BTreeMap<u32, Vec<u8>>,
}

/// A [`KeyStore`] in memory (tests, a single server without persistence).
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    devices: Mutex<HashMap<String, Held>>,
}

impl MemoryKeyStore {
    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Held>>, StoreError> {
        self.devices
            .lock()
            .map_err(|_| StoreError("poisoned".into()))
    }
}

impl KeyStore for MemoryKeyStore {
    fn register(
        &self,
        device: &str,
        record: &DeviceRecord,
        opks: &[(Vec<u8>, u32)],
        max_opks: usize,
    ) -> Result<StoreOutcome, StoreError> {
        let mut d = self.lock()?;
        if d.contains_key(device) {
            return Ok(StoreOutcome::Conflict);
        }
        if opks.len() > max_opks {
            return Ok(StoreOutcome::Limit);
        }
        d.insert(
            device.to_owned(),
            Held {
                record: record.clone(),
                opks: opks.iter().map(|(k, id)| (*id, k.clone())).collect(),
            },
        );
        Ok(StoreOutcome::Done)
    }

    fn device(&self, device: &str) -> Result<Option<DeviceRecord>, StoreError> {
        Ok(self.lock()?.get(device).map(|h| h.record.clone()))
    }

    fn delete(&self, device: &str) -> Result<bool, StoreError> {
        Ok(self.lock()?.remove(device).is_some())
    }

    fn set_spk(&self, device: &str, spk: &SpkUpload) -> Result<bool, StoreError> {
        Ok(match self.lock()?.get_mut(device) {
            Some(h) => {
                h.record.spk = spk.clone();
                true
            }
            None => false,
        })
    }

    fn add_opks(
        &self,
        device: &str,
        opks: &[(Vec<u8>, u32)],
        max_opks: usize,
    ) -> Result<StoreOutcome, StoreError> {
        let mut d = self.lock()?;
        let Some(h) = d.get_mut(device) else {
            return Ok(StoreOutcome::Conflict);
        };
        if h.opks.len() + opks.len() > max_opks {
            return Ok(StoreOutcome::Limit);
        }
        for (k, id) in opks {
            h.opks.insert(*id, k.clone());
        }
        Ok(StoreOutcome::Done)
    }

    fn opk_ids(&self, device: &str) -> Result<Vec<u32>, StoreError> {
        Ok(self
            .lock()?
            .get(device)
            .map(|h| h.opks.keys().copied().collect())
            .unwrap_or_default())
    }

    fn take_bundle(&self, device: &str) -> Result<Option<PeerBundle>, StoreError> {
        let mut d = self.lock()?;
        let Some(h) = d.get_mut(device) else {
            return Ok(None);
        };
        let opk = h.opks.pop_first().map(|(id, k)| (k, id));
        Ok(Some(PeerBundle {
            device_id: device.to_owned(),
            ik: h.record.ik.clone(),
            spk: h.record.spk.spk.clone(),
            spk_id: h.record.spk.id,
            spk_signature: h.record.spk.signature.clone(),
            opk,
        }))
    }
}
