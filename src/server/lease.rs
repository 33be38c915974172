//! Leases on missing keys (GETLEASE / SETLEASE, beyond Redis): when a cached key is missing,
//! the first client to ask gets a lease, a token that lets it fill the key; the others wait
//! for the fill (or the lease's end) instead of all querying the database at once (a cache
//! stampede). Leases live in memory only: never persisted, logged or replicated (a fill is
//! propagated as the SET it amounts to).
//!
//! The table holds at most the leases granted and not yet lapsed, filled or swept: a lapsed
//! lease is dropped when its key is asked for again, and the whole table is swept of lapsed
//! leases whenever it has doubled since the last sweep.

use std::collections::HashMap;

use bytes::Bytes;

#[derive(Debug, Clone, Copy)]
pub struct Lease {
    pub token: u64,
    /// When the lease lapses (Unix ms).
    pub until_ms: u64,
}

#[derive(Debug, Default)]
pub struct LeaseTable {
    leases: HashMap<(usize, Bytes), Lease>,
    /// The table's size after the last sweep.
    swept_len: usize,
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

    /// Grants a lease on `key` until `until_ms` with `token` (replacing a lapsed one).
    pub fn grant(&mut self, db: usize, key: &[u8], token: u64, until_ms: u64, now_ms: u64) {
        self.leases.insert((db, Bytes::copy_from_slice(key)), Lease { token, until_ms });
        if self.leases.len() >= 2 * self.swept_len.max(64) {
            self.leases.retain(|_, l| l.until_ms > now_ms);
            self.swept_len = self.leases.len();
        }
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

    /// Drops every lease (FLUSHALL).
    pub fn clear(&mut self) {
        self.leases.clear();
        self.swept_len = 0;
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
    fn lapsed_leases_are_swept_as_the_table_grows() {
        let mut t = LeaseTable::default();
        for i in 0..10_000u64 {
            // Each lease lapses 5 ms after it is granted.
            t.grant(0, format!("k{i}").as_bytes(), i, i + 5, i);
        }
        assert!(t.len() < 200, "{} leases kept", t.len());
    }
}
