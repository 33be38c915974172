//! Blocked clients: BLPOP and the other blocking list pops and moves, BZPOPMIN/BZPOPMAX/
//! BZMPOP, XREAD/XREADGROUP BLOCK and WAIT.
//!
//! A blocking handler that finds nothing to serve records a [`BlockRequest`] in the session
//! and returns no reply. [`crate::server::execute::process`] then registers the client in a
//! FIFO queue per (db, key) and,
//! if it has a timeout, in a deadline index. The keyspace marks a blocked-on key "ready" when
//! it changes; after each top-level command (so after a whole MULTI/EXEC), the server re-runs
//! the stored command of the waiters of each ready key in arrival order until one finds the
//! key empty again. Serving can make other keys ready (BLMOVE pushes), so this repeats until
//! nothing is ready. A blocked client reads no further input until it is served, times out,
//! is unblocked by CLIENT UNBLOCK, or disconnects. This module keeps the queues and serves
//! them; the commands are re-run through the server's [`crate::server::Executor`].

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use crate::keyspace::ClientId;
use crate::protocol::{Reply, encode};
use crate::server::{ServerState, Session};

/// What a blocked client waits for.
#[derive(Debug, Clone)]
pub struct BlockRequest {
    pub db: usize,
    pub keys: Vec<Bytes>,
    /// Absolute deadline in Unix ms; None waits forever.
    pub deadline: Option<u64>,
    /// The reply sent when the timeout passes (a null of the command's shape).
    pub timeout_reply: Reply,
    /// The command to re-run when a key becomes ready.
    pub argv: Vec<Bytes>,
    /// WAIT: the replication offset the replicas must acknowledge (the reply on timeout is
    /// the count of those that did).
    pub wait_offset: Option<u64>,
}

#[derive(Debug, Default)]
pub struct Blocking {
    queues: HashMap<(usize, Bytes), VecDeque<ClientId>>,
    deadlines: BTreeSet<(u64, ClientId)>,
    /// Clients that left the blocked state and may have buffered input to process.
    pub resumed: Vec<ClientId>,
    count: usize,
}

impl Blocking {
    pub fn count(&self) -> usize {
        self.count
    }

    pub fn register(&mut self, id: ClientId, req: &BlockRequest) {
        for k in &req.keys {
            let q = self.queues.entry((req.db, k.clone())).or_default();
            if !q.contains(&id) {
                q.push_back(id);
            }
        }
        if let Some(d) = req.deadline {
            self.deadlines.insert((d, id));
        }
        self.count += 1;
    }

    pub fn unregister(&mut self, id: ClientId, req: &BlockRequest) {
        for k in &req.keys {
            let key = (req.db, k.clone());
            if let Some(q) = self.queues.get_mut(&key) {
                q.retain(|c| *c != id);
                if q.is_empty() {
                    self.queues.remove(&key);
                }
            }
        }
        if let Some(d) = req.deadline {
            self.deadlines.remove(&(d, id));
        }
        self.count = self.count.saturating_sub(1);
    }

    /// Waiters on a key, first come first served.
    pub fn waiters(&self, db: usize, key: &Bytes) -> Vec<ClientId> {
        self.queues.get(&(db, key.clone())).map(|q| q.iter().copied().collect()).unwrap_or_default()
    }

    /// Clients whose deadline is at or before `now`.
    pub fn expired(&self, now: u64) -> Vec<ClientId> {
        self.deadlines.iter().take_while(|(d, _)| *d <= now).map(|(_, id)| *id).collect()
    }

    /// The earliest deadline, for the event loop's poll timeout.
    pub fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|(d, _)| *d)
    }
}

fn unregister_block(st: &mut ServerState, id: u64, req: &BlockRequest) {
    st.blocking.unregister(id, req);
    for k in &req.keys {
        st.dbs[req.db].set_blocked(k, false);
    }
}

/// Ends a client's block with `reply` (timeout or CLIENT UNBLOCK). False if it was not blocked.
pub fn unblock_with(st: &mut ServerState, id: u64, reply: Option<Reply>) -> bool {
    let Some(s) = st.clients.get_mut(&id) else { return false };
    let Some(req) = s.block.take() else { return false };
    let reply = match (reply, req.wait_offset) {
        (Some(r), _) => r,
        // WAIT timed out: how many replicas acknowledged.
        (None, Some(off)) => {
            let n = st.replicas_acked(off, None) as i64;
            Reply::Int(n)
        }
        (None, None) => req.timeout_reply.clone(),
    };
    let Some(s) = st.clients.get_mut(&id) else { return false };
    encode(&reply, s.resp, &mut s.out);
    let failed = if let Reply::Error(text) = &reply {
        // An error ends the command (CLIENT UNBLOCK ERROR, a replica's -UNBLOCKED): counted in
        // errorstats and as a failed call, as Redis counts it.
        st.stats.total_error_replies += 1;
        *st.stats.errors.entry(text.split(' ').next().unwrap_or("ERR").to_string()).or_default() += 1;
        true
    } else {
        false
    };
    if let Some(slot) = st.executor.stat_slot(&crate::protocol::views(&req.argv)) {
        let stat = st.stats.command(slot);
        stat.calls += 1;
        if failed {
            stat.failed_calls += 1;
        }
    }
    st.pending_writes.push(id);
    st.blocking.resumed.push(id);
    unregister_block(st, id, &req);
    true
}

/// Drops a disconnecting client's block, if any.
pub fn forget_block(st: &mut ServerState, sess: &mut Session) {
    if let Some(req) = sess.block.take() {
        unregister_block(st, sess.id, &req);
    }
}

/// Times out blocked clients whose deadline has passed.
pub fn expire_blocks(st: &mut ServerState) {
    for id in st.blocking.expired(st.now_ms) {
        unblock_with(st, id, None);
    }
}

/// Serves clients blocked on keys that became ready, first come first served, until no key
/// is ready (serving one client can make another key ready).
#[inline]
pub fn serve_ready(st: &mut ServerState, current: &mut Session) {
    if st.blocking.count() != 0 && st.dbs.iter().any(|db| db.has_ready()) {
        serve_ready_keys_around(st, current);
    }
}

/// What a served command does may concern the client whose command made its key ready
/// (a WATCH it set, a key it tracks, its RESP3 subscriptions): while the waiters run, that
/// client sits in the client table like any other, where their effects find it.
fn serve_ready_keys_around(st: &mut ServerState, current: &mut Session) {
    let id = current.id;
    if st.clients.contains_key(&id) {
        return serve_ready_keys(st, id);
    }
    let outer = std::mem::replace(current, Session::new(id, String::new(), String::new(), -1, 0));
    st.clients.insert(id, Box::new(outer));
    serve_ready_keys(st, id);
    if let Some(outer) = st.clients.remove(&id) {
        *current = *outer;
    }
}

fn serve_ready_keys(st: &mut ServerState, current: ClientId) {
    loop {
        let mut ready = Vec::new();
        for (i, db) in st.dbs.iter_mut().enumerate() {
            for k in db.take_ready() {
                ready.push((i, k));
            }
        }
        if ready.is_empty() {
            return;
        }
        // The clock moves on first, as in Redis: a key that expired while the command ran
        // (DEBUG SLEEP inside MULTI) serves nobody.
        st.update_time();
        for (db, key) in ready {
            for id in st.blocking.waiters(db, &key) {
                if id == current {
                    continue;
                }
                let Some(mut s) = st.clients.remove(&id) else { continue };
                let Some(req) = s.block.take() else {
                    st.clients.insert(id, s);
                    continue;
                };
                s.serving = Some(key.clone());
                let reply = st.executor.retry(st, &mut s, &crate::protocol::views(&req.argv));
                s.serving = None;
                if s.block.is_some() {
                    // Not served: it keeps its place (and original deadline). Once the key
                    // is gone nobody else can be; while it stays (another type's waiter, a
                    // stream read past its end) the next waiters may still be.
                    s.block = Some(req);
                    st.clients.insert(id, s);
                    if !st.dbs[db].contains(&key) {
                        break;
                    }
                    continue;
                }
                encode(&reply, s.resp, &mut s.out);
                // Its own invalidations (a BLMOVE into a key it tracks) follow its reply.
                if !s.after_reply.is_empty() {
                    st.send_after_reply(&mut s);
                }
                st.clients.insert(id, s);
                st.pending_writes.push(id);
                st.blocking.resumed.push(id);
                unregister_block(st, id, &req);
            }
        }
    }
}
