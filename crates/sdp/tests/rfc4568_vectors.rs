//! RFC 4568 examples (tests/vectors/sdes/rfc4568_crypto.json): every a=crypto line and key
//! parameter decodes to the key, salt, lifetime and MKI given in the file, and the example
//! descriptions round-trip and negotiate.

mod common;

use serde_json::Value;
use sotto_sdp::{
    AttributeError, Crypto, EncryptionPolicy, LocalCapabilities, Session, answer, process_answer,
};

fn vectors() -> Value {
    let raw = common::read("vectors/sdes/rfc4568_crypto.json");
    serde_json::from_slice(&raw).expect("valid JSON")
}

fn check_key(k: &sotto_sdp::KeyParam, v: &Value) {
    assert_eq!(
        common::hex(k.master_key.expose()),
        v["master_key"].as_str().unwrap()
    );
    assert_eq!(
        common::hex(k.master_salt.expose()),
        v["master_salt"].as_str().unwrap()
    );
    let mut ks = k.master_key.expose().to_vec();
    ks.extend_from_slice(k.master_salt.expose());
    assert_eq!(common::hex(&ks), v["key_salt"].as_str().unwrap());
    match v["lifetime_packets"].as_u64() {
        Some(p) => assert_eq!(k.lifetime.and_then(|l| l.packets()), Some(p)),
        None => assert_eq!(k.lifetime, None),
    }
    if let Some(text) = v["lifetime"].as_str() {
        assert_eq!(k.lifetime.unwrap().to_string(), text);
    }
    let mki = k.mki.expect("every example has an MKI");
    assert_eq!(mki.value, v["mki"].as_u64().unwrap());
    assert_eq!(u64::from(mki.length), v["mki_length"].as_u64().unwrap());
}

#[test]
fn crypto_attributes_decode_exactly() {
    let v = vectors();
    let attrs = v["crypto_attributes"].as_array().unwrap();
    assert_eq!(attrs.len(), 6);
    for case in attrs {
        let line = case["attribute"].as_str().unwrap();
        let value = line.strip_prefix("a=crypto:").unwrap();
        let c = Crypto::parse(value).unwrap_or_else(|e| panic!("{line}: {e}"));
        assert_eq!(u64::from(c.tag), case["tag"].as_u64().unwrap());
        assert_eq!(c.suite_name, case["crypto_suite"].as_str().unwrap());
        let keys = case["key_params"].as_array().unwrap();
        assert_eq!(c.keys.len(), keys.len(), "{line}");
        for (k, kv) in c.keys.iter().zip(keys) {
            check_key(k, kv);
        }
        let params: Vec<String> = c.session_params.iter().map(|p| p.to_string()).collect();
        let expected: Vec<&str> = case["session_params"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_str().unwrap())
            .collect();
        assert_eq!(params, expected, "{line}");
        // Re-encoding gives the same text (all examples are canonical, 30-byte key||salt).
        assert_eq!(c.to_value(), value, "{line}");
        // Supported: everything except the F8 suite.
        match c.check_supported() {
            Ok(s) => assert_eq!(s.name(), c.suite_name),
            Err(AttributeError::Unsupported { what, .. }) => {
                assert_eq!(c.suite_name, "F8_128_HMAC_SHA1_80");
                assert!(what.contains("F8_128_HMAC_SHA1_80"), "{what}");
            }
            Err(e) => panic!("{line}: {e}"),
        }
    }
}

#[test]
fn key_params_examples_decode_exactly() {
    let v = vectors();
    for case in v["key_params_examples"].as_array().unwrap() {
        let kp = case["key_param"].as_str().unwrap();
        let c = Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {kp}")).unwrap();
        assert_eq!(c.keys.len(), 1);
        check_key(&c.keys[0], case);
        assert!(c.to_value().ends_with(kp));
        c.check_supported().unwrap();
    }
}

fn example(v: &Value, section: &str, description: &str) -> Vec<u8> {
    let ex = v["sdp_examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["section"] == section && e["description"] == description)
        .unwrap();
    let mut body = String::new();
    for l in ex["lines"].as_array().unwrap() {
        body.push_str(l.as_str().unwrap());
        body.push_str("\r\n");
    }
    body.into_bytes()
}

#[test]
fn sdp_examples_round_trip() {
    let v = vectors();
    for ex in v["sdp_examples"].as_array().unwrap() {
        let body = example(
            &v,
            ex["section"].as_str().unwrap(),
            ex["description"].as_str().unwrap(),
        );
        let s = Session::parse(&body).unwrap();
        assert_eq!(s.to_sdp().unwrap().as_bytes(), &body[..]);
    }
    let s = Session::parse(&example(&v, "4.5", "SDP with two RTP/SAVP streams")).unwrap();
    assert_eq!(s.media.len(), 3);
    assert_eq!(s.connection.as_ref().unwrap().address, "161.44.17.12/127");
    assert_eq!(
        s.connection.as_ref().unwrap().base_address(),
        "161.44.17.12"
    );
}

#[test]
fn section_7_1_5_offer_is_answered_with_tag_1_and_a_fresh_key() {
    let v = vectors();
    let offer = Session::parse(&example(&v, "7.1.5", "offer")).unwrap();
    let caps = LocalCapabilities::new("127.0.0.1", 32640);
    let policy = EncryptionPolicy::default();
    let (ans, neg, neg_keys) = answer(&offer, &caps, &policy, common::rng()).unwrap();
    let keys = neg_keys.as_ref().unwrap();
    assert_eq!(keys.tag, 1);
    assert_eq!(keys.suite.name(), "AES_CM_128_HMAC_SHA1_80");
    // The receive key is the offerer's (tag 1, MKI 1:4).
    assert_eq!(
        common::hex(keys.remote[0].master_key.expose()),
        "59535f5f5f73656d63746c202829207b"
    );
    assert_eq!(keys.remote[0].mki.unwrap().to_bytes(), vec![0, 0, 0, 1]);
    // Our key is fresh, not the offerer's.
    assert_ne!(
        keys.local.master_key.expose(),
        keys.remote[0].master_key.expose()
    );
    assert_eq!(neg.codecs[0].encoding, "PCMU");
    // The RFC's answer uses tag 1 too; the offerer's view of our answer gives mirrored keys.
    let (_, back_keys) = process_answer(&offer, &ans, &policy).unwrap();
    let bk = back_keys.unwrap();
    assert_eq!(bk.local, keys.remote[0]);
    assert_eq!(bk.remote, vec![keys.local.clone()]);
    // And the RFC's own answer is accepted by the offerer.
    let rfc_answer = Session::parse(&example(&v, "7.1.5", "answer")).unwrap();
    let (n, n_keys) = process_answer(&offer, &rfc_answer, &policy).unwrap();
    let k = n_keys.unwrap();
    assert_eq!(k.tag, 1);
    assert_eq!(
        common::hex(k.remote[0].master_key.expose()),
        "3d2d6e40255e7821426a75667239293f"
    );
    assert_eq!(n.remote_rtp_port, 32640);
    assert_eq!(n.remote_address, "168.2.17.11");
}
