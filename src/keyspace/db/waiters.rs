//! The database's side of WATCH and of blocking commands: who watches which key, which
//! blocked-on keys changed, and the touches FLUSHALL and SWAPDB give watchers.

use bytes::Bytes;

use super::Db;
use crate::keyspace::ClientId;

impl Db {
    pub fn watch(&mut self, key: &[u8], client: ClientId) {
        let list = self.side.watchers.entry(key.into()).or_default();
        if !list.contains(&client) {
            list.push(client);
        }
    }

    pub fn unwatch(&mut self, key: &[u8], client: ClientId) {
        if let Some(list) = self.side.watchers.get_mut(key) {
            list.retain(|c| *c != client);
            if list.is_empty() {
                self.side.watchers.remove(key);
            }
        }
    }

    /// Flags every watcher of a key that currently exists (FLUSHDB, SWAPDB).
    pub fn touch_all_watched(&mut self) {
        if self.side.watchers.is_empty() {
            return;
        }
        let keys: Vec<Box<[u8]>> = self.side.watchers.keys().filter(|k| self.keys.contains_key(k)).cloned().collect();
        for k in keys {
            self.side.flag_watchers(&k);
        }
    }

    /// Flags watchers of keys live in `self` or `other` (SWAPDB swaps contents under them): a
    /// missing or expired key replaced by another missing or expired one is no change, as in
    /// Redis's touchAllWatchedKeysInDb.
    pub fn touch_watched_existing_in(&mut self, other: &Db) {
        let live = |db: &Db, k: &[u8]| db.keys.get(k).is_some_and(|e| !db.is_expired(e));
        let keys: Vec<Box<[u8]>> =
            self.side.watchers.keys().filter(|k| live(self, k) || live(other, k)).cloned().collect();
        for k in keys {
            self.side.flag_watchers(&k);
        }
    }

    /// Removes watched keys whose deadline has passed without flagging their watchers: after
    /// SWAPDB brought them in already expired, their removal is no change to anybody.
    pub fn expire_watched_quietly(&mut self) {
        let keys: Vec<Box<[u8]>> = self.side.watchers.keys().cloned().collect();
        let watchers = std::mem::take(&mut self.side.watchers);
        for k in keys {
            self.expire_if_needed(&k);
        }
        self.side.watchers = watchers;
    }

    /// A client starts (true) or stops (false) waiting on `key` (blocking commands).
    pub fn set_blocked(&mut self, key: &[u8], waiting: bool) {
        if waiting {
            *self.side.blocked.entry(key.into()).or_default() += 1;
        } else if let Some(n) = self.side.blocked.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                self.side.blocked.remove(key);
            }
        }
    }

    /// Whether a blocked-on key changed since the last [`Db::take_ready`].
    pub fn has_ready(&self) -> bool {
        !self.side.ready.is_empty()
    }

    /// Blocked-on keys that changed since the last call.
    pub fn take_ready(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.side.ready)
    }

    pub fn take_dirty_watchers(&mut self) -> Vec<ClientId> {
        std::mem::take(&mut self.side.dirty_watchers)
    }

    /// Marks every key some client is blocked on as ready (the waiters re-check it).
    pub(super) fn signal_blocked_keys(&mut self) {
        let side = &mut self.side;
        for k in side.blocked.keys() {
            if !side.ready.iter().any(|r| r[..] == k[..]) {
                side.ready.push(Bytes::copy_from_slice(k));
            }
        }
    }
}
