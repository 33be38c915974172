//! The file side of a background save (BGSAVE, an AOF rewrite's base): the records the
//! server's forkless walk produces arrive as [`Chunk`]s, and a thread writes them, with the
//! checksum, to a temporary file it fsyncs and renames into place, or feeds them to the
//! snapshot writer process ([`super::child`]). A save the server aborts leaves no file.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::child;
use super::rdb::{self, LoadOptions, SaveOptions};

/// What the walk sends the writer.
pub enum Chunk {
    Data(Vec<u8>),
    /// Everything was sent: close the file and rename it into place.
    Commit,
}

/// How a snapshot becomes an AOF base of commands (`aof-use-rdb-preamble no`).
pub struct AsCommands {
    pub load: LoadOptions,
    pub save: SaveOptions,
    pub timestamp: Option<u64>,
}

/// Feeds the snapshot to the writer process, then waits for it: the save succeeded when the
/// child committed the file and exited 0. A killed child fails the save; its temporary file
/// is removed as Redis removes a killed child's.
pub fn child_writer(
    rx: std::sync::mpsc::Receiver<Chunk>,
    mut pipe: std::process::ChildStdin,
    mut child: std::process::Child,
    child_tmp: PathBuf,
    target: &Path,
    header: Vec<u8>,
    as_commands: Option<AsCommands>,
) -> Result<(), std::io::Error> {
    let fed = (|| {
        child::send(&mut pipe, &header)?;
        for chunk in rx {
            match chunk {
                Chunk::Data(b) => child::send(&mut pipe, &b)?,
                Chunk::Commit => {
                    child::commit(&mut pipe)?;
                    return Ok(true);
                }
            }
        }
        Ok::<bool, std::io::Error>(false)
    })();
    drop(pipe);
    let status = child.wait()?;
    match fed {
        Ok(true) if status.success() => {
            if let Some(c) = as_commands {
                let image = std::fs::read(target)?;
                let mut out = std::io::BufWriter::new(std::fs::File::create(target)?);
                super::aof_rewrite::write_commands(&image, c.load, c.save, c.timestamp, &mut out)?;
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            }
            Ok(())
        }
        other => {
            let _ = std::fs::remove_file(&child_tmp);
            Err(std::io::Error::other(match other {
                Ok(false) if status.success() => "background save aborted".to_string(),
                _ => format!("the writer process ended with {status}"),
            }))
        }
    }
}

pub fn writer_thread(
    rx: std::sync::mpsc::Receiver<Chunk>,
    tmp: PathBuf,
    target: PathBuf,
    header: Vec<u8>,
    checksum: bool,
    as_commands: Option<AsCommands>,
) -> Result<(), std::io::Error> {
    let file = std::fs::File::create(&tmp)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut crc = rdb::Checksum::default();
    out.write_all(&header)?;
    crc.update(&header);
    for chunk in rx {
        match chunk {
            Chunk::Data(b) => {
                out.write_all(&b)?;
                crc.update(&b);
            }
            Chunk::Commit => {
                out.write_all(&crc.trailer(checksum))?;
                let file = out.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                if let Some(c) = as_commands {
                    let image = std::fs::read(&tmp)?;
                    let _ = std::fs::remove_file(&tmp);
                    let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
                    super::aof_rewrite::write_commands(&image, c.load, c.save, c.timestamp, &mut out)?;
                    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                }
                std::fs::rename(&tmp, &target)?;
                return Ok(());
            }
        }
    }
    // The server aborted the save: leave no partial file behind.
    drop(out);
    let _ = std::fs::remove_file(&tmp);
    Err(std::io::Error::other("background save aborted"))
}
