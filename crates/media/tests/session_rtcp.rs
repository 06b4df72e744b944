//! RTCP: SR/RR/SDES/BYE write → parse round trips and malformed input; a session pair
//! exchanging reports on virtual time (loss, jitter and round-trip time as the peer sees
//! them); RTCP multiplexed on the RTP port (RFC 5761) or on its own port; BYE.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::rng::SecureRandom;
use sotto_media::audio::{Codec, FRAME_SAMPLES};
use sotto_media::session::rtcp::{
    self, PT_BYE, PT_RR, PT_SDES, PT_SR, ReportBlock, RtcpError, RtcpPacket, SenderInfo,
};
use sotto_media::session::{
    Channel, MediaConfig, NoProtection, Protection, Received, RtpSession, SrtpProtection, Transmit,
};
use sotto_media::srtp::{SrtpPolicy, SrtpSession, SrtpSuite};

/// The base instant of a test; every later time is computed from it (virtual time).
#[allow(clippy::disallowed_methods)]
fn t0() -> Instant {
    Instant::now()
}

/// A fixed wall-clock time for RTCP NTP timestamps.
fn wall() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

#[derive(Debug)]
struct FixedRng(u8);

impl SecureRandom for FixedRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), sotto_crypto::Error> {
        for (i, b) in dest.iter_mut().enumerate() {
            *b = self.0.wrapping_add((i as u8).wrapping_mul(29));
        }
        Ok(())
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn sr_rr_sdes_bye_round_trip() {
    let blocks = [
        ReportBlock {
            ssrc: 0x0102_0304,
            fraction_lost: 25,
            cumulative_lost: 1234,
            highest_seq: 0x0001_0005,
            jitter: 77,
            lsr: 0xdead_beef,
            dlsr: 65536,
        },
        ReportBlock {
            ssrc: 9,
            fraction_lost: 0,
            cumulative_lost: -3, // duplicates can make it negative (24-bit signed)
            highest_seq: 100,
            jitter: 0,
            lsr: 0,
            dlsr: 0,
        },
    ];
    let info = SenderInfo {
        ntp: 0xe8f0_1234_8000_0000,
        rtp_timestamp: 160_000,
        packet_count: 1000,
        octet_count: 160_000,
    };
    let mut buf = [0u8; 512];
    let mut n = rtcp::write_sr(&mut buf, 0xaabb_ccdd, &info, &blocks).unwrap();
    assert_eq!(n, 28 + 48);
    assert_eq!(buf[0], 0x82); // V=2, RC=2
    assert_eq!(buf[1], PT_SR);
    assert_eq!(u16::from_be_bytes([buf[2], buf[3]]) as usize, n / 4 - 1);
    // Block 2's cumulative loss -3 is 0xfffffd in 24 bits.
    assert_eq!(&buf[28 + 24 + 5..28 + 24 + 8], &[0xff, 0xff, 0xfd]);
    n += rtcp::write_sdes_cname(&mut buf[n..], 0xaabb_ccdd, "alice@example.test").unwrap();
    n += rtcp::write_bye(&mut buf[n..], 0xaabb_ccdd, Some("hangup")).unwrap();
    assert_eq!(n % 4, 0);
    let parsed = rtcp::parse_compound(&buf[..n]).unwrap();
    assert_eq!(
        parsed,
        vec![
            RtcpPacket::SenderReport {
                ssrc: 0xaabb_ccdd,
                info,
                reports: blocks.to_vec()
            },
            RtcpPacket::SourceDescription {
                chunks: vec![(0xaabb_ccdd, Some("alice@example.test".to_owned()))]
            },
            RtcpPacket::Bye {
                ssrcs: vec![0xaabb_ccdd],
                reason: Some("hangup".to_owned())
            },
        ]
    );

    let m = rtcp::write_rr(&mut buf, 7, &blocks[..1]).unwrap();
    assert_eq!((m, buf[0], buf[1]), (32, 0x81, PT_RR));
    let k = rtcp::write_bye(&mut buf[m..], 7, None).unwrap();
    assert_eq!(k, 8);
    assert_eq!(
        rtcp::parse_compound(&buf[..m + k]).unwrap(),
        vec![
            RtcpPacket::ReceiverReport {
                ssrc: 7,
                reports: blocks[..1].to_vec()
            },
            RtcpPacket::Bye {
                ssrcs: vec![7],
                reason: None
            },
        ]
    );
    // SDES CNAME lengths that hit every padding case.
    for len in 0..10 {
        let name = "x".repeat(len);
        let n = rtcp::write_sdes_cname(&mut buf, 1, &name).unwrap();
        assert_eq!(n % 4, 0);
        assert_eq!(buf[1], PT_SDES);
        assert_eq!(
            rtcp::parse_compound(&buf[..n]).unwrap(),
            vec![RtcpPacket::SourceDescription {
                chunks: vec![(1, Some(name))]
            }]
        );
    }
    // Report counts are capped at 31 (5 bits).
    let many = vec![ReportBlock::default(); 40];
    let mut big = [0u8; 1024];
    let n = rtcp::write_rr(&mut big, 1, &many).unwrap();
    assert_eq!(n, 8 + 31 * 24);
    // Too small a buffer: None, no panic.
    assert_eq!(rtcp::write_sr(&mut buf[..50], 1, &info, &blocks), None);
    assert_eq!(
        rtcp::write_bye(&mut buf[..10], 1, Some("long reason")),
        None
    );
}

#[test]
fn malformed_compounds_are_refused() {
    let mut buf = [0u8; 128];
    let n = rtcp::write_rr(&mut buf, 5, &[ReportBlock::default()]).unwrap();
    assert_eq!(rtcp::parse_compound(&[]), Err(RtcpError::Empty));
    assert_eq!(
        rtcp::parse_compound(&buf[..n - 1]),
        Err(RtcpError::Truncated { offset: 0 })
    );
    let mut bad = buf[..n].to_vec();
    bad[0] = 0x41;
    assert_eq!(rtcp::parse_compound(&bad), Err(RtcpError::BadVersion(1)));
    // A report count larger than the packet holds.
    let mut bad = buf[..n].to_vec();
    bad[0] = 0x82;
    assert_eq!(
        rtcp::parse_compound(&bad),
        Err(RtcpError::Truncated { offset: 0 })
    );
    // Padding is allowed only on the last packet, and must fit.
    let mut two = buf[..n].to_vec();
    two.extend_from_slice(&buf[..n]);
    two[0] |= 0x20;
    assert_eq!(
        rtcp::parse_compound(&two),
        Err(RtcpError::BadPadding { offset: 0 })
    );
    // A valid padded last packet: BYE + 4 octets of padding.
    let mut padded = vec![0xa1, PT_BYE, 0, 2, 0, 0, 0, 5, 0, 0, 0, 4];
    assert_eq!(
        rtcp::parse_compound(&padded).unwrap(),
        vec![RtcpPacket::Bye {
            ssrcs: vec![5],
            reason: None
        }]
    );
    padded[11] = 0;
    assert_eq!(
        rtcp::parse_compound(&padded),
        Err(RtcpError::BadPadding { offset: 0 })
    );
    // An unknown type is skipped, not refused.
    let app = [0x80, 204, 0, 1, 0, 0, 0, 1];
    assert_eq!(
        rtcp::parse_compound(&app).unwrap(),
        vec![RtcpPacket::Other { packet_type: 204 }]
    );
    // No prefix or bit flip of a valid compound panics.
    let mut full = [0u8; 256];
    let mut n = rtcp::write_sr(
        &mut full,
        1,
        &SenderInfo::default(),
        &[ReportBlock::default()],
    )
    .unwrap();
    n += rtcp::write_sdes_cname(&mut full[n..], 1, "abc").unwrap();
    n += rtcp::write_bye(&mut full[n..], 1, Some("r")).unwrap();
    for k in 0..n {
        let _ = rtcp::parse_compound(&full[..k]);
        for bit in 0..8 {
            let mut f = full[..n].to_vec();
            f[k] ^= 1 << bit;
            let _ = rtcp::parse_compound(&f);
        }
    }
}

#[test]
fn ntp_timestamps() {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_500);
    let ntp = rtcp::ntp_timestamp(t);
    assert_eq!(ntp >> 32, 2_208_988_800 + 1);
    assert_eq!(ntp as u32, 0x8000_0000);
    assert_eq!(
        rtcp::ntp_middle(ntp),
        ((2_208_988_801u64 & 0xffff) << 16) as u32 | 0x8000
    );
}

struct Pair {
    a: RtpSession,
    b: RtpSession,
    /// RTCP packets each side sent, in clear, parsed.
    a_reports: Vec<(Transmit, Vec<RtcpPacket>)>,
    b_reports: Vec<(Transmit, Vec<RtcpPacket>)>,
    lost: u64,
}

/// A sends audio to B for `secs` (every `loss_every`-th packet lost), both exchange RTCP
/// every ~second; one-way delay 30 ms. RTCP is parsed from the wire only in clear.
fn run_pair(
    mux: bool,
    secs: u64,
    loss_every: u64,
    prot: (Box<dyn Protection>, Box<dyn Protection>),
) -> Pair {
    let t0 = t0();
    let wall = wall();
    let a_addr = addr("127.0.0.1:40000");
    let b_addr = addr("127.0.0.1:40010");
    let cfg = |to: SocketAddr, cname: &str| MediaConfig {
        rtcp_mux: mux,
        rtcp_interval: Duration::from_secs(1),
        cname: cname.to_owned(),
        ..MediaConfig::to(to, Codec::Pcma)
    };
    let clear = prot.0.name() == "none";
    let mut a = RtpSession::new(cfg(b_addr, "a@test"), prot.0, &FixedRng(1), t0, wall).unwrap();
    let mut b = RtpSession::new(cfg(a_addr, "b@test"), prot.1, &FixedRng(2), t0, wall).unwrap();
    let delay = Duration::from_millis(30);
    // (arrival, to_b, channel, src, bytes)
    let mut flight: Vec<(Instant, bool, Channel, SocketAddr, Vec<u8>)> = Vec::new();
    let (mut a_reports, mut b_reports) = (Vec::new(), Vec::new());
    let mut buf = [0u8; 1500];
    let mut out = [0i16; FRAME_SAMPLES];
    let mut lost = 0;
    let mut sent = 0u64;
    for ms in 0..secs * 1000 {
        let now = t0 + Duration::from_millis(ms);
        if ms % 20 == 0 {
            let t = a
                .send_audio(now, &[500; FRAME_SAMPLES], &mut buf)
                .unwrap()
                .unwrap();
            sent += 1;
            if sent.is_multiple_of(loss_every) {
                lost += 1;
            } else {
                flight.push((now + delay, true, t.channel, a_addr, buf[..t.len].to_vec()));
            }
        }
        for (side, to_b) in [(&mut a, true), (&mut b, false)] {
            while let Some(t) = side.poll_transmit(now, &mut buf).unwrap() {
                let expect_port = if to_b { 40010 } else { 40000 } + u16::from(!mux);
                assert_eq!(t.dst.port(), expect_port);
                assert_eq!(t.channel, if mux { Channel::Rtp } else { Channel::Rtcp });
                if clear {
                    let parsed = rtcp::parse_compound(&buf[..t.len]).unwrap();
                    if to_b { &mut a_reports } else { &mut b_reports }.push((t, parsed));
                }
                let src = if to_b { a_addr } else { b_addr };
                flight.push((now + delay, to_b, t.channel, src, buf[..t.len].to_vec()));
            }
        }
        flight.sort_by_key(|f| f.0);
        while flight.first().is_some_and(|f| f.0 <= now) {
            let (_, to_b, ch, src, mut pkt) = flight.remove(0);
            let r = if to_b { &mut b } else { &mut a }.handle_receive(now, src, ch, &mut pkt);
            assert!(r.is_ok(), "{r:?}");
        }
        while b.poll_audio(now, &mut out).is_some() {}
    }
    Pair {
        a,
        b,
        a_reports,
        b_reports,
        lost,
    }
}

fn clear() -> (Box<dyn Protection>, Box<dyn Protection>) {
    (Box::new(NoProtection::new()), Box::new(NoProtection::new()))
}

#[test]
fn reports_carry_loss_jitter_and_round_trip_time() {
    for mux in [false, true] {
        let p = run_pair(mux, 12, 10, clear());
        let (sa, sb) = (p.a.stats(), p.b.stats());
        // RFC 3550 §6.2: intervals drawn in [0.5, 1.5] s, the first one at 0.5 s.
        assert!((8..=24).contains(&sa.rtcp_sent), "{sa:?}");
        // Everything sent arrived, but for a report still in flight at the end.
        assert!(sb.rtcp_sent - sa.rtcp_received <= 1, "{sa:?} {sb:?}");
        assert!(sa.rtcp_sent - sb.rtcp_received <= 1, "{sa:?} {sb:?}");
        // A sends audio: its reports are SRs with a CNAME; B only listens: RRs.
        for (_, r) in &p.a_reports {
            assert!(
                matches!(r[0], RtcpPacket::SenderReport { ssrc, .. } if ssrc == p.a.local_ssrc())
            );
            assert_eq!(
                r[1],
                RtcpPacket::SourceDescription {
                    chunks: vec![(p.a.local_ssrc(), Some("a@test".into()))]
                }
            );
        }
        let last_sr = p.a_reports.last().unwrap();
        if let RtcpPacket::SenderReport { info, .. } = &last_sr.1[0] {
            // Packets and octets sent up to that report.
            assert_eq!(info.octet_count, info.packet_count * 160);
            assert!(info.packet_count > 500);
        }
        // SR timestamps pair the NTP time with the RTP time of the same instant: both advance
        // at the same rate from one report to the next.
        let srs: Vec<SenderInfo> = p
            .a_reports
            .iter()
            .filter_map(|(_, r)| match &r[0] {
                RtcpPacket::SenderReport { info, .. } => Some(*info),
                _ => None,
            })
            .collect();
        for w in srs.windows(2) {
            let d_ntp = (w[1].ntp - w[0].ntp) as f64 / 4_294_967_296.0;
            let d_rtp = f64::from(w[1].rtp_timestamp.wrapping_sub(w[0].rtp_timestamp)) / 8000.0;
            assert!(
                d_ntp > 0.4 && (d_ntp - d_rtp).abs() < 1e-3,
                "{d_ntp} {d_rtp}"
            );
        }
        let mut last_rr = None;
        for (_, r) in &p.b_reports {
            let RtcpPacket::ReceiverReport { ssrc, reports } = &r[0] else {
                panic!("{r:?}")
            };
            assert_eq!(*ssrc, p.b.local_ssrc());
            assert!(reports.len() <= 1);
            last_rr = reports.first().copied().or(last_rr);
        }
        // The block in B's last RR describes A's stream: 10 % loss, no jitter.
        let block = last_rr.unwrap();
        assert_eq!(block.ssrc, p.a.local_ssrc());
        assert!((20..=30).contains(&block.fraction_lost), "{block:?}"); // 25.6/256
        assert!(
            block.cumulative_lost > 40 && block.cumulative_lost as u64 <= p.lost,
            "{block:?}"
        );
        assert_eq!(block.jitter, 0);
        assert_ne!(block.lsr, 0);
        // What A concluded from it.
        assert_eq!(
            sa.remote_packets_lost,
            Some(i64::from(block.cumulative_lost))
        );
        assert!(
            (sa.remote_fraction_lost.unwrap() - 0.1).abs() < 0.02,
            "{sa:?}"
        );
        assert_eq!(sa.remote_jitter_ms, Some(0.0));
        // 30 ms each way; LSR/DLSR are in 1/65536 s.
        let rtt = sa.rtt_ms.unwrap();
        assert!((rtt - 60.0).abs() < 0.1, "rtt {rtt}");
        // B sends no RTP, hence no SR, and A's reports carry no block about B: no RTT at B.
        assert_eq!(sb.rtt_ms, None);
        // B's own view: packets 1..=599 arrived in time (the 600th is still in flight, and
        // lost anyway), every 10th lost.
        assert_eq!(p.lost, 60);
        assert_eq!((sb.packets_received, sb.packets_lost), (540, 59));
    }
}

#[test]
fn reports_flow_over_srtcp() {
    let pa = sotto_crypto_rust::provider();
    let s = |k: u8| {
        SrtpSession::new(
            pa,
            SrtpPolicy::new(SrtpSuite::AesCm128HmacSha1_80, &[k; 16], &[k; 14]),
        )
        .unwrap()
    };
    let p = run_pair(
        true,
        6,
        10,
        (
            Box::new(SrtpProtection::new(s(1), s(2))),
            Box::new(SrtpProtection::new(s(2), s(1))),
        ),
    );
    let sa = p.a.stats();
    assert!(sa.rtcp_received >= 3);
    assert!((sa.rtt_ms.unwrap() - 60.0).abs() < 0.1);
    assert!((sa.remote_fraction_lost.unwrap() - 0.1).abs() < 0.02);
}

#[test]
fn bye_on_close() {
    let p = run_pair(true, 2, 1000, clear());
    let (mut a, mut b) = (p.a, p.b);
    let now = t0() + Duration::from_secs(3);
    let mut buf = [0u8; 512];
    let t = a.close(now, "bye now", &mut buf).unwrap().unwrap();
    let parsed = rtcp::parse_compound(&buf[..t.len]).unwrap();
    assert!(matches!(parsed[0], RtcpPacket::SenderReport { .. }));
    assert_eq!(
        parsed[2],
        RtcpPacket::Bye {
            ssrcs: vec![a.local_ssrc()],
            reason: Some("bye now".into())
        }
    );
    let r = b.handle_receive(
        now,
        addr("127.0.0.1:40000"),
        Channel::Rtp,
        &mut buf[..t.len],
    );
    assert_eq!(
        r,
        Ok(Received::Rtcp {
            packets: 3,
            bye: true
        })
    );
    assert!(b.stats().remote_bye);
    // Closed: no more reports, and the next deadline is only the playout of B.
    assert_eq!(a.close(now, "", &mut buf).unwrap(), None);
    assert_eq!(
        a.poll_transmit(now + Duration::from_secs(60), &mut buf)
            .unwrap(),
        None
    );
    assert_eq!(a.poll_timeout(), None);
    assert!(b.poll_timeout().is_some());
}
