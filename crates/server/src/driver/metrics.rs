//! Operations metrics in the Prometheus text exposition format (version 0.0.4), and a tiny
//! HTTP/1.1 responder that serves them on `GET /metrics`.
//!
//! [`Metrics`] is shared (`Arc`) between the driver, which records every [`ProxyEvent`] and
//! samples the [`Proxy`] after each step ([`Metrics::observe`]), and the HTTP task, which
//! renders it ([`Metrics::render`]) with the binding count read from the store at scrape
//! time. Rendering and request parsing are plain functions ([`render_response`]); only
//! [`serve`] does IO.
//!
//! Exposed:
//!
//! | metric | type | meaning |
//! |---|---|---|
//! | `sotto_registrations` | gauge | bindings stored (registered contacts) |
//! | `sotto_heap_bytes` | gauge | heap bytes in use, if the binary counts them ([`HEAP_BYTES`]) |
//! | `sotto_transactions` | gauge | SIP transactions alive |
//! | `sotto_pending_forks` | gauge | forwarded requests waiting for a final response |
//! | `sotto_requests_total{method,outcome,status}` | counter | requests handled |
//! | `sotto_auth_failures_total` | counter | requests that failed authentication |
//! | `sotto_anti_flood_bans_total` | counter | sources banned after repeated auth failures (many accounts) |
//! | `sotto_anti_flood_account_lockouts_total` | counter | accounts locked out from a source after repeated failures |
//! | `sotto_anti_flood_rate_limited_total` | counter | requests dropped: over their source's rate |
//! | `sotto_anti_flood_dropped_banned_total` | counter | requests dropped: their source is banned |
//! | `sotto_overload_shed_unauthenticated_total` | counter | new requests without credentials refused (503) under overload |
//! | `sotto_overload_shed_all_total` | counter | new requests refused (503) at the second overload level |
//! | `sotto_overload_incoming_backlog` | gauge | most received messages waiting for the proxy since the last scrape |
//! | `sotto_{authentication,registrar,router}_store_failures_total` | counter | requests answered 503 because the store failed (Redis down, SQLite I/O error) |
//! | `sotto_<module>_<name>` | counter/gauge | any other module figure ([`crate::pipeline::Module::counters`]) |
//!
//! Label values are bounded: a method outside RFC 3261's and its extensions' names is
//! counted as `OTHER`, so a peer cannot grow the label set.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sotto_store::BindingStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::proxy::{Outcome, Proxy, ProxyEvent};

/// The process's heap bytes in use, if the binary counts them with its global allocator (it
/// sets this once at start); rendered as the `sotto_heap_bytes` gauge, left out when unset.
pub static HEAP_BYTES: std::sync::OnceLock<fn() -> u64> = std::sync::OnceLock::new();

/// Methods counted under their own name; any other is `OTHER`.
const METHODS: &[&str] = &[
    "ACK",
    "BYE",
    "CANCEL",
    "INFO",
    "INVITE",
    "MESSAGE",
    "NOTIFY",
    "OPTIONS",
    "PRACK",
    "PUBLISH",
    "REFER",
    "REGISTER",
    "SUBSCRIBE",
    "UPDATE",
];
/// Largest HTTP request head accepted by [`serve`].
pub const MAX_REQUEST_HEAD_BYTES: usize = 8192;
/// Time a metrics client gets to send its request and read the answer.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// Metrics connections handled at once (more wait in the listen backlog).
pub const MAX_HTTP_CONNECTIONS: usize = 8;

/// Key of one `sotto_requests_total` series.
type RequestKey = (&'static str, &'static str, Option<u16>);

/// The server's figures. Recording is cheap (atomics, one short lock per request).
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<RequestKey, u64>>,
    auth_failures: AtomicU64,
    transactions: AtomicU64,
    pending_forks: AtomicU64,
    modules: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock cannot leave the maps inconsistent (single inserts).
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The bounded label value for a method name.
fn method_label(method: &str) -> &'static str {
    METHODS
        .iter()
        .find(|m| m.eq_ignore_ascii_case(method))
        .copied()
        .unwrap_or("OTHER")
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        Metrics::default()
    }

    /// Counts one handled request.
    pub fn record(&self, ev: &ProxyEvent) {
        let (outcome, status) = match ev.outcome {
            Outcome::Replied(s) => ("replied", Some(s)),
            Outcome::Forwarded(_) => ("forwarded", None),
            Outcome::Dropped => ("dropped", None),
            Outcome::Failed { status, .. } => ("failed", Some(status)),
        };
        *lock(&self.requests)
            .entry((method_label(&ev.method), outcome, status))
            .or_insert(0) += 1;
        if ev.auth_failure {
            self.auth_failures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Samples the proxy's gauges and its modules' figures.
    pub fn observe(&self, proxy: &Proxy) {
        self.transactions
            .store(proxy.transactions() as u64, Ordering::Relaxed);
        self.pending_forks
            .store(proxy.pending_forks() as u64, Ordering::Relaxed);
        let mut modules = lock(&self.modules);
        proxy.module_counters(&mut |module, name, value| {
            modules.insert((module, name), value);
        });
    }

    /// Requests counted for `method` with `outcome` (`replied`, `forwarded`, `dropped`), all
    /// statuses together.
    pub fn requests(&self, method: &str, outcome: &str) -> u64 {
        let method = method_label(method);
        lock(&self.requests)
            .iter()
            .filter(|((m, o, _), _)| *m == method && *o == outcome)
            .map(|(_, n)| n)
            .sum()
    }

    /// Authentication failures counted.
    pub fn auth_failures(&self) -> u64 {
        self.auth_failures.load(Ordering::Relaxed)
    }

    /// A module's figure as last observed.
    pub fn module(&self, module: &str, name: &str) -> Option<u64> {
        lock(&self.modules)
            .iter()
            .find(|((m, n), _)| *m == module && *n == name)
            .map(|(_, v)| *v)
    }

    /// The exposition text; `registrations` is the binding count (`None`: the store failed,
    /// and the gauge is left out).
    pub fn render(&self, registrations: Option<usize>) -> String {
        let mut out = String::with_capacity(2048);
        let o = &mut out;
        family(
            o,
            "sotto_registrations",
            "gauge",
            "Registered contacts (bindings) stored.",
        );
        if let Some(n) = registrations {
            let _ = writeln!(o, "sotto_registrations {n}");
        }
        if let Some(heap) = HEAP_BYTES.get() {
            family(
                o,
                "sotto_heap_bytes",
                "gauge",
                "Heap bytes in use (allocated and not yet freed), counted by the global allocator.",
            );
            let _ = writeln!(o, "sotto_heap_bytes {}", heap());
        }
        family(o, "sotto_transactions", "gauge", "SIP transactions alive.");
        let _ = writeln!(
            o,
            "sotto_transactions {}",
            self.transactions.load(Ordering::Relaxed)
        );
        family(
            o,
            "sotto_pending_forks",
            "gauge",
            "Forwarded requests waiting for a final response.",
        );
        let _ = writeln!(
            o,
            "sotto_pending_forks {}",
            self.pending_forks.load(Ordering::Relaxed)
        );
        family(
            o,
            "sotto_requests_total",
            "counter",
            "Requests handled, by method and outcome (status of the reply when replied).",
        );
        for ((method, outcome, status), n) in lock(&self.requests).iter() {
            let status = status.map(|s| s.to_string()).unwrap_or_default();
            let _ = writeln!(
                o,
                "sotto_requests_total{{method=\"{method}\",outcome=\"{outcome}\",status=\"{status}\"}} {n}"
            );
        }
        family(
            o,
            "sotto_auth_failures_total",
            "counter",
            "Requests that failed authentication (wrong or unknown credentials).",
        );
        let _ = writeln!(o, "sotto_auth_failures_total {}", self.auth_failures());
        for ((module, name), v) in lock(&self.modules).iter() {
            let metric = format!("sotto_{module}_{name}");
            let kind = if name.ends_with("_total") {
                "counter"
            } else {
                "gauge"
            };
            let help = format!("Module {module}: {}.", name.replace('_', " "));
            family(o, &metric, kind, &help);
            let _ = writeln!(o, "{metric} {v}");
        }
        out
    }
}

/// Writes the HELP and TYPE lines of a metric family.
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The HTTP response to a request head (everything up to the empty line): `GET` or `HEAD` of
/// `/metrics` gets the exposition text from `body`, any other path 404, any other method 405,
/// anything unparsable 400. Every response closes the connection.
pub fn render_response(head: &[u8], body: impl FnOnce() -> String) -> Vec<u8> {
    let line = head
        .split(|&b| b == b'\n')
        .next()
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
        .and_then(|l| std::str::from_utf8(l).ok())
        .unwrap_or("");
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next(), parts.next(), parts.next());
    let valid = matches!(version, Some("HTTP/1.1" | "HTTP/1.0")) && parts.next().is_none();
    let (status, text, content) = match (valid, method, target) {
        (false, ..) => ("400 Bad Request", "bad request\n".to_owned(), false),
        (true, Some("GET" | "HEAD"), Some(t)) if t.split('?').next() == Some("/metrics") => {
            ("200 OK", body(), true)
        }
        (true, Some("GET" | "HEAD"), _) => ("404 Not Found", "not found\n".to_owned(), false),
        _ => (
            "405 Method Not Allowed",
            "method not allowed\n".to_owned(),
            false,
        ),
    };
    let content_type = if content {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let mut r = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        text.len()
    );
    if status.starts_with("405") {
        r.push_str("Allow: GET, HEAD\r\n");
    }
    r.push_str("\r\n");
    let mut bytes = r.into_bytes();
    if method != Some("HEAD") {
        bytes.extend_from_slice(text.as_bytes());
    }
    bytes
}

/// Reads one request head (bounded in size and time) and answers it.
async fn handle(
    mut stream: tokio::net::TcpStream,
    metrics: Arc<Metrics>,
    bindings: Arc<dyn BindingStore>,
) {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            if head.len() > MAX_REQUEST_HEAD_BYTES {
                break;
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => head.extend_from_slice(buf.get(..n).unwrap_or_default()),
            }
        }
        true
    };
    if !matches!(tokio::time::timeout(HTTP_TIMEOUT, read).await, Ok(true)) {
        return;
    }
    let response = render_response(&head, || {
        let registrations = bindings
            .count()
            .inspect_err(|e| tracing::warn!(error = %e, "metrics: binding count failed"))
            .ok();
        metrics.render(registrations)
    });
    let write = async {
        stream.write_all(&response).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(HTTP_TIMEOUT, write).await;
}

/// Serves `GET /metrics` on `listener` until the task is dropped, at most
/// [`MAX_HTTP_CONNECTIONS`] connections at a time.
pub async fn serve(listener: TcpListener, metrics: Arc<Metrics>, bindings: Arc<dyn BindingStore>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HTTP_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::debug!(error = %e, "metrics: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (metrics, bindings) = (metrics.clone(), bindings.clone());
        tokio::spawn(async move {
            handle(stream, metrics, bindings).await;
            drop(permit);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn event(method: &str, outcome: Outcome, auth_failure: bool) -> ProxyEvent {
        ProxyEvent {
            method: method.to_owned(),
            source: SocketAddr::from(([127, 0, 0, 1], 5060)),
            transport: sotto_sip::transport::TransportKind::Tls,
            outcome,
            module: "test",
            auth_failure,
            connection: None,
            authenticated: false,
            fork: None,
        }
    }

    #[test]
    fn records_by_method_and_outcome() {
        let m = Metrics::new();
        m.record(&event("REGISTER", Outcome::Replied(401), true));
        m.record(&event("REGISTER", Outcome::Replied(200), false));
        m.record(&event("INVITE", Outcome::Forwarded(2), false));
        m.record(&event("FOOBAR", Outcome::Dropped, false));
        m.record(&event("BAZ", Outcome::Dropped, false));
        assert_eq!(m.requests("REGISTER", "replied"), 2);
        assert_eq!(m.requests("INVITE", "forwarded"), 1);
        assert_eq!(m.requests("OTHER", "dropped"), 2);
        assert_eq!(m.auth_failures(), 1);
        let text = m.render(Some(3));
        for line in [
            "sotto_registrations 3",
            "sotto_requests_total{method=\"REGISTER\",outcome=\"replied\",status=\"401\"} 1",
            "sotto_requests_total{method=\"REGISTER\",outcome=\"replied\",status=\"200\"} 1",
            "sotto_requests_total{method=\"INVITE\",outcome=\"forwarded\",status=\"\"} 1",
            "sotto_requests_total{method=\"OTHER\",outcome=\"dropped\",status=\"\"} 2",
            "sotto_auth_failures_total 1",
            "# TYPE sotto_requests_total counter",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} missing in\n{text}");
        }
        assert!(!text.contains("FOOBAR"));
        // A failed store leaves the gauge out rather than reporting 0.
        assert!(!m.render(None).contains("sotto_registrations 0"));
    }

    #[test]
    fn every_sample_has_a_type_line() {
        let m = Metrics::new();
        lock(&m.modules).insert(("anti_flood", "bans_total"), 2);
        lock(&m.modules).insert(("anti_flood", "tracked_sources"), 5);
        m.record(&event("OPTIONS", Outcome::Replied(200), false));
        let text = m.render(Some(0));
        assert!(text.contains("# TYPE sotto_anti_flood_bans_total counter\n"));
        assert!(text.contains("# TYPE sotto_anti_flood_tracked_sources gauge\n"));
        assert!(text.contains("\nsotto_anti_flood_bans_total 2\n"));
        let typed: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.split(' ').next())
            .collect();
        for sample in text.lines().filter(|l| !l.starts_with('#')) {
            let name = sample.split(['{', ' ']).next().unwrap_or("");
            assert!(typed.contains(&name), "{sample}: no TYPE line");
            let value = sample.rsplit(' ').next().unwrap_or("");
            assert!(value.parse::<u64>().is_ok(), "{sample}: bad value");
        }
    }

    #[test]
    fn http_answers() {
        let ok = render_response(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", || {
            "a 1\n".to_owned()
        });
        let ok = String::from_utf8(ok).unwrap();
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(ok.contains("Content-Type: text/plain; version=0.0.4"));
        assert!(ok.contains("Content-Length: 4\r\n"));
        assert!(ok.ends_with("\r\n\r\na 1\n"));
        let head = String::from_utf8(render_response(b"HEAD /metrics HTTP/1.0\r\n\r\n", || {
            "a 1\n".to_owned()
        }))
        .unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK") && head.ends_with("\r\n\r\n"));
        let status = |req: &[u8]| {
            let r = render_response(req, || unreachable!("body only for /metrics"));
            String::from_utf8(r)
                .unwrap()
                .lines()
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), "HTTP/1.1 404 Not Found");
        assert_eq!(
            status(b"POST /metrics HTTP/1.1\r\n\r\n"),
            "HTTP/1.1 405 Method Not Allowed"
        );
        assert_eq!(status(b"\x00\xff garbage"), "HTTP/1.1 400 Bad Request");
        assert_eq!(status(b""), "HTTP/1.1 400 Bad Request");
        assert_eq!(
            status(b"GET /metrics HTTP/1.1 extra\r\n\r\n"),
            "HTTP/1.1 400 Bad Request"
        );
    }
}
