//! The hot path of a script through Lua's C API, as Redis takes it: a run's KEYS and ARGV
//! tables and its protected call in one batch, and `redis.call` / `redis.pcall` reading
//! their arguments off the stack and pushing the command's reply back. mlua's safe API costs
//! a protected call, a registry reference and often a `VecDeque` per value, which was most of
//! the cost of a script that runs one command (benches/README.md, "Scripts").
//!
//! # Raising errors
//! Lua raises errors (a failed allocation past the memory limit, `lua_error`) by `longjmp`.
//! The functions here that call a Lua API function able to raise hold no value with a
//! destructor at that point, so a raise skips no destructor: mlua's own rule for code it runs
//! in a protected call. What must outlive a push (the command's reply) is owned by
//! [`CallCtx`], outside the frames a raise unwinds.

use std::cell::{Cell, RefCell, UnsafeCell};
use std::os::raw::{c_char, c_int};
use std::rc::Rc;

use bytes::{Bytes, BytesMut};
use mlua::ffi;

use super::convert::arg_number_text;
use super::engine::{HostPtr, IGNORE_STATS};

/// What `redis.call` and `redis.pcall` reach through their upvalue: who serves commands
/// during a run, the protocol the script chose, and the last command's reply.
pub(super) struct CallCtx {
    pub host: Rc<Cell<Option<HostPtr>>>,
    pub resp: Rc<Cell<u8>>,
    pub repl: Rc<Cell<u8>>,
    /// The debugging session of the run, if it is debugged: commands and replies are
    /// logged to it while it steps.
    pub ldb: Rc<RefCell<Option<super::ldb::Ldb>>>,
    /// The last command's reply (RESP) or refusal text, kept here while it is pushed into Lua.
    last: UnsafeCell<Bytes>,
}

impl CallCtx {
    pub fn new(
        host: Rc<Cell<Option<HostPtr>>>,
        resp: Rc<Cell<u8>>,
        repl: Rc<Cell<u8>>,
        ldb: Rc<RefCell<Option<super::ldb::Ldb>>>,
    ) -> Self {
        CallCtx { host, resp, repl, ldb, last: UnsafeCell::new(Bytes::new()) }
    }

    /// Runs `f` on the debugging session while it steps (Redis's ldbIsEnabled).
    fn ldb_log(&self, f: impl FnOnce(&mut super::ldb::Ldb)) {
        super::ldb::with(&self.ldb, |l| {
            if l.step {
                f(l)
            }
        });
    }
}

/// `redis.call`: an error reply (or a refusal) is raised as an error table.
pub(super) unsafe extern "C-unwind" fn redis_call(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: called by Lua with a valid state, as a closure made by `Engine::new` whose
    // first upvalue is the engine's boxed CallCtx.
    unsafe { command(state, true) }
}

/// `redis.pcall`: an error reply (or a refusal) is returned as an error table.
pub(super) unsafe extern "C-unwind" fn redis_pcall(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `redis_call`.
    unsafe { command(state, false) }
}

/// The CallCtx of the running C closure (its first upvalue).
unsafe fn upvalue_ctx<'a>(state: *mut ffi::lua_State) -> Option<&'a CallCtx> {
    // SAFETY: the closures made by `Engine::new` hold the engine's boxed CallCtx, which
    // outlives every run of the engine's Lua state.
    unsafe { (ffi::lua_touserdata(state, ffi::lua_upvalueindex(1)) as *const CallCtx).as_ref() }
}

/// The body of both: runs the command (in `run_command`, where values with destructors live
/// and no Lua function that can raise is called), then pushes its reply from the context.
unsafe fn command(state: *mut ffi::lua_State, raise: bool) -> c_int {
    // SAFETY (whole body): `state` is the running Lua state; the upvalue is the CallCtx the
    // engine owns for as long as its Lua state can run (see `Engine::new`). No value with a
    // destructor is live across the pushes and `lua_error` below (see the module header).
    unsafe {
        let Some(ctx) = upvalue_ctx(state) else { return 0 };
        let refused = run_command(state, ctx);
        // The arguments are copied: their slots make room for the reply (up to ~8000
        // arguments may fill the C stack's limit).
        ffi::lua_settop(state, 0);
        let last = &*ctx.last.get();
        let reply = std::slice::from_raw_parts(last.as_ptr(), last.len());
        let is_error = if let Some(counted) = refused {
            push_error(state, reply, counted);
            true
        } else {
            let mut pos = 0;
            push_reply(state, reply, &mut pos, 0) == b'-'
        };
        if is_error && raise {
            ffi::lua_error(state);
        }
        1
    }
}

/// Reads the arguments and runs the command through the host; leaves the reply (or the
/// refusal's text) in `ctx.last`. Returns Some(counted) when refused. Calls no Lua function that
/// can raise; a panic of the command is caught here, since it must not cross Lua's frames.
unsafe fn run_command(state: *mut ffi::lua_State, ctx: &CallCtx) -> Option<bool> {
    // Err: the text, and whether errorstats counted it (a command the server refused) or
    // not (arguments Lua could not pass).
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<Bytes, (String, bool)> {
        // SAFETY: reads the stack of the running call.
        let argv = unsafe { read_args(state) }.map_err(|e| (e.to_string(), false))?;
        let Some(ptr) = ctx.host.get() else {
            return Err(("ERR redis.call is only available while a script runs".into(), false));
        };
        ctx.ldb_log(|l| {
            let mut line = b"<redis>".to_vec();
            for (j, a) in argv.iter().enumerate() {
                if j == 10 {
                    line.extend_from_slice(format!(" ... ({} more)", argv.len() - j - 1).as_bytes());
                    break;
                }
                line.push(b' ');
                line.extend_from_slice(a);
            }
            l.log_run(line);
        });
        // SAFETY: see CurrentHost::enter; the slot is set only while a run is executing.
        let out = unsafe { (*ptr).call(argv, ctx.resp.get(), ctx.repl.get()) };
        ctx.ldb_log(|l| match &out {
            Err(text) => l.log_run(format!("<error> {text}")),
            Ok(reply) => {
                if let Some(text) = reply.strip_prefix(b"-") {
                    let mut e = b"<error> ".to_vec();
                    e.extend_from_slice(text.strip_suffix(b"\r\n").unwrap_or(text));
                    l.log_run(e);
                }
                let mut h = b"<reply> ".to_vec();
                super::ldb::reply_to_human(&mut h, reply, &mut 0, 0);
                l.log_max(h);
            }
        });
        out.map_err(|text| (format!("ERR {text}"), true))
    }));
    let (reply, refused) = match outcome {
        Ok(Ok(reply)) => (reply, None),
        Ok(Err((text, counted))) => (Bytes::from(text), Some(counted)),
        Err(_) => {
            tracing::error!("a command run by a script panicked");
            (Bytes::from_static(b"ERR the command failed unexpectedly"), Some(false))
        }
    };
    // SAFETY: nothing else borrows `last` now: `command` reads it only after this returns.
    unsafe { *ctx.last.get() = reply };
    refused
}

/// `redis.breakpoint()`: true, and a stop at the next line, while a debugging session runs.
pub(super) unsafe extern "C-unwind" fn breakpoint(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `redis_call`; pushes one boolean.
    unsafe {
        let active = upvalue_ctx(state).and_then(|ctx| super::ldb::with(&ctx.ldb, |l| l.luabp = true)).is_some();
        ffi::lua_pushboolean(state, active as c_int);
        1
    }
}

/// `redis.debug(...)`: logs its arguments to the debugging client, if there is one.
pub(super) unsafe extern "C-unwind" fn debug(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `redis_call`; reads its arguments in place. The log line is built in a
    // buffer owned by the session's cell only after the reads, so nothing with a destructor
    // is live across a Lua call that can raise.
    unsafe {
        let Some(ctx) = upvalue_ctx(state) else { return 0 };
        let Some(line) = super::ldb::with(&ctx.ldb, |l| l.current_line) else { return 0 };
        let argc = ffi::lua_gettop(state);
        let mut log = format!("<debug> line {line}: ").into_bytes();
        for i in 1..=argc {
            super::ldb::cat_value(&mut log, state, i - argc - 1, 0);
            if i != argc {
                log.extend_from_slice(b", ");
            }
        }
        super::ldb::with(&ctx.ldb, |l| l.log_run(log));
        0
    }
}

/// `redis.acl_check_cmd(command, args...)`: true or false for the caller's user; an error
/// for an unknown command.
pub(super) unsafe extern "C-unwind" fn acl_check_cmd(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: as for `redis_call`; the same discipline as `command`.
    unsafe {
        let Some(ctx) = upvalue_ctx(state) else { return 0 };
        let allowed = acl_check(state, ctx);
        ffi::lua_settop(state, 0);
        match allowed {
            Some(yes) => {
                ffi::lua_pushboolean(state, yes as c_int);
                1
            }
            None => {
                let last = &*ctx.last.get();
                push_error(state, std::slice::from_raw_parts(last.as_ptr(), last.len()), false);
                ffi::lua_error(state)
            }
        }
    }
}

/// The check behind `acl_check_cmd`: None when refused (the text in `ctx.last`).
unsafe fn acl_check(state: *mut ffi::lua_State, ctx: &CallCtx) -> Option<bool> {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<bool, String> {
        // SAFETY: reads the stack of the running call.
        let argv = unsafe { read_args(state) }.map_err(str::to_string)?;
        let Some(ptr) = ctx.host.get() else {
            return Err("ERR redis.acl_check_cmd can only be called inside a script invocation".into());
        };
        // SAFETY: see CurrentHost::enter; the slot is set only while a run is executing.
        unsafe { (*ptr).acl_check(argv) }.map_err(|text| format!("ERR {text}"))
    }));
    let text = match outcome {
        Ok(Ok(allowed)) => return Some(allowed),
        Ok(Err(text)) => Bytes::from(text),
        Err(_) => Bytes::from_static(b"ERR the ACL check failed unexpectedly"),
    };
    // SAFETY: nothing else borrows `last` now.
    unsafe { *ctx.last.get() = text };
    None
}

const NO_ARGS: &str = "ERR Please specify at least one argument for this redis lib call";
const BAD_ARG: &str = "ERR Lua redis lib command arguments must be strings or integers";

/// `redis.call`'s arguments, strings or numbers, copied into one buffer and shared out of it.
unsafe fn read_args(state: *mut ffi::lua_State) -> Result<Vec<Bytes>, &'static str> {
    // SAFETY (whole body): only reads stack slots 1..=top of the running call; lua_tolstring
    // is called on strings only, where it does not convert (nor allocate).
    unsafe {
        let n = ffi::lua_gettop(state);
        if n <= 0 {
            return Err(NO_ARGS);
        }
        let mut buf = BytesMut::with_capacity(64);
        // At most the Lua stack's size (LUAI_MAXCSTACK).
        let mut ends = Vec::with_capacity(n as usize);
        for i in 1..=n {
            match ffi::lua_type(state, i) {
                ffi::LUA_TSTRING => {
                    let mut len = 0;
                    let p = ffi::lua_tolstring(state, i, &mut len);
                    if !p.is_null() {
                        buf.extend_from_slice(std::slice::from_raw_parts(p as *const u8, len));
                    }
                }
                ffi::LUA_TNUMBER => {
                    buf.extend_from_slice(arg_number_text(ffi::lua_tonumber(state, i)).as_bytes());
                }
                _ => return Err(BAD_ARG),
            }
            ends.push(buf.len());
        }
        let all = buf.freeze();
        let mut start = 0;
        Ok(ends
            .into_iter()
            .map(|end| {
                let arg = all.slice(start..end);
                start = end;
                arg
            })
            .collect())
    }
}

/// Pushes a string (Lua copies it).
unsafe fn push_bytes(state: *mut ffi::lua_State, s: &[u8]) {
    // SAFETY: `s` is valid for its length; an empty slice's pointer is never read.
    unsafe {
        if s.is_empty() {
            ffi::lua_pushlstring_(state, c"".as_ptr(), 0);
        } else {
            ffi::lua_pushlstring_(state, s.as_ptr() as *const c_char, s.len());
        }
    }
}

/// `t[key] = <top>` for the table at `idx` (a negative index counted before the push).
unsafe fn set_field(state: *mut ffi::lua_State, idx: c_int, key: &str) {
    // SAFETY: the value is on top and the table below it at `idx`.
    unsafe {
        push_bytes(state, key.as_bytes());
        ffi::lua_insert(state, -2);
        ffi::lua_rawset(state, idx);
    }
}

/// Pushes `{err = text}` (with Redis's mark that errorstats already counted it, when a
/// command replied it).
unsafe fn push_error(state: *mut ffi::lua_State, text: &[u8], counted: bool) {
    // SAFETY: pushes a table and sets fields of it.
    unsafe {
        ffi::lua_createtable(state, 0, 2);
        push_bytes(state, text);
        set_field(state, -3, "err");
        if counted {
            ffi::lua_pushboolean(state, 1);
            set_field(state, -3, IGNORE_STATS);
        }
    }
}

/// Wraps the value on top as `{key = value}`.
unsafe fn tag_top(state: *mut ffi::lua_State, key: &str) {
    // SAFETY: a value is on top.
    unsafe {
        ffi::lua_createtable(state, 0, 1);
        ffi::lua_insert(state, -2);
        set_field(state, -3, key);
    }
}

/// How deep a reply's aggregates are converted (command replies nest a few levels; the
/// limit keeps the Lua stack bounded whatever comes).
const MAX_DEPTH: usize = 64;

/// Pushes one RESP value of `b` at `pos` (as a command wrote it for the script's protocol)
/// as a Lua value, by Redis's conversion table; returns its type byte (`-` for an error
/// table). Never reads out of `b`: a truncated reply gives nils.
unsafe fn push_reply(state: *mut ffi::lua_State, b: &[u8], pos: &mut usize, depth: usize) -> u8 {
    // SAFETY (whole body): pushes values and sets fields of tables this function pushed;
    // each level first makes room on the stack for what it pushes.
    unsafe {
        let start = *pos;
        let Some(end) = b.get(start..).and_then(|rest| rest.windows(2).position(|w| w == b"\r\n")).map(|p| start + p)
        else {
            ffi::lua_pushnil(state);
            return 0;
        };
        // An empty line has no type byte (never written by Ember's encoder; no slicing past it).
        if end == start || depth > MAX_DEPTH || ffi::lua_checkstack(state, 4) == 0 {
            *pos = b.len();
            ffi::lua_pushnil(state);
            return 0;
        }
        let kind = b[start];
        let text = &b[start + 1..end];
        *pos = end + 2;
        let int = |t: &[u8]| std::str::from_utf8(t).ok().and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
        // `n` bytes of payload after the header, and the position past their CRLF.
        let payload = |pos: &mut usize, n: usize| -> &[u8] {
            let from = (*pos).min(b.len());
            let to = from.saturating_add(n).min(b.len());
            *pos = to.saturating_add(2).min(b.len());
            &b[from..to]
        };
        match kind {
            b'+' => {
                push_bytes(state, text);
                tag_top(state, "ok");
            }
            b'-' => push_error(state, text, true),
            b':' => ffi::lua_pushnumber(state, int(text) as f64),
            b'$' => {
                let n = int(text);
                if n < 0 {
                    ffi::lua_pushboolean(state, 0);
                } else {
                    push_bytes(state, payload(pos, n as usize));
                }
            }
            b'*' | b'~' | b'>' => {
                let n = int(text);
                if n < 0 {
                    ffi::lua_pushboolean(state, 0);
                } else {
                    // Every element takes at least 3 bytes: the reply bounds the table.
                    let hint = (n as usize).min(b.len() / 3).min(c_int::MAX as usize) as c_int;
                    if kind == b'~' {
                        ffi::lua_createtable(state, 0, hint);
                    } else {
                        ffi::lua_createtable(state, hint, 0);
                    }
                    for i in 0..n {
                        if *pos >= b.len() {
                            break;
                        }
                        push_reply(state, b, pos, depth + 1);
                        if kind == b'~' {
                            // A nil key (a truncated reply) cannot be set.
                            if ffi::lua_type(state, -1) == ffi::LUA_TNIL {
                                ffi::lua_settop(state, -2);
                            } else {
                                ffi::lua_pushboolean(state, 1);
                                ffi::lua_rawset(state, -3);
                            }
                        } else {
                            let Ok(i) = c_int::try_from(i + 1) else {
                                ffi::lua_settop(state, -2);
                                break;
                            };
                            ffi::lua_rawseti_(state, -2, i);
                        }
                    }
                    if kind == b'~' {
                        tag_top(state, "set");
                    }
                }
            }
            b'%' => {
                ffi::lua_createtable(state, 0, 0);
                for _ in 0..int(text) {
                    if *pos >= b.len() {
                        break;
                    }
                    push_reply(state, b, pos, depth + 1);
                    push_reply(state, b, pos, depth + 1);
                    // A nil key (a truncated reply) cannot be set.
                    if ffi::lua_type(state, -2) == ffi::LUA_TNIL {
                        ffi::lua_settop(state, -3);
                    } else {
                        ffi::lua_rawset(state, -3);
                    }
                }
                tag_top(state, "map");
            }
            b'_' => ffi::lua_pushnil(state),
            b'#' => ffi::lua_pushboolean(state, (text == b"t") as c_int),
            b',' => {
                let d = crate::util::numfmt::parse_f64(text).unwrap_or(0.0);
                ffi::lua_pushnumber(state, d);
                tag_top(state, "double");
            }
            b'(' => {
                push_bytes(state, text);
                tag_top(state, "big_number");
            }
            b'=' => {
                // `=len\r\nfmt:text\r\n`: {verbatim_string = {format = fmt, string = text}}.
                let body = payload(pos, int(text).max(0) as usize);
                let (format, text) =
                    if body.len() >= 4 && body[3] == b':' { body.split_at(4) } else { (&b"txt:"[..], body) };
                ffi::lua_createtable(state, 0, 2);
                push_bytes(state, &format[..3]);
                set_field(state, -3, "format");
                push_bytes(state, text);
                set_field(state, -3, "string");
                tag_top(state, "verbatim_string");
            }
            b'|' => {
                // Attributes are metadata before the real reply: skipped, as Redis's scripts do.
                for _ in 0..int(text).max(0) {
                    if *pos >= b.len() {
                        break;
                    }
                    push_reply(state, b, pos, depth + 1);
                    push_reply(state, b, pos, depth + 1);
                    ffi::lua_settop(state, -3);
                }
                return push_reply(state, b, pos, depth + 1);
            }
            _ => ffi::lua_pushnil(state),
        }
        kind
    }
}

/// The keys and arguments of a run, handed to [`run_entry`] as a light userdata.
pub(super) struct RunArgs<'a> {
    pub keys: &'a [&'a [u8]],
    pub args: &'a [&'a [u8]],
}

/// Runs a script or function, called (protected, by mlua's `Function::call`) with
/// `(handler, function, globals-or-nil, &RunArgs)`: globals for an EVAL script, which reads
/// KEYS and ARGV as globals; a function gets them as arguments. Returns `ok, value`.
pub(super) unsafe extern "C-unwind" fn run_entry(state: *mut ffi::lua_State) -> c_int {
    // SAFETY: the light userdata is the caller's RunArgs, alive for the call (Engine::run);
    // the other slots are as documented.
    unsafe {
        let run = ffi::lua_touserdata(state, 4) as *const RunArgs;
        ffi::lua_settop(state, 3);
        if run.is_null() || ffi::lua_type(state, 2) != ffi::LUA_TFUNCTION {
            return 0;
        }
        run_script(state, (*run).keys, (*run).args);
        2
    }
}

/// Builds the KEYS and ARGV tables and calls the function under the error handler: from
/// `[handler, function, globals-or-nil]` to `[ok, value]`.
unsafe fn run_script(state: *mut ffi::lua_State, keys: &[&[u8]], args: &[&[u8]]) {
    // SAFETY (whole body): works on the three slots it is given and the values it pushes; the
    // slices are borrowed from the caller (no destructor here).
    unsafe {
        table_of(state, keys);
        table_of(state, args);
        let eval = ffi::lua_type(state, 3) == ffi::LUA_TTABLE;
        let nargs = if eval {
            // The globals are read-only: open them for the two writes only (Engine::run locks
            // them again should anything here raise).
            lua_enablereadonlytable(state, 3, 0);
            push_bytes(state, b"ARGV");
            ffi::lua_insert(state, -2);
            ffi::lua_rawset(state, 3);
            push_bytes(state, b"KEYS");
            ffi::lua_insert(state, -2);
            ffi::lua_rawset(state, 3);
            lua_enablereadonlytable(state, 3, 1);
            ffi::lua_pushvalue(state, 2);
            0
        } else {
            ffi::lua_pushvalue(state, 2);
            ffi::lua_insert(state, -3);
            2
        };
        let status = ffi::lua_pcall(state, nargs, 1, 1);
        ffi::lua_pushboolean(state, (status == 0) as c_int);
        ffi::lua_replace(state, 1);
        ffi::lua_replace(state, 2);
        ffi::lua_settop(state, 2);
    }
}

/// Pushes an array of the strings.
unsafe fn table_of(state: *mut ffi::lua_State, items: &[&[u8]]) {
    // SAFETY: pushes a table and strings into it.
    unsafe {
        // The items are a command's arguments, bounded by the request's size.
        let n = items.len().min(c_int::MAX as usize) as c_int;
        ffi::lua_createtable(state, n, 0);
        for (i, item) in items.iter().take(n as usize).enumerate() {
            push_bytes(state, item);
            ffi::lua_rawseti_(state, -2, i as c_int + 1);
        }
    }
}

unsafe extern "C-unwind" {
    /// Ember's Lua (vendor/lua-src): marks the table at `idx` read-only (or writable again).
    pub(super) fn lua_enablereadonlytable(state: *mut ffi::lua_State, idx: c_int, enabled: c_int);
}
