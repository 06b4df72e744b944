//! A call's media behind the key-exchange seam: nothing flows before keys, SRTP once a key
//! exchange delivers them, key-exchange packets demultiplexed from media on one port
//! (RFC 7983), and a failed exchange shuts media with its reason.

// Tests start their virtual clock from the real one.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use sotto_crypto::rng::SecureRandom;
use sotto_media::audio::{Codec, FRAME_SAMPLES, Tone};
use sotto_media::call::{CallMedia, Inbound, MediaError, MediaEvent};
use sotto_media::keyx::{
    KeyExchangeError, KeyExchangeEvent, KeyMethod, MediaKeyExchange, MediaProtection, RemoteMedia,
    SdpAttribute, SrtpKeys,
};
use sotto_media::session::{Channel, MediaConfig, NoProtection, RtpSession};
use sotto_media::{SrtpPolicy, SrtpSuite};

fn provider() -> &'static sotto_crypto::CryptoProvider {
    sotto_crypto_rust::provider()
}

/// A key exchange on the media path: it sends one "hello" (a ZRTP-looking packet) and
/// delivers keys once it got the peer's, or fails on a packet saying so.
#[derive(Debug)]
struct Handshake {
    side: u8,
    hello_sent: bool,
    events: Vec<KeyExchangeEvent>,
}

fn policy(key: u8) -> SrtpPolicy {
    SrtpPolicy::new(SrtpSuite::AesCm128HmacSha1_80, &[key; 16], &[key; 14])
}

fn hello(side: u8, fail: bool) -> Vec<u8> {
    let mut p = vec![0x10, 0, 0, 0];
    p.extend_from_slice(b"ZRTP");
    p.push(side);
    p.push(u8::from(fail));
    p
}

impl MediaKeyExchange for Handshake {
    fn method(&self) -> KeyMethod {
        KeyMethod::Zrtp
    }
    fn profile(&self) -> &'static str {
        "RTP/AVP"
    }
    fn offer(&mut self, _rng: &dyn SecureRandom) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        Ok(vec![SdpAttribute::new("x-handshake", "1")])
    }
    fn answer(
        &mut self,
        _offered: RemoteMedia<'_>,
        _rng: &dyn SecureRandom,
    ) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        Ok(Vec::new())
    }
    fn answered(&mut self, _answer: RemoteMedia<'_>) -> Result<(), KeyExchangeError> {
        Ok(())
    }
    fn protection(&self) -> MediaProtection {
        MediaProtection::Zrtp {
            suite: None,
            sas: None,
            verified: false,
            details: None,
        }
    }
    fn handle_packet(&mut self, _now: Instant, _channel: Channel, packet: &[u8]) {
        let peer = packet.get(8).copied().unwrap_or(0);
        if packet.get(9) == Some(&1) {
            self.events.push(KeyExchangeEvent::Failed {
                reason: "the peer aborted".into(),
            });
            return;
        }
        // Each side sends with its own key and receives with the peer's.
        self.events.push(KeyExchangeEvent::KeysReady(SrtpKeys {
            outbound: policy(self.side),
            inbound: policy(peer),
            rtcp: None,
        }));
        self.events
            .push(KeyExchangeEvent::Protection(MediaProtection::Zrtp {
                suite: Some("AES_CM_128_HMAC_SHA1_80".into()),
                sas: Some("h441".into()),
                verified: false,
                details: None,
            }));
    }
    fn poll_transmit(&mut self, _now: Instant, buf: &mut [u8]) -> Option<(usize, Channel)> {
        if self.hello_sent {
            return None;
        }
        self.hello_sent = true;
        let h = hello(self.side, false);
        buf.get_mut(..h.len())?.copy_from_slice(&h);
        Some((h.len(), Channel::Rtp))
    }
    fn poll_event(&mut self) -> Option<KeyExchangeEvent> {
        (!self.events.is_empty()).then(|| self.events.remove(0))
    }
}

fn media(side: u8, peer: SocketAddr, t0: Instant) -> CallMedia {
    let mut cfg = MediaConfig::to(peer, Codec::Pcmu);
    cfg.rtcp_mux = true;
    let s = RtpSession::new(
        cfg,
        Box::new(NoProtection::new()),
        provider().rng,
        t0,
        SystemTime::now(),
    )
    .unwrap();
    let keyx = Handshake {
        side,
        hello_sent: false,
        events: Vec::new(),
    };
    CallMedia::new(provider(), Box::new(keyx), vec![s])
}

#[test]
fn nothing_flows_before_keys_then_srtp_both_ways() {
    let t0 = Instant::now();
    let (a_addr, b_addr): (SocketAddr, SocketAddr) = (
        "127.0.0.1:4000".parse().unwrap(),
        "127.0.0.1:5000".parse().unwrap(),
    );
    let mut a = media(1, b_addr, t0);
    let mut b = media(2, a_addr, t0);
    let mut tone = Tone::new(1000.0, 8000, 8000);
    let mut pcm = [0i16; FRAME_SAMPLES];
    let mut buf = [0u8; 1500];
    tone.fill(&mut pcm);

    // Before keys: no frame leaves, and a forged plain RTP packet is not taken.
    assert!(!a.is_flowing());
    assert_eq!(a.send_audio(t0, 0, &pcm, &mut buf).unwrap(), None);
    let mut plain = [0x80u8, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 9, 0xff, 0xff];
    assert_eq!(
        b.handle_packet(t0, 0, a_addr, Channel::Rtp, &mut plain),
        Err(MediaError::NotSecured)
    );

    // The handshake crosses on the media port (demultiplexed from RTP): keys on both sides.
    let cross = |from: &mut CallMedia, to: &mut CallMedia, from_addr: SocketAddr| {
        let mut buf = [0u8; 1500];
        let (stream, t) = from.poll_transmit(t0, &mut buf).unwrap().expect("a hello");
        assert_eq!(stream, 0);
        let mut pkt = buf[..t.len].to_vec();
        assert_eq!(
            to.handle_packet(t0, 0, from_addr, Channel::Rtp, &mut pkt),
            Ok(Inbound::KeyExchange)
        );
    };
    cross(&mut a, &mut b, a_addr);
    cross(&mut b, &mut a, b_addr);
    for m in [&mut a, &mut b] {
        assert_eq!(m.poll_event(), Some(MediaEvent::Secured));
        assert!(matches!(
            m.poll_event(),
            Some(MediaEvent::Protection(MediaProtection::Zrtp {
                sas: Some(_),
                ..
            }))
        ));
        assert!(m.is_flowing());
    }

    // Now audio flows, protected: the packet carries an SRTP tag and decodes on the far side.
    let mut heard = 0;
    for i in 0..20u64 {
        let now = t0 + Duration::from_millis(20 * i);
        tone.fill(&mut pcm);
        let t = a
            .send_audio(now, 0, &pcm, &mut buf)
            .unwrap()
            .expect("a packet");
        assert_eq!(
            t.len,
            12 + FRAME_SAMPLES + 10,
            "G.711 frame plus an 80-bit tag"
        );
        let mut pkt = buf[..t.len].to_vec();
        assert!(matches!(
            b.handle_packet(now, 0, a_addr, Channel::Rtp, &mut pkt),
            Ok(Inbound::Media(_))
        ));
        let mut out = [0i16; FRAME_SAMPLES];
        while b
            .poll_audio(now + Duration::from_millis(200), 0, &mut out)
            .is_some()
        {
            heard += 1;
        }
    }
    assert!(heard > 0);
    assert_eq!(b.stats(0).unwrap().packets_received, 20);
    assert_eq!(b.stats(0).unwrap().protection, "srtp");
}

#[test]
fn a_failed_exchange_keeps_media_shut_and_says_why() {
    let t0 = Instant::now();
    let a_addr: SocketAddr = "127.0.0.1:4000".parse().unwrap();
    let mut b = media(2, a_addr, t0);
    let mut abort = hello(1, true);
    assert_eq!(
        b.handle_packet(t0, 0, a_addr, Channel::Rtp, &mut abort),
        Ok(Inbound::KeyExchange)
    );
    assert_eq!(
        b.poll_event(),
        Some(MediaEvent::Failed {
            reason: "the peer aborted".into()
        })
    );
    let mut pcm = [0i16; FRAME_SAMPLES];
    let mut buf = [0u8; 1500];
    pcm[0] = 1;
    assert_eq!(b.send_audio(t0, 0, &pcm, &mut buf).unwrap(), None);
    assert!(!b.is_flowing());
}
