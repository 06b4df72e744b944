//! DTLS-SRTP behind the media key-exchange seam (RFC 5763, RFC 5764).
//!
//! Our SDP says `UDP/TLS/RTP/SAVP` with `a=setup` and `a=fingerprint:sha-256 …` of our
//! certificate; the offerer says `actpass`, and we answer `active` (RFC 5763 §5: the
//! handshake then starts with the answer). A handshake runs on the RTP port, and another on
//! the RTCP port when RTCP is not multiplexed (RFC 5764 §4.1; linphonec does that). Each
//! peer certificate must hash to a fingerprint of the peer's SDP, or the call fails with no
//! media ever sent. Keys come from the exported keying material of each handshake.
//!
//! Retransmission is ours, on the caller's clock (RFC 6347 §4.2.4.1: 1 s, doubling, at most
//! 60 s), so tests run it on virtual time; the handshake is given up after
//! [`MAX_RETRANSMISSIONS`] or [`HANDSHAKE_DEADLINE`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sotto_crypto::CryptoProvider;
use sotto_crypto::dtls::{
    DtlsCertificate, DtlsConfig, DtlsEstablished, DtlsRole, DtlsSession, SrtpProfile,
};
use sotto_crypto::hash::HashAlgorithm;
use sotto_crypto::rng::SecureRandom;

use super::fingerprint::{Fingerprint, Setup};
use crate::keyx::{
    DtlsDetails, KeyExchangeError, KeyExchangeEvent, KeyMethod, MediaKeyExchange, MediaProtection,
    RemoteMedia, RtcpKeys, SdpAttribute, SrtpKeys,
};
use crate::session::{Channel, PacketClass, classify};
use crate::{SrtpPolicy, SrtpSuite};

/// The first retransmission timeout (RFC 6347 §4.2.4.1).
const INITIAL_RTO: Duration = Duration::from_secs(1);
/// The longest retransmission timeout.
const MAX_RTO: Duration = Duration::from_secs(60);
/// Retransmissions of one flight (after 1, 3, 7, 15 and 31 s); the last waits 32 s for an
/// answer, cut short by [`HANDSHAKE_DEADLINE`].
pub const MAX_RETRANSMISSIONS: u32 = 5;
/// A handshake not complete this long after it could start fails the call (also when the
/// peer never sends its ClientHello).
pub const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(60);
/// The largest datagram the handshake sends (fits any path, as RFC 6347 §4.1.1.1 advises).
const MTU: usize = 1200;
/// DTLS datagrams kept while the answer that gives our role is awaited (RFC 5763 §5: the
/// offerer may get the ClientHello before the answer).
const MAX_EARLY_DATAGRAMS: usize = 16;

/// The profile names and SRTP suites, one for one.
fn suite_of(p: SrtpProfile) -> SrtpSuite {
    match p {
        SrtpProfile::Aes128CmSha1_32 => SrtpSuite::AesCm128HmacSha1_32,
        SrtpProfile::AeadAes128Gcm => SrtpSuite::AeadAes128Gcm,
        SrtpProfile::AeadAes256Gcm => SrtpSuite::AeadAes256Gcm,
        _ => SrtpSuite::AesCm128HmacSha1_80,
    }
}

/// One handshake: on the RTP port, or on the separate RTCP port.
#[derive(Debug)]
struct Component {
    channel: Channel,
    session: Box<dyn DtlsSession>,
    outgoing: VecDeque<Vec<u8>>,
    started: bool,
    rto: Duration,
    retransmit_at: Option<Instant>,
    retransmissions: u32,
    /// The result, once the peer's certificate matched its fingerprint.
    done: Option<DtlsEstablished>,
}

impl Component {
    /// Takes what the session wrote; a new flight (not a resend) restarts the timer.
    fn take_output(&mut self, now: Instant, new_flight: bool) {
        let mut wrote = false;
        while let Some(d) = self.session.poll_datagram() {
            self.outgoing.push_back(d);
            wrote = true;
        }
        if wrote && new_flight {
            self.rto = INITIAL_RTO;
            self.retransmissions = 0;
        }
        self.retransmit_at = if self.session.awaiting_peer() {
            match (wrote, self.retransmit_at) {
                (true, _) | (false, None) => Some(now + self.rto),
                (false, at) => at,
            }
        } else {
            None
        };
    }
}

/// The DTLS-SRTP key exchange of one call's audio stream; see the
/// [module documentation](self).
#[derive(Debug)]
pub struct DtlsExchange {
    provider: &'static CryptoProvider,
    certificate: Arc<DtlsCertificate>,
    fingerprint: Fingerprint,
    profiles: Vec<SrtpProfile>,
    /// We multiplex RTCP on the RTP port when the peer does.
    rtcp_mux: bool,
    role: Option<DtlsRole>,
    /// Our `a=setup` in the SDP we sent.
    setup: Setup,
    peer_fingerprints: Vec<Fingerprint>,
    /// Our `a=tls-id` (RFC 8842), drawn at the first offer or answer.
    tls_id: Option<String>,
    /// Whether our SDP carries it: always in an offer, in an answer when the offer did.
    send_tls_id: bool,
    components: Vec<Component>,
    early: Vec<(Channel, Vec<u8>)>,
    deadline: Option<Instant>,
    protection: MediaProtection,
    events: VecDeque<KeyExchangeEvent>,
    /// Keys delivered or the exchange failed: nothing more to do.
    finished: bool,
}

impl DtlsExchange {
    /// DTLS-SRTP with our `certificate`, accepting `profiles` (in our order of preference);
    /// `rtcp_mux`: whether we multiplex RTCP when the peer does.
    pub fn new(
        provider: &'static CryptoProvider,
        certificate: Arc<DtlsCertificate>,
        profiles: Vec<SrtpProfile>,
        rtcp_mux: bool,
    ) -> Result<Self, KeyExchangeError> {
        let fingerprint = Fingerprint::of(
            provider,
            HashAlgorithm::Sha256,
            &certificate.certificate_der,
        )
        .ok_or_else(|| KeyExchangeError {
            status: 500,
            warning_code: 399,
            reason: "SHA-256 is not offered by the crypto provider".into(),
        })?;
        Ok(DtlsExchange {
            provider,
            certificate,
            fingerprint,
            profiles,
            rtcp_mux,
            role: None,
            setup: Setup::ActPass,
            peer_fingerprints: Vec::new(),
            tls_id: None,
            send_tls_id: true,
            components: Vec::new(),
            early: Vec::new(),
            deadline: None,
            protection: MediaProtection::Dtls {
                profile: None,
                fingerprint_verified: false,
                details: None,
            },
            events: VecDeque::new(),
            finished: false,
        })
    }

    /// Our certificate's fingerprint, as our SDP carries it.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.fingerprint
    }

    /// Our role, once the offer/answer settled it.
    pub fn role(&self) -> Option<DtlsRole> {
        self.role
    }

    fn our_attributes(
        &mut self,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        let mut attrs = vec![
            SdpAttribute::new("setup", self.setup.as_str()),
            SdpAttribute::new("fingerprint", self.fingerprint.to_string()),
        ];
        if self.send_tls_id {
            if self.tls_id.is_none() {
                let mut id = [0u8; 16];
                rng.fill(&mut id).map_err(|_| KeyExchangeError {
                    status: 500,
                    warning_code: 399,
                    reason: "the random number generator failed".into(),
                })?;
                self.tls_id = Some(sotto_crypto::hex::encode(&id));
            }
            if let Some(id) = &self.tls_id {
                attrs.push(SdpAttribute::new("tls-id", id.clone()));
            }
        }
        Ok(attrs)
    }

    /// Reads the peer's fingerprints and whether it multiplexes RTCP; refuses a stream that
    /// cannot be authenticated.
    fn take_peer(&mut self, remote: RemoteMedia<'_>, what: &str) -> Result<(), KeyExchangeError> {
        if !matches!(remote.profile, "UDP/TLS/RTP/SAVP" | "UDP/TLS/RTP/SAVPF") {
            return Err(refuse(format!(
                "DTLS-SRTP runs over UDP/TLS/RTP/SAVP; the {what} is {}",
                remote.profile
            )));
        }
        self.peer_fingerprints = remote
            .attributes
            .iter()
            .filter(|a| a.name == "fingerprint")
            .filter_map(|a| a.value.as_deref().and_then(Fingerprint::parse))
            .collect();
        if self.peer_fingerprints.is_empty() {
            return Err(refuse(format!(
                "the {what} has no usable a=fingerprint (SHA-1 or SHA-2): its DTLS \
                 certificate could not be authenticated"
            )));
        }
        if !self.components.is_empty() || self.finished {
            // A repeated offer or answer (a re-INVITE): the association stands.
            return Ok(());
        }
        let mux = self.rtcp_mux && remote.attributes.iter().any(|a| a.name == "rtcp-mux");
        let role = self.role.ok_or_else(|| refuse("no DTLS role".into()))?;
        let mut channels = vec![Channel::Rtp];
        if !mux {
            channels.push(Channel::Rtcp);
        }
        for channel in channels {
            let session = self
                .provider
                .dtls
                .session(&DtlsConfig {
                    role,
                    certificate: &self.certificate,
                    profiles: &self.profiles,
                    mtu: MTU,
                })
                .map_err(|e| KeyExchangeError {
                    status: 500,
                    warning_code: 399,
                    reason: format!("DTLS: {e}"),
                })?;
            self.components.push(Component {
                channel,
                session,
                outgoing: VecDeque::new(),
                started: false,
                rto: INITIAL_RTO,
                retransmit_at: None,
                retransmissions: 0,
                done: None,
            });
        }
        Ok(())
    }

    fn peer_setup(remote: RemoteMedia<'_>) -> Result<Option<Setup>, KeyExchangeError> {
        match remote.attributes.iter().find(|a| a.name == "setup") {
            None => Ok(None),
            Some(a) => a
                .value
                .as_deref()
                .and_then(Setup::parse)
                .map(Some)
                .ok_or_else(|| refuse("unreadable a=setup".into())),
        }
    }

    /// Starts what can start (the client's ClientHello) and the deadline.
    fn start(&mut self, now: Instant) {
        if self.finished || self.components.is_empty() {
            return;
        }
        self.deadline.get_or_insert(now + HANDSHAKE_DEADLINE);
        for i in 0..self.components.len() {
            if self.components[i].started {
                continue;
            }
            self.components[i].started = true;
            let r = self.components[i].session.start();
            self.components[i].take_output(now, true);
            if let Err(e) = r {
                return self.fail(format!("DTLS handshake: {e}"));
            }
        }
        for (channel, d) in std::mem::take(&mut self.early) {
            self.handle_datagram(now, channel, &d);
        }
    }

    fn handle_datagram(&mut self, now: Instant, channel: Channel, datagram: &[u8]) {
        let Some(i) = self.components.iter().position(|c| c.channel == channel) else {
            return;
        };
        let c = &mut self.components[i];
        let r = c.session.handle_datagram(datagram);
        c.take_output(now, true);
        if let Err(e) = r {
            return self.fail(format!("DTLS handshake on the {channel:?} port: {e}"));
        }
        if c.done.is_none()
            && let Some(est) = c.session.established().cloned()
        {
            if !self
                .peer_fingerprints
                .iter()
                .any(|f| f.matches(self.provider, &est.peer_certificate))
            {
                let seen =
                    Fingerprint::of(self.provider, HashAlgorithm::Sha256, &est.peer_certificate)
                        .map(|f| f.to_string())
                        .unwrap_or_default();
                return self.fail(format!(
                    "the peer's DTLS certificate ({seen}) does not match the fingerprint in \
                     its SDP: the media path may be intercepted; no media was sent"
                ));
            }
            self.components[i].done = Some(est);
            self.maybe_keyed();
        }
    }

    /// Every handshake done: keys for SRTP (and SRTCP apart when RTCP had its own).
    fn maybe_keyed(&mut self) {
        if self.finished || self.components.iter().any(|c| c.done.is_none()) {
            return;
        }
        let role = self.role.unwrap_or(DtlsRole::Server);
        let mut keys = self
            .components
            .iter()
            .map(|c| c.done.as_ref().map(|e| directional_keys(role, e)));
        let Some(Some((outbound, inbound))) = keys.next() else {
            return;
        };
        let rtcp = keys
            .next()
            .flatten()
            .map(|(outbound, inbound)| Box::new(RtcpKeys { outbound, inbound }));
        let rtp = self.components[0].done.as_ref();
        self.protection = MediaProtection::Dtls {
            profile: rtp.map(|e| suite_of(e.profile).name().to_owned()),
            fingerprint_verified: true,
            details: rtp.map(|e| {
                Box::new(DtlsDetails {
                    cipher: e.cipher.clone(),
                    role: match role {
                        DtlsRole::Client => "client",
                        DtlsRole::Server => "server",
                    }
                    .to_owned(),
                    peer_fingerprint: Fingerprint::of(
                        self.provider,
                        HashAlgorithm::Sha256,
                        &e.peer_certificate,
                    )
                    .map(|f| f.to_string())
                    .unwrap_or_default(),
                    handshakes: self.components.len(),
                })
            }),
        };
        self.finished = true;
        self.events.push_back(KeyExchangeEvent::KeysReady(SrtpKeys {
            outbound,
            inbound,
            rtcp,
        }));
        self.events
            .push_back(KeyExchangeEvent::Protection(self.protection.clone()));
    }

    fn fail(&mut self, reason: String) {
        if !self.finished {
            self.finished = true;
            self.components.clear();
            self.early.clear();
            self.events.push_back(KeyExchangeEvent::Failed { reason });
        }
    }
}

/// Our (outbound, inbound) SRTP policies from a handshake's keying material: client key,
/// server key, client salt, server salt (RFC 5764 §4.2).
fn directional_keys(role: DtlsRole, e: &DtlsEstablished) -> (SrtpPolicy, SrtpPolicy) {
    let (k, s) = (e.profile.key_len(), e.profile.salt_len());
    let m = e.keying_material.expose();
    let suite = suite_of(e.profile);
    let client = SrtpPolicy::new(suite, &m[..k], &m[2 * k..2 * k + s]);
    let server = SrtpPolicy::new(suite, &m[k..2 * k], &m[2 * k + s..2 * (k + s)]);
    match role {
        DtlsRole::Client => (client, server),
        DtlsRole::Server => (server, client),
    }
}

fn refuse(reason: String) -> KeyExchangeError {
    KeyExchangeError {
        status: 488,
        warning_code: 399,
        reason,
    }
}

impl MediaKeyExchange for DtlsExchange {
    fn method(&self) -> KeyMethod {
        KeyMethod::Dtls
    }

    fn profile(&self) -> &'static str {
        "UDP/TLS/RTP/SAVP"
    }

    fn offer(&mut self, rng: &dyn SecureRandom) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        self.setup = Setup::ActPass;
        self.send_tls_id = true;
        self.our_attributes(rng)
    }

    fn answer(
        &mut self,
        offered: RemoteMedia<'_>,
        rng: &dyn SecureRandom,
    ) -> Result<Vec<SdpAttribute>, KeyExchangeError> {
        // RFC 4145 §4: no a=setup means active.
        let (setup, role) = match Self::peer_setup(offered)?.unwrap_or(Setup::Active) {
            Setup::ActPass | Setup::Passive => (Setup::Active, DtlsRole::Client),
            Setup::Active => (Setup::Passive, DtlsRole::Server),
            Setup::HoldConn => return Err(refuse("a=setup:holdconn: no connection to key".into())),
        };
        if self.components.is_empty() {
            // A re-INVITE keeps the roles of the association it does not replace.
            self.setup = setup;
            self.role = Some(role);
        }
        self.take_peer(offered, "offer")?;
        self.send_tls_id = offered.attributes.iter().any(|a| a.name == "tls-id");
        self.our_attributes(rng)
    }

    fn answered(&mut self, answer: RemoteMedia<'_>) -> Result<(), KeyExchangeError> {
        let role = Some(match Self::peer_setup(answer)?.unwrap_or(Setup::Active) {
            Setup::Active => DtlsRole::Server,
            Setup::Passive => DtlsRole::Client,
            other => {
                return Err(refuse(format!(
                    "the answer's a=setup:{} is not a role (RFC 5763 §5)",
                    other.as_str()
                )));
            }
        });
        if self.components.is_empty() {
            self.role = role;
        }
        self.take_peer(answer, "answer")
    }

    fn protection(&self) -> MediaProtection {
        self.protection.clone()
    }

    fn handle_packet(&mut self, now: Instant, channel: Channel, packet: &[u8]) {
        if classify(packet) != PacketClass::Dtls {
            return;
        }
        if self.components.is_empty() {
            // Before the answer (or after a failure, when the sessions are gone).
            if !self.finished && self.early.len() < MAX_EARLY_DATAGRAMS {
                self.early.push((channel, packet.to_vec()));
            }
            return;
        }
        self.start(now);
        // After the keys, the peer may still repeat its last flight (ours was lost): the
        // session answers it.
        self.handle_datagram(now, channel, packet);
    }

    fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<(usize, Channel)> {
        self.start(now);
        for c in &mut self.components {
            if let Some(d) = c.outgoing.pop_front() {
                let n = d.len().min(buf.len());
                buf[..n].copy_from_slice(&d[..n]);
                return Some((n, c.channel));
            }
        }
        None
    }

    fn poll_timeout(&self) -> Option<Instant> {
        if self.finished {
            return None;
        }
        self.components
            .iter()
            .filter_map(|c| c.retransmit_at)
            .chain(self.deadline)
            .min()
    }

    fn handle_timeout(&mut self, now: Instant) {
        self.start(now);
        if self.finished {
            return;
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return self.fail(format!(
                "the DTLS handshake did not complete within {} s",
                HANDSHAKE_DEADLINE.as_secs()
            ));
        }
        for i in 0..self.components.len() {
            let c = &mut self.components[i];
            if c.retransmit_at.is_none_or(|at| now < at) {
                continue;
            }
            if c.retransmissions >= MAX_RETRANSMISSIONS {
                let channel = c.channel;
                return self.fail(format!(
                    "no answer to the DTLS handshake on the {channel:?} port after {} \
                     retransmissions",
                    MAX_RETRANSMISSIONS
                ));
            }
            c.retransmissions += 1;
            c.rto = (c.rto * 2).min(MAX_RTO);
            let r = c.session.retransmit();
            c.retransmit_at = None;
            c.take_output(now, false);
            if let Err(e) = r {
                return self.fail(format!("DTLS handshake: {e}"));
            }
        }
    }

    fn poll_event(&mut self) -> Option<KeyExchangeEvent> {
        self.events.pop_front()
    }
}
