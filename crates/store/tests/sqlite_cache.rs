//! The SQLite store's user (HA1) cache and its cached-statement transactions: a change made
//! through another connection to the same file (what `sotto user passwd` does while the
//! server runs) is seen by the next lookup, and a transaction left unfinished (an
//! out-of-order REGISTER) neither blocks the store nor other connections.

use std::time::{Duration, SystemTime};

use sotto_sip::digest::{Algorithm, UserRecord};
use sotto_store::{Binding, BindingStore, SqliteStore, Upsert, UserStore};

const REALM: &str = "example.test";

fn record(user: &str, password: &str) -> UserRecord {
    let mut r = UserRecord::new(user);
    r.set_password(
        sotto_crypto_rust::provider(),
        REALM,
        password,
        &[Algorithm::Md5, Algorithm::Sha256],
    )
    .expect("derive HA1");
    r
}

/// The stored MD5 HA1 of `user` as `store` answers it, if any.
fn md5_of(store: &SqliteStore, user: &str) -> Option<String> {
    store
        .get(user, REALM)
        .expect("get")
        .and_then(|r| r.ha1(REALM, Algorithm::Md5).map(|h| h.as_hex().to_owned()))
}

fn hex(r: &UserRecord) -> String {
    r.ha1(REALM, Algorithm::Md5)
        .expect("md5")
        .as_hex()
        .to_owned()
}

#[test]
fn another_connections_user_changes_are_seen_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sotto.db");
    let server = SqliteStore::open(&path).expect("open server side");
    let cli = SqliteStore::open(&path).expect("open CLI side");

    let first = record("alice", "first password");
    cli.create(&first).expect("create");
    assert_eq!(md5_of(&server, "alice"), Some(hex(&first)));
    // Asked again: the same answer (from the cache this time).
    assert_eq!(md5_of(&server, "alice"), Some(hex(&first)));

    let second = record("alice", "second password");
    assert_ne!(hex(&first), hex(&second));
    cli.put(&second).expect("passwd");
    assert_eq!(md5_of(&server, "alice"), Some(hex(&second)));

    assert!(cli.delete("alice").expect("delete"));
    assert_eq!(md5_of(&server, "alice"), None);

    let third = record("alice", "third password");
    cli.create(&third).expect("create again");
    assert_eq!(md5_of(&server, "alice"), Some(hex(&third)));
    // Other users and realms are unaffected; an unknown user stays unknown.
    assert_eq!(md5_of(&server, "bob"), None);
    assert!(server.get("alice", "other.test").expect("get").is_none());
}

#[test]
fn own_user_changes_are_seen_at_once() {
    let store = SqliteStore::open_in_memory().expect("open");
    let first = record("alice", "one");
    store.put(&first).expect("put");
    assert_eq!(md5_of(&store, "alice"), Some(hex(&first)));
    let second = record("alice", "two");
    store.put(&second).expect("put again");
    assert_eq!(md5_of(&store, "alice"), Some(hex(&second)));
    assert!(store.delete("alice").expect("delete"));
    assert_eq!(md5_of(&store, "alice"), None);
    store.create(&first).expect("create");
    assert_eq!(md5_of(&store, "alice"), Some(hex(&first)));
}

#[test]
fn binding_writes_of_the_same_store_keep_user_lookups_right() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sotto.db");
    let server = SqliteStore::open(&path).expect("open");
    let cli = SqliteStore::open(&path).expect("open CLI side");
    let alice = record("alice", "pw");
    server.put(&alice).expect("put");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for cseq in 1..=3u32 {
        assert_eq!(md5_of(&server, "alice"), Some(hex(&alice)));
        let b = Binding::new(
            "sip:alice@example.test",
            "sip:alice@127.0.0.1:5070",
            "call-1",
            cseq,
            now + Duration::from_secs(600),
        );
        let outcome = server.upsert(&b, now).expect("upsert");
        assert!(matches!(outcome, Upsert::Inserted | Upsert::Updated { .. }));
    }
    let changed = record("alice", "changed");
    cli.put(&changed).expect("passwd");
    assert_eq!(md5_of(&server, "alice"), Some(hex(&changed)));
}

#[test]
fn unfinished_write_transaction_is_rolled_back_and_releases_the_lock() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sotto.db");
    let server = SqliteStore::open(&path).expect("open");
    let other = SqliteStore::open(&path).expect("open other");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let at = |cseq: u32, contact: &str| {
        Binding::new(
            "sip:alice@example.test",
            contact,
            "call-1",
            cseq,
            now + Duration::from_secs(600),
        )
    };
    assert_eq!(
        server
            .upsert(&at(5, "sip:a@127.0.0.1"), now)
            .expect("insert"),
        Upsert::Inserted
    );
    // Same Call-ID, lower CSeq: refused, and its transaction ends without a commit.
    assert!(matches!(
        server
            .upsert(&at(4, "sip:a@127.0.0.1"), now)
            .expect("out of order"),
        Upsert::OutOfOrder { .. }
    ));
    // The other connection can write at once (no lock left behind: its busy timeout would
    // otherwise fail the write after 5 s) ...
    other
        .put(&record("bob", "pw"))
        .expect("write from the other connection");
    assert!(other.get("bob", REALM).expect("get").is_some());
    // ... and the store itself can begin new transactions.
    assert!(matches!(
        server
            .upsert(&at(6, "sip:a@127.0.0.1"), now)
            .expect("refresh"),
        Upsert::Updated { .. }
    ));
    let stored = other
        .bindings("sip:alice@example.test", now)
        .expect("bindings");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored.first().map(|b| b.cseq), Some(6));
}

#[test]
fn a_batch_commits_its_writes_together_at_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("sotto.db");
    let server = SqliteStore::open(&path).expect("open");
    let reader = SqliteStore::open(&path).expect("open reader");
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let binding = |user: &str, cseq: u32| {
        Binding::new(
            format!("sip:{user}@example.test"),
            format!("sip:{user}@127.0.0.1:5070"),
            format!("call-{user}"),
            cseq,
            now + Duration::from_secs(600),
        )
    };
    let aor = |user: &str| format!("sip:{user}@example.test");

    // A batch without writes takes no write lock: another connection writes meanwhile.
    server.batch_begin().expect("begin");
    assert!(
        server
            .bindings(&aor("alice"), now)
            .expect("read")
            .is_empty()
    );
    reader
        .put(&record("carol", "pw"))
        .expect("write during a read-only batch");
    server.batch_end().expect("end");

    server.batch_begin().expect("begin");
    assert_eq!(
        server.upsert(&binding("alice", 2), now).expect("alice"),
        Upsert::Inserted
    );
    // Out of order inside the batch: refused, and only that write is undone.
    assert!(matches!(
        server
            .upsert(&binding("alice", 1), now)
            .expect("out of order"),
        Upsert::OutOfOrder { .. }
    ));
    assert_eq!(
        server.upsert(&binding("bob", 1), now).expect("bob"),
        Upsert::Inserted
    );
    // The store sees its own batch; another connection does not, until the batch ends.
    assert_eq!(
        server.bindings(&aor("bob"), now).expect("own read").len(),
        1
    );
    assert!(
        reader
            .bindings(&aor("alice"), now)
            .expect("read")
            .is_empty()
    );
    assert!(reader.bindings(&aor("bob"), now).expect("read").is_empty());
    server.batch_end().expect("end");
    assert_eq!(reader.bindings(&aor("alice"), now).expect("read").len(), 1);
    assert_eq!(reader.bindings(&aor("bob"), now).expect("read").len(), 1);
    assert_eq!(
        reader
            .bindings(&aor("alice"), now)
            .expect("read")
            .first()
            .map(|b| b.cseq),
        Some(2)
    );

    // After the batch, writes commit one by one again, and the lock is free.
    assert!(matches!(
        server.upsert(&binding("bob", 2), now).expect("refresh"),
        Upsert::Updated { .. }
    ));
    reader
        .put(&record("dave", "pw"))
        .expect("write after the batch");
    assert_eq!(
        reader
            .bindings(&aor("bob"), now)
            .expect("read")
            .first()
            .map(|b| b.cseq),
        Some(2)
    );
}

#[test]
fn more_users_than_the_cache_holds_are_all_answered_right() {
    let store = SqliteStore::open_in_memory().expect("open");
    // More than the cache's 4096 entries: it is emptied when full and refilled.
    let n = 4200;
    let ha1 = |i: usize| {
        sotto_sip::digest::Ha1::from_hex(Algorithm::Md5, &format!("{i:032x}")).expect("hex")
    };
    for i in 0..n {
        let mut r = UserRecord::new(format!("u{i}"));
        r.insert(REALM, ha1(i));
        store.put(&r).expect("put");
    }
    for round in 0..2 {
        for i in 0..n {
            assert_eq!(
                md5_of(&store, &format!("u{i}")),
                Some(format!("{i:032x}")),
                "user {i}, round {round}"
            );
        }
    }
}
