//! Test helper: a real DNS server (Debian's `dnsmasq`) on a free loopback port, serving the
//! NAPTR, SRV and address records a test gives it, authoritative (NXDOMAIN) for the test
//! domains, and asking nobody else. Killed on drop.
//!
//! Included with `#[path = "common/dnsmasq.rs"] mod dnsmasq;` next to `common/process.rs`.

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{ChildGuard, free_tcp_udp_port, loopback, require_tools};

/// The apt-get line printed when dnsmasq is missing.
pub(crate) const INSTALL: &str = "install with: apt-get install -y dnsmasq-base";

/// The records of a test zone, as dnsmasq options.
#[derive(Default, Clone)]
pub(crate) struct Zone {
    args: Vec<String>,
    domains: Vec<String>,
}

impl Zone {
    /// dnsmasq answers for `domain` (and below) from these records only: other names there
    /// are NXDOMAIN.
    pub(crate) fn domain(mut self, domain: &str) -> Self {
        self.args.push(format!("--local=/{domain}/"));
        self.domains.push(domain.to_owned());
        self
    }

    /// `name A ip`.
    pub(crate) fn host(mut self, name: &str, ip: &str) -> Self {
        self.args.push(format!("--host-record={name},{ip}"));
        self
    }

    /// `name SRV priority weight port target` (`name` like `_sips._tcp.b.example`).
    pub(crate) fn srv(
        mut self,
        name: &str,
        target: &str,
        port: u16,
        priority: u16,
        weight: u16,
    ) -> Self {
        self.args.push(format!(
            "--srv-host={name},{target},{port},{priority},{weight}"
        ));
        self
    }

    /// `name NAPTR order preference "S" service "" replacement`.
    pub(crate) fn naptr(
        mut self,
        name: &str,
        order: u16,
        pref: u16,
        service: &str,
        replacement: &str,
    ) -> Self {
        self.args.push(format!(
            "--naptr-record={name},{order},{pref},S,{service},,{replacement}"
        ));
        self
    }
}

/// A running dnsmasq.
pub(crate) struct Dnsmasq {
    guard: ChildGuard,
    /// Where it answers (UDP and TCP).
    pub(crate) addr: SocketAddr,
}

impl Dnsmasq {
    /// Starts dnsmasq for `zone` (answers cached by clients for `ttl_secs`), logging queries to
    /// `dir/dnsmasq.log`, and waits until it answers.
    pub(crate) fn start(dir: &Path, zone: &Zone, ttl_secs: u32) -> Dnsmasq {
        require_tools(&[("dnsmasq", "--version")], INSTALL);
        let port = free_tcp_udp_port();
        let log = std::fs::File::create(dir.join("dnsmasq.log")).expect("dnsmasq.log");
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--except-interface=none",
            "--log-queries",
            "--log-facility=-",
            "--user=root",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--local-ttl={ttl_secs}"))
        .args(&zone.args)
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log"))
        .stderr(log);
        let guard = ChildGuard::new(cmd.spawn().expect("spawn dnsmasq"));
        let d = Dnsmasq {
            guard,
            addr: loopback(port),
        };
        d.wait_ready(zone.domains.first().map_or("probe.test", String::as_str));
        d
    }

    /// Sends an A query for `name` until dnsmasq answers (bounded).
    fn wait_ready(&self, name: &str) {
        let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let query = dns_query(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut buf = [0u8; 512];
        loop {
            let _ = sock.send_to(&query, self.addr);
            if sock.recv_from(&mut buf).is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "dnsmasq on {} did not answer",
                self.addr
            );
        }
    }

    /// Stops it (a test of what happens when DNS is gone).
    pub(crate) fn stop(mut self) {
        if let Some(mut c) = self.guard.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A DNS query packet: one question, `name` A IN, recursion desired.
fn dns_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(u8::try_from(label.len()).expect("short label"));
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}
