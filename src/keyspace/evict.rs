//! What to forget when memory is full: `maxmemory-policy`, the access stamps it reads, and the
//! eviction pool — approximated the way Redis 7.0 does it so users see the same behaviour.
//!
//! * **Stamps.** Every key carries 24 bits (see [`super::Key`]): under LRU policies the LRU
//!   clock in 100 ms ticks; under LFU policies the last decrement time in minutes (16 bits) and a
//!   logarithmic access counter (8 bits) that grows with probability 1/((c-5)·lfu-log-factor+1)
//!   and decays by one per `lfu-decay-time` minutes.
//! * **Sampling with a pool.** Each round samples `maxmemory-samples` keys per database (all
//!   keys, or keys with a TTL for `volatile-*`), keeps the best 16 candidates seen so far in a
//!   pool ordered by idleness (LRU idle ms, 255 - LFU counter, or time to deadline), and evicts
//!   the best one still present and untouched since it was sampled (a key accessed meanwhile
//!   is dropped from the pool, where Redis would evict it anyway). Over rounds the pool converges to the truly idlest keys without
//!   ever walking the keyspace.
//! * **volatile-ttl is exact.** Deadlines are kept in order (see [`super::db`]), so the pool is
//!   fed the keys with the shortest TTLs rather than a sample.
//! * **Bounded work.** One call stops after a time budget derived from
//!   `maxmemory-eviction-tenacity` (500 µs at the default 10) and reports `Running`; the event
//!   loop keeps evicting between polls, so a single write never stalls the server.

use bytes::Bytes;
use rand::{Rng, RngExt};

use super::Db;

pub const LFU_INIT_VAL: u32 = 5;
const POOL_SIZE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    NoEviction,
    AllkeysLru,
    VolatileLru,
    AllkeysLfu,
    VolatileLfu,
    AllkeysRandom,
    VolatileRandom,
    VolatileTtl,
}

impl Policy {
    pub fn parse(s: &str) -> Policy {
        match s {
            "allkeys-lru" => Policy::AllkeysLru,
            "volatile-lru" => Policy::VolatileLru,
            "allkeys-lfu" => Policy::AllkeysLfu,
            "volatile-lfu" => Policy::VolatileLfu,
            "allkeys-random" => Policy::AllkeysRandom,
            "volatile-random" => Policy::VolatileRandom,
            "volatile-ttl" => Policy::VolatileTtl,
            _ => Policy::NoEviction,
        }
    }

    pub fn is_lru(self) -> bool {
        matches!(self, Policy::AllkeysLru | Policy::VolatileLru)
    }

    pub fn is_lfu(self) -> bool {
        matches!(self, Policy::AllkeysLfu | Policy::VolatileLfu)
    }

    fn volatile_only(self) -> bool {
        matches!(self, Policy::VolatileLru | Policy::VolatileLfu | Policy::VolatileRandom | Policy::VolatileTtl)
    }

    fn random(self) -> bool {
        matches!(self, Policy::AllkeysRandom | Policy::VolatileRandom)
    }
}

/// How access stamps are written: the LRU clock, or the LFU counter with its parameters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stamping {
    pub lfu: bool,
    pub log_factor: u32,
    pub decay_minutes: u32,
}

/// Resolution of the LRU clock. Redis ticks once a second; a busy cache touches its whole
/// working set within a second or two, which would leave nearly every candidate tied at idle
/// 0 or 1 s. A 100 ms tick separates them (the better eviction is measured by
/// benches/cache_workload.py) and still wraps only after 19 days (Redis: 194).
pub const LRU_RESOLUTION_MS: u64 = 100;
/// 24-bit LRU clock (wraps like Redis's LRU_CLOCK_MAX).
pub const LRU_CLOCK_MAX: u32 = (1 << 24) - 1;

pub fn lru_clock(now_ms: u64) -> u32 {
    ((now_ms / LRU_RESOLUTION_MS) as u32) & LRU_CLOCK_MAX
}

/// Milliseconds since a stamp of the LRU clock, accounting for one wrap-around.
pub fn lru_idle_ms(stamp: u32, now_ms: u64) -> u64 {
    let now = lru_clock(now_ms);
    let ticks = if now >= stamp { now - stamp } else { now + (LRU_CLOCK_MAX - stamp) };
    ticks as u64 * LRU_RESOLUTION_MS
}

fn lfu_minutes(now_ms: u64) -> u32 {
    ((now_ms / 60_000) & 0xffff) as u32
}

impl Stamping {
    /// The stamp of a newly created key.
    pub fn initial(self, now_ms: u64) -> u32 {
        if self.lfu { (lfu_minutes(now_ms) << 8) | LFU_INIT_VAL } else { lru_clock(now_ms) }
    }

    /// A stamp from persisted access data (RDB IDLE / FREQ, RESTORE IDLETIME / FREQ): under
    /// LRU, `idle_secs` ago; under LFU, counter `freq` as of now.
    pub fn restored(self, idle_secs: Option<u64>, freq: Option<u8>, now_ms: u64) -> Option<u32> {
        if self.lfu {
            freq.map(|f| (lfu_minutes(now_ms) << 8) | f as u32)
        } else {
            idle_secs.map(|s| lru_clock(now_ms.saturating_sub(s.saturating_mul(1000))))
        }
    }

    /// What RDB files carry for a stamp: idle seconds (LRU) or the decayed counter (LFU).
    pub fn persisted(self, stamp: u32, now_ms: u64) -> (Option<u64>, Option<u8>) {
        if self.lfu {
            (None, Some(self.decayed(stamp, now_ms) as u8))
        } else {
            (Some(lru_idle_ms(stamp, now_ms) / 1000), None)
        }
    }

    /// The stamp after an access.
    pub fn touch(self, stamp: u32, now_ms: u64) -> u32 {
        if !self.lfu {
            return lru_clock(now_ms);
        }
        self.touch_with(stamp, now_ms, &mut rand::rng())
    }

    fn touch_with<R: Rng + ?Sized>(self, stamp: u32, now_ms: u64, rng: &mut R) -> u32 {
        if !self.lfu {
            return lru_clock(now_ms);
        }
        let c = self.decayed(stamp, now_ms);
        (lfu_minutes(now_ms) << 8) | log_incr(c, self.log_factor, rng)
    }

    /// The LFU counter with the decay for elapsed time applied (OBJECT FREQ, eviction scores).
    pub fn decayed(self, stamp: u32, now_ms: u64) -> u32 {
        let last = stamp >> 8;
        let counter = stamp & 0xff;
        let now = lfu_minutes(now_ms);
        let elapsed = if now >= last { now - last } else { 65535 - last + now };
        let periods = elapsed.checked_div(self.decay_minutes).unwrap_or(0);
        counter.saturating_sub(periods)
    }
}

/// Redis's LFULogIncr: the counter grows ever more slowly, saturating at 255.
fn log_incr<R: Rng + ?Sized>(counter: u32, log_factor: u32, rng: &mut R) -> u32 {
    if counter >= 255 {
        return 255;
    }
    let base = counter.saturating_sub(LFU_INIT_VAL) as f64;
    let p = 1.0 / (base * log_factor as f64 + 1.0);
    if rng.random::<f64>() < p { counter + 1 } else { counter }
}

/// The outcome of one eviction call, as Redis's performEvictions reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Memory is under the limit (or no limit is set).
    Ok,
    /// Still over the limit when the time budget ran out; eviction continues in the background.
    Running,
    /// Over the limit and nothing (more) can be evicted.
    Fail,
}

/// Limits and knobs of one eviction call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub maxmemory: usize,
    pub policy: Policy,
    pub samples: usize,
    pub tenacity: i64,
    pub stamping: Stamping,
}

impl Limits {
    /// Redis's evictionTimeLimitUs.
    fn time_budget(&self) -> Option<std::time::Duration> {
        let t = self.tenacity;
        let us = if t <= 10 {
            50 * t as u64
        } else if t < 100 {
            (500.0 * 1.15f64.powi((t - 10) as i32)) as u64
        } else {
            return None;
        };
        Some(std::time::Duration::from_micros(us))
    }
}

struct Candidate {
    score: u64,
    db: usize,
    key: Bytes,
    /// The key's access stamp when sampled: a key read or written since then is no longer
    /// the candidate it was (Redis evicts it anyway; Ember drops it from the pool).
    stamp: u32,
}

/// The eviction pool, kept across calls like Redis's EvictionPoolLRU.
#[derive(Default)]
pub struct Evictor {
    /// Ascending by score; the best candidate is last.
    pool: Vec<Candidate>,
    /// Next database for the random policies (round robin).
    next_db: usize,
    pub evicted_keys: u64,
    /// Since when used memory has stayed over maxmemory (a cycle ended Running or Fail),
    /// and the milliseconds of the earlier such spells (INFO total_eviction_exceeded_time).
    over_since_ms: Option<u64>,
    over_total_ms: u64,
}

impl Evictor {
    /// Notes how an eviction cycle ended, for the time spent over the limit.
    pub fn note(&mut self, out: Outcome, now_ms: u64) {
        match (out, self.over_since_ms) {
            (Outcome::Ok, Some(since)) => {
                self.over_total_ms += now_ms.saturating_sub(since);
                self.over_since_ms = None;
            }
            (Outcome::Running | Outcome::Fail, None) => self.over_since_ms = Some(now_ms),
            _ => {}
        }
    }

    /// Milliseconds spent over maxmemory: in all (the current spell included) and now.
    pub fn exceeded_time_ms(&self, now_ms: u64) -> (u64, u64) {
        let current = self.over_since_ms.map_or(0, |s| now_ms.saturating_sub(s));
        (self.over_total_ms + current, current)
    }

    /// Evicts until what `used()` was over `limits.maxmemory` is freed, the budget runs out,
    /// or nothing is left to evict.
    pub fn perform<R: Rng + ?Sized>(
        &mut self,
        dbs: &mut [Db],
        limits: Limits,
        used: impl Fn() -> usize,
        rng: &mut R,
    ) -> Outcome {
        if limits.maxmemory == 0 || used() <= limits.maxmemory {
            return Outcome::Ok;
        }
        if limits.policy == Policy::NoEviction {
            return Outcome::Fail;
        }
        let deadline = limits.time_budget().map(|b| std::time::Instant::now() + b);
        let mut n = 0usize;
        // As Redis: the room to make is measured once, and each eviction counts what removing
        // its key freed, so what evicting causes elsewhere (events, DELs to log,
        // invalidations in tracking clients' buffers) does not make this cycle evict more:
        // no feedback loop emptying the database.
        let to_free = used().saturating_sub(limits.maxmemory);
        let mut freed = 0;
        while freed < to_free {
            let Some(f) = self.evict_one(dbs, limits, &used, rng) else {
                return Outcome::Fail;
            };
            freed += f;
            n += 1;
            if n.is_multiple_of(16) && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                return if freed < to_free { Outcome::Running } else { Outcome::Ok };
            }
        }
        Outcome::Ok
    }

    /// Evicts one key and says what removing it freed; None when no database has a candidate.
    fn evict_one<R: Rng + ?Sized>(
        &mut self,
        dbs: &mut [Db],
        limits: Limits,
        used: &dyn Fn() -> usize,
        rng: &mut R,
    ) -> Option<usize> {
        if limits.policy.random() {
            for _ in 0..dbs.len() {
                let i = self.next_db % dbs.len().max(1);
                self.next_db = self.next_db.wrapping_add(1);
                let Some(db) = dbs.get_mut(i) else { continue };
                let key = if limits.policy.volatile_only() {
                    db.sample_volatile(1, rng).into_iter().next().map(|(k, _, _)| k)
                } else {
                    db.random_key(rng)
                };
                if let Some(freed) = key.and_then(|k| db.evict(&k, used)) {
                    self.evicted_keys += 1;
                    return Some(freed);
                }
            }
            return None;
        }
        // Pool policies: refill from every database, then evict the best candidate that still
        // exists (keys in the pool may have been deleted or rewritten since).
        for _ in 0..3 {
            for (i, db) in dbs.iter_mut().enumerate() {
                self.populate(i, db, limits, rng);
            }
            while let Some(c) = self.pool.pop() {
                let Some(db) = dbs.get_mut(c.db) else { continue };
                let stale = limits.policy != Policy::VolatileTtl && db.stamp(&c.key).is_some_and(|s| s != c.stamp);
                if !stale && let Some(freed) = db.evict(&c.key, used) {
                    self.evicted_keys += 1;
                    return Some(freed);
                }
            }
        }
        None
    }

    fn populate<R: Rng + ?Sized>(&mut self, dbi: usize, db: &mut Db, limits: Limits, rng: &mut R) {
        if db.is_empty() {
            return;
        }
        // volatile-ttl reads the head of the ordered expiry index: the shortest TTLs exactly,
        // where Redis can only sample.
        let samples = if limits.policy == Policy::VolatileTtl {
            db.earliest_volatile(limits.samples)
        } else if limits.policy.volatile_only() {
            db.sample_volatile(limits.samples, rng)
        } else {
            db.sample_keys(limits.samples, rng)
        };
        let now = db.now();
        for (key, stamp, expire_at) in samples {
            let score = match limits.policy {
                Policy::VolatileTtl => u64::MAX - expire_at.unwrap_or(u64::MAX),
                p if p.is_lfu() => 255 - limits.stamping.decayed(stamp, now) as u64,
                _ => lru_idle_ms(stamp, now),
            };
            if self.pool.iter().any(|c| c.db == dbi && c.key == key) {
                continue;
            }
            if self.pool.len() >= POOL_SIZE && self.pool.first().is_some_and(|w| w.score >= score) {
                continue;
            }
            let pos = self.pool.partition_point(|c| c.score < score);
            self.pool.insert(pos, Candidate { score, db: dbi, key, stamp });
            if self.pool.len() > POOL_SIZE {
                self.pool.remove(0);
            }
        }
    }

    /// Drops pooled candidates (FLUSHALL, a policy change).
    pub fn clear(&mut self) {
        self.pool.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn lfu_counter_grows_logarithmically_and_decays() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let s = Stamping { lfu: true, log_factor: 10, decay_minutes: 1 };
        let now = 10 * 60_000;
        let mut stamp = s.initial(now);
        assert_eq!(s.decayed(stamp, now), LFU_INIT_VAL);
        for _ in 0..1000 {
            stamp = s.touch_with(stamp, now, &mut rng);
        }
        let c = s.decayed(stamp, now);
        // Redis's table: ~1K hits with factor 10 give a counter around 18.
        assert!((12..=25).contains(&c), "{c}");
        // Three minutes later the counter has decayed by three.
        assert_eq!(s.decayed(stamp, now + 3 * 60_000), c - 3);
        let mut hot = stamp;
        for _ in 0..100_000 {
            hot = s.touch_with(hot, now, &mut rng);
        }
        assert!(s.decayed(hot, now) > c);
        assert!(s.decayed(hot, now) <= 255);
    }

    #[test]
    fn time_budget_follows_tenacity() {
        let l = |t| Limits {
            maxmemory: 1,
            policy: Policy::AllkeysLru,
            samples: 5,
            tenacity: t,
            stamping: Stamping::default(),
        };
        assert_eq!(l(10).time_budget(), Some(std::time::Duration::from_micros(500)));
        assert_eq!(l(0).time_budget(), Some(std::time::Duration::ZERO));
        assert_eq!(l(100).time_budget(), None);
    }
}
