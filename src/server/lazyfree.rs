//! Lazy freeing: UNLINK, FLUSHALL / FLUSHDB ASYNC and the `lazyfree-lazy-user-del` /
//! `-user-flush` directives hand what they delete to a background thread when freeing it
//! would take long (Redis's free effort above 64 allocations), so the event loop does not
//! stall on a ten-million-element set. Small values are freed at once, as in Redis, where a
//! hand-off would cost more than the free. INFO reports `lazyfree_pending_objects` and
//! `lazyfreed_objects`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Sender, channel};

use tracing::warn;

use crate::types::Value;

/// Redis's LAZYFREE_THRESHOLD.
const THRESHOLD: usize = 64;

/// Something to drop off the event loop, and how many objects it counts for.
type Garbage = (Box<dyn Send>, u64);

#[derive(Default)]
pub struct LazyFree {
    tx: Option<Sender<Garbage>>,
    pending: Arc<AtomicU64>,
    freed: Arc<AtomicU64>,
}

impl LazyFree {
    /// Frees `v` on the background thread if that is worth it, else here.
    pub fn free_value(&mut self, v: Value) {
        if v.free_effort() > THRESHOLD {
            self.hand_off(Box::new(v), 1);
        }
    }

    /// Frees a whole database's contents (`objects` keys) on the background thread.
    pub fn free_all(&mut self, contents: Box<dyn Send>, objects: u64) {
        if objects > 0 {
            self.hand_off(contents, objects);
        }
    }

    fn hand_off(&mut self, garbage: Box<dyn Send>, objects: u64) {
        let tx = match &self.tx {
            Some(tx) => tx,
            None => {
                let (tx, rx) = channel::<Garbage>();
                let (pending, freed) = (Arc::clone(&self.pending), Arc::clone(&self.freed));
                let spawned = std::thread::Builder::new().name("lazyfree".into()).spawn(move || {
                    while let Ok((garbage, objects)) = rx.recv() {
                        drop(garbage);
                        pending.fetch_sub(objects, Ordering::Relaxed);
                        freed.fetch_add(objects, Ordering::Relaxed);
                    }
                });
                if let Err(e) = spawned {
                    // Without the thread everything is freed here, as with lazy freeing off.
                    warn!("cannot start the lazy free thread: {e}");
                    return;
                }
                self.tx.insert(tx)
            }
        };
        self.pending.fetch_add(objects, Ordering::Relaxed);
        if let Err(returned) = tx.send((garbage, objects)) {
            self.pending.fetch_sub(objects, Ordering::Relaxed);
            drop(returned);
        }
    }

    /// Objects handed off and not yet freed.
    pub fn pending(&self) -> u64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Objects freed in the background since start-up (or CONFIG RESETSTAT).
    pub fn freed(&self) -> u64 {
        self.freed.load(Ordering::Relaxed)
    }

    pub fn reset_stats(&self) {
        self.freed.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Value;

    #[test]
    fn big_values_go_to_the_thread_small_ones_do_not() {
        let mut lf = LazyFree::default();
        let mut small = crate::types::set::SetValue::for_member(b"a");
        small.add(b"a", 512);
        lf.free_value(Value::Set(small));
        assert_eq!(lf.freed() + lf.pending(), 0);
        let mut big = crate::types::set::SetValue::for_member(b"a");
        for i in 0..1000 {
            big.add(format!("member-{i}").as_bytes(), 512);
        }
        lf.free_value(Value::Set(big));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while lf.freed() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!((lf.freed(), lf.pending()), (1, 0));
        lf.reset_stats();
        assert_eq!(lf.freed(), 0);
    }
}
