//! An AOF base file written as commands (`aof-use-rdb-preamble no`), from an RDB image of
//! the data set: what Redis's rewriteAppendOnlyFile writes, type by type, at most 64 items
//! per command, deadlines as PEXPIREAT, libraries as FUNCTION LOAD. Streams go as RESTORE of
//! their DUMP payload, which keeps consumer groups and their pending entries exact.

use std::io::Write;

use crate::persistence::rdb::{self, LoadOptions, SaveOptions};
use crate::protocol::encode_command as encode;
use crate::types::Value;
use crate::util::numfmt::fmt_g;

/// Redis's AOF_REWRITE_ITEMS_PER_CMD.
const ITEMS_PER_CMD: usize = 64;

/// Writes the commands that rebuild the data set in `image` (a whole RDB file) to `out`;
/// `timestamp`: a `#TS:` annotation first (aof-timestamp-enabled).
pub fn write_commands(
    image: &[u8],
    load: LoadOptions,
    save: SaveOptions,
    timestamp: Option<u64>,
    out: &mut impl Write,
) -> std::io::Result<()> {
    let (keys, libraries) = rdb::load_all(image, load).map_err(|e| std::io::Error::other(e.to_string()))?;
    let mut buf = Vec::with_capacity(1 << 16);
    if let Some(ts) = timestamp {
        buf.extend_from_slice(format!("#TS:{ts}\r\n").as_bytes());
    }
    for code in &libraries {
        encode(&mut buf, &[b"FUNCTION", b"LOAD", code]);
    }
    let mut db = None;
    for k in &keys {
        if db != Some(k.db) {
            encode(&mut buf, &[b"SELECT", k.db.to_string().as_bytes()]);
            db = Some(k.db);
        }
        rebuild(&mut buf, &k.key, &k.value, save);
        if let Some(at) = k.expire_at {
            encode(&mut buf, &[b"PEXPIREAT", &k.key, at.to_string().as_bytes()]);
        }
        if buf.len() >= 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)
}

/// Emits `cmd key item...` in batches of [`ITEMS_PER_CMD`] items (an item may be a pair).
fn batched(buf: &mut Vec<u8>, cmd: &[u8], key: &[u8], items: impl Iterator<Item = Vec<Vec<u8>>>) {
    let mut args: Vec<Vec<u8>> = Vec::new();
    let mut n = 0;
    let flush = |args: &mut Vec<Vec<u8>>, buf: &mut Vec<u8>| {
        if !args.is_empty() {
            let mut argv: Vec<&[u8]> = vec![cmd, key];
            argv.extend(args.iter().map(|a| a.as_slice()));
            encode(buf, &argv);
            args.clear();
        }
    };
    for item in items {
        args.extend(item);
        n += 1;
        if n % ITEMS_PER_CMD == 0 {
            flush(&mut args, buf);
        }
    }
    flush(&mut args, buf);
}

fn rebuild(buf: &mut Vec<u8>, key: &[u8], value: &Value, save: SaveOptions) {
    match value {
        Value::Str(s) => encode(buf, &[b"SET", key, &s.to_bytes()]),
        Value::List(l) => batched(buf, b"RPUSH", key, l.iter().map(|m| vec![m.to_vec()])),
        Value::Set(s) => batched(buf, b"SADD", key, s.iter().map(|m| vec![m.into_owned()])),
        Value::ZSet(z) => {
            batched(buf, b"ZADD", key, z.range(0, z.len(), false).map(|(m, score)| vec![score_text(score), m.to_vec()]))
        }
        Value::Hash(h) => {
            batched(buf, b"HMSET", key, h.iter().map(|(f, v)| vec![f.to_vec(), v.to_vec()]));
            // Field deadlines, one HPEXPIREAT per field (Redis 7.4 rewrites the same way).
            for (f, _, at) in h.iter_ttl().filter(|e| e.2 != 0) {
                encode(buf, &[b"HPEXPIREAT", key, at.to_string().as_bytes(), b"FIELDS", b"1", f]);
            }
        }
        Value::Stream(_) => {
            let payload = rdb::dump(value, save);
            encode(buf, &[b"RESTORE", key, b"0", &payload]);
        }
    }
}

/// `%.17g` as Redis writes scores into the AOF (`inf` / `-inf` included).
fn score_text(score: f64) -> Vec<u8> {
    if score.is_infinite() {
        return if score > 0.0 { b"inf".to_vec() } else { b"-inf".to_vec() };
    }
    fmt_g(score, 17).into_bytes()
}
