//! Partial resynchronisation with redis-server 7.0 in both directions: after a dropped link,
//! after a restart (the replication ID and offset kept in the RDB file), and after a
//! failover that promotes a replica in the middle of a chain.

use std::time::Duration;

use crate::util::{Conn, Proc, ember, ember_in, eventually, info_field, redis_with, temp_dir};

const WAIT: Duration = Duration::from_secs(20);

fn link_up(c: &mut Conn) -> bool {
    c.cmd(&["INFO", "replication"]).as_str().contains("master_link_status:up")
}

/// Waits until every replica's DEBUG DIGEST is the master's.
fn same_data(master: &mut Conn, replicas: &mut [&mut Conn]) {
    let want = master.cmd(&["DEBUG", "DIGEST"]).as_str();
    for r in replicas.iter_mut() {
        assert!(
            eventually(WAIT, || r.cmd(&["DEBUG", "DIGEST"]).as_str() == want),
            "a replica's digest {} never became the master's {want}",
            r.cmd(&["DEBUG", "DIGEST"]).as_str()
        );
    }
}

fn writes(c: &mut Conn, tag: &str) {
    c.cmd(&["SET", &format!("s:{tag}"), tag]);
    c.cmd(&["SELECT", "2"]);
    c.cmd(&["RPUSH", "list", tag, tag]);
    c.cmd(&["HSET", &format!("h:{tag}"), "f", tag]);
    c.cmd(&["SELECT", "0"]);
    c.cmd(&["INCR", "counter"]);
}

fn sync_counts(c: &mut Conn) -> (u64, u64) {
    (info_field(c, "stats", "sync_full"), info_field(c, "stats", "sync_partial_ok"))
}

/// A replica whose link drops (CLIENT KILL on the master) comes back with PSYNC and gets
/// what it missed from the backlog, not a second full sync: Ember as the master of a
/// redis-server, and as the replica of one.
#[test]
fn a_dropped_link_continues_from_the_backlog() {
    for ember_is_master in [true, false] {
        let (master, replica): (Proc, Proc) = if ember_is_master {
            let m = ember(&[]);
            let port = m.port.to_string();
            (m, redis_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port]))
        } else {
            let m = redis_with(&["--enable-debug-command", "yes"]);
            let port = m.port.to_string();
            (m, ember(&["--replicaof", "127.0.0.1", &port]))
        };
        let (mut mc, mut rc) = (master.connect(), replica.connect());
        assert!(eventually(WAIT, || link_up(&mut rc)), "no link (ember master: {ember_is_master})");
        writes(&mut mc, "one");
        same_data(&mut mc, &mut [&mut rc]);
        assert_eq!(mc.cmd(&["CLIENT", "KILL", "TYPE", "replica"]).as_str(), "1");
        writes(&mut mc, "two");
        same_data(&mut mc, &mut [&mut rc]);
        assert!(eventually(WAIT, || link_up(&mut rc)));
        assert_eq!(sync_counts(&mut mc), (1, 1), "(full, partial) syncs, ember master: {ember_is_master}");
        let offset = info_field(&mut mc, "replication", "master_repl_offset");
        assert!(eventually(WAIT, || info_field(&mut rc, "replication", "master_repl_offset") == offset));
    }
}

/// Shut down with SAVE and started again on the same port and directory, a master keeps its
/// history as replid2 and its redis-server replica continues; a replica restarted the same
/// way continues from the offset in its RDB file.
#[test]
fn a_restart_continues_from_the_rdb_file() {
    // Ember master restarts.
    let dir = temp_dir("psync-master");
    let mut master = ember_in(&dir, &[]);
    let port = master.port.to_string();
    let replica = redis_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port]);
    let (mut mc, mut rc) = (master.connect(), replica.connect());
    assert!(eventually(WAIT, || link_up(&mut rc)));
    writes(&mut mc, "one");
    same_data(&mut mc, &mut [&mut rc]);
    let replid = mc.cmd(&["INFO", "replication"]).as_str();
    let replid = replid.lines().find_map(|l| l.strip_prefix("master_replid:")).unwrap().trim().to_string();
    mc.send(&["SHUTDOWN", "SAVE"]);
    assert!(master.wait_exit(Duration::from_secs(10)));
    master.kill_keep_dir();
    let master = ember_in(&dir, &["--port", &port]);
    let mut mc = master.connect();
    assert!(eventually(WAIT, || info_field(&mut mc, "replication", "connected_slaves") == 1));
    let info = mc.cmd(&["INFO", "replication"]).as_str();
    assert!(info.contains(&format!("master_replid2:{replid}")), "{info}");
    writes(&mut mc, "two");
    same_data(&mut mc, &mut [&mut rc]);
    assert_eq!(sync_counts(&mut mc), (0, 1));

    // Ember replica restarts.
    let master = redis_with(&["--enable-debug-command", "yes"]);
    let mport = master.port.to_string();
    let dir = temp_dir("psync-replica");
    let mut replica = ember_in(&dir, &["--replicaof", "127.0.0.1", &mport]);
    let rport = replica.port.to_string();
    let (mut mc, mut rc) = (master.connect(), replica.connect());
    assert!(eventually(WAIT, || link_up(&mut rc)));
    writes(&mut mc, "one");
    same_data(&mut mc, &mut [&mut rc]);
    rc.send(&["SHUTDOWN", "SAVE"]);
    assert!(replica.wait_exit(Duration::from_secs(10)));
    replica.kill_keep_dir();
    writes(&mut mc, "while down");
    let replica = ember_in(&dir, &["--port", &rport, "--replicaof", "127.0.0.1", &mport]);
    let mut rc = replica.connect();
    assert!(eventually(WAIT, || link_up(&mut rc)));
    same_data(&mut mc, &mut [&mut rc]);
    assert_eq!(sync_counts(&mut mc), (1, 1));
}

/// redis-server → Ember → redis-server: the chained replica gets the master's stream byte for
/// byte (same replication ID and offsets). Promoting the Ember replica keeps the history as
/// replid2, so its own replica and the former master (now its replica) continue without a
/// full sync.
#[test]
fn a_promoted_replica_keeps_the_history() {
    let top = redis_with(&["--enable-debug-command", "yes"]);
    let tport = top.port.to_string();
    let middle = ember(&["--replicaof", "127.0.0.1", &tport]);
    let mport = middle.port.to_string();
    let bottom = redis_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &mport]);
    let (mut tc, mut mc, mut bc) = (top.connect(), middle.connect(), bottom.connect());
    assert!(eventually(WAIT, || link_up(&mut mc) && link_up(&mut bc)));
    writes(&mut tc, "one");
    same_data(&mut tc, &mut [&mut mc, &mut bc]);
    let offset = info_field(&mut tc, "replication", "master_repl_offset");
    assert!(eventually(WAIT, || info_field(&mut bc, "replication", "master_repl_offset") == offset));
    let top_info = tc.cmd(&["INFO", "replication"]).as_str();
    let bottom_info = bc.cmd(&["INFO", "replication"]).as_str();
    let id = |s: &str| s.lines().find(|l| l.starts_with("master_replid:")).unwrap_or_default().to_string();
    assert_eq!(id(&top_info), id(&bottom_info), "the chain shares the master's replication ID");

    assert_eq!(mc.cmd(&["REPLICAOF", "NO", "ONE"]).as_str(), "OK");
    assert_eq!(tc.cmd(&["REPLICAOF", "127.0.0.1", &mport]).as_str(), "OK");
    assert!(eventually(WAIT, || link_up(&mut tc) && link_up(&mut bc)));
    writes(&mut mc, "two");
    same_data(&mut mc, &mut [&mut tc, &mut bc]);
    let (full, partial) = sync_counts(&mut mc);
    assert_eq!(full, 1, "only the bottom replica's first sync is full");
    assert!(partial >= 2, "the former master and the bottom replica continue: {partial}");
}

/// ROLE's first field and, for a replica, its master's port.
fn role_of(c: &mut Conn) -> (String, String) {
    let r = c.cmd(&["ROLE"]);
    let f = r.children();
    (f[0].as_str(), if f.len() >= 5 { f[2].as_str() } else { String::new() })
}

/// FAILOVER both ways with redis-server: Ember hands its role to a redis-server replica
/// (PSYNC .. FAILOVER sent by Ember), then redis-server hands it back (PSYNC .. FAILOVER
/// received by Ember); no write is lost and both continue without a full sync.
#[test]
fn failover_hands_the_role_over_both_ways() {
    let ember_node = ember(&[]);
    let eport = ember_node.port.to_string();
    let redis_node = redis_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &eport]);
    let rport = redis_node.port.to_string();
    let (mut ec, mut rc) = (ember_node.connect(), redis_node.connect());
    assert!(eventually(WAIT, || link_up(&mut rc)));
    writes(&mut ec, "before");
    assert_eq!(
        ec.cmd(&["FAILOVER", "TO", "127.0.0.1", "1"]).text(),
        "-ERR FAILOVER target HOST and PORT is not a replica.\r\n"
    );
    assert_eq!(
        ec.cmd(&["FAILOVER", "FORCE"]).text(),
        "-ERR FAILOVER with force option requires both a timeout and target HOST and IP.\r\n"
    );
    assert_eq!(ec.cmd(&["FAILOVER", "ABORT"]).text(), "-ERR No failover in progress.\r\n");
    assert_eq!(rc.cmd(&["FAILOVER"]).text(), "-ERR FAILOVER is not valid when server is a replica.\r\n");

    assert_eq!(ec.cmd(&["FAILOVER", "TO", "127.0.0.1", &rport]).as_str(), "OK");
    assert!(eventually(WAIT, || role_of(&mut ec) == ("slave".into(), rport.clone()) && link_up(&mut ec)));
    assert_eq!(role_of(&mut rc).0, "master");
    assert_eq!(info_field(&mut rc, "stats", "sync_partial_ok"), 1);
    assert_eq!(crate::util::info_str(&mut ec, "replication", "master_failover_state"), "no-failover");
    writes(&mut rc, "on redis");
    same_data(&mut rc, &mut [&mut ec]);

    assert_eq!(rc.cmd(&["FAILOVER", "TO", "127.0.0.1", &eport]).as_str(), "OK");
    assert!(eventually(WAIT, || role_of(&mut rc) == ("slave".into(), eport.clone()) && link_up(&mut rc)));
    assert_eq!(role_of(&mut ec).0, "master");
    writes(&mut ec, "on ember again");
    same_data(&mut ec, &mut [&mut rc]);
    assert_eq!(sync_counts(&mut ec), (1, 1), "one full sync at the start, one continuation after");
}

/// A full sync comes from a background snapshot: the master goes on serving while it is
/// made (here slowed to 50 ms a key), and the writes made meanwhile reach the replica after
/// the image, as with Redis's disk-based sync.
#[test]
fn a_full_sync_does_not_stop_the_master() {
    full_sync_under_writes(&["--repl-diskless-sync", "no"]);
}

/// The same, diskless: the snapshot goes straight into the replica's socket, framed by an
/// EOF mark, and the replica gets the stream after its first ACK.
#[test]
fn a_diskless_full_sync_does_not_stop_the_master() {
    full_sync_under_writes(&["--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0"]);
}

/// A redis-server replica syncs from an Ember master whose snapshot is slowed down, while
/// clients keep writing: the master answers at once throughout and the replica ends up
/// with everything.
fn full_sync_under_writes(master_args: &[&str]) {
    let master = ember(master_args);
    let mut mc = master.connect();
    for i in 0..40 {
        mc.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    mc.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "50000"]);
    let port = master.port.to_string();
    let replica = redis_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port]);
    let mut rc = replica.connect();
    // Polled without panicking: the replica may not have connected at the first look.
    assert!(eventually(WAIT, || {
        let info = mc.cmd(&["INFO", "replication"]).as_str();
        info.lines().any(|l| l.starts_with("slave0:") && l.contains("state=wait_bgsave"))
    }));
    assert!(eventually(WAIT, || info_field(&mut mc, "persistence", "rdb_bgsave_in_progress") == 1));
    let started = std::time::Instant::now();
    for i in 0..20 {
        assert_eq!(mc.cmd(&["SET", &format!("during{i}"), "x"]).as_str(), "OK");
    }
    assert!(started.elapsed() < Duration::from_millis(1000), "the master stalled: {:?}", started.elapsed());
    assert_eq!(info_field(&mut mc, "persistence", "rdb_bgsave_in_progress"), 1, "the snapshot is still being made");
    assert!(eventually(WAIT, || link_up(&mut rc)));
    mc.cmd(&["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    same_data(&mut mc, &mut [&mut rc]);
    assert_eq!(rc.cmd(&["DBSIZE"]).as_str(), "60");
}

/// A million keys go Ember -> redis-server -> Ember while a client keeps writing to the
/// master during the syncs: every server ends with the same data (DEBUG DIGEST, DBSIZE, and
/// the values of a sample of keys read back one by one).
#[test]
fn a_million_keys_through_redis_and_back_under_writes() {
    let master = ember(&["--repl-diskless-sync-delay", "0"]);
    let mut mc = master.connect();
    // A replica loading a million keys answers nothing meanwhile (loading is synchronous), and
    // on a loaded CI machine that can take longer than the default read timeout.
    let patient = Duration::from_secs(120);
    mc.set_timeout(patient);
    assert_eq!(mc.cmd(&["DEBUG", "POPULATE", "1000000", "key", "16"]).as_str(), "OK");
    mc.cmd(&["RPUSH", "list", "a", "b", "c"]);
    mc.cmd(&["HSET", "hash", "f", "v"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let mut w = master.connect();
        w.set_timeout(patient);
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                w.cmd(&["SET", &format!("during:{n}"), &n.to_string()]);
                w.cmd(&["INCR", "counter"]);
                w.cmd(&["LPUSH", "list", &n.to_string()]);
                n += 1;
            }
            n
        })
    };
    let port = master.port.to_string();
    let middle = redis_with(&[
        "--enable-debug-command",
        "yes",
        "--repl-diskless-sync-delay",
        "0",
        "--replicaof",
        "127.0.0.1",
        &port,
    ]);
    let mut rc = middle.connect();
    rc.set_timeout(patient);
    let rport = middle.port.to_string();
    let last = ember(&["--replicaof", "127.0.0.1", &rport]);
    let mut lc = last.connect();
    lc.set_timeout(patient);
    let long = Duration::from_secs(120);
    assert!(eventually(long, || link_up(&mut rc)), "redis-server never synced from Ember");
    assert!(eventually(long, || link_up(&mut lc)), "Ember never synced from redis-server");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    assert!(written > 0);
    let offset = |c: &mut Conn| crate::util::info_str(c, "replication", "master_repl_offset");
    // The master's PINGs move its offset on: all three must meet at one moment.
    let met = eventually(long, || {
        let want = offset(&mut mc);
        offset(&mut rc) == want && offset(&mut lc) == want
    });
    assert!(met, "the offsets never met: {} {} {}", offset(&mut mc), offset(&mut rc), offset(&mut lc));
    let digest = mc.cmd(&["DEBUG", "DIGEST"]).as_str();
    let size = mc.cmd(&["DBSIZE"]).as_str();
    for c in [&mut rc, &mut lc] {
        assert_eq!(c.cmd(&["DEBUG", "DIGEST"]).as_str(), digest);
        assert_eq!(c.cmd(&["DBSIZE"]).as_str(), size);
        for k in ["key:0", "key:999999", "key:424242", "counter", "during:0"] {
            assert_eq!(c.cmd(&["GET", k]).as_str(), mc.cmd(&["GET", k]).as_str(), "{k}");
        }
        assert_eq!(c.cmd(&["LRANGE", "list", "0", "-1"]).text(), mc.cmd(&["LRANGE", "list", "0", "-1"]).text());
    }
}

/// Redis 7's shared replication buffer: the replicas and the backlog share one copy of the
/// stream. A stopped replica keeps what it has not read, so the backlog outgrows its size
/// and another replica that left meanwhile (REPLICAOF elsewhere and back) continues from it
/// (`+CONTINUE`, not a second full sync, in the database the stream had selected); two
/// replicas behind cost one copy, not two; once the stopped one catches up, the backlog
/// shrinks back to its size.
#[test]
fn a_slow_replica_keeps_the_stream_for_the_others() {
    let master = ember(&["--repl-backlog-size", "16384", "--client-output-buffer-limit", "replica 0 0 0"]);
    let mut mc = master.connect();
    let port = master.port.to_string();
    let fast = ember(&["--replicaof", "127.0.0.1", &port]);
    let mut fc = fast.connect();
    assert!(eventually(WAIT, || link_up(&mut fc)), "the first replica never synced");
    let slow = redis_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &port]);
    let mut sc = slow.connect();
    assert!(eventually(WAIT, || link_up(&mut sc)), "redis-server never synced");
    let (full, partial) = sync_counts(&mut mc);
    assert_eq!((full, partial), (2, 0));

    std::process::Command::new("kill").args(["-STOP", &slow.child.id().to_string()]).status().expect("kill");
    let value = "v".repeat(10_000);
    let fill = |c: &mut Conn, tag: &str, n: usize| {
        for i in 0..n {
            c.send(&["SET", &format!("{tag}:{i}"), &value]);
        }
        for _ in 0..n {
            assert_eq!(c.read().text(), "+OK\r\n");
        }
    };
    // Far more than the stopped replica's socket buffers take, in a database the stream
    // selects once.
    mc.cmd(&["SELECT", "3"]);
    fill(&mut mc, "a", 3000);
    let histlen = info_field(&mut mc, "replication", "repl_backlog_histlen");
    assert!(histlen > 20_000_000, "the backlog did not outgrow its size: {histlen}");
    let shared = info_field(&mut mc, "memory", "mem_total_replication_buffers");
    assert!(shared >= histlen && shared < histlen + histlen / 4, "one copy of the stream: {shared} for {histlen}");

    // The other replica leaves, the stream goes on without it, and it comes back.
    let offset = |c: &mut Conn| info_field(c, "replication", "master_repl_offset");
    assert!(eventually(WAIT, || offset(&mut fc) == offset(&mut mc)));
    let nowhere = crate::util::free_port().to_string();
    assert_eq!(fc.cmd(&["REPLICAOF", "127.0.0.1", &nowhere]).text(), "+OK\r\n");
    assert!(eventually(WAIT, || info_field(&mut mc, "replication", "connected_slaves") == 1));
    fill(&mut mc, "b", 500);
    assert_eq!(fc.cmd(&["REPLICAOF", "127.0.0.1", &port]).text(), "+OK\r\n");
    assert!(eventually(WAIT, || link_up(&mut fc)), "the first replica never came back");
    assert_eq!(sync_counts(&mut mc), (2, 1), "it continued from the kept stream");
    same_data(&mut mc, &mut [&mut fc]);

    // The stopped one resumes and catches up: the backlog goes back to about its size.
    std::process::Command::new("kill").args(["-CONT", &slow.child.id().to_string()]).status().expect("kill");
    same_data(&mut mc, &mut [&mut sc]);
    assert!(
        eventually(WAIT, || info_field(&mut mc, "replication", "repl_backlog_histlen") < 100_000),
        "the backlog kept {} bytes",
        info_field(&mut mc, "replication", "repl_backlog_histlen")
    );
    assert_eq!(sync_counts(&mut mc), (2, 1));
}
