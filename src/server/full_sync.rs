//! A replica's full synchronisation: the RDB image of the data set, then the stream produced
//! since the image's point in time.
//!
//! The image comes from the forkless snapshot (see `persist`), as Redis's comes from a BGSAVE:
//! - **to disk** (`repl-diskless-sync no`, or a waiting replica lacks `capa eof`): the finished
//!   file goes out as `$<len>` and its bytes, read into the replica's output buffer as the
//!   socket drains, so the image is never held whole in memory;
//! - **diskless** (`repl-diskless-sync yes` and every waiting replica has `capa eof`): the
//!   walk's records go straight into the waiting replicas' output buffers between
//!   `$EOF:<40 random characters>` and the same 40 characters, and the walk waits for the
//!   slowest socket. It starts once a replica has waited `repl-diskless-sync-delay` seconds
//!   (more may join meanwhile), or once `repl-diskless-sync-max-replicas` wait.
//!
//! The stream a replica is owed meanwhile stays in the shared backlog, from its cursor (the
//! byte after the snapshot's point in time) on, and follows the image; after an EOF-marked
//! image only once the replica's first REPLCONF ACK says it has loaded it, as Redis does: a
//! Redis replica reads the image in chunks and would swallow bytes glued after the mark.

use std::io::Read;

use crate::keyspace::db::ClientId;
use crate::server::{ServerState, Session};

/// Where a replica's full sync is.
#[derive(Debug)]
pub enum Phase {
    /// Waiting for its snapshot to start (another one runs, or the diskless delay).
    Waiting,
    /// Its snapshot runs, to disk or into the socket.
    Snapshot { diskless: bool },
    /// The snapshot file goes out; `left` of its bytes are still to be read.
    SendFile { file: std::fs::File, left: u64 },
    /// An EOF-marked image went out; the stream follows the replica's first ACK.
    AwaitAck,
}

/// A replica's full sync in progress.
#[derive(Debug)]
pub struct FullSync {
    pub phase: Phase,
    /// The stream offset of the snapshot's point in time (`+FULLRESYNC`'s).
    pub offset: u64,
    /// It asked with PSYNC (`+FULLRESYNC` is its answer), not SYNC.
    pub psync: bool,
    /// When it asked (Unix ms; repl-diskless-sync-delay counts from here).
    pub since_ms: u64,
}

impl FullSync {
    /// The replica's state as INFO's slave lines name it.
    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Waiting | Phase::Snapshot { .. } => "wait_bgsave",
            Phase::SendFile { .. } => "send_bulk",
            Phase::AwaitAck => "online",
        }
    }

    fn waiting(&self) -> bool {
        matches!(self.phase, Phase::Waiting)
    }
}

/// The image file is read into a replica's output buffer in pieces of this size, whenever
/// less than this is waiting for the socket.
const FILE_PIECE: usize = 1 << 20;
/// A diskless snapshot's walk waits while a replica has this much unsent.
pub const SOCKET_ROOM: usize = 4 << 20;

/// Tops up the output buffer of a replica that is being sent its image file. Returns the
/// bytes added; once the file is all read, the stream follows it from the replica's cursor.
pub fn refill_from_file(sess: &mut Session, now_ms: u64) -> std::io::Result<usize> {
    if sess.out.len() >= FILE_PIECE {
        return Ok(0);
    }
    let Some(fs) = sess.full_sync.as_mut() else { return Ok(0) };
    let Phase::SendFile { file, left } = &mut fs.phase else { return Ok(0) };
    let want = (*left).min(FILE_PIECE as u64);
    let before = sess.out.len();
    let read = {
        use bytes::BufMut;
        let mut w = (&mut sess.out).writer();
        std::io::copy(&mut file.take(want), &mut w)?
    };
    if read < want {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the snapshot file is shorter than it was"));
    }
    *left -= read;
    if *left == 0 {
        sess.full_sync = None;
        // Online from now: the streaming timeout counts from here (Redis's replicaPutOnline).
        sess.repl_ack_ms = now_ms;
        tracing::info!("Synchronization with replica {} succeeded", sess.replica_name());
    }
    Ok(sess.out.len() - before)
}

impl ServerState {
    /// SYNC / PSYNC without a continuation: makes `sess` a replica that waits for a snapshot
    /// of the data set (started now, or after the one running, or after the diskless delay);
    /// the event loop goes on meanwhile.
    pub fn attach_replica(&mut self, sess: &mut Session, psync: bool) {
        // What the other replicas are owed goes out before the snapshot marks a new start.
        self.drain_repl_feed();
        self.ensure_backlog();
        self.add_replica(sess);
        sess.repl_pre_psync = !psync;
        self.repl.sync_full += 1;
        sess.full_sync = Some(FullSync { phase: Phase::Waiting, offset: 0, psync, since_ms: self.now_ms });
        self.start_full_sync_snapshot(Some(sess));
    }

    /// A replica's session, `current` standing for the one being served (out of the client
    /// table while it runs).
    fn replica_mut<'a>(&'a mut self, id: ClientId, current: Option<&'a mut Session>) -> Option<&'a mut Session> {
        match current {
            Some(s) if s.id == id => Some(s),
            _ => self.clients.get_mut(&id).map(|b| &mut **b),
        }
    }

    /// Starts the snapshot waiting replicas need, unless another is running or the diskless
    /// delay has not passed (cron calls again). `current`: the session being served.
    pub fn start_full_sync_snapshot(&mut self, mut current: Option<&mut Session>) {
        let mut waiting = Vec::new();
        let (mut all_eof, mut oldest) = (true, u64::MAX);
        for &id in &self.repl.replicas {
            let s = match &current {
                Some(s) if s.id == id => Some(&**s),
                _ => self.clients.get(&id).map(|b| &**b),
            };
            if let Some(s) = s
                && let Some(fs) = s.full_sync.as_ref().filter(|f| f.waiting())
            {
                waiting.push(id);
                all_eof &= s.replica_capa_eof;
                oldest = oldest.min(fs.since_ms);
            }
        }
        if waiting.is_empty() {
            return;
        }
        // Everything produced so far is in the stream before the snapshot's point.
        self.drain_repl_feed();
        let diskless = self.config.bool("repl-diskless-sync") && all_eof;
        let (offset, eof_header) = if self.bgsave_in_progress() {
            // A running snapshot to disk that another replica already waits for is shared:
            // the newcomer's stream starts where that one's does (Redis attaches to its
            // BGSAVE the same way). A diskless one can't be joined midway.
            let peer = self.repl.replicas.iter().filter_map(|id| self.clients.get(id)).find_map(|s| {
                s.full_sync
                    .as_ref()
                    .filter(|f| matches!(f.phase, Phase::Snapshot { diskless: false }))
                    .map(|f| f.offset)
            });
            match peer {
                Some(offset) if self.disk_bgsave_in_progress() && !diskless => (offset, None),
                _ => return,
            }
        } else {
            if diskless {
                let delay_ms = self.config.int("repl-diskless-sync-delay").max(0) as u64 * 1000;
                let max = self.config.int("repl-diskless-sync-max-replicas").max(0) as usize;
                let enough = max > 0 && waiting.len() >= max;
                if !enough && self.now_ms.saturating_sub(oldest) < delay_ms {
                    return;
                }
            }
            let started = if diskless { self.start_snapshot_to_replicas() } else { self.start_bgsave().map(|()| None) };
            let eof_header = match started {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!("Can't start the snapshot for a full sync: {e}");
                    for id in waiting {
                        self.drop_waiting_replica(id, current.as_deref_mut());
                    }
                    return;
                }
            };
            let target = if diskless { "replicas sockets" } else { "disk" };
            tracing::info!("Starting BGSAVE for SYNC with target: {target}");
            // Everything before now is in the snapshot; what follows starts with a SELECT.
            self.repl.feed.forget_db();
            (self.repl.offset, eof_header)
        };
        let fullresync = format!("+FULLRESYNC {} {offset}\r\n", self.repl.replid);
        let current_id = current.as_ref().map_or(0, |c| c.id);
        for id in waiting {
            let Some(sess) = self.replica_mut(id, current.as_deref_mut()) else { continue };
            let Some(fs) = sess.full_sync.as_mut() else { continue };
            fs.phase = Phase::Snapshot { diskless };
            fs.offset = offset;
            sess.repl_cursor = Some(offset + 1);
            if fs.psync {
                sess.out.extend_from_slice(fullresync.as_bytes());
            }
            if let Some(h) = eof_header.as_deref() {
                sess.out.extend_from_slice(h);
            }
            if id != current_id {
                self.pending_writes.push(id);
            }
        }
    }

    /// The replicas a diskless snapshot is written to.
    pub fn diskless_targets(&self) -> Vec<ClientId> {
        self.repl
            .replicas
            .iter()
            .copied()
            .filter(|id| {
                self.clients
                    .get(id)
                    .and_then(|s| s.full_sync.as_ref())
                    .is_some_and(|f| matches!(f.phase, Phase::Snapshot { diskless: true }))
            })
            .collect()
    }

    /// Whether a diskless snapshot may pass on more: no target has [`SOCKET_ROOM`] unsent.
    pub fn diskless_room(&self, targets: &[ClientId]) -> bool {
        targets.iter().all(|id| self.clients.get(id).is_none_or(|s| s.out.len() < SOCKET_ROOM))
    }

    /// Bytes of a diskless snapshot go to its replicas.
    pub fn send_to_diskless(&mut self, targets: &[ClientId], bytes: &[u8]) {
        for id in targets {
            if let Some(s) = self.clients.get_mut(id) {
                s.out.extend_from_slice(bytes);
                self.stats.net_repl_output_bytes += bytes.len() as u64;
                self.pending_writes.push(*id);
            }
        }
    }

    /// A diskless snapshot's last bytes (the checksum and the mark) went out: its replicas
    /// are online and get the stream after their first ACK.
    pub fn diskless_sent(&mut self, targets: &[ClientId]) {
        for id in targets {
            let Some(s) = self.clients.get_mut(id) else { continue };
            if let Some(fs) = s.full_sync.as_mut() {
                fs.phase = Phase::AwaitAck;
                s.repl_ack_ms = self.now_ms;
                tracing::info!(
                    "Streamed RDB transfer with replica {} succeeded (socket). Waiting for REPLCONF ACK from replica to enable streaming",
                    s.replica_name()
                );
            }
        }
    }

    /// REPLCONF ACK from a replica: after a diskless image, the stream it is owed starts.
    pub fn replica_acked(&mut self, sess: &mut Session) {
        if sess.full_sync.as_ref().is_some_and(|f| matches!(f.phase, Phase::AwaitAck)) {
            sess.full_sync = None;
            tracing::info!("Synchronization with replica {} succeeded", sess.replica_name());
        }
    }

    /// A snapshot ended. To disk: the replicas waiting for it are sent the file (see
    /// [`refill_from_file`]), or disconnected if it failed (they will try again). A diskless
    /// one that did not complete: its replicas are disconnected.
    pub fn full_syncs_after_snapshot(&mut self, ok: bool) {
        let running: Vec<(ClientId, bool)> = self
            .repl
            .replicas
            .iter()
            .filter_map(|id| match self.clients.get(id)?.full_sync.as_ref()?.phase {
                Phase::Snapshot { diskless } => Some((*id, diskless)),
                _ => None,
            })
            .collect();
        let path = self.rdb_path();
        for (id, diskless) in running {
            let file = if ok && !diskless { std::fs::File::open(&path).ok() } else { None };
            let len = file.as_ref().and_then(|f| f.metadata().ok()).map(|m| m.len());
            let (Some(file), Some(len)) = (file, len) else {
                tracing::warn!("SYNC failed: the snapshot did not complete; the replica is disconnected");
                self.drop_waiting_replica(id, None);
                continue;
            };
            let Some(sess) = self.clients.get_mut(&id) else { continue };
            let Some(fs) = sess.full_sync.as_mut() else { continue };
            let header = format!("${len}\r\n");
            sess.out.extend_from_slice(header.as_bytes());
            fs.phase = Phase::SendFile { file, left: len };
            self.stats.net_repl_output_bytes += header.len() as u64;
            match refill_from_file(sess, self.now_ms) {
                Ok(n) => self.stats.net_repl_output_bytes += n as u64,
                Err(e) => {
                    tracing::warn!("SYNC failed. Can't read the snapshot file: {e}");
                    self.drop_waiting_replica(id, None);
                    continue;
                }
            }
            self.pending_writes.push(id);
        }
    }

    fn drop_waiting_replica(&mut self, id: ClientId, current: Option<&mut Session>) {
        match current {
            Some(s) if s.id == id => {
                s.full_sync = None;
                s.close_after_reply = true;
            }
            _ => self.to_close.push(id),
        }
        self.repl.replicas.retain(|r| *r != id);
    }

    /// Every second a replica waiting for its snapshot gets a newline, so it sees the master
    /// alive (Redis's keep-alive before `+FULLRESYNC` and before the image's `$<len>`).
    pub fn keep_waiting_replicas_alive(&mut self) {
        if self.now_ms.saturating_sub(self.repl.last_newline_ms) < 1000 {
            return;
        }
        self.repl.last_newline_ms = self.now_ms;
        for id in &self.repl.replicas {
            let Some(s) = self.clients.get_mut(id) else { continue };
            let waits = s
                .full_sync
                .as_ref()
                .is_some_and(|f| matches!(f.phase, Phase::Waiting | Phase::Snapshot { diskless: false }));
            if waits && s.out.is_empty() {
                s.out.extend_from_slice(b"\n");
                self.pending_writes.push(*id);
            }
        }
    }

    /// A replica of the function libraries alone: their image, made at once (it is small).
    pub fn attach_functions_replica(&mut self, sess: &mut Session) -> std::io::Result<Vec<u8>> {
        self.drain_repl_feed();
        self.ensure_backlog();
        let mut rdb = Vec::new();
        self.write_snapshot_of(&mut rdb, false)?;
        let mut out = format!("${}\r\n", rdb.len()).into_bytes();
        out.extend_from_slice(&rdb);
        self.add_replica(sess);
        sess.repl_cursor = Some(self.repl.offset + 1);
        self.repl.sync_full += 1;
        self.repl.feed.forget_db();
        Ok(out)
    }
}
