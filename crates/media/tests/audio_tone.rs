//! Tone generation and Goertzel detection: a generated tone is found at its frequency and
//! not at others, the power fraction matches its definition, and noise or silence is not
//! mistaken for a tone.

use sotto_media::audio::{FRAME_SAMPLES, Tone, ToneReport, power_fraction};

#[test]
fn tone_has_the_requested_frequency_and_amplitude() {
    let mut t = Tone::new(1000.0, 12000, 8000);
    let s = t.samples(8000);
    // 1000 Hz at 8 kHz: period of 8 samples, peak at sample 2 (sin(π/2)).
    assert_eq!(s[0], 0);
    assert_eq!(s[2], 12000);
    assert_eq!(s[6], -12000);
    assert_eq!(s.iter().copied().max(), Some(12000));
    // Zero crossings: 2 per period, 1000 periods.
    let crossings = s.windows(2).filter(|w| (w[0] < 0) != (w[1] < 0)).count();
    assert!((1990..=2010).contains(&crossings), "{crossings}");
}

#[test]
fn frames_are_phase_continuous() {
    let mut whole = Tone::new(440.0, 8000, 8000);
    let reference = whole.samples(1600);
    let mut framed = Tone::new(440.0, 8000, 8000);
    let mut joined = Vec::new();
    for _ in 0..10 {
        let mut f = [0i16; FRAME_SAMPLES];
        framed.fill(&mut f);
        joined.extend_from_slice(&f);
    }
    assert_eq!(joined, reference);
}

#[test]
fn goertzel_finds_the_tone_and_only_it() {
    for f in [440.0, 1000.0, 2000.0] {
        let s = Tone::new(f, 10000, 8000).samples(8000);
        let r = ToneReport::analyze(&s, 8000, f, 0);
        assert_eq!(r.windows, 2);
        assert!(r.min_fraction > 0.98, "{f} Hz: {r:?}");
        assert_eq!(r.dominant_windows, 2);
        assert!((r.rms - 10000.0 / 2f64.sqrt()).abs() < 20.0, "{r:?}");
        for other in [300.0, 700.0, 1500.0, 3000.0] {
            let o = ToneReport::analyze(&s, 8000, other, 0);
            assert!(o.median_fraction < 0.01, "{f} Hz seen as {other}: {o:?}");
            assert_eq!(o.dominant_windows, 0);
        }
    }
}

#[test]
fn goertzel_on_mixtures_silence_and_noise() {
    // Two equal tones: each holds half the energy.
    let a = Tone::new(440.0, 8000, 8000).samples(4000);
    let b = Tone::new(1000.0, 8000, 8000).samples(4000);
    let mix: Vec<i16> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    let fa = power_fraction(&mix, 440.0, 8000);
    let fb = power_fraction(&mix, 1000.0, 8000);
    assert!(
        (fa - 0.5).abs() < 0.02 && (fb - 0.5).abs() < 0.02,
        "{fa} {fb}"
    );
    // Silence and empty input: no tone, no division by zero.
    assert_eq!(power_fraction(&[0; 4000], 440.0, 8000), 0.0);
    assert_eq!(power_fraction(&[], 440.0, 8000), 0.0);
    let r = ToneReport::analyze(&[], 8000, 440.0, 0);
    assert_eq!((r.windows, r.median_fraction, r.rms), (0, 0.0, 0.0));
    // Pseudo-random noise spreads its energy: no frequency gets much of it.
    let mut x: u32 = 12345;
    let noise: Vec<i16> = (0..4000)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (x >> 16) as i16
        })
        .collect();
    assert!(power_fraction(&noise, 440.0, 8000) < 0.05);
    // A partial trailing window is ignored.
    let s = Tone::new(440.0, 8000, 8000).samples(4000 + 1999);
    assert_eq!(ToneReport::analyze(&s, 8000, 440.0, 0).windows, 1);
    assert_eq!(ToneReport::analyze(&s, 8000, 440.0, 1000).windows, 5);
}

#[test]
fn degenerate_tones_are_silent() {
    assert!(
        Tone::new(f64::NAN, 8000, 8000)
            .samples(100)
            .iter()
            .all(|s| *s == 0)
    );
    assert!(
        Tone::new(-5.0, 8000, 8000)
            .samples(100)
            .iter()
            .all(|s| *s == 0)
    );
    assert!(
        Tone::new(440.0, -5, 8000)
            .samples(100)
            .iter()
            .all(|s| *s == 0)
    );
    assert!(
        Tone::new(440.0, i16::MAX, 8000)
            .samples(1000)
            .contains(&i16::MAX)
    );
}
