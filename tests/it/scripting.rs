//! Lua scripts through real connections: a runaway script is stopped at lua-time-limit and
//! the server carries on; redis-py's Lock (built on Lua scripts) works; a script's writes are
//! one atomic step for WATCH.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::ember;

#[test]
fn a_runaway_script_is_stopped_and_the_server_carries_on() {
    let s = ember(&["--lua-time-limit", "300"]);
    let mut c = s.connect();
    c.cmd(&["SET", "k", "v"]);
    let started = Instant::now();
    let e = c.cmd(&["EVAL", "local i = 0 while true do i = i + 1 end", "0"]).text();
    assert!(e.starts_with("-ERR ") && e.contains("lua-time-limit"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped late: {:?}", started.elapsed());
    assert_eq!(c.cmd(&["GET", "k"]).as_str(), "v");
    assert_eq!(c.cmd(&["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"]).as_str(), "v");
}

/// A script that takes a while but stays under the default limit (5 s) completes; the limit
/// is read from busy-reply-threshold whichever name set it.
#[test]
fn a_long_script_under_the_limit_completes() {
    let s = ember(&[]);
    let mut c = s.connect();
    let n = c.cmd(&["EVAL", "local i = 0 while i < 3000000 do i = i + 1 end return i", "0"]).text();
    assert_eq!(n, ":3000000\r\n");
    assert_eq!(c.cmd(&["CONFIG", "GET", "lua-time-limit"]).text(), "*2\r\n$14\r\nlua-time-limit\r\n$4\r\n5000\r\n");
}

#[test]
fn redis_py_lock_works() {
    let s = ember(&[]);
    let code = r#"
import sys, redis
r = redis.Redis(port=int(sys.argv[1]))
lock = r.lock("resource", timeout=10)
assert lock.acquire(blocking=False)
assert not r.lock("resource").acquire(blocking=False), "a second holder"
assert lock.extend(5)
assert lock.owned()
lock.release()
assert r.get("resource") is None
print("ok")
"#;
    let out = Command::new("python3")
        .args(["-c", code, &s.port.to_string()])
        .output()
        .expect("python3 with redis-py is required (see .ci/run)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}

#[test]
fn script_writes_break_a_watch_and_scripts_run_inside_multi() {
    let s = ember(&[]);
    let mut a = s.connect();
    let mut b = s.connect();
    a.cmd(&["WATCH", "w"]);
    b.cmd(&["EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "w"]);
    a.cmd(&["MULTI"]);
    a.cmd(&["SET", "w", "mine"]);
    assert_eq!(a.cmd(&["EXEC"]).text(), "*-1\r\n");
    a.cmd(&["MULTI"]);
    a.cmd(&["EVAL", "return redis.call('INCR', KEYS[1])", "1", "n"]);
    a.cmd(&["EVAL", "return redis.call('INCR', KEYS[1])", "1", "n"]);
    assert_eq!(a.cmd(&["EXEC"]).text(), "*2\r\n:1\r\n:2\r\n");
}
