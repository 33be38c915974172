//! Client-side caching: CLIENT TRACKING and invalidation messages, as Redis 7.0 does them.
//!
//! * **Default mode**: after a read-only command of a tracking client, the keys it read are
//!   remembered (key → client ids). When such a key is modified (any write, expiry, eviction),
//!   every remembered client gets one `invalidate` message and the key is forgotten until read
//!   again. `tracking-table-max-keys` bounds the table: over it, arbitrary keys are invalidated
//!   and forgotten as if modified.
//! * **BCAST mode**: nothing is remembered per key; a client registers prefixes and every
//!   modified key matching one is queued per prefix, then sent as one message per prefix when
//!   the event loop is about to sleep (Redis's beforeSleep), so a pipeline's writes batch.
//! * **Where messages go**: to the client itself as a RESP3 push, or with REDIRECT to another
//!   client: a RESP3 push there, or a `__redis__:invalidate` Pub/Sub message if that client is
//!   RESP2 and subscribed. Invalidations caused by a client's own command are sent after that
//!   command's reply (and after the whole EXEC), never interleaved with it.
//! * FLUSHDB/FLUSHALL send one invalidation with a null payload ("everything") to every
//!   tracking client and clear the table.
//!
//! Keys are global across databases, as in Redis.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use bytes::{BufMut, Bytes, BytesMut};

use crate::keyspace::ClientId;
use crate::protocol::{Fanout, Reply};
use crate::server::{ServerState, Session};

/// A client's tracking options (Session::tracking is Some while tracking is on).
#[derive(Debug, Clone, Default)]
pub struct TrackingOpts {
    /// Client receiving the invalidations; 0 = this connection.
    pub redirect: ClientId,
    pub bcast: bool,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// The redirect target disconnected.
    pub broken_redirect: bool,
    pub prefixes: BTreeSet<Bytes>,
}

#[derive(Debug, Default)]
struct Prefix {
    clients: BTreeSet<ClientId>,
    /// Modified keys waiting for the broadcast, with the client that last changed each (0 for
    /// the server itself: expiry, eviction), so NOLOOP clients can skip their own writes.
    pending: BTreeMap<Bytes, ClientId>,
}

/// What an invalidation message carries.
pub enum Payload<'a> {
    Key(&'a [u8]),
    /// An already encoded array of keys (BCAST).
    Encoded(&'a [u8]),
    /// Everything (after a flush): a null in the tracking client's protocol.
    All,
}

#[derive(Debug, Default)]
pub struct Tracking {
    keys: HashMap<Bytes, BTreeSet<ClientId>>,
    items: usize,
    prefixes: BTreeMap<Bytes, Prefix>,
    /// Clients with tracking on (INFO tracking_clients).
    pub clients: usize,
}

impl Tracking {
    pub fn total_keys(&self) -> usize {
        self.keys.len()
    }

    pub fn total_items(&self) -> usize {
        self.items
    }

    pub fn total_prefixes(&self) -> usize {
        self.prefixes.len()
    }

    /// Registers `id` for the keys a read-only command just read.
    pub fn remember(&mut self, id: ClientId, keys: impl Iterator<Item = Bytes>) {
        for k in keys {
            if self.keys.entry(k).or_default().insert(id) {
                self.items += 1;
            }
        }
    }

    /// Forgets `key` and returns the clients that may have cached it. Queues it for the BCAST
    /// prefixes it matches when `bcast` (a real modification, not a table eviction).
    fn take_key(&mut self, key: &[u8], modifier: ClientId, bcast: bool) -> Option<BTreeSet<ClientId>> {
        if bcast {
            for (p, state) in self.prefixes.iter_mut() {
                if key.starts_with(p) {
                    state.pending.insert(Bytes::copy_from_slice(key), modifier);
                }
            }
        }
        let ids = self.keys.remove(key)?;
        self.items -= ids.len();
        Some(ids)
    }

    /// An arbitrary remembered key (for `tracking-table-max-keys`).
    fn any_key(&self) -> Option<Bytes> {
        self.keys.keys().next().cloned()
    }

    fn clear_keys(&mut self) {
        self.keys.clear();
        self.items = 0;
    }

    fn add_prefix(&mut self, prefix: &Bytes, id: ClientId) {
        self.prefixes.entry(prefix.clone()).or_default().clients.insert(id);
    }

    fn remove_prefix(&mut self, prefix: &[u8], id: ClientId) {
        if let Some(p) = self.prefixes.get_mut(prefix) {
            p.clients.remove(&id);
            if p.clients.is_empty() {
                self.prefixes.remove(prefix);
            }
        }
    }

    pub fn has_broadcasts(&self) -> bool {
        self.prefixes.values().any(|p| !p.pending.is_empty())
    }
}

/// Why CLIENT TRACKING ON was refused (Redis's texts).
pub fn check_prefixes(existing: &BTreeSet<Bytes>, new: &[&[u8]]) -> Result<(), String> {
    let overlap = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    let show = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for (i, p) in new.iter().enumerate() {
        if let Some(e) = existing.iter().find(|e| overlap(e, p)) {
            return Err(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                show(p),
                show(e)
            ));
        }
        if let Some(q) = new[i + 1..].iter().find(|q| overlap(p, q)) {
            return Err(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                show(p),
                show(q)
            ));
        }
    }
    Ok(())
}

fn encode_keys<'a>(keys: impl Iterator<Item = &'a Bytes>, n: usize) -> BytesMut {
    let mut b = BytesMut::new();
    b.put_slice(format!("*{n}\r\n").as_bytes());
    for k in keys {
        b.put_slice(format!("${}\r\n", k.len()).as_bytes());
        b.put_slice(k);
        b.put_slice(b"\r\n");
    }
    b
}

impl ServerState {
    /// Turns tracking on for `sess` (or changes its options), keeping earlier BCAST prefixes.
    pub fn enable_tracking(&mut self, sess: &mut Session, mut opts: TrackingOpts, prefixes: Vec<Bytes>) {
        if sess.tracking.is_none() {
            self.tracking.clients += 1;
        }
        if let Some(old) = sess.tracking.take() {
            opts.prefixes = old.prefixes;
        }
        if opts.bcast {
            let new = if prefixes.is_empty() { vec![Bytes::new()] } else { prefixes };
            for p in new {
                self.tracking.add_prefix(&p, sess.id);
                opts.prefixes.insert(p);
            }
        }
        sess.tracking = Some(opts);
        self.refresh_track_modified();
    }

    pub fn disable_tracking(&mut self, sess: &mut Session) {
        let Some(opts) = sess.tracking.take() else { return };
        for p in &opts.prefixes {
            self.tracking.remove_prefix(p, sess.id);
        }
        self.tracking.clients -= 1;
        sess.caching = false;
        self.refresh_track_modified();
    }

    /// Modified keys are collected while some client tracks keys or the AOF logs them.
    pub fn refresh_track_modified(&mut self) {
        let aof = self.propagating();
        let on = self.tracking.clients > 0 || aof;
        for db in &mut self.dbs {
            db.set_track_modified(on);
            db.set_record_dels(aof);
        }
    }

    /// Drains the keys modified since the last call, from every database.
    pub fn take_modified_keys(&mut self) -> Vec<(usize, Bytes)> {
        let mut out = Vec::new();
        for (i, db) in self.dbs.iter_mut().enumerate() {
            if db.has_modified() {
                out.extend(db.take_modified().into_iter().map(|k| (i, k)));
            }
        }
        out
    }

    /// After a read-only command: remember its keys for the caller if it tracks them.
    pub fn track_read(&mut self, sess: &mut Session, keys: impl Iterator<Item = Bytes>) {
        let Some(t) = sess.tracking.as_ref() else { return };
        if t.bcast || (t.optin && !sess.caching) || (t.optout && sess.caching) {
            return;
        }
        self.tracking.remember(sess.id, keys);
        let max = self.config.int("tracking-table-max-keys");
        while max > 0 && self.tracking.total_keys() > max as usize {
            // Over the limit: forget an arbitrary key, telling its clients as if it changed.
            let Some(k) = self.tracking.any_key() else { break };
            self.invalidate_key(Some(&mut *sess), &k, false, false);
        }
    }

    /// Sends invalidations for the keys modified since the last call (all databases).
    #[inline]
    pub fn invalidate_modified(&mut self, current: &mut Session) {
        if self.tracking.clients == 0 {
            return;
        }
        let keys = self.take_modified_keys();
        self.invalidate_keys(current, &keys);
    }

    /// Keys changed before the command runs (evictions to make room for it): nobody caused
    /// them, so every client that may cache one hears at once, the caller too, before its
    /// reply (Redis's order).
    pub fn invalidate_before_command(&mut self, current: &mut Session) {
        if self.tracking.clients == 0 {
            return;
        }
        for (_, key) in self.take_modified_keys() {
            let Some(ids) = self.tracking.take_key(&key, 0, true) else { continue };
            for id in ids {
                let live = if id == current.id {
                    current.tracking.as_ref().is_some_and(|t| !t.bcast)
                } else {
                    self.clients.get(&id).and_then(|s| s.tracking.as_ref()).is_some_and(|t| !t.bcast)
                };
                if live {
                    self.send_invalidation(current, id, Payload::Key(&key));
                }
            }
        }
    }

    /// Keeps the tracking table within `tracking-table-max-keys` (a lowered limit takes
    /// effect here, from cron, as in Redis's trackingLimitUsedSlots): arbitrary keys are
    /// forgotten and their clients told, as if the keys changed.
    pub fn enforce_tracking_limit(&mut self) {
        let mut nobody = Session::new(0, String::new(), String::new(), -1, 0);
        self.enforce_tracking_limit_for(&mut nobody);
    }

    /// The same before a command runs (Redis checks before every command): the caller, who
    /// may be one of the clients told, hears before its reply.
    pub fn enforce_tracking_limit_for(&mut self, current: &mut Session) {
        let max = self.hot.tracking_max_keys;
        if max == 0 || self.tracking.clients == 0 || self.tracking.total_keys() <= max {
            return;
        }
        while self.tracking.total_keys() > max {
            let Some(k) = self.tracking.any_key() else { break };
            let Some(ids) = self.tracking.take_key(&k, 0, false) else { continue };
            for id in ids {
                let live = if id == current.id {
                    current.tracking.as_ref().is_some_and(|t| !t.bcast)
                } else {
                    self.clients.get(&id).and_then(|s| s.tracking.as_ref()).is_some_and(|t| !t.bcast)
                };
                if live {
                    self.send_invalidation(current, id, Payload::Key(&k));
                }
            }
        }
    }

    /// Invalidations for these modified keys.
    pub fn invalidate_keys(&mut self, current: &mut Session, keys: &[(usize, Bytes)]) {
        if self.tracking.clients == 0 {
            return;
        }
        for (_, k) in keys {
            self.invalidate_key(Some(&mut *current), k, true, true);
        }
    }

    /// One modified (or forgotten) key: every client that may cache it hears about it, the
    /// caller only after its reply. `by_current` says the caller changed the key (NOLOOP
    /// clients skip their own changes); `current` is None outside any command.
    fn invalidate_key(&mut self, mut current: Option<&mut Session>, key: &[u8], bcast: bool, by_current: bool) {
        let modifier = if by_current { current.as_ref().map_or(0, |s| s.id) } else { 0 };
        let Some(ids) = self.tracking.take_key(key, modifier, bcast) else { return };
        for id in ids {
            if let Some(cur) = current.as_deref_mut()
                && cur.id == id
            {
                match &cur.tracking {
                    Some(t) if !(t.bcast || (t.noloop && by_current)) => {
                        cur.after_reply.push(Some(Bytes::copy_from_slice(key)))
                    }
                    _ => {}
                }
                continue;
            }
            let live = self.clients.get(&id).and_then(|s| s.tracking.as_ref()).is_some_and(|t| !t.bcast);
            if live {
                let mut dummy = Session::new(0, String::new(), String::new(), -1, 0);
                let cur = current.as_deref_mut().unwrap_or(&mut dummy);
                self.send_invalidation(cur, id, Payload::Key(key));
            }
        }
    }

    /// FLUSHDB / FLUSHALL: "everything changed" to every tracking client; the table is cleared.
    pub fn invalidate_all(&mut self, current: &mut Session) {
        if self.tracking.clients > 0 {
            let mut ids: Vec<ClientId> =
                self.clients.iter().filter(|(_, s)| s.tracking.is_some()).map(|(id, _)| *id).collect();
            ids.sort_unstable();
            for id in ids {
                self.send_invalidation(current, id, Payload::All);
            }
            if current.tracking.is_some() {
                current.after_reply.push(None);
            }
        }
        self.tracking.clear_keys();
    }

    /// The caller's own invalidations, after its reply.
    pub fn send_after_reply(&mut self, current: &mut Session) {
        for k in std::mem::take(&mut current.after_reply) {
            let id = current.id;
            match &k {
                Some(k) => self.send_invalidation(current, id, Payload::Key(k)),
                None => self.send_invalidation(current, id, Payload::All),
            }
        }
    }

    /// BCAST: one message per prefix with the keys modified since the last broadcast (called
    /// when the event loop is about to sleep).
    pub fn broadcast_invalidations(&mut self) {
        if !self.tracking.has_broadcasts() {
            return;
        }
        let mut work = Vec::new();
        for p in self.tracking.prefixes.values_mut() {
            if !p.pending.is_empty() {
                work.push((p.clients.iter().copied().collect::<Vec<_>>(), std::mem::take(&mut p.pending)));
            }
        }
        let mut dummy = Session::new(0, String::new(), String::new(), -1, 0);
        for (clients, keys) in work {
            let all = encode_keys(keys.keys(), keys.len());
            for id in clients {
                let noloop = self.clients.get(&id).and_then(|s| s.tracking.as_ref()).is_some_and(|t| t.noloop);
                if noloop {
                    let own: Vec<&Bytes> = keys.iter().filter(|(_, m)| **m != id).map(|(k, _)| k).collect();
                    if !own.is_empty() {
                        let enc = encode_keys(own.iter().copied(), own.len());
                        self.send_invalidation(&mut dummy, id, Payload::Encoded(&enc));
                    }
                } else {
                    self.send_invalidation(&mut dummy, id, Payload::Encoded(&all));
                }
            }
        }
    }

    /// Redis's sendTrackingMessage: resolves the redirect and picks push or Pub/Sub framing.
    fn send_invalidation(&mut self, current: &mut Session, target: ClientId, payload: Payload) {
        let info = if target == current.id { Some(&*current) } else { self.clients.get(&target).map(|b| &**b) };
        let Some((redirect, own_resp)) = info.and_then(|s| s.tracking.as_ref().map(|t| (t.redirect, s.resp))) else {
            return;
        };
        let mut recipient = target;
        if redirect != 0 {
            if redirect != current.id && !self.clients.contains_key(&redirect) {
                let sess = if target == current.id {
                    Some(&mut *current)
                } else {
                    self.clients.get_mut(&target).map(|b| &mut **b)
                };
                let Some(sess) = sess else { return };
                if let Some(t) = sess.tracking.as_mut() {
                    t.broken_redirect = true;
                }
                // Only a RESP3 client can be told (RESP2 has no pushes).
                if sess.resp == 3 {
                    let note = Reply::Push(vec![Reply::bulk_str("tracking-redir-broken"), Reply::Int(redirect as i64)]);
                    self.deliver(current, target, &mut Fanout::new(note));
                }
                return;
            }
            recipient = redirect;
        }
        let (resp, subscribed) = if recipient == current.id {
            (current.resp, current.subs.active())
        } else {
            match self.clients.get(&recipient) {
                Some(s) => (s.resp, s.subs.active()),
                None => return,
            }
        };
        let payload = match payload {
            Payload::Key(k) => Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(k))]),
            Payload::Encoded(b) => Reply::Encoded(Bytes::copy_from_slice(b)),
            // A null in the tracking client's own protocol, whoever receives it (Redis).
            Payload::All => {
                let mut null = BytesMut::new();
                crate::protocol::encode(&Reply::Null, own_resp, &mut null);
                Reply::Encoded(null.freeze())
            }
        };
        // A RESP3 recipient gets a push; a RESP2 one only through a redirect to a connection
        // subscribed to __redis__:invalidate, as a Pub/Sub message.
        let message = if resp == 3 {
            Reply::Push(vec![Reply::bulk_str("invalidate"), payload])
        } else if recipient != target && subscribed {
            Reply::Push(vec![Reply::bulk_str("message"), Reply::bulk_str("__redis__:invalidate"), payload])
        } else {
            return;
        };
        self.deliver(current, recipient, &mut Fanout::new(message));
    }
}
