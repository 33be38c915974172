//! Hash-field expiry in the keyspace: hashes with field deadlines have one entry each in
//! `Side::hexpires` (under the deadline the hash records as indexed), which the active cycle
//! walks in order; a lookup that finds due fields purges them (see `live`). Expired fields
//! are propagated as one HDEL per field, as Redis 7.4 does.

use bytes::Bytes;

use super::{Db, Entry, Key, Side, Value, notify};
use crate::util::expiry_index::{HASH_BITS, Slot};
use crate::util::smallbytes::SmallBytes;

/// `HDEL key field`, one per field: how expired hash fields are propagated (as Redis 7.4
/// does).
pub(super) fn hdels(out: &mut Vec<Vec<Bytes>>, key: &[u8], fields: impl Iterator<Item = Bytes>) {
    let key = Bytes::copy_from_slice(key);
    out.extend(fields.map(|f| vec![Bytes::from_static(b"HDEL"), key.clone(), f]));
}

/// Drops the active-expiry entry of a hash with field deadlines that leaves the table.
pub(super) fn unindex_fields(side: &mut Side, v: &Value, h: usize) {
    if let Value::Hash(hv) = v
        && hv.indexed() != 0
    {
        side.hexpires.remove(Slot::new(hv.indexed(), h));
    }
}

/// Brings a hash's active-expiry entry in step with its first field deadline.
fn reindex_fields(side: &mut Side, v: &mut Value, h: usize) {
    if let Value::Hash(hv) = v {
        let (old, new) = (hv.indexed(), if hv.has_ttls() { hv.min_ttl() } else { 0 });
        if old == new {
            return;
        }
        if old != 0 {
            side.hexpires.remove(Slot::new(old, h));
        }
        if new != 0 {
            side.hexpires.insert(Slot::new(new, h));
        }
        hv.set_indexed(new);
    }
}

/// A value entering the table: whatever index entry it had belonged to its old place.
pub(super) fn index_new(side: &mut Side, v: &mut Value, h: usize) {
    if let Value::Hash(hv) = v {
        hv.set_indexed(0);
        reindex_fields(side, v, h);
    }
}

/// Removes the due fields of the hash in entry `e` (a lookup found it with some due, not
/// all): the running snapshot keeps the hash as it was, each field is propagated as HDEL,
/// and the hash's active-expiry entry moves on.
pub(super) fn purge(side: &mut Side, key: &[u8], h: usize, k: &Key, e: &mut Entry, now: u64, limit: usize) -> usize {
    if let Some(s) = side.snap.as_deref_mut()
        && !s.is_done(key)
    {
        s.capture(key, Some((&e.value, e.expire_at(), k.stamp())));
    }
    let Value::Hash(hv) = &mut e.value else { return 0 };
    let mut fields = Vec::new();
    let record = side.record_dels;
    let n = hv.purge(now, limit, |f| {
        if record {
            fields.push(Bytes::copy_from_slice(f));
        }
    });
    reindex_fields(side, &mut e.value, h);
    if n > 0 {
        hdels(&mut side.propagate_del, key, fields.into_iter());
        side.stats.expired_subkeys += n as u64;
        side.signal(key);
        side.notify(notify::HASH, "hexpired", key);
    }
    n
}

/// Fields the active cycle removes from one hash per visit, so a mass expiry in a big hash
/// is worked off in slices like a mass expiry of keys.
const FIELDS_PER_VISIT: usize = 256;

impl Db {
    /// Active field expiry: purges up to `max` hashes whose first field deadline passed,
    /// earliest first (a hash whose fields all went is deleted). Returns how many it visited.
    pub fn expire_due_fields(&mut self, max: usize) -> usize {
        let mut n = 0;
        while n < max {
            let Some(slot) = self.side.hexpires.first() else { break };
            if slot.at >= self.now {
                break;
            }
            let key = self
                .keys
                .find_by_hash_bits(
                    slot.hash_bits,
                    HASH_BITS,
                    |_, e| matches!(&e.value, Value::Hash(hv) if Slot::new(hv.indexed(), 0).at == slot.at),
                )
                .map(|(k, _)| SmallBytes::new(k));
            match key {
                Some(key) => {
                    // A hash that could not be purged (paused) must not hold the loop.
                    if self.purge_some(&key) == 0
                        && let Some(hv) = self.keys.get_mut(&key).and_then(|e| e.value.as_hash_mut())
                        && Slot::new(hv.indexed(), 0).at == slot.at
                    {
                        hv.set_indexed(0);
                        self.side.hexpires.remove(slot);
                    }
                }
                // Unreachable while the index is kept in step; the entry goes either way.
                None => {
                    self.side.hexpires.pop_first();
                }
            }
            n += 1;
        }
        n
    }

    /// Removes up to [`FIELDS_PER_VISIT`] due fields of the hash at `key` (all of them, and
    /// the key, when every field is due: the lookup does that). Returns how many went.
    fn purge_some(&mut self, key: &[u8]) -> usize {
        if self.expire_if_needed(key) {
            return 1;
        }
        let now = self.now;
        let h = self.keys.hash(key);
        let whole = match self.keys.get(key).map(|e| &e.value) {
            Some(Value::Hash(hv)) => hv.may_have_due(now) && hv.all_due(now),
            _ => true,
        };
        if whole {
            let before = self.side.stats.expired_subkeys + self.side.stats.expired_keys;
            self.peek(key);
            return (self.side.stats.expired_subkeys + self.side.stats.expired_keys - before) as usize;
        }
        let Db { keys, side, .. } = self;
        let Some((k, e)) = keys.lookup_mut(key, h, |_| false, |_, _| {}) else { return 0 };
        purge(side, key, h, k, e, now, FIELDS_PER_VISIT)
    }

    /// After a command set field deadlines on the hash at `key`: its active-expiry entry
    /// follows its first deadline.
    pub fn hash_ttls_changed(&mut self, key: &[u8]) {
        let h = self.keys.hash(key);
        if let Some(e) = self.keys.get_mut(key) {
            reindex_fields(&mut self.side, &mut e.value, h);
        }
    }

    /// Hashes with field deadlines (INFO keyspace `subexpiry`).
    pub fn subexpiry_len(&self) -> usize {
        self.side.hexpires.len()
    }
}
