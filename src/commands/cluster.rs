//! CLUSTER: Redis Cluster's command. Ember runs standalone (cluster-enabled is issue 18's),
//! so, as a Redis 7.0 with cluster support disabled, every subcommand exists in the table
//! (COMMAND INFO/DOCS/LIST, ACL categories, script and arity checks behave as Redis's) and
//! answers that cluster support is disabled.

use super::flags::*;
use super::{CmdError, CmdResult, CommandSpec, Ctx, container};

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("cluster", -2, container)
    .doc("cluster", "A container for cluster commands", "3.0.0", "Depends on subcommand.")
    .subcommands(SUBCOMMANDS)];

/// Redis 7.0's subcommands, with its arities, flags and docs.
static SUBCOMMANDS: &[CommandSpec] = &[
    CommandSpec::new("addslots", -3, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Assign new hash slots to receiving node",
        "3.0.0",
        "O(N) where N is the total number of hash slot arguments",
    ),
    CommandSpec::new("addslotsrange", -4, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Assign new hash slots to receiving node",
        "7.0.0",
        "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
    ),
    CommandSpec::new("bumpepoch", 2, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Advance the cluster config epoch",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("count-failure-reports", 3, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Return the number of failure reports active for a given node",
        "3.0.0",
        "O(N) where N is the number of failure reports",
    ),
    CommandSpec::new("countkeysinslot", 3, disabled).flags(STALE).doc(
        "cluster",
        "Return the number of local keys in the specified hash slot",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("delslots", -3, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Set hash slots as unbound in receiving node",
        "3.0.0",
        "O(N) where N is the total number of hash slot arguments",
    ),
    CommandSpec::new("delslotsrange", -4, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Set hash slots as unbound in receiving node",
        "7.0.0",
        "O(N) where N is the total number of the slots between the start slot and end slot arguments.",
    ),
    CommandSpec::new("failover", -2, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Forces a replica to perform a manual failover of its master.",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("flushslots", 2, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Delete a node's own slots information",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("forget", 3, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Remove a node from the nodes table",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("getkeysinslot", 4, disabled).flags(STALE).doc(
        "cluster",
        "Return local key names in the specified hash slot",
        "3.0.0",
        "O(log(N)) where N is the number of requested keys",
    ),
    CommandSpec::new("help", 2, disabled).flags(LOADING | STALE).doc(
        "cluster",
        "Show helpful text about the different subcommands",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("info", 2, disabled).flags(STALE).doc(
        "cluster",
        "Provides info about Redis Cluster node state",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("keyslot", 3, disabled).flags(STALE).doc(
        "cluster",
        "Returns the hash slot of the specified key",
        "3.0.0",
        "O(N) where N is the number of bytes in the key",
    ),
    CommandSpec::new("links", 2, disabled).flags(STALE).doc(
        "cluster",
        "Returns a list of all TCP links to and from peer nodes in cluster",
        "7.0.0",
        "O(N) where N is the total number of Cluster nodes",
    ),
    CommandSpec::new("meet", -4, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Force a node cluster to handshake with another node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("myid", 2, disabled).flags(STALE).doc("cluster", "Return the node id", "3.0.0", "O(1)"),
    CommandSpec::new("nodes", 2, disabled).flags(STALE).doc(
        "cluster",
        "Get Cluster config for the node",
        "3.0.0",
        "O(N) where N is the total number of Cluster nodes",
    ),
    CommandSpec::new("replicas", 3, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "List replica nodes of the specified master node",
        "5.0.0",
        "O(1)",
    ),
    CommandSpec::new("replicate", 3, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Reconfigure a node as a replica of the specified master node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("reset", -2, disabled).flags(ADMIN | NOSCRIPT | STALE).doc(
        "cluster",
        "Reset a Redis Cluster node",
        "3.0.0",
        "O(N) where N is the number of known nodes. The command may execute a FLUSHALL as a side effect.",
    ),
    CommandSpec::new("saveconfig", 2, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Forces the node to save cluster state on disk",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("set-config-epoch", 3, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Set the configuration epoch in a new node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("setslot", -4, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "Bind a hash slot to a specific node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("shards", 2, disabled).flags(STALE).doc(
        "cluster",
        "Get array of cluster slots to node mappings",
        "7.0.0",
        "O(N) where N is the total number of cluster nodes",
    ),
    CommandSpec::new("slaves", 3, disabled).flags(ADMIN | STALE).doc(
        "cluster",
        "List replica nodes of the specified master node",
        "3.0.0",
        "O(1)",
    ),
    CommandSpec::new("slots", 2, disabled).flags(STALE).doc(
        "cluster",
        "Get array of Cluster slot to node mappings",
        "3.0.0",
        "O(N) where N is the total number of Cluster nodes",
    ),
];

fn disabled(_: &mut Ctx, _: &[&[u8]]) -> CmdResult {
    Err(CmdError::msg("This instance has cluster support disabled"))
}
