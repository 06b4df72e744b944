//! `sotto server [--config F]`: runs the registrar and proxy (`sotto-server`) with the
//! listeners and stores of the config file until Ctrl-C/SIGTERM, then stops gracefully: no
//! new requests, forwarded ones get up to [`sotto_server::driver::DEFAULT_GRACE`] to finish,
//! what is queued is sent, exit status 0.
//!
//! Output:
//! - **stdout**, event lines: `listening` per listener, `metrics` (the metrics endpoint),
//!   `admin` (the control socket), `request` per request handled as `[log] requests` says
//!   (all, none, or sampled: then `requests_skipped` counts those not shown),
//!   `stopping` (signal received), `stopped`. One JSON object per line with `--json`,
//!   `--log-format json` or `[log] format = "json"`; short text lines otherwise.
//! - **stderr**, diagnostics through `tracing` (warnings, bans, failures) at `[log] level`,
//!   in the same format (JSON objects or text).
//! - **metrics**: Prometheus text on `http://[metrics] listen/metrics`
//!   ([`sotto_server::metrics`]); if that address cannot be bound the server runs without
//!   it and says so.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use sotto_net::tls::{self, ClientAuth};
use sotto_net::{Transport, TransportConfig, TransportKind};
use sotto_server::driver::{DEFAULT_GRACE, RunOptions, StoreWorkers};
use sotto_server::metrics::Metrics;
use sotto_server::{Outcome, Proxy, ProxyEvent};
use sotto_store::{BindingStore, MemoryStore, SqliteStore, UserStore};

use crate::config::{self, Config, StorageKind};

/// Arguments of `sotto server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// The config file (written by `sotto init`).
    #[arg(short = 'c', long, value_name = "FILE", default_value_os_t = config::default_path())]
    config: PathBuf,
    /// Format of the event lines and logs: `text` or `json` (`json` is the same as --json).
    /// Default: the config file's `[log] format`.
    #[arg(long, value_name = "FORMAT", value_parser = ["text", "json"])]
    log_format: Option<String>,
    /// Which requests get an event line: `none`, `sampled` or `all`. Default: the config
    /// file's `[log] requests`.
    #[arg(long, value_name = "WHICH", value_enum)]
    log_requests: Option<config::RequestLines>,
}

/// How often expired registrations are deleted from the store.
const PURGE_INTERVAL: Duration = Duration::from_secs(60);

/// Runs the server until interrupted.
pub(crate) fn run(args: ServerArgs, json: bool) -> anyhow::Result<()> {
    // First run with the defaults: write ./sotto-data/ (config, CA, certificate, empty user
    // database) so that `sotto server` works from a fresh clone. An explicit --config that
    // does not exist stays an error: a typo must not silently create a new server.
    if args.config == config::default_path() && !args.config.exists() {
        crate::init::first_run(json)?;
    }
    let mut config = config::load(&args.config)?;
    if let Some(which) = args.log_requests {
        config.log.requests = which;
    }
    let json = json
        || match args.log_format.as_deref() {
            Some(f) => f == "json",
            None => config.log.format == config::LogFormat::Json,
        };
    init_logs(json, config.log.level);
    // One thread for the proxy, the TLS crypto and the sockets. A multi-thread runtime (the
    // proxy in `block_on`, connection and socket tasks on 1 or 2 workers) was measured on the
    // 2-core bench machine (bench/proxy/compare.sh, 2026-11-23): no higher REGISTER/s over
    // UDP or TLS, and 25–45 % more CPU per REGISTER (cross-thread wake-ups per message); TLS
    // crypto is under 1 % of the server's CPU once a connection's queued writes are coalesced.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(config, json))
}

pub(crate) type Stores = (Arc<dyn UserStore>, Arc<dyn BindingStore>);

pub(crate) fn open_stores(c: &Config) -> anyhow::Result<Stores> {
    Ok(match c.storage.kind {
        StorageKind::Sqlite => {
            let path = c.resolve(&c.storage.path);
            // One connection for both: its own binding commits then leave its user (HA1)
            // cache valid (commits of another connection empty it).
            let store = Arc::new(
                SqliteStore::open(&path)
                    .with_context(|| format!("opening database {}", path.display()))?,
            );
            (store.clone(), store)
        }
        StorageKind::Memory => {
            let m = Arc::new(MemoryStore::new());
            (m.clone(), m)
        }
        StorageKind::Redis => {
            let path = c.resolve(&c.storage.path);
            let users = SqliteStore::open(&path)
                .with_context(|| format!("opening database {}", path.display()))?;
            let url = c.storage.url.as_deref().unwrap_or_default();
            let bindings =
                sotto_store::RedisStore::open(url).context("connecting to Redis (storage.url)")?;
            (Arc::new(users), Arc::new(bindings))
        }
    })
}

fn tls_server_config(c: &Config) -> anyhow::Result<Arc<sotto_net::rustls::ServerConfig>> {
    let cert = c.resolve(&c.tls.certificate);
    let key = c.resolve(&c.tls.key);
    let read = |path: &std::path::Path, what: &str| {
        tls::read_certs(path).with_context(|| format!("reading {what} {}", path.display()))
    };
    // Client certificates are checked against the CA of `[tls] ca` (users' certificates) and,
    // with federation, the CA of other domains' servers (their domain certificates).
    let mut roots = Vec::new();
    if c.tls.client_auth != config::ClientAuth::None {
        roots.extend(read(&c.resolve(&c.tls.ca), "CA")?);
    }
    if c.federation.enabled {
        roots.extend(read(&c.resolve(&c.federation.ca), "federation CA")?);
    }
    let client_auth = match c.tls.client_auth {
        config::ClientAuth::Required => ClientAuth::Required { roots },
        _ if roots.is_empty() => ClientAuth::None,
        _ => ClientAuth::Optional { roots },
    };
    tls::server_config_from_files(&cert, &key, client_auth)
        .with_context(|| format!("loading TLS certificate {} and key", cert.display()))
}

/// With federation: the TLS client side of connections to other domains' servers, which
/// presents our certificate (mutual TLS, RFC 5922) and checks theirs against the federation
/// CA. Without: none (the server opens no TLS connection of its own).
fn tls_client_config(c: &Config) -> anyhow::Result<Option<Arc<sotto_net::rustls::ClientConfig>>> {
    if !c.federation.enabled {
        return Ok(None);
    }
    let ca = c.resolve(&c.federation.ca);
    let roots =
        tls::read_certs(&ca).with_context(|| format!("reading federation CA {}", ca.display()))?;
    let cert = c.resolve(&c.tls.certificate);
    let chain = tls::read_certs(&cert)
        .with_context(|| format!("reading TLS certificate {}", cert.display()))?;
    let key = c.resolve(&c.tls.key);
    let key = tls::read_private_key(&key)
        .with_context(|| format!("reading TLS key {}", key.display()))?;
    Ok(Some(
        tls::client_config(roots, Some((chain, key))).context("TLS client configuration")?,
    ))
}

async fn serve(c: Config, json: bool) -> anyhow::Result<()> {
    // Before anything is announced, so that a signal sent right after `listening` is handled.
    let signals = crate::signals::ShutdownSignals::install()?;
    let (users, bindings) = open_stores(&c)?;
    let lime_users = users.clone();
    let core = c.core();
    // The proxy loop is one task; datagrams leave from their own thread so that `sendto`
    // runs beside it (see TransportConfig::udp_send_thread).
    let max_connections = connection_limit(&c, json);
    let (transport, mut incoming) = Transport::new(TransportConfig {
        udp_send_thread: true,
        tls_client: tls_client_config(&c)?,
        max_connections,
        max_connections_per_source: c.connections.per_source.max(1),
        incoming_queue: c.overload.queue,
        udp_receive_buffer: (c.overload.udp_receive_buffer > 0)
            .then_some(c.overload.udp_receive_buffer),
        idle_timeout: Duration::from_secs(c.connections.idle_secs.max(1)),
        unauthenticated_timeout: (c.connections.unauthenticated_secs > 0)
            .then(|| Duration::from_secs(c.connections.unauthenticated_secs)),
        ..TransportConfig::default()
    });
    let resolver =
        sotto_net::dns::Resolver::new(&c.dns.resolver(), sotto_crypto_rust::provider().rng)
            .context("DNS resolver ([dns])")?;
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
        &core,
        listeners,
        users.clone(),
        bindings.clone(),
        sotto_crypto_rust::provider(),
        Instant::now(),
    )
    .context("building the proxy")?;
    // Stores that wait on a disk or a network run on threads of their own: a slow commit or
    // Redis round trip delays only the requests that need it. SQLite has one connection (one
    // thread, group commit of what is queued); Redis has a pool (operations on one address
    // stay in order on one thread).
    let workers = match c.storage.kind {
        StorageKind::Memory => None,
        StorageKind::Sqlite => Some(StoreWorkers::start(users, bindings.clone(), 1, true)),
        StorageKind::Redis => Some(StoreWorkers::start(users, bindings.clone(), 4, false)),
    }
    .transpose()
    .context("starting the store threads")?;
    proxy.defer_store_operations(workers.is_some());
    // What a wildcard listener stands for: the interface addresses, now and as they change.
    let locality = proxy.locality();
    locality.set_interfaces(sotto_net::interfaces::addresses());
    let watcher = sotto_net::interfaces::watch(move |a| locality.set_interfaces(a));
    let metrics = Arc::new(Metrics::new());
    metrics.observe(&proxy);
    if c.metrics.enabled {
        start_metrics(&c, metrics.clone(), bindings.clone(), json).await?;
    }
    if c.lime.enabled {
        start_lime(&c, lime_users, json).await?;
    }
    let admin = start_admin(&c, json).await?;
    print_ready(&c, json);
    let purge = tokio::spawn(purge_expired(bindings));
    let mut handled: u64 = 0;
    let mut request_log =
        crate::request_log::RequestLog::new(c.log.requests, c.log.requests_per_second);
    let shutdown = async move {
        signals.recv().await;
        if json {
            println!("{}", serde_json::json!({"event": "stopping"}));
        } else {
            println!("stopping: finishing forwarded requests");
        }
    };
    sotto_server::driver::run_with(
        &mut proxy,
        &transport,
        &mut incoming,
        shutdown,
        RunOptions {
            metrics: Some(&metrics),
            grace: DEFAULT_GRACE,
            batch: None,
            resolver: Some(&resolver),
            stores: workers.as_ref(),
            admin: admin.as_ref().map(|(a, _)| a),
        },
        |ev| {
            use crate::request_log::{Decision, print_skipped};
            handled += 1;
            match request_log.decide(Instant::now()) {
                Decision::Print => print_event(ev, json),
                Decision::PrintAfterSkipped(n) => {
                    print_skipped(n, json);
                    print_event(ev, json);
                }
                Decision::Skip => {}
            }
        },
    )
    .await;
    match request_log.take_skipped() {
        0 => {}
        n => crate::request_log::print_skipped(n, json),
    }
    purge.abort();
    watcher.abort();
    if let Some((_, path)) = &admin {
        let _ = std::fs::remove_file(path);
    }
    if let Some(w) = workers {
        w.stop();
    }
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
    let (outcome, status, branches, reason) = match &ev.outcome {
        Outcome::Replied(s) => ("replied", Some(*s), None, None),
        Outcome::Forwarded(n) => ("forwarded", None, Some(*n), None),
        Outcome::Dropped => ("dropped", None, None, None),
        Outcome::Failed { status, reason } => ("failed", Some(*status), None, Some(reason)),
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
        if let Some(r) = reason {
            v["reason"] = r.clone().into();
        }
        println!("{v}");
    } else {
        println!(
            "{} from {} over {}: {outcome}{}{} ({})",
            ev.method,
            ev.source,
            ev.transport.as_str(),
            status.map(|s| format!(" {s}")).unwrap_or_default(),
            reason.map(|r| format!(": {r}")).unwrap_or_default(),
            ev.module
        );
    }
}

/// Sends `tracing` diagnostics to stderr at `level`, as JSON objects or text lines.
fn init_logs(json: bool, level: config::LogLevel) {
    use tracing_subscriber::filter::LevelFilter;
    let level = match level {
        config::LogLevel::Error => LevelFilter::ERROR,
        config::LogLevel::Warn => LevelFilter::WARN,
        config::LogLevel::Info => LevelFilter::INFO,
        config::LogLevel::Debug => LevelFilter::DEBUG,
        config::LogLevel::Trace => LevelFilter::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(true);
    // A subscriber already set (only in tests that call this twice) is kept.
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}

/// Binds the metrics endpoint and serves it in the background. An address that cannot be
/// bound stops the start, saying what to change: a server must not run without the
/// monitoring its operator configured.
async fn start_metrics(
    c: &Config,
    metrics: Arc<Metrics>,
    bindings: Arc<dyn BindingStore>,
    json: bool,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(c.metrics.listen)
        .await
        .with_context(|| {
            format!(
                "metrics endpoint {}: cannot listen (set [metrics] listen to a free address, \
                 or enabled = false)",
                c.metrics.listen
            )
        })?;
    let addr = listener.local_addr().unwrap_or(c.metrics.listen);
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "metrics", "addr": addr.to_string(), "path": "/metrics"})
        );
    } else {
        println!("metrics on http://{addr}/metrics");
    }
    tokio::spawn(sotto_server::metrics::serve(listener, metrics, bindings));
    Ok(())
}

/// File descriptors kept for what is not a connection (databases, sockets, logs).
const FD_RESERVE: u64 = 256;

/// The connection limit: `[connections] max`, or when 0, the file-descriptor limit (its soft
/// limit first raised to the hard one) less [`FD_RESERVE`].
fn connection_limit(c: &Config, json: bool) -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if c.connections.max > 0 {
        return c.connections.max;
    }
    let soft = match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    };
    let max =
        usize::try_from(soft.saturating_sub(FD_RESERVE).clamp(256, 1_000_000)).unwrap_or(1024);
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "connections", "max": max, "per_source": c.connections.per_source, "fd_limit": soft})
        );
    } else {
        println!(
            "connections: at most {max} ({} per source; file-descriptor limit {soft})",
            c.connections.per_source
        );
    }
    max
}

/// Starts the LIME key server (HTTPS, its SQLite or PostgreSQL store, digest against
/// `users`) and says the URL to give clients. A port that cannot be bound stops the start.
/// Opens the operator's control socket (`[admin] socket`) and serves it in the background.
async fn start_admin(
    c: &Config,
    json: bool,
) -> anyhow::Result<Option<(sotto_server::driver::admin::Admin, PathBuf)>> {
    use sotto_server::driver::admin;
    if c.admin.socket.as_os_str().is_empty() {
        return Ok(None);
    }
    let path = c.resolve(&c.admin.socket);
    let listener = admin::bind(&path)
        .await
        .with_context(|| format!("the control socket ([admin] socket) {}", path.display()))?;
    let (handle, loop_end) = admin::channel();
    tokio::spawn(admin::serve(listener, handle));
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "admin", "socket": path.display().to_string()})
        );
    } else {
        println!("control socket {} (sotto ban list|lift)", path.display());
    }
    Ok(Some((loop_end, path)))
}

async fn start_lime(c: &Config, users: Arc<dyn UserStore>, json: bool) -> anyhow::Result<()> {
    match c.lime.postgres_url.clone() {
        Some(url) => {
            // The store runs a small runtime of its own: made off the async workers.
            let store = tokio::task::spawn_blocking(move || sotto_store::PgKeyStore::connect(&url))
                .await
                .context("connecting to PostgreSQL")?
                .map_err(|e| anyhow::anyhow!("the LIME key database ([lime] postgres_url): {e}"))?;
            spawn_lime(c, store, users, json).await
        }
        None => {
            let path = c.resolve(&c.lime.database);
            let store = sotto_store::SqliteKeyStore::open(&path).map_err(|e| {
                anyhow::anyhow!("opening the LIME key database {}: {e}", path.display())
            })?;
            spawn_lime(c, store, users, json).await
        }
    }
}

async fn spawn_lime<S>(
    c: &Config,
    store: S,
    users: Arc<dyn UserStore>,
    json: bool,
) -> anyhow::Result<()>
where
    S: sotto_lime::keyserver::KeyStore + Send + Sync + 'static,
{
    let mut domains = vec![c.server.domain.clone()];
    domains.extend(c.server.aliases.iter().cloned());
    let service = sotto_server::lime_service::LimeService::new(
        sotto_crypto_rust::provider(),
        store,
        users,
        sotto_server::lime_service::LimeServiceConfig {
            path: c.lime.path.clone(),
            realm: c.server.realm.clone(),
            domains,
            limits: sotto_lime::keyserver::Limits {
                max_opks: c.lime.max_opks_per_device,
                ..sotto_lime::keyserver::Limits::default()
            },
            bundle_requests_per_minute: c.lime.bundle_requests_per_minute,
            ..Default::default()
        },
        Instant::now(),
    )
    .map_err(|e| anyhow::anyhow!("LIME key server: {e}"))?;
    let listener = tokio::net::TcpListener::bind(c.lime.listen)
        .await
        .with_context(|| {
            format!(
                "LIME key server {}: cannot listen (set [lime] listen to a free address, or \
                 enabled = false)",
                c.lime.listen
            )
        })?;
    let addr = listener.local_addr().unwrap_or(c.lime.listen);
    let url =
        c.lime.url.clone().unwrap_or_else(|| {
            format!("https://{}:{}{}", c.server.domain, addr.port(), c.lime.path)
        });
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "lime", "addr": addr.to_string(), "url": url})
        );
    } else {
        println!("LIME key server on {addr}: give clients lime_server_url = {url}");
    }
    tokio::spawn(sotto_server::driver::lime_https::serve(
        listener,
        tls_server_config(c)?,
        Arc::new(service),
    ));
    Ok(())
}

/// The startup summary: what the server serves and how, once it is listening.
fn print_ready(c: &Config, json: bool) {
    let dns = if c.dns.servers.is_empty() {
        "system".to_owned()
    } else {
        c.dns
            .servers
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "ready", "domain": c.server.domain,
                "aliases": c.server.aliases, "federation": c.federation.enabled,
                "dns": dns, "metrics": c.metrics.enabled})
        );
    } else {
        println!(
            "ready: domain {}{}, federation {}, DNS {dns}, metrics {}",
            c.server.domain,
            if c.server.aliases.is_empty() {
                String::new()
            } else {
                format!(" (aliases {})", c.server.aliases.join(", "))
            },
            if c.federation.enabled { "on" } else { "off" },
            if c.metrics.enabled { "on" } else { "off" }
        );
    }
}

/// Deletes expired registrations every [`PURGE_INTERVAL`].
async fn purge_expired(bindings: Arc<dyn BindingStore>) {
    let mut tick = tokio::time::interval(PURGE_INTERVAL);
    loop {
        tick.tick().await;
        match bindings.purge_expired(SystemTime::now()) {
            Ok(0) => {}
            Ok(n) => tracing::debug!(purged = n, "expired registrations deleted"),
            Err(e) => tracing::warn!(error = %e, "purging expired registrations failed"),
        }
    }
}
