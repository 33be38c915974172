//! RDB snapshots against the binary and against real Redis: every type and encoding survives
//! DEBUG RELOAD and a restart; Ember's file passes redis-check-rdb and loads in redis-server
//! 7.0 with the same content; redis-server's file loads in Ember with the same content.

use std::process::Command;
use std::time::Duration;

use crate::util::{Conn, Proc, ember, eventually, info_field, info_str};

/// Builds one key of every type and encoding (small and large), with and without TTLs.
fn populate(c: &mut Conn) {
    let long = "compressible ".repeat(40);
    let big_value = "v".repeat(100);
    c.cmd(&["SET", "str:int", "12345"]);
    c.cmd(&["SET", "str:neg", "-7"]);
    c.cmd(&["SET", "str:big", "9223372036854775807"]);
    c.cmd(&["SET", "str:raw", "hello world"]);
    c.cmd(&["SET", "str:long", &long]);
    c.cmd(&["SET", "str:ttl", "soon", "EX", "1000"]);
    c.cmd(&["SET", "str:empty", ""]);
    for i in 0..300 {
        c.cmd(&["RPUSH", "list:big", &format!("item{i}")]);
    }
    c.cmd(&["RPUSH", "list:small", "a", "1", "-5", &big_value]);
    c.cmd(&["SADD", "set:ints", "1", "2", "3", "-100", "70000"]);
    c.cmd(&["SADD", "set:strs", "a", "b", "c"]);
    for i in 0..600 {
        c.cmd(&["SADD", "set:big", &i.to_string()]);
    }
    c.cmd(&["HSET", "hash:small", "f1", "v1", "f2", "2"]);
    c.cmd(&["HSET", "hash:longval", "f", &big_value]);
    for i in 0..600 {
        c.cmd(&["HSET", "hash:big", &format!("field{i}"), &format!("value{i}")]);
    }
    c.cmd(&["ZADD", "zset:small", "1", "a", "2.5", "b", "-inf", "c", "1e100", "d"]);
    for i in 0..200 {
        c.cmd(&["ZADD", "zset:big", &format!("{}", i as f64 * 0.25), &format!("m{i}")]);
    }
    c.cmd(&["GEOADD", "geo", "13.361389", "38.115556", "Palermo", "15.087269", "37.502669", "Catania"]);
    c.cmd(&["PFADD", "hll", "a", "b", "c"]);
    c.cmd(&["SETBIT", "bits", "100", "1"]);
    c.cmd(&["EXPIRE", "hash:small", "5000"]);
    for i in 1..=250 {
        c.cmd(&["XADD", "stream", &format!("{i}-1"), "name", &format!("n{i}"), "n", &i.to_string()]);
    }
    c.cmd(&["XADD", "stream", "300-1", "other", "fields"]);
    c.cmd(&["XDEL", "stream", "5-1"]);
    c.cmd(&["XGROUP", "CREATE", "stream", "g1", "0"]);
    c.cmd(&["XGROUP", "CREATE", "stream", "g2", "$", "ENTRIESREAD", "251"]);
    c.cmd(&["XREADGROUP", "GROUP", "g1", "alice", "COUNT", "3", "STREAMS", "stream", ">"]);
    c.cmd(&["XREADGROUP", "GROUP", "g1", "bob", "COUNT", "2", "STREAMS", "stream", ">"]);
    c.cmd(&["XACK", "stream", "g1", "2-1"]);
    c.cmd(&["XGROUP", "CREATECONSUMER", "stream", "g1", "idle"]);
    c.cmd(&["XADD", "stream:empty", "1-1", "a", "b"]);
    c.cmd(&["XDEL", "stream:empty", "1-1"]);
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "in:db3", "x"]);
    c.cmd(&["SELECT", "0"]);
}

/// The dataset as text, through commands only, so both servers can be compared.
fn render(c: &mut Conn) -> String {
    let mut out = String::new();
    for db in ["0", "3"] {
        c.cmd(&["SELECT", db]);
        let mut keys: Vec<String> = c.cmd(&["KEYS", "*"]).children().iter().map(|k| k.as_str()).collect();
        keys.sort();
        for k in keys {
            let t = c.cmd(&["TYPE", &k]).as_str();
            let body = match t.as_str() {
                "string" => c.cmd(&["GET", &k]).text(),
                "list" => c.cmd(&["LRANGE", &k, "0", "-1"]).text(),
                "set" => {
                    let mut m: Vec<String> = c.cmd(&["SMEMBERS", &k]).children().iter().map(|x| x.as_str()).collect();
                    m.sort();
                    m.join(",")
                }
                "hash" => {
                    let kids = c.cmd(&["HGETALL", &k]);
                    let mut pairs: Vec<String> =
                        kids.children().chunks(2).map(|p| format!("{}={}", p[0].as_str(), p[1].as_str())).collect();
                    pairs.sort();
                    pairs.join(",")
                }
                "zset" => c.cmd(&["ZRANGE", &k, "0", "-1", "WITHSCORES"]).text(),
                "stream" => {
                    let mut s = c.cmd(&["XRANGE", &k, "-", "+"]).text();
                    s += &c.cmd(&["XINFO", "GROUPS", &k]).text();
                    for g in ["g1", "g2"] {
                        s += &c
                            .cmd(&["XPENDING", &k, g, "-", "+", "100"])
                            .children()
                            .iter()
                            .map(|e| {
                                let e = e.children();
                                format!("{} {} {}", e[0].as_str(), e[1].as_str(), e[3].text())
                            })
                            .collect::<Vec<_>>()
                            .join(";");
                    }
                    let info = c.cmd(&["XINFO", "STREAM", &k]);
                    let kids = info.children();
                    for pair in kids.chunks(2) {
                        let name = pair[0].as_str();
                        if [
                            "length",
                            "last-generated-id",
                            "max-deleted-entry-id",
                            "entries-added",
                            "recorded-first-entry-id",
                        ]
                        .contains(&name.as_str())
                        {
                            s += &format!(" {name}={}", pair[1].text());
                        }
                    }
                    s
                }
                other => panic!("unexpected type {other}"),
            };
            let ttl = c.cmd(&["TTL", &k]).text();
            let has_ttl = ttl != ":-1\r\n";
            out.push_str(&format!("{db} {k} {t} ttl={has_ttl} {body}\n"));
        }
    }
    c.cmd(&["SELECT", "0"]);
    out
}

fn start_redis_on(dir: &std::path::Path) -> Proc {
    crate::util::redis_in(dir, &["--dbfilename", "dump.rdb", "--enable-debug-command", "yes"])
}

#[test]
fn every_type_survives_debug_reload_and_restart() {
    let s = ember(&[]);
    let mut c = s.connect();
    populate(&mut c);
    let before = render(&mut c);
    let digest = c.cmd(&["DEBUG", "DIGEST"]).text();
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]).text(), "+OK\r\n");
    assert_eq!(render(&mut c), before);
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]).text(), digest);
    assert_eq!(c.cmd(&["SAVE"]).text(), "+OK\r\n");
    let last = c.cmd(&["LASTSAVE"]).text();
    assert_ne!(last, ":0\r\n");
    // A new server started on the same directory loads the file.
    let dir = s.dir.clone();
    let s2 = crate::util::ember_in(&dir, &[]);
    let mut c2 = s2.connect();
    assert_eq!(render(&mut c2), before);
}

#[test]
fn ember_file_loads_in_redis_and_redis_file_loads_in_ember() {
    // Ember -> Redis.
    let s = ember(&[]);
    let mut c = s.connect();
    populate(&mut c);
    let want = render(&mut c);
    c.cmd(&["SAVE"]);
    let file = s.dir.join("dump.rdb");
    let check = Command::new("redis-check-rdb").arg(&file).output().expect("redis-check-rdb is required");
    assert!(
        check.status.success(),
        "redis-check-rdb refused Ember's file:\n{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let r = start_redis_on(&s.dir);
    let mut rc = r.connect();
    assert_eq!(render(&mut rc), want, "redis-server loaded different content");
    // Same data, same DEBUG DIGEST on both servers.
    let digest = c.cmd(&["DEBUG", "DIGEST"]).text();
    assert_ne!(digest, "+0000000000000000000000000000000000000000\r\n");
    assert_eq!(rc.cmd(&["DEBUG", "DIGEST"]).text(), digest);

    // Redis -> Ember: the same data written by redis-server (its `dir` cannot be changed at
    // run time, so it starts on the directory Ember will read).
    let dir = crate::util::temp_dir("from-redis");
    let rd = start_redis_on(&dir);
    let mut c = rd.connect();
    populate(&mut c);
    let want = render(&mut c);
    assert_eq!(c.cmd(&["SAVE"]).text(), "+OK\r\n");
    let e = crate::util::ember_in(&dir, &[]);
    let mut ec = e.connect();
    assert_eq!(render(&mut ec), want, "Ember loaded different content from redis-server's file");
}

#[test]
fn a_corrupt_file_is_refused_at_start_up() {
    let s = ember(&[]);
    let mut c = s.connect();
    populate(&mut c);
    c.cmd(&["SAVE"]);
    let path = s.dir.join("dump.rdb");
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ember-server"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--dir"])
        .arg(&s.dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a corrupt RDB was accepted");
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(log.contains("offset"), "{log}");
}

/// BGSAVE writes the dataset as it was when BGSAVE ran, while writes keep landing and the
/// server keeps answering: overwritten, deleted and new keys do not leak into the file.
#[test]
fn bgsave_is_a_point_in_time_snapshot_under_writes() {
    const N: usize = 30_000;
    let s = ember(&[]);
    let mut c = s.connect();
    let mut batch = Vec::new();
    for i in 0..N {
        batch.extend(crate::util::encode(&[
            b"SET".to_vec(),
            format!("key:{i}").into_bytes(),
            format!("v{i}").into_bytes(),
        ]));
    }
    c.send_raw(&batch);
    for _ in 0..N {
        c.read();
    }
    c.cmd(&["RPUSH", "list", "a", "b", "c"]);
    c.cmd(&["HSET", "hash", "f", "original"]);
    c.cmd(&["XADD", "stream", "1-1", "f", "v"]);
    let digest_at_bgsave = c.cmd(&["DEBUG", "DIGEST"]).text();
    // A second BGSAVE in the same pipeline finds the first one running.
    c.send(&["BGSAVE"]);
    c.send(&["BGSAVE"]);
    assert_eq!(c.read().text(), "+Background saving started\r\n");
    assert_eq!(c.read().text(), "-ERR Background save already in progress\r\n");
    // Changes right behind BGSAVE, pipelined so most land before the walk reaches the keys.
    let mut changes = Vec::new();
    for i in 0..2000 {
        changes.extend(crate::util::encode(&[b"SET".to_vec(), format!("key:{i}").into_bytes(), b"changed".to_vec()]));
        changes.extend(crate::util::encode(&[b"DEL".to_vec(), format!("key:{}", N - 1 - i).into_bytes()]));
        changes.extend(crate::util::encode(&[b"SET".to_vec(), format!("new:{i}").into_bytes(), b"x".to_vec()]));
    }
    changes.extend(crate::util::encode(&[b"LPUSH".to_vec(), b"list".to_vec(), b"z".to_vec()]));
    changes.extend(crate::util::encode(&[b"HSET".to_vec(), b"hash".to_vec(), b"f".to_vec(), b"changed".to_vec()]));
    changes.extend(crate::util::encode(&[
        b"XADD".to_vec(),
        b"stream".to_vec(),
        b"2-1".to_vec(),
        b"f".to_vec(),
        b"w".to_vec(),
    ]));
    c.send_raw(&changes);
    for _ in 0..6003 {
        c.read();
    }
    assert!(eventually(Duration::from_secs(30), || info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == 0));
    assert_eq!(info_field(&mut c, "persistence", "rdb_saves"), 1);
    // The live dataset has the changes...
    assert_eq!(c.cmd(&["GET", "key:0"]).as_str(), "changed");
    // ...the file has the dataset of the BGSAVE instant.
    let dir = s.dir.clone();
    let s2 = crate::util::ember_in(&dir, &[]);
    let mut c2 = s2.connect();
    assert_eq!(c2.cmd(&["DEBUG", "DIGEST"]).text(), digest_at_bgsave, "the file is not the BGSAVE-instant dataset");
    assert_eq!(c2.cmd(&["DBSIZE"]).text(), format!(":{}\r\n", N + 3));
    for i in [0, 1, 999, 1999, 5000, N - 1, N - 2000] {
        assert_eq!(c2.cmd(&["GET", &format!("key:{i}")]).as_str(), format!("v{i}"), "key:{i}");
    }
    assert_eq!(c2.cmd(&["EXISTS", "new:0"]).text(), ":0\r\n");
    assert_eq!(c2.cmd(&["LRANGE", "list", "0", "-1"]).text(), "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n");
    assert_eq!(c2.cmd(&["HGET", "hash", "f"]).as_str(), "original");
    assert_eq!(c2.cmd(&["XLEN", "stream"]).text(), ":1\r\n");
    // And redis-check-rdb accepts a file written in pieces.
    let check = Command::new("redis-check-rdb").arg(dir.join("dump.rdb")).output().expect("redis-check-rdb");
    assert!(check.status.success(), "{}", String::from_utf8_lossy(&check.stdout));
}

fn payload(f: &crate::util::Frame) -> Vec<u8> {
    let b = f.bytes();
    let start = b.iter().position(|&c| c == b'\n').unwrap() + 1;
    b[start..b.len() - 2].to_vec()
}

/// DUMP in one server, RESTORE in the other, both ways, for every type and encoding.
#[test]
fn dump_payloads_restore_across_ember_and_redis() {
    let e = ember(&[]);
    let dir = crate::util::temp_dir("dump-redis");
    let r = start_redis_on(&dir);
    for (from, to) in [(e.port, r.port), (r.port, e.port)] {
        let mut src = Conn::new(from);
        let mut dst = Conn::new(to);
        src.cmd(&["FLUSHALL"]);
        dst.cmd(&["FLUSHALL"]);
        populate(&mut src);
        let want = render(&mut src);
        for db in ["0", "3"] {
            src.cmd(&["SELECT", db]);
            dst.cmd(&["SELECT", db]);
            let keys: Vec<String> = src.cmd(&["KEYS", "*"]).children().iter().map(|k| k.as_str()).collect();
            for k in keys {
                let p = payload(&src.cmd(&["DUMP", &k]));
                let pttl = src.cmd(&["PTTL", &k]).text().trim_start_matches(':').trim().parse::<i64>().unwrap().max(0);
                let reply =
                    dst.cmd_bytes(&[b"RESTORE".to_vec(), k.clone().into_bytes(), pttl.to_string().into_bytes(), p]);
                assert_eq!(reply.text(), "+OK\r\n", "RESTORE of {k} from port {from}");
            }
        }
        src.cmd(&["SELECT", "0"]);
        dst.cmd(&["SELECT", "0"]);
        assert_eq!(render(&mut dst), want, "content after DUMP/RESTORE from port {from}");
    }
}

/// SIGTERM with save points configured saves before exiting, as redis-server does.
#[test]
fn sigterm_saves_when_save_points_are_set() {
    let mut s = ember(&["--save", "3600 1"]);
    let mut c = s.connect();
    c.cmd(&["SET", "survivor", "yes"]);
    c.cmd(&["RPUSH", "list", "a", "b"]);
    let pid = s.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert!(s.wait_exit(Duration::from_secs(10)), "ember-server did not exit on SIGTERM");
    let dir = s.dir.clone();
    let s2 = crate::util::ember_in(&dir, &[]);
    let mut c2 = s2.connect();
    assert_eq!(c2.cmd(&["GET", "survivor"]).as_str(), "yes");
    assert_eq!(c2.cmd(&["LLEN", "list"]).text(), ":2\r\n");
}

/// A failed background save refuses writes with MISCONF (stop-writes-on-bgsave-error) until
/// a save succeeds again.
#[test]
fn failed_bgsave_stops_writes_until_a_save_succeeds() {
    let s = ember(&["--save", "3600 1"]);
    let mut c = s.connect();
    c.cmd(&["SET", "k", "v"]);
    // The target name is taken by a non-empty directory: the final rename fails.
    std::fs::create_dir_all(s.dir.join("dump.rdb/blocker")).unwrap();
    assert_eq!(c.cmd(&["BGSAVE"]).text(), "+Background saving started\r\n");
    assert!(eventually(Duration::from_secs(10), || c
        .cmd(&["INFO", "persistence"])
        .as_str()
        .contains("rdb_last_bgsave_status:err")));
    let e = c.cmd(&["SET", "k", "v2"]).text();
    assert!(e.starts_with("-MISCONF "), "{e}");
    assert!(c.cmd(&["PING"]).text().starts_with("-MISCONF "));
    assert_eq!(c.cmd(&["GET", "k"]).as_str(), "v", "reads still work");
    std::fs::remove_dir_all(s.dir.join("dump.rdb")).unwrap();
    assert_eq!(c.cmd(&["BGSAVE"]).text(), "+Background saving started\r\n");
    assert!(eventually(Duration::from_secs(10), || c
        .cmd(&["INFO", "persistence"])
        .as_str()
        .contains("rdb_last_bgsave_status:ok")));
    assert_eq!(c.cmd(&["SET", "k", "v2"]).text(), "+OK\r\n");
}

/// A BGSAVE whose file cannot even be created ends as failed instead of staying in
/// progress, and the next one can run.
#[test]
fn bgsave_that_cannot_create_its_file_fails_and_ends() {
    let s = ember(&[]);
    let mut c = s.connect();
    for i in 0..2000 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    std::fs::remove_dir_all(&s.dir).unwrap();
    assert_eq!(c.cmd(&["BGSAVE"]).text(), "+Background saving started\r\n");
    let ended = |c: &mut crate::util::Conn| {
        let info = c.cmd(&["INFO", "persistence"]).as_str();
        info.contains("rdb_bgsave_in_progress:0") && info.contains("rdb_last_bgsave_status:err")
    };
    assert!(eventually(Duration::from_secs(10), || ended(&mut c)));
    // Not "already in progress": the failed one is over.
    assert_eq!(c.cmd(&["BGSAVE"]).text(), "+Background saving started\r\n");
    assert!(eventually(Duration::from_secs(10), || ended(&mut c)));
    assert_eq!(c.cmd(&["GET", "k1"]).as_str(), "v");
}

/// A file written by redis-server 7.0.15 (tests/fixtures/README.md) loads with the very
/// digest redis-server computed for that dataset.
#[test]
fn redis_7_fixture_loads_with_redis_digest() {
    let dir = crate::util::temp_dir("fixture");
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/redis7-all-types.rdb");
    std::fs::copy(&fixture, dir.join("dump.rdb")).unwrap();
    let s = crate::util::ember_in(&dir, &[]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["DEBUG", "DIGEST"]).text(), "+159de8d0d46c63b182d08bfc6fd7c908542e4aca\r\n");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "set:ints"]).as_str(), "intset");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "hash:small"]).as_str(), "listpack");
    assert_eq!(c.cmd(&["XPENDING", "stream", "g1"]).children()[0].text(), ":2\r\n");
}

/// Under LRU / LFU policies the RDB keeps each key's idle time / access frequency (Redis's
/// IDLE and FREQ opcodes), so a restarted cache still knows what is cold.
#[test]
fn rdb_keeps_idle_time_and_frequency() {
    let s = ember(&["--maxmemory-policy", "allkeys-lfu"]);
    let mut c = s.connect();
    c.cmd(&["SET", "hot", "v"]);
    c.cmd(&["SET", "cold", "v"]);
    c.cmd(&["DEBUG", "RELOAD"]);
    for _ in 0..2000 {
        c.cmd(&["GET", "hot"]);
    }
    let hot: i64 = c.cmd(&["OBJECT", "FREQ", "hot"]).text().trim_start_matches(':').trim().parse().unwrap();
    assert!(hot > 10, "{hot}");
    c.cmd(&["SAVE"]);
    let dir = s.dir.clone();
    let s2 = crate::util::ember_in(&dir, &["--maxmemory-policy", "allkeys-lfu"]);
    let mut c2 = s2.connect();
    assert_eq!(c2.cmd(&["OBJECT", "FREQ", "hot"]).text(), format!(":{hot}\r\n"));
    assert_eq!(c2.cmd(&["OBJECT", "FREQ", "cold"]).text(), ":5\r\n");
    drop(c2);
    s2.kill_keep_dir();
    // The forkless BGSAVE writes them too, for keys the walk meets and for keys saved just
    // before they change.
    c.cmd(&["FLUSHALL"]);
    for i in 0..20_000 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    c.cmd(&["SET", "hot", "v"]);
    for _ in 0..2000 {
        c.cmd(&["GET", "hot"]);
    }
    let hot: i64 = c.cmd(&["OBJECT", "FREQ", "hot"]).text().trim_start_matches(':').trim().parse().unwrap();
    let saves =
        |c: &mut crate::util::Conn| c.cmd(&["INFO", "persistence"]).as_str().contains("rdb_bgsave_in_progress:0");
    c.cmd(&["BGSAVE"]);
    c.cmd(&["APPEND", "hot", "x"]); // changes before the walk may reach it: saved first
    c.cmd(&["SET", "hot", "v"]);
    assert!(eventually(Duration::from_secs(20), || saves(&mut c)));
    let s3 = crate::util::ember_in(&dir, &["--maxmemory-policy", "allkeys-lfu"]);
    let mut c3 = s3.connect();
    assert_eq!(c3.cmd(&["GET", "hot"]).as_str(), "v");
    let restored: i64 = c3.cmd(&["OBJECT", "FREQ", "hot"]).text().trim_start_matches(':').trim().parse().unwrap();
    assert!(restored >= hot - 1 && restored > 10, "saved {hot}, restored {restored}");
}

/// BGSAVE inside EXEC is scheduled rather than run, as in Redis, and then happens.
#[test]
fn bgsave_in_exec_is_scheduled() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.cmd(&["SET", "k", "v"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["BGSAVE"]);
    assert_eq!(c.cmd(&["EXEC"]).text(), "*1\r\n+Background saving scheduled\r\n");
    assert!(eventually(Duration::from_secs(10), || c.cmd(&["INFO", "persistence"]).as_str().contains("rdb_saves:1")));
    assert!(s.dir.join("dump.rdb").exists());
}

/// FUNCTION libraries travel in the RDB (Redis 7's FUNCTION2 records) both ways: a dump of
/// redis-server's with a library loads into Ember and runs; Ember's dump loads into Redis.
#[test]
fn function_libraries_travel_in_the_rdb_both_ways() {
    let lib = "#!lua name=travel\nredis.register_function('echo1', function(keys, args) return args[1] end)";
    let r = crate::util::redis();
    let mut rc = r.connect();
    assert_eq!(rc.cmd(&["FUNCTION", "LOAD", lib]).as_str(), "travel");
    rc.cmd(&["SET", "k", "v"]);
    rc.cmd(&["SAVE"]);
    let dir = crate::util::temp_dir("functions-rdb");
    std::fs::copy(r.dir.join("dump.rdb"), dir.join("dump.rdb")).unwrap();
    let e = crate::util::ember_in(&dir, &[]);
    let mut ec = e.connect();
    assert_eq!(ec.cmd(&["FCALL", "echo1", "0", "hello"]).as_str(), "hello");
    assert_eq!(ec.cmd(&["GET", "k"]).as_str(), "v");
    let lib2 = "#!lua name=second\nredis.register_function('two', function() return 2 end)";
    assert_eq!(ec.cmd(&["FUNCTION", "LOAD", lib2]).as_str(), "second");
    ec.cmd(&["SAVE"]);
    let dir2 = crate::util::temp_dir("functions-rdb-back");
    std::fs::copy(dir.join("dump.rdb"), dir2.join("dump.rdb")).unwrap();
    let r2 = crate::util::redis_in(&dir2, &[]);
    let mut r2c = r2.connect();
    assert!(eventually(Duration::from_secs(10), || r2c.cmd(&["PING"]).text() == "+PONG\r\n"));
    assert_eq!(r2c.cmd(&["FCALL", "two", "0"]).text(), ":2\r\n");
    assert_eq!(r2c.cmd(&["FCALL", "echo1", "0", "x"]).as_str(), "x");
}

/// rdb-key-save-delay (Redis's test knob) keeps a BGSAVE running: one key per that many µs.
#[test]
fn rdb_key_save_delay_slows_a_background_save() {
    let s = crate::util::ember(&[]);
    let mut c = s.connect();
    c.cmd(&["DEBUG", "POPULATE", "10"]);
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "100000"]);
    assert!(c.cmd(&["BGSAVE"]).as_str().contains("Background saving started"));
    assert_eq!(crate::util::info_field(&mut c, "persistence", "rdb_bgsave_in_progress"), 1);
    assert!(crate::util::eventually(Duration::from_secs(10), || crate::util::info_field(
        &mut c,
        "persistence",
        "rdb_bgsave_in_progress"
    ) == 0));
}

/// Writes `keys` keys k0.. and starts a BGSAVE pausing `delay_us` per key.
fn slow_bgsave(c: &mut Conn, keys: usize, delay_us: &str) {
    for i in 0..keys {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", delay_us]);
    assert_eq!(c.cmd(&["BGSAVE"]).as_str(), "Background saving started");
}

/// BGSAVE has a writer process, as Redis has a child: `pgrep -P` finds it, and killing it
/// fails the save (its temporary file removed) and stops writes, scripts' writes included,
/// until a save succeeds.
#[test]
fn killing_the_bgsave_child_fails_the_save_and_stops_writes() {
    let s = ember(&["--save", "900 1"]);
    let mut c = s.connect();
    slow_bgsave(&mut c, 20, "100000");
    let pid = c.cmd(&["INFO", "server"]).as_str();
    let pid = pid.lines().find_map(|l| l.strip_prefix("process_id:")).unwrap().trim().to_string();
    let mut child = String::new();
    assert!(eventually(Duration::from_secs(5), || {
        let out = Command::new("pgrep").args(["-P", &pid]).output().expect("pgrep (procps) is required");
        child = String::from_utf8_lossy(&out.stdout).trim().to_string();
        !child.is_empty()
    }));
    let temp = s.dir.join(format!("temp-{child}.rdb"));
    assert!(eventually(Duration::from_secs(5), || temp.exists()), "no {}", temp.display());
    Command::new("kill").args(["-9", &child]).status().unwrap();
    assert!(eventually(Duration::from_secs(5), || info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == 0));
    assert!(!temp.exists(), "the killed child's temporary file was left");
    assert_eq!(c.cmd(&["GET", "k1"]).as_str(), "v");
    assert!(c.cmd(&["SET", "x", "y"]).text().starts_with("-MISCONF"));
    let script = c.cmd(&["EVAL", "return redis.call('set', KEYS[1], 'z')", "1", "x"]).text();
    assert!(script.starts_with("-MISCONF"), "{script}");
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    assert_eq!(c.cmd(&["BGSAVE"]).as_str(), "Background saving started");
    assert!(eventually(Duration::from_secs(5), || c.cmd(&["SET", "x", "y"]).text() == "+OK\r\n"));
}

/// Peak resident memory of process `pid` (VmHWM), in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc is required");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmHWM:")).expect("VmHWM");
    kb.trim().trim_end_matches(" kB").trim().parse::<u64>().expect("VmHWM in kB") * 1024
}

#[test]
fn loading_a_file_does_not_hold_the_data_set_twice() {
    let s = ember(&[]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["DEBUG", "POPULATE", "400000", "key", "200"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["SAVE"]).text(), "+OK\r\n");
    let s2 = crate::util::ember_in(&s.dir.clone(), &[]);
    let mut c2 = s2.connect();
    assert!(
        crate::util::eventually(Duration::from_secs(60), || c2.cmd(&["DBSIZE"]).text() == ":400000\r\n"),
        "the file did not load"
    );
    let used = crate::util::info_field(&mut c2, "memory", "used_memory");
    let peak = peak_rss(s2.child.id());
    // Keys installed as they are parsed, the file read through a window: the peak is the
    // data set and the process's own (a parsed copy of every key and the whole file beside
    // the installed data set was 1.8 times).
    assert!(peak < used * 12 / 10 + (24 << 20), "peak RSS {peak} while loading {used} bytes of data");
}

/// A running BGSAVE reports its progress and what it holds beside the data set (the
/// forkless counterpart of Redis's copy-on-write figures), and the peak once it ended.
#[test]
fn bgsave_reports_progress_and_its_memory_cost() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.cmd(&["DEBUG", "POPULATE", "2000", "key", "500"]);
    assert_eq!(info_field(&mut c, "persistence", "current_save_keys_total"), 0);
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "1000"]);
    assert!(c.cmd(&["BGSAVE"]).as_str().contains("Background saving started"));
    assert_eq!(info_field(&mut c, "persistence", "current_save_keys_total"), 2000);
    assert!(
        eventually(Duration::from_secs(10), || info_field(&mut c, "persistence", "current_save_keys_processed") > 10)
    );
    // Keys changed before the walk reached them are written first, and held until the
    // writer takes them.
    for i in 1000..1100 {
        c.cmd(&["SETRANGE", &format!("key:{i}"), "0", "B"]);
    }
    assert!(info_field(&mut c, "persistence", "current_cow_size") > 0);
    assert!(
        info_field(&mut c, "persistence", "current_cow_peak") >= info_field(&mut c, "persistence", "current_cow_size")
    );
    let perc = crate::util::info_str(&mut c, "persistence", "current_fork_perc");
    assert!(perc.parse::<f64>().is_ok_and(|p| p > 0.0 && p < 100.0), "current_fork_perc:{perc}");
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    assert!(eventually(Duration::from_secs(10), || info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == 0));
    assert_eq!(info_field(&mut c, "persistence", "current_cow_size"), 0);
    assert_eq!(info_field(&mut c, "persistence", "current_save_keys_total"), 0);
    assert!(info_field(&mut c, "persistence", "rdb_last_cow_size") > 0);
}

/// DEBUG SET-SKIP-CHECKSUM-VALIDATION (Redis's test hook): RESTORE then parses payloads
/// whatever their CRC, so damaged ones reach the parser (Redis's corrupt-dump fuzzer).
#[test]
fn restore_checks_the_payload_crc_unless_told_not_to() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.cmd(&["SET", "k", "hello"]);
    let mut payload = payload(&c.cmd(&["DUMP", "k"]));
    let last = payload.len() - 1;
    payload[last] ^= 0xff;
    let restore =
        |c: &mut Conn, p: &[u8]| c.cmd_bytes(&[b"RESTORE".to_vec(), b"k2".to_vec(), b"0".to_vec(), p.to_vec()]).text();
    assert_eq!(restore(&mut c, &payload), "-ERR DUMP payload version or checksum are wrong\r\n");
    assert_eq!(c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "1"]).text(), "+OK\r\n");
    assert_eq!(restore(&mut c, &payload), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k2"]).text(), "$5\r\nhello\r\n");
    c.cmd(&["DEBUG", "SET-SKIP-CHECKSUM-VALIDATION", "0"]);
    c.cmd(&["DEL", "k2"]);
    assert_eq!(restore(&mut c, &payload), "-ERR DUMP payload version or checksum are wrong\r\n");
}

/// The snapshot writer process killed while the save waits (a 10 s pause per key, fixed when
/// the save started as in a forked child): the server sees it at once, not at its next
/// write. And DEBUG LOADAOF during a BGSAVE leaves the save running, as Redis's child goes on
/// saving the old image.
#[test]
fn a_killed_writer_ends_the_save_at_once_and_debug_loadaof_keeps_it() {
    let s = ember(&["--appendonly", "yes"]);
    let mut c = s.connect();
    slow_bgsave(&mut c, 5, "10000000");
    // Setting it back does not hurry the save already running.
    c.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["DBSIZE"]).text(), ":5\r\n");
    assert_eq!(info_field(&mut c, "persistence", "rdb_bgsave_in_progress"), 1, "DEBUG LOADAOF ended the save");
    let pid = info_field(&mut c, "server", "process_id").to_string();
    let out = Command::new("pgrep").args(["-P", &pid]).output().expect("pgrep (procps) is required");
    let child = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!child.is_empty(), "no writer process");
    Command::new("kill").args(["-9", &child]).status().unwrap();
    assert!(
        eventually(Duration::from_secs(3), || info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == 0),
        "the killed writer went unnoticed"
    );
    assert_eq!(info_str(&mut c, "persistence", "rdb_last_bgsave_status"), "err");
}
