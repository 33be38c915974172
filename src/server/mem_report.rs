//! Where the memory goes: one set of figures behind INFO memory, MEMORY STATS and MEMORY
//! DOCTOR, computed as Redis's getMemoryOverheadData so the three agree with each other
//! and with Redis's meaning of each line.

use super::ServerState;

pub struct MemoryReport {
    /// Heap bytes live (`used_memory`), its peak, and what start-up left.
    pub used: usize,
    pub peak: usize,
    pub startup: usize,
    pub rss: usize,
    /// jemalloc's allocated, active and resident bytes.
    pub allocator: (usize, usize, usize),
    pub keys: usize,
    /// (db index, key table overhead, expiry index overhead) of each non-empty database.
    pub dbs: Vec<(usize, usize, usize)>,
    /// The replication backlog, the replicas' share of the stream beyond it, and the whole.
    pub backlog: usize,
    pub replicas_share: usize,
    pub repl_total: usize,
    /// Output buffers of replicas and of the other clients.
    pub clients_replicas: usize,
    pub clients_normal: usize,
    pub aof_buffer: usize,
    /// Compiled scripts and function libraries (`used_memory_scripts_*`).
    pub lua_caches: usize,
    pub function_caches: usize,
}

impl MemoryReport {
    pub fn gather(srv: &ServerState) -> MemoryReport {
        let dbs = srv
            .dbs
            .iter()
            .enumerate()
            .filter(|(_, db)| !db.is_empty())
            .map(|(i, db)| {
                let (m, e) = db.table_overhead();
                (i, m, e)
            })
            .collect();
        let (normal, replicas) = srv.client_buffers();
        let (backlog, replicas_share, repl_total) = srv.replication_memory();
        MemoryReport {
            used: crate::alloc::used_memory(),
            peak: crate::alloc::peak_memory(),
            startup: crate::alloc::startup_memory(),
            rss: crate::alloc::rss_bytes(),
            allocator: crate::alloc::allocator_stats(),
            keys: srv.dbs.iter().map(|db| db.len()).sum(),
            dbs,
            backlog,
            replicas_share,
            repl_total,
            clients_replicas: replicas + replicas_share,
            clients_normal: normal,
            aof_buffer: srv.aof.as_ref().map_or(0, |a| a.buffer_allocated()),
            lua_caches: srv.lua.as_deref().map_or(0, |e| e.cache_memory()),
            function_caches: srv.functions.as_deref().map_or(0, |e| e.library_memory()),
        }
    }

    /// Everything but the data itself (Redis's overhead_total).
    pub fn overhead(&self) -> usize {
        self.startup
            + self.backlog
            + self.clients_replicas
            + self.clients_normal
            + self.aof_buffer
            + self.lua_caches
            + self.function_caches
            + self.dbs.iter().map(|(_, m, e)| m + e).sum::<usize>()
    }

    pub fn dataset(&self) -> usize {
        self.used.saturating_sub(self.overhead())
    }

    /// Used memory beyond what start-up left (the base of the percentages).
    pub fn net(&self) -> usize {
        self.used.saturating_sub(self.startup)
    }

    pub fn dataset_percentage(&self) -> f64 {
        percent(self.dataset(), self.net())
    }

    pub fn peak_percentage(&self) -> f64 {
        percent(self.used, self.peak)
    }
}

/// `a` as a percentage of `b`, 0 when `b` is (Redis computes these as C floats).
pub fn percent(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { (a as f32 * 100.0 / b as f32) as f64 }
}

/// `a / b` as Redis's float ratios, 0 when `b` is.
pub fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { (a as f32 / b as f32) as f64 }
}
