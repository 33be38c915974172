//! Pub/Sub, keyspace events and client-side caching against the binary, with real client
//! libraries and hostile subscribers. Reply and message shapes are compared with redis-server
//! in tests/diff/pubsub.txt, notify.txt and tracking.txt.

use std::time::{Duration, Instant};

use redis::Commands;

use crate::util::{Conn, ember, eventually, info_field};

fn client_list(c: &mut Conn) -> String {
    c.cmd(&["CLIENT", "LIST"]).as_str()
}

#[test]
fn redis_crate_subscriber_receives_messages_and_patterns() {
    let s = ember(&[]);
    let mut sub_conn = s.client();
    let mut publisher = s.client();
    let mut sub = sub_conn.as_pubsub();
    sub.subscribe("orders").unwrap();
    sub.psubscribe("audit.*").unwrap();
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let n: i64 = publisher.publish("orders", "order-1").unwrap();
    assert_eq!(n, 1);
    let n: i64 = publisher.publish("audit.login", "alice").unwrap();
    assert_eq!(n, 1);
    let n: i64 = publisher.publish("nobody", "x").unwrap();
    assert_eq!(n, 0);
    let m = sub.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "orders");
    assert_eq!(m.get_payload::<String>().unwrap(), "order-1");
    let m = sub.get_message().unwrap();
    assert_eq!(m.get_channel_name(), "audit.login");
    assert_eq!(m.get_pattern::<String>().unwrap(), "audit.*");
    assert_eq!(m.get_payload::<String>().unwrap(), "alice");
}

/// A subscriber that never reads while 1 GB is published to it is disconnected at the pubsub
/// hard limit (32 MB by default); the server's memory stays bounded and another client keeps
/// being served promptly throughout.
#[test]
fn slow_subscriber_is_disconnected_and_memory_stays_bounded() {
    let s = ember(&[]);
    let mut slow = s.connect();
    slow.cmd(&["SUBSCRIBE", "firehose"]);
    // The slow client never reads again.
    let mut publisher = s.connect();
    let mut observer = s.connect();
    assert!(client_list(&mut observer).contains("sub=1"));
    let payload = vec![b'm'; 1024 * 1024];
    let frame = crate::util::encode(&[b"PUBLISH".to_vec(), b"firehose".to_vec(), payload]);
    let mut max_rss = 0;
    let mut max_ping = Duration::ZERO;
    let mut delivered_total = 0i64;
    // 1 GB in batches of 16 pipelined 1 MB messages.
    for batch in 0..64 {
        for _ in 0..16 {
            publisher.send_raw(&frame);
        }
        for _ in 0..16 {
            let r = publisher.read().text();
            delivered_total += r.trim_start_matches(':').trim().parse::<i64>().unwrap();
        }
        let t = Instant::now();
        assert_eq!(observer.cmd(&["PING"]).text(), "+PONG\r\n");
        max_ping = max_ping.max(t.elapsed());
        if batch % 8 == 0 {
            max_rss = max_rss.max(info_field(&mut observer, "memory", "used_memory_rss"));
        }
    }
    max_rss = max_rss.max(info_field(&mut observer, "memory", "used_memory_rss"));
    println!("delivered to the slow subscriber: {delivered_total} MB; max RSS {max_rss}; max PING {max_ping:?}");
    // Disconnected long before 1 GB: the hard limit is 32 MB plus what the socket buffers took.
    assert!(delivered_total < 200, "the slow subscriber received {delivered_total} of 1024 messages");
    assert!(eventually(Duration::from_secs(5), || !client_list(&mut observer).contains("sub=1")));
    assert_eq!(info_field(&mut observer, "stats", "pubsub_channels"), 0);
    assert!(max_rss < 256 * 1024 * 1024, "RSS reached {max_rss} bytes while publishing 1 GB");
    assert!(max_ping < Duration::from_secs(2), "a PING took {max_ping:?} while the subscriber was flooded");
}

#[test]
fn output_buffer_hard_limit_for_normal_clients() {
    let s = ember(&[]);
    let mut c = s.connect();
    c.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 1mb 0 0"]);
    let big = "v".repeat(512 * 1024);
    for _ in 0..8 {
        c.cmd(&["RPUSH", "big", &big]);
    }
    // A 4 MB reply is over the limit: the client is closed instead of answered.
    c.send(&["LRANGE", "big", "0", "-1"]);
    let (bytes, closed) = c.read_until_close(Duration::from_secs(5));
    assert!(closed, "the connection stayed open");
    assert!(bytes.len() < 1024 * 1024, "{} bytes arrived", bytes.len());
    let mut other = s.connect();
    assert_eq!(other.cmd(&["LLEN", "big"]).text(), ":8\r\n");
    other.cmd(&["CONFIG", "SET", "client-output-buffer-limit", "normal 0 0 0"]);
    assert!(other.cmd(&["LRANGE", "big", "0", "-1"]).children().len() == 8);
}

/// Keyspace events for evictions and expirations reach a subscriber, one per key.
#[test]
fn evicted_and_expired_keys_raise_events() {
    let s = ember(&["--maxmemory-policy", "allkeys-random", "--notify-keyspace-events", "Exe"]);
    let mut c = s.connect();
    let mut sub = s.connect();
    sub.cmd(&["SUBSCRIBE", "__keyevent@0__:evicted", "__keyevent@0__:expired"]);
    sub.read();
    c.cmd(&["SET", "short", "v", "PX", "1"]);
    let used = info_field(&mut c, "memory", "used_memory");
    c.cmd(&["CONFIG", "SET", "maxmemory", &(used + 200 * 1024).to_string()]);
    let v = "x".repeat(1000);
    for i in 0..600 {
        c.cmd(&["SET", &format!("k:{i}"), &v]);
    }
    let evicted = info_field(&mut c, "stats", "evicted_keys");
    assert!(evicted > 100, "only {evicted} evictions");
    let mut evicted_events = 0;
    let mut expired = false;
    while evicted_events < evicted || !expired {
        let m = sub.read();
        let kids = m.children();
        assert_eq!(kids[0].as_str(), "message");
        match kids[1].as_str().as_str() {
            "__keyevent@0__:evicted" => {
                assert!(kids[2].as_str().starts_with("k:"));
                evicted_events += 1;
            }
            "__keyevent@0__:expired" => {
                assert_eq!(kids[2].as_str(), "short");
                expired = true;
            }
            other => panic!("unexpected channel {other}"),
        }
    }
    assert_eq!(evicted_events, evicted);
}

/// A minimal client-side cache over RESP3 + CLIENT TRACKING, as client libraries build one:
/// before each read the connection's pending pushes are applied (a PING's reply proves none
/// is left in flight), cached reads never reach the server, and another client's write,
/// expiry or FLUSHALL invalidates exactly what changed.
#[test]
fn raw_resp3_client_side_cache_is_invalidated() {
    use std::collections::HashMap;
    struct Cached {
        c: Conn,
        cache: HashMap<String, String>,
    }
    impl Cached {
        fn apply_invalidations(&mut self) {
            self.c.send(&["PING"]);
            loop {
                let f = self.c.read();
                if f.text() == "+PONG\r\n" {
                    return;
                }
                let kids = f.children();
                assert_eq!(kids[0].as_str(), "invalidate", "unexpected push {}", f.text());
                if kids[1].children().is_empty() {
                    self.cache.clear(); // null payload: everything (FLUSHALL)
                }
                for k in kids[1].children() {
                    self.cache.remove(&k.as_str());
                }
            }
        }
        fn get(&mut self, key: &str) -> String {
            self.apply_invalidations();
            if let Some(v) = self.cache.get(key) {
                return v.clone();
            }
            let v = self.c.cmd(&["GET", key]).as_str();
            self.cache.insert(key.to_string(), v.clone());
            v
        }
    }
    let s = ember(&[]);
    let mut w = s.connect();
    let mut c = s.connect();
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on"]).text(), "+OK\r\n");
    let mut cached = Cached { c, cache: HashMap::new() };
    w.cmd(&["SET", "greeting", "hello"]);
    w.cmd(&["SET", "other", "1"]);
    let gets = |w: &mut Conn| -> u64 {
        let info = w.cmd(&["INFO", "commandstats"]).as_str();
        info.lines()
            .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(cached.get("greeting"), "hello");
    assert_eq!(cached.get("other"), "1");
    let before = gets(&mut w);
    for _ in 0..5 {
        assert_eq!(cached.get("greeting"), "hello");
    }
    assert_eq!(gets(&mut w), before, "cached reads reached the server");
    w.cmd(&["SET", "greeting", "bonjour"]);
    assert_eq!(cached.get("greeting"), "bonjour");
    assert!(cached.cache.contains_key("other"), "an unrelated key was invalidated");
    w.cmd(&["PEXPIRE", "other", "1"]);
    assert!(eventually(Duration::from_secs(5), || cached.get("other").is_empty()));
    w.cmd(&["FLUSHALL"]);
    assert_eq!(cached.get("greeting"), "");
}

#[test]
fn tracking_reports_a_broken_redirect() {
    let s = ember(&[]);
    let mut target = s.connect();
    let id = target.cmd(&["CLIENT", "ID"]).text().trim_start_matches(':').trim().to_string();
    let mut c = s.connect();
    c.cmd(&["HELLO", "3"]);
    assert_eq!(c.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]).text(), "+OK\r\n");
    c.cmd(&["GET", "k"]);
    drop(target);
    let mut w = s.connect();
    assert!(eventually(Duration::from_secs(5), || !client_list(&mut w).contains(&format!("id={id} "))));
    w.cmd(&["SET", "k", "v"]);
    // The tracking client is told its redirect target is gone.
    let m = c.read();
    assert_eq!(m.children()[0].as_str(), "tracking-redir-broken");
    let info = c.cmd(&["CLIENT", "TRACKINGINFO"]).text();
    assert!(info.contains("broken_redirect"), "{info}");
}

/// Over `tracking-table-max-keys`, keys are forgotten with an invalidation, as if modified.
#[test]
fn tracking_table_is_bounded() {
    let s = ember(&["--tracking-table-max-keys", "2"]);
    let mut c = s.connect();
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["CLIENT", "TRACKING", "on"]);
    for i in 0..5 {
        c.send(&["GET", &format!("k{i}")]);
    }
    // Every read past the limit pushed one invalidation for a forgotten key (after its reply).
    c.send(&["PING"]);
    let (mut invalidated, mut replies) = (0, 0);
    loop {
        let f = c.read();
        match f.text().as_str() {
            "+PONG\r\n" => break,
            "_\r\n" => replies += 1,
            _ => {
                assert_eq!(f.children()[0].as_str(), "invalidate");
                invalidated += f.children()[1].children().len();
            }
        }
    }
    assert_eq!((replies, invalidated), (5, 3));
    assert_eq!(info_field(&mut c, "stats", "tracking_total_keys"), 2);
    assert_eq!(info_field(&mut c, "clients", "tracking_clients"), 1);
}

/// A key evicted to make room for a command is invalidated before that command's reply, even
/// for the client that sent it (Redis's order: eviction happens before the command runs).
#[test]
fn eviction_invalidations_come_before_the_reply() {
    let s = ember(&["--maxmemory-policy", "volatile-random"]);
    let mut c = s.connect();
    c.cmd(&["HELLO", "3"]);
    c.cmd(&["CLIENT", "TRACKING", "on"]);
    let used = crate::util::info_field(&mut c, "memory", "used_memory");
    c.cmd(&["CONFIG", "SET", "maxmemory", &(used + 100 * 1024).to_string()]);
    c.cmd(&["SETEX", "volatile-key", "10000", "x"]);
    c.cmd(&["GET", "volatile-key"]);
    c.cmd(&["SETBIT", "big-key", "1600000", "0"]);
    c.send(&["GETBIT", "big-key", "0"]);
    assert_eq!(c.read().text(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$12\r\nvolatile-key\r\n");
    assert_eq!(c.read().text(), ":0\r\n");
}

/// A client served by an unblocking BLMOVE gets its reply first, then the invalidation of the
/// tracked key that BLMOVE pushed to.
#[test]
fn unblocked_blmove_gets_its_invalidation_after_the_reply() {
    let s = ember(&[]);
    let mut rd = s.connect();
    let mut c = s.connect();
    c.cmd(&["RPUSH", "list2", "a"]);
    rd.cmd(&["HELLO", "3"]);
    rd.cmd(&["CLIENT", "TRACKING", "on"]);
    rd.cmd(&["LRANGE", "list2", "0", "-1"]);
    rd.send(&["BLMOVE", "list1", "list2", "LEFT", "LEFT", "0"]);
    assert!(crate::util::eventually(Duration::from_secs(5), || c
        .cmd(&["INFO", "clients"])
        .as_str()
        .contains("blocked_clients:1")));
    c.cmd(&["RPUSH", "list1", "foo"]);
    assert_eq!(rd.read().text(), "$3\r\nfoo\r\n");
    assert_eq!(rd.read().text(), ">2\r\n$10\r\ninvalidate\r\n*1\r\n$5\r\nlist2\r\n");
}

/// Lowering tracking-table-max-keys at run time forgets keys (and tells their clients) from
/// cron, without waiting for another read.
#[test]
fn lowering_the_tracking_table_limit_invalidates_from_cron() {
    let s = ember(&[]);
    let mut redir = s.connect();
    let mut c = s.connect();
    let id = redir.cmd(&["CLIENT", "ID"]).text().trim_start_matches(':').trim().to_string();
    redir.cmd(&["SUBSCRIBE", "__redis__:invalidate"]);
    c.cmd(&["CLIENT", "TRACKING", "on", "REDIRECT", &id, "NOLOOP"]);
    c.cmd(&["MSET", "key1", "1", "key2", "2"]);
    c.cmd(&["MGET", "key1", "key2"]);
    c.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    let msg = redir.read();
    let key = msg.children()[2].children()[0].as_str();
    assert!(key == "key1" || key == "key2", "{key}");
    assert_eq!(info_field(&mut c, "stats", "tracking_total_keys"), 1);
}

/// Redis's #11715: a lowered tracking-table-max-keys applies before the next command, even
/// one queued in MULTI, and the client told hears it before the reply.
#[test]
fn tracking_limit_applies_before_a_queued_command() {
    let s = ember(&["--enable-debug-command", "yes"]);
    let mut c = s.connect();
    let mut rd = s.connect();
    c.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "2"]);
    c.cmd(&["DEBUG", "PAUSE-CRON", "1"]);
    rd.cmd(&["HELLO", "3"]);
    rd.cmd(&["CLIENT", "TRACKING", "on"]);
    rd.cmd(&["MGET", "1{tag}", "2{tag}"]);
    rd.cmd(&["MULTI"]);
    c.cmd(&["CONFIG", "SET", "tracking-table-max-keys", "1"]);
    rd.send(&["PING"]);
    let first = rd.read();
    assert_eq!(first.children()[0].as_str(), "invalidate");
    assert_eq!(rd.read().text(), "+QUEUED\r\n");
    assert_eq!(rd.cmd(&["EXEC"]).children()[0].text(), "+PONG\r\n");
    c.cmd(&["DEBUG", "PAUSE-CRON", "0"]);
}
