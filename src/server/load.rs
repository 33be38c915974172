//! Loading an RDB image into the data set: at start-up, DEBUG RELOAD, an AOF's RDB base and
//! a replica's full sync.
//!
//! Keys go into the databases as they are parsed, as Redis loads them: the data set is never
//! held twice (a parsed copy beside the installed one), so a server loads any file whose data
//! fits in memory. Only loads that must leave the old data untouched until the image is
//! complete collect the keys first: a replica's `repl-diskless-load swapdb` (the old data is
//! served meanwhile and kept if the transfer fails, as Redis's temporary databases do) and
//! DEBUG RELOAD NOFLUSH (a duplicate key fails it before anything changed).

use std::io::Read;

use crate::persistence::rdb::{self, LoadedKey, RdbError, Source};
use crate::server::ServerState;
use crate::server::state::unix_ms;

/// An RDB load in progress: INFO persistence's `loading_*` fields, and when it next serves
/// clients (who get -LOADING for all but the commands allowed while loading), as Redis's
/// processEventsWhileBlocked every `loading-process-events-interval-bytes`.
#[derive(Debug, Clone)]
pub struct Loading {
    pub start_secs: u64,
    pub total_bytes: usize,
    pub loaded_bytes: usize,
    /// Clients are served during this load (start-up and a replica's full sync; not DEBUG
    /// RELOAD, which runs inside a client's command).
    serve: bool,
    /// Redis's async loading (`repl-diskless-load swapdb`): the old data set is served as
    /// usual meanwhile, without -LOADING.
    pub keeps_old_data: bool,
    next_serve: usize,
    served_once: bool,
    /// `key-load-delay`, read again whenever clients were served (CONFIG SET may change it).
    delay: i64,
}

impl Loading {
    /// INFO's `loading_loaded_perc` and `loading_eta_seconds`, computed as Redis does.
    pub fn progress(&self, now_secs: u64) -> (f64, u64) {
        let perc = if self.total_bytes > 0 { self.loaded_bytes as f64 / self.total_bytes as f64 * 100.0 } else { 0.0 };
        let remaining = self.total_bytes.saturating_sub(self.loaded_bytes).max(1) as u64;
        let elapsed = now_secs.saturating_sub(self.start_secs);
        let eta = if elapsed == 0 { 1 } else { elapsed.saturating_mul(remaining) / (self.loaded_bytes as u64 + 1) };
        (perc, eta)
    }
}

/// Redis's debugDelay: a positive delay sleeps that many microseconds; a negative one
/// sleeps 1 µs once in |delay| times (shorter sleeps than a syscall allows, on average).
fn debug_delay(usec: i64) {
    let usec = if usec < 0 { u64::from(rand::random_range(0..usec.unsigned_abs()) == 0) } else { usec as u64 };
    if usec > 0 {
        std::thread::sleep(std::time::Duration::from_micros(usec));
    }
}

/// How an RDB image joins the dataset (DEBUG RELOAD's NOFLUSH and MERGE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// The dataset becomes the file's, emptied first and filled as the keys are parsed.
    Replace,
    /// The dataset becomes the file's once the whole image parsed (the old one meanwhile).
    ReplaceWhenComplete,
    /// The file's keys and libraries are added; one already present is an error.
    Add,
    /// The file's keys and libraries are added, replacing those present.
    Merge,
}

impl ServerState {
    /// Loads `dbfilename` at start-up if it exists. Keys already expired are skipped, as a
    /// Redis master does. Returns the number of keys loaded.
    pub fn load_rdb(&mut self) -> Result<usize, RdbError> {
        self.load_rdb_file_serving(Reload::Replace, true)
    }

    /// Loads `dbfilename` (nothing if it does not exist) as `how` says.
    pub fn load_rdb_file(&mut self, how: Reload) -> Result<usize, RdbError> {
        self.load_rdb_file_serving(how, false)
    }

    /// [`load_rdb_file`](Self::load_rdb_file); with `serve`, clients are served while it
    /// loads (see [`Loading`]).
    pub fn load_rdb_file_serving(&mut self, how: Reload, serve: bool) -> Result<usize, RdbError> {
        let path = self.rdb_path();
        let mut file = match std::fs::File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        let len = file.metadata()?.len();
        // The replication aux fields lead the file: its head is enough for them.
        let mut head = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(&mut file, 64 * 1024), &mut head)?;
        std::io::Seek::rewind(&mut file)?;
        let (n, used, _) = self.load_image(Source::Stream(&mut file, len), len as usize, how, serve, false)?;
        rdb::ends_the_file(used, len as usize)?;
        self.loaded_repl_info = rdb::repl_info(&head);
        Ok(n)
    }

    /// Replaces the dataset with the keys of a replica's full sync image, read from `src` as
    /// it is parsed (the master's socket), serving clients meanwhile: `len` bytes, or up to
    /// `max` when its end is only known by parsing it (an EOF-marked image). Returns the
    /// bytes read past the image.
    pub fn load_rdb_stream(&mut self, src: &mut dyn Read, len: Option<usize>, max: usize) -> Result<Vec<u8>, RdbError> {
        let (how, keeps_old_data) = self.full_sync_reload();
        // An EOF-marked image's length is unknown until it ends (INFO shows 0, as Redis).
        let limit = len.unwrap_or(max);
        let total = len.unwrap_or(0);
        let (_, used, rest) = self.load_image(Source::Stream(src, limit as u64), total, how, true, keeps_old_data)?;
        if let Some(len) = len {
            rdb::ends_the_file(used, len)?;
        }
        Ok(rest)
    }

    /// How a full sync's image replaces the data set: under `repl-diskless-load swapdb` the
    /// old data stays until the image is complete (and is served meanwhile when the master
    /// continues our history).
    fn full_sync_reload(&self) -> (Reload, bool) {
        let swapdb = self.config.str("repl-diskless-load") == "swapdb";
        let same_history = self.master.as_deref().is_some_and(|m| m.same_history);
        let how = if swapdb { Reload::ReplaceWhenComplete } else { Reload::Replace };
        (how, swapdb && same_history)
    }

    /// An RDB image at the start of `bytes` (an AOF base, or an old AOF's preamble before
    /// its commands) replaces the data set; returns the bytes the image took.
    pub fn load_rdb_preamble(&mut self, bytes: &[u8]) -> Result<usize, RdbError> {
        self.load_image(Source::Bytes(bytes), bytes.len(), Reload::Replace, false, false).map(|(_, used, _)| used)
    }

    /// Whether a load is under way, as INFO and dispatch see it: `Some(true)` for Redis's
    /// async loading (the old data set is served), `Some(false)` for a load that answers
    /// -LOADING (clients are first served once `loading-process-events-interval-bytes` are
    /// parsed, as Redis does, so a short load refuses nobody).
    #[inline]
    pub fn load_state(&self) -> Option<bool> {
        self.loading.as_ref().map(|l| l.keeps_old_data)
    }

    /// Parses an image with [`Loading`] set for its length (and `key-load-delay` applied)
    /// and installs it as `how` says. Returns the keys installed, the image's length and
    /// the bytes a stream held past it.
    fn load_image(
        &mut self,
        src: Source<'_>,
        total_bytes: usize,
        how: Reload,
        serve: bool,
        keeps_old_data: bool,
    ) -> Result<(usize, usize, Vec<u8>), RdbError> {
        let opts = self.load_options();
        // Clients are first served once that many bytes are parsed, as Redis does: a small
        // image loads without anyone seeing -LOADING.
        let interval = self.config.int("loading-process-events-interval-bytes").max(1024) as usize;
        self.loading = Some(Loading {
            start_secs: unix_ms() / 1000,
            total_bytes,
            loaded_bytes: 0,
            serve,
            keeps_old_data,
            next_serve: interval,
            served_once: false,
            delay: self.config.int("key-load-delay"),
        });
        let result = if matches!(how, Reload::Add | Reload::ReplaceWhenComplete) {
            let mut keys = Vec::new();
            let parsed = rdb::load_source_with(src, opts, &mut |k, pos| {
                keys.push(k);
                self.load_progress(pos);
                Ok(())
            });
            self.loading = None;
            parsed.and_then(|p| Ok((self.install_rdb(keys, p.functions, how, p.empty_keys)?, p.used, p.rest)))
        } else {
            let mut tally = self.begin_install(how);
            let parsed = rdb::load_source_with(src, opts, &mut |k, pos| {
                self.install_key(k, &mut tally)?;
                self.load_progress(pos);
                Ok(())
            });
            self.loading = None;
            let libraries = parsed.as_ref().map(|p| &p.functions[..]).unwrap_or_default();
            let loaded = self.install_libraries(libraries);
            tally.empty = parsed.as_ref().map_or(0, |p| p.empty_keys);
            self.end_install(&tally, parsed.is_ok() && loaded.is_ok());
            parsed.and_then(|p| loaded.map(|()| (tally.loaded, p.used, p.rest)))
        };
        self.loading = None;
        result
    }

    /// After each key of a load: Redis's key-load-delay, and clients served every
    /// `loading-process-events-interval-bytes`.
    fn load_progress(&mut self, pos: usize) {
        let Some(l) = self.loading.as_mut() else { return };
        l.loaded_bytes = pos;
        if l.delay != 0 {
            debug_delay(l.delay);
        }
        if !l.serve || pos < l.next_serve {
            return;
        }
        let interval = self.config.int("loading-process-events-interval-bytes").max(1024) as usize;
        l.next_serve = pos.saturating_add(interval);
        let first = !std::mem::replace(&mut l.served_once, true);
        self.update_time();
        crate::server::replica::ping_master_while_loading(self);
        crate::server::event_loop::serve_while_busy(self, first);
        let delay = self.config.int("key-load-delay");
        if let Some(l) = self.loading.as_mut() {
            l.delay = delay;
        }
    }

    /// Installs keys collected before anything changed (see the module doc).
    fn install_rdb(
        &mut self,
        keys: Vec<LoadedKey>,
        libraries: Vec<Vec<u8>>,
        how: Reload,
        empty_keys: u64,
    ) -> Result<usize, RdbError> {
        if how == Reload::Add {
            let dup_key = keys.iter().any(|k| self.dbs.get_mut(k.db).is_some_and(|d| d.contains(&k.key)));
            let dup_lib = self.functions.as_deref().is_some_and(|f| {
                libraries.iter().any(|c| crate::scripting::library_name(c).is_ok_and(|n| f.libraries.contains_key(&n)))
            });
            if dup_key || dup_lib {
                return Err(RdbError::Corrupted { offset: 0, what: "duplicate key or library while loading".into() });
            }
        }
        if let Some(k) = keys.iter().find(|k| k.db >= self.dbs.len()) {
            return Err(self.no_such_db(k.db));
        }
        let mut tally = self.begin_install(how);
        tally.empty = empty_keys;
        let loaded = self.install_libraries(&libraries);
        if loaded.is_ok() {
            for k in keys {
                self.install_key(k, &mut tally)?;
            }
        }
        self.end_install(&tally, loaded.is_ok());
        loaded.map(|()| tally.loaded)
    }

    fn no_such_db(&self, db: usize) -> RdbError {
        RdbError::Corrupted {
            offset: 0,
            what: format!("the file uses database {db} but only {} are configured", self.dbs.len()),
        }
    }

    /// Before the first key: a snapshot still walking the data set is abandoned (the load
    /// would change what it has not written yet; Redis kills its child), one whose walk is
    /// complete goes on (DEBUG LOADAOF empties the data set first, which completes it: Redis's
    /// child keeps saving the old image then too). A replacement starts from empty
    /// databases and no libraries (DEBUG RELOAD: only the file's).
    fn begin_install(&mut self, how: Reload) -> Tally {
        if !self.dbs.iter().all(|d| d.snapshot_walked()) {
            self.abort_bgsave();
        }
        // Access stamps and deadlines are judged against the current time (at start-up the
        // command clock has not run yet).
        self.update_time();
        if matches!(how, Reload::Replace | Reload::ReplaceWhenComplete) {
            for db in &mut self.dbs {
                db.flush();
            }
            self.functions = None;
        }
        // A replica keeps keys that expired while it was down: its master expires them and
        // sends the DELs (Redis's iAmMaster() check while loading).
        let replica = match self.cluster.as_deref() {
            Some(c) => c.is_replica(),
            None => !self.config.str("replicaof").trim().is_empty(),
        };
        Tally { loaded: 0, expired: 0, empty: 0, now: unix_ms(), replica }
    }

    fn install_key(&mut self, k: LoadedKey, tally: &mut Tally) -> Result<(), RdbError> {
        if k.db >= self.dbs.len() {
            return Err(self.no_such_db(k.db));
        }
        if !tally.replica && k.expire_at.is_some_and(|t| t <= tally.now) {
            tally.expired += 1;
            if let Some(list) = self.load_expired.as_mut() {
                list.push((k.db, k.key));
            }
            return Ok(());
        }
        let db = &mut self.dbs[k.db];
        db.set(&k.key, k.value, false);
        if k.expire_at.is_some() {
            db.set_expire(&k.key, k.expire_at);
        }
        db.restore_stamp(&k.key, k.idle_secs, k.freq);
        tally.loaded += 1;
        Ok(())
    }

    /// The file's FUNCTION libraries (Redis 7's FUNCTION2 records).
    fn install_libraries(&mut self, libraries: &[Vec<u8>]) -> Result<(), RdbError> {
        if libraries.is_empty() {
            return Ok(());
        }
        if self.functions.is_none() {
            let e = crate::scripting::Engine::new(true)
                .map_err(|e| RdbError::Corrupted { offset: 0, what: format!("cannot start Lua: {e}") })?;
            self.functions = Some(Box::new(e));
        }
        if let Some(f) = self.functions.as_deref_mut() {
            for code in libraries {
                f.load_library(code, true).map_err(|e| RdbError::Corrupted {
                    offset: 0,
                    what: format!("the file's function library does not load: {e}"),
                })?;
            }
        }
        Ok(())
    }

    /// After the last key (or a failure): loading is not a change, so the changes, events
    /// and signals it raised are discarded.
    fn end_install(&mut self, tally: &Tally, complete: bool) {
        if complete {
            tracing::info!(
                "Done loading RDB, keys loaded: {}, keys expired: {}, empty keys skipped: {}.",
                tally.loaded,
                tally.expired,
                tally.empty
            );
        }
        self.changes.take();
        if let Some(f) = self.functions.as_deref_mut() {
            f.take_changes();
        }
        for db in &mut self.dbs {
            db.take_events();
            db.take_modified();
            db.take_dirty_watchers();
            db.take_ready();
        }
        self.save_stats.last_load_loaded = tally.loaded as u64;
        self.save_stats.last_load_expired = tally.expired;
    }
}

/// What a load installed so far.
struct Tally {
    loaded: usize,
    expired: u64,
    /// Empty collections the file held (skipped).
    empty: u64,
    /// Unix ms when the load began: keys whose deadline passed are skipped.
    now: u64,
    /// A replica keeps expired keys (see [`ServerState::begin_install`]).
    replica: bool,
}
