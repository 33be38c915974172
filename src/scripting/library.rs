//! Function libraries and script headers: `#!lua name=` and `#!lua flags=` lines, and the
//! registrations `redis.register_function` accepts, with Redis's messages.

use mlua::{Lua, MultiValue, Value};

use super::convert::*;
use super::engine::*;

/// `#!lua name=<library>` on the first line of a library: its name, checked as Redis does.
pub fn library_name(code: &[u8]) -> Result<String, String> {
    if !code.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let end = code.iter().position(|&c| c == b'\n').ok_or("Invalid library metadata")?;
    // Redis's functionExtractLibMetaData: the shebang splits like an inline command (quotes
    // allowed); its first word is `#!<engine>`; then `name=` (any case) once. The name is
    // checked before the engine is looked up.
    let parts = match crate::protocol::resp::split_args(&code[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid library metadata".into()),
    };
    let words: Vec<String> = parts.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let engine = words[0].get(2..).unwrap_or("");
    let mut name = None;
    for p in &words[1..] {
        let named = p.get(..5).is_some_and(|k| k.eq_ignore_ascii_case("name="));
        match name {
            _ if !named => return Err(format!("Invalid metadata value given: {p}")),
            Some(_) => return Err("Invalid metadata value, name argument was given multiple times".into()),
            None => name = Some(p[5..].to_string()),
        }
    }
    let name = name.ok_or("Library name was not given")?;
    if !valid_name(&name) {
        return Err(NAME_RULE.into());
    }
    if !engine.eq_ignore_ascii_case("lua") {
        return Err(format!("Engine '{engine}' not found"));
    }
    Ok(name)
}

pub(super) const NAME_RULE: &str =
    "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

pub(super) fn valid_name(n: &str) -> bool {
    !n.is_empty() && n.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// One `redis.register_function(name, f)` or `redis.register_function{function_name=,
/// callback=, flags=, description=}` call, validated; messages are Redis's ("ERR ..." texts).
pub(super) fn registration(lua: &Lua, args: MultiValue, library: &str) -> Result<(String, FunctionDef), String> {
    // Redis's luaRegisterFunctionReadArgs, message for message.
    let string_of = |v: &Value| -> Option<String> {
        match v {
            Value::String(s) => Some(s.to_string_lossy()),
            Value::Integer(n) => Some(n.to_string()),
            Value::Number(n) => Some(lua_number_text(*n)),
            _ => None,
        }
    };
    let (name, func, flags, description) = match args.len() {
        1 => {
            let Some(Value::Table(t)) = args.front() else {
                return Err("ERR calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).".into());
            };
            let (mut name, mut func, mut flags, mut desc) = (None, None, Vec::new(), None);
            for pair in t.pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| format!("ERR {}", error_text(&e)))?;
                let Some(key) = string_of(&k) else {
                    return Err("ERR named argument key given to redis.register_function is not a string".into());
                };
                match key.to_ascii_lowercase().as_str() {
                    "function_name" => {
                        name =
                            Some(string_of(&v).ok_or(
                                "ERR function_name argument given to redis.register_function must be a string",
                            )?)
                    }
                    "description" => {
                        desc = Some(
                            string_of(&v)
                                .ok_or("ERR description argument given to redis.register_function must be a string")?,
                        )
                    }
                    "callback" => match v {
                        Value::Function(f) => func = Some(f),
                        _ => {
                            return Err(
                                "ERR callback argument given to redis.register_function must be a function".into()
                            );
                        }
                    },
                    "flags" => {
                        let Value::Table(ft) = v else {
                            return Err("ERR flags argument to redis.register_function must be a table representing function flags".into());
                        };
                        for f in ft.sequence_values::<Value>() {
                            let f = f.ok().as_ref().and_then(string_of).ok_or("ERR unknown flag given")?;
                            flags.push(canonical_flag(&f).ok_or("ERR unknown flag given")?.to_string());
                        }
                    }
                    _ => return Err("ERR unknown argument given to redis.register_function".into()),
                }
            }
            let name = name.ok_or("ERR redis.register_function must get a function name argument")?;
            let func = func.ok_or("ERR redis.register_function must get a callback argument")?;
            (name, func, flags, desc)
        }
        2 => {
            let name = args
                .front()
                .and_then(string_of)
                .ok_or("ERR first argument to redis.register_function must be a string")?;
            let Some(Value::Function(func)) = args.get(1).cloned() else {
                return Err("ERR second argument to redis.register_function must be a function".into());
            };
            (name, func, Vec::new(), None)
        }
        _ => return Err("ERR wrong number of arguments to redis.register_function".into()),
    };
    let _ = lua;
    if !valid_name(&name) {
        return Err(format!("ERR {NAME_RULE}"));
    }
    let func = std::rc::Rc::new(lua.create_registry_value(func).map_err(|e| format!("ERR {e}"))?);
    Ok((name, FunctionDef { func, library: library.to_string(), flags, description }))
}

/// A script flag's canonical name (flags are matched without regard to case, as in Redis).
pub(super) fn canonical_flag(f: &str) -> Option<&'static str> {
    ["no-writes", "allow-oom", "allow-stale", "no-cluster", "allow-cross-slot-keys"]
        .into_iter()
        .find(|c| c.eq_ignore_ascii_case(f))
}

/// `#!lua [flags=a,b]` on the first line: the flags, and the body with that line blanked (so
/// line numbers stay those of the text the client sent).
pub(super) fn parse_shebang(body: &[u8]) -> Result<(ScriptFlags, Vec<u8>), String> {
    if !body.starts_with(b"#!") {
        return Ok((ScriptFlags::default(), body.to_vec()));
    }
    // Redis's evalExtractShebangFlags: the line up to its newline, split like an inline
    // command; `#!lua` exactly, then `flags=` words whose comma-separated flags are matched
    // exactly (an empty one included).
    let Some(end) = body.iter().position(|&c| c == b'\n') else {
        return Err("Invalid script shebang".into());
    };
    let parts = match crate::protocol::resp::split_args(&body[..end]) {
        Some(p) if !p.is_empty() => p,
        _ => return Err("Invalid engine in script shebang".into()),
    };
    let text = |b: &[u8]| String::from_utf8_lossy(super::convert::c_string(b)).into_owned();
    if super::convert::c_string(&parts[0]) != b"#!lua" {
        return Err(format!("Unexpected engine in script shebang: {}", text(&parts[0])));
    }
    let mut flags = ScriptFlags { shebang: true, ..Default::default() };
    for p in &parts[1..] {
        let Some(list) = p.strip_prefix(b"flags=") else {
            return Err(format!("Unknown lua shebang option: {}", text(p)));
        };
        if list.is_empty() {
            continue;
        }
        for f in list.split(|&c| c == b',') {
            match f {
                b"no-writes" => flags.no_writes = true,
                b"allow-oom" => flags.allow_oom = true,
                b"no-cluster" => flags.no_cluster = true,
                b"allow-cross-slot-keys" => flags.cross_slot = true,
                b"allow-stale" => flags.allow_stale = true,
                other => return Err(format!("Unexpected flag in script shebang: {}", text(other))),
            }
        }
    }
    let code = body[end..].to_vec();
    Ok((flags, code))
}
