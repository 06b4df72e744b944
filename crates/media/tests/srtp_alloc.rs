//! Zero heap allocation per packet in steady state: after a stream exists, protect and
//! unprotect (RTP and RTCP, every suite) allocate nothing. Counted with a counting global
//! allocator, so this file holds a single test (tests in one binary share the allocator).
//! The allocator is process-wide: see the windows below.

use sotto_media::srtp::{SrtpPolicy, SrtpSession, SrtpSuite};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

#[test]
fn steady_state_allocates_nothing() {
    let prov = sotto_crypto_rust::provider();
    for suite in [
        SrtpSuite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32,
        SrtpSuite::Aes256CmHmacSha1_80,
        SrtpSuite::AeadAes128Gcm,
        SrtpSuite::AeadAes256Gcm,
    ] {
        let key = vec![3u8; suite.master_key_len()];
        let salt = vec![4u8; suite.master_salt_len()];
        let p = SrtpPolicy::new(suite, &key, &salt);
        let mut tx = SrtpSession::new(prov, p.clone()).unwrap();
        let mut rx = SrtpSession::new(prov, p).unwrap();
        let mut buf = [0u8; 1300];
        let one = |seq: u16, tx: &mut SrtpSession, rx: &mut SrtpSession, buf: &mut [u8]| {
            buf[..12].copy_from_slice(&[0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5]);
            buf[2..4].copy_from_slice(&seq.to_be_bytes());
            let n = tx.protect_rtp(buf, 172).unwrap();
            assert_eq!(rx.unprotect_rtp(&mut buf[..n]).unwrap(), 172);
            buf[..8].copy_from_slice(&[0x81, 201, 0, 7, 0, 0, 0, 5]);
            let n = tx.protect_rtcp(buf, 32).unwrap();
            assert_eq!(rx.unprotect_rtcp(&mut buf[..n]).unwrap(), 32);
        };
        // Warm up: creates the stream on both sides, which allocates (and shows that the
        // counter sees this crate's allocations).
        let warm = Region::new(GLOBAL);
        one(1, &mut tx, &mut rx, &mut buf);
        assert!(
            warm.change().allocations > 0,
            "{suite}: counter not counting"
        );
        // The counter is process-wide, so a one-off allocation by another thread (the test
        // harness) or a lazy one-time initialisation can land in a window. A per-packet
        // allocation would show up in every window (2000 packets each); so measure three
        // windows and require at least one to be clean.
        let mut windows = Vec::new();
        for w in 0..3u16 {
            let region = Region::new(GLOBAL);
            for seq in (2 + w * 2000)..(2002 + w * 2000) {
                one(seq, &mut tx, &mut rx, &mut buf);
            }
            windows.push(region.change());
        }
        assert!(
            windows
                .iter()
                .any(|s| s.allocations == 0 && s.reallocations == 0),
            "{suite}: every 2000-packet window allocated: {windows:?}"
        );
        assert!(
            windows.iter().all(|s| s.allocations < 100),
            "{suite}: allocations grow with packets: {windows:?}"
        );
    }
}
