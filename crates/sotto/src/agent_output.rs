//! The agent's output as the user sees it: one JSON object per line (`--json`), or one line
//! of text per event. The driver reports typed [`Output`]s; their rendering lives here.

use sotto_agent::UaEvent;
use sotto_agent::driver::Output;

/// The JSON object of the `--json` output (one per line).
pub(crate) fn to_json(out: &Output) -> serde_json::Value {
    use serde_json::json;
    match out {
        Output::Ua(ev) => match ev {
            UaEvent::Registered {
                expires,
                contact,
                auth,
            } => json!({
                    "event": "registered", "expires_s": expires.as_secs(),
                    "contact": contact, "auth": auth}),
            UaEvent::RegistrationFailed { status, reason } => json!({
                    "event": "registration_failed", "status": status, "reason": reason}),
            UaEvent::Unregistered => json!({"event": "unregistered"}),
            UaEvent::IncomingCall { call, from, to } => json!({
                    "event": "incoming_call", "call": call.0, "from": from, "to": to}),
            UaEvent::CallState {
                call,
                state,
                reason,
            } => {
                let mut v = json!({"event": "call_state", "call": call.0, "state": state.as_str()});
                if let Some(r) = reason {
                    v["reason"] = r.clone().into();
                }
                v
            }
            UaEvent::CallSecurity { call, report } => {
                let mut v = serde_json::to_value(report).unwrap_or_else(|_| json!({}));
                v["event"] = "call_security".into();
                v["call"] = call.0.into();
                v
            }
            UaEvent::MediaReady {
                call,
                media,
                protection,
            } => json!({
                    "event": "media_ready", "call": call.0,
                    "remote": format!("{}:{}", media.remote_address, media.remote_rtp_port),
                    "protection": protection.name(),
                    "encrypted": protection.is_encrypted()}),
            UaEvent::ZrtpSas {
                call,
                sas,
                verified,
                details,
            } => {
                let mut v = json!({
                    "event": "zrtp_sas", "call": call.0, "sas": sas, "verified": verified});
                if let Some(d) = details {
                    v["key_agreement"] = d.key_agreement.clone().into();
                    v["cipher"] = d.cipher.clone().into();
                    v["hash"] = d.hash.clone().into();
                    v["auth_tag"] = d.auth_tag.clone().into();
                    v["sas_type"] = d.sas_type.clone().into();
                    v["cache"] = d.cache.clone().into();
                    v["peer_zid"] = d.peer_zid.clone().into();
                    v["peer_client"] = d.peer_client.clone().into();
                }
                v
            }
            UaEvent::SecurityAlert { call, reason } => json!({
                    "event": "security_alert", "call": call.0, "reason": reason}),
            UaEvent::Rejected {
                source,
                method,
                status,
                reason,
            } => json!({
                    "event": "rejected", "source": source.to_string(), "method": method,
                    "status": status, "reason": reason}),
            // An event this binary does not know yet (the library is ahead of it).
            other => json!({"event": "other", "detail": format!("{other:?}")}),
        },
        Output::MediaStats { call, stats, last } => json!({
            "event": "media_stats", "call": call.0, "final": last,
            "packets_sent": stats.packets_sent,
            "packets_received": stats.packets_received,
            "packets_lost": stats.packets_lost,
            "packets_dropped": stats.packets_dropped,
            "jitter_ms": stats.jitter_ms,
            "protection": stats.protection,
            "rtcp_sent": stats.rtcp_sent,
            "rtcp_received": stats.rtcp_received,
        }),
        Output::Listening { transport, local } => json!({
                "event": "listening", "transport": transport, "local": local.to_string()}),
        Output::Reconnected { local } => json!({
                "event": "reconnected", "local": local.to_string()}),
        Output::ProxyFailover { server, failed } => json!({
                "event": "proxy_failover", "server": server.to_string(), "failed": failed}),
        Output::Recorded {
            call,
            path,
            samples,
        } => json!({
                "event": "recorded", "call": call.0, "path": path.display().to_string(),
                "samples": samples}),
        Output::Warning(w) => json!({"event": "warning", "reason": w}),
        other => json!({"event": "other", "detail": format!("{other:?}")}),
    }
}

/// The SAS as a block the user cannot miss, with a QR code of it (a spoken SAS can be
/// imitated; two phones can compare it by camera).
pub(crate) fn sas_block(sas: &str, verified: bool, cache: Option<&str>) -> String {
    let status = match (verified, cache) {
        (_, Some("mismatch")) => {
            "CACHE MISMATCH: compare it aloud now, someone may be in the middle"
        }
        (true, _) => "verified on an earlier call",
        (false, _) => "compare it aloud with your peer, then type: sas confirm (or sas reject)",
    };
    let line = format!("  ZRTP SAS  {sas}  ");
    let bar = "=".repeat(line.len());
    let qr = qrcode::QrCode::new(format!("ZRTP-SAS:{sas}").as_bytes())
        .map(|q| {
            q.render::<qrcode::render::unicode::Dense1x2>()
                .quiet_zone(true)
                .build()
        })
        .unwrap_or_default();
    format!("{bar}\n{line}\n{bar}\n  {status}\n{qr}")
}

/// A one-line human description (the SAS as a block).
pub(crate) fn to_text(out: &Output) -> String {
    if let Output::Ua(UaEvent::ZrtpSas {
        sas,
        verified,
        details,
        ..
    }) = out
    {
        return sas_block(sas, *verified, details.as_ref().map(|d| d.cache.as_str()));
    }
    let v = to_json(out);
    let name = v
        .get("event")
        .and_then(|e| e.as_str())
        .unwrap_or("event")
        .to_owned();
    let mut parts = Vec::new();
    if let Some(o) = v.as_object() {
        for (k, val) in o {
            if k != "event" {
                parts.push(format!("{k}={val}"));
            }
        }
    }
    format!("{name}: {}", parts.join(" "))
}
