//! `sotto agent`: the user agent on the command line.
//!
//! - `sotto agent init --dir D --identity sip:alice@example.test --password P
//!   --proxy sips:example.test --ca ca.pem [--dns 192.0.2.53:53] [--media-encryption sdes|zrtp|dtls|none]`
//!   writes
//!   `D/agent.toml` (mode 0600: it holds the password) and creates `D/data`. With
//!   `--tls-listen 127.0.0.1:5071 --cert cert.pem --key key.pem [--trusted-host 127.0.0.1]`
//!   the agent also accepts direct calls over TLS (from trusted hosts only).
//!   `--client-cert client.pem --client-key client.key` logs in with a TLS client certificate
//!   (presented to the proxy; `--password` is then optional): a registration the server accepts
//!   without a digest challenge reports `"auth": "tls-client-certificate"`.
//! - `sotto agent -c D/agent.toml register`: registers, refreshes, and on Ctrl-C/SIGTERM
//!   unregisters and exits 0.
//! - `sotto agent -c F call sip:bob@example.test [--play in.wav|--tone 440]
//!   [--record out.wav] [--duration 10s]`
//! - `sotto agent -c F listen [--auto-answer] [--play ...] [--record ...]`
//! - A direct call: `sotto agent -c F call sips:bob@127.0.0.1:5072` (or
//!   `sip:bob@127.0.0.1:5072;transport=tls`) goes straight to that address over TLS, the peer's
//!   certificate verified against the account's CA; SDES is allowed (the only hop is TLS).
//!   `call sip:bob@127.0.0.1:5072` (an IP and a port, no TLS) is a direct call over UDP: with
//!   mandatory encryption it is refused, unless `agent.toml` has the insecure override
//!   `[danger] sdes_without_tls = true` (never written by `init`); then a warning goes to
//!   stderr at start and for every such call, and `call_security` carries
//!   `"danger": ["sdes_without_tls"]` with a note that the keys went in clear text.
//!
//! The proxy URI may name a domain: it is located by DNS (NAPTR, SRV, A/AAAA; RFC 3263), its
//! servers tried in order, and its certificate checked against the domain. A call whose media
//! stops arriving for `[media] rtp_timeout_secs` (30 s) is hung up, with that reason.
//!
//! With `--json` every event is one JSON object per line: `listening` (a direct listener),
//! `registered`, `incoming_call`, `call_state`, `call_security`, `media_stats` (with
//! `rtcp_sent`/`rtcp_received`), `recorded`, `rejected`, `proxy_failover`, `unregistered`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use sotto_agent::config::{
    AccountConfig, AccountSection, DangerSection, DataSection, DnsSection, Encryption,
    FORMAT_VERSION, KeyExchange, MediaSection, ProxySection, SecuritySection, new_instance_urn,
};
use sotto_agent::driver::dtls_store::CertificateStore;
use sotto_agent::driver::zid_store::ZidStore;
use sotto_agent::driver::{self, DriverConfig, Mode, Source};

use crate::agent_output;
use sotto_agent::{UaConfig, UaEvent};
use sotto_sip::message::Uri;

/// Arguments of `sotto agent`.
#[derive(Debug, clap::Args)]
pub(crate) struct AgentArgs {
    /// The account file (written by `sotto agent init`).
    #[arg(short = 'c', long = "config", value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: AgentCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AgentCommand {
    /// Write an account file and data directory.
    Init(Box<InitArgs>),
    /// Register and stay registered until Ctrl-C (then unregister).
    Register,
    /// Call someone.
    Call(CallArgs),
    /// Wait for calls.
    Listen(ListenArgs),
    /// Confirm or reject the ZRTP SAS of a peer after comparing it (kept in the cache for
    /// later calls; during a call, type `sas confirm` or `sas reject` instead).
    Sas(SasArgs),
    /// This device's LIME message keys: made and registered on the account's key server on
    /// first use, then read from the data directory.
    Keys(KeysArgs),
}

#[derive(Debug, clap::Args)]
struct KeysArgs {
    /// `status`: the curve, identity fingerprint, one-time prekeys on the server, peers.
    #[arg(value_parser = ["status"])]
    action: String,
}

#[derive(Debug, clap::Args)]
struct SasArgs {
    /// `confirm` (the SAS matched) or `reject` (it did not, or you are not sure).
    #[arg(value_parser = ["confirm", "reject"])]
    action: String,
    /// The peer: its SIP URI or ZID (hex); may be left out when the cache knows one peer.
    #[arg(long)]
    peer: Option<String>,
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// Directory to write agent.toml into (created if missing).
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
    /// Address of record, e.g. sip:alice@example.test.
    #[arg(long)]
    identity: String,
    /// Digest password (optional with --client-cert).
    #[arg(long, required_unless_present = "client_cert")]
    password: Option<String>,
    /// PEM certificate chain presented to the proxy (TLS client-certificate login).
    #[arg(long, value_name = "FILE", requires = "client_key")]
    client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, value_name = "FILE", requires = "client_cert")]
    client_key: Option<PathBuf>,
    /// Digest user name (default: the identity's user part).
    #[arg(long)]
    username: Option<String>,
    /// Outbound proxy and registrar: a domain located by DNS (RFC 3263), e.g.
    /// sips:example.test, or an address, e.g. sips:192.0.2.1:5061.
    #[arg(long)]
    proxy: String,
    /// Name servers for locating the proxy (repeatable, ADDR:PORT); default: the system's.
    #[arg(long, value_name = "ADDR:PORT")]
    dns: Vec<std::net::SocketAddr>,
    /// CA certificate (PEM) the proxy's certificate must chain to.
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// Media encryption: sdes (mandatory SRTP keyed by SDES, the default), zrtp (mandatory
    /// SRTP keyed end to end by ZRTP, with a SAS to compare), dtls (mandatory SRTP keyed by
    /// DTLS-SRTP, certificates vouched for by the SDP fingerprints) or none.
    #[arg(long, value_name = "METHOD", default_value = "sdes")]
    media_encryption: String,
    /// The LIME key server for end-to-end message keys (Linphone's lime_server_url), e.g.
    /// https://example.test:8443/lime.
    #[arg(long, value_name = "URL")]
    lime_server: Option<String>,
    /// Listen for direct calls over TLS on this address (needs --cert and --key).
    #[arg(long, value_name = "ADDR", requires_all = ["cert", "key"])]
    tls_listen: Option<std::net::SocketAddr>,
    /// PEM certificate chain of the direct TLS listener.
    #[arg(long, value_name = "FILE")]
    cert: Option<PathBuf>,
    /// PEM private key of the direct TLS listener.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// A host allowed to send requests directly (repeatable); others are refused with 403.
    #[arg(long, value_name = "IP")]
    trusted_host: Vec<std::net::IpAddr>,
    /// Overwrite an existing agent.toml.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct MediaArgs {
    /// Play this WAV file (looped).
    #[arg(long, value_name = "FILE", conflicts_with = "tone")]
    play: Option<PathBuf>,
    /// Play a sine tone of this frequency in Hz.
    #[arg(long, value_name = "HZ")]
    tone: Option<f64>,
    /// Record the received audio into this WAV file (8 kHz mono).
    #[arg(long, value_name = "FILE")]
    record: Option<PathBuf>,
    /// Seconds between media_stats events during a call.
    #[arg(long, value_name = "SECONDS", default_value = "5")]
    stats_interval: f64,
}

#[derive(Debug, clap::Args)]
struct CallArgs {
    /// Whom to call, e.g. sip:bob@example.test.
    target: String,
    #[command(flatten)]
    media: MediaArgs,
    /// Hang up after this long once connected (e.g. 10s, 500ms, 2m).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
}

#[derive(Debug, clap::Args)]
struct ListenArgs {
    /// Answer incoming calls at once.
    #[arg(long)]
    auto_answer: bool,
    #[command(flatten)]
    media: MediaArgs,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("not a duration: {s:?} (e.g. 10s, 500ms, 2m)"))?;
    if !(v.is_finite() && v >= 0.0 && v * mult <= 86_400.0) {
        return Err(format!("duration out of range: {s:?}"));
    }
    Ok(Duration::from_secs_f64(v * mult))
}

/// Runs `sotto agent`.
pub(crate) fn run(args: AgentArgs, json: bool) -> anyhow::Result<()> {
    match args.command {
        AgentCommand::Init(a) => init(*a, json),
        cmd => {
            let path = args.config.context(
                "give the account file with -c FILE (write one with `sotto agent init`)",
            )?;
            let account = AccountConfig::load(&path)?;
            if let AgentCommand::Sas(a) = cmd {
                return sas_command(&account, &a, json);
            }
            if let AgentCommand::Keys(_) = cmd {
                return crate::agent_keys::status(&account, tls_client(&account)?, json);
            }
            let (mode, media) = match cmd {
                AgentCommand::Register => (Mode::Register, None),
                AgentCommand::Call(c) => {
                    let target = Uri::parse(&c.target)
                        .map_err(|e| anyhow::anyhow!("bad target {:?}: {e}", c.target))?;
                    (
                        Mode::Call {
                            target,
                            duration: c.duration,
                        },
                        Some(c.media),
                    )
                }
                AgentCommand::Listen(l) => (
                    Mode::Listen {
                        auto_answer: l.auto_answer,
                    },
                    Some(l.media),
                ),
                AgentCommand::Init(_) => bail!("init does not take -c"),
                AgentCommand::Sas(_) | AgentCommand::Keys(_) => unreachable!("handled above"),
            };
            drive(&account, mode, media, json)
        }
    }
}

/// The TLS client configuration of the account: its CA, its client certificate if any.
fn tls_client(
    account: &AccountConfig,
) -> anyhow::Result<std::sync::Arc<sotto_net::rustls::ClientConfig>> {
    let ca = account.resolve(&account.proxy.ca);
    let roots =
        sotto_net::tls::read_certs(&ca).with_context(|| format!("loading CA {}", ca.display()))?;
    let client_cert = match account.client_cert_files() {
        Some((cert, key)) => {
            let chain = sotto_net::tls::read_certs(&cert)
                .with_context(|| format!("loading client certificate {}", cert.display()))?;
            let key = sotto_net::tls::read_private_key(&key)
                .with_context(|| format!("loading client key {}", key.display()))?;
            Some((chain, key))
        }
        None => None,
    };
    sotto_net::tls::client_config(roots, client_cert)
        .with_context(|| format!("TLS client configuration (CA {})", ca.display()))
}

/// Whether the agent may read commands (`sas confirm`) from standard input: a pipe or file
/// always; a terminal only when we are its foreground job (a background job that reads its
/// terminal is stopped by SIGTTIN: `sotto agent … listen &` must keep running).
fn stdin_is_ours() -> bool {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return true;
    }
    nix::unistd::tcgetpgrp(&stdin).is_ok_and(|fg| fg == nix::unistd::getpgrp())
}

/// `sotto agent sas confirm|reject`: sets the verified flag of a peer in the ZRTP cache.
fn sas_command(account: &AccountConfig, a: &SasArgs, json: bool) -> anyhow::Result<()> {
    let store = ZidStore::in_dir(&account.resolve(&account.data.dir));
    let mut cache = store
        .load(sotto_crypto_rust::provider().rng)
        .map_err(|e| anyhow::anyhow!(e))?;
    let hex = |z: &[u8; 12]| sotto_crypto::hex::encode(z);
    let matches: Vec<([u8; 12], Option<String>)> = cache
        .peers()
        .filter(|(z, p)| match &a.peer {
            Some(want) => p.uri.as_deref() == Some(want.as_str()) || hex(z) == *want,
            None => true,
        })
        .map(|(z, p)| (*z, p.uri.clone()))
        .collect();
    let (zid, uri) = match matches.as_slice() {
        [one] => one.clone(),
        [] => bail!(
            "no ZRTP peer {} in {}",
            a.peer.as_deref().unwrap_or("at all"),
            store.path().display()
        ),
        _ => bail!(
            "{} ZRTP peers in the cache: name one with --peer URI or ZID",
            matches.len()
        ),
    };
    let verified = a.action == "confirm";
    cache.set_verified(zid, verified);
    store.save(&cache).map_err(|e| anyhow::anyhow!(e))?;
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "sas_verified", "peer_zid": hex(&zid),
                "peer": uri, "verified": verified})
        );
    } else {
        println!(
            "ZRTP peer {} ({}): SAS {}",
            uri.as_deref().unwrap_or("?"),
            hex(&zid),
            if verified { "confirmed" } else { "rejected" }
        );
    }
    Ok(())
}

fn init(a: InitArgs, json: bool) -> anyhow::Result<()> {
    let (encryption, method) = match a.media_encryption.as_str() {
        "sdes" | "srtp" => (Encryption::Mandatory, KeyExchange::Sdes),
        "zrtp" => (Encryption::Mandatory, KeyExchange::Zrtp),
        "dtls" => (Encryption::Mandatory, KeyExchange::Dtls),
        "none" => (Encryption::None, KeyExchange::Sdes),
        other => bail!("--media-encryption {other:?}: expected sdes, zrtp, dtls or none"),
    };
    std::fs::create_dir_all(&a.dir).with_context(|| format!("creating {}", a.dir.display()))?;
    let file = a.dir.join("agent.toml");
    if file.exists() && !a.force {
        bail!("{} exists (use --force to overwrite)", file.display());
    }
    let ca = std::path::absolute(&a.ca).unwrap_or(a.ca.clone());
    if !ca.is_file() {
        bail!("CA file {} not found", ca.display());
    }
    let instance = new_instance_urn(sotto_crypto_rust::provider().rng)
        .map_err(|e| anyhow::anyhow!("random number generator: {e}"))?;
    let config = AccountConfig {
        format: FORMAT_VERSION,
        account: AccountSection {
            identity: a.identity,
            username: a.username,
            password: a.password.unwrap_or_default(),
            client_certificate: a.client_cert.map(|p| std::path::absolute(&p).unwrap_or(p)),
            client_key: a.client_key.map(|p| std::path::absolute(&p).unwrap_or(p)),
            instance,
            register_expires_secs: 600,
        },
        proxy: ProxySection {
            uri: a.proxy,
            ca,
            server_name: None,
            keepalive_secs: 25,
        },
        media: MediaSection {
            encryption,
            methods: vec![method],
            ..MediaSection::default()
        },
        security: SecuritySection {
            trusted_hosts: a.trusted_host,
            listen_tls: a.tls_listen,
            certificate: a.cert.map(|p| std::path::absolute(&p).unwrap_or(p)),
            key: a.key.map(|p| std::path::absolute(&p).unwrap_or(p)),
            ..SecuritySection::default()
        },
        data: DataSection::default(),
        lime: sotto_agent::config::LimeSection {
            server_url: a.lime_server.clone(),
            curve: None,
        },
        dns: DnsSection {
            servers: a.dns.clone(),
        },
        // Insecure overrides are never set by init: the user edits the file on purpose.
        danger: DangerSection::default(),
        base_dir: a.dir.clone(),
    };
    config.check()?;
    let text = config.to_toml()?;
    write_private(&file, &text)?;
    let data = a.dir.join(&config.data.dir);
    std::fs::create_dir_all(&data).with_context(|| format!("creating {}", data.display()))?;
    if json {
        println!(
            "{}",
            serde_json::json!({"event": "agent_initialized", "config": file.display().to_string(),
                "data_dir": data.display().to_string(), "identity": config.account.identity,
                "media_encryption": config.media.encryption.as_str(),
                "key_exchange": config.media.methods.first().map(|m| m.as_str())})
        );
    } else {
        println!(
            "wrote {} (data directory {})",
            file.display(),
            data.display()
        );
        println!("next: sotto agent -c {} register", file.display());
    }
    Ok(())
}

fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn drive(
    account: &AccountConfig,
    mode: Mode,
    media: Option<MediaArgs>,
    json: bool,
) -> anyhow::Result<()> {
    let ua = UaConfig::from_account(account)?;
    let tls_client = tls_client(account)?;
    let (play, record, stats_interval) = match media {
        Some(m) => {
            let play = match (&m.play, m.tone) {
                (Some(p), _) => Source::from_wav(p)?,
                (None, Some(f)) if f > 0.0 && f < 4000.0 => Source::Tone(f),
                (None, Some(f)) => bail!("--tone {f}: must be between 0 and 4000 Hz"),
                (None, None) => Source::Silence,
            };
            let secs = if m.stats_interval.is_finite() && m.stats_interval > 0.0 {
                m.stats_interval.min(3600.0)
            } else {
                5.0
            };
            (play, m.record, Duration::from_secs_f64(secs))
        }
        None => (Source::Silence, None, Duration::from_secs(5)),
    };
    let listen_tls = match (
        account.security.listen_tls,
        &account.security.certificate,
        &account.security.key,
    ) {
        (Some(addr), Some(cert), Some(key)) => {
            let (cert, key) = (account.resolve(cert), account.resolve(key));
            let server = sotto_net::tls::server_config_from_files(
                &cert,
                &key,
                sotto_net::tls::ClientAuth::None,
            )
            .with_context(|| format!("loading {} and {}", cert.display(), key.display()))?;
            Some((addr, server))
        }
        _ => None,
    };
    let cfg = DriverConfig {
        ua,
        tls_client,
        listen_udp: account.security.listen_udp.clone(),
        listen_tls,
        play,
        record,
        mode,
        keepalive: Duration::from_secs(u64::from(account.proxy.keepalive_secs)),
        stats_interval,
        dns: sotto_net::dns::DnsConfig {
            servers: account.dns.servers.clone(),
            ..sotto_net::dns::DnsConfig::default()
        },
        rtp_timeout: Some(Duration::from_secs(u64::from(
            account.media.rtp_timeout_secs,
        )))
        .filter(|d| !d.is_zero()),
        zrtp_store: Some(ZidStore::in_dir(&account.resolve(&account.data.dir))),
        dtls_store: Some(CertificateStore::in_dir(
            &account.resolve(&account.data.dir),
        )),
        stdin_commands: stdin_is_ours(),
    };
    for name in account.danger.in_use() {
        eprintln!(
            "sotto agent: WARNING: insecure override [danger] {name} = true is on: {}",
            danger_text(name)
        );
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let signals = runtime.block_on(async { crate::signals::ShutdownSignals::install() })?;
    let result = runtime.block_on(driver::run(
        cfg,
        |out| {
            if json {
                println!("{}", agent_output::to_json(out));
            } else {
                println!("{}", agent_output::to_text(out));
            }
            if let driver::Output::Ua(UaEvent::Rejected { .. } | UaEvent::SecurityAlert { .. }) =
                out
            {
                // Also on stderr: a refused request or a security alert is worth a look in
                // any output mode.
                eprintln!("sotto agent: {}", agent_output::to_text(out));
            }
            if let driver::Output::Ua(UaEvent::CallSecurity { call, report }) = out {
                // A call that relies on an insecure override is announced in any output mode.
                for name in &report.danger {
                    eprintln!(
                        "sotto agent: WARNING: call {call} uses the insecure override [danger] \
                         {name}: {}",
                        report.note.as_deref().unwrap_or_else(|| danger_text(name))
                    );
                }
            }
        },
        signals.recv(),
    ));
    result.map_err(anyhow::Error::from)
}

/// What an insecure `[danger]` override means, for the warnings on stderr.
fn danger_text(name: &str) -> &'static str {
    match name {
        "sdes_without_tls" => {
            "direct calls over UDP may carry SDES keys in clear text: anyone on the path can \
             decrypt them"
        }
        _ => "an insecure override",
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("1e9s").is_err());
    }
}
