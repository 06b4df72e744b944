//! Test helper: one `sotto server` child process on loopback, set up with `sotto init` and
//! `sotto user add`, its config adjusted (listeners, storage), and its `--json` event lines
//! collected by a reader thread. The child is killed and reaped on drop.
//!
//! Included with `#[path = "common/sotto_server.rs"] mod sotto_server;` (next to
//! `common/process.rs`, `mod process`) by every test that drives a real server.

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{ChildGuard, NonJson, scratch, signal, sotto, spawn_json};

/// Failure bound of one wait for a server event (never asserted on as a duration).
pub(crate) const EVENT_WAIT: Duration = Duration::from_secs(30);

/// The users most tests add, with their passwords.
pub(crate) const ALICE_BOB: [(&str, &str); 2] = [("alice", "alicepw"), ("bob", "bobpw")];

/// A data directory written by `sotto init` with users added.
pub(crate) struct DataDir {
    /// The directory (holds `sotto.toml`, `ca.pem`, `ca.key`, `server.pem`, `sotto.db`).
    pub(crate) dir: PathBuf,
}

impl DataDir {
    /// `sotto init --dir <dir> --domain 127.0.0.1`, then `sotto user add` for each
    /// `(user, password)`.
    pub(crate) fn init(dir: &Path, users: &[(&str, &str)]) -> DataDir {
        Self::init_for(dir, "127.0.0.1", users)
    }

    /// `sotto init --dir <dir> --domain <domain>`, then `sotto user add` for each
    /// `(user, password)`.
    pub(crate) fn init_for(dir: &Path, domain: &str, users: &[(&str, &str)]) -> DataDir {
        let out = sotto()
            .args(["init", "--dir"])
            .arg(dir)
            .args(["--domain", domain])
            .stdin(Stdio::null())
            .output()
            .expect("run sotto init");
        assert!(
            out.status.success(),
            "sotto init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let data = DataDir {
            dir: dir.to_path_buf(),
        };
        for (user, pw) in users {
            let out = sotto()
                .args(["user", "add", user, "--password", pw, "--config"])
                .arg(data.config())
                .stdin(Stdio::null())
                .output()
                .expect("run sotto user add");
            assert!(
                out.status.success(),
                "sotto user add {user} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        data
    }

    /// A fresh scratch directory (see [`scratch`]) and, in its `data` subdirectory,
    /// [`DataDir::init_for`]; returns (scratch directory, data directory).
    pub(crate) fn fresh(
        tag: &str,
        name: &str,
        domain: &str,
        users: &[(&str, &str)],
    ) -> (PathBuf, DataDir) {
        let dir = scratch(tag, name);
        let data = Self::init_for(&dir.join("data"), domain, users);
        (dir, data)
    }

    /// The config file.
    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("sotto.toml")
    }

    /// The local CA certificate (what clients verify the server against).
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The local CA's private key.
    pub(crate) fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    /// Rewrites the config file with `edit` applied to its TOML table.
    pub(crate) fn edit_config(&self, edit: impl FnOnce(&mut toml::Table)) {
        let text = std::fs::read_to_string(self.config()).expect("read sotto.toml");
        let mut table: toml::Table = text.parse().expect("sotto.toml is TOML");
        edit(&mut table);
        let text = toml::to_string(&table).expect("serialize sotto.toml");
        std::fs::write(self.config(), text).expect("write sotto.toml");
    }
}

/// The table `[section]` of a config table; `section` may be dotted
/// (`modules.authentication`), and missing tables are created.
pub(crate) fn section<'a>(table: &'a mut toml::Table, section: &str) -> &'a mut toml::Table {
    let mut t = table;
    for name in section.split('.') {
        let entry = t
            .entry(name.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let toml::Value::Table(inner) = entry else {
            panic!("[{section}]: {name} is not a table");
        };
        t = inner;
    }
    t
}

/// Sets `[section] key = value` in a config table (see [`section`]).
pub(crate) fn set(table: &mut toml::Table, section_name: &str, key: &str, value: toml::Value) {
    section(table, section_name).insert(key.to_owned(), value);
}

/// Replaces `[section] key`, which the config `sotto init` wrote must already hold (fails
/// the test if the template no longer has it).
pub(crate) fn replace(table: &mut toml::Table, section_name: &str, key: &str, value: toml::Value) {
    let old = section(table, section_name).insert(key.to_owned(), value);
    assert!(
        old.is_some(),
        "[{section_name}] {key} is missing from the config template"
    );
}

/// A list of strings (addresses, algorithm names) as a TOML value.
pub(crate) fn addrs(list: &[&str]) -> toml::Value {
    toml::Value::Array(
        list.iter()
            .map(|a| toml::Value::String((*a).to_owned()))
            .collect(),
    )
}

/// A running `sotto --json server` and the events it printed.
pub(crate) struct Server {
    guard: ChildGuard,
    events: mpsc::Receiver<Value>,
    /// Every event received so far, in order.
    pub(crate) seen: Vec<Value>,
    /// The listeners it reported: (transport, address).
    pub(crate) listeners: Vec<(String, SocketAddr)>,
    /// The metrics endpoint it reported (after [`Server::start_all`]).
    pub(crate) metrics: Option<SocketAddr>,
    /// A name for messages.
    pub(crate) name: String,
}

impl Server {
    fn spawn(name: &str, config: &Path) -> Server {
        let mut cmd = sotto();
        // Tests wait for the line of each request they send.
        cmd.args(["--json", "server", "--log-requests", "all", "--config"])
            .arg(config)
            .stderr(Stdio::inherit());
        let (guard, events) = spawn_json(&mut cmd, "sotto server", NonJson::Print("sotto server"));
        Server {
            guard,
            events,
            seen: Vec::new(),
            listeners: Vec::new(),
            metrics: None,
            name: name.to_owned(),
        }
    }

    /// Records a `listening` or `metrics` event; fails on an `error` one.
    fn note_startup(&mut self, v: &Value) {
        assert!(v.get("error").is_none(), "server {} failed: {v}", self.name);
        let addr = || -> Option<SocketAddr> { v["addr"].as_str().and_then(|a| a.parse().ok()) };
        if v["event"] == "listening" {
            let transport = v["transport"].as_str().unwrap_or_default().to_owned();
            let addr = addr().expect("listening event with an address");
            self.listeners.push((transport, addr));
        } else if v["event"] == "metrics" {
            self.metrics = addr();
        }
    }

    /// Starts `sotto --json server --config <config>` and waits for its `expected_listeners`
    /// `listening` events.
    pub(crate) fn start(name: &str, config: &Path, expected_listeners: usize) -> Server {
        let mut server = Self::spawn(name, config);
        while server.listeners.len() < expected_listeners {
            let v = server.next_event();
            server.note_startup(&v);
        }
        server
    }

    /// Starts `sotto --json server --config <config>` and waits until every listener is up:
    /// the `metrics` (or `metrics_unavailable`) line comes after every listener's.
    pub(crate) fn start_all(name: &str, config: &Path) -> Server {
        let mut server = Self::spawn(name, config);
        loop {
            let v = server.next_event();
            server.note_startup(&v);
            if v["event"] == "metrics" || v["event"] == "metrics_unavailable" {
                return server;
            }
        }
    }

    /// The first listener of `transport` (`"tls"`, `"udp"`, `"tcp"`) as the server reported
    /// it (`0.0.0.0:5061` for the one `sotto init` writes).
    pub(crate) fn listener(&self, transport: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(t, _)| t == transport)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("server {} has no {transport} listener", self.name))
    }

    /// The address of the first listener of `transport`, as a client on this machine reaches
    /// it: a listener on every address (`0.0.0.0`, as `sotto init` writes, or `::`) is
    /// reached on loopback.
    pub(crate) fn addr(&self, transport: &str) -> SocketAddr {
        let mut addr = self.listener(transport);
        if addr.ip().is_unspecified() {
            addr.set_ip(match addr {
                SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
            });
        }
        addr
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.guard.pid().expect("server running")
    }

    /// The next event (fails after [`EVENT_WAIT`] without one).
    pub(crate) fn next_event(&mut self) -> Value {
        let v = self.events.recv_timeout(EVENT_WAIT).unwrap_or_else(|_| {
            panic!(
                "no event from sotto server {} within {EVENT_WAIT:?}; seen: {:#?}",
                self.name, self.seen
            )
        });
        self.seen.push(v.clone());
        v
    }

    /// Collects events until `pred` has matched `n` of them (fails after [`EVENT_WAIT`]
    /// without a new event, or [`EVENT_WAIT`] in all).
    pub(crate) fn wait_for(&mut self, n: usize, what: &str, pred: impl Fn(&Value) -> bool) {
        let deadline = Instant::now() + EVENT_WAIT;
        let mut count = self.seen.iter().filter(|v| pred(v)).count();
        while count < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let v = match self.events.recv_timeout(left) {
                Ok(v) => v,
                Err(_) => panic!(
                    "server {}: expected {n} × {what}, saw {count}; events: {:#?}",
                    self.name, self.seen
                ),
            };
            self.seen.push(v.clone());
            if pred(&v) {
                count += 1;
            }
        }
    }

    /// The first event matching `pred`, among those seen so far or new ones (fails after
    /// [`EVENT_WAIT`]); lets the test's own tokio runtime run meanwhile (its client
    /// transports write from tasks).
    pub(crate) async fn wait_match_async(
        &mut self,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + EVENT_WAIT;
        loop {
            self.drain();
            if let Some(v) = self.seen.iter().find(|v| pred(v)) {
                return v.clone();
            }
            assert!(
                Instant::now() < deadline,
                "server {}: no {what} within {EVENT_WAIT:?}; events: {:#?}",
                self.name,
                self.seen
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Takes the events that arrived so far without waiting.
    pub(crate) fn drain(&mut self) {
        while let Ok(v) = self.events.try_recv() {
            self.seen.push(v);
        }
    }

    /// How many events seen so far match `pred`.
    pub(crate) fn count(&self, pred: impl Fn(&Value) -> bool) -> usize {
        self.seen.iter().filter(|v| pred(v)).count()
    }

    /// SIGKILL: the process dies without any goodbye (a crashed cluster member).
    pub(crate) fn kill(mut self) {
        if let Some(mut c) = self.guard.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM without waiting (see [`Server::exited`]).
    pub(crate) fn terminate(&self) {
        signal(self.pid(), "TERM");
    }

    /// After a signal: the server must print `stopped` and exit 0. Returns every event it
    /// printed.
    pub(crate) fn stopped(mut self) -> Vec<Value> {
        let deadline = Instant::now() + EVENT_WAIT;
        // Only new events are looked at: after a load, `seen` holds many thousands.
        let mut stopped = self.seen.iter().any(|v| v["event"] == "stopped");
        while !stopped {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    stopped = v["event"] == "stopped";
                    self.seen.push(v);
                }
                Err(e) => {
                    // At end of output the process is exiting: say how it ended.
                    let status = match e {
                        mpsc::RecvTimeoutError::Disconnected => {
                            self.guard.0.as_mut().and_then(|c| c.wait().ok())
                        }
                        mpsc::RecvTimeoutError::Timeout => None,
                    };
                    panic!(
                        "server {}: no `stopped` event ({e:?}); exit status {status:?}; \
                         events: {:#?}",
                        self.name, self.seen
                    );
                }
            }
        }
        let mut child = self.guard.0.take().expect("server running");
        let status = child.wait().expect("wait for server");
        assert!(
            status.success(),
            "server {} exit status {status}",
            self.name
        );
        // The reader thread ends at end of output; take what it still holds.
        while let Ok(v) = self.events.recv_timeout(EVENT_WAIT) {
            self.seen.push(v);
        }
        self.seen
    }

    /// [`Server::stopped`] for a test on a tokio runtime: lets it run while waiting for
    /// `stopped`.
    pub(crate) async fn exited(mut self) -> Vec<Value> {
        self.wait_match_async("stopped", |v| v["event"] == "stopped")
            .await;
        self.stopped()
    }

    /// SIGINT (Ctrl-C), then [`Server::stopped`].
    pub(crate) fn stop(self) -> Vec<Value> {
        signal(self.pid(), "INT");
        self.stopped()
    }

    /// SIGTERM, then [`Server::stopped`].
    pub(crate) fn stop_term(self) -> Vec<Value> {
        self.terminate();
        self.stopped()
    }
}

/// A `request` event of `method` with `outcome` (`replied`, `forwarded`, `dropped`).
pub(crate) fn is_request(v: &Value, method: &str, outcome: &str) -> bool {
    v["event"] == "request" && v["method"] == method && v["outcome"] == outcome
}

/// `GET /metrics` over plain HTTP/1.1 from the endpoint at `addr` (must answer 200); the
/// whole response.
pub(crate) fn scrape(addr: SocketAddr) -> String {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr).expect("connect to metrics");
    s.set_read_timeout(Some(EVENT_WAIT)).expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .expect("send");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read metrics");
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
    out
}

/// The value of a metric sample line (exact name with labels) in a [`scrape`].
pub(crate) fn sample(text: &str, series: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}
