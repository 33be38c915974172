//! The `cjson` library Redis bundles with its Lua (lua-cjson 2.1 with Redis's defaults):
//! `cjson.encode`, `cjson.decode` and `cjson.null`, with its rules for arrays (positive
//! integer keys; holes become null unless excessively sparse), `%.14g` numbers, escaped `/`,
//! and its error texts for what it cannot serialise or parse.

use mlua::{LightUserData, Lua, Table, Value};

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

/// An error raised at the calling script line, as luaL_error would word it.
pub(super) fn raise(lua: &Lua, msg: String) -> mlua::Error {
    let at = lua
        .inspect_stack(1, |d| (d.source().short_src.map(|s| s.into_owned()), d.current_line()))
        .and_then(|(src, line)| Some(format!("{}:{}: ", src?, line?)));
    mlua::Error::runtime(format!("{}{msg}", at.unwrap_or_default()))
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
        lua.create_function(move |lua, s: mlua::LuaString| {
            let bytes = s.as_bytes();
            let mut p = Parser { b: &bytes, i: 0, max_depth: c.get().decode_max_depth };
            let v = p.value(lua, 0).map_err(|m| raise(lua, m))?;
            p.ws();
            if p.i < p.b.len() {
                return Err(raise(lua, format!("Expected the end but found invalid token at character {}", p.i + 1)));
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
        Value::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
        Value::Number(n) => out.extend_from_slice(number(*n, cfg)?.as_bytes()),
        Value::String(s) => string(&s.as_bytes(), out),
        Value::Table(t) => {
            if depth >= cfg.encode_max_depth {
                return Err(format!("Cannot serialise, excessive nesting ({})", depth + 1));
            }
            // An array when every key is a positive integer.
            let mut max = 0usize;
            let mut count = 0usize;
            let mut is_array = true;
            for (k, _) in t.pairs::<Value, Value>().flatten() {
                count += 1;
                let idx = match k {
                    Value::Integer(i) if i >= 1 => Some(i as usize),
                    Value::Number(n) if n >= 1.0 && n.fract() == 0.0 => Some(n as usize),
                    _ => None,
                };
                match idx {
                    Some(i) => max = max.max(i),
                    None => is_array = false,
                }
            }
            // An excessively sparse array is refused, or written as an object when
            // encode_sparse_array(true) says so (lua-cjson's ratio and safe size).
            let sparse = is_array
                && count > 0
                && cfg.sparse_ratio > 0
                && max > cfg.sparse_safe
                && max > count.saturating_mul(cfg.sparse_ratio);
            if sparse && !cfg.sparse_convert {
                return Err("Cannot serialise table: excessively sparse array".into());
            }
            if is_array && count > 0 && !sparse {
                out.push(b'[');
                for i in 1..=max {
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
                        Value::Integer(n) => string(n.to_string().as_bytes(), out),
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

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    /// lua-cjson's name for what stands at the cursor, for its error texts.
    fn token_name(&self) -> &'static str {
        match self.b.get(self.i) {
            None => "T_END",
            Some(b'{') => "T_OBJ_BEGIN",
            Some(b'}') => "T_OBJ_END",
            Some(b'[') => "T_ARR_BEGIN",
            Some(b']') => "T_ARR_END",
            Some(b',') => "T_COMMA",
            Some(b':') => "T_COLON",
            Some(b'"') => "T_STRING",
            Some(c) if c.is_ascii_digit() || *c == b'-' => "T_NUMBER",
            _ => "invalid token",
        }
    }

    fn expected(&self, what: &str) -> String {
        format!("Expected {what} but found {} at character {}", self.token_name(), self.i + 1)
    }

    fn value(&mut self, lua: &Lua, depth: usize) -> Result<Value, String> {
        self.ws();
        if depth >= self.max_depth {
            return Err(format!("Found too many nested data structures ({}) at character {}", depth + 1, self.i + 1));
        }
        let lerr = |e: mlua::Error| e.to_string();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let t = lua.create_table().map_err(lerr)?;
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Value::Table(t));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return Err(self.expected("object key string"));
                    }
                    let k = self.string(lua)?;
                    self.ws();
                    if self.b.get(self.i) != Some(&b':') {
                        return Err(self.expected("colon"));
                    }
                    self.i += 1;
                    let v = self.value(lua, depth + 1)?;
                    t.raw_set(k, v).map_err(lerr)?;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.expected("comma or object end")),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let t = lua.create_table().map_err(lerr)?;
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::Table(t));
                }
                let mut n = 1;
                loop {
                    let v = self.value(lua, depth + 1)?;
                    t.raw_set(n, v).map_err(lerr)?;
                    n += 1;
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Table(t));
                        }
                        _ => return Err(self.expected("comma or array end")),
                    }
                }
            }
            Some(b'"') => self.string(lua),
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.i;
                while self.i < self.b.len() && matches!(self.b[self.i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    self.i += 1;
                }
                let text = std::str::from_utf8(&self.b[start..self.i]).unwrap_or("");
                match text.parse::<f64>() {
                    Ok(n) => Ok(Value::Number(n)),
                    Err(_) => {
                        self.i = start;
                        Err(self.expected("value"))
                    }
                }
            }
            _ => {
                for (word, v) in [("true", Value::Boolean(true)), ("false", Value::Boolean(false)), ("null", null())] {
                    if self.b[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(v);
                    }
                }
                Err(self.expected("value"))
            }
        }
    }

    fn string(&mut self, lua: &Lua) -> Result<Value, String> {
        let start = self.i;
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                self.i = start;
                return Err(format!("Expected value but found invalid token at character {}", start + 1));
            };
            self.i += 1;
            match c {
                b'"' => break,
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else { continue };
                    self.i += 1;
                    match e {
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4().ok_or_else(|| self.bad_string(start))?;
                            if (0xd800..0xdc00).contains(&cp) && self.b[self.i..].starts_with(b"\\u") {
                                self.i += 2;
                                let lo = self.hex4().ok_or_else(|| self.bad_string(start))?;
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo.wrapping_sub(0xdc00) & 0x3ff);
                            }
                            let ch = char::from_u32(cp).ok_or_else(|| self.bad_string(start))?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        other => out.push(other),
                    }
                }
                c => out.push(c),
            }
        }
        lua.create_string(&out).map(Value::String).map_err(|e| e.to_string())
    }

    fn hex4(&mut self) -> Option<u32> {
        let h = std::str::from_utf8(self.b.get(self.i..self.i + 4)?).ok()?;
        let v = u32::from_str_radix(h, 16).ok()?;
        self.i += 4;
        Some(v)
    }

    fn bad_string(&self, start: usize) -> String {
        format!("Expected value but found invalid unicode escape code at character {}", start + 1)
    }
}
