//! XINFO STREAM, GROUPS and CONSUMERS.

use super::args::{int, is};
use super::{CmdError, CmdResult, Ctx, help_reply};
use crate::protocol::Reply;
use crate::types::stream::{Stream, StreamId};

use super::stream::*;
use super::stream_group::no_such_group;

pub(super) fn kv(k: &str, v: Reply) -> (Reply, Reply) {
    (Reply::bulk_str(k), v)
}

pub(super) fn opt_int(v: Option<u64>) -> Reply {
    v.map_or(Reply::Null, |n| Reply::Int(n as i64))
}

pub(super) fn xinfo_stream(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let mut full = false;
    let mut count: usize = 10;
    if argv.len() > 3 {
        if !is(argv[3], "full") {
            return Err(CmdError::Syntax);
        }
        full = true;
        match argv.len() {
            4 => {}
            6 if is(argv[4], "count") => {
                let n = int(argv[5])?;
                count = if n <= 0 { 0 } else { n as usize };
            }
            _ => return Err(CmdError::Syntax),
        }
    }
    let Some(s) = stream_ref(ctx.db(), argv[2])? else { return Err(CmdError::NoSuchKey) };
    let mut m = vec![
        kv("length", Reply::Int(s.len() as i64)),
        kv("radix-tree-keys", Reply::Int(s.node_count() as i64)),
        kv("radix-tree-nodes", Reply::Int(radix_nodes_estimate(s) as i64)),
        kv("last-generated-id", id_reply(s.last_id)),
        kv("max-deleted-entry-id", id_reply(s.max_deleted)),
        kv("entries-added", Reply::Int(s.entries_added as i64)),
        kv("recorded-first-entry-id", id_reply(s.first_id)),
    ];
    if !full {
        m.push(kv("groups", Reply::Int(s.groups.len() as i64)));
        m.push(kv("first-entry", s.first_entry().map_or(Reply::Null, entry_reply)));
        m.push(kv("last-entry", s.last_entry().map_or(Reply::Null, entry_reply)));
        return Ok(Reply::Map(m));
    }
    m.push(kv("entries", entries_reply(s.range(StreamId::ZERO, StreamId::MAX, count, false))));
    let mut groups = Vec::new();
    for (name, g) in &s.groups {
        let pending: Vec<Reply> = g
            .pel
            .iter()
            .take(if count == 0 { usize::MAX } else { count })
            .map(|(id, n)| {
                Reply::Array(vec![
                    id_reply(*id),
                    Reply::Bulk(n.consumer.clone()),
                    Reply::Int(n.delivery_time as i64),
                    Reply::Int(n.delivery_count as i64),
                ])
            })
            .collect();
        let consumers: Vec<Reply> = g
            .consumers
            .iter()
            .map(|(cname, c)| {
                let pending: Vec<Reply> = c
                    .pel
                    .iter()
                    .take(if count == 0 { usize::MAX } else { count })
                    .filter_map(|id| g.pel.get(id).map(|n| (id, n)))
                    .map(|(id, n)| {
                        Reply::Array(vec![
                            id_reply(*id),
                            Reply::Int(n.delivery_time as i64),
                            Reply::Int(n.delivery_count as i64),
                        ])
                    })
                    .collect();
                Reply::Map(vec![
                    kv("name", Reply::Bulk(cname.clone())),
                    kv("seen-time", Reply::Int(c.seen_time as i64)),
                    kv("pel-count", Reply::Int(c.pel.len() as i64)),
                    kv("pending", Reply::Array(pending)),
                ])
            })
            .collect();
        groups.push(Reply::Map(vec![
            kv("name", Reply::Bulk(name.clone())),
            kv("last-delivered-id", id_reply(g.last_id)),
            kv("entries-read", opt_int(g.entries_read)),
            kv("lag", s.lag(g).map_or(Reply::Null, Reply::Int)),
            kv("pel-count", Reply::Int(g.pel.len() as i64)),
            kv("pending", Reply::Array(pending)),
            kv("consumers", Reply::Array(consumers)),
        ]));
    }
    m.push(kv("groups", Reply::Array(groups)));
    Ok(Reply::Map(m))
}

/// Redis reports the size of its radix tree's internals; Ember has no radix tree. This is
/// the node count a radix tree over the same node keys would have at least (one per key and
/// the root), close to but not always equal to Redis's figure.
pub(super) fn radix_nodes_estimate(s: &Stream) -> usize {
    if s.node_count() == 0 { 1 } else { s.node_count() + 1 }
}

pub(super) fn xinfo_groups(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let Some(s) = stream_ref(ctx.db(), argv[2])? else { return Err(CmdError::NoSuchKey) };
    let out = s
        .groups
        .iter()
        .map(|(name, g)| {
            Reply::Map(vec![
                kv("name", Reply::Bulk(name.clone())),
                kv("consumers", Reply::Int(g.consumers.len() as i64)),
                kv("pending", Reply::Int(g.pel.len() as i64)),
                kv("last-delivered-id", id_reply(g.last_id)),
                kv("entries-read", opt_int(g.entries_read)),
                kv("lag", s.lag(g).map_or(Reply::Null, Reply::Int)),
            ])
        })
        .collect();
    Ok(Reply::Array(out))
}

pub(super) fn xinfo_consumers(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let now = ctx.now_ms();
    let Some(s) = stream_ref(ctx.db(), argv[2])? else { return Err(CmdError::NoSuchKey) };
    let Some(g) = s.groups.get(argv[3]) else { return Err(no_such_group(argv[2], argv[3])) };
    let out = g
        .consumers
        .iter()
        .map(|(name, c)| {
            Reply::Map(vec![
                kv("name", Reply::Bulk(name.clone())),
                kv("pending", Reply::Int(c.pel.len() as i64)),
                kv("idle", Reply::Int(now.saturating_sub(c.seen_time) as i64)),
            ])
        })
        .collect();
    Ok(Reply::Array(out))
}

pub(super) fn xinfo_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "XINFO",
        &[
            "CONSUMERS <key> <groupname>",
            "    Show consumers of <groupname>.",
            "GROUPS <key>",
            "    Show the stream consumer groups.",
            "STREAM <key> [FULL [COUNT <count>]",
            "    Show information about the stream.",
        ],
    ))
}
