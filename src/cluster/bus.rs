//! The cluster bus's wire format: Redis 7.0's `clusterMsg` (cluster.h), byte for byte.
//!
//! Every message starts with a fixed 2256-byte header (signature "RCmb", total length,
//! protocol version 1, the sender's ports, id, epochs, replication offset, slot bitmap,
//! master, IP, flags, cluster state and message flags); integers are big-endian. PING, PONG
//! and MEET carry `count` gossip sections of 104 bytes, then, with `CLUSTERMSG_FLAG0_EXT_DATA`,
//! extensions padded to 8 bytes (7.0 defines one: the announced hostname). FAIL names a node,
//! UPDATE carries a node's epoch and slots, PUBLISH / PUBLISHSHARD a channel and a message.
//! [`decode`] checks a message's length the way Redis's clusterProcessPacket does, so a peer's
//! malformed message is refused before anything reads past its end.

use super::slot::SLOTS;

pub const SIG: &[u8; 4] = b"RCmb";
pub const PROTO_VER: u16 = 1;
pub const NAME_LEN: usize = 40;
/// NET_IP_STR_LEN: an IPv6 address's text and its terminating zero.
pub const IP_LEN: usize = 46;
pub const HEADER_LEN: usize = 2256;
pub const GOSSIP_LEN: usize = 104;
/// CLUSTERMSG_FLAG0_EXT_DATA: extensions follow the gossip sections.
pub const FLAG0_EXT_DATA: u8 = 1 << 2;
/// CLUSTERMSG_FLAG0_PAUSED: a master paused for a manual failover (its offset is final).
pub const FLAG0_PAUSED: u8 = 1;
/// CLUSTERMSG_FLAG0_FORCEACK: vote although the master is up (manual failover).
pub const FLAG0_FORCEACK: u8 = 1 << 1;
const EXT_HOSTNAME: u16 = 0;

/// Message types (CLUSTERMSG_TYPE_*).
pub mod types {
    pub const PING: u16 = 0;
    pub const PONG: u16 = 1;
    pub const MEET: u16 = 2;
    pub const FAIL: u16 = 3;
    pub const PUBLISH: u16 = 4;
    pub const FAILOVER_AUTH_REQUEST: u16 = 5;
    pub const FAILOVER_AUTH_ACK: u16 = 6;
    pub const UPDATE: u16 = 7;
    pub const MFSTART: u16 = 8;
    pub const MODULE: u16 = 9;
    pub const PUBLISHSHARD: u16 = 10;
}

/// A message type's name in CLUSTER INFO's counters (Redis's clusterGetMessageTypeString).
pub fn type_name(ty: u16) -> &'static str {
    const NAMES: [&str; 11] = [
        "ping",
        "pong",
        "meet",
        "fail",
        "publish",
        "auth-req",
        "auth-ack",
        "update",
        "mfstart",
        "module",
        "publishshard",
    ];
    NAMES.get(ty as usize).copied().unwrap_or("unknown")
}

/// Node flags (CLUSTER_NODE_*), as the header and gossip sections carry them.
pub mod node_flags {
    pub const MASTER: u16 = 1;
    pub const SLAVE: u16 = 2;
    pub const PFAIL: u16 = 4;
    pub const FAIL: u16 = 8;
    pub const MYSELF: u16 = 16;
    pub const HANDSHAKE: u16 = 32;
    pub const NOADDR: u16 = 64;
    pub const MEET: u16 = 128;
    pub const MIGRATE_TO: u16 = 256;
    pub const NOFAILOVER: u16 = 512;
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BusError {
    #[error("bad signature")]
    Signature,
    #[error("unsupported protocol version {0}")]
    Version(u16),
    #[error("length {got} where {want} was expected")]
    Length { got: usize, want: usize },
    #[error("extension not padded to 8 bytes ({0})")]
    Padding(usize),
}

/// The fixed part of every message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub ty: u16,
    pub port: u16,
    pub current_epoch: u64,
    pub config_epoch: u64,
    pub offset: u64,
    pub sender: [u8; NAME_LEN],
    /// The sender's slots, one bit each, slot 0 the lowest bit of byte 0.
    pub slots: Box<[u8; SLOTS / 8]>,
    /// The sender's master; all zero when it is a master.
    pub slaveof: [u8; NAME_LEN],
    /// The sender's IP as it knows it (empty: the receiver takes the connection's).
    pub ip: String,
    pub pport: u16,
    pub cport: u16,
    pub flags: u16,
    /// 0 ok, 1 fail (CLUSTER_OK / CLUSTER_FAIL).
    pub state: u8,
    pub mflags: [u8; 3],
}

impl Header {
    pub fn new(ty: u16, sender: [u8; NAME_LEN]) -> Header {
        Header {
            ty,
            port: 0,
            current_epoch: 0,
            config_epoch: 0,
            offset: 0,
            sender,
            slots: Box::new([0; SLOTS / 8]),
            slaveof: [0; NAME_LEN],
            ip: String::new(),
            pport: 0,
            cport: 0,
            flags: 0,
            state: 0,
            mflags: [0; 3],
        }
    }

    pub fn has_slot(&self, slot: usize) -> bool {
        self.slots.get(slot / 8).is_some_and(|b| b & (1 << (slot % 8)) != 0)
    }

    pub fn set_slot(&mut self, slot: usize) {
        if let Some(b) = self.slots.get_mut(slot / 8) {
            *b |= 1 << (slot % 8);
        }
    }
}

/// One node as a PING, PONG or MEET gossips it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gossip {
    pub name: [u8; NAME_LEN],
    /// Seconds (Redis sends its ms clock / 1000, truncated to 32 bits).
    pub ping_sent: u32,
    pub pong_received: u32,
    pub ip: String,
    pub port: u16,
    pub cport: u16,
    pub flags: u16,
    pub pport: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// PING, PONG, MEET.
    Ping {
        gossip: Vec<Gossip>,
        hostname: Option<String>,
    },
    Fail {
        node: [u8; NAME_LEN],
    },
    Publish {
        channel: Vec<u8>,
        message: Vec<u8>,
    },
    Update {
        config_epoch: u64,
        node: [u8; NAME_LEN],
        slots: Box<[u8; SLOTS / 8]>,
    },
    /// FAILOVER_AUTH_REQUEST / ACK, MFSTART: the header says it all.
    Empty,
    /// MODULE and unknown types, kept as they came.
    Raw(Vec<u8>),
}

fn put_ip(out: &mut Vec<u8>, ip: &str) {
    let mut f = [0u8; IP_LEN];
    let b = ip.as_bytes();
    let n = b.len().min(IP_LEN - 1);
    f[..n].copy_from_slice(&b[..n]);
    out.extend_from_slice(&f);
}

fn get_ip(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be64(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_be_bytes(a)
}

fn name(b: &[u8], at: usize) -> [u8; NAME_LEN] {
    let mut n = [0u8; NAME_LEN];
    n.copy_from_slice(&b[at..at + NAME_LEN]);
    n
}

/// The message for `h` and `body` (count, extensions and lengths follow from the body).
pub fn encode(h: &Header, body: &Body) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + 256);
    let (count, ext_count) = match body {
        Body::Ping { gossip, hostname } => (gossip.len() as u16, u16::from(hostname.is_some())),
        _ => (0, 0),
    };
    out.extend_from_slice(SIG);
    out.extend_from_slice(&[0; 4]); // total length, set below
    out.extend_from_slice(&PROTO_VER.to_be_bytes());
    out.extend_from_slice(&h.port.to_be_bytes());
    out.extend_from_slice(&h.ty.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(&h.current_epoch.to_be_bytes());
    out.extend_from_slice(&h.config_epoch.to_be_bytes());
    out.extend_from_slice(&h.offset.to_be_bytes());
    out.extend_from_slice(&h.sender);
    out.extend_from_slice(&h.slots[..]);
    out.extend_from_slice(&h.slaveof);
    put_ip(&mut out, &h.ip);
    out.extend_from_slice(&ext_count.to_be_bytes());
    out.extend_from_slice(&[0; 30]);
    out.extend_from_slice(&h.pport.to_be_bytes());
    out.extend_from_slice(&h.cport.to_be_bytes());
    out.extend_from_slice(&h.flags.to_be_bytes());
    out.push(h.state);
    let mut mflags = h.mflags;
    if ext_count > 0 {
        mflags[0] |= FLAG0_EXT_DATA;
    }
    out.extend_from_slice(&mflags);
    debug_assert_eq!(out.len(), HEADER_LEN);
    match body {
        Body::Ping { gossip, hostname } => {
            for g in gossip {
                out.extend_from_slice(&g.name);
                out.extend_from_slice(&g.ping_sent.to_be_bytes());
                out.extend_from_slice(&g.pong_received.to_be_bytes());
                put_ip(&mut out, &g.ip);
                out.extend_from_slice(&g.port.to_be_bytes());
                out.extend_from_slice(&g.cport.to_be_bytes());
                out.extend_from_slice(&g.flags.to_be_bytes());
                out.extend_from_slice(&g.pport.to_be_bytes());
                out.extend_from_slice(&[0; 2]);
            }
            if let Some(host) = hostname {
                // Header (length, type, padding) and the name with its zero, padded to 8.
                let data = (host.len() + 1).div_ceil(8) * 8;
                out.extend_from_slice(&((8 + data) as u32).to_be_bytes());
                out.extend_from_slice(&EXT_HOSTNAME.to_be_bytes());
                out.extend_from_slice(&[0; 2]);
                out.extend_from_slice(host.as_bytes());
                out.resize(out.len() + data - host.len(), 0);
            }
        }
        Body::Fail { node } => out.extend_from_slice(node),
        Body::Publish { channel, message } => {
            out.extend_from_slice(&(channel.len() as u32).to_be_bytes());
            out.extend_from_slice(&(message.len() as u32).to_be_bytes());
            out.extend_from_slice(channel);
            out.extend_from_slice(message);
        }
        Body::Update { config_epoch, node, slots } => {
            out.extend_from_slice(&config_epoch.to_be_bytes());
            out.extend_from_slice(node);
            out.extend_from_slice(&slots[..]);
        }
        Body::Empty => {}
        Body::Raw(b) => out.extend_from_slice(b),
    }
    let total = (out.len() as u32).to_be_bytes();
    out[4..8].copy_from_slice(&total);
    out
}

/// The total length a buffer's first message announces, once 8 bytes have arrived (the
/// reader keeps reading until it has that many).
pub fn announced_len(buf: &[u8]) -> Option<usize> {
    (buf.len() >= 8).then(|| be32(buf, 4) as usize)
}

/// Decodes one whole message (`buf` is exactly its announced length).
pub fn decode(buf: &[u8]) -> Result<(Header, Body), BusError> {
    if buf.len() < 8 || &buf[..4] != SIG {
        return Err(BusError::Signature);
    }
    let total = be32(buf, 4) as usize;
    if total != buf.len() || total < HEADER_LEN {
        return Err(BusError::Length { got: buf.len(), want: total.max(HEADER_LEN) });
    }
    let ver = be16(buf, 8);
    if ver != PROTO_VER {
        return Err(BusError::Version(ver));
    }
    let ty = be16(buf, 12);
    let count = be16(buf, 14) as usize;
    let mut slots = Box::new([0u8; SLOTS / 8]);
    slots.copy_from_slice(&buf[80..2128]);
    let h = Header {
        ty,
        port: be16(buf, 10),
        current_epoch: be64(buf, 16),
        config_epoch: be64(buf, 24),
        offset: be64(buf, 32),
        sender: name(buf, 40),
        slots,
        slaveof: name(buf, 2128),
        ip: get_ip(&buf[2168..2214]),
        pport: be16(buf, 2246),
        cport: be16(buf, 2248),
        flags: be16(buf, 2250),
        state: buf[2252],
        mflags: [buf[2253], buf[2254], buf[2255]],
    };
    let extensions = be16(buf, 2214) as usize;
    let data = &buf[HEADER_LEN..];
    let exact = |want: usize| {
        if data.len() == want { Ok(()) } else { Err(BusError::Length { got: total, want: HEADER_LEN + want }) }
    };
    let body = match ty {
        types::PING | types::PONG | types::MEET => {
            let gossip_len = count * GOSSIP_LEN;
            if data.len() < gossip_len {
                return Err(BusError::Length { got: total, want: HEADER_LEN + gossip_len });
            }
            let gossip = data[..gossip_len]
                .chunks_exact(GOSSIP_LEN)
                .map(|g| Gossip {
                    name: name(g, 0),
                    ping_sent: be32(g, 40),
                    pong_received: be32(g, 44),
                    ip: get_ip(&g[48..94]),
                    port: be16(g, 94),
                    cport: be16(g, 96),
                    flags: be16(g, 98),
                    pport: be16(g, 100),
                })
                .collect();
            let mut rest = &data[gossip_len..];
            let mut hostname = None;
            if h.mflags[0] & FLAG0_EXT_DATA != 0 {
                for _ in 0..extensions {
                    if rest.len() < 8 {
                        return Err(BusError::Length { got: total, want: total + 8 - rest.len() });
                    }
                    let len = be32(rest, 0) as usize;
                    if !len.is_multiple_of(8) || len < 8 {
                        return Err(BusError::Padding(len));
                    }
                    if len > rest.len() {
                        return Err(BusError::Length { got: total, want: total + len - rest.len() });
                    }
                    if be16(rest, 4) == EXT_HOSTNAME {
                        hostname = Some(get_ip(&rest[8..len]));
                    }
                    rest = &rest[len..];
                }
            }
            if !rest.is_empty() {
                return Err(BusError::Length { got: total, want: total - rest.len() });
            }
            Body::Ping { gossip, hostname }
        }
        types::FAIL => {
            exact(NAME_LEN)?;
            Body::Fail { node: name(data, 0) }
        }
        types::PUBLISH | types::PUBLISHSHARD => {
            if data.len() < 8 {
                return Err(BusError::Length { got: total, want: HEADER_LEN + 8 });
            }
            let (c, m) = (be32(data, 0) as usize, be32(data, 4) as usize);
            let want = 8usize.saturating_add(c).saturating_add(m);
            exact(want)?;
            Body::Publish { channel: data[8..8 + c].to_vec(), message: data[8 + c..8 + c + m].to_vec() }
        }
        types::FAILOVER_AUTH_REQUEST | types::FAILOVER_AUTH_ACK | types::MFSTART => {
            exact(0)?;
            Body::Empty
        }
        types::UPDATE => {
            exact(8 + NAME_LEN + SLOTS / 8)?;
            let mut slots = Box::new([0u8; SLOTS / 8]);
            slots.copy_from_slice(&data[48..]);
            Body::Update { config_epoch: be64(data, 0), node: name(data, 8), slots }
        }
        _ => Body::Raw(data.to_vec()),
    };
    Ok((h, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A MEET redis-server 7.0.15 sent (node 7301 serving every slot, CLUSTER MEET to a
    /// listener), decoded and encoded back to the same bytes.
    #[test]
    fn redis_meet_round_trips() {
        let bytes = include_bytes!("../../tests/fixtures/cluster-meet-redis-7.0.15.bin");
        let (h, body) = decode(bytes).unwrap();
        assert_eq!(h.ty, types::MEET);
        assert_eq!((h.port, h.cport, h.pport), (7301, 17301, 0));
        assert_eq!(h.flags, node_flags::MASTER | node_flags::MYSELF);
        assert_eq!((h.current_epoch, h.config_epoch), (1, 1));
        assert!(h.sender.iter().all(u8::is_ascii_hexdigit));
        assert!((0..SLOTS).all(|s| h.has_slot(s)));
        assert_eq!(h.slaveof, [0; NAME_LEN]);
        assert_eq!(h.ip, "");
        assert_eq!(body, Body::Ping { gossip: vec![], hostname: None });
        assert_eq!(encode(&h, &body), bytes.to_vec());
    }

    #[test]
    fn every_body_round_trips() {
        let mut h = Header::new(types::PING, [b'a'; NAME_LEN]);
        h.ip = "127.0.0.1".into();
        h.set_slot(0);
        h.set_slot(16383);
        let g = Gossip {
            name: [b'b'; NAME_LEN],
            ping_sent: 1,
            pong_received: 2,
            ip: "::1".into(),
            port: 7000,
            cport: 17000,
            flags: node_flags::MASTER,
            pport: 0,
        };
        let bodies = [
            (types::PING, Body::Ping { gossip: vec![g.clone(), g], hostname: Some("node-1.example".into()) }),
            (types::PONG, Body::Ping { gossip: vec![], hostname: Some("exactly8".into()) }),
            (types::FAIL, Body::Fail { node: [b'c'; NAME_LEN] }),
            (types::PUBLISH, Body::Publish { channel: b"ch".to_vec(), message: b"hi".to_vec() }),
            (
                types::PUBLISHSHARD,
                Body::Publish { channel: b"channel".to_vec(), message: b"a longer message".to_vec() },
            ),
            (
                types::UPDATE,
                Body::Update { config_epoch: 9, node: [b'd'; NAME_LEN], slots: Box::new([0xff; SLOTS / 8]) },
            ),
            (types::FAILOVER_AUTH_ACK, Body::Empty),
        ];
        for (ty, body) in bodies {
            h.ty = ty;
            let bytes = encode(&h, &body);
            assert_eq!(announced_len(&bytes), Some(bytes.len()));
            let (h2, body2) = decode(&bytes).unwrap();
            let mut want = h.clone();
            if matches!(&body, Body::Ping { hostname: Some(_), .. }) {
                want.mflags[0] |= FLAG0_EXT_DATA;
            }
            assert_eq!(h2, want);
            assert_eq!(body2, body);
        }
    }

    /// Cut, stretched or inconsistent messages are refused without reading past the end.
    #[test]
    fn malformed_messages_are_refused() {
        let h = Header::new(types::PING, [b'a'; NAME_LEN]);
        let g = Gossip {
            name: [b'b'; NAME_LEN],
            ping_sent: 0,
            pong_received: 0,
            ip: String::new(),
            port: 0,
            cport: 0,
            flags: 0,
            pport: 0,
        };
        let good = encode(&h, &Body::Ping { gossip: vec![g], hostname: Some("h".into()) });
        for cut in [0, 7, 8, 100, HEADER_LEN, good.len() - 1] {
            assert!(decode(&good[..cut]).is_err(), "{cut}");
        }
        let mut bad = good.clone();
        bad[14..16].copy_from_slice(&9u16.to_be_bytes()); // count beyond the data
        assert!(decode(&bad).is_err());
        let mut bad = good.clone();
        bad[8..10].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(decode(&bad), Err(BusError::Version(2)));
        let mut bad = good.clone();
        let ext = HEADER_LEN + GOSSIP_LEN;
        bad[ext..ext + 4].copy_from_slice(&12u32.to_be_bytes());
        assert_eq!(decode(&bad), Err(BusError::Padding(12)));
        let mut bad = good.clone();
        bad[ext..ext + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&bad).is_err());
        let mut publish = encode(&h, &Body::Publish { channel: b"c".to_vec(), message: b"m".to_vec() });
        publish[HEADER_LEN..HEADER_LEN + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(decode(&publish).is_err());
    }
}
