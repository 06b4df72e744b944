//! SRV target selection (RFC 2782, "Usage rules"): lower priority first; within a priority,
//! targets are drawn at random with a chance proportional to their weight (weight 0 only
//! after the others, but still tried).

use sotto_crypto::rng::SecureRandom;

use super::Record;

/// A random number in `0..=max` (0 when the generator fails: the order then follows the
/// records, which is still a valid SRV order).
fn random_up_to(rng: &dyn SecureRandom, max: u32) -> u32 {
    let mut b = [0u8; 4];
    if max == 0 || rng.fill(&mut b).is_err() {
        return 0;
    }
    u32::from_be_bytes(b) % (max + 1)
}

/// The `(port, target)` pairs of the SRV records, in the order to try them. A record whose
/// target is `.` says "no service" and is left out.
pub(super) fn order(records: &[Record], rng: &dyn SecureRandom) -> Vec<(u16, String)> {
    let mut srv: Vec<(u16, u16, u16, String)> = records
        .iter()
        .filter_map(|r| match r {
            Record::Srv {
                priority,
                weight,
                port,
                target,
            } => {
                let t = target.trim_end_matches('.').to_ascii_lowercase();
                (!t.is_empty()).then_some((*priority, *weight, *port, t))
            }
            _ => None,
        })
        .collect();
    // Weight 0 first within a priority, as RFC 2782 arranges them before the draw.
    srv.sort_by_key(|(p, w, _, _)| (*p, *w != 0));
    let mut out = Vec::with_capacity(srv.len());
    while let Some(&(priority, ..)) = srv.first() {
        let end = srv
            .iter()
            .position(|(p, ..)| *p != priority)
            .unwrap_or(srv.len());
        let mut group: Vec<_> = srv.drain(..end).collect();
        while !group.is_empty() {
            let total: u32 = group.iter().map(|(_, w, _, _)| u32::from(*w)).sum();
            let pick = random_up_to(rng, total);
            let mut running = 0u32;
            let mut chosen = group.len() - 1;
            for (i, (_, w, _, _)) in group.iter().enumerate() {
                running += u32::from(*w);
                if running >= pick && (*w > 0 || total == 0) {
                    chosen = i;
                    break;
                }
            }
            let (_, _, port, target) = group.remove(chosen);
            out.push((port, target));
        }
    }
    out
}
