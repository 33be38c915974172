//! Snapshots on disk: SAVE, save points, load at start-up, SHUTDOWN's final save.
//!
//! The file is Redis 7.0's RDB (see `persistence::rdb`), written to `temp-<pid>.rdb` in `dir`,
//! flushed to disk and renamed over `dbfilename`, so a crash mid-save never leaves a torn file.
//! Snapshots are taken synchronously for now; the forkless incremental snapshot (serialising
//! the keyspace in slices between event-loop iterations) is the next step of this module.

use std::io::Write;
use std::path::PathBuf;

use tracing::{info, warn};

use crate::persistence::child;
use crate::persistence::rdb::{self, LoadOptions, RdbError, SaveOptions};
use crate::persistence::snapshot_writer::{AsCommands, Chunk, child_writer, writer_thread};
use crate::server::ServerState;
use crate::server::state::unix_ms;
use crate::types::stream::NodeLimits;

/// What the last save did (INFO persistence).
#[derive(Debug, Default, Clone)]
pub struct SaveStats {
    pub last_save_secs: u64,
    pub last_ok: bool,
    pub saves: u64,
    pub last_duration_secs: i64,
    /// When the last background save was attempted (a failed one is retried after 5 s).
    pub last_attempt_secs: u64,
    /// Keys the last RDB load took, and those it skipped as already expired (INFO).
    pub last_load_loaded: u64,
    pub last_load_expired: u64,
    /// Background snapshots started (BGSAVE, AOF rewrites): INFO's total_forks, the count
    /// tools watch for Redis's forks.
    pub snapshots_started: u64,
    /// The peak cost of the last RDB snapshot and of the last AOF rewrite (INFO's
    /// `rdb_last_cow_size`, `aof_last_cow_size`).
    pub rdb_last_cow: u64,
    pub aof_last_cow: u64,
}

impl ServerState {
    pub fn rdb_path(&self) -> PathBuf {
        PathBuf::from(self.config.str("dbfilename"))
    }

    pub fn load_options(&self) -> LoadOptions {
        LoadOptions {
            hash: self.hot.hash,
            zset: self.hot.zset,
            set_max_intset: self.hot.set_max_intset,
            list_fill: self.hot.list_max_listpack,
            stream: NodeLimits {
                max_bytes: self.config.int("stream-node-max-bytes").max(0) as usize,
                max_entries: self.config.int("stream-node-max-entries").max(0) as usize,
            },
        }
    }

    /// The start of an RDB file: magic, Redis's aux fields, then the FUNCTION libraries.
    fn rdb_header(&self, opts: rdb::SaveOptions, aof_base: bool) -> rdb::Writer {
        let mut w = rdb::Writer::new(opts);
        w.aux("redis-ver", crate::util::REDIS_VERSION);
        w.aux("redis-bits", "64");
        w.aux("ctime", &(unix_ms() / 1000).to_string());
        w.aux("used-mem", &crate::alloc::used_memory().to_string());
        // A server with a replication history records where in it the data set is, to
        // continue it after a restart (Redis's rdbPopulateSaveInfo).
        if self.repl.backlog.is_some() || self.master.is_some() {
            let db = match self.master.as_deref() {
                Some(m) => m.stream_db(),
                None => self.repl.feed.current_db().unwrap_or(0),
            };
            w.aux("repl-stream-db", &db.to_string());
            w.aux("repl-id", &self.repl.replid);
            w.aux("repl-offset", &self.repl.offset.to_string());
        }
        w.aux("aof-base", if aof_base { "1" } else { "0" });
        if let Some(f) = self.functions.as_deref() {
            for lib in f.libraries.values() {
                w.function(&lib.code);
            }
        }
        w
    }

    /// Writes the whole dataset as an RDB file to `out`, streaming: records go out in 1 MB
    /// pieces as they are produced, with the checksum computed on the way.
    pub fn write_snapshot(&self, out: &mut impl Write) -> std::io::Result<()> {
        self.write_snapshot_of(out, true)
    }

    /// [`Self::write_snapshot`], or (`keys` false) the function libraries alone (what
    /// `redis-cli --functions-rdb` asks a master for).
    pub fn write_snapshot_of(&self, out: &mut impl Write, keys: bool) -> std::io::Result<()> {
        self.write_image(out, keys, false)
    }

    /// The data set as an AOF base file in RDB format (its `aof-base` aux field set).
    pub fn write_aof_base_snapshot(&self, out: &mut impl Write) -> std::io::Result<()> {
        self.write_image(out, true, true)
    }

    fn write_image(&self, out: &mut impl Write, keys: bool, aof_base: bool) -> std::io::Result<()> {
        let opts = self.save_options();
        let mut w = self.rdb_header(opts, aof_base);
        let mut crc = rdb::Checksum::default();
        let mut emit = |w: &mut rdb::Writer, out: &mut dyn Write| -> std::io::Result<()> {
            let b = w.take_bytes();
            crc.update(&b);
            out.write_all(&b)
        };
        let now = self.now_ms;
        // rdb-key-save-delay (a test knob, as in Redis): a pause per key, during which a
        // second SIGINT may give up the save.
        let delay = self.config.int("rdb-key-save-delay").max(0) as u64;
        for (i, db) in self.dbs.iter().enumerate() {
            if db.is_empty() || !keys {
                continue;
            }
            w.select_db(i, db.len(), db.expires_len());
            let record = self.records_access();
            for (k, e, stamp) in db.iter_stamped() {
                let at = e.expire_at();
                // Keys past their deadline but not yet reclaimed are written, as Redis writes
                // them: a master's load skips them (and counts them, INFO's
                // rdb_last_load_keys_expired), a replica's keeps them for the master's DEL.
                let (idle, freq) = if record { db.stamping().persisted(stamp, now) } else { (None, None) };
                w.key_with_access(k, &e.value, at, idle, freq);
                if delay > 0 {
                    std::thread::sleep(std::time::Duration::from_micros(delay.min(1_000_000)));
                    if self.shutdown_insisted() {
                        return Err(std::io::Error::other("interrupted by SIGINT"));
                    }
                }
                if w.pending() >= 1 << 20 {
                    emit(&mut w, out)?;
                }
            }
        }
        emit(&mut w, out)?;
        out.write_all(&crc.trailer(opts.checksum))
    }

    /// SAVE: writes the snapshot atomically. Updates the save statistics either way.
    pub fn save_rdb(&mut self) -> Result<(), RdbError> {
        let start = std::time::Instant::now();
        let tmp = PathBuf::from(format!("temp-{}.rdb", std::process::id()));
        let result = (|| -> Result<(), RdbError> {
            let f = std::fs::File::create(&tmp)?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, f);
            self.write_snapshot(&mut out)?;
            let f = out.into_inner().map_err(|e| e.into_error())?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.rdb_path())?;
            Ok(())
        })();
        self.save_stats.last_duration_secs = start.elapsed().as_secs() as i64;
        match &result {
            Ok(()) => {
                self.reset_dirty();
                self.save_stats.last_save_secs = unix_ms() / 1000;
                self.save_stats.last_ok = true;
                self.save_stats.saves += 1;
                info!("DB saved on disk");
            }
            Err(e) => {
                // Only a failed BGSAVE stops writes (Redis's lastbgsave_status); a failed
                // foreground save is the caller's error.
                let _ = std::fs::remove_file(&tmp);
                warn!("Failed saving the DB: {e}");
            }
        }
        result
    }

    /// Save points (`save <seconds> <changes> ...`): true when one is due.
    pub fn save_point_due(&self) -> bool {
        let Some(points) = crate::config::parse_save(self.config.str("save")) else { return false };
        let now = unix_ms() / 1000;
        if !self.save_stats.last_ok && now.saturating_sub(self.save_stats.last_attempt_secs) < 5 {
            return false; // Redis's CONFIG_BGSAVE_RETRY_DELAY
        }
        let elapsed = now.saturating_sub(self.save_stats.last_save_secs);
        points.iter().any(|&(secs, changes)| self.dirty >= changes && elapsed >= secs && changes > 0)
    }
}

/// A running forkless BGSAVE: the databases walk their tables in slices (keyspace::snapshot)
/// and the records travel to a writer thread that checksums, writes and renames the file.
pub struct Bgsave {
    tx: Option<std::sync::mpsc::SyncSender<Chunk>>,
    handle: Option<std::thread::JoinHandle<Result<(), std::io::Error>>>,
    /// Records waiting for room in the channel (backpressure keeps this small).
    queue: std::collections::VecDeque<Vec<u8>>,
    queued_bytes: usize,
    started: std::time::Instant,
    /// Database of the last record sent (a SELECTDB precedes a switch).
    current_db: Option<usize>,
    scan_done: bool,
    committed: bool,
    purpose: Purpose,
    /// rdb-key-save-delay when the snapshot started: Redis's child keeps the value it was
    /// forked with, so setting it to 0 does not hurry a save already running.
    key_delay_us: i64,
    /// When the next key may be written under rdb-key-save-delay.
    next_key_at: Option<std::time::Instant>,
    /// Under rdb-key-save-delay: the walk wrote its last key, whose delay still runs.
    walked: bool,
    /// The writer process, when the snapshot has one.
    pub child_pid: Option<u32>,
    /// Keys in the data set when it started (INFO's `current_save_keys_total`).
    keys_total: usize,
    /// The most the snapshot held beside the data set (see [`ServerState::snapshot_cost`]).
    cost_peak: usize,
}

/// What a snapshot is for.
enum Purpose {
    /// BGSAVE: `dbfilename`.
    Rdb,
    /// BGREWRITEAOF: the AOF's next base file, in RDB format or as commands.
    AofRewrite { rdb: bool },
    /// A diskless full sync: the records go into the waiting replicas' sockets (see
    /// server::full_sync), the checksum computed on the way.
    Replicas { mark: String, crc: Box<rdb::Checksum> },
}

/// How much the walk may hold in memory before waiting for the writer thread.
const QUEUE_LIMIT: usize = 4 * 1024 * 1024;
/// Records travel in pieces of at most this size, and the channel holds few of them, so
/// what is in flight stays a few MB whatever the dataset.
const CHUNK: usize = 1024 * 1024;
/// Time budget of one walk slice, so a snapshot never stalls the event loop.
const SLICE: std::time::Duration = std::time::Duration::from_millis(1);

/// What went wrong with a snapshot, for the log.
fn outcome_text(r: &Option<std::thread::Result<Result<(), std::io::Error>>>) -> String {
    match r {
        Some(Ok(Err(e))) => e.to_string(),
        Some(Err(_)) => "the writer thread panicked".into(),
        _ => "no writer".into(),
    }
}

impl ServerState {
    pub fn save_options(&self) -> SaveOptions {
        SaveOptions {
            compression: self.config.bool("rdbcompression"),
            checksum: self.config.bool("rdbchecksum"),
            hash: self.hot.hash,
            zset: self.hot.zset,
            list_fill: self.hot.list_max_listpack,
        }
    }

    pub fn bgsave_in_progress(&self) -> bool {
        self.bgsave.is_some()
    }

    /// Starts a forkless background save of the dataset as it is now.
    pub fn start_bgsave(&mut self) -> Result<(), std::io::Error> {
        let target = self.rdb_path();
        self.start_snapshot(target, Purpose::Rdb)
    }

    /// A snapshot that becomes the AOF's next base file: written to `target`, in RDB format
    /// (`rdb`) or as commands.
    pub fn start_snapshot_for_aof(&mut self, target: PathBuf, rdb: bool) -> std::io::Result<()> {
        self.start_snapshot(target, Purpose::AofRewrite { rdb })
    }

    pub fn aof_rewrite_in_progress(&self) -> bool {
        self.bgsave.as_ref().is_some_and(|b| matches!(b.purpose, Purpose::AofRewrite { .. }))
    }

    /// A snapshot in RDB form runs, to the file or to replicas (Redis: an RDB child).
    pub fn rdb_bgsave_in_progress(&self) -> bool {
        self.bgsave.as_ref().is_some_and(|b| matches!(b.purpose, Purpose::Rdb | Purpose::Replicas { .. }))
    }

    /// A snapshot to `dbfilename` runs.
    pub fn disk_bgsave_in_progress(&self) -> bool {
        self.bgsave.as_ref().is_some_and(|b| matches!(b.purpose, Purpose::Rdb))
    }

    /// Starts a diskless snapshot for replicas: returns what they are sent first (the
    /// EOF mark's announcement and the file header); the walk sends the rest.
    pub fn start_snapshot_to_replicas(&mut self) -> Result<Option<Vec<u8>>, std::io::Error> {
        let mark = super::repl::new_replid();
        let header = self.rdb_header(self.save_options(), false).take_bytes();
        let mut crc = Box::<rdb::Checksum>::default();
        crc.update(&header);
        let mut first = format!("$EOF:{mark}\r\n").into_bytes();
        first.extend_from_slice(&header);
        self.start_snapshot(self.rdb_path(), Purpose::Replicas { mark, crc })?;
        Ok(Some(first))
    }

    /// Whether saved keys carry IDLE / FREQ: Redis records access data only under LRU / LFU
    /// policies.
    fn records_access(&self) -> bool {
        let policy = self.hot.eviction.policy;
        policy.is_lfu() || policy.is_lru()
    }

    fn start_snapshot(&mut self, target: PathBuf, purpose: Purpose) -> Result<(), std::io::Error> {
        let opts = self.save_options();
        let header = self.rdb_header(opts, matches!(purpose, Purpose::AofRewrite { .. })).take_bytes();
        let (tx, rx) = std::sync::mpsc::sync_channel(2);
        let tmp = target.with_file_name(format!("temp-bg-{}.rdb", std::process::id()));
        let checksum = opts.checksum;
        // A base written as commands: the image is converted once it is complete.
        let as_commands = match purpose {
            Purpose::AofRewrite { rdb: false } => Some(AsCommands {
                load: self.load_options(),
                save: opts,
                timestamp: self.config.bool("aof-timestamp-enabled").then(|| unix_ms() / 1000),
            }),
            _ => None,
        };
        let mut child_pid = None;
        let handle = match self.snapshot_writer.clone() {
            _ if matches!(purpose, Purpose::Replicas { .. }) => None,
            Some(exe) => {
                let (prefix, suffix) = match purpose {
                    Purpose::Rdb | Purpose::Replicas { .. } => ("temp-", ".rdb"),
                    Purpose::AofRewrite { .. } => ("temp-rewriteaof-bg-", ".aof"),
                };
                let mut child = std::process::Command::new(exe)
                    .args(child::args(prefix, suffix, &target, checksum))
                    .stdin(std::process::Stdio::piped())
                    .spawn()?;
                child_pid = Some(child.id());
                let child_tmp = child::temp_path(prefix, suffix, child.id());
                let pipe = child.stdin.take().ok_or_else(|| std::io::Error::other("no pipe to the child"))?;
                Some(
                    std::thread::Builder::new()
                        .name("ember-bgsave".into())
                        .spawn(move || child_writer(rx, pipe, child, child_tmp, &target, header, as_commands))?,
                )
            }
            None => Some(
                std::thread::Builder::new()
                    .name("ember-bgsave".into())
                    .spawn(move || writer_thread(rx, tmp, target, header, checksum, as_commands))?,
            ),
        };
        let tx = handle.is_some().then_some(tx);
        let at = self.now_ms;
        let record_access = self.records_access();
        if matches!(purpose, Purpose::Rdb) {
            self.save_stats.last_attempt_secs = unix_ms() / 1000;
        }
        let keys_total = self.dbs.iter().map(|d| d.len()).sum();
        for db in &mut self.dbs {
            db.start_snapshot(opts, at, record_access);
        }
        self.dirty_at_bgsave = self.dirty;
        self.save_stats.snapshots_started += 1;
        self.bgsave = Some(Bgsave {
            tx,
            handle,
            queue: Default::default(),
            queued_bytes: 0,
            started: std::time::Instant::now(),
            current_db: None,
            scan_done: false,
            committed: false,
            key_delay_us: self.config.int("rdb-key-save-delay"),
            next_key_at: None,
            walked: false,
            purpose,
            child_pid,
            keys_total,
            cost_peak: 0,
        });
        Ok(())
    }

    /// One slice of a running BGSAVE (called by the event loop between polls). Returns true
    /// while there is more to do right away.
    pub fn bgsave_step(&mut self) -> bool {
        let cost = self.snapshot_cost();
        if let Some(bg) = self.bgsave.as_mut() {
            bg.cost_peak = bg.cost_peak.max(cost);
        }
        let save_opts = self.save_options();
        let Some(bg) = self.bgsave.as_mut() else { return false };
        // The writer process died (killed): nothing more goes to it, and once its thread has
        // seen it end, the save is over (failed).
        if bg.tx.is_some() && bg.child_pid.is_some_and(crate::persistence::child::exited) {
            bg.tx = None;
            bg.queue.clear();
            bg.queued_bytes = 0;
        }
        if bg.tx.is_none() && !bg.committed && bg.handle.as_ref().is_some_and(|h| h.is_finished()) {
            self.finish_bgsave();
            return false;
        }
        // rdb-key-save-delay (a test knob, as in Redis): one key per that many microseconds.
        let key_delay_us = bg.key_delay_us;
        if key_delay_us > 0 && !bg.scan_done {
            let now = std::time::Instant::now();
            if bg.next_key_at.is_some_and(|t| now < t) {
                return false;
            }
            // Redis sleeps after each key, so even a one-key snapshot lasts the delay.
            if bg.walked || bg.keys_total == 0 {
                bg.scan_done = true;
            } else {
                bg.next_key_at = Some(now + std::time::Duration::from_micros(key_delay_us as u64));
                bg.walked = self.dbs.iter_mut().all(|db| db.snapshot_step(1));
            }
        } else if !bg.scan_done && bg.queued_bytes < QUEUE_LIMIT {
            let deadline = std::time::Instant::now() + SLICE;
            let mut all_done = true;
            for db in self.dbs.iter_mut() {
                while !db.snapshot_step(64) {
                    if std::time::Instant::now() >= deadline || db.snapshot_pending() > QUEUE_LIMIT {
                        break;
                    }
                }
                if !db.snapshot_step(0) {
                    all_done = false;
                    break;
                }
            }
            bg.scan_done = all_done;
        }
        // Records produced by the walk and by changes to keys not yet written.
        let opts = save_opts;
        for (i, db) in self.dbs.iter_mut().enumerate() {
            let bytes = db.take_snapshot_bytes();
            if bytes.is_empty() {
                continue;
            }
            if bg.current_db != Some(i) {
                let mut sel = rdb::Writer::records(opts);
                sel.select(i);
                let b = sel.take_bytes();
                bg.queued_bytes += b.len();
                bg.queue.push_back(b);
                bg.current_db = Some(i);
            }
            bg.queued_bytes += bytes.len();
            if bytes.len() <= CHUNK {
                bg.queue.push_back(bytes);
            } else {
                bg.queue.extend(bytes.chunks(CHUNK).map(|c| c.to_vec()));
            }
        }
        if matches!(bg.purpose, Purpose::Replicas { .. }) {
            return self.diskless_step();
        }
        while let Some(front) = bg.queue.pop_front() {
            let len = front.len();
            match bg.tx.as_ref().map(|tx| tx.try_send(Chunk::Data(front))) {
                Some(Ok(())) => bg.queued_bytes -= len,
                Some(Err(std::sync::mpsc::TrySendError::Full(Chunk::Data(b)))) => {
                    bg.queue.push_front(b);
                    break;
                }
                _ => break,
            }
        }
        if bg.scan_done
            && bg.queue.is_empty()
            && !bg.committed
            && let Some(tx) = bg.tx.as_ref()
            && tx.try_send(Chunk::Commit).is_ok()
        {
            bg.committed = true;
            bg.tx = None;
        }
        // The writer ends after the commit, or early when it failed (the file could not be
        // created or written): either way the save is over.
        if bg.handle.as_ref().is_some_and(|h| h.is_finished()) {
            self.finish_bgsave();
            return false;
        }
        !bg.scan_done
    }

    /// The sending side of [`Self::bgsave_step`] for a diskless snapshot: records go to the
    /// replicas' sockets as fast as the slowest drains; at the end the checksum and the mark.
    fn diskless_step(&mut self) -> bool {
        let targets = self.diskless_targets();
        if targets.is_empty() {
            warn!("Diskless rdb transfer, last replica dropped, killing fork child.");
            self.abort_bgsave();
            return false;
        }
        let checksum = self.config.bool("rdbchecksum");
        loop {
            if !self.diskless_room(&targets) {
                return false;
            }
            let Some(bg) = self.bgsave.as_mut() else { return false };
            let Some(front) = bg.queue.pop_front() else { break };
            bg.queued_bytes -= front.len();
            if let Purpose::Replicas { crc, .. } = &mut bg.purpose {
                crc.update(&front);
            }
            self.send_to_diskless(&targets, &front);
        }
        let Some(bg) = self.bgsave.as_mut() else { return false };
        if !bg.scan_done {
            return true;
        }
        let Some(bg) = self.bgsave.take() else { return false };
        self.end_snapshots();
        // Redis's words for the moment its parent has the child's whole image.
        warn!("Diskless rdb transfer, done reading from pipe, {} replicas still up.", targets.len());
        if let Purpose::Replicas { mark, crc } = bg.purpose {
            let mut end = crc.trailer(checksum);
            end.extend_from_slice(mark.as_bytes());
            self.send_to_diskless(&targets, &end);
        }
        self.diskless_sent(&targets);
        info!("Background RDB transfer terminated with success");
        false
    }

    /// Ends every database's snapshot state, freeing it on another thread (Redis frees big
    /// objects lazily for the same reason: no stall on the event loop).
    fn end_snapshots(&mut self) {
        let states: Vec<_> = self.dbs.iter_mut().filter_map(|d| d.end_snapshot()).collect();
        if !states.is_empty() {
            let _ = std::thread::Builder::new().name("ember-free".into()).spawn(move || drop(states));
        }
    }

    fn finish_bgsave(&mut self) {
        self.note_snapshot_cost();
        let Some(mut bg) = self.bgsave.take() else { return };
        self.end_snapshots();
        let result = bg.handle.take().map(|h| h.join());
        if matches!(bg.purpose, Purpose::Replicas { .. }) {
            return;
        }
        if let Purpose::AofRewrite { rdb } = bg.purpose {
            let ok = matches!(result, Some(Ok(Ok(()))));
            if !ok {
                warn!("Background AOF rewrite failed: {}", outcome_text(&result));
            }
            self.aof_rewrite_done(ok, rdb);
            return;
        }
        // Replicas waiting for this snapshot get it (or are let go if it failed).
        self.full_syncs_after_snapshot(matches!(result, Some(Ok(Ok(())))));
        self.save_stats.last_duration_secs = bg.started.elapsed().as_secs() as i64;
        match result {
            Some(Ok(Ok(()))) => {
                self.dirty = self.dirty.saturating_sub(self.dirty_at_bgsave);
                self.save_stats.last_save_secs = unix_ms() / 1000;
                self.save_stats.last_ok = true;
                self.save_stats.saves += 1;
                info!("Background saving terminated with success");
            }
            other => {
                self.save_stats.last_ok = false;
                warn!("Background saving error: {}", outcome_text(&other));
            }
        }
    }

    /// Abandons a running BGSAVE (FLUSHALL, a reload, shutdown): no partial file remains.
    pub fn abort_bgsave(&mut self) {
        self.note_snapshot_cost();
        let Some(mut bg) = self.bgsave.take() else { return };
        self.end_snapshots();
        bg.tx = None;
        if let Some(h) = bg.handle.take() {
            let _ = h.join();
        }
        warn!("Background saving aborted");
        if matches!(bg.purpose, Purpose::Rdb | Purpose::Replicas { .. }) {
            self.full_syncs_after_snapshot(false);
        }
    }

    /// What a running snapshot holds beside the data set: the names of the keys it wrote
    /// and the records waiting for the writer. It is the forkless counterpart of the pages a
    /// Redis child copies on write, and INFO reports it as `current_cow_size`.
    pub fn snapshot_cost(&self) -> usize {
        let Some(bg) = self.bgsave.as_ref() else { return 0 };
        bg.queued_bytes + self.dbs.iter().map(|d| d.snapshot_overhead()).sum::<usize>()
    }

    /// A snapshot ends: its peak cost becomes INFO's `rdb_last_cow_size` or
    /// `aof_last_cow_size`.
    fn note_snapshot_cost(&mut self) {
        let cost = self.snapshot_cost();
        let Some(bg) = self.bgsave.as_ref() else { return };
        let peak = bg.cost_peak.max(cost) as u64;
        match bg.purpose {
            Purpose::AofRewrite { .. } => self.save_stats.aof_last_cow = peak,
            Purpose::Rdb | Purpose::Replicas { .. } => self.save_stats.rdb_last_cow = peak,
        }
    }

    /// The most a running snapshot has held so far (INFO's `current_cow_peak`).
    pub fn snapshot_cost_peak(&self) -> usize {
        self.bgsave.as_ref().map_or(0, |b| b.cost_peak.max(self.snapshot_cost()))
    }

    /// INFO's `current_save_keys_processed` and `current_save_keys_total`.
    pub fn snapshot_progress(&self) -> (usize, usize) {
        let Some(bg) = self.bgsave.as_ref() else { return (0, 0) };
        (self.dbs.iter().map(|d| d.snapshot_written()).sum(), bg.keys_total)
    }
}
