//! Finite-field DH on the RFC 3526 groups 14 and 15 (ZRTP DH2k / DH3k), checked against
//! `tests/vectors/zrtp/rfc3526_modp.json`, through the public provider API.

mod common;

use common::{array, field, hex, load, text};
use sotto_crypto::Error;
use sotto_crypto::agreement::AgreementAlgorithm;
use sotto_crypto_rust::provider;

struct Group {
    alg: AgreementAlgorithm,
    bits: usize,
    p: Vec<u8>,
    q: Vec<u8>,
}

fn groups() -> Vec<Group> {
    let doc = load("zrtp/rfc3526_modp.json");
    let groups: Vec<Group> = array(&doc, "groups")
        .iter()
        .map(|g| {
            let alg = match text(g, "zrtp_key_agreement") {
                "DH2k" => AgreementAlgorithm::Ffdh2048,
                "DH3k" => AgreementAlgorithm::Ffdh3072,
                other => panic!("unknown group {other}"),
            };
            assert_eq!(g.get("g").and_then(|x| x.as_u64()), Some(2));
            let octets = g.get("p_octets").and_then(|x| x.as_u64()).unwrap() as usize;
            assert_eq!(octets, alg.public_len());
            let bits = g.get("bits").and_then(|x| x.as_u64()).unwrap() as usize;
            Group {
                alg,
                bits,
                p: field(g, "p"),
                q: field(g, "q"),
            }
        })
        .collect();
    assert_eq!(groups.len(), 2);
    groups
}

/// `a - small` for a big-endian `a` (test arithmetic on public values only).
fn sub_small(a: &[u8], small: u8) -> Vec<u8> {
    let mut out = a.to_vec();
    let mut borrow = small as u16;
    for b in out.iter_mut().rev() {
        let v = (*b as u16).wrapping_sub(borrow);
        *b = v as u8;
        borrow = if v > 0xff { 1 } else { 0 };
        if borrow == 0 {
            break;
        }
    }
    out
}

/// `2^bits - p` for a `bits`-bit big-endian `p` (that is, `2^bits mod p`).
fn two_pow_minus(p: &[u8]) -> Vec<u8> {
    // two's complement of p within p.len() bytes
    let mut out: Vec<u8> = p.iter().map(|b| !b).collect();
    for b in out.iter_mut().rev() {
        let (v, carry) = b.overflowing_add(1);
        *b = v;
        if !carry {
            break;
        }
    }
    out
}

/// Big-endian encoding of `v` on `len` bytes.
fn small(v: u8, len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    out[len - 1] = v;
    out
}

#[test]
fn primes_match_rfc3526() {
    for g in groups() {
        let len = g.alg.public_len();
        assert_eq!(g.p.len(), len);
        assert_eq!(g.bits, 8 * len);
        // 2^bits mod p = 2^bits - p: pins every bit of the backend's p.
        let exponent = {
            let mut e = vec![0u8; 2];
            e[0] = (g.bits >> 8) as u8;
            e[1] = g.bits as u8;
            e
        };
        let key = provider()
            .agreement
            .from_secret_bytes(g.alg, &exponent)
            .unwrap();
        assert_eq!(
            hex(key.public_key()),
            hex(&two_pow_minus(&g.p)),
            "{:?}",
            g.alg
        );
        // 2 generates the subgroup of prime order q = (p-1)/2: g^q = 1.
        let key = provider().agreement.from_secret_bytes(g.alg, &g.q).unwrap();
        assert_eq!(key.public_key(), &small(1, len)[..], "{:?}", g.alg);
        // Small exponents give the plain power of two, fixed-length big-endian.
        let key = provider().agreement.from_secret_bytes(g.alg, &[5]).unwrap();
        assert_eq!(key.public_key(), &small(32, len)[..]);
    }
}

#[test]
fn round_trip_both_groups() {
    for g in groups() {
        let a = provider()
            .agreement
            .generate(g.alg, provider().rng)
            .unwrap();
        let b = provider()
            .agreement
            .generate(g.alg, provider().rng)
            .unwrap();
        assert_eq!(a.algorithm(), g.alg);
        assert_eq!(a.public_key().len(), g.alg.public_len());
        assert_ne!(a.public_key(), b.public_key());
        let k1 = a.agree(b.public_key()).unwrap();
        let k2 = b.agree(a.public_key()).unwrap();
        assert_eq!(k1.len(), g.alg.shared_secret_len());
        assert!(sotto_crypto::ct_eq(k1.as_bytes(), k2.as_bytes()));
        // The stored exponent reloads to the same key.
        let mut buf = vec![0u8; g.alg.secret_len()];
        let n = a.write_secret(&mut buf).unwrap();
        assert_eq!(n, g.alg.secret_len());
        let again = provider()
            .agreement
            .from_secret_bytes(g.alg, &buf[..n])
            .unwrap();
        assert_eq!(again.public_key(), a.public_key());
        assert_eq!(
            format!("{a:?}"),
            format!("FfdhKey({:?}, <redacted>)", g.alg)
        );
    }
}

#[test]
fn refuses_public_values_outside_2_to_p_minus_2() {
    for g in groups() {
        let len = g.alg.public_len();
        let key = provider()
            .agreement
            .from_secret_bytes(g.alg, &[0x12, 0x34, 0x56])
            .unwrap();
        let p_minus_1 = sub_small(&g.p, 1);
        let p_minus_2 = sub_small(&g.p, 2);
        for (what, bad) in [
            ("0", small(0, len)),
            ("1", small(1, len)),
            ("p-1", p_minus_1),
            ("p", g.p.clone()),
            ("2^bits-1", vec![0xff; len]),
        ] {
            assert_eq!(
                key.agree(&bad).unwrap_err(),
                Error::InvalidPublicValue,
                "{:?} {what}",
                g.alg
            );
        }
        // The bounds themselves are accepted.
        key.agree(&small(2, len)).unwrap();
        key.agree(&p_minus_2).unwrap();
        // Values are fixed length: a shorter or longer encoding is a length error.
        assert!(matches!(
            key.agree(&small(2, len - 1)),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            key.agree(&small(2, len + 1)),
            Err(Error::InvalidLength { .. })
        ));
    }
}

#[test]
fn refuses_exponents_outside_2_to_p_minus_2() {
    for g in groups() {
        let len = g.alg.public_len();
        for bad in [vec![0u8], vec![1u8], sub_small(&g.p, 1), g.p.clone()] {
            assert_eq!(
                provider()
                    .agreement
                    .from_secret_bytes(g.alg, &bad)
                    .unwrap_err(),
                Error::InvalidPrivateKey
            );
        }
        assert!(matches!(
            provider().agreement.from_secret_bytes(g.alg, &[]),
            Err(Error::InvalidLength { .. })
        ));
        assert!(matches!(
            provider()
                .agreement
                .from_secret_bytes(g.alg, &vec![1u8; len + 1]),
            Err(Error::InvalidLength { .. })
        ));
    }
}

/// Short exponents (ZRTP: twice the AES key length) give the same public value as the same
/// exponent loaded at full length, and two short keys agree.
#[test]
fn short_exponents_agree_and_match_the_full_length_computation() {
    let p = provider();
    for alg in [AgreementAlgorithm::Ffdh2048, AgreementAlgorithm::Ffdh3072] {
        for len in [32usize, 64] {
            let a = p
                .agreement
                .generate_short_exponent(alg, len, p.rng)
                .unwrap();
            let b = p
                .agreement
                .generate_short_exponent(alg, len, p.rng)
                .unwrap();
            let mut secret = vec![0u8; alg.secret_len()];
            let n = a.write_secret(&mut secret).unwrap();
            let x = &secret[..n];
            // At most `len` significant octets.
            let lead = x.iter().take_while(|b| **b == 0).count();
            assert!(
                x.len() - lead <= len,
                "{alg:?}: exponent of {} octets",
                x.len() - lead
            );
            let full = p.agreement.from_secret_bytes(alg, x).unwrap();
            assert_eq!(full.public_key(), a.public_key(), "{alg:?} {len}");
            let ab = a.agree(b.public_key()).unwrap();
            let ba = b.agree(a.public_key()).unwrap();
            assert_eq!(ab.as_bytes(), ba.as_bytes());
            assert_eq!(ab.len(), alg.shared_secret_len());
        }
        assert!(p.agreement.generate_short_exponent(alg, 1, p.rng).is_err());
    }
    // Curves ignore the length.
    let k = p
        .agreement
        .generate_short_exponent(AgreementAlgorithm::X25519, 32, p.rng)
        .unwrap();
    assert_eq!(k.public_key().len(), 32);
}
