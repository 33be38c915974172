//! Propagation of writes, and the master side of replication.
//!
//! A write command's effects are propagated as Redis 7.0 does: while a top-level command runs
//! (with EXEC and scripts, the commands inside it), what it changed is collected as pending
//! operations; when it returns they go out together, wrapped in MULTI/EXEC when there are
//! several, so a log or a replica never sees half of one. Keys that expired or were evicted
//! go out at once as DEL, never wrapped. Both consumers (the AOF and the replication stream)
//! get the same commands, each with its own SELECT state.
//!
//! Replication as Redis 7.0 does it: the stream has a replication ID and an offset (bytes
//! produced so far). Once a replica attaches, the stream's newest `repl-backlog-size` bytes
//! are kept in a [`Backlog`], so a replica that lost its link and comes back with `PSYNC
//! <replid> <offset>` gets `+CONTINUE` and what it missed instead of a full resynchronisation
//! (an RDB image of the data set, then the stream: see `full_sync`). A replica's stream is
//! its master's, byte for byte (see `replica`): its replication ID is the master's, so when it
//! is promoted it keeps the old ID as `replid2` and its former fellow replicas continue from
//! it.

use bytes::Bytes;

use crate::keyspace::db::ClientId;
use crate::server::backlog::Backlog;
use crate::server::full_sync::Phase;
use crate::server::{ServerState, Session};

pub use crate::protocol::feed::Feed;

/// Where a pending operation goes: Redis propagates some commands (PUBLISH) to replicas only,
/// and a script may send its commands to one consumer (`redis.set_repl`).
#[derive(Clone, Copy, PartialEq)]
pub enum Target {
    All,
    ReplicasOnly,
    AofOnly,
}

/// One command waiting for the end of the top-level command that caused it.
pub struct PendingOp {
    pub db: usize,
    pub argv: Vec<Bytes>,
    pub target: Target,
}

/// The replication stream: its identity, its offset, and the replicas it goes to.
pub struct Replication {
    /// What the replicas have not been sent yet.
    pub feed: Feed,
    /// Attached replicas, in attach order.
    pub replicas: Vec<ClientId>,
    /// Bytes of replication stream produced (INFO master_repl_offset).
    pub offset: u64,
    /// The history this stream belongs to (a replica's is its master's).
    pub replid: String,
    /// The history this one continues (after a promotion), valid up to `second_offset`:
    /// replicas of the former master continue from it.
    pub replid2: String,
    pub second_offset: Option<u64>,
    /// The stream's recent bytes; made when the first replica attaches.
    pub backlog: Option<Backlog>,
    /// Since when no replica has been attached (Unix ms; the backlog goes after
    /// repl-backlog-ttl).
    no_replicas_since_ms: u64,
    pub sync_full: u64,
    pub sync_partial_ok: u64,
    pub sync_partial_err: u64,
    /// When the replicas were last sent a PING (they time out without traffic).
    pub(super) last_ping_ms: u64,
    /// When replicas waiting for a snapshot were last sent a keep-alive newline.
    pub(super) last_newline_ms: u64,
}

/// The replid of no history.
pub const NO_REPLID: &str = "0000000000000000000000000000000000000000";

/// A new random replication ID.
pub fn new_replid() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    (0..40).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0')).collect()
}

impl Replication {
    pub fn new() -> Replication {
        Replication {
            feed: Feed::default(),
            replicas: Vec::new(),
            offset: 0,
            replid: new_replid(),
            replid2: NO_REPLID.into(),
            second_offset: None,
            backlog: None,
            no_replicas_since_ms: 0,
            sync_full: 0,
            sync_partial_ok: 0,
            sync_partial_err: 0,
            last_ping_ms: 0,
            last_newline_ms: 0,
        }
    }

    /// A new history (Redis's changeReplicationId + clearReplicationId2).
    pub fn new_history(&mut self) {
        self.replid = new_replid();
        self.replid2 = NO_REPLID.into();
        self.second_offset = None;
    }

    /// The current history goes on under a new ID (Redis's shiftReplicationId: a promoted
    /// replica, or a replica whose master changed its ID).
    pub fn shift_history(&mut self, new_id: String) {
        self.replid2 = std::mem::replace(&mut self.replid, new_id);
        self.second_offset = Some(self.offset + 1);
    }

    /// Whether a replica that followed history `replid` up to `from - 1` can continue from
    /// this stream.
    pub fn continuation(&self, replid: &str, from: u64) -> bool {
        let same = replid.eq_ignore_ascii_case(&self.replid)
            || (replid.eq_ignore_ascii_case(&self.replid2) && self.second_offset.is_some_and(|s| from <= s));
        same && self.backlog.as_ref().is_some_and(|b| b.holds(from))
    }

    /// CONFIG RESETSTAT.
    pub fn reset_stats(&mut self) {
        (self.sync_full, self.sync_partial_ok, self.sync_partial_err) = (0, 0, 0);
    }

    pub fn mark_no_replicas(&mut self, now_ms: u64) {
        self.no_replicas_since_ms = now_ms;
    }

    /// Appends bytes produced elsewhere (a replica's master) to the stream as they are.
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.feed.buf.extend_from_slice(bytes);
        self.offset += bytes.len() as u64;
    }
}

impl Default for Replication {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerState {
    /// Whether writes are being propagated at all (an AOF or a replication stream listens).
    pub fn propagating(&self) -> bool {
        self.aof.is_some() || self.feeding_replication()
    }

    /// Whether this server's commands make a replication stream: a master with a backlog. A
    /// replica's stream is its master's, passed on as it comes.
    pub fn feeding_replication(&self) -> bool {
        self.repl.backlog.is_some() && self.master.is_none()
    }

    /// Sends one command to the consumers now.
    pub fn propagate_now(&mut self, db: usize, argv: &[&[u8]], target: Target) {
        // What is being loaded from the log is not news to anyone.
        if self.replaying_aof {
            return;
        }
        if target != Target::ReplicasOnly
            && let Some(aof) = self.aof.as_mut()
        {
            aof.feed(db, argv);
        }
        if target != Target::AofOnly && self.feeding_replication() {
            let before = self.repl.feed.buf.len();
            self.repl.feed.push(db, argv);
            self.repl.offset += (self.repl.feed.buf.len() - before) as u64;
        }
    }

    /// Sends one command to the replicas only, in whatever database the stream is in (DEBUG
    /// REPLICATE).
    pub fn replicate_verbatim(&mut self, argv: &[&[u8]]) {
        if self.feeding_replication() {
            let before = self.repl.feed.buf.len();
            self.repl.feed.push_anywhere(argv);
            self.repl.offset += (self.repl.feed.buf.len() - before) as u64;
        }
    }

    /// Queues one command until the top-level command returns ([`Self::propagate_pending`]).
    pub fn also_propagate(&mut self, db: usize, argv: Vec<Bytes>, target: Target) {
        if self.propagating() && !self.replaying_aof {
            self.pending_ops.push(PendingOp { db, argv, target });
        }
    }

    /// Sends what the finished top-level command queued, in MULTI/EXEC when it is several
    /// commands (counted per consumer: the AOF does not see replica-only ones).
    pub fn propagate_pending(&mut self) {
        if self.pending_ops.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.pending_ops);
        if self.replaying_aof {
            return;
        }
        if let Some(aof) = self.aof.as_mut() {
            let logged: Vec<&PendingOp> = ops.iter().filter(|o| o.target != Target::ReplicasOnly).collect();
            emit_wrapped(&logged, |db, a| aof.feed(db, a));
        }
        if self.feeding_replication() {
            let before = self.repl.feed.buf.len();
            let sent: Vec<&PendingOp> = ops.iter().filter(|o| o.target != Target::AofOnly).collect();
            let feed = &mut self.repl.feed;
            emit_wrapped(&sent, |db, a| feed.push(db, a));
            self.repl.offset += (self.repl.feed.buf.len() - before) as u64;
        }
    }

    /// Moves the replication stream into the backlog, which the replicas are sent from (each
    /// at its own cursor); a replica now over its output limit is dropped.
    pub fn drain_repl_feed(&mut self) {
        if self.repl.feed.buf.is_empty() {
            return;
        }
        let Some(b) = self.repl.backlog.as_mut() else {
            self.repl.feed.buf.clear();
            return;
        };
        b.append(&self.repl.feed.buf);
        self.repl.feed.buf.clear();
        if self.repl.feed.buf.capacity() > FEED_KEEP {
            self.repl.feed.buf = Vec::new();
        }
        for i in 0..self.repl.replicas.len() {
            let id = self.repl.replicas[i];
            // The session being served is out of the table: its turn comes at the next drain.
            let Some(s) = self.clients.get_mut(&id) else { continue };
            if s.repl_cursor.is_none() || s.close_asap {
                continue;
            }
            if replica_over_limit(s, b, &self.hot.obuf, self.now_ms) {
                tracing::warn!(
                    "Client id={} addr={} scheduled to be closed ASAP for overcoming of output buffer limits.",
                    s.id,
                    s.addr
                );
                s.close_asap = true;
                self.to_close.push(id);
            } else if s.full_sync.is_none() {
                self.pending_writes.push(id);
            }
        }
    }

    /// Lets go of the stream's oldest blocks that neither the backlog's size nor a replica
    /// needs, `max_blocks` at most (Redis's incrementalTrimReplicationBacklog). Called where
    /// every replica's session is in the table.
    pub fn trim_backlog(&mut self, max_blocks: usize) {
        let Some(b) = self.repl.backlog.as_mut() else { return };
        if b.histlen() <= b.size() {
            return;
        }
        let pinned =
            (self.repl.replicas.iter()).filter_map(|id| self.clients.get(id)?.repl_cursor).min().unwrap_or(u64::MAX);
        b.trim(pinned, max_blocks);
    }

    /// From cron: replicas whose output stayed over the soft limit too long (Redis's
    /// clientsCron checks every client, written to or not).
    pub fn replicas_over_output_limit(&mut self) -> Vec<(ClientId, String)> {
        let mut over = Vec::new();
        let Some(b) = self.repl.backlog.as_ref() else { return over };
        for id in &self.repl.replicas {
            let Some(s) = self.clients.get_mut(id) else { continue };
            if !s.close_asap && replica_over_limit(s, b, &self.hot.obuf, self.now_ms) {
                over.push((*id, s.addr.clone()));
            }
        }
        over
    }

    /// The shared stream's memory as INFO splits it (Redis's getMemoryOverheadData): what
    /// the backlog's size covers is the backlog's, the excess the replicas'; and the whole.
    pub fn replication_memory(&self) -> (usize, usize, usize) {
        let (Some(b), size) = (self.repl.backlog.as_ref(), self.config.int("repl-backlog-size").max(1) as usize) else {
            return (0, 0, 0);
        };
        let total = b.mem();
        if !self.repl.replicas.is_empty() && total > size { (size, total - size, total) } else { (total, 0, total) }
    }

    /// The part of the shared stream eviction leaves out: what exceeds the backlog's size
    /// and its blocks' overhead (Redis's freeMemoryGetNotCountedMemory).
    pub fn replication_memory_not_counted(&self) -> usize {
        let Some(b) = self.repl.backlog.as_ref() else { return 0 };
        let size = b.size();
        let counted = size + (size / (16 * 1024) + 1) * super::backlog::BLOCK_OVERHEAD;
        b.mem().saturating_sub(counted)
    }

    /// Makes the backlog if there is none: a stream nobody kept starts a new history.
    pub fn ensure_backlog(&mut self) {
        if self.repl.backlog.is_none() {
            if self.master.is_none() {
                self.repl.new_history();
            }
            let size = self.config.int("repl-backlog-size").max(1) as usize;
            self.repl.backlog = Some(Backlog::new(size, self.repl.offset + 1));
        }
        // Whether writes are propagated may have changed.
        self.refresh_track_modified();
    }

    /// PSYNC that can continue: makes `sess` a replica to be sent the stream from `from`
    /// on. Returns how many bytes it missed.
    pub fn continue_replica(&mut self, sess: &mut Session, replid: &str, from: u64) -> Option<u64> {
        self.drain_repl_feed();
        if !self.repl.continuation(replid, from) {
            return None;
        }
        self.add_replica(sess);
        sess.repl_cursor = Some(from);
        self.repl.sync_partial_ok += 1;
        Some((self.repl.offset + 1).saturating_sub(from))
    }

    pub(super) fn add_replica(&mut self, sess: &mut Session) {
        sess.replica = true;
        // Online now counts as a fresh acknowledgement (Redis: "prevent false timeout"), so
        // min-replicas-to-write counts it before its first REPLCONF ACK.
        sess.repl_ack_ms = self.now_ms;
        if !self.repl.replicas.contains(&sess.id) {
            self.repl.replicas.push(sess.id);
        }
        self.repl.last_ping_ms = self.now_ms;
        self.refresh_track_modified();
    }

    /// Drops every replica's connection (they reconnect and learn a changed history).
    pub fn disconnect_replicas(&mut self) {
        let ids = std::mem::take(&mut self.repl.replicas);
        self.repl.no_replicas_since_ms = self.now_ms;
        // Their cursors point into a stream that may be let go before they close.
        for id in &ids {
            if let Some(s) = self.clients.get_mut(id) {
                s.repl_cursor = None;
            }
        }
        self.to_close.extend(ids);
        self.refresh_track_modified();
    }

    /// From cron: a master's backlog goes once no replica has been attached for
    /// repl-backlog-ttl seconds (0: never), and with it the history.
    pub fn expire_backlog(&mut self) {
        if !self.repl.replicas.is_empty() || self.master.is_some() || self.repl.backlog.is_none() {
            return;
        }
        let ttl = self.config.int("repl-backlog-ttl").max(0) as u64 * 1000;
        if ttl > 0 && self.now_ms.saturating_sub(self.repl.no_replicas_since_ms) >= ttl {
            tracing::info!("Replication backlog freed after {} seconds without connected replicas.", ttl / 1000);
            self.repl.backlog = None;
            self.repl.new_history();
            self.refresh_track_modified();
        }
    }

    /// From cron (Redis's replicationCron): a replica that acknowledged nothing for
    /// `repl-timeout` is dropped (one attached with SYNC never acknowledges), and so is one
    /// whose diskless image has been stuck in its socket that long (it would hold every other
    /// replica of that snapshot back).
    pub fn disconnect_timedout_replicas(&mut self) {
        let timeout = self.config.int("repl-timeout").max(1) as u64 * 1000;
        let now = self.now_ms;
        let mut gone = Vec::new();
        for s in self.repl.replicas.iter().filter_map(|id| self.clients.get(id)) {
            let kind = match s.full_sync.as_ref().map(|f| &f.phase) {
                None | Some(Phase::AwaitAck) if !s.repl_pre_psync && now.saturating_sub(s.repl_ack_ms) > timeout => {
                    "streaming sync"
                }
                Some(Phase::Snapshot { diskless: true })
                    if s.out_stalled_ms != 0 && now.saturating_sub(s.out_stalled_ms) > timeout =>
                {
                    "full sync"
                }
                _ => continue,
            };
            tracing::warn!("Disconnecting timedout replica ({kind}): {}", s.replica_name());
            gone.push(s.id);
        }
        self.to_close.extend(gone);
    }

    /// Every `repl-ping-replica-period` seconds the replicas get a PING, so a quiet master
    /// still looks alive to them (repl-timeout).
    pub fn ping_replicas(&mut self) {
        // A replica passes its master's PINGs on instead.
        if self.repl.replicas.is_empty() || !self.feeding_replication() {
            return;
        }
        let period = self.config.int("repl-ping-replica-period").max(1) as u64 * 1000;
        // Periods count from the start, as Redis's cron loops do: a replica that attached
        // just now is not pinged at once (its offset stays where PSYNC said).
        let last = self.repl.last_ping_ms.max(self.started_unix_ms);
        if self.now_ms.saturating_sub(last) < period {
            return;
        }
        self.repl.last_ping_ms = self.now_ms;
        let before = self.repl.feed.buf.len();
        self.repl.feed.push_anywhere(&[b"PING"]);
        self.repl.offset += (self.repl.feed.buf.len() - before) as u64;
    }

    /// The replicas' sessions; `current` stands for the one being served (out of the client
    /// table while it runs).
    fn replica_sessions<'a>(&'a self, current: Option<&'a Session>) -> impl Iterator<Item = &'a Session> + 'a {
        self.repl.replicas.iter().filter_map(move |id| match current {
            Some(s) if s.id == *id => Some(s),
            _ => self.clients.get(id).map(|b| &**b),
        })
    }

    /// How many replicas acknowledged `offset` or more. `current`: the session being served
    /// (out of the client table while it runs), if it is a replica.
    pub fn replicas_acked(&self, offset: u64, current: Option<&Session>) -> usize {
        self.replica_sessions(current).filter(|s| s.repl_ack >= offset).count()
    }

    /// Whether min-replicas-to-write refuses writes now: fewer replicas than it asks for
    /// acknowledged within min-replicas-max-lag seconds (Redis's repl_good_slaves_count).
    pub fn too_few_good_replicas(&self, current: Option<&Session>) -> bool {
        let want = self.hot.min_replicas_to_write;
        // Only a master counts its replicas (a replica applies its master's writes).
        if want <= 0 || self.master.is_some() {
            return false;
        }
        let max_lag_ms = self.config.int("min-replicas-max-lag").max(0) as u64 * 1000;
        let good = self
            .replica_sessions(current)
            .filter(|s| s.repl_ack_ms != 0 && self.now_ms.saturating_sub(s.repl_ack_ms) <= max_lag_ms)
            .count();
        (good as i64) < want
    }

    /// WAIT blocked: every replica is asked for its offset now (REPLCONF GETACK *, in the
    /// stream and counted in it, as Redis sends it).
    pub fn request_acks(&mut self) {
        if self.repl.replicas.is_empty() || !self.feeding_replication() {
            return;
        }
        let before = self.repl.feed.buf.len();
        self.repl.feed.push_anywhere(&[b"REPLCONF", b"GETACK", b"*"]);
        self.repl.offset += (self.repl.feed.buf.len() - before) as u64;
    }

    /// A replica acknowledged: WAITs now satisfied are answered.
    pub fn serve_waits(&mut self, current: &Session) {
        let waiting: Vec<(crate::keyspace::db::ClientId, u64, i64)> = self
            .clients
            .iter()
            .filter_map(|(id, s)| {
                let b = s.block.as_ref()?;
                let off = b.wait_offset?;
                let want = b.argv.get(1).and_then(|a| crate::util::numfmt::parse_i64(a)).unwrap_or(0);
                Some((*id, off, want))
            })
            .collect();
        for (id, off, want) in waiting {
            let n = self.replicas_acked(off, Some(current));
            if n as i64 >= want {
                crate::server::blocking::unblock_with(self, id, Some(crate::protocol::Reply::Int(n as i64)));
            }
        }
    }

    /// A closing connection stops being a replica. The last replica waiting for a disk
    /// snapshot takes it along unless save points want the file anyway (Redis's freeClient:
    /// memory back, and the next full sync or BGSAVE can start at once).
    pub fn detach_replica(&mut self, id: ClientId, waited_for_disk_save: bool) {
        if waited_for_disk_save
            && self.config.str("save").trim().is_empty()
            && self.disk_bgsave_in_progress()
            && !self.repl.replicas.iter().filter(|r| **r != id).any(|r| {
                self.clients
                    .get(r)
                    .and_then(|s| s.full_sync.as_ref())
                    .is_some_and(|f| matches!(f.phase, crate::server::full_sync::Phase::Snapshot { diskless: false }))
            })
        {
            self.abort_bgsave();
        }
        if self.repl.replicas.contains(&id) {
            self.repl.replicas.retain(|r| *r != id);
            if self.repl.replicas.is_empty() {
                self.repl.no_replicas_since_ms = self.now_ms;
            }
            self.refresh_track_modified();
        }
    }
}

/// The replication feed's buffer is kept between drains up to this size.
const FEED_KEEP: usize = 16 * 1024;

/// The memory a replica's cursor keeps in the shared stream.
pub fn stream_share(s: &Session, backlog: Option<&Backlog>) -> usize {
    match (s.repl_cursor, backlog) {
        (Some(c), Some(b)) => b.share_from(c),
        _ => 0,
    }
}

/// client-output-buffer-limit for a replica, over its own buffer and its share of the stream.
/// A hard limit under repl-backlog-size counts as that size (Redis: the share is the
/// backlog's memory anyway, and a replica that continued from the backlog would be dropped
/// at once).
pub fn replica_over_limit(s: &mut Session, b: &Backlog, limits: &[crate::config::ObufLimit; 3], now_ms: u64) -> bool {
    let mut l = limits[crate::config::OBUF_REPLICA];
    if l.hard > 0 {
        l.hard = l.hard.max(b.size() as u64);
    }
    let used = s.out.len() + stream_share(s, Some(b));
    s.past_output_limit(l, used as u64, now_ms)
}

/// Emits `ops`, in MULTI/EXEC when there are several.
fn emit_wrapped(ops: &[&PendingOp], mut emit: impl FnMut(usize, &[&[u8]])) {
    let (Some(first), Some(last)) = (ops.first(), ops.last()) else { return };
    let wrap = ops.len() > 1;
    if wrap {
        emit(first.db, &[b"MULTI"]);
    }
    for op in ops {
        let a: Vec<&[u8]> = op.argv.iter().map(|x| &x[..]).collect();
        emit(op.db, &a);
    }
    if wrap {
        emit(last.db, &[b"EXEC"]);
    }
}
