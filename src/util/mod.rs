//! Small pure helpers shared by several modules: glob matching, number formatting, the hash table.

pub mod dict;
pub mod glob;
pub mod longdouble;
pub mod numfmt;
pub mod sha1;
pub mod smallbytes;
