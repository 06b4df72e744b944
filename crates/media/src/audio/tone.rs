//! # A sine tone generator
//!
//! [`Tone`] produces a sine at a given frequency and amplitude, frame after frame, with a
//! continuous phase (no click between frames), for `--tone 440` style test calls.

use core::f64::consts::TAU;

/// A phase-continuous sine generator.
#[derive(Debug, Clone)]
pub struct Tone {
    /// Phase advance per sample, in radians.
    step: f64,
    /// Current phase in `[0, 2π)`.
    phase: f64,
    amplitude: f64,
}

impl Tone {
    /// A sine of `freq_hz` at `sample_rate`, with peak `amplitude` (clamped to
    /// `0..=32767`). A non-finite or negative frequency gives silence.
    pub fn new(freq_hz: f64, amplitude: i16, sample_rate: u32) -> Self {
        let step = if freq_hz.is_finite() && freq_hz >= 0.0 && sample_rate > 0 {
            TAU * freq_hz / f64::from(sample_rate)
        } else {
            0.0
        };
        Tone {
            step,
            phase: 0.0,
            amplitude: f64::from(amplitude.max(0)),
        }
    }

    /// Fills `out` with the next samples.
    pub fn fill(&mut self, out: &mut [i16]) {
        for s in out {
            // invariant: |amplitude·sin| <= 32767, so the cast does not saturate.
            *s = (self.amplitude * self.phase.sin()).round() as i16;
            self.phase = (self.phase + self.step) % TAU;
        }
    }

    /// The next `n` samples, in a new vector.
    pub fn samples(&mut self, n: usize) -> Vec<i16> {
        let mut v = vec![0; n];
        self.fill(&mut v);
        v
    }
}
