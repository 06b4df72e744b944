//! Test helper: test tones — a sine written as a WAV file for a peer to play, and the
//! Goertzel check that a recording holds a tone.
//!
//! Included with `#[path = "common/tone.rs"] mod tone;`.

// Each integration test is its own crate and uses a different subset of these helpers: the
// ones a given test does not call would otherwise be reported as dead code there.
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// Writes an 8 kHz mono 16-bit WAV of a sine at `freq_hz` lasting `secs`, readable by all.
pub(crate) fn write_tone(path: &Path, freq_hz: f64, secs: u32) {
    let mut tone = sotto_media::audio::tone::Tone::new(freq_hz, 12000, 8000);
    let samples = tone.samples(8000 * secs as usize);
    let wav = sotto_media::audio::wav::Wav::mono(8000, samples);
    std::fs::write(path, wav.to_bytes().expect("encode WAV")).expect("write WAV");
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644));
}

/// Goertzel figures of a recording at `freq_hz` (half-second windows), with the recording's
/// rate and length for messages.
pub(crate) fn tone_report(
    path: &Path,
    freq_hz: f64,
) -> (sotto_media::audio::goertzel::ToneReport, String) {
    let bytes =
        std::fs::read(path).unwrap_or_else(|e| panic!("read recording {}: {e}", path.display()));
    let wav = sotto_media::audio::wav::Wav::parse(&bytes)
        .unwrap_or_else(|e| panic!("parse recording {}: {e:?}", path.display()));
    let mono: Vec<i16> = wav
        .samples
        .chunks(usize::from(wav.channels.max(1)))
        .filter_map(|f| f.first().copied())
        .collect();
    let report =
        sotto_media::audio::goertzel::ToneReport::analyze(&mono, wav.sample_rate, freq_hz, 0);
    let info = format!(
        "{}: rate={} channels={} samples={}",
        path.display(),
        wav.sample_rate,
        wav.channels,
        mono.len()
    );
    (report, info)
}

/// Asserts that the recording at `path` holds a tone of `freq_hz` (Goertzel over half-second
/// windows: at least 4 windows, median power fraction above one half, dominant in at least
/// half of them). `who` names the recording in messages.
pub(crate) fn assert_tone(who: &str, path: &Path, freq_hz: f64) {
    let (report, info) = tone_report(path, freq_hz);
    eprintln!(
        "{who}: tone {freq_hz} Hz in {info}: median fraction {:.2}, dominant in {}/{} windows",
        report.median_fraction, report.dominant_windows, report.windows
    );
    assert!(
        report.windows >= 4
            && report.median_fraction > 0.5
            && report.dominant_windows * 2 >= report.windows,
        "{who}: tone {freq_hz} Hz not found in {info}: {report:?}"
    );
}
