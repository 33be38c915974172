//! Behaviour that needs more than one connection or the passage of time, through the `redis`
//! crate as a real client library would use it.

use std::time::Duration;

use redis::Commands;

use crate::util::{ember, eventually};

#[test]
fn redis_crate_round_trip() {
    let s = ember(&[]);
    let mut c = s.client();
    let _: () = c.set("greeting", "hello").unwrap();
    let v: String = c.get("greeting").unwrap();
    assert_eq!(v, "hello");
    let n: i64 = c.incr("n", 5).unwrap();
    assert_eq!(n, 5);
    let missing: Option<String> = c.get("nope").unwrap();
    assert_eq!(missing, None);
    let vals: Vec<Option<String>> = redis::cmd("MGET").arg("greeting").arg("nope").query(&mut c).unwrap();
    assert_eq!(vals, vec![Some("hello".to_string()), None]);
}

#[test]
fn watch_is_broken_by_another_client() {
    let s = ember(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    a.cmd(&["SET", "balance", "10"]);
    assert_eq!(a.cmd(&["WATCH", "balance"]).text(), "+OK\r\n");
    assert_eq!(a.cmd(&["MULTI"]).text(), "+OK\r\n");
    assert_eq!(a.cmd(&["INCRBY", "balance", "5"]).text(), "+QUEUED\r\n");
    assert_eq!(b.cmd(&["SET", "balance", "100"]).text(), "+OK\r\n");
    assert_eq!(a.cmd(&["EXEC"]).text(), "*-1\r\n");
    assert_eq!(a.cmd(&["GET", "balance"]).as_str(), "100");
    // Without interference the transaction runs.
    a.cmd(&["WATCH", "balance"]);
    a.cmd(&["MULTI"]);
    a.cmd(&["INCRBY", "balance", "5"]);
    assert_eq!(a.cmd(&["EXEC"]).text(), "*1\r\n:105\r\n");
}

#[test]
fn watch_is_broken_by_expiry_flush_swapdb_and_rename() {
    let s = ember(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    for breaker in [
        vec!["FLUSHALL"],
        vec!["FLUSHDB"],
        vec!["SWAPDB", "0", "1"],
        vec!["RENAME", "k", "k2"],
        vec!["DEL", "k"],
        vec!["EXPIRE", "k", "100"],
    ] {
        a.cmd(&["SET", "k", "v"]);
        a.cmd(&["WATCH", "k"]);
        b.cmd(&breaker);
        a.cmd(&["MULTI"]);
        a.cmd(&["PING"]);
        assert_eq!(a.cmd(&["EXEC"]).text(), "*-1\r\n", "{breaker:?} must break WATCH");
        b.cmd(&["FLUSHALL"]);
    }
    // A key that expires while watched breaks the transaction.
    a.cmd(&["SET", "k", "v", "PX", "30"]);
    a.cmd(&["WATCH", "k"]);
    std::thread::sleep(Duration::from_millis(60));
    a.cmd(&["MULTI"]);
    a.cmd(&["PING"]);
    assert_eq!(a.cmd(&["EXEC"]).text(), "*-1\r\n");
}

#[test]
fn active_expiry_removes_keys_nobody_reads() {
    let s = ember(&["--hz", "100"]);
    let mut c = s.connect();
    // Long enough that loading 200 keys on a busy machine cannot outlast it.
    for i in 0..200 {
        c.cmd(&["SET", &format!("k{i}"), "v", "PX", "400"]);
    }
    c.cmd(&["SET", "persistent", "v"]);
    assert_eq!(c.cmd(&["DBSIZE"]).text(), ":201\r\n");
    // DBSIZE does not touch keys, so only the active cycle can bring it down.
    let mut last = String::new();
    let ok = eventually(Duration::from_secs(5), || {
        last = c.cmd(&["DBSIZE"]).text();
        last == ":1\r\n"
    });
    let info = c.cmd(&["INFO", "stats"]).as_str();
    assert!(ok, "DBSIZE {last} {}", c.cmd(&["INFO", "keyspace"]).as_str());
    assert!(info.contains("expired_keys:200"), "{info}");
}

#[test]
fn lazy_expiry_never_returns_an_expired_key() {
    let s = ember(&["--hz", "1"]);
    let mut c = s.connect();
    c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    c.cmd(&["SET", "k", "v", "PX", "20"]);
    std::thread::sleep(Duration::from_millis(40));
    assert_eq!(c.cmd(&["GET", "k"]).text(), "$-1\r\n");
    assert_eq!(c.cmd(&["EXISTS", "k"]).text(), ":0\r\n");
}

#[test]
fn client_kill_and_list() {
    let s = ember(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    b.cmd(&["CLIENT", "SETNAME", "victim"]);
    let id = b.cmd(&["CLIENT", "ID"]).as_str();
    let list = a.cmd(&["CLIENT", "LIST"]).as_str();
    assert!(list.contains("name=victim"), "{list}");
    assert_eq!(a.cmd(&["CLIENT", "KILL", "ID", &id]).text(), ":1\r\n");
    let (_, closed) = b.read_until_close(Duration::from_secs(5));
    assert!(closed);
    assert!(!a.cmd(&["CLIENT", "LIST"]).as_str().contains("name=victim"));
}

#[test]
fn requirepass_and_auth() {
    let s = ember(&["--requirepass", "s3cret"]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["GET", "k"]).text(), "-NOAUTH Authentication required.\r\n");
    assert_eq!(c.cmd(&["AUTH", "wrong"]).text(), "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_eq!(c.cmd(&["AUTH", "s3cret"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]).text(), "$-1\r\n");
    let mut d = s.connect();
    assert!(d.cmd(&["HELLO", "3", "AUTH", "default", "s3cret"]).text().starts_with('%'));
    assert_eq!(d.cmd(&["GET", "k"]).text(), "_\r\n");
}

#[test]
fn client_reply_off_and_skip() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.send(&["CLIENT", "REPLY", "OFF"]);
    c.send(&["SET", "a", "1"]);
    c.send(&["CLIENT", "REPLY", "ON"]);
    assert_eq!(c.read().text(), "+OK\r\n");
    c.send(&["CLIENT", "REPLY", "SKIP"]);
    c.send(&["SET", "b", "2"]);
    assert_eq!(c.cmd(&["GET", "b"]).as_str(), "2");
    assert_eq!(c.cmd(&["GET", "a"]).as_str(), "1");
}

#[test]
fn monitor_sees_other_clients_commands() {
    let s = ember(&[]);
    let mut m = s.connect();
    assert_eq!(m.cmd(&["MONITOR"]).text(), "+OK\r\n");
    let mut c = s.connect();
    c.cmd(&["SET", "watched", "va\"l"]);
    let line = m.read().text();
    assert!(line.contains(r#""SET" "watched" "va\"l""#), "{line}");
}

#[test]
fn idle_clients_time_out() {
    let s = ember(&["--timeout", "1", "--hz", "50"]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["PING"]).text(), "+PONG\r\n");
    let (_, closed) = c.read_until_close(Duration::from_secs(5));
    assert!(closed, "idle client must be closed after `timeout` seconds");
}

#[test]
fn client_pause_delays_commands() {
    let s = ember(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    let t = std::time::Instant::now();
    assert_eq!(a.cmd(&["CLIENT", "PAUSE", "300"]).text(), "+OK\r\n");
    assert_eq!(b.cmd(&["PING"]).text(), "+PONG\r\n");
    assert!(t.elapsed() >= Duration::from_millis(250), "PING answered during the pause");
}

/// MONITOR shows a command once it ran (EXEC after what it executed), a script before its
/// commands, and the script's commands as from "lua".
#[test]
fn monitor_orders_transactions_and_scripts_as_redis() {
    let s = crate::util::ember(&[]);
    let mut m = s.connect();
    let mut c = s.connect();
    assert_eq!(m.cmd(&["MONITOR"]).text(), "+OK\r\n");
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "foo", "bar"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["EVAL", "redis.call('set', KEYS[1], ARGV[1])", "1", "foo", "baz"]);
    let lines: Vec<String> = (0..5).map(|_| m.read().as_str().to_lowercase()).collect();
    assert!(lines[0].ends_with("\"multi\""), "{lines:?}");
    assert!(lines[1].ends_with("\"set\" \"foo\" \"bar\""), "{lines:?}");
    assert!(lines[2].ends_with("\"exec\""), "{lines:?}");
    assert!(lines[3].contains("\"eval\""), "{lines:?}");
    assert!(lines[4].contains("[0 lua] \"set\" \"foo\" \"baz\""), "{lines:?}");
}

/// A client that sends its commands and hangs up at once (`echo PING | nc`) is served and then
/// gone: the hang-up arrives with the data, and no later readiness event will report it.
#[test]
fn a_client_that_hangs_up_with_its_request_is_closed() {
    use std::io::{Read, Write};
    let p = crate::util::ember(&[]);
    let mut admin = p.connect();
    for _ in 0..20 {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", p.port)).unwrap();
        s.write_all(b"SET hangup 1\r\nPING\r\n").unwrap();
        s.shutdown(std::net::Shutdown::Write).unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"+OK\r\n+PONG\r\n");
    }
    // Only the admin connection is left.
    assert!(crate::util::eventually(std::time::Duration::from_secs(5), || {
        admin.cmd(&["INFO", "clients"]).text().contains("connected_clients:1\r\n")
    }));
}
