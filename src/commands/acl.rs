//! ACL and authentication: the ACL command, AUTH's user/password check, and the permission
//! check dispatch runs before each command (Redis 7.0's ACLCheckAllPerm), with the NOPERM
//! errors and ACL LOG entries Redis gives. The users and rules are `crate::acl`'s.

use std::sync::OnceLock;

use bytes::Bytes;

use super::args::{is, lossy};
use super::{CmdError, CmdResult, CommandSpec, Ctx, Entry, container, flags::*, help_reply, table};
use crate::acl::user::{READ, Request, RuleError, User, Verdict, WRITE};
use crate::acl::{Catalog, CmdInfo, Denial, log::Entry as LogEntry};
use crate::protocol::{OK, Reply};
use crate::server::{ServerState, Session};

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("acl", -2, container)
    .doc("server", "A container for Access List Control commands", "6.0.0", "Depends on subcommand.")
    .subcommands(ACL_SUBCOMMANDS)];

const A: u32 = ADMIN | NOSCRIPT | LOADING | STALE;

static ACL_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("cat", -2, cat).flags(NOSCRIPT | LOADING | STALE).doc(
        "server",
        "List the ACL categories or the commands inside a category",
        "6.0.0",
        "O(1) since the categories and commands are a fixed set.",
    ),
    CommandSpec::new("deluser", -3, deluser).flags(A).doc(
        "server",
        "Remove the specified ACL users and the associated rules",
        "6.0.0",
        "O(1) amortized time considering the typical user.",
    ),
    CommandSpec::new("dryrun", -4, dryrun).flags(A).doc(
        "server",
        "Returns whether the user can execute the given command without executing the command.",
        "7.0.0",
        "O(1).",
    ),
    CommandSpec::new("genpass", -2, genpass).flags(NOSCRIPT | LOADING | STALE).doc(
        "server",
        "Generate a pseudorandom secure password to use for ACL users",
        "6.0.0",
        "O(N)",
    ),
    CommandSpec::new("getuser", 3, getuser).flags(A).doc(
        "server",
        "Get the rules for a specific ACL user",
        "6.0.0",
        "O(N). Where N is the number of password, command and pattern rules that the user has.",
    ),
    CommandSpec::new("help", 2, help).flags(LOADING | STALE).doc(
        "server",
        "Show helpful text about the different subcommands",
        "6.0.0",
        "O(1)",
    ),
    CommandSpec::new("list", 2, list).flags(A).doc(
        "server",
        "List the current ACL rules in ACL config file format",
        "6.0.0",
        "O(N). Where N is the number of configured users.",
    ),
    CommandSpec::new("load", 2, load_save).flags(A).doc(
        "server",
        "Reload the ACLs from the configured ACL file",
        "6.0.0",
        "O(N). Where N is the number of configured users.",
    ),
    CommandSpec::new("log", -2, log).flags(A).doc(
        "server",
        "List latest events denied because of ACLs in place",
        "6.0.0",
        "O(N) with N being the number of entries shown.",
    ),
    CommandSpec::new("save", 2, load_save).flags(A).doc(
        "server",
        "Save the current ACL rules in the configured ACL file",
        "6.0.0",
        "O(N). Where N is the number of configured users.",
    ),
    CommandSpec::new("setuser", -3, setuser).flags(A).doc(
        "server",
        "Modify or create the rules for a specific ACL user",
        "6.0.0",
        "O(N). Where N is the number of rules provided.",
    ),
    CommandSpec::new("users", 2, users).flags(A).doc(
        "server",
        "List the username of all the configured ACL rules",
        "6.0.0",
        "O(N). Where N is the number of configured users.",
    ),
    CommandSpec::new("whoami", 2, whoami).flags(NOSCRIPT | LOADING | STALE).doc(
        "server",
        "Return the name of the user associated to the current connection",
        "6.0.0",
        "O(1)",
    ),
];

/// The command table as ACL rules see it (ids are the table's entry ids).
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Vec<CmdInfo>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        let t = table();
        let entries = t.entries();
        entries
            .iter()
            .map(|e| {
                let parent = e.full.split_once('|').and_then(|(p, _)| t.get(p.as_bytes())).map(|p| p.id);
                CmdInfo {
                    full: e.full,
                    categories: crate::acl::categories::of(e.full),
                    parent,
                    subcommands: e.subs.clone(),
                    no_auth: e.spec.has(NO_AUTH),
                }
            })
            .collect()
    })
}

/// Where the keys of `argv` are and whether the command reads or writes them (from the key
/// specs, as COMMAND GETKEYSANDFLAGS reports them).
fn key_refs(entry: &Entry, argv: &[&[u8]]) -> Vec<(usize, u8)> {
    use super::keyspec::{self, flags as kf};
    // MIGRATE's specs are incomplete: Redis finds its keys with its own key finder.
    if entry.full == "migrate" {
        let pos = super::getkeys::movable("migrate", argv).unwrap_or_default();
        return pos.into_iter().map(|p| (p, READ | WRITE)).collect();
    }
    let specs = super::keyspec::specs_of(entry.full);
    if specs.is_empty() && !entry.spec.has(MOVABLEKEYS) && entry.spec.keys.first <= 0 {
        return Vec::new();
    }
    let reliable = !specs.iter().any(|s| s.flags & kf::VARIABLE_FLAGS != 0);
    let found = if reliable { keyspec::evaluate(specs, argv) } else { keyspec::variable_flags(entry.full, argv) };
    let keys = match found {
        Some(k) if !k.is_empty() || specs.is_empty() => k,
        _ => {
            let first = specs.first().map_or(0, keyspec::usage_flags);
            let rest = specs.last().map_or(first, keyspec::usage_flags);
            let pos = entry.spec.key_positions(argv);
            pos.into_iter().enumerate().map(|(n, p)| (p, if n == 0 { first } else { rest })).collect()
        }
    };
    keys.into_iter()
        .filter(|(_, f)| f & kf::NOT_KEY == 0)
        .map(|(p, f)| {
            let mut a = 0;
            if f & kf::ACCESS != 0 {
                a |= READ;
            }
            if f & (kf::INSERT | kf::DELETE | kf::UPDATE) != 0 {
                a |= WRITE;
            }
            (p, a)
        })
        .collect()
}

/// The channels a command publishes or subscribes to (position, is a pattern).
fn channel_refs(full: &str, argc: usize) -> Vec<(usize, bool)> {
    match full {
        "publish" | "spublish" => vec![(1, false)],
        "subscribe" | "ssubscribe" => (1..argc).map(|i| (i, false)).collect(),
        "psubscribe" => (1..argc).map(|i| (i, true)).collect(),
        _ => Vec::new(),
    }
}

/// Whether the client's user may read any key with this command (Redis's
/// ACLUserCheckCmdWithUnrestrictedKeyAccess, which SORT's BY and GET require).
pub fn full_key_read(srv: &ServerState, sess: &Session, argv: &[&[u8]]) -> bool {
    if srv.acl_default_free && sess.user == b"default" {
        return true;
    }
    let (Some(u), Ok(entry)) = (srv.acl.get(&sess.user), super::dispatch::resolve(argv)) else { return false };
    let keys = key_refs(entry, argv);
    let args: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
    u.full_key_access(catalog(), Request { id: entry.id, argv: &args, keys: &keys, channels: &[] }, READ)
}

/// `user`'s verdict on `argv` (the command `entry`).
fn verdict(user: &User, entry: &Entry, argv: &[&[u8]]) -> Verdict {
    let keys = key_refs(entry, argv);
    let channels = channel_refs(entry.full, argv.len());
    let args: Vec<&[u8]> = argv.iter().map(|a| &a[..]).collect();
    user.check(catalog(), Request { id: entry.id, argv: &args, keys: &keys, channels: &channels })
}

/// Whether the client's user may not run `argv` (the command `entry`) on these keys and
/// channels: the verdict, logged in ACL LOG under `context` (toplevel, multi or lua).
pub fn denied(
    srv: &mut ServerState,
    sess: &Session,
    entry: &Entry,
    argv: &[&[u8]],
    context: &'static str,
) -> Option<Verdict> {
    if srv.acl_default_free && sess.user == b"default" {
        return None;
    }
    let v = match srv.acl.get(&sess.user) {
        Some(u) => verdict(u, entry, argv),
        None => Verdict::DeniedCmd,
    };
    let (reason, object) = match v {
        Verdict::Ok => return None,
        Verdict::DeniedCmd => (Denial::Command, entry.full.as_bytes().to_vec()),
        Verdict::DeniedKey(p) => (Denial::Key, argv[p].to_vec()),
        Verdict::DeniedChannel(p) => (Denial::Channel, argv[p].to_vec()),
    };
    log_denial(srv, sess, reason, context, object, sess.user.clone());
    Some(v)
}

/// Whether the session's user may run `argv` (redis.acl_check_cmd): [`denied`] without the
/// ACL LOG entry.
pub fn permitted(srv: &ServerState, sess: &Session, entry: &Entry, argv: &[&[u8]]) -> bool {
    if srv.acl_default_free && sess.user == b"default" {
        return true;
    }
    srv.acl.get(&sess.user).is_some_and(|u| matches!(verdict(u, entry, argv), Verdict::Ok))
}

/// Before a command runs: Redis's NOPERM errors for what [`denied`] finds.
#[inline]
pub fn check_command(
    srv: &mut ServerState,
    sess: &Session,
    entry: &Entry,
    argv: &[&[u8]],
    context: &'static str,
) -> Result<(), CmdError> {
    if srv.acl_default_free && sess.user == b"default" {
        return Ok(());
    }
    check_restricted(srv, sess, entry, argv, context)
}

fn check_restricted(
    srv: &mut ServerState,
    sess: &Session,
    entry: &Entry,
    argv: &[&[u8]],
    context: &'static str,
) -> Result<(), CmdError> {
    let msg = match denied(srv, sess, entry, argv, context) {
        None | Some(Verdict::Ok) => return Ok(()),
        Some(Verdict::DeniedCmd) => {
            format!("NOPERM this user has no permissions to run the '{}' command", entry.full)
        }
        Some(Verdict::DeniedKey(_)) => {
            "NOPERM this user has no permissions to access one of the keys used as arguments".into()
        }
        Some(Verdict::DeniedChannel(_)) => {
            "NOPERM this user has no permissions to access one of the channels used as arguments".into()
        }
    };
    Err(CmdError::Raw(msg))
}

/// Why a script's command was refused (Redis's getAclErrorMessage).
pub fn script_reason(v: Verdict) -> &'static str {
    match v {
        Verdict::DeniedCmd => "can't run this command or subcommand",
        Verdict::DeniedKey(_) => "can't access at least one of the keys mentioned in the command arguments",
        Verdict::DeniedChannel(_) => "can't publish to the channel mentioned in the command",
        Verdict::Ok => "lacking the permissions for the command",
    }
}

/// Why EXEC refused a queued command whose permissions changed.
pub fn exec_reason(v: Verdict) -> &'static str {
    match v {
        Verdict::DeniedCmd => "no permission to execute the command or subcommand",
        Verdict::DeniedKey(_) => "no permission to touch the specified keys",
        Verdict::DeniedChannel(_) => "no permission to access one of the channels used as arguments",
        Verdict::Ok => "no permission",
    }
}

fn log_denial(
    srv: &mut ServerState,
    sess: &Session,
    reason: Denial,
    context: &'static str,
    object: Vec<u8>,
    username: Vec<u8>,
) {
    let max = srv.config.int("acllog-max-len").max(0) as usize;
    let e = LogEntry {
        count: 1,
        reason,
        context,
        object,
        username,
        ctime_ms: crate::util::unix_ms(),
        client_info: sess.info_line(srv.now_ms),
    };
    srv.acl.log.add(e, max);
}

/// AUTH / HELLO AUTH: the user must exist, be on, and know a password (any, if nopass).
pub fn authenticate(ctx: &mut Ctx, user: &[u8], pass: &[u8], cmd: &[u8]) -> Result<(), CmdError> {
    let ok = ctx.srv.acl.get(user).is_some_and(|u| u.enabled && u.password_ok(pass));
    if ok {
        ctx.sess.authenticated = true;
        ctx.sess.user = user.to_vec();
        return Ok(());
    }
    let context = if ctx.sess.multi.is_some() { "multi" } else { "toplevel" };
    log_denial(ctx.srv, ctx.sess, Denial::Auth, context, cmd.to_vec(), user.to_vec());
    Err(CmdError::Raw("WRONGPASS invalid username-password pair or user is disabled.".into()))
}

fn setuser(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let name = &argv[2];
    if name.iter().any(|c| c.is_ascii_whitespace() || *c == 0) {
        return Err(CmdError::msg("Usernames can't contain spaces or null characters"));
    }
    let rules = crate::acl::merge_selector_words(&argv[3..]).map_err(|i| {
        CmdError::msg(format!("Unmatched parenthesis in acl selector starting at '{}'.", lossy(argv[3 + i])))
    })?;
    let cat = catalog();
    // All the rules apply to a copy; nothing changes unless every one is valid.
    let mut u = ctx.srv.acl.get(name).cloned().unwrap_or_else(|| User::new(cat));
    for r in &rules {
        u.apply(r, cat).map_err(|e: RuleError| {
            CmdError::msg(format!("Error in ACL SETUSER modifier '{}': {}", lossy(r), e.text()))
        })?;
    }
    kill_revoked_subscribers(ctx, name, &u);
    ctx.srv.acl.users.insert(name.to_vec(), u);
    ctx.srv.refresh_acl();
    Ok(OK)
}

/// Clients of `name` subscribed to a channel or pattern `updated` no longer allows are
/// disconnected, as Redis's ACLKillPubsubClientsIfNeeded does.
fn kill_revoked_subscribers(ctx: &mut Ctx, name: &[u8], updated: &User) {
    use crate::server::pubsub::Kind;
    let revoked = |s: &Session| {
        s.user[..] == name[..]
            && [(Kind::Channel, false), (Kind::Shard, false), (Kind::Pattern, true)]
                .iter()
                .any(|&(k, pat)| s.subs.names(k).iter().any(|n| !updated.subscription_allowed(n, pat)))
    };
    let ids: Vec<_> = ctx.srv.clients.iter().filter(|(_, s)| revoked(s)).map(|(id, _)| *id).collect();
    ctx.srv.to_close.extend(ids);
    if revoked(ctx.sess) {
        ctx.sess.close_after_reply = true;
    }
}

fn deluser(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv[2..].iter().any(|n| &n[..] == b"default") {
        return Err(CmdError::msg("The 'default' user cannot be removed"));
    }
    let mut deleted = 0;
    for name in &argv[2..] {
        if ctx.srv.acl.users.remove(&name[..]).is_some() {
            deleted += 1;
            // Its clients are disconnected (the caller after its reply).
            let ids: Vec<_> =
                ctx.srv.clients.iter().filter(|(_, s)| s.user[..] == name[..]).map(|(id, _)| *id).collect();
            ctx.srv.to_close.extend(ids);
            if ctx.sess.user[..] == name[..] {
                ctx.sess.close_after_reply = true;
            }
        }
    }
    ctx.srv.refresh_acl();
    Ok(Reply::Int(deleted))
}

fn getuser(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(u) = ctx.srv.acl.get(argv[2]) else { return Ok(Reply::Null) };
    let cat = catalog();
    let s = Reply::bulk_str;
    let selector = |sel: &crate::acl::Selector| {
        vec![
            (s("commands"), s(&sel.describe_commands(cat))),
            (s("keys"), s(&sel.describe_keys())),
            (s("channels"), s(&sel.describe_channels())),
        ]
    };
    let mut m = vec![
        (s("flags"), Reply::Set(u.flag_names().into_iter().map(s).collect())),
        (s("passwords"), Reply::Array(u.passwords.iter().map(|p| s(p)).collect())),
    ];
    m.extend(selector(&u.root));
    m.push((s("selectors"), Reply::Array(u.selectors.iter().map(|x| Reply::Map(selector(x))).collect())));
    Ok(Reply::Map(m))
}

fn list(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let cat = catalog();
    let lines = ctx
        .srv
        .acl
        .users
        .iter()
        .map(|(n, u)| Reply::Bulk(Bytes::from(format!("user {} {}", String::from_utf8_lossy(n), u.describe(cat)))))
        .collect();
    Ok(Reply::Array(lines))
}

fn users(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Array(ctx.srv.acl.users.keys().map(|n| Reply::Bulk(Bytes::copy_from_slice(n))).collect()))
}

fn whoami(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Bulk(Bytes::copy_from_slice(&ctx.sess.user)))
}

fn cat(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    use crate::acl::categories::{NAMES, by_name};
    match argv.len() {
        2 => Ok(Reply::Array(NAMES.iter().map(|n| Reply::bulk_str(n)).collect())),
        3 => {
            let Some(bit) = by_name(argv[2]) else {
                let name: String = lossy(argv[2]).chars().take(128).collect();
                return Err(CmdError::msg(format!("Unknown category '{name}'")));
            };
            let names = catalog().iter().filter(|c| c.categories & bit != 0).map(|c| Reply::bulk_str(c.full)).collect();
            Ok(Reply::Array(names))
        }
        _ => Err(super::args::subcommand_syntax(argv, "ACL")),
    }
}

fn genpass(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(super::args::subcommand_syntax(argv, "ACL"));
    }
    let bits = match argv.get(2) {
        Some(a) => crate::util::numfmt::parse_i64(a).ok_or(CmdError::NotInteger)?,
        None => 256,
    };
    if bits <= 0 || bits > 4096 {
        return Err(CmdError::msg(
            "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        ));
    }
    use rand::RngExt;
    let mut rng = rand::rng();
    let chars = (bits as usize).div_ceil(4);
    let pass: String = (0..chars).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0')).collect();
    Ok(Reply::Bulk(Bytes::from(pass)))
}

fn log(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 3 {
        return Err(super::args::subcommand_syntax(argv, "ACL"));
    }
    let mut count = 10i64;
    if let Some(a) = argv.get(2) {
        if is(a, "reset") {
            ctx.srv.acl.log.entries.clear();
            return Ok(OK);
        }
        count = crate::util::numfmt::parse_i64(a).ok_or(CmdError::NotInteger)?.max(0);
    }
    let now = crate::util::unix_ms();
    let s = Reply::bulk_str;
    let entries = ctx
        .srv
        .acl
        .log
        .entries
        .iter()
        .take(count as usize)
        .map(|e| {
            Reply::Map(vec![
                (s("count"), Reply::Int(e.count as i64)),
                (s("reason"), s(e.reason.name())),
                (s("context"), s(e.context)),
                (s("object"), Reply::Bulk(Bytes::copy_from_slice(&e.object))),
                (s("username"), Reply::Bulk(Bytes::copy_from_slice(&e.username))),
                (s("age-seconds"), Reply::Double(now.saturating_sub(e.ctime_ms) as f64 / 1000.0)),
                (s("client-info"), s(&e.client_info)),
            ])
        })
        .collect();
    Ok(Reply::Array(entries))
}

fn dryrun(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(u) = ctx.srv.acl.get(argv[2]) else {
        return Err(CmdError::msg(format!("User '{}' not found", lossy(argv[2]))));
    };
    let args = &argv[3..];
    let entry = match super::dispatch::resolve(args) {
        Ok(e) => e,
        Err((_, Some(e))) => return Err(CmdError::msg(format!("wrong number of arguments for '{}' command", e.full))),
        Err(_) => return Err(CmdError::msg(format!("Command '{}' not found", lossy(args[0])))),
    };
    Ok(match verdict(u, entry, args) {
        Verdict::Ok => OK,
        Verdict::DeniedCmd => {
            Reply::bulk_str(&format!("This user has no permissions to run the '{}' command", entry.full))
        }
        Verdict::DeniedKey(p) => {
            Reply::bulk_str(&format!("This user has no permissions to access the '{}' key", lossy(args[p])))
        }
        Verdict::DeniedChannel(p) => {
            Reply::bulk_str(&format!("This user has no permissions to access the '{}' channel", lossy(args[p])))
        }
    })
}

fn load_save(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let file = ctx.srv.config.str("aclfile").to_string();
    if file.is_empty() {
        return Err(CmdError::msg(
            "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.",
        ));
    }
    if is(argv[1], "save") {
        let mut text = ctx.srv.acl.list_lines(catalog()).join("\n");
        text.push('\n');
        let tmp = format!("{file}.tmp-{}", std::process::id());
        let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, &file));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&tmp);
            tracing::warn!("Saving the ACLs to {file}: {e}");
            return Err(CmdError::msg(
                "There was an error trying to save the ACLs. Please check the server logs for more information",
            ));
        }
        return Ok(OK);
    }
    let text = std::fs::read_to_string(&file)
        .map_err(|e| CmdError::msg(format!("Error loading ACLs, opening file '{file}': {e}")))?;
    ctx.srv.acl.load_file(&text, &file, catalog()).map_err(CmdError::msg)?;
    // Clients of the users that were replaced are disconnected (the default user stays).
    let ids: Vec<_> = ctx.srv.clients.iter().filter(|(_, s)| s.user != b"default").map(|(id, _)| *id).collect();
    ctx.srv.to_close.extend(ids);
    if ctx.sess.user != b"default" {
        ctx.sess.close_after_reply = true;
    }
    ctx.srv.refresh_acl();
    Ok(OK)
}

fn help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "ACL",
        &[
            "CAT [<category>]",
            "    List all commands that belong to <category>, or all command categories",
            "    when no category is specified.",
            "DELUSER <username> [<username> ...]",
            "    Delete a list of users.",
            "DRYRUN <username> <command> [<arg> ...]",
            "    Returns whether the user can execute the given command without executing the command.",
            "GETUSER <username>",
            "    Get the user's details.",
            "GENPASS [<bits>]",
            "    Generate a secure 256-bit user password. The optional `bits` argument can",
            "    be used to specify a different size.",
            "LIST",
            "    Show users details in config file format.",
            "LOAD",
            "    Reload users from the ACL file.",
            "LOG [<count> | RESET]",
            "    Show the ACL log entries.",
            "SAVE",
            "    Save the current config to the ACL file.",
            "SETUSER <username> <attribute> [<attribute> ...]",
            "    Create or modify a user with the specified attributes.",
            "USERS",
            "    List all the registered usernames.",
            "WHOAMI",
            "    Return the current connection username.",
        ],
    ))
}
