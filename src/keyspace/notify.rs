//! Keyspace notification classes (`notify-keyspace-events`) and the events a database raises.
//!
//! Handlers raise an event after each effective change (`Ctx::notify`); the database itself
//! raises the ones no handler sees: `new` when a key is created, `expired` on lazy or active
//! expiry, `evicted`, and `keymiss` on a read miss. Events wait in the database's buffer (only
//! while some class is enabled, so the cost is one mask test otherwise) and the server publishes
//! them in order on `__keyspace@<db>__:<key>` and `__keyevent@<db>__:<event>`.

use bytes::Bytes;

pub const KEYSPACE: u32 = 1 << 0; // K
pub const KEYEVENT: u32 = 1 << 1; // E
pub const GENERIC: u32 = 1 << 2; // g
pub const STRING: u32 = 1 << 3; // $
pub const LIST: u32 = 1 << 4; // l
pub const SET: u32 = 1 << 5; // s
pub const HASH: u32 = 1 << 6; // h
pub const ZSET: u32 = 1 << 7; // z
pub const EXPIRED: u32 = 1 << 8; // x
pub const EVICTED: u32 = 1 << 9; // e
pub const STREAM: u32 = 1 << 10; // t
pub const KEY_MISS: u32 = 1 << 11; // m
pub const MODULE: u32 = 1 << 12; // d
pub const NEW: u32 = 1 << 13; // n
/// `A`: every class but key-miss and new, as in Redis.
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Class letters in the order Redis prints them.
const LETTERS: &[(u32, char)] = &[
    (GENERIC, 'g'),
    (STRING, '$'),
    (LIST, 'l'),
    (SET, 's'),
    (HASH, 'h'),
    (ZSET, 'z'),
    (EXPIRED, 'x'),
    (EVICTED, 'e'),
    (STREAM, 't'),
    (MODULE, 'd'),
    (NEW, 'n'),
];

/// Parses a flags string; None on an unknown character (Redis's CONFIG SET error).
pub fn parse(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => ALL,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            'm' => KEY_MISS,
            c => LETTERS.iter().find(|(_, l)| *l == c)?.0,
        };
    }
    Some(flags)
}

/// The canonical text CONFIG GET shows. Like Redis, `A` stands for the whole set and then
/// the `n` flag is not printed (it stays in effect).
pub fn to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        LETTERS.iter().filter(|(f, _)| flags & f != 0).for_each(|(_, c)| s.push(*c));
    }
    for (f, c) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm')] {
        if flags & f != 0 {
            s.push(c);
        }
    }
    s
}

/// Which events are wanted: a class must be enabled and so must one of the two channels.
pub fn wanted(mask: u32, class: u32) -> bool {
    mask & class != 0 && mask & (KEYSPACE | KEYEVENT) != 0
}

/// One raised event, waiting to be published.
#[derive(Debug, Clone)]
pub struct Event {
    pub event: &'static str,
    pub key: Bytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_print_like_redis() {
        for (input, shown) in [
            ("KEA", "AKE"),
            ("Exg", "gxE"),
            ("Km", "Km"),
            ("n", "n"),
            ("Anm", "Am"),
            ("$lshzetd", "$lshzetd"),
            ("gxeKE", "gxeKE"),
            ("", ""),
            ("AtmdnK", "AKm"),
        ] {
            assert_eq!(to_string(parse(input).unwrap()), shown, "{input}");
        }
        assert!(parse("q").is_none());
        assert!(parse("An").unwrap() & NEW != 0);
    }
}
