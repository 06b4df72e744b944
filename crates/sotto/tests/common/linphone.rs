//! Test helper: headless `linphonec` instances (Debian package `linphone-cli`) and a
//! `tshark` capture on the loopback interface.
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

#![allow(dead_code)]

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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

/// The SIP account of an instance: registers `sip:<user>@127.0.0.1` at `proxy` over TLS,
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
    /// Writes the config (audio RTP on `rtp_port`, RTCP on the next) and starts
    /// `linphonec --pipe` (with `-a`, auto-answer, when `auto_answer`) under its own uid, then waits for its control socket and switches it
    /// to file audio (`soundcard use files`).
    pub(crate) fn start(
        base: &Path,
        account: &Account<'_>,
        rtp_port: u16,
        auto_answer: bool,
    ) -> Linphonec {
        let claim = UidClaim::claim();
        let dir = base.join(account.user);
        std::fs::create_dir_all(dir.join("home/.local/share/linphone")).expect("mkdir home");
        std::fs::create_dir_all(dir.join("rec")).expect("mkdir rec");
        std::fs::write(dir.join("linphonerc"), linphonerc(account, rtp_port))
            .expect("write linphonerc");
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
            name: account.user.to_owned(),
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

    /// The uid it runs as.
    pub(crate) fn uid(&self) -> u32 {
        self.claim.uid
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

    /// Waits until the stdout holds `n` lines (1-based count) that contain every one of
    /// `parts`; returns the `n`-th.
    pub(crate) fn wait_line(&self, parts: &[&str], n: usize, bound: Duration) -> String {
        let deadline = Instant::now() + bound;
        loop {
            let out = self.stdout();
            if let Some(l) = out
                .lines()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .nth(n.saturating_sub(1))
            {
                return l.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "linphonec {}: no line #{n} with {parts:?}; stdout:\n{out}",
                self.name
            );
            std::thread::sleep(POLL);
        }
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

/// The linphonerc of an instance: TLS only (no UDP/TCP SIP listener), ZRTP mandatory,
/// server certificate verified, SIP and RTP bound to 127.0.0.1, video off.
fn linphonerc(a: &Account<'_>, rtp_port: u16) -> String {
    let mut s = String::new();
    let proxy = a.proxy;
    let user = a.user;
    let _ = write!(
        s,
        "[sip]\n\
         contact=sip:{user}@127.0.0.1\n\
         sip_port=0\n\
         sip_tcp_port=0\n\
         sip_tls_port=-1\n\
         bind_address=127.0.0.1\n\
         guess_hostname=0\n\
         use_ipv6=0\n\
         media_encryption=zrtp\n\
         media_encryption_mandatory=1\n\
         inc_timeout=30\n\
         register_only_when_network_is_up=0\n\
         auto_net_state_mon=0\n\
         ping_with_options=0\n\
         default_proxy=0\n\
         root_ca={ca}\n\
         verify_server_certs=1\n\
         verify_server_cn=1\n\
         \n\
         [rtp]\n\
         audio_rtp_port={rtp_port}\n\
         video_rtp_port={video}\n\
         text_rtp_port={text}\n\
         bind_address=127.0.0.1\n\
         \n\
         [sound]\n\
         echocancellation=0\n\
         \n\
         [video]\n\
         enabled=0\n\
         capture=0\n\
         display=0\n\
         automatically_initiate=0\n\
         automatically_accept=0\n\
         \n\
         [net]\n\
         firewall_policy=0\n\
         \n\
         [proxy_0]\n\
         reg_proxy=<sip:{proxy};transport=tls>\n\
         reg_route=<sip:{proxy};transport=tls;lr>\n\
         reg_identity=sip:{user}@127.0.0.1\n\
         reg_expires=600\n\
         reg_sendregister=1\n\
         publish=0\n\
         avpf=0\n\
         \n\
         [auth_info_0]\n\
         username={user}\n\
         passwd={pw}\n\
         realm=127.0.0.1\n\
         domain=127.0.0.1\n",
        ca = a.root_ca.display(),
        video = rtp_port + 10,
        text = rtp_port + 20,
        pw = a.password,
    );
    s
}

/// Writes an 8 kHz mono 16-bit WAV of a sine at `freq_hz` lasting `secs`, readable by all.
pub(crate) fn write_tone(path: &Path, freq_hz: f64, secs: u32) {
    let mut tone = sotto_media::audio::tone::Tone::new(freq_hz, 12000, 8000);
    let samples = tone.samples(8000 * secs as usize);
    let wav = sotto_media::audio::wav::Wav::mono(8000, samples);
    std::fs::write(path, wav.to_bytes().expect("encode WAV")).expect("write WAV");
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
}

/// Goertzel figures of a recording at `freq_hz` (half-second windows), with the recording's
/// rate and length for messages.
pub(crate) fn tone_report(
    path: &Path,
    freq_hz: f64,
) -> (sotto_media::audio::goertzel::ToneReport, String) {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("read recording {}: {e}", path.display()));
    let wav = sotto_media::audio::wav::Wav::parse(&bytes)
        .unwrap_or_else(|e| panic!("parse recording {}: {e:?}", path.display()));
    let mono: Vec<i16> = wav
        .samples
        .chunks(usize::from(wav.channels.max(1)))
        .filter_map(|f| f.first().copied())
        .collect();
    let report =
        sotto_media::audio::goertzel::ToneReport::analyze(&mono, wav.sample_rate, freq_hz, 0);
    let info = format!(
        "{}: rate={} channels={} samples={}",
        path.display(),
        wav.sample_rate,
        wav.channels,
        mono.len()
    );
    (report, info)
}

/// A `tshark` capture on `lo` into a pcap file; stopped with SIGINT, killed on drop.
pub(crate) struct Capture {
    /// The pcap file.
    pub(crate) pcap: PathBuf,
    child: Option<Child>,
}

impl Capture {
    /// Starts `tshark -i lo -q -w <pcap> -f <filter>` and waits until it is capturing.
    pub(crate) fn start(pcap: &Path, filter: &str) -> Capture {
        let err_path = pcap.with_extension("err");
        let err = File::create(&err_path).expect("create tshark stderr file");
        let child = Command::new("tshark")
            .args(["-i", "lo", "-q", "-w"])
            .arg(pcap)
            .args(["-f", filter])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .expect("spawn tshark");
        let mut cap = Capture {
            pcap: pcap.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let text = std::fs::read_to_string(&err_path).unwrap_or_default();
            if text.contains("Capturing on") {
                break;
            }
            if let Some(c) = cap.child.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                panic!("tshark exited ({status}): {text}");
            }
            assert!(Instant::now() < deadline, "tshark did not start: {text}");
            std::thread::sleep(Duration::from_millis(100));
        }
        // Let the capture settle (what tshark prints precedes the first packet captured).
        std::thread::sleep(Duration::from_millis(300));
        cap
    }

    /// Stops the capture (SIGINT, so the pcap is complete), bounded; SIGKILL if it hangs.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        std::thread::sleep(Duration::from_millis(500));
        let _ = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Reads the pcap with `tshark -r`, the given decode hints (`-d` values), display filter
    /// and fields: one `Vec` of field values per frame.
    pub(crate) fn fields(
        &self,
        decode: &[String],
        filter: &str,
        fields: &[&str],
    ) -> Vec<Vec<String>> {
        let mut cmd = Command::new("tshark");
        cmd.arg("-r").arg(&self.pcap);
        for d in decode {
            cmd.args(["-d", d]);
        }
        if !filter.is_empty() {
            cmd.args(["-Y", filter]);
        }
        cmd.args(["-T", "fields", "-E", "separator=|"]);
        for f in fields {
            cmd.args(["-e", f]);
        }
        let out = cmd.output().expect("run tshark -r");
        assert!(
            out.status.success(),
            "tshark -r failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('|').map(str::to_owned).collect())
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
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
