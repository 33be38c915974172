//! Sorted-set ranges: score, lex and rank bounds, and the rank interval a ZRANGE-style
//! request selects, shared by ZRANGE*, ZCOUNT, ZLEXCOUNT and ZREMRANGEBY*.

use super::CmdError;
use super::args::rank_interval;
use crate::types::ZSetValue;
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

/// A lex bound: `-`, `+`, `[x` or `(x`.
#[derive(Clone)]
pub(super) enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
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

/// Rank interval [lo, hi) of members within lex bounds (meaningful when scores are equal).
pub(super) fn lex_ranks(z: &ZSetValue, min: &LexBound, max: &LexBound) -> (usize, usize) {
    if z.is_packed() {
        return packed_lex_ranks(z, min, max, false, 0, usize::MAX);
    }
    let lo = match min {
        LexBound::Min => 0,
        LexBound::Max => z.len(),
        LexBound::Incl(v) => z.count_before(|_, m| m < &v[..]),
        LexBound::Excl(v) => z.count_before(|_, m| m <= &v[..]),
    };
    let hi = match max {
        LexBound::Min => 0,
        LexBound::Max => z.len(),
        LexBound::Incl(v) => z.count_before(|_, m| m <= &v[..]),
        LexBound::Excl(v) => z.count_before(|_, m| m < &v[..]),
    };
    (lo, hi.max(lo))
}

impl LexBound {
    /// Where the bound sorts among strings, and whether it excludes its own value (Redis's
    /// `-` and `+` count as exclusive).
    fn key(&self) -> (u8, &[u8], bool) {
        match self {
            LexBound::Min => (0, &[], true),
            LexBound::Incl(v) => (1, v, false),
            LexBound::Excl(v) => (1, v, true),
            LexBound::Max => (2, &[], true),
        }
    }

    /// `m` is at or above this bound taken as a minimum.
    fn admits_above(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => true,
            LexBound::Max => false,
            LexBound::Incl(v) => m >= &v[..],
            LexBound::Excl(v) => m > &v[..],
        }
    }

    /// `m` is at or below this bound taken as a maximum.
    fn admits_below(&self, m: &[u8]) -> bool {
        match self {
            LexBound::Min => false,
            LexBound::Max => true,
            LexBound::Incl(v) => m <= &v[..],
            LexBound::Excl(v) => m < &v[..],
        }
    }
}

/// The lex range a listpack selects, as Redis finds it: it checks the range against the last
/// and first members, then walks from the head (or tail, reversed) to the first member past
/// the near bound, skips `offset`, and takes members up to `count` until one is past the far
/// bound. With equal scores this is the searched interval; with mixed scores (members out of
/// lex order) Redis's walk is what its replies show.
fn packed_lex_ranks(
    z: &ZSetValue,
    min: &LexBound,
    max: &LexBound,
    rev: bool,
    offset: usize,
    count: usize,
) -> (usize, usize) {
    let members: Vec<&[u8]> = z.range(0, z.len(), false).map(|(m, _)| m).collect();
    let (Some(first), Some(last)) = (members.first(), members.last()) else { return (0, 0) };
    let ((lo_at, lo_v, lo_ex), (hi_at, hi_v, hi_ex)) = (min.key(), max.key());
    let order = (lo_at, lo_v).cmp(&(hi_at, hi_v));
    if order.is_gt() || (order.is_eq() && (lo_ex || hi_ex)) {
        return (0, 0);
    }
    if !min.admits_above(last) || !max.admits_below(first) {
        return (0, 0);
    }
    let n = members.len();
    if !rev {
        let Some(f) = members.iter().position(|m| min.admits_above(m)) else { return (0, 0) };
        let start = f.saturating_add(offset);
        if !max.admits_below(members[f]) || start >= n {
            return (0, 0);
        }
        let take = count.min(n - start);
        let end =
            members[start..start + take].iter().position(|m| !max.admits_below(m)).map_or(start + take, |k| start + k);
        (start, end)
    } else {
        let Some(l) = members.iter().rposition(|m| max.admits_below(m)) else { return (0, 0) };
        if !min.admits_above(members[l]) || offset > l {
            return (0, 0);
        }
        let top = l - offset;
        let take = count.min(top + 1);
        let lo = members[top + 1 - take..=top]
            .iter()
            .rposition(|m| !min.admits_above(m))
            .map_or(top + 1 - take, |k| top + 1 - take + k + 1);
        (lo, top + 1)
    }
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

/// The rank interval [lo, hi) a ZRANGE-style request selects (empty: lo == hi).
pub(super) fn select_ranks(z: &ZSetValue, bounds: &Bounds, spec: &RangeSpec) -> (usize, usize) {
    let len = z.len();
    let (lo, hi) = match bounds {
        Bounds::Rank(s, e) => match rank_interval(*s, *e, len) {
            None => return (0, 0),
            Some((s, e)) if spec.rev => (len - e, len - s),
            Some(r) => r,
        },
        Bounds::Score(min, max) => score_ranks(z, *min, *max),
        Bounds::Lex(min, max) if z.is_packed() => {
            let (offset, count) = spec.limit.unwrap_or((0, -1));
            if offset < 0 {
                return (0, 0);
            }
            let count = usize::try_from(count).unwrap_or(usize::MAX);
            return packed_lex_ranks(z, min, max, spec.rev, offset as usize, count);
        }
        Bounds::Lex(min, max) => lex_ranks(z, min, max),
    };
    // LIMIT narrows the rank interval before anything is read, so `LIMIT 0 10` over a million
    // matching members touches ten.
    let (mut lo, mut hi) = (lo, hi);
    if let Some((offset, count)) = spec.limit {
        if offset < 0 {
            return (0, 0);
        }
        let offset = (offset as usize).min(hi - lo);
        let count = if count >= 0 { count as usize } else { usize::MAX };
        if spec.rev {
            hi -= offset;
            lo = lo.max(hi.saturating_sub(count));
        } else {
            lo += offset;
            hi = hi.min(lo.saturating_add(count));
        }
    }
    (lo, hi)
}
