//! `sotto responder`: answers OPTIONS with 200 OK over UDP/TCP/TLS (RFC 3261 §11), other
//! requests with 501 (ACK is never answered, §17.2.1). A diagnostic tool and the peer of the
//! sipp interop tests.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use bytes::Bytes;
use sotto_net::tls::{self, ClientAuth};
use sotto_net::{Incoming, Transport, TransportConfig};

/// Arguments of `sotto responder`.
#[derive(Debug, clap::Args)]
pub(crate) struct ResponderArgs {
    /// UDP address to listen on (repeatable), e.g. 127.0.0.1:5060 or [::1]:0.
    #[arg(long, value_name = "ADDR")]
    udp: Vec<SocketAddr>,
    /// TCP address to listen on (repeatable).
    #[arg(long, value_name = "ADDR")]
    tcp: Vec<SocketAddr>,
    /// TLS address to listen on (repeatable); needs --cert and --key.
    #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
    tls: Vec<SocketAddr>,
    /// PEM certificate chain for TLS (end-entity first).
    #[arg(long, value_name = "PEM")]
    cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, value_name = "PEM")]
    key: Option<PathBuf>,
    /// PEM CA certificates to verify client certificates against (optional client auth).
    #[arg(long, value_name = "PEM")]
    ca: Option<PathBuf>,
    /// Refuse TLS clients without a certificate that chains to --ca.
    #[arg(long, requires = "ca")]
    require_client_cert: bool,
    /// Exit after answering this many requests (ACKs are not counted).
    #[arg(long, value_name = "N")]
    count: Option<u64>,
}

/// Runs the responder until interrupted (exit 0) or until `--count` requests are answered.
pub(crate) fn run(args: ResponderArgs, json: bool) -> anyhow::Result<()> {
    if args.udp.is_empty() && args.tcp.is_empty() && args.tls.is_empty() {
        anyhow::bail!("nothing to listen on: give --udp, --tcp and/or --tls");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args, json))
}

async fn serve(args: ResponderArgs, json: bool) -> anyhow::Result<()> {
    // Before the listening lines, so that a signal sent right after them is handled.
    let signals = crate::signals::ShutdownSignals::install()?;
    let (transport, mut incoming) = Transport::new(TransportConfig::default());
    let mut bound = Listening::default();
    for addr in &args.udp {
        let local = transport
            .bind_udp(*addr)
            .await
            .with_context(|| format!("binding UDP {addr}"))?;
        bound.udp.push(local);
    }
    for addr in &args.tcp {
        let local = transport
            .listen_tcp(*addr)
            .await
            .with_context(|| format!("listening on TCP {addr}"))?;
        bound.tcp.push(local);
    }
    if !args.tls.is_empty() {
        let config = tls_config(&args)?;
        for addr in &args.tls {
            let local = transport
                .listen_tls(*addr, config.clone())
                .await
                .with_context(|| format!("listening on TLS {addr}"))?;
            bound.tls.push(local);
        }
    }
    bound.print(json);

    let mut answered: u64 = 0;
    let shutdown = signals.recv();
    tokio::pin!(shutdown);
    loop {
        if args.count.is_some_and(|n| answered >= n) {
            break;
        }
        let message = tokio::select! {
            () = &mut shutdown => break,
            m = incoming.recv() => m,
        };
        let Some(message) = message else { break };
        if handle(&transport, &message, json).await {
            answered += 1;
        }
    }
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "stopped", "answered": answered})
        );
    }
    Ok(())
}

fn tls_config(
    args: &ResponderArgs,
) -> anyhow::Result<std::sync::Arc<sotto_net::rustls::ServerConfig>> {
    let (Some(cert), Some(key)) = (&args.cert, &args.key) else {
        anyhow::bail!("--tls needs --cert and --key");
    };
    let client_auth = match &args.ca {
        None => ClientAuth::None,
        Some(ca) => {
            let roots =
                tls::read_certs(ca).with_context(|| format!("reading CA {}", ca.display()))?;
            if args.require_client_cert {
                ClientAuth::Required { roots }
            } else {
                ClientAuth::Optional { roots }
            }
        }
    };
    tls::server_config_from_files(cert, key, client_auth)
        .with_context(|| format!("loading TLS certificate {} and key", cert.display()))
}

/// Bound addresses, printed once at start so callers can use port 0.
#[derive(Debug, Default)]
struct Listening {
    udp: Vec<SocketAddr>,
    tcp: Vec<SocketAddr>,
    tls: Vec<SocketAddr>,
}

impl Listening {
    fn print(&self, json: bool) {
        let strs = |v: &[SocketAddr]| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "event": "listening",
                    "udp": strs(&self.udp),
                    "tcp": strs(&self.tcp),
                    "tls": strs(&self.tls),
                })
            );
        } else {
            for (name, v) in [("udp", &self.udp), ("tcp", &self.tcp), ("tls", &self.tls)] {
                for a in v.iter() {
                    println!("listening on {name} {a}");
                }
            }
        }
    }
}

/// Answers one message; returns whether it was a request that got an answer.
async fn handle(transport: &Transport, message: &Incoming, json: bool) -> bool {
    let Some(answer) = answer::answer(&message.data, &to_tag()) else {
        return false;
    };
    let result = transport.reply(message, Bytes::from(answer.response)).await;
    let mut event = serde_json::json!({
        "event": "request",
        "method": answer.method,
        "transport": message.transport.as_str(),
        "source": message.source.to_string(),
        "status": answer.status,
    });
    if let Some(info) = &message.tls {
        event["tls_version"] = info.version.into();
        event["client_certificate"] = (!info.peer_certificates.is_empty()).into();
    }
    if let Err(err) = &result {
        event["error"] = err.to_string().into();
    }
    if json {
        println!("{event}");
    } else {
        println!(
            "{} from {} over {} -> {}",
            answer.method,
            message.source,
            message.transport.as_str(),
            answer.status
        );
    }
    true
}

/// A fresh random To tag (RFC 3261 §19.3: at least 32 bits of randomness).
fn to_tag() -> String {
    let mut raw = [0u8; 8];
    if sotto_crypto_rust::provider().rng.fill(&mut raw).is_err() {
        // The OS RNG failed; a tag only has to be unique, so fall back to the clock.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        raw = (nanos as u64).to_be_bytes();
    }
    sotto_crypto::hex::encode(&raw)
}

mod answer {
    //! Builds the answer to one request (RFC 3261 §8.2.6, §11.2).

    use bytes::Bytes;
    use sotto_sip::message::{Message, Method, Response, StatusCode};
    use sotto_sip::parse::{Limits, parse_message};

    /// The answer to a request.
    pub(super) struct Answer {
        pub(super) method: String,
        pub(super) status: u16,
        pub(super) response: Vec<u8>,
    }

    /// What the responder answers to OPTIONS (§11.2).
    const ALLOW: &str = "OPTIONS";
    const ACCEPT: &str = "application/sdp";

    /// The response owed to `data`, or `None` for a response, an ACK or unparsable bytes.
    pub(super) fn answer(data: &Bytes, to_tag: &str) -> Option<Answer> {
        let message = parse_message(data.clone(), &Limits::default()).ok()?;
        let Message::Request(request) = message else {
            return None;
        };
        let method = request.method().clone();
        if method == Method::Ack {
            return None;
        }
        let status = if method == Method::Options {
            StatusCode::OK
        } else {
            StatusCode::NOT_IMPLEMENTED
        };
        let mut response = Response::from_request(&request, status);
        response.set_to_tag(to_tag);
        let headers = response.headers_mut();
        headers.push("Server", concat!("sotto/", env!("CARGO_PKG_VERSION")));
        headers.push("Allow", ALLOW);
        if status == StatusCode::OK {
            headers.push("Accept", ACCEPT);
            headers.push("Supported", "");
        }
        let mut out = Vec::with_capacity(512);
        response.write_to(&mut out);
        Some(Answer {
            method: method.as_str().to_owned(),
            status: status.as_u16(),
            response: out,
        })
    }
}
