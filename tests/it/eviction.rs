//! maxmemory and the eight eviction policies, against the binary: fill past the limit with a
//! known access pattern and check what survives, that memory stays bounded, and that
//! noeviction refuses writes (its exact error text is checked against redis-server in
//! tests/diff/memory.txt).

use std::time::Duration;

use crate::util::{Conn, ember, info_field};

fn value() -> String {
    "x".repeat(1000)
}

fn exists(c: &mut Conn, key: &str) -> bool {
    c.cmd(&["EXISTS", key]).text() == ":1\r\n"
}

/// Sets maxmemory to the current usage plus `headroom` bytes; returns the limit.
fn limit_to_now_plus(c: &mut Conn, headroom: u64) -> u64 {
    let limit = info_field(c, "memory", "used_memory") + headroom;
    c.cmd(&["CONFIG", "SET", "maxmemory", &limit.to_string()]);
    limit
}

/// Writes `n` new 1 KB keys `prefix:i`, checking after each write that used memory stays
/// within the limit plus a small bound.
fn fill(c: &mut Conn, prefix: &str, n: usize, limit: u64, ttl: Option<&str>) {
    for i in 0..n {
        let key = format!("{prefix}:{i}");
        let v = value();
        let mut args = vec!["SET", &key, &v];
        if let Some(t) = ttl {
            args.extend(["EX", t]);
        }
        let r = c.cmd(&args).text();
        assert_eq!(r, "+OK\r\n", "write {i} refused");
        if limit > 0 && i % 50 == 0 {
            let used = info_field(c, "memory", "used_memory");
            assert!(used <= limit + 64 * 1024, "used {used} > limit {limit} + 64 KB after write {i}");
        }
    }
}

#[test]
fn allkeys_lru_keeps_recently_read_keys() {
    let s = ember(&["--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.connect();
    fill(&mut c, "old", 1000, 0, None);
    // The LRU clock has one-second resolution: let the old keys age a full tick.
    std::thread::sleep(Duration::from_millis(1200));
    for i in 0..200 {
        c.cmd(&["GET", &format!("old:{i}")]);
    }
    let limit = limit_to_now_plus(&mut c, 300 * 1024);
    fill(&mut c, "new", 600, limit, None);
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    assert!(evicted >= 300, "only {evicted} evicted");
    let hot = (0..200).filter(|i| exists(&mut c, &format!("old:{i}"))).count();
    let cold = (200..1000).filter(|i| exists(&mut c, &format!("old:{i}"))).count();
    assert!(hot >= 190, "recently read keys were evicted: {hot}/200 left ({cold}/800 cold left)");
    assert!(cold < 800 - 250, "cold keys should go first: {cold}/800 left");
}

#[test]
fn allkeys_lfu_keeps_frequently_read_keys() {
    let s = ember(&["--maxmemory-policy", "allkeys-lfu"]);
    let mut c = s.connect();
    fill(&mut c, "k", 1000, 0, None);
    for _ in 0..50 {
        for i in 0..200 {
            c.cmd(&["GET", &format!("k:{i}")]);
        }
    }
    let f = c.cmd(&["OBJECT", "FREQ", "k:0"]).text();
    let freq: u64 = f.trim_start_matches(':').trim().parse().expect("freq");
    assert!(freq > 5, "a key read 50 times should have a counter above the initial 5: {f}");
    let limit = limit_to_now_plus(&mut c, 300 * 1024);
    fill(&mut c, "new", 600, limit, None);
    let hot = (0..200).filter(|i| exists(&mut c, &format!("k:{i}"))).count();
    assert!(hot >= 190, "frequently read keys were evicted: {hot}/200 left");
    assert!(info_field(&mut c, "stats", "evicted_keys") >= 300);
}

#[test]
fn volatile_ttl_evicts_shortest_ttl_first_and_never_persistent_keys() {
    let s = ember(&["--maxmemory-policy", "volatile-ttl"]);
    let mut c = s.connect();
    fill(&mut c, "p", 300, 0, None);
    for i in 0..600 {
        let (k, v, ttl) = (format!("v:{i}"), value(), (10_000 + i).to_string());
        c.cmd(&["SET", &k, &v, "EX", &ttl]);
    }
    let limit = limit_to_now_plus(&mut c, 200 * 1024);
    fill(&mut c, "new", 400, limit, None);
    assert!((0..300).all(|i| exists(&mut c, &format!("p:{i}"))), "a key without TTL was evicted");
    let alive: Vec<bool> = (0..600).map(|i| exists(&mut c, &format!("v:{i}"))).collect();
    let first_alive = alive.iter().position(|a| *a).expect("some volatile keys survive");
    assert!(first_alive >= 150, "too few volatile keys evicted: {first_alive}");
    assert!(alive[first_alive..].iter().all(|a| *a), "eviction did not follow TTL order: {alive:?}");
}

#[test]
fn volatile_policies_never_touch_persistent_keys_and_refuse_writes_when_none_are_left() {
    for policy in ["volatile-lru", "volatile-lfu", "volatile-random"] {
        let s = ember(&["--maxmemory-policy", policy]);
        let mut c = s.connect();
        fill(&mut c, "p", 300, 0, None);
        fill(&mut c, "v", 300, 0, Some("10000"));
        let limit = limit_to_now_plus(&mut c, 100 * 1024);
        fill(&mut c, "p2", 250, limit, None);
        assert!((0..300).all(|i| exists(&mut c, &format!("p:{i}"))), "{policy}: a persistent key was evicted");
        let volatile_left = (0..300).filter(|i| exists(&mut c, &format!("v:{i}"))).count();
        assert!(volatile_left < 300, "{policy}: nothing evicted");
        // Once every volatile key is gone, writes are refused and reads still work.
        let mut refused = false;
        for i in 0..1000 {
            let r = c.cmd(&["SET", &format!("more:{i}"), &value()]).text();
            if r.starts_with("-OOM") {
                assert_eq!(r, "-OOM command not allowed when used memory > 'maxmemory'.\r\n");
                refused = true;
                break;
            }
        }
        assert!(refused, "{policy}: writes never refused");
        assert_eq!((0..300).filter(|i| exists(&mut c, &format!("v:{i}"))).count(), 0, "{policy}");
        assert_eq!(c.cmd(&["GET", "p:0"]).text(), format!("$1000\r\n{}\r\n", value()));
        assert_eq!(c.cmd(&["DEL", "p:0"]).text(), ":1\r\n");
    }
}

#[test]
fn allkeys_random_bounds_memory() {
    let s = ember(&["--maxmemory-policy", "allkeys-random"]);
    let mut c = s.connect();
    let limit = limit_to_now_plus(&mut c, 500 * 1024);
    fill(&mut c, "k", 3000, limit, None);
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    assert!(evicted >= 2000, "{evicted}");
    let size = c.cmd(&["DBSIZE"]).text();
    let n: u64 = size.trim_start_matches(':').trim().parse().expect("dbsize");
    assert_eq!(n + evicted, 3000);
}

#[test]
fn noeviction_refuses_denyoom_commands_and_multi_but_serves_reads() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["CONFIG", "SET", "maxmemory", "1"]);
    let oom = "-OOM command not allowed when used memory > 'maxmemory'.\r\n";
    assert_eq!(c.cmd(&["SET", "b", "2"]).text(), oom);
    assert_eq!(c.cmd(&["GET", "a"]).text(), "$1\r\n1\r\n");
    assert_eq!(c.cmd(&["MULTI"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["GET", "a"]).text(), oom);
    assert!(c.cmd(&["EXEC"]).text().starts_with("-EXECABORT"));
    assert_eq!(c.cmd(&["DEL", "a"]).text(), ":1\r\n");
    assert_eq!(c.cmd(&["CONFIG", "SET", "maxmemory", "0"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["SET", "b", "2"]).text(), "+OK\r\n");
    assert_eq!(info_field(&mut c, "stats", "evicted_keys"), 0);
}

/// CLIENT LIST's `name=... tot-mem=N` for the client named `name`, None once it is gone.
fn tot_mem(c: &mut Conn, name: &str) -> Option<u64> {
    let list = c.cmd(&["CLIENT", "LIST"]).as_str();
    let line = list.lines().find(|l| l.contains(&format!(" name={name} ")))?;
    let field = line.split(' ').find_map(|f| f.strip_prefix("tot-mem="))?;
    field.parse().ok()
}

/// maxmemory-clients: a client whose query buffer, output buffer or transaction passes the
/// limit is disconnected (the biggest first, and only until the total is below), a
/// no-evict client never is, and INFO counts the evictions.
#[test]
fn maxmemory_clients_evicts_the_biggest_clients_only() {
    let s = ember(&[]);
    let mut admin = s.connect();
    admin.cmd(&["CLIENT", "SETNAME", "admin"]);
    admin.cmd(&["CLIENT", "NO-EVICT", "on"]);
    assert_eq!(admin.cmd(&["CONFIG", "SET", "maxmemory-clients", "3000000"]).text(), "+OK\r\n");
    // A query buffer filling past the limit: the client goes before its command completes.
    let mut big = s.connect();
    big.cmd(&["CLIENT", "SETNAME", "big"]);
    let small_mem = tot_mem(&mut admin, "big").expect("big is listed");
    assert!(small_mem < 100_000, "an idle client holds {small_mem} bytes");
    big.send_raw(format!("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n${}\r\n", 4_000_000).as_bytes());
    big.try_send_raw(&vec![b'v'; 3_500_000]);
    let gone = crate::util::eventually(Duration::from_secs(5), || tot_mem(&mut admin, "big").is_none());
    assert!(gone, "a 3.5 MB query buffer outlived a 3 MB limit");
    assert_eq!(admin.cmd(&["EXISTS", "k"]).text(), ":0\r\n");
    assert_eq!(info_field(&mut admin, "stats", "evicted_clients"), 1);
    // Two clients over half the limit each: only the bigger goes.
    let mut a = s.connect();
    a.cmd(&["CLIENT", "SETNAME", "a"]);
    let mut b = s.connect();
    b.cmd(&["CLIENT", "SETNAME", "b"]);
    // A big argument's whole length counts as soon as it is announced, as Redis reserves it.
    a.send_raw(format!("*2\r\n$4\r\nECHO\r\n${}\r\n", 1_200_000).as_bytes());
    a.send_raw(&vec![b'a'; 1_000_000]);
    assert!(crate::util::eventually(Duration::from_secs(5), || tot_mem(&mut admin, "a").unwrap_or(0) > 1_200_000));
    b.send_raw(format!("*2\r\n$4\r\nECHO\r\n${}\r\n", 2_500_000).as_bytes());
    b.try_send_raw(&vec![b'b'; 2_000_000]);
    let b_gone = crate::util::eventually(Duration::from_secs(5), || tot_mem(&mut admin, "b").is_none());
    assert!(b_gone, "the bigger client stayed");
    assert!(tot_mem(&mut admin, "a").is_some(), "the smaller client was evicted too");
    // A transaction's queue counts; a no-evict client is kept whatever it holds.
    let mut keeper = s.connect();
    keeper.cmd(&["CLIENT", "SETNAME", "keeper"]);
    keeper.cmd(&["CLIENT", "NO-EVICT", "on"]);
    keeper.cmd(&["MULTI"]);
    let chunk = "x".repeat(1_000_000);
    for _ in 0..4 {
        assert_eq!(keeper.cmd(&["SET", "q", &chunk]).text(), "+QUEUED\r\n");
    }
    assert!(tot_mem(&mut admin, "keeper").unwrap_or(0) > 4_000_000);
    assert_eq!(keeper.cmd(&["EXEC"]).children().len(), 4);
    // ...and `a`, though small, went while the keeper was over the limit.
    assert!(tot_mem(&mut admin, "a").is_none(), "the only evictable client stayed over the limit");
    assert_eq!(info_field(&mut admin, "stats", "evicted_clients"), 3);
}

/// Sends `n` pipelined `SET {prefix}{i} <size bytes>` at once (a writer thread fills the
/// socket while the replies are read), as redis-benchmark or the Redis suite's `populate`.
fn burst(port: u16, prefix: &str, n: usize, size: usize) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut w = s.try_clone().expect("clone");
    let value = "A".repeat(size);
    let prefix = prefix.to_string();
    let writer = std::thread::spawn(move || {
        let mut buf = Vec::new();
        for i in 0..n {
            let k = format!("{prefix}{i}");
            buf.extend_from_slice(
                format!("*3\r\n$3\r\nSET\r\n${}\r\n{k}\r\n${}\r\n{value}\r\n", k.len(), value.len()).as_bytes(),
            );
            if buf.len() > 1 << 20 {
                w.write_all(&buf).expect("send");
                buf.clear();
            }
        }
        w.write_all(&buf).expect("send");
    });
    let (mut got, want) = (0, n * 5);
    let mut rbuf = vec![0; 1 << 16];
    while got < want {
        let r = s.read(&mut rbuf).expect("read replies");
        assert!(r > 0, "server closed the connection");
        got += r;
    }
    writer.join().expect("writer");
}

/// A pipelined burst of writes far past maxmemory with the AOF on (the Redis suite's
/// memefficiency populate): eviction keeps up, and what the burst cost beside the data does
/// not stay. The AOF buffer used to keep the burst's size for good (the server read the
/// whole burst in one turn, so the buffer grew by all of it, and clearing kept the
/// capacity), and eviction then made room for it by emptying the database.
#[test]
fn a_pipelined_burst_under_aof_leaves_memory_to_the_data() {
    let s = ember(&["--appendonly", "yes", "--maxmemory-policy", "allkeys-lru"]);
    let mut c = s.connect();
    let start = info_field(&mut c, "memory", "used_memory");
    c.cmd(&["CONFIG", "SET", "maxmemory", "24mb"]);
    for round in 0..2 {
        burst(s.port, &format!("r{round}:"), 300_000, 150);
        let keys = c.cmd(&["DBSIZE"]).text();
        let keys: u64 = keys.trim_start_matches(':').trim().parse().expect("dbsize");
        // 24 MB of ~190-byte keys is over 100,000 keys; emptying the database for buffers
        // left far fewer.
        assert!(keys > 60_000, "round {round}: only {keys} keys left under 24 MB");
        let counted =
            info_field(&mut c, "memory", "used_memory") - info_field(&mut c, "memory", "mem_not_counted_for_evict");
        assert!(counted <= 25 << 20, "round {round}: {counted} bytes counted for eviction");
    }
    c.cmd(&["CONFIG", "SET", "maxmemory", "0"]);
    assert_eq!(c.cmd(&["FLUSHALL", "SYNC"]).text(), "+OK\r\n");
    let settled = crate::util::eventually(Duration::from_secs(10), || {
        info_field(&mut c, "memory", "used_memory") < start + (4 << 20)
    });
    let now = info_field(&mut c, "memory", "used_memory");
    assert!(settled, "{now} bytes used after FLUSHALL, {start} at the start");
    assert!(info_field(&mut c, "memory", "mem_aof_buffer") < 1 << 20);
}
