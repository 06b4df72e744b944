//! The behaviour checks every binding and user store must pass, shared by the test files of
//! each store (`conformance.rs`: memory and SQLite; `redis_conformance.rs`: Redis). Each
//! `check_*` function takes any store.

// Each test file uses part of this module; the rest would be dead code in that file.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sotto_sip::digest::{Algorithm, UserRecord};
use sotto_store::{Binding, BindingKey, BindingStore, Error, Upsert, UserStore};

pub(crate) const AOR: &str = "sip:alice@example.test";

pub(crate) fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

pub(crate) fn at(secs: u64) -> SystemTime {
    t0() + Duration::from_secs(secs)
}

pub(crate) fn record(user: &str, realm: &str, password: &str) -> UserRecord {
    let mut r = UserRecord::new(user);
    r.set_password(
        sotto_crypto_rust::provider(),
        realm,
        password,
        &[Algorithm::Sha256, Algorithm::Md5],
    )
    .expect("HA1 derivation");
    r
}

pub(crate) fn hex(r: &UserRecord, realm: &str, a: Algorithm) -> String {
    r.ha1(realm, a).expect("ha1 present").as_hex().to_owned()
}

pub(crate) fn contact(n: u32) -> Binding {
    Binding::new(
        AOR,
        format!("sip:alice@192.0.2.{n}:5061;transport=tls"),
        format!("call-{n}"),
        1,
        at(3600),
    )
}

pub(crate) fn with_instance(mut b: Binding, instance: &str, reg_id: Option<u32>) -> Binding {
    b.instance_id = Some(instance.to_owned());
    b.reg_id = reg_id;
    b
}

pub(crate) fn contacts_of(store: &dyn BindingStore, now: SystemTime) -> Vec<String> {
    let mut v: Vec<String> = store
        .bindings(AOR, now)
        .expect("bindings")
        .into_iter()
        .map(|b| b.contact)
        .collect();
    v.sort();
    v
}

// ---- user store ----

pub(crate) fn check_users(store: &dyn UserStore) {
    assert!(store.list().expect("list").is_empty());
    assert!(store.get("alice", "example.test").expect("get").is_none());

    let alice = record("alice", "example.test", "correct horse");
    store.create(&alice).expect("create");
    let got = store
        .get("alice", "example.test")
        .expect("get")
        .expect("stored");
    assert_eq!(got.username(), "alice");
    for a in [Algorithm::Md5, Algorithm::Sha256] {
        assert_eq!(hex(&got, "example.test", a), hex(&alice, "example.test", a));
    }
    assert!(store.get("alice", "other.test").expect("get").is_none());
    assert!(store.get("bob", "example.test").expect("get").is_none());

    // A second create of the same user and realm fails and changes nothing.
    let again = record("alice", "example.test", "another");
    match store.create(&again) {
        Err(Error::UserExists { username, realm }) => {
            assert_eq!(
                (username.as_str(), realm.as_str()),
                ("alice", "example.test")
            );
        }
        other => panic!("expected UserExists, got {other:?}"),
    }
    let still = store
        .get("alice", "example.test")
        .expect("get")
        .expect("stored");
    assert_eq!(
        hex(&still, "example.test", Algorithm::Sha256),
        hex(&alice, "example.test", Algorithm::Sha256)
    );

    // put replaces (a password change).
    store.put(&again).expect("put");
    let changed = store
        .get("alice", "example.test")
        .expect("get")
        .expect("stored");
    assert_eq!(
        hex(&changed, "example.test", Algorithm::Sha256),
        hex(&again, "example.test", Algorithm::Sha256)
    );
    assert_ne!(
        hex(&changed, "example.test", Algorithm::Md5),
        hex(&alice, "example.test", Algorithm::Md5)
    );

    // A second realm leaves the first alone; list reports both, sorted, without secrets.
    store
        .put(&record("alice", "b.test", "pw"))
        .expect("put second realm");
    store
        .create(&record("bob", "example.test", "pw2"))
        .expect("create bob");
    let list = store.list().expect("list");
    let rows: Vec<(&str, &str, Vec<Algorithm>)> = list
        .iter()
        .map(|u| (u.username.as_str(), u.realm.as_str(), u.algorithms.clone()))
        .collect();
    let both = vec![Algorithm::Md5, Algorithm::Sha256];
    assert_eq!(
        rows,
        vec![
            ("alice", "b.test", both.clone()),
            ("alice", "example.test", both.clone()),
            ("bob", "example.test", both),
        ]
    );
    assert!(store.get("alice", "example.test").expect("get").is_some());

    assert!(store.delete("alice").expect("delete"));
    assert!(!store.delete("alice").expect("delete again"));
    assert!(store.get("alice", "b.test").expect("get").is_none());
    let names: Vec<String> = store
        .list()
        .expect("list")
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, vec!["bob".to_owned()]);

    // Records the store must refuse.
    assert!(matches!(
        store.create(&UserRecord::new("carol")),
        Err(Error::InvalidRecord { .. })
    ));
    assert!(matches!(
        store.put(&record("", "example.test", "x")),
        Err(Error::InvalidRecord { field: "username" })
    ));
}

// ---- binding store ----

pub(crate) fn check_multiple_contacts(store: &dyn BindingStore) {
    for n in 1..=3 {
        assert_eq!(
            store.upsert(&contact(n), t0()).expect("upsert"),
            Upsert::Inserted
        );
    }
    let mut other = contact(9);
    other.aor = "sip:bob@example.test".to_owned();
    store.upsert(&other, t0()).expect("upsert bob");
    assert_eq!(contacts_of(store, t0()).len(), 3);
    assert_eq!(
        store
            .bindings("sip:bob@example.test", t0())
            .expect("b")
            .len(),
        1
    );
    assert!(
        store
            .bindings("sip:carol@example.test", t0())
            .expect("c")
            .is_empty()
    );
    assert_eq!(store.count().expect("count"), 4);
}

pub(crate) fn check_round_trip(store: &dyn BindingStore) {
    let mut b = with_instance(
        contact(1),
        "urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6",
        Some(1),
    );
    b.contact_params =
        ";+sip.instance=\"<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>\";reg-id=1".to_owned();
    b.q = Some(0.5);
    b.path = vec![
        "<sip:edge1.example.test;lr;ob>".to_owned(),
        "<sip:edge2.example.test;lr>".to_owned(),
    ];
    b.source = Some("[::1]:40123".parse::<SocketAddr>().expect("addr"));
    b.transport = Some("TLS".to_owned());
    b.flow = Some("conn-17".to_owned());
    b.user_agent = Some("Linphone/5.2".to_owned());
    b.temp_gruu = Some("sip:tgruu.7hs==jd7vnzga5w7fajsc7-ajd6fabz0f8g5@example.test;gr".to_owned());
    b.expires_at = at(3600) + Duration::from_millis(750);
    assert_eq!(store.upsert(&b, t0()).expect("upsert"), Upsert::Inserted);
    let got = store.bindings(AOR, t0()).expect("bindings");
    let mut expected = b.clone();
    expected.expires_at = at(3600); // stored to the second
    assert_eq!(got, vec![expected.clone()]);

    let gruu = b.temp_gruu.clone().expect("set");
    assert_eq!(
        store.by_temp_gruu(&gruu, t0()).expect("by gruu"),
        Some(expected)
    );
    assert_eq!(
        store
            .by_temp_gruu("sip:nope@example.test;gr", t0())
            .expect("x"),
        None
    );
    assert_eq!(store.by_temp_gruu(&gruu, at(3600)).expect("expired"), None);

    // Values the stored format cannot hold are refused.
    let mut bad = contact(2);
    bad.q = Some(1.5);
    assert!(matches!(
        store.upsert(&bad, t0()),
        Err(Error::InvalidRecord { field: "q" })
    ));
    let mut bad = contact(2);
    bad.path = vec!["<sip:a;lr>\r\nX-Injected: 1".to_owned()];
    assert!(matches!(
        store.upsert(&bad, t0()),
        Err(Error::InvalidRecord { field: "path" })
    ));
    assert_eq!(store.count().expect("count"), 1);
}

pub(crate) fn check_expiry(store: &dyn BindingStore) {
    let mut short = contact(1);
    short.expires_at = at(60);
    store.upsert(&short, t0()).expect("upsert");
    store.upsert(&contact(2), t0()).expect("upsert");
    assert_eq!(contacts_of(store, at(59)).len(), 2);
    assert_eq!(contacts_of(store, at(60)), vec![contact(2).contact]);
    // Expired but not purged: still counted, never returned.
    assert_eq!(store.count().expect("count"), 2);
    assert_eq!(store.purge_expired(at(60)).expect("purge"), 1);
    assert_eq!(store.count().expect("count"), 1);
    assert_eq!(store.purge_expired(at(60)).expect("purge"), 0);

    // A binding registered again after it expired is a new one, whatever its CSeq.
    let mut late = contact(2);
    late.expires_at = at(7200);
    assert!(matches!(
        store.upsert(&late, at(3600)).expect("upsert"),
        Upsert::Inserted
    ));
}

pub(crate) fn check_refresh_and_order(store: &dyn BindingStore) {
    store.upsert(&contact(1), t0()).expect("upsert");
    let mut refresh = contact(1);
    refresh.cseq = 2;
    refresh.expires_at = at(4000);
    match store.upsert(&refresh, at(10)).expect("refresh") {
        Upsert::Updated { previous } => assert_eq!(previous.cseq, 1),
        other => panic!("expected Updated, got {other:?}"),
    }
    // Same Call-ID, CSeq not higher: out of order, nothing changes (RFC 3261 §10.3 step 7).
    let mut stale = contact(1);
    stale.cseq = 2;
    stale.expires_at = at(9999);
    match store.upsert(&stale, at(20)).expect("stale") {
        Upsert::OutOfOrder { existing } => assert_eq!(existing.expires_at, at(4000)),
        other => panic!("expected OutOfOrder, got {other:?}"),
    }
    let mut unregister_stale = contact(1);
    unregister_stale.cseq = 1;
    unregister_stale.expires_at = at(20);
    assert!(matches!(
        store
            .upsert(&unregister_stale, at(20))
            .expect("stale unregister"),
        Upsert::OutOfOrder { .. }
    ));
    assert_eq!(
        store.bindings(AOR, at(20)).expect("b")[0].expires_at,
        at(4000)
    );
    // A different Call-ID replaces whatever its CSeq (the UA restarted).
    let mut restarted = contact(1);
    restarted.call_id = "new-call-id".to_owned();
    restarted.cseq = 1;
    assert!(matches!(
        store.upsert(&restarted, at(30)).expect("restart"),
        Upsert::Updated { .. }
    ));
    let now = store.bindings(AOR, at(30)).expect("b");
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].call_id, "new-call-id");
}

pub(crate) fn check_instance_replacement(store: &dyn BindingStore) {
    let inst = "urn:uuid:00000000-0000-1000-8000-000a95a0e128";
    // Same instance, new contact URI (the device moved): replaces, RFC 5627 §5 / 5626 §6.
    store
        .upsert(&with_instance(contact(1), inst, None), t0())
        .expect("upsert");
    let mut moved = with_instance(contact(2), inst, None);
    moved.call_id = contact(1).call_id;
    moved.cseq = 2;
    match store.upsert(&moved, at(5)).expect("moved") {
        Upsert::Updated { previous } => assert_eq!(previous.contact, contact(1).contact),
        other => panic!("expected Updated, got {other:?}"),
    }
    assert_eq!(contacts_of(store, at(5)), vec![contact(2).contact]);

    // Outbound: one binding per reg-id of the same instance (two flows).
    let flow1 = with_instance(contact(3), inst, Some(1));
    let flow2 = with_instance(contact(4), inst, Some(2));
    assert_eq!(store.upsert(&flow1, at(5)).expect("f1"), Upsert::Inserted);
    assert_eq!(store.upsert(&flow2, at(5)).expect("f2"), Upsert::Inserted);
    assert_eq!(contacts_of(store, at(5)).len(), 3);
    // The same instance and reg-id over a new flow replaces that flow only.
    let mut flow1b = with_instance(contact(5), inst, Some(1));
    flow1b.call_id = "other".to_owned();
    flow1b.flow = Some("conn-2".to_owned());
    assert!(matches!(
        store.upsert(&flow1b, at(6)).expect("f1b"),
        Upsert::Updated { .. }
    ));
    let mut expected = vec![contact(2).contact, contact(4).contact, contact(5).contact];
    expected.sort();
    assert_eq!(contacts_of(store, at(6)), expected);
    // A plain contact with a URI equal to an instance binding's is a different binding.
    assert_eq!(
        store.upsert(&contact(2), at(6)).expect("plain"),
        Upsert::Inserted
    );
    assert_eq!(store.count().expect("count"), 4);
}

pub(crate) fn check_unregister(store: &dyn BindingStore) {
    for n in 1..=3 {
        store.upsert(&contact(n), t0()).expect("upsert");
    }
    // expires=0 for one contact.
    let mut gone = contact(2);
    gone.cseq = 2;
    gone.expires_at = at(10);
    match store.upsert(&gone, at(10)).expect("unregister") {
        Upsert::Removed { previous } => assert_eq!(previous.contact, contact(2).contact),
        other => panic!("expected Removed, got {other:?}"),
    }
    let mut again = gone.clone();
    again.call_id = "x".to_owned();
    assert_eq!(store.upsert(&again, at(10)).expect("again"), Upsert::Absent);
    assert_eq!(
        contacts_of(store, at(10)),
        vec![contact(1).contact, contact(3).contact]
    );
    // remove by key.
    let removed = store
        .remove(AOR, &BindingKey::Contact(contact(3).contact))
        .expect("remove");
    assert_eq!(removed.map(|b| b.contact), Some(contact(3).contact));
    assert_eq!(
        store
            .remove(AOR, &BindingKey::Contact(contact(3).contact))
            .expect("remove again"),
        None
    );
    // Contact: * removes every binding of the AOR and no other.
    store.upsert(&contact(4), at(10)).expect("upsert");
    let mut bob = contact(5);
    bob.aor = "sip:bob@example.test".to_owned();
    store.upsert(&bob, at(10)).expect("bob");
    assert_eq!(store.remove_all(AOR, at(10)).expect("remove all"), 2);
    assert!(contacts_of(store, at(10)).is_empty());
    assert_eq!(store.remove_all(AOR, at(10)).expect("remove all again"), 0);
    assert_eq!(store.count().expect("count"), 1);
}

/// Every binding check, each on a fresh store from `make`.
pub(crate) fn all_binding_checks(make: &dyn Fn() -> Box<dyn BindingStore>) {
    check_multiple_contacts(make().as_ref());
    check_round_trip(make().as_ref());
    check_expiry(make().as_ref());
    check_refresh_and_order(make().as_ref());
    check_instance_replacement(make().as_ref());
    check_unregister(make().as_ref());
}
