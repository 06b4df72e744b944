//! `sotto bench srtp`: SRTP protect/unprotect throughput through the public
//! [`sotto_media::srtp::SrtpSession`] API with the default crypto backend.
//!
//! Workload (the same as `bench/libsrtp/`'s C harness): one SSRC, RTP packets of a 12-byte
//! header plus `--payload` bytes, sequence numbers counting up from 1. Packets are processed
//! in batches of [`BATCH`]: the protect phase copies the clear packet into its slot and
//! protects it in place; the unprotect phase verifies and decrypts the batch in place. Each
//! phase is timed on its own. No heap allocation happens inside either phase.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use sotto_media::srtp::{SrtpPolicy, SrtpSession, SrtpSuite};

/// Packets per batch.
const BATCH: usize = 1024;
/// Room after each packet for the SRTP trailer.
const TRAILER_ROOM: usize = 32;

/// Arguments of `sotto bench srtp`.
#[derive(Debug, clap::Args)]
pub(crate) struct SrtpBenchArgs {
    /// Crypto suite (SDES name), e.g. AES_CM_128_HMAC_SHA1_80 or AEAD_AES_128_GCM.
    #[arg(long, default_value = "AES_CM_128_HMAC_SHA1_80")]
    suite: String,
    /// RTP payload bytes after the 12-byte header.
    #[arg(long, default_value_t = 160)]
    payload: usize,
    /// Number of packets to protect and then unprotect.
    #[arg(long, default_value_t = 1_000_000)]
    packets: u64,
}

/// The figures of one benchmark run.
#[derive(Debug, Clone, Copy)]
struct Figures {
    suite: SrtpSuite,
    protect_pps: f64,
    unprotect_pps: f64,
}

/// Runs the benchmark.
pub(crate) fn run(args: SrtpBenchArgs, json: bool) -> anyhow::Result<()> {
    let f = measure(&args)?;
    let (suite, protect_pps, unprotect_pps) = (f.suite, f.protect_pps, f.unprotect_pps);
    let provider = sotto_crypto_rust::provider();
    if json {
        // Field order as documented: suite, payload, packets, protect_pps, unprotect_pps.
        println!(
            "{{\"suite\":{},\"payload\":{},\"packets\":{},\"protect_pps\":{:.0},\"unprotect_pps\":{:.0}}}",
            serde_json::Value::from(suite.name()),
            args.payload,
            args.packets,
            protect_pps,
            unprotect_pps,
        );
    } else {
        println!(
            "srtp {} payload {} B, {} packets: protect {:.0} packets/s, unprotect {:.0} packets/s (backend {})",
            suite.name(),
            args.payload,
            args.packets,
            protect_pps,
            unprotect_pps,
            provider.name
        );
    }
    Ok(())
}

/// Protects then unprotects `args.packets` packets and returns the rates.
fn measure(args: &SrtpBenchArgs) -> anyhow::Result<Figures> {
    let suite = SrtpSuite::from_name(&args.suite)
        .with_context(|| format!("unknown suite {:?}", args.suite))?;
    if suite.is_null_cipher() {
        bail!("the NULL suites are not benchmarked");
    }
    if args.payload > 65_000 {
        bail!("payload too large");
    }
    if args.packets == 0 {
        bail!("--packets must be at least 1");
    }
    let provider = sotto_crypto_rust::provider();
    // Fixed, non-secret benchmark keys (the C harness uses the same bytes).
    let key: Vec<u8> = (0..suite.master_key_len() as u8)
        .map(|i| i.wrapping_mul(7).wrapping_add(1))
        .collect();
    let salt: Vec<u8> = (0..suite.master_salt_len() as u8)
        .map(|i| i.wrapping_mul(13).wrapping_add(5))
        .collect();
    let policy = SrtpPolicy::new(suite, &key, &salt);
    let mut tx = SrtpSession::new(provider, policy.clone())?;
    let mut rx = SrtpSession::new(provider, policy)?;

    let pkt_len = 12 + args.payload;
    let slot = pkt_len + TRAILER_ROOM;
    let mut template = vec![0u8; pkt_len];
    template[0] = 0x80;
    template[1] = 0; // PT 0 (PCMU)
    template[8..12].copy_from_slice(&0xdead_beef_u32.to_be_bytes());
    for (i, b) in template[12..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(31);
    }
    let mut batch = vec![0u8; slot * BATCH];
    let mut lens = [0usize; BATCH];
    let (mut t_protect, mut t_unprotect) = (Duration::ZERO, Duration::ZERO);
    let mut seq: u16 = 0;
    let mut ts: u32 = 0;
    let mut done: u64 = 0;
    while done < args.packets {
        let n = usize::try_from((args.packets - done).min(BATCH as u64))?;
        let t0 = Instant::now();
        for (i, chunk) in batch.chunks_exact_mut(slot).take(n).enumerate() {
            seq = seq.wrapping_add(1);
            ts = ts.wrapping_add(160);
            chunk[..pkt_len].copy_from_slice(&template);
            chunk[2..4].copy_from_slice(&seq.to_be_bytes());
            chunk[4..8].copy_from_slice(&ts.to_be_bytes());
            lens[i] = tx.protect_rtp(chunk, pkt_len)?;
        }
        let t1 = Instant::now();
        for (i, chunk) in batch.chunks_exact_mut(slot).take(n).enumerate() {
            let m = rx.unprotect_rtp(&mut chunk[..lens[i]])?;
            if m != pkt_len {
                bail!("unprotect returned {m} bytes, expected {pkt_len}");
            }
        }
        let t2 = Instant::now();
        // Outside the timed phases: the last packet decrypted to the clear payload.
        if batch[slot * (n - 1) + 12..slot * (n - 1) + pkt_len] != template[12..] {
            bail!("unprotect did not restore the payload");
        }
        t_protect += t1 - t0;
        t_unprotect += t2 - t1;
        done += n as u64;
    }
    let protect_pps = args.packets as f64 / t_protect.as_secs_f64();
    let unprotect_pps = args.packets as f64 / t_unprotect.as_secs_f64();
    Ok(Figures {
        suite,
        protect_pps,
        unprotect_pps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secure_suite_runs_and_round_trips() {
        for suite in &SrtpSuite::ALL[..8] {
            for payload in [0, 1200] {
                let args = SrtpBenchArgs {
                    suite: suite.name().to_string(),
                    payload,
                    packets: 1100,
                };
                let f = measure(&args).unwrap();
                assert_eq!(f.suite, *suite);
                assert!(f.protect_pps > 0.0 && f.unprotect_pps > 0.0);
            }
        }
        let bad = SrtpBenchArgs {
            suite: "NULL_NULL".into(),
            payload: 10,
            packets: 10,
        };
        assert!(measure(&bad).is_err());
    }
}
