//! Interop with a real peer: SIPp (Debian package `sip-tester`) against `sotto server` over
//! UDP on 127.0.0.1, with users created by `sotto user add`:
//!
//! 1. REGISTER with digest (SIPp's `[authentication]`): 401, then 200.
//! 2. A SIPp UAS registers as bob; a SIPp UAC (alice) calls bob through the server:
//!    INVITE, 407 + digest, 100, 200, ACK and BYE along the Record-Route, 200.
//!
//! SIPp's digest only knows MD5 and answers the first challenge it gets, so these servers
//! list MD5 first (`[modules.authentication] algorithms`); the default is SHA-256 first.
//! Every child is killed on every path; SIPp is bounded by `timeout -s INT` and `-m`.

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const INSTALL: &str = "install with: apt-get install -y sip-tester";
/// Calls per SIPp run.
const CALLS: u32 = 3;
/// Failure bound for one wait (never asserted on as a duration).
const WAIT: Duration = Duration::from_secs(20);

/// Kills (and reaps) a child process when dropped.
struct Guard(Option<Child>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn sotto() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sotto"))
}

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/peers/sipp")
        .join(name)
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
        .port()
}

fn require_sipp() {
    let found = Command::new("sipp")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(found, "`sipp` is not installed: {INSTALL}");
}

/// A running `sotto server` and its JSON events.
struct Server {
    guard: Guard,
    events: mpsc::Receiver<Value>,
    seen: Vec<Value>,
    port: u16,
    dir: PathBuf,
}

impl Server {
    /// `sotto init`, users alice and bob, UDP on a free port, then `sotto server --json`.
    fn start(name: &str) -> Server {
        let dir =
            std::env::temp_dir().join(format!("sotto-srv-sipp-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        let ok = sotto()
            .args(["init", "--dir"])
            .arg(&data)
            .args(["--domain", "example.test"])
            .stdout(Stdio::null())
            .status()
            .expect("run sotto init");
        assert!(ok.success(), "sotto init failed");
        let config = data.join("sotto.toml");
        for (user, pw) in [("alice", "alicepw"), ("bob", "bobpw")] {
            let ok = sotto()
                .args(["user", "add", user, "--password", pw, "--config"])
                .arg(&config)
                .stdout(Stdio::null())
                .status()
                .expect("run sotto user add");
            assert!(ok.success(), "sotto user add {user} failed");
        }
        let port = free_udp_port();
        let text = std::fs::read_to_string(&config).expect("read config");
        let text = text
            .lines()
            .map(|l| {
                if l.starts_with("udp = ") {
                    format!("udp = [\"127.0.0.1:{port}\"]")
                } else if l.starts_with("tls = ") {
                    "tls = [\"127.0.0.1:0\"]".to_owned()
                } else if l.starts_with("algorithms = ") {
                    "algorithms = [\"MD5\", \"SHA-256\"]".to_owned()
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(&config, text).expect("write config");
        let mut child = sotto()
            .args(["--json", "server", "--config"])
            .arg(&config)
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
            guard: Guard(Some(child)),
            events,
            seen: Vec::new(),
            port,
            dir,
        };
        let mut listening = 0;
        while listening < 2 {
            let v = server.next_event();
            assert!(v.get("error").is_none(), "server failed: {v}");
            if v["event"] == "listening" {
                listening += 1;
            }
        }
        server
    }

    fn next_event(&mut self) -> Value {
        let v = self
            .events
            .recv_timeout(WAIT)
            .expect("an event from sotto server");
        self.seen.push(v.clone());
        v
    }

    /// Collects events until `pred` has matched `n` of them.
    fn wait_for(&mut self, n: usize, pred: impl Fn(&Value) -> bool) {
        let mut count = self.seen.iter().filter(|v| pred(v)).count();
        while count < n {
            let v = self.next_event();
            if pred(&v) {
                count += 1;
            }
        }
    }

    /// Ctrl-C; the server must exit 0 after a `stopped` event.
    fn stop(mut self) {
        let child = self.guard.0.as_mut().expect("server running");
        let ok = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
        self.wait_for(1, |v| v["event"] == "stopped");
        let mut child = self.guard.0.take().expect("server running");
        let status = child.wait().expect("wait for server");
        assert!(status.success(), "server exit status {status}");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Starts SIPp against the server, bounded by `timeout -s INT`.
fn sipp(dir: &Path, server_port: u16, args: &[&str]) -> Child {
    Command::new("timeout")
        .args(["-s", "INT", "30", "sipp"])
        .args(args)
        .arg(format!("127.0.0.1:{server_port}"))
        .args(["-i", "127.0.0.1", "-nostdin", "-trace_err"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipp")
}

fn finish(child: Child, what: &str, dir: &Path) {
    let mut guard = Guard(Some(child));
    let status = guard
        .0
        .as_mut()
        .map(|c| c.wait().expect("wait sipp"))
        .expect("sipp");
    guard.0 = None;
    let errors: String = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        status.success(),
        "{what}: sipp exit status {status}; errors: {errors}"
    );
}

fn csv(dir: &Path, name: &str, line: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("SEQUENTIAL\n{line}\n")).expect("write csv");
    path.to_string_lossy().into_owned()
}

fn is_request(v: &Value, method: &str, outcome: &str) -> bool {
    v["event"] == "request" && v["method"] == method && v["outcome"] == outcome
}

#[test]
fn sipp_register_with_digest() {
    require_sipp();
    let mut server = Server::start("register");
    let dir = server.dir.clone();
    let port = free_udp_port().to_string();
    let inf = csv(
        &dir,
        "alice.csv",
        &format!("alice;127.0.0.1:{port};[authentication username=alice password=alicepw]"),
    );
    let reg = scenario("register_auth.xml");
    let child = sipp(
        &dir,
        server.port,
        &[
            "-sf",
            reg.to_str().expect("path"),
            "-inf",
            &inf,
            "-p",
            &port,
            "-m",
            "2",
        ],
    );
    finish(child, "register", &dir);
    server.wait_for(2, |v| {
        is_request(v, "REGISTER", "replied")
            && v["status"] == 401
            && v["module"] == "authentication"
    });
    server.wait_for(2, |v| {
        is_request(v, "REGISTER", "replied") && v["status"] == 200 && v["module"] == "registrar"
    });
    assert!(
        !server.seen.iter().any(|v| v["auth_failure"] == true),
        "no authentication failure expected: {:?}",
        server.seen
    );
    server.stop();
}

#[test]
fn sipp_call_through_the_proxy() {
    require_sipp();
    let mut server = Server::start("call");
    let dir = server.dir.clone();
    let uas_port = free_udp_port().to_string();
    let uac_port = free_udp_port().to_string();
    // bob registers the UAS's address.
    let inf = csv(
        &dir,
        "bob.csv",
        &format!("bob;127.0.0.1:{uas_port};[authentication username=bob password=bobpw]"),
    );
    let reg = scenario("register_auth.xml");
    let child = sipp(
        &dir,
        server.port,
        &[
            "-sf",
            reg.to_str().expect("path"),
            "-inf",
            &inf,
            "-p",
            &uas_port,
            "-m",
            "1",
        ],
    );
    finish(child, "register bob", &dir);
    server.wait_for(1, |v| {
        is_request(v, "REGISTER", "replied") && v["status"] == 200
    });
    let calls = CALLS.to_string();
    let uas_xml = scenario("uas.xml");
    let uas = sipp(
        &dir,
        server.port,
        &[
            "-sf",
            uas_xml.to_str().expect("path"),
            "-p",
            &uas_port,
            "-m",
            &calls,
        ],
    );
    let uas = Guard(Some(uas));
    // The UAS must be listening before the first INVITE reaches it.
    std::thread::sleep(Duration::from_millis(500));
    let inf = csv(
        &dir,
        "alice.csv",
        "alice;[authentication username=alice password=alicepw]",
    );
    let uac_xml = scenario("uac_call.xml");
    let uac = sipp(
        &dir,
        server.port,
        &[
            "-sf",
            uac_xml.to_str().expect("path"),
            "-inf",
            &inf,
            "-s",
            "bob",
            "-p",
            &uac_port,
            "-m",
            &calls,
            "-r",
            "5",
        ],
    );
    finish(uac, "uac", &dir);
    let mut uas = uas;
    finish(uas.0.take().expect("uas"), "uas", &dir);
    let n = CALLS as usize;
    server.wait_for(n, |v| {
        is_request(v, "INVITE", "replied") && v["status"] == 407
    });
    server.wait_for(n, |v| is_request(v, "INVITE", "forwarded"));
    server.wait_for(n, |v| is_request(v, "ACK", "forwarded"));
    server.wait_for(n, |v| is_request(v, "BYE", "forwarded"));
    server.stop();
}
