//! Blocking list operations with several real connections.

use std::time::{Duration, Instant};

use crate::util::ember;

#[test]
fn blpop_is_served_by_a_later_push_in_arrival_order() {
    let s = ember(&[]);
    let mut first = s.connect();
    let mut second = s.connect();
    let mut pusher = s.connect();
    first.send(&["BLPOP", "q", "0"]);
    // Make sure `first` is registered before `second` by waiting for INFO to count it.
    assert!(crate::util::eventually(Duration::from_secs(5), || pusher
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:1")));
    second.send(&["BLPOP", "q", "0"]);
    assert!(crate::util::eventually(Duration::from_secs(5), || pusher
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:2")));
    assert_eq!(pusher.cmd(&["RPUSH", "q", "one", "two"]).text(), ":2\r\n");
    assert_eq!(first.read().text(), "*2\r\n$1\r\nq\r\n$3\r\none\r\n");
    assert_eq!(second.read().text(), "*2\r\n$1\r\nq\r\n$3\r\ntwo\r\n");
    assert_eq!(pusher.cmd(&["EXISTS", "q"]).text(), ":0\r\n");
}

#[test]
fn blocking_timeout_replies_null_and_client_continues() {
    let s = ember(&[]);
    let mut c = s.connect();
    let t = Instant::now();
    c.send(&["BLPOP", "nothing", "0.2"]);
    c.send(&["PING"]);
    assert_eq!(c.read().text(), "*-1\r\n");
    assert!(t.elapsed() >= Duration::from_millis(180), "timed out too early: {:?}", t.elapsed());
    assert_eq!(c.read().text(), "+PONG\r\n", "pipelined command after the blocking one runs");
    let mut r3 = s.connect();
    r3.cmd(&["HELLO", "3"]);
    r3.send(&["BRPOPLPUSH", "nothing", "dst", "0.05"]);
    assert_eq!(r3.read().text(), "_\r\n");
}

#[test]
fn push_inside_multi_serves_after_exec_and_blmove_cascades() {
    let s = ember(&[]);
    let mut waiter = s.connect();
    let mut mover = s.connect();
    let mut c = s.connect();
    waiter.send(&["BLPOP", "final", "0"]);
    mover.send(&["BLMOVE", "start", "final", "LEFT", "RIGHT", "0"]);
    assert!(crate::util::eventually(Duration::from_secs(5), || c
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:2")));
    c.cmd(&["MULTI"]);
    c.cmd(&["RPUSH", "start", "x"]);
    c.cmd(&["LLEN", "start"]);
    // Inside the transaction the element is still there: waiters are served after EXEC.
    assert_eq!(c.cmd(&["EXEC"]).text(), "*2\r\n:1\r\n:1\r\n");
    assert_eq!(mover.read().text(), "$1\r\nx\r\n");
    assert_eq!(waiter.read().text(), "*2\r\n$5\r\nfinal\r\n$1\r\nx\r\n");
}

#[test]
fn client_unblock_and_disconnect_cleanup() {
    let s = ember(&[]);
    let mut b = s.connect();
    let mut c = s.connect();
    let id = b.cmd(&["CLIENT", "ID"]).as_str();
    b.send(&["BLPOP", "k", "0"]);
    assert!(crate::util::eventually(Duration::from_secs(5), || c
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:1")));
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]).text(), ":1\r\n");
    assert_eq!(b.read().text(), "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]).text(), ":0\r\n");
    b.send(&["BLPOP", "k", "0"]);
    assert!(crate::util::eventually(Duration::from_secs(5), || c
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:1")));
    drop(b);
    assert!(crate::util::eventually(Duration::from_secs(5), || c
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:0")));
    // The element pushed now is not lost to the dead client.
    c.cmd(&["RPUSH", "k", "v"]);
    assert_eq!(c.cmd(&["LLEN", "k"]).text(), ":1\r\n");
}

#[test]
fn wrong_type_key_keeps_waiter_blocked() {
    let s = ember(&[]);
    let mut b = s.connect();
    let mut c = s.connect();
    b.send(&["BLPOP", "k", "0"]);
    assert!(crate::util::eventually(Duration::from_secs(5), || c
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:1")));
    c.cmd(&["SET", "k", "string"]);
    c.cmd(&["DEL", "k"]);
    c.cmd(&["LPUSH", "k", "finally"]);
    assert_eq!(b.read().text(), "*2\r\n$1\r\nk\r\n$7\r\nfinally\r\n");
}

/// Waits until the server counts `n` blocked clients.
fn blocked(c: &mut crate::util::Conn, n: usize) {
    let want = format!("blocked_clients:{n}");
    assert!(crate::util::eventually(Duration::from_secs(5), || c.cmd(&["INFO", "clients"]).as_str().contains(&want)));
}

/// As in Redis, a ready key serves its waiters from that key: a waiter of another type
/// (BLPOP on what is now a sorted set) is passed over without ending the queue, a waiter
/// on several keys gets the one that became ready first (not the first it names), and a
/// stream reader waiting past the end does not hold up the one behind it.
#[test]
fn ready_keys_serve_their_own_waiters_in_order() {
    let s = ember(&[]);
    let (mut a, mut b, mut c) = (s.connect(), s.connect(), s.connect());
    let a_id = a.cmd(&["CLIENT", "ID"]).as_str();
    a.send(&["BLPOP", "z", "0"]);
    blocked(&mut c, 1);
    b.send(&["BZPOPMIN", "z", "0"]);
    blocked(&mut c, 2);
    assert_eq!(c.cmd(&["ZADD", "z", "1", "m"]).text(), ":1\r\n");
    assert_eq!(b.read().text(), "*3\r\n$1\r\nz\r\n$1\r\nm\r\n$1\r\n1\r\n");
    blocked(&mut c, 1);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &a_id]).text(), ":1\r\n");
    assert_eq!(a.read().text(), "*-1\r\n");

    a.send(&["BLPOP", "l1", "l2", "0"]);
    blocked(&mut c, 1);
    for cmd in [&["MULTI"][..], &["LPUSH", "l2", "x"], &["LPUSH", "l1", "y"]] {
        c.cmd(cmd);
    }
    c.cmd(&["EXEC"]);
    assert_eq!(a.read().text(), "*2\r\n$2\r\nl2\r\n$1\r\nx\r\n");

    c.cmd(&["XADD", "s", "5-0", "f", "1"]);
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "9-0"]);
    blocked(&mut c, 1);
    b.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "5-0"]);
    blocked(&mut c, 2);
    c.cmd(&["XADD", "s", "6-0", "f", "2"]);
    assert!(b.read().text().contains("6-0"));
    blocked(&mut c, 1);
}

/// A BRPOPLPUSH served while its destination holds another type gets WRONGTYPE (it used to
/// stay blocked for ever) and the element stays in the source, as in Redis.
#[test]
fn brpoplpush_into_a_wrong_type_destination_answers_wrongtype() {
    let s = ember(&[]);
    let mut b = s.connect();
    let mut c = s.connect();
    c.cmd(&["SET", "target", "nolist"]);
    b.send(&["BRPOPLPUSH", "src", "target", "0"]);
    assert!(crate::util::eventually(Duration::from_secs(5), || c
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:1")));
    c.cmd(&["RPUSH", "src", "a", "b", "c"]);
    assert!(b.read().text().starts_with("-WRONGTYPE "));
    assert_eq!(c.cmd(&["LRANGE", "src", "0", "-1"]).text(), "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(b.cmd(&["PING"]).text(), "+PONG\r\n");
}

/// CLIENT PAUSE WRITE: reads go on, writes (and EXECs and scripts that may write) wait and
/// count as blocked, keys do not expire (they only read as missing), and UNPAUSE serves the
/// waiting clients at once.
#[test]
fn client_pause_write_holds_writes_and_expiry_until_unpause() {
    let s = ember(&[]);
    let mut c = s.connect();
    let mut w = s.connect();
    let mut e = s.connect();
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["SET", "short", "x", "PX", "10"]);
    let expired_before = crate::util::info_field(&mut c, "stats", "expired_keys");
    assert_eq!(c.cmd(&["CLIENT", "PAUSE", "60000", "WRITE"]).text(), "+OK\r\n");
    w.send(&["SET", "k", "new"]);
    e.send(&["EVAL", "return 1", "0"]);
    assert!(crate::util::eventually(Duration::from_secs(5), || c
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:2")));
    assert_eq!(c.cmd(&["GET", "k"]).text(), "$1\r\nv\r\n");
    assert!(crate::util::eventually(Duration::from_secs(5), || c.cmd(&["GET", "short"]).text() == "$-1\r\n"));
    assert_eq!(crate::util::info_field(&mut c, "stats", "expired_keys"), expired_before);
    assert_eq!(c.cmd(&["CLIENT", "UNPAUSE"]).text(), "+OK\r\n");
    assert_eq!(w.read().text(), "+OK\r\n");
    assert_eq!(e.read().text(), ":1\r\n");
    assert_eq!(c.cmd(&["GET", "k"]).text(), "$3\r\nnew\r\n");
    c.cmd(&["GET", "short"]);
    assert_eq!(crate::util::info_field(&mut c, "stats", "expired_keys"), expired_before + 1);
}

/// A waiter served by a client's own push touches that client's WATCHed key and tells its
/// client-side cache, as in Redis (the pushing client is the one running a command then).
#[test]
fn a_waiter_served_by_my_push_breaks_my_watch_and_invalidates_my_cache() {
    let s = ember(&[]);
    let (mut a, mut b) = (s.connect(), s.connect());
    a.cmd(&["WATCH", "dst"]);
    b.send(&["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]);
    blocked(&mut a, 1);
    assert_eq!(a.cmd(&["LPUSH", "src", "x"]).text(), ":1\r\n");
    assert_eq!(b.read().text(), "$1\r\nx\r\n");
    a.cmd(&["MULTI"]);
    a.cmd(&["PING"]);
    assert_eq!(a.cmd(&["EXEC"]).text(), "*-1\r\n", "the served BLMOVE touched the watched key");

    a.cmd(&["HELLO", "3"]);
    a.cmd(&["CLIENT", "TRACKING", "ON"]);
    a.cmd(&["GET", "dst"]);
    b.send(&["BLMOVE", "src", "dst", "LEFT", "LEFT", "0"]);
    blocked(&mut a, 1);
    assert_eq!(a.cmd(&["LPUSH", "src", "y"]).text(), ":1\r\n");
    assert_eq!(a.read().text(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$3\r\ndst\r\n");
    assert_eq!(b.read().text(), "$1\r\ny\r\n");
}
