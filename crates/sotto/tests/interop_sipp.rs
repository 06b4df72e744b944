//! Interop with a real peer: SIPp (Debian package `sip-tester`) sends OPTIONS to
//! `sotto responder` and must get 200 OK, over UDP, and over TLS through an stunnel client
//! (Debian's SIPp is built without TLS) that verifies the responder's certificate against a
//! CA generated here.
//!
//! Everything runs on 127.0.0.1 with ports chosen at run time; every child process is killed
//! on every path (guards), and SIPp is bounded by `timeout -s INT`.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use serde_json::Value;

const INSTALL: &str = "install with: apt-get install -y sip-tester stunnel4";
/// Calls per SIPp run, and their rate per second.
const CALLS: u64 = 10;
const RATE: u64 = 20;
/// Failure bound for one wait (never asserted on as a duration).
const WAIT: Duration = Duration::from_secs(15);

/// Kills (and reaps) a child process when dropped.
struct Guard {
    child: Option<Child>,
}

impl Guard {
    fn new(child: Child) -> Self {
        Self { child: Some(child) }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Sends SIGINT (Ctrl-C) and waits, bounded, for the exit status.
    fn interrupt(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT failed");
        self.wait_bounded()
    }

    /// Waits up to [`WAIT`] for the child to exit.
    fn wait_bounded(&mut self) -> ExitStatus {
        let child = self.child.as_mut().expect("child present");
        for _ in 0..(WAIT.as_millis() / 20) {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("process {} did not exit", self.pid());
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Fails the test with the install hint if `tool` cannot be run.
fn require(tool: &str, version_arg: &str) {
    let found = Command::new(tool)
        .arg(version_arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    assert!(found, "`{tool}` is not installed: {INSTALL}");
}

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sotto-interop-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free UDP port")
        .port()
}

fn free_tcp_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("free TCP port")
        .port()
}

fn peers_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peers")
}

/// A running `sotto responder` and the JSON events it prints after `listening`.
struct Responder {
    guard: Guard,
    listening: Value,
    events: mpsc::Receiver<Value>,
}

impl Responder {
    fn start(args: &[&str]) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_sotto"))
            .arg("--json")
            .arg("responder")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn sotto responder");
        let mut guard = Guard::new(child);
        let stdout = guard
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .expect("responder stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let value: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("responder printed non-JSON {line:?}: {e}"));
                if tx.send(value).is_err() {
                    break;
                }
            }
        });
        let listening = events
            .recv_timeout(WAIT)
            .expect("responder printed no listening event");
        assert_eq!(listening["event"], "listening", "{listening}");
        Self {
            guard,
            listening,
            events,
        }
    }

    /// The first bound address of `transport` ("udp", "tcp", "tls").
    fn addr(&self, transport: &str) -> SocketAddr {
        let addr: SocketAddr = self.listening[transport][0]
            .as_str()
            .unwrap_or_else(|| panic!("no {transport} address in {}", self.listening))
            .parse()
            .expect("socket address");
        assert_ne!(addr.port(), 0);
        addr
    }

    /// Stops with Ctrl-C, checks exit status 0, and returns every event it printed.
    fn stop(mut self) -> Vec<Value> {
        let status = self.guard.interrupt();
        assert!(status.success(), "responder exited with {status}");
        drain(&self.events)
    }
}

/// Every event left, once the reader thread has hit end of output (the process has exited).
fn drain(events: &mpsc::Receiver<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(e) = events.recv_timeout(WAIT) {
        out.push(e);
    }
    out
}

/// Outcome of one SIPp run, from its exit code and its `-trace_stat` CSV.
#[derive(Debug)]
struct SippRun {
    status: ExitStatus,
    successful: u64,
    failed: u64,
    output: String,
}

/// Runs SIPp with the OPTIONS scenario against `target`, bounded by `timeout -s INT`.
fn run_sipp(dir: &Path, name: &str, target: SocketAddr, extra: &[&str]) -> SippRun {
    let scenario = peers_dir().join("sipp/options_uac.xml");
    let stat = dir.join(format!("{name}.csv"));
    let errors = dir.join(format!("{name}.errors.log"));
    let local_port = free_udp_port().to_string();
    let calls = CALLS.to_string();
    let rate = RATE.to_string();
    let child = Command::new("timeout")
        .args(["-s", "INT", "-k", "5", "30", "sipp"])
        .arg(target.to_string())
        .arg("-sf")
        .arg(&scenario)
        .args(["-s", "sotto", "-m", &calls, "-r", &rate, "-l", &calls])
        .args(["-i", "127.0.0.1", "-p", &local_port, "-nostdin"])
        .args(["-trace_stat", "-fd", "1", "-stf"])
        .arg(&stat)
        .args(["-trace_err", "-error_file"])
        .arg(&errors)
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn timeout/sipp");
    let mut guard = Guard::new(child);
    let child = guard.child.take().expect("child");
    let out = child.wait_with_output().expect("sipp output");
    let mut output = String::from_utf8_lossy(&out.stdout).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stderr));
    if let Ok(errs) = std::fs::read_to_string(&errors) {
        output.push_str("\n--- sipp errors ---\n");
        output.push_str(&errs);
    }
    let csv = std::fs::read_to_string(&stat)
        .unwrap_or_else(|e| panic!("no SIPp statistics ({e}); output:\n{output}"));
    let (successful, failed) = parse_stats(&csv)
        .unwrap_or_else(|| panic!("unreadable SIPp statistics:\n{csv}\noutput:\n{output}"));
    SippRun {
        status: out.status,
        successful,
        failed,
        output,
    }
}

/// `SuccessfulCall(C)` and `FailedCall(C)` from the last row of a SIPp `-trace_stat` CSV.
fn parse_stats(csv: &str) -> Option<(u64, u64)> {
    let mut rows = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = rows.next()?.split(';').collect();
    let last: Vec<&str> = rows.next_back()?.split(';').collect();
    let field = |name: &str| -> Option<u64> {
        let i = header.iter().position(|h| *h == name)?;
        last.get(i)?.trim().parse().ok()
    };
    Some((field("SuccessfulCall(C)")?, field("FailedCall(C)")?))
}

fn request_events<'a>(events: &'a [Value], transport: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "request" && e["transport"] == transport)
        .collect()
}

#[test]
fn sipp_options_over_udp_get_200() {
    require("sipp", "-v");
    let dir = scratch("udp");
    let responder = Responder::start(&["--udp", "127.0.0.1:0"]);
    let target = responder.addr("udp");

    let run = run_sipp(&dir, "udp", target, &["-t", "u1"]);
    assert!(
        run.status.success(),
        "sipp exited with {}:\n{}",
        run.status,
        run.output
    );
    assert_eq!(
        (run.successful, run.failed),
        (CALLS, 0),
        "sipp output:\n{}",
        run.output
    );

    let events = responder.stop();
    let requests = request_events(&events, "udp");
    assert!(requests.len() as u64 >= CALLS, "{events:?}");
    for e in requests {
        assert_eq!(e["method"], "OPTIONS");
        assert_eq!(e["status"], 200);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A CA and a server certificate for 127.0.0.1, written as PEM files into `dir`.
fn write_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sotto interop test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .expect("server params");
    params
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().expect("server key");
    let cert = params.signed_by(&key, &ca).expect("server certificate");

    let (ca_path, cert_path, key_path) = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&ca_path, ca.pem()).expect("write CA");
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    (ca_path, cert_path, key_path)
}

/// Starts an stunnel client from the template: plain TCP on `accept`, TLS to `connect`.
fn start_stunnel(dir: &Path, accept: SocketAddr, connect: SocketAddr, ca: &Path) -> Guard {
    let template = std::fs::read_to_string(peers_dir().join("stunnel/client.conf.in"))
        .expect("stunnel template");
    let log = dir.join("stunnel.log");
    let conf = template
        .replace("@ACCEPT@", &accept.to_string())
        .replace("@CONNECT@", &connect.to_string())
        .replace("@CA@", &ca.display().to_string())
        .replace("@CHECK_IP@", &connect.ip().to_string())
        .replace("@LOG@", &log.display().to_string());
    let conf_path = dir.join("stunnel.conf");
    std::fs::write(&conf_path, conf).expect("write stunnel.conf");
    let child = Command::new("stunnel")
        .arg(&conf_path)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn stunnel");
    let mut guard = Guard::new(child);
    // Wait (bounded) until stunnel accepts TCP connections.
    for _ in 0..(WAIT.as_millis() / 50) {
        if TcpStream::connect_timeout(&accept, Duration::from_millis(200)).is_ok() {
            return guard;
        }
        if let Some(status) = guard
            .child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
        {
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            panic!("stunnel exited with {status}:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("stunnel did not listen on {accept}");
}

#[test]
fn sipp_options_over_tls_via_stunnel_get_200() {
    require("sipp", "-v");
    require("stunnel", "-version");
    let dir = scratch("tls");
    let (ca, cert, key) = write_pki(&dir);
    let responder = Responder::start(&[
        "--tls",
        "127.0.0.1:0",
        "--cert",
        cert.to_str().expect("utf-8 path"),
        "--key",
        key.to_str().expect("utf-8 path"),
    ]);
    let tls_addr = responder.addr("tls");
    let accept: SocketAddr = format!("127.0.0.1:{}", free_tcp_port())
        .parse()
        .expect("socket address");
    let _stunnel = start_stunnel(&dir, accept, tls_addr, &ca);

    let run = run_sipp(&dir, "tls", accept, &["-t", "t1"]);
    let log = std::fs::read_to_string(dir.join("stunnel.log")).unwrap_or_default();
    assert!(
        run.status.success(),
        "sipp exited with {}:\n{}\n--- stunnel ---\n{log}",
        run.status,
        run.output
    );
    assert_eq!(
        (run.successful, run.failed),
        (CALLS, 0),
        "sipp output:\n{}\n--- stunnel ---\n{log}",
        run.output
    );
    // stunnel really verified the responder's certificate against our CA.
    assert!(
        log.contains("Certificate accepted at depth=0"),
        "stunnel log:\n{log}"
    );

    let events = responder.stop();
    let requests = request_events(&events, "tls");
    assert!(requests.len() as u64 >= CALLS, "{events:?}");
    for e in requests {
        assert_eq!(e["method"], "OPTIONS");
        assert_eq!(e["status"], 200);
        assert!(
            e["tls_version"] == "TLSv1.3" || e["tls_version"] == "TLSv1.2",
            "{e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn responder_answers_501_ignores_ack_and_exits_after_count() {
    let responder = Responder::start(&["--udp", "127.0.0.1:0", "--count", "2"]);
    let target = responder.addr("udp");
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(WAIT)).expect("timeout");
    let local = socket.local_addr().expect("local addr");
    let request = |method: &str, call_id: &str| {
        format!(
            "{method} sip:sotto@{target} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {local};branch=z9hG4bK{call_id}\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:test@{local}>;tag=t1\r\n\
             To: <sip:sotto@{target}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: 1 {method}\r\n\
             Content-Length: 0\r\n\r\n"
        )
    };
    let mut buf = [0u8; 4096];

    // ACK: no answer, not counted. Then INFO: 501. Then OPTIONS: 200, and the count is reached.
    socket
        .send_to(request("ACK", "c-ack").as_bytes(), target)
        .expect("send");
    socket
        .send_to(request("INFO", "c-info").as_bytes(), target)
        .expect("send");
    let n = socket.recv(&mut buf).expect("a response to INFO");
    let info = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(info.starts_with("SIP/2.0 501 "), "{info}");
    assert!(info.contains("Call-ID: c-info\r\n"), "{info}");

    socket
        .send_to(request("OPTIONS", "c-opt").as_bytes(), target)
        .expect("send");
    let n = socket.recv(&mut buf).expect("a response to OPTIONS");
    let ok = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(ok.starts_with("SIP/2.0 200 OK\r\n"), "{ok}");
    assert!(ok.contains("Call-ID: c-opt\r\n"), "{ok}");
    assert!(ok.contains(";branch=z9hG4bKc-opt"), "{ok}");
    assert!(ok.contains("CSeq: 1 OPTIONS\r\n"), "{ok}");
    assert!(ok.contains("Server: sotto/"), "{ok}");
    let to = ok
        .lines()
        .find(|l| l.starts_with("To:"))
        .unwrap_or_default();
    assert!(to.contains(";tag="), "{ok}");

    // --count 2 reached: the responder exits 0 on its own.
    let Responder {
        mut guard, events, ..
    } = responder;
    let status = guard.wait_bounded();
    assert!(status.success(), "responder exited with {status}");
    let events = drain(&events);
    let statuses: Vec<&Value> = request_events(&events, "udp")
        .iter()
        .map(|e| &e["status"])
        .collect();
    assert_eq!(
        statuses,
        [&Value::from(501), &Value::from(200)],
        "{events:?}"
    );
}
