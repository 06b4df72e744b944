//! `sotto bench srtp`.

/// Arguments of `sotto bench srtp`.
#[derive(Debug, clap::Args)]
pub(crate) struct SrtpBenchArgs {}

/// Runs the benchmark.
pub(crate) fn run(_args: SrtpBenchArgs, _json: bool) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
