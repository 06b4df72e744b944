//! End to end on virtual time: tone → G.711 → RTP (clear or SRTP) → a lossy, reordering,
//! duplicating link → jitter buffer → decoded audio, checked with Goertzel; plus the exact
//! sample path on a clean link, and comedia latching.

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::rng::SecureRandom;
use sotto_media::audio::{Codec, FRAME_SAMPLES, Tone, ToneReport};
use sotto_media::session::{
    Channel, MediaConfig, NoProtection, Protection, Received, RtpSession, SessionError,
    SrtpProtection,
};
use sotto_media::srtp::{SrtpError, SrtpPolicy, SrtpSession, SrtpSuite};

/// A deterministic "random" source for reproducible sessions.
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
            *b = self
                .0
                .wrapping_mul(31)
                .wrapping_add((i as u8).wrapping_mul(17));
        }
        Ok(())
    }
}

/// xorshift32, for the link emulator.
struct Prng(u32);

impl Prng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    fn chance(&mut self, percent: u32) -> bool {
        self.next() % 100 < percent
    }
}

/// Link behaviour: fixed delay plus uniform extra delay, loss and duplication.
#[derive(Clone, Copy)]
struct Link {
    delay: Duration,
    jitter_ms: u32,
    loss_percent: u32,
    dup_percent: u32,
}

const A: &str = "127.0.0.1:40000";
const B: &str = "127.0.0.1:40002";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn srtp_pair(suite: SrtpSuite) -> (SrtpProtection, SrtpProtection) {
    let p = sotto_crypto_rust::provider();
    let salt_len = suite.master_salt_len();
    let (ka, sa) = ([0x11u8; 16], [0x22u8; 14]);
    let (kb, sb) = ([0x33u8; 16], [0x44u8; 14]);
    let s = |k: &[u8], salt: &[u8]| {
        SrtpSession::new(p, SrtpPolicy::new(suite, k, &salt[..salt_len])).unwrap()
    };
    (
        SrtpProtection::new(s(&ka, &sa), s(&kb, &sb)),
        SrtpProtection::new(s(&kb, &sb), s(&ka, &sa)),
    )
}

struct Outcome {
    recording: Vec<i16>,
    sent: Vec<i16>,
    netem_lost: u64,
    netem_dups: u64,
    /// Packets delivered after a packet with a higher sequence number.
    reordered: u64,
    receiver: RtpSession,
}

/// Sends `seconds` of a tone from A to B over `link`, ticking virtual time by 1 ms, and
/// returns B's recording.
fn call(
    codec: Codec,
    freq: f64,
    link: Link,
    seconds: u32,
    prot: (Box<dyn Protection>, Box<dyn Protection>),
) -> Outcome {
    let t0 = t0();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut a = RtpSession::new(
        MediaConfig::to(addr(B), codec),
        prot.0,
        &FixedRng(1),
        t0,
        wall,
    )
    .unwrap();
    let mut b = RtpSession::new(
        MediaConfig::to(addr(A), codec),
        prot.1,
        &FixedRng(2),
        t0,
        wall,
    )
    .unwrap();
    let mut tone = Tone::new(freq, 10000, 8000);
    let mut prng = Prng(0x1234_5678);
    let mut in_flight: Vec<(Instant, Vec<u8>)> = Vec::new();
    let (mut recording, mut sent) = (Vec::new(), Vec::new());
    let (mut netem_lost, mut netem_dups, mut reordered) = (0, 0, 0);
    let mut highest: Option<u16> = None;
    let mut buf = [0u8; 1500];
    let mut out = [0i16; FRAME_SAMPLES];
    let total_ms = seconds * 1000;
    let last_send = total_ms - 20;
    for ms in 0..total_ms + 500 {
        let now = t0 + Duration::from_millis(u64::from(ms));
        if ms % 20 == 0 && ms <= last_send {
            let mut pcm = [0i16; FRAME_SAMPLES];
            tone.fill(&mut pcm);
            sent.extend_from_slice(&pcm);
            let t = a.send_audio(now, &pcm, &mut buf).unwrap().unwrap();
            assert_eq!((t.dst, t.channel), (addr(B), Channel::Rtp));
            // Never lose the last packet, so the loss count is exact.
            if ms != last_send && prng.chance(link.loss_percent) {
                netem_lost += 1;
            } else {
                let copies = if prng.chance(link.dup_percent) { 2 } else { 1 };
                netem_dups += copies - 1;
                for _ in 0..copies {
                    let extra = if link.jitter_ms == 0 {
                        0
                    } else {
                        prng.next() % (link.jitter_ms + 1)
                    };
                    let at = now + link.delay + Duration::from_millis(u64::from(extra));
                    in_flight.push((at, buf[..t.len].to_vec()));
                }
            }
        }
        // Deliver what has arrived, in arrival order (this is where reordering happens).
        in_flight.sort_by_key(|(at, _)| *at);
        while in_flight.first().is_some_and(|(at, _)| *at <= now) {
            let (_, mut pkt) = in_flight.remove(0);
            let seq = u16::from_be_bytes([pkt[2], pkt[3]]);
            match highest {
                Some(h) if (seq.wrapping_sub(h) as i16) < 0 => reordered += 1,
                _ => highest = Some(seq),
            }
            match b.handle_receive(now, addr(A), Channel::Rtp, &mut pkt) {
                Ok(Received::Audio { .. })
                | Err(SessionError::Duplicate { .. })
                | Err(SessionError::Srtp(SrtpError::Replayed { .. })) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        while b.poll_audio(now, &mut out).is_some() {
            recording.extend_from_slice(&out);
        }
    }
    assert!(in_flight.is_empty());
    Outcome {
        recording,
        sent,
        netem_lost,
        netem_dups,
        reordered,
        receiver: b,
    }
}

fn clear() -> (Box<dyn Protection>, Box<dyn Protection>) {
    (Box::new(NoProtection::new()), Box::new(NoProtection::new()))
}

const BAD_LINK: Link = Link {
    delay: Duration::from_millis(30),
    jitter_ms: 45,
    loss_percent: 3,
    dup_percent: 3,
};

#[test]
fn tone_survives_loss_reordering_and_duplicates() {
    for (codec, freq, other) in [(Codec::Pcmu, 440.0, 1000.0), (Codec::Pcma, 1000.0, 440.0)] {
        let o = call(codec, freq, BAD_LINK, 4, clear());
        let s = o.receiver.stats();
        assert!(o.netem_lost > 0 && o.netem_dups > 0, "the link did nothing");
        assert!(o.reordered > 20, "too little reordering: {}", o.reordered);
        // Loss is counted from sequence gaps exactly; duplicates are dropped and counted.
        assert_eq!(s.packets_lost, o.netem_lost as i64);
        assert_eq!(s.packets_duplicate, o.netem_dups);
        assert_eq!(s.packets_received, 200 - o.netem_lost);
        assert_eq!(s.packets_dropped, 0);
        // 45 ms of extra delay spread: a real jitter estimate, and the buffer absorbed it.
        assert!(s.jitter_ms > 3.0 && s.jitter_ms < 45.0, "{s:?}");
        let jb = s.jitter_buffer;
        assert_eq!(jb.packets_late, 0, "{jb:?}");
        assert!(jb.frames_concealed >= o.netem_lost, "{jb:?}");
        assert!(jb.frames_played >= 200 - o.netem_lost - 2, "{jb:?}");
        // The recording holds the tone and not the other frequency.
        let r = ToneReport::analyze(&o.recording, 8000, freq, 0);
        assert!(r.windows >= 7, "{r:?}");
        assert!(r.median_fraction > 0.9, "{r:?}");
        assert_eq!(r.dominant_windows, r.windows);
        let n = ToneReport::analyze(&o.recording, 8000, other, 0);
        assert!(n.median_fraction < 0.05, "{n:?}");
    }
}

#[test]
fn clean_link_plays_every_sample_in_order() {
    let link = Link {
        delay: Duration::from_millis(10),
        jitter_ms: 0,
        loss_percent: 0,
        dup_percent: 0,
    };
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let o = call(codec, 440.0, link, 2, clear());
        let expected: Vec<i16> = o
            .sent
            .iter()
            .map(|s| codec.decode_sample(codec.encode_sample(*s)))
            .collect();
        // Playout starts with the first packet and is sample-exact after it; what follows
        // the last packet is concealment.
        assert_eq!(&o.recording[..expected.len()], &expected[..]);
        assert!(o.recording[expected.len()..].iter().all(|s| *s == 0));
        let s = o.receiver.stats();
        assert_eq!((s.packets_received, s.packets_lost), (100, 0));
        assert_eq!(s.jitter_ms, 0.0);
        assert_eq!(s.jitter_buffer.frames_played, 100);
        assert_eq!(s.jitter_buffer.anchors, 1);
    }
}

#[test]
fn tone_over_srtp() {
    for suite in [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AeadAes128Gcm] {
        let (pa, pb) = srtp_pair(suite);
        let o = call(
            Codec::Pcmu,
            440.0,
            BAD_LINK,
            3,
            (Box::new(pa), Box::new(pb)),
        );
        let s = o.receiver.stats();
        assert_eq!(s.protection, "srtp");
        assert_eq!(s.packets_lost, o.netem_lost as i64);
        // SRTP's replay window refuses the duplicates before the session's own window.
        assert_eq!(s.packets_dropped, o.netem_dups);
        let r = ToneReport::analyze(&o.recording, 8000, 440.0, 0);
        assert!(r.median_fraction > 0.9, "{suite:?} {r:?}");
    }
}

#[test]
fn srtp_refuses_tampered_and_clear_packets() {
    let t0 = t0();
    let wall = wall();
    let (pa, pb) = srtp_pair(SrtpSuite::AesCm128HmacSha1_80);
    let mut a = RtpSession::new(
        MediaConfig::to(addr(B), Codec::Pcmu),
        Box::new(pa),
        &FixedRng(1),
        t0,
        wall,
    )
    .unwrap();
    let mut b = RtpSession::new(
        MediaConfig::to(addr(A), Codec::Pcmu),
        Box::new(pb),
        &FixedRng(2),
        t0,
        wall,
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let pcm = [1000i16; FRAME_SAMPLES];
    let t = a.send_audio(t0, &pcm, &mut buf).unwrap().unwrap();
    assert_eq!(t.len, 12 + 160 + 10);
    let mut bad = buf[..t.len].to_vec();
    bad[40] ^= 1;
    assert_eq!(
        b.handle_receive(t0, addr(A), Channel::Rtp, &mut bad),
        Err(SessionError::Srtp(SrtpError::AuthenticationFailed))
    );
    // A packet in clear (no tag) is refused too.
    let mut clear_pkt = buf[..12 + 160].to_vec();
    assert!(matches!(
        b.handle_receive(t0, addr(A), Channel::Rtp, &mut clear_pkt),
        Err(SessionError::Srtp(_))
    ));
    let mut good = buf[..t.len].to_vec();
    assert!(matches!(
        b.handle_receive(t0, addr(A), Channel::Rtp, &mut good),
        Ok(Received::Audio { .. })
    ));
    let s = b.stats();
    assert_eq!((s.packets_received, s.packets_dropped), (1, 2));
}

#[test]
fn comedia_latches_the_first_valid_source() {
    let t0 = t0();
    let wall = wall();
    let nat = addr("127.0.0.1:51000");
    let other = addr("127.0.0.1:52000");
    let mut a = RtpSession::new(
        MediaConfig::to(addr(B), Codec::Pcmu),
        Box::new(NoProtection::new()),
        &FixedRng(1),
        t0,
        wall,
    )
    .unwrap();
    // B was told (by SDP) a private address it cannot reach; it learns the real one.
    let cfg = MediaConfig {
        latching: true,
        ..MediaConfig::to(addr("127.0.0.1:9"), Codec::Pcmu)
    };
    let mut b =
        RtpSession::new(cfg, Box::new(NoProtection::new()), &FixedRng(2), t0, wall).unwrap();
    let mut buf = [0u8; 256];
    let pcm = [0i16; FRAME_SAMPLES];
    // An invalid packet (unknown payload type) from elsewhere does not latch.
    let mut junk = [0x80u8, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9, 1, 2];
    assert_eq!(
        b.handle_receive(t0, other, Channel::Rtp, &mut junk),
        Err(SessionError::UnknownPayloadType(96))
    );
    assert_eq!(b.remote_rtp(), Some(addr("127.0.0.1:9")));
    let t = a.send_audio(t0, &pcm, &mut buf).unwrap().unwrap();
    b.handle_receive(t0, nat, Channel::Rtp, &mut buf[..t.len])
        .unwrap();
    assert_eq!(b.remote_rtp(), Some(nat));
    assert_eq!(b.remote_rtcp(), Some(addr("127.0.0.1:51001")));
    // B now answers to the latched address...
    let back = b.send_audio(t0, &pcm, &mut buf).unwrap().unwrap();
    assert_eq!(back.dst, nat);
    // ...and refuses a valid packet from any other source.
    let t = a
        .send_audio(t0 + Duration::from_millis(20), &pcm, &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(
        b.handle_receive(t0, other, Channel::Rtp, &mut buf[..t.len]),
        Err(SessionError::ForeignSource)
    );
    assert_eq!(b.stats().packets_dropped, 2);
    // Without latching, the configured address stays.
    let mut c = RtpSession::new(
        MediaConfig::to(addr(A), Codec::Pcmu),
        Box::new(NoProtection::new()),
        &FixedRng(3),
        t0,
        wall,
    )
    .unwrap();
    let t = a
        .send_audio(t0 + Duration::from_millis(40), &pcm, &mut buf)
        .unwrap()
        .unwrap();
    c.handle_receive(t0, nat, Channel::Rtp, &mut buf[..t.len])
        .unwrap();
    assert_eq!(c.remote_rtp(), Some(addr(A)));
}

#[test]
fn no_remote_no_send_and_marker_on_first_packet() {
    let t0 = t0();
    let cfg = MediaConfig {
        latching: true,
        ..MediaConfig::default()
    };
    let mut s =
        RtpSession::new(cfg, Box::new(NoProtection::new()), &FixedRng(4), t0, wall()).unwrap();
    let mut buf = [0u8; 256];
    let pcm = [0i16; FRAME_SAMPLES];
    let ts0 = s.next_timestamp();
    assert_eq!(s.send_audio(t0, &pcm, &mut buf).unwrap(), None);
    // The timeline advanced although nothing was sent.
    assert_eq!(s.next_timestamp(), ts0.wrapping_add(160));
    s.set_remote(Some(addr(B)), None);
    let t = s.send_audio(t0, &pcm, &mut buf).unwrap().unwrap();
    assert_eq!(buf[1], 0x80, "marker and PT 0 on the first packet");
    let seq0 = u16::from_be_bytes([buf[2], buf[3]]);
    assert_eq!(
        u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ts0.wrapping_add(160)
    );
    assert_eq!(
        u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        s.local_ssrc()
    );
    assert_eq!(t.len, 172);
    s.send_audio(t0, &pcm, &mut buf).unwrap().unwrap();
    assert_eq!(buf[1], 0x00, "no marker afterwards");
    assert_eq!(u16::from_be_bytes([buf[2], buf[3]]), seq0.wrapping_add(1));
    s.mark_talkspurt();
    s.send_audio(t0, &pcm, &mut buf).unwrap().unwrap();
    assert_eq!(buf[1], 0x80);
    // Too small a buffer is an error, not a panic.
    assert_eq!(
        s.send_audio(t0, &pcm, &mut buf[..100]),
        Err(SessionError::BufferTooSmall { need: 172 })
    );
    assert_eq!(s.stats().packets_sent, 3);
}

#[test]
fn frames_report_what_they_hold() {
    let link = Link {
        delay: Duration::from_millis(5),
        jitter_ms: 0,
        loss_percent: 50,
        dup_percent: 0,
    };
    let o = call(Codec::Pcmu, 440.0, link, 1, clear());
    let jb = o.receiver.stats().jitter_buffer;
    assert!(o.netem_lost > 10);
    assert_eq!(jb.frames_played, 50 - o.netem_lost);
    assert_eq!(jb.frames_partial, 0);
    assert_eq!(
        jb.frames_played + jb.frames_concealed,
        (o.recording.len() / FRAME_SAMPLES) as u64
    );
}

/// Counts packets and stamps outgoing RTP with payload type 8 (the hook may rewrite).
#[derive(Default)]
struct Counter {
    seen: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl sotto_media::hook::PacketModifier for Counter {
    fn outgoing_rtp(&mut self, pkt: &mut sotto_media::hook::PacketMut<'_>) {
        self.seen.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(b) = pkt.as_bytes_mut().get_mut(1) {
            *b = (*b & 0x80) | 8;
        }
    }
    fn incoming_rtp(&mut self, _pkt: &mut sotto_media::hook::PacketMut<'_>) {
        self.seen
            .fetch_add(100, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn packet_modifier_hook_runs_without_srtp() {
    let t0 = t0();
    let seen = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut pa = NoProtection::new();
    pa.set_modifier(Box::new(Counter { seen: seen.clone() }));
    let mut pb = NoProtection::new();
    pb.set_modifier(Box::new(Counter { seen: seen.clone() }));
    let mut a = RtpSession::new(
        MediaConfig::to(addr(B), Codec::Pcmu),
        Box::new(pa),
        &FixedRng(1),
        t0,
        wall(),
    )
    .unwrap();
    let mut b = RtpSession::new(
        MediaConfig::to(addr(A), Codec::Pcmu),
        Box::new(pb),
        &FixedRng(2),
        t0,
        wall(),
    )
    .unwrap();
    let mut buf = [0u8; 256];
    let t = a
        .send_audio(t0, &[0; FRAME_SAMPLES], &mut buf)
        .unwrap()
        .unwrap();
    assert_eq!(buf[1] & 0x7f, 8, "rewritten by the hook");
    // B accepts PCMA too, and sees the packet after its own hook ran.
    assert!(matches!(
        b.handle_receive(t0, addr(A), Channel::Rtp, &mut buf[..t.len]),
        Ok(Received::Audio {
            payload_type: 8,
            ..
        })
    ));
    assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), 101);
}
