//! Measures what one registered contact costs in each store.
//!
//! `cargo run -p sotto-store --example binding_sizes [-- COUNT]` inserts COUNT (default
//! 10,000) bindings shaped like a Linphone registration over TLS with outbound and GRUU, then
//! prints one JSON object per store:
//!
//! - SQLite: database bytes (pages in use × page size, after a WAL checkpoint) and the file
//!   size, each divided by the count;
//! - memory: the growth of the process's resident set (Linux `VmRSS`) while the store filled,
//!   and an estimate from the binding's own size plus the heap it owns.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sotto_store::{Binding, BindingStore, MemoryStore, SqliteStore};

fn binding(n: u32, now: SystemTime) -> Binding {
    let instance = format!("urn:uuid:6fa459ea-ee8a-3ca4-894e-{n:012x}");
    let mut b = Binding::new(
        format!("sip:user{n}@example.test"),
        format!(
            "sip:user{n}@192.0.2.{}:{};transport=tls",
            n % 250 + 1,
            40000 + n % 20000
        ),
        format!("{n:08x}-4c1d-9a3f-linphone-callid"),
        20,
        now + Duration::from_secs(3600),
    );
    b.contact_params = format!(
        ";+sip.instance=\"<{instance}>\";reg-id=1;+org.linphone.specs=\"lime,groupchat/1.1\""
    );
    b.instance_id = Some(instance);
    b.reg_id = Some(1);
    b.q = Some(1.0);
    b.path = vec!["<sip:edge.example.test;lr;ob>".to_owned()];
    b.source = Some(
        format!("192.0.2.{}:{}", n % 250 + 1, 40000 + n % 20000)
            .parse()
            .expect("addr"),
    );
    b.transport = Some("TLS".to_owned());
    b.flow = Some(format!("tls-{n}"));
    b.user_agent = Some("Linphone-Desktop/5.2.6 (host) linux/6.1 LinphoneSDK/5.3.72".to_owned());
    b.temp_gruu = Some(format!("sip:tgruu.{n:016x}9a8b7c6d5e4f@example.test;gr"));
    b
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let count: u32 = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 10_000,
    };
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);

    // SQLite, on disk.
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("sizes.db");
    let store = SqliteStore::open(&path)?;
    let (empty_pages, page_size, _) = store.page_stats()?;
    for n in 0..count {
        store.upsert(&binding(n, now), now)?;
    }
    assert_eq!(store.count()?, count as usize);
    let (pages, _, free) = store.page_stats()?;
    let used = (pages - free - empty_pages) * page_size;
    let file = std::fs::metadata(&path)?.len();
    println!(
        "{{\"store\":\"sqlite\",\"bindings\":{count},\"page_size_bytes\":{page_size},\"pages\":{pages},\"db_bytes_per_binding\":{:.1},\"file_bytes\":{file},\"file_bytes_per_binding\":{:.1}}}",
        used as f64 / f64::from(count),
        file as f64 / f64::from(count),
    );

    // Memory.
    let before = rss_bytes();
    let memory = MemoryStore::new();
    let mut estimate = 0usize;
    for n in 0..count {
        let b = binding(n, now);
        estimate += std::mem::size_of::<Binding>() + b.heap_bytes();
        memory.upsert(&b, now)?;
    }
    assert_eq!(memory.count()?, count as usize);
    let after = rss_bytes();
    let rss = match (before, after) {
        (Some(b), Some(a)) => format!("{:.1}", a.saturating_sub(b) as f64 / f64::from(count)),
        _ => "null".to_owned(),
    };
    println!(
        "{{\"store\":\"memory\",\"bindings\":{count},\"binding_struct_bytes\":{},\"estimate_bytes_per_binding\":{:.1},\"rss_bytes_per_binding\":{rss}}}",
        std::mem::size_of::<Binding>(),
        estimate as f64 / f64::from(count),
    );
    Ok(())
}
