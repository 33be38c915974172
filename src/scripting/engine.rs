//! The Lua engine behind EVAL: one Lua 5.1 state (the version Redis embeds), the script
//! cache by SHA1, and the conversions between Redis replies and Lua values that Redis 7.0
//! documents and its tests pin down.
//!
//! A script runs as a function compiled from its body under the chunk name `@user_script`, in
//! a global table that refuses new globals and reads of missing ones, with `KEYS`, `ARGV` and
//! the `redis` library. `redis.call` / `redis.pcall` are thin Lua wrappers over one Rust
//! callback that runs the command through dispatch as a client of its own; the callback is
//! created in a scope for each run, so it may borrow the server mutably. Errors are caught by
//! `xpcall` with a handler that records where in the user script they happened, which Redis
//! appends to the error reply (`script: <sha>, on @user_script:<line>.`).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mlua::{Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value, VmState};

use crate::protocol::Reply;

/// The Lua side of the library, run once per engine before anything is locked: the `redis`
/// table's Lua parts, Redis's `pcall` (error replies reach scripts as their text), and the
/// runner of FUNCTION LOAD's top level. It is called with the error handler, the error-text
/// helper and the readonly switch, and returns the runner; nothing of it is left in the
/// globals. (Scripts and functions run through the C API: see `raw::run_script`.)
pub(super) const PRELUDE: &str = r#"
local handler, errtext = ...
redis = {}
-- redis.call and redis.pcall are Rust functions installed after this chunk; C functions, so
-- `return redis.call(...)` keeps the script's frame for the error's line number.
redis.REDIS_VERSION = '7.0.15'
redis.REDIS_VERSION_NUM = 458767
local type, select, sub, find, match, gsub = type, select, string.sub, string.find, string.match, string.gsub
-- Anything but one string comes back as an error reply, not an error (Redis 7.0).
local function one_string(...)
    return select('#', ...) == 1 and type(...) == 'string'
end
-- Redis's luaPushErrorBuff: the text as a C string, '-CODE msg' or 'msg' (code ERR); the
-- message loses line breaks at either end.
redis.error_reply = function(...)
    if not one_string(...) then return {err = 'ERR wrong number or type of arguments'} end
    local e = match(..., '^[^%z]*')
    if sub(e, 1, 1) ~= '-' then e = '-' .. e end
    local code, msg = 'ERR', sub(e, 2)
    local space = find(e, ' ', 1, true)
    if space then code, msg = sub(e, 2, space - 1), sub(e, space + 1) end
    msg = gsub(gsub(msg, '^[\r\n]+', ''), '[\r\n]+$', '')
    return {err = code .. ' ' .. msg}
end
redis.status_reply = function(...)
    if not one_string(...) then return {err = 'ERR wrong number or type of arguments'} end
    return {ok = ...}
end
redis.replicate_commands = function() return true end
redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, redis.LOG_WARNING = 0, 1, 2, 3
redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, redis.REPL_REPLICA, redis.REPL_ALL = 0, 1, 2, 2, 3
local xpcall, select, unpack = xpcall, select, unpack
local function load(f) return xpcall(f, handler) end
local lua_pcall = pcall
local function settle(ok, ...)
    if ok then return ok, ... end
    local n = select('#', ...)
    local rest = {...}
    rest[1] = errtext(rest[1])
    return ok, unpack(rest, 1, n)
end
pcall = function(...) return settle(lua_pcall(...)) end
return load
"#;

/// Locks the sandbox, as Redis 7.0 does with its readonly tables (a flag of Ember's Lua, see
/// vendor/lua-src/PATCHES.md): the globals, every table reachable from them (the libraries,
/// `redis` included), their metatables and the string metatable refuse all writes, raw ones
/// included; reading a missing global is an error. Returns the index function of missing
/// globals (FUNCTION LOAD swaps it for the load-time view) and a maker of strict views.
pub(super) const PROTECT: &str = r#"
local set_ro = ...
local G, type, pairs, error, tostring, setmetatable, getmetatable = _G, type, pairs, error, tostring, setmetatable, getmetatable
local function missing(_, k)
    error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end
setmetatable(G, {__index = missing})
local seen = {}
local function lock(t)
    if seen[t] then return end
    seen[t] = true
    for _, v in pairs(t) do
        if type(v) == 'table' then lock(v) end
    end
    local mt = getmetatable(t)
    if type(mt) == 'table' then lock(mt) end
    set_ro(t, true)
end
lock(G)
lock(getmetatable(''))
-- A read-only table whose missing fields are errors (FUNCTION LOAD's view of the globals
-- and of `redis`).
local function strict(t)
    setmetatable(t, {__index = missing})
    lock(t)
    return t
end
-- The functions engine's globals: an empty read-only table that reads through to G.
local proxy = setmetatable({}, {__index = G})
lock(proxy)
return missing, strict, proxy
"#;

/// How a command's reply came back to Lua, and what stopped a script.
pub enum Outcome {
    /// The script's return value, converted, and the error replies nested in it: their lines,
    /// or None for one a command already replied (and counted).
    Reply(Reply, Vec<Option<String>>),
    /// An error raised by the script: the text and where it happened; `counted` when a
    /// command replied it (it is already in errorstats).
    Error { text: String, line: Option<i64>, counted: bool },
    /// The script returned an error table a command had replied (already counted).
    CountedError(String),
}

/// A compiled script or registered function, kept in the Lua registry: mlua's plain handles
/// live on an auxiliary Lua stack, which Lua 5.1 caps at about 8,000 values, so holding
/// every cached script as one made SCRIPT LOAD fail past that (Redis caches any number).
pub type Compiled = Rc<mlua::RegistryKey>;

/// What `run` calls: a cached script (KEYS and ARGV are globals) or a library function
/// (called with the keys and args tables).
pub enum Target {
    Script(Compiled),
    Function(Compiled),
}

/// A function registered by a library (FUNCTION LOAD).
pub struct FunctionDef {
    pub(super) func: Compiled,
    pub library: String,
    pub flags: Vec<String>,
    pub description: Option<String>,
}

impl FunctionDef {
    pub fn target(&self) -> Target {
        Target::Function(Rc::clone(&self.func))
    }

    pub fn no_writes(&self) -> bool {
        self.flags.iter().any(|f| f == "no-writes")
    }

    pub fn script_flags(&self) -> ScriptFlags {
        ScriptFlags {
            shebang: true,
            no_writes: self.no_writes(),
            allow_oom: self.flags.iter().any(|f| f == "allow-oom"),
            allow_stale: self.flags.iter().any(|f| f == "allow-stale"),
            no_cluster: self.flags.iter().any(|f| f == "no-cluster"),
            cross_slot: self.flags.iter().any(|f| f == "allow-cross-slot-keys"),
        }
    }
}

/// A library: its code (as loaded, for FUNCTION LIST WITHCODE and the RDB) and functions.
pub struct Library {
    pub code: Bytes,
    pub functions: Vec<String>,
}

/// A cached script: its SHA1, the flags of its shebang and its compiled function (cheap to
/// clone: the function is a shared reference).
#[derive(Clone)]
pub struct Script {
    pub sha: Rc<str>,
    pub flags: ScriptFlags,
    func: Compiled,
}

impl Script {
    pub fn target(&self) -> Target {
        Target::Script(Rc::clone(&self.func))
    }
}

#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct ScriptFlags {
    /// The script declared a shebang (`#!lua`): writes need no `no-writes` to be refused...
    pub shebang: bool,
    pub no_writes: bool,
    pub allow_oom: bool,
    /// `allow-stale`: runs on a replica whose link is down under replica-serve-stale-data no.
    pub allow_stale: bool,
    /// `no-cluster`: refused in cluster mode.
    pub no_cluster: bool,
    /// `allow-cross-slot-keys`: the script's commands may use keys of several slots.
    pub cross_slot: bool,
}

/// The flags a script body declares in its shebang (none without one, or when it is bad:
/// the run itself reports that).
pub fn shebang_flags(body: &[u8]) -> ScriptFlags {
    if !body.starts_with(b"#!") {
        return ScriptFlags::default();
    }
    parse_shebang(body).map(|(f, _)| f).unwrap_or_default()
}

/// `redis.REPL_ALL`: a script's effects go to the AOF (bit 1) and the replicas (bit 2).
pub const REPL_ALL: u8 = 3;

/// What the Rust side of `redis.call` needs for one run.
pub trait Host {
    /// Runs one command for the script; Err is a script-level refusal (unknown command,
    /// wrong arity, not allowed) in Redis's words, without the "ERR " code.
    /// `repl`: where its effects are propagated (`redis.set_repl`: bit 1 the AOF, bit 2
    /// the replicas).
    fn call(&mut self, argv: Vec<Bytes>, resp: u8, repl: u8) -> Result<Bytes, String>;
    /// `redis.acl_check_cmd`: whether the caller's user may run this command with these
    /// arguments; Err for a command that does not exist (Redis's words, without "ERR ").
    fn acl_check(&mut self, argv: Vec<Bytes>) -> Result<bool, String>;
    /// Called from the instruction hook once the run is past its time limit: serves other
    /// clients for a moment; true when the script must die (SCRIPT KILL, SHUTDOWN NOSAVE).
    fn busy_poll(&mut self) -> bool;
}

/// The line the user's script or function is at (the innermost frame of its chunk).
pub(super) fn script_line(lua: &Lua) -> Option<usize> {
    for level in 0..64 {
        match lua.inspect_stack(level, |d| (d.source().source.map(|s| s.into_owned()), d.current_line())) {
            None => break,
            Some((Some(src), line)) if src == "@user_script" || src == "@user_function" => return line,
            Some(_) => {}
        }
    }
    None
}

/// A run or load stopped by the watchdog: why, and where the script was.
#[derive(Clone, Copy, Debug)]
pub(super) struct Killed {
    message: &'static str,
    line: Option<usize>,
}

/// What the instruction hook watches for.
#[derive(Clone, Copy, Debug)]
pub(super) enum Watch {
    Idle,
    /// A script or function runs; past this instant it is busy (see [`Host::busy_poll`]).
    Run(Instant),
    /// FUNCTION LOAD runs a library's top level; past this instant it is stopped.
    Load(Instant),
}

pub struct Engine {
    lua: Lua,
    /// Library changes (loaded, deleted, flushed) since the server last took them: the
    /// libraries are part of the data set (saved, logged, replicated).
    changes: u64,
    scripts: HashMap<String, Script>,
    /// The same scripts by body (for EVAL's repeated bodies).
    by_body: HashMap<Bytes, Script>,
    /// What the instruction hook checks (see [`install_watchdog`]).
    watch: Rc<Cell<Watch>>,
    /// Set when a kill replaced the watchdog with a hook that raises on every instruction.
    killed: Rc<Cell<Option<Killed>>>,
    /// The RESP version `redis.setresp` chose for the current run.
    resp: Rc<Cell<u8>>,
    /// Where `redis.set_repl` sends the current run's effects (REPL_ALL unless changed).
    repl: Rc<Cell<u8>>,
    /// Who serves `redis.call` during a run (none between runs).
    host: Rc<Cell<Option<HostPtr>>>,
    /// The debugging session of the run in progress, if it is debugged (SCRIPT DEBUG).
    ldb: Rc<RefCell<Option<super::ldb::Ldb>>>,
    /// The global table (read-only while scripts run) and the `redis` library.
    globals: Table,
    lib: Table,
    /// The metatable whose `__index` FUNCTION LOAD swaps (the globals', or the functions
    /// engine's proxy's), what it normally holds, and the maker of strict read-only views.
    globals_mt: Table,
    normal_index: Value,
    strict: Function,
    /// `set_ro(table, bool)`: Ember Lua's readonly switch; held here only (never a global).
    set_ro: Function,
    /// The error handler scripts and functions run under (it records the line), and the C
    /// function that runs them (`raw::run_entry`).
    handler: Function,
    runner: Function,
    /// What `redis.call` reaches (boxed: the closures hold its address).
    _call_ctx: Box<super::raw::CallCtx>,
    /// Runs a library's top level under the error handler (FUNCTION LOAD).
    loader: Function,
    /// FUNCTION libraries (only in the engine that serves FCALL) by name, and their functions.
    pub libraries: std::collections::BTreeMap<String, Library>,
    pub functions: HashMap<String, FunctionDef>,
    /// Lua's memory after the last full collection a run ended with (see `run`).
    gc_floor: usize,
}

pub(super) fn lua_err(e: mlua::Error) -> String {
    e.to_string()
}

impl Engine {
    /// A Lua state for EVAL scripts, or (`functions`) for FUNCTION libraries: their globals
    /// are an empty read-only table looking up the real ones, so FUNCTION LOAD can show a
    /// library's top level only the load-time API (as Redis does).
    pub fn new(functions: bool) -> Result<Engine, String> {
        let libs = StdLib::TABLE | StdLib::STRING | StdLib::MATH;
        let lua = Lua::new_with(libs, LuaOptions::new()).map_err(lua_err)?;
        let watch = Rc::new(Cell::new(Watch::Idle));
        let killed = Rc::new(Cell::new(None));
        let resp = Rc::new(Cell::new(2u8));
        let repl = Rc::new(Cell::new(REPL_ALL));
        let host: Rc<Cell<Option<HostPtr>>> = Rc::new(Cell::new(None));
        let mut lib_fns = Vec::new();
        let mut prelude_args = Vec::new();
        let handler;
        let ldb: Rc<RefCell<Option<super::ldb::Ldb>>> = Rc::new(RefCell::new(None));
        let call_ctx = Box::new(super::raw::CallCtx::new(host.clone(), resp.clone(), repl.clone(), ldb.clone()));
        {
            let g = lua.globals();
            // What Redis 7.0 removes from the base library (it keeps `load` and `loadstring`:
            // Ember's Lua parses every chunk as text, so bytecode cannot get in).
            for name in ["loadfile", "dofile", "print", "module", "require", "newproxy", "getfenv", "setfenv"] {
                g.raw_set(name, Value::Nil).map_err(lua_err)?;
            }
            let handler_fn = lua
                .create_function(|lua, err: Value| {
                    let where_ = script_line(lua);
                    let t = lua.create_table()?;
                    let mut counted = false;
                    let text = match &err {
                        Value::Table(e) => {
                            counted = e.raw_get::<bool>(IGNORE_STATS).unwrap_or(false);
                            match e.raw_get::<Value>("err")? {
                                Value::String(s) => s.to_string_lossy(),
                                other => format!("ERR {}", lua_text(&other)),
                            }
                        }
                        Value::Error(e) => match e.downcast_ref::<ScriptError>() {
                            Some(se) => {
                                counted = se.counted;
                                se.text.clone()
                            }
                            None => format!("ERR {}", error_text(e)),
                        },
                        other => format!("ERR {}", lua_text(other)),
                    };
                    t.raw_set("err", text)?;
                    if counted {
                        t.raw_set(IGNORE_STATS, true)?;
                    }
                    if let Some(line) = where_ {
                        t.raw_set("line", line as i64)?;
                    }
                    Ok(t)
                })
                .map_err(lua_err)?;
            prelude_args.push(Value::Function(handler_fn.clone()));
            handler = handler_fn;
            let sha = lua
                .create_function(|lua, args: MultiValue| {
                    if args.len() != 1 {
                        return Err(redis_error("wrong number of arguments"));
                    }
                    // lua_tolstring: what is not a string or a number hashes as "".
                    let text = lua.coerce_string(args[0].clone())?;
                    Ok(crate::util::sha1::sha1_hex(&text.map(|s| s.as_bytes().to_vec()).unwrap_or_default()))
                })
                .map_err(lua_err)?;
            lib_fns.push(("sha1hex", sha));
            let log = lua
                .create_function(|lua, args: MultiValue| {
                    // Redis's checks, in its order and words.
                    if args.len() < 2 {
                        return Err(redis_error("redis.log() requires two arguments or more."));
                    }
                    // lua_isnumber: numeric strings count.
                    let level = match lua.coerce_number(args.front().cloned().unwrap_or(Value::Nil))? {
                        Some(n) => n,
                        None => return Err(redis_error("First argument must be a number (log level).")),
                    };
                    if !(0.0..=3.0).contains(&level) {
                        return Err(redis_error("Invalid debug level."));
                    }
                    let text: Vec<String> = args.iter().skip(1).map(lua_text).collect();
                    let text = text.join(" ");
                    match level as i64 {
                        3 => tracing::warn!(target: "lua", "{text}"),
                        2 => tracing::info!(target: "lua", "{text}"),
                        _ => tracing::debug!(target: "lua", "{text}"),
                    }
                    Ok(())
                })
                .map_err(lua_err)?;
            lib_fns.push(("log", log));
            let r = resp.clone();
            let setresp = lua
                .create_function(move |lua, args: MultiValue| {
                    if args.len() != 1 {
                        return Err(redis_error("redis.setresp() requires one argument."));
                    }
                    // Redis reads it with lua_tonumber as a C int: "3" is 3, 2.5 is 2.
                    let v =
                        lua.coerce_number(args.front().cloned().unwrap_or(Value::Nil))?.map_or(f64::NAN, f64::trunc);
                    if v != 2.0 && v != 3.0 {
                        return Err(redis_error("RESP version must be 2 or 3."));
                    }
                    r.set(v as u8);
                    Ok(())
                })
                .map_err(lua_err)?;
            lib_fns.push(("setresp", setresp));
            let (r, in_run) = (repl.clone(), host.clone());
            let set_repl = lua
                .create_function(move |_, args: MultiValue| {
                    // Outside a run: FUNCTION LOAD's top level.
                    if in_run.get().is_none() {
                        return Err(redis_error("redis.set_repl can only be called inside a script invocation"));
                    }
                    if args.len() != 1 {
                        return Err(redis_error("redis.set_repl() requires two arguments."));
                    }
                    // lua_tonumber read as a C int: what is not a number is 0 (REPL_NONE).
                    let flags = match args.front() {
                        Some(Value::Integer(n)) => *n,
                        Some(Value::Number(n)) if n.is_finite() => n.trunc() as i64,
                        Some(Value::String(s)) => {
                            s.to_str().ok().and_then(|t| t.trim().parse::<f64>().ok()).map_or(0, |n| n.trunc() as i64)
                        }
                        _ => 0,
                    };
                    if flags & !i64::from(REPL_ALL) != 0 {
                        return Err(redis_error(
                            "Invalid replication flags. Use REPL_AOF, REPL_REPLICA, REPL_ALL or REPL_NONE.",
                        ));
                    }
                    r.set(flags as u8);
                    Ok(())
                })
                .map_err(lua_err)?;
            lib_fns.push(("set_repl", set_repl));
            let errtext = lua
                .create_function(|lua, v: Value| {
                    Ok(match v {
                        Value::Table(t) => match t.raw_get::<Value>("err")? {
                            Value::String(e) => Value::String(e),
                            _ => Value::Table(t),
                        },
                        Value::Error(e) => {
                            let text = match e.downcast_ref::<ScriptError>() {
                                Some(se) => se.text.clone(),
                                None => error_text(&e),
                            };
                            Value::String(lua.create_string(&text)?)
                        }
                        other => other,
                    })
                })
                .map_err(lua_err)?;
            prelude_args.push(Value::Function(errtext));
            let ctx_ptr = &*call_ctx as *const super::raw::CallCtx;
            lib_fns.push(("call", c_closure(&lua, super::raw::redis_call, ctx_ptr).map_err(lua_err)?));
            lib_fns.push(("pcall", c_closure(&lua, super::raw::redis_pcall, ctx_ptr).map_err(lua_err)?));
            lib_fns.push(("acl_check_cmd", c_closure(&lua, super::raw::acl_check_cmd, ctx_ptr).map_err(lua_err)?));
            lib_fns.push(("breakpoint", c_closure(&lua, super::raw::breakpoint, ctx_ptr).map_err(lua_err)?));
            lib_fns.push(("debug", c_closure(&lua, super::raw::debug, ctx_ptr).map_err(lua_err)?));
            install_bit(&lua).map_err(lua_err)?;
            super::cjson::install(&lua, &g).map_err(lua_err)?;
            super::cmsgpack::install(&lua, &g).map_err(lua_err)?;
            super::structlib::install(&lua, &g).map_err(lua_err)?;
        }
        // SAFETY: a C function of Ember's Lua (vendor/lua-src) that reads its two arguments.
        let set_ro = unsafe { lua.create_c_function(lua_set_readonly) }.map_err(lua_err)?;
        // SAFETY: run_entry checks its arguments' types before it uses them; Engine::run is
        // its only caller.
        let runner = unsafe { lua.create_c_function(super::raw::run_entry) }.map_err(lua_err)?;
        let loader: Function =
            lua.load(PRELUDE).set_name("=ember_prelude").call(MultiValue::from_iter(prelude_args)).map_err(lua_err)?;
        let globals = lua.globals();
        let lib: Table = globals.raw_get("redis").map_err(lua_err)?;
        for (name, f) in lib_fns {
            lib.raw_set(name, f).map_err(lua_err)?;
        }
        let (missing, strict, proxy): (Function, Function, Table) =
            lua.load(PROTECT).set_name("=ember_protect").call(set_ro.clone()).map_err(lua_err)?;
        let (globals_mt, normal_index) = if functions {
            lua.set_globals(proxy.clone()).map_err(lua_err)?;
            (proxy.metatable().ok_or("the proxy has no metatable")?, Value::Table(globals.clone()))
        } else {
            (globals.metatable().ok_or("the globals have no metatable")?, Value::Function(missing))
        };
        // Scripts cannot take the machine: past this a Lua allocation fails with a script
        // error ("not enough memory") instead of growing the process.
        lua.set_memory_limit(LUA_MEMORY_LIMIT).map_err(lua_err)?;
        install_watchdog(&lua, &watch, &host, &killed).map_err(lua_err)?;
        // The set-up's garbage (the lock walk's table, compiler leftovers) goes now.
        lua.gc_collect().map_err(lua_err)?;
        Ok(Engine {
            changes: 0,
            handler,
            runner,
            _call_ctx: call_ctx,
            loader,
            lua,
            scripts: HashMap::new(),
            by_body: HashMap::new(),
            watch,
            killed,
            resp,
            repl,
            host,
            ldb,
            globals,
            lib,
            globals_mt,
            normal_index,
            strict,
            set_ro,
            libraries: Default::default(),
            functions: HashMap::new(),
            gc_floor: 0,
        })
    }

    /// Compiles `body` and caches it by its SHA1 (returned). Compilation errors come back in
    /// Redis's words.
    pub fn load(&mut self, body: &[u8]) -> Result<Script, String> {
        // EVAL sends the body every time: a hash lookup of it is cheaper than its SHA1.
        if let Some(s) = self.by_body.get(body) {
            return Ok(s.clone());
        }
        let sha = crate::util::sha1::sha1_hex(body);
        if let Some(s) = self.scripts.get(&sha) {
            return Ok(s.clone());
        }
        let (flags, code) = parse_shebang(body)?;
        let func = self
            .lua
            .load(&code[..])
            .set_name("@user_script")
            .into_function()
            .map_err(|e| format!("Error compiling script (new function): {}", error_text(&e)))?;
        let func = self
            .lua
            .create_registry_value(func)
            .map_err(|e| format!("Error compiling script (new function): {}", error_text(&e)))?;
        let script = Script { sha: Rc::from(sha.as_str()), flags, func: Rc::new(func) };
        self.scripts.insert(sha, script.clone());
        self.by_body.insert(Bytes::copy_from_slice(body), script.clone());
        Ok(script)
    }

    /// Bytes the Lua heap of this engine holds.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }

    /// Bytes the script cache holds outside the Lua heap (INFO used_memory_scripts_eval):
    /// bodies and SHA1s, with an entry's bookkeeping in both maps.
    pub fn cache_memory(&self) -> usize {
        const ENTRY: usize = 2 * (std::mem::size_of::<Script>() + 48);
        self.by_body.keys().map(|b| b.len() + 40 + ENTRY).sum()
    }

    /// Bytes the function libraries hold outside the Lua heap (INFO used_memory_functions):
    /// their code and names.
    pub fn library_memory(&self) -> usize {
        let libs: usize = self.libraries.iter().map(|(name, l)| name.len() + l.code.len() + 64).sum();
        let funcs: usize = self.functions.keys().map(|f| f.len() + 96).sum();
        libs + funcs
    }

    pub fn exists(&self, sha: &[u8]) -> bool {
        std::str::from_utf8(sha).is_ok_and(|s| self.scripts.contains_key(&s.to_ascii_lowercase()))
    }

    /// A cached script by its SHA1 (lower case).
    pub fn script(&self, sha: &str) -> Option<&Script> {
        self.scripts.get(sha)
    }

    pub fn flush(&mut self) {
        self.scripts.clear();
        self.by_body.clear();
    }

    pub fn len(&self) -> usize {
        self.scripts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.scripts.is_empty()
    }

    /// FUNCTION LOAD: runs the library's code with a `redis` table that offers only
    /// `register_function` and `log` (anything else is an error, as in Redis), then commits
    /// the library if it registered at least one function and no name clashes. Returns the
    /// library name; errors come in Redis's words without the "ERR " code.
    pub fn load_library(&mut self, code: &[u8], replace: bool) -> Result<String, String> {
        let name = library_name(code)?;
        if !replace && self.libraries.contains_key(&name) {
            return Err(format!("Library '{name}' already exists"));
        }
        let body = &code[code.iter().position(|&c| c == b'\n').unwrap_or(code.len())..];
        let lua = &self.lua;
        let chunk = lua
            .load(body)
            .set_name("@user_function")
            .into_function()
            .map_err(|e| format!("Error compiling function: {}", error_text(&e)))?;
        let registered: std::cell::RefCell<Vec<(String, FunctionDef)>> = Default::default();
        let run_load = || -> mlua::Result<Result<(), String>> {
            lua.scope(|scope| {
                let register = scope.create_function(|lua, args: MultiValue| {
                    let def = registration(lua, args, &name).map_err(|m| mlua::Error::external(ScriptError::new(m)))?;
                    let mut list = registered.borrow_mut();
                    if list.iter().any(|(f, _)| f.eq_ignore_ascii_case(&def.0)) {
                        return Err(mlua::Error::external(ScriptError::new(
                            "ERR Function already exists in the library".into(),
                        )));
                    }
                    list.push(def);
                    Ok(())
                })?;
                let load_lib = lua.create_table()?;
                load_lib.raw_set("register_function", register)?;
                load_lib.raw_set("log", self.lib.raw_get::<Value>("log")?)?;
                for k in ["LOG_DEBUG", "LOG_VERBOSE", "LOG_NOTICE", "LOG_WARNING", "REDIS_VERSION", "REDIS_VERSION_NUM"]
                {
                    load_lib.raw_set(k, self.lib.raw_get::<Value>(k)?)?;
                }
                // While the library's top level runs, its globals are `redis` (the load-time
                // API) and nothing else, as in Redis: missing globals are looked up there.
                let api: Table = self.strict.call(load_lib)?;
                let env = lua.create_table()?;
                env.raw_set("redis", api)?;
                let env: Table = self.strict.call(env)?;
                self.set_globals_index(Value::Table(env))?;
                let r: mlua::Result<(bool, Value)> = self.loader.call(chunk.clone());
                let (ok, v) = r?;
                if ok {
                    return Ok(Ok(()));
                }
                let text = match &v {
                    Value::Table(t) => t.raw_get::<String>("err").unwrap_or_default(),
                    other => format!("ERR {}", lua_text(other)),
                };
                Ok(Err(format!("Error registering functions: {text}")))
            })
        };
        self.watch.set(Watch::Load(Instant::now() + LOAD_TIME_LIMIT));
        let outcome = run_load();
        let killed = self.end_run(true);
        // Whatever stopped the load, the globals get their own view back.
        self.set_globals_index(self.normal_index.clone()).map_err(lua_err)?;
        if let Some(k) = killed {
            return Err(format!("Error registering functions: ERR {}", k.message));
        }
        outcome.map_err(lua_err)??;
        let defs = registered.into_inner();
        if defs.is_empty() {
            return Err("No functions registered".into());
        }
        for (f, _) in &defs {
            if let Some(other) = self.function(f)
                && other.library != name
            {
                return Err(format!("Function {f} already exists"));
            }
        }
        if let Some(old) = self.libraries.remove(&name) {
            for f in old.functions {
                self.functions.remove(&f.to_ascii_lowercase());
            }
        }
        let names = defs.iter().map(|(f, _)| f.clone()).collect();
        for (f, def) in defs {
            self.functions.insert(f.to_ascii_lowercase(), def);
        }
        self.libraries.insert(name.clone(), Library { code: Bytes::copy_from_slice(code), functions: names });
        self.changes += 1;
        Ok(name)
    }

    /// The library changes counted since the last call.
    pub fn take_changes(&mut self) -> u64 {
        std::mem::take(&mut self.changes)
    }

    /// A function by name, without regard to case (as Redis's function dictionary).
    pub fn function(&self, name: &str) -> Option<&FunctionDef> {
        match self.functions.get(name) {
            Some(f) => Some(f),
            None => self.functions.get(&name.to_ascii_lowercase()),
        }
    }

    pub fn delete_library(&mut self, name: &str) -> bool {
        let Some(lib) = self.libraries.remove(name) else { return false };
        self.changes += 1;
        for f in lib.functions {
            self.functions.remove(&f.to_ascii_lowercase());
        }
        true
    }

    pub fn flush_libraries(&mut self) {
        self.changes += 1;
        self.libraries.clear();
        self.functions.clear();
    }

    /// Back to the normal watchdog after a run (a kill replaced it).
    /// Points missing globals at `index` (a function, or a table for FUNCTION LOAD).
    fn set_globals_index(&self, index: Value) -> mlua::Result<()> {
        self.set_ro.call::<()>((self.globals_mt.clone(), false))?;
        let r = self.globals_mt.raw_set("__index", index);
        self.set_ro.call::<()>((self.globals_mt.clone(), true))?;
        r
    }

    /// Returns the kill that ended the run, if one did. With `relock` the globals are locked
    /// again (a run that failed half-way may have left them open).
    fn end_run(&self, relock: bool) -> Option<Killed> {
        self.watch.set(Watch::Idle);
        if relock && let Err(e) = self.set_ro.call::<()>((self.globals.clone(), true)) {
            tracing::warn!("cannot lock the Lua globals: {e}");
        }
        let killed = self.killed.take();
        if killed.is_some()
            && let Err(e) = install_watchdog(&self.lua, &self.watch, &self.host, &self.killed)
        {
            tracing::warn!("cannot restore the Lua watchdog: {e}");
        }
        killed
    }

    /// Runs a cached script or a function with `keys` and `args`; `host` serves its commands.
    /// Past `deadline` the script is busy: from its instruction hook the host serves other
    /// clients (-BUSY to most) until it ends or SCRIPT KILL / FUNCTION KILL / SHUTDOWN NOSAVE
    /// stops it.
    pub fn run(
        &mut self,
        target: Target,
        keys: &[&[u8]],
        args: &[&[u8]],
        host: &mut dyn Host,
        deadline: Instant,
    ) -> Result<Outcome, String> {
        let (func, as_function) = match target {
            Target::Script(f) => (f, false),
            Target::Function(f) => (f, true),
        };
        let lua = &self.lua;
        self.resp.set(2);
        self.repl.set(REPL_ALL);
        self.watch.set(Watch::Run(deadline));
        let _current = CurrentHost::enter(&self.host, host);
        let result = (|| -> mlua::Result<Outcome> {
            let globals = if as_function { Value::Nil } else { Value::Table(self.globals.clone()) };
            let batch = super::raw::RunArgs { keys, args };
            let batch = mlua::LightUserData(&batch as *const super::raw::RunArgs as *mut std::ffi::c_void);
            let func: Function = lua.registry_value(&func)?;
            let (ok, v): (bool, Value) = self.runner.call((self.handler.clone(), func, globals, batch))?;
            if ok {
                if let Value::Table(t) = &v
                    && t.raw_get::<bool>(IGNORE_STATS).unwrap_or(false)
                    && let Ok(Value::String(text)) = t.raw_get::<Value>("err")
                {
                    return Ok(Outcome::CountedError(
                        String::from_utf8_lossy(&script_error_line(&text.as_bytes())).into_owned(),
                    ));
                }
                let mut nested = Vec::new();
                let reply = lua_to_reply(&v, 0, self.resp.get() >= 3, &mut nested);
                Ok(Outcome::Reply(reply, nested))
            } else {
                let (text, line, counted) = match &v {
                    Value::Table(t) => (
                        t.raw_get::<String>("err").unwrap_or_default(),
                        t.raw_get::<i64>("line").ok(),
                        t.raw_get::<bool>(IGNORE_STATS).unwrap_or(false),
                    ),
                    other => (format!("ERR {}", lua_text(other)), None, false),
                };
                Ok(Outcome::Error { text, line, counted })
            }
        })();
        if let Some(k) = self.end_run(result.is_err()) {
            // The error was raised again past the script's own frames: report the kill itself.
            return Ok(Outcome::Error {
                text: format!("ERR {}", k.message),
                line: k.line.map(|l| l as i64),
                counted: false,
            });
        }
        // Lua's incremental collector keeps up with small scripts; after a big one a full
        // collection gives the memory back at once. Only when the state has doubled since the
        // last one: what stays live (thousands of cached scripts) would otherwise make every
        // run pay for a walk of all of it.
        if lua.used_memory() > (32 << 20).max(self.gc_floor.saturating_mul(2)) {
            let _ = lua.gc_collect();
            self.gc_floor = lua.used_memory();
        }
        result.map_err(lua_err)
    }
}

impl Engine {
    /// Runs a script under the debugger (SCRIPT DEBUG): its line hook stops where `ldb`
    /// says and serves the debugging client; the session comes back for its end. A run
    /// that goes `busy_ms` without a stop stops as an infinite loop would.
    pub fn run_debugged(
        &mut self,
        ldb: super::ldb::Ldb,
        target: Target,
        keys: &[&[u8]],
        args: &[&[u8]],
        host: &mut dyn Host,
        busy_ms: u64,
    ) -> (Result<Outcome, String>, Option<super::ldb::Ldb>) {
        *self.ldb.borrow_mut() = Some(ldb);
        let far = Instant::now() + Duration::from_secs(365 * 86400);
        let out = match install_debug_hook(&self.lua, &self.ldb, busy_ms) {
            Ok(()) => self.run(target, keys, args, host, far),
            Err(e) => Err(lua_err(e)),
        };
        let ldb = self.ldb.borrow_mut().take();
        if let Err(e) = install_watchdog(&self.lua, &self.watch, &self.host, &self.killed) {
            tracing::warn!("cannot restore the Lua watchdog: {e}");
        }
        (out, ldb)
    }
}

/// The debugger's hook (Redis's luaLdbLineHook): at each line of the user's script, a stop
/// when stepping or at a breakpoint; every [`WATCH_EVERY`] instructions, a stop when the
/// script has run `busy_ms` without one.
fn install_debug_hook(lua: &Lua, ldb: &Rc<RefCell<Option<super::ldb::Ldb>>>, busy_ms: u64) -> mlua::Result<()> {
    use super::ldb;
    let cell = ldb.clone();
    let triggers = HookTriggers::new().every_line().every_nth_instruction(WATCH_EVERY);
    lua.set_hook(triggers, move |lua, debug| {
        let source = debug.source();
        if !source.short_src.as_deref().is_some_and(|s| s.contains("user_script")) {
            return Ok(VmState::Continue);
        }
        let line = debug.current_line().map_or(0, |l| l as i64);
        let count = debug.event() == mlua::debug::DebugEvent::Count;
        let Some((step, bp, since)) = ldb::with(&cell, |l| {
            l.current_line = line;
            (l.step, l.is_breakpoint(line) || l.luabp, l.running_since)
        }) else {
            return Ok(VmState::Continue);
        };
        let mut timeout = false;
        if count && !step && !bp {
            if since.elapsed() < Duration::from_millis(busy_ms.max(1)) {
                return Ok(VmState::Continue);
            }
            timeout = true;
        } else if !step && !bp {
            return Ok(VmState::Continue);
        }
        let luabp = ldb::with(&cell, |l| {
            let was = l.luabp;
            l.step = false;
            l.luabp = false;
            was
        })
        .unwrap_or(false);
        let reason = if bp {
            if luabp { "redis.breakpoint() called" } else { "break point" }
        } else if timeout {
            "timeout reached, infinite loop?"
        } else {
            "step over"
        };
        let sources = |n: i64| ldb::with(&cell, |l| l.source_text(n)).unwrap_or_default();
        let mut ops = |op: ldb::LuaOp| {
            let mut out = Vec::new();
            // SAFETY: the hook runs on the script's state between two of its instructions;
            // run_op only reads frames, pushes and pops its own values, and calls Lua in
            // protected mode.
            let ran = unsafe { lua.exec_raw::<()>((), |state| out = ldb::run_op(state, op, line, &sources)) };
            if let Err(e) = ran {
                out.push(format!("<error> {e}").into_bytes());
            }
            out
        };
        match ldb::stop(&cell, reason, &mut ops) {
            ldb::Resume::Run => {
                ldb::with(&cell, |l| l.running_since = Instant::now());
                Ok(VmState::Continue)
            }
            ldb::Resume::Gone if timeout => Err(mlua::Error::external(ScriptError::new(
                "ERR timeout during Lua debugging with client closing connection".into(),
            ))),
            ldb::Resume::Gone => Ok(VmState::Continue),
            ldb::Resume::Fail(text) => Err(mlua::Error::external(ScriptError::new(text))),
        }
    })
}

/// `set_ro(t, on)` for Lua: switches a table's readonly flag. Scripts never see it: it is
/// held by Rust and by the prelude's locals only.
unsafe extern "C-unwind" fn lua_set_readonly(state: *mut mlua::ffi::lua_State) -> std::os::raw::c_int {
    // SAFETY: called by Lua with `state` valid; only reads stack slots 1 and 2, checking the
    // first is a table before the readonly call, which needs one.
    unsafe {
        if mlua::ffi::lua_type(state, 1) == mlua::ffi::LUA_TTABLE {
            super::raw::lua_enablereadonlytable(state, 1, mlua::ffi::lua_toboolean(state, 2));
        }
    }
    0
}

/// The host of the run in progress, with its lifetime erased (see [`CurrentHost`]).
pub(super) type HostPtr = *mut (dyn Host + 'static);

/// Publishes `host` to `redis.call` for the length of a run and withdraws it on drop, so the
/// pointer never outlives the borrow it came from. `redis.call` and `redis.pcall` are made
/// once per engine (making Lua functions per run cost more than the commands they run).
pub(super) struct CurrentHost<'a>(&'a Cell<Option<HostPtr>>);

impl<'a> CurrentHost<'a> {
    fn enter(slot: &'a Cell<Option<HostPtr>>, host: &mut dyn Host) -> Self {
        let ptr: *mut (dyn Host + '_) = host;
        // SAFETY: only the lifetime is erased. The pointer is cleared when this guard drops,
        // before `run` returns and the borrow of `host` ends; it is dereferenced only inside
        // `redis.call`, which Lua invokes while `run` executes the script, and never
        // re-entrantly (scripts cannot run scripts: EVAL and FCALL are not allowed in them).
        let ptr: HostPtr = unsafe { std::mem::transmute::<*mut (dyn Host + '_), HostPtr>(ptr) };
        slot.set(Some(ptr));
        CurrentHost(slot)
    }
}

impl Drop for CurrentHost<'_> {
    fn drop(&mut self) {
        self.0.set(None);
    }
}

/// An error reply raised by `redis.call` (or a refusal of it), carried through Lua to the
/// error handler with its text (and error code) intact.
#[derive(Debug)]
pub(super) struct ScriptError {
    text: String,
    /// A command replied it (already counted in errorstats).
    counted: bool,
}

impl ScriptError {
    fn new(text: String) -> Self {
        ScriptError { text, counted: false }
    }
}

/// The field Redis marks error tables with when a command replied the error (so the script
/// replying it again does not count it twice). Scripts see it, as in Redis.
pub(super) const IGNORE_STATS: &str = "ignore_error_stats_update";

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ScriptError {}

/// An error the way Redis's library functions raise one (luaPushError, then luaError): an
/// error table whose text has the ERR code, which pcall hands the script as that text.
fn redis_error(msg: &str) -> mlua::Error {
    mlua::Error::external(ScriptError::new(format!("ERR {msg}")))
}

/// LuaBitOp's `bit` library (which Redis bundles): 32-bit operations on numbers, with its
/// conversion (the low 32 bits of n + 2^52 + 2^51: rounding to even, modulo 2^32) and its
/// argument errors.
pub(super) fn install_bit(lua: &Lua) -> mlua::Result<()> {
    use mlua::MultiValue;
    /// barg: argument `i` (1-based) as 32 bits.
    fn barg(lua: &Lua, args: &MultiValue, i: usize) -> mlua::Result<u32> {
        let n = match args.get(i - 1) {
            Some(v) => lua.coerce_number(v.clone())?,
            None => None,
        };
        let b = (n.unwrap_or(0.0) + 6_755_399_441_055_744.0).to_bits() as u32;
        if b == 0 && n.is_none() {
            return Err(super::luaerr::type_error(lua, i, args, "number"));
        }
        Ok(b)
    }
    fn ret(b: u32) -> mlua::Result<f64> {
        Ok(b as i32 as f64)
    }
    let bit = lua.create_table()?;
    bit.raw_set("tobit", lua.create_function(|lua, a: MultiValue| ret(barg(lua, &a, 1)?))?)?;
    bit.raw_set("bnot", lua.create_function(|lua, a: MultiValue| ret(!barg(lua, &a, 1)?))?)?;
    bit.raw_set("bswap", lua.create_function(|lua, a: MultiValue| ret(barg(lua, &a, 1)?.swap_bytes()))?)?;
    // The first argument, then the others from the last one down (so the last bad one is
    // the one reported, as in the C).
    let fold = |f: fn(u32, u32) -> u32| {
        lua.create_function(move |lua, a: MultiValue| {
            let mut b = barg(lua, &a, 1)?;
            for i in (2..=a.len()).rev() {
                b = f(b, barg(lua, &a, i)?);
            }
            ret(b)
        })
    };
    bit.raw_set("band", fold(|a, b| a & b)?)?;
    bit.raw_set("bor", fold(|a, b| a | b)?)?;
    bit.raw_set("bxor", fold(|a, b| a ^ b)?)?;
    let shift = |f: fn(u32, u32) -> u32| {
        lua.create_function(move |lua, a: MultiValue| {
            let b = barg(lua, &a, 1)?;
            ret(f(b, barg(lua, &a, 2)? & 31))
        })
    };
    bit.raw_set("lshift", shift(|x, n| x << n)?)?;
    bit.raw_set("rshift", shift(|x, n| x >> n)?)?;
    bit.raw_set("arshift", shift(|x, n| ((x as i32) >> n) as u32)?)?;
    bit.raw_set("rol", shift(u32::rotate_left)?)?;
    bit.raw_set("ror", shift(u32::rotate_right)?)?;
    bit.raw_set(
        "tohex",
        lua.create_function(|lua, a: MultiValue| {
            let mut b = barg(lua, &a, 1)?;
            let mut n = if a.len() < 2 { 8 } else { barg(lua, &a, 2)? as i32 };
            let digits: &[u8] = if n < 0 {
                n = n.wrapping_neg();
                b"0123456789ABCDEF"
            } else {
                b"0123456789abcdef"
            };
            // -(-2^31) overflows in the C; Redis's build then takes the 8-digit cap (its
            // compiler compares as if the negation were positive).
            let n = if n < 0 { 8 } else { n.min(8) as usize };
            let mut buf = vec![0u8; n];
            for c in buf.iter_mut().rev() {
                *c = digits[(b & 15) as usize];
                b >>= 4;
            }
            lua.create_string(&buf)
        })?,
    )?;
    lua.globals().raw_set("bit", bit)
}

/// What all scripts together may allocate inside Lua (Redis sets no limit; an unbounded
/// string.rep would otherwise be the server's end).
pub(super) const LUA_MEMORY_LIMIT: usize = 1 << 30;

/// Redis stops a library's loading code after this long (function_lua.c LOAD_TIMEOUT_MS).
pub(super) const LOAD_TIME_LIMIT: Duration = Duration::from_millis(500);

pub(super) const SCRIPT_KILLED: &str = "Script killed by user with SCRIPT KILL...";
pub(super) const LOAD_TIMEOUT: &str = "FUNCTION LOAD timeout";

/// How often (in VM instructions) the watchdog looks at the clock.
pub(super) const WATCH_EVERY: u32 = 100_000;

/// The instruction hook: every [`WATCH_EVERY`] instructions it checks the clock. A run past
/// its limit lets the host serve other clients; a kill (or a load past its limit) raises an
/// error and swaps in a hook that raises again on every instruction, so a `pcall` that
/// catches the first cannot keep the script alive (Redis sets LUA_MASKLINE for the same).
pub(super) fn install_watchdog(
    lua: &Lua,
    watch: &Rc<Cell<Watch>>,
    host: &Rc<Cell<Option<HostPtr>>>,
    killed: &Rc<Cell<Option<Killed>>>,
) -> mlua::Result<()> {
    let (watch, host, killed) = (watch.clone(), host.clone(), killed.clone());
    lua.set_hook(HookTriggers::new().every_nth_instruction(WATCH_EVERY), move |lua, _| {
        let message = match watch.get() {
            Watch::Idle => return Ok(VmState::Continue),
            Watch::Load(t) if Instant::now() >= t => LOAD_TIMEOUT,
            Watch::Run(t) if Instant::now() >= t => {
                let Some(ptr) = host.get() else { return Ok(VmState::Continue) };
                // SAFETY: see CurrentHost::enter. The hook runs between Lua instructions of
                // the run that published the pointer, never while `redis.call` is using it.
                if !unsafe { (*ptr).busy_poll() } {
                    return Ok(VmState::Continue);
                }
                SCRIPT_KILLED
            }
            _ => return Ok(VmState::Continue),
        };
        killed.set(Some(Killed { message, line: script_line(lua) }));
        lua.set_hook(HookTriggers::new().every_nth_instruction(1), move |_, _| Err(mlua::Error::runtime(message)))?;
        Err(mlua::Error::runtime(message))
    })
}

/// A C function with one upvalue, a pointer to `ctx` (which must outlive the Lua state's
/// use of the function).
fn c_closure(lua: &Lua, f: mlua::ffi::lua_CFunction, ctx: *const super::raw::CallCtx) -> mlua::Result<Function> {
    // SAFETY: pushes a light userdata and a closure over it; nothing here can panic.
    unsafe {
        lua.exec_raw((), |state| {
            mlua::ffi::lua_pushlightuserdata(state, ctx as *mut std::ffi::c_void);
            mlua::ffi::lua_pushcclosure(state, f, 1);
        })
    }
}

use super::convert::*;
use super::library::*;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_convert_as_redis_replies_them() {
        assert_eq!(truncate_like_c(3.99), 3);
        assert_eq!(truncate_like_c(-3.99), -3);
        assert_eq!(truncate_like_c(-0.5), 0);
        assert_eq!(truncate_like_c(1e20), i64::MIN);
        assert_eq!(lua_number_text(1.5), "1.5");
        assert_eq!(lua_number_text(1.0), "1");
        assert_eq!(lua_number_text(1e20), "1e+20");
    }

    #[test]
    fn shebang_flags() {
        assert_eq!(parse_shebang(b"return 1").unwrap().0, ScriptFlags::default());
        let (f, code) = parse_shebang(b"#!lua flags=no-writes,allow-oom\nreturn 1").unwrap();
        assert!(f.shebang && f.no_writes);
        assert_eq!(code, b"\nreturn 1");
        assert_eq!(
            parse_shebang(b"#!lua flags=bogus\nreturn 1").unwrap_err(),
            "Unexpected flag in script shebang: bogus"
        );
    }
}
