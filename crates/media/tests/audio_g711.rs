//! G.711 μ-law and A-law: ITU-T table points, an independent implementation (CPython's
//! `audioop`, every 16-bit input and every code, see `vectors/g711/PROVENANCE.md`), and
//! the round-trip error bound of the companding law.

use sotto_media::audio::Codec;
use sotto_media::audio::g711::{alaw_decode, alaw_encode, ulaw_decode, ulaw_encode};

const ENCODE: &[u8] = include_bytes!("vectors/g711/cpython_audioop_encode.dat");
const DECODE: &[u8] = include_bytes!("vectors/g711/cpython_audioop_decode.dat");

#[test]
fn table_points() {
    // Silence: μ-law codes all bits inverted (0xFF), A-law inverts even bits (0xD5).
    assert_eq!(ulaw_encode(0), 0xff);
    assert_eq!(alaw_encode(0), 0xd5);
    assert_eq!(Codec::Pcmu.silence(), 0xff);
    assert_eq!(Codec::Pcma.silence(), 0xd5);
    // Both μ-law zeros decode to 0; the extremes are ±32124.
    assert_eq!(ulaw_decode(0xff), 0);
    assert_eq!(ulaw_decode(0x7f), 0);
    assert_eq!(ulaw_decode(0x80), 32124);
    assert_eq!(ulaw_decode(0x00), -32124);
    assert_eq!(ulaw_encode(i16::MAX), 0x80);
    assert_eq!(ulaw_encode(i16::MIN), 0x00);
    // A-law: the smallest magnitudes are ±8 (half of the first step), the extremes ±32256.
    assert_eq!(alaw_decode(0xd5), 8);
    assert_eq!(alaw_decode(0x55), -8);
    assert_eq!(alaw_decode(0xaa), 32256);
    assert_eq!(alaw_decode(0x2a), -32256);
    assert_eq!(alaw_encode(i16::MAX), 0xaa);
    assert_eq!(alaw_encode(i16::MIN), 0x2a);
    assert_eq!(Codec::from_payload_type(0), Some(Codec::Pcmu));
    assert_eq!(Codec::from_payload_type(8), Some(Codec::Pcma));
    assert_eq!(Codec::from_payload_type(101), None);
    assert_eq!(Codec::Pcma.payload_type(), 8);
}

#[test]
fn matches_cpython_audioop_for_every_input() {
    assert_eq!(ENCODE.len(), 2 * 65536);
    assert_eq!(DECODE.len(), 4 * 256);
    let mut mismatches = Vec::new();
    for (i, pair) in ENCODE.chunks_exact(2).enumerate() {
        let x = (i as i32 - 32768) as i16;
        if ulaw_encode(x) != pair[0] || alaw_encode(x) != pair[1] {
            mismatches.push((x, ulaw_encode(x), pair[0], alaw_encode(x), pair[1]));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches, first {:?}",
        mismatches.len(),
        mismatches.first()
    );
    for (code, d) in DECODE.chunks_exact(4).enumerate() {
        let u = i16::from_le_bytes([d[0], d[1]]);
        let a = i16::from_le_bytes([d[2], d[3]]);
        assert_eq!(ulaw_decode(code as u8), u, "μ-law code {code:#04x}");
        assert_eq!(alaw_decode(code as u8), a, "A-law code {code:#04x}");
    }
}

/// The error is at most half a quantization step of the segment involved plus the
/// truncation to 14 (μ-law) or 13 (A-law) bits. μ-law: the biased magnitude |x| + 132 lies in
/// [128·2^e, 256·2^e) for a step of 8·2^e, so half a step is at most (|x| + 132)/32.
/// A-law: the step is 16 below 512, then 2^(s+3) for magnitudes in [2^(s+7), 2^(s+8)), so
/// half a step is at most max(8, |x|/32). The segment is that of the larger of input and
/// output, since truncation can carry a value across a segment boundary.
#[test]
fn round_trip_error_is_within_half_a_step() {
    for x in i16::MIN..=i16::MAX {
        let u = i32::from(ulaw_decode(ulaw_encode(x)));
        let a = i32::from(alaw_decode(alaw_encode(x)));
        let xi = i32::from(x);
        // μ-law clips magnitudes above 32635 to the top code (32124).
        let mu_bound = if xi.abs() > 32635 {
            xi.abs() - 32124
        } else {
            (xi.abs().max(u.abs()) + 132) / 32 + 3
        };
        assert!((u - xi).abs() <= mu_bound, "μ-law {x} -> {u}");
        let a_bound = (xi.abs().max(a.abs()) / 32).max(8) + 8;
        assert!((a - xi).abs() <= a_bound, "A-law {x} -> {a}");
        // Same sign (or zero).
        assert!(u == 0 || (u > 0) == (x > 0), "μ-law sign {x} -> {u}");
        assert!((a > 0) == (x >= 0), "A-law sign {x} -> {a}");
    }
    // The bound is tight enough to mean something: 3 % of full scale near the top.
    assert!((i32::from(ulaw_decode(ulaw_encode(30000))) - 30000).abs() <= 1024);
}

#[test]
fn codes_are_fixed_points_and_monotonic() {
    for c in 0..=255u8 {
        // Every A-law code is reproduced; every μ-law code too except the negative zero.
        assert_eq!(alaw_encode(alaw_decode(c)), c);
        if c != 0x7f {
            assert_eq!(ulaw_encode(ulaw_decode(c)), c);
        }
    }
    let mut prev = (i16::MIN, i16::MIN);
    for x in i16::MIN..=i16::MAX {
        let d = (ulaw_decode(ulaw_encode(x)), alaw_decode(alaw_encode(x)));
        assert!(d.0 >= prev.0 && d.1 >= prev.1, "not monotonic at {x}");
        prev = d;
    }
}

#[test]
fn slice_codec_round_trip() {
    let pcm: Vec<i16> = (0..160)
        .map(|i| ((i * 409) % 20000 - 10000) as i16)
        .collect();
    for codec in [Codec::Pcmu, Codec::Pcma] {
        let mut enc = [0u8; 160];
        assert_eq!(codec.encode(&pcm, &mut enc), 160);
        let mut dec = [0i16; 200];
        assert_eq!(codec.decode(&enc, &mut dec), 160);
        for (x, y) in pcm.iter().zip(&dec) {
            assert!(
                (i32::from(*x) - i32::from(*y)).abs() <= 320,
                "{codec:?} {x} {y}"
            );
        }
        // Short output buffers are filled, not overrun.
        assert_eq!(codec.encode(&pcm, &mut enc[..10]), 10);
        assert_eq!(codec.decode(&enc, &mut dec[..7]), 7);
    }
}
