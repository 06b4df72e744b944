//! The lookup steps of RFC 3263 against canned DNS answers.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use super::*;

fn rng() -> &'static dyn SecureRandom {
    sotto_crypto_rust::provider().rng
}

/// A canned DNS: answers by (name, type); anything else is NXDOMAIN or no data.
#[derive(Default)]
struct Zone {
    records: HashMap<(String, RecordType), Vec<Record>>,
    names: Vec<String>,
    failing: bool,
}

impl Zone {
    fn add(&mut self, name: &str, r: Record) {
        let t = match r {
            Record::Naptr { .. } => RecordType::Naptr,
            Record::Srv { .. } => RecordType::Srv,
            Record::A(_) => RecordType::A,
            Record::Aaaa(_) => RecordType::Aaaa,
        };
        self.records
            .entry((name.to_owned(), t))
            .or_default()
            .push(r);
        self.names.push(name.to_owned());
    }

    fn answer(&self, q: &Query) -> Answer {
        if self.failing {
            return Answer::Failed("time-out".into());
        }
        match self.records.get(&(q.name.clone(), q.record_type)) {
            Some(r) => Answer::Records(r.clone()),
            None if self.names.contains(&q.name) => Answer::Records(Vec::new()),
            None => Answer::NoSuchName,
        }
    }

    /// Runs a whole lookup; returns the result and the queries asked.
    fn run(&self, uri: &str, policy: Policy) -> (Result<Vec<Candidate>, ResolveError>, Vec<Query>) {
        let mut l = Lookup::new(&Uri::parse(uri).unwrap(), policy, rng());
        let mut asked = Vec::new();
        while let Some(q) = l.poll_query() {
            asked.push(q.clone());
            let a = self.answer(&q);
            l.handle_answer(&q, a);
        }
        (l.result(), asked)
    }
}

fn srv(priority: u16, weight: u16, port: u16, target: &str) -> Record {
    Record::Srv {
        priority,
        weight,
        port,
        target: target.into(),
    }
}

fn naptr(order: u16, pref: u16, service: &str, replacement: &str) -> Record {
    Record::Naptr {
        order,
        preference: pref,
        flags: "s".into(),
        service: service.into(),
        replacement: replacement.into(),
    }
}

const ANY: Policy = Policy { tls_only: false };
const TLS: Policy = Policy { tls_only: true };

fn addrs(c: &[Candidate]) -> Vec<String> {
    c.iter()
        .map(|c| format!("{}/{}", c.transport.as_str(), c.addr))
        .collect()
}

#[test]
fn ip_literals_need_no_dns() {
    let z = Zone::default();
    let (r, asked) = z.run("sip:10.0.0.1", ANY);
    assert!(asked.is_empty());
    assert_eq!(addrs(&r.unwrap()), ["udp/10.0.0.1:5060"]);
    let (r, _) = z.run("sips:[::1]", ANY);
    assert_eq!(addrs(&r.unwrap()), ["tls/[::1]:5061"]);
    let (r, _) = z.run("sip:127.0.0.1:5071;transport=tls", ANY);
    let c = r.unwrap();
    assert_eq!(addrs(&c), ["tls/127.0.0.1:5071"]);
    assert_eq!(c[0].server_name, None);
    let (r, _) = z.run("sip:127.0.0.1;transport=tcp", ANY);
    assert_eq!(addrs(&r.unwrap()), ["tcp/127.0.0.1:5060"]);
    // A TLS-only side refuses a plain transport, and a sips: URI never goes over UDP.
    assert!(matches!(
        z.run("sip:127.0.0.1;transport=udp", TLS).0,
        Err(ResolveError::Unsupported(_))
    ));
    assert!(matches!(
        z.run("sips:127.0.0.1;transport=udp", ANY).0,
        Err(ResolveError::Unsupported(_))
    ));
    // Not a SIP URI.
    assert!(z.run("tel:+123", ANY).0.is_err());
}

#[test]
fn naptr_then_srv_then_addresses() {
    let mut z = Zone::default();
    z.add(
        "example.test",
        naptr(20, 10, "SIP+D2U", "_sip._udp.example.test."),
    );
    z.add(
        "example.test",
        naptr(10, 10, "SIPS+D2T", "_sips._tcp.example.test."),
    );
    z.add(
        "example.test",
        naptr(10, 5, "X-FOO+D2X", "_foo.example.test."),
    );
    z.add(
        "_sips._tcp.example.test",
        srv(10, 0, 5061, "sip1.example.test."),
    );
    z.add(
        "_sip._udp.example.test",
        srv(10, 0, 5060, "sip1.example.test."),
    );
    z.add("sip1.example.test", Record::A(Ipv4Addr::new(192, 0, 2, 1)));
    z.add("sip1.example.test", Record::Aaaa(Ipv6Addr::LOCALHOST));
    let (r, asked) = z.run("sip:bob@Example.Test", ANY);
    let c = r.unwrap();
    assert_eq!(
        addrs(&c),
        [
            "tls/192.0.2.1:5061",
            "tls/[::1]:5061",
            "udp/192.0.2.1:5060",
            "udp/[::1]:5060"
        ]
    );
    // The TLS name is the domain, never the SRV target (RFC 5922 §4).
    assert_eq!(c[0].server_name.as_deref(), Some("example.test"));
    assert_eq!(c[2].server_name, None);
    assert_eq!(asked[0].record_type, RecordType::Naptr);
    assert_eq!(asked[1].name, "_sips._tcp.example.test");
    // A TLS-only lookup keeps the SIPS service only.
    let (r, _) = z.run("sip:bob@example.test", TLS);
    assert_eq!(addrs(&r.unwrap()), ["tls/192.0.2.1:5061", "tls/[::1]:5061"]);
}

#[test]
fn without_naptr_srv_of_each_transport_tls_first() {
    let mut z = Zone::default();
    z.add("b.example", Record::A(Ipv4Addr::new(192, 0, 2, 9)));
    z.add("_sip._udp.b.example", srv(1, 0, 5070, "udp.b.example"));
    z.add("_sips._tcp.b.example", srv(1, 0, 25061, "tls.b.example"));
    z.add("udp.b.example", Record::A(Ipv4Addr::new(192, 0, 2, 2)));
    z.add("tls.b.example", Record::A(Ipv4Addr::new(192, 0, 2, 3)));
    let (r, asked) = z.run("sip:b.example", ANY);
    assert_eq!(
        addrs(&r.unwrap()),
        ["tls/192.0.2.3:25061", "udp/192.0.2.2:5070"]
    );
    let srv_asked: Vec<&str> = asked
        .iter()
        .filter(|q| q.record_type == RecordType::Srv)
        .map(|q| q.name.as_str())
        .collect();
    assert_eq!(
        srv_asked,
        [
            "_sips._tcp.b.example",
            "_sip._tcp.b.example",
            "_sip._udp.b.example"
        ]
    );
    // sips: asks only for TLS.
    let (r, asked) = z.run("sips:b.example", ANY);
    assert_eq!(addrs(&r.unwrap()), ["tls/192.0.2.3:25061"]);
    assert!(asked.iter().all(|q| !q.name.starts_with("_sip._")));
}

#[test]
fn no_srv_falls_back_to_the_host_address() {
    let mut z = Zone::default();
    z.add("plain.test", Record::A(Ipv4Addr::new(192, 0, 2, 7)));
    let (r, _) = z.run("sip:plain.test", ANY);
    assert_eq!(addrs(&r.unwrap()), ["udp/192.0.2.7:5060"]);
    let (r, _) = z.run("sips:plain.test", ANY);
    assert_eq!(addrs(&r.unwrap()), ["tls/192.0.2.7:5061"]);
    let (r, _) = z.run("sip:plain.test", TLS);
    assert_eq!(addrs(&r.unwrap()), ["tls/192.0.2.7:5061"]);
    // A transport given: its SRV, else the host with the transport's default port.
    let (r, asked) = z.run("sip:plain.test;transport=tcp", ANY);
    assert_eq!(addrs(&r.unwrap()), ["tcp/192.0.2.7:5060"]);
    assert_eq!(asked[0].name, "_sip._tcp.plain.test");
    // A port given: no NAPTR/SRV at all (§4.2).
    let (r, asked) = z.run("sip:plain.test:7000", ANY);
    assert_eq!(addrs(&r.unwrap()), ["udp/192.0.2.7:7000"]);
    assert!(
        asked
            .iter()
            .all(|q| q.record_type == RecordType::A || q.record_type == RecordType::Aaaa)
    );
}

#[test]
fn failures_are_told_apart() {
    let z = Zone::default();
    assert_eq!(
        z.run("sip:nowhere.test", ANY).0,
        Err(ResolveError::NoSuchDomain("nowhere.test".into()))
    );
    let mut z = Zone::default();
    z.add(
        "empty.test",
        Record::Naptr {
            order: 1,
            preference: 1,
            flags: "u".into(),
            service: "E2U+sip".into(),
            replacement: ".".into(),
        },
    );
    assert_eq!(
        z.run("sip:empty.test", ANY).0,
        Err(ResolveError::NoServer("empty.test".into()))
    );
    let z = Zone {
        failing: true,
        ..Zone::default()
    };
    assert!(matches!(
        z.run("sip:down.test", ANY).0,
        Err(ResolveError::Unavailable { .. })
    ));
}

#[test]
fn srv_priority_then_weight() {
    let mut z = Zone::default();
    z.add("_sips._tcp.p.test", srv(20, 0, 2, "second.p.test"));
    z.add("_sips._tcp.p.test", srv(10, 5, 1, "first.p.test"));
    z.add("_sips._tcp.p.test", srv(30, 0, 3, ".")); // "no service": left out
    z.add("first.p.test", Record::A(Ipv4Addr::new(192, 0, 2, 1)));
    z.add("second.p.test", Record::A(Ipv4Addr::new(192, 0, 2, 2)));
    let (r, _) = z.run("sips:p.test", ANY);
    assert_eq!(addrs(&r.unwrap()), ["tls/192.0.2.1:1", "tls/192.0.2.2:2"]);
    // Within a priority, a weight-90 target comes first far more often than a weight-10 one.
    let records = vec![srv(1, 10, 1, "light"), srv(1, 90, 2, "heavy")];
    let heavy_first = (0..400)
        .filter(|_| srv::order(&records, rng())[0].1 == "heavy")
        .count();
    assert!((280..=400).contains(&heavy_first), "{heavy_first} of 400");
    // Every target is still tried.
    assert_eq!(srv::order(&records, rng()).len(), 2);
}

#[test]
fn a_peer_cannot_make_the_lookup_endless() {
    let mut z = Zone::default();
    for i in 0..100 {
        z.add(
            "_sips._tcp.many.test",
            srv(1, 1, 5061, &format!("h{i}.many.test")),
        );
    }
    let (r, asked) = z.run("sips:many.test", ANY);
    assert!(asked.len() <= MAX_QUERIES, "{}", asked.len());
    // None of the targets has an address here: nothing to try, and it says so.
    assert!(r.is_err());
}
