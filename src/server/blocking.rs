//! Blocked clients (BLPOP, BLMOVE, BLMPOP, … and later BZPOPMIN, XREAD BLOCK).
//!
//! A blocking handler that finds nothing to serve records a [`BlockRequest`] in the session
//! and returns no reply. Dispatch then registers the client in a FIFO queue per (db, key) and,
//! if it has a timeout, in a deadline index. The keyspace marks a blocked-on key "ready" when
//! it changes; after each top-level command (so after a whole MULTI/EXEC), the server re-runs
//! the stored command of the waiters of each ready key in arrival order until one finds the
//! key empty again. Serving can make other keys ready (BLMOVE pushes), so this repeats until
//! nothing is ready. A blocked client reads no further input until it is served, times out,
//! is unblocked by CLIENT UNBLOCK, or disconnects.

use std::collections::{BTreeSet, HashMap, VecDeque};

use bytes::Bytes;

use crate::keyspace::ClientId;
use crate::protocol::Reply;

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
