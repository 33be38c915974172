//! Unit tests of the keyspace database.

use super::*;
use crate::types::StrValue;

fn val() -> Value {
    Value::Str(StrValue::from_bytes(b"v"))
}

/// On a replica an expired key stays until its master's DEL: its own clients read it as
/// missing, the master's commands see it, a master's SET replaces it (never a second
/// copy), a write of the replica's own client deletes it first, and DEL removes it.
#[test]
fn a_replica_keeps_expired_keys_for_its_master() {
    let mut db = Db::new();
    db.set_now(1_000);
    db.set_expire_paused(true);
    for k in [&b"a"[..], b"b", b"c"] {
        db.set(k, val(), false);
        db.set_expire(k, Some(1_500));
    }
    db.set_now(2_000);
    db.set_replica_client(true, false);
    assert!(db.get_notouch(b"a").is_none());
    db.set_replica_client(false, true);
    assert!(db.get_notouch(b"a").is_some(), "the master's commands see the key");
    db.set(b"a", val(), false);
    assert_eq!(db.len(), 3, "a master's SET replaced the key");
    db.set_replica_client(true, false);
    db.set_writing(true);
    assert!(db.get_mut(b"b").is_none());
    assert_eq!(db.len(), 2, "a local write deleted the expired key");
    db.set_writing(false);
    db.set_replica_client(false, true);
    assert!(db.remove(b"c").is_some());
    assert_eq!(db.len(), 1);
    assert_eq!(db.expires_len(), 0);
}

/// The hash-keyed expiry index stays in step with the entries through every way a
/// deadline can change or a key can go.
#[test]
fn expiry_index_follows_every_deadline_change() {
    let mut db = Db::new();
    db.set_now(1_000);
    for i in 0..100 {
        let k = format!("k{i}");
        db.set(k.as_bytes(), val(), false);
        assert!(db.set_expire(k.as_bytes(), Some(2_000 + i)));
    }
    // Same deadline for several keys, re-set to the same value, moved, persisted, dropped by
    // SET, removed, taken.
    for i in 0..10 {
        db.set_expire(format!("k{i}").as_bytes(), Some(5_000));
    }
    db.set_expire(b"k10", Some(2_010));
    for i in 11..20 {
        db.set_expire(format!("k{i}").as_bytes(), None);
    }
    db.set(b"k20", val(), false);
    db.set(b"k21", val(), true);
    db.remove(b"k22");
    assert!(db.take(b"k23").is_some_and(|(_, at)| at == Some(2_023)));
    assert_eq!(db.expires_len(), 100 - 9 - 1 - 2);
    // At 2,050 the keys with deadlines 2,021..=2,050 that still have them are due.
    db.set_now(2_050);
    let due = db.expire_due(1000, |_| {});
    assert_eq!(due, 29, "k10, k21, k24..k50 (k20 lost its TTL, k22/k23 are gone)");
    assert!(db.view(b"k21").is_none() && db.view(b"k10").is_none() && db.view(b"k20").is_some());
    db.set_now(10_000);
    let rest = db.expire_due(1000, |_| {});
    assert_eq!(rest, 88 - 29);
    assert_eq!(db.expires_len(), 0);
    assert_eq!(db.len(), 10, "only the persisted k11..k19 and k20 remain");
}
