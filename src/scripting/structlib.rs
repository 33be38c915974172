//! The `struct` library Redis 7.0 bundles with its Lua (Roberto Ierusalimschy's struct.c,
//! as in Redis's deps): `struct.pack(fmt, ...)`, `struct.unpack(fmt, data [, init])` and
//! `struct.size(fmt)`. Formats: `<` `>` byte order, `!n` alignment, `x` padding, `b/B h/H
//! l/L T i/In I/In` integers (sizes 1, 2, 8, 8, 4 or n), `f`/`d` floats, `cn` fixed strings
//! (`c0`: the whole string, or in unpack the length just read), `s` zero-terminated strings.
//! A port of the C, down to its quirks: the format ends at a NUL, an offset below 1 wraps
//! around (and is then "data string too short"), integers past 8 bytes keep the low 8, and
//! the errors read as luaL_error/luaL_argerror word them.

use mlua::{Lua, MultiValue, Table, Value};

use super::luaerr::{arg_error, check_number, check_string, opt_integer, raise};

const MAX_INT_SIZE: usize = 32;
/// The C struct's alignment of a double on x86-64.
const MAX_ALIGN: usize = 8;
/// Lua 5.1's LUAI_MAXCSTACK: the most values a C function may have on its stack.
const MAX_C_STACK: usize = 8000;

struct Header {
    little: bool,
    align: usize,
}

/// The format as C sees it: up to its first NUL.
fn c_format(f: &[u8]) -> &[u8] {
    f.iter().position(|&c| c == 0).map_or(f, |n| &f[..n])
}

/// getnum: a decimal count at `*i`, or `default`.
fn getnum(lua: &Lua, f: &[u8], i: &mut usize, default: usize) -> mlua::Result<usize> {
    if !f.get(*i).is_some_and(u8::is_ascii_digit) {
        return Ok(default);
    }
    let mut a: i64 = 0;
    while let Some(&c) = f.get(*i).filter(|c| c.is_ascii_digit()) {
        let d = (c - b'0') as i64;
        if a > i32::MAX as i64 / 10 || a * 10 > i32::MAX as i64 - d {
            return Err(raise(lua, "integral size overflow".into()));
        }
        a = a * 10 + d;
        *i += 1;
    }
    Ok(a as usize)
}

/// optsize: the size of option `opt` (0 for the control options).
fn optsize(lua: &Lua, opt: u8, f: &[u8], i: &mut usize) -> mlua::Result<usize> {
    Ok(match opt {
        b'B' | b'b' | b'x' => 1,
        b'H' | b'h' => 2,
        b'L' | b'l' | b'T' | b'd' => 8,
        b'f' => 4,
        b'c' => getnum(lua, f, i, 1)?,
        b'i' | b'I' => {
            let n = getnum(lua, f, i, 4)?;
            if n > MAX_INT_SIZE {
                return Err(raise(lua, format!("integral size {n} is larger than limit of {MAX_INT_SIZE}")));
            }
            n
        }
        _ => 0,
    })
}

/// gettoalign: padding before an item of `size` at offset `len` (C's arithmetic, sizes that
/// are not powers of two included).
fn gettoalign(len: u64, h: &Header, opt: u8, size: usize) -> u64 {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align) as u64;
    (size.wrapping_sub(len & (size - 1))) & (size - 1)
}

/// controloptions: byte order, alignment and spaces; anything else is not an option.
fn controloptions(lua: &Lua, opt: u8, f: &[u8], i: &mut usize, h: &mut Header) -> mlua::Result<()> {
    match opt {
        b' ' => {}
        b'>' => h.little = false,
        b'<' => h.little = true,
        b'!' => {
            let a = getnum(lua, f, i, MAX_ALIGN)?;
            if !a.is_power_of_two() {
                return Err(raise(lua, format!("alignment {a} is not a power of 2")));
            }
            h.align = a;
        }
        _ => {
            let opt = String::from_utf8_lossy(&[opt]).into_owned();
            return Err(arg_error(lua, 1, &format!("invalid format option '{opt}'")));
        }
    }
    Ok(())
}

/// C's conversions of a Lua number to the 64-bit value written: `(unsigned long)(long)n`
/// below zero, `(unsigned long)n` otherwise (x86-64's results out of range).
fn to_bits(n: f64) -> u64 {
    if n.is_nan() {
        1 << 63
    } else if n < 0.0 {
        if n >= i64::MIN as f64 { n as i64 as u64 } else { 1 << 63 }
    } else if n < 18446744073709551616.0 {
        n as u64
    } else {
        0
    }
}

fn put_int(out: &mut Vec<u8>, n: f64, size: usize, little: bool) {
    let v = to_bits(n);
    // Bytes past the eighth are zero (struct.c shifts a 64-bit value).
    let mut bytes: Vec<u8> = (0..size).map(|i| if i < 8 { (v >> (8 * i)) as u8 } else { 0 }).collect();
    if !little {
        bytes.reverse();
    }
    out.extend_from_slice(&bytes);
}

/// getinteger: shifts every byte into a 64-bit value (so the last eight count), then
/// extends the sign from bit `size * 8 - 1` (x86 takes shift counts mod 64).
fn get_int(b: &[u8], little: bool, signed: bool) -> f64 {
    let mut l: u64 = 0;
    let bytes: Box<dyn Iterator<Item = &u8>> = if little { Box::new(b.iter().rev()) } else { Box::new(b.iter()) };
    for &byte in bytes {
        l = (l << 8) | byte as u64;
    }
    if !signed {
        return l as f64;
    }
    let mask = u64::MAX << ((b.len() as u32 * 8).wrapping_sub(1) & 63);
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn pack(lua: &Lua, args: &MultiValue) -> mlua::Result<Vec<u8>> {
    let fmt = check_string(lua, args, 1)?;
    // b_pack pushes a nil to mark the arguments' end: one argument too few reads as nil.
    let mut args = args.clone();
    args.push_back(Value::Nil);
    let args = &args;
    let f = c_format(&fmt);
    let mut h = Header { little: true, align: 1 };
    let (mut i, mut arg, mut total) = (0usize, 2usize, 0u64);
    let mut out = Vec::new();
    while let Some(&opt) = f.get(i) {
        i += 1;
        let mut size = optsize(lua, opt, f, &mut i)?;
        let pad = gettoalign(total, &h, opt, size);
        total = total.wrapping_add(pad);
        out.resize(out.len() + pad as usize, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = check_number(lua, args, arg)?;
                arg += 1;
                put_int(&mut out, n, size, h.little);
            }
            b'x' => out.push(0),
            b'f' => {
                let v = (check_number(lua, args, arg)? as f32).to_le_bytes();
                arg += 1;
                out.extend(if h.little { v } else { f32::from_be_bytes(v).to_le_bytes() });
            }
            b'd' => {
                let v = check_number(lua, args, arg)?.to_le_bytes();
                arg += 1;
                out.extend(if h.little { v } else { f64::from_be_bytes(v).to_le_bytes() });
            }
            b'c' | b's' => {
                let s = check_string(lua, args, arg)?;
                arg += 1;
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // (struct.c reports the argument after the string.)
                    return Err(arg_error(lua, arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => controloptions(lua, opt, f, &mut i, &mut h)?,
        }
        total = total.wrapping_add(size as u64);
    }
    Ok(out)
}

fn unpack(lua: &Lua, args: &MultiValue) -> mlua::Result<MultiValue> {
    let fmt = check_string(lua, args, 1)?;
    let f = c_format(&fmt);
    let data = check_string(lua, args, 2)?;
    let ld = data.len() as u64;
    // size_t pos: an offset below 1 wraps around.
    let mut pos = opt_integer(lua, args, 3, 1)? as u64;
    if pos == 0 {
        return Err(arg_error(lua, 3, "offset must be 1 or greater"));
    }
    pos -= 1;
    let mut h = Header { little: true, align: 1 };
    let mut i = 0usize;
    let mut out: Vec<Value> = Vec::new();
    let fits = |pos: u64, size: u64| size <= ld && pos <= ld - size;
    while let Some(&opt) = f.get(i) {
        i += 1;
        let mut size = optsize(lua, opt, f, &mut i)? as u64;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size as usize));
        if !fits(pos, size) {
            return Err(arg_error(lua, 2, "data string too short"));
        }
        if args.len() + out.len() + 2 > MAX_C_STACK {
            return Err(raise(lua, "stack overflow (too many results)".into()));
        }
        let at = pos as usize;
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = get_int(&data[at..at + size as usize], h.little, opt.is_ascii_lowercase());
                out.push(Value::Number(n));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&data[at..at + 4]);
                let v = if h.little { f32::from_le_bytes(b) } else { f32::from_be_bytes(b) };
                out.push(Value::Number(v as f64));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&data[at..at + 8]);
                out.push(Value::Number(if h.little { f64::from_le_bytes(b) } else { f64::from_be_bytes(b) }));
            }
            b'c' => {
                if size == 0 {
                    // The length is the previous result, if Lua reads it as a number.
                    let prev = match out.pop() {
                        Some(v) => lua.coerce_number(v)?,
                        None => None,
                    };
                    let Some(n) = prev else {
                        return Err(raise(lua, "format 'c0' needs a previous size".into()));
                    };
                    size = to_bits(n);
                    if !fits(pos, size) {
                        return Err(arg_error(lua, 2, "data string too short"));
                    }
                }
                out.push(Value::String(lua.create_string(&data[at..at + size as usize])?));
            }
            b's' => {
                let Some(n) = data[at..].iter().position(|&c| c == 0) else {
                    return Err(raise(lua, "unfinished string in data".into()));
                };
                size = n as u64 + 1;
                out.push(Value::String(lua.create_string(&data[at..at + n])?));
            }
            _ => controloptions(lua, opt, f, &mut i, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(MultiValue::from_iter(out))
}

fn size(lua: &Lua, args: &MultiValue) -> mlua::Result<f64> {
    let fmt = check_string(lua, args, 1)?;
    let f = c_format(&fmt);
    let mut h = Header { little: true, align: 1 };
    let (mut i, mut pos) = (0usize, 0u64);
    while let Some(&opt) = f.get(i) {
        i += 1;
        let size = optsize(lua, opt, f, &mut i)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(arg_error(lua, 1, "option 's' has no fixed size"));
        } else if opt == b'c' && size == 0 {
            return Err(arg_error(lua, 1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            controloptions(lua, opt, f, &mut i, &mut h)?;
        }
        pos = pos.wrapping_add(size as u64);
    }
    Ok(pos as i64 as f64)
}

pub fn install(lua: &Lua, globals: &Table) -> mlua::Result<()> {
    let t = lua.create_table()?;
    t.raw_set("pack", lua.create_function(|lua, args: MultiValue| lua.create_string(pack(lua, &args)?))?)?;
    t.raw_set("unpack", lua.create_function(|lua, args: MultiValue| unpack(lua, &args))?)?;
    t.raw_set("size", lua.create_function(|lua, args: MultiValue| size(lua, &args))?)?;
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
