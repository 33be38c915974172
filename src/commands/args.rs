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
pub fn owned(b: &Bytes) -> Bytes {
    Bytes::copy_from_slice(b)
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

/// Checks a `random_count` once the arguments are known: with `pairs` (WITHVALUES /
/// WITHSCORES) Redis refuses counts past half the range; draws with repetition are bounded.
pub fn check_random_count(count: i64, pairs: bool) -> Result<(), CmdError> {
    let out_of_range = (pairs && count.unsigned_abs() > (i64::MAX / 2) as u64)
        || (count < 0 && count.unsigned_abs() > MAX_RANDOM_DRAWS);
    if out_of_range { Err(CmdError::msg("value is out of range")) } else { Ok(()) }
}

/// `numkeys key... WHERE [COUNT n]` of LMPOP/BLMPOP/ZMPOP/BZMPOP, starting at `at`; `which`
/// parses the WHERE word (LEFT/RIGHT or MIN/MAX).
pub fn parse_mpop<T>(
    argv: &[Bytes],
    at: usize,
    which: impl Fn(&[u8]) -> Option<T>,
) -> Result<(Vec<Bytes>, T, usize), CmdError> {
    let numkeys = match parse_i64(&argv[at]) {
        Some(n) if n > 0 => n as usize,
        _ => return Err(CmdError::msg("numkeys should be greater than 0")),
    };
    let first = at + 1;
    if numkeys > argv.len() - first || first + numkeys >= argv.len() {
        return Err(CmdError::Syntax);
    }
    let keys = argv[first..first + numkeys].to_vec();
    let w = which(&argv[first + numkeys]).ok_or(CmdError::Syntax)?;
    let mut count = None;
    let mut i = first + numkeys + 1;
    while i < argv.len() {
        // COUNT at most once, as in Redis.
        if count.is_none() && is(&argv[i], "count") && i + 1 < argv.len() {
            count = match parse_i64(&argv[i + 1]) {
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
