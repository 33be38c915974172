//! Prefetching the keys of pipelined requests: a window of requests is parsed ahead, their
//! keys hashed and their table slots touched together, so the look-ups that follow find
//! them in cache (see the event loop's process_input).

use crate::protocol::Limits;

/// Requests a pipeline holds at most are prefetched at once (a window).
const PREFETCH_WINDOW: usize = 32;

/// The keys a prefetch window hashed, by request: (the key's address in the read buffer,
/// its hash), handed to the key look-up of that request so it does not hash again.
pub(super) struct KeyHints {
    /// Per request of the window: where its key lies in the read buffer and its hash;
    /// (0, 0) for a request without a key. Only the first `len` are meaningful.
    keys: [(usize, usize); PREFETCH_WINDOW],
    /// The distinct hashes of the window, in order, for the prefetch.
    hashes: [usize; PREFETCH_WINDOW],
    /// Requests the window covers.
    pub(super) len: usize,
}

impl Default for KeyHints {
    fn default() -> Self {
        KeyHints { keys: [(0, 0); PREFETCH_WINDOW], hashes: [0; PREFETCH_WINDOW], len: 0 }
    }
}

impl KeyHints {
    /// The hint of the next request, `left` requests before the window's end.
    pub(super) fn take(&self, left: usize) -> Option<(usize, usize)> {
        // Outside a window (left 0) there is no hint: the entries are an earlier window's,
        // and the read buffer, cleared since, may hold other keys at their addresses.
        if left == 0 {
            return None;
        }
        let i = self.len.checked_sub(left)?;
        self.keys.get(i).copied().filter(|&(at, _)| at != 0)
    }
}

/// Starts loading the keyspace entries of the requests at the front of `buf` (their second
/// argument, the key of most commands) so their cache misses overlap instead of stalling
/// each command in turn. Returns how many requests the window covers; below 2 there is no
/// pipeline to overlap and the caller stops trying for this read.
pub(super) fn prefetch_window(
    db: &crate::keyspace::Db,
    decoder: &mut crate::protocol::Decoder,
    buf: &[u8],
    limits: Limits,
    hints: &mut KeyHints,
) -> Option<usize> {
    let mut n = 0;
    // Entries below `filled` are written for this window; requests without a key get (0, 0).
    let mut filled = 0;
    let mut last: &[u8] = &[];
    let KeyHints { keys, hashes, len } = hints;
    // Requests naming a member of a collection: (key, key hash, member hash).
    let mut members: [(&[u8], usize, usize); PREFETCH_WINDOW] = [(&[], 0, 0); PREFETCH_WINDOW];
    let mut m = 0;
    // The decoder parses the window's requests once, for the prefetch and for running them.
    let seen = decoder.look_ahead(buf, limits, PREFETCH_WINDOW, |i, args| {
        let Some(cmd) = args.get(0) else { return };
        let Some(key) = key_arg(cmd, &args).and_then(|k| args.get(k)) else { return };
        // A pipeline hammering one key (LPUSH mylist ...) hashes it once.
        if n == 0 || key != last {
            hashes[n] = db.key_hash(key);
            n += 1;
            last = key;
        }
        if let Some(gap) = keys.get_mut(filled..i) {
            gap.fill((0, 0));
        }
        keys[i] = (key.as_ptr() as usize, hashes[n - 1]);
        filled = i + 1;
        if let (Some(member), Some(slot)) = (member_arg(cmd).and_then(|p| args.get(p)), members.get_mut(m)) {
            *slot = (key, hashes[n - 1], db.key_hash(member));
            m += 1;
        }
    });
    let Some(seen) = seen else {
        *len = 0;
        return None;
    };
    keys[filled.min(seen)..seen].fill((0, 0));
    *len = seen;
    if seen >= 2 {
        db.prefetch(&hashes[..n]);
        // Then the members the window's commands name in large collections.
        if m > 0 {
            db.prefetch_members(&members[..m]);
        }
    }
    Some(seen)
}

/// Where a request's first key is, for the prefetch: the second argument of most commands,
/// the fourth of scripts (`EVAL script numkeys key ...`, `FCALL name numkeys key ...`; none
/// when numkeys is 0). A wrong guess only wastes a hint.
fn key_arg(cmd: &[u8], args: &crate::protocol::AheadArgs) -> Option<usize> {
    if cmd.len() >= 4 && matches!(cmd[0] | 0x20, b'e' | b'f') {
        let script = [&b"eval"[..], b"evalsha", b"eval_ro", b"evalsha_ro", b"fcall", b"fcall_ro"];
        if script.iter().any(|c| cmd.eq_ignore_ascii_case(c)) {
            return (args.get(2)? != b"0").then_some(3);
        }
    }
    Some(1)
}

/// Where the member is among the arguments of a command on one member of a hash, set or
/// sorted set (the first one for commands taking several); None for anything else. ZADD's
/// is right after the score when no flag comes first (with flags the hint is merely wasted).
fn member_arg(cmd: &[u8]) -> Option<usize> {
    // Most commands are out at the first byte or the length (GET, SET).
    if cmd.len() < 4 || !matches!(cmd[0] | 0x20, b'h' | b's' | b'z') {
        return None;
    }
    let mut lower = [0u8; 12];
    let name = lower.get_mut(..cmd.len())?;
    for (l, c) in name.iter_mut().zip(cmd) {
        *l = c.to_ascii_lowercase();
    }
    match &*name {
        b"hset" | b"hsetnx" | b"hget" | b"hexists" | b"hincrby" | b"hincrbyfloat" | b"hdel" | b"hstrlen" | b"hmget"
        | b"hmset" | b"sadd" | b"srem" | b"sismember" | b"smismember" | b"zscore" | b"zrank" | b"zrevrank"
        | b"zrem" | b"zmscore" => Some(2),
        b"zadd" | b"zincrby" => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hints live with the connection across read events: only the current window's count.
    #[test]
    fn hints_outside_a_window_are_none() {
        let mut h = KeyHints::default();
        h.keys[0] = (0x1000, 7);
        h.keys[1] = (0x2000, 8);
        h.len = 2;
        assert_eq!(h.take(2), Some((0x1000, 7)));
        assert_eq!(h.take(1), Some((0x2000, 8)));
        assert_eq!(h.take(0), None);
        h.len = 0; // a new read event whose first request was half read
        assert_eq!(h.take(0), None);
    }

    #[test]
    fn script_keys_are_prefetched() {
        let stream = b"*4\r\n$5\r\nFCALL\r\n$1\r\nf\r\n$1\r\n1\r\n$1\r\nk\r\n\
*3\r\n$4\r\nEVAL\r\n$1\r\ns\r\n$1\r\n0\r\n*2\r\n$3\r\nGET\r\n$1\r\ng\r\n";
        let mut d = crate::protocol::Decoder::new();
        let limits = Limits { max_bulk_len: 1 << 20, authenticated: true };
        let mut got = Vec::new();
        d.look_ahead(stream, limits, 10, |_, args| {
            let cmd = args.get(0).unwrap_or_default();
            got.push(key_arg(cmd, &args).and_then(|k| args.get(k)).map(<[u8]>::to_vec));
        });
        assert_eq!(got, vec![Some(b"k".to_vec()), None, Some(b"g".to_vec())]);
    }

    #[test]
    fn member_positions() {
        assert_eq!(member_arg(b"HSET"), Some(2));
        assert_eq!(member_arg(b"hIncrByFloat"), Some(2));
        assert_eq!(member_arg(b"sismember"), Some(2));
        assert_eq!(member_arg(b"ZADD"), Some(3));
        assert_eq!(member_arg(b"zincrby"), Some(3));
        for other in [&b"SET"[..], b"GET", b"HGETALL", b"SMEMBERS", b"ZRANGE", b"", b"h", b"hsetnxxxxxxxxx"] {
            assert_eq!(member_arg(other), None, "{}", String::from_utf8_lossy(other));
        }
    }
}
