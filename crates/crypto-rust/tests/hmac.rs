//! RFC 4231 HMAC-SHA-256/384 vectors (cited by RFC 6189 for the ZRTP MAC and KDF), walked
//! from `tests/vectors/zrtp/rfc4231_hmac_sha2.json` through the public `MacProvider`.

mod common;

use common::{array, field, hex, load};
use sotto_crypto::mac::MacAlgorithm;
use sotto_crypto_rust::provider;

#[test]
fn rfc4231_vectors() {
    let doc = load("zrtp/rfc4231_hmac_sha2.json");
    let vectors = array(&doc, "vectors");
    let mut checked = 0;
    for v in vectors {
        let key = field(v, "key");
        let data = field(v, "data");
        let case = v.get("test_case").and_then(|c| c.as_u64()).unwrap();
        for (alg, names) in [
            (
                MacAlgorithm::Sha256,
                ["hmac_sha256", "hmac_sha256_truncated_128"],
            ),
            (
                MacAlgorithm::Sha384,
                ["hmac_sha384", "hmac_sha384_truncated_128"],
            ),
        ] {
            let Some(name) = names.into_iter().find(|n| v.get(*n).is_some()) else {
                panic!("case {case}: no {alg:?} result");
            };
            let expected = field(v, name);
            let mac = provider().mac.hmac(alg, &key).unwrap();
            let mut out = vec![0u8; expected.len()];
            // The data is split in two parts: the MAC covers their concatenation.
            let (d1, d2) = data.split_at(data.len() / 3);
            mac.compute(&[d1, d2], &mut out).unwrap();
            assert_eq!(hex(&out), hex(&expected), "case {case} {name}");
            assert!(mac.verify(&[&data], &expected), "case {case} {name}");
            let mut bad = expected.clone();
            bad[expected.len() - 1] ^= 1;
            assert!(!mac.verify(&[&data], &bad), "case {case} {name}");
            checked += 1;
        }
    }
    // 7 test cases x (SHA-256, SHA-384); case 5 is the 128-bit truncation.
    assert_eq!((vectors.len(), checked), (7, 14));
}
