//! `sotto agent -c F keys status`: this device's LIME keys. On first use the device's keys
//! are made (the curve of `[lime] curve`) and registered on `[lime] server_url` with the
//! account's credentials, as Linphone does when an account has a `lime_server_url`; then
//! they are read from `<data>/lime.sqlite`. Reports the curve, the device id, the identity
//! key and its SHA-256 fingerprint, the one-time prekeys the server still holds (refilled
//! when fewer than 100 remain, as liblime does; a new signed prekey every 7 days), and the
//! peers known with their trust.

use anyhow::{Context, bail};
use sotto_agent::config::AccountConfig;
use sotto_agent::driver::lime_client::LimeClient;
use sotto_agent::driver::lime_store::LimeStore;
use sotto_crypto::hash::HashAlgorithm;
use sotto_lime::protocol::{Request, Response};
use sotto_lime::{LimeUser, PeerTrust};

/// OPks made at registration (liblime's initial batch).
const INITIAL_OPKS: usize = 100;
/// Fewer OPks than this on the server: post a batch.
const OPK_LOW: usize = 100;
/// The batch.
const OPK_BATCH: usize = 25;

/// The device id of this account: its public GRUU (`<aor>;gr=<instance>`), as Linphone's.
fn device_id(account: &AccountConfig) -> String {
    let instance = account.account.instance.trim_matches(['<', '>']);
    format!("{};gr={instance}", account.account.identity)
}

/// Runs `keys status`.
pub(crate) fn status(
    account: &AccountConfig,
    tls: std::sync::Arc<sotto_net::rustls::ClientConfig>,
    json: bool,
) -> anyhow::Result<()> {
    let p = sotto_crypto_rust::provider();
    let url = account.lime.server_url.as_deref().context(
        "no LIME key server: set [lime] server_url in the account file (or init with \
         --lime-server URL)",
    )?;
    let curve = account.lime.curve_id()?;
    let mut client = LimeClient::new(url, tls).map_err(|e| anyhow::anyhow!(e))?;
    let mut store =
        LimeStore::open(&account.resolve(&account.data.dir)).map_err(|e| anyhow::anyhow!(e))?;
    let device = device_id(account);
    let (user, password) = (account.username(), account.account.password.clone());
    let mut post = |body: &[u8]| -> anyhow::Result<Response> {
        let reply = client
            .post(&device, &user, &password, body)
            .map_err(|e| anyhow::anyhow!(e))?;
        Response::parse(curve, &reply).map_err(|e| anyhow::anyhow!("LIME server: {e}"))
    };
    let (mut me, registered) = match store.load(p, &device).map_err(|e| anyhow::anyhow!(e))? {
        Some(u) => (u, false),
        None => {
            let (u, body) = LimeUser::create(p, &device, curve, INITIAL_OPKS)?;
            post(&body).context("registering this device on the LIME server")?;
            (u, true)
        }
    };
    if me.curve() != curve {
        bail!(
            "this device's keys are on {} but [lime] curve says {}",
            me.curve().name(),
            curve.name()
        );
    }
    // A new SPk every 7 days (the old one kept 30 days), as liblime does.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let spk_post = me.maintain(p, now)?;
    store.commit(&mut me).map_err(|e| anyhow::anyhow!(e))?;
    let spk_rotated = spk_post.is_some();
    if let Some(body) = spk_post {
        post(&body).context("publishing a new signed prekey")?;
    }
    let on_server = match post(&Request::GetSelfOpks.encode(curve))? {
        Response::SelfOpks(ids) => ids.len(),
        other => bail!("LIME server: unexpected reply {other:?}"),
    };
    let mut refilled = 0;
    if on_server < OPK_LOW {
        let body = me.new_opks(p, OPK_BATCH)?;
        // Kept before they are published: a first message may use one at once.
        store.commit(&mut me).map_err(|e| anyhow::anyhow!(e))?;
        post(&body).context("publishing one-time prekeys")?;
        refilled = OPK_BATCH;
    }
    let fingerprint = p
        .hash
        .hash(HashAlgorithm::Sha256, &[me.identity_key()])
        .map(|h| sotto_crypto::hex::encode(h.as_ref()))
        .unwrap_or_default();
    let peers: Vec<serde_json::Value> = me
        .session_peers()
        .into_iter()
        .map(|d| {
            let trust = match me.peer(d).map(|x| x.trust) {
                Some(PeerTrust::Trusted) => "trusted",
                Some(PeerTrust::Unsafe) => "unsafe",
                _ => "untrusted",
            };
            serde_json::json!({"device": d, "trust": trust})
        })
        .collect();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "event": "lime_keys", "device": device, "curve": curve.name(),
                "server": url, "registered_now": registered,
                "identity_key": sotto_crypto::hex::encode(me.identity_key()),
                "fingerprint": fingerprint, "opks_on_server": on_server + refilled,
                "opks_posted": refilled, "opks_held": me.opk_count(), "peers": peers,
                "spk_rotated": spk_rotated,
            })
        );
    } else {
        println!("LIME device {device} on {} ({url})", curve.name());
        println!("  identity key fingerprint (SHA-256): {fingerprint}");
        println!(
            "  one-time prekeys on the server: {}{}",
            on_server + refilled,
            if refilled > 0 {
                format!(" ({refilled} just posted)")
            } else {
                String::new()
            }
        );
        println!("  peers: {}", peers.len());
    }
    Ok(())
}
