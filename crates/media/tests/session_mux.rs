//! Demultiplexing one port: RTP vs RTCP by the second octet (RFC 5761 §4) and the first-octet
//! ranges of RFC 7983 (STUN, ZRTP, DTLS, TURN channels); RTCP routed to the RTP port with
//! rtcp-mux and to its own port without; telephone-events through the session (RFC 4733).

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::rng::SecureRandom;
use sotto_media::audio::{Codec, FRAME_SAMPLES, TelephoneEvent};
use sotto_media::session::packet::{PacketClass, RtpPacket, classify, is_rtcp};
use sotto_media::session::rtcp::{self, ReportBlock};
use sotto_media::session::{Channel, MediaConfig, NoProtection, Received, RtpSession};

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
        dest.fill(self.0);
        Ok(())
    }
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn second_octet_separates_rtcp_from_rtp() {
    // Every RTCP packet type 192–223 is RTCP; every RTP payload type outside 64–95, with or
    // without the marker bit, is RTP.
    for b1 in 192..=223u8 {
        let p = [0x80, b1, 0, 1, 0, 0, 0, 1];
        assert!(is_rtcp(&p));
        assert_eq!(classify(&p), PacketClass::Rtcp);
    }
    for pt in (0..=63u8).chain(96..=127) {
        for m in [0, 0x80] {
            let p = [0x80, pt | m, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1];
            assert!(!is_rtcp(&p), "pt {pt} m {m}");
            assert_eq!(classify(&p), PacketClass::Rtp);
        }
    }
    let mut buf = [0u8; 64];
    let n = rtcp::write_rr(&mut buf, 1, &[ReportBlock::default()]).unwrap();
    assert_eq!(classify(&buf[..n]), PacketClass::Rtcp);
    let n = RtpPacket {
        marker: true,
        payload_type: 8,
        seq: 1,
        timestamp: 2,
        ssrc: 3,
        payload: &[1],
    }
    .write(&mut buf)
    .unwrap();
    assert_eq!(classify(&buf[..n]), PacketClass::Rtp);
}

#[test]
fn first_octet_ranges_rfc7983() {
    // STUN binding request header.
    assert_eq!(
        classify(&[0x00, 0x01, 0, 0, 0x21, 0x12, 0xa4, 0x42]),
        PacketClass::Stun
    );
    // ZRTP: 0x10 then the magic cookie "ZRTP" at octets 4–7.
    assert_eq!(
        classify(&[0x10, 0, 0, 1, b'Z', b'R', b'T', b'P', 0, 0, 0, 0]),
        PacketClass::Zrtp
    );
    assert_eq!(
        classify(&[0x10, 0, 0, 1, b'X', b'R', b'T', b'P']),
        PacketClass::Unknown
    );
    // DTLS handshake record.
    assert_eq!(classify(&[22, 0xfe, 0xfd, 0, 0]), PacketClass::Dtls);
    assert_eq!(classify(&[0x40, 0, 0, 4]), PacketClass::TurnChannel);
    assert_eq!(classify(&[]), PacketClass::Unknown);
    assert_eq!(classify(&[0xff, 0xff]), PacketClass::Unknown);
    assert!(!is_rtcp(&[0x80]));
}

fn pair(mux: bool) -> (RtpSession, RtpSession, SocketAddr, SocketAddr) {
    let t0 = t0();
    let wall = wall();
    let a_addr = addr("127.0.0.1:42000");
    let b_addr = addr("127.0.0.1:42100");
    let cfg = |to| MediaConfig {
        rtcp_mux: mux,
        rtcp_interval: Duration::from_secs(2),
        ..MediaConfig::to(to, Codec::Pcmu)
    };
    let a = RtpSession::new(
        cfg(b_addr),
        Box::new(NoProtection::new()),
        &FixedRng(1),
        t0,
        wall,
    )
    .unwrap();
    let b = RtpSession::new(
        cfg(a_addr),
        Box::new(NoProtection::new()),
        &FixedRng(2),
        t0,
        wall,
    )
    .unwrap();
    (a, b, a_addr, b_addr)
}

#[test]
fn rtcp_mux_shares_the_rtp_port() {
    let (mut a, mut b, a_addr, b_addr) = pair(true);
    let t0 = t0();
    let mut buf = [0u8; 512];
    let t = a
        .send_audio(t0, &[0; FRAME_SAMPLES], &mut buf)
        .unwrap()
        .unwrap();
    assert!(matches!(
        b.handle_receive(t0, a_addr, Channel::Rtp, &mut buf[..t.len]),
        Ok(Received::Audio { .. })
    ));
    // The first report is due after half an interval, on the RTP port, to the RTP address.
    assert_eq!(
        a.poll_transmit(t0 + Duration::from_millis(999), &mut buf)
            .unwrap(),
        None
    );
    let t = a
        .poll_transmit(t0 + Duration::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!((t.dst, t.channel), (b_addr, Channel::Rtp));
    // B demultiplexes it from the RTP port.
    assert_eq!(
        b.handle_receive(t0, a_addr, Channel::Rtp, &mut buf[..t.len]),
        Ok(Received::Rtcp {
            packets: 2,
            bye: false
        })
    );
    let t = b
        .poll_transmit(t0 + Duration::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!((t.dst, t.channel), (a_addr, Channel::Rtp));
    assert!(matches!(
        a.handle_receive(t0, b_addr, Channel::Rtp, &mut buf[..t.len]),
        Ok(Received::Rtcp { .. })
    ));
    assert_eq!(a.stats().remote_packets_lost, Some(0));
    assert_eq!((a.stats().rtcp_sent, b.stats().rtcp_received), (1, 1));
    // Next reports come 1–3 s later (interval 2 s, dithered in [0.5, 1.5]).
    let next = a.poll_timeout().unwrap();
    assert!(next >= t0 + Duration::from_secs(2) && next <= t0 + Duration::from_secs(4));
}

#[test]
fn without_mux_rtcp_uses_port_plus_one() {
    let (mut a, mut b, a_addr, b_addr) = pair(false);
    let t0 = t0();
    let mut buf = [0u8; 512];
    let t = a
        .poll_transmit(t0 + Duration::from_secs(1), &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(t.channel, Channel::Rtcp);
    assert_eq!(t.dst, addr("127.0.0.1:42101"));
    let rtcp_src = addr("127.0.0.1:42001");
    assert_eq!(
        b.handle_receive(t0, rtcp_src, Channel::Rtcp, &mut buf[..t.len]),
        Ok(Received::Rtcp {
            packets: 2,
            bye: false
        })
    );
    // An explicit a=rtcp address wins over port + 1.
    a.set_remote(Some(b_addr), Some(addr("127.0.0.1:43999")));
    assert_eq!(a.remote_rtcp(), Some(addr("127.0.0.1:43999")));
    // Turning mux on after negotiation moves RTCP to the RTP address.
    a.set_rtcp_mux(true);
    assert_eq!(a.remote_rtcp(), Some(b_addr));
    let _ = a_addr;
}

#[test]
fn telephone_events_round_trip_through_sessions() {
    let (mut a, mut b, a_addr, _) = pair(true);
    let t0 = t0();
    let mut buf = [0u8; 512];
    let t = a
        .send_audio(t0, &[0; FRAME_SAMPLES], &mut buf)
        .unwrap()
        .unwrap();
    b.handle_receive(t0, a_addr, Channel::Rtp, &mut buf[..t.len])
        .unwrap();
    let start_ts = a.next_timestamp();
    // Digit 7: three updates, then the end packet three times (RFC 4733 §2.5.1).
    let mut seen = Vec::new();
    let mut send = |ev: TelephoneEvent, a: &mut RtpSession, b: &mut RtpSession| {
        let t = a.send_event(ev, &mut buf).unwrap().unwrap();
        let p = RtpPacket::parse(&buf[..t.len]).unwrap();
        assert_eq!((p.payload_type, p.timestamp), (101, start_ts));
        let marker = p.marker;
        let r = b
            .handle_receive(t0, a_addr, Channel::Rtp, &mut buf[..t.len])
            .unwrap();
        seen.push((marker, r));
    };
    for d in [160u16, 320, 480] {
        send(
            TelephoneEvent {
                event: 7,
                end: false,
                volume: 10,
                duration: d,
            },
            &mut a,
            &mut b,
        );
    }
    let end = TelephoneEvent {
        event: 7,
        end: true,
        volume: 10,
        duration: 640,
    };
    for _ in 0..3 {
        send(end, &mut a, &mut b);
    }
    let flags: Vec<(bool, bool, bool)> = seen
        .iter()
        .map(|(m, r)| match r {
            Received::Event { event, start, end } => {
                assert_eq!(event.digit(), Some('7'));
                (*m, *start, *end)
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        flags,
        vec![
            (true, true, false),
            (false, false, false),
            (false, false, false),
            (false, false, true),
            (false, false, false),
            (false, false, false),
        ]
    );
    // A new event after the end gets a new timestamp (the audio timeline's) and a marker.
    let t20 = t0 + Duration::from_millis(20);
    let t = a
        .send_audio(t20, &[0; FRAME_SAMPLES], &mut buf)
        .unwrap()
        .unwrap();
    assert!(matches!(
        b.handle_receive(t20, a_addr, Channel::Rtp, &mut buf[..t.len]),
        Ok(Received::Audio { .. })
    ));
    let t = a
        .send_event(
            TelephoneEvent {
                event: 11,
                end: false,
                volume: 10,
                duration: 160,
            },
            &mut buf,
        )
        .unwrap()
        .unwrap();
    let p = RtpPacket::parse(&buf[..t.len]).unwrap();
    assert!(p.marker);
    assert_eq!(p.timestamp, start_ts.wrapping_add(160));
    assert!(matches!(
        b.handle_receive(t0, a_addr, Channel::Rtp, &mut buf[..t.len]),
        Ok(Received::Event {
            start: true,
            end: false,
            ..
        })
    ));
    // Events do not disturb the jitter estimate or the loss count.
    let s = b.stats();
    assert_eq!(
        (s.packets_received, s.packets_lost, s.jitter_ms),
        (9, 0, 0.0)
    );
    // Without a negotiated telephone-event payload type, none is sent or accepted.
    let cfg = MediaConfig {
        telephone_event_pt: None,
        ..MediaConfig::to(a_addr, Codec::Pcmu)
    };
    let mut c =
        RtpSession::new(cfg, Box::new(NoProtection::new()), &FixedRng(3), t0, wall()).unwrap();
    assert_eq!(c.send_event(end, &mut buf).unwrap(), None);
}
