//! Tamper, replay, truncation, ROC, SRTCP index, MKI, key-limit and policy tests.

use sotto_media::srtp::{KeyLimits, SrtpError, SrtpPolicy, SrtpSession, SrtpSuite};

const SECURE: [SrtpSuite; 8] = [
    SrtpSuite::AesCm128HmacSha1_80,
    SrtpSuite::AesCm128HmacSha1_32,
    SrtpSuite::Aes192CmHmacSha1_80,
    SrtpSuite::Aes192CmHmacSha1_32,
    SrtpSuite::Aes256CmHmacSha1_80,
    SrtpSuite::Aes256CmHmacSha1_32,
    SrtpSuite::AeadAes128Gcm,
    SrtpSuite::AeadAes256Gcm,
];

fn policy(suite: SrtpSuite) -> SrtpPolicy {
    let key: Vec<u8> = (0..suite.master_key_len() as u8).collect();
    let salt: Vec<u8> = (100..100 + suite.master_salt_len() as u8).collect();
    SrtpPolicy::new(suite, &key, &salt)
}

fn pair(p: &SrtpPolicy) -> (SrtpSession, SrtpSession) {
    let prov = sotto_crypto_rust::provider();
    (
        SrtpSession::new(prov, p.clone()).unwrap(),
        SrtpSession::new(prov, p.clone()).unwrap(),
    )
}

fn rtp(seq: u16, ssrc: u32, payload_len: usize) -> Vec<u8> {
    let mut p = vec![0x80, 0x00];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 160).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..payload_len).map(|i| (i as u8) ^ 0x5a));
    p
}

fn rtcp(ssrc: u32) -> Vec<u8> {
    // RR with one report block.
    let mut p = vec![0x81, 201, 0, 7];
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend((0..24).map(|i| i as u8));
    p
}

fn protect(tx: &mut SrtpSession, pkt: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; pkt.len() + 64];
    buf[..pkt.len()].copy_from_slice(pkt);
    let n = tx.protect_rtp(&mut buf, pkt.len()).unwrap();
    buf.truncate(n);
    buf
}

fn protect_c(tx: &mut SrtpSession, pkt: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; pkt.len() + 64];
    buf[..pkt.len()].copy_from_slice(pkt);
    let n = tx.protect_rtcp(&mut buf, pkt.len()).unwrap();
    buf.truncate(n);
    buf
}

fn unprotect(rx: &mut SrtpSession, pkt: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = pkt.to_vec();
    let n = rx.unprotect_rtp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

fn unprotect_c(rx: &mut SrtpSession, pkt: &[u8]) -> Result<Vec<u8>, SrtpError> {
    let mut buf = pkt.to_vec();
    let n = rx.unprotect_rtcp(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Flipping any single bit of a protected packet makes it rejected; flips in the
/// authenticated region after the header are authentication failures. The untouched packet
/// still passes afterwards: failures change no state.
#[test]
fn every_bit_flip_is_rejected() {
    for suite in SECURE {
        for mki in [None, Some(&[0xa1, 0xb2][..])] {
            let mut p = policy(suite);
            if let Some(m) = mki {
                p = p.with_mki(m);
            }
            let (mut tx, mut rx) = pair(&p);
            let clear = rtp(1000, 0x1234_5678, 40);
            let prot = protect(&mut tx, &clear);
            let mki_len = mki.map_or(0, <[u8]>::len);
            let gcm = matches!(suite, SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm);
            let mki_at = if gcm {
                prot.len() - mki_len
            } else {
                prot.len() - suite.rtp_tag_len() - mki_len
            };
            for bit in 0..prot.len() * 8 {
                let mut bad = prot.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                let err = unprotect(&mut rx, &bad).expect_err("tampered packet accepted");
                let byte = bit / 8;
                if byte == 0 && bit % 8 >= 6 {
                    assert!(
                        matches!(err, SrtpError::BadVersion { .. }),
                        "{suite}: {err}"
                    );
                } else if (mki_at..mki_at + mki_len).contains(&byte) {
                    assert_eq!(err, SrtpError::UnknownMki, "{suite}");
                } else if byte >= 12 || (1..12).contains(&byte) {
                    assert_eq!(err, SrtpError::AuthenticationFailed, "{suite} byte {byte}");
                } else {
                    // Bits of byte 0 other than the version: CC/X change the header length.
                    assert!(
                        matches!(
                            err,
                            SrtpError::AuthenticationFailed | SrtpError::Truncated { .. }
                        ),
                        "{suite}: {err}"
                    );
                }
            }
            assert_eq!(unprotect(&mut rx, &prot).unwrap(), clear, "{suite}");

            // SRTCP too.
            let clear_c = rtcp(0x1234_5678);
            let prot_c = protect_c(&mut tx, &clear_c);
            for bit in 8..prot_c.len() * 8 {
                let mut bad = prot_c.clone();
                bad[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    unprotect_c(&mut rx, &bad).is_err(),
                    "{suite}: RTCP bit {bit}"
                );
            }
            assert_eq!(unprotect_c(&mut rx, &prot_c).unwrap(), clear_c);
        }
    }
}

#[test]
fn replay_and_too_old_for_windows_128_and_1024() {
    for window in [128usize, 1024] {
        for suite in [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AeadAes128Gcm] {
            let p = policy(suite).with_replay_window(window);
            let (mut tx, mut rx) = pair(&p);
            let start: u16 = 100;
            let total = window as u16 + 200;
            let prot: Vec<Vec<u8>> = (0..total)
                .map(|i| protect(&mut tx, &rtp(start + i, 7, 20)))
                .collect();
            // Receive the newest packet first, then everything else in order.
            let newest = prot.len() - 1;
            unprotect(&mut rx, &prot[newest]).unwrap();
            assert_eq!(
                unprotect(&mut rx, &prot[newest]),
                Err(SrtpError::Replayed {
                    index: u64::from(start + total - 1)
                })
            );
            for (i, pkt) in prot.iter().enumerate().take(newest) {
                let behind = newest - i;
                let got = unprotect(&mut rx, pkt);
                if behind >= window {
                    assert_eq!(
                        got,
                        Err(SrtpError::TooOld {
                            index: u64::from(start) + i as u64
                        }),
                        "window {window} behind {behind}"
                    );
                } else {
                    assert!(got.is_ok(), "window {window} behind {behind}: {got:?}");
                    assert!(matches!(
                        unprotect(&mut rx, pkt),
                        Err(SrtpError::Replayed { .. })
                    ));
                }
            }
        }
    }
}

#[test]
fn truncation_at_every_length_is_an_error_never_a_panic() {
    for suite in SECURE {
        let (mut tx, mut rx) = pair(&policy(suite).with_mki(&[1, 2, 3, 4]));
        let prot = protect(&mut tx, &rtp(5, 9, 33));
        let prot_c = protect_c(&mut tx, &rtcp(9));
        for n in 0..prot.len() {
            let err = unprotect(&mut rx, &prot[..n]).expect_err("truncated accepted");
            if n < 12 {
                assert!(
                    matches!(err, SrtpError::Truncated { .. }),
                    "{suite} {n}: {err}"
                );
            }
        }
        for n in 0..prot_c.len() {
            let err = unprotect_c(&mut rx, &prot_c[..n]).expect_err("truncated accepted");
            if n < 8 {
                assert!(
                    matches!(err, SrtpError::Truncated { .. }),
                    "{suite} {n}: {err}"
                );
            }
        }
        assert!(unprotect(&mut rx, &prot).is_ok());
        assert!(unprotect_c(&mut rx, &prot_c).is_ok());
    }
}

/// ROC rollover across 65535 → 0, including a late packet from before the wrap.
#[test]
fn roc_rollover() {
    for suite in [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AeadAes256Gcm] {
        let (mut tx, mut rx) = pair(&policy(suite));
        let seqs: Vec<u16> = (65530..=65535).chain(0..10).collect();
        let prot: Vec<Vec<u8>> = seqs
            .iter()
            .map(|&s| protect(&mut tx, &rtp(s, 1, 16)))
            .collect();
        // Deliver with the last pre-wrap packet (65535) arriving after 0 and 1.
        let order: Vec<usize> = (0..5).chain([6, 7, 5]).chain(8..prot.len()).collect();
        for &i in &order {
            let clear = unprotect(&mut rx, &prot[i]).unwrap_or_else(|e| panic!("{suite} {i}: {e}"));
            assert_eq!(clear, rtp(seqs[i], 1, 16));
        }
        // A receiver that thinks ROC is 0 cannot authenticate post-wrap packets (the ROC
        // is authenticated): packet seq 0 with ROC 1.
        let (_, mut fresh) = pair(&policy(suite));
        assert_eq!(
            unprotect(&mut fresh, &prot[6]),
            Err(SrtpError::AuthenticationFailed)
        );
        // ...but one told the ROC out of band can.
        let (_, mut told) = pair(&policy(suite));
        told.set_roc(1, 1).unwrap();
        assert_eq!(unprotect(&mut told, &prot[6]).unwrap(), rtp(0, 1, 16));
    }
}

/// Sender side: the ROC is carried across the wrap too (the packet after 65535 is encrypted
/// with ROC 1, so a receiver that was given ROC 1 decrypts it directly).
#[test]
fn sender_roc_increments() {
    let p = policy(SrtpSuite::AesCm128HmacSha1_80);
    let (mut tx, _) = pair(&p);
    protect(&mut tx, &rtp(65535, 3, 8));
    let after = protect(&mut tx, &rtp(0, 3, 8));
    let (_, mut rx) = pair(&p);
    rx.set_roc(3, 1).unwrap();
    assert_eq!(unprotect(&mut rx, &after).unwrap(), rtp(0, 3, 8));
}

#[test]
fn srtcp_index_e_flag_and_replay() {
    for suite in SECURE {
        let (mut tx, mut rx) = pair(&policy(suite));
        let clear = rtcp(0xabcd);
        let gcm = matches!(suite, SrtpSuite::AeadAes128Gcm | SrtpSuite::AeadAes256Gcm);
        let mut prev = Vec::new();
        for i in 0..5u32 {
            let prot = protect_c(&mut tx, &clear);
            let ew_at = if gcm { prot.len() - 4 } else { clear.len() };
            let ew = u32::from_be_bytes(prot[ew_at..ew_at + 4].try_into().unwrap());
            assert_eq!(ew, 0x8000_0000 | i, "{suite}: E=1, index {i}");
            assert_ne!(&prot[8..clear.len()], &clear[8..], "{suite}: encrypted");
            assert_eq!(unprotect_c(&mut rx, &prot).unwrap(), clear);
            assert_eq!(
                unprotect_c(&mut rx, &prot),
                Err(SrtpError::Replayed {
                    index: u64::from(i)
                })
            );
            prev.push(prot);
        }
        // Unencrypted SRTCP (E=0) is still authenticated.
        let mut p = policy(suite);
        p.encrypt_rtcp = false;
        let (mut tx, mut rx) = pair(&p);
        let prot = protect_c(&mut tx, &clear);
        assert_eq!(
            &prot[..clear.len()],
            &clear[..],
            "{suite}: E=0 leaves it clear"
        );
        let mut bad = prot.clone();
        bad[20] ^= 1;
        assert_eq!(
            unprotect_c(&mut rx, &bad),
            Err(SrtpError::AuthenticationFailed)
        );
        assert_eq!(unprotect_c(&mut rx, &prot).unwrap(), clear);
    }
}

#[test]
fn srtcp_index_exhaustion_needs_rekey() {
    let (mut tx, _) = pair(&policy(SrtpSuite::AesCm128HmacSha1_80));
    tx.set_srtcp_index(5, 0x7fff_fffe).unwrap();
    protect_c(&mut tx, &rtcp(5));
    protect_c(&mut tx, &rtcp(5));
    let mut buf = vec![0u8; 128];
    let c = rtcp(5);
    buf[..c.len()].copy_from_slice(&c);
    assert_eq!(
        tx.protect_rtcp(&mut buf, c.len()),
        Err(SrtpError::KeyLimitReached)
    );
}

#[test]
fn mki_selects_the_master_key() {
    for suite in [SrtpSuite::AesCm128HmacSha1_80, SrtpSuite::AeadAes128Gcm] {
        let p = policy(suite).with_mki(&[0, 0, 0, 1]);
        let (mut tx, mut rx) = pair(&p);
        let k2: Vec<u8> = vec![0x42; suite.master_key_len()];
        let s2: Vec<u8> = vec![0x24; suite.master_salt_len()];
        for s in [&mut tx, &mut rx] {
            s.add_master_key(&k2, &s2, &[0, 0, 0, 2]).unwrap();
        }
        let a = protect(&mut tx, &rtp(1, 8, 10));
        tx.set_outbound_mki(&[0, 0, 0, 2]).unwrap();
        let b = protect(&mut tx, &rtp(2, 8, 10));
        assert_ne!(a[12..22], b[12..22]);
        // Receive in either order; each selects its key by MKI.
        assert_eq!(unprotect(&mut rx, &b).unwrap(), rtp(2, 8, 10));
        assert_eq!(unprotect(&mut rx, &a).unwrap(), rtp(1, 8, 10));
        assert_eq!(rx.key_usage(&[0, 0, 0, 1]), Some((1, 0)));
        assert_eq!(rx.key_usage(&[0, 0, 0, 2]), Some((1, 0)));
        // A receiver without key 2 refuses its packets with UnknownMki.
        let (_, mut only1) = pair(&p);
        assert_eq!(unprotect(&mut only1, &b), Err(SrtpError::UnknownMki));
        assert_eq!(
            tx.set_outbound_mki(&[9, 9, 9, 9]),
            Err(SrtpError::UnknownMki)
        );
        assert!(
            tx.add_master_key(&k2, &s2, &[0, 0, 0, 2]).is_err(),
            "duplicate MKI"
        );
        assert!(tx.add_master_key(&k2, &s2, &[0, 3]).is_err(), "MKI length");
    }
    // Without MKIs there is exactly one key.
    let (mut tx, _) = pair(&policy(SrtpSuite::AesCm128HmacSha1_80));
    assert!(tx.add_master_key(&[0; 16], &[0; 14], &[1]).is_err());
}

#[test]
fn key_limit_reached_means_rekey() {
    for suite in [SrtpSuite::AesCm128HmacSha1_32, SrtpSuite::AeadAes128Gcm] {
        let mut p = policy(suite);
        p.key_limits = KeyLimits {
            srtp_packets: 3,
            srtcp_packets: 2,
        };
        let (mut tx, mut rx) = pair(&p);
        let prot: Vec<Vec<u8>> = (0..3).map(|i| protect(&mut tx, &rtp(i, 1, 4))).collect();
        let mut buf = vec![0u8; 64];
        let pkt = rtp(3, 1, 4);
        buf[..pkt.len()].copy_from_slice(&pkt);
        assert_eq!(
            tx.protect_rtp(&mut buf, pkt.len()),
            Err(SrtpError::KeyLimitReached)
        );
        for pkt in &prot {
            unprotect(&mut rx, pkt).unwrap();
        }
        let (mut tx2, _) = pair(&p);
        let extra: Vec<Vec<u8>> = (10..13).map(|i| protect(&mut tx2, &rtp(i, 2, 4))).collect();
        assert_eq!(
            unprotect(&mut rx, &extra[0]),
            Err(SrtpError::KeyLimitReached)
        );
        protect_c(&mut tx, &rtcp(1));
        protect_c(&mut tx, &rtcp(1));
        let mut buf = vec![0u8; 128];
        let c = rtcp(1);
        buf[..c.len()].copy_from_slice(&c);
        assert_eq!(
            tx.protect_rtcp(&mut buf, c.len()),
            Err(SrtpError::KeyLimitReached)
        );
    }
    // The RFC 3711 maxima cannot be raised.
    let mut p = policy(SrtpSuite::AesCm128HmacSha1_80);
    p.key_limits.srtp_packets = (1 << 48) + 1;
    assert!(SrtpSession::new(sotto_crypto_rust::provider(), p).is_err());
}

#[test]
fn null_cipher_needs_the_danger_switch() {
    for suite in [
        SrtpSuite::NullHmacSha1_80,
        SrtpSuite::NullHmacSha1_32,
        SrtpSuite::NullNull,
    ] {
        let p = policy(suite);
        assert_eq!(
            SrtpSession::new(sotto_crypto_rust::provider(), p.clone()).map(|_| ()),
            Err(SrtpError::NullCipherNotAllowed)
        );
        let mut p = p;
        p.danger_allow_null_cipher = true;
        let (mut tx, mut rx) = pair(&p);
        let clear = rtp(1, 1, 10);
        let prot = protect(&mut tx, &clear);
        assert_eq!(&prot[..clear.len()], &clear[..]);
        assert_eq!(unprotect(&mut rx, &prot).unwrap(), clear);
    }
}

#[test]
fn streams_are_bounded_and_only_created_by_authentic_packets() {
    let mut p = policy(SrtpSuite::AesCm128HmacSha1_80);
    p.max_streams = 2;
    let (mut tx, mut rx) = pair(&p);
    let a = protect(&mut tx, &rtp(1, 100, 4));
    let b = protect(&mut tx, &rtp(1, 200, 4));
    let mut buf = vec![0u8; 64];
    let c = rtp(1, 300, 4);
    buf[..c.len()].copy_from_slice(&c);
    assert_eq!(
        tx.protect_rtp(&mut buf, c.len()),
        Err(SrtpError::TooManyStreams { max: 2 })
    );
    // Forged packets for new SSRCs create nothing.
    for ssrc in 1000..1100u32 {
        let mut forged = a.clone();
        forged[8..12].copy_from_slice(&ssrc.to_be_bytes());
        assert_eq!(
            unprotect(&mut rx, &forged),
            Err(SrtpError::AuthenticationFailed)
        );
    }
    assert_eq!(rx.stream_count(), 0);
    unprotect(&mut rx, &a).unwrap();
    unprotect(&mut rx, &b).unwrap();
    assert_eq!(rx.stream_count(), 2);
    assert!(rx.remove_stream(100));
    assert_eq!(rx.stream_count(), 1);
    // Removed: its replay state is gone too.
    assert!(unprotect(&mut rx, &a).is_ok());
}

#[test]
fn policy_and_buffer_errors() {
    let prov = sotto_crypto_rust::provider();
    let mut p = policy(SrtpSuite::AesCm128HmacSha1_80);
    p.replay_window = 32;
    assert!(matches!(
        SrtpSession::new(prov, p),
        Err(SrtpError::InvalidPolicy(_))
    ));
    let p = SrtpPolicy::new(SrtpSuite::AesCm128HmacSha1_80, &[0; 15], &[0; 14]);
    assert!(matches!(
        SrtpSession::new(prov, p),
        Err(SrtpError::InvalidKeyLength {
            what: "master key",
            got: 15
        })
    ));
    let p = SrtpPolicy::new(SrtpSuite::AeadAes128Gcm, &[0; 16], &[0; 14]);
    assert!(matches!(
        SrtpSession::new(prov, p),
        Err(SrtpError::InvalidKeyLength {
            what: "master salt",
            got: 14
        })
    ));
    let (mut tx, _) = pair(&policy(SrtpSuite::AesCm128HmacSha1_80));
    let pkt = rtp(1, 1, 10);
    let mut buf = pkt.clone();
    assert_eq!(
        tx.protect_rtp(&mut buf, pkt.len()),
        Err(SrtpError::BufferTooSmall {
            need: pkt.len() + 10
        })
    );
    assert_eq!(tx.rtp_overhead(), 10);
    assert_eq!(tx.rtcp_overhead(), 14);
    assert!(matches!(
        tx.protect_rtp(&mut [0x40; 20], 20),
        Err(SrtpError::BadVersion { version: 1 })
    ));
    assert_eq!(
        "AES_256_CM_HMAC_SHA1_32".parse::<SrtpSuite>(),
        Ok(SrtpSuite::Aes256CmHmacSha1_32)
    );
    assert!("AES_CM_129".parse::<SrtpSuite>().is_err());
    for s in SrtpSuite::ALL {
        assert_eq!(SrtpSuite::from_name(s.name()), Some(s));
    }
}
