//! `sotto bench zrtp`: whole ZRTP handshakes between two in-process engines, measured as
//! `bench/zrtp/bzrtp_bench.c` measures Linphone's bzrtp: for each handshake both endpoints
//! are created (ZID cache, hash chain, Hello), every packet one sends is handed to the other
//! at once (no loss, no timer fires), until both have their SRTP keys; both peers' work is
//! counted, with no cache entry for the peer (cacheless). Process CPU time and wall time.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, bail};
use sotto_media::zrtp::algorithms::Algorithm;
use sotto_media::zrtp::{
    ZidCache, ZrtpCipher, ZrtpConfig, ZrtpEngine, ZrtpEvent, ZrtpKeyAgreement, ZrtpPreferences,
};

/// Arguments of `sotto bench zrtp`.
#[derive(Debug, clap::Args)]
pub(crate) struct ZrtpBenchArgs {
    /// Key agreement: X255, X448, DH3k or DH2k.
    #[arg(long, default_value = "X255")]
    key_agreement: String,
    /// Number of handshakes.
    #[arg(long, default_value_t = 200)]
    handshakes: u64,
    /// Cipher: AES1 (what two default bzrtp endpoints agree on) or AES3. It sets the DH
    /// exponent length (twice the key length, RFC 6189 §5.1.5).
    #[arg(long, default_value = "AES1")]
    cipher: String,
}

fn endpoint(
    ka: ZrtpKeyAgreement,
    cipher: ZrtpCipher,
    zid: u8,
    ssrc: u32,
) -> anyhow::Result<ZrtpEngine> {
    let provider = sotto_crypto_rust::provider();
    let mut c = ZrtpConfig::new(ssrc);
    c.preferences = ZrtpPreferences {
        ciphers: vec![cipher],
        ..ZrtpPreferences::with_key_agreement(ka)
    };
    let cache = Arc::new(Mutex::new(ZidCache::new([zid; 12])));
    ZrtpEngine::new(provider, c, cache).map_err(|e| anyhow::anyhow!("ZRTP engine: {e}"))
}

/// One handshake; returns whether both sides got keys.
fn handshake(ka: ZrtpKeyAgreement, cipher: ZrtpCipher, now: Instant) -> anyhow::Result<bool> {
    let mut a = endpoint(ka, cipher, 1, 0x1111_1111)?;
    let mut b = endpoint(ka, cipher, 2, 0x2222_2222)?;
    let mut buf = [0u8; 2048];
    let (mut sa, mut sb) = (false, false);
    for _ in 0..64 {
        let mut moved = false;
        while let Some(n) = a.poll_transmit(now, &mut buf) {
            b.handle_packet(now, &buf[..n]);
            moved = true;
        }
        while let Some(n) = b.poll_transmit(now, &mut buf) {
            a.handle_packet(now, &buf[..n]);
            moved = true;
        }
        for (e, s) in [(&mut a, &mut sa), (&mut b, &mut sb)] {
            while let Some(ev) = e.poll_event() {
                match ev {
                    ZrtpEvent::Secure(..) => *s = true,
                    ZrtpEvent::Failed(r) => bail!("handshake failed: {r}"),
                    _ => {}
                }
            }
        }
        if (sa && sb) || !moved {
            break;
        }
    }
    Ok(sa && sb)
}

/// Runs the benchmark.
pub(crate) fn run(args: ZrtpBenchArgs, json: bool) -> anyhow::Result<()> {
    let name = format!("{:<4}", args.key_agreement);
    let ka = ZrtpKeyAgreement::from_name(name.as_bytes()).with_context(|| {
        format!(
            "--key-agreement {}: expected X255, X448, DH3k or DH2k",
            args.key_agreement
        )
    })?;
    let cipher = ZrtpCipher::from_name(args.cipher.as_bytes())
        .with_context(|| format!("--cipher {}: expected AES1 or AES3", args.cipher))?;
    if args.handshakes == 0 {
        bail!("--handshakes must be above 0");
    }
    // The engines take time from their caller; one reading serves (no timer fires).
    #[allow(clippy::disallowed_methods)]
    let now = Instant::now();
    if !handshake(ka, cipher, now)? {
        bail!("the warm-up handshake did not complete");
    }
    let (c0, w0) = (super::cpu_seconds()?, Instant::now());
    for i in 0..args.handshakes {
        if !handshake(ka, cipher, now)? {
            bail!("handshake {i} did not complete");
        }
        if !json && args.handshakes >= 10 && i % (args.handshakes / 10) == 0 {
            eprint!(".");
        }
    }
    let (cpu, wall) = (super::cpu_seconds()? - c0, w0.elapsed().as_secs_f64());
    let n = args.handshakes as f64;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "impl": "sotto", "key_agreement": ka.label(), "cipher": cipher.label(),
                "handshakes": args.handshakes,
                "cpu_ms_per_handshake": (cpu * 1e3 / n * 1e4).round() / 1e4,
                "wall_ms_per_handshake": (wall * 1e3 / n * 1e4).round() / 1e4,
            })
        );
    } else {
        eprintln!();
        println!(
            "zrtp {}: {} handshakes, {:.3} ms CPU and {:.3} ms wall per handshake (both peers)",
            ka.label(),
            args.handshakes,
            cpu * 1e3 / n,
            wall * 1e3 / n
        );
    }
    Ok(())
}
