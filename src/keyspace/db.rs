//! One logical database: the only way to reach a stored value.
//!
//! # Design
//! Every read and write goes through [`Db`], so the rules that must hold for every command live
//! here once instead of in a hundred handlers:
//!
//! * **Lazy expiry.** A key whose deadline has passed is deleted on first touch and is never
//!   returned. `now` is set by the server once per command (Redis's command-time snapshot), so a
//!   key cannot expire halfway through a command or a MULTI/EXEC.
//! * **Ordered expiry index.** Deadlines live both in the entry and in an [`ExpiryIndex`] of
//!   (deadline, low bits of the key's table hash), so the active cycle removes exactly the
//!   keys that are due, oldest first, instead of sampling and hoping (expiry never lags
//!   behind, however few keys are volatile). An entry is 6 bytes, not the key, and the key is
//!   found again with [`Dict::find_by_hash_bits`] (its bucket, its deadline and its rehashed
//!   key must all agree). Every volatile key has exactly one entry.
//! * **Access stamp.** Reads and writes stamp a 24-bit LRU clock (seconds) on the key (see
//!   [`Key`]), the basis of OBJECT IDLETIME and of approximated-LRU eviction.
//! * **Change signals.** Any mutable access, overwrite, delete or expiry marks the key modified:
//!   clients WATCHing it are collected in `dirty_watchers` for the server to flag. The same hook
//!   is where blocked-client wake-ups, keyspace events and incremental snapshots attach: a
//!   point-in-time snapshot walks the table with the SCAN cursor in slices, and a key about to be
//!   modified ahead of the cursor is serialised first (copy-before-write per key, no fork).
//! * **Incremental structures.** The key table ([`Dict`]) rehashes incrementally and supports
//!   SCAN cursors and random sampling, which eviction needs.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use bytes::Bytes;
use rand::Rng;

use crate::types::Value;
use crate::util::dict::Dict;
use crate::util::smallbytes::SmallBytes;

use super::key::Key;
use super::slot_index::SlotIndex;
use crate::util::expiry_index::{ExpiryIndex, HASH_BITS, Slot};

mod fields;
mod waiters;
use super::notify::{self, Event};
use super::snapshot::DbSnap;
use crate::persistence::rdb::SaveOptions;
use fields::{hdels, index_new, unindex_fields};

pub type ClientId = u64;

use super::evict::Stamping;
pub use super::evict::{LRU_CLOCK_MAX, lru_clock};

#[derive(Debug)]
pub struct Entry {
    pub value: Value,
    /// Absolute deadline in Unix ms; 0 = persistent.
    expire_at: u64,
}

impl Entry {
    pub fn expire_at(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct DbStats {
    pub expired_keys: u64,
    /// Hash fields removed because their deadline passed (INFO `expired_subkeys`).
    pub expired_subkeys: u64,
    pub keyspace_hits: u64,
    pub keyspace_misses: u64,
}

pub struct Db {
    keys: Dict<Key, Entry>,
    /// Everything beside the key table, kept apart so a borrowed entry and the bookkeeping
    /// can be used at once.
    side: Side,
    /// Command-time clock (Unix ms), set by the server before each command.
    now: u64,
    /// How accesses stamp keys (LRU clock or LFU counter), from `maxmemory-policy`.
    stamping: Stamping,
    /// An AOF is being replayed into this database: deadlines are not enforced.
    loading: bool,
}

struct Side {
    /// Keys per cluster hash slot, kept in cluster mode (COUNTKEYSINSLOT, GETKEYSINSLOT).
    slots: Option<Box<SlotIndex>>,
    /// One entry per key with a deadline.
    expires: ExpiryIndex,
    /// One entry per hash with field deadlines, under the deadline the hash records as
    /// indexed (an early bound of its first field deadline): active field expiry.
    hexpires: ExpiryIndex,
    /// WATCH registry: key → clients watching it in this db.
    watchers: HashMap<Box<[u8]>, Vec<ClientId>>,
    /// Clients whose watched key changed since the server last drained this list.
    dirty_watchers: Vec<ClientId>,
    /// CLIENT PAUSE is on: expired keys read as missing but are not removed.
    expire_paused: bool,
    /// Keys some client is blocked on (BLPOP…), with the number of waiters.
    blocked: HashMap<Box<[u8]>, usize>,
    /// Blocked-on keys modified since the server last drained this list.
    ready: Vec<Bytes>,
    stats: DbStats,
    /// Enabled keyspace-event classes (`notify-keyspace-events`); 0 raises nothing.
    notify_mask: u32,
    /// Raised events not yet published by the server.
    events: Vec<Event>,
    /// True while some client tracks keys (CLIENT TRACKING): modified keys are then collected
    /// in `modified` for the server to send invalidations.
    track_modified: bool,
    modified: Vec<Bytes>,
    /// The running command is a write command (set by dispatch).
    writing: bool,
    /// This database's part of a running forkless snapshot (BGSAVE).
    snap: Option<Box<DbSnap>>,
    /// With the AOF on: keys that expired or were evicted, to be logged as DEL, and hash
    /// fields that expired, as HDEL.
    record_dels: bool,
    propagate_del: Vec<Vec<Bytes>>,
    /// On a writable replica, while a command of its own clients runs: deadlines set now are
    /// remembered in `local_volatile`, the keys the replica expires itself (its master
    /// never heard of them).
    remember_local: bool,
    local_volatile: std::collections::HashSet<Box<[u8]>>,
    /// The running command comes from this replica's master.
    master_client: bool,
    /// Where changes are counted: one counter shared by all the server's databases.
    changes: Changes,
}

/// The change counter: every write path of a database counts itself here, so the server
/// learns of each change (to log and propagate the command that made it, and for save
/// points) without the command saying so. Shared by all of a server's databases, so a
/// command's changes are read in one place whichever databases it touched.
#[derive(Debug, Clone, Default)]
pub struct Changes(Rc<RefCell<ChangeCount>>);

#[derive(Debug, Default)]
struct ChangeCount {
    n: u64,
    /// The key of the latest change in this command: creating a key and then filling it
    /// counts once.
    last: Vec<u8>,
}

impl Changes {
    /// Counts `n` changes to `key`: a key's first change in a command counts `n`, a further
    /// signal of the same key (a container created then filled) adds what it adds beyond one.
    fn count(&self, key: &[u8], n: u64) {
        let mut c = self.0.borrow_mut();
        if c.last == key {
            c.n += n.saturating_sub(1);
        } else {
            c.n += n;
            c.last.clear();
            c.last.extend_from_slice(key);
        }
    }

    /// Counts `n` changes not tied to one key (FLUSHALL, SWAPDB, function libraries).
    pub fn add(&self, n: u64) {
        self.0.borrow_mut().n += n;
    }

    /// The changes counted since the last call.
    pub fn take(&self) -> u64 {
        let mut c = self.0.borrow_mut();
        c.last.clear();
        std::mem::take(&mut c.n)
    }
}

impl Side {
    /// A write command of a writable replica's own client.
    fn local_write(&self) -> bool {
        self.remember_local && self.writing
    }

    fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if notify::wanted(self.notify_mask, class) {
            self.events.push(Event { event, key: Bytes::copy_from_slice(key) });
        }
    }

    fn count(&mut self, key: &[u8], n: u64) {
        self.changes.count(key, n);
    }

    fn signal(&mut self, key: &[u8]) {
        if self.track_modified {
            self.modified.push(Bytes::copy_from_slice(key));
        }
        self.flag_watchers(key);
        if !self.blocked.is_empty() && self.blocked.contains_key(key) && !self.ready.iter().any(|k| &k[..] == key) {
            self.ready.push(Bytes::copy_from_slice(key));
        }
    }

    /// Marks the transactions watching `key` dirty, and nothing else: FLUSHALL and SWAPDB
    /// touch watched keys (Redis's touchAllWatchedKeysInDb) without telling client caches
    /// about each key, which get one flush message or none.
    fn flag_watchers(&mut self, key: &[u8]) {
        if let Some(list) = self.watchers.get(key) {
            self.dirty_watchers.extend_from_slice(list);
        }
    }
}

/// See [`Db::expiry_now`] (free, so it can be called while a field is borrowed).
fn expiry_clock(loading: bool, now: u64) -> u64 {
    if loading { 0 } else { now }
}

/// See [`Db::live`]; a free function so callers can keep using `side` while holding the entry.
fn live<'a>(
    keys: &'a mut Dict<Key, Entry>,
    side: &mut Side,
    now: u64,
    key: &[u8],
    h: usize,
) -> Option<(&'a mut Key, &'a mut Entry)> {
    let mut expired = false;
    let mut emptied = 0;
    // While clients are paused, or on a replica, an expired key reads as missing but stays
    // (Redis's expireIfNeeded); a replica's master sees it as it is (its DEL is coming), and
    // a write of a writable replica's own client deletes it first. Hash fields likewise
    // wait for their master's HDEL there.
    let paused = side.expire_paused && !side.local_write();
    let key_due = |e: &Entry| e.expire_at != 0 && e.expire_at <= now;
    let found = keys.lookup_mut(
        key,
        h,
        // A hash all of whose fields are due goes as a whole, like an expired key.
        |e| !paused && (key_due(e) || matches!(&e.value, Value::Hash(hv) if hv.may_have_due(now) && hv.all_due(now))),
        |k, e| {
            unindex(side, e.expire_at, h);
            unindex_fields(side, &e.value, h);
            if let Some(s) = side.snap.as_deref_mut() {
                s.capture(&k, Some((&e.value, e.expire_at(), k.stamp())));
            }
            if key_due(&e) {
                if side.record_dels {
                    side.propagate_del.push(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(&k)]);
                }
                expired = true;
            } else if let Value::Hash(hv) = &e.value {
                emptied = hv.len();
                if side.record_dels {
                    let fields = hv.iter().map(|(f, _)| Bytes::copy_from_slice(f));
                    hdels(&mut side.propagate_del, &k, fields);
                }
            }
        },
    );
    if expired {
        side.stats.expired_keys += 1;
        side.signal(key);
        side.notify(notify::EXPIRED, "expired", key);
    }
    if emptied > 0 {
        side.stats.expired_subkeys += emptied as u64;
        side.signal(key);
        side.notify(notify::HASH, "hexpired", key);
        side.notify(notify::GENERIC, "del", key);
    }
    if paused {
        if !side.master_client && found.as_ref().is_some_and(|(_, e)| key_due(e)) {
            return None;
        }
        return found;
    }
    let (k, e) = found?;
    if let Value::Hash(hv) = &e.value
        && hv.may_have_due(now)
    {
        fields::purge(side, key, h, k, e, now, usize::MAX);
    }
    Some((k, e))
}

/// Forgets the index entry of a key that no longer has deadline `at`.
fn unindex(side: &mut Side, at: u64, h: usize) {
    side.expires.remove(Slot::new(at, h));
}

/// The key an index entry stands for (any key with that deadline and those hash bits).
fn indexed_key(keys: &Dict<Key, Entry>, slot: Slot) -> Option<(&Key, &Entry)> {
    keys.find_by_hash_bits(slot.hash_bits, HASH_BITS, |_, e| Slot::new(e.expire_at, 0).at == slot.at)
}

impl Default for Db {
    fn default() -> Self {
        Self::new()
    }
}

impl Side {
    fn slot_added(&mut self, key: &[u8], h: usize) {
        if let Some(idx) = self.slots.as_deref_mut() {
            idx.added(key, h);
        }
    }

    fn slot_removed(&mut self, key: &[u8]) {
        if let Some(idx) = self.slots.as_deref_mut() {
            idx.removed(key);
        }
    }
}

impl Db {
    /// Starts indexing keys per cluster hash slot (cluster mode), from the keys present.
    pub fn index_slots(&mut self) {
        let mut idx = SlotIndex::new();
        for (k, _) in self.keys.iter() {
            idx.added(k, self.keys.hash(k));
        }
        self.side.slots = Some(Box::new(idx));
    }

    /// Keys in a cluster hash slot (0 unless indexing, see [`Db::index_slots`]).
    pub fn keys_in_slot(&self, slot: usize) -> u32 {
        self.side.slots.as_deref().map_or(0, |idx| idx.count(slot))
    }

    /// Up to `max` keys of a cluster hash slot, newest first (none unless indexing).
    pub fn slot_keys(&self, slot: usize, max: usize) -> Vec<&[u8]> {
        let Some(idx) = self.side.slots.as_deref() else {
            return Vec::new();
        };
        idx.keys(slot, max, |h, f| self.keys.with_hash(h, |k, _| f(k)))
    }

    pub fn new() -> Self {
        Db {
            keys: Dict::new(),
            side: Side {
                slots: None,
                expires: ExpiryIndex::new(),
                hexpires: ExpiryIndex::new(),
                watchers: HashMap::new(),
                dirty_watchers: Vec::new(),
                expire_paused: false,
                blocked: HashMap::new(),
                ready: Vec::new(),
                stats: DbStats::default(),
                notify_mask: 0,
                events: Vec::new(),
                track_modified: false,
                modified: Vec::new(),
                changes: Changes::default(),
                writing: false,
                snap: None,
                record_dels: false,
                remember_local: false,
                local_volatile: Default::default(),
                master_client: false,
                propagate_del: Vec::new(),
            },
            now: 0,
            stamping: Stamping::default(),
            loading: false,
        }
    }

    pub fn set_stamping(&mut self, s: Stamping) {
        self.stamping = s;
    }

    pub fn set_now(&mut self, now_ms: u64) {
        self.now = now_ms;
    }

    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes of table structure, MEMORY STATS's `overhead.hashtable.main` and `.expires`:
    /// the buckets, and of each 56-byte node what is not the key's or the value's bytes (the
    /// chain link, the deadline, the tags, stamp and lengths: 32), as Redis counts a
    /// dictEntry and an object header (40).
    pub fn table_overhead(&self) -> (usize, usize) {
        let main = self.keys.slots() * 8 + self.keys.len() * 32;
        (main, self.side.expires.heap_bytes())
    }

    /// DEBUG HTSTATS: the key table's statistics, then the deadlines' (a sorted index in
    /// Ember, so only its size).
    pub fn table_stats(&self) -> String {
        let expires = match self.side.expires.len() {
            0 => "Hash table 0 stats (main hash table):\nNo stats available for empty dictionaries\n".to_string(),
            n => format!("Sorted deadline index (not a hash table):\n number of elements: {n}\n"),
        };
        format!("[Dictionary HT]\n{}[Expires HT]\n{expires}", self.keys.stats())
    }

    pub fn expires_len(&self) -> usize {
        self.side.expires.len()
    }

    fn is_expired(&self, e: &Entry) -> bool {
        e.expire_at != 0 && e.expire_at <= self.expiry_now()
    }

    /// The clock deadlines are judged by: while loading, no key is expired (Redis's
    /// keyIsExpired), so a log replays to the state it recorded whatever the time.
    fn expiry_now(&self) -> u64 {
        expiry_clock(self.loading, self.now)
    }

    pub fn set_loading(&mut self, loading: bool) {
        self.loading = loading;
    }

    /// The one lookup every access goes through: a live entry, or None after deleting the key
    /// if its deadline has passed (counted, signalled, removed from the expiry index).
    fn live(&mut self, key: &[u8], h: usize) -> Option<&mut Entry> {
        live(&mut self.keys, &mut self.side, expiry_clock(self.loading, self.now), key, h).map(|(_, e)| e)
    }

    /// The hash [`Db::prefetch`] takes for `key`.
    pub fn key_hash(&self, key: &[u8]) -> usize {
        self.keys.hash(key)
    }

    /// Starts loading the keyspace entries of a pipeline's next keys (by hash) together, so
    /// their cache misses overlap; see [`Dict::prefetch_node`].
    pub fn prefetch(&self, hashes: &[usize]) {
        for &h in hashes {
            self.keys.prefetch_bucket(h);
        }
        for &h in hashes {
            self.keys.prefetch_node(h);
        }
    }

    /// Second stage of a pipeline's prefetch: for requests naming a member of a collection
    /// (HSET h f, SADD s m, ZSCORE z m ...), given as (key, key hash, member hash), starts
    /// loading the member's entry in a large collection's own table, whose misses otherwise
    /// dominate such a command (a 100k-field hash: ~30% of HSET's CPU at -P 32). The keys'
    /// own entries were prefetched just before. Only reads: a key past its deadline is
    /// prefetched like any other.
    pub fn prefetch_members(&self, reqs: &[(&[u8], usize, usize)]) {
        for node in [false, true] {
            for &(key, kh, mh) in reqs {
                if let Some((_, e)) = self.keys.get_entry_hashed(key, kh) {
                    e.value.prefetch_member(mh, node);
                }
            }
        }
    }

    /// Deletes `key` if its deadline has passed. Returns true if it did.
    pub fn expire_if_needed(&mut self, key: &[u8]) -> bool {
        let h = self.keys.hash(key);
        let before = self.side.stats.expired_keys;
        self.live(key, h);
        self.side.stats.expired_keys != before
    }

    /// Read access for commands: counts hits/misses and stamps the LRU clock.
    pub fn get(&mut self, key: &[u8]) -> Option<&Value> {
        self.lookup(key, true)
    }

    /// Read access that counts hits/misses but leaves the LRU clock alone (EXISTS, TYPE,
    /// TTL: Redis's LOOKUP_NOTOUCH).
    pub fn get_notouch(&mut self, key: &[u8]) -> Option<&Value> {
        self.lookup(key, false)
    }

    fn lookup(&mut self, key: &[u8], touch: bool) -> Option<&Value> {
        let (stamping, now) = (self.stamping, self.now);
        let h = self.keys.hash(key);
        match live(&mut self.keys, &mut self.side, expiry_clock(self.loading, self.now), key, h) {
            Some((k, e)) => {
                if !self.side.writing {
                    self.side.stats.keyspace_hits += 1;
                }
                if touch {
                    k.set_stamp(stamping.touch(k.stamp(), now));
                }
                Some(&e.value)
            }
            None => {
                // Lookups of write commands count no hit or miss and raise no keymiss (Redis's
                // lookupKeyWrite).
                if !self.side.writing {
                    self.side.stats.keyspace_misses += 1;
                    self.side.notify(notify::KEY_MISS, "keymiss", key);
                }
                None
            }
        }
    }

    /// Read access without touching stats or the LRU clock (OBJECT, TTL-like introspection, SCAN filters).
    pub fn peek(&mut self, key: &[u8]) -> Option<&Entry> {
        let h = self.keys.hash(key);
        self.live(key, h).map(|e| &*e)
    }

    /// A side-effect-free view (an expired key reads as missing but is not deleted), so a
    /// command can hold several values at once. Call [`Db::get`] on each key first when the
    /// access should count in the stats and LRU clock.
    pub fn view(&self, key: &[u8]) -> Option<&Value> {
        self.keys.get(key).filter(|e| !self.is_expired(e)).map(|e| &e.value)
    }

    pub fn contains(&mut self, key: &[u8]) -> bool {
        self.peek(key).is_some()
    }

    /// Snapshot hook: before `key` changes, a running snapshot that has not written it yet
    /// writes its current value (see keyspace::snapshot).
    #[inline]
    fn before_change(&mut self, key: &[u8]) {
        if let Some(s) = self.side.snap.as_deref_mut()
            && !s.is_done(key)
        {
            let cur = self.keys.get_entry(key).map(|(k, e)| (&e.value, e.expire_at(), k.stamp()));
            s.capture(key, cur);
        }
    }

    /// Write access: the key is considered modified (WATCH is broken) once this returns Some.
    pub fn get_mut(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.before_change(key);
        let h = self.keys.hash(key);
        let (stamping, now) = (self.stamping, self.now);
        let (k, e) = live(&mut self.keys, &mut self.side, expiry_clock(self.loading, self.now), key, h)?;
        self.side.signal(key);
        self.side.count(key, 1);
        k.set_stamp(stamping.touch(k.stamp(), now));
        Some(&mut e.value)
    }

    /// Write access that does not yet count as a change: for writes that may turn out to be
    /// no-ops (SADD of present members, ZADD without effect, consumer-group bookkeeping), which
    /// Redis does not signal. Call [`Db::signal_modified`] once something changed.
    pub fn get_mut_quiet(&mut self, key: &[u8]) -> Option<&mut Value> {
        self.before_change(key);
        let h = self.keys.hash(key);
        let (stamping, now) = (self.stamping, self.now);
        let (k, e) = live(&mut self.keys, &mut self.side, expiry_clock(self.loading, self.now), key, h)?;
        k.set_stamp(stamping.touch(k.stamp(), now));
        Some(&mut e.value)
    }

    /// Wakes clients blocked on `key` without counting as a modification (XGROUP DESTROY
    /// ends blocked XREADGROUPs; WATCH and client caches are unaffected, as in Redis).
    pub fn signal_ready(&mut self, key: &[u8]) {
        let side = &mut self.side;
        if !side.blocked.is_empty() && side.blocked.contains_key(key) && !side.ready.iter().any(|k| &k[..] == key) {
            side.ready.push(Bytes::copy_from_slice(key));
        }
    }

    /// SET semantics: insert or overwrite. The TTL is dropped unless `keep_ttl`.
    pub fn set(&mut self, key: &[u8], value: Value, keep_ttl: bool) {
        self.before_change(key);
        self.signal_modified(key);
        let (stamping, now) = (self.stamping, self.now);
        let h = self.keys.hash(key);
        let mut value = value;
        index_new(&mut self.side, &mut value, h);
        if let Some((k, e)) = live(&mut self.keys, &mut self.side, expiry_clock(self.loading, self.now), key, h) {
            unindex_fields(&mut self.side, &e.value, h);
            e.value = value;
            k.set_stamp(stamping.touch(k.stamp(), now));
            let dropped = if !keep_ttl && e.expire_at != 0 { std::mem::replace(&mut e.expire_at, 0) } else { 0 };
            if dropped != 0 {
                unindex(&mut self.side, dropped, h);
            }
            return;
        }
        // An expired key kept for now (see `live`) is replaced, never duplicated.
        if self.side.expire_paused {
            self.remove_entry(key);
        }
        self.keys.insert_new_guarded(
            Key::new(key, stamping.initial(now)),
            Entry { value, expire_at: 0 },
            h,
            crate::alloc::room_for,
        );
        self.side.slot_added(key, h);
        self.side.notify(notify::NEW, "new", key);
    }

    /// Removes a key; returns its value.
    pub fn remove(&mut self, key: &[u8]) -> Option<Value> {
        self.before_change(key);
        let h = self.keys.hash(key);
        // While expiry is left to someone else (a replica's master, CLIENT PAUSE) an expired
        // key reads as missing but is still there, and a DEL does remove it (Redis deletes
        // after expireIfNeeded declined to): the master's DEL of an expired key.
        if self.live(key, h).is_none() && !(self.side.expire_paused && self.keys.contains_key(key)) {
            return None;
        }
        let v = self.remove_entry(key)?;
        self.signal_modified(key);
        Some(v)
    }

    fn remove_entry(&mut self, key: &[u8]) -> Option<Value> {
        let (_, e) = self.keys.remove(key)?;
        self.side.slot_removed(key);
        let h = self.keys.hash(key);
        if e.expire_at != 0 {
            unindex(&mut self.side, e.expire_at, h);
        }
        unindex_fields(&mut self.side, &e.value, h);
        Some(e.value)
    }

    /// Takes a key out with its deadline (RENAME, MOVE).
    pub fn take(&mut self, key: &[u8]) -> Option<(Value, Option<u64>)> {
        self.before_change(key);
        self.expire_if_needed(key);
        let (_, e) = self.keys.remove(key)?;
        self.side.slot_removed(key);
        let h = self.keys.hash(key);
        if e.expire_at != 0 {
            unindex(&mut self.side, e.expire_at, h);
        }
        unindex_fields(&mut self.side, &e.value, h);
        self.signal_modified(key);
        let exp = e.expire_at();
        Some((e.value, exp))
    }

    /// Sets (Some) or removes (None) a key's deadline. False if the key does not exist.
    pub fn set_expire(&mut self, key: &[u8], at: Option<u64>) -> bool {
        self.before_change(key);
        self.expire_if_needed(key);
        let Some(e) = self.keys.get_mut(key) else {
            return false;
        };
        let old = std::mem::replace(&mut e.expire_at, at.unwrap_or(0));
        let h = self.keys.hash(key);
        if old != 0 {
            unindex(&mut self.side, old, h);
        }
        if let Some(at) = at {
            self.side.expires.insert(Slot::new(at, h));
            if self.side.remember_local {
                self.side.local_volatile.insert(key.into());
            }
        }
        self.signal_modified(key);
        true
    }

    /// Who runs the next commands on a replica: one of its own clients (`remember_local`,
    /// Redis's rememberSlaveKeyWithExpire), or its master.
    pub fn set_replica_client(&mut self, local: bool, master: bool) {
        self.side.remember_local = local;
        self.side.master_client = master;
    }

    /// A replica's own volatile keys whose deadline passed are deleted (Redis's
    /// expireSlaveKeys); keys gone or without a deadline are forgotten. Returns how many
    /// were deleted.
    pub fn expire_local_keys(&mut self) -> usize {
        if self.side.local_volatile.is_empty() {
            return 0;
        }
        let now = self.now;
        let mut due = Vec::new();
        self.side.local_volatile.retain(|k| match self.keys.get(&k[..]) {
            Some(e) if e.expire_at != 0 && e.expire_at <= now => {
                due.push(k.clone());
                false
            }
            Some(e) => e.expire_at != 0,
            None => false,
        });
        for k in &due {
            self.before_change(k);
            if self.remove_entry(k).is_some() {
                self.side.stats.expired_keys += 1;
                self.side.signal(k);
                self.side.notify(notify::EXPIRED, "expired", k);
            }
        }
        due.len()
    }

    pub fn expire_of(&mut self, key: &[u8]) -> Option<Option<u64>> {
        self.peek(key).map(|e| e.expire_at())
    }

    /// Active expiry: deletes up to `max` keys whose deadline has passed, oldest first.
    /// Returns how many were deleted.
    pub fn expire_due(&mut self, max: usize, mut reclaimed: impl FnMut(u64)) -> usize {
        let mut n = 0;
        while n < max {
            let Some(slot) = self.side.expires.first() else {
                break;
            };
            if slot.at > self.now {
                break;
            }
            let key = indexed_key(&self.keys, slot).map(|(k, _)| SmallBytes::new(k));
            // Unreachable while the index is kept in step; the entry goes either way.
            self.side.expires.pop_first();
            if let Some(key) = key {
                self.before_change(&key);
                if let Some((_, e)) = self.keys.remove(&key) {
                    self.side.slot_removed(&key);
                    unindex_fields(&mut self.side, &e.value, self.keys.hash(&key));
                }
                self.side.stats.expired_keys += 1;
                // Expiry signals (WATCH, caches, waiters) but is no change of its own: it is
                // propagated as a DEL (Redis does not count it dirty either).
                self.side.signal(&key);
                if self.side.record_dels {
                    self.side.propagate_del.push(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(&key)]);
                }
                self.side.notify(notify::EXPIRED, "expired", &key);
                reclaimed(slot.at);
            }
            n += 1;
        }
        n
    }

    /// Keys whose deadline has passed but that are not reclaimed yet, counting at most `limit`.
    pub fn stale_count(&self, limit: usize) -> usize {
        self.side.expires.iter().take_while(|s| s.at <= self.now).take(limit).count()
    }

    /// Whether any key (or hash field) is due for active expiry.
    pub fn has_due(&self) -> bool {
        self.side.expires.first().is_some_and(|s| s.at <= self.now)
            || self.side.hexpires.first().is_some_and(|s| s.at < self.now)
    }

    /// Average remaining TTL in ms over volatile keys (INFO keyspace `avg_ttl`), sampled cheaply.
    pub fn avg_ttl(&self) -> u64 {
        let mut sum = 0u128;
        let mut n = 0u128;
        for s in self.side.expires.iter().take(64) {
            sum += s.at.saturating_sub(self.now) as u128;
            n += 1;
        }
        sum.checked_div(n).unwrap_or(0) as u64
    }

    pub fn random_key<R: Rng + ?Sized>(&mut self, rng: &mut R) -> Option<Bytes> {
        // Like Redis, retry a bounded number of times when we keep drawing expired keys.
        for _ in 0..100 {
            let k = {
                let (k, _) = self.keys.random(rng)?;
                Bytes::copy_from_slice(k)
            };
            if !self.expire_if_needed(&k) {
                return Some(k);
            }
        }
        None
    }

    /// One SCAN step over the key table. Expired keys are filtered by the caller via `peek`.
    pub fn scan(&self, cursor: u64, mut f: impl FnMut(&[u8], &Entry)) -> u64 {
        self.keys.scan(cursor, |k, e| f(k, e))
    }

    pub fn is_live(&self, e: &Entry) -> bool {
        !self.is_expired(e)
    }

    /// Logs expired and evicted keys for the AOF (see server::aof).
    pub fn set_record_dels(&mut self, on: bool) {
        self.side.record_dels = on;
    }

    pub fn take_propagate_del(&mut self) -> Vec<Vec<Bytes>> {
        std::mem::take(&mut self.side.propagate_del)
    }

    /// A key's deadline without expiring it (AOF logging right after a command).
    pub fn expire_at_of(&self, key: &[u8]) -> Option<u64> {
        self.keys.get(key).and_then(|e| e.expire_at())
    }

    /// Every key with its entry and access stamp (RDB writers record idle time / frequency).
    pub fn iter_stamped(&self) -> impl Iterator<Item = (&[u8], &Entry, u32)> {
        self.keys.iter().map(|(k, e)| (&**k, e, k.stamp()))
    }

    /// Sets a key's access stamp from persisted data (see `Stamping::restored`).
    pub fn restore_stamp(&mut self, key: &[u8], idle_secs: Option<u64>, freq: Option<u8>) {
        let (stamping, now) = (self.stamping, self.now);
        if let Some(stamp) = stamping.restored(idle_secs, freq, now) {
            let h = self.keys.hash(key);
            if let Some((k, _)) = self.keys.lookup_mut(key, h, |_| false, |_, _| {}) {
                k.set_stamp(stamp);
            }
        }
    }

    pub fn stamping(&self) -> Stamping {
        self.stamping
    }

    /// A stored value and whether it has a deadline, expired or not (DEBUG DIGEST-VALUE).
    pub fn iter_entry(&self, key: &[u8]) -> Option<(&Value, bool)> {
        self.keys.get(key).map(|e| (&e.value, e.expire_at != 0))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &Entry)> {
        self.keys.iter().map(|(k, e)| (&**k, e))
    }

    /// Deletes everything, signalling watchers of existing keys. Returns the number removed.
    pub fn flush(&mut self) -> usize {
        // A running snapshot must keep what is about to go.
        self.snapshot_complete();
        let n = self.keys.len();
        self.touch_all_watched();
        // Waiters on keys that go are told (a blocked XREADGROUP learns its stream is gone).
        self.signal_blocked_keys();
        self.keys.clear();
        self.side.expires.clear();
        self.side.hexpires.clear();
        self.side.local_volatile.clear();
        if let Some(idx) = self.side.slots.as_deref_mut() {
            idx.clear();
        }
        self.side.changes.add(n as u64);
        n
    }

    /// [`Db::flush`] that hands back the old contents instead of freeing them here (FLUSHALL
    /// ASYNC frees them on the lazy free thread), with the number of keys.
    pub fn flush_taking(&mut self) -> (Box<dyn Send>, usize) {
        self.snapshot_complete();
        let n = self.keys.len();
        self.touch_all_watched();
        self.signal_blocked_keys();
        let contents = std::mem::take(&mut self.keys);
        self.side.expires.clear();
        self.side.hexpires.clear();
        self.side.local_volatile.clear();
        if let Some(idx) = self.side.slots.as_deref_mut() {
            idx.clear();
        }
        self.side.changes.add(n as u64);
        (Box::new(contents), n)
    }

    /// Incremental housekeeping from cron: rehash steps and shrinking.
    pub fn cron(&mut self, rehash_steps: usize) {
        self.keys.shrink_if_needed();
        self.keys.rehash(rehash_steps);
        if let Some(idx) = self.side.slots.as_deref_mut() {
            let keys = &self.keys;
            idx.compact_step(|slot, h| {
                let mut found = false;
                keys.with_hash(h, |k, _| found |= crate::cluster::key_slot(k) as usize == slot);
                found
            });
        }
    }

    /// Marks `key` changed (after a [`Db::get_mut_quiet`] write that changed something):
    /// WATCH, client caches and waiters are signalled and one change is counted.
    pub fn signal_modified(&mut self, key: &[u8]) {
        self.side.signal(key);
        self.side.count(key, 1);
    }

    /// [`Db::signal_modified`] for a write that changed `n` elements of `key` (members added,
    /// fields removed): Redis counts each toward save points. Nothing is signalled for 0.
    pub fn signal_changes(&mut self, key: &[u8], n: usize) {
        if n > 0 {
            self.side.signal(key);
            self.side.count(key, n as u64);
        }
    }

    /// Signals `key` as a change would (WATCH, client caches) without counting one: for
    /// writes Redis signals even when they changed nothing (an LTRIM that kept everything).
    pub fn signal_unchanged(&mut self, key: &[u8]) {
        self.side.signal(key);
    }

    /// Counts a change Redis makes without signalling it (consumer-group state, XSETID):
    /// WATCH and client caches are untouched, but the change is logged and propagated.
    pub fn unsignalled_change(&mut self, key: &[u8], n: usize) {
        self.side.count(key, n as u64);
    }

    /// Counts this database's changes in `changes` (the server's, shared by its databases).
    pub fn count_changes_in(&mut self, changes: &Changes) {
        self.side.changes = changes.clone();
    }

    /// Raises a keyspace event of `class` for `key` (kept only if the class is enabled).
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        self.side.notify(class, event, key);
    }

    /// Whether the running command is a write command: its lookups then count no keyspace
    /// hit or miss and raise no `keymiss` event.
    pub fn set_writing(&mut self, writing: bool) {
        self.side.writing = writing;
    }

    pub fn set_notify_mask(&mut self, mask: u32) {
        self.side.notify_mask = mask;
    }

    pub fn notify_mask(&self) -> u32 {
        self.side.notify_mask
    }

    /// Raised events, oldest first, for the server to publish.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.side.events)
    }

    pub fn has_events(&self) -> bool {
        !self.side.events.is_empty()
    }

    /// Starts or stops collecting modified keys for client-side caching invalidation.
    pub fn set_track_modified(&mut self, on: bool) {
        self.side.track_modified = on;
        if !on {
            self.side.modified.clear();
        }
    }

    /// Keys modified since the last call (only while tracking is on).
    pub fn take_modified(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.side.modified)
    }

    pub fn has_modified(&self) -> bool {
        !self.side.modified.is_empty()
    }

    pub fn stats(&self) -> DbStats {
        self.side.stats
    }

    pub fn reset_stats(&mut self) {
        self.side.stats = DbStats::default();
    }

    /// CLIENT PAUSE starts (true) or ends (false): see [`live`].
    pub fn set_expire_paused(&mut self, paused: bool) {
        self.side.expire_paused = paused;
    }

    /// Starts this database's part of a snapshot at `at_ms` (see keyspace::snapshot).
    /// Starts a snapshot; `record_access` (LRU / LFU policies) writes keys' IDLE / FREQ.
    pub fn start_snapshot(&mut self, opts: SaveOptions, at_ms: u64, record_access: bool) {
        let access = record_access.then_some(self.stamping);
        self.side.snap = Some(Box::new(DbSnap::new(opts, at_ms, self.keys.len(), access)));
    }

    /// Walks the key table for at least `max` keys (or to the end), writing keys not yet
    /// written. True once every key of the snapshot instant is written.
    pub fn snapshot_step(&mut self, max: usize) -> bool {
        let Some(s) = self.side.snap.as_deref_mut() else { return true };
        if s.complete {
            return true;
        }
        if self.keys.is_empty() {
            s.complete = true;
            return true;
        }
        let mut n = 0;
        loop {
            let next = self.keys.scan(s.cursor, |k, e| {
                s.capture(k, Some((&e.value, e.expire_at(), k.stamp())));
                n += 1;
            });
            s.cursor = next;
            if next == 0 {
                s.complete = true;
                return true;
            }
            if n >= max {
                return false;
            }
        }
    }

    /// No snapshot is walking this database (none runs, or its walk is complete: changes no
    /// longer concern it).
    pub fn snapshot_walked(&self) -> bool {
        self.side.snap.as_deref().is_none_or(|s| s.complete)
    }

    /// Finishes the walk at once (FLUSHDB, SWAPDB during a snapshot).
    pub fn snapshot_complete(&mut self) {
        while !self.snapshot_step(usize::MAX) {}
    }

    /// Records produced since the last call.
    pub fn take_snapshot_bytes(&mut self) -> Vec<u8> {
        self.side.snap.as_deref_mut().map(|s| s.writer.take_bytes()).unwrap_or_default()
    }

    pub fn snapshot_pending(&self) -> usize {
        self.side.snap.as_deref().map_or(0, |s| s.writer.pending())
    }

    /// Keys the running snapshot wrote so far.
    pub fn snapshot_written(&self) -> usize {
        self.side.snap.as_deref().map_or(0, |s| s.written())
    }

    /// Bookkeeping bytes of the running snapshot.
    pub fn snapshot_overhead(&self) -> usize {
        self.side.snap.as_deref().map_or(0, |s| s.overhead())
    }

    /// Ends this database's part of a snapshot, handing back its state (the caller frees it
    /// off the event loop: the set of written keys can hold millions of entries).
    pub fn end_snapshot(&mut self) -> Option<Box<DbSnap>> {
        self.side.snap.take()
    }

    /// Exchanges contents (keys and deadlines) with another db, keeping each side's watchers.
    pub fn swap_contents(&mut self, other: &mut Db) {
        std::mem::swap(&mut self.keys, &mut other.keys);
        std::mem::swap(&mut self.side.expires, &mut other.side.expires);
        std::mem::swap(&mut self.side.hexpires, &mut other.side.hexpires);
        // Slot counts stay with the side that keeps them, recounted for its new keys.
        for db in [&mut *self, &mut *other] {
            if db.side.slots.is_some() {
                db.index_slots();
            }
        }
        self.side.changes.add(1);
        // Clients blocked in either database may have data now (or lost their stream).
        self.signal_blocked_keys();
        other.signal_blocked_keys();
    }

    /// Up to `n` random keys with their stamps and deadlines (eviction sampling).
    pub fn sample_keys<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<(Bytes, u32, Option<u64>)> {
        let mut out = Vec::with_capacity(n.min(self.keys.len()));
        self.keys.some(n, rng, |k, e| out.push((Bytes::copy_from_slice(k), k.stamp(), e.expire_at())));
        out
    }

    /// Up to `n` keys with a TTL, starting at a random point of the deadline order (eviction
    /// sampling for the `volatile-*` policies).
    pub fn sample_volatile<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Vec<(Bytes, u32, Option<u64>)> {
        use rand::RngExt;
        let (Some(lo), Some(hi)) = (self.side.expires.first(), self.side.expires.last()) else {
            return Vec::new();
        };
        let from = rng.random_range(lo.at..=hi.at);
        self.side
            .expires
            .iter_from(from)
            .chain(self.side.expires.iter())
            .take(n.min(self.side.expires.len()))
            .filter_map(|slot| self.volatile_entry(slot))
            .collect()
    }

    /// The `n` keys with the earliest deadlines (volatile-ttl: exact, not sampled).
    pub fn earliest_volatile(&self, n: usize) -> Vec<(Bytes, u32, Option<u64>)> {
        self.side.expires.iter().take(n).filter_map(|slot| self.volatile_entry(slot)).collect()
    }

    /// The key behind an expiry-index entry, with its stamp and deadline.
    fn volatile_entry(&self, slot: Slot) -> Option<(Bytes, u32, Option<u64>)> {
        let (k, e) = indexed_key(&self.keys, slot)?;
        Some((Bytes::copy_from_slice(k), k.stamp(), e.expire_at()))
    }

    /// Evicts `key`: what removing it freed by `used` (the allocator's count), measured
    /// around the removal alone as Redis measures it; None if it was not there.
    pub fn evict(&mut self, key: &[u8], used: &dyn Fn() -> usize) -> Option<usize> {
        self.before_change(key);
        let before = used();
        drop(self.remove_entry(key)?);
        let freed = before.saturating_sub(used());
        // Like expiry: signalled, propagated as DEL, not counted as a change.
        self.side.signal(key);
        if self.side.record_dels {
            self.side.propagate_del.push(vec![Bytes::from_static(b"DEL"), Bytes::copy_from_slice(key)]);
        }
        self.side.notify(notify::EVICTED, "evicted", key);
        Some(freed)
    }

    /// A live key's access stamp, without touching it (OBJECT IDLETIME/FREQ, DEBUG OBJECT).
    pub fn stamp(&mut self, key: &[u8]) -> Option<u32> {
        let h = self.keys.hash(key);
        live(&mut self.keys, &mut self.side, expiry_clock(self.loading, self.now), key, h).map(|(k, _)| k.stamp())
    }

    /// A key's entry and access stamp as stored, expired or not, touching nothing (DEBUG
    /// OBJECT looks at the table directly, as Redis's does).
    pub fn raw_entry(&self, key: &[u8]) -> Option<(&Entry, u32)> {
        self.keys.get_entry(key).map(|(k, e)| (e, k.stamp()))
    }
}

#[cfg(test)]
mod tests;
