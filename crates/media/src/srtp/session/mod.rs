//! The SRTP/SRTCP cryptographic context: RFC 3711 §3.3 (SRTP), §3.4 (SRTCP), §3.3.1 (ROC
//! estimation), §3.3.2 (replay), §4.1.1 (AES-CM), §4.2 (HMAC-SHA1), §4.3 (key derivation),
//! §9.2 (key limits); RFC 7714 §8-9 (AES-GCM); RFC 6188 (AES-192/256).

use std::collections::HashMap;

use sotto_crypto::CryptoProvider;
use sotto_crypto::cipher::{AES_BLOCK_LEN, AeadKey, AesCtrKey, GCM_NONCE_LEN, GCM_TAG_LEN};
use sotto_crypto::mac::{MacAlgorithm, MacKey};
use zeroize::Zeroizing;

use super::kdf::{self, Kdf};
use super::policy::{KeyLimits, check_key, check_mki};
use super::replay::ReplayWindow;
use super::suite::CipherKind;
use super::{SrtpError, SrtpPolicy, SrtpSuite};
use crate::hook::{PacketModifier, PacketMut};
use crate::rtp::RtpHeader;

mod rtcp;

/// HMAC-SHA1 session authentication key length (RFC 3711 §8.2: n_a = 160).
const AUTH_KEY_LEN: usize = 20;
/// Length of the SRTCP E-flag and index word.
const SRTCP_INDEX_LEN: usize = 4;
/// Largest SRTCP index (31 bits).
const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// Session keys given directly (no key derivation): for known-answer tests and keying
/// methods that deliver session keys. `salt` is 14 bytes (AES-CM), 12 (GCM) or empty (NULL);
/// `auth_key` is 20 bytes for HMAC suites and empty otherwise.
#[derive(Debug, Clone, Copy)]
pub struct SessionKeys<'a> {
    /// Session encryption key.
    pub key: &'a [u8],
    /// Session salt.
    pub salt: &'a [u8],
    /// Session authentication key.
    pub auth_key: &'a [u8],
}

enum Cipher {
    Cm(Box<dyn AesCtrKey>),
    Gcm(Box<dyn AeadKey>),
    Null,
}

/// The keyed state for one direction kind (SRTP or SRTCP) of one master key.
struct DirKeys {
    cipher: Cipher,
    /// Session salt, left-aligned (14 bytes used by AES-CM, 12 by GCM).
    salt: Zeroizing<[u8; 14]>,
    auth: Option<Box<dyn MacKey>>,
}

/// One master key: its MKI, its derived session keys and its usage counters.
struct MasterKeyState {
    mki: Vec<u8>,
    rtp: DirKeys,
    rtcp: DirKeys,
    srtp_used: u64,
    srtcp_used: u64,
}

/// Per-SSRC state.
struct Stream {
    ssrc: u32,
    tx_started: bool,
    tx_roc: u32,
    tx_seq: u16,
    tx_rtcp_index: u32,
    rx_started: bool,
    rx_roc: u32,
    rx_seq: u16,
    rtp_replay: ReplayWindow,
    rtcp_replay: ReplayWindow,
}

impl Stream {
    fn new(ssrc: u32, window: usize) -> Self {
        Stream {
            ssrc,
            tx_started: false,
            tx_roc: 0,
            tx_seq: 0,
            tx_rtcp_index: 0,
            rx_started: false,
            rx_roc: 0,
            rx_seq: 0,
            rtp_replay: ReplayWindow::new(window),
            rtcp_replay: ReplayWindow::new(window),
        }
    }
}

/// RFC 3711 §3.3.1: the ROC `v` for a packet with sequence number `seq`, given the current
/// ROC and highest sequence number `s_l`.
fn estimate_roc(roc: u32, s_l: u16, seq: u16) -> Result<u32, SrtpError> {
    const HALF: i32 = 1 << 15;
    let (s_l, s) = (i32::from(s_l), i32::from(seq));
    if s_l < HALF {
        if s - s_l > HALF {
            return roc.checked_sub(1).ok_or(SrtpError::TooOld {
                index: u64::from(seq),
            });
        }
    } else if s_l - HALF > s {
        return roc.checked_add(1).ok_or(SrtpError::KeyLimitReached);
    }
    Ok(roc)
}

fn rtp_index(roc: u32, seq: u16) -> u64 {
    (u64::from(roc) << 16) | u64::from(seq)
}

/// AES-CM IV (RFC 3711 §4.1.1): (salt · 2^16) XOR (SSRC · 2^64) XOR (index · 2^16).
#[inline]
fn cm_iv(salt: &[u8; 14], ssrc: u32, index: u64) -> [u8; AES_BLOCK_LEN] {
    let mut iv = [0u8; AES_BLOCK_LEN];
    let s = u128::from_be_bytes([
        salt[0], salt[1], salt[2], salt[3], salt[4], salt[5], salt[6], salt[7], salt[8], salt[9],
        salt[10], salt[11], salt[12], salt[13], 0, 0,
    ]);
    let v = s ^ (u128::from(ssrc) << 64) ^ (u128::from(index) << 16);
    iv.copy_from_slice(&v.to_be_bytes());
    iv
}

/// AES-GCM IV (RFC 7714 §8.1 / §9.1): (00 00 || SSRC || a || b) XOR salt, where (a, b) is
/// (ROC, SEQ) for SRTP and (0, index) for SRTCP, packed as 32 + 16 or 16 + 32 bits.
#[inline]
fn gcm_iv(salt: &[u8; 14], ssrc: u32, tail48: u64) -> [u8; GCM_NONCE_LEN] {
    let mut n = [0u8; GCM_NONCE_LEN];
    let v = (u128::from(ssrc) << 48) | u128::from(tail48 & 0xffff_ffff_ffff);
    let b = v.to_be_bytes();
    for (i, o) in n.iter_mut().enumerate() {
        *o = b[4 + i] ^ salt[i];
    }
    n
}

/// Splits `buf` at `at`, failing (instead of panicking) when `at` is past its end.
fn split(buf: &mut [u8], at: usize) -> Result<(&mut [u8], &mut [u8]), SrtpError> {
    let len = buf.len();
    buf.split_at_mut_checked(at)
        .ok_or(SrtpError::BufferTooSmall { need: at.max(len) })
}

fn sub_mut(buf: &mut [u8], from: usize, to: usize) -> Result<&mut [u8], SrtpError> {
    buf.get_mut(from..to)
        .ok_or(SrtpError::BufferTooSmall { need: to })
}

fn sub(buf: &[u8], from: usize, to: usize) -> Result<&[u8], SrtpError> {
    buf.get(from..to).ok_or(SrtpError::Truncated {
        len: buf.len(),
        need: to,
    })
}

/// The SRTP/SRTCP context of one direction of a media session. See the [module
/// documentation](super).
pub struct SrtpSession {
    provider: CryptoProvider,
    suite: SrtpSuite,
    keys: Vec<MasterKeyState>,
    /// Index in `keys` of the key used to protect.
    active: usize,
    mki_len: usize,
    streams: Vec<Stream>,
    by_ssrc: HashMap<u32, usize>,
    replay_window: usize,
    max_streams: usize,
    encrypt_rtp: bool,
    encrypt_rtcp: bool,
    limits: KeyLimits,
    modifier: Option<Box<dyn PacketModifier>>,
}

impl core::fmt::Debug for SrtpSession {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SrtpSession")
            .field("suite", &self.suite)
            .field("keys", &self.keys.len())
            .field("streams", &self.streams.len())
            .finish_non_exhaustive()
    }
}

impl SrtpSession {
    /// Creates a session from `policy`, deriving the session keys from the master key.
    pub fn new(provider: &CryptoProvider, policy: SrtpPolicy) -> Result<Self, SrtpError> {
        policy.validate()?;
        let key = derive_master(
            provider,
            policy.suite,
            policy.master_key.expose(),
            policy.master_salt.expose(),
            policy.mki.as_deref().unwrap_or_default(),
        )?;
        Ok(Self::from_parts(provider, &policy, key))
    }

    /// Creates a session from session keys given directly (no key derivation); the master
    /// key and salt of `policy` are ignored. For known-answer tests and keying methods that
    /// deliver session keys.
    pub fn with_session_keys(
        provider: &CryptoProvider,
        mut policy: SrtpPolicy,
        rtp: SessionKeys<'_>,
        rtcp: SessionKeys<'_>,
    ) -> Result<Self, SrtpError> {
        // Validate everything but the (unused) master key.
        policy.master_key =
            sotto_crypto::secret::SecretBytes::zeroed(policy.suite.master_key_len());
        policy.master_salt =
            sotto_crypto::secret::SecretBytes::zeroed(policy.suite.master_salt_len());
        policy.validate()?;
        let key = MasterKeyState {
            mki: policy.mki.clone().unwrap_or_default(),
            rtp: keyed(provider, policy.suite, rtp)?,
            rtcp: keyed(provider, policy.suite, rtcp)?,
            srtp_used: 0,
            srtcp_used: 0,
        };
        Ok(Self::from_parts(provider, &policy, key))
    }

    fn from_parts(provider: &CryptoProvider, policy: &SrtpPolicy, key: MasterKeyState) -> Self {
        SrtpSession {
            provider: *provider,
            suite: policy.suite,
            mki_len: key.mki.len(),
            keys: vec![key],
            active: 0,
            streams: Vec::new(),
            by_ssrc: HashMap::new(),
            replay_window: policy.replay_window,
            max_streams: policy.max_streams,
            encrypt_rtp: policy.encrypt_rtp,
            encrypt_rtcp: policy.encrypt_rtcp,
            limits: policy.key_limits,
            modifier: None,
        }
    }

    /// The suite of this session.
    pub fn suite(&self) -> SrtpSuite {
        self.suite
    }

    /// Bytes [`SrtpSession::protect_rtp`] appends to a packet (MKI and tag).
    pub fn rtp_overhead(&self) -> usize {
        self.mki_len + self.suite.rtp_tag_len()
    }

    /// Bytes [`SrtpSession::protect_rtcp`] appends to a packet (index word, MKI and tag).
    pub fn rtcp_overhead(&self) -> usize {
        SRTCP_INDEX_LEN + self.mki_len + self.suite.rtcp_tag_len()
    }

    /// Installs the packet-modifier hook (replacing any previous one).
    pub fn set_modifier(&mut self, modifier: Box<dyn PacketModifier>) {
        self.modifier = Some(modifier);
    }

    /// Removes the packet-modifier hook.
    pub fn clear_modifier(&mut self) -> Option<Box<dyn PacketModifier>> {
        self.modifier.take()
    }

    /// Adds another master key, identified by `mki` (the session must use MKIs, all of the
    /// same length). Incoming packets select their key by MKI; outgoing ones use the key
    /// chosen with [`SrtpSession::set_outbound_mki`].
    pub fn add_master_key(
        &mut self,
        master_key: &[u8],
        master_salt: &[u8],
        mki: &[u8],
    ) -> Result<(), SrtpError> {
        if self.mki_len == 0 {
            return Err(SrtpError::InvalidPolicy(
                "several master keys need MKIs (the policy has none)",
            ));
        }
        check_mki(mki)?;
        if mki.len() != self.mki_len {
            return Err(SrtpError::InvalidKeyLength {
                what: "MKI",
                got: mki.len(),
            });
        }
        if self.keys.iter().any(|k| k.mki == mki) {
            return Err(SrtpError::InvalidPolicy("duplicate MKI"));
        }
        check_key(self.suite, master_key, master_salt)?;
        let key = derive_master(&self.provider, self.suite, master_key, master_salt, mki)?;
        self.keys.push(key);
        Ok(())
    }

    /// Chooses the master key (by MKI) used to protect from now on.
    pub fn set_outbound_mki(&mut self, mki: &[u8]) -> Result<(), SrtpError> {
        self.active = self
            .keys
            .iter()
            .position(|k| k.mki == mki)
            .ok_or(SrtpError::UnknownMki)?;
        Ok(())
    }

    /// Packets processed so far under the master key named by `mki` (empty slice when the
    /// session has no MKI): `(srtp, srtcp)`.
    pub fn key_usage(&self, mki: &[u8]) -> Option<(u64, u64)> {
        self.keys
            .iter()
            .find(|k| k.mki == mki)
            .map(|k| (k.srtp_used, k.srtcp_used))
    }

    /// Number of streams (SSRCs) the session holds.
    pub fn stream_count(&self) -> usize {
        self.streams.len()
    }

    /// Forgets the stream of `ssrc` (e.g. after RTCP BYE). Returns whether it existed.
    pub fn remove_stream(&mut self, ssrc: u32) -> bool {
        let Some(i) = self.by_ssrc.remove(&ssrc) else {
            return false;
        };
        self.streams.swap_remove(i);
        if let Some(moved) = self.streams.get(i) {
            self.by_ssrc.insert(moved.ssrc, i);
        }
        true
    }

    /// Sets the roll-over counter of `ssrc` for both directions (a receiver joining a
    /// stream late learns it out of band, RFC 3711 §3.3.1), creating the stream if needed.
    pub fn set_roc(&mut self, ssrc: u32, roc: u32) -> Result<(), SrtpError> {
        let i = self.stream_or_create(ssrc)?;
        if let Some(st) = self.streams.get_mut(i) {
            st.tx_roc = roc;
            st.rx_roc = roc;
        }
        Ok(())
    }

    /// Sets the SRTCP index the next protected RTCP packet of `ssrc` carries (resuming a
    /// context), creating the stream if needed.
    pub fn set_srtcp_index(&mut self, ssrc: u32, next_index: u32) -> Result<(), SrtpError> {
        if next_index > MAX_SRTCP_INDEX {
            return Err(SrtpError::InvalidPolicy("SRTCP index above 2^31 - 1"));
        }
        let i = self.stream_or_create(ssrc)?;
        if let Some(st) = self.streams.get_mut(i) {
            st.tx_rtcp_index = next_index;
        }
        Ok(())
    }

    #[inline]
    fn find_stream(&self, ssrc: u32) -> Option<usize> {
        // Most sessions carry one or two SSRCs: a short scan beats hashing.
        if self.streams.len() <= 4 {
            return self.streams.iter().position(|s| s.ssrc == ssrc);
        }
        self.by_ssrc.get(&ssrc).copied()
    }

    fn stream_or_create(&mut self, ssrc: u32) -> Result<usize, SrtpError> {
        if let Some(i) = self.find_stream(ssrc) {
            return Ok(i);
        }
        if self.streams.len() >= self.max_streams {
            return Err(SrtpError::TooManyStreams {
                max: self.max_streams,
            });
        }
        self.streams.push(Stream::new(ssrc, self.replay_window));
        let i = self.streams.len() - 1;
        self.by_ssrc.insert(ssrc, i);
        Ok(i)
    }

    fn key_by_mki(&self, mki: &[u8]) -> Result<usize, SrtpError> {
        if self.mki_len == 0 {
            return Ok(0);
        }
        self.keys
            .iter()
            .position(|k| sotto_crypto::ct_eq(&k.mki, mki))
            .ok_or(SrtpError::UnknownMki)
    }

    /// Protects the RTP packet `buf[..len]` in place and returns the SRTP packet length.
    /// `buf` must have room for [`SrtpSession::rtp_overhead`] more bytes after the packet.
    /// The packet-modifier hook, if any, sees the packet first.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, SrtpError> {
        if len > buf.len() {
            return Err(SrtpError::BufferTooSmall { need: len });
        }
        let mut len = len;
        if let Some(m) = self.modifier.as_mut() {
            let mut p = PacketMut::new(buf, len);
            m.outgoing_rtp(&mut p);
            len = p.len();
        }
        let hdr = RtpHeader::parse(sub(buf, 0, len)?)?;
        let tag_len = self.suite.rtp_tag_len();
        let total = len + self.mki_len + tag_len;
        if total > buf.len() {
            return Err(SrtpError::BufferTooSmall { need: total });
        }
        let si = self.stream_or_create(hdr.ssrc)?;
        let Some(st) = self.streams.get_mut(si) else {
            return Err(SrtpError::InvalidPolicy("stream table out of sync"));
        };
        let Some(key) = self.keys.get_mut(self.active) else {
            return Err(SrtpError::UnknownMki);
        };
        if key.srtp_used >= self.limits.srtp_packets {
            return Err(SrtpError::KeyLimitReached);
        }
        let roc = if st.tx_started {
            estimate_roc(st.tx_roc, st.tx_seq, hdr.seq)?
        } else {
            st.tx_roc
        };
        let index = rtp_index(roc, hdr.seq);
        let hl = hdr.header_len;
        let mki_len = self.mki_len;
        let buf = sub_mut(buf, 0, total)?;
        match &key.rtp.cipher {
            Cipher::Gcm(aead) => {
                let nonce = gcm_iv(&key.rtp.salt, hdr.ssrc, index);
                let (pkt, trailer) = split(buf, len)?;
                let (tag, mki_out) = split(trailer, GCM_TAG_LEN)?;
                if self.encrypt_rtp {
                    let (head, payload) = split(pkt, hl)?;
                    aead.seal_in_place_detached(&nonce, head, payload, tag)?;
                } else {
                    aead.seal_in_place_detached(&nonce, pkt, &mut [], tag)?;
                }
                mki_out.copy_from_slice(&key.mki);
            }
            cipher => {
                let (pkt, trailer) = split(buf, len)?;
                if let (Cipher::Cm(ctr), true) = (cipher, self.encrypt_rtp) {
                    let iv = cm_iv(&key.rtp.salt, hdr.ssrc, index);
                    ctr.apply_keystream(&iv, sub_mut(pkt, hl, len)?);
                }
                let (mki_out, tag) = split(trailer, mki_len)?;
                mki_out.copy_from_slice(&key.mki);
                if let Some(auth) = &key.rtp.auth {
                    auth.compute(&[pkt, &roc.to_be_bytes()], tag)?;
                }
            }
        }
        if !st.tx_started || index > rtp_index(st.tx_roc, st.tx_seq) {
            st.tx_roc = roc;
            st.tx_seq = hdr.seq;
            st.tx_started = true;
        }
        key.srtp_used += 1;
        Ok(total)
    }

    /// Verifies and decrypts the SRTP packet `buf` in place and returns the length of the
    /// RTP packet now at `buf[..n]`. Replays, packets behind the replay window and forgeries
    /// are rejected before any state changes; streams are only created for authentic
    /// packets. On error the contents of `buf` are unspecified.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, SrtpError> {
        let len = buf.len();
        let hdr = RtpHeader::parse(buf)?;
        let tag_len = self.suite.rtp_tag_len();
        let mki_len = self.mki_len;
        let need = hdr.header_len + mki_len + tag_len;
        if len < need {
            return Err(SrtpError::Truncated { len, need });
        }
        let gcm = matches!(self.suite.cipher(), CipherKind::AesGcm);
        // HMAC suites: payload | MKI | tag. GCM: payload | tag | MKI.
        let (ct_end, mki_at, tag_at) = if gcm {
            (
                len - mki_len - tag_len,
                len - mki_len,
                len - mki_len - tag_len,
            )
        } else {
            (
                len - mki_len - tag_len,
                len - mki_len - tag_len,
                len - tag_len,
            )
        };
        let ki = self.key_by_mki(sub(buf, mki_at, mki_at + mki_len)?)?;
        let si = self.find_stream(hdr.ssrc);
        let (roc, index) = {
            let st = si.and_then(|i| self.streams.get(i));
            let roc = match st {
                Some(st) if st.rx_started => estimate_roc(st.rx_roc, st.rx_seq, hdr.seq)?,
                Some(st) => st.rx_roc,
                None => 0,
            };
            let index = rtp_index(roc, hdr.seq);
            if let Some(st) = st {
                st.rtp_replay.check(index)?;
            }
            (roc, index)
        };
        let Some(key) = self.keys.get_mut(ki) else {
            return Err(SrtpError::UnknownMki);
        };
        if key.srtp_used >= self.limits.srtp_packets {
            return Err(SrtpError::KeyLimitReached);
        }
        let hl = hdr.header_len;
        match &key.rtp.cipher {
            Cipher::Gcm(aead) => {
                let nonce = gcm_iv(&key.rtp.salt, hdr.ssrc, index);
                let (pkt, trailer) = split(buf, ct_end)?;
                let tag = sub(trailer, 0, GCM_TAG_LEN)?;
                let r = if self.encrypt_rtp {
                    let (head, payload) = split(pkt, hl)?;
                    aead.open_in_place_detached(&nonce, head, payload, tag)
                } else {
                    aead.open_in_place_detached(&nonce, pkt, &mut [], tag)
                };
                r.map_err(|_| SrtpError::AuthenticationFailed)?;
            }
            cipher => {
                if let Some(auth) = &key.rtp.auth {
                    let (pkt, trailer) = buf.split_at(ct_end);
                    let tag = sub(trailer, tag_at - ct_end, tag_at - ct_end + tag_len)?;
                    if !auth.verify(&[pkt, &roc.to_be_bytes()], tag) {
                        return Err(SrtpError::AuthenticationFailed);
                    }
                }
                if let (Cipher::Cm(ctr), true) = (cipher, self.encrypt_rtp) {
                    let iv = cm_iv(&key.rtp.salt, hdr.ssrc, index);
                    ctr.apply_keystream(&iv, sub_mut(buf, hl, ct_end)?);
                }
            }
        }
        key.srtp_used += 1;
        let si = match si {
            Some(i) => i,
            None => self.stream_or_create(hdr.ssrc)?,
        };
        if let Some(st) = self.streams.get_mut(si) {
            st.rtp_replay.update(index);
            if !st.rx_started || index > rtp_index(st.rx_roc, st.rx_seq) {
                st.rx_roc = roc;
                st.rx_seq = hdr.seq;
                st.rx_started = true;
            }
        }
        let mut n = ct_end;
        if let Some(m) = self.modifier.as_mut() {
            let mut p = PacketMut::new(buf, n);
            m.incoming_rtp(&mut p);
            n = p.len();
        }
        Ok(n)
    }
}

/// Derives and keys the SRTP and SRTCP session keys of one master key (RFC 3711 §4.3).
fn derive_master(
    provider: &CryptoProvider,
    suite: SrtpSuite,
    master_key: &[u8],
    master_salt: &[u8],
    mki: &[u8],
) -> Result<MasterKeyState, SrtpError> {
    let prf = Kdf::new(provider, master_key, master_salt)?;
    let key_len = suite.master_key_len();
    let salt_len = match suite.cipher() {
        CipherKind::AesGcm => 12,
        _ => 14,
    };
    let mut buf = Zeroizing::new([0u8; 32 + 14 + AUTH_KEY_LEN]);
    let mut dir = |labels: [u8; 3]| -> Result<DirKeys, SrtpError> {
        let (k, rest) = buf.split_at_mut(32);
        let (s, a) = rest.split_at_mut(14);
        let k = k.get_mut(..key_len).unwrap_or_default();
        let s = s.get_mut(..salt_len).unwrap_or_default();
        prf.derive(labels[0], k);
        prf.derive(labels[2], s);
        prf.derive(labels[1], a);
        keyed(
            provider,
            suite,
            SessionKeys {
                key: k,
                salt: s,
                auth_key: a,
            },
        )
    };
    let rtp = dir([
        kdf::LABEL_RTP_ENCRYPTION,
        kdf::LABEL_RTP_AUTH,
        kdf::LABEL_RTP_SALT,
    ])?;
    let rtcp = dir([
        kdf::LABEL_RTCP_ENCRYPTION,
        kdf::LABEL_RTCP_AUTH,
        kdf::LABEL_RTCP_SALT,
    ])?;
    Ok(MasterKeyState {
        mki: mki.to_vec(),
        rtp,
        rtcp,
        srtp_used: 0,
        srtcp_used: 0,
    })
}

/// Keys the cipher and MAC of one direction from session keys.
fn keyed(
    provider: &CryptoProvider,
    suite: SrtpSuite,
    keys: SessionKeys<'_>,
) -> Result<DirKeys, SrtpError> {
    let mut salt = Zeroizing::new([0u8; 14]);
    let cipher = match suite.cipher() {
        CipherKind::AesCm => {
            if keys.salt.len() != 14 {
                return Err(SrtpError::InvalidKeyLength {
                    what: "session salt",
                    got: keys.salt.len(),
                });
            }
            salt.copy_from_slice(keys.salt);
            Cipher::Cm(provider.cipher.aes_ctr(keys.key)?)
        }
        CipherKind::AesGcm => {
            let dst = salt.get_mut(..12).unwrap_or_default();
            if keys.salt.len() != 12 {
                return Err(SrtpError::InvalidKeyLength {
                    what: "session salt",
                    got: keys.salt.len(),
                });
            }
            dst.copy_from_slice(keys.salt);
            Cipher::Gcm(provider.cipher.aes_gcm(keys.key)?)
        }
        CipherKind::Null => Cipher::Null,
    };
    let auth = if suite.uses_hmac() {
        if keys.auth_key.len() != AUTH_KEY_LEN {
            return Err(SrtpError::InvalidKeyLength {
                what: "session auth key",
                got: keys.auth_key.len(),
            });
        }
        Some(provider.mac.hmac(MacAlgorithm::Sha1, keys.auth_key)?)
    } else {
        None
    };
    Ok(DirKeys { cipher, salt, auth })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roc_estimation_rfc3711_3_3_1() {
        // s_l in the lower half: a much larger SEQ belongs to the previous ROC.
        assert_eq!(estimate_roc(5, 10, 20), Ok(5));
        assert_eq!(estimate_roc(5, 10, 65000), Ok(4));
        assert_eq!(
            estimate_roc(0, 10, 65000),
            Err(SrtpError::TooOld { index: 65000 })
        );
        // s_l in the upper half: a much smaller SEQ belongs to the next ROC.
        assert_eq!(estimate_roc(5, 65530, 3), Ok(6));
        assert_eq!(estimate_roc(5, 65530, 65000), Ok(5));
        assert_eq!(
            estimate_roc(u32::MAX, 65530, 3),
            Err(SrtpError::KeyLimitReached)
        );
        // Exactly half a cycle apart stays in the same ROC.
        assert_eq!(estimate_roc(1, 0, 32768), Ok(1));
        assert_eq!(estimate_roc(1, 32768, 0), Ok(1));
    }

    #[test]
    fn ivs() {
        let salt = [0xf0u8; 14];
        let iv = cm_iv(&salt, 0x0102_0304, 0x0000_aabb_ccdd);
        assert_eq!(&iv[..4], &[0xf0; 4]);
        assert_eq!(&iv[4..8], &[0xf1, 0xf2, 0xf3, 0xf4]);
        assert_eq!(&iv[8..14], &[0xf0, 0xf0, 0x5a, 0x4b, 0x3c, 0x2d]);
        assert_eq!(&iv[14..], &[0, 0]);
        let n = gcm_iv(&salt, 0x0102_0304, 0x0000_0005_0006);
        assert_eq!(
            n,
            [
                0xf0, 0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf0, 0xf0, 0xf0, 0xf5, 0xf0, 0xf6
            ]
        );
    }
}
