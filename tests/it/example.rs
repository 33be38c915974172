//! The user's own use case, shipped as examples/cache_aside.py, run against a real Ember.

use std::process::Command;

use crate::util::ember;

fn run_example(port: u16, dir: &std::path::Path) -> String {
    run_example_named("cache_aside.py", port, dir, &[])
}

/// Runs examples/`name` with `args` against the server on `port`; its stdout.
fn run_example_named(name: &str, port: u16, dir: &std::path::Path, args: &[&str]) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    let out = Command::new("python3")
        .arg(script)
        .args(args)
        .env("EMBER_PORT", port.to_string())
        .env("EXAMPLE_DB", dir.join("example.db"))
        .output()
        .unwrap_or_else(|e| panic!("python3 is required to run examples/{name}: {e}"));
    assert!(
        out.status.success(),
        "{name} failed (redis-py is required: pip install redis):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn cache_aside_misses_then_hits() {
    let s = ember(&[]);
    let first = run_example(s.port, &s.dir);
    assert!(first.contains("Data stored in Ember:"), "{first}");
    let second = run_example(s.port, &s.dir);
    assert!(second.contains("Data read from Ember:"), "{second}");
    // The cached value is the JSON of the rows, with a TTL.
    let mut c = s.connect();
    let v = c.cmd(&["GET", "example_data"]).as_str();
    assert_eq!(v, r#"[[1, "alpha"], [2, "beta"], [3, "gamma"]]"#);
    let ttl: i64 = c.cmd(&["TTL", "example_data"]).as_str().parse().unwrap();
    assert!(ttl > 0 && ttl <= 60, "ttl {ttl}");
}

#[test]
fn cache_aside_with_leases_queries_the_database_once_per_miss() {
    let s = ember(&[]);
    let first = run_example_named("cache_lease.py", s.port, &s.dir, &[]);
    assert!(first.contains("Data stored in Ember:"), "{first}");
    let second = run_example_named("cache_lease.py", s.port, &s.dir, &[]);
    assert!(second.contains("Data read from Ember:"), "{second}");
    // 50 clients miss the key at once: one of them queries the database.
    let out = run_example_named("cache_lease.py", s.port, &s.dir, &["--stampede", "50"]);
    assert!(out.contains("clients: 50, loader calls: 1"), "{out}");
}
