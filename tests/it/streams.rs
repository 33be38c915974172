//! Streams against the binary: blocking reads and a consumer-group job queue with a consumer
//! that dies. Replies are compared with redis-server in tests/diff/streams.txt.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::util::{Conn, Frame, ember, eventually};

fn blocked_clients(c: &mut Conn) -> u64 {
    let info = c.cmd(&["INFO", "clients"]).as_str();
    info.lines().find_map(|l| l.strip_prefix("blocked_clients:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

/// IDs of the entries in an XREAD/XREADGROUP reply (RESP2: [[key, [[id, fields]...]]...]).
fn ids(reply: &Frame) -> Vec<String> {
    let mut out = Vec::new();
    for stream in reply.children() {
        for e in stream.children()[1].children() {
            out.push(e.children()[0].as_str());
        }
    }
    out
}

#[test]
fn xread_block_dollar_waits_for_new_entries_and_times_out() {
    let s = ember(&[]);
    let mut w = s.connect();
    w.cmd(&["XADD", "s", "1-1", "old", "entry"]);
    let mut a = s.connect();
    let mut b = s.connect();
    a.send(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    b.send(&["XREAD", "BLOCK", "0", "STREAMS", "other", "s", "0", "$"]);
    assert!(eventually(Duration::from_secs(5), || blocked_clients(&mut w) == 2));
    w.cmd(&["XADD", "s", "2-1", "new", "entry"]);
    // Every reader without a group sees the new entry, and only it ($ was resolved at block time).
    assert_eq!(ids(&a.read()), ["2-1"]);
    assert_eq!(ids(&b.read()), ["2-1"]);
    let t = Instant::now();
    assert_eq!(a.cmd(&["XREAD", "BLOCK", "100", "STREAMS", "s", "$"]).text(), "*-1\r\n");
    assert!(t.elapsed() >= Duration::from_millis(90), "timed out after {:?}", t.elapsed());
    // Inside MULTI a blocking read never blocks.
    a.cmd(&["MULTI"]);
    a.cmd(&["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    assert_eq!(a.cmd(&["EXEC"]).text(), "*1\r\n*-1\r\n");
}

#[test]
fn xreadgroup_block_serves_waiters_first_come_first_served() {
    let s = ember(&[]);
    let mut w = s.connect();
    w.cmd(&["XGROUP", "CREATE", "jobs", "workers", "$", "MKSTREAM"]);
    let mut first = s.connect();
    let mut second = s.connect();
    first.send(&["XREADGROUP", "GROUP", "workers", "c1", "COUNT", "1", "BLOCK", "0", "STREAMS", "jobs", ">"]);
    assert!(eventually(Duration::from_secs(5), || blocked_clients(&mut w) == 1));
    second.send(&["XREADGROUP", "GROUP", "workers", "c2", "COUNT", "1", "BLOCK", "0", "STREAMS", "jobs", ">"]);
    assert!(eventually(Duration::from_secs(5), || blocked_clients(&mut w) == 2));
    w.cmd(&["XADD", "jobs", "1-1", "job", "a"]);
    assert_eq!(ids(&first.read()), ["1-1"]);
    assert_eq!(blocked_clients(&mut w), 1, "the second waiter got nothing and keeps waiting");
    w.cmd(&["XADD", "jobs", "2-1", "job", "b"]);
    assert_eq!(ids(&second.read()), ["2-1"]);
    // Destroying the group, or deleting the key, ends a blocked XREADGROUP with Redis's errors.
    first.send(&["XREADGROUP", "GROUP", "workers", "c1", "BLOCK", "0", "STREAMS", "jobs", ">"]);
    assert!(eventually(Duration::from_secs(5), || blocked_clients(&mut w) == 1));
    w.cmd(&["XGROUP", "DESTROY", "jobs", "workers"]);
    assert_eq!(first.read().text(), "-NOGROUP the consumer group this client was blocked on no longer exists\r\n");
    w.cmd(&["XGROUP", "CREATE", "jobs", "workers", "$"]);
    first.send(&["XREADGROUP", "GROUP", "workers", "c1", "BLOCK", "0", "STREAMS", "jobs", ">"]);
    assert!(eventually(Duration::from_secs(5), || blocked_clients(&mut w) == 1));
    w.cmd(&["DEL", "jobs"]);
    assert_eq!(first.read().text(), "-UNBLOCKED the stream key no longer exists\r\n");
}

/// A job queue: producers add messages, consumers read them with XREADGROUP BLOCK and
/// acknowledge them; one consumer dies holding unacknowledged messages and a survivor takes
/// them over with XAUTOCLAIM. Every message is acknowledged exactly once; none is lost.
#[test]
fn consumer_group_job_queue_survives_a_dead_consumer() {
    const MESSAGES: usize = 600;
    let s = ember(&[]);
    let port = s.port;
    let mut admin = s.connect();
    admin.cmd(&["XGROUP", "CREATE", "queue", "workers", "$", "MKSTREAM"]);

    // The consumer that dies: reads a batch, acknowledges nothing, disconnects.
    let mut doomed = s.connect();
    let produced = Arc::new(AtomicBool::new(false));
    let done = produced.clone();
    let producer = std::thread::spawn(move || {
        let mut p = Conn::new(port);
        for i in 0..MESSAGES {
            let id = p.cmd(&["XADD", "queue", "*", "job", &i.to_string()]).as_str();
            assert!(id.contains('-'), "XADD replied {id}");
        }
        done.store(true, Ordering::SeqCst);
    });
    let batch = doomed.cmd(&[
        "XREADGROUP",
        "GROUP",
        "workers",
        "doomed",
        "COUNT",
        "25",
        "BLOCK",
        "5000",
        "STREAMS",
        "queue",
        ">",
    ]);
    let orphaned = ids(&batch);
    assert!(!orphaned.is_empty());
    drop(doomed);

    let workers: Vec<_> = (0..3)
        .map(|w| {
            let produced = produced.clone();
            std::thread::spawn(move || {
                let mut c = Conn::new(port);
                let name = format!("worker-{w}");
                let mut acked = Vec::new();
                loop {
                    let r = c.cmd(&[
                        "XREADGROUP",
                        "GROUP",
                        "workers",
                        &name,
                        "COUNT",
                        "10",
                        "BLOCK",
                        "300",
                        "STREAMS",
                        "queue",
                        ">",
                    ]);
                    if r.text() == "*-1\r\n" {
                        if produced.load(Ordering::SeqCst) {
                            return acked; // all produced and nothing new for 300 ms: done
                        }
                        continue;
                    }
                    for id in ids(&r) {
                        assert_eq!(c.cmd(&["XACK", "queue", "workers", &id]).text(), ":1\r\n");
                        acked.push(id);
                    }
                }
            })
        })
        .collect();
    producer.join().unwrap();
    let mut acked: Vec<String> = workers.into_iter().flat_map(|w| w.join().unwrap()).collect();

    // A survivor claims what the dead consumer held (IDLE 0: it is certainly gone).
    let mut rescuer = s.connect();
    let mut cursor = "0-0".to_string();
    loop {
        let r = rescuer.cmd(&["XAUTOCLAIM", "queue", "workers", "rescuer", "0", &cursor, "COUNT", "10"]);
        let kids = r.children();
        for e in kids[1].children() {
            let id = e.children()[0].as_str();
            assert_eq!(rescuer.cmd(&["XACK", "queue", "workers", &id]).text(), ":1\r\n");
            acked.push(id);
        }
        cursor = kids[0].as_str();
        if cursor == "0-0" {
            break;
        }
    }
    let unique: HashSet<&String> = acked.iter().collect();
    assert_eq!(unique.len(), acked.len(), "a message was acknowledged twice");
    assert_eq!(acked.len(), MESSAGES, "messages lost: {} of {MESSAGES} acknowledged", acked.len());
    for id in &orphaned {
        assert!(unique.contains(id), "{id} of the dead consumer was never recovered");
    }
    // Nothing is pending any more, and the stream still holds every message.
    assert_eq!(admin.cmd(&["XPENDING", "queue", "workers"]).children()[0].text(), ":0\r\n");
    assert_eq!(admin.cmd(&["XLEN", "queue"]).text(), format!(":{MESSAGES}\r\n"));
    let per_consumer: BTreeMap<String, usize> = admin
        .cmd(&["XINFO", "CONSUMERS", "queue", "workers"])
        .children()
        .iter()
        .map(|c| (c.children()[1].as_str(), c.children()[3].text().trim_start_matches(':').trim().parse().unwrap()))
        .collect();
    assert!(per_consumer.values().all(|p| *p == 0), "{per_consumer:?}");
}
