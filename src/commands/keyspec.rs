//! Key specifications: a command's keys described as data (Redis 7.0's key specs), the table
//! of them (keyspecs.rs, generated), their COMMAND INFO form, and their evaluation for
//! COMMAND GETKEYSANDFLAGS.
//!
//! A spec says where its keys begin (a fixed index, or after a keyword searched from a
//! position) and how far they go (a range, or a count in the arguments), with flags for how
//! the command uses them (RO/RW/OW/RM and ACCESS/UPDATE/INSERT/DELETE). Specs Redis leaves
//! `unknown` (SORT's STORE, MIGRATE's KEYS) are resolved by the command's own key finder
//! (getkeys.rs), as Redis falls back to its getkeys procs.

use bytes::Bytes;

use super::args::is;
use crate::protocol::Reply;
use crate::util::numfmt::parse_i64;

pub mod flags {
    pub const RO: u16 = 1 << 0;
    pub const RW: u16 = 1 << 1;
    pub const OW: u16 = 1 << 2;
    pub const RM: u16 = 1 << 3;
    pub const ACCESS: u16 = 1 << 4;
    pub const UPDATE: u16 = 1 << 5;
    pub const INSERT: u16 = 1 << 6;
    pub const DELETE: u16 = 1 << 7;
    pub const NOT_KEY: u16 = 1 << 8;
    pub const INCOMPLETE: u16 = 1 << 9;
    pub const VARIABLE_FLAGS: u16 = 1 << 10;
    /// In the order Redis prints them.
    pub const NAMES: &[(u16, &str)] = &[
        (RO, "RO"),
        (RW, "RW"),
        (OW, "OW"),
        (RM, "RM"),
        (ACCESS, "access"),
        (UPDATE, "update"),
        (INSERT, "insert"),
        (DELETE, "delete"),
        (NOT_KEY, "not_key"),
        (INCOMPLETE, "incomplete"),
        (VARIABLE_FLAGS, "variable_flags"),
    ];
}

#[derive(Debug, Clone, Copy)]
pub enum Begin {
    Index(i64),
    /// The keyword, and where the search starts (negative: from the end, backwards).
    Keyword(&'static str, i64),
    Unknown,
}

#[derive(Debug, Clone, Copy)]
pub enum Find {
    /// `lastkey` relative to the first key (negative: from the end); `limit` > 0 takes
    /// 1/limit of what is left.
    Range {
        lastkey: i64,
        step: i64,
        limit: i64,
    },
    /// The key count is at first + keynumidx; keys start at first + firstkey.
    Keynum {
        keynumidx: i64,
        firstkey: i64,
        step: i64,
    },
    Unknown,
}

#[derive(Debug, Clone, Copy)]
pub struct KeySpec {
    pub flags: u16,
    pub begin: Begin,
    pub find: Find,
    pub notes: Option<&'static str>,
}

fn flag_names(f: u16) -> Vec<&'static str> {
    flags::NAMES.iter().filter(|(b, _)| f & b != 0).map(|(_, n)| *n).collect()
}

fn status_set(items: Vec<&str>) -> Reply {
    Reply::Set(items.into_iter().map(|s| Reply::StatusOwned(s.to_string())).collect())
}

/// A spec as COMMAND INFO shows it.
/// The key specs of a command by its full name: Redis 7.0's (generated, in keyspecs.rs), or
/// those of commands 7.0 lacks (Ember's own, and later Redis versions').
pub fn specs_of(full: &str) -> &'static [KeySpec] {
    use flags::*;
    const ONE: Find = Find::Range { lastkey: 0, step: 1, limit: 0 };
    match full {
        "getlease" => &[KeySpec { flags: RO | ACCESS, begin: Begin::Index(1), find: ONE, notes: None }],
        "setlease" => &[KeySpec { flags: OW | UPDATE, begin: Begin::Index(1), find: ONE, notes: None }],
        // Hash-field expiration (Redis 7.4 / 8.0's specs).
        "hexpire" | "hpexpire" | "hexpireat" | "hpexpireat" | "hpersist" | "hsetex" => {
            &[KeySpec { flags: RW | UPDATE, begin: Begin::Index(1), find: ONE, notes: None }]
        }
        "httl" | "hpttl" | "hexpiretime" | "hpexpiretime" => {
            &[KeySpec { flags: RO | ACCESS, begin: Begin::Index(1), find: ONE, notes: None }]
        }
        "hgetex" => &[KeySpec { flags: RW | ACCESS | UPDATE, begin: Begin::Index(1), find: ONE, notes: None }],
        "hgetdel" => &[KeySpec { flags: RW | ACCESS | DELETE, begin: Begin::Index(1), find: ONE, notes: None }],
        _ => super::keyspecs::key_specs(full),
    }
}

pub fn info_reply(ks: &KeySpec) -> Reply {
    let s = Reply::bulk_str;
    let (bs_type, bs_spec) = match ks.begin {
        Begin::Index(pos) => ("index", vec![(s("index"), Reply::Int(pos))]),
        Begin::Keyword(kw, from) => ("keyword", vec![(s("keyword"), s(kw)), (s("startfrom"), Reply::Int(from))]),
        Begin::Unknown => ("unknown", vec![]),
    };
    let (fk_type, fk_spec) = match ks.find {
        Find::Range { lastkey, step, limit } => (
            "range",
            vec![
                (s("lastkey"), Reply::Int(lastkey)),
                (s("keystep"), Reply::Int(step)),
                (s("limit"), Reply::Int(limit)),
            ],
        ),
        Find::Keynum { keynumidx, firstkey, step } => (
            "keynum",
            vec![
                (s("keynumidx"), Reply::Int(keynumidx)),
                (s("firstkey"), Reply::Int(firstkey)),
                (s("keystep"), Reply::Int(step)),
            ],
        ),
        Find::Unknown => ("unknown", vec![]),
    };
    let mut m = Vec::with_capacity(4);
    if let Some(n) = ks.notes {
        m.push((s("notes"), s(n)));
    }
    m.push((s("flags"), status_set(flag_names(ks.flags))));
    m.push((s("begin_search"), Reply::Map(vec![(s("type"), s(bs_type)), (s("spec"), Reply::Map(bs_spec))])));
    m.push((s("find_keys"), Reply::Map(vec![(s("type"), s(fk_type)), (s("spec"), Reply::Map(fk_spec))])));
    Reply::Map(m)
}

/// Evaluates the specs over `argv` (the command name first): each key's position and flags,
/// in spec order. None when a spec cannot be evaluated (unknown, or a bad key count): the
/// caller then uses the command's own key finder, as Redis does.
pub fn evaluate(specs: &[KeySpec], argv: &[&[u8]]) -> Option<Vec<(usize, u16)>> {
    let argc = argv.len() as i64;
    let mut out = Vec::new();
    for ks in specs {
        let first = match ks.begin {
            Begin::Index(pos) => pos,
            Begin::Keyword(kw, from) => {
                let (start, end) = if from > 0 { (from, argc - 1) } else { (argc + from, 0) };
                let mut found = 0;
                let mut i = start;
                loop {
                    if i >= argc || i < 1 {
                        break;
                    }
                    if is(argv[i as usize], kw) {
                        found = i + 1;
                        break;
                    }
                    if i == end {
                        break;
                    }
                    i = if start <= end { i + 1 } else { i - 1 };
                }
                if found == 0 {
                    continue; // the keyword is absent: this spec finds no keys
                }
                found
            }
            Begin::Unknown => return None,
        };
        let (first, last, step) = match ks.find {
            Find::Range { lastkey, step, limit } => {
                let last = if lastkey >= 0 {
                    first + lastkey
                } else if limit == 0 {
                    argc + lastkey
                } else {
                    first + ((argc - first) / limit + lastkey)
                };
                (first, last, step.max(1))
            }
            Find::Keynum { keynumidx, firstkey, step } => {
                let at = first + keynumidx;
                if at >= argc {
                    return None;
                }
                let n = parse_i64(argv[at as usize]).filter(|n| *n >= 0)?;
                let first = first + firstkey;
                (first, first + n.saturating_mul(step.max(1)) - 1, step.max(1))
            }
            Find::Unknown => return None,
        };
        let mut i = first;
        while i <= last {
            if i >= argc || i < 1 {
                // Fewer arguments than the spec needs: the command's own finder decides.
                return None;
            }
            out.push((i as usize, ks.flags));
            i += step;
        }
    }
    Some(out)
}

/// The union of the specs' flags (minus the evaluation hints): what a key found by a
/// command's own finder gets when no spec placed it.
pub fn usage_flags(ks: &KeySpec) -> u16 {
    ks.flags & !(flags::INCOMPLETE | flags::VARIABLE_FLAGS)
}

/// GETKEYSANDFLAGS's reply element for one key.
pub fn key_and_flags(key: &[u8], f: u16) -> Reply {
    Reply::Array(vec![Reply::Bulk(Bytes::copy_from_slice(key)), status_set(flag_names(f))])
}

/// The commands whose one spec says VARIABLE_FLAGS: how they use their key depends on the
/// arguments (Redis's setGetKeys / bitfieldGetKeys).
pub fn variable_flags(full: &str, argv: &[&[u8]]) -> Option<Vec<(usize, u16)>> {
    use flags::*;
    match full {
        "set" => {
            let get = argv.iter().skip(3).any(|a| is(a, "get"));
            Some(vec![(1, if get { RW | ACCESS | UPDATE } else { OW | UPDATE })])
        }
        "bitfield" => {
            let mut readonly = true;
            let mut i = 2;
            while i < argv.len() {
                let left = argv.len() - i - 1;
                let a = &argv[i];
                if is(a, "get") && left >= 2 {
                    i += 3;
                } else if is(a, "overflow") && left >= 1 {
                    i += 2;
                } else {
                    // SET, INCRBY or a syntax error: safer to assume a write.
                    readonly = false;
                    break;
                }
            }
            Some(vec![(1, if readonly { RO | ACCESS } else { RW | ACCESS | UPDATE })])
        }
        _ => None,
    }
}

/// COMMAND INFO's legacy (first, last, step), derived from the specs as Redis 7.0's
/// populateCommandLegacyRangeSpec does: the consecutive plain index ranges only.
pub fn legacy_range(specs: &[KeySpec]) -> (i64, i64, i64) {
    let plain = |ks: &KeySpec| match (ks.begin, ks.find) {
        (Begin::Index(pos), Find::Range { lastkey, step, .. }) => Some((pos, lastkey, step)),
        _ => None,
    };
    if let [only] = specs
        && let Some((pos, lastkey, step)) = plain(only)
    {
        return (pos, if lastkey < 0 { lastkey } else { pos + lastkey }, step);
    }
    let (mut first, mut last, mut prev_last) = (i64::MAX, 0i64, 0i64);
    for ks in specs {
        let Some((pos, lastkey, step)) = plain(ks) else { continue };
        if step != 1 || (prev_last != 0 && prev_last != pos - 1) {
            continue;
        }
        first = first.min(pos);
        let abs = if lastkey >= 0 { lastkey + pos } else { lastkey };
        // Redis compares these as unsigned, so a negative (from the end) wins.
        if (abs as u64) > (last as u64) {
            last = abs;
        }
        prev_last = last;
    }
    if first == i64::MAX { (0, 0, 0) } else { (first, last, 1) }
}
