//! OpenSSL's DTLS for DTLS-SRTP, driven through memory: handshakes both ways, the agreed
//! profile, equal exported keys, the peer certificate handed out, retransmission only when
//! the caller asks, loss of whole flights, a peer without use_srtp, garbage.

use sotto_crypto::dtls::{DtlsConfig, DtlsRole, DtlsSession, SrtpProfile};

/// A client, a server, and their certificates (DER).
type Pair = (Box<dyn DtlsSession>, Box<dyn DtlsSession>, Vec<u8>, Vec<u8>);

fn pair(client_profiles: &[SrtpProfile], server_profiles: &[SrtpProfile]) -> Pair {
    let p = sotto_crypto_rust::provider();
    let cc = p.dtls.generate_certificate("client").unwrap();
    let sc = p.dtls.generate_certificate("server").unwrap();
    let client = p
        .dtls
        .session(&DtlsConfig {
            role: DtlsRole::Client,
            certificate: &cc,
            profiles: client_profiles,
            mtu: 1200,
        })
        .unwrap();
    let server = p
        .dtls
        .session(&DtlsConfig {
            role: DtlsRole::Server,
            certificate: &sc,
            profiles: server_profiles,
            mtu: 1200,
        })
        .unwrap();
    (client, server, cc.certificate_der, sc.certificate_der)
}

/// Moves every pending datagram from `a` to `b` (dropping those `drop` says), returns how
/// many were moved.
fn flow(
    a: &mut dyn DtlsSession,
    b: &mut dyn DtlsSession,
    drop: &mut dyn FnMut(&[u8]) -> bool,
) -> usize {
    let mut n = 0;
    while let Some(d) = a.poll_datagram() {
        n += 1;
        if !drop(&d) {
            b.handle_datagram(&d).unwrap();
        }
    }
    n
}

fn handshake(c: &mut dyn DtlsSession, s: &mut dyn DtlsSession) {
    c.start().unwrap();
    s.start().unwrap();
    for _ in 0..10 {
        flow(c, s, &mut |_| false);
        flow(s, c, &mut |_| false);
        if c.established().is_some() && s.established().is_some() {
            return;
        }
    }
    panic!("no handshake");
}

#[test]
fn both_sides_agree_a_profile_and_export_equal_keys() {
    let (mut c, mut s, cc, sc) = pair(&SrtpProfile::ALL, &SrtpProfile::ALL);
    assert!(c.established().is_none() && !s.awaiting_peer());
    handshake(c.as_mut(), s.as_mut());
    let (ce, se) = (c.established().unwrap(), s.established().unwrap());
    assert_eq!(ce.profile, SrtpProfile::AeadAes128Gcm, "AEAD preferred");
    assert_eq!(ce.profile, se.profile);
    assert_eq!(ce.keying_material.len(), 2 * (16 + 12));
    assert_eq!(ce.keying_material.expose(), se.keying_material.expose());
    assert_ne!(ce.keying_material.expose(), &[0u8; 56][..]);
    assert_eq!(
        ce.peer_certificate, sc,
        "the client sees the server's certificate"
    );
    assert_eq!(
        se.peer_certificate, cc,
        "the server sees the client's certificate"
    );
    assert!(ce.cipher.contains("ECDSA"), "{}", ce.cipher);
    assert!(!c.awaiting_peer() && !s.awaiting_peer());
}

#[test]
fn the_server_picks_from_the_common_profiles() {
    let (mut c, mut s, _, _) = pair(
        &[SrtpProfile::Aes128CmSha1_32, SrtpProfile::Aes128CmSha1_80],
        &[SrtpProfile::Aes128CmSha1_80],
    );
    handshake(c.as_mut(), s.as_mut());
    let e = c.established().unwrap();
    assert_eq!(e.profile, SrtpProfile::Aes128CmSha1_80);
    assert_eq!(e.keying_material.len(), 2 * (16 + 14));
}

#[test]
fn nothing_is_resent_unless_the_caller_asks() {
    let (mut c, mut s, _, _) = pair(&SrtpProfile::ALL, &SrtpProfile::ALL);
    c.start().unwrap();
    let hello = flow(c.as_mut(), s.as_mut(), &mut |_| false);
    assert_eq!(hello, 1);
    assert!(c.awaiting_peer());
    let server_flight = flow(s.as_mut(), c.as_mut(), &mut |_| false);
    assert!(server_flight >= 1);
    // The client answered the server's flight: its own new flight only, no resend of the
    // ClientHello before it.
    let mut first = None;
    while let Some(d) = c.poll_datagram() {
        first.get_or_insert(d[13]); // handshake type of the first record
        s.handle_datagram(&d).unwrap();
    }
    assert_ne!(first, Some(1), "no ClientHello resent");
    assert!(s.established().is_some());
}

#[test]
fn lost_flights_are_recovered_by_the_callers_retransmissions() {
    let (mut c, mut s, _, _) = pair(&SrtpProfile::ALL, &SrtpProfile::ALL);
    c.start().unwrap();
    // The ClientHello is lost; the caller's timer fires.
    assert_eq!(flow(c.as_mut(), s.as_mut(), &mut |_| true), 1);
    c.retransmit().unwrap();
    assert_eq!(
        flow(c.as_mut(), s.as_mut(), &mut |_| false),
        1,
        "ClientHello again"
    );
    // The server's whole flight is lost. The client's copy of its hello is a replay to the
    // server (dropped); the server's own timer sends its flight again.
    assert!(s.awaiting_peer());
    flow(s.as_mut(), c.as_mut(), &mut |_| true);
    c.retransmit().unwrap();
    flow(c.as_mut(), s.as_mut(), &mut |_| false);
    s.retransmit().unwrap();
    assert!(flow(s.as_mut(), c.as_mut(), &mut |_| false) >= 1);
    // The client's last flight arrives; the server's last flight (CCS, Finished) is lost.
    flow(c.as_mut(), s.as_mut(), &mut |_| false);
    assert!(s.established().is_some());
    flow(s.as_mut(), c.as_mut(), &mut |_| true);
    assert!(c.established().is_none() && c.awaiting_peer());
    // The client resends; the server, done, answers with its last flight again.
    c.retransmit().unwrap();
    flow(c.as_mut(), s.as_mut(), &mut |_| false);
    assert!(flow(s.as_mut(), c.as_mut(), &mut |_| false) >= 1);
    assert!(c.established().is_some());
    assert_eq!(
        c.established().unwrap().keying_material.expose(),
        s.established().unwrap().keying_material.expose()
    );
}

#[test]
fn a_peer_without_common_srtp_profile_fails_the_handshake() {
    let (mut c, mut s, _, _) = pair(
        &[SrtpProfile::Aes128CmSha1_32],
        &[SrtpProfile::AeadAes256Gcm],
    );
    c.start().unwrap();
    let mut failed = false;
    for _ in 0..5 {
        while let Some(d) = c.poll_datagram() {
            failed |= s.handle_datagram(&d).is_err();
        }
        while let Some(d) = s.poll_datagram() {
            failed |= c.handle_datagram(&d).is_err();
        }
    }
    assert!(
        failed || (c.established().is_none() && s.established().is_none()),
        "no keys without an SRTP profile"
    );
    assert!(c.established().is_none());
}

#[test]
fn garbage_is_dropped_and_the_handshake_goes_on() {
    let (mut c, mut s, _, _) = pair(&SrtpProfile::ALL, &SrtpProfile::ALL);
    c.start().unwrap();
    for g in [
        &b""[..],
        &[22u8; 3][..],
        &[22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255][..],
    ] {
        let _ = s.handle_datagram(g);
    }
    handshake(c.as_mut(), s.as_mut());
    assert!(s.established().is_some());
}
