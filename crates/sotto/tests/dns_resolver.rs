//! RFC 3263 lookups of `sotto_net::dns::Resolver` against a real DNS server (dnsmasq on a
//! loopback port): NAPTR → SRV → A, SRV order, NXDOMAIN, answers kept for their TTL once the
//! server is gone, `/etc/hosts` names and IP literals without any server.

#[path = "common/dnsmasq.rs"]
mod dnsmasq;
#[path = "common/process.rs"]
mod process;

use std::time::Duration;

use dnsmasq::{Dnsmasq, Zone};
use process::scratch;
use sotto_net::dns::{DnsConfig, Resolver};
use sotto_sip::message::Uri;
use sotto_sip::resolve::{Policy, ResolveError};

const ANY: Policy = Policy { tls_only: false };

fn resolver(server: Option<std::net::SocketAddr>) -> Resolver {
    let config = DnsConfig {
        servers: server.into_iter().collect(),
        timeout: Duration::from_secs(1),
        attempts: 1,
        ..DnsConfig::default()
    };
    Resolver::new(&config, sotto_crypto_rust::provider().rng).expect("resolver")
}

fn texts(c: &[sotto_sip::resolve::Candidate]) -> Vec<String> {
    c.iter()
        .map(|c| {
            format!(
                "{}/{}/{}",
                c.transport.as_str(),
                c.addr,
                c.server_name.as_deref().unwrap_or("-")
            )
        })
        .collect()
}

#[tokio::test]
async fn naptr_srv_and_addresses_from_a_real_dns_server() {
    let dir = scratch("dns", "naptr");
    let zone = Zone::default()
        .domain("a.example")
        .domain("b.example")
        .naptr("a.example", 10, 10, "SIPS+D2T", "_sips._tcp.a.example")
        .srv("_sips._tcp.a.example", "sip1.a.example", 15061, 10, 0)
        .host("sip1.a.example", "127.0.0.1")
        // b.example: no NAPTR; two SRV targets, the first one preferred.
        .srv("_sips._tcp.b.example", "down.b.example", 25999, 10, 0)
        .srv("_sips._tcp.b.example", "up.b.example", 25061, 20, 0)
        .host("down.b.example", "127.0.0.2")
        .host("up.b.example", "127.0.0.3");
    let dns = Dnsmasq::start(&dir, &zone, 300);
    let r = resolver(Some(dns.addr));

    let a = r
        .resolve(&Uri::parse("sip:alice@a.example").unwrap(), ANY)
        .await
        .unwrap();
    assert_eq!(texts(&a), ["tls/127.0.0.1:15061/a.example"]);
    let b = r
        .resolve(&Uri::parse("sips:b.example").unwrap(), ANY)
        .await
        .unwrap();
    assert_eq!(
        texts(&b),
        [
            "tls/127.0.0.2:25999/b.example",
            "tls/127.0.0.3:25061/b.example"
        ]
    );
    assert_eq!(
        r.resolve(&Uri::parse("sip:x@nowhere.a.example").unwrap(), ANY)
            .await,
        Err(ResolveError::NoSuchDomain("nowhere.a.example".into()))
    );

    // Cached by TTL: the same answers once the server is gone.
    dns.stop();
    let again = r
        .resolve(&Uri::parse("sip:alice@a.example").unwrap(), ANY)
        .await
        .unwrap();
    assert_eq!(texts(&again), texts(&a));
    // A name never asked is not cached: the server's absence shows.
    let gone = r.resolve(&Uri::parse("sips:c.example").unwrap(), ANY).await;
    assert!(
        matches!(gone, Err(ResolveError::Unavailable { .. })),
        "{gone:?}"
    );
}

#[tokio::test]
async fn hosts_file_names_and_ip_literals_need_no_server() {
    // A name server that does not answer: localhost still resolves (from /etc/hosts).
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let r = resolver(Some(silent.local_addr().unwrap()));
    let c = r
        .resolve(&Uri::parse("sips:localhost:5061").unwrap(), ANY)
        .await
        .unwrap();
    assert!(
        texts(&c).contains(&"tls/127.0.0.1:5061/localhost".to_owned()),
        "{c:?}"
    );
    let c = r
        .resolve(&Uri::parse("sips:localhost").unwrap(), ANY)
        .await
        .unwrap();
    assert!(
        texts(&c).contains(&"tls/127.0.0.1:5061/localhost".to_owned()),
        "{c:?}"
    );
    let c = r
        .resolve(&Uri::parse("sip:10.1.2.3:5070;transport=tcp").unwrap(), ANY)
        .await
        .unwrap();
    assert_eq!(texts(&c), ["tcp/10.1.2.3:5070/-"]);
}
