//! `sotto bench sip`.

/// Arguments of `sotto bench sip`.
#[derive(Debug, clap::Args)]
pub(crate) struct SipBenchArgs {}

/// Runs the benchmark.
pub(crate) fn run(_args: SipBenchArgs, _json: bool) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
