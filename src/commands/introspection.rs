//! COMMAND and its subcommands, served from the command table.

use bytes::Bytes;

use super::args::lossy;
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, Entry, flags, help_reply, table};
use crate::protocol::Reply;
use crate::util::glob::glob_match;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("command", -1, command)
    .flags(LOADING | STALE)
    .doc("server", "Get array of Redis command details", "2.8.13", "O(N) where N is the total number of Redis commands")
    .subcommands(COMMAND_SUBCOMMANDS)];

static COMMAND_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("count", 2, count).flags(LOADING | STALE).doc(
        "server",
        "Get total number of Redis commands",
        "2.8.13",
        "O(1)",
    ),
    CommandSpec::new("info", -2, info).flags(LOADING | STALE).doc(
        "server",
        "Get array of specific Redis command details, or all when no argument is given.",
        "2.8.13",
        "O(N) where N is the number of commands to look up",
    ),
    CommandSpec::new("docs", -2, docs).flags(LOADING | STALE).doc(
        "server",
        "Get array of specific Redis command documentation",
        "7.0.0",
        "O(N) where N is the number of commands to look up",
    ),
    CommandSpec::new("list", -2, list).flags(LOADING | STALE).doc(
        "server",
        "Get an array of Redis command names",
        "7.0.0",
        "O(N) where N is the total number of Redis commands",
    ),
    CommandSpec::new("getkeys", -4, getkeys).flags(LOADING | STALE).doc(
        "server",
        "Extract keys given a full Redis command",
        "2.8.13",
        "O(N) where N is the number of arguments to the command",
    ),
    CommandSpec::new("getkeysandflags", -4, getkeysandflags).flags(LOADING | STALE).doc(
        "server",
        "Extract keys and access flags given a full Redis command",
        "7.0.0",
        "O(N) where N is the number of arguments to the command",
    ),
    CommandSpec::new("help", 2, help).flags(LOADING | STALE).doc(
        "server",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
];

fn status_set(items: Vec<&str>) -> Reply {
    Reply::Set(items.into_iter().map(|s| Reply::StatusOwned(s.to_string())).collect())
}

fn command_info(spec: &CommandSpec, full: &str) -> Reply {
    let flag_names: Vec<&str> = flags::NAMES.iter().filter(|(f, _)| spec.has(*f)).map(|(_, n)| *n).collect();
    let specs = super::keyspec::specs_of(full);
    let (first, last, step) = super::keyspec::legacy_range(specs);
    let key_specs: Vec<Reply> = specs.iter().map(super::keyspec::info_reply).collect();
    let subs: Vec<Reply> =
        spec.subcommands.iter().map(|s| command_info(s, &format!("{}|{}", spec.name, s.name))).collect();
    Reply::Array(vec![
        Reply::bulk_str(full),
        Reply::Int(spec.arity as i64),
        status_set(flag_names),
        Reply::Int(first),
        Reply::Int(last),
        Reply::Int(step),
        status_set(spec.acl_categories(full)),
        Reply::Set(super::keyspecs::tips(full).iter().map(|t| Reply::bulk_str(t)).collect()),
        // Redis replies the key specs as a set (an array in RESP2).
        Reply::Set(key_specs),
        // An empty set without subcommands, else an array (Redis's addReplyCommandSubCommands).
        if subs.is_empty() { Reply::Set(subs) } else { Reply::Array(subs) },
    ])
}

/// Redis's addReplyCommandArgList: each argument a map, its fields only when set.
fn arg_list(args: &[super::docs::Arg]) -> Reply {
    use super::docs::{MULTIPLE, MULTIPLE_TOKEN, OPTIONAL};
    Reply::Array(
        args.iter()
            .map(|a| {
                let mut m = vec![
                    (Reply::bulk_str("name"), Reply::bulk_str(a.name)),
                    (Reply::bulk_str("type"), Reply::bulk_str(a.ty)),
                ];
                if a.key_spec_index >= 0 {
                    m.push((Reply::bulk_str("key_spec_index"), Reply::Int(a.key_spec_index)));
                }
                let texts = [("token", a.token), ("summary", a.summary), ("since", a.since)];
                let texts = texts.into_iter().chain([("deprecated_since", a.deprecated_since)]);
                for (k, v) in texts {
                    if let Some(v) = v {
                        m.push((Reply::bulk_str(k), Reply::bulk_str(v)));
                    }
                }
                if a.flags != 0 {
                    let names = [(OPTIONAL, "optional"), (MULTIPLE, "multiple"), (MULTIPLE_TOKEN, "multiple_token")];
                    let set = names.iter().filter(|(f, _)| a.flags & f != 0).map(|(_, n)| *n).collect();
                    m.push((Reply::bulk_str("flags"), status_set(set)));
                }
                if !a.args.is_empty() {
                    m.push((Reply::bulk_str("arguments"), arg_list(a.args)));
                }
                Reply::Map(m)
            })
            .collect(),
    )
}

fn command_docs(spec: &CommandSpec, full: &str) -> Reply {
    let doc = super::docs::doc(full);
    // Redis's own texts for its commands, the table's for Ember's (leases, field TTLs).
    let some = |s: &'static str| Some(s).filter(|s| !s.is_empty());
    let (summary, since, group, complexity) = match doc {
        Some(d) => (d.summary, d.since, d.group.to_string(), d.complexity),
        None => (some(spec.summary), some(spec.since), spec.group.replace('_', "-"), some(spec.complexity)),
    };
    let mut m = Vec::new();
    for (k, v) in [("summary", summary), ("since", since), ("group", Some(group.as_str())), ("complexity", complexity)]
    {
        // Redis leaves out what a command does not document (LOLWUT's complexity).
        if let Some(v) = v {
            m.push((Reply::bulk_str(k), Reply::bulk_str(v)));
        }
    }
    if let Some(d) = doc {
        if !d.doc_flags.is_empty() {
            m.push((Reply::bulk_str("doc_flags"), status_set(d.doc_flags.to_vec())));
        }
        if let Some(v) = d.deprecated_since {
            m.push((Reply::bulk_str("deprecated_since"), Reply::bulk_str(v)));
        }
        if let Some(v) = d.replaced_by {
            m.push((Reply::bulk_str("replaced_by"), Reply::bulk_str(v)));
        }
        if !d.history.is_empty() {
            let h = d.history.iter().map(|(v, what)| Reply::Array(vec![Reply::bulk_str(v), Reply::bulk_str(what)]));
            m.push((Reply::bulk_str("history"), Reply::Set(h.collect())));
        }
        if !d.args.is_empty() {
            m.push((Reply::bulk_str("arguments"), arg_list(d.args)));
        }
    }
    if !spec.subcommands.is_empty() {
        let subs = spec
            .subcommands
            .iter()
            .map(|s| {
                let name = format!("{}|{}", spec.name, s.name);
                (Reply::bulk_str(&name), command_docs(s, &name))
            })
            .collect();
        m.push((Reply::bulk_str("subcommands"), Reply::Map(subs)));
    }
    Reply::Map(m)
}

/// Looks up "name" or "name|sub".
fn lookup(name: &[u8]) -> Option<&'static Entry> {
    let s = String::from_utf8_lossy(name).to_lowercase();
    let t = table();
    match s.split_once('|') {
        Some((base, sub)) => t.sub(t.get(base.as_bytes())?, sub.as_bytes()),
        None => t.get(name),
    }
}

fn sorted_all() -> Vec<&'static CommandSpec> {
    let mut v: Vec<_> = table().all().collect();
    v.sort_by_key(|s| s.name);
    v
}

fn command(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Array(sorted_all().into_iter().map(|s| command_info(s, s.name)).collect()))
}

fn count(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(table().len() as i64))
}

fn info(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() == 2 {
        return Ok(Reply::Array(sorted_all().into_iter().map(|s| command_info(s, s.name)).collect()));
    }
    Ok(Reply::Array(
        argv[2..].iter().map(|n| lookup(n).map_or(Reply::Null, |e| command_info(e.spec, e.full))).collect(),
    ))
}

fn docs(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let specs: Vec<(&'static CommandSpec, String)> = if argv.len() == 2 {
        sorted_all().into_iter().map(|s| (s, s.name.to_string())).collect()
    } else {
        argv[2..].iter().filter_map(|n| lookup(n)).map(|e| (e.spec, e.full.to_string())).collect()
    };
    Ok(Reply::Map(specs.into_iter().map(|(s, full)| (Reply::bulk_str(&full), command_docs(s, &full))).collect()))
}

fn list(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut names = Vec::new();
    for s in sorted_all() {
        names.push((s.name.to_string(), s));
        for sub in s.subcommands {
            names.push((format!("{}|{}", s.name, sub.name), sub));
        }
    }
    if argv.len() > 2 {
        if argv.len() != 5 || !super::args::is(argv[2], "filterby") {
            return Err(CmdError::Syntax);
        }
        let what = &argv[3];
        let val = &argv[4];
        if super::args::is(what, "pattern") {
            names.retain(|(n, _)| glob_match(val, n.as_bytes(), true));
        } else if super::args::is(what, "aclcat") {
            let cat = format!("@{}", lossy(val).to_lowercase());
            names.retain(|(n, s)| s.acl_categories(n).contains(&cat.as_str()));
        } else if super::args::is(what, "module") {
            names.clear();
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(Reply::Array(names.into_iter().map(|(n, _)| Reply::Bulk(Bytes::from(n))).collect()))
}

fn getkeys(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (args, pos) = keys_of(argv)?;
    Ok(Reply::Array(pos.into_iter().map(|i| Reply::Bulk(Bytes::copy_from_slice(args[i]))).collect()))
}

/// COMMAND GETKEYSANDFLAGS: each key with how the command uses it, from the key specs (the
/// command's own key finder where a spec cannot say, as in Redis).
fn getkeysandflags(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // COMMAND GETKEYS's checks and errors first (arity, keyless commands, bad counts).
    let (args, positions) = keys_of(argv)?;
    let full = resolve_full(args)?;
    let specs = super::keyspec::specs_of(full);
    let reliable = !specs.iter().any(|s| s.flags & super::keyspec::flags::VARIABLE_FLAGS != 0);
    let found =
        if reliable { super::keyspec::evaluate(specs, args) } else { super::keyspec::variable_flags(full, args) };
    let keys = match found {
        Some(k) if !k.is_empty() || specs.is_empty() => k,
        _ => {
            let first = specs.first().map_or(0, super::keyspec::usage_flags);
            let rest = specs.last().map_or(first, super::keyspec::usage_flags);
            positions.into_iter().enumerate().map(|(n, p)| (p, if n == 0 { first } else { rest })).collect()
        }
    };
    Ok(Reply::Array(keys.into_iter().map(|(p, f)| super::keyspec::key_and_flags(args[p], f)).collect()))
}

/// The full name (`xgroup|create`) of the command in `args`.
fn resolve_full(args: &[&[u8]]) -> Result<&'static str, CmdError> {
    let Some(base) = table().get(args[0]) else {
        return Err(CmdError::msg("Invalid command specified"));
    };
    if !base.subs.is_empty() && args.len() >= 2 {
        return Ok(table().sub(base, args[1]).ok_or_else(|| CmdError::msg("Invalid command specified"))?.full);
    }
    Ok(base.full)
}

/// The command's arguments and its key positions, with Redis's errors for COMMAND GETKEYS.
fn keys_of<'a>(argv: &'a [&'a [u8]]) -> Result<(&'a [&'a [u8]], Vec<usize>), CmdError> {
    let args = &argv[2..];
    let Some(base) = table().get(args[0]) else {
        return Err(CmdError::msg("Invalid command specified"));
    };
    let spec = if !base.subs.is_empty() && args.len() >= 2 {
        table().sub(base, args[1]).ok_or_else(|| CmdError::msg("Invalid command specified"))?.spec
    } else {
        base.spec
    };
    // Redis's order: a command without keys, then the arity, then what the arguments say.
    let movable = spec.has(super::flags::MOVABLEKEYS);
    if spec.keys.first <= 0 && !movable {
        return Err(CmdError::msg("The command has no key arguments"));
    }
    if !spec.arity_ok(args.len()) {
        return Err(CmdError::msg("Invalid number of arguments specified for command"));
    }
    let pos = spec.key_positions(args);
    if pos.is_empty() && !spec.has(super::flags::NO_MANDATORY_KEYS) {
        return Err(CmdError::msg("Invalid arguments specified for command"));
    }
    Ok((args, pos))
}

fn help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "COMMAND",
        &[
            "(no subcommand)",
            "    Return details about all Redis commands.",
            "COUNT",
            "    Return the total number of commands in this Redis server.",
            "LIST",
            "    Return a list of all commands in this Redis server.",
            "INFO [<command-name> ...]",
            "    Return details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "DOCS [<command-name> ...]",
            "    Return documentation details about multiple Redis commands.",
            "    If no command names are given, documentation details for all",
            "    commands are returned.",
            "GETKEYS <full-command>",
            "    Return the keys from a full Redis command.",
            "GETKEYSANDFLAGS <full-command>",
            "    Return the keys and the access flags from a full Redis command.",
        ],
    ))
}
