//! sotto's LIME key server inside `sotto server` (the config `sotto init --domain
//! example.test` writes, unchanged but for `[lime] enabled`: 0.0.0.0:5061 and 0.0.0.0:8443),
//! with Linphone's liblime as a client: liblime
//! registers over HTTPS with digest against alice's SIP account, a sotto device of bob
//! registers the same way, and messages go both ways; the keys survive a restart of the
//! server (SQLite); a device id of another user, no credentials, a wrong password are
//! refused. `sotto agent keys status` registers the agent's device on first use, keeps its
//! keys in its data directory, and refills its one-time prekeys when liblime used one. Two
//! `sotto server` processes on one PostgreSQL database (a throwaway cluster) serve the same
//! keys, and never the same OPk twice, also to requests racing through both.

#[path = "common/agent.rs"]
mod agent;
#[path = "common/lime_client.rs"]
mod lime_client;
#[path = "common/pg_cluster.rs"]
mod pg_cluster;
#[path = "common/process.rs"]
mod process;
#[path = "common/sotto_server.rs"]
mod sotto_server;

use std::net::SocketAddr;

use lime_client::{Liblime, LimePoster, hex_or_dash, unhex};
use sotto_lime::protocol::Response;
use sotto_lime::{CurveId, EncryptionPolicy, LimeUser};
use sotto_server::{DataDir, Server, set};

const ALICE_DEV: &str = "sip:alice@example.test;gr=urn:uuid:0a11ce00-0000-4000-8000-000000000001";
const BOB_DEV: &str = "sip:bob@example.test;gr=urn:uuid:0b0b0000-0000-4000-8000-000000000002";

/// The config `sotto init --domain example.test` writes, with `users`, TLS and metrics on
/// ports of their own on loopback, and the key server on (`postgres_url` when given).
fn lime_data(dir: &std::path::Path, users: &[(&str, &str)], postgres_url: Option<&str>) -> DataDir {
    let data = DataDir::init_for(&dir.join("server"), "example.test", users);
    data.edit_config(|t| {
        set(t, "listen", "tls", sotto_server::addrs(&["127.0.0.1:0"]));
        set(t, "metrics", "enabled", toml::Value::Boolean(false));
        set(t, "lime", "enabled", toml::Value::Boolean(true));
        set(
            t,
            "lime",
            "listen",
            toml::Value::String("127.0.0.1:0".into()),
        );
        if let Some(url) = postgres_url {
            set(t, "lime", "postgres_url", toml::Value::String(url.into()));
        }
    });
    data
}

/// The config `sotto init --domain example.test` writes, unchanged but for `users` and
/// `[lime] enabled = true`: TLS on 0.0.0.0:5061, metrics on 127.0.0.1:9464, the key server on
/// 0.0.0.0:8443, as people run it. Callers hold [`process::DefaultPorts`].
fn lime_data_as_init(dir: &std::path::Path, users: &[(&str, &str)]) -> DataDir {
    let data = DataDir::init_for(&dir.join("server"), "example.test", users);
    data.edit_config(|t| set(t, "lime", "enabled", toml::Value::Boolean(true)));
    data
}

/// Where to connect for a listener reported on a wildcard address: loopback, same port.
fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::from(([127, 0, 0, 1], addr.port()))
    } else {
        addr
    }
}

fn start(data: &DataDir, name: &str) -> (Server, SocketAddr, String) {
    start_with(&data.config(), name)
}

fn start_with(config: &std::path::Path, name: &str) -> (Server, SocketAddr, String) {
    let mut server = Server::start(name, config, 1);
    server.wait_for(1, "lime event", |v| v["event"] == "lime");
    let ev = server
        .seen
        .iter()
        .find(|v| v["event"] == "lime")
        .cloned()
        .expect("lime event");
    let addr: SocketAddr = ev["addr"].as_str().unwrap().parse().unwrap();
    (
        server,
        reachable(addr),
        ev["url"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn liblime_and_a_sotto_device_use_sottos_key_server_over_https() {
    let _ports = process::DefaultPorts::lock();
    for curve in [CurveId::C25519, CurveId::C448] {
        let tmp = tempfile::tempdir().unwrap();
        let data = lime_data_as_init(tmp.path(), &[("alice", "alicepw"), ("bob", "bobpw")]);
        let (server, addr, url) = start(&data, "lime");
        assert_eq!(
            url, "https://example.test:8443/lime",
            "the default URL to give clients"
        );
        assert_eq!(addr.port(), 8443);
        let mut poster = LimePoster::new(addr, "example.test", &data.ca(), "/lime");

        // Refusals: no credentials is a challenge; another user's device, a wrong password.
        let (mut bob, reg) =
            LimeUser::create(sotto_crypto_rust::provider(), BOB_DEV, curve, 10).unwrap();
        let r = poster.raw(
            &[
                ("Content-Type", "x3dh/octet-stream".into()),
                ("X-Lime-user-identity", BOB_DEV.into()),
            ],
            &reg,
        );
        assert_eq!(r.status, 401);
        assert_eq!(
            poster.post(BOB_DEV, "alice", "alicepw", &reg).status,
            403,
            "alice may not act for bob's device"
        );
        assert_eq!(poster.post(BOB_DEV, "bob", "wrong", &reg).status, 403);
        let r = poster.post(BOB_DEV, "bob", "bobpw", &reg);
        assert_eq!(r.status, 200);
        assert!(matches!(
            Response::parse(curve, &r.body),
            Ok(Response::Ack(_))
        ));

        // liblime registers as alice's device and writes to bob first.
        let mut lime = Liblime::start(&tmp.path().join("liblime.sqlite"));
        let mut via_https = |from: &str, body: &[u8]| {
            assert_eq!(from, ALICE_DEV);
            let r = poster.post(from, "alice", "alicepw", body);
            (r.status, r.body)
        };
        let out = lime.run(
            &format!("create {ALICE_DEV} {} 20", curve.id()),
            &mut via_https,
        );
        assert_eq!(out, "OK", "liblime registered on sotto's key server");
        let out = lime.run(
            &format!(
                "encrypt {ALICE_DEV} sip:bob@example.test 1 {} {BOB_DEV}",
                hex_or_dash(b"hi bob, from liblime")
            ),
            &mut via_https,
        );
        let mut parts = out.split(' ');
        assert_eq!(parts.next(), Some("ENC"), "{out}");
        let cipher = unhex(parts.next().unwrap());
        let rec = parts.next().unwrap();
        let dr = unhex(rec.rsplit('|').next().unwrap());
        let (plain, _) = bob
            .decrypt(
                sotto_crypto_rust::provider(),
                ALICE_DEV,
                "sip:bob@example.test",
                &dr,
                &cipher,
            )
            .unwrap();
        assert_eq!(&plain[..], b"hi bob, from liblime");

        // The server restarts: alice's keys are still served (SQLite), bob answers a new
        // session to a second look-up.
        server.stop();
        let (_server, addr, _) = start(&data, "lime-again");
        let mut poster = LimePoster::new(addr, "example.test", &data.ca(), "/lime");
        let ask = bob.bundle_request(&[ALICE_DEV.to_owned()]);
        let r = poster.post(BOB_DEV, "bob", "bobpw", &ask);
        assert_eq!(r.status, 200);
        match Response::parse(curve, &r.body) {
            Ok(Response::PeerBundles(e)) => assert!(
                matches!(&e[0], sotto_lime::protocol::BundleEntry::Bundle(b) if b.opk.is_some()),
                "alice's bundle, with an OPk, after the restart"
            ),
            other => panic!("{other:?}"),
        }
        let reply = bob
            .encrypt(
                sotto_crypto_rust::provider(),
                "sip:alice@example.test",
                &[ALICE_DEV],
                b"hi liblime, from sotto",
                EncryptionPolicy::CipherMessage,
            )
            .unwrap();
        let mut via_https = |from: &str, body: &[u8]| {
            let r = poster.post(from, "alice", "alicepw", body);
            (r.status, r.body)
        };
        let out = lime.run(
            &format!(
                "decrypt {ALICE_DEV} sip:alice@example.test {BOB_DEV} {} {}",
                hex_or_dash(&reply.dr_messages[0].1),
                hex_or_dash(&reply.cipher_message)
            ),
            &mut via_https,
        );
        let plain = unhex(out.rsplit(' ').next().unwrap());
        assert_eq!(plain, b"hi liblime, from sotto", "{out}");
    }
}

fn keys_status(account: &agent::AgentAccount) -> serde_json::Value {
    let out = process::sotto()
        .args(["--json", "agent", "-c"])
        .arg(&account.config)
        .args(["keys", "status"])
        .output()
        .expect("run sotto agent keys status");
    assert!(
        out.status.success(),
        "keys status failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON line")
}

#[test]
fn an_agent_registers_its_keys_once_and_keeps_them() {
    let tmp = tempfile::tempdir().unwrap();
    let data = lime_data(
        tmp.path(),
        &[("alice", "alicepw"), ("carol", "carolpw")],
        None,
    );
    let (server, addr, _) = start(&data, "lime-agent");
    let url = format!("https://127.0.0.1:{}/lime", addr.port());
    let account = agent::AgentAccount::init_with(
        &tmp.path().join("carol"),
        "sip:carol@example.test",
        "carolpw",
        &format!("sips:{}", server.addr("tls")),
        &data.ca(),
        &["--lime-server", &url],
    );
    let first = keys_status(&account);
    assert_eq!(first["event"], "lime_keys", "{first}");
    assert_eq!(first["registered_now"], true, "{first}");
    assert_eq!(first["curve"], "c25519");
    assert_eq!(first["opks_on_server"], 100, "{first}");
    let device = first["device"].as_str().unwrap().to_owned();
    assert!(
        device.starts_with("sip:carol@example.test;gr=urn:uuid:"),
        "{device}"
    );
    let again = keys_status(&account);
    assert_eq!(
        again["registered_now"], false,
        "kept in the data directory: {again}"
    );
    assert_eq!(again["fingerprint"], first["fingerprint"]);
    // liblime (alice) writes to carol's device: one of its OPks is used; the next status
    // posts a batch.
    let mut poster = LimePoster::new(addr, "example.test", &data.ca(), "/lime");
    let mut lime = Liblime::start(&tmp.path().join("liblime.sqlite"));
    let mut via_https = |from: &str, body: &[u8]| {
        let r = poster.post(from, "alice", "alicepw", body);
        (r.status, r.body)
    };
    assert_eq!(
        lime.run(&format!("create {ALICE_DEV} 1 5"), &mut via_https),
        "OK"
    );
    let out = lime.run(
        &format!(
            "encrypt {ALICE_DEV} sip:carol@example.test 1 {} {device}",
            hex_or_dash(b"hi carol")
        ),
        &mut via_https,
    );
    assert!(out.starts_with("ENC "), "{out}");
    let third = keys_status(&account);
    assert_eq!(third["opks_posted"], 25, "{third}");
    assert_eq!(third["opks_on_server"], 124, "{third}");
    assert_eq!(
        third["opks_held"], 125,
        "the used OPk stays held until its message arrives"
    );
    server.stop();
}

/// Two servers, one PostgreSQL database: liblime registers through one, bundles come from
/// both; 100 OPks asked for by 8 threads through both servers are each served once.
#[test]
fn two_servers_on_one_postgresql_database_share_the_keys() {
    let pg = pg_cluster::PgCluster::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = lime_data(
        tmp.path(),
        &[("alice", "alicepw"), ("bob", "bobpw")],
        Some(&pg.url()),
    );
    // One config, two processes (their ports are the system's choice), each with its own
    // control socket as two machines would have: a second copy of the file names another.
    let (a, addr_a, _) = start(&data, "lime-pg-a");
    let second = data.dir.join("sotto-b.toml");
    let text = std::fs::read_to_string(data.config()).unwrap();
    let mut table: toml::Table = text.parse().unwrap();
    set(
        &mut table,
        "admin",
        "socket",
        toml::Value::String("admin-b.sock".into()),
    );
    std::fs::write(&second, toml::to_string(&table).unwrap()).unwrap();
    let (b, addr_b, _) = start_with(&second, "lime-pg-b");
    assert_ne!(addr_a, addr_b);
    let curve = CurveId::C25519;
    let mut pa = LimePoster::new(addr_a, "example.test", &data.ca(), "/lime");
    let mut lime = Liblime::start(&tmp.path().join("liblime.sqlite"));
    let mut via_a = |from: &str, body: &[u8]| {
        let r = pa.post(from, "alice", "alicepw", body);
        (r.status, r.body)
    };
    assert_eq!(
        lime.run(&format!("create {ALICE_DEV} 1 100"), &mut via_a),
        "OK"
    );
    let (bob, reg) = LimeUser::create(sotto_crypto_rust::provider(), BOB_DEV, curve, 0).unwrap();
    let mut pb = LimePoster::new(addr_b, "example.test", &data.ca(), "/lime");
    assert_eq!(pb.post(BOB_DEV, "bob", "bobpw", &reg).status, 200);
    let ask = std::sync::Arc::new(bob.bundle_request(&[ALICE_DEV.to_owned()]));
    let ca = data.ca();
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (ask, ca) = (ask.clone(), ca.clone());
            let addr = if i % 2 == 0 { addr_a } else { addr_b };
            std::thread::spawn(move || {
                let mut poster = LimePoster::new(addr, "example.test", &ca, "/lime");
                (0..15)
                    .filter_map(|_| {
                        let r = poster.post(BOB_DEV, "bob", "bobpw", &ask);
                        assert_eq!(r.status, 200);
                        match Response::parse(CurveId::C25519, &r.body) {
                            Ok(Response::PeerBundles(e)) => match &e[0] {
                                sotto_lime::protocol::BundleEntry::Bundle(b) => {
                                    b.opk.as_ref().map(|(_, id)| *id)
                                }
                                _ => panic!("no bundle for alice"),
                            },
                            other => panic!("{other:?}"),
                        }
                    })
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let mut ids: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        100,
        "liblime's 100 OPks all handed out (120 requests)"
    );
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "none twice, across both servers");
    a.stop();
    b.stop();
}
