//! CLUSTER: Redis Cluster's command. Without `cluster-enabled yes` every subcommand answers,
//! as Redis's, that cluster support is disabled. With it, the subcommands read and change
//! this node's view of the cluster (crate::cluster); MEET starts a handshake the bus carries
//! out. Ember nodes are masters only for now: REPLICATE and FAILOVER say so.

use bytes::Bytes;

use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, container};
use crate::cluster::{Cluster, MYSELF, NodeId, SLOTS, key_slot};
use crate::protocol::Reply;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("cluster", -2, container)
    .doc("cluster", "A container for cluster commands", "3.0.0", "Depends on subcommand.")
    .subcommands(SUBCOMMANDS)];

/// Redis 7.0's subcommands, with its arities, flags and docs.
static SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("addslots", -3, sub_addslots).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Assign new hash slots to receiving node",
        "3.0.0",
        "O(N) where N is the total number of hash slot arguments",
    ),
    CommandSpec::new("addslotsrange", -4, sub_addslotsrange).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Assign new hash slots to receiving node",
        "7.0.0",
        "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
    ),
    CommandSpec::new("bumpepoch", 2, sub_bumpepoch).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Advance the cluster config epoch",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("count-failure-reports", 3, sub_count_failure_reports).flags(ADMIN | STALE).doc(
        "cluster",
        "Return the number of failure reports active for a given node",
        "3.0.0",
        "O(N) where N is the number of failure reports",
    ),
    CommandSpec::new("countkeysinslot", 3, sub_countkeysinslot).flags(STALE).doc(
        "cluster",
        "Return the number of local keys in the specified hash slot",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("delslots", -3, sub_delslots).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Set hash slots as unbound in receiving node",
        "3.0.0",
        "O(N) where N is the total number of hash slot arguments",
    ),
    CommandSpec::new("delslotsrange", -4, sub_delslotsrange).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Set hash slots as unbound in receiving node",
        "7.0.0",
        "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
    ),
    CommandSpec::new("failover", -2, sub_failover).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Forces a replica to perform a manual failover of its master.",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("flushslots", 2, sub_flushslots).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Delete a node's own slots information",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("forget", 3, sub_forget).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Remove a node from the nodes table",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("getkeysinslot", 4, sub_getkeysinslot).flags(STALE).doc(
        "cluster",
        "Return local key names in the specified hash slot",
        "3.0.0",
        "O(log(N)) where N is the number of requested keys",
    ),
    CommandSpec::new("help", 2, sub_help).flags(LOADING | STALE).doc(
        "cluster",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("info", 2, sub_info).flags(STALE).doc(
        "cluster",
        "Provides info about Redis Cluster node state",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("keyslot", 3, sub_keyslot).flags(STALE).doc(
        "cluster",
        "Returns the hash slot of the specified key",
        "3.0.0",
        "O(N) where N is the number of bytes in the key",
    ),
    CommandSpec::new("links", 2, sub_links).flags(STALE).doc(
        "cluster",
        "Returns a list of all TCP links to and from peer nodes in cluster",
        "7.0.0",
        "O(N) where N is the total number of Cluster nodes",
    ),
    CommandSpec::new("meet", -4, sub_meet).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Force a node cluster to handshake with another node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("myid", 2, sub_myid).flags(STALE).doc("cluster", "Return the node id", "3.0.0", "O(1)"),
    CommandSpec::new("nodes", 2, sub_nodes).flags(STALE).doc(
        "cluster",
        "Get Cluster config for the node",
        "3.0.0",
        "O(N) where N is the total number of Cluster nodes",
    ),
    CommandSpec::new("replicas", 3, sub_replicas).flags(ADMIN | STALE).doc(
        "cluster",
        "List replica nodes of the specified master node",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("replicate", 3, sub_replicate).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Reconfigure a node as a replica of the specified master node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("reset", -2, sub_reset).flags(ADMIN | NOSCRIPT | STALE).doc(
        "cluster",
        "Reset a Redis Cluster node",
        "3.0.0",
        "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
    ),
    CommandSpec::new("saveconfig", 2, sub_saveconfig).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Forces the node to save cluster state on disk",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("set-config-epoch", 3, sub_set_config_epoch).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Set the configuration epoch in a new node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("setslot", -4, sub_setslot).flags(ADMIN | STALE | NO_ASYNC_LOADING).doc(
        "cluster",
        "Bind a hash slot to a specific node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("shards", 2, sub_shards).flags(STALE).doc(
        "cluster",
        "Get array of cluster slots to node mappings",
        "7.0.0",
        "O(N) where N is the total number of cluster nodes",
    ),
    CommandSpec::new("slaves", 3, sub_slaves).flags(ADMIN | STALE).doc(
        "cluster",
        "List replica nodes of the specified master node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("slots", 2, sub_slots).flags(STALE).doc(
        "cluster",
        "Get array of Cluster slot to node mappings",
        "3.0.0",
        "O(N) where N is the total number of Cluster nodes",
    ),
];

const DISABLED: &str = "This instance has cluster support disabled";

/// This node's cluster view, its announced address refreshed from the config.
fn node<'a>(ctx: &'a mut Ctx) -> Result<&'a mut Cluster, CmdError> {
    let srv = &mut *ctx.srv;
    let c = srv.cluster.as_deref_mut().ok_or_else(|| CmdError::msg(DISABLED))?;
    let announced = srv.config.int("cluster-announce-port") as u16;
    let port = if announced != 0 { announced } else { srv.bound_port };
    let bus = srv.config.int("cluster-announce-bus-port") as u16;
    c.configure(srv.config.str("cluster-announce-ip"), srv.config.str("cluster-announce-hostname"), port, bus);
    Ok(c)
}

fn save(c: &Cluster) {
    if let Err(e) = c.save() {
        tracing::warn!("Can't update the cluster config file: {e}");
    }
}

/// Redis's getSlotOrReply.
fn slot_arg(a: &[u8]) -> Result<usize, CmdError> {
    match crate::util::numfmt::parse_i64(a) {
        Some(n) if (0..SLOTS as i64).contains(&n) => Ok(n as usize),
        _ => Err(CmdError::msg("Invalid or out of range slot")),
    }
}

fn int_arg(a: &[u8]) -> Result<i64, CmdError> {
    crate::util::numfmt::parse_i64(a).ok_or(CmdError::NotInteger)
}

/// Checks slots to add (or delete) as Redis's checkSlotAssignmentsOrReply does.
fn check_slots(c: &Cluster, seen: &mut [bool], del: bool, from: usize, to: usize) -> Result<(), CmdError> {
    for (slot, seen) in seen.iter_mut().enumerate().take(to + 1).skip(from) {
        if del && !c.owns(slot) {
            return Err(CmdError::msg(format!("Slot {slot} is already unassigned")));
        }
        if !del && c.owns(slot) {
            return Err(CmdError::msg(format!("Slot {slot} is already busy")));
        }
        if std::mem::replace(seen, true) {
            return Err(CmdError::msg(format!("Slot {slot} specified multiple times")));
        }
    }
    Ok(())
}

fn change_slots(ctx: &mut Ctx, slots: Vec<usize>, del: bool) -> CmdResult {
    let timeout = ctx.srv.config.int("cluster-node-timeout").max(0) as u64;
    let full = ctx.srv.config.bool("cluster-require-full-coverage");
    let now = ctx.srv.now_ms;
    let c = node(ctx)?;
    c.assign(&slots, !del);
    c.update_state(now, timeout, full);
    save(c);
    Ok(Reply::Status("OK"))
}

fn slots_each(ctx: &mut Ctx, argv: &[&[u8]], del: bool) -> CmdResult {
    let c = node(ctx)?;
    let slots = argv[2..].iter().map(|a| slot_arg(a)).collect::<Result<Vec<_>, _>>()?;
    let mut seen = vec![false; SLOTS];
    for &s in &slots {
        check_slots(c, &mut seen, del, s, s)?;
    }
    change_slots(ctx, slots, del)
}

fn slots_ranges(ctx: &mut Ctx, argv: &[&[u8]], del: bool) -> CmdResult {
    let c = node(ctx)?;
    if argv.len() % 2 == 1 {
        let name = if del { "cluster|delslotsrange" } else { "cluster|addslotsrange" };
        return Err(CmdError::WrongArity(name.into()));
    }
    let mut seen = vec![false; SLOTS];
    let mut slots = Vec::new();
    for pair in argv[2..].chunks(2) {
        let (a, b) = (slot_arg(pair[0])?, slot_arg(pair[1])?);
        if a > b {
            return Err(CmdError::msg(format!("start slot number {a} is greater than end slot number {b}")));
        }
        check_slots(c, &mut seen, del, a, b)?;
        slots.extend(a..=b);
    }
    change_slots(ctx, slots, del)
}

fn sub_addslots(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    slots_each(ctx, argv, false)
}

fn sub_delslots(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    slots_each(ctx, argv, true)
}

fn sub_addslotsrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    slots_ranges(ctx, argv, false)
}

fn sub_delslotsrange(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    slots_ranges(ctx, argv, true)
}

fn sub_flushslots(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    node(ctx)?;
    if !ctx.srv.dbs[0].is_empty() {
        return Err(CmdError::msg("DB must be empty to perform CLUSTER FLUSHSLOTS."));
    }
    change_slots(ctx, (0..SLOTS).collect(), true)
}

fn sub_bumpepoch(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let c = node(ctx)?;
    let bumped = c.bump_epoch();
    if bumped {
        save(c);
    }
    Ok(Reply::StatusOwned(format!("{} {}", if bumped { "BUMPED" } else { "STILL" }, c.config_epoch)))
}

fn sub_set_config_epoch(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let c = node(ctx)?;
    let epoch = int_arg(argv[2])?;
    if epoch < 0 {
        return Err(CmdError::msg(format!("Invalid config epoch specified: {epoch}")));
    }
    if c.config_epoch != 0 {
        return Err(CmdError::msg("Node config epoch is already non-zero"));
    }
    c.config_epoch = epoch as u64;
    c.current_epoch = c.current_epoch.max(epoch as u64);
    save(c);
    Ok(Reply::Status("OK"))
}

fn sub_countkeysinslot(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    node(ctx)?;
    let slot = int_arg(argv[2])?;
    if !(0..SLOTS as i64).contains(&slot) {
        return Err(CmdError::msg("Invalid slot"));
    }
    Ok(Reply::Int(ctx.srv.dbs[0].keys_in_slot(slot as usize) as i64))
}

fn sub_getkeysinslot(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    node(ctx)?;
    let slot = int_arg(argv[2])?;
    let max = int_arg(argv[3])?;
    if !(0..SLOTS as i64).contains(&slot) || max < 0 {
        return Err(CmdError::msg("Invalid slot or number of keys"));
    }
    let keys = ctx.srv.dbs[0].slot_keys(slot as usize, max as usize);
    Ok(Reply::Array(keys.into_iter().map(|k| Reply::Bulk(Bytes::copy_from_slice(k))).collect()))
}

fn sub_keyslot(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    node(ctx)?;
    Ok(Reply::Int(key_slot(argv[2]) as i64))
}

fn sub_myid(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let c = node(ctx)?;
    Ok(Reply::Bulk(Bytes::from(c.myid.clone())))
}

fn sub_info(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let c = node(ctx)?;
    Ok(Reply::Verbatim(Bytes::from(c.info())))
}

fn sub_nodes(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let c = node(ctx)?;
    Ok(Reply::Verbatim(Bytes::from(c.nodes_text())))
}

/// The id, address, port and hostname of a node (this one or a peer).
struct NodeView {
    name: String,
    ip: String,
    port: u16,
    hostname: String,
}

fn view(c: &Cluster, id: NodeId) -> NodeView {
    match c.peer(id) {
        Some(n) => NodeView { name: n.name.clone(), ip: n.ip.clone(), port: n.port, hostname: n.hostname.clone() },
        None => NodeView { name: c.myid.clone(), ip: c.ip.clone(), port: c.port, hostname: c.hostname.clone() },
    }
}

/// A node as CLUSTER SLOTS lists it: preferred endpoint, port, id, other endpoints.
fn node_entry(n: &NodeView, endpoint_type: &str) -> Reply {
    let mut extra = Vec::new();
    let endpoint = match endpoint_type {
        "hostname" => {
            Reply::Bulk(Bytes::from(if n.hostname.is_empty() { "?".to_string() } else { n.hostname.clone() }))
        }
        "unknown-endpoint" => Reply::Null,
        _ => Reply::Bulk(Bytes::from(n.ip.clone())),
    };
    if endpoint_type != "ip" {
        extra.push((Reply::Bulk(Bytes::from_static(b"ip")), Reply::Bulk(Bytes::from(n.ip.clone()))));
    }
    if endpoint_type != "hostname" && !n.hostname.is_empty() {
        extra.push((Reply::Bulk(Bytes::from_static(b"hostname")), Reply::Bulk(Bytes::from(n.hostname.clone()))));
    }
    Reply::Array(vec![endpoint, Reply::Int(n.port as i64), Reply::Bulk(Bytes::from(n.name.clone())), Reply::Map(extra)])
}

fn sub_slots(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let endpoint_type = ctx.srv.config.str("cluster-preferred-endpoint-type").to_string();
    let c = node(ctx)?;
    Ok(Reply::Array(
        c.slot_ranges()
            .into_iter()
            .map(|(a, b, id)| {
                let mut entry =
                    vec![Reply::Int(a as i64), Reply::Int(b as i64), node_entry(&view(c, id), &endpoint_type)];
                // Then its replicas that are not failed and have loaded data (Redis's
                // isReplicaAvailable: a replica still loading its first sync is hidden).
                let available = |r: NodeId| match c.peer(r) {
                    Some(n) => !n.failed() && n.repl_offset != 0,
                    None => c.repl_offset != 0,
                };
                let replicas = c.replicas_of(id).into_iter().filter(|&r| available(r));
                entry.extend(replicas.map(|r| node_entry(&view(c, r), &endpoint_type)));
                Reply::Array(entry)
            })
            .collect(),
    ))
}

/// CLUSTER SHARDS: a shard per master (this node first), its slot ranges and its node.
fn sub_shards(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let endpoint_type = ctx.srv.config.str("cluster-preferred-endpoint-type").to_string();
    let offset = ctx.srv.repl.offset;
    let c = node(ctx)?;
    let b = |s: &str| Reply::Bulk(Bytes::from(s.to_string()));
    let mut masters: Vec<NodeId> = if c.is_replica() { Vec::new() } else { vec![MYSELF] };
    masters.extend(c.peers().filter(|(_, n)| n.is_master() && !n.in_handshake()).map(|(id, _)| id));
    // (offset, healthy) of a node.
    let state = |id: NodeId| match c.peer(id) {
        Some(n) => (n.repl_offset, !n.failed()),
        None => (offset, true),
    };
    let mut shards = Vec::new();
    for id in masters {
        let slots =
            c.ranges_of(id).into_iter().flat_map(|(a, z)| [Reply::Int(a as i64), Reply::Int(z as i64)]).collect();
        let mut nodes = Vec::new();
        let members = std::iter::once((id, "master")).chain(c.replicas_of(id).into_iter().map(|r| (r, "replica")));
        for (member, role) in members {
            let n = view(c, member);
            let (offset, healthy) = state(member);
            let endpoint = match endpoint_type.as_str() {
                "hostname" if !n.hostname.is_empty() => n.hostname.clone(),
                "hostname" => "?".into(),
                "unknown-endpoint" => String::new(),
                _ => n.ip.clone(),
            };
            let mut me = vec![
                (b("id"), b(&n.name)),
                (b("port"), Reply::Int(n.port as i64)),
                (b("ip"), b(&n.ip)),
                (b("endpoint"), b(&endpoint)),
            ];
            if !n.hostname.is_empty() {
                me.push((b("hostname"), b(&n.hostname)));
            }
            let health = match () {
                _ if !healthy => "fail",
                _ if role == "replica" && offset == 0 => "loading",
                _ => "online",
            };
            me.extend([
                (b("role"), b(role)),
                (b("replication-offset"), Reply::Int(offset as i64)),
                (b("health"), b(health)),
            ]);
            nodes.push(Reply::Map(me));
        }
        shards.push(Reply::Map(vec![(b("slots"), Reply::Array(slots)), (b("nodes"), Reply::Array(nodes))]));
    }
    Ok(Reply::Array(shards))
}

fn sub_saveconfig(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    let c = node(ctx)?;
    c.save().map_err(|e| CmdError::msg(format!("error saving the cluster node config: {e}")))?;
    Ok(Reply::Status("OK"))
}

/// The node a subcommand names, or Redis's "Unknown node" error.
fn named_node(c: &Cluster, arg: &[u8]) -> Result<NodeId, CmdError> {
    let name = String::from_utf8_lossy(arg);
    c.lookup(&name).ok_or_else(|| CmdError::msg(format!("Unknown node {name}")))
}

fn sub_count_failure_reports(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let now = ctx.srv.now_ms;
    let timeout = ctx.srv.config.int("cluster-node-timeout").max(0) as u64;
    let c = node(ctx)?;
    let id = named_node(c, argv[2])?;
    Ok(Reply::Int(c.count_fail_reports(id, now, timeout) as i64))
}

fn sub_replicas(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let c = node(ctx)?;
    let id = named_node(c, argv[2])?;
    if c.peer(id).is_some_and(|n| !n.is_master()) {
        return Err(CmdError::msg("The specified node is not a master"));
    }
    let replicas = c.replicas_of(id).into_iter().map(|r| Reply::Bulk(Bytes::from(c.describe(r))));
    Ok(Reply::Array(replicas.collect()))
}

fn sub_slaves(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    sub_replicas(ctx, argv)
}

fn sub_forget(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let now = ctx.srv.now_ms;
    let c = node(ctx)?;
    let id = named_node(c, argv[2])?;
    if id == MYSELF {
        return Err(CmdError::msg("I tried hard but I can't forget myself..."));
    }
    c.forget(id, now);
    Ok(Reply::Status("OK"))
}

fn sub_replicate(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let empty = ctx.srv.dbs[0].is_empty();
    let c = node(ctx)?;
    let id = named_node(c, argv[2])?;
    if id == MYSELF {
        return Err(CmdError::msg("Can't replicate myself"));
    }
    if c.peer(id).is_some_and(|n| !n.is_master()) {
        return Err(CmdError::msg("I can only replicate a master, not a replica."));
    }
    if !c.is_replica() && (c.owned() != 0 || !empty) {
        return Err(CmdError::msg("To set a master the node must be empty and without assigned slots."));
    }
    c.set_master(id);
    save(c);
    Ok(Reply::Status("OK"))
}

/// CLUSTER LINKS: each bus connection, to a node (opened here) or from it.
fn sub_links(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    node(ctx)?;
    let srv = &*ctx.srv;
    let Some(c) = srv.cluster.as_deref() else { return Ok(Reply::Array(Vec::new())) };
    let b = |s: &str| Reply::Bulk(Bytes::from(s.to_string()));
    let links = c.link_list().into_iter().map(|(link, inbound, name, ctime)| {
        let (allocated, used) = srv.net.as_deref().map_or((0, 0), |n| n.bus_send_buffer(link));
        Reply::Map(vec![
            (b("direction"), b(if inbound { "from" } else { "to" })),
            (b("node"), b(&name)),
            (b("create-time"), Reply::Int(ctime as i64)),
            (b("events"), b(if used > 0 { "rw" } else { "r" })),
            (b("send-buffer-allocated"), Reply::Int(allocated as i64)),
            (b("send-buffer-used"), Reply::Int(used as i64)),
        ])
    });
    Ok(Reply::Array(links.collect()))
}

/// CLUSTER MEET ip port [cport]: a handshake starts at the next cron.
fn sub_meet(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    if argv.len() > 5 {
        return Err(super::args::subcommand_syntax(argv, "CLUSTER"));
    }
    let now = ctx.srv.now_ms;
    let c = node(ctx)?;
    let text = |a: &[u8]| String::from_utf8_lossy(a).into_owned();
    let port = crate::util::numfmt::parse_i64(argv[3])
        .ok_or_else(|| CmdError::msg(format!("Invalid TCP base port specified: {}", text(argv[3]))))?;
    let cport = match argv.get(4) {
        Some(a) => crate::util::numfmt::parse_i64(a)
            .ok_or_else(|| CmdError::msg(format!("Invalid TCP bus port specified: {}", text(a))))?,
        None => port.saturating_add(10000),
    };
    if !c.meet(&text(argv[2]), port, cport, now) {
        return Err(CmdError::msg(format!("Invalid node address specified: {}:{}", text(argv[2]), text(argv[3]))));
    }
    Ok(Reply::Status("OK"))
}

fn sub_failover(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    node(ctx)?;
    // Redis checks the option before the node's role.
    match argv.get(2) {
        None => {}
        Some(o) if argv.len() == 3 && (o.eq_ignore_ascii_case(b"force") || o.eq_ignore_ascii_case(b"takeover")) => {}
        Some(_) => return Err(CmdError::Syntax),
    }
    let takeover = argv.get(2).is_some_and(|o| o.eq_ignore_ascii_case(b"takeover"));
    let force = argv.get(2).is_some_and(|o| o.eq_ignore_ascii_case(b"force"));
    let now = ctx.srv.now_ms;
    let link_up = ctx.srv.master.as_deref().is_some_and(|m| m.link_up());
    let c = node(ctx)?;
    if !c.is_replica() {
        return Err(CmdError::msg("You should send CLUSTER FAILOVER to a replica"));
    }
    let master_failed = c.my_master.and_then(|m| c.peer(m)).is_none_or(|m| m.failed());
    if !force && !takeover && (master_failed || !link_up) {
        return Err(CmdError::msg("Master is down or failed, please use CLUSTER FAILOVER FORCE"));
    }
    c.manual_failover(takeover, force, now);
    save(c);
    Ok(Reply::Status("OK"))
}

/// CLUSTER SETSLOT slot MIGRATING|IMPORTING|NODE id, or STABLE (Redis's order of checks).
fn sub_setslot(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    let timeout = ctx.srv.config.int("cluster-node-timeout").max(0) as u64;
    let full = ctx.srv.config.bool("cluster-require-full-coverage");
    let now = ctx.srv.now_ms;
    let slot = {
        node(ctx)?;
        slot_arg(argv[2])?
    };
    let has_keys = ctx.srv.dbs[0].keys_in_slot(slot) > 0;
    let replica_migration = ctx.srv.config.bool("cluster-allow-replica-migration");
    let c = node(ctx)?;
    let action = argv[3].to_ascii_lowercase();
    let target = argv.get(4).map(|a| String::from_utf8_lossy(a).into_owned()).unwrap_or_default();
    let found = c.lookup(&target);
    let is_replica = |id: NodeId| c.peer(id).is_some_and(|n| !n.is_master());
    match (action.as_slice(), argv.len()) {
        (b"migrating", 5) => {
            if !c.owns(slot) {
                return Err(CmdError::msg(format!("I'm not the owner of hash slot {slot}")));
            }
            let Some(id) = found else { return Err(CmdError::msg(format!("I don't know about node {target}"))) };
            if is_replica(id) {
                return Err(CmdError::msg("Target node is not a master"));
            }
            c.migrating.insert(slot, target);
        }
        (b"importing", 5) => {
            if c.owns(slot) {
                return Err(CmdError::msg(format!("I'm already the owner of hash slot {slot}")));
            }
            let Some(id) = found else { return Err(CmdError::msg(format!("I don't know about node {target}"))) };
            if is_replica(id) {
                return Err(CmdError::msg("Target node is not a master"));
            }
            c.importing.insert(slot, target);
        }
        (b"stable", 4) => {
            c.migrating.remove(&slot);
            c.importing.remove(&slot);
        }
        (b"node", 5) => {
            let Some(id) = found else { return Err(CmdError::msg(format!("Unknown node {target}"))) };
            if is_replica(id) {
                return Err(CmdError::msg("Target node is not a master"));
            }
            if c.owns(slot) && id != MYSELF && has_keys {
                return Err(CmdError::msg(format!(
                    "Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                )));
            }
            if !has_keys {
                c.migrating.remove(&slot);
            }
            let was_mine = c.owns(slot);
            c.give(slot, id);
            // A master left without slots follows the node that took its last one.
            if was_mine && id != MYSELF && c.owned() == 0 && replica_migration {
                tracing::warn!("Configuration change detected. Reconfiguring myself as a replica of {target}");
                c.set_master(id);
            }
            // Closing an import: Redis bumps the epoch without consensus and tells everyone.
            if id == MYSELF && c.importing.remove(&slot).is_some() {
                if c.bump_epoch() {
                    tracing::warn!("configEpoch updated after importing slot {slot}");
                }
                c.broadcast_pong(now);
            }
        }
        _ => return Err(CmdError::msg("Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP")),
    }
    c.update_state(now, timeout, full);
    save(c);
    Ok(Reply::Status("OK"))
}

fn sub_reset(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    node(ctx)?;
    let hard = match argv.get(2).map(|a| a.to_ascii_lowercase()) {
        None => false,
        Some(a) if a == b"hard" => true,
        Some(a) if a == b"soft" => false,
        Some(_) => return Err(CmdError::Syntax),
    };
    // A replica may hold data: it turns into an empty master (Redis's clusterReset).
    let replica = node(ctx)?.is_replica();
    if !replica && !ctx.db().is_empty() {
        return Err(CmdError::msg("CLUSTER RESET can't be called with master nodes containing keys"));
    }
    if replica {
        ctx.srv.stop_replicating();
        for db in ctx.srv.dbs.iter_mut() {
            db.flush();
        }
        ctx.srv.invalidate_all(ctx.sess);
    }
    let timeout = ctx.srv.config.int("cluster-node-timeout").max(0) as u64;
    let full = ctx.srv.config.bool("cluster-require-full-coverage");
    let now = ctx.srv.now_ms;
    let c = node(ctx)?;
    c.reset(hard);
    c.update_state(now, timeout, full);
    save(c);
    Ok(Reply::Status("OK"))
}

fn sub_help(ctx: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    node(ctx)?;
    Ok(super::help_reply("CLUSTER", HELP))
}

const HELP: &[&str] = &[
    "ADDSLOTS <slot> [<slot> ...]",
    "    Assign slots to current node.",
    "ADDSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Assign slots which are between <start-slot> and <end-slot> to current node.",
    "BUMPEPOCH",
    "    Advance the cluster config epoch.",
    "COUNT-FAILURE-REPORTS <node-id>",
    "    Return number of failure reports for <node-id>.",
    "COUNTKEYSINSLOT <slot>",
    "    Return the number of keys in <slot>.",
    "DELSLOTS <slot> [<slot> ...]",
    "    Delete slots information from current node.",
    "DELSLOTSRANGE <start slot> <end slot> [<start slot> <end slot> ...]",
    "    Delete slots information which are between <start-slot> and <end-slot> from current node.",
    "FAILOVER [FORCE|TAKEOVER]",
    "    Promote current replica node to being a master.",
    "FORGET <node-id>",
    "    Remove a node from the cluster.",
    "GETKEYSINSLOT <slot> <count>",
    "    Return key names stored by current node in a slot.",
    "FLUSHSLOTS",
    "    Delete current node own slots information.",
    "INFO",
    "    Return information about the cluster.",
    "KEYSLOT <key>",
    "    Return the hash slot for <key>.",
    "MEET <ip> <port> [<bus-port>]",
    "    Connect nodes into a working cluster.",
    "MYID",
    "    Return the node id.",
    "NODES",
    "    Return cluster configuration seen by node. Output format:",
    "    <id> <ip:port> <flags> <master> <pings> <pongs> <epoch> <link> <slot> ...",
    "REPLICATE <node-id>",
    "    Configure current node as replica to <node-id>.",
    "RESET [HARD|SOFT]",
    "    Reset current node (default: soft).",
    "SET-CONFIG-EPOCH <epoch>",
    "    Set config epoch of current node.",
    "SETSLOT <slot> (IMPORTING <node-id>|MIGRATING <node-id>|STABLE|NODE <node-id>)",
    "    Set slot state.",
    "REPLICAS <node-id>",
    "    Return <node-id> replicas.",
    "SAVECONFIG",
    "    Force saving cluster configuration on disk.",
    "SLOTS",
    "    Return information about slots range mappings. Each range is made of:",
    "    start, end, master and replicas IP addresses, ports and ids",
    "SHARDS",
    "    Return information about slot range mappings and the nodes associated with them.",
    "LINKS",
    "    Return information about all network links between this node and its peers.",
    "    Output format is an array where each array element is a map containing attributes of a link",
];
