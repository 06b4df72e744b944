//! Real-world-shaped offers (tests/fixtures/, written after what linphonec 5.1 sends, see
//! tests/fixtures/PROVENANCE.md): byte-identical round trips, typed attribute decoding, and
//! answers to them.

mod common;

use sotto_sdp::{
    Codec, Crypto, Direction, EncryptionMode, EncryptionPolicy, Fingerprint, LocalCapabilities,
    Refusal, Rtcp, Rtpmap, SdesSuite, Session, Setup, ZrtpHash, answer, process_answer,
    sdes_present,
};

const SDES: &str = "fixtures/linphone_sdes_offer.sdp";
const DTLS: &str = "fixtures/linphone_dtls_offer.sdp";

#[test]
fn fixtures_round_trip_byte_identical() {
    for f in [SDES, DTLS] {
        let body = common::read(f);
        assert!(
            body.ends_with(b"\r\n"),
            "{f} must keep CRLF (see .gitattributes)"
        );
        let s = Session::parse(&body).unwrap();
        let out = s.to_sdp().unwrap();
        assert_eq!(out.as_bytes(), &body[..], "{f}");
        // LF-only line ends (as some peers send) give the same model.
        let lf: Vec<u8> = String::from_utf8(body.clone())
            .unwrap()
            .replace("\r\n", "\n")
            .into_bytes();
        assert_eq!(Session::parse(&lf).unwrap(), s, "{f} with LF");
    }
}

#[test]
fn sdes_fixture_typed_attributes() {
    let s = Session::parse(&common::read(SDES)).unwrap();
    assert_eq!(s.origin.username, "alice");
    assert_eq!(
        s.attributes.len(),
        2,
        "session-level rtcp-xr and record kept"
    );
    let m = &s.media[0];
    assert_eq!(m.proto, "RTP/SAVP");
    assert!(m.is_savp());
    assert_eq!(m.formats, ["96", "97", "98", "0", "8", "101", "99", "100"]);
    let opus = Rtpmap::from_attribute(m.attribute("rtpmap").unwrap()).unwrap();
    assert_eq!(
        (opus.payload_type, opus.encoding.as_str(), opus.clock_rate),
        (96, "opus", 48000)
    );
    assert_eq!(opus.channels(), 2);
    let cryptos: Vec<Crypto> = m
        .attributes_named("crypto")
        .map(|a| Crypto::from_attribute(a).unwrap())
        .collect();
    let suites: Vec<SdesSuite> = cryptos
        .iter()
        .map(|c| c.check_supported().unwrap())
        .collect();
    assert_eq!(
        suites,
        [
            SdesSuite::AesCm128HmacSha1_80,
            SdesSuite::AesCm128HmacSha1_32,
            SdesSuite::Aes256CmHmacSha1_80,
            SdesSuite::Aes256CmHmacSha1_32
        ]
    );
    for (c, a) in cryptos.iter().zip(m.attributes_named("crypto")) {
        assert_eq!(
            c.tag as usize,
            cryptos.iter().position(|x| x == c).unwrap() + 1
        );
        let suite = c.suite().unwrap();
        assert_eq!(c.keys[0].master_key.len(), suite.key_len());
        assert_eq!(c.keys[0].master_salt.len(), suite.salt_len());
        // Padded base64 for the 46-byte AES-256 key||salt re-encodes identically.
        assert_eq!(Some(c.to_value().as_str()), a.value.as_deref());
    }
    // Debug never shows a key.
    let dbg = format!("{s:?} {cryptos:?}");
    for a in m.attributes_named("crypto") {
        let b64 = a.value.as_deref().unwrap().split("inline:").nth(1).unwrap();
        assert!(!dbg.contains(b64), "key leaked into Debug");
    }
    let z = ZrtpHash::from_attribute(m.attribute("zrtp-hash").unwrap()).unwrap();
    assert_eq!(z.version, "1.10");
    assert_eq!(z.to_attribute(), *m.attribute("zrtp-hash").unwrap());
    assert_eq!(
        Rtcp::from_attribute(m.attribute("rtcp").unwrap())
            .unwrap()
            .port,
        7101
    );
    assert_eq!(m.attributes_named("rtcp-fb").count(), 2);
    assert!(sdes_present(&common::read(SDES)));
    assert!(!sdes_present(&common::read(DTLS)));
}

#[test]
fn dtls_fixture_typed_attributes() {
    let s = Session::parse(&common::read(DTLS)).unwrap();
    let fp = Fingerprint::from_attribute(s.attribute("fingerprint").unwrap()).unwrap();
    assert_eq!(fp.hash_function, "sha-256");
    assert_eq!(fp.value.len(), 32);
    assert_eq!(fp.to_attribute(), *s.attribute("fingerprint").unwrap());
    let m = &s.media[0];
    assert_eq!(m.proto, "UDP/TLS/RTP/SAVP");
    assert!(m.is_savp());
    assert_eq!(
        Setup::from_attribute(m.attribute("setup").unwrap()).unwrap(),
        Setup::ActPass
    );
}

#[test]
fn answering_the_linphone_sdes_offer() {
    let offer = Session::parse(&common::read(SDES)).unwrap();
    let caps = LocalCapabilities::new("127.0.0.1", 7200);
    let policy = EncryptionPolicy::default();
    let (ans, neg, neg_keys) = answer(&offer, &caps, &policy, common::rng()).unwrap();
    // Offerer's payload types and order; opus/speex are not ours; telephone-event at 8 kHz.
    let pts: Vec<u8> = neg.codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, [0, 8]);
    assert_eq!(
        neg.telephone_event.as_ref().map(|t| t.payload_type),
        Some(100)
    );
    assert_eq!(ans.media[0].formats, ["0", "8", "100"]);
    assert_eq!(neg.remote_address, "127.0.0.1");
    assert_eq!((neg.remote_rtp_port, neg.remote_rtcp_port), (7100, 7101));
    assert!(!neg.rtcp_mux, "linphone did not offer rtcp-mux");
    assert_eq!(neg.direction, Direction::SendRecv);
    let k = neg_keys.as_ref().unwrap();
    assert_eq!((k.tag, k.suite), (1, SdesSuite::AesCm128HmacSha1_80));
    // The answer text carries exactly one a=crypto with tag 1 and our key.
    let text = ans.to_sdp().unwrap();
    assert_eq!(text.matches("a=crypto:").count(), 1);
    assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
    assert!(text.contains("m=audio 7200 RTP/SAVP 0 8 100\r\n"));
    // The offerer derives mirrored keys from our answer.
    let (back, back_keys) =
        process_answer(&offer, &Session::parse(text.as_bytes()).unwrap(), &policy).unwrap();
    let bk = back_keys.unwrap();
    assert_eq!(bk.local, k.remote[0]);
    assert_eq!(bk.remote, vec![k.local.clone()]);
    assert_eq!(
        back.codecs
            .iter()
            .map(|c| c.payload_type)
            .collect::<Vec<_>>(),
        [0, 8]
    );

    // With only AES-256 allowed, the answer picks tag 3.
    let mut only256 = caps.clone();
    only256.sdes_suites = vec![SdesSuite::Aes256CmHmacSha1_80];
    let (_, _, n_keys) = answer(&offer, &only256, &policy, common::rng()).unwrap();
    assert_eq!(n_keys.unwrap().tag, 3);
    // With only PCMA, PCMU is dropped.
    let mut pcma = caps.clone();
    pcma.codecs = vec![Codec::pcma()];
    let (_, n, _) = answer(&offer, &pcma, &policy, common::rng()).unwrap();
    assert_eq!(
        n.codecs.iter().map(|c| c.payload_type).collect::<Vec<_>>(),
        [8]
    );
    // With encryption disabled, the SAVP offer is refused.
    let none = EncryptionPolicy {
        mode: EncryptionMode::None,
        ..EncryptionPolicy::default()
    };
    assert_eq!(
        answer(&offer, &caps, &none, common::rng()).unwrap_err(),
        Refusal::EncryptionDisabled
    );
}

#[test]
fn dtls_offer_is_refused_until_dtls_srtp_exists() {
    let offer = Session::parse(&common::read(DTLS)).unwrap();
    let caps = LocalCapabilities::new("127.0.0.1", 7300);
    let err = answer(&offer, &caps, &EncryptionPolicy::default(), common::rng()).unwrap_err();
    assert_eq!(
        err,
        Refusal::UnsupportedTransport("UDP/TLS/RTP/SAVP".to_owned())
    );
    assert_eq!((err.status_code(), err.warning_code()), (488, 302));
    assert!(err.warning_text().contains("UDP/TLS/RTP/SAVP"));
}
