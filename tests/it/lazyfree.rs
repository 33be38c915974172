//! Lazy freeing: UNLINK, FLUSHALL/FLUSHDB ASYNC and lazyfree-lazy-user-del/-flush free big
//! values on the background thread (INFO lazyfreed_objects counts them), small ones at once.

use std::time::Duration;

use crate::util::*;

fn freed(c: &mut Conn) -> u64 {
    info_field(c, "memory", "lazyfreed_objects")
}

fn settled(c: &mut Conn) -> bool {
    eventually(Duration::from_secs(10), || info_field(c, "memory", "lazyfree_pending_objects") == 0)
}

#[test]
fn big_values_are_freed_in_the_background_and_counted() {
    let srv = ember(&[]);
    let mut c = srv.connect();
    // A set of 200,000 members and a small one.
    for chunk in 0..20 {
        let mut args = vec!["SADD".to_string(), "big".to_string()];
        args.extend((0..10_000).map(|i| format!("member-{chunk}-{i}")));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        c.cmd(&refs);
    }
    c.cmd(&["SADD", "small", "a", "b", "c"]);
    assert_eq!(c.cmd(&["UNLINK", "big", "small", "missing"]).as_str(), "2");
    assert!(settled(&mut c));
    assert_eq!(freed(&mut c), 1, "the big set went to the lazy free thread, the small one did not");
    assert_eq!(c.cmd(&["EXISTS", "big"]).as_str(), "0");

    // DEL frees in place unless lazyfree-lazy-user-del says otherwise.
    c.cmd(&["RPUSH", "list", "x"]);
    for _ in 0..10 {
        let mut args = vec!["RPUSH".to_string(), "list".to_string()];
        args.extend((0..2_000).map(|i| i.to_string()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        c.cmd(&refs);
    }
    c.cmd(&["DEL", "list"]);
    assert!(settled(&mut c));
    assert_eq!(freed(&mut c), 1);
    c.cmd(&["CONFIG", "SET", "lazyfree-lazy-user-del", "yes"]);
    c.cmd(&["XADD", "s", "*", "f", "v"]);
    c.cmd(&["CONFIG", "SET", "stream-node-max-entries", "5"]);
    for i in 0..1000 {
        c.cmd(&["XADD", "s", "*", "f", &i.to_string()]);
    }
    c.cmd(&["DEL", "s"]);
    assert!(settled(&mut c));
    assert_eq!(freed(&mut c), 2);

    // FLUSHALL ASYNC frees every key in the background; SYNC (and the default) here.
    for i in 0..500 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    c.cmd(&["SELECT", "2"]);
    c.cmd(&["SET", "other", "v"]);
    assert_eq!(c.cmd(&["FLUSHALL", "ASYNC"]).as_str(), "OK");
    assert_eq!(c.cmd(&["DBSIZE"]).as_str(), "0");
    assert!(settled(&mut c));
    assert_eq!(freed(&mut c), 2 + 501);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["FLUSHDB", "SYNC"]).as_str(), "OK");
    assert_eq!(freed(&mut c), 503);
    c.cmd(&["CONFIG", "SET", "lazyfree-lazy-user-flush", "yes"]);
    c.cmd(&["SET", "k", "v"]);
    assert_eq!(c.cmd(&["FLUSHDB"]).as_str(), "OK");
    assert!(settled(&mut c));
    assert_eq!(freed(&mut c), 504);
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]).as_str(), "OK");
    assert_eq!(freed(&mut c), 0);
}
