//! CONFIG SET and GET of every parameter redis-server 7.0 lists, with values of every shape
//! (numbers with signs, leading zeros and spaces, memory units, percentages, words, empty),
//! sent to Ember and to a real redis-server: the replies and the value read back must match
//! byte for byte. Each parameter is put back to Redis's default before each value, so one
//! difference does not cascade. Parameters that would move the servers (ports, files,
//! sockets, TLS material, persistence switches) are left out.

use crate::util::{Conn, ember, redis};

const VALUES: &[&str] = &[
    "0",
    "1",
    "-1",
    "yes",
    "no",
    "YES",
    "100",
    "1k",
    "1kb",
    "1K",
    "1mb",
    "1g",
    "1gb",
    "1b",
    "kb",
    "1.5",
    "abc",
    "",
    "10%",
    "0%",
    "100%",
    "101%",
    "-5%",
    "%",
    "2147483648",
    "4294967296",
    "9223372036854775807",
    "9223372036854775808",
    "18446744073709551616",
    "-0",
    "00",
    "+5",
    "0x10",
    " 5",
    "5 ",
    "1e3",
    "1 2",
    "allkeys-lru",
    "ALLKEYS-LRU",
    "everysec",
    "notice",
    "local",
    "hostname",
    "50 99.9",
    "inf",
    "{title}",
    "{title} {port}",
    "{{ {title}",
    "{nope} x",
    "x {",
];

/// Left out: they change where the servers listen or write, or need files.
const SKIP: &[&str] = &[
    "port",
    "bind",
    "dir",
    "logfile",
    "unixsocket",
    "daemonize",
    "pidfile",
    "dbfilename",
    "appenddirname",
    "appendfilename",
    "appendonly",
    "save",
    "requirepass",
    "masterauth",
    "masteruser",
    "aclfile",
    "cluster-config-file",
    "maxclients",
    "bind-source-addr",
    "oom-score-adj",
    "oom-score-adj-values",
    "replica-announce-ip",
    "cluster-announce-ip",
    "supervised",
    "syslog-enabled",
    "syslog-ident",
    "shutdown-on-sigterm",
    "shutdown-on-sigint",
    "enable-debug-command",
];

#[test]
fn config_set_and_get_answer_like_redis() {
    let (e, r) = (ember(&[]), redis());
    let (mut ce, mut cr) = (e.connect(), r.connect());
    let all = cr.cmd(&["CONFIG", "GET", "*"]);
    let pairs: Vec<(String, String)> = all.children().chunks(2).map(|kv| (kv[0].as_str(), kv[1].as_str())).collect();
    assert!(pairs.len() > 150, "redis-server listed {} parameters", pairs.len());
    let mut found = Vec::new();
    for (name, default) in &pairs {
        if SKIP.contains(&name.as_str()) || name.starts_with("tls-") {
            continue;
        }
        for v in VALUES {
            for c in [&mut ce, &mut cr] {
                c.cmd(&["CONFIG", "SET", name, default]);
            }
            if found.len() < 30 {
                found.extend(differs(&mut ce, &mut cr, &["CONFIG", "SET", name, v], name));
            }
        }
    }
    // Multi-argument values (split at each single space) and several pairs at once.
    let multi: &[(&str, &[&str])] = &[
        (
            "save",
            &[
                "",
                " ",
                "3600 1",
                "3600  1",
                "3600 1 ",
                "3600",
                "a b",
                "-1 5",
                "1 -1",
                "0 0",
                "+1 1",
                "01 1",
                "9999999999999999999 1",
                "1 4294967297",
            ],
        ),
        (
            "client-output-buffer-limit",
            &[
                "normal 0 0 0",
                "normal  0 0 0",
                "NORMAL 1mb 1kb 60",
                "replica 1 2 3",
                "master 1 2 3",
                "normal 0 0",
                "normal -1 0 0",
                "normal 0 0 -1",
                "normal 0 0 +5",
                "normal 18446744073709551616 0 0",
            ],
        ),
        (
            "oom-score-adj-values",
            &["0 200 800", "0 200", "0  200 800", "-2000 0 2000", "2001 0 0", "0 200 800 ", "+1 2 3", "100 50 10"],
        ),
        (
            "shutdown-on-sigterm",
            &["default", "save nosave", "now force", "SAVE", "", " save", "save  now", "default save"],
        ),
        ("notify-keyspace-events", &["KEA", "", "x", "A", "Kg$", "KKK", "Ed"]),
    ];
    for (name, values) in multi {
        let default = cr.cmd(&["CONFIG", "GET", name]).children()[1].as_str();
        for v in *values {
            found.extend(differs(&mut ce, &mut cr, &["CONFIG", "SET", name, v], name));
            for c in [&mut ce, &mut cr] {
                c.cmd(&["CONFIG", "SET", name, &default]);
            }
        }
    }
    let pairs: &[&[&str]] = &[
        &["maxmemory", "1mb", "maxmemory", "2mb"],
        &["maxmemory", "1mb", "nosuch", "1"],
        &["maxmemory", "1mb", "port"],
        &["hz", "abc", "daemonize", "yes"],
        &["MAXMEMORY", "1mb", "maxmemory", "1mb"],
        &["hash-max-listpack-value", "1", "hash-max-ziplist-value", "2"],
        &["hz", "abc", "maxmemory", "1mb"],
    ];
    for args in pairs {
        let cmd: Vec<&str> = ["CONFIG", "SET"].iter().chain(args.iter()).copied().collect();
        found.extend(differs(&mut ce, &mut cr, &cmd, "maxmemory"));
    }
    assert!(found.is_empty(), "{} CONFIG cases differ from Redis's:\n{}", found.len(), found.join("\n"));
    assert_eq!(ce.cmd(&["PING"]).as_str(), "PONG");
}

/// The same CONFIG SET to both servers, then CONFIG GET of `name`: what differs, if anything.
fn differs(ce: &mut Conn, cr: &mut Conn, set: &[&str], name: &str) -> Option<String> {
    let get = ["CONFIG", "GET", name];
    let (se, sr) = (ce.cmd(set), cr.cmd(set));
    let (ge, gr) = (ce.cmd(&get), cr.cmd(&get));
    ((se.bytes(), ge.bytes()) != (sr.bytes(), gr.bytes())).then(|| {
        format!(
            "{set:?}\n  ember: {} then {}\n  redis: {} then {}",
            se.text().trim_end(),
            ge.text().escape_debug(),
            sr.text().trim_end(),
            gr.text().escape_debug()
        )
    })
}
