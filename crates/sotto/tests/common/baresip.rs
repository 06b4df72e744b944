//! Test helper: a headless `baresip` (Debian package `baresip`, 1.0) registered to a server
//! the way its users set it up: an account line with an outbound proxy
//! `sip:<proxy>;transport=tls`, SRTP keyed by SDES made mandatory (`mediaenc=srtp-mand`),
//! the server verified against a CA (`sip_cafile`).
//!
//! Without a sound card (facts from `../shared/interop/baresip.md`, checked here): the
//! `aufile` source plays a WAV file, `aubridge` plays nowhere, and the `sndfile` filter
//! writes what it decoded to `rec/dump-*-dec.wav`. The `cons` module takes commands as UDP
//! datagrams (`/dial URI`, `/hangup`, `/quit`, each ending with a newline); `-v -s` put the
//! SIP trace and call events on stdout, which goes to `baresip.log`.
//!
//! Included with `#[path = "common/baresip.rs"] mod baresip;` next to `common/process.rs`.

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, free_tcp_udp_port, loopback, require_tools};

/// The apt-get line printed when baresip is missing.
pub(crate) const INSTALL: &str = "install with: apt-get install -y baresip";

/// How a baresip account is set up.
pub(crate) struct Setup<'a> {
    /// The user at `domain` (also the digest user name).
    pub(crate) user: &'a str,
    /// Its digest password.
    pub(crate) password: &'a str,
    /// The SIP domain of the account.
    pub(crate) domain: &'a str,
    /// The outbound proxy: the server's TLS address.
    pub(crate) proxy: SocketAddr,
    /// The CA the server's certificate must chain to.
    pub(crate) ca: &'a Path,
    /// The WAV file it sends (8 kHz mono).
    pub(crate) play: &'a Path,
    /// Answer incoming calls at once.
    pub(crate) auto_answer: bool,
    /// Seconds without media before baresip ends a call.
    pub(crate) rtp_timeout_secs: u32,
}

/// A running baresip. Sent `/quit`, then killed, on drop.
pub(crate) struct Baresip {
    /// The instance's directory (config, accounts, log, recordings).
    pub(crate) dir: PathBuf,
    guard: ChildGuard,
    control: SocketAddr,
}

impl Baresip {
    /// Writes `dir/config` and `dir/accounts` and starts `baresip -f dir -v -s`.
    pub(crate) fn start(dir: &Path, s: &Setup<'_>) -> Baresip {
        require_tools(&[("baresip", "-h")], INSTALL);
        std::fs::create_dir_all(dir.join("rec")).expect("mkdir rec");
        let sip = free_tcp_udp_port();
        let control = free_tcp_udp_port();
        let config = format!(
            "poll_method\tepoll\n\
             sip_listen\t127.0.0.1:{sip}\n\
             sip_cafile\t{ca}\n\
             audio_player\taubridge,nil\n\
             audio_source\taufile,{play}\n\
             audio_alert\taubridge,nil\n\
             audio_srate\t8000\n\
             audio_channels\t1\n\
             net_interface\t127.0.0.1\n\
             dns_server\t127.0.0.1:53\n\
             rtp_timeout\t{timeout}\n\
             module_path\t/usr/lib/baresip/modules\n\
             module\tg711.so\n\
             module\taufile.so\n\
             module\taubridge.so\n\
             module\tsndfile.so\n\
             module\tsrtp.so\n\
             module\tcons.so\n\
             module_app\taccount.so\n\
             module_app\tmenu.so\n\
             cons_listen\t127.0.0.1:{control}\n\
             snd_path\t{rec}\n",
            ca = s.ca.display(),
            play = s.play.display(),
            timeout = s.rtp_timeout_secs,
            rec = dir.join("rec").display(),
        );
        std::fs::write(dir.join("config"), config).expect("write config");
        let account = format!(
            "<sip:{user}@{domain};transport=tls>;auth_pass={pw};\
             outbound=\"sip:{proxy};transport=tls\";mediaenc=srtp-mand;regint=600{answer}\n",
            user = s.user,
            domain = s.domain,
            pw = s.password,
            proxy = s.proxy,
            answer = if s.auto_answer {
                ";answermode=auto"
            } else {
                ""
            },
        );
        std::fs::write(dir.join("accounts"), account).expect("write accounts");
        let log = std::fs::File::create(dir.join("baresip.log")).expect("baresip.log");
        let child = Command::new("baresip")
            .arg("-f")
            .arg(dir)
            .args(["-v", "-s"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log"))
            .stderr(log)
            .spawn()
            .expect("spawn baresip");
        Baresip {
            dir: dir.to_path_buf(),
            guard: ChildGuard::new(child),
            control: loopback(control),
        }
    }

    /// What baresip printed so far (its SIP trace and events).
    pub(crate) fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.dir.join("baresip.log")).unwrap_or_default())
            .into_owned()
    }

    /// Waits (at most `bound`) until the log has `n` lines containing `text`.
    pub(crate) fn wait_log(&self, text: &str, n: usize, bound: Duration) {
        let deadline = Instant::now() + bound;
        loop {
            if self.log().lines().filter(|l| l.contains(text)).count() >= n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "baresip: no {n} × {text:?} within {bound:?}; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until its account is registered (`... 200 OK ... [1 binding]`).
    pub(crate) fn wait_registered(&self, bound: Duration) {
        self.wait_log("200 OK (sotto", 1, bound);
    }

    /// Sends a console command (`/dial URI`, `/hangup`).
    pub(crate) fn command(&self, cmd: &str) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.send_to(format!("{cmd}\n").as_bytes(), self.control)
            .expect("send command");
    }

    /// The recordings of decoded audio, oldest first.
    pub(crate) fn recordings(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(self.dir.join("rec"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().ends_with("-dec.wav"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Kills it without a goodbye (no BYE: a phone that lost its network).
    pub(crate) fn kill(mut self) {
        if let Some(mut c) = self.guard.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Baresip {
    fn drop(&mut self) {
        if self.guard.0.is_some() {
            self.command("/quit");
            let _ = self.guard.0.as_mut().map(|c| {
                let deadline = Instant::now() + Duration::from_secs(3);
                while Instant::now() < deadline {
                    if matches!(c.try_wait(), Ok(Some(_))) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            });
        }
    }
}
