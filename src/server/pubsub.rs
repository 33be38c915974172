//! Pub/Sub bookkeeping: who listens to what.
//!
//! Three namespaces, as in Redis 7.0: channels (SUBSCRIBE), patterns (PSUBSCRIBE, matched with
//! the glob rules of KEYS) and shard channels (SSUBSCRIBE: on a single node they behave like
//! channels but are counted apart). The server keeps name → subscribers in subscription order;
//! each session keeps the names it listens to ([`Subscriptions`]), so unsubscribe-all and a
//! disconnect cost O(own subscriptions).
//!
//! Delivery (encode once per message, copy the bytes into each subscriber's output buffer,
//! enforce `client-output-buffer-limit`) lives in `ServerState::publish`.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;

use crate::keyspace::ClientId;
use crate::protocol::{Fanout, Reply};
use crate::server::Session;
use crate::util::glob::glob_match;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Channel,
    Pattern,
    Shard,
}

impl Kind {
    fn index(self) -> usize {
        self as usize
    }

    pub fn subscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "subscribe",
            Kind::Pattern => "psubscribe",
            Kind::Shard => "ssubscribe",
        }
    }

    pub fn unsubscribe_word(self) -> &'static str {
        match self {
            Kind::Channel => "unsubscribe",
            Kind::Pattern => "punsubscribe",
            Kind::Shard => "sunsubscribe",
        }
    }
}

/// One session's subscriptions.
#[derive(Debug, Default)]
pub struct Subscriptions {
    sets: [HashSet<Bytes>; 3],
}

impl Subscriptions {
    pub fn names(&self, kind: Kind) -> &HashSet<Bytes> {
        &self.sets[kind.index()]
    }

    pub fn len(&self, kind: Kind) -> usize {
        self.sets[kind.index()].len()
    }

    /// The count Redis puts in (un)subscribe confirmations: channels plus patterns, or shard
    /// channels alone for the shard commands.
    pub fn count(&self, kind: Kind) -> usize {
        match kind {
            Kind::Shard => self.len(Kind::Shard),
            _ => self.len(Kind::Channel) + self.len(Kind::Pattern),
        }
    }

    /// Subscribed to anything: a RESP2 client is then in the restricted Pub/Sub context, and its
    /// output buffer is limited by the `pubsub` class.
    pub fn active(&self) -> bool {
        self.sets.iter().any(|s| !s.is_empty())
    }
}

/// The server-wide registry.
#[derive(Debug, Default)]
pub struct PubSub {
    maps: [HashMap<Bytes, Vec<ClientId>>; 3],
}

impl PubSub {
    /// Adds `id` to `name`; false if it was already subscribed.
    pub fn subscribe(&mut self, subs: &mut Subscriptions, kind: Kind, name: &Bytes, id: ClientId) -> bool {
        if !subs.sets[kind.index()].insert(name.clone()) {
            return false;
        }
        self.maps[kind.index()].entry(name.clone()).or_default().push(id);
        true
    }

    /// Removes `id` from `name`; false if it was not subscribed.
    pub fn unsubscribe(&mut self, subs: &mut Subscriptions, kind: Kind, name: &[u8], id: ClientId) -> bool {
        if !subs.sets[kind.index()].remove(name) {
            return false;
        }
        let map = &mut self.maps[kind.index()];
        if let Some(list) = map.get_mut(name) {
            list.retain(|c| *c != id);
            if list.is_empty() {
                map.remove(name);
            }
        }
        true
    }

    /// Drops every subscription of a session (disconnect, RESET).
    pub fn forget(&mut self, subs: &mut Subscriptions, id: ClientId) {
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            let names: Vec<Bytes> = subs.names(kind).iter().cloned().collect();
            for n in names {
                self.unsubscribe(subs, kind, &n, id);
            }
        }
    }

    /// Number of channels (patterns, shard channels) with at least one subscriber.
    pub fn len(&self, kind: Kind) -> usize {
        self.maps[kind.index()].len()
    }

    pub fn subscribers(&self, kind: Kind, name: &[u8]) -> &[ClientId] {
        self.maps[kind.index()].get(name).map_or(&[], |v| v.as_slice())
    }

    /// Names with subscribers that match `pattern` (all of them without one).
    pub fn names_matching(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.maps[kind.index()].keys().filter(|n| pattern.is_none_or(|p| glob_match(p, n, false))).cloned().collect()
    }

    /// Patterns that match `channel`, each with its subscribers.
    pub fn matching_patterns<'a>(&'a self, channel: &'a [u8]) -> impl Iterator<Item = (&'a Bytes, &'a [ClientId])> {
        self.maps[Kind::Pattern.index()]
            .iter()
            .filter(move |(p, _)| glob_match(p, channel, false))
            .map(|(p, ids)| (p, ids.as_slice()))
    }

    /// True when nobody listens at all (PUBLISH then costs one check).
    pub fn is_empty(&self) -> bool {
        self.maps.iter().all(|m| m.is_empty())
    }
}

/// A Pub/Sub message: a push in RESP3, an array in RESP2.
fn message(parts: &[&[u8]]) -> Fanout {
    Fanout::new(Reply::Push(parts.iter().map(|p| Reply::Bulk(Bytes::copy_from_slice(p))).collect()))
}

impl crate::server::ServerState {
    /// The shard channels of `slots` lose their subscribers, each told with an sunsubscribe
    /// (a slot left this node's shard: Redis's removeChannelsInSlot).
    pub fn drop_shard_channels(&mut self, slots: &[u16]) {
        if self.pubsub.len(Kind::Shard) == 0 {
            return;
        }
        let lost: HashSet<u16> = slots.iter().copied().collect();
        let names = self.pubsub.names_matching(Kind::Shard, None);
        let mut nobody = Session::new(0, String::new(), String::new(), -1, self.now_ms);
        for name in names.into_iter().filter(|n| lost.contains(&crate::cluster::key_slot(n))) {
            for id in self.pubsub.subscribers(Kind::Shard, &name).to_vec() {
                let Some(s) = self.clients.get_mut(&id) else { continue };
                self.pubsub.unsubscribe(&mut s.subs, Kind::Shard, &name, id);
                let count = s.subs.count(Kind::Shard) as i64;
                let parts = vec![
                    Reply::Bulk(Bytes::from_static(b"sunsubscribe")),
                    Reply::Bulk(name.clone()),
                    Reply::Int(count),
                ];
                self.deliver(&mut nobody, id, &mut Fanout::new(Reply::Push(parts)));
            }
        }
    }

    /// Appends `reply` to a client's output buffer (the caller's own when `id` is the caller),
    /// encoded in the client's protocol, and enforces `client-output-buffer-limit`.
    pub fn deliver(&mut self, current: &mut Session, id: ClientId, reply: &mut Fanout) {
        let resp = if id == current.id { current.resp } else { self.clients.get(&id).map_or(2, |s| s.resp) };
        self.deliver_bytes(current, id, reply.bytes(resp));
    }

    /// Appends `bytes` to a client's output buffer (the caller's own when `id` is the caller)
    /// and enforces `client-output-buffer-limit`: a client over it loses its pending output
    /// and is closed.
    pub fn deliver_bytes(&mut self, current: &mut Session, id: ClientId, bytes: &[u8]) {
        let other = id != current.id;
        let sess = if other {
            match self.clients.get_mut(&id) {
                Some(s) => s,
                None => return,
            }
        } else {
            current
        };
        if sess.close_asap || bytes.is_empty() {
            return;
        }
        let was_empty = sess.out.is_empty();
        sess.out.extend_from_slice(bytes);
        self.stats.net_output_bytes += bytes.len() as u64;
        if sess.over_output_limit(&self.hot.obuf, self.now_ms) {
            tracing::warn!(
                "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                sess.id,
                sess.addr
            );
            sess.close_asap = true;
            sess.out = Default::default();
            if other {
                self.to_close.push(id);
            } else {
                sess.close_after_reply = true;
            }
        } else if other && was_empty {
            self.pending_writes.push(id);
        }
        if other {
            crate::server::client_mem::account(&mut self.clients_mem, sess);
        }
    }

    /// PUBLISH / SPUBLISH: channel (or shard channel) subscribers in subscription order, then
    /// pattern subscribers. Returns the number of deliveries (a client subscribed to the
    /// channel and to a matching pattern counts twice, as in Redis).
    pub fn publish(&mut self, current: &mut Session, channel: &[u8], msg: &[u8], shard: bool) -> usize {
        if self.pubsub.is_empty() {
            return 0;
        }
        let kind = if shard { Kind::Shard } else { Kind::Channel };
        let mut n = 0;
        let ids = self.pubsub.subscribers(kind, channel);
        if !ids.is_empty() {
            let ids = ids.to_vec();
            let word: &[u8] = if shard { b"smessage" } else { b"message" };
            let mut frame = message(&[word, channel, msg]);
            for id in ids {
                self.deliver(current, id, &mut frame);
                n += 1;
            }
        }
        if !shard && self.pubsub.len(Kind::Pattern) > 0 {
            let matches: Vec<(Bytes, Vec<ClientId>)> =
                self.pubsub.matching_patterns(channel).map(|(p, ids)| (p.clone(), ids.to_vec())).collect();
            for (pattern, ids) in matches {
                let mut frame = message(&[b"pmessage", &pattern, channel, msg]);
                for id in ids {
                    self.deliver(current, id, &mut frame);
                    n += 1;
                }
            }
        }
        n
    }

    /// Publishes the keyspace events the databases raised, oldest first per database.
    #[inline]
    pub fn publish_events(&mut self, current: &mut Session) {
        if self.hot.notify != 0 {
            self.publish_db_events(current);
        }
    }

    fn publish_db_events(&mut self, current: &mut Session) {
        for db in 0..self.dbs.len() {
            if !self.dbs[db].has_events() {
                continue;
            }
            for ev in self.dbs[db].take_events() {
                self.publish_event(current, db, ev.event, &ev.key);
            }
        }
    }

    /// One event on the keyspace channel, then the keyevent channel (Redis's order).
    fn publish_event(&mut self, current: &mut Session, db: usize, event: &str, key: &[u8]) {
        use crate::keyspace::notify::{KEYEVENT, KEYSPACE};
        if self.hot.notify & KEYSPACE != 0 {
            let mut ch = format!("__keyspace@{db}__:").into_bytes();
            ch.extend_from_slice(key);
            self.publish(current, &ch, event.as_bytes(), false);
        }
        if self.hot.notify & KEYEVENT != 0 {
            let ch = format!("__keyevent@{db}__:{event}");
            self.publish(current, ch.as_bytes(), key, false);
        }
    }

    /// Everything that follows a change to the keyspace outside a command (active expiry,
    /// eviction): WATCH flags, keyspace events, tracking invalidations.
    pub fn after_background_change(&mut self) {
        let mut dummy = Session::new(0, String::new(), String::new(), -1, self.now_ms);
        self.flag_dirty_watchers(&mut dummy);
        self.publish_events(&mut dummy);
        self.invalidate_modified(&mut dummy);
        self.aof_propagate_dels();
    }
}
