//! HKDF (RFC 5869) through the public provider API. Test cases 1-3 of RFC 5869 Appendix A
//! (SHA-256) are written here from the RFC (they are not in the shared vector set); the
//! values were also recomputed with Python's `hmac` when this test was written.

mod common;

use common::{hex, unhex};
use sotto_crypto::Error;
use sotto_crypto::hash::HashAlgorithm;
use sotto_crypto_rust::provider;

struct Case {
    name: &'static str,
    ikm: Vec<u8>,
    salt: Vec<u8>,
    info: Vec<u8>,
    prk: &'static str,
    okm: &'static str,
}

fn rfc5869_cases() -> Vec<Case> {
    vec![
        Case {
            name: "A.1 basic",
            ikm: vec![0x0b; 22],
            salt: (0x00..=0x0c).collect(),
            info: (0xf0..=0xf9).collect(),
            prk: "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
            okm: "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf\
                  34007208d5b887185865",
        },
        Case {
            name: "A.2 longer inputs/outputs",
            ikm: (0x00..=0x4f).collect(),
            salt: (0x60..=0xaf).collect(),
            info: (0xb0..=0xff).collect(),
            prk: "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
            okm: "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c\
                  59045a99cac7827271cb41c65e590e09da3275600c2f09b8367793a9aca3db71\
                  cc30c58179ec3e87c14c01d5c1f3434f1d87",
        },
        Case {
            name: "A.3 zero-length salt/info",
            ikm: vec![0x0b; 22],
            salt: vec![],
            info: vec![],
            prk: "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
            okm: "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d\
                  9d201395faa4b61a96c8",
        },
    ]
}

/// Removes the line-continuation spaces of the long literals above.
fn squash(s: &str) -> String {
    s.split_whitespace().collect()
}

#[test]
fn rfc5869_sha256_cases() {
    let kdf = provider().kdf;
    let cases = rfc5869_cases();
    for c in &cases {
        let okm_hex = squash(c.okm);
        let mut prk = [0u8; 64];
        let n = kdf
            .hkdf_extract(HashAlgorithm::Sha256, &c.salt, &c.ikm, &mut prk)
            .unwrap();
        assert_eq!(hex(&prk[..n]), c.prk, "{}", c.name);

        let mut okm = vec![0u8; okm_hex.len() / 2];
        kdf.hkdf_expand(HashAlgorithm::Sha256, &prk[..n], &[&c.info], &mut okm)
            .unwrap();
        assert_eq!(hex(&okm), okm_hex, "{}", c.name);

        // One call, and info given in parts, give the same output.
        let mut okm2 = vec![0u8; okm.len()];
        let (i1, i2) = c.info.split_at(c.info.len() / 2);
        kdf.hkdf(HashAlgorithm::Sha256, &c.salt, &c.ikm, &[i1, i2], &mut okm2)
            .unwrap();
        assert_eq!(okm2, okm, "{}", c.name);
    }
    assert_eq!(cases.len(), 3);
    assert_eq!(unhex(cases[0].prk).len(), 32);
}

/// HKDF-SHA512 as LIME uses it (X3DH's SK: 64 zero octets of salt, F ‖ DH outputs, info
/// "Lime"; the cipher-message key: no salt, info "DR Message Key Derivation"); known answers
/// from Python `cryptography` (OpenSSL).
#[test]
fn sha512_known_answers_of_lime_shaped_inputs() {
    let kdf = provider().kdf;
    let ikm: Vec<u8> = [0xffu8; 32].into_iter().chain(0..96).collect();
    let mut sk = [0u8; 32];
    kdf.hkdf(HashAlgorithm::Sha512, &[0u8; 64], &ikm, &[b"Lime"], &mut sk)
        .unwrap();
    assert_eq!(
        sotto_crypto::hex::encode(&sk),
        "a1392a8be51289b2abda3689b19e078bee32d24c3ea3aa76494f2702713fc76b"
    );
    let seed: Vec<u8> = (0..32).collect();
    let mut key_iv = [0u8; 48];
    kdf.hkdf(
        HashAlgorithm::Sha512,
        &[],
        &seed,
        &[b"DR Message Key Derivation"],
        &mut key_iv,
    )
    .unwrap();
    assert_eq!(
        sotto_crypto::hex::encode(&key_iv),
        concat!(
            "109184a9e3b155c7d60739cecdd59325d5d44874b1d83e867a4877c12b535cc0",
            "af2237da9e649b15e176fa4ef2b22b04"
        )
    );
}

#[test]
fn sha384_sha512_are_distinct_and_self_consistent() {
    let kdf = provider().kdf;
    let mut outs = Vec::new();
    for (hash, len) in [
        (HashAlgorithm::Sha256, 32),
        (HashAlgorithm::Sha384, 48),
        (HashAlgorithm::Sha512, 64),
    ] {
        let mut prk = [0u8; 64];
        assert_eq!(kdf.hkdf_extract(hash, b"salt", b"ikm", &mut prk), Ok(len));
        let mut a = [0u8; 100];
        kdf.hkdf_expand(hash, &prk[..len], &[b"info"], &mut a)
            .unwrap();
        let mut b = [0u8; 100];
        kdf.hkdf(hash, b"salt", b"ikm", &[b"in", b"fo"], &mut b)
            .unwrap();
        assert_eq!(a, b, "{hash:?}");
        // An output prefix does not depend on the output length (RFC 5869 §2.3).
        let mut short = [0u8; 10];
        kdf.hkdf(hash, b"salt", b"ikm", &[b"info"], &mut short)
            .unwrap();
        assert_eq!(short, a[..10]);
        outs.push(a);
    }
    assert_ne!(outs[0], outs[1]);
    assert_ne!(outs[1], outs[2]);
}

#[test]
fn limits_and_errors() {
    let kdf = provider().kdf;
    let prk = [7u8; 32];
    // At most 255 blocks of output.
    let mut max = vec![0u8; 255 * 32];
    kdf.hkdf_expand(HashAlgorithm::Sha256, &prk, &[], &mut max)
        .unwrap();
    let mut over = vec![0u8; 255 * 32 + 1];
    assert_eq!(
        kdf.hkdf_expand(HashAlgorithm::Sha256, &prk, &[], &mut over),
        Err(Error::InvalidLength {
            what: "hkdf output",
            got: 255 * 32 + 1
        })
    );
    // PRK shorter than HashLen.
    let mut okm = [0u8; 16];
    assert_eq!(
        kdf.hkdf_expand(HashAlgorithm::Sha384, &prk, &[], &mut okm),
        Err(Error::InvalidLength {
            what: "hkdf prk",
            got: 32
        })
    );
    // PRK buffer too small.
    let mut small = [0u8; 47];
    assert_eq!(
        kdf.hkdf_extract(HashAlgorithm::Sha384, b"", b"ikm", &mut small),
        Err(Error::BufferTooSmall { need: 48 })
    );
    // Only SHA-2 is offered for HKDF.
    for hash in [HashAlgorithm::Sha1, HashAlgorithm::Md5] {
        assert!(matches!(
            kdf.hkdf(hash, b"", b"ikm", &[], &mut okm),
            Err(Error::Unsupported(_))
        ));
    }
}
