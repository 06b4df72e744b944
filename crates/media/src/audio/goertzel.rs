//! # Tone detection with the Goertzel algorithm
//!
//! [`power_fraction`] gives the share of a window's energy that sits at one frequency: 1.0
//! for a pure sine centred on it, near 0 for silence or another tone. [`ToneReport::analyze`]
//! cuts a recording into windows (half a second by default) and reports the median fraction
//! and how many windows the tone dominates (fraction > 0.5): the same figures as the
//! `tone_power` check of the interop scripts, so a test can assert that a received recording
//! holds the 440 Hz tone the peer played.

use core::f64::consts::TAU;

/// The fraction of the energy of `samples` at `freq_hz`: the Goertzel power at that
/// frequency, normalised so that a pure sine of that frequency gives 1.0 (over a whole
/// number of periods). Returns 0.0 for an empty or silent window.
pub fn power_fraction(samples: &[i16], freq_hz: f64, sample_rate: u32) -> f64 {
    if samples.is_empty() || sample_rate == 0 {
        return 0.0;
    }
    let k = 2.0 * (TAU * freq_hz / f64::from(sample_rate)).cos();
    let (mut s1, mut s2) = (0.0f64, 0.0f64);
    let mut energy = 0.0f64;
    for &x in samples {
        let x = f64::from(x);
        energy += x * x;
        let s0 = x + k * s1 - s2;
        s2 = s1;
        s1 = s0;
    }
    if energy <= 0.0 {
        return 0.0;
    }
    let power = s1 * s1 + s2 * s2 - k * s1 * s2;
    (power / samples.len() as f64) / (energy / 2.0)
}

/// Tone figures of a recording, window by window.
#[derive(Debug, Clone, PartialEq)]
pub struct ToneReport {
    /// The frequency analysed.
    pub freq_hz: f64,
    /// Number of complete windows.
    pub windows: usize,
    /// Median of the per-window power fractions (0.0 without windows).
    pub median_fraction: f64,
    /// Smallest per-window power fraction (0.0 without windows).
    pub min_fraction: f64,
    /// Windows whose power fraction exceeds 0.5.
    pub dominant_windows: usize,
    /// Root mean square of all samples.
    pub rms: f64,
}

impl ToneReport {
    /// Analyses `samples` in consecutive windows of `window` samples (a trailing partial
    /// window is ignored; `window == 0` means half a second).
    pub fn analyze(samples: &[i16], sample_rate: u32, freq_hz: f64, window: usize) -> Self {
        let window = if window == 0 {
            (sample_rate / 2).max(1) as usize
        } else {
            window
        };
        let mut fractions: Vec<f64> = samples
            .chunks_exact(window)
            .map(|w| power_fraction(w, freq_hz, sample_rate))
            .collect();
        fractions.sort_by(f64::total_cmp);
        let rms = if samples.is_empty() {
            0.0
        } else {
            let e: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
            (e / samples.len() as f64).sqrt()
        };
        ToneReport {
            freq_hz,
            windows: fractions.len(),
            median_fraction: fractions.get(fractions.len() / 2).copied().unwrap_or(0.0),
            min_fraction: fractions.first().copied().unwrap_or(0.0),
            dominant_windows: fractions.iter().filter(|f| **f > 0.5).count(),
            rms,
        }
    }
}
