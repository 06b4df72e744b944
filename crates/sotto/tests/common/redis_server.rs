//! Test helper: a `redis-server` of the test's own (Debian package `redis-server`), on
//! 127.0.0.1 and a free port, in the test's directory; killed on drop. Optionally
//! persistent (append-only file, fsync before each reply) so that it can be killed and
//! started again on the same port and directory with what it acknowledged.
//!
//! Included with `#[path = "common/redis_server.rs"] mod redis_server;` (needs `process`).

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, free_tcp_port};

/// A running (or killed, see [`Redis::kill`]) `redis-server`.
pub(crate) struct Redis {
    guard: ChildGuard,
    dir: PathBuf,
    port: u16,
    persistent: bool,
}

impl Redis {
    /// A Redis without persistence (what it holds dies with it).
    pub(crate) fn start(dir: &Path) -> Redis {
        Self::launch(dir, free_tcp_port(), false)
    }

    /// A Redis that writes every change to its append-only file before answering
    /// (`appendfsync always`): killed and started again, it has what it acknowledged.
    pub(crate) fn start_persistent(dir: &Path) -> Redis {
        Self::launch(dir, free_tcp_port(), true)
    }

    fn launch(dir: &Path, port: u16, persistent: bool) -> Redis {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("redis.log"))
            .expect("redis log");
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1", "--protected-mode", "yes"])
            .args(["--save", "", "--daemonize", "no"]);
        if persistent {
            cmd.args(["--appendonly", "yes", "--appendfsync", "always"]);
        } else {
            cmd.args(["--appendonly", "no"]);
        }
        let child = cmd
            .arg("--dir")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        let redis = Redis {
            guard: ChildGuard::new(child),
            dir: dir.to_path_buf(),
            port,
            persistent,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while redis.command("PING").as_deref() != Some("+PONG") {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING on port {port}: {}",
                std::fs::read_to_string(dir.join("redis.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        redis
    }

    /// SIGKILL: Redis dies at once, without saving anything more.
    pub(crate) fn kill(&mut self) {
        if let Some(mut c) = self.guard.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts Redis again on the same port and directory (after [`Redis::kill`]).
    pub(crate) fn restart(&mut self) {
        assert!(self.guard.0.is_none(), "kill it first");
        *self = Self::launch(&self.dir.clone(), self.port, self.persistent);
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Sends one inline command and returns the first line of the reply.
    pub(crate) fn command(&self, cmd: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).ok()?;
        Some(line.trim_end().to_owned())
    }

    /// The number of elements of an inline command's array reply (`*N`).
    pub(crate) fn count(&self, cmd: &str) -> usize {
        self.command(cmd)
            .and_then(|l| l.strip_prefix('*').and_then(|n| n.parse().ok()))
            .unwrap_or(0)
    }
}
