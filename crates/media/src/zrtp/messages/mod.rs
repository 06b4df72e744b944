//! The ZRTP messages (RFC 6189 §5.2–§5.16), one file each (the small ones together): how each
//! is written and read. Messages are kept as their octets once sent or received: the
//! transcript hashes (hvi, total_hash) and the hash-chain MACs are computed over them.

pub mod commit;
pub mod confirm;
pub mod dhpart;
pub mod hello;
pub mod small;

use sotto_crypto::CryptoProvider;

use super::ZrtpError;

/// The MAC that closes Hello, Commit and DHPart messages: HMAC-SHA-256 keyed by the next
/// hash-chain value, truncated to 64 bits, whatever hash is negotiated (§9: the chain and
/// these MACs use SHA-256, as bzrtp does).
pub fn chain_mac(provider: &CryptoProvider, key: &[u8], data: &[u8]) -> Result<[u8; 8], ZrtpError> {
    super::keys::mac64(provider, super::algorithms::ZrtpHash::S256, key, data)
}

/// Checks the chain MAC at the end of `message` (its last 8 octets) in constant time.
pub fn chain_mac_ok(provider: &CryptoProvider, key: &[u8], message: &[u8]) -> bool {
    if message.len() < 8 {
        return false;
    }
    let (body, mac) = message.split_at(message.len() - 8);
    chain_mac(provider, key, body).is_ok_and(|m| sotto_crypto::ct_eq(&m, mac))
}

/// Appends the chain MAC over `m` (which must leave room for nothing else after it).
pub fn append_chain_mac(
    provider: &CryptoProvider,
    key: &[u8],
    mut m: Vec<u8>,
) -> Result<Vec<u8>, ZrtpError> {
    // The length field covers the MAC: write it before computing (the MAC covers it too).
    m.extend_from_slice(&[0u8; 8]);
    let mut m = super::packet::finish_message(m);
    let n = m.len();
    let mac = chain_mac(provider, key, &m[..n - 8])?;
    m[n - 8..].copy_from_slice(&mac);
    Ok(m)
}
