//! Cryptographically secure random numbers.

/// A cryptographically secure random number generator (the operating system's, by default).
pub trait SecureRandom: Send + Sync + core::fmt::Debug {
    /// Fills `dest` with random bytes.
    fn fill(&self, dest: &mut [u8]) -> Result<(), crate::Error>;
}
