//! `sotto init` and `sotto user`, run as the real binary in a temporary directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use x509_parser::extensions::GeneralName;

fn sotto(cwd: &Path, args: &[&str]) -> Output {
    sotto_with_stdin(cwd, args, None)
}

fn sotto_with_stdin(cwd: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sotto"))
        .args(args)
        .current_dir(cwd)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run sotto");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("sotto output")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exit code")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(o: Output) -> String {
    assert_eq!(code(&o), 0, "stderr: {}", text(&o.stderr));
    text(&o.stdout)
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

/// The certificate's subject alternative names as `DNS:x` / `IP:x` strings.
fn sans(pem: &[u8]) -> Vec<String> {
    let der = CertificateDer::from_pem_slice(pem).expect("PEM certificate");
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).expect("X.509");
    let ext = cert
        .subject_alternative_name()
        .expect("SAN extension parses")
        .expect("SAN extension present");
    ext.value
        .general_names
        .iter()
        .map(|n| match n {
            GeneralName::DNSName(d) => format!("DNS:{d}"),
            GeneralName::IPAddress(b) => match b.len() {
                4 => format!(
                    "IP:{}",
                    std::net::Ipv4Addr::from(<[u8; 4]>::try_from(*b).expect("4"))
                ),
                16 => format!(
                    "IP:{}",
                    std::net::Ipv6Addr::from(<[u8; 16]>::try_from(*b).expect("16"))
                ),
                _ => "IP:?".to_owned(),
            },
            other => format!("{other:?}"),
        })
        .collect()
}

/// Completes a TLS handshake in memory: a rustls server with `cert`/`key`, a rustls client
/// that trusts only `ca` and connects to `name`. `Err` carries the client's error.
fn handshake(ca: &[u8], cert: &[u8], key: &[u8], name: &str) -> Result<(), rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca).expect("CA PEM"))
        .expect("CA accepted as a root");
    let client_config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from_pem_slice(cert).expect("cert PEM")],
            PrivateKeyDer::from_pem_slice(key).expect("key PEM"),
        )
        .expect("server config");
    let server_name = ServerName::try_from(name.to_owned()).expect("server name");
    let mut client = rustls::ClientConnection::new(Arc::new(client_config), server_name)
        .expect("client connection");
    let mut server =
        rustls::ServerConnection::new(Arc::new(server_config)).expect("server connection");
    // A TLS 1.3 handshake needs two round trips; allow a few more, bounded.
    for _ in 0..10 {
        let mut buf = Vec::new();
        client.write_tls(&mut buf).expect("client write");
        let mut slice = buf.as_slice();
        while !slice.is_empty() {
            server.read_tls(&mut slice).expect("server read");
        }
        // A server-side failure shows up as the client's error below (via its alert).
        let _ = server.process_new_packets();
        let mut buf = Vec::new();
        server.write_tls(&mut buf).expect("server write");
        let mut slice = buf.as_slice();
        while !slice.is_empty() {
            client.read_tls(&mut slice).expect("client read");
        }
        client.process_new_packets()?;
        if !client.is_handshaking() && !server.is_handshaking() {
            return Ok(());
        }
    }
    panic!("handshake did not finish in 10 round trips");
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Every byte of the database, WAL and shared-memory files included.
fn db_bytes(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["sotto.db", "sotto.db-wal", "sotto.db-shm"] {
        if let Ok(b) = std::fs::read(dir.join(name)) {
            all.extend(b);
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn init_writes_config_ca_certificate_and_database() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("data");
    let dir_s = dir.to_str().expect("utf-8 path");
    let out = ok(sotto(
        tmp.path(),
        &[
            "--json",
            "init",
            "--dir",
            dir_s,
            "--domain",
            "example.test",
            "--san",
            "sip.example.test",
            "--san",
            "192.0.2.10",
        ],
    ));
    let lines = json_lines(&out);
    assert_eq!(lines.len(), 1, "{out}");
    let j = &lines[0];
    assert_eq!(j["event"], "initialized");
    assert_eq!(j["domain"], "example.test");
    assert_eq!(j["realm"], "example.test");
    for (field, name) in [
        ("config", "sotto.toml"),
        ("ca", "ca.pem"),
        ("ca_key", "ca.key"),
        ("certificate", "server.pem"),
        ("key", "server.key"),
        ("database", "sotto.db"),
    ] {
        let p = PathBuf::from(j[field].as_str().expect("path field"));
        assert_eq!(p, dir.join(name), "{field}");
        assert!(p.is_file(), "{} missing", p.display());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for private in ["ca.key", "server.key", "sotto.db"] {
            let mode = std::fs::metadata(dir.join(private))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "{private} is readable by others: {mode:o}");
        }
    }

    // The names the issue asks for, IPv4 addresses also as DNS names.
    let names = sans(&read(&dir.join("server.pem")));
    for want in [
        "DNS:example.test",
        "DNS:localhost",
        "DNS:127.0.0.1",
        "IP:127.0.0.1",
        "IP:::1",
        "DNS:sip.example.test",
        "IP:192.0.2.10",
        "DNS:192.0.2.10",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert_eq!(j["sans"].as_array().expect("sans").len(), names.len());

    // The CA is a CA; the server certificate chains to it for every name it carries, and not
    // for another name.
    let ca = read(&dir.join("ca.pem"));
    let ca_der = CertificateDer::from_pem_slice(&ca).expect("CA PEM");
    let (_, ca_x509) = x509_parser::parse_x509_certificate(ca_der.as_ref()).expect("CA X.509");
    assert!(ca_x509.is_ca());
    let cert = read(&dir.join("server.pem"));
    let key = read(&dir.join("server.key"));
    for name in [
        "example.test",
        "localhost",
        "sip.example.test",
        "127.0.0.1",
        "192.0.2.10",
        "::1",
    ] {
        handshake(&ca, &cert, &key, name).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let wrong = handshake(&ca, &cert, &key, "other.test").expect_err("name not in cert");
    assert!(
        matches!(wrong, rustls::Error::InvalidCertificate(_)),
        "{wrong:?}"
    );

    // A second init refuses to overwrite, changing nothing; --force writes a new CA.
    let config_before = read(&dir.join("sotto.toml"));
    let again = sotto(
        tmp.path(),
        &["init", "--dir", dir_s, "--domain", "other.test"],
    );
    assert_eq!(code(&again), 1, "stdout: {}", text(&again.stdout));
    let err = text(&again.stderr);
    assert!(
        err.contains("already exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(read(&dir.join("sotto.toml")), config_before);
    assert_eq!(read(&dir.join("ca.pem")), ca);
    ok(sotto(
        tmp.path(),
        &[
            "init",
            "--dir",
            dir_s,
            "--domain",
            "example.test",
            "--force",
        ],
    ));
    let new_ca = read(&dir.join("ca.pem"));
    assert_ne!(new_ca, ca);
    // The old CA does not vouch for the new certificate.
    let new_cert = read(&dir.join("server.pem"));
    let new_key = read(&dir.join("server.key"));
    handshake(&new_ca, &new_cert, &new_key, "example.test").expect("new chain");
    assert!(handshake(&ca, &new_cert, &new_key, "example.test").is_err());
}

#[test]
fn init_rejects_a_bad_domain_as_usage_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let o = sotto(tmp.path(), &["init", "--domain", "bad domain"]);
    assert_eq!(code(&o), 2, "{}", text(&o.stderr));
    assert!(!tmp.path().join("sotto-data").exists());
}

#[test]
fn user_add_list_passwd_del() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    // Defaults: ./sotto-data, domain localhost; `user` finds ./sotto-data/sotto.toml itself.
    ok(sotto(cwd, &["init", "--domain", "example.test"]));
    let data = cwd.join("sotto-data");
    assert_eq!(ok(sotto(cwd, &["user", "list"])), "");

    let password = "Tr0ub4dor&3-unique-marker";
    let added = ok(sotto(
        cwd,
        &["--json", "user", "add", "alice", "--password", password],
    ));
    let j = &json_lines(&added)[0];
    assert_eq!(j["event"], "user_added");
    assert_eq!(j["username"], "alice");
    assert_eq!(j["realm"], "example.test");
    assert_eq!(j["algorithms"], serde_json::json!(["SHA-256", "MD5"]));

    let list = json_lines(&ok(sotto(cwd, &["--json", "user", "list"])));
    assert_eq!(
        list,
        vec![serde_json::json!({
            "username": "alice", "realm": "example.test", "algorithms": ["MD5", "SHA-256"]
        })]
    );
    let config = data.join("sotto.toml");
    let config_s = config.to_str().expect("utf-8");
    assert_eq!(
        ok(sotto(cwd, &["user", "list", "--config", config_s])),
        "alice\texample.test\tMD5,SHA-256\n"
    );

    // Only HA1 is stored: the password is nowhere in the database, its HA1 is.
    let provider = sotto_crypto_rust::provider();
    let ha1 = |pw: &str| {
        sotto_sip::digest::Ha1::from_password(
            provider,
            sotto_sip::digest::Algorithm::Sha256,
            "alice",
            "example.test",
            pw,
        )
        .expect("ha1")
        .as_hex()
        .to_owned()
    };
    let bytes = db_bytes(&data);
    assert!(
        !contains(&bytes, password.as_bytes()),
        "clear password stored"
    );
    assert!(contains(&bytes, ha1(password).as_bytes()), "HA1 not stored");

    // A second add fails with exit 1 and changes nothing.
    let dup = sotto(cwd, &["user", "add", "alice", "--password", "other"]);
    assert_eq!(code(&dup), 1);
    assert!(
        text(&dup.stderr).contains("already exists"),
        "{}",
        text(&dup.stderr)
    );
    assert!(contains(&db_bytes(&data), ha1(password).as_bytes()));

    // passwd from standard input replaces the HA1.
    let new_password = "correct horse battery staple";
    ok(sotto_with_stdin(
        cwd,
        &[
            "user",
            "passwd",
            "alice",
            "--password-stdin",
            "--config",
            config_s,
        ],
        Some(&format!("{new_password}\n")),
    ));
    let bytes = db_bytes(&data);
    assert!(contains(&bytes, ha1(new_password).as_bytes()));
    assert!(!contains(&bytes, new_password.as_bytes()));
    let absent = sotto(cwd, &["user", "passwd", "bob", "--password", "x"]);
    assert_eq!(code(&absent), 1);

    // del, then the list is empty; deleting again fails.
    let del = json_lines(&ok(sotto(cwd, &["--json", "user", "del", "alice"])));
    assert_eq!(del[0]["event"], "user_deleted");
    assert_eq!(ok(sotto(cwd, &["--json", "user", "list"])), "");
    assert_eq!(code(&sotto(cwd, &["user", "del", "alice"])), 1);
}

#[test]
fn user_usage_errors_exit_2() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    ok(sotto(cwd, &["init"]));
    for args in [
        &["user", "add", "bob"][..],
        &["user", "add", "bob", "--password", "x", "--password-stdin"],
        &["user", "add", "bad name", "--password", "x"],
        &["user", "add", "bob@example.test", "--password", "x"],
        &["user", "frobnicate"],
    ] {
        let o = sotto(cwd, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", text(&o.stderr));
    }
    // An empty password from stdin is refused.
    let o = sotto_with_stdin(cwd, &["user", "add", "bob", "--password-stdin"], Some("\n"));
    assert_eq!(code(&o), 1);
    assert_eq!(ok(sotto(cwd, &["user", "list"])), "");
}

#[test]
fn config_loads_back_and_bad_keys_are_named() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let cwd = tmp.path();
    ok(sotto(cwd, &["init", "--domain", "example.test"]));
    let config = cwd.join("sotto-data/sotto.toml");
    let written = std::fs::read_to_string(&config).expect("config");
    // The file is documented and has the secure defaults the issue lists.
    for line in [
        "domain = \"example.test\"",
        "realm = \"example.test\"",
        "tls = [\"0.0.0.0:5061\"]",
        "udp = []",
        "tcp = []",
        "downgrade = \"refuse\"",
        "kind = \"sqlite\"",
        "min_expires = 60",
        "default_expires = 3600",
        "max_expires = 86400",
        "algorithms = [\"SHA-256\", \"MD5\"]",
        "format = \"text\"",
    ] {
        assert!(
            written.lines().any(|l| l.starts_with(line)),
            "{line} missing"
        );
    }
    for section in [
        "[modules.anti_flood]",
        "[modules.sanity]",
        "[modules.authentication]",
        "[modules.registrar]",
        "[modules.router]",
        "[modules.forward]",
        "[metrics]",
    ] {
        assert!(written.contains(section), "{section} missing");
    }
    assert!(written.lines().filter(|l| l.starts_with('#')).count() > 10);
    // It loads (user list reads it).
    ok(sotto(cwd, &["user", "list"]));

    // A misspelt key is refused, naming the key and its line.
    std::fs::write(&config, written.replace("max_expires", "max_expire")).expect("write");
    let o = sotto(cwd, &["user", "list"]);
    assert_eq!(code(&o), 1);
    let err = text(&o.stderr);
    assert!(
        err.contains("max_expire") && err.contains("sotto.toml"),
        "{err}"
    );
    // A missing config file is a clear runtime error.
    let o = sotto(cwd, &["user", "list", "--config", "nowhere.toml"]);
    assert_eq!(code(&o), 1);
    assert!(text(&o.stderr).contains("nowhere.toml"));
}
