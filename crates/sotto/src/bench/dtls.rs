//! `sotto bench dtls`: whole DTLS-SRTP key exchanges between two in-process endpoints, as a
//! call makes them: offer and answer (a=setup, a=fingerprint), then the handshake (one, or
//! one per port without rtcp-mux), each datagram handed to the other side at once, until
//! both have SRTP keys checked against the fingerprints. The certificates are made once, as
//! the agent keeps its own. Both peers' work is counted; process CPU time and wall time.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use sotto_crypto::dtls::{DtlsCertificate, SrtpProfile};
use sotto_media::dtls::DtlsExchange;
use sotto_media::keyx::{KeyExchangeEvent, MediaKeyExchange, RemoteMedia, SdpAttribute};

/// Arguments of `sotto bench dtls`.
#[derive(Debug, clap::Args)]
pub(crate) struct DtlsBenchArgs {
    /// Number of key exchanges.
    #[arg(long, default_value_t = 200)]
    handshakes: u64,
    /// Without rtcp-mux: a second handshake on the RTCP port (what linphonec does).
    #[arg(long)]
    no_rtcp_mux: bool,
    /// SRTP profile both sides offer: SRTP_AES128_CM_SHA1_80 (linphonec's),
    /// SRTP_AEAD_AES_128_GCM, ...
    #[arg(long, default_value = "SRTP_AES128_CM_SHA1_80")]
    profile: String,
}

fn remote(attrs: &[SdpAttribute]) -> RemoteMedia<'_> {
    RemoteMedia {
        profile: "UDP/TLS/RTP/SAVP",
        attributes: attrs,
    }
}

/// One key exchange; returns the datagrams it took.
fn exchange(
    certs: &(Arc<DtlsCertificate>, Arc<DtlsCertificate>),
    profile: SrtpProfile,
    mux: bool,
    now: Instant,
) -> anyhow::Result<usize> {
    let p = sotto_crypto_rust::provider();
    let mk = |c: &Arc<DtlsCertificate>| {
        DtlsExchange::new(p, c.clone(), vec![profile], true).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let (mut a, mut b) = (mk(&certs.0)?, mk(&certs.1)?);
    let mut offer = a.offer(p.rng)?;
    let rtcp_mux = SdpAttribute {
        name: "rtcp-mux".into(),
        value: None,
    };
    if mux {
        offer.push(rtcp_mux.clone());
    }
    let mut answer = b.answer(remote(&offer), p.rng)?;
    if mux {
        answer.push(rtcp_mux);
    }
    a.answered(remote(&answer))?;
    let mut buf = [0u8; 2048];
    let (mut ka, mut kb, mut datagrams) = (false, false, 0);
    for _ in 0..64 {
        let mut moved = false;
        while let Some((n, ch)) = b.poll_transmit(now, &mut buf) {
            a.handle_packet(now, ch, &buf[..n]);
            (moved, datagrams) = (true, datagrams + 1);
        }
        while let Some((n, ch)) = a.poll_transmit(now, &mut buf) {
            b.handle_packet(now, ch, &buf[..n]);
            (moved, datagrams) = (true, datagrams + 1);
        }
        for (x, keyed) in [(&mut a, &mut ka), (&mut b, &mut kb)] {
            while let Some(ev) = x.poll_event() {
                match ev {
                    KeyExchangeEvent::KeysReady(_) => *keyed = true,
                    KeyExchangeEvent::Failed { reason } => bail!("handshake failed: {reason}"),
                    _ => {}
                }
            }
        }
        if (ka && kb) || !moved {
            break;
        }
    }
    if !(ka && kb) {
        bail!("the key exchange did not complete");
    }
    Ok(datagrams)
}

/// Runs the benchmark.
pub(crate) fn run(args: DtlsBenchArgs, json: bool) -> anyhow::Result<()> {
    let profile = SrtpProfile::ALL
        .into_iter()
        .find(|p| p.name().eq_ignore_ascii_case(&args.profile))
        .with_context(|| {
            format!(
                "--profile {}: expected one of {}",
                args.profile,
                SrtpProfile::ALL.map(|p| p.name()).join(", ")
            )
        })?;
    if args.handshakes == 0 {
        bail!("--handshakes must be above 0");
    }
    let p = sotto_crypto_rust::provider();
    let cert = |cn| p.dtls.generate_certificate(cn).map(Arc::new);
    let certs = (cert("a")?, cert("b")?);
    let mux = !args.no_rtcp_mux;
    // The exchanges take time from their caller; one reading serves (no timer fires).
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    let datagrams = exchange(&certs, profile, mux, now)?;
    let (c0, w0) = (super::cpu_seconds()?, Instant::now());
    for i in 0..args.handshakes {
        exchange(&certs, profile, mux, now).with_context(|| format!("key exchange {i}"))?;
        if !json && args.handshakes >= 10 && i % (args.handshakes / 10) == 0 {
            eprint!(".");
        }
    }
    let (cpu, wall) = (super::cpu_seconds()? - c0, w0.elapsed().as_secs_f64());
    let n = args.handshakes as f64;
    let handshakes = if mux { 1 } else { 2 };
    if json {
        println!(
            "{}",
            serde_json::json!({
                "impl": "sotto", "bench": "dtls", "profile": profile.name(),
                "handshakes_per_exchange": handshakes, "datagrams_per_exchange": datagrams,
                "exchanges": args.handshakes,
                "cpu_ms_per_exchange": (cpu * 1e3 / n * 1e4).round() / 1e4,
                "wall_ms_per_exchange": (wall * 1e3 / n * 1e4).round() / 1e4,
            })
        );
    } else {
        eprintln!();
        println!(
            "dtls-srtp {}: {} exchanges of {handshakes} handshake(s), {datagrams} datagrams \
             each, {:.3} ms CPU and {:.3} ms wall per exchange (both peers)",
            profile.name(),
            args.handshakes,
            cpu * 1e3 / n,
            wall * 1e3 / n
        );
    }
    Ok(())
}
