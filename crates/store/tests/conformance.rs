//! The same behaviour tests for every store: each `check_*` function (in `common/mod.rs`)
//! takes any store, and is run here against [`MemoryStore`] and [`SqliteStore`] (in memory and
//! on disk); `redis_conformance.rs` runs them against `RedisStore`.

mod common;

use common::*;
use sotto_sip::digest::Algorithm;
use sotto_store::{BindingStore, Error, MemoryStore, SqliteStore, Upsert, UserStore};

#[test]
fn memory_store_users() {
    check_users(&MemoryStore::new());
}

#[test]
fn memory_store_bindings() {
    all_binding_checks(&|| Box::new(MemoryStore::new()));
}

#[test]
fn sqlite_in_memory_users() {
    check_users(&SqliteStore::open_in_memory().expect("open"));
}

#[test]
fn sqlite_in_memory_bindings() {
    all_binding_checks(&|| Box::new(SqliteStore::open_in_memory().expect("open")));
}

#[test]
fn sqlite_file_users_and_bindings() {
    let dir = tempfile::tempdir().expect("tempdir");
    check_users(&SqliteStore::open(&dir.path().join("users.db")).expect("open"));
    let n = std::cell::Cell::new(0);
    all_binding_checks(&|| {
        n.set(n.get() + 1);
        let path = dir.path().join(format!("b{}.db", n.get()));
        Box::new(SqliteStore::open(&path).expect("open"))
    });
}

#[test]
fn sqlite_survives_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sotto.db");
    let alice = record("alice", "example.test", "secret");
    let mut b = with_instance(contact(1), "urn:uuid:1", Some(1));
    b.path = vec!["<sip:edge.example.test;lr>".to_owned()];
    {
        let store = SqliteStore::open(&path).expect("open");
        store.create(&alice).expect("create");
        store.upsert(&b, t0()).expect("upsert");
        store.upsert(&contact(2), t0()).expect("upsert");
    }
    let store = SqliteStore::open(&path).expect("reopen");
    let got = store
        .get("alice", "example.test")
        .expect("get")
        .expect("kept");
    assert_eq!(
        hex(&got, "example.test", Algorithm::Sha256),
        hex(&alice, "example.test", Algorithm::Sha256)
    );
    let mut kept = store.bindings(AOR, at(1)).expect("bindings");
    kept.sort_by(|x, y| x.contact.cmp(&y.contact));
    assert_eq!(kept, vec![b, contact(2)]);
    // Order rules still apply after the restart.
    assert!(matches!(
        store.upsert(&contact(2), at(1)).expect("replay"),
        Upsert::OutOfOrder { .. }
    ));
    drop(store);

    // Schema version and WAL mode as documented; the file is private.
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    let v: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .expect("user_version");
    assert_eq!(v, sotto_store::SCHEMA_VERSION);
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .expect("journal_mode");
    assert_eq!(mode, "wal");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o077, 0, "database readable by others: {mode:o}");
    }
}

#[test]
fn sqlite_refuses_newer_schema_and_unknown_formats() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sotto.db");
    SqliteStore::open(&path)
        .expect("open")
        .upsert(&contact(1), t0())
        .expect("upsert");
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.execute("UPDATE bindings SET format = 2", [])
        .expect("bump format");
    drop(conn);
    let store = SqliteStore::open(&path).expect("open");
    assert!(matches!(
        store.bindings(AOR, t0()),
        Err(Error::UnknownFormat {
            record: "binding",
            found: 2,
            ..
        })
    ));
    drop(store);
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.pragma_update(None, "user_version", 99)
        .expect("bump schema");
    drop(conn);
    assert!(matches!(
        SqliteStore::open(&path),
        Err(Error::SchemaTooNew { found: 99, .. })
    ));
}

/// Rows of format 1 written by hand (tests/fixtures/format_v1.sql, not by this crate's writer)
/// still load.
#[test]
fn sqlite_reads_format_v1_fixture() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("v1.db");
    drop(SqliteStore::open(&path).expect("create schema"));
    let conn = rusqlite::Connection::open(&path).expect("raw open");
    conn.execute_batch(include_str!("fixtures/format_v1.sql"))
        .expect("load fixture");
    drop(conn);
    let store = SqliteStore::open(&path).expect("open");
    let user = store
        .get("alice", "example.test")
        .expect("get")
        .expect("fixture user");
    // HA1 = MD5("alice:example.test:secret") and SHA-256 of the same, computed independently.
    assert_eq!(
        hex(&user, "example.test", Algorithm::Md5),
        hex(
            &record("alice", "example.test", "secret"),
            "example.test",
            Algorithm::Md5
        )
    );
    assert_eq!(
        hex(&user, "example.test", Algorithm::Sha256),
        hex(
            &record("alice", "example.test", "secret"),
            "example.test",
            Algorithm::Sha256
        )
    );
    let bindings = store.bindings(AOR, t0()).expect("bindings");
    assert_eq!(bindings.len(), 1);
    let b = &bindings[0];
    assert_eq!(b.contact, "sip:alice@192.0.2.1:5061;transport=tls");
    assert_eq!(
        b.instance_id.as_deref(),
        Some("urn:uuid:00000000-0000-1000-8000-000a95a0e128")
    );
    assert_eq!(b.reg_id, Some(1));
    assert_eq!(b.cseq, 7);
    assert_eq!(b.expires_at, at(3600));
    assert_eq!(b.q, Some(0.5));
    assert_eq!(
        b.path,
        vec!["<sip:edge1.example.test;lr>", "<sip:edge2.example.test;lr>"]
    );
    assert_eq!(b.source, Some("127.0.0.1:40000".parse().expect("addr")));
    assert_eq!(b.transport.as_deref(), Some("TLS"));
    assert_eq!(
        b.temp_gruu.as_deref(),
        Some("sip:tgruu.abc@example.test;gr")
    );
    assert_eq!(store.list().expect("list").len(), 1);
}

#[test]
fn stores_are_object_safe_and_shareable() {
    fn assert_send_sync<T: Send + Sync + ?Sized>() {}
    assert_send_sync::<dyn UserStore>();
    assert_send_sync::<dyn BindingStore>();
    let shared: std::sync::Arc<dyn BindingStore> =
        std::sync::Arc::new(SqliteStore::open_in_memory().expect("open"));
    let handles: Vec<_> = (1..=4u32)
        .map(|n| {
            let s = shared.clone();
            std::thread::spawn(move || s.upsert(&contact(n), t0()).expect("upsert"))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().expect("thread"), Upsert::Inserted);
    }
    assert_eq!(shared.count().expect("count"), 4);
}
