//! Property: unprotect ∘ protect is the identity, for every suite and any RTP/RTCP packet
//! (CSRCs, header extensions, any payload), and a protected payload differs from the clear
//! one whenever it is long enough to tell.

use proptest::prelude::*;
use sotto_media::srtp::{SrtpPolicy, SrtpSession, SrtpSuite};

fn suite() -> impl Strategy<Value = SrtpSuite> {
    prop::sample::select(SrtpSuite::ALL.to_vec())
}

fn rtp_packet() -> impl Strategy<Value = Vec<u8>> {
    (
        0u8..4,
        any::<bool>(),
        0u16..3,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(cc, x, ext_words, seq, ts, ssrc, payload)| {
            let mut p = vec![0x80 | cc | if x { 0x10 } else { 0 }, 96];
            p.extend_from_slice(&seq.to_be_bytes());
            p.extend_from_slice(&ts.to_be_bytes());
            p.extend_from_slice(&ssrc.to_be_bytes());
            for i in 0..cc {
                p.extend_from_slice(&[i; 4]);
            }
            if x {
                p.extend_from_slice(&[0xbe, 0xde]);
                p.extend_from_slice(&ext_words.to_be_bytes());
                p.extend(std::iter::repeat_n(0x11, 4 * usize::from(ext_words)));
            }
            p.extend_from_slice(&payload);
            p
        })
}

fn session(suite: SrtpSuite, key_seed: u8, mki: bool, enc: bool) -> SrtpSession {
    let key: Vec<u8> = (0..suite.master_key_len() as u8)
        .map(|i| i ^ key_seed)
        .collect();
    let salt: Vec<u8> = (0..suite.master_salt_len() as u8)
        .map(|i| i.wrapping_mul(3))
        .collect();
    let mut p = SrtpPolicy::new(suite, &key, &salt);
    p.danger_allow_null_cipher = true;
    p.encrypt_rtp = enc;
    p.encrypt_rtcp = enc;
    if mki {
        p = p.with_mki(&[7, 7, 7]);
    }
    SrtpSession::new(sotto_crypto_rust::provider(), p).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn rtp_round_trip(suite in suite(), pkt in rtp_packet(), seed in any::<u8>(), mki in any::<bool>(), enc in any::<bool>()) {
        let mut tx = session(suite, seed, mki, enc);
        let mut rx = session(suite, seed, mki, enc);
        let mut buf = vec![0u8; pkt.len() + tx.rtp_overhead()];
        buf[..pkt.len()].copy_from_slice(&pkt);
        let n = tx.protect_rtp(&mut buf, pkt.len()).unwrap();
        prop_assert_eq!(n, pkt.len() + tx.rtp_overhead());
        let hl = sotto_media::rtp::RtpHeader::parse(&pkt).unwrap().header_len;
        prop_assert_eq!(&buf[..hl], &pkt[..hl]);
        if enc && !suite.is_null_cipher() && pkt.len() - hl >= 8 {
            prop_assert_ne!(&buf[hl..pkt.len()], &pkt[hl..]);
        }
        let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
        prop_assert_eq!(&buf[..m], &pkt[..]);
    }

    #[test]
    fn rtcp_round_trip(suite in suite(), body in prop::collection::vec(any::<u8>(), 0..200), ssrc in any::<u32>(), mki in any::<bool>(), enc in any::<bool>()) {
        let mut pkt = vec![0x80, 200, 0, 0];
        pkt.extend_from_slice(&ssrc.to_be_bytes());
        pkt.extend_from_slice(&body);
        let mut tx = session(suite, 1, mki, enc);
        let mut rx = session(suite, 1, mki, enc);
        let mut buf = vec![0u8; pkt.len() + tx.rtcp_overhead()];
        buf[..pkt.len()].copy_from_slice(&pkt);
        let n = tx.protect_rtcp(&mut buf, pkt.len()).unwrap();
        prop_assert_eq!(n, pkt.len() + tx.rtcp_overhead());
        let m = rx.unprotect_rtcp(&mut buf[..n]).unwrap();
        prop_assert_eq!(&buf[..m], &pkt[..]);
    }

    /// Arbitrary bytes never panic either unprotect path, for any suite.
    #[test]
    fn arbitrary_bytes_never_panic(suite in suite(), bytes in prop::collection::vec(any::<u8>(), 0..120), mki in any::<bool>()) {
        let mut rx = session(suite, 0, mki, true);
        let mut a = bytes.clone();
        let _ = rx.unprotect_rtp(&mut a);
        let mut b = bytes;
        let _ = rx.unprotect_rtcp(&mut b);
    }
}
