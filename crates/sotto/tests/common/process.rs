//! Test helper: child processes and the loopback machine they run on — a guard that kills
//! and reaps a child, signals, the `sotto` binary under test, JSON event lines read on a
//! thread, tool checks, free loopback ports and scratch directories.
//!
//! Included with `#[path = "common/process.rs"] mod process;` by every test that runs a
//! child process (the other `common/` modules build on it).

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Kills (SIGKILL) and reaps a child process when dropped.
pub(crate) struct ChildGuard(pub(crate) Option<Child>);

impl ChildGuard {
    /// Guards `child`.
    pub(crate) fn new(child: Child) -> ChildGuard {
        ChildGuard(Some(child))
    }

    /// The child's process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// Waits at most `bound` for the child to exit and returns its status; fails the test if
    /// it is still running then (the guard kills it).
    pub(crate) fn wait_bounded(&mut self, bound: Duration) -> ExitStatus {
        let child = self.0.as_mut().expect("child present");
        let deadline = Instant::now() + bound;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.0 = None;
                return status;
            }
            if Instant::now() >= deadline {
                panic!("process {} did not exit within {bound:?}", child.id());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGINT (Ctrl-C) and waits, at most `bound`, for the exit status.
    pub(crate) fn interrupt(&mut self, bound: Duration) -> ExitStatus {
        signal(self.pid().expect("child present"), "INT");
        self.wait_bounded(bound)
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

/// `kill -<sig> <pid>`; fails the test if `kill` fails.
pub(crate) fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("run kill");
    assert!(ok.success(), "kill -{sig} {pid}");
}

/// The `sotto` binary under test.
pub(crate) fn sotto() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sotto"))
}

/// What the reader of a child's JSON lines does with a line that is not JSON.
#[derive(Clone, Copy)]
pub(crate) enum NonJson {
    /// Drops it.
    Skip,
    /// Passes it on as a JSON string (so a failure message shows it).
    Keep,
    /// Prints it on stderr with this prefix, then drops it.
    Print(&'static str),
}

/// Reads `out` line by line on a thread and sends each JSON line as a value; the channel
/// closes at end of output.
pub(crate) fn json_lines(
    out: impl Read + Send + 'static,
    non_json: NonJson,
) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { break };
            let v = match (serde_json::from_str::<Value>(&line), non_json) {
                (Ok(v), _) => v,
                (Err(_), NonJson::Keep) => Value::String(line),
                (Err(_), NonJson::Print(prefix)) => {
                    eprintln!("{prefix}: {line}");
                    continue;
                }
                (Err(_), NonJson::Skip) => continue,
            };
            if tx.send(v).is_err() {
                break;
            }
        }
    });
    rx
}

/// Spawns `cmd` with stdin closed and stdout piped into [`json_lines`]; stderr as `cmd` set
/// it (inherited by default).
pub(crate) fn spawn_json(
    cmd: &mut Command,
    what: &str,
    non_json: NonJson,
) -> (ChildGuard, mpsc::Receiver<Value>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    let stdout = child.stdout.take().expect("child stdout");
    (ChildGuard::new(child), json_lines(stdout, non_json))
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

/// Fails the test, naming `install`, unless every `(command, probe argument)` runs.
pub(crate) fn require_tools(tools: &[(&str, &str)], install: &str) {
    for (cmd, arg) in tools {
        assert!(have(cmd, arg), "`{cmd}` is not installed: {install}");
    }
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

/// A UDP port on 127.0.0.1 that was free a moment ago (bound, then released).
pub(crate) fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
        .port()
}

/// A TCP port on 127.0.0.1 that nothing listens on (bound, then released).
pub(crate) fn free_tcp_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free TCP port")
        .port()
}

/// A port on 127.0.0.1 free for both TCP and UDP (bound on both, then released): for a peer
/// such as SIPp whose `-p` port is bound on whichever transport `-t` names.
pub(crate) fn free_tcp_udp_port() -> u16 {
    for _ in 0..64 {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("free TCP port");
        let port = tcp.local_addr().expect("local address").port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no port on 127.0.0.1 free for both TCP and UDP in 64 tries");
}

/// A TCP connection to `server` from the loopback address `local_ip` (any port): tests that
/// play several clients behind different addresses (per-source limits).
pub(crate) fn tcp_from(local_ip: &str, server: SocketAddr) -> std::net::TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
        .expect("TCP socket");
    let local: SocketAddr = format!("{local_ip}:0").parse().expect("loopback address");
    s.bind(&local.into()).expect("bind the client address");
    s.connect_timeout(&server.into(), Duration::from_secs(5))
        .expect("connect to the server");
    s.into()
}

/// Whether the peer closed the stream (end of stream, a reset, a TLS alert) within `wait`;
/// bytes that arrive first are returned too.
pub(crate) fn closed_within(
    s: &mut impl std::io::Read,
    set_timeout: impl Fn(Duration),
    wait: Duration,
) -> (bool, Vec<u8>) {
    read_until(s, set_timeout, wait, |_| false)
}

/// Reads from `s` until what arrived satisfies `done`, the peer closes the stream (end of
/// stream, a reset, a TLS alert) or `wait` passes; returns whether it closed, and the bytes.
/// `set_timeout` sets the read timeout of the socket under `s`.
pub(crate) fn read_until(
    s: &mut impl std::io::Read,
    set_timeout: impl Fn(Duration),
    wait: Duration,
    done: impl Fn(&[u8]) -> bool,
) -> (bool, Vec<u8>) {
    let deadline = Instant::now() + wait;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || done(&got) {
            return (false, got);
        }
        set_timeout(left.max(Duration::from_millis(1)));
        match s.read(&mut buf) {
            Ok(0) => return (true, got),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return (true, got),
        }
    }
}

/// `127.0.0.1:<port>`.
pub(crate) fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A fresh (emptied, then created) directory `sotto-<tag>-<pid>-<name>` under the temporary
/// directory.
pub(crate) fn scratch(tag: &str, name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sotto-{tag}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// The peer configurations and scenarios kept with the tests (`tests/peers`).
pub(crate) fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// The local ports of the UDP sockets a process holds: the socket inodes among its open
/// files matched against `/proc/net/udp` and `/proc/net/udp6`.
pub(crate) fn udp_ports_of(pid: u32) -> Vec<u16> {
    let mut inodes = Vec::new();
    if let Ok(entries) = std::fs::read_dir(format!("/proc/{pid}/fd")) {
        for e in entries.flatten() {
            if let Ok(target) = std::fs::read_link(e.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    inodes.push(inode.to_owned());
                }
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (Some(local), Some(inode)) = (cols.get(1), cols.get(9)) else {
                continue;
            };
            if inodes.iter().any(|i| i == inode)
                && let Some(port) = local
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
            {
                ports.push(port);
            }
        }
    }
    ports
}

/// Held while a test runs a server on the ports the config of `sotto init` names as they are
/// (SIP over TLS on 0.0.0.0:5061, metrics on 127.0.0.1:9464): tests run side by side, and
/// those ports can serve one of them at a time. Waits (bounded) for the previous holder; a
/// lock whose owner process is gone is taken over. Released on drop.
pub(crate) struct DefaultPorts {
    lock: PathBuf,
}

impl DefaultPorts {
    /// Waits for the default ports (at most 15 minutes: a whole suite of such tests).
    pub(crate) fn lock() -> DefaultPorts {
        let lock = PathBuf::from("/tmp/sotto-test-default-ports.lock");
        let deadline = Instant::now() + Duration::from_secs(900);
        loop {
            if let Ok(owner) = std::fs::read_to_string(&lock) {
                let alive = owner
                    .trim()
                    .parse::<u32>()
                    .is_ok_and(|pid| Path::new(&format!("/proc/{pid}")).exists());
                if !alive {
                    let _ = std::fs::remove_file(&lock);
                }
            }
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&lock)
            {
                use std::io::Write as _;
                let _ = write!(f, "{}", std::process::id());
                // The previous holder's server may still be closing its sockets.
                let free = || {
                    TcpListener::bind("0.0.0.0:5061").is_ok()
                        && TcpListener::bind("127.0.0.1:9464").is_ok()
                };
                let until = Instant::now() + Duration::from_secs(30);
                // Judged on one observation (a second probe could race a server that is
                // still closing), and free twice in a row 100 ms apart.
                let mut free_now = false;
                while Instant::now() < until {
                    if free() {
                        std::thread::sleep(Duration::from_millis(100));
                        if free() {
                            free_now = true;
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                assert!(free_now, "ports 5061 and 9464 are taken by another program");
                return DefaultPorts { lock };
            }
            assert!(
                Instant::now() < deadline,
                "the default ports stayed locked by another test ({})",
                lock.display()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for DefaultPorts {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.lock);
    }
}
