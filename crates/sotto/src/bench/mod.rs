//! `sotto bench`: hot-path benchmarks that print JSON.

mod dtls;
mod lime;
mod lime_liblime;
mod registrar;
mod sip;
mod srtp;
mod zrtp;

use clap::Subcommand;

// Counts heap allocations (`sotto bench registrar` reports them per flow): the binary's
// global allocator, defined in main.rs.
use crate::GLOBAL;

/// Benchmarks of sotto's hot paths.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// SRTP/SRTCP protect and unprotect throughput.
    Srtp(srtp::SrtpBenchArgs),
    /// SIP parse + serialize throughput.
    Sip(sip::SipBenchArgs),
    /// Digest-authenticated REGISTER flows through the proxy core, in process.
    Registrar(registrar::RegistrarBenchArgs),
    /// Whole ZRTP handshakes between two in-process endpoints (CPU per handshake).
    Zrtp(zrtp::ZrtpBenchArgs),
    /// Whole DTLS-SRTP key exchanges between two in-process endpoints (CPU per exchange).
    Dtls(dtls::DtlsBenchArgs),
    /// LIME: messages/s (in memory and persisted), first message, 100 devices, key server.
    Lime(lime::LimeBenchArgs),
}

/// Process CPU time in seconds (all threads), as the C harnesses of `bench/` read it.
pub(crate) fn cpu_seconds() -> anyhow::Result<f64> {
    use anyhow::Context;
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .context("reading the process CPU clock")?;
    Ok(t.tv_sec() as f64 + t.tv_nsec() as f64 / 1e9)
}

/// Runs one benchmark command.
pub(crate) fn run(cmd: BenchCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Srtp(args) => srtp::run(args, json),
        BenchCommand::Sip(args) => sip::run(args, json),
        BenchCommand::Registrar(args) => registrar::run(args, json),
        BenchCommand::Zrtp(args) => zrtp::run(args, json),
        BenchCommand::Dtls(args) => dtls::run(args, json),
        BenchCommand::Lime(args) => lime::run(args, json),
    }
}
