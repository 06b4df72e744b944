//! Property tests: serialize → parse is the identity on the model; parse never panics on
//! arbitrary or mutated bytes, and whatever parses re-serializes stably; typed a=crypto
//! values round-trip.

mod common;

use proptest::prelude::*;
use sotto_crypto::secret::SecretBytes;
use sotto_sdp::{
    Attribute, Bandwidth, Connection, Crypto, KeyParam, Lifetime, Media, Mki, Origin, SdesSuite,
    Session, SessionParam, Timing,
};

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9._+-]{0,9}"
}
fn field() -> impl Strategy<Value = String> {
    "[!-~]{1,12}"
}
fn text() -> impl Strategy<Value = String> {
    "[ -~é]{0,16}"
}

fn connection() -> impl Strategy<Value = Connection> {
    (token(), token(), field()).prop_map(|(n, a, ad)| Connection {
        net_type: n,
        addr_type: a,
        address: ad,
    })
}

fn bandwidth() -> impl Strategy<Value = Bandwidth> {
    (token(), any::<u64>()).prop_map(|(t, b)| Bandwidth {
        bw_type: t,
        bandwidth: b,
    })
}

fn attribute() -> impl Strategy<Value = Attribute> {
    (token(), proptest::option::of(text())).prop_map(|(n, v)| Attribute { name: n, value: v })
}

fn media() -> impl Strategy<Value = Media> {
    (
        token(),
        any::<u16>(),
        proptest::option::of(any::<u16>()),
        proptest::collection::vec(token(), 1..3),
        proptest::collection::vec(field(), 1..5),
        proptest::option::of(text()),
        proptest::collection::vec(connection(), 0..2),
        proptest::collection::vec(bandwidth(), 0..2),
        proptest::collection::vec(attribute(), 0..6),
    )
        .prop_map(
            |(kind, port, port_count, proto, formats, info, c, b, a)| Media {
                kind,
                port,
                port_count,
                proto: proto.join("/"),
                formats,
                info,
                connections: c,
                bandwidths: b,
                key: None,
                attributes: a,
            },
        )
}

prop_compose! {
    fn session()(
        username in field(),
        session_id in "[0-9]{1,20}",
        session_version in any::<u64>(),
        net in token(), addr_t in token(), addr in field(),
        name in text(),
        info in proptest::option::of(text()),
        uri in proptest::option::of(text()),
        emails in proptest::collection::vec(text(), 0..2),
        phones in proptest::collection::vec(text(), 0..2),
        connection in proptest::option::of(connection()),
        bandwidths in proptest::collection::vec(bandwidth(), 0..2),
        times in proptest::collection::vec(
            (any::<u64>(), any::<u64>(), proptest::collection::vec(text(), 0..2))
                .prop_map(|(start, stop, repeats)| Timing { start, stop, repeats }),
            1..3),
        time_zones in proptest::option::of(text()),
        attributes in proptest::collection::vec(attribute(), 0..5),
        media in proptest::collection::vec(media(), 0..4),
    ) -> Session {
        Session {
            origin: Origin { username, session_id, session_version, net_type: net,
                             addr_type: addr_t, address: addr },
            name, info, uri, emails, phones, connection, bandwidths, times, time_zones,
            key: None, attributes, media,
        }
    }
}

fn suite() -> impl Strategy<Value = SdesSuite> {
    proptest::sample::select(SdesSuite::ALL.to_vec())
}

fn crypto() -> impl Strategy<Value = Crypto> {
    (
        0u32..1_000_000_000,
        suite(),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 32 + 14),
                proptest::option::of(prop_oneof![
                    (0u8..64).prop_map(Lifetime::PowerOfTwo),
                    any::<u64>().prop_map(Lifetime::Packets),
                ]),
                proptest::option::of((1u8..=128, any::<u64>()).prop_map(|(length, v)| Mki {
                    value: if length < 8 {
                        v & ((1u64 << (8 * u32::from(length))) - 1)
                    } else {
                        v
                    },
                    length,
                })),
            ),
            1..4,
        ),
        proptest::collection::vec(
            prop_oneof![
                (0u8..=24).prop_map(SessionParam::Kdr),
                Just(SessionParam::UnencryptedSrtp),
                Just(SessionParam::UnencryptedSrtcp),
                Just(SessionParam::UnauthenticatedSrtp),
                any::<bool>().prop_map(|fec_first| SessionParam::FecOrder { fec_first }),
                (64u32..100_000).prop_map(SessionParam::Wsh),
                "-?[A-Z][A-Z0-9_]{0,8}".prop_map(SessionParam::Extension),
            ],
            0..4,
        ),
    )
        .prop_map(|(tag, suite, keys, session_params)| Crypto {
            tag,
            suite_name: suite.name().to_owned(),
            keys: keys
                .into_iter()
                .map(|(bytes, lifetime, mki)| KeyParam {
                    master_key: SecretBytes::from_slice(&bytes[..suite.key_len()]),
                    master_salt: SecretBytes::from_slice(
                        &bytes[suite.key_len()..suite.key_len() + suite.salt_len()],
                    ),
                    lifetime,
                    mki,
                })
                .collect(),
            session_params,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn serialize_then_parse_is_identity(s in session()) {
        let text = s.to_sdp().unwrap();
        let back = Session::parse(text.as_bytes());
        prop_assert!(back.is_ok(), "{:?}\n{}", back, text);
        let back = back.unwrap();
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.to_sdp().unwrap(), text);
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(s) = Session::parse(&b)
            && let Ok(t) = s.to_sdp()
        {
            prop_assert_eq!(Session::parse(t.as_bytes()).unwrap(), s);
        }
    }

    #[test]
    fn mutated_fixture_never_panics(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut b = common::read("fixtures/linphone_sdes_offer.sdp");
        for (i, v) in edits {
            let at = i.index(b.len());
            b[at] = v;
        }
        if let Ok(s) = Session::parse(&b) {
            if let Ok(t) = s.to_sdp() {
                prop_assert_eq!(Session::parse(t.as_bytes()).unwrap(), s.clone());
            }
            for m in &s.media {
                for a in &m.attributes {
                    let _ = Crypto::from_attribute(a).map(|c| c.check_supported());
                    let _ = sotto_sdp::Rtpmap::from_attribute(a);
                    let _ = sotto_sdp::ZrtpHash::from_attribute(a);
                    let _ = sotto_sdp::Rtcp::from_attribute(a);
                }
            }
        }
    }

    #[test]
    fn crypto_round_trip(c in crypto()) {
        let v = c.to_value();
        let back = Crypto::parse(&v);
        prop_assert!(back.is_ok(), "{:?} {}", back, v);
        prop_assert_eq!(back.unwrap(), c);
    }

    #[test]
    fn crypto_value_garbage_never_panics(v in "[ -~]{0,120}") {
        let _ = Crypto::parse(&v).map(|c| c.check_supported());
        let _ = sotto_sdp::Fingerprint::parse(&v);
        let _ = sotto_sdp::ZrtpHash::parse(&v);
        let _ = sotto_sdp::Rtpmap::parse(&v);
    }
}
