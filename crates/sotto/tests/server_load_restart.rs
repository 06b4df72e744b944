//! Nothing acknowledged is lost when things fail under load (issue 14, item 7): phones keep
//! registering (digest over UDP, several source addresses, `common/register_load.rs`) while
//!
//! 1. `sotto server` on SQLite (the default) is killed (SIGKILL, no goodbye) and started
//!    again on the same config and file;
//! 2. the same with Redis storage (Redis stays up);
//! 3. Redis itself is killed and started again (its append-only file fsynced before each
//!    reply, as an operator who wants durability runs it), the server staying up: while
//!    Redis is away every registration is still answered — 503 with Retry-After, so that
//!    phones come back — and once it is back the server catches up without a restart.
//!
//! Afterwards every account that got a 200 is asked for (a REGISTER without Contact): its
//! contact must be listed. Each run also checks that registrations were acknowledged after
//! the failure (the server catches up).
//!
//! The config is the one `sotto init --domain example.test` writes, but for what the
//! scenario needs: UDP on 0.0.0.0 and a fixed port (a phone's server address does not change
//! across a restart), TLS on 0.0.0.0 and metrics on loopback on free ports, and the storage. Short form by
//! default (120 accounts from 6 addresses, phases of 2 s); the full run sets
//! `SOTTO_LOAD_ACCOUNTS`, `SOTTO_LOAD_SOURCES` and `SOTTO_LOAD_SECS`
//! (`bench/attack/run`). Bounded: every phase by time, every wait by a bound.

#[path = "common/process.rs"]
mod process;
#[path = "common/redis_server.rs"]
mod redis_server;
#[path = "common/register_load.rs"]
mod register_load;
#[path = "common/sip_client.rs"]
mod sip_client;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::net::SocketAddr;
use std::time::Duration;

use process::{free_udp_port, loopback, require_tools};
use redis_server::Redis;
use register_load::{Load, Outcome};
use sotto_server::{DataDir, Server, addrs, replace, sample, scrape, set};

const DOMAIN: &str = "example.test";

/// A data dir for `users` with UDP on `port`; `redis`: the Redis URL for bindings.
fn data_dir(name: &str, port: u16, users: &[(String, String)], redis: Option<&str>) -> DataDir {
    let users: Vec<(&str, &str)> = users
        .iter()
        .map(|(u, p)| (u.as_str(), p.as_str()))
        .collect();
    let (_, data) = DataDir::fresh("load-restart", name, DOMAIN, &users);
    data.edit_config(|t| {
        replace(t, "listen", "udp", addrs(&[&format!("0.0.0.0:{port}")]));
        replace(t, "listen", "tls", addrs(&["0.0.0.0:0"]));
        replace(t, "metrics", "listen", "127.0.0.1:0".into());
        if let Some(url) = redis {
            replace(t, "storage", "kind", "redis".into());
            set(t, "storage", "url", url.into());
        }
    });
    data
}

/// Asks for every account and asserts that every acknowledged registration is listed and
/// that some were acknowledged after `recovered` (from the load's start).
fn assert_nothing_lost(what: &str, load: &Load, outcome: &Outcome, recovered: Duration) {
    let registered = register_load::registered(load);
    let lost = register_load::lost(outcome, &registered);
    eprintln!(
        "{what}: {}; recovered at {recovered:?}, {} acknowledged since; {} lost",
        outcome.summary(),
        outcome.acknowledged_after(recovered),
        lost.len()
    );
    assert!(lost.is_empty(), "{what}: acknowledged but lost: {lost:#?}");
    assert!(
        outcome.acknowledged.len() > outcome.acknowledged_after(recovered),
        "{what}: nothing acknowledged before the failure: {}",
        outcome.summary()
    );
    assert!(
        outcome.acknowledged_after(recovered) > 0,
        "{what}: nothing acknowledged after the failure: {}",
        outcome.summary()
    );
    assert!(
        outcome.other.is_empty() && outcome.unavailable_without_retry_after == 0,
        "{what}: answers other than 200, or 503 without Retry-After: {}",
        outcome.summary()
    );
}

/// A directory for a Redis of the test's own (fails with the install hint without
/// `redis-server`).
fn redis_dir() -> tempfile::TempDir {
    require_tools(
        &[("redis-server", "--version")],
        "install with: apt-get install -y redis-server",
    );
    tempfile::Builder::new()
        .prefix("sotto-load-redis-")
        .tempdir()
        .expect("temp dir")
}

/// Load, kill the server, start it again, load, check.
fn crash_under_load(name: &str, redis: Option<&str>) {
    let port = free_udp_port();
    let server_addr: SocketAddr = loopback(port);
    let load = Load::from_env(server_addr, DOMAIN);
    let data = data_dir(name, port, &load.users(), redis);
    let phase = register_load::phase(Duration::from_secs(2));

    let server = Server::start_all(name, &data.config());
    let running = register_load::start(&load);
    std::thread::sleep(phase);
    server.kill();
    std::thread::sleep(Duration::from_millis(300));
    let server = Server::start_all(name, &data.config());
    let recovered = running.start.elapsed();
    std::thread::sleep(phase);
    let outcome = running.finish();
    assert_nothing_lost(name, &load, &outcome, recovered);
    server.stop();
}

#[test]
fn registrations_acknowledged_on_sqlite_survive_a_crash_under_load() {
    crash_under_load("sqlite", None);
}

#[test]
fn registrations_acknowledged_on_redis_survive_a_server_crash_under_load() {
    let tmp = redis_dir();
    let redis = Redis::start(tmp.path());
    crash_under_load("redis", Some(&redis.url()));
}

#[test]
fn the_server_answers_while_redis_is_down_and_catches_up_without_loss() {
    let tmp = redis_dir();
    let mut redis = Redis::start_persistent(tmp.path());
    let port = free_udp_port();
    let load = Load::from_env(loopback(port), DOMAIN);
    let data = data_dir("redis-killed", port, &load.users(), Some(&redis.url()));
    let phase = register_load::phase(Duration::from_secs(2));

    let server = Server::start_all("redis-killed", &data.config());
    let running = register_load::start(&load);
    std::thread::sleep(phase);
    redis.kill();
    let down_at = running.start.elapsed();
    std::thread::sleep(phase / 2);
    redis.restart();
    let recovered = running.start.elapsed();
    std::thread::sleep(phase);
    let outcome = running.finish();
    assert_nothing_lost("redis killed", &load, &outcome, recovered);
    eprintln!("redis down from {down_at:?} to {recovered:?}");
    assert!(
        outcome.unavailable > 0,
        "no 503 while Redis was down: {}",
        outcome.summary()
    );
    assert_eq!(
        outcome.unanswered,
        0,
        "the server must answer every registration while Redis is down: {}",
        outcome.summary()
    );
    // Each refusal is one failure of the registrar's store, counted for the operator.
    let metrics = scrape(server.metrics.expect("metrics endpoint"));
    assert_eq!(
        sample(&metrics, "sotto_registrar_store_failures_total"),
        Some(outcome.unavailable),
        "{metrics}"
    );
    server.stop();
}
