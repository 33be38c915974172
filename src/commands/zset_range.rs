//! Sorted-set ranges: score, lex and rank bounds, and the rank interval a ZRANGE-style
//! request selects, shared by ZRANGE*, ZCOUNT, ZLEXCOUNT and ZREMRANGEBY*.

use super::CmdError;
use super::args::rank_interval;
use crate::types::ZSetValue;
use crate::types::zset_lex::{LexBound, limit_window};
use crate::util::numfmt::{parse_i64, parse_range_f64};

/// A score bound: value and exclusivity.
#[derive(Clone, Copy)]
pub(super) struct ScoreBound {
    pub(super) v: f64,
    pub(super) excl: bool,
}

pub(super) fn parse_score_bound(a: &[u8]) -> Result<ScoreBound, CmdError> {
    let err = || CmdError::msg("min or max is not a float");
    let (excl, body) = match a.first() {
        Some(b'(') => (true, &a[1..]),
        _ => (false, a),
    };
    let v = parse_range_f64(body).ok_or_else(err)?;
    Ok(ScoreBound { v, excl })
}

pub(super) fn parse_lex_bound(a: &[u8]) -> Result<LexBound, CmdError> {
    match a.first() {
        Some(b'-') if a.len() == 1 => Ok(LexBound::Min),
        Some(b'+') if a.len() == 1 => Ok(LexBound::Max),
        Some(b'[') => Ok(LexBound::Incl(a[1..].to_vec())),
        Some(b'(') => Ok(LexBound::Excl(a[1..].to_vec())),
        _ => Err(CmdError::msg("min or max not valid string range item")),
    }
}

/// Rank interval [lo, hi) of members within score bounds.
pub(super) fn score_ranks(z: &ZSetValue, min: ScoreBound, max: ScoreBound) -> (usize, usize) {
    let lo = z.count_before(|s, _| if min.excl { s <= min.v } else { s < min.v });
    let hi = z.count_before(|s, _| if max.excl { s < max.v } else { s <= max.v });
    (lo, hi.max(lo))
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum RangeBy {
    Rank,
    Score,
    Lex,
}

pub(super) struct RangeSpec {
    pub(super) by: RangeBy,
    pub(super) rev: bool,
    pub(super) limit: Option<(i64, i64)>,
    pub(super) withscores: bool,
}

/// A ZRANGE-style request's bounds, parsed before the key is looked up (as Redis does, so a
/// bad bound is reported even for a missing or wrong-type key).
pub(super) enum Bounds {
    Rank(i64, i64),
    Score(ScoreBound, ScoreBound),
    Lex(LexBound, LexBound),
}

pub(super) fn parse_bounds(a1: &[u8], a2: &[u8], spec: &RangeSpec) -> Result<Bounds, CmdError> {
    // Reversed score and lex ranges are given as max, min.
    let (min, max) = if spec.rev { (a2, a1) } else { (a1, a2) };
    Ok(match spec.by {
        RangeBy::Rank => {
            Bounds::Rank(parse_i64(a1).ok_or(CmdError::NotInteger)?, parse_i64(a2).ok_or(CmdError::NotInteger)?)
        }
        RangeBy::Score => Bounds::Score(parse_score_bound(min)?, parse_score_bound(max)?),
        RangeBy::Lex => Bounds::Lex(parse_lex_bound(min)?, parse_lex_bound(max)?),
    })
}

/// The members selected by a ZRANGE-style request, in reply order.
pub(super) fn select_range(z: &ZSetValue, bounds: &Bounds, spec: &RangeSpec) -> Vec<(Vec<u8>, f64)> {
    let (lo, hi) = select_ranks(z, bounds, spec);
    z.range(lo, hi, spec.rev).map(|(m, s)| (m.to_vec(), s)).collect()
}

/// The rank interval [lo, hi) a ZRANGE-style request selects (empty: lo == hi). LIMIT
/// narrows the interval before anything is read, so `LIMIT 0 10` over a million matching
/// members touches ten.
pub(super) fn select_ranks(z: &ZSetValue, bounds: &Bounds, spec: &RangeSpec) -> (usize, usize) {
    let (offset, count) = match spec.limit {
        None => (0, usize::MAX),
        Some((offset, _)) if offset < 0 => return (0, 0),
        Some((offset, count)) => (offset as usize, usize::try_from(count).unwrap_or(usize::MAX)),
    };
    let len = z.len();
    let (lo, hi) = match bounds {
        Bounds::Rank(s, e) => match rank_interval(*s, *e, len) {
            None => return (0, 0),
            Some((s, e)) if spec.rev => (len - e, len - s),
            Some(r) => r,
        },
        Bounds::Score(min, max) => score_ranks(z, *min, *max),
        // Lex ranges walk a listpack as Redis does, so the encoding applies LIMIT itself.
        Bounds::Lex(min, max) => return z.lex_window(min, max, spec.rev, offset, count),
    };
    limit_window(lo, hi, spec.rev, offset, count)
}
