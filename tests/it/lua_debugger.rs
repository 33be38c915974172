//! The Lua debugger (SCRIPT DEBUG SYNC) against redis-server: the same session, command by
//! command, gives the same bytes on both (stops, the source listing, locals, eval, Redis
//! commands and their replies, breakpoints, maxlen, the end of the session and the closed
//! connection), and the refusals around it read the same.

use std::time::Duration;

use crate::util::{Conn, Proc, ember, redis};

const SCRIPT: &str = "local a = 5
local t = {1, 2, 'x', {k = true}}
redis.call('set', KEYS[1], ARGV[1])
redis.debug('hi', a, t)
local v = redis.call('get', KEYS[1])
local s = string.rep('x', 300)
redis.breakpoint()
for i = 1, 3 do
  a = a + i
end
return {v, a}
";

/// Runs one session on `p`: what each debugger command answered, then what the end of the
/// session sent before the connection closed.
fn session(p: &Proc, commands: &[&[&str]]) -> Vec<String> {
    let mut c: Conn = p.connect();
    let mut out = vec![c.cmd(&["SCRIPT", "DEBUG", "SYNC"]).text()];
    out.push(c.cmd(&["EVAL", SCRIPT, "1", "dbg", "hello"]).text());
    for cmd in commands {
        out.push(c.cmd(cmd).text());
    }
    let (rest, closed) = c.read_until_close(Duration::from_secs(10));
    out.push(String::from_utf8_lossy(&rest).into_owned());
    assert!(closed, "the connection stayed open after the session");
    out
}

#[test]
fn a_debugging_session_reads_as_redis_s() {
    let (e, r) = (ember(&[]), redis());
    let steps: &[&[&str]] = &[
        &["help"],
        &["s"],
        &["p"],
        &["p", "a"],
        &["p", "ARGV"],
        &["p", "nothing"],
        &["n"],
        &["s"],
        &["print", "t"],
        &["e", "a", "+", "1"],
        &["eval", "redis.call('ping')"],
        &["e", "this is not lua"],
        &["r", "incr", "counter"],
        &["redis", "hgetall", "no-such-hash"],
        &["r", "nosuchcommand"],
        &["l"],
        &["list", "3", "1"],
        &["w"],
        &["b"],
        &["b", "9", "100", "x"],
        &["b"],
        &["t"],
        &["m", "10"],
        &["r", "get", "dbg"],
        &["m", "0"],
        &["c"],
        &["m", "10"],
        &["p", "s"],
        &["p", "s"],
        &["m", "0"],
        &["p", "s"],
        &["s"],
        &["c"],
        &["b", "-9"],
        &["b", "-9"],
        &["b", "0"],
        &["frobnicate"],
        &["m"],
        &["c"],
    ];
    assert_eq!(session(&e, steps), session(&r, steps));
    // The data set changes stay (a synchronous session), and the debugger's redis command ran.
    let mut c = e.connect();
    assert_eq!(c.cmd(&["GET", "counter"]).text(), "$1\r\n1\r\n");
    assert_eq!(c.cmd(&["GET", "dbg"]).text(), "$5\r\nhello\r\n");
}

#[test]
fn aborts_and_refusals_read_as_redis_s() {
    let (e, r) = (ember(&[]), redis());
    let steps: &[&[&str]] = &[&["s"], &["s"], &["a"]];
    assert_eq!(session(&e, steps), session(&r, steps));
    for p in [&e, &r] {
        let mut c = p.connect();
        assert_eq!(c.cmd(&["SCRIPT", "DEBUG", "maybe"]).text(), "-ERR Use SCRIPT DEBUG YES/SYNC/NO\r\n");
        assert_eq!(c.cmd(&["SCRIPT", "DEBUG", "SYNC"]).text(), "+OK\r\n");
        assert_eq!(
            c.cmd(&["EVALSHA", "0123456789012345678901234567890123456789", "0"]).text(),
            "-ERR Please use EVAL instead of EVALSHA for debugging\r\n"
        );
        assert_eq!(c.cmd(&["SCRIPT", "DEBUG", "NO"]).text(), "+OK\r\n");
        assert_eq!(c.cmd(&["EVAL", "return 1", "0"]).text(), ":1\r\n");
        // A pipeline: the second SCRIPT DEBUG finds the first one's reply still pending.
        c.send(&["PING"]);
        c.send(&["SCRIPT", "DEBUG", "SYNC"]);
        assert_eq!(c.read().text(), "+PONG\r\n");
        let second = c.read().text();
        assert!(second == "-ERR SCRIPT DEBUG must be called outside a pipeline\r\n" || second == "+OK\r\n", "{second}");
    }
}

/// A script looping with no stop stops by itself after the busy threshold; a client that
/// hangs up then ends the script (it would never end otherwise) and the server serves on.
#[test]
fn a_stuck_script_stops_and_its_client_hanging_up_ends_it() {
    let (e, r) = (ember(&["--lua-time-limit", "100"]), crate::util::redis_with(&["--lua-time-limit", "100"]));
    let mut seen = Vec::new();
    for p in [&e, &r] {
        let mut c = p.connect();
        assert_eq!(c.cmd(&["SCRIPT", "DEBUG", "SYNC"]).text(), "+OK\r\n");
        let first = c.cmd(&["EVAL", "local i = 0\nwhile true do\n  i = i + 1\nend", "0"]).text();
        let stuck = c.cmd(&["c"]).text();
        seen.push((first, stuck.clone()));
        assert!(stuck.contains("timeout reached, infinite loop?"), "{stuck}");
        drop(c);
        let mut other = p.connect();
        assert!(
            crate::util::eventually(Duration::from_secs(10), || other.cmd(&["PING"]).text() == "+PONG\r\n"),
            "the server stayed stuck after the debugging client left"
        );
    }
    assert_eq!(seen[0], seen[1]);
}
