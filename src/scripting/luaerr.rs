//! Errors and argument checks worded as Lua 5.1's auxiliary library words them (luaL_error,
//! luaL_argerror, luaL_checknumber...), for the libraries Ember writes in Rust (cjson,
//! cmsgpack, struct, bit): scripts that catch those errors see Redis's texts, including the
//! called function's name as Lua finds it (`'?'` through pcall) and the caller's line.

use mlua::{Lua, MultiValue, Value};

/// luaL_error: the message prefixed with the calling Lua line (`user_script:1: `), or not
/// when the caller is a C function (pcall).
pub fn raise(lua: &Lua, msg: String) -> mlua::Error {
    let at = lua
        .inspect_stack(1, |d| (d.source().short_src.map(|s| s.into_owned()), d.current_line()))
        .and_then(|(src, line)| Some(format!("{}:{}: ", src?, line?)));
    mlua::Error::runtime(format!("{}{msg}", at.unwrap_or_default()))
}

/// luaL_argerror: "bad argument #n to 'name' (msg)", the name being what the calling
/// instruction called the running function (`'?'` when called from C, as by pcall).
pub fn arg_error(lua: &Lua, mut narg: usize, msg: &str) -> mlua::Error {
    let (name, what) = lua
        .inspect_stack(0, |d| {
            let n = d.names();
            (n.name.map(|s| s.into_owned()), n.name_what.map(str::to_owned))
        })
        .unwrap_or((None, None));
    let name = name.unwrap_or_else(|| "?".into());
    if what.as_deref() == Some("method") {
        narg -= 1;
        if narg == 0 {
            return raise(lua, format!("calling '{name}' on bad self ({msg})"));
        }
    }
    raise(lua, format!("bad argument #{narg} to '{name}' ({msg})"))
}

/// Lua's name for a value's type (light userdata is "userdata"); "no value" past the end.
pub fn type_name(v: Option<&Value>) -> &'static str {
    match v {
        None => "no value",
        Some(Value::LightUserData(_)) => "userdata",
        Some(v) => v.type_name(),
    }
}

/// luaL_typerror: "<expected> expected, got <type>".
pub fn type_error(lua: &Lua, narg: usize, args: &MultiValue, expected: &str) -> mlua::Error {
    arg_error(lua, narg, &format!("{expected} expected, got {}", type_name(args.get(narg - 1))))
}

/// luaL_checknumber: a number, or a string Lua converts to one.
pub fn check_number(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<f64> {
    let v = args.get(narg - 1).cloned().unwrap_or(Value::Nil);
    match lua.coerce_number(v)? {
        Some(n) => Ok(n),
        None => Err(type_error(lua, narg, args, "number")),
    }
}

/// luaL_checklstring: a string, or a number Lua converts to one (`%.14g`).
pub fn check_string(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<Vec<u8>> {
    let v = args.get(narg - 1).cloned().unwrap_or(Value::Nil);
    match lua.coerce_string(v)? {
        Some(s) => Ok(s.as_bytes().to_vec()),
        None => Err(type_error(lua, narg, args, "string")),
    }
}

/// luaL_checkinteger: the number truncated toward zero (out of range: what x86's
/// conversion gives, i64::MIN).
pub fn check_integer(lua: &Lua, args: &MultiValue, narg: usize) -> mlua::Result<i64> {
    let n = check_number(lua, args, narg)?;
    let outside = n.is_nan() || !(i64::MIN as f64..i64::MAX as f64).contains(&n);
    Ok(if outside { i64::MIN } else { n as i64 })
}

/// luaL_optinteger: `default` when absent or nil, else as luaL_checkinteger.
pub fn opt_integer(lua: &Lua, args: &MultiValue, narg: usize, default: i64) -> mlua::Result<i64> {
    match args.get(narg - 1) {
        None | Some(Value::Nil) => Ok(default),
        Some(_) => check_integer(lua, args, narg),
    }
}
