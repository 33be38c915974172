//! The differential suite: every script under `tests/diff/` is sent line by line to Ember and to
//! a real redis-server 7.0, in RESP2 and again in RESP3, and the raw reply bytes must match.
//!
//! Script syntax: one command per line, quoted like redis-cli / inline commands. `#` starts a
//! comment. A line may start with directives for things that legitimately differ:
//! `!sort` (top-level elements in any order: KEYS, SMEMBERS), `!deepsort` (every aggregate, nested
//! ones too, in any order: a container's subcommands), `!sortpairs` (map or flat pairs in
//! any order: CONFIG GET), `!type` (only the reply type: TIME, RANDOMKEY), `!len` (type and
//! element count), `!noreply` (the reply is read, not compared), `!sleep MS` (let time pass, for expiry),
//! `!resp2` / `!resp3` (run in that protocol only).
//!
//! Several connections (Pub/Sub, keyspace events, client-side caching): a line starting with
//! `@name` runs on that connection (opened on first use; plain lines run on the main one). In a
//! script that names connections, after every command each connection is sent a PING and
//! everything it received before the PONG (messages, invalidations, extra confirmation
//! frames) is compared too: the PONG proves the server has written everything that command
//! caused, so no timing is involved. `{id:name}` in an argument becomes that connection's
//! CLIENT ID on each server (REDIRECT).
//!
//! The collection scripts run a second time with the compact encodings switched off on both
//! servers, comparing aggregates as multisets (see `differential_with_compact_encodings_off`).

use std::time::Duration;

use ember::protocol::resp::split_args;

use crate::util::{Conn, Frame, ember, redis};

#[derive(Default, Clone)]
struct Directives {
    /// Every aggregate, nested ones too, compared as a multiset (hash-table order).
    deep_sort: bool,
    sort: bool,
    sortpairs: bool,
    type_only: bool,
    len_only: bool,
    noreply: bool,
    sleep_ms: u64,
    only: Option<u8>,
    /// Top-level map keys left out of the comparison (`!drop a,b`): internals Redis reports
    /// that Ember has no equivalent of (XINFO STREAM radix-tree-nodes).
    drop: Vec<String>,
    /// The connection this line runs on (`@name`); None = main.
    conn: Option<String>,
}

fn parse_line(line: &str) -> Option<(Directives, Vec<Vec<u8>>)> {
    let mut d = Directives::default();
    let mut rest = line.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    loop {
        if let Some(r) = rest.strip_prefix('@') {
            let (name, tail) = r.split_once(' ').unwrap_or((r, ""));
            d.conn = Some(name.to_string());
            rest = tail.trim();
            continue;
        }
        let Some(r) = rest.strip_prefix('!') else { break };
        let (word, tail) = r.split_once(' ').unwrap_or((r, ""));
        match word {
            "sort" => d.sort = true,
            "deepsort" => d.deep_sort = true,
            "sortpairs" => d.sortpairs = true,
            "type" => d.type_only = true,
            "len" => d.len_only = true,
            "noreply" => d.noreply = true,
            "resp2" => d.only = Some(2),
            "resp3" => d.only = Some(3),
            "drop" => {
                let (names, t) = tail.split_once(' ').unwrap_or((tail, ""));
                d.drop = names.split(',').map(str::to_string).collect();
                rest = t.trim();
                continue;
            }
            "sleep" => {
                let (ms, t) = tail.split_once(' ').unwrap_or((tail, ""));
                d.sleep_ms = ms.parse().expect("!sleep MS");
                rest = t.trim();
                continue;
            }
            other => panic!("unknown directive !{other}"),
        }
        rest = tail.trim();
    }
    if rest.is_empty() {
        return Some((d, vec![]));
    }
    let args = split_args(rest.as_bytes()).expect("unbalanced quotes in script");
    Some((d, args))
}

/// DEBUG PROTOCOL: whose push (in RESP3) is followed by a reply of its own.
fn is_debug_protocol(args: &[Vec<u8>]) -> bool {
    args.len() > 1 && args[0].eq_ignore_ascii_case(b"debug") && args[1].eq_ignore_ascii_case(b"protocol")
}

fn normalise(f: &Frame, d: &Directives) -> Vec<u8> {
    if matches!(f, Frame::Agg(..)) && !d.drop.is_empty() {
        let f = drop_pairs(f, &d.drop);
        let d = Directives { drop: vec![], ..d.clone() };
        return normalise(&f, &d);
    }
    if d.type_only {
        return f.bytes()[..1].to_vec();
    }
    if d.len_only {
        let b = f.bytes();
        let end = b.iter().position(|&c| c == b'\n').unwrap_or(0);
        return b[..=end].to_vec();
    }
    match f {
        Frame::Agg(..) if d.deep_sort => deep_sorted(f).bytes(),
        Frame::Agg(h, kids) if d.sort => {
            let mut k = kids.clone();
            k.sort();
            Frame::Agg(h.clone(), k).bytes()
        }
        Frame::Agg(h, kids) if d.sortpairs => {
            let mut pairs: Vec<Vec<u8>> = kids.chunks(2).map(|c| c.iter().flat_map(|f| f.bytes()).collect()).collect();
            pairs.sort();
            let mut v = h.clone();
            pairs.into_iter().for_each(|p| v.extend(p));
            v
        }
        _ => f.bytes(),
    }
}

/// `f` without the map pairs keyed by `names`, at any depth (ACL LOG's entries are maps in
/// an array). A header whose count changed keeps its type byte only.
fn drop_pairs(f: &Frame, names: &[String]) -> Frame {
    let Frame::Agg(h, kids) = f else { return f.clone() };
    let kids: Vec<Frame> = kids.iter().map(|k| drop_pairs(k, names)).collect();
    if !kids.len().is_multiple_of(2) {
        return Frame::Agg(h.clone(), kids);
    }
    let mut kept = Vec::new();
    for pair in kids.chunks(2) {
        if !names.iter().any(|n| pair[0].as_str() == *n) {
            kept.extend(pair.iter().cloned());
        }
    }
    if kept.len() == kids.len() {
        return Frame::Agg(h.clone(), kept);
    }
    Frame::Agg(h[..1].to_vec(), kept)
}

fn deep_sorted(f: &Frame) -> Frame {
    match f {
        Frame::Agg(h, kids) => {
            let mut k: Vec<Frame> = kids.iter().map(deep_sorted).collect();
            k.sort();
            Frame::Agg(h.clone(), k)
        }
        other => other.clone(),
    }
}

/// Sends PING and returns every frame received before its reply (`+PONG`, or the
/// `pong` array of a subscribed RESP2 connection), sorted when `sort`.
fn drain_until_pong(c: &mut Conn, sort: bool) -> Vec<u8> {
    c.send(&["PING"]);
    let mut frames = Vec::new();
    loop {
        let f = c.read();
        let b = f.bytes();
        if b == b"+PONG\r\n" || b == b"*2\r\n$4\r\npong\r\n$0\r\n\r\n" {
            break;
        }
        frames.push(b);
    }
    if sort {
        frames.sort();
    }
    frames.concat()
}

/// `{id:name}` → the CLIENT ID of connection `name` on server `side` (0 Ember, 1 Redis).
fn substitute_ids(arg: &[u8], named: &[(String, [Conn; 2], [String; 2])], side: usize) -> Vec<u8> {
    let text = String::from_utf8_lossy(arg);
    if let Some(name) = text.strip_prefix("{id:").and_then(|t| t.strip_suffix('}'))
        && let Some((_, _, ids)) = named.iter().find(|(n, _, _)| n == name)
    {
        return ids[side].clone().into_bytes();
    }
    arg.to_vec()
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b).replace("\r\n", "\\r\\n");
    if s.len() > 300 { format!("{}...", &s[..300]) } else { s }
}

#[test]
fn differential_against_real_redis() {
    run_scripts("tests/diff", &[], &[], false, None);
}

/// The scripts under `tests/diff/cluster/` against Ember and redis-server both started with
/// `cluster-enabled yes` and serving all 16384 slots: routing errors (CROSSSLOT, SELECT...),
/// the one-node CLUSTER subcommands and scripts' cluster checks.
#[test]
fn differential_in_cluster_mode() {
    let [eb, rb] = [crate::util::free_port(), crate::util::free_port()].map(|p| p.to_string());
    let em = ember(&["--cluster-enabled", "yes", "--cluster-port", &eb]);
    let rd =
        crate::util::redis_with(&["--enable-debug-command", "yes", "--cluster-enabled", "yes", "--cluster-port", &rb]);
    for port in [em.port, rd.port] {
        let mut c = Conn::new(port);
        assert_eq!(c.cmd(&["CLUSTER", "ADDSLOTSRANGE", "0", "16383"]).text(), "+OK\r\n");
        let ok = crate::util::eventually(Duration::from_secs(10), || {
            c.cmd(&["CLUSTER", "INFO"]).as_str().contains("cluster_state:ok")
        });
        assert!(ok, "the cluster state did not turn ok on port {port}");
    }
    run_scripts("tests/diff/cluster", &[], &[], false, Some((em, rd)));
}

/// The collection scripts again with every compact encoding switched off on both servers
/// (hashtable hashes and sets, skiplist sorted sets, one-element list nodes), so the large
/// encodings answer every case too. Hash-table iteration order is each server's own, so
/// aggregate replies are compared as multisets.
#[test]
fn differential_with_compact_encodings_off() {
    let config = [
        ["hash-max-listpack-entries", "0"],
        ["set-max-intset-entries", "0"],
        ["zset-max-listpack-entries", "0"],
        ["list-max-listpack-size", "1"],
    ];
    run_scripts(
        "tests/diff",
        &["hashes.txt", "sets.txt", "zsets.txt", "lists.txt", "sort.txt", "geo.txt", "digest.txt"],
        &config,
        true,
        None,
    );
}

/// Runs the scripts of `dir` (all, or those named in `only`) against `servers` (Ember's and
/// redis-server's processes), by default two freshly started with default settings.
fn run_scripts(
    dir: &str,
    only: &[&str],
    config: &[[&str; 2]],
    unordered: bool,
    servers: Option<(crate::util::Proc, crate::util::Proc)>,
) {
    let (em, rd) = servers.unwrap_or_else(|| (ember(&[]), redis()));
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir).expect("tests/diff").map(|e| e.expect("entry").path()).collect();
    files.retain(|p| p.extension().is_some_and(|e| e == "txt"));
    files.retain(|p| only.is_empty() || p.file_name().is_some_and(|n| only.iter().any(|o| n == *o)));
    files.sort();
    assert!(!files.is_empty());
    let mut cases = 0;
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read script");
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let multi = text.lines().any(|l| l.trim_start().starts_with('@'));
        for resp in [2u8, 3] {
            let mut conns = [Conn::new(em.port), Conn::new(rd.port)];
            for c in conns.iter_mut() {
                c.cmd(&["FLUSHALL"]);
                c.cmd(&["CONFIG", "SET", "notify-keyspace-events", ""]);
                for [k, v] in config {
                    c.cmd(&["CONFIG", "SET", k, v]);
                }
                if resp == 3 {
                    c.cmd(&["HELLO", "3"]);
                }
            }
            // Named connections: name → ([ember, redis], [ember id, redis id]).
            let mut named: Vec<(String, [Conn; 2], [String; 2])> = Vec::new();
            // Connections inside MULTI are not drained (a PING would be queued).
            let mut in_multi: Vec<String> = Vec::new();
            for (lineno, line) in text.lines().enumerate() {
                let Some((mut d, mut args)) = parse_line(line) else {
                    continue;
                };
                d.deep_sort |= unordered;
                if d.only.is_some_and(|o| o != resp) {
                    continue;
                }
                if d.sleep_ms > 0 {
                    std::thread::sleep(Duration::from_millis(d.sleep_ms));
                }
                if args.is_empty() {
                    continue;
                }
                if let Some(n) = &d.conn
                    && !named.iter().any(|(m, _, _)| m == n)
                {
                    let mut pair = [Conn::new(em.port), Conn::new(rd.port)];
                    let mut ids = [String::new(), String::new()];
                    for (c, id) in pair.iter_mut().zip(ids.iter_mut()) {
                        if resp == 3 {
                            c.cmd(&["HELLO", "3"]);
                        }
                        *id = c.cmd(&["CLIENT", "ID"]).text().trim_start_matches(':').to_string();
                    }
                    named.push((n.clone(), pair, ids));
                }
                let mut got = Vec::new();
                for (side, main) in conns.iter_mut().enumerate() {
                    let args: Vec<Vec<u8>> = args.iter().map(|a| substitute_ids(a, &named, side)).collect();
                    let c = match &d.conn {
                        Some(n) => &mut named.iter_mut().find(|(m, _, _)| m == n).expect("opened above").1[side],
                        None => main,
                    };
                    c.send_raw(&crate::util::encode(&args));
                    // A reply not compared is still read: left unread, every later read would
                    // take an older command's reply, and the script would run ahead of the
                    // server (whose late commands could then land in the next pass).
                    let reply = c.read();
                    let mut text = normalise(&reply, &d);
                    // An attribute or a push comes before the reply proper (DEBUG PROTOCOL
                    // attrib/push in RESP3): left unread, that reply would be taken for the
                    // next command's, and the run would drift out of step with the servers.
                    if let Frame::Agg(head, _) = &reply
                        && (head.starts_with(b"|") || head.starts_with(b">") && is_debug_protocol(&args))
                    {
                        text.extend(normalise(&c.read(), &d));
                    }
                    if !d.noreply {
                        got.push(text);
                    }
                }
                let this = d.conn.clone().unwrap_or_else(|| "main".into());
                let verb = String::from_utf8_lossy(&args[0]).to_lowercase();
                if verb == "multi" && got.first().is_some_and(|r| r == b"+OK\r\n") {
                    in_multi.push(this);
                } else if matches!(verb.as_str(), "exec" | "discard" | "reset") {
                    in_multi.retain(|n| *n != this);
                }
                args.clear();
                if !d.noreply {
                    cases += 1;
                    if got[0] != got[1] {
                        failures.push(format!(
                            "{name}:{} (RESP{resp}) {}\n   ember: {}\n   redis: {}",
                            lineno + 1,
                            line.trim(),
                            show(&got[0]),
                            show(&got[1])
                        ));
                    }
                }
                if multi {
                    // What each connection received because of this command.
                    let mut all: Vec<(&str, &mut [Conn; 2])> = vec![("main", &mut conns)];
                    all.extend(named.iter_mut().map(|(n, pair, _)| (n.as_str(), pair)));
                    for (conn_name, pair) in all {
                        if in_multi.iter().any(|n| n == conn_name) {
                            continue;
                        }
                        let seen: Vec<Vec<u8>> = pair.iter_mut().map(|c| drain_until_pong(c, d.sort)).collect();
                        cases += 1;
                        if seen[0] != seen[1] {
                            failures.push(format!(
                                "{name}:{} (RESP{resp}) after {}: received on @{conn_name}\n   ember: {}\n   redis: {}",
                                lineno + 1,
                                line.trim(),
                                show(&seen[0]),
                                show(&seen[1])
                            ));
                        }
                    }
                }
            }
            // Leave no subscription or tracking state behind for the next script.
            for (_, pair, _) in named.iter_mut() {
                for c in pair.iter_mut() {
                    c.send(&["RESET"]);
                    while c.read().bytes() != b"+RESET\r\n" {}
                }
            }
        }
    }
    println!("differential: {cases} cases over {} scripts, {} mismatches", files.len(), failures.len());
    if !failures.is_empty() {
        let shown: Vec<_> = failures.iter().take(60).cloned().collect();
        panic!("{} of {cases} differential cases differ from redis-server:\n{}", failures.len(), shown.join("\n"));
    }
}
