//! Ember: a Redis-compatible in-memory data store.
//!
//! # Layout
//! From the bottom up; a module names only those below it (a test checks there is no cycle).
//! - [`util`]: glob matching, number formatting, the incremental hash table, the clock.
//! - [`cluster`]: Redis Cluster — hash slots, the node table and nodes.conf, routing, the
//!   bus's wire format and protocol logic (its sockets are the server's).
//! - [`alloc`]: the counting allocator behind `used_memory`.
//! - [`logging`]: log lines in redis-server's format.
//! - [`acl`]: users, their rules and permission checks, the command categories.
//! - [`protocol`]: the wire — the bounded request decoder, the `Reply` tree and the one
//!   encoder that lays it out in RESP2 or RESP3, the command feed of the AOF and replicas.
//! - [`types`]: stored values and their encodings.
//! - [`persistence`]: byte formats and files — RDB (reader, writer), the AOF's manifest,
//!   command reader, rewrite and open log (with its file seam), the snapshot child.
//! - [`keyspace`]: databases, the only path to stored values: lazy expiry, access stats, and
//!   change signals and counts (WATCH, caching, waiters, what to log and propagate).
//! - [`scripting`]: the Lua engine behind EVAL and FUNCTION and its bundled libraries.
//! - [`config`]: redis.conf parsing, command-line overrides, the CONFIG GET/SET parameter table.
//! - [`server`]: the mio event loop, sessions, server-wide state, blocked clients, Pub/Sub,
//!   tracking, replication, the cluster bus's sockets, and the orchestration of saving, loading and the AOF (it holds
//!   the state they act on, so it stays here; the formats and files are `persistence`'s).
//!   It reaches the command layer only through the [`server::Executor`] given at start-up.
//! - [`commands`]: the command table (one builder row per command), dispatch (arity, auth,
//!   OOM, MULTI, propagation) and one handler file per family.

pub mod acl;
pub mod alloc;
pub mod cluster;
pub mod commands;
pub mod config;
pub mod crash;
pub mod keyspace;
pub mod logging;
pub mod persistence;
pub mod protocol;
pub mod scripting;
pub mod server;
pub mod types;
pub mod util;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;

/// The layering rules the `# Layout` above states, checked on the source.
#[cfg(test)]
mod layering {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                sources(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }

    /// Top-level module -> the top-level modules its files name as `crate::x`.
    fn imports() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&src, &mut files);
        let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for f in files {
            let rel = f.strip_prefix(&src).unwrap_or(&f);
            let first =
                rel.components().next().map(|c| c.as_os_str().to_string_lossy().into_owned()).unwrap_or_default();
            let module = first.trim_end_matches(".rs").to_string();
            if module == "lib" || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let deps = graph.entry(module.clone()).or_default();
            for part in text.split("crate::").skip(1) {
                let name: String = part.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
                if !name.is_empty() && name != module {
                    deps.insert(name);
                }
            }
        }
        graph
    }

    #[test]
    fn no_cycle_between_top_level_modules() {
        let graph = imports();
        // Depth-first search for a back edge; the path found is printed on failure.
        fn visit(
            m: &str,
            graph: &BTreeMap<String, BTreeSet<String>>,
            path: &mut Vec<String>,
            done: &mut BTreeSet<String>,
        ) {
            if done.contains(m) {
                return;
            }
            if let Some(i) = path.iter().position(|p| p == m) {
                panic!("import cycle: {} -> {m}", path[i..].join(" -> "));
            }
            path.push(m.to_string());
            for d in graph.get(m).into_iter().flatten() {
                visit(d, graph, path, done);
            }
            path.pop();
            done.insert(m.to_string());
        }
        let mut done = BTreeSet::new();
        for m in graph.keys() {
            visit(m, &graph, &mut Vec::new(), &mut done);
        }
        assert!(graph.get("server").is_some_and(|d| !d.contains("commands")), "server must not name commands");
    }

    /// Handlers neither count changes (the keyspace does) nor ask which protocol the client
    /// speaks (the encoder does); only HELLO/RESET, which set it, and the script runner,
    /// which sets Lua's, touch the session's protocol.
    #[test]
    fn handlers_leave_counting_and_protocols_to_their_owners() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/commands");
        let mut files = Vec::new();
        sources(&dir, &mut files);
        for f in files {
            let text = std::fs::read_to_string(&f).unwrap_or_default();
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            assert!(!text.contains("dirty +="), "{name} counts changes by hand");
            if !matches!(name.as_str(), "connection.rs" | "scripting.rs" | "dispatch.rs") {
                assert!(!text.contains("sess.resp"), "{name} reads the client's protocol");
            }
        }
    }

    /// One type family or concern per file, none past 1,200 lines (data generated from
    /// Redis's command descriptions aside: it says so in its first lines).
    #[test]
    fn no_source_file_is_over_1200_lines() {
        let mut files = Vec::new();
        sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
        let long: Vec<String> = files
            .iter()
            .filter_map(|f| {
                let text = std::fs::read_to_string(f).unwrap_or_default();
                let head: String = text.lines().take(3).collect();
                let generated = head.contains("generated by scripts/") && head.contains("do not edit");
                let n = text.lines().count();
                (n > 1200 && !generated).then(|| format!("{} ({n})", f.display()))
            })
            .collect();
        assert!(long.is_empty(), "files over 1,200 lines: {long:?}");
    }
}
