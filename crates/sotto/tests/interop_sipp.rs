//! Interop with a real peer: SIPp (Debian package `sip-tester`) sends OPTIONS to
//! `sotto responder` and must get 200 OK, over UDP, and over TLS through an stunnel client
//! (Debian's SIPp is built without TLS) that verifies the responder's certificate against a
//! CA generated here.
//!
//! Everything runs on 127.0.0.1 with ports chosen at run time; every child process is killed
//! on every path (guards), and SIPp is bounded by `timeout -s INT`.

#[path = "common/pki.rs"]
mod pki;
#[path = "common/process.rs"]
mod process;
#[path = "common/sipp.rs"]
mod sipp;
#[path = "common/stunnel.rs"]
mod stunnel;

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use pki::test_pki;
use process::{
    ChildGuard, NonJson, free_tcp_port, free_tcp_udp_port, loopback, require_tools, scratch, sotto,
    spawn_json,
};
use serde_json::Value;
use sipp::{parse_stats, scenario};
use stunnel::Stunnel;

const INSTALL: &str = "install with: apt-get install -y sip-tester stunnel4";
/// Calls per SIPp run, and their rate per second.
const CALLS: u64 = 10;
const RATE: u64 = 20;
/// Failure bound for one wait (never asserted on as a duration).
const WAIT: Duration = Duration::from_secs(15);

/// A running `sotto responder` and the JSON events it prints after `listening`.
struct Responder {
    guard: ChildGuard,
    listening: Value,
    events: mpsc::Receiver<Value>,
}

impl Responder {
    fn start(args: &[&str]) -> Self {
        let mut cmd = sotto();
        cmd.arg("--json")
            .arg("responder")
            .args(args)
            .stderr(Stdio::inherit());
        // A line that is not JSON is passed on as a string: `drain` fails the test on it.
        let (guard, events) = spawn_json(&mut cmd, "sotto responder", NonJson::Keep);
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
        let status = self.guard.interrupt(WAIT);
        assert!(status.success(), "responder exited with {status}");
        drain(&self.events)
    }
}

/// Every event left, once the reader thread has hit end of output (the process has exited);
/// fails on a line that was not JSON.
fn drain(events: &mpsc::Receiver<Value>) -> Vec<Value> {
    let mut out = Vec::new();
    while let Ok(e) = events.recv_timeout(WAIT) {
        assert!(!e.is_string(), "responder printed non-JSON {e}");
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
    let scenario = scenario("options_uac.xml");
    let stat = dir.join(format!("{name}.csv"));
    let errors = dir.join(format!("{name}.errors.log"));
    // SIPp binds its port on the transport `-t` names (UDP or TCP): free on both.
    let local_port = free_tcp_udp_port().to_string();
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
    let mut guard = ChildGuard::new(child);
    let child = guard.0.take().expect("child");
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

fn request_events<'a>(events: &'a [Value], transport: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["event"] == "request" && e["transport"] == transport)
        .collect()
}

#[test]
fn sipp_options_over_udp_get_200() {
    require_tools(&[("sipp", "-v")], INSTALL);
    let dir = scratch("interop", "udp");
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

#[test]
fn sipp_options_over_tls_via_stunnel_get_200() {
    require_tools(&[("sipp", "-v"), ("stunnel", "-version")], INSTALL);
    let dir = scratch("interop", "tls");
    let pki = test_pki(&dir, "responder");
    let responder = Responder::start(&[
        "--tls",
        "127.0.0.1:0",
        "--cert",
        pki.cert.to_str().expect("utf-8 path"),
        "--key",
        pki.key.to_str().expect("utf-8 path"),
    ]);
    let tls_addr = responder.addr("tls");
    let accept = loopback(free_tcp_port());
    let stunnel = Stunnel::start(&dir, "tls", accept, tls_addr, &pki.ca, INSTALL);

    let run = run_sipp(&dir, "tls", accept, &["-t", "t1"]);
    let log = stunnel.log();
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
    let status = guard.wait_bounded(WAIT);
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
