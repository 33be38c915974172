//! Integration tests: the real `ember-server` binary over TCP, with raw sockets, the `redis`
//! crate, and a real redis-server for the differential suite.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod acl;
mod aof;
mod aof_every_write;
mod blocking;
mod client_libraries;
mod clients;
mod cluster;
mod cluster_bus;
mod config_fuzz;
mod crossserver;
mod diff;
mod eviction;
mod example;
mod grammar_fuzz;
mod hash_ttl;
mod hashes;
mod hostile;
mod lazyfree;
mod leases;
mod lua_debugger;
mod lua_libs_fuzz;
mod lua_security;
mod metrics;
mod persistence;
mod process;
mod protocol;
mod pubsub;
mod replication;
mod replication_psync;
mod scripting;
mod sentinel;
mod streams;
mod tls;
mod util;
