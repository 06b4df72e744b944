//! Secret-holding types: zeroized on drop, redacted in `Debug`.
//!
//! [`SecretBytes`] holds a variable-length secret (a master key, a shared secret); [`Secret`]
//! wraps any [`Zeroize`] value (a fixed-size key array, for instance). Both wipe their
//! contents when dropped and print `<redacted>` through `Debug`, so a secret never reaches a
//! log by accident. Reading the value is explicit: [`SecretBytes::expose`] /
//! [`Secret::expose`].

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A variable-length secret byte string: zeroized on drop, `Debug` prints `<redacted>`.
///
/// ```
/// use sotto_crypto::secret::SecretBytes;
/// let key = SecretBytes::from_slice(&[7u8; 16]);
/// assert_eq!(key.len(), 16);
/// assert_eq!(format!("{key:?}"), "SecretBytes(<redacted>)");
/// assert_eq!(key.expose()[0], 7);
/// ```
#[derive(Clone, Default, Zeroize, ZeroizeOnDrop)]
pub struct SecretBytes(Vec<u8>);

impl SecretBytes {
    /// Takes ownership of `bytes` (no copy is left behind by this call).
    pub fn new(bytes: Vec<u8>) -> Self {
        SecretBytes(bytes)
    }

    /// Copies `bytes` into a new secret. The caller remains responsible for its own copy.
    pub fn from_slice(bytes: &[u8]) -> Self {
        SecretBytes(bytes.to_vec())
    }

    /// A zero-filled secret of `len` bytes, to be filled in place through
    /// [`SecretBytes::expose_mut`].
    pub fn zeroed(len: usize) -> Self {
        SecretBytes(vec![0u8; len])
    }

    /// The secret bytes. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// The secret bytes, mutable (to fill a secret in place).
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Length in bytes (not secret).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Constant-time comparison with `other` (the length is not secret).
    pub fn ct_eq(&self, other: &[u8]) -> bool {
        crate::ct_eq(&self.0, other)
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        SecretBytes(v)
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(v: &[u8]) -> Self {
        SecretBytes::from_slice(v)
    }
}

impl core::fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SecretBytes(<redacted>)")
    }
}

/// Any zeroizable value held as a secret: zeroized on drop, `Debug` prints `<redacted>`.
///
/// ```
/// use sotto_crypto::secret::Secret;
/// let k = Secret::new([1u8; 32]);
/// assert_eq!(k.expose()[31], 1);
/// assert_eq!(format!("{k:?}"), "Secret(<redacted>)");
/// ```
#[derive(Clone, Default)]
pub struct Secret<T: Zeroize>(T);

impl<T: Zeroize> Secret<T> {
    /// Wraps `value`.
    pub fn new(value: T) -> Self {
        Secret(value)
    }

    /// The secret value. Keep the borrow short and never log it.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// The secret value, mutable.
    pub fn expose_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl<T: Zeroize> ZeroizeOnDrop for Secret<T> {}

impl<T: Zeroize> core::fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacted_and_usable() {
        let mut s = SecretBytes::zeroed(4);
        s.expose_mut().copy_from_slice(&[1, 2, 3, 4]);
        assert!(s.ct_eq(&[1, 2, 3, 4]));
        assert!(!s.ct_eq(&[1, 2, 3, 5]));
        assert!(!format!("{s:?}").contains('1'));
        let mut z = s.clone();
        z.zeroize();
        assert!(z.is_empty());
        assert_eq!(s.len(), 4);
    }
}
