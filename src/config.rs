//! Configuration: the redis.conf parser, command-line overrides, and the parameter table behind
//! CONFIG GET/SET. One row per directive says its name, type, default and whether CONFIG SET may
//! change it; parsing, validation and error texts (copied from Redis 7.0's wording) come from the
//! row's type, so the file parser and CONFIG SET cannot disagree.

use std::path::Path;

use thiserror::Error;

use crate::protocol::resp::split_args;
use crate::util::glob::glob_match;

#[derive(Debug, Error)]
pub enum ConfigError {
    /// Redis's report of a bad line (the file, then the command line's directives, read as
    /// one text: see [`Config::load`]).
    #[error("Reading the configuration file, at line {line}\n>>> '{directive}'\n{reason}")]
    Directive { line: usize, directive: String, reason: String },
    #[error("cannot read config file '{file}': {err}")]
    Io { file: String, err: std::io::Error },
}

/// The type of a parameter decides how its value is parsed and printed.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Bool,
    Int {
        min: i64,
        max: i64,
    },
    Memory {
        min: i64,
        max: i64,
    },
    /// A memory amount over the whole unsigned 64-bit range (Redis's unsigned long long
    /// configs: maxmemory), kept in an i64's bits.
    MemoryU64,
    /// A memory amount or a percentage of maxmemory ("10%"), kept negative as in Redis.
    MemoryOrPercent,
    Enum(&'static [&'static str]),
    /// Any of these words, at least one (Redis's multi-argument enums): kept in this
    /// order, without repeats; "default" (the first) alone when nothing else is set.
    Flags(&'static [&'static str]),
    Str,
}

const SHUTDOWN_FLAGS: &[&str] = &["default", "save", "nosave", "now", "force"];

const POLICIES: &[&str] = &[
    "volatile-lru",
    "volatile-lfu",
    "volatile-random",
    "volatile-ttl",
    "allkeys-lru",
    "allkeys-lfu",
    "allkeys-random",
    "noeviction",
];
const LOGLEVELS: &[&str] = &["debug", "verbose", "notice", "warning"];
const FSYNC: &[&str] = &["everysec", "always", "no"];
const TLS_AUTH_CLIENTS: &[&str] = &["no", "yes", "optional"];
const ENDPOINT_TYPES: &[&str] = &["ip", "hostname", "unknown-endpoint"];
/// Who may use a protected action (DEBUG, MODULE, protected configs): nobody, everybody, or
/// clients on the loopback interface.
const PROTECTED_ACTION: &[&str] = &["no", "yes", "local"];
/// Configs CONFIG SET changes only where `enable-protected-configs` allows (Redis 7.0's
/// PROTECTED_CONFIG: they pick the files the server writes).
const PROTECTED_CONFIGS: &[&str] = &["dir", "dbfilename"];

#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Bool(bool),
    Int(i64),
    Str(String),
}

pub struct Param {
    pub name: &'static str,
    pub alias: Option<&'static str>,
    pub kind: Kind,
    pub default: &'static str,
    pub mutable: bool,
}

macro_rules! p {
    ($name:expr, $kind:expr, $default:expr) => {
        Param { name: $name, alias: None, kind: $kind, default: $default, mutable: true }
    };
    ($name:expr, $kind:expr, $default:expr, immutable) => {
        Param { name: $name, alias: None, kind: $kind, default: $default, mutable: false }
    };
}

macro_rules! alias {
    ($name:expr, $alias:expr, $kind:expr, $default:expr) => {
        Param { name: $name, alias: Some($alias), kind: $kind, default: $default, mutable: true }
    };
}

const I32: i64 = i32::MAX as i64;
const I32_MIN: i64 = i32::MIN as i64;
const U32: i64 = u32::MAX as i64;
const LL: i64 = i64::MAX;

/// Directives only an exact CONFIG GET shows (Redis's HIDDEN_CONFIG).
const HIDDEN: &[&str] = &[
    "rdb-key-save-delay",
    "key-load-delay",
    "loading-process-events-interval-bytes",
    "use-exit-on-panic",
    "watchdog-period",
];

/// Every directive Ember honours. `redis.conf.example` documents each of these.
pub static PARAMS: &[Param] = &[
    p!("bind", Kind::Str, "* -::*"),
    p!("port", Kind::Int { min: 0, max: 65535 }, "6379"),
    p!("metrics-port", Kind::Int { min: 0, max: 65535 }, "0"),
    p!("tls-port", Kind::Int { min: 0, max: 65535 }, "0"),
    p!("tls-cert-file", Kind::Str, ""),
    p!("tls-key-file", Kind::Str, ""),
    p!("tls-key-file-pass", Kind::Str, ""),
    p!("tls-client-cert-file", Kind::Str, ""),
    p!("tls-client-key-file", Kind::Str, ""),
    p!("tls-client-key-file-pass", Kind::Str, ""),
    p!("tls-dh-params-file", Kind::Str, ""),
    p!("tls-ca-cert-file", Kind::Str, ""),
    p!("tls-ca-cert-dir", Kind::Str, ""),
    p!("tls-auth-clients", Kind::Enum(TLS_AUTH_CLIENTS), "yes"),
    p!("tls-protocols", Kind::Str, ""),
    p!("tls-ciphers", Kind::Str, ""),
    p!("tls-ciphersuites", Kind::Str, ""),
    p!("tls-prefer-server-ciphers", Kind::Bool, "no"),
    p!("tls-session-caching", Kind::Bool, "yes"),
    p!("tls-session-cache-size", Kind::Int { min: 0, max: I32 }, "20480"),
    p!("tls-session-cache-timeout", Kind::Int { min: 0, max: I32 }, "300"),
    p!("tls-replication", Kind::Bool, "no"),
    p!("tls-cluster", Kind::Bool, "no"),
    p!("cluster-enabled", Kind::Bool, "no", immutable),
    p!("cluster-config-file", Kind::Str, "nodes.conf", immutable),
    p!("cluster-port", Kind::Int { min: 0, max: 65535 }, "0", immutable),
    p!("cluster-node-timeout", Kind::Int { min: 0, max: LL }, "15000"),
    p!("cluster-announce-ip", Kind::Str, ""),
    p!("cluster-announce-port", Kind::Int { min: 0, max: 65535 }, "0"),
    p!("cluster-announce-bus-port", Kind::Int { min: 0, max: 65535 }, "0"),
    p!("cluster-announce-tls-port", Kind::Int { min: 0, max: 65535 }, "0"),
    p!("cluster-announce-hostname", Kind::Str, ""),
    p!("cluster-require-full-coverage", Kind::Bool, "yes"),
    p!("cluster-allow-reads-when-down", Kind::Bool, "no"),
    p!("cluster-allow-pubsubshard-when-down", Kind::Bool, "yes"),
    alias!("cluster-replica-no-failover", "cluster-slave-no-failover", Kind::Bool, "no"),
    alias!("cluster-replica-validity-factor", "cluster-slave-validity-factor", Kind::Int { min: 0, max: I32 }, "10"),
    p!("cluster-migration-barrier", Kind::Int { min: 0, max: I32 }, "1"),
    p!("cluster-allow-replica-migration", Kind::Bool, "yes"),
    p!("cluster-link-sendbuf-limit", Kind::MemoryU64, "0"),
    p!("cluster-preferred-endpoint-type", Kind::Enum(ENDPOINT_TYPES), "ip"),
    p!("tcp-backlog", Kind::Int { min: 0, max: I32 }, "511", immutable),
    p!("timeout", Kind::Int { min: 0, max: I32 }, "0"),
    p!("tcp-keepalive", Kind::Int { min: 0, max: I32 }, "300"),
    p!("protected-mode", Kind::Bool, "yes"),
    p!("daemonize", Kind::Bool, "no", immutable),
    p!("pidfile", Kind::Str, "", immutable),
    p!("loglevel", Kind::Enum(LOGLEVELS), "notice"),
    p!("logfile", Kind::Str, "", immutable),
    p!("databases", Kind::Int { min: 1, max: I32 }, "16", immutable),
    p!("save", Kind::Str, "3600 1 300 100 60 10000"),
    p!("dbfilename", Kind::Str, "dump.rdb"),
    p!("rdbcompression", Kind::Bool, "yes"),
    p!("rdbchecksum", Kind::Bool, "yes", immutable),
    p!("stop-writes-on-bgsave-error", Kind::Bool, "yes"),
    p!("dir", Kind::Str, "."),
    p!("requirepass", Kind::Str, ""),
    p!("acllog-max-len", Kind::Int { min: 0, max: LL }, "128"),
    p!("acl-pubsub-default", Kind::Enum(&["allchannels", "resetchannels"]), "resetchannels"),
    p!("aclfile", Kind::Str, "", immutable),
    p!("maxclients", Kind::Int { min: 1, max: U32 }, "10000"),
    p!("maxmemory", Kind::MemoryU64, "0"),
    p!("maxmemory-clients", Kind::MemoryOrPercent, "0"),
    p!("maxmemory-policy", Kind::Enum(POLICIES), "noeviction"),
    p!("maxmemory-samples", Kind::Int { min: 1, max: I32 }, "5"),
    p!("maxmemory-eviction-tenacity", Kind::Int { min: 0, max: 100 }, "10"),
    p!("lfu-log-factor", Kind::Int { min: 0, max: I32 }, "10"),
    p!("lfu-decay-time", Kind::Int { min: 0, max: I32 }, "1"),
    p!("active-expire-effort", Kind::Int { min: 1, max: 10 }, "1"),
    p!("hz", Kind::Int { min: 0, max: I32 }, "10"),
    alias!("hash-max-listpack-entries", "hash-max-ziplist-entries", Kind::Int { min: 0, max: LL }, "512"),
    alias!("hash-max-listpack-value", "hash-max-ziplist-value", Kind::Memory { min: 0, max: LL }, "64"),
    p!("hll-sparse-max-bytes", Kind::Memory { min: 0, max: LL }, "3000"),
    p!("set-max-intset-entries", Kind::Int { min: 0, max: LL }, "512"),
    alias!("list-max-listpack-size", "list-max-ziplist-size", Kind::Int { min: I32_MIN, max: I32 }, "-2"),
    p!("list-compress-depth", Kind::Int { min: 0, max: I32 }, "0"),
    alias!("zset-max-listpack-entries", "zset-max-ziplist-entries", Kind::Int { min: 0, max: LL }, "128"),
    alias!("zset-max-listpack-value", "zset-max-ziplist-value", Kind::Memory { min: 0, max: LL }, "64"),
    p!("stream-node-max-bytes", Kind::Memory { min: 0, max: LL }, "4096"),
    p!("stream-node-max-entries", Kind::Int { min: 0, max: LL }, "100"),
    p!("appendonly", Kind::Bool, "no"),
    p!("appendfsync", Kind::Enum(FSYNC), "everysec"),
    p!("appendfilename", Kind::Str, "appendonly.aof", immutable),
    p!("appenddirname", Kind::Str, "appendonlydir", immutable),
    p!("aof-load-truncated", Kind::Bool, "yes"),
    p!("aof-use-rdb-preamble", Kind::Bool, "yes"),
    p!("auto-aof-rewrite-percentage", Kind::Int { min: 0, max: I32 }, "100"),
    p!("auto-aof-rewrite-min-size", Kind::Memory { min: 0, max: LL }, "67108864"),
    p!("proto-max-bulk-len", Kind::Memory { min: 1024 * 1024, max: LL }, "536870912"),
    p!("client-query-buffer-limit", Kind::Memory { min: 1024 * 1024, max: LL }, "1073741824"),
    p!("slowlog-log-slower-than", Kind::Int { min: -1, max: LL }, "10000"),
    p!("slowlog-max-len", Kind::Int { min: 0, max: LL }, "128"),
    p!("latency-monitor-threshold", Kind::Int { min: 0, max: LL }, "0"),
    p!("notify-keyspace-events", Kind::Str, ""),
    p!("client-output-buffer-limit", Kind::Str, OBUF_DEFAULT),
    p!("tracking-table-max-keys", Kind::Int { min: 0, max: LL }, "1000000"),
    p!("lazyfree-lazy-user-del", Kind::Bool, "no"),
    p!("lazyfree-lazy-user-flush", Kind::Bool, "no"),
    p!("jemalloc-bg-thread", Kind::Bool, "yes"),
    p!("io-threads", Kind::Int { min: 1, max: 128 }, "1", immutable),
    alias!("busy-reply-threshold", "lua-time-limit", Kind::Int { min: 0, max: LL }, "5000"),
    p!("enable-protected-configs", Kind::Enum(PROTECTED_ACTION), "no", immutable),
    p!("enable-debug-command", Kind::Enum(PROTECTED_ACTION), "no", immutable),
    p!("enable-module-command", Kind::Enum(PROTECTED_ACTION), "no", immutable),
    // Accepted with Redis 7.0's types, bounds and defaults so that a redis.conf (Debian's stock
    // one included) and CONFIG SET of these work; they change nothing in Ember (yet): its memory
    // allocator, forkless persistence and single process make most of them moot, and the
    // replication ones wait for replication.
    p!("activedefrag", Kind::Bool, "no"),
    p!("active-defrag-cycle-max", Kind::Int { min: 1, max: 99 }, "25"),
    p!("active-defrag-cycle-min", Kind::Int { min: 1, max: 99 }, "1"),
    p!("active-defrag-ignore-bytes", Kind::Memory { min: 1, max: LL }, "104857600"),
    p!("active-defrag-max-scan-fields", Kind::Int { min: 1, max: LL }, "1000"),
    p!("active-defrag-threshold-lower", Kind::Int { min: 0, max: 1000 }, "10"),
    p!("active-defrag-threshold-upper", Kind::Int { min: 0, max: 1000 }, "100"),
    p!("activerehashing", Kind::Bool, "yes"),
    p!("always-show-logo", Kind::Bool, "no", immutable),
    p!("aof-disable-auto-gc", Kind::Bool, "no"),
    p!("aof-rewrite-incremental-fsync", Kind::Bool, "yes"),
    p!("aof-timestamp-enabled", Kind::Bool, "no"),
    p!("crash-log-enabled", Kind::Bool, "yes"),
    p!("crash-memcheck-enabled", Kind::Bool, "yes"),
    p!("disable-thp", Kind::Bool, "yes", immutable),
    p!("dynamic-hz", Kind::Bool, "yes"),
    p!("ignore-warnings", Kind::Str, ""),
    p!("latency-tracking", Kind::Bool, "yes"),
    p!("latency-tracking-info-percentiles", Kind::Str, "50 99 99.9"),
    p!("lazyfree-lazy-eviction", Kind::Bool, "no"),
    p!("lazyfree-lazy-expire", Kind::Bool, "no"),
    p!("lazyfree-lazy-server-del", Kind::Bool, "no"),
    p!("no-appendfsync-on-rewrite", Kind::Bool, "no"),
    p!("oom-score-adj", Kind::Enum(&["no", "yes", "relative", "absolute"]), "no"),
    p!("oom-score-adj-values", Kind::Str, "0 200 800"),
    p!("proc-title-template", Kind::Str, "{title} {listen-addr} {server-mode}"),
    p!("propagation-error-behavior", Kind::Enum(&["ignore", "panic", "panic-on-replicas"]), "ignore"),
    p!("rdb-del-sync-files", Kind::Bool, "no"),
    p!("rdb-save-incremental-fsync", Kind::Bool, "yes"),
    p!("sanitize-dump-payload", Kind::Enum(&["no", "yes", "clients"]), "no"),
    p!("set-proc-title", Kind::Bool, "yes", immutable),
    p!("shutdown-on-sigint", Kind::Flags(SHUTDOWN_FLAGS), "default"),
    p!("shutdown-on-sigterm", Kind::Flags(SHUTDOWN_FLAGS), "default"),
    p!("shutdown-timeout", Kind::Int { min: 0, max: I32 }, "10"),
    p!("supervised", Kind::Enum(&["upstart", "systemd", "auto", "no"]), "no", immutable),
    p!("syslog-enabled", Kind::Bool, "no", immutable),
    p!("syslog-ident", Kind::Str, "redis", immutable),
    p!(
        "syslog-facility",
        Kind::Enum(&["user", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"]),
        "local0",
        immutable
    ),
    p!("masterauth", Kind::Str, ""),
    p!("masteruser", Kind::Str, ""),
    alias!("min-replicas-max-lag", "min-slaves-max-lag", Kind::Int { min: 0, max: I32 }, "10"),
    alias!("min-replicas-to-write", "min-slaves-to-write", Kind::Int { min: 0, max: I32 }, "0"),
    p!("repl-backlog-size", Kind::Memory { min: 1, max: LL }, "1048576"),
    p!("repl-backlog-ttl", Kind::Int { min: 0, max: LL }, "3600"),
    p!("repl-disable-tcp-nodelay", Kind::Bool, "no"),
    p!("repl-diskless-load", Kind::Enum(&["disabled", "on-empty-db", "swapdb"]), "disabled"),
    p!("repl-diskless-sync", Kind::Bool, "yes"),
    p!("repl-diskless-sync-delay", Kind::Int { min: 0, max: I32 }, "5"),
    p!("repl-diskless-sync-max-replicas", Kind::Int { min: 0, max: I32 }, "0"),
    alias!("repl-ping-replica-period", "repl-ping-slave-period", Kind::Int { min: 1, max: I32 }, "10"),
    p!("bind-source-addr", Kind::Str, ""),
    // "host port" of the master (REPLICAOF keeps it current); set at start-up only.
    Param { name: "replicaof", alias: Some("slaveof"), kind: Kind::Str, default: "", mutable: false },
    p!("repl-timeout", Kind::Int { min: 1, max: I32 }, "60"),
    alias!("replica-announce-ip", "slave-announce-ip", Kind::Str, ""),
    alias!("replica-announce-port", "slave-announce-port", Kind::Int { min: 0, max: 65535 }, "0"),
    p!("replica-announced", Kind::Bool, "yes"),
    p!("replica-ignore-disk-write-errors", Kind::Bool, "no"),
    alias!("replica-ignore-maxmemory", "slave-ignore-maxmemory", Kind::Bool, "yes"),
    alias!("replica-lazy-flush", "slave-lazy-flush", Kind::Bool, "no"),
    alias!("replica-priority", "slave-priority", Kind::Int { min: 0, max: I32 }, "100"),
    alias!("replica-read-only", "slave-read-only", Kind::Bool, "yes"),
    alias!("replica-serve-stale-data", "slave-serve-stale-data", Kind::Bool, "yes"),
    // Ember serves TCP only for now: a Unix socket path is accepted and reported, and no
    // socket is created (clients must use TCP).
    p!("unixsocket", Kind::Str, "", immutable),
    // Test knobs Redis keeps (its suite slows saves and loads with them): microseconds
    // spent per key written by BGSAVE and per key loaded.
    p!("rdb-key-save-delay", Kind::Int { min: I32_MIN, max: I32 }, "0"),
    p!("key-load-delay", Kind::Int { min: I32_MIN, max: I32 }, "0"),
    // Redis's software watchdog (milliseconds, 0 off): see crash.rs.
    p!("watchdog-period", Kind::Int { min: 0, max: I32 }, "0"),
    // How many bytes a load parses between serving clients.
    p!("loading-process-events-interval-bytes", Kind::Int { min: 1024, max: I32 }, "2097152"),
    // Redis's suite starts servers with it (exit instead of abort on a crash): accepted.
    p!("use-exit-on-panic", Kind::Bool, "no"),
    // Octal, as in Redis (read where the socket is bound).
    p!("unixsocketperm", Kind::Str, "0", immutable),
    // Start-up settings of Redis's that Ember accepts and shows: it has no I/O threads, pins
    // no threads to CPUs and marks no sockets.
    p!("io-threads-do-reads", Kind::Bool, "no", immutable),
    p!("socket-mark-id", Kind::Int { min: 0, max: U32 }, "0", immutable),
    p!("server_cpulist", Kind::Str, "", immutable),
    p!("bio_cpulist", Kind::Str, "", immutable),
    p!("aof_rewrite_cpulist", Kind::Str, "", immutable),
    p!("bgsave_cpulist", Kind::Str, "", immutable),
];

const OBUF_DEFAULT: &str = "normal 0 0 0 slave 268435456 67108864 60 pubsub 33554432 8388608 60";

/// One class of `client-output-buffer-limit`: a client is disconnected when its pending output
/// reaches `hard` bytes, or stays at or over `soft` bytes for more than `soft_secs` seconds.
/// Zero disables a limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObufLimit {
    pub hard: u64,
    pub soft: u64,
    pub soft_secs: u64,
}

/// Limits per client class, indexed by these constants.
pub const OBUF_NORMAL: usize = 0;
pub const OBUF_REPLICA: usize = 1;
pub const OBUF_PUBSUB: usize = 2;

/// Parses `class hard soft seconds ...` over `base`: classes not named keep their limits, as
/// with Redis's CONFIG SET.
pub fn parse_obuf_limits(v: &str, mut base: [ObufLimit; 3]) -> Result<[ObufLimit; 3], String> {
    let words: Vec<&str> = multi_args(v);
    if !words.len().is_multiple_of(4) {
        return Err("Wrong number of arguments in buffer limit configuration.".into());
    }
    for w in words.chunks(4) {
        let class = match w[0].to_ascii_lowercase().as_str() {
            "normal" => OBUF_NORMAL,
            "slave" | "replica" => OBUF_REPLICA,
            "pubsub" => OBUF_PUBSUB,
            _ => return Err("Invalid client class specified in buffer limit configuration.".into()),
        };
        let bad = || "Error in hard, soft or soft_seconds setting in buffer limit configuration.".to_string();
        let hard = parse_memory(w[1]).ok_or_else(bad)?;
        let soft = parse_memory(w[2]).ok_or_else(bad)?;
        let secs = c_strtoll(w[3]).filter(|n| *n >= 0).ok_or_else(bad)?;
        base[class] = ObufLimit { hard, soft, soft_secs: secs as u64 };
    }
    Ok(base)
}

fn obuf_limits_string(l: &[ObufLimit; 3]) -> String {
    let mut parts = Vec::new();
    for (name, i) in [("normal", OBUF_NORMAL), ("slave", OBUF_REPLICA), ("pubsub", OBUF_PUBSUB)] {
        parts.push(format!("{name} {} {} {}", l[i].hard, l[i].soft, l[i].soft_secs));
    }
    parts.join(" ")
}

fn find(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name.eq_ignore_ascii_case(name) || p.alias.is_some_and(|a| a.eq_ignore_ascii_case(name)))
}

/// Parses a memory amount as Redis's memtoull does: digits (none reads as 0) and a unit
/// (`1k` is 1000, `1kb` 1024, up to `gb`), no sign; an amount past 64 bits saturates and the
/// unit's product wraps, as in C.
pub fn parse_memory(s: &str) -> Option<u64> {
    let digits_end = s.bytes().position(|c| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(digits_end);
    let mul: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1_000_000,
        "mb" => 1024 * 1024,
        "g" => 1_000_000_000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    if num.len() >= 128 {
        return None;
    }
    let n = if num.is_empty() { 0 } else { num.parse::<u64>().unwrap_or(u64::MAX) };
    Some(n.wrapping_mul(mul))
}

/// A `rename-command` line: the command `from` answers to `to` instead (none: removed).
#[derive(Debug, Clone, PartialEq)]
pub struct Rename {
    pub from: String,
    pub to: String,
    /// Where it was read, for an error about it (Redis's report of a bad line).
    pub line: usize,
    pub directive: String,
}

impl Rename {
    /// The error Redis reports for this line.
    pub fn error(&self, reason: &str) -> ConfigError {
        ConfigError::Directive { line: self.line, directive: self.directive.clone(), reason: reason.to_string() }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    values: Vec<Val>,
    /// Where the config was loaded from (CONFIG REWRITE writes back there).
    pub file: Option<String>,
    /// `user <name> <rules...>` lines, in order (ACL users made at start-up).
    pub users: Vec<Vec<String>>,
    /// `rename-command <name> <new name>` lines, in order: checked against the command
    /// table when the server starts (see [`Rename`]).
    pub renames: Vec<Rename>,
    /// A `save` line was read: later ones add their points instead of replacing the defaults.
    save_read: bool,
}

impl Default for Config {
    fn default() -> Self {
        let mut values = Vec::with_capacity(PARAMS.len());
        for p in PARAMS {
            // Defaults are literals of the table, so they always parse.
            values.push(parse_value(p, p.default).unwrap_or(Val::Str(p.default.to_string())));
        }
        Config { values, file: None, users: Vec::new(), renames: Vec::new(), save_read: false }
    }
}

/// oom-score-adj-values: three scores (master, replica, background child), each within
/// [-2000, 2000] as Redis checks them.
pub fn parse_oom_values(v: &str) -> Result<[i32; 3], String> {
    let words: Vec<&str> = multi_args(v);
    let [m, r, c] = words[..] else {
        return Err("wrong number of arguments".into());
    };
    let mut out = [0; 3];
    for (slot, w) in out.iter_mut().zip([m, r, c]) {
        // strtoll's forms: "+5", "010" and "-0" are numbers too.
        *slot = c_strtoll(w)
            .filter(|n| (-2000..=2000).contains(n))
            .map(|n| n as i32)
            .ok_or_else(|| "Invalid oom-score-adj-values, elements must be between -2000 and 2000.".to_string())?;
    }
    Ok(out)
}

/// The arguments of a multi-argument directive's value: Redis splits CONFIG SET's value at
/// each single space (two spaces make an empty argument); an empty value has none.
fn multi_args(v: &str) -> Vec<&str> {
    if v.is_empty() { Vec::new() } else { v.split(' ').collect() }
}

/// C's strtoll over a whole argument: leading white space, a sign, digits (saturating);
/// an empty string is 0 (strtoll stops at once, at the terminator).
fn c_strtoll(s: &str) -> Option<i64> {
    if s.is_empty() {
        return Some(0);
    }
    let t = s.trim_start_matches(|c: char| c.is_ascii_whitespace());
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut n: i128 = 0;
    for c in digits.bytes() {
        n = (n * 10 + i128::from(c - b'0')).min(i128::from(i64::MAX) + 1);
    }
    let n = if neg { -n } else { n };
    Some(n.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
}

/// Redis's setConfigSaveOption: pairs of seconds (at least 1) and changes (at least 0),
/// each read by strtoll; printed back as "%jd %d" (changes kept in a C int).
fn normalize_save(v: &str) -> Option<String> {
    let args = multi_args(v);
    if !args.len().is_multiple_of(2) {
        return None;
    }
    let mut out = Vec::new();
    for pair in args.chunks(2) {
        let (secs, changes) = (c_strtoll(pair[0])?, c_strtoll(pair[1])?);
        if secs < 1 || changes < 0 {
            return None;
        }
        out.push(format!("{secs} {}", changes as i32));
    }
    Some(out.join(" "))
}

fn parse_value(p: &Param, v: &str) -> Result<Val, String> {
    match p.kind {
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            // Ember has no active defragmenter; Redis built without one refuses it so.
            "yes" if p.name == "activedefrag" => Err("Active defragmentation cannot be enabled: it requires a Redis server compiled with a modified Jemalloc like the one shipped by default with the Redis source distribution".into()),
            "yes" => Ok(Val::Bool(true)),
            "no" => Ok(Val::Bool(false)),
            _ => Err("argument must be 'yes' or 'no'".into()),
        },
        Kind::Int { min, max } => {
            // string2ll: no sign but '-', no leading zeros, no spaces.
            let n = crate::util::numfmt::parse_i64(v.as_bytes())
                .ok_or_else(|| "argument couldn't be parsed into an integer".to_string())?;
            if n < min || n > max {
                return Err(format!("argument must be between {min} and {max} inclusive"));
            }
            Ok(Val::Int(n))
        }
        Kind::Memory { min, max } => {
            let n = parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())?;
            if n < min as u64 || n > max as u64 {
                return Err(format!("argument must be between {min} and {max} inclusive"));
            }
            // Redis keeps at least 16 KB of replication backlog whatever is asked.
            let n = if p.name == "repl-backlog-size" { n.max(16 * 1024) } else { n };
            Ok(Val::Int(n as i64))
        }
        Kind::MemoryU64 => {
            let n = parse_memory(v).ok_or_else(|| "argument must be a memory value".to_string())?;
            Ok(Val::Int(n as i64))
        }
        Kind::MemoryOrPercent => {
            // Redis's order: a memory amount (read as signed: one past 2^63 is a percentage),
            // then `n%` stored negative.
            let n = match parse_memory(v) {
                Some(n) => n as i64,
                None => v
                    .strip_suffix('%')
                    .filter(|d| !d.is_empty())
                    .and_then(|d| crate::util::numfmt::parse_i64(d.as_bytes()))
                    .filter(|n| *n >= 0)
                    .map(|n| -n)
                    .ok_or_else(|| "argument must be a memory or percent value".to_string())?,
            };
            if n < -100 {
                return Err("percentage argument must be less or equal to 100".into());
            }
            Ok(Val::Int(n))
        }
        Kind::Enum(opts) => {
            let lv = v.to_ascii_lowercase();
            // Redis names a value by its first name: "relative" reads back as "yes".
            if p.name == "oom-score-adj" && lv == "relative" {
                return Ok(Val::Str("yes".into()));
            }
            if opts.contains(&lv.as_str()) {
                Ok(Val::Str(lv))
            } else {
                Err(format!("argument(s) must be one of the following: {}", opts.join(", ")))
            }
        }
        Kind::Flags(opts) => {
            let words: Vec<String> = multi_args(v).into_iter().map(str::to_ascii_lowercase).collect();
            if words.is_empty() || words.iter().any(|w| !opts.contains(&w.as_str())) {
                return Err(format!("argument(s) must be one of the following: {}", opts.join(", ")));
            }
            if p.name.starts_with("shutdown-on-") && words.iter().any(|w| w == "save") && words.iter().any(|w| w == "nosave")
            {
                return Err("shutdown options SAVE and NOSAVE can't be used simultaneously".into());
            }
            let set: Vec<&str> = opts[1..].iter().copied().filter(|o| words.iter().any(|w| w == o)).collect();
            Ok(Val::Str(if set.is_empty() { opts[0].to_string() } else { set.join(" ") }))
        }
        Kind::Str => {
            match p.name {
                "save" => {
                    return normalize_save(v).map(Val::Str).ok_or_else(|| "Invalid save parameters".to_string());
                }
                "notify-keyspace-events" => {
                    let flags = crate::keyspace::notify::parse(v)
                        .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())?;
                    return Ok(Val::Str(crate::keyspace::notify::to_string(flags)));
                }
                "client-output-buffer-limit" => {
                    parse_obuf_limits(v, Default::default())?;
                }
                "proc-title-template" if !valid_proc_title(v) => {
                    return Err("template format is invalid or contains unknown variables".into());
                }
                "oom-score-adj-values" => {
                    let values = parse_oom_values(v)?;
                    return Ok(Val::Str(values.map(|n| n.to_string()).join(" ")));
                }
                // Numbers within [0, 100], kept as Redis prints them back ("0.0" is "0").
                "latency-tracking-info-percentiles" => {
                    let mut out = Vec::new();
                    // Split at each single space, as Redis splits a multi-argument value (an
                    // empty value is no percentiles); each a string2d number.
                    for w in v.split(' ').filter(|_| !v.is_empty()) {
                        let n = crate::util::numfmt::parse_f64(w.as_bytes())
                            .ok_or_else(|| "Invalid latency-tracking-info-percentiles parameters".to_string())?;
                        if !(0.0..=100.0).contains(&n) {
                            return Err(
                                "latency-tracking-info-percentiles parameters should sit between [0.0,100.0]".into()
                            );
                        }
                        // C's "%f" with the trailing zeros (and a bare point) trimmed.
                        let f = format!("{n:.6}");
                        out.push(f.trim_end_matches('0').trim_end_matches('.').to_string());
                    }
                    return Ok(Val::Str(out.join(" ")));
                }
                _ => {}
            }
            Ok(Val::Str(v.to_string()))
        }
    }
}

/// Redis's validateProcTitleTemplate: `{name}` variables it knows (`{{` a literal brace),
/// expanded with an empty title, must leave something besides spaces. (Server mode and the
/// Unix socket are taken as empty here, as on a plain server without one.)
fn valid_proc_title(t: &str) -> bool {
    let mut out = String::new();
    let mut rest = t;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if after.is_empty() {
            return false;
        }
        if let Some(r) = after.strip_prefix('{') {
            out.push('{');
            rest = r;
            continue;
        }
        let Some(end) = after.find('}') else { return false };
        match &after[..end] {
            "title" | "server-mode" | "unixsocket" => {}
            "listen-addr" | "config-file" | "port" | "tls-port" => out.push('x'),
            _ => return false,
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    !out.trim_matches(' ').is_empty()
}

/// `save` as (seconds, changes) pairs; empty disables snapshots.
pub fn parse_save(v: &str) -> Option<Vec<(u64, u64)>> {
    let parts: Vec<&str> = v.split_whitespace().collect();
    if !parts.len().is_multiple_of(2) {
        return None;
    }
    parts.chunks(2).map(|c| Some((c[0].parse().ok()?, c[1].parse().ok()?))).collect()
}

impl Config {
    /// Position of a canonical name in PARAMS, through a map built once (handlers read a few
    /// parameters per command).
    fn idx(name: &str) -> Option<usize> {
        static INDEX: std::sync::OnceLock<std::collections::HashMap<&'static str, usize>> = std::sync::OnceLock::new();
        INDEX.get_or_init(|| PARAMS.iter().enumerate().map(|(i, p)| (p.name, i)).collect()).get(name).copied()
    }

    fn val(&self, name: &str) -> &Val {
        // Names passed here are literals of this crate that exist in PARAMS (checked by a unit test).
        // An alias (lua-time-limit, *-ziplist-*) reads its directive's value too.
        Self::idx(name)
            .or_else(|| find(name).and_then(|p| Self::idx(p.name)))
            .and_then(|i| self.values.get(i))
            .unwrap_or(&Val::Int(0))
    }

    pub fn int(&self, name: &str) -> i64 {
        match self.val(name) {
            Val::Int(n) => *n,
            Val::Bool(b) => *b as i64,
            Val::Str(_) => 0,
        }
    }

    pub fn bool(&self, name: &str) -> bool {
        matches!(self.val(name), Val::Bool(true))
    }

    /// Whether a protected action governed by `name` (`enable-debug-command`, ...) is allowed
    /// for a client, given whether it connected over loopback.
    pub fn allows(&self, name: &str, local: bool) -> bool {
        match self.str(name) {
            "yes" => true,
            "local" => local,
            _ => false,
        }
    }

    pub fn is_protected(name: &str) -> bool {
        Self::canonical(name).is_some_and(|c| PROTECTED_CONFIGS.contains(&c))
    }

    /// Directives CONFIG SET refuses while a data set loads (Redis's DENY_LOADING_CONFIG):
    /// they would change where or how the data being loaded is kept.
    pub fn denied_while_loading(name: &str) -> bool {
        Self::canonical(name).is_some_and(|c| ["appendonly", "repl-diskless-load", "dir"].contains(&c))
    }

    pub fn str(&self, name: &str) -> &str {
        match self.val(name) {
            Val::Str(s) => s,
            _ => "",
        }
    }

    /// `client-output-buffer-limit` per class (OBUF_NORMAL, OBUF_REPLICA, OBUF_PUBSUB).
    pub fn obuf_limits(&self) -> [ObufLimit; 3] {
        parse_obuf_limits(self.str("client-output-buffer-limit"), Default::default()).unwrap_or_default()
    }

    /// `notify-keyspace-events` as class flags.
    pub fn notify_flags(&self) -> u32 {
        crate::keyspace::notify::parse(self.str("notify-keyspace-events")).unwrap_or(0)
    }

    pub fn port(&self) -> u16 {
        self.int("port") as u16
    }

    pub fn databases(&self) -> usize {
        self.int("databases").max(1) as usize
    }

    /// The value as CONFIG GET prints it.
    pub fn get(&self, name: &str) -> Option<String> {
        let p = find(name)?;
        let i = Self::idx(p.name)?;
        Some(match &self.values[i] {
            Val::Bool(b) => if *b { "yes" } else { "no" }.to_string(),
            Val::Int(n) if *n < 0 && matches!(p.kind, Kind::MemoryOrPercent) => format!("{}%", -n),
            Val::Int(n) if matches!(p.kind, Kind::MemoryU64) => (*n as u64).to_string(),
            Val::Int(n) => n.to_string(),
            Val::Str(s) if p.name == "dir" => {
                std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_else(|_| s.clone())
            }
            Val::Str(s) => s.clone(),
        })
    }

    /// Sets a parameter from its textual value. `at_startup` allows immutable parameters.
    pub fn set(&mut self, name: &str, value: &str, at_startup: bool) -> Result<(), SetError> {
        let p = find(name).ok_or(SetError::Unknown)?;
        if !p.mutable && !at_startup {
            return Err(SetError::Invalid("can't set immutable config".into()));
        }
        let mut v = parse_value(p, value).map_err(SetError::Invalid)?;
        if p.name == "hz" {
            // Redis clamps hz to 1..=500 instead of refusing.
            if let Val::Int(n) = v {
                v = Val::Int(n.clamp(1, 500));
            }
        }
        if p.name == "client-output-buffer-limit" {
            // Classes not named keep their current limits.
            let merged = parse_obuf_limits(value, self.obuf_limits()).map_err(SetError::Invalid)?;
            v = Val::Str(obuf_limits_string(&merged));
        }
        if p.name == "cluster-announce-hostname" {
            announced_hostname_ok(value).map_err(|e| SetError::Invalid(e.into()))?;
        }
        if p.name == "dir" && !at_startup {
            std::env::set_current_dir(value).map_err(|e| SetError::Invalid(e.to_string()))?;
        }
        let i = Self::idx(p.name).ok_or(SetError::Unknown)?;
        self.values[i] = v;
        Ok(())
    }

    /// Names matching a CONFIG GET pattern, as Redis replies them: a pattern without glob
    /// characters is looked up directly and echoed as given; a glob matches canonical names
    /// and aliases alike.
    pub fn matching(pattern: &[u8]) -> Vec<(String, &'static str)> {
        let text = String::from_utf8_lossy(pattern).into_owned();
        if !pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
            return find(&text).map(|p| vec![(text.clone(), p.name)]).unwrap_or_default();
        }
        let mut out = Vec::new();
        for p in PARAMS {
            // Test knobs Redis hides from patterns (CONFIG GET * leaves them out).
            if HIDDEN.contains(&p.name) {
                continue;
            }
            if glob_match(pattern, p.name.as_bytes(), true) {
                out.push((p.name.to_string(), p.name));
            }
            if let Some(a) = p.alias
                && glob_match(pattern, a.as_bytes(), true)
            {
                out.push((a.to_string(), p.name));
            }
        }
        out
    }

    pub fn canonical(name: &str) -> Option<&'static str> {
        find(name).map(|p| p.name)
    }

    /// Whether CONFIG SET may change the directive.
    pub fn is_mutable(name: &str) -> bool {
        find(name).is_some_and(|p| p.mutable)
    }

    /// Applies one directive line (already split into words).
    fn apply_directive(&mut self, words: &[String]) -> Result<(), String> {
        let Some((name, args)) = words.split_first() else {
            return Ok(());
        };
        if name.eq_ignore_ascii_case("user") {
            if args.is_empty() {
                return Err("Bad directive or wrong number of arguments".into());
            }
            if self.users.iter().any(|u| u[0] == args[0]) {
                return Err("Duplicate user found. A user can only be defined once in config files".into());
            }
            self.users.push(args.to_vec());
            return Ok(());
        }
        let Some(p) = find(name) else {
            return Err("Bad directive or wrong number of arguments".into());
        };
        // `replicaof host port`: two words, a port Redis accepts.
        if p.name == "replicaof" {
            let [host, port] = args else {
                return Err("wrong number of arguments".into());
            };
            if host.eq_ignore_ascii_case("no") && port.eq_ignore_ascii_case("one") {
                return self.set(name, "", true).map_err(|_| "Invalid master port".to_string());
            }
            if port.parse::<u16>().is_err() {
                return Err("Invalid master port".into());
            }
            return self.set(name, &format!("{host} {port}"), true).map_err(|_| "Invalid master port".to_string());
        }
        // `save` takes its pairs as separate words; `save ""` disables it; repeated save lines add up.
        let value = if matches!(
            p.name,
            "save"
                | "bind"
                | "client-output-buffer-limit"
                | "oom-score-adj-values"
                | "latency-tracking-info-percentiles"
                | "shutdown-on-sigint"
                | "shutdown-on-sigterm"
        ) {
            args.join(" ")
        } else if args.len() == 1 {
            args[0].clone()
        } else {
            return Err("wrong number of arguments".into());
        };
        // The first `save` line (in the file or the arguments) replaces the default points,
        // later ones add theirs, `save ""` clears them all (Redis's special case).
        let value = if p.name == "save" && self.save_read && !value.trim().is_empty() {
            format!("{} {value}", self.str("save")).trim().to_string()
        } else {
            value
        };
        if p.name == "save" {
            self.save_read = true;
        }
        self.set(name, &value, true).map_err(|e| match e {
            SetError::Unknown => "Bad directive or wrong number of arguments".to_string(),
            SetError::Invalid(m) => m,
        })
    }

    /// Loads `text` (redis.conf format).
    pub fn load_str(&mut self, text: &str) -> Result<(), ConfigError> {
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: String| ConfigError::Directive { line: i + 1, directive: line.to_string(), reason };
            let words =
                split_args(line.as_bytes()).ok_or_else(|| err("Unbalanced quotes in configuration line".into()))?;
            let words: Vec<String> = words.into_iter().map(|w| String::from_utf8_lossy(&w).into_owned()).collect();
            if words.first().is_some_and(|w| w.eq_ignore_ascii_case("rename-command")) {
                let [_, from, to] = &words[..] else {
                    return Err(err("Bad directive or wrong number of arguments".into()));
                };
                let directive = line.to_string();
                self.renames.push(Rename { from: from.clone(), to: to.clone(), line: i + 1, directive });
                continue;
            }
            self.apply_directive(&words).map_err(err)?;
        }
        Ok(())
    }

    /// Loads a config file (if any) and the command line's directives as redis-server does:
    /// the directives are folded into config lines appended to the file's text, and the
    /// whole is read as one (so an error names its line in that text).
    pub fn load(&mut self, path: Option<&Path>, args: &[String]) -> Result<(), ConfigError> {
        let mut text = String::new();
        if let Some(path) = path {
            let name = path.display().to_string();
            text = std::fs::read_to_string(path).map_err(|err| ConfigError::Io { file: name.clone(), err })?;
            // Absolute, as Redis keeps it: the server changes to `dir` before CONFIG REWRITE.
            self.file = Some(std::path::absolute(path).map_or(name, |p| p.display().to_string()));
        }
        if !args.is_empty() {
            text.push('\n');
            text.push_str(&fold_args(args));
        }
        self.load_str(&text)
    }

    /// Applies `--directive value ...` words from the command line (see [`fold_args`]).
    pub fn apply_args(&mut self, args: &[String]) -> Result<(), ConfigError> {
        self.load_str(&fold_args(args))
    }

    /// The text of a config file holding every non-default value (CONFIG REWRITE), or every
    /// value with `force_all` (DEBUG CONFIG-REWRITE-FORCE-ALL).
    pub fn rewrite_text(&self, force_all: bool) -> String {
        let mut out = String::from("# Generated by CONFIG REWRITE\n");
        let defaults = Config::default();
        for p in PARAMS {
            let v = self.get(p.name).unwrap_or_default();
            let default = defaults.get(p.name).unwrap_or_default();
            // No master is no line (as Redis rewrites it), not `replicaof ""`.
            if p.name == "replicaof" && v.is_empty() {
                continue;
            }
            if force_all || v != default || p.name == "dir" {
                // Directives of several arguments are written as Redis writes them
                // (`replicaof host port`, `save 3600 1 300 100`), one word each.
                let words: Vec<String> = if MULTI_WORD.contains(&p.name) && !v.is_empty() {
                    v.split_whitespace().map(quote).collect()
                } else {
                    vec![quote(&v)]
                };
                out.push_str(&format!("{} {}\n", p.name, words.join(" ")));
            }
        }
        for u in &self.users {
            let words: Vec<String> = u.iter().map(|w| quote(w)).collect();
            out.push_str(&format!("user {}\n", words.join(" ")));
        }
        // Renames apply at start-up only: a rewritten file keeps them for the next one.
        for r in &self.renames {
            out.push_str(&format!("rename-command {} {}\n", quote(&r.from), quote(&r.to)));
        }
        out
    }
}

pub enum SetError {
    Unknown,
    Invalid(String),
}

/// redis-server's command line as config lines: each `--name` starts a line, and the words
/// after it are its values, quoted. A word right after a bare `--name` is a value even if it
/// starts with `--` (`--port --bla`), one that holds a value too (`"--port 6380"`) is a whole
/// line, and a bare `--save` before another `--name` or at the end means `save ""`.
pub fn fold_args(args: &[String]) -> String {
    let mut out = String::new();
    // The last directive has a value (or needs none): a `--word` starts the next one.
    let mut has_value = true;
    for (j, a) in args.iter().enumerate() {
        if has_value && let Some(name) = a.strip_prefix("--") {
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(name);
            out.push(' ');
            let words = split_args(a.as_bytes()).map_or(1, |w| w.len());
            has_value = words != 1;
            if !has_value && a.eq_ignore_ascii_case("--save") {
                let next_is_name = args.get(j + 1).is_some_and(|n| n.starts_with("--"));
                if next_is_name || j + 1 == args.len() {
                    out.push_str("\"\"");
                    has_value = next_is_name;
                }
            }
        } else {
            out.push_str(&crate::util::repr(a.as_bytes()));
            out.push(' ');
            has_value = true;
        }
    }
    out
}

/// Directives whose value is several arguments.
const MULTI_WORD: &[&str] = &["replicaof", "save", "client-output-buffer-limit"];

/// Quotes a value for a config line when it is empty or has spaces or quotes.
fn quote(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\') {
        return s.to_string();
    }
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Redis's isValidAnnouncedHostname: under 256 bytes, letters, digits, hyphens and dots.
fn announced_hostname_ok(v: &str) -> Result<(), &'static str> {
    if v.len() >= 256 {
        return Err("Hostnames must be less than 256 characters");
    }
    if !v.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'.') {
        return Err("Hostnames may only contain alphanumeric characters, hyphens or dots");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announced_hostnames_are_validated_as_redis_does() {
        let mut c = Config::default();
        assert!(c.set("cluster-announce-hostname", "shard-1.example.com", false).is_ok());
        assert!(c.set("cluster-announce-hostname", "", false).is_ok());
        let long = "x".repeat(256);
        for bad in ["?.com", "a b", long.as_str()] {
            assert!(matches!(c.set("cluster-announce-hostname", bad, false), Err(SetError::Invalid(_))), "{bad}");
        }
        assert_eq!(c.str("cluster-announce-hostname"), "");
    }

    #[test]
    fn defaults_parse_and_names_resolve() {
        let c = Config::default();
        assert_eq!(c.port(), 6379);
        assert_eq!(c.databases(), 16);
        assert_eq!(c.int("proto-max-bulk-len"), 512 * 1024 * 1024);
        for p in PARAMS {
            assert!(parse_value(p, p.default).is_ok(), "default of {}", p.name);
        }
    }

    /// CONFIG REWRITE's file loads back: directives of several arguments are written as
    /// separate words (a quoted `replicaof "host port"` is one argument, which the file
    /// parser refuses, as Redis's does).
    #[test]
    fn rewritten_file_loads_back() {
        let mut c = Config::default();
        c.load_str("replicaof 127.0.0.1 7001\nsave 900 1 300 10\nmaxmemory-policy allkeys-lru\n").unwrap();
        let text = c.rewrite_text(false);
        assert!(text.contains("\nreplicaof 127.0.0.1 7001\n") && text.contains("\nsave 900 1 300 10\n"), "{text}");
        let mut back = Config::default();
        back.load_str(&text).unwrap();
        for name in ["replicaof", "save", "maxmemory-policy"] {
            assert_eq!(back.get(name), c.get(name), "{name}");
        }
    }

    #[test]
    fn file_and_args() {
        let mut c = Config::default();
        c.load_str("# comment\nport 7000\nsave 900 1\nsave \"\"\nmaxmemory 1mb\n").unwrap();
        assert_eq!(c.port(), 7000);
        assert_eq!(c.get("save").unwrap(), "");
        assert_eq!(c.int("maxmemory"), 1024 * 1024);
        c.apply_args(&[
            "--port".into(),
            "7001".into(),
            "--save".into(),
            "".into(),
            "--requirepass".into(),
            "x y".into(),
        ])
        .unwrap();
        assert_eq!(c.port(), 7001);
        assert_eq!(c.str("requirepass"), "x y");
        let e = c.load_str("port 1\nbogus 3\n").unwrap_err().to_string();
        assert_eq!(
            e,
            "Reading the configuration file, at line 2\n>>> 'bogus 3'\nBad directive or wrong number of arguments"
        );
        assert!(c.load_str("port abc").is_err());
    }

    #[test]
    fn rename_command_lines_are_kept_for_start_up_and_rewrites() {
        let mut c = Config::default();
        c.load_str("port 7000\nrename-command flushdb badger\nrename-command config \"\"\n").unwrap();
        assert_eq!(c.renames.len(), 2);
        assert_eq!((c.renames[0].from.as_str(), c.renames[0].to.as_str(), c.renames[0].line), ("flushdb", "badger", 2));
        assert_eq!(c.renames[1].to, "");
        let text = c.rewrite_text(false);
        assert!(text.contains("rename-command flushdb badger\n") && text.contains("rename-command config \"\"\n"));
        let e = c.load_str("rename-command get").unwrap_err().to_string();
        assert!(e.ends_with("Bad directive or wrong number of arguments"), "{e}");
    }

    #[test]
    fn command_lines_fold_as_redis_folds_them() {
        let fold = |a: &[&str]| fold_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(fold(&["--port", "6379", "6380"]), "port \"6379\" \"6380\" ");
        assert_eq!(fold(&["--port", "--loglevel", "verbose"]), "port \"--loglevel\" \"verbose\" ");
        assert_eq!(fold(&["--port", "--bla", "--loglevel", "verbose"]), "port \"--bla\" \nloglevel \"verbose\" ");
        assert_eq!(fold(&["--maxmemory 700mb", "--loglevel", "x"]), "maxmemory 700mb \nloglevel \"x\" ");
        assert_eq!(fold(&["--save", "--loglevel", "verbose"]), "save \"\"\nloglevel \"verbose\" ");
        assert_eq!(fold(&["--loglevel", "debug", "--save"]), "loglevel \"debug\" \nsave \"\"");
        assert_eq!(fold(&["loglevel", "verbose"]), "\"loglevel\" \"verbose\" ");
        let mut c = Config::default();
        let args: Vec<String> =
            ["--shutdown-on-sigint", "nosave", "force", "now", "--shutdown-on-sigterm", "nosave force"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        c.apply_args(&args).unwrap();
        assert_eq!(c.str("shutdown-on-sigterm"), "nosave force");
        let e = c.apply_args(&["--port".to_string(), "6379".to_string(), "6380".to_string()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "Reading the configuration file, at line 1\n>>> 'port \"6379\" \"6380\"'\nwrong number of arguments"
        );
    }
}

#[cfg(test)]
mod example_tests {
    use super::*;

    /// redis.conf.example documents every directive and loads cleanly.
    #[test]
    fn example_config_documents_every_directive() {
        let text = include_str!("../redis.conf.example");
        let mut c = Config::default();
        c.load_str(text).unwrap();
        for p in PARAMS {
            assert!(
                text.lines().any(|l| l.split_whitespace().next() == Some(p.name)),
                "redis.conf.example does not document {}",
                p.name
            );
        }
    }
}
