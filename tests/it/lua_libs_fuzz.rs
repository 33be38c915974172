//! The Lua libraries fuzzer: Ember's cjson, cmsgpack, struct and bit are its own code, not
//! Redis's C, so random Lua values (nested tables with holes, -0, nan, 2^63, binary strings),
//! JSON texts, MessagePack bytes and struct formats go through them in scripts sent to Ember
//! and to a real redis-server, and the replies must match byte for byte: encodings,
//! round trips (spelled out value by value), and error messages. Also the cjson settings,
//! the redis.* helpers, and the conversion of what a script returns (status, error, RESP3
//! tables) for RESP2 and RESP3 clients.
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

/// A value nested `n` tables deep around a random leaf, built in Lua.
fn nested(rng: &mut Rng) -> String {
    let n = rng.pick(&["15", "16", "17", "20", "999", "1000", "1001"]);
    let wrap = rng.pick(&["{v}", "{a = v}", "{v, 1}", "{1, v}"]);
    format!("(function() local v = {} for i = 1, {n} do v = {wrap} end return v end)()", value(rng, 2))
}

/// One call that changes a cjson setting, with arguments good and bad.
fn cjson_setting(rng: &mut Rng) -> String {
    let arg = |rng: &mut Rng| {
        rng.pick(&[
            "", "true", "false", "'on'", "'off'", "'null'", "'x'", "0", "1", "3", "14", "15", "-1", "2.5", "nil",
        ])
        .to_string()
    };
    match rng.below(6) {
        0 => {
            let args: Vec<String> = (0..rng.below(4)).map(|_| arg(rng)).collect();
            format!("cjson.encode_sparse_array({})", args.join(", "))
        }
        1 => format!("cjson.encode_number_precision({})", arg(rng)),
        2 => format!("cjson.encode_invalid_numbers({})", arg(rng)),
        3 => format!("cjson.decode_invalid_numbers({})", arg(rng)),
        4 => format!("cjson.{}({})", rng.pick(&["encode_max_depth", "decode_max_depth"]), arg(rng)),
        _ => format!("cjson.encode_keep_buffer({})", arg(rng)),
    }
}

/// Puts every cjson setting back to lua-cjson's defaults (they outlive a script).
const CJSON_DEFAULTS: &str = "cjson.encode_sparse_array(false, 2, 10) cjson.encode_number_precision(14) \
    cjson.encode_invalid_numbers(false) cjson.decode_invalid_numbers(true) cjson.encode_max_depth(1000) \
    cjson.decode_max_depth(1000) cjson.encode_keep_buffer(true) ";

/// A value a script returns, as Redis converts it to a reply: plain values, arrays with
/// holes, and the tagged tables (ok, err, double, big_number, verbatim_string, map, set).
fn returned(rng: &mut Rng, depth: usize) -> String {
    let text = |rng: &mut Rng| rng.pick(STRINGS).to_string();
    match rng.below(if depth >= 2 { 4 } else { 13 }) {
        0 => rng.pick(NUMBERS).to_string(),
        1 => text(rng),
        2 => rng.pick(&["true", "false", "nil", "cjson.null"]).to_string(),
        3 => format!("{{ok = {}}}", text(rng)),
        4 => format!("{{err = {}}}", text(rng)),
        5 => format!("{{double = {}}}", if rng.chance(80) { rng.pick(NUMBERS).to_string() } else { text(rng) }),
        6 => format!("{{big_number = {}}}", if rng.chance(80) { text(rng) } else { rng.pick(NUMBERS).to_string() }),
        7 => format!(
            "{{verbatim_string = {{format = {}, string = {}}}}}",
            rng.pick(&["'txt'", "'mkd'", "'x'", "1"]),
            text(rng)
        ),
        // One key: a map's order is the Lua table's.
        8 => format!("{{map = {{[{}] = {}}}}}", text(rng), returned(rng, depth + 1)),
        9 => format!("{{set = {{[{}] = true}}}}", text(rng)),
        10 => format!("{{err = {}, ok = {}}}", text(rng), text(rng)),
        _ => {
            let items: Vec<String> = (0..rng.below(4)).map(|_| returned(rng, depth + 1)).collect();
            format!("{{{}}}", items.join(", "))
        }
    }
}

/// One script: a library call on generated input, its result (or error) spelled out.
fn script(rng: &mut Rng) -> String {
    let v = value(rng, 0);
    let body = match rng.below(19) {
        17 | 18 => {
            let resp = if rng.chance(50) { "redis.setresp(3) " } else { "" };
            format!("{resp}return {}", returned(rng, 0))
        }
        12 => {
            let settings: Vec<String> = (0..1 + rng.below(3))
                .map(|_| format!("d({{pcall(function() return {} end)}})", cjson_setting(rng)))
                .collect();
            let call = if rng.chance(50) {
                format!("cjson.encode({v})")
            } else {
                format!("cjson.decode({})", json_literal(rng.pick::<&str>(JSON)))
            };
            format!(
                "local s = {{{}}} local r = d({{pcall(function() return {call} end)}}) {CJSON_DEFAULTS} \
                 return table.concat(s, ' ') .. ' -> ' .. r",
                settings.join(", ")
            )
        }
        13 => {
            let n = nested(rng);
            match rng.below(3) {
                0 => format!("return d({{pcall(cmsgpack.pack, {n})}})"),
                1 => format!("return d({{pcall(function() return cmsgpack.unpack(cmsgpack.pack({n})) end)}})"),
                _ => format!("return d({{pcall(cjson.encode, {n})}})"),
            }
        }
        14 => {
            let packed: Vec<String> = (0..1 + rng.below(4)).map(|_| value(rng, 1)).collect();
            let f = rng.pick(&["unpack_one", "unpack_limit"]);
            let extra: Vec<String> = (0..rng.below(3))
                .map(|_| rng.pick(&["0", "1", "2", "-1", "3", "100", "'2'", "nil", "1.5"]).to_string())
                .collect();
            let extra = if extra.is_empty() { String::new() } else { format!(", {}", extra.join(", ")) };
            let input =
                if rng.chance(20) { msgpack_bytes(rng) } else { format!("cmsgpack.pack({})", packed.join(", ")) };
            format!("return d({{pcall(cmsgpack.{f}, {input}{extra})}})")
        }
        15 => {
            let arg = if rng.chance(70) { rng.pick(STRINGS).to_string() } else { value(rng, 2) };
            let f = rng.pick(&["sha1hex", "status_reply", "error_reply"]);
            format!("return d({{pcall(redis.{f}, {arg})}})")
        }
        16 => {
            let arg = rng.pick(STRINGS);
            match rng.below(3) {
                0 => format!("return redis.status_reply({arg})"),
                1 => format!("return redis.error_reply({arg})"),
                _ => format!("return {{{}}}", ["redis.status_reply(", arg, "), redis.error_reply(", arg, ")"].concat()),
            }
        }
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
    // Half the scripts go to RESP3 clients.
    let (mut ce3, mut cr3) = (e.connect(), r.connect());
    ce3.cmd(&["HELLO", "3"]);
    cr3.cmd(&["HELLO", "3"]);
    let mut rng = Rng(seed | 1);
    let mut found = Vec::new();
    for _ in 0..n {
        let body = script(&mut rng);
        let argv = ["EVAL", body.as_str(), "0"];
        let (fe, fr) = if rng.chance(50) { (ce.cmd(&argv), cr.cmd(&argv)) } else { (ce3.cmd(&argv), cr3.cmd(&argv)) };
        if fe.bytes() != fr.bytes() && found.len() < 20 {
            let show = |b: Vec<u8>| String::from_utf8_lossy(&b[..b.len().min(400)]).escape_debug().to_string();
            found.push(format!("{body}\n  ember: {}\n  redis: {}", show(fe.bytes()), show(fr.bytes())));
        }
    }
    assert!(found.is_empty(), "seed {seed}: {} scripts differ from Redis's:\n{}", found.len(), found.join("\n"));
    // Still serving, one reply a script (a stray line break in a reply would shift them).
    assert_eq!(ce.cmd(&["PING"]).as_str(), "PONG");
    assert_eq!(ce3.cmd(&["PING"]).as_str(), "PONG");
}
