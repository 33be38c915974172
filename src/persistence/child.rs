//! The snapshot writer as a child process, as Redis's BGSAVE and BGREWRITEAOF have one.
//!
//! The data still comes from the server without a fork (the forkless snapshot walks the
//! keyspace between commands); the child only receives the image through a pipe and owns
//! the temporary file, named after its pid as Redis names it (`temp-<pid>.rdb`,
//! `temp-rewriteaof-bg-<pid>.aof`). So the tools and habits built around Redis's child work:
//! `pgrep -P` finds it, killing it fails the save and leaves the server running.
//!
//! Framing on the pipe: chunks of `u32` little-endian length + bytes; a zero length commits
//! (the checksum trailer is added, the file fsynced and renamed into place). The pipe
//! closing before the commit aborts: the temporary file is removed and the child exits 1.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::persistence::rdb::Checksum;

/// The hidden first argument that starts `ember-server` as a snapshot writer.
pub const FLAG: &str = "--ember-snapshot-writer";

/// The child's temporary file for `pid`: `<prefix><pid><suffix>` in the working directory.
pub fn temp_path(prefix: &str, suffix: &str, pid: u32) -> PathBuf {
    PathBuf::from(format!("{prefix}{pid}{suffix}"))
}

/// Arguments after [`FLAG`]: prefix, suffix, target, checksum (`1`/`0`).
pub fn args(prefix: &str, suffix: &str, target: &Path, checksum: bool) -> Vec<std::ffi::OsString> {
    vec![
        FLAG.into(),
        prefix.into(),
        suffix.into(),
        target.as_os_str().to_owned(),
        if checksum { "1" } else { "0" }.into(),
    ]
}

/// Sends one chunk of the image to the child.
/// Whether child `pid` has exited (killed, crashed), without reaping it: its writer thread
/// waits for it and reads the status (Redis's parent learns the same from waitpid in its
/// cron; the writer thread would only find out at its next write, which under
/// rdb-key-save-delay can be minutes away).
pub fn exited(pid: u32) -> bool {
    // SAFETY: waitid with WNOHANG | WNOWAIT only reads the child's state into `info`.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT);
        r == 0 && info.si_pid() != 0
    }
}

pub fn send(pipe: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    for piece in bytes.chunks(u32::MAX as usize) {
        pipe.write_all(&(piece.len() as u32).to_le_bytes())?;
        pipe.write_all(piece)?;
    }
    Ok(())
}

/// Tells the child the image is complete.
pub fn commit(pipe: &mut impl Write) -> std::io::Result<()> {
    pipe.write_all(&0u32.to_le_bytes())?;
    pipe.flush()
}

/// The child's main: returns the process exit code.
pub fn run(args: &[String]) -> u8 {
    let [prefix, suffix, target, checksum] = args else {
        eprintln!("usage: {FLAG} PREFIX SUFFIX TARGET CHECKSUM");
        return 2;
    };
    let tmp = temp_path(prefix, suffix, std::process::id());
    match write(&mut std::io::stdin().lock(), &tmp, Path::new(target), checksum == "1") {
        Ok(()) => 0,
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("snapshot writer: {e}");
            1
        }
    }
}

fn write(input: &mut impl Read, tmp: &Path, target: &Path, checksum: bool) -> std::io::Result<()> {
    let file = std::fs::File::create(tmp)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut crc = Checksum::default();
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        input.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        if len == 0 {
            break;
        }
        // Bounded by the framing (at most 4 GiB), read in place rather than pre-sized.
        buf.clear();
        input.take(len as u64).read_to_end(&mut buf)?;
        if buf.len() != len {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the server went away"));
        }
        out.write_all(&buf)?;
        crc.update(&buf);
    }
    out.write_all(&crc.trailer(checksum))?;
    let file = out.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    std::fs::rename(tmp, target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_commit_or_abort() {
        let dir = std::env::temp_dir().join(format!("ember-child-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (tmp, target) = (dir.join("t.tmp"), dir.join("t.rdb"));
        let mut pipe = Vec::new();
        send(&mut pipe, b"REDIS").unwrap();
        send(&mut pipe, b"0010").unwrap();
        commit(&mut pipe).unwrap();
        write(&mut &pipe[..], &tmp, &target, false).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"REDIS0010\xff\0\0\0\0\0\0\0\0");
        assert!(!tmp.exists());
        // Cut before the commit: an error, nothing renamed.
        let _ = std::fs::remove_file(&target);
        assert!(write(&mut &pipe[..pipe.len() - 4], &tmp, &target, false).is_err());
        assert!(!target.exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
