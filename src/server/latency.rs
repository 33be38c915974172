//! The latency monitor: what LATENCY LATEST / HISTORY / RESET / DOCTOR / GRAPH and
//! HISTOGRAM report, and INFO latencystats.
//!
//! Two independent records, as in Redis 7.0:
//! - **Events** (`latency-monitor-threshold` ms, 0 = off): a named event ("command",
//!   "fast-command", "expire-cycle", "eviction-cycle", "aof-write", ...) that took at least the
//!   threshold adds a sample. Each event keeps its last [`SAMPLES`] samples, one per second
//!   (two in the same second keep the larger), and its all-time maximum.
//! - **Command histograms** (`latency-tracking yes`): every call's duration goes into a
//!   histogram of power-of-two buckets from 1024 ns up, the buckets HdrHistogram's
//!   logarithmic iteration reports in Redis (1, 2, 4, 8, 16, 32, 65, 131, ... µs). Percentiles
//!   are read off the bucket bounds, so they are upper bounds within a factor of two.

use std::collections::BTreeMap;

/// Samples kept per event (Redis's LATENCY_TS_LEN).
pub const SAMPLES: usize = 160;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Unix seconds.
    pub time: u64,
    /// Milliseconds.
    pub latency: u64,
}

/// One event's recent samples (oldest first) and its maximum since the last reset.
#[derive(Debug, Default, Clone)]
pub struct Series {
    pub samples: std::collections::VecDeque<Sample>,
    pub max: u64,
}

/// Histogram buckets: bucket `i` holds durations below `1024 << i` ns (bucket 0 also the
/// shorter ones); the last is open-ended (Redis caps recorded values at 1 s).
const BUCKETS: usize = 21;

#[derive(Debug, Clone, Copy, Default)]
pub struct Histogram {
    pub counts: [u64; BUCKETS],
    pub total: u64,
}

impl Histogram {
    pub fn record(&mut self, nanos: u64) {
        let i = if nanos < 1024 { 0 } else { (64 - (nanos / 1024).leading_zeros()) as usize };
        self.counts[i.min(BUCKETS - 1)] += 1;
        self.total += 1;
    }

    /// Bucket `i`'s upper bound in µs, as Redis prints it (highest equivalent value / 1000).
    pub fn bucket_usec(i: usize) -> u64 {
        (1024u64 << i) / 1000
    }

    /// (upper bound µs, cumulative count) for every bucket holding calls.
    pub fn cumulative(&self) -> Vec<(u64, u64)> {
        let mut acc = 0;
        let mut out = Vec::new();
        for (i, &n) in self.counts.iter().enumerate() {
            acc += n;
            if n > 0 {
                out.push((Self::bucket_usec(i), acc));
            }
        }
        out
    }

    /// The duration (µs) under which `pct` percent of the calls fell.
    pub fn percentile_usec(&self, pct: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let want = ((pct / 100.0) * self.total as f64).ceil().max(1.0) as u64;
        let mut acc = 0;
        for (i, &n) in self.counts.iter().enumerate() {
            acc += n;
            if acc >= want {
                return (1024u64 << i) as f64 / 1000.0;
            }
        }
        (1024u64 << (BUCKETS - 1)) as f64 / 1000.0
    }
}

/// The events of the latency monitor, by name.
#[derive(Debug, Default)]
pub struct Monitor {
    pub events: BTreeMap<&'static str, Series>,
}

impl Monitor {
    /// Adds a sample for `event` if monitoring is on (`threshold_ms` > 0) and it reached it.
    pub fn sample_if_needed(&mut self, threshold_ms: i64, event: &'static str, latency_ms: u64, now_secs: u64) {
        if threshold_ms > 0 && latency_ms >= threshold_ms as u64 {
            self.add(event, latency_ms, now_secs);
        }
    }

    pub fn add(&mut self, event: &'static str, latency_ms: u64, now_secs: u64) {
        let s = self.events.entry(event).or_default();
        s.max = s.max.max(latency_ms);
        if let Some(last) = s.samples.back_mut()
            && last.time == now_secs
        {
            last.latency = last.latency.max(latency_ms);
            return;
        }
        if s.samples.len() == SAMPLES {
            s.samples.pop_front();
        }
        s.samples.push_back(Sample { time: now_secs, latency: latency_ms });
    }

    /// Forgets the named events (all when none is named); returns how many there were.
    pub fn reset(&mut self, names: &[String]) -> usize {
        if names.is_empty() {
            let n = self.events.len();
            self.events.clear();
            return n;
        }
        names.iter().filter(|n| self.events.remove(n.as_str()).is_some()).count()
    }

    /// LATENCY DOCTOR's report: per event, its samples' statistics, then advice.
    pub fn doctor(&self, threshold_ms: i64) -> String {
        if self.events.is_empty() {
            return if threshold_ms > 0 {
                "Dave, no latency spike was observed during the lifetime of this Redis instance, not in the slightest bit. I honestly think you ought to sit down calmly, take a stress pill, and think things over.\n".into()
            } else {
                "I'm sorry, Dave, I can't do that. Latency monitoring is disabled in this Redis instance. You may use \"CONFIG SET latency-monitor-threshold <milliseconds>.\" in order to enable it. If we weren't in a deep space mission I'd suggest to take a look at https://redis.io/topics/latency-monitor.\n".into()
            };
        }
        let mut out = String::from(
            "Dave, I have observed latency spikes in this Redis instance. You don't mind talking about it, do you Dave?\n\n",
        );
        for (i, (name, s)) in self.events.iter().enumerate() {
            let n = s.samples.len().max(1) as u64;
            let avg = s.samples.iter().map(|x| x.latency).sum::<u64>() / n;
            let (first, last) = (s.samples.front(), s.samples.back());
            let period = match (first, last) {
                (Some(f), Some(l)) if s.samples.len() > 1 => (l.time - f.time) / (s.samples.len() as u64 - 1),
                _ => 0,
            };
            out.push_str(&format!(
                "{}. {name}: {} latency spikes (average {avg}ms, mean deviation {}ms, period {period} sec). Worst all time event {}ms.\n",
                i + 1,
                s.samples.len(),
                mean_deviation(s, avg),
                s.max
            ));
        }
        out.push_str("\nI have a few advices for you:\n\n");
        out.push_str("- Check your system for slow commands with SLOWLOG GET, and for big keys with MEMORY USAGE.\n");
        out.push_str(
            "- Deleting, expiring or evicting (or saving) very big keys costs in one go what it took to build them.\n",
        );
        out
    }

    /// LATENCY GRAPH's text: a header and one column per sample, scaled to its range.
    pub fn graph(&self, event: &str) -> Option<String> {
        let s = self.events.get(event)?;
        let high = s.samples.iter().map(|x| x.latency).max().unwrap_or(0);
        let low = s.samples.iter().map(|x| x.latency).min().unwrap_or(0);
        let mut out = format!("{event} - high {high} ms, low {low} ms (all time high {} ms)\n", s.max);
        out.push_str(&"-".repeat(80));
        out.push('\n');
        const ROWS: u64 = 4;
        let span = (high - low).max(1);
        for row in (0..ROWS).rev() {
            let line: String = s
                .samples
                .iter()
                .map(|x| {
                    let level = (x.latency - low) * ROWS / span;
                    if level > row {
                        '#'
                    } else if level == row {
                        '_'
                    } else {
                        ' '
                    }
                })
                .collect();
            out.push_str(line.trim_end());
            out.push('\n');
        }
        Some(out)
    }
}

fn mean_deviation(s: &Series, avg: u64) -> u64 {
    let n = s.samples.len().max(1) as u64;
    s.samples.iter().map(|x| x.latency.abs_diff(avg)).sum::<u64>() / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_redis_powers_of_two() {
        let mut h = Histogram::default();
        for ns in [10, 1023, 1024, 5_000, 70_000, 2_000_000_000] {
            h.record(ns);
        }
        assert_eq!(h.total, 6);
        let c = h.cumulative();
        assert_eq!(c[0], (1, 2));
        assert_eq!(c[1], (2, 3));
        assert_eq!(c[2], (8, 4));
        assert_eq!(c[3], (131, 5));
        assert_eq!(c.last().map(|x| x.1), Some(6));
        assert_eq!(h.percentile_usec(50.0), 2.048);
        assert_eq!(Histogram::default().percentile_usec(99.0), 0.0);
    }

    #[test]
    fn events_keep_one_sample_per_second_and_their_max() {
        let mut m = Monitor::default();
        m.sample_if_needed(0, "command", 500, 1);
        assert!(m.events.is_empty(), "threshold 0 is off");
        m.sample_if_needed(100, "command", 50, 1);
        assert!(m.events.is_empty(), "under the threshold");
        m.sample_if_needed(100, "command", 300, 1);
        m.sample_if_needed(100, "command", 400, 1);
        m.sample_if_needed(100, "command", 200, 2);
        let s = &m.events["command"];
        assert_eq!(s.samples.len(), 2);
        assert_eq!(s.samples[0], Sample { time: 1, latency: 400 });
        assert_eq!(s.max, 400);
        for t in 3..400 {
            m.add("command", 1, t);
        }
        assert_eq!(m.events["command"].samples.len(), SAMPLES);
        assert!(m.graph("command").is_some_and(|g| g.starts_with("command - high")));
        assert_eq!(m.reset(&["nosuch".into()]), 0);
        assert_eq!(m.reset(&[]), 1);
        assert!(m.doctor(100).starts_with("Dave, no latency spike"));
    }
}
