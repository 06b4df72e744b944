//! # G.711 μ-law and A-law (ITU-T G.711; RFC 3551 §4.5.14 PCMU/PCMA)
//!
//! Each 16-bit linear sample becomes one octet: a sign bit, a 3-bit segment (exponent) and a
//! 4-bit step inside the segment, so the quantization step doubles from one segment to the
//! next. Decoding returns the middle of the step, which bounds the round-trip error by half
//! a step (about 3 % of the magnitude, see the tests).
//!
//! Both laws take the top bits of the 16-bit two's-complement sample (14 bits for μ-law, 13
//! for A-law, by arithmetic shift). μ-law adds a bias of 33 to the magnitude (clipped at
//! 8159) and inverts all bits of the code (so silence is `0xFF`). A-law uses one's complement
//! for negative values and inverts the even bits (`^ 0x55`, so silence is `0xD5`). This is
//! the conversion of the classic Sun reference code, and the tests check it against an
//! independent implementation of it for every input.

/// Bias added to the 14-bit μ-law magnitude before segment search.
const ULAW_BIAS: i32 = 33;
/// Largest 14-bit μ-law magnitude before the bias (larger values are clipped).
const ULAW_CLIP: i32 = 8159;

/// The index of the highest set bit of `v` (`v > 0`), or 0 for `v == 0`.
fn top_bit(v: i32) -> i32 {
    31 - (v.max(1) as u32).leading_zeros() as i32
}

/// Encodes one linear sample to μ-law.
pub fn ulaw_encode(sample: i16) -> u8 {
    let v = i32::from(sample) >> 2; // 14-bit value, floor
    let (mask, mag) = if v < 0 { (0x7fu8, -v) } else { (0xffu8, v) };
    // Biased magnitude in 33..=8191: bits 5..=12 give the segment.
    let biased = (mag.min(ULAW_CLIP) + ULAW_BIAS).min(0x1fff);
    let exponent = top_bit(biased) - 5; // 0..=7
    let mantissa = (biased >> (exponent + 1)) & 0x0f;
    ((exponent << 4) | mantissa) as u8 ^ mask
}

/// Decodes one μ-law octet to a linear sample.
pub fn ulaw_decode(code: u8) -> i16 {
    let c = !code;
    let exponent = i32::from((c >> 4) & 0x07);
    let mantissa = i32::from(c & 0x0f);
    // In 16-bit units the bias is 132 (33 · 4) and the step 8 · 2^exponent.
    let mag = (((mantissa << 3) + 4 * ULAW_BIAS) << exponent) - 4 * ULAW_BIAS; // 0..=32124
    let v = if c & 0x80 != 0 { -mag } else { mag };
    v as i16 // |v| <= 32124: always fits
}

/// Encodes one linear sample to A-law.
pub fn alaw_encode(sample: i16) -> u8 {
    let v = i32::from(sample) >> 3; // 13-bit value, floor
    let (mask, mag) = if v >= 0 {
        (0xd5u8, v)
    } else {
        (0x55u8, -v - 1)
    }; // mag 0..=4095
    let code = if mag < 32 {
        // Segment 0: magnitudes 0..=31, step 2 (in 13-bit units).
        (mag >> 1) as u8
    } else {
        // Segment s in 1..=7 holds magnitudes 2^(s+4)..2^(s+5), step 2^s.
        let seg = top_bit(mag) - 4;
        ((seg << 4) | ((mag >> seg) & 0x0f)) as u8
    };
    code ^ mask
}

/// Decodes one A-law octet to a linear sample.
pub fn alaw_decode(code: u8) -> i16 {
    let c = code ^ 0x55;
    let seg = i32::from((c >> 4) & 0x07);
    let step = i32::from(c & 0x0f) << 4;
    let mag = match seg {
        0 => step + 8,
        _ => (step + 0x108) << (seg - 1),
    }; // 8..=32256
    let v = if c & 0x80 != 0 { mag } else { -mag };
    v as i16 // |v| <= 32256: always fits
}

/// A G.711 variant with its static RTP payload type (RFC 3551 table 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Codec {
    /// μ-law, `PCMU/8000`, payload type 0.
    Pcmu,
    /// A-law, `PCMA/8000`, payload type 8.
    Pcma,
}

impl Codec {
    /// The static RTP payload type: 0 for PCMU, 8 for PCMA.
    pub fn payload_type(self) -> u8 {
        match self {
            Codec::Pcmu => 0,
            Codec::Pcma => 8,
        }
    }

    /// The codec of a static payload type, if it is 0 or 8.
    pub fn from_payload_type(pt: u8) -> Option<Self> {
        match pt {
            0 => Some(Codec::Pcmu),
            8 => Some(Codec::Pcma),
            _ => None,
        }
    }

    /// The SDP encoding name (`PCMU` or `PCMA`); the clock rate is 8000.
    pub fn name(self) -> &'static str {
        match self {
            Codec::Pcmu => "PCMU",
            Codec::Pcma => "PCMA",
        }
    }

    /// The code of silence (linear 0).
    pub fn silence(self) -> u8 {
        self.encode_sample(0)
    }

    /// Encodes one sample.
    pub fn encode_sample(self, sample: i16) -> u8 {
        match self {
            Codec::Pcmu => ulaw_encode(sample),
            Codec::Pcma => alaw_encode(sample),
        }
    }

    /// Decodes one octet.
    pub fn decode_sample(self, code: u8) -> i16 {
        match self {
            Codec::Pcmu => ulaw_decode(code),
            Codec::Pcma => alaw_decode(code),
        }
    }

    /// Encodes `pcm` into the start of `out`; returns the number of octets written
    /// (`min(pcm.len(), out.len())`).
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) -> usize {
        let mut n = 0;
        for (o, s) in out.iter_mut().zip(pcm) {
            *o = self.encode_sample(*s);
            n += 1;
        }
        n
    }

    /// Decodes `codes` into the start of `out`; returns the number of samples written
    /// (`min(codes.len(), out.len())`).
    pub fn decode(self, codes: &[u8], out: &mut [i16]) -> usize {
        let mut n = 0;
        for (o, c) in out.iter_mut().zip(codes) {
            *o = self.decode_sample(*c);
            n += 1;
        }
        n
    }
}
