//! The replica side of replication: REPLICAOF connects to a master (Redis 7.0 or Ember),
//! does the handshake Redis's replicas do, loads the RDB image of a full resynchronisation
//! and then applies the master's stream of writes, acknowledging its offset.
//!
//! The link is one non-blocking socket on the event loop, driven by [`on_event`] and
//! [`cron`]. Handshake: PING, AUTH (masterauth), REPLCONF listening-port, REPLCONF capa eof
//! capa psync2, PSYNC <replid> <offset + 1>, pipelined and answered in order. The replid and offset
//! are this server's own (Redis's "cached master using myself"): a replica whose link dropped,
//! a master turned replica of its promoted replica, or a replica of a promoted fellow replica
//! continues with `+CONTINUE`; anything else gets `+FULLRESYNC` and an image, counted or
//! EOF-marked (see `incoming_image`), loaded from a file or from memory as
//! `repl-diskless-load` says.
//!
//! The master's stream is passed on to this server's own replicas and backlog byte for byte,
//! so they share the master's replication ID and offsets (chained replication, and partial
//! resynchronisation after a failover).
//!
//! While a replica: writes from clients are refused (replica-read-only), keys are not expired
//! by the replica (expired keys read as missing until the master's DEL arrives), and the
//! master's commands run as a client whose replies nobody reads.

use std::io::{Read, Write};

use bytes::{Buf, Bytes, BytesMut};
use mio::{Interest, Token};
use tracing::{info, warn};

use crate::protocol::{Decoder, Limits, encode_command};
use crate::server::incoming_image::{IncomingImage, MARK_LEN};
use crate::server::socket::Stream;
use crate::server::tls::TlsStream;
use crate::server::{ServerState, Session};

/// The master link's token on the poller (clients use their ids; listeners the top 16).
pub const TOKEN: Token = Token(usize::MAX - 64);

/// The largest RDB image a master may announce (it is held in memory while loading).
pub(super) const MAX_IMAGE: usize = 64 << 30;
/// The longest handshake line a master may send before its CRLF.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Not connected; the cron tries again.
    Connect,
    /// The handshake's replies are awaited (`replies` of them), PSYNC is sent after them
    /// (a master refuses PSYNC while it has replies to send).
    Handshake { replies: usize },
    /// PSYNC was sent; `+FULLRESYNC` is awaited.
    AwaitPsync,
    /// `+FULLRESYNC` came; the image's `$<len>` is awaited.
    AwaitImage,
    /// The image's bytes are arriving (into `MasterLink::image`).
    Transfer,
    /// The stream of writes is applied.
    Connected,
}

pub struct MasterLink {
    pub host: String,
    pub port: u16,
    pub state: LinkState,
    conn: Option<Stream>,
    inbuf: BytesMut,
    out: Vec<u8>,
    image: Option<IncomingImage>,
    pub last_io_ms: u64,
    /// When the link last went down after serving (0: never served since this server
    /// became a replica): a cluster replica's data age counts from it (Redis's
    /// repl_down_since).
    pub down_since_ms: u64,
    next_attempt_ms: u64,
    last_ack_ms: u64,
    /// When a newline last told the master this replica is alive while loading.
    newline_ms: u64,
    decoder: Decoder,
    /// How many handshake replies were asked for (3, or 4 with AUTH).
    handshake_replies: usize,
    sess: Session,
    /// The full sync under way continues our own history (the master's replication id is
    /// ours: only the offset was out of its backlog). Redis loads such an image
    /// asynchronously under `repl-diskless-load swapdb`.
    pub same_history: bool,
    /// The history the image under way belongs to (`+FULLRESYNC <replid> <offset>`): ours
    /// once the image has loaded, never before (a sync that fails keeps the old one).
    pending_history: Option<(String, u64)>,
    /// The image under way has started replacing the data set (not under swapdb): a sync
    /// that fails now leaves no data the old history describes.
    pub(super) replacing_data: bool,
}

impl MasterLink {
    pub fn new(host: String, port: u16, now_ms: u64) -> MasterLink {
        let mut sess = Session::new(0, "master".into(), String::new(), -1, now_ms);
        sess.authenticated = true;
        sess.from_master = true;
        MasterLink {
            host,
            port,
            state: LinkState::Connect,
            conn: None,
            inbuf: BytesMut::new(),
            out: Vec::new(),
            image: None,
            last_io_ms: now_ms,
            down_since_ms: 0,
            next_attempt_ms: 0,
            last_ack_ms: 0,
            newline_ms: 0,
            decoder: Decoder::new(),
            handshake_replies: 0,
            same_history: false,
            pending_history: None,
            replacing_data: false,
            sess,
        }
    }

    pub(super) fn take_socket(&mut self) -> Option<(Stream, BytesMut)> {
        let conn = self.conn.take()?;
        Some((conn, std::mem::take(&mut self.inbuf)))
    }

    pub(super) fn give_socket(&mut self, conn: Stream, inbuf: BytesMut) {
        self.conn = Some(conn);
        self.inbuf = inbuf;
    }

    pub fn link_up(&self) -> bool {
        self.state == LinkState::Connected
    }

    /// The database the master's stream has selected.
    pub fn stream_db(&self) -> usize {
        self.sess.db
    }

    /// While an image arrives: its announced length (None: EOF-marked) and the bytes read.
    pub fn transfer_progress(&self) -> Option<(Option<usize>, usize)> {
        self.image.as_ref().map(|i| (i.total(), i.received()))
    }

    pub fn syncing(&self) -> bool {
        matches!(self.state, LinkState::AwaitImage | LinkState::Transfer)
    }
}

impl ServerState {
    /// A replica whose link is down, told not to serve stale data (replica-serve-stale-data
    /// no): it refuses what is not flagged STALE.
    pub fn serving_stale(&self) -> bool {
        self.master.as_deref().is_some_and(|m| !m.link_up()) && !self.config.bool("replica-serve-stale-data")
    }

    /// REPLICAOF host port: drops any link and starts one to the new master.
    pub fn replicate_from(&mut self, host: String, port: u16) {
        self.drop_master_link();
        // Clients blocked on this server's data would be served by the master's writes (and
        // pop what the master keeps): they get an error and are disconnected, as in Redis.
        let mut blocked: Vec<_> = self.clients.iter().filter(|(_, s)| s.block.is_some()).map(|(id, _)| *id).collect();
        blocked.sort_unstable();
        for id in blocked {
            let e = "UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)";
            if super::blocking::unblock_with(self, id, Some(crate::protocol::Reply::Error(e.into())))
                && let Some(s) = self.clients.get_mut(&id)
            {
                s.close_after_reply = true;
            }
        }
        // Our replicas stay: if the new master continues our history they go on with it; a
        // new history (a new replid, or a full sync's image loading) disconnects them then,
        // as Redis 7.0 does.
        self.drain_repl_feed();
        info!("Connecting to MASTER {host}:{port}");
        let _ = self.config.set("replicaof", &format!("{host} {port}"), true);
        // The data is as old as it was under the previous master (Redis keeps
        // repl_down_since across a change of master; a link that was up went down now).
        let down_since = self.master.as_deref().map_or(0, |l| l.down_since_ms);
        // The stream's database too: a new master that continues our history goes on
        // without a SELECT (Redis keeps the old master client, db and all, as its cache).
        let stream_db = self.master.as_deref().map_or(0, |l| l.sess.db);
        let mut link = MasterLink::new(host, port, self.now_ms);
        link.down_since_ms = down_since;
        link.sess.db = stream_db;
        self.master = Some(Box::new(link));
        self.apply_role_oom_score();
        crate::logging::set_replica_role(true);
        self.set_replica_expiry(true);
        self.refresh_track_modified();
    }

    /// The role changed: so does the OOM score's class.
    fn apply_role_oom_score(&mut self) {
        let mode = self.config.str("oom-score-adj").to_string();
        if mode != "no" {
            let values = self.config.str("oom-score-adj-values").to_string();
            let _ = self.apply_oom_score(&mode, &values);
        }
    }

    /// REPLICAOF NO ONE: the link goes, the data stays, and this server is a master again.
    pub fn stop_replicating(&mut self) {
        if self.master.is_some() {
            self.drop_master_link();
            self.master = None;
            self.apply_role_oom_score();
            crate::logging::set_replica_role(false);
            self.set_replica_expiry(false);
            // The history goes on under a new ID; the replicas of the old master (ours too)
            // continue from it with the old one.
            self.drain_repl_feed();
            self.repl.shift_history(super::repl::new_replid());
            self.disconnect_replicas();
            // The backlog stays as it is: one that never synced has none (Redis's
            // replicationUnsetMaster creates none; the first replica will).
            self.refresh_track_modified();
            // Our own stream starts with a SELECT: the replicas' database is the old
            // master's, which we only passed on.
            self.repl.feed.forget_db();
            let _ = self.config.set("replicaof", "", true);
        }
    }

    /// At start-up, after the RDB file loaded: the replication history it was saved in goes
    /// on. A replica asks its master to continue from the file's offset; a master keeps the
    /// file's history as its second ID, so its replicas continue (Redis's loadDataFromDisk).
    pub fn restore_replication(&mut self, info: crate::persistence::rdb::ReplInfo) {
        if let Some(link) = self.master.as_deref_mut() {
            // The file names a database that may not exist here.
            link.sess.db = if info.stream_db < self.dbs.len() { info.stream_db } else { 0 };
            self.repl.replid = info.id;
            self.repl.offset = info.offset;
        } else {
            self.repl.offset = info.offset;
            self.repl.replid2 = info.id;
            self.repl.second_offset = Some(info.offset + 1);
            let size = self.config.int("repl-backlog-size").max(1) as usize;
            self.repl.backlog = Some(super::backlog::Backlog::new(size, info.offset + 1));
            self.repl.mark_no_replicas(self.now_ms);
            self.refresh_track_modified();
            // Keys that expired while the server was down go to the replicas as DEL, after
            // the file's offset (Redis's RDBFLAGS_FEED_REPL).
            for (db, key) in self.load_expired.take().unwrap_or_default() {
                self.propagate_now(db, &[b"DEL", &key], super::repl::Target::ReplicasOnly);
            }
            self.drain_repl_feed();
        }
    }

    /// A replica leaves expiry to its master: expired keys read as missing but stay.
    pub fn set_replica_expiry(&mut self, replica: bool) {
        for db in &mut self.dbs {
            db.set_expire_paused(replica);
        }
    }

    fn drop_master_link(&mut self) {
        let Some(link) = self.master.as_deref_mut() else { return };
        if let Some(mut c) = link.conn.take()
            && let Some(net) = self.net.as_deref_mut()
        {
            let _ = net.poll.registry().deregister(&mut c);
        }
        if link.state == LinkState::Connected {
            link.down_since_ms = self.now_ms;
        }
        link.state = LinkState::Connect;
        link.inbuf.clear();
        link.out.clear();
        link.image = None;
        link.decoder = Decoder::new();
        link.sess.multi = None;
    }

    /// The master link as a client (CLIENT KILL): its peer address while connected.
    pub fn master_link_addr(&self) -> Option<String> {
        let link = self.master.as_deref()?;
        link.conn.as_ref()?.peer_addr()
    }

    /// CLIENT KILL of the master link: it is dropped and reconnects (and continues).
    pub fn kill_master_link(&mut self) {
        self.link_failed("Connection with master killed (CLIENT KILL).");
    }

    fn link_failed(&mut self, why: &str) {
        warn!("Master link: {why}");
        // A full sync that failed after it began replacing the data: what is left is not
        // the old history's data (nor the new one's), so it goes, and so does the history
        // (the next sync is a full one, as with Redis, which empties the data).
        if let Some(link) = self.master.as_deref_mut()
            && link.pending_history.take().is_some()
            && std::mem::take(&mut link.replacing_data)
        {
            for db in &mut self.dbs {
                db.flush();
            }
            self.repl.new_history();
        }
        if self.failing_over() {
            self.abort_failover(why);
            return;
        }
        self.drop_master_link();
        if let Some(l) = self.master.as_deref_mut() {
            l.next_attempt_ms = self.now_ms + 1000;
        }
    }
}

/// The `replicaof` directive's value: host and port, or None when empty. Errors are
/// Redis's words for a bad directive.
pub fn parse_replicaof(v: &str) -> Result<Option<(String, u16)>, String> {
    let words: Vec<&str> = v.split_whitespace().collect();
    match words.as_slice() {
        [] => Ok(None),
        [host, port] => match port.parse::<u16>() {
            Ok(p) => Ok(Some((host.to_string(), p))),
            Err(_) => Err("Invalid master port".into()),
        },
        _ => Err("wrong number of arguments".into()),
    }
}

/// Once per cron: connect when needed, acknowledge the offset every second.
pub fn cron(st: &mut ServerState) {
    let now = st.now_ms;
    if st.master.is_none() {
        return;
    }
    // Keys written on a writable replica expire here: no master will send their DEL.
    for db in st.dbs.iter_mut() {
        db.set_now(now);
        db.expire_local_keys();
    }
    let Some(link) = st.master.as_deref_mut() else { return };
    match link.state {
        LinkState::Connect if now >= link.next_attempt_ms => connect(st),
        LinkState::Connected if now.saturating_sub(link.last_ack_ms) >= 1000 => {
            link.last_ack_ms = now;
            let off = st.repl.offset.to_string();
            encode_command(&mut link.out, &[b"REPLCONF", b"ACK", off.as_bytes()]);
            write_out(st);
        }
        _ => {}
    }
    let timeout_ms = st.config.int("repl-timeout").max(1) as u64 * 1000;
    if let Some(link) = st.master.as_deref()
        && link.conn.is_some()
        && now.saturating_sub(link.last_io_ms) > timeout_ms
    {
        let why = match st.master.as_deref().map(|l| l.state) {
            Some(LinkState::Connected) => "MASTER timeout: no data nor PING received...",
            Some(LinkState::AwaitImage | LinkState::Transfer) => {
                "Timeout receiving bulk data from MASTER... If the problem persists try to set the 'repl-timeout' parameter in redis.conf to a larger value."
            }
            _ => "Timeout connecting to the MASTER...",
        };
        st.link_failed(why);
    }
}

fn connect(st: &mut ServerState) {
    let Some(link) = st.master.as_deref_mut() else { return };
    link.next_attempt_ms = st.now_ms + 1000;
    let addr = format!("{}:{}", link.host, link.port);
    let resolved = std::net::ToSocketAddrs::to_socket_addrs(&addr).ok().and_then(|mut a| a.next());
    let Some(sa) = resolved else {
        warn!("Unable to connect to MASTER: cannot resolve {addr}");
        return;
    };
    // A short blocking connect: masters are near, and the loop must not wait long.
    let source = st.config.str("bind-source-addr");
    let stream = match super::socket::connect(&sa, std::time::Duration::from_millis(500), source) {
        Ok(s) => s,
        Err(e) => {
            warn!("Error condition on socket for SYNC: {e}");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    let tcp = mio::net::TcpStream::from_std(stream);
    // tls-replication: the link is a TLS client of the master's tls-port.
    let mut conn = if st.config.bool("tls-replication") {
        let Some(client) = st.tls.as_ref().and_then(|t| t.client.as_ref()) else {
            warn!("Unable to connect to MASTER: TLS is not configured");
            return;
        };
        match TlsStream::client(tcp, client, &link.host) {
            Ok(t) => Stream::Tls(Box::new(t)),
            Err(e) => {
                warn!("Unable to connect to MASTER: {e}");
                return;
            }
        }
    } else {
        Stream::Tcp(tcp)
    };
    let Some(net) = st.net.as_deref_mut() else { return };
    if net.poll.registry().register(&mut conn, TOKEN, Interest::READABLE | Interest::WRITABLE).is_err() {
        return;
    }
    info!("MASTER <-> REPLICA sync started");
    // The port our replicas would reach us on, as Redis announces it.
    let tls_port = st.config.int("tls-port");
    let port = if st.config.int("replica-announce-port") != 0 {
        st.config.int("replica-announce-port").to_string()
    } else if (st.config.bool("tls-replication") && tls_port != 0) || st.bound_port == 0 {
        tls_port.to_string()
    } else {
        st.bound_port.to_string()
    };
    let auth_user = st.config.str("masteruser").to_string();
    let auth_pass = st.config.str("masterauth").to_string();
    let Some(link) = st.master.as_deref_mut() else { return };
    link.conn = Some(conn);
    link.last_io_ms = st.now_ms;
    let mut replies = 3;
    encode_command(&mut link.out, &[b"PING"]);
    if !auth_pass.is_empty() {
        if auth_user.is_empty() {
            encode_command(&mut link.out, &[b"AUTH", auth_pass.as_bytes()]);
        } else {
            encode_command(&mut link.out, &[b"AUTH", auth_user.as_bytes(), auth_pass.as_bytes()]);
        }
        replies += 1;
    }
    encode_command(&mut link.out, &[b"REPLCONF", b"listening-port", port.as_bytes()]);
    encode_command(&mut link.out, &[b"REPLCONF", b"capa", b"eof", b"capa", b"psync2"]);
    link.state = LinkState::Handshake { replies };
    link.handshake_replies = replies;
    write_out(st);
}

/// While a full sync's image loads, a newline to the master once a second: no ACK can come
/// before the load ends, and the master takes the newline as a sign of life instead of
/// timing the replica out (Redis's replicationSendNewlineToMaster).
pub fn ping_master_while_loading(st: &mut ServerState) {
    let now = st.now_ms;
    let Some(link) = st.master.as_deref_mut() else { return };
    if link.state != LinkState::Transfer || !link.out.is_empty() || now.saturating_sub(link.newline_ms) < 1000 {
        return;
    }
    link.newline_ms = now;
    if let Some(conn) = link.conn.as_mut() {
        // A failure shows on the link once the load is over.
        let _ = conn.write(b"\n").and_then(|_| conn.flush());
    }
}

fn write_out(st: &mut ServerState) {
    let Some(link) = st.master.as_deref_mut() else { return };
    let Some(conn) = link.conn.as_mut() else { return };
    while !link.out.is_empty() {
        match conn.write(&link.out) {
            Ok(0) => break,
            Ok(n) => {
                link.out.drain(..n);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(e) => {
                let why = format!("write error: {e}");
                st.link_failed(&why);
                return;
            }
        }
    }
    // TLS records made from what was written wait for room in the socket.
    if let Err(e) = conn.flush()
        && e.kind() != std::io::ErrorKind::WouldBlock
    {
        let why = format!("write error: {e}");
        st.link_failed(&why);
    }
}

/// Readiness on the master link.
pub fn on_event(st: &mut ServerState) {
    write_out(st);
    let mut closed = false;
    if let Some(link) = st.master.as_deref_mut()
        && let Some(conn) = link.conn.as_mut()
    {
        let mut chunk = [0u8; 64 * 1024];
        loop {
            match conn.read(&mut chunk) {
                Ok(0) => {
                    closed = true;
                    break;
                }
                Ok(n) => {
                    link.inbuf.extend_from_slice(&chunk[..n]);
                    st.stats.net_repl_input_bytes += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        link.last_io_ms = st.now_ms;
    }
    advance(st);
    if closed {
        st.link_failed("Connection with master lost.");
    }
}

/// A handshake reply still without its CRLF past [`MAX_LINE`]: not a master.
fn line_too_long(buf: &BytesMut) -> bool {
    buf.len() > MAX_LINE && !buf[..MAX_LINE].windows(2).any(|w| w == b"\r\n")
}

/// Takes a `\r\n`-terminated line from the front of `buf`.
fn take_line(buf: &mut BytesMut) -> Option<Vec<u8>> {
    let end = buf.windows(2).position(|w| w == b"\r\n")?;
    let line = buf[..end].to_vec();
    buf.advance(end + 2);
    Some(line)
}

/// Moves the link through its states as far as the buffered bytes allow.
fn advance(st: &mut ServerState) {
    loop {
        let Some(link) = st.master.as_deref_mut() else { return };
        let in_handshake =
            matches!(link.state, LinkState::Handshake { .. } | LinkState::AwaitPsync | LinkState::AwaitImage);
        if in_handshake && line_too_long(&link.inbuf) {
            st.link_failed("the master sent a reply line without end");
            return;
        }
        match link.state {
            LinkState::Connect => return,
            LinkState::Handshake { replies } => {
                let Some(line) = take_line(&mut link.inbuf) else { return };
                let text = String::from_utf8_lossy(&line).into_owned();
                // Replies in order: PING, AUTH (when masterauth is set), the REPLCONFs.
                let index = link.handshake_replies - replies;
                let auth_sent = link.handshake_replies == 4;
                if text.starts_with('-') {
                    // A master wanting a password answers PING so; AUTH follows.
                    let ping_ok = ["-NOAUTH", "-NOPERM", "-ERR operation not permitted"];
                    if index == 0 && ping_ok.iter().any(|p| text.starts_with(p)) {
                    } else if index == 1 && auth_sent {
                        let why = format!("Unable to AUTH to MASTER: {text}");
                        st.link_failed(&why);
                        return;
                    } else if index == 0 {
                        let why = format!("Error reply to PING from master: '{text}'");
                        st.link_failed(&why);
                        return;
                    } else if !text.starts_with("-ERR Unrecognized REPLCONF") {
                        let why = format!("the master refused the handshake: {text}");
                        st.link_failed(&why);
                        return;
                    }
                }
                let Some(link) = st.master.as_deref_mut() else { return };
                if replies > 1 {
                    link.state = LinkState::Handshake { replies: replies - 1 };
                    continue;
                }
                let from = (st.repl.offset + 1).to_string();
                let mut psync: Vec<&[u8]> = vec![b"PSYNC", st.repl.replid.as_bytes(), from.as_bytes()];
                // A master handing its role over asks the target to take it.
                if st.failover.as_ref().is_some_and(|f| f.phase == super::failover::Phase::InProgress) {
                    psync.push(b"FAILOVER");
                }
                encode_command(&mut link.out, &psync);
                link.state = LinkState::AwaitPsync;
                write_out(st);
            }
            LinkState::AwaitPsync => {
                // Newlines are keep-alives a master sends while it prepares.
                while link.inbuf.first() == Some(&b'\n') {
                    link.inbuf.advance(1);
                }
                let Some(line) = take_line(&mut link.inbuf) else { return };
                let text = String::from_utf8_lossy(&line).into_owned();
                if let Some(rest) = text.strip_prefix("+CONTINUE") {
                    st.finish_failover();
                    continue_stream(st, rest.trim());
                    continue;
                }
                let Some(rest) = text.strip_prefix("+FULLRESYNC ") else {
                    if st.failing_over() {
                        st.abort_failover("Failover target rejected psync request");
                        return;
                    }
                    let why = format!("unexpected reply to PSYNC: {text}");
                    st.link_failed(&why);
                    return;
                };
                st.finish_failover();
                let mut parts = rest.split(' ');
                let replid = parts.next().unwrap_or("?").to_string();
                let offset = parts.next().and_then(|o| o.parse().ok()).unwrap_or(0);
                info!("Full resync from master: {replid}:{offset}");
                let same_history = st.repl.replid == replid;
                if let Some(link) = st.master.as_deref_mut() {
                    link.same_history = same_history;
                }
                let Some(link) = st.master.as_deref_mut() else { return };
                link.pending_history = Some((replid, offset));
                link.replacing_data = false;
                link.state = LinkState::AwaitImage;
            }
            LinkState::AwaitImage => {
                while link.inbuf.first() == Some(&b'\n') {
                    link.inbuf.advance(1);
                }
                let Some(line) = take_line(&mut link.inbuf) else { return };
                let (len, mark) = match line.strip_prefix(b"$EOF:") {
                    Some(mark) if mark.len() == MARK_LEN => (None, mark.to_vec()),
                    Some(_) => (Some(usize::MAX), Vec::new()),
                    None => {
                        let n =
                            line.strip_prefix(b"$").and_then(|l| std::str::from_utf8(l).ok()?.parse::<usize>().ok());
                        (Some(n.unwrap_or(usize::MAX)), Vec::new())
                    }
                };
                if len.is_some_and(|n| n > MAX_IMAGE) {
                    let why = format!("bad bulk length from master: {}", String::from_utf8_lossy(&line));
                    st.link_failed(&why);
                    return;
                }
                // Redis's repl-diskless-load: disabled receives into a file first.
                let to_disk = st.config.str("repl-diskless-load") == "disabled"
                    || (st.config.str("repl-diskless-load") == "on-empty-db" && st.dbs.iter().any(|d| !d.is_empty()));
                let what = match len {
                    Some(n) => format!("{n} bytes"),
                    None => "streamed RDB".to_string(),
                };
                let place = if to_disk { "disk" } else { "parser" };
                info!("MASTER <-> REPLICA sync: receiving {what} from master to {place}");
                if !to_disk {
                    // Parsed as it arrives (Redis's diskless load).
                    match super::sync_stream::load_from_master(st, len, &mark) {
                        Ok(true) => sync_finished(st, len.is_none()),
                        Ok(false) => {}
                        Err(why) => st.link_failed(&why),
                    }
                    return;
                }
                let name = format!("temp-{}.{}.rdb", super::state::unix_ms() / 1000, std::process::id());
                let temp = st.rdb_path().with_file_name(name);
                let Some(link) = st.master.as_deref_mut() else { return };
                match IncomingImage::new(len, &mark, temp, MAX_IMAGE) {
                    Ok(img) => {
                        link.image = Some(img);
                        link.state = LinkState::Transfer;
                    }
                    Err(e) => {
                        let why = format!("Opening the temp file needed for MASTER <-> REPLICA synchronization: {e}");
                        st.link_failed(&why);
                        return;
                    }
                }
            }
            LinkState::Transfer => {
                let Some(img) = link.image.as_mut() else { return };
                match img.take(&mut link.inbuf) {
                    Ok(false) => return,
                    Ok(true) => {}
                    Err(why) => {
                        st.link_failed(&why);
                        return;
                    }
                }
                let Some(img) = link.image.take() else { return };
                let eof = img.eof_marked();
                let loaded = match img.finish() {
                    Ok(temp) => {
                        info!("MASTER <-> REPLICA sync: Flushing old data");
                        info!("MASTER <-> REPLICA sync: Loading DB in memory");
                        let path = st.rdb_path();
                        if let Some(link) = st.master.as_deref_mut() {
                            link.replacing_data = true;
                        }
                        attach_to_new_master(st);
                        match std::fs::rename(&temp, &path) {
                            Ok(()) => {
                                st.load_rdb_file_serving(super::load::Reload::Replace, true).map_err(|e| e.to_string())
                            }
                            Err(e) => {
                                let _ = std::fs::remove_file(&temp);
                                Err(format!("Failed trying to rename the temp DB into {}: {e}", path.display()))
                            }
                        }
                    }
                    Err(e) => Err(e.to_string()),
                };
                if let Err(e) = loaded {
                    let why = format!("Failed trying to load the MASTER synchronization DB: {e}");
                    st.link_failed(&why);
                    return;
                }
                sync_finished(st, eof);
            }
            LinkState::Connected => {
                apply_stream(st);
                return;
            }
        }
    }
}

/// A full sync's image starts replacing the data set (Redis's replicationAttachToNewMaster):
/// our own replicas must start over with the new history, and our backlog no longer
/// describes our data. (Not before: a sync that fails before its image loads leaves them be.)
pub(super) fn attach_to_new_master(st: &mut ServerState) {
    st.drain_repl_feed();
    st.disconnect_replicas();
    st.repl.backlog = None;
}

/// After a full sync's image loaded: its history is ours, the stream of writes follows.
fn sync_finished(st: &mut ServerState, eof: bool) {
    info!("MASTER <-> REPLICA sync: Finished with success");
    // Under swapdb the data changed only now.
    attach_to_new_master(st);
    let link = st.master.as_deref_mut().filter(|l| l.state == LinkState::Transfer);
    if let Some((replid, offset)) = link.and_then(|l| l.pending_history.take()) {
        st.repl.replid = replid;
        st.repl.replid2 = super::repl::NO_REPLID.into();
        st.repl.second_offset = None;
        st.repl.offset = offset;
    }
    st.dirty += 1;
    st.ensure_backlog();
    // Still the link that brought the image (clients were served while it loaded).
    if let Some(link) = st.master.as_deref_mut().filter(|l| l.state == LinkState::Transfer) {
        link.state = LinkState::Connected;
        link.sess.db = 0;
        // After an EOF-marked image the master streams once it hears from us.
        if eof {
            link.last_ack_ms = st.now_ms;
            let off = st.repl.offset.to_string();
            encode_command(&mut link.out, &[b"REPLCONF", b"ACK", off.as_bytes()]);
            write_out(st);
        }
    }
}

/// What the master sends that a write pause lets through (Redis postpones the master's
/// client at its first command that may replicate).
const PAUSE_EXEMPT: &[&[u8]] = &[b"replconf", b"ping", b"select"];

/// The name of the multibulk command at the front of `buf`, if its header has arrived.
fn peek_name(buf: &[u8]) -> Option<&[u8]> {
    let rest = buf.strip_prefix(b"*")?;
    let rest = &rest[rest.windows(2).position(|w| w == b"\r\n")? + 2..];
    let rest = rest.strip_prefix(b"$")?;
    let eol = rest.windows(2).position(|w| w == b"\r\n")?;
    let len: usize = std::str::from_utf8(&rest[..eol]).ok()?.parse().ok()?;
    // The length is the master's word: checked, never trusted to add up.
    rest.get(eol + 2..(eol + 2).checked_add(len)?)
}

/// Bytes of the master's stream read but not yet applied (held by a pause).
pub fn unapplied(st: &ServerState) -> usize {
    st.master.as_deref().filter(|l| l.state == LinkState::Connected).map_or(0, |l| l.inbuf.len())
}

/// An empty link buffer with more room than this is released.
const INBUF_KEEP: usize = 64 * 1024;

/// Runs the master's commands as they complete, counting the bytes each took.
fn apply_stream(st: &mut ServerState) {
    // The master's arguments are bounded like any client's before they size a buffer.
    let limits = Limits { max_bulk_len: st.config.int("proto-max-bulk-len"), authenticated: true };
    loop {
        // A write pause (CLIENT PAUSE, failover) holds the master's writes too: they wait,
        // read but not applied (slave_read_repl_offset grows, slave_repl_offset does not).
        if st.pause.is_some_and(|(_, until)| until > st.now_ms)
            && let Some(link) = st.master.as_deref()
            && peek_name(&link.inbuf).is_some_and(|n| !PAUSE_EXEMPT.iter().any(|e| n.eq_ignore_ascii_case(e)))
        {
            return;
        }
        let Some(link) = st.master.as_deref_mut() else { return };
        let (argv, used): (Vec<Bytes>, usize) = match link.decoder.decode_next(&mut link.inbuf, limits) {
            Ok(true) => {
                let a = link.decoder.with_args(&link.inbuf, crate::protocol::owned);
                let used = link.decoder.request_len();
                link.decoder.finish(&mut link.inbuf);
                // A big command's room (its whole length, reserved by the decoder) is let go
                // once applied, as a client's read buffer is: a replica does not hold a 32 MB
                // value twice.
                if link.inbuf.is_empty() && link.inbuf.capacity() > INBUF_KEEP {
                    link.inbuf = BytesMut::new();
                }
                (a, used)
            }
            Ok(false) => return,
            Err(e) => {
                let why = format!("protocol error from master: {e}");
                st.link_failed(&why);
                return;
            }
        };
        // Our replicas and backlog get the stream as it came: the master's multibulk
        // encoding is the one encode_command makes.
        let mut frame = Vec::with_capacity(used);
        encode_command(&mut frame, &argv.iter().map(|a| &a[..]).collect::<Vec<_>>());
        if argv.is_empty() || frame.len() != used {
            frame = vec![b'\n'; used];
        }
        if argv.is_empty() {
            st.repl.push_raw(&frame);
            continue;
        }
        // REPLCONF GETACK: the offset before this command, as Redis answers it.
        if argv.len() >= 2 && argv[0].eq_ignore_ascii_case(b"replconf") && argv[1].eq_ignore_ascii_case(b"getack") {
            let off = st.repl.offset.to_string();
            encode_command(&mut link.out, &[b"REPLCONF", b"ACK", off.as_bytes()]);
            st.repl.push_raw(&frame);
            write_out(st);
            continue;
        }
        let mut sess = std::mem::replace(&mut link.sess, Session::new(0, String::new(), String::new(), -1, 0));
        st.update_time();
        sess.last_cmd = "<unknown>";
        if let crate::protocol::Reply::Error(e) = st.executor.execute(st, &mut sess, &crate::protocol::views(&argv)) {
            // The master's write failed here: the data sets may now differ (Redis logs it
            // the same way, and goes on).
            let e: String = e.chars().take(4096).collect();
            warn!(
                "== CRITICAL == This replica is sending an error to its master: '{e}' after processing the command '{}'",
                sess.last_cmd
            );
        }
        sess.block = None;
        st.repl.push_raw(&frame);
        // The master's writes wake this replica's blocked readers (XREAD on a replica).
        crate::server::blocking::serve_ready(st, &mut sess);
        if let Some(link) = st.master.as_deref_mut() {
            link.sess = sess;
        }
    }
}

/// `+CONTINUE [replid]`: the data stays and the stream goes on from our offset. A master with
/// a new ID (it was promoted) continues our history under that ID; our replicas reconnect to
/// learn it.
fn continue_stream(st: &mut ServerState, new_id: &str) {
    info!("Successful partial resynchronization with master.");
    if !new_id.is_empty() && !new_id.eq_ignore_ascii_case(&st.repl.replid) {
        info!("Master replication ID changed to {new_id}");
        st.drain_repl_feed();
        st.repl.shift_history(new_id.to_string());
        st.disconnect_replicas();
    }
    st.ensure_backlog();
    if let Some(link) = st.master.as_deref_mut() {
        link.state = LinkState::Connected;
        info!("MASTER <-> REPLICA sync: Master accepted a Partial Resynchronization.");
    }
}
