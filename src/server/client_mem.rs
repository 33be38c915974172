//! What each client holds (CLIENT LIST's tot-mem) and client eviction, as Redis 7.0's
//! `maxmemory-clients`: the total over normal and Pub/Sub clients is kept as their buffers
//! change, and when it reaches the limit the biggest evictable clients are disconnected
//! until it is below again.

use tracing::{info, warn};

use crate::keyspace::ClientId;
use crate::server::pubsub::Kind;
use crate::server::{ServerState, Session};

/// A connection before any buffer: the session and the connection's own state (Redis counts
/// its client structure and fixed reply buffer).
const BASE: usize = std::mem::size_of::<Session>() + 1024;
/// Per watched key, subscription and tracking prefix: the entry in the client's own set.
const PER_WATCH: usize = 56;
const PER_SUB: usize = 48;
const PER_PREFIX: usize = 64;
/// Per queued MULTI command and per argument, beside the argument's bytes.
const PER_QUEUED: usize = 24;
const PER_ARG: usize = 32;
/// Redis's floor for a set limit: below it one could no longer talk to the server at all.
const MIN_LIMIT: u64 = 128 * 1024;

impl Session {
    /// CLIENT LIST's multi-mem: the queued commands and the watched keys.
    pub fn multi_overhead(&self) -> usize {
        self.multi_mem + self.watched.len() * PER_WATCH
    }

    /// CLIENT LIST's tot-mem: buffers, queued commands and the client's own sets. Counts,
    /// not walks, so it is cheap enough to run after every command. The output buffer
    /// counts as Redis's would: its reply buffer (`rbs`, as Redis sizes it) or the output
    /// waiting, whichever is more (the room Ember's buffer keeps after a write, at most
    /// 64 KB, would make a client's size depend on its last reply).
    pub fn memory(&self) -> usize {
        let subs = self.subs.len(Kind::Channel) + self.subs.len(Kind::Pattern) + self.subs.len(Kind::Shard);
        let prefixes = self.tracking.as_ref().map_or(0, |t| t.prefixes.len());
        BASE + self.qbuf_alloc.max(self.qbuf + self.argv_mem)
            + self.rbs.max(self.out.len())
            + self.multi_overhead()
            + subs * PER_SUB
            + prefixes * PER_PREFIX
    }

    /// What MULTI queues: counted as it is queued.
    pub fn note_queued(&mut self, argv: &[&[u8]]) {
        self.multi_mem += PER_QUEUED + argv.iter().map(|a| a.len() + PER_ARG).sum::<usize>();
    }

    /// Normal and Pub/Sub clients count; replicas, monitors and the master's link do not
    /// (Redis's client types), nor a client already being closed.
    fn counts(&self) -> bool {
        !(self.replica || self.monitor || self.from_master || self.in_script || self.replaying || self.close_asap)
    }

    fn evictable(&self) -> bool {
        self.counts() && !self.no_evict
    }
}

/// Brings `sess`'s share of `total` (the clients' memory) up to date.
pub fn account(total: &mut usize, sess: &mut Session) {
    if sess.multi.is_none() {
        sess.multi_mem = 0;
    }
    let now = if sess.counts() { sess.memory() } else { 0 };
    *total = total.saturating_sub(sess.mem_counted) + now;
    sess.mem_counted = now;
}

/// The limit `maxmemory-clients` sets (a percentage is of `maxmemory`); 0 without one.
pub fn limit(maxmemory_clients: i64, maxmemory: i64) -> u64 {
    // maxmemory is an unsigned amount kept in an i64's bits.
    let limit = if maxmemory_clients < 0 && maxmemory != 0 {
        (maxmemory as u64 as u128 * maxmemory_clients.unsigned_abs() as u128 / 100) as u64
    } else if maxmemory_clients > 0 {
        maxmemory_clients as u64
    } else {
        return 0;
    };
    limit.max(MIN_LIMIT)
}

impl ServerState {
    pub fn account_client(&mut self, sess: &mut Session) {
        account(&mut self.clients_mem, sess);
    }

    /// A client leaves: its share goes.
    pub fn forget_client_mem(&mut self, sess: &mut Session) {
        self.clients_mem = self.clients_mem.saturating_sub(sess.mem_counted);
        sess.mem_counted = 0;
    }

    /// Redis's clientsCron share of the work: every client's memory again (a buffer that
    /// changed where nothing accounted it, the reply buffer sizes).
    pub fn account_all_clients(&mut self) {
        let mut total = 0;
        for s in self.clients.values_mut() {
            s.mem_counted = 0;
            account(&mut total, s);
        }
        self.clients_mem = total;
    }
}

/// Redis's evictClients: while the clients' memory is over the limit, the biggest
/// evictable client is disconnected (`current`, the client whose command is about to run
/// and is out of the clients' table, included). Returns true when `current` was evicted:
/// its command must not run. Never called while a command runs (it closes connections).
pub fn evict_clients(st: &mut ServerState, mut current: Option<&mut Session>) -> bool {
    let limit = st.hot.maxmemory_clients;
    // Over, not at, the limit: Redis evicts at it, but reads a no-evict client's size from
    // its cron, before the command that set the limit took its room; Ember's is current,
    // so a limit set to what the clients hold exactly leaves them all.
    if limit == 0 || (st.clients_mem as u64) <= limit || st.client_evict_futile == Some((st.clients_mem, limit)) {
        return false;
    }
    let mut order: Vec<(usize, ClientId)> =
        st.clients.values().filter(|s| s.evictable()).map(|s| (s.mem_counted, s.id)).collect();
    if let Some(c) = current.as_deref()
        && c.evictable()
    {
        order.push((c.mem_counted, c.id));
    }
    if order.is_empty() {
        // Over the limit with nothing evictable (no-evict clients): not scanned again for
        // every command until something changes.
        st.client_evict_futile = Some((st.clients_mem, limit));
        return false;
    }
    order.sort_unstable_by_key(|&(mem, _)| std::cmp::Reverse(mem));
    let mut evicted_current = false;
    for (_, id) in order {
        if (st.clients_mem as u64) <= limit {
            break;
        }
        match current.as_deref_mut() {
            Some(c) if c.id == id => {
                evict(st, c);
                evicted_current = true;
            }
            _ => {
                if let Some(mut s) = st.clients.remove(&id) {
                    evict(st, &mut s);
                    st.clients.insert(id, s);
                    super::event_loop::close(st, id);
                }
            }
        }
    }
    if (st.clients_mem as u64) > limit {
        warn!("Over client maxmemory after evicting all evictable clients");
        st.client_evict_futile = Some((st.clients_mem, limit));
    }
    evicted_current
}

fn evict(st: &mut ServerState, s: &mut Session) {
    info!("Evicting client: {}", s.info_line(st.now_ms));
    st.forget_client_mem(s);
    s.close_asap = true;
    s.close_after_reply = true;
    s.out = Default::default();
    st.stats.evicted_clients += 1;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_as_redis_computes_them() {
        assert_eq!(limit(0, 1 << 30), 0);
        assert_eq!(limit(3_000_000, 0), 3_000_000);
        assert_eq!(limit(1, 0), MIN_LIMIT);
        // 7% of 6 MB.
        assert_eq!(limit(-7, 6 << 20), (6u64 << 20) * 7 / 100);
        // A percentage without maxmemory is no limit.
        assert_eq!(limit(-50, 0), 0);
    }
}
