//! Reception statistics of one remote source: sequence-number tracking (RFC 3550 §A.1),
//! loss (§A.3, §6.4.1) and interarrival jitter (§6.4.1, §A.8), plus a window of recently
//! received sequence numbers to drop duplicates.

use super::rtcp::ReportBlock;

/// A jump larger than this (forward) is a restart or garbage (§A.1).
pub(crate) const MAX_DROPOUT: u16 = 3000;
/// A packet this far behind the highest one is a late straggler, not a restart (§A.1).
pub(crate) const MAX_MISORDER: u16 = 100;
/// Sequence numbers behind the highest one tracked for duplicate detection.
const DUP_WINDOW: u64 = 128;

/// What [`SourceStats::update_seq`] decided about a sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SeqVerdict {
    /// A new packet, with its extended sequence number.
    Accept(u64),
    /// Already received.
    Duplicate,
    /// A large jump not (yet) confirmed by a following packet: dropped (§A.1).
    BadJump,
}

/// Reception state of the remote source.
#[derive(Debug, Clone)]
pub(crate) struct SourceStats {
    pub(crate) ssrc: u32,
    /// Extended highest sequence number received.
    max_ext: u64,
    /// Extended sequence number of the first packet.
    base_ext: u64,
    /// After a large jump, the sequence number that would confirm a restart.
    bad_seq: Option<u16>,
    /// Bit i set: `max_ext - i` received (i < 128).
    window: u128,
    /// Packets received (duplicates excluded).
    pub(crate) received: u64,
    pub(crate) octets: u64,
    pub(crate) duplicates: u64,
    expected_prior: u64,
    received_prior: u64,
    /// Relative transit time of the previous packet (timestamp units).
    last_transit: Option<i64>,
    /// Jitter estimate scaled by 16 (§A.8).
    jitter_q4: u64,
    /// Middle 32 bits of the NTP time of the last SR from this source, and when it arrived.
    pub(crate) last_sr: Option<(u32, std::time::Instant)>,
}

impl SourceStats {
    /// State for a source whose first accepted packet has `seq`.
    pub(crate) fn new(ssrc: u32, seq: u16) -> Self {
        // Start in cycle 1 so that packets slightly older than the first stay positive.
        let ext = 65_536 + u64::from(seq);
        SourceStats {
            ssrc,
            max_ext: ext,
            base_ext: ext,
            bad_seq: None,
            window: 1,
            received: 1,
            octets: 0,
            duplicates: 0,
            expected_prior: 0,
            received_prior: 0,
            last_transit: None,
            jitter_q4: 0,
            last_sr: None,
        }
    }

    /// Sequence-number validation for every packet after the first.
    pub(crate) fn update_seq(&mut self, seq: u16) -> SeqVerdict {
        let max16 = self.max_ext as u16; // low 16 bits
        let udelta = seq.wrapping_sub(max16);
        if udelta == 0 {
            self.duplicates += 1;
            return SeqVerdict::Duplicate;
        }
        if udelta < MAX_DROPOUT {
            // In order, possibly with a gap (and possibly wrapping into a new cycle).
            let ext = self.max_ext + u64::from(udelta);
            let shift = ext - self.max_ext;
            self.window = if shift >= 128 {
                0
            } else {
                self.window << shift
            } | 1;
            self.max_ext = ext;
            self.bad_seq = None;
            self.received += 1;
            SeqVerdict::Accept(ext)
        } else if udelta <= u16::MAX - MAX_MISORDER + 1 {
            // A large jump: accept only when the next packet confirms it (§A.1).
            if self.bad_seq == Some(seq) {
                let ssrc = self.ssrc;
                let last_sr = self.last_sr;
                *self = SourceStats::new(ssrc, seq);
                self.last_sr = last_sr;
                SeqVerdict::Accept(self.max_ext)
            } else {
                self.bad_seq = Some(seq.wrapping_add(1));
                SeqVerdict::BadJump
            }
        } else {
            // Behind the highest: a reordered packet or a duplicate.
            let back = u64::from(max16.wrapping_sub(seq));
            let Some(ext) = self.max_ext.checked_sub(back) else {
                return SeqVerdict::BadJump;
            };
            if back < DUP_WINDOW {
                let bit = 1u128 << back;
                if self.window & bit != 0 {
                    self.duplicates += 1;
                    return SeqVerdict::Duplicate;
                }
                self.window |= bit;
            }
            if ext < self.base_ext {
                self.base_ext = ext;
            }
            self.received += 1;
            SeqVerdict::Accept(ext)
        }
    }

    /// Updates the jitter estimate with a packet of RTP timestamp `rtp_ts` that arrived at
    /// `arrival` (the local clock in timestamp units), per §A.8.
    pub(crate) fn update_jitter(&mut self, arrival: u64, rtp_ts: u32) {
        // Transit time modulo 2^32, as a signed difference: only differences matter.
        let transit = i64::from((arrival as u32).wrapping_sub(rtp_ts) as i32);
        if let Some(last) = self.last_transit {
            let d = (transit - last).unsigned_abs();
            // J += (|D| - J) / 16, with J kept multiplied by 16.
            self.jitter_q4 = (self.jitter_q4 + d).saturating_sub((self.jitter_q4 + 8) >> 4);
        }
        self.last_transit = Some(transit);
    }

    /// Interarrival jitter in timestamp units.
    pub(crate) fn jitter(&self) -> u32 {
        u32::try_from(self.jitter_q4 >> 4).unwrap_or(u32::MAX)
    }

    /// Packets expected: highest minus first, plus one.
    pub(crate) fn expected(&self) -> u64 {
        self.max_ext - self.base_ext + 1
    }

    /// Cumulative packets lost (expected minus received; duplicates are not counted as
    /// received, so this is never negative here).
    pub(crate) fn lost(&self) -> i64 {
        self.expected() as i64 - self.received as i64
    }

    /// Extended highest sequence number as RTCP carries it (cycles count from 0).
    pub(crate) fn highest_seq(&self) -> u32 {
        (self.max_ext - 65_536) as u32
    }

    /// A report block for this source, and the start of a new reporting interval.
    pub(crate) fn report_block(&mut self, lsr_dlsr: (u32, u32)) -> ReportBlock {
        let expected = self.expected();
        let expected_interval = expected.saturating_sub(self.expected_prior);
        let received_interval = self.received.saturating_sub(self.received_prior);
        self.expected_prior = expected;
        self.received_prior = self.received;
        let lost_interval = expected_interval.saturating_sub(received_interval);
        let fraction_lost = if expected_interval == 0 || lost_interval == 0 {
            0
        } else {
            ((lost_interval << 8) / expected_interval).min(255) as u8
        };
        ReportBlock {
            ssrc: self.ssrc,
            fraction_lost,
            cumulative_lost: self.lost().clamp(-0x80_0000, 0x7f_ffff) as i32,
            highest_seq: self.highest_seq(),
            jitter: self.jitter(),
            lsr: lsr_dlsr.0,
            dlsr: lsr_dlsr.1,
        }
    }
}
