//! # WAV files: RIFF/WAVE, linear PCM 16-bit
//!
//! [`Wav::parse`] reads a RIFF/WAVE file held in memory: a `fmt ` chunk of format 1 (PCM) or
//! `0xFFFE` (WAVE_FORMAT_EXTENSIBLE with the PCM sub-format), 16 bits per sample, any number
//! of channels, and the `data` chunk; other chunks are skipped (with their pad octet). Every
//! read is bounds-checked; a truncated `data` chunk yields the samples present.
//!
//! [`Wav::to_8k_mono`] keeps the first channel and, when the rate is a whole multiple of
//! 8000 Hz (16, 24, 32, 48 kHz...), averages each group of `rate / 8000` samples: a box
//! filter followed by decimation. This is crude (the box filter attenuates aliasing only
//! partly) but enough to play a tone or speech over G.711. Other rates are refused.
//!
//! [`Wav::to_bytes`] writes a canonical 44-byte header and the samples; [`WavWriter`] streams
//! samples to any `Write + Seek` and fixes the sizes in the header at [`WavWriter::finish`].

use std::io::{Seek, SeekFrom, Write};

/// Length of the canonical header [`Wav::to_bytes`] and [`WavWriter`] write.
pub const HEADER_LEN: usize = 44;

/// Largest channel count accepted.
pub const MAX_CHANNELS: u16 = 16;

/// Why a WAV file could not be read or converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WavError {
    /// Not a RIFF/WAVE file.
    #[error("not a RIFF/WAVE file")]
    NotWave,
    /// No `fmt ` chunk before the `data` chunk, or a `fmt ` chunk too short.
    #[error("missing or short fmt chunk")]
    MissingFormat,
    /// No `data` chunk.
    #[error("missing data chunk")]
    MissingData,
    /// Not linear PCM (format tag given).
    #[error("unsupported WAV format tag {0:#06x}: only PCM")]
    UnsupportedFormat(u16),
    /// Not 16 bits per sample.
    #[error("unsupported sample size: {0} bits, only 16")]
    UnsupportedBits(u16),
    /// Zero or too many channels.
    #[error("unsupported channel count {0}")]
    UnsupportedChannels(u16),
    /// A sample rate that cannot be converted to 8 kHz by decimation (or zero).
    #[error("unsupported sample rate {0} Hz")]
    UnsupportedRate(u32),
    /// The data is larger than a RIFF file can describe.
    #[error("audio too long for a WAV file")]
    TooLong,
}

/// Decoded WAV audio: interleaved 16-bit samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wav {
    /// Samples per second.
    pub sample_rate: u32,
    /// Number of interleaved channels.
    pub channels: u16,
    /// Interleaved samples (`channels` per frame).
    pub samples: Vec<i16>,
}

fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes([
        *b.get(at)?,
        *b.get(at + 1)?,
        *b.get(at + 2)?,
        *b.get(at + 3)?,
    ]))
}

/// The canonical 44-byte header for `data_bytes` of 16-bit PCM.
fn header(sample_rate: u32, channels: u16, data_bytes: u32) -> [u8; HEADER_LEN] {
    let block_align = channels.saturating_mul(2);
    let byte_rate = sample_rate.saturating_mul(u32::from(block_align));
    let mut h = [0u8; HEADER_LEN];
    let fields: [(usize, &[u8]); 13] = [
        (0, b"RIFF"),
        (4, &data_bytes.saturating_add(36).to_le_bytes()),
        (8, b"WAVE"),
        (12, b"fmt "),
        (16, &16u32.to_le_bytes()),
        (20, &1u16.to_le_bytes()),
        (22, &channels.to_le_bytes()),
        (24, &sample_rate.to_le_bytes()),
        (28, &byte_rate.to_le_bytes()),
        (32, &block_align.to_le_bytes()),
        (34, &16u16.to_le_bytes()),
        (36, b"data"),
        (40, &data_bytes.to_le_bytes()),
    ];
    for (at, bytes) in fields {
        if let Some(dst) = h.get_mut(at..at + bytes.len()) {
            dst.copy_from_slice(bytes);
        }
    }
    h
}

impl Wav {
    /// Mono audio at `sample_rate`.
    pub fn mono(sample_rate: u32, samples: Vec<i16>) -> Self {
        Wav {
            sample_rate,
            channels: 1,
            samples,
        }
    }

    /// Reads a RIFF/WAVE PCM 16-bit file.
    pub fn parse(file: &[u8]) -> Result<Self, WavError> {
        if file.get(0..4) != Some(b"RIFF") || file.get(8..12) != Some(b"WAVE") {
            return Err(WavError::NotWave);
        }
        let mut at = 12usize;
        let mut format: Option<(u16, u32)> = None;
        while let (Some(id), Some(size)) = (file.get(at..at + 4), le32(file, at + 4)) {
            let body = at + 8;
            let size = size as usize;
            let end = body.saturating_add(size);
            if id == b"fmt " {
                if size < 16 {
                    return Err(WavError::MissingFormat);
                }
                let fmt = file.get(body..end).ok_or(WavError::MissingFormat)?;
                let mut tag = le16(fmt, 0).ok_or(WavError::MissingFormat)?;
                if tag == 0xfffe {
                    // WAVE_FORMAT_EXTENSIBLE: the sub-format GUID starts with the real tag.
                    tag = le16(fmt, 24).ok_or(WavError::MissingFormat)?;
                }
                if tag != 1 {
                    return Err(WavError::UnsupportedFormat(tag));
                }
                let channels = le16(fmt, 2).ok_or(WavError::MissingFormat)?;
                let rate = le32(fmt, 4).ok_or(WavError::MissingFormat)?;
                let bits = le16(fmt, 14).ok_or(WavError::MissingFormat)?;
                if bits != 16 {
                    return Err(WavError::UnsupportedBits(bits));
                }
                if channels == 0 || channels > MAX_CHANNELS {
                    return Err(WavError::UnsupportedChannels(channels));
                }
                if rate == 0 {
                    return Err(WavError::UnsupportedRate(rate));
                }
                format = Some((channels, rate));
            } else if id == b"data" {
                let (channels, sample_rate) = format.ok_or(WavError::MissingFormat)?;
                // A writer that never fixed the size (streaming) leaves 0 or 0xFFFFFFFF:
                // take what is there.
                let data = file.get(body..end.min(file.len())).unwrap_or_default();
                let usable = data.len() - data.len() % (2 * usize::from(channels));
                let samples = data
                    .get(..usable)
                    .unwrap_or_default()
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]])) // invariant: chunks of 2
                    .collect();
                return Ok(Wav {
                    sample_rate,
                    channels,
                    samples,
                });
            }
            // Chunks are padded to an even length.
            at = end.saturating_add(size & 1);
        }
        Err(if format.is_some() {
            WavError::MissingData
        } else {
            WavError::MissingFormat
        })
    }

    /// Number of frames (samples per channel).
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    /// The first channel at 8000 Hz: decimated with a box filter when the rate is a
    /// multiple of 8000, refused otherwise.
    pub fn to_8k_mono(&self) -> Result<Vec<i16>, WavError> {
        let rate = self.sample_rate;
        if rate == 0 || !rate.is_multiple_of(super::SAMPLE_RATE) {
            return Err(WavError::UnsupportedRate(rate));
        }
        let factor = (rate / super::SAMPLE_RATE) as usize;
        let channels = usize::from(self.channels.max(1));
        let first: Vec<i16> = self.samples.iter().step_by(channels).copied().collect();
        if factor == 1 {
            return Ok(first);
        }
        Ok(first
            .chunks_exact(factor)
            .map(|g| {
                let sum: i64 = g.iter().map(|&s| i64::from(s)).sum();
                (sum / factor as i64) as i16 // invariant: a mean of i16 values fits
            })
            .collect())
    }

    /// The file: canonical 44-byte header and the samples.
    pub fn to_bytes(&self) -> Result<Vec<u8>, WavError> {
        let data_bytes = self
            .samples
            .len()
            .checked_mul(2)
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= u32::MAX - 36)
            .ok_or(WavError::TooLong)?;
        let mut out = Vec::with_capacity(HEADER_LEN + data_bytes as usize);
        out.extend_from_slice(&header(self.sample_rate, self.channels, data_bytes));
        for s in &self.samples {
            out.extend_from_slice(&s.to_le_bytes());
        }
        Ok(out)
    }
}

/// Writes mono 16-bit PCM to a `Write + Seek` as it arrives (e.g. received audio during a
/// call); the header sizes are fixed by [`WavWriter::finish`].
#[derive(Debug)]
pub struct WavWriter<W: Write + Seek> {
    out: W,
    sample_rate: u32,
    data_bytes: u32,
}

impl<W: Write + Seek> WavWriter<W> {
    /// Writes a header with a zero data size and positions after it.
    pub fn new(mut out: W, sample_rate: u32) -> std::io::Result<Self> {
        out.write_all(&header(sample_rate, 1, 0))?;
        Ok(WavWriter {
            out,
            sample_rate,
            data_bytes: 0,
        })
    }

    /// Appends samples.
    pub fn write_samples(&mut self, samples: &[i16]) -> std::io::Result<()> {
        let add = u32::try_from(samples.len() * 2)
            .ok()
            .and_then(|n| self.data_bytes.checked_add(n))
            .filter(|n| *n <= u32::MAX - 36)
            .ok_or_else(|| std::io::Error::other(WavError::TooLong))?;
        let mut buf = [0u8; 512];
        for chunk in samples.chunks(buf.len() / 2) {
            for (b, s) in buf.chunks_exact_mut(2).zip(chunk) {
                b.copy_from_slice(&s.to_le_bytes());
            }
            self.out
                .write_all(buf.get(..chunk.len() * 2).unwrap_or_default())?;
        }
        self.data_bytes = add;
        Ok(())
    }

    /// Samples written so far.
    pub fn samples_written(&self) -> usize {
        self.data_bytes as usize / 2
    }

    /// Rewrites the header with the final sizes, flushes and returns the output.
    pub fn finish(mut self) -> std::io::Result<W> {
        self.out.seek(SeekFrom::Start(0))?;
        self.out
            .write_all(&header(self.sample_rate, 1, self.data_bytes))?;
        self.out.seek(SeekFrom::End(0))?;
        self.out.flush()?;
        Ok(self.out)
    }
}
