//! `RedisStore` against a real `redis-server` (started by each test on a unix socket or a
//! loopback port in a temporary directory, without persistence, and killed on drop): the same
//! behaviour checks as the other stores (`common/mod.rs`), plus what only a shared store must
//! do: two stores (two server processes) on one Redis, racing writers, a Redis restart, the
//! stored format, and the memory each binding takes.
//!
//! A missing `redis-server` fails these tests with the line to install it.

#![cfg(feature = "redis")]

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use sotto_store::{BindingKey, BindingStore, Error, RedisStore, Upsert};

const INSTALL: &str = "install with: apt-get install -y redis-server";

/// Readiness polls of a starting redis-server, and the pause between them (10 s at most).
const READY_POLLS: u32 = 400;
const READY_PAUSE: Duration = Duration::from_millis(25);

/// One redis-server process, owned by a test.
struct RedisServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    listen: Listen,
}

#[derive(Clone, Copy)]
enum Listen {
    Unix,
    Tcp(u16),
}

impl RedisServer {
    /// A server on a unix socket in its temporary directory.
    fn unix() -> Self {
        Self::start(Listen::Unix)
    }

    /// A server on a free 127.0.0.1 port.
    fn tcp() -> Self {
        // A port free a moment ago; a clash makes redis-server exit, and `start` says so.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("free loopback port");
        Self::start(Listen::Tcp(port))
    }

    fn start(listen: Listen) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut s = RedisServer {
            child: None,
            dir,
            listen,
        };
        s.spawn();
        s
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("redis.sock")
    }

    fn url(&self) -> String {
        match self.listen {
            Listen::Unix => format!("unix://{}", self.socket().display()),
            Listen::Tcp(port) => format!("redis://127.0.0.1:{port}/0"),
        }
    }

    fn spawn(&mut self) {
        let dir: &Path = self.dir.path();
        let mut cmd = Command::new("redis-server");
        cmd.args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .arg("--dir")
            .arg(dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"));
        match self.listen {
            Listen::Unix => {
                cmd.args(["--port", "0", "--unixsocketperm", "700"])
                    .arg("--unixsocket")
                    .arg(self.socket());
            }
            Listen::Tcp(port) => {
                cmd.args(["--bind", "127.0.0.1", "--port", &port.to_string()]);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                panic!("redis-server not found; {INSTALL}")
            }
            Err(e) => panic!("starting redis-server: {e}; {INSTALL}"),
        };
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let url = self.url();
        for _ in 0..READY_POLLS {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                let log =
                    std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
                panic!("redis-server exited ({status}):\n{log}");
            }
            let ready = redis::Client::open(url.as_str())
                .and_then(|c| c.get_connection())
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            if ready.is_ok() {
                return;
            }
            std::thread::sleep(READY_PAUSE);
        }
        panic!("redis-server at {url} did not answer within its start-up bound");
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and starts a new one at the same address (empty: no persistence).
    fn restart(&mut self) {
        self.stop();
        if let Listen::Unix = self.listen {
            let _ = std::fs::remove_file(self.socket());
        }
        self.spawn();
    }

    /// A plain connection, for inspecting what the store wrote.
    fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url().as_str())
            .and_then(|c| c.get_connection())
            .expect("raw connection")
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A store on `server` in a namespace no other store of the test uses.
fn fresh_store(server: &RedisServer) -> RedisStore {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    RedisStore::open_with_namespace(&server.url(), &format!("test{n}")).expect("open")
}

#[test]
fn redis_unix_socket_bindings() {
    let server = RedisServer::unix();
    all_binding_checks(&|| Box::new(fresh_store(&server)));
}

#[test]
fn redis_loopback_tcp_bindings() {
    let server = RedisServer::tcp();
    all_binding_checks(&|| Box::new(fresh_store(&server)));
    // The default namespace, as the server opens it.
    let store = RedisStore::open(&server.url()).expect("open");
    assert_eq!(store.namespace(), sotto_store::DEFAULT_NAMESPACE);
    store.upsert(&contact(1), t0()).expect("upsert");
    let mut raw = server.raw();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("sotto:v1:*")
        .query(&mut raw)
        .expect("keys");
    let mut keys = keys;
    keys.sort();
    assert_eq!(
        keys,
        vec![format!("sotto:v1:aor:{AOR}"), "sotto:v1:expiry".to_owned()]
    );
}

#[test]
fn open_fails_cleanly() {
    assert!(matches!(
        RedisStore::open("http://127.0.0.1:1/"),
        Err(Error::Backend(_))
    ));
    // Nothing listens on a socket in an empty directory.
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("unix://{}", dir.path().join("none.sock").display());
    assert!(matches!(RedisStore::open(&url), Err(Error::Backend(_))));
    let server = RedisServer::unix();
    assert!(matches!(
        RedisStore::open_with_namespace(&server.url(), ""),
        Err(Error::InvalidRecord { field: "namespace" })
    ));
}

/// Two stores on one Redis stand for two server processes: a registration through one is
/// routable through the other, and dropping one leaves the other working.
#[test]
fn two_stores_share_registrations() {
    let server = RedisServer::unix();
    let a = RedisStore::open(&server.url()).expect("open a");
    let b = RedisStore::open(&server.url()).expect("open b");

    let mut phone = with_instance(contact(1), "urn:uuid:shared-1", Some(1));
    phone.temp_gruu = Some("sip:tgruu.shared@example.test;gr".to_owned());
    assert_eq!(
        a.upsert(&phone, t0()).expect("register via a"),
        Upsert::Inserted
    );
    assert_eq!(
        b.bindings(AOR, t0()).expect("lookup via b"),
        vec![phone.clone()]
    );
    assert_eq!(
        b.by_temp_gruu("sip:tgruu.shared@example.test;gr", t0())
            .expect("gruu via b"),
        Some(phone.clone())
    );
    // The step 7 rule holds across processes: b refuses a replay of a's request.
    assert!(matches!(
        b.upsert(&phone, t0()).expect("replay via b"),
        Upsert::OutOfOrder { .. }
    ));

    drop(a);
    let mut refresh = phone.clone();
    refresh.cseq = 2;
    refresh.expires_at = at(7200);
    assert!(matches!(
        b.upsert(&refresh, at(10)).expect("refresh via b"),
        Upsert::Updated { .. }
    ));
    b.upsert(&contact(2), at(10)).expect("second contact via b");
    assert_eq!(contacts_of(&b, at(10)).len(), 2);
    // A process started later sees everything.
    let c = RedisStore::open(&server.url()).expect("open c");
    assert_eq!(contacts_of(&c, at(10)), contacts_of(&b, at(10)));
    assert_eq!(c.count().expect("count"), 2);
    assert_eq!(
        c.remove(AOR, &phone.key()).expect("remove via c"),
        Some(refresh)
    );
    assert_eq!(
        b.by_temp_gruu("sip:tgruu.shared@example.test;gr", at(10))
            .expect("gruu gone"),
        None
    );
}

/// Two stores × four threads refresh one binding (same Call-ID) with interleaved CSeqs. Each
/// accepted refresh must replace a distinct stored value (no two writers win over the same
/// one), and the highest CSeq must end up stored.
#[test]
fn racing_refreshes_stay_in_order() {
    const WRITERS: u32 = 8;
    const CSEQS: u32 = 400;
    let server = RedisServer::unix();
    let stores = [
        Arc::new(RedisStore::open(&server.url()).expect("open a")),
        Arc::new(RedisStore::open(&server.url()).expect("open b")),
    ];
    let handles: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = stores[(w % 2) as usize].clone();
            std::thread::spawn(move || {
                let mut out = Vec::new();
                for cseq in (1..=CSEQS).filter(|c| c % WRITERS == w) {
                    let mut b = contact(1);
                    b.cseq = cseq;
                    out.push((cseq, store.upsert(&b, t0()).expect("upsert")));
                }
                out
            })
        })
        .collect();
    let mut accepted = Vec::new();
    let mut replaced = Vec::new();
    let mut inserted = 0;
    for h in handles {
        for (cseq, outcome) in h.join().expect("writer") {
            match outcome {
                Upsert::Inserted => {
                    inserted += 1;
                    accepted.push(cseq);
                }
                Upsert::Updated { previous } => {
                    assert!(previous.cseq < cseq, "{} replaced {cseq}", previous.cseq);
                    accepted.push(cseq);
                    replaced.push(previous.cseq);
                }
                Upsert::OutOfOrder { existing } => {
                    assert!(existing.cseq >= cseq, "{cseq} refused by {}", existing.cseq);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert_eq!(inserted, 1);
    let stored = stores[1].bindings(AOR, t0()).expect("bindings");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].cseq, CSEQS);
    // Every accepted value but the last was replaced exactly once.
    accepted.sort_unstable();
    replaced.sort_unstable();
    accepted.retain(|&c| c != CSEQS);
    assert_eq!(replaced, accepted);
    assert_eq!(stores[0].count().expect("count"), 1);
}

/// Distinct contacts written concurrently through two stores are all kept.
#[test]
fn concurrent_inserts_are_all_kept() {
    let server = RedisServer::unix();
    let a = Arc::new(RedisStore::open(&server.url()).expect("open a"));
    let b = Arc::new(RedisStore::open(&server.url()).expect("open b"));
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            let store = if t % 2 == 0 { a.clone() } else { b.clone() };
            std::thread::spawn(move || {
                for n in 0..50 {
                    let outcome = store.upsert(&contact(t * 100 + n), t0()).expect("upsert");
                    assert_eq!(outcome, Upsert::Inserted);
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("writer");
    }
    assert_eq!(a.count().expect("count"), 200);
    assert_eq!(b.bindings(AOR, t0()).expect("bindings").len(), 200);
}

/// A Redis restart breaks the pooled connections: the store fails while Redis is down, and
/// works again (on new connections) once it is back.
#[test]
fn survives_a_redis_restart() {
    let mut server = RedisServer::unix();
    let store = RedisStore::open(&server.url()).expect("open");
    store.upsert(&contact(1), t0()).expect("upsert");
    assert_eq!(store.count().expect("count"), 1);

    server.stop();
    assert!(matches!(store.count(), Err(Error::Backend(_))));
    assert!(matches!(
        store.upsert(&contact(2), t0()),
        Err(Error::Backend(_))
    ));

    server.restart();
    // No persistence: the new server is empty.
    assert_eq!(store.count().expect("count after restart"), 0);
    assert_eq!(
        store.upsert(&contact(1), t0()).expect("upsert"),
        Upsert::Inserted
    );
    // A stale pooled connection is replaced transparently too.
    server.restart();
    assert_eq!(store.count().expect("count after second restart"), 0);
}

fn fixture_bytes() -> Vec<u8> {
    let text = include_str!("fixtures/redis_binding_v1.hex");
    let hex: String = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    assert_eq!(hex.len() % 2, 0, "odd hex length");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// A value of format 1 written by hand (not by the crate's encoder) still loads, and a value
/// of an unknown format is refused, not misread.
#[test]
fn redis_reads_format_v1_fixture() {
    let server = RedisServer::unix();
    let store = RedisStore::open_with_namespace(&server.url(), "fx").expect("open");
    let field = "r 1 urn:uuid:00000000-0000-1000-8000-000a95a0e128";
    let member = format!("{AOR}\n{field}");
    let bytes = fixture_bytes();
    let mut raw = server.raw();
    let _: () = redis::cmd("HSET")
        .arg(store.aor_key(AOR))
        .arg(field)
        .arg(&bytes)
        .query(&mut raw)
        .expect("hset");
    let _: () = redis::cmd("ZADD")
        .arg("fx:v1:expiry")
        .arg(1_800_003_600i64)
        .arg(&member)
        .query(&mut raw)
        .expect("zadd");
    let _: () = redis::cmd("HSET")
        .arg("fx:v1:gruu")
        .arg("sip:tgruu.abc@example.test;gr")
        .arg(&member)
        .query(&mut raw)
        .expect("gruu");

    let got = store.bindings(AOR, t0()).expect("bindings");
    assert_eq!(got.len(), 1);
    let b = &got[0];
    assert_eq!(b.aor, AOR);
    assert_eq!(b.contact, "sip:alice@192.0.2.1:5061;transport=tls");
    assert_eq!(
        b.contact_params,
        ";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-000a95a0e128>\";reg-id=1"
    );
    assert_eq!(
        b.instance_id.as_deref(),
        Some("urn:uuid:00000000-0000-1000-8000-000a95a0e128")
    );
    assert_eq!(b.reg_id, Some(1));
    assert_eq!(b.call_id, "fixture-call-1");
    assert_eq!(b.cseq, 7);
    assert_eq!(b.expires_at, at(3600));
    assert_eq!(b.q, Some(0.5));
    assert_eq!(
        b.path,
        vec!["<sip:edge1.example.test;lr>", "<sip:edge2.example.test;lr>"]
    );
    assert_eq!(b.source, Some("127.0.0.1:40000".parse().expect("addr")));
    assert_eq!(b.transport.as_deref(), Some("TLS"));
    assert_eq!(b.flow, None);
    assert_eq!(b.user_agent.as_deref(), Some("Linphone/5.2"));
    assert_eq!(
        b.temp_gruu.as_deref(),
        Some("sip:tgruu.abc@example.test;gr")
    );
    assert_eq!(
        store
            .by_temp_gruu("sip:tgruu.abc@example.test;gr", t0())
            .expect("gruu"),
        Some(b.clone())
    );
    // What this build writes for the same binding is byte for byte the fixture.
    store.remove(AOR, &b.key()).expect("remove");
    store.upsert(b, t0()).expect("upsert");
    let written: Vec<u8> = redis::cmd("HGET")
        .arg(store.aor_key(AOR))
        .arg(field)
        .query(&mut raw)
        .expect("hget");
    assert_eq!(written, bytes);

    // A newer format is refused by readers; purge still removes it once expired.
    let mut v2 = bytes;
    v2[0] = 2;
    let _: () = redis::cmd("HSET")
        .arg(store.aor_key(AOR))
        .arg(field)
        .arg(&v2)
        .query(&mut raw)
        .expect("hset v2");
    assert!(matches!(
        store.bindings(AOR, t0()),
        Err(Error::UnknownFormat {
            record: "binding",
            found: 2,
            supported: 1
        })
    ));
    assert_eq!(store.purge_expired(at(3600)).expect("purge"), 1);
    assert_eq!(store.count().expect("count"), 0);
}

fn info_used_memory(con: &mut redis::Connection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query(con)
        .expect("info memory");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory in INFO")
}

/// Memory per binding: 10,000 users with one Linphone-like device each (instance, reg-id,
/// Path, User-Agent, temp GRUU). Prints the figures; checks that purging leaves no key behind.
#[test]
fn redis_bytes_per_binding() {
    const USERS: u32 = 10_000;
    let server = RedisServer::unix();
    let store = RedisStore::open(&server.url()).expect("open");
    let mut raw = server.raw();
    let before = info_used_memory(&mut raw);
    let device = |n: u32| {
        let aor = format!("sip:user{n:05}@example.test");
        let mut b = with_instance(
            contact(n % 250 + 1),
            &format!("urn:uuid:00000000-0000-1000-8000-{n:012}"),
            Some(1),
        );
        b.aor = aor;
        b.contact_params =
            format!(";+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-{n:012}>\";reg-id=1");
        b.call_id = format!("{n:08x}-reg@192.0.2.1");
        b.path = vec!["<sip:edge.example.test;lr;ob>".to_owned()];
        b.source = Some(SocketAddr::from(([192, 0, 2, (n % 250 + 1) as u8], 40_000)));
        b.transport = Some("TLS".to_owned());
        b.flow = Some(format!("tls-{n}"));
        b.user_agent = Some("Linphone-Desktop/5.2.6 (Debian) LinphoneCore/5.3.0".to_owned());
        b.temp_gruu = Some(format!("sip:tgruu.{n:016x}@example.test;gr"));
        b
    };
    let started = std::time::Instant::now();
    for n in 0..USERS {
        assert_eq!(
            store.upsert(&device(n), t0()).expect("upsert"),
            Upsert::Inserted
        );
    }
    // Printed for the report only, never asserted on.
    let upserts_per_s = f64::from(USERS) / started.elapsed().as_secs_f64();
    assert_eq!(store.count().expect("count"), USERS as usize);
    let after = info_used_memory(&mut raw);
    let per_binding = (after - before) / i64::from(USERS);
    let one: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(store.aor_key(&device(1).aor))
        .query(&mut raw)
        .expect("memory usage");
    let index = |key: &str, raw: &mut redis::Connection| -> i64 {
        redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(key)
            .arg("SAMPLES")
            .arg(0)
            .query(raw)
            .expect("memory usage")
    };
    let expiry = index("sotto:v1:expiry", &mut raw);
    let gruu = index("sotto:v1:gruu", &mut raw);
    println!(
        "redis bytes per binding: {per_binding} (INFO used_memory delta over {USERS}); \
         aor hash {one} B; expiry set {} B/binding; gruu index {} B/binding; \
         {upserts_per_s:.0} upserts/s (one thread, unix socket)",
        expiry / i64::from(USERS),
        gruu / i64::from(USERS)
    );
    assert!(
        (64..8192).contains(&per_binding),
        "implausible bytes per binding: {per_binding}"
    );
    // Lookups after the load still answer.
    let d = device(4242);
    assert_eq!(
        store.bindings(&d.aor, t0()).expect("lookup"),
        vec![d.clone()]
    );
    assert_eq!(
        store
            .by_temp_gruu(d.temp_gruu.as_deref().expect("gruu"), t0())
            .expect("by gruu"),
        Some(d)
    );
    // Everything expires: purge leaves not one key (bindings, expiry set, GRUU index).
    assert_eq!(
        store.purge_expired(at(3600)).expect("purge"),
        USERS as usize
    );
    assert_eq!(store.count().expect("count"), 0);
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut raw).expect("dbsize");
    assert_eq!(dbsize, 0);
}

/// remove, remove_all and expiry keep the GRUU index and expiry set exact: nothing is left
/// once the bindings are gone.
#[test]
fn indexes_leave_no_garbage() {
    let server = RedisServer::unix();
    let store = RedisStore::open(&server.url()).expect("open");
    let mut raw = server.raw();
    for n in 1..=4 {
        let mut b = contact(n);
        b.temp_gruu = Some(format!("sip:tgruu.{n}@example.test;gr"));
        store.upsert(&b, t0()).expect("upsert");
    }
    // A refresh that changes the temp GRUU moves the index entry.
    let mut moved = contact(1);
    moved.cseq = 2;
    moved.temp_gruu = Some("sip:tgruu.new@example.test;gr".to_owned());
    store.upsert(&moved, t0()).expect("refresh");
    assert_eq!(
        store
            .by_temp_gruu("sip:tgruu.1@example.test;gr", t0())
            .expect("old"),
        None
    );
    assert_eq!(
        store
            .by_temp_gruu("sip:tgruu.new@example.test;gr", t0())
            .expect("new"),
        Some(moved)
    );
    let gruus: i64 = redis::cmd("HLEN")
        .arg("sotto:v1:gruu")
        .query(&mut raw)
        .expect("hlen");
    assert_eq!(gruus, 4);
    store
        .remove(AOR, &BindingKey::Contact(contact(2).contact))
        .expect("remove");
    assert_eq!(store.remove_all(AOR, t0()).expect("remove all"), 3);
    let dbsize: i64 = redis::cmd("DBSIZE").query(&mut raw).expect("dbsize");
    assert_eq!(dbsize, 0);
}
