//! Server-wide state shared by every command: databases, configuration, sessions, statistics.
//! It holds no sockets; the event loop owns I/O and hands this state to dispatch.

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::StdRng;

use crate::config::Config;
use crate::keyspace::{Changes, ClientId, Db};
use crate::server::Executor;
use crate::server::client::Session;

pub use crate::util::{unix_ms, unix_us};

#[derive(Debug, Default, Clone, Copy)]
pub struct CmdStat {
    pub calls: u64,
    pub usec: u64,
    pub rejected_calls: u64,
    pub failed_calls: u64,
    /// Call durations (LATENCY HISTOGRAM, INFO latencystats), under `latency-tracking yes`.
    pub latency: crate::server::latency::Histogram,
}

#[derive(Debug, Default)]
pub struct Stats {
    pub total_connections_received: u64,
    pub total_commands_processed: u64,
    pub rejected_connections: u64,
    pub net_input_bytes: u64,
    pub net_output_bytes: u64,
    /// Bytes from the master's link and to replicas (Redis counts them apart from clients').
    pub net_repl_input_bytes: u64,
    pub net_repl_output_bytes: u64,
    /// Client socket reads and writes that moved bytes (total_reads/writes_processed).
    pub reads_processed: u64,
    pub writes_processed: u64,
    /// Rates sampled by the cron (instantaneous_ops_per_sec and the kbps lines).
    pub instant: crate::server::instant::Instant,
    pub expired_keys_active: u64,
    pub total_error_replies: u64,
    /// Clients disconnected by maxmemory-clients (INFO's evicted_clients).
    pub evicted_clients: u64,
    /// Per-command statistics indexed by the command table's entry id.
    pub commands: Vec<CmdStat>,
    pub errors: BTreeMap<String, u64>,
}

impl Stats {
    pub fn command(&mut self, id: usize) -> &mut CmdStat {
        if id >= self.commands.len() {
            self.commands.resize(id + 1, CmdStat::default());
        }
        &mut self.commands[id]
    }
}

/// Configuration values read on every command, cached so the hot path does no name lookups.
/// Refreshed whenever the configuration changes.
#[derive(Debug, Clone, Copy)]
pub struct Hot {
    pub auth_required: bool,
    pub slowlog_slower_than: i64,
    pub max_bulk_len: i64,
    pub query_buffer_limit: usize,
    pub maxclients: usize,
    pub hash: crate::types::HashLimits,
    pub set_max_intset: usize,
    pub list_max_listpack: i64,
    pub zset: crate::types::ZsetLimits,
    pub eviction: crate::keyspace::evict::Limits,
    /// `client-output-buffer-limit` per class.
    pub obuf: [crate::config::ObufLimit; 3],
    /// `notify-keyspace-events` flags.
    pub notify: u32,
    /// min-replicas-to-write when min-replicas-max-lag is on (0 otherwise): writes need
    /// that many good replicas.
    pub min_replicas_to_write: i64,
    pub latency_tracking: bool,
    /// `tracking-table-max-keys` (0: no limit).
    pub tracking_max_keys: usize,
    /// `latency-monitor-threshold` in ms (0: no latency events).
    pub latency_threshold_ms: i64,
    /// `busy-reply-threshold` (alias lua-time-limit) in ms: how long a script runs before
    /// it is busy.
    pub busy_reply_ms: u64,
    /// The limit `maxmemory-clients` sets in bytes (0: no client eviction).
    pub maxmemory_clients: u64,
}

impl Hot {
    pub fn from(c: &Config) -> Hot {
        Hot {
            auth_required: !c.str("requirepass").is_empty(),
            latency_tracking: c.bool("latency-tracking"),
            tracking_max_keys: c.int("tracking-table-max-keys").max(0) as usize,
            latency_threshold_ms: c.int("latency-monitor-threshold"),
            busy_reply_ms: c.int("busy-reply-threshold").max(1) as u64,
            maxmemory_clients: crate::server::client_mem::limit(c.int("maxmemory-clients"), c.int("maxmemory")),
            min_replicas_to_write: if c.int("min-replicas-max-lag") > 0 { c.int("min-replicas-to-write") } else { 0 },
            slowlog_slower_than: c.int("slowlog-log-slower-than"),
            max_bulk_len: c.int("proto-max-bulk-len"),
            query_buffer_limit: c.int("client-query-buffer-limit").max(0) as usize,
            maxclients: c.int("maxclients").max(1) as usize,
            hash: crate::types::HashLimits {
                max_entries: c.int("hash-max-listpack-entries").max(0) as usize,
                max_value: c.int("hash-max-listpack-value").max(0) as usize,
            },
            set_max_intset: c.int("set-max-intset-entries").max(0) as usize,
            list_max_listpack: c.int("list-max-listpack-size"),
            zset: crate::types::ZsetLimits {
                max_entries: c.int("zset-max-listpack-entries").max(0) as usize,
                max_value: c.int("zset-max-listpack-value").max(0) as usize,
            },
            eviction: {
                use crate::keyspace::evict::{Limits, Policy, Stamping};
                let policy = Policy::parse(c.str("maxmemory-policy"));
                Limits {
                    maxmemory: c.int("maxmemory") as u64 as usize,
                    policy,
                    // Redis sizes its sample array by it; Ember bounds the loop (CONFIG GET keeps the value).
                    samples: c.int("maxmemory-samples").clamp(1, 1024) as usize,
                    tenacity: c.int("maxmemory-eviction-tenacity"),
                    stamping: Stamping {
                        lfu: policy.is_lfu(),
                        log_factor: c.int("lfu-log-factor").clamp(0, u32::MAX as i64) as u32,
                        decay_minutes: c.int("lfu-decay-time").clamp(0, u32::MAX as i64) as u32,
                    },
                }
            },
            obuf: c.obuf_limits(),
            notify: c.notify_flags(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct SlowlogEntry {
    pub id: u64,
    pub time_s: u64,
    pub duration_us: u64,
    pub args: Vec<Bytes>,
    pub addr: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseKind {
    Write,
    All,
}

pub struct ServerState {
    /// The command layer (see [`crate::server::execute`]).
    pub executor: &'static dyn Executor,
    /// MIGRATE's connections to its targets (`host:port`), closed after 10 idle seconds.
    pub migrate_sockets: std::collections::HashMap<String, MigrateSocket>,
    /// The TLS contexts, when `tls-port`, `tls-replication` or `tls-cluster` is set.
    pub tls: Option<super::tls::TlsContext>,
    /// Big values and flushed databases are freed on a background thread.
    pub lazyfree: super::lazyfree::LazyFree,
    /// Users and their permissions (ACL), and the log of denials.
    pub acl: crate::acl::Acl,
    /// The requirepass last given to the default user.
    requirepass_applied: String,
    /// The default user may do anything: its clients' commands need no ACL check.
    pub acl_default_free: bool,
    pub config: Config,
    pub hot: Hot,
    pub dbs: Vec<Db>,
    /// Sessions by client id, except the one whose commands are running (it leaves the map
    /// meanwhile). Unordered: the few loops where order shows sort the ids.
    pub clients: crate::util::id_hasher::IdMap<ClientId, Box<Session>>,
    pub stats: Stats,
    pub started: Instant,
    pub started_unix_ms: u64,
    pub run_id: String,
    /// The replication state of the RDB file loaded last (start-up continues it).
    pub loaded_repl_info: Option<crate::persistence::rdb::ReplInfo>,
    /// While the start-up RDB loads: the keys it skipped as expired (a master that continues
    /// its history sends them to its replicas as DEL).
    pub load_expired: Option<Vec<(usize, Bytes)>>,
    pub rng: StdRng,
    /// Command-time clock in Unix ms (set once per command).
    pub now_ms: u64,
    pub slowlog: VecDeque<SlowlogEntry>,
    pub slowlog_next_id: u64,
    /// Sessions that received output from another client's command (MONITOR, CLIENT KILL, …).
    pub pending_writes: Vec<ClientId>,
    /// Clients to disconnect once their pending output is flushed (or at once when killed).
    pub to_close: Vec<ClientId>,
    /// Memory of the normal and Pub/Sub clients (see server::client_mem).
    pub clients_mem: usize,
    /// Where the running script's current command is propagated (`redis.set_repl`).
    pub script_repl: u8,
    /// What oom-score-adj changed (see `oom`).
    pub oom: super::oom::OomScore,
    /// The clients' memory and the limit when client eviction last found nothing left to
    /// evict: not tried again until one of them (or a client's no-evict flag) changes.
    pub client_evict_futile: Option<(usize, u64)>,
    /// The shutdown finished (saved as asked): the server exits after this loop iteration.
    pub exiting: bool,
    pub pause: Option<(PauseKind, u64)>,
    pub monitors: Vec<ClientId>,
    /// Replicas and the stream they are sent (SYNC / PSYNC).
    pub repl: crate::server::repl::Replication,
    /// Effects of the running top-level command, sent when it returns.
    pub pending_ops: Vec<crate::server::repl::PendingOp>,
    /// How deep `call` is nested (EXEC and scripts call commands): 0 between commands.
    pub call_depth: u32,
    /// Set by a command that is propagated even when it changed nothing (FLUSHALL).
    pub force_propagation: bool,
    pub next_client_id: ClientId,
    /// Writes since the last save (INFO rdb_changes_since_last_save).
    pub dirty: u64,
    /// Where the databases count their changes; [`ServerState::take_changes`] moves them
    /// into `dirty` after each command.
    pub changes: Changes,
    /// What the running command logs to the AOF instead of its own arguments, when its effect
    /// depends on the moment (SPOP's random members, XADD's generated ID, what XREADGROUP
    /// delivered). Set through the command layer (`Ctx::log_as`); taken after every command.
    pub log_instead: Option<Vec<Vec<Bytes>>>,
    /// The actual TCP port bound (differs from config when started with `--port 0`).
    pub bound_port: u16,
    pub active_expire_enabled: bool,
    pub executable: String,
    /// A fixed clock for tests (Unix ms); None uses the system clock.
    pub clock: Option<u64>,
    pub blocking: crate::server::blocking::Blocking,
    /// WATCHed (client, key) pairs in all databases; 0 lets dispatch skip the WATCH bookkeeping.
    pub watched_keys: usize,
    /// Watchers of a changed key found in no session at hand: the client running the
    /// command, out of the table while it runs (a script's caller). Its own command's end
    /// flags it; the top level forgets the rest.
    dirty_elsewhere: Vec<crate::keyspace::db::ClientId>,
    /// Failed calls the running command's reply carries beside its own result: the error
    /// replies nested in a script's return value (Redis counts each one it converts).
    /// Dispatch adds them to the command's failed_calls.
    pub extra_failures: u64,
    /// When the current command started: the previous command's end (or the batch start), so
    /// each command costs one clock read for its duration statistic.
    pub cmd_clock: u64,
    /// The clock commands are timed with (see util::ticks).
    pub ticker: crate::util::ticks::Ticker,
    pub evictor: crate::keyspace::evict::Evictor,
    /// Eviction ran out of its per-command budget while still over `maxmemory`: the event loop
    /// keeps evicting between polls until it is under.
    pub evicting: bool,
    /// How late active expiry reclaims keys (INFO expire_lag_*).
    pub expire_lag: crate::server::lag::LagWindow,
    /// Keys were still due when the last active-expiry slice ran out of time.
    pub expire_backlog: bool,
    /// Longest stretch the event loop spent between two polls, in µs (INFO).
    pub loop_stall_max_us: u64,
    pub pubsub: crate::server::pubsub::PubSub,
    /// Whether the databases are set for the lookups of a write command (see Db::set_writing).
    pub lookups_writing: bool,
    pub save_stats: crate::server::persist::SaveStats,
    /// The append-only file, when `appendonly yes`.
    pub aof: Option<crate::server::aof::Aof>,
    /// The Lua engine and script cache, created by the first EVAL or SCRIPT LOAD.
    pub lua: Option<Box<crate::scripting::Engine>>,
    /// The Lua state of FUNCTION libraries (a separate one, as in Redis: functions see no
    /// KEYS/ARGV globals and no EVAL scripts' state).
    pub functions: Option<Box<crate::scripting::Engine>>,
    /// The AOF's manifest and rewrite bookkeeping, kept whether the AOF is on or off.
    pub aofctl: crate::server::aof::AofControl,
    /// BGSAVE SCHEDULE (or BGSAVE in EXEC) while a rewrite ran: start it after.
    pub bgsave_scheduled: bool,
    /// The executable that writes snapshots as a child process (`ember-server` itself);
    /// None in-process (library tests), where a thread writes them.
    pub snapshot_writer: Option<std::path::PathBuf>,
    /// The running forkless BGSAVE, if any.
    pub bgsave: Option<crate::server::persist::Bgsave>,
    /// `dirty` when the running BGSAVE started (what remains unsaved after it ends).
    pub dirty_at_bgsave: u64,
    pub tracking: crate::server::tracking::Tracking,
    /// The sockets, once the server is bound (None for in-process tests).
    pub net: Option<Box<crate::server::event_loop::Net>>,
    /// The latency monitor's events (LATENCY LATEST/HISTORY/DOCTOR/GRAPH).
    pub latency: crate::server::latency::Monitor,
    /// An AOF file is being replayed (DEBUG LOADAOF refuses to nest).
    pub replaying_aof: bool,
    /// An RDB image is being loaded (start-up, a replica's full sync): INFO's `loading`.
    pub loading: Option<crate::server::load::Loading>,
    /// The master link had an event while a load served other clients; it is read after.
    pub master_event_missed: bool,
    /// DEBUG REPLYBUFFER: how often a client's reply-buffer peak restarts (ms, negative:
    /// never) and whether buffers are resized at all.
    pub reply_peak_reset_ms: i64,
    pub reply_resizing: bool,
    /// Clients holding a command back for CLIENT PAUSE (counted in INFO blocked_clients).
    pub postponed_clients: usize,
    /// DEBUG PAUSE-CRON 1: no periodic work (expiry, saves, timeouts) until 0.
    pub cron_paused: bool,
    /// The link to this server's master, while it is a replica (REPLICAOF).
    pub master: Option<Box<crate::server::replica::MasterLink>>,
    /// On a replica, whether the running command came from its master (Some(true)) or a
    /// client of its own (Some(false)), as last told to the databases (see Db).
    pub replica_client: Option<bool>,
    /// A FAILOVER under way.
    pub failover: Option<crate::server::failover::Failover>,
    /// SIGTERM / SIGINT arrived: the next cron shuts down (SHUTDOWN ABORT cancels it).
    pub shutdown_asap: bool,
    /// The last of those signals was SIGINT (`shutdown-on-sigint` applies, not -sigterm).
    pub last_signal_sigint: bool,
    /// A shutdown waiting for lagging replicas (see [`crate::server::shutdown`]).
    pub shutdown_pending: Option<crate::server::shutdown::Pending>,
    /// DEBUG SET-DISABLE-DENY-SCRIPTS 1: scripts may call NOSCRIPT commands (test hook).
    pub scripts_may_run_anything: bool,
    /// DEBUG SET-SKIP-CHECKSUM-VALIDATION 1: RESTORE parses payloads whatever their CRC
    /// (test hook: damaged payloads reach the parser).
    pub skip_checksum_validation: bool,
    /// Memory was over `maxmemory` (nothing left to evict) when the current command started.
    pub oom_before_command: bool,
    /// The script or function running now, if any (see [`RunningScript`]).
    pub running_script: Option<RunningScript>,
    /// GETLEASE's leases on missing keys (see server::lease).
    pub leases: crate::server::lease::LeaseTable,
    /// This node's cluster view, with `cluster-enabled yes` (see crate::cluster).
    pub cluster: Option<Box<crate::cluster::Cluster>>,
    /// The client scripts' commands run as, kept between runs (see commands::scripting).
    pub script_session: Option<Box<crate::server::client::Session>>,
}

/// A script or function in execution. Past `busy-reply-threshold` it is `timed_out`: other
/// clients get `-BUSY` and SCRIPT KILL / FUNCTION KILL may set `kill`, unless the script has
/// already written (`wrote`), which only SHUTDOWN NOSAVE can end.
#[derive(Debug)]
pub struct RunningScript {
    /// EVAL's engine (else a function).
    pub eval: bool,
    /// The function's name (FUNCTION STATS).
    pub name: String,
    /// The command that runs it (FUNCTION STATS).
    pub argv: Vec<Bytes>,
    pub started: Instant,
    pub timed_out: bool,
    pub wrote: bool,
    pub kill: bool,
    /// The function engine's counts (it is out of the server while it runs).
    pub libraries: usize,
    pub functions: usize,
}

impl RunningScript {
    /// Whether commands other than the ALLOW_BUSY ones are refused now.
    pub fn busy(&self) -> bool {
        self.timed_out
    }

    /// Redis's -BUSY text, naming the kill command that applies to what runs.
    pub fn busy_error(&self) -> String {
        let kill = if self.eval { "SCRIPT KILL" } else { "FUNCTION KILL" };
        format!("BUSY Redis is busy running a script. You can only call {kill} or SHUTDOWN NOSAVE.")
    }
}

impl ServerState {
    /// Moves the changes counted since the last call into `dirty`; returns how many.
    pub fn take_changes(&mut self) -> u64 {
        let mut n = self.changes.take();
        if let Some(f) = self.functions.as_deref_mut() {
            n += f.take_changes();
        }
        self.dirty += n;
        n
    }

    /// Nothing is unsaved any more (after a save or a load): pending changes included.
    pub fn reset_dirty(&mut self) {
        self.take_changes();
        self.dirty = 0;
    }

    /// ACL changed (or requirepass): whether new clients must authenticate, and whether the
    /// default user's commands need checking at all.
    pub fn refresh_acl(&mut self) {
        crate::acl::set_pubsub_default_all(self.config.str("acl-pubsub-default") == "allchannels");
        let pass = self.config.str("requirepass").to_string();
        if pass != self.requirepass_applied {
            self.acl.set_requirepass(&pass, self.executor.acl_catalog());
            self.requirepass_applied = pass;
        }
        let default = self.acl.get(b"default");
        self.hot.auth_required = !default.is_some_and(|u| u.nopass && u.enabled);
        self.acl_default_free = self.acl.default_unrestricted();
    }

    /// The users of the config file's `user` lines, or of `aclfile` (not both, as in Redis).
    pub fn load_acl_at_startup(&mut self) -> Result<(), String> {
        let catalog = self.executor.acl_catalog();
        let aclfile = self.config.str("aclfile").to_string();
        if !aclfile.is_empty() && !self.config.users.is_empty() {
            return Err("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid. This setup is very likely to lead to configuration errors and security holes, please define either an ACL file or declare users directly in your redis.conf, but not both.".into());
        }
        if aclfile.is_empty() {
            let lines = self.config.users.clone();
            self.acl.load_config_users(&lines, catalog)?;
        } else {
            let text = std::fs::read_to_string(&aclfile)
                .map_err(|e| format!("Error loading ACLs, opening file '{aclfile}': {e}"))?;
            self.acl.load_file(&text, &aclfile, catalog)?;
        }
        // `user default ...` lines win over requirepass, applied before them.
        self.refresh_acl();
        Ok(())
    }

    /// MIGRATE connections idle for 10 seconds are closed (Redis's
    /// migrateCloseTimedoutSockets).
    pub fn close_idle_migrate_sockets(&mut self) {
        let now = self.now_ms;
        self.migrate_sockets.retain(|_, s| now.saturating_sub(s.last_use_ms) <= 10_000);
    }

    pub fn new(config: Config, executor: &'static dyn Executor) -> Self {
        let changes = Changes::default();
        let dbs = (0..config.databases())
            .map(|_| {
                let mut db = Db::new();
                db.count_changes_in(&changes);
                db
            })
            .collect();
        let mut rng = StdRng::from_rng(&mut rand::rng());
        let run_id: String = {
            use rand::RngExt;
            (0..40).map(|_| char::from_digit(rng.random_range(0..16), 16).unwrap_or('0')).collect()
        };
        let acl = crate::acl::Acl::new(executor.acl_catalog());
        let ticker = crate::util::ticks::Ticker::new();
        let mut st = ServerState {
            migrate_sockets: Default::default(),
            tls: None,
            lazyfree: Default::default(),
            acl,
            requirepass_applied: String::new(),
            acl_default_free: true,
            executor,
            changes,
            hot: Hot::from(&config),
            config,
            dbs,
            clients: Default::default(),
            stats: Stats::default(),
            started: Instant::now(),
            started_unix_ms: unix_ms(),
            run_id,
            loaded_repl_info: None,
            load_expired: None,
            rng,
            now_ms: unix_ms(),
            slowlog: VecDeque::new(),
            slowlog_next_id: 0,
            pending_writes: Vec::new(),
            to_close: Vec::new(),
            clients_mem: 0,
            script_repl: crate::scripting::engine::REPL_ALL,
            oom: Default::default(),
            client_evict_futile: None,
            exiting: false,
            pause: None,
            monitors: Vec::new(),
            repl: Default::default(),
            pending_ops: Vec::new(),
            call_depth: 0,
            force_propagation: false,
            next_client_id: 1,
            dirty: 0,
            log_instead: None,
            bound_port: 0,
            active_expire_enabled: true,
            executable: std::env::args().next().unwrap_or_default(),
            clock: None,
            blocking: Default::default(),
            watched_keys: 0,
            dirty_elsewhere: Vec::new(),
            extra_failures: 0,
            cmd_clock: ticker.now(),
            ticker,
            evictor: Default::default(),
            evicting: false,
            expire_lag: Default::default(),
            expire_backlog: false,
            loop_stall_max_us: 0,
            pubsub: Default::default(),
            lookups_writing: false,
            bgsave: None,
            aof: None,
            lua: None,
            functions: None,
            aofctl: Default::default(),
            bgsave_scheduled: false,
            snapshot_writer: None,
            dirty_at_bgsave: 0,
            save_stats: crate::server::persist::SaveStats {
                last_save_secs: unix_ms() / 1000,
                last_ok: true,
                saves: 0,
                last_duration_secs: -1,
                last_attempt_secs: 0,
                last_load_loaded: 0,
                last_load_expired: 0,
                snapshots_started: 0,
                rdb_last_cow: 0,
                aof_last_cow: 0,
            },
            tracking: Default::default(),
            net: None,
            oom_before_command: false,
            latency: Default::default(),
            replaying_aof: false,
            loading: None,
            master_event_missed: false,
            reply_peak_reset_ms: 5000,
            reply_resizing: true,
            postponed_clients: 0,
            cron_paused: false,
            master: None,
            failover: None,
            replica_client: None,
            shutdown_asap: false,
            last_signal_sigint: false,
            shutdown_pending: None,
            scripts_may_run_anything: false,
            skip_checksum_validation: false,
            running_script: None,
            script_session: None,
            leases: Default::default(),
            cluster: None,
        };
        st.refresh_acl();
        crate::alloc::set_maxmemory(st.hot.eviction.maxmemory);
        st
    }

    /// Refreshes the command-time clock of the server and every db.
    /// Output buffers of normal clients and of replicas (INFO mem_clients_normal / _slaves).
    pub fn client_buffers(&self) -> (usize, usize) {
        let (mut normal, mut replicas) = (0, 0);
        for s in self.clients.values() {
            if s.replica {
                replicas += s.out.capacity();
            } else {
                normal += s.out.capacity();
            }
        }
        (normal, replicas)
    }

    /// Memory eviction leaves out: the replicas' part of the shared stream, their own output
    /// buffers (an image file on its way), the AOF's buffer, and what a running snapshot
    /// holds (Redis's child copies pages on write outside used_memory; evicting keys for
    /// Ember's counterpart would shrink the data set for a save's sake). Checked before
    /// commands under maxmemory, so it visits the replicas only.
    pub fn mem_not_counted_for_evict(&self) -> usize {
        let replicas: usize =
            self.repl.replicas.iter().filter_map(|id| self.clients.get(id)).map(|s| s.out.capacity()).sum();
        replicas
            + self.replication_memory_not_counted()
            + self.aof.as_ref().map_or(0, |a| a.buffer_allocated())
            + self.snapshot_cost()
    }

    /// A SIGINT came while a signalled shutdown is saving: the save gives up.
    pub fn shutdown_insisted(&self) -> bool {
        self.shutdown_asap && self.net.as_ref().is_some_and(|n| n.sigint.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// The cluster's periodic work (Redis's clusterCron): the bus, and the state following
    /// the slots.
    pub fn cluster_cron(&mut self) {
        super::cluster_bus::cron(self);
    }

    pub fn update_time(&mut self) {
        self.now_ms = self.clock.unwrap_or_else(unix_ms);
        self.ticker.refine(Instant::now());
        self.cmd_clock = self.ticker.now();
        for db in &mut self.dbs {
            db.set_now(self.now_ms);
        }
    }

    /// Moves "watched key changed" signals from the databases to the sessions.
    #[inline]
    pub fn flag_dirty_watchers(&mut self, current: &mut Session) {
        if self.watched_keys != 0 {
            self.flag_watchers_of_dirty_keys(current);
        }
    }

    fn flag_watchers_of_dirty_keys(&mut self, current: &mut Session) {
        for db in &mut self.dbs {
            for id in db.take_dirty_watchers() {
                if id == current.id {
                    current.dirty_cas = true;
                } else if let Some(s) = self.clients.get_mut(&id) {
                    s.dirty_cas = true;
                } else {
                    self.dirty_elsewhere.push(id);
                }
            }
        }
        if !self.dirty_elsewhere.is_empty() {
            if self.dirty_elsewhere.contains(&current.id) {
                current.dirty_cas = true;
            }
            if self.call_depth == 0 {
                self.dirty_elsewhere.clear();
            }
        }
    }

    /// Forgets every WATCH of a session.
    pub fn unwatch_all(&mut self, sess: &mut Session) {
        self.watched_keys = self.watched_keys.saturating_sub(sess.watched.len());
        for (db, key) in sess.watched.drain(..) {
            if let Some(d) = self.dbs.get_mut(db) {
                d.unwatch(&key, sess.id);
            }
        }
        sess.dirty_cas = false;
    }

    /// Sets the process's OOM score (oom-score-adj `mode`, oom-score-adj-values `values`) for
    /// the current role (Redis's
    /// setOOMScoreAdj(-1)); a failure is logged.
    pub fn apply_oom_score(&mut self, mode: &str, values: &str) -> std::io::Result<()> {
        let values = crate::config::parse_oom_values(values).unwrap_or([0, 200, 800]);
        let replica = self.master.is_some();
        let r = self.oom.apply(mode, values, replica);
        if let Err(e) = &r {
            tracing::warn!("Unable to write oom_score_adj: {e}");
        }
        r
    }

    /// Must be called after any configuration change.
    pub fn refresh_hot(&mut self) {
        let old = self.hot.eviction.policy;
        self.hot = Hot::from(&self.config);
        crate::crash::set_enabled(self.config.bool("crash-log-enabled"));
        // A period under two cron ticks would fire between healthy ticks (Redis raises it so).
        let watchdog = self.config.int("watchdog-period").max(0) as u64;
        let tick = 1000 / self.config.int("hz").clamp(1, 500) as u64;
        crate::crash::set_watchdog(if watchdog == 0 { 0 } else { watchdog.max(2 * tick) });
        crate::alloc::set_maxmemory(self.hot.eviction.maxmemory);
        self.refresh_acl();
        if self.hot.eviction.policy != old {
            self.evictor.clear();
        }
        for db in &mut self.dbs {
            db.set_stamping(self.hot.eviction.stamping);
            db.set_notify_mask(self.hot.notify);
        }
        crate::alloc::set_background_thread(self.config.bool("jemalloc-bg-thread"));
        if let Some(c) = self.cluster.as_deref_mut() {
            c.endpoint_type =
                crate::cluster::EndpointType::from_config(self.config.str("cluster-preferred-endpoint-type"));
        }
        let backlog_size = self.config.int("repl-backlog-size").max(1) as usize;
        if let Some(b) = self.repl.backlog.as_mut() {
            b.set_size(backlog_size);
        }
    }

    /// Ends a CLIENT PAUSE: keys expire again, and the clients holding a command back (or
    /// input, under PAUSE ALL) are served by the event loop right after this command.
    pub fn end_pause(&mut self) {
        self.pause = None;
        // The master's writes the pause held are applied now (see replica::apply_stream).
        if self.master.is_some() {
            self.master_event_missed = true;
        }
        // A replica leaves expiry to its master, pause or not.
        let replica = self.master.is_some();
        for db in self.dbs.iter_mut() {
            db.set_expire_paused(replica);
        }
        let mut waiting: Vec<ClientId> = self.clients.keys().copied().collect();
        waiting.sort_unstable(); // resumed in connection order, as Redis walks its client list
        for id in waiting {
            self.blocking.resumed.push(id);
            self.pending_writes.push(id);
        }
    }

    /// Evicts keys while over `maxmemory` (bounded work; see keyspace::evict).
    pub fn perform_evictions(&mut self) -> crate::keyspace::evict::Outcome {
        use crate::keyspace::evict::Outcome;
        let limits = self.hot.eviction;
        if limits.maxmemory == 0 {
            self.evicting = false;
            self.evictor.note(Outcome::Ok, self.now_ms);
            return Outcome::Ok;
        }
        let started = Instant::now();
        // Replicas' output buffers and the AOF buffer do not count (Redis's
        // freeMemoryGetNotCountedMemory): evicting cannot shrink them.
        let not_counted = self.mem_not_counted_for_evict();
        let used = move || crate::alloc::used_memory().saturating_sub(not_counted);
        let out = self.evictor.perform(&mut self.dbs, limits, used, &mut self.rng);
        self.evicting = out == Outcome::Running;
        self.evictor.note(out, self.now_ms);
        if self.hot.latency_threshold_ms > 0 {
            let ms = started.elapsed().as_millis() as u64;
            self.latency.sample_if_needed(self.hot.latency_threshold_ms, "eviction-cycle", ms, unix_ms() / 1000);
        }
        out
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started.elapsed().as_secs()
    }
}

/// A MIGRATE connection kept for the next MIGRATE to the same target.
pub struct MigrateSocket {
    pub stream: std::net::TcpStream,
    /// The database selected on it (-1: unknown, SELECT first).
    pub last_dbid: i64,
    pub last_use_ms: u64,
}
