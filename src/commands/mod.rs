//! The command table and the handlers, one file per family.
//!
//! Every command is one [`CommandSpec`] row: name, arity, flags, key positions, documentation
//! and handler. Dispatch (arity, auth, MULTI queueing, stats) and COMMAND COUNT/INFO/DOCS/LIST/
//! GETKEYS all read the same rows, so they cannot disagree. A handler is a function of the
//! context and the arguments (argv, command name first) returning a [`Reply`] or a [`CmdError`];
//! it never touches a socket or asks which protocol the client speaks.

pub mod access;
pub mod acl;
pub mod args;
pub mod bitmap;
pub mod cluster;
pub mod connection;
pub mod dispatch;
pub mod docs;
pub mod error;
pub mod generic;
pub mod geo;
pub mod getkeys;
pub mod hash;
pub mod hash_ttl;
pub mod hll;
pub mod info;
pub mod introspection;
pub mod keyspec;
pub mod keyspecs;
pub mod latency;
pub mod lease;
pub mod list;
pub mod metrics;
pub mod migrate;
pub mod module;
pub mod pubsub;
pub mod replication;
pub mod scripting;
pub mod server;
pub mod set;
pub mod sort;
pub mod stream;
pub mod stream_group;
pub mod stream_info;
pub mod string;
pub mod transactions;
pub mod zset;
mod zset_range;

#[cfg(test)]
mod dispatch_tests;

use std::collections::HashMap;

use std::sync::OnceLock;

use bytes::Bytes;

pub use error::{CmdError, CmdResult};

use crate::keyspace::Db;
use crate::protocol::Reply;
use crate::server::{ServerState, Session};

/// What a handler sees: the whole server state and the calling client's session.
pub struct Ctx<'a> {
    pub srv: &'a mut ServerState,
    pub sess: &'a mut Session,
}

impl Ctx<'_> {
    /// The client's selected database.
    pub fn db(&mut self) -> &mut Db {
        &mut self.srv.dbs[self.sess.db]
    }
    pub fn now_ms(&self) -> u64 {
        self.srv.now_ms
    }

    /// Whether a deadline set now is already past, so the key goes at once (Redis's
    /// checkAlreadyExpired: never while loading, where the log replays what it recorded).
    /// Whether a deadline has passed for a command setting it (Redis's checkAlreadyExpired):
    /// never while loading the AOF, nor on a replica, which keeps the key until its master's
    /// DEL.
    pub fn already_expired(&self, when: i64) -> bool {
        when <= self.srv.now_ms as i64 && !self.srv.replaying_aof && self.srv.master.is_none()
    }

    /// Whether the command's effects are being logged (the AOF is on): handlers that log a
    /// replay-safe form ([`Self::log_as`]) skip building it otherwise.
    pub fn logging(&self) -> bool {
        self.srv.propagating()
    }

    /// Logs `cmd` (one of possibly several) instead of the command's own arguments, like
    /// Redis's alsoPropagate with the original suppressed.
    pub fn log_as(&mut self, cmd: Vec<Bytes>) {
        if self.logging() {
            self.srv.log_instead.get_or_insert_with(Vec::new).push(cmd);
        }
    }

    /// Logs only what [`Self::log_as`] is given, even if that is nothing: for commands whose
    /// own arguments must never be replayed (XREADGROUP would deliver again).
    pub fn log_only_explicit(&mut self) {
        if self.logging() {
            self.srv.log_instead.get_or_insert_with(Vec::new);
        }
    }

    /// Raises a keyspace event for `key` in the caller's database and publishes it, after any
    /// event the database raised itself during this command (`new`, `expired`, ...).
    pub fn notify(&mut self, class: u32, event: &'static str, key: &[u8]) {
        let db = self.sess.db;
        self.notify_in(db, class, event, key);
    }

    /// The event of a write that may have emptied a collection (pops, removals, trims): when
    /// the key is gone afterwards, `del` follows, as in Redis.
    pub fn notify_emptying(&mut self, class: u32, event: &'static str, key: &[u8]) {
        if self.srv.hot.notify == 0 {
            return;
        }
        self.notify(class, event, key);
        if self.db().view(key).is_none() {
            self.notify(crate::keyspace::notify::GENERIC, "del", key);
        }
    }

    /// [`Ctx::notify`] for another database (MOVE, COPY ... DB).
    pub fn notify_in(&mut self, db: usize, class: u32, event: &'static str, key: &[u8]) {
        if self.srv.hot.notify == 0 {
            return;
        }
        // Events the databases raised earlier in this command go first (`new` before `move_to`).
        self.srv.publish_events(self.sess);
        self.srv.dbs[db].notify(class, event, key);
        self.srv.publish_events(self.sess);
    }
}

pub type Handler = fn(&mut Ctx, &[&[u8]]) -> CmdResult;

/// Command flags, named and ordered as Redis 7.0 reports them in COMMAND INFO.
pub mod flags {
    pub const WRITE: u32 = 1 << 0;
    pub const READONLY: u32 = 1 << 1;
    pub const DENYOOM: u32 = 1 << 2;
    pub const ADMIN: u32 = 1 << 3;
    pub const PUBSUB: u32 = 1 << 4;
    pub const NOSCRIPT: u32 = 1 << 5;
    pub const BLOCKING: u32 = 1 << 6;
    pub const LOADING: u32 = 1 << 7;
    pub const STALE: u32 = 1 << 8;
    pub const SKIP_MONITOR: u32 = 1 << 9;
    pub const SKIP_SLOWLOG: u32 = 1 << 10;
    pub const FAST: u32 = 1 << 11;
    pub const NO_AUTH: u32 = 1 << 12;
    pub const MAY_REPLICATE: u32 = 1 << 13;
    pub const NO_MANDATORY_KEYS: u32 = 1 << 14;
    pub const NO_MULTI: u32 = 1 << 15;
    pub const MOVABLEKEYS: u32 = 1 << 16;
    pub const ALLOW_BUSY: u32 = 1 << 17;
    /// RESTORE-ASKING: served for a slot being imported (cluster), as ASKING would allow.
    pub const ASKING: u32 = 1 << 18;
    /// Refused with -LOADING while a replica loads asynchronously (its old data set served).
    pub const NO_ASYNC_LOADING: u32 = 1 << 19;
    /// Not a Redis flag: runs even inside MULTI instead of being queued (EXEC, DISCARD, ...).
    pub const TX_CONTROL: u32 = 1 << 24;

    pub const NAMES: &[(u32, &str)] = &[
        (WRITE, "write"),
        (READONLY, "readonly"),
        (DENYOOM, "denyoom"),
        (ADMIN, "admin"),
        (PUBSUB, "pubsub"),
        (NOSCRIPT, "noscript"),
        (BLOCKING, "blocking"),
        (LOADING, "loading"),
        (STALE, "stale"),
        (SKIP_MONITOR, "skip_monitor"),
        (SKIP_SLOWLOG, "skip_slowlog"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        // MAY_REPLICATE is hidden from COMMAND INFO on purpose, as in Redis.
        (NO_MANDATORY_KEYS, "no_mandatory_keys"),
        (NO_ASYNC_LOADING, "no_async_loading"),
        (NO_MULTI, "no_multi"),
        (MOVABLEKEYS, "movablekeys"),
        (ALLOW_BUSY, "allow_busy"),
        (ASKING, "asking"),
    ];
}

/// Key positions in argv: first, last (negative counts from the end), step. (0, 0, 0) = no keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keys {
    pub first: i32,
    pub last: i32,
    pub step: i32,
}

pub const NO_KEYS: Keys = Keys { first: 0, last: 0, step: 0 };
pub const KEY1: Keys = Keys { first: 1, last: 1, step: 1 };
pub const ALL_KEYS: Keys = Keys { first: 1, last: -1, step: 1 };

pub struct CommandSpec {
    /// Lower-case name (the subcommand name alone for subcommands).
    pub name: &'static str,
    /// Exact argc when positive, minimum argc when negative.
    pub arity: i32,
    pub flags: u32,
    pub keys: Keys,
    /// COMMAND DOCS group: "string", "generic", "connection", "server", "transactions", ...
    pub group: &'static str,
    pub summary: &'static str,
    pub since: &'static str,
    pub complexity: &'static str,
    pub handler: Handler,
    pub subcommands: &'static [CommandSpec],
}

/// Table rows are built by name: `CommandSpec::new("get", 2, get).flags(READONLY | FAST)
/// .keys(KEY1).doc(group, summary, since, complexity)`, in const context (the tables are
/// statics); what a row leaves out is no flags, no keys, no subcommands.
impl CommandSpec {
    pub const fn new(name: &'static str, arity: i32, handler: Handler) -> Self {
        CommandSpec {
            name,
            arity,
            flags: 0,
            keys: NO_KEYS,
            group: "",
            summary: "",
            since: "",
            complexity: "",
            handler,
            subcommands: &[],
        }
    }

    pub const fn flags(mut self, flags: u32) -> Self {
        self.flags = flags;
        self
    }

    pub const fn keys(mut self, keys: Keys) -> Self {
        self.keys = keys;
        self
    }

    /// COMMAND DOCS: the group, a one-line summary, the version it appeared in, its cost.
    pub const fn doc(
        mut self,
        group: &'static str,
        summary: &'static str,
        since: &'static str,
        complexity: &'static str,
    ) -> Self {
        self.group = group;
        self.summary = summary;
        self.since = since;
        self.complexity = complexity;
        self
    }

    pub const fn subcommands(mut self, subcommands: &'static [CommandSpec]) -> Self {
        self.subcommands = subcommands;
        self
    }

    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }

    pub fn arity_ok(&self, argc: usize) -> bool {
        let a = self.arity;
        (a >= 0 && argc == a as usize) || (a < 0 && argc >= (-a) as usize)
    }

    /// Positions of the key arguments in `argv` according to the table.
    /// Where the keys are in `argv`: the fixed range, or for MOVABLEKEYS commands what the
    /// arguments say ([`getkeys::movable`]; empty when they do not say).
    pub fn key_positions(&self, argv: &[&[u8]]) -> Vec<usize> {
        if self.has(flags::MOVABLEKEYS) {
            return getkeys::movable(self.name, argv).unwrap_or_default();
        }
        let argc = argv.len();
        let k = self.keys;
        if k.first <= 0 || k.step <= 0 {
            return Vec::new();
        }
        let last = if k.last < 0 { argc as i32 + k.last } else { k.last };
        let mut out = Vec::new();
        let mut i = k.first;
        while i <= last && (i as usize) < argc {
            out.push(i as usize);
            i += k.step;
        }
        out
    }

    /// ACL categories as COMMAND INFO lists them: Redis 7.0's for the command `full`
    /// ([`crate::acl::categories`]), else derived from flags and group.
    pub fn acl_categories(&self, full: &str) -> Vec<&'static str> {
        const AT: [&str; 21] = [
            "@keyspace",
            "@read",
            "@write",
            "@set",
            "@sortedset",
            "@list",
            "@hash",
            "@string",
            "@bitmap",
            "@hyperloglog",
            "@geo",
            "@stream",
            "@pubsub",
            "@admin",
            "@fast",
            "@slow",
            "@blocking",
            "@dangerous",
            "@connection",
            "@transaction",
            "@scripting",
        ];
        let bits = crate::acl::categories::of(full);
        if bits != 0 {
            return (0..AT.len()).filter(|i| bits & (1 << i) != 0).map(|i| AT[i]).collect();
        }
        let mut c = Vec::new();
        if self.has(flags::WRITE) {
            c.push("@write");
        }
        if self.has(flags::READONLY) {
            c.push("@read");
        }
        match self.group {
            "string" => c.push("@string"),
            "generic" => c.push("@keyspace"),
            "hash" => c.push("@hash"),
            "list" => c.push("@list"),
            "set" => c.push("@set"),
            "sorted_set" => c.push("@sortedset"),
            "geo" => c.push("@geo"),
            "bitmap" => c.push("@bitmap"),
            "hyperloglog" => c.push("@hyperloglog"),
            "stream" => c.push("@stream"),
            "transactions" => c.push("@transaction"),
            "connection" => c.push("@connection"),
            "pubsub" => c.push("@pubsub"),
            _ => {}
        }
        if self.has(flags::ADMIN) {
            c.push("@admin");
            c.push("@dangerous");
        }
        if self.has(flags::FAST) {
            c.push("@fast");
        } else {
            c.push("@slow");
        }
        if self.has(flags::BLOCKING) {
            c.push("@blocking");
        }
        // Redis lists the scripting category after speed.
        if self.group == "scripting" {
            c.push("@scripting");
        }
        c
    }
}

fn families() -> [&'static [CommandSpec]; 26] {
    [
        acl::COMMANDS,
        migrate::COMMANDS,
        scripting::COMMANDS,
        stream::COMMANDS,
        pubsub::COMMANDS,
        hll::COMMANDS,
        bitmap::COMMANDS,
        geo::COMMANDS,
        zset::COMMANDS,
        sort::COMMANDS,
        list::COMMANDS,
        set::COMMANDS,
        hash::COMMANDS,
        hash_ttl::COMMANDS,
        connection::COMMANDS,
        generic::COMMANDS,
        string::COMMANDS,
        lease::COMMANDS,
        server::COMMANDS,
        latency::COMMANDS,
        cluster::COMMANDS,
        module::COMMANDS,
        transactions::COMMANDS,
        introspection::COMMANDS,
        info::COMMANDS,
        replication::COMMANDS,
    ]
}

/// A resolved command: its row, its full name (`config|get`) and a dense id for statistics.
pub struct Entry {
    pub spec: &'static CommandSpec,
    pub full: &'static str,
    pub id: usize,
    /// Entry ids of the subcommands (empty for plain commands).
    pub subs: Vec<usize>,
    /// What dispatch treats specially about this command ([`traits`]), worked out from its
    /// name once so the hot path tests bits instead of comparing strings.
    pub traits: u8,
}

impl Entry {
    fn new(spec: &'static CommandSpec, full: &'static str, id: usize) -> Entry {
        use traits::*;
        let t = match full {
            "eval" | "evalsha" | "fcall" => SCRIPT,
            "eval_ro" | "evalsha_ro" | "fcall_ro" => SCRIPT | SCRIPT_RO,
            "ping" => PING,
            "exec" => EXEC,
            f if f.starts_with("debug") => DEBUG,
            f if module::PROTECTED.contains(&f) => PROTECTED,
            _ => 0,
        };
        Entry { spec, full, id, subs: Vec::new(), traits: t }
    }

    pub fn is(&self, t: u8) -> bool {
        self.traits & t != 0
    }
}

/// Bits of [`Entry::traits`].
pub mod traits {
    /// EVAL, EVALSHA, FCALL and their read-only forms: run a script.
    pub const SCRIPT: u8 = 1 << 0;
    /// EVAL_RO, EVALSHA_RO, FCALL_RO.
    pub const SCRIPT_RO: u8 = 1 << 1;
    pub const PING: u8 = 1 << 2;
    pub const EXEC: u8 = 1 << 3;
    /// DEBUG and its subcommands (enable-debug-command).
    pub const DEBUG: u8 = 1 << 4;
    /// Redis's CMD_PROTECTED module subcommands (enable-module-command).
    pub const PROTECTED: u8 = 1 << 5;
}

/// FNV-1a: the command table is fixed at start-up, so lookups need speed, not DoS resistance.
#[derive(Default)]
pub struct Fnv(u64);

impl std::hash::Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 { 0xcbf29ce484222325 } else { self.0 };
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
        self.0 = h;
    }
}

type FnvBuild = std::hash::BuildHasherDefault<Fnv>;

pub struct Table {
    entries: Vec<Entry>,
    by_name: HashMap<&'static [u8], usize, FnvBuild>,
    /// Some command answers to another name (`rename-command`): an entry's own name is
    /// no longer proof that it was asked for.
    renamed: bool,
}

impl Table {
    /// [`Table::get`] that first tries the command a client ran last (`hint`, an entry id):
    /// pipelines repeat one command, and comparing one name beats hashing it. The hint is
    /// updated to what was found.
    pub fn get_hinted(&self, name: &[u8], hint: &mut u32) -> Option<&Entry> {
        if !self.renamed
            && let Some(e) = self.entries.get(*hint as usize)
            && name.eq_ignore_ascii_case(e.full.as_bytes())
        {
            return Some(e);
        }
        let e = self.get(name)?;
        *hint = e.id as u32;
        Some(e)
    }

    /// A top-level command by name (case-insensitive).
    pub fn get(&self, name: &[u8]) -> Option<&Entry> {
        if name.len() > 64 {
            return None;
        }
        let mut buf = [0u8; 64];
        let lower = &mut buf[..name.len()];
        lower.copy_from_slice(name);
        lower.make_ascii_lowercase();
        self.by_name.get(&*lower).map(|&i| &self.entries[i])
    }

    /// A subcommand of `parent` by name (case-insensitive).
    pub fn sub(&self, parent: &Entry, name: &[u8]) -> Option<&Entry> {
        parent.subs.iter().map(|&i| &self.entries[i]).find(|e| e.spec.name.as_bytes().eq_ignore_ascii_case(name))
    }

    /// Top-level commands, in table order.
    pub fn all(&self) -> impl Iterator<Item = &'static CommandSpec> + '_ {
        self.entries.iter().filter(|e| !e.full.contains('|')).map(|e| e.spec)
    }

    /// Every entry, subcommands included (statistics are indexed by `Entry::id`).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Number of top-level commands (COMMAND COUNT).
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// The process-wide command table.
/// `rename-command` pairs (lowercase; an empty new name removes the command), set once at
/// start-up before the table is first used.
static RENAMES: OnceLock<Vec<(String, String)>> = OnceLock::new();

/// Applies the config's `rename-command` lines, checking each as Redis does (the command
/// must exist under its current name, the new name must be free). Call before anything
/// looks a command up; the table is built with them.
pub fn rename_commands(renames: &[crate::config::Rename]) -> Result<(), crate::config::ConfigError> {
    let mut names: Vec<String> = families().iter().flat_map(|f| f.iter()).map(|s| s.name.to_string()).collect();
    let mut pairs = Vec::new();
    for r in renames {
        let (from, to) = (r.from.to_ascii_lowercase(), r.to.to_ascii_lowercase());
        let Some(at) = names.iter().position(|n| *n == from) else {
            return Err(r.error("No such command in rename-command"));
        };
        if !to.is_empty() && names.contains(&to) {
            return Err(r.error("Target command name already exists"));
        }
        names[at] = to.clone();
        pairs.push((from, to));
    }
    let _ = RENAMES.set(pairs);
    Ok(())
}

pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut entries = Vec::new();
        let mut by_name = HashMap::default();
        for fam in families() {
            for spec in fam {
                let id = entries.len();
                entries.push(Entry::new(spec, spec.name, id));
                by_name.insert(spec.name.as_bytes(), id);
                for sub in spec.subcommands {
                    let sid = entries.len();
                    // Leaked once at start-up: full names live as long as the table.
                    let full: &'static str = Box::leak(format!("{}|{}", spec.name, sub.name).into_boxed_str());
                    entries.push(Entry::new(sub, full, sid));
                    entries[id].subs.push(sid);
                }
            }
        }
        let renames = RENAMES.get().map_or(&[][..], |r| &r[..]);
        for (from, to) in renames {
            let Some(id) = by_name.remove(from.as_bytes()) else { continue };
            if !to.is_empty() {
                // Leaked once at start-up, as the subcommands' full names.
                by_name.insert(Box::leak(to.clone().into_bytes().into_boxed_slice()), id);
            }
        }
        Table { entries, by_name, renamed: !renames.is_empty() }
    })
}

/// Records that the client must wait (or, inside MULTI/EXEC, replies the timeout value now).
/// `in_exec` is the immediate reply inside MULTI/EXEC, `timeout_reply` the one sent when the
/// timeout passes (Redis uses a null bulk for the former and a null array for the latter on
/// BLMOVE/BRPOPLPUSH).
pub fn block(
    ctx: &mut Ctx,
    argv: &[&[u8]],
    keys: &[&[u8]],
    deadline: Option<u64>,
    in_exec: Reply,
    timeout_reply: Reply,
) -> CmdResult {
    if ctx.sess.in_exec {
        return Ok(in_exec);
    }
    ctx.sess.block = Some(crate::server::blocking::BlockRequest {
        db: ctx.sess.db,
        keys: crate::protocol::owned(keys),
        deadline,
        timeout_reply,
        argv: crate::protocol::owned(argv),
        wait_offset: None,
    });
    Ok(Reply::NoReply)
}

/// Parses a blocking timeout (seconds, fractions allowed) into an absolute deadline.
pub fn block_deadline(srv: &ServerState, arg: &[u8]) -> Result<Option<u64>, CmdError> {
    // Redis reads a long double (strtold): 1e400 and 1e-400 are numbers there.
    let secs = crate::util::numfmt::parse_f64(arg)
        .or_else(|| crate::util::longdouble::LongDouble::parse(arg).map(|v| v.approx_f64()))
        .ok_or_else(|| CmdError::msg("timeout is not a float or out of range"))?;
    // Redis rounds up to whole milliseconds; a value past i64 milliseconds (1e300, inf)
    // converts to LLONG_MIN there, hence "negative"; 1e-400 rounds up to 1 ms.
    let ms = (secs * 1000.0).ceil();
    if !(0.0..i64::MAX as f64).contains(&ms) {
        return Err(CmdError::msg("timeout is negative"));
    }
    let ms = ms as u64;
    Ok((ms > 0).then(|| srv.now_ms.saturating_add(ms)))
}

/// Handler for container commands (CONFIG, CLIENT, ...) whose work is done by subcommands.
pub fn container(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::NoReply)
}

/// Finds a subcommand row by name (case-insensitive).
pub fn find_sub(spec: &'static CommandSpec, name: &[u8]) -> Option<&'static CommandSpec> {
    spec.subcommands.iter().find(|s| s.name.as_bytes().eq_ignore_ascii_case(name))
}

/// Builds the reply of a `XXX HELP` subcommand: the header line then each help line.
pub fn help_reply(cmd: &str, lines: &[&str]) -> Reply {
    let mut out = Vec::with_capacity(lines.len() + 3);
    out.push(Reply::StatusOwned(format!("{cmd} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:")));
    for l in lines {
        out.push(Reply::StatusOwned((*l).to_string()));
    }
    out.push(Reply::StatusOwned("HELP".into()));
    out.push(Reply::StatusOwned("    Prints this help.".into()));
    Reply::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn table_invariants() {
        let mut names = HashSet::new();
        for fam in families() {
            for spec in fam {
                assert!(names.insert(spec.name), "duplicate command {}", spec.name);
                check(spec, spec.name);
                for sub in spec.subcommands {
                    check(sub, &format!("{}|{}", spec.name, sub.name));
                }
            }
        }
        assert!(table().get(b"GeT").is_some());
    }

    /// Scripts cannot run scripts: the Lua engine's `redis.call` hands a raw pointer to the
    /// running script's host and relies on never being re-entered (scripting::engine's one
    /// unsafe block), which holds only while every command that runs a script is NOSCRIPT.
    #[test]
    fn commands_that_run_scripts_are_noscript() {
        for name in ["eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"] {
            let entry = table().get(name.as_bytes()).expect(name);
            assert!(entry.spec.has(flags::NOSCRIPT), "{name} must carry NOSCRIPT");
        }
        // Every row whose handler is a script runner is among them.
        let runners = [
            table().get(b"eval").map(|e| e.spec.handler as usize),
            table().get(b"fcall").map(|e| e.spec.handler as usize),
        ];
        for fam in families() {
            for spec in fam {
                if runners.contains(&Some(spec.handler as usize)) {
                    assert!(spec.has(flags::NOSCRIPT), "{} runs scripts without NOSCRIPT", spec.name);
                }
            }
        }
    }

    fn check(spec: &CommandSpec, full: &str) {
        assert_eq!(spec.name, spec.name.to_lowercase(), "{full}: name must be lower-case");
        assert!(spec.arity != 0, "{full}: arity 0");
        assert!(!(spec.has(flags::WRITE) && spec.has(flags::READONLY)), "{full}: WRITE and READONLY are exclusive");
        let k = spec.keys;
        if k.first > 0 {
            assert!(k.step > 0, "{full}: key step");
            let min_argc = spec.arity.unsigned_abs() as i32;
            assert!(k.first < min_argc || spec.arity < 0, "{full}: first key beyond arity");
            if k.last > 0 {
                assert!(k.last >= k.first, "{full}: last key before first");
            }
        }
        assert!(!spec.summary.is_empty(), "{full}: missing summary");
        assert!(!spec.since.is_empty(), "{full}: missing since");
    }
}
