//! The stored values. Each type hides its encodings behind methods; `encoding_name()` exists only
//! for OBJECT ENCODING and the persistence writer.

pub mod geohash;
pub mod hash;
pub mod hash_pack;
pub mod hll;
pub mod list;
pub mod packed;
pub mod scoretree;
pub mod set;
pub mod stream;
pub mod string;
pub mod zset;
pub mod zset_lex;

pub use hash::{HashLimits, HashValue};
pub use list::{End, Fill, ListValue};
pub use set::SetValue;
pub use string::StrValue;
pub use zset::{ZSetValue, ZsetLimits};

/// A stored value: 16 bytes (a short string inline, anything else one thin pointer), so a
/// keyspace node is 56 bytes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Str(StrValue),
    Hash(HashValue),
    Set(SetValue),
    List(Box<ListValue>),
    ZSet(ZSetValue),
    Stream(Box<stream::Stream>),
}

impl Value {
    /// The name TYPE reports.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Str(_) => "string",
            Value::Hash(_) => "hash",
            Value::Set(_) => "set",
            Value::List(_) => "list",
            Value::ZSet(_) => "zset",
            Value::Stream(_) => "stream",
        }
    }

    /// The name OBJECT ENCODING reports.
    pub fn encoding_name(&self) -> &'static str {
        match self {
            Value::Str(s) => s.encoding_name(),
            Value::Hash(h) => h.encoding_name(),
            Value::Set(s) => s.encoding_name(),
            Value::List(l) => l.encoding_name(),
            Value::ZSet(z) => z.encoding_name(),
            Value::Stream(_) => "stream",
        }
    }

    /// DEBUG HTSTATS-KEY: the statistics of the hash table holding the value, if one does.
    pub fn table_stats(&self) -> Option<String> {
        match self {
            Value::Hash(h) => h.table_stats(),
            Value::Set(s) => s.table_stats(),
            Value::ZSet(z) => z.table_stats(),
            Value::Str(_) | Value::List(_) | Value::Stream(_) => None,
        }
    }

    /// About how many allocations freeing this value takes (Redis's lazyfreeGetFreeEffort):
    /// one for a compact encoding, else one per element; lists one per ~128 elements (a
    /// quicklist node), streams one per node plus each group and its pending entries.
    pub fn free_effort(&self) -> usize {
        match self {
            Value::Str(_) => 1,
            Value::Hash(h) if h.is_packed() => 1,
            Value::Set(s) if s.is_ints() => 1,
            Value::ZSet(z) if z.is_packed() => 1,
            Value::Hash(h) => h.len(),
            Value::Set(s) => s.len(),
            Value::ZSet(z) => z.len(),
            Value::List(l) => 1 + l.len() / 128,
            Value::Stream(s) => {
                let groups = s.groups.values().next().map_or(0, |g| s.groups.len() * (1 + g.pel.len()));
                s.node_count() + groups
            }
        }
    }

    /// Starts loading a member's entry in a large collection's own table: its bucket slot
    /// (`node` false), then, once the slots of a batch are on their way, its first node
    /// (`node` true). `h` is the member's hash (every table hashes alike). Compact encodings
    /// have nothing to prefetch: they came with the value.
    pub fn prefetch_member(&self, h: usize, node: bool) {
        match self {
            Value::Hash(v) => v.prefetch_member(h, node),
            Value::Set(v) => v.prefetch_member(h, node),
            Value::ZSet(v) => v.prefetch_member(h, node),
            _ => {}
        }
    }

    pub fn as_hash(&self) -> Option<&HashValue> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }

    pub fn as_zset(&self) -> Option<&ZSetValue> {
        match self {
            Value::ZSet(z) => Some(z),
            _ => None,
        }
    }

    pub fn as_zset_mut(&mut self) -> Option<&mut ZSetValue> {
        match self {
            Value::ZSet(z) => Some(z),
            _ => None,
        }
    }

    pub fn as_list(&self) -> Option<&ListValue> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_list_mut(&mut self) -> Option<&mut ListValue> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    pub fn as_set(&self) -> Option<&SetValue> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_set_mut(&mut self) -> Option<&mut SetValue> {
        match self {
            Value::Set(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_stream(&self) -> Option<&stream::Stream> {
        match self {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_stream_mut(&mut self) -> Option<&mut stream::Stream> {
        match self {
            Value::Stream(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_hash_mut(&mut self) -> Option<&mut HashValue> {
        match self {
            Value::Hash(h) => Some(h),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// The per-key footprint depends on these sizes; a change should be deliberate.
    #[test]
    fn value_sizes() {
        use std::mem::size_of;
        // 16: the string's tag byte leaves room for one pointer (every other variant).
        assert_eq!(size_of::<super::Value>(), 16);
        // A `listpackex` hash's box: within jemalloc's 32-byte class.
        assert_eq!(size_of::<super::hash::Boxed>(), 24);
    }
}
