//! Persistence: the byte formats Ember shares with Redis 7.0. Only this module knows them.
//!
//! * [`rdb`]: RDB version 10 files (SAVE, load at start-up, DEBUG RELOAD), read from and
//!   written to memory buffers so the same code serves files, DUMP payloads and tests.
//! * [`listpack`] and [`lzf`]: the encodings RDB files nest inside strings.

pub mod listpack;
pub mod lzf;
pub mod rdb;
