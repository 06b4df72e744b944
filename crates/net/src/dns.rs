//! DNS at the edge: runs the queries of the sans-IO RFC 3263 lookup
//! ([`sotto_sip::resolve::Lookup`]) with hickory-resolver and returns its candidates.
//!
//! - Name servers: the system's (`/etc/resolv.conf`) unless [`DnsConfig::servers`] names
//!   others (e.g. a test server on a high loopback port).
//! - Answers are cached by their TTL (hickory's cache, shared by every lookup of one
//!   [`Resolver`]); negative answers too.
//! - `/etc/hosts`: a name listed there has no NAPTR or SRV records (it is answered "no data"
//!   without asking DNS), and its addresses come from the file: `localhost` and local names
//!   work without any name server.
//! - IP literals never reach DNS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::proto::op::{Query as DnsQuery, ResponseCode};
use hickory_resolver::proto::rr::{Name, RData, RecordType as DnsType};
use hickory_resolver::{Hosts, TokioResolver};
use sotto_crypto::rng::SecureRandom;
use sotto_sip::message::Uri;
use sotto_sip::resolve::{
    Answer, Candidate, Lookup, Policy, Query, Record, RecordType, ResolveError,
};

/// Where and how to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsConfig {
    /// Name servers (address and port); empty: the system's (`/etc/resolv.conf`).
    pub servers: Vec<SocketAddr>,
    /// How long one query waits for an answer before it is tried again.
    pub timeout: Duration,
    /// How many times a query is sent.
    pub attempts: usize,
    /// Whether `/etc/hosts` is read.
    pub hosts_file: bool,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout: Duration::from_secs(2),
            attempts: 2,
            hosts_file: true,
        }
    }
}

/// A resolver for SIP URIs (RFC 3263); cheap to clone (one shared cache).
#[derive(Clone)]
pub struct Resolver {
    inner: TokioResolver,
    hosts: Arc<Hosts>,
    rng: &'static dyn SecureRandom,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    /// A resolver with `config`; `rng` orders SRV targets of equal priority (RFC 2782).
    /// Fails only if the system's configuration is asked for and cannot be read.
    pub fn new(config: &DnsConfig, rng: &'static dyn SecureRandom) -> Result<Self, crate::Error> {
        let mut builder = if config.servers.is_empty() {
            TokioResolver::builder_tokio().map_err(|e| {
                crate::Error::Io(std::io::Error::other(format!(
                    "reading the system's DNS configuration: {e}"
                )))
            })?
        } else {
            let servers = config
                .servers
                .iter()
                .map(|s| {
                    let mut ns = NameServerConfig::udp_and_tcp(s.ip());
                    for c in &mut ns.connections {
                        c.port = s.port();
                    }
                    ns
                })
                .collect();
            TokioResolver::builder_with_config(
                ResolverConfig::from_parts(None, Vec::new(), servers),
                TokioRuntimeProvider::default(),
            )
        };
        let opts: &mut ResolverOpts = builder.options_mut();
        opts.timeout = config.timeout;
        opts.attempts = config.attempts;
        opts.use_hosts_file = if config.hosts_file {
            hickory_resolver::config::ResolveHosts::Always
        } else {
            hickory_resolver::config::ResolveHosts::Never
        };
        let inner = builder
            .build()
            .map_err(|e| crate::Error::Io(std::io::Error::other(e.to_string())))?;
        let hosts = if config.hosts_file {
            Hosts::from_system().unwrap_or_default()
        } else {
            Hosts::default()
        };
        Ok(Resolver {
            inner,
            hosts: Arc::new(hosts),
            rng,
        })
    }

    /// The candidates for `uri`, in the order to try them (RFC 3263 §4).
    pub async fn resolve(&self, uri: &Uri, policy: Policy) -> Result<Vec<Candidate>, ResolveError> {
        let mut lookup = Lookup::new(uri, policy, self.rng);
        while let Some(q) = lookup.poll_query() {
            let answer = self.ask(&q).await;
            tracing::debug!(name = %q.name, record_type = ?q.record_type, answer = ?answer, "DNS");
            lookup.handle_answer(&q, answer);
        }
        lookup.result()
    }

    /// Whether `/etc/hosts` lists `name`, or the domain of the SRV name `name`
    /// (`_sips._tcp.<domain>`).
    fn in_hosts(&self, name: &str) -> bool {
        let domain = match name.strip_prefix('_').and_then(|r| r.split_once("._")) {
            Some((_, rest)) => rest.split_once('.').map_or(rest, |(_, d)| d),
            None => name,
        };
        let Ok(mut n) = Name::from_ascii(domain) else {
            return false;
        };
        n.set_fqdn(true);
        [DnsType::A, DnsType::AAAA].into_iter().any(|t| {
            self.hosts
                .lookup_static_host(&DnsQuery::query(n.clone(), t))
                .is_some()
        })
    }

    async fn ask(&self, q: &Query) -> Answer {
        let Ok(mut name) = Name::from_ascii(&q.name) else {
            return Answer::NoSuchName;
        };
        name.set_fqdn(true);
        let kind = match q.record_type {
            RecordType::Naptr => DnsType::NAPTR,
            RecordType::Srv => DnsType::SRV,
            RecordType::A => DnsType::A,
            RecordType::Aaaa => DnsType::AAAA,
        };
        if matches!(q.record_type, RecordType::Naptr | RecordType::Srv) && self.in_hosts(&q.name) {
            return Answer::Records(Vec::new());
        }
        match self.inner.lookup(name, kind).await {
            Ok(lookup) => Answer::Records(
                lookup
                    .answers()
                    .iter()
                    .filter_map(|r| record_of(&r.data))
                    .collect(),
            ),
            Err(NetError::Dns(DnsError::NoRecordsFound(nr))) => {
                if nr.response_code == ResponseCode::NXDomain {
                    Answer::NoSuchName
                } else {
                    Answer::Records(Vec::new())
                }
            }
            Err(e) => Answer::Failed(e.to_string()),
        }
    }
}

fn name_text(n: &Name) -> String {
    n.to_ascii().trim_end_matches('.').to_ascii_lowercase()
}

fn record_of(data: &RData) -> Option<Record> {
    Some(match data {
        RData::NAPTR(n) => Record::Naptr {
            order: n.order,
            preference: n.preference,
            flags: String::from_utf8_lossy(&n.flags).into_owned(),
            service: String::from_utf8_lossy(&n.services).into_owned(),
            replacement: name_text(&n.replacement),
        },
        RData::SRV(s) => Record::Srv {
            priority: s.priority,
            weight: s.weight,
            port: s.port,
            target: name_text(&s.target),
        },
        RData::A(a) => Record::A(a.0),
        RData::AAAA(a) => Record::Aaaa(a.0),
        _ => return None,
    })
}
