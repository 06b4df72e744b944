//! The transaction table's indexes: small entries, cheap hashing.
//!
//! Keys by transaction key are stored as a 64-bit SipHash of the key (random keys, so a peer
//! cannot aim collisions), the key itself staying in the transaction only: an entry costs
//! 16 bytes instead of a copy of the key (a `ServerKey` is 128 bytes plus its strings). A hash
//! that two live keys share sends the second to a small exact map.

use super::TransactionId;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher, RandomState};

/// A multiplicative hasher for keys that are ours and already spread: transaction ids and the
/// SipHash values of [`KeyIndex`]. Never for peer-chosen data.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct MixHasher(u64);

const MIX: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for MixHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(MIX);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(MIX);
    }
}

/// A map whose keys are our own ids or hashes (see [`MixHasher`]).
pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<MixHasher>>;

/// Transaction key → transaction id, without storing the key.
#[derive(Debug)]
pub(super) struct KeyIndex<K> {
    state: RandomState,
    by_hash: IdMap<u64, TransactionId>,
    /// Keys whose hash another live key had first.
    collided: HashMap<K, TransactionId>,
}

impl<K: Hash + Eq + Clone> KeyIndex<K> {
    pub(super) fn new() -> Self {
        KeyIndex {
            state: RandomState::new(),
            by_hash: IdMap::default(),
            collided: HashMap::new(),
        }
    }

    /// The transaction of `key`; `key_of` gives a live transaction's key.
    pub(super) fn get<'a>(
        &self,
        key: &K,
        key_of: impl Fn(TransactionId) -> Option<&'a K>,
    ) -> Option<TransactionId>
    where
        K: 'a,
    {
        let h = self.state.hash_one(key);
        if let Some(&id) = self.by_hash.get(&h)
            && key_of(id) == Some(key)
        {
            return Some(id);
        }
        if self.collided.is_empty() {
            return None;
        }
        self.collided.get(key).copied()
    }

    /// Files `key` (not filed yet) for `id`.
    pub(super) fn insert<'a>(
        &mut self,
        key: &K,
        id: TransactionId,
        key_of: impl Fn(TransactionId) -> Option<&'a K>,
    ) where
        K: 'a,
    {
        let h = self.state.hash_one(key);
        match self.by_hash.get(&h) {
            Some(&other) if key_of(other).is_some_and(|k| k != key) => {
                self.collided.insert(key.clone(), id);
            }
            _ => {
                self.by_hash.insert(h, id);
            }
        }
    }

    /// Forgets `key` if it is filed for `id`.
    pub(super) fn remove(&mut self, key: &K, id: TransactionId) {
        let h = self.state.hash_one(key);
        if self.by_hash.get(&h) == Some(&id) {
            self.by_hash.remove(&h);
        } else if self.collided.get(key) == Some(&id) {
            self.collided.remove(key);
        }
    }

    /// Frees spare capacity once the index is mostly empty (after a load peak).
    pub(super) fn shrink(&mut self) {
        shrink(&mut self.by_hash);
        shrink(&mut self.collided);
    }
}

/// Halves a map's allocation when it is at most one-eighth full (and not tiny), so that a
/// load peak does not pin its memory; amortized O(1) per removal.
pub(super) fn shrink<K: Hash + Eq, V, S: BuildHasher>(map: &mut HashMap<K, V, S>) {
    let cap = map.capacity();
    if cap > 1024 && map.len() <= cap / 8 {
        map.shrink_to(cap / 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u64) -> TransactionId {
        TransactionId(n)
    }

    #[test]
    fn colliding_keys_are_kept_apart() {
        // Force a collision: a constant-hash state is not available, so file two keys and
        // then move one under the other's hash by hand.
        let mut ix: KeyIndex<String> = KeyIndex::new();
        let keys = ["a".to_owned(), "b".to_owned()];
        let key_of = |i: TransactionId| keys.get(usize::try_from(i.0).ok()?);
        ix.insert(&keys[0], id(0), key_of);
        let h = ix.state.hash_one(&keys[1]);
        ix.by_hash.insert(h, id(0)); // "b"'s hash now names "a"'s transaction.
        ix.insert(&keys[1], id(1), key_of);
        assert_eq!(ix.collided.len(), 1);
        assert_eq!(ix.get(&keys[1], key_of), Some(id(1)));
        ix.by_hash.remove(&h);
        assert_eq!(ix.get(&keys[0], key_of), Some(id(0)));
        assert_eq!(ix.get(&keys[1], key_of), Some(id(1)));
        ix.remove(&keys[1], id(1));
        assert_eq!(ix.get(&keys[1], key_of), None);
        ix.remove(&keys[0], id(0));
        assert_eq!(ix.get(&keys[0], key_of), None);
        assert!(ix.by_hash.is_empty() && ix.collided.is_empty());
    }
}
