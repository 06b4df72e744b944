//! Backend for [`sotto_crypto::rng::SecureRandom`]: the operating system's generator.

use sotto_crypto::rng::SecureRandom;

/// The operating system's CSPRNG (`getrandom`).
#[derive(Debug)]
pub(crate) struct RustRng;

impl SecureRandom for RustRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), sotto_crypto::Error> {
        getrandom::fill(dest).map_err(|_| sotto_crypto::Error::Unsupported("operating system RNG"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_distinct_values() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        RustRng.fill(&mut a).unwrap();
        RustRng.fill(&mut b).unwrap();
        assert_ne!(a, b);
    }
}
