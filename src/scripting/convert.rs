//! Values between Redis and Lua, by Redis's conversion tables: a command's RESP reply as a
//! Lua value, a script's return value as a reply, and the texts Lua errors and numbers show.

use bytes::Bytes;
use mlua::Value;

use crate::protocol::Reply;
use crate::util::numfmt::fmt_g;

/// A Lua error's message without mlua's decorations.
pub(super) fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) => m.clone(),
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        // The only callback that lives in a scope is FUNCTION LOAD's register_function: one
        // kept and called later gets Redis's words.
        mlua::Error::CallbackDestructed => "redis.register_function can only be called on FUNCTION LOAD command".into(),
        other => other.to_string(),
    }
}

/// `tostring` of a value, for messages.
pub(super) fn lua_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(n) => n.to_string(),
        Value::Number(n) => lua_number_text(*n),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => "nil".into(),
        Value::Error(e) => error_text(e),
        other => other.type_name().to_string(),
    }
}

/// Lua 5.1's number to string conversion (`%.14g`).
pub(super) fn lua_number_text(n: f64) -> String {
    printf_g(n, 14)
}

/// A number given to `redis.call` as an argument: Redis formats it with `%.17g` (Lua's own
/// conversion would lose precision).
pub(super) fn arg_number_text(n: f64) -> String {
    printf_g(n, 17)
}

/// glibc's `%.{prec}g`, NaN and infinities included.
fn printf_g(n: f64, prec: usize) -> String {
    if n.is_nan() {
        return if n.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if n.is_infinite() {
        return if n > 0.0 { "inf".into() } else { "-inf".into() };
    }
    fmt_g(n, prec)
}

/// A script's return value as a reply, by Redis's conversion table: numbers truncate to
/// integers, tables become arrays up to the first nil, `{ok=}` / `{err=}` become status and
/// error replies; in RESP3, `{double=}`, `{map=}` and `{set=}` too.
pub(super) fn lua_to_reply(v: &Value, depth: usize, resp3: bool) -> Reply {
    match v {
        Value::Nil => Reply::Null,
        // A script in RESP3 (redis.setresp(3)) returns real booleans.
        Value::Boolean(b) if resp3 => Reply::Bool(*b),
        Value::Boolean(true) => Reply::Int(1),
        Value::Boolean(false) => Reply::Null,
        Value::Integer(n) => Reply::Int(*n),
        Value::Number(n) => Reply::Int(truncate_like_c(*n)),
        Value::String(s) => Reply::Bulk(Bytes::copy_from_slice(&s.as_bytes())),
        Value::Table(t) => {
            if let Ok(Value::String(e)) = t.raw_get::<Value>("err") {
                return Reply::Error(e.to_string_lossy());
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
                return Reply::StatusOwned(s.to_string_lossy());
            }
            if depth > 100 {
                return Reply::Error("ERR reached lua stack limit".into());
            }
            match t.raw_get::<Value>("double") {
                Ok(Value::Number(d)) => return Reply::Double(d),
                Ok(Value::Integer(d)) => return Reply::Double(d as f64),
                _ => {}
            }
            if let Ok(Value::String(n)) = t.raw_get::<Value>("big_number") {
                // A line break would end the reply early: Redis maps them to spaces.
                let text: String =
                    n.to_string_lossy().chars().map(|c| if c == '\r' || c == '\n' { ' ' } else { c }).collect();
                return Reply::BigNum(text);
            }
            if let Ok(Value::Table(vs)) = t.raw_get::<Value>("verbatim_string")
                && let Ok(Value::String(text)) = vs.raw_get::<Value>("string")
            {
                return Reply::Verbatim(Bytes::copy_from_slice(&text.as_bytes()));
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
                let mut pairs = Vec::new();
                for (k, v) in m.pairs::<Value, Value>().flatten() {
                    pairs.push((lua_to_reply(&k, depth + 1, resp3), lua_to_reply(&v, depth + 1, resp3)));
                }
                return Reply::Map(pairs);
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("set") {
                let items =
                    m.pairs::<Value, Value>().flatten().map(|(k, _)| lua_to_reply(&k, depth + 1, resp3)).collect();
                return Reply::Set(items);
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(x) => items.push(lua_to_reply(&x, depth + 1, resp3)),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::Null,
    }
}

/// C's `(long long)` of a double on x86-64: truncation, and the "integer indefinite" value
/// (i64::MIN) for NaN and out-of-range values, which is what Redis replies then.
pub(super) fn truncate_like_c(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) { i64::MIN } else { n as i64 }
}
