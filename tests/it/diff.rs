//! The differential suite: every script under `tests/diff/` is sent line by line to Ember and to
//! a real redis-server 7.0, in RESP2 and again in RESP3, and the raw reply bytes must match.
//!
//! Script syntax: one command per line, quoted like redis-cli / inline commands. `#` starts a
//! comment. A line may start with directives for things that legitimately differ:
//! `!sort` (top-level elements in any order: KEYS, SMEMBERS), `!sortpairs` (map or flat pairs in
//! any order: CONFIG GET), `!type` (only the reply type: TIME, RANDOMKEY), `!len` (type and
//! element count), `!noreply` (no reply expected), `!sleep MS` (let time pass, for expiry),
//! `!resp2` / `!resp3` (run in that protocol only).
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
}

fn parse_line(line: &str) -> Option<(Directives, Vec<Vec<u8>>)> {
    let mut d = Directives::default();
    let mut rest = line.trim();
    if rest.is_empty() || rest.starts_with('#') {
        return None;
    }
    while let Some(r) = rest.strip_prefix('!') {
        let (word, tail) = r.split_once(' ').unwrap_or((r, ""));
        match word {
            "sort" => d.sort = true,
            "sortpairs" => d.sortpairs = true,
            "type" => d.type_only = true,
            "len" => d.len_only = true,
            "noreply" => d.noreply = true,
            "resp2" => d.only = Some(2),
            "resp3" => d.only = Some(3),
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

fn normalise(f: &Frame, d: &Directives) -> Vec<u8> {
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

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b).replace("\r\n", "\\r\\n");
    if s.len() > 300 { format!("{}...", &s[..300]) } else { s }
}

#[test]
fn differential_against_real_redis() {
    run_scripts(&[], &[], false);
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
    run_scripts(&["hashes.txt", "sets.txt", "zsets.txt", "lists.txt", "sort.txt", "geo.txt"], &config, true);
}

fn run_scripts(only: &[&str], config: &[[&str; 2]], unordered: bool) {
    let em = ember(&[]);
    let rd = redis();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff");
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
        for resp in [2u8, 3] {
            let mut conns = [Conn::new(em.port), Conn::new(rd.port)];
            for c in conns.iter_mut() {
                c.cmd(&["FLUSHALL"]);
                for [k, v] in config {
                    c.cmd(&["CONFIG", "SET", k, v]);
                }
                if resp == 3 {
                    c.cmd(&["HELLO", "3"]);
                }
            }
            for (lineno, line) in text.lines().enumerate() {
                let Some((mut d, args)) = parse_line(line) else {
                    continue;
                };
                d.deep_sort = unordered;
                if d.only.is_some_and(|o| o != resp) {
                    continue;
                }
                if d.sleep_ms > 0 {
                    std::thread::sleep(Duration::from_millis(d.sleep_ms));
                }
                if args.is_empty() {
                    continue;
                }
                let mut got = Vec::new();
                for c in conns.iter_mut() {
                    c.send_raw(&crate::util::encode(&args));
                    if !d.noreply {
                        got.push(normalise(&c.read(), &d));
                    }
                }
                if d.noreply {
                    continue;
                }
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
        }
    }
    println!("differential: {cases} cases over {} scripts, {} mismatches", files.len(), failures.len());
    if !failures.is_empty() {
        let shown: Vec<_> = failures.iter().take(60).cloned().collect();
        panic!("{} of {cases} differential cases differ from redis-server:\n{}", failures.len(), shown.join("\n"));
    }
}
