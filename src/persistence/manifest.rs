//! The AOF manifest of Redis 7.0's multi-part AOF: which files make the log, in what order.
//!
//! ```text
//! file appendonly.aof.2.base.rdb seq 2 type b
//! file appendonly.aof.1.base.rdb seq 1 type h
//! file appendonly.aof.2.incr.aof seq 2 type i
//! ```
//!
//! The base comes first, then history files (left by rewrites, deleted when auto-gc allows),
//! then the incremental files in sequence order. Parsing is as strict as Redis's, with its
//! error texts, because tools and tests read them from the log.

use thiserror::Error;

use crate::protocol::split_args;
use crate::util::repr;

/// Redis reads manifest lines with a 1024-byte buffer; longer ones are refused.
const MAX_LINE: usize = 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Base,
    History,
    Incr,
}

impl FileKind {
    fn letter(self) -> char {
        match self {
            FileKind::Base => 'b',
            FileKind::History => 'h',
            FileKind::Incr => 'i',
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: i64,
    pub kind: FileKind,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    /// Newest first, as Redis lists them.
    pub history: Vec<AofFile>,
    pub incrs: Vec<AofFile>,
    pub base_seq: i64,
    pub incr_seq: i64,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("Found an empty AOF manifest")]
    Empty,
    #[error("The AOF manifest file contains too long line")]
    LineTooLong,
    #[error("Invalid AOF manifest file format")]
    Format,
    #[error("File can't be a path, just a filename")]
    NotABaseName,
    #[error("Found duplicate base file information")]
    DuplicateBase,
    #[error("Found a non-monotonic sequence number")]
    NonMonotonic,
    #[error("Unknown AOF file type")]
    UnknownType,
}

/// A manifest that could not be parsed: the error, and the line it was met on (number and
/// trimmed text) when there is one, for Redis's "FATAL AOF MANIFEST FILE ERROR" report.
#[derive(Debug, PartialEq, Eq)]
pub struct ManifestFault {
    pub error: ManifestError,
    pub line: Option<(usize, String)>,
}

/// Whether a file name is written quoted (Redis's sdsneedsrepr).
fn needs_repr(s: &str) -> bool {
    s.bytes().any(|c| c == b'\\' || c == b'"' || !c.is_ascii_graphic())
}

impl AofFile {
    fn line(&self) -> String {
        let name = if needs_repr(&self.name) { repr(self.name.as_bytes()) } else { self.name.clone() };
        format!("file {name} seq {} type {}\n", self.seq, self.kind.letter())
    }
}

impl Manifest {
    pub fn parse(text: &[u8]) -> Result<Manifest, ManifestFault> {
        let mut m = Manifest::default();
        let fault = |error, line: Option<(usize, &[u8])>| ManifestFault {
            error,
            line: line.map(|(n, l)| (n, String::from_utf8_lossy(l).into_owned())),
        };
        if text.is_empty() {
            return Err(fault(ManifestError::Empty, None));
        }
        let mut max_incr_seq = 0;
        let mut rest = text;
        let mut number = 0;
        while !rest.is_empty() {
            // fgets' view: at most MAX_LINE bytes, up to and including a newline.
            let cut = rest.iter().take(MAX_LINE).position(|&c| c == b'\n').map(|p| p + 1);
            let raw = &rest[..cut.unwrap_or(rest.len().min(MAX_LINE))];
            rest = &rest[raw.len()..];
            number += 1;
            if raw[0] == b'#' {
                continue;
            }
            if cut.is_none() {
                return Err(fault(ManifestError::LineTooLong, None));
            }
            let line = raw.trim_ascii();
            let at = Some((number, line));
            if line.is_empty() {
                return Err(fault(ManifestError::Format, at));
            }
            let words = match split_args(line) {
                Some(w) if w.len() >= 6 && w.len() % 2 == 0 => w,
                _ => return Err(fault(ManifestError::Format, at)),
            };
            let (mut name, mut seq, mut kind) = (None, 0i64, 0u8);
            for pair in words.chunks(2) {
                let value = &pair[1];
                if pair[0].eq_ignore_ascii_case(b"file") {
                    if value.contains(&b'/') || value.contains(&b'\\') {
                        return Err(fault(ManifestError::NotABaseName, at));
                    }
                    name = Some(String::from_utf8_lossy(value).into_owned());
                } else if pair[0].eq_ignore_ascii_case(b"seq") {
                    seq = atoll(value);
                } else if pair[0].eq_ignore_ascii_case(b"type") {
                    kind = value.first().copied().unwrap_or(0);
                }
            }
            let Some(name) = name.filter(|_| seq != 0 && kind != 0) else {
                return Err(fault(ManifestError::Format, at));
            };
            match kind {
                b'b' => {
                    if m.base.is_some() {
                        return Err(fault(ManifestError::DuplicateBase, at));
                    }
                    m.base_seq = seq;
                    m.base = Some(AofFile { name, seq, kind: FileKind::Base });
                }
                b'h' => m.history.push(AofFile { name, seq, kind: FileKind::History }),
                b'i' => {
                    if seq <= max_incr_seq {
                        return Err(fault(ManifestError::NonMonotonic, at));
                    }
                    max_incr_seq = seq;
                    m.incr_seq = seq;
                    m.incrs.push(AofFile { name, seq, kind: FileKind::Incr });
                }
                _ => return Err(fault(ManifestError::UnknownType, at)),
            }
        }
        Ok(m)
    }

    /// The manifest's text: base, history, incremental files.
    pub fn render(&self) -> String {
        self.base.iter().chain(&self.history).chain(&self.incrs).map(AofFile::line).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incrs.is_empty()
    }

    /// The base and incremental files, in loading order.
    pub fn loading_order(&self) -> impl Iterator<Item = &AofFile> {
        self.base.iter().chain(&self.incrs)
    }

    /// Names the next base file (`rdb`: RDB format, else commands) and turns the current
    /// base, if any, into history.
    pub fn new_base(&mut self, filename: &str, rdb: bool) -> String {
        if let Some(mut old) = self.base.take() {
            old.kind = FileKind::History;
            self.history.insert(0, old);
        }
        self.base_seq += 1;
        let name = format!("{filename}.{}.base.{}", self.base_seq, if rdb { "rdb" } else { "aof" });
        self.base = Some(AofFile { name: name.clone(), seq: self.base_seq, kind: FileKind::Base });
        name
    }

    /// Appends the next incremental file and returns its name.
    pub fn new_incr(&mut self, filename: &str) -> String {
        self.incr_seq += 1;
        let name = format!("{filename}.{}.incr.aof", self.incr_seq);
        self.incrs.push(AofFile { name: name.clone(), seq: self.incr_seq, kind: FileKind::Incr });
        name
    }

    /// The incremental file being appended to, created when there is none.
    pub fn last_incr(&mut self, filename: &str) -> String {
        match self.incrs.last() {
            Some(f) => f.name.clone(),
            None => self.new_incr(filename),
        }
    }

    /// A rewrite finished: the incremental files it covers become history. `keep_last`: the
    /// AOF is on and the last one is being written to.
    pub fn retire_incrs(&mut self, keep_last: bool) {
        let keep = usize::from(keep_last && !self.incrs.is_empty());
        let cut = self.incrs.len() - keep;
        for mut f in self.incrs.drain(..cut).rev() {
            f.kind = FileKind::History;
            self.history.insert(0, f);
        }
    }
}

/// C's atoll: optional sign and leading digits, anything after ignored, 0 when none.
fn atoll(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &c in digits.iter().take_while(|c| c.is_ascii_digit()) {
        v = v.wrapping_mul(10).wrapping_add(i64::from(c - b'0'));
    }
    if neg { v.wrapping_neg() } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> ManifestError {
        Manifest::parse(text.as_bytes()).err().map(|f| f.error).unwrap_or(ManifestError::Empty)
    }

    #[test]
    fn round_trips_and_keeps_sequences() {
        let text = "file appendonly.aof.2.base.rdb seq 2 type b\n\
                    file appendonly.aof.1.base.rdb seq 1 type h\n\
                    file appendonly.aof.3.incr.aof seq 3 type i\n\
                    file appendonly.aof.5.incr.aof seq 5 type i\n";
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.render(), text);
        assert_eq!((m.base_seq, m.incr_seq), (2, 5));
        let names: Vec<_> = m.loading_order().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["appendonly.aof.2.base.rdb", "appendonly.aof.3.incr.aof", "appendonly.aof.5.incr.aof"]);
    }

    #[test]
    fn rewrites_turn_files_into_history_newest_first() {
        let mut m = Manifest::default();
        m.new_base("a", true);
        m.new_incr("a");
        m.new_incr("a");
        m.new_base("a", true);
        m.retire_incrs(true);
        assert_eq!(
            m.render(),
            "file a.2.base.rdb seq 2 type b\nfile a.1.incr.aof seq 1 type h\n\
             file a.1.base.rdb seq 1 type h\nfile a.2.incr.aof seq 2 type i\n"
        );
        m.retire_incrs(false);
        assert!(m.incrs.is_empty());
        assert_eq!(m.history[0].name, "a.2.incr.aof");
    }

    #[test]
    fn names_with_spaces_are_quoted_and_read_back() {
        let mut m = Manifest::default();
        m.new_base("my aof", false);
        let text = m.render();
        assert_eq!(text, "file \"my aof.1.base.aof\" seq 1 type b\n");
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn malformed_manifests_get_redis_errors() {
        assert_eq!(err(""), ManifestError::Empty);
        assert_eq!(err("file a seq 1 type b\n\nfile b seq 1 type i\n"), ManifestError::Format);
        assert_eq!(err("file a seq 1 type b\nfile b seq 2 type b\n"), ManifestError::DuplicateBase);
        assert_eq!(err("file a seq 2 type i\nfile b seq 1 type i\n"), ManifestError::NonMonotonic);
        assert_eq!(err("file a seq 1 type x\n"), ManifestError::UnknownType);
        assert_eq!(err("file a seq 1 typ b\n"), ManifestError::Format);
        assert_eq!(err("file a seq 1\n"), ManifestError::Format);
        assert_eq!(err("file a seq 1 type b x\n"), ManifestError::Format);
        assert_eq!(err("file dir/a seq 1 type b\n"), ManifestError::NotABaseName);
        assert_eq!(err(&format!("file {} seq 1 type b\n", "a".repeat(1100))), ManifestError::LineTooLong);
        // Comments are skipped; like fgets in Redis, a last line without its newline is
        // taken for a cut one.
        assert!(Manifest::parse(b"# note\nfile a seq 1 type b\n").is_ok());
        assert_eq!(err("file a seq 1 type b"), ManifestError::LineTooLong);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        use rand::{RngExt, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let alphabet = b"file seq type bhi 0123456789\n\"'\\# /";
        for _ in 0..20_000 {
            let n = rng.random_range(0..120);
            let text: Vec<u8> = (0..n).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
            let _ = Manifest::parse(&text);
        }
    }
}
