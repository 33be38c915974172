//! Real client libraries against Ember and redis-server side by side: the same calls through
//! each library's own reply parsing must come out the same. redis-py runs its battery in
//! RESP2 and in RESP3 (tests/clients/redis_py_battery.py).

use std::process::Command;

use crate::util::{ember, redis};

fn battery(port: u16, protocol: u8) -> String {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/redis_py_battery.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(protocol.to_string())
        .output()
        .expect("python3 is required for the client-library tests (see .ci/run)");
    assert!(
        out.status.success(),
        "redis_py_battery.py failed (redis-py is required: pip install redis):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn redis_py_reads_the_same_replies_from_ember_and_redis() {
    let (e, r) = (ember(&[]), redis());
    for protocol in [2, 3] {
        let want = battery(r.port, protocol);
        let got = battery(e.port, protocol);
        assert!(want.lines().count() > 100, "the battery stopped early:\n{want}");
        let diffs: Vec<String> = want
            .lines()
            .zip(got.lines())
            .filter(|(w, g)| w != g)
            .map(|(w, g)| format!("  redis: {w}\n  ember: {g}"))
            .collect();
        assert!(diffs.is_empty(), "RESP{protocol}: redis-py parsed differently:\n{}", diffs.join("\n"));
        assert_eq!(want.lines().count(), got.lines().count());
    }
}

/// ioredis (Node.js), installed by scripts/test.sh into tests/clients/node from its lock file.
#[test]
fn ioredis_reads_the_same_replies_from_ember_and_redis() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/node");
    assert!(
        dir.join("node_modules/ioredis").exists(),
        "ioredis is required: npm ci --prefix tests/clients/node (scripts/test.sh does it)"
    );
    let run = |port: u16| {
        let out = Command::new("node")
            .arg(dir.join("ioredis_battery.js"))
            .arg(port.to_string())
            .output()
            .expect("node is required for the ioredis test (see .ci/run)");
        assert!(out.status.success(), "ioredis_battery.js failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let (e, r) = (ember(&[]), redis());
    let want = run(r.port);
    assert!(want.lines().count() > 50, "the battery stopped early:\n{want}");
    let got = run(e.port);
    for (w, g) in want.lines().zip(got.lines()) {
        assert_eq!(g, w, "ioredis parsed Ember's reply differently from Redis's");
    }
    assert_eq!(want.lines().count(), got.lines().count());
}
