//! Key derivation (RFC 6189 §4.4.1.4, §4.5): s0 from the DH result, the transcript and the
//! shared secrets; from s0 the MAC and Confirm keys, the SRTP keys, the SAS and the next
//! retained secret. Every value here is zeroized when dropped.

use sotto_crypto::CryptoProvider;
use sotto_crypto::secret::SecretBytes;

use super::ZrtpError;
use super::algorithms::{ZrtpHash, ZrtpSuite};

/// Length of a retained secret (rs1, rs2), in octets.
pub const RETAINED_SECRET_LEN: usize = 32;
/// Length of an SRTP master salt from ZRTP (112 bits).
pub const SRTP_SALT_LEN: usize = 14;

/// The ZRTP KDF (§4.5.1): `HMAC(KI, 0x00000001 ‖ Label ‖ 0x00 ‖ Context ‖ L)` truncated to
/// `len` octets (`L` is `len` in bits, 32-bit big-endian).
pub fn kdf(
    provider: &CryptoProvider,
    hash: ZrtpHash,
    key: &[u8],
    label: &[u8],
    context: &[u8],
    len: usize,
) -> Result<SecretBytes, ZrtpError> {
    let k = provider
        .mac
        .hmac(hash.mac(), key)
        .map_err(|_| ZrtpError::Crypto("HMAC"))?;
    let bits = ((len * 8) as u32).to_be_bytes();
    let mut out = SecretBytes::zeroed(hash.output_len());
    k.compute(
        &[&[0, 0, 0, 1], label, &[0], context, &bits],
        out.expose_mut(),
    )
    .map_err(|_| ZrtpError::Crypto("HMAC"))?;
    Ok(SecretBytes::from_slice(
        &out.expose()[..len.min(hash.output_len())],
    ))
}

/// `HMAC(key, data)` with the hash's HMAC, truncated to 64 bits: the shared-secret IDs
/// (§4.3.1), the Confirm MAC (§5.7) and, with SHA-256, the hash-chain MACs (§9).
pub fn mac64(
    provider: &CryptoProvider,
    hash: ZrtpHash,
    key: &[u8],
    data: &[u8],
) -> Result<[u8; 8], ZrtpError> {
    let k = provider
        .mac
        .hmac(hash.mac(), key)
        .map_err(|_| ZrtpError::Crypto("HMAC"))?;
    let mut out = [0u8; 64];
    k.compute(&[data], &mut out[..hash.output_len()])
        .map_err(|_| ZrtpError::Crypto("HMAC"))?;
    let mut id = [0u8; 8];
    id.copy_from_slice(&out[..8]);
    Ok(id)
}

/// The 64-bit ID of a shared secret (§4.3.1): `MAC(secret, label)` truncated, where the
/// label is `Initiator`/`Responder` (rs1, rs2, pbxsecret) or the sender's H3 (auxsecret).
pub fn secret_id(
    provider: &CryptoProvider,
    hash: ZrtpHash,
    secret: &[u8],
    label: &[u8],
) -> Result<[u8; 8], ZrtpError> {
    mac64(provider, hash, secret, label)
}

/// SHA-256 of `data` (the hash chain, the Hello hash of `a=zrtp-hash`: fixed, whatever is
/// negotiated).
pub fn sha256(provider: &CryptoProvider, data: &[u8]) -> Result<[u8; 32], ZrtpError> {
    let o = provider
        .hash
        .hash(sotto_crypto::hash::HashAlgorithm::Sha256, &[data])
        .ok_or(ZrtpError::Crypto("SHA-256"))?;
    let mut a = [0u8; 32];
    a.copy_from_slice(o.as_ref());
    Ok(a)
}

/// The negotiated hash of the concatenation of `parts`.
pub fn hash(provider: &CryptoProvider, h: ZrtpHash, parts: &[&[u8]]) -> Result<Vec<u8>, ZrtpError> {
    provider
        .hash
        .hash(h.hash(), parts)
        .map(|o| o.as_ref().to_vec())
        .ok_or(ZrtpError::Crypto("hash"))
}

/// What s0 is computed from.
pub struct S0Input<'a> {
    /// The DH result (the shared secret, full length).
    pub dh_result: &'a [u8],
    /// The initiator's ZID.
    pub zid_i: &'a [u8; 12],
    /// The responder's ZID.
    pub zid_r: &'a [u8; 12],
    /// responder's Hello ‖ Commit ‖ DHPart1 ‖ DHPart2, as sent.
    pub transcript: [&'a [u8]; 4],
    /// s1: the retained secret both sides hold, if any.
    pub s1: Option<&'a [u8]>,
    /// s2: the auxiliary secret, when both sides hold the same.
    pub s2: Option<&'a [u8]>,
    /// s3: the PBX secret, when both sides hold the same.
    pub s3: Option<&'a [u8]>,
}

/// Everything derived from s0 for one exchange.
pub struct SessionKeys {
    /// The KDF context: ZIDi ‖ ZIDr ‖ total_hash.
    pub context: Vec<u8>,
    /// ZRTPSess (kept for Multistream streams and exported keys).
    pub zrtp_session: SecretBytes,
    /// mackeyi.
    pub mac_i: SecretBytes,
    /// mackeyr.
    pub mac_r: SecretBytes,
    /// zrtpkeyi.
    pub zrtp_i: SecretBytes,
    /// zrtpkeyr.
    pub zrtp_r: SecretBytes,
    /// srtpkeyi, srtpsalti.
    pub srtp_i: (SecretBytes, SecretBytes),
    /// srtpkeyr, srtpsaltr.
    pub srtp_r: (SecretBytes, SecretBytes),
    /// The leftmost 32 bits of the SAS hash.
    pub sas_value: u32,
    /// The next rs1.
    pub new_rs1: SecretBytes,
}

/// The KDF context: ZIDi ‖ ZIDr ‖ hash(transcript).
fn context_of(
    provider: &CryptoProvider,
    h: ZrtpHash,
    zid_i: &[u8; 12],
    zid_r: &[u8; 12],
    transcript: &[&[u8]],
) -> Result<Vec<u8>, ZrtpError> {
    let total_hash = hash(provider, h, transcript)?;
    let mut context = Vec::with_capacity(24 + total_hash.len());
    context.extend_from_slice(zid_i);
    context.extend_from_slice(zid_r);
    context.extend_from_slice(&total_hash);
    Ok(context)
}

/// Multistream mode (§4.4.3): s0 = KDF(ZRTPSess, "ZRTP MSK", ZIDi ‖ ZIDr ‖
/// hash(responder's Hello ‖ Commit), hash length), then every key as in DH mode (the SAS
/// value and the next retained secret are not used: the first stream's stand).
pub fn derive_multistream(
    provider: &CryptoProvider,
    suite: &ZrtpSuite,
    zrtp_session: &[u8],
    zid_i: &[u8; 12],
    zid_r: &[u8; 12],
    transcript: [&[u8]; 2],
) -> Result<SessionKeys, ZrtpError> {
    let h = suite.hash;
    let context = context_of(provider, h, zid_i, zid_r, &transcript)?;
    let s0 = kdf(
        provider,
        h,
        zrtp_session,
        b"ZRTP MSK",
        &context,
        h.output_len(),
    )?;
    from_s0(provider, suite, s0.expose(), context)
}

/// s0 and every key derived from it (§4.4.1.4, §4.5.2, §4.5.3, §4.6.1).
pub fn derive(
    provider: &CryptoProvider,
    suite: &ZrtpSuite,
    input: &S0Input<'_>,
) -> Result<SessionKeys, ZrtpError> {
    let h = suite.hash;
    let context = context_of(provider, h, input.zid_i, input.zid_r, &input.transcript)?;

    let len = |s: Option<&[u8]>| (s.map_or(0, <[u8]>::len) as u32).to_be_bytes();
    let (l1, l2, l3) = (len(input.s1), len(input.s2), len(input.s3));
    let s0 = SecretBytes::new(hash(
        provider,
        h,
        &[
            &[0, 0, 0, 1],
            input.dh_result,
            b"ZRTP-HMAC-KDF",
            &context,
            &l1,
            input.s1.unwrap_or_default(),
            &l2,
            input.s2.unwrap_or_default(),
            &l3,
            input.s3.unwrap_or_default(),
        ],
    )?);
    from_s0(provider, suite, s0.expose(), context)
}

/// The keys of an exchange from its s0 and KDF context.
fn from_s0(
    provider: &CryptoProvider,
    suite: &ZrtpSuite,
    s0: &[u8],
    context: Vec<u8>,
) -> Result<SessionKeys, ZrtpError> {
    let h = suite.hash;
    let key = |label: &[u8], n: usize| kdf(provider, h, s0, label, &context, n);
    let aes = suite.cipher.key_len();
    let sas = key(b"SAS", 32)?;
    let sv = sas.expose();
    Ok(SessionKeys {
        zrtp_session: key(b"ZRTP Session Key", h.output_len())?,
        mac_i: key(b"Initiator HMAC key", h.output_len())?,
        mac_r: key(b"Responder HMAC key", h.output_len())?,
        zrtp_i: key(b"Initiator ZRTP key", aes)?,
        zrtp_r: key(b"Responder ZRTP key", aes)?,
        srtp_i: (
            key(b"Initiator SRTP master key", aes)?,
            key(b"Initiator SRTP master salt", SRTP_SALT_LEN)?,
        ),
        srtp_r: (
            key(b"Responder SRTP master key", aes)?,
            key(b"Responder SRTP master salt", SRTP_SALT_LEN)?,
        ),
        sas_value: u32::from_be_bytes([sv[0], sv[1], sv[2], sv[3]]),
        new_rs1: key(b"retained secret", RETAINED_SECRET_LEN)?,
        context,
    })
}
