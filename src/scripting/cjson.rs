//! The `cjson` library Redis bundles with its Lua (lua-cjson 2.1 with Redis's defaults):
//! `cjson.encode`, `cjson.decode` and `cjson.null`, with its rules for arrays (positive
//! integer keys; holes become null unless excessively sparse), `%.14g` numbers, escaped `/`,
//! and its error texts for what it cannot serialise or parse.

use mlua::{LightUserData, Lua, Table, Value};

use super::luaerr::raise;

/// lua-cjson's settings (per Lua state, changed by `cjson.encode_max_depth()` and friends;
/// they last until the state goes, as in Redis).
#[derive(Clone, Copy, Debug)]
struct Cfg {
    encode_max_depth: usize,
    decode_max_depth: usize,
    /// 0: refuse NaN/Inf, 1: write NaN/Infinity, 2: write null.
    encode_invalid_numbers: u8,
    decode_invalid_numbers: bool,
    keep_buffer: bool,
    precision: usize,
    sparse_convert: bool,
    sparse_ratio: usize,
    sparse_safe: usize,
}

const DEFAULT: Cfg = Cfg {
    encode_max_depth: 1000,
    decode_max_depth: 1000,
    encode_invalid_numbers: 0,
    decode_invalid_numbers: true,
    keep_buffer: true,
    precision: 14,
    sparse_convert: false,
    sparse_ratio: 2,
    sparse_safe: 10,
};

/// `cjson.null`: a light userdata holding NULL, as lua-cjson's.
fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    use std::cell::Cell;
    use std::rc::Rc;
    let cfg = Rc::new(Cell::new(DEFAULT));
    let cjson = lua.create_table()?;
    let c = cfg.clone();
    cjson.raw_set(
        "encode",
        lua.create_function(move |lua, v: Value| {
            let mut out = Vec::new();
            encode(&v, 0, &mut out, &c.get()).map_err(|m| raise(lua, m))?;
            lua.create_string(&out)
        })?,
    )?;
    let c = cfg.clone();
    cjson.raw_set(
        "decode",
        lua.create_function(move |lua, args: mlua::MultiValue| {
            if args.len() != 1 {
                return Err(super::luaerr::arg_error(lua, 1, "expected 1 argument"));
            }
            let bytes = super::luaerr::check_string(lua, &args, 1)?;
            if bytes.len() >= 2 && (bytes[0] == 0 || bytes[1] == 0) {
                return Err(raise(lua, "JSON parser does not support UTF-16 or UTF-32".into()));
            }
            let cfg = c.get();
            let mut p = Parser {
                b: &bytes,
                i: 0,
                depth: 0,
                max_depth: cfg.decode_max_depth,
                slots: 1,
                invalid_numbers: cfg.decode_invalid_numbers,
                text: Vec::new(),
            };
            let first = p.next();
            let v = p.value(lua, first).map_err(|m| raise(lua, m))?;
            let end = p.next();
            if end.0 != Tok::End {
                return Err(raise(lua, p.fail("the end", end)));
            }
            Ok(v)
        })?,
    )?;
    // The settings: each returns the value in force, after setting it when given one.
    let int_setting = |_name: &'static str, max: i64, get: fn(&Cfg) -> usize, set: fn(&mut Cfg, usize)| {
        let c = cfg.clone();
        lua.create_function(move |lua, v: Option<Value>| {
            let mut now = c.get();
            if let Some(v) = v {
                let n = match v {
                    Value::Integer(n) => n,
                    Value::Number(n) if n.fract() == 0.0 => n as i64,
                    _ => -1,
                };
                if !(1..=max).contains(&n) {
                    return Err(raise(
                        lua,
                        // Lua names C functions called through pcall '?'.
                        format!("bad argument #1 to '?' (expected integer between 1 and {max})"),
                    ));
                }
                set(&mut now, n as usize);
                c.set(now);
            }
            Ok(get(&now) as i64)
        })
    };
    cjson.raw_set(
        "encode_max_depth",
        int_setting("encode_max_depth", i32::MAX as i64, |c| c.encode_max_depth, |c, n| c.encode_max_depth = n)?,
    )?;
    cjson.raw_set(
        "decode_max_depth",
        int_setting("decode_max_depth", i32::MAX as i64, |c| c.decode_max_depth, |c, n| c.decode_max_depth = n)?,
    )?;
    cjson.raw_set(
        "encode_number_precision",
        int_setting("encode_number_precision", 14, |c| c.precision, |c, n| c.precision = n)?,
    )?;
    let bool_setting = |name: &'static str, get: fn(&Cfg) -> bool, set: fn(&mut Cfg, bool)| {
        let c = cfg.clone();
        lua.create_function(move |lua, v: Option<Value>| {
            let mut now = c.get();
            match v {
                None => {}
                Some(Value::Boolean(b)) => {
                    set(&mut now, b);
                    c.set(now);
                }
                Some(Value::String(s)) if matches!(&s.as_bytes()[..], b"on" | b"off") => {
                    set(&mut now, &s.as_bytes()[..] == b"on");
                    c.set(now);
                }
                Some(_) => return Err(raise(lua, format!("bad argument #1 to '{name}' (invalid option)"))),
            }
            Ok(get(&now))
        })
    };
    cjson.raw_set(
        "encode_keep_buffer",
        bool_setting("encode_keep_buffer", |c| c.keep_buffer, |c, b| c.keep_buffer = b)?,
    )?;
    cjson.raw_set(
        "decode_invalid_numbers",
        bool_setting("decode_invalid_numbers", |c| c.decode_invalid_numbers, |c, b| c.decode_invalid_numbers = b)?,
    )?;
    let c = cfg.clone();
    cjson.raw_set(
        "encode_invalid_numbers",
        lua.create_function(move |lua, v: Option<Value>| {
            let mut now = c.get();
            match v {
                None => {}
                Some(Value::Boolean(b)) => now.encode_invalid_numbers = b as u8,
                Some(Value::String(s)) if &s.as_bytes()[..] == b"null" => now.encode_invalid_numbers = 2,
                Some(Value::String(s)) if matches!(&s.as_bytes()[..], b"on" | b"off") => {
                    now.encode_invalid_numbers = (&s.as_bytes()[..] == b"on") as u8
                }
                Some(_) => {
                    return Err(raise(lua, "bad argument #1 to 'encode_invalid_numbers' (invalid option)".into()));
                }
            }
            c.set(now);
            Ok(match now.encode_invalid_numbers {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                _ => Value::String(lua.create_string("null")?),
            })
        })?,
    )?;
    let c = cfg.clone();
    cjson.raw_set(
        "encode_sparse_array",
        lua.create_function(move |_, (convert, ratio, safe): (Option<bool>, Option<i64>, Option<i64>)| {
            let mut now = c.get();
            if let Some(b) = convert {
                now.sparse_convert = b;
            }
            if let Some(r) = ratio {
                now.sparse_ratio = r.clamp(0, i32::MAX as i64) as usize;
            }
            if let Some(x) = safe {
                now.sparse_safe = x.clamp(0, i32::MAX as i64) as usize;
            }
            c.set(now);
            Ok((now.sparse_convert, now.sparse_ratio as i64, now.sparse_safe as i64))
        })?,
    )?;
    cjson.raw_set("null", null())?;
    globals.raw_set("cjson", cjson)
}

fn number(n: f64, cfg: &Cfg) -> Result<String, String> {
    if !n.is_finite() {
        return match cfg.encode_invalid_numbers {
            0 => Err("Cannot serialise number: must not be NaN or Inf".into()),
            // Redis's lua-cjson prints them with %.14g.
            1 if n.is_nan() => Ok("nan".into()),
            1 if n < 0.0 => Ok("-inf".into()),
            1 => Ok("inf".into()),
            _ => Ok("null".into()),
        };
    }
    Ok(crate::util::numfmt::fmt_g(n, cfg.precision))
}

fn string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            // Other bytes (UTF-8 or not) pass through as they are.
            c => out.push(c),
        }
    }
    out.push(b'"');
}

fn encode(v: &Value, depth: usize, out: &mut Vec<u8>, cfg: &Cfg) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(u) if u.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        // Lua 5.1 numbers are doubles: an integral one is written with %.14g too.
        Value::Integer(n) => out.extend_from_slice(number(*n as f64, cfg)?.as_bytes()),
        Value::Number(n) => out.extend_from_slice(number(*n, cfg)?.as_bytes()),
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth >= cfg.encode_max_depth {
                return Err(format!("Cannot serialise, excessive nesting ({})", depth + 1));
            }
            // An array when every key is a positive integer (lua_array_length). The largest
            // key is kept in a C int: one past its range converts to INT_MIN, which makes the
            // table an object unless a later key is larger again (lua_next's order).
            let mut max: i32 = 0;
            let mut count = 0usize;
            let mut is_array = true;
            for (k, _) in t.pairs::<Value, Value>().flatten() {
                let k = match k {
                    Value::Integer(i) => Some(i as f64),
                    Value::Number(n) => Some(n),
                    _ => None,
                };
                match k {
                    Some(k) if k.floor() == k && k >= 1.0 => {
                        if k > max as f64 {
                            max = if k < 2_147_483_648.0 { k as i32 } else { i32::MIN };
                        }
                        count += 1;
                    }
                    _ => {
                        is_array = false;
                        break;
                    }
                }
            }
            // An excessively sparse array is refused, or written as an object when
            // encode_sparse_array(true) says so (lua-cjson's ratio and safe size).
            let sparse = is_array
                && cfg.sparse_ratio > 0
                && max as i64 > (count as i64).saturating_mul(cfg.sparse_ratio as i64)
                && max as i64 > cfg.sparse_safe as i64;
            if sparse && !cfg.sparse_convert {
                return Err("Cannot serialise table: excessively sparse array".into());
            }
            let len = if is_array && !sparse { max } else { 0 };
            if len > 0 {
                out.push(b'[');
                for i in 1..=len {
                    if i > 1 {
                        out.push(b',');
                    }
                    let x: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                    encode(&x, depth + 1, out, cfg)?;
                }
                out.push(b']');
            } else {
                out.push(b'{');
                let mut first = true;
                for (k, x) in t.pairs::<Value, Value>().flatten() {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    match &k {
                        Value::String(s) => string(&s.as_bytes(), out),
                        Value::Integer(n) => string(number(*n as f64, cfg)?.as_bytes(), out),
                        Value::Number(n) => string(number(*n, cfg)?.as_bytes(), out),
                        _ => return Err("Cannot serialise table: table key must be a number or string".into()),
                    }
                    out.push(b':');
                    encode(&x, depth + 1, out, cfg)?;
                }
                out.push(b'}');
            }
        }
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

/// Lua 5.1's LUAI_MAXCSTACK: the most values a C function may have on the Lua stack.
const LUA_MAX_C_STACK: usize = 8000;

/// lua-cjson's tokens (their names appear in its error texts).
#[derive(Clone, Copy, PartialEq)]
enum Tok {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str,
    Num(f64),
    Bool(bool),
    Null,
    Colon,
    Comma,
    End,
    /// A token error: its text.
    Error(&'static str),
}

impl Tok {
    fn name(self) -> &'static str {
        match self {
            Tok::ObjBegin => "T_OBJ_BEGIN",
            Tok::ObjEnd => "T_OBJ_END",
            Tok::ArrBegin => "T_ARR_BEGIN",
            Tok::ArrEnd => "T_ARR_END",
            Tok::Str => "T_STRING",
            Tok::Num(_) => "T_NUMBER",
            Tok::Bool(_) => "T_BOOLEAN",
            Tok::Null => "T_NULL",
            Tok::Colon => "T_COLON",
            Tok::Comma => "T_COMMA",
            Tok::End => "T_END",
            Tok::Error(e) => e,
        }
    }
}

/// lua-cjson's decoder, token by token as the C reads a NUL-terminated string: numbers go
/// through strtod (so hex, `Infinity`, `nan` and leading zeros pass, as
/// decode_invalid_numbers allows), errors name the token found and its position.
struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    depth: usize,
    max_depth: usize,
    /// Lua stack slots the C would hold now (the argument, each open table and object key):
    /// it fails to nest past Lua's 8000 as it does past the configured depth.
    slots: usize,
    invalid_numbers: bool,
    /// The last string token's bytes.
    text: Vec<u8>,
}

impl Parser<'_> {
    /// The byte at `at`, NUL past the end (the C string's terminator).
    fn at(&self, at: usize) -> u8 {
        self.b.get(at).copied().unwrap_or(0)
    }

    /// json_is_invalid_number: what strict JSON refuses but strtod reads.
    fn invalid_number(&self) -> bool {
        let mut p = self.i;
        if self.at(p) == b'+' {
            return true;
        }
        if self.at(p) == b'-' {
            p += 1;
        }
        if self.at(p) == b'0' {
            let c = self.at(p + 1);
            return c | 0x20 == b'x' || c.is_ascii_digit();
        }
        if self.at(p) <= b'9' {
            return false;
        }
        let word = |w: &[u8]| self.b.get(p..p + 3).is_some_and(|s| s.eq_ignore_ascii_case(w));
        word(b"inf") || word(b"nan")
    }

    fn number(&mut self) -> (Tok, usize) {
        let start = self.i;
        // strtod reads at most this run (digits, letters of hex/inf/nan, sign, point, parens).
        let run = self.b[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'+' | b'-' | b'(' | b')' | b'_'))
            .count();
        let r = crate::util::numfmt::strtod(&self.b[start..start + run]);
        if r.end == 0 {
            return (Tok::Error("invalid number"), start);
        }
        self.i += r.end;
        (Tok::Num(r.value), start)
    }

    /// json_next_token: the token and where it starts (for an error, where it was found).
    fn next(&mut self) -> (Tok, usize) {
        while matches!(self.at(self.i), b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
        let start = self.i;
        let single = match self.at(self.i) {
            b'{' => Some(Tok::ObjBegin),
            b'}' => Some(Tok::ObjEnd),
            b'[' => Some(Tok::ArrBegin),
            b']' => Some(Tok::ArrEnd),
            b',' => Some(Tok::Comma),
            b':' => Some(Tok::Colon),
            0 => return (Tok::End, start),
            b'f' | b'i' | b'I' | b'n' | b'N' | b't' | b'"' | b'+' | b'-' | b'0'..=b'9' => None,
            _ => return (Tok::Error("invalid token"), start),
        };
        if let Some(t) = single {
            self.i += 1;
            return (t, start);
        }
        let c = self.at(self.i);
        let rest = &self.b[self.i..];
        if c == b'"' {
            self.string()
        } else if c == b'-' || c.is_ascii_digit() {
            if !self.invalid_numbers && self.invalid_number() {
                return (Tok::Error("invalid number"), start);
            }
            self.number()
        } else if rest.starts_with(b"true") {
            self.i += 4;
            (Tok::Bool(true), start)
        } else if rest.starts_with(b"false") {
            self.i += 5;
            (Tok::Bool(false), start)
        } else if rest.starts_with(b"null") {
            self.i += 4;
            (Tok::Null, start)
        } else if self.invalid_numbers && self.invalid_number() {
            self.number()
        } else {
            (Tok::Error("invalid token"), start)
        }
    }

    /// json_next_string_token: errors point where they were found, inside the string.
    fn string(&mut self) -> (Tok, usize) {
        let start = self.i;
        self.i += 1;
        self.text.clear();
        loop {
            let c = self.at(self.i);
            match c {
                b'"' => break,
                0 => return (Tok::Error("unexpected end of string"), self.i),
                b'\\' => {
                    let e = match self.at(self.i + 1) {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => match self.unicode_escape() {
                            Some(()) => continue,
                            None => return (Tok::Error("invalid unicode escape code"), self.i),
                        },
                        _ => return (Tok::Error("invalid escape code"), self.i),
                    };
                    self.text.push(e);
                    self.i += 2;
                }
                c => {
                    self.text.push(c);
                    self.i += 1;
                }
            }
        }
        self.i += 1;
        (Tok::Str, start)
    }

    fn hex4(&self, at: usize) -> Option<u32> {
        (0..4).try_fold(0u32, |v, k| Some(v << 4 | (self.at(at + k) as char).to_digit(16)?))
    }

    /// json_append_unicode_escape: `\uXXXX` (a surrogate pair as two) to UTF-8.
    fn unicode_escape(&mut self) -> Option<()> {
        let mut cp = self.hex4(self.i + 2)?;
        let mut len = 6;
        if cp & 0xf800 == 0xd800 {
            if cp & 0x400 != 0 || self.at(self.i + 6) != b'\\' || self.at(self.i + 7) != b'u' {
                return None;
            }
            let low = self.hex4(self.i + 8)?;
            if low & 0xfc00 != 0xdc00 {
                return None;
            }
            cp = (((cp & 0x3ff) << 10) | (low & 0x3ff)) + 0x10000;
            len = 12;
        }
        // codepoint_to_utf8 (the C writes surrogate halves too; they cannot reach here).
        let ch = char::from_u32(cp)?;
        let mut buf = [0u8; 4];
        self.text.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        self.i += len;
        Some(())
    }

    fn fail(&self, expected: &str, (tok, at): (Tok, usize)) -> String {
        format!("Expected {expected} but found {} at character {}", tok.name(), at + 1)
    }

    fn descend(&mut self, room: usize) -> Result<(), String> {
        self.depth += 1;
        // (Past MAX_DECODE_NESTING too, whatever decode_max_depth says: the recursion stays small.)
        let cap = self.max_depth.min(super::cmsgpack::MAX_DECODE_NESTING);
        if self.depth > cap || self.slots + room > LUA_MAX_C_STACK {
            return Err(format!("Found too many nested data structures ({}) at character {}", self.depth, self.i));
        }
        Ok(())
    }

    /// json_process_value: the value that starts with `tok`.
    fn value(&mut self, lua: &Lua, tok: (Tok, usize)) -> Result<Value, String> {
        let lerr = |e: mlua::Error| e.to_string();
        Ok(match tok.0 {
            Tok::Str => Value::String(lua.create_string(&self.text).map_err(lerr)?),
            Tok::Num(n) => Value::Number(n),
            Tok::Bool(b) => Value::Boolean(b),
            Tok::Null => null(),
            Tok::ObjBegin => {
                self.descend(3)?;
                self.slots += 1;
                let t = lua.create_table().map_err(lerr)?;
                let mut tok = self.next();
                if tok.0 != Tok::ObjEnd {
                    loop {
                        if tok.0 != Tok::Str {
                            return Err(self.fail("object key string", tok));
                        }
                        let key = lua.create_string(&self.text).map_err(lerr)?;
                        self.slots += 1;
                        let colon = self.next();
                        if colon.0 != Tok::Colon {
                            return Err(self.fail("colon", colon));
                        }
                        let first = self.next();
                        let v = self.value(lua, first)?;
                        t.raw_set(key, v).map_err(lerr)?;
                        self.slots -= 1;
                        let after = self.next();
                        if after.0 == Tok::ObjEnd {
                            break;
                        }
                        if after.0 != Tok::Comma {
                            return Err(self.fail("comma or object end", after));
                        }
                        tok = self.next();
                    }
                }
                self.depth -= 1;
                self.slots -= 1;
                Value::Table(t)
            }
            Tok::ArrBegin => {
                self.descend(2)?;
                self.slots += 1;
                let t = lua.create_table().map_err(lerr)?;
                let mut tok = self.next();
                if tok.0 != Tok::ArrEnd {
                    let mut n = 1;
                    loop {
                        let v = self.value(lua, tok)?;
                        t.raw_set(n, v).map_err(lerr)?;
                        n += 1;
                        let after = self.next();
                        if after.0 == Tok::ArrEnd {
                            break;
                        }
                        if after.0 != Tok::Comma {
                            return Err(self.fail("comma or array end", after));
                        }
                        tok = self.next();
                    }
                }
                self.depth -= 1;
                self.slots -= 1;
                Value::Table(t)
            }
            _ => return Err(self.fail("value", tok)),
        })
    }
}
