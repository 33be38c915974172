//! SORT and SORT_RO over lists, sets and sorted sets, with BY
//! (including `nosort` and `key->field` hash patterns), LIMIT, GET (`#` and patterns), ASC/DESC,
//! ALPHA and STORE — following the order of Redis 7.0's `sortCommand` step by step, since its
//! tie-breaking and LIMIT clamping are observable.

use std::cmp::Ordering;

use crate::keyspace::notify as ev;
use bytes::Bytes;

use super::args::is;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1};
use crate::keyspace::Db;
use crate::protocol::Reply;
use crate::types::{End, Fill, ListValue, Value};
use crate::util::numfmt::parse_i64;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("sort", -2, sort).flags(WRITE | DENYOOM | MOVABLEKEYS).keys(KEY1).doc("generic", "Sort the elements in a list, set or sorted set", "1.0.0", "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N)."),
    CommandSpec::new("sort_ro", -2, sort_ro).flags(READONLY | MOVABLEKEYS).keys(KEY1).doc("generic", "Sort the elements in a list, set or sorted set. Read-only variant of SORT.", "7.0.0", "O(N+M*log(M)) where N is the number of elements in the list or set to sort, and M the number of returned elements. When the elements are not sorted, complexity is O(N)."),
];

/// Resolves a BY/GET pattern for one element: `#` is the element itself; otherwise the first
/// `*` is replaced by the element and the key read as a string, or as a hash field after `->`.
fn lookup(db: &Db, pattern: &[u8], elem: &[u8]) -> Option<Vec<u8>> {
    if pattern == b"#" {
        return Some(elem.to_vec());
    }
    let star = pattern.iter().position(|&c| c == b'*')?;
    let arrow = pattern[star + 1..].windows(2).position(|w| w == b"->").map(|p| p + star + 1);
    let (key_pat, field) = match arrow {
        Some(a) if a + 2 < pattern.len() => (&pattern[..a], Some(&pattern[a + 2..])),
        _ => (pattern, None),
    };
    let mut key = key_pat[..star].to_vec();
    key.extend_from_slice(elem);
    key.extend_from_slice(&key_pat[star + 1..]);
    match (db.view(&key)?, field) {
        (Value::Str(s), None) => Some(s.to_bytes().to_vec()),
        // A side-effect-free read: a field past its deadline is not there (nothing is purged).
        (Value::Hash(h), Some(f)) => {
            h.get_with_ttl(f).filter(|&(_, at)| at == 0 || at >= db.now()).map(|(v, _)| v.to_vec())
        }
        _ => None,
    }
}

/// strtod as SORT uses it: stops at the string's end (or a NUL), no ERANGE, NaN refused.
fn score(b: &[u8]) -> Option<f64> {
    let r = crate::util::numfmt::strtod(b);
    (r.reached_nul(b) && !r.range_error && !r.value.is_nan()).then_some(r.value)
}

struct Item {
    elem: Vec<u8>,
    score: f64,
    cmp: Option<Vec<u8>>,
}

fn sort_generic(ctx: &mut Ctx, argv: &[&[u8]], readonly: bool) -> CmdResult {
    let (mut desc, mut alpha, mut dontsort) = (false, false, false);
    let (mut limit_start, mut limit_count) = (0i64, -1i64);
    let mut store: Option<Bytes> = None;
    let mut by: Option<Bytes> = None;
    let mut gets: Vec<Bytes> = Vec::new();
    let mut j = 2;
    while j < argv.len() {
        let left = argv.len() - j - 1;
        let a = &argv[j];
        if is(a, "asc") {
            desc = false;
        } else if is(a, "desc") {
            desc = true;
        } else if is(a, "alpha") {
            alpha = true;
        } else if is(a, "limit") && left >= 2 {
            limit_start = parse_i64(argv[j + 1]).ok_or(CmdError::NotInteger)?;
            limit_count = parse_i64(argv[j + 2]).ok_or(CmdError::NotInteger)?;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            store = Some(Bytes::copy_from_slice(argv[j + 1]));
            j += 1;
        } else if is(a, "by") && left >= 1 {
            by = Some(Bytes::copy_from_slice(argv[j + 1]));
            dontsort = !argv[j + 1].contains(&b'*');
            // A pattern reads keys of any slot.
            if !dontsort && ctx.srv.cluster.is_some() {
                return Err(CmdError::msg("BY option of SORT denied in Cluster mode."));
            }
            // A pattern reads keys no argument names: the user must be able to read any key.
            if !dontsort && !super::acl::full_key_read(ctx.srv, ctx.sess, argv) {
                return Err(CmdError::msg("BY option of SORT denied due to insufficient ACL permissions."));
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            if ctx.srv.cluster.is_some() {
                return Err(CmdError::msg("GET option of SORT denied in Cluster mode."));
            }
            if !super::acl::full_key_read(ctx.srv, ctx.sess, argv) {
                return Err(CmdError::msg("GET option of SORT denied due to insufficient ACL permissions."));
            }
            gets.push(Bytes::copy_from_slice(argv[j + 1]));
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
        j += 1;
    }
    // The key is looked up once the options parsed, as in Redis (a syntax error wins). A
    // sorted set is turned into its skiplist form first, as Redis does (OBJECT ENCODING
    // shows it).
    if let Some(Value::ZSet(z)) = ctx.db().get_mut_quiet(argv[1]) {
        z.to_skiplist();
    }
    let db = ctx.db();
    let elements: Vec<Vec<u8>>;
    let is_set;
    match db.get(argv[1]) {
        None => {
            elements = Vec::new();
            is_set = false;
        }
        Some(Value::List(l)) => {
            elements = l.iter().map(|e| e.to_vec()).collect();
            is_set = false;
        }
        Some(Value::Set(s)) => {
            elements = s.iter().map(|e| e.into_owned()).collect();
            is_set = true;
        }
        Some(Value::ZSet(z)) => {
            elements = z.range(0, z.len(), false).map(|(m, _)| m.to_vec()).collect();
            is_set = false;
        }
        Some(_) => return Err(CmdError::WrongType),
    }
    // An unordered set with no sort order is sorted anyway when stored or read by a script,
    // so the result is deterministic.
    if dontsort && is_set && (store.is_some() || ctx.sess.in_script) {
        dontsort = false;
        alpha = true;
        by = None;
    }
    let len = elements.len() as i64;
    let mut start = limit_start.max(0);
    let mut end = if limit_count < 0 { len - 1 } else { start.saturating_add(limit_count) - 1 };
    if start >= len {
        start = len - 1;
        end = len - 2;
    }
    if end >= len {
        end = len - 1;
    }
    let db = ctx.db();
    let mut items: Vec<Item>;
    if dontsort && !is_set {
        // A list keeps its order (reversed for DESC); only the LIMIT range is loaded.
        items = Vec::new();
        if end >= start {
            let ordered: Box<dyn Iterator<Item = &Vec<u8>>> =
                if desc { Box::new(elements.iter().rev()) } else { Box::new(elements.iter()) };
            for e in ordered.skip(start as usize).take((end - start + 1) as usize) {
                items.push(Item { elem: e.clone(), score: 0.0, cmp: None });
            }
            end -= start;
            start = 0;
        }
    } else {
        items = elements.into_iter().map(|elem| Item { elem, score: 0.0, cmp: None }).collect();
    }
    if !dontsort {
        let mut conversion_error = false;
        for it in items.iter_mut() {
            let byval = match &by {
                Some(p) => match lookup(db, p, &it.elem) {
                    Some(v) => v,
                    None => continue,
                },
                None => it.elem.clone(),
            };
            if alpha {
                if by.is_some() {
                    it.cmp = Some(byval);
                }
            } else {
                match score(&byval) {
                    Some(s) => it.score = s,
                    None => conversion_error = true,
                }
            }
        }
        if conversion_error {
            return Err(CmdError::msg("One or more scores can't be converted into double"));
        }
        let bypattern = by.is_some();
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score.partial_cmp(&b.score).unwrap_or(Ordering::Equal).then_with(|| a.elem.cmp(&b.elem))
            } else if bypattern {
                match (&a.cmp, &b.cmp) {
                    (None, None) => Ordering::Equal,
                    (None, Some(_)) => Ordering::Less,
                    (Some(_), None) => Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(y),
                }
            } else {
                a.elem.cmp(&b.elem)
            };
            if desc { c.reverse() } else { c }
        });
    }
    let range: Vec<&Item> =
        if end >= start && start >= 0 { items[start as usize..=end as usize].iter().collect() } else { Vec::new() };
    match store {
        None => {
            let mut out = Vec::new();
            for it in range {
                if gets.is_empty() {
                    out.push(Reply::Bulk(Bytes::from(it.elem.clone())));
                }
                for g in &gets {
                    out.push(lookup(db, g, &it.elem).map_or(Reply::Null, |v| Reply::Bulk(Bytes::from(v))));
                }
            }
            Ok(Reply::Array(out))
        }
        Some(dst) => {
            let fill = Fill(ctx.srv.hot.list_max_listpack);
            let db = ctx.db();
            let mut list = ListValue::new();
            for it in range {
                if gets.is_empty() {
                    list.push(End::Right, &it.elem, fill);
                }
                for g in &gets {
                    list.push(End::Right, &lookup(db, g, &it.elem).unwrap_or_default(), fill);
                }
            }
            let n = list.len();
            if n > 0 {
                db.set(&dst, Value::List(Box::new(list)), false);
                ctx.notify(ev::LIST, "sortstore", &dst);
            } else if db.remove(&dst).is_some() {
                ctx.notify(ev::GENERIC, "del", &dst);
            }
            Ok(Reply::Int(n as i64))
        }
    }
}

fn sort(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, argv, false)
}

fn sort_ro(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    sort_generic(ctx, argv, true)
}
