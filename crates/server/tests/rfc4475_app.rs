//! RFC 4475 §3.3 (application-layer semantics) through the whole server pipeline: every
//! vector of class `application` in `crates/sip/tests/vectors/rfc4475/index.json` (kept
//! byte-exact by sotto-sip, see its PROVENANCE.md) is fed to a `Proxy` serving `example.com`,
//! and the status it answers must be one the RFC names for a proxy or registrar.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

#[path = "../../sip/tests/vectors/rfc4475/cases.rs"]
mod rfc4475_cases;

use bytes::Bytes;
use sotto_server::{Packet, Proxy, ServerConfig};
use sotto_sip::transport::TransportKind;
use sotto_store::{BindingStore, MemoryStore};

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sip/tests/vectors/rfc4475")
}

/// What the server answers to `data` (statuses, in order), and its store.
fn run(data: &[u8], authentication: bool) -> (Vec<u16>, Arc<MemoryStore>) {
    let mut config = ServerConfig::for_domain("example.com");
    config.authentication.enabled = authentication;
    let store = Arc::new(MemoryStore::new());
    let now = Instant::now();
    let listen: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let mut proxy = Proxy::new(
        &config,
        vec![(TransportKind::Udp, listen)],
        store.clone(),
        store.clone(),
        sotto_crypto_rust::provider(),
        now,
    )
    .unwrap();
    let packet = Packet {
        data: Bytes::copy_from_slice(data),
        source: "192.0.2.10:5060".parse().unwrap(),
        transport: TransportKind::Udp,
        connection: None,
        client_identities: Vec::new(),
        client_domains: Vec::new(),
        local: std::net::SocketAddr::from(([127, 0, 0, 1], 5060)),
    };
    proxy.handle_packet(packet, now, SystemTime::now());
    let mut statuses = Vec::new();
    while let Some(t) = proxy.poll_transmit() {
        let text = String::from_utf8_lossy(&t.data).into_owned();
        assert!(
            text.starts_with("SIP/2.0 "),
            "the server only answers here: {text}"
        );
        statuses.push(text.get(8..11).and_then(|s| s.parse().ok()).unwrap_or(0));
    }
    (statuses, store)
}

/// Cases where a proxy/registrar legitimately does something the index's "any" role does not
/// list, with the reason.
fn proxy_deviation(name: &str) -> Option<&'static str> {
    match name {
        // RFC 3261 §16: a proxy does not process Accept; the INVITE is routed (no binding: 480).
        "sdp01" => Some("Accept is an endpoint matter"),
        _ => None,
    }
}

#[test]
fn application_layer_cases() {
    let mut checked = 0;
    for case in rfc4475_cases::cases(&vectors()) {
        if case.class != "application" {
            continue;
        }
        let (name, data) = (case.name.as_str(), &case.bytes);
        let codes = case.codes(&["any", "proxy", "registrar"]);
        // A registration the RFC expects to succeed is run without challenge-response.
        let register_ok = codes == [200];
        let (statuses, store) = run(data, !register_ok);
        checked += 1;
        if codes.is_empty() || proxy_deviation(name).is_some() {
            continue; // must not break (checked by running it); no code is named for us
        }
        assert_eq!(statuses.len(), 1, "{name}: {statuses:?}");
        assert!(
            codes.contains(&statuses[0]),
            "{name}: got {statuses:?}, want one of {codes:?}"
        );
        if register_ok {
            let aor = match name {
                "regescrt" => "sip:user@example.com",
                _ => "sip:watson@example.com",
            };
            let contacts: Vec<String> = store
                .bindings(aor, SystemTime::now())
                .unwrap()
                .into_iter()
                .map(|b| b.contact)
                .collect();
            let want = match name {
                "cparam01" => "sip:+19725552222@gw1.example.net",
                "cparam02" => "sip:+19725552222@gw1.example.net;unknownparam",
                "regescrt" => "sip:user@example.com?Route=%3Csip:sip.example.com%3E",
                other => panic!("unexpected registration case {other}"),
            };
            assert_eq!(contacts, vec![want.to_owned()], "{name}");
        }
    }
    assert_eq!(checked, 15, "every §3.3 vector is run");
}

/// RFC 4475 §3.1.2 (syntactically invalid messages) through the whole server over UDP: every
/// vector for which the RFC names a code gets exactly one response with one of those codes,
/// including those the parser cannot read past the start line (`ltgtruri`, `lwsruri`,
/// `badinv01`, `baddn`: answered from the headers it can still read).
#[test]
fn invalid_messages_get_the_status_the_rfc_names() {
    let mut checked = Vec::new();
    for case in rfc4475_cases::cases(&vectors()) {
        if !case.is_invalid() {
            continue;
        }
        let codes = case.codes(&["any"]);
        if codes.is_empty() {
            continue;
        }
        let (name, data) = (case.name.as_str(), &case.bytes);
        let (statuses, _) = run(data, true);
        assert_eq!(statuses.len(), 1, "{name}: {statuses:?}");
        assert!(
            codes.contains(&statuses[0]),
            "{name}: got {statuses:?}, want one of {codes:?}"
        );
        checked.push(name.to_owned());
    }
    for must in [
        "ltgtruri",
        "lwsruri",
        "badinv01",
        "baddn",
        "badvers",
        "badbranch",
    ] {
        assert!(
            checked.iter().any(|c| c == must),
            "{must} checked: {checked:?}"
        );
    }
}
