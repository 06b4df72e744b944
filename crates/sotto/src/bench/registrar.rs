//! `sotto bench registrar`: the cost of the authenticated REGISTER path in process, without
//! sockets or sipp.
//!
//! Builds the sans-IO [`Proxy`] the way `sotto server` does (config defaults for `localhost`,
//! stores opened by the server's own code in a temporary data directory; anti-flood off, as
//! `bench/proxy/compare.sh` configures it), adds 500 users, then runs N digest REGISTER flows
//! over UDP: REGISTER → 401 → REGISTER with Authorization (MD5 and SHA-256 in turn, computed by
//! `sotto_sip::digest::DigestClient`) → 200, users round robin, one Call-ID per flow.
//!
//! Time is virtual: flow `k` happens at `start + k × --step-us` (default 2 ms: 500 flows/s), and
//! the proxy's timers (Timer J of the completed UDP transactions) fire as that clock passes
//! them, so the transaction table stays at its steady-state size as it would at that load.
//!
//! Figures: `server_us_per_flow` / `flows_per_s` count only the time spent inside the proxy
//! (`handle_packet`, `handle_timeout`, draining what it queued); `allocations_per_flow` counts
//! the heap allocations made there (the binary's counting allocator). `total_us_per_flow`
//! also includes the client side (building and parsing messages, computing digests), and
//! `cpu_us_per_flow` is the CPU time of that whole loop (client included; steadier than wall
//! time on a busy machine). Every response is checked: a flow that does not end in 200 fails
//! the bench (exit code 3).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use bytes::Bytes;
use sotto_net::TransportKind;
use sotto_server::Proxy;
use sotto_sip::digest::{Algorithm, Challenge, ClientSecret, DigestClient, Ha1, UserRecord};
use sotto_sip::message::Message;
use sotto_sip::parse::{Limits, parse_message};
use sotto_store::BindingStore;
use stats_alloc::Region;

use crate::config::{Config, StorageKind};

/// Arguments of `sotto bench registrar`.
#[derive(Debug, clap::Args)]
pub(crate) struct RegistrarBenchArgs {
    /// The store the server uses.
    #[arg(long, value_parser = ["sqlite", "memory"], default_value = "sqlite")]
    store: String,
    /// Complete REGISTER flows to run (after a warm-up of one flow per user).
    #[arg(long, default_value_t = 20_000)]
    iterations: u64,
    /// Virtual time between two flows, in µs (2000: a load of 500 flows/s). Completed UDP
    /// transactions stay 32 s (Timer J), so a short step with many iterations fills the
    /// proxy's transaction table.
    #[arg(long, default_value_t = 2_000)]
    step_us: u64,
    /// Requests handed to the proxy per step, as the server's driver does with a burst of
    /// queued messages: with more than 1, the store commits once per step (group commit).
    /// Flows go in groups of this size: all first REGISTERs, then all authorized ones.
    #[arg(long, default_value_t = 1)]
    batch: usize,
}

/// Users registering, round robin.
const USERS: usize = 500;
/// The server's one listener.
const LISTENER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5060);
const DOMAIN: &str = "localhost";
const PASSWORD: &str = "bench-secret";

/// A temporary data directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "sotto-bench-registrar-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(TempDir(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// CPU time this thread has run so far (Linux `/proc/thread-self/schedstat`, in ns), if
/// known. Less disturbed than wall time by other processes on a shared machine.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

/// One user as the client side sees it.
struct User {
    name: String,
    source: SocketAddr,
    md5: Ha1,
    sha256: Ha1,
}

/// Counts of what the flows got.
#[derive(Default)]
struct Tally {
    server: Duration,
    allocations: u64,
    bytes_allocated: u64,
    requests: u64,
    ok: u64,
    other: Vec<u16>,
}

/// The server side: the proxy, its virtual clock and, for `--batch`, the store to batch.
struct Server {
    proxy: Proxy,
    start: Instant,
    wall: SystemTime,
    batch: Option<Arc<dyn BindingStore>>,
}

impl Server {
    /// Hands requests to the proxy at virtual time `at` (in one store batch, as the server's
    /// driver does with queued messages, if `--batch` is above 1) and returns the responses
    /// sent back to each request's source (time and allocations counted in `tally`).
    fn exchange(
        &mut self,
        requests: Vec<(Bytes, SocketAddr)>,
        at: Duration,
        tally: &mut Tally,
    ) -> anyhow::Result<Vec<Vec<Bytes>>> {
        let now = self.start + at;
        let wall = self.wall + at;
        let sources: Vec<SocketAddr> = requests.iter().map(|(_, s)| *s).collect();
        let mut out: Vec<Vec<Bytes>> = vec![Vec::new(); requests.len()];
        let region = Region::new(super::GLOBAL);
        let t = Instant::now();
        while self.proxy.poll_timeout().is_some_and(|w| w <= now) {
            self.proxy.handle_timeout(now);
        }
        if let Some(store) = &self.batch {
            store.batch_begin()?;
        }
        tally.requests += requests.len() as u64;
        for (data, source) in requests {
            self.proxy.handle_packet(
                sotto_server::Packet {
                    data,
                    source,
                    transport: TransportKind::Udp,
                    connection: None,
                    client_identities: Vec::new(),
                    client_domains: Vec::new(),
                    local: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
                },
                now,
                wall,
            );
        }
        if let Some(store) = &self.batch {
            store.batch_end()?;
        }
        let mut stray = 0usize;
        while let Some(t) = self.proxy.poll_transmit() {
            match sources.iter().position(|s| *s == t.destination.remote) {
                Some(i) => {
                    if let Some(slot) = out.get_mut(i) {
                        slot.push(t.data);
                    }
                }
                None => stray += 1,
            }
        }
        while self.proxy.poll_event().is_some() {}
        tally.server += t.elapsed();
        let stats = region.change();
        tally.allocations += stats.allocations as u64 + stats.reallocations as u64;
        tally.bytes_allocated += stats.bytes_allocated as u64;
        anyhow::ensure!(
            stray == 0,
            "the proxy sent {stray} messages to unknown addresses"
        );
        Ok(out)
    }
}

fn register(
    user: &User,
    call_id: &str,
    cseq: u32,
    branch: u64,
    authorization: Option<&str>,
) -> Bytes {
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    let port = user.source.port();
    Bytes::from(format!(
        "REGISTER sip:{DOMAIN} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{branch:016x};rport\r\n\
         Max-Forwards: 70\r\n\
         From: <sip:{name}@{DOMAIN}>;tag={call_id}\r\n\
         To: <sip:{name}@{DOMAIN}>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         Contact: <sip:{name}@127.0.0.1:{port}>;expires=3600\r\n\
         {auth}\
         User-Agent: sotto-bench/0.1\r\n\
         Content-Length: 0\r\n\r\n",
        name = user.name,
    ))
}

/// The one response to a request, parsed.
fn only_response(out: Vec<Bytes>) -> anyhow::Result<sotto_sip::message::Response> {
    anyhow::ensure!(
        out.len() == 1,
        "expected one response, the proxy sent {}",
        out.len()
    );
    let Some(data) = out.into_iter().next() else {
        anyhow::bail!("no response");
    };
    match parse_message(data, &Limits::default()).context("response does not parse")? {
        Message::Response(r) => Ok(r),
        Message::Request(_) => anyhow::bail!("the proxy sent a request, not a response"),
    }
}

/// The credentials answering the 401 of flow `k` (MD5 for even flows, SHA-256 for odd).
fn answer(
    client: &mut DigestClient,
    user: &User,
    k: u64,
    challenge: &sotto_sip::message::Response,
) -> anyhow::Result<String> {
    let algorithm = if k.is_multiple_of(2) {
        Algorithm::Md5
    } else {
        Algorithm::Sha256
    };
    let offered = challenge
        .headers()
        .get_all("WWW-Authenticate")
        .filter_map(|v| Challenge::parse(v).ok())
        .find(|c| c.algorithm == algorithm)
        .with_context(|| format!("the 401 offers no {algorithm} challenge"))?;
    let ha1 = if algorithm == Algorithm::Md5 {
        &user.md5
    } else {
        &user.sha256
    };
    let uri = format!("sip:{DOMAIN}");
    let creds = client
        .respond(
            &offered,
            "REGISTER",
            &uri,
            &user.name,
            ClientSecret::Ha1(ha1),
        )
        .context("answering the challenge")?;
    Ok(creds.to_string())
}

/// Complete flows `ks` (at most [`USERS`], so every flow of the group has its own user):
/// all first REGISTERs in one step, then all authorized ones. Returns each final status.
fn flows(
    step: Duration,
    server: &mut Server,
    client: &mut DigestClient,
    users: &[User],
    ks: std::ops::Range<u64>,
    tally: &mut Tally,
) -> anyhow::Result<Vec<u16>> {
    let at = step * u32::try_from(ks.start).unwrap_or(u32::MAX);
    let user_of = |k: u64| users.get(usize::try_from(k).unwrap_or(0) % USERS);
    let mut first = Vec::new();
    for k in ks.clone() {
        let user = user_of(k).context("no user")?;
        first.push((
            register(user, &format!("bench-{k}"), 1, 2 * k, None),
            user.source,
        ));
    }
    let challenges = server.exchange(first, at, tally)?;
    let mut statuses = vec![0u16; challenges.len()];
    let mut second = Vec::new();
    let mut pending = Vec::new();
    for ((i, k), out) in ks.clone().enumerate().zip(challenges) {
        let user = user_of(k).context("no user")?;
        let challenge = only_response(out)?;
        let status = challenge.status().as_u16();
        if status != 401 {
            if let Some(s) = statuses.get_mut(i) {
                *s = status;
            }
            continue;
        }
        let creds = answer(client, user, k, &challenge)?;
        second.push((
            register(user, &format!("bench-{k}"), 2, 2 * k + 1, Some(&creds)),
            user.source,
        ));
        pending.push(i);
    }
    let finals = server.exchange(second, at, tally)?;
    for (i, out) in pending.into_iter().zip(finals) {
        let status = only_response(out)?.status().as_u16();
        if let Some(s) = statuses.get_mut(i) {
            *s = status;
        }
    }
    Ok(statuses)
}

/// Runs the benchmark; exit code 3 (through the error) if a flow did not end in 200.
pub(crate) fn run(args: RegistrarBenchArgs, json: bool) -> anyhow::Result<()> {
    let provider = sotto_crypto_rust::provider();
    let dir = TempDir::new()?;
    let mut config = Config::for_domain(DOMAIN);
    config.base_dir = dir.0.clone();
    config.storage.kind = if args.store == "memory" {
        StorageKind::Memory
    } else {
        StorageKind::Sqlite
    };
    config.modules.anti_flood.enabled = false;
    config.validate()?;
    let (users_store, bindings) = crate::server::open_stores(&config)?;
    let realm = config.server.realm.clone();
    let mut users = Vec::with_capacity(USERS);
    for i in 0..USERS {
        let name = format!("user{i:03}");
        let mut record = UserRecord::new(name.as_str());
        record.set_password(
            provider,
            &realm,
            PASSWORD,
            &[Algorithm::Md5, Algorithm::Sha256],
        )?;
        users_store.put(&record)?;
        let port = 20_000 + u16::try_from(i).unwrap_or(0);
        users.push(User {
            md5: Ha1::from_password(provider, Algorithm::Md5, &name, &realm, PASSWORD)?,
            sha256: Ha1::from_password(provider, Algorithm::Sha256, &name, &realm, PASSWORD)?,
            name,
            source: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
        });
    }
    let start = Instant::now();
    let mut server = Server {
        proxy: Proxy::new(
            &config.core(),
            vec![(TransportKind::Udp, LISTENER)],
            users_store,
            bindings.clone(),
            provider,
            start,
        )
        .context("building the proxy")?,
        start,
        wall: SystemTime::now(),
        batch: (args.batch > 1).then(|| bindings.clone()),
    };
    let mut client = DigestClient::new(provider);
    let step = Duration::from_micros(args.step_us);

    // Warm-up: one flow per user (creates every binding, fills the statement caches).
    let warm = u64::try_from(USERS).unwrap_or(0);
    let group = u64::try_from(args.batch.clamp(1, USERS)).unwrap_or(1);
    let mut tally = Tally::default();
    let mut k = 0;
    while k < warm {
        let end = (k + group).min(warm);
        let statuses = flows(step, &mut server, &mut client, &users, k..end, &mut tally)?;
        anyhow::ensure!(
            statuses.iter().all(|s| *s == 200),
            "warm-up flows {k}..{end} got {statuses:?}"
        );
        k = end;
    }

    let n = args.iterations.max(1);
    let mut tally = Tally::default();
    let cpu_before = thread_cpu();
    let t = Instant::now();
    let mut k = warm;
    while k < warm + n {
        let end = (k + group).min(warm + n);
        for status in flows(step, &mut server, &mut client, &users, k..end, &mut tally)? {
            match status {
                200 => tally.ok += 1,
                s => tally.other.push(s),
            }
        }
        k = end;
    }
    let total = t.elapsed();
    let cpu = cpu_before
        .zip(thread_cpu())
        .map(|(a, b)| b.saturating_sub(a));
    let registered = bindings.count()?;

    let per = |d: Duration| d.as_secs_f64() * 1e6 / n as f64;
    let server_s = tally.server.as_secs_f64().max(1e-9);
    let obj = serde_json::json!({
        "bench": "registrar",
        "store": args.store,
        "batch": group,
        "flows": n,
        "requests": tally.requests,
        "ok": tally.ok,
        "failed": tally.other.len(),
        "flows_per_s": (n as f64 / server_s).round() as u64,
        "requests_per_s": (tally.requests as f64 / server_s).round() as u64,
        "server_us_per_flow": (per(tally.server) * 100.0).round() / 100.0,
        "total_us_per_flow": (per(total) * 100.0).round() / 100.0,
        "cpu_us_per_flow": cpu.map(|c| (per(c) * 100.0).round() / 100.0),
        "allocations_per_flow": (tally.allocations as f64 / n as f64 * 10.0).round() / 10.0,
        "bytes_allocated_per_flow": (tally.bytes_allocated as f64 / n as f64).round() as u64,
        "bindings": registered,
        "transactions": server.proxy.transactions(),
    });
    if json {
        println!("{obj}");
    } else {
        println!(
            "registrar {:<6} {n} flows: {:.0} flows/s ({:.0} requests/s) in the proxy, {:.1} µs/flow \
             ({:.1} µs with the client), {:.1} allocations/flow, {}/{n} got 200",
            args.store,
            n as f64 / server_s,
            tally.requests as f64 / server_s,
            per(tally.server),
            per(total),
            tally.allocations as f64 / n as f64,
            tally.ok,
        );
    }
    if !tally.other.is_empty() {
        let first = tally.other.first().copied().unwrap_or(0);
        let msg = format!(
            "{} of {n} flows did not end in 200 (first: {first})",
            tally.other.len()
        );
        if json {
            println!("{}", serde_json::json!({"error": msg, "kind": "check"}));
        } else {
            eprintln!("sotto: bench registrar: {msg}");
        }
        drop(server);
        drop(dir);
        std::process::exit(3);
    }
    anyhow::ensure!(
        registered == USERS,
        "{registered} bindings stored, expected {USERS}"
    );
    Ok(())
}
