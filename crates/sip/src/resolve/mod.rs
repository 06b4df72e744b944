//! Locating SIP servers (RFC 3263 §4), sans-IO: from a SIP or SIPS URI to an ordered list of
//! (transport, address, TLS name) candidates to try in turn.
//!
//! The lookup is a state machine that asks for DNS records and is told the answers; the IO
//! edge (`sotto-net::dns`) runs the queries. The steps:
//!
//! 1. The host is an IP literal: one candidate (transport from `transport=`, else TLS for
//!    `sips:` and UDP for `sip:`; the port given or the transport's default).
//! 2. A port is given: A/AAAA of the host, with that port (§4.2).
//! 3. `transport=` is given: the SRV records of that transport (`_sips._tcp`, `_sip._tcp`,
//!    `_sip._udp`), else A/AAAA with the default port.
//! 4. Otherwise NAPTR (§4.1): the records whose service this side allows (`SIPS+D2T`,
//!    `SIP+D2T`, `SIP+D2U`; only TLS for `sips:` or a TLS-only policy), by order then
//!    preference, each replacement looked up as SRV. No NAPTR: the SRV names of the allowed
//!    transports, TLS first. No SRV: A/AAAA of the host with the default transport and port.
//!
//! SRV targets are ordered by priority, then weighted at random within a priority (RFC 2782);
//! each target's A then AAAA records give the addresses. The TLS name of every candidate is
//! the URI's host, never an SRV target (RFC 5922 §4: the certificate must name the domain).
//!
//! ## Driving contract
//! After [`Lookup::new`], call [`Lookup::poll_query`]; run that query and give its
//! [`Answer`] to [`Lookup::handle_answer`]; repeat until [`Lookup::poll_query`] returns `None`,
//! then take [`Lookup::result`]. One query is outstanding at a time.

mod srv;
#[cfg(test)]
mod tests;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use sotto_crypto::rng::SecureRandom;

use crate::message::{Scheme, Uri};
use crate::transport::TransportKind;

/// Most candidates a lookup returns (a peer's DNS cannot make us try thousands of servers).
pub const MAX_CANDIDATES: usize = 16;
/// Most DNS queries one lookup makes (NAPTR and SRV records pointing at many targets).
pub const MAX_QUERIES: usize = 24;

/// A DNS record type a lookup asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordType {
    /// NAPTR (RFC 3403).
    Naptr,
    /// SRV (RFC 2782).
    Srv,
    /// IPv4 address.
    A,
    /// IPv6 address.
    Aaaa,
}

/// One DNS question.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Query {
    /// The name, fully qualified without the final dot (e.g. `_sips._tcp.example.test`).
    pub name: String,
    /// What is asked.
    pub record_type: RecordType,
}

/// One DNS record of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A NAPTR record (only the fields RFC 3263 uses).
    Naptr {
        /// Lower first.
        order: u16,
        /// Lower first, within an order.
        preference: u16,
        /// `s` for an SRV replacement.
        flags: String,
        /// e.g. `SIPS+D2T`.
        service: String,
        /// The SRV name to look up.
        replacement: String,
    },
    /// An SRV record.
    Srv {
        /// Lower first.
        priority: u16,
        /// Share within a priority.
        weight: u16,
        /// The port.
        port: u16,
        /// The host name (`.` means: no service here).
        target: String,
    },
    /// An IPv4 address.
    A(Ipv4Addr),
    /// An IPv6 address.
    Aaaa(Ipv6Addr),
}

/// The answer to one [`Query`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Records of the type asked (possibly none: no data).
    Records(Vec<Record>),
    /// The name does not exist (NXDOMAIN).
    NoSuchName,
    /// No answer could be had (time-out, SERVFAIL, no reachable name server): the reason.
    Failed(String),
}

/// Where to try to send: the transport, the address, and for TLS the name the certificate
/// must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The transport.
    pub transport: TransportKind,
    /// The address and port.
    pub addr: SocketAddr,
    /// For TLS to a host name: that name (RFC 5922 §4). `None` for an IP literal.
    pub server_name: Option<String>,
}

/// Why a lookup found nowhere to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The domain does not exist (NXDOMAIN for the host itself).
    #[error("the domain {0} does not exist")]
    NoSuchDomain(String),
    /// The domain exists but publishes no usable SIP server (no NAPTR, SRV or address).
    #[error("no SIP server found for {0}")]
    NoServer(String),
    /// DNS could not be asked or did not answer.
    #[error("DNS lookup for {domain} failed: {reason}")]
    Unavailable {
        /// The domain.
        domain: String,
        /// What went wrong.
        reason: String,
    },
    /// The URI cannot be looked up (not SIP or SIPS, no host, or a transport not allowed).
    #[error("cannot look up {0}")]
    Unsupported(String),
}

/// What transports the side that looks up may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Only TLS (a `sips:` URI implies it anyway): server-to-server federation, SDES.
    pub tls_only: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// NAPTR of the host.
    Naptr,
    /// SRV names to try, in order.
    Srv,
    /// Addresses of SRV targets (or of the host itself).
    Addresses,
    Done,
}

/// An SRV name to look up and the transport it stands for.
#[derive(Debug, Clone)]
struct SrvName {
    name: String,
    transport: TransportKind,
}

/// A host whose addresses are wanted, with the port and transport they serve.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    port: u16,
    transport: TransportKind,
}

/// One RFC 3263 lookup (see the module documentation).
#[derive(Debug)]
pub struct Lookup {
    /// The domain (the URI's host, or its `maddr`), lower case.
    domain: String,
    policy: Policy,
    sips: bool,
    step: Step,
    srv_names: Vec<SrvName>,
    /// Hosts whose A then AAAA are asked, in order.
    targets: Vec<Target>,
    /// Whether the AAAA query of `targets[0]` is the next one (its A was asked).
    aaaa_next: bool,
    /// The query outstanding.
    asked: Option<Query>,
    queries: usize,
    candidates: Vec<Candidate>,
    /// The host itself came back NXDOMAIN.
    no_such_name: bool,
    /// A query failed (time-out, SERVFAIL): the first reason.
    failure: Option<String>,
    /// The fallback of step 3/4: A/AAAA of the host with this transport and port when no SRV.
    fallback: Option<Target>,
    /// Random numbers for the SRV weights.
    rng: &'static dyn SecureRandom,
}

/// The default port of a transport (RFC 3261 §19.1.2).
pub fn default_port(transport: TransportKind) -> u16 {
    if transport == TransportKind::Tls {
        5061
    } else {
        5060
    }
}

/// The transport a URI names with `transport=` (`sips:` turns TCP into TLS), if any.
pub fn uri_transport(uri: &Uri) -> Option<TransportKind> {
    let t = TransportKind::from_token(uri.transport()?)?;
    if t == TransportKind::Tcp && uri.scheme() == Scheme::Sips {
        return Some(TransportKind::Tls);
    }
    Some(t)
}

/// The transport of a request sent to `uri` when nothing else decides: `transport=`, else TLS
/// for `sips:` and UDP for `sip:` (RFC 3261 §18, RFC 3263 §4.1 for an address).
pub fn transport_of(uri: &Uri) -> TransportKind {
    uri_transport(uri).unwrap_or(if uri.scheme() == Scheme::Sips {
        TransportKind::Tls
    } else {
        TransportKind::Udp
    })
}

/// Where to send to `uri` when its host (or `maddr`) is an IP literal: no DNS needed (§4.2).
/// `None` for a host name.
pub fn literal_destination(uri: &Uri) -> Option<(TransportKind, SocketAddr)> {
    let ip: IpAddr = lookup_host(uri).parse().ok()?;
    let transport = transport_of(uri);
    Some((
        transport,
        SocketAddr::new(ip, uri.port().unwrap_or_else(|| default_port(transport))),
    ))
}

/// The host part of `uri` used for the lookup: `maddr` if present, else the host, without
/// IPv6 brackets.
fn lookup_host(uri: &Uri) -> &str {
    let host = match uri.param("maddr") {
        Some(Some(m)) if !m.is_empty() => m,
        _ => uri.host(),
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

impl Lookup {
    /// A lookup for `uri`. An IP literal (or a transport the policy refuses) is settled at
    /// once: [`Lookup::poll_query`] then returns `None`.
    pub fn new(uri: &Uri, policy: Policy, rng: &'static dyn SecureRandom) -> Self {
        let sips = uri.scheme() == Scheme::Sips;
        let host = lookup_host(uri).trim_end_matches('.').to_ascii_lowercase();
        let mut l = Lookup {
            domain: host.clone(),
            policy,
            sips,
            step: Step::Done,
            srv_names: Vec::new(),
            targets: Vec::new(),
            aaaa_next: false,
            asked: None,
            queries: 0,
            candidates: Vec::new(),
            no_such_name: false,
            failure: None,
            fallback: None,
            rng,
        };
        if !matches!(uri.scheme(), Scheme::Sip | Scheme::Sips) || host.is_empty() {
            return l;
        }
        let explicit = uri_transport(uri);
        if explicit.is_some_and(|t| !l.allows(t)) {
            return l;
        }
        let default_transport = if sips || policy.tls_only {
            TransportKind::Tls
        } else {
            TransportKind::Udp
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            let transport = explicit.unwrap_or(default_transport);
            let port = uri.port().unwrap_or_else(|| default_port(transport));
            l.candidates.push(Candidate {
                transport,
                addr: SocketAddr::new(ip, port),
                server_name: None,
            });
            return l;
        }
        match (uri.port(), explicit) {
            (Some(port), t) => {
                // §4.2: a port but no transport: UDP for sip:, TLS for sips:.
                let transport = t.unwrap_or(default_transport);
                l.targets.push(Target {
                    host,
                    port,
                    transport,
                });
                l.step = Step::Addresses;
            }
            (None, Some(t)) => {
                l.srv_names.push(SrvName {
                    name: srv_name(&host, t),
                    transport: t,
                });
                l.fallback = Some(Target {
                    host,
                    port: default_port(t),
                    transport: t,
                });
                l.step = Step::Srv;
            }
            (None, None) => {
                l.fallback = Some(Target {
                    host,
                    port: default_port(default_transport),
                    transport: default_transport,
                });
                l.step = Step::Naptr;
            }
        }
        l
    }

    /// The domain looked up.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    fn allows(&self, t: TransportKind) -> bool {
        !(self.sips || self.policy.tls_only) || t == TransportKind::Tls
    }

    /// The transports allowed, most preferred first (TLS first: secure by default).
    fn allowed(&self) -> Vec<TransportKind> {
        [TransportKind::Tls, TransportKind::Tcp, TransportKind::Udp]
            .into_iter()
            .filter(|t| self.allows(*t))
            .collect()
    }

    /// The next query to run, if any (one is outstanding until answered).
    pub fn poll_query(&mut self) -> Option<Query> {
        if let Some(q) = &self.asked {
            return Some(q.clone());
        }
        if self.queries >= MAX_QUERIES || self.candidates.len() >= MAX_CANDIDATES {
            self.step = Step::Done;
        }
        let q = match self.step {
            Step::Done => return None,
            Step::Naptr => Query {
                name: self.domain.clone(),
                record_type: RecordType::Naptr,
            },
            Step::Srv => match self.srv_names.first() {
                Some(s) => Query {
                    name: s.name.clone(),
                    record_type: RecordType::Srv,
                },
                None => {
                    self.after_srv();
                    return self.poll_query();
                }
            },
            Step::Addresses => match self.targets.first() {
                Some(t) => Query {
                    name: t.host.clone(),
                    record_type: if self.aaaa_next {
                        RecordType::Aaaa
                    } else {
                        RecordType::A
                    },
                },
                None => {
                    self.step = Step::Done;
                    return None;
                }
            },
        };
        self.queries += 1;
        self.asked = Some(q.clone());
        Some(q)
    }

    /// The answer to the query [`Lookup::poll_query`] gave last.
    pub fn handle_answer(&mut self, query: &Query, answer: Answer) {
        if self.asked.as_ref() != Some(query) {
            return;
        }
        self.asked = None;
        let records = match answer {
            Answer::Records(r) => r,
            Answer::NoSuchName => {
                if query.name == self.domain {
                    self.no_such_name = true;
                }
                Vec::new()
            }
            Answer::Failed(reason) => {
                self.failure.get_or_insert(reason);
                if self.candidates.is_empty() {
                    // DNS is not answering: every later query would wait as long again.
                    self.step = Step::Done;
                    return;
                }
                Vec::new()
            }
        };
        match query.record_type {
            RecordType::Naptr => self.on_naptr(&records),
            RecordType::Srv => self.on_srv(&records),
            RecordType::A | RecordType::Aaaa => self.on_addresses(query.record_type, &records),
        }
    }

    fn on_naptr(&mut self, records: &[Record]) {
        let mut naptrs: Vec<(u16, u16, TransportKind, String)> = records
            .iter()
            .filter_map(|r| match r {
                Record::Naptr {
                    order,
                    preference,
                    flags,
                    service,
                    replacement,
                } if flags.eq_ignore_ascii_case("s") => {
                    let t = naptr_transport(service)?;
                    self.allows(t).then(|| {
                        let name = replacement.trim_end_matches('.').to_ascii_lowercase();
                        (*order, *preference, t, name)
                    })
                }
                _ => None,
            })
            .collect();
        naptrs.sort_by_key(|(o, p, _, _)| (*o, *p));
        self.srv_names = if naptrs.is_empty() {
            // §4.1: no NAPTR, so SRV for each transport this side supports.
            let domain = self.domain.clone();
            self.allowed()
                .into_iter()
                .map(|t| SrvName {
                    name: srv_name(&domain, t),
                    transport: t,
                })
                .collect()
        } else {
            naptrs
                .into_iter()
                .map(|(_, _, transport, name)| SrvName { name, transport })
                .collect()
        };
        self.step = Step::Srv;
    }

    fn on_srv(&mut self, records: &[Record]) {
        if self.srv_names.is_empty() {
            return self.after_srv();
        }
        let this = self.srv_names.remove(0);
        let ordered = srv::order(records, self.rng);
        for (port, target) in ordered {
            self.targets.push(Target {
                host: target,
                port,
                transport: this.transport,
            });
        }
        if self.srv_names.is_empty() {
            self.after_srv();
        }
    }

    /// After the SRV names: their targets' addresses, or the host's own as the fallback.
    fn after_srv(&mut self) {
        if self.targets.is_empty()
            && let Some(f) = self.fallback.take()
        {
            self.targets.push(f);
        }
        self.step = Step::Addresses;
        self.aaaa_next = false;
    }

    fn on_addresses(&mut self, asked: RecordType, records: &[Record]) {
        let Some(target) = self.targets.first().cloned() else {
            self.step = Step::Done;
            return;
        };
        for r in records {
            let ip = match (asked, r) {
                (RecordType::A, Record::A(ip)) => IpAddr::V4(*ip),
                (RecordType::Aaaa, Record::Aaaa(ip)) => IpAddr::V6(*ip),
                _ => continue,
            };
            let c = Candidate {
                transport: target.transport,
                addr: SocketAddr::new(ip, target.port),
                server_name: (target.transport == TransportKind::Tls).then(|| self.domain.clone()),
            };
            if !self.candidates.contains(&c) && self.candidates.len() < MAX_CANDIDATES {
                self.candidates.push(c);
            }
        }
        if asked == RecordType::A {
            self.aaaa_next = true;
        } else {
            self.aaaa_next = false;
            self.targets.remove(0);
        }
    }

    /// The outcome, once [`Lookup::poll_query`] returns `None`: the candidates in the order
    /// to try them, or why there are none.
    pub fn result(&self) -> Result<Vec<Candidate>, ResolveError> {
        if !self.candidates.is_empty() {
            return Ok(self.candidates.clone());
        }
        if self.domain.is_empty() || self.queries == 0 {
            return Err(ResolveError::Unsupported(self.domain.clone()));
        }
        if let Some(reason) = &self.failure {
            return Err(ResolveError::Unavailable {
                domain: self.domain.clone(),
                reason: reason.clone(),
            });
        }
        if self.no_such_name {
            return Err(ResolveError::NoSuchDomain(self.domain.clone()));
        }
        Err(ResolveError::NoServer(self.domain.clone()))
    }
}

/// The SRV name of `transport` at `domain` (RFC 3263 §4.1).
fn srv_name(domain: &str, transport: TransportKind) -> String {
    match transport {
        TransportKind::Tls => format!("_sips._tcp.{domain}"),
        TransportKind::Tcp => format!("_sip._tcp.{domain}"),
        TransportKind::Udp => format!("_sip._udp.{domain}"),
    }
}

/// The transport of a NAPTR service field (RFC 3263 §4.1), if it is one we know.
fn naptr_transport(service: &str) -> Option<TransportKind> {
    match service.to_ascii_uppercase().as_str() {
        "SIPS+D2T" => Some(TransportKind::Tls),
        "SIP+D2T" => Some(TransportKind::Tcp),
        "SIP+D2U" => Some(TransportKind::Udp),
        _ => None,
    }
}
