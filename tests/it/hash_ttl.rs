//! Hash-field expiration (Redis 7.4 / 8.0 commands) against the real binary: the replies and
//! errors of Redis's documentation, expiry on access and in the background with the events
//! Redis raises, deadlines through RDB, AOF, DUMP/RESTORE and replication, the 7.0 format
//! kept for hashes without field deadlines, and the memory a deadline costs.

use std::time::Duration;

use crate::util::{Conn, ember, eventually, info_field, info_str};

fn ints(c: &mut Conn, args: &[&str]) -> Vec<i64> {
    let r = c.cmd(args);
    assert!(r.text().starts_with('*'), "{args:?} answered {}", r.text());
    r.children().iter().map(|f| f.text().trim_start_matches(':').trim_end().parse().unwrap()).collect()
}

fn int(c: &mut Conn, args: &[&str]) -> i64 {
    let t = c.cmd(args).text();
    t.trim_start_matches(':').trim_end().parse().unwrap_or_else(|_| panic!("{args:?} answered {t}"))
}

#[test]
fn replies_and_errors_follow_redis() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    // Per-field codes: -2 no field, 0 condition not met, 1 set, 2 deleted (past deadline).
    assert_eq!(ints(&mut c, &["HEXPIRE", "h", "100", "FIELDS", "2", "a", "nope"]), [1, -2]);
    assert_eq!(ints(&mut c, &["HEXPIRE", "h", "100", "NX", "FIELDS", "2", "a", "b"]), [0, 1]);
    assert_eq!(ints(&mut c, &["HEXPIRE", "h", "50", "GT", "FIELDS", "2", "a", "c"]), [0, 0]);
    assert_eq!(ints(&mut c, &["HEXPIRE", "h", "50", "LT", "FIELDS", "2", "a", "c"]), [1, 1]);
    assert_eq!(ints(&mut c, &["HEXPIRE", "h", "60", "XX", "FIELDS", "1", "c"]), [1]);
    assert_eq!(ints(&mut c, &["HTTL", "h", "FIELDS", "3", "a", "b", "zz"]), [50, 100, -2]);
    let pttl = ints(&mut c, &["HPTTL", "h", "FIELDS", "1", "b"])[0];
    assert!((99_000..=100_000).contains(&pttl), "{pttl}");
    let at = ints(&mut c, &["HPEXPIRETIME", "h", "FIELDS", "1", "b"])[0];
    assert_eq!(ints(&mut c, &["HEXPIRETIME", "h", "FIELDS", "1", "b"])[0], (at + 999) / 1000);
    assert_eq!(ints(&mut c, &["HPERSIST", "h", "FIELDS", "3", "a", "a", "zz"]), [1, -1, -2]);
    assert_eq!(ints(&mut c, &["HTTL", "h", "FIELDS", "1", "a"]), [-1]);
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "h"]).as_str(), "listpackex");
    // A deadline in the past deletes the field at once; the last one takes the hash.
    assert_eq!(ints(&mut c, &["HPEXPIREAT", "h", "1", "FIELDS", "1", "a"]), [2]);
    assert_eq!(ints(&mut c, &["HEXPIRE", "h", "0", "FIELDS", "2", "b", "c"]), [2, 2]);
    assert_eq!(int(&mut c, &["EXISTS", "h"]), 0);
    // A missing key is a hash without fields.
    assert_eq!(ints(&mut c, &["HEXPIRE", "h", "10", "FIELDS", "2", "a", "b"]), [-2, -2]);
    assert_eq!(ints(&mut c, &["HTTL", "h", "FIELDS", "1", "a"]), [-2]);
    assert_eq!(ints(&mut c, &["HPERSIST", "h", "FIELDS", "1", "a"]), [-2]);
    assert_eq!(c.cmd(&["HGETEX", "h", "EX", "10", "FIELDS", "1", "a"]).text(), "*1\r\n$-1\r\n");
    assert_eq!(c.cmd(&["HGETDEL", "h", "FIELDS", "1", "a"]).text(), "*1\r\n$-1\r\n");
    // Errors, checked in Redis's order (the key's type first).
    c.cmd(&["SET", "str", "x"]);
    let wrongtype = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    assert_eq!(c.cmd(&["HEXPIRE", "str", "x", "FIELDS", "1", "a"]).text(), wrongtype);
    assert_eq!(c.cmd(&["HTTL", "str", "FIELDS", "1", "a"]).text(), wrongtype);
    c.cmd(&["HSET", "h", "a", "1"]);
    let errors: &[(&[&str], &str)] = &[
        (&["HEXPIRE", "h", "x", "FIELDS", "1", "a"], "ERR value is not an integer or out of range"),
        (&["HEXPIRE", "h", "-1", "FIELDS", "1", "a"], "ERR invalid expire time, must be >= 0"),
        (&["HEXPIRE", "h", "70368744177664", "FIELDS", "1", "a"], "ERR invalid expire time in 'hexpire' command"),
        (&["HPEXPIREAT", "h", "70368744177664", "FIELDS", "1", "a"], "ERR invalid expire time in 'hpexpireat' command"),
        (
            &["HEXPIRE", "h", "10", "FIELD", "1", "a"],
            "ERR Mandatory argument FIELDS is missing or not at the right position",
        ),
        (&["HEXPIRE", "h", "10", "FIELDS", "0", "a"], "ERR Parameter `numFields` should be greater than 0"),
        (
            &["HEXPIRE", "h", "10", "FIELDS", "2", "a"],
            "ERR The `numfields` parameter must match the number of arguments",
        ),
        (
            &["HEXPIRE", "h", "10", "NX", "XX", "FIELDS", "1", "a"],
            "ERR Mandatory argument FIELDS is missing or not at the right position",
        ),
        (&["HTTL", "h", "FIELDS", "0", "a"], "ERR Number of fields must be a positive integer"),
        (&["HTTL", "h", "FIELDS", "x", "a"], "ERR Number of fields must be a positive integer"),
        (&["HPERSIST", "h", "FIELDS", "3", "a"], "ERR The `numfields` parameter must match the number of arguments"),
        (&["HEXPIRE", "h", "10"], "ERR wrong number of arguments for 'hexpire' command"),
        (
            &["HSETEX", "h", "EX", "10", "PX", "10", "FIELDS", "1", "a", "1"],
            "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified",
        ),
        (
            &["HSETEX", "h", "FNX", "FXX", "FIELDS", "1", "a", "1"],
            "ERR Only one of FXX or FNX arguments can be specified",
        ),
        (&["HSETEX", "h", "FIELDS", "0", "a", "1"], "ERR invalid number of fields"),
        (&["HSETEX", "h", "FIELDS", "2", "a", "1"], "ERR wrong number of arguments for 'hsetex' command"),
        (&["HSETEX", "h", "BOGUS", "FIELDS", "1", "a", "1"], "ERR unknown argument: BOGUS"),
        (&["HGETEX", "h", "EX", "-5", "FIELDS", "1", "a"], "ERR invalid expire time, must be >= 0"),
        (&["HGETDEL", "h", "FIELDS", "2", "a"], "ERR The `numfields` parameter must match the number of arguments"),
    ];
    for (args, want) in errors {
        assert_eq!(c.cmd(args).text(), format!("-{want}\r\n"), "{args:?}");
    }
    // HSETEX: 1 when set, 0 when FNX/FXX says no; HGETEX and HGETDEL answer values.
    c.cmd(&["DEL", "h"]);
    assert_eq!(int(&mut c, &["HSETEX", "h", "FXX", "FIELDS", "1", "a", "1"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "h"]), 0);
    assert_eq!(int(&mut c, &["HSETEX", "h", "FNX", "EX", "100", "FIELDS", "2", "a", "1", "b", "2"]), 1);
    assert_eq!(int(&mut c, &["HSETEX", "h", "FNX", "FIELDS", "2", "a", "1", "z", "2"]), 0);
    assert_eq!(ints(&mut c, &["HTTL", "h", "FIELDS", "2", "a", "b"]), [100, 100]);
    assert_eq!(int(&mut c, &["HSETEX", "h", "FXX", "KEEPTTL", "FIELDS", "1", "a", "new"]), 1);
    assert_eq!(ints(&mut c, &["HTTL", "h", "FIELDS", "1", "a"]), [100]);
    // HSET drops a field's deadline; HINCRBY keeps it.
    c.cmd(&["HSET", "h", "a", "plain"]);
    c.cmd(&["HSETEX", "h", "PX", "100000", "FIELDS", "1", "n", "5"]);
    assert_eq!(int(&mut c, &["HINCRBY", "h", "n", "2"]), 7);
    assert_eq!(ints(&mut c, &["HTTL", "h", "FIELDS", "2", "a", "n"]), [-1, 100]);
    assert_eq!(c.cmd(&["HGETEX", "h", "PERSIST", "FIELDS", "2", "n", "zz"]).text(), "*2\r\n$1\r\n7\r\n$-1\r\n");
    assert_eq!(ints(&mut c, &["HTTL", "h", "FIELDS", "1", "n"]), [-1]);
    assert_eq!(c.cmd(&["HGETEX", "h", "EXAT", "1", "FIELDS", "1", "n"]).text(), "*1\r\n$1\r\n7\r\n");
    assert_eq!(c.cmd(&["HEXISTS", "h", "n"]).text(), ":0\r\n");
    assert_eq!(c.cmd(&["HGETDEL", "h", "FIELDS", "2", "a", "zz"]).text(), "*2\r\n$5\r\nplain\r\n$-1\r\n");
    assert_eq!(c.cmd(&["HGETDEL", "h", "FIELDS", "1", "b"]).text(), "*1\r\n$1\r\n2\r\n");
    assert_eq!(int(&mut c, &["EXISTS", "h"]), 0, "the last field took the hash");
    // Key specs as Redis 7.4's: ACL key patterns and COMMAND GETKEYS see the key.
    assert_eq!(c.cmd(&["COMMAND", "GETKEYS", "HEXPIRE", "k", "1", "FIELDS", "1", "a"]).text(), "*1\r\n$1\r\nk\r\n");
    c.cmd(&["ACL", "SETUSER", "reader", "on", "nopass", "%R~*", "+@all"]);
    c.cmd(&["AUTH", "reader", "x"]);
    assert_eq!(ints(&mut c, &["HTTL", "h", "FIELDS", "1", "a"]), [-2]);
    assert!(c.cmd(&["HEXPIRE", "h", "1", "FIELDS", "1", "a"]).text().starts_with("-NOPERM"));
    c.cmd(&["AUTH", "default", "x"]);
    // COMMAND DOCS knows the new commands.
    let docs = c.cmd(&["COMMAND", "DOCS", "hexpire", "hgetex"]).as_str();
    assert!(docs.contains("7.4.0") && docs.contains("8.0.0"), "{docs}");
}

/// With active expiry off, due fields go when the hash is touched, raising `hexpired`, and
/// the last field's going deletes the hash with `del`.
#[test]
fn due_fields_go_on_access_with_events() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]);
    let mut sub = s.connect();
    sub.cmd(&["PSUBSCRIBE", "__keyevent@0__:*"]);
    assert_eq!(c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).text(), "+OK\r\n");
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    assert_eq!(ints(&mut c, &["HPEXPIRE", "h", "1", "FIELDS", "2", "a", "b"]), [1, 1]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.cmd(&["HGETALL", "h"]).text(), "*2\r\n$1\r\nc\r\n$1\r\n3\r\n");
    assert_eq!(info_field(&mut c, "stats", "expired_subkeys"), 2);
    assert_eq!(ints(&mut c, &["HPEXPIRE", "h", "1", "FIELDS", "1", "c"]), [1]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(int(&mut c, &["HLEN", "h"]), 0);
    assert_eq!(int(&mut c, &["EXISTS", "h"]), 0);
    let mut events = Vec::new();
    while events.len() < 6 {
        let m = sub.read();
        events.push(m.children()[2].as_str().rsplit(':').next().unwrap().to_string());
    }
    assert_eq!(events, ["hset", "hexpire", "hexpired", "hexpire", "hexpired", "del"]);
}

/// Fields nobody reads are reclaimed by the active cycle, in listpackex and table hashes (a
/// big table a slice per visit); INFO keyspace counts hashes with field deadlines as
/// `subexpiry`.
#[test]
fn active_expiry_reclaims_fields_nobody_reads() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.cmd(&["HSET", "small", "a", "1", "b", "2"]);
    c.cmd(&["HPEXPIRE", "small", "100", "FIELDS", "1", "a"]);
    c.cmd(&["HPEXPIRE", "small", "100000", "FIELDS", "1", "b"]);
    let fields: Vec<String> = (0..3000).map(|i| format!("f{i}")).collect();
    for (key, n) in [("big", 3000), ("gone", 600)] {
        let mut hset = vec!["HSET".to_string(), key.into()];
        for f in &fields[..n] {
            hset.extend([f.clone(), "v".into()]);
        }
        c.cmd(&hset.iter().map(String::as_str).collect::<Vec<_>>());
        let mut hpexpire = vec!["HPEXPIRE".to_string(), key.into(), "100".into(), "FIELDS".into(), n.to_string()];
        hpexpire.extend(fields[..n].iter().cloned());
        c.cmd(&hpexpire.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(c.cmd(&["OBJECT", "ENCODING", key]).as_str(), "hashtable");
    }
    // One field of "big" stays: its 3000 others go in slices, the hash stays.
    c.cmd(&["HSET", "big", "keep", "v"]);
    assert!(info_str(&mut c, "keyspace", "db0").contains("subexpiry=3"));
    assert!(
        eventually(Duration::from_secs(5), || info_field(&mut c, "stats", "expired_subkeys") == 3601),
        "fields not reclaimed: {}",
        info_field(&mut c, "stats", "expired_subkeys")
    );
    assert_eq!(int(&mut c, &["DBSIZE"]), 2, "the hash whose fields all went is deleted");
    assert!(info_str(&mut c, "keyspace", "db0").contains("subexpiry=1"));
    assert_eq!(c.cmd(&["HGETALL", "small"]).text(), "*2\r\n$1\r\nb\r\n$1\r\n2\r\n");
    assert_eq!(c.cmd(&["HGETALL", "big"]).text(), "*2\r\n$4\r\nkeep\r\n$1\r\nv\r\n");
}

/// Deadlines survive a restart from the RDB, an AOF rewritten with commands, and DUMP /
/// RESTORE; a hash that has none is written in 7.0's format, which redis-server 7.0 loads.
#[test]
fn deadlines_survive_rdb_aof_and_restore() {
    let s = ember(&["--appendonly", "yes", "--aof-use-rdb-preamble", "no"]);
    let mut c = s.connect();
    c.cmd(&["HSET", "small", "a", "1", "b", "2"]);
    c.cmd(&["HPEXPIREAT", "small", "4000000000000", "FIELDS", "1", "a"]);
    c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "0"]);
    c.cmd(&["HSET", "big", "a", "1", "b", "2"]);
    c.cmd(&["HPEXPIREAT", "big", "4000000000001", "FIELDS", "1", "b"]);
    c.cmd(&["HSET", "plain", "x", "1"]);
    let expect = |c: &mut Conn| {
        assert_eq!(ints(c, &["HPEXPIRETIME", "small", "FIELDS", "2", "a", "b"]), [4000000000000, -1]);
        assert_eq!(ints(c, &["HPEXPIRETIME", "big", "FIELDS", "2", "a", "b"]), [-1, 4000000000001]);
        assert_eq!(c.cmd(&["HGET", "plain", "x"]).as_str(), "1");
    };
    let raw = c.cmd(&["DUMP", "big"]).bytes();
    let start = raw.iter().position(|&b| b == b'\n').unwrap() + 1;
    let payload = raw[start..raw.len() - 2].to_vec();
    c.cmd(&["DEL", "big"]);
    assert_eq!(c.cmd_bytes(&[b"RESTORE".to_vec(), b"big".to_vec(), b"0".to_vec(), payload]).text(), "+OK\r\n");
    expect(&mut c);
    assert!(c.cmd(&["BGREWRITEAOF"]).text().starts_with('+'));
    assert!(eventually(Duration::from_secs(10), || info_field(&mut c, "persistence", "aof_rewrite_in_progress") == 0
        && info_field(&mut c, "persistence", "aof_rewrite_scheduled") == 0));
    assert_eq!(c.cmd(&["SAVE"]).text(), "+OK\r\n");
    let dir = s.dir.clone();
    s.kill_keep_dir();
    // From the AOF (appendonly wins over the RDB at start-up).
    let s2 = crate::util::ember_in(&dir, &["--appendonly", "yes"]);
    let mut c2 = s2.connect();
    expect(&mut c2);
    // From the RDB.
    let dir2 = s2.dir.clone();
    s2.kill_keep_dir();
    let s3 = crate::util::ember_in(&dir2, &[]);
    let mut c3 = s3.connect();
    expect(&mut c3);
    // Without field deadlines the file is 7.0's: redis-server 7.0 loads it.
    c3.cmd(&["HPERSIST", "small", "FIELDS", "1", "a"]);
    c3.cmd(&["DEL", "big"]);
    assert_eq!(c3.cmd(&["SAVE"]).text(), "+OK\r\n");
    let dir3 = s3.dir.clone();
    s3.kill_keep_dir();
    let r = crate::util::redis_in(&dir3, &["--dbfilename", "dump.rdb"]);
    let mut rc = r.connect();
    assert_eq!(rc.cmd(&["HGET", "small", "a"]).as_str(), "1");
    assert_eq!(rc.cmd(&["DBSIZE"]).text(), ":2\r\n");
}

/// What replicas and the AOF receive: absolute deadlines (HPEXPIREAT, HSETEX PXAT) and one
/// HDEL per field that expired or that a past deadline removed; an Ember replica ends with
/// the master's deadlines.
#[test]
fn propagation_uses_absolute_deadlines_and_hdel() {
    let master = ember(&["--repl-diskless-sync-delay", "0", "--appendonly", "yes"]);
    let mut c = master.connect();
    let replica = ember(&[]);
    let mut rc = replica.connect();
    rc.cmd(&["REPLICAOF", "127.0.0.1", &master.port.to_string()]);
    assert!(eventually(Duration::from_secs(20), || rc
        .cmd(&["INFO", "replication"])
        .text()
        .contains("master_link_status:up")));
    c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    c.cmd(&["HSET", "h", "a", "1", "b", "2", "c", "3"]);
    c.cmd(&["HEXPIRE", "h", "1000", "NX", "FIELDS", "1", "a"]);
    c.cmd(&["HSETEX", "h", "EX", "2000", "FIELDS", "1", "d", "4"]);
    c.cmd(&["HPEXPIRE", "h", "1", "FIELDS", "1", "b"]);
    std::thread::sleep(Duration::from_millis(5));
    assert_eq!(c.cmd(&["HGET", "h", "b"]).text(), "$-1\r\n");
    assert_eq!(ints(&mut c, &["HEXPIREAT", "h", "1", "FIELDS", "1", "c"]), [2]);
    let want = ints(&mut c, &["HPEXPIRETIME", "h", "FIELDS", "4", "a", "b", "c", "d"]);
    assert!(want[0] > 0 && want[3] > 0 && want[1] == -2 && want[2] == -2, "{want:?}");
    assert!(
        eventually(Duration::from_secs(10), || ints(
            &mut rc,
            &["HPEXPIRETIME", "h", "FIELDS", "4", "a", "b", "c", "d"]
        ) == want),
        "replica: {:?}",
        ints(&mut rc, &["HPEXPIRETIME", "h", "FIELDS", "4", "a", "b", "c", "d"])
    );
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]).text(), rc.cmd(&["DEBUG", "DIGEST"]).text());
    // The log holds the replay-safe forms, in Redis 7.4's shapes.
    let aof_dir = master.dir.join("appendonlydir");
    let log: String = std::fs::read_dir(&aof_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".incr.aof"))
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect();
    let commands: Vec<String> = log
        .split("*")
        .filter(|c| !c.is_empty())
        .map(|c| c.split("\r\n").skip(2).step_by(2).collect::<Vec<_>>().join(" "))
        .filter(|c| !c.starts_with("SELECT") && !c.starts_with("select"))
        .collect();
    let at = |i: usize| want[i].to_string();
    assert_eq!(
        commands,
        [
            "HSET h a 1 b 2 c 3".to_string(),
            format!("HPEXPIREAT h {} NX FIELDS 1 a", at(0)),
            format!("HSETEX h PXAT {} FIELDS 1 d 4", at(3)),
            format!("HPEXPIREAT h {} FIELDS 1 b", commands[3].split(' ').nth(2).unwrap_or("?")),
            "HDEL h b".into(),
            "HDEL h c".into(),
        ]
    );
}

/// A deadline costs at most 16 bytes per expiring field, measured with the allocator's own
/// count (INFO used_memory) on listpackex and table hashes.
#[test]
fn an_expiring_field_costs_at_most_16_bytes() {
    let s = ember(&[]);
    let mut client = s.client();
    let mut c = s.connect();
    // Read once the pipelining client's read buffer is back to small (the server releases a
    // big idle one on its next cron tick): only the hashes should differ between readings.
    let used = |c: &mut Conn| {
        let mut last = info_field(c, "memory", "used_memory");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(150));
            let now = info_field(c, "memory", "used_memory");
            if now == last {
                break;
            }
            last = now;
        }
        last as f64
    };
    for (hashes, fields, table) in [(4000usize, 10usize, false), (40, 1000, true)] {
        c.cmd(&["FLUSHALL"]);
        c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", if table { "0" } else { "128" }]);
        // Names of each hash's own: hashes with the same names share them while they have
        // no deadlines (types/hash_pack.rs), which is not what this measures.
        let names = |i: usize| (0..fields).map(move |j| format!("f{i}-{j}"));
        let mut p = redis::pipe();
        for i in 0..hashes {
            let mut cmd = redis::cmd("HSET");
            cmd.arg(format!("h{i}"));
            for n in names(i) {
                cmd.arg(n).arg("value");
            }
            p.add_command(cmd).ignore();
        }
        p.query::<()>(&mut client).unwrap();
        let before = used(&mut c);
        let mut p = redis::pipe();
        for i in 0..hashes {
            let mut cmd = redis::cmd("HPEXPIRE");
            cmd.arg(format!("h{i}")).arg(100_000_000).arg("FIELDS").arg(fields);
            for n in names(i) {
                cmd.arg(n);
            }
            p.add_command(cmd).ignore();
        }
        p.query::<()>(&mut client).unwrap();
        let per_field = (used(&mut c) - before) / (hashes * fields) as f64;
        let enc = c.cmd(&["OBJECT", "ENCODING", "h0"]).as_str();
        assert_eq!(enc, if table { "hashtable" } else { "listpackex" });
        assert!(per_field <= 16.0, "{enc}: {per_field:.1} bytes per expiring field");
    }
}
