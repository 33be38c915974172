//! The Lua libraries fuzzer: Ember's cjson, cmsgpack, struct and bit are its own code, not
//! Redis's C, so random Lua values (nested tables with holes, -0, nan, 2^63, binary strings),
//! JSON texts, MessagePack bytes and struct formats go through them in scripts sent to Ember
//! and to a real redis-server, and the replies must match byte for byte: encodings,
//! round trips (spelled out value by value), and error messages.
//! Seeded: EMBER_LUA_SEED and EMBER_LUA_CASES replay or lengthen a run by hand.

use crate::util::{Rng, ember, redis};

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "0.1",
    "0.5",
    "-1.5",
    "3.14159265358979",
    "1e20",
    "1e300",
    "-1e-300",
    "1e-7",
    "2^53",
    "2^53+1",
    "2^63",
    "-2^63",
    "2^64",
    "1/0",
    "-1/0",
    "0/0",
    "127",
    "128",
    "-32",
    "-33",
    "-128",
    "-129",
    "255",
    "256",
    "65535",
    "65536",
    "-32768",
    "-32769",
    "4294967295",
    "4294967296",
    "-2147483648",
    "-2147483649",
    "123456789012",
    "1e15",
    "0.1+0.2",
];

const STRINGS: &[&str] = &[
    "''",
    "'a'",
    "'\\0'",
    "'\"q\"'",
    "'\\\\'",
    "'/'",
    "'\\n\\t\\r\\b\\f'",
    "'\\127'",
    "'\\128\\255'",
    "'\\195\\169'",
    "'\\31'",
    "'<>&'",
    "string.rep('x', 31)",
    "string.rep('y', 32)",
    "string.rep('z', 300)",
    "'12'",
    "'1e3'",
    "'0x10'",
];

/// JSON texts for cjson.decode: valid, odd and broken.
const JSON: &[&str] = &[
    "[1,2,3]",
    "{\"a\":1}",
    "\"\\u00e9\"",
    "1e400",
    "-1e400",
    "[1,[2,[3,[4]]]]",
    "{\"a\":[1,{\"b\":null}]}",
    "nan",
    "NaN",
    "Infinity",
    "-Infinity",
    "-0",
    "0x10",
    "[1,]",
    "{\"a\" 1}",
    "\"\\ud83d\\ude00\"",
    "\"\\uD800\"",
    "\"\\u0000\"",
    " [ 1 , 2 ] ",
    "true",
    "null",
    "[null,null]",
    "12345678901234567890",
    "1.5e-10",
    "\"abc",
    "[",
    "",
    "{\"1\":1,\"2\":2}",
    "{\"a\":1,\"a\":2}",
    "[1e2,1E2,1.0,-0.0]",
    "\"\\/\\b\\f\\n\\r\\t\"",
    "\"\\x\"",
    "01",
    "[1 2]",
    "{\"\":0}",
    "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
];

/// struct formats, good and bad.
const FORMATS: &[&str] = &[
    ">I2", "<i4", "b", "B", "h", "H", "l", "L", "d", "f", "s", "c5", "c0", ">i8", "!4 i2 i4", "<I3", "i17", "x", "Xi",
    "z", "i", "=I", "q", ">d<d", "c", "I0", "!3i", "!16d",
];

const BIT_OPS: &[&str] =
    &["band", "bor", "bxor", "lshift", "rshift", "arshift", "rol", "ror", "tohex", "bnot", "tobit", "bswap"];

/// A Lua expression for a random value; tables nest up to three deep.
fn value(rng: &mut Rng, depth: usize) -> String {
    match rng.below(if depth >= 3 { 3 } else { 6 }) {
        0 => rng.pick(NUMBERS).to_string(),
        1 => rng.pick(STRINGS).to_string(),
        2 => rng.pick(&["true", "false", "cjson.null"]).to_string(),
        3 => {
            let items: Vec<String> = (0..rng.below(5))
                .map(|_| if rng.chance(10) { "nil".to_string() } else { value(rng, depth + 1) })
                .collect();
            format!("{{{}}}", items.join(", "))
        }
        _ => {
            let keys = ["a", "b", "[1]", "[2]", "[3]", "[5]", "[-1]", "[0]", "[2.5]", "[1e20]", "['x y']", "['']"];
            let items: Vec<String> =
                (0..rng.below(4)).map(|_| format!("{} = {}", rng.pick(&keys), value(rng, depth + 1))).collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// A Lua string literal of random bytes, often starting like a MessagePack value.
fn msgpack_bytes(rng: &mut Rng) -> String {
    let heads: &[u8] = &[
        0xc0, 0xc2, 0xc3, 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xca, 0xcb, 0xd9, 0xda, 0xdb, 0xc4, 0xdc,
        0xdd, 0xde, 0xdf, 0x91, 0x92, 0x9f, 0x81, 0x8f, 0xa3, 0xbf, 0x7f, 0xe0, 0xff, 0xc1, 0xd4, 0xc7,
    ];
    let mut bytes: Vec<u8> = (0..1 + rng.below(3)).map(|_| *rng.pick(heads)).collect();
    for _ in 0..rng.below(10) {
        bytes.push(if rng.chance(50) { *rng.pick(heads) } else { rng.below(256) as u8 });
    }
    let codes: Vec<String> = bytes.iter().map(u8::to_string).collect();
    format!("string.char({})", codes.join(","))
}

fn json_literal(j: &str) -> String {
    format!("'{}'", j.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// Spells a value out: numbers to 17 digits, tables with sorted keys.
const SPELL_OUT: &str = "local function d(v) local t = type(v) \
    if t == 'number' then return string.format('%.17g', v) end \
    if t ~= 'table' then return t .. ':' .. tostring(v) end \
    local ks = {} for k in pairs(v) do ks[#ks + 1] = k end \
    table.sort(ks, function(a, b) return type(a) .. tostring(a) < type(b) .. tostring(b) end) \
    local o = {} for _, k in ipairs(ks) do o[#o + 1] = d(k) .. '=' .. d(v[k]) end \
    return '{' .. table.concat(o, ',') .. '}' end ";

/// One script: a library call on generated input, its result (or error) spelled out.
fn script(rng: &mut Rng) -> String {
    let v = value(rng, 0);
    let body = match rng.below(12) {
        0 => format!("return cjson.encode({v})"),
        1 => format!("return d({{pcall(cjson.encode, {v})}})"),
        2 => format!("return d({{pcall(function() return cjson.decode(cjson.encode({v})) end)}})"),
        3 => format!("return d({{pcall(cjson.decode, {})}})", json_literal(rng.pick::<&str>(JSON))),
        4 => format!("return cmsgpack.pack({v})"),
        5 => format!("return cmsgpack.pack({v}, {})", value(rng, 1)),
        6 => format!("return d({{cmsgpack.unpack(cmsgpack.pack({v}, {}))}})", value(rng, 2)),
        7 => format!("return d({{pcall(cmsgpack.unpack, {})}})", msgpack_bytes(rng)),
        8 => {
            let f = json_literal(rng.pick::<&str>(FORMATS));
            let args: Vec<String> = (0..rng.below(3)).map(|_| value(rng, 3)).collect();
            let args = if args.is_empty() { String::new() } else { format!(", {}", args.join(", ")) };
            format!("return d({{pcall(struct.pack, {f}{args})}})")
        }
        9 => {
            let f = json_literal(rng.pick::<&str>(FORMATS));
            format!(
                "return d({{pcall(struct.unpack, {f}, {}, {})}})",
                msgpack_bytes(rng),
                rng.pick(&["1", "2", "0", "-1", "100"])
            )
        }
        10 => format!("return d({{pcall(struct.size, {})}})", json_literal(rng.pick::<&str>(FORMATS))),
        _ => {
            let args: Vec<String> = (0..rng.below(3)).map(|_| value(rng, 3)).collect();
            format!("return d({{pcall(bit.{}, {})}})", rng.pick(BIT_OPS), args.join(", "))
        }
    };
    format!("{SPELL_OUT}{body}")
}

#[test]
fn lua_libraries_answer_exactly_like_redis() {
    let seed: u64 = std::env::var("EMBER_LUA_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(70_015);
    let n: usize = std::env::var("EMBER_LUA_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let (e, r) = (ember(&[]), redis());
    let (mut ce, mut cr) = (e.connect(), r.connect());
    let mut rng = Rng(seed | 1);
    let mut found = Vec::new();
    for _ in 0..n {
        let body = script(&mut rng);
        let argv = ["EVAL", body.as_str(), "0"];
        let (fe, fr) = (ce.cmd(&argv), cr.cmd(&argv));
        if fe.bytes() != fr.bytes() && found.len() < 20 {
            let show = |b: Vec<u8>| String::from_utf8_lossy(&b[..b.len().min(400)]).escape_debug().to_string();
            found.push(format!("{body}\n  ember: {}\n  redis: {}", show(fe.bytes()), show(fr.bytes())));
        }
    }
    // Still serving, and the scripts left nothing behind.
    assert_eq!(ce.cmd(&["PING"]).as_str(), "PONG");
    assert!(found.is_empty(), "seed {seed}: {} scripts differ from Redis's:\n{}", found.len(), found.join("\n"));
}
