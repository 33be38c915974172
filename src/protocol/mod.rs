//! The wire: request decoding ([`resp`]) and reply encoding ([`reply`]). Nothing here knows
//! about commands or storage.

pub mod feed;
pub mod reply;
pub mod resp;

pub use reply::{Fanout, OK, Reply, encode};
pub use resp::{AheadArgs, Decoder, Limits, ProtocolError, encode_command, split_args};

/// Owned copies of a request's arguments, for what outlives it (a MULTI queue, a blocked or
/// postponed command, a propagated command).
pub fn owned(argv: &[&[u8]]) -> Vec<bytes::Bytes> {
    argv.iter().map(|a| bytes::Bytes::copy_from_slice(a)).collect()
}

/// Arguments held as `Bytes` seen the way handlers take them.
pub fn views(argv: &[bytes::Bytes]) -> Vec<&[u8]> {
    argv.iter().map(|a| &a[..]).collect()
}
