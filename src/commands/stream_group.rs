//! Stream consumer groups: XREADGROUP's delivery, XACK, XPENDING, XCLAIM, XAUTOCLAIM and
//! XGROUP. Their state changes are logged in replay-safe forms (XCLAIM per pending entry, the
//! group's position), never as the reads themselves.

use bytes::Bytes;

use super::args::{int, is, lossy};
use super::{CmdError, CmdResult, Ctx, help_reply};
use crate::keyspace::Db;
use crate::keyspace::notify as ev;
use crate::protocol::{OK, Reply};
use crate::types::Value;
use crate::types::stream::{Stream, StreamId};
use crate::util::numfmt::parse_i64;

use super::stream::*;

/// XREADGROUP for one stream: the consumer's history after an ID, or new entries (`>`).
/// None when there is nothing to serve for new entries.
#[allow(clippy::too_many_arguments)]
pub(super) fn serve_group(
    ctx: &mut Ctx,
    key: &[u8],
    group: &[u8],
    consumer: &[u8],
    from: From,
    count: usize,
    noack: bool,
    now: u64,
) -> Option<Reply> {
    // Building the logs costs more than the read itself; skip them when nothing replays.
    let logging = ctx.logging();
    let db = ctx.db();
    let s = db.view(key)?.as_stream()?;
    let g = s.groups.get(group)?;
    // Nothing new unless a live entry follows the group's position (entries deleted since
    // do not count: Redis then blocks rather than serve an empty list).
    if let From::New = from
        && (s.is_empty() || s.last_id <= g.last_id || s.last_live_id().is_none_or(|id| id <= g.last_id))
    {
        return None;
    }
    let s = db.get_mut_quiet(key)?.as_stream_mut()?;
    let created = s.groups.get_mut(group)?.touch_consumer(consumer, now);
    // What is logged: the consumer's creation, each PEL change as an XCLAIM, the group's new
    // position; never the read itself.
    let mut logs = Vec::new();
    if created && logging {
        logs.push(consumer_log(key, group, consumer));
    }
    let reply = match from {
        From::After(after) => {
            // History: the consumer's pending entries after `after`; deleted ones read as nil.
            let g = s.groups.get(group)?;
            let ids: Vec<StreamId> = g
                .consumers
                .get(consumer)
                .map(|c| c.pel.range(after.next().unwrap_or(StreamId::MAX)..).copied().collect())
                .unwrap_or_default();
            let mut items = Vec::new();
            for id in ids {
                if count > 0 && items.len() >= count {
                    break;
                }
                match s.get(id) {
                    Some(e) => {
                        if let Some(g) = s.groups.get_mut(group)
                            && let Some(n) = g.pel.get_mut(&id)
                        {
                            n.delivery_time = now;
                            n.delivery_count += 1;
                            if logging {
                                logs.push(claim_log(key, group, consumer, id, now, n.delivery_count, g.last_id));
                            }
                        }
                        items.push(entry_reply(e));
                    }
                    None => items.push(Reply::Array(vec![id_reply(id), Reply::NullArray])),
                }
            }
            Reply::Array(items)
        }
        From::New => {
            let start = s.groups.get(group)?.last_id.next()?;
            let mut ids = Vec::new();
            let reply = range_encoded(s, start, StreamId::MAX, count, false, |id| ids.push(id));
            let delivered = !ids.is_empty();
            for id in ids {
                s.advance_group(group, id);
                if !noack && let Some(g) = s.groups.get_mut(group) {
                    g.deliver(id, consumer, now, 1);
                    if logging {
                        logs.push(claim_log(key, group, consumer, id, now, 1, g.last_id));
                    }
                }
            }
            // Without NOACK the XCLAIMs carry the group's position (LASTID); with it the
            // position goes as XGROUP SETID, as Redis 7.0 propagates (its replica's
            // entries-read then lags behind until the next SETID, as Redis 7.0's does).
            if delivered
                && noack
                && logging
                && let Some(g) = s.groups.get(group)
            {
                logs.push(group_id_log(key, group, g));
            }
            reply
        }
    };
    // An XCLAIM creates its consumer: the creation goes out only when nothing else does
    // (Redis 7.0 propagates only the XCLAIMs).
    if created && logs.iter().any(|l| l[0].eq_ignore_ascii_case(b"XCLAIM")) {
        logs.remove(0);
    }
    ctx.db().unsignalled_change(key, 1);
    log_group_changes(ctx, key, logs, created);
    Some(reply)
}

pub(super) fn xack(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // No key or group answers 0 before the IDs are checked, as in Redis.
    let Some(s) = stream_mut(ctx.db(), argv[1])? else { return Ok(Reply::Int(0)) };
    let Some(g) = s.groups.get_mut(argv[2]) else { return Ok(Reply::Int(0)) };
    let ids = argv[3..].iter().map(|a| strict_id(a)).collect::<Result<Vec<_>, _>>()?;
    let n = ids.iter().filter(|id| g.ack(**id)).count();
    ctx.db().unsignalled_change(argv[1], n);
    Ok(Reply::Int(n as i64))
}

pub(super) fn xpending(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let argc = argv.len();
    if argc != 3 && !(6..=9).contains(&argc) {
        return Err(CmdError::Syntax);
    }
    let mut detail = None;
    if argc >= 6 {
        let mut at = 3;
        let mut min_idle = 0i64;
        if is(argv[3], "idle") {
            min_idle = int(argv[4])?;
            if argc < 8 {
                return Err(CmdError::Syntax);
            }
            at += 2;
        }
        let count = int(argv[at + 2])?.max(0) as usize;
        let start = range_bound(argv[at], true)?;
        let end = range_bound(argv[at + 1], false)?;
        let consumer = argv.get(at + 3).copied();
        detail = Some((min_idle, start, end, count, consumer));
    }
    let now = ctx.now_ms();
    let s = match stream_ref(ctx.db(), argv[1])? {
        Some(s) => s,
        None => return Err(nogroup(argv[1], argv[2])),
    };
    let Some(g) = s.groups.get(argv[2]) else { return Err(nogroup(argv[1], argv[2])) };
    let Some((min_idle, start, end, count, consumer)) = detail else {
        if g.pel.is_empty() {
            return Ok(Reply::Array(vec![Reply::Int(0), Reply::Null, Reply::Null, Reply::NullArray]));
        }
        let first = g.pel.keys().next().copied().unwrap_or_default();
        let last = g.pel.keys().next_back().copied().unwrap_or_default();
        let per: Vec<Reply> = g
            .consumers
            .iter()
            .filter(|(_, c)| !c.pel.is_empty())
            .map(|(n, c)| Reply::Array(vec![Reply::Bulk(n.clone()), Reply::Bulk(Bytes::from(c.pel.len().to_string()))]))
            .collect();
        return Ok(Reply::Array(vec![
            Reply::Int(g.pel.len() as i64),
            id_reply(first),
            id_reply(last),
            Reply::Array(per),
        ]));
    };
    let ids: Vec<StreamId> = match &consumer {
        Some(c) => match g.consumers.get(*c) {
            Some(c) => c.pel.range(start..).take_while(|id| **id <= end).copied().collect(),
            None => return Ok(Reply::Array(vec![])),
        },
        None => g.pel.range(start..).take_while(|(id, _)| **id <= end).map(|(id, _)| *id).collect(),
    };
    let mut out = Vec::new();
    for id in ids {
        if out.len() >= count {
            break;
        }
        let Some(n) = g.pel.get(&id) else { continue };
        let idle = now.saturating_sub(n.delivery_time);
        if min_idle > 0 && (idle as i64) < min_idle {
            continue;
        }
        out.push(Reply::Array(vec![
            id_reply(id),
            Reply::Bulk(n.consumer.clone()),
            Reply::Int(idle as i64),
            Reply::Int(n.delivery_count as i64),
        ]));
    }
    Ok(Reply::Array(out))
}

pub(super) fn xclaim(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, group, consumer) = (argv[1], argv[2], argv[3]);
    match stream_ref(ctx.db(), key)? {
        Some(s) if s.groups.contains_key(group) => {}
        _ => return Err(nogroup(key, group)),
    }
    let min_idle =
        parse_i64(argv[4]).ok_or_else(|| CmdError::msg("Invalid min-idle-time argument for XCLAIM"))?.max(0) as u64;
    let mut j = 5;
    let mut ids = Vec::new();
    while j < argv.len() {
        match strict_id(argv[j]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now_ms();
    let (mut force, mut justid) = (false, false);
    let mut retrycount: Option<u64> = None;
    let mut delivery: Option<i64> = None;
    let mut last_id = StreamId::ZERO;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        let a = argv[j];
        if is(a, "force") {
            force = true;
        } else if is(a, "justid") {
            justid = true;
        } else if is(a, "idle") && more > 0 {
            j += 1;
            let v = parse_i64(argv[j]).ok_or_else(|| CmdError::msg("Invalid IDLE option argument for XCLAIM"))?;
            delivery = Some((now as i64).saturating_sub(v));
        } else if is(a, "time") && more > 0 {
            j += 1;
            delivery =
                Some(parse_i64(argv[j]).ok_or_else(|| CmdError::msg("Invalid TIME option argument for XCLAIM"))?);
        } else if is(a, "retrycount") && more > 0 {
            j += 1;
            let v = parse_i64(argv[j]).ok_or_else(|| CmdError::msg("Invalid RETRYCOUNT option argument for XCLAIM"))?;
            retrycount = Some(v.max(0) as u64);
        } else if is(a, "lastid") && more > 0 {
            j += 1;
            last_id = strict_id(argv[j])?;
        } else {
            return Err(CmdError::msg(format!("Unrecognized XCLAIM option '{}'", lossy(a))));
        }
        j += 1;
    }
    let delivery = match delivery {
        Some(t) if t >= 0 && t as u64 <= now => t as u64,
        _ => now,
    };
    let replayed = ctx.sess.must_obey();
    let Some(s) = stream_mut(ctx.db(), key)? else { return Err(nogroup(key, group)) };
    let mut created = false;
    let mut out = Vec::new();
    let mut changed = false;
    let mut moved_last_id = false;
    let mut logs = Vec::new();
    if let Some(g) = s.groups.get_mut(group)
        && last_id > g.last_id
    {
        changed = true;
        moved_last_id = true;
        if replayed {
            // A master's or a log's XCLAIMs stand for an XREADGROUP, which carried no
            // ENTRIESREAD in Redis 7.0: count the read as that XREADGROUP did, so the
            // group's read counter survives a replay or a sync (Redis 7.0's does not).
            s.advance_group(group, last_id);
        } else {
            g.last_id = last_id;
        }
    }
    for id in ids {
        let exists = s.get(id);
        let Some(g) = s.groups.get_mut(group) else { break };
        let Some(entry) = exists else {
            // The entry is gone: drop it from the PEL.
            if g.ack(id) {
                changed = true;
                logs.push(claim_log(key, group, consumer, id, 0, 0, g.last_id));
            }
            continue;
        };
        let nack = g.pel.get(&id).cloned();
        let nack = match nack {
            Some(n) => {
                if min_idle > 0 && now.saturating_sub(n.delivery_time) < min_idle {
                    continue;
                }
                Some(n)
            }
            None if force => None,
            None => continue,
        };
        if g.touch_consumer(consumer, now) {
            created = true;
            logs.push(consumer_log(key, group, consumer));
        }
        let count = match retrycount {
            Some(c) => c,
            None => nack.as_ref().map_or(0, |n| n.delivery_count) + (!justid as u64),
        };
        g.deliver(id, consumer, delivery, count);
        changed = true;
        logs.push(claim_log(key, group, consumer, id, delivery, count, g.last_id));
        out.push(if justid { id_reply(id) } else { entry_reply(entry) });
    }
    // LASTID with nothing claimed still moved the group.
    if moved_last_id
        && logs.is_empty()
        && let Some(g) = s.groups.get(group)
    {
        logs.push(group_id_log(key, group, g));
    }
    if changed {
        ctx.db().unsignalled_change(key, 1);
    }
    log_group_changes(ctx, key, logs, created);
    Ok(Reply::Array(out))
}

pub(super) fn xautoclaim(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, group, consumer) = (argv[1], argv[2], argv[3]);
    let min_idle =
        parse_i64(argv[4]).ok_or_else(|| CmdError::msg("Invalid min-idle-time argument for XAUTOCLAIM"))?.max(0) as u64;
    let start = range_bound(argv[5], true)?;
    let mut count: u64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < argv.len() {
        let more = argv.len() - 1 - j;
        if is(argv[j], "count") && more > 0 {
            let max = (i64::MAX / 16) as u64;
            count = match parse_i64(argv[j + 1]) {
                Some(n) if n >= 1 && (n as u64) <= max => n as u64,
                _ => return Err(CmdError::msg("COUNT must be > 0")),
            };
            j += 2;
        } else if is(argv[j], "justid") {
            justid = true;
            j += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    let now = ctx.now_ms();
    let s = match stream_mut(ctx.db(), key)? {
        Some(s) if s.groups.contains_key(group) => s,
        _ => return Err(nogroup(key, group)),
    };
    let mut attempts = count * 10;
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut created = false;
    let mut cursor = StreamId::ZERO;
    // At most `attempts` entries are looked at, plus one for the next cursor.
    let look = usize::try_from(attempts).unwrap_or(usize::MAX).saturating_add(1);
    let pending: Vec<StreamId> =
        s.groups.get(group).map(|g| g.pel.range(start..).take(look).map(|(id, _)| *id).collect()).unwrap_or_default();
    let mut logs = Vec::new();
    let mut it = pending.into_iter().peekable();
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let Some(id) = it.next() else { break };
        let entry = s.get(id);
        let Some(g) = s.groups.get_mut(group) else { break };
        let Some(entry) = entry else {
            g.ack(id);
            logs.push(claim_log(key, group, consumer, id, 0, 0, g.last_id));
            deleted.push(id_reply(id));
            count -= 1;
            continue;
        };
        let Some(n) = g.pel.get(&id).cloned() else { continue };
        if min_idle > 0 && now.saturating_sub(n.delivery_time) < min_idle {
            continue;
        }
        if g.touch_consumer(consumer, now) {
            created = true;
            logs.push(consumer_log(key, group, consumer));
        }
        let delivered = n.delivery_count + (!justid as u64);
        g.deliver(id, consumer, now, delivered);
        logs.push(claim_log(key, group, consumer, id, now, delivered, g.last_id));
        claimed.push(if justid { id_reply(id) } else { entry_reply(entry) });
        count -= 1;
    }
    if let Some(next) = it.next() {
        cursor = next;
    }
    ctx.db().unsignalled_change(key, claimed.len() + deleted.len());
    log_group_changes(ctx, key, logs, created);
    Ok(Reply::Array(vec![id_reply(cursor), Reply::Array(claimed), Reply::Array(deleted)]))
}

pub(super) fn parse_entries_read(a: &[u8]) -> Result<Option<u64>, CmdError> {
    let n = int(a)?;
    if n < 0 && n != -1 {
        return Err(CmdError::msg("value for ENTRIESREAD must be positive or -1"));
    }
    Ok((n >= 0).then_some(n as u64))
}

/// The stream of an XGROUP subcommand, with Redis's error when it is missing.
pub(super) fn group_stream<'a>(db: &'a mut Db, key: &[u8]) -> Result<&'a mut Stream, CmdError> {
    stream_mut(db, key)?.ok_or_else(|| {
        CmdError::msg(
            "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
        )
    })
}

pub(super) fn no_such_group(key: &[u8], group: &[u8]) -> CmdError {
    CmdError::Raw(format!("NOGROUP No such consumer group '{}' for key name '{}'", lossy(group), lossy(key)))
}

pub(super) fn xgroup_create(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut mkstream = false;
    let mut entries_read = None;
    let mut i = 5;
    while i < argv.len() {
        if is(argv[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if is(argv[i], "entriesread") && i + 1 < argv.len() {
            entries_read = parse_entries_read(argv[i + 1])?;
            i += 2;
        } else {
            return Err(super::args::subcommand_syntax(argv, "XGROUP"));
        }
    }
    let (key, group) = (argv[2], argv[3]);
    let db = ctx.db();
    let exists = match db.peek(key) {
        Some(e) if e.value.as_stream().is_none() => return Err(CmdError::WrongType),
        Some(_) => true,
        None => false,
    };
    if !exists && !mkstream {
        group_stream(db, key)?;
    }
    let id = if argv[4] == b"$" {
        db.view(key).and_then(|v| v.as_stream()).map_or(StreamId::ZERO, |s| s.last_id)
    } else {
        strict_id(argv[4])?
    };
    if !exists {
        db.set(key, Value::Stream(Box::default()), false);
    }
    let s = group_stream(db, key)?;
    if s.groups.contains_key(group) {
        return Err(CmdError::Raw("BUSYGROUP Consumer Group name already exists".into()));
    }
    s.groups.insert(
        super::args::owned(group),
        crate::types::stream::Group { last_id: id, entries_read, ..Default::default() },
    );
    ctx.db().unsignalled_change(key, 1);
    ctx.notify(ev::STREAM, "xgroup-create", key);
    Ok(OK)
}

pub(super) fn xgroup_setid(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, group) = (argv[2], argv[3]);
    // Options first, as Redis parses them before looking the key up.
    let mut entries_read = None;
    let mut i = 5;
    while i < argv.len() {
        if !is(argv[i], "entriesread") || i + 1 >= argv.len() {
            return Err(super::args::subcommand_syntax(argv, "XGROUP"));
        }
        entries_read = parse_entries_read(argv[i + 1])?;
        i += 2;
    }
    let s = group_stream(ctx.db(), key)?;
    if !s.groups.contains_key(group) {
        return Err(no_such_group(key, group));
    }
    let id = if argv[4] == b"$" { s.last_id } else { parse_id(argv[4], 0, true)? };
    if let Some(g) = s.groups.get_mut(group) {
        g.last_id = id;
        g.entries_read = entries_read;
    }
    ctx.db().unsignalled_change(key, 1);
    ctx.notify(ev::STREAM, "xgroup-setid", key);
    Ok(OK)
}

pub(super) fn xgroup_destroy(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, group) = (argv[2], argv[3]);
    let s = group_stream(ctx.db(), key)?;
    if s.groups.remove(group).is_none() {
        return Ok(Reply::Int(0));
    }
    // Blocked XREADGROUPs on this group must learn it is gone.
    ctx.db().signal_ready(key);
    ctx.db().unsignalled_change(key, 1);
    ctx.notify(ev::STREAM, "xgroup-destroy", key);
    Ok(Reply::Int(1))
}

pub(super) fn xgroup_createconsumer(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, group) = (argv[2], argv[3]);
    let now = ctx.now_ms();
    let s = group_stream(ctx.db(), key)?;
    let Some(g) = s.groups.get_mut(group) else { return Err(no_such_group(key, group)) };
    if g.consumers.contains_key(argv[4]) {
        return Ok(Reply::Int(0));
    }
    g.touch_consumer(&super::args::owned(argv[4]), now);
    ctx.db().unsignalled_change(key, 1);
    ctx.notify(ev::STREAM, "xgroup-createconsumer", key);
    Ok(Reply::Int(1))
}

pub(super) fn xgroup_delconsumer(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let (key, group) = (argv[2], argv[3]);
    let s = group_stream(ctx.db(), key)?;
    let Some(g) = s.groups.get_mut(group) else { return Err(no_such_group(key, group)) };
    // A consumer that is not there changes nothing: no event, nothing propagated.
    let Some(c) = g.consumers.remove(argv[4]) else { return Ok(Reply::Int(0)) };
    for id in &c.pel {
        g.pel.remove(id);
    }
    ctx.db().unsignalled_change(key, 1);
    ctx.notify(ev::STREAM, "xgroup-delconsumer", key);
    Ok(Reply::Int(c.pel.len() as i64))
}

pub(super) fn xgroup_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "XGROUP",
        &[
            "CREATE <key> <groupname> <id|$> [option]",
            "    Create a new consumer group. Options are:",
            "    * MKSTREAM",
            "      Create the empty stream if it does not exist.",
            "    * ENTRIESREAD entries_read",
            "      Set the group's entries_read counter (internal use).",
            "CREATECONSUMER <key> <groupname> <consumer>",
            "    Create a new consumer in the specified group.",
            "DELCONSUMER <key> <groupname> <consumer>",
            "    Remove the specified consumer.",
            "DESTROY <key> <groupname>",
            "    Remove the specified group.",
            "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
            "    Set the current group ID and entries_read counter.",
        ],
    ))
}

/// What a consumer-group read or claim logs (its replay-safe forms only, never the command
/// itself), and the event of a consumer it created.
fn log_group_changes(ctx: &mut Ctx, key: &[u8], logs: Vec<Vec<Bytes>>, created: bool) {
    ctx.log_only_explicit();
    for l in logs {
        ctx.log_as(l);
    }
    if created {
        ctx.notify(ev::STREAM, "xgroup-createconsumer", key);
    }
}
