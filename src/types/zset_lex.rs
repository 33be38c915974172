//! Lex ranges over a sorted set. Which members a lex range selects depends on the encoding
//! when scores differ (members then are not in lex order): a listpack is walked from its ends
//! as Redis walks it, a skiplist is searched. With equal scores both give the same interval.

use super::zset::ZSetValue;

/// A lex bound: `-`, `+`, `[x` or `(x`.
#[derive(Clone, Debug)]
pub enum LexBound {
    Min,
    Max,
    Incl(Vec<u8>),
    Excl(Vec<u8>),
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

    /// Members strictly before this bound taken as a minimum.
    fn ranks_below_min(&self, z: &ZSetValue) -> usize {
        match self {
            LexBound::Min => 0,
            LexBound::Max => z.len(),
            LexBound::Incl(v) => z.count_before(|_, m| m < &v[..]),
            LexBound::Excl(v) => z.count_before(|_, m| m <= &v[..]),
        }
    }

    /// Members at or before this bound taken as a maximum.
    fn ranks_upto_max(&self, z: &ZSetValue) -> usize {
        match self {
            LexBound::Min => 0,
            LexBound::Max => z.len(),
            LexBound::Incl(v) => z.count_before(|_, m| m <= &v[..]),
            LexBound::Excl(v) => z.count_before(|_, m| m < &v[..]),
        }
    }
}

/// Narrows a rank interval [lo, hi) by LIMIT's offset and count, from the top when `rev`.
pub fn limit_window(lo: usize, hi: usize, rev: bool, offset: usize, count: usize) -> (usize, usize) {
    let offset = offset.min(hi - lo);
    if rev {
        let hi = hi - offset;
        (lo.max(hi.saturating_sub(count)), hi)
    } else {
        let lo = lo + offset;
        (lo, hi.min(lo.saturating_add(count)))
    }
}

impl ZSetValue {
    /// Rank interval [lo, hi) of the members within lex bounds.
    pub fn lex_ranks(&self, min: &LexBound, max: &LexBound) -> (usize, usize) {
        self.lex_window(min, max, false, 0, usize::MAX)
    }

    /// The rank interval a lex range with LIMIT `offset count` selects, counted from the top
    /// when `rev`.
    pub fn lex_window(&self, min: &LexBound, max: &LexBound, rev: bool, offset: usize, count: usize) -> (usize, usize) {
        if self.is_packed() {
            return self.packed_lex_walk(min, max, rev, offset, count);
        }
        let lo = min.ranks_below_min(self);
        let hi = max.ranks_upto_max(self).max(lo);
        limit_window(lo, hi, rev, offset, count)
    }

    /// The members ZREMRANGEBYLEX removes. A listpack as for a range; a skiplist as Redis's
    /// zslDeleteRangeByLex does it: no check of the range against the ends, the search for
    /// the first member at or above `min` (which stops at once when the first member is),
    /// then members taken while at or below `max`.
    pub fn lex_delete_window(&self, min: &LexBound, max: &LexBound) -> (usize, usize) {
        if self.is_packed() {
            return self.packed_lex_walk(min, max, false, 0, usize::MAX);
        }
        let first = self.range(0, 1, false).next().map(|(m, _)| m);
        let lo = if first.is_some_and(|m| min.admits_above(m)) { 0 } else { min.ranks_below_min(self) };
        let taken = self.range(lo, self.len(), false).take_while(|(m, _)| max.admits_below(m)).count();
        (lo, lo + taken)
    }

    /// Redis's listpack walk: the range is checked against the last and first members, then
    /// walked from the head (or tail, reversed) to the first member past the near bound,
    /// `offset` skipped, and members taken up to `count` until one is past the far bound.
    fn packed_lex_walk(
        &self,
        min: &LexBound,
        max: &LexBound,
        rev: bool,
        offset: usize,
        count: usize,
    ) -> (usize, usize) {
        let members: Vec<&[u8]> = self.range(0, self.len(), false).map(|(m, _)| m).collect();
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
            let end = members[start..start + take]
                .iter()
                .position(|m| !max.admits_below(m))
                .map_or(start + take, |k| start + k);
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
}
