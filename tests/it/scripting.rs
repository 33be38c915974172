//! Lua scripts through real connections: a script past busy-reply-threshold makes others
//! wait with -BUSY until SCRIPT KILL / FUNCTION KILL / SHUTDOWN NOSAVE ends it (pcall cannot
//! hold on to it); redis-py's Lock (built on Lua scripts) works; a script's writes are one
//! atomic step for WATCH.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::{Conn, ember, eventually};

/// Polls `c` with PING until the server answers -BUSY (the script passed its time limit).
fn wait_busy(c: &mut Conn) {
    assert!(
        eventually(Duration::from_secs(10), || c.cmd(&["PING"]).text().starts_with("-BUSY ")),
        "the script never became busy"
    );
}

#[test]
fn a_runaway_script_answers_busy_until_script_kill_even_through_pcall() {
    let s = ember(&["--lua-time-limit", "50"]);
    let mut c = s.connect();
    let mut other = s.connect();
    c.cmd(&["SET", "k", "v"]);
    let script = "local f = function() while 1 do redis.call('ping') end end while 1 do pcall(f) end";
    c.send(&["EVAL", script, "0"]);
    wait_busy(&mut other);
    assert_eq!(
        other.cmd(&["GET", "k"]).text(),
        "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n"
    );
    // FUNCTION KILL does not apply to EVAL; a new connection is served too.
    assert!(other.cmd(&["FUNCTION", "KILL"]).text().starts_with("-BUSY "));
    let mut late = s.connect();
    assert!(late.cmd(&["PING"]).text().starts_with("-BUSY "));
    assert_eq!(late.cmd(&["SCRIPT", "KILL"]).text(), "+OK\r\n");
    let e = c.read().text();
    assert!(e.starts_with("-ERR Script killed by user with SCRIPT KILL... script: "), "{e}");
    assert_eq!(other.cmd(&["GET", "k"]).as_str(), "v");
    assert_eq!(c.cmd(&["EVAL", "return redis.call('GET', KEYS[1])", "1", "k"]).as_str(), "v");
    assert_eq!(other.cmd(&["SCRIPT", "KILL"]).text(), "-NOTBUSY No scripts in execution right now.\r\n");
}

#[test]
fn a_function_is_killed_by_function_kill_and_a_writer_only_by_shutdown_nosave() {
    let mut s = ember(&["--lua-time-limit", "50"]);
    let mut c = s.connect();
    let mut other = s.connect();
    let lib = "#!lua name=spin\nredis.register_function('spin', function() while 1 do end end)";
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", lib]).as_str(), "spin");
    c.send(&["FCALL", "spin", "0"]);
    wait_busy(&mut other);
    assert!(other.cmd(&["SCRIPT", "KILL"]).text().contains("You can only call FUNCTION KILL"));
    assert!(other.cmd(&["FUNCTION", "STATS"]).text().contains("duration_ms"));
    assert_eq!(other.cmd(&["FUNCTION", "KILL"]).text(), "+OK\r\n");
    assert!(c.read().text().starts_with("-ERR Script killed by user with SCRIPT KILL... script: spin"));

    // A library whose loading never ends is stopped after 500 ms.
    let started = Instant::now();
    let e = c.cmd(&["FUNCTION", "LOAD", "#!lua name=forever\nwhile 1 do end"]).text();
    assert_eq!(e, "-ERR Error registering functions: ERR FUNCTION LOAD timeout\r\n");
    assert!(started.elapsed() < Duration::from_secs(5));

    c.send(&["EVAL", "redis.call('SET', 'x', 'y') while 1 do end", "0"]);
    wait_busy(&mut other);
    assert!(other.cmd(&["SCRIPT", "KILL"]).text().starts_with("-UNKILLABLE "));
    assert!(other.cmd(&["SHUTDOWN"]).text().starts_with("-BUSY "));
    other.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(s.wait_exit(Duration::from_secs(10)), "SHUTDOWN NOSAVE did not end a busy server");
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

/// Any number of scripts and functions stay cached (Redis's unit/memefficiency loads 50,000
/// scripts): they used to be held on a Lua stack that ends near 8,000 values.
#[test]
fn ten_thousand_scripts_and_functions_stay_cached() {
    let srv = crate::util::ember(&[]);
    let mut c = crate::util::Conn::new(srv.port);
    let mut pipeline = Vec::new();
    for i in 0..10_000 {
        pipeline.extend_from_slice(format!("SCRIPT LOAD \"return {i}\"\r\n").as_bytes());
    }
    c.send_raw(&pipeline);
    for i in 0..10_000 {
        let reply = c.read().text();
        assert!(reply.starts_with('$'), "script {i}: {reply}");
    }
    assert_eq!(c.cmd(&["EVAL", "return 9999", "0"]).text(), ":9999\r\n");
    assert_eq!(crate::util::info_field(&mut c, "memory", "number_of_cached_scripts"), 10_000);
    let mut body = String::from("#!lua name=many\n");
    for i in 0..10_000 {
        body.push_str(&format!("redis.register_function('f{i}', function() return {i} end)\n"));
    }
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", &body]).text(), "$4\r\nmany\r\n");
    assert_eq!(c.cmd(&["FCALL", "f9999", "0"]).text(), ":9999\r\n");
    assert_eq!(c.cmd(&["FCALL", "f0", "0"]).text(), ":0\r\n");
}
