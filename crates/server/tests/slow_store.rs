//! A store that does not answer stalls only the requests that wait for it: with the store
//! operations on their own thread (`StoreWorkers`, `Proxy::defer_store_operations`), the
//! real driver on loopback answers an OPTIONS while an authorized REGISTER waits for a user
//! store that is held shut, and answers the REGISTER once the store is let go.
//!
//! Nothing here is timed: the store is held shut by a gate until the test opens it, so the
//! REGISTER cannot be answered before; waits are bounded by [`WAIT`] (a failure bound).

use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sotto_net::{Transport, TransportConfig, TransportKind};
use sotto_server::driver::{RunOptions, StoreWorkers, run_with};
use sotto_server::{Proxy, ServerConfig};
use sotto_sip::digest::{Algorithm, ClientSecret, DigestClient, UserRecord, parse_challenges};
use sotto_store::{Binding, BindingKey, BindingStore, MemoryStore, Upsert, UserInfo, UserStore};
use tokio::net::UdpSocket;

const WAIT: Duration = Duration::from_secs(20);

/// A memory store whose user lookups wait until the gate is opened.
#[derive(Default)]
struct Gated {
    inner: MemoryStore,
    open: Mutex<bool>,
    opened: Condvar,
}

impl Gated {
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.opened.notify_all();
    }
}

impl UserStore for Gated {
    fn get(&self, username: &str, realm: &str) -> Result<Option<UserRecord>, sotto_store::Error> {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.opened.wait(open).unwrap();
        }
        drop(open);
        self.inner.get(username, realm)
    }
    fn put(&self, record: &UserRecord) -> Result<(), sotto_store::Error> {
        self.inner.put(record)
    }
    fn create(&self, record: &UserRecord) -> Result<(), sotto_store::Error> {
        self.inner.create(record)
    }
    fn delete(&self, username: &str) -> Result<bool, sotto_store::Error> {
        self.inner.delete(username)
    }
    fn list(&self) -> Result<Vec<UserInfo>, sotto_store::Error> {
        self.inner.list()
    }
}

impl BindingStore for Gated {
    fn bindings(&self, aor: &str, now: SystemTime) -> Result<Vec<Binding>, sotto_store::Error> {
        self.inner.bindings(aor, now)
    }
    fn upsert(&self, b: &Binding, now: SystemTime) -> Result<Upsert, sotto_store::Error> {
        self.inner.upsert(b, now)
    }
    fn remove(&self, aor: &str, key: &BindingKey) -> Result<Option<Binding>, sotto_store::Error> {
        self.inner.remove(aor, key)
    }
    fn remove_all(&self, aor: &str, now: SystemTime) -> Result<usize, sotto_store::Error> {
        self.inner.remove_all(aor, now)
    }
    fn by_temp_gruu(
        &self,
        t: &str,
        now: SystemTime,
    ) -> Result<Option<Binding>, sotto_store::Error> {
        self.inner.by_temp_gruu(t, now)
    }
    fn purge_expired(&self, now: SystemTime) -> Result<usize, sotto_store::Error> {
        self.inner.purge_expired(now)
    }
    fn count(&self) -> Result<usize, sotto_store::Error> {
        self.inner.count()
    }
}

fn register(server: SocketAddr, cseq: u32, auth: &str) -> String {
    format!(
        "REGISTER sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKslow{cseq}\r\n\
         Max-Forwards: 70\r\nTo: <sip:alice@127.0.0.1>\r\nFrom: <sip:alice@127.0.0.1>;tag=s\r\n\
         Call-ID: slow-store\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:alice@127.0.0.1:4000>\r\n\
         {auth}Content-Length: 0\r\n\r\n"
    )
}

async fn response(sock: &UdpSocket, cseq_line: &str) -> String {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, _) = tokio::time::timeout(WAIT, sock.recv_from(&mut buf))
            .await
            .expect("an answer within the failure bound")
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]).into_owned();
        if text.contains(cseq_line) {
            return text;
        }
    }
}

#[tokio::test]
async fn a_stuck_store_holds_up_only_the_requests_that_need_it() {
    let provider = sotto_crypto_rust::provider();
    let mut config = ServerConfig::for_domain("127.0.0.1");
    config.anti_flood.enabled = false;
    config.authentication.algorithms = vec![Algorithm::Md5];
    let store = Arc::new(Gated::default());
    let mut alice = UserRecord::new("alice");
    alice
        .set_password(provider, &config.realm, "alicepw", &[Algorithm::Md5])
        .unwrap();
    store.inner.put(&alice).unwrap();

    let (transport, mut incoming) = Transport::new(TransportConfig::default());
    let server = transport
        .bind_udp("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let mut proxy = Proxy::new(
        &config,
        vec![(TransportKind::Udp, server)],
        store.clone(),
        store.clone(),
        provider,
        Instant::now(),
    )
    .unwrap();
    proxy.defer_store_operations(true);
    let workers = StoreWorkers::start(store.clone(), store.clone(), 1, false).unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let driver = tokio::spawn(async move {
        let options = RunOptions {
            stores: Some(&workers),
            ..RunOptions::default()
        };
        run_with(
            &mut proxy,
            &transport,
            &mut incoming,
            async {
                let _ = stop_rx.await;
            },
            options,
            |_| {},
        )
        .await;
        workers.stop();
    });

    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client
        .send_to(register(server, 1, "").as_bytes(), server)
        .await
        .unwrap();
    let challenge = response(&client, "CSeq: 1 REGISTER").await;
    assert!(challenge.starts_with("SIP/2.0 401"), "{challenge}");
    let c = challenge
        .split("\r\n")
        .filter_map(|l| l.strip_prefix("WWW-Authenticate: "))
        .flat_map(|v| parse_challenges(v).unwrap())
        .next()
        .unwrap();
    let uri = format!("sip:{server}");
    let creds = DigestClient::new(provider)
        .respond(
            &c,
            "REGISTER",
            &uri,
            "alice",
            ClientSecret::Password("alicepw"),
        )
        .unwrap();
    let authorized = register(server, 2, &format!("Authorization: {creds}\r\n"));
    client.send_to(authorized.as_bytes(), server).await.unwrap();

    // The user store is shut: the REGISTER waits. Another request is answered meanwhile.
    let options = format!(
        "OPTIONS sip:{server} SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKopt\r\n\
         Max-Forwards: 70\r\nTo: <sip:{server}>\r\nFrom: <sip:probe@127.0.0.1>;tag=o\r\n\
         Call-ID: slow-options\r\nCSeq: 7 OPTIONS\r\nContent-Length: 0\r\n\r\n"
    );
    client.send_to(options.as_bytes(), server).await.unwrap();
    let answered = response(&client, "CSeq: 7 OPTIONS").await;
    assert!(answered.starts_with("SIP/2.0 "), "{answered}");
    assert!(
        !*store.open.lock().unwrap(),
        "answered while the store was shut"
    );

    // Let the store go: the REGISTER is answered.
    store.open();
    let ok = response(&client, "CSeq: 2 REGISTER").await;
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert_eq!(
        store
            .inner
            .bindings("sip:alice@127.0.0.1", SystemTime::now())
            .unwrap()
            .len(),
        1
    );
    let _ = stop_tx.send(());
    tokio::time::timeout(WAIT, driver).await.unwrap().unwrap();
}
