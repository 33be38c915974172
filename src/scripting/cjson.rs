//! The `cjson` library Redis bundles with its Lua (lua-cjson 2.1 with Redis's defaults):
//! `cjson.encode`, `cjson.decode` and `cjson.null`, with its rules for arrays (positive
//! integer keys; holes become null unless excessively sparse), `%.14g` numbers, escaped `/`,
//! and its error texts for what it cannot serialise or parse.

use mlua::{IntoLuaMulti, LightUserData, Lua, MultiValue, Table, Value};

use super::convert::c_string;
use super::luaerr::{arg_error, check_integer, check_string, raise};

/// lua-cjson's settings (per Lua state, changed by `cjson.encode_max_depth()` and friends;
/// they last until the state goes, as in Redis).
#[derive(Clone, Copy, Debug)]
struct Cfg {
    encode_max_depth: i32,
    decode_max_depth: i32,
    /// 0: refuse NaN/Inf, 1: write NaN/Infinity, 2: write null.
    encode_invalid_numbers: u8,
    decode_invalid_numbers: u8,
    keep_buffer: u8,
    precision: i32,
    sparse_convert: u8,
    sparse_ratio: i32,
    sparse_safe: i32,
}

const DEFAULT: Cfg = Cfg {
    encode_max_depth: 1000,
    decode_max_depth: 1000,
    encode_invalid_numbers: 0,
    decode_invalid_numbers: 1,
    keep_buffer: 1,
    precision: 14,
    sparse_convert: 0,
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
                max_depth: cfg.decode_max_depth as usize,
                slots: 1,
                invalid_numbers: cfg.decode_invalid_numbers == 1,
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
    // The settings (lua-cjson's json_cfg_*): each returns the value in force, after setting
    // it when given one. What an argument set stays set when a later one is refused.
    let setting = |name: &'static str, max_args: usize, f: Setting| {
        let c = cfg.clone();
        cjson.raw_set(
            name,
            lua.create_function(move |lua, args: MultiValue| {
                if args.len() > max_args {
                    return Err(arg_error(lua, max_args + 1, "found too many arguments"));
                }
                let mut now = c.get();
                let out = f(lua, &args, &mut now);
                c.set(now);
                out
            })?,
        )
    };
    setting("encode_max_depth", 1, |lua, args, c| {
        integer_option(lua, args, 1, 1, i32::MAX, &mut c.encode_max_depth)?.into_lua_multi(lua)
    })?;
    setting("decode_max_depth", 1, |lua, args, c| {
        integer_option(lua, args, 1, 1, i32::MAX, &mut c.decode_max_depth)?.into_lua_multi(lua)
    })?;
    setting("encode_number_precision", 1, |lua, args, c| {
        integer_option(lua, args, 1, 1, 14, &mut c.precision)?.into_lua_multi(lua)
    })?;
    setting("encode_keep_buffer", 1, |lua, args, c| enum_option(lua, args, 1, ON_OFF, &mut c.keep_buffer))?;
    setting("decode_invalid_numbers", 1, |lua, args, c| {
        enum_option(lua, args, 1, ON_OFF, &mut c.decode_invalid_numbers)
    })?;
    setting("encode_invalid_numbers", 1, |lua, args, c| {
        enum_option(lua, args, 1, &["off", "on", "null"], &mut c.encode_invalid_numbers)
    })?;
    setting("encode_sparse_array", 3, |lua, args, c| {
        let mut out = enum_option(lua, args, 1, ON_OFF, &mut c.sparse_convert)?;
        out.push_back(Value::Integer(integer_option(lua, args, 2, 0, i32::MAX, &mut c.sparse_ratio)?));
        out.push_back(Value::Integer(integer_option(lua, args, 3, 0, i32::MAX, &mut c.sparse_safe)?));
        Ok(out)
    })?;
    cjson.raw_set("null", null())?;
    globals.raw_set("cjson", cjson)
}

type Setting = fn(&Lua, &MultiValue, &mut Cfg) -> mlua::Result<MultiValue>;

const ON_OFF: &[&str] = &["off", "on"];

/// json_integer_option: a given argument must be an integer (truncated to a C int) within
/// `min..=max`; the range error names argument 1 wherever the argument is, as lua-cjson's does.
fn integer_option(lua: &Lua, args: &MultiValue, i: usize, min: i32, max: i32, setting: &mut i32) -> mlua::Result<i64> {
    if !matches!(args.get(i - 1), None | Some(Value::Nil)) {
        let v = check_integer(lua, args, i)? as i32;
        if !(min..=max).contains(&v) {
            return Err(arg_error(lua, 1, &format!("expected integer between {min} and {max}")));
        }
        *setting = v;
    }
    Ok(*setting as i64)
}

/// json_enum_option: a boolean, or one of `options` by name (luaL_checkoption); the value in
/// force comes back as a boolean for off/on, else as its name.
fn enum_option(lua: &Lua, args: &MultiValue, i: usize, options: &[&str], setting: &mut u8) -> mlua::Result<MultiValue> {
    match args.get(i - 1) {
        None | Some(Value::Nil) => {}
        Some(Value::Boolean(b)) => *setting = *b as u8,
        Some(_) => {
            // luaL_checkoption compares C strings: up to a NUL.
            let given = check_string(lua, args, i)?;
            let given = c_string(&given);
            match options.iter().position(|o| o.as_bytes() == given) {
                Some(k) => *setting = k as u8,
                None => {
                    let msg = format!("invalid option '{}'", String::from_utf8_lossy(given));
                    return Err(arg_error(lua, i, &msg));
                }
            }
        }
    }
    let v = match *setting {
        0 | 1 => Value::Boolean(*setting == 1),
        k => Value::String(lua.create_string(options[k as usize])?),
    };
    Ok(MultiValue::from_iter([v]))
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
    Ok(crate::util::numfmt::fmt_g(n, cfg.precision as usize))
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
            if depth >= cfg.encode_max_depth as usize {
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
            if sparse && cfg.sparse_convert == 0 {
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
