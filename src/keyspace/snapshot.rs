//! A database's part of a point-in-time snapshot taken without fork and without copying the
//! dataset (BGSAVE).
//!
//! When a snapshot starts, every database gets a [`DbSnap`]. The server then walks each key
//! table with the SCAN cursor in short slices between event-loop iterations, serialising each
//! key it meets. Before any change to a key (write access, overwrite, delete, TTL change,
//! expiry, eviction, flush) the database serialises the key's current value first if the
//! walk has not written it yet, and remembers the key as done; a key created after the start
//! is remembered as done without a record. So the file holds every key exactly once, as it
//! was when BGSAVE ran, while the server keeps serving. Only the names of keys already
//! written are kept (the walk's progress), never a copy of the data; records are handed to a
//! writer thread as they are produced.

use std::collections::HashSet;

use crate::keyspace::evict::Stamping;
use crate::persistence::rdb::{SaveOptions, Writer};
use crate::types::Value;

pub struct DbSnap {
    /// The snapshot instant (access stamps are measured from it). Keys whose deadline passed
    /// but that are still there are written, as Redis writes them: a master loading the file
    /// skips them, a replica keeps them until its master's DEL.
    pub at_ms: u64,
    /// Keys written, or absent at the start and created since (never to be written).
    done: HashSet<Box<[u8]>>,
    /// What the names in `done` cost, kept as it grows (INFO reads it while the walk runs).
    done_bytes: usize,
    /// Records written so far (INFO's `current_save_keys_processed`).
    written: usize,
    /// Records produced and not yet handed to the writer.
    pub writer: Writer,
    /// Walk position; `complete` once every key present at the start has been written, after
    /// which changes no longer matter to this snapshot.
    pub cursor: u64,
    pub complete: bool,
    /// Under LRU / LFU policies, how to turn access stamps into the IDLE / FREQ a record
    /// carries (as SAVE writes them), measured at the snapshot instant.
    access: Option<Stamping>,
}

impl DbSnap {
    /// `keys` is the database's size: the set of written keys is sized for it up front, so it
    /// never rehashes (a stall of milliseconds at a million keys) while the walk runs.
    pub fn new(opts: SaveOptions, at_ms: u64, keys: usize, access: Option<Stamping>) -> DbSnap {
        let done = HashSet::with_capacity(keys + keys / 8 + 16);
        DbSnap {
            at_ms,
            done,
            done_bytes: 0,
            written: 0,
            writer: Writer::records(opts),
            cursor: 0,
            complete: false,
            access,
        }
    }

    /// Writes `key` as it is now unless already done; `current` is its value, deadline and
    /// access stamp, or None if it does not exist.
    pub fn capture(&mut self, key: &[u8], current: Option<(&Value, Option<u64>, u32)>) {
        if self.complete || self.done.contains(key) {
            return;
        }
        if let Some((v, at, stamp)) = current {
            let (idle, freq) = self.access.map_or((None, None), |st| st.persisted(stamp, self.at_ms));
            self.writer.key_with_access(key, v, at, idle, freq);
            self.written += 1;
        }
        self.done.insert(key.into());
        self.done_bytes += key.len().next_multiple_of(8);
    }

    pub fn is_done(&self, key: &[u8]) -> bool {
        self.complete || self.done.contains(key)
    }

    /// Bytes of bookkeeping (INFO, the memory target of forkless snapshots).
    pub fn overhead(&self) -> usize {
        // The set's table (a boxed slice and a control byte per slot), the names, the records.
        let table = self.done.capacity() * (std::mem::size_of::<Box<[u8]>>() + 1);
        table + self.done_bytes + self.writer.pending()
    }

    pub fn written(&self) -> usize {
        self.written
    }
}
