//! The RDB image a replica receives in a full sync, as `$<len>` and that many bytes, or
//! EOF-marked (`$EOF:<40 characters>`, the image, the same 40 characters) from a diskless
//! master, when `repl-diskless-load disabled` (the default) asks for it on disk: it goes to
//! a temporary file that becomes `dbfilename` before it is loaded, as Redis's replica does.
//! (Otherwise the image is parsed from the socket as it arrives: see `sync_stream`.)

use std::io::Write;
use std::path::PathBuf;

use bytes::{Buf, BytesMut};

/// The length of an EOF mark.
pub const MARK_LEN: usize = 40;
/// Received bytes are written to the file in pieces of about this size.
const SPILL: usize = 1 << 20;

pub struct IncomingImage {
    /// Bytes still to come; None for an EOF-marked image.
    left: Option<usize>,
    mark: Vec<u8>,
    /// Received and not yet written to the file. The last MARK_LEN bytes of an EOF-marked
    /// image stay here: they may be the mark.
    buf: Vec<u8>,
    /// Taken when the image is complete (a transfer dropped before removes the file).
    file: Option<(std::io::BufWriter<std::fs::File>, PathBuf)>,
    received: usize,
    /// The announced length (None: EOF-marked).
    total: Option<usize>,
    max: usize,
}

impl IncomingImage {
    /// `left`: the announced length, None with `mark` for an EOF-marked image. `temp`: the
    /// file to receive into. `max`: the most bytes accepted.
    pub fn new(left: Option<usize>, mark: &[u8], temp: PathBuf, max: usize) -> std::io::Result<Self> {
        let file = Some((std::io::BufWriter::with_capacity(SPILL, std::fs::File::create(&temp)?), temp));
        Ok(IncomingImage { left, mark: mark.to_vec(), buf: Vec::new(), file, received: 0, total: left, max })
    }

    pub fn received(&self) -> usize {
        self.received
    }

    pub fn total(&self) -> Option<usize> {
        self.total
    }

    pub fn eof_marked(&self) -> bool {
        self.left.is_none()
    }

    /// Takes the image's bytes from the front of `input`. Returns whether the image is
    /// complete (what follows it stays in `input`).
    pub fn take(&mut self, input: &mut BytesMut) -> Result<bool, String> {
        let n = self.left.map_or(input.len(), |l| l.min(input.len()));
        self.buf.extend_from_slice(&input[..n]);
        input.advance(n);
        self.received += n;
        if self.received > self.max {
            return Err(format!("the image from the master is larger than {} bytes", self.max));
        }
        let done = match self.left.as_mut() {
            Some(l) => {
                *l -= n;
                *l == 0
            }
            None => self.buf.ends_with(&self.mark),
        };
        if done && self.left.is_none() {
            self.buf.truncate(self.buf.len() - MARK_LEN);
        }
        let keep = if done || self.left.is_some() { 0 } else { MARK_LEN };
        if self.file.is_some() && (done || self.buf.len() >= SPILL + keep) {
            let upto = self.buf.len() - keep;
            if let Some((f, _)) = self.file.as_mut() {
                f.write_all(&self.buf[..upto]).map_err(|e| format!("writing the image to disk: {e}"))?;
            }
            self.buf.drain(..upto);
        }
        Ok(done)
    }

    /// The complete image (after [`Self::take`] said so): the file, flushed and synced.
    pub fn finish(mut self) -> std::io::Result<PathBuf> {
        let Some((f, path)) = self.file.take() else {
            return Err(std::io::Error::other("the image was finished already"));
        };
        let f = f.into_inner().map_err(|e| e.into_error())?;
        f.sync_all()?;
        Ok(path)
    }
}

impl Drop for IncomingImage {
    /// A transfer that did not complete leaves no temporary file.
    fn drop(&mut self) {
        if let Some((_, path)) = self.file.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(img: &mut IncomingImage, data: &[u8], piece: usize) -> (bool, BytesMut) {
        let mut rest = BytesMut::new();
        for c in data.chunks(piece) {
            rest.extend_from_slice(c);
            if img.take(&mut rest).unwrap() {
                return (true, rest);
            }
        }
        (false, rest)
    }

    #[test]
    fn eof_marked_image_split_anywhere() {
        let mark = [b'a'; MARK_LEN];
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut wire = body.clone();
        wire.extend_from_slice(&mark);
        let dir = std::env::temp_dir().join(format!("ember-incoming-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for piece in [1usize, 7, 39, 40, 41, 65_536, 5_000_000] {
            let path = dir.join(format!("img-{piece}"));
            let mut img = IncomingImage::new(None, &mark, path.clone(), usize::MAX).unwrap();
            // One byte at a time is slow on 3 MB; a short image checks it.
            let short: Vec<u8> = b"REDIS0010xyz".iter().chain(mark.iter()).copied().collect();
            let (wire, body) = if piece == 1 { (&short[..], &b"REDIS0010xyz"[..]) } else { (&wire[..], &body[..]) };
            assert!(feed(&mut img, wire, piece).0, "piece {piece}");
            assert_eq!(img.finish().unwrap(), path);
            assert_eq!(std::fs::read(&path).unwrap(), body, "piece {piece}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn counted_image_leaves_what_follows_and_respects_max() {
        let path = std::env::temp_dir().join(format!("ember-incoming-counted-{}", std::process::id()));
        let mut img = IncomingImage::new(Some(5), b"", path.clone(), 100).unwrap();
        let mut input = BytesMut::from(&b"abcdePING"[..]);
        assert!(img.take(&mut input).unwrap());
        assert_eq!(&input[..], b"PING");
        assert_eq!(img.finish().unwrap(), path);
        assert_eq!(std::fs::read(&path).unwrap(), b"abcde");
        let mut img = IncomingImage::new(None, &[b'z'; MARK_LEN], path.clone(), 10).unwrap();
        let mut input = BytesMut::from(&[0u8; 11][..]);
        assert!(img.take(&mut input).is_err());
        drop(img);
        assert!(!path.exists());
    }

    #[test]
    fn an_unfinished_transfer_leaves_no_file() {
        let path = std::env::temp_dir().join(format!("ember-incoming-drop-{}", std::process::id()));
        let mut img = IncomingImage::new(Some(10), b"", path.clone(), 100).unwrap();
        let mut input = BytesMut::from(&b"abc"[..]);
        assert!(!img.take(&mut input).unwrap());
        assert!(path.exists());
        drop(img);
        assert!(!path.exists());
    }
}
