//! The RDB parser's input: an image in memory, or one read as it is parsed from a file (or
//! any reader) through a bounded window, so loading a file never holds the whole of it.

use std::io::Read;

use super::lzf;
use super::rdb::{Checksum, ENC_INT8, ENC_INT16, ENC_INT32, ENC_LZF, RdbError, crc64};
use crate::types::stream::StreamId;

/// What a streamed image is read in (and the window's granularity).
const CHUNK: usize = 256 * 1024;

pub struct Reader<'a> {
    /// The whole image (in-memory input), or empty.
    data: &'a [u8],
    /// The streamed input; its bytes from absolute offset `base` on are in `window`.
    stream: Option<&'a mut dyn Read>,
    window: Vec<u8>,
    base: usize,
    /// Absolute position of the next byte.
    pub pos: usize,
    /// The image's length (counts larger than what is left are corruption).
    limit: u64,
    /// Streamed input: the checksum of the bytes before `base`.
    crc: Checksum,
}

impl<'a> Reader<'a> {
    pub fn slice(data: &'a [u8]) -> Self {
        Reader {
            data,
            stream: None,
            window: Vec::new(),
            base: 0,
            pos: 0,
            limit: data.len() as u64,
            crc: Checksum::default(),
        }
    }

    /// `len`: the image's length (a file's size).
    pub fn stream(src: &'a mut dyn Read, len: u64) -> Self {
        Reader {
            data: &[],
            stream: Some(src),
            window: Vec::new(),
            base: 0,
            pos: 0,
            limit: len,
            crc: Checksum::default(),
        }
    }

    pub fn err(&self, what: impl Into<String>) -> RdbError {
        RdbError::Corrupted { offset: self.pos, what: what.into() }
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&[u8], RdbError> {
        if self.stream.is_some() {
            self.fill(n)?;
        }
        let (buf, start) = match self.stream {
            Some(_) => (&self.window[..], self.pos - self.base),
            None => (self.data, self.pos),
        };
        let end = start.checked_add(n).filter(|e| *e <= buf.len()).ok_or_else(|| self.err("unexpected end of file"))?;
        self.pos += n;
        Ok(&buf[start..end])
    }

    /// Streamed input: at least `n` unread bytes in the window unless the input ends first.
    /// The window only grows as bytes arrive, so a hostile length cannot size an allocation.
    fn fill(&mut self, n: usize) -> Result<(), RdbError> {
        let consumed = self.pos - self.base;
        if self.window.len() - consumed >= n {
            return Ok(());
        }
        if n as u64 > self.limit.saturating_sub(self.pos as u64) {
            return Err(self.err("unexpected end of file"));
        }
        self.crc.update(&self.window[..consumed]);
        self.window.drain(..consumed);
        self.base = self.pos;
        let Some(src) = self.stream.as_mut() else { return Ok(()) };
        while self.window.len() < n {
            let old = self.window.len();
            self.window.resize(old + (n - old).clamp(CHUNK, 16 * CHUNK), 0);
            let got = loop {
                match src.read(&mut self.window[old..]) {
                    Ok(got) => break got,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        self.window.truncate(old);
                        return Err(RdbError::Read { offset: self.pos, source: e });
                    }
                }
            };
            self.window.truncate(old + got);
            if got == 0 {
                break;
            }
        }
        Ok(())
    }

    /// Streamed input: the bytes read from the source past the position (read ahead of
    /// need; after the image, they are whatever followed it).
    pub fn unread(&self) -> &[u8] {
        match self.stream {
            Some(_) => self.window.get(self.pos - self.base..).unwrap_or_default(),
            None => &[],
        }
    }

    /// The CRC-64 of the image's first `at` bytes (`at` at most the position).
    pub fn checksum_to(&self, at: usize) -> u64 {
        if self.stream.is_none() {
            return crc64(&self.data[..at.min(self.data.len())]);
        }
        let mut crc = self.crc.clone();
        crc.update(&self.window[..at.saturating_sub(self.base).min(self.window.len())]);
        crc.value()
    }

    pub fn u8(&mut self) -> Result<u8, RdbError> {
        Ok(self.take(1)?[0])
    }

    pub fn u64_le(&mut self) -> Result<u64, RdbError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or([0; 8])))
    }

    /// A length, or Err((encoding)) for the special string encodings.
    pub fn len_or_enc(&mut self) -> Result<Result<u64, u8>, RdbError> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => Ok((b & 0x3f) as u64),
            1 => Ok((((b & 0x3f) as u64) << 8) | self.u8()? as u64),
            2 => match b {
                0x80 => Ok(u32::from_be_bytes(self.take(4)?.try_into().unwrap_or([0; 4])) as u64),
                0x81 => Ok(u64::from_be_bytes(self.take(8)?.try_into().unwrap_or([0; 8]))),
                _ => return Err(self.err(format!("unknown length encoding {b:#x}"))),
            },
            _ => Err(b & 0x3f),
        })
    }

    pub fn length(&mut self) -> Result<u64, RdbError> {
        match self.len_or_enc()? {
            Ok(n) => Ok(n),
            Err(_) => Err(self.err("a string encoding where a length was expected")),
        }
    }

    /// A length that counts things still to be read from the file: never more than the bytes
    /// left, so a hostile length cannot make the loader allocate without bound.
    pub fn count(&mut self) -> Result<usize, RdbError> {
        let n = self.length()?;
        if n > self.limit.saturating_sub(self.pos as u64) {
            return Err(self.err(format!("length {n} exceeds the file")));
        }
        Ok(n as usize)
    }

    pub fn string(&mut self) -> Result<Vec<u8>, RdbError> {
        match self.len_or_enc()? {
            Ok(n) => {
                let n = usize::try_from(n).map_err(|_| self.err("string too long"))?;
                Ok(self.take(n)?.to_vec())
            }
            Err(ENC_INT8) => Ok((self.u8()? as i8).to_string().into_bytes()),
            Err(ENC_INT16) => {
                Ok(i16::from_le_bytes(self.take(2)?.try_into().unwrap_or([0; 2])).to_string().into_bytes())
            }
            Err(ENC_INT32) => {
                Ok(i32::from_le_bytes(self.take(4)?.try_into().unwrap_or([0; 4])).to_string().into_bytes())
            }
            Err(ENC_LZF) => {
                let clen = self.count()?;
                let len = self.length()?;
                // LZF expands at most ~88x (a 3-byte back-reference copies 264 bytes), so a
                // larger claim is corruption, and a tiny file cannot make us allocate gigabytes.
                if len > 512 * 1024 * 1024 || len > (clen as u64).saturating_mul(100) + 64 {
                    return Err(self.err("compressed string too long"));
                }
                let at = self.pos;
                let data = self.take(clen)?;
                lzf::decompress(data, len as usize)
                    .ok_or_else(|| RdbError::Corrupted { offset: at, what: "invalid LZF data".into() })
            }
            Err(e) => Err(self.err(format!("unknown string encoding {e}"))),
        }
    }

    pub fn binary_double(&mut self) -> Result<f64, RdbError> {
        Ok(f64::from_le_bytes(self.take(8)?.try_into().unwrap_or([0; 8])))
    }

    /// RDB_TYPE_ZSET's text doubles: a length byte (253 nan, 254 +inf, 255 -inf) then text.
    pub fn text_double(&mut self) -> Result<f64, RdbError> {
        let n = self.u8()?;
        match n {
            253 => Ok(f64::NAN),
            254 => Ok(f64::INFINITY),
            255 => Ok(f64::NEG_INFINITY),
            n => {
                let at = self.pos;
                let s = self.take(n as usize)?;
                let parsed = std::str::from_utf8(s).ok().and_then(|t| t.parse().ok());
                parsed.ok_or_else(|| RdbError::Corrupted { offset: at, what: "invalid double".into() })
            }
        }
    }

    pub fn stream_id(&mut self) -> Result<StreamId, RdbError> {
        Ok(StreamId::new(self.length()?, self.length()?))
    }

    pub fn raw_id(&mut self) -> Result<StreamId, RdbError> {
        let b = self.take(16)?;
        let ms = u64::from_be_bytes(b[..8].try_into().unwrap_or([0; 8]));
        let seq = u64::from_be_bytes(b[8..].try_into().unwrap_or([0; 8]));
        Ok(StreamId::new(ms, seq))
    }
}
