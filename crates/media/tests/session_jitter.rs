//! Interarrival jitter per RFC 3550 §6.4.1/§A.8 on synthetic arrival patterns (against a
//! direct floating-point evaluation of the estimator), sequence numbers across the 16-bit
//! wrap, and the jitter buffer's reordering, late drops, concealment and re-anchoring.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::rng::SecureRandom;
use sotto_media::audio::{Codec, FRAME_SAMPLES};
use sotto_media::session::packet::RtpPacket;
use sotto_media::session::{
    Channel, FrameKind, Inserted, JitterBuffer, JitterConfig, MediaConfig, NoProtection, Received,
    RtpSession, SessionError,
};

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
struct FixedRng;

impl SecureRandom for FixedRng {
    fn fill(&self, dest: &mut [u8]) -> Result<(), sotto_crypto::Error> {
        dest.fill(0x5a);
        Ok(())
    }
}

const SRC: &str = "127.0.0.1:41000";

fn receiver(t0: Instant) -> RtpSession {
    let cfg = MediaConfig::to(SRC.parse().unwrap(), Codec::Pcmu);
    RtpSession::new(cfg, Box::new(NoProtection::new()), &FixedRng, t0, wall()).unwrap()
}

fn packet(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 12 + payload.len()];
    let n = RtpPacket {
        marker,
        payload_type: 0,
        seq,
        timestamp: ts,
        ssrc: 0x1234,
        payload,
    }
    .write(&mut buf)
    .unwrap();
    buf.truncate(n);
    buf
}

fn deliver(s: &mut RtpSession, at: Instant, pkt: &mut [u8]) -> Result<Received, SessionError> {
    let src: SocketAddr = SRC.parse().unwrap();
    s.handle_receive(at, src, Channel::Rtp, pkt)
}

/// Feeds packets with timestamps 160·i arriving at 20·i ms + `extra_us[i]`, and compares the
/// session's jitter with J += (|D| − J)/16 evaluated in floating point.
fn check_jitter(extra_us: &[u64]) -> f64 {
    let t0 = t0();
    let mut s = receiver(t0);
    let mut reference = 0.0f64;
    let mut last_transit: Option<f64> = None;
    for (i, e) in extra_us.iter().enumerate() {
        let arrival_us = 20_000 * i as u64 + e;
        let ts = 1000 + 160 * i as u32;
        let mut p = packet(i as u16, ts, i == 0, &[0xff; 160]);
        deliver(&mut s, t0 + Duration::from_micros(arrival_us), &mut p).unwrap();
        // Arrival in timestamp units (8 kHz), truncated like the session's clock.
        let transit = (arrival_us * 8 / 1000) as f64 - f64::from(ts);
        if let Some(last) = last_transit {
            reference += ((transit - last).abs() - reference) / 16.0;
        }
        last_transit = Some(transit);
    }
    let got_ms = s.stats().jitter_ms;
    let reference_ms = reference / 8.0;
    // The integer form (J·16, rounded shift) stays within one timestamp unit (0.125 ms).
    assert!(
        (got_ms - reference_ms).abs() <= 0.125,
        "got {got_ms} ms, reference {reference_ms} ms"
    );
    got_ms
}

#[test]
fn jitter_follows_rfc3550_estimator() {
    // Constant delay: no jitter at all.
    assert_eq!(check_jitter(&[7_000; 100]), 0.0);
    // Alternating 0 / 10 ms extra delay: |D| = 10 ms every packet, J → 10 ms.
    let alt: Vec<u64> = (0..200)
        .map(|i| if i % 2 == 0 { 0 } else { 10_000 })
        .collect();
    let j = check_jitter(&alt);
    assert!((j - 10.0).abs() < 0.2, "{j}");
    // One 40 ms spike: J jumps by 40/16 = 2.5 ms, then decays by 15/16 per packet.
    let mut spike = vec![0u64; 50];
    spike[10] = 40_000;
    let j = check_jitter(&spike);
    assert!(j > 0.0 && j < 2.5, "{j}");
    // Pseudo-random delays (0–30 ms).
    let mut x = 99u32;
    let rnd: Vec<u64> = (0..300)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            u64::from((x >> 8) % 30_000)
        })
        .collect();
    let j = check_jitter(&rnd);
    assert!(j > 5.0 && j < 15.0, "{j}");
}

#[test]
fn sequence_numbers_wrap_and_duplicates_are_dropped() {
    let t0 = t0();
    let mut s = receiver(t0);
    let payload = [0xffu8; 160];
    // Start just below the wrap; deliver 65530..=65535, 0..=9 with 2 and 65533 missing,
    // 65534 and 3 duplicated, 5 before 4.
    let mut order: Vec<u16> = (65530..=65535).chain(0..=9).collect();
    order.retain(|s| *s != 2 && *s != 65533);
    order.insert(5, 65534);
    let four = order.iter().position(|s| *s == 4).unwrap();
    order.swap(four, four + 1);
    order.push(3);
    let mut dups = 0;
    for (i, seq) in order.iter().enumerate() {
        let ts = 160u32.wrapping_mul(u32::from(seq.wrapping_sub(65530)));
        let at = t0 + Duration::from_millis(20 * i as u64);
        match deliver(&mut s, at, &mut packet(*seq, ts, false, &payload)) {
            Ok(Received::Audio { seq: got, .. }) => assert_eq!(got, *seq),
            Err(SessionError::Duplicate { seq: d }) => {
                assert!(d == 65534 || d == 3);
                dups += 1;
            }
            other => panic!("{seq}: {other:?}"),
        }
    }
    assert_eq!(dups, 2);
    let st = s.stats();
    assert_eq!(
        (st.packets_received, st.packets_lost, st.packets_duplicate),
        (14, 2, 2)
    );
    assert_eq!(st.packets_dropped, 0);
}

#[test]
fn sequence_jumps_need_confirmation() {
    let t0 = t0();
    let mut s = receiver(t0);
    let p = [0xffu8; 160];
    deliver(&mut s, t0, &mut packet(100, 0, true, &p)).unwrap();
    deliver(&mut s, t0, &mut packet(101, 160, false, &p)).unwrap();
    // A jump of 20000: dropped, unless the next packet follows it (a restarted sender).
    assert_eq!(
        deliver(&mut s, t0, &mut packet(20_101, 320, false, &p)),
        Err(SessionError::BadSequence { seq: 20_101 })
    );
    assert!(deliver(&mut s, t0, &mut packet(102, 320, false, &p)).is_ok());
    assert_eq!(
        deliver(&mut s, t0, &mut packet(30_000, 480, false, &p)),
        Err(SessionError::BadSequence { seq: 30_000 })
    );
    assert!(deliver(&mut s, t0, &mut packet(30_001, 640, false, &p)).is_ok());
    let st = s.stats();
    assert_eq!((st.packets_dropped, st.packets_lost), (2, 0));
}

#[test]
fn malformed_and_unexpected_packets_are_dropped() {
    let t0 = t0();
    let mut s = receiver(t0);
    let mut short = [0x80u8, 0, 0, 1, 0, 0];
    assert!(matches!(
        deliver(&mut s, t0, &mut short),
        Err(SessionError::Malformed(_))
    ));
    let mut v1 = packet(1, 0, false, &[0xff; 10]);
    v1[0] = 0x40;
    assert!(matches!(
        deliver(&mut s, t0, &mut v1),
        Err(SessionError::Malformed(_))
    ));
    let mut pt96 = packet(1, 0, false, &[0xff; 10]);
    pt96[1] = 96;
    assert_eq!(
        deliver(&mut s, t0, &mut pt96),
        Err(SessionError::UnknownPayloadType(96))
    );
    // Padding larger than the payload.
    let mut pad = packet(1, 0, false, &[0xff; 10]);
    pad[0] |= 0x20;
    *pad.last_mut().unwrap() = 40;
    assert!(matches!(
        deliver(&mut s, t0, &mut pad),
        Err(SessionError::Malformed(_))
    ));
    assert_eq!(s.stats().packets_dropped, 4);
    assert_eq!(s.stats().packets_received, 0);
    // Valid padding is removed before decoding.
    let mut ok = packet(1, 0, false, &[0xff, 0xff, 0, 0, 3]);
    ok[0] |= 0x20;
    let p = RtpPacket::parse(&ok).unwrap();
    assert_eq!(p.payload, &[0xff, 0xff]);
    assert!(deliver(&mut s, t0, &mut ok).is_ok());
    // No prefix of a packet panics the session.
    let full = packet(2, 160, false, &[0x7f; 160]);
    for n in 0..full.len() {
        let mut cut = full[..n].to_vec();
        let _ = deliver(&mut s, t0, &mut cut);
    }
}

fn frame(v: i16) -> Vec<i16> {
    vec![v; FRAME_SAMPLES]
}

#[test]
fn jitter_buffer_reorders_conceals_and_drops_late() {
    let t0 = t0();
    let cfg = JitterConfig {
        initial_delay: Duration::from_millis(60),
        adaptive: false,
        ..JitterConfig::default()
    };
    let mut jb = JitterBuffer::new(cfg);
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut out = [0i16; FRAME_SAMPLES];
    assert_eq!(jb.poll(t0, &mut out), None);
    assert_eq!(jb.next_playout(), None);
    // Frames 0, 2, 1 (reordered), 4 (3 lost); frame k holds the value k+1.
    assert_eq!(
        jb.insert(ms(0), 1000, true, 0, &frame(1)),
        Inserted::Anchored
    );
    assert_eq!(jb.next_playout(), Some(ms(60)));
    assert_eq!(
        jb.insert(ms(40), 1320, false, 0, &frame(3)),
        Inserted::Stored
    );
    assert_eq!(
        jb.insert(ms(45), 1160, false, 0, &frame(2)),
        Inserted::Stored
    );
    assert_eq!(
        jb.insert(ms(80), 1640, false, 0, &frame(5)),
        Inserted::Stored
    );
    assert_eq!(jb.buffered(), Duration::from_millis(100));
    assert_eq!(jb.poll(ms(59), &mut out), None);
    let mut got = Vec::new();
    for k in 0..5u64 {
        let kind = jb.poll(ms(60 + 20 * k), &mut out).unwrap();
        got.push((kind, out[0], out[159]));
        assert_eq!(
            jb.poll(ms(60 + 20 * k), &mut out),
            None,
            "one frame per 20 ms"
        );
    }
    assert_eq!(
        got,
        vec![
            (FrameKind::Audio, 1, 1),
            (FrameKind::Audio, 2, 2),
            (FrameKind::Audio, 3, 3),
            (FrameKind::Concealed, 0, 0),
            (FrameKind::Audio, 5, 5),
        ]
    );
    // Frame 3 arriving now is late.
    assert_eq!(
        jb.insert(ms(150), 1480, false, 0, &frame(4)),
        Inserted::Late
    );
    // A 10 ms packet fills half a frame: Partial.
    assert_eq!(
        jb.insert(ms(150), 1800, false, 0, &[6; 80]),
        Inserted::Stored
    );
    assert_eq!(jb.poll(ms(160), &mut out), Some(FrameKind::Partial));
    assert_eq!((out[0], out[79], out[80]), (6, 6, 0));
    // A packet straddling the playout point keeps its unplayed half.
    assert_eq!(
        jb.insert(ms(170), 1880, false, 0, &[7; 240]),
        Inserted::Stored
    );
    assert_eq!(jb.poll(ms(180), &mut out), Some(FrameKind::Audio));
    assert_eq!((out[0], out[159]), (7, 7));
    let st = jb.stats();
    assert_eq!(
        (
            st.frames_played,
            st.frames_partial,
            st.frames_concealed,
            st.packets_late,
            st.anchors
        ),
        (5, 1, 1, 1, 1)
    );
}

#[test]
fn jitter_buffer_reanchors_and_adapts() {
    let t0 = t0();
    let mut jb = JitterBuffer::new(JitterConfig::default());
    let ms = |n: u64| t0 + Duration::from_millis(n);
    let mut out = [0i16; FRAME_SAMPLES];
    jb.insert(ms(0), 0, true, 0, &frame(1));
    assert_eq!(jb.target_delay(), Duration::from_millis(60));
    while jb.poll(ms(100), &mut out).is_some() {}
    // A talkspurt after silence (marker, buffer drained) re-anchors with the measured
    // jitter: 20 ms + 4 · 15 ms (120 timestamp units) = 80 ms.
    assert_eq!(
        jb.insert(ms(2000), 50_000, true, 120, &frame(2)),
        Inserted::Anchored
    );
    assert_eq!(jb.target_delay(), Duration::from_millis(80));
    assert_eq!(jb.next_playout(), Some(ms(2080)));
    // A timestamp far ahead (beyond the ring) re-anchors too.
    assert_eq!(
        jb.insert(ms(2010), 50_000 + 100_000, false, 0, &frame(3)),
        Inserted::Anchored
    );
    // The target is clamped to the configured bounds.
    while jb.poll(ms(2200), &mut out).is_some() {}
    jb.insert(ms(3000), 200_000, true, 8000, &frame(4));
    assert_eq!(jb.target_delay(), Duration::from_millis(300));
    // A run of late packets re-anchors on the 5th and raises the floor by a frame.
    let mut jb = JitterBuffer::new(JitterConfig::default());
    jb.insert(ms(0), 0, true, 0, &frame(1));
    while jb.poll(ms(400), &mut out).is_some() {}
    let mut results = Vec::new();
    for i in 0..5u32 {
        results.push(jb.insert(ms(400), 160 * i, false, 0, &frame(1)));
    }
    assert_eq!(results[..4], [Inserted::Late; 4]);
    assert_eq!(results[4], Inserted::Anchored);
    assert_eq!(jb.target_delay(), Duration::from_millis(80));
    assert_eq!(jb.stats().packets_late, 5);
}

#[test]
fn session_plays_through_the_buffer() {
    let t0 = t0();
    let mut s = receiver(t0);
    let mut out = [0i16; FRAME_SAMPLES];
    // μ-law 0x80 decodes to 32124.
    let mut p = packet(7, 5000, true, &[0x80; 160]);
    assert!(matches!(
        deliver(&mut s, t0, &mut p),
        Ok(Received::Audio {
            seq: 7,
            timestamp: 5000,
            payload_type: 0,
            marker: true,
            inserted: Inserted::Anchored
        })
    ));
    let due = s.poll_timeout().unwrap();
    assert_eq!(due, t0 + Duration::from_millis(60));
    assert_eq!(s.poll_audio(due - Duration::from_millis(1), &mut out), None);
    assert_eq!(s.poll_audio(due, &mut out), Some(FrameKind::Audio));
    assert!(out.iter().all(|v| *v == 32124));
}
