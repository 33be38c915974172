//! Snapshots on disk: SAVE, save points, load at start-up, SHUTDOWN's final save.
//!
//! The file is Redis 7.0's RDB (see `persistence::rdb`), written to `temp-<pid>.rdb` in `dir`,
//! flushed to disk and renamed over `dbfilename`, so a crash mid-save never leaves a torn file.
//! Snapshots are taken synchronously for now; the forkless incremental snapshot (serialising
//! the keyspace in slices between event-loop iterations) is the next step of this module.

use std::io::Write;
use std::path::PathBuf;

use tracing::{info, warn};

use crate::persistence::rdb::{self, LoadOptions, RdbError, SaveOptions};
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
}

impl ServerState {
    pub fn rdb_path(&self) -> PathBuf {
        PathBuf::from(self.config.str("dbfilename"))
    }

    fn load_options(&self) -> LoadOptions {
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

    /// The whole dataset as RDB bytes.
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let opts = SaveOptions {
            compression: self.config.bool("rdbcompression"),
            checksum: self.config.bool("rdbchecksum"),
            hash: self.hot.hash,
            zset: self.hot.zset,
            list_fill: self.hot.list_max_listpack,
        };
        let mut w = rdb::Writer::new(opts);
        w.aux("redis-ver", crate::commands::connection::REDIS_VERSION);
        w.aux("redis-bits", "64");
        w.aux("ctime", &(unix_ms() / 1000).to_string());
        w.aux("used-mem", &crate::alloc::used_memory().to_string());
        w.aux("aof-base", "0");
        let now = self.now_ms;
        for (i, db) in self.dbs.iter().enumerate() {
            if db.is_empty() {
                continue;
            }
            w.select_db(i, db.len(), db.expires_len());
            for (k, e) in db.iter() {
                let at = e.expire_at();
                if at.is_some_and(|t| t <= now) {
                    continue; // logically expired: not part of the dataset
                }
                w.key(k, &e.value, at);
            }
        }
        w.finish()
    }

    /// SAVE: writes the snapshot atomically. Updates the save statistics either way.
    pub fn save_rdb(&mut self) -> Result<(), RdbError> {
        let start = std::time::Instant::now();
        let bytes = self.snapshot_bytes();
        let tmp = PathBuf::from(format!("temp-{}.rdb", std::process::id()));
        let result = (|| -> Result<(), RdbError> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, self.rdb_path())?;
            Ok(())
        })();
        self.save_stats.last_duration_secs = start.elapsed().as_secs() as i64;
        match &result {
            Ok(()) => {
                self.dirty = 0;
                self.save_stats.last_save_secs = unix_ms() / 1000;
                self.save_stats.last_ok = true;
                self.save_stats.saves += 1;
                info!("DB saved on disk");
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                self.save_stats.last_ok = false;
                warn!("Failed saving the DB: {e}");
            }
        }
        result
    }

    /// Loads `dbfilename` at start-up if it exists. Keys already expired are skipped, as a
    /// Redis master does. Returns the number of keys loaded.
    pub fn load_rdb(&mut self) -> Result<usize, RdbError> {
        let path = self.rdb_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
            Err(e) => return Err(e.into()),
        };
        self.load_rdb_bytes(&bytes)
    }

    /// Replaces the dataset with the keys of an RDB image (start-up, DEBUG RELOAD). The image
    /// is parsed completely before anything changes.
    pub fn load_rdb_bytes(&mut self, bytes: &[u8]) -> Result<usize, RdbError> {
        let keys = rdb::load(bytes, self.load_options())?;
        if let Some(k) = keys.iter().find(|k| k.db >= self.dbs.len()) {
            return Err(RdbError::Corrupted {
                offset: 0,
                what: format!("the file uses database {} but only {} are configured", k.db, self.dbs.len()),
            });
        }
        for db in &mut self.dbs {
            db.flush();
        }
        let now = unix_ms();
        let mut n = 0;
        for k in keys {
            if k.expire_at.is_some_and(|t| t <= now) {
                continue;
            }
            let db = &mut self.dbs[k.db];
            db.set(&k.key, k.value, false);
            if k.expire_at.is_some() {
                db.set_expire(&k.key, k.expire_at);
            }
            n += 1;
        }
        // Loading is not a change: discard the events and signals it raised.
        for db in &mut self.dbs {
            db.take_events();
            db.take_modified();
            db.take_dirty_watchers();
            db.take_ready();
        }
        Ok(n)
    }

    /// Save points (`save <seconds> <changes> ...`): true when one is due.
    pub fn save_point_due(&self) -> bool {
        let Some(points) = crate::config::parse_save(self.config.str("save")) else { return false };
        let elapsed = (unix_ms() / 1000).saturating_sub(self.save_stats.last_save_secs);
        points.iter().any(|&(secs, changes)| self.dirty >= changes && elapsed >= secs && changes > 0)
    }
}
