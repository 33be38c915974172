//! Wire behaviour: pipelining, frames split across reads, inline commands, protocol errors,
//! binary safety and limits.

use std::time::Duration;

use crate::util::{Conn, ember, encode};

#[test]
fn ping_and_pipelining() {
    let s = ember(&[]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["PING"]).text(), "+PONG\r\n");
    // 1000 pipelined commands in one write, answered in order.
    let mut buf = Vec::new();
    for i in 0..1000 {
        buf.extend(encode(&[b"SET".to_vec(), format!("k{i}").into_bytes(), format!("v{i}").into_bytes()]));
        buf.extend(encode(&[b"GET".to_vec(), format!("k{i}").into_bytes()]));
    }
    c.send_raw(&buf);
    for i in 0..1000 {
        assert_eq!(c.read().text(), "+OK\r\n");
        assert_eq!(c.read().as_str(), format!("v{i}"));
    }
}

/// Pipelined member commands on collections stored as tables (whose members the prefetch
/// window loads ahead) and on compact ones answer as they would one by one.
#[test]
fn pipelined_member_commands() {
    let s = ember(&[]);
    let mut c = s.connect();
    let mut buf = Vec::new();
    let cmd = |parts: &[&str]| encode(&parts.iter().map(|p| p.as_bytes().to_vec()).collect::<Vec<_>>());
    for i in 0..600 {
        let (m, v) = (format!("m{i}"), format!("{i}"));
        buf.extend(cmd(&["HSET", "big", &m, &v]));
        buf.extend(cmd(&["SADD", "bigset", &m]));
        buf.extend(cmd(&["ZADD", "bigz", &v, &m]));
        buf.extend(cmd(&["HSET", "small", &format!("f{}", i % 3), &v]));
    }
    for i in 0..600 {
        let m = format!("m{i}");
        buf.extend(cmd(&["HGET", "big", &m]));
        buf.extend(cmd(&["SISMEMBER", "bigset", &m]));
        buf.extend(cmd(&["ZSCORE", "bigz", &m]));
        buf.extend(cmd(&["ZADD", "bigz", "XX", "CH", "-1", &m]));
    }
    c.send_raw(&buf);
    for i in 0..600 {
        assert_eq!(c.read().text(), ":1\r\n");
        assert_eq!(c.read().text(), ":1\r\n");
        assert_eq!(c.read().text(), ":1\r\n");
        assert_eq!(c.read().text(), if i < 3 { ":1\r\n" } else { ":0\r\n" });
    }
    for i in 0..600 {
        assert_eq!(c.read().as_str(), format!("{i}"));
        assert_eq!(c.read().text(), ":1\r\n");
        assert_eq!(c.read().as_str(), format!("{i}"));
        assert_eq!(c.read().text(), ":1\r\n", "ZADD XX CH of m{i}");
    }
    assert_eq!(c.cmd(&["ZSCORE", "bigz", "m7"]).as_str(), "-1");
    let enc = c.cmd(&["OBJECT", "ENCODING", "big"]);
    assert_eq!(enc.as_str(), "hashtable", "{:?}", enc.text());
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "bigset"]).as_str(), "hashtable");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "bigz"]).as_str(), "skiplist");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "small"]).as_str(), "listpack");
}

#[test]
fn frame_split_into_single_bytes() {
    let s = ember(&[]);
    let mut c = s.connect();
    let req = b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\0ue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n";
    for b in req.iter() {
        c.send_raw(&[*b]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(c.read().text(), "+OK\r\n");
    assert_eq!(c.read().bytes(), b"$5\r\nva\0ue\r\n");
}

#[test]
fn inline_commands() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.send_raw(b"PING\r\nset k \"a b\"\r\nget k\n\r\n");
    assert_eq!(c.read().text(), "+PONG\r\n");
    assert_eq!(c.read().text(), "+OK\r\n");
    assert_eq!(c.read().text(), "$3\r\na b\r\n");
}

#[test]
fn protocol_errors_reply_then_close() {
    let s = ember(&[]);
    let cases: &[(&[u8], &str)] = &[
        (b"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
        (b"*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
        (b"*1\r\nx3\r\n", "-ERR Protocol error: expected '$', got 'x'\r\n"),
        (b"set \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"),
        (b"PING\r\n*1\r\n$-1\r\n", "+PONG\r\n-ERR Protocol error: invalid bulk length\r\n"),
    ];
    for (input, expected) in cases {
        let mut c = s.connect();
        c.send_raw(input);
        let (out, closed) = c.read_until_close(Duration::from_secs(5));
        assert_eq!(String::from_utf8_lossy(&out), *expected, "input {:?}", String::from_utf8_lossy(input));
        assert!(closed, "connection must close after a protocol error");
    }
    // The server carries on.
    assert_eq!(s.connect().cmd(&["PING"]).text(), "+PONG\r\n");
}

#[test]
fn big_inline_request_is_refused() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.send_raw(&vec![b'a'; 70 * 1024]);
    let (out, closed) = c.read_until_close(Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&out), "-ERR Protocol error: too big inline request\r\n");
    assert!(closed);
}

#[test]
fn binary_safe_keys_and_large_values() {
    let s = ember(&[]);
    let mut c = s.connect();
    let big = vec![b'x'; 1 << 20];
    assert_eq!(c.cmd_bytes(&[b"SET".to_vec(), b"\0k\r\n".to_vec(), big.clone()]).text(), "+OK\r\n");
    let r = c.cmd_bytes(&[b"GET".to_vec(), b"\0k\r\n".to_vec()]).bytes();
    assert_eq!(&r[..11], b"$1048576\r\nx");
    assert_eq!(r.len(), (1 << 20) + 12);
    assert_eq!(c.cmd_bytes(&[b"SET".to_vec(), b"".to_vec(), b"".to_vec()]).text(), "+OK\r\n");
    assert_eq!(c.cmd_bytes(&[b"GET".to_vec(), b"".to_vec()]).text(), "$0\r\n\r\n");
}

#[test]
fn maxclients_is_enforced() {
    let s = ember(&["--maxclients", "2"]);
    let mut a = s.connect();
    let mut b = s.connect();
    assert_eq!(a.cmd(&["PING"]).text(), "+PONG\r\n");
    assert_eq!(b.cmd(&["PING"]).text(), "+PONG\r\n");
    let mut c = Conn::new(s.port);
    let (out, closed) = c.read_until_close(Duration::from_secs(5));
    assert_eq!(String::from_utf8_lossy(&out), "-ERR max number of clients reached\r\n");
    assert!(closed);
}

#[test]
fn quit_closes_after_ok() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.send(&["QUIT"]);
    let (out, closed) = c.read_until_close(Duration::from_secs(5));
    assert_eq!(out, b"+OK\r\n");
    assert!(closed);
}

#[test]
fn query_buffer_limit_closes_the_client() {
    let s = ember(&["--client-query-buffer-limit", "1mb"]);
    let mut c = s.connect();
    // A bulk announced at 2 MB exceeds the 1 MB query buffer limit while it is being read.
    c.send_raw(b"*2\r\n$3\r\nGET\r\n$2097152\r\n");
    let chunk = vec![b'a'; 64 * 1024];
    let mut closed = false;
    for _ in 0..40 {
        if std::io::Write::write_all(c.r.get_mut(), &chunk).is_err() {
            closed = true;
            break;
        }
    }
    if !closed {
        let (_, c2) = c.read_until_close(Duration::from_secs(5));
        closed = c2;
    }
    assert!(closed, "client over the query buffer limit must be disconnected");
    assert_eq!(s.connect().cmd(&["PING"]).text(), "+PONG\r\n");
}

/// A request split across reads, after a whole one whose key sat at the same place in the
/// read buffer: the key must be hashed afresh, not given the earlier request's hash (the
/// read buffer is reused from its front once consumed).
#[test]
fn split_request_after_a_whole_one_finds_its_key() {
    let s = ember(&[]);
    let mut c = s.connect();
    let mut other = s.connect();
    let id = c.cmd(&["CLIENT", "ID"]).as_str();
    assert_eq!(c.cmd(&["SET", "k1", "a"]).text(), "+OK\r\n");
    // The first part of `SET k2 b`: its key starts where k1's did.
    c.send_raw(b"*3\r\n$3\r\nSET\r\n$2\r\nk");
    let read = crate::util::eventually(Duration::from_secs(5), || {
        let list = other.cmd(&["CLIENT", "LIST", "ID", &id]).as_str();
        list.contains("qbuf=18 ")
    });
    assert!(read, "the server did not read the first part");
    c.send_raw(b"2\r\n$1\r\nb\r\n");
    assert_eq!(c.read().text(), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k2"]).as_str(), "b");
    assert_eq!(other.cmd(&["GET", "k2"]).as_str(), "b");
    assert_eq!(c.cmd(&["DBSIZE"]).text(), ":2\r\n");
}
