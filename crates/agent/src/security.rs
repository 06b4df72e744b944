//! The per-call security report (the `call_security` event).
//!
//! Says, for every call, how its signalling and media are protected and who can see the keys:
//! with SDES (RFC 4568 §8.1) the SRTP keys travel in the SDP, so every proxy on the path can
//! read them; the protection is hop-by-hop, never end-to-end.

use serde::Serialize;
use sotto_media::keyx::MediaProtection;

/// The note attached to every SDES-keyed call.
pub const SDES_NOTE: &str =
    "SDES: SRTP keys are carried in the SDP and visible to every proxy on the path";

/// The note of an SDES-keyed direct call.
pub const SDES_DIRECT_NOTE: &str = "SDES over a direct TLS connection: no proxy on the path; \
     the SRTP keys are visible to the peer's SIP stack (not verified end to end)";

/// The note of a call keyed by SDES over a non-TLS hop (the `danger.sdes_without_tls`
/// override).
pub const SDES_WITHOUT_TLS_NOTE: &str = "DANGER (danger.sdes_without_tls): SDES keys were sent \
     in clear text over UDP: anyone on the path can decrypt this call";

/// The note of a ZRTP call whose SAS the users have not compared yet.
pub const ZRTP_UNVERIFIED_NOTE: &str = "ZRTP: keys agreed end to end; compare the SAS aloud \
     with the peer to rule out a man in the middle";

/// The note of a ZRTP call whose SAS was confirmed (now or on an earlier call).
pub const ZRTP_VERIFIED_NOTE: &str = "ZRTP: keys agreed end to end, SAS verified";

/// The note of a DTLS-SRTP call.
pub const DTLS_NOTE: &str = "DTLS-SRTP: keys agreed on the media path; the peer's certificate \
     is vouched for by the fingerprint in its SDP, which every proxy on the path could change";

/// How one call is protected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityReport {
    /// Signalling transport of the first hop: `tls`, `tcp` or `udp`.
    pub signalling_transport: String,
    /// Negotiated TLS version of the first hop (`TLSv1.3`...), when TLS.
    pub tls_version: Option<String>,
    /// Negotiated TLS cipher suite of the first hop, when TLS.
    pub tls_cipher_suite: Option<String>,
    /// Authentication used for this call: `digest-SHA-256`, `digest-MD5`, or `none`
    /// (for an incoming call: `registration-flow` when it came over the authenticated
    /// registration connection, `trusted-host` for a configured host).
    pub auth: String,
    /// Media protection: `none`, `srtp-sdes`, `zrtp` or `dtls-srtp` (rendered from a
    /// [`MediaProtection`]).
    pub media_protection: String,
    /// The SRTP suite (or DTLS-SRTP profile), when known.
    pub suite: Option<String>,
    /// The short authentication string to compare aloud (ZRTP), once computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sas: Option<String>,
    /// Whether the users confirmed the SAS (ZRTP), or the peer's certificate matched its
    /// fingerprint (DTLS-SRTP); absent for SDES and plain calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
    /// How the media keys were agreed, when on the media path (ZRTP): key agreement,
    /// cipher, hash, tag, SAS type (`X255/AES3/S256/HS80/B32`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_exchange: Option<String>,
    /// What we know of the peer (ZRTP): `verified` (SAS confirmed, cache matches),
    /// `unverified` (compare the SAS), `unsafe` (cache mismatch: compare the SAS again).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_trust: Option<String>,
    /// The key-continuity cache (ZRTP): `new`, `match` or `mismatch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// The SHA-256 fingerprint of the peer's certificate (DTLS-SRTP), which matched its SDP.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_fingerprint: Option<String>,
    /// Whether the media keys are known only to the two ends.
    pub end_to_end: bool,
    /// Whether the call is direct (signalling straight to the peer, no proxy).
    pub direct: bool,
    /// What the user should know (e.g. the SDES caveat).
    pub note: Option<String>,
    /// The insecure `[danger]` overrides this call relied on (`sdes_without_tls`); empty for
    /// a call set up by the secure defaults.
    pub danger: Vec<String>,
}

impl SecurityReport {
    /// The report of a call whose media is protected as `protection` says.
    pub fn new(
        transport: &str,
        tls: Option<&TlsSummary>,
        auth: &str,
        protection: &MediaProtection,
    ) -> Self {
        let zrtp = match protection {
            MediaProtection::Zrtp { details, .. } => details.as_ref(),
            _ => None,
        };
        let dtls = match protection {
            MediaProtection::Dtls { details, .. } => details.as_ref(),
            _ => None,
        };
        let (sas, verified, end_to_end, note) = match protection {
            MediaProtection::None => (None, None, false, "media is not encrypted".to_owned()),
            MediaProtection::Sdes { .. } => (None, None, false, SDES_NOTE.to_owned()),
            MediaProtection::Zrtp { sas, verified, .. } => (
                sas.clone(),
                Some(*verified),
                true,
                if *verified {
                    ZRTP_VERIFIED_NOTE.to_owned()
                } else {
                    ZRTP_UNVERIFIED_NOTE.to_owned()
                },
            ),
            MediaProtection::Dtls {
                fingerprint_verified,
                ..
            } => (
                None,
                Some(*fingerprint_verified),
                *fingerprint_verified,
                DTLS_NOTE.to_owned(),
            ),
        };
        SecurityReport {
            signalling_transport: transport.to_owned(),
            tls_version: tls.map(|t| t.version.clone()),
            tls_cipher_suite: tls.map(|t| t.cipher_suite.clone()),
            auth: auth.to_owned(),
            media_protection: protection.name().to_owned(),
            suite: protection.suite().map(str::to_owned),
            sas,
            verified,
            key_exchange: zrtp
                .map(|d| {
                    format!(
                        "{}/{}/{}/{}/{}",
                        d.key_agreement, d.cipher, d.hash, d.auth_tag, d.sas_type
                    )
                })
                .or_else(|| {
                    dtls.map(|d| {
                        format!(
                            "DTLS1.2/{}/{} ({} handshake{})",
                            d.cipher,
                            d.role,
                            d.handshakes,
                            if d.handshakes == 1 { "" } else { "s" }
                        )
                    })
                }),
            peer_trust: zrtp.map(|d| {
                if d.cache == "mismatch" {
                    "unsafe"
                } else if verified == Some(true) {
                    "verified"
                } else {
                    "unverified"
                }
                .to_owned()
            }),
            cache: zrtp.map(|d| d.cache.clone()),
            peer_fingerprint: dtls.map(|d| d.peer_fingerprint.clone()),
            end_to_end,
            direct: false,
            note: Some(note),
            danger: Vec::new(),
        }
    }
}

impl SecurityReport {
    /// Marks the report as a direct call's (no proxy on the path), with the matching note.
    pub fn direct(mut self, direct: bool) -> Self {
        self.direct = direct;
        if direct && self.media_protection == "srtp-sdes" {
            self.note = Some(SDES_DIRECT_NOTE.to_owned());
        }
        self
    }

    /// Marks an SDES-keyed call whose signalling hop is not TLS (allowed only by the
    /// `danger.sdes_without_tls` override): the danger entry, the clear-text-keys note, never
    /// end to end. A call without SDES or over TLS is left as it is.
    pub fn sdes_without_tls(mut self) -> Self {
        if self.media_protection == "srtp-sdes" && self.signalling_transport != "tls" {
            self.danger.push("sdes_without_tls".to_owned());
            self.note = Some(SDES_WITHOUT_TLS_NOTE.to_owned());
            self.end_to_end = false;
        }
        self
    }

    /// A report for a call that ended before media was negotiated: no media protection,
    /// with the reason in the note.
    pub fn not_established(
        transport: &str,
        tls: Option<&TlsSummary>,
        auth: &str,
        reason: &str,
    ) -> Self {
        let mut r = SecurityReport::new(transport, tls, auth, &MediaProtection::None);
        r.note = Some(format!("call not established: {reason}"));
        r
    }
}

/// What a TLS hop negotiated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSummary {
    /// `TLSv1.2` or `TLSv1.3`.
    pub version: String,
    /// The cipher suite name.
    pub cipher_suite: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdes(suite: &str) -> MediaProtection {
        MediaProtection::Sdes {
            suite: suite.to_owned(),
        }
    }

    #[test]
    fn zrtp_reports_its_sas_and_whether_it_was_verified() {
        let p = MediaProtection::Zrtp {
            suite: Some("AES_CM_128_HMAC_SHA1_80".into()),
            sas: Some("pluto clock".into()),
            verified: false,
            details: None,
        };
        let r = SecurityReport::new("tls", None, "digest-SHA-256", &p);
        assert_eq!(r.media_protection, "zrtp");
        assert_eq!(
            (r.sas.as_deref(), r.verified, r.end_to_end),
            (Some("pluto clock"), Some(false), true)
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["sas"], "pluto clock");
        // SDES has no SAS: the fields are absent, not null.
        let s = serde_json::to_value(SecurityReport::new("tls", None, "x", &sdes("X"))).unwrap();
        assert!(s.get("sas").is_none() && s.get("verified").is_none());
    }

    #[test]
    fn sdes_is_never_end_to_end() {
        let tls = TlsSummary {
            version: "TLSv1.3".into(),
            cipher_suite: "TLS13_AES_256_GCM_SHA384".into(),
        };
        let r = SecurityReport::new(
            "tls",
            Some(&tls),
            "digest-SHA-256",
            &sdes("AES_CM_128_HMAC_SHA1_80"),
        );
        assert_eq!(r.media_protection, "srtp-sdes");
        assert!(!r.end_to_end);
        assert_eq!(r.note.as_deref(), Some(SDES_NOTE));
        let plain = SecurityReport::new("udp", None, "none", &MediaProtection::None);
        assert_eq!(plain.media_protection, "none");
        assert_eq!(plain.tls_version, None);
        assert!(r.danger.is_empty() && plain.danger.is_empty());
        // The override only marks what it changes: SDES over TLS stays as it was.
        assert_eq!(r.clone().sdes_without_tls(), r);
        assert_eq!(plain.clone().sdes_without_tls(), plain);
    }

    #[test]
    fn sdes_over_udp_is_loud() {
        let r = SecurityReport::new("udp", None, "none", &sdes("AES_CM_128_HMAC_SHA1_80"))
            .direct(true)
            .sdes_without_tls();
        assert_eq!(r.danger, vec!["sdes_without_tls".to_owned()]);
        assert!(!r.end_to_end);
        let note = r.note.unwrap_or_default();
        assert!(
            note.contains("clear text") && note.contains("decrypt"),
            "{note}"
        );
    }
}
