//! `sotto responder`: answers OPTIONS with 200 OK over UDP/TCP/TLS.

/// Arguments of `sotto responder`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResponderArgs {}

/// Runs the responder until interrupted.
pub(crate) fn run(_args: ResponderArgs, _json: bool) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}
