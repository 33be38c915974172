//! Ember: a Redis-compatible in-memory data store.
//!
//! # Layout
//! - [`config`]: redis.conf parsing, command-line overrides, the CONFIG GET/SET parameter table.
//! - [`protocol`]: the wire — incremental request decoder and the RESP2/RESP3 reply encoder.
//! - [`commands`]: the command table, dispatch, and one handler file per command family.
//! - [`keyspace`]: databases; the only path to stored values (lazy expiry, WATCH signals, stats).
//! - [`types`]: stored values and their encodings.
//! - [`server`]: the mio event loop, client sessions and server-wide state.
//! - [`util`]: glob matching, number formatting, the incremental hash table.
//! - [`alloc`]: the counting allocator behind `used_memory`.
//! - [`logging`]: log lines in redis-server's format.

pub mod alloc;
pub mod commands;
pub mod config;
pub mod keyspace;
pub mod logging;
pub mod persistence;
pub mod protocol;
pub mod server;
pub mod types;
pub mod util;

#[global_allocator]
static GLOBAL: alloc::Counting = alloc::Counting;
