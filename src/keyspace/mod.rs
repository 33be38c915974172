//! The keyspace: the databases and the only paths to stored values (see [`db`] for the design).

pub mod db;
pub mod digest;
pub mod evict;
pub mod key;
pub mod notify;
pub mod slot_index;
pub mod snapshot;

pub use db::{Changes, ClientId, Db, Entry};
pub use key::Key;
