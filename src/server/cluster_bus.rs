//! The cluster bus's sockets: the listener on the cluster port, one connection per link,
//! served by the event loop itself. Whole messages go to the cluster's protocol logic
//! (crate::cluster::gossip), and what it asks for ([`BusOut`]: connect, send, close,
//! deliver a PUBLISH, drop the keys of lost slots) is carried out here.
//!
//! A peer's input is bounded: a message must announce a length between the header's and
//! twice `proto-max-bulk-len`, and start with the bus signature, or the link is closed.

use std::collections::HashMap;
use std::io::{self, Read};

use mio::net::TcpStream;
use mio::{Interest, Token};
use tracing::{debug, info};

use super::ServerState;
use crate::cluster::{BusOut, LinkId, Settings, bus};

/// Tokens of bus links: above client ids, below the metrics connections'.
pub const TOKEN_BASE: usize = 1 << 61;

#[derive(Default)]
pub struct BusConns {
    conns: HashMap<LinkId, BusConn>,
}

struct BusConn {
    stream: TcpStream,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    /// An outbound connection whose connect has not completed.
    connecting: bool,
    peer_ip: String,
    local_ip: String,
}

impl BusConns {
    pub fn owns(token: Token) -> bool {
        token.0 >= TOKEN_BASE && token.0 < TOKEN_BASE * 2
    }

    /// Bytes queued on every link (INFO's mem_cluster_links).
    pub fn buffered(&self) -> usize {
        self.conns.values().map(|c| c.rbuf.capacity() + c.wbuf.capacity()).sum()
    }

    /// (send buffer allocated, used) of a link, for CLUSTER LINKS.
    pub fn send_buffer(&self, link: LinkId) -> (usize, usize) {
        self.conns.get(&link).map_or((0, 0), |c| (c.wbuf.capacity(), c.wbuf.len()))
    }
}

pub fn settings(st: &ServerState) -> Settings {
    Settings {
        node_timeout: st.config.int("cluster-node-timeout").max(0) as u64,
        full_coverage: st.config.bool("cluster-require-full-coverage"),
        replica_migration: st.config.bool("cluster-allow-replica-migration"),
        no_failover: st.config.bool("cluster-replica-no-failover"),
        validity_factor: st.config.int("cluster-replica-validity-factor").max(0) as u64,
        repl_ping_ms: (st.config.int("repl-ping-replica-period").max(0) as u64).saturating_mul(1000),
        migration_barrier: st.config.int("cluster-migration-barrier").max(0) as usize,
    }
}

fn ip_of(addr: io::Result<std::net::SocketAddr>) -> String {
    addr.map(|a| a.ip().to_string()).unwrap_or_default()
}

/// A connection from another node's bus.
pub fn adopt(st: &mut ServerState, mut stream: TcpStream) {
    let now = st.now_ms;
    let Some(c) = st.cluster.as_deref_mut() else { return };
    let link = c.accept_link(now);
    let Some(net) = st.net.as_deref_mut() else { return };
    let _ = stream.set_nodelay(true);
    if net.poll.registry().register(&mut stream, Token(TOKEN_BASE + link % TOKEN_BASE), Interest::READABLE).is_err() {
        c.link_closed(link);
        return;
    }
    debug!("Accepting cluster node connection from {}", ip_of(stream.peer_addr()));
    let (peer_ip, local_ip) = (ip_of(stream.peer_addr()), ip_of(stream.local_addr()));
    net.bus
        .conns
        .insert(link, BusConn { stream, rbuf: Vec::new(), wbuf: Vec::new(), connecting: false, peer_ip, local_ip });
}

/// Readiness on a link: complete a connect, write what is queued, read whole messages.
pub fn on_event(st: &mut ServerState, token: Token, writable: bool) {
    let link = token.0 - TOKEN_BASE;
    let max = (st.config.int("proto-max-bulk-len").max(0) as usize).saturating_mul(2) + bus::HEADER_LEN;
    let mut messages = Vec::new();
    let mut gone = false;
    {
        let Some(net) = st.net.as_deref_mut() else { return };
        let Some(conn) = net.bus.conns.get_mut(&link) else { return };
        if conn.connecting && writable {
            match conn.stream.take_error() {
                Ok(None) if conn.stream.peer_addr().is_ok() => {
                    conn.connecting = false;
                    conn.local_ip = ip_of(conn.stream.local_addr());
                }
                _ => gone = true,
            }
        }
        if !gone && !conn.connecting {
            gone = write_out(conn) || read_in(conn, max, &mut messages);
            let interest =
                if conn.wbuf.is_empty() { Interest::READABLE } else { Interest::READABLE | Interest::WRITABLE };
            let _ = net.poll.registry().reregister(&mut conn.stream, token, interest);
        }
    }
    let (peer_ip, local_ip) = match st.net.as_deref().and_then(|n| n.bus.conns.get(&link)) {
        Some(c) => (c.peer_ip.clone(), c.local_ip.clone()),
        None => Default::default(),
    };
    let s = settings(st);
    let now = st.now_ms;
    let offset = bus_offset(st);
    if let Some(c) = st.cluster.as_deref_mut() {
        // Headers carry the offset as of now (a paused master's must be final).
        c.repl_offset = offset;
        for m in messages {
            c.receive(link, &m, &peer_ip, &local_ip, now, &s);
        }
    }
    if gone {
        close(st, link);
        if let Some(c) = st.cluster.as_deref_mut() {
            c.link_closed(link);
        }
    }
    carry_out(st);
}

/// Writes what the socket takes; true when the peer is gone.
fn write_out(conn: &mut BusConn) -> bool {
    let gone = super::socket::write_pending(&mut conn.stream, &mut conn.wbuf).is_err();
    if conn.wbuf.is_empty() && conn.wbuf.capacity() > 1 << 20 {
        conn.wbuf = Vec::new();
    }
    gone
}

/// Reads to WouldBlock, cutting whole messages off the buffer; true when the peer is gone
/// or sent something that is not a bus message.
fn read_in(conn: &mut BusConn, max: usize, messages: &mut Vec<Vec<u8>>) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match conn.stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => conn.rbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return true,
        }
        while let Some(len) = bus::announced_len(&conn.rbuf) {
            if &conn.rbuf[..4] != bus::SIG || len < bus::HEADER_LEN || len > max {
                info!("Bad message length or signature received from Cluster bus.");
                return true;
            }
            if conn.rbuf.len() < len {
                break;
            }
            let rest = conn.rbuf.split_off(len);
            messages.push(std::mem::replace(&mut conn.rbuf, rest));
        }
    }
    false
}

fn close(st: &mut ServerState, link: LinkId) {
    let Some(net) = st.net.as_deref_mut() else { return };
    if let Some(mut conn) = net.bus.conns.remove(&link) {
        let _ = net.poll.registry().deregister(&mut conn.stream);
    }
}

/// Opens an outbound link (non-blocking: the connect completes on a writable event).
fn connect(st: &mut ServerState, link: LinkId, ip: &str, cport: u16) -> bool {
    let Ok(ip_addr) = ip.parse::<std::net::IpAddr>() else { return false };
    let Ok(mut stream) = TcpStream::connect(std::net::SocketAddr::new(ip_addr, cport)) else { return false };
    let _ = stream.set_nodelay(true);
    let Some(net) = st.net.as_deref_mut() else { return false };
    let token = Token(TOKEN_BASE + link % TOKEN_BASE);
    if net.poll.registry().register(&mut stream, token, Interest::READABLE | Interest::WRITABLE).is_err() {
        return false;
    }
    net.bus.conns.insert(
        link,
        BusConn {
            stream,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            connecting: true,
            peer_ip: ip.to_string(),
            local_ip: String::new(),
        },
    );
    true
}

/// Carries out what the cluster asked for, until it asks nothing more.
pub fn carry_out(st: &mut ServerState) {
    for _ in 0..8 {
        let Some(c) = st.cluster.as_deref_mut() else { return };
        if !c.has_out() {
            break;
        }
        for action in c.take_out() {
            match action {
                BusOut::Connect { link, ip, cport } => {
                    if !connect(st, link, &ip, cport)
                        && let Some(c) = st.cluster.as_deref_mut()
                    {
                        debug!("Unable to connect to Cluster Node [{ip}]:{cport}");
                        c.link_closed(link);
                    }
                }
                BusOut::Send { link, msg } => send(st, link, &msg),
                BusOut::Close { link } => close(st, link),
                BusOut::Deliver { shard, channel, message } => {
                    let mut nobody = super::Session::new(0, String::new(), String::new(), -1, st.now_ms);
                    st.publish(&mut nobody, &channel, &message, shard);
                }
                BusOut::DropSlots(slots) => drop_slots(st, &slots),
                BusOut::DropChannels(slots) => st.drop_shard_channels(&slots),
                BusOut::Replicate { ip, port } => {
                    let same = st.master.as_deref().is_some_and(|m| m.host == ip && m.port == port);
                    if !same {
                        st.replicate_from(ip, port);
                    }
                }
                BusOut::PauseWrites(until) => {
                    st.pause = Some((super::state::PauseKind::Write, until));
                    for db in st.dbs.iter_mut() {
                        db.set_expire_paused(true);
                    }
                }
                BusOut::Unpause => {
                    if st.pause.is_some() {
                        st.end_pause();
                    }
                }
                BusOut::Promoted => {
                    if st.master.is_some() {
                        st.stop_replicating();
                        info!("MASTER MODE enabled (cluster failover)");
                    }
                }
            }
        }
    }
    let now = st.now_ms;
    let s = settings(st);
    if let Some(c) = st.cluster.as_deref_mut() {
        c.before_sleep(now, &s);
    }
}

fn send(st: &mut ServerState, link: LinkId, msg: &[u8]) {
    let Some(net) = st.net.as_deref_mut() else { return };
    let Some(conn) = net.bus.conns.get_mut(&link) else { return };
    conn.wbuf.extend_from_slice(msg);
    if conn.connecting {
        return;
    }
    let gone = write_out(conn);
    if !gone && !conn.wbuf.is_empty() {
        let token = Token(TOKEN_BASE + link % TOKEN_BASE);
        let _ = net.poll.registry().reregister(&mut conn.stream, token, Interest::READABLE | Interest::WRITABLE);
    }
    if gone {
        close(st, link);
        if let Some(c) = st.cluster.as_deref_mut() {
            c.link_closed(link);
        }
    }
}

/// Deletes the keys of slots a newer configuration gave to another node (Redis's
/// delKeysInSlot for dirty slots).
fn drop_slots(st: &mut ServerState, slots: &[u16]) {
    let mut doomed = Vec::new();
    for &slot in slots {
        let db = &st.dbs[0];
        doomed.extend(db.slot_keys(slot as usize, usize::MAX).into_iter().map(<[u8]>::to_vec));
    }
    if !doomed.is_empty() {
        info!("Deleting {} keys of slots this node no longer serves", doomed.len());
    }
    for k in doomed {
        st.dbs[0].remove(&k);
    }
}

/// Frees the links whose unsent messages outgrew `cluster-link-sendbuf-limit` (a peer that
/// stopped reading must not grow this node's memory without bound); the cron reconnects
/// those this node opened (Redis's clusterNodeCronFreeLinkOnBufferLimitReached).
fn free_links_over_limit(st: &mut ServerState) {
    let limit = st.config.int("cluster-link-sendbuf-limit");
    if limit <= 0 {
        return;
    }
    let Some(net) = st.net.as_deref() else { return };
    let over: Vec<LinkId> =
        net.bus.conns.iter().filter(|(_, c)| c.wbuf.len() as i64 > limit).map(|(&link, _)| link).collect();
    for link in over {
        close(st, link);
        if let Some(c) = st.cluster.as_deref_mut() {
            c.link_closed(link);
            c.links_over_limit += 1;
        }
    }
}

/// The bus's periodic work (Redis's clusterCron), from the server's cron.
pub fn cron(st: &mut ServerState) {
    free_links_over_limit(st);
    let s = settings(st);
    let now = st.now_ms;
    let announced_ip = st.config.str("cluster-announce-ip").to_string();
    let hostname = st.config.str("cluster-announce-hostname").to_string();
    let port = match st.config.int("cluster-announce-port") {
        0 => st.bound_port,
        p => p as u16,
    };
    let offset = bus_offset(st);
    let cport = st.config.int("cluster-announce-bus-port") as u16;
    // Redis's data age: since the last interaction while the link is up, else since it
    // went down (a replica that never synced has no recent data at all).
    let data_age = st.master.as_deref().map_or(0, |m| {
        if m.link_up() { now.saturating_sub(m.last_io_ms) } else { now.saturating_sub(m.down_since_ms) }
    });
    let Some(c) = st.cluster.as_deref_mut() else { return };
    c.configure(&announced_ip, &hostname, port, cport);
    c.master_data_age = data_age;
    c.repl_offset = offset;
    c.cron(now, &s);
    c.update_state(now, s.node_timeout, s.full_coverage);
    carry_out(st);
    redirect_blocked(st);
}

/// Clients blocked on keys (lists, sorted sets, streams) whose slot this node no longer
/// serves, or while the cluster is down, get the error a new command would (Redis's
/// clusterRedirectBlockedClientIfNeeded, from clientsCron).
fn redirect_blocked(st: &mut ServerState) {
    let Some(c) = st.cluster.as_deref() else { return };
    let mut moved = Vec::new();
    for (&id, s) in st.clients.iter() {
        let Some(b) = s.block.as_ref().filter(|b| b.wait_offset.is_none()) else { continue };
        let Some(key) = b.keys.first() else { continue };
        let slot = crate::cluster::key_slot(key);
        // Blocking commands that write (BLMOVE...) are not reads a replica may serve.
        let read = s.readonly && b.argv.first().is_some_and(|n| n.eq_ignore_ascii_case(b"xread"));
        if let Some(r) = c.blocked_redirect(slot, read) {
            moved.push((id, r.message()));
        }
    }
    for (id, msg) in moved {
        super::blocking::unblock_with(st, id, Some(crate::protocol::Reply::Error(msg)));
    }
}

/// The replication offset the bus announces. A replica loading its master's image has none
/// yet (Redis's replicationGetSlaveOffset is 0 then: no master client, no cached one), and
/// its master's CLUSTER SHARDS shows it `loading` for that.
fn bus_offset(st: &ServerState) -> u64 {
    if st.loading.is_some() && st.master.is_some() { 0 } else { st.repl.offset }
}
