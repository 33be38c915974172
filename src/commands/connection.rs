//! Connection family: PING, ECHO, QUIT, RESET, SELECT, AUTH, HELLO and CLIENT.

use bytes::Bytes;

use super::args::{int, is, lossy};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, container, help_reply};
use crate::protocol::{OK, Reply};
use crate::server::client::ReplyMode;
use crate::server::state::PauseKind;

pub const SERVER_NAME: &str = "redis";
/// The Redis version Ember is compatible with (clients gate features on it).
pub use crate::util::REDIS_VERSION;

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("ping", -1, ping).flags(FAST).doc("connection", "Ping the server", "1.0.0", "O(1)"),
    CommandSpec::new("wait", 3, wait).flags(NOSCRIPT).doc(
        "connection",
        "Wait for the synchronous replication of all the write commands sent in the context of the current connection",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("echo", 2, echo).flags(LOADING | STALE | FAST).doc(
        "connection",
        "Echo the given string",
        "1.0.0",
        "O(1)",
    ),
    CommandSpec::new("quit", -1, quit)
        .flags(NOSCRIPT | ALLOW_BUSY | NO_AUTH | LOADING | STALE | FAST | TX_CONTROL)
        .doc("connection", "Close the connection", "1.0.0", "O(1)"),
    CommandSpec::new("reset", 1, reset)
        .flags(NOSCRIPT | LOADING | STALE | NO_AUTH | FAST | ALLOW_BUSY | TX_CONTROL)
        .doc("connection", "Reset the connection", "6.2.0", "O(1)"),
    CommandSpec::new("asking", 1, asking).flags(FAST).doc(
        "cluster",
        "Sent by cluster clients after an -ASK redirect",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("readonly", 1, readonly).flags(FAST | LOADING | STALE).doc(
        "cluster",
        "Enables read queries for a connection to a cluster replica node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("readwrite", 1, readwrite).flags(FAST | LOADING | STALE).doc(
        "cluster",
        "Disables read queries for a connection to a cluster replica node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("select", 2, select).flags(LOADING | STALE | FAST).doc(
        "connection",
        "Change the selected database for the current connection",
        "1.0.0",
        "O(1)",
    ),
    CommandSpec::new("auth", -2, auth).flags(NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY).doc(
        "connection",
        "Authenticate to the server",
        "1.0.0",
        "O(N) where N is the number of passwords defined for the user",
    ),
    CommandSpec::new("hello", -1, hello).flags(NOSCRIPT | LOADING | STALE | FAST | NO_AUTH | ALLOW_BUSY).doc(
        "connection",
        "Handshake with Redis",
        "6.0.0",
        "O(1)",
    ),
    CommandSpec::new("client", -2, container)
        .doc("connection", "A container for client connection commands", "2.4.0", "Depends on subcommand.")
        .subcommands(CLIENT_SUBCOMMANDS),
];

static CLIENT_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("tracking", -3, client_tracking).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Enable or disable server assisted client side caching support",
        "6.0.0",
        "O(1). Some options may introduce additional complexity.",
    ),
    CommandSpec::new("caching", 3, client_caching).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Instruct the server about tracking or not keys in the next request",
        "6.0.0",
        "O(1)",
    ),
    CommandSpec::new("getredir", 2, client_getredir).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Get tracking notifications redirection client ID if any",
        "6.0.0",
        "O(1)",
    ),
    CommandSpec::new("trackinginfo", 2, client_trackinginfo).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Return information about server assisted client side caching for the current connection",
        "6.2.0",
        "O(1)",
    ),
    CommandSpec::new("unblock", -3, client_unblock).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Unblock a client blocked in a blocking command from a different connection",
        "5.0.0",
        "O(log N) where N is the number of client connections",
    ),
    CommandSpec::new("id", 2, client_id).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Returns the client ID for the current connection",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("setname", 3, client_setname).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Set the current connection name",
        "2.6.9",
        "O(1)",
    ),
    CommandSpec::new("getname", 2, client_getname).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Get the current connection name",
        "2.6.9",
        "O(1)",
    ),
    CommandSpec::new("list", -2, client_list).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Get the list of client connections",
        "2.4.0",
        "O(N) where N is the number of client connections",
    ),
    CommandSpec::new("info", 2, client_info).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Returns information about the current client connection.",
        "6.2.0",
        "O(1)",
    ),
    CommandSpec::new("kill", -3, client_kill).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Kill the connection of a client",
        "2.4.0",
        "O(N) where N is the number of client connections",
    ),
    CommandSpec::new("pause", -3, client_pause).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Stop processing commands from clients for some time",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("unpause", 2, client_unpause).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Resume processing of clients that were paused",
        "6.2.0",
        "O(N) Where N is the number of paused clients",
    ),
    CommandSpec::new("reply", 3, client_reply).flags(NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Instruct the server whether to reply to commands",
        "3.2.0",
        "O(1)",
    ),
    CommandSpec::new("no-evict", 3, client_no_evict).flags(ADMIN | NOSCRIPT | LOADING | STALE).doc(
        "connection",
        "Set client eviction mode for the current connection",
        "7.0.0",
        "O(1)",
    ),
    CommandSpec::new("help", 2, client_help).flags(LOADING | STALE).doc(
        "connection",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
];

fn ping(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let plain = match argv.len() {
        1 => Reply::Status("PONG"),
        2 => Reply::Bulk(Bytes::copy_from_slice(argv[1])),
        _ => return Err(CmdError::WrongArity("ping".into())),
    };
    if !ctx.sess.subs.active() {
        return Ok(plain);
    }
    // A subscribed RESP2 connection only carries arrays: PING answers like a message there.
    let arg = argv.get(1).map(|a| Bytes::copy_from_slice(a)).unwrap_or_default();
    let message = Reply::Array(vec![Reply::bulk_str("pong"), Reply::Bulk(arg)]);
    Ok(Reply::Resp3Or(Box::new(plain), Box::new(message)))
}

fn echo(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Bulk(Bytes::copy_from_slice(argv[1])))
}

fn quit(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    ctx.sess.close_after_reply = true;
    Ok(OK)
}

/// ASKING, READONLY, READWRITE: cluster commands; a standalone server refuses them as Redis
/// does.
fn cluster_only(ctx: &mut Ctx) -> Result<(), CmdError> {
    if ctx.srv.cluster.is_none() {
        return Err(CmdError::msg("This instance has cluster support disabled"));
    }
    Ok(())
}

/// ASKING: the next command may be served for a slot this node is importing.
fn asking(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    cluster_only(ctx)?;
    ctx.sess.asking = true;
    Ok(OK)
}

/// READONLY: a replica serves this client's reads of its master's slots.
fn readonly(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    cluster_only(ctx)?;
    ctx.sess.readonly = true;
    Ok(OK)
}

fn readwrite(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    cluster_only(ctx)?;
    ctx.sess.readonly = false;
    Ok(OK)
}

fn reset(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let srv = &mut *ctx.srv;
    let sess = &mut *ctx.sess;
    sess.multi = None;
    sess.multi_error = false;
    srv.unwatch_all(sess);
    sess.db = 0;
    sess.resp = 2;
    sess.name = None;
    sess.reply_mode = ReplyMode::On;
    sess.no_evict = false;
    srv.client_evict_futile = None;
    if sess.monitor {
        sess.monitor = false;
        srv.monitors.retain(|m| *m != sess.id);
    }
    srv.pubsub.forget(&mut sess.subs, sess.id);
    srv.disable_tracking(sess);
    // Back to the default user, authenticated only if it needs no password.
    sess.user = b"default".to_vec();
    sess.authenticated = !srv.hot.auth_required;
    Ok(Reply::Status("RESET"))
}

fn select(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let n = super::args::int32(argv[1])?;
    if ctx.srv.cluster.is_some() && n != 0 {
        return Err(CmdError::msg("SELECT is not allowed in cluster mode"));
    }
    if n < 0 || n as usize >= ctx.srv.dbs.len() {
        return Err(CmdError::DbIndexOutOfRange);
    }
    ctx.sess.db = n as usize;
    Ok(OK)
}

fn auth(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(CmdError::Syntax);
    }
    if argv.len() == 2 && ctx.srv.acl.get(b"default").is_some_and(|u| u.nopass) {
        return Err(CmdError::msg(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    let (user, pass) = if argv.len() == 3 { (argv[1], &argv[2]) } else { (&b"default"[..], &argv[1]) };
    super::acl::authenticate(ctx, user, pass, argv[0])?;
    Ok(OK)
}

fn hello(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut ver = ctx.sess.resp as i64;
    let mut i = 1;
    if argv.len() >= 2 {
        ver = match crate::util::numfmt::parse_i64(argv[1]) {
            Some(v) => v,
            None => {
                return Err(CmdError::msg("Protocol version is not an integer or out of range"));
            }
        };
        i = 2;
        if !(2..=3).contains(&ver) {
            return Err(CmdError::Raw("NOPROTO unsupported protocol version".into()));
        }
    }
    let mut setname = None;
    while i < argv.len() {
        let more = argv.len() - i - 1;
        if is(argv[i], "auth") && more >= 2 {
            super::acl::authenticate(ctx, argv[i + 1], argv[i + 2], argv[0])?;
            i += 3;
        } else if is(argv[i], "setname") && more >= 1 {
            setname = Some(Bytes::copy_from_slice(argv[i + 1]));
            i += 2;
        } else {
            return Err(CmdError::msg(format!("Syntax error in HELLO option '{}'", lossy(argv[i]))));
        }
    }
    if !ctx.sess.authenticated {
        return Err(CmdError::Raw(
            "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into(),
        ));
    }
    if let Some(name) = setname {
        validate_name(&name)?;
        ctx.sess.name = if name.is_empty() { None } else { Some(name) };
    }
    ctx.sess.resp = ver as u8;
    Ok(Reply::Map(vec![
        (Reply::bulk_str("server"), Reply::bulk_str(SERVER_NAME)),
        (Reply::bulk_str("version"), Reply::bulk_str(REDIS_VERSION)),
        (Reply::bulk_str("proto"), Reply::Int(ver)),
        (Reply::bulk_str("id"), Reply::Int(ctx.sess.id as i64)),
        (Reply::bulk_str("mode"), Reply::bulk_str("standalone")),
        (Reply::bulk_str("role"), Reply::bulk_str("master")),
        (Reply::bulk_str("modules"), Reply::Array(vec![])),
    ]))
}

fn validate_name(name: &[u8]) -> Result<(), CmdError> {
    if name.iter().any(|&c| !(b'!'..=b'~').contains(&c)) {
        return Err(CmdError::msg("Client names cannot contain spaces, newlines or special characters."));
    }
    Ok(())
}

fn client_id(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(ctx.sess.id as i64))
}

fn client_setname(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    validate_name(argv[2])?;
    ctx.sess.name = if argv[2].is_empty() { None } else { Some(Bytes::copy_from_slice(argv[2])) };
    Ok(OK)
}

fn client_getname(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::from_opt(ctx.sess.name.clone()))
}

fn client_info(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let mut line = ctx.sess.info_line(ctx.srv.now_ms);
    line.push('\n');
    Ok(Reply::Verbatim(Bytes::from(line)))
}

fn client_list(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Redis's forms: TYPE and one type, or ID and ids (any integers; those of no client
    // list nothing), or nothing.
    let mut ids: Option<Vec<u64>> = None;
    let mut type_f = None;
    if argv.len() == 4 && is(argv[2], "type") {
        let t = lossy(argv[3]).to_lowercase();
        if !matches!(t.as_str(), "normal" | "master" | "replica" | "slave" | "pubsub") {
            return Err(CmdError::msg(format!("Unknown client type '{}'", lossy(argv[3]))));
        }
        type_f = Some(if t == "replica" { "slave".to_string() } else { t });
    } else if argv.len() > 3 && is(argv[2], "id") {
        let mut v = Vec::new();
        for a in &argv[3..] {
            let n = crate::util::numfmt::parse_i64(a).ok_or_else(|| CmdError::msg("Invalid client ID"))?;
            if n > 0 {
                v.push(n as u64);
            }
        }
        ids = Some(v);
    } else if argv.len() != 2 {
        return Err(CmdError::Syntax);
    }
    let now = ctx.srv.now_ms;
    let wanted = |s: &crate::server::Session| type_f.as_deref().is_none_or(|t| t == client_type(s));
    let backlog = ctx.srv.repl.backlog.as_ref();
    let line = |s: &crate::server::Session| s.info_line_with(now, crate::server::repl::stream_share(s, backlog));
    let mut lines: Vec<(u64, String)> =
        ctx.srv.clients.values().filter(|s| wanted(s)).map(|s| (s.id, line(s))).collect();
    if wanted(ctx.sess) {
        lines.push((ctx.sess.id, line(ctx.sess)));
    }
    lines.sort_by_key(|(id, _)| *id);
    let mut out = String::new();
    for (id, l) in lines {
        if ids.as_ref().is_some_and(|v| !v.contains(&id)) {
            continue;
        }
        out.push_str(&l);
        out.push('\n');
    }
    Ok(Reply::Verbatim(Bytes::from(out)))
}

fn client_kill(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Old form: CLIENT KILL addr:port → +OK or an error.
    if argv.len() == 3 {
        let addr = argv[2];
        let target = find_clients(ctx, |s| s.addr.as_bytes() == addr);
        let Some(id) = target.first().copied() else {
            if ctx.srv.master_link_addr().is_some_and(|m| m.as_bytes() == addr) {
                ctx.srv.kill_master_link();
                return Ok(OK);
            }
            return Err(CmdError::msg("No such client"));
        };
        kill(ctx, id);
        return Ok(OK);
    }
    let mut id_f = None;
    let mut addr_f = None;
    let mut laddr_f = None;
    let mut type_f: Option<String> = None;
    let mut user_f: Option<Bytes> = None;
    let mut skipme = true;
    let mut i = 2;
    while i < argv.len() {
        if i + 1 >= argv.len() {
            return Err(CmdError::Syntax);
        }
        let v = &argv[i + 1];
        if is(argv[i], "id") {
            match crate::util::numfmt::parse_i64(v) {
                Some(n) if n > 0 => id_f = Some(n as u64),
                _ => return Err(CmdError::msg("client-id should be greater than 0")),
            }
        } else if is(argv[i], "addr") {
            addr_f = Some(*v);
        } else if is(argv[i], "laddr") {
            laddr_f = Some(*v);
        } else if is(argv[i], "skipme") {
            if is(v, "yes") {
                skipme = true;
            } else if is(v, "no") {
                skipme = false;
            } else {
                return Err(CmdError::Syntax);
            }
        } else if is(argv[i], "type") {
            let t = lossy(v).to_lowercase();
            if !matches!(t.as_str(), "normal" | "master" | "replica" | "slave" | "pubsub") {
                return Err(CmdError::msg(format!("Unknown client type '{}'", lossy(v))));
            }
            type_f = Some(if t == "replica" { "slave".to_string() } else { t });
        } else if is(argv[i], "user") {
            if ctx.srv.acl.get(v).is_none() {
                return Err(CmdError::msg(format!("No such user '{}'", lossy(v))));
            }
            user_f = Some(Bytes::copy_from_slice(v));
        } else {
            return Err(CmdError::Syntax);
        }
        i += 2;
    }
    let me = ctx.sess.id;
    let targets = find_clients(ctx, |s| {
        id_f.is_none_or(|id| s.id == id)
            && addr_f.as_ref().is_none_or(|a| s.addr.as_bytes() == &a[..])
            && laddr_f.as_ref().is_none_or(|a| s.laddr.as_bytes() == &a[..])
            && type_f.as_deref().is_none_or(|t| t == client_type(s))
            && user_f.as_ref().is_none_or(|u| s.user[..] == u[..])
            && !(skipme && s.id == me)
    });
    for id in &targets {
        kill(ctx, *id);
    }
    // A replica's link to its master is a client of type master too.
    let master_link = id_f.is_none()
        && laddr_f.is_none()
        && user_f.is_none()
        && type_f.as_deref().is_none_or(|t| t == "master")
        && ctx.srv.master_link_addr().is_some_and(|m| addr_f.as_ref().is_none_or(|a| m.as_bytes() == &a[..]));
    if master_link {
        ctx.srv.kill_master_link();
    }
    Ok(Reply::Int((targets.len() + master_link as usize) as i64))
}

/// CLIENT LIST / KILL TYPE of a client: `slave` once SYNC made it a replica, `pubsub` while
/// subscribed, else `normal`.
fn client_type(s: &crate::server::Session) -> &'static str {
    if s.replica {
        "slave"
    } else if s.subs.active() {
        "pubsub"
    } else {
        "normal"
    }
}

fn client_tracking(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    use crate::server::tracking::{TrackingOpts, check_prefixes};
    let mut opts = TrackingOpts::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut i = 3;
    while i < argv.len() {
        let more = i + 1 < argv.len();
        let a = &argv[i];
        if is(a, "redirect") && more {
            i += 1;
            if opts.redirect != 0 {
                return Err(CmdError::msg("A client can only redirect to a single other client"));
            }
            let id = int(argv[i])?;
            let exists = id > 0 && (id as u64 == ctx.sess.id || ctx.srv.clients.contains_key(&(id as u64)));
            if !exists {
                return Err(CmdError::msg("The client ID you want redirect to does not exist"));
            }
            opts.redirect = id as u64;
        } else if is(a, "bcast") {
            opts.bcast = true;
        } else if is(a, "optin") {
            opts.optin = true;
        } else if is(a, "optout") {
            opts.optout = true;
        } else if is(a, "noloop") {
            opts.noloop = true;
        } else if is(a, "prefix") && more {
            i += 1;
            prefixes.push(Bytes::copy_from_slice(argv[i]));
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if is(argv[2], "on") {
        if !opts.bcast && !prefixes.is_empty() {
            return Err(CmdError::msg("PREFIX option requires BCAST mode to be enabled"));
        }
        if ctx.sess.tracking.as_ref().is_some_and(|cur| cur.bcast != opts.bcast) {
            return Err(CmdError::msg(
                "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
        if opts.bcast && (opts.optin || opts.optout) {
            return Err(CmdError::msg("OPTIN and OPTOUT are not compatible with BCAST"));
        }
        if opts.optin && opts.optout {
            return Err(CmdError::msg("You can't specify both OPTIN mode and OPTOUT mode"));
        }
        if let Some(cur) = ctx.sess.tracking.as_ref()
            && ((opts.optin && cur.optout) || (opts.optout && cur.optin))
        {
            return Err(CmdError::msg(
                "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
            ));
        }
        if opts.bcast {
            let existing = ctx.sess.tracking.as_ref().map(|t| t.prefixes.clone()).unwrap_or_default();
            check_prefixes(&existing, &crate::protocol::views(&prefixes)).map_err(CmdError::msg)?;
        }
        ctx.srv.enable_tracking(ctx.sess, opts, prefixes);
    } else if is(argv[2], "off") {
        ctx.srv.disable_tracking(ctx.sess);
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(OK)
}

fn client_caching(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(t) = ctx.sess.tracking.as_ref() else {
        return Err(CmdError::msg(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    if is(argv[2], "yes") {
        if !t.optin {
            return Err(CmdError::msg("CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode."));
        }
    } else if is(argv[2], "no") {
        if !t.optout {
            return Err(CmdError::msg("CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode."));
        }
    } else {
        return Err(CmdError::Syntax);
    }
    ctx.sess.caching = true;
    Ok(OK)
}

fn client_getredir(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(ctx.sess.tracking.as_ref().map_or(-1, |t| t.redirect as i64)))
}

fn client_trackinginfo(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let s = &*ctx.sess;
    let mut flags = Vec::new();
    match s.tracking.as_ref() {
        None => flags.push("off"),
        Some(t) => {
            flags.push("on");
            for (on, name) in [
                (t.bcast, "bcast"),
                (t.optin, "optin"),
                (t.optout, "optout"),
                (t.optin && s.caching, "caching-yes"),
                (t.optout && s.caching, "caching-no"),
                (t.noloop, "noloop"),
                (t.broken_redirect, "broken_redirect"),
            ] {
                if on {
                    flags.push(name);
                }
            }
        }
    }
    let redirect = s.tracking.as_ref().map_or(-1, |t| t.redirect as i64);
    let prefixes =
        s.tracking.as_ref().map(|t| t.prefixes.iter().cloned().map(Reply::Bulk).collect()).unwrap_or_default();
    Ok(Reply::Map(vec![
        (Reply::bulk_str("flags"), Reply::Set(flags.into_iter().map(Reply::bulk_str).collect())),
        (Reply::bulk_str("redirect"), Reply::Int(redirect)),
        (Reply::bulk_str("prefixes"), Reply::Array(prefixes)),
    ]))
}

fn find_clients(ctx: &Ctx, pred: impl Fn(&crate::server::Session) -> bool) -> Vec<u64> {
    let mut v: Vec<u64> = ctx.srv.clients.values().filter(|s| pred(s)).map(|s| s.id).collect();
    if pred(ctx.sess) {
        v.push(ctx.sess.id);
    }
    v.sort_unstable();
    v
}

fn kill(ctx: &mut Ctx, id: u64) {
    if id == ctx.sess.id {
        ctx.sess.close_after_reply = true;
    } else {
        ctx.srv.to_close.push(id);
    }
}

/// WAIT numreplicas timeout: Ember has no replicas, so no write is ever acknowledged by one.
/// Asking for none answers 0 at once; asking for some waits out the timeout (forever for 0),
/// as a Redis primary without replicas does.
fn wait(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let replicas = crate::util::numfmt::parse_i64(argv[1]).ok_or(CmdError::NotInteger)?;
    let ms = match crate::util::numfmt::parse_i64(argv[2]) {
        Some(n) if n >= 0 => n as u64,
        Some(_) => return Err(CmdError::msg("timeout is negative")),
        None => return Err(CmdError::TimeoutNotInteger),
    };
    // Redis keeps the count in a C int: past 2^31 it wraps, and a count that wraps to zero
    // or below is met at once.
    if replicas <= 0 || replicas as i32 <= 0 {
        return Ok(Reply::Int(0));
    }
    // Enough replicas already acknowledged this client's last write, or inside a
    // transaction: the count now.
    let acked = ctx.srv.replicas_acked(ctx.sess.woff, None) as i64;
    if acked >= replicas || ctx.sess.in_exec {
        return Ok(Reply::Int(acked));
    }
    let deadline = (ms > 0).then(|| ctx.srv.now_ms.saturating_add(ms));
    let woff = ctx.sess.woff;
    let r = super::block(ctx, argv, &[], deadline, Reply::Int(acked), Reply::Int(acked))?;
    if let Some(b) = ctx.sess.block.as_mut() {
        b.wait_offset = Some(woff);
    }
    ctx.srv.request_acks();
    Ok(r)
}

fn client_pause(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // Redis matches the subcommand with its argument count, then reads the mode first.
    if argv.len() > 4 {
        return Err(super::args::subcommand_syntax(argv, "CLIENT"));
    }
    let kind = match argv.get(3) {
        None => PauseKind::All,
        Some(a) if is(a, "all") => PauseKind::All,
        Some(a) if is(a, "write") => PauseKind::Write,
        Some(_) => return Err(CmdError::msg("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let ms = match crate::util::numfmt::parse_i64(argv[2]) {
        Some(n) if n >= 0 => n as u64,
        Some(_) => return Err(CmdError::msg("timeout is negative")),
        None => return Err(CmdError::TimeoutNotInteger),
    };
    ctx.srv.pause = Some((kind, ctx.srv.now_ms + ms));
    for db in ctx.srv.dbs.iter_mut() {
        db.set_expire_paused(true);
    }
    Ok(OK)
}

fn client_unpause(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    ctx.srv.end_pause();
    Ok(OK)
}

fn client_reply(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let a = &argv[2];
    if is(a, "on") {
        ctx.sess.reply_mode = ReplyMode::On;
        Ok(OK)
    } else if is(a, "off") {
        ctx.sess.reply_mode = ReplyMode::Off;
        Ok(Reply::NoReply)
    } else if is(a, "skip") {
        // This command's own reply is dropped too (mode Off for it), then the next one.
        ctx.sess.reply_mode = ReplyMode::Skip;
        Ok(Reply::NoReply)
    } else {
        Err(CmdError::Syntax)
    }
}

fn client_unblock(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // As PAUSE: the argument count picks the subcommand, the reason is read before the id.
    if argv.len() > 4 {
        return Err(super::args::subcommand_syntax(argv, "CLIENT"));
    }
    let reply = match argv.get(3) {
        None => None,
        Some(a) if is(a, "timeout") => None,
        Some(a) if is(a, "error") => Some(Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())),
        Some(_) => return Err(CmdError::msg("CLIENT UNBLOCK reason should be TIMEOUT or ERROR")),
    };
    let id = int(argv[2])?;
    let done = id > 0 && crate::server::blocking::unblock_with(ctx.srv, id as u64, reply);
    Ok(Reply::Int(done as i64))
}

fn client_no_evict(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if is(argv[2], "on") {
        ctx.sess.no_evict = true;
    } else if is(argv[2], "off") {
        ctx.sess.no_evict = false;
        ctx.srv.client_evict_futile = None;
    } else {
        return Err(CmdError::Syntax);
    }
    Ok(OK)
}

fn client_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "CLIENT",
        &[
            "CACHING (YES|NO)",
            "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
            "GETREDIR",
            "    Return the client ID we are redirecting to when tracking is enabled.",
            "GETNAME",
            "    Return the name of the current connection.",
            "ID",
            "    Return the ID of the current connection.",
            "INFO",
            "    Return information about the current client connection.",
            "KILL <ip:port>",
            "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are:",
            "    * ADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made from the specified address",
            "    * LADDR (<ip:port>|<unixsocket>:0)",
            "      Kill connections made to specified local address",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Kill connections by type.",
            "    * USER <username>",
            "      Kill connections authenticated by <username>.",
            "    * SKIPME (YES|NO)",
            "      Skip killing current connection (default: yes).",
            "LIST [options ...]",
            "    Return information about client connections. Options:",
            "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
            "      Return clients of specified type.",
            "UNPAUSE",
            "    Stop the current client pause, resuming traffic.",
            "PAUSE <timeout> [WRITE|ALL]",
            "    Suspend all, or just write, clients for <timeout> milliseconds.",
            "REPLY (ON|OFF|SKIP)",
            "    Control the replies sent to the current connection.",
            "SETNAME <name>",
            "    Assign the name <name> to the current connection.",
            "UNBLOCK <clientid> [TIMEOUT|ERROR]",
            "    Unblock the specified blocked client.",
            "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
            "         [OPTIN] [OPTOUT] [NOLOOP]",
            "    Control server assisted client side caching.",
            "TRACKINGINFO",
            "    Report tracking status for the current connection.",
            "NO-EVICT (ON|OFF)",
            "    Protect current client connection from eviction.",
        ],
    ))
}
