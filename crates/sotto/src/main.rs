//! `sotto`: the command-line entry point.
//!
//! Every command accepts `--json`, which makes it print one JSON object per line.
//! Exit codes: 0 success, 1 runtime failure, 2 usage error (clap), 3 a check failed.

mod agent;
mod agent_keys;
mod agent_output;
mod ban;
mod bench;
mod config;
mod init;
mod request_log;
mod responder;
mod server;
mod signals;
mod user;

use clap::{Parser, Subcommand};

/// The allocator under the counters: mimalloc (feature `mimalloc`, the default; it wins if
/// both are on), jemalloc (feature `jemalloc`) or the C library's malloc (neither). mimalloc
/// was chosen on the memory it gives back to the system once a load peak has passed (glibc's
/// malloc keeps the memory of ended transactions in the resident set) and on CPU time per
/// REGISTER flow; figures in bench/proxy/README.md, "Memory per registered contact".
#[cfg(feature = "mimalloc")]
type Allocator = mimalloc::MiMalloc;
#[cfg(feature = "mimalloc")]
const ALLOCATOR: Allocator = mimalloc::MiMalloc;
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
type Allocator = tikv_jemallocator::Jemalloc;
#[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
const ALLOCATOR: Allocator = tikv_jemallocator::Jemalloc;
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
type Allocator = std::alloc::System;
#[cfg(not(any(feature = "jemalloc", feature = "mimalloc")))]
const ALLOCATOR: Allocator = std::alloc::System;

static COUNTED: stats_alloc::StatsAlloc<Allocator> = stats_alloc::StatsAlloc::new(ALLOCATOR);

/// The global allocator, with counters (a few atomic additions per allocation): the live heap
/// bytes for the `sotto_heap_bytes` gauge ([`heap_bytes`]) and the allocation counts of
/// `sotto bench registrar`.
#[global_allocator]
pub(crate) static GLOBAL: &stats_alloc::StatsAlloc<Allocator> = &COUNTED;

/// Heap bytes in use: requested by allocations and not freed yet (the allocator's own
/// overhead and the memory it keeps cached are not counted: see the resident set for those).
pub(crate) fn heap_bytes() -> u64 {
    let s = GLOBAL.stats();
    u64::try_from(s.bytes_allocated.saturating_sub(s.bytes_deallocated)).unwrap_or(u64::MAX)
}

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
    /// List or lift the bans and lockouts of a running server.
    Ban(ban::BanArgs),
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
        Command::Server(args) => {
            let _ = sotto_server::metrics::HEAP_BYTES.set(heap_bytes);
            // jemalloc: purge freed memory in the background (after its decay time, 10 s by
            // default), so that the resident set goes down once a load peak has passed even
            // when no allocation happens. Without it the server still runs.
            #[cfg(all(feature = "jemalloc", not(feature = "mimalloc")))]
            let _ = tikv_jemalloc_ctl::background_thread::write(true);
            server::run(args, cli.json)
        }
        Command::Agent(args) => agent::run(args, cli.json),
        Command::Ban(args) => match ban::run(args, cli.json) {
            // Nothing to lift: a check that failed.
            Ok(false) => return std::process::ExitCode::from(3),
            Ok(true) => Ok(()),
            Err(e) => Err(e),
        },
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            let text = error_text(&err);
            if cli.json {
                println!("{}", serde_json::json!({"error": text, "kind": "runtime"}));
            } else {
                eprintln!("sotto: error: {text}");
            }
            std::process::ExitCode::from(1)
        }
    }
}

/// An error and its causes on one line, each said once: an error whose message already quotes
/// its cause (`I/O error: Address already in use`) is not followed by that cause again.
fn error_text(err: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in err.chain() {
        let s = cause.to_string();
        if text.contains(&s) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&s);
    }
    text
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

#[cfg(test)]
mod tests {
    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let inner = sotto_net::Error::Io(io);
        let err = anyhow::Error::new(inner).context("listening on TLS 0.0.0.0:5061");
        let text = super::error_text(&err);
        assert_eq!(text.matches("address in use").count(), 1, "{text}");
        assert!(
            text.starts_with("listening on TLS 0.0.0.0:5061: "),
            "{text}"
        );
    }
}
