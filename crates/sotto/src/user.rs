//! `sotto user add|passwd|del|list`: the accounts of the server's user database.
//!
//! Only HA1 values are stored (RFC 7616 §3.4.2), one per algorithm listed in
//! `[modules.authentication] algorithms`, for the configured realm; the password itself is
//! never written anywhere and is wiped from memory after use.

use std::io::{BufRead as _, Read as _};
use std::path::PathBuf;

use anyhow::Context as _;
use sotto_sip::digest::UserRecord;
use sotto_store::{Error as StoreError, SqliteStore, UserStore};
use zeroize::Zeroizing;

use crate::config::{self, Config, StorageKind};

/// Arguments of `sotto user`.
#[derive(Debug, clap::Args)]
pub(crate) struct UserArgs {
    /// The config file naming the database and realm.
    #[arg(short = 'c', long, global = true, value_name = "FILE", default_value_os_t = config::default_path())]
    config: PathBuf,
    #[command(subcommand)]
    command: UserCommand,
}

/// The `sotto user` subcommands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum UserCommand {
    /// Add a user (fails if it exists).
    Add(PasswordArgs),
    /// Set a new password for an existing user.
    Passwd(PasswordArgs),
    /// Delete a user (fails if absent).
    Del(NameArgs),
    /// List the users (`--json`: one object per line).
    List,
}

/// A user name and where its password comes from.
#[derive(Debug, clap::Args)]
pub(crate) struct PasswordArgs {
    /// The user name (the user part of sip:USER@domain).
    #[arg(value_parser = parse_username)]
    username: String,
    #[command(flatten)]
    password: PasswordSource,
}

/// Exactly one password source.
#[derive(Debug, clap::Args)]
#[group(required = true, multiple = false)]
pub(crate) struct PasswordSource {
    /// The password (visible to other local users in the process list: prefer
    /// --password-stdin).
    #[arg(long, value_name = "PASSWORD")]
    password: Option<String>,
    /// Read the password from the first line of standard input.
    #[arg(long)]
    password_stdin: bool,
}

/// A user name.
#[derive(Debug, clap::Args)]
pub(crate) struct NameArgs {
    /// The user name.
    #[arg(value_parser = parse_username)]
    username: String,
}

/// Longest user name accepted.
const MAX_USERNAME_BYTES: usize = 64;
/// Longest password accepted.
const MAX_PASSWORD_BYTES: usize = 1024;

/// A SIP user part without escapes (RFC 3261 §25.1: unreserved and user-unreserved
/// characters), at most [`MAX_USERNAME_BYTES`].
fn parse_username(s: &str) -> Result<String, String> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b);
    if s.is_empty() || s.len() > MAX_USERNAME_BYTES || !s.bytes().all(allowed) {
        return Err(format!(
            "{s:?} is not a valid user name (1 to {MAX_USERNAME_BYTES} of: letters, digits, \
             and - _ . ! ~ * ' ( ) & = + $ , ; ? /)"
        ));
    }
    Ok(s.to_owned())
}

/// Runs `sotto user`.
pub(crate) fn run(args: UserArgs, json: bool) -> anyhow::Result<()> {
    let config = config::load(&args.config)?;
    let store = open_store(&config)?;
    let realm = config.server.realm.as_str();
    let algorithms = config.modules.authentication.algorithms();
    let algorithm_names: Vec<&str> = algorithms.iter().map(|a| a.name()).collect();
    match args.command {
        UserCommand::Add(a) => {
            let password = read_password(a.password)?;
            let record = derive(&a.username, realm, &password, &config)?;
            match store.create(&record) {
                Err(StoreError::UserExists { .. }) => anyhow::bail!(
                    "user {:?} already exists in realm {realm:?} (use `sotto user passwd` to \
                     change the password)",
                    a.username
                ),
                other => other.context("storing the user")?,
            }
            report(json, "user_added", &a.username, realm, &algorithm_names);
        }
        UserCommand::Passwd(a) => {
            let password = read_password(a.password)?;
            if store.get(&a.username, realm)?.is_none() {
                anyhow::bail!("no user {:?} in realm {realm:?}", a.username);
            }
            let record = derive(&a.username, realm, &password, &config)?;
            store.put(&record).context("storing the user")?;
            report(
                json,
                "password_changed",
                &a.username,
                realm,
                &algorithm_names,
            );
        }
        UserCommand::Del(a) => {
            if !store.delete(&a.username).context("deleting the user")? {
                anyhow::bail!("no user {:?}", a.username);
            }
            if json {
                println!(
                    "{}",
                    serde_json::json!({"event": "user_deleted", "username": a.username})
                );
            } else {
                println!("deleted user {}", a.username);
            }
        }
        UserCommand::List => {
            for u in store.list().context("listing users")? {
                let algs: Vec<&str> = u.algorithms.iter().map(|a| a.name()).collect();
                if json {
                    println!(
                        "{}",
                        serde_json::json!({
                            "username": u.username,
                            "realm": u.realm,
                            "algorithms": algs,
                        })
                    );
                } else {
                    println!("{}\t{}\t{}", u.username, u.realm, algs.join(","));
                }
            }
        }
    }
    Ok(())
}

fn open_store(config: &Config) -> anyhow::Result<SqliteStore> {
    match config.storage.kind {
        // With Redis, users stay in the SQLite file: only registrations are shared.
        StorageKind::Sqlite | StorageKind::Redis => {
            let path = config.resolve(&config.storage.path);
            SqliteStore::open(&path).with_context(|| format!("opening database {}", path.display()))
        }
        StorageKind::Memory => anyhow::bail!(
            "storage.kind = \"memory\" keeps no users between runs; `sotto user` needs \
             storage.kind = \"sqlite\""
        ),
    }
}

fn read_password(source: PasswordSource) -> anyhow::Result<Zeroizing<String>> {
    let password = match source.password {
        Some(p) => Zeroizing::new(p),
        None => {
            let mut line = Zeroizing::new(String::new());
            std::io::stdin()
                .lock()
                .take(MAX_PASSWORD_BYTES as u64 + 2)
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let trimmed = line.trim_end_matches(['\r', '\n']).len();
            line.truncate(trimmed);
            line
        }
    };
    if password.is_empty() {
        anyhow::bail!("the password is empty");
    }
    if password.len() > MAX_PASSWORD_BYTES {
        anyhow::bail!("the password is longer than {MAX_PASSWORD_BYTES} bytes");
    }
    Ok(password)
}

fn derive(
    username: &str,
    realm: &str,
    password: &str,
    config: &Config,
) -> anyhow::Result<UserRecord> {
    let mut record = UserRecord::new(username);
    record
        .set_password(
            sotto_crypto_rust::provider(),
            realm,
            password,
            &config.modules.authentication.algorithms(),
        )
        .context("deriving HA1")?;
    Ok(record)
}

fn report(json: bool, event: &str, username: &str, realm: &str, algorithms: &[&str]) {
    if json {
        println!(
            "{}",
            serde_json::json!({
                "event": event,
                "username": username,
                "realm": realm,
                "algorithms": algorithms,
            })
        );
    } else {
        let what = if event == "user_added" {
            "added user"
        } else {
            "changed the password of"
        };
        println!(
            "{what} {username} (realm {realm}; stored HA1 for {})",
            algorithms.join(", ")
        );
    }
}
