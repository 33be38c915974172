//! Argument helpers shared by every family: strict integer and float parsing with Redis's error
//! texts, and case-insensitive keyword matching.

use bytes::Bytes;

use super::error::CmdError;
use crate::util::numfmt::{parse_f64, parse_i64};

/// Case-insensitive comparison with an ASCII keyword.
pub fn is(arg: &[u8], kw: &str) -> bool {
    arg.eq_ignore_ascii_case(kw.as_bytes())
}

pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or(CmdError::NotInteger)
}

/// A non-negative integer with a custom error (Redis words these per command).
pub fn uint_or(arg: &[u8], err: CmdError) -> Result<u64, CmdError> {
    match parse_i64(arg) {
        Some(n) if n >= 0 => Ok(n as u64),
        _ => Err(err),
    }
}

pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_f64(arg).ok_or(CmdError::NotFloat)
}

pub fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Copies an argument into an owned buffer so stored data never pins a client's read buffer.
pub fn owned(b: &[u8]) -> Bytes {
    Bytes::copy_from_slice(b)
}

/// Redis's addReplySubcommandSyntaxError: the subcommand as the client typed it, and the
/// container command whose HELP lists them.
pub fn subcommand_syntax(argv: &[&[u8]], container: &str) -> CmdError {
    let sub: String = argv.get(1).map(|s| lossy(s)).unwrap_or_default().chars().take(128).collect();
    CmdError::msg(format!("unknown subcommand or wrong number of arguments for '{sub}'. Try {container} HELP."))
}

/// Redis's getRangeLongFromObjectOrReply without a message: an integer within [min, max].
pub fn int_in_range(arg: &[u8], min: i64, max: i64) -> Result<i64, CmdError> {
    let n = parse_i64(arg).ok_or(CmdError::NotInteger)?;
    if n < min || n > max {
        return Err(CmdError::msg(format!("value is out of range, value must between {min} and {max}")));
    }
    Ok(n)
}

/// A database index as SELECT, MOVE and COPY read it (Redis's getIntFromObjectOrReply).
pub fn int32(arg: &[u8]) -> Result<i64, CmdError> {
    int_in_range(arg, i32::MIN as i64, i32::MAX as i64)
}

/// The COUNT of HRANDFIELD / SRANDMEMBER / ZRANDMEMBER: any i64 but LONG_MIN (whose negation,
/// "that many with repetition", would overflow), with Redis's wording for it.
pub fn random_count(arg: &[u8]) -> Result<i64, CmdError> {
    match parse_i64(arg) {
        None => Err(CmdError::NotInteger),
        Some(i64::MIN) => {
            Err(CmdError::msg("value is out of range, value must between -9223372036854775807 and 9223372036854775807"))
        }
        Some(n) => Ok(n),
    }
}

/// Ember's bound on a negative (with repetition) `*RANDMEMBER`/HRANDFIELD count: Redis would
/// build a reply of that many elements, so one command could take all memory.
pub const MAX_RANDOM_DRAWS: u64 = 1 << 24;

/// Checks a `random_count` once the arguments are known and returns how many draws a
/// negative count makes: with `pairs` (WITHVALUES / WITHSCORES) Redis refuses counts past
/// half the range. `room`: the bytes the client's replies may still take before its hard
/// output limit closes it (None: no limit). Redis stops building such a reply once the client
/// passes that limit (and closes it); every drawn element takes at least 4 bytes, so draws
/// past `room / 4` only make the same outcome costlier. Beyond that, draws are bounded.
pub fn check_random_count(count: i64, pairs: bool, room: Option<u64>) -> Result<u64, CmdError> {
    let out_of_range = || CmdError::msg("value is out of range");
    if pairs && count.unsigned_abs() > (i64::MAX / 2) as u64 {
        return Err(out_of_range());
    }
    if count >= 0 {
        return Ok(count as u64);
    }
    let draws = room.map_or(count.unsigned_abs(), |r| count.unsigned_abs().min(r / 4 + 1));
    if draws > MAX_RANDOM_DRAWS {
        return Err(out_of_range());
    }
    Ok(draws)
}

/// `numkeys key... WHERE [COUNT n]` of LMPOP/BLMPOP/ZMPOP/BZMPOP, starting at `at`; `which`
/// parses the WHERE word (LEFT/RIGHT or MIN/MAX).
pub fn parse_mpop<T>(
    argv: &[&[u8]],
    at: usize,
    which: impl Fn(&[u8]) -> Option<T>,
) -> Result<(Vec<Bytes>, T, usize), CmdError> {
    let numkeys = match parse_i64(argv[at]) {
        Some(n) if n > 0 => n as usize,
        _ => return Err(CmdError::msg("numkeys should be greater than 0")),
    };
    let first = at + 1;
    if numkeys > argv.len() - first || first + numkeys >= argv.len() {
        return Err(CmdError::Syntax);
    }
    let keys = crate::protocol::owned(&argv[first..first + numkeys]);
    let w = which(argv[first + numkeys]).ok_or(CmdError::Syntax)?;
    let mut count = None;
    let mut i = first + numkeys + 1;
    while i < argv.len() {
        // COUNT at most once, as in Redis.
        if count.is_none() && is(argv[i], "count") && i + 1 < argv.len() {
            count = match parse_i64(argv[i + 1]) {
                Some(n) if n > 0 => Some(n as usize),
                _ => return Err(CmdError::msg("count should be greater than 0")),
            };
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok((keys, w, count.unwrap_or(1)))
}

/// The update conditions of ZADD, GEOADD and the EXPIRE family: NX, XX, GT, LT, and ZADD's
/// CH and INCR. Each command checks which combinations it refuses (their messages differ).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Conditions {
    pub nx: bool,
    pub xx: bool,
    pub gt: bool,
    pub lt: bool,
    pub ch: bool,
    pub incr: bool,
}

impl Conditions {
    /// Reads the condition words among `allowed` (lower-case) at the front of `args`, in any
    /// order and case; returns them and how many words were read (it stops at the first
    /// other word).
    pub fn leading(args: &[&[u8]], allowed: &[&str]) -> (Conditions, usize) {
        let mut c = Conditions::default();
        let mut n = 0;
        for a in args {
            let Some(word) = allowed.iter().find(|w| is(a, w)) else { break };
            match *word {
                "nx" => c.nx = true,
                "xx" => c.xx = true,
                "gt" => c.gt = true,
                "lt" => c.lt = true,
                "ch" => c.ch = true,
                _ => c.incr = true,
            }
            n += 1;
        }
        (c, n)
    }
}

/// Parses a SCAN cursor: an unsigned 64-bit decimal.
/// Parses a SCAN cursor like Redis's `strtoul`: an optional sign (a negative value wraps),
/// decimal digits, nothing else; overflow is an error.
pub fn parse_cursor(b: &[u8]) -> Result<u64, CmdError> {
    let err = || CmdError::msg("invalid cursor");
    let (neg, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        Some(b'+') => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || !digits.iter().all(|c| c.is_ascii_digit()) {
        return Err(err());
    }
    let v = std::str::from_utf8(digits).ok().and_then(|s| s.parse::<u64>().ok()).ok_or_else(err)?;
    Ok(if neg { v.wrapping_neg() } else { v })
}

/// MATCH / COUNT / TYPE options shared by the SCAN family.
pub struct ScanOpts {
    pub pattern: Option<Bytes>,
    pub count: usize,
    pub type_name: Option<String>,
}

pub fn parse_scan_opts(argv: &[&[u8]], start: usize, allow_type: bool) -> Result<ScanOpts, CmdError> {
    let mut o = ScanOpts { pattern: None, count: 10, type_name: None };
    let mut i = start;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        if is(argv[i], "count") && more {
            let n = int(argv[i + 1])?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            o.count = n as usize;
        } else if is(argv[i], "match") && more {
            let p = Bytes::copy_from_slice(argv[i + 1]);
            o.pattern = if &p[..] == b"*" { None } else { Some(p) };
        } else if is(argv[i], "type") && more && allow_type {
            o.type_name = Some(lossy(argv[i + 1]).to_lowercase());
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    Ok(o)
}

/// Normalises a start/end rank pair like Redis (LRANGE, LTRIM, ZRANGE): negative indexes
/// count from the end, clamped; the half-open interval, or None when empty.
pub fn rank_interval(start: i64, end: i64, len: usize) -> Option<(usize, usize)> {
    let len = len as i64;
    let mut s = if start < 0 { len + start } else { start };
    let mut e = if end < 0 { len + end } else { end };
    if s < 0 {
        s = 0;
    }
    if s > e || s >= len {
        return None;
    }
    if e >= len {
        e = len - 1;
    }
    Some((s as usize, e as usize + 1))
}

#[cfg(test)]
mod condition_tests {
    use super::*;

    #[test]
    fn conditions_are_read_until_the_first_other_word() {
        let args: Vec<&[u8]> = ["Nx", "ch", "GT", "1", "nx"].iter().map(|s| s.as_bytes()).collect();
        let (c, n) = Conditions::leading(&args, &["nx", "xx", "gt", "lt", "ch", "incr"]);
        assert_eq!(n, 3);
        assert!(c.nx && c.ch && c.gt && !c.xx && !c.lt && !c.incr);
        // A word the command does not take ends the conditions.
        let (c, n) = Conditions::leading(&args, &["nx", "xx"]);
        assert_eq!((c.nx, c.ch, n), (true, false, 1));
    }
}
