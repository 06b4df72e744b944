//! WAV: files written by another implementation (Python's `wave`), write → read round trips,
//! the streaming writer, decimation to 8 kHz, and refusal of what is not 16-bit PCM.

use std::io::Cursor;

use sotto_media::audio::wav::HEADER_LEN;
use sotto_media::audio::{Tone, ToneReport, Wav, WavError, WavWriter};

const STEREO_16K: &[u8] = include_bytes!("vectors/wav/python_wave_16k_stereo.wav");
const MONO_8K: &[u8] = include_bytes!("vectors/wav/python_wave_8k_mono.wav");

fn ramp(n: usize) -> Vec<i16> {
    (0..n)
        .map(|i| ((i * 997) % 65536) as i32 - 32768)
        .map(|v| v as i16)
        .collect()
}

#[test]
fn reads_python_wave_files() {
    let w = Wav::parse(MONO_8K).unwrap();
    assert_eq!((w.sample_rate, w.channels), (8000, 1));
    assert_eq!(w.samples, ramp(800));
    assert_eq!(w.to_8k_mono().unwrap(), w.samples);

    let s = Wav::parse(STEREO_16K).unwrap();
    assert_eq!((s.sample_rate, s.channels, s.frames()), (16000, 2, 320));
    for i in 0..320 {
        assert_eq!(s.samples[2 * i], (i as i16) * 10 - 1000);
        assert_eq!(s.samples[2 * i + 1], -(i as i16));
    }
    // First channel, averaged by pairs: (10·2k − 1000 + 10·(2k+1) − 1000) / 2 = 20k − 995.
    let m = s.to_8k_mono().unwrap();
    assert_eq!(m.len(), 160);
    for (k, v) in m.iter().enumerate() {
        assert_eq!(*v, 20 * k as i16 - 995);
    }
}

#[test]
fn write_read_round_trip_is_byte_exact() {
    let w = Wav::mono(8000, ramp(800));
    let bytes = w.to_bytes().unwrap();
    assert_eq!(bytes.len(), HEADER_LEN + 1600);
    // Same bytes as Python's `wave` writes for the same audio.
    assert_eq!(bytes, MONO_8K);
    assert_eq!(Wav::parse(&bytes).unwrap(), w);

    let stereo = Wav::parse(STEREO_16K).unwrap();
    assert_eq!(stereo.to_bytes().unwrap(), STEREO_16K);
}

#[test]
fn streaming_writer_fixes_the_header() {
    let mut wr = WavWriter::new(Cursor::new(Vec::new()), 8000).unwrap();
    let samples = ramp(800);
    for chunk in samples.chunks(160) {
        wr.write_samples(chunk).unwrap();
    }
    wr.write_samples(&[]).unwrap();
    assert_eq!(wr.samples_written(), 800);
    let out = wr.finish().unwrap().into_inner();
    assert_eq!(out, MONO_8K);
    // A large write crosses the writer's internal chunking.
    let long = ramp(5000);
    let mut wr = WavWriter::new(Cursor::new(Vec::new()), 8000).unwrap();
    wr.write_samples(&long).unwrap();
    let out = wr.finish().unwrap().into_inner();
    assert_eq!(Wav::parse(&out).unwrap().samples, long);
}

/// A header with a `fmt ` chunk of the given fields and an optional extra chunk before data.
fn file(tag: u16, channels: u16, rate: u32, bits: u16, extra: &[u8], data: &[u8]) -> Vec<u8> {
    let mut fmt = Vec::new();
    fmt.extend_from_slice(&tag.to_le_bytes());
    fmt.extend_from_slice(&channels.to_le_bytes());
    fmt.extend_from_slice(&rate.to_le_bytes());
    fmt.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    fmt.extend_from_slice(&(channels * 2).to_le_bytes());
    fmt.extend_from_slice(&bits.to_le_bytes());
    if tag == 0xfffe {
        fmt.extend_from_slice(&22u16.to_le_bytes());
        fmt.extend_from_slice(&bits.to_le_bytes());
        fmt.extend_from_slice(&4u32.to_le_bytes());
        // KSDATAFORMAT_SUBTYPE_PCM: 00000001-0000-0010-8000-00aa00389b71
        fmt.extend_from_slice(&[
            1, 0, 0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71,
        ]);
    }
    let mut body = Vec::new();
    body.extend_from_slice(b"WAVE");
    body.extend_from_slice(b"fmt ");
    body.extend_from_slice(&(fmt.len() as u32).to_le_bytes());
    body.extend_from_slice(&fmt);
    body.extend_from_slice(extra);
    body.extend_from_slice(b"data");
    body.extend_from_slice(&(data.len() as u32).to_le_bytes());
    body.extend_from_slice(data);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn extensible_format_and_odd_chunks() {
    let data: Vec<u8> = [5i16, -6, 7].iter().flat_map(|s| s.to_le_bytes()).collect();
    // An odd-sized LIST chunk is padded to even length before the data chunk.
    let list = [b"LIST".as_slice(), &3u32.to_le_bytes(), b"abc", &[0]].concat();
    let w = Wav::parse(&file(0xfffe, 1, 8000, 16, &list, &data)).unwrap();
    assert_eq!(w.samples, vec![5, -6, 7]);
    // A data chunk whose size was never fixed (streaming writer killed): take what is there.
    let mut f = file(1, 1, 8000, 16, &[], &data);
    let n = f.len();
    f[n - 10..n - 6].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Wav::parse(&f).unwrap().samples, vec![5, -6, 7]);
    // Truncated in the middle of a sample: the whole samples are kept.
    let f = file(1, 1, 8000, 16, &[], &data);
    assert_eq!(Wav::parse(&f[..f.len() - 1]).unwrap().samples, vec![5, -6]);
}

#[test]
fn refusals() {
    let data = [0u8; 8];
    assert_eq!(Wav::parse(b"RIFX0000WAVE"), Err(WavError::NotWave));
    assert_eq!(Wav::parse(b""), Err(WavError::NotWave));
    assert_eq!(
        Wav::parse(&file(3, 1, 8000, 32, &[], &data)),
        Err(WavError::UnsupportedFormat(3))
    );
    assert_eq!(
        Wav::parse(&file(1, 1, 8000, 8, &[], &data)),
        Err(WavError::UnsupportedBits(8))
    );
    assert_eq!(
        Wav::parse(&file(1, 0, 8000, 16, &[], &data)),
        Err(WavError::UnsupportedChannels(0))
    );
    assert_eq!(
        Wav::parse(&file(1, 1, 0, 16, &[], &data)),
        Err(WavError::UnsupportedRate(0))
    );
    let f = file(1, 1, 8000, 16, &[], &data);
    // Cut before the data chunk header.
    assert_eq!(Wav::parse(&f[..36]), Err(WavError::MissingData));
    assert_eq!(Wav::parse(&f[..20]), Err(WavError::MissingFormat));
    let w = Wav::parse(&file(1, 1, 44100, 16, &[], &data)).unwrap();
    assert_eq!(w.to_8k_mono(), Err(WavError::UnsupportedRate(44100)));
    // No input panics: every prefix of valid files.
    for f in [STEREO_16K, MONO_8K, &file(0xfffe, 1, 8000, 16, &[], &data)] {
        for n in 0..f.len() {
            let _ = Wav::parse(&f[..n]);
        }
    }
}

#[test]
fn decimating_48k_keeps_a_tone() {
    let mut tone = Tone::new(440.0, 10000, 48000);
    let w = Wav::mono(48000, tone.samples(48000));
    let m = Wav::parse(&w.to_bytes().unwrap())
        .unwrap()
        .to_8k_mono()
        .unwrap();
    assert_eq!(m.len(), 8000);
    let r = ToneReport::analyze(&m, 8000, 440.0, 0);
    assert_eq!(r.windows, 2);
    assert!(r.min_fraction > 0.95, "{r:?}");
    assert!(ToneReport::analyze(&m, 8000, 1000.0, 0).median_fraction < 0.05);
}
