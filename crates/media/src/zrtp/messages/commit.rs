//! Commit (§5.4): H2, ZID, the chosen algorithms, then hvi (DH mode) or a nonce (Multistream
//! mode, key agreement `Mult`), MAC keyed by H1. Preshared Commits are refused.

use sotto_crypto::CryptoProvider;

use crate::zrtp::ZrtpError;
use crate::zrtp::algorithms::{Algorithm, ZrtpKeyAgreement, ZrtpSuite};
use crate::zrtp::packet::{MessageType, Reader, start_message};

use super::append_chain_mac;

/// A DH-mode Commit, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// H2 of the sender's chain.
    pub h2: [u8; 32],
    /// The sender's ZID.
    pub zid: [u8; 12],
    /// The algorithms committed to (in Multistream mode the key agreement field is not on
    /// the wire: it is that of the session's first stream, filled in by the reader's caller).
    pub suite: ZrtpSuite,
    /// DH mode or Multistream.
    pub mode: CommitMode,
}

/// What follows the algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitMode {
    /// DH mode: hvi = hash(initiator's DHPart2 ‖ responder's Hello), 256 bits.
    Dh {
        /// hvi.
        hvi: [u8; 32],
    },
    /// Multistream mode (`Mult`): a random nonce; keys come from the session's ZRTPSess.
    Multistream {
        /// The nonce.
        nonce: [u8; 16],
    },
}

impl CommitMode {
    /// The value contention compares (§4.2): hvi or nonce.
    pub fn contention_value(&self) -> &[u8] {
        match self {
            CommitMode::Dh { hvi } => hvi,
            CommitMode::Multistream { nonce } => nonce,
        }
    }
}

/// Writes a Commit, closed by its MAC keyed by `h1`.
pub fn encode(
    provider: &CryptoProvider,
    h2: &[u8; 32],
    zid: &[u8; 12],
    suite: &ZrtpSuite,
    mode: &CommitMode,
    h1: &[u8; 32],
) -> Result<Vec<u8>, ZrtpError> {
    let mut m = start_message(MessageType::Commit);
    m.extend_from_slice(h2);
    m.extend_from_slice(zid);
    m.extend_from_slice(&suite.hash.name());
    m.extend_from_slice(&suite.cipher.name());
    m.extend_from_slice(&suite.auth_tag.name());
    match mode {
        CommitMode::Dh { .. } => m.extend_from_slice(&suite.key_agreement.name()),
        CommitMode::Multistream { .. } => m.extend_from_slice(b"Mult"),
    }
    m.extend_from_slice(&suite.sas_type.name());
    m.extend_from_slice(mode.contention_value());
    append_chain_mac(provider, h1, m)
}

fn algorithm<A: Algorithm>(r: &mut Reader<'_>, what: &'static str) -> Result<A, ZrtpError> {
    A::from_name(r.take(4)?).ok_or(ZrtpError::Unsupported(what))
}

/// Reads a Commit.
pub fn parse(message: &[u8]) -> Result<Commit, ZrtpError> {
    let mut r = Reader::new(message);
    let h2 = r.array::<32>()?;
    let zid = r.array::<12>()?;
    let hash = algorithm(&mut r, "hash")?;
    let cipher = algorithm(&mut r, "cipher")?;
    let auth_tag = algorithm(&mut r, "SRTP authentication tag")?;
    let ka = r.take(4)?;
    if ka == b"Prsh" {
        return Err(ZrtpError::Unsupported("Preshared mode"));
    }
    let multistream = ka == b"Mult";
    let key_agreement = if multistream {
        // Not on the wire: the caller puts the session's in its place.
        ZrtpKeyAgreement::X255
    } else {
        Algorithm::from_name(ka).ok_or(ZrtpError::Unsupported("key agreement"))?
    };
    let sas_type = algorithm(&mut r, "SAS type")?;
    let mode = if multistream {
        CommitMode::Multistream { nonce: r.array()? }
    } else {
        CommitMode::Dh { hvi: r.array()? }
    };
    r.take(8)?;
    if r.remaining() != 0 {
        return Err(ZrtpError::Malformed("Commit of the wrong length"));
    }
    Ok(Commit {
        h2,
        zid,
        suite: ZrtpSuite {
            hash,
            cipher,
            auth_tag,
            key_agreement,
            sas_type,
        },
        mode,
    })
}
