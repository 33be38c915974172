//! Small pure helpers shared by several modules: glob matching, number formatting, the hash table.

pub mod dict;
pub mod glob;
pub mod longdouble;
pub mod numfmt;
pub mod sha1;
pub mod smallbytes;

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
