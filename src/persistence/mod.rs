//! Persistence: the byte formats Ember shares with Redis 7.0. Only this module knows them.
//!
//! * [`rdb`]: RDB version 10 files (SAVE, load at start-up, DEBUG RELOAD), read from and
//!   written to memory buffers so the same code serves files, DUMP payloads and tests.
//! * [`aof`]: the AOF command format as Redis reads it; [`aof_rewrite`]: a base file
//!   written as commands.
//! * [`child`]: the snapshot writer process (BGSAVE's and BGREWRITEAOF's child).
//! * [`manifest`]: the multi-part AOF's manifest (which files, in what order).
//! * [`listpack`] and [`lzf`]: the encodings RDB files nest inside strings; [`legacy`]: those
//!   only older files carry (ziplist, zipmap, intset).

pub mod aof;
pub mod aof_log;
pub mod aof_rewrite;
pub mod child;
pub mod legacy;
pub mod listpack;
pub mod lzf;
pub mod manifest;
pub mod rdb;
pub mod rdb_reader;
pub mod rdb_writer;
pub mod snapshot_writer;
