//! Offer/answer (RFC 3264) with SDES (RFC 4568 §7): keys match on both sides, policies,
//! codec intersection, direction, rtcp-mux, and refusals of bad offers and answers.

mod common;

use sotto_sdp::{
    Attribute, Codec, Crypto, Direction, EncryptionMode, EncryptionPolicy, LocalCapabilities,
    NegotiatedMedia, Refusal, SdesKeys, SdesSuite, Session, answer, create_offer, process_answer,
};

fn policy(mode: EncryptionMode, best_effort_sdes: bool) -> EncryptionPolicy {
    EncryptionPolicy {
        mode,
        best_effort_sdes,
    }
}

fn alice() -> LocalCapabilities {
    let mut c = LocalCapabilities::new("127.0.0.1", 7100);
    c.username = "alice".to_owned();
    c.session_id = "4242".to_owned();
    c
}

fn bob() -> LocalCapabilities {
    LocalCapabilities::new("::1", 7200)
}

/// One side's outcome: the negotiated stream and its SDES keys (`None`: plain RTP).
#[derive(Debug)]
struct Neg {
    media: NegotiatedMedia,
    keys: Option<SdesKeys>,
}

impl std::ops::Deref for Neg {
    type Target = NegotiatedMedia;
    fn deref(&self) -> &NegotiatedMedia {
        &self.media
    }
}

impl Neg {
    fn is_encrypted(&self) -> bool {
        self.keys.is_some()
    }
}

/// Runs offer → (text) → answer → (text) → process_answer.
fn round(
    a: &LocalCapabilities,
    pa: &EncryptionPolicy,
    b: &LocalCapabilities,
    pb: &EncryptionPolicy,
) -> Result<(Neg, Neg), Refusal> {
    let offer = create_offer(a, pa, common::rng()).unwrap();
    let offer = Session::parse(offer.to_sdp().unwrap().as_bytes()).unwrap();
    let (ans, nb, nb_keys) = answer(&offer, b, pb, common::rng())?;
    let ans = Session::parse(ans.to_sdp().unwrap().as_bytes()).unwrap();
    let (na, na_keys) = process_answer(&offer, &ans, pa)?;
    Ok((
        Neg {
            media: na,
            keys: na_keys,
        },
        Neg {
            media: nb,
            keys: nb_keys,
        },
    ))
}

fn assert_mirrored(na: &Neg, nb: &Neg) {
    let ka = na.keys.as_ref().expect("offerer has SRTP");
    let kb = nb.keys.as_ref().expect("answerer has SRTP");
    assert_eq!(ka.suite, kb.suite);
    assert_eq!(ka.tag, kb.tag);
    assert_eq!(
        ka.remote,
        vec![kb.local.clone()],
        "offerer receives with answerer's key"
    );
    assert_eq!(
        kb.remote,
        vec![ka.local.clone()],
        "answerer receives with offerer's key"
    );
    assert_ne!(ka.local.master_key.expose(), kb.local.master_key.expose());
}

#[test]
fn mandatory_round_trip_gives_matching_keys_for_every_suite() {
    let p = EncryptionPolicy::default();
    for suite in SdesSuite::ALL {
        let mut a = alice();
        a.sdes_suites = vec![suite];
        let (na, nb) = round(&a, &p, &bob(), &p).unwrap();
        assert_mirrored(&na, &nb);
        let k = na.keys.as_ref().unwrap();
        assert_eq!(k.suite, suite);
        assert_eq!(k.local.master_key.len(), suite.key_len());
        assert_eq!(k.local.master_salt.len(), suite.salt_len());
        assert_eq!(na.remote_address, "::1");
        assert_eq!(nb.remote_address, "127.0.0.1");
        assert_eq!((na.remote_rtp_port, nb.remote_rtp_port), (7200, 7100));
        assert!(na.rtcp_mux && nb.rtcp_mux);
        assert_eq!(na.remote_rtcp_port, 7200);
        assert_eq!(na.codecs, nb.codecs);
        assert_eq!(na.codecs[0].encoding, "PCMU");
        assert_eq!(na.telephone_event.as_ref().unwrap().payload_type, 101);
        assert_eq!(nb.remote_ptime, Some(20));
    }
}

#[test]
fn offer_contents_follow_policy() {
    let a = alice();
    let m = create_offer(&a, &EncryptionPolicy::default(), common::rng()).unwrap();
    let text = m.to_sdp().unwrap();
    assert!(text.starts_with("v=0\r\no=alice 4242 0 IN IP4 127.0.0.1\r\ns=-\r\n"));
    assert!(text.contains("m=audio 7100 RTP/SAVP 0 8 101\r\n"));
    assert!(text.contains("a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"));
    assert_eq!(text.matches("a=crypto:").count(), SdesSuite::ALL.len());
    for (i, a) in m.media[0].attributes_named("crypto").enumerate() {
        let c = Crypto::from_attribute(a).unwrap();
        assert_eq!(c.tag as usize, i + 1);
        assert_eq!(c.suite(), Some(SdesSuite::ALL[i]));
    }
    let opt = create_offer(&a, &policy(EncryptionMode::Optional, false), common::rng()).unwrap();
    assert_eq!(opt.media[0].proto, "RTP/AVP");
    assert!(opt.media[0].has_attribute("crypto"));
    let none = create_offer(&a, &policy(EncryptionMode::None, false), common::rng()).unwrap();
    assert_eq!(none.media[0].proto, "RTP/AVP");
    assert!(!none.media[0].has_attribute("crypto"));
    // Two offers never share a key.
    let m2 = create_offer(&a, &EncryptionPolicy::default(), common::rng()).unwrap();
    assert_ne!(m.media[0].attributes, m2.media[0].attributes);
}

#[test]
fn mandatory_answerer_refuses_plain_offer_with_488() {
    let err = round(
        &alice(),
        &policy(EncryptionMode::None, false),
        &bob(),
        &EncryptionPolicy::default(),
    )
    .unwrap_err();
    assert_eq!(err, Refusal::EncryptionRequired);
    assert_eq!(err.status_code(), 488);
    assert_eq!(err.warning_code(), 399);
    assert!(
        err.warning_text().contains("mandatory"),
        "{}",
        err.warning_text()
    );
}

#[test]
fn best_effort_sdes_on_avp_is_explicit() {
    let opt = policy(EncryptionMode::Optional, false);
    // Optional answerer without best effort: a=crypto on RTP/AVP ignored, plain RTP.
    let (na, nb) = round(&alice(), &opt, &bob(), &opt).unwrap();
    assert!(!na.is_encrypted() && !nb.is_encrypted());
    // With best effort: SRTP.
    let be = policy(EncryptionMode::Optional, true);
    let (na, nb) = round(&alice(), &opt, &bob(), &be).unwrap();
    assert_mirrored(&na, &nb);
    // Mandatory answerer with best effort accepts RTP/AVP + a=crypto as SRTP...
    let mbe = policy(EncryptionMode::Mandatory, true);
    let (na, nb) = round(&alice(), &opt, &bob(), &mbe).unwrap();
    assert_mirrored(&na, &nb);
    // ...and without best effort refuses it.
    assert_eq!(
        round(&alice(), &opt, &bob(), &EncryptionPolicy::default()).unwrap_err(),
        Refusal::EncryptionRequired
    );
    // Plain offer to an optional answerer: plain.
    let (na, nb) = round(&alice(), &policy(EncryptionMode::None, false), &bob(), &opt).unwrap();
    assert!(!na.is_encrypted() && !nb.is_encrypted());
}

#[test]
fn encryption_disabled_answerer_refuses_savp() {
    let err = round(
        &alice(),
        &EncryptionPolicy::default(),
        &bob(),
        &policy(EncryptionMode::None, false),
    )
    .unwrap_err();
    assert_eq!(err, Refusal::EncryptionDisabled);
}

#[test]
fn no_common_suite_is_refused_naming_the_offer() {
    let mut a = alice();
    a.sdes_suites = vec![SdesSuite::AeadAes256Gcm];
    let mut b = bob();
    b.sdes_suites = vec![SdesSuite::AesCm128HmacSha1_80];
    let p = EncryptionPolicy::default();
    let err = round(&a, &p, &b, &p).unwrap_err();
    match &err {
        Refusal::NoSupportedCrypto { offered, .. } => assert_eq!(offered, "AEAD_AES_256_GCM"),
        e => panic!("{e:?}"),
    }
    assert_eq!((err.status_code(), err.warning_code()), (488, 306));
    assert!(err.warning_text().contains("AEAD_AES_256_GCM"));
}

fn offer_with_cryptos(cryptos: &[&str]) -> Session {
    let mut s = create_offer(&alice(), &EncryptionPolicy::default(), common::rng()).unwrap();
    s.media[0].attributes.retain(|a| !a.is("crypto"));
    for c in cryptos {
        s.media[0].attributes.push(Attribute::new("crypto", *c));
    }
    s
}

#[test]
fn unsupported_crypto_lines_are_skipped_and_reported() {
    let p = EncryptionPolicy::default();
    let key = "inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm";
    let unsupported = [
        format!("1 F8_128_HMAC_SHA1_80 {key}"),
        format!("2 AES_CM_128_HMAC_SHA1_80 {key} UNENCRYPTED_SRTP"),
        format!("3 AES_CM_128_HMAC_SHA1_80 {key} UNAUTHENTICATED_SRTP"),
        format!("4 AES_CM_128_HMAC_SHA1_80 {key} KDR=10"),
        format!("5 AES_CM_128_HMAC_SHA1_80 {key} FEC_KEY={key}"),
        format!("6 AES_CM_128_HMAC_SHA1_80 {key} FANCY_NEW_PARAM"),
        format!("7 AES_CM_128_HMAC_SHA1_80 {key}|2^49"),
        format!("8 NOT_A_SUITE {key}"),
    ];
    for bad in &unsupported {
        let offer = offer_with_cryptos(&[bad.as_str()]);
        let err = answer(&offer, &bob(), &p, common::rng()).unwrap_err();
        match &err {
            Refusal::NoSupportedCrypto {
                first_error: Some(e),
                ..
            } => {
                let t = e.to_string();
                assert!(t.contains("unsupported"), "{bad}: {t}");
            }
            e => panic!("{bad}: {e:?}"),
        }
    }
    // Followed by a good one, the good one is chosen; optional `-` extensions and WSH,
    // KDR=0 and FEC_ORDER=FEC_SRTP are accepted.
    let good =
        format!("9 AES_CM_128_HMAC_SHA1_32 {key}|2^31|7:2 WSH=128 KDR=0 -X FEC_ORDER=FEC_SRTP");
    let mut all: Vec<&str> = unsupported.iter().map(String::as_str).collect();
    all.push(&good);
    let offer = offer_with_cryptos(&all);
    let (_, _, n_keys) = answer(&offer, &bob(), &p, common::rng()).unwrap();
    let k = n_keys.unwrap();
    assert_eq!((k.tag, k.suite), (9, SdesSuite::AesCm128HmacSha1_32));
    assert_eq!(k.remote[0].mki.unwrap().to_bytes(), vec![0, 7]);
    assert!(k.local.mki.is_none());
}

#[test]
fn codec_intersection_keeps_offerer_numbers_and_order() {
    let mut a = alice();
    a.codecs = vec![
        Codec::new(96, "opus", 48000),
        Codec::pcma(),
        Codec::new(97, "pcmu", 8000), // dynamic number, lower case: still PCMU
    ];
    a.codecs[0].channels = 2;
    a.telephone_event = Some(Codec::telephone_event(120));
    let p = EncryptionPolicy::default();
    let (na, nb) = round(&a, &p, &bob(), &p).unwrap();
    let pts: Vec<u8> = nb.codecs.iter().map(|c| c.payload_type).collect();
    assert_eq!(pts, [8, 97]);
    assert_eq!(na.codecs, nb.codecs);
    assert_eq!(nb.telephone_event.as_ref().unwrap().payload_type, 120);
    // No telephone-event on one side: none negotiated.
    let mut b = bob();
    b.telephone_event = None;
    let (na, nb) = round(&a, &p, &b, &p).unwrap();
    assert!(na.telephone_event.is_none() && nb.telephone_event.is_none());
    // Nothing in common: 488 with warning 305.
    let mut only_opus = alice();
    only_opus.codecs = vec![Codec::new(96, "opus", 48000)];
    let err = round(&only_opus, &p, &bob(), &p).unwrap_err();
    assert_eq!(err, Refusal::NoCommonCodec);
    assert_eq!(err.warning_code(), 305);
}

#[test]
fn direction_and_rtcp_mux_negotiation() {
    let p = EncryptionPolicy::default();
    let cases = [
        (
            Direction::SendRecv,
            Direction::SendRecv,
            Direction::SendRecv,
            Direction::SendRecv,
        ),
        (
            Direction::SendOnly,
            Direction::SendRecv,
            Direction::SendOnly,
            Direction::RecvOnly,
        ),
        (
            Direction::RecvOnly,
            Direction::SendRecv,
            Direction::RecvOnly,
            Direction::SendOnly,
        ),
        (
            Direction::SendRecv,
            Direction::RecvOnly,
            Direction::SendOnly,
            Direction::RecvOnly,
        ),
        (
            Direction::Inactive,
            Direction::SendRecv,
            Direction::Inactive,
            Direction::Inactive,
        ),
        (
            Direction::SendOnly,
            Direction::SendOnly,
            Direction::Inactive,
            Direction::Inactive,
        ),
    ];
    for (da, db, want_a, want_b) in cases {
        let mut a = alice();
        a.direction = da;
        let mut b = bob();
        b.direction = db;
        let (na, nb) = round(&a, &p, &b, &p).unwrap();
        assert_eq!(
            (na.direction, nb.direction),
            (want_a, want_b),
            "{da:?} x {db:?}"
        );
    }
    let mut b = bob();
    b.rtcp_mux = false;
    let (na, nb) = round(&alice(), &p, &b, &p).unwrap();
    assert!(!na.rtcp_mux && !nb.rtcp_mux);
    assert_eq!(na.remote_rtcp_port, 7201);
    assert_eq!(nb.remote_rtcp_port, 7101);
}

#[test]
fn other_streams_are_rejected_with_port_zero() {
    let p = EncryptionPolicy::default();
    let mut offer = create_offer(&alice(), &p, common::rng()).unwrap();
    let mut video = sotto_sdp::Media::new("video", 9000, "RTP/SAVP");
    video.formats = vec!["96".to_owned()];
    offer.media.insert(0, video);
    let audio2 = offer.media[1].clone();
    offer.media.push(audio2);
    let (ans, n, n_keys) = answer(&offer, &bob(), &p, common::rng()).unwrap();
    assert_eq!(n.media_index, 1);
    let ports: Vec<u16> = ans.media.iter().map(|m| m.port).collect();
    assert_eq!(ports, [0, 7200, 0]);
    assert_eq!(ans.media[0].formats, ["96"]);
    let (back, back_keys) = process_answer(&offer, &ans, &p).unwrap();
    let back = Neg {
        media: back,
        keys: back_keys,
    };
    let n = Neg {
        media: n,
        keys: n_keys,
    };
    assert_eq!(back.media_index, 1);
    assert_mirrored(&back, &n);
}

#[test]
fn bad_answers_are_refused() {
    let p = EncryptionPolicy::default();
    let offer = create_offer(&alice(), &p, common::rng()).unwrap();
    let (good, _, _) = answer(&offer, &bob(), &p, common::rng()).unwrap();
    let edit = |f: &dyn Fn(&mut Session)| {
        let mut a = good.clone();
        f(&mut a);
        process_answer(&offer, &a, &p).unwrap_err()
    };
    assert_eq!(
        edit(&|a| a.media.push(a.media[0].clone())),
        Refusal::AnswerMismatch("number of m= lines")
    );
    assert_eq!(
        edit(&|a| a.media[0].formats.push("18".to_owned())),
        Refusal::AnswerMismatch("format not offered")
    );
    assert_eq!(
        edit(&|a| a.media[0].proto = "RTP/AVP".to_owned()),
        Refusal::AnswerMismatch("transport protocol")
    );
    assert_eq!(
        edit(&|a| a.media[0].attributes.retain(|x| !x.is("crypto"))),
        Refusal::EncryptionRequired
    );
    let retag = |tag: &'static str, suite: &'static str| {
        move |a: &mut Session| {
            for x in a.media[0].attributes.iter_mut().filter(|x| x.is("crypto")) {
                let v = x.value.take().unwrap();
                let rest = v
                    .split_once(' ')
                    .unwrap()
                    .1
                    .split_once(' ')
                    .unwrap()
                    .1
                    .to_owned();
                x.value = Some(format!("{tag} {suite} {rest}"));
            }
        }
    };
    assert_eq!(
        edit(&retag("99", "AES_CM_128_HMAC_SHA1_80")),
        Refusal::AnswerMismatch("a=crypto tag not offered")
    );
    assert_eq!(
        edit(&retag("1", "AES_CM_128_HMAC_SHA1_32")),
        Refusal::AnswerMismatch("a=crypto suite differs from the offer")
    );
    assert!(matches!(
        edit(&|a| {
            let c = a.media[0].attribute("crypto").unwrap().clone();
            a.media[0].attributes.push(c);
        }),
        Refusal::AnswerMismatch("more than one a=crypto")
    ));
    assert!(matches!(
        edit(&retag("1", "AES_CM_128_HMAC_SHA1_80 inline:AAAA")),
        Refusal::AnswerCrypto(_)
    ));
    // All streams rejected: no audio.
    assert_eq!(edit(&|a| a.media[0].port = 0), Refusal::NoAudio);
}

/// One outcome per m= line: the audio stream accepted, video declined with port 0 (sotto has
/// no video yet); the keying is the caller's (here nothing).
#[test]
fn every_m_line_gets_an_outcome_and_video_is_declined() {
    let text = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                m=audio 7100 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n\
                m=video 7102 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n";
    let offer = Session::parse(text.as_bytes()).unwrap();
    let mut keying = |_: &Session, m: &sotto_sdp::Media| {
        assert_eq!(
            m.kind, "audio",
            "keying is asked for the stream being accepted"
        );
        Ok(Vec::new())
    };
    let a = sotto_sdp::answer_with(&offer, &bob(), &mut keying).unwrap();
    assert_eq!(a.session.media.len(), 2);
    assert_eq!(a.session.media[1].port, 0, "video declined with port 0");
    assert_eq!(a.session.media[1].formats, ["96"]);
    assert!(matches!(
        &a.streams[1],
        sotto_sdp::StreamOutcome::Declined { index: 1, kind, refusal: None } if kind == "video"
    ));
    let audio = sotto_sdp::audio_stream(&a.streams).unwrap();
    assert_eq!((audio.media_index, audio.profile.as_str()), (0, "RTP/AVP"));
    // The offerer sees the same: its audio accepted, video declined.
    let back = sotto_sdp::answered(&offer, &a.session).unwrap();
    assert!(back[0].accepted().is_some() && back[1].accepted().is_none());
    // A refusal by the keying declines the stream, and with no audio left the offer fails.
    let mut refuse = |_: &Session, _: &sotto_sdp::Media| Err(Refusal::EncryptionRequired);
    assert_eq!(
        sotto_sdp::answer_with(&offer, &bob(), &mut refuse).unwrap_err(),
        Refusal::EncryptionRequired
    );
}
