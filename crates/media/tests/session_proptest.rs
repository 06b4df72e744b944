//! Property tests: RTP and RTCP write → parse round trips, and no input (random datagrams on
//! either port, random RTCP, WAV or telephone-event bytes) panics a parser or a session.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use proptest::prelude::*;
use sotto_crypto::rng::SecureRandom;
use sotto_media::audio::{Codec, FRAME_SAMPLES, TelephoneEvent, Wav};
use sotto_media::session::packet::RtpPacket;
use sotto_media::session::rtcp::{self, ReportBlock, RtcpPacket, SenderInfo};
use sotto_media::session::{Channel, MediaConfig, NoProtection, RtpSession};

/// The base instant of a test; every later time is computed from it (virtual time).
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

#[derive(Debug)]
struct FixedRng;

impl SecureRandom for FixedRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), sotto_crypto::Error> {
        dest.fill(3);
        Ok(())
    }
}

fn block() -> impl Strategy<Value = ReportBlock> {
    (
        any::<u32>(),
        any::<u8>(),
        -0x80_0000i32..=0x7f_ffff,
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
        any::<u32>(),
    )
        .prop_map(
            |(ssrc, fraction_lost, cumulative_lost, highest_seq, jitter, lsr, dlsr)| ReportBlock {
                ssrc,
                fraction_lost,
                cumulative_lost,
                highest_seq,
                jitter,
                lsr,
                dlsr,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rtp_round_trip(
        marker: bool,
        pt in 0u8..128,
        seq: u16,
        timestamp: u32,
        ssrc: u32,
        payload in proptest::collection::vec(any::<u8>(), 0..300),
    ) {
        let p = RtpPacket { marker, payload_type: pt, seq, timestamp, ssrc, payload: &payload };
        let mut buf = [0u8; 400];
        let n = p.write(&mut buf).unwrap();
        prop_assert_eq!(n, 12 + payload.len());
        prop_assert_eq!(RtpPacket::parse(&buf[..n]).unwrap(), p);
        prop_assert_eq!(p.write(&mut buf[..n - 1]), None);
    }

    #[test]
    fn rtcp_round_trip(
        ssrc: u32,
        ntp: u64,
        rtp_timestamp: u32,
        packet_count: u32,
        octet_count: u32,
        blocks in proptest::collection::vec(block(), 0..5),
        cname in "[a-z0-9@.]{0,40}",
        reason in proptest::option::of("[ -~]{1,30}"),
        sender: bool,
    ) {
        let info = SenderInfo { ntp, rtp_timestamp, packet_count, octet_count };
        let mut buf = [0u8; 1024];
        let mut n = if sender {
            rtcp::write_sr(&mut buf, ssrc, &info, &blocks).unwrap()
        } else {
            rtcp::write_rr(&mut buf, ssrc, &blocks).unwrap()
        };
        n += rtcp::write_sdes_cname(&mut buf[n..], ssrc, &cname).unwrap();
        n += rtcp::write_bye(&mut buf[n..], ssrc, reason.as_deref()).unwrap();
        let first = if sender {
            RtcpPacket::SenderReport { ssrc, info, reports: blocks.clone() }
        } else {
            RtcpPacket::ReceiverReport { ssrc, reports: blocks.clone() }
        };
        prop_assert_eq!(
            rtcp::parse_compound(&buf[..n]).unwrap(),
            vec![
                first,
                RtcpPacket::SourceDescription { chunks: vec![(ssrc, Some(cname))] },
                RtcpPacket::Bye { ssrcs: vec![ssrc], reason },
            ]
        );
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = RtpPacket::parse(&bytes);
        let _ = rtcp::parse_compound(&bytes);
        let _ = TelephoneEvent::parse(&bytes);
        let mut riff = b"RIFF\0\0\0\0WAVE".to_vec();
        riff.extend_from_slice(&bytes);
        if let Ok(w) = Wav::parse(&riff) {
            let _ = w.to_8k_mono();
        }
        let _ = Wav::parse(&bytes);
    }

    #[test]
    fn sessions_never_panic(
        datagrams in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..400), any::<bool>(), 0u64..200),
            1..40,
        ),
        mux: bool,
        latching: bool,
        // Bias some datagrams towards plausible RTP/RTCP headers.
        shape in proptest::collection::vec(0u8..4, 40),
    ) {
        let t0 = t0();
        let src: SocketAddr = "127.0.0.1:45000".parse().unwrap();
        let cfg = MediaConfig {
            rtcp_mux: mux,
            latching,
            rtcp_interval: Duration::from_millis(500),
            ..MediaConfig::to(src, Codec::Pcma)
        };
        let wall = SystemTime::UNIX_EPOCH;
        let mut s = RtpSession::new(cfg, Box::new(NoProtection::new()), &FixedRng, t0, wall).unwrap();
        let mut now = t0;
        let mut out = [0i16; FRAME_SAMPLES];
        let mut buf = [0u8; 1500];
        for ((mut d, rtcp_port, dt), shape) in datagrams.into_iter().zip(shape) {
            match (shape, d.len()) {
                (1, 2..) => { d[0] = 0x80; d[1] = (d[1] & 0x80) | (d[1] & 0x08); }
                (2, 2..) => { d[0] = 0x80 | (d[0] & 0x1f); d[1] = 200 + (d[1] % 4); }
                (3, 2..) => { d[0] = 0x80; d[1] = 101; }
                _ => {}
            }
            now += Duration::from_millis(dt);
            let ch = if rtcp_port { Channel::Rtcp } else { Channel::Rtp };
            let _ = s.handle_receive(now, src, ch, &mut d);
            while s.poll_audio(now, &mut out).is_some() {}
            while let Ok(Some(_)) = s.poll_transmit(now, &mut buf) {}
        }
        let st = s.stats();
        prop_assert!(st.packets_received + st.packets_dropped + st.packets_duplicate + st.rtcp_received <= 40);
        let _ = s.close(now, "end", &mut buf);
    }
}
