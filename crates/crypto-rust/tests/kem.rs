//! ML-KEM-768 (FIPS 203) through the public provider API: sizes, round trips, determinism
//! from the seed, implicit rejection and input checks.

use sotto_crypto::Error;
use sotto_crypto::kem::KemAlgorithm;
use sotto_crypto::rng::SecureRandom;
use sotto_crypto_rust::provider;

const ALG: KemAlgorithm = KemAlgorithm::MlKem768;

/// A deterministic "random" source for reproducibility checks (tests only).
#[derive(Debug)]
struct FixedRng(u8);

impl SecureRandom for FixedRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), Error> {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = self.0.wrapping_add(i as u8);
        }
        Ok(())
    }
}

/// A source that always fails, to check errors are passed on.
#[derive(Debug)]
struct BrokenRng;

impl SecureRandom for BrokenRng {
    fn fill(&self, _dest: &mut [u8]) -> Result<(), Error> {
        Err(Error::Unsupported("broken rng"))
    }
}

#[test]
fn sizes_match_fips203_table3() {
    assert_eq!(ALG.encapsulation_key_len(), 1184);
    assert_eq!(ALG.ciphertext_len(), 1088);
    assert_eq!(ALG.shared_secret_len(), 32);
    assert_eq!(ALG.expanded_decapsulation_key_len(), 2400);
    assert_eq!(ALG.seed_len(), 64);
    let dk = provider().kem.generate(ALG, provider().rng).unwrap();
    assert_eq!(dk.algorithm(), ALG);
    assert_eq!(dk.encapsulation_key().len(), 1184);
    let enc = provider()
        .kem
        .encapsulate(ALG, dk.encapsulation_key(), provider().rng)
        .unwrap();
    assert_eq!(enc.ciphertext.len(), 1088);
    assert_eq!(enc.shared_secret.len(), 32);
}

#[test]
fn round_trip() {
    let kem = provider().kem;
    let dk = kem.generate(ALG, provider().rng).unwrap();
    let enc = kem
        .encapsulate(ALG, dk.encapsulation_key(), provider().rng)
        .unwrap();
    let k = dk.decapsulate(&enc.ciphertext).unwrap();
    assert!(sotto_crypto::ct_eq(
        k.as_bytes(),
        enc.shared_secret.as_bytes()
    ));
    // Two encapsulations to the same key give different secrets and ciphertexts.
    let enc2 = kem
        .encapsulate(ALG, dk.encapsulation_key(), provider().rng)
        .unwrap();
    assert_ne!(enc.ciphertext, enc2.ciphertext);
    assert_ne!(enc.shared_secret.as_bytes(), enc2.shared_secret.as_bytes());
    assert_eq!(format!("{:?}", enc.shared_secret), "<redacted>");
}

#[test]
fn seed_determines_the_key() {
    let kem = provider().kem;
    let seed: Vec<u8> = (0..64).collect();
    let a = kem.from_seed(ALG, &seed).unwrap();
    let b = kem.from_seed(ALG, &seed).unwrap();
    assert_eq!(a.encapsulation_key(), b.encapsulation_key());
    let mut other = seed.clone();
    other[63] ^= 1; // z only: same encapsulation key (z is the implicit-rejection secret)
    let c = kem.from_seed(ALG, &other).unwrap();
    assert_eq!(a.encapsulation_key(), c.encapsulation_key());
    other[0] ^= 1; // d: a different key pair
    let d = kem.from_seed(ALG, &other).unwrap();
    assert_ne!(a.encapsulation_key(), d.encapsulation_key());

    // Generation from a fixed source equals loading the seed it drew.
    let g = kem.generate(ALG, &FixedRng(0)).unwrap();
    assert_eq!(g.encapsulation_key(), a.encapsulation_key());
    let mut out = [0u8; 64];
    assert_eq!(g.write_seed(&mut out), Ok(64));
    assert_eq!(&out[..], &seed[..]);
    assert_eq!(
        g.write_seed(&mut out[..63]),
        Err(Error::BufferTooSmall { need: 64 })
    );

    // Encapsulation with the same message randomness is reproducible, and decapsulates.
    let e1 = kem
        .encapsulate(ALG, a.encapsulation_key(), &FixedRng(7))
        .unwrap();
    let e2 = kem
        .encapsulate(ALG, a.encapsulation_key(), &FixedRng(7))
        .unwrap();
    assert_eq!(e1.ciphertext, e2.ciphertext);
    assert_eq!(e1.shared_secret.as_bytes(), e2.shared_secret.as_bytes());
    assert_eq!(
        b.decapsulate(&e1.ciphertext).unwrap().as_bytes(),
        e1.shared_secret.as_bytes()
    );
}

#[test]
fn corrupted_ciphertext_gives_an_unrelated_secret() {
    let kem = provider().kem;
    let dk = kem.generate(ALG, provider().rng).unwrap();
    let enc = kem
        .encapsulate(ALG, dk.encapsulation_key(), provider().rng)
        .unwrap();
    for pos in [0, 500, 1087] {
        let mut ct = enc.ciphertext.clone();
        ct[pos] ^= 0x80;
        let k = dk.decapsulate(&ct).unwrap();
        assert_ne!(k.as_bytes(), enc.shared_secret.as_bytes(), "byte {pos}");
    }
    // Another key cannot recover the secret either.
    let other = kem.generate(ALG, provider().rng).unwrap();
    assert_ne!(
        other.decapsulate(&enc.ciphertext).unwrap().as_bytes(),
        enc.shared_secret.as_bytes()
    );
}

#[test]
fn input_checks() {
    let kem = provider().kem;
    let dk = kem.generate(ALG, provider().rng).unwrap();
    assert!(matches!(
        dk.decapsulate(&[0u8; 1087]),
        Err(Error::InvalidLength { got: 1087, .. })
    ));
    assert!(matches!(
        kem.encapsulate(ALG, &dk.encapsulation_key()[1..], provider().rng),
        Err(Error::InvalidLength { got: 1183, .. })
    ));
    // FIPS 203 §7.2 modulus check: 12-bit coefficients of 0xfff (>= q = 3329) are refused.
    let mut bad = dk.encapsulation_key().to_vec();
    bad[..3].copy_from_slice(&[0xff, 0xff, 0xff]);
    assert_eq!(
        kem.encapsulate(ALG, &bad, provider().rng).unwrap_err(),
        Error::InvalidPublicValue
    );
    assert!(matches!(
        kem.from_seed(ALG, &[0u8; 32]),
        Err(Error::InvalidLength { got: 32, .. })
    ));
    assert_eq!(
        kem.generate(ALG, &BrokenRng).unwrap_err(),
        Error::Unsupported("broken rng")
    );
    assert_eq!(
        kem.encapsulate(ALG, dk.encapsulation_key(), &BrokenRng)
            .unwrap_err(),
        Error::Unsupported("broken rng")
    );
}
