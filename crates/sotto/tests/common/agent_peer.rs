//! Test helper for the `sotto agent` interop tests: agent child processes (their `--json`
//! event lines read by a thread), headless `linphonec` instances set up for SRTP keyed by
//! SDES (RFC 4568, `media_encryption=srtp`, mandatory), and checks of what a loopback capture
//! holds.
//!
//! Included next to `common/linphone.rs` and `common/sotto_server.rs` (`#[path]` modules
//! `linphone` and `sotto_server` of the test crate): it reuses their uid claims, tone files,
//! Goertzel reports and tshark capture read-only.
//!
//! linphonec with SDES (facts from the peer bench notes, checked by these tests): it offers
//! `m=audio … RTP/SAVP` with `a=crypto:1 AES_CM_128_HMAC_SHA1_80`, `:2 AES_CM_128_HMAC_SHA1_32`,
//! `:3 AES_256_CM_HMAC_SHA1_80`, `:4 AES_256_CM_HMAC_SHA1_32`; it prints no "encrypted" event
//! line for SDES (only ZRTP gets one); its log says `Negotiated media encryption is
//! LinphoneMediaEncryptionSRTP`.

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::linphone::{self, UidClaim};
use crate::sotto_server::{self, have, is_root};

/// The apt-get line printed when a peer is missing.
pub(crate) const INSTALL_ALL: &str =
    "install with: apt-get install -y linphone-cli tshark sipvicious";

/// Polling step of the waits (failure bounds, never assertions on time).
const POLL: Duration = Duration::from_millis(200);

/// Fails (with the apt-get line) unless every tool in `tools` is installed, and unless the
/// test runs as root (one uid per linphonec, tshark on `lo`).
pub(crate) fn require(tools: &[(&str, &str)]) {
    require_tools(tools);
    assert!(
        is_root(),
        "this test must run as root: each linphonec runs under its own uid (setpriv) and \
         tshark captures on lo (CI runs as root)"
    );
}

/// Fails (with the apt-get line) unless every tool in `tools` is installed.
pub(crate) fn require_tools(tools: &[(&str, &str)]) {
    for (cmd, arg) in tools {
        assert!(have(cmd, arg), "`{cmd}` is not installed: {INSTALL_ALL}");
    }
}

/// The linphonec and tshark tools.
pub(crate) const LINPHONE_TOOLS: [(&str, &str); 4] = [
    ("linphonec", "--version"),
    ("linphonecsh", "--help"),
    ("tshark", "--version"),
    ("setpriv", "--version"),
];

// ---------------------------------------------------------------------------------------
// sotto agent
// ---------------------------------------------------------------------------------------

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
        let out = sotto_server::sotto()
            .args(["--json", "agent", "init", "--dir"])
            .arg(dir)
            .args(["--identity", &format!("sip:{user}@127.0.0.1")])
            .args(["--password", password])
            .args(["--proxy", &format!("sips:{proxy}")])
            .arg("--ca")
            .arg(ca)
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
    fn spawn(name: &str, config: &Path, args: &[&str], dir: &Path) -> AgentProc {
        let stderr = dir.join(format!("{name}.stderr"));
        let err = File::create(&stderr).expect("create agent stderr file");
        let mut child = sotto_server::sotto()
            .args(["--json", "agent", "-c"])
            .arg(config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .expect("spawn sotto agent");
        let stdout = child.stdout.take().expect("agent stdout");
        let (tx, events) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Non-JSON lines are kept as strings, so a failure message shows them.
                let v = serde_json::from_str::<Value>(&line).unwrap_or(Value::String(line));
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        AgentProc {
            name: name.to_owned(),
            child: Some(child),
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

    /// The events named `event` seen so far.
    pub(crate) fn events_named(&self, event: &str) -> Vec<Value> {
        self.seen
            .iter()
            .filter(|v| v["event"] == event)
            .cloned()
            .collect()
    }

    /// Sends SIGINT (what Ctrl-C does).
    pub(crate) fn interrupt(&self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-INT", &pid.to_string()])
                .status();
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

// ---------------------------------------------------------------------------------------
// linphonec with SDES
// ---------------------------------------------------------------------------------------

/// How an SDES linphonec instance is set up.
pub(crate) struct SdesSetup<'a> {
    /// The user (also the digest user name and the directory name).
    pub(crate) user: &'a str,
    /// Register `sip:<user>@127.0.0.1` over TLS at this proxy with this password, checking
    /// the server certificate against `root_ca`; `None`: no account (direct calls only).
    pub(crate) registrar: Option<(SocketAddr, &'a str, &'a Path)>,
    /// A UDP SIP listener on 127.0.0.1 at this port (direct calls); `None`: none.
    pub(crate) udp_port: Option<u16>,
    /// Its RTP port (RTCP is the next one).
    pub(crate) rtp_port: u16,
    /// Answer incoming calls at once (`-a`).
    pub(crate) auto_answer: bool,
}

/// One running headless linphonec with mandatory SRTP keyed by SDES.
pub(crate) struct SdesPhone {
    /// The instance name (the user).
    pub(crate) name: String,
    /// Its directory (config, HOME, logs, recordings).
    pub(crate) dir: PathBuf,
    /// Its RTP port.
    pub(crate) rtp_port: u16,
    claim: UidClaim,
    child: Option<Child>,
}

fn chown_tree(path: &Path, uid: u32) {
    let _ = std::os::unix::fs::chown(path, Some(uid), Some(uid));
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            chown_tree(&e.path(), uid);
        }
    }
}

/// The linphonerc: SIP and RTP on 127.0.0.1, `media_encryption=srtp` mandatory, video off,
/// TLS registration (server certificate and name verified) when there is a registrar.
fn sdes_linphonerc(s: &SdesSetup<'_>) -> String {
    let user = s.user;
    let mut c = String::new();
    let _ = write!(
        c,
        "[sip]\n\
         contact=sip:{user}@127.0.0.1{port}\n\
         sip_port={udp}\n\
         sip_tcp_port=0\n\
         sip_tls_port={tls}\n\
         bind_address=127.0.0.1\n\
         guess_hostname=0\n\
         use_ipv6=0\n\
         media_encryption=srtp\n\
         media_encryption_mandatory=1\n\
         inc_timeout=30\n\
         register_only_when_network_is_up=0\n\
         auto_net_state_mon=0\n\
         ping_with_options=0\n",
        port = s.udp_port.map(|p| format!(":{p}")).unwrap_or_default(),
        udp = s.udp_port.unwrap_or(0),
        tls = if s.registrar.is_some() { "-1" } else { "0" },
    );
    if let Some((_, _, ca)) = s.registrar {
        let _ = write!(
            c,
            "default_proxy=0\n\
             root_ca={}\n\
             verify_server_certs=1\n\
             verify_server_cn=1\n",
            ca.display()
        );
    }
    let _ = write!(
        c,
        "\n[rtp]\n\
         audio_rtp_port={rtp}\n\
         video_rtp_port={video}\n\
         text_rtp_port={text}\n\
         bind_address=127.0.0.1\n\
         \n[sound]\n\
         echocancellation=0\n\
         \n[video]\n\
         enabled=0\n\
         capture=0\n\
         display=0\n\
         automatically_initiate=0\n\
         automatically_accept=0\n\
         \n[net]\n\
         firewall_policy=0\n",
        rtp = s.rtp_port,
        video = s.rtp_port + 10,
        text = s.rtp_port + 20,
    );
    if let Some((proxy, password, _)) = s.registrar {
        let _ = write!(
            c,
            "\n[proxy_0]\n\
             reg_proxy=<sip:{proxy};transport=tls>\n\
             reg_route=<sip:{proxy};transport=tls;lr>\n\
             reg_identity=sip:{user}@127.0.0.1\n\
             reg_expires=600\n\
             reg_sendregister=1\n\
             publish=0\n\
             avpf=0\n\
             \n[auth_info_0]\n\
             username={user}\n\
             passwd={password}\n\
             realm=127.0.0.1\n\
             domain=127.0.0.1\n"
        );
    }
    c
}

/// The linphonerc of a direct-TLS instance: no account, no UDP/TCP listener, a TLS SIP
/// transport on `tls_port` (`-1`: a random port, enough to place calls), server certificates
/// verified against `root_ca` (name included: linphonec matches the dNSName SANs only).
fn direct_tls_linphonerc(user: &str, rtp_port: u16, tls_port: i32, root_ca: &Path) -> String {
    let base = sdes_linphonerc(&SdesSetup {
        user,
        registrar: None,
        udp_port: None,
        rtp_port,
        auto_answer: false,
    });
    base.replacen(
        "sip_tls_port=0\n",
        &format!(
            "sip_tls_port={tls_port}\n\
             root_ca={}\n\
             verify_server_certs=1\n\
             verify_server_cn=1\n",
            root_ca.display()
        ),
        1,
    )
}

/// A test CA and a certificate for 127.0.0.1 issued by it (SANs: IP 127.0.0.1 for rustls,
/// DNS "127.0.0.1" for linphonec, which matches dNSName only), as world-readable PEM files.
pub(crate) struct DirectPki {
    /// The CA certificate.
    pub(crate) ca: PathBuf,
    /// The end-entity certificate (server and client auth).
    pub(crate) cert: PathBuf,
    /// Its private key.
    pub(crate) key: PathBuf,
}

/// Writes a fresh [`DirectPki`] into `dir`.
pub(crate) fn direct_pki(dir: &Path) -> DirectPki {
    std::fs::create_dir_all(dir).expect("mkdir pki");
    let ca_key = rcgen::KeyPair::generate().expect("CA key");
    let mut ca = rcgen::CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "sotto direct-call test CA");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().expect("leaf key");
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "127.0.0.1");
    leaf.subject_alt_names = vec![
        rcgen::SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
        rcgen::SanType::DnsName(rcgen::string::Ia5String::try_from("127.0.0.1").expect("ia5")),
    ];
    leaf.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    leaf.use_authority_key_identifier_extension = true;
    let cert = leaf.signed_by(&key, &issuer).expect("sign leaf");
    let pki = DirectPki {
        ca: dir.join("direct-ca.pem"),
        cert: dir.join("direct-cert.pem"),
        key: dir.join("direct-key.pem"),
    };
    std::fs::write(&pki.ca, ca_cert.pem()).expect("write CA");
    std::fs::write(&pki.cert, cert.pem()).expect("write cert");
    std::fs::write(&pki.key, key.serialize_pem()).expect("write key");
    linphone::open_up(dir);
    for f in [&pki.ca, &pki.cert] {
        linphone::open_up(f);
    }
    pki
}

/// Concatenates PEM files into `out` (a CA bundle).
pub(crate) fn pem_bundle(out: &Path, parts: &[&Path]) -> PathBuf {
    let mut pem = String::new();
    for p in parts {
        pem.push_str(&std::fs::read_to_string(p).expect("read PEM"));
    }
    std::fs::write(out, pem).expect("write PEM bundle");
    out.to_path_buf()
}

impl SdesPhone {
    /// Writes the config under `base/<user>` and starts `linphonec --pipe` under its own uid,
    /// waits for its control socket and switches it to file audio.
    pub(crate) fn start(base: &Path, setup: &SdesSetup<'_>) -> SdesPhone {
        Self::start_with(
            base,
            setup.user,
            setup.rtp_port,
            setup.auto_answer,
            &sdes_linphonerc(setup),
        )
    }

    /// A linphonec for direct calls over TLS (no account; see `direct_tls_linphonerc`),
    /// with mandatory SRTP keyed by SDES.
    pub(crate) fn start_direct_tls(
        base: &Path,
        user: &str,
        rtp_port: u16,
        tls_port: i32,
        root_ca: &Path,
        auto_answer: bool,
    ) -> SdesPhone {
        let rc = direct_tls_linphonerc(user, rtp_port, tls_port, root_ca);
        Self::start_with(base, user, rtp_port, auto_answer, &rc)
    }

    fn start_with(
        base: &Path,
        user: &str,
        rtp_port: u16,
        auto_answer: bool,
        linphonerc: &str,
    ) -> SdesPhone {
        let setup = SdesSetup {
            user,
            registrar: None,
            udp_port: None,
            rtp_port,
            auto_answer,
        };
        let claim = UidClaim::claim();
        let dir = base.join(setup.user);
        std::fs::create_dir_all(dir.join("home/.local/share/linphone")).expect("mkdir home");
        std::fs::create_dir_all(dir.join("rec")).expect("mkdir rec");
        std::fs::write(dir.join("linphonerc"), linphonerc).expect("write linphonerc");
        chown_tree(&dir, claim.uid);
        linphone::open_up(&dir);
        let out = File::create(dir.join("stdout.log")).expect("create stdout.log");
        let err = out.try_clone().expect("clone stdout.log");
        let uid = claim.uid.to_string();
        let mut cmd = Command::new("setpriv");
        cmd.args([
            format!("--reuid={uid}"),
            format!("--regid={uid}"),
            "--clear-groups".to_owned(),
        ])
        .arg("env")
        .arg("-i")
        .arg(format!("HOME={}", dir.join("home").display()))
        .args([
            "PATH=/usr/bin:/bin",
            "LANG=C.UTF-8",
            "linphonec",
            "--pipe",
            "-c",
        ])
        .arg(dir.join("linphonerc"))
        .args(["-d", "6", "-l"])
        .arg(dir.join("liblinphone.log"));
        if setup.auto_answer {
            cmd.arg("-a");
        }
        let child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn setpriv linphonec");
        let mut lp = SdesPhone {
            name: setup.user.to_owned(),
            dir,
            rtp_port: setup.rtp_port,
            claim,
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(c) = lp.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!(
                    "linphonec {} exited at start ({status}): {}",
                    lp.name,
                    lp.stdout()
                );
            }
            if lp.sh(&["generic", "help"]).0 == Some(0) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "linphonec {} did not open its control socket: {}",
                lp.name,
                lp.stdout()
            );
            std::thread::sleep(POLL);
        }
        lp.cmd("soundcard use files");
        lp
    }

    /// `linphonecsh <args>` as the instance's uid, bounded by `timeout 5`.
    fn sh(&self, args: &[&str]) -> (Option<i32>, String) {
        let uid = self.claim.uid.to_string();
        let out = Command::new("timeout")
            .args(["5", "setpriv"])
            .args([format!("--reuid={uid}"), format!("--regid={uid}")])
            .arg("--clear-groups")
            .arg("linphonecsh")
            .args(args)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) => (
                o.status.code(),
                String::from_utf8_lossy(&o.stdout).into_owned(),
            ),
            Err(_) => (None, String::new()),
        }
    }

    /// Sends a linphonec command and returns its answer.
    pub(crate) fn cmd(&self, command: &str) -> String {
        let (code, out) = self.sh(&["generic", command]);
        assert!(
            code == Some(0),
            "linphonec {}: command {command:?} failed: {out}",
            self.name
        );
        out
    }

    /// Waits until `linphonecsh status register` says `registered`.
    pub(crate) fn wait_registered(&self, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let s = self.sh(&["status", "register"]).1;
            if s.trim_start().starts_with("registered,") {
                return s.trim().to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "linphonec {} did not register: last status {s:?}; stdout: {}",
                self.name,
                self.stdout()
            );
            std::thread::sleep(POLL);
        }
    }

    /// What linphonec printed so far.
    pub(crate) fn stdout(&self) -> String {
        std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default()
    }

    /// Its debug log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("liblinphone.log")).unwrap_or_default()
    }

    /// Waits until the stdout holds a line containing every one of `parts`; returns it.
    pub(crate) fn wait_line(&self, parts: &[&str], bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let out = self.stdout();
            if let Some(l) = out.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "linphonec {}: no line with {parts:?}; stdout:\n{out}",
                self.name
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the stdout holds a line containing every one of `parts` of any of
    /// `alternatives`; returns it.
    pub(crate) fn wait_any_line(&self, alternatives: &[&[&str]], bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let out = self.stdout();
            for parts in alternatives {
                if let Some(l) = out.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                    return l.to_owned();
                }
            }
            assert!(
                Instant::now() < deadline,
                "linphonec {}: no line with any of {alternatives:?}; stdout:\n{out}",
                self.name
            );
            std::thread::sleep(POLL);
        }
    }

    /// A path in the instance's directory.
    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Stops the instance: `exit`, a poke at its socket if it hangs, then SIGKILL.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let exited = |c: &mut Child, bound: Duration| {
            let deadline = Instant::now() + bound;
            loop {
                if matches!(c.try_wait(), Ok(Some(_))) {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        };
        let _ = self.sh(&["exit"]);
        if exited(&mut child, Duration::from_secs(2)) {
            return;
        }
        let _ = self.sh(&["generic", "help"]);
        if exited(&mut child, Duration::from_secs(3)) {
            return;
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for SdesPhone {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------

/// Asserts that the recording at `path` holds a tone of `freq_hz` (Goertzel over half-second
/// windows: at least 4 windows, median power fraction above one half, dominant in at least
/// half of them). `who` names the recording in messages.
pub(crate) fn assert_tone(who: &str, path: &Path, freq_hz: f64) {
    let (report, info) = linphone::tone_report(path, freq_hz);
    eprintln!(
        "{who}: tone {freq_hz} Hz in {info}: median fraction {:.2}, dominant in {}/{} windows",
        report.median_fraction, report.dominant_windows, report.windows
    );
    assert!(
        report.windows >= 4
            && report.median_fraction > 0.5
            && report.dominant_windows * 2 >= report.windows,
        "{who}: tone {freq_hz} Hz not found in {info}: {report:?}"
    );
}

/// How many times `needle` occurs in `hay`.
pub(crate) fn occurrences(hay: &[u8], needle: &[u8]) -> usize {
    if needle.is_empty() {
        return 0;
    }
    hay.windows(needle.len()).filter(|w| *w == needle).count()
}

/// The hex form of a byte string (as tshark prints `tcp.payload` and `rtp.payload`).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}
