//! Fuzz target: SRTP and SRTCP unprotect on arbitrary bytes, for every suite, with and
//! without an MKI. The first input byte selects the suite (low bits) and the MKI (high bit);
//! the rest is the packet.
//!
//! Beyond "no panic on any input", the same bytes are then taken as a clear RTP/RTCP packet:
//! whenever protect accepts them, unprotect by a fresh receiver must give them back exactly.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sotto_media::srtp::{SrtpPolicy, SrtpSession, SrtpSuite};

fn session(suite: SrtpSuite, mki: bool) -> SrtpSession {
    let key = vec![0x2b; suite.master_key_len()];
    let salt = vec![0x7e; suite.master_salt_len()];
    let mut p = SrtpPolicy::new(suite, &key, &salt);
    p.danger_allow_null_cipher = true;
    if mki {
        p = p.with_mki(&[0xe1, 0xf9, 0x7a, 0x0d]);
    }
    // invariant: the policy above is valid for every suite (lengths from the suite).
    SrtpSession::new(sotto_crypto_rust::provider(), p).expect("valid policy")
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let suite = SrtpSuite::ALL[usize::from(sel & 0x7f) % SrtpSuite::ALL.len()];
    let mki = sel & 0x80 != 0;

    let mut rx = session(suite, mki);
    let mut a = pkt.to_vec();
    if let Ok(n) = rx.unprotect_rtp(&mut a) {
        assert!(n <= pkt.len());
    }
    let mut b = pkt.to_vec();
    if let Ok(n) = rx.unprotect_rtcp(&mut b) {
        assert!(n <= pkt.len());
    }

    let mut tx = session(suite, mki);
    let mut rx = session(suite, mki);
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + tx.rtp_overhead(), 0);
    if let Ok(n) = tx.protect_rtp(&mut buf, pkt.len()) {
        let m = rx.unprotect_rtp(&mut buf[..n]).expect("SRTP round trip");
        assert_eq!(&buf[..m], pkt);
    }
    let mut buf = pkt.to_vec();
    buf.resize(pkt.len() + tx.rtcp_overhead(), 0);
    if let Ok(n) = tx.protect_rtcp(&mut buf, pkt.len()) {
        let m = rx.unprotect_rtcp(&mut buf[..n]).expect("SRTCP round trip");
        assert_eq!(&buf[..m], pkt);
    }
});
