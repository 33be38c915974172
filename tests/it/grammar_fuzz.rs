//! The grammar fuzzer: random but well-formed commands of the data-type groups, built from
//! redis-server's own COMMAND DOCS (tokens, optional and repeated arguments, one-of choices),
//! filled with awkward values (hex floats, 1e400, ±2^63, empty strings, stream IDs, patterns)
//! over a small key space where keys of every type collide. Each command goes to Ember and to
//! a real redis-server, and the raw replies must match byte for byte; DEBUG DIGEST compares
//! the whole data set every 50 commands (and a replica of each, served by the other kind of
//! server). Around the main connection, by phase: waiting connections in blocking commands,
//! client-side caching trackers, keyspace-event subscribers and Pub/Sub listeners, each
//! compared with its counterpart on the other server. Where the hostile fuzzer (hostile.rs) asks "does
//! Ember survive?", this one asks "does it answer exactly like Redis?" — it found argument
//! errors reported in a different order, strtod leniencies and missing-key shortcuts.
//! Seeded: EMBER_GRAMMAR_SEED and EMBER_GRAMMAR_CMDS replay or lengthen a run by hand.

use crate::util::{Conn, Frame, Proc, Rng, ember, redis};

/// One argument of a command's syntax, from COMMAND DOCS.
#[derive(Default, Debug, Clone)]
struct Arg {
    name: String,
    kind: String,
    token: Option<String>,
    optional: bool,
    multiple: bool,
    multiple_token: bool,
    args: Vec<Arg>,
}

#[derive(Clone)]
struct Command {
    name: String,
    group: String,
    args: Vec<Arg>,
}

/// Commands left out of the main connection's stream: random or time-dependent replies,
/// blocking ones (the waiting connections send those), SELECT (the connections stay in
/// database 0; MOVE and SWAPDB reach the others, and DEBUG DIGEST covers them all), and the
/// dump format (compared elsewhere).
const SKIP: &[&str] = &[
    "randomkey",
    "scan",
    "sscan",
    "hscan",
    "zscan",
    "spop",
    "srandmember",
    "hrandfield",
    "zrandmember",
    "dump",
    "restore",
    "migrate",
    "wait",
    "keys",
    "select",
    "blpop",
    "brpop",
    "blmove",
    "brpoplpush",
    "bzpopmin",
    "bzpopmax",
    "blmpop",
    "bzmpop",
    "xread",
    "xreadgroup",
    "ttl",
    "pttl",
    "expiretime",
    "pexpiretime",
    "xinfo|consumers",
    "xinfo|stream",
    "xpending",
    "function|dump",
    "pfdebug",
    "pfselftest",
    "object|idletime",
    // A debugged EVAL ends the connection (lua_debugger.rs compares those sessions).
    "script|debug",
    // COPY of a shared small integer makes a private one in Redis (refcount 1); Ember
    // keeps no per-value count and reports the shared one's.
    "object|refcount",
    // Connection commands that end, pause, silence or redirect the fuzzer's own
    // connections, or report ids, addresses and versions (EMBER_GRAMMAR_GROUPS=connection).
    "quit",
    "reset",
    "hello",
    "auth",
    "client|kill",
    "client|pause",
    "client|unpause",
    "client|reply",
    "client|list",
    "client|info",
    "client|id",
    "client|tracking",
    "client|trackinginfo",
    "client|getredir",
    "client|unblock",
    "client|caching",
    "client|no-evict",
];

/// Sent by the waiting connections (two on each server) while the main one changes the keys
/// they wait on.
const BLOCKING: &[&str] =
    &["blpop", "brpop", "blmove", "brpoplpush", "bzpopmin", "bzpopmax", "blmpop", "bzmpop", "xread", "xreadgroup"];

/// A blocking command's timeout: forever, long enough to be forever, or refused (a timeout
/// that ends during the run would make the comparison a race).
const BLOCK_TIMEOUTS: &[&str] =
    &["0", "0", "0", "0", "0", "0", "100000", "-1", "x", "inf", "nan", "1e400", "-0", "9223372036854775807"];

/// While connections wait, the main one draws from the groups that can serve them.
const FEEDING: &[&str] = &["list", "sorted-set", "stream", "generic", "transactions"];

/// Main-connection commands a waiter stays blocked through before CLIENT UNBLOCK lets it go.
const PATIENCE: usize = 25;

const GROUPS: &[&str] = &[
    "string",
    "list",
    "set",
    "sorted-set",
    "hash",
    "stream",
    "geo",
    "hyperloglog",
    "bitmap",
    "generic",
    "transactions",
    "scripting",
    "connection",
];

/// The server group's commands with answers that do not depend on time, memory, the
/// machine or the process: argument checking and key extraction.
const SERVER: &[&str] = &[
    "dbsize",
    "swapdb",
    "command|getkeys",
    "command|getkeysandflags",
    "acl|cat",
    "acl|whoami",
    "acl|dryrun",
    "acl|help",
    "command|help",
    "config|help",
    "latency|help",
    "memory|help",
    "module|help",
    "slowlog|help",
];

/// Replies whose element order is a hash table's in Redis, or (geo searches) the C
/// library's qsort's among equal distances.
const UNORDERED: &[&str] = &[
    "pubsub",
    "function",
    "smembers",
    "sinter",
    "sunion",
    "sdiff",
    "hgetall",
    "hkeys",
    "hvals",
    "georadius",
    "georadius_ro",
    "georadiusbymember",
    "georadiusbymember_ro",
    "geosearch",
];

const STRS: &[&str] = &[
    "m0",
    "m1",
    "m2",
    "m3",
    "a",
    "b",
    "",
    "0",
    "1",
    "-1",
    "10",
    "3.5",
    "abc",
    "field",
    "foo*",
    "13.361389",
    "38.115556",
    "15.087269",
    "37.502669",
    "1-1",
    "0-1",
    "5-1",
    "3",
    "g1",
    "c1",
    "$",
    ">",
    "*",
    "-",
    "+",
    "1e3",
    "inf",
    "0x10",
    "(1",
    "[a",
];
const INTS: &[&str] = &[
    "0",
    "1",
    "2",
    "3",
    "-1",
    "-2",
    "5",
    "10",
    "100",
    "-100",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "1.5",
    "x",
    "",
    "4294967296",
    "-4294967297",
    "7",
];
const DOUBLES: &[&str] = &[
    "0",
    "1",
    "1.5",
    "-2.5",
    "inf",
    "-inf",
    "+inf",
    "nan",
    "1e10",
    "(1",
    "[a",
    "abc",
    "3",
    "-0",
    "0x10",
    "0X1.8P1",
    "1e400",
    "1e-400",
    " 1",
    "13.361389",
    "38.115556",
    "2",
];
/// Relative times long enough that no key expires between the two servers' turns.
const TTLS: &[&str] = &["100000", "0", "-1", "x", "9223372036854775807", "-9223372036854775808", "1.5"];
/// Absolute times: long past or far ahead.
const UNIX_TIMES: &[&str] = &["0", "1", "9999999999", "-1", "99999999999999"];
const PATTERNS: &[&str] = &["*", "m*", "?1", "[a-z]*", "s*", "h\\*"];

fn keys_of(group: &str) -> &'static [&'static str] {
    match group {
        "string" => &["s1", "s2", "s3"],
        "list" => &["l1", "l2", "l3"],
        "set" => &["S1", "S2", "S3"],
        "sorted-set" => &["z1", "z2", "z3"],
        "hash" => &["h1", "h2"],
        "stream" => &["x1", "x2"],
        "geo" => &["g1", "g2"],
        "hyperloglog" => &["p1", "p2"],
        "bitmap" => &["b1", "b2"],
        _ => &[],
    }
}

const ALL_KEYS: &[&str] = &[
    "s1", "s2", "s3", "l1", "l2", "l3", "S1", "S2", "S3", "z1", "z2", "z3", "h1", "h2", "x1", "x2", "g1", "g2", "p1",
    "p2", "b1", "b2", "nokey",
];

/// A COMMAND DOCS map (flat pairs in RESP2) as (key, value) pairs.
fn pairs(f: &Frame) -> impl Iterator<Item = (String, &Frame)> {
    f.children().chunks(2).filter(|c| c.len() == 2).map(|c| (c[0].as_str(), &c[1]))
}

fn parse_arg(f: &Frame) -> Arg {
    let mut a = Arg::default();
    for (k, v) in pairs(f) {
        match k.as_str() {
            "name" => a.name = v.as_str(),
            "type" => a.kind = v.as_str(),
            "token" => a.token = Some(v.as_str()),
            "flags" => {
                for flag in v.children() {
                    match flag.as_str().as_str() {
                        "optional" => a.optional = true,
                        "multiple" => a.multiple = true,
                        "multiple_token" => a.multiple_token = true,
                        _ => {}
                    }
                }
            }
            "arguments" => a.args = v.children().iter().map(parse_arg).collect(),
            _ => {}
        }
    }
    a
}

/// The commands of each kind of connection, from COMMAND DOCS.
fn command_docs(c: &mut Conn) -> Grammar {
    let docs = c.cmd(&["COMMAND", "DOCS"]);
    // More groups by hand: EMBER_GRAMMAR_GROUPS.
    let extra = std::env::var("EMBER_GRAMMAR_GROUPS").unwrap_or_default();
    let mut groups: Vec<&str> = GROUPS.to_vec();
    groups.extend(extra.split(',').filter(|g| !g.is_empty()));
    let mut g = Grammar { main: vec![], feeding: vec![], blocking: vec![], pubsub: vec![], publishing: vec![] };
    collect(&docs, &mut |cmd| {
        let wanted = if cmd.group == "server" {
            SERVER.contains(&cmd.name.as_str())
        } else {
            groups.contains(&cmd.group.as_str())
        };
        if BLOCKING.contains(&cmd.name.as_str()) {
            g.blocking.push(cmd);
        } else if cmd.group == "pubsub" {
            // What changes a connection's mode (SUBSCRIBE...) only the listeners send.
            if !cmd.name.contains("subscribe") {
                g.publishing.push(cmd.clone());
            }
            g.pubsub.push(cmd);
        } else if wanted && !SKIP.contains(&cmd.name.as_str()) {
            if FEEDING.contains(&cmd.group.as_str()) {
                g.feeding.push(cmd.clone());
            }
            g.main.push(cmd);
        }
    });
    // COMMAND DOCS comes in hash-table order, which changes with each redis-server: sorted,
    // a seed replays the same commands.
    for cmds in [&mut g.main, &mut g.feeding, &mut g.blocking, &mut g.pubsub, &mut g.publishing] {
        cmds.sort_by(|a, b| a.name.cmp(&b.name));
    }
    g
}

/// Commands and their subcommands (`xgroup|create` is sent as two words).
fn collect(docs: &Frame, take: &mut dyn FnMut(Command)) {
    for (name, doc) in pairs(docs) {
        let mut cmd = Command { name, group: String::new(), args: vec![] };
        for (k, v) in pairs(doc) {
            match k.as_str() {
                "group" => cmd.group = v.as_str(),
                "arguments" => cmd.args = v.children().iter().map(parse_arg).collect(),
                "subcommands" => collect(v, take),
                _ => {}
            }
        }
        take(cmd);
    }
}

fn fill(rng: &mut Rng, a: &Arg, group: &str, out: &mut Vec<String>, forced: bool) {
    if a.optional && !forced && rng.chance(50) {
        return;
    }
    let reps = if a.multiple { 1 + rng.below(3) } else { 1 };
    for r in 0..reps {
        if let Some(t) = &a.token
            && a.kind != "pure-token"
            && (r == 0 || a.multiple_token)
        {
            out.push(t.clone());
        }
        let timed = matches!(a.token.as_deref(), Some("EX" | "PX")) || a.name == "seconds" || a.name == "milliseconds";
        let word = match a.kind.as_str() {
            "double" | "integer" if a.name == "timeout" => rng.pick(BLOCK_TIMEOUTS),
            "key" if !keys_of(group).is_empty() && rng.chance(75) => rng.pick(keys_of(group)),
            "key" => rng.pick(ALL_KEYS),
            "integer" if timed => rng.pick(TTLS),
            "integer" => rng.pick(INTS),
            "double" => rng.pick(DOUBLES),
            "unix-time" => rng.pick(UNIX_TIMES),
            "pattern" => rng.pick(PATTERNS),
            "pure-token" => a.token.as_deref().unwrap_or(""),
            "oneof" => {
                if !a.args.is_empty() {
                    let i = rng.below(a.args.len());
                    fill(rng, &a.args[i], group, out, true);
                }
                continue;
            }
            "block" => {
                for sub in &a.args {
                    fill(rng, sub, group, out, false);
                }
                continue;
            }
            _ => rng.pick(STRS),
        };
        out.push(word.to_string());
    }
}

fn generate(rng: &mut Rng, cmds: &[Command]) -> Option<Vec<String>> {
    let cmd = rng.pick(cmds);
    let mut argv: Vec<String> = cmd.name.split('|').map(str::to_string).collect();
    for a in &cmd.args {
        fill(rng, a, &cmd.group, &mut argv, false);
    }
    // Auto-generated stream IDs differ between the servers: pick explicit ones.
    if cmd.name.starts_with('x') {
        for w in argv.iter_mut().skip(1) {
            if w == "*" {
                *w = format!("{}-{}", rng.below(9), rng.below(3));
            }
        }
    }
    // SORT BY orders equal weights (or, with no `*`, a set's members) by Redis's hash
    // table: no single answer.
    if cmd.name.starts_with("sort") && argv.iter().any(|w| w == "BY") {
        return None;
    }
    // A geo search with COUNT keeps the first members by distance, and which of equal
    // distances come first is the C library's qsort's business: no single answer (or stored
    // set).
    if cmd.name.starts_with("geo") && argv.iter().any(|w| w == "COUNT") {
        return None;
    }
    // Now and then one argument too few or too many.
    match rng.below(100) {
        // (Never the subcommand's word: a bare COMMAND or CLIENT lists what differs by design.)
        0..=2 if argv.len() > cmd.name.split('|').count() => {
            argv.pop();
        }
        3..=5 => argv.push(rng.pick(STRS).to_string()),
        _ => {}
    }
    Some(argv)
}

/// Lua that runs a command given in ARGV: Redis's replies as Lua values and back (RESP2 and
/// RESP3), errors raised and caught. `d` spells a value out (tables with sorted keys) so the
/// values a script sees are compared too, not only what it returns.
const IN_SCRIPT: &[&str] = &[
    "return redis.call(unpack(ARGV))",
    "return redis.pcall(unpack(ARGV))",
    "redis.setresp(3) return redis.pcall(unpack(ARGV))",
    "return d(redis.pcall(unpack(ARGV)))",
    "redis.setresp(3) return d(redis.pcall(unpack(ARGV)))",
];
const SPELL_OUT: &str = "local function d(v) if type(v) ~= 'table' then return type(v) .. ':' .. tostring(v) end \
    local ks = {} for k in pairs(v) do ks[#ks + 1] = k end \
    table.sort(ks, function(a, b) return type(a) .. tostring(a) < type(b) .. tostring(b) end) \
    local o = {} for _, k in ipairs(ks) do o[#o + 1] = tostring(k) .. '=' .. d(v[k]) end \
    return '{' .. table.concat(o, ',') .. '}' end ";

/// Functions that run a command given in their arguments: as is, refused writes
/// (`no-writes`, and FCALL_RO), and allowed past maxmemory (`allow-oom`). One per library:
/// FUNCTION LIST shows libraries, and a library's functions, in hash order.
const LIBRARIES: &[&str] = &[
    "#!lua name=fz1\nredis.register_function('fz_call', function(keys, args) return redis.pcall(unpack(args)) end)",
    "#!lua name=fz2\nredis.register_function{function_name='fz_ro', flags={'no-writes'}, \
     callback=function(keys, args) return redis.call(unpack(args)) end}",
    "#!lua name=fz3\nredis.register_function{function_name='fz_oom', flags={'allow-oom'}, \
     callback=function(keys, args) redis.setresp(3) return redis.pcall(unpack(args)) end}",
];

/// Now and then a command runs inside EVAL or FCALL instead (not one whose reply is
/// hash-ordered: the script would see it in that order).
fn maybe_in_script(rng: &mut Rng, argv: Vec<String>) -> Vec<String> {
    let name = argv[0].to_ascii_lowercase();
    if !rng.chance(5) || UNORDERED.contains(&name.as_str()) || name.starts_with("sort") {
        return argv;
    }
    let head = if rng.chance(30) {
        let call = if rng.chance(30) { "FCALL_RO" } else { "FCALL" };
        vec![call.to_string(), rng.pick(&["fz_call", "fz_ro", "fz_oom"]).to_string()]
    } else {
        let body = rng.pick(IN_SCRIPT);
        let body = if body.contains("d(") { format!("{SPELL_OUT}{body}") } else { body.to_string() };
        vec!["EVAL".to_string(), body]
    };
    [head, vec!["0".to_string()], argv].concat()
}

/// The reply as compared: raw bytes, or for hash-ordered replies the sorted elements.
fn comparable(name: &str, f: &Frame) -> Vec<Vec<u8>> {
    match f {
        Frame::Agg(head, kids) if UNORDERED.contains(&name) => {
            let mut v: Vec<Vec<u8>> = kids.iter().map(Frame::bytes).collect();
            v.sort();
            v.insert(0, head.clone());
            v
        }
        _ => vec![f.bytes()],
    }
}

/// Whether two replies agree; EXEC's are compared reply by reply, as its queued commands'.
fn same(name: &str, a: &Frame, b: &Frame, queued: Option<&[String]>) -> bool {
    match (queued, a, b) {
        (Some(q), Frame::Agg(ha, ka), Frame::Agg(hb, kb)) if ha == hb && ka.len() == q.len() && kb.len() == q.len() => {
            q.iter().zip(ka.iter().zip(kb)).all(|(n, (x, y))| comparable(n, x) == comparable(n, y))
        }
        _ => comparable(name, a) == comparable(name, b),
    }
}

/// The replies, or for an EXEC the first queued command's replies that differ.
fn first_difference(a: &Frame, b: &Frame, queued: Option<&[String]>) -> (Vec<u8>, Vec<u8>) {
    if let (Some(q), Frame::Agg(_, ka), Frame::Agg(_, kb)) = (queued, a, b)
        && let Some(i) = (0..ka.len().min(kb.len()).min(q.len())).find(|&i| !same(&q[i], &ka[i], &kb[i], None))
    {
        let tag = format!("[{i}: {}] ", q[i]).into_bytes();
        return ([tag.clone(), ka[i].bytes()].concat(), [tag, kb[i].bytes()].concat());
    }
    (a.bytes(), b.bytes())
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(&b[..b.len().min(300)]).escape_debug().to_string()
}

const SMALL_ENCODINGS: &[(&str, &str)] = &[
    ("hash-max-listpack-entries", "3"),
    ("hash-max-listpack-value", "4"),
    ("zset-max-listpack-entries", "3"),
    ("zset-max-listpack-value", "4"),
    ("set-max-intset-entries", "3"),
    ("list-max-listpack-size", "2"),
    ("stream-node-max-entries", "2"),
];

/// A key's type, content and whether it has a deadline, readably, for a failure message.
fn dump(c: &mut Conn, key: &str) -> String {
    let kind = c.cmd(&["TYPE", key]).as_str();
    let content = match kind.as_str() {
        "string" => c.cmd(&["GET", key]),
        "list" => c.cmd(&["LRANGE", key, "0", "-1"]),
        "set" => c.cmd(&["SMEMBERS", key]),
        "zset" => c.cmd(&["ZRANGE", key, "0", "-1", "WITHSCORES"]),
        "hash" => c.cmd(&["HGETALL", key]),
        "stream" => c.cmd(&["XRANGE", key, "-", "+"]),
        _ => Frame::Leaf(vec![]),
    };
    let ttl = c.cmd(&["PTTL", key]).as_str();
    format!("{kind} ttl {ttl} {}", show(&content.bytes()))
}

/// Both servers start again from an empty data set (out of a transaction first, or the
/// FLUSHALL would be queued).
fn resync(ce: &mut Conn, cr: &mut Conn, queued: &mut Option<Vec<String>>) {
    for c in [ce, cr] {
        if queued.is_some() {
            c.cmd(&["DISCARD"]);
        }
        c.cmd(&["FLUSHALL"]);
    }
    *queued = None;
}

/// What a subscriber or tracking connection received up to now: a PING's reply (a
/// subscriber's `pong` array, or +PONG) proves the server has written everything before it.
fn notifications(c: &mut Conn) -> Vec<Frame> {
    c.send(&["PING"]);
    let mut got = Vec::new();
    loop {
        let f = c.read();
        if f.children().first().is_some_and(|k| k.as_str() == "pong") || f.bytes() == b"+PONG\r\n" {
            return got;
        }
        got.push(f);
    }
}

/// Client-side caching connections on one server (RESP3, so invalidations come as pushes):
/// one broadcasting every change, one tracking the keys it read (it reads one key after
/// every command), one opting in to caching a key at a time with NOLOOP.
struct Trackers([Conn; 3]);

impl Trackers {
    fn new(p: &Proc) -> Trackers {
        let modes: [&[&str]; 3] = [&["BCAST"], &[], &["OPTIN", "NOLOOP"]];
        Trackers(modes.map(|mode| {
            let mut c = p.connect();
            c.cmd(&["HELLO", "3"]);
            let mut on = vec!["CLIENT", "TRACKING", "ON"];
            on.extend_from_slice(mode);
            assert_eq!(c.cmd(&on).as_str(), "OK");
            c
        }))
    }

    /// Everything each connection received since the last step, then (the reading ones) a
    /// key read and what that brought: the same on both servers or a difference to report.
    fn step(pair: &mut [Trackers; 2], rng: &mut Rng) -> Option<String> {
        let key = *rng.pick(ALL_KEYS);
        let read: [&[&str]; 3] = [&[], &["EXISTS", key], &["CLIENT", "CACHING", "YES"]];
        let mut differences = Vec::new();
        for (i, cmd) in read.iter().enumerate() {
            let got = pair.each_mut().map(|t| {
                let c = &mut t.0[i];
                let mut frames = notifications(c);
                if !cmd.is_empty() {
                    c.send(cmd);
                    if i == 2 {
                        c.send(&["GET", key]);
                    }
                    frames.extend(notifications(c));
                }
                frames.iter().map(|f| show(&f.bytes())).collect::<Vec<_>>().join(" ")
            });
            if std::env::var("EMBER_GRAMMAR_TRACE").is_ok() && !got[1].is_empty() {
                eprintln!("  tracker {i}: ember {} / redis {}", got[0], got[1]);
            }
            if got[0] != got[1] {
                differences.push(format!("tracker {i} ({cmd:?})\n  ember: {}\n  redis: {}", got[0], got[1]));
            }
        }
        (!differences.is_empty()).then(|| differences.join("\n"))
    }
}

/// Pub/Sub listeners, one in each protocol on each server, that subscribe and unsubscribe
/// (the pubsub group's commands) while the main connection publishes.
struct Listeners([[Conn; 2]; 2]);

impl Listeners {
    fn new(e: &Proc, r: &Proc) -> Listeners {
        Listeners([false, true].map(|resp3| {
            [e, r].map(|p| {
                let mut c = p.connect();
                if resp3 {
                    c.cmd(&["HELLO", "3"]);
                }
                c
            })
        }))
    }

    /// What each listener received since the last step (messages the main connection's
    /// command caused), then one Pub/Sub command of its own and what that brought. Compared
    /// as multisets: Redis delivers a message's pattern matches, and an UNSUBSCRIBE of
    /// everything, in hash-table order.
    fn step(&mut self, g: &Grammar, rng: &mut Rng, found: &mut Vec<String>) {
        for (i, pair) in self.0.iter_mut().enumerate() {
            let argv = generate(rng, &g.pubsub);
            for what in [None, argv.as_ref()] {
                let got = pair.each_mut().map(|c| {
                    if let Some(argv) = what {
                        c.send(&argv.iter().map(String::as_str).collect::<Vec<_>>());
                    }
                    let listing = what.is_some_and(|a| a[0].eq_ignore_ascii_case("pubsub"));
                    heard(&notifications(c), listing)
                });
                if got[0] != got[1] {
                    let text = |f: &[Vec<u8>]| f.iter().map(|b| show(b)).collect::<Vec<_>>().join(" ");
                    found.push(format!(
                        "listener {i} ({}): {what:?}\n  ember: {}\n  redis: {}",
                        if i == 0 { "RESP2" } else { "RESP3" },
                        text(&got[0]),
                        text(&got[1])
                    ));
                }
            }
        }
    }
}

/// A listener's frames in a comparable form: sorted, an unsubscription's remaining count
/// set apart (UNSUBSCRIBE of everything goes in hash-table order, so channels and counts
/// pair up differently), and PUBSUB CHANNELS' list sorted.
fn heard(frames: &[Frame], listing: bool) -> Vec<Vec<u8>> {
    let (mut out, mut counts) = (Vec::new(), Vec::new());
    for f in frames {
        match f {
            Frame::Agg(head, kids) if kids.len() == 3 && kids[0].as_str().ends_with("unsubscribe") => {
                out.push([head.clone(), kids[0].bytes(), kids[1].bytes()].concat());
                counts.push(kids[2].bytes());
            }
            Frame::Agg(head, kids) if listing && head[0] == b'*' => {
                let mut v: Vec<Vec<u8>> = kids.iter().map(Frame::bytes).collect();
                v.sort();
                out.push([vec![head.clone()], v].concat().concat());
            }
            _ => out.push(f.bytes()),
        }
    }
    out.sort();
    counts.sort();
    out.extend(counts);
    out
}

/// Where a waiting connection's blocking command stands on one server.
#[derive(PartialEq, Debug)]
enum Wait {
    Blocked,
    Replied(Frame),
}

/// A connection on each server that sends blocking commands; `argv` is the one both are
/// blocked in, if any.
struct Waiter {
    conns: [Conn; 2],
    ids: [String; 2],
    argv: Option<Vec<String>>,
    /// Main-connection commands since it blocked.
    age: usize,
}

/// Whether the server lists client `id` as blocked (asked on an observer connection, which
/// is never inside a transaction).
fn blocked(observer: &mut Conn, id: &str) -> bool {
    let line = observer.cmd(&["CLIENT", "LIST", "ID", id]).text();
    line.split(' ').any(|f| f.strip_prefix("flags=").is_some_and(|fl| fl.contains('b')))
}

/// A blocking command just sent: polls until the server either answered it or lists the
/// connection as blocked.
fn settle(conn: &mut Conn, observer: &mut Conn, id: &str) -> Wait {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if blocked(observer, id) {
            return Wait::Blocked;
        }
        if let Some(f) = conn.try_read(std::time::Duration::from_millis(5)) {
            return Wait::Replied(f);
        }
    }
    panic!("a blocking command neither blocked nor answered in 10 s");
}

/// After a main-connection command: a served (or refused) waiter has its reply written
/// by the time the main connection has its own, as in Redis, where blocked clients are
/// served right after the command that made their key ready.
fn poll_waiter(conn: &mut Conn, observer: &mut Conn, id: &str) -> Wait {
    if blocked(observer, id) { Wait::Blocked } else { Wait::Replied(conn.read()) }
}

impl Waiter {
    fn new(e: &Proc, r: &Proc, resp3: bool) -> Waiter {
        let mut conns = [e.connect(), r.connect()];
        let ids = conns.each_mut().map(|c| {
            if resp3 {
                c.cmd(&["HELLO", "3"]);
            }
            c.cmd(&["CLIENT", "ID"]).as_str()
        });
        Waiter { conns, ids, argv: None, age: 0 }
    }

    /// Compares where the two servers' connections stand (`sent` after a new command);
    /// a difference is reported and the one still blocked is let go.
    fn compare(&mut self, observers: &mut [Conn; 2], sent: bool, what: &str, found: &mut Vec<String>) {
        let argv = self.argv.take().unwrap_or_default();
        let mut states = Vec::new();
        for ((c, o), id) in self.conns.iter_mut().zip(observers.iter_mut()).zip(&self.ids) {
            states.push(if sent { settle(c, o, id) } else { poll_waiter(c, o, id) });
        }
        let both_blocked = states.iter().all(|w| *w == Wait::Blocked);
        let same = match (&states[0], &states[1]) {
            (Wait::Replied(a), Wait::Replied(b)) => {
                comparable(&argv[0].to_ascii_lowercase(), a) == comparable(&argv[0].to_ascii_lowercase(), b)
            }
            (a, b) => a == b,
        };
        if !same {
            let text = |w: &Wait| match w {
                Wait::Blocked => "(blocked)".to_string(),
                Wait::Replied(f) => show(&f.bytes()),
            };
            found.push(format!(
                "waiting {argv:?} {what}\n  ember: {}\n  redis: {}",
                text(&states[0]),
                text(&states[1])
            ));
            for s in 0..2 {
                if states[s] == Wait::Blocked {
                    observers[s].cmd(&["CLIENT", "UNBLOCK", &self.ids[s]]);
                    self.conns[s].read();
                }
            }
        } else if both_blocked {
            self.argv = Some(argv);
            self.age = if sent { 0 } else { self.age + 1 };
        }
    }

    /// CLIENT UNBLOCK (as a timeout or an error) ends a wait both servers kept up for long.
    fn let_go(&mut self, observers: &mut [Conn; 2], rng: &mut Rng, found: &mut Vec<String>) {
        let Some(argv) = self.argv.take() else { return };
        let how = *rng.pick(&["TIMEOUT", "ERROR", ""]);
        let mut replies = Vec::new();
        for ((c, o), id) in self.conns.iter_mut().zip(observers.iter_mut()).zip(&self.ids) {
            let mut unblock = vec!["CLIENT", "UNBLOCK", id];
            unblock.extend((!how.is_empty()).then_some(how));
            replies.push((o.cmd(&unblock).bytes(), c.read().bytes()));
        }
        if replies[0] != replies[1] {
            found.push(format!(
                "waiting {argv:?} let go ({how})\n  ember: {}\n  redis: {}",
                show(&[&replies[0].0[..], &replies[0].1].concat()),
                show(&[&replies[1].0[..], &replies[1].1].concat())
            ));
        }
    }
}

/// How a run talks to the servers.
#[derive(Clone, Copy, Default)]
struct Phase {
    resp3: bool,
    /// A subscriber compares every command's keyspace notifications.
    events: bool,
    /// Two connections on each server wait in blocking commands.
    waiters: bool,
    /// Client-side caching connections compare their invalidations.
    tracking: bool,
    /// Pub/Sub listeners compare what they hear; the main connection also publishes.
    pubsub: bool,
}

/// The commands of the main connection (all, or those feeding waiters), of the waiting
/// ones, of Pub/Sub listeners, and the Pub/Sub ones the main connection may send.
struct Grammar {
    main: Vec<Command>,
    feeding: Vec<Command>,
    blocking: Vec<Command>,
    pubsub: Vec<Command>,
    publishing: Vec<Command>,
}

/// Runs `n` generated commands against both servers in one protocol; returns the mismatches.
/// `reps`: a redis-server replicating Ember and an Ember replicating redis-server, each
/// compared with its master at every digest check.
fn run(e: &Proc, r: &Proc, reps: &[Proc; 2], g: &Grammar, rng: &mut Rng, n: usize, phase: Phase) -> Vec<String> {
    let Phase { resp3, events, waiters, tracking, pubsub } = phase;
    let (mut ce, mut cr) = (e.connect(), r.connect());
    if resp3 {
        ce.cmd(&["HELLO", "3"]);
        cr.cmd(&["HELLO", "3"]);
    }
    // With `events`, a subscriber on each server hears every keyspace and keyevent
    // notification, and what each command caused must be the same messages in the same order.
    let mut subscribers = events.then(|| {
        [e, r].map(|p| {
            let mut c = p.connect();
            assert_eq!(c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "KEA"]).as_str(), "OK");
            c.cmd(&["PSUBSCRIBE", "__key*__:*"]);
            c
        })
    });
    let mut observers = [e.connect(), r.connect()];
    let mut replicas = reps.each_ref().map(Proc::connect);
    let mut trackers = tracking.then(|| [Trackers::new(e), Trackers::new(r)]);
    let mut listeners = pubsub.then(|| Listeners::new(e, r));
    let mut waiting: Vec<Waiter> = if waiters { (0..2).map(|_| Waiter::new(e, r, resp3)).collect() } else { vec![] };
    for c in [&mut ce, &mut cr] {
        c.cmd(&["FLUSHALL"]);
    }
    let trace = std::env::var("EMBER_GRAMMAR_TRACE").is_ok();
    let mut queued: Option<Vec<String>> = None;
    let mut found = Vec::new();
    let mut recent: Vec<Vec<String>> = Vec::new();
    for i in 0..n {
        // An idle waiting connection sends a blocking command first.
        for w in waiting.iter_mut().filter(|w| w.argv.is_none()) {
            let Some(argv) = generate(rng, &g.blocking) else { continue };
            let words: Vec<&str> = argv.iter().map(String::as_str).collect();
            if trace {
                eprintln!("waiting {argv:?}");
            }
            for c in &mut w.conns {
                c.send(&words);
            }
            w.argv = Some(argv);
            w.compare(&mut observers, true, "when sent", &mut found);
        }
        let pool = match () {
            _ if pubsub && rng.chance(30) => &g.publishing,
            _ if waiters => &g.feeding,
            _ => &g.main,
        };
        let Some(argv) = generate(rng, pool) else { continue };
        let argv = maybe_in_script(rng, argv);
        // The library again, as the main connection's FUNCTION FLUSH/DELETE/RESTORE may have
        // dropped it (not in a transaction: it would be queued).
        if argv[0].starts_with("FCALL") && queued.is_none() {
            for c in [&mut ce, &mut cr] {
                for lib in LIBRARIES {
                    c.cmd(&["FUNCTION", "LOAD", "REPLACE", lib]);
                }
            }
        }
        let words: Vec<&str> = argv.iter().map(String::as_str).collect();
        if trace {
            eprintln!("{argv:?}");
        }
        // DBSIZE counts a key past its deadline until active expiry (whenever its cycle
        // runs) or a read drops it: reading every key first (on the observers, as the main
        // connection may be in a transaction) makes the count the same on both servers.
        // (Inside a script too: the command is then one of EVAL's arguments.)
        if ["dbsize", "exec"].iter().any(|n| argv[0].eq_ignore_ascii_case(n))
            || argv.iter().any(|a| a.eq_ignore_ascii_case("dbsize"))
        {
            let mut exists = vec!["EXISTS"];
            exists.extend_from_slice(ALL_KEYS);
            for c in &mut observers {
                c.cmd(&exists);
            }
        }
        let (fe, fr) = (ce.cmd(&words), cr.cmd(&words));
        // What a transaction queued, to compare EXEC's replies one by one.
        let name = argv[0].to_ascii_lowercase();
        for w in waiting.iter_mut().filter(|w| w.argv.is_some()) {
            w.compare(&mut observers, false, &format!("after {argv:?}"), &mut found);
            if w.age >= PATIENCE {
                w.let_go(&mut observers, rng, &mut found);
            }
        }
        // (A DISCARD refused for its arity leaves the transaction open.)
        let leaves = name == "exec" || (name == "discard" && !fr.text().starts_with('-'));
        let exec_queue = if leaves { queued.take() } else { None };
        if name == "multi" && fr.as_str() == "OK" {
            queued = Some(Vec::new());
        } else if let Some(q) = queued.as_mut().filter(|_| fr.as_str() == "QUEUED") {
            q.push(name.clone());
        }
        // Redis's SORT reads errno without clearing it first, so an ERANGE left by an earlier
        // strtod ("1e400") fails a later numeric sort of good values. Not reproduced.
        // (Inside a transaction too: then EXEC carries it.)
        let stale_errno = (name.starts_with("sort") || name == "exec")
            && fr.text().contains("One or more scores can't be converted into double");
        if events || tracking || pubsub {
            // A key left past its deadline goes by active expiry whenever the cycle runs,
            // or at its next read: reading every key now makes its `expired` event (and
            // invalidation) land in this step on both servers.
            let mut exists = vec!["EXISTS"];
            exists.extend_from_slice(ALL_KEYS);
            for c in &mut observers {
                c.cmd(&exists);
            }
        }
        if let Some(pair) = trackers.as_mut()
            && let Some(d) = Trackers::step(pair, rng)
            && !stale_errno
        {
            found.push(format!("invalidations after {argv:?}\n{d}"));
        }
        if let Some(l) = listeners.as_mut() {
            l.step(g, rng, &mut found);
        }
        if let Some([se, sr]) = subscribers.as_mut() {
            let (me, mr) = (notifications(se), notifications(sr));
            if me != mr && !stale_errno {
                let list = |m: &[Frame]| m.iter().map(|f| show(&f.bytes())).collect::<Vec<_>>().join(" ");
                found.push(format!("events of {argv:?}\n  ember: {}\n  redis: {}", list(&me), list(&mr)));
            }
        }
        recent.push(argv.clone());
        if recent.len() > 400 {
            recent.remove(0);
        }
        // The recent commands that named one of `keys`, for a failure message.
        // (For a command that names none, such as EXEC, the last 40 commands.)
        let naming = |keys: &[&str]| {
            let skip = if keys.is_empty() { recent.len().saturating_sub(40) } else { 0 };
            let named = recent
                .iter()
                .skip(skip)
                .filter(|a| keys.is_empty() || a.iter().skip(1).any(|w| keys.contains(&w.as_str())));
            named.map(|a| format!("{a:?}")).collect::<Vec<_>>().join(" ")
        };
        if stale_errno {
            // Ember may have stored what Redis refused: start both again.
            resync(&mut ce, &mut cr, &mut queued);
        } else if !same(&name, &fe, &fr, exec_queue.as_deref()) {
            // Which keys each server holds, when they differ (not inside a transaction).
            let held = |c: &mut Conn| {
                let mut k: Vec<String> = c.cmd(&["KEYS", "*"]).children().iter().map(Frame::as_str).collect();
                k.sort();
                k
            };
            let (ke, kr) = if queued.is_none() { (held(&mut ce), held(&mut cr)) } else { Default::default() };
            let keys = if ke != kr { format!("\n  keys: ember {ke:?} / redis {kr:?}") } else { String::new() };
            found.push(format!(
                "RESP{}: {argv:?}\n  ember: {}\n  redis: {}\n  after: {}\n  now: {}{keys}",
                if resp3 { 3 } else { 2 },
                show(&first_difference(&fe, &fr, exec_queue.as_deref()).0),
                show(&first_difference(&fe, &fr, exec_queue.as_deref()).1),
                naming(&argv.iter().map(String::as_str).filter(|w| ALL_KEYS.contains(w)).collect::<Vec<_>>()),
                argv.iter()
                    .filter(|w| ALL_KEYS.contains(&w.as_str()))
                    .map(|k| format!("{k}: ember {} / redis {}", dump(&mut ce, k), dump(&mut cr, k)))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            // Start again from an empty data set so one difference is reported once.
            resync(&mut ce, &mut cr, &mut queued);
        }
        // (Not inside a transaction: these would be queued.)
        if i % 50 == 49 && queued.is_none() {
            // A key past its deadline may still be in either table until something reads
            // it (Redis's digest counts it): EXISTS on every key drops those first.
            let mut exists = vec!["EXISTS"];
            exists.extend_from_slice(ALL_KEYS);
            for c in [&mut ce, &mut cr] {
                c.cmd(&exists);
            }
            let (de, dr) = (ce.cmd(&["DEBUG", "DIGEST"]), cr.cmd(&["DEBUG", "DIGEST"]));
            if de != dr {
                // Which keys differ, and the recent commands that named them.
                let mut keys = Vec::new();
                for k in ALL_KEYS {
                    let v = |c: &mut Conn| (c.cmd(&["DEBUG", "DIGEST-VALUE", k]), c.cmd(&["TYPE", k]));
                    if v(&mut ce) != v(&mut cr) {
                        keys.push(*k);
                    }
                }
                let contents: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{k}: ember {} / redis {}", dump(&mut ce, k), dump(&mut cr, k)))
                    .collect();
                found.push(format!(
                    "RESP{}: keys {keys:?} differ after {}\n  {}",
                    if resp3 { 3 } else { 2 },
                    naming(&keys),
                    contents.join("\n  ")
                ));
                resync(&mut ce, &mut cr, &mut queued);
            } else {
                // The replicas catch up with the same data: real Redis applying Ember's
                // replication stream, and Ember applying Redis's.
                let mut behind = None;
                for (i, (rc, master)) in replicas.iter_mut().zip([&mut ce, &mut cr]).enumerate() {
                    if !crate::util::eventually(std::time::Duration::from_secs(10), || {
                        rc.cmd(&["DEBUG", "DIGEST"]) == de
                    }) {
                        let keys: Vec<&str> = ALL_KEYS
                            .iter()
                            .copied()
                            .filter(|k| {
                                rc.cmd(&["DEBUG", "DIGEST-VALUE", k]) != master.cmd(&["DEBUG", "DIGEST-VALUE", k])
                            })
                            .collect();
                        let contents: Vec<String> = keys
                            .iter()
                            .map(|k| format!("{k}: master {} / replica {}", dump(master, k), dump(rc, k)))
                            .collect();
                        let name = ["redis replica of ember", "ember replica of redis"][i];
                        let report = format!(
                            "{name}: keys {keys:?} differ after {}\n  {}",
                            naming(&keys),
                            contents.join("\n  ")
                        );
                        behind = Some((report, keys));
                        break;
                    }
                }
                if let Some((report, keys)) = behind {
                    // A PFADD that finds an HLL corrupted (by APPEND, SETRANGE...) changes
                    // registers before it fails, and a failed command is not propagated:
                    // Redis's own replicas part from their master there too.
                    let mut corrupt = |k: &str| {
                        [&mut ce, &mut cr].map(|c| c.cmd(&["PFCOUNT", k]).text().starts_with("-INVALIDOBJ"))
                            == [true; 2]
                    };
                    if keys.is_empty() || !keys.iter().all(|k| corrupt(k)) {
                        found.push(report);
                    }
                    resync(&mut ce, &mut cr, &mut queued);
                }
            }
        }
        if found.len() >= 20 {
            break;
        }
    }
    // Waiters still blocked are let go now: one closed while blocked could still be served
    // (a BLMOVE's push) by the next phase's commands until its server notices the close.
    for w in &mut waiting {
        w.let_go(&mut observers, rng, &mut found);
    }
    found
}

#[test]
fn generated_commands_answer_exactly_like_redis() {
    let seed: u64 = std::env::var("EMBER_GRAMMAR_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(42_007_015);
    let n: usize = std::env::var("EMBER_GRAMMAR_CMDS").ok().and_then(|s| s.parse().ok()).unwrap_or(40_000);
    let e: Proc = ember(&[]);
    let r: Proc = redis();
    let reps = [
        crate::util::redis_with(&["--enable-debug-command", "yes", "--replicaof", "127.0.0.1", &e.port.to_string()]),
        ember(&["--replicaof", "127.0.0.1", &r.port.to_string()]),
    ];
    // Synced before the first command: a zset in the image would load as a listpack where
    // its master keeps a skiplist (and -0 reads 0 in a listpack).
    for rep in &reps {
        let mut c = rep.connect();
        let up = crate::util::eventually(std::time::Duration::from_secs(20), || {
            c.cmd(&["INFO", "replication"]).as_str().contains("master_link_status:up")
        });
        assert!(up, "a replica never synced: {}", c.cmd(&["INFO", "replication"]).as_str());
    }
    let g = command_docs(&mut r.connect());
    assert!(g.main.len() > 120, "COMMAND DOCS gave the data-type commands ({} of them)", g.main.len());
    assert_eq!(g.blocking.len(), BLOCKING.len(), "COMMAND DOCS gave the blocking commands");
    assert!(g.pubsub.len() > g.publishing.len() && g.publishing.len() >= 8, "COMMAND DOCS gave Pub/Sub");
    let mut rng = Rng(seed | 1);
    let mut found = run(&e, &r, &reps, &g, &mut rng, n, Phase::default());
    found.extend(run(&e, &r, &reps, &g, &mut rng, n / 2, Phase { resp3: true, ..Phase::default() }));
    // Keyspace notifications and client-side caching invalidations: the same for every
    // command.
    let heard = Phase { events: true, tracking: true, ..Phase::default() };
    found.extend(run(&e, &r, &reps, &g, &mut rng, n / 2, heard));
    // Blocking commands waiting on the keys the main connection changes: served (or not)
    // alike, with the same replies and the same notifications, in both protocols.
    let waiting = Phase { waiters: true, ..heard };
    found.extend(run(&e, &r, &reps, &g, &mut rng, n / 4, waiting));
    found.extend(run(&e, &r, &reps, &g, &mut rng, n / 4, Phase { resp3: true, ..waiting }));
    // Pub/Sub: listeners subscribing and unsubscribing while the main connection publishes
    // (and keyspace notifications flow to whoever matches them).
    found.extend(run(&e, &r, &reps, &g, &mut rng, n / 4, Phase { pubsub: true, ..heard }));
    // Then with tiny compact-encoding limits, so the data sets convert back and forth
    // between their forms (listpack, intset, table, quicklist nodes) all the time. The
    // replicas too: an encoding can show in a reply (-0 is 0 in a listpack).
    for p in [&e, &r, &reps[0], &reps[1]] {
        let mut c = p.connect();
        for (k, v) in SMALL_ENCODINGS {
            assert_eq!(c.cmd(&["CONFIG", "SET", k, v]).as_str(), "OK", "CONFIG SET {k} {v}");
        }
    }
    found.extend(run(&e, &r, &reps, &g, &mut rng, n / 2, Phase::default()));
    assert!(found.is_empty(), "seed {seed}: {} replies differ from Redis's:\n{}", found.len(), found.join("\n"));
}
