//! Linphone's liblime as a test peer: `crates/lime/tests/liblime_peer.c` built with cc
//! against Debian's liblime-dev, driven over its stdin/stdout (see the C file); its
//! key-server posts are answered by a closure (sotto's key server logic in process, or
//! `sotto server` over HTTPS). Shared by the LIME crate's and the binary's tests.

#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

/// The liblime harness, built once per test binary.
pub fn liblime_harness() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            // Each test crate builds its own copy (its own target tmp dir, its own name).
            let out = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("liblime_peer_{}", env!("CARGO_PKG_NAME")));
            let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../lime/tests/liblime_peer.c");
            assert!(
                Path::new("/usr/include/lime/lime_ffi.h").exists(),
                "liblime is not installed: apt-get install -y liblime-dev gcc"
            );
            let ok = Command::new("cc")
                .args(["-O1", "-Wall", "-o"])
                .arg(&out)
                .arg(&src)
                .args(["-llime", "-lbctoolbox"])
                .status()
                .expect("cc")
                .success();
            assert!(ok, "building the liblime harness failed");
            out
        })
        .clone()
}

/// What answers liblime's key-server posts: (device, body) to (HTTP status, body).
pub type PostHandler<'a> = dyn FnMut(&str, &[u8]) -> (u16, Vec<u8>) + 'a;

/// A running liblime whose key-server posts are handed to a closure.
pub struct Liblime {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Liblime {
    pub fn start(db: &Path) -> Liblime {
        let mut child = Command::new(liblime_harness())
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the liblime harness");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut l = Liblime {
            child,
            stdin,
            stdout,
        };
        assert_eq!(l.line(), "READY");
        l
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).expect("harness output");
        assert!(!s.is_empty(), "the liblime harness exited");
        s.trim_end().to_owned()
    }

    /// Runs `cmd`; each post (from, body) goes to `post`, which returns (status, body).
    pub fn run(&mut self, cmd: &str, post: &mut PostHandler<'_>) -> String {
        writeln!(self.stdin, "{cmd}").expect("write");
        loop {
            let l = self.line();
            let Some(rest) = l.strip_prefix("POST ") else {
                return l;
            };
            let (from, hex) = rest.split_once(' ').expect("POST FROM HEX");
            let (status, body) = post(from, &unhex(hex));
            let body = if body.is_empty() {
                "-".to_owned()
            } else {
                sotto_crypto::hex::encode(&body)
            };
            writeln!(self.stdin, "RESP {status} {body}").expect("write");
        }
    }
}

impl Drop for Liblime {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.child.wait();
    }
}

pub fn unhex(s: &str) -> Vec<u8> {
    if s == "-" {
        return Vec::new();
    }
    let mut out = vec![0u8; s.len() / 2];
    assert!(sotto_crypto::hex::decode(s, &mut out), "hex: {s}");
    out
}

pub fn hex_or_dash(b: &[u8]) -> String {
    if b.is_empty() {
        "-".into()
    } else {
        sotto_crypto::hex::encode(b)
    }
}
