//! Expiry lag over the last minute: how long after its deadline the active cycle reclaimed
//! each key (INFO stats `expire_lag_max_ms`, `expire_lag_p99_ms`).
//!
//! One slot per second for the last 60 seconds, each keeping the count, the maximum and a
//! bounded uniform sample (reservoir) of lags, so memory stays fixed however many keys expire;
//! the p99 weighs each slot's sample by the keys it stands for.

use rand::{Rng, RngExt};

const SLOTS: usize = 60;
const SAMPLES_PER_SLOT: usize = 256;

#[derive(Default, Clone)]
struct Slot {
    second: u64,
    count: u64,
    max: u64,
    sample: Vec<u64>,
}

#[derive(Default)]
pub struct LagWindow {
    slots: Vec<Slot>,
}

impl LagWindow {
    pub fn record<R: Rng + ?Sized>(&mut self, now_ms: u64, lag_ms: u64, rng: &mut R) {
        if self.slots.is_empty() {
            self.slots = vec![Slot::default(); SLOTS];
        }
        let second = now_ms / 1000;
        let slot = &mut self.slots[(second % SLOTS as u64) as usize];
        if slot.second != second {
            *slot = Slot { second, ..Slot::default() };
        }
        slot.count += 1;
        slot.max = slot.max.max(lag_ms);
        if slot.sample.len() < SAMPLES_PER_SLOT {
            slot.sample.push(lag_ms);
        } else {
            let j = rng.random_range(0..slot.count);
            if (j as usize) < SAMPLES_PER_SLOT {
                slot.sample[j as usize] = lag_ms;
            }
        }
    }

    fn live(&self, now_ms: u64) -> impl Iterator<Item = &Slot> {
        let now = now_ms / 1000;
        self.slots.iter().filter(move |s| s.count > 0 && s.second + (SLOTS as u64) > now && s.second <= now)
    }

    /// (max, p99) in ms over the last minute; zeros when nothing expired.
    pub fn summary(&self, now_ms: u64) -> (u64, u64) {
        let max = self.live(now_ms).map(|s| s.max).max().unwrap_or(0);
        let mut weighted: Vec<(u64, f64)> = Vec::new();
        let mut total = 0.0;
        for s in self.live(now_ms) {
            let w = s.count as f64 / s.sample.len().max(1) as f64;
            weighted.extend(s.sample.iter().map(|&l| (l, w)));
            total += s.count as f64;
        }
        weighted.sort_by_key(|&(l, _)| l);
        let mut acc = 0.0;
        let mut p99 = 0;
        for (l, w) in weighted {
            acc += w;
            p99 = l;
            if acc >= total * 0.99 {
                break;
            }
        }
        (max, p99)
    }

    pub fn reset(&mut self) {
        self.slots.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn summarises_the_last_minute_only() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut w = LagWindow::default();
        let t0 = 1_000_000_000;
        w.record(t0, 5000, &mut rng);
        for i in 0..10_000u64 {
            w.record(t0 + 61_000 + i % 1000, i % 100, &mut rng);
        }
        let (max, p99) = w.summary(t0 + 61_999);
        assert_eq!(max, 99, "the 5000 ms lag is older than a minute");
        assert!((95..=99).contains(&p99), "{p99}");
        assert_eq!(w.summary(t0 + 200_000), (0, 0));
    }
}
