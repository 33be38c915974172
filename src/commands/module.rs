//! MODULE: Ember loads no modules (Redis modules are C shared objects written against
//! Redis's internals). LIST answers that none is loaded; LOAD and LOADEX fail as a module that
//! does not load fails in Redis, UNLOAD as for an unknown name. LOAD, LOADEX and UNLOAD are
//! refused first unless `enable-module-command` allows them (see dispatch), as in Redis.

use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, container, help_reply};
use crate::protocol::Reply;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("module", -2, container)
    .doc("server", "A container for module commands", "4.0.0", "Depends on subcommand.")
    .subcommands(SUBCOMMANDS)];

static SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("help", 2, module_help).flags(LOADING | STALE).doc(
        "server",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("list", 2, module_list).flags(ADMIN | NOSCRIPT).doc(
        "server",
        "List all modules loaded by the server",
        "4.0.0",
        "O(N) where N is the number of loaded modules.",
    ),
    CommandSpec::new("load", -3, module_load).flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING).doc(
        "server",
        "Load a module",
        "4.0.0",
        "O(1)",
    ),
    CommandSpec::new("loadex", -3, module_load).flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING).doc(
        "server",
        "Load a module with extended parameters",
        "7.0.0",
        "O(1)",
    ),
    CommandSpec::new("unload", 3, module_unload).flags(ADMIN | NOSCRIPT | NO_ASYNC_LOADING).doc(
        "server",
        "Unload a module",
        "4.0.0",
        "O(1)",
    ),
];

/// Subcommands refused unless enable-module-command allows them (Redis's CMD_PROTECTED).
pub const PROTECTED: &[&str] = &["module|load", "module|loadex", "module|unload"];

fn module_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "MODULE",
        &[
            "LIST",
            "    Return a list of loaded modules.",
            "LOAD <path> [<arg> ...]",
            "    Load a module library from <path>, passing to it any optional arguments.",
            "LOADEX <path> [[CONFIG NAME VALUE] [CONFIG NAME VALUE]] [ARGS ...]",
            "    Load a module library from <path>, while passing it module configurations and optional arguments.",
            "UNLOAD <name>",
            "    Unload a module.",
        ],
    ))
}

fn module_list(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Array(Vec::new()))
}

fn module_load(_: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    tracing::warn!("Module {} failed to load: Ember does not load Redis modules", String::from_utf8_lossy(argv[2]));
    Err(CmdError::msg("Error loading the extension. Please check the server logs."))
}

fn module_unload(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Err(CmdError::msg("Error unloading module: no such module with that name"))
}
