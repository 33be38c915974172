//! The append-only file, in Redis 7.0's multi-part layout: `appenddirname/` holds a base file
//! (an RDB image), an incremental file of commands in RESP, and a manifest naming them:
//!
//! ```text
//! file appendonly.aof.1.base.rdb seq 1 type b
//! file appendonly.aof.1.incr.aof seq 1 type i
//! ```
//!
//! Commands are logged in a replay-safe form, as Redis 7.0 propagates them (see
//! `server::repl`): deadlines as absolute times (`SET .. PXAT`, `PEXPIREAT`, `RESTORE ..
//! ABSTTL`, so relative TTLs replay to the same instant); float increments as the value
//! they produced; evicted and expired keys are logged as DEL; XADD's generated ID is written explicitly;
//! SPOP is logged as the SREM of what it popped; consumer-group commands whose effects depend
//! on time (XREADGROUP, XCLAIM, XAUTOCLAIM) log the stream's resulting state as a RESTORE.
//!
//! `appendfsync always` writes and fsyncs the log before any reply of the commands it holds
//! is sent (the event loop calls [`ServerState::aof_flush`] before writing to a client), so
//! an acknowledged write is on disk. `everysec` writes at the same points and fsyncs from a
//! background thread about once a second; `no` leaves flushing to the kernel.
//!
//! At start-up the manifest's files are loaded in order; a last incremental file cut short by
//! a crash is truncated to its last complete command (`aof-load-truncated yes`) with a
//! warning, anything else malformed stops the start-up with the file and offset.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use tracing::{info, warn};

use crate::protocol::{Decoder, Limits};
use crate::server::repl::{Feed, Target};
use crate::server::{ServerState, Session};

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fsync {
    Always,
    EverySec,
    No,
}

impl Fsync {
    pub fn parse(s: &str) -> Fsync {
        match s {
            "always" => Fsync::Always,
            "no" => Fsync::No,
            _ => Fsync::EverySec,
        }
    }
}

pub struct Aof {
    dir: PathBuf,
    name: String,
    /// The manifest's files: the base and the incremental files after it, in order.
    pub base: String,
    pub incrs: Vec<String>,
    /// Sequence number the next base or incremental file gets.
    pub next_seq: u64,
    /// The last write or fsync failed (disk full, I/O error): writes are refused with MISCONF
    /// until a flush succeeds again.
    pub write_error: Option<String>,
    /// Rewrites done, and whether the last one succeeded (INFO).
    file: std::fs::File,
    pending: Feed,
    pub fsync: Fsync,
    last_sync: Instant,
    /// everysec: the background thread that fsyncs the handles it is sent.
    syncer: Option<std::sync::mpsc::Sender<std::fs::File>>,
}

impl Aof {
    fn open(dir: &Path, name: &str, base: String, incrs: Vec<String>, fsync: Fsync) -> std::io::Result<Aof> {
        let last = incrs.last().cloned().unwrap_or_default();
        let file = std::fs::OpenOptions::new().create(true).append(true).open(dir.join(&last))?;
        let syncer = if fsync == Fsync::EverySec {
            let (tx, rx) = std::sync::mpsc::channel::<std::fs::File>();
            std::thread::Builder::new().name("ember-aof-fsync".into()).spawn(move || {
                for f in rx {
                    if let Err(e) = f.sync_data() {
                        warn!("AOF fsync failed: {e}");
                    }
                }
            })?;
            Some(tx)
        } else {
            None
        };
        let seq = |f: &String| f.rsplit('.').nth(2).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        let next_seq = incrs.iter().chain(std::iter::once(&base)).map(seq).max().unwrap_or(0) + 1;
        Ok(Aof {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            base,
            incrs,
            next_seq,
            write_error: None,
            file,
            pending: Feed::default(),
            fsync,
            last_sync: Instant::now(),
            syncer,
        })
    }

    /// Writes the manifest atomically (temp file, fsync, rename).
    pub fn write_manifest(&self) -> std::io::Result<()> {
        write_manifest(&self.dir, &self.name, &self.base, &self.incrs)
    }

    /// Starts a new incremental file (a rewrite begins): commands from now on go there, and
    /// the manifest lists it after the current ones until the rewrite completes.
    pub fn open_new_incr(&mut self, seq: u64) -> std::io::Result<String> {
        self.flush()?;
        let name = format!("{}.{seq}.incr.aof", self.name);
        self.file = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(&name))?;
        self.pending.forget_db();
        self.incrs.push(name.clone());
        self.write_manifest()?;
        Ok(name)
    }

    /// A rewrite finished: `base` (written from the snapshot) and the incremental file opened
    /// when it started replace everything before; older files are deleted.
    pub fn complete_rewrite(&mut self, base: String, incr: &str) -> std::io::Result<()> {
        let old: Vec<String> =
            std::iter::once(self.base.clone()).chain(self.incrs.iter().filter(|f| *f != incr).cloned()).collect();
        self.base = base;
        self.incrs = vec![incr.to_string()];
        self.write_manifest()?;
        for f in old.iter().filter(|f| !f.is_empty()) {
            let _ = std::fs::remove_file(self.dir.join(f));
        }
        Ok(())
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn size(&self) -> u64 {
        self.file.metadata().map(|m| m.len()).unwrap_or(0)
    }
}

/// Writes `name.manifest` in `dir` listing `base` and `incrs`, atomically (temp file, fsync,
/// rename).
fn write_manifest(dir: &Path, name: &str, base: &str, incrs: &[String]) -> std::io::Result<()> {
    let mut text = format!("file {base} seq {} type b\n", seq_of(base));
    for f in incrs {
        text.push_str(&format!("file {f} seq {} type i\n", seq_of(f)));
    }
    let tmp = dir.join("temp-manifest");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, dir.join(format!("{name}.manifest")))
}

fn seq_of(name: &str) -> u64 {
    name.rsplit('.').nth(2).and_then(|n| n.parse().ok()).unwrap_or(1)
}

impl Aof {
    /// Appends one command (with a SELECT first when the database changes).
    pub fn feed(&mut self, db: usize, argv: &[&[u8]]) {
        self.pending.push(db, argv);
    }

    pub fn has_pending(&self) -> bool {
        !self.pending.buf.is_empty()
    }

    /// Writes what is buffered, and fsyncs according to the policy.
    pub fn flush(&mut self) -> std::io::Result<()> {
        if self.pending.buf.is_empty() {
            return Ok(());
        }
        // On failure the bytes stay buffered and are retried at the next flush; a partial
        // write is cut back so the log never holds half a command.
        let len = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        if let Err(e) = self.file.write_all(&self.pending.buf) {
            let _ = self.file.set_len(len);
            return Err(e);
        }
        self.pending.buf.clear();
        match self.fsync {
            Fsync::Always => self.file.sync_data()?,
            Fsync::EverySec => {
                if self.last_sync.elapsed() >= Duration::from_secs(1) {
                    self.last_sync = Instant::now();
                    if let (Some(tx), Ok(f)) = (&self.syncer, self.file.try_clone()) {
                        let _ = tx.send(f);
                    }
                }
            }
            Fsync::No => {}
        }
        Ok(())
    }
}

/// Names in the manifest.
struct Manifest {
    base: String,
    incrs: Vec<String>,
}

fn parse_manifest(text: &str) -> Result<Manifest, String> {
    let mut base = None;
    let mut incrs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let get = |k: &str| words.chunks(2).find(|p| p[0] == k && p.len() == 2).map(|p| p[1]);
        let (Some(name), Some(kind)) = (get("file"), get("type")) else {
            return Err(format!("invalid AOF manifest line {}: '{line}'", i + 1));
        };
        if name.contains('/') {
            return Err(format!("invalid AOF file name in manifest line {}", i + 1));
        }
        match kind {
            "b" => base = Some(name.to_string()),
            "i" => incrs.push(name.to_string()),
            "h" => {} // history files: already folded into the base
            _ => return Err(format!("invalid AOF file type in manifest line {}", i + 1)),
        }
    }
    let base = base.ok_or("the AOF manifest names no base file")?;
    Ok(Manifest { base, incrs })
}

impl ServerState {
    fn aof_dir(&self) -> PathBuf {
        PathBuf::from(self.config.str("appenddirname"))
    }

    /// At start-up with `appendonly yes`: loads the AOF (creating it from the current,
    /// empty dataset the first time) and opens its incremental file for appending.
    pub fn open_aof(&mut self) -> Result<usize, String> {
        let dir = self.aof_dir();
        let name = self.config.str("appendfilename").to_string();
        let manifest_path = dir.join(format!("{name}.manifest"));
        let fsync = Fsync::parse(self.config.str("appendfsync"));
        let (keys, (base, incrs)) = match std::fs::read_to_string(&manifest_path) {
            Ok(text) => {
                let m = parse_manifest(&text)?;
                let base = std::fs::read(dir.join(&m.base)).map_err(|e| format!("cannot read {}: {e}", m.base))?;
                if m.base.ends_with(".rdb") {
                    self.load_rdb_bytes(&base).map_err(|e| format!("{}: {e}", m.base))?;
                } else {
                    self.replay(&dir.join(&m.base), false)?;
                }
                let last = m.incrs.len().saturating_sub(1);
                for (i, f) in m.incrs.iter().enumerate() {
                    self.replay(&dir.join(f), i == last)?;
                }
                let mut incrs = m.incrs;
                if incrs.is_empty() {
                    incrs.push(format!("{name}.1.incr.aof"));
                }
                (self.dbs.iter().map(|d| d.len()).sum(), (m.base, incrs))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                let base = format!("{name}.1.base.rdb");
                let incr = format!("{name}.1.incr.aof");
                let mut f = std::fs::File::create(dir.join(&base)).map_err(|e| e.to_string())?;
                self.write_snapshot(&mut f).map_err(|e| e.to_string())?;
                f.sync_all().map_err(|e| e.to_string())?;
                std::fs::File::create(dir.join(&incr)).map_err(|e| e.to_string())?;
                let text = format!("file {base} seq 1 type b\nfile {incr} seq 1 type i\n");
                let tmp = dir.join("temp-manifest");
                std::fs::write(&tmp, text).map_err(|e| e.to_string())?;
                std::fs::rename(&tmp, &manifest_path).map_err(|e| e.to_string())?;
                info!("Creating AOF base file {base} on server start");
                (0, (base, vec![incr]))
            }
            Err(e) => return Err(format!("cannot read {}: {e}", manifest_path.display())),
        };
        let aof = Aof::open(&dir, &name, base, incrs, fsync).map_err(|e| format!("cannot open the AOF: {e}"))?;
        self.aof = Some(aof);
        self.refresh_track_modified();
        Ok(keys)
    }

    /// Replays a file of RESP commands. A last file cut short mid-command is truncated to its
    /// last complete command when `aof-load-truncated` allows it.
    fn replay(&mut self, path: &Path, last: bool) -> Result<(), String> {
        self.replaying_aof = true;
        let r = self.replay_file(path, last);
        self.replaying_aof = false;
        r
    }

    fn replay_file(&mut self, path: &Path, last: bool) -> Result<(), String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut buf = BytesMut::from(&bytes[..]);
        let mut dec = Decoder::new();
        let mut sess = Session::new(0, "aof".into(), String::new(), -1, self.now_ms);
        sess.authenticated = true;
        sess.replaying = true;
        let limits = Limits { max_bulk_len: i64::MAX, authenticated: true };
        let mut good = 0usize;
        loop {
            match dec.decode_next(&mut buf, limits) {
                Ok(true) => {
                    let argv: Vec<Bytes> = dec.args().to_vec();
                    dec.clear_args();
                    self.update_time();
                    let reply = crate::commands::dispatch::execute(self, &mut sess, &argv);
                    sess.block = None;
                    if let crate::protocol::Reply::Error(e) = reply {
                        warn!("AOF {}: command {:?} failed: {e}", path.display(), String::from_utf8_lossy(&argv[0]));
                    }
                    good = bytes.len() - buf.len();
                }
                Ok(false) => break,
                Err(e) => {
                    return Err(format!(
                        "Bad file format reading the append only file {} at offset {good}: {e}",
                        path.display()
                    ));
                }
            }
        }
        if good < bytes.len() {
            if last && self.config.bool("aof-load-truncated") {
                warn!(
                    "!!! Warning: short read while loading the AOF file {}!!! Truncating the AOF at offset {good} ({} bytes dropped).",
                    path.display(),
                    bytes.len() - good
                );
                let f = std::fs::OpenOptions::new().write(true).open(path).map_err(|e| e.to_string())?;
                f.set_len(good as u64).map_err(|e| e.to_string())?;
            } else {
                return Err(format!(
                    "Unexpected end of file reading the append only file {} at offset {good}",
                    path.display()
                ));
            }
        }
        // Loading is not a change: drop what the replay raised.
        self.dirty = 0;
        for db in &mut self.dbs {
            db.take_events();
            db.take_modified();
            db.take_propagate_del();
        }
        Ok(())
    }

    /// CONFIG SET appendonly yes: logging starts now into a new incremental file, and a
    /// rewrite writes the base from the current data; the manifest naming both appears when
    /// the rewrite completes.
    pub fn start_aof_at_runtime(&mut self) -> Result<(), String> {
        if self.aof.is_some() {
            return Ok(());
        }
        let dir = self.aof_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let name = self.config.str("appendfilename").to_string();
        // Continue numbering after any files a previous run left.
        let seq = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| seq_of(&e.file_name().to_string_lossy())).max().unwrap_or(0))
            .unwrap_or(0)
            + 1;
        let incr = format!("{name}.{seq}.incr.aof");
        let fsync = Fsync::parse(self.config.str("appendfsync"));
        let mut aof = Aof::open(&dir, &name, String::new(), vec![incr], fsync).map_err(|e| e.to_string())?;
        aof.next_seq = seq;
        self.aof = Some(aof);
        self.refresh_track_modified();
        self.abort_bgsave();
        let Some(aof) = self.aof.as_mut() else { return Ok(()) };
        let base = format!("{name}.{seq}.base.rdb");
        aof.next_seq = seq + 1;
        let incr = aof.incrs[0].clone();
        let target = aof.dir().join(&base);
        self.start_snapshot_for_aof(target, base, incr).map_err(|e| e.to_string())
    }

    /// BGREWRITEAOF with `appendonly no` (as Redis does): the next base file in the AOF
    /// directory, for a later `appendonly yes` to start from. Returns the base's name and
    /// where to write it.
    pub fn plan_offline_rewrite(&self) -> Result<(String, PathBuf), String> {
        let dir = self.aof_dir();
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let name = self.config.str("appendfilename");
        let seq = std::fs::read_dir(&dir)
            .map(|rd| rd.filter_map(|e| e.ok()).map(|e| seq_of(&e.file_name().to_string_lossy())).max().unwrap_or(0))
            .unwrap_or(0)
            + 1;
        let base = format!("{name}.{seq}.base.rdb");
        let target = dir.join(&base);
        Ok((base, target))
    }

    /// The offline rewrite's base is written: the manifest now names only it, and the files
    /// the previous manifest named are deleted.
    pub fn complete_offline_rewrite(&self, base: &str) -> std::io::Result<()> {
        let dir = self.aof_dir();
        let name = self.config.str("appendfilename");
        let old = std::fs::read_to_string(dir.join(format!("{name}.manifest")))
            .ok()
            .and_then(|t| parse_manifest(&t).ok())
            .map(|m| std::iter::once(m.base).chain(m.incrs).collect::<Vec<_>>())
            .unwrap_or_default();
        write_manifest(&dir, name, base, &[])?;
        for f in old.iter().filter(|f| !f.is_empty() && f.as_str() != base) {
            let _ = std::fs::remove_file(dir.join(f));
        }
        Ok(())
    }

    /// CONFIG SET appendonly no: pending log bytes are written, then logging stops.
    pub fn stop_aof(&mut self) {
        self.aof_flush();
        if self.aof_rewrite_in_progress() {
            self.abort_bgsave();
        }
        self.aof = None;
        self.refresh_track_modified();
    }

    /// DEBUG LOADAOF: the log is written out, the dataset emptied and loaded back from the
    /// AOF files (a round trip through the AOF format). With the AOF off, the files on disk
    /// are loaded if there are any.
    pub fn debug_load_aof(&mut self) -> Result<(), String> {
        // A log that contains this command must not load itself from within itself.
        if self.replaying_aof {
            return Err("DEBUG LOADAOF cannot run while the AOF is loading".into());
        }
        let was_on = self.aof.is_some();
        if was_on {
            self.stop_aof();
        }
        self.abort_bgsave();
        for db in &mut self.dbs {
            db.flush();
        }
        let manifest = self.aof_dir().join(format!("{}.manifest", self.config.str("appendfilename")));
        let loaded = if was_on || manifest.exists() { self.open_aof().map(|_| ()) } else { Ok(()) };
        if !was_on && self.aof.is_some() {
            self.aof = None;
            self.refresh_track_modified();
        }
        self.dirty = 0;
        loaded
    }

    /// auto-aof-rewrite-percentage / -min-size: the incremental log grew past both.
    pub fn aof_rewrite_due(&self) -> bool {
        let Some(aof) = self.aof.as_ref() else { return false };
        let pct = self.config.int("auto-aof-rewrite-percentage");
        let min = self.config.int("auto-aof-rewrite-min-size").max(0) as u64;
        if pct <= 0 {
            return false;
        }
        let size = aof.size();
        let base = std::fs::metadata(aof.dir().join(&aof.base)).map(|m| m.len()).unwrap_or(0).max(1);
        size >= min && size.saturating_mul(100) / base >= pct as u64
    }

    /// Writes and (per policy) fsyncs the log; called before replies go out. True when the
    /// log holds everything (replies may go out).
    pub fn aof_flush(&mut self) -> bool {
        let Some(aof) = self.aof.as_mut() else { return true };
        if !aof.has_pending() {
            return true;
        }
        match aof.flush() {
            Ok(()) => {
                if aof.write_error.take().is_some() {
                    info!("AOF write error looks solved, Redis can write again.");
                }
                true
            }
            Err(e) => {
                // Logged once per failure episode, not at every retry.
                if aof.write_error.is_none() {
                    warn!("Error writing to the AOF file: {e}");
                }
                aof.write_error = Some(e.to_string());
                false
            }
        }
    }

    /// Queues one executed write command for propagation: its arguments, or the replay-safe
    /// form its handler chose (`instead`: deadlines as absolute times, effects instead of
    /// random or time-dependent commands). The top-level command sends them when it returns
    /// ([`ServerState::propagate_pending`]).
    pub fn aof_propagate(&mut self, db: usize, argv: &[Bytes], instead: Option<Vec<Vec<Bytes>>>) {
        // Keys that disappeared on their own (lazy expiry, eviction) first, as DEL.
        self.aof_propagate_dels();
        // EXEC's commands were queued one by one as they ran.
        if !self.propagating() || argv[0].eq_ignore_ascii_case(b"exec") {
            return;
        }
        match instead {
            Some(cmds) => {
                for c in cmds {
                    self.also_propagate(db, c, Target::All);
                }
            }
            None => self.also_propagate(db, argv.to_vec(), Target::All),
        }
    }

    /// DEL for keys that expired or were evicted since the last call.
    pub fn aof_propagate_dels(&mut self) {
        if !self.propagating() {
            return;
        }
        for i in 0..self.dbs.len() {
            for k in self.dbs[i].take_propagate_del() {
                self.propagate_now(i, &[b"DEL", &k], Target::All);
            }
        }
    }
}
