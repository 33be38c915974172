//! The process: command line, config files, start-up errors, SHUTDOWN.

use std::process::Command;
use std::time::Duration;

use crate::util::{ember, temp_dir};

fn run(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ember-server")).args(args).output().expect("run");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn help_and_version() {
    let (ok, out) = run(&["--help"]);
    assert!(ok && out.contains("ember-server"), "{out}");
    let (ok, out) = run(&["--version"]);
    assert!(ok && out.contains(env!("CARGO_PKG_VERSION")), "{out}");
}

#[test]
fn bad_directive_stops_startup_naming_its_line() {
    let dir = temp_dir("conf");
    let f = dir.join("bad.conf");
    std::fs::write(&f, "port 7000\n# fine\nmaxmemory lots\n").unwrap();
    let (ok, out) = run(&[f.to_str().unwrap()]);
    assert!(!ok);
    assert!(out.contains("at line 3\n>>> 'maxmemory lots'\nargument must be a memory value"), "{out}");
    let (ok, out) = run(&["--no-such-directive", "1"]);
    assert!(!ok && out.contains("no-such-directive"), "{out}");
    // The command line is read as lines after the file's, as redis-server reads it.
    let good = dir.join("good.conf");
    std::fs::write(&good, "port 7000\n").unwrap();
    let (ok, out) = run(&[good.to_str().unwrap(), "--port", "6379", "6380"]);
    assert!(!ok && out.contains("at line 3\n>>> 'port \"6379\" \"6380\"'\nwrong number of arguments"), "{out}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn renamed_commands_answer_to_their_new_name_only() {
    let dir = temp_dir("conf");
    let f = dir.join("ember.conf");
    std::fs::write(&f, "rename-command flushdb badger\nrename-command debug \"\"\n").unwrap();
    let mut s = ember(&[f.to_str().unwrap()]);
    let mut c = s.connect();
    c.cmd(&["SET", "k", "v"]);
    assert!(c.cmd(&["FLUSHDB"]).text().starts_with("-ERR unknown command 'FLUSHDB'"));
    assert!(c.cmd(&["DEBUG", "SLEEP", "0"]).text().starts_with("-ERR unknown command 'DEBUG'"));
    assert_eq!(c.cmd(&["BADGER"]).text(), "+OK\r\n");
    // Not through the command a client just ran under its new name either.
    assert!(c.cmd(&["FLUSHDB"]).text().starts_with("-ERR unknown command"));
    assert_eq!(c.cmd(&["DBSIZE"]).text(), ":0\r\n");
    // CONFIG REWRITE keeps the renames for the next start.
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]).text(), "+OK\r\n");
    c.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(s.wait_exit(Duration::from_secs(10)));
    let s = ember(&[f.to_str().unwrap()]);
    let mut c = s.connect();
    assert!(c.cmd(&["FLUSHDB"]).text().starts_with("-ERR unknown command"));
    // A rename of a command that does not exist stops the start, as with Redis.
    let (ok, out) = run(&["--rename-command", "nosuch", "x"]);
    assert!(!ok && out.contains("No such command in rename-command"), "{out}");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn config_file_then_overrides() {
    let dir = temp_dir("conf");
    let f = dir.join("ember.conf");
    std::fs::write(&f, "databases 4\nrequirepass fromfile\nhz 20\n").unwrap();
    let s = ember(&[f.to_str().unwrap(), "--requirepass", "fromcli"]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["AUTH", "fromcli"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["SELECT", "4"]).text(), "-ERR DB index is out of range\r\n");
    let hz = c.cmd(&["CONFIG", "GET", "hz"]);
    assert_eq!(hz.children()[1].as_str(), "20");
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn config_file_must_come_first() {
    // A config file path placed after directives is refused like an unknown argument.
    let (ok, _) = run(&["--port", "0", "some.conf"]);
    assert!(!ok);
}

#[test]
fn shutdown_exits_the_process() {
    let mut s = ember(&[]);
    let mut c = s.connect();
    c.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(s.wait_exit(Duration::from_secs(10)), "server did not exit after SHUTDOWN");
}

/// DEBUG and the file-choosing configs are refused by default with Redis's exact errors, and
/// allowed by `yes`, or by `local` to a client on the loopback interface.
#[test]
fn protected_actions_follow_redis_defaults() {
    let redis = crate::util::redis_with(&[]);
    let default = ember(&["--enable-debug-command", "no"]);
    let cases: &[&[&str]] = &[
        &["DEBUG", "DIGEST"],
        &["DEBUG", "HELP"],
        &["CONFIG", "SET", "dir", "/"],
        &["CONFIG", "SET", "dbfilename", "x.rdb"],
        &["CONFIG", "SET", "enable-debug-command", "yes"],
        &["CONFIG", "GET", "enable-debug-command"],
        &["CONFIG", "GET", "enable-protected-configs"],
        &["CONFIG", "GET", "enable-module-command"],
    ];
    let (mut e, mut r) = (default.connect(), redis.connect());
    for c in cases {
        let want = r.cmd(c).text();
        assert_eq!(e.cmd(c).text(), want, "{c:?}");
    }
    assert!(e.cmd(&["DEBUG", "DIGEST"]).text().starts_with("-ERR DEBUG command not allowed"));
    let local = ember(&["--enable-debug-command", "local", "--enable-protected-configs", "local"]);
    let mut l = local.connect();
    assert!(l.cmd(&["DEBUG", "DIGEST"]).text().starts_with('+'));
    assert_eq!(l.cmd(&["CONFIG", "SET", "dbfilename", "other.rdb"]).text(), "+OK\r\n");
    assert_eq!(l.cmd(&["CONFIG", "GET", "enable-debug-command"]).text().matches("local").count(), 1);
}

/// Protected mode (on by default): a client whose address is not 127.0.0.1 or ::1 reads
/// Redis's -DENIED error and is disconnected while no password is set. 127.0.0.2 is still
/// this machine, but Redis compares the address text, so it serves as the outside client.
#[test]
fn protected_mode_turns_away_other_addresses_like_redis() {
    let from_127_0_0_2 = |port: u16| -> Vec<u8> { first_line_from_127_0_0_2(port, b"PING\r\n") };
    let redis = crate::util::redis_with(&["--bind", "127.0.0.1"]);
    let want = from_127_0_0_2(redis.port);
    assert!(want.starts_with(b"-DENIED "), "{}", String::from_utf8_lossy(&want));
    let e = ember(&[]);
    assert_eq!(String::from_utf8_lossy(&from_127_0_0_2(e.port)), String::from_utf8_lossy(&want));
    assert!(e.connect().cmd(&["INFO", "stats"]).as_str().contains("rejected_connections:1"));
    // Switched off, or with a password, the same client is served.
    let mut c = e.connect();
    assert_eq!(c.cmd(&["CONFIG", "SET", "protected-mode", "no"]).text(), "+OK\r\n");
    assert_eq!(from_127_0_0_2(e.port), b"+PONG\r\n");
    c.cmd(&["CONFIG", "SET", "protected-mode", "yes"]);
    c.cmd(&["CONFIG", "SET", "requirepass", "secret"]);
    assert!(from_127_0_0_2(e.port).starts_with(b"-NOAUTH"));
}

/// Sends `request` to 127.0.0.1:`port` from source address 127.0.0.2 (std has no
/// bind-before-connect; socket2 does) and returns the first reply line.
fn first_line_from_127_0_0_2(port: u16, request: &[u8]) -> Vec<u8> {
    use std::io::{Read, Write};
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into()).unwrap();
    sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into()).unwrap();
    let mut s: std::net::TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.ends_with(b"\r\n") {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    out
}

/// The redis.conf that Debian's redis-server package installs loads as it is (its logging,
/// daemonizing and data folder overridden so the test owns the process and its files).
#[test]
fn debians_stock_redis_conf_loads() {
    let stock = std::path::Path::new("/etc/redis/redis.conf");
    assert!(stock.exists(), "redis-server's stock redis.conf is required (scripts/test.sh installs it)");
    let s =
        ember(&[stock.to_str().unwrap(), "--daemonize", "no", "--logfile", "", "--pidfile", "", "--bind", "127.0.0.1"]);
    let mut c = s.connect();
    assert_eq!(c.cmd(&["PING"]).text(), "+PONG\r\n");
    let v = c.cmd(&["CONFIG", "GET", "repl-diskless-sync-delay"]);
    assert_eq!(v.children()[1].as_str(), "5");
}

/// CONFIG SET port moves the listener; a port already taken is refused with Redis's words
/// and the server keeps the one it has.
#[test]
fn config_set_port_rebinds_or_keeps_the_old_port() {
    let s = crate::util::ember(&[]);
    let mut c = s.connect();
    let new_port = crate::util::free_port();
    assert_eq!(c.cmd(&["CONFIG", "SET", "port", &new_port.to_string()]).text(), "+OK\r\n");
    let mut moved = crate::util::Conn::new(new_port);
    assert_eq!(moved.cmd(&["PING"]).text(), "+PONG\r\n");
    assert!(std::net::TcpStream::connect(("127.0.0.1", s.port)).is_err(), "the old port still listens");
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let e = moved.cmd(&["CONFIG", "SET", "port", &taken_port]).text();
    assert!(e.contains("Unable to listen on this port"), "{e}");
    assert_eq!(moved.cmd(&["CONFIG", "GET", "port"]).children()[1].as_str(), new_port.to_string());
    assert_eq!(crate::util::Conn::new(new_port).cmd(&["PING"]).text(), "+PONG\r\n");
    let e = moved.cmd(&["CONFIG", "SET", "bind", "999.999.999.999"]).text();
    assert!(e.contains("Failed to bind to specified addresses"), "{e}");
}

/// `unixsocket`: clients connect through the file (created with `unixsocketperm`, octal,
/// removed at shutdown) and CLIENT LIST names them `<path>:0` with flag U, as Redis does.
#[test]
fn the_unix_socket_serves_clients() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir("unixsocket");
    let path = dir.join("ember.sock");
    let p = path.to_str().unwrap().to_string();
    let mut s = ember(&["--unixsocket", &p, "--unixsocketperm", "700"]);
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o700);
    let mut u = std::os::unix::net::UnixStream::connect(&path).unwrap();
    u.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    u.write_all(b"*1\r\n$4\r\nPING\r\n*2\r\n$6\r\nCLIENT\r\n$4\r\nINFO\r\n").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("resp=") {
        let n = u.read(&mut buf).unwrap();
        assert!(n > 0, "closed");
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("+PONG\r\n"), "{text}");
    assert!(text.contains(&format!("addr={p}:0 ")) && text.contains("flags=U "), "{text}");
    u.write_all(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n").unwrap();
    assert!(s.wait_exit(Duration::from_secs(10)));
    assert!(!path.exists(), "the socket file was left");
}

/// Redis's test suite connects as soon as the log shows " PID: <pid>" (it waits for "Ready to
/// accept" only in some helpers), so that line must come after the port is bound, as Redis
/// prints its logo after binding.
#[test]
fn the_pid_line_comes_after_the_port_is_bound() {
    use std::io::BufRead;
    let dir = temp_dir("pidline");
    let port = crate::util::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ember-server"))
        .current_dir(&dir)
        .args(["--port", &port.to_string(), "--save", ""])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let out = child.stdout.take().expect("stdout");
    let mut seen = false;
    for line in std::io::BufReader::new(out).lines() {
        let line = line.expect("log line");
        if line.contains(&format!(" PID: {}", child.id())) {
            seen = true;
            break;
        }
    }
    let connected = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    let _ = child.kill();
    let _ = child.wait();
    assert!(seen, "no PID line in the log");
    assert!(connected, "the PID line was logged before the port accepted connections");
}

/// A relative `logfile` lives in `dir`, as Redis changes directory while reading its config
/// (Redis's cluster test harness reads each node's `<dir>/log.txt`).
#[test]
fn a_relative_logfile_is_written_in_dir() {
    let dir = temp_dir("logfile-dir");
    let (mut child, _, _) = start_logging_to(&dir, &[]);
    let _ = child.kill();
    let _ = child.wait();
}

/// Starts ember-server with its log in `dir/log.txt` (and `extra` directives), waiting for
/// the ready line: (process, port, log path).
fn start_logging_to(dir: &std::path::Path, extra: &[&str]) -> (std::process::Child, u16, std::path::PathBuf) {
    let port = crate::util::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_ember-server"))
        .args(["--port", &port.to_string(), "--save", "", "--logfile", "log.txt"])
        .args(extra)
        .arg("--dir")
        .arg(dir)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn");
    let log = dir.join("log.txt");
    let ready = crate::util::eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.contains("Ready to accept connections"))
    });
    assert!(ready, "no log.txt with the ready line in the data directory");
    (child, port, log)
}

/// oom-score-adj sets the kernel's OOM score of the process from oom-score-adj-values by
/// role, relative to the score it started with (or absolute), and `no` puts that back.
#[test]
fn oom_score_follows_the_role() {
    let base: i32 = std::fs::read_to_string("/proc/self/oom_score_adj").expect("oom_score_adj").trim().parse().unwrap();
    let e = ember(&["--oom-score-adj", "yes", "--oom-score-adj-values", "10 20 30"]);
    let score = || -> i32 {
        let path = format!("/proc/{}/oom_score_adj", e.child.id());
        std::fs::read_to_string(path).expect("the server's oom_score_adj").trim().parse().unwrap()
    };
    let mut c = e.connect();
    assert_eq!(score(), base + 10);
    let nowhere = crate::util::free_port().to_string();
    assert_eq!(c.cmd(&["REPLICAOF", "127.0.0.1", &nowhere]).text(), "+OK\r\n");
    assert_eq!(score(), base + 20);
    assert_eq!(c.cmd(&["REPLICAOF", "NO", "ONE"]).text(), "+OK\r\n");
    assert_eq!(score(), base + 10);
    assert_eq!(c.cmd(&["CONFIG", "SET", "oom-score-adj-values", "7 8 +9"]).text(), "+OK\r\n");
    assert_eq!(score(), base + 7);
    assert_eq!(c.cmd(&["CONFIG", "SET", "oom-score-adj", "absolute"]).text(), "+OK\r\n");
    assert_eq!(score(), 7);
    assert_eq!(c.cmd(&["CONFIG", "SET", "oom-score-adj", "no"]).text(), "+OK\r\n");
    assert_eq!(score(), base);
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "oom-score-adj-values", "1 2 2001"]).text(),
        "-ERR CONFIG SET failed (possibly related to argument 'oom-score-adj-values') - Invalid oom-score-adj-values, elements must be between -2000 and 2000.\r\n"
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "oom-score-adj-values"]).text(),
        "*2\r\n$20\r\noom-score-adj-values\r\n$5\r\n7 8 9\r\n"
    );
}

/// A fatal signal leaves a crash report in the log before the process dies of it: the
/// signal, its sender, the stack (Redis's suite waits for "STACK TRACE"); a panic leaves one
/// with the panic's place and a symbolized stack.
#[test]
fn a_crash_leaves_a_report_in_the_log() {
    use std::os::unix::process::ExitStatusExt;
    let dir = temp_dir("crash-report");
    let start = |dir: &std::path::Path| start_logging_to(dir, &["--enable-debug-command", "yes"]);
    let (mut child, port, log) = start(&dir);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    std::io::Write::write_all(&mut s, b"DEBUG SEGFAULT\r\n").expect("send");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(11), "the process did not die of SIGSEGV: {status:?}");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for want in ["BUG REPORT START", "crashed by signal: 11", "Killed by PID:", "STACK TRACE", "BUG REPORT END"] {
        assert!(text.contains(want), "no {want:?} in the log:\n{text}");
    }

    let dir = temp_dir("crash-report-panic");
    let (mut child, port, log) = start(&dir);
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    std::io::Write::write_all(&mut s, b"DEBUG PANIC\r\n").expect("send");
    let status = child.wait().expect("wait");
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    for want in ["Guru Meditation:", "DEBUG PANIC called at Unix time", "STACK TRACE", "ember::commands::server::debug"]
    {
        assert!(text.contains(want), "no {want:?} in the log:\n{text}");
    }
}

/// The software watchdog (`watchdog-period`): a loop stuck past the period logs where it is
/// stuck and goes on; off again, nothing more is logged.
#[test]
fn the_watchdog_reports_a_stuck_loop_and_carries_on() {
    let dir = temp_dir("watchdog");
    let (mut child, port, log) = start_logging_to(&dir, &["--enable-debug-command", "yes"]);
    let read = || std::fs::read_to_string(&log).unwrap_or_default();
    let mut c = crate::util::Conn::new(port);
    assert_eq!(c.cmd(&["CONFIG", "SET", "watchdog-period", "200"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "1"]).text(), "+OK\r\n");
    assert!(read().contains("--- WATCHDOG TIMER EXPIRED ---"), "no watchdog report:\n{}", read());
    assert!(read().contains("Backtrace:"));
    assert_eq!(c.cmd(&["CONFIG", "SET", "watchdog-period", "0"]).text(), "+OK\r\n");
    let reports = read().matches("WATCHDOG").count();
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0.5"]).text(), "+OK\r\n");
    assert_eq!(c.cmd(&["PING"]).text(), "+PONG\r\n");
    assert_eq!(read().matches("WATCHDOG").count(), reports, "a report with the watchdog off");
    let _ = child.kill();
    let _ = child.wait();
}
