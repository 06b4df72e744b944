//! `sotto bench`: hot-path benchmarks that print JSON.

mod sip;
mod srtp;

use clap::Subcommand;

/// Benchmarks of sotto's hot paths.
#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// SRTP/SRTCP protect and unprotect throughput.
    Srtp(srtp::SrtpBenchArgs),
    /// SIP parse + serialize throughput.
    Sip(sip::SipBenchArgs),
}

/// Runs one benchmark command.
pub(crate) fn run(cmd: BenchCommand, json: bool) -> anyhow::Result<()> {
    match cmd {
        BenchCommand::Srtp(args) => srtp::run(args, json),
        BenchCommand::Sip(args) => sip::run(args, json),
    }
}
