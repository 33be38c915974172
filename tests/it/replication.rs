//! Replication: SYNC's stream as Redis's own tests read it, a real redis-server 7.0
//! replicating from Ember (REPLICAOF, PSYNC, the RDB image, the write stream), and Ember
//! replicating from redis-server and from Ember.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::util::{Conn, ember, eventually, info_field, redis_with};

/// A raw SYNC connection, past the RDB image.
fn attach(port: u16) -> BufReader<TcpStream> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"SYNC\r\n").unwrap();
    let mut r = BufReader::new(s);
    let mut line = String::new();
    // Newlines are the keep-alives of a master preparing the image.
    while line.trim().is_empty() {
        line.clear();
        r.read_line(&mut line).unwrap();
    }
    assert!(line.starts_with('$'), "SYNC answered {line:?}");
    let len: usize = line[1..].trim().parse().unwrap();
    let mut image = vec![0; len];
    r.read_exact(&mut image).unwrap();
    assert!(image.starts_with(b"REDIS0010"), "not an RDB image");
    r
}

/// One command of the stream, lower-cased name first.
fn next_command(r: &mut BufReader<TcpStream>) -> Vec<String> {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let n: usize = line.trim().trim_start_matches('*').parse().unwrap_or_else(|_| panic!("bad header {line:?}"));
    let mut out = Vec::new();
    for i in 0..n {
        line.clear();
        r.read_line(&mut line).unwrap();
        let len: usize = line.trim().trim_start_matches('$').parse().unwrap();
        let mut arg = vec![0; len + 2];
        r.read_exact(&mut arg).unwrap();
        arg.truncate(len);
        let a = String::from_utf8_lossy(&arg).into_owned();
        out.push(if i == 0 { a.to_lowercase() } else { a });
    }
    out
}

fn expect_stream(r: &mut BufReader<TcpStream>, expected: &[&[&str]]) {
    for want in expected {
        let got = next_command(r);
        assert_eq!(got, want.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
}

#[test]
fn sync_streams_writes_as_redis_7_propagates_them() {
    let srv = ember(&[]);
    let mut c = Conn::new(srv.port);
    c.cmd(&["SET", "before", "1"]);
    let mut r = attach(srv.port);
    // A transaction of one write is not wrapped; reads are not propagated.
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["EXEC"]);
    // Several writes, in several databases, are wrapped; SELECT precedes MULTI.
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "b", "2"]);
    c.cmd(&["SELECT", "2"]);
    c.cmd(&["SET", "c", "3"]);
    c.cmd(&["EXEC"]);
    // A script's effects, not the script; a relative TTL as an absolute one.
    c.cmd(&["EVAL", "redis.call('incr','n') redis.call('incr','n')", "0"]);
    c.cmd(&["GETDEL", "c"]);
    c.cmd(&["PUBLISH", "ch", "hello"]);
    c.cmd(&["FLUSHDB"]);
    expect_stream(
        &mut r,
        &[
            &["select", "0"],
            &["set", "a", "1"],
            &["multi"],
            &["set", "b", "2"],
            &["select", "2"],
            &["set", "c", "3"],
            &["exec"],
            &["multi"],
            &["incr", "n"],
            &["incr", "n"],
            &["exec"],
            &["del", "c"],
            &["publish", "ch", "hello"],
            &["flushdb"],
        ],
    );
    let list = c.cmd(&["CLIENT", "LIST"]).text();
    assert!(list.contains("flags=S"), "the replica is flagged S: {list}");
    assert_eq!(crate::util::info_field(&mut c, "replication", "connected_slaves"), 1);
}

/// Commands Redis 7.0 propagates as something else (blocking pops as pops, GETSET as SET,
/// SET .. GET without GET): the same commands on redis-server and on Ember give the same
/// stream, including a blocked client served later.
#[test]
fn rewritten_commands_propagate_as_on_redis() {
    let redis = redis_with(&["--enable-debug-command", "yes"]);
    let ember = ember(&[]);
    let mut streams = Vec::new();
    for port in [redis.port, ember.port] {
        let mut c = Conn::new(port);
        let mut r = attach(port);
        c.cmd(&["RPUSH", "l", "a", "b", "c", "d", "e", "f"]);
        c.cmd(&["ZADD", "z", "1", "x", "2", "y", "3", "w", "4", "v"]);
        c.cmd(&["SET", "s", "1"]);
        c.cmd(&["GETSET", "s", "2"]);
        c.cmd(&["SET", "s", "3", "GET"]);
        c.cmd(&["SET", "s", "4", "get", "GET"]);
        c.cmd(&["BLPOP", "nothing", "l", "1"]);
        c.cmd(&["BRPOP", "l", "1"]);
        c.cmd(&["BLMOVE", "l", "m", "LEFT", "RIGHT", "1"]);
        c.cmd(&["BRPOPLPUSH", "l", "m", "1"]);
        c.cmd(&["BLMPOP", "1", "1", "l", "LEFT", "COUNT", "5"]);
        c.cmd(&["BZPOPMIN", "z", "1"]);
        c.cmd(&["BZPOPMAX", "z", "1"]);
        c.cmd(&["BZMPOP", "1", "1", "z", "MIN", "COUNT", "9"]);
        // An approximate trim goes as the exact one; emptying the stream, at the highest ID.
        c.cmd(&["XADD", "st", "1-0", "f", "v"]);
        c.cmd(&["XADD", "st", "2-0", "f", "v"]);
        c.cmd(&["XTRIM", "st", "MINID", "~", "10"]);
        // Blocked, then served by a push.
        let mut blocked = Conn::new(port);
        blocked.send(&["BLMOVE", "q", "m", "RIGHT", "LEFT", "0"]);
        assert!(
            eventually(Duration::from_secs(5), || crate::util::info_field(&mut c, "clients", "blocked_clients") == 1)
        );
        c.cmd(&["LPUSH", "q", "1"]);
        assert_eq!(blocked.read().as_str(), "1");
        c.cmd(&["SET", "end", "1"]);
        let mut got = Vec::new();
        loop {
            let cmd = next_command(&mut r);
            let end = cmd == ["set", "end", "1"];
            if cmd[0] != "ping" {
                got.push(cmd);
            }
            if end {
                break;
            }
        }
        streams.push(got);
    }
    assert_eq!(streams[1], streams[0], "Ember's stream (left) differs from Redis's (right)");
}

#[test]
fn a_redis_replica_follows_ember() {
    let srv = ember(&[]);
    let mut c = Conn::new(srv.port);
    c.cmd(&["SET", "before", "in the image"]);
    c.cmd(&["RPUSH", "list", "a", "b", "c"]);
    let port = srv.port.to_string();
    let replica = redis_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port]);
    let mut rc = Conn::new(replica.port);
    assert!(
        eventually(Duration::from_secs(20), || rc
            .cmd(&["INFO", "replication"])
            .text()
            .contains("master_link_status:up")),
        "redis-server never completed its sync with ember"
    );
    c.cmd(&["SET", "after", "streamed", "EX", "1000"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["LPOP", "list"]);
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["ZADD", "z", "1", "m"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["EVAL", "redis.call('set','s1','x') redis.call('expire','s1',500)", "0"]);
    c.cmd(&["SELECT", "0"]);
    // A lease fill reaches redis-server as the SET it amounts to (it knows no SETLEASE).
    let lease = c.cmd(&["GETLEASE", "leased", "5000"]);
    let tok = lease.children()[1].text().trim_start_matches(':').trim_end().to_string();
    assert_eq!(c.cmd(&["SETLEASE", "leased", &tok, "filled", "EX", "1000"]).text(), "+OK\r\n");
    let want = c.cmd(&["DEBUG", "DIGEST"]).text();
    assert!(
        eventually(Duration::from_secs(20), || rc.cmd(&["DEBUG", "DIGEST"]).text() == want),
        "replica's digest {} never matched ember's {want}",
        rc.cmd(&["DEBUG", "DIGEST"]).text()
    );
    let ttl = rc.cmd(&["TTL", "after"]).as_str();
    assert!(ttl.parse::<i64>().is_ok_and(|t| t > 900), "TTL on the replica: {ttl}");
    assert_eq!(rc.cmd(&["GET", "leased"]).text(), "$6\r\nfilled\r\n");
    let ttl = rc.cmd(&["TTL", "leased"]).as_str();
    assert!(ttl.parse::<i64>().is_ok_and(|t| t > 900), "TTL of the fill on the replica: {ttl}");
    // Ember's WAIT counts the redis-server replica's acknowledgements.
    c.cmd(&["SET", "acked", "1"]);
    assert_eq!(c.cmd(&["WAIT", "1", "5000"]).text(), ":1\r\n");
    // min-replicas-to-write counts replicas that acknowledged within the lag.
    c.cmd(&["CONFIG", "SET", "min-replicas-to-write", "1"]);
    assert_eq!(c.cmd(&["SET", "guarded", "1"]).text(), "+OK\r\n");
    c.cmd(&["CONFIG", "SET", "min-replicas-to-write", "2"]);
    assert_eq!(c.cmd(&["SET", "guarded", "2"]).text(), "-NOREPLICAS Not enough good replicas to write.\r\n");
    c.cmd(&["CONFIG", "SET", "min-replicas-to-write", "0"]);
    // Replication traffic is counted apart from clients', on both sides.
    let sent = crate::util::info_field(&mut c, "stats", "total_net_repl_output_bytes");
    let read = crate::util::info_field(&mut rc, "stats", "total_net_repl_input_bytes");
    assert!(sent > 0 && read > 0, "ember sent {sent}, redis-server read {read}");
}

#[test]
fn deadlines_and_computed_values_are_propagated_as_absolutes() {
    let srv = ember(&[]);
    let mut c = Conn::new(srv.port);
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    let mut r = attach(srv.port);
    c.cmd(&["SET", "k", "v", "EX", "100"]);
    c.cmd(&["EXPIRE", "k", "200"]);
    c.cmd(&["INCRBYFLOAT", "f", "1.5"]);
    c.cmd(&["LMPOP", "1", "l", "LEFT", "COUNT", "10"]);
    let now_ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let set = next_command(&mut r);
    assert_eq!(set[0], "select");
    let set = next_command(&mut r);
    assert_eq!(&set[..4], ["set", "k", "v", "PXAT"]);
    let at: i64 = set[4].parse().unwrap();
    assert!((at - (now_ms + 100_000)).abs() < 5_000, "SET EX 100 became PXAT {at} (now {now_ms})");
    let exp = next_command(&mut r);
    assert_eq!(&exp[..2], ["pexpireat", "k"]);
    let at: i64 = exp[2].parse().unwrap();
    assert!((at - (now_ms + 200_000)).abs() < 5_000, "EXPIRE 200 became PEXPIREAT {at}");
    expect_stream(&mut r, &[&["set", "f", "1.5", "KEEPTTL"], &["lpop", "l", "3"]]);
    // A killed replica is gone from INFO.
    assert_eq!(c.cmd(&["CLIENT", "KILL", "TYPE", "replica"]).as_str(), "1");
    assert!(
        eventually(Duration::from_secs(5), || crate::util::info_field(&mut c, "replication", "connected_slaves") == 0)
    );
}

/// Writes of every kind on `c` (a master), in several databases, in a transaction and a
/// script, with deadlines.
fn stream_workload(c: &mut Conn) {
    c.cmd(&["SET", "after", "streamed", "EX", "1000"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["LPOP", "list"]);
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["ZADD", "z", "1", "m"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["EVAL", "redis.call('set','s1','x') redis.call('expire','s1',500)", "0"]);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["INCRBYFLOAT", "f", "1.5"]);
    c.cmd(&["XADD", "st", "*", "a", "1"]);
    c.cmd(&["XADD", "st", "*", "a", "2"]);
    // Propagated as `MINID = 0 LIMIT 5`: a replica obeys the LIMIT a client may not send.
    c.cmd(&["XADD", "st2", "MINID", "~", "0", "LIMIT", "5", "1", "a", "1"]);
    c.cmd(&["XGROUP", "CREATE", "st", "g", "0"]);
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "st", ">"]);
}

/// DEBUG DIGEST with a group's position and read counter (the digest leaves them out).
fn digest_with_group(c: &mut Conn) -> String {
    c.cmd(&["DEBUG", "DIGEST"]).text() + &c.cmd(&["XINFO", "GROUPS", "st"]).text()
}

/// REPLICAOF on Ember against `master_port`: the image, then the stream, digest for digest;
/// clients cannot write; REPLICAOF NO ONE makes it a master again with the data.
fn ember_follows(master_port: u16, replica_args: &[&str]) {
    let mut c = Conn::new(master_port);
    c.cmd(&["SET", "before", "in the image"]);
    c.cmd(&["RPUSH", "list", "a", "b", "c"]);
    let replica = ember(replica_args);
    let mut rc = Conn::new(replica.port);
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &master_port.to_string()]).text(), "+OK\r\n");
    assert!(
        eventually(Duration::from_secs(20), || rc
            .cmd(&["INFO", "replication"])
            .text()
            .contains("master_link_status:up")),
        "ember never completed its sync: {}",
        rc.cmd(&["INFO", "replication"]).as_str()
    );
    assert_eq!(rc.cmd(&["GET", "before"]).as_str(), "in the image");
    // A reader blocked on the replica wakes with the master's write.
    let mut reader = Conn::new(replica.port);
    reader.send(&["XREAD", "BLOCK", "0", "STREAMS", "wake", "$"]);
    let blocked = eventually(Duration::from_secs(5), || info_field(&mut rc, "clients", "blocked_clients") == 1);
    assert!(blocked, "XREAD did not block on the replica");
    c.cmd(&["XADD", "wake", "1-1", "f", "v"]);
    assert!(reader.read().text().contains("1-1"), "the replica's blocked XREAD missed the master's XADD");
    stream_workload(&mut c);
    let want = digest_with_group(&mut c);
    assert!(
        eventually(Duration::from_secs(20), || digest_with_group(&mut rc) == want),
        "replica's digest {} never matched the master's {want}",
        digest_with_group(&mut rc)
    );
    // WAIT on the master counts Ember's acknowledgement; asking for more replicas than
    // there are waits out the timeout and answers how many acknowledged.
    assert_eq!(c.cmd(&["WAIT", "1", "5000"]).text(), ":1\r\n");
    c.cmd(&["SET", "w", "1"]);
    assert_eq!(c.cmd(&["WAIT", "2", "300"]).text(), ":1\r\n");
    let role = rc.cmd(&["ROLE"]);
    assert_eq!(role.children()[0].as_str(), "slave");
    assert_eq!(role.children()[3].as_str(), "connected");
    assert_eq!(rc.cmd(&["SET", "x", "1"]).text(), "-READONLY You can't write against a read only replica.\r\n");
    assert_eq!(
        rc.cmd(&["REPLICAOF", "127.0.0.1", &master_port.to_string()]).text(),
        "+OK Already connected to specified master\r\n"
    );
    assert_eq!(rc.cmd(&["REPLICAOF", "NO", "ONE"]).text(), "+OK\r\n");
    assert_eq!(rc.cmd(&["SET", "x", "1"]).text(), "+OK\r\n");
    assert_eq!(rc.cmd(&["ROLE"]).children()[0].as_str(), "master");
    assert_eq!(rc.cmd(&["GET", "before"]).as_str(), "in the image");
}

/// Redis's defaults: a diskless master (after a 5 s delay), the image received to disk.
#[test]
fn ember_follows_a_redis_master() {
    let master = redis_with(&["--enable-debug-command", "yes"]);
    ember_follows(master.port, &[]);
}

#[test]
fn ember_follows_a_redis_master_loading_from_the_socket() {
    let master = redis_with(&["--enable-debug-command", "yes", "--repl-diskless-sync-delay", "0"]);
    ember_follows(master.port, &["--repl-diskless-load", "swapdb"]);
}

#[test]
fn ember_follows_a_redis_master_with_a_disk_image() {
    let master = redis_with(&["--enable-debug-command", "yes", "--repl-diskless-sync", "no"]);
    ember_follows(master.port, &[]);
}

#[test]
fn ember_follows_an_ember_master() {
    let master = ember(&["--repl-diskless-sync-delay", "0"]);
    ember_follows(master.port, &[]);
}

#[test]
fn ember_follows_an_ember_master_with_a_disk_image_loading_from_the_socket() {
    let master = ember(&["--repl-diskless-sync", "no"]);
    ember_follows(master.port, &["--repl-diskless-load", "swapdb"]);
}

/// `--replicaof host port` at start-up, and CONFIG GET shows it under both names; a bad
/// port is refused as Redis refuses it.
#[test]
fn replicaof_directive_at_start_up() {
    let master = ember(&[]);
    let mut c = Conn::new(master.port);
    c.cmd(&["SET", "k", "v"]);
    let port = master.port.to_string();
    let replica = ember(&["--replicaof", "127.0.0.1", &port]);
    let mut rc = Conn::new(replica.port);
    assert!(eventually(Duration::from_secs(20), || rc.cmd(&["GET", "k"]).as_str() == "v"));
    let got = rc.cmd(&["CONFIG", "GET", "*of"]);
    let words: Vec<String> = got.children().iter().map(|f| f.as_str()).collect();
    assert!(words.contains(&"replicaof".to_string()) && words.contains(&"slaveof".to_string()), "{words:?}");
    assert!(words.contains(&format!("127.0.0.1 {port}")), "{words:?}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ember-server"))
        .args(["--port", "0", "--replicaof", "127.0.0.1", "abc"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Invalid master port"));
}

/// A replica whose master is unreachable: state "connect", and under
/// replica-serve-stale-data no only STALE commands run (a transaction is judged by what it
/// queued), as in Redis.
#[test]
fn a_replica_without_its_master_serves_stale_data_only_when_allowed() {
    let s = ember(&[]);
    let mut c = Conn::new(s.port);
    c.cmd(&["SET", "k", "v"]);
    let dead = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = dead.local_addr().unwrap().port().to_string();
    drop(dead);
    assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &port]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]).as_str(), "v");
    assert_eq!(c.cmd(&["ROLE"]).children()[3].as_str(), "connect");
    c.cmd(&["CONFIG", "SET", "replica-serve-stale-data", "no"]);
    let down = "-MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.\r\n";
    assert_eq!(c.cmd(&["GET", "k"]).text(), down);
    assert_eq!(c.cmd(&["PING"]).text(), down);
    assert!(c.cmd(&["INFO", "replication"]).as_str().contains("master_link_status:down"));
    assert_eq!(c.cmd(&["REPLICAOF", "NO", "ONE"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]).as_str(), "v");
}

/// A client blocked on a master that becomes a replica is unblocked with Redis's error and
/// disconnected: the master's writes must not be popped by it (Redis issue #2473).
#[test]
fn blocked_clients_are_released_when_a_master_becomes_a_replica() {
    let a = ember(&[]);
    let b = ember(&[]);
    let mut bc = Conn::new(b.port);
    let mut blocked = Conn::new(b.port);
    blocked.send(&["BLPOP", "foo", "0"]);
    assert!(eventually(Duration::from_secs(5), || crate::util::info_field(&mut bc, "clients", "blocked_clients") == 1));
    assert_eq!(bc.cmd(&["REPLICAOF", "127.0.0.1", &a.port.to_string()]).text(), "+OK\r\n");
    assert_eq!(
        blocked.read().text(),
        "-UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)\r\n"
    );
    let (rest, closed) = blocked.read_until_close(Duration::from_secs(5));
    assert!(rest.is_empty() && closed, "the client stays connected");
    let mut ac = Conn::new(a.port);
    assert!(eventually(Duration::from_secs(20), || bc.cmd(&["ROLE"]).children()[3].as_str() == "connected"));
    ac.cmd(&["RPUSH", "foo", "a", "b", "c"]);
    assert!(eventually(Duration::from_secs(10), || bc.cmd(&["LLEN", "foo"]).as_str() == "3"));
}

/// A replica loading its master's image serves clients meanwhile, as Redis does: -LOADING
/// for commands that need the data, INFO's loading fields, CONFIG SET (here: speeding the
/// load up) allowed. With `repl-diskless-load swapdb` and an image of the same history (the
/// replica's offset had left the master's backlog) the old data stays readable instead.
#[test]
fn a_diskless_replica_parses_the_image_as_it_arrives() {
    // The replica reads its master's socket only as fast as it loads (it never holds the
    // image whole), so a slow load holds the master's diskless transfer open, as with Redis.
    let m = ember(&["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--rdbcompression", "no"]);
    let mut mc = Conn::new(m.port);
    // 40 MB: far more than the sockets between them can buffer.
    assert_eq!(mc.cmd(&["DEBUG", "POPULATE", "4000", "key", "10000"]).text(), "+OK\r\n");
    let r = ember(&[
        "--repl-diskless-load",
        "on-empty-db",
        "--key-load-delay",
        "1000",
        "--loading-process-events-interval-bytes",
        "65536",
    ]);
    let mut rc = Conn::new(r.port);
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]).text(), "+OK\r\n");
    assert!(
        eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "loading") == 1),
        "the replica never reported loading"
    );
    // 4000 keys at 1 ms each: the master is still sending when the replica has started.
    assert_eq!(info_field(&mut mc, "persistence", "rdb_bgsave_in_progress"), 1);
    assert!(mc.cmd(&["INFO", "replication"]).as_str().contains("state=wait_bgsave"));
    rc.cmd(&["CONFIG", "SET", "key-load-delay", "0"]);
    assert!(eventually(Duration::from_secs(20), || {
        rc.cmd(&["INFO", "replication"]).as_str().contains("master_link_status:up")
    }));
    assert_eq!(rc.cmd(&["DBSIZE"]).text(), ":4000\r\n");
    // The stream of writes follows the image on the same socket.
    mc.cmd(&["SET", "after", "1"]);
    assert!(eventually(Duration::from_secs(10), || rc.cmd(&["GET", "after"]).text() == "$1\r\n1\r\n"));
}

#[test]
fn a_replica_signalled_while_loading_exits_without_saving() {
    // Redis's whileBlockedCron: SIGTERM during a load shuts down at once, and the half-loaded
    // data set does not overwrite the file.
    let m = ember(&["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0", "--rdbcompression", "no"]);
    let mut mc = Conn::new(m.port);
    assert_eq!(mc.cmd(&["DEBUG", "POPULATE", "2000", "key", "1000"]).text(), "+OK\r\n");
    let mut r = ember(&[
        "--save",
        "3600 1",
        "--repl-diskless-load",
        "swapdb",
        "--key-load-delay",
        "10000",
        "--loading-process-events-interval-bytes",
        "1024",
    ]);
    let mut rc = Conn::new(r.port);
    rc.cmd(&["SET", "mine", "1"]);
    assert_eq!(rc.cmd(&["SAVE"]).text(), "+OK\r\n");
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]).text(), "+OK\r\n");
    assert!(
        eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "loading") == 1),
        "the replica never reported loading"
    );
    // 2000 keys at 10 ms each: 20 s of loading, unless the signal ends it.
    let pid = r.child.id().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().expect("kill").success());
    assert!(r.wait_exit(Duration::from_secs(5)), "the replica did not exit on SIGTERM while loading");
    let again = crate::util::ember_in(&r.dir, &[]);
    assert_eq!(Conn::new(again.port).cmd(&["DBSIZE"]).text(), ":1\r\n");
}

#[test]
fn a_replica_connects_from_bind_source_addr_and_holds_writes_while_paused() {
    // 127.0.0.2 is not local to protected mode (as in Redis).
    let m = ember(&["--protected-mode", "no"]);
    let mut mc = Conn::new(m.port);
    let r = ember(&["--bind-source-addr", "127.0.0.2"]);
    let mut rc = Conn::new(r.port);
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]).text(), "+OK\r\n");
    assert!(eventually(Duration::from_secs(10), || mc.cmd(&["INFO", "replication"]).as_str().contains("state=online")));
    assert!(mc.cmd(&["INFO", "replication"]).as_str().contains("ip=127.0.0.2"), "the link's source address");
    // CLIENT PAUSE WRITE holds the master's writes too: read, not applied.
    mc.cmd(&["SET", "a", "1"]);
    assert!(eventually(Duration::from_secs(10), || rc.cmd(&["GET", "a"]).text() == "$1\r\n1\r\n"));
    let applied = info_field(&mut rc, "replication", "slave_repl_offset");
    rc.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"]);
    mc.cmd(&["SET", "b", "2"]);
    let master_offset = info_field(&mut mc, "replication", "master_repl_offset");
    assert!(eventually(Duration::from_secs(10), || {
        info_field(&mut rc, "replication", "slave_read_repl_offset") == master_offset
    }));
    assert_eq!(info_field(&mut rc, "replication", "slave_repl_offset"), applied);
    assert_eq!(rc.cmd(&["EXISTS", "b"]).text(), ":0\r\n");
    rc.cmd(&["CLIENT", "UNPAUSE"]);
    assert!(eventually(Duration::from_secs(10), || rc.cmd(&["GET", "b"]).text() == "$1\r\n2\r\n"));
    assert_eq!(info_field(&mut rc, "replication", "slave_repl_offset"), master_offset);
}

#[test]
fn a_replica_serves_clients_while_it_loads() {
    let m = ember(&["--repl-diskless-sync-delay", "0"]);
    let mut mc = Conn::new(m.port);
    let value = "x".repeat(1000);
    for i in 0..400 {
        mc.cmd(&["SET", &format!("key:{i}"), &value]);
    }
    let r = ember(&["--key-load-delay", "20000", "--loading-process-events-interval-bytes", "1024"]);
    let mut rc = Conn::new(r.port);
    rc.cmd(&["SET", "old", "1"]);
    let port = m.port.to_string();
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &port]).text(), "+OK\r\n");
    // 400 keys at 20 ms each: 8 s of loading unless sped up.
    assert!(
        eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "loading") == 1),
        "the replica never reported loading"
    );
    assert_eq!(rc.cmd(&["GET", "old"]).text(), "-LOADING Redis is loading the dataset in memory\r\n");
    let info = rc.cmd(&["INFO", "persistence"]).as_str();
    for field in ["loading_total_bytes:", "loading_loaded_bytes:", "loading_loaded_perc:", "loading_eta_seconds:"] {
        assert!(info.contains(field), "{field} missing in {info}");
    }
    assert_eq!(info_field(&mut rc, "persistence", "async_loading"), 0);
    // Directives about where and how the data is kept wait (Redis's DENY_LOADING_CONFIG),
    // even beside an unknown one.
    let loading = "-LOADING Redis is loading the dataset in memory\r\n";
    assert_eq!(rc.cmd(&["CONFIG", "SET", "appendonly", "no"]).text(), loading);
    assert_eq!(rc.cmd(&["CONFIG", "SET", "nosuch", "1", "dir", "/"]).text(), loading);
    assert_eq!(rc.cmd(&["CONFIG", "SET", "key-load-delay", "0"]).text(), "+OK\r\n");
    assert!(eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "loading") == 0));
    assert_eq!(rc.cmd(&["DBSIZE"]).text(), ":400\r\n");
    assert_eq!(rc.cmd(&["GET", "old"]).text(), "$-1\r\n");

    // swapdb after REPLICAOF NO ONE: a new history (the promoted replica took a new
    // replication id), so a plain load, as Redis does.
    rc.cmd(&["CONFIG", "SET", "repl-diskless-load", "swapdb"]);
    rc.cmd(&["CONFIG", "SET", "key-load-delay", "20000"]);
    assert_eq!(rc.cmd(&["REPLICAOF", "NO", "ONE"]).text(), "+OK\r\n");
    rc.cmd(&["SET", "extra", "1"]);
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &port]).text(), "+OK\r\n");
    assert!(
        eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "loading") == 1),
        "the replica never reported loading"
    );
    assert_eq!(info_field(&mut rc, "persistence", "async_loading"), 0);
    rc.cmd(&["CONFIG", "SET", "key-load-delay", "0"]);
    assert!(eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "loading") == 0));
    assert!(eventually(Duration::from_secs(10), || rc.cmd(&["DBSIZE"]).text() == ":400\r\n"));

    // The same history, its offset out of the master's backlog: Redis's async loading, the
    // old data set served meanwhile.
    rc.cmd(&["CONFIG", "SET", "key-load-delay", "20000"]);
    mc.cmd(&["CONFIG", "SET", "repl-backlog-size", "16384"]);
    mc.cmd(&["MULTI"]);
    mc.cmd(&["CLIENT", "KILL", "TYPE", "replica"]);
    for i in 0..40 {
        mc.cmd(&["SET", &format!("fill:{i}"), &value]);
    }
    mc.cmd(&["EXEC"]);
    assert!(
        eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "async_loading") == 1),
        "the replica never reported async loading"
    );
    assert_eq!(info_field(&mut rc, "persistence", "loading"), 0);
    assert_eq!(rc.cmd(&["GET", "key:1"]).as_str(), value);
    assert_eq!(rc.cmd(&["EXISTS", "fill:1"]).text(), ":0\r\n");
    // Commands flagged no_async_loading (REPLICAOF, SAVE, CLUSTER MEET...) wait for the end.
    assert_eq!(rc.cmd(&["REPLICAOF", "NO", "ONE"]).text(), loading);
    assert_eq!(rc.cmd(&["CONFIG", "SET", "appendonly", "no"]).text(), loading);
    assert!(rc.cmd(&["COMMAND", "INFO", "replicaof"]).text().contains("no_async_loading"));
    rc.cmd(&["CONFIG", "SET", "key-load-delay", "0"]);
    assert!(eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "async_loading") == 0));
    assert!(eventually(Duration::from_secs(10), || rc.cmd(&["DBSIZE"]).text() == ":440\r\n"));
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill").args([sig, &pid.to_string()]).status().expect("kill");
    assert!(ok.success(), "kill {sig} {pid}");
}

/// Redis 7's graceful shutdown: SHUTDOWN waits (blocked, writes paused) for a replica to
/// acknowledge the last write, SHUTDOWN ABORT cancels it with an error for the waiting
/// client, and once the replica catches up the master saves and exits.
#[test]
fn shutdown_waits_for_a_lagging_replica() {
    let mut m = ember(&["--shutdown-timeout", "60"]);
    let mut mc = m.connect();
    let r = ember(&[]);
    let mut rc = r.connect();
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]).text(), "+OK\r\n");
    mc.cmd(&["SET", "k", "1"]);
    assert!(eventually(Duration::from_secs(10), || rc.cmd(&["GET", "k"]).text() == "$1\r\n1\r\n"));
    assert!(eventually(Duration::from_secs(10), || info_field(&mut mc, "replication", "connected_slaves") == 1));
    assert_eq!(info_field(&mut mc, "clients", "connected_clients"), 1, "a replica is not a client in INFO");

    signal(r.child.id(), "-STOP");
    assert_eq!(mc.cmd(&["INCR", "k"]).text(), ":2\r\n");
    let mut waiting = m.connect();
    waiting.send(&["SHUTDOWN"]);
    assert!(eventually(Duration::from_secs(10), || {
        mc.cmd(&["INFO", "server"]).as_str().contains("shutdown_in_milliseconds:")
    }));
    assert_eq!(info_field(&mut mc, "clients", "blocked_clients"), 1);
    assert_eq!(mc.cmd(&["SHUTDOWN", "ABORT", "NOW"]).text(), "-ERR syntax error\r\n");
    assert_eq!(mc.cmd(&["SHUTDOWN", "ABORT"]).text(), "+OK\r\n");
    assert_eq!(waiting.read().text(), "-ERR Errors trying to SHUTDOWN. Check logs.\r\n");
    assert_eq!(mc.cmd(&["SHUTDOWN", "ABORT"]).text(), "-ERR No shutdown in progress.\r\n");
    assert!(!mc.cmd(&["INFO", "server"]).as_str().contains("shutdown_in_milliseconds:"));
    assert_eq!(mc.cmd(&["SET", "after", "abort"]).text(), "+OK\r\n", "writes resume after the abort");

    waiting.send(&["SHUTDOWN"]);
    assert!(eventually(Duration::from_secs(10), || info_field(&mut mc, "clients", "blocked_clients") == 1));
    assert!(!m.wait_exit(Duration::from_millis(300)), "the master left its replica behind");
    signal(r.child.id(), "-CONT");
    assert!(m.wait_exit(Duration::from_secs(20)), "the master did not exit once its replica caught up");
    assert_eq!(rc.cmd(&["GET", "k"]).text(), "$1\r\n2\r\n");
    assert_eq!(rc.cmd(&["GET", "after"]).text(), "$5\r\nabort\r\n");
}

/// A master lets go of a replica that acknowledged nothing for repl-timeout (streaming),
/// and of one that stopped reading its diskless image (full sync, which would otherwise
/// hold the snapshot back for good); the stopped replica resumes with PSYNC.
#[test]
fn a_master_drops_replicas_that_time_out() {
    let m = ember(&[
        "--repl-timeout",
        "2",
        "--repl-diskless-sync",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
        "--rdbcompression",
        "no",
    ]);
    let mut mc = m.connect();
    let r = ember(&[]);
    let mut rc = r.connect();
    assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]).text(), "+OK\r\n");
    assert!(eventually(Duration::from_secs(10), || info_field(&mut mc, "replication", "connected_slaves") == 1));
    signal(r.child.id(), "-STOP");
    assert!(
        eventually(Duration::from_secs(10), || info_field(&mut mc, "replication", "connected_slaves") == 0),
        "a replica silent past repl-timeout stayed attached"
    );
    signal(r.child.id(), "-CONT");
    assert!(eventually(Duration::from_secs(10), || info_field(&mut mc, "replication", "connected_slaves") == 1));
    assert_eq!(info_field(&mut mc, "stats", "sync_full"), 1, "the replica came back with PSYNC");
    assert_eq!(rc.cmd(&["REPLICAOF", "NO", "ONE"]).text(), "+OK\r\n");
    assert!(eventually(Duration::from_secs(10), || info_field(&mut mc, "replication", "connected_slaves") == 0));

    // A "replica" that asks for a diskless image and never reads it.
    mc.cmd(&["DEBUG", "POPULATE", "20000", "key", "1000"]);
    let mut stuck = TcpStream::connect(("127.0.0.1", m.port)).unwrap();
    stuck.write_all(b"REPLCONF capa eof capa psync2\r\nPSYNC ? -1\r\n").unwrap();
    assert!(eventually(Duration::from_secs(10), || info_field(&mut mc, "persistence", "rdb_bgsave_in_progress") == 1));
    assert!(
        eventually(Duration::from_secs(15), || info_field(&mut mc, "replication", "connected_slaves") == 0
            && info_field(&mut mc, "persistence", "rdb_bgsave_in_progress") == 0),
        "a replica stuck in its full sync held the snapshot"
    );
}

/// A replica loading a slow image sends newlines, which the master takes as signs of life:
/// a load longer than repl-timeout does not get the replica dropped (and synced again).
#[test]
fn a_replica_that_loads_longer_than_repl_timeout_is_kept() {
    for diskless in ["no", "yes"] {
        let m = ember(&["--repl-timeout", "2", "--repl-diskless-sync", diskless, "--repl-diskless-sync-delay", "0"]);
        let mut mc = m.connect();
        let value = "x".repeat(1000);
        for i in 0..300 {
            mc.cmd(&["SET", &format!("key:{i}"), &value]);
        }
        // 300 keys at 15 ms each: 4.5 s of loading, past the master's 2 s timeout.
        let r = ember(&["--key-load-delay", "15000", "--loading-process-events-interval-bytes", "1024"]);
        let mut rc = r.connect();
        assert_eq!(rc.cmd(&["REPLICAOF", "127.0.0.1", &m.port.to_string()]).text(), "+OK\r\n");
        assert!(eventually(Duration::from_secs(10), || info_field(&mut rc, "persistence", "loading") == 1));
        assert!(eventually(Duration::from_secs(20), || {
            rc.cmd(&["INFO", "replication"]).as_str().contains("master_link_status:up")
        }));
        assert_eq!(rc.cmd(&["DBSIZE"]).text(), ":300\r\n");
        assert_eq!(info_field(&mut mc, "stats", "sync_full"), 1, "synced again ({diskless})");
        assert_eq!(info_field(&mut mc, "stats", "sync_partial_ok"), 0, "dropped while loading ({diskless})");
    }
}

/// redis.set_repl: a script's commands after REPL_NONE reach neither the replicas nor the
/// AOF, after REPL_AOF only the AOF, after REPL_ALL both (Redis's selective replication test,
/// with an Ember replica and a replayed AOF).
#[test]
fn a_script_chooses_where_its_commands_propagate() {
    let master = ember(&["--appendonly", "yes"]);
    let mut mc = master.connect();
    let replica = ember(&["--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut rc = replica.connect();
    assert!(eventually(Duration::from_secs(20), || rc
        .cmd(&["INFO", "replication"])
        .as_str()
        .contains("master_link_status:up")));
    let script = "redis.call('set','a','1'); redis.set_repl(redis.REPL_NONE); redis.call('set','b','2'); \
                  redis.set_repl(redis.REPL_AOF); redis.call('set','c','3'); redis.set_repl(redis.REPL_ALL); \
                  redis.call('set','d','4')";
    mc.cmd(&["EVAL", script, "0"]);
    let want_replica = "*4\r\n$1\r\n1\r\n$-1\r\n$-1\r\n$1\r\n4\r\n";
    assert!(
        eventually(Duration::from_secs(10), || rc.cmd(&["MGET", "a", "b", "c", "d"]).text() == want_replica),
        "the replica has {}",
        rc.cmd(&["MGET", "a", "b", "c", "d"]).text()
    );
    assert_eq!(mc.cmd(&["MGET", "a", "b", "c", "d"]).text(), "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n");
    assert_eq!(mc.cmd(&["DEBUG", "LOADAOF"]).text(), "+OK\r\n");
    assert_eq!(mc.cmd(&["MGET", "a", "b", "c", "d"]).text(), "*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n3\r\n$1\r\n4\r\n");
}

/// A replica configured with a lower proto-max-bulk-len than its master still applies the
/// master's long strings and far bits (Redis skips those checks for its master's stream).
#[test]
fn a_replica_obeys_writes_longer_than_its_own_bulk_limit() {
    let master = ember(&[]);
    let mut c = Conn::new(master.port);
    c.cmd(&["CONFIG", "SET", "repl-diskless-sync-delay", "0"]);
    let replica = ember(&["--proto-max-bulk-len", "1mb", "--replicaof", "127.0.0.1", &master.port.to_string()]);
    let mut rc = Conn::new(replica.port);
    assert!(eventually(Duration::from_secs(20), || rc
        .cmd(&["INFO", "replication"])
        .text()
        .contains("master_link_status:up")));
    assert_eq!(c.cmd(&["SETRANGE", "s", "2000000", "x"]).as_str(), "2000001");
    assert_eq!(c.cmd(&["SETBIT", "b", "20000000", "1"]).as_str(), "0");
    c.cmd(&["APPEND", "s", "y"]);
    assert!(
        eventually(Duration::from_secs(10), || rc.cmd(&["STRLEN", "s"]).as_str() == "2000002"
            && rc.cmd(&["STRLEN", "b"]).as_str() == "2500001"
            && rc.cmd(&["BITCOUNT", "b"]).as_str() == "1"),
        "the replica dropped the master's long writes: STRLEN {}",
        rc.cmd(&["STRLEN", "s"]).as_str()
    );
    // Its own clients still get the limit.
    assert_eq!(rc.cmd(&["REPLICAOF", "NO", "ONE"]).as_str(), "OK");
    assert!(rc.cmd(&["SETRANGE", "t", "2000000", "x"]).text().contains("proto-max-bulk-len"));
}
