//! INFO's instantaneous rates (`instantaneous_ops_per_sec`, `_input_kbps`, ...), as Redis
//! computes them: every 100 ms the cron samples each counter's rate since the last sample,
//! and a rate is the mean of the last 16 samples (about 1.6 s).

/// The counters sampled, in [`Instant::sample`]'s order.
#[derive(Clone, Copy)]
pub enum Metric {
    Commands,
    NetInput,
    NetOutput,
    NetReplInput,
    NetReplOutput,
}

const METRICS: usize = 5;
const SAMPLES: usize = 16;
/// Redis samples from serverCron with run_with_period(100).
pub const PERIOD_MS: u64 = 100;

#[derive(Debug, Default)]
pub struct Instant {
    last_ms: u64,
    last: [u64; METRICS],
    samples: [[f64; SAMPLES]; METRICS],
    idx: usize,
    started: bool,
}

impl Instant {
    /// Takes a sample of every counter (current totals, in [`Metric`]'s order) when a period
    /// has passed since the last one.
    pub fn sample(&mut self, now_ms: u64, totals: [u64; METRICS]) {
        if !self.started {
            self.started = true;
            self.last_ms = now_ms;
            self.last = totals;
            return;
        }
        let elapsed = now_ms.saturating_sub(self.last_ms);
        if elapsed < PERIOD_MS {
            return;
        }
        for (m, &total) in totals.iter().enumerate() {
            let delta = total.saturating_sub(self.last[m]);
            self.samples[m][self.idx] = delta as f64 * 1000.0 / elapsed as f64;
        }
        self.idx = (self.idx + 1) % SAMPLES;
        self.last_ms = now_ms;
        self.last = totals;
    }

    /// The metric's rate per second, averaged over the samples.
    pub fn rate(&self, m: Metric) -> f64 {
        self.samples[m as usize].iter().sum::<f64>() / SAMPLES as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_steady_rate_fills_the_window() {
        let mut i = Instant::default();
        for t in 0..=SAMPLES as u64 {
            i.sample(t * 100, [t * 50, t * 1024, 0, 0, 0]);
        }
        assert!((i.rate(Metric::Commands) - 500.0).abs() < 1e-9);
        assert!((i.rate(Metric::NetInput) - 10240.0).abs() < 1e-9);
        assert_eq!(i.rate(Metric::NetOutput), 0.0);
        // Too soon: no sample.
        i.sample(SAMPLES as u64 * 100 + 10, [u64::MAX; METRICS]);
        assert!((i.rate(Metric::Commands) - 500.0).abs() < 1e-9);
    }
}
