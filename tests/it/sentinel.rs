//! Debian's redis-sentinel 7.0 managing Ember: an Ember master with two Ember replicas and a
//! redis-server replica, watched by three sentinels. kill -9 of the master promotes an Ember
//! replica, the others follow it, no write acknowledged by WAIT is lost, the old master
//! rejoins as a replica, and redis-py's Sentinel client finds the new master.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::util::{Conn, Proc, ember, ember_in, eventually, free_port, redis_with, temp_dir};

// Generous: a sentinel starved of CPU (the other tests run alongside) enters TILT mode and
// does nothing for 30 s.
const WAIT: Duration = Duration::from_secs(120);

fn sentinel(master_port: u16) -> Proc {
    let dir = temp_dir("sentinel");
    let port = free_port();
    let conf = dir.join("sentinel.conf");
    std::fs::write(
        &conf,
        format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nsentinel monitor mymaster 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds mymaster 3000\nsentinel failover-timeout mymaster 10000\n\
             sentinel parallel-syncs mymaster 2\nlogfile {}\n",
            dir.display(),
            // EMBER_TEST_LOG=1: the sentinels' logs go to the test's output too.
            if std::env::var_os("EMBER_TEST_LOG").is_some() { "/dev/stderr" } else { "\"\"" }
        ),
    )
    .unwrap();
    let child = Command::new("redis-sentinel")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("redis-sentinel is required (apt-get install redis-sentinel; see .ci/run)");
    let p = Proc { child, port, dir };
    assert!(eventually(WAIT, || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()), "sentinel did not start");
    p
}

/// The master the sentinel names now.
fn master_port(s: &mut Conn) -> u16 {
    let r = s.cmd(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"]);
    r.children().get(1).and_then(|p| p.as_str().parse().ok()).unwrap_or(0)
}

/// SENTINEL MASTER's flags field ("master", "master,failover_in_progress", ...).
fn master_flags(s: &mut Conn) -> String {
    let r = s.cmd(&["SENTINEL", "MASTER", "mymaster"]);
    let fields = r.children();
    fields
        .chunks(2)
        .find(|kv| kv[0].as_str() == "flags")
        .and_then(|kv| kv.get(1))
        .map(|v| v.as_str())
        .unwrap_or_default()
}

/// A fresh connection to `port` (a sentinel reconfiguring a server kills its clients).
fn query<T: redis::FromRedisValue>(port: u16, cmd: &mut redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).ok()?;
    let mut con = client.get_connection().ok()?;
    cmd.query(&mut con).ok()
}

/// ROLE says a replica of `master` with its link up.
fn follows(port: u16, master: u16) -> bool {
    let role: Option<(String, String, u16, String, i64)> = query(port, &mut redis::cmd("ROLE"));
    role.is_some_and(|(kind, _, m, state, _)| kind == "slave" && m == master && state == "connected")
}

fn digest(port: u16) -> String {
    query(port, redis::cmd("DEBUG").arg("DIGEST")).unwrap_or_default()
}

#[test]
fn sentinel_fails_over_an_ember_master() {
    let master_dir = temp_dir("sentinel-master");
    let mut master = ember_in(&master_dir, &[]);
    let mport = master.port;
    let mp = mport.to_string();
    let e1 = ember(&["--replicaof", "127.0.0.1", &mp]);
    let e2 = ember(&["--replicaof", "127.0.0.1", &mp]);
    // The redis-server replica follows but is never promoted, so an Ember replica must be.
    let r = redis_with(&["--enable-debug-command", "yes", "--replica-priority", "0", "--replicaof", "127.0.0.1", &mp]);
    let sentinels: Vec<Proc> = (0..3).map(|_| sentinel(mport)).collect();
    let mut sc: Vec<Conn> = sentinels.iter().map(|s| s.connect()).collect();
    // Every sentinel knows the three replicas and the two other sentinels.
    for s in sc.iter_mut() {
        assert!(
            eventually(WAIT, || s.cmd(&["SENTINEL", "REPLICAS", "mymaster"]).children().len() == 3
                && s.cmd(&["SENTINEL", "SENTINELS", "mymaster"]).children().len() == 2),
            "the sentinels never discovered the replicas and each other"
        );
    }
    let mut mc = master.connect();
    // The three replicas completed their (diskless, delayed) full syncs.
    assert!(
        eventually(WAIT, || {
            let info = mc.cmd(&["INFO", "replication"]).as_str();
            info.matches("state=online").count() == 3
        }),
        "the replicas never came online"
    );
    let mut acked = Vec::new();
    for i in 0..200 {
        let key = format!("acked:{i}");
        mc.cmd(&["SET", &key, &i.to_string()]);
        if i % 20 == 19 {
            let n: i64 = mc.cmd(&["WAIT", "1", "2000"]).as_str().parse().unwrap();
            assert!(n >= 1, "no replica acknowledged");
            acked.extend((i - 19..=i).map(|j| format!("acked:{j}")));
        }
    }

    let _ = master.child.kill();
    let _ = master.child.wait();
    // The failover is over when every sentinel names the same new master and none is still
    // failing over.
    let agreed = |sc: &mut Vec<Conn>| {
        let first = master_port(&mut sc[0]);
        let all = sc.iter_mut().all(|s| master_port(s) == first && !master_flags(s).contains("failover"));
        (all && first != mport).then_some(first)
    };
    assert!(eventually(WAIT, || agreed(&mut sc).is_some()), "no failover: the sentinels still name {mport}");
    let new = agreed(&mut sc).unwrap_or(0);
    assert!(new == e1.port || new == e2.port, "the sentinel promoted {new}, not an Ember replica");
    // A master's ROLE has three fields (a replica's five).
    assert!(eventually(WAIT, || query::<Vec<redis::Value>>(new, &mut redis::cmd("ROLE")).is_some_and(|r| r.len() == 3)));
    let present: Vec<bool> = acked.iter().map(|k| query::<i64>(new, redis::cmd("EXISTS").arg(k)) == Some(1)).collect();
    let lost: Vec<&String> = acked.iter().zip(&present).filter(|(_, p)| !**p).map(|(k, _)| k).collect();
    assert!(lost.is_empty(), "acknowledged but lost: {lost:?}");
    let other = if new == e1.port { e2.port } else { e1.port };
    assert!(eventually(WAIT, || follows(other, new) && follows(r.port, new)), "the replicas did not follow");
    let mut nc = Conn::new(new);
    nc.cmd(&["SET", "after-failover", "yes"]);
    let want = nc.cmd(&["DEBUG", "DIGEST"]).as_str();
    for port in [other, r.port] {
        assert!(eventually(WAIT, || digest(port) == want), "a replica's data differs");
    }

    // The old master comes back and the sentinels make it a replica of the new one.
    let _old = ember_in(&master_dir, &["--port", &mp]);
    assert!(eventually(WAIT, || follows(mport, new)), "the old master never rejoined as a replica");
    assert!(eventually(WAIT, || digest(mport) == want));

    // redis-py's Sentinel client finds the new master and writes through it.
    let script = format!(
        "from redis.sentinel import Sentinel\n\
         s = Sentinel([('127.0.0.1', {})], socket_timeout=5)\n\
         print(s.discover_master('mymaster')[1])\n\
         m = s.master_for('mymaster', socket_timeout=5)\n\
         m.set('via-sentinel', 'py')\n\
         print(m.get('after-failover').decode())\n",
        sentinels[1].port
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3 is required (see .ci/run)");
    assert!(out.status.success(), "redis-py: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{new}\nyes\n"));
    assert_eq!(nc.cmd(&["GET", "via-sentinel"]).as_str(), "py");
}
