//! `ember-server [config-file] [--directive value ...]`, like redis-server.

use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use ember::config::Config;
use ember::server::Server;
use ember::server::aof::LoadStatus;
use tracing::error;

#[derive(Parser)]
#[command(
    name = "ember-server",
    version,
    about = "A Redis-compatible in-memory data store",
    override_usage = "ember-server [config-file] [--directive value ...]\n       ember-server --port 7000 --save \"\" --requirepass secret"
)]
struct Cli {
    /// A redis.conf-format file, then directives as `--name value ...` overriding it.
    #[arg(allow_hyphen_values = true, trailing_var_arg = true, value_name = "ARGS")]
    args: Vec<String>,
}

fn init_logging(config: &Config) {
    let level = ember::logging::filter_for(config.str("loglevel"));
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let logfile = config.str("logfile");
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_ansi(false).event_format(ember::logging::RedisFormat);
    if logfile.is_empty() {
        builder.with_writer(std::io::stdout).init();
    } else {
        match std::fs::OpenOptions::new().create(true).append(true).open(logfile) {
            Ok(f) => {
                // Crash reports write to it directly; the file stays open for good (it
                // belongs to the global subscriber).
                ember::crash::set_log_fd(std::os::fd::AsRawFd::as_raw_fd(&f));
                builder.with_writer(std::sync::Mutex::new(f)).init()
            }
            Err(e) => {
                eprintln!("Can't open the log file: {e}");
                std::process::exit(1);
            }
        }
    }
}

fn main() -> ExitCode {
    // Started by a server as its snapshot writer (BGSAVE's child): nothing else to do.
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some(ember::persistence::child::FLAG) {
        return ExitCode::from(ember::persistence::child::run(&argv[2..]));
    }
    let cli = Cli::parse();
    let mut config = Config::default();
    // A first word that is not a directive names the config file, as with redis-server.
    let (file, rest) = match cli.args.split_first() {
        Some((first, rest)) if !first.starts_with("--") => (Some(Path::new(first.as_str())), rest),
        _ => (None, cli.args.as_slice()),
    };
    if let Err(e) = config.load(file, rest).and_then(|()| ember::commands::rename_commands(&config.renames)) {
        eprintln!("\n*** FATAL CONFIG FILE ERROR (Redis 7.0.15) ***\n{e}");
        return ExitCode::FAILURE;
    }
    // `dir` first, as Redis changes directory while reading its config: a relative logfile
    // (like every other file) lives there.
    let dir = config.str("dir").to_string();
    if let Err(e) = std::env::set_current_dir(&dir) {
        eprintln!("Can't chdir to '{dir}': {e}");
        return ExitCode::FAILURE;
    }
    init_logging(&config);
    ember::crash::set_enabled(config.bool("crash-log-enabled"));
    ember::crash::install();
    let pid = std::process::id();
    tracing::info!("oO0OoO0OoO0Oo Ember is starting oO0OoO0OoO0Oo");
    tracing::info!(
        "Ember version={}, redis_version=7.0.15, bits=64, pid={pid}, just started",
        env!("CARGO_PKG_VERSION")
    );
    let port = config.port();
    let mut server = match Server::bind(config, &ember::commands::dispatch::DISPATCH) {
        Ok(s) => s,
        Err(e @ ember::server::ServerError::Tls) => {
            tracing::warn!("{e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            // Redis's words, which tools wait for.
            tracing::warn!("Warning: Could not create server TCP listening socket: {e}");
            tracing::warn!("Failed listening on port {port} (tcp), aborting.");
            return ExitCode::FAILURE;
        }
    };
    // Redis prints its logo (with "PID:") once the listeners are bound: the test suite
    // connects as soon as it sees that line, before any data is loaded.
    let mode = if server.state.config.bool("cluster-enabled") { "cluster" } else { "standalone" };
    tracing::info!("Running mode={mode}, port={port}, PID: {pid}");
    if server.state.config.bool("cluster-enabled") {
        let port = server.state.bound_port;
        let cport = match server.state.config.int("cluster-port") {
            0 => port as u32 + 10000,
            p => p as u32,
        };
        if cport > 65535 {
            error!(
                "Redis port number too high. Cluster communication port is 10,000 port numbers higher than your Redis port. Your Redis port number must be 55535 or less."
            );
            return ExitCode::FAILURE;
        }
        match ember::cluster::Cluster::open(server.state.config.str("cluster-config-file"), port, cport as u16) {
            Ok(c) => {
                // A replica by its nodes.conf leaves expiry to its master from the start,
                // loading included, as Redis's iAmMaster() says.
                if c.is_replica() {
                    server.state.set_replica_expiry(true);
                }
                server.state.cluster = Some(Box::new(c));
                server.state.refresh_hot();
                server.state.dbs[0].index_slots();
                let bind = server.state.config.str("bind").to_string();
                let listened = server.state.net.as_deref_mut().map(|n| n.listen_bus(&bind, cport as u16));
                if let Some(Err(e)) = listened {
                    error!("Could not bind the cluster bus port {cport}: {e}");
                    return ExitCode::FAILURE;
                }
            }
            Err(e) => {
                error!("{e}");
                return ExitCode::FAILURE;
            }
        }
    }
    server.state.snapshot_writer = std::env::current_exe().ok();
    // Redis's order: the manifest is read whether or not the AOF is on; with it on, the AOF
    // is the source of truth (the RDB file is ignored), and it is opened after loading.
    if server.state.load_aof_manifest().is_err() {
        return ExitCode::FAILURE;
    }
    let started = std::time::Instant::now();
    if server.state.config.bool("appendonly") {
        let status = server.state.load_append_only_files();
        if status.is_fatal() {
            return ExitCode::FAILURE;
        }
        if status != LoadStatus::NotExist {
            tracing::info!("DB loaded from append only file: {:.3} seconds", started.elapsed().as_secs_f64());
        }
        if server.state.open_aof_on_start().is_err() {
            return ExitCode::FAILURE;
        }
    } else {
        server.state.load_expired = Some(Vec::new());
        match server.state.load_rdb() {
            Ok(0) => {}
            Ok(_) => tracing::info!("DB loaded from disk: {:.3} seconds", started.elapsed().as_secs_f64()),
            Err(e @ ember::persistence::rdb::RdbError::Io(_)) => {
                error!("Fatal error loading the DB ({}): {e}. Exiting.", server.state.rdb_path().display());
                return ExitCode::FAILURE;
            }
            Err(e) => {
                // A damaged file: the error, the checker's report, as Redis logs them.
                error!("{e}");
                for line in e.report() {
                    error!("{line}");
                }
                error!("Terminating server after rdb file reading failure.");
                return ExitCode::FAILURE;
            }
        }
    }
    server.state.aof_del_history_files();
    match ember::server::replica::parse_replicaof(server.state.config.str("replicaof")) {
        Ok(Some((host, port))) => server.state.replicate_from(host, port),
        Ok(None) => {}
        Err(e) => {
            eprintln!("*** FATAL CONFIG FILE ERROR ***\n'replicaof {}': {e}", server.state.config.str("replicaof"));
            return ExitCode::FAILURE;
        }
    }
    if let Some(info) = server.state.loaded_repl_info.take() {
        server.state.restore_replication(info);
    }
    server.state.load_expired = None;
    ember::alloc::mark_startup();
    match server.run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            error!("{e}");
            ExitCode::FAILURE
        }
    }
}
