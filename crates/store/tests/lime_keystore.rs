//! The LIME key server's stores (memory, SQLite) behind the key server logic: registration,
//! bundles (an OPk served once), limits, deletion; and an OPk served at most once to many
//! threads taking bundles through two handles on one SQLite file (two server processes).

use std::sync::Arc;

use sotto_lime::keyserver::{KeyServer, KeyStore, Limits, MemoryKeyStore};
use sotto_lime::protocol::{BundleEntry, Request, Response};
use sotto_lime::{CurveId, LimeUser};
use sotto_store::SqliteKeyStore;

#[path = "../../sotto/tests/common/pg_cluster.rs"]
mod pg_cluster;
use pg_cluster::PgCluster;

fn p() -> &'static sotto_crypto::CryptoProvider {
    sotto_crypto_rust::provider()
}

fn limits() -> Limits {
    Limits {
        max_opks: 100,
        max_bundle_devices: 10,
    }
}

fn opk_of(reply: &[u8]) -> Option<u32> {
    match Response::parse(CurveId::C25519, reply).unwrap() {
        Response::PeerBundles(e) => match &e[0] {
            BundleEntry::Bundle(b) => b.opk.as_ref().map(|(_, id)| *id),
            BundleEntry::NoBundle(_) => panic!("no bundle"),
        },
        other => panic!("{other:?}"),
    }
}

fn behaves<S: KeyStore>(store: S) {
    let ks = KeyServer::new(store, vec![CurveId::C25519], limits());
    let (mut bob, reg) = LimeUser::create(p(), "bob", CurveId::C25519, 3).unwrap();
    assert!(Response::parse(CurveId::C25519, &ks.handle("bob", &reg)).is_ok());
    assert!(
        Response::parse(CurveId::C25519, &ks.handle("bob", &reg)).is_err(),
        "twice"
    );
    let (alice, reg) = LimeUser::create(p(), "alice", CurveId::C25519, 0).unwrap();
    ks.handle("alice", &reg);
    let ask = alice.bundle_request(&["bob".into()]);
    let served: Vec<Option<u32>> = (0..4).map(|_| opk_of(&ks.handle("alice", &ask))).collect();
    assert!(served[..3].iter().all(Option::is_some));
    assert_eq!(served[3], None, "three OPks, then bundles without");
    let mut ids: Vec<u32> = served.iter().flatten().copied().collect();
    ids.dedup();
    assert_eq!(ids.len(), 3);
    // Refill, list, limit.
    let more = bob.new_opks(p(), 5).unwrap();
    assert!(Response::parse(CurveId::C25519, &ks.handle("bob", &more)).is_ok());
    match Response::parse(
        CurveId::C25519,
        &ks.handle("bob", &Request::GetSelfOpks.encode(CurveId::C25519)),
    ) {
        Ok(Response::SelfOpks(ids)) => assert_eq!(ids.len(), 5),
        other => panic!("{other:?}"),
    }
    let too_many = bob.new_opks(p(), 100).unwrap();
    assert!(Response::parse(CurveId::C25519, &ks.handle("bob", &too_many)).is_err());
    // A new SPk is served from then on.
    let spk = bob.rotate_spk(p(), 1, 1_000_000).unwrap();
    assert!(Response::parse(CurveId::C25519, &ks.handle("bob", &spk)).is_ok());
    // Deletion.
    let del = Request::DeleteUser.encode(CurveId::C25519);
    assert!(Response::parse(CurveId::C25519, &ks.handle("bob", &del)).is_ok());
    match Response::parse(CurveId::C25519, &ks.handle("alice", &ask)) {
        Ok(Response::PeerBundles(e)) => assert!(matches!(e[0], BundleEntry::NoBundle(_))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn memory_and_sqlite_stores_behave_alike() {
    behaves(MemoryKeyStore::default());
    behaves(SqliteKeyStore::in_memory().unwrap());
    let dir = tempfile::tempdir().unwrap();
    behaves(SqliteKeyStore::open(&dir.path().join("lime.sqlite")).unwrap());
}

/// 8 threads take bundles of a device holding 100 OPks through two key servers on one
/// store (`open` makes each handle: two processes' worth), 40 requests each: all 100 are
/// served, none twice.
fn opks_served_once<S: KeyStore + 'static>(open: impl Fn() -> S, tag: &str) {
    let servers: Vec<Arc<KeyServer<S>>> = (0..2)
        .map(|_| Arc::new(KeyServer::new(open(), vec![CurveId::C25519], limits())))
        .collect();
    let (bob, alice) = (format!("bob-{tag}"), format!("alice-{tag}"));
    let (_, reg) = LimeUser::create(p(), &bob, CurveId::C25519, 100).unwrap();
    servers[0].handle(&bob, &reg);
    let (asker, reg) = LimeUser::create(p(), &alice, CurveId::C25519, 0).unwrap();
    servers[1].handle(&alice, &reg);
    let ask = Arc::new(asker.bundle_request(std::slice::from_ref(&bob)));
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (ks, ask, alice) = (servers[i % 2].clone(), ask.clone(), alice.clone());
            std::thread::spawn(move || {
                (0..40)
                    .filter_map(|_| opk_of(&ks.handle(&alice, &ask)))
                    .collect::<Vec<u32>>()
            })
        })
        .collect();
    let mut ids: Vec<u32> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    assert_eq!(ids.len(), 100);
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 100, "no OPk served twice");
}

#[test]
fn an_opk_is_served_once_across_threads_and_handles_on_one_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lime.sqlite");
    opks_served_once(|| SqliteKeyStore::open(&path).unwrap(), "sqlite");
}

/// The same behaviour on PostgreSQL, and the same single service of OPks through two stores
/// (two connection pools, as two key-server processes) on one database.
#[test]
fn postgres_store_behaves_alike_and_serves_each_opk_once_across_two_stores() {
    let pg = PgCluster::start();
    behaves(sotto_store::PgKeyStore::connect(&pg.url()).unwrap());
    opks_served_once(
        || sotto_store::PgKeyStore::connect(&pg.url()).unwrap(),
        "pg",
    );
}
