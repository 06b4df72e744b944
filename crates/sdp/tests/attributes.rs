//! Typed attributes: valid values decode and re-encode; malformed ones name the fault.

use sotto_sdp::{
    Attribute, AttributeError, Crypto, Direction, Fingerprint, Fmtp, Mki, Rtcp, Rtpmap, Setup,
    ZrtpHash, attr,
};

#[test]
fn rtpmap_fmtp_ptime() {
    let r = Rtpmap::parse("101 telephone-event/8000").unwrap();
    assert_eq!((r.payload_type, r.clock_rate, r.channels()), (101, 8000, 1));
    assert_eq!(r.to_string(), "101 telephone-event/8000");
    for bad in [
        "128 x/8000",
        "x PCMU/8000",
        "0 PCMU",
        "0 PCMU/x",
        "0 PCMU/8000/",
        "0",
    ] {
        assert!(Rtpmap::parse(bad).is_err(), "{bad}");
    }
    let f = Fmtp::parse("101 0-16").unwrap();
    assert_eq!((f.format.as_str(), f.params.as_str()), ("101", "0-16"));
    assert!(Fmtp::parse("101").is_err());
    assert_eq!(attr::parse_ptime("20").unwrap(), 20);
    assert_eq!(attr::parse_ptime("30.0").unwrap(), 30);
    for bad in ["", "x", "-1", "20.", "1e3"] {
        assert!(attr::parse_ptime(bad).is_err(), "{bad}");
    }
}

#[test]
fn direction_rtcp_setup() {
    assert_eq!(
        Direction::from_attribute(&Attribute::property("sendonly")),
        Some(Direction::SendOnly)
    );
    assert_eq!(
        Direction::from_attribute(&Attribute::new("sendonly", "x")),
        None
    );
    assert_eq!(Direction::SendOnly.reversed(), Direction::RecvOnly);
    assert_eq!(Direction::Inactive.reversed(), Direction::Inactive);
    let r = Rtcp::parse("53020 IN IP6 ::1").unwrap();
    assert_eq!(r.port, 53020);
    assert_eq!(r.address.as_ref().unwrap().address, "::1");
    assert_eq!(Rtcp::from_attribute(&r.to_attribute()).unwrap(), r);
    for bad in ["", "x", "70000", "1 IN IP4", "1 IN IP4 a b"] {
        assert!(Rtcp::parse(bad).is_err(), "{bad}");
    }
    for s in [
        Setup::Active,
        Setup::Passive,
        Setup::ActPass,
        Setup::HoldConn,
    ] {
        assert_eq!(Setup::from_attribute(&s.to_attribute()).unwrap(), s);
    }
    assert_eq!(Setup::parse("ACTPASS").unwrap(), Setup::ActPass);
    assert!(Setup::parse("both").is_err());
}

#[test]
fn fingerprint_and_zrtp_hash() {
    let hex32 = vec!["AB"; 32].join(":");
    let f = Fingerprint::parse(&format!("sha-256 {hex32}")).unwrap();
    assert_eq!(f.value, vec![0xab; 32]);
    assert_eq!(f.to_string(), format!("SHA-256 {hex32}"));
    let bad_fp = [
        format!("sha-256 {}", vec!["AB"; 31].join(":")),
        format!("sha-1 {hex32}"),
        "sha-256".to_owned(),
        "sha-256 A:BB".to_owned(),
        "sha-256 +A:BB".to_owned(),
        "sha 256 AB".to_owned(),
    ];
    for bad in &bad_fp {
        assert!(Fingerprint::parse(bad).is_err(), "{bad}");
    }
    let h = "0123456789abcdef".repeat(4);
    let z = ZrtpHash::parse(&format!("1.10 {h}")).unwrap();
    assert_eq!(z.hash[0], 0x01);
    assert_eq!(
        z.to_attribute().value.as_deref(),
        Some(format!("1.10 {h}").as_str())
    );
    for bad in [
        format!("1.10 {}", &h[1..]),
        format!("110 {h}"),
        format!("1.10 {}g", &h[1..]),
        format!("1.10  {h}"),
    ] {
        assert!(ZrtpHash::parse(&bad).is_err(), "{bad}");
    }
}

#[test]
fn crypto_grammar_errors() {
    let k = "inline:d0RmdmcmVCspeEc3QGZiNWpVLFJhQX1cfHAwJSoj";
    let malformed = [
        "".to_owned(),
        "1".to_owned(),
        "x AES_CM_128_HMAC_SHA1_80 inline:x".to_owned(),
        "1234567890 AES_CM_128_HMAC_SHA1_80 ".to_owned() + k,
        "1 AES-CM AES".to_owned(),
        "1 AES_CM_128_HMAC_SHA1_80".to_owned(),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}|2^"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}|2^64"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}|x"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}|1:0"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}|1:129"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}|256:1"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}|1:4|2^20"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}|1:4|2:4"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}X"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k}A="),
        "1 AES_CM_128_HMAC_SHA1_80 inline:".to_owned(),
        format!("1 AES_256_CM_HMAC_SHA1_80 {k}"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k} KDR=25"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k} WSH=63"),
        format!("1 AES_CM_128_HMAC_SHA1_80 {k} FEC_ORDER=X"),
    ];
    for bad in &malformed {
        assert!(
            matches!(Crypto::parse(bad), Err(AttributeError::Malformed { .. })),
            "{bad}: {:?}",
            Crypto::parse(bad)
        );
    }
    let unsupported = [
        format!("1 AES_CM_128_HMAC_SHA1_80 uri:{k}"),
        format!("1 SEED_CTR_128_HMAC_SHA1_80 {k}"),
    ];
    for bad in &unsupported {
        assert!(
            matches!(Crypto::parse(bad), Err(AttributeError::Unsupported { .. })),
            "{bad}"
        );
    }
    // Several keys need MKIs of one length with distinct values.
    let two = |a: &str, b: &str| {
        Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {k}{a};{k}{b}")).unwrap()
    };
    assert!(two("|1:4", "|2:4").check_supported().is_ok());
    assert!(two("|1:4", "|1:4").check_supported().is_err());
    assert!(two("|1:4", "|2:2").check_supported().is_err());
    assert!(two("", "").check_supported().is_err());
    // Lifetime: decimal and 2^n, bounded by 2^48.
    let c = Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {k}|1000")).unwrap();
    assert_eq!(c.keys[0].lifetime.unwrap().packets(), Some(1000));
    assert!(c.check_supported().is_ok());
    let c = Crypto::parse(&format!("1 AES_CM_128_HMAC_SHA1_80 {k}|2^48")).unwrap();
    assert!(c.check_supported().is_ok());
    // Libsrtp's alias spelling decodes and is echoed as written.
    let key46 = "inline:".to_owned() + &"A".repeat(60) + "AA==";
    let c = Crypto::parse(&format!("1 AES_CM_256_HMAC_SHA1_80 {key46}")).unwrap();
    assert_eq!(
        c.check_supported().unwrap().name(),
        "AES_256_CM_HMAC_SHA1_80"
    );
    assert_eq!(c.suite_name, "AES_CM_256_HMAC_SHA1_80");
    // Unpadded base64 of a 46-byte key||salt is accepted too.
    let c2 = Crypto::parse(&format!(
        "1 AES_256_CM_HMAC_SHA1_80 inline:{}",
        "A".repeat(62)
    ))
    .unwrap();
    assert_eq!(c2.keys[0].master_key.len(), 32);
    assert_eq!(c2.keys[0].master_salt.len(), 14);
    // MKI bytes: big-endian in the declared length.
    assert_eq!(
        Mki {
            value: 0x0102,
            length: 3
        }
        .to_bytes(),
        vec![0, 1, 2]
    );
    assert_eq!(
        Mki {
            value: 1,
            length: 10
        }
        .to_bytes()
        .len(),
        10
    );
}
