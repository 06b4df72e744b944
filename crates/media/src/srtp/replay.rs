//! Replay protection (RFC 3711 §3.3.2): a sliding bitmap window over packet indices.

use super::SrtpError;

/// Smallest replay window accepted (RFC 3711 §3.3.2 requires at least 64).
pub const MIN_REPLAY_WINDOW: usize = 64;
/// Largest replay window accepted.
pub const MAX_REPLAY_WINDOW: usize = 32768;

/// A replay window of `size` packets behind the highest index received.
#[derive(Debug, Clone)]
pub(crate) struct ReplayWindow {
    /// Circular bitmap: bit `i % cap` records index `i`.
    bits: Vec<u64>,
    size: u64,
    top: Option<u64>,
}

impl ReplayWindow {
    /// A window of `size` packets (already validated by the policy).
    pub(crate) fn new(size: usize) -> Self {
        let words = size.div_ceil(64).max(1);
        ReplayWindow {
            bits: vec![0; words],
            size: size as u64,
            top: None,
        }
    }

    fn cap(&self) -> u64 {
        self.bits.len() as u64 * 64
    }

    fn slot(&self, index: u64) -> (usize, u64) {
        let pos = index % self.cap();
        ((pos / 64) as usize, 1u64 << (pos % 64))
    }

    /// Whether `index` may be accepted (checked before authentication).
    pub(crate) fn check(&self, index: u64) -> Result<(), SrtpError> {
        let Some(top) = self.top else {
            return Ok(());
        };
        if index > top {
            return Ok(());
        }
        if top - index >= self.size {
            return Err(SrtpError::TooOld { index });
        }
        let (w, m) = self.slot(index);
        if self.bits.get(w).is_some_and(|word| word & m != 0) {
            return Err(SrtpError::Replayed { index });
        }
        Ok(())
    }

    /// Records `index` (after authentication succeeded and [`ReplayWindow::check`] passed).
    pub(crate) fn update(&mut self, index: u64) {
        match self.top {
            Some(top) if index > top => {
                let advance = index - top;
                if advance >= self.cap() {
                    self.bits.fill(0);
                } else {
                    for i in top + 1..index {
                        let (w, m) = self.slot(i);
                        if let Some(word) = self.bits.get_mut(w) {
                            *word &= !m;
                        }
                    }
                }
                self.top = Some(index);
            }
            None => self.top = Some(index),
            Some(_) => {}
        }
        let (w, m) = self.slot(index);
        if let Some(word) = self.bits.get_mut(w) {
            *word |= m;
        }
    }

    /// The highest index recorded.
    #[cfg(test)]
    pub(crate) fn top(&self) -> Option<u64> {
        self.top
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_semantics() {
        for size in [64usize, 128, 1000, 1024] {
            let mut w = ReplayWindow::new(size);
            w.update(5000);
            assert_eq!(w.check(5000), Err(SrtpError::Replayed { index: 5000 }));
            assert!(w.check(5001).is_ok());
            let oldest_ok = 5000 - size as u64 + 1;
            assert!(w.check(oldest_ok).is_ok());
            assert_eq!(
                w.check(oldest_ok - 1),
                Err(SrtpError::TooOld {
                    index: oldest_ok - 1
                })
            );
            w.update(oldest_ok);
            assert!(w.check(oldest_ok).is_err());
            // A jump forward clears the slots it passes over.
            w.update(5000 + 3 * size as u64);
            assert!(w.check(5000 + 3 * size as u64 - 1).is_ok());
            assert!(w.check(5000 + 2 * size as u64 + 1).is_ok());
            assert_eq!(w.top(), Some(5000 + 3 * size as u64));
        }
    }
}
