//! # The jitter buffer: playout by RTP timestamp
//!
//! Received audio is decoded on arrival into a ring of PCM samples indexed by RTP timestamp
//! (about one second deep), with a flag per sample saying whether it arrived. Playout reads
//! fixed 20 ms frames at the playout point and advances it by one frame per 20 ms of the
//! caller's clock, so:
//!
//! - packets arriving out of order land in their place (reordering by timestamp, hence by
//!   sequence number within a talkspurt);
//! - a packet whose samples are all behind the playout point is *late* and dropped;
//! - samples that never arrived are concealed with silence;
//! - any packetization time works (10, 20, 30, 60 ms packets all play as 20 ms frames).
//!
//! Duplicates are dropped before the buffer by the sequence-number window of the session.
//!
//! The playout point is anchored on the first packet: its timestamp plays at arrival time
//! plus the target delay. With `adaptive` on, the target delay is re-computed from the
//! interarrival jitter (20 ms + 4 J, clamped to `min_delay..=max_delay`) whenever the
//! buffer is re-anchored: at the start of a talkspurt (marker bit) once the buffer has
//! drained, and after a run of late packets (which also raises a floor by one frame, so a
//! path with bursts ends with a deeper buffer). A packet more than the ring's depth ahead
//! (a timestamp jump, a restarted sender) also re-anchors.
//!
//! Memory is allocated once, in [`JitterBuffer::new`].

use std::time::{Duration, Instant};

use crate::audio::{FRAME_SAMPLES, SAMPLE_RATE};

/// Ring depth in samples (a power of two): 1.024 s at 8 kHz.
pub const RING_SAMPLES: usize = 8192;
/// One playout frame.
pub const FRAME: Duration = Duration::from_millis(20);
/// Consecutive late packets that trigger a re-anchor.
pub const LATE_RESYNC: u32 = 5;

/// Jitter buffer settings. The default is adaptive between 40 and 300 ms, starting at 60 ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JitterConfig {
    /// Delay between the arrival of the anchoring packet and its playout before any jitter
    /// is known (and always, when not adaptive).
    pub initial_delay: Duration,
    /// Smallest adaptive delay.
    pub min_delay: Duration,
    /// Largest adaptive delay (at most 800 ms is used, to stay inside the ring).
    pub max_delay: Duration,
    /// Adapt the delay to the measured jitter.
    pub adaptive: bool,
}

impl Default for JitterConfig {
    fn default() -> Self {
        JitterConfig {
            initial_delay: Duration::from_millis(60),
            min_delay: Duration::from_millis(40),
            max_delay: Duration::from_millis(300),
            adaptive: true,
        }
    }
}

/// What became of an inserted packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inserted {
    /// Stored for playout (wholly or the part not yet played).
    Stored,
    /// All its samples are behind the playout point: dropped.
    Late,
    /// The buffer was re-anchored on this packet (first packet, talkspurt, timestamp jump,
    /// or after a run of late packets) and it was stored.
    Anchored,
}

/// What a played frame holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Every sample was received.
    Audio,
    /// Some samples were received, the others concealed.
    Partial,
    /// Nothing was received for this frame: silence.
    Concealed,
}

/// Jitter-buffer counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JitterStats {
    /// Frames played with every sample received.
    pub frames_played: u64,
    /// Frames played with some samples missing.
    pub frames_partial: u64,
    /// Frames played with no sample received.
    pub frames_concealed: u64,
    /// Packets dropped because they arrived after their playout time.
    pub packets_late: u64,
    /// Re-anchors of the playout point.
    pub anchors: u64,
}

/// A PCM jitter buffer indexed by RTP timestamp (8 kHz).
#[derive(Debug, Clone)]
pub struct JitterBuffer {
    config: JitterConfig,
    ring: Vec<i16>,
    filled: Vec<bool>,
    filled_count: usize,
    /// Timestamp and time of the next frame to play.
    play: Option<(u32, Instant)>,
    target: Duration,
    /// Lower bound on the adaptive target, raised by late-packet runs.
    floor: Duration,
    late_streak: u32,
    /// One past the newest timestamp stored.
    head_ts: u32,
    stats: JitterStats,
}

fn samples_to_duration(n: u64) -> Duration {
    Duration::from_micros(n * 1_000_000 / u64::from(SAMPLE_RATE))
}

impl JitterBuffer {
    /// An empty buffer.
    pub fn new(config: JitterConfig) -> Self {
        let mut config = config;
        config.max_delay = config.max_delay.min(Duration::from_millis(800));
        config.min_delay = config.min_delay.min(config.max_delay);
        JitterBuffer {
            ring: vec![0; RING_SAMPLES],
            filled: vec![false; RING_SAMPLES],
            filled_count: 0,
            play: None,
            target: config.initial_delay.min(config.max_delay),
            floor: Duration::ZERO,
            late_streak: 0,
            head_ts: 0,
            stats: JitterStats::default(),
            config,
        }
    }

    /// The current target delay between arrival and playout.
    pub fn target_delay(&self) -> Duration {
        self.target
    }

    /// Audio stored ahead of the playout point (up to the newest timestamp received).
    pub fn buffered(&self) -> Duration {
        match self.play {
            Some((next_ts, _)) if self.filled_count > 0 => {
                let ahead = self.head_ts.wrapping_sub(next_ts) as i32;
                samples_to_duration(u64::try_from(ahead).unwrap_or(0))
            }
            _ => Duration::ZERO,
        }
    }

    /// Counters.
    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    /// When the next frame is due (`None` before the first packet).
    pub fn next_playout(&self) -> Option<Instant> {
        self.play.map(|(_, at)| at)
    }

    fn clear(&mut self) {
        self.filled.fill(false);
        self.filled_count = 0;
    }

    fn anchor(&mut self, now: Instant, ts: u32, jitter_ts: u32) {
        if self.config.adaptive && self.stats.anchors > 0 {
            let j = samples_to_duration(u64::from(jitter_ts));
            self.target = (FRAME + 4 * j)
                .max(self.floor)
                .clamp(self.config.min_delay, self.config.max_delay);
        }
        self.clear();
        self.play = Some((ts, now + self.target));
        self.head_ts = ts;
        self.late_streak = 0;
        self.stats.anchors += 1;
    }

    /// Stores the samples of a packet with RTP timestamp `ts` that arrived at `now`.
    /// `marker` is the packet's M bit; `jitter_ts` the current interarrival jitter estimate
    /// (timestamp units) used when the buffer re-anchors.
    pub fn insert(
        &mut self,
        now: Instant,
        ts: u32,
        marker: bool,
        jitter_ts: u32,
        samples: &[i16],
    ) -> Inserted {
        let len = samples.len().min(RING_SAMPLES);
        let mut anchored = false;
        match self.play {
            None => {
                self.anchor(now, ts, jitter_ts);
                anchored = true;
            }
            Some((next_ts, _)) => {
                let off = i64::from(ts.wrapping_sub(next_ts) as i32);
                let end = off + len as i64;
                if end <= 0 {
                    self.stats.packets_late += 1;
                    self.late_streak += 1;
                    if self.late_streak < LATE_RESYNC {
                        return Inserted::Late;
                    }
                    // The sender runs consistently behind our playout: deepen and restart.
                    self.floor = (self.target + FRAME).min(self.config.max_delay);
                    self.anchor(now, ts, jitter_ts);
                    anchored = true;
                } else if end > RING_SAMPLES as i64
                    || (marker && self.config.adaptive && self.filled_count == 0 && off > 0)
                {
                    self.anchor(now, ts, jitter_ts);
                    anchored = true;
                }
            }
        }
        let Some((next_ts, _)) = self.play else {
            return Inserted::Late; // invariant: anchored above
        };
        self.late_streak = 0;
        let off = i64::from(ts.wrapping_sub(next_ts) as i32);
        let skip = usize::try_from(-off).unwrap_or(0).min(len);
        for (i, s) in samples.iter().enumerate().take(len).skip(skip) {
            let pos = (ts.wrapping_add(i as u32) as usize) & (RING_SAMPLES - 1);
            if let (Some(slot), Some(flag)) = (self.ring.get_mut(pos), self.filled.get_mut(pos)) {
                *slot = *s;
                if !*flag {
                    *flag = true;
                    self.filled_count += 1;
                }
            }
        }
        let end_ts = ts.wrapping_add(len as u32);
        if end_ts.wrapping_sub(self.head_ts) as i32 > 0 {
            self.head_ts = end_ts;
        }
        if anchored {
            Inserted::Anchored
        } else {
            Inserted::Stored
        }
    }

    /// Plays the next frame if it is due at `now`: writes [`FRAME_SAMPLES`] samples to the
    /// start of `out` (fewer if `out` is shorter) and advances the playout point. Call it
    /// until it returns `None`.
    pub fn poll(&mut self, now: Instant, out: &mut [i16]) -> Option<FrameKind> {
        let (next_ts, at) = self.play?;
        if at > now {
            return None;
        }
        let mut got = 0usize;
        for i in 0..FRAME_SAMPLES {
            let pos = (next_ts.wrapping_add(i as u32) as usize) & (RING_SAMPLES - 1);
            let sample = match (self.ring.get(pos), self.filled.get_mut(pos)) {
                (Some(s), Some(flag)) if *flag => {
                    *flag = false;
                    self.filled_count -= 1;
                    got += 1;
                    *s
                }
                _ => 0,
            };
            if let Some(o) = out.get_mut(i) {
                *o = sample;
            }
        }
        self.play = Some((next_ts.wrapping_add(FRAME_SAMPLES as u32), at + FRAME));
        let kind = match got {
            FRAME_SAMPLES => {
                self.stats.frames_played += 1;
                FrameKind::Audio
            }
            0 => {
                self.stats.frames_concealed += 1;
                FrameKind::Concealed
            }
            _ => {
                self.stats.frames_partial += 1;
                FrameKind::Partial
            }
        };
        Some(kind)
    }
}
