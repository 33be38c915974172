//! Stream family: XADD, XRANGE/XREVRANGE, XLEN, XDEL, XTRIM, XREAD, XSETID, consumer groups
//! (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM) and XINFO, with Redis 7.0's
//! argument rules, errors and reply shapes (maps in RESP3 where Redis uses them). This file
//! holds the table rows, the shared parsing and the commands on entries; consumer groups are
//! in `stream_group.rs`, XINFO in `stream_info.rs`.
//!
//! Blocking reads reuse the blocking machinery of lists: a blocked XREAD is re-run when one
//! of its keys changes, with `$` already resolved to the last ID at block time.

use bytes::{Bytes, BytesMut};

use super::args::{int, is, lossy};
use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, KEY1, Keys, container};
use crate::keyspace::Db;
use crate::keyspace::notify as ev;
use crate::protocol::reply::{put_array_len, put_bulk};
use crate::protocol::{OK, Reply};
use crate::types::Value;
use crate::types::stream::{Entry, Group, NodeLimits, Stream, StreamId, Trim};
use crate::util::numfmt::parse_i64;

use super::stream_group::*;
use super::stream_info::*;

pub(super) const KEY2: Keys = Keys { first: 2, last: 2, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("xadd", -5, xadd).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("stream", "Appends a new entry to a stream", "5.0.0", "O(1) when adding a new entry, O(N) when trimming where N being the number of entries evicted."),
    CommandSpec::new("xrange", -4, xrange).flags(READONLY).keys(KEY1).doc("stream", "Return a range of elements in a stream, with IDs matching the specified IDs interval", "5.0.0", "O(N) with N being the number of elements being returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1)."),
    CommandSpec::new("xrevrange", -4, xrevrange).flags(READONLY).keys(KEY1).doc("stream", "Return a range of elements in a stream, with IDs matching the specified IDs interval, in reverse order (from greater to smaller IDs) compared to XRANGE", "5.0.0", "O(N) with N being the number of elements returned. If N is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1)."),
    CommandSpec::new("xlen", 2, xlen).flags(READONLY | FAST).keys(KEY1).doc("stream", "Return the number of entries in a stream", "5.0.0", "O(1)"),
    CommandSpec::new("xdel", -3, xdel).flags(WRITE | FAST).keys(KEY1).doc("stream", "Removes the specified entries from the stream. Returns the number of items actually deleted, that may be different from the number of IDs passed in case certain IDs do not exist.", "5.0.0", "O(1) for each single item to delete in the stream, regardless of the stream size."),
    CommandSpec::new("xtrim", -4, xtrim).flags(WRITE).keys(KEY1).doc("stream", "Trims the stream to (approximately if '~' is passed) a certain size", "5.0.0", "O(N), with N being the number of evicted entries. Constant times are very small however, since entries are organized in macro nodes containing multiple entries that can be released with a single deallocation."),
    CommandSpec::new("xread", -4, xread).flags(READONLY | BLOCKING | MOVABLEKEYS).doc("stream", "Return never seen elements in multiple streams, with IDs greater than the ones reported by the caller for each stream. Can block.", "5.0.0", "For each stream mentioned: O(N) with N being the number of elements being returned, it means that XREAD-ing with a fixed COUNT is O(1). Note that when the BLOCK option is used, XADD will pay O(M) time in order to serve the M clients blocked on the stream getting new data."),
    CommandSpec::new("xreadgroup", -7, xreadgroup).flags(WRITE | BLOCKING | MOVABLEKEYS).doc("stream", "Return new entries from a stream using a consumer group, or access the history of the pending entries for a given consumer. Can block.", "5.0.0", "For each stream mentioned: O(M) with M being the number of elements returned. If M is constant (e.g. always asking for the first 10 elements with COUNT), you can consider it O(1). On the other side when XREADGROUP blocks, XADD will pay the O(N) time in order to serve the N clients blocked on the stream getting new data."),
    CommandSpec::new("xack", -4, xack).flags(WRITE | FAST).keys(KEY1).doc("stream", "Marks a pending message as correctly processed, effectively removing it from the pending entries list of the consumer group. Return value of the command is the number of messages successfully acknowledged, that is, the IDs we were actually able to resolve in the PEL.", "5.0.0", "O(1) for each message ID processed."),
    CommandSpec::new("xpending", -3, xpending).flags(READONLY).keys(KEY1).doc("stream", "Return information and entries from a stream consumer group pending entries list, that are messages fetched but never acknowledged.", "5.0.0", "O(N) with N being the number of elements returned, so asking for a small fixed number of entries per call is O(1). O(M), where M is the total number of entries scanned when used with the IDLE filter. When the command returns just the summary and the list of consumers is small, it runs in O(1) time; otherwise, an additional O(N) time for iterating every consumer."),
    CommandSpec::new("xclaim", -6, xclaim).flags(WRITE | FAST).keys(KEY1).doc("stream", "Changes (or acquires) ownership of a message in a consumer group, as if the message was delivered to the specified consumer.", "5.0.0", "O(log N) with N being the number of messages in the PEL of the consumer group."),
    CommandSpec::new("xautoclaim", -6, xautoclaim).flags(WRITE | FAST).keys(KEY1).doc("stream", "Changes (or acquires) ownership of messages in a consumer group, as if the messages were delivered to the specified consumer.", "6.2.0", "O(1) if COUNT is small."),
    CommandSpec::new("xsetid", -3, xsetid).flags(WRITE | DENYOOM | FAST).keys(KEY1).doc("stream", "An internal command for replicating stream values", "5.0.0", "O(1)"),
    CommandSpec::new("xgroup", -2, container).doc("stream", "A container for consumer groups commands", "5.0.0", "Depends on subcommand.").subcommands(XGROUP_SUBCOMMANDS),
    CommandSpec::new("xinfo", -2, container).doc("stream", "A container for stream introspection commands", "5.0.0", "Depends on subcommand.").subcommands(XINFO_SUBCOMMANDS),
];

pub(super) static XGROUP_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("create", -5, xgroup_create).flags(WRITE | DENYOOM).keys(KEY2).doc(
        "stream",
        "Create a consumer group.",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("setid", -5, xgroup_setid).flags(WRITE).keys(KEY2).doc(
        "stream",
        "Set a consumer group to an arbitrary last delivered ID value.",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("destroy", 4, xgroup_destroy).flags(WRITE).keys(KEY2).doc(
        "stream",
        "Destroy a consumer group.",
        "5.0.0",
        "O(N) where N is the number of entries in the group's pending entries list (PEL).",
    ),
    CommandSpec::new("createconsumer", 5, xgroup_createconsumer).flags(WRITE | DENYOOM).keys(KEY2).doc(
        "stream",
        "Create a consumer in a consumer group.",
        "6.2.0",
        "O(1)",
    ),
    CommandSpec::new("delconsumer", 5, xgroup_delconsumer).flags(WRITE).keys(KEY2).doc(
        "stream",
        "Delete a consumer from a consumer group.",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("help", 2, xgroup_help).flags(LOADING | STALE).doc(
        "stream",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
];

pub(super) static XINFO_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("stream", -3, xinfo_stream).flags(READONLY).keys(KEY2).doc(
        "stream",
        "Get information about a stream",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("groups", 3, xinfo_groups).flags(READONLY).keys(KEY2).doc(
        "stream",
        "List the consumer groups of a stream",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("consumers", 4, xinfo_consumers).flags(READONLY).keys(KEY2).doc(
        "stream",
        "List the consumers in a consumer group",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("help", 2, xinfo_help).flags(LOADING | STALE).doc(
        "stream",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
];

pub(super) fn invalid_id() -> CmdError {
    CmdError::msg("Invalid stream ID specified as stream command argument")
}

pub(super) fn nogroup(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Raw(format!("NOGROUP No such key '{}' or consumer group '{}'", lossy(key), lossy(group)))
}

pub(super) fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// `ms` or `ms-seq`; a missing sequence is `missing_seq`. With `allow_special`, `-` and `+`
/// are the smallest and greatest IDs.
pub(super) fn parse_id(a: &[u8], missing_seq: u64, allow_special: bool) -> Result<StreamId, CmdError> {
    if allow_special && a == b"-" {
        return Ok(StreamId::ZERO);
    }
    if allow_special && a == b"+" {
        return Ok(StreamId::MAX);
    }
    match a.iter().position(|&c| c == b'-') {
        None => Ok(StreamId::new(parse_u64(a).ok_or_else(invalid_id)?, missing_seq)),
        Some(i) => Ok(StreamId::new(
            parse_u64(&a[..i]).ok_or_else(invalid_id)?,
            parse_u64(&a[i + 1..]).ok_or_else(invalid_id)?,
        )),
    }
}

/// A strict ID (no `-`/`+`), as XGROUP, XREAD, XACK and XCLAIM take them.
pub(super) fn strict_id(a: &[u8]) -> Result<StreamId, CmdError> {
    parse_id(a, 0, false)
}

/// A range bound: `-`, `+`, an incomplete ID, or `(`ID for an exclusive bound.
pub(super) fn range_bound(a: &[u8], start: bool) -> Result<StreamId, CmdError> {
    let missing = if start { 0 } else { u64::MAX };
    if a.len() > 1 && a[0] == b'(' {
        let id = parse_id(&a[1..], missing, false)?;
        return if start {
            id.next().ok_or_else(|| CmdError::msg("invalid start ID for the interval"))
        } else {
            id.prev().ok_or_else(|| CmdError::msg("invalid end ID for the interval"))
        };
    }
    parse_id(a, missing, true)
}

pub(super) fn limits(ctx: &Ctx) -> NodeLimits {
    NodeLimits {
        max_bytes: ctx.srv.config.int("stream-node-max-bytes").max(0) as usize,
        max_entries: ctx.srv.config.int("stream-node-max-entries").max(0) as usize,
    }
}

pub(super) fn stream_ref<'a>(db: &'a mut Db, key: &[u8]) -> Result<Option<&'a Stream>, CmdError> {
    match db.get(key) {
        None => Ok(None),
        Some(v) => v.as_stream().map(Some).ok_or(CmdError::WrongType),
    }
}

pub(super) fn stream_mut<'a>(db: &'a mut Db, key: &[u8]) -> Result<Option<&'a mut Stream>, CmdError> {
    match db.peek(key) {
        None => return Ok(None),
        Some(e) if e.value.as_stream().is_none() => return Err(CmdError::WrongType),
        Some(_) => {}
    }
    // Consumer-group bookkeeping is not a modification of the key for WATCH or client caches
    // (Redis signals only XADD, XDEL and XTRIM): those call signal_modified themselves.
    Ok(db.get_mut_quiet(key).and_then(|v| v.as_stream_mut()))
}

pub(super) fn id_reply(id: StreamId) -> Reply {
    Reply::Bulk(id.to_bytes())
}

pub(super) fn entry_reply((id, pairs): Entry) -> Reply {
    let mut flat = Vec::with_capacity(pairs.len() * 2);
    for (f, v) in pairs {
        flat.push(Reply::Bulk(f));
        flat.push(Reply::Bulk(v));
    }
    Reply::Array(vec![id_reply(id), Reply::Array(flat)])
}

pub(super) fn entries_reply(entries: Vec<Entry>) -> Reply {
    Reply::Array(entries.into_iter().map(entry_reply).collect())
}

/// `ms-seq` as text without a heap allocation or the formatting machinery (this runs for
/// every entry of a range reply).
pub(super) fn id_text(id: StreamId, buf: &mut [u8; 41]) -> &[u8] {
    fn digits(mut n: u64, out: &mut [u8]) -> usize {
        let mut tmp = [0u8; 20];
        let mut i = tmp.len();
        loop {
            i -= 1;
            tmp[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let len = tmp.len() - i;
        out[..len].copy_from_slice(&tmp[i..]);
        len
    }
    let a = digits(id.ms, &mut buf[..20]);
    buf[a] = b'-';
    let b = digits(id.seq, &mut buf[a + 1..]);
    &buf[..a + 1 + b]
}

/// A range of entries encoded straight from the stream's nodes into one buffer (the reply
/// of XRANGE, XREAD and XREADGROUP is the same in RESP2 and RESP3), calling `on_id` for each
/// entry served.
/// Redis's streamPropagateXCLAIM: the state of one PEL entry as an idempotent XCLAIM
/// (on replay an entry that no longer exists is dropped from the PEL, as it was here).
pub(super) fn claim_log(
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    id: StreamId,
    time: u64,
    count: u64,
    last: StreamId,
) -> Vec<Bytes> {
    let b = Bytes::from_static;
    vec![
        b(b"XCLAIM"),
        Bytes::copy_from_slice(key),
        Bytes::copy_from_slice(group),
        Bytes::copy_from_slice(consumer),
        b(b"0"),
        id.to_bytes(),
        b(b"TIME"),
        Bytes::from(time.to_string()),
        b(b"RETRYCOUNT"),
        Bytes::from(count.to_string()),
        b(b"FORCE"),
        b(b"JUSTID"),
        b(b"LASTID"),
        last.to_bytes(),
    ]
}

/// Redis's streamPropagateGroupID: a group's position as XGROUP SETID ... ENTRIESREAD.
pub(super) fn group_id_log(key: &[u8], group: &[u8], g: &Group) -> Vec<Bytes> {
    let read = g.entries_read.map_or(-1, |n| n as i64);
    vec![
        Bytes::from_static(b"XGROUP"),
        Bytes::from_static(b"SETID"),
        Bytes::copy_from_slice(key),
        Bytes::copy_from_slice(group),
        g.last_id.to_bytes(),
        Bytes::from_static(b"ENTRIESREAD"),
        Bytes::from(read.to_string()),
    ]
}

pub(super) fn consumer_log(key: &[u8], group: &[u8], consumer: &[u8]) -> Vec<Bytes> {
    let b = Bytes::from_static;
    vec![
        b(b"XGROUP"),
        b(b"CREATECONSUMER"),
        Bytes::copy_from_slice(key),
        Bytes::copy_from_slice(group),
        Bytes::copy_from_slice(consumer),
    ]
}

pub(super) fn range_encoded(
    s: &Stream,
    start: StreamId,
    end: StreamId,
    count: usize,
    rev: bool,
    mut on_id: impl FnMut(StreamId),
) -> Reply {
    // Sized for a few typical entries: growing from empty reallocates several times.
    let mut body = BytesMut::with_capacity(if count == 0 { 1024 } else { count.min(16) * 96 });
    let mut idbuf = [0u8; 41];
    let n = s.visit_range(start, end, count, rev, |id, flat| {
        on_id(id);
        put_array_len(&mut body, 2);
        put_bulk(&mut body, id_text(id, &mut idbuf));
        put_array_len(&mut body, flat.len());
        for x in flat {
            put_bulk(&mut body, x);
        }
    });
    let mut out = BytesMut::with_capacity(body.len() + 16);
    put_array_len(&mut out, n);
    out.extend_from_slice(&body);
    Reply::Encoded(out.freeze())
}

/// Trimming options shared by XADD and XTRIM.
pub(super) struct TrimArgs {
    how: Option<Trim>,
    approx: bool,
    limit: u64,
    /// Where the `~` and the threshold are in argv (for logging the exact trim).
    approx_at: usize,
    threshold_at: usize,
}

impl TrimArgs {
    /// The command as it must replay: an approximate trim becomes the exact one it turned
    /// out to be (`=` and the resulting length, or first ID), so a replay with other node
    /// sizes trims the same (Redis's streamRewriteApproxSpecifier / TrimArgument).
    fn exact(&self, argv: &mut [Bytes], s: &crate::types::stream::Stream) {
        if !self.approx {
            return;
        }
        argv[self.approx_at] = Bytes::from_static(b"=");
        argv[self.threshold_at] = match self.how {
            Some(Trim::MaxLen(_)) => Bytes::from(s.len().to_string()),
            _ => {
                // Nothing left: the highest ID, which trims everything on a replica too
                // (Redis's streamGetEdgeID).
                let first = s.first_entry().map_or(StreamId::MAX, |e| e.0);
                first.to_bytes()
            }
        };
    }
}

/// Parses `[NOMKSTREAM] [MAXLEN|MINID [=|~] threshold [LIMIT n]]` from `i`; for XADD it stops
/// at the ID, which it returns with the position of the first field. Redis's
/// streamParseAddOrTrimArgsOrReply.
#[allow(clippy::type_complexity)]
pub(super) fn parse_trim(
    ctx: &Ctx,
    argv: &[&[u8]],
    xadd: bool,
) -> Result<(TrimArgs, bool, Option<(StreamId, bool)>, usize), CmdError> {
    let mut t = TrimArgs { how: None, approx: false, limit: 0, approx_at: 0, threshold_at: 0 };
    let mut limit_given = false;
    let mut nomkstream = false;
    let mut id = None;
    let mut i = 2;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let a = &argv[i];
        if xadd && &a[..] == b"*" {
            break;
        } else if (is(a, "maxlen") || is(a, "minid")) && more > 0 {
            if t.how.is_some() {
                return Err(CmdError::msg(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                ));
            }
            t.approx = false;
            let next = argv[i + 1];
            if more >= 2 && (next == b"~" || next == b"=") {
                t.approx = next == b"~";
                t.approx_at = i + 1;
                i += 1;
            }
            t.threshold_at = i + 1;
            let v = &argv[i + 1];
            if is(a, "maxlen") {
                let n = int(v)?;
                if n < 0 {
                    return Err(CmdError::msg("The MAXLEN argument must be >= 0."));
                }
                t.how = Some(Trim::MaxLen(n as u64));
            } else {
                t.how = Some(Trim::MinId(strict_id(v)?));
            }
            i += 2;
            continue;
        } else if is(a, "limit") && more > 0 {
            let n = int(argv[i + 1])?;
            if n < 0 {
                return Err(CmdError::msg("The LIMIT argument must be >= 0."));
            }
            t.limit = n as u64;
            limit_given = true;
            i += 2;
            continue;
        } else if xadd && is(a, "nomkstream") {
            nomkstream = true;
        } else if xadd {
            id = Some(parse_add_id(a)?);
            break;
        } else {
            return Err(CmdError::Syntax);
        }
        i += 1;
    }
    if t.limit > 0 && t.how.is_none() {
        return Err(CmdError::msg("syntax error, LIMIT cannot be used without specifying a trimming strategy"));
    }
    if !xadd && t.how.is_none() {
        return Err(CmdError::msg("syntax error, XTRIM must be called with a trimming strategy"));
    }
    if ctx.sess.must_obey() {
        // The master's stream and the log hold exact trims; LIMIT in them is not enforced.
        t.limit = 0;
    } else if limit_given {
        if !t.approx {
            return Err(CmdError::msg("syntax error, LIMIT cannot be used without the special ~ option"));
        }
    } else if t.approx {
        let per = ctx.srv.config.int("stream-node-max-entries");
        let l = 100 * per;
        t.limit = if l <= 0 { 10_000 } else { l.min(1_000_000) as u64 };
    } else {
        t.limit = 0;
    }
    Ok((t, nomkstream, id, i + 1))
}

/// An explicit XADD ID: `ms-seq`, `ms` (sequence 0) or `ms-*`. The flag says whether the
/// sequence was given.
pub(super) fn parse_add_id(a: &[u8]) -> Result<(StreamId, bool), CmdError> {
    if let Some(ms) = a.strip_suffix(b"-*") {
        return Ok((StreamId::new(parse_u64(ms).ok_or_else(invalid_id)?, 0), false));
    }
    Ok((strict_id(a)?, true))
}

pub(super) fn xadd(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (trim, nomkstream, id, field_pos) = parse_trim(ctx, argv, true)?;
    let fields = argv.get(field_pos..).unwrap_or_default();
    if fields.len() < 2 || !fields.len().is_multiple_of(2) {
        return Err(CmdError::WrongArity("xadd".into()));
    }
    if let Some((id, true)) = id
        && id.is_zero()
    {
        return Err(CmdError::msg("The ID specified in XADD must be greater than 0-0"));
    }
    let now = ctx.now_ms();
    let lim = limits(ctx);
    let logging = ctx.logging();
    let key = &argv[1];
    let db = ctx.db();
    // The ID is checked before the stream is touched: a refused XADD changes nothing (no
    // invalidation for client caches, no WATCH trigger).
    let last = match db.peek(key) {
        Some(e) => e.value.as_stream().ok_or(CmdError::WrongType)?.last_id,
        None if nomkstream => return Ok(Reply::Null),
        None => StreamId::ZERO,
    };
    if last == StreamId::MAX {
        return Err(CmdError::msg("The stream has exhausted the last possible ID, unable to add more items"));
    }
    let new_id = match id {
        None => {
            if now > last.ms {
                StreamId::new(now, 0)
            } else {
                last.next().unwrap_or(StreamId::MAX)
            }
        }
        Some((id, true)) => id,
        Some((id, false)) if id.ms == last.ms => {
            if last.seq == u64::MAX {
                return Err(CmdError::msg(
                    "The ID specified in XADD is equal or smaller than the target stream top item",
                ));
            }
            StreamId::new(last.ms, last.seq + 1)
        }
        Some((id, false)) => id,
    };
    if new_id <= last {
        return Err(CmdError::msg("The ID specified in XADD is equal or smaller than the target stream top item"));
    }
    if !db.contains(key) {
        db.set(key, Value::Stream(Box::default()), false);
    }
    let Some(s) = db.get_mut(key).and_then(|v| v.as_stream_mut()) else { return Err(CmdError::WrongType) };
    // Fields are encoded into the node: no owned copy of the arguments is needed.
    s.append(new_id, fields, lim);
    let trimmed = match trim.how {
        Some(how) => s.trim(how, trim.approx, trim.limit),
        None => 0,
    };
    // A generated ID replays as the ID it became, an approximate trim as the exact one.
    let log = logging.then(|| {
        let mut buf = [0u8; 41];
        let mut cmd = crate::protocol::owned(argv);
        cmd[field_pos - 1] = Bytes::copy_from_slice(id_text(new_id, &mut buf));
        trim.exact(&mut cmd, s);
        cmd
    });
    if let Some(cmd) = log {
        ctx.log_as(cmd);
    }
    ctx.notify(ev::STREAM, "xadd", key);
    if trimmed > 0 {
        ctx.notify(ev::STREAM, "xtrim", key);
    }
    Ok(id_reply(new_id))
}

pub(super) fn xtrim(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (trim, _, _, _) = parse_trim(ctx, argv, false)?;
    let Some(s) = stream_mut(ctx.db(), argv[1])? else { return Ok(Reply::Int(0)) };
    let n = match trim.how {
        Some(how) => s.trim(how, trim.approx, trim.limit),
        None => 0,
    };
    let exact = (n > 0 && trim.approx).then(|| {
        let mut cmd = crate::protocol::owned(argv);
        trim.exact(&mut cmd, s);
        cmd
    });
    if n > 0 {
        if let Some(cmd) = exact {
            ctx.log_as(cmd);
        }
        ctx.db().signal_changes(argv[1], n as usize);
        ctx.notify(ev::STREAM, "xtrim", argv[1]);
    }
    Ok(Reply::Int(n as i64))
}

pub(super) fn range_generic(ctx: &mut Ctx, argv: &[&[u8]], rev: bool) -> CmdResult {
    let (lo, hi) = if rev { (&argv[3], &argv[2]) } else { (&argv[2], &argv[3]) };
    let start = range_bound(lo, true)?;
    let end = range_bound(hi, false)?;
    let mut count: Option<i64> = None;
    let mut j = 4;
    while j < argv.len() {
        if is(argv[j], "count") && j + 1 < argv.len() {
            count = Some(int(argv[j + 1])?.max(0));
            j += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // A missing key is an empty array and a wrong type an error, whatever the COUNT.
    let Some(s) = stream_ref(ctx.db(), argv[1])? else { return Ok(Reply::Array(vec![])) };
    if count == Some(0) {
        return Ok(Reply::NullArray);
    }
    Ok(range_encoded(s, start, end, count.unwrap_or(0) as usize, rev, |_| {}))
}

pub(super) fn xrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, false)
}

pub(super) fn xrevrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    range_generic(ctx, argv, true)
}

pub(super) fn xlen(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(stream_ref(ctx.db(), argv[1])?.map_or(0, |s| s.len()) as i64))
}

pub(super) fn xdel(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // A missing key answers 0 before the IDs are checked, as in Redis.
    let Some(s) = stream_mut(ctx.db(), argv[1])? else { return Ok(Reply::Int(0)) };
    let ids = argv[2..].iter().map(|a| strict_id(a)).collect::<Result<Vec<_>, _>>()?;
    let mut n = 0;
    for id in ids {
        if s.delete(id) {
            n += 1;
        }
    }
    if n > 0 {
        s.refresh_first_id();
        ctx.db().signal_changes(argv[1], n as usize);
        ctx.notify(ev::STREAM, "xdel", argv[1]);
    }
    Ok(Reply::Int(n as i64))
}

/// What XREAD / XREADGROUP were asked.
pub(super) struct ReadArgs {
    count: usize,
    block: Option<Option<u64>>,
    group: Option<(Bytes, Bytes)>,
    noack: bool,
    keys: Vec<Bytes>,
    ids: Vec<Bytes>,
    /// Index of the first ID argument.
    ids_at: usize,
}

pub(super) fn parse_read(ctx: &Ctx, argv: &[&[u8]], group_cmd: bool) -> Result<ReadArgs, CmdError> {
    let mut r = ReadArgs { count: 0, block: None, group: None, noack: false, keys: vec![], ids: vec![], ids_at: 0 };
    let mut streams_at = None;
    let mut i = 1;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        let a = &argv[i];
        if is(a, "block") && more > 0 {
            if ctx.sess.in_script {
                // Named as the script spelled it, as Redis does.
                return Err(CmdError::msg(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(argv[0])
                )));
            }
            let ms = parse_i64(argv[i + 1]).ok_or(CmdError::TimeoutNotInteger)?;
            if ms < 0 {
                return Err(CmdError::msg("timeout is negative"));
            }
            r.block = Some((ms > 0).then(|| ctx.srv.now_ms.saturating_add(ms as u64)));
            i += 2;
        } else if is(a, "count") && more > 0 {
            r.count = int(argv[i + 1])?.max(0) as usize;
            i += 2;
        } else if is(a, "streams") && more > 0 {
            streams_at = Some(i + 1);
            break;
        } else if is(a, "group") && more >= 2 {
            if !group_cmd {
                return Err(CmdError::msg(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.group = Some((Bytes::copy_from_slice(argv[i + 1]), Bytes::copy_from_slice(argv[i + 2])));
            i += 3;
        } else if is(a, "noack") {
            if !group_cmd {
                return Err(CmdError::msg(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                ));
            }
            r.noack = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let Some(at) = streams_at else { return Err(CmdError::Syntax) };
    let rest = &argv[at..];
    if !rest.len().is_multiple_of(2) {
        // Redis 7.0 says XREAD and '$' for XREADGROUP too.
        return Err(CmdError::msg(
            "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
        ));
    }
    if group_cmd && r.group.is_none() {
        return Err(CmdError::msg("Missing GROUP option for XREADGROUP"));
    }
    let n = rest.len() / 2;
    r.keys = crate::protocol::owned(&rest[..n]);
    r.ids = crate::protocol::owned(&rest[n..]);
    r.ids_at = at + n;
    Ok(r)
}

/// A requested position: after this ID, or the group's new entries (`>`).
#[derive(Clone, Copy)]
pub(super) enum From {
    After(StreamId),
    New,
}

pub(super) fn xread(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    read_generic(ctx, argv, false)
}

pub(super) fn xreadgroup(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    read_generic(ctx, argv, true)
}

pub(super) fn read_generic(ctx: &mut Ctx, argv: &[&[u8]], group_cmd: bool) -> CmdResult {
    let r = parse_read(ctx, argv, group_cmd)?;
    let retrying = ctx.sess.serving.is_some();
    // Resolve the IDs (and check keys and groups) before serving anything.
    let mut froms = Vec::with_capacity(r.keys.len());
    // A waiting client re-run for one ready stream reads that stream alone, at the ID it
    // first gave for it (Redis keeps one per key).
    // (One pass: a repeated key is found by its first position, not by rescanning.)
    let first = retrying.then(|| r.keys.iter().position(|k| ctx.sess.serves(k))).flatten();
    let skip: Vec<bool> =
        (0..r.keys.len()).map(|i| !ctx.sess.serves(&r.keys[i]) || (retrying && first != Some(i))).collect();
    for ((key, id), &skip) in r.keys.iter().zip(&r.ids).zip(&skip) {
        if skip {
            froms.push(From::New);
            continue;
        }
        let s = match ctx.db().get(key) {
            None => None,
            Some(v) => match v.as_stream() {
                Some(s) => Some(s),
                None if retrying => None,
                None => return Err(CmdError::WrongType),
            },
        };
        if let Some((g, _)) = &r.group
            && s.is_none_or(|s| !s.groups.contains_key(g))
        {
            // A blocked XREADGROUP is told when its stream or group went away.
            if retrying && s.is_none() {
                return Err(CmdError::Raw("UNBLOCKED the stream key no longer exists".into()));
            }
            if retrying {
                return Err(CmdError::Raw(
                    "NOGROUP the consumer group this client was blocked on no longer exists".into(),
                ));
            }
            return Err(CmdError::Raw(format!(
                "NOGROUP No such key '{}' or consumer group '{}' in XREADGROUP with GROUP option",
                lossy(key),
                lossy(g)
            )));
        }
        let from = if &id[..] == b"$" {
            if group_cmd {
                return Err(CmdError::msg(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                ));
            }
            From::After(s.map_or(StreamId::ZERO, |s| s.last_id))
        } else if &id[..] == b">" {
            if !group_cmd {
                return Err(CmdError::msg(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                ));
            }
            From::New
        } else {
            From::After(strict_id(id)?)
        };
        froms.push(from);
    }
    let now = ctx.now_ms();
    let mut out = Vec::new();
    for ((key, from), _) in r.keys.iter().zip(&froms).zip(&skip).filter(|(_, skip)| !**skip) {
        let served = match &r.group {
            None => {
                let From::After(after) = *from else { continue };
                let Some(s) = ctx.db().get(key).and_then(|v| v.as_stream()) else { continue };
                // Only live entries count: past deleted ones Redis blocks, never answers empty.
                if s.is_empty() || s.last_id <= after || s.last_live_id().is_none_or(|id| id <= after) {
                    continue;
                }
                let Some(start) = after.next() else { continue };
                range_encoded(s, start, StreamId::MAX, r.count, false, |_| {})
            }
            Some((group, consumer)) => match serve_group(ctx, key, group, consumer, *from, r.count, r.noack, now) {
                Some(reply) => reply,
                None => continue,
            },
        };
        out.push((Reply::Bulk(key.clone()), served));
    }
    if !out.is_empty() {
        return Ok(Reply::PairsMap(out));
    }
    let Some(deadline) = r.block else { return Ok(Reply::NullArray) };
    // Block: `$` is resolved now, so entries added later are what the client receives.
    let mut stored = crate::protocol::owned(argv);
    for (i, from) in froms.iter().enumerate() {
        if let (From::After(id), true) = (from, argv[r.ids_at + i] == b"$") {
            stored[r.ids_at + i] = id.to_bytes();
        }
    }
    if !r.keys.is_empty() && r.count == 0 {
        // Like Redis, a blocked read without COUNT is served at most 1000 entries.
        stored.splice(1..1, [Bytes::from_static(b"COUNT"), Bytes::from_static(b"1000")]);
    }
    super::block(
        ctx,
        &crate::protocol::views(&stored),
        &crate::protocol::views(&r.keys),
        deadline,
        Reply::NullArray,
        Reply::NullArray,
    )
}

pub(super) fn xsetid(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let id = strict_id(argv[2])?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::ZERO;
    let mut i = 3;
    while i < argv.len() {
        let more = argv.len() - 1 - i;
        if is(argv[i], "entriesadded") && more > 0 {
            let n = int(argv[i + 1])?;
            if n < 0 {
                return Err(CmdError::msg("entries_added must be positive"));
            }
            entries_added = Some(n as u64);
            i += 2;
        } else if is(argv[i], "maxdeletedid") && more > 0 {
            max_deleted = strict_id(argv[i + 1])?;
            if id < max_deleted {
                return Err(CmdError::msg(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                ));
            }
            i += 2;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    // (Redis 7.0 does not compare with the stream's current max_deleted_entry_id.)
    let Some(s) = stream_mut(ctx.db(), argv[1])? else { return Err(CmdError::NoSuchKey) };
    if !s.is_empty() {
        let top = s.last_live_id().unwrap_or(StreamId::ZERO);
        if id < top {
            return Err(CmdError::msg("The ID specified in XSETID is smaller than the target stream top item"));
        }
        if entries_added.is_some_and(|n| s.len() > n) {
            return Err(CmdError::msg(
                "The entries_added specified in XSETID is smaller than the target stream length",
            ));
        }
    }
    s.last_id = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if !max_deleted.is_zero() {
        s.max_deleted = max_deleted;
    }
    // Not signalled: Redis's XSETID does not touch WATCH or client caches.
    ctx.db().unsignalled_change(argv[1], 1);
    ctx.notify(ev::STREAM, "xsetid", argv[1]);
    Ok(OK)
}
