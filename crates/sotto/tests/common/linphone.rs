//! Test helper: headless `linphonec` instances (Debian package `linphone-cli`), registered
//! over TLS with ZRTP, or with SRTP keyed by SDES (RFC 4568, `media_encryption=srtp`,
//! mandatory) for calls through a proxy or direct ones.
//!
//! Included with `#[path = "common/linphone.rs"] mod linphone;` next to `common/process.rs`
//! (`mod process`) and `common/pki.rs` (`mod pki`).
//!
//! How linphonec is run without a sound card and side by side (facts from the project's peer
//! bench notes, checked here):
//! - linphonecsh reaches its daemon through the unix socket `/tmp/linphonec-<uid>`; the name
//!   depends on the uid only, so every instance runs under its own numeric uid (`setpriv`,
//!   no passwd entry needed) and its own HOME (ZRTP ZID cache, databases). Uids are claimed
//!   with a lock file ([`UidClaim`]) from 21000 up, so concurrent test runs do not collide.
//! - `linphonec --pipe` keeps the PID (the child we spawn is linphonec itself: setpriv and
//!   env exec) and writes its event lines (`Call 1 is fully encrypted and auth token is
//!   XXXX.`) to stdout, which goes to a file the test polls.
//! - `soundcard use files` must be sent after each start; then `play <wav>` is the
//!   microphone and `record <wav>` writes what is heard (48 kHz with Opus).
//! - after `quit` the pipe thread may stay blocked in `accept()`: [`Linphonec`]'s drop sends
//!   `exit`, then one more connection to the socket, then SIGKILL, each bounded in time.

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::pki::{TestPki, test_pki};
use crate::process::{is_root, require_tools};

/// The apt-get line printed when a peer is missing.
pub(crate) const INSTALL: &str = "install with: apt-get install -y linphone-cli tshark";

/// Polling step of the waits (the waits are failure bounds, never assertions on time).
const POLL: Duration = Duration::from_millis(200);

/// The first uid tried for a linphonec instance.
const UID_BASE: u32 = 21000;
/// How many uids are tried.
const UID_COUNT: u32 = 200;

/// A uid reserved for one linphonec instance, released on drop.
pub(crate) struct UidClaim {
    /// The uid (and gid) the instance runs as.
    pub(crate) uid: u32,
    lock: PathBuf,
}

impl UidClaim {
    /// Claims the first free uid from 21000: a lock file `/tmp/sotto-linphonec-<uid>.lock`
    /// created exclusively (a lock whose owner process is gone is taken over) and no live
    /// linphonec socket `/tmp/linphonec-<uid>`.
    pub(crate) fn claim() -> UidClaim {
        for uid in UID_BASE..UID_BASE + UID_COUNT {
            let lock = PathBuf::from(format!("/tmp/sotto-linphonec-{uid}.lock"));
            if let Ok(owner) = std::fs::read_to_string(&lock) {
                let alive = owner
                    .trim()
                    .parse::<u32>()
                    .map(|pid| Path::new(&format!("/proc/{pid}")).exists())
                    .unwrap_or(false);
                if alive {
                    continue;
                }
                let _ = std::fs::remove_file(&lock);
            }
            let Ok(mut f) = OpenOptions::new().write(true).create_new(true).open(&lock) else {
                continue;
            };
            let _ = write!(f, "{}", std::process::id());
            let socket = PathBuf::from(format!("/tmp/linphonec-{uid}"));
            if socket.exists() && std::os::unix::net::UnixStream::connect(&socket).is_ok() {
                // A linphonec of this uid is running (not ours): leave it alone.
                continue;
            }
            let _ = std::fs::remove_file(&socket);
            return UidClaim { uid, lock };
        }
        panic!("no free uid in {UID_BASE}..{}", UID_BASE + UID_COUNT);
    }
}

impl Drop for UidClaim {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(format!("/tmp/linphonec-{}", self.uid));
        let _ = std::fs::remove_file(&self.lock);
    }
}

/// Two consecutive free UDP ports `p, p + 1` on 127.0.0.1 (RTP and RTCP), with `p` even.
pub(crate) fn free_rtp_port() -> u16 {
    for _ in 0..200 {
        let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(addr) = s.local_addr() else { continue };
        let p = addr.port() & !1;
        if !(1024..=65000).contains(&p) {
            continue;
        }
        drop(s);
        let ok = (0..2).all(|i| UdpSocket::bind(("127.0.0.1", p + i)).is_ok());
        if ok {
            return p;
        }
    }
    panic!("no two consecutive free UDP ports");
}

/// Makes `path` and every ancestor up to `/` searchable by everyone (mode `o+x`), and `path`
/// itself readable: linphonec runs under another uid and must reach its files.
pub(crate) fn open_up(path: &Path) {
    let mut p = Some(path);
    while let Some(dir) = p {
        if dir.as_os_str().is_empty() || dir == Path::new("/") {
            break;
        }
        if let Ok(meta) = std::fs::metadata(dir) {
            let mode = meta.permissions().mode();
            if mode & 0o005 != 0o005 {
                let _ =
                    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode | 0o005));
            }
        }
        p = dir.parent();
    }
}

/// Changes the owner of `path` and everything below it.
fn chown_tree(path: &Path, uid: u32) {
    let _ = std::os::unix::fs::chown(path, Some(uid), Some(uid));
    if let Ok(entries) = std::fs::read_dir(path) {
        for e in entries.flatten() {
            chown_tree(&e.path(), uid);
        }
    }
}

/// The SIP account of an instance: registers `sip:<user>@<domain>` at `proxy` over TLS,
/// verifying the server certificate against `root_ca`.
pub(crate) struct Account<'a> {
    /// The user name (also the digest user name).
    pub(crate) user: &'a str,
    /// The digest password.
    pub(crate) password: &'a str,
    /// The server's TLS listener.
    pub(crate) proxy: SocketAddr,
    /// The CA the server certificate is checked against.
    pub(crate) root_ca: &'a Path,
    /// The SIP domain (also the digest realm), e.g. `example.test` or `127.0.0.1`.
    pub(crate) domain: &'a str,
}

/// One running headless linphonec.
pub(crate) struct Linphonec {
    /// Instance name (the user).
    pub(crate) name: String,
    /// The instance's directory (config, HOME, logs, recordings).
    pub(crate) dir: PathBuf,
    /// Its RTP port (RTCP is the next one).
    pub(crate) rtp_port: u16,
    claim: UidClaim,
    child: Option<Child>,
}

impl Linphonec {
    /// An instance registered over TLS with mandatory ZRTP (see `linphonerc`): audio RTP on
    /// `rtp_port`, RTCP on the next; see [`Linphonec::start_with`].
    pub(crate) fn start(
        base: &Path,
        account: &Account<'_>,
        rtp_port: u16,
        auto_answer: bool,
    ) -> Linphonec {
        let rc = linphonerc(account, rtp_port);
        Self::start_with(base, account.user, rtp_port, auto_answer, &rc)
    }

    /// Writes `linphonerc` under `base/<user>` and starts `linphonec --pipe` (with `-a`,
    /// auto-answer, when `auto_answer`) under its own uid, then waits for its control socket
    /// and switches it to file audio (`soundcard use files`).
    pub(crate) fn start_with(
        base: &Path,
        user: &str,
        rtp_port: u16,
        auto_answer: bool,
        linphonerc: &str,
    ) -> Linphonec {
        let claim = UidClaim::claim();
        let dir = base.join(user);
        std::fs::create_dir_all(dir.join("home/.local/share/linphone")).expect("mkdir home");
        std::fs::create_dir_all(dir.join("rec")).expect("mkdir rec");
        std::fs::write(dir.join("linphonerc"), linphonerc).expect("write linphonerc");
        chown_tree(&dir, claim.uid);
        open_up(&dir);
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
        if auto_answer {
            cmd.arg("-a");
        }
        let child = cmd
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn setpriv linphonec");
        let mut lp = Linphonec {
            name: user.to_owned(),
            dir,
            rtp_port,
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
            if lp.cmd_status("help").0 {
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

    /// `linphonecsh <args>` as the instance's uid, bounded by `timeout 5`: (exit status
    /// success, stdout).
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

    fn cmd_status(&self, command: &str) -> (bool, String) {
        let (code, out) = self.sh(&["generic", command]);
        (code == Some(0), out)
    }

    /// Sends a linphonec command (`linphonecsh generic`) and returns its answer.
    pub(crate) fn cmd(&self, command: &str) -> String {
        let (ok, out) = self.cmd_status(command);
        assert!(
            ok,
            "linphonec {}: command {command:?} failed: {out}",
            self.name
        );
        out
    }

    /// `linphonecsh status register`: e.g. `registered, identity=sip:alice@127.0.0.1 ...`.
    pub(crate) fn register_status(&self) -> String {
        self.sh(&["status", "register"]).1
    }

    /// Waits until `linphonecsh status register` says `registered`; returns that line.
    pub(crate) fn wait_registered(&self, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let s = self.register_status();
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

    /// Polls the stdout (at most `bound`) until `find` picks a line from it; `what` names
    /// the line in the failure message.
    fn wait_stdout(
        &self,
        what: &str,
        bound: Duration,
        find: impl Fn(&str) -> Option<String>,
    ) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let out = self.stdout();
            if let Some(l) = find(&out) {
                return l;
            }
            assert!(
                Instant::now() < deadline,
                "linphonec {}: no {what}; stdout:\n{out}",
                self.name
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits until the stdout holds a line containing every one of `parts` of any of
    /// `alternatives`; returns it.
    pub(crate) fn wait_any_line(&self, alternatives: &[&[&str]], bound: Duration) -> String {
        let what = format!("line with any of {alternatives:?}");
        self.wait_stdout(&what, bound, |out| {
            alternatives.iter().find_map(|parts| {
                out.lines()
                    .find(|l| parts.iter().all(|p| l.contains(p)))
                    .map(str::to_owned)
            })
        })
    }

    /// Waits until the stdout holds `n` lines (1-based count) that contain every one of
    /// `parts`; returns the `n`-th.
    pub(crate) fn wait_line(&self, parts: &[&str], n: usize, bound: Duration) -> String {
        let what = format!("line #{n} with {parts:?}");
        self.wait_stdout(&what, bound, |out| {
            out.lines()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .nth(n.saturating_sub(1))
                .map(str::to_owned)
        })
    }

    /// The ZRTP short authentication string of the `n`-th encrypted call, from `Call N is
    /// fully encrypted and auth token is XXXX.` (waits for it).
    pub(crate) fn wait_sas(&self, n: usize, bound: Duration) -> String {
        let line = self.wait_line(&["is fully encrypted and auth token is"], n, bound);
        sas_of(&line).unwrap_or_else(|| panic!("no SAS in {line:?}"))
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

impl Drop for Linphonec {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The SAS of an event line `Call N is fully encrypted and auth token is XXXX.`.
pub(crate) fn sas_of(line: &str) -> Option<String> {
    let rest = line.split("auth token is ").nth(1)?;
    let sas = rest.trim().trim_end_matches('.');
    (!sas.is_empty() && sas.chars().all(|c| c.is_ascii_alphanumeric())).then(|| sas.to_owned())
}

/// The `[sip]` section: SIP bound to 127.0.0.1 with the given Contact port suffix and
/// listeners (`0`: none, `-1`: a random port), `encryption` mandatory, no network-state
/// tricks.
fn sip_section(user: &str, contact_port: &str, udp: &str, tls: &str, encryption: &str) -> String {
    format!(
        "[sip]\n\
         contact=sip:{user}@127.0.0.1{contact_port}\n\
         sip_port={udp}\n\
         sip_tcp_port=0\n\
         sip_tls_port={tls}\n\
         bind_address=127.0.0.1\n\
         guess_hostname=0\n\
         use_ipv6=0\n\
         media_encryption={encryption}\n\
         media_encryption_mandatory=1\n\
         inc_timeout=30\n\
         register_only_when_network_is_up=0\n\
         auto_net_state_mon=0\n\
         ping_with_options=0\n"
    )
}

/// The `[sip]` lines of an account's proxy: the server certificate (and name) verified
/// against `root_ca`.
fn verify_lines(root_ca: &Path) -> String {
    format!(
        "default_proxy=0\n\
         root_ca={}\n\
         verify_server_certs=1\n\
         verify_server_cn=1\n",
        root_ca.display()
    )
}

/// The `[rtp]`, `[sound]`, `[video]` and `[net]` sections: audio RTP on 127.0.0.1 at
/// `rtp_port` (RTCP on the next), no echo canceller, video off.
fn media_sections(rtp_port: u16) -> String {
    format!(
        "\n[rtp]\n\
         audio_rtp_port={rtp_port}\n\
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
        video = rtp_port + 10,
        text = rtp_port + 20,
    )
}

/// The `[proxy_0]` and `[auth_info_0]` sections, as Linphone's own account settings write
/// them: `sip:<user>@<domain>` registered over TLS at `proxy` (also the outbound route,
/// `reg_route`) with digest `password`.
fn account_sections(proxy: SocketAddr, user: &str, password: &str, domain: &str) -> String {
    format!(
        "\n[proxy_0]\n\
         reg_proxy=<sip:{proxy};transport=tls>\n\
         reg_route=<sip:{proxy};transport=tls;lr>\n\
         reg_identity=sip:{user}@{domain}\n\
         reg_expires=600\n\
         reg_sendregister=1\n\
         publish=0\n\
         avpf=0\n\
         \n[auth_info_0]\n\
         username={user}\n\
         passwd={password}\n\
         realm={domain}\n\
         domain={domain}\n"
    )
}

/// The linphonerc of an instance: TLS only (no UDP/TCP SIP listener), ZRTP mandatory,
/// server certificate verified, SIP and RTP bound to 127.0.0.1, video off.
fn linphonerc(a: &Account<'_>, rtp_port: u16) -> String {
    sip_section(a.user, "", "0", "-1", "zrtp")
        + &verify_lines(a.root_ca)
        + &media_sections(rtp_port)
        + &account_sections(a.proxy, a.user, a.password, a.domain)
}

// ---------------------------------------------------------------------------------------
// linphonec with SRTP keyed by SDES
// ---------------------------------------------------------------------------------------
//
// linphonec with SDES (facts from the peer bench notes, checked by the agent tests): it
// offers `m=audio … RTP/SAVP` with `a=crypto:1 AES_CM_128_HMAC_SHA1_80`,
// `:2 AES_CM_128_HMAC_SHA1_32`, `:3 AES_256_CM_HMAC_SHA1_80`, `:4 AES_256_CM_HMAC_SHA1_32`; it
// prints no "encrypted" event line for SDES (only ZRTP gets one); its log says `Negotiated
// media encryption is LinphoneMediaEncryptionSRTP`.

/// How an SDES linphonec instance is set up.
pub(crate) struct SdesSetup<'a> {
    /// The user (also the digest user name and the directory name).
    pub(crate) user: &'a str,
    /// Register `sip:<user>@<domain>` over TLS at this proxy with this password, checking
    /// the server certificate against `root_ca`; `None`: no account (direct calls only).
    pub(crate) registrar: Option<(SocketAddr, &'a str, &'a Path)>,
    /// The SIP domain of the account (also the digest realm).
    pub(crate) domain: &'a str,
    /// A UDP SIP listener on 127.0.0.1 at this port (direct calls); `None`: none.
    pub(crate) udp_port: Option<u16>,
    /// Its RTP port (RTCP is the next one).
    pub(crate) rtp_port: u16,
    /// Answer incoming calls at once (`-a`).
    pub(crate) auto_answer: bool,
}

/// The linphonerc: SIP and RTP on 127.0.0.1, `media_encryption=srtp` mandatory, video off,
/// TLS registration (server certificate and name verified) when there is a registrar.
fn sdes_linphonerc(s: &SdesSetup<'_>) -> String {
    let mut c = sip_section(
        s.user,
        &s.udp_port.map(|p| format!(":{p}")).unwrap_or_default(),
        &s.udp_port.unwrap_or(0).to_string(),
        if s.registrar.is_some() { "-1" } else { "0" },
        "srtp",
    );
    if let Some((_, _, ca)) = s.registrar {
        c.push_str(&verify_lines(ca));
    }
    c.push_str(&media_sections(s.rtp_port));
    if let Some((proxy, password, _)) = s.registrar {
        c.push_str(&account_sections(proxy, s.user, password, s.domain));
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
        domain: "127.0.0.1",
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

impl Linphonec {
    /// An instance with mandatory SRTP keyed by SDES, set up as `setup` says (see
    /// `sdes_linphonerc`).
    pub(crate) fn start_sdes(base: &Path, setup: &SdesSetup<'_>) -> Linphonec {
        let rc = sdes_linphonerc(setup);
        Self::start_with(base, setup.user, setup.rtp_port, setup.auto_answer, &rc)
    }

    /// An instance set up as `setup` says but with mandatory ZRTP (`media_encryption=zrtp`)
    /// forced to one key agreement (`X255`, `X448`, `DH3k`: bzrtp's
    /// `MS_ZRTP_KEY_AGREEMENT_<name>` in `zrtp_key_agreements_suites`).
    pub(crate) fn start_zrtp(base: &Path, setup: &SdesSetup<'_>, key_agreement: &str) -> Linphonec {
        let rc = sdes_linphonerc(setup).replacen(
            "media_encryption=srtp\n",
            &format!(
                "media_encryption=zrtp\n\
                 zrtp_key_agreements_suites=MS_ZRTP_KEY_AGREEMENT_{}\n",
                key_agreement.to_uppercase()
            ),
            1,
        );
        assert!(rc.contains("media_encryption=zrtp"), "{rc}");
        Self::start_with(base, setup.user, setup.rtp_port, setup.auto_answer, &rc)
    }

    /// An instance set up as `setup` says but with mandatory DTLS-SRTP
    /// (`media_encryption=dtls`; linphonec makes its own certificate in its data directory).
    pub(crate) fn start_dtls(base: &Path, setup: &SdesSetup<'_>) -> Linphonec {
        let rc = sdes_linphonerc(setup).replacen(
            "media_encryption=srtp\n",
            "media_encryption=dtls\n",
            1,
        );
        assert!(rc.contains("media_encryption=dtls"), "{rc}");
        Self::start_with(base, setup.user, setup.rtp_port, setup.auto_answer, &rc)
    }

    /// An instance for direct calls over TLS (no account; see `direct_tls_linphonerc`),
    /// with mandatory SRTP keyed by SDES.
    pub(crate) fn start_direct_tls(
        base: &Path,
        user: &str,
        rtp_port: u16,
        tls_port: i32,
        root_ca: &Path,
        auto_answer: bool,
    ) -> Linphonec {
        let rc = direct_tls_linphonerc(user, rtp_port, tls_port, root_ca);
        Self::start_with(base, user, rtp_port, auto_answer, &rc)
    }
}

/// A [`TestPki`] for direct TLS calls in `dir` (`direct-ca.pem`, `direct-cert.pem`,
/// `direct-key.pem`), its directory and public files opened up for the linphonec uids.
pub(crate) fn direct_pki(dir: &Path) -> TestPki {
    let pki = test_pki(dir, "direct");
    open_up(dir);
    for f in [&pki.ca, &pki.cert] {
        open_up(f);
    }
    pki
}

/// The linphonec tools (and tshark, for the captures).
pub(crate) const LINPHONE_TOOLS: [(&str, &str); 4] = [
    ("linphonec", "--version"),
    ("linphonecsh", "--help"),
    ("tshark", "--version"),
    ("setpriv", "--version"),
];

/// Fails (naming `install`) unless every tool in `tools` is installed, and unless the test
/// runs as root (one uid per linphonec, tshark on `lo`).
pub(crate) fn require_as_root(tools: &[(&str, &str)], install: &str) {
    require_tools(tools, install);
    assert!(
        is_root(),
        "this test must run as root: each linphonec runs under its own uid (setpriv) and \
         tshark captures on lo (CI runs as root)"
    );
}
