//! The `cmsgpack` library Redis bundles with its Lua (lua-cmsgpack): `cmsgpack.pack(...)`
//! packs each argument and concatenates the results, `cmsgpack.unpack(s)` returns every
//! object in `s`. Encodings are lua-cmsgpack's: the smallest integer form for integral
//! numbers, a float when it holds the number exactly, tables as arrays only when their keys
//! are exactly 1..n, nesting past 16 levels packed as nil.

use mlua::{Lua, MultiValue, Table, Value};

const MAX_NESTING: usize = 16;

pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let m = lua.create_table()?;
    m.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            if args.is_empty() {
                return Err(super::luaerr::raise(
                    lua,
                    "bad argument #0 to 'pack' (MessagePack pack needs input.)".into(),
                ));
            }
            let mut out = Vec::new();
            for v in args.iter() {
                pack(v, 0, &mut out);
            }
            lua.create_string(&out)
        })?,
    )?;
    use super::luaerr::{check_integer, check_string, opt_integer};
    m.raw_set(
        "unpack",
        lua.create_function(|lua, a: MultiValue| unpack_full(lua, &check_string(lua, &a, 1)?, 0, 0, a.len()))?,
    )?;
    m.raw_set(
        "unpack_one",
        lua.create_function(|lua, a: MultiValue| {
            let offset = opt_integer(lua, &a, 2, 0)?;
            unpack_full(lua, &check_string(lua, &a, 1)?, 1, offset, 1)
        })?,
    )?;
    m.raw_set(
        "unpack_limit",
        lua.create_function(|lua, a: MultiValue| {
            let limit = check_integer(lua, &a, 2)?;
            let offset = opt_integer(lua, &a, 3, 0)?;
            unpack_full(lua, &check_string(lua, &a, 1)?, limit, offset, 1)
        })?,
    )?;
    globals.raw_set("cmsgpack", m)
}

/// lua-cmsgpack's mp_unpack_full: up to `limit` objects from `offset` on (both 0: all of
/// them, with no offset returned); otherwise the next offset (-1 when the input is used up)
/// comes first.
fn unpack_full(lua: &Lua, b: &[u8], limit: i64, offset: i64, nargs: usize) -> mlua::Result<MultiValue> {
    let decode_all = limit == 0 && offset == 0;
    if offset < 0 || limit < 0 {
        return Err(super::luaerr::raise(
            lua,
            format!("Invalid request to unpack with offset of {offset} and limit of {}.", b.len()),
        ));
    }
    if offset as u64 > b.len() as u64 {
        return Err(super::luaerr::raise(lua, format!("Start offset {offset} greater than input length {}.", b.len())));
    }
    let limit = if decode_all { i64::MAX } else { limit };
    let mut r = Reader { b, i: offset as usize, slots: 0, depth: 0 };
    let mut out = Vec::new();
    while r.i < r.b.len() && (out.len() as i64) < limit {
        r.slots = nargs + out.len();
        out.push(r.value(lua).map_err(|m| match m {
            // Raised by the Lua VM from the C function: no script line.
            NIL_KEY | NAN_KEY => mlua::Error::runtime(m),
            m => super::luaerr::raise(lua, m.to_string()),
        })?);
    }
    if !decode_all {
        let next = if r.i >= r.b.len() { -1 } else { r.i as i64 };
        out.insert(0, Value::Integer(next));
    }
    Ok(MultiValue::from_iter(out))
}

fn pack_int(n: i64, out: &mut Vec<u8>) {
    if n >= 0 {
        let u = n as u64;
        if u <= 127 {
            out.push(u as u8);
        } else if u <= 0xff {
            out.extend_from_slice(&[0xcc, u as u8]);
        } else if u <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(u as u16).to_be_bytes());
        } else if u <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(u as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&u.to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -(1 << 31) {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_number(n: f64, out: &mut Vec<u8>) {
    // lua-cmsgpack's test: finite and equal to its (long long) cast.
    if n.is_finite() && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&n) && n.fract() == 0.0 {
        pack_int(n as i64, out);
    } else if (n as f32) as f64 == n {
        out.push(0xca);
        out.extend_from_slice(&(n as f32).to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn pack_len(len: usize, fix: u8, fix_max: usize, small: Option<u8>, mid: u8, big: u8, out: &mut Vec<u8>) {
    if len < fix_max {
        out.push(fix | len as u8);
    } else if let Some(tag) = small.filter(|_| len < 256) {
        out.extend_from_slice(&[tag, len as u8]);
    } else if len < 65536 {
        out.push(mid);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(big);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
}

fn pack(v: &Value, level: usize, out: &mut Vec<u8>) {
    match v {
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(n) => pack_int(*n, out),
        Value::Number(n) => pack_number(*n, out),
        Value::String(s) => {
            let b = s.as_bytes();
            pack_len(b.len(), 0xa0, 32, Some(0xd9), 0xda, 0xdb, out);
            out.extend_from_slice(&b);
        }
        Value::Table(t) if level < MAX_NESTING => {
            let (mut count, mut max, mut array) = (0usize, 0usize, true);
            for (k, _) in t.pairs::<Value, Value>().flatten() {
                count += 1;
                match k {
                    Value::Integer(i) if i > 0 => max = max.max(i as usize),
                    Value::Number(n) if n > 0.0 && n.fract() == 0.0 => max = max.max(n as usize),
                    _ => array = false,
                }
            }
            if array && max == count {
                pack_len(count, 0x90, 16, None, 0xdc, 0xdd, out);
                for i in 1..=count {
                    pack(&t.raw_get::<Value>(i).unwrap_or(Value::Nil), level + 1, out);
                }
            } else {
                pack_len(count, 0x80, 16, None, 0xde, 0xdf, out);
                for (k, x) in t.pairs::<Value, Value>().flatten() {
                    pack(&k, level + 1, out);
                    pack(&x, level + 1, out);
                }
            }
        }
        _ => out.push(0xc0),
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    /// Lua stack slots the C would hold (arguments, results, open tables and their keys):
    /// nesting stops at Lua's 8000 with the C's error.
    slots: usize,
    /// Open arrays and maps: a cap below the stack's keeps the recursion within the thread.
    depth: usize,
}

const MISSING: &str = "Missing bytes in input.";
const BAD: &str = "Bad data format in input.";
const NIL_KEY: &str = "table index is nil";
const NAN_KEY: &str = "table index is NaN";
const TOO_DEEP: &str = "stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)";
/// Lua 5.1's LUAI_MAXCSTACK.
const LUA_MAX_C_STACK: usize = 8000;
/// Nesting Ember decodes (Redis's Lua stack allows about 4000): deeper is refused as the
/// stack's end, so the decoder's recursion stays small on any thread.
pub(super) const MAX_DECODE_NESTING: usize = 1000;

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], &'static str> {
        let s = self.b.get(self.i..self.i + n).ok_or(MISSING)?;
        self.i += n;
        Ok(s)
    }

    fn uint(&mut self, n: usize) -> Result<u64, &'static str> {
        Ok(self.take(n)?.iter().fold(0u64, |a, &x| (a << 8) | x as u64))
    }

    fn value(&mut self, lua: &Lua) -> Result<Value, &'static str> {
        // Nesting is bounded (as the C's Lua stack bounds it) so a hostile string cannot
        // exhaust the stack.
        if self.i >= self.b.len() {
            return Err(MISSING);
        }
        if self.slots + 1 > LUA_MAX_C_STACK || self.depth > MAX_DECODE_NESTING {
            return Err(TOO_DEEP);
        }
        let t = self.take(1)?[0];
        let lerr = |_| BAD;
        Ok(match t {
            0x00..=0x7f => Value::Integer(t as i64),
            0xe0..=0xff => Value::Integer(t as i8 as i64),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xcc => Value::Integer(self.uint(1)? as i64),
            0xcd => Value::Integer(self.uint(2)? as i64),
            0xce => Value::Integer(self.uint(4)? as i64),
            // lua_pushunsigned is lua_pushinteger in Lua 5.1: a 64-bit signed integer.
            0xcf => Value::Number(self.uint(8)? as i64 as f64),
            0xd0 => Value::Integer(self.uint(1)? as u8 as i8 as i64),
            0xd1 => Value::Integer(self.uint(2)? as u16 as i16 as i64),
            0xd2 => Value::Integer(self.uint(4)? as u32 as i32 as i64),
            0xd3 => Value::Number(self.uint(8)? as i64 as f64),
            0xca => Value::Number(f32::from_bits(self.uint(4)? as u32) as f64),
            0xcb => Value::Number(f64::from_bits(self.uint(8)?)),
            // (Redis's lua-cmsgpack predates the bin formats: 0xc4-0xc6 are bad data.)
            0xa0..=0xbf | 0xd9 | 0xda | 0xdb => {
                let len = match t {
                    0xa0..=0xbf => (t & 0x1f) as usize,
                    0xd9 => self.uint(1)? as usize,
                    0xda => self.uint(2)? as usize,
                    _ => self.uint(4)? as usize,
                };
                Value::String(lua.create_string(self.take(len)?).map_err(lerr)?)
            }
            0x90..=0x9f | 0xdc | 0xdd => {
                let n = match t {
                    0x90..=0x9f => (t & 0x0f) as usize,
                    0xdc => self.uint(2)? as usize,
                    _ => self.uint(4)? as usize,
                };
                // Each element takes at least a byte or fails: a claimed length costs no more
                // than the input.
                let tbl = lua.create_table().map_err(lerr)?;
                self.slots += 2;
                self.depth += 1;
                for k in 1..=n {
                    let v = self.value(lua)?;
                    tbl.raw_set(k, v).map_err(lerr)?;
                }
                self.depth -= 1;
                self.slots -= 2;
                Value::Table(tbl)
            }
            0x80..=0x8f | 0xde | 0xdf => {
                let n = match t {
                    0x80..=0x8f => (t & 0x0f) as usize,
                    0xde => self.uint(2)? as usize,
                    _ => self.uint(4)? as usize,
                };
                let tbl = lua.create_table().map_err(lerr)?;
                self.slots += 1;
                self.depth += 1;
                for _ in 0..n {
                    let k = self.value(lua)?;
                    self.slots += 1;
                    let v = self.value(lua)?;
                    self.slots -= 1;
                    // lua_settable's own errors.
                    match k {
                        Value::Nil => return Err(NIL_KEY),
                        Value::Number(n) if n.is_nan() => return Err(NAN_KEY),
                        k => tbl.raw_set(k, v).map_err(lerr)?,
                    }
                }
                self.depth -= 1;
                self.slots -= 1;
                Value::Table(tbl)
            }
            _ => return Err(BAD),
        })
    }
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};

    /// Hostile bytes into the decoders scripts expose (ARGV is the client's): errors, never a
    /// panic or a runaway allocation.
    #[test]
    fn decoders_survive_random_and_mutated_input() {
        // On a stack the size of the server's main thread, where scripts run.
        std::thread::Builder::new().stack_size(8 << 20).spawn(decoders).unwrap().join().unwrap();
    }

    fn decoders() {
        let lua = mlua::Lua::new();
        let g = lua.globals();
        super::install(&lua, &g).unwrap();
        super::super::cjson::install(&lua, &g).unwrap();
        // Called from Rust: an error comes back as Err, results as values.
        let unpack: mlua::Function = lua.load("return cmsgpack.unpack").eval().unwrap();
        let decode: mlua::Function = lua.load("return cjson.decode").eval().unwrap();
        let seeds: [&[u8]; 4] = [
            b"\x93\x01\xa3abc\x82\xa1a\xc3\xa1b\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00",
            b"\xdd\xff\xff\xff\xff",
            br#"{"a":[1,2,{"b":"c\u00e9"}],"d":null,"e":-1.5e3}"#,
            b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[",
        ];
        let mut rng = rand::rngs::StdRng::seed_from_u64(9);
        for i in 0..4000 {
            let mut b: Vec<u8> = if i % 2 == 0 {
                seeds[i % seeds.len()].to_vec()
            } else {
                (0..rng.random_range(0..64)).map(|_| rng.random::<u8>()).collect()
            };
            for _ in 0..rng.random_range(0..4) {
                if !b.is_empty() {
                    let at = rng.random_range(0..b.len());
                    b[at] = rng.random();
                }
            }
            let s = lua.create_string(&b).unwrap();
            let _ = unpack.call::<mlua::MultiValue>(s.clone());
            let _ = decode.call::<mlua::MultiValue>(s);
        }
        // Deep nesting is refused, not recursed into.
        let deep = lua.create_string(vec![0x91u8; 100_000]).unwrap();
        assert!(unpack.call::<mlua::MultiValue>(deep).is_err());
        let deep = lua.create_string(vec![b'['; 100_000]).unwrap();
        assert!(decode.call::<mlua::MultiValue>(deep).is_err());
    }
}
