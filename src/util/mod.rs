//! Small pure helpers shared by several modules: glob matching, number formatting, the hash table.

pub mod dict;
pub mod expiry_index;
pub mod glob;
pub mod id_hasher;
pub mod longdouble;
pub mod numfmt;
pub mod sha1;
pub mod siphash;
pub mod smallbytes;
pub mod thin;
pub mod ticks;

use std::time::{SystemTime, UNIX_EPOCH};

/// The Redis version Ember answers as (INFO, HELLO, RDB aux fields, Lua's redis.REDIS_VERSION).
pub const REDIS_VERSION: &str = "7.0.15";

/// Wall-clock milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Wall-clock microseconds since the Unix epoch.
pub fn unix_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).unwrap_or(0)
}

/// Escapes like sdscatrepr (MONITOR lines, quoted AOF file names).
pub fn repr(b: &[u8]) -> String {
    let mut s = String::from("\"");
    for &c in b {
        match c {
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            7 => s.push_str("\\a"),
            8 => s.push_str("\\b"),
            c if c.is_ascii_graphic() || c == b' ' => s.push(c as char),
            c => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s.push('"');
    s
}
