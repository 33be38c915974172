//! The wire: request decoding ([`resp`]) and reply encoding ([`reply`]). Nothing here knows
//! about commands or storage.

pub mod feed;
pub mod reply;
pub mod resp;

pub use reply::{Fanout, OK, Reply, encode};
pub use resp::{Decoder, Limits, ProtocolError, encode_command, split_args};
