//! Test helper: a bounded REGISTER load over UDP, as many phones behind several addresses
//! would make it — digest (SHA-256), one Call-ID per account and a CSeq that grows (RFC 3261
//! §10.2.4 refreshes), each source paced under the server's default anti-flood rate — that
//! remembers which registrations the server acknowledged (200), so that a test can check
//! after a crash or an outage that none of them was lost.
//!
//! A lost datagram or a server that is down is an unanswered registration (counted; its
//! fate is unknown, so it is not among the acknowledged ones). Every wait is bounded by
//! [`ANSWER_WAIT`]; the load by its duration.
//!
//! Included with `#[path = "common/register_load.rs"] mod register_load;` (needs
//! `sip_client`).

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use sotto_sip::digest::{Algorithm, DigestClient};
use sotto_sip::message::{Message, Response};
use sotto_sip::parse::{Limits, parse_message};

use crate::sip_client;

/// How long one request waits for its final response.
pub(crate) const ANSWER_WAIT: Duration = Duration::from_millis(1500);

/// The load: `accounts` accounts `u0`… spread over `sources` loopback addresses
/// (127.0.0.10, .11, …), each source registering `rate_per_source` times a second.
#[derive(Clone, Debug)]
pub(crate) struct Load {
    pub(crate) server: SocketAddr,
    pub(crate) domain: String,
    pub(crate) accounts: usize,
    pub(crate) sources: usize,
    pub(crate) rate_per_source: f64,
}

impl Load {
    /// Sizes from the environment for the full run (`SOTTO_LOAD_ACCOUNTS`,
    /// `SOTTO_LOAD_SOURCES`), else the short form's: 120 accounts from 6 addresses at 40
    /// registrations (80 requests) a second each — under the default anti-flood rate of 100
    /// requests a second per address.
    pub(crate) fn from_env(server: SocketAddr, domain: &str) -> Load {
        let env = |name: &str, default: usize| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        Load {
            server,
            domain: domain.to_owned(),
            accounts: env("SOTTO_LOAD_ACCOUNTS", 120),
            sources: env("SOTTO_LOAD_SOURCES", 6),
            rate_per_source: 40.0,
        }
    }

    /// The account names and passwords (`u<i>`, `pw-u<i>`).
    pub(crate) fn users(&self) -> Vec<(String, String)> {
        (0..self.accounts)
            .map(|i| (format!("u{i}"), format!("pw-u{i}")))
            .collect()
    }
}

/// The duration of a load phase: `SOTTO_LOAD_SECS` for the full run, else `default`.
pub(crate) fn phase(default: Duration) -> Duration {
    std::env::var("SOTTO_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(default)
}

/// What the load saw.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    /// Registrations answered 200, and when (from the load's start).
    pub(crate) acknowledged: Vec<(String, Duration)>,
    /// The contact each account registered.
    pub(crate) contacts: BTreeMap<String, String>,
    /// Requests answered 503; how many of them lacked Retry-After.
    pub(crate) unavailable: u64,
    pub(crate) unavailable_without_retry_after: u64,
    /// Requests without a final response within [`ANSWER_WAIT`].
    pub(crate) unanswered: u64,
    /// Other final responses, by status.
    pub(crate) other: BTreeMap<u16, u64>,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) {
        self.acknowledged.extend(o.acknowledged);
        self.contacts.extend(o.contacts);
        self.unavailable += o.unavailable;
        self.unavailable_without_retry_after += o.unavailable_without_retry_after;
        self.unanswered += o.unanswered;
        for (k, v) in o.other {
            *self.other.entry(k).or_default() += v;
        }
    }

    /// The accounts with at least one acknowledged registration.
    pub(crate) fn acknowledged_accounts(&self) -> BTreeSet<String> {
        self.acknowledged.iter().map(|(u, _)| u.clone()).collect()
    }

    /// Registrations acknowledged at or after `t` (from the load's start).
    pub(crate) fn acknowledged_after(&self, t: Duration) -> usize {
        self.acknowledged.iter().filter(|(_, at)| *at >= t).count()
    }

    /// One line for the test's output.
    pub(crate) fn summary(&self) -> String {
        format!(
            "{} acknowledged ({} accounts), {} answered 503 ({} without Retry-After), {} \
             unanswered, other {:?}",
            self.acknowledged.len(),
            self.acknowledged_accounts().len(),
            self.unavailable,
            self.unavailable_without_retry_after,
            self.unanswered,
            self.other
        )
    }
}

/// One account as a phone holds it.
struct Account {
    user: String,
    password: String,
    call_id: String,
    cseq: u32,
}

/// One source address and the accounts registering from it.
struct Source {
    load: Load,
    socket: UdpSocket,
    accounts: Vec<Account>,
    digest: DigestClient,
    branch: u64,
}

impl Source {
    /// Source `index` of `load`; `tag` keeps its Call-IDs apart from another run's.
    fn new(load: &Load, index: usize, tag: &str) -> Source {
        let ip = format!("127.0.0.{}", 10 + index);
        let socket = UdpSocket::bind((ip.as_str(), 0)).expect("bind a load source");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .expect("read timeout");
        let accounts = load
            .users()
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % load.sources == index)
            .map(|(_, (user, password))| Account {
                call_id: format!("{user}-{tag}-{}@load.test", std::process::id()),
                user,
                password,
                cseq: 0,
            })
            .collect();
        Source {
            load: load.clone(),
            socket,
            accounts,
            digest: DigestClient::new(sotto_crypto_rust::provider()),
            branch: 0,
        }
    }

    fn contact(&self, user: &str) -> String {
        format!(
            "sip:{user}@{}",
            self.socket.local_addr().expect("local address")
        )
    }

    /// A REGISTER of account `a` (with `contact`, or a query without), with `extra` header.
    fn register(&mut self, a: usize, contact: bool, extra: Option<String>) -> (String, u32) {
        self.branch += 1;
        let local = self.socket.local_addr().expect("local address");
        let contact_h = if contact {
            format!(
                "Contact: <{}>\r\nExpires: 3600\r\n",
                self.contact(&self.accounts[a].user)
            )
        } else {
            String::new()
        };
        let acct = &mut self.accounts[a];
        acct.cseq += 1;
        let domain = &self.load.domain;
        let text = format!(
            "REGISTER sip:{domain} SIP/2.0\r\nVia: SIP/2.0/UDP {local};branch=z9hG4bK-load-{}-{};rport\r\n\
             Max-Forwards: 70\r\nFrom: <sip:{user}@{domain}>;tag=load{}\r\nTo: <sip:{user}@{domain}>\r\n\
             Call-ID: {}\r\nCSeq: {} REGISTER\r\n{contact_h}{}Content-Length: 0\r\n\r\n",
            std::process::id(),
            self.branch,
            acct.cseq,
            acct.call_id,
            acct.cseq,
            extra.map(|h| format!("{h}\r\n")).unwrap_or_default(),
            user = acct.user,
        );
        (text, acct.cseq)
    }

    /// Sends `text` and waits for the final response with this account's Call-ID and `cseq`
    /// (late answers to earlier requests are skipped); `None` if none came in time.
    fn exchange(&self, a: usize, text: &str, cseq: u32) -> Option<Response> {
        let _ = self.socket.send_to(text.as_bytes(), self.load.server);
        let deadline = Instant::now() + ANSWER_WAIT;
        let mut buf = vec![0u8; 65_536];
        while Instant::now() < deadline {
            let Ok((n, _)) = self.socket.recv_from(&mut buf) else {
                continue;
            };
            let Ok(Message::Response(r)) =
                parse_message(buf[..n].to_vec().into(), &Limits::default())
            else {
                continue;
            };
            let ours = r.headers().get("Call-ID") == Some(self.accounts[a].call_id.as_str())
                && r.headers()
                    .get("CSeq")
                    .and_then(|c| c.split_whitespace().next())
                    .and_then(|n| n.parse::<u32>().ok())
                    == Some(cseq);
            if ours && r.status().is_final() {
                return Some(r);
            }
        }
        None
    }

    /// One authenticated REGISTER of account `a` (`contact`: a registration, else a query):
    /// the final response after the challenge, or the first one that is not a challenge.
    fn authenticated(&mut self, a: usize, contact: bool, out: &mut Outcome) -> Option<Response> {
        let (first, cseq) = self.register(a, contact, None);
        let Some(r) = self.exchange(a, &first, cseq) else {
            out.unanswered += 1;
            return None;
        };
        let r = if r.status().0 == 401 {
            let (user, password) = (
                self.accounts[a].user.clone(),
                self.accounts[a].password.clone(),
            );
            let (h, creds) = sip_client::credentials_for(
                &mut self.digest,
                &r,
                Algorithm::Sha256,
                &first,
                &user,
                &password,
            );
            let (again, cseq) = self.register(a, contact, Some(format!("{h}: {creds}")));
            let Some(r) = self.exchange(a, &again, cseq) else {
                out.unanswered += 1;
                return None;
            };
            r
        } else {
            r
        };
        match r.status().0 {
            200 => {}
            503 => {
                out.unavailable += 1;
                if r.headers().get("Retry-After").is_none() {
                    out.unavailable_without_retry_after += 1;
                }
            }
            s => *out.other.entry(s).or_default() += 1,
        }
        Some(r)
    }

    /// Registers the accounts round robin, paced, until `stop`.
    fn run(mut self, start: Instant, stop: &AtomicBool) -> Outcome {
        let mut out = Outcome::default();
        for a in &self.accounts {
            out.contacts.insert(a.user.clone(), self.contact(&a.user));
        }
        let interval = Duration::from_secs_f64(1.0 / self.load.rate_per_source);
        let mut next = Instant::now();
        let mut a = 0;
        while !stop.load(Ordering::Relaxed) && !self.accounts.is_empty() {
            if let Some(r) = self.authenticated(a, true, &mut out)
                && r.status().0 == 200
            {
                out.acknowledged
                    .push((self.accounts[a].user.clone(), start.elapsed()));
            }
            a = (a + 1) % self.accounts.len();
            next += interval;
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            } else {
                next = now;
            }
        }
        out
    }

    /// Asks the server for each account's contacts (a REGISTER without Contact, RFC 3261
    /// §10.2.3), paced like the load; an account that got no 200 maps to `None`.
    fn query(mut self) -> BTreeMap<String, Option<Vec<String>>> {
        let mut found = BTreeMap::new();
        let interval = Duration::from_secs_f64(1.0 / self.load.rate_per_source);
        let mut scratch = Outcome::default();
        for a in 0..self.accounts.len() {
            let contacts = self
                .authenticated(a, false, &mut scratch)
                .filter(|r| r.status().0 == 200)
                .map(|r| {
                    r.headers()
                        .get_all("Contact")
                        .map(str::to_owned)
                        .collect::<Vec<_>>()
                });
            found.insert(self.accounts[a].user.clone(), contacts);
            std::thread::sleep(interval);
        }
        found
    }
}

/// A load running on its own threads (one per source) until [`Running::finish`].
pub(crate) struct Running {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Outcome>>,
    /// When the load started.
    pub(crate) start: Instant,
}

/// Starts `load`.
pub(crate) fn start(load: &Load) -> Running {
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let threads = (0..load.sources)
        .map(|i| {
            let source = Source::new(load, i, "load");
            let stop = stop.clone();
            std::thread::spawn(move || source.run(start, &stop))
        })
        .collect();
    Running {
        stop,
        threads,
        start,
    }
}

impl Running {
    /// Stops the load and returns what it saw.
    pub(crate) fn finish(self) -> Outcome {
        self.stop.store(true, Ordering::Relaxed);
        let mut out = Outcome::default();
        for t in self.threads {
            out.merge(t.join().expect("load thread"));
        }
        out
    }
}

/// Asks the server for every account's contacts, from the load's own source addresses.
pub(crate) fn registered(load: &Load) -> BTreeMap<String, Option<Vec<String>>> {
    let threads: Vec<_> = (0..load.sources)
        .map(|i| {
            let source = Source::new(load, i, "query");
            std::thread::spawn(move || source.query())
        })
        .collect();
    threads
        .into_iter()
        .flat_map(|t| t.join().expect("query thread"))
        .collect()
}

/// The acknowledged accounts whose contact the server no longer lists (`registered`'s
/// answer): each with what it found instead.
pub(crate) fn lost(
    outcome: &Outcome,
    registered: &BTreeMap<String, Option<Vec<String>>>,
) -> Vec<String> {
    outcome
        .acknowledged_accounts()
        .into_iter()
        .filter_map(|user| {
            let contact = &outcome.contacts[&user];
            let listed = registered.get(&user).cloned().flatten();
            let kept = listed
                .as_ref()
                .is_some_and(|l| l.iter().any(|c| c.contains(contact.as_str())));
            (!kept).then(|| format!("{user} ({contact}): server lists {listed:?}"))
        })
        .collect()
}
