//! The cluster bus protocol's logic, as Redis 7.0's cluster.c runs it: the handshake (MEET,
//! then the PONG that tells a node's real name), PING/PONG with gossip sections every
//! second and within half the node timeout, nodes learnt from gossip, slot ownership
//! settled by config epoch (clusterUpdateSlotsConfigWith, UPDATE), PFAIL from this node's
//! timeout and FAIL from a majority of masters' reports. Sockets are the server's: it
//! calls [`Cluster::receive`] with each whole message and [`Cluster::cron`] every 100 ms, and
//! carries out the [`BusOut`] actions they leave.

use rand::RngExt;

use super::failover::{MF_PAUSE_MULT, MF_TIMEOUT_MS};

use super::bus::{self, Body, Gossip, Header, node_flags::*, types};
use super::{BusOut, Cluster, Link, LinkId, MYSELF, NOBODY, Node, NodeId, SLOTS, Settings, new_id};

/// Redis's CLUSTER_FAIL_UNDO_TIME_MULT: a failed master serving slots is trusted again
/// this many node timeouts after the failure, if nobody took its slots.
const FAIL_UNDO_TIME_MULT: u64 = 2;
/// How often the cron runs (Redis runs clusterCron every 100 ms whatever the hz).
const CRON_MS: u64 = 100;

fn name_bytes(name: &str) -> [u8; bus::NAME_LEN] {
    let mut n = [0u8; bus::NAME_LEN];
    let b = name.as_bytes();
    let len = b.len().min(bus::NAME_LEN);
    n[..len].copy_from_slice(&b[..len]);
    n
}

fn name_str(n: &[u8; bus::NAME_LEN]) -> String {
    String::from_utf8_lossy(n).into_owned()
}

impl Cluster {
    /// CLUSTER MEET: a handshake node for the address, met at the next cron. False when the
    /// address is not an IP address or a port is out of range (a handshake already under
    /// way to it is fine, as in Redis).
    pub fn meet(&mut self, ip: &str, port: i64, cport: i64, now: u64) -> bool {
        let Ok(addr) = ip.parse::<std::net::IpAddr>() else { return false };
        if !(1..=65535).contains(&port) || !(1..=65535).contains(&cport) {
            return false;
        }
        let ip = addr.to_string();
        let (port, cport) = (port as u16, cport as u16);
        let busy = self
            .peers
            .values()
            .any(|n| n.in_handshake() && n.ip.eq_ignore_ascii_case(&ip) && n.port == port && n.cport == cport);
        if !busy {
            let mut n = Node::new(new_id(), HANDSHAKE | MEET, now);
            (n.ip, n.port, n.cport) = (ip, port, cport);
            self.add_node(n);
        }
        true
    }

    /// A connection from another node's bus arrived: its number.
    pub fn accept_link(&mut self, now: u64) -> LinkId {
        let link = self.new_link();
        self.links.insert(link, Link { node: None, inbound: true, ctime: now });
        link
    }

    fn new_link(&mut self) -> LinkId {
        let link = self.next_link;
        self.next_link = self.next_link.wrapping_add(1);
        link
    }

    /// The server lost (or could not open) a link.
    pub fn link_closed(&mut self, link: LinkId) {
        if let Some(l) = self.links.remove(&link)
            && let Some(n) = l.node.and_then(|id| self.peers.get_mut(&id))
        {
            if n.link == Some(link) {
                n.link = None;
            }
            if n.inbound == Some(link) {
                n.inbound = None;
            }
        }
    }

    /// Closes a link from this side (Redis's freeClusterLink).
    fn free_link(&mut self, link: LinkId) {
        self.link_closed(link);
        self.out.push(BusOut::Close { link });
    }

    /// DEBUG CLUSTERLINK KILL: closes the link to a node, from it, or both.
    pub fn kill_links(&mut self, id: NodeId, to: bool, from: bool) {
        let Some(n) = self.peers.get(&id) else { return };
        let links = [n.link.filter(|_| to), n.inbound.filter(|_| from)];
        for link in links.into_iter().flatten() {
            self.free_link(link);
        }
    }

    pub fn link_is_inbound(&self, link: LinkId) -> Option<bool> {
        self.links.get(&link).map(|l| l.inbound)
    }

    /// CLUSTER LINKS: (direction "to"/"from", node name, created ms) of every link that
    /// knows its node.
    pub fn link_list(&self) -> Vec<(LinkId, bool, String, u64)> {
        let mut v: Vec<_> = self
            .links
            .iter()
            .filter_map(|(&id, l)| {
                let n = self.peers.get(&l.node?)?;
                Some((id, l.inbound, n.name.clone(), l.ctime))
            })
            .collect();
        v.sort_by_key(|x| x.0);
        v
    }

    pub(super) fn my_flags(&self) -> u16 {
        let role = if self.is_replica() { SLAVE } else { MASTER };
        // A replica that may not fail over says so, so others rank it out of elections.
        let nofailover = if self.is_replica() && self.no_failover { NOFAILOVER } else { 0 };
        bus::node_flags::MYSELF | role | nofailover
    }

    /// The header every message of this node starts with (Redis's clusterBuildMessageHdr).
    pub(super) fn header(&self, ty: u16) -> Header {
        let mut h = Header::new(ty, name_bytes(&self.myid));
        h.ip = self.announced_ip.clone();
        // A replica sends its master's slots and epoch, flagged as a replica.
        let master = self.my_master.and_then(|m| self.peers.get(&m).map(|n| (m, n)));
        let whose = master.map_or(MYSELF, |(m, _)| m);
        for (slot, &o) in self.owner.iter().enumerate() {
            if o == whose {
                h.set_slot(slot);
            }
        }
        if let Some((_, n)) = master {
            h.slaveof = name_bytes(&n.name);
        }
        h.port = self.port;
        h.cport = self.cport;
        h.flags = self.my_flags();
        h.state = u8::from(!self.ok);
        h.current_epoch = self.current_epoch;
        h.config_epoch = master.map_or(self.config_epoch, |(_, n)| n.config_epoch);
        h.offset = self.repl_offset;
        if !self.is_replica() && self.mf.end != 0 {
            h.mflags[0] |= bus::FLAG0_PAUSED;
        }
        h
    }

    pub(super) fn send(&mut self, link: LinkId, h: &Header, body: &Body) {
        if let Some(c) = self.sent.get_mut(h.ty as usize) {
            *c += 1;
        }
        self.out.push(BusOut::Send { link, msg: bus::encode(h, body) });
    }

    fn gossip_entry(n: &Node) -> Gossip {
        Gossip {
            name: name_bytes(&n.name),
            ping_sent: (n.ping_sent / 1000) as u32,
            pong_received: (n.pong_received / 1000) as u32,
            ip: n.ip.clone(),
            port: n.port,
            cport: n.cport,
            flags: n.flags,
            pport: n.pport,
        }
    }

    /// A PING, PONG or MEET on `link` with gossip about a tenth of the nodes (at least 3)
    /// and every node in PFAIL (Redis's clusterSendPing).
    pub(super) fn send_ping(&mut self, link: LinkId, ty: u16, now: u64) {
        let Some(l) = self.links.get(&link) else { return };
        let (inbound, target) = (l.inbound, l.node);
        let fresh = self.peers.len().saturating_sub(1);
        let wanted = (self.known_nodes() / 10).max(3).min(fresh);
        if !inbound
            && ty == types::PING
            && let Some(n) = target.and_then(|t| self.peers.get_mut(&t))
        {
            n.ping_sent = now;
        }
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        let mut chosen: Vec<NodeId> = Vec::new();
        let mut rng = rand::rng();
        let mut tries = wanted * 3;
        while !ids.is_empty() && chosen.len() < wanted && tries > 0 {
            tries -= 1;
            let id = ids[rng.random_range(0..ids.len())];
            let Some(n) = self.peers.get(&id) else { continue };
            if n.flags & (PFAIL | HANDSHAKE | NOADDR) != 0 || (n.link.is_none() && n.numslots == 0) {
                continue;
            }
            if !chosen.contains(&id) {
                chosen.push(id);
            }
        }
        let mut gossip: Vec<Gossip> =
            chosen.iter().filter_map(|id| self.peers.get(id)).map(Self::gossip_entry).collect();
        gossip.extend(
            self.peers
                .values()
                .filter(|n| n.flags & PFAIL != 0 && n.flags & (HANDSHAKE | NOADDR) == 0)
                .map(Self::gossip_entry),
        );
        let hostname = (!self.hostname.is_empty()).then(|| self.hostname.clone());
        let h = self.header(ty);
        self.send(link, &h, &Body::Ping { gossip, hostname });
    }

    /// Sends a message to every node with a link (Redis's clusterBroadcastMessage).
    pub(super) fn broadcast(&mut self, h: &Header, body: &Body) {
        let links: Vec<LinkId> =
            self.peers.values().filter(|n| n.flags & HANDSHAKE == 0).filter_map(|n| n.link).collect();
        for link in links {
            self.send(link, h, body);
        }
    }

    /// A PONG to every node with a link (Redis's clusterBroadcastPong): a new configuration
    /// travels at once.
    pub fn broadcast_pong(&mut self, now: u64) {
        let links: Vec<LinkId> =
            self.peers.values().filter(|n| n.flags & HANDSHAKE == 0).filter_map(|n| n.link).collect();
        for link in links {
            self.send_ping(link, types::PONG, now);
        }
    }

    /// PUBLISH in cluster mode: the message goes to every node (Redis's
    /// clusterPropagatePublish).
    pub fn publish(&mut self, channel: &[u8], message: &[u8]) {
        let h = self.header(types::PUBLISH);
        self.broadcast(&h, &Body::Publish { channel: channel.to_vec(), message: message.to_vec() });
    }

    /// SPUBLISH: to the other nodes of this node's shard, its master and replicas, on the
    /// links that are up (Redis's clusterPropagatePublishShard).
    pub fn publish_shard(&mut self, channel: &[u8], message: &[u8]) {
        let master = self.my_master.unwrap_or(MYSELF);
        let mut members = self.replicas_of(master);
        members.push(master);
        let links: Vec<LinkId> = members
            .into_iter()
            .filter(|&m| m != MYSELF)
            .filter_map(|m| self.peers.get(&m).and_then(|n| n.link))
            .collect();
        let h = self.header(types::PUBLISHSHARD);
        let body = Body::Publish { channel: channel.to_vec(), message: message.to_vec() };
        for link in links {
            self.send(link, &h, &body);
        }
    }

    pub(super) fn epoch_of(&self, id: NodeId) -> u64 {
        if id == MYSELF { self.config_epoch } else { self.peers.get(&id).map_or(0, |n| n.config_epoch) }
    }

    /// One whole message from `link`. `peer_ip` is the remote address of the connection,
    /// `local_ip` this side's (a MEET teaches this node its own address).
    pub fn receive(&mut self, link: LinkId, msg: &[u8], peer_ip: &str, local_ip: &str, now: u64, s: &Settings) {
        let (h, body) = match bus::decode(msg) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("Received an invalid cluster bus message: {e}");
                return;
            }
        };
        if let Some(c) = self.received.get_mut(h.ty as usize) {
            *c += 1;
        }
        if i64::from(h.ty) == self.drop_filter {
            tracing::warn!("Dropping packet that matches debug drop filter");
            return;
        }
        let Some(l) = self.links.get(&link) else { return };
        let (inbound, link_node) = (l.inbound, l.node);
        let sender_name = name_str(&h.sender);
        // Redis's getNodeFromLinkAndMsg: the link's node unless in handshake, else by name.
        let sender = match link_node {
            Some(n) if self.peers.get(&n).is_some_and(|n| !n.in_handshake()) => Some(n),
            _ => self.by_name.get(&sender_name).copied(),
        };
        if inbound
            && let Some(id) = sender
            && link_node.is_none()
        {
            self.attach_inbound(id, link);
        }
        if let Some(n) = sender.and_then(|id| self.peers.get_mut(&id)) {
            n.data_received = now;
            if !n.in_handshake() {
                if h.current_epoch > self.current_epoch {
                    self.current_epoch = h.current_epoch;
                }
                if h.config_epoch > n.config_epoch {
                    n.config_epoch = h.config_epoch;
                    self.todo_save = true;
                }
                n.repl_offset = h.offset;
            }
        }
        if let Some(id) = sender
            && self.my_master == Some(id)
            && self.mf.end != 0
            && h.mflags[0] & bus::FLAG0_PAUSED != 0
            && self.mf.master_offset.is_none()
        {
            self.mf.master_offset = Some(h.offset);
            tracing::warn!("Received replication offset for paused master manual failover: {}", h.offset);
            self.handle_manual_failover(now, s);
        }
        match (h.ty, body) {
            (types::PING | types::PONG | types::MEET, Body::Ping { gossip, hostname }) => {
                self.on_ping(link, inbound, link_node, sender, &h, &gossip, hostname, peer_ip, local_ip, now, s);
            }
            (types::FAIL, Body::Fail { node }) => {
                let Some(_) = sender else {
                    tracing::info!("Ignoring FAIL message from unknown node {sender_name} about {}", name_str(&node));
                    return;
                };
                if let Some(id) = self.by_name.get(&name_str(&node)).copied()
                    && let Some(f) = self.peers.get_mut(&id)
                    && f.flags & FAIL == 0
                {
                    tracing::info!("FAIL message received from {sender_name} about {}", f.name);
                    f.flags = (f.flags | FAIL) & !PFAIL;
                    f.fail_time = now;
                    self.todo_save = true;
                    self.todo_state = true;
                }
            }
            (types::PUBLISH | types::PUBLISHSHARD, Body::Publish { channel, message }) if sender.is_some() => {
                self.out.push(BusOut::Deliver { shard: h.ty == types::PUBLISHSHARD, channel, message });
            }
            (types::MFSTART, _) => {
                // Only a replica of this node may ask it to pause.
                let Some(id) = sender.filter(|&id| self.peers.get(&id).is_some_and(|n| n.slaveof == Some(MYSELF)))
                else {
                    return;
                };
                self.reset_manual_failover();
                self.mf.end = now + MF_TIMEOUT_MS;
                self.mf.replica = Some(id);
                self.out.push(BusOut::PauseWrites(now + MF_TIMEOUT_MS * MF_PAUSE_MULT));
                tracing::warn!(
                    "Manual failover requested by replica {}.",
                    self.peers.get(&id).map_or("?", |n| n.name.as_str())
                );
                if let Some(link) = self.peers.get(&id).and_then(|n| n.link) {
                    self.send_ping(link, types::PING, now);
                }
            }
            (types::FAILOVER_AUTH_REQUEST, _) => {
                if let Some(id) = sender {
                    self.vote(id, &h, now, s);
                }
            }
            (types::FAILOVER_AUTH_ACK, _) => {
                let voter = sender.and_then(|id| self.peers.get(&id));
                if voter.is_some_and(|n| n.is_master() && n.numslots > 0) && h.current_epoch >= self.election.epoch {
                    self.election.votes += 1;
                    // Counted at once rather than at the next cron: the majority may be here.
                    self.handle_failover(now, s);
                }
            }
            (types::UPDATE, Body::Update { config_epoch, node, slots }) => {
                if sender.is_none() {
                    return;
                }
                let Some(id) = self.by_name.get(&name_str(&node)).copied() else { return };
                let Some(n) = self.peers.get_mut(&id) else { return };
                if n.config_epoch >= config_epoch {
                    return;
                }
                if !n.is_master() {
                    self.set_as_master(id);
                }
                if let Some(n) = self.peers.get_mut(&id) {
                    n.config_epoch = config_epoch;
                }
                self.update_slots_with(id, config_epoch, &slots, s);
            }
            _ => {}
        }
    }

    /// Links an inbound connection to the node it turned out to come from.
    fn attach_inbound(&mut self, id: NodeId, link: LinkId) {
        let Some(n) = self.peers.get_mut(&id) else { return };
        let old = n.inbound.replace(link);
        if let Some(l) = self.links.get_mut(&link) {
            l.node = Some(id);
        }
        if let Some(old) = old.filter(|&o| o != link) {
            self.free_link(old);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_ping(
        &mut self,
        link: LinkId,
        inbound: bool,
        link_node: Option<NodeId>,
        sender: Option<NodeId>,
        h: &Header,
        gossip: &[Gossip],
        hostname: Option<String>,
        peer_ip: &str,
        local_ip: &str,
        now: u64,
        s: &Settings,
    ) {
        let sender_name = name_str(&h.sender);
        let their_ip = if h.ip.is_empty() { peer_ip.to_string() } else { h.ip.clone() };
        if h.ty == types::PING || h.ty == types::MEET {
            // A MEET names this node by the address it was reached at.
            if (h.ty == types::MEET || self.ip.is_empty())
                && self.announced_ip.is_empty()
                && !local_ip.is_empty()
                && local_ip != self.ip
            {
                self.ip = local_ip.to_string();
                tracing::warn!("IP address for this node updated to {}", self.ip);
                self.todo_save = true;
            }
            if sender.is_none() && h.ty == types::MEET {
                let mut n = Node::new(new_id(), HANDSHAKE, now);
                (n.ip, n.port, n.pport, n.cport) = (their_ip.clone(), h.port, h.pport, h.cport);
                self.add_node(n);
                self.todo_save = true;
                self.process_gossip(gossip, None, now, s);
            }
            self.send_ping(link, types::PONG, now);
        }
        if !inbound && let Some(n) = link_node {
            let Some(node) = self.peers.get(&n) else { return };
            if node.in_handshake() {
                if let Some(known) = sender {
                    // The node was already known: its address may have changed.
                    self.update_address(known, link, &their_ip, h);
                    self.del_node(n);
                    return;
                }
                self.rename(n, &sender_name);
                if let Some(node) = self.peers.get_mut(&n) {
                    tracing::debug!("Handshake with node {} completed.", node.name);
                    node.flags &= !HANDSHAKE;
                    node.flags |= h.flags & (MASTER | SLAVE);
                }
                self.todo_save = true;
            } else if node.name != sender_name {
                // Another node answers at that address now.
                if let Some(node) = self.peers.get_mut(&n) {
                    node.flags |= NOADDR;
                    node.ip.clear();
                    (node.port, node.pport, node.cport) = (0, 0, 0);
                }
                self.free_link(link);
                self.todo_save = true;
                return;
            }
        }
        // The sender may have been renamed into existence just above.
        let sender = sender.or_else(|| self.by_name.get(&sender_name).copied().filter(|_| !inbound));
        if let Some(n) = sender.and_then(|id| self.peers.get_mut(&id)) {
            n.flags = (n.flags & !NOFAILOVER) | (h.flags & NOFAILOVER);
        }
        if let Some(id) = sender
            && h.ty == types::PING
            && self.peers.get(&id).is_some_and(|n| !n.in_handshake())
            && self.update_address(id, link, &their_ip, h)
        {
            self.todo_save = true;
            self.todo_state = true;
        }
        if !inbound
            && h.ty == types::PONG
            && let Some(n) = link_node.and_then(|id| self.peers.get_mut(&id))
        {
            n.pong_received = now;
            n.ping_sent = 0;
            if n.timed_out() {
                n.flags &= !PFAIL;
                self.todo_save = true;
                self.todo_state = true;
            } else if n.failed() {
                self.clear_failure_if_needed(link_node.unwrap_or(NOBODY), now, s);
            }
        }
        let Some(sid) = sender else { return };
        // Role: master, or replica of the named master.
        if h.slaveof == [0; bus::NAME_LEN] {
            self.set_as_master(sid);
        } else {
            let master = self.lookup(&name_str(&h.slaveof)).filter(|&m| m != sid);
            if self.peers.get(&sid).is_some_and(|n| n.is_master()) {
                for slot in 0..SLOTS {
                    if self.owner[slot] == sid {
                        self.set_owner(slot, NOBODY);
                    }
                }
                if let Some(n) = self.peers.get_mut(&sid) {
                    n.flags = (n.flags & !(MASTER | MIGRATE_TO)) | SLAVE;
                }
                self.todo_save = true;
                self.todo_state = true;
            }
            if let Some(m) = master
                && self.peers.get(&sid).is_some_and(|n| n.slaveof != Some(m))
            {
                self.set_slaveof(sid, Some(m));
                self.todo_save = true;
            }
        }
        // Slots: what the sender (or its master) claims against what this node thinks.
        let Some(snode) = self.peers.get(&sid) else { return };
        let sender_master = if snode.is_master() { Some(sid) } else { snode.slaveof };
        let sender_is_master = snode.is_master();
        let dirty = sender_master.is_some_and(|m| (0..SLOTS).any(|j| (self.owner[j] == m) != h.has_slot(j)));
        if sender_is_master && dirty {
            self.update_slots_with(sid, h.config_epoch, &h.slots, s);
        }
        if dirty {
            // The sender claims slots a newer configuration gave to another node: tell it.
            for j in (0..SLOTS).filter(|&j| h.has_slot(j)) {
                let o = self.owner[j];
                if o == sid || o == NOBODY {
                    continue;
                }
                if self.epoch_of(o) > h.config_epoch {
                    self.send_update(sid, o);
                    break;
                }
            }
        }
        if sender_is_master && h.config_epoch == self.config_epoch {
            self.handle_epoch_collision(sid);
        }
        self.process_gossip(gossip, Some(sid), now, s);
        if let Some(n) = self.peers.get_mut(&sid) {
            let hostname = hostname.unwrap_or_default();
            if n.hostname != hostname {
                n.hostname = hostname;
                self.todo_save = true;
            }
        }
    }

    /// An UPDATE to `to` about `about`'s slots and epoch.
    fn send_update(&mut self, to: NodeId, about: NodeId) {
        let Some(link) = self.peers.get(&to).and_then(|n| n.link) else { return };
        let (name, epoch) = match self.peers.get(&about) {
            Some(n) => (n.name.clone(), n.config_epoch),
            None => (self.myid.clone(), self.config_epoch),
        };
        let mut slots = Box::new([0u8; SLOTS / 8]);
        for (j, &o) in self.owner.iter().enumerate() {
            if o == about {
                slots[j / 8] |= 1 << (j % 8);
            }
        }
        let h = self.header(types::UPDATE);
        self.send(link, &h, &Body::Update { config_epoch: epoch, node: name_bytes(&name), slots });
    }

    /// Redis's clusterHandleConfigEpochCollision: of two masters with one config epoch, the
    /// one with the smaller name takes a new one.
    fn handle_epoch_collision(&mut self, sender: NodeId) {
        let Some(n) = self.peers.get(&sender) else { return };
        if n.name.as_str() <= self.myid.as_str() {
            return;
        }
        self.current_epoch += 1;
        self.config_epoch = self.current_epoch;
        self.todo_save = true;
        tracing::warn!("WARNING: configEpoch collision with node {}. configEpoch set to {}", n.name, self.config_epoch);
    }

    fn set_as_master(&mut self, id: NodeId) {
        let Some(n) = self.peers.get_mut(&id) else { return };
        if n.is_master() {
            return;
        }
        let old = n.slaveof.take();
        if old.is_some() {
            n.flags |= MIGRATE_TO;
        }
        n.flags = (n.flags & !SLAVE) | MASTER;
        self.replica_moved(old, None);
        self.todo_save = true;
        self.todo_state = true;
    }

    fn rename(&mut self, id: NodeId, name: &str) {
        let Some(n) = self.peers.get_mut(&id) else { return };
        tracing::debug!("Renaming node {} into {name}", n.name);
        let old = std::mem::replace(&mut n.name, name.to_string());
        if self.by_name.get(&old) == Some(&id) {
            self.by_name.remove(&old);
        }
        self.by_name.insert(name.to_string(), id);
    }

    /// Redis's nodeUpdateAddressIfNeeded: a PING from the node on another connection shows
    /// its current address; a changed one drops the outbound link to reconnect there.
    fn update_address(&mut self, id: NodeId, link: LinkId, ip: &str, h: &Header) -> bool {
        let Some(n) = self.peers.get_mut(&id) else { return false };
        if n.link == Some(link) {
            return false;
        }
        if n.port == h.port && n.cport == h.cport && n.pport == h.pport && n.ip == ip {
            return false;
        }
        n.ip = ip.to_string();
        (n.port, n.pport, n.cport) = (h.port, h.pport, h.cport);
        n.flags &= !NOADDR;
        tracing::warn!("Address updated for node {}, now {}:{}", n.name, n.ip, n.port);
        let (ip, port) = (n.ip.clone(), n.port);
        if let Some(old) = n.link {
            self.free_link(old);
        }
        if self.my_master == Some(id) {
            self.out.push(BusOut::Replicate { ip, port });
        }
        true
    }

    /// Redis's clusterProcessGossipSection.
    fn process_gossip(&mut self, gossip: &[Gossip], sender: Option<NodeId>, now: u64, s: &Settings) {
        let sender_is_master = sender.and_then(|id| self.peers.get(&id)).is_some_and(|n| n.is_master());
        for g in gossip {
            let name = name_str(&g.name);
            if name == self.myid {
                let pong = g.pong_received as u64 * 1000;
                if g.flags & (FAIL | PFAIL) == 0 && pong <= now + 500 && pong > self.my_pong {
                    self.my_pong = pong;
                }
                continue;
            }
            if let Some(id) = self.by_name.get(&name).copied() {
                if let Some(reporter) = sender.filter(|_| sender_is_master) {
                    if g.flags & (FAIL | PFAIL) != 0 {
                        if let Some(n) = self.peers.get_mut(&id) {
                            match n.fail_reports.iter_mut().find(|(by, _)| *by == reporter) {
                                Some(r) => r.1 = now,
                                None => n.fail_reports.push((reporter, now)),
                            }
                        }
                        self.mark_failing_if_needed(id, now, s);
                    } else if let Some(n) = self.peers.get_mut(&id) {
                        n.fail_reports.retain(|(by, _)| *by != reporter);
                    }
                }
                let Some(n) = self.peers.get_mut(&id) else { continue };
                if g.flags & (FAIL | PFAIL) == 0 && n.ping_sent == 0 && n.count_fail_reports(now, s.node_timeout) == 0 {
                    let pong = g.pong_received as u64 * 1000;
                    if pong <= now + 500 && pong > n.pong_received {
                        n.pong_received = pong;
                    }
                }
                // A node this node cannot reach, seen elsewhere at another address.
                if n.flags & (FAIL | PFAIL) != 0
                    && g.flags & NOADDR == 0
                    && g.flags & (FAIL | PFAIL) == 0
                    && (!n.ip.eq_ignore_ascii_case(&g.ip) || n.port != g.port || n.cport != g.cport)
                {
                    n.ip = g.ip.clone();
                    (n.port, n.pport, n.cport) = (g.port, g.pport, g.cport);
                    n.flags &= !NOADDR;
                    if let Some(old) = n.link {
                        self.free_link(old);
                    }
                }
            } else if sender.is_some()
                && g.flags & NOADDR == 0
                && self.blacklist.get(&name).is_none_or(|&until| until <= now)
                && super::is_node_name(&name)
            {
                let mut n = Node::new(name, g.flags & !(bus::node_flags::MYSELF | HANDSHAKE | MEET), now);
                n.ip = g.ip.clone();
                (n.port, n.pport, n.cport) = (g.port, g.pport, g.cport);
                self.add_node(n);
                self.todo_save = true;
            }
        }
    }

    /// Redis's markNodeAsFailingIfNeeded: PFAIL here and in the reports of a majority of
    /// masters makes FAIL, which every node is told.
    fn mark_failing_if_needed(&mut self, id: NodeId, now: u64, s: &Settings) {
        let quorum = self.size / 2 + 1;
        let Some(n) = self.peers.get_mut(&id) else { return };
        if !n.timed_out() || n.failed() {
            return;
        }
        // This node votes too, being a master.
        let failures = n.count_fail_reports(now, s.node_timeout) + 1;
        if failures < quorum {
            return;
        }
        tracing::info!("Marking node {} as failing (quorum reached).", n.name);
        n.flags = (n.flags & !PFAIL) | FAIL;
        n.fail_time = now;
        let name = name_bytes(&n.name);
        let h = self.header(types::FAIL);
        self.broadcast(&h, &Body::Fail { node: name });
        self.todo_save = true;
        self.todo_state = true;
    }

    /// Redis's clearNodeFailureIfNeeded: a reachable replica or slot-less master is trusted
    /// at once, a master with slots after a while if nobody took them.
    fn clear_failure_if_needed(&mut self, id: NodeId, now: u64, s: &Settings) {
        let Some(n) = self.peers.get_mut(&id) else { return };
        if !n.is_master() || n.numslots == 0 {
            tracing::info!(
                "Clear FAIL state for node {}: {} is reachable again.",
                n.name,
                if n.is_master() { "master without slots" } else { "replica" }
            );
            n.flags &= !FAIL;
            self.todo_save = true;
            self.todo_state = true;
        } else if now.saturating_sub(n.fail_time) > s.node_timeout.saturating_mul(FAIL_UNDO_TIME_MULT) {
            tracing::info!(
                "Clear FAIL state for node {}: is reachable again and nobody is serving its slots after some time.",
                n.name
            );
            n.flags &= !FAIL;
            self.todo_save = true;
            self.todo_state = true;
        }
    }

    /// Redis's clusterUpdateSlotsConfigWith: slots `sender` claims under `epoch` move to it
    /// when free or held under an older epoch (slots being imported excepted).
    fn update_slots_with(&mut self, sender: NodeId, epoch: u64, slots: &[u8; SLOTS / 8], s: &Settings) {
        if sender == MYSELF {
            return;
        }
        let mut lost = Vec::new();
        let mut migrated = 0;
        let mut claimed = 0;
        let curmaster = self.my_master.unwrap_or(MYSELF);
        let mut new_master = false;
        for j in 0..SLOTS {
            if slots[j / 8] & (1 << (j % 8)) == 0 {
                continue;
            }
            claimed += 1;
            let o = self.owner[j];
            if o == sender || self.importing.contains_key(&j) {
                continue;
            }
            if o == NOBODY || self.epoch_of(o) < epoch {
                if o == MYSELF {
                    lost.push(j as u16);
                }
                if o == curmaster {
                    new_master = true;
                    migrated += 1;
                }
                self.set_owner(j, sender);
                self.todo_save = true;
                self.todo_state = true;
            }
        }
        let curmaster_slots =
            if curmaster == MYSELF { self.owned } else { self.peers.get(&curmaster).map_or(0, |n| n.numslots) };
        if new_master && curmaster_slots == 0 && (s.replica_migration || claimed == migrated) {
            // This node's (or its master's) slots all went to `sender`: follow it.
            tracing::warn!(
                "Configuration change detected. Reconfiguring myself as a replica of {}",
                self.peers.get(&sender).map_or("?", |n| n.name.as_str())
            );
            self.set_master(sender);
            self.todo_save = true;
            self.todo_state = true;
        } else if !lost.is_empty() {
            self.out.push(BusOut::DropSlots(lost));
        }
    }

    /// Redis's clusterCron, every 100 ms: handshakes time out, links are opened, a random
    /// node is pinged each second and any not heard from in half the node timeout, and a
    /// node silent past the timeout is flagged PFAIL.
    pub fn cron(&mut self, now: u64, s: &Settings) {
        if now.saturating_sub(self.last_cron_ms) < CRON_MS {
            return;
        }
        self.last_cron_ms = now;
        self.iteration += 1;
        self.no_failover = s.no_failover;
        self.blacklist.retain(|_, &mut until| until > now);
        let timeout = s.node_timeout;
        let handshake_timeout = timeout.max(1000);
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for &id in &ids {
            let Some(n) = self.peers.get(&id) else { continue };
            if n.flags & NOADDR != 0 {
                continue;
            }
            if n.in_handshake() && now.saturating_sub(n.ctime) > handshake_timeout {
                self.del_node(id);
                continue;
            }
            if n.link.is_none() {
                let (ip, cport, meet, old_ping) = (n.ip.clone(), n.cport, n.flags & MEET != 0, n.ping_sent);
                let link = self.new_link();
                self.links.insert(link, Link { node: Some(id), inbound: false, ctime: now });
                self.out.push(BusOut::Connect { link, ip, cport });
                if let Some(n) = self.peers.get_mut(&id) {
                    n.link = Some(link);
                }
                self.send_ping(link, if meet { types::MEET } else { types::PING }, now);
                if let Some(n) = self.peers.get_mut(&id) {
                    if old_ping != 0 {
                        n.ping_sent = old_ping;
                    }
                    n.flags &= !MEET;
                }
            }
        }
        if self.iteration.is_multiple_of(10) && !ids.is_empty() {
            // Of five random nodes, the one whose pong is oldest.
            let mut rng = rand::rng();
            let mut best: Option<(NodeId, u64)> = None;
            for _ in 0..5 {
                let id = ids[rng.random_range(0..ids.len())];
                let Some(n) = self.peers.get(&id) else { continue };
                if n.link.is_none() || n.ping_sent != 0 || n.flags & HANDSHAKE != 0 {
                    continue;
                }
                if best.is_none_or(|(_, p)| n.pong_received < p) {
                    best = Some((id, n.pong_received));
                }
            }
            if let Some(link) = best.and_then(|(id, _)| self.peers.get(&id)).and_then(|n| n.link) {
                self.send_ping(link, types::PING, now);
            }
        }
        let mut update = false;
        for &id in &ids {
            let Some(n) = self.peers.get(&id) else { continue };
            if n.flags & (NOADDR | HANDSHAKE) != 0 {
                continue;
            }
            let ping_delay = now.saturating_sub(n.ping_sent);
            let data_delay = now.saturating_sub(n.data_received);
            if let Some(link) = n.link
                && self.links.get(&link).is_some_and(|l| now.saturating_sub(l.ctime) > timeout)
                && n.ping_sent != 0
                && ping_delay > timeout / 2
                && data_delay > timeout / 2
            {
                // Connected, but silent: reconnect.
                self.free_link(link);
            }
            let Some(n) = self.peers.get(&id) else { continue };
            if let Some(link) = n.link
                && n.ping_sent == 0
                && now.saturating_sub(n.pong_received) > timeout / 2
            {
                self.send_ping(link, types::PING, now);
                continue;
            }
            if n.ping_sent == 0 {
                continue;
            }
            if ping_delay.min(data_delay) > timeout
                && n.flags & (PFAIL | FAIL) == 0
                && let Some(n) = self.peers.get_mut(&id)
            {
                tracing::debug!("*** NODE {} possibly failing", n.name);
                n.flags |= PFAIL;
                update = true;
            }
        }
        if let Some(m) = self.my_master.and_then(|m| self.peers.get(&m))
            && m.flags & NOADDR == 0
            && !m.ip.is_empty()
        {
            // The server ignores this while it already replicates that address.
            self.out.push(BusOut::Replicate { ip: m.ip.clone(), port: m.port });
        }
        if self.mf.end != 0 && self.mf.end < now {
            tracing::warn!("Manual failover timed out.");
            self.reset_manual_failover();
        }
        if let Some(link) = self.mf.replica.and_then(|r| self.peers.get(&r)).and_then(|n| n.link) {
            // A master paused for its replica keeps it told of its offset.
            self.send_ping(link, types::PING, now);
        }
        if self.is_replica() {
            self.handle_manual_failover(now, s);
            self.handle_failover(now, s);
            self.handle_replica_migration(now, s);
        }
        if update || !self.ok {
            self.update_state(now, s.node_timeout, s.full_coverage);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{SETTINGS as S, temp_cluster};
    use super::*;

    /// Carries every Send between two clusters wired by (link on a, link on b) pairs, as
    /// the server would, until nothing is left to send.
    fn pump(a: &mut Cluster, b: &mut Cluster, wires: &mut Vec<(LinkId, LinkId)>, now: u64) {
        for _ in 0..20 {
            let (out_a, out_b) = (a.take_out(), b.take_out());
            if out_a.is_empty() && out_b.is_empty() {
                return;
            }
            deliver(out_a, b, wires, now, false);
            deliver(out_b, a, wires, now, true);
        }
    }

    /// One side's actions carried to the other (`flipped`: from b to a; wires are (a, b)).
    fn deliver(out: Vec<BusOut>, to: &mut Cluster, wires: &mut Vec<(LinkId, LinkId)>, now: u64, flipped: bool) {
        for o in out {
            match o {
                BusOut::Connect { link, .. } => {
                    let peer = to.accept_link(now);
                    wires.push(if flipped { (peer, link) } else { (link, peer) });
                }
                BusOut::Send { link, msg } => {
                    let wire = wires.iter().find(|w| if flipped { w.1 == link } else { w.0 == link });
                    if let Some(&(pa, pb)) = wire {
                        to.receive(if flipped { pa } else { pb }, &msg, "127.0.0.1", "127.0.0.1", now, &S);
                    }
                }
                _ => {}
            }
        }
    }

    #[test]
    fn a_drop_filter_ignores_messages_of_its_type() {
        let mut a = temp_cluster("drop-a", 7010);
        let mut b = temp_cluster("drop-b", 7011);
        b.drop_filter = i64::from(types::MEET);
        assert!(a.meet("127.0.0.1", 7011, 17011, 0));
        let mut wires = Vec::new();
        a.cron(1000, &S);
        pump(&mut a, &mut b, &mut wires, 1000);
        assert_eq!(b.known_nodes(), 1, "b dropped the MEET (without the filter it learns a)");
    }

    #[test]
    fn meet_handshake_and_slots_spread() {
        let mut a = temp_cluster("a", 7000);
        let mut b = temp_cluster("b", 7001);
        a.assign(&(0..8192).collect::<Vec<_>>(), true);
        b.assign(&(8192..SLOTS).collect::<Vec<_>>(), true);
        (a.config_epoch, b.config_epoch) = (1, 2);
        assert!(a.meet("127.0.0.1", 7001, 17001, 0));
        assert!(!a.meet("not-an-ip", 7001, 17001, 0));
        assert!(!a.meet("127.0.0.1", 0, 17001, 0));
        let mut wires = Vec::new();
        a.cron(1000, &S);
        pump(&mut a, &mut b, &mut wires, 1000);
        // a knows b by its real name; b learnt a from the MEET, named after the handshake.
        let bid = a.lookup(&b.myid).expect("a knows b");
        assert_eq!(a.owner(9000), bid);
        assert_eq!(a.ip, "");
        assert_eq!(b.ip, "127.0.0.1", "the MEET taught b its address");
        b.cron(1100, &S);
        pump(&mut a, &mut b, &mut wires, 1100);
        let aid = b.lookup(&a.myid).expect("b knows a");
        assert_eq!(b.owner(5), aid);
        assert_eq!(super::super::route_slots(&b, &[5], false, false), Err(super::super::Redirect::Down));
        b.update_state(5000, 15_000, true);
        assert!(b.is_ok());
        let moved = super::super::route_slots(&b, &[5], false, false).unwrap_err().message();
        assert_eq!(moved, "MOVED 5 127.0.0.1:7000");
        // cluster-preferred-endpoint-type: a hostname, "?" for a node without one, or none.
        b.endpoint_type = super::super::EndpointType::Hostname;
        let moved = super::super::route_slots(&b, &[5], false, false).unwrap_err().message();
        assert_eq!(moved, "MOVED 5 ?:7000");
        b.endpoint_type = super::super::EndpointType::Unknown;
        let moved = super::super::route_slots(&b, &[5], false, false).unwrap_err().message();
        assert_eq!(moved, "MOVED 5 :7000");
        b.endpoint_type = super::super::EndpointType::Ip;
        assert!(b.nodes_text().contains(&format!("{} 127.0.0.1:7000@17000 master - ", a.myid)), "{}", b.nodes_text());
        // Silence past the node timeout: PFAIL, then FAIL (two masters, one vote each).
        b.cron(30_000, &S);
        let _ = b.take_out();
        b.cron(50_000, &S);
        assert!(b.peer(aid).unwrap().timed_out());
    }

    #[test]
    fn newer_epoch_takes_slots() {
        let mut a = temp_cluster("c", 7000);
        let mut b = temp_cluster("d", 7001);
        a.assign(&[1, 2, 3], true);
        b.assign(&[3, 4], true);
        (a.config_epoch, b.config_epoch) = (5, 7);
        a.meet("127.0.0.1", 7001, 17001, 0);
        let mut wires = Vec::new();
        a.cron(1000, &S);
        pump(&mut a, &mut b, &mut wires, 1000);
        b.cron(1100, &S);
        pump(&mut a, &mut b, &mut wires, 1100);
        let bid = a.lookup(&b.myid).unwrap();
        // Slot 3, claimed by both, goes to b (epoch 7) on a; a gives up its keys there.
        assert_eq!(a.owner(3), bid);
        assert_eq!(a.owner(2), MYSELF);
        assert!(b.owns(3));
    }
}
