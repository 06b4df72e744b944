//! `sotto server [--config F]`: runs the registrar and proxy (`sotto-server`) with the
//! listeners and stores of the config file until Ctrl-C/SIGTERM, then stops gracefully (what
//! is queued is sent). With `--json` (or `--log-format json`) it prints one JSON event per
//! line: `listening` per listener, `request` per request handled, `stopped`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sotto_net::tls::{self, ClientAuth};
use sotto_net::{Transport, TransportConfig, TransportKind};
use sotto_server::config::DowngradePolicy;
use sotto_server::{Outcome, Proxy, ProxyEvent, ServerConfig};
use sotto_store::{BindingStore, MemoryStore, SqliteStore, UserStore};

use crate::config::{self, Config, StorageKind};

/// Arguments of `sotto server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// The config file (written by `sotto init`).
    #[arg(long, value_name = "FILE", default_value_os_t = config::default_path())]
    config: PathBuf,
    /// Log format of the event lines: `text` or `json` (same as --json).
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    log_format: String,
}

/// Runs the server until interrupted.
pub(crate) fn run(args: ServerArgs, json: bool) -> anyhow::Result<()> {
    let json = json || args.log_format.eq_ignore_ascii_case("json");
    let config = config::load(&args.config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, json))
}

/// The core's configuration from the file's.
fn core_config(c: &Config) -> ServerConfig {
    let mut s = ServerConfig::for_domain(&c.server.domain);
    s.realm = c.server.realm.clone();
    let m = &c.modules;
    s.anti_flood.enabled = m.anti_flood.enabled;
    let window = f64::from(m.anti_flood.window_secs.max(1));
    s.anti_flood.rate_per_s = f64::from(m.anti_flood.max_requests) / window;
    s.anti_flood.burst = m.anti_flood.max_requests;
    s.anti_flood.ban_duration = Duration::from_secs(u64::from(m.anti_flood.ban_secs));
    s.sanity.enabled = m.sanity.enabled;
    s.authentication.enabled = m.authentication.enabled;
    s.authentication.algorithms = m.authentication.algorithms();
    s.authentication.nonce_lifetime =
        Duration::from_secs(u64::from(m.authentication.nonce_lifetime_secs));
    s.registrar.enabled = m.registrar.enabled;
    s.registrar.min_expires = Duration::from_secs(u64::from(c.registrar.min_expires));
    s.registrar.default_expires = Duration::from_secs(u64::from(c.registrar.default_expires));
    s.registrar.max_expires = Duration::from_secs(u64::from(c.registrar.max_expires));
    s.registrar.max_contacts = c.registrar.max_contacts as usize;
    s.router.enabled = m.router.enabled;
    s.forward.enabled = m.forward.enabled;
    s.forward.downgrade = match c.security.downgrade {
        config::Downgrade::Refuse => DowngradePolicy::Refuse,
        config::Downgrade::Warn => DowngradePolicy::Flag,
    };
    s
}

type Stores = (Arc<dyn UserStore>, Arc<dyn BindingStore>);

fn open_stores(c: &Config) -> anyhow::Result<Stores> {
    Ok(match c.storage.kind {
        StorageKind::Sqlite => {
            let path = c.resolve(&c.storage.path);
            let users = SqliteStore::open(&path)
                .with_context(|| format!("opening database {}", path.display()))?;
            let bindings = SqliteStore::open(&path)
                .with_context(|| format!("opening database {}", path.display()))?;
            (Arc::new(users), Arc::new(bindings))
        }
        StorageKind::Memory => {
            let m = Arc::new(MemoryStore::new());
            (m.clone(), m)
        }
    })
}

fn tls_server_config(c: &Config) -> anyhow::Result<Arc<sotto_net::rustls::ServerConfig>> {
    let cert = c.resolve(&c.tls.certificate);
    let key = c.resolve(&c.tls.key);
    let roots = || {
        let ca = c.resolve(&c.tls.ca);
        tls::read_certs(&ca).with_context(|| format!("reading CA {}", ca.display()))
    };
    let client_auth = match c.tls.client_auth {
        config::ClientAuth::None => ClientAuth::None,
        config::ClientAuth::Optional => ClientAuth::Optional { roots: roots()? },
        config::ClientAuth::Required => ClientAuth::Required { roots: roots()? },
    };
    tls::server_config_from_files(&cert, &key, client_auth)
        .with_context(|| format!("loading TLS certificate {} and key", cert.display()))
}

async fn serve(c: Config, json: bool) -> anyhow::Result<()> {
    let (users, bindings) = open_stores(&c)?;
    let (transport, mut incoming) = Transport::new(TransportConfig::default());
    let mut listeners: Vec<(TransportKind, SocketAddr)> = Vec::new();
    if !c.listen.tls.is_empty() {
        let tls_config = tls_server_config(&c)?;
        for addr in &c.listen.tls {
            let local = transport
                .listen_tls(*addr, tls_config.clone())
                .await
                .with_context(|| format!("listening on TLS {addr}"))?;
            listeners.push((TransportKind::Tls, local));
        }
    }
    for addr in &c.listen.tcp {
        let local = transport
            .listen_tcp(*addr)
            .await
            .with_context(|| format!("listening on TCP {addr}"))?;
        listeners.push((TransportKind::Tcp, local));
    }
    for addr in &c.listen.udp {
        let local = transport
            .bind_udp(*addr)
            .await
            .with_context(|| format!("binding UDP {addr}"))?;
        listeners.push((TransportKind::Udp, local));
    }
    if listeners.is_empty() {
        anyhow::bail!("nothing to listen on: [listen] has no tls, tcp or udp address");
    }
    for (kind, addr) in &listeners {
        if json {
            println!(
                "{}",
                serde_json::json!({"event": "listening", "transport": kind.as_str(), "addr": addr.to_string()})
            );
        } else {
            println!("listening on {} {addr}", kind.as_str());
        }
    }
    let mut proxy = Proxy::new(
        &core_config(&c),
        listeners,
        users,
        bindings,
        sotto_crypto_rust::provider(),
        Instant::now(),
    )
    .context("building the proxy")?;
    let mut handled: u64 = 0;
    sotto_server::driver::run(
        &mut proxy,
        &transport,
        &mut incoming,
        shutdown_signal(),
        |ev| {
            handled += 1;
            print_event(ev, json);
        },
    )
    .await;
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "stopped", "requests": handled})
        );
    } else {
        println!("stopped after {handled} requests");
    }
    Ok(())
}

fn print_event(ev: &ProxyEvent, json: bool) {
    let (outcome, status, branches) = match ev.outcome {
        Outcome::Replied(s) => ("replied", Some(s), None),
        Outcome::Forwarded(n) => ("forwarded", None, Some(n)),
        Outcome::Dropped => ("dropped", None, None),
    };
    if json {
        let mut v = serde_json::json!({
            "event": "request",
            "method": ev.method,
            "source": ev.source.to_string(),
            "transport": ev.transport.as_str(),
            "outcome": outcome,
            "module": ev.module,
        });
        if let Some(s) = status {
            v["status"] = s.into();
        }
        if let Some(n) = branches {
            v["branches"] = n.into();
        }
        if ev.auth_failure {
            v["auth_failure"] = true.into();
        }
        println!("{v}");
    } else {
        println!(
            "{} from {} over {}: {outcome}{} ({})",
            ev.method,
            ev.source,
            ev.transport.as_str(),
            status.map(|s| format!(" {s}")).unwrap_or_default(),
            ev.module
        );
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
