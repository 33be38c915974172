//! The AOF's command format, read as Redis 7.0 reads it (aof.c, loadSingleAppendOnlyFile):
//! `*<argc>` then per argument `$<len>`, the bytes and two bytes of line end; `#` lines are
//! annotations (`#TS:<unix time>`) and skipped. Lines are read as `fgets` with Redis's
//! 1024-byte buffer would, so files that Redis refuses are refused here the same way.

/// `fgets` with a 1024-byte buffer reads at most 1023 bytes of a line.
const LINE_MAX: usize = 1023;

/// Why reading stopped before the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadFault {
    /// The bytes are not the AOF format (Redis: "Bad file format").
    Format,
    /// The file ends inside a command (Redis: "Unexpected end of file"; truncatable).
    Eof,
}

/// Reads commands one by one from a file's bytes.
pub struct CommandReader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> CommandReader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        CommandReader { buf, pos: 0 }
    }

    /// Offset of the first byte not yet read (after the last complete command).
    pub fn offset(&self) -> usize {
        self.pos
    }

    fn gets(&mut self) -> Option<&'a [u8]> {
        let rest = &self.buf[self.pos..];
        if rest.is_empty() {
            return None;
        }
        let n = rest.iter().take(LINE_MAX).position(|&c| c == b'\n').map_or(rest.len().min(LINE_MAX), |p| p + 1);
        self.pos += n;
        Some(&rest[..n])
    }

    /// The next command: `Ok(None)` at the end of the file.
    pub fn next_command(&mut self) -> Result<Option<Vec<&'a [u8]>>, ReadFault> {
        let line = loop {
            match self.gets() {
                None => return Ok(None),
                Some(l) if l[0] == b'#' => continue,
                Some(l) => break l,
            }
        };
        if line[0] != b'*' {
            return Err(ReadFault::Format);
        }
        if line.len() == 1 {
            return Err(ReadFault::Eof);
        }
        let argc = atol(&line[1..]);
        if argc < 1 {
            return Err(ReadFault::Format);
        }
        // The count only bounds the loop; arguments are kept as they are read, so a huge
        // count in a damaged file costs nothing until its arguments are really there.
        let mut argv = Vec::new();
        for _ in 0..argc {
            let Some(line) = self.gets() else { return Err(ReadFault::Eof) };
            if line[0] != b'$' {
                return Err(ReadFault::Format);
            }
            let len = usize::try_from(atol(&line[1..])).unwrap_or(0);
            let rest = self.buf.len() - self.pos;
            if len > rest {
                return Err(ReadFault::Eof);
            }
            argv.push(&self.buf[self.pos..self.pos + len]);
            self.pos += len;
            if self.buf.len() - self.pos < 2 {
                return Err(ReadFault::Eof);
            }
            self.pos += 2;
        }
        Ok(Some(argv))
    }
}

/// C's atoi / strtol: leading blanks, a sign, digits; the rest ignored.
fn atol(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(c - b'0'));
    }
    if neg { -v } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(b: &[u8]) -> (Vec<Vec<Vec<u8>>>, Option<ReadFault>, usize) {
        let mut r = CommandReader::new(b);
        let mut out = Vec::new();
        let mut good = 0;
        loop {
            match r.next_command() {
                Ok(Some(c)) => {
                    out.push(c.iter().map(|a| a.to_vec()).collect());
                    good = r.offset();
                }
                Ok(None) => return (out, None, good),
                Err(e) => return (out, Some(e), good),
            }
        }
    }

    #[test]
    fn commands_annotations_and_faults() {
        let file = b"#TS:1628217470\r\n*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nset\r\n$1\r\nk\r\n$1\r\nv\r\n";
        let (cmds, fault, good) = read_all(file);
        assert_eq!(cmds.len(), 2);
        assert_eq!(cmds[1], vec![b"set".to_vec(), b"k".to_vec(), b"v".to_vec()]);
        assert_eq!((fault, good), (None, file.len()));
        // Cut anywhere inside the last command: an end-of-file fault after the first.
        for cut in 40..file.len() {
            let (cmds, fault, good) = read_all(&file[..cut]);
            assert_eq!((cmds.len(), fault, good), (1, Some(ReadFault::Eof), 39), "cut at {cut}");
        }
        assert_eq!(read_all(b"!!!\r\n").1, Some(ReadFault::Format));
        assert_eq!(read_all(b"*0\r\n").1, Some(ReadFault::Format));
        assert_eq!(read_all(b"*1\r\nx\r\n").1, Some(ReadFault::Format));
        assert_eq!(read_all(b"*").1, Some(ReadFault::Eof));
    }

    #[test]
    fn hostile_files_never_panic_or_allocate_by_count() {
        use rand::{RngExt, SeedableRng};
        assert_eq!(read_all(b"*9223372036854775807\r\n$1\r\na\r\n").1, Some(ReadFault::Eof));
        assert_eq!(read_all(b"*1\r\n$99999999999999999999\r\n").1, Some(ReadFault::Eof));
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        let alphabet = b"*$#\r\n0123456789-abc";
        for _ in 0..20_000 {
            let n = rng.random_range(0..80);
            let f: Vec<u8> = (0..n).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
            let _ = read_all(&f);
        }
    }
}
