//! The server: the event loop that owns all I/O and time, and the state commands operate on.

pub mod aof;
pub mod backlog;
pub mod blocking;
pub mod client;
pub mod client_mem;
pub mod cluster_bus;
pub mod event_loop;
pub mod execute;
pub mod failover;
pub mod full_sync;
pub mod http;
pub mod incoming_image;
pub mod instant;
pub mod lag;
pub mod latency;
pub mod lazyfree;
pub mod lease;
pub mod load;
pub mod mem_report;

pub mod oom;
pub mod persist;
mod prefetch;
pub mod pubsub;
pub mod repl;
pub mod replica;
pub mod shutdown;
pub mod socket;
pub mod state;
pub mod sync_stream;
pub mod tls;
pub mod tracking;

pub use client::Session;
pub use event_loop::{Server, ServerError};
pub use execute::Executor;
pub use state::ServerState;
