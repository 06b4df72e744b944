//! `sotto init`: writes a data directory a server can start from: a commented config file, a
//! local CA, a server certificate signed by it, and an empty user database.
//!
//! The server certificate names the domain, `localhost`, `127.0.0.1` and `::1`, plus every
//! `--san`. IPv4 addresses go in both as iPAddress and as dNSName entries, because some SIP
//! TLS stacks (Linphone's) match only dNSName entries; IPv6 ones only as iPAddress (a name
//! with colons is not DNS syntax).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use sotto_store::SqliteStore;

use crate::config::{self, Config};

/// How long the local CA is valid.
const CA_VALIDITY: time::Duration = time::Duration::days(3650);
/// How long the server certificate is valid (825 days: the longest some clients accept).
const SERVER_VALIDITY: time::Duration = time::Duration::days(825);

/// Arguments of `sotto init`.
#[derive(Debug, clap::Args)]
pub(crate) struct InitArgs {
    /// The directory to write (created if missing, mode 0700).
    #[arg(long, value_name = "DIR", default_value = config::DEFAULT_DIR)]
    dir: PathBuf,
    /// The SIP domain served (also the digest realm and the certificate's first name).
    #[arg(long, value_name = "DOMAIN", default_value = "localhost", value_parser = parse_name)]
    domain: String,
    /// A further name for the server certificate (repeatable): a DNS name, or an IP address
    /// (an IPv4 address is added both as an IP address and as a DNS name).
    #[arg(long = "san", value_name = "NAME", value_parser = parse_name)]
    san: Vec<String>,
    /// Overwrite an existing config and certificates (a user database is kept).
    #[arg(long)]
    force: bool,
}

/// A DNS name (letters, digits, `-`, `.`, `*` for a wildcard label) or an IP address.
fn parse_name(s: &str) -> Result<String, String> {
    if s.parse::<IpAddr>().is_ok() {
        return Ok(s.to_owned());
    }
    let labels_ok = s.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && (l == "*" || l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
            && !l.starts_with('-')
            && !l.ends_with('-')
    });
    if s.is_empty() || s.len() > 253 || !labels_ok {
        return Err(format!("{s:?} is neither a DNS name nor an IP address"));
    }
    Ok(s.to_ascii_lowercase())
}

/// The files `init` writes, relative to its directory.
struct Layout {
    config: PathBuf,
    ca: PathBuf,
    ca_key: PathBuf,
    certificate: PathBuf,
    key: PathBuf,
    database: PathBuf,
}

impl Layout {
    fn new(dir: &Path, c: &Config) -> Self {
        let at = |p: &Path| {
            if p.is_absolute() {
                p.to_owned()
            } else {
                dir.join(p)
            }
        };
        Layout {
            config: dir.join(config::FILE_NAME),
            ca: at(&c.tls.ca),
            ca_key: dir.join("ca.key"),
            certificate: at(&c.tls.certificate),
            key: at(&c.tls.key),
            database: at(&c.storage.path),
        }
    }
}

/// `sotto init` with every default, for `sotto server`'s first run.
pub(crate) fn first_run(json: bool) -> anyhow::Result<()> {
    if !json {
        eprintln!(
            "sotto: no {} yet: initializing it with the defaults (sotto init)",
            config::default_path().display()
        );
    }
    run(
        InitArgs {
            dir: PathBuf::from(config::DEFAULT_DIR),
            domain: "localhost".to_owned(),
            san: Vec::new(),
            force: false,
        },
        json,
    )
}

/// Runs `sotto init`.
pub(crate) fn run(args: InitArgs, json: bool) -> anyhow::Result<()> {
    let config = Config::for_domain(&args.domain);
    let files = Layout::new(&args.dir, &config);
    if !args.force {
        let existing = [
            &files.config,
            &files.ca,
            &files.ca_key,
            &files.certificate,
            &files.key,
        ]
        .into_iter()
        .find(|p| p.exists());
        if let Some(p) = existing {
            anyhow::bail!(
                "{} already exists; not overwriting it (use --force to write a new config and \
                 new certificates)",
                p.display()
            );
        }
    }
    create_private_dir(&args.dir)?;

    let names = certificate_names(&args.domain, &args.san);
    let now = time::OffsetDateTime::now_utc();
    let (ca_pem, ca_key_pem, cert_pem, key_pem) = issue(&args.domain, &names, now)?;
    write_file(&files.ca, ca_pem.as_bytes(), false)?;
    write_file(&files.ca_key, ca_key_pem.as_bytes(), true)?;
    write_file(&files.certificate, cert_pem.as_bytes(), false)?;
    write_file(&files.key, key_pem.as_bytes(), true)?;
    write_file(
        &files.config,
        config::template(&args.domain).as_bytes(),
        false,
    )?;
    // Creates the schema (an empty user table), or checks an existing database.
    drop(
        SqliteStore::open(&files.database)
            .with_context(|| format!("creating database {}", files.database.display()))?,
    );

    let shown: Vec<String> = names.iter().map(San::to_string).collect();
    if json {
        let path = |p: &Path| p.display().to_string();
        println!(
            "{}",
            serde_json::json!({
                "event": "initialized",
                "dir": path(&args.dir),
                "config": path(&files.config),
                "ca": path(&files.ca),
                "ca_key": path(&files.ca_key),
                "certificate": path(&files.certificate),
                "key": path(&files.key),
                "database": path(&files.database),
                "domain": args.domain,
                "realm": config.server.realm,
                "sans": shown,
            })
        );
    } else {
        println!("initialized {}", args.dir.display());
        println!("  config:      {}", files.config.display());
        println!(
            "  CA:          {} (install it on phones so they trust the server)",
            files.ca.display()
        );
        println!("  CA key:      {} (keep it secret)", files.ca_key.display());
        println!(
            "  certificate: {} for {}",
            files.certificate.display(),
            shown.join(", ")
        );
        println!("  key:         {}", files.key.display());
        println!("  users:       {} (empty)", files.database.display());
        println!(
            "next: sotto user add alice --password-stdin --config {}",
            files.config.display()
        );
    }
    Ok(())
}

/// One subject alternative name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum San {
    Dns(String),
    Ip(IpAddr),
}

impl std::fmt::Display for San {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            San::Dns(n) => write!(f, "DNS:{n}"),
            San::Ip(ip) => write!(f, "IP:{ip}"),
        }
    }
}

/// The server certificate's names, without repeats: the domain first, then `localhost`,
/// `127.0.0.1` and `::1`, then the `--san` values. IPv4 addresses appear as IP and DNS names.
fn certificate_names(domain: &str, extra: &[String]) -> Vec<San> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let given = [domain, "localhost", "127.0.0.1", "::1"]
        .into_iter()
        .chain(extra.iter().map(String::as_str));
    for name in given {
        let forms = match name.parse::<IpAddr>() {
            // A dNSName of an IPv6 address could never match (colons are not DNS syntax).
            Ok(ip @ IpAddr::V4(_)) => vec![San::Ip(ip), San::Dns(ip.to_string())],
            Ok(ip @ IpAddr::V6(_)) => vec![San::Ip(ip)],
            Err(_) => vec![San::Dns(name.to_ascii_lowercase())],
        };
        for san in forms {
            if seen.insert(san.clone()) {
                out.push(san);
            }
        }
    }
    out
}

/// Makes the CA and the server certificate: `(ca_pem, ca_key_pem, cert_pem, key_pem)`.
fn issue(
    domain: &str,
    names: &[San],
    now: time::OffsetDateTime,
) -> anyhow::Result<(String, String, String, String)> {
    let ca_key = KeyPair::generate().context("generating the CA key")?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = DistinguishedName::new();
    ca.distinguished_name
        .push(DnType::CommonName, format!("sotto local CA for {domain}"));
    ca.distinguished_name
        .push(DnType::OrganizationName, "sotto");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - time::Duration::hours(1);
    ca.not_after = now + CA_VALIDITY;
    let ca_cert = ca
        .self_signed(&ca_key)
        .context("signing the CA certificate")?;
    let ca_pem = ca_cert.pem();
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().context("generating the server key")?;
    let mut server = CertificateParams::default();
    server.distinguished_name = DistinguishedName::new();
    server.distinguished_name.push(DnType::CommonName, domain);
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    server.use_authority_key_identifier_extension = true;
    server.not_before = now - time::Duration::hours(1);
    server.not_after = now + SERVER_VALIDITY;
    for san in names {
        server.subject_alt_names.push(match san {
            San::Ip(ip) => SanType::IpAddress(*ip),
            San::Dns(n) => SanType::DnsName(
                n.as_str()
                    .try_into()
                    .with_context(|| format!("{n:?} cannot be a certificate DNS name"))?,
            ),
        });
    }
    let cert = server
        .signed_by(&key, &issuer)
        .context("signing the server certificate")?;
    Ok((ca_pem, ca_key_pem, cert.pem(), key.serialize_pem()))
}

/// Creates `dir` (and parents) if missing; a directory created here is owner-only on Unix.
fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .with_context(|| format!("creating directory {}", dir.display()))
}

/// Writes `bytes` to `path`, replacing any file there. `private` files are created mode 0600
/// on Unix (a replaced file is removed first, so its old mode does not carry over).
fn write_file(path: &Path, bytes: &[u8], private: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("replacing {}", path.display())),
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cover_domain_loopback_and_extras_once() {
        let names: Vec<String> = certificate_names(
            "example.test",
            &[
                "sip.example.test".into(),
                "192.0.2.7".into(),
                "localhost".into(),
            ],
        )
        .iter()
        .map(San::to_string)
        .collect();
        assert_eq!(
            names,
            [
                "DNS:example.test",
                "DNS:localhost",
                "IP:127.0.0.1",
                "DNS:127.0.0.1",
                "IP:::1",
                "DNS:sip.example.test",
                "IP:192.0.2.7",
                "DNS:192.0.2.7",
            ]
        );
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(parse_name("Example.TEST"), Ok("example.test".to_owned()));
        assert!(parse_name("::1").is_ok());
        assert!(parse_name("*.example.test").is_ok());
        for bad in ["", "a..b", "-a.test", "a b", "é.test", "a.test."] {
            assert!(parse_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
