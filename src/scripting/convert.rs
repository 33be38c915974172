//! Values between Redis and Lua, by Redis's conversion tables: a command's RESP reply as a
//! Lua value, a script's return value as a reply, and the texts Lua errors and numbers show.

use bytes::Bytes;
use mlua::Value;

use super::engine::IGNORE_STATS;
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
/// error replies; in RESP3, `{double=}`, `{map=}` and `{set=}` too. Errors inside arrays, maps
/// and sets are noted in `nested` (None for one a command already replied), to be counted.
pub(super) fn lua_to_reply(v: &Value, depth: usize, resp3: bool, nested: &mut Vec<Option<String>>) -> Reply {
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
                let line = script_error_line(&e.as_bytes());
                if depth == 0
                    && let Ok(text) = std::str::from_utf8(&line)
                {
                    return Reply::Error(text.to_owned());
                }
                let text = String::from_utf8_lossy(&line).into_owned();
                // Nested, or bytes a String cannot hold: sent as they are, counted aside.
                let counted = t.raw_get::<bool>(IGNORE_STATS).unwrap_or(false);
                nested.push((!counted).then_some(text));
                return Reply::Encoded(protocol_line(b'-', &line));
            }
            if let Ok(Value::String(s)) = t.raw_get::<Value>("ok") {
                // Redis reads the status as a C string and keeps it on one line.
                return Reply::Encoded(protocol_line(b'+', &one_line(c_string(&s.as_bytes()))));
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
                let text = one_line(&n.as_bytes());
                let v3 = Reply::Encoded(protocol_line(b'(', &text));
                return Reply::Resp3Or(Box::new(v3), Box::new(Reply::Bulk(text.into())));
            }
            if let Ok(Value::Table(vs)) = t.raw_get::<Value>("verbatim_string")
                && let Ok(Value::String(format)) = vs.raw_get::<Value>("format")
                && let Ok(Value::String(text)) = vs.raw_get::<Value>("string")
            {
                // Redis's addReplyVerbatim: the format's first three bytes (a C string),
                // padded with spaces.
                let text = text.as_bytes();
                let mut ext = [b' '; 3];
                for (d, &c) in ext.iter_mut().zip(c_string(&format.as_bytes())) {
                    *d = c;
                }
                let mut v3 = format!("={}\r\n", text.len() + 4).into_bytes();
                v3.extend_from_slice(&ext);
                v3.push(b':');
                v3.extend_from_slice(&text);
                v3.extend_from_slice(b"\r\n");
                let v3 = Reply::Encoded(Bytes::from(v3));
                return Reply::Resp3Or(Box::new(v3), Box::new(Reply::Bulk(Bytes::copy_from_slice(&text))));
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("map") {
                let mut pairs = Vec::new();
                for (k, v) in m.pairs::<Value, Value>().flatten() {
                    pairs
                        .push((lua_to_reply(&k, depth + 1, resp3, nested), lua_to_reply(&v, depth + 1, resp3, nested)));
                }
                return Reply::Map(pairs);
            }
            if let Ok(Value::Table(m)) = t.raw_get::<Value>("set") {
                let items = m
                    .pairs::<Value, Value>()
                    .flatten()
                    .map(|(k, _)| lua_to_reply(&k, depth + 1, resp3, nested))
                    .collect();
                return Reply::Set(items);
            }
            let mut items = Vec::new();
            for i in 1.. {
                match t.raw_get::<Value>(i) {
                    Ok(Value::Nil) | Err(_) => break,
                    Ok(x) => items.push(lua_to_reply(&x, depth + 1, resp3, nested)),
                }
            }
            Reply::Array(items)
        }
        _ => Reply::Null,
    }
}

/// A Lua string as Redis's C code reads it with `lua_tostring` into an sds: up to its first NUL.
pub(super) fn c_string(b: &[u8]) -> &[u8] {
    b.iter().position(|&c| c == 0).map_or(b, |n| &b[..n])
}

/// Line breaks as spaces, so a text stays one line of the protocol.
fn one_line(b: &[u8]) -> Vec<u8> {
    b.iter().map(|&c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect()
}

/// A status or error line as it goes out, its bytes as they are.
fn protocol_line(kind: u8, text: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(text.len() + 3);
    out.push(kind);
    out.extend_from_slice(text);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// The error line Redis replies for a script's `{err = text}` (`addReplyErrorFormatEx` of
/// "-%s"): the text up to a NUL, line breaks at its end dropped and the others made spaces.
/// Empty stays empty: the reply is a bare `-`.
pub(super) fn script_error_line(text: &[u8]) -> Vec<u8> {
    let text = c_string(text);
    let end = text.iter().rposition(|&c| c != b'\r' && c != b'\n').map_or(0, |n| n + 1);
    one_line(&text[..end])
}

/// C's `(long long)` of a double on x86-64: truncation, and the "integer indefinite" value
/// (i64::MIN) for NaN and out-of-range values, which is what Redis replies then.
pub(super) fn truncate_like_c(n: f64) -> i64 {
    const LIMIT: f64 = 9_223_372_036_854_775_808.0; // 2^63
    if n.is_nan() || !(-LIMIT..LIMIT).contains(&n) { i64::MIN } else { n as i64 }
}
