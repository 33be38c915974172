//! Another node of the cluster as this node knows it (Redis's clusterNode): its address,
//! role, epoch, the times of the last ping and pong, its bus links and the failure reports
//! masters sent about it. Myself is not one of these: the [`super::Cluster`] holds its own
//! identity, and [`MYSELF`] stands for it in the slot table.

use super::bus::node_flags::{FAIL, HANDSHAKE, MASTER, MYSELF as MYSELF_FLAG, NOADDR, NOFAILOVER, PFAIL, SLAVE};

/// A node's number in this process (never reused; names change after a handshake).
pub type NodeId = u32;
/// This node in the slot table.
pub const MYSELF: NodeId = 0;
/// A slot without an owner.
pub const NOBODY: NodeId = u32::MAX;
/// A bus connection, numbered by the cluster; the server maps it to a socket.
pub type LinkId = usize;

pub struct Node {
    /// 40 hex characters; random while the handshake has not told the real one.
    pub name: String,
    pub flags: u16,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub pport: u16,
    pub hostname: String,
    pub config_epoch: u64,
    /// The master of a replica, when known.
    pub slaveof: Option<NodeId>,
    pub numslots: usize,
    pub ctime: u64,
    /// When the pending PING went out (0: none pending).
    pub ping_sent: u64,
    pub pong_received: u64,
    pub data_received: u64,
    pub fail_time: u64,
    /// When this node (a master) last voted for a replica of this master.
    pub voted_time: u64,
    pub repl_offset: u64,
    /// The connection this node opened towards it, and the one the node opened to us.
    pub link: Option<LinkId>,
    pub inbound: Option<LinkId>,
    /// Masters that said this node is unreachable, and when they last said so.
    pub fail_reports: Vec<(NodeId, u64)>,
    /// Since when this master has been orphaned (slots, no working replica, MIGRATE_TO).
    pub orphaned_time: u64,
}

impl Node {
    pub fn new(name: String, flags: u16, now: u64) -> Node {
        Node {
            name,
            flags,
            ip: String::new(),
            port: 0,
            cport: 0,
            pport: 0,
            hostname: String::new(),
            config_epoch: 0,
            slaveof: None,
            numslots: 0,
            ctime: now,
            ping_sent: 0,
            pong_received: 0,
            data_received: 0,
            fail_time: 0,
            voted_time: 0,
            repl_offset: 0,
            link: None,
            inbound: None,
            fail_reports: Vec::new(),
            orphaned_time: 0,
        }
    }

    pub fn is_master(&self) -> bool {
        self.flags & MASTER != 0
    }

    pub fn in_handshake(&self) -> bool {
        self.flags & HANDSHAKE != 0
    }

    /// PFAIL: this node's own timeout says so.
    pub fn timed_out(&self) -> bool {
        self.flags & PFAIL != 0
    }

    pub fn failed(&self) -> bool {
        self.flags & FAIL != 0
    }

    /// Failure reports younger than twice the node timeout, the older ones dropped.
    pub fn count_fail_reports(&mut self, now: u64, node_timeout: u64) -> usize {
        let max_age = node_timeout.saturating_mul(2);
        self.fail_reports.retain(|&(_, t)| now.saturating_sub(t) <= max_age);
        self.fail_reports.len()
    }
}

/// The flags as CLUSTER NODES and nodes.conf show them (Redis's representClusterNodeFlags).
pub fn flags_text(flags: u16) -> String {
    const NAMES: [(u16, &str); 8] = [
        (MYSELF_FLAG, "myself"),
        (MASTER, "master"),
        (SLAVE, "slave"),
        (PFAIL, "fail?"),
        (FAIL, "fail"),
        (HANDSHAKE, "handshake"),
        (NOADDR, "noaddr"),
        (NOFAILOVER, "nofailover"),
    ];
    let names: Vec<&str> = NAMES.iter().filter(|(f, _)| flags & f != 0).map(|(_, n)| *n).collect();
    if names.is_empty() { "noflags".to_string() } else { names.join(",") }
}

/// The flags a nodes.conf line names (unknown words are ignored, as Redis does not write
/// them).
pub fn parse_flags(text: &str) -> u16 {
    text.split(',')
        .map(|w| match w {
            "myself" => MYSELF_FLAG,
            "master" => MASTER,
            "slave" => SLAVE,
            "fail?" => PFAIL,
            "fail" => FAIL,
            "handshake" => HANDSHAKE,
            "noaddr" => NOADDR,
            "nofailover" => NOFAILOVER,
            _ => 0,
        })
        .fold(0, |a, f| a | f)
}

/// The slots of a bitmap as CLUSTER NODES ranges: "0-5460 7000".
pub fn ranges_text(ranges: &[(usize, usize)]) -> String {
    let mut s = String::new();
    for &(a, b) in ranges {
        if a == b {
            s.push_str(&format!(" {a}"));
        } else {
            s.push_str(&format!(" {a}-{b}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_read_back() {
        assert_eq!(flags_text(0), "noflags");
        assert_eq!(flags_text(MYSELF_FLAG | MASTER), "myself,master");
        assert_eq!(flags_text(MASTER | PFAIL | NOADDR), "master,fail?,noaddr");
        assert_eq!(parse_flags("myself,master"), MYSELF_FLAG | MASTER);
        assert_eq!(parse_flags("slave,fail"), SLAVE | FAIL);
        assert_eq!(parse_flags("noflags"), 0);
    }
}
