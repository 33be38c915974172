//! The Prometheus text (exposition format 0.0.4) that `GET /metrics` serves (`metrics-port`):
//! INFO's fields under the names oliver006/redis_exporter gives them, so the dashboards built
//! on that exporter work unchanged, and what an exporter cannot see: per-command latency
//! histograms, expiry lag, event-loop stalls and the forkless snapshot's progress.
//!
//! The values are INFO's own (the text is rendered from `INFO everything`), so a scrape and
//! INFO agree; nothing is counted on the command path for this endpoint.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;

use super::Ctx;
use crate::server::{ServerState, Session};

/// INFO fields exported as gauges, with redis_exporter's metric names (after `redis_`).
const GAUGES: &[(&str, &str)] = &[
    ("uptime_in_seconds", "uptime_in_seconds"),
    ("process_id", "process_id"),
    ("connected_clients", "connected_clients"),
    ("blocked_clients", "blocked_clients"),
    ("tracking_clients", "tracking_clients"),
    ("maxclients", "config_maxclients"),
    ("client_recent_max_output_buffer", "client_recent_max_output_buffer_bytes"),
    ("client_recent_max_input_buffer", "client_recent_max_input_buffer_bytes"),
    ("allocator_active", "allocator_active_bytes"),
    ("allocator_allocated", "allocator_allocated_bytes"),
    ("allocator_resident", "allocator_resident_bytes"),
    ("allocator_frag_ratio", "allocator_frag_ratio"),
    ("allocator_frag_bytes", "allocator_frag_bytes"),
    ("allocator_rss_ratio", "allocator_rss_ratio"),
    ("allocator_rss_bytes", "allocator_rss_bytes"),
    ("total_system_memory", "total_system_memory_bytes"),
    ("used_memory_scripts", "memory_used_scripts_bytes"),
    ("instantaneous_ops_per_sec", "instantaneous_ops"),
    ("instantaneous_input_kbps", "instantaneous_input_kbps"),
    ("instantaneous_output_kbps", "instantaneous_output_kbps"),
    ("used_memory", "memory_used_bytes"),
    ("used_memory_rss", "memory_used_rss_bytes"),
    ("used_memory_peak", "memory_used_peak_bytes"),
    ("used_memory_lua", "memory_used_lua_bytes"),
    ("used_memory_overhead", "memory_used_overhead_bytes"),
    ("used_memory_startup", "memory_used_startup_bytes"),
    ("used_memory_dataset", "memory_used_dataset_bytes"),
    ("used_memory_vm_functions", "memory_used_vm_functions_bytes"),
    ("maxmemory", "memory_max_bytes"),
    ("mem_fragmentation_ratio", "mem_fragmentation_ratio"),
    ("mem_fragmentation_bytes", "mem_fragmentation_bytes"),
    ("mem_clients_slaves", "mem_clients_slaves"),
    ("mem_clients_normal", "mem_clients_normal"),
    ("mem_not_counted_for_evict", "mem_not_counted_for_eviction_bytes"),
    ("expired_stale_perc", "expired_stale_percentage"),
    ("lazyfree_pending_objects", "lazyfree_pending_objects"),
    ("migrate_cached_sockets", "migrate_cached_sockets_total"),
    ("expired_time_cap_reached_count", "expired_time_cap_reached_total"),
    ("loading", "loading_dump_file"),
    ("rdb_changes_since_last_save", "rdb_changes_since_last_save"),
    ("rdb_bgsave_in_progress", "rdb_bgsave_in_progress"),
    ("rdb_last_save_time", "rdb_last_save_timestamp_seconds"),
    ("rdb_last_bgsave_status", "rdb_last_bgsave_status"),
    ("rdb_last_bgsave_time_sec", "rdb_last_bgsave_duration_sec"),
    ("rdb_current_bgsave_time_sec", "rdb_current_bgsave_duration_sec"),
    ("rdb_last_cow_size", "rdb_last_cow_size_bytes"),
    ("aof_enabled", "aof_enabled"),
    ("aof_rewrite_in_progress", "aof_rewrite_in_progress"),
    ("aof_rewrite_scheduled", "aof_rewrite_scheduled"),
    ("aof_last_rewrite_time_sec", "aof_last_rewrite_duration_sec"),
    ("aof_current_rewrite_time_sec", "aof_current_rewrite_duration_sec"),
    ("aof_last_cow_size", "aof_last_cow_size_bytes"),
    ("aof_current_size", "aof_current_size_bytes"),
    ("aof_base_size", "aof_base_size_bytes"),
    ("aof_pending_rewrite", "aof_pending_rewrite"),
    ("aof_buffer_length", "aof_buffer_length"),
    ("aof_pending_bio_fsync", "aof_pending_bio_fsync"),
    ("aof_delayed_fsync", "aof_delayed_fsync"),
    ("aof_last_bgrewrite_status", "aof_last_bgrewrite_status"),
    ("aof_last_write_status", "aof_last_write_status"),
    ("pubsub_channels", "pubsub_channels"),
    ("pubsub_patterns", "pubsub_patterns"),
    ("latest_fork_usec", "latest_fork_usec"),
    ("connected_slaves", "connected_slaves"),
    ("repl_backlog_size", "replication_backlog_bytes"),
    ("repl_backlog_active", "repl_backlog_is_active"),
    ("repl_backlog_first_byte_offset", "repl_backlog_first_byte_offset"),
    ("repl_backlog_histlen", "repl_backlog_history_bytes"),
    ("master_repl_offset", "master_repl_offset"),
    ("second_repl_offset", "second_repl_offset"),
    ("slave_priority", "slave_priority"),
    ("sync_full", "replica_resyncs_full"),
    ("sync_partial_ok", "replica_partial_resync_accepted"),
    ("sync_partial_err", "replica_partial_resync_denied"),
];

/// INFO fields exported as counters (redis_exporter's names, after `redis_`).
const COUNTERS: &[(&str, &str)] = &[
    ("total_connections_received", "connections_received_total"),
    ("total_commands_processed", "commands_processed_total"),
    ("rejected_connections", "rejected_connections_total"),
    ("total_net_input_bytes", "net_input_bytes_total"),
    ("total_net_output_bytes", "net_output_bytes_total"),
    ("expired_keys", "expired_keys_total"),
    ("evicted_keys", "evicted_keys_total"),
    ("keyspace_hits", "keyspace_hits_total"),
    ("keyspace_misses", "keyspace_misses_total"),
    ("used_cpu_sys", "cpu_sys_seconds_total"),
    ("used_cpu_user", "cpu_user_seconds_total"),
    ("used_cpu_sys_children", "cpu_sys_children_seconds_total"),
    ("used_cpu_user_children", "cpu_user_children_seconds_total"),
];

/// The exposition text being built. Samples are kept per family and written out family by
/// family (HELP, TYPE, then its samples), as the format requires each family's samples to be
/// together whatever order they are added in.
#[derive(Default)]
struct Out {
    families: Vec<(String, String)>,
    index: HashMap<String, usize>,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        if !self.index.contains_key(name) {
            self.index.insert(name.to_string(), self.families.len());
            self.families.push((format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"), String::new()));
        }
    }

    /// A sample of family `family` (a histogram's `_bucket`, `_sum` and `_count` lines
    /// belong to the histogram's family).
    fn sample_of(&mut self, family: &str, name: &str, labels: &[(&str, &str)], value: f64) {
        let Some(&i) = self.index.get(family) else { return };
        let text = &mut self.families[i].1;
        text.push_str(name);
        if !labels.is_empty() {
            text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    text.push(',');
                }
                let _ = write!(text, "{k}=\"{}\"", escape(v));
            }
            text.push('}');
        }
        let _ = writeln!(text, " {}", number(value));
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sample_of(name, name, labels, value);
    }

    fn one(&mut self, name: &str, kind: &str, help: &str, value: f64) {
        self.family(name, kind, help);
        self.sample(name, &[], value);
    }

    fn text(self) -> String {
        let mut out = String::with_capacity(self.families.iter().map(|(h, s)| h.len() + s.len()).sum());
        for (head, samples) in self.families {
            out.push_str(&head);
            out.push_str(&samples);
        }
        out
    }
}

/// A label value as the format wants it: backslash, quote and newline escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf".into() } else { "-Inf".into() }
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// An INFO value as a number: "ok"/"err" statuses are 1/0, as redis_exporter reads them.
fn value(v: &str) -> Option<f64> {
    match v {
        "ok" | "up" => Some(1.0),
        "err" | "fail" | "down" => Some(0.0),
        _ => v.parse().ok(),
    }
}

/// `a=1,b=2` fields of an INFO value.
fn fields(v: &str) -> BTreeMap<&str, &str> {
    v.split(',').filter_map(|kv| kv.split_once('=')).collect()
}

/// The whole scrape.
pub fn render(srv: &mut ServerState) -> String {
    let mut sess = Session::new(0, "metrics".into(), String::new(), -1, srv.now_ms);
    let info = super::info::info_text(&Ctx { srv, sess: &mut sess }, &[b"everything"]);
    let mut kv: BTreeMap<&str, &str> = BTreeMap::new();
    let mut order: Vec<(&str, &str)> = Vec::new();
    for line in info.lines() {
        if let Some((k, v)) = line.split_once(':')
            && !line.starts_with('#')
        {
            kv.insert(k, v);
            order.push((k, v));
        }
    }
    // INFO counts the client asking; the scrape is not a client.
    let clients =
        kv.get("connected_clients").and_then(|v| v.parse::<u64>().ok()).unwrap_or(1).saturating_sub(1).to_string();
    kv.insert("connected_clients", &clients);
    let mut out = Out::default();
    out.one("redis_up", "gauge", "Information about the Redis instance", 1.0);
    let info_labels = [
        "role",
        "redis_version",
        "redis_build_id",
        "redis_mode",
        "os",
        "maxmemory_policy",
        "tcp_port",
        "run_id",
        "process_id",
    ];
    let labels: Vec<(&str, &str)> = info_labels.iter().map(|k| (*k, kv.get(k).copied().unwrap_or(""))).collect();
    out.family("redis_instance_info", "gauge", "Information about the Redis instance");
    out.sample("redis_instance_info", &labels, 1.0);
    for (field, name) in GAUGES {
        if let Some(v) = kv.get(field).and_then(|v| value(v)) {
            out.one(&format!("redis_{name}"), "gauge", &format!("INFO {field}"), v);
        }
    }
    for (field, name) in COUNTERS {
        if let Some(v) = kv.get(field).and_then(|v| value(v)) {
            out.one(&format!("redis_{name}"), "counter", &format!("INFO {field}"), v);
        }
    }
    replication(&mut out, &kv, &order);
    per_command(&mut out, &kv, &order);
    keyspace(&mut out, &kv, srv.dbs.len());
    ember_own(&mut out, srv, &kv);
    out.text()
}

/// A replica's link to its master, and a master's replicas.
fn replication(out: &mut Out, kv: &BTreeMap<&str, &str>, order: &[(&str, &str)]) {
    if let (Some(host), Some(port)) = (kv.get("master_host"), kv.get("master_port")) {
        let l = [("master_host", *host), ("master_port", *port)];
        let up = kv.get("master_link_status").is_some_and(|s| *s == "up");
        out.family("redis_master_link_up", "gauge", "Master link status on Redis slave");
        out.sample("redis_master_link_up", &l, if up { 1.0 } else { 0.0 });
        for (field, name, help) in [
            ("master_sync_in_progress", "redis_master_sync_in_progress", "Master sync in progress"),
            ("master_last_io_seconds_ago", "redis_master_last_io_seconds_ago", "Master last io seconds ago"),
        ] {
            if let Some(v) = kv.get(field).and_then(|v| value(v)) {
                out.family(name, "gauge", help);
                out.sample(name, &l, v);
            }
        }
    }
    for (k, v) in order {
        // slave0, slave1, ... (not slave_priority and the like).
        let Some(n) = k.strip_prefix("slave") else { continue };
        if n.is_empty() || !n.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let f = fields(v);
        let l = [
            ("slave_ip", f.get("ip").copied().unwrap_or("")),
            ("slave_port", f.get("port").copied().unwrap_or("")),
            ("slave_state", f.get("state").copied().unwrap_or("")),
        ];
        if let Some(o) = f.get("offset").and_then(|v| value(v)) {
            out.family("redis_connected_slave_offset_bytes", "gauge", "Offset of connected slave");
            out.sample("redis_connected_slave_offset_bytes", &l, o);
        }
        if let Some(lag) = f.get("lag").and_then(|v| value(v)) {
            out.family("redis_connected_slave_lag_seconds", "gauge", "Lag of connected slave");
            out.sample("redis_connected_slave_lag_seconds", &l, lag);
        }
    }
}

/// commandstats, errorstats and latencystats, as redis_exporter names them.
fn per_command(out: &mut Out, kv: &BTreeMap<&str, &str>, order: &[(&str, &str)]) {
    for (k, v) in order {
        if let Some(cmd) = k.strip_prefix("cmdstat_") {
            let f = fields(v);
            // Divisors, not factors: usec / 1e6 is exact where usec * 1e-6 is not.
            for (field, name, help, divisor) in [
                ("calls", "redis_commands_total", "Total number of calls per command", 1.0),
                (
                    "usec",
                    "redis_commands_duration_seconds_total",
                    "Total amount of time in seconds spent per command",
                    1e6,
                ),
                (
                    "rejected_calls",
                    "redis_commands_rejected_calls_total",
                    "Total number of errors prior command execution per command",
                    1.0,
                ),
                (
                    "failed_calls",
                    "redis_commands_failed_calls_total",
                    "Total number of errors within command execution per command",
                    1.0,
                ),
            ] {
                if let Some(n) = f.get(field).and_then(|v| value(v)) {
                    out.family(name, "counter", help);
                    out.sample(name, &[("cmd", cmd)], n / divisor);
                }
            }
        } else if let Some(err) = k.strip_prefix("errorstat_") {
            if let Some(n) = fields(v).get("count").and_then(|v| value(v)) {
                out.family("redis_errors_total", "counter", "Total number of errors per error type");
                out.sample("redis_errors_total", &[("err", err)], n);
            }
        } else if let Some(cmd) = k.strip_prefix("latency_percentiles_usec_") {
            const FAMILY: &str = "redis_latency_percentiles_usec";
            out.family(FAMILY, "summary", "A summary of latency percentile distribution per command");
            for (p, us) in fields(v) {
                let Some(q) = p.strip_prefix('p').and_then(|q| q.parse::<f64>().ok()) else { continue };
                let Some(us) = value(us) else { continue };
                // p99.9 is quantile 0.999, written without float noise.
                let quantile = format!("{:.6}", q / 100.0).trim_end_matches('0').trim_end_matches('.').to_string();
                out.sample(FAMILY, &[("cmd", cmd), ("quantile", &quantile)], us);
            }
            // The sum (µs) and count of the command's calls, from its commandstats.
            let stat = kv.get(format!("cmdstat_{cmd}").as_str()).map(|v| fields(v)).unwrap_or_default();
            let get = |f: &str| stat.get(f).and_then(|v| value(v)).unwrap_or(0.0);
            out.sample_of(FAMILY, "redis_latency_percentiles_usec_sum", &[("cmd", cmd)], get("usec"));
            out.sample_of(FAMILY, "redis_latency_percentiles_usec_count", &[("cmd", cmd)], get("calls"));
        }
    }
}

/// Keys and keys with a TTL per database, zero for the empty ones (as redis_exporter does).
fn keyspace(out: &mut Out, kv: &BTreeMap<&str, &str>, databases: usize) {
    out.family("redis_db_keys", "gauge", "Total number of keys by DB");
    out.family("redis_db_keys_expiring", "gauge", "Total number of expiring keys by DB");
    out.family("redis_db_avg_ttl_seconds", "gauge", "Avg TTL in seconds");
    for i in 0..databases {
        let db = format!("db{i}");
        let f = kv.get(db.as_str()).map(|v| fields(v)).unwrap_or_default();
        let get = |k: &str| f.get(k).and_then(|v| value(v)).unwrap_or(0.0);
        out.sample("redis_db_keys", &[("db", &db)], get("keys"));
        out.sample("redis_db_keys_expiring", &[("db", &db)], get("expires"));
        out.sample("redis_db_avg_ttl_seconds", &[("db", &db)], get("avg_ttl") / 1000.0);
    }
}

/// What only Ember reports.
fn ember_own(out: &mut Out, srv: &ServerState, kv: &BTreeMap<&str, &str>) {
    // Per-command latency histograms (latency-tracking): bucket i holds calls under
    // 1024 << i ns; the last one is open-ended.
    const FAMILY: &str = "ember_command_latency_seconds";
    let entries = super::table().entries();
    out.family(FAMILY, "histogram", "Latency of each command (latency-tracking)");
    for (i, s) in srv.stats.commands.iter().enumerate() {
        let Some(entry) = entries.get(i) else { continue };
        if s.latency.total == 0 {
            continue;
        }
        let mut acc = 0;
        let last = s.latency.counts.len() - 1;
        for (b, n) in s.latency.counts.iter().enumerate().take(last) {
            acc += n;
            let le = number((1024u64 << b) as f64 / 1e9);
            out.sample_of(
                FAMILY,
                "ember_command_latency_seconds_bucket",
                &[("cmd", entry.full), ("le", &le)],
                acc as f64,
            );
        }
        let total = s.latency.total as f64;
        out.sample_of(FAMILY, "ember_command_latency_seconds_bucket", &[("cmd", entry.full), ("le", "+Inf")], total);
        out.sample_of(FAMILY, "ember_command_latency_seconds_sum", &[("cmd", entry.full)], s.usec as f64 / 1e6);
        out.sample_of(FAMILY, "ember_command_latency_seconds_count", &[("cmd", entry.full)], total);
    }
    let (lag_max, lag_p99) = srv.expire_lag.summary(srv.now_ms);
    out.family(
        "ember_expire_lag_seconds",
        "gauge",
        "How late the active expiry cycle reclaimed keys over the last minute",
    );
    out.sample("ember_expire_lag_seconds", &[("quantile", "0.99")], lag_p99 as f64 / 1000.0);
    out.sample("ember_expire_lag_seconds", &[("quantile", "1")], lag_max as f64 / 1000.0);
    out.one(
        "ember_eventloop_stall_seconds",
        "gauge",
        "Longest event-loop iteration since the statistics were reset",
        srv.loop_stall_max_us as f64 / 1e6,
    );
    let get = |k: &str| kv.get(k).and_then(|v| value(v));
    let snapshot = [
        ("rdb_bgsave_in_progress", "ember_snapshot_in_progress", "gauge", "A forkless snapshot is being written"),
        (
            "current_save_keys_processed",
            "ember_snapshot_keys_processed",
            "gauge",
            "Keys the running snapshot has written",
        ),
        ("current_save_keys_total", "ember_snapshot_keys_total", "gauge", "Keys the running snapshot will write"),
        (
            "rdb_last_bgsave_time_sec",
            "ember_snapshot_last_duration_seconds",
            "gauge",
            "Duration of the last snapshot (-1: none yet)",
        ),
        ("rdb_last_bgsave_status", "ember_snapshot_last_ok", "gauge", "Whether the last snapshot succeeded"),
        ("rdb_saves", "ember_snapshots_total", "counter", "Snapshots written since start-up"),
    ];
    for (field, name, kind, help) in snapshot {
        if let Some(v) = get(field) {
            out.one(name, kind, help, v);
        }
    }
}
