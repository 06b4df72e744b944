//! # Audio building blocks for the user agent
//!
//! Everything a headless agent needs to put real audio on the wire and check what came back,
//! with no IO and no clock:
//!
//! - [`g711`]: ITU-T G.711 μ-law (PCMU, RTP payload type 0) and A-law (PCMA, payload type 8),
//!   RFC 3551 §4.5.14;
//! - [`wav`]: RIFF/WAVE PCM 16-bit read and write on byte buffers (and a streaming writer over
//!   any `Write + Seek`), with conversion of 16/24/32/48 kHz input down to 8 kHz;
//! - [`tone`]: a phase-continuous sine generator, frame by frame;
//! - [`goertzel`]: the power fraction of one frequency over fixed windows, to check that a
//!   recording holds a given tone;
//! - [`dtmf`]: the RFC 4733 telephone-event payload.
//!
//! All audio is signed 16-bit linear PCM, mono, at [`SAMPLE_RATE`] unless said otherwise.

pub mod dtmf;
pub mod g711;
pub mod goertzel;
pub mod tone;
pub mod wav;

pub use dtmf::TelephoneEvent;
pub use g711::Codec;
pub use goertzel::{ToneReport, power_fraction};
pub use tone::Tone;
pub use wav::{Wav, WavError, WavWriter};

/// The sample rate of G.711 and of every frame this module produces: 8000 Hz.
pub const SAMPLE_RATE: u32 = 8000;

/// Samples in one 20 ms frame at [`SAMPLE_RATE`] (the default packetization time).
pub const FRAME_SAMPLES: usize = 160;
