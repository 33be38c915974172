//! Leases on missing keys (GETLEASE / SETLEASE, beyond Redis): when a cached key is missing,
//! the first client to ask gets a lease, a token that lets it fill the key; the others wait
//! for the fill (or the lease's end) instead of all querying the database at once (a cache
//! stampede). Leases live in memory only: never persisted, logged or replicated (a fill is
//! propagated as the SET it amounts to).
//!
//! A fill may also leave a key serving stale (`SETLEASE .. STALE ms`): past its fresh time
//! and until its deadline, the first reader gets the value with a lease to refresh it, the
//! others the value at once (stale-while-revalidate). The mark remembers the key's deadline
//! when it was filled: a key written since (another deadline, or none) is no longer stale.
//!
//! The tables hold at most the leases granted and not yet lapsed, filled or swept, and the
//! stale marks of keys not yet past their deadline: a lapsed entry is dropped when its key is
//! asked for again, and a table is swept of lapsed entries whenever it has doubled since its
//! last sweep.

use std::collections::HashMap;

use bytes::Bytes;

/// At most this many leases are out at once: past it (after a sweep of lapsed ones) a miss
/// grants none, so clients fall back to loading the key themselves, and the table cannot
/// grow with client requests alone (it is outside maxmemory's reach: GETLEASE is no write).
pub const MAX_LEASES: usize = 1 << 20;

#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub token: u64,
    /// When the lease lapses (Unix ms).
    pub until_ms: u64,
}

/// A key filled with a stale window: fresh until `fresh_until`, stale (still served) until
/// its deadline `expire_at`.
#[derive(Debug, Clone, Copy)]
pub struct StaleMark {
    pub fresh_until: u64,
    pub expire_at: u64,
}

#[derive(Debug, Default)]
pub struct LeaseTable {
    leases: HashMap<(usize, Bytes), Lease>,
    /// The table's size after the last sweep.
    swept_len: usize,
    /// When a full table may be swept again.
    full_sweep_after: u64,
    stale: HashMap<(usize, Bytes), StaleMark>,
    stale_swept_len: usize,
}

impl LeaseTable {
    pub fn len(&self) -> usize {
        self.leases.len()
    }

    pub fn is_empty(&self) -> bool {
        self.leases.is_empty()
    }

    /// The live lease on `key` of `db`; a lapsed one is dropped.
    pub fn live(&mut self, db: usize, key: &[u8], now_ms: u64) -> Option<Lease> {
        if self.leases.is_empty() {
            return None;
        }
        let k = (db, Bytes::copy_from_slice(key));
        match self.leases.get(&k) {
            Some(l) if l.until_ms > now_ms => Some(*l),
            Some(_) => {
                self.leases.remove(&k);
                None
            }
            None => None,
        }
    }

    /// Grants a lease on `key` until `until_ms` with `token` (replacing a lapsed one); false
    /// when [`MAX_LEASES`] are out.
    pub fn grant(&mut self, db: usize, key: &[u8], token: u64, until_ms: u64, now_ms: u64) -> bool {
        // At the cap, a sweep is tried at most every 100 ms (it walks the whole table).
        let full = self.leases.len() >= MAX_LEASES;
        if self.leases.len() >= 2 * self.swept_len.max(64) || (full && now_ms >= self.full_sweep_after) {
            self.leases.retain(|_, l| l.until_ms > now_ms);
            self.swept_len = self.leases.len();
            if self.leases.len() >= MAX_LEASES {
                self.full_sweep_after = now_ms.saturating_add(100);
            }
        }
        if self.leases.len() >= MAX_LEASES {
            return false;
        }
        self.leases.insert((db, Bytes::copy_from_slice(key)), Lease { token, until_ms });
        true
    }

    /// Ends the lease on `key` if `token` is its live token; false (nothing changed) for a
    /// stale or unknown token.
    pub fn redeem(&mut self, db: usize, key: &[u8], token: u64, now_ms: u64) -> bool {
        match self.live(db, key, now_ms) {
            Some(l) if l.token == token => {
                self.leases.remove(&(db, Bytes::copy_from_slice(key)));
                true
            }
            _ => false,
        }
    }

    /// Drops the lease on `key`, if any (DEL invalidates it); true if there was one.
    pub fn forget(&mut self, db: usize, key: &[u8]) -> bool {
        self.leases.remove(&(db, Bytes::copy_from_slice(key))).is_some()
    }

    /// Drops every lease and stale mark (FLUSHALL).
    pub fn clear(&mut self) {
        self.leases.clear();
        self.swept_len = 0;
        self.stale.clear();
        self.stale_swept_len = 0;
    }

    /// Marks `key` (just filled with deadline `expire_at`) fresh until `fresh_until`.
    pub fn mark_stale_after(&mut self, db: usize, key: &[u8], fresh_until: u64, expire_at: u64, now_ms: u64) {
        self.stale.insert((db, Bytes::copy_from_slice(key)), StaleMark { fresh_until, expire_at });
        if self.stale.len() >= 2 * self.stale_swept_len.max(64) {
            self.stale.retain(|_, m| m.expire_at > now_ms);
            self.stale_swept_len = self.stale.len();
        }
    }

    /// Whether `key`, whose deadline is now `expire_at`, is past its fresh time (it keeps
    /// the mark it was filled with). A mark that no longer matches the key is dropped.
    pub fn is_stale(&mut self, db: usize, key: &[u8], expire_at: Option<u64>, now_ms: u64) -> bool {
        if self.stale.is_empty() {
            return false;
        }
        let k = (db, Bytes::copy_from_slice(key));
        match self.stale.get(&k) {
            Some(m) if Some(m.expire_at) == expire_at => m.fresh_until <= now_ms,
            Some(_) => {
                self.stale.remove(&k);
                false
            }
            None => false,
        }
    }

    /// Whether `key` still holds a fill with a stale window (a refresh may replace it).
    pub fn has_stale_mark(&self, db: usize, key: &[u8], expire_at: Option<u64>) -> bool {
        !self.stale.is_empty()
            && self.stale.get(&(db, Bytes::copy_from_slice(key))).is_some_and(|m| Some(m.expire_at) == expire_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_redeemed_once_by_its_token_before_it_lapses() {
        let mut t = LeaseTable::default();
        t.grant(0, b"k", 7, 1_000, 0);
        assert_eq!(t.live(0, b"k", 10).map(|l| l.token), Some(7));
        assert!(t.live(1, b"k", 10).is_none(), "leases are per database");
        assert!(!t.redeem(0, b"k", 8, 10), "a wrong token fills nothing");
        assert!(t.redeem(0, b"k", 7, 10));
        assert!(!t.redeem(0, b"k", 7, 10), "a token works once");
        t.grant(0, b"k", 9, 1_000, 0);
        assert!(!t.redeem(0, b"k", 9, 1_000), "a lapsed lease fills nothing");
        assert!(t.is_empty());
    }

    #[test]
    fn a_stale_mark_holds_while_the_key_keeps_its_deadline() {
        let mut t = LeaseTable::default();
        t.mark_stale_after(0, b"k", 100, 200, 0);
        assert!(!t.is_stale(0, b"k", Some(200), 50), "fresh before 100");
        assert!(t.is_stale(0, b"k", Some(200), 150));
        assert!(t.has_stale_mark(0, b"k", Some(200)));
        // Written since: another deadline (or none) is no stale fill.
        assert!(!t.is_stale(0, b"k", None, 150));
        assert!(!t.has_stale_mark(0, b"k", Some(200)), "the mark is gone");
    }

    #[test]
    fn lapsed_leases_are_swept_as_the_table_grows() {
        let mut t = LeaseTable::default();
        for i in 0..10_000u64 {
            // Each lease lapses 5 ms after it is granted.
            assert!(t.grant(0, format!("k{i}").as_bytes(), i, i + 5, i));
        }
        assert!(t.len() < 200, "{} leases kept", t.len());
        // Live leases are capped.
        let mut t = LeaseTable::default();
        for i in 0..MAX_LEASES as u64 {
            assert!(t.grant(0, &i.to_le_bytes(), 1, u64::MAX, 0));
        }
        assert!(!t.grant(0, b"one more", 1, u64::MAX, 0));
        assert!(t.redeem(0, &0u64.to_le_bytes(), 1, 0));
        assert!(t.grant(0, b"one more", 1, u64::MAX, 0), "room again once one is filled");
    }
}
