//! SRTP session parameters (RFC 3711 §8.2 cryptographic context parameters).

use sotto_crypto::secret::SecretBytes;

use super::{MAX_REPLAY_WINDOW, MIN_REPLAY_WINDOW, SrtpError, SrtpSuite};

/// The largest number of SRTP packets one master key may protect (RFC 3711 §9.2).
pub const MAX_SRTP_PACKETS_PER_KEY: u64 = 1 << 48;
/// The largest number of SRTCP packets one master key may protect (RFC 3711 §9.2).
pub const MAX_SRTCP_PACKETS_PER_KEY: u64 = 1 << 31;
/// Longest MKI accepted, in bytes.
pub const MAX_MKI_LEN: usize = 128;
/// Default replay window, in packets.
pub const DEFAULT_REPLAY_WINDOW: usize = 128;
/// Default bound on the number of streams (SSRCs) of one session.
pub const DEFAULT_MAX_STREAMS: usize = 64;

/// How many packets a master key may process before [`SrtpError::KeyLimitReached`].
/// Counts protected and unprotected packets alike. The defaults are the RFC 3711 maxima; a
/// policy may only lower them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyLimits {
    /// SRTP packets per master key (at most 2^48).
    pub srtp_packets: u64,
    /// SRTCP packets per master key (at most 2^31).
    pub srtcp_packets: u64,
}

impl Default for KeyLimits {
    fn default() -> Self {
        KeyLimits {
            srtp_packets: MAX_SRTP_PACKETS_PER_KEY,
            srtcp_packets: MAX_SRTCP_PACKETS_PER_KEY,
        }
    }
}

/// The parameters of an [`super::SrtpSession`]. Build one with [`SrtpPolicy::new`] and adjust
/// fields; the defaults are the secure choice.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SrtpPolicy {
    /// The crypto suite.
    pub suite: SrtpSuite,
    /// The master key ([`SrtpSuite::master_key_len`] bytes).
    pub master_key: SecretBytes,
    /// The master salt ([`SrtpSuite::master_salt_len`] bytes).
    pub master_salt: SecretBytes,
    /// The Master Key Identifier carried in every packet, if MKIs are in use (1 to
    /// [`MAX_MKI_LEN`] bytes; every key of a session uses the same MKI length).
    pub mki: Option<Vec<u8>>,
    /// Replay window size in packets, for SRTP and SRTCP ([`MIN_REPLAY_WINDOW`] to
    /// [`MAX_REPLAY_WINDOW`]; default 128).
    pub replay_window: usize,
    /// Most streams (SSRCs) the session creates on demand (default 64).
    pub max_streams: usize,
    /// Encrypt SRTP payloads (default true; false is RFC 4568's `UNENCRYPTED_SRTP`).
    pub encrypt_rtp: bool,
    /// Encrypt SRTCP packets (default true; false sends E=0, `UNENCRYPTED_SRTCP`).
    pub encrypt_rtcp: bool,
    /// Master key usage limits.
    pub key_limits: KeyLimits,
    /// Allows the NULL-cipher suites. For tests and debugging only: a session with a NULL
    /// suite sends media in clear.
    pub danger_allow_null_cipher: bool,
}

impl SrtpPolicy {
    /// A policy for `suite` with the given master key and salt and secure defaults.
    pub fn new(suite: SrtpSuite, master_key: &[u8], master_salt: &[u8]) -> Self {
        SrtpPolicy {
            suite,
            master_key: SecretBytes::from_slice(master_key),
            master_salt: SecretBytes::from_slice(master_salt),
            mki: None,
            replay_window: DEFAULT_REPLAY_WINDOW,
            max_streams: DEFAULT_MAX_STREAMS,
            encrypt_rtp: true,
            encrypt_rtcp: true,
            key_limits: KeyLimits::default(),
            danger_allow_null_cipher: false,
        }
    }

    /// Sets the MKI (builder style).
    pub fn with_mki(mut self, mki: &[u8]) -> Self {
        self.mki = Some(mki.to_vec());
        self
    }

    /// Sets the replay window (builder style).
    pub fn with_replay_window(mut self, packets: usize) -> Self {
        self.replay_window = packets;
        self
    }

    pub(crate) fn validate(&self) -> Result<(), SrtpError> {
        if self.suite.is_null_cipher() && !self.danger_allow_null_cipher {
            return Err(SrtpError::NullCipherNotAllowed);
        }
        check_key(
            self.suite,
            self.master_key.expose(),
            self.master_salt.expose(),
        )?;
        if let Some(mki) = &self.mki {
            check_mki(mki)?;
        }
        if !(MIN_REPLAY_WINDOW..=MAX_REPLAY_WINDOW).contains(&self.replay_window) {
            return Err(SrtpError::InvalidPolicy("replay window out of range"));
        }
        if self.max_streams == 0 {
            return Err(SrtpError::InvalidPolicy("max_streams is 0"));
        }
        if self.key_limits.srtp_packets > MAX_SRTP_PACKETS_PER_KEY
            || self.key_limits.srtcp_packets > MAX_SRTCP_PACKETS_PER_KEY
        {
            return Err(SrtpError::InvalidPolicy("key limits above RFC 3711 maxima"));
        }
        Ok(())
    }
}

pub(crate) fn check_key(suite: SrtpSuite, key: &[u8], salt: &[u8]) -> Result<(), SrtpError> {
    if key.len() != suite.master_key_len() {
        return Err(SrtpError::InvalidKeyLength {
            what: "master key",
            got: key.len(),
        });
    }
    if salt.len() != suite.master_salt_len() {
        return Err(SrtpError::InvalidKeyLength {
            what: "master salt",
            got: salt.len(),
        });
    }
    Ok(())
}

pub(crate) fn check_mki(mki: &[u8]) -> Result<(), SrtpError> {
    if mki.is_empty() || mki.len() > MAX_MKI_LEN {
        return Err(SrtpError::InvalidKeyLength {
            what: "MKI",
            got: mki.len(),
        });
    }
    Ok(())
}
