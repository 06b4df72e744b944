//! `sotto bench lime`: LIME's hot paths, as the targets count them.
//!
//! - `messages_per_s`: 1:1 steady state, alice and bob answering each other so the ratchet
//!   turns at every message; a message is one encrypt and one decrypt (cipher-message
//!   policy, 100-octet messages). In memory, and persisted: both sessions written to a SQLite
//!   file (WAL, `synchronous=FULL`) in one transaction after each message, as durable as
//!   liblime's own store. `_one_way`: messages in one direction (no ratchet turn).
//! - `first_message_ms`: X3DH from a bundle, the first encrypt, the responder's X3DH and
//!   first decrypt.
//! - `hundred_devices_ms`: one message encrypted for 100 devices with sessions.
//! - `bundle_fetches_per_s`: getPeerBundle through the key server logic over its SQLite
//!   store (an OPk taken out each time while they last).
//!
//! With `--liblime PATH`, also runs `bench/lime/liblime_bench.c` built at PATH (its key-server
//! posts answered here, in process) and prints its line in the same run.

use std::time::Instant;

use anyhow::{Context, bail};
use sotto_crypto::CryptoProvider;
use sotto_lime::keyserver::{KeyServer, Limits};
use sotto_lime::{CurveId, EncryptionPolicy, LimeUser};
use sotto_store::SqliteKeyStore;

/// Arguments of `sotto bench lime`.
#[derive(Debug, clap::Args)]
pub(crate) struct LimeBenchArgs {
    /// Curve: c25519 or c448.
    #[arg(long, default_value = "c25519")]
    curve: String,
    /// Messages of the steady-state runs.
    #[arg(long, default_value_t = 2000)]
    messages: u32,
    /// The built liblime benchmark (bench/lime/liblime_bench.c), to run in the same run.
    #[arg(long, value_name = "PATH")]
    liblime: Option<std::path::PathBuf>,
}

fn p() -> &'static CryptoProvider {
    sotto_crypto_rust::provider()
}

const TEXT: [u8; 100] = [b'x'; 100];

/// Two users with a session both ways (alice wrote first, bob answered).
fn pair(curve: CurveId) -> anyhow::Result<(LimeUser, LimeUser)> {
    let ks = KeyServer::new(
        sotto_lime::keyserver::MemoryKeyStore::default(),
        vec![curve],
        Limits::default(),
    );
    let (mut a, reg) = LimeUser::create(p(), "alice", curve, 1)?;
    ks.handle("alice", &reg);
    let (mut b, reg) = LimeUser::create(p(), "bob", curve, 1)?;
    ks.handle("bob", &reg);
    let reply = ks.handle("alice", &a.bundle_request(&["bob".into()]));
    a.handle_bundles(p(), &reply)?;
    let m = a.encrypt(p(), "bob", &["bob"], &TEXT, EncryptionPolicy::CipherMessage)?;
    b.decrypt(p(), "alice", "bob", &m.dr_messages[0].1, &m.cipher_message)?;
    Ok((a, b))
}

/// One message from `from` to `to`, encrypted and decrypted.
fn one(from: &mut LimeUser, to: &mut LimeUser) -> anyhow::Result<()> {
    let (f, t) = (from.device_id().to_owned(), to.device_id().to_owned());
    let m = from.encrypt(p(), &t, &[&t], &TEXT, EncryptionPolicy::CipherMessage)?;
    to.decrypt(p(), &f, &t, &m.dr_messages[0].1, &m.cipher_message)?;
    Ok(())
}

/// Messages per second, ratchet turning at each; `persist` writes both users' sessions.
fn steady(curve: CurveId, n: u32, persist: Option<&rusqlite::Connection>) -> anyhow::Result<f64> {
    let (mut a, mut b) = pair(curve)?;
    let t0 = Instant::now();
    for i in 0..n {
        let (from, to) = if i % 2 == 0 {
            (&mut a, &mut b)
        } else {
            (&mut b, &mut a)
        };
        one(from, to)?;
        if let Some(db) = persist {
            let tx = db.unchecked_transaction()?;
            for u in [&*from, &*to] {
                let peer = if u.device_id() == "alice" {
                    "bob"
                } else {
                    "alice"
                };
                let blob = u.session_bytes(peer).context("session")?;
                tx.execute(
                    "INSERT OR REPLACE INTO sessions (owner, peer, state) VALUES (?1, ?2, ?3)",
                    rusqlite::params![u.device_id(), peer, &blob[..]],
                )?;
            }
            tx.commit()?;
        }
    }
    Ok(f64::from(n) / t0.elapsed().as_secs_f64())
}

/// Messages per second in one direction (no ratchet turn: the symmetric chain alone, as
/// libsignal's encrypt benchmark counts it), in memory.
fn one_way(curve: CurveId, n: u32) -> anyhow::Result<f64> {
    let (mut a, mut b) = pair(curve)?;
    // Bob answered once so that alice's chain is in its steady state.
    one(&mut b, &mut a)?;
    let t0 = Instant::now();
    for _ in 0..n {
        one(&mut a, &mut b)?;
    }
    Ok(f64::from(n) / t0.elapsed().as_secs_f64())
}

fn first_message_ms(curve: CurveId, n: u32) -> anyhow::Result<f64> {
    let t0 = Instant::now();
    for _ in 0..n {
        pair(curve)?;
    }
    let with_setup = t0.elapsed();
    // pair() also makes both users (keys, 1 OPk each): measured apart and taken out.
    let t1 = Instant::now();
    for _ in 0..n {
        LimeUser::create(p(), "alice", curve, 1)?;
        LimeUser::create(p(), "bob", curve, 1)?;
    }
    let setup = t1.elapsed();
    Ok(with_setup.saturating_sub(setup).as_secs_f64() * 1e3 / f64::from(n))
}

fn hundred_devices_ms(curve: CurveId) -> anyhow::Result<f64> {
    let ks = KeyServer::new(
        sotto_lime::keyserver::MemoryKeyStore::default(),
        vec![curve],
        Limits::default(),
    );
    let (mut a, reg) = LimeUser::create(p(), "alice", curve, 0)?;
    ks.handle("alice", &reg);
    let ids: Vec<String> = (0..100).map(|i| format!("dev{i}")).collect();
    for id in &ids {
        let (_, reg) = LimeUser::create(p(), id, curve, 1)?;
        ks.handle(id, &reg);
    }
    a.handle_bundles(p(), &ks.handle("alice", &a.bundle_request(&ids)))?;
    let devices: Vec<&str> = ids.iter().map(String::as_str).collect();
    let rounds = 50;
    let t0 = Instant::now();
    for _ in 0..rounds {
        a.encrypt(
            p(),
            "group",
            &devices,
            &TEXT,
            EncryptionPolicy::CipherMessage,
        )?;
    }
    Ok(t0.elapsed().as_secs_f64() * 1e3 / f64::from(rounds))
}

fn bundle_fetches_per_s(curve: CurveId, n: u32) -> anyhow::Result<f64> {
    let dir = tempfile::tempdir()?;
    let store = SqliteKeyStore::open(&dir.path().join("lime.sqlite"))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let ks = KeyServer::new(store, vec![curve], Limits::default());
    let (asker, reg) = LimeUser::create(p(), "alice", curve, 0)?;
    ks.handle("alice", &reg);
    let (_, reg) = LimeUser::create(p(), "bob", curve, 500)?;
    ks.handle("bob", &reg);
    let ask = asker.bundle_request(&["bob".into()]);
    let t0 = Instant::now();
    for _ in 0..n {
        ks.handle("alice", &ask);
    }
    Ok(f64::from(n) / t0.elapsed().as_secs_f64())
}

/// Runs the benchmark.
pub(crate) fn run(args: LimeBenchArgs, json: bool) -> anyhow::Result<()> {
    let curve = match args.curve.as_str() {
        "c25519" | "25519" => CurveId::C25519,
        "c448" | "448" => CurveId::C448,
        other => bail!("--curve {other}: expected c25519 or c448"),
    };
    if args.messages == 0 {
        bail!("--messages must be above 0");
    }
    let mem = steady(curve, args.messages, None)?;
    // One direction stays below the 1,000-message sending-chain bound.
    let one_way = one_way(curve, args.messages.min(900))?;
    let dir = tempfile::tempdir()?;
    let db = rusqlite::Connection::open(dir.path().join("sessions.sqlite"))?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
         CREATE TABLE sessions (owner TEXT, peer TEXT, state BLOB, PRIMARY KEY (owner, peer));",
    )?;
    let persisted = steady(curve, args.messages.min(2000), Some(&db))?;
    let first = first_message_ms(curve, 50)?;
    let hundred = hundred_devices_ms(curve)?;
    let fetches = bundle_fetches_per_s(curve, 5000)?;
    let r = |x: f64| (x * 100.0).round() / 100.0;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "impl": "sotto", "bench": "lime", "curve": curve.name(),
                "messages_per_s_memory": r(mem), "messages_per_s_persisted": r(persisted),
                "messages_per_s_memory_one_way": r(one_way),
                "first_message_ms": (first * 1e4).round() / 1e4, "hundred_devices_ms": r(hundred),
                "bundle_fetches_per_s": r(fetches),
            })
        );
    } else {
        println!(
            "lime {}: {mem:.0} messages/s in memory ({one_way:.0} one way), {persisted:.0} \
             persisted; first message {first:.3} ms; 100 devices {hundred:.2} ms; {fetches:.0} \
             bundle fetches/s (SQLite)",
            curve.name()
        );
    }
    if let Some(path) = args.liblime {
        super::lime_liblime::run(&path, curve, args.messages.min(2000))?;
    }
    Ok(())
}
