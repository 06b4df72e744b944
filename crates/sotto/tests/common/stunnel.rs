//! Test helper: an stunnel client (Debian package `stunnel4`) from the template
//! `tests/peers/stunnel/client.conf.in` — plain TCP on a loopback port, TLS to the peer, the
//! peer certificate verified against a CA for the peer's IP address — so that SIPp, which
//! has no TLS of its own here, can reach a TLS listener.
//!
//! Included with `#[path = "common/stunnel.rs"] mod stunnel;` next to `common/process.rs`
//! (`mod process`).

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, peers_dir};

/// Failure bound of the wait for stunnel to listen.
const START_BOUND: Duration = Duration::from_secs(15);

/// A running stunnel client; killed and reaped on drop.
pub(crate) struct Stunnel {
    _guard: ChildGuard,
    log: PathBuf,
}

impl Stunnel {
    /// Writes `dir/stunnel-<name>.conf` (plain TCP on `accept`, TLS to `connect`, the
    /// certificate checked against `ca` for the IP address of `connect`, log in
    /// `dir/stunnel-<name>.log`), starts stunnel and waits until it accepts connections.
    /// `install` is named if stunnel cannot be started.
    pub(crate) fn start(
        dir: &Path,
        name: &str,
        accept: SocketAddr,
        connect: SocketAddr,
        ca: &Path,
        install: &str,
    ) -> Stunnel {
        let template = std::fs::read_to_string(peers_dir().join("stunnel/client.conf.in"))
            .expect("stunnel template");
        let log = dir.join(format!("stunnel-{name}.log"));
        let conf = template
            .replace("@ACCEPT@", &accept.to_string())
            .replace("@CONNECT@", &connect.to_string())
            .replace("@CA@", &ca.display().to_string())
            .replace("@CHECK_IP@", &connect.ip().to_string())
            .replace("@LOG@", &log.display().to_string());
        let conf_path = dir.join(format!("stunnel-{name}.conf"));
        std::fs::write(&conf_path, conf).expect("write stunnel conf");
        let child = Command::new("stunnel")
            .arg(&conf_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn stunnel ({e}): {install}"));
        let mut guard = ChildGuard::new(child);
        let deadline = Instant::now() + START_BOUND;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&accept, Duration::from_millis(200)).is_ok() {
                return Stunnel { _guard: guard, log };
            }
            if let Some(status) = guard.0.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("stunnel {name} exited with {status}:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("stunnel {name} did not listen on {accept}");
    }

    /// Its log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The source addresses of the TLS connections it opened to the peer.
    pub(crate) fn outgoing(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter_map(|l| l.split_once("connected remote server from "))
            .map(|(_, a)| a.trim().to_owned())
            .collect()
    }
}
