//! GETLEASE / SETLEASE (stampede protection, beyond Redis) with real connections: one
//! client fills a missing key while the others wait, stale tokens fill nothing, a lapsed
//! lease passes on, and a fill reaches the AOF as the SET it amounts to.

use std::time::{Duration, Instant};

use crate::util::{Conn, ember, eventually};

/// The token of a `[nil, token]` reply; panics on anything else.
fn token(c: &mut Conn, key: &str, lease_ms: &str) -> String {
    let r = c.cmd(&["GETLEASE", key, lease_ms]);
    assert_eq!(r.children().len(), 2, "{}", r.text());
    assert_eq!(r.children()[0].text(), "$-1\r\n", "{}", r.text());
    let t = r.children()[1].text();
    assert!(t.starts_with(':'), "no token: {t}");
    t.trim_start_matches(':').trim_end().to_string()
}

fn blocked(c: &mut Conn, n: usize) -> bool {
    eventually(Duration::from_secs(5), || {
        c.cmd(&["INFO", "clients"]).as_str().contains(&format!("blocked_clients:{n}"))
    })
}

#[test]
fn one_client_fills_a_missing_key_while_the_others_wait() {
    let s = ember(&[]);
    let mut filler = s.connect();
    let tok = token(&mut filler, "hot", "5000");
    let mut waiters: Vec<Conn> = (0..20).map(|_| s.connect()).collect();
    for w in &mut waiters {
        w.send(&["GETLEASE", "hot", "5000", "WAIT", "5000"]);
    }
    assert!(blocked(&mut filler, 20), "the other clients wait for the fill");
    assert_eq!(filler.cmd(&["SETLEASE", "hot", &tok, "loaded", "PX", "100000"]).text(), "+OK\r\n");
    for w in &mut waiters {
        assert_eq!(w.read().text(), "*2\r\n$6\r\nloaded\r\n$-1\r\n");
    }
    // Hits answer at once; the token was used up.
    assert_eq!(filler.cmd(&["GETLEASE", "hot", "5000"]).text(), "*2\r\n$6\r\nloaded\r\n$-1\r\n");
    assert_eq!(filler.cmd(&["SETLEASE", "hot", &tok, "again"]).text(), "$-1\r\n");
    let ttl: i64 = filler.cmd(&["PTTL", "hot"]).text().trim_start_matches(':').trim_end().parse().unwrap_or(-9);
    assert!(ttl > 90_000, "PX applies: {ttl}");
    // Without WAIT, a client that finds the lease taken is told so at once.
    let _ = token(&mut filler, "other", "5000");
    assert_eq!(waiters[0].cmd(&["GETLEASE", "other", "5000"]).text(), "*2\r\n$-1\r\n$-1\r\n");
}

#[test]
fn stale_tokens_fill_nothing_and_a_lapsed_lease_passes_on() {
    let s = ember(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    // Written meanwhile by someone else: the fill would be older, so it is dropped.
    let tok = token(&mut a, "k", "5000");
    assert_eq!(b.cmd(&["SET", "k", "fresh"]).text(), "+OK\r\n");
    assert_eq!(a.cmd(&["SETLEASE", "k", &tok, "stale"]).text(), "$-1\r\n");
    assert_eq!(a.cmd(&["GET", "k"]).text(), "$5\r\nfresh\r\n");
    // A waiter gives up when the lease lapses, not at its own longer WAIT...
    let tok = token(&mut a, "slow", "200");
    let t = Instant::now();
    assert_eq!(b.cmd(&["GETLEASE", "slow", "1000", "WAIT", "10000"]).text(), "*2\r\n$-1\r\n$-1\r\n");
    assert!(t.elapsed() < Duration::from_secs(5), "waited {:?}", t.elapsed());
    // ...and the next caller gets a lease of its own; the lapsed token fills nothing.
    let tok2 = token(&mut b, "slow", "5000");
    assert_ne!(tok, tok2);
    assert_eq!(a.cmd(&["SETLEASE", "slow", &tok, "late"]).text(), "$-1\r\n");
    assert_eq!(b.cmd(&["SETLEASE", "slow", &tok2, "v"]).text(), "+OK\r\n");
    // A DEL invalidates the lease (the holder may be loading data older than the DEL): the
    // holder's fill is dropped and a waiter wakes up with a lease of its own.
    let old = token(&mut a, "inv", "10000");
    b.send(&["GETLEASE", "inv", "10000", "WAIT", "10000"]);
    assert!(blocked(&mut a, 1));
    assert_eq!(a.cmd(&["DEL", "inv"]).text(), ":0\r\n");
    let r = b.read();
    assert_eq!(r.children()[0].text(), "$-1\r\n");
    assert!(r.children()[1].text().starts_with(':'), "the waiter takes the new lease: {}", r.text());
    assert_eq!(a.cmd(&["SETLEASE", "inv", &old, "old"]).text(), "$-1\r\n");
    // Bad arguments get errors and the connection carries on.
    assert!(a.cmd(&["GETLEASE", "x", "0"]).text().starts_with("-ERR"));
    assert!(a.cmd(&["GETLEASE", "x", "100", "WAIT", "-1"]).text().starts_with("-ERR"));
    assert!(a.cmd(&["GETLEASE", "x", "100", "NOWAIT", "1"]).text().starts_with("-ERR syntax"));
    assert!(a.cmd(&["SETLEASE", "x", "abc", "v"]).text().starts_with("-ERR"));
    assert!(a.cmd(&["SETLEASE", "x", "1", "v", "EX", "0"]).text().starts_with("-ERR"));
    assert_eq!(a.cmd(&["SET", "str", "1"]).text(), "+OK\r\n");
    assert_eq!(a.cmd(&["LPUSH", "list", "1"]).text(), ":1\r\n");
    assert!(a.cmd(&["GETLEASE", "list", "100"]).text().starts_with("-WRONGTYPE"));
    assert_eq!(a.cmd(&["PING"]).text(), "+PONG\r\n");
}

#[test]
fn leases_in_transactions_and_scripts_never_block() {
    let s = ember(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    let _ = token(&mut a, "m", "10000");
    assert_eq!(b.cmd(&["MULTI"]).text(), "+OK\r\n");
    assert_eq!(b.cmd(&["GETLEASE", "m", "1000", "WAIT", "10000"]).text(), "+QUEUED\r\n");
    assert_eq!(b.cmd(&["EXEC"]).text(), "*1\r\n*2\r\n$-1\r\n$-1\r\n");
    let r = b.cmd(&["EVAL", "return redis.call('GETLEASE', KEYS[1], 1000, 'WAIT', 10000)", "1", "m"]);
    assert_eq!(r.text(), "*2\r\n$-1\r\n$-1\r\n");
    // A script can take a lease and fill it.
    let r = b.cmd(&[
        "EVAL",
        "local t = redis.call('GETLEASE', KEYS[1], 1000)[2]; return redis.call('SETLEASE', KEYS[1], t, 'v')",
        "1",
        "s",
    ]);
    assert_eq!(r.text(), "+OK\r\n");
    assert_eq!(b.cmd(&["GET", "s"]).text(), "$1\r\nv\r\n");
}

#[test]
fn a_fill_is_logged_as_the_set_it_amounts_to() {
    let s = ember(&["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.connect();
    let tok = token(&mut c, "k", "5000");
    assert_eq!(c.cmd(&["SETLEASE", "k", &tok, "v", "EX", "1000"]).text(), "+OK\r\n");
    let tok = token(&mut c, "p", "5000");
    assert_eq!(c.cmd(&["SETLEASE", "p", &tok, "w"]).text(), "+OK\r\n");
    let mut log = Vec::new();
    for f in std::fs::read_dir(s.dir.join("appendonlydir")).expect("aof dir").flatten() {
        if f.file_name().to_string_lossy().contains(".incr.") {
            log.extend(std::fs::read(f.path()).expect("read aof"));
        }
    }
    let log = String::from_utf8_lossy(&log).to_uppercase();
    assert!(!log.contains("LEASE"), "leases are never logged: {log}");
    assert!(log.contains("PXAT"), "the deadline is logged as an absolute time: {log}");
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]).text(), "$1\r\nv\r\n");
    assert_eq!(c.cmd(&["GET", "p"]).text(), "$1\r\nw\r\n");
    let ttl: i64 = c.cmd(&["TTL", "k"]).text().trim_start_matches(':').trim_end().parse().unwrap_or(-9);
    assert!(ttl > 900, "{ttl}");
}

#[test]
fn a_stale_value_is_served_while_one_client_refreshes_it() {
    let s = ember(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    let tok = token(&mut a, "sw", "5000");
    assert_eq!(a.cmd(&["SETLEASE", "sw", &tok, "v1", "PX", "200", "STALE", "60000"]).text(), "+OK\r\n");
    let ttl: i64 = a.cmd(&["PTTL", "sw"]).text().trim_start_matches(':').trim_end().parse().unwrap_or(-9);
    assert!(ttl > 59_000, "the key lives for its fresh time and its stale window: {ttl}");
    // Once stale, the first reader gets the value and a lease to refresh it...
    let mut refresh = String::new();
    assert!(eventually(Duration::from_secs(5), || {
        let r = a.cmd(&["GETLEASE", "sw", "5000"]);
        assert_eq!(r.children()[0].text(), "$2\r\nv1\r\n");
        refresh = r.children()[1].text();
        refresh.starts_with(':')
    }));
    let refresh = refresh.trim_start_matches(':').trim_end().to_string();
    // ...the others the value at once, WAIT or not.
    assert_eq!(b.cmd(&["GETLEASE", "sw", "5000", "WAIT", "5000"]).text(), "*2\r\n$2\r\nv1\r\n$-1\r\n");
    assert_eq!(a.cmd(&["SETLEASE", "sw", &refresh, "v2", "EX", "100"]).text(), "+OK\r\n");
    assert_eq!(b.cmd(&["GETLEASE", "sw", "5000"]).text(), "*2\r\n$2\r\nv2\r\n$-1\r\n");
    // A key written by someone else since its stale fill is fresh.
    let tok = token(&mut a, "sw2", "5000");
    assert_eq!(a.cmd(&["SETLEASE", "sw2", &tok, "v1", "PX", "1", "STALE", "60000"]).text(), "+OK\r\n");
    assert_eq!(b.cmd(&["SET", "sw2", "mine", "EX", "100"]).text(), "+OK\r\n");
    assert_eq!(a.cmd(&["GETLEASE", "sw2", "5000"]).text(), "*2\r\n$4\r\nmine\r\n$-1\r\n");
    assert!(a.cmd(&["SETLEASE", "sw2", "1", "v", "STALE", "10"]).text().starts_with("-ERR STALE needs"));
    assert!(a.cmd(&["SETLEASE", "sw2", "1", "v", "PX", "10", "STALE"]).text().starts_with("-ERR syntax"));
}
