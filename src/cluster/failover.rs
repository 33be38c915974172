//! Replicas in a cluster and their failover, as Redis 7.0 runs them: a node becomes a
//! replica (CLUSTER REPLICATE, or when its slots go to another node), a replica of a failed
//! master stands for election after a delay by rank, masters vote once per epoch, the winner
//! takes its master's slots; CLUSTER FAILOVER with MFSTART (the master pauses until its
//! replica caught up), FORCE and TAKEOVER; replica migration to orphaned masters.

use std::collections::HashMap;

use rand::RngExt;

use super::bus::node_flags::{HANDSHAKE, MIGRATE_TO, NOADDR};
use super::bus::{Body, FLAG0_FORCEACK, Header, types};
use super::{BusOut, Cluster, Election, MYSELF, ManualFailover, NOBODY, NodeId, SLOTS, Settings};

/// Redis's CLUSTER_SLAVE_MIGRATION_DELAY: how long a master stays orphaned before a replica
/// moves to it (its own replicas may just be announcing a failover).
const MIGRATION_DELAY_MS: u64 = 5000;

/// Redis's CLUSTER_MF_TIMEOUT and CLUSTER_MF_PAUSE_MULT.
pub(super) const MF_TIMEOUT_MS: u64 = 5000;
pub(super) const MF_PAUSE_MULT: u64 = 2;

impl Cluster {
    /// Redis's clusterSetMaster: this node becomes a replica of `id` (its slot states
    /// dropped when it was a master).
    pub fn set_master(&mut self, id: NodeId) {
        let Some(n) = self.peers.get(&id) else { return };
        let (ip, port) = (n.ip.clone(), n.port);
        if !self.is_replica() {
            self.migrating.clear();
            self.importing.clear();
        }
        let old = self.my_master.replace(id);
        self.replica_moved(old, Some(id));
        self.election = Default::default();
        self.reset_manual_failover();
        self.out.push(BusOut::Replicate { ip, port });
        self.todo_save = true;
        self.todo_state = true;
    }

    /// Redis's clusterGetSlaveRank: how many replicas of the same master have a greater
    /// replication offset (the best replica runs first).
    pub(super) fn replica_rank(&self) -> usize {
        let Some(m) = self.my_master else { return 0 };
        self.peers.values().filter(|n| n.slaveof == Some(m) && !n.failed() && n.repl_offset > self.repl_offset).count()
    }

    /// Redis's clusterHandleSlaveFailover, from the cron and on each vote: a replica whose
    /// master failed waits a moment (longer the further behind it is), asks the masters to
    /// vote for it in a new epoch, and with a majority takes over its master's slots.
    pub(super) fn handle_failover(&mut self, now: u64, s: &Settings) {
        let Some(master) = self.my_master.and_then(|m| self.peers.get(&m)) else { return };
        let forced = self.election.forced;
        if (!master.failed() && !forced) || master.numslots == 0 || (s.no_failover && !forced) {
            self.election.forced = forced && self.election.time != 0;
            return;
        }
        // Redis's data age check: a replica cut off from its master for long is too stale to
        // take over (a manual failover goes ahead anyway).
        let age = self.master_data_age.checked_sub(s.node_timeout).unwrap_or(self.master_data_age);
        let max_age = s.repl_ping_ms.saturating_add(s.node_timeout.saturating_mul(s.validity_factor));
        if s.validity_factor > 0 && !forced && age > max_age {
            tracing::debug!(
                "Currently unable to failover: Disconnected from master for longer than allowed. Please check the 'cluster-replica-validity-factor' configuration option."
            );
            return;
        }
        let auth_timeout = s.node_timeout.saturating_mul(2).max(2000);
        let retry = auth_timeout.saturating_mul(2);
        let age = now.saturating_sub(self.election.time);
        if self.election.time == 0 || age > retry {
            // A new election: after 500-1000 ms, plus a second per better replica.
            let rank = self.replica_rank();
            let delay = if forced { 0 } else { 500 + rand::rng().random_range(0..500) + rank as u64 * 1000 };
            self.election = Election { time: now + delay, votes: 0, sent: false, rank, epoch: 0, forced };
            tracing::warn!(
                "Start of election delayed for {delay} milliseconds (rank #{rank}, offset {}).",
                self.repl_offset
            );
            return;
        }
        if !self.election.sent && !forced {
            let rank = self.replica_rank();
            if rank > self.election.rank {
                let more = (rank - self.election.rank) as u64 * 1000;
                self.election.time += more;
                self.election.rank = rank;
                tracing::warn!("Replica rank updated to #{rank}, added {more} milliseconds of delay.");
            }
        }
        if now < self.election.time || age > auth_timeout {
            return;
        }
        if !self.election.sent {
            self.current_epoch += 1;
            self.election.epoch = self.current_epoch;
            self.election.sent = true;
            tracing::warn!("Starting a failover election for epoch {}.", self.current_epoch);
            let mut h = self.header(types::FAILOVER_AUTH_REQUEST);
            if forced {
                h.mflags[0] |= FLAG0_FORCEACK;
            }
            self.broadcast(&h, &Body::Empty);
            self.todo_save = true;
            return;
        }
        let quorum = self.size / 2 + 1;
        if self.election.votes >= quorum {
            tracing::warn!("Failover election won: I'm the new master.");
            if self.config_epoch < self.election.epoch {
                self.config_epoch = self.election.epoch;
                tracing::warn!("configEpoch set to {} after successful failover", self.config_epoch);
            }
            self.replace_master(now);
        }
    }

    /// Redis's clusterFailoverReplaceYourMaster: this replica becomes a master serving its
    /// old master's slots, and tells everyone at once.
    pub fn replace_master(&mut self, now: u64) {
        let Some(old) = self.my_master.take() else { return };
        self.replica_moved(Some(old), None);
        for slot in 0..SLOTS {
            if self.owner[slot] == old {
                self.set_owner(slot, MYSELF);
            }
        }
        if let Some(n) = self.peers.get_mut(&old) {
            n.slaveof = None;
        }
        self.election = Default::default();
        self.reset_manual_failover();
        self.out.push(BusOut::Promoted);
        self.todo_save = true;
        self.todo_state = true;
        self.broadcast_pong(now);
    }

    /// Redis's resetManualFailover: a master that paused for one resumes.
    pub(super) fn reset_manual_failover(&mut self) {
        if self.mf.replica.is_some() {
            self.out.push(BusOut::Unpause);
        }
        self.mf = ManualFailover::default();
    }

    /// Redis's clusterHandleManualFailover: once this replica processed the paused master's
    /// whole stream, the election runs at once (masters vote though the master is up).
    pub(super) fn handle_manual_failover(&mut self, now: u64, s: &Settings) {
        let Some(offset) = self.mf.master_offset else { return };
        if self.mf.end == 0 || self.election.forced || self.repl_offset < offset {
            return;
        }
        tracing::warn!("All master replication stream processed, manual failover can start.");
        self.election = Election { forced: true, ..Default::default() };
        self.handle_failover(now, s);
    }

    /// CLUSTER FAILOVER: by default the master is asked to pause (MFSTART) and the election
    /// waits until this replica caught up; FORCE runs the election now, masters voting
    /// although the master is up; TAKEOVER takes a new epoch without votes. False when this
    /// node is no replica.
    pub fn manual_failover(&mut self, takeover: bool, force: bool, now: u64) -> bool {
        if !self.is_replica() {
            return false;
        }
        self.reset_manual_failover();
        if !takeover && !force {
            tracing::warn!("Manual failover user request accepted.");
            self.mf.end = now + MF_TIMEOUT_MS;
            let link = self.my_master.and_then(|m| self.peers.get(&m)).and_then(|n| n.link);
            if let Some(link) = link {
                let h = self.header(types::MFSTART);
                self.send(link, &h, &Body::Empty);
            }
            return true;
        }
        if takeover {
            if self.bump_epoch() {
                tracing::warn!("Taking over the master (user request).");
            }
            self.replace_master(now);
        } else {
            tracing::warn!("Forced failover user request accepted.");
            self.election = Election { forced: true, ..Default::default() };
        }
        true
    }

    /// Redis's clusterSendFailoverAuthIfNeeded: a master with slots votes once per epoch
    /// for a replica of a failed master, if no newer configuration holds the slots it
    /// claims, and not twice for one master within two node timeouts.
    pub(super) fn vote(&mut self, id: NodeId, h: &Header, now: u64, s: &Settings) {
        if self.is_replica() || self.owned == 0 {
            return;
        }
        let Some(node) = self.peers.get(&id) else { return };
        let name = node.name.clone();
        let denied = |why: String| tracing::warn!("Failover auth denied to {name}: {why}");
        if h.current_epoch < self.current_epoch {
            return denied(format!("reqEpoch ({}) < curEpoch({})", h.current_epoch, self.current_epoch));
        }
        if self.last_vote_epoch == self.current_epoch {
            return denied(format!("already voted for epoch {}", self.current_epoch));
        }
        let force = h.mflags[0] & FLAG0_FORCEACK != 0;
        let master = node.slaveof.and_then(|m| self.peers.get(&m).map(|n| (m, n)));
        let Some((mid, mnode)) = master.filter(|_| !node.is_master()) else {
            return denied("it is a master node or its master is unknown".into());
        };
        if !mnode.failed() && !force {
            return denied("its master is up".into());
        }
        let since = now.saturating_sub(mnode.voted_time);
        if since < s.node_timeout.saturating_mul(2) {
            return denied(format!(
                "can't vote about this master before {} milliseconds",
                s.node_timeout.saturating_mul(2) - since
            ));
        }
        for j in (0..SLOTS).filter(|&j| h.has_slot(j)) {
            let o = self.owner[j];
            if o != NOBODY && self.epoch_of(o) > h.config_epoch {
                return denied(format!("slot {j} epoch ({}) > reqEpoch ({})", self.epoch_of(o), h.config_epoch));
            }
        }
        self.last_vote_epoch = self.current_epoch;
        if let Some(m) = self.peers.get_mut(&mid) {
            m.voted_time = now;
        }
        self.todo_save = true;
        if let Some(link) = self.peers.get(&id).and_then(|n| n.link) {
            let h = self.header(types::FAILOVER_AUTH_ACK);
            self.send(link, &h, &Body::Empty);
        }
        tracing::warn!("Failover auth granted to {name} for epoch {}", self.current_epoch);
    }

    /// Working (not failed) replicas per master, myself counted when I am one: one pass
    /// over the nodes.
    fn working_replicas(&self) -> HashMap<NodeId, usize> {
        let mut ok: HashMap<NodeId, usize> = HashMap::new();
        let masters = self.peers.values().filter(|n| !n.is_master() && !n.failed()).filter_map(|n| n.slaveof);
        for m in masters.chain(self.my_master) {
            *ok.entry(m).or_default() += 1;
        }
        ok
    }

    /// The cron's part in replica migration (Redis's clusterCron and
    /// clusterHandleSlaveMigration): when some master with slots has lost all its working
    /// replicas, a replica of a master with the most working replicas (more than the
    /// barrier), the one with the smallest name among them, moves to it after
    /// [`MIGRATION_DELAY_MS`].
    pub(super) fn handle_replica_migration(&mut self, now: u64, s: &Settings) {
        let Some(mine) = self.my_master else { return };
        let working = self.working_replicas();
        let working_of = |m: NodeId| working.get(&m).copied().unwrap_or(0);
        let (mut orphaned, mut max, mut this) = (0, 0, 0);
        for (&id, n) in &self.peers {
            if n.flags & (NOADDR | HANDSHAKE) != 0 || !n.is_master() || n.failed() {
                continue;
            }
            let ok = working_of(id);
            if ok == 0 && n.numslots > 0 && n.flags & MIGRATE_TO != 0 {
                orphaned += 1;
            }
            max = max.max(ok);
            if id == mine {
                this = ok;
            }
        }
        if orphaned == 0 || max < 2 || this != max || !s.replica_migration || !self.ok {
            return;
        }
        let barrier_ok = working_of(mine).saturating_sub(
            self.peers.values().filter(|n| n.slaveof == Some(mine) && !n.failed() && n.timed_out()).count(),
        );
        if barrier_ok <= s.migration_barrier {
            return;
        }
        let mut target = None;
        let mut candidate = self.myid.clone();
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            let ok = self.peers.get(&id).filter(|n| n.is_master()).map_or(0, |_| working_of(id));
            let Some(n) = self.peers.get_mut(&id) else { continue };
            let orphan = n.is_master() && !n.failed() && n.flags & MIGRATE_TO != 0 && ok == 0;
            if orphan {
                if target.is_none() && n.numslots > 0 {
                    target = Some(id);
                }
                if n.orphaned_time == 0 {
                    n.orphaned_time = now;
                }
            } else {
                n.orphaned_time = 0;
            }
            if ok == max {
                for r in self.replicas_of(id) {
                    let name =
                        if r == MYSELF { &self.myid } else { self.peers.get(&r).map_or(&candidate, |n| &n.name) };
                    if *name < candidate {
                        candidate = name.clone();
                    }
                }
            }
        }
        let Some(t) = target else { return };
        let since = self.peers.get(&t).map_or(now, |n| n.orphaned_time);
        if candidate == self.myid && now.saturating_sub(since) > MIGRATION_DELAY_MS && !s.no_failover {
            tracing::warn!("Migrating to orphaned master {}", self.peers.get(&t).map_or("", |n| n.name.as_str()));
            self.set_master(t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::node::Node;
    use super::super::test_support::{SETTINGS as S, temp_cluster};
    use super::*;
    use crate::cluster::bus::node_flags::{FAIL, MASTER};

    /// A replica of a failed master schedules an election, unless its data is older than
    /// the validity factor allows (cluster-replica-validity-factor).
    #[test]
    fn stale_replicas_do_not_stand() {
        let mut r = temp_cluster("stale", 7002);
        let mut n = Node::new("m".repeat(40), MASTER | FAIL, 0);
        (n.ip, n.port) = ("127.0.0.1".into(), 7000);
        let m = r.add_node(n);
        r.give(0, m);
        r.set_master(m);
        r.size = 1;
        let now = 1_000_000;
        r.master_data_age = 15_000 * 10 + 10_000 + 15_000 + 1;
        r.handle_failover(now, &S);
        assert_eq!(r.election.time, 0, "too stale to stand");
        r.master_data_age = 1_000;
        r.handle_failover(now, &S);
        assert!(r.election.time >= now + 500, "an election is scheduled");
        let forced = Settings { validity_factor: 0, ..S };
        r.election = Default::default();
        r.master_data_age = u64::MAX / 2;
        r.handle_failover(now, &forced);
        assert!(r.election.time > 0, "factor 0: any age stands");
    }
}
