//! The open append-only log: commands buffered as RESP, written before replies go out and
//! fsynced per `appendfsync`, through a small file seam ([`LogFile`]) so tests can make the
//! disk fail the ways disks do (short writes, ENOSPC, fsync errors). Which files exist and
//! when they are rewritten is the server's business (`server::aof`).

use std::fs::File;
use std::io::{self, Write};
use std::path::Path;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::persistence::manifest::Manifest;
use crate::protocol::feed::Feed;

/// Why the AOF could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum AofError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The log was written but not fsynced (`appendfsync always`).
    #[error("{0}")]
    Fsync(io::Error),
    #[error("a background save is in progress")]
    SaveInProgress,
    #[error("DEBUG LOADAOF cannot run while the AOF is loading")]
    Loading,
    #[error("Unable to turn on AOF. Check server logs. ({0})")]
    CannotEnable(Box<AofError>),
}

/// What the log writes to: a file, or in tests one that fails on demand.
pub trait LogFile: Send {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize>;
    /// Bytes in the file.
    fn size(&self) -> io::Result<u64>;
    /// Cuts the file back to `len` bytes (a partial write undone).
    fn truncate(&mut self, len: u64) -> io::Result<()>;
    fn sync(&mut self) -> io::Result<()>;
    /// A handle the background fsync thread can sync (`everysec`); None if there is none.
    fn sync_handle(&self) -> Option<File>;
}

impl LogFile for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Write::write(self, buf)
    }
    fn size(&self) -> io::Result<u64> {
        Ok(self.metadata()?.len())
    }
    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.set_len(len)
    }
    fn sync(&mut self) -> io::Result<()> {
        self.sync_data()
    }
    fn sync_handle(&self) -> Option<File> {
        self.try_clone().ok()
    }
}

/// Undoes a partial write: the file goes back to `len` bytes (Redis's ftruncate after a short
/// write), so the next flush rewrites the whole buffer.
fn cut_back(file: &mut dyn LogFile, len: u64, written: usize, e: io::Error) -> AofError {
    if written > 0
        && let Err(t) = file.truncate(len)
    {
        warn!("Could not remove short write from the append-only file: {t}");
    }
    AofError::Io(e)
}

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

/// Redis's aof_state, less OFF (no [`Aof`] then).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AofState {
    On,
    /// Switched on at run time: writes go to a temporary incremental file until the first
    /// rewrite completes (and are dropped before that rewrite starts: the base will hold them).
    WaitRewrite,
}

/// Buffer capacity kept between flushes; a larger one is freed once written.
const KEEP_BUFFER: usize = 64 * 1024;

/// The open log.
pub struct Aof {
    pub state: AofState,
    /// The incremental file being appended to; None while waiting for a rewrite to start.
    pub(crate) file: Option<Box<dyn LogFile>>,
    pub(crate) pending: Feed,
    pub fsync: Fsync,
    /// aof-timestamp-enabled: a `#TS:` annotation precedes the first command of each second.
    pub timestamps: bool,
    last_timestamp: u64,
    last_sync: Instant,
    /// `always`: bytes were written but their fsync failed; replies wait until one succeeds.
    unsynced: bool,
    /// everysec: the background thread that fsyncs the handles it is sent.
    syncer: Option<Sender<File>>,
    /// Bytes of the base and incremental files (auto-aof-rewrite-percentage's measure).
    pub current_size: u64,
    /// The last write or fsync failed (disk full, I/O error): writes are refused with MISCONF
    /// until a flush succeeds again.
    pub write_error: Option<String>,
}

fn syncer() -> io::Result<Sender<File>> {
    let (tx, rx) = std::sync::mpsc::channel::<File>();
    std::thread::Builder::new().name("ember-aof-fsync".into()).spawn(move || {
        for f in rx {
            if let Err(e) = f.sync_data() {
                warn!("AOF fsync failed: {e}");
            }
        }
    })?;
    Ok(tx)
}

pub fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl Aof {
    pub fn new(state: AofState, file: Option<Box<dyn LogFile>>, fsync: Fsync, timestamps: bool) -> io::Result<Aof> {
        let syncer = if fsync == Fsync::EverySec { Some(syncer()?) } else { None };
        Ok(Aof {
            state,
            file,
            pending: Feed::default(),
            fsync,
            timestamps,
            last_timestamp: 0,
            last_sync: Instant::now(),
            syncer,
            unsynced: false,
            current_size: 0,
            write_error: None,
        })
    }

    /// Appends one command (with a SELECT first when the database changes). Dropped while
    /// no file is open (waiting for a rewrite that will include it).
    pub fn feed(&mut self, db: usize, argv: &[&[u8]]) {
        if self.file.is_none() {
            return;
        }
        if self.timestamps {
            let now = unix_secs();
            if now > self.last_timestamp {
                self.last_timestamp = now;
                self.pending.buf.extend_from_slice(format!("#TS:{now}\r\n").as_bytes());
            }
        }
        self.pending.push(db, argv);
    }

    /// Bytes to write, or written bytes still to fsync under `always`.
    pub fn has_pending(&self) -> bool {
        !self.pending.buf.is_empty() || self.unsynced
    }

    pub fn pending_len(&self) -> usize {
        self.pending.buf.len()
    }

    /// What the buffer holds allocated (INFO's mem_aof_buffer, and what eviction leaves out).
    pub fn buffer_allocated(&self) -> usize {
        self.pending.buf.capacity()
    }

    /// Writes what is buffered, and fsyncs according to the policy. On failure the bytes stay
    /// buffered and are retried at the next flush; a partial write (a short write, then
    /// ENOSPC) is cut back so the log never holds half a command.
    pub fn flush(&mut self) -> Result<(), AofError> {
        let Some(file) = self.file.as_mut() else {
            self.pending.buf.clear();
            return Ok(());
        };
        if self.pending.buf.is_empty() {
            if self.unsynced {
                file.sync().map_err(AofError::Fsync)?;
                self.unsynced = false;
            }
            return Ok(());
        }
        let len = file.size()?;
        let mut done = 0;
        while done < self.pending.buf.len() {
            match file.write(&self.pending.buf[done..]) {
                Ok(0) => {
                    let e = io::Error::new(io::ErrorKind::WriteZero, "short write");
                    return Err(cut_back(file.as_mut(), len, done, e));
                }
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(cut_back(file.as_mut(), len, done, e)),
            }
        }
        self.current_size += self.pending.buf.len() as u64;
        // A burst (a long pipeline of writes) grows the buffer; keeping that capacity would
        // hold memory that maxmemory then takes from the data set (Redis frees it too).
        if self.pending.buf.capacity() > KEEP_BUFFER {
            self.pending.buf = Vec::new();
        } else {
            self.pending.buf.clear();
        }
        match self.fsync {
            Fsync::Always => {
                // Until an fsync succeeds, nothing written counts as logged.
                self.unsynced = true;
                file.sync().map_err(AofError::Fsync)?;
                self.unsynced = false;
            }
            Fsync::EverySec => {
                if self.last_sync.elapsed() >= Duration::from_secs(1) {
                    self.last_sync = Instant::now();
                    if let (Some(tx), Some(f)) = (&self.syncer, file.sync_handle()) {
                        let _ = tx.send(f);
                    }
                }
            }
            Fsync::No => {}
        }
        Ok(())
    }

    /// Fsyncs the file being appended to (switching the AOF off).
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.as_mut().map_or(Ok(()), |f| f.sync())
    }

    /// Bytes of the file being appended to.
    pub fn file_len(&self) -> u64 {
        self.file.as_ref().and_then(|f| f.size().ok()).unwrap_or(0)
    }

    /// Switches appending to `file` (a new incremental file), the old one fsynced.
    pub fn switch_to(&mut self, file: Box<dyn LogFile>) {
        if let Some(mut old) = self.file.replace(file) {
            let _ = old.sync();
        }
        self.pending.forget_db();
    }
}

/// Writes `name.manifest` in `dir` atomically: a temporary file, fsync, rename, and an fsync
/// of the directory (new files may have appeared in it).
pub fn write_manifest(dir: &Path, filename: &str, m: &Manifest) -> std::io::Result<()> {
    let tmp_name = format!("temp-{filename}.manifest");
    let tmp = dir.join(&tmp_name);
    let mut f =
        std::fs::File::create(&tmp).inspect_err(|e| warn!("Can't open the AOF manifest file {tmp_name}: {e}"))?;
    f.write_all(m.render().as_bytes())
        .inspect_err(|e| warn!("Error trying to write the temporary AOF manifest file {tmp_name}: {e}"))?;
    f.sync_all().inspect_err(|e| warn!("Fail to fsync the temp AOF file {tmp_name}: {e}."))?;
    std::fs::rename(&tmp, dir.join(format!("{filename}.manifest"))).inspect_err(|e| {
        warn!("Error trying to rename the temporary AOF manifest file {tmp_name} into {filename}.manifest: {e}")
    })?;
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A file in the AOF directory exists.
pub fn exists(path: &Path) -> bool {
    std::fs::metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A disk that fails on demand: after `room` more bytes it writes short and then reports
    /// ENOSPC; `fail_sync` makes fsync fail.
    #[derive(Clone, Default)]
    struct Disk(Arc<Mutex<DiskState>>);

    #[derive(Default)]
    struct DiskState {
        bytes: Vec<u8>,
        room: Option<usize>,
        fail_sync: bool,
        syncs: usize,
    }

    impl Disk {
        fn with<R>(&self, f: impl FnOnce(&mut DiskState) -> R) -> R {
            f(&mut self.0.lock().unwrap())
        }
    }

    impl LogFile for Disk {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.with(|d| {
                let n = match d.room {
                    Some(0) => return Err(io::Error::from_raw_os_error(28)), // ENOSPC
                    Some(r) => r.min(buf.len()),
                    None => buf.len(),
                };
                if let Some(r) = d.room.as_mut() {
                    *r -= n;
                }
                d.bytes.extend_from_slice(&buf[..n]);
                Ok(n)
            })
        }
        fn size(&self) -> io::Result<u64> {
            Ok(self.with(|d| d.bytes.len() as u64))
        }
        fn truncate(&mut self, len: u64) -> io::Result<()> {
            self.with(|d| d.bytes.truncate(len as usize));
            Ok(())
        }
        fn sync(&mut self) -> io::Result<()> {
            self.with(|d| {
                d.syncs += 1;
                if d.fail_sync { Err(io::Error::other("fsync failed")) } else { Ok(()) }
            })
        }
        fn sync_handle(&self) -> Option<File> {
            None
        }
    }

    fn log(disk: &Disk, fsync: Fsync) -> Aof {
        Aof::new(AofState::On, Some(Box::new(disk.clone())), fsync, false).unwrap()
    }

    const SET_A: &[u8] = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\n";

    #[test]
    fn a_short_write_then_enospc_leaves_no_half_command_and_is_retried() {
        let disk = Disk::default();
        let mut aof = log(&disk, Fsync::No);
        disk.with(|d| d.room = Some(10));
        aof.feed(0, &[b"SET", b"a", b"1"]);
        assert!(matches!(aof.flush(), Err(AofError::Io(_))));
        assert!(disk.with(|d| d.bytes.is_empty()), "the partial write is cut back");
        assert!(aof.has_pending(), "the command stays buffered");
        disk.with(|d| d.room = None);
        aof.flush().unwrap();
        assert_eq!(disk.with(|d| d.bytes.clone()), SET_A);
        assert_eq!(aof.current_size, SET_A.len() as u64);
    }

    #[test]
    fn a_full_disk_keeps_what_was_already_logged() {
        let disk = Disk::default();
        let mut aof = log(&disk, Fsync::No);
        aof.feed(0, &[b"SET", b"a", b"1"]);
        aof.flush().unwrap();
        disk.with(|d| d.room = Some(0));
        aof.feed(0, &[b"SET", b"b", b"2"]);
        assert!(aof.flush().is_err());
        assert_eq!(disk.with(|d| d.bytes.clone()), SET_A);
    }

    #[test]
    fn fsync_failure_under_always_is_reported() {
        let disk = Disk::default();
        let mut aof = log(&disk, Fsync::Always);
        disk.with(|d| d.fail_sync = true);
        aof.feed(0, &[b"SET", b"a", b"1"]);
        assert!(matches!(aof.flush(), Err(AofError::Fsync(_))));
        assert!(aof.has_pending(), "an unsynced write is not logged yet");
        assert!(aof.flush().is_err(), "the fsync is retried");
        disk.with(|d| d.fail_sync = false);
        aof.flush().unwrap();
        assert!(!aof.has_pending());
        aof.feed(0, &[b"SET", b"b", b"2"]);
        aof.flush().unwrap();
        assert_eq!(disk.with(|d| d.syncs), 4);
    }

    #[test]
    fn no_policy_never_fsyncs() {
        let disk = Disk::default();
        let mut aof = log(&disk, Fsync::No);
        aof.feed(0, &[b"SET", b"a", b"1"]);
        aof.flush().unwrap();
        assert_eq!(disk.with(|d| d.syncs), 0);
    }
}
