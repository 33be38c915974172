//! Redis Cluster: a node's view of the cluster. Its id, epochs and slots, the other nodes it
//! knows and who serves each slot, kept in the cluster config file (nodes.conf, in Redis's
//! format); the routing of keyed commands (-MOVED, -CROSSSLOT, -CLUSTERDOWN); and the bus
//! protocol's logic (gossip.rs: MEET, PING/PONG with gossip, failure detection, FAIL and
//! UPDATE), which the server's event loop feeds with the messages of its bus connections
//! and whose [`BusOut`] actions it carries out. Nothing in here touches a socket.

pub mod bus;
pub mod failover;
pub mod gossip;
pub mod node;
pub mod slot;

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;

use rand::RngExt;

pub use node::{LinkId, MYSELF, NOBODY, Node, NodeId};
pub use slot::{SLOTS, key_slot};

use bus::node_flags;

/// Redis's CLUSTER_WRITABLE_DELAY: after start a master stays down this long, so a cluster
/// can reconfigure it before it takes writes.
const WRITABLE_DELAY_MS: u64 = 2000;
/// Redis's CLUSTER_MIN_REJOIN_DELAY / CLUSTER_MAX_REJOIN_DELAY.
const MIN_REJOIN_DELAY_MS: u64 = 500;
const MAX_REJOIN_DELAY_MS: u64 = 5000;

/// Why a keyed command is not served here (Redis's CLUSTER_REDIR_*).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    CrossSlot,
    /// The slot has no owner.
    Unbound,
    /// The cluster is down.
    Down,
    /// Down, but reads are allowed (cluster-allow-reads-when-down) and this was a write.
    DownReadOnly,
    /// Another node serves the slot: its slot and endpoint ("ip:port").
    Moved(u16, String),
    /// The slot is moving to that node and the keys are not here: ask it.
    Ask(u16, String),
    /// Some of several keys of a moving slot are here, some not.
    TryAgain,
}

/// `cluster-preferred-endpoint-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointType {
    Ip,
    Hostname,
    Unknown,
}

impl EndpointType {
    pub fn from_config(name: &str) -> Self {
        match name {
            "hostname" => EndpointType::Hostname,
            "unknown-endpoint" => EndpointType::Unknown,
            _ => EndpointType::Ip,
        }
    }
}

impl Redirect {
    pub fn message(&self) -> String {
        match self {
            Redirect::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot".into(),
            Redirect::Unbound => "CLUSTERDOWN Hash slot not served".into(),
            Redirect::Down => "CLUSTERDOWN The cluster is down".into(),
            Redirect::DownReadOnly => "CLUSTERDOWN The cluster is down and only accepts read commands".into(),
            Redirect::Moved(slot, at) => format!("MOVED {slot} {at}"),
            Redirect::Ask(slot, at) => format!("ASK {slot} {at}"),
            Redirect::TryAgain => "TRYAGAIN Multiple keys request during rehashing of slot".into(),
        }
    }
}

/// What the cluster asks of the server's bus side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusOut {
    /// Open a connection to a node's bus port, known from now on as `link`.
    Connect {
        link: LinkId,
        ip: String,
        cport: u16,
    },
    /// Queue a message on a link (one still connecting sends it once connected).
    Send {
        link: LinkId,
        msg: Vec<u8>,
    },
    Close {
        link: LinkId,
    },
    /// A PUBLISH / PUBLISHSHARD from a peer, for this node's subscribers.
    Deliver {
        shard: bool,
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    /// Slots this node lost to a newer configuration while holding keys in them: the keys
    /// go (Redis's dirty slots).
    DropSlots(Vec<u16>),
    /// Slots this node's shard stopped serving: their shard channels lose their subscribers,
    /// each told with an sunsubscribe (Redis's removeChannelsInSlot).
    DropChannels(Vec<u16>),
    /// Replicate the master at this address (Redis's replicationSetMaster).
    Replicate {
        ip: String,
        port: u16,
    },
    /// This replica became a master: stop replicating (replicationUnsetMaster).
    Promoted,
    /// A manual failover: hold writes until this time (ms), or no longer.
    PauseWrites(u64),
    Unpause,
}

/// What routing needs to know of a command besides its keys.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query {
    pub write: bool,
    /// cluster-allow-reads-when-down (or, for sharded Pub/Sub, its own setting).
    pub reads_when_down: bool,
    /// The client sent ASKING, or the command is RESTORE-ASKING.
    pub asking: bool,
    /// MIGRATE: served here while its slot is open.
    pub migrate: bool,
    /// SSUBSCRIBE / SUNSUBSCRIBE / SPUBLISH: channels, not keys (no missing-key checks).
    pub shard_pubsub: bool,
    /// A READONLY client's read, served by a replica of the slot's master.
    pub readonly: bool,
}

/// The settings the protocol reads, from the server's config.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    pub node_timeout: u64,
    pub full_coverage: bool,
    /// cluster-allow-replica-migration: a master left without slots follows the node that
    /// took them.
    pub replica_migration: bool,
    /// cluster-replica-no-failover.
    pub no_failover: bool,
    /// cluster-replica-validity-factor (0: any data age may stand for election) and
    /// repl-ping-replica-period in ms: a replica whose data is older than node_timeout x
    /// factor + the ping period does not start an election.
    pub validity_factor: u64,
    pub repl_ping_ms: u64,
    /// cluster-migration-barrier: the working replicas a master keeps before one of them
    /// may migrate to an orphaned master.
    pub migration_barrier: usize,
}

/// A bus connection as the cluster sees it.
struct Link {
    node: Option<NodeId>,
    inbound: bool,
    ctime: u64,
}

pub struct Cluster {
    /// 40 hex characters.
    pub myid: String,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub last_vote_epoch: u64,
    /// Who serves each slot: [`MYSELF`], a peer, or [`NOBODY`].
    owner: Box<[NodeId]>,
    /// Slots this node serves.
    owned: usize,
    ok: bool,
    /// Masters serving at least one slot (Redis starts it at 1).
    size: usize,
    first_update: Option<u64>,
    among_minority: Option<u64>,
    path: PathBuf,
    /// Slots being moved out to / in from a node (CLUSTER SETSLOT MIGRATING / IMPORTING),
    /// by node id.
    pub migrating: std::collections::BTreeMap<usize, String>,
    pub importing: std::collections::BTreeMap<usize, String>,
    /// How clients and peers reach this node: `ip` learned from the first MEET (or
    /// announced), the ports bound or announced.
    pub ip: String,
    /// cluster-announce-ip: when set, peers are told to use it and `ip` never changes.
    pub announced_ip: String,
    pub port: u16,
    /// The bus port peers are told (announced, else `bus_port`).
    pub cport: u16,
    /// The bus port this node listens on.
    bus_port: u16,
    pub hostname: String,
    /// How redirects name a node (`cluster-preferred-endpoint-type`).
    pub endpoint_type: EndpointType,
    /// The other nodes.
    peers: HashMap<NodeId, Node>,
    by_name: HashMap<String, NodeId>,
    next_node: NodeId,
    links: HashMap<LinkId, Link>,
    next_link: LinkId,
    /// Names FORGET dropped, not re-added from gossip until the time (ms) given.
    blacklist: HashMap<String, u64>,
    out: Vec<BusOut>,
    /// Messages sent and received, by type (CLUSTER INFO).
    sent: [u64; 11],
    received: [u64; 11],
    /// DEBUG DROP-CLUSTER-PACKET-FILTER: messages of this type are dropped on receipt (-1: none).
    pub drop_filter: i64,
    /// Links freed for outgrowing `cluster-link-sendbuf-limit` (CLUSTER INFO).
    pub links_over_limit: u64,
    /// Slots whose shard channels are to be dropped (see [`BusOut::DropChannels`]).
    lost_channels: Vec<u16>,
    /// cluster-replica-no-failover, as the last cron read it (announced in our flags).
    no_failover: bool,
    /// Something changed that the config file or the state must follow (Redis's
    /// clusterDoBeforeSleep flags).
    todo_save: bool,
    todo_state: bool,
    iteration: u64,
    last_cron_ms: u64,
    /// This node's replication offset, for the headers it sends.
    pub repl_offset: u64,
    /// The latest pong time other nodes gossip about this one (Redis shows it in this
    /// node's CLUSTER NODES line).
    my_pong: u64,
    /// This node's master, when it is a replica.
    pub my_master: Option<NodeId>,
    /// How long ago (ms) this replica last heard from its master (set by the server).
    pub master_data_age: u64,
    /// The election of a replica whose master failed (Redis's failover_auth_*).
    election: Election,
    /// A manual failover under way (Redis's mf_*).
    mf: ManualFailover,
}

/// CLUSTER FAILOVER without FORCE: the replica asks its master to pause (MFSTART), learns
/// the master's final offset from its pings, and stands for election once it has caught up.
#[derive(Default)]
struct ManualFailover {
    /// When it gives up (0: none under way).
    end: u64,
    /// Master side: the replica that asked.
    replica: Option<NodeId>,
    /// Replica side: the paused master's offset.
    master_offset: Option<u64>,
}

/// A replica's failover election (Redis's failover_auth_time/count/sent/rank/epoch).
#[derive(Default)]
struct Election {
    /// When the vote requests go out (0: no election scheduled).
    time: u64,
    votes: usize,
    sent: bool,
    rank: usize,
    epoch: u64,
    /// CLUSTER FAILOVER FORCE: masters vote although the master is not failed.
    forced: bool,
}

fn new_id() -> String {
    let mut rng = rand::rng();
    (0..40).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect()
}

fn is_node_name(s: &str) -> bool {
    s.len() == bus::NAME_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// "ip:port@cport[,hostname]" of a nodes.conf line.
fn parse_address(a: &str) -> Option<(String, u16, u16, String)> {
    let (addr, hostname) = a.split_once(',').unwrap_or((a, ""));
    let (hostport, cport) = addr.split_once('@')?;
    let (ip, port) = hostport.rsplit_once(':')?;
    Some((ip.to_string(), port.parse().ok()?, cport.parse().ok()?, hostname.to_string()))
}

impl Cluster {
    /// Reads the config file, or creates it for a new node (Redis's clusterLoadConfig; an
    /// empty file counts as none).
    pub fn open(path: &str, port: u16, cport: u16) -> Result<Cluster, String> {
        let mut c = Cluster {
            myid: new_id(),
            current_epoch: 0,
            config_epoch: 0,
            last_vote_epoch: 0,
            owner: vec![NOBODY; SLOTS].into_boxed_slice(),
            owned: 0,
            ok: false,
            size: 1,
            first_update: None,
            among_minority: None,
            path: PathBuf::from(path),
            migrating: Default::default(),
            importing: Default::default(),
            ip: String::new(),
            announced_ip: String::new(),
            port,
            cport,
            bus_port: cport,
            hostname: String::new(),
            endpoint_type: EndpointType::Ip,
            peers: HashMap::new(),
            by_name: HashMap::new(),
            next_node: 1,
            links: HashMap::new(),
            next_link: 0,
            blacklist: HashMap::new(),
            out: Vec::new(),
            sent: [0; 11],
            received: [0; 11],
            drop_filter: -1,
            links_over_limit: 0,
            lost_channels: Vec::new(),
            no_failover: false,
            todo_save: false,
            todo_state: false,
            iteration: 0,
            last_cron_ms: 0,
            repl_offset: 0,
            my_pong: 0,
            my_master: None,
            master_data_age: 0,
            mf: ManualFailover::default(),
            election: Election::default(),
        };
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => {
                c.parse(&text)
                    .map_err(|e| format!("Unrecoverable error: corrupted cluster config file \"{path}\": {e}"))?;
                tracing::info!("Node configuration loaded, I'm {}", c.myid);
            }
            Ok(_) => c.create()?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => c.create()?,
            Err(e) => return Err(format!("Can't open {path}: {e}")),
        }
        Ok(c)
    }

    fn create(&mut self) -> Result<(), String> {
        tracing::info!("No cluster configuration found, I'm {}", self.myid);
        self.save().map_err(|e| format!("Fatal: can't update cluster config file: {e}"))
    }

    fn parse(&mut self, text: &str) -> Result<(), String> {
        let mut found_myself = false;
        // Masters are named before they may be known: resolved at the end.
        let mut masters: Vec<(NodeId, String)> = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let f: Vec<&str> = line.split(' ').collect();
            if f[0] == "vars" {
                for kv in f[1..].chunks(2) {
                    let [k, v] = kv else { return Err("odd vars line".into()) };
                    let v: u64 = v.parse().map_err(|_| format!("bad {k}"))?;
                    match *k {
                        "currentEpoch" => self.current_epoch = v,
                        "lastVoteEpoch" => self.last_vote_epoch = v,
                        _ => return Err(format!("unknown var {k}")),
                    }
                }
                continue;
            }
            if f.len() < 8 {
                return Err("a node line has fewer than 8 fields".into());
            }
            if !is_node_name(f[0]) {
                return Err(format!("bad node id {}", f[0]));
            }
            let flags = node::parse_flags(f[2]);
            let epoch: u64 = f[6].parse().map_err(|_| "bad config epoch".to_string())?;
            let (ip, port, cport, hostname) = parse_address(f[1]).ok_or(format!("bad address {}", f[1]))?;
            let id = if flags & node_flags::MYSELF != 0 {
                if found_myself {
                    return Err("two lines for myself".into());
                }
                found_myself = true;
                self.myid = f[0].to_string();
                self.config_epoch = epoch;
                self.ip = ip;
                if f[3] != "-" {
                    masters.push((MYSELF, f[3].to_string()));
                }
                MYSELF
            } else {
                if self.by_name.contains_key(f[0]) {
                    return Err(format!("node {} listed twice", f[0]));
                }
                let now = 0;
                let mut n = Node::new(f[0].to_string(), flags & !node_flags::HANDSHAKE, now);
                (n.ip, n.port, n.cport, n.hostname) = (ip, port, cport, hostname);
                n.config_epoch = epoch;
                if f[3] != "-" {
                    masters.push((self.next_node, f[3].to_string()));
                }
                self.add_node(n)
            };
            for s in &f[8..] {
                if let Some(open) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                    // [slot->-id] migrating, [slot-<-id] importing.
                    let parsed = open
                        .split_once("->-")
                        .map(|(a, id)| (a, id, true))
                        .or_else(|| open.split_once("-<-").map(|(a, id)| (a, id, false)));
                    let Some((slot, target, out)) = parsed else { return Err(format!("bad slot state {s}")) };
                    let slot: usize = slot.parse().ok().filter(|&n| n < SLOTS).ok_or(format!("bad slot state {s}"))?;
                    if out {
                        self.migrating.insert(slot, target.to_string());
                    } else {
                        self.importing.insert(slot, target.to_string());
                    }
                    continue;
                }
                let (a, b) = s.split_once('-').unwrap_or((s, s));
                let (a, b): (usize, usize) = match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) if a <= b && b < SLOTS => (a, b),
                    _ => return Err(format!("bad slot range {s}")),
                };
                for slot in a..=b {
                    self.set_owner(slot, id);
                }
            }
        }
        if !found_myself {
            return Err("myself is not in it".into());
        }
        for (id, master) in masters {
            let m = self.lookup(&master).filter(|&m| m != id);
            if id == MYSELF {
                self.my_master = m;
                self.replica_moved(None, m);
            } else {
                self.set_slaveof(id, m);
            }
        }
        Ok(())
    }

    /// Writes the config file (Redis's clusterSaveConfig), through a temporary file and a
    /// rename so a crash never leaves half a file. Nodes in handshake are left out.
    pub fn save(&self) -> std::io::Result<()> {
        let mut text = self.describe(MYSELF);
        text.push('\n');
        for (&id, n) in &self.peers {
            if !n.in_handshake() {
                text.push_str(&self.describe(id));
                text.push('\n');
            }
        }
        text.push_str(&format!("vars currentEpoch {} lastVoteEpoch {}\n", self.current_epoch, self.last_vote_epoch));
        let tmp = self.path.with_extension("tmp-ember");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }

    /// Saves the config file and updates the state if something asked for it since the
    /// last call (Redis's clusterBeforeSleep).
    pub fn before_sleep(&mut self, now: u64, s: &Settings) {
        if std::mem::take(&mut self.todo_state) {
            self.update_state(now, s.node_timeout, s.full_coverage);
        }
        if std::mem::take(&mut self.todo_save)
            && let Err(e) = self.save()
        {
            tracing::warn!("Can't update the cluster config file: {e}");
        }
    }

    /// The config's announced address and ports (0: none announced), and the bound port.
    pub fn configure(&mut self, announced_ip: &str, hostname: &str, port: u16, announced_cport: u16) {
        let cport = if announced_cport != 0 { announced_cport } else { self.bus_port };
        if self.announced_ip != announced_ip {
            self.announced_ip = announced_ip.to_string();
            if !announced_ip.is_empty() {
                self.ip = announced_ip.to_string();
            }
        }
        self.hostname = hostname.to_string();
        self.port = port;
        self.cport = cport;
    }

    /// Redis's clusterAddSlot / clusterDelSlot: `slot` now served by `id`.
    fn set_owner(&mut self, slot: usize, id: NodeId) {
        let old = self.owner[slot];
        if old == id {
            return;
        }
        // A slot leaves the shard this node is part of (Redis's clusterDelSlot).
        if old == MYSELF || (old != NOBODY && self.my_master == Some(old)) {
            self.lost_channels.push(slot as u16);
        }
        match old {
            MYSELF => self.owned -= 1,
            NOBODY => {}
            p => {
                if let Some(n) = self.peers.get_mut(&p) {
                    n.numslots -= 1;
                }
            }
        }
        match id {
            MYSELF => self.owned += 1,
            NOBODY => {}
            p => {
                // A master's first slot makes it a replica-migration target if some master
                // has replicas (Redis's clusterNodeSetSlotBit).
                let target = self.peers.get(&p).is_some_and(|n| n.numslots == 0) && self.masters_have_replicas();
                if let Some(n) = self.peers.get_mut(&p) {
                    n.numslots += 1;
                    if target {
                        n.flags |= node_flags::MIGRATE_TO;
                    }
                }
            }
        }
        self.owner[slot] = id;
    }

    fn masters_have_replicas(&self) -> bool {
        self.my_master.is_some() || self.peers.values().any(|n| !n.is_master() && n.slaveof.is_some())
    }

    /// A peer's master changes (Redis's clusterNodeAddSlave / RemoveSlave): a master with
    /// replicas is a replica-migration target, one left with none no longer is.
    fn set_slaveof(&mut self, id: NodeId, master: Option<NodeId>) {
        let Some(n) = self.peers.get_mut(&id) else { return };
        let old = std::mem::replace(&mut n.slaveof, master);
        if old != master {
            self.replica_moved(old, master);
        }
    }

    /// Flags after a replica (a peer or myself) left master `old` for `new`.
    fn replica_moved(&mut self, old: Option<NodeId>, new: Option<NodeId>) {
        if let Some(n) = new.and_then(|m| self.peers.get_mut(&m)) {
            n.flags |= node_flags::MIGRATE_TO;
        }
        if let Some(o) = old
            && self.replicas_of(o).is_empty()
            && let Some(n) = self.peers.get_mut(&o)
        {
            n.flags &= !node_flags::MIGRATE_TO;
        }
    }

    pub fn is_replica(&self) -> bool {
        self.my_master.is_some()
    }

    pub fn owns(&self, slot: usize) -> bool {
        self.owner.get(slot) == Some(&MYSELF)
    }

    /// Who serves `slot`.
    pub fn owner(&self, slot: usize) -> NodeId {
        self.owner.get(slot).copied().unwrap_or(NOBODY)
    }

    pub fn owned(&self) -> usize {
        self.owned
    }

    pub fn is_ok(&self) -> bool {
        self.ok
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Assigns `slots` to this node (or, with `on` false, frees them).
    pub fn assign(&mut self, slots: &[usize], on: bool) {
        for &s in slots {
            self.set_owner(s, if on { MYSELF } else { NOBODY });
        }
    }

    /// Gives `slot` to the node `id` (CLUSTER SETSLOT NODE).
    pub fn give(&mut self, slot: usize, id: NodeId) {
        self.set_owner(slot, id);
    }

    /// The node of that name: [`MYSELF`] or a peer.
    pub fn lookup(&self, name: &str) -> Option<NodeId> {
        if name == self.myid { Some(MYSELF) } else { self.by_name.get(name).copied() }
    }

    pub fn peer(&self, id: NodeId) -> Option<&Node> {
        self.peers.get(&id)
    }

    /// Every other node, in no order.
    pub fn peers(&self) -> impl Iterator<Item = (NodeId, &Node)> {
        self.peers.iter().map(|(&id, n)| (id, n))
    }

    /// The replicas of master `id` (this node among them when it is one), by name.
    pub fn replicas_of(&self, id: NodeId) -> Vec<NodeId> {
        let mut v: Vec<(&str, NodeId)> =
            self.peers.iter().filter(|(_, n)| n.slaveof == Some(id)).map(|(&r, n)| (n.name.as_str(), r)).collect();
        if self.my_master == Some(id) {
            v.push((self.myid.as_str(), MYSELF));
        }
        v.sort_unstable();
        v.into_iter().map(|(_, r)| r).collect()
    }

    pub fn known_nodes(&self) -> usize {
        self.peers.len() + 1
    }

    fn add_node(&mut self, n: Node) -> NodeId {
        let id = self.next_node;
        self.next_node += 1;
        self.by_name.insert(n.name.clone(), id);
        self.peers.insert(id, n);
        id
    }

    /// Redis's clusterDelNode: its slots freed, its links closed, its reports forgotten.
    fn del_node(&mut self, id: NodeId) {
        for slot in 0..SLOTS {
            if self.owner[slot] == id {
                self.set_owner(slot, NOBODY);
            }
        }
        for n in self.peers.values_mut() {
            n.fail_reports.retain(|&(by, _)| by != id);
            if n.slaveof == Some(id) {
                n.slaveof = None;
            }
        }
        if self.my_master == Some(id) {
            self.my_master = None;
        }
        if let Some(n) = self.peers.remove(&id) {
            if self.by_name.get(&n.name) == Some(&id) {
                self.by_name.remove(&n.name);
            }
            for link in [n.link, n.inbound].into_iter().flatten() {
                self.links.remove(&link);
                self.out.push(BusOut::Close { link });
            }
        }
    }

    /// CLUSTER FORGET: the node goes, and gossip may not bring it back for a minute.
    pub fn forget(&mut self, id: NodeId, now: u64) {
        if let Some(n) = self.peers.get(&id) {
            self.blacklist.insert(n.name.clone(), now + 60_000);
        }
        self.del_node(id);
        self.todo_save = true;
        self.todo_state = true;
    }

    /// Redis's clusterUpdateState, called by the cron and after slot changes.
    pub fn update_state(&mut self, now_ms: u64, node_timeout: u64, full_coverage: bool) {
        let first = *self.first_update.get_or_insert(now_ms);
        if !self.is_replica() && !self.ok && now_ms.saturating_sub(first) < WRITABLE_DELAY_MS {
            return;
        }
        let failed = |id: NodeId, peers: &HashMap<NodeId, Node>| peers.get(&id).is_some_and(|n| n.failed());
        let mut ok = !full_coverage || self.owner.iter().all(|&o| o != NOBODY && !failed(o, &self.peers));
        let mut size = usize::from(self.owned > 0 && !self.is_replica());
        let mut reachable = size;
        for n in self.peers.values() {
            if n.is_master() && n.numslots > 0 {
                size += 1;
                if n.flags & (node_flags::FAIL | node_flags::PFAIL) == 0 {
                    reachable += 1;
                }
            }
        }
        self.size = size;
        if reachable < self.size / 2 + 1 {
            ok = false;
            self.among_minority = Some(now_ms);
        }
        if ok != self.ok {
            let rejoin = node_timeout.clamp(MIN_REJOIN_DELAY_MS, MAX_REJOIN_DELAY_MS);
            if ok && !self.is_replica() && self.among_minority.is_some_and(|t| now_ms.saturating_sub(t) < rejoin) {
                return;
            }
            tracing::warn!("Cluster state changed: {}", if ok { "ok" } else { "fail" });
            self.ok = ok;
        }
    }

    /// Where the command whose keys (with their slots, in argument order) are `keys` is
    /// served: Redis's getNodeByQuery. The first key's slot must have an owner, the others
    /// be the same slot, the cluster up (or, with `reads_when_down`, the command a read);
    /// a slot being migrated out sends missing keys to its target (-ASK), one being
    /// imported serves ASKING clients; any other node's slot is -MOVED. `exists` says
    /// whether a key is here (asked only for open slots).
    pub fn route<'k>(
        &self,
        keys: impl Iterator<Item = (u16, &'k [u8])>,
        q: &Query,
        exists: impl Fn(&[u8]) -> bool,
    ) -> Result<(), Redirect> {
        let mut first: Option<(u16, &[u8])> = None;
        let (mut migrating, mut importing, mut multiple) = (false, false, false);
        let (mut missing, mut existing) = (0, 0);
        for (s, key) in keys {
            match first {
                None => {
                    let owner = self.owner(s as usize);
                    if owner == NOBODY {
                        return Err(Redirect::Unbound);
                    }
                    first = Some((s, key));
                    if owner == MYSELF && self.migrating.contains_key(&(s as usize)) {
                        migrating = true;
                    } else if self.importing.contains_key(&(s as usize)) {
                        importing = true;
                    }
                }
                Some((f, fk)) if fk != key => {
                    if f != s {
                        return Err(Redirect::CrossSlot);
                    }
                    multiple = true;
                }
                _ => {}
            }
            if (migrating || importing) && !q.shard_pubsub {
                if exists(key) {
                    existing += 1;
                } else {
                    missing += 1;
                }
            }
        }
        let Some((slot, _)) = first else { return Ok(()) };
        if !self.ok {
            if !q.reads_when_down {
                return Err(Redirect::Down);
            } else if q.write {
                return Err(Redirect::DownReadOnly);
            }
        }
        if (migrating || importing) && q.migrate {
            return Ok(());
        }
        if migrating && missing > 0 {
            if existing > 0 {
                return Err(Redirect::TryAgain);
            }
            let target = self.migrating.get(&(slot as usize)).and_then(|name| self.lookup(name));
            return Err(Redirect::Ask(slot, self.endpoint(target.unwrap_or(MYSELF))));
        }
        if importing && q.asking {
            return if multiple && missing > 0 { Err(Redirect::TryAgain) } else { Ok(()) };
        }
        let owner = self.owner(slot as usize);
        if (q.readonly || q.shard_pubsub) && !q.write && self.my_master == Some(owner) {
            return Ok(());
        }
        match owner {
            MYSELF => Ok(()),
            id => Err(Redirect::Moved(slot, self.endpoint(id))),
        }
    }

    /// Whether a client blocked on a key of `slot` must be sent elsewhere (Redis's
    /// clusterRedirectBlockedClientIfNeeded): the cluster went down, or the slot moved to
    /// another node (and is not being imported here).
    pub fn blocked_redirect(&self, slot: u16, readonly_read: bool) -> Option<Redirect> {
        if !self.ok {
            return Some(Redirect::Down);
        }
        let owner = self.owner(slot as usize);
        if owner == MYSELF
            || (readonly_read && self.my_master == Some(owner))
            || self.importing.contains_key(&(slot as usize))
        {
            return None;
        }
        Some(if owner == NOBODY { Redirect::Unbound } else { Redirect::Moved(slot, self.endpoint(owner)) })
    }

    /// "endpoint:port" of a node, as -MOVED and -ASK name it: its IP, hostname ("?" when it
    /// has none) or nothing, as `cluster-preferred-endpoint-type` says (Redis's
    /// getPreferredEndpoint).
    pub fn endpoint(&self, id: NodeId) -> String {
        let (ip, host, port) = match self.peers.get(&id) {
            Some(n) => (n.ip.as_str(), n.hostname.as_str(), n.port),
            None => (self.ip.as_str(), self.hostname.as_str(), self.port),
        };
        let at = match self.endpoint_type {
            EndpointType::Ip => ip,
            EndpointType::Hostname if host.is_empty() => "?",
            EndpointType::Hostname => host,
            EndpointType::Unknown => "",
        };
        format!("{at}:{port}")
    }

    /// A node's line of CLUSTER NODES and of the config file (Redis's
    /// clusterGenNodeDescription).
    pub fn describe(&self, id: NodeId) -> String {
        let mut s;
        if id == MYSELF {
            s = format!("{} {}:{}@{}", self.myid, self.ip, self.port, self.cport);
            if !self.hostname.is_empty() {
                s.push(',');
                s.push_str(&self.hostname);
            }
            let master = self.my_master.and_then(|m| self.peers.get(&m));
            let flags = node::flags_text(self.my_flags());
            let (role, epoch) = match master {
                Some(m) => (format!("{flags} {}", m.name), m.config_epoch),
                None => (format!("{flags} -"), self.config_epoch),
            };
            s.push_str(&format!(" {role} 0 {} {epoch} connected", self.my_pong));
        } else {
            let Some(n) = self.peers.get(&id) else { return String::new() };
            s = format!("{} {}:{}@{}", n.name, n.ip, n.port, n.cport);
            if !n.hostname.is_empty() {
                s.push(',');
                s.push_str(&n.hostname);
            }
            let master = n.slaveof.filter(|_| !n.is_master());
            let epoch = master.map_or(n.config_epoch, |m| self.epoch_of(m));
            let master_name = match master {
                Some(MYSELF) => self.myid.as_str(),
                Some(m) => self.peers.get(&m).map_or("-", |m| m.name.as_str()),
                None => "-",
            };
            s.push_str(&format!(
                " {} {} {} {} {} {}",
                node::flags_text(n.flags),
                master_name,
                n.ping_sent,
                n.pong_received,
                epoch,
                if n.link.is_some() { "connected" } else { "disconnected" }
            ));
        }
        s.push_str(&node::ranges_text(&self.ranges_of(id)));
        if id == MYSELF {
            // Redis lists a slot once, migrating first.
            for slot in 0..SLOTS {
                if let Some(target) = self.migrating.get(&slot) {
                    s.push_str(&format!(" [{slot}->-{target}]"));
                } else if let Some(source) = self.importing.get(&slot) {
                    s.push_str(&format!(" [{slot}-<-{source}]"));
                }
            }
        }
        s
    }

    /// CLUSTER NODES: every node, handshakes included.
    pub fn nodes_text(&self) -> String {
        let mut text = self.describe(MYSELF);
        text.push('\n');
        for &id in self.peers.keys() {
            text.push_str(&self.describe(id));
            text.push('\n');
        }
        text
    }

    /// This node's line (kept for callers that show only it).
    pub fn node_line(&self) -> String {
        self.describe(MYSELF)
    }

    /// The slots of node `id` as inclusive ranges, in order.
    pub fn ranges_of(&self, id: NodeId) -> Vec<(usize, usize)> {
        self.slot_ranges().into_iter().filter(|r| r.2 == id).map(|(a, b, _)| (a, b)).collect()
    }

    /// This node's slots as inclusive ranges.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        self.ranges_of(MYSELF)
    }

    /// Every served range of slots with its owner, in slot order.
    pub fn slot_ranges(&self) -> Vec<(usize, usize, NodeId)> {
        let mut out: Vec<(usize, usize, NodeId)> = Vec::new();
        for (slot, &o) in self.owner.iter().enumerate() {
            if o == NOBODY {
                continue;
            }
            match out.last_mut() {
                Some(last) if last.2 == o && last.1 + 1 == slot => last.1 = slot,
                _ => out.push((slot, slot, o)),
            }
        }
        out
    }

    /// CLUSTER INFO's text.
    pub fn info(&self) -> String {
        let assigned = self.owner.iter().filter(|&&o| o != NOBODY).count();
        let flagged =
            |f: u16| self.owner.iter().filter(|o| self.peers.get(o).is_some_and(|n| n.flags & f != 0)).count();
        let (pfail, fail) = (flagged(node_flags::PFAIL), flagged(node_flags::FAIL));
        let mut lines = vec![
            ("cluster_state".to_string(), (if self.ok { "ok" } else { "fail" }).to_string()),
            ("cluster_slots_assigned".into(), assigned.to_string()),
            ("cluster_slots_ok".into(), (assigned - pfail - fail).to_string()),
            ("cluster_slots_pfail".into(), pfail.to_string()),
            ("cluster_slots_fail".into(), fail.to_string()),
            ("cluster_known_nodes".into(), self.known_nodes().to_string()),
            ("cluster_size".into(), self.size.to_string()),
            ("cluster_current_epoch".into(), self.current_epoch.to_string()),
            ("cluster_my_epoch".into(), self.config_epoch.to_string()),
        ];
        for (counts, dir) in [(&self.sent, "sent"), (&self.received, "received")] {
            for (ty, &n) in counts.iter().enumerate() {
                if n > 0 {
                    lines.push((format!("cluster_stats_messages_{}_{dir}", bus::type_name(ty as u16)), n.to_string()));
                }
            }
            lines.push((format!("cluster_stats_messages_{dir}"), counts.iter().sum::<u64>().to_string()));
        }
        lines.push(("total_cluster_links_buffer_limit_exceeded".into(), self.links_over_limit.to_string()));
        lines.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect()
    }

    /// CLUSTER RESET (Redis's clusterReset for a master): every slot released, every other
    /// node forgotten; HARD also zeroes the epochs and takes a new id.
    pub fn reset(&mut self, hard: bool) {
        for slot in 0..SLOTS {
            self.set_owner(slot, NOBODY);
        }
        self.migrating.clear();
        self.importing.clear();
        let ids: Vec<NodeId> = self.peers.keys().copied().collect();
        for id in ids {
            self.del_node(id);
        }
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.config_epoch = 0;
            self.myid = new_id();
            tracing::info!("Node hard reset, now I'm {}", self.myid);
        }
    }

    /// The greatest config epoch this node knows (Redis's clusterGetMaxEpoch).
    fn max_epoch(&self) -> u64 {
        self.peers.values().map(|n| n.config_epoch).chain([self.config_epoch, self.current_epoch]).max().unwrap_or(0)
    }

    /// CLUSTER BUMPEPOCH: a new config epoch unless ours is already the only greatest
    /// (Redis's clusterBumpConfigEpochWithoutConsensus).
    pub fn bump_epoch(&mut self) -> bool {
        if self.config_epoch == 0 || self.config_epoch != self.max_epoch() {
            self.current_epoch += 1;
            self.config_epoch = self.current_epoch;
            self.todo_save = true;
            true
        } else {
            false
        }
    }

    /// CLUSTER COUNT-FAILURE-REPORTS: the live reports about a node.
    pub fn count_fail_reports(&mut self, id: NodeId, now: u64, node_timeout: u64) -> usize {
        self.peers.get_mut(&id).map_or(0, |n| n.count_fail_reports(now, node_timeout))
    }

    /// The actions produced since the last call.
    pub fn take_out(&mut self) -> Vec<BusOut> {
        if !self.lost_channels.is_empty() {
            self.out.push(BusOut::DropChannels(std::mem::take(&mut self.lost_channels)));
        }
        std::mem::take(&mut self.out)
    }

    pub fn has_out(&self) -> bool {
        !self.out.is_empty() || !self.lost_channels.is_empty()
    }
}

/// What the protocol tests share: settings with Redis's defaults, and a fresh node.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Cluster, Settings};

    pub const SETTINGS: Settings = Settings {
        node_timeout: 15_000,
        full_coverage: true,
        replica_migration: true,
        no_failover: false,
        validity_factor: 10,
        repl_ping_ms: 10_000,
        migration_barrier: 1,
    };

    /// A node with a new nodes.conf of its own (named after the test).
    pub fn temp_cluster(name: &str, port: u16) -> Cluster {
        let dir = std::env::temp_dir().join(format!("ember-cluster-node-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("nodes.conf");
        let _ = std::fs::remove_file(&path);
        Cluster::open(&path.to_string_lossy(), port, port + 10000).unwrap()
    }
}

/// [`Cluster::route`] of keys (all present) with these slots.
#[cfg(test)]
pub(crate) fn route_slots(c: &Cluster, slots: &[u16], write: bool, reads_when_down: bool) -> Result<(), Redirect> {
    let keys: Vec<(u16, Vec<u8>)> = slots.iter().enumerate().map(|(i, &s)| (s, format!("k{i}").into_bytes())).collect();
    let q = Query { write, reads_when_down, ..Default::default() };
    c.route(keys.iter().map(|(s, k)| (*s, k.as_slice())), &q, |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> String {
        let dir = std::env::temp_dir().join(format!("ember-cluster-{}-{name}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        dir.join("nodes.conf").to_string_lossy().into_owned()
    }

    #[test]
    fn config_file_round_trips() {
        let path = temp_path("roundtrip");
        let _ = std::fs::remove_file(&path);
        let mut c = Cluster::open(&path, 7000, 17000).unwrap();
        assert_eq!(c.myid.len(), 40);
        c.assign(&(0..100).chain(200..201).chain(16000..16384).collect::<Vec<_>>(), true);
        c.bump_epoch();
        c.migrating.insert(5, c.myid.clone());
        c.importing.insert(300, c.myid.clone());
        c.save().unwrap();
        let d = Cluster::open(&path, 7000, 17000).unwrap();
        assert_eq!(d.migrating.get(&5), Some(&c.myid));
        assert_eq!(d.importing.get(&300), Some(&c.myid));
        assert_eq!(d.myid, c.myid);
        assert_eq!(d.ranges(), vec![(0, 99), (200, 200), (16000, 16383)]);
        assert_eq!((d.current_epoch, d.config_epoch), (1, 1));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with(&format!("{} :7000@17000 myself,master - 0 0 1 connected", c.myid)));
        let states = format!(" [5->-{0}] [300-<-{0}]", c.myid);
        let tail = format!("connected 0-99 200 16000-16383{states}\nvars currentEpoch 1 lastVoteEpoch 0\n");
        assert!(text.ends_with(&tail), "{text}");
        std::fs::write(&path, "garbage line\n").unwrap();
        assert!(Cluster::open(&path, 7000, 17000).is_err());
    }

    #[test]
    fn state_waits_then_follows_coverage() {
        let path = temp_path("state");
        let _ = std::fs::remove_file(&path);
        let mut c = Cluster::open(&path, 7000, 17000).unwrap();
        c.update_state(1_000, 15_000, true);
        assert!(!c.is_ok());
        c.assign(&(0..SLOTS).collect::<Vec<_>>(), true);
        c.update_state(1_500, 15_000, true);
        assert!(!c.is_ok(), "the writable delay holds");
        c.update_state(3_000, 15_000, true);
        assert!(c.is_ok());
        assert_eq!(route_slots(&c, &[5, 5], true, false), Ok(()));
        assert_eq!(route_slots(&c, &[5, 6], true, false), Err(Redirect::CrossSlot));
        c.assign(&[5], false);
        c.update_state(3_100, 15_000, true);
        assert!(!c.is_ok());
        assert_eq!(route_slots(&c, &[6], false, false), Err(Redirect::Down));
        assert_eq!(route_slots(&c, &[6], true, true), Err(Redirect::DownReadOnly));
        assert_eq!(route_slots(&c, &[6], false, true), Ok(()));
        assert_eq!(route_slots(&c, &[5, 6], false, true), Err(Redirect::Unbound));
        assert_eq!(route_slots(&c, &[], true, false), Ok(()));
    }

    /// Open slots: a migrating slot asks the target for missing keys (TRYAGAIN when only
    /// some are here), an importing slot serves ASKING clients, MIGRATE is served either way.
    #[test]
    fn open_slots_ask_and_try_again() {
        let path = temp_path("ask");
        let _ = std::fs::remove_file(&path);
        let mut c = Cluster::open(&path, 7000, 17000).unwrap();
        let other = "b".repeat(40);
        let mut n = Node::new(other.clone(), node_flags::MASTER, 0);
        (n.ip, n.port) = ("10.0.0.2".into(), 7001);
        let b = c.add_node(n);
        c.assign(&[1], true);
        c.give(2, b);
        c.ok = true;
        c.migrating.insert(1, other.clone());
        c.importing.insert(2, other);
        let q = Query::default();
        let here = |k: &[u8]| k == b"x";
        let (x, y): (&[u8], &[u8]) = (b"x", b"y");
        let at = "10.0.0.2:7001".to_string();
        assert_eq!(c.route([(1, x)].into_iter(), &q, here), Ok(()));
        assert_eq!(c.route([(1, y)].into_iter(), &q, here), Err(Redirect::Ask(1, at.clone())));
        assert_eq!(c.route([(1, x), (1, y)].into_iter(), &q, here), Err(Redirect::TryAgain));
        assert_eq!(c.route([(2, y)].into_iter(), &q, here), Err(Redirect::Moved(2, at)));
        let asking = Query { asking: true, ..q };
        assert_eq!(c.route([(2, y)].into_iter(), &asking, here), Ok(()));
        assert_eq!(c.route([(2, x), (2, y)].into_iter(), &asking, here), Err(Redirect::TryAgain));
        let migrate = Query { migrate: true, ..q };
        assert_eq!(c.route([(1, y)].into_iter(), &migrate, here), Ok(()));
    }
}
