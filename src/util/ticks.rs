//! A cheap clock for timing single commands.
//!
//! Every command is timed (commandstats, SLOWLOG, LATENCY, latency histograms), and reading
//! `Instant` goes through `clock_gettime` in the vDSO: about 25 ns, which profiles showed at
//! 3-8% of the server's CPU at `-P 32`. Where the CPU has an invariant time-stamp counter
//! (the one Linux itself uses as its clock source), reading it costs a few cycles; its rate is
//! learnt against `Instant` while the server runs. Elsewhere ticks are nanoseconds of
//! `Instant`.

use std::time::{Duration, Instant};

/// How often the counter's rate is re-estimated (against the anchor: the longer the baseline,
/// the finer the estimate).
const REFINE_EVERY: Duration = Duration::from_millis(100);
/// The first estimate, made at start-up by watching the counter this long.
const FIRST_ESTIMATE: Duration = Duration::from_micros(500);

#[derive(Debug, Clone)]
pub struct Ticker {
    tsc: bool,
    anchor: Instant,
    anchor_ticks: u64,
    /// Nanoseconds per tick (1.0 without the counter).
    ns_per_tick: f64,
    /// Microseconds per tick in 32.32 fixed point: converting a command's duration is then
    /// an integer multiply (the float conversion showed at ~2% of CPU at `-P 32`).
    us_per_tick_fx: u64,
    next_refine: Instant,
}

impl Default for Ticker {
    fn default() -> Self {
        Self::new()
    }
}

impl Ticker {
    pub fn new() -> Self {
        let anchor = Instant::now();
        let mut t = Ticker {
            tsc: false,
            anchor,
            anchor_ticks: 0,
            ns_per_tick: 1.0,
            us_per_tick_fx: 0,
            next_refine: anchor + REFINE_EVERY,
        };
        t.set_rate(1.0);
        if invariant_tsc() {
            t.tsc = true;
            t.anchor_ticks = read_tsc();
            // A first estimate over a short spin; refine() sharpens it as time passes.
            let mut now = Instant::now();
            while now.duration_since(anchor) < FIRST_ESTIMATE {
                now = Instant::now();
            }
            t.estimate(now);
        }
        t
    }

    /// The current tick count.
    #[inline]
    pub fn now(&self) -> u64 {
        if self.tsc { read_tsc() } else { self.anchor.elapsed().as_nanos() as u64 }
    }

    /// Microseconds between two tick counts (0 if `to` is not after `from`).
    #[inline]
    pub fn micros(&self, from: u64, to: u64) -> u64 {
        ((to.saturating_sub(from) as u128 * self.us_per_tick_fx as u128) >> 32) as u64
    }

    fn set_rate(&mut self, ns_per_tick: f64) {
        self.ns_per_tick = ns_per_tick;
        // Rounded up, so a whole number of microseconds never reads one short.
        self.us_per_tick_fx = (ns_per_tick / 1000.0 * (1u64 << 32) as f64).ceil() as u64;
    }

    /// Re-estimates the counter's rate now and then; `now` is an `Instant` the caller read
    /// anyway (once per batch of requests), so this costs a comparison most times.
    #[inline]
    pub fn refine(&mut self, now: Instant) {
        if self.tsc && now >= self.next_refine {
            self.estimate(now);
            self.next_refine = now + REFINE_EVERY;
        }
    }

    fn estimate(&mut self, now: Instant) {
        let ticks = read_tsc().saturating_sub(self.anchor_ticks);
        let ns = now.duration_since(self.anchor).as_nanos() as f64;
        if ticks > 0 && ns > 0.0 {
            self.set_rate(ns / ticks as f64);
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn invariant_tsc() -> bool {
    use std::arch::x86_64::__cpuid;
    // CPUID 0x80000007, EDX bit 8: the counter runs at a constant rate in every power state.
    let max_ext = __cpuid(0x8000_0000).eax;
    max_ext >= 0x8000_0007 && __cpuid(0x8000_0007).edx & (1 << 8) != 0
}

#[cfg(not(target_arch = "x86_64"))]
fn invariant_tsc() -> bool {
    false
}

#[cfg(target_arch = "x86_64")]
#[inline]
fn read_tsc() -> u64 {
    // SAFETY: RDTSC reads a counter register; it touches no memory. It exists on every
    // x86_64 CPU, and it is only used after CPUID said the counter is invariant.
    unsafe { std::arch::x86_64::_rdtsc() }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn read_tsc() -> u64 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_like_instant() {
        let mut t = Ticker::new();
        // The ticks are read between two pairs of Instants: what they measure lies between
        // the inner and the outer span, whatever the scheduler does meanwhile.
        let a0 = Instant::now();
        let from = t.now();
        let a1 = Instant::now();
        while a1.elapsed() < Duration::from_millis(120) {}
        t.refine(Instant::now());
        let b0 = Instant::now();
        let to = t.now();
        let b1 = Instant::now();
        let measured = t.micros(from, to) as f64;
        let (inner, outer) = (b0.duration_since(a1).as_micros() as f64, b1.duration_since(a0).as_micros() as f64);
        assert!(
            measured >= inner * 0.95 - 50.0 && measured <= outer * 1.05 + 50.0,
            "ticker {measured} µs, Instant {inner}-{outer} µs"
        );
        assert_eq!(t.micros(to, from), 0);
        // Without the counter a tick is a nanosecond.
        let mut plain = t.clone();
        plain.set_rate(1.0);
        assert_eq!(plain.micros(0, 1_500_000), 1_500);
        assert_eq!(plain.micros(0, 999), 0);
    }
}
