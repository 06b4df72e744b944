//! `sotto ban list|lift`: the bans and account lockouts a running server holds, through its
//! control socket (`[admin] socket`).
//!
//! Exit codes: 0 done, 1 the server could not be reached, 3 `lift` found nothing to lift.

use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context as _;

use crate::config;

/// Arguments of `sotto ban`.
#[derive(Debug, clap::Args)]
pub(crate) struct BanArgs {
    /// The running server's config file (it names the control socket).
    #[arg(short = 'c', long, global = true, value_name = "FILE", default_value_os_t = config::default_path())]
    config: PathBuf,
    #[command(subcommand)]
    command: BanCommand,
}

/// The `sotto ban` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BanCommand {
    /// List the bans (whole addresses) and lockouts (one account from one address) in force.
    List,
    /// Lift every ban and lockout on an address (it starts afresh, escalation forgotten).
    Lift {
        /// The source address.
        source: IpAddr,
    },
}

/// Outcome of `sotto ban`: `Ok(false)` when `lift` found nothing (exit 3).
pub(crate) fn run(args: BanArgs, json: bool) -> anyhow::Result<bool> {
    let c = config::load(&args.config)?;
    if c.admin.socket.as_os_str().is_empty() {
        anyhow::bail!(
            "{}: [admin] socket is empty: the server has no control socket",
            args.config.display()
        );
    }
    let path = c.resolve(&c.admin.socket);
    let request = match &args.command {
        BanCommand::List => serde_json::json!({"command": "blocks"}),
        BanCommand::Lift { source } => {
            serde_json::json!({"command": "lift", "source": source.to_string()})
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let answer = runtime
        .block_on(sotto_server::driver::admin::request(&path, &request))
        .with_context(|| format!("is the server running? control socket {}", path.display()))?;
    if let Some(e) = answer["error"].as_str() {
        anyhow::bail!("the server refused: {e}");
    }
    match args.command {
        BanCommand::List => {
            let blocks = answer["blocks"].as_array().cloned().unwrap_or_default();
            if json {
                for b in &blocks {
                    println!("{b}");
                }
            } else if blocks.is_empty() {
                println!("no bans or lockouts");
            } else {
                for b in &blocks {
                    let what = match b["account"].as_str() {
                        Some(a) => format!("account {a} locked out from {}", text(&b["source"])),
                        None => format!("{} banned", text(&b["source"])),
                    };
                    println!(
                        "{what}: {} ({} s left)",
                        text(&b["reason"]),
                        b["remaining_secs"]
                    );
                }
            }
            Ok(true)
        }
        BanCommand::Lift { source } => {
            let lifted = answer["lifted"].as_u64().unwrap_or(0);
            if json {
                println!(
                    "{}",
                    serde_json::json!({"source": source.to_string(), "lifted": lifted})
                );
            } else if lifted == 0 {
                println!("nothing held against {source}");
            } else {
                println!("lifted {lifted} block(s) on {source}");
            }
            Ok(lifted > 0)
        }
    }
}

fn text(v: &serde_json::Value) -> &str {
    v.as_str().unwrap_or("?")
}
