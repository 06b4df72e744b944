//! Fuzz target: DTLS-SRTP as the media path and the SDP bring it. The input's first line is
//! read as an `a=fingerprint` and an `a=setup` value; the rest, cut at every 0xFF octet, as
//! datagrams to both sides of a negotiated call (the offerer waiting for a ClientHello, the
//! answerer having sent one), on the RTP and the RTCP port. Nothing may panic, and no keys
//! may come out of anything but a genuine handshake.

#![no_main]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use sotto_crypto::dtls::{DtlsCertificate, SrtpProfile};
use sotto_media::dtls::{DtlsExchange, Fingerprint, Setup};
use sotto_media::keyx::{KeyExchangeEvent, MediaKeyExchange, RemoteMedia, SdpAttribute};
use sotto_media::session::Channel;

fn certs() -> &'static (Arc<DtlsCertificate>, Arc<DtlsCertificate>) {
    static CERTS: OnceLock<(Arc<DtlsCertificate>, Arc<DtlsCertificate>)> = OnceLock::new();
    CERTS.get_or_init(|| {
        let p = sotto_crypto_rust::provider();
        // invariant: the default provider makes certificates.
        let c = |n| Arc::new(p.dtls.generate_certificate(n).expect("certificate"));
        (c("a"), c("b"))
    })
}

fn remote(a: &[SdpAttribute]) -> RemoteMedia<'_> {
    RemoteMedia {
        profile: "UDP/TLS/RTP/SAVP",
        attributes: a,
    }
}

fuzz_target!(|data: &[u8]| {
    let (line, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(line);
    let _ = Fingerprint::parse(&text);
    let _ = Setup::parse(&text);

    let p = sotto_crypto_rust::provider();
    let (ca, cb) = certs();
    let mk = |c: &Arc<DtlsCertificate>| {
        // invariant: SHA-256 is in the default provider.
        DtlsExchange::new(p, c.clone(), SrtpProfile::ALL.to_vec(), true).expect("exchange")
    };
    let (mut a, mut b) = (mk(ca), mk(cb));
    let Ok(mut offer) = a.offer(p.rng) else { return };
    // The fuzzed line as one more attribute of the offer (a second fingerprint, say).
    offer.push(SdpAttribute::new("fingerprint", text.to_string()));
    let Ok(answer) = b.answer(remote(&offer), p.rng) else {
        return;
    };
    if a.answered(remote(&answer)).is_err() {
        return;
    }
    #[allow(clippy::disallowed_methods)]
    let mut now = Instant::now();
    let mut buf = [0u8; 2048];
    while b.poll_transmit(now, &mut buf).is_some() {}
    for (i, d) in rest.split(|&x| x == 0xFF).enumerate() {
        let ch = if i % 3 == 2 { Channel::Rtcp } else { Channel::Rtp };
        a.handle_packet(now, ch, d);
        b.handle_packet(now, ch, d);
        now += Duration::from_millis(300);
        a.handle_timeout(now);
        b.handle_timeout(now);
        while a.poll_transmit(now, &mut buf).is_some() {}
        while b.poll_transmit(now, &mut buf).is_some() {}
    }
    for x in [&mut a, &mut b] {
        while let Some(e) = x.poll_event() {
            assert!(
                !matches!(e, KeyExchangeEvent::KeysReady(_)),
                "keys from forged datagrams"
            );
        }
    }
});
