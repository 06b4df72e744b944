//! Test helper: one `sotto server` child process on loopback, set up with `sotto init` and
//! `sotto user add`, its config adjusted (listeners, storage), and its `--json` event lines
//! collected by a reader thread. Every child is killed and reaped on drop.
//!
//! Included with `#[path = "common/sotto_server.rs"] mod sotto_server;` by the interop tests
//! that drive a real server (linphonec, Redis pair).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Failure bound of one wait for a server event (never asserted on as a duration).
pub(crate) const EVENT_WAIT: Duration = Duration::from_secs(30);

/// Kills (SIGKILL) and reaps a child process when dropped.
pub(crate) struct ChildGuard(pub(crate) Option<Child>);

impl ChildGuard {
    /// The child's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The `sotto` binary under test.
pub(crate) fn sotto() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sotto"))
}

/// A data directory written by `sotto init --domain 127.0.0.1` with users added.
pub(crate) struct DataDir {
    /// The directory (holds `sotto.toml`, `ca.pem`, `server.pem`, `sotto.db`).
    pub(crate) dir: PathBuf,
}

impl DataDir {
    /// `sotto init --dir <dir> --domain 127.0.0.1`, then `sotto user add` for each
    /// `(user, password)`.
    pub(crate) fn init(dir: &Path, users: &[(&str, &str)]) -> DataDir {
        let out = sotto()
            .args(["init", "--dir"])
            .arg(dir)
            .args(["--domain", "127.0.0.1"])
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

    /// The config file.
    pub(crate) fn config(&self) -> PathBuf {
        self.dir.join("sotto.toml")
    }

    /// The local CA certificate (what clients verify the server against).
    pub(crate) fn ca(&self) -> PathBuf {
        self.dir.join("ca.pem")
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

/// Sets `[section] key = value` in a config table; `section` may be dotted
/// (`modules.authentication`), and missing tables are created.
pub(crate) fn set(table: &mut toml::Table, section: &str, key: &str, value: toml::Value) {
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
    t.insert(key.to_owned(), value);
}

/// A list of address strings as a TOML value.
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
    /// A name for messages.
    pub(crate) name: String,
}

impl Server {
    /// Starts `sotto --json server --config <config>` and waits for its `expected_listeners`
    /// `listening` events.
    pub(crate) fn start(name: &str, config: &Path, expected_listeners: usize) -> Server {
        let mut child = sotto()
            .args(["--json", "server", "--config"])
            .arg(config)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sotto server");
        let stdout = child.stdout.take().expect("server stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        let mut server = Server {
            guard: ChildGuard(Some(child)),
            events,
            seen: Vec::new(),
            listeners: Vec::new(),
            name: name.to_owned(),
        };
        while server.listeners.len() < expected_listeners {
            let v = server.next_event();
            assert!(v.get("error").is_none(), "server {name} failed: {v}");
            if v["event"] == "listening" {
                let transport = v["transport"].as_str().unwrap_or_default().to_owned();
                let addr: SocketAddr = v["addr"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .expect("listening event with an address");
                server.listeners.push((transport, addr));
            }
        }
        server
    }

    /// The address of the first listener of `transport` (`"tls"`, `"udp"`, `"tcp"`).
    pub(crate) fn addr(&self, transport: &str) -> SocketAddr {
        self.listeners
            .iter()
            .find(|(t, _)| t == transport)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("server {} has no {transport} listener", self.name))
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.guard.pid().expect("server running")
    }

    fn next_event(&mut self) -> Value {
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

    /// SIGINT; the server must print `stopped` and exit 0.
    pub(crate) fn stop(mut self) {
        let pid = self.pid();
        let ok = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -INT {pid}");
        self.wait_for(1, "stopped", |v| v["event"] == "stopped");
        let mut child = self.guard.0.take().expect("server running");
        let status = child.wait().expect("wait for server");
        assert!(
            status.success(),
            "server {} exit status {status}",
            self.name
        );
    }
}

/// A `request` event of `method` with `outcome` (`replied`, `forwarded`, `dropped`).
pub(crate) fn is_request(v: &Value, method: &str, outcome: &str) -> bool {
    v["event"] == "request" && v["method"] == method && v["outcome"] == outcome
}

/// Whether the command exists on PATH (runs it with `arg`, any exit status).
pub(crate) fn have(cmd: &str, arg: &str) -> bool {
    Command::new(cmd)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Whether the test runs as root (read from `/proc/self/status`; no libc call).
pub(crate) fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|e| e == "0"))
        })
        .unwrap_or(false)
}
