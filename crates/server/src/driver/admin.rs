//! The operator's control channel: commands reach the proxy's loop over a channel (the proxy
//! is owned by that loop, so the loop answers them between two messages), and a Unix socket
//! carries them from `sotto ban list|lift`.
//!
//! Wire format on the socket: one JSON object per line each way. Requests:
//! `{"command":"blocks"}` and `{"command":"lift","source":"192.0.2.7"}`; answers:
//! `{"blocks":[{"module":..,"source":..,"account":..|null,"reason":..,"remaining_secs":..}]}`,
//! `{"lifted":N}` or `{"error":".."}`.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::sync::{mpsc, oneshot};

use crate::pipeline::Block;

/// A command for the proxy's loop, with where to answer.
#[derive(Debug)]
pub enum AdminRequest {
    /// List the blocks (bans, lockouts) in force.
    Blocks(oneshot::Sender<Vec<Block>>),
    /// Lift every block on a source address; answers how many were lifted.
    Lift(IpAddr, oneshot::Sender<usize>),
}

/// The loop's end of the channel ([`super::RunOptions::admin`]).
#[derive(Debug)]
pub struct Admin {
    pub(super) requests: tokio::sync::Mutex<mpsc::Receiver<AdminRequest>>,
}

/// The senders' end: cheap to clone, one per socket connection.
#[derive(Debug, Clone)]
pub struct AdminHandle {
    requests: mpsc::Sender<AdminRequest>,
}

/// A channel between operator commands and the proxy's loop.
pub fn channel() -> (AdminHandle, Admin) {
    // Operators send a command at a time: a short queue is plenty.
    let (tx, rx) = mpsc::channel(16);
    (
        AdminHandle { requests: tx },
        Admin {
            requests: tokio::sync::Mutex::new(rx),
        },
    )
}

impl AdminHandle {
    /// The blocks in force, or `None` if the loop is gone.
    pub async fn blocks(&self) -> Option<Vec<Block>> {
        let (tx, rx) = oneshot::channel();
        self.requests.send(AdminRequest::Blocks(tx)).await.ok()?;
        rx.await.ok()
    }

    /// Lifts the blocks on `source`: how many, or `None` if the loop is gone.
    pub async fn lift(&self, source: IpAddr) -> Option<usize> {
        let (tx, rx) = oneshot::channel();
        self.requests
            .send(AdminRequest::Lift(source, tx))
            .await
            .ok()?;
        rx.await.ok()
    }

    /// Answers one request line of the socket's format.
    pub async fn answer(&self, line: &str) -> serde_json::Value {
        let request: serde_json::Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => return serde_json::json!({"error": format!("not JSON: {e}")}),
        };
        let gone = || serde_json::json!({"error": "the proxy is stopping"});
        match request["command"].as_str() {
            Some("blocks") => match self.blocks().await {
                Some(blocks) => {
                    serde_json::json!({"blocks": blocks.iter().map(block_json).collect::<Vec<_>>()})
                }
                None => gone(),
            },
            Some("lift") => {
                let Some(source) = request["source"].as_str().and_then(|s| s.parse().ok()) else {
                    return serde_json::json!({"error": "lift needs \"source\": an IP address"});
                };
                match self.lift(source).await {
                    Some(n) => serde_json::json!({"lifted": n}),
                    None => gone(),
                }
            }
            _ => serde_json::json!({"error": "unknown command (blocks, lift)"}),
        }
    }
}

/// One block as the socket says it.
pub fn block_json(b: &Block) -> serde_json::Value {
    serde_json::json!({
        "module": b.module,
        "source": b.source.to_string(),
        "account": b.account,
        "reason": b.reason,
        "remaining_secs": b.remaining.as_secs(),
    })
}

/// Longest request line read from the socket.
const MAX_LINE: usize = 4096;
/// How long a socket client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Binds the control socket at `path` (mode 0600). A socket file left by a server that is no
/// longer running is replaced; one a running server answers on is an error.
pub async fn bind(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    if path.exists() {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!("another server answers on {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Serves the socket: one request line, one answer line, per connection.
pub async fn serve(listener: tokio::net::UnixListener, handle: AdminHandle) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let handle = handle.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut line = String::new();
            let mut reader = BufReader::new(read.take(MAX_LINE as u64));
            let read = tokio::time::timeout(READ_TIMEOUT, reader.read_line(&mut line)).await;
            let answer = match read {
                Ok(Ok(n)) if n > 0 => handle.answer(line.trim()).await,
                _ => serde_json::json!({"error": "no request line"}),
            };
            let mut text = answer.to_string();
            text.push('\n');
            let _ = write.write_all(text.as_bytes()).await;
        });
    }
}

/// Sends one request to the socket at `path` and returns the answer (for `sotto ban`).
pub async fn request(
    path: &Path,
    request: &serde_json::Value,
) -> std::io::Result<serde_json::Value> {
    let stream = tokio::net::UnixStream::connect(path).await?;
    let (read, mut write) = stream.into_split();
    let mut text = request.to_string();
    text.push('\n');
    write.write_all(text.as_bytes()).await?;
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await?;
    serde_json::from_str(&line).map_err(std::io::Error::other)
}
