//! Where the keys are in commands whose key positions depend on their arguments (the
//! MOVABLEKEYS commands), as Redis 7.0's key specs find them: a key count before the keys,
//! a keyword after which keys follow, or options naming a destination key. COMMAND GETKEYS
//! and client-side caching read keys through here.

use super::args::is;
use crate::util::numfmt::parse_i64;

/// The key positions of `name` (a MOVABLEKEYS command) in `argv`, or None when the
/// arguments do not say where the keys are (a bad key count, a missing keyword).
pub fn movable(name: &str, argv: &[&[u8]]) -> Option<Vec<usize>> {
    match name {
        // numkeys key [key ...] ...
        "zunion" | "zinter" | "zdiff" | "zintercard" | "sintercard" | "lmpop" | "zmpop" => counted(argv, 1, None),
        // timeout numkeys key [key ...] ...
        "blmpop" | "bzmpop" => counted(argv, 2, None),
        // destination numkeys key [key ...] ...
        "zunionstore" | "zinterstore" | "zdiffstore" => counted(argv, 2, Some(1)),
        // script numkeys key [key ...] arg ...
        "eval" | "evalsha" | "eval_ro" | "evalsha_ro" | "fcall" | "fcall_ro" => counted_optional(argv, 2),
        "sort" => Some(sort_keys(argv)),
        "sort_ro" => Some(vec![1]),
        "georadius" | "georadiusbymember" => Some(georadius_keys(argv)),
        "xread" | "xreadgroup" => streams_keys(argv),
        "migrate" => migrate_keys(argv),
        _ => None,
    }
}

/// Keys counted by the argument at `at`, following it; `dest` is a key before the count.
fn counted(argv: &[&[u8]], at: usize, dest: Option<usize>) -> Option<Vec<usize>> {
    let n = parse_i64(argv.get(at)?)?;
    if n <= 0 || at as i64 + n >= argv.len() as i64 {
        return None;
    }
    Some(dest.into_iter().chain(at + 1..=at + n as usize).collect())
}

/// Like [`counted`], but no keys at all is a valid answer (NO_MANDATORY_KEYS).
fn counted_optional(argv: &[&[u8]], at: usize) -> Option<Vec<usize>> {
    match parse_i64(argv.get(at)?)? {
        0 => Some(Vec::new()),
        _ => counted(argv, at, None),
    }
}

/// SORT's key, and the last STORE destination (Redis's sortGetKeys: options with arguments
/// are skipped whole).
fn sort_keys(argv: &[&[u8]]) -> Vec<usize> {
    let mut store = None;
    let mut i = 2;
    while i < argv.len() {
        let a = &argv[i];
        let skip = if is(a, "limit") {
            2
        } else if is(a, "get") || is(a, "by") {
            1
        } else if is(a, "store") && i + 1 < argv.len() {
            store = Some(i + 1);
            1
        } else {
            0
        };
        i += 1 + skip;
    }
    std::iter::once(1).chain(store).collect()
}

/// GEORADIUS[BYMEMBER]'s key and the keys after STORE and STOREDIST (each a key spec of its
/// own in Redis 7.0, so both count when both are given).
fn georadius_keys(argv: &[&[u8]]) -> Vec<usize> {
    let find = |word: &str| (6..argv.len()).rev().find(|&i| is(argv[i - 1], word)).filter(|&i| i > 5);
    let mut keys = vec![1];
    keys.extend(find("store"));
    keys.extend(find("storedist"));
    keys
}

/// XREAD / XREADGROUP: after STREAMS come the keys, then as many IDs.
fn streams_keys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    let at = (1..argv.len()).find(|&i| is(argv[i], "streams"))?;
    let n = (argv.len() - at - 1) / 2;
    if n == 0 {
        return None;
    }
    Some((at + 1..=at + n).collect())
}

/// MIGRATE: the key argument, or the keys after KEYS (Redis's migrateGetKeys).
fn migrate_keys(argv: &[&[u8]]) -> Option<Vec<usize>> {
    let mut i = 6;
    while i < argv.len() {
        if is(argv[i], "auth2") {
            i += 2;
        } else if is(argv[i], "auth") {
            i += 1;
        } else if is(argv[i], "keys") {
            if !argv.get(3)?.is_empty() {
                return Some(Vec::new());
            }
            return Some((i + 1..argv.len()).collect());
        }
        i += 1;
    }
    Some(vec![3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(line: &str) -> Option<Vec<String>> {
        let argv: Vec<&[u8]> = line.split(' ').map(str::as_bytes).collect();
        let name = line.split(' ').next().unwrap_or_default().to_ascii_lowercase();
        movable(&name, &argv).map(|p| p.into_iter().map(|i| String::from_utf8_lossy(argv[i]).into()).collect())
    }

    /// Each line as redis-server 7.0.15 answered COMMAND GETKEYS for it.
    #[test]
    fn as_redis_finds_them() {
        let ok = |line: &str, want: &[&str]| {
            assert_eq!(keys(line), Some(want.iter().map(|s| s.to_string()).collect()), "{line}")
        };
        ok("ZUNION 2 a b WITHSCORES", &["a", "b"]);
        ok("ZUNIONSTORE d 2 a b", &["d", "a", "b"]);
        ok("ZINTERSTORE d 2 a b WEIGHTS 1 2", &["d", "a", "b"]);
        ok("ZINTERCARD 1 a", &["a"]);
        ok("BZMPOP 0 1 a b MIN", &["a"]);
        ok("BLMPOP 0 2 a b LEFT", &["a", "b"]);
        ok("SORT k STORE", &["k"]);
        ok("SORT k LIMIT 0 1 STORE d GET x BY y", &["k", "d"]);
        ok("SORT k STORE d STORE e", &["k", "e"]);
        ok("SORT_RO k BY x", &["k"]);
        ok("XREAD COUNT 1 STREAMS a b c", &["a"]);
        ok("XREAD BLOCK 0 STREAMS a 0", &["a"]);
        ok("XREADGROUP GROUP g c STREAMS a b > >", &["a", "b"]);
        ok("GEORADIUS k 0 0 1 m STORE d STOREDIST e", &["k", "d", "e"]);
        ok("GEORADIUSBYMEMBER k m 1 m STORE d", &["k", "d"]);
        for bad in ["ZUNION 5 a b", "ZUNION 0 a", "ZUNION x a", "ZUNION -1 a", "ZUNIONSTORE d 0 a"] {
            assert_eq!(keys(bad), None, "{bad}");
        }
    }
}
