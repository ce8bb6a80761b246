//! What the store holds in memory and how it stays within its shares of the
//! budget: the series map and rollup windows are a cache, forgotten idle
//! series first (module docs of `store.rs`), and what it gives back under the
//! process's memory pressure.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use super::{Head, Pending, SERIES_ENTRY_BYTES, Store};
use crate::tsdb::keys::SeriesId;

impl Store {
    /// Gives back what the store can spare when the process is near its
    /// memory limit: the memtables go to disk, the decoded chunks are
    /// dropped, and idle series are forgotten, longest idle first, until the
    /// series maps hold half their share (both are read back when needed).
    /// Not every idle series: statsd writes every key once a flush interval,
    /// so between two of its flushes all of them look idle, and reading them
    /// all back at the next flush cost more than forgetting them saved.
    pub fn relieve(&self) {
        if let Err(e) = self.db.flush().and_then(|()| self.db.flush_cf(self.chunks())) {
            tracing::warn!(error = %e, "memtable flush under memory pressure failed");
        }
        self.cache.clear();
        // Between taking its batch and planning it, a flush needs its series
        // held; forgetting waits for it.
        let _no_flush = self.flush_lock.lock().expect("flush lock poisoned");
        self.forget_idle(self.series_bytes / 2);
    }

    /// Forgets the series idle longest until the head's maps and the rollup
    /// windows hold at most three quarters of `series_bytes`, the rest being
    /// room for the series the next batches create (each is measured as it
    /// is created, and refused past the share); if busy series alone fill
    /// the share, refuses new series until a later flush finds room.
    pub(super) fn keep_series_within_share(&self) {
        if self.series_memory() > self.series_bytes / 4 * 3 {
            self.forget_idle(self.series_bytes / 4 * 3);
        }
        let windows = self.window_bytes();
        self.window_bytes_seen.store(windows, Ordering::Relaxed);
        let used = self.head.lock().expect("head lock poisoned").bytes + windows;
        let full = used > self.series_bytes;
        if full && !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(used, share = self.series_bytes, "series memory share full of busy series: new series are refused");
        }
        self.full.store(full, Ordering::Relaxed);
    }

    /// What the head's maps and the rollup windows hold, estimated.
    pub(super) fn series_memory(&self) -> usize {
        let windows = self.window_bytes();
        self.head.lock().expect("head lock poisoned").bytes + windows
    }

    /// The same, without waiting for the windows' locks, which a flush holds
    /// while it plans (seconds, for a large one): their size as the last
    /// flush or forgetting left it, plus what the series created since will
    /// open. What ingest measures a new series against, and `/api/status`
    /// reads.
    pub(super) fn series_bytes_seen(&self, head: &Head) -> usize {
        head.bytes + head.created_window_bytes + self.window_bytes_seen.load(Ordering::Relaxed)
    }

    /// What the rollup windows of every shard hold, estimated.
    fn window_bytes(&self) -> usize {
        self.windows.iter().map(|w| w.lock().expect("windows lock poisoned").bytes()).sum()
    }

    /// Forgets idle series, longest idle first, until the series memory is
    /// at most `target`.
    fn forget_idle(&self, target: usize) {
        let window_bytes = self.window_bytes();
        let mut head = self.head.lock().expect("head lock poisoned");
        let used = head.bytes + window_bytes;
        let current = head.generation;
        // Touched before this flush began: nothing of theirs is pending.
        let mut idle: Vec<(u32, SeriesId, usize)> =
            head.ids.iter().filter(|(_, e)| e.touched != current).map(|(name, e)| (e.touched, e.id, name.len())).collect();
        idle.sort_unstable_by_key(|&(touched, _, _)| std::cmp::Reverse(current.wrapping_sub(touched)));
        let windows_each = window_bytes / head.active.len().max(1);
        let mut freed = 0;
        let mut forget = HashSet::new();
        for (_, id, name_len) in idle {
            if used.saturating_sub(freed) <= target {
                break;
            }
            freed += name_len + SERIES_ENTRY_BYTES + windows_each;
            forget.insert(id);
        }
        let Head { ids, active, bytes, .. } = &mut *head;
        ids.retain(|name, e| {
            let keep = !forget.contains(&e.id);
            if !keep {
                *bytes -= name.len() + SERIES_ENTRY_BYTES;
                active.remove(&e.id);
            }
            keep
        });
        self.stats.active_series.set(active.len() as i64);
        drop(head);
        for shard in &self.windows {
            shard.lock().expect("windows lock poisoned").forget(|id| forget.contains(&id));
        }
        self.stats.evicted.add(forget.len() as u64);
        self.window_bytes_seen.store(self.window_bytes(), Ordering::Relaxed);
    }

    /// Bytes held now: RocksDB's block cache and memtables (both column
    /// families), the decoded-chunk cache, the series maps and windows, and
    /// the pending points.
    pub fn memory(&self) -> [(&'static str, u64); 5] {
        let property = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        let chunks = self.db.property_int_value_cf(self.chunks(), "rocksdb.cur-size-all-mem-tables").ok().flatten().unwrap_or(0);
        let (series, pending) = {
            let head = self.head.lock().expect("head lock poisoned");
            (self.series_bytes_seen(&head), (head.pending.capacity() + head.flushing.capacity()) * std::mem::size_of::<Pending>())
        };
        [
            ("tsdb_block_cache", property("rocksdb.block-cache-usage")),
            ("tsdb_memtables", property("rocksdb.cur-size-all-mem-tables") + chunks),
            ("tsdb_chunk_cache", self.cache.bytes() as u64),
            ("tsdb_series", series as u64),
            ("tsdb_head", pending as u64),
        ]
    }
}
