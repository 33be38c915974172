//! ACL users from the config file and from an aclfile, ACL SAVE / LOAD, and what a user can
//! and cannot reach: the behaviour differential scripts cannot show (start-up, files,
//! disconnections, brute force in ACL LOG).

use std::time::Duration;

use crate::util::{Conn, ember, ember_in, temp_dir};

#[test]
fn config_file_users_and_requirepass() {
    let dir = temp_dir("acl-conf");
    let conf = dir.join("ember.conf");
    std::fs::write(&conf, "requirepass rp\nuser alice on >pw ~k* +get +ping\nuser default on >dp +@all ~* &*\n")
        .unwrap();
    let srv = ember_in(&dir, &[conf.to_str().unwrap()]);
    let mut c = Conn::new(srv.port);
    // Nothing is readable before AUTH; the default user's password is the user line's.
    assert!(c.cmd(&["GET", "k1"]).text().starts_with("-NOAUTH"));
    assert!(c.cmd(&["AUTH", "rp"]).text().starts_with("-WRONGPASS"));
    assert_eq!(c.cmd(&["AUTH", "dp"]).text(), "+OK\r\n");
    c.cmd(&["SET", "k1", "v"]);
    let mut a = Conn::new(srv.port);
    assert_eq!(a.cmd(&["AUTH", "alice", "pw"]).text(), "+OK\r\n");
    assert_eq!(a.cmd(&["GET", "k1"]).as_str(), "v");
    assert_eq!(a.cmd(&["SET", "k1", "x"]).text(), "-NOPERM this user has no permissions to run the 'set' command\r\n");
    assert_eq!(
        a.cmd(&["GET", "other"]).text(),
        "-NOPERM this user has no permissions to access one of the keys used as arguments\r\n"
    );
    // CONFIG REWRITE keeps the users as `user` lines.
    c.cmd(&["ACL", "SETUSER", "bob", "on", ">bp", "+get"]);
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]).text(), "+OK\r\n");
    let text = std::fs::read_to_string(&conf).unwrap();
    assert!(text.contains("user bob on #"), "{text}");
    assert!(text.contains("user alice on #"), "{text}");
}

#[test]
fn aclfile_save_load_and_disconnections() {
    let dir = temp_dir("acl-file");
    let file = dir.join("users.acl");
    std::fs::write(&file, "user carol on >cp ~* +@all\n").unwrap();
    let srv = ember(&["--aclfile", file.to_str().unwrap()]);
    let mut c = Conn::new(srv.port);
    let mut carol = Conn::new(srv.port);
    assert_eq!(carol.cmd(&["AUTH", "carol", "cp"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["ACL", "USERS"]).children().len(), 2);
    c.cmd(&["ACL", "SETUSER", "dan", "on", ">dp", "+get"]);
    assert_eq!(c.cmd(&["ACL", "SAVE"]).text(), "+OK\r\n");
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(saved.contains("user dan on #") && saved.contains("user carol on #"), "{saved}");
    // A file with an error changes nothing and says where.
    std::fs::write(&file, "user carol on >cp +nosuch\n").unwrap();
    let e = c.cmd(&["ACL", "LOAD"]).as_str();
    assert!(e.contains("users.acl:1: Error in applying operation '+nosuch'"), "{e}");
    assert_eq!(c.cmd(&["ACL", "USERS"]).children().len(), 3);
    // ACL LOAD replaces the users and disconnects their clients.
    std::fs::write(&file, "user erin on >ep +@all ~*\n").unwrap();
    assert_eq!(c.cmd(&["ACL", "LOAD"]).text(), "+OK\r\n");
    let users: Vec<String> = c.cmd(&["ACL", "USERS"]).children().iter().map(|f| f.as_str()).collect();
    assert_eq!(users, ["default", "erin"]);
    let (_, closed) = carol.read_until_close(Duration::from_secs(5));
    assert!(closed, "carol's client survived ACL LOAD");
}

#[test]
fn aclfile_and_user_lines_together_refuse_to_start() {
    let dir = temp_dir("acl-both");
    let conf = dir.join("ember.conf");
    std::fs::write(&conf, format!("aclfile {}\nuser x on nopass\n", dir.join("u.acl").display())).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ember-server"))
        .arg(&conf)
        .args(["--port", "0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("please define either an ACL file or declare users directly"), "{text}");
}

#[test]
fn deleted_users_and_killed_users_lose_their_clients_and_brute_force_is_logged() {
    let srv = ember(&[]);
    let mut c = Conn::new(srv.port);
    c.cmd(&["ACL", "SETUSER", "frank", "on", ">fp", "+@all", "~*"]);
    let mut f1 = Conn::new(srv.port);
    let mut f2 = Conn::new(srv.port);
    assert_eq!(f1.cmd(&["AUTH", "frank", "fp"]).text(), "+OK\r\n");
    assert_eq!(f2.cmd(&["AUTH", "frank", "fp"]).text(), "+OK\r\n");
    assert_eq!(f1.cmd(&["CLIENT", "KILL", "USER", "frank", "SKIPME", "yes"]).as_str(), "1");
    assert!(f2.read_until_close(Duration::from_secs(5)).1, "CLIENT KILL USER left the client");
    assert_eq!(c.cmd(&["ACL", "DELUSER", "frank"]).as_str(), "1");
    assert!(f1.read_until_close(Duration::from_secs(5)).1, "ACL DELUSER left the client");
    assert!(c.cmd(&["CLIENT", "KILL", "USER", "frank"]).text().starts_with("-ERR No such user"));
    // Many wrong passwords make one ACL LOG entry with their count.
    c.cmd(&["ACL", "SETUSER", "gina", "on", ">right"]);
    c.cmd(&["ACL", "LOG", "RESET"]);
    let mut g = Conn::new(srv.port);
    for i in 0..50 {
        assert!(g.cmd(&["AUTH", "gina", &format!("guess{i}")]).text().starts_with("-WRONGPASS"));
    }
    let log = c.cmd(&["ACL", "LOG"]);
    assert_eq!(log.children().len(), 1);
    let entry: Vec<String> = log.children()[0].children().iter().map(|f| f.as_str()).collect();
    assert_eq!(
        &entry[..10],
        ["count", "50", "reason", "auth", "context", "toplevel", "object", "AUTH", "username", "gina"]
    );
}

#[test]
fn subscribers_whose_channels_are_revoked_are_disconnected() {
    let srv = ember(&[]);
    let mut c = Conn::new(srv.port);
    c.cmd(&["ACL", "SETUSER", "sub", "on", "nopass", "+@all", "~*", "&chan:*", "&other"]);
    let mut keep = Conn::new(srv.port);
    let mut lose = Conn::new(srv.port);
    keep.cmd(&["AUTH", "sub", "x"]);
    lose.cmd(&["AUTH", "sub", "x"]);
    keep.cmd(&["SUBSCRIBE", "chan:1"]);
    lose.cmd(&["SUBSCRIBE", "chan:1", "other"]);
    lose.read();
    assert_eq!(
        c.cmd(&["SUBSCRIBE", "other"]).children()[0].as_str(),
        "subscribe",
        "the default user subscribes anywhere"
    );
    let mut admin = Conn::new(srv.port);
    assert_eq!(admin.cmd(&["ACL", "SETUSER", "sub", "resetchannels", "&chan:*"]).text(), "+OK\r\n");
    assert!(lose.read_until_close(Duration::from_secs(5)).1, "a subscriber of a revoked channel stayed");
    assert_eq!(admin.cmd(&["PUBLISH", "chan:1", "m"]).as_str(), "1", "the allowed subscriber stays");
}

/// MIGRATE moves keys to redis-server and back, with their TTLs, COPY and REPLACE.
#[test]
fn migrate_moves_keys_both_ways() {
    let e = ember(&[]);
    let r = crate::util::redis();
    let mut ec = Conn::new(e.port);
    let mut rc = Conn::new(r.port);
    ec.cmd(&["RPUSH", "l", "a", "b"]);
    ec.cmd(&["SET", "t", "v", "EX", "100"]);
    let rport = r.port.to_string();
    assert_eq!(ec.cmd(&["MIGRATE", "127.0.0.1", &rport, "", "3", "5000", "KEYS", "l", "t"]).text(), "+OK\r\n");
    assert_eq!(ec.cmd(&["EXISTS", "l", "t"]).as_str(), "0");
    rc.cmd(&["SELECT", "3"]);
    assert_eq!(rc.cmd(&["LRANGE", "l", "0", "-1"]).text(), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    let ttl: i64 = rc.cmd(&["TTL", "t"]).as_str().parse().unwrap();
    assert!((90..=100).contains(&ttl), "ttl {ttl}");
    assert_eq!(crate::util::info_field(&mut ec, "stats", "migrate_cached_sockets"), 1);
    // Back from Redis with COPY; a second time the key exists there: BUSYKEY, unless REPLACE.
    let eport = e.port.to_string();
    assert_eq!(rc.cmd(&["MIGRATE", "127.0.0.1", &eport, "l", "0", "5000", "COPY"]).text(), "+OK\r\n");
    assert_eq!(ec.cmd(&["LRANGE", "l", "0", "-1"]).text(), "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    assert!(rc.cmd(&["MIGRATE", "127.0.0.1", &eport, "l", "0", "5000", "COPY"]).text().contains("BUSYKEY"));
    assert_eq!(rc.cmd(&["MIGRATE", "127.0.0.1", &eport, "l", "0", "5000", "REPLACE"]).text(), "+OK\r\n");
    assert_eq!(rc.cmd(&["EXISTS", "l"]).as_str(), "0");
}

/// What SLOWLOG and MONITOR show of commands carrying secrets, Ember beside redis-server:
/// the same arguments, "(redacted)" where Redis redacts.
#[test]
fn secrets_are_redacted_in_slowlog_and_monitor_as_in_redis() {
    let ember_srv = ember(&[]);
    let redis_srv = crate::util::redis();
    let shown = |port: u16| -> (Vec<Vec<String>>, Vec<String>) {
        let mut c = Conn::new(port);
        let mut mon = Conn::new(port);
        assert_eq!(mon.cmd(&["MONITOR"]).as_str(), "OK");
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]);
        c.cmd(&["SLOWLOG", "RESET"]);
        let p = port.to_string();
        let sent: Vec<Vec<&str>> = vec![
            vec!["ACL", "SETUSER", "slow user", "+get", "+set"],
            vec!["ACL", "SETUSER", "slowuser", "on", ">pw", "+get"],
            vec!["CONFIG", "SET", "masterauth", "secret", "maxmemory-clients", "0"],
            vec!["AUTH", "not-real"],
            vec!["AUTH", "slowuser", "wrong"],
            vec!["AUTH", "a", "b", "c"],
            vec!["HELLO", "2", "AUTH", "slowuser", "wrong"],
            vec!["MIGRATE", "127.0.0.1", &p, "nokey", "9", "5000", "AUTH", "pw"],
            vec!["MIGRATE", "127.0.0.1", &p, "nokey", "9", "5000", "AUTH2", "u", "pw"],
            vec!["MIGRATE", "127.0.0.1", &p, "", "9", "5000", "AUTH", "pw", "KEYS", "nokey"],
        ];
        for cmd in &sent {
            c.cmd(cmd);
        }
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "-1"]);
        let log = c.cmd(&["SLOWLOG", "GET", "100"]);
        let args: Vec<Vec<String>> =
            log.children().iter().map(|e| e.children()[3].children().iter().map(|a| a.as_str()).collect()).collect();
        // MONITOR lines without their timestamp and client address.
        c.cmd(&["ECHO", "end-of-test"]);
        let mut lines = Vec::new();
        loop {
            let l = mon.read().as_str();
            if l.contains("end-of-test") {
                break;
            }
            lines.push(l.split_once("] ").map(|(_, rest)| rest.to_string()).unwrap_or(l));
        }
        (args, lines)
    };
    let (ember_log, ember_mon) = shown(ember_srv.port);
    let (redis_log, redis_mon) = shown(redis_srv.port);
    assert!(ember_log.iter().flatten().any(|a| a == "(redacted)"), "nothing redacted: {ember_log:?}");
    assert!(!format!("{ember_log:?}{ember_mon:?}").contains("secret"), "a secret shows");
    // Ports differ between the two servers: compare with them blanked.
    let blank =
        |v: Vec<String>, p: u16| -> Vec<String> { v.into_iter().map(|s| s.replace(&p.to_string(), "PORT")).collect() };
    let ember_mon = blank(ember_mon, ember_srv.port);
    let redis_mon = blank(redis_mon, redis_srv.port);
    let ember_log: Vec<Vec<String>> = ember_log.into_iter().map(|e| blank(e, ember_srv.port)).collect();
    let redis_log: Vec<Vec<String>> = redis_log.into_iter().map(|e| blank(e, redis_srv.port)).collect();
    assert_eq!(ember_log, redis_log);
    assert_eq!(ember_mon, redis_mon);
}
