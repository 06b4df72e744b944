//! Hello (§5.2): version, client identifier, H3, ZID, flags, the algorithms offered, MAC
//! keyed by H2.

use sotto_crypto::CryptoProvider;

use crate::zrtp::ZrtpError;
use crate::zrtp::algorithms::{Algorithm, Offered, ZrtpPreferences};
use crate::zrtp::packet::{MessageType, Reader, start_message};

use super::append_chain_mac;

/// The protocol version we speak.
pub const VERSION: &[u8; 4] = b"1.10";

/// A Hello, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The version (`1.10`).
    pub version: [u8; 4],
    /// The client identifier (16 octets, padded with spaces).
    pub client_id: [u8; 16],
    /// H3 of the sender's hash chain.
    pub h3: [u8; 32],
    /// The sender's ZID.
    pub zid: [u8; 12],
    /// S: the sender can sign the SAS.
    pub signature_capable: bool,
    /// M: the sender is a trusted MitM (a PBX).
    pub mitm: bool,
    /// P: the sender is passive (never sends Commit).
    pub passive: bool,
    /// The algorithms offered (names we do not know are left out).
    pub offered: Offered,
}

/// What our Hello says.
pub struct HelloFields<'a> {
    /// Client identifier, at most 16 octets.
    pub client_id: &'a str,
    /// H3 of our chain.
    pub h3: &'a [u8; 32],
    /// Our ZID.
    pub zid: &'a [u8; 12],
    /// Our preferences.
    pub preferences: &'a ZrtpPreferences,
    /// Whether we are passive.
    pub passive: bool,
}

fn names<A: Algorithm>(m: &mut Vec<u8>, list: &[A]) {
    for a in list {
        m.extend_from_slice(&a.name());
    }
}

/// Writes our Hello, closed by its MAC keyed by `h2`.
pub fn encode(
    provider: &CryptoProvider,
    f: &HelloFields<'_>,
    h2: &[u8; 32],
) -> Result<Vec<u8>, ZrtpError> {
    let p = f.preferences;
    if !p.is_valid() {
        return Err(ZrtpError::Config(
            "each algorithm list must hold 1 to 7 distinct entries",
        ));
    }
    let mut m = start_message(MessageType::Hello);
    m.extend_from_slice(VERSION);
    let mut id = [b' '; 16];
    let cid = f.client_id.as_bytes();
    id[..cid.len().min(16)].copy_from_slice(&cid[..cid.len().min(16)]);
    m.extend_from_slice(&id);
    m.extend_from_slice(f.h3);
    m.extend_from_slice(f.zid);
    m.push(if f.passive { 0x10 } else { 0 });
    // `Mult` after our key agreements: we take Multistream Commits (as bzrtp lists it).
    let kc = p.key_agreements.len().min(6) as u8 + 1;
    m.push(p.hashes.len() as u8);
    m.push(((p.ciphers.len() as u8) << 4) | p.auth_tags.len() as u8);
    m.push((kc << 4) | p.sas_types.len() as u8);
    names(&mut m, &p.hashes);
    names(&mut m, &p.ciphers);
    names(&mut m, &p.auth_tags);
    names(&mut m, &p.key_agreements[..usize::from(kc - 1)]);
    m.extend_from_slice(b"Mult");
    names(&mut m, &p.sas_types);
    append_chain_mac(provider, h2, m)
}

fn known<A: Algorithm>(
    r: &mut Reader<'_>,
    count: u8,
    mult: &mut bool,
) -> Result<Vec<A>, ZrtpError> {
    let mut v = Vec::new();
    for _ in 0..count {
        let name = r.take(4)?;
        *mult |= name == b"Mult";
        if let Some(a) = A::from_name(name)
            && !v.contains(&a)
        {
            v.push(a);
        }
    }
    Ok(v)
}

/// Reads a Hello (its MAC is checked later, when H2 is known).
pub fn parse(message: &[u8]) -> Result<Hello, ZrtpError> {
    let mut r = Reader::new(message);
    let version = r.array::<4>()?;
    let client_id = r.array::<16>()?;
    let h3 = r.array::<32>()?;
    let zid = r.array::<12>()?;
    let flags = r.array::<4>()?;
    let hc = flags[1] & 0x0F;
    let (cc, ac) = (flags[2] >> 4, flags[2] & 0x0F);
    let (kc, sc) = (flags[3] >> 4, flags[3] & 0x0F);
    if [hc, cc, ac, kc, sc].iter().any(|c| *c > 7) {
        return Err(ZrtpError::Malformed(
            "Hello lists more than 7 algorithms of a kind",
        ));
    }
    let mut ignore = false;
    let mut multistream = false;
    let offered = Offered {
        hashes: known(&mut r, hc, &mut ignore)?,
        ciphers: known(&mut r, cc, &mut ignore)?,
        auth_tags: known(&mut r, ac, &mut ignore)?,
        key_agreements: known(&mut r, kc, &mut multistream)?,
        sas_types: known(&mut r, sc, &mut ignore)?,
        multistream,
    };
    r.take(8)?;
    if r.remaining() != 0 {
        return Err(ZrtpError::Malformed("Hello longer than its lists"));
    }
    Ok(Hello {
        version,
        client_id,
        h3,
        zid,
        signature_capable: flags[0] & 0x40 != 0,
        mitm: flags[0] & 0x20 != 0,
        passive: flags[0] & 0x10 != 0,
        offered,
    })
}
