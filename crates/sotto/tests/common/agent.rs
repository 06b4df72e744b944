//! Test helper: `sotto agent` child processes — an account written by `sotto agent init`,
//! and a running agent whose `--json` event lines a thread reads.
//!
//! Included with `#[path = "common/agent.rs"] mod agent;` next to `common/process.rs`
//! (`mod process`).

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::process::{NonJson, signal, sotto, spawn_json};

/// An account written by `sotto agent init` (its `agent.toml`).
pub(crate) struct AgentAccount {
    /// The account file.
    pub(crate) config: PathBuf,
    /// The account's directory.
    pub(crate) dir: PathBuf,
}

impl AgentAccount {
    /// `sotto --json agent init --dir <dir> --identity sip:<user>@127.0.0.1 --password <pw>
    /// --proxy sips:<proxy> --ca <ca>`; checks its `agent_initialized` event.
    pub(crate) fn init(
        dir: &Path,
        user: &str,
        password: &str,
        proxy: SocketAddr,
        ca: &Path,
    ) -> Self {
        Self::init_with(
            dir,
            &format!("sip:{user}@127.0.0.1"),
            password,
            &format!("sips:{proxy}"),
            ca,
            &[],
        )
    }

    /// `sotto --json agent init --dir <dir> --identity <identity> --password <pw>
    /// --proxy <proxy> --ca <ca> <extra…>`; checks its `agent_initialized` event.
    pub(crate) fn init_with(
        dir: &Path,
        identity: &str,
        password: &str,
        proxy: &str,
        ca: &Path,
        extra: &[&str],
    ) -> Self {
        let out = sotto()
            .args(["--json", "agent", "init", "--dir"])
            .arg(dir)
            .args(["--identity", identity])
            .args(["--password", password])
            .args(["--proxy", proxy])
            .arg("--ca")
            .arg(ca)
            .args(extra)
            .output()
            .expect("run sotto agent init");
        assert!(
            out.status.success(),
            "sotto agent init failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let ev: Value = text
            .lines()
            .find_map(|l| serde_json::from_str(l).ok())
            .unwrap_or_else(|| panic!("no JSON from sotto agent init: {text}"));
        assert_eq!(ev["event"], "agent_initialized", "{ev}");
        assert_eq!(
            ev["media_encryption"], "mandatory",
            "SDES mandatory by default: {ev}"
        );
        AgentAccount {
            config: dir.join("agent.toml"),
            dir: dir.to_path_buf(),
        }
    }

    /// Rewrites the account file with `edit` applied to its TOML table.
    pub(crate) fn edit(&self, edit: impl FnOnce(&mut toml::Table)) {
        let text = std::fs::read_to_string(&self.config).expect("read agent.toml");
        let mut table: toml::Table = text.parse().expect("agent.toml is TOML");
        edit(&mut table);
        std::fs::write(
            &self.config,
            toml::to_string(&table).expect("serialize agent.toml"),
        )
        .expect("write agent.toml");
    }

    /// Starts `sotto --json agent -c <config> <args>`.
    pub(crate) fn spawn(&self, name: &str, args: &[&str]) -> AgentProc {
        AgentProc::spawn(name, &self.config, args, &self.dir)
    }
}

/// A running `sotto --json agent …` and the events it printed. Killed and reaped on drop.
pub(crate) struct AgentProc {
    /// A name for messages.
    pub(crate) name: String,
    child: Option<Child>,
    events: mpsc::Receiver<Value>,
    /// Every event received so far, in order.
    pub(crate) seen: Vec<Value>,
    stderr: PathBuf,
}

impl AgentProc {
    /// Starts `sotto --json agent -c <config> <args>`, its stderr going to
    /// `<dir>/<name>.stderr`.
    pub(crate) fn spawn(name: &str, config: &Path, args: &[&str], dir: &Path) -> AgentProc {
        let stderr = dir.join(format!("{name}.stderr"));
        let err = File::create(&stderr).expect("create agent stderr file");
        let mut cmd = sotto();
        cmd.args(["--json", "agent", "-c"])
            .arg(config)
            .args(args)
            .stderr(err);
        // Non-JSON lines are kept as strings, so a failure message shows them.
        let (mut guard, events) = spawn_json(&mut cmd, "sotto agent", NonJson::Keep);
        AgentProc {
            name: name.to_owned(),
            child: guard.0.take(),
            events,
            seen: Vec::new(),
            stderr,
        }
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// What the agent wrote on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    fn describe(&self) -> String {
        let mut s = String::new();
        for v in &self.seen {
            let _ = writeln!(s, "  {v}");
        }
        format!("events:\n{s}stderr:\n{}", self.stderr())
    }

    /// Takes the events that arrived so far without waiting.
    pub(crate) fn drain(&mut self) {
        while let Ok(v) = self.events.try_recv() {
            self.seen.push(v);
        }
    }

    /// Waits (at most `bound`) for an event matching `pred`, among those seen so far or new
    /// ones; returns it.
    pub(crate) fn wait_for(
        &mut self,
        what: &str,
        bound: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        if let Some(v) = self.seen.iter().find(|v| pred(v)) {
            return v.clone();
        }
        let deadline = Instant::now() + bound;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => {
                    self.seen.push(v.clone());
                    if pred(&v) {
                        return v;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "agent {}: no {what} within {bound:?}; {}",
                    self.name,
                    self.describe()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.as_mut().and_then(|c| c.wait().ok());
                    panic!(
                        "agent {}: exited ({status:?}) before {what}; {}",
                        self.name,
                        self.describe()
                    )
                }
            }
        }
    }

    /// Waits for an event named `event`.
    pub(crate) fn wait_event(&mut self, event: &str, bound: Duration) -> Value {
        self.wait_for(event, bound, |v| v["event"] == event)
    }

    /// Waits (at most `bound` in all) until `n` events named `event` were seen.
    pub(crate) fn wait_nth(&mut self, event: &str, n: usize, bound: Duration) {
        let deadline = Instant::now() + bound;
        while self.count(event) < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(v) => self.seen.push(v),
                Err(_) => panic!(
                    "agent {}: {n} {event} events expected within {bound:?}; {}",
                    self.name,
                    self.describe()
                ),
            }
        }
    }

    /// How many events named `event` were seen so far.
    pub(crate) fn count(&self, event: &str) -> usize {
        self.seen.iter().filter(|v| v["event"] == event).count()
    }

    /// The events named `event` seen so far.
    pub(crate) fn events_named(&self, event: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|v| v["event"] == event)
            .cloned()
            .collect()
    }

    /// Sends SIGINT (what Ctrl-C does) while the process runs.
    pub(crate) fn interrupt(&self) {
        if let Some(pid) = self.pid() {
            signal(pid, "INT");
        }
    }

    /// Waits (at most `bound`) for the process to exit, collecting every event it printed;
    /// `None` if it is still running then.
    pub(crate) fn wait_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + bound;
        loop {
            let status = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(s) = status {
                // The reader thread ends at EOF; take what it still holds.
                let end = Instant::now() + Duration::from_secs(2);
                while let Ok(v) = self
                    .events
                    .recv_timeout(end.saturating_duration_since(Instant::now()))
                {
                    self.seen.push(v);
                }
                self.child = None;
                return Some(s);
            }
            if Instant::now() >= deadline {
                self.drain();
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits (at most `bound`) for the process to exit and returns its status; fails if it
    /// is still running then.
    pub(crate) fn exit_status(&mut self, bound: Duration) -> ExitStatus {
        match self.wait_exit(bound) {
            Some(s) => s,
            None => panic!(
                "agent {} did not exit within {bound:?}; {}",
                self.name,
                self.describe()
            ),
        }
    }

    /// SIGINT, then waits for a clean exit (status 0) within `bound`; fails otherwise.
    pub(crate) fn stop(&mut self, bound: Duration) {
        self.interrupt();
        match self.wait_exit(bound) {
            Some(s) => assert!(
                s.success(),
                "agent {} exit status {s}; {}",
                self.name,
                self.describe()
            ),
            None => panic!(
                "agent {} did not exit within {bound:?} of SIGINT; {}",
                self.name,
                self.describe()
            ),
        }
    }
}

impl Drop for AgentProc {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
