//! The append-only file against the binary and against real Redis: replay after restart,
//! directories exchanged with redis-server 7.0 in both directions, kill -9 under
//! `appendfsync always` losing no acknowledged write, and a truncated tail recovered.

use std::process::Command;
use std::time::Duration;

use crate::util::{Conn, Proc, ember_in, eventually, temp_dir};

/// DEBUG DIGEST after expiring `short` (digests count logically expired keys still in the
/// table, and a replay never loads them), with the consumer groups' state the digest leaves
/// out: positions, read counters, pending counts per consumer.
fn digest(c: &mut Conn) -> String {
    c.cmd(&["EXISTS", "short"]);
    let mut d = c.cmd(&["DEBUG", "DIGEST"]).text();
    d += &c.cmd(&["XINFO", "GROUPS", "st"]).text();
    d += &c.cmd(&["XPENDING", "st", "g"]).text();
    d += &c.cmd(&["XPENDING", "st", "g2"]).text();
    d += &c.cmd(&["FUNCTION", "LIST", "WITHCODE"]).text();
    d
}

/// Writes of every kind, including the ones that must be logged in replay-safe form.
fn workload(c: &mut Conn) {
    c.cmd(&["SET", "s", "v"]);
    c.cmd(&["SET", "ttl", "v", "EX", "1000"]);
    c.cmd(&["SETEX", "ttl2", "500", "v"]);
    c.cmd(&["SET", "n", "10"]);
    c.cmd(&["INCRBY", "n", "5"]);
    c.cmd(&["INCRBYFLOAT", "f", "1.5"]);
    c.cmd(&["RPUSH", "l", "a", "b", "c"]);
    c.cmd(&["LPOP", "l"]);
    c.cmd(&["SADD", "set", "1", "2", "3", "4", "5"]);
    c.cmd(&["SPOP", "set", "2"]);
    c.cmd(&["HSET", "h", "f", "v", "g", "w"]);
    c.cmd(&["ZADD", "z", "1", "a", "2", "b"]);
    c.cmd(&["ZINCRBY", "z", "2.5", "a"]);
    c.cmd(&["XADD", "st", "*", "f", "v"]);
    c.cmd(&["XADD", "st", "MAXLEN", "~", "100", "*", "f", "w"]);
    c.cmd(&["XGROUP", "CREATE", "st", "g", "0"]);
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "COUNT", "1", "STREAMS", "st", ">"]);
    // Stream reads and claims log PEL changes, not themselves.
    c.cmd(&["XADD", "st", "*", "f", "x"]);
    c.cmd(&["XADD", "st", "*", "f", "y"]);
    c.cmd(&["XREADGROUP", "GROUP", "g", "bob", "COUNT", "2", "STREAMS", "st", ">"]);
    c.cmd(&["XREADGROUP", "GROUP", "g", "alice", "STREAMS", "st", "0"]);
    c.cmd(&["XREADGROUP", "GROUP", "g", "carol", "STREAMS", "st", "0"]);
    let bobs = c.cmd(&["XPENDING", "st", "g", "-", "+", "10", "bob"]).text();
    let first_of_bob = bobs.split("\r\n").find(|l| l.contains('-') && !l.starts_with('*')).unwrap().to_string();
    c.cmd(&["XCLAIM", "st", "g", "carol", "0", &first_of_bob]);
    c.cmd(&["XDEL", "st", &first_of_bob]);
    c.cmd(&["XAUTOCLAIM", "st", "g", "dave", "0", "0", "COUNT", "10"]);
    c.cmd(&["XADD", "st", "*", "f", "z"]);
    c.cmd(&["XGROUP", "CREATE", "st", "g2", "0"]);
    c.cmd(&["XREADGROUP", "GROUP", "g2", "erin", "NOACK", "STREAMS", "st", ">"]);
    c.cmd(&["XCLAIM", "st", "g2", "erin", "0", "0-1", "LASTID", "99999999999999-0"]);
    c.cmd(&["EXPIRE", "h", "1000"]);
    c.cmd(&["PEXPIRE", "gone", "10"]);
    c.cmd(&["SET", "short", "v", "PX", "1"]);
    c.cmd(&["MULTI"]);
    c.cmd(&["SET", "tx", "1"]);
    c.cmd(&["SELECT", "2"]);
    c.cmd(&["SET", "in2", "x"]);
    c.cmd(&["EXEC"]);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["SET", "tmp", "v"]);
    c.cmd(&["DEL", "tmp"]);
    c.cmd(&["PFADD", "hll", "a", "b"]);
    c.cmd(&["SETBIT", "bits", "7", "1"]);
    // A script's effects are logged (as MULTI ... EXEC), never the script: its SPOP replays
    // as what it popped.
    c.cmd(&["SADD", "scriptset", "1", "2", "3"]);
    c.cmd(&[
        "EVAL",
        "redis.call('SET', KEYS[1], ARGV[1]); redis.call('INCR', 'evalcnt'); return redis.call('SPOP', 'scriptset')",
        "1",
        "ek",
        "ev",
    ]);
    c.cmd(&["EVAL", "return redis.call('GET', 'ek')", "0"]);
    // FUNCTION LOAD is logged as itself; an FCALL's effects like a script's.
    c.cmd(&["FUNCTION", "LOAD", "REPLACE", "#!lua name=aoflib\nredis.register_function('aofset', function(keys, args) return redis.call('SET', keys[1], args[1]) end)"]);
    c.cmd(&["FCALL", "aofset", "1", "fk", "fv"]);
}

fn start_redis(dir: &std::path::Path, extra: &[&str]) -> Proc {
    let mut args = vec!["--enable-debug-command", "yes"];
    args.extend_from_slice(extra);
    crate::util::redis_in(dir, &args)
}

#[test]
fn the_log_replays_after_restart_and_is_the_redis_layout() {
    let dir = temp_dir("aof");
    let s = ember_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.connect();
    workload(&mut c);
    std::thread::sleep(Duration::from_millis(20)); // let "short" expire
    let want = digest(&mut c);
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert!(manifest.contains("appendonly.aof.1.base.rdb") && manifest.contains("type i"), "{manifest}");
    s.kill_keep_dir();
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.connect();
    assert_eq!(digest(&mut c), want, "the replayed dataset differs");
    assert_eq!(c.cmd(&["EXISTS", "short"]).text(), ":0\r\n");
    let ttl: i64 = c.cmd(&["TTL", "ttl"]).text().trim_start_matches(':').trim().parse().unwrap();
    assert!((990..=1000).contains(&ttl), "a relative TTL replayed as {ttl}");
}

#[test]
fn aof_directories_move_between_ember_and_redis() {
    // Ember -> Redis.
    let dir = temp_dir("aof-to-redis");
    let s = ember_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.connect();
    workload(&mut c);
    std::thread::sleep(Duration::from_millis(20));
    let want = digest_without_read_counters(&mut c);
    s.kill_keep_dir();
    let r = start_redis(&dir, &["--appendonly", "yes"]);
    let mut rc = r.connect();
    assert_eq!(digest_without_read_counters(&mut rc), want, "redis-server replayed Ember's AOF differently");
    r.kill_keep_dir();
    // Redis -> Ember: Ember's replay restores the live data set, the groups' read counters
    // included (redis-server's own replay of that log loses them, see below).
    let dir = temp_dir("aof-from-redis");
    let r = start_redis(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut rc = r.connect();
    workload(&mut rc);
    std::thread::sleep(Duration::from_millis(20));
    let want = digest(&mut rc);
    drop(rc);
    r.kill_keep_dir();
    let e = ember_in(&dir, &["--appendonly", "yes"]);
    let mut ec = e.connect();
    assert_eq!(digest(&mut ec), want, "Ember replayed redis-server's AOF differently");
}

/// [`digest`] without the groups' read counters: Redis 7.0 logs an XREADGROUP as XCLAIMs
/// whose LASTID carries no count, and redis-server's replay leaves the counter where XGROUP
/// CREATE put it (Ember's counts the reads, as the XREADGROUP did).
fn digest_without_read_counters(c: &mut Conn) -> String {
    let d = digest(c);
    let mut out = Vec::new();
    let mut mask = false;
    for line in d.split("\r\n") {
        out.push(if mask { "?" } else { line });
        mask = line == "entries-read" || line == "lag";
    }
    out.join("\r\n")
}

/// kill -9 at random moments under `appendfsync always`: every acknowledged write survives.
#[test]
fn kill_9_loses_no_acknowledged_write() {
    let dir = temp_dir("aof-crash");
    let mut acked: i64 = -1;
    for round in 0..20 {
        let mut s = ember_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
        let mut c = s.connect();
        // Everything acknowledged in earlier rounds is there.
        if acked >= 0 {
            let got = c.cmd(&["GET", "counter"]).as_str();
            let got: i64 = got.parse().unwrap_or(-1);
            assert!(got >= acked, "round {round}: counter {got} < acknowledged {acked}");
            acked = got;
            let len = c.cmd(&["LLEN", "log"]).text();
            if len != format!(":{}\r\n", acked + 1) {
                let tail = c.cmd(&["LRANGE", "log", "-3", "-1"]).text();
                panic!("round {round}: counter {acked}, LLEN {len}, log ends {tail:?}");
            }
        }
        let pid = s.child.id().to_string();
        let killer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20 + (round * 37 % 80) as u64));
            let _ = Command::new("kill").args(["-9", &pid]).status();
        });
        // Each write is acknowledged only after the log holding it is on disk.
        loop {
            let next = acked + 1;
            // The server dies under us at some point: any I/O failure ends the round.
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                c.send(&["MULTI"]);
                c.send(&["SET", "counter", &next.to_string()]);
                c.send(&["RPUSH", "log", &next.to_string()]);
                c.send(&["EXEC"]);
                for _ in 0..4 {
                    c.read();
                }
            }));
            if done.is_err() {
                break;
            }
            acked = next;
        }
        killer.join().unwrap();
        let _ = s.wait_exit(Duration::from_secs(5));
        s.kill_keep_dir();
    }
    assert!(acked > 20, "only {acked} writes in 20 rounds");
}

/// A kill -9 in the middle of writing a transaction leaves it cut inside a command. Loading
/// must drop the whole transaction: truncated after its last complete command, the file would
/// end in an open MULTI, the next transaction appended would join it, and the next load would
/// run both (a list gained the same element twice: the kill -9 test caught it once).
#[test]
fn a_transaction_cut_inside_a_command_is_dropped_whole() {
    let dir = temp_dir("aof-cut-multi");
    let args = ["--appendonly", "yes", "--appendfsync", "always"];
    let s = ember_in(&dir, &args);
    let mut c = s.connect();
    c.cmd(&["SET", "counter", "1"]);
    c.cmd(&["RPUSH", "log", "0", "1"]);
    s.kill_keep_dir();
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let mut bytes = std::fs::read(&incr).unwrap();
    // MULTI, SET counter 2, RPUSH log 2, and half an EXEC.
    bytes.extend_from_slice(b"*1\r\n$5\r\nMULTI\r\n*3\r\n$3\r\nSET\r\n$7\r\ncounter\r\n$1\r\n2\r\n");
    bytes.extend_from_slice(b"*3\r\n$5\r\nRPUSH\r\n$3\r\nlog\r\n$1\r\n2\r\n*1\r\n$4\r\nEX");
    std::fs::write(&incr, &bytes).unwrap();
    for round in 0..2 {
        let s = ember_in(&dir, &args);
        let mut c = s.connect();
        assert_eq!(c.cmd(&["GET", "counter"]).as_str(), "1", "round {round}");
        assert_eq!(c.cmd(&["LRANGE", "log", "0", "-1"]).text(), "*2\r\n$1\r\n0\r\n$1\r\n1\r\n", "round {round}");
        if round == 0 {
            // A transaction after the cut one is replayed on its own at the next start.
            c.cmd(&["MULTI"]);
            c.cmd(&["SET", "counter", "2"]);
            c.cmd(&["RPUSH", "log", "2"]);
            c.cmd(&["EXEC"]);
            c.cmd(&["MULTI"]);
            c.cmd(&["SET", "counter", "1"]);
            c.cmd(&["RPOP", "log"]);
            c.cmd(&["EXEC"]);
        }
        s.kill_keep_dir();
    }
}

#[test]
fn a_truncated_tail_is_recovered_or_refused_by_configuration() {
    let dir = temp_dir("aof-trunc");
    let s = ember_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.connect();
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["SET", "b", "2"]);
    s.kill_keep_dir();
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let mut bytes = std::fs::read(&incr).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(b"*3\r\n$3\r\nSET\r\n$1\r\nc\r\n$1");
    std::fs::write(&incr, &bytes).unwrap();
    // aof-load-truncated no: refused.
    let out = Command::new(env!("CARGO_BIN_EXE_ember-server"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--appendonly", "yes", "--aof-load-truncated", "no", "--dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a truncated AOF was accepted with aof-load-truncated no");
    // Default: truncated to the last complete command, with the data intact.
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["GET", "b"]).as_str(), "2");
    assert_eq!(c.cmd(&["EXISTS", "c"]).text(), ":0\r\n");
    assert_eq!(std::fs::read(&incr).unwrap().len(), good);
}

fn info(c: &mut Conn, field: &str) -> String {
    let text = c.cmd(&["INFO", "persistence"]).as_str();
    text.lines().find_map(|l| l.strip_prefix(&format!("{field}:"))).unwrap_or_default().trim().to_string()
}

/// BGREWRITEAOF folds the log into a new base file without fork while writes continue; the
/// result replays to the same data in Ember and in redis-server.
#[test]
fn bgrewriteaof_compacts_the_log_while_writes_continue() {
    let dir = temp_dir("aof-rewrite");
    let s = ember_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.connect();
    for i in 0..5000 {
        c.cmd(&["SET", &format!("k{}", i % 500), &i.to_string()]);
    }
    workload(&mut c);
    assert_eq!(c.cmd(&["BGREWRITEAOF"]).text(), "+Background append only file rewriting started\r\n");
    for i in 0..200 {
        c.cmd(&["INCR", "after"]);
        c.cmd(&["SET", &format!("k{i}"), "rewritten"]);
    }
    assert!(eventually(Duration::from_secs(20), || info(&mut c, "aof_rewrite_in_progress") == "0"));
    assert_eq!(info(&mut c, "aof_rewrites"), "1");
    assert_eq!(info(&mut c, "aof_last_bgrewrite_status"), "ok");
    let want = digest(&mut c);
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert_eq!(manifest, "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.2.incr.aof seq 2 type i\n");
    assert!(!dir.join("appendonlydir/appendonly.aof.1.incr.aof").exists(), "the old log was kept");
    s.kill_keep_dir();
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.connect();
    assert_eq!(digest(&mut c), want);
    assert_eq!(c.cmd(&["GET", "after"]).as_str(), "200");
    s.kill_keep_dir();
    let r = start_redis(&dir, &["--appendonly", "yes"]);
    let mut rc = r.connect();
    assert_eq!(digest(&mut rc), want, "redis-server reads the rewritten AOF differently");
}

/// CONFIG SET appendonly yes on a running server: the data so far becomes the base file and
/// later writes are logged; a restart with the AOF finds everything.
#[test]
fn appendonly_can_be_switched_on_at_run_time() {
    let dir = temp_dir("aof-runtime");
    let s = ember_in(&dir, &[]);
    let mut c = s.connect();
    workload(&mut c);
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "yes"]).text(), "+OK\r\n");
    c.cmd(&["SET", "later", "1"]);
    // aof_rewrites counts rewrites started (as Redis does); the first must also end.
    assert!(eventually(Duration::from_secs(20), || {
        info(&mut c, "aof_rewrites") == "1" && info(&mut c, "aof_rewrite_in_progress") == "0"
    }));
    assert_eq!(info(&mut c, "aof_last_bgrewrite_status"), "ok");
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert_eq!(manifest, "file appendonly.aof.1.base.rdb seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
    c.cmd(&["SET", "later2", "2"]);
    let want = digest(&mut c);
    s.kill_keep_dir();
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.connect();
    assert_eq!(digest(&mut c), want);
    assert_eq!(c.cmd(&["CONFIG", "SET", "appendonly", "no"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "unlogged", "x"]).text(), "+OK\r\n");
}

/// appendfsync everysec: a kill -9 loses at most about the last second of acknowledged writes.
#[test]
fn kill_9_under_everysec_loses_at_most_about_a_second() {
    let dir = temp_dir("aof-everysec");
    let mut s = ember_in(&dir, &["--appendonly", "yes", "--appendfsync", "everysec"]);
    let mut c = s.connect();
    let start = std::time::Instant::now();
    let mut acked: Vec<(i64, std::time::Instant)> = Vec::new();
    let mut n = 0i64;
    while start.elapsed() < Duration::from_millis(2500) {
        n += 1;
        c.cmd(&["SET", "counter", &n.to_string()]);
        acked.push((n, std::time::Instant::now()));
    }
    let killed_at = std::time::Instant::now();
    let _ = Command::new("kill").args(["-9", &s.child.id().to_string()]).status();
    let _ = s.wait_exit(Duration::from_secs(5));
    s.kill_keep_dir();
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.connect();
    let got: i64 = c.cmd(&["GET", "counter"]).as_str().parse().unwrap_or(0);
    let acked_at = acked.iter().find(|(v, _)| *v == got).map(|(_, t)| *t).unwrap_or(start);
    let lost = killed_at.duration_since(acked_at);
    assert!(lost < Duration::from_millis(2200), "lost {lost:?} of acknowledged writes ({got} of {n})");
}

/// Reading one entry of a large stream logs a few lines, not the stream.
#[test]
fn stream_reads_log_their_effect_not_the_stream() {
    let dir = temp_dir("aof-streams");
    let s = ember_in(&dir, &["--appendonly", "yes", "--appendfsync", "always"]);
    let mut c = s.connect();
    for chunk in 0..20 {
        let mut args = vec!["XADD".to_string(), "big".into(), "*".into()];
        for f in 0..5 {
            args.push(format!("field{f}"));
            args.push(format!("value-{chunk}-{f}-padding-padding"));
        }
        for _ in 0..500 {
            let a: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
            c.cmd(&a);
        }
    }
    c.cmd(&["XGROUP", "CREATE", "big", "g", "0"]);
    let incr = dir.join("appendonlydir/appendonly.aof.1.incr.aof");
    let before = std::fs::metadata(&incr).unwrap().len();
    for _ in 0..200 {
        c.cmd(&["XREADGROUP", "GROUP", "g", "c", "COUNT", "1", "STREAMS", "big", ">"]);
    }
    c.cmd(&["XAUTOCLAIM", "big", "g", "d", "0", "0", "COUNT", "50"]);
    let grew = std::fs::metadata(&incr).unwrap().len() - before;
    // Each read is an XCLAIM of ~250 bytes; the stream is ~1.5 MB.
    assert!(grew < 200 * 400 + 50 * 250, "the AOF grew {grew} bytes");
    let want = digest_of_group(&mut c);
    s.kill_keep_dir();
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.connect();
    assert_eq!(digest_of_group(&mut c), want);
}

fn digest_of_group(c: &mut Conn) -> String {
    let mut d = c.cmd(&["DEBUG", "DIGEST-VALUE", "big"]).text();
    d += &c.cmd(&["XINFO", "GROUPS", "big"]).text();
    d += &c.cmd(&["XPENDING", "big", "g"]).text();
    d
}

/// BGREWRITEAOF with `appendonly no` writes a base file and a manifest naming only it, as
/// Redis does; a later start with `appendonly yes` (Ember's or Redis's) loads it.
#[test]
fn bgrewriteaof_without_appendonly_writes_a_base_file() {
    let dir = temp_dir("aof-offline-rewrite");
    let s = ember_in(&dir, &[]);
    let mut c = s.connect();
    workload(&mut c);
    for round in 1..=2 {
        assert_eq!(c.cmd(&["BGREWRITEAOF"]).text(), "+Background append only file rewriting started\r\n");
        assert!(eventually(Duration::from_secs(20), || info(&mut c, "aof_rewrite_in_progress") == "0"));
        assert_eq!(info(&mut c, "aof_rewrites"), round.to_string());
        assert_eq!(info(&mut c, "aof_enabled"), "0");
        let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
        assert_eq!(manifest, format!("file appendonly.aof.{round}.base.rdb seq {round} type b\n"));
    }
    assert!(!dir.join("appendonlydir/appendonly.aof.1.base.rdb").exists(), "the replaced base was kept");
    std::thread::sleep(Duration::from_millis(20));
    let want = digest(&mut c);
    s.kill_keep_dir();
    let r = start_redis(&dir, &["--appendonly", "yes"]);
    assert_eq!(digest(&mut r.connect()), want, "redis-server loaded the base differently");
    r.kill_keep_dir();
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    assert_eq!(digest(&mut s.connect()), want);
}

/// DEBUG LOADAOF reloads the dataset from the log and is never logged itself (replaying a log
/// that held it used to recurse until the stack overflowed).
#[test]
fn debug_loadaof_round_trips_and_is_not_logged() {
    let s = crate::util::ember(&["--appendonly", "yes"]);
    let mut c = s.connect();
    c.cmd(&["SET", "foo", "bar", "EX", "100"]);
    c.cmd(&["GETEX", "foo", "PERSIST"]);
    c.cmd(&["SET", "x", "10"]);
    c.cmd(&["EXPIRE", "x", "1000"]);
    for _ in 0..3 {
        assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]).text(), "+OK\r\n");
    }
    assert_eq!(c.cmd(&["TTL", "foo"]).text(), ":-1\r\n");
    let ttl: i64 = c.cmd(&["TTL", "x"]).text().trim_start_matches(':').trim().parse().unwrap();
    assert!((900..=1000).contains(&ttl), "{ttl}");
    assert_eq!(c.cmd(&["GET", "foo"]).text(), "$3\r\nbar\r\n");
}

/// Starts ember-server in `dir` with the AOF on, expecting it to refuse: returns its log.
fn refused_start(dir: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ember-server"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--appendonly", "yes", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!out.status.success(), "the server started");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn write_aof_dir(dir: &std::path::Path, manifest: &str, files: &[(&str, &[u8])]) {
    let d = dir.join("appendonlydir");
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("appendonly.aof.manifest"), manifest).unwrap();
    for (name, bytes) in files {
        std::fs::write(d.join(name), bytes).unwrap();
    }
}

const SET_K1: &[u8] = b"*3\r\n$3\r\nset\r\n$2\r\nk1\r\n$2\r\nv1\r\n";

/// A manifest Redis refuses is refused with Redis's words (tools and tests grep the log).
#[test]
fn malformed_manifests_and_missing_files_stop_the_start_as_in_redis() {
    let cases: &[(&str, &str)] = &[
        (
            "file appendonly.aof.2.incr.aof seq 2 type i\nfile appendonly.aof.1.incr.aof seq 1 type i\n",
            "Found a non-monotonic sequence number",
        ),
        ("file appendonly.aof.1.incr.aof seq 1 type i\n\n", "Invalid AOF manifest file format"),
        ("file appendonly.aof.1.incr.aof seq 1 type x\n", "Unknown AOF file type"),
        (
            "file appendonly.aof.1.incr.aof seq 1 type i\nfile appendonly.aof.2.incr.aof seq 2 type i\n",
            "appendonly.aof.2.incr.aof",
        ),
    ];
    for (i, (manifest, want)) in cases.iter().enumerate() {
        let dir = temp_dir(&format!("aof-manifest-{i}"));
        write_aof_dir(&dir, manifest, &[("appendonly.aof.1.incr.aof", SET_K1)]);
        let log = refused_start(&dir);
        assert!(log.contains(want), "case {i}: no {want:?} in:\n{log}");
    }
}

/// An AOF of Redis < 7 (one file in `dir`) is migrated into the directory and loaded, and
/// a key whose deadline passed while the log was written still replays as logged (Redis
/// expires nothing while loading) and is gone after.
#[test]
fn an_old_single_file_aof_is_migrated_and_loading_expires_nothing() {
    let dir = temp_dir("aof-upgrade");
    let mut old = SET_K1.to_vec();
    old.extend_from_slice(b"*3\r\n$5\r\nrpush\r\n$4\r\nlist\r\n$3\r\nfoo\r\n");
    old.extend_from_slice(b"*3\r\n$9\r\npexpireat\r\n$4\r\nlist\r\n$4\r\n1000\r\n");
    old.extend_from_slice(b"*3\r\n$5\r\nrpush\r\n$4\r\nlist\r\n$3\r\nbar\r\n");
    std::fs::write(dir.join("appendonly.aof"), &old).unwrap();
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["GET", "k1"]).as_str(), "v1");
    assert_eq!(c.cmd(&["LLEN", "list"]).text(), ":0\r\n");
    assert!(!dir.join("appendonly.aof").exists(), "the old file was not moved");
    assert!(dir.join("appendonlydir/appendonly.aof").exists());
    let manifest = std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    assert_eq!(manifest, "file appendonly.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n");
}

/// With aof-disable-auto-gc, rewritten files stay as history (newest first, as Redis lists
/// them) until auto-gc is switched back on.
#[test]
fn history_files_wait_for_auto_gc() {
    let dir = temp_dir("aof-gc");
    let s = ember_in(&dir, &["--appendonly", "yes", "--aof-disable-auto-gc", "yes"]);
    let mut c = s.connect();
    let manifest = || std::fs::read_to_string(dir.join("appendonlydir/appendonly.aof.manifest")).unwrap();
    for round in 1..=2 {
        c.cmd(&["SET", "k", &round.to_string()]);
        assert_eq!(c.cmd(&["BGREWRITEAOF"]).as_str(), "Background append only file rewriting started");
        assert!(eventually(Duration::from_secs(20), || info(&mut c, "aof_rewrite_in_progress") == "0"));
    }
    assert_eq!(
        manifest(),
        "file appendonly.aof.3.base.rdb seq 3 type b\n\
         file appendonly.aof.2.incr.aof seq 2 type h\n\
         file appendonly.aof.2.base.rdb seq 2 type h\n\
         file appendonly.aof.1.incr.aof seq 1 type h\n\
         file appendonly.aof.1.base.rdb seq 1 type h\n\
         file appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    assert!(dir.join("appendonlydir/appendonly.aof.1.base.rdb").exists());
    assert_eq!(c.cmd(&["CONFIG", "SET", "aof-disable-auto-gc", "no"]).text(), "+OK\r\n");
    assert_eq!(
        manifest(),
        "file appendonly.aof.3.base.rdb seq 3 type b\nfile appendonly.aof.3.incr.aof seq 3 type i\n"
    );
    assert!(!dir.join("appendonlydir/appendonly.aof.1.base.rdb").exists());
    assert_eq!(c.cmd(&["DEBUG", "LOADAOF"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "k"]).as_str(), "2");
}

/// aof-use-rdb-preamble no: the base is commands (every type, deadlines, libraries), named
/// `.base.aof`, and both Ember and redis-server replay it to the same data set.
#[test]
fn a_base_written_as_commands_replays_in_ember_and_redis() {
    let dir = temp_dir("aof-commands-base");
    let s = ember_in(&dir, &["--appendonly", "yes", "--aof-use-rdb-preamble", "no", "--aof-timestamp-enabled", "yes"]);
    let mut c = s.connect();
    workload(&mut c);
    c.cmd(&["ZADD", "inf", "inf", "top", "-inf", "bottom", "1.5", "mid"]);
    let big: Vec<String> = (0..150).map(|i| format!("m{i}")).collect();
    let mut sadd = vec!["SADD", "big"];
    sadd.extend(big.iter().map(|s| s.as_str()));
    c.cmd(&sadd);
    assert_eq!(c.cmd(&["BGREWRITEAOF"]).as_str(), "Background append only file rewriting started");
    assert!(eventually(Duration::from_secs(20), || info(&mut c, "aof_rewrite_in_progress") == "0"));
    assert_eq!(info(&mut c, "aof_last_bgrewrite_status"), "ok");
    std::thread::sleep(Duration::from_millis(20)); // let "short" expire
    let want = digest(&mut c);
    let base = dir.join("appendonlydir/appendonly.aof.2.base.aof");
    let text = std::fs::read(&base).expect("the base is named .base.aof");
    assert!(text.starts_with(b"#TS:"), "no timestamp annotation first");
    assert!(text.windows(4).any(|w| w == b"SADD"), "the set is not rebuilt by SADD");
    s.kill_keep_dir();
    let s = ember_in(&dir, &["--appendonly", "yes"]);
    let mut c = s.connect();
    assert_eq!(digest(&mut c), want, "Ember replayed its base differently");
    // The workload's library came back through FUNCTION LOAD.
    assert_eq!(c.cmd(&["FCALL", "aofset", "1", "scratch", "v"]).text(), "+OK\r\n");
    c.cmd(&["DEL", "scratch"]);
    drop(c);
    s.kill_keep_dir();
    let r = start_redis(&dir, &["--appendonly", "yes"]);
    assert_eq!(digest(&mut r.connect()), want, "redis-server replayed Ember's base differently");
}
