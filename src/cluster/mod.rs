//! Redis Cluster, first part: a node's own view. Its id, epochs and slots, kept in the
//! cluster config file (nodes.conf, in Redis's format), the CLUSTER commands that need no
//! peer, and the routing of keyed commands (-CROSSSLOT, -CLUSTERDOWN). The cluster bus (MEET,
//! gossip, failover, resharding) is not there yet: a node knows only itself, so a one-node
//! cluster serving all 16384 slots is what works today.

pub mod bus;
pub mod slot;

use std::io::Write;
use std::path::PathBuf;

use rand::RngExt;

pub use slot::{SLOTS, key_slot};

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
}

impl Redirect {
    pub fn message(&self) -> &'static str {
        match self {
            Redirect::CrossSlot => "CROSSSLOT Keys in request don't hash to the same slot",
            Redirect::Unbound => "CLUSTERDOWN Hash slot not served",
            Redirect::Down => "CLUSTERDOWN The cluster is down",
            Redirect::DownReadOnly => "CLUSTERDOWN The cluster is down and only accepts read commands",
        }
    }
}

pub struct Cluster {
    /// 40 hex characters.
    pub myid: String,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub last_vote_epoch: u64,
    /// Which slots this node serves.
    mine: Box<[bool]>,
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
    /// How clients and peers reach this node (announced or configured).
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub hostname: String,
}

fn new_id() -> String {
    let mut rng = rand::rng();
    (0..40).map(|_| char::from(b"0123456789abcdef"[rng.random_range(0..16)])).collect()
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
            mine: vec![false; SLOTS].into_boxed_slice(),
            owned: 0,
            ok: false,
            size: 1,
            first_update: None,
            among_minority: None,
            path: PathBuf::from(path),
            migrating: Default::default(),
            importing: Default::default(),
            ip: String::new(),
            port,
            cport,
            hostname: String::new(),
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
            if !f[2].split(',').any(|flag| flag == "myself") {
                tracing::warn!("Ignoring cluster node {} from the config file: peers are not supported yet", f[0]);
                continue;
            }
            if f[0].len() != 40 || !f[0].bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("bad node id {}", f[0]));
            }
            self.myid = f[0].to_string();
            self.config_epoch = f[6].parse().map_err(|_| "bad config epoch".to_string())?;
            for s in &f[8..] {
                if let Some(open) = s.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
                    // [slot->-id] migrating, [slot-<-id] importing.
                    let parsed = open
                        .split_once("->-")
                        .map(|(a, id)| (a, id, true))
                        .or_else(|| open.split_once("-<-").map(|(a, id)| (a, id, false)));
                    let Some((slot, id, out)) = parsed else { return Err(format!("bad slot state {s}")) };
                    let slot: usize = slot.parse().ok().filter(|&n| n < SLOTS).ok_or(format!("bad slot state {s}"))?;
                    if out {
                        self.migrating.insert(slot, id.to_string());
                    } else {
                        self.importing.insert(slot, id.to_string());
                    }
                    continue;
                }
                let (a, b) = s.split_once('-').unwrap_or((s, s));
                let (a, b): (usize, usize) = match (a.parse(), b.parse()) {
                    (Ok(a), Ok(b)) if a <= b && b < SLOTS => (a, b),
                    _ => return Err(format!("bad slot range {s}")),
                };
                for slot in a..=b {
                    self.set_slot(slot, true);
                }
            }
            found_myself = true;
        }
        if !found_myself {
            return Err("myself is not in it".into());
        }
        Ok(())
    }

    /// Writes the config file (Redis's clusterSaveConfig), through a temporary file and a
    /// rename so a crash never leaves half a file.
    pub fn save(&self) -> std::io::Result<()> {
        let mut text = self.node_line();
        text.push_str(&format!("\nvars currentEpoch {} lastVoteEpoch {}\n", self.current_epoch, self.last_vote_epoch));
        let tmp = self.path.with_extension("tmp-ember");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &self.path)
    }

    fn set_slot(&mut self, slot: usize, on: bool) {
        if self.mine[slot] != on {
            self.mine[slot] = on;
            if on {
                self.owned += 1;
            } else {
                self.owned -= 1;
            }
        }
    }

    pub fn owns(&self, slot: usize) -> bool {
        self.mine.get(slot).copied().unwrap_or(false)
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

    /// Assigns (or, with `on` false, removes) slots, each known to be free (or ours).
    pub fn assign(&mut self, slots: &[usize], on: bool) {
        for &s in slots {
            self.set_slot(s, on);
        }
    }

    /// Redis's clusterUpdateState, called by the cron and after slot changes.
    pub fn update_state(&mut self, now_ms: u64, node_timeout: u64, full_coverage: bool) {
        let first = *self.first_update.get_or_insert(now_ms);
        if !self.ok && now_ms.saturating_sub(first) < WRITABLE_DELAY_MS {
            return;
        }
        let mut ok = !full_coverage || self.owned == SLOTS;
        // Only this node is known: the masters with slots are it or none.
        self.size = usize::from(self.owned > 0);
        let reachable = self.size;
        if reachable < self.size / 2 + 1 {
            ok = false;
            self.among_minority = Some(now_ms);
        }
        if ok != self.ok {
            let rejoin = node_timeout.clamp(MIN_REJOIN_DELAY_MS, MAX_REJOIN_DELAY_MS);
            if ok && self.among_minority.is_some_and(|t| now_ms.saturating_sub(t) < rejoin) {
                return;
            }
            tracing::warn!("Cluster state changed: {}", if ok { "ok" } else { "fail" });
            self.ok = ok;
        }
    }

    /// Where the command whose keys hash to `slots` (in argument order) is served: Redis's
    /// getNodeByQuery for a node without peers. The first key's slot must be ours, the others
    /// the same, and the cluster up (or, with `reads_when_down`, the command a read).
    pub fn route(&self, slots: impl Iterator<Item = u16>, write: bool, reads_when_down: bool) -> Result<(), Redirect> {
        let mut first: Option<u16> = None;
        for s in slots {
            match first {
                None => {
                    if !self.owns(s as usize) {
                        return Err(Redirect::Unbound);
                    }
                    first = Some(s);
                }
                Some(f) if f != s => return Err(Redirect::CrossSlot),
                _ => {}
            }
        }
        if first.is_none() || self.ok {
            return Ok(());
        }
        if !reads_when_down {
            Err(Redirect::Down)
        } else if write {
            Err(Redirect::DownReadOnly)
        } else {
            Ok(())
        }
    }

    /// This node's line of CLUSTER NODES and of the config file.
    pub fn node_line(&self) -> String {
        let mut s = format!("{} {}:{}@{}", self.myid, self.ip, self.port, self.cport);
        if !self.hostname.is_empty() {
            s.push(',');
            s.push_str(&self.hostname);
        }
        s.push_str(&format!(" myself,master - 0 0 {} connected", self.config_epoch));
        for (a, b) in self.ranges() {
            if a == b {
                s.push_str(&format!(" {a}"));
            } else {
                s.push_str(&format!(" {a}-{b}"));
            }
        }
        // Redis lists a slot once, migrating first.
        for slot in 0..SLOTS {
            if let Some(id) = self.migrating.get(&slot) {
                s.push_str(&format!(" [{slot}->-{id}]"));
            } else if let Some(id) = self.importing.get(&slot) {
                s.push_str(&format!(" [{slot}-<-{id}]"));
            }
        }
        s
    }

    /// The served slots as inclusive ranges, in order.
    pub fn ranges(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        let mut start = None;
        for i in 0..=SLOTS {
            let on = i < SLOTS && self.mine[i];
            match (on, start) {
                (true, None) => start = Some(i),
                (false, Some(a)) => {
                    out.push((a, i - 1));
                    start = None;
                }
                _ => {}
            }
        }
        out
    }

    /// CLUSTER INFO's text.
    pub fn info(&self) -> String {
        let lines = [
            ("cluster_state", (if self.ok { "ok" } else { "fail" }).to_string()),
            ("cluster_slots_assigned", self.owned.to_string()),
            ("cluster_slots_ok", self.owned.to_string()),
            ("cluster_slots_pfail", "0".into()),
            ("cluster_slots_fail", "0".into()),
            ("cluster_known_nodes", "1".into()),
            ("cluster_size", self.size.to_string()),
            ("cluster_current_epoch", self.current_epoch.to_string()),
            ("cluster_my_epoch", self.config_epoch.to_string()),
            ("cluster_stats_messages_sent", "0".into()),
            ("cluster_stats_messages_received", "0".into()),
            ("total_cluster_links_buffer_limit_exceeded", "0".into()),
        ];
        lines.iter().map(|(k, v)| format!("{k}:{v}\r\n")).collect()
    }

    /// CLUSTER RESET (Redis's clusterReset for a master that knows no other node): every slot
    /// released; HARD also zeroes the epochs and takes a new id.
    pub fn reset(&mut self, hard: bool) {
        for slot in 0..SLOTS {
            self.set_slot(slot, false);
        }
        self.migrating.clear();
        self.importing.clear();
        if hard {
            self.current_epoch = 0;
            self.last_vote_epoch = 0;
            self.config_epoch = 0;
            self.myid = new_id();
            tracing::info!("Node hard reset, now I'm {}", self.myid);
        }
    }

    /// CLUSTER BUMPEPOCH: a new config epoch unless ours is already the only greatest.
    pub fn bump_epoch(&mut self) -> bool {
        // Alone in the cluster, this node's epoch is the greatest once it is nonzero and
        // equals the current epoch (Redis's clusterBumpConfigEpochWithoutConsensus).
        if self.config_epoch == 0 || self.config_epoch != self.current_epoch {
            self.current_epoch += 1;
            self.config_epoch = self.current_epoch;
            true
        } else {
            false
        }
    }
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
        assert_eq!(c.route([5u16, 5].into_iter(), true, false), Ok(()));
        assert_eq!(c.route([5u16, 6].into_iter(), true, false), Err(Redirect::CrossSlot));
        c.assign(&[5], false);
        c.update_state(3_100, 15_000, true);
        assert!(!c.is_ok());
        assert_eq!(c.route([6u16].into_iter(), false, false), Err(Redirect::Down));
        assert_eq!(c.route([6u16].into_iter(), true, true), Err(Redirect::DownReadOnly));
        assert_eq!(c.route([6u16].into_iter(), false, true), Ok(()));
        assert_eq!(c.route([5u16, 6].into_iter(), false, true), Err(Redirect::Unbound));
        assert_eq!(c.route(std::iter::empty(), true, false), Ok(()));
    }
}
