//! A network link, sans-IO: what is sent at `now` comes out after a delay, with jitter, or
//! not at all (loss), twice (duplication), or late past its successors (reordering). The
//! random choices come from a seeded generator: a run is the same every time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How a link misbehaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkConfig {
    /// One-way delay.
    pub delay: Duration,
    /// Extra delay, uniform in `0..=jitter`, per packet.
    pub jitter: Duration,
    /// Probability that a packet is lost (0.0–1.0).
    pub loss: f64,
    /// Probability that a packet arrives twice.
    pub duplicate: f64,
    /// Probability that a packet is held back by [`LinkConfig::reorder_delay`], so that later
    /// ones overtake it.
    pub reorder: f64,
    /// How long a reordered packet is held back.
    pub reorder_delay: Duration,
    /// Deliver in the order sent, whatever the delays (a TCP or TLS stream: jitter delays
    /// what follows, and nothing is held back or overtaken).
    pub in_order: bool,
}

impl LinkConfig {
    /// A perfect link with this one-way delay.
    pub fn delay(delay: Duration) -> Self {
        LinkConfig {
            delay,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(50),
            in_order: false,
        }
    }

    /// The same link as a stream: in order, nothing lost, duplicated or reordered.
    pub fn as_stream(mut self) -> Self {
        self.in_order = true;
        self.loss = 0.0;
        self.duplicate = 0.0;
        self.reorder = 0.0;
        self
    }

    /// The same link losing `loss` of its packets.
    pub fn with_loss(mut self, loss: f64) -> Self {
        self.loss = loss;
        self
    }

    /// The same link with up to `jitter` of extra delay.
    pub fn with_jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// The same link duplicating `duplicate` of its packets.
    pub fn with_duplication(mut self, duplicate: f64) -> Self {
        self.duplicate = duplicate;
        self
    }

    /// The same link holding back `reorder` of its packets by `by`.
    pub fn with_reordering(mut self, reorder: f64, by: Duration) -> Self {
        self.reorder = reorder;
        self.reorder_delay = by;
        self
    }
}

impl Default for LinkConfig {
    /// A LAN: 1 ms, nothing lost.
    fn default() -> Self {
        LinkConfig::delay(Duration::from_millis(1))
    }
}

/// What a link did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Packets sent into the link.
    pub sent: u64,
    /// Packets lost.
    pub lost: u64,
    /// Extra copies delivered.
    pub duplicated: u64,
    /// Packets held back for reordering.
    pub reordered: u64,
    /// Packets delivered (copies included).
    pub delivered: u64,
}

/// A deterministic generator (SplitMix64): test randomness, not cryptography.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.unit() < p
    }

    fn up_to(&mut self, d: Duration) -> Duration {
        if d.is_zero() {
            return d;
        }
        d.mul_f64(self.unit())
    }
}

/// One direction of a link carrying `T`s; see the [module documentation](self).
#[derive(Debug, Clone)]
pub struct Link<T> {
    config: LinkConfig,
    rng: SplitMix,
    /// In flight, by arrival time then by order of sending (ties keep their order).
    in_flight: BTreeMap<(Instant, u64), T>,
    seq: u64,
    /// The latest arrival time given (for in-order delivery).
    last_arrival: Option<Instant>,
    stats: LinkStats,
}

impl<T: Clone> Link<T> {
    /// A link behaving as `config`, its random choices drawn from `seed`.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        Link {
            config,
            rng: SplitMix(seed),
            in_flight: BTreeMap::new(),
            seq: 0,
            last_arrival: None,
            stats: LinkStats::default(),
        }
    }

    /// Changes how the link behaves from now on (packets in flight keep their times).
    pub fn set_config(&mut self, config: LinkConfig) {
        self.config = config;
    }

    /// Sends `item` at `now`.
    pub fn send(&mut self, now: Instant, item: T) {
        self.stats.sent += 1;
        if self.rng.chance(self.config.loss) {
            self.stats.lost += 1;
            return;
        }
        let copies = if self.rng.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            let mut at = now + self.config.delay + self.rng.up_to(self.config.jitter);
            if self.rng.chance(self.config.reorder) {
                self.stats.reordered += 1;
                at += self.config.reorder_delay;
            }
            if self.config.in_order {
                at = self.last_arrival.map_or(at, |last| at.max(last));
            }
            self.last_arrival = Some(at);
            self.seq += 1;
            self.in_flight.insert((at, self.seq), item.clone());
        }
    }

    /// The next item arrived by `now`, in order of arrival.
    pub fn poll_receive(&mut self, now: Instant) -> Option<T> {
        let (&key, _) = self.in_flight.first_key_value()?;
        if key.0 > now {
            return None;
        }
        self.stats.delivered += 1;
        self.in_flight.remove(&key)
    }

    /// When the next item arrives.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.in_flight.keys().next().map(|k| k.0)
    }

    /// What the link did so far.
    pub fn stats(&self) -> LinkStats {
        self.stats
    }

    /// Items in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(link: &mut Link<u32>, now: Instant) -> Vec<u32> {
        std::iter::from_fn(|| link.poll_receive(now)).collect()
    }

    #[test]
    fn a_perfect_link_delivers_everything_in_order_after_its_delay() {
        let t0 = crate::VirtualClock::new().now();
        let mut l = Link::new(LinkConfig::delay(Duration::from_millis(10)), 1);
        for i in 0..5 {
            l.send(t0 + Duration::from_millis(i.into()), i);
        }
        assert!(drain(&mut l, t0 + Duration::from_millis(9)).is_empty());
        assert_eq!(l.poll_timeout(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(
            drain(&mut l, t0 + Duration::from_millis(20)),
            [0, 1, 2, 3, 4]
        );
    }

    #[test]
    fn loss_duplication_and_reordering_happen_at_their_rates_and_repeat_for_a_seed() {
        let t0 = crate::VirtualClock::new().now();
        let config = LinkConfig::delay(Duration::from_millis(5))
            .with_loss(0.1)
            .with_duplication(0.05)
            .with_reordering(0.05, Duration::from_millis(100));
        let run = |seed| {
            let mut l = Link::new(config, seed);
            for i in 0..10_000u32 {
                l.send(t0 + Duration::from_millis(i.into()), i);
            }
            let got = drain(&mut l, t0 + Duration::from_secs(3600));
            (got, l.stats())
        };
        let (got, stats) = run(7);
        assert_eq!(run(7).0, got, "deterministic for a seed");
        assert_ne!(run(8).0, got, "another seed, another run");
        assert!((800..1200).contains(&stats.lost), "{stats:?}");
        assert!((300..700).contains(&stats.duplicated), "{stats:?}");
        assert_eq!(stats.delivered, stats.sent - stats.lost + stats.duplicated);
        assert_eq!(got.len() as u64, stats.delivered);
        let overtaken = got.windows(2).filter(|w| w[1] < w[0]).count();
        assert!(overtaken > 100, "reordered: {overtaken}");
    }

    #[test]
    fn a_stream_keeps_its_order_through_jitter() {
        let t0 = crate::VirtualClock::new().now();
        let config = LinkConfig::delay(Duration::from_millis(20))
            .with_jitter(Duration::from_millis(200))
            .with_loss(0.5)
            .as_stream();
        let mut l = Link::new(config, 11);
        for i in 0..1000u32 {
            l.send(t0 + Duration::from_millis(i.into()), i);
        }
        let got = drain(&mut l, t0 + Duration::from_secs(60));
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn jitter_spreads_arrivals_within_its_bound() {
        let t0 = crate::VirtualClock::new().now();
        let mut l = Link::new(
            LinkConfig::delay(Duration::from_millis(20)).with_jitter(Duration::from_millis(30)),
            3,
        );
        l.send(t0, 1u32);
        let at = l.poll_timeout().unwrap().duration_since(t0);
        assert!(at >= Duration::from_millis(20) && at <= Duration::from_millis(50));
    }
}
