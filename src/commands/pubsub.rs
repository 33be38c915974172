//! Pub/Sub family: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH and PUBSUB.
//!
//! Confirmations are push frames (arrays in RESP2), one per channel, carrying the client's
//! subscription count after the change. Who listens to what lives in `server::pubsub`;
//! fan-out and output limits in `ServerState::publish`.

use bytes::Bytes;

use super::flags::*;
use super::{CmdResult, CommandSpec, Ctx, Keys, container, help_reply};
use crate::protocol::Reply;
use crate::server::pubsub::Kind;

const SHARD_KEYS: Keys = Keys { first: 1, last: -1, step: 1 };

pub static COMMANDS: &[CommandSpec] = &[
    CommandSpec::new("subscribe", -2, subscribe).flags(PUBSUB | NOSCRIPT | LOADING | STALE).doc("pubsub", "Listen for messages published to the given channels", "2.0.0", "O(N) where N is the number of channels to subscribe to."),
    CommandSpec::new("psubscribe", -2, psubscribe).flags(PUBSUB | NOSCRIPT | LOADING | STALE).doc("pubsub", "Listen for messages published to channels matching the given patterns", "2.0.0", "O(N) where N is the number of patterns the client is already subscribed to."),
    CommandSpec::new("ssubscribe", -2, ssubscribe).flags(PUBSUB | NOSCRIPT | LOADING | STALE).keys(SHARD_KEYS).doc("pubsub", "Listen for messages published to the given shard channels", "7.0.0", "O(N) where N is the number of shard channels to subscribe to."),
    CommandSpec::new("unsubscribe", -1, unsubscribe).flags(PUBSUB | NOSCRIPT | LOADING | STALE).doc("pubsub", "Stop listening for messages posted to the given channels", "2.0.0", "O(N) where N is the number of clients already subscribed to a channel."),
    CommandSpec::new("punsubscribe", -1, punsubscribe).flags(PUBSUB | NOSCRIPT | LOADING | STALE).doc("pubsub", "Stop listening for messages posted to channels matching the given patterns", "2.0.0", "O(N+M) where N is the number of patterns the client is already subscribed and M is the number of total patterns subscribed in the system (by any client)."),
    CommandSpec::new("sunsubscribe", -1, sunsubscribe).flags(PUBSUB | NOSCRIPT | LOADING | STALE).keys(SHARD_KEYS).doc("pubsub", "Stop listening for messages posted to the given shard channels", "7.0.0", "O(N) where N is the number of clients already subscribed to a shard channel."),
    CommandSpec::new("publish", 3, publish).flags(PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE).doc("pubsub", "Post a message to a channel", "2.0.0", "O(N+M) where N is the number of clients subscribed to the receiving channel and M is the total number of subscribed patterns (by any client)."),
    CommandSpec::new("spublish", 3, spublish).flags(PUBSUB | LOADING | STALE | FAST | MAY_REPLICATE).keys(Keys { first: 1, last: 1, step: 1 }).doc("pubsub", "Post a message to a shard channel", "7.0.0", "O(N) where N is the number of clients subscribed to the receiving shard channel."),
    CommandSpec::new("pubsub", -2, container).doc("pubsub", "A container for Pub/Sub commands", "2.8.0", "Depends on subcommand.").subcommands(PUBSUB_SUBCOMMANDS),
];

static PUBSUB_SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("channels", -2, pubsub_channels).flags(PUBSUB | LOADING | STALE).doc("pubsub", "List active channels", "2.8.0", "O(N) where N is the number of active channels, and assuming constant time pattern matching (relatively short channels and patterns)"),
    CommandSpec::new("numsub", -2, pubsub_numsub).flags(PUBSUB | LOADING | STALE).doc("pubsub", "Get the count of subscribers for channels", "2.8.0", "O(N) for the NUMSUB subcommand, where N is the number of requested channels"),
    CommandSpec::new("numpat", 2, pubsub_numpat).flags(PUBSUB | LOADING | STALE).doc("pubsub", "Get the count of unique patterns pattern subscriptions", "2.8.0", "O(1)"),
    CommandSpec::new("shardchannels", -2, pubsub_shardchannels).flags(PUBSUB | LOADING | STALE).doc("pubsub", "List active shard channels", "7.0.0", "O(N) where N is the number of active shard channels, and assuming constant time pattern matching (relatively short shard channels)."),
    CommandSpec::new("shardnumsub", -2, pubsub_shardnumsub).flags(PUBSUB | LOADING | STALE).doc("pubsub", "Get the count of subscribers for shard channels", "7.0.0", "O(N) for the SHARDNUMSUB subcommand, where N is the number of requested shard channels"),
    CommandSpec::new("help", 2, pubsub_help).flags(LOADING | STALE).doc("pubsub", "Show helpful text about the different subcommands", "6.2.0", "O(1)"),
];

fn confirmation(word: &str, name: Option<Bytes>, count: usize) -> Reply {
    Reply::Push(vec![Reply::bulk_str(word), name.map_or(Reply::Null, Reply::Bulk), Reply::Int(count as i64)])
}

fn subscribe_kind(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> CmdResult {
    let mut out = Vec::with_capacity(argv.len() - 1);
    for name in &argv[1..] {
        let name = Bytes::copy_from_slice(name);
        let id = ctx.sess.id;
        ctx.srv.pubsub.subscribe(&mut ctx.sess.subs, kind, &name, id);
        out.push(confirmation(kind.subscribe_word(), Some(name), ctx.sess.subs.count(kind)));
    }
    Ok(Reply::Multi(out))
}

/// Unsubscribes from the named channels, or from all of them when none is named (one
/// confirmation with a null name if there were none).
pub fn unsubscribe_kind(ctx: &mut Ctx, names: &[&[u8]], kind: Kind) -> Reply {
    let names: Vec<Bytes> = if names.is_empty() {
        ctx.sess.subs.names(kind).iter().cloned().collect()
    } else {
        crate::protocol::owned(names)
    };
    let word = kind.unsubscribe_word();
    if names.is_empty() {
        return Reply::Multi(vec![confirmation(word, None, ctx.sess.subs.count(kind))]);
    }
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let id = ctx.sess.id;
        ctx.srv.pubsub.unsubscribe(&mut ctx.sess.subs, kind, &name, id);
        out.push(confirmation(word, Some(name), ctx.sess.subs.count(kind)));
    }
    Reply::Multi(out)
}

fn subscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    subscribe_kind(ctx, argv, Kind::Channel)
}

fn psubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    subscribe_kind(ctx, argv, Kind::Pattern)
}

fn ssubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    subscribe_kind(ctx, argv, Kind::Shard)
}

fn unsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(unsubscribe_kind(ctx, &argv[1..], Kind::Channel))
}

fn punsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(unsubscribe_kind(ctx, &argv[1..], Kind::Pattern))
}

fn sunsubscribe(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(unsubscribe_kind(ctx, &argv[1..], Kind::Shard))
}

fn publish(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // In a cluster the message goes to every node over the bus (Redis's
    // clusterPropagatePublish), not down the replication stream.
    match ctx.srv.cluster.as_deref_mut() {
        Some(c) => c.publish(argv[1], argv[2]),
        None => propagate_to_replicas(ctx, argv),
    }
    Ok(Reply::Int(ctx.srv.publish(ctx.sess, argv[1], argv[2], false) as i64))
}

fn spublish(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    // In a cluster the shard's other nodes get it over the bus.
    match ctx.srv.cluster.as_deref_mut() {
        Some(c) => c.publish_shard(argv[1], argv[2]),
        None => propagate_to_replicas(ctx, argv),
    }
    Ok(Reply::Int(ctx.srv.publish(ctx.sess, argv[1], argv[2], true) as i64))
}

/// Replicas re-publish messages to their own subscribers (Redis propagates PUBLISH to
/// replicas, never to the AOF).
fn propagate_to_replicas(ctx: &mut Ctx, argv: &[&[u8]]) {
    if ctx.srv.feeding_replication() {
        ctx.srv.also_propagate(ctx.sess.db, crate::protocol::owned(argv), crate::server::repl::Target::ReplicasOnly);
    }
}

fn names(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> CmdResult {
    // At most one pattern (the table's arity allows more, as Redis's does).
    if argv.len() > 3 {
        return Err(super::args::subcommand_syntax(argv, "PUBSUB"));
    }
    let pattern = argv.get(2).map(|p| &p[..]);
    Ok(Reply::Array(ctx.srv.pubsub.names_matching(kind, pattern).into_iter().map(Reply::Bulk).collect()))
}

fn numsub(ctx: &mut Ctx, argv: &[&[u8]], kind: Kind) -> CmdResult {
    let mut out = Vec::with_capacity((argv.len() - 2) * 2);
    for name in &argv[2..] {
        out.push(Reply::Bulk(Bytes::copy_from_slice(name)));
        out.push(Reply::Int(ctx.srv.pubsub.subscribers(kind, name).len() as i64));
    }
    Ok(Reply::Array(out))
}

fn pubsub_channels(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    names(ctx, argv, Kind::Channel)
}

fn pubsub_shardchannels(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    names(ctx, argv, Kind::Shard)
}

fn pubsub_numsub(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    numsub(ctx, argv, Kind::Channel)
}

fn pubsub_shardnumsub(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    numsub(ctx, argv, Kind::Shard)
}

fn pubsub_numpat(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(Reply::Int(ctx.srv.pubsub.len(Kind::Pattern) as i64))
}

fn pubsub_help(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Ok(help_reply(
        "PUBSUB",
        &[
            "CHANNELS [<pattern>]",
            "    Return the currently active channels matching a <pattern> (default: '*').",
            "NUMPAT",
            "    Return number of subscriptions to patterns.",
            "NUMSUB [<channel> ...]",
            "    Return the number of subscribers for the specified channels, excluding",
            "    pattern subscriptions(default: no channels).",
            "SHARDCHANNELS [<pattern>]",
            "    Return the currently active shard level channels matching a <pattern> (default: '*').",
            "SHARDNUMSUB [<shardchannel> ...]",
            "    Return the number of subscribers for the specified shard level channel(s)",
        ],
    ))
}
