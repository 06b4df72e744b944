//! Interop with a real peer over TLS: SIPp (Debian package `sip-tester`, built without TLS)
//! behind stunnel clients (`stunnel4`) against `sotto server`'s TLS listener on 127.0.0.1.
//! Each stunnel verifies the server's certificate against the CA written by `sotto init`.
//!
//! 1. Several users REGISTER with digest (SIPp's `[authentication]`): 401, then 200 each.
//! 2. A SIPp UAS (bob) registers over its own stunnel, and a SIPp UAC (alice) calls bob
//!    through the server over another: INVITE, 407 + digest, 100, 180, 200, ACK and BYE along
//!    the Record-Route, 200. Nothing can connect to the UAS (stunnel only connects outwards,
//!    and SIPp's own port speaks plain TCP, which is also what its Contacts name), so the
//!    server must send every INVITE down the connection bob registered on, and the ACK and BYE
//!    down that same connection by the flow token in its Record-Route (RFC 5626 §5.3). Every
//!    call completing on both sides is that proof.
//!
//! SIPp's digest only knows MD5 and answers the first challenge it gets, so these servers
//! list MD5 first; `-auth_uri` gives SIPp the digest URI (by default it would use stunnel's
//! address). SIPp is spawned directly (no `timeout` wrapper): each run is bounded by `-m`,
//! waited for with a deadline, and interrupted, then killed, if it runs over; every child
//! (server, stunnels, SIPp) is killed and reaped on every path by guards.

#[path = "common/process.rs"]
mod process;
#[path = "common/sipp.rs"]
mod sipp;
#[path = "common/sotto_server.rs"]
mod sotto_server;
#[path = "common/stunnel.rs"]
mod stunnel;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use process::{ChildGuard, free_tcp_port, loopback, require_tools, scratch};
use serde_json::Value;
use sipp::{auth, injection, parse_stats, scenario};
use sotto_server::{DataDir, Server, addrs, is_request, set};
use stunnel::Stunnel;

const INSTALL: &str = "install with: apt-get install -y sip-tester stunnel4";
/// Calls of the call test.
const CALLS: u64 = 5;
/// Failure bound of one SIPp run.
const SIPP_BOUND: Duration = Duration::from_secs(60);

/// The tools this test drives.
const TOOLS: [(&str, &str); 2] = [("sipp", "-v"), ("stunnel", "-version")];

/// `sotto init` with `users`, a TLS listener on a port of its choosing (no TCP, UDP or
/// metrics listener), MD5 offered first; then `sotto server`.
fn start_server(dir: &Path, name: &str, users: &[(&str, &str)]) -> (DataDir, Server) {
    let data = DataDir::init(&dir.join("data"), users);
    data.edit_config(|t| {
        set(t, "listen", "tls", addrs(&["127.0.0.1:0"]));
        set(t, "listen", "tcp", addrs(&[]));
        set(t, "listen", "udp", addrs(&[]));
        set(t, "metrics", "enabled", toml::Value::Boolean(false));
        set(
            t,
            "modules.authentication",
            "algorithms",
            addrs(&["MD5", "SHA-256"]),
        );
    });
    let server = Server::start(name, &data.config(), 1);
    (data, server)
}

/// One SIPp process (`-t t1` to its stunnel), spawned directly; killed and reaped on drop.
struct Sipp {
    guard: ChildGuard,
    name: String,
    dir: PathBuf,
    stat: PathBuf,
}

/// How a SIPp run ended: exit status and its `-trace_stat` counters.
#[derive(Debug)]
struct SippRun {
    status: ExitStatus,
    successful: u64,
    failed: u64,
}

impl Sipp {
    /// `sipp <target> -t t1 -sf <scenario> <args>` in `dir`, from 127.0.0.1:`local_port`.
    fn start(dir: &Path, name: &str, target: SocketAddr, xml: &Path, args: &[&str]) -> Sipp {
        let stat = dir.join(format!("{name}-stat.csv"));
        let errors = dir.join(format!("{name}-errors.log"));
        let messages = dir.join(format!("{name}-messages.log"));
        let local_port = free_tcp_port().to_string();
        let child = Command::new("sipp")
            .arg(target.to_string())
            .args(["-t", "t1", "-sf"])
            .arg(xml)
            .args(args)
            .args(["-i", "127.0.0.1", "-p", &local_port, "-nostdin"])
            .args(["-trace_stat", "-fd", "1", "-stf"])
            .arg(&stat)
            .args(["-trace_err", "-error_file"])
            .arg(&errors)
            .args(["-trace_msg", "-message_file"])
            .arg(&messages)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn sipp ({e}): {INSTALL}"));
        Sipp {
            guard: ChildGuard(Some(child)),
            name: name.to_owned(),
            dir: dir.to_path_buf(),
            stat,
        }
    }

    /// Its error log and the end of its message trace, for failure messages.
    fn diagnostics(&self) -> String {
        diagnostics(&self.dir, &self.name)
    }

    /// Waits (bounded by [`SIPP_BOUND`]) for SIPp to exit, and reads its statistics.
    /// Over the bound it is interrupted (so that it writes its statistics), then killed,
    /// and the test fails.
    fn finish(mut self) -> SippRun {
        let deadline = Instant::now() + SIPP_BOUND;
        let status = loop {
            let child = self.guard.0.as_mut().expect("sipp running");
            if let Some(status) = child.try_wait().expect("try_wait sipp") {
                self.guard.0 = None;
                break status;
            }
            if Instant::now() >= deadline {
                let _ = Command::new("kill")
                    .args(["-INT", &child.id().to_string()])
                    .status();
                std::thread::sleep(Duration::from_secs(2));
                drop(std::mem::replace(&mut self.guard, ChildGuard(None)));
                panic!(
                    "sipp {} still running after {SIPP_BOUND:?}\n{}",
                    self.name,
                    self.diagnostics()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let csv = std::fs::read_to_string(&self.stat).unwrap_or_else(|e| {
            panic!(
                "sipp {} ({status}) wrote no statistics ({e})\n{}",
                self.name,
                self.diagnostics()
            )
        });
        let (successful, failed) = parse_stats(&csv).unwrap_or_else(|| {
            panic!(
                "sipp {}: unreadable statistics:\n{csv}\n{}",
                self.name,
                self.diagnostics()
            )
        });
        SippRun {
            status,
            successful,
            failed,
        }
    }

    /// [`Sipp::finish`], asserting exit status 0 and `expected` successful calls, none failed.
    fn expect_success(self, expected: u64) {
        let (dir, name) = (self.dir.clone(), self.name.clone());
        let run = self.finish();
        assert!(
            run.status.success() && (run.successful, run.failed) == (expected, 0),
            "sipp {name}: {run:?}, expected {expected} successful calls and none failed\n{}",
            diagnostics(&dir, &name)
        );
    }
}

/// The error log and the end of the message trace of SIPp run `name`, for failure messages.
fn diagnostics(dir: &Path, name: &str) -> String {
    let read = |suffix: &str| {
        std::fs::read_to_string(dir.join(format!("{name}-{suffix}"))).unwrap_or_default()
    };
    let messages = read("messages.log");
    let start = messages
        .char_indices()
        .rev()
        .nth(6000)
        .map_or(0, |(i, _)| i);
    format!(
        "--- sipp {name} errors ---\n{}\n--- sipp {name} messages (end) ---\n{}",
        read("errors.log"),
        messages.get(start..).unwrap_or_default()
    )
}

fn over_tls(v: &Value) -> bool {
    v["transport"] == "tls"
}

#[test]
fn sipp_registers_with_digest_over_tls() {
    require_tools(&TOOLS, INSTALL);
    let users = [
        ("alice", "alicepw"),
        ("bob", "bobpw"),
        ("carol", "carolpw"),
        ("dave", "davepw"),
    ];
    let dir = scratch("sipp-tls", "register");
    let (data, mut server) = start_server(&dir, "sipp-tls-register", &users);
    let accept = loopback(free_tcp_port());
    let stunnel = Stunnel::start(
        &dir,
        "register",
        accept,
        server.addr("tls"),
        &data.ca(),
        INSTALL,
    );

    let lines: Vec<String> = users
        .iter()
        .enumerate()
        .map(|(i, (u, pw))| format!("{u};127.0.0.1:{};{}", 7000 + i, auth(u, pw)))
        .collect();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let inf = injection(&dir, "users.csv", &lines);
    let n = users.len();
    let m = n.to_string();
    let sipp = Sipp::start(
        &dir,
        "register",
        accept,
        &scenario("tls_register_auth.xml"),
        &["-inf", &inf, "-m", &m, "-r", "10", "-auth_uri", "127.0.0.1"],
    );
    sipp.expect_success(n as u64);

    server.wait_for(n, "REGISTER 401 over TLS", |v| {
        is_request(v, "REGISTER", "replied")
            && v["status"] == 401
            && v["module"] == "authentication"
            && over_tls(v)
    });
    server.wait_for(n, "REGISTER 200 over TLS", |v| {
        is_request(v, "REGISTER", "replied")
            && v["status"] == 200
            && v["module"] == "registrar"
            && over_tls(v)
    });
    server.drain();
    assert!(
        !server.seen.iter().any(|v| v["auth_failure"] == true),
        "no authentication failure expected: {:#?}",
        server.seen
    );
    assert_eq!(
        server.count(|v| v["event"] == "request" && !over_tls(v)),
        0,
        "every request came over TLS: {:#?}",
        server.seen
    );
    let log = stunnel.log();
    assert!(
        log.contains("Certificate accepted at depth=0"),
        "stunnel verified the server certificate against the init CA:\n{log}"
    );
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sipp_calls_over_tls_reach_a_callee_through_its_registration_flow() {
    require_tools(&TOOLS, INSTALL);
    let dir = scratch("sipp-tls", "call");
    let (data, mut server) = start_server(
        &dir,
        "sipp-tls-call",
        &[("alice", "alicepw"), ("bob", "bobpw")],
    );
    let tls = server.addr("tls");
    let uas_accept = loopback(free_tcp_port());
    let uac_accept = loopback(free_tcp_port());
    let uas_tunnel = Stunnel::start(&dir, "uas", uas_accept, tls, &data.ca(), INSTALL);
    let uac_tunnel = Stunnel::start(&dir, "uac", uac_accept, tls, &data.ca(), INSTALL);

    // bob: registers (its Contact names a port nothing listens on for TLS), then answers
    // CALLS calls with the out-of-call scenario, then exits.
    let calls = CALLS.to_string();
    let inf = injection(
        &dir,
        "bob.csv",
        &[&format!(
            "bob;127.0.0.1:{};{}",
            free_tcp_port(),
            auth("bob", "bobpw")
        )],
    );
    let ooc = scenario("tls_uas_ooc.xml");
    let ooc = ooc.to_str().expect("UTF-8 path");
    let uas = Sipp::start(
        &dir,
        "uas",
        uas_accept,
        &scenario("tls_uas_register.xml"),
        &[
            "-oocsf",
            ooc,
            "-inf",
            &inf,
            "-set",
            "calls",
            &calls,
            "-m",
            "1",
            "-auth_uri",
            "127.0.0.1",
        ],
    );
    server.wait_for(1, "bob's REGISTER 200 over TLS", |v| {
        is_request(v, "REGISTER", "replied") && v["status"] == 200 && over_tls(v)
    });
    let flow = server
        .seen
        .iter()
        .find(|v| is_request(v, "REGISTER", "replied") && v["status"] == 200)
        .and_then(|v| v["source"].as_str())
        .expect("REGISTER event with a source")
        .to_owned();
    // bob's registration came through bob's stunnel (its log names the connection's source
    // address as the server saw it; written before the REGISTER could be sent).
    assert!(
        uas_tunnel.outgoing().contains(&flow),
        "flow {flow}; bob's stunnel log:\n{}",
        uas_tunnel.log()
    );
    let inf = injection(
        &dir,
        "alice.csv",
        &[&format!("alice;{}", auth("alice", "alicepw"))],
    );
    let uac = Sipp::start(
        &dir,
        "uac",
        uac_accept,
        &scenario("tls_uac_call.xml"),
        &[
            "-inf",
            &inf,
            "-s",
            "bob",
            "-m",
            &calls,
            "-r",
            "5",
            "-auth_uri",
            "bob@127.0.0.1",
        ],
    );
    uac.expect_success(CALLS);
    // The UAS's one call (its registration) ends once it has answered every call.
    uas.expect_success(1);

    let n = CALLS as usize;
    server.wait_for(n, "INVITE 407 over TLS", |v| {
        is_request(v, "INVITE", "replied") && v["status"] == 407 && over_tls(v)
    });
    for method in ["INVITE", "ACK", "BYE"] {
        server.wait_for(n, &format!("{method} forwarded over TLS"), |v| {
            is_request(v, method, "forwarded") && over_tls(v)
        });
    }
    server.drain();
    assert!(
        !server.seen.iter().any(|v| v["auth_failure"] == true),
        "no authentication failure expected: {:#?}",
        server.seen
    );
    assert_eq!(
        server.count(
            |v| v["event"] == "request" && v["outcome"] == "replied" && {
                let s = v["status"].as_u64().unwrap_or(0);
                s >= 300 && s != 401 && s != 407
            }
        ),
        0,
        "no request refused: {:#?}",
        server.seen
    );
    // bob's SIPp had one connection (-t t1), to its stunnel, which accepts nothing from the
    // server's side: the CALLS INVITEs bob answered came down the registration's connection.
    for t in [&uas_tunnel, &uac_tunnel] {
        let log = t.log();
        assert!(
            log.contains("Certificate accepted at depth=0"),
            "stunnel verified the server certificate against the init CA:\n{log}"
        );
    }
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
}
