//! DTLS 1.2 for DTLS-SRTP on OpenSSL (`SslMethod::dtls`, `use_srtp`, keying-material export),
//! driven through memory ([`channel`]).
//!
//! Retransmission is the caller's, on its own (possibly virtual) time: the session keeps the
//! datagrams of its last flight and sends them again, as they were, when asked
//! ([`DtlsSession::retransmit`]). A peer that already has them drops the copies as replays;
//! one that lost them takes them. The one flight no timer guards — the server's last one
//! (ChangeCipherSpec, Finished) — is sent again when the client's handshake records keep
//! arriving after the server is done and OpenSSL did not answer them itself (RFC 6347
//! §4.2.4). OpenSSL's own wall-clock timer stays as it is: it may add a resend of its own
//! (new record numbers) when entered a second or more after a flight, which is harmless.
//! No `unsafe` is needed for any of it.
//!
//! Chosen over a pure-Rust DTLS: Linphone's certificates are RSA, which `dimpl` (the
//! maintained pure-Rust DTLS) does not speak; OpenSSL's DTLS is the one Linphone's peers
//! (and most SIP clients) are tested against. It sits behind [`sotto_crypto::dtls`], so
//! another implementation can replace it.
//!
//! Every session presents its certificate and asks for the peer's (both sides of DTLS-SRTP
//! authenticate); the peer's certificate is accepted here whatever it is, and the caller
//! compares it with the SDP fingerprint. DTLS 1.2 only; OpenSSL's default cipher suites.

mod channel;

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{
    ErrorCode, Ssl, SslContext, SslMethod, SslOptions, SslStream, SslVerifyMode, SslVersion,
};
use openssl::x509::{X509, X509NameBuilder};
use sotto_crypto::Error;
use sotto_crypto::dtls::{
    DtlsCertificate, DtlsConfig, DtlsError, DtlsEstablished, DtlsProvider, DtlsRole, DtlsSession,
    SrtpProfile,
};
use sotto_crypto::secret::SecretBytes;

use std::collections::VecDeque;
use std::sync::Mutex;

use channel::DatagramChannel;

/// The label of RFC 5764 §4.2.
const SRTP_EXPORTER_LABEL: &str = "EXTRACTOR-dtls_srtp";

/// Self-signed certificates last ten years: DTLS-SRTP authenticates them by fingerprint, and
/// peers do not check their dates.
const CERTIFICATE_DAYS: u32 = 3650;

/// OpenSSL's DTLS.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OpensslDtls;

fn backend(e: impl std::fmt::Display) -> Error {
    Error::Backend(e.to_string())
}

impl DtlsProvider for OpensslDtls {
    fn generate_certificate(&self, common_name: &str) -> Result<DtlsCertificate, Error> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(backend)?;
        let key = PKey::from_ec_key(EcKey::generate(&group).map_err(backend)?).map_err(backend)?;
        let mut name = X509NameBuilder::new().map_err(backend)?;
        name.append_entry_by_nid(Nid::COMMONNAME, common_name)
            .map_err(backend)?;
        let name = name.build();
        let mut serial = BigNum::new().map_err(backend)?;
        serial
            .rand(63, MsbOption::MAYBE_ZERO, false)
            .map_err(backend)?;
        let mut b = X509::builder().map_err(backend)?;
        b.set_version(2).map_err(backend)?;
        let serial = serial.to_asn1_integer().map_err(backend)?;
        b.set_serial_number(&serial).map_err(backend)?;
        b.set_subject_name(&name).map_err(backend)?;
        b.set_issuer_name(&name).map_err(backend)?;
        b.set_pubkey(&key).map_err(backend)?;
        let not_before = Asn1Time::days_from_now(0).map_err(backend)?;
        let not_after = Asn1Time::days_from_now(CERTIFICATE_DAYS).map_err(backend)?;
        b.set_not_before(&not_before).map_err(backend)?;
        b.set_not_after(&not_after).map_err(backend)?;
        b.sign(&key, MessageDigest::sha256()).map_err(backend)?;
        Ok(DtlsCertificate {
            certificate_der: b.build().to_der().map_err(backend)?,
            private_key_der: SecretBytes::new(key.private_key_to_pkcs8().map_err(backend)?),
        })
    }

    fn session(&self, config: &DtlsConfig<'_>) -> Result<Box<dyn DtlsSession>, Error> {
        let ctx = context(config)?;
        let mut ssl = Ssl::new(&ctx).map_err(backend)?;
        ssl.set_mtu(u32::try_from(config.mtu).unwrap_or(1200))
            .map_err(backend)?;
        match config.role {
            DtlsRole::Client => ssl.set_connect_state(),
            DtlsRole::Server => ssl.set_accept_state(),
        }
        let stream = SslStream::new(ssl, DatagramChannel::default()).map_err(backend)?;
        Ok(Box::new(OpensslDtlsSession {
            stream,
            established: None,
            last_flight: Vec::new(),
            to_send: VecDeque::new(),
        }))
    }
}

/// Contexts already built, by certificate and profiles: building one (OpenSSL 3 loads its
/// cipher tables, the key is parsed and checked) costs more than the handshake's own
/// signature, and an agent uses one certificate for all its calls.
static CONTEXTS: Mutex<Vec<(Vec<u8>, String, SslContext)>> = Mutex::new(Vec::new());

/// How many contexts are kept (one per certificate and profile list in use).
const MAX_CONTEXTS: usize = 8;

/// The context for `config`'s certificate and profiles, built once.
fn context(config: &DtlsConfig<'_>) -> Result<SslContext, Error> {
    let der = &config.certificate.certificate_der;
    let profiles: Vec<&str> = config.profiles.iter().map(|p| p.name()).collect();
    let profiles = profiles.join(":");
    if let Ok(cache) = CONTEXTS.lock()
        && let Some((_, _, ctx)) = cache.iter().find(|(d, p, _)| d == der && *p == profiles)
    {
        return Ok(ctx.clone());
    }
    let ctx = build_context(config, &profiles)?;
    if let Ok(mut cache) = CONTEXTS.lock() {
        if cache.len() >= MAX_CONTEXTS {
            cache.remove(0);
        }
        cache.push((der.clone(), profiles, ctx.clone()));
    }
    Ok(ctx)
}

fn build_context(config: &DtlsConfig<'_>, profiles: &str) -> Result<SslContext, Error> {
    let mut ctx = SslContext::builder(SslMethod::dtls()).map_err(backend)?;
    ctx.set_min_proto_version(Some(SslVersion::DTLS1_2))
        .map_err(backend)?;
    let cert = X509::from_der(&config.certificate.certificate_der).map_err(backend)?;
    let key = PKey::private_key_from_pkcs8(config.certificate.private_key_der.expose())
        .map_err(backend)?;
    ctx.set_certificate(&cert).map_err(backend)?;
    ctx.set_private_key(&key).map_err(backend)?;
    ctx.check_private_key().map_err(backend)?;
    ctx.set_tlsext_use_srtp(profiles).map_err(backend)?;
    // Any certificate: the caller checks it against the SDP fingerprint.
    ctx.set_verify_callback(
        SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT,
        |_, _| true,
    );
    // Our "socket" has no path MTU to ask: the MTU is the caller's.
    ctx.set_options(SslOptions::NO_QUERY_MTU);
    Ok(ctx.build())
}

/// One handshake on OpenSSL.
#[derive(Debug)]
struct OpensslDtlsSession {
    stream: SslStream<DatagramChannel>,
    established: Option<DtlsEstablished>,
    /// The datagrams of our last flight, for [`DtlsSession::retransmit`].
    last_flight: Vec<Vec<u8>>,
    to_send: VecDeque<Vec<u8>>,
}

impl OpensslDtlsSession {
    /// Runs OpenSSL as far as it goes with what it has; returns whether it wrote anything.
    fn advance(&mut self) -> Result<bool, DtlsError> {
        let r = self.run_openssl();
        let written = std::mem::take(&mut self.stream.get_mut().outgoing);
        let wrote = !written.is_empty();
        if wrote {
            self.to_send.extend(written.iter().cloned());
            self.last_flight = written;
        }
        r.map(|()| wrote)
    }

    fn run_openssl(&mut self) -> Result<(), DtlsError> {
        if self.established.is_some() {
            // After the handshake, a datagram is a repeated flight of the peer (OpenSSL
            // answers with ours) or an alert; application data is not used by DTLS-SRTP.
            let mut buf = [0u8; 2048];
            while self.stream.ssl_read(&mut buf).is_ok() {}
            return Ok(());
        }
        match self.stream.do_handshake() {
            Ok(()) => {
                self.established = Some(self.result()?);
                Ok(())
            }
            Err(e) if matches!(e.code(), ErrorCode::WANT_READ | ErrorCode::WANT_WRITE) => Ok(()),
            Err(e) => Err(DtlsError(match e.ssl_error() {
                Some(stack) => stack.to_string(),
                None => e.to_string(),
            })),
        }
    }

    fn result(&self) -> Result<DtlsEstablished, DtlsError> {
        let ssl = self.stream.ssl();
        let profile = ssl
            .selected_srtp_profile()
            .and_then(|p| u16::try_from(p.id().as_raw()).ok())
            .and_then(SrtpProfile::from_id)
            .ok_or_else(|| DtlsError("the peer agreed no SRTP profile (use_srtp)".into()))?;
        let mut material = SecretBytes::zeroed(2 * (profile.key_len() + profile.salt_len()));
        ssl.export_keying_material(material.expose_mut(), SRTP_EXPORTER_LABEL, None)
            .map_err(|e| DtlsError(format!("keying-material export: {e}")))?;
        let peer_certificate = ssl
            .peer_certificate()
            .and_then(|c| c.to_der().ok())
            .ok_or_else(|| DtlsError("the peer presented no certificate".into()))?;
        Ok(DtlsEstablished {
            profile,
            keying_material: material,
            peer_certificate,
            cipher: ssl
                .current_cipher()
                .map(|c| c.standard_name().unwrap_or(c.name()).to_owned())
                .unwrap_or_default(),
        })
    }
}

impl DtlsSession for OpensslDtlsSession {
    fn start(&mut self) -> Result<(), DtlsError> {
        self.advance().map(drop)
    }

    fn handle_datagram(&mut self, datagram: &[u8]) -> Result<(), DtlsError> {
        let done_before = self.established.is_some();
        self.stream.get_mut().incoming.push_back(datagram.to_vec());
        let wrote = self.advance()?;
        self.stream.get_mut().incoming.clear();
        // The client still sends handshake records (ChangeCipherSpec 20, handshake 22) after
        // we are done: our last flight was lost, and no timer guards it.
        if done_before && !wrote && matches!(datagram.first(), Some(20 | 22)) {
            self.to_send.extend(self.last_flight.iter().cloned());
        }
        Ok(())
    }

    fn retransmit(&mut self) -> Result<(), DtlsError> {
        if self.established.is_none() {
            self.to_send.extend(self.last_flight.iter().cloned());
        }
        Ok(())
    }

    fn poll_datagram(&mut self) -> Option<Vec<u8>> {
        self.to_send.pop_front()
    }

    fn awaiting_peer(&self) -> bool {
        self.established.is_none() && !self.last_flight.is_empty()
    }

    fn established(&self) -> Option<&DtlsEstablished> {
        self.established.as_ref()
    }
}
