//! A client's session: everything about a connection except its socket and read buffer, which
//! the event loop owns. Handlers see the session of the caller through `Ctx`; other sessions are
//! reached through `ServerState::clients` (CLIENT LIST/KILL, MONITOR feeds).

use bytes::{Bytes, BytesMut};

use crate::keyspace::ClientId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyMode {
    On,
    Off,
    /// Skip the reply of the next command only.
    Skip,
    /// The command being run is the one SKIP silences (unless it changes the mode itself).
    Skipping,
}

#[derive(Debug)]
pub struct Session {
    pub id: ClientId,
    pub addr: String,
    pub laddr: String,
    pub fd: i32,
    pub name: Option<Bytes>,
    pub lib_name: Option<Bytes>,
    pub lib_ver: Option<Bytes>,
    pub db: usize,
    /// Protocol version: 2 or 3.
    pub resp: u8,
    pub authenticated: bool,
    /// The ACL user it runs as.
    pub user: Vec<u8>,
    pub created_ms: u64,
    pub last_interaction_ms: u64,
    /// Queued commands while in MULTI.
    pub multi: Option<Vec<Vec<Bytes>>>,
    /// A command failed to queue: EXEC must abort (EXECABORT).
    pub multi_error: bool,
    /// Keys WATCHed: (db, key).
    pub watched: Vec<(usize, Bytes)>,
    /// A watched key changed: EXEC must fail.
    pub dirty_cas: bool,
    pub close_after_reply: bool,
    pub reply_mode: ReplyMode,
    pub no_evict: bool,
    pub monitor: bool,
    /// Cluster: ASKING was sent (served once for a slot being imported), READONLY (reads
    /// served by a replica).
    pub asking: bool,
    pub readonly: bool,
    /// Attached by SYNC / PSYNC: gets the write stream, no replies.
    pub replica: bool,
    /// REPLCONF listening-port: the port a replica announced (INFO's slave lines).
    pub replica_port: u16,
    /// REPLCONF rdb-filter-only functions: the image holds the libraries only.
    pub replica_functions_only: bool,
    /// A replica's full sync in progress (see server::full_sync).
    pub full_sync: Option<crate::server::full_sync::FullSync>,
    /// REPLCONF capa eof: it takes an EOF-marked image (diskless sync).
    pub replica_capa_eof: bool,
    /// REPLCONF capa psync2: `+CONTINUE` names the replication ID.
    pub replica_psync2: bool,
    /// Encoded replies not yet written to the socket.
    pub out: BytesMut,
    /// Name of the last command run (CLIENT LIST `cmd=`).
    pub last_cmd: &'static str,
    /// The command table entry this client looked up last (a lookup hint; u32::MAX: none).
    pub cmd_hint: u32,
    /// Bytes buffered in the query buffer (CLIENT LIST `qbuf=`), kept up to date by the loop.
    pub qbuf: usize,
    /// CLIENT LIST's reply buffer size and peak (rbs/rbp), sized as Redis 7.0 sizes its
    /// per-client reply buffer (Ember's output buffer is one growable buffer; these report
    /// what a Redis client would have, see [`Session::resize_reply_buffer`]).
    pub rbs: usize,
    pub rbp: usize,
    pub rbp_reset_ms: u64,
    /// Nesting guard: EXEC runs queued commands through dispatch.
    pub in_exec: bool,
    /// The client a Lua script's commands run as (Redis's CLIENT_SCRIPT).
    pub in_script: bool,
    /// The AOF being replayed: commands are obeyed as logged (Redis's mustObeyClient).
    pub replaying: bool,
    /// The connection this replica's master sends its writes on (never refused as read-only).
    pub from_master: bool,
    /// Connected through the Unix socket (CLIENT LIST flag U).
    pub unix: bool,
    /// Connected through TLS (its socket carries records, not the protocol).
    pub tls: bool,
    /// SCRIPT DEBUG YES / SYNC: its next EVAL runs under the Lua debugger.
    pub lua_debug: bool,
    /// The replication offset right after this client's last propagated write (WAIT).
    pub woff: u64,
    /// A replica's last acknowledged offset (REPLCONF ACK), and when it came (Unix ms).
    pub repl_ack: u64,
    pub repl_ack_ms: u64,
    /// A replica that attached with SYNC, not PSYNC: it sends no ACKs (no streaming timeout).
    pub repl_pre_psync: bool,
    /// Since when output has been waiting without the socket taking any (Unix ms; 0 while
    /// it drains): a diskless replica stuck that long past repl-timeout is let go.
    pub out_stalled_ms: u64,
    /// A replica's place in the replication stream: the number of the next byte it is
    /// owed (its socket is written from the shared backlog; see `backlog`). None before its
    /// full sync's snapshot point is known.
    pub repl_cursor: Option<u64>,
    /// Set by a blocking command that found nothing to serve.
    pub block: Option<crate::server::blocking::BlockRequest>,
    /// A command held back by CLIENT PAUSE (WRITE): it runs, and input is read again, when
    /// the pause ends.
    pub postponed: Option<Vec<bytes::Bytes>>,
    /// The ready key a blocked command is being re-run for. As in Redis, the command is
    /// served from that key alone, and a key of the wrong type keeps it waiting instead of
    /// failing it.
    pub serving: Option<bytes::Bytes>,
    /// Pub/Sub channels, patterns and shard channels this client listens to.
    pub subs: crate::server::pubsub::Subscriptions,
    /// CLIENT TRACKING state; None while tracking is off.
    pub tracking: Option<crate::server::tracking::TrackingOpts>,
    /// CLIENT CACHING YES/NO given for the next command (OPTIN/OPTOUT modes).
    pub caching: bool,
    /// Invalidation messages for this client's own writes, sent after the command's reply.
    pub after_reply: Vec<Option<Bytes>>,
    /// Over its output buffer limit: output is dropped and the connection is being closed.
    pub close_asap: bool,
    /// When the output buffer went over the soft limit (Unix ms), 0 while under it.
    pub obuf_soft_since: u64,
    /// Bytes of the arguments read before a big one still arriving (CLIENT LIST argv-mem).
    pub argv_mem: usize,
    /// The query buffer's allocation: a big argument's whole length is reserved when its
    /// header arrives, as Redis does (tot-mem counts it).
    pub qbuf_alloc: usize,
    /// Bytes of the commands queued by MULTI (CLIENT LIST multi-mem, with the watched keys).
    pub multi_mem: usize,
    /// What this client adds to the clients' total memory (see server::client_mem).
    pub mem_counted: usize,
}

/// Redis's test for a local client: a peer address of exactly 127.0.0.1 or ::1.
pub fn is_local_peer(a: &std::net::SocketAddr) -> bool {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    a.ip() == IpAddr::V4(Ipv4Addr::LOCALHOST) || a.ip() == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// Whether protected mode turns a new connection away: it is on, no password is set, and the
/// peer is not local.
pub fn protected_mode_denies(protected: bool, password_set: bool, peer: &std::net::SocketAddr) -> bool {
    protected && !password_set && !is_local_peer(peer)
}

/// What a client turned away by protected mode reads before the connection closes.
pub const PROTECTED_MODE_DENIED: &[u8] = b"-DENIED Redis is running in protected mode because protected mode is enabled and no password is set for the default user. In this mode connections are only accepted from the loopback interface. If you want to connect from external computers to Redis you may adopt one of the following solutions: 1) Just disable protected mode sending the command 'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from the same host the server is running, however MAKE SURE Redis is not publicly accessible from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) Alternatively you can just disable the protected mode by editing the Redis configuration file, and setting the protected mode option to 'no', and then restarting the server. 3) If you started the server manually just for testing, restart it with the '--protected-mode no' option. 4) Setup a an authentication password for the default user. NOTE: You only need to do one of the above things in order for the server to start accepting connections from the outside.\r\n";

impl Session {
    /// Whether a blocking command may serve itself from `key`: any of its keys when it
    /// first runs, only the ready one when it is re-run for a waiting client.
    pub fn serves(&self, key: &[u8]) -> bool {
        self.serving.as_ref().is_none_or(|k| k[..] == *key)
    }

    /// How the logs name a replica (Redis's replicationGetSlaveName): its address with the
    /// port it listens on, which REPLCONF listening-port told.
    pub fn replica_name(&self) -> String {
        let ip = self.addr.rsplit_once(':').map_or(self.addr.as_str(), |(ip, _)| ip);
        let ip = ip.trim_start_matches('[').trim_end_matches(']');
        match (self.replica_port, ip.contains(':')) {
            (0, _) => format!("{ip}:<unknown-replica-port>"),
            (port, true) => format!("[{ip}]:{port}"),
            (port, false) => format!("{ip}:{port}"),
        }
    }

    /// A reply of `n` bytes went out: it filled the reply buffer up to its size.
    pub fn note_reply(&mut self, n: usize) {
        self.rbp = self.rbp.max(n.min(self.rbs));
    }

    /// Redis's clientsCronResizeOutputBuffer: an idle buffer shrinks towards its peak (not
    /// below 1 KB), a full one doubles (up to 16 KB); the peak restarts every
    /// `peak_reset_ms` (negative: never).
    pub fn resize_reply_buffer(&mut self, now_ms: u64, peak_reset_ms: i64) {
        const MIN: usize = 1024;
        const CHUNK: usize = 16 * 1024;
        let mut new = 0;
        if self.rbs / 2 >= MIN && self.rbp < self.rbs / 2 {
            new = MIN.max(self.rbp + 1);
        } else if self.rbs * 2 < CHUNK * 2 && self.rbp == self.rbs {
            new = CHUNK.min(self.rbs * 2);
        }
        if peak_reset_ms >= 0 && now_ms.saturating_sub(self.rbp_reset_ms) >= peak_reset_ms as u64 {
            self.rbp = 0;
            self.rbp_reset_ms = now_ms;
        }
        if new != 0 {
            self.rbs = new;
        }
    }

    /// Whether the client connected from this machine (Redis's islocalClient: 127.0.0.1 or
    /// ::1), for the `local` setting of the protected actions.
    pub fn is_local(&self) -> bool {
        self.addr.parse::<std::net::SocketAddr>().is_ok_and(|a| is_local_peer(&a))
    }

    pub fn new(id: ClientId, addr: String, laddr: String, fd: i32, now_ms: u64) -> Self {
        Session {
            id,
            addr,
            laddr,
            fd,
            name: None,
            lib_name: None,
            lib_ver: None,
            db: 0,
            resp: 2,
            authenticated: false,
            user: b"default".to_vec(),
            created_ms: now_ms,
            last_interaction_ms: now_ms,
            multi: None,
            multi_error: false,
            watched: Vec::new(),
            dirty_cas: false,
            close_after_reply: false,
            reply_mode: ReplyMode::On,
            no_evict: false,
            monitor: false,
            replica: false,
            asking: false,
            readonly: false,
            replica_port: 0,
            replica_functions_only: false,
            replica_psync2: false,
            full_sync: None,
            replica_capa_eof: false,
            out: BytesMut::new(),
            last_cmd: "NULL",
            cmd_hint: u32::MAX,
            qbuf: 0,
            rbs: 16384,
            rbp: 0,
            rbp_reset_ms: 0,
            in_exec: false,
            in_script: false,
            replaying: false,
            from_master: false,
            unix: false,
            tls: false,
            lua_debug: false,
            woff: 0,
            repl_ack: 0,
            repl_pre_psync: false,
            out_stalled_ms: 0,
            repl_cursor: None,
            repl_ack_ms: 0,
            block: None,
            postponed: None,
            serving: None,
            subs: Default::default(),
            tracking: None,
            caching: false,
            after_reply: Vec::new(),
            close_asap: false,
            obuf_soft_since: 0,
            argv_mem: 0,
            qbuf_alloc: 0,
            multi_mem: 0,
            mem_counted: 0,
        }
    }

    /// CLIENT LIST / CLIENT INFO line for this client.
    pub fn info_line(&self, now_ms: u64) -> String {
        self.info_line_with(now_ms, 0)
    }

    /// The line, for a replica whose cursor keeps `stream_share` bytes of the shared stream
    /// (its output memory, as Redis counts it).
    pub fn info_line_with(&self, now_ms: u64, stream_share: usize) -> String {
        use crate::server::pubsub::Kind;
        // Letters in Redis's order (getClientInfoString).
        let t = self.tracking.as_ref();
        let mut flags = String::new();
        for (on, c) in [
            (self.replica, 'S'),
            (self.monitor, 'O'),
            (self.subs.active(), 'P'),
            (self.multi.is_some(), 'x'),
            (self.block.is_some(), 'b'),
            (t.is_some(), 't'),
            (t.is_some_and(|t| t.broken_redirect), 'R'),
            (t.is_some_and(|t| t.bcast), 'B'),
            (self.dirty_cas, 'd'),
            (self.close_after_reply, 'c'),
            (self.close_asap, 'A'),
            (self.unix, 'U'),
            (self.no_evict, 'e'),
        ] {
            if on {
                flags.push(c);
            }
        }
        if flags.is_empty() {
            flags.push('N');
        }
        let name = self.name.as_ref().map(|n| String::from_utf8_lossy(n).into_owned()).unwrap_or_default();
        let multi = self.multi.as_ref().map_or(-1, |q| q.len() as i64);
        format!(
            "id={} addr={} laddr={} fd={} name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf={} qbuf-free=0 argv-mem={} multi-mem={} rbs={} rbp={} obl=0 oll=0 omem={} tot-mem={} events=r cmd={} user={} redir={} resp={}",
            self.id,
            self.addr,
            self.laddr,
            self.fd,
            name,
            now_ms.saturating_sub(self.created_ms) / 1000,
            now_ms.saturating_sub(self.last_interaction_ms) / 1000,
            flags,
            self.db,
            self.subs.len(Kind::Channel),
            self.subs.len(Kind::Pattern),
            self.subs.len(Kind::Shard),
            multi,
            self.qbuf,
            self.argv_mem,
            self.multi_overhead(),
            self.rbs,
            self.rbp,
            self.out.len() + stream_share,
            self.memory() + stream_share,
            self.last_cmd,
            String::from_utf8_lossy(&self.user),
            t.map_or(-1, |t| t.redirect as i64),
            self.resp,
        )
    }
}

impl Session {
    /// Whether this client's commands are obeyed rather than checked: the master's stream and
    /// the AOF replay carry what already ran (Redis's mustObeyClient).
    pub fn must_obey(&self) -> bool {
        self.from_master || self.replaying
    }

    /// Checks `client-output-buffer-limit` for this client's class after output was added
    /// (Redis's checkClientOutputBufferLimits): over the hard limit, or over the soft limit for
    /// longer than its seconds.
    /// Bytes this client's replies may still take before its class's hard output limit
    /// closes it; None without a limit, or for replies nobody reads through a socket (a
    /// script's calls, the master's stream).
    pub fn output_room(&self, limits: &[crate::config::ObufLimit; 3]) -> Option<u64> {
        use crate::config::{OBUF_NORMAL, OBUF_PUBSUB};
        if self.in_script || self.from_master || self.replaying {
            return None;
        }
        let l = limits[if self.subs.active() { OBUF_PUBSUB } else { OBUF_NORMAL }];
        (l.hard > 0).then(|| l.hard.saturating_sub(self.out.len() as u64))
    }

    pub fn over_output_limit(&mut self, limits: &[crate::config::ObufLimit; 3], now_ms: u64) -> bool {
        use crate::config::{OBUF_NORMAL, OBUF_PUBSUB};
        let l = limits[if self.subs.active() { OBUF_PUBSUB } else { OBUF_NORMAL }];
        self.past_output_limit(l, self.out.len() as u64, now_ms)
    }

    /// Whether `used` bytes of output are over the hard limit `l`, or over its soft limit for
    /// longer than its seconds (the clock starts the first time it is seen over).
    pub fn past_output_limit(&mut self, l: crate::config::ObufLimit, used: u64, now_ms: u64) -> bool {
        let hard = l.hard > 0 && used >= l.hard;
        let mut soft = l.soft > 0 && used >= l.soft;
        if soft {
            if self.obuf_soft_since == 0 {
                self.obuf_soft_since = now_ms.max(1);
                soft = false;
            } else if now_ms.saturating_sub(self.obuf_soft_since) / 1000 <= l.soft_secs {
                soft = false;
            }
        } else {
            self.obuf_soft_since = 0;
        }
        hard || soft
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protected_mode_turns_away_only_remote_clients_without_a_password() {
        let remote: std::net::SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let near: std::net::SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let near6: std::net::SocketAddr = "[::1]:5000".parse().unwrap();
        let other_loopback: std::net::SocketAddr = "127.0.0.2:5000".parse().unwrap();
        assert!(protected_mode_denies(true, false, &remote));
        assert!(!protected_mode_denies(true, false, &near));
        assert!(!protected_mode_denies(true, false, &near6));
        // Redis compares the address text: only 127.0.0.1 and ::1 are local.
        assert!(protected_mode_denies(true, false, &other_loopback));
        assert!(!protected_mode_denies(true, true, &remote), "a password lifts it");
        assert!(!protected_mode_denies(false, false, &remote), "protected-mode no");
        assert!(PROTECTED_MODE_DENIED.starts_with(b"-DENIED ") && PROTECTED_MODE_DENIED.ends_with(b"\r\n"));
    }
}
