//! Test helper: SIPp (Debian package `sip-tester`) runs — the scenarios kept in
//! `tests/peers/sipp`, a UDP run against a server port that must end in success, injection
//! files and the counters of a `-trace_stat` CSV.
//!
//! Included with `#[path = "common/sipp.rs"] mod sipp;` next to `common/process.rs`
//! (`mod process`).

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, peers_dir};

/// How long one SIPp run may take before it is interrupted (a failure bound).
pub(crate) const SIPP_BOUND: Duration = Duration::from_secs(30);

/// The path of a SIPp scenario kept with the tests (`tests/peers/sipp/<name>`).
pub(crate) fn scenario(name: &str) -> PathBuf {
    peers_dir().join("sipp").join(name)
}

/// Starts SIPp over UDP against 127.0.0.1:`server_port` in `dir`, with `-trace_err`
/// (bounded by `-m` and by [`finish`]).
pub(crate) fn sipp(dir: &Path, server_port: u16, args: &[&str]) -> ChildGuard {
    let child = Command::new("sipp")
        .args(args)
        .arg(format!("127.0.0.1:{server_port}"))
        .args(["-i", "127.0.0.1", "-nostdin", "-trace_err"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sipp");
    ChildGuard::new(child)
}

/// Waits for SIPp to end (SIGINT after [`SIPP_BOUND`], then SIGKILL) and asserts it
/// succeeded (all its calls did); the failure message holds its `*_errors.log` files.
pub(crate) fn finish(mut guard: ChildGuard, what: &str, dir: &Path) {
    let child = guard.0.as_mut().expect("sipp running");
    let mut deadline = Instant::now() + SIPP_BOUND;
    let mut interrupted = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait sipp") {
            break status;
        }
        if Instant::now() >= deadline {
            if interrupted {
                let _ = child.kill();
                break child.wait().expect("wait sipp");
            }
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            interrupted = true;
            deadline = Instant::now() + Duration::from_secs(3);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    guard.0 = None;
    let errors: String = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with("_errors.log"))
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .collect();
    assert!(
        status.success() && !interrupted,
        "{what}: sipp exit status {status} (interrupted after {SIPP_BOUND:?}: {interrupted}); \
         errors: {errors}"
    );
}

/// `register_auth.xml` in `dir`: `user` registers, with digest, the contact
/// 127.0.0.1:`port` (SIPp's own port) `count` times at 127.0.0.1:`server_port`; SIPp must
/// succeed (see [`finish`]; `what` names the run). The injection file is `<user>.csv`.
pub(crate) fn register(
    dir: &Path,
    server_port: u16,
    (user, password): (&str, &str),
    port: &str,
    count: &str,
    what: &str,
) {
    let inf = injection(
        dir,
        &format!("{user}.csv"),
        &[&format!("{user};127.0.0.1:{port};{}", auth(user, password))],
    );
    let reg = scenario("register_auth.xml");
    let child = sipp(
        dir,
        server_port,
        &[
            "-sf",
            reg.to_str().expect("path"),
            "-inf",
            &inf,
            "-p",
            port,
            "-m",
            count,
        ],
    );
    finish(child, what, dir);
}

/// Writes a SIPp injection file `dir/name` (`SEQUENTIAL`, one line per call); returns its
/// path.
pub(crate) fn injection(dir: &Path, name: &str, lines: &[&str]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("SEQUENTIAL\n{}\n", lines.join("\n"))).expect("write csv");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// The injection field SIPp answers a digest challenge with.
pub(crate) fn auth(user: &str, pw: &str) -> String {
    format!("[authentication username={user} password={pw}]")
}

/// `SuccessfulCall(C)` and `FailedCall(C)` from the last row of a SIPp `-trace_stat` CSV.
pub(crate) fn parse_stats(csv: &str) -> Option<(u64, u64)> {
    let mut rows = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = rows.next()?.split(';').collect();
    let last: Vec<&str> = rows.next_back()?.split(';').collect();
    let field = |name: &str| -> Option<u64> {
        let i = header.iter().position(|h| *h == name)?;
        last.get(i)?.trim().parse().ok()
    };
    Some((field("SuccessfulCall(C)")?, field("FailedCall(C)")?))
}
