//! The metrics endpoint (`metrics-port`): scraped after a known workload and parsed by
//! Prometheus's own Python parser (prometheus_client), its values checked against INFO; and
//! what the port does with bytes that are not HTTP.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use crate::util::*;

/// GET `path` on the metrics port: (status line, body). Empty status if nothing came back.
fn http_get(port: u16, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the metrics port");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    let text = String::from_utf8_lossy(&got).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) => (head.lines().next().unwrap_or("").to_string(), body.to_string()),
        None => (text.lines().next().unwrap_or("").to_string(), String::new()),
    }
}

#[test]
fn a_scrape_parses_with_prometheus_client_and_agrees_with_info() {
    let metrics_port = free_port();
    let srv = ember(&["--metrics-port", &metrics_port.to_string()]);
    let mut c = srv.connect();
    // A known workload: writes, hits, misses, keys with TTLs in two databases, an error, a
    // snapshot.
    for i in 0..100 {
        c.cmd(&["SET", &format!("k{i}"), "v"]);
    }
    for i in 0..50 {
        assert_eq!(c.cmd(&["GET", &format!("k{i}")]).as_str(), "v");
    }
    for i in 0..20 {
        c.cmd(&["GET", &format!("missing{i}")]);
    }
    for i in 0..10 {
        c.cmd(&["SETEX", &format!("ttl{i}"), "1000", "v"]);
    }
    c.cmd(&["SELECT", "3"]);
    for i in 0..7 {
        c.cmd(&["HSET", &format!("h{i}"), "f", "v"]);
    }
    c.cmd(&["SELECT", "0"]);
    assert!(c.cmd(&["NOSUCHCOMMAND"]).text().starts_with("-ERR"));
    c.cmd(&["CONFIG", "SET", "maxmemory", "100mb"]);
    c.cmd(&["BGSAVE"]);
    assert!(eventually(Duration::from_secs(20), || info_field(&mut c, "persistence", "rdb_bgsave_in_progress") == 0
        && info_field(&mut c, "persistence", "rdb_saves") >= 1));

    let script = r#"
import sys, urllib.request, redis
from prometheus_client.parser import text_string_to_metric_families
port, mport = int(sys.argv[1]), int(sys.argv[2])
r = redis.Redis(port=port)
info = r.info('everything')
resp = urllib.request.urlopen(f'http://127.0.0.1:{mport}/metrics')
assert resp.headers['Content-Type'].startswith('text/plain; version=0.0.4'), resp.headers['Content-Type']
fams = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
def val(metric, **labels):
    for f in fams.values():
        for s in f.samples:
            if s.name == metric and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    raise AssertionError(f'no sample {metric} {labels}')
def same(metric, expected, **labels):
    got = val(metric, **labels)
    assert got == expected, f'{metric}{labels}: scraped {got}, INFO says {expected}'
same('redis_up', 1)
assert val('redis_instance_info', role='master', redis_version='7.0.15') == 1
same('redis_keyspace_hits_total', info['keyspace_hits'])
same('redis_keyspace_misses_total', info['keyspace_misses'])
assert info['keyspace_hits'] == 50 and info['keyspace_misses'] == 20, info
same('redis_db_keys', 110, db='db0')
same('redis_db_keys_expiring', 10, db='db0')
same('redis_db_keys', 7, db='db3')
same('redis_db_keys', 0, db='db1')
same('redis_memory_max_bytes', 100 * 1024 * 1024)
same('redis_connected_clients', info['connected_clients'])
same('redis_commands_total', 100, cmd='set')
same('redis_commands_total', 70, cmd='get')
same('redis_commands_total', info['cmdstat_hset']['calls'], cmd='hset')
same('redis_commands_duration_seconds_total', info['cmdstat_set']['usec'] / 1e6, cmd='set')
same('redis_errors_total', info['errorstat_ERR']['count'], err='ERR')
same('redis_expired_keys_total', info['expired_keys'])
same('redis_evicted_keys_total', info['evicted_keys'])
same('redis_connected_slaves', 0)
same('redis_master_repl_offset', info['master_repl_offset'])
same('redis_rdb_last_save_timestamp_seconds', info['rdb_last_save_time'])
same('redis_aof_enabled', 0)
assert fams['redis_commands'].type == 'counter' and fams['redis_db_keys'].type == 'gauge'
# The per-command histogram: cumulative buckets, +Inf equal to the count, the count equal
# to the calls.
h = fams['ember_command_latency_seconds']
assert h.type == 'histogram'
buckets = [s for s in h.samples if s.name.endswith('_bucket') and s.labels['cmd'] == 'get']
assert buckets and all(a.value <= b.value for a, b in zip(buckets, buckets[1:])), buckets
assert buckets[-1].labels['le'] == '+Inf' and buckets[-1].value == 70
same('ember_command_latency_seconds_count', 70, cmd='get')
assert val('ember_expire_lag_seconds', quantile='0.99') >= 0
assert val('ember_eventloop_stall_seconds') > 0
assert val('ember_snapshots_total') >= 1 and val('ember_snapshot_last_ok') == 1
same('ember_snapshot_in_progress', 0)
print('ok')
"#;
    let out = Command::new("python3")
        .args(["-c", script, &srv.port.to_string(), &metrics_port.to_string()])
        .output()
        .expect("python3 is required for the metrics test (see .ci/run)");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "the scrape does not parse or does not agree with INFO (redis-py and prometheus_client are required: pip install redis prometheus_client):\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_metrics_port_refuses_what_is_not_http_and_the_resp_port_carries_on() {
    let metrics_port = free_port();
    let srv = ember(&["--metrics-port", &metrics_port.to_string()]);
    let mut c = srv.connect();
    assert_eq!(c.cmd(&["SET", "k", "v"]).as_str(), "OK");

    let (status, _) = http_get(metrics_port, b"*1\r\n$4\r\nPING\r\n");
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let (status, _) = http_get(metrics_port, &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    let mut endless = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    endless.extend(std::iter::repeat_n(b'a', 20_000));
    let (status, _) = http_get(metrics_port, &endless);
    assert!(status.starts_with("HTTP/1.1 431") || status.is_empty(), "{status}");
    let (status, _) = http_get(metrics_port, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 405 Method Not Allowed");
    let (status, _) = http_get(metrics_port, b"GET /nothing HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 404 Not Found");
    let (status, body) = http_get(metrics_port, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));

    // Connections that never send a request hold only themselves.
    let idle: Vec<TcpStream> = (0..80).map(|_| TcpStream::connect(("127.0.0.1", metrics_port)).unwrap()).collect();
    assert_eq!(c.cmd(&["GET", "k"]).as_str(), "v");
    drop(idle);
    assert!(
        eventually(Duration::from_secs(10), || {
            http_get(metrics_port, b"GET /metrics HTTP/1.0\r\n\r\n").0 == "HTTP/1.1 200 OK"
        }),
        "the endpoint did not recover once the idle connections went"
    );
    let (_, body) = http_get(metrics_port, b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(body.contains("redis_db_keys{db=\"db0\"} 1\n"), "{body}");

    // The port moves with CONFIG SET, and 0 closes it.
    let moved = free_port();
    assert_eq!(c.cmd(&["CONFIG", "SET", "metrics-port", &moved.to_string()]).as_str(), "OK");
    assert_eq!(http_get(moved, b"GET /metrics HTTP/1.1\r\n\r\n").0, "HTTP/1.1 200 OK");
    assert!(TcpStream::connect(("127.0.0.1", metrics_port)).is_err());
    assert_eq!(c.cmd(&["CONFIG", "SET", "metrics-port", "0"]).as_str(), "OK");
    assert!(TcpStream::connect(("127.0.0.1", moved)).is_err());
    assert_eq!(c.cmd(&["PING"]).as_str(), "PONG");
}

/// INFO's rates and allocator lines are measured, not constants: under a steady load
/// instantaneous_ops_per_sec and the input rate rise above 0 and fall back once it stops;
/// the allocator's layers add up as their ratios say.
#[test]
fn info_rates_follow_the_load_and_allocator_lines_add_up() {
    let srv = ember(&[]);
    let mut c = Conn::new(srv.port);
    let port = srv.port;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let load = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut l = Conn::new(port);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                l.cmd(&["SET", "k", "v"]);
            }
        })
    };
    let busy = eventually(Duration::from_secs(10), || {
        info_field(&mut c, "stats", "instantaneous_ops_per_sec") > 100
            && info_str(&mut c, "stats", "instantaneous_input_kbps").parse::<f64>().is_ok_and(|k| k > 0.0)
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let _ = load.join();
    assert!(busy, "no rate under load: {}", c.cmd(&["INFO", "stats"]).as_str());
    assert!(info_field(&mut c, "stats", "total_reads_processed") > 100);
    assert!(info_field(&mut c, "stats", "total_writes_processed") > 100);
    // Only this connection's INFO calls are left: the window drains to a few a second.
    let quiet = eventually(Duration::from_secs(10), || {
        // Polled ten times a second, so the polls themselves stay a small rate.
        std::thread::sleep(Duration::from_millis(100));
        info_field(&mut c, "stats", "instantaneous_ops_per_sec") < 50
    });
    assert!(quiet, "the rate did not fall once the load stopped");
    let allocated = info_field(&mut c, "memory", "allocator_allocated");
    let active = info_field(&mut c, "memory", "allocator_active");
    let resident = info_field(&mut c, "memory", "allocator_resident");
    assert!(allocated > 0 && allocated <= active && active <= resident, "{allocated} {active} {resident}");
    let frag: f64 = info_str(&mut c, "memory", "allocator_frag_ratio").parse().unwrap();
    assert!(frag >= 1.0, "allocator_frag_ratio {frag}");
    assert!(info_field(&mut c, "memory", "total_system_memory") > 1 << 20);
    // MEMORY STATS reports the script cache as INFO does.
    c.cmd(&["SCRIPT", "LOAD", "return 'cached'"]);
    let eval_cache = info_field(&mut c, "memory", "used_memory_scripts_eval");
    assert!(eval_cache > 0);
    let stats = c.cmd(&["MEMORY", "STATS"]);
    let kids = stats.children();
    let at = kids.iter().position(|k| k.text().contains("lua.caches")).expect("lua.caches");
    assert_eq!(kids[at + 1].text(), format!(":{eval_cache}\r\n"));
    // Overhead and data set split used memory the same way in INFO and MEMORY STATS (one
    // report behind both), and the data set is not swallowed by the overhead estimate.
    for i in 0..20_000 {
        c.send(&["SET", &format!("key:{i}"), "a value of some thirty-two bytes"]);
    }
    for _ in 0..20_000 {
        c.read();
    }
    let field = |c: &mut Conn, name: &str| {
        let stats = c.cmd(&["MEMORY", "STATS"]);
        let kids = stats.children();
        let at = kids.iter().position(|k| k.text().contains(name)).expect(name);
        kids[at + 1].text().trim_start_matches(':').trim().parse::<u64>().expect("integer")
    };
    let overhead = info_field(&mut c, "memory", "used_memory_overhead");
    assert_eq!(field(&mut c, "overhead.total"), overhead);
    let dataset = info_field(&mut c, "memory", "used_memory_dataset");
    assert!(dataset >= 20_000 * 32, "data set {dataset} bytes for 20,000 32-byte values (overhead {overhead})");
    assert!(field(&mut c, "dataset.bytes").abs_diff(dataset) < 64 * 1024);
}
