//! Incremental, bounded request decoder.
//!
//! Accepts what redis-server accepts: RESP multibulk requests (`*N\r\n$len\r\n...`) and inline
//! commands (`set a b\r\n`, telnet style, with sdssplitargs quoting). The decoder keeps its
//! position between calls, so a frame split over any number of reads is parsed once, and a large
//! bulk is consumed without rescanning. "Need more bytes" is `Ok(None)`, never an error; a
//! malformed frame is a [`ProtocolError`] whose `Display` is the exact text Redis replies before
//! closing the connection.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// Longest inline request or `*`/`$` header line Redis accepts without a newline (PROTO_INLINE_MAX_SIZE).
pub const INLINE_MAX: usize = 64 * 1024;
/// Before AUTH, Redis refuses requests larger than these (a cheap guard against unauthenticated floods).
const UNAUTH_MAX_ARGS: i64 = 10;
const UNAUTH_MAX_BULK: i64 = 16384;
/// Initial argv reservation cap: a client announcing `*2000000000` must not make us allocate it.
const ARGV_PREALLOC_MAX: usize = 1024;
/// Large bulks are reserved up front (like Redis's 32 KiB greedy path) so they are read in place.
const BIG_BULK: usize = 32 * 1024;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("Protocol error: too big inline request")]
    InlineTooBig,
    #[error("Protocol error: unbalanced quotes in request")]
    UnbalancedQuotes,
    #[error("Protocol error: too big mbulk count string")]
    MbulkCountTooBig,
    #[error("Protocol error: too big bulk count string")]
    BulkCountTooBig,
    #[error("Protocol error: invalid multibulk length")]
    InvalidMultibulkLength,
    #[error("Protocol error: invalid bulk length")]
    InvalidBulkLength,
    #[error("Protocol error: unauthenticated multibulk length")]
    UnauthMultibulkLength,
    #[error("Protocol error: unauthenticated bulk length")]
    UnauthBulkLength,
    #[error("Protocol error: expected '$', got '{0}'")]
    ExpectedDollar(char),
}

/// Per-connection decoding state.
/// Requests with at most this many arguments are handed out from an array on the stack.
const STACK_ARGS: usize = 8;

/// An incremental RESP request decoder. A request's arguments are not copied or split off:
/// the decoder notes where each lies in the read buffer and hands out slices of it
/// ([`Decoder::with_args`]); [`Decoder::finish`] then drops the request from the buffer. (One
/// shared `Bytes` per argument cost two atomic reference-count updates each: ~15% of the CPU
/// of a pipelined GET.)
#[derive(Debug, Default)]
pub struct Decoder {
    /// Arguments of the current request still to come.
    pending: usize,
    bulk_len: Option<usize>,
    /// How much of the buffer the current request has taken so far.
    pos: usize,
    /// Where each decoded argument lies in the buffer: (start, length).
    ranges: Vec<(usize, usize)>,
    /// An inline request's arguments (unquoted, so not slices of the buffer).
    inline: Option<Vec<Vec<u8>>>,
    /// A complete request is being handed out; [`Decoder::finish`] consumes it.
    complete: bool,
    /// Requests [`Decoder::look_ahead`] already parsed, handed out before parsing again.
    ahead: Ahead,
}

/// Complete requests parsed ahead (for the prefetch window): each one's end and its
/// arguments, positions as the buffer was then; `shift` is what was consumed since.
#[derive(Debug, Default)]
struct Ahead {
    requests: Vec<(usize, std::ops::Range<usize>)>,
    ranges: Vec<(usize, usize)>,
    next: usize,
    shift: usize,
    limits: Option<Limits>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_bulk_len: i64,
    pub authenticated: bool,
}

/// The arguments of one complete request [`Decoder::look_ahead`] parsed.
pub struct AheadArgs<'a, 'r> {
    buf: &'a [u8],
    ranges: &'r [(usize, usize)],
}

impl<'a> AheadArgs<'a, '_> {
    pub fn get(&self, i: usize) -> Option<&'a [u8]> {
        let &(start, len) = self.ranges.get(i)?;
        self.buf.get(start..start + len)
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn in_request(&self) -> bool {
        self.pending > 0
    }

    /// Decodes the next request and returns a copy of its arguments (tests, tools).
    pub fn decode(&mut self, buf: &mut BytesMut, limits: Limits) -> Result<Option<Vec<Bytes>>, ProtocolError> {
        if !self.decode_next(buf, limits)? {
            return Ok(None);
        }
        let args = self.with_args(buf, |argv| argv.iter().map(|a| Bytes::copy_from_slice(a)).collect());
        self.finish(buf);
        Ok(Some(args))
    }

    /// The bytes the complete request takes at the front of the buffer.
    pub fn request_len(&self) -> usize {
        self.pos
    }

    /// How Redis would account `buffered` bytes of a request half read (CLIENT LIST's qbuf
    /// and argv-mem): while a big argument arrives, its query buffer holds that argument
    /// alone, the ones before it moved to the argument vector.
    pub fn buffered_split(&self, buffered: usize) -> (usize, usize) {
        match self.bulk_len {
            Some(len) if self.pending > 0 && len >= BIG_BULK && self.pos <= buffered => {
                (buffered - self.pos, self.ranges.iter().map(|r| r.1).sum())
            }
            _ => (buffered, 0),
        }
    }

    /// Calls `f` with the arguments of the request [`Decoder::decode_next`] completed; `buf`
    /// is the buffer it decoded.
    pub fn with_args<R>(&self, buf: &[u8], f: impl FnOnce(&[&[u8]]) -> R) -> R {
        if let Some(inline) = &self.inline {
            let argv: Vec<&[u8]> = inline.iter().map(Vec::as_slice).collect();
            return f(&argv);
        }
        let n = self.ranges.len();
        if n <= STACK_ARGS {
            let mut argv: [&[u8]; STACK_ARGS] = [&[]; STACK_ARGS];
            for (slot, &(start, len)) in argv.iter_mut().zip(&self.ranges) {
                *slot = &buf[start..start + len];
            }
            f(&argv[..n])
        } else {
            let argv: Vec<&[u8]> = self.ranges.iter().map(|&(start, len)| &buf[start..start + len]).collect();
            f(&argv)
        }
    }

    /// Drops the complete request from the front of the buffer.
    pub fn finish(&mut self, buf: &mut BytesMut) {
        if !self.complete {
            return;
        }
        // A buffer consumed whole (the usual case) is cleared: the next read lands at its
        // front, with no room to reclaim first.
        if self.pos >= buf.len() {
            buf.clear();
        } else {
            buf.advance(self.pos);
        }
        self.ahead.shift += self.pos;
        self.complete = false;
        self.pos = 0;
        self.inline = None;
        self.ranges.clear();
        if self.ranges.capacity() > ARGV_PREALLOC_MAX {
            self.ranges = Vec::new();
        }
    }

    /// Parses up to `max` complete requests at the front of `buf` ahead of time, calling `f`
    /// with each one's index and arguments (the key of most commands is the second) so their
    /// keyspace entries can be prefetched; [`Decoder::decode_next`] then hands them out
    /// without parsing again. Returns how many it parsed, or `None` when a request is half
    /// decoded (try again after it). It stops at anything but a plain multibulk request
    /// within the limits: the decoder judges that one as usual.
    pub fn look_ahead<'a>(
        &mut self,
        buf: &'a [u8],
        limits: Limits,
        max: usize,
        mut f: impl FnMut(usize, AheadArgs<'a, '_>),
    ) -> Option<usize> {
        if self.pending > 0 || self.complete {
            return None;
        }
        let a = &mut self.ahead;
        a.requests.clear();
        a.ranges.clear();
        a.next = 0;
        a.shift = 0;
        a.limits = Some(limits);
        let mut pos = 0;
        'requests: while a.requests.len() < max && buf.get(pos) == Some(&b'*') {
            let Some((count, mut at)) = plain_number(buf, pos) else { break };
            if count > i32::MAX as usize || (count as i64 > UNAUTH_MAX_ARGS && !limits.authenticated) {
                break;
            }
            let first = a.ranges.len();
            for _ in 0..count {
                if buf.get(at) != Some(&b'$') {
                    break 'requests;
                }
                let Some((len, start)) = plain_number(buf, at) else { break 'requests };
                if len as i64 > limits.max_bulk_len || (len as i64 > UNAUTH_MAX_BULK && !limits.authenticated) {
                    break 'requests;
                }
                if buf.len() - start < len + 2 {
                    break 'requests;
                }
                a.ranges.push((start, len));
                at = start + len + 2;
            }
            f(a.requests.len(), AheadArgs { buf, ranges: &a.ranges[first..] });
            a.requests.push((at, first..a.ranges.len()));
            pos = at;
        }
        a.ranges.truncate(a.requests.last().map_or(0, |(_, r)| r.end));
        Some(a.requests.len())
    }

    /// Decodes from `buf` until a request is complete (true: see [`Decoder::with_args`], then
    /// [`Decoder::finish`]) or the buffer runs out (false: call again when more has arrived).
    pub fn decode_next(&mut self, buf: &mut BytesMut, limits: Limits) -> Result<bool, ProtocolError> {
        self.finish(buf);
        if self.pending == 0 && self.ahead.next < self.ahead.requests.len() {
            // Parsed by look_ahead under the same limits (a command of the window may have
            // changed them: then the rest is parsed again).
            if self.ahead.limits == Some(limits) {
                let (end, args) = self.ahead.requests[self.ahead.next].clone();
                self.ahead.next += 1;
                let shift = self.ahead.shift;
                self.ranges.clear();
                self.ranges.extend(self.ahead.ranges[args].iter().map(|&(start, len)| (start - shift, len)));
                self.pos = end - shift;
                self.complete = true;
                return Ok(true);
            }
            self.ahead.requests.clear();
        }
        if self.pending == 0 {
            if buf.is_empty() {
                return Ok(false);
            }
            if buf[0] != b'*' {
                return Ok(match decode_inline(buf)? {
                    Some((args, len)) => {
                        self.inline = Some(args);
                        self.pos = len;
                        self.complete = true;
                        true
                    }
                    None => false,
                });
            }
            // Plain lengths are read in one pass; anything else goes to the general parser,
            // which judges it with Redis's errors.
            let (count, after) = match plain_number(buf, 0) {
                Some((n, after)) => (n as i64, after),
                None => {
                    let Some(line_end) = find_cr(buf, 0) else {
                        if buf.len() > INLINE_MAX {
                            return Err(ProtocolError::MbulkCountTooBig);
                        }
                        return Ok(false);
                    };
                    if line_end + 1 >= buf.len() {
                        return Ok(false); // the '\n' has not arrived yet
                    }
                    let n = parse_i64(&buf[1..line_end]).ok_or(ProtocolError::InvalidMultibulkLength)?;
                    (n, line_end + 2)
                }
            };
            if count > i32::MAX as i64 {
                return Err(ProtocolError::InvalidMultibulkLength);
            }
            if count > UNAUTH_MAX_ARGS && !limits.authenticated {
                return Err(ProtocolError::UnauthMultibulkLength);
            }
            self.pos = after;
            if count <= 0 {
                self.complete = true;
                return Ok(true);
            }
            self.pending = count as usize;
            self.ranges.reserve(self.pending.min(ARGV_PREALLOC_MAX));
            self.bulk_len = None;
        }
        while self.pending > 0 {
            let len = match self.bulk_len {
                Some(len) => len,
                None => {
                    let (len, after) = match plain_number(buf, self.pos).filter(|_| buf[self.pos] == b'$') {
                        Some((n, after)) => (n as i64, after),
                        None => {
                            let Some(line_end) = find_cr(buf, self.pos) else {
                                if buf.len() - self.pos > INLINE_MAX {
                                    return Err(ProtocolError::BulkCountTooBig);
                                }
                                return Ok(false);
                            };
                            if line_end + 1 >= buf.len() {
                                return Ok(false);
                            }
                            if buf[self.pos] != b'$' {
                                return Err(ProtocolError::ExpectedDollar(buf[self.pos] as char));
                            }
                            let n = parse_i64(&buf[self.pos + 1..line_end]).ok_or(ProtocolError::InvalidBulkLength)?;
                            (n, line_end + 2)
                        }
                    };
                    if len < 0 || len > limits.max_bulk_len {
                        return Err(ProtocolError::InvalidBulkLength);
                    }
                    if len > UNAUTH_MAX_BULK && !limits.authenticated {
                        return Err(ProtocolError::UnauthBulkLength);
                    }
                    self.pos = after;
                    let len = len as usize;
                    if len >= BIG_BULK {
                        // The whole argument is read into one allocation, not regrown.
                        buf.reserve((self.pos + len + 2).saturating_sub(buf.len()));
                    }
                    self.bulk_len = Some(len);
                    len
                }
            };
            // Like Redis, the two bytes after the payload are skipped without being checked.
            if buf.len() - self.pos < len + 2 {
                return Ok(false);
            }
            self.ranges.push((self.pos, len));
            self.pos += len + 2;
            self.bulk_len = None;
            self.pending -= 1;
        }
        self.complete = true;
        Ok(true)
    }
}

/// The number of the `*N` / `$N` line at `pos` (its first byte is not looked at) when it is
/// plain: 1 to 18 digits, no sign, no leading zero, its CRLF arrived. Returns it and where
/// the line ends. `None` sends the line to the general parser.
#[inline]
fn plain_number(buf: &[u8], pos: usize) -> Option<(usize, usize)> {
    let first = buf.get(pos + 1)?.wrapping_sub(b'1');
    if first > 8 {
        return None;
    }
    let mut n = first as usize + 1;
    let mut i = pos + 2;
    while i < pos + 19 {
        let d = buf.get(i)?.wrapping_sub(b'0');
        if d > 9 {
            break;
        }
        n = n * 10 + d as usize;
        i += 1;
    }
    (buf.get(i) == Some(&b'\r') && i + 1 < buf.len()).then_some((n, i + 2))
}

fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..].iter().position(|&b| b == b'\r').map(|p| p + from)
}

/// An inline request's arguments and the bytes its line takes.
type InlineRequest = (Vec<Vec<u8>>, usize);

/// An inline request (a line of text), if its line is complete.
fn decode_inline(buf: &[u8]) -> Result<Option<InlineRequest>, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(ProtocolError::InlineTooBig);
        }
        return Ok(None);
    };
    let mut line = &buf[..nl];
    if line.last() == Some(&b'\r') {
        line = &line[..line.len() - 1];
    }
    let args = split_args(line).ok_or(ProtocolError::UnbalancedQuotes)?;
    Ok(Some((args, nl + 1)))
}

pub use crate::util::numfmt::parse_i64;

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Splits an inline request into arguments with the quoting rules of Redis's sdssplitargs:
/// `"..."` understands `\n \r \t \b \a \\ \" \xHH`, `'...'` only `\'`; a closing quote must be
/// followed by a space or the end. `None` means unbalanced quotes.
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut args = Vec::new();
    let mut i = 0;
    loop {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            let c = line.get(i).copied();
            if in_dq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if i + 3 < line.len()
                            && line[i + 1] == b'x'
                            && hex_val(line[i + 2]).is_some()
                            && hex_val(line[i + 3]).is_some() =>
                    {
                        let hi = hex_val(line[i + 2]).unwrap_or(0);
                        let lo = hex_val(line[i + 3]).unwrap_or(0);
                        cur.push(hi * 16 + lo);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < line.len() => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => cur.push(c),
                }
            } else if in_sq {
                match c {
                    None => return None,
                    Some(b'\\') if i + 1 < line.len() && line[i + 1] == b'\'' => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if i + 1 < line.len() && !line[i + 1].is_ascii_whitespace() {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(c) => cur.push(c),
                }
            } else {
                match c {
                    None => break,
                    Some(b' ' | b'\n' | b'\r' | b'\t' | 0) => break,
                    Some(b'"') => in_dq = true,
                    Some(b'\'') => in_sq = true,
                    Some(c) => cur.push(c),
                }
            }
            i += 1;
        }
        args.push(cur);
    }
}

/// Appends `argv` as a RESP array of bulk strings: a command as a client, an AOF or a
/// replication stream sends it.
pub fn encode_command(out: &mut Vec<u8>, argv: &[&[u8]]) {
    out.extend_from_slice(format!("*{}\r\n", argv.len()).as_bytes());
    for a in argv {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: Limits = Limits { max_bulk_len: 512 * 1024 * 1024, authenticated: true };

    fn all(input: &[u8]) -> Result<Vec<Vec<Bytes>>, ProtocolError> {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(input);
        let mut out = Vec::new();
        while let Some(a) = d.decode(&mut buf, L)? {
            out.push(a);
        }
        Ok(out)
    }

    #[test]
    fn pipelined_stream_at_every_split_point() {
        let stream: &[u8] =
            b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\nget k\r\n*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n";
        let expected = all(stream).unwrap();
        assert_eq!(expected.len(), 4);
        assert_eq!(expected[1][2], Bytes::new());
        assert_eq!(&expected[3][1][..], b"a\0b");
        for split in 0..=stream.len() {
            let mut d = Decoder::new();
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for chunk in [&stream[..split], &stream[split..]] {
                buf.extend_from_slice(chunk);
                while let Some(a) = d.decode(&mut buf, L).unwrap() {
                    got.push(a);
                }
            }
            assert_eq!(got, expected, "split at {split}");
        }
        // Byte at a time.
        let mut d = Decoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in stream {
            buf.extend_from_slice(&[*b]);
            while let Some(a) = d.decode(&mut buf, L).unwrap() {
                got.push(a);
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn plain_lengths_and_the_rest_decode_alike() {
        // The one-pass reader takes plain lengths; zero, leading zeros, signs and 19 digits go
        // the general way, with the same outcome as before.
        assert_eq!(plain_number(b"$12\r\n", 0), Some((12, 5)));
        assert_eq!(plain_number(b"$12\r", 0), None);
        for line in [&b"$0\r\n"[..], b"$012\r\n", b"$+1\r\n", b"$-1\r\n", b"$1x\r\n", b"$1234567890123456789\r\n"] {
            assert_eq!(plain_number(line, 0), None, "{}", String::from_utf8_lossy(line));
        }
        assert_eq!(all(b"*1\r\n$0\r\n\r\n").unwrap(), vec![vec![Bytes::new()]]);
        assert_eq!(all(b"*1\r\n$01\r\nx\r\n"), Err(ProtocolError::InvalidBulkLength));
        assert_eq!(all(b"*01\r\n$1\r\nx\r\n"), Err(ProtocolError::InvalidMultibulkLength));
        assert_eq!(all(b"*1\r\n$99999999999999999999\r\n"), Err(ProtocolError::InvalidBulkLength));
    }

    #[test]
    fn arguments_stay_in_the_buffer_until_finish() {
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPI"[..]);
        assert!(d.decode_next(&mut buf, L).unwrap());
        assert_eq!(d.request_len(), 20);
        let (base, end) = (buf.as_ptr() as usize, buf.as_ptr() as usize + buf.len());
        d.with_args(&buf, |argv| {
            assert_eq!(argv, [&b"GET"[..], b"k"]);
            // Slices of the read buffer, not copies.
            assert!(argv.iter().all(|a| (base..end).contains(&(a.as_ptr() as usize))));
        });
        assert_eq!(buf.len(), 30);
        d.finish(&mut buf);
        assert_eq!(&buf[..], b"*1\r\n$4\r\nPI");
        // An incomplete request stays whole in the buffer; more bytes complete it.
        assert!(!d.decode_next(&mut buf, L).unwrap());
        assert_eq!(buf.len(), 10);
        buf.extend_from_slice(b"NG\r\n");
        assert!(d.decode_next(&mut buf, L).unwrap());
        d.with_args(&buf, |argv| assert_eq!(argv, [&b"PING"[..]]));
        d.finish(&mut buf);
        assert!(buf.is_empty());
        // More arguments than the stack array holds.
        let mut buf = BytesMut::from(&b"*10\r\n"[..]);
        for i in 0..10 {
            buf.extend_from_slice(format!("$1\r\n{i}\r\n").as_bytes());
        }
        assert!(d.decode_next(&mut buf, L).unwrap());
        d.with_args(&buf, |argv| assert_eq!(argv.len(), 10));
    }

    #[test]
    fn look_ahead_parses_complete_requests_once() {
        let stream = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$1\r\nx\r\n*2\r\n$3\r\nGET\r\n$9\r\nunfinish";
        let mut d = Decoder::new();
        let mut keys = Vec::new();
        assert_eq!(d.look_ahead(stream, L, 10, |i, args| keys.push((i, args.get(1).map(<[u8]>::to_vec)))), Some(3));
        // Complete requests only; PING has no second argument.
        assert_eq!(keys, vec![(0, Some(b"a".to_vec())), (1, None), (2, Some(b"bb".to_vec()))]);
        // Handed out as the decoder would have parsed them, then the rest as usual.
        let mut buf = BytesMut::from(&stream[..]);
        let mut got = Vec::new();
        while let Some(a) = d.decode(&mut buf, L).unwrap() {
            got.push(a);
        }
        assert_eq!(got, all(&stream[..stream.len() - 25]).unwrap());
        assert!(d.in_request());
        assert_eq!(d.look_ahead(&buf, L, 10, |_, _| {}), None, "a request is half decoded");
        buf.extend_from_slice(b"e\r\n");
        assert_eq!(d.decode(&mut buf, L).unwrap().map(|a| a[1].clone()), Some(Bytes::from_static(b"unfinishe")));
        // Limits that changed after the look-ahead (AUTH, RESET, CONFIG SET) are applied.
        let mut d = Decoder::new();
        let big = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*2\r\n$3\r\nGET\r\n$20000\r\n";
        let mut buf = BytesMut::from(&big[..]);
        buf.extend_from_slice(&[b'k'; 20000]);
        buf.extend_from_slice(b"\r\n");
        assert_eq!(d.look_ahead(&buf, L, 10, |_, _| {}), Some(2));
        assert!(d.decode(&mut buf, L).unwrap().is_some());
        let unauth = Limits { authenticated: false, ..L };
        assert_eq!(d.decode(&mut buf, unauth), Err(ProtocolError::UnauthBulkLength));
        // What it does not take, the decoder judges.
        for bad in [
            &b"*2\r\n$-1\r\n"[..],
            b"*x\r\n",
            b"*\r\n",
            b"*0\r\n",
            b"*99999999999999999999999\r\n",
            b"GET a\r\n",
            b"*2\r\n+3\r\n",
            b"*9999999999999\r\n",
            b"*1\r\n$99999999999999999\r\n",
            b"*1\r\n$01\r\nx\r\n",
        ] {
            assert_eq!(Decoder::new().look_ahead(bad, L, 10, |_, _| {}), Some(0));
        }
        let few = Limits { max_bulk_len: 2, ..L };
        assert_eq!(Decoder::new().look_ahead(b"*1\r\n$3\r\nabc\r\n", few, 10, |_, _| {}), Some(0));
    }

    #[test]
    fn bad_frames() {
        use ProtocolError::*;
        let cases: &[(&[u8], ProtocolError)] = &[
            (b"*abc\r\n", InvalidMultibulkLength),
            (b"*3000000000\r\n", InvalidMultibulkLength),
            (b"*1\r\n$abc\r\n", InvalidBulkLength),
            (b"*1\r\n$-1\r\n", InvalidBulkLength),
            (b"*1\r\n$600000000\r\n", InvalidBulkLength),
            (b"*1\r\nx3\r\n", ExpectedDollar('x')),
            (b"set \"a b\r\n", UnbalancedQuotes),
            (b"echo \"a\"b\r\n", UnbalancedQuotes),
            (b"echo 'a\r\n", UnbalancedQuotes),
        ];
        for (input, err) in cases {
            assert_eq!(all(input).unwrap_err(), *err, "{:?}", String::from_utf8_lossy(input));
        }
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(all(&long).unwrap_err(), InlineTooBig);
        let mut long = b"*".to_vec();
        long.extend(vec![b'1'; INLINE_MAX + 1]);
        assert_eq!(all(&long).unwrap_err(), MbulkCountTooBig);
    }

    #[test]
    fn unauthenticated_limits() {
        let lim = Limits { max_bulk_len: 1 << 29, authenticated: false };
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(d.decode(&mut buf, lim), Err(ProtocolError::UnauthMultibulkLength));
        let mut d = Decoder::new();
        let mut buf = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        assert_eq!(d.decode(&mut buf, lim), Err(ProtocolError::UnauthBulkLength));
    }

    #[test]
    fn inline_quoting() {
        let r = all(b"set \"a\\x41\\n\" 'it\\'s' \"\"\r\n").unwrap();
        assert_eq!(r[0], vec![Bytes::from("set"), Bytes::from("aA\n"), Bytes::from("it's"), Bytes::new()]);
        assert_eq!(all(b"\r\n\n").unwrap(), vec![Vec::<Bytes>::new(), vec![]]);
        assert_eq!(all(b"*0\r\n*-5\r\n").unwrap(), vec![Vec::<Bytes>::new(), vec![]]);
    }

    #[test]
    fn parse_i64_is_strict() {
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775808"), None);
        for bad in [&b"01"[..], b"+1", b" 1", b"-0", b"", b"-", b"1a"] {
            assert_eq!(parse_i64(bad), None);
        }
    }
}
