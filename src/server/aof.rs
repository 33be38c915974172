//! The append-only file, run as Redis 7.0 runs its multi-part AOF: `appenddirname/` holds a
//! base file (an RDB image, or commands), incremental files of commands in RESP, history files
//! a rewrite left, and a manifest naming them (`persistence::manifest`).
//!
//! Commands are logged in a replay-safe form, as Redis 7.0 propagates them (see
//! `server::repl`): deadlines as absolute times, float increments as the value they
//! produced, evicted and expired keys as DEL, SPOP as the SREM of what it popped.
//!
//! `appendfsync always` writes and fsyncs the log before any reply of the commands it holds
//! is sent (the event loop calls [`ServerState::aof_flush`] before writing to a client), so
//! an acknowledged write is on disk. `everysec` writes at the same points and fsyncs from a
//! background thread about once a second; `no` leaves flushing to the kernel.
//!
//! Loading, rewriting and switching the AOF on and off follow Redis's aof.c step by step,
//! with its log lines: the manifest is read (and an old single-file AOF migrated into the
//! directory), each file is replayed, a last file cut short is truncated when
//! `aof-load-truncated` allows; a rewrite opens a new incremental file, writes the new base
//! from a forkless snapshot and turns what it replaced into history, deleted unless
//! `aof-disable-auto-gc`. Switched on at run time, the AOF logs into a temporary incremental
//! file until its first rewrite completes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};

use crate::persistence::aof::{CommandReader, ReadFault};
pub use crate::persistence::aof_log::{Aof, AofError, AofState, Fsync};
use crate::persistence::aof_log::{exists, unix_secs, write_manifest};
use crate::persistence::manifest::Manifest;
use crate::server::repl::Target;
use crate::server::{ServerState, Session};

/// What the server knows of the AOF whether it is on or off (Redis keeps the manifest and
/// the rewrite statistics either way).
pub struct AofControl {
    pub manifest: Manifest,
    /// BGREWRITEAOF (or appendonly yes) arrived while a snapshot was running: start it after.
    pub rewrite_scheduled: bool,
    /// Rewrites started, whether the last one succeeded, failures in a row (INFO).
    pub rewrites: u64,
    pub last_rewrite_ok: bool,
    pub consecutive_failures: u64,
    /// Size of the log when the last rewrite ended (or of the base at start-up).
    pub rewrite_base_size: u64,
    pub rewrite_started: Option<Instant>,
    pub last_rewrite_secs: i64,
    /// DEBUG AOF-FLUSH-SLEEP: a pause before each write of the log (tests of the reply barrier).
    pub flush_sleep_us: u64,
    /// Automatic rewrites back off after repeated failures (Redis's aofRewriteLimited).
    limit_delay_min: u64,
    limit_until_secs: u64,
}

impl Default for AofControl {
    fn default() -> Self {
        AofControl {
            manifest: Manifest::default(),
            rewrite_scheduled: false,
            rewrites: 0,
            last_rewrite_ok: true,
            consecutive_failures: 0,
            rewrite_base_size: 0,
            rewrite_started: None,
            last_rewrite_secs: -1,
            flush_sleep_us: 0,
            limit_delay_min: 0,
            limit_until_secs: 0,
        }
    }
}

/// The AOF cannot be loaded or opened: the server must not start. What went wrong was
/// logged in Redis's words where it happened.
#[derive(Debug, thiserror::Error)]
#[error("fatal AOF error (see the log)")]
pub struct AofFatal;

impl From<()> for AofFatal {
    fn from(_: ()) -> Self {
        AofFatal
    }
}

/// How loading the AOF went (Redis's AOF_* results).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStatus {
    Ok,
    NotExist,
    Empty,
    OpenErr,
    Failed,
    Truncated,
}

impl LoadStatus {
    pub fn is_fatal(self) -> bool {
        matches!(self, LoadStatus::Failed | LoadStatus::OpenErr)
    }
}

impl ServerState {
    pub fn aof_dir(&self) -> PathBuf {
        PathBuf::from(self.config.str("appenddirname"))
    }

    fn aof_filename(&self) -> String {
        self.config.str("appendfilename").to_string()
    }

    fn persist_manifest(&self, m: &Manifest) -> std::io::Result<()> {
        write_manifest(&self.aof_dir(), &self.aof_filename(), m)
    }

    /// Reads the manifest from the AOF directory (start-up, DEBUG LOADAOF). A missing
    /// directory or manifest is an empty one; a malformed manifest is fatal, reported in
    /// Redis's words.
    pub fn load_aof_manifest(&mut self) -> Result<(), AofFatal> {
        self.aofctl.manifest = Manifest::default();
        let dir = self.aof_dir();
        let path = dir.join(format!("{}.manifest", self.aof_filename()));
        if !dir.is_dir() || !exists(&path) {
            return Ok(());
        }
        let text = std::fs::read(&path).map_err(|e| {
            warn!("Fatal error: can't open the AOF manifest file {} for reading: {e}", path.display());
        })?;
        match Manifest::parse(&text) {
            Ok(m) => {
                self.aofctl.manifest = m;
                Ok(())
            }
            Err(fault) => {
                warn!("\n*** FATAL AOF MANIFEST FILE ERROR ***\n");
                if let Some((n, line)) = fault.line {
                    warn!("Reading the manifest file, at line {n}\n");
                    warn!(">>> '{line}'\n");
                }
                warn!("{}\n", fault.error);
                Err(AofFatal)
            }
        }
    }

    /// A single-file AOF of Redis < 7 in `dir` is moved into the AOF directory and becomes
    /// the base of a new manifest (Redis's aofUpgradePrepare).
    fn aof_upgrade_if_needed(&mut self) -> Result<(), ()> {
        let name = self.aof_filename();
        let dir = self.aof_dir();
        if !exists(Path::new(&name)) {
            return Ok(());
        }
        let m = &self.aofctl.manifest;
        let in_dir = exists(&dir.join(&name));
        let upgrade = !dir.is_dir()
            || m.is_empty()
            || (m.incrs.is_empty() && m.base.as_ref().is_some_and(|b| b.name == name) && !in_dir);
        if !upgrade {
            return Ok(());
        }
        std::fs::create_dir_all(&dir)
            .map_err(|e| warn!("Can't open or create append-only dir {}: {e}", dir.display()))?;
        let m = &mut self.aofctl.manifest;
        m.base = Some(crate::persistence::manifest::AofFile {
            name: name.clone(),
            seq: 1,
            kind: crate::persistence::manifest::FileKind::Base,
        });
        m.base_seq = 1;
        let m = m.clone();
        self.persist_manifest(&m).map_err(|_| ())?;
        std::fs::rename(&name, dir.join(&name)).map_err(|e| {
            warn!("Error trying to move the old AOF file {name} into dir {}: {e}", dir.display());
        })?;
        info!("Successfully migrated an old-style AOF file ({name}) into the AOF directory ({}).", dir.display());
        Ok(())
    }

    /// Loads the files the manifest names, base first (Redis's loadAppendOnlyFiles).
    pub fn load_append_only_files(&mut self) -> LoadStatus {
        if self.aof_upgrade_if_needed().is_err() {
            return LoadStatus::Failed;
        }
        let manifest = self.aofctl.manifest.clone();
        if manifest.is_empty() {
            return LoadStatus::NotExist;
        }
        let dir = self.aof_dir();
        let mut total = 0u64;
        for f in manifest.loading_order() {
            match std::fs::metadata(dir.join(&f.name)) {
                Ok(md) => total += md.len(),
                Err(e) => {
                    warn!("Unable to obtain the AOF file {} length. stat: {e}", f.name);
                    return LoadStatus::Failed;
                }
            }
        }
        if total == 0 {
            return LoadStatus::Empty;
        }
        let files: Vec<_> = manifest.loading_order().cloned().collect();
        let mut status = LoadStatus::Ok;
        let mut base_size = 0;
        for (i, f) in files.iter().enumerate() {
            let last = i + 1 == files.len();
            let is_base = manifest.base.as_ref() == Some(f);
            let started = Instant::now();
            status = self.load_single_aof(&f.name);
            if status == LoadStatus::Ok || (status == LoadStatus::Truncated && last) {
                let kind = if is_base { "base" } else { "incr" };
                info!("DB loaded from {kind} file {}: {:.3} seconds", f.name, started.elapsed().as_secs_f64());
            }
            if is_base {
                base_size = std::fs::metadata(dir.join(&f.name)).map_or(0, |m| m.len());
            } else if status == LoadStatus::Empty {
                // Some file had data (total > 0): an empty incremental file is fine.
                status = LoadStatus::Ok;
            }
            if status == LoadStatus::Truncated && !last {
                warn!("Fatal error: the truncated file is not the last file");
                return LoadStatus::Failed;
            }
            if status.is_fatal() {
                return status;
            }
        }
        self.aofctl.rewrite_base_size = base_size;
        status
    }

    /// Replays one file of the AOF directory: an RDB image (a base, or an old AOF's
    /// preamble followed by commands) and/or commands.
    fn load_single_aof(&mut self, name: &str) -> LoadStatus {
        let path = self.aof_dir().join(name);
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                warn!("The append log file {name} doesn't exist: {e}");
                return LoadStatus::NotExist;
            }
            Err(e) => {
                warn!("Fatal error: can't open the append log file {name} for reading: {e}");
                return LoadStatus::OpenErr;
            }
        };
        if bytes.is_empty() {
            return LoadStatus::Empty;
        }
        let mut start = 0;
        if bytes.starts_with(b"REDIS") {
            let old_style = name == self.aof_filename();
            if old_style {
                info!("Reading RDB preamble from AOF file...");
            } else {
                info!("Reading RDB base file on AOF loading...");
            }
            match self.load_rdb_preamble(&bytes) {
                Ok(used) => start = used,
                Err(e) => {
                    if old_style {
                        warn!("Error reading the RDB preamble of the AOF file {name}, AOF loading aborted: {e}");
                    } else {
                        warn!("Error reading the RDB base file {name}, AOF loading aborted: {e}");
                    }
                    return LoadStatus::Failed;
                }
            }
            if old_style {
                info!("Reading the remaining AOF tail...");
            }
        }
        self.replaying_aof = true;
        self.dbs.iter_mut().for_each(|d| d.set_loading(true));
        let status = self.replay_commands(name, &path, &bytes, start);
        self.dbs.iter_mut().for_each(|d| d.set_loading(false));
        self.replaying_aof = false;
        // Loading is not a change: drop what the replay raised.
        self.reset_dirty();
        for db in &mut self.dbs {
            db.take_events();
            db.take_modified();
            db.take_propagate_del();
        }
        status
    }

    fn replay_commands(&mut self, name: &str, path: &Path, bytes: &[u8], start: usize) -> LoadStatus {
        let mut reader = CommandReader::new(&bytes[start..]);
        let mut sess = Session::new(0, "aof".into(), String::new(), -1, self.now_ms);
        sess.authenticated = true;
        sess.replaying = true;
        let truncatable = self.config.bool("aof-load-truncated");
        let mut valid_up_to = start;
        let mut valid_before_multi = start;
        let fault = loop {
            match reader.next_command() {
                Ok(Some(args)) => {
                    let argv: Vec<Bytes> = args.iter().map(|a| Bytes::copy_from_slice(a)).collect();
                    if !self.executor.knows(&argv[0]) {
                        warn!(
                            "Unknown command '{}' reading the append only file {name}",
                            String::from_utf8_lossy(&argv[0])
                        );
                        return LoadStatus::Failed;
                    }
                    if argv[0].eq_ignore_ascii_case(b"multi") {
                        valid_before_multi = valid_up_to;
                    }
                    self.update_time();
                    let reply = self.executor.execute(self, &mut sess, &crate::protocol::views(&argv));
                    sess.block = None;
                    if let crate::protocol::Reply::Error(e) = reply {
                        warn!("AOF {name}: command {:?} failed: {e}", String::from_utf8_lossy(&argv[0]));
                    }
                    valid_up_to = start + reader.offset();
                }
                Ok(None) => {
                    if sess.multi.is_none() {
                        return LoadStatus::Ok;
                    }
                    // A transaction the file does not finish is dropped as a short read.
                    warn!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
                    valid_up_to = valid_before_multi;
                    break ReadFault::Eof;
                }
                Err(f) => {
                    // A command cut short inside a transaction drops the whole transaction:
                    // truncating after its last complete command would leave an open MULTI
                    // that the next commands appended would join (Redis 7.0 does that; the
                    // next load then runs the old half-transaction with the next one).
                    if f == ReadFault::Eof && sess.multi.is_some() {
                        warn!("Revert incomplete MULTI/EXEC transaction in AOF file {name}");
                        valid_up_to = valid_before_multi;
                    }
                    break f;
                }
            }
        };
        if fault == ReadFault::Format {
            warn!(
                "Bad file format reading the append only file {name}: make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>"
            );
            return LoadStatus::Failed;
        }
        if truncatable {
            warn!("!!! Warning: short read while loading the AOF file {name}!!!");
            warn!("!!! Truncating the AOF {name} at offset {valid_up_to} !!!");
            match std::fs::OpenOptions::new().write(true).open(path).and_then(|f| f.set_len(valid_up_to as u64)) {
                Ok(()) => {
                    warn!("AOF {name} loaded anyway because aof-load-truncated is enabled");
                    return LoadStatus::Truncated;
                }
                Err(e) => warn!("Error truncating the AOF file {name}: {e}"),
            }
        }
        warn!(
            "Unexpected end of file reading the append only file {name}. You can: 1) Make a backup of your AOF file, then use ./redis-check-aof --fix <filename.manifest>. 2) Alternatively you can set the 'aof-load-truncated' configuration option to yes and restart the server."
        );
        LoadStatus::Failed
    }

    /// At start-up with `appendonly yes`, after loading: a base is made when there is no
    /// file at all, the last incremental file is opened for appending (created when
    /// missing) and the manifest written (Redis's aofOpenIfNeededOnServerStart).
    pub fn open_aof_on_start(&mut self) -> Result<(), AofFatal> {
        let dir = self.aof_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| warn!("Can't open or create append-only dir {}: {e}", dir.display()))?;
        let name = self.aof_filename();
        let had_incrs = !self.aofctl.manifest.incrs.is_empty();
        if self.aofctl.manifest.is_empty() {
            let rdb = self.config.bool("aof-use-rdb-preamble");
            let base = self.aofctl.manifest.new_base(&name, rdb);
            self.write_aof_base_now(&dir.join(&base), rdb)
                .map_err(|e| warn!("Write error writing append only file on disk: {e}"))?;
            info!("Creating AOF base file {base} on server start");
        }
        let incr = self.aofctl.manifest.last_incr(&name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(&incr))
            .map_err(|e| warn!("Can't open the append-only file {incr}: {e}"))?;
        let m = self.aofctl.manifest.clone();
        self.persist_manifest(&m).map_err(|_| ())?;
        let fsync = Fsync::parse(self.config.str("appendfsync"));
        let mut aof = Aof::new(AofState::On, Some(Box::new(file)), fsync, self.config.bool("aof-timestamp-enabled"))
            .map_err(|e| warn!("Can't start the AOF fsync thread: {e}"))?;
        aof.current_size =
            m.loading_order().filter_map(|f| std::fs::metadata(dir.join(&f.name)).ok()).map(|m| m.len()).sum();
        self.aof = Some(aof);
        self.refresh_track_modified();
        if had_incrs {
            info!("Opening AOF incr file {incr} on server start");
        } else {
            info!("Creating AOF incr file {incr} on server start");
        }
        Ok(())
    }

    /// Writes the whole data set as a base file now (start-up with an empty data set).
    fn write_aof_base_now(&mut self, path: &Path, rdb: bool) -> std::io::Result<()> {
        let mut f = std::fs::File::create(path)?;
        if rdb {
            self.write_aof_base_snapshot(&mut f)?;
        } else {
            let mut image = Vec::new();
            self.write_aof_base_snapshot(&mut image)?;
            let ts = self.config.bool("aof-timestamp-enabled").then(unix_secs);
            let (load, save) = (self.load_options(), self.save_options());
            crate::persistence::aof_rewrite::write_commands(&image, load, save, ts, &mut f)?;
        }
        f.sync_all()
    }

    /// Deletes the history files (unless aof-disable-auto-gc) and drops them from the
    /// manifest (Redis's aofDelHistoryFiles).
    pub fn aof_del_history_files(&mut self) {
        if self.config.bool("aof-disable-auto-gc") || self.aofctl.manifest.history.is_empty() {
            return;
        }
        let dir = self.aof_dir();
        let history = std::mem::take(&mut self.aofctl.manifest.history);
        for f in history {
            info!("Removing the history file {} in the background", f.name);
            let _ = std::fs::remove_file(dir.join(&f.name));
        }
        let m = self.aofctl.manifest.clone();
        let _ = self.persist_manifest(&m);
    }

    /// CONFIG SET appendonly yes: the AOF waits for a rewrite of the current data, started
    /// now or, when a snapshot is running, when it ends (Redis's startAppendOnly).
    pub fn start_aof(&mut self, in_exec: bool) -> Result<(), AofError> {
        if self.aof.is_some() {
            return Ok(());
        }
        let fsync = Fsync::parse(self.config.str("appendfsync"));
        let aof = Aof::new(AofState::WaitRewrite, None, fsync, self.config.bool("aof-timestamp-enabled"))?;
        self.aof = Some(aof);
        self.refresh_track_modified();
        if self.bgsave_in_progress() && !self.aof_rewrite_in_progress() {
            self.aofctl.rewrite_scheduled = true;
            warn!(
                "AOF was enabled but there is already another background operation. An AOF background was scheduled to start when possible."
            );
        } else if in_exec {
            self.aofctl.rewrite_scheduled = true;
            warn!("AOF was enabled during a transaction. An AOF background was scheduled to start when possible.");
        } else {
            if self.aof_rewrite_in_progress() {
                warn!(
                    "AOF was enabled but there is already an AOF rewriting in background. Stopping background AOF and starting a rewrite now."
                );
                self.abort_bgsave();
            }
            if let Err(e) = self.start_aof_rewrite() {
                self.aof = None;
                self.refresh_track_modified();
                warn!(
                    "Redis needs to enable the AOF but can't trigger a background AOF rewrite operation. Check the above logs for more info about the error."
                );
                return Err(AofError::CannotEnable(Box::new(e)));
            }
        }
        Ok(())
    }

    /// CONFIG SET appendonly no: pending log bytes are written and fsynced, then logging
    /// stops; a running rewrite is abandoned.
    pub fn stop_aof(&mut self) {
        self.aof_flush();
        if let Some(aof) = self.aof.as_mut()
            && let Err(e) = aof.sync()
        {
            warn!("Fail to fsync the AOF file: {e}");
        }
        self.aof = None;
        self.aofctl.rewrite_scheduled = false;
        if self.aof_rewrite_in_progress() {
            info!("Killing running AOF rewrite child: {}", std::process::id());
            self.abort_bgsave();
            self.aof_rewrite_cleanup();
        }
        self.refresh_track_modified();
    }

    /// Opens the incremental file commands go to while a rewrite runs (Redis's
    /// openNewIncrAofForAppend): the next in the manifest with the AOF on, a temporary one
    /// while waiting for the first rewrite, none with the AOF off.
    fn open_new_incr_for_rewrite(&mut self) -> Result<(), AofError> {
        let Some(state) = self.aof.as_ref().map(|a| a.state) else { return Ok(()) };
        let dir = self.aof_dir();
        let filename = self.aof_filename();
        let mut next = self.aofctl.manifest.clone();
        let name = match state {
            AofState::WaitRewrite => format!("temp-{filename}.incr"),
            AofState::On => next.new_incr(&filename),
        };
        let file = std::fs::File::create(dir.join(&name))
            .inspect_err(|e| warn!("Can't open the append-only file {name}: {e}"))?;
        if state == AofState::On {
            self.persist_manifest(&next)?;
            self.aofctl.manifest = next;
        }
        info!("Creating AOF incr file {name} on background rewrite");
        if let Some(aof) = self.aof.as_mut() {
            aof.switch_to(Box::new(file));
        }
        Ok(())
    }

    /// BGREWRITEAOF: commands from now on go to a new incremental file while a forkless
    /// snapshot writes the new base (Redis's rewriteAppendOnlyFileBackground).
    pub fn start_aof_rewrite(&mut self) -> Result<(), AofError> {
        if self.bgsave_in_progress() {
            return Err(AofError::SaveInProgress);
        }
        let dir = self.aof_dir();
        if let Err(e) = std::fs::create_dir_all(&dir) {
            warn!("Can't open or create append-only dir {}: {e}", dir.display());
            self.aofctl.last_rewrite_ok = false;
            return Err(e.into());
        }
        self.aof_flush();
        if let Err(e) = self.open_new_incr_for_rewrite() {
            self.aofctl.last_rewrite_ok = false;
            return Err(e);
        }
        self.aofctl.rewrites += 1;
        let rdb = self.config.bool("aof-use-rdb-preamble");
        if let Err(e) = self.start_snapshot_for_aof(PathBuf::from(rewrite_temp_name()), rdb) {
            self.aofctl.last_rewrite_ok = false;
            warn!("Can't rewrite append only file in background: {e}");
            return Err(e.into());
        }
        let pid = self.bgsave.as_ref().and_then(|b| b.child_pid).unwrap_or_else(std::process::id);
        info!("Background append only file rewriting started by pid {pid}");
        self.aofctl.rewrite_scheduled = false;
        self.aofctl.rewrite_started = Some(Instant::now());
        Ok(())
    }

    /// The rewrite's snapshot ended (Redis's backgroundRewriteDoneHandler): on success the
    /// temporary file becomes the new base, the files it covers history; on failure the
    /// log carries on in the files it has.
    pub fn aof_rewrite_done(&mut self, ok: bool, rdb: bool) {
        if ok {
            info!("Background AOF rewrite terminated with success");
            match self.install_rewritten_base(rdb) {
                Ok(()) => {
                    self.aof_del_history_files();
                    self.aofctl.last_rewrite_ok = true;
                    self.aofctl.consecutive_failures = 0;
                    info!("Background AOF rewrite finished successfully");
                    if let Some(aof) = self.aof.as_mut() {
                        aof.state = AofState::On;
                    }
                }
                Err(()) => {
                    self.aofctl.last_rewrite_ok = false;
                    self.aofctl.consecutive_failures += 1;
                }
            }
        } else {
            self.aofctl.last_rewrite_ok = false;
            self.aofctl.consecutive_failures += 1;
            warn!("Background AOF rewrite terminated with error");
        }
        self.aof_rewrite_cleanup();
    }

    fn install_rewritten_base(&mut self, rdb: bool) -> Result<(), ()> {
        let dir = self.aof_dir();
        let filename = self.aof_filename();
        let tmp = rewrite_temp_name();
        let mut next = self.aofctl.manifest.clone();
        let base = next.new_base(&filename, rdb);
        let base_path = dir.join(&base);
        std::fs::rename(&tmp, &base_path).map_err(|e| {
            warn!("Error trying to rename the temporary AOF base file {tmp} into {}: {e}", base_path.display());
        })?;
        info!("Successfully renamed the temporary AOF base file {tmp} into {base}");
        let waiting = self.aof.as_ref().is_some_and(|a| a.state == AofState::WaitRewrite);
        let mut new_incr = None;
        if waiting {
            let temp_incr = format!("temp-{filename}.incr");
            let incr = next.new_incr(&filename);
            if let Err(e) = std::fs::rename(dir.join(&temp_incr), dir.join(&incr)) {
                warn!("Error trying to rename the temporary AOF incr file {temp_incr} into {incr}: {e}");
                let _ = std::fs::remove_file(&base_path);
                return Err(());
            }
            info!("Successfully renamed the temporary AOF incr file {temp_incr} into {incr}");
            new_incr = Some(incr);
        }
        next.retire_incrs(self.aof.is_some());
        if self.persist_manifest(&next).is_err() {
            let _ = std::fs::remove_file(&base_path);
            if let Some(incr) = new_incr {
                let _ = std::fs::remove_file(dir.join(incr));
            }
            return Err(());
        }
        self.aofctl.manifest = next;
        if let Some(aof) = self.aof.as_mut() {
            let base_size = std::fs::metadata(&base_path).map_or(0, |m| m.len());
            let incr_size = aof.file_len();
            aof.current_size = base_size + incr_size;
            self.aofctl.rewrite_base_size = aof.current_size;
        }
        Ok(())
    }

    /// After a rewrite, whatever its outcome: the temporary files go; an AOF still waiting
    /// for its first rewrite drops what it logged and tries again.
    fn aof_rewrite_cleanup(&mut self) {
        let _ = std::fs::remove_file(rewrite_temp_name());
        if let Some(started) = self.aofctl.rewrite_started.take() {
            self.aofctl.last_rewrite_secs = started.elapsed().as_secs() as i64;
        }
        if let Some(aof) = self.aof.as_mut()
            && aof.state == AofState::WaitRewrite
        {
            aof.file = None;
            aof.pending.buf.clear();
            let temp_incr = format!("temp-{}.incr", self.config.str("appendfilename"));
            info!("Removing the temp incr aof file {temp_incr} in the background");
            let _ = std::fs::remove_file(self.aof_dir().join(temp_incr));
            self.aofctl.rewrite_scheduled = true;
        }
    }

    /// DEBUG LOADAOF: the log is written out, the data set emptied and loaded back from
    /// the AOF files. As in Redis, a log that does not load ends the process.
    pub fn debug_load_aof(&mut self) -> Result<(), AofError> {
        // A log that contains this command must not load itself from within itself.
        if self.replaying_aof {
            return Err(AofError::Loading);
        }
        self.aof_flush();
        for db in &mut self.dbs {
            db.flush();
        }
        if self.load_aof_manifest().is_err() {
            std::process::exit(1);
        }
        self.aof_del_history_files();
        let status = self.load_append_only_files();
        if status != LoadStatus::Ok && status != LoadStatus::Empty {
            warn!("DEBUG LOADAOF: the AOF did not load ({status:?}). Exiting.");
            std::process::exit(1);
        }
        self.reset_dirty();
        warn!("Append Only File loaded by DEBUG LOADAOF");
        Ok(())
    }

    /// auto-aof-rewrite-percentage / -min-size: the log grew past both since the last
    /// rewrite, and repeated failures are not backing rewrites off.
    pub fn aof_rewrite_due(&mut self) -> bool {
        let Some(aof) = self.aof.as_ref().filter(|a| a.state == AofState::On) else { return false };
        let pct = self.config.int("auto-aof-rewrite-percentage");
        let min = self.config.int("auto-aof-rewrite-min-size").max(0) as u64;
        if pct <= 0 || aof.current_size <= min {
            return false;
        }
        let base = self.aofctl.rewrite_base_size.max(1);
        let growth = (aof.current_size.saturating_mul(100) / base) as i64 - 100;
        growth >= pct && !self.aof_rewrite_limited()
    }

    /// Redis's aofRewriteLimited: after three failed rewrites in a row, automatic ones wait
    /// 1, 2, 4 ... up to 60 minutes.
    fn aof_rewrite_limited(&mut self) -> bool {
        let c = &mut self.aofctl;
        if c.consecutive_failures < 3 {
            c.limit_delay_min = 0;
            c.limit_until_secs = 0;
            return false;
        }
        let now = unix_secs();
        if c.limit_until_secs != 0 {
            if now < c.limit_until_secs {
                return true;
            }
            c.limit_until_secs = 0;
            return false;
        }
        c.limit_delay_min = if c.limit_delay_min == 0 { 1 } else { (c.limit_delay_min * 2).min(60) };
        c.limit_until_secs = now + c.limit_delay_min * 60;
        warn!(
            "Background AOF rewrite has repeatedly failed and triggered the limit, will retry in {} minutes",
            c.limit_delay_min
        );
        true
    }

    /// Writes and (per policy) fsyncs the log; called before replies go out. True when the
    /// log holds everything (replies may go out).
    pub fn aof_flush(&mut self) -> bool {
        let Some(aof) = self.aof.as_mut() else { return true };
        if !aof.has_pending() {
            return true;
        }
        if self.aofctl.flush_sleep_us > 0 {
            std::thread::sleep(Duration::from_micros(self.aofctl.flush_sleep_us.min(10_000_000)));
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
    pub fn aof_propagate(&mut self, db: usize, argv: &[&[u8]], instead: Option<Vec<Vec<Bytes>>>) {
        // Keys that disappeared on their own (lazy expiry, eviction) first, as DEL.
        self.aof_propagate_dels_in_command();
        // EXEC's commands were queued one by one as they ran.
        if !self.propagating() || argv[0].eq_ignore_ascii_case(b"exec") {
            return;
        }
        // A script's redis.set_repl may keep its commands from the AOF or the replicas.
        let target = match self.script_repl {
            3 => Target::All,
            2 => Target::ReplicasOnly,
            1 => Target::AofOnly,
            _ => return,
        };
        match instead {
            Some(cmds) => {
                for c in cmds {
                    self.also_propagate(db, c, target);
                }
            }
            // A top-level command that alone changed something goes out as it is, uncopied.
            None if self.call_depth == 0 && self.pending_ops.is_empty() => self.propagate_now(db, argv, target),
            None => self.also_propagate(db, crate::protocol::owned(argv), target),
        }
    }

    /// DEL for keys that expired or were evicted since the last call, HDEL for hash fields
    /// that expired.
    pub fn aof_propagate_dels(&mut self) {
        self.propagate_dels(false);
    }

    /// [`Self::aof_propagate_dels`] during a command: the HDELs of fields it found expired
    /// go out with the command's own effects (in one MULTI/EXEC when several, as Redis
    /// 7.4 sends them).
    pub fn aof_propagate_dels_in_command(&mut self) {
        self.propagate_dels(true);
    }

    fn propagate_dels(&mut self, in_command: bool) {
        if !self.propagating() {
            return;
        }
        for i in 0..self.dbs.len() {
            for cmd in self.dbs[i].take_propagate_del() {
                if in_command && cmd[0][..] == b"HDEL"[..] {
                    self.also_propagate(i, cmd, Target::All);
                    continue;
                }
                let argv: Vec<&[u8]> = cmd.iter().map(|a| &a[..]).collect();
                self.propagate_now(i, &argv, Target::All);
            }
        }
    }
}

/// Where a rewrite's snapshot is written before it becomes the base (as Redis names it).
fn rewrite_temp_name() -> String {
    format!("temp-rewriteaof-bg-{}.aof", std::process::id())
}
