//! Dispatch: from a decoded argv to a reply in the client's output buffer.
//!
//! The order of checks is Redis 7.0's `processCommand`: existence (with the unknown-subcommand
//! variant for container commands), arity, authentication, then MULTI queueing. Any rejection
//! inside MULTI flags the transaction so EXEC aborts. [`call`] runs a handler and does the
//! bookkeeping every command needs: stats, slowlog, MONITOR feed, WATCH signals, propagation.
//! The server reaches this module only through [`Dispatch`], its [`Executor`].

use bytes::Bytes;

use super::{CmdError, Ctx, Entry, flags, table, traits};
use crate::protocol::{Reply, encode};
use crate::server::state::SlowlogEntry;
use crate::server::{Executor, ServerState, Session};
use crate::util::{unix_ms, unix_us};

/// The command layer as the server reaches it (installed in [`ServerState`] at start-up).
pub struct Dispatch;

/// The one instance the server is given.
pub static DISPATCH: Dispatch = Dispatch;

impl Executor for Dispatch {
    fn execute(&self, st: &mut ServerState, sess: &mut Session, argv: &[&[u8]]) -> Reply {
        execute(st, sess, argv)
    }

    fn retry(&self, st: &mut ServerState, sess: &mut Session, argv: &[&[u8]]) -> Reply {
        match resolve(argv) {
            Ok(entry) => call(st, sess, entry, argv),
            Err((e, _)) => Reply::Error(e.to_string()),
        }
    }

    fn stat_slot(&self, argv: &[&[u8]]) -> Option<usize> {
        resolve(argv).ok().map(|e| e.id)
    }

    fn knows(&self, name: &[u8]) -> bool {
        table().get(name).is_some()
    }

    fn acl_catalog(&self) -> &'static crate::acl::Catalog {
        super::acl::catalog()
    }

    fn metrics(&self, st: &mut ServerState) -> String {
        super::metrics::render(st)
    }
}

/// Resolves argv to a table entry, applying Redis's existence and arity rules. A failed
/// arity check also names the entry, for the rejected-calls statistic.
pub fn resolve(argv: &[&[u8]]) -> Result<&'static Entry, (CmdError, Option<&'static Entry>)> {
    let mut no_hint = u32::MAX;
    resolve_hinted(argv, &mut no_hint)
}

/// [`resolve`] starting from the client's last command (see [`crate::commands::Table::get_hinted`]).
fn resolve_hinted(argv: &[&[u8]], hint: &mut u32) -> Result<&'static Entry, (CmdError, Option<&'static Entry>)> {
    let name = &argv[0];
    let t = table();
    let Some(base) = t.get_hinted(name, hint) else {
        let mut args = String::new();
        for a in &argv[1..] {
            if args.len() >= 128 {
                break;
            }
            let room = 128 - args.len();
            let s = String::from_utf8_lossy(a);
            let s: String = s.chars().take(room).collect();
            args.push_str(&format!("'{s}' "));
        }
        let shown: String = String::from_utf8_lossy(name).chars().take(128).collect();
        return Err((CmdError::UnknownCommand(shown, args), None));
    };
    let entry = if argv.len() >= 2 && !base.subs.is_empty() {
        match t.sub(base, argv[1]) {
            Some(sub) => sub,
            None => {
                let shown: String = String::from_utf8_lossy(argv[1]).chars().take(128).collect();
                let upper = String::from_utf8_lossy(name).to_uppercase();
                return Err((CmdError::UnknownSubcommand(shown, upper), None));
            }
        }
    } else {
        base
    };
    if !entry.spec.arity_ok(argv.len()) {
        return Err((CmdError::WrongArity(entry.full.to_string()), Some(entry)));
    }
    Ok(entry)
}

/// Checks and runs (or queues) one command. Returns the reply to send.
pub fn execute(srv: &mut ServerState, sess: &mut Session, argv: &[&[u8]]) -> Reply {
    let reply = execute_checked(srv, sess, argv);
    if sess.replica && !matches!(reply, Reply::NoReply) {
        replica_got_a_reply(sess, argv, &reply, srv.now_ms);
    }
    reply
}

/// A replica's link carries the write stream only: a command of the replica's that would
/// be answered (a misbehaving replica, or a client that sent SYNC by mistake) is logged
/// and the replica dropped, as Redis 7.0 does (an error is logged as critical first).
fn replica_got_a_reply(sess: &mut Session, argv: &[&[u8]], reply: &Reply, now_ms: u64) {
    let name = resolve(argv).map_or("<unknown>", |e| e.full);
    if let Reply::Error(e) = reply {
        tracing::warn!(
            "== CRITICAL == This master is sending an error to its replica: '{e}' after processing the command '{name}'"
        );
    }
    tracing::warn!("Replica generated a reply to command '{name}', disconnecting it: {}", sess.info_line(now_ms));
    sess.close_asap = true;
    sess.close_after_reply = true;
}

fn execute_checked(srv: &mut ServerState, sess: &mut Session, argv: &[&[u8]]) -> Reply {
    sess.last_interaction_ms = srv.now_ms;
    if srv.tracking.clients > 0 && srv.hot.tracking_max_keys > 0 {
        srv.enforce_tracking_limit_for(sess);
    }
    let entry = match resolve_hinted(argv, &mut sess.cmd_hint) {
        Ok(e) => e,
        Err((e, entry)) => {
            sess.asking = false;
            // A known command with the wrong arity is refused like any other (an EXEC of
            // the wrong arity discards the transaction with EXECABORT).
            return match entry {
                Some(entry) => refuse(srv, sess, entry, e),
                None => reject(srv, sess, e),
            };
        }
    };
    // ASKING holds for the next command only, or through a transaction (Redis's
    // resetClient).
    let asking = sess.asking;
    if asking && sess.multi.is_none() && entry.full != "asking" {
        sess.asking = false;
    }
    // DEBUG is off unless enable-debug-command allows it, checked before authentication as
    // in Redis.
    if entry.is(traits::DEBUG) && !srv.config.allows("enable-debug-command", sess.is_local()) {
        return refuse(srv, sess, entry, CmdError::msg(DEBUG_NOT_ALLOWED));
    }
    if entry.is(traits::PROTECTED) && !srv.config.allows("enable-module-command", sess.is_local()) {
        return refuse(srv, sess, entry, CmdError::msg(MODULE_NOT_ALLOWED));
    }
    if !sess.authenticated && srv.hot.auth_required && !entry.spec.has(flags::NO_AUTH) {
        return refuse(srv, sess, entry, CmdError::NoAuth);
    }
    // What the client's ACL user may run, on which keys and channels.
    let context = if sess.multi.is_some() { "multi" } else { "toplevel" };
    if let Err(e) = super::acl::check_command(srv, sess, entry, argv, context) {
        return refuse(srv, sess, entry, e);
    }
    // A replica's link is no way into the keyspace (Redis: this would let a replica evade
    // a client pause, from which replicas are exempt).
    if sess.replica && entry.spec.has(flags::WRITE | flags::READONLY | flags::MAY_REPLICATE) {
        return refuse(srv, sess, entry, CmdError::msg("Replica can't interact with the keyspace"));
    }
    // Cluster mode: a keyed command (or an EXEC of some) is served only for a slot this
    // node owns, all its keys in one slot, the cluster up (Redis's getNodeByQuery).
    if srv.cluster.is_some()
        && !sess.from_master
        && !sess.replaying
        && let Err(e) = cluster_route(srv, sess, entry, argv, asking)
    {
        srv.stats.command(entry.id).rejected_calls += 1;
        // A redirected EXEC discards the transaction with the plain error (no EXECABORT).
        if entry.is(traits::EXEC) {
            discard_refused(srv, sess, &e);
            return Reply::Error(e.to_string());
        }
        return reject(srv, sess, e);
    }
    // Clients served while a log or an image loads get -LOADING, before -BUSY.
    if (srv.replaying_aof
        || match srv.load_state() {
            Some(false) => true,
            Some(true) => entry.spec.has(flags::NO_ASYNC_LOADING),
            None => false,
        })
        && !sess.replaying
        && !entry.spec.has(flags::LOADING)
    {
        return refuse(srv, sess, entry, CmdError::loading());
    }
    let busy = srv.running_script.as_ref().filter(|r| r.busy()).map(|r| r.busy_error());
    let cmd_flags = if entry.is(traits::SCRIPT) {
        super::scripting::effective_flags(srv, entry.full, argv, entry.spec.flags)
    } else {
        entry.spec.flags
    };
    // EXEC is judged by what it would run (Redis's mstate.cmd_flags): a write, a command
    // that may use memory or one refused on a stale replica among those queued, scripts by
    // the flags they declare.
    let (queued, queued_all_stale) = if entry.is(traits::EXEC) { queued_flags(srv, sess) } else { (0, true) };
    let judged = cmd_flags | (queued & (flags::WRITE | flags::DENYOOM));
    srv.oom_before_command = false;
    if busy.is_none() && srv.hot.eviction.maxmemory > 0 {
        let rejects = out_of_memory_rejects(srv, sess, entry, judged);
        srv.invalidate_before_command(sess);
        if rejects {
            return refuse(srv, sess, entry, CmdError::Oom);
        }
    }
    // A read-only replica takes writes from its master only.
    if judged & flags::WRITE != 0
        && srv.master.is_some()
        && !sess.from_master
        && !sess.replaying
        && srv.config.bool("replica-read-only")
    {
        return refuse(srv, sess, entry, CmdError::Raw("READONLY You can't write against a read only replica.".into()));
    }
    if (judged & flags::WRITE != 0 || entry.is(traits::PING))
        && let Some(e) = disk_error(srv, judged & flags::WRITE != 0)
    {
        return refuse(srv, sess, entry, e);
    }
    // min-replicas-to-write: too few replicas acknowledged within min-replicas-max-lag
    // refuses writes, an EXEC that queued one included.
    if srv.too_few_good_replicas(Some(sess)) && judged & flags::WRITE != 0 {
        return refuse(srv, sess, entry, CmdError::Raw("NOREPLICAS Not enough good replicas to write.".into()));
    }
    // A replica whose link is down serves only STALE commands under
    // replica-serve-stale-data no (an EXEC is judged by what it queued).
    if srv.serving_stale() && !sess.from_master && (cmd_flags & flags::STALE == 0 || !queued_all_stale) {
        return refuse(srv, sess, entry, CmdError::Raw(super::scripting::MASTERDOWN.into()));
    }
    if let Some(text) = busy
        && !entry.spec.has(flags::ALLOW_BUSY)
    {
        return refuse(srv, sess, entry, CmdError::Raw(text));
    }
    if sess.resp == 2 && sess.subs.active() && !allowed_while_subscribed(entry.full) {
        srv.stats.command(entry.id).rejected_calls += 1;
        return reject(
            srv,
            sess,
            CmdError::msg(format!(
                "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
                entry.full
            )),
        );
    }
    // CLIENT PAUSE WRITE holds back whatever may change the dataset or the replication
    // stream (an EXEC that queued such a command too) until the pause ends.
    if srv.pause.is_some_and(|(_, until)| srv.now_ms < until)
        && !sess.in_script
        && sess.id != 0
        && may_replicate(srv, sess, entry, cmd_flags)
    {
        sess.postponed = Some(crate::protocol::owned(argv));
        srv.postponed_clients += 1;
        return Reply::NoReply;
    }
    if sess.multi.is_some() && entry.spec.has(flags::NO_MULTI) {
        return refuse(srv, sess, entry, CmdError::msg("Command not allowed inside a transaction"));
    }
    if sess.multi.is_some() && !entry.spec.has(flags::TX_CONTROL) {
        if let Some(q) = sess.multi.as_mut() {
            q.push(crate::protocol::owned(argv));
            sess.note_queued(argv);
        }
        return Reply::Status("QUEUED");
    }
    call(srv, sess, entry, argv)
}

/// The cluster redirection of a command, if any: its keys' slots (an EXEC's queued
/// commands' keys) against this node's view.
fn cluster_route(
    srv: &ServerState,
    sess: &Session,
    entry: &'static Entry,
    argv: &[&[u8]],
    asking: bool,
) -> Result<(), CmdError> {
    let mut write = false;
    let queued: Vec<Vec<&[u8]>>;
    let mut cmds: Vec<(&'static Entry, &[&[u8]])> = Vec::new();
    if entry.is(traits::EXEC) {
        let Some(q) = sess.multi.as_ref() else { return Ok(()) };
        queued = q.iter().map(|a| crate::protocol::views(a)).collect();
        cmds.extend(queued.iter().filter_map(|v| resolve(v).ok().map(|e| (e, v.as_slice()))));
    } else {
        cmds.push((entry, argv));
    }
    for (e, argv) in &cmds {
        let flags = if e.is(traits::SCRIPT) {
            super::scripting::effective_flags(srv, e.full, argv, e.spec.flags)
        } else {
            e.spec.flags
        };
        write |= flags & flags::WRITE != 0;
    }
    cluster_verdict(srv, entry, &cmds, write, asking, sess.readonly).map_err(|r| CmdError::Raw(r.message()))
}

/// Redis's getNodeByQuery for `cmds` (one command, or an EXEC's queue, `lead` being the
/// command run): whether this node serves their keys, else where they go. Scripts ask it
/// for each command they call.
pub(super) fn cluster_verdict(
    srv: &ServerState,
    lead: &'static Entry,
    cmds: &[(&'static Entry, &[&[u8]])],
    write: bool,
    asking: bool,
    readonly: bool,
) -> Result<(), crate::cluster::Redirect> {
    let Some(c) = srv.cluster.as_deref() else { return Ok(()) };
    let keys = cmds.iter().flat_map(|(e, argv)| {
        e.spec
            .key_positions(argv)
            .into_iter()
            .filter_map(|p| argv.get(p).copied())
            .map(|k| (crate::cluster::key_slot(k), k))
    });
    // Sharded Pub/Sub has its own rule when the cluster is down, and channels, not keys.
    let shard_pubsub = matches!(lead.full, "ssubscribe" | "sunsubscribe" | "spublish");
    let q = crate::cluster::Query {
        write: write && !shard_pubsub,
        reads_when_down: srv.config.bool(if shard_pubsub {
            "cluster-allow-pubsubshard-when-down"
        } else {
            "cluster-allow-reads-when-down"
        }),
        asking: asking || lead.spec.flags & flags::ASKING != 0,
        migrate: lead.full == "migrate",
        shard_pubsub,
        readonly,
    };
    c.route(keys, &q, |k| srv.dbs[0].view(k).is_some())
}

/// Redis's is_may_replicate_command: WRITE or MAY_REPLICATE (scripts judged by their flags),
/// or an EXEC that queued one.
fn may_replicate(srv: &ServerState, sess: &Session, entry: &'static Entry, cmd_flags: u32) -> bool {
    const MASK: u32 = flags::WRITE | flags::MAY_REPLICATE;
    if cmd_flags & MASK != 0 {
        return true;
    }
    entry.is(traits::EXEC)
        && sess.multi.as_ref().is_some_and(|q| {
            q.iter().any(|argv| {
                resolve(&crate::protocol::views(argv)).is_ok_and(|e| {
                    super::scripting::effective_flags(srv, e.full, &crate::protocol::views(argv), e.spec.flags) & MASK
                        != 0
                })
            })
        })
}

const MODULE_NOT_ALLOWED: &str = "MODULE command not allowed. If the enable-module-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";
const DEBUG_NOT_ALLOWED: &str = "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.";

/// The flags of the commands a transaction queued, together, and whether all are STALE.
fn queued_flags(srv: &ServerState, sess: &Session) -> (u32, bool) {
    let (mut any, mut all_stale) = (0, true);
    for argv in sess.multi.iter().flatten() {
        let v = crate::protocol::views(argv);
        if let Ok(e) = resolve(&v) {
            let f = if e.is(traits::SCRIPT) {
                super::scripting::effective_flags(srv, e.full, &v, e.spec.flags)
            } else {
                e.spec.flags
            };
            any |= f;
            all_stale &= f & flags::STALE != 0;
        }
    }
    (any, all_stale)
}

/// Redis's writeCommandsDeniedByDiskError: the last BGSAVE failed (with save points and
/// stop-writes-on-bgsave-error), or, for writes, the AOF cannot be written.
pub fn disk_error(srv: &ServerState, write: bool) -> Option<CmdError> {
    if !srv.save_stats.last_ok
        && srv.config.bool("stop-writes-on-bgsave-error")
        && !srv.config.str("save").trim().is_empty()
    {
        return Some(CmdError::Raw(MISCONF.into()));
    }
    let err = srv.aof.as_ref().and_then(|a| a.write_error.as_ref()).filter(|_| write)?;
    Some(CmdError::Raw(format!("MISCONF Errors writing to the AOF file: {err}")))
}

const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// What a RESP2 client may run while subscribed (its connection only carries messages then).
fn allowed_while_subscribed(name: &str) -> bool {
    matches!(
        name,
        "ping"
            | "subscribe"
            | "ssubscribe"
            | "unsubscribe"
            | "sunsubscribe"
            | "psubscribe"
            | "punsubscribe"
            | "quit"
            | "reset"
    )
}

/// Evicts as needed (Redis's performEvictions before every command) and says whether this
/// command must be refused: when nothing more can be evicted, commands that may grow memory
/// (DENYOOM, or an EXEC queueing one) and anything queued inside MULTI are refused; reads,
/// deletes, DISCARD and EXEC of a harmless transaction still run.
fn out_of_memory_rejects(srv: &mut ServerState, sess: &Session, entry: &'static Entry, cmd_flags: u32) -> bool {
    if srv.perform_evictions() != crate::keyspace::evict::Outcome::Fail {
        return false;
    }
    // A script that runs anyway checks this before its first write (Redis's
    // pre_command_oom_state).
    srv.oom_before_command = true;
    let name = entry.full;
    let denyoom = cmd_flags & flags::DENYOOM != 0;
    denyoom || (sess.multi.is_some() && !matches!(name, "exec" | "discard" | "quit" | "reset"))
}

/// Refuses a resolved command (Redis's rejectCommand): counted against it, and an EXEC
/// refused this way discards the transaction with EXECABORT.
fn refuse(srv: &mut ServerState, sess: &mut Session, entry: &'static Entry, e: CmdError) -> Reply {
    srv.stats.command(entry.id).rejected_calls += 1;
    // Redis's rejectCommand: a refused EXEC discards the transaction, if any, and says so.
    if entry.is(traits::EXEC) {
        discard_refused(srv, sess, &e);
        // Redis formats its own refusals without a code (rejectCommandFormat) and keeps the
        // code of its shared errors (-NOAUTH, -OOM...): ERR is the former.
        let text = e.to_string();
        let text = text.trim_start_matches('-');
        let text = text.strip_prefix("ERR ").unwrap_or(text);
        return Reply::Error(format!("EXECABORT Transaction discarded because of: {text}"));
    }
    reject(srv, sess, e)
}

/// A refused EXEC's transaction goes, with its watches; the error is counted.
fn discard_refused(srv: &mut ServerState, sess: &mut Session, e: &CmdError) {
    sess.multi = None;
    sess.multi_error = false;
    srv.unwatch_all(sess);
    count_error(srv, e);
}

fn reject(srv: &mut ServerState, sess: &mut Session, e: CmdError) -> Reply {
    if sess.multi.is_some() {
        sess.multi_error = true;
    }
    count_error(srv, &e);
    Reply::Error(e.to_string())
}

pub fn count_error(srv: &mut ServerState, e: &CmdError) {
    srv.stats.total_error_replies += 1;
    *srv.stats.errors.entry(e.code()).or_default() += 1;
}

/// Runs a resolved command: the handler plus the bookkeeping around it.
pub fn call(srv: &mut ServerState, sess: &mut Session, entry: &'static Entry, argv: &[&[u8]]) -> Reply {
    let spec = entry.spec;
    // MONITOR sees a command once it ran (so EXEC follows what it executed), except a script,
    // which it sees before the commands the script runs (Redis feeds EVAL/FCALL up front).
    let monitored = !srv.monitors.is_empty() && sess.serving.is_none();
    let script = entry.is(traits::SCRIPT);
    if monitored && script {
        feed_monitors(srv, sess, argv);
    }
    sess.last_cmd = entry.full;
    let writing = spec.has(flags::WRITE);
    let replica_client = srv.master.is_some().then_some(sess.from_master);
    if srv.replica_client != replica_client {
        srv.replica_client = replica_client;
        for db in &mut srv.dbs {
            db.set_replica_client(replica_client == Some(false), replica_client == Some(true));
        }
    }
    if srv.lookups_writing != writing {
        srv.lookups_writing = writing;
        for db in &mut srv.dbs {
            db.set_writing(writing);
        }
    }
    let start = srv.cmd_clock;
    // Changes made outside any command (loading, a full sync) count, but are not this one's.
    srv.take_changes();
    let dirty_before = srv.dirty;
    srv.call_depth += 1;
    let result = (spec.handler)(&mut Ctx { srv, sess }, argv);
    srv.call_depth -= 1;
    srv.take_changes();
    if monitored && !script && !spec.has(flags::SKIP_MONITOR) && !spec.has(flags::ADMIN) {
        feed_monitors(srv, sess, &redacted(entry.full, argv));
    }
    let log_instead = srv.log_instead.take();
    let end = srv.ticker.now();
    srv.cmd_clock = end;
    let usec = srv.ticker.micros(start, end);
    srv.flag_dirty_watchers(sess);
    srv.publish_events(sess);
    let forced = std::mem::take(&mut srv.force_propagation);
    if srv.propagating() {
        let keys = srv.take_modified_keys();
        srv.invalidate_keys(sess, &keys);
        // Only a command that added changes is propagated (one that reset the counter, like
        // DEBUG LOADAOF, is not: replaying it would load the log from within the log).
        // Admin commands that are no writes (DEBUG POPULATE, DEBUG RELOAD) change the
        // keyspace without being propagated, as in Redis (which does not count them).
        let replicated = !spec.has(flags::ADMIN) || spec.has(flags::WRITE);
        let before = srv.repl.offset;
        if (srv.dirty > dirty_before && replicated || forced) && result.is_ok() {
            srv.aof_propagate(sess.db, argv, log_instead);
        } else {
            srv.aof_propagate_dels_in_command();
        }
        // A top-level command's effects go out together (EXEC and scripts: all of theirs).
        if srv.call_depth == 0 {
            srv.propagate_pending();
        }
        if srv.repl.offset != before {
            sess.woff = srv.repl.offset;
        }
    } else {
        srv.invalidate_modified(sess);
    }
    // Read-only script commands track what their script read (see scripting::run_in).
    if sess.tracking.is_some() && spec.has(flags::READONLY) && !spec.has(flags::PUBSUB) && !entry.is(traits::SCRIPT_RO)
    {
        let keys = spec.key_positions(argv).into_iter().map(|i| Bytes::copy_from_slice(argv[i]));
        srv.track_read(sess, keys);
    }
    srv.stats.total_commands_processed += 1;
    let tracking_latency = srv.hot.latency_tracking;
    // A command that blocked is counted when it is finally served or times out (Redis's
    // updateStatsOnUnblock), not for each attempt.
    let blocked = sess.block.is_some();
    let stat = srv.stats.command(entry.id);
    if !blocked {
        stat.calls += 1;
        stat.usec += usec;
    }
    if tracking_latency {
        stat.latency.record(usec.saturating_mul(1000));
    }
    if srv.hot.latency_threshold_ms > 0 {
        let event = if spec.has(flags::FAST) { "fast-command" } else { "command" };
        srv.latency.sample_if_needed(srv.hot.latency_threshold_ms, event, usec / 1000, unix_ms() / 1000);
    }
    let threshold = srv.hot.slowlog_slower_than;
    if threshold >= 0 && usec as i64 >= threshold && !spec.has(flags::SKIP_SLOWLOG) {
        slowlog_push(srv, sess, &redacted(entry.full, argv), usec);
    }
    if srv.extra_failures != 0 {
        srv.stats.command(entry.id).failed_calls += std::mem::take(&mut srv.extra_failures);
    }
    match result {
        Ok(r) => r,
        Err(e) => {
            srv.stats.command(entry.id).failed_calls += 1;
            // An error a script replies that a command of it already replied (and counted) is
            // not counted again (Redis's ERR_REPLY_FLAG_NO_STATS_UPDATE).
            if !matches!(e, CmdError::Counted(_)) {
                count_error(srv, &e);
            }
            Reply::Error(e.to_string())
        }
    }
}

/// The arguments SLOWLOG and MONITOR show: secrets replaced by "(redacted)", where Redis 7.0's
/// commands redact them (passwords of AUTH, HELLO AUTH and MIGRATE AUTH/AUTH2, every rule of
/// ACL SETUSER, the values of sensitive configs in CONFIG SET).
fn redacted<'a>(full: &str, argv: &'a [&'a [u8]]) -> std::borrow::Cow<'a, [&'a [u8]]> {
    let mut hide: Vec<usize> = Vec::new();
    match full {
        "auth" if argv.len() <= 3 => hide.extend(1..argv.len()),
        "acl|setuser" => hide.extend(2..argv.len()),
        "hello" => {
            let mut j = 2;
            while j < argv.len() {
                if argv[j].eq_ignore_ascii_case(b"auth") && j + 2 < argv.len() {
                    hide.extend([j + 1, j + 2]);
                    j += 3;
                } else if argv[j].eq_ignore_ascii_case(b"setname") {
                    j += 2;
                } else {
                    break;
                }
            }
        }
        "migrate" => {
            let mut j = 6;
            while j < argv.len() {
                if argv[j].eq_ignore_ascii_case(b"auth") {
                    hide.push(j + 1);
                    j += 2;
                } else if argv[j].eq_ignore_ascii_case(b"auth2") {
                    hide.extend([j + 1, j + 2]);
                    j += 3;
                } else if argv[j].eq_ignore_ascii_case(b"keys") {
                    break;
                } else {
                    j += 1;
                }
            }
        }
        "config|set" => {
            for (i, pair) in argv.get(2..).unwrap_or_default().chunks(2).enumerate() {
                let name = String::from_utf8_lossy(pair[0]).to_ascii_lowercase();
                if matches!(name.as_str(), "masterauth" | "masteruser" | "requirepass") {
                    hide.push(2 + i * 2 + 1);
                }
            }
        }
        _ => {}
    }
    hide.retain(|&i| i < argv.len());
    if hide.is_empty() {
        return std::borrow::Cow::Borrowed(argv);
    }
    let mut out = argv.to_vec();
    for i in hide {
        out[i] = b"(redacted)";
    }
    std::borrow::Cow::Owned(out)
}

fn slowlog_push(srv: &mut ServerState, sess: &Session, argv: &[&[u8]], usec: u64) {
    // Like Redis: at most 32 arguments, each at most 128 bytes, so the log stays bounded.
    let mut args: Vec<Bytes> = Vec::new();
    for (i, a) in argv.iter().enumerate() {
        if i == 31 && argv.len() > 32 {
            args.push(Bytes::from(format!("... ({} more arguments)", argv.len() - 31)));
            break;
        }
        if a.len() > 128 {
            let mut s = a[..128].to_vec();
            s.extend_from_slice(format!("... ({} more bytes)", a.len() - 128).as_bytes());
            args.push(Bytes::from(s));
        } else {
            args.push(Bytes::copy_from_slice(a));
        }
    }
    let entry = SlowlogEntry {
        id: srv.slowlog_next_id,
        time_s: srv.now_ms / 1000,
        duration_us: usec,
        args,
        addr: sess.addr.clone(),
        name: sess.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default(),
    };
    srv.slowlog_next_id += 1;
    srv.slowlog.push_front(entry);
    let max = srv.config.int("slowlog-max-len").max(0) as usize;
    srv.slowlog.truncate(max);
}

fn feed_monitors(srv: &mut ServerState, sess: &Session, argv: &[&[u8]]) {
    let us = unix_us();
    let mut line = format!("{}.{:06} [{} {}]", us / 1_000_000, us % 1_000_000, sess.db, sess.addr);
    for a in argv {
        line.push(' ');
        line.push_str(&crate::util::repr(a));
    }
    let reply = Reply::StatusOwned(line);
    let ids: Vec<_> = srv.monitors.clone();
    for id in ids {
        if id == sess.id {
            continue;
        }
        if let Some(m) = srv.clients.get_mut(&id) {
            encode(&reply, m.resp, &mut m.out);
            srv.pending_writes.push(id);
        }
    }
}
