//! Small hashes with the same field names share one copy of the names (types/hash_pack.rs):
//! what it saves, measured with the allocator's own count, and that nothing is lost across
//! a reload, a field-list edit or a lazy FLUSHALL.

use std::time::Duration;

use crate::util::{Conn, ember, eventually, info_field};

const HASHES: usize = 3000;

/// used_memory once it has settled (the pipelining client's buffer is released on a cron tick).
fn used(c: &mut Conn) -> f64 {
    let mut last = info_field(c, "memory", "used_memory");
    eventually(Duration::from_secs(3), || {
        std::thread::sleep(Duration::from_millis(150));
        let now = info_field(c, "memory", "used_memory");
        std::mem::replace(&mut last, now) == now
    });
    last as f64
}

/// Loads HASHES hashes of 10 fields; `own_names` gives each hash names of its own.
fn load(client: &mut redis::Connection, prefix: &str, own_names: bool) {
    let mut p = redis::pipe();
    for i in 0..HASHES {
        let mut cmd = redis::cmd("HSET");
        cmd.arg(format!("{prefix}{i}"));
        for j in 0..10 {
            let name = if own_names { format!("attr{i}_{j}") } else { format!("attribute{j}") };
            cmd.arg(name).arg(format!("v{}", i + j));
        }
        p.add_command(cmd).ignore();
    }
    p.query::<()>(client).unwrap();
}

#[test]
fn hashes_with_the_same_names_share_them() {
    let s = ember(&["--enable-debug-command", "yes"]);
    let mut client = s.client();
    let mut c = s.connect();
    let base = used(&mut c);
    load(&mut client, "own:", true);
    let own = (used(&mut c) - base) / HASHES as f64;
    c.cmd(&["FLUSHALL"]);
    let base = used(&mut c);
    load(&mut client, "same:", false);
    let same = (used(&mut c) - base) / HASHES as f64;
    // 10 names of ~11 bytes each: the shared pack is at least a jemalloc class smaller.
    assert!(same + 40.0 < own, "shared names: {same:.1} B a hash, own names: {own:.1}");
    assert_eq!(c.cmd(&["OBJECT", "ENCODING", "same:7"]).as_str(), "listpack");

    // Edits of the field list and of values, then a reload: same contents, still shared.
    c.cmd(&["HSET", "same:1", "extra", "x"]);
    c.cmd(&["HDEL", "same:2", "attribute0"]);
    c.cmd(&["HSET", "same:3", "attribute5", "a much longer value than before"]);
    let before: Vec<_> = (0..5).map(|i| c.cmd(&["HGETALL", &format!("same:{i}")])).collect();
    assert_eq!(c.cmd(&["DEBUG", "RELOAD"]).as_str(), "OK");
    let after: Vec<_> = (0..5).map(|i| c.cmd(&["HGETALL", &format!("same:{i}")])).collect();
    assert_eq!(before, after);
    let reloaded = (used(&mut c) - base) / HASHES as f64;
    assert!(reloaded + 40.0 < own, "after a reload: {reloaded:.1} B a hash, own names: {own:.1}");

    // A lazy flush frees the hashes (and their shared names) on another thread. What stays
    // is well under the ~200 bytes a hash held (the slow log keeps a few HSETs, a reload a
    // buffer of ~64 KiB).
    c.cmd(&["FLUSHALL", "ASYNC"]);
    let mut now = 0.0;
    let freed = eventually(Duration::from_secs(5), || {
        now = used(&mut c);
        now < base + (HASHES * 40) as f64
    });
    assert!(freed, "{now} after the flush, {base} before the load");
    load(&mut client, "again:", false);
    assert_eq!(c.cmd(&["HGET", "again:42", "attribute9"]).as_str(), "v51");
}
