//! `sotto`: the command-line entry point.
//!
//! Every command accepts `--json`, which makes it print one JSON object per line.
//! Exit codes: 0 success, 1 runtime failure, 2 usage error (clap), 3 a check failed.

mod agent;
mod bench;
mod config;
mod init;
mod responder;
mod server;
mod user;

use clap::{Parser, Subcommand};

/// sotto: a memory-safe, secure-by-default voice, video and messaging stack.
#[derive(Debug, Parser)]
#[command(name = "sotto", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Print machine-readable output: one JSON object per line.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the version and build facts.
    Version,
    /// Run a benchmark of a hot path and print its figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// A minimal SIP responder: answers OPTIONS with 200 OK (diagnostics and interop tests).
    Responder(responder::ResponderArgs),
    /// Write a data directory: config file, local CA, server certificate, user database.
    Init(init::InitArgs),
    /// Manage user accounts (add, passwd, del, list).
    User(user::UserArgs),
    /// Run the registrar and proxy with the config file's listeners and stores.
    Server(server::ServerArgs),
    /// The user agent: init an account, register, call, listen.
    Agent(agent::AgentArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Version => {
            print_version(cli.json);
            Ok(())
        }
        Command::Bench(cmd) => bench::run(cmd, cli.json),
        Command::Responder(args) => responder::run(args, cli.json),
        Command::Init(args) => init::run(args, cli.json),
        Command::User(args) => user::run(args, cli.json),
        Command::Server(args) => server::run(args, cli.json),
        Command::Agent(args) => agent::run(args, cli.json),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            if cli.json {
                println!(
                    "{}",
                    serde_json::json!({"error": format!("{err:#}"), "kind": "runtime"})
                );
            } else {
                eprintln!("sotto: error: {err:#}");
            }
            std::process::ExitCode::from(1)
        }
    }
}

fn print_version(json: bool) {
    let version = env!("CARGO_PKG_VERSION");
    if json {
        println!(
            "{}",
            serde_json::json!({"name": "sotto", "version": version, "crypto": sotto_crypto_rust::provider().name})
        );
    } else {
        println!(
            "sotto {version} (crypto backend: {})",
            sotto_crypto_rust::provider().name
        );
    }
}
