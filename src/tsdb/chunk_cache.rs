//! Decoded chunks, kept for repeated reads. RocksDB merges a chunk's operands
//! on every read of it until a compaction folds them, and the merge encodes
//! (deflates) the chunk each time, so a dashboard refreshing the last hours
//! paid that on every refresh. This cache holds each chunk's decoded points
//! (or its absence) by key, bounded in bytes, and drops a key when a flush
//! writes to it.
//!
//! Background compactions drop expired chunks without telling the cache; that
//! is harmless because reads never ask for a range past its archive's
//! retention. An explicit `Store::compact` clears it.
//!
//! Consistency: a reader takes the epoch before reading RocksDB and inserts
//! only if no flush finished writing meanwhile (every flush bumps the epoch
//! after its write and its invalidations), so a reader that read old data
//! cannot cache it over newer data.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::keys::CHUNK_KEY_LEN;
use crate::telemetry::Counter;

pub type Key = [u8; CHUNK_KEY_LEN];
pub type Points = Arc<Vec<(u32, f64)>>;

/// What an entry costs beyond its points: the key, the Arc and map overhead.
const ENTRY_OVERHEAD: usize = 64;

pub struct ChunkCache {
    capacity: usize,
    epoch: AtomicU64,
    inner: Mutex<Inner>,
    hits: Counter,
    misses: Counter,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Points, foldhash::fast::RandomState>,
    bytes: usize,
}

fn cost(points: &[(u32, f64)]) -> usize {
    ENTRY_OVERHEAD + std::mem::size_of_val(points)
}

impl ChunkCache {
    pub fn new(capacity: usize, hits: Counter, misses: Counter) -> ChunkCache {
        ChunkCache { capacity, epoch: AtomicU64::new(0), inner: Mutex::default(), hits, misses }
    }

    pub fn get(&self, key: &Key) -> Option<Points> {
        let found = self.inner.lock().expect("chunk cache lock poisoned").map.get(key).cloned();
        if found.is_some() {
            self.hits.inc()
        } else {
            self.misses.inc()
        }
        found
    }

    /// Taken before reading RocksDB; hand it back to `insert`.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Caches points read at `epoch`, unless a flush finished since. Over
    /// capacity, arbitrary entries (the hash order) go until a quarter is free.
    pub fn insert(&self, key: Key, points: Points, epoch: u64) {
        let size = cost(&points);
        if size > self.capacity / 4 {
            return;
        }
        let mut inner = self.inner.lock().expect("chunk cache lock poisoned");
        if self.epoch.load(Ordering::Acquire) != epoch {
            return;
        }
        if inner.bytes + size > self.capacity {
            let target = self.capacity * 3 / 4;
            let mut freed = Vec::new();
            let mut bytes = inner.bytes;
            for (k, v) in &inner.map {
                if bytes <= target {
                    break;
                }
                bytes -= cost(v);
                freed.push(*k);
            }
            for k in freed {
                inner.map.remove(&k);
            }
            inner.bytes = bytes;
        }
        if let Some(old) = inner.map.insert(key, points) {
            inner.bytes -= cost(&old);
        }
        inner.bytes += size;
    }

    /// Drops the keys a flush wrote and bumps the epoch; call after the write.
    pub fn invalidate(&self, keys: &[Key]) {
        let mut inner = self.inner.lock().expect("chunk cache lock poisoned");
        for k in keys {
            if let Some(old) = inner.map.remove(k) {
                inner.bytes -= cost(&old);
            }
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Drops everything (after a compaction removed expired chunks).
    pub fn clear(&self) {
        let mut inner = self.inner.lock().expect("chunk cache lock poisoned");
        inner.map.clear();
        inner.bytes = 0;
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub fn bytes(&self) -> usize {
        self.inner.lock().expect("chunk cache lock poisoned").bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::Registry;

    fn cache(capacity: usize) -> ChunkCache {
        let r = Registry::new();
        ChunkCache::new(capacity, r.counter("h", "h", &[]), r.counter("m", "m", &[]))
    }

    fn key(i: u8) -> Key {
        [i; CHUNK_KEY_LEN]
    }

    #[test]
    fn a_flush_between_read_and_insert_keeps_the_stale_read_out() {
        let c = cache(1 << 20);
        let before = c.epoch();
        c.invalidate(&[key(1)]);
        c.insert(key(1), Arc::new(vec![(0, 1.0)]), before);
        assert!(c.get(&key(1)).is_none());
        c.insert(key(1), Arc::new(vec![(0, 2.0)]), c.epoch());
        assert_eq!(c.get(&key(1)).as_deref(), Some(&vec![(0, 2.0)]));
        c.invalidate(&[key(1)]);
        assert!(c.get(&key(1)).is_none());
        assert_eq!(c.bytes(), 0);
    }

    #[test]
    fn stays_within_its_capacity() {
        let c = cache(10 * cost(&[(0, 0.0); 10]));
        for i in 0..100u8 {
            c.insert(key(i), Arc::new(vec![(0, 0.0); 10]), c.epoch());
            assert!(c.bytes() <= 10 * cost(&[(0, 0.0); 10]));
        }
        assert!(c.get(&key(99)).is_some(), "the newest entry is kept");
    }
}
