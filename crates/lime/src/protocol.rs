//! The X3DH key server protocol, version 0x01 (`Content-Type: x3dh/octet-stream`), for both
//! ends: every message starts `0x01 ‖ type ‖ curve id`; integers are big-endian.
//!
//! | type | request / reply | body |
//! |---|---|---|
//! | 0x09 | registerUser | Ik ‖ SPk ‖ SPk_sig ‖ SPk_id(4) ‖ count(2) ‖ (OPk ‖ OPk_id(4))× |
//! | 0x02 | deleteUser | — |
//! | 0x03 | postSPk | SPk ‖ SPk_sig ‖ SPk_id(4) |
//! | 0x04 | postOPks | count(2) ‖ (OPk ‖ OPk_id(4))× |
//! | 0x05 | getPeerBundle | count(2) ‖ (len(2) ‖ device id)× |
//! | 0x06 | peerBundle (reply) | count(2) ‖ (len(2) ‖ device id ‖ flag ‖ [Ik ‖ SPk ‖ SPk_id(4) ‖ SPk_sig ‖ [OPk ‖ OPk_id(4)]])× |
//! | 0x07 | getSelfOPks | — |
//! | 0x08 | selfOPks (reply) | count(2) ‖ OPk_id(4)× |
//! | 0xFF | error (reply) | code(1) ‖ [text] |
//!
//! Note the order trap: uploads carry `SPk ‖ signature ‖ id`, the bundle `SPk ‖ id ‖
//! signature`. Other requests are answered with their own 3-octet header.

use crate::wire::Reader;
use crate::x3dh::PeerBundle;
use crate::{CurveId, LimeError};

/// The protocol version octet.
pub const VERSION: u8 = 0x01;

/// Message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MessageType {
    /// Delete the sending device.
    DeleteUser = 0x02,
    /// Replace the signed prekey.
    PostSpk = 0x03,
    /// Add one-time prekeys.
    PostOpks = 0x04,
    /// Ask for devices' bundles.
    GetPeerBundle = 0x05,
    /// The bundles.
    PeerBundle = 0x06,
    /// Ask which of our OPks the server holds.
    GetSelfOpks = 0x07,
    /// Their ids.
    SelfOpks = 0x08,
    /// Register the sending device.
    RegisterUser = 0x09,
    /// An error reply.
    Error = 0xFF,
}

impl MessageType {
    fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0x02 => MessageType::DeleteUser,
            0x03 => MessageType::PostSpk,
            0x04 => MessageType::PostOpks,
            0x05 => MessageType::GetPeerBundle,
            0x06 => MessageType::PeerBundle,
            0x07 => MessageType::GetSelfOpks,
            0x08 => MessageType::SelfOpks,
            0x09 => MessageType::RegisterUser,
            0xFF => MessageType::Error,
            _ => return None,
        })
    }
}

/// Error codes of the error reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorCode {
    /// Not `x3dh/octet-stream`.
    BadContentType = 0x00,
    /// A curve the server or this user does not use.
    BadCurve = 0x01,
    /// No device id in the request.
    MissingSenderId = 0x02,
    /// Not version 0x01.
    BadProtocolVersion = 0x03,
    /// A body of the wrong size.
    BadSize = 0x04,
    /// The device is registered already.
    UserAlreadyIn = 0x05,
    /// The device is not registered.
    UserNotFound = 0x06,
    /// The server's storage failed.
    DbError = 0x07,
    /// Anything else wrong with the request.
    BadRequest = 0x08,
    /// The server failed.
    ServerFailure = 0x09,
    /// A per-device limit was reached.
    ResourceLimitReached = 0x0a,
}

/// An uploaded signed prekey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpkUpload {
    /// The public key.
    pub spk: Vec<u8>,
    /// The identity key's signature over it.
    pub signature: Vec<u8>,
    /// Its id.
    pub id: u32,
}

/// A request to the key server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// registerUser.
    RegisterUser {
        /// The identity public key.
        ik: Vec<u8>,
        /// The signed prekey.
        spk: SpkUpload,
        /// One-time prekeys and their ids.
        opks: Vec<(Vec<u8>, u32)>,
    },
    /// deleteUser.
    DeleteUser,
    /// postSPk.
    PostSpk(SpkUpload),
    /// postOPks.
    PostOpks(Vec<(Vec<u8>, u32)>),
    /// getPeerBundle for these device ids.
    GetPeerBundle(Vec<String>),
    /// getSelfOPks.
    GetSelfOpks,
}

/// One device's answer in a peerBundle reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleEntry {
    /// Its bundle (with or without an OPk).
    Bundle(PeerBundle),
    /// The server holds no bundle for this device.
    NoBundle(String),
}

/// A reply of the key server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// Done (the request's own header).
    Ack(MessageType),
    /// peerBundle.
    PeerBundles(Vec<BundleEntry>),
    /// selfOPks.
    SelfOpks(Vec<u32>),
    /// error.
    Error(ErrorCode, String),
}

fn header(curve: CurveId, kind: MessageType) -> Vec<u8> {
    vec![VERSION, kind as u8, curve.id()]
}

fn put_u16(o: &mut Vec<u8>, n: usize) {
    o.extend_from_slice(&(n.min(usize::from(u16::MAX)) as u16).to_be_bytes());
}

fn put_opks(o: &mut Vec<u8>, opks: &[(Vec<u8>, u32)]) {
    put_u16(o, opks.len());
    for (k, id) in opks {
        o.extend_from_slice(k);
        o.extend_from_slice(&id.to_be_bytes());
    }
}

impl Request {
    /// The request's encoding for a user on `curve`.
    pub fn encode(&self, curve: CurveId) -> Vec<u8> {
        let spk_up = |o: &mut Vec<u8>, s: &SpkUpload| {
            o.extend_from_slice(&s.spk);
            o.extend_from_slice(&s.signature);
            o.extend_from_slice(&s.id.to_be_bytes());
        };
        match self {
            Request::RegisterUser { ik, spk, opks } => {
                let mut o = header(curve, MessageType::RegisterUser);
                o.extend_from_slice(ik);
                spk_up(&mut o, spk);
                put_opks(&mut o, opks);
                o
            }
            Request::DeleteUser => header(curve, MessageType::DeleteUser),
            Request::PostSpk(s) => {
                let mut o = header(curve, MessageType::PostSpk);
                spk_up(&mut o, s);
                o
            }
            Request::PostOpks(opks) => {
                let mut o = header(curve, MessageType::PostOpks);
                put_opks(&mut o, opks);
                o
            }
            Request::GetPeerBundle(ids) => {
                let mut o = header(curve, MessageType::GetPeerBundle);
                put_u16(&mut o, ids.len());
                for id in ids {
                    put_u16(&mut o, id.len());
                    o.extend_from_slice(id.as_bytes());
                }
                o
            }
            Request::GetSelfOpks => header(curve, MessageType::GetSelfOpks),
        }
    }

    /// Parses a request; on failure, the error reply's code and text.
    pub fn parse(b: &[u8]) -> Result<(CurveId, Request), (ErrorCode, &'static str)> {
        let bad_size = (ErrorCode::BadSize, "message of the wrong size");
        if b.len() < 3 {
            return Err(bad_size);
        }
        if b[0] != VERSION {
            return Err((ErrorCode::BadProtocolVersion, "unknown protocol version"));
        }
        let curve = CurveId::from_id(b[2]).ok_or((ErrorCode::BadCurve, "unknown curve"))?;
        let kind = MessageType::from_u8(b[1]).ok_or((ErrorCode::BadRequest, "unknown message"))?;
        let mut r = Reader(&b[3..]);
        let spk = |r: &mut Reader<'_>| -> Option<SpkUpload> {
            Some(SpkUpload {
                spk: r.take(curve.dh_len())?.to_vec(),
                signature: r.take(curve.signature_len())?.to_vec(),
                id: r.u32()?,
            })
        };
        let opks = |r: &mut Reader<'_>| -> Option<Vec<(Vec<u8>, u32)>> {
            let n = r.u16()?;
            (0..n)
                .map(|_| Some((r.take(curve.dh_len())?.to_vec(), r.u32()?)))
                .collect()
        };
        let req = match kind {
            MessageType::RegisterUser => (|| {
                Some(Request::RegisterUser {
                    ik: r.take(curve.ik_len())?.to_vec(),
                    spk: spk(&mut r)?,
                    opks: opks(&mut r)?,
                })
            })(),
            MessageType::DeleteUser => Some(Request::DeleteUser),
            MessageType::PostSpk => spk(&mut r).map(Request::PostSpk),
            MessageType::PostOpks => opks(&mut r).map(Request::PostOpks),
            MessageType::GetPeerBundle => (|| {
                let n = r.u16()?;
                let ids = (0..n)
                    .map(|_| {
                        let len = r.u16()?;
                        String::from_utf8(r.take(len)?.to_vec()).ok()
                    })
                    .collect::<Option<Vec<String>>>()?;
                Some(Request::GetPeerBundle(ids))
            })(),
            MessageType::GetSelfOpks => Some(Request::GetSelfOpks),
            _ => return Err((ErrorCode::BadRequest, "not a request")),
        };
        match req {
            Some(req) if r.done() => Ok((curve, req)),
            _ => Err(bad_size),
        }
    }
}

impl Response {
    /// The reply's encoding for a user on `curve`.
    pub fn encode(&self, curve: CurveId) -> Vec<u8> {
        match self {
            Response::Ack(kind) => header(curve, *kind),
            Response::PeerBundles(entries) => {
                let mut o = header(curve, MessageType::PeerBundle);
                put_u16(&mut o, entries.len());
                for e in entries {
                    match e {
                        BundleEntry::NoBundle(id) => {
                            put_u16(&mut o, id.len());
                            o.extend_from_slice(id.as_bytes());
                            o.push(2);
                        }
                        BundleEntry::Bundle(b) => {
                            put_u16(&mut o, b.device_id.len());
                            o.extend_from_slice(b.device_id.as_bytes());
                            o.push(u8::from(b.opk.is_some()));
                            o.extend_from_slice(&b.ik);
                            o.extend_from_slice(&b.spk);
                            o.extend_from_slice(&b.spk_id.to_be_bytes());
                            o.extend_from_slice(&b.spk_signature);
                            if let Some((k, id)) = &b.opk {
                                o.extend_from_slice(k);
                                o.extend_from_slice(&id.to_be_bytes());
                            }
                        }
                    }
                }
                o
            }
            Response::SelfOpks(ids) => {
                let mut o = header(curve, MessageType::SelfOpks);
                put_u16(&mut o, ids.len());
                for id in ids {
                    o.extend_from_slice(&id.to_be_bytes());
                }
                o
            }
            Response::Error(code, text) => {
                let mut o = header(curve, MessageType::Error);
                o.push(*code as u8);
                o.extend_from_slice(text.as_bytes());
                o
            }
        }
    }

    /// Parses a reply for a user on `curve`.
    pub fn parse(curve: CurveId, b: &[u8]) -> Result<Response, LimeError> {
        let bad = LimeError::Malformed("key server reply");
        if b.len() < 3 || b[0] != VERSION {
            return Err(bad);
        }
        let kind = MessageType::from_u8(b[1]).ok_or(bad.clone())?;
        if kind == MessageType::Error {
            let code = *b.get(3).ok_or(bad.clone())?;
            let text = b[4..]
                .split(|&c| c == 0)
                .next()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default();
            return Err(LimeError::Server { code, text });
        }
        if b[2] != curve.id() {
            return Err(bad);
        }
        let mut r = Reader(&b[3..]);
        let resp = match kind {
            MessageType::PeerBundle => (|| {
                let n = r.u16()?;
                let entries = (0..n)
                    .map(|_| {
                        let len = r.u16()?;
                        let device_id = String::from_utf8(r.take(len)?.to_vec()).ok()?;
                        let flag = r.u8()?;
                        if flag == 2 {
                            return Some(BundleEntry::NoBundle(device_id));
                        }
                        let ik = r.take(curve.ik_len())?.to_vec();
                        let spk = r.take(curve.dh_len())?.to_vec();
                        let spk_id = r.u32()?;
                        let spk_signature = r.take(curve.signature_len())?.to_vec();
                        let opk = match flag {
                            1 => Some((r.take(curve.dh_len())?.to_vec(), r.u32()?)),
                            0 => None,
                            _ => return None,
                        };
                        Some(BundleEntry::Bundle(PeerBundle {
                            device_id,
                            ik,
                            spk,
                            spk_id,
                            spk_signature,
                            opk,
                        }))
                    })
                    .collect::<Option<Vec<_>>>()?;
                Some(Response::PeerBundles(entries))
            })(),
            MessageType::SelfOpks => (|| {
                let n = r.u16()?;
                Some(Response::SelfOpks(
                    (0..n).map(|_| r.u32()).collect::<Option<Vec<u32>>>()?,
                ))
            })(),
            other => Some(Response::Ack(other)),
        };
        match resp {
            Some(resp) if r.done() => Ok(resp),
            _ => Err(bad),
        }
    }
}
