//! The hostile-argument fuzzer: every command of the table called with hostile numbers and
//! strings (0, -1, ±2^31, 2^53+1, ±2^63, 2^64, ±1e308, inf, nan, '', 1 MB, glob bombs,
//! option words, IDs) against Ember and a real redis-server side by side, each call on a
//! fresh connection with a one-second budget. Ember must stay alive and answer within the
//! budget wherever Redis does. Seeded and time-boxed: EMBER_FUZZ_SEED / EMBER_FUZZ_SECS
//! (default 90 s) for longer runs by hand.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::util::{Conn, Proc, Rng, ember, encode, redis};

/// Commands that would end the run or change the servers for every later call, not
/// something a hostile argument reveals: shutting down, pausing or sleeping the server,
/// rebinding or writing files, and DEBUG (its own tool for crashing on purpose).
const SKIP: &[&str] = &[
    "shutdown",
    "debug",
    "client|pause",
    "config|set",
    "config|rewrite",
    "save",
    "bgsave",
    "bgrewriteaof",
    "monitor",
    "function|restore",
    "restore",
    "failover",
    "replicaof",
    "slaveof",
    "sync",
    "psync",
];

fn hostile_values() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "0",
        "-1",
        "1",
        "2",
        "100",
        "2147483647",
        "-2147483648",
        "2147483648",
        "4294967296",
        "9007199254740993",
        "9223372036854775807",
        "-9223372036854775808",
        "9223372036854775808",
        "18446744073709551616",
        "-9223372036854770000",
        "1e308",
        "-1e308",
        "1e400",
        "inf",
        "-inf",
        "+inf",
        "nan",
        "0.5",
        "-0",
        "",
        " ",
        "*",
        "?",
        "[",
        "[a-",
        "\\",
        "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b",
        "*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*?*x",
        "k1",
        "k2",
        "k3",
        "k4",
        "k5",
        "f",
        "m",
        "COUNT",
        "LIMIT",
        "WITHSCORES",
        "WITHVALUES",
        "BY",
        "STORE",
        "GET",
        "MATCH",
        "TYPE",
        "STREAMS",
        "BLOCK",
        "GROUP",
        "MAXLEN",
        "~",
        "=",
        "$",
        ">",
        "+",
        "-",
        "(1",
        "[a",
        "0-0",
        "18446744073709551615-18446744073709551615",
        "1-1",
        "LEFT",
        "RIGHT",
        "EX",
        "PX",
        "NX",
        "XX",
        "GT",
        "LT",
        "CH",
        "INCR",
        "REV",
        "BYSCORE",
        "BYLEX",
        "u8",
        "i64",
        "u63",
        "#1",
        "OVERFLOW",
        "FAIL",
        "\u{ff}\u{fe}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .collect();
    v.push(vec![b'x'; 1 << 20]);
    v.push(b"return 1".to_vec());
    v.push(b"#!lua name=fz\nredis.register_function('fz', function() return 1 end)".to_vec());
    v
}

/// Reads one reply within `budget`: Some(bytes) when a complete reply came, None when the
/// time ran out or the connection closed first.
fn read_reply(s: &mut TcpStream, budget: Duration) -> Option<Vec<u8>> {
    let deadline = Instant::now() + budget;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        if let Some(n) = complete(&buf, 0) {
            buf.truncate(n);
            return Some(buf);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        s.set_read_timeout(Some(left)).ok()?;
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// The length of the complete RESP value at `at`, if the buffer holds one.
fn complete(b: &[u8], at: usize) -> Option<usize> {
    let end = at + b.get(at..)?.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&b[at + 1..end]).ok()?;
    let next = end + 2;
    match b.get(at)? {
        b'+' | b'-' | b':' | b'_' | b'#' | b',' | b'(' => Some(next),
        b'$' | b'=' | b'!' => {
            let n: i64 = line.parse().ok()?;
            if n < 0 {
                return Some(next);
            }
            let stop = next + n as usize + 2;
            (b.len() >= stop).then_some(stop)
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n: i64 = line.parse().ok()?;
            let items = if matches!(b[at], b'%' | b'|') { n * 2 } else { n };
            let mut pos = next;
            for _ in 0..items.max(0) {
                pos = complete(b, pos)?;
            }
            Some(pos)
        }
        _ => Some(next),
    }
}

/// Sends `argv` on a fresh connection and waits up to `budget` for the reply.
fn call(port: u16, argv: &[Vec<u8>], budget: Duration) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_nodelay(true).ok()?;
    s.write_all(&encode(argv)).ok()?;
    read_reply(&mut s, budget)
}

fn seed_data(port: u16) {
    let b = |s: &str| s.as_bytes().to_vec();
    for cmd in [
        vec![b("SET"), b("k1"), b("12345")],
        vec![b("RPUSH"), b("k2"), b("a"), b("b"), b("c")],
        vec![b("HSET"), b("k3"), b("f"), b("v"), b("g"), b("w")],
        vec![b("ZADD"), b("k4"), b("1"), b("m"), b("2"), b("n")],
        vec![b("XADD"), b("k5"), b("1-1"), b("f"), b("v")],
        vec![b("SADD"), b("k6"), b("1"), b("2"), b("x")],
    ] {
        call(port, &cmd, Duration::from_secs(5)).expect("seeding data");
    }
}

/// Every command of the table as the words that name it (`config get` for subcommands),
/// with its arity.
fn commands(port: u16) -> Vec<(Vec<Vec<u8>>, i64)> {
    let mut out = Vec::new();
    let reply = call(port, &[b"COMMAND".to_vec(), b"LIST".to_vec()], Duration::from_secs(5)).expect("COMMAND LIST");
    let text = String::from_utf8_lossy(&reply).into_owned();
    for name in text.lines().filter(|l| !l.starts_with(['*', '$'])) {
        if SKIP.contains(&name) {
            continue;
        }
        let info =
            call(port, &[b"COMMAND".to_vec(), b"INFO".to_vec(), name.as_bytes().to_vec()], Duration::from_secs(5))
                .expect("COMMAND INFO");
        let info = String::from_utf8_lossy(&info).into_owned();
        let arity: i64 = info.lines().find_map(|l| l.strip_prefix(':')).and_then(|a| a.parse().ok()).unwrap_or(-1);
        out.push((name.split('|').map(|w| w.as_bytes().to_vec()).collect(), arity));
    }
    out
}

#[test]
fn hostile_arguments_never_kill_or_stall_ember_where_redis_answers() {
    let seed: u64 = std::env::var("EMBER_FUZZ_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7_000_015);
    let secs: u64 = std::env::var("EMBER_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(90);
    let e: Proc = ember(&[]);
    let r: Proc = redis();
    seed_data(e.port);
    seed_data(r.port);
    let cmds = commands(e.port);
    assert!(cmds.len() > 200, "the command table is listed ({} commands)", cmds.len());
    let values = hostile_values();
    let mut rng = Rng(seed | 1);
    let started = Instant::now();
    let (mut calls, mut redis_answered) = (0u64, 0u64);
    let budget = Duration::from_secs(1);
    while started.elapsed() < Duration::from_secs(secs) {
        let (words, arity) = &cmds[rng.below(cmds.len())];
        let min = arity.unsigned_abs() as usize;
        let n = if *arity > 0 { min } else { min + rng.below(5) };
        let mut argv = words.clone();
        while argv.len() < n.max(words.len()) {
            argv.push(values[rng.below(values.len())].clone());
        }
        let what = format!(
            "seed {seed}: {:?}",
            argv.iter().map(|a| String::from_utf8_lossy(&a[..a.len().min(40)]).into_owned()).collect::<Vec<_>>()
        );
        // Ember gets 1 s beyond what Redis took: a command that itself waits (BLPOP k 1)
        // must not race the budget on a busy machine.
        let redis_started = Instant::now();
        let redis_reply = call(r.port, &argv, budget);
        let ember_reply = call(e.port, &argv, budget + redis_started.elapsed());
        calls += 1;
        if redis_reply.is_some() {
            redis_answered += 1;
            assert!(ember_reply.is_some(), "Ember did not answer within 1 s where Redis did: {what}");
        }
        if calls.is_multiple_of(50) {
            let pong = call(e.port, &[b"PING".to_vec()], Duration::from_secs(5));
            assert_eq!(pong.as_deref(), Some(&b"+PONG\r\n"[..]), "Ember is not answering after {what}");
            // Keep the data set small and the servers comparable.
            for port in [e.port, r.port] {
                call(port, &[b"FLUSHALL".to_vec()], Duration::from_secs(10));
                call(port, &[b"FUNCTION".to_vec(), b"FLUSH".to_vec()], Duration::from_secs(10));
                seed_data(port);
            }
        }
    }
    eprintln!("hostile fuzz: seed {seed}, {calls} calls, {redis_answered} answered by Redis in time");
    assert!(calls > 100 && redis_answered > 50, "the fuzzer ran ({calls} calls, {redis_answered} answered by Redis)");
    let pong = call(e.port, &[b"PING".to_vec()], Duration::from_secs(5));
    assert_eq!(pong.as_deref(), Some(&b"+PONG\r\n"[..]));
}

/// A random draw with a huge negative count stops at the client's hard output limit and
/// closes the client, as Redis does (it stops building the reply mid-run); without a limit
/// Ember refuses counts it could not hold (Redis would build the reply whatever it costs).
#[test]
fn huge_random_draws_stop_at_the_output_limit() {
    let e: Proc = ember(&[]);
    let mut c = Conn::new(e.port);
    c.cmd(&["HSET", "h", "a", "b"]);
    c.cmd(&["ZADD", "z", "1", "a"]);
    c.cmd(&["SADD", "s", "a"]);
    c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1000000 0 0"]);
    let huge = b"-999999999".to_vec();
    for cmd in ["HRANDFIELD", "ZRANDMEMBER", "SRANDMEMBER"] {
        let key = match cmd {
            "HRANDFIELD" => "h",
            "ZRANDMEMBER" => "z",
            _ => "s",
        };
        let argv = vec![cmd.as_bytes().to_vec(), key.as_bytes().to_vec(), huge.clone()];
        assert_eq!(call(e.port, &argv, Duration::from_secs(10)), None, "{cmd}: the client is closed");
        assert_eq!(c.cmd(&["PING"]).text(), "+PONG\r\n");
    }
    // Within the limit: the reply, in full.
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "-3"]).children().len(), 3);
    c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"]);
    assert_eq!(c.cmd(&["HRANDFIELD", "h", "-999999999"]).text(), "-ERR value is out of range\r\n");
}
