//! Lua cannot crash, corrupt or take over the server: each public Lua/Redis scripting attack
//! class as a regression test against a running server (the answer must be an error, the
//! server must live on, and no script may see another's changes), then a bounded, seeded
//! fuzz of generated and mutated scripts through EVAL and FUNCTION LOAD with a watchdog on
//! liveness and memory.

use std::time::{Duration, Instant};

use crate::util::{Conn, Proc, ember, eventually, info_field};

/// Runs `script` with EVAL and returns the raw reply.
fn eval(c: &mut Conn, script: &str) -> String {
    c.cmd(&["EVAL", script, "0"]).text()
}

fn assert_alive(s: &Proc) {
    let mut c = s.connect();
    assert_eq!(c.cmd(&["PING"]).text(), "+PONG\r\n", "the server must still answer");
}

const READONLY: &str = "Attempt to modify a readonly table";

#[test]
fn globals_libraries_and_metatables_are_read_only_for_every_write_path() {
    let s = ember(&[]);
    let mut c = s.connect();
    for attack in [
        "rawset(_G, 'leak', 1)",
        "leak = 1",
        "_G.leak = 1",
        "setmetatable(_G, {})",
        "getmetatable(_G).__index = function() return 1 end",
        "cjson.encode = function() return 'pwned' end",
        "rawset(cjson, 'encode', 1)",
        "table.insert(cjson, 'x')",
        "table.insert(_G, 'x')",
        "redis.call = function() end",
        "rawset(redis, 'call', 1)",
        "string.upper = function() return 'pwned' end",
        "getmetatable('').__index.upper = function() return 'pwned' end",
        "getmetatable('').__index = {}",
        "setmetatable(getmetatable(''), {})",
        "bit.band = nil",
        "cmsgpack.pack = nil",
        "struct.pack = nil",
        "math.floor = nil",
        "table.insert(string, 1)",
    ] {
        let r = eval(&mut c, attack);
        assert!(r.starts_with("-ERR ") && r.contains(READONLY), "{attack}: {r}");
    }
    // Nothing of it reached the next script.
    assert!(eval(&mut c, "return leak").contains("nonexistent global variable 'leak'"));
    assert_eq!(eval(&mut c, "return string.upper('a')"), "$1\r\nA\r\n");
    assert_eq!(eval(&mut c, "return ('b'):upper()"), "$1\r\nB\r\n");
    assert_eq!(eval(&mut c, "return cjson.encode({1})"), "$3\r\n[1]\r\n");
    // Tables of the script's own stay writable.
    assert_eq!(eval(&mut c, "local t = setmetatable({}, {}) t.x = 1 rawset(t, 'y', 2) return t.x + t.y"), ":3\r\n");
}

#[test]
fn bytecode_never_loads_and_extreme_unpack_ranges_are_refused() {
    let s = ember(&[]);
    let mut c = s.connect();
    let r = eval(&mut c, "local f, e = loadstring(string.dump(function() return 1 end)) return {tostring(f), e}");
    assert!(r.contains("unexpected symbol"), "{r}");
    let r = eval(&mut c, "local f, e = load(function() return nil end) return type(f)");
    assert_eq!(r, "$8\r\nfunction\r\n");
    for range in ["-2147483648, 2147483647", "1, 2147483647", "-2147483648, -1", "2147483647, 2147483647"] {
        let r = eval(&mut c, &format!("return {{unpack({{1, 2, 3}}, {range})}}"));
        assert!(r.contains("too many results to unpack") || r.starts_with('*'), "{range}: {r}");
    }
    assert_alive(&s);
}

/// CVE-2025-49844's recipe: memory pressure and full collections while the parser runs.
#[test]
fn collections_during_parsing_do_not_free_what_the_parser_uses() {
    let s = ember(&[]);
    let mut c = s.connect();
    let script = r#"
        local junk = {}
        for round = 1, 30 do
            for i = 1, 200 do junk[i] = string.rep('x', 100 + round + i) end
            local src = 'return ' .. string.rep('1 + ', 500) .. '1'
            local f = loadstring(src, string.rep('chunk', 50) .. round)
            collectgarbage('collect')
            assert(f() == 501)
            junk = {}
        end
        return 'ok'
    "#;
    assert_eq!(eval(&mut c, script), "$2\r\nok\r\n");
    assert_alive(&s);
}

#[test]
fn redis_api_arguments_out_of_range_are_errors() {
    let s = ember(&[]);
    let mut c = s.connect();
    for bad in [
        "redis.setresp(2^40)",
        "redis.setresp(-1)",
        "redis.setresp(4)",
        "redis.setresp('a')",
        "redis.setresp()",
        "redis.log(2^40, 'x')",
        "redis.log(-1, 'x')",
        "redis.log('a', 'x')",
        "redis.log(1)",
    ] {
        let r = eval(&mut c, bad);
        assert!(r.starts_with("-ERR "), "{bad}: {r}");
    }
    let r = eval(&mut c, "return bit.tohex(65535, -2147483648)");
    assert!(r.starts_with('$') || r.starts_with("-ERR "), "{r}");
    assert_alive(&s);
}

/// A tiny deterministic generator (xorshift), so a failing seed can be replayed by hand.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

/// Pieces of hostile and ordinary Lua; scripts are random sequences of them, sometimes cut
/// or with bytes flipped. No piece writes to the dataset, so every runaway script can be
/// killed with SCRIPT KILL / FUNCTION KILL.
const PIECES: &[&str] = &[
    "local t = {} for i = 1, 1000 do t[i] = i end",
    "local s = string.rep('a', 1e6)",
    "string.rep('x', 2^31)",
    "unpack({}, 1, 1e8)",
    "local t = {} setmetatable(t, {__index = function(t, k) return t[k] end}) return t.x",
    "local function f(n) return f(n + 1) end f(1)",
    "while true do end",
    "repeat until false",
    "for i = 1, 1e12 do end",
    "pcall(function() while 1 do end end)",
    "return redis.call('get', 'k')",
    "return redis.pcall('nosuch')",
    "return redis.call('lrange', 'l', 0, -1)",
    "return cjson.decode(string.rep('[', 100000))",
    "return cjson.encode(setmetatable({}, {}))",
    "return cmsgpack.unpack(string.rep('\\221', 100))",
    "return cmsgpack.pack(unpack({1, 2, 3}))",
    "return struct.unpack('i' .. 2^31, 'x')",
    "return struct.pack('>I16', 1)",
    "return bit.tohex(1, 2^31)",
    "return loadstring('return ' .. string.rep('(', 300) .. '1' .. string.rep(')', 300))",
    "return loadstring(string.rep('a=', 10000))",
    "return loadstring('\\27Lua')",
    "return load(function() return nil end)",
    "coroutine.wrap(function() coroutine.yield(1) end)()",
    "return select('#', unpack({}, 1, 200))",
    "return tostring(_G)",
    "return getmetatable('').__index",
    "rawset(_G, 'x', 1)",
    "collectgarbage('collect')",
    "return redis.sha1hex(string.rep('z', 10000))",
    "return redis.error_reply('boom')",
    "return {err = string.rep('e', 1000)}",
    "return string.format('%099d', 7)",
    "return string.find(string.rep('a', 5000), '.-.-.-b')",
    "return tostring(1e308 * 10)",
    "error({})",
    "error(nil)",
    "return ARGV",
    "return {1, {2, {3, {4}}}}",
];

fn generate(rng: &mut Rng) -> String {
    let n = 1 + rng.next() % 4;
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(rng.pick(PIECES));
        s.push('\n');
    }
    let mut bytes = s.into_bytes();
    match rng.next() % 6 {
        0 => {
            let cut = (rng.next() as usize) % (bytes.len() + 1);
            bytes.truncate(cut);
        }
        1 => {
            for _ in 0..3 {
                let i = (rng.next() as usize) % bytes.len().max(1);
                if let Some(b) = bytes.get_mut(i) {
                    *b = (rng.next() % 256) as u8;
                }
            }
        }
        _ => {}
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Sends `argv`, and while no reply comes, keeps asking `killer` to stop the running script.
fn run_with_watchdog(c: &mut Conn, killer: &mut Conn, argv: &[Vec<u8>], what: &str) {
    c.send_raw(&crate::util::encode(argv));
    c.r.get_ref().set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let started = Instant::now();
    loop {
        if !c.r.buffer().is_empty() {
            break;
        }
        let mut probe = [0u8; 1];
        match c.r.get_ref().peek(&mut probe) {
            Ok(0) => panic!("the server closed the connection on {what}"),
            Ok(_) => break,
            Err(_) => {
                assert!(started.elapsed() < Duration::from_secs(20), "no reply within 20 s to {what}");
                let _ = killer.cmd(&["SCRIPT", "KILL"]);
                let _ = killer.cmd(&["FUNCTION", "KILL"]);
            }
        }
    }
    c.r.get_ref().set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.read();
}

#[test]
fn fuzzed_scripts_and_libraries_never_kill_the_server_nor_grow_it_without_bound() {
    let seed: u64 = std::env::var("EMBER_LUA_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x5eed_1234);
    let rounds: usize = std::env::var("EMBER_LUA_FUZZ_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(150);
    let s = ember(&["--lua-time-limit", "20"]);
    let mut c = s.connect();
    let mut killer = s.connect();
    c.cmd(&["RPUSH", "l", "a", "b"]);
    let mut rng = Rng(seed | 1);
    for round in 0..rounds {
        let body = generate(&mut rng);
        let what = format!("seed {seed} round {round}: {body:?}");
        run_with_watchdog(&mut c, &mut killer, &[b"EVAL".to_vec(), body.clone().into_bytes(), b"0".to_vec()], &what);
        if round % 5 == 0 {
            let lib =
                format!("#!lua name=fuzz{round}\n{body}\nredis.register_function('f{round}', function() {body} end)");
            run_with_watchdog(
                &mut c,
                &mut killer,
                &[b"FUNCTION".to_vec(), b"LOAD".to_vec(), lib.into_bytes()],
                &format!("library of {what}"),
            );
            run_with_watchdog(
                &mut c,
                &mut killer,
                &[b"FCALL".to_vec(), format!("f{round}").into_bytes(), b"0".to_vec()],
                &format!("call of {what}"),
            );
        }
        if round % 25 == 0 {
            assert_eq!(c.cmd(&["PING"]).text(), "+PONG\r\n", "{what}");
        }
    }
    // Memory stays bounded: the Lua heap is capped and freed scripts are collected.
    assert!(eventually(Duration::from_secs(10), || {
        c.cmd(&["SCRIPT", "FLUSH"]);
        info_field(&mut c, "memory", "used_memory_rss") < 1_500 << 20
    }));
    assert_alive(&s);
}
