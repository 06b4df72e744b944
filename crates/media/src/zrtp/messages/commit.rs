//! Commit (§5.4), DH mode: H2, ZID, the chosen algorithms, hvi, MAC keyed by H1.
//! Multistream and Preshared Commits are read only to refuse them with a clear error.

use sotto_crypto::CryptoProvider;

use crate::zrtp::ZrtpError;
use crate::zrtp::algorithms::{Algorithm, ZrtpSuite};
use crate::zrtp::packet::{MessageType, Reader, start_message};

use super::append_chain_mac;

/// A DH-mode Commit, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// H2 of the sender's chain.
    pub h2: [u8; 32],
    /// The sender's ZID.
    pub zid: [u8; 12],
    /// The algorithms committed to.
    pub suite: ZrtpSuite,
    /// hvi: hash(initiator's DHPart2 ‖ responder's Hello), 256 bits.
    pub hvi: [u8; 32],
}

/// Writes a DH-mode Commit, closed by its MAC keyed by `h1`.
pub fn encode(
    provider: &CryptoProvider,
    h2: &[u8; 32],
    zid: &[u8; 12],
    suite: &ZrtpSuite,
    hvi: &[u8; 32],
    h1: &[u8; 32],
) -> Result<Vec<u8>, ZrtpError> {
    let mut m = start_message(MessageType::Commit);
    m.extend_from_slice(h2);
    m.extend_from_slice(zid);
    m.extend_from_slice(&suite.hash.name());
    m.extend_from_slice(&suite.cipher.name());
    m.extend_from_slice(&suite.auth_tag.name());
    m.extend_from_slice(&suite.key_agreement.name());
    m.extend_from_slice(&suite.sas_type.name());
    m.extend_from_slice(hvi);
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
    if ka == b"Mult" || ka == b"Prsh" {
        return Err(ZrtpError::Unsupported("Multistream and Preshared modes"));
    }
    let key_agreement = Algorithm::from_name(ka).ok_or(ZrtpError::Unsupported("key agreement"))?;
    let sas_type = algorithm(&mut r, "SAS type")?;
    let hvi = r.array::<32>()?;
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
        hvi,
    })
}
