//! INFO: the sections and field names of Redis 7.0, so monitoring tools and client libraries
//! that parse INFO keep working. Values Ember has no notion of (replication, forks, modules)
//! are reported as a standalone master with nothing in progress would report them.

use bytes::Bytes;

use super::connection::REDIS_VERSION;
use super::flags::*;
use super::{CmdResult, CommandSpec, Ctx};
use crate::protocol::Reply;
use crate::server::mem_report::{MemoryReport, ratio};
use crate::server::state::unix_us;

pub static COMMANDS: &[CommandSpec] = &[CommandSpec::new("info", -1, info).flags(LOADING | STALE).doc(
    "server",
    "Get information and statistics about the server",
    "1.0.0",
    "O(1)",
)];

const DEFAULT: &[&str] = &[
    "server",
    "clients",
    "memory",
    "persistence",
    "stats",
    "replication",
    "cpu",
    "modules",
    "errorstats",
    "cluster",
    "keyspace",
];
const ALL_EXTRA: &[&str] = &["commandstats", "latencystats"];

pub fn human(n: u64) -> String {
    let f = n as f64;
    if n < 1024 {
        format!("{n}B")
    } else if f < 1024.0 * 1024.0 {
        format!("{:.2}K", f / 1024.0)
    } else if f < 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2}M", f / (1024.0 * 1024.0))
    } else {
        format!("{:.2}G", f / (1024.0 * 1024.0 * 1024.0))
    }
}

fn cpu_times() -> (f64, f64) {
    // utime and stime (fields 14 and 15) in clock ticks, 100 per second on Linux.
    let Ok(s) = std::fs::read_to_string("/proc/self/stat") else {
        return (0.0, 0.0);
    };
    let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) else {
        return (0.0, 0.0);
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) / 100.0;
    (t(12), t(11))
}

fn section(ctx: &Ctx, name: &str, out: &mut String) {
    let srv = &*ctx.srv;
    let mut w = |k: &str, v: String| {
        out.push_str(k);
        out.push(':');
        out.push_str(&v);
        out.push_str("\r\n");
    };
    match name {
        "server" => {
            w("redis_version", REDIS_VERSION.into());
            w("ember_version", env!("CARGO_PKG_VERSION").into());
            w("redis_git_sha1", "00000000".into());
            w("redis_git_dirty", "0".into());
            w("redis_build_id", "0".into());
            w("redis_mode", "standalone".into());
            w("os", format!("{} {}", std::env::consts::OS, std::env::consts::ARCH));
            w("arch_bits", "64".into());
            w("monotonic_clock", "POSIX clock_gettime".into());
            w("multiplexing_api", "epoll".into());
            w("atomicvar_api", "c11-builtin".into());
            w("gcc_version", "0.0.0".into());
            w("process_id", std::process::id().to_string());
            w("process_supervised", "no".into());
            w("run_id", srv.run_id.clone());
            w("tcp_port", srv.bound_port.to_string());
            w("server_time_usec", unix_us().to_string());
            w("uptime_in_seconds", srv.uptime_secs().to_string());
            w("uptime_in_days", (srv.uptime_secs() / 86400).to_string());
            w("hz", srv.config.int("hz").to_string());
            w("configured_hz", srv.config.int("hz").to_string());
            // Redis's LRU clock counts seconds.
            w("lru_clock", ((srv.now_ms / 1000) as u32 & crate::keyspace::db::LRU_CLOCK_MAX).to_string());
            w("executable", srv.executable.clone());
            w("config_file", srv.config.file.clone().unwrap_or_default());
            w("io_threads_active", "0".into());
            if let Some(ms) = srv.shutdown_in_ms() {
                w("shutdown_in_milliseconds", ms.to_string());
            }
        }
        "clients" => {
            // Replicas are not clients here, as in Redis.
            w("connected_clients", (srv.clients.len() + 1).saturating_sub(srv.repl.replicas.len()).to_string());
            w("cluster_connections", "0".into());
            w("maxclients", srv.config.int("maxclients").to_string());
            w("client_recent_max_input_buffer", "0".into());
            w("client_recent_max_output_buffer", "0".into());
            w("blocked_clients", (srv.blocking.count() + srv.postponed_clients).to_string());
            w("tracking_clients", srv.tracking.clients.to_string());
            w("clients_in_timeout_table", "0".into());
        }
        "memory" => {
            let r = MemoryReport::gather(srv);
            let n = |v: usize| v.to_string();
            let (used, peak, rss) = (r.used, r.peak, r.rss);
            let maxmem = srv.config.int("maxmemory") as u64;
            w("used_memory", n(used));
            w("used_memory_human", human(used as u64));
            w("used_memory_rss", n(rss));
            w("used_memory_rss_human", human(rss as u64));
            w("used_memory_peak", n(peak));
            w("used_memory_peak_human", human(peak as u64));
            w("used_memory_peak_perc", format!("{:.2}%", r.peak_percentage()));
            w("used_memory_overhead", n(r.overhead()));
            w("used_memory_startup", n(r.startup));
            w("used_memory_dataset", n(r.dataset()));
            w("used_memory_dataset_perc", format!("{:.2}%", r.dataset_percentage()));
            let (allocated, active, resident) = r.allocator;
            w("allocator_allocated", n(allocated));
            w("allocator_active", n(active));
            w("allocator_resident", n(resident));
            let system = crate::alloc::system_memory();
            w("total_system_memory", system.to_string());
            w("total_system_memory_human", human(system));
            let eval_vm = srv.lua.as_deref().map_or(0, |e| e.used_memory());
            let func_vm = srv.functions.as_deref().map_or(0, |e| e.used_memory());
            w("used_memory_lua", n(eval_vm));
            w("used_memory_vm_eval", n(eval_vm));
            w("used_memory_lua_human", human(eval_vm as u64));
            w("used_memory_scripts_eval", n(r.lua_caches));
            w("number_of_cached_scripts", srv.lua.as_deref().map_or(0, |e| e.len()).to_string());
            w("number_of_functions", srv.functions.as_deref().map_or(0, |e| e.functions.len()).to_string());
            w("number_of_libraries", srv.functions.as_deref().map_or(0, |e| e.libraries.len()).to_string());
            w("used_memory_vm_functions", n(func_vm));
            w("used_memory_vm_total", n(eval_vm + func_vm));
            w("used_memory_vm_total_human", human((eval_vm + func_vm) as u64));
            w("used_memory_functions", n(r.function_caches));
            w("used_memory_scripts", n(r.lua_caches + r.function_caches));
            w("used_memory_scripts_human", human((r.lua_caches + r.function_caches) as u64));
            w("maxmemory", maxmem.to_string());
            w("maxmemory_human", human(maxmem));
            w("maxmemory_policy", srv.config.str("maxmemory-policy").to_string());
            // How the allocator's layers add up (Redis's zmalloc_get_allocator_info ratios).
            let diff = |a: usize, b: usize| (a as i64 - b as i64).to_string();
            w("allocator_frag_ratio", format!("{:.2}", ratio(active, allocated)));
            w("allocator_frag_bytes", diff(active, allocated));
            w("allocator_rss_ratio", format!("{:.2}", ratio(resident, active)));
            w("allocator_rss_bytes", diff(resident, active));
            w("rss_overhead_ratio", format!("{:.2}", ratio(rss, resident)));
            w("rss_overhead_bytes", diff(rss, resident));
            w("mem_fragmentation_ratio", format!("{:.2}", ratio(rss, used)));
            w("mem_fragmentation_bytes", diff(rss, used));
            w("mem_not_counted_for_evict", srv.mem_not_counted_for_evict().to_string());
            w("mem_replication_backlog", n(r.backlog));
            w("mem_total_replication_buffers", n(r.repl_total));
            w("mem_clients_slaves", n(r.clients_replicas));
            w("mem_clients_normal", n(r.clients_normal));
            w("mem_cluster_links", "0".into());
            w("mem_aof_buffer", n(r.aof_buffer));
            w("mem_allocator", "jemalloc-5.3.0".into());
            w("active_defrag_running", "0".into());
            w("lazyfree_pending_objects", srv.lazyfree.pending().to_string());
            w("lazyfreed_objects", srv.lazyfree.freed().to_string());
        }
        "persistence" => {
            let state = srv.load_state();
            w("loading", ((state == Some(false)) as u8).to_string());
            w("async_loading", ((state == Some(true)) as u8).to_string());
            // Forkless snapshots copy no pages: what they hold beside the data set stands for
            // the copy-on-write figures (see ServerState::snapshot_cost), measured now.
            let cost = srv.snapshot_cost();
            w("current_cow_peak", srv.snapshot_cost_peak().to_string());
            w("current_cow_size", cost.to_string());
            w("current_cow_size_age", "0".into());
            let (processed, total) = srv.snapshot_progress();
            let perc = if total == 0 { 0.0 } else { processed as f64 * 100.0 / total as f64 };
            w("current_fork_perc", format!("{perc:.2}"));
            w("current_save_keys_processed", processed.to_string());
            w("current_save_keys_total", total.to_string());
            w("rdb_changes_since_last_save", srv.dirty.to_string());
            w("rdb_bgsave_in_progress", (srv.rdb_bgsave_in_progress() as u8).to_string());
            w("rdb_last_save_time", srv.save_stats.last_save_secs.to_string());
            w("rdb_last_bgsave_status", if srv.save_stats.last_ok { "ok" } else { "err" }.into());
            w("rdb_last_bgsave_time_sec", srv.save_stats.last_duration_secs.to_string());
            w("rdb_current_bgsave_time_sec", "-1".into());
            w("rdb_saves", srv.save_stats.saves.to_string());
            w("rdb_last_cow_size", srv.save_stats.rdb_last_cow.to_string());
            w("rdb_last_load_keys_expired", srv.save_stats.last_load_expired.to_string());
            w("rdb_last_load_keys_loaded", srv.save_stats.last_load_loaded.to_string());
            w("aof_enabled", (srv.aof.is_some() as u8).to_string());
            w("aof_rewrite_in_progress", (srv.aof_rewrite_in_progress() as u8).to_string());
            w("aof_rewrite_scheduled", (srv.aofctl.rewrite_scheduled as u8).to_string());
            w("aof_last_rewrite_time_sec", srv.aofctl.last_rewrite_secs.to_string());
            let current = srv.aofctl.rewrite_started.map_or(-1, |t| t.elapsed().as_secs() as i64);
            w("aof_current_rewrite_time_sec", current.to_string());
            w("aof_last_bgrewrite_status", if srv.aofctl.last_rewrite_ok { "ok" } else { "err" }.into());
            w("aof_rewrites", srv.aofctl.rewrites.to_string());
            w("aof_rewrites_consecutive_failures", srv.aofctl.consecutive_failures.to_string());
            let write_ok = srv.aof.as_ref().is_none_or(|a| a.write_error.is_none());
            w("aof_last_write_status", if write_ok { "ok" } else { "err" }.into());
            w("aof_last_cow_size", srv.save_stats.aof_last_cow.to_string());
            w("module_fork_in_progress", "0".into());
            w("module_fork_last_cow_size", "0".into());
            if let Some(aof) = srv.aof.as_ref() {
                w("aof_current_size", aof.current_size.to_string());
                w("aof_base_size", srv.aofctl.rewrite_base_size.to_string());
                w("aof_pending_rewrite", (srv.aofctl.rewrite_scheduled as u8).to_string());
                w("aof_buffer_length", aof.pending_len().to_string());
                w("aof_pending_bio_fsync", "0".into());
                w("aof_delayed_fsync", "0".into());
            }
            if let Some(l) = srv.loading.as_ref() {
                let (perc, eta) = l.progress(srv.now_ms / 1000);
                w("loading_start_time", l.start_secs.to_string());
                w("loading_total_bytes", l.total_bytes.to_string());
                w("loading_rdb_used_mem", "0".into());
                w("loading_loaded_bytes", l.loaded_bytes.to_string());
                w("loading_loaded_perc", format!("{perc:.2}"));
                w("loading_eta_seconds", eta.to_string());
            }
        }
        "stats" => {
            let (mut expired, mut sub, mut hits, mut misses) = (0, 0, 0, 0);
            for db in &srv.dbs {
                expired += db.stats().expired_keys;
                sub += db.stats().expired_subkeys;
                hits += db.stats().keyspace_hits;
                misses += db.stats().keyspace_misses;
            }
            let s = &srv.stats;
            w("total_connections_received", s.total_connections_received.to_string());
            w("total_commands_processed", s.total_commands_processed.to_string());
            {
                use crate::server::instant::Metric;
                let kbps = |m| format!("{:.2}", s.instant.rate(m) / 1024.0);
                w("instantaneous_ops_per_sec", (s.instant.rate(Metric::Commands) as u64).to_string());
                w("total_net_input_bytes", s.net_input_bytes.to_string());
                w("total_net_output_bytes", s.net_output_bytes.to_string());
                w("total_net_repl_input_bytes", s.net_repl_input_bytes.to_string());
                w("total_net_repl_output_bytes", s.net_repl_output_bytes.to_string());
                w("instantaneous_input_kbps", kbps(Metric::NetInput));
                w("instantaneous_output_kbps", kbps(Metric::NetOutput));
                w("instantaneous_input_repl_kbps", kbps(Metric::NetReplInput));
                w("instantaneous_output_repl_kbps", kbps(Metric::NetReplOutput));
            }
            w("rejected_connections", s.rejected_connections.to_string());
            w("sync_full", srv.repl.sync_full.to_string());
            w("sync_partial_ok", srv.repl.sync_partial_ok.to_string());
            w("sync_partial_err", srv.repl.sync_partial_err.to_string());
            w("expired_subkeys", sub.to_string());
            w("expired_keys", expired.to_string());
            let (volatile, stale) =
                srv.dbs.iter().fold((0, 0), |(v, st), db| (v + db.expires_len(), st + db.stale_count(1_000_000)));
            let stale_perc = if volatile > 0 { stale as f64 * 100.0 / volatile as f64 } else { 0.0 };
            w("expired_stale_perc", format!("{stale_perc:.2}"));
            w("expired_time_cap_reached_count", "0".into());
            w("expire_cycle_cpu_milliseconds", "0".into());
            let (lag_max, lag_p99) = srv.expire_lag.summary(srv.now_ms);
            w("expire_lag_max_ms", lag_max.to_string());
            w("expire_lag_p99_ms", lag_p99.to_string());
            w("eventloop_max_stall_us", srv.loop_stall_max_us.to_string());
            w("evicted_keys", srv.evictor.evicted_keys.to_string());
            w("evicted_clients", srv.stats.evicted_clients.to_string());
            let (total_over, current_over) = srv.evictor.exceeded_time_ms(srv.now_ms);
            w("total_eviction_exceeded_time", total_over.to_string());
            w("current_eviction_exceeded_time", current_over.to_string());
            w("keyspace_hits", hits.to_string());
            w("keyspace_misses", misses.to_string());
            {
                use crate::server::pubsub::Kind;
                w("pubsub_channels", srv.pubsub.len(Kind::Channel).to_string());
                w("pubsub_patterns", srv.pubsub.len(Kind::Pattern).to_string());
                w("pubsubshard_channels", srv.pubsub.len(Kind::Shard).to_string());
            }
            w("latest_fork_usec", "0".into());
            w("total_forks", srv.save_stats.snapshots_started.to_string());
            w("migrate_cached_sockets", srv.migrate_sockets.len().to_string());
            w("slave_expires_tracked_keys", "0".into());
            // No active defragmenter (activedefrag is refused).
            for k in [
                "active_defrag_hits",
                "active_defrag_misses",
                "active_defrag_key_hits",
                "active_defrag_key_misses",
                "total_active_defrag_time",
                "current_active_defrag_time",
            ] {
                w(k, "0".into());
            }
            w("tracking_total_keys", srv.tracking.total_keys().to_string());
            w("tracking_total_items", srv.tracking.total_items().to_string());
            w("tracking_total_prefixes", srv.tracking.total_prefixes().to_string());
            w("unexpected_error_replies", "0".into());
            w("total_error_replies", s.total_error_replies.to_string());
            w("dump_payload_sanitizations", "0".into());
            w("total_reads_processed", s.reads_processed.to_string());
            w("total_writes_processed", s.writes_processed.to_string());
            // One thread does all I/O; a reply buffer is not resized as Redis's is.
            for k in [
                "io_threaded_reads_processed",
                "io_threaded_writes_processed",
                "reply_buffer_shrinks",
                "reply_buffer_expands",
            ] {
                w(k, "0".into());
            }
        }
        "replication" => {
            if let Some(m) = srv.master.as_deref() {
                w("role", "slave".into());
                w("master_host", m.host.clone());
                w("master_port", m.port.to_string());
                w("master_link_status", if m.link_up() { "up" } else { "down" }.into());
                let io_ago = srv.now_ms.saturating_sub(m.last_io_ms) / 1000;
                w("master_last_io_seconds_ago", if m.link_up() { io_ago.to_string() } else { "-1".into() });
                w("master_sync_in_progress", (m.syncing() as u8).to_string());
                if let Some((total, read)) = m.transfer_progress() {
                    let total = total.map_or(-1, |t| t as i64);
                    let perc = if total > 0 { read as f64 * 100.0 / total as f64 } else { 0.0 };
                    w("master_sync_total_bytes", total.to_string());
                    w("master_sync_read_bytes", read.to_string());
                    w("master_sync_left_bytes", (total - read as i64).to_string());
                    w("master_sync_perc", format!("{perc:.2}"));
                    w("master_sync_last_io_seconds_ago", io_ago.to_string());
                }
                let read = srv.repl.offset + crate::server::replica::unapplied(srv) as u64;
                w("slave_read_repl_offset", read.to_string());
                w("slave_repl_offset", srv.repl.offset.to_string());
                w("slave_priority", srv.config.get("replica-priority").unwrap_or_else(|| "100".into()));
                w("slave_read_only", (srv.config.bool("replica-read-only") as u8).to_string());
                w("replica_announced", "1".into());
            } else {
                w("role", "master".into());
            }
            w("connected_slaves", srv.repl.replicas.len().to_string());
            for (i, id) in srv.repl.replicas.iter().enumerate() {
                if let Some(r) = srv.clients.get(id) {
                    let ip = r.addr.rsplit_once(':').map_or(r.addr.as_str(), |(ip, _)| ip);
                    // The offset and age of the replica's last acknowledgement, as Redis shows.
                    let lag = if r.repl_ack_ms == 0 { 0 } else { srv.now_ms.saturating_sub(r.repl_ack_ms) / 1000 };
                    let state = r.full_sync.as_ref().map_or("online", |f| f.state_name());
                    let line = format!("ip={ip},port={},state={state},offset={},lag={lag}", r.replica_port, r.repl_ack);
                    w(&format!("slave{i}"), line);
                }
            }
            w("master_failover_state", crate::server::failover::Failover::state_name(srv.failover.as_ref()).into());
            let r = &srv.repl;
            w("master_replid", r.replid.clone());
            w("master_replid2", r.replid2.clone());
            w("master_repl_offset", r.offset.to_string());
            w("second_repl_offset", r.second_offset.map_or(-1, |o| o as i64).to_string());
            w("repl_backlog_active", (r.backlog.is_some() as u8).to_string());
            w("repl_backlog_size", srv.config.int("repl-backlog-size").to_string());
            let (first, histlen) = r.backlog.as_ref().map_or((0, 0), |b| (b.first_byte(), b.histlen()));
            w("repl_backlog_first_byte_offset", first.to_string());
            w("repl_backlog_histlen", histlen.to_string());
        }
        "cpu" => {
            let (sys, user) = cpu_times();
            w("used_cpu_sys", format!("{sys:.6}"));
            w("used_cpu_user", format!("{user:.6}"));
            w("used_cpu_sys_children", "0.000000".into());
            w("used_cpu_user_children", "0.000000".into());
            w("used_cpu_sys_main_thread", format!("{sys:.6}"));
            w("used_cpu_user_main_thread", format!("{user:.6}"));
        }
        "modules" => {}
        "latencystats" if srv.hot.latency_tracking => {
            let pcts: Vec<f64> = srv
                .config
                .str("latency-tracking-info-percentiles")
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            let entries = super::table().entries();
            let mut rows: Vec<_> = srv
                .stats
                .commands
                .iter()
                .enumerate()
                .filter(|(_, s)| s.latency.total > 0)
                .filter_map(|(i, s)| entries.get(i).map(|e| (e.full, &s.latency)))
                .collect();
            rows.sort_by(|a, b| a.0.cmp(b.0));
            for (name, h) in rows {
                let text: Vec<String> = pcts
                    .iter()
                    .map(|p| format!("p{}={:.3}", crate::util::numfmt::fmt_g(*p, 6), h.percentile_usec(*p)))
                    .collect();
                w(&format!("latency_percentiles_usec_{name}"), text.join(","));
            }
        }
        "latencystats" => {}
        "errorstats" => {
            for (code, n) in &srv.stats.errors {
                w(&format!("errorstat_{code}"), format!("count={n}"));
            }
        }
        "commandstats" => {
            let entries = super::table().entries();
            let mut names: Vec<_> = srv
                .stats
                .commands
                .iter()
                .enumerate()
                .filter(|(_, s)| s.calls + s.rejected_calls > 0)
                .filter_map(|(i, s)| entries.get(i).map(|e| (e.full, s)))
                .collect();
            names.sort_by(|a, b| a.0.cmp(b.0));
            for (name, s) in names {
                let per = if s.calls > 0 { s.usec as f64 / s.calls as f64 } else { 0.0 };
                w(
                    &format!("cmdstat_{name}"),
                    format!(
                        "calls={},usec={},usec_per_call={per:.2},rejected_calls={},failed_calls={}",
                        s.calls, s.usec, s.rejected_calls, s.failed_calls
                    ),
                );
            }
        }
        "cluster" => w("cluster_enabled", if srv.cluster.is_some() { "1" } else { "0" }.into()),
        "keyspace" => {
            for (i, db) in srv.dbs.iter().enumerate() {
                if !db.is_empty() {
                    w(
                        &format!("db{i}"),
                        format!(
                            "keys={},expires={},avg_ttl={},subexpiry={}",
                            db.len(),
                            db.expires_len(),
                            db.avg_ttl(),
                            db.subexpiry_len()
                        ),
                    );
                }
            }
        }
        _ => {}
    }
}

fn title(name: &str) -> String {
    match name {
        "cpu" => "CPU".into(),
        "commandstats" => "Commandstats".into(),
        "errorstats" => "Errorstats".into(),
        "latencystats" => "Latencystats".into(),
        n => {
            let mut c = n.chars();
            c.next().map(|f| f.to_ascii_uppercase().to_string() + c.as_str()).unwrap_or_default()
        }
    }
}

/// The INFO text for the requested sections (none = default).
pub fn info_text(ctx: &Ctx, args: &[&[u8]]) -> String {
    let mut wanted: Vec<String> = Vec::new();
    let mut push = |s: &str| {
        if !wanted.iter().any(|w| w == s) {
            wanted.push(s.to_string());
        }
    };
    if args.is_empty() {
        DEFAULT.iter().for_each(|s| push(s));
    }
    for a in args {
        let a = String::from_utf8_lossy(a).to_lowercase();
        match a.as_str() {
            "default" => DEFAULT.iter().for_each(|s| push(s)),
            "all" | "everything" => {
                DEFAULT.iter().for_each(|s| push(s));
                ALL_EXTRA.iter().for_each(|s| push(s));
            }
            other => push(other),
        }
    }
    // Print in Redis's canonical order.
    let order = [
        "server",
        "clients",
        "memory",
        "persistence",
        "stats",
        "replication",
        "cpu",
        "modules",
        "commandstats",
        "errorstats",
        "latencystats",
        "cluster",
        "keyspace",
    ];
    let mut out = String::new();
    for name in order {
        if wanted.iter().any(|w| w == name) {
            if !out.is_empty() {
                out.push_str("\r\n");
            }
            out.push_str(&format!("# {}\r\n", title(name)));
            section(ctx, name, &mut out);
        }
    }
    out
}

fn info(ctx: &mut Ctx, argv: &[&[u8]]) -> CmdResult {
    Ok(Reply::Verbatim(Bytes::from(info_text(ctx, &argv[1..]))))
}
