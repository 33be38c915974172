//! Clusters of several nodes over the cluster bus: `redis-cli --cluster create` of Ember
//! masters, then of Ember and redis-server 7.0 masters together; clients following -MOVED
//! (redis-cli -c, redis-py's RedisCluster); PUBLISH across nodes; a killed master flagged
//! FAIL by the others and trusted again after it restarts from its nodes.conf.

use std::process::Command;
use std::time::Duration;

use crate::util::{Conn, Proc, ember_in, eventually, free_port, redis_in, temp_dir};

/// An Ember cluster node with a free bus port, data in `dir`, at `port` (0: any).
fn ember_node(dir: &std::path::Path, port: u16) -> Proc {
    let (port, bus) = (port.to_string(), free_port().to_string());
    ember_in(
        dir,
        &["--port", &port, "--cluster-enabled", "yes", "--cluster-port", &bus, "--cluster-node-timeout", "1500"],
    )
}

fn redis_node() -> Proc {
    let bus = free_port().to_string();
    redis_in(
        &temp_dir("redis-cluster"),
        &["--cluster-enabled", "yes", "--cluster-port", &bus, "--cluster-node-timeout", "1500"],
    )
}

fn redis_cli(args: &[&str]) -> String {
    let out =
        Command::new("redis-cli").args(args).output().expect("redis-cli is required (apt-get install redis-tools)");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// `redis-cli --cluster create` of the nodes with `replicas` replicas per master ("0": all
/// masters); asserts it reports full coverage.
fn create(ports: &[u16], replicas: &str) {
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut args = vec!["--cluster", "create"];
    args.extend(addrs.iter().map(String::as_str));
    args.extend(["--cluster-replicas", replicas, "--cluster-yes"]);
    let out = redis_cli(&args);
    assert!(out.contains("[OK] All 16384 slots covered."), "--cluster create failed:\n{out}");
}

/// Waits until every node says the cluster is ok and knows `n` connected nodes.
fn wait_ok(ports: &[u16], n: usize) {
    for &p in ports {
        let mut c = Conn::new(p);
        let ok = eventually(Duration::from_secs(20), || {
            let info = c.cmd(&["CLUSTER", "INFO"]).as_str();
            let nodes = c.cmd(&["CLUSTER", "NODES"]).as_str();
            info.contains("cluster_state:ok")
                && info.contains(&format!("cluster_known_nodes:{n}\r\n"))
                && nodes.lines().filter(|l| l.contains(" connected")).count() == n
        });
        let nodes = c.cmd(&["CLUSTER", "NODES"]).as_str();
        assert!(ok, "node {p} did not see a healthy cluster of {n}:\n{nodes}");
    }
}

/// redis-py's RedisCluster writes and reads keys of every node through the given entry point.
fn redis_py_workload(port: u16) {
    let script = r#"
import sys
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
for i in range(500):
    rc.set(f"key:{i}", i)
assert [int(rc.get(f"key:{i}")) for i in range(500)] == list(range(500))
rc.mset_nonatomic({"a": 1, "b": 2, "c": 3})
print(rc.mget_nonatomic(["a", "b", "c"]), len(rc.get_nodes()))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port.to_string()])
        .output()
        .expect("python3 with redis-py is required (see .ci/run)");
    assert!(out.status.success(), "redis-py RedisCluster failed:\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("[b'1', b'2', b'3']"));
}

#[test]
fn three_ember_masters_form_a_cluster() {
    let nodes: Vec<Proc> = (0..3).map(|_| ember_node(&temp_dir("cluster-bus"), 0)).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create(&ports, "0");
    wait_ok(&ports, 3);
    // Every node sees the same slot map, each master its third.
    let mut c = Conn::new(ports[0]);
    let slots = c.cmd(&["CLUSTER", "SLOTS"]);
    assert_eq!(slots.children().len(), 3, "{slots:?}");
    let moved = c.cmd(&["SET", "foo", "bar"]).text();
    let owner = Conn::new(ports[2]).cmd(&["CLUSTER", "MYID"]).as_str();
    assert_eq!(moved, format!("-MOVED 12182 127.0.0.1:{}\r\n", ports[2]), "foo's slot is the third node's ({owner})");
    let p0 = ports[0].to_string();
    assert_eq!(redis_cli(&["-c", "-p", &p0, "SET", "foo", "bar"]), "OK\n");
    assert_eq!(redis_cli(&["-p", &ports[2].to_string(), "GET", "foo"]), "bar\n");
    redis_py_workload(ports[1]);
    let check = redis_cli(&["--cluster", "check", &format!("127.0.0.1:{}", ports[1])]);
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");

    // PUBLISH on one node reaches a subscriber on another, over the bus.
    let mut sub = Conn::new(ports[2]);
    sub.send(&["SUBSCRIBE", "news"]);
    assert!(sub.read().text().contains("news"));
    Conn::new(ports[0]).cmd(&["PUBLISH", "news", "hello"]);
    assert_eq!(sub.read().text(), "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
}

#[test]
fn a_mixed_cluster_with_redis_server_detects_a_failed_master() {
    let mut ember: Vec<Proc> = (0..3).map(|_| ember_node(&temp_dir("cluster-mixed"), 0)).collect();
    let redis: Vec<Proc> = (0..3).map(|_| redis_node()).collect();
    // Interleaved, so the slots are spread over both kinds.
    let ports: Vec<u16> = ember.iter().zip(&redis).flat_map(|(e, r)| [e.port, r.port]).collect();
    create(&ports, "0");
    wait_ok(&ports, 6);
    let check = redis_cli(&["--cluster", "check", &format!("127.0.0.1:{}", redis[0].port)]);
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    redis_py_workload(redis[1].port);
    redis_py_workload(ember[1].port);

    // A killed Ember master: the others (Ember and Redis alike) agree it failed.
    let victim = ember.remove(2);
    let (port, dir) = (victim.port, victim.dir.clone());
    let id = Conn::new(port).cmd(&["CLUSTER", "MYID"]).as_str();
    victim.kill_keep_dir();
    let others: Vec<u16> = ports.iter().copied().filter(|&p| p != port).collect();
    for &p in &others {
        let mut c = Conn::new(p);
        let failed = eventually(Duration::from_secs(20), || {
            c.cmd(&["CLUSTER", "NODES"]).as_str().lines().any(|l| l.starts_with(&id) && l.contains("master,fail "))
        });
        assert!(failed, "node {p} did not flag {id} as failed");
        assert!(c.cmd(&["CLUSTER", "INFO"]).as_str().contains("cluster_state:fail"));
    }
    // Back from its nodes.conf, with the same id, slots and peers: the cluster heals.
    let back = ember_node(&dir, port);
    assert_eq!(back.connect().cmd(&["CLUSTER", "MYID"]).as_str(), id);
    wait_ok(&ports, 6);
}

/// `redis-cli --cluster reshard` moves 1000 slots while redis-py's RedisCluster writes
/// (following -ASK and -MOVED): every acknowledged write is there afterwards.
#[test]
fn resharding_under_writes_loses_no_acknowledged_write() {
    let nodes: Vec<Proc> = (0..3).map(|_| ember_node(&temp_dir("cluster-reshard"), 0)).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create(&ports, "0");
    wait_ok(&ports, 3);
    let stop = temp_dir("reshard-stop").join("stop");
    let writer = r#"
import os, sys
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(sys.argv[1]), cluster_error_retry_attempts=10)
acked, errors, i = [], 0, 0
while not os.path.exists(sys.argv[2]) or i < 3000:
    try:
        if rc.set(f"w:{i}", i):
            acked.append(i)
    except Exception as e:
        errors += 1
    i += 1
rc2 = RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
lost = [k for k in acked if rc2.get(f"w:{k}") != str(k).encode()]
print(len(acked), errors, len(lost), lost[:10])
"#;
    let child = Command::new("python3")
        .args(["-c", writer, &ports[0].to_string(), &stop.to_string_lossy()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 with redis-py is required (see .ci/run)");
    let from = Conn::new(ports[0]).cmd(&["CLUSTER", "MYID"]).as_str();
    let to = Conn::new(ports[1]).cmd(&["CLUSTER", "MYID"]).as_str();
    let out = redis_cli(&[
        "--cluster",
        "reshard",
        &format!("127.0.0.1:{}", ports[0]),
        "--cluster-from",
        &from,
        "--cluster-to",
        &to,
        "--cluster-slots",
        "1000",
        "--cluster-yes",
    ]);
    assert!(out.contains("Moving slot 999 from"), "reshard did not finish:\n{out}");
    std::fs::write(&stop, b"").expect("stop file");
    let done = child.wait_with_output().expect("writer");
    let report = String::from_utf8_lossy(&done.stdout).into_owned();
    assert!(done.status.success(), "writer failed: {report}\n{}", String::from_utf8_lossy(&done.stderr));
    let fields: Vec<&str> = report.split_whitespace().collect();
    let acked: usize = fields.first().and_then(|n| n.parse().ok()).unwrap_or(0);
    assert!(acked >= 3000, "too few writes acknowledged: {report}");
    assert_eq!(fields.get(2), Some(&"0"), "acknowledged writes lost: {report}");
    // The slots moved: the target serves 0-999, every node agrees.
    let check = redis_cli(&["--cluster", "check", &format!("127.0.0.1:{}", ports[2])]);
    assert!(check.contains("[OK] All nodes agree about slots configuration."), "{check}");
    assert!(!check.contains("[WARNING]") && !check.contains("[ERR]"), "{check}");
    let slots = Conn::new(ports[2]).cmd(&["CLUSTER", "NODES"]).as_str();
    assert!(slots.lines().any(|l| l.starts_with(&to) && l.contains(" 0-999 ")), "{slots}");
}

/// `redis-cli --cluster create --cluster-replicas 1` of six Ember nodes: three masters,
/// each with a replica that follows it (READONLY reads), and takes over its slots when the
/// master is killed.
#[test]
fn replicas_follow_their_masters_and_take_over_when_one_dies() {
    let mut nodes: Vec<Proc> = (0..6).map(|_| ember_node(&temp_dir("cluster-replicas"), 0)).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create(&ports, "1");
    wait_ok(&ports, 6);
    let check = redis_cli(&["--cluster", "check", &format!("127.0.0.1:{}", ports[0])]);
    assert_eq!(check.matches("1 additional replica(s)").count(), 3, "{check}");

    // Who serves foo's slot, and its replica (once the first node has heard of it).
    let mut c = Conn::new(ports[0]);
    assert_eq!(c.cmd(&["CLUSTER", "KEYSLOT", "foo"]).as_str(), "12182");
    let mut found = None;
    let known = eventually(Duration::from_secs(20), || {
        let text = c.cmd(&["CLUSTER", "NODES"]).as_str();
        let Some(m) = text.lines().find(|l| l.contains(" master ") && l.ends_with("10923-16383")) else {
            return false;
        };
        let id = m.split(' ').next().unwrap_or_default().to_string();
        let port_of =
            |l: &str| l.split(' ').nth(1).and_then(|a| a.split(['@', ':']).nth(1)).and_then(|p| p.parse().ok());
        let Some(r) = text.lines().find(|l| l.contains(&format!(" slave {id} "))) else { return false };
        found = port_of(m).zip(port_of(r));
        found.is_some()
    });
    assert!(known, "no master of 10923-16383 with a replica: {}", c.cmd(&["CLUSTER", "NODES"]).as_str());
    let (master, replica): (u16, u16) = found.expect("found above");
    let mut m = Conn::new(master);
    assert_eq!(m.cmd(&["SET", "foo", "bar"]).text(), "+OK\r\n");
    assert_eq!(m.cmd(&["WAIT", "1", "10000"]).text(), ":1\r\n", "the replica did not acknowledge");
    let mut r = Conn::new(replica);
    assert_eq!(r.cmd(&["GET", "foo"]).text(), format!("-MOVED 12182 127.0.0.1:{master}\r\n"));
    assert_eq!(r.cmd(&["READONLY"]).text(), "+OK\r\n");
    assert_eq!(r.cmd(&["GET", "foo"]).text(), "$3\r\nbar\r\n");
    // A replica shows in CLUSTER SLOTS once it has data from its master (Redis hides one
    // whose replication offset is still 0): a write to each master (slots of b, c, foo).
    for key in ["b", "c"] {
        assert_eq!(redis_cli(&["-c", "-p", &replica.to_string(), "SET", key, "1"]), "OK\n");
    }
    let listed = eventually(Duration::from_secs(10), || {
        r.cmd(&["CLUSTER", "SLOTS"]).children().iter().all(|s| s.children().len() == 4)
    });
    assert!(listed, "master and one replica per range: {:?}", r.cmd(&["CLUSTER", "SLOTS"]));

    // kill -9 of the master: the replica serves the slots within node-timeout + 2 s
    // (1.5 s here; a second more for a loaded machine).
    let victim = nodes.iter().position(|n| n.port == master).expect("master process");
    let started = std::time::Instant::now();
    nodes.remove(victim).kill_keep_dir();
    // A connection without READONLY: the replica answers as the slot's master now.
    let promoted =
        eventually(Duration::from_secs(20), || Conn::new(replica).cmd(&["GET", "foo"]).text() == "$3\r\nbar\r\n");
    let took = started.elapsed();
    assert!(promoted, "the replica never took over");
    assert!(took < Duration::from_millis(1500 + 2000 + 1000), "failover took {took:?}");
    let others: Vec<u16> = ports.iter().copied().filter(|&p| p != master).collect();
    wait_ok_among(&others);
    let view = Conn::new(others[0]).cmd(&["CLUSTER", "NODES"]).as_str();
    assert!(view.lines().any(|l| l.contains(&format!(":{replica}@")) && l.contains("master")), "{view}");

    // CLUSTER FAILOVER (no option) on another master's replica: the master pauses, the
    // replica catches up and is elected; the old master follows it, nothing lost.
    let (m2, r2) = others
        .iter()
        .find_map(|&p| {
            let line = view.lines().find(|l| l.contains(&format!(":{p}@")) && l.contains(" slave "))?;
            let master_id = line.split(' ').nth(3)?;
            let m = view.lines().find(|l| l.starts_with(master_id))?;
            let mport = m.split(' ').nth(1)?.split(['@', ':']).nth(1)?.parse::<u16>().ok()?;
            Some((mport, p))
        })
        .expect("another master with a replica");
    let mut m = Conn::new(m2);
    let key = (0..1000).map(|i| format!("mf{i}")).find(|k| m.cmd(&["SET", k, "v"]).text() == "+OK\r\n");
    let key = key.expect("a key of that master");
    assert_eq!(Conn::new(r2).cmd(&["CLUSTER", "FAILOVER"]).text(), "+OK\r\n");
    let switched = eventually(Duration::from_secs(20), || {
        Conn::new(r2).cmd(&["CLUSTER", "NODES"]).as_str().lines().any(|l| l.contains("myself,master"))
            && Conn::new(m2).cmd(&["CLUSTER", "NODES"]).as_str().lines().any(|l| l.contains("myself,slave"))
    });
    assert!(switched, "the manual failover did not swap {m2} and {r2}");
    assert_eq!(Conn::new(r2).cmd(&["GET", &key]).text(), "$1\r\nv\r\n");
    assert_eq!(Conn::new(r2).cmd(&["SET", &key, "w"]).text(), "+OK\r\n", "the new master takes writes");
}

/// Replica migration: a master whose only replica dies gets one of the replicas of a master
/// that has two (cluster-migration-barrier 1), after Redis's 5 s orphan delay.
#[test]
fn a_replica_migrates_to_an_orphaned_master() {
    let mut nodes: Vec<Proc> = (0..6).map(|_| ember_node(&temp_dir("cluster-migration"), 0)).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    create(&ports, "1");
    wait_ok(&ports, 6);
    // (id, port, master id or "-") of every node, as the first node sees them.
    let table = |port: u16| -> Vec<(String, u16, String)> {
        let text = Conn::new(port).cmd(&["CLUSTER", "NODES"]).as_str();
        text.lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split(' ').collect();
                let p = f.get(1)?.split(['@', ':']).nth(1)?.parse().ok()?;
                Some((f[0].to_string(), p, f.get(3)?.to_string()))
            })
            .collect()
    };
    let mut t = Vec::new();
    let settled = eventually(Duration::from_secs(20), || {
        t = table(ports[0]);
        t.iter().filter(|n| n.2 == "-").count() == 3
    });
    assert!(settled, "three masters and three replicas expected: {t:?}");
    let masters: Vec<&(String, u16, String)> = t.iter().filter(|n| n.2 == "-").collect();
    let (rich, orphan) = (masters[0].clone(), masters[1].clone());
    let doomed = t.iter().find(|n| n.2 == orphan.0).expect("the orphan-to-be's replica").1;

    // A seventh node joins as the second replica of `rich`.
    let extra = ember_node(&temp_dir("cluster-migration"), 0);
    let mut x = Conn::new(extra.port);
    let me = Conn::new(ports[0]).cmd(&["CLUSTER", "NODES"]).as_str();
    let me = me.lines().find(|l| l.contains("myself")).expect("myself line");
    let bus = me.split(' ').nth(1).and_then(|a| a.split('@').nth(1)).expect("bus port").to_string();
    let meet = x.cmd(&["CLUSTER", "MEET", "127.0.0.1", &ports[0].to_string(), &bus]);
    assert_eq!(meet.text(), "+OK\r\n");
    let met = eventually(Duration::from_secs(20), || x.cmd(&["CLUSTER", "NODES"]).as_str().lines().count() == 7);
    assert!(met, "the new node did not learn the cluster:\n{}", x.cmd(&["CLUSTER", "NODES"]).as_str());
    assert_eq!(x.cmd(&["CLUSTER", "REPLICATE", &rich.0]).text(), "+OK\r\n");
    let mut all = ports.clone();
    all.push(extra.port);
    wait_ok(&all, 7);
    let two = eventually(Duration::from_secs(20), || table(orphan.1).iter().filter(|n| n.2 == rich.0).count() == 2);
    assert!(two, "the orphan-to-be does not see two replicas of {}", rich.0);

    // kill -9 of the orphan's replica: one of rich's replicas moves to it.
    let victim = nodes.iter().position(|n| n.port == doomed).expect("replica process");
    nodes.remove(victim).kill_keep_dir();
    let mut m = Conn::new(orphan.1);
    let migrated = eventually(Duration::from_secs(30), || {
        let text = m.cmd(&["CLUSTER", "NODES"]).as_str();
        let gone = format!(":{doomed}@");
        text.lines().any(|l| l.contains(&format!(" slave {} ", orphan.0)) && !l.contains(&gone))
    });
    assert!(migrated, "no replica moved to the orphaned master:\n{}", m.cmd(&["CLUSTER", "NODES"]).as_str());
    let key = (0..1000).map(|i| format!("orphan{i}")).find(|k| m.cmd(&["SET", k, "v"]).text() == "+OK\r\n");
    assert!(key.is_some(), "no key of the orphaned master's slots");
    // Its first sync waits for repl-diskless-sync-delay (5 s).
    let acked = eventually(Duration::from_secs(20), || m.cmd(&["WAIT", "1", "500"]).text() == ":1\r\n");
    assert!(acked, "the migrated replica does not replicate: {}", m.cmd(&["INFO", "replication"]).as_str());
    let left = table(orphan.1).iter().filter(|n| n.2 == rich.0 && n.1 != doomed).count();
    assert_eq!(left, 1, "rich keeps one replica");
}

/// Waits until each of these nodes says the cluster is ok.
fn wait_ok_among(ports: &[u16]) {
    for &p in ports {
        let mut c = Conn::new(p);
        let ok =
            eventually(Duration::from_secs(20), || c.cmd(&["CLUSTER", "INFO"]).as_str().contains("cluster_state:ok"));
        assert!(ok, "node {p} did not return to cluster_state:ok");
    }
}

/// Mixed failover: three masters of one kind with replicas of the other (`--cluster-replicas
/// 1` makes the last three nodes replicas); killing a master, its replica is elected by the
/// masters of the other kind and serves the slots.
fn mixed_failover(ember_masters: bool) {
    let mut masters: Vec<Proc> = Vec::new();
    let mut replicas: Vec<Proc> = Vec::new();
    for _ in 0..3 {
        let (m, r) = if ember_masters {
            (ember_node(&temp_dir("cluster-mixed-failover"), 0), redis_node())
        } else {
            (redis_node(), ember_node(&temp_dir("cluster-mixed-failover"), 0))
        };
        masters.push(m);
        replicas.push(r);
    }
    let ports: Vec<u16> = masters.iter().chain(&replicas).map(|n| n.port).collect();
    create(&ports, "1");
    wait_ok(&ports, 6);
    // The first master's replica, as the master itself lists it.
    let victim = masters.remove(0);
    let id = Conn::new(victim.port).cmd(&["CLUSTER", "MYID"]).as_str();
    let mut replica_port = 0;
    let mut c = Conn::new(ports[1]);
    let listed = eventually(Duration::from_secs(20), || {
        let text = c.cmd(&["CLUSTER", "NODES"]).as_str();
        let line = text.lines().find(|l| l.contains(&format!(" slave {id} ")));
        replica_port = line
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|a| a.split(['@', ':']).nth(1))
            .and_then(|p| p.parse().ok())
            .unwrap_or(0);
        replica_port != 0
    });
    assert!(listed, "no replica of {id}: {}", c.cmd(&["CLUSTER", "NODES"]).as_str());
    let mut m = Conn::new(victim.port);
    assert_eq!(m.cmd(&["SET", "{x}k", "v"]).text(), format!("-MOVED 16287 127.0.0.1:{}\r\n", ports[2]));
    let key = (0..1000).map(|i| format!("k{i}")).find(|k| m.cmd(&["SET", k, "v"]).text() == "+OK\r\n");
    let key = key.expect("a key of the first master's slots");
    assert_eq!(m.cmd(&["WAIT", "1", "10000"]).text(), ":1\r\n", "the replica did not acknowledge");
    victim.kill_keep_dir();
    let promoted =
        eventually(Duration::from_secs(20), || Conn::new(replica_port).cmd(&["GET", &key]).text() == "$1\r\nv\r\n");
    assert!(promoted, "the replica on port {replica_port} never took over");
    let others: Vec<u16> = ports.iter().copied().filter(|&p| p != ports[0]).collect();
    wait_ok_among(&others);
}

#[test]
fn a_redis_replica_takes_over_from_an_ember_master() {
    mixed_failover(true);
}

#[test]
fn an_ember_replica_takes_over_from_a_redis_master() {
    mixed_failover(false);
}

/// The bus port a node announces for itself.
fn bus_port(port: u16) -> String {
    let text = Conn::new(port).cmd(&["CLUSTER", "NODES"]).as_str();
    let me = text.lines().find(|l| l.contains("myself")).expect("myself line").to_string();
    me.split(' ').nth(1).and_then(|a| a.split('@').nth(1)).expect("bus port").to_string()
}

/// Two Ember nodes, `a` serving every slot and `b` met by it (not yet a replica); returns
/// them with their ids once each knows the other.
fn serving_and_met(tag: &str) -> (Proc, Proc, String, String) {
    let a = ember_node(&temp_dir(&format!("{tag}-a")), 0);
    let b = ember_node(&temp_dir(&format!("{tag}-b")), 0);
    let (mut ca, mut cb) = (a.connect(), b.connect());
    assert_eq!(ca.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).text(), "+OK\r\n");
    let meet = cb.cmd(&["CLUSTER", "MEET", "127.0.0.1", &a.port.to_string(), &bus_port(a.port)]);
    assert_eq!(meet.text(), "+OK\r\n");
    let (aid, bid) = (ca.cmd(&["CLUSTER", "MYID"]).as_str(), cb.cmd(&["CLUSTER", "MYID"]).as_str());
    let met = eventually(Duration::from_secs(20), || {
        cb.cmd(&["CLUSTER", "NODES"]).as_str().contains(&aid) && ca.cmd(&["CLUSTER", "NODES"]).as_str().contains(&bid)
    });
    assert!(met, "the two nodes did not learn each other");
    (a, b, aid, bid)
}

/// A replica as Redis's legacy cluster tests see one: it announces `nofailover` when told
/// not to fail over, keeps keys that expired while it was down (its master expires them),
/// and CLUSTER RESET turns it into an empty master.
#[test]
fn a_cluster_replica_announces_nofailover_keeps_expired_keys_and_resets_empty() {
    let (a, b, aid, bid) = serving_and_met("cluster-replica");
    let (mut ca, mut cb) = (a.connect(), b.connect());
    assert_eq!(cb.cmd(&["CLUSTER", "REPLICATE", &aid]).text(), "+OK\r\n");
    wait_ok(&[a.port, b.port], 2);
    assert_eq!(ca.cmd(&["SET", "{k}kept", "v"]).text(), "+OK\r\n");
    let synced = eventually(Duration::from_secs(20), || ca.cmd(&["WAIT", "1", "500"]).text() == ":1\r\n");
    assert!(synced, "b did not sync");
    assert_eq!(ca.cmd(&["SET", "{k}brief", "v", "PX", "1500"]).text(), "+OK\r\n");
    assert_eq!(ca.cmd(&["WAIT", "1", "5000"]).text(), ":1\r\n");

    assert_eq!(cb.cmd(&["CONFIG", "SET", "cluster-replica-no-failover", "yes"]).text(), "+OK\r\n");
    let flagged = eventually(Duration::from_secs(10), || {
        ca.cmd(&["CLUSTER", "NODES"]).as_str().lines().any(|l| l.starts_with(&bid) && l.contains(" slave,nofailover "))
    });
    assert!(flagged, "a does not see b's nofailover flag");
    assert!(cb.cmd(&["CLUSTER", "NODES"]).as_str().contains(" myself,slave,nofailover "));

    // b stops with both keys saved; once the brief one is past its deadline (the master
    // not expiring it meanwhile), b starts again and still holds both.
    assert_eq!(cb.cmd(&["SAVE"]).text(), "+OK\r\n");
    assert_eq!(ca.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]).text(), "+OK\r\n");
    let (port, dir) = (b.port, b.dir.clone());
    b.kill_keep_dir();
    std::thread::sleep(Duration::from_millis(1600)); // the key's 1.5 s deadline passes
    let b = ember_node(&dir, port);
    let mut cb = b.connect();
    assert_eq!(cb.cmd(&["DBSIZE"]).text(), ":2\r\n", "the replica dropped a key its master still has");
    assert_eq!(ca.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]).text(), "+OK\r\n");
    let expired = eventually(Duration::from_secs(20), || cb.cmd(&["DBSIZE"]).text() == ":1\r\n");
    assert!(expired, "the master's DEL did not reach the replica");

    // CLUSTER RESET of a replica with data: an empty master.
    assert_eq!(cb.cmd(&["CLUSTER", "RESET", "SOFT"]).text(), "+OK\r\n");
    assert_eq!(cb.cmd(&["DBSIZE"]).text(), ":0\r\n");
    assert!(cb.cmd(&["INFO", "replication"]).as_str().contains("role:master"));
    assert!(cb.cmd(&["CLUSTER", "NODES"]).as_str().contains(" myself,master "));
    assert_eq!(
        ca.cmd(&["CLUSTER", "RESET"]).text(),
        "-ERR CLUSTER RESET can't be called with master nodes containing keys\r\n"
    );
}

/// A slot given away takes its shard channels with it: their subscribers get an
/// sunsubscribe (Redis's removeChannelsInSlot), other shard channels stay.
#[test]
fn a_slot_given_away_unsubscribes_its_shard_channels() {
    let (a, b, _, bid) = serving_and_met("cluster-sunsub");
    let mut ca = a.connect();
    wait_ok(&[a.port, b.port], 2);
    let mut sub = a.connect();
    // (Two commands: the channels' slots differ.)
    sub.send(&["SSUBSCRIBE", "mychannel"]);
    assert!(sub.read().text().contains("mychannel"));
    sub.send(&["SSUBSCRIBE", "other"]);
    assert!(sub.read().text().contains("other"));
    let slot = ca.cmd(&["CLUSTER", "KEYSLOT", "mychannel"]).as_str();
    assert_eq!(ca.cmd(&["CLUSTER", "SETSLOT", &slot, "NODE", &bid]).text(), "+OK\r\n");
    assert_eq!(sub.read().text(), "*3\r\n$12\r\nsunsubscribe\r\n$9\r\nmychannel\r\n:1\r\n");
    assert_eq!(ca.cmd(&["SPUBLISH", "other", "hi"]).text(), ":1\r\n", "the other channel is still served");
    assert_eq!(sub.read().text(), "*3\r\n$8\r\nsmessage\r\n$5\r\nother\r\n$2\r\nhi\r\n");
}
