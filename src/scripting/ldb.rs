//! The Lua debugger (LDB, `SCRIPT DEBUG SYNC`), as Redis 7.0's: the next EVAL of a client
//! that asked for it runs under a line hook that stops at each line (or breakpoint), sends the
//! client its log as an array of status lines and reads debugger commands straight off the
//! client's socket, the server doing nothing else meanwhile (Redis's synchronous mode). The
//! session ends with the script: `<endsession>`, the EVAL's reply, and the connection is
//! closed. Redis's forked mode (`SCRIPT DEBUG YES`) runs the same way in Ember, which has
//! no fork: the data set changes are kept (see the README).
//!
//! Lua values are read through the C API from inside the hook; every function here that
//! touches a `lua_State` only pushes, reads and pops values of its own, and calls into Lua
//! (eval, `redis`) only in protected mode.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::os::raw::c_int;
use std::time::{Duration, Instant};

use mlua::ffi;

use crate::util::repr;

const MAX_BREAKPOINTS: usize = 64;
const MAXLEN_DEFAULT: usize = 256;
/// The debugger's command buffer limit: past it the script ends with an error.
const MAX_CBUF: usize = 1 << 20;
/// Nesting shown when a table is printed (Redis's LUA_MINSTACK / 2).
const MAX_VALUE_DEPTH: usize = 10;
/// Values visited to print one: a table holding itself a hundred times would otherwise take
/// 100^10 steps within the depth limit.
const MAX_VALUES_SHOWN: usize = 1_000_000;
/// Log lines kept between two sends: a script calling `redis.debug` in a long loop would
/// otherwise pile them up without bound.
const MAX_LOGS: usize = 100_000;

/// How the REPL ended a stop.
pub enum Resume {
    /// Run on (`step` set for one line, or to the next breakpoint).
    Run,
    /// The client went away: the script runs on without stops.
    Gone,
    /// Stop the script with this error (abort, protocol error, buffer limit).
    Fail(String),
}

/// One debugging session.
pub struct Ldb {
    sock: std::net::TcpStream,
    lines: Vec<Vec<u8>>,
    pub step: bool,
    /// `redis.breakpoint()` was called: stop at the next line.
    pub luabp: bool,
    bps: Vec<i64>,
    maxlen: usize,
    maxlen_hint_sent: bool,
    logs: Vec<Vec<u8>>,
    cbuf: Vec<u8>,
    pub current_line: i64,
    /// Since when the script ran without stopping (the infinite-loop guard).
    pub running_since: Instant,
}

impl Ldb {
    /// Starts a session on the client socket `fd` (a duplicate, switched to blocking I/O
    /// with a 5 s send timeout, as Redis's connBlock; restored on drop).
    pub fn start(fd: RawFd, body: &[u8]) -> std::io::Result<Ldb> {
        // SAFETY: dup(2) of a descriptor the caller holds open; the copy is owned below.
        let dup = unsafe { libc::dup(fd) };
        if dup < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `dup` is a fresh descriptor of a socket, owned by this stream alone.
        let sock = unsafe { std::net::TcpStream::from_raw_fd(dup) };
        sock.set_nonblocking(false)?;
        sock.set_write_timeout(Some(Duration::from_secs(5)))?;
        let mut end = body.len();
        while end > 0 && matches!(body[end - 1], b'\n' | b'\r') {
            end -= 1;
        }
        let lines = body[..end].split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
        Ok(Ldb {
            sock,
            lines,
            step: true,
            luabp: false,
            bps: Vec::new(),
            maxlen: MAXLEN_DEFAULT,
            maxlen_hint_sent: false,
            logs: Vec::new(),
            cbuf: Vec::new(),
            current_line: 0,
            running_since: Instant::now(),
        })
    }

    /// Ends the session: what is left of the log, then `<endsession>`.
    pub fn end(mut self) {
        self.log("<endsession>");
        self.send_logs();
    }

    pub fn log(&mut self, s: impl Into<Vec<u8>>) {
        self.logs.push(s.into());
    }

    /// Logs what the running script produces (redis.debug, its commands and replies), up
    /// to [`MAX_LOGS`] lines between two stops.
    pub fn log_run(&mut self, s: impl Into<Vec<u8>>) {
        if self.logs.len() < MAX_LOGS {
            self.logs.push(s.into());
        } else if self.logs.len() == MAX_LOGS {
            self.logs.push(b"<error> Too many log lines: the rest is dropped.".to_vec());
        }
    }

    /// Logs `entry` cut at `maxlen` (a hint about `maxlen` the first time).
    pub fn log_max(&mut self, mut entry: Vec<u8>) {
        let trimmed = self.maxlen > 0 && entry.len() > self.maxlen;
        if trimmed {
            entry.truncate(self.maxlen);
            entry.extend_from_slice(b" ...");
        }
        self.log_run(entry);
        if trimmed && !self.maxlen_hint_sent {
            self.maxlen_hint_sent = true;
            self.log("<hint> The above reply was trimmed. Use 'maxlen 0' to disable trimming.");
        }
    }

    /// Sends the log as an array of status lines (newlines turned to spaces) and empties it.
    pub fn send_logs(&mut self) {
        let mut out = format!("*{}\r\n", self.logs.len()).into_bytes();
        for l in self.logs.drain(..) {
            out.push(b'+');
            out.extend(l.into_iter().map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }));
            out.extend_from_slice(b"\r\n");
        }
        // A failed write shows as a failed read next, which ends the session.
        let _ = self.sock.write_all(&out);
    }

    fn source_line(&self, n: i64) -> &[u8] {
        usize::try_from(n - 1)
            .ok()
            .and_then(|i| self.lines.get(i))
            .map_or(b"<out of range source code line>".as_slice(), Vec::as_slice)
    }

    /// Line `n` of the script (1-based), or Redis's words for a line that is not there.
    pub fn source_text(&self, n: i64) -> Vec<u8> {
        self.source_line(n).to_vec()
    }

    pub fn is_breakpoint(&self, line: i64) -> bool {
        self.bps.contains(&line)
    }

    pub fn log_source_line(&mut self, n: i64) {
        let prefix = match (self.current_line == n, self.is_breakpoint(n)) {
            (true, true) => "->#",
            (true, false) => "-> ",
            (false, true) => "  #",
            (false, false) => "   ",
        };
        let mut l = format!("{prefix}{n:<3} ").into_bytes();
        l.extend_from_slice(self.source_line(n));
        self.log(l);
    }

    fn list(&mut self, around: i64, context: i64) {
        for j in 1..=self.lines.len() as i64 {
            if around != 0 && (around - j).abs() > context {
                continue;
            }
            self.log_source_line(j);
        }
    }

    fn break_cmd(&mut self, argv: &[Vec<u8>]) {
        if argv.len() == 1 {
            if self.bps.is_empty() {
                self.log("No breakpoints set. Use 'b <line>' to add one.");
            } else {
                self.log(format!("{} breakpoints set:", self.bps.len()));
                for b in self.bps.clone() {
                    self.log_source_line(b);
                }
            }
            return;
        }
        for arg in &argv[1..] {
            let Some(line) = std::str::from_utf8(arg).ok().and_then(|s| s.parse::<i64>().ok()) else {
                let mut l = b"Invalid argument:'".to_vec();
                l.extend_from_slice(arg);
                l.push(b'\'');
                self.log(l);
                continue;
            };
            if line == 0 {
                self.bps.clear();
                self.log("All breakpoints removed.");
            } else if line > 0 {
                if self.bps.len() == MAX_BREAKPOINTS {
                    self.log("Too many breakpoints set.");
                } else if line <= self.lines.len() as i64 && !self.is_breakpoint(line) {
                    self.bps.push(line);
                    self.list(line, 1);
                } else {
                    self.log("Wrong line number.");
                }
            } else if let Some(i) = self.bps.iter().position(|&b| Some(b) == line.checked_neg()) {
                self.bps.remove(i);
                self.log("Breakpoint removed.");
            } else {
                self.log("No breakpoint in the specified line.");
            }
        }
    }

    fn maxlen_cmd(&mut self, argv: &[Vec<u8>]) {
        if let Some(arg) = argv.get(1) {
            let n = atoi(arg);
            self.maxlen_hint_sent = true;
            self.maxlen = if n != 0 && n <= 60 { 60 } else { n.max(0) as usize };
        }
        if self.maxlen > 0 {
            self.log(format!("<value> replies are truncated at {} bytes.", self.maxlen));
        } else {
            self.log("<value> replies are unlimited.");
        }
    }

    fn help(&mut self) {
        for l in HELP {
            self.log(*l);
        }
    }

    /// Reads the next debugger command off the socket (Redis's forgiving multibulk parser).
    fn read_command(&mut self) -> Result<Vec<Vec<u8>>, Resume> {
        loop {
            match parse_command(&self.cbuf) {
                Parsed::Command(argv) => {
                    self.cbuf.clear();
                    return Ok(argv);
                }
                Parsed::Error => return Err(Resume::Fail("ERR protocol error".into())),
                Parsed::More => {}
            }
            let mut buf = [0u8; 1024];
            match self.sock.read(&mut buf) {
                Ok(n) if n > 0 => self.cbuf.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                _ => {
                    self.step = false;
                    self.bps.clear();
                    return Err(Resume::Gone);
                }
            }
            if self.cbuf.len() > MAX_CBUF {
                self.cbuf.clear();
                return Err(Resume::Fail("ERR max client buffer reached".into()));
            }
        }
    }
}

impl Drop for Ldb {
    fn drop(&mut self) {
        // The descriptor's blocking mode is shared with the event loop's copy.
        let _ = self.sock.set_nonblocking(true);
    }
}

fn atoi(b: &[u8]) -> i64 {
    let s = std::str::from_utf8(b).unwrap_or("").trim_start();
    let end = s
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(s.len(), |(i, _)| i);
    s[..end].parse::<i64>().unwrap_or(0)
}

enum Parsed {
    Command(Vec<Vec<u8>>),
    More,
    Error,
}

/// Redis's ldbReplParseCommand: `*<n>` then `n` bulks, each 1..=1024 bytes, at most 1024.
fn parse_command(b: &[u8]) -> Parsed {
    if b.is_empty() {
        return Parsed::More;
    }
    let Some(star) = b.iter().position(|&c| c == b'*') else { return Parsed::Error };
    let line = |from: usize| b[from..].windows(2).position(|w| w == b"\r\n").map(|p| from + p);
    let Some(eol) = line(star) else { return Parsed::More };
    let argc = atoi(&b[star + 1..eol]);
    if !(1..=1024).contains(&argc) {
        return Parsed::Error;
    }
    let mut p = eol + 2;
    let mut argv = Vec::with_capacity(argc as usize);
    while argv.len() < argc as usize {
        match b.get(p) {
            None => return Parsed::More,
            Some(b'$') => {}
            Some(_) => return Parsed::Error,
        }
        let Some(eol) = line(p) else { return Parsed::More };
        let len = atoi(&b[p + 1..eol]);
        if !(1..=1024).contains(&len) {
            return Parsed::Error;
        }
        let start = eol + 2;
        let end = start + len as usize;
        if end + 2 > b.len() {
            return Parsed::More;
        }
        if &b[end..end + 2] != b"\r\n" {
            return Parsed::Error;
        }
        argv.push(b[start..end].to_vec());
        p = end + 2;
    }
    Parsed::Command(argv)
}

const HELP: &[&str] = &[
    "Redis Lua debugger help:",
    "[h]elp               Show this help.",
    "[s]tep               Run current line and stop again.",
    "[n]ext               Alias for step.",
    "[c]ontinue           Run till next breakpoint.",
    "[l]ist               List source code around current line.",
    "[l]ist [line]        List source code around [line].",
    "                     line = 0 means: current position.",
    "[l]ist [line] [ctx]  In this form [ctx] specifies how many lines",
    "                     to show before/after [line].",
    "[w]hole              List all source code. Alias for 'list 1 1000000'.",
    "[p]rint              Show all the local variables.",
    "[p]rint <var>        Show the value of the specified variable.",
    "                     Can also show global vars KEYS and ARGV.",
    "[b]reak              Show all breakpoints.",
    "[b]reak <line>       Add a breakpoint to the specified line.",
    "[b]reak -<line>      Remove breakpoint from the specified line.",
    "[b]reak 0            Remove all breakpoints.",
    "[t]race              Show a backtrace.",
    "[e]val <code>        Execute some Lua code (in a different callframe).",
    "[r]edis <cmd>        Execute a Redis command.",
    "[m]axlen [len]       Trim logged Redis replies and Lua var dumps to len.",
    "                     Specifying zero as <len> means unlimited.",
    "[a]bort              Stop the execution of the script. In sync",
    "                     mode dataset changes will be retained.",
    "",
    "Debugger functions you can call from Lua scripts:",
    "redis.debug()        Produce logs in the debugger console.",
    "redis.breakpoint()   Stop execution like if there was a breakpoint in the",
    "                     next line of code.",
];

/// A stop at the current line: the reason and the line, then commands until one resumes.
/// `lua_ops` runs what needs the Lua state (print, eval, redis, trace).
pub fn stop(
    ldb: &std::cell::RefCell<Option<Ldb>>,
    reason: &str,
    lua_ops: &mut dyn FnMut(LuaOp) -> Vec<Vec<u8>>,
) -> Resume {
    with(ldb, |l| {
        let line = l.current_line;
        l.log(format!("* Stopped at {line}, stop reason = {reason}"));
        l.log_source_line(line);
        l.send_logs();
    });
    loop {
        let cmd = match with(ldb, Ldb::read_command) {
            Some(Ok(c)) => c,
            Some(Err(r)) => return r,
            None => return Resume::Gone,
        };
        let name = String::from_utf8_lossy(&cmd[0]).to_ascii_lowercase();
        // Commands that need Lua run with no borrow of the session held: `redis` logs
        // through it.
        let lua_op = match name.as_str() {
            "t" | "trace" => Some(LuaOp::Trace),
            "e" | "eval" => Some(LuaOp::Eval(cmd[1..].join(&b' '))),
            "r" | "redis" if cmd.len() > 1 => Some(LuaOp::Redis(cmd[1..].to_vec())),
            "p" | "print" if cmd.len() == 2 => Some(LuaOp::Print(cmd[1].clone())),
            "p" | "print" => Some(LuaOp::PrintAll),
            _ => None,
        };
        if let Some(op) = lua_op {
            let redis = matches!(op, LuaOp::Redis(_));
            if redis {
                with(ldb, |l| l.step = true);
            }
            let logs = lua_ops(op);
            with(ldb, |l| {
                if redis {
                    l.step = false;
                }
                for entry in logs {
                    if entry.starts_with(b"<value>") || entry.starts_with(b"<retval>") {
                        l.log_max(entry);
                    } else {
                        l.log(entry);
                    }
                }
                l.send_logs();
            });
            continue;
        }
        let resume = with(ldb, |l| {
            match name.as_str() {
                "h" | "help" => l.help(),
                "s" | "step" | "n" | "next" => {
                    l.step = true;
                    return Some(Resume::Run);
                }
                "c" | "continue" => return Some(Resume::Run),
                "m" | "maxlen" => l.maxlen_cmd(&cmd),
                "b" | "break" => l.break_cmd(&cmd),
                "a" | "abort" => return Some(Resume::Fail("ERR script aborted for user request".into())),
                "l" | "list" => {
                    let around = cmd.get(1).map(|a| atoi(a)).filter(|&n| n > 0).unwrap_or(l.current_line);
                    let context = cmd.get(2).map_or(5, |a| atoi(a));
                    l.list(around, context);
                }
                "w" | "whole" => l.list(1, 1_000_000),
                _ => l.log("<error> Unknown Redis Lua debugger command or wrong number of arguments."),
            }
            l.send_logs();
            None
        });
        match resume {
            Some(Some(r)) => return r,
            Some(None) => {}
            None => return Resume::Gone,
        }
    }
}

/// Runs `f` on the session, if there is one (never nested: callers hold no borrow).
pub fn with<R>(ldb: &std::cell::RefCell<Option<Ldb>>, f: impl FnOnce(&mut Ldb) -> R) -> Option<R> {
    ldb.try_borrow_mut().ok()?.as_mut().map(f)
}

/// What a debugger command needs the Lua state for.
pub enum LuaOp {
    Trace,
    Eval(Vec<u8>),
    Redis(Vec<Vec<u8>>),
    Print(Vec<u8>),
    PrintAll,
}

/// Runs `op` on the state of the script being debugged (from its line hook); returns the
/// log lines it produced. The script's innermost frame is the first Lua frame of the
/// user's chunk.
///
/// # Safety
/// `state` is the running script's state, inside a protected call.
pub unsafe fn run_op(
    state: *mut ffi::lua_State,
    op: LuaOp,
    current_line: i64,
    source: &dyn Fn(i64) -> Vec<u8>,
) -> Vec<Vec<u8>> {
    // SAFETY (whole body): reads frames and locals through the debug API and pushes, reads
    // and pops values of its own; calls Lua code only through lua_pcall.
    unsafe {
        let mut out = Vec::new();
        match op {
            LuaOp::Trace => {
                let mut level = 0;
                let mut ar: ffi::lua_Debug = std::mem::zeroed();
                let mut first = true;
                while ffi::lua_getstack(state, level, &mut ar) != 0 {
                    ffi::lua_getinfo(state, c"Snl".as_ptr(), &mut ar);
                    if is_user_frame(&ar) {
                        let name = if ar.name.is_null() {
                            "top level".to_string()
                        } else {
                            std::ffi::CStr::from_ptr(ar.name).to_string_lossy().into_owned()
                        };
                        out.push(format!("{} {}:", if first { "In" } else { "From" }, name).into_bytes());
                        let line = ar.currentline as i64;
                        let prefix = if line == current_line { "-> " } else { "   " };
                        let mut l = format!("{prefix}{line:<3} ").into_bytes();
                        l.extend_from_slice(&source(line));
                        out.push(l);
                        first = false;
                    }
                    level += 1;
                }
                if level == 0 {
                    out.push(b"<error> Can't retrieve Lua stack.".to_vec());
                }
            }
            LuaOp::Eval(code) => {
                let mut expr = b"return ".to_vec();
                expr.extend_from_slice(&code);
                let name = c"@ldb_eval";
                if ffi::luaL_loadbuffer(state, expr.as_ptr().cast(), expr.len(), name.as_ptr()) != 0 {
                    ffi::lua_settop(state, -2);
                    if ffi::luaL_loadbuffer(state, code.as_ptr().cast(), code.len(), name.as_ptr()) != 0 {
                        out.push(error_line(state));
                        return out;
                    }
                }
                if ffi::lua_pcall(state, 0, 1, 0) != 0 {
                    out.push(error_line(state));
                    return out;
                }
                let mut l = b"<retval> ".to_vec();
                cat_value(&mut l, state, -1, 0);
                ffi::lua_settop(state, -2);
                out.push(l);
            }
            LuaOp::Redis(argv) => {
                if ffi::lua_checkstack(state, argv.len() as c_int + 1) == 0 {
                    out.push(b"<reply> \"max lua stack reached\"".to_vec());
                    return out;
                }
                ffi::lua_getglobal(state, c"redis".as_ptr());
                ffi::lua_getfield(state, -1, c"call".as_ptr());
                for a in &argv {
                    ffi::lua_pushlstring(state, a.as_ptr().cast(), a.len());
                }
                // redis.call logs the command and its reply (or error) itself.
                ffi::lua_pcall(state, argv.len() as c_int, 1, 0);
                ffi::lua_settop(state, -3);
            }
            LuaOp::Print(var) => {
                let mut level = 0;
                let mut ar: ffi::lua_Debug = std::mem::zeroed();
                while ffi::lua_getstack(state, level, &mut ar) != 0 {
                    level += 1;
                    let mut found = None;
                    each_local(state, &ar, |name| {
                        if name == var.as_slice() {
                            found = Some(value_line(state, b"<value> ".to_vec()));
                        }
                        found.is_some()
                    });
                    if let Some(l) = found {
                        out.push(l);
                        return out;
                    }
                }
                if var == b"ARGV" || var == b"KEYS" {
                    let name = if var == b"ARGV" { c"ARGV" } else { c"KEYS" };
                    ffi::lua_getglobal(state, name.as_ptr());
                    out.push(value_line(state, b"<value> ".to_vec()));
                    ffi::lua_settop(state, -2);
                } else {
                    out.push(b"No such variable.".to_vec());
                }
            }
            LuaOp::PrintAll => {
                let mut ar: ffi::lua_Debug = std::mem::zeroed();
                let mut level = 0;
                // The script's own frame (the hook's caller sits above it here).
                while ffi::lua_getstack(state, level, &mut ar) != 0 {
                    ffi::lua_getinfo(state, c"S".as_ptr(), &mut ar);
                    if is_user_frame(&ar) {
                        break;
                    }
                    level += 1;
                }
                if ffi::lua_getstack(state, level, &mut ar) != 0 {
                    each_local(state, &ar, |name| {
                        let name = String::from_utf8_lossy(name);
                        if !name.contains("(*temporary)") {
                            out.push(value_line(state, format!("<value> {name} = ").into_bytes()));
                        }
                        false
                    });
                }
                if out.is_empty() {
                    out.push(b"No local variables in the current context.".to_vec());
                }
            }
        }
        out
    }
}

/// Calls `f` with the name of each local of the frame `ar`, its value on top of the stack
/// (popped after); `f` returns true to stop.
unsafe fn each_local(state: *mut ffi::lua_State, ar: &ffi::lua_Debug, mut f: impl FnMut(&[u8]) -> bool) {
    let mut i = 1;
    loop {
        // SAFETY: `ar` was filled by lua_getstack; a non-null name comes with its value pushed.
        let name = unsafe { ffi::lua_getlocal(state, ar, i) };
        if name.is_null() {
            return;
        }
        i += 1;
        // SAFETY: Lua's local names are NUL-terminated strings it keeps alive.
        let stop = f(unsafe { std::ffi::CStr::from_ptr(name) }.to_bytes());
        // SAFETY: pops the value lua_getlocal pushed.
        unsafe { ffi::lua_settop(state, -2) };
        if stop {
            return;
        }
    }
}

/// `prefix` and the value on top of the stack (left there).
unsafe fn value_line(state: *mut ffi::lua_State, mut prefix: Vec<u8>) -> Vec<u8> {
    // SAFETY: a value is on top.
    unsafe { cat_value(&mut prefix, state, -1, 0) };
    prefix
}

unsafe fn is_user_frame(ar: &ffi::lua_Debug) -> bool {
    // SAFETY: short_src is a NUL-terminated array filled by lua_getinfo("S").
    let src = unsafe { std::ffi::CStr::from_ptr(ar.short_src.as_ptr()) };
    src.to_bytes().windows(11).any(|w| w == b"user_script")
}

/// `<error> <message>` from the error on top, popped.
unsafe fn error_line(state: *mut ffi::lua_State) -> Vec<u8> {
    // SAFETY: an error value is on top.
    unsafe {
        let mut l = b"<error> ".to_vec();
        let mut len = 0;
        let p = ffi::lua_tolstring(state, -1, &mut len);
        if !p.is_null() {
            l.extend_from_slice(std::slice::from_raw_parts(p.cast::<u8>(), len));
        }
        ffi::lua_settop(state, -2);
        l
    }
}

/// Appends a readable form of the value at `idx` (Redis's ldbCatStackValue).
///
/// # Safety
/// `idx` is a valid (negative) stack index of `state`.
pub unsafe fn cat_value(out: &mut Vec<u8>, state: *mut ffi::lua_State, idx: c_int, level: usize) {
    let mut budget = MAX_VALUES_SHOWN;
    // SAFETY: as this function's.
    unsafe { cat_rec(out, state, idx, level, &mut budget) }
}

unsafe fn cat_rec(out: &mut Vec<u8>, state: *mut ffi::lua_State, idx: c_int, level: usize, budget: &mut usize) {
    if *budget == 0 {
        out.extend_from_slice(b"...");
        return;
    }
    *budget -= 1;
    if level == MAX_VALUE_DEPTH {
        out.extend_from_slice(b"<max recursion level reached! Nested table?>");
        return;
    }
    // SAFETY (whole body): reads the value at `idx`; a table is walked with lua_next, each
    // pushed key/value popped before the next.
    unsafe {
        match ffi::lua_type(state, idx) {
            ffi::LUA_TSTRING => {
                let mut len = 0;
                let p = ffi::lua_tolstring(state, idx, &mut len);
                out.extend_from_slice(repr(std::slice::from_raw_parts(p.cast::<u8>(), len)).as_bytes());
            }
            ffi::LUA_TBOOLEAN => {
                out.extend_from_slice(if ffi::lua_toboolean(state, idx) != 0 { b"true" } else { b"false" })
            }
            ffi::LUA_TNUMBER => out.extend_from_slice(format_g(ffi::lua_tonumber(state, idx)).as_bytes()),
            ffi::LUA_TNIL => out.extend_from_slice(b"nil"),
            ffi::LUA_TTABLE => {
                if ffi::lua_checkstack(state, 3) == 0 {
                    out.extend_from_slice(b"<max recursion level reached! Nested table?>");
                    return;
                }
                let (mut as_array, mut full) = (Vec::new(), Vec::new());
                let mut is_array = true;
                let mut expected = 1.0;
                ffi::lua_pushnil(state);
                while ffi::lua_next(state, idx - 1) != 0 {
                    if is_array
                        && (ffi::lua_type(state, -2) != ffi::LUA_TNUMBER || ffi::lua_tonumber(state, -2) != expected)
                    {
                        is_array = false;
                    }
                    cat_rec(&mut as_array, state, -1, level + 1, budget);
                    as_array.extend_from_slice(b"; ");
                    full.push(b'[');
                    cat_rec(&mut full, state, -2, level + 1, budget);
                    full.extend_from_slice(b"]=");
                    cat_rec(&mut full, state, -1, level + 1, budget);
                    full.extend_from_slice(b"; ");
                    ffi::lua_settop(state, -2);
                    expected += 1.0;
                }
                let body = if is_array { &mut as_array } else { &mut full };
                body.truncate(body.len().saturating_sub(2));
                out.push(b'{');
                out.extend_from_slice(body);
                out.push(b'}');
            }
            t => {
                let name = match t {
                    ffi::LUA_TFUNCTION => "function",
                    ffi::LUA_TUSERDATA => "userdata",
                    ffi::LUA_TTHREAD => "thread",
                    ffi::LUA_TLIGHTUSERDATA => "light-userdata",
                    _ => {
                        out.extend_from_slice(b"\"<unknown-lua-type>\"");
                        return;
                    }
                };
                out.extend_from_slice(format!("\"{name}@{:p}\"", ffi::lua_topointer(state, idx)).as_bytes());
            }
        }
    }
}

/// C's `%g`.
fn format_g(x: f64) -> String {
    let mut buf = [0u8; 64];
    // SAFETY: snprintf writes at most buf.len() bytes, NUL included, with a literal format.
    let n = unsafe { libc::snprintf(buf.as_mut_ptr().cast(), buf.len(), c"%g".as_ptr(), x) };
    String::from_utf8_lossy(&buf[..(n.max(0) as usize).min(buf.len() - 1)]).into_owned()
}

/// A command's RESP reply in the debugger's readable form (Redis's ldbRedisProtocolToHuman).
pub fn reply_to_human(out: &mut Vec<u8>, b: &[u8], pos: &mut usize, depth: usize) {
    let Some(&kind) = b.get(*pos) else { return };
    let Some(eol) = b[*pos..].windows(2).position(|w| w == b"\r\n").map(|p| *pos + p) else {
        *pos = b.len();
        return;
    };
    let head = &b[*pos + 1..eol];
    let n = atoi(head);
    *pos = eol + 2;
    let nested = |out: &mut Vec<u8>, pos: &mut usize, count: i64, sep: &[u8], pairs: bool| {
        for j in 0..count.max(0) {
            if depth >= 64 || *pos >= b.len() {
                break;
            }
            reply_to_human(out, b, pos, depth + 1);
            if pairs {
                out.extend_from_slice(b" => ");
                reply_to_human(out, b, pos, depth + 1);
            }
            if j != count - 1 {
                out.extend_from_slice(sep);
            }
        }
    };
    match kind {
        b':' => out.extend_from_slice(head),
        b'$' if n < 0 => out.extend_from_slice(b"NULL"),
        b'$' => {
            let end = pos.saturating_add(n as usize).min(b.len());
            out.extend_from_slice(repr(&b[*pos..end]).as_bytes());
            *pos = (end + 2).min(b.len());
        }
        b'+' | b'-' => out.extend_from_slice(repr(&b[eol - head.len() - 1..eol]).as_bytes()),
        b'*' if n < 0 => out.extend_from_slice(b"NULL"),
        b'*' => {
            out.push(b'[');
            nested(out, pos, n, b",", false);
            out.push(b']');
        }
        b'~' => {
            out.extend_from_slice(b"~(");
            nested(out, pos, n, b",", false);
            out.push(b')');
        }
        b'%' => {
            out.push(b'{');
            nested(out, pos, n, b",", true);
            out.push(b'}');
        }
        b'_' => out.extend_from_slice(b"(null)"),
        b'#' => out.extend_from_slice(if head.first() == Some(&b't') { b"#true" } else { b"#false" }),
        b',' => {
            out.extend_from_slice(b"(double) ");
            out.extend_from_slice(head);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_as_redis_reads_them() {
        assert!(matches!(parse_command(b""), Parsed::More));
        assert!(matches!(parse_command(b"*1\r\n$4\r\nst"), Parsed::More));
        match parse_command(b"*2\r\n$1\r\np\r\n$4\r\nARGV\r\n") {
            Parsed::Command(a) => assert_eq!(a, vec![b"p".to_vec(), b"ARGV".to_vec()]),
            _ => panic!("not parsed"),
        }
        assert!(matches!(parse_command(b"*0\r\n"), Parsed::Error));
        assert!(matches!(parse_command(b"*1025\r\n"), Parsed::Error));
        assert!(matches!(parse_command(b"*1\r\n$0\r\n\r\n"), Parsed::Error));
        assert!(matches!(parse_command(b"hello"), Parsed::Error));
        assert!(matches!(parse_command(b"*1\r\n$1\r\nsX\r\n"), Parsed::Error));
    }

    #[test]
    fn replies_read_as_redis_shows_them() {
        let h = |b: &[u8]| {
            let mut out = Vec::new();
            reply_to_human(&mut out, b, &mut 0, 0);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(h(b"+OK\r\n"), "\"+OK\"");
        assert_eq!(h(b"-ERR no\r\n"), "\"-ERR no\"");
        assert_eq!(h(b":12\r\n"), "12");
        assert_eq!(h(b"$-1\r\n"), "NULL");
        assert_eq!(h(b"*2\r\n$1\r\na\r\n:1\r\n"), "[\"a\",1]");
        assert_eq!(h(b"%1\r\n$1\r\nk\r\n,1.5\r\n"), "{\"k\" => (double) 1.5}");
        assert_eq!(h(b"~1\r\n#t\r\n"), "~(#true)");
        assert_eq!(h(b"_\r\n"), "(null)");
        // A length past the reply reads what there is.
        assert_eq!(h(b"$9223372036854775807\r\nab"), "\"ab\"");
        assert_eq!(format_g(3.0), "3");
        assert_eq!(format_g(0.1), "0.1");
        assert_eq!(format_g(1e20), "1e+20");
    }
}
