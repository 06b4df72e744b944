//! The LIME key server's HTTPS edge: TLS (the server's certificate), HTTP/1.1 framing
//! (keep-alive, `Content-Length` bodies), and nothing else — every decision is
//! [`LimeService::handle`]'s.

use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_lime::keyserver::KeyStore;
use sotto_net::rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::lime_service::{HttpRequest, HttpResponse, LimeService};

/// Connections served at once.
const MAX_CONNECTIONS: usize = 512;
/// The TLS handshake must finish in this time.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection idle this long (no request started) is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest header block.
const MAX_HEADER: usize = 16 * 1024;
/// Largest body (a registration with 500 X448 OPks is about 30 KiB).
const MAX_BODY: usize = 256 * 1024;

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        _ => "Error",
    }
}

fn render(r: &HttpResponse, close: bool) -> Vec<u8> {
    let mut head = format!("HTTP/1.1 {} {}\r\n", r.status, reason(r.status));
    for (n, v) in &r.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    if let Some(ct) = r.content_type {
        head.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n", r.body.len()));
    if close {
        head.push_str("Connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&r.body);
    out
}

/// Reads one request into `buf` (which may hold the start of it); returns the length of
/// its head and of its body, or `None` at end of stream or on a framing error (answered).
async fn read_request<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    buf: &mut Vec<u8>,
) -> Option<(usize, usize)> {
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > MAX_HEADER {
            let _ = s.write_all(&render(&HttpResponse::bad(400), true)).await;
            return None;
        }
        let n = tokio::time::timeout(IDLE_TIMEOUT, s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let len = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    if len > MAX_BODY {
        let _ = s.write_all(&render(&HttpResponse::bad(413), true)).await;
        return None;
    }
    while buf.len() < head_end + len {
        let n = tokio::time::timeout(IDLE_TIMEOUT, s.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head_end, len))
}

/// A request read off the wire, owned (it moves to the blocking pool).
struct OwnedRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    close: bool,
}

fn parse_head(head: &str, body: &[u8]) -> OwnedRequest {
    let mut lines = head.split("\r\n");
    let mut start = lines.next().unwrap_or("").split(' ');
    let (method, target, version) = (
        start.next().unwrap_or("").to_owned(),
        start.next().unwrap_or("").to_owned(),
        start.next().unwrap_or(""),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let close = version != "HTTP/1.1"
        || headers
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
    OwnedRequest {
        method,
        target,
        headers,
        body: body.to_vec(),
        close,
    }
}

async fn serve_connection<S, K>(mut s: S, service: Arc<LimeService<K>>)
where
    S: AsyncRead + AsyncWrite + Unpin,
    K: KeyStore + 'static,
{
    let mut buf = Vec::new();
    while let Some((head_len, body_len)) = read_request(&mut s, &mut buf).await {
        let head = String::from_utf8_lossy(&buf[..head_len]).into_owned();
        let req = parse_head(&head, &buf[head_len..head_len + body_len]);
        buf.drain(..head_len + body_len);
        let close = req.close;
        // The store may block (PostgreSQL, SQLite's disk): off the async workers.
        let service = service.clone();
        let handled = tokio::task::spawn_blocking(move || {
            let r = HttpRequest {
                method: &req.method,
                target: &req.target,
                headers: req
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect(),
                body: &req.body,
            };
            service.handle(&r, Instant::now())
        })
        .await;
        let Ok(response) = handled else { break };
        if s.write_all(&render(&response, close)).await.is_err() || close {
            break;
        }
    }
    let _ = s.shutdown().await;
}

/// Serves the key server over HTTPS on `listener` until the task is dropped.
pub async fn serve<K: KeyStore + Send + Sync + 'static>(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    service: Arc<LimeService<K>>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let tcp = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::debug!(error = %e, "lime: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, service) = (acceptor.clone(), service.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => serve_connection(tls, service).await,
                Ok(Err(e)) => tracing::debug!(error = %e, "lime: TLS handshake failed"),
                Err(_) => tracing::debug!("lime: TLS handshake timed out"),
            }
            drop(permit);
        });
    }
}
