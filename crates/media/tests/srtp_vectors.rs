//! Walks every vector of every file in `tests/vectors/srtp/` (see PROVENANCE.md there).

use std::path::{Path, PathBuf};

use serde_json::Value;
use sotto_media::srtp::kdf::{self, derive_session_key};
use sotto_media::srtp::{SessionKeys, SrtpPolicy, SrtpSession, SrtpSuite};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/vectors/srtp")
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(dir().join(name)).expect("vector file present");
    serde_json::from_str(&text).expect("vector file is JSON")
}

fn hex(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("hex string");
    assert!(s.len().is_multiple_of(2), "odd hex {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

fn provider() -> &'static sotto_crypto::CryptoProvider {
    sotto_crypto_rust::provider()
}

/// Every file in the folder is covered by one of the walkers below; a new file fails here
/// until a walker handles it.
#[test]
fn every_vector_file_is_walked() {
    let mut names: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "libsrtp_srtp_driver.json",
            "rfc3711_appendix_b.json",
            "rfc6188_section7.json",
            "rfc7714_aes_gcm.json"
        ]
    );
}

/// Checks a keystream vector: generates the whole segment through the AES-CM primitive from
/// the IV and compares the listed blocks.
fn check_keystream(v: &Value) -> usize {
    let key = hex(&v["session_key"]);
    let iv: [u8; 16] = hex(&v["iv"]).try_into().unwrap();
    let ctr = provider().cipher.aes_ctr(&key).unwrap();
    let seg_len = v["keystream_segment_octets"].as_u64().unwrap() as usize;
    let mut seg = vec![0u8; seg_len];
    ctr.apply_keystream(&iv, &mut seg);
    let mut n = 0;
    for b in v["blocks"].as_array().unwrap() {
        let i = b["block_index"].as_u64().unwrap() as usize;
        assert_eq!(
            &seg[i * 16..i * 16 + 16],
            &hex(&b["keystream"])[..],
            "block {i}"
        );
        // The counter block is the IV plus the block index.
        let ctr_block = u128::from_be_bytes(iv) + i as u128;
        assert_eq!(ctr_block.to_be_bytes().to_vec(), hex(&b["counter"]));
        n += 1;
    }
    n
}

/// Checks a PRF (key derivation) vector.
fn check_prf(v: &Value) -> usize {
    let mk = hex(&v["master_key"]);
    let ms = hex(&v["master_salt"]);
    let mut n = 0;
    for d in v["derived"].as_array().unwrap() {
        let label = d["label"].as_u64().unwrap() as u8;
        let want = hex(&d["value"]);
        let mut out = vec![0u8; want.len()];
        derive_session_key(provider(), &mk, &ms, label, &mut out).unwrap();
        assert_eq!(out, want, "label {label}");
        n += 1;
    }
    n
}

#[test]
fn rfc3711_appendix_b() {
    let f = load("rfc3711_appendix_b.json");
    let v = &f["vectors"];
    assert_eq!(check_keystream(&v["aes_cm_keystream"]), 6);
    assert_eq!(check_prf(&v["key_derivation"]), 3);
    // The HMAC-SHA1 suites use the first 20 octets of the label-1 output.
    let kd = &v["key_derivation"];
    let mut auth = [0u8; 20];
    derive_session_key(
        provider(),
        &hex(&kd["master_key"]),
        &hex(&kd["master_salt"]),
        kdf::LABEL_RTP_AUTH,
        &mut auth,
    )
    .unwrap();
    assert_eq!(auth.to_vec(), hex(&kd["derived"][2]["first_20_octets"]));
}

#[test]
fn rfc6188_section7() {
    let f = load("rfc6188_section7.json");
    let v = &f["vectors"];
    assert_eq!(check_keystream(&v["aes_256_cm_keystream"]), 6);
    assert_eq!(check_keystream(&v["aes_192_cm_keystream"]), 6);
    assert_eq!(check_prf(&v["aes_256_cm_prf"]), 3);
    assert_eq!(check_prf(&v["aes_192_cm_prf"]), 3);
}

fn ssrc(v: &Value) -> u32 {
    u32::from_str_radix(v["ssrc"].as_str().unwrap(), 16).unwrap()
}

/// Protects `plain` and compares with `protected`; unprotects `protected` and compares with
/// `plain`.
fn round(
    tx: &mut SrtpSession,
    rx: &mut SrtpSession,
    rtcp: bool,
    plain: &[u8],
    protected: &[u8],
    what: &str,
) {
    let mut buf = vec![0u8; plain.len() + 64];
    buf[..plain.len()].copy_from_slice(plain);
    let n = if rtcp {
        tx.protect_rtcp(&mut buf, plain.len())
    } else {
        tx.protect_rtp(&mut buf, plain.len())
    }
    .unwrap_or_else(|e| panic!("{what}: protect: {e}"));
    assert_eq!(&buf[..n], protected, "{what}: protect");
    let mut buf = protected.to_vec();
    let m = if rtcp {
        rx.unprotect_rtcp(&mut buf)
    } else {
        rx.unprotect_rtp(&mut buf)
    }
    .unwrap_or_else(|e| panic!("{what}: unprotect: {e}"));
    assert_eq!(&buf[..m], plain, "{what}: unprotect");
}

#[test]
fn rfc7714_aes_gcm() {
    let f = load("rfc7714_aes_gcm.json");
    let mut n = 0;
    for v in f["vectors"].as_array().unwrap() {
        let what = v["section"].as_str().unwrap();
        let suite = SrtpSuite::from_name(v["suite"].as_str().unwrap()).unwrap();
        let key = hex(&v["session_key"]);
        let salt = hex(&v["session_salt"]);
        let rtcp = v["kind"] == "srtcp";
        let op = v["operation"].as_str().unwrap();
        let mut policy = SrtpPolicy::new(suite, &[0; 0], &[0; 0]);
        if op == "tag" || op == "verify" {
            // Authentication only: the whole packet is associated data.
            policy.encrypt_rtp = false;
            policy.encrypt_rtcp = false;
        }
        let keys = SessionKeys {
            key: &key,
            salt: &salt,
            auth_key: &[],
        };
        let mk = || SrtpSession::with_session_keys(provider(), policy.clone(), keys, keys).unwrap();
        let (mut tx, mut rx) = (mk(), mk());
        let ssrc = ssrc(v);
        if rtcp {
            tx.set_srtcp_index(ssrc, v["srtcp_index"].as_u64().unwrap() as u32)
                .unwrap();
        } else {
            tx.set_roc(ssrc, v["roc"].as_u64().unwrap() as u32).unwrap();
            rx.set_roc(ssrc, v["roc"].as_u64().unwrap() as u32).unwrap();
            let plain = hex(&v["plaintext"]);
            assert_eq!(
                u16::from_be_bytes([plain[2], plain[3]]),
                v["seq"].as_u64().unwrap() as u16
            );
        }
        let plain = hex(&v["plaintext"]);
        let protected = hex(&v["protected"]);
        // The tag printed by the RFC sits where the layout says.
        let tag = hex(&v["tag"]);
        let tag_at = if rtcp {
            protected.len() - 4 - 16
        } else {
            protected.len() - 16
        };
        assert_eq!(
            &protected[tag_at..tag_at + 16],
            &tag[..],
            "{what}: tag position"
        );
        round(&mut tx, &mut rx, rtcp, &plain, &protected, what);
        n += 1;
    }
    assert_eq!(n, 12);
}

#[test]
fn libsrtp_srtp_driver() {
    let f = load("libsrtp_srtp_driver.json");
    let mut n = 0;
    for v in f["vectors"].as_array().unwrap() {
        let what = v["name"].as_str().unwrap();
        let suite = SrtpSuite::from_name(v["suite"].as_str().unwrap()).unwrap();
        let mk = hex(&v["master_key"]);
        let ms = hex(&v["master_salt"]);
        let rtcp = v["kind"] == "srtcp";
        let mut policy = SrtpPolicy::new(suite, &mk, &ms);
        policy.danger_allow_null_cipher = suite.is_null_cipher();
        if let Some(mki) = v.get("mki") {
            policy = policy.with_mki(&hex(mki));
        }
        // The derived session keys listed alongside agree with our KDF.
        if let Some(sk) = v.get("session_key") {
            let label = if rtcp {
                kdf::LABEL_RTCP_ENCRYPTION
            } else {
                kdf::LABEL_RTP_ENCRYPTION
            };
            let want = hex(sk);
            let mut out = vec![0u8; want.len()];
            derive_session_key(provider(), &mk, &ms, label, &mut out).unwrap();
            assert_eq!(out, want, "{what}: session key");
        }
        if let Some(sa) = v.get("session_auth_key") {
            let label = if rtcp {
                kdf::LABEL_RTCP_AUTH
            } else {
                kdf::LABEL_RTP_AUTH
            };
            let want = hex(sa);
            let mut out = vec![0u8; want.len()];
            derive_session_key(provider(), &mk, &ms, label, &mut out).unwrap();
            assert_eq!(out, want, "{what}: auth key");
        }
        let (mut tx, mut rx) = (
            SrtpSession::new(provider(), policy.clone()).unwrap(),
            SrtpSession::new(provider(), policy).unwrap(),
        );
        let ssrc = ssrc(v);
        if rtcp {
            tx.set_srtcp_index(ssrc, v["srtcp_index"].as_u64().unwrap() as u32)
                .unwrap();
        }
        let plain = hex(&v["plaintext"]);
        let protected = hex(&v["ciphertext"]);
        if rtcp {
            let e = v["e_flag"].as_u64().unwrap() as u8;
            let ew_at = if suite == SrtpSuite::AeadAes128Gcm {
                protected.len() - 4
            } else {
                plain.len()
            };
            assert_eq!(protected[ew_at] >> 7, e, "{what}: E flag");
        }
        round(&mut tx, &mut rx, rtcp, &plain, &protected, what);
        n += 1;
    }
    assert_eq!(n, 12);
}
