//! The `struct` library Redis bundles with its Lua (Roberto Ierusalimschy's struct.c):
//! `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, init])` and `struct.size(fmt)`.
//! Formats: `<` `>` `=` byte order, `!n` alignment, `x` padding, `b/B h/H i/In I/In l/L T`
//! integers (sizes 1, 2, 4 or n, 8, 8), `f`/`d` floats, `cn` fixed strings (`c0`: the whole
//! string, or in unpack the length just read), `s` zero-terminated strings.

use mlua::{Lua, MultiValue, Table, Value};

use super::cjson::raise;

const MAX_INT_SIZE: usize = 32;
const MAX_ALIGN: usize = 8;

struct Format<'a> {
    f: &'a [u8],
    i: usize,
    little: bool,
    align: usize,
}

/// One option: its letter and size.
struct Opt {
    c: u8,
    size: usize,
}

impl Format<'_> {
    fn new(f: &[u8]) -> Format<'_> {
        Format { f, i: 0, little: true, align: 1 }
    }

    fn num(&mut self, default: usize) -> usize {
        if !self.f.get(self.i).is_some_and(|c| c.is_ascii_digit()) {
            return default;
        }
        let mut n = 0usize;
        while let Some(c) = self.f.get(self.i).filter(|c| c.is_ascii_digit()) {
            n = n.saturating_mul(10).saturating_add((c - b'0') as usize);
            self.i += 1;
        }
        n
    }

    /// The next option, after applying the control ones; None at the end.
    fn next(&mut self, func: &str) -> Result<Option<Opt>, String> {
        while let Some(&c) = self.f.get(self.i) {
            self.i += 1;
            let size = match c {
                b' ' => continue,
                b'>' => {
                    self.little = false;
                    continue;
                }
                b'<' | b'=' => {
                    self.little = true;
                    continue;
                }
                b'!' => {
                    let a = self.num(MAX_ALIGN);
                    if !a.is_power_of_two() {
                        return Err(format!("bad argument #1 to '{func}' (alignment {a} is not a power of 2)"));
                    }
                    self.align = a;
                    continue;
                }
                b'b' | b'B' | b'x' => 1,
                b'h' | b'H' => 2,
                b'l' | b'L' | b'T' | b'd' => 8,
                b'f' => 4,
                b's' => 0,
                b'c' => self.num(1),
                b'i' | b'I' => {
                    let n = self.num(4);
                    if n > MAX_INT_SIZE {
                        return Err(format!("integral size {n} is larger than limit of {MAX_INT_SIZE}"));
                    }
                    n
                }
                other => {
                    return Err(format!("bad argument #1 to '{func}' (invalid format option '{}')", other as char));
                }
            };
            return Ok(Some(Opt { c, size }));
        }
        Ok(None)
    }

    /// Padding before an option at offset `len`.
    fn padding(&self, len: usize, o: &Opt) -> usize {
        if o.size == 0 || o.c == b'c' {
            return 0;
        }
        let size = o.size.min(self.align);
        (size - (len & (size - 1))) & (size - 1)
    }
}

fn put_int(out: &mut Vec<u8>, n: f64, size: usize, little: bool) {
    let v: u64 = if n < 0.0 { (n as i64) as u64 } else { n as u64 };
    // Bytes past the eighth are zero (struct.c shifts a 64-bit value).
    let mut bytes: Vec<u8> = (0..size).map(|i| if i < 8 { (v >> (8 * i)) as u8 } else { 0 }).collect();
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

fn get_int(b: &[u8], little: bool, signed: bool) -> f64 {
    let mut v: u64 = 0;
    let n = b.len();
    for k in 0..n.min(8) {
        let byte = if little { b[k] } else { b[n - 1 - k] };
        v |= (byte as u64) << (8 * k);
    }
    if signed && n < 8 && n > 0 {
        let shift = 64 - 8 * n as u32;
        return ((v << shift) as i64 >> shift) as f64;
    }
    if signed { v as i64 as f64 } else { v as f64 }
}

fn pack(lua: &Lua, args: MultiValue) -> Result<Vec<u8>, String> {
    let fmt = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        _ => return Err("bad argument #1 to 'pack' (string expected, got no value)".into()),
    };
    let mut f = Format::new(&fmt);
    let mut out = Vec::new();
    let mut arg = 1;
    while let Some(o) = f.next("pack")? {
        out.resize(out.len() + f.padding(out.len(), &o), 0);
        let number = |arg: usize| -> Result<f64, String> {
            match args.get(arg) {
                Some(Value::Integer(n)) => Ok(*n as f64),
                Some(Value::Number(n)) => Ok(*n),
                Some(Value::String(s)) => s
                    .to_str()
                    .ok()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .ok_or_else(|| format!("bad argument #{} to 'pack' (number expected, got string)", arg + 1)),
                other => Err(format!(
                    "bad argument #{} to 'pack' (number expected, got {})",
                    arg + 1,
                    other.map_or("nil", |v| v.type_name())
                )),
            }
        };
        match o.c {
            b'x' => out.push(0),
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                put_int(&mut out, number(arg)?, o.size, f.little);
                arg += 1;
            }
            b'f' => {
                let v = (number(arg)? as f32).to_bits().to_le_bytes();
                out.extend(if f.little { v } else { [v[3], v[2], v[1], v[0]] });
                arg += 1;
            }
            b'd' => {
                let mut v = number(arg)?.to_bits().to_le_bytes();
                if !f.little {
                    v.reverse();
                }
                out.extend_from_slice(&v);
                arg += 1;
            }
            b'c' | b's' => {
                let s = match args.get(arg) {
                    Some(Value::String(s)) => s.as_bytes().to_vec(),
                    Some(Value::Integer(n)) => n.to_string().into_bytes(),
                    Some(Value::Number(n)) => super::convert::number_text(*n).into_bytes(),
                    other => {
                        return Err(format!(
                            "bad argument #{} to 'pack' (string expected, got {})",
                            arg + 1,
                            other.map_or("nil", |v| v.type_name())
                        ));
                    }
                };
                if o.c == b'c' {
                    let size = if o.size == 0 { s.len() } else { o.size };
                    if s.len() < size {
                        return Err(format!("bad argument #{} to 'pack' (string too short)", arg + 2));
                    }
                    out.extend_from_slice(&s[..size]);
                } else {
                    out.extend_from_slice(&s);
                    out.push(0);
                }
                arg += 1;
            }
            _ => {}
        }
    }
    let _ = lua;
    Ok(out)
}

fn unpack(lua: &Lua, fmt: &[u8], data: &[u8], init: usize) -> Result<MultiValue, String> {
    let mut f = Format::new(fmt);
    let mut pos = init.saturating_sub(1);
    if pos > data.len() {
        return Err("bad argument #3 to 'unpack' (offset out of bounds)".into());
    }
    let mut out: Vec<Value> = Vec::new();
    let short = || "bad argument #2 to 'unpack' (data string too short)".to_string();
    let lerr = |e: mlua::Error| e.to_string();
    while let Some(o) = f.next("unpack")? {
        pos += f.padding(pos, &o);
        if pos.checked_add(o.size).is_none_or(|end| end > data.len()) {
            return Err(short());
        }
        match o.c {
            b'x' => pos += 1,
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let v = get_int(&data[pos..pos + o.size], f.little, o.c.is_ascii_lowercase());
                out.push(Value::Number(v));
                pos += o.size;
            }
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[pos..pos + 4]);
                if !f.little {
                    b.reverse();
                }
                out.push(Value::Number(f32::from_le_bytes(b) as f64));
                pos += 4;
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[pos..pos + 8]);
                if !f.little {
                    b.reverse();
                }
                out.push(Value::Number(f64::from_le_bytes(b)));
                pos += 8;
            }
            b'c' => {
                let size = if o.size == 0 && f.f[f.i - 1] == b'0' {
                    match out.pop() {
                        Some(Value::Number(n)) if n >= 0.0 => n as usize,
                        Some(Value::Integer(n)) if n >= 0 => n as usize,
                        _ => return Err("format 'c0' needs a previous size".into()),
                    }
                } else {
                    o.size
                };
                if pos.checked_add(size).is_none_or(|end| end > data.len()) {
                    return Err(short());
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size]).map_err(lerr)?));
                pos += size;
            }
            b's' => {
                let Some(end) = data[pos..].iter().position(|&c| c == 0) else {
                    return Err("unfinished string in data".into());
                };
                out.push(Value::String(lua.create_string(&data[pos..pos + end]).map_err(lerr)?));
                pos += end + 1;
            }
            _ => {}
        }
    }
    out.push(Value::Integer(pos as i64 + 1));
    Ok(MultiValue::from_iter(out))
}

pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.raw_set(
        "pack",
        lua.create_function(|lua, args: MultiValue| {
            let out = pack(lua, args).map_err(|m| raise(lua, m))?;
            lua.create_string(&out)
        })?,
    )?;
    t.raw_set(
        "unpack",
        lua.create_function(|lua, (fmt, data, init): (mlua::LuaString, mlua::LuaString, Option<i64>)| {
            let init = init.unwrap_or(1).max(1) as usize;
            unpack(lua, &fmt.as_bytes(), &data.as_bytes(), init).map_err(|m| raise(lua, m))
        })?,
    )?;
    t.raw_set(
        "size",
        lua.create_function(|lua, fmt: mlua::LuaString| {
            let fmt = fmt.as_bytes();
            let mut f = Format::new(&fmt);
            let mut len = 0usize;
            while let Some(o) = f.next("size").map_err(|m| raise(lua, m))? {
                if o.c == b's' || (o.c == b'c' && o.size == 0) {
                    return Err(raise(
                        lua,
                        "bad argument #1 to 'size' (options 'c0' - 's' have undefined sizes)".into(),
                    ));
                }
                len += f.padding(len, &o) + o.size;
            }
            Ok(len as i64)
        })?,
    )?;
    globals.raw_set("struct", t)
}

#[cfg(test)]
mod tests {
    use rand::{RngExt, SeedableRng};

    /// Formats and data are the client's: random ones give errors or values, never a panic
    /// (sizes that would overflow an offset included).
    #[test]
    fn random_formats_and_data_never_panic() {
        let lua = mlua::Lua::new();
        super::install(&lua, &lua.globals()).unwrap();
        let unpack: mlua::Function = lua.load("return struct.unpack").eval().unwrap();
        let pack: mlua::Function = lua.load("return struct.pack").eval().unwrap();
        let size: mlua::Function = lua.load("return struct.size").eval().unwrap();
        let alphabet = b"<>=!xbBhHlLTfdsciI0123456789 9z";
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        for _ in 0..5000 {
            let fmt: Vec<u8> =
                (0..rng.random_range(0..12)).map(|_| alphabet[rng.random_range(0..alphabet.len())]).collect();
            let data: Vec<u8> = (0..rng.random_range(0..24)).map(|_| rng.random::<u8>()).collect();
            let f = lua.create_string(&fmt).unwrap();
            let d = lua.create_string(&data).unwrap();
            let _ = unpack.call::<mlua::MultiValue>((f.clone(), d.clone()));
            let _ = pack.call::<mlua::MultiValue>((f.clone(), 1, d, 2.5));
            let _ = size.call::<mlua::Value>(f);
        }
        let huge = lua.create_string("c18446744073709551615").unwrap();
        assert!(unpack.call::<mlua::MultiValue>((huge, "ab")).is_err());
    }
}
