//! Typed access to stored values, one rule for every collection type.
//!
//! [`read`] gives the value at a key as the type a command expects (WRONGTYPE otherwise).
//! [`modify`] writes through the keyspace's quiet access and then says what changed: the
//! number of elements the write added or removed counts as that many changes (WATCH, client
//! caches and blocked clients are signalled once), a write that left the size alone counts
//! nothing, and a collection left empty is deleted, as Redis never keeps empty ones. Writes
//! that change a collection without changing its size (LSET, ZINCRBY, HINCRBY) take
//! [`Db::get_mut`], which always counts one change.

use crate::keyspace::Db;
use crate::types::{HashValue, ListValue, SetValue, Value, ZSetValue};

use super::CmdError;

/// A stored type commands reach through [`read`] and [`modify`].
pub trait Typed: Sized {
    fn of(v: &Value) -> Option<&Self>;
    fn of_mut(v: &mut Value) -> Option<&mut Self>;
    /// Elements held: what [`modify`] compares before and after.
    fn size(&self) -> usize;
}

macro_rules! typed {
    ($t:ty, $of:ident, $of_mut:ident, $size:expr) => {
        impl Typed for $t {
            fn of(v: &Value) -> Option<&Self> {
                v.$of()
            }
            fn of_mut(v: &mut Value) -> Option<&mut Self> {
                v.$of_mut()
            }
            fn size(&self) -> usize {
                $size(self)
            }
        }
    };
}

typed!(ListValue, as_list, as_list_mut, ListValue::len);
typed!(SetValue, as_set, as_set_mut, SetValue::len);
typed!(ZSetValue, as_zset, as_zset_mut, ZSetValue::len);
typed!(HashValue, as_hash, as_hash_mut, HashValue::len);

/// The value at `key` as a `T` (a read: it touches the key's access time), None if missing.
pub fn read<'a, T: Typed>(db: &'a mut Db, key: &[u8]) -> Result<Option<&'a T>, CmdError> {
    match db.get(key) {
        None => Ok(None),
        Some(v) => T::of(v).map(Some).ok_or(CmdError::WrongType),
    }
}

/// Applies `f` to the `T` at `key` and records what it changed (see the module doc).
/// None if the key is missing.
pub fn modify<T: Typed, R>(db: &mut Db, key: &[u8], f: impl FnOnce(&mut T) -> R) -> Result<Option<R>, CmdError> {
    if read::<T>(db, key)?.is_none() {
        return Ok(None);
    }
    let Some(v) = db.get_mut_quiet(key).and_then(T::of_mut) else { return Ok(None) };
    let before = v.size();
    let r = f(v);
    let after = v.size();
    db.signal_changes(key, before.abs_diff(after));
    if after == 0 {
        db.remove(key);
    }
    Ok(Some(r))
}
