//! The single-threaded event loop: mio (epoll) readiness for listeners and clients, and the
//! cron timer taken from the poll timeout.
//!
//! Invariants: sockets are read until `WouldBlock` (readiness is edge-triggered) and every
//! complete request is executed as soon as it is decoded, so pipelines are answered in order;
//! replies go to the session's buffer and are written at once, with WRITABLE interest
//! registered only while output is pending; nothing in here blocks.
//!
//! The sockets ([`Net`]) live in the [`ServerState`], not beside it: a script past
//! `busy-reply-threshold` keeps the loop turning from inside its instruction hook
//! ([`serve_while_busy`]), answering `-BUSY` to other clients and accepting SCRIPT KILL, as
//! Redis's processEventsWhileBlocked does. A client's connection is taken out of [`Net`] while
//! its commands run, so that nested turn never reads from the client whose script is running.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use mio::net::TcpListener;
use mio::{Events, Interest, Poll, Token};
use tracing::{debug, info, warn};

use super::client::{PROTECTED_MODE_DENIED, Session, protected_mode_denies};
use super::prefetch::{KeyHints, prefetch_window};
use super::socket::{Listener, Peer, Serves, Stream};
use super::state::{PauseKind, ServerState};
use crate::config::Config;
use crate::keyspace::ClientId;
use crate::protocol::{Decoder, Limits};
use crate::server::blocking;
use crate::server::execute::process;

const READ_CHUNK: usize = 16 * 1024;
/// What one connection may send per loop turn before the others, the AOF write and the
/// replies get theirs: without it a client pipelining faster than the server runs it would
/// be read for as long as it keeps the socket full, its replies and the AOF buffer growing
/// by its whole burst (Redis reads 16 KB per turn).
const READ_BUDGET: usize = 64 * READ_CHUNK;
/// An idle read buffer larger than this is released in cron, a written reply buffer at once
/// (a big request or reply should not pin memory).
const RBUF_KEEP: usize = 64 * 1024;

struct Conn {
    stream: Stream,
    rbuf: BytesMut,
    decoder: Decoder,
    writable: bool,
    /// Listed in [`Net::deferred`] (so a client is listed once however often it is queued).
    queued: bool,
    /// The prefetch window's keys: kept here so a read event does not zero them again.
    hints: KeyHints,
}

/// The sockets: listeners, client connections and their poller.
pub struct Net {
    pub(crate) poll: Poll,
    listeners: Vec<Listener>,
    /// Boxed: a connection leaves the map while its commands run (see the module doc), and
    /// moving a pointer is cheaper than moving the connection.
    conns: crate::util::id_hasher::IdMap<ClientId, Box<Conn>>,
    /// Scrapers of the metrics endpoint.
    pub(super) http: super::http::HttpConns,
    /// Links of the cluster bus.
    pub(super) bus: super::cluster_bus::BusConns,
    scratch: Vec<u8>,
    /// Clients whose replies go out at the end of this iteration (after the AOF write):
    /// see [`queue_flush`].
    deferred: Vec<ClientId>,
    /// Connections that used up their [`READ_BUDGET`] with more to read (their socket still
    /// readable, which edge-triggered polling will not say again): read next turn, and
    /// whether to read to the end (a hang-up came with the data).
    unread: Vec<(ClientId, bool)>,
    /// Set while those replies go out (the log was written, or under everysec/no could not
    /// be and is retried: the replies are not held back then), and while a busy script
    /// serves other clients (their replies acknowledge no write).
    replies_released: bool,
    /// Set by SIGTERM / SIGINT: shut down like SHUTDOWN (saving when save points are set).
    pub(super) terminate: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Set by SIGINT alone: a second one while a shutdown is pending exits at once.
    pub sigint: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

pub struct Server {
    pub state: ServerState,
    /// The running BGSAVE has work it can do right away.
    bgsave_more: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("could not bind {addr}: {err}")]
    Bind { addr: String, err: io::Error },
    #[error("I/O error: {0}")]
    Io(#[from] io::Error),
    /// ACL users that do not load (config `user` lines or the aclfile): start-up stops.
    #[error("{0}")]
    Acl(String),
    /// The TLS directives give no usable context (the log says why).
    #[error("Failed to configure TLS. Check logs for more info.")]
    Tls,
}

fn listener_token(i: usize) -> Token {
    Token(usize::MAX - i)
}

/// Turns a `bind` directive into socket addresses. `*` is every IPv4 address, `::*` every IPv6
/// address; a leading `-` marks an address whose bind failure is not fatal.
fn bind_addrs(bind: &str, port: u16) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    for a in bind.split_whitespace() {
        let (a, optional) = match a.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (a, false),
        };
        let addr = match a {
            "*" => format!("0.0.0.0:{port}"),
            "::*" => format!("[::]:{port}"),
            a if a.contains(':') => format!("[{a}]:{port}"),
            a => format!("{a}:{port}"),
        };
        out.push((addr, optional));
    }
    out
}

/// Listens on every address of `bind` at `port`, as plain TCP or TLS listeners. With port 0
/// every listener reuses the port the first one got. Fails with the address that could not
/// be bound (optional addresses excepted).
fn bind_listeners(bind: &str, port: u16, serves: Serves) -> Result<(Vec<Listener>, u16), (String, io::Error)> {
    let mut out = Vec::new();
    let mut bound_port = port;
    for (addr, optional) in bind_addrs(bind, port) {
        let addr = if port == 0 && bound_port != 0 { addr.replace(":0", &format!(":{bound_port}")) } else { addr };
        let parsed: SocketAddr = match addr.parse() {
            Ok(a) => a,
            Err(_) => return Err((addr, io::Error::other("invalid address"))),
        };
        match TcpListener::bind(parsed) {
            Ok(l) => {
                bound_port = l.local_addr().map_err(|e| (addr.clone(), e))?.port();
                out.push(Listener::Tcp(l, serves));
            }
            Err(err) if optional => debug!("optional bind {addr} failed: {err}"),
            Err(err) => return Err((addr, err)),
        }
    }
    Ok((out, bound_port))
}

impl Net {
    /// Stops listening (SHUTDOWN): done as soon as the shutdown is decided, so a client that
    /// sees its connection end finds the port refusing, not a server half torn down.
    pub fn close_listeners(&mut self) {
        for mut l in std::mem::take(&mut self.listeners) {
            let _ = self.poll.registry().deregister(&mut l);
        }
    }

    /// (allocated, used) bytes of a cluster bus link's send buffer.
    pub fn bus_send_buffer(&self, link: crate::cluster::LinkId) -> (usize, usize) {
        self.bus.send_buffer(link)
    }

    /// Listens for the cluster bus on `cport`, on the addresses of `bind`.
    pub fn listen_bus(&mut self, bind: &str, cport: u16) -> io::Result<()> {
        let (fresh, _) = bind_listeners(bind, cport, Serves::Bus).map_err(|(_, e)| e)?;
        for mut l in fresh {
            let token = listener_token(self.listeners.len());
            self.poll.registry().register(&mut l, token, Interest::READABLE)?;
            self.listeners.push(l);
        }
        Ok(())
    }

    /// CONFIG SET port / tls-port / bind: listens on the new addresses, then closes the old
    /// listeners of that kind (plain or TLS). When a required address cannot be bound nothing
    /// changes and the error says why. Port 0 closes the listeners of that kind, as in Redis.
    pub fn rebind(&mut self, bind: &str, port: u16, serves: Serves) -> io::Result<u16> {
        let (fresh, bound_port) =
            if port == 0 { (Vec::new(), 0) } else { bind_listeners(bind, port, serves).map_err(|(_, e)| e)? };
        // The Unix socket and the other kind's listeners stay.
        let (mut keep, old): (Vec<Listener>, Vec<Listener>) = std::mem::take(&mut self.listeners)
            .into_iter()
            .partition(|l| !matches!(l, Listener::Tcp(_, s) if *s == serves));
        for mut l in old {
            let _ = self.poll.registry().deregister(&mut l);
        }
        keep.extend(fresh);
        for (i, l) in keep.iter_mut().enumerate() {
            let r = self.poll.registry();
            if r.reregister(l, listener_token(i), Interest::READABLE).is_err() {
                r.register(l, listener_token(i), Interest::READABLE)?;
            }
        }
        self.listeners = keep;
        Ok(bound_port)
    }
}

impl Server {
    pub fn bind(config: Config, executor: &'static dyn crate::server::Executor) -> Result<Server, ServerError> {
        let poll = Poll::new()?;
        let mut state = ServerState::new(config, executor);
        if super::tls::wanted(&state.config) {
            match super::tls::configure(&state.config) {
                Ok(ctx) => state.tls = Some(ctx),
                Err(e) => {
                    warn!("{e}");
                    return Err(ServerError::Tls);
                }
            }
        }
        let port = state.config.port();
        let tls_port = state.config.int("tls-port") as u16;
        let bind = state.config.str("bind").to_string();
        let mut listeners = Vec::new();
        let mut bound_port = 0;
        // Port 0 picks a free port, unless TLS is served: then, as in Redis, it means no plain
        // TCP listener.
        if port != 0 || tls_port == 0 {
            let (ls, p) =
                bind_listeners(&bind, port, Serves::Resp).map_err(|(addr, err)| ServerError::Bind { addr, err })?;
            listeners.extend(ls);
            bound_port = p;
        }
        if tls_port != 0 {
            let (ls, _) =
                bind_listeners(&bind, tls_port, Serves::Tls).map_err(|(addr, err)| ServerError::Bind { addr, err })?;
            listeners.extend(ls);
        }
        let metrics_port = state.config.int("metrics-port") as u16;
        if metrics_port != 0 {
            let (ls, _) = bind_listeners(&bind, metrics_port, Serves::Metrics)
                .map_err(|(addr, err)| ServerError::Bind { addr, err })?;
            listeners.extend(ls);
        }
        for (i, l) in listeners.iter_mut().enumerate() {
            poll.registry().register(l, listener_token(i), Interest::READABLE)?;
        }
        state.bound_port = bound_port;
        let unixsocket = state.config.str("unixsocket").to_string();
        if !unixsocket.is_empty() {
            let perm = u32::from_str_radix(state.config.str("unixsocketperm"), 8).unwrap_or(0) & 0o777;
            let mut l =
                Listener::unix(&unixsocket, perm).map_err(|err| ServerError::Bind { addr: unixsocket.clone(), err })?;
            poll.registry().register(&mut l, listener_token(listeners.len()), Interest::READABLE)?;
            listeners.push(l);
            info!("The server is now ready to accept connections at {unixsocket}");
        }
        // `--port 0` picked a port: CONFIG GET port and INFO report the real one.
        let _ = state.config.set("port", &bound_port.to_string(), true);
        state.refresh_hot();
        let mode = state.config.str("oom-score-adj").to_string();
        let values = state.config.str("oom-score-adj-values").to_string();
        let _ = state.apply_oom_score(&mode, &values);
        state.load_acl_at_startup().map_err(ServerError::Acl)?;
        let terminate = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let sigint = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            if let Err(e) = signal_hook::flag::register(sig, std::sync::Arc::clone(&terminate)) {
                warn!("cannot handle signal {sig}: {e}");
            }
        }
        if let Err(e) = signal_hook::flag::register(signal_hook::consts::SIGINT, std::sync::Arc::clone(&sigint)) {
            warn!("cannot handle SIGINT: {e}");
        }
        state.net = Some(Box::new(Net {
            poll,
            listeners,
            conns: Default::default(),
            http: Default::default(),
            bus: Default::default(),
            scratch: vec![0; READ_CHUNK],
            deferred: Vec::new(),
            unread: Vec::new(),
            replies_released: false,
            terminate,
            sigint,
        }));
        Ok(Server { state, bgsave_more: false })
    }

    pub fn port(&self) -> u16 {
        self.state.bound_port
    }

    /// Runs until SHUTDOWN.
    pub fn run(&mut self) -> Result<(), ServerError> {
        if self.port() != 0 {
            info!("Ready to accept connections tcp port {}", self.port());
        }
        if self.state.config.int("tls-port") != 0 {
            info!("Ready to accept connections tls port {}", self.state.config.int("tls-port"));
        }
        if self.state.config.int("metrics-port") != 0 {
            info!("Serving Prometheus metrics at http port {} /metrics", self.state.config.int("metrics-port"));
        }
        let mut events = Events::with_capacity(1024);
        let mut next_cron = Instant::now();
        loop {
            let hz = self.state.config.int("hz").clamp(1, 500) as u64;
            let period = Duration::from_millis(1000 / hz);
            let mut timeout = next_cron.saturating_duration_since(Instant::now());
            if self.state.bgsave_in_progress() {
                // A background save advances between polls; 1 ms keeps the writer thread fed.
                timeout = timeout.min(if self.bgsave_more { Duration::ZERO } else { Duration::from_millis(1) });
            }
            if self.state.evicting
                || self.state.expire_backlog
                || self.state.net.as_ref().is_some_and(|n| !n.unread.is_empty())
            {
                // Eviction or expiry fell behind within its budget, or a client has more to
                // read: keep at it between polls.
                timeout = Duration::ZERO;
            }
            if let Some(d) = self.state.blocking.next_deadline() {
                let until = Duration::from_millis(d.saturating_sub(super::state::unix_ms()));
                timeout = timeout.min(until);
            }
            let Some(net) = self.state.net.as_deref_mut() else {
                return Err(io::Error::other("the server has no sockets").into());
            };
            let polled = net.poll.poll(&mut events, Some(timeout));
            // Signals first: a SHUTDOWN ABORT in the same batch must find the shutdown.
            self.take_signals();
            if let Err(e) = polled {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            let busy_from = Instant::now();
            for ev in events.iter() {
                handle_event(&mut self.state, ev);
                self.after_command_batch();
            }
            read_unread(&mut self.state);
            self.after_command_batch();
            if self.state.blocking.next_deadline().is_some_and(|d| d <= super::state::unix_ms()) {
                self.state.update_time();
                blocking::expire_blocks(&mut self.state);
                self.after_command_batch();
            }
            if self.state.evicting {
                self.state.perform_evictions();
                self.state.after_background_change();
                self.after_command_batch();
            }
            if self.state.cron_paused {
                next_cron = Instant::now() + period;
            } else if Instant::now() >= next_cron {
                self.cron();
                next_cron = Instant::now() + period;
            } else if self.state.expire_backlog && self.expiring_actively() {
                self.active_expire_slice();
            }
            if self.state.bgsave_in_progress() {
                self.bgsave_more = self.state.bgsave_step();
            }
            // Redis's beforeSleep: BCAST invalidations batch everything this iteration changed.
            self.state.broadcast_invalidations();
            self.after_command_batch();
            // The AOF once for the whole iteration, then the replies that waited for it. If the
            // log could not be written under `appendfsync always`, those writes are not
            // durable: their clients are disconnected unanswered (never a false
            // acknowledgement) and later writes get MISCONF until the disk recovers.
            self.state.drain_repl_feed();
            let logged = self.state.aof_flush();
            let always = self.state.aof.as_ref().is_some_and(|a| a.fsync == super::aof::Fsync::Always);
            let deferred = match self.state.net.as_deref_mut() {
                Some(net) => {
                    net.replies_released = true;
                    let ids = std::mem::take(&mut net.deferred);
                    for id in &ids {
                        if let Some(c) = net.conns.get_mut(id) {
                            c.queued = false;
                        }
                    }
                    ids
                }
                None => Vec::new(),
            };
            for id in deferred {
                if logged || !always {
                    flush(&mut self.state, id);
                } else {
                    close(&mut self.state, id);
                }
            }
            // The replicas are sent this iteration's stream now, after the log (Redis's
            // beforeSleep), and the stream's oldest blocks nobody needs go.
            flush_pending(&mut self.state);
            self.state.trim_backlog(10 * super::backlog::TRIM_PER_CALL);
            if let Some(net) = self.state.net.as_deref_mut() {
                net.replies_released = false;
            }
            let busy = busy_from.elapsed().as_micros() as u64;
            self.state.loop_stall_max_us = self.state.loop_stall_max_us.max(busy);
            if self.state.exiting {
                super::shutdown::leave(&mut self.state);
                return Ok(());
            }
        }
    }

    /// Active expiry runs in time-boxed slices (see `expire_backlog`), never while clients are
    /// paused (the dataset must not change) nor on a replica (its master's DELs remove keys;
    /// in cluster mode the node's role, known from nodes.conf before it replicates).
    fn expiring_actively(&self) -> bool {
        let replica = self.state.master.is_some() || self.state.cluster.as_deref().is_some_and(|c| c.is_replica());
        self.state.active_expire_enabled && self.state.pause.is_none() && !replica
    }

    fn active_expire_slice(&mut self) {
        const EXPIRE_SLICE: Duration = Duration::from_millis(1);
        self.state.update_time();
        let now = self.state.now_ms;
        let effort = self.state.config.int("active-expire-effort").clamp(1, 10) as u32;
        let started = Instant::now();
        let deadline = started + EXPIRE_SLICE * effort;
        let st = &mut self.state;
        let mut backlog = false;
        for db in st.dbs.iter_mut() {
            // Small batches, the clock read between them: a key's removal can cost far more
            // than usual when its memory went cold (a VM's host reclaiming idle pages), and
            // the slice must still end near its deadline.
            while db.expire_due(8, |at| st.expire_lag.record(now, now.saturating_sub(at), &mut st.rng)) == 8 {
                if Instant::now() >= deadline {
                    backlog = db.has_due();
                    break;
                }
            }
            // Hash fields, hash by hash in order of their first deadline.
            while db.expire_due_fields(16) == 16 {
                if Instant::now() >= deadline {
                    backlog = db.has_due();
                    break;
                }
            }
        }
        st.expire_backlog = backlog;
        let ms = started.elapsed().as_millis() as u64;
        st.latency.sample_if_needed(st.hot.latency_threshold_ms, "expire-cycle", ms, now / 1000);
        st.after_background_change();
    }

    /// Redis's sigShutdownHandler, run from the loop: a signal schedules the shutdown (the
    /// cron performs it); a second SIGINT while one is pending exits at once.
    fn take_signals(&mut self) {
        let Some(net) = self.state.net.as_deref_mut() else { return };
        if !net.terminate.swap(false, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let sigint = net.sigint.swap(false, std::sync::atomic::Ordering::SeqCst);
        if sigint && self.state.shutdown_asap {
            exit_insisting();
        }
        warn!("Received {} scheduling shutdown...", if sigint { "SIGINT" } else { "SIGTERM" });
        self.state.shutdown_asap = true;
        self.state.last_signal_sigint = sigint;
    }

    /// Output produced for other clients, and kills requested by commands.
    fn after_command_batch(&mut self) {
        if std::mem::take(&mut self.state.master_event_missed) {
            super::replica::on_event(&mut self.state);
        }
        // Clients just unblocked may have pipelined more commands behind the blocking one.
        while let Some(id) = self.state.blocking.resumed.pop() {
            process_input(&mut self.state, id);
        }
        // Commands may have given the cluster bus something to send (PUBLISH, MEET...).
        if self.state.cluster.as_deref().is_some_and(|c| c.has_out()) {
            super::cluster_bus::carry_out(&mut self.state);
        }
        super::client_mem::evict_clients(&mut self.state, None);
        flush_pending(&mut self.state);
    }

    fn cron(&mut self) {
        crate::crash::watchdog_tick();
        self.state.update_time();
        let s = &mut self.state.stats;
        let totals = [
            s.total_commands_processed,
            s.net_input_bytes,
            s.net_output_bytes,
            s.net_repl_input_bytes,
            s.net_repl_output_bytes,
        ];
        s.instant.sample(self.state.now_ms, totals);
        self.state.account_all_clients();
        super::replica::cron(&mut self.state);
        self.state.cluster_cron();
        super::http::close_idle(&mut self.state);
        self.state.shutdown_cron();
        self.state.aof_flush();
        if self.state.aofctl.rewrite_scheduled && !self.state.bgsave_in_progress() {
            if let Err(e) = self.state.start_aof_rewrite() {
                warn!("Can't start the AOF rewrite: {e}");
                self.state.aofctl.rewrite_scheduled = false;
            }
        } else if !self.state.bgsave_in_progress() && self.state.aof_rewrite_due() {
            info!(
                "Starting automatic rewriting of AOF on {}% growth",
                self.state.config.int("auto-aof-rewrite-percentage")
            );
            if let Err(e) = self.state.start_aof_rewrite() {
                warn!("Can't start the AOF rewrite: {e}");
            }
        }
        if self.state.bgsave_scheduled && !self.state.bgsave_in_progress() {
            self.state.bgsave_scheduled = false;
            if let Err(e) = self.state.start_bgsave() {
                warn!("Can't start the scheduled background save: {e}");
            }
        }
        if !self.state.bgsave_in_progress() && self.state.save_point_due() {
            let changes = self.state.dirty;
            info!("{changes} changes since the last save: saving...");
            if let Err(e) = self.state.start_bgsave() {
                warn!("Can't start the background save: {e}");
            }
        }
        let now = self.state.now_ms;
        if self.expiring_actively() {
            self.active_expire_slice();
        }
        for db in self.state.dbs.iter_mut() {
            db.cron(100);
        }
        self.state.enforce_tracking_limit();
        if self.state.reply_resizing {
            let reset = self.state.reply_peak_reset_ms;
            for s in self.state.clients.values_mut() {
                s.resize_reply_buffer(now, reset);
            }
        }
        self.state.after_background_change();
        self.state.ping_replicas();
        self.state.disconnect_timedout_replicas();
        self.state.keep_waiting_replicas_alive();
        self.state.close_idle_migrate_sockets();
        self.state.expire_backlog();
        // Replicas that wait for a snapshot while another one ran get theirs now.
        self.state.start_full_sync_snapshot(None);
        self.state.update_failover();
        // Pauses end; buffered commands of paused clients resume.
        if let Some((_, until)) = self.state.pause
            && now >= until
        {
            self.state.end_pause();
        }
        // Idle clients past `timeout`; oversized idle read buffers are released.
        let timeout_ms = self.state.config.int("timeout").max(0) as u64 * 1000;
        let mut idle = Vec::new();
        let conns = self.state.net.as_deref_mut().map(|n| n.conns.iter_mut());
        for (id, conn) in conns.into_iter().flatten() {
            if conn.rbuf.is_empty() && conn.rbuf.capacity() > RBUF_KEEP {
                conn.rbuf = BytesMut::new();
            }
            if timeout_ms > 0
                && let Some(s) = self.state.clients.get(id)
                && now.saturating_sub(s.last_interaction_ms) > timeout_ms
                && !s.monitor
            {
                idle.push(*id);
            }
        }
        for id in idle {
            debug!("closing idle client {id}");
            close(&mut self.state, id);
        }
        // Redis's clientsCron: output past the soft limit for longer than allowed closes
        // the client even when nothing more is written to it.
        let obuf = self.state.hot.obuf;
        let over: Vec<(ClientId, String)> = (self.state.clients.iter_mut())
            .filter(|(_, s)| !s.out.is_empty() && !s.replica)
            .filter_map(|(id, s)| s.over_output_limit(&obuf, now).then(|| (*id, s.addr.clone())))
            .collect();
        let over_replicas = self.state.replicas_over_output_limit();
        for (id, addr) in over.into_iter().chain(over_replicas) {
            warn!("Client id={id} addr={addr} closed for overcoming of output buffer limits.");
            close(&mut self.state, id);
        }
        self.after_command_batch();
    }
}

/// One readiness event: a new connection, input to run, or room to write.
fn handle_event(st: &mut ServerState, ev: &mio::event::Event) {
    let t = ev.token();
    if t == super::replica::TOKEN {
        super::replica::on_event(st);
        return;
    }
    if t.0 > usize::MAX - 16 {
        accept(st, usize::MAX - t.0);
        return;
    }
    if super::http::HttpConns::owns(t) {
        super::http::on_event(st, t);
        return;
    }
    if super::cluster_bus::BusConns::owns(t) {
        super::cluster_bus::on_event(st, t, ev.is_writable());
        return;
    }
    let id = t.0 as ClientId;
    if ev.is_readable() || ev.is_read_closed() || ev.is_error() {
        // A hang-up that came with the data raises no later edge: read on to the end then.
        handle_readable(st, id, ev.is_read_closed() || ev.is_error());
    }
    if ev.is_writable() {
        flush(st, id);
    }
}

/// Output produced for other clients, and kills requested by commands.
fn flush_pending(st: &mut ServerState) {
    while let Some(id) = st.pending_writes.pop() {
        flush(st, id);
    }
    for id in std::mem::take(&mut st.to_close) {
        close(st, id);
    }
}

/// One turn of the loop from inside a script past `busy-reply-threshold` (called from its
/// instruction hook), or from an RDB load (see `load::Loading`): new connections are accepted and other clients' commands run, which
/// dispatch answers with `-BUSY` unless they are allowed while busy (SCRIPT KILL, SHUTDOWN
/// NOSAVE, MULTI...). Blocked clients are not served and nothing is timed here, as in Redis.
/// A SIGTERM asks the script to stop; the main loop then shuts down.
///
/// `first`: the script just became busy. Readiness is edge-triggered and the batch of events
/// that started the script may hold other clients' edges, so every connection is read once.
pub fn serve_while_busy(st: &mut ServerState, first: bool) {
    // Rounds, as Redis's processEventsWhileBlocked: a connection accepted in one is read in
    // the next. A round says whether anything was ready.
    let mut round = 0;
    while round < 4 && serve_round(st, first && round == 0) {
        round += 1;
    }
}

fn serve_round(st: &mut ServerState, first: bool) -> bool {
    super::shutdown::shutdown_while_loading(st);
    let mut events = Events::with_capacity(64);
    let Some(net) = st.net.as_deref_mut() else { return false };
    if net.poll.poll(&mut events, Some(Duration::ZERO)).is_err() {
        return false;
    }
    let released = std::mem::replace(&mut net.replies_released, true);
    if net.terminate.load(std::sync::atomic::Ordering::SeqCst)
        && let Some(r) = st.running_script.as_mut()
    {
        r.kill = true;
    }
    if first {
        let ids: Vec<ClientId> = net.conns.keys().copied().collect();
        for id in ids {
            handle_readable(st, id, true);
        }
    }
    for ev in events.iter() {
        // Not the master link: its handler may be what is loading (a full sync's image),
        // and its edge would be lost unless it is read after.
        if ev.token() == super::replica::TOKEN {
            st.master_event_missed = true;
            continue;
        }
        handle_event(st, ev);
    }
    read_unread(st);
    flush_pending(st);
    if let Some(net) = st.net.as_deref_mut() {
        net.replies_released = released;
    }
    !events.is_empty()
}

fn accept(st: &mut ServerState, idx: usize) {
    let Some(net) = st.net.as_deref_mut() else { return };
    loop {
        let Some(listener) = net.listeners.get(idx) else {
            return;
        };
        let tls = listener.serves() == Serves::Tls;
        if listener.serves() == Serves::Metrics {
            return accept_scrapers(st, idx);
        }
        if listener.serves() == Serves::Bus {
            return accept_bus_peers(st, idx);
        }
        match listener.accept() {
            Ok((mut stream, peer)) => {
                // A TLS client: its session starts with the handshake its first bytes carry.
                if tls && let Stream::Tcp(tcp) = stream {
                    let Some(ctx) = st.tls.as_ref() else { continue };
                    match super::tls::TlsStream::server(tcp, &ctx.server) {
                        Ok(t) => stream = Stream::Tls(Box::new(t)),
                        Err(e) => {
                            warn!("Error accepting a client connection: {e}");
                            continue;
                        }
                    }
                }
                let maxclients = st.hot.maxclients;
                if net.conns.len() >= maxclients {
                    let _ = stream.write(b"-ERR max number of clients reached\r\n");
                    st.stats.rejected_connections += 1;
                    continue;
                }
                // Clients of the Unix socket are local: protected mode never turns them away.
                if let Peer::Tcp(addr) = &peer
                    && protected_mode_denies(st.config.bool("protected-mode"), st.hot.auth_required, addr)
                {
                    let _ = stream.write(PROTECTED_MODE_DENIED);
                    st.stats.rejected_connections += 1;
                    continue;
                }
                let id = st.next_client_id;
                st.next_client_id += 1;
                if let Err(e) = net.poll.registry().register(&mut stream, Token(id as usize), Interest::READABLE) {
                    warn!("register failed: {e}");
                    continue;
                }
                let laddr = stream.local_name(&peer);
                let fd = stream.raw_fd();
                let mut sess = Session::new(id, peer.name(), laddr, fd, st.now_ms);
                sess.unix = matches!(peer, Peer::Unix(_));
                sess.tls = tls;
                sess.authenticated = !st.hot.auth_required;
                st.clients.insert(id, Box::new(sess));
                st.stats.total_connections_received += 1;
                net.conns.insert(
                    id,
                    Box::new(Conn {
                        stream,
                        rbuf: BytesMut::new(),
                        decoder: Decoder::new(),
                        writable: false,
                        queued: false,
                        hints: KeyHints::default(),
                    }),
                );
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                warn!("accept error: {e}");
                return;
            }
        }
    }
}

/// New connections of the cluster bus listener `idx`, handed to the bus side.
fn accept_bus_peers(st: &mut ServerState, idx: usize) {
    for s in accept_all(st, idx) {
        super::cluster_bus::adopt(st, s);
    }
}

/// New connections of the metrics listener `idx`, handed to the HTTP side.
fn accept_scrapers(st: &mut ServerState, idx: usize) {
    for s in accept_all(st, idx) {
        super::http::adopt(st, s);
    }
}

/// Every TCP connection waiting on listener `idx`.
fn accept_all(st: &mut ServerState, idx: usize) -> Vec<mio::net::TcpStream> {
    let mut accepted = Vec::new();
    if let Some(listener) = st.net.as_deref().and_then(|n| n.listeners.get(idx)) {
        loop {
            match listener.accept() {
                Ok((Stream::Tcp(s), _)) => accepted.push(s),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            }
        }
    }
    accepted
}

/// The next turn of the connections that had more to read than [`READ_BUDGET`].
fn read_unread(st: &mut ServerState) {
    let Some(net) = st.net.as_deref_mut() else { return };
    for (id, drain) in std::mem::take(&mut net.unread) {
        handle_readable(st, id, drain);
    }
}

/// Reads what a connection sent and runs it. `drain`: read until the socket says WouldBlock
/// or end of stream, even after a short read.
fn handle_readable(st: &mut ServerState, id: ClientId, drain: bool) {
    let mut budget = READ_BUDGET;
    loop {
        let Some(net) = st.net.as_deref_mut() else { return };
        let Some(conn) = net.conns.get_mut(&id) else {
            return;
        };
        // A short read of plaintext says nothing of the socket's state: TLS reads on to
        // WouldBlock.
        let tls = conn.stream.is_tls();
        match conn.stream.read(&mut net.scratch) {
            Ok(0) => {
                // The client hung up (or only stopped writing): what it was answered still
                // goes out, as Redis writes pending replies before it frees the client.
                flush(st, id);
                close(st, id);
                return;
            }
            Ok(n) => {
                conn.rbuf.extend_from_slice(&net.scratch[..n]);
                st.stats.net_input_bytes += n as u64;
                st.stats.reads_processed += 1;
                if conn.rbuf.len() > st.hot.query_buffer_limit {
                    warn!("closing client {id}: query buffer limit reached");
                    close(st, id);
                    return;
                }
                if !process_input(st, id) {
                    return;
                }
                budget = budget.saturating_sub(n);
                if budget == 0 {
                    if let Some(net) = st.net.as_deref_mut() {
                        net.unread.push((id, drain));
                    }
                    break;
                }
                // A read that did not fill the buffer emptied the socket: data arriving later
                // raises a new edge, so the read that would only say WouldBlock is saved (one
                // syscall of four per unpipelined request; tokio clears readiness the same way).
                if n < READ_CHUNK && !drain && !tls {
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                close(st, id);
                return;
            }
        }
    }
    queue_flush(st, id);
}

/// Sends `id`'s replies at the end of this loop iteration, as Redis does in beforeSleep, or
/// at once while a busy script serves clients. Written one after another, the replies to
/// all the clients a poll returned find a client process (a benchmark, a proxy) still awake
/// after the first: written as each client's commands finish, every write woke it again,
/// and waking a sleeping process cost the writer more kernel time than the script it ran
/// (FCALL of one GET at -P 32: 0.43 µs of system time per request, Redis's 0.17).
fn queue_flush(st: &mut ServerState, id: ClientId) {
    let Some(net) = st.net.as_deref_mut() else { return };
    if net.replies_released {
        flush(st, id);
        return;
    }
    if let Some(conn) = net.conns.get_mut(&id)
        && !conn.queued
    {
        conn.queued = true;
        net.deferred.push(id);
    }
}

/// Decodes and runs every complete request buffered for `id`. Returns false if the client
/// was closed. The connection leaves [`Net`] while its commands run (see the module doc).
fn process_input(st: &mut ServerState, id: ClientId) -> bool {
    let Some(net) = st.net.as_deref_mut() else { return false };
    let Some(mut conn) = net.conns.remove(&id) else {
        return false;
    };
    let Some(mut sess) = st.clients.remove(&id) else {
        net.conns.insert(id, conn);
        return false;
    };
    // The command-time clock advances once per batch of pipelined requests, like Redis's
    // cached time: a pipeline is a burst of microseconds.
    st.update_time();
    if st.pause.is_none()
        && let Some(argv) = sess.postponed.take()
    {
        st.postponed_clients = st.postponed_clients.saturating_sub(1);
        process(st, &mut sess, &crate::protocol::views(&argv));
    }
    // Pipelined requests: the keys of the next few are looked up together (a window at a time).
    let (mut window, mut prefetching) = (0usize, true);
    let mut evicted = false;
    conn.hints.len = 0;
    loop {
        if sess.postponed.is_some() {
            break; // a command held by CLIENT PAUSE: nothing more is read until it runs
        }
        if sess.close_after_reply || st.exiting {
            break;
        }
        if sess.block.is_some() {
            break; // a blocked client reads nothing more until it is served
        }
        if st.pause.is_some_and(|(k, _)| k == PauseKind::All) {
            break; // commands wait in the buffer until the pause ends (cron resumes them)
        }
        let limits = Limits { max_bulk_len: st.hot.max_bulk_len, authenticated: sess.authenticated };
        if window == 0 && prefetching {
            let c = &mut *conn;
            match prefetch_window(&st.dbs[sess.db], &mut c.decoder, &c.rbuf, limits, &mut c.hints) {
                Some(n) => {
                    window = n;
                    prefetching = n >= 2;
                }
                None => conn.hints.len = 0, // a request half read: the window starts after it
            }
        }
        let hint = conn.hints.take(window);
        window = window.saturating_sub(1);
        // CLIENT LIST's qbuf counts the command being run, as Redis's query buffer does.
        let buffered = conn.rbuf.len();
        match conn.decoder.decode_next(&mut conn.rbuf, limits) {
            Ok(true) => {
                sess.qbuf = buffered;
                sess.argv_mem = 0;
                // Redis evicts clients before each command: the one about to run may go.
                if st.hot.maxmemory_clients > 0 {
                    st.account_client(&mut sess);
                    if super::client_mem::evict_clients(st, Some(&mut sess)) {
                        evicted = true;
                        break;
                    }
                }
                conn.decoder.with_args(&conn.rbuf, |argv| {
                    // The window hashed this request's key where it lies in the read buffer,
                    // which stays as it is until the command has run.
                    if let (Some((at, hash)), Some(key)) = (hint, argv.get(1))
                        && at == key.as_ptr() as usize
                    {
                        crate::util::dict::set_hash_hint(key, hash);
                    }
                    process(st, &mut sess, argv);
                    crate::util::dict::clear_hash_hint();
                });
                conn.decoder.finish(&mut conn.rbuf);
            }
            Ok(false) => break,
            Err(e) => {
                debug!("protocol error from client {id}: {e}");
                crate::protocol::encode(&crate::protocol::Reply::Error(format!("ERR {e}")), sess.resp, &mut sess.out);
                sess.close_after_reply = true;
                conn.rbuf.clear();
                break;
            }
        }
    }
    (sess.qbuf, sess.argv_mem) = conn.decoder.buffered_split(conn.rbuf.len());
    sess.qbuf_alloc = conn.rbuf.capacity();
    st.account_client(&mut sess);
    evicted = evicted || super::client_mem::evict_clients(st, Some(&mut sess));
    // Over its output limit (its output dropped): gone now, not after the next write, so
    // no later command in this turn lists it (Redis frees it before its next poll).
    let dropped = evicted || sess.close_asap;
    st.clients.insert(id, sess);
    if let Some(net) = st.net.as_deref_mut() {
        net.conns.insert(id, conn);
    }
    if dropped {
        close(st, id);
    }
    !dropped
}

/// Writes pending output; registers or drops WRITABLE interest; closes when asked to.
fn flush(st: &mut ServerState, id: ClientId) {
    let Some(net) = st.net.as_deref_mut() else { return };
    // With the AOF on, replies wait for the end of the loop iteration: the log is written
    // (and fsynced under `always`) once for all of them, then they go out, as Redis does
    // in beforeSleep. An acknowledged write is therefore already in the log.
    if !net.replies_released && st.aof.as_ref().is_some_and(|a| a.has_pending()) {
        if let Some(conn) = net.conns.get_mut(&id)
            && !conn.queued
        {
            conn.queued = true;
            net.deferred.push(id);
        }
        return;
    }
    let Some(conn) = net.conns.get_mut(&id) else {
        return;
    };
    let now_ms = st.now_ms;
    let Some(sess) = st.clients.get_mut(&id) else {
        return;
    };
    let mut dead = false;
    let mut wrote = false;
    loop {
        // A replica being sent its image file gets the next piece as the last drains.
        if sess.full_sync.is_some() {
            match super::full_sync::refill_from_file(sess, now_ms) {
                Ok(n) => st.stats.net_repl_output_bytes += n as u64,
                Err(e) => {
                    warn!("SYNC failed. Can't read the snapshot file: {e}");
                    dead = true;
                    break;
                }
            }
        }
        if sess.out.is_empty() {
            // A replica online is sent the stream from the shared backlog, at its cursor.
            if sess.full_sync.is_none()
                && let Some(pos) = sess.repl_cursor
                && let Some(chunk) = st.repl.backlog.as_ref().map(|b| b.chunk_at(pos)).filter(|c| !c.is_empty())
            {
                match conn.stream.write(chunk) {
                    Ok(0) => break,
                    Ok(n) => {
                        wrote = true;
                        sess.repl_cursor = Some(pos + n as u64);
                        st.stats.net_repl_output_bytes += n as u64;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        dead = true;
                        break;
                    }
                }
            }
            // TLS records already made from the replies still go out.
            if conn.stream.tls_pending() {
                match conn.stream.flush() {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => dead = true,
                }
            }
            break;
        }
        match conn.stream.write(&sess.out) {
            Ok(0) => break,
            // Written whole (the usual case): clear keeps the buffer's room at its front, where
            // advancing would leave it to be reclaimed, and split_to would make it shared. A
            // big buffer (a large reply) is let go.
            Ok(n) if n >= sess.out.len() => {
                wrote = true;
                if sess.out.capacity() > RBUF_KEEP {
                    sess.out = BytesMut::new();
                } else {
                    sess.out.clear();
                }
            }
            Ok(n) => {
                wrote = true;
                bytes::Buf::advance(&mut sess.out, n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => {
                dead = true;
                break;
            }
        }
    }
    if wrote {
        st.stats.writes_processed += 1;
    }
    super::client_mem::account(&mut st.clients_mem, sess);
    let stream_owed = sess.full_sync.is_none()
        && sess.repl_cursor.is_some_and(|c| st.repl.backlog.as_ref().is_some_and(|b| c < b.next()));
    let pending = !sess.out.is_empty() || conn.stream.tls_pending() || stream_owed;
    // Progress, or nothing left, restarts the clock of a stuck socket (replica timeouts).
    if !pending {
        sess.out_stalled_ms = 0;
    } else if wrote || sess.out_stalled_ms == 0 {
        sess.out_stalled_ms = now_ms;
    }
    if dead || (!pending && sess.close_after_reply) {
        close(st, id);
        return;
    }
    if pending != conn.writable {
        let interest = if pending { Interest::READABLE | Interest::WRITABLE } else { Interest::READABLE };
        if net.poll.registry().reregister(&mut conn.stream, Token(id as usize), interest).is_ok() {
            conn.writable = pending;
        }
    }
}

pub(crate) fn close(st: &mut ServerState, id: ClientId) {
    if let Some(net) = st.net.as_deref_mut()
        && let Some(mut conn) = net.conns.remove(&id)
    {
        if let Stream::Tls(t) = &mut conn.stream {
            t.close_notify();
        }
        let _ = net.poll.registry().deregister(&mut conn.stream);
    }
    let mut waited_for_disk_save = false;
    if let Some(mut sess) = st.clients.remove(&id) {
        waited_for_disk_save = sess
            .full_sync
            .as_ref()
            .is_some_and(|f| matches!(f.phase, super::full_sync::Phase::Snapshot { diskless: false }));
        if sess.postponed.is_some() {
            st.postponed_clients = st.postponed_clients.saturating_sub(1);
        }
        st.forget_client_mem(&mut sess);
        st.unwatch_all(&mut sess);
        blocking::forget_block(st, &mut sess);
        st.pubsub.forget(&mut sess.subs, id);
        st.disable_tracking(&mut sess);
    }
    st.monitors.retain(|m| *m != id);
    st.detach_replica(id, waited_for_disk_save);
}

/// A second SIGINT while a shutdown is pending: out now, without the temporary file of an
/// interrupted save (Redis: "You insist... exiting now.").
pub(crate) fn exit_insisting() -> ! {
    warn!("You insist... exiting now.");
    let _ = std::fs::remove_file(format!("temp-{}.rdb", std::process::id()));
    std::process::exit(1);
}
