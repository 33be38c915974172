//! Cluster mode on one node: slots, routing errors, nodes.conf across a restart, and the
//! cluster clients (redis-cli -c and --cluster check, redis-py's RedisCluster) using it.

use std::process::Command;
use std::time::Duration;

use crate::util::{Proc, ember_in, eventually, free_port, info_field, temp_dir};

fn cluster_node(dir: &std::path::Path, bus: u16) -> Proc {
    let bus = bus.to_string();
    ember_in(dir, &["--cluster-enabled", "yes", "--cluster-port", &bus, "--cluster-node-timeout", "1000"])
}

/// Assigns every slot and waits for the cluster state to turn ok (after Redis's 2 s
/// writable delay).
fn serve_all_slots(p: &Proc) {
    let mut c = p.connect();
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).text(), "+OK\r\n");
    let ok = eventually(Duration::from_secs(10), || c.cmd(&["CLUSTER", "INFO"]).as_str().contains("cluster_state:ok"));
    assert!(ok, "the cluster state did not turn ok");
}

#[test]
fn a_one_node_cluster_routes_by_slot_and_keeps_its_config() {
    let dir = temp_dir("cluster");
    let bus = free_port();
    let p = cluster_node(&dir, bus);
    let mut c = p.connect();
    let info = c.cmd(&["CLUSTER", "INFO"]).as_str();
    assert!(info.starts_with("cluster_state:fail\r\ncluster_slots_assigned:0\r\n"), "{info}");
    assert_eq!(c.cmd(&["SET", "foo", "bar"]).text(), "-CLUSTERDOWN Hash slot not served\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTS", "1", "1"]).text(), "-ERR Slot 1 specified multiple times\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTS", "16384"]).text(), "-ERR Invalid or out of range slot\r\n");
    serve_all_slots(&p);
    assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTS", "7"]).text(), "-ERR Slot 7 is already busy\r\n");

    assert_eq!(c.cmd(&["SET", "foo", "bar"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "KEYSLOT", "foo"]).text(), ":12182\r\n");
    assert_eq!(
        c.cmd(&["MSET", "a", "1", "b", "2"]).text(),
        "-CROSSSLOT Keys in request don't hash to the same slot\r\n"
    );
    assert_eq!(c.cmd(&["MSET", "{u}a", "1", "{u}b", "2"]).text(), "+OK\r\n");
    let slot = c.cmd(&["CLUSTER", "KEYSLOT", "{u}a"]).as_str();
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]).text(), ":2\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot, "1"]).children().len(), 1);
    assert_eq!(c.cmd(&["CLUSTER", "GETKEYSINSLOT", &slot, "10"]).children().len(), 2);
    // The per-slot count follows deletions, expiry and renames.
    assert_eq!(c.cmd(&["DEL", "{u}a"]).text(), ":1\r\n");
    assert_eq!(c.cmd(&["PEXPIRE", "{u}b", "1"]).text(), ":1\r\n");
    let gone = eventually(Duration::from_secs(5), || c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]).text() == ":0\r\n");
    assert!(gone, "the expired key still counts");
    assert_eq!(c.cmd(&["SET", "{u}c", "1"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["RENAME", "{u}c", "{u}d"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot]).text(), ":1\r\n");
    assert_eq!(c.cmd(&["SELECT", "1"]).text(), "-ERR SELECT is not allowed in cluster mode\r\n");
    assert_eq!(c.cmd(&["MOVE", "foo", "1"]).text(), "-ERR MOVE is not allowed in cluster mode\r\n");
    assert_eq!(c.cmd(&["SWAPDB", "0", "1"]).text(), "-ERR SWAPDB is not allowed in cluster mode\r\n");
    let e = "-ERR Copying to another database is not allowed in cluster mode\r\n";
    assert_eq!(c.cmd(&["COPY", "{u}a", "{u}c", "DB", "1"]).text(), e);
    // A cross-slot command inside MULTI flags the transaction.
    assert_eq!(c.cmd(&["MULTI"]).text(), "+OK\r\n");
    assert!(c.cmd(&["MGET", "a", "b"]).text().starts_with("-CROSSSLOT"));
    assert!(c.cmd(&["EXEC"]).text().starts_with("-EXECABORT"));

    let id = c.cmd(&["CLUSTER", "MYID"]).as_str();
    assert_eq!(id.len(), 40);
    let nodes = c.cmd(&["CLUSTER", "NODES"]).as_str();
    let want = format!("{id} :{}@{bus} myself,master - 0 0 0 connected 0-16383\n", p.port);
    assert_eq!(nodes, want);
    assert_eq!(c.cmd(&["CLUSTER", "BUMPEPOCH"]).text(), "+BUMPED 1\r\n");

    // The node keeps its id, slots and epoch in nodes.conf.
    p.kill_keep_dir();
    let p = cluster_node(&dir, bus);
    let mut c = p.connect();
    assert_eq!(c.cmd(&["CLUSTER", "MYID"]).as_str(), id);
    let nodes = c.cmd(&["CLUSTER", "NODES"]).as_str();
    assert!(nodes.ends_with("myself,master - 0 0 1 connected 0-16383\n"), "{nodes}");
    let text = std::fs::read_to_string(dir.join("nodes.conf")).unwrap();
    assert!(text.ends_with("vars currentEpoch 1 lastVoteEpoch 0\n"), "{text}");
}

#[test]
fn a_slot_lists_its_keys_newest_first_through_churn() {
    let dir = temp_dir("cluster-churn");
    let p = cluster_node(&dir, free_port());
    serve_all_slots(&p);
    let key = |i: usize| format!("{{churn}}:{i}");
    let run = |pipe: &redis::Pipeline| pipe.query::<()>(&mut p.client()).expect("pipeline");
    let mut pipe = redis::pipe();
    for i in 0..2000 {
        pipe.set(key(i), i).ignore();
    }
    run(&pipe);
    let mut c = p.connect();
    let before = info_field(&mut c, "memory", "used_memory");
    // 20 rounds deleting and adding again the even keys leave 20,000 stale entries in the
    // slot's list (about 260 KB of list) for cron to compact. Each round on its own
    // connection, closed, so no client buffer stays.
    for round in 0..20 {
        let mut pipe = redis::pipe();
        for i in (0..2000).step_by(2) {
            pipe.del(key(i)).ignore().set(key(i), round).ignore();
        }
        run(&pipe);
    }
    let compacted =
        eventually(Duration::from_secs(10), || info_field(&mut c, "memory", "used_memory") < before + 100_000);
    assert!(compacted, "the slot's stale entries were not compacted");
    let mut want: Vec<String> = (0..2000).step_by(2).rev().map(key).collect();
    want.extend((1..2000).step_by(2).rev().map(key));
    let mut r = p.client();
    let slot: u16 = redis::cmd("CLUSTER").arg("KEYSLOT").arg(key(0)).query(&mut r).expect("keyslot");
    let mut list = |n: usize| -> Vec<String> {
        redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(n).query(&mut r).expect("getkeysinslot")
    };
    assert_eq!(list(5000), want);
    assert_eq!(list(3), want[..3]);
    assert_eq!(c.cmd(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]).text(), ":2000\r\n");
}

#[test]
fn cluster_clients_use_a_one_node_cluster() {
    let p = cluster_node(&temp_dir("cluster-clients"), free_port());
    serve_all_slots(&p);
    let port = p.port.to_string();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &port])
            .args(args)
            .output()
            .expect("redis-cli is required (apt-get install redis-tools)");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(cli(&["-c", "SET", "hello", "world"]), "OK\n");
    assert_eq!(cli(&["-c", "GET", "hello"]), "world\n");
    let check = cli(&["--cluster", "check", &format!("127.0.0.1:{port}")]);
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");

    let script = r#"
import sys
from redis.cluster import RedisCluster
rc = RedisCluster(host="127.0.0.1", port=int(sys.argv[1]))
for i in range(200):
    rc.set(f"key:{i}", i)
assert [int(rc.get(f"key:{i}")) for i in range(200)] == list(range(200))
rc.mset_nonatomic({"a": 1, "b": 2, "c": 3})
print(rc.mget_nonatomic(["a", "b", "c"]))
"#;
    let out = Command::new("python3")
        .args(["-c", script, &port])
        .output()
        .expect("python3 with redis-py is required (see .ci/run)");
    assert!(out.status.success(), "redis-py RedisCluster failed:\n{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "[b'1', b'2', b'3']\n");
}

#[test]
fn setslot_and_reset_on_a_lone_node() {
    let p = cluster_node(&temp_dir("cluster-setslot"), free_port());
    let mut c = p.connect();
    let id = c.cmd(&["CLUSTER", "MYID"]).as_str();
    assert_eq!(c.cmd(&["CLUSTER", "SETSLOT", "5", "NODE", "abc"]).text(), "-ERR Unknown node abc\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "SETSLOT", "5", "NODE", &id]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "SETSLOT", "5", "MIGRATING", &id]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "SETSLOT", "6", "IMPORTING", &id]).text(), "+OK\r\n");
    let err = "-ERR I'm not the owner of hash slot 6\r\n";
    assert_eq!(c.cmd(&["CLUSTER", "SETSLOT", "6", "MIGRATING", &id]).text(), err);
    let nodes = c.cmd(&["CLUSTER", "NODES"]).as_str();
    assert!(nodes.ends_with(&format!("connected 5 [5->-{id}] [6-<-{id}]\n")), "{nodes}");
    assert_eq!(c.cmd(&["CLUSTER", "SETSLOT", "5", "STABLE"]).text(), "+OK\r\n");
    // Taking over a slot being imported bumps the epoch.
    assert_eq!(c.cmd(&["CLUSTER", "SETSLOT", "6", "NODE", &id]).text(), "+OK\r\n");
    let nodes = c.cmd(&["CLUSTER", "NODES"]).as_str();
    assert!(nodes.ends_with(" 0 0 1 connected 5-6\n"), "{nodes}");

    assert_eq!(c.cmd(&["CLUSTER", "RESET", "SOFT"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["CLUSTER", "MYID"]).as_str(), id);
    assert!(c.cmd(&["CLUSTER", "NODES"]).as_str().ends_with(" 0 0 1 connected\n"));
    assert_eq!(c.cmd(&["CLUSTER", "RESET", "HARD"]).text(), "+OK\r\n");
    assert_ne!(c.cmd(&["CLUSTER", "MYID"]).as_str(), id);
    assert!(c.cmd(&["CLUSTER", "INFO"]).as_str().contains("cluster_current_epoch:0\r\n"));
}

/// Scripts in cluster mode: keys of one slot (EVAL without a shebang excepted, as in Redis),
/// served slots only, and no `no-cluster` scripts.
#[test]
fn scripts_keep_to_their_slot() {
    let p = cluster_node(&temp_dir("cluster-scripts"), free_port());
    serve_all_slots(&p);
    let mut c = p.connect();
    let two = "redis.call('set','a','1'); return redis.call('set','b','1')";
    assert_eq!(c.cmd(&["EVAL", two, "0"]).text(), "+OK\r\n");
    let err = c.cmd(&["EVAL", &format!("#!lua\n{two}"), "0"]).as_str();
    assert!(err.starts_with("ERR Script attempted to access keys that do not hash to the same slot"), "{err}");
    assert_eq!(c.cmd(&["EVAL", &format!("#!lua flags=allow-cross-slot-keys\n{two}"), "0"]).text(), "+OK\r\n");
    let err = c.cmd(&["EVAL", "#!lua flags=no-cluster\nreturn 1", "0"]).as_str();
    assert_eq!(err, "ERR Can not run script on cluster, 'no-cluster' flag is set.");
    let slot = c.cmd(&["CLUSTER", "KEYSLOT", "x"]).as_str();
    assert_eq!(c.cmd(&["CLUSTER", "DELSLOTS", &slot]).text(), "+OK\r\n");
    let err = c.cmd(&["EVAL", "return redis.call('get','x')", "0"]).as_str();
    assert!(err.starts_with("ERR Script attempted to access a non local key in a cluster node"), "{err}");
    let err = c.cmd(&["EVAL", "return redis.call('get','a')", "0"]).as_str();
    assert!(err.starts_with("ERR Script attempted to execute a command while the cluster is down"), "{err}");
}
