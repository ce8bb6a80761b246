//! The store: RocksDB opened with a catalog (default column family) and a
//! chunk column family, an in-memory head of recent points, and the flusher
//! that moves the head into chunks with whisper's archive choice and rollups.
//!
//! Write path: `ingest` resolves names to ids (the head caches every series
//! touched since start) and appends `(id, ts, value)` to the head's pending
//! log, one lock per batch. `flush` (every second from the appliance, and on
//! stop) takes the log, assigns each point to the finest archive that still
//! covers its age, aligns it, lets the later write win, adds rollups, and
//! writes one RocksDB merge operand per (series, archive, chunk) in a single
//! WriteBatch with the WAL on. So a `kill -9` loses at most the points of the
//! last flush interval, and an orderly stop loses nothing.
//!
//! Memory: the head's name map and the rollup windows are a cache of the
//! catalog and of stored points, kept within `Tuning::series_bytes`. Past it,
//! a flush forgets the series idle longest (the next point of one reads the
//! catalog again, its next rollup the stored points); when every series is
//! busy, new series are refused and counted until there is room. The pending
//! points are bounded by `Tuning::head_points`: the TCP inputs flush before
//! reading more past it.
//!
//! Read path: `fetch` picks the archive as whisper does and overlays the
//! pending points on what RocksDB returns, so a point is readable at once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DB, DBCompressionType, IteratorMode, LruCacheOptions, Options, ReadOptions,
    WriteBatch,
};

use super::StoreError;
use super::chunk_cache::{ChunkCache, Key, Points};
use super::index::{self, SeriesRecord};
use super::keys::{self, SeriesId};
use super::limits::{Limit, Limits, Usage};
use super::rollup::{Stored, Windows, Writes};
use super::schema::{Policy, Rules};
use super::value;
use crate::telemetry::accounts::{self, Account};
use crate::telemetry::{Counter, Gauge, Registry};

mod catalog;
mod fetch;
mod memory;

type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

const CHUNKS: &str = "chunks";
/// Slots per chunk: 2 h at 10 s, 12 h at 1 min, 5 d at 10 min. Big enough that
/// key overhead is ~0.05 byte/point, small enough that a read of a short range
/// decodes little it does not need.
const SLOTS_PER_CHUNK: u32 = 720;
/// Points may be this far in the future (clock skew); later ones are dropped
/// and counted (compat-spec 3.6 item 11).
pub const MAX_FUTURE_S: u32 = 600;
/// Flush planning runs on this many threads, one shard of series each: the
/// machine's two cores (ingest threads sleep on backpressure meanwhile).
const FLUSH_SHARDS: usize = 2;
/// A flush writes its operands to RocksDB in batches of about this size.
const WRITE_SLICE: usize = 4 << 20;

/// How the store is sized; shares of the memory budget.
#[derive(Clone, Debug)]
pub struct Tuning {
    pub block_cache_bytes: usize,
    pub memtable_bytes: usize,
    /// Decoded chunks kept for repeated reads (`chunk_cache.rs`).
    pub chunk_cache_bytes: usize,
    /// The head's series map and the rollup windows (module docs).
    pub series_bytes: usize,
    /// Unflushed points past which ingest flushes before taking more.
    pub head_points: usize,
    /// Per-prefix series limits.
    pub limits: Vec<Limit>,
}

impl Default for Tuning {
    /// Small caches and room for a million series: tests and tools.
    fn default() -> Tuning {
        Tuning {
            block_cache_bytes: 8 << 20,
            memtable_bytes: 8 << 20,
            chunk_cache_bytes: 8 << 20,
            series_bytes: 256 << 20,
            head_points: 4 << 20,
            limits: Vec::new(),
        }
    }
}

/// What a series costs in the head's maps beyond its name: the map entries
/// (hash table slots at 7/8 load) and the name's allocation.
const SERIES_ENTRY_BYTES: usize = 80;

/// A point to ingest: canonical name, timestamp (epoch s), value.
#[derive(Clone, Copy, Debug)]
pub struct Incoming<'a> {
    pub name: &'a str,
    pub ts: i64,
    pub value: f64,
}

/// What `ingest` did with a batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Ingested {
    pub accepted: u64,
    pub too_old: u64,
    pub future: u64,
    /// Points of new series refused because their prefix holds its
    /// `[[carbon.series_limits]]` bound.
    pub refused_limit: u64,
    /// Points of new series refused because the series share of the memory
    /// budget is full of busy series.
    pub refused_memory: u64,
}

pub struct Store {
    db: Arc<DB>,
    rules: Rules,
    head: Mutex<Head>,
    /// Serialises flushes.
    flush_lock: Mutex<()>,
    /// Serialises event id allocation.
    event_lock: Mutex<()>,
    /// Rollup windows, sharded by series id so a flush plans shards in parallel.
    windows: Vec<Mutex<Windows>>,
    /// The compaction filter's notion of now; 0 = the wall clock. Only
    /// `compact_at` pins it, so retention can be tested without waiting.
    clock: Arc<AtomicU32>,
    /// Set while `compact` runs: every merge then folds into one chunk.
    finishing: Arc<AtomicBool>,
    cache: ChunkCache,
    stats: Stats,
    series_bytes: usize,
    head_points: usize,
    /// Set when a flush could not bring the series maps within
    /// `series_bytes`: new series are refused until one can.
    full: AtomicBool,
    /// What the rollup windows held at the last flush: with the head's
    /// maps, what a new series is measured against while a batch creates
    /// them (the windows' own locks are not taken on the ingest path).
    window_bytes_seen: AtomicUsize,
    limits: Limits,
}

#[derive(Default)]
struct Head {
    /// foldhash with a per-process random seed: several times faster than
    /// SipHash on these short keys, and still not predictable by a sender
    /// who wants to collide names.
    /// The value carries the policy slot too, so a point costs one lookup.
    ids: FastMap<Box<str>, Entry>,
    /// Policy per active series, by index into `policies`.
    active: FastMap<SeriesId, u16>,
    policies: Vec<Arc<Policy>>,
    /// The longest retention of each policy, in seconds.
    max_retention: Vec<u64>,
    pending: Vec<Pending>,
    /// The batch the flusher is writing: still overlaid on reads until written.
    flushing: Arc<Vec<Pending>>,
    created: Vec<(SeriesId, Box<str>, u16)>,
    /// What the windows of `created` will hold once a flush opens them.
    created_window_bytes: usize,
    next_id: SeriesId,
    /// Flushes started so far; an entry last touched before the current one
    /// has no pending point and may be forgotten.
    generation: u32,
    /// What `ids` and `active` hold, estimated.
    bytes: usize,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    id: SeriesId,
    slot: u16,
    touched: u32,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    id: SeriesId,
    ts: u32,
    value: f64,
}

struct Stats {
    points: Counter,
    too_old: Counter,
    future: Counter,
    series_created: Counter,
    refused_memory: Counter,
    evicted: Counter,
    flushes: Counter,
    active_series: Gauge,
    pending: Gauge,
}

impl Store {
    pub fn open(dir: &Path, rules: Rules, tuning: &Tuning, registry: &Registry) -> Result<Store, StoreError> {
        let _account = accounts::enter(Account::Tsdb);
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Io(format!("cannot create {}: {e}", dir.display())))?;
        // Four shards, not RocksDB's default of one per 512 KB: a shard takes
        // a block larger than its free room anyway, so many small shards let
        // a cache of a few MiB hold half again its capacity in index blocks.
        let mut cache_opts = LruCacheOptions::default();
        cache_opts.set_capacity(tuning.block_cache_bytes.max(1 << 20));
        cache_opts.set_num_shard_bits(2);
        let cache = Cache::new_lru_cache_opts(&cache_opts);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        table.set_bloom_filter(10.0, false);
        table.set_cache_index_and_filter_blocks(true);

        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        db_opts.set_db_write_buffer_size(tuning.memtable_bytes.max(4 << 20));
        db_opts.set_max_background_jobs(2);
        db_opts.set_keep_log_file_num(3);
        db_opts.set_max_total_wal_size(256 << 20);
        db_opts.set_block_based_table_factory(&table);
        db_opts.set_compression_type(DBCompressionType::Lz4);

        let mut chunk_opts = Options::default();
        chunk_opts.set_block_based_table_factory(&table);
        let merger = value::Merger::default();
        let finishing = merger.finishing.clone();
        chunk_opts.set_merge_operator(
            CHUNKS,
            move |key: &[u8], existing: Option<&[u8]>, operands: &rocksdb::MergeOperands| merger.full_merge(key, existing, operands),
            value::partial_merge,
        );
        // Chunk bodies are already entropy-coded (chunk.rs); LZ4 would only cost CPU.
        chunk_opts.set_compression_type(DBCompressionType::None);
        let clock = Arc::new(AtomicU32::new(0));
        let filter_clock = clock.clone();
        chunk_opts.set_compaction_filter("retention", move |_level: u32, key: &[u8], v: &[u8]| {
            let pinned = filter_clock.load(Ordering::Relaxed);
            value::filter(if pinned == 0 { unix_now() } else { pinned }, key, v)
        });
        // Revisit every file daily so expired chunks go even where nothing is written.
        chunk_opts.set_periodic_compaction_seconds(86_400);
        chunk_opts.set_write_buffer_size((tuning.memtable_bytes / 2).max(4 << 20));

        let cfs = vec![ColumnFamilyDescriptor::new(CHUNKS, chunk_opts)];
        let db = DB::open_cf_descriptors(&db_opts, dir, cfs)?;
        let next_id = match db.get(keys::meta("next_id"))? {
            Some(v) => u32::from_be_bytes(v.as_slice().try_into().map_err(|_| StoreError::Corrupt("next_id".into()))?),
            None => 1,
        };
        let stats = Stats {
            points: registry.counter("instantops_tsdb_points_total", "Points accepted by the time-series store.", &[]),
            too_old: registry.counter("instantops_tsdb_dropped_total", "Points dropped by the store.", &[("reason", "too_old")]),
            future: registry.counter("instantops_tsdb_dropped_total", "Points dropped by the store.", &[("reason", "future")]),
            series_created: registry.counter("instantops_tsdb_series_created_total", "Series created.", &[]),
            refused_memory: registry.counter("instantops_tsdb_dropped_total", "Points dropped by the store.", &[("reason", "memory")]),
            evicted: registry.counter(
                "instantops_tsdb_series_evicted_total",
                "Idle series forgotten by the head to stay within its memory share (read back from the catalog when written again).",
                &[],
            ),
            flushes: registry.counter("instantops_tsdb_flushes_total", "Head flushes into RocksDB.", &[]),
            active_series: registry.gauge("instantops_tsdb_active_series", "Series held in the head.", &[]),
            pending: registry.gauge("instantops_tsdb_pending_points", "Points ingested but not yet flushed.", &[]),
        };
        let limits = Limits::open(&db, &tuning.limits, registry)?;
        Ok(Store {
            series_bytes: tuning.series_bytes,
            head_points: tuning.head_points,
            full: AtomicBool::new(false),
            window_bytes_seen: AtomicUsize::new(0),
            limits,
            db: Arc::new(db),
            rules,
            head: Mutex::new(Head { next_id, ..Head::default() }),
            flush_lock: Mutex::new(()),
            event_lock: Mutex::new(()),
            windows: (0..FLUSH_SHARDS).map(|_| Mutex::new(Windows::default())).collect(),
            clock,
            finishing,
            cache: ChunkCache::new(
                tuning.chunk_cache_bytes,
                registry.counter(
                    "instantops_tsdb_chunk_cache_total",
                    "Chunk reads, by whether the decoded chunk was cached.",
                    &[("result", "hit")],
                ),
                registry.counter(
                    "instantops_tsdb_chunk_cache_total",
                    "Chunk reads, by whether the decoded chunk was cached.",
                    &[("result", "miss")],
                ),
            ),
            stats,
        })
    }

    fn chunks(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(CHUNKS).expect("the chunks column family is created at open")
    }

    /// Appends points to the head. Names must be canonical (carbon::wire).
    pub fn ingest(&self, points: &[Incoming<'_>], now: u32) -> Result<Ingested, StoreError> {
        let _account = accounts::enter(Account::Tsdb);
        let mut outcome = Ingested::default();
        let mut misses: Vec<Incoming<'_>> = Vec::new();
        {
            let mut head = self.head.lock().expect("head lock poisoned");
            let generation = head.generation;
            for p in points {
                match head.ids.get_mut(p.name) {
                    Some(entry) => {
                        entry.touched = generation;
                        let (id, slot) = (entry.id, entry.slot);
                        self.push(&mut head, id, slot, p, now, &mut outcome);
                    }
                    None => misses.push(*p),
                }
            }
        }
        if misses.is_empty() {
            self.stats.points.add(outcome.accepted);
            return Ok(outcome);
        }
        // Series not yet active: look them up in the catalog outside the lock.
        let mut known: HashMap<&str, Option<(SeriesId, Policy)>> = HashMap::new();
        for p in &misses {
            if known.contains_key(p.name) {
                continue;
            }
            let found = match index::lookup(&self.db, p.name)? {
                Some(id) => index::record(&self.db, id)?.map(|r| (id, r.policy)),
                None => None,
            };
            known.insert(p.name, found);
        }
        let mut head = self.head.lock().expect("head lock poisoned");
        let generation = head.generation;
        for p in &misses {
            let (id, slot) = match head.ids.get_mut(p.name) {
                Some(entry) => {
                    entry.touched = generation;
                    (entry.id, entry.slot)
                }
                None => {
                    let (id, slot) = match known.get(p.name).and_then(Option::as_ref) {
                        Some((id, policy)) => (*id, intern(&mut head, policy)),
                        None => {
                            let policy = self.rules.policy(p.name);
                            // One batch can name more new series than the
                            // share holds (a statsd flush names every key):
                            // each is measured as it is created.
                            let windows = Windows::cost(&policy);
                            let after = self.series_bytes_seen(&head) + p.name.len() + SERIES_ENTRY_BYTES + windows;
                            if self.full.load(Ordering::Relaxed) || after > self.series_bytes {
                                self.full.store(true, Ordering::Relaxed);
                                outcome.refused_memory += 1;
                                self.stats.refused_memory.inc();
                                continue;
                            }
                            if !self.limits.admit(p.name) {
                                outcome.refused_limit += 1;
                                continue;
                            }
                            let id = head.next_id;
                            head.next_id += 1;
                            let slot = intern(&mut head, &policy);
                            head.created_window_bytes += windows;
                            head.created.push((id, p.name.into(), slot));
                            self.stats.series_created.inc();
                            (id, slot)
                        }
                    };
                    head.bytes += p.name.len() + SERIES_ENTRY_BYTES;
                    head.ids.insert(p.name.into(), Entry { id, slot, touched: generation });
                    head.active.insert(id, slot);
                    (id, slot)
                }
            };
            self.push(&mut head, id, slot, p, now, &mut outcome);
        }
        self.stats.active_series.set(head.active.len() as i64);
        drop(head);
        self.stats.points.add(outcome.accepted);
        Ok(outcome)
    }

    fn push(&self, head: &mut Head, id: SeriesId, slot: u16, p: &Incoming<'_>, now: u32, outcome: &mut Ingested) {
        let max_retention = head.max_retention[usize::from(slot)];
        if p.ts > i64::from(now) + i64::from(MAX_FUTURE_S) || p.ts > i64::from(u32::MAX) {
            outcome.future += 1;
            self.stats.future.inc();
        } else if p.ts < 0 || i64::from(now) - p.ts > max_retention as i64 {
            outcome.too_old += 1;
            self.stats.too_old.inc();
        } else {
            head.pending.push(Pending { id, ts: p.ts as u32, value: p.value });
            outcome.accepted += 1;
        }
    }

    /// Points waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.head.lock().expect("head lock poisoned").pending.len()
    }

    /// Whether the pending points reached `Tuning::head_points`: an input
    /// that can wait flushes before taking more.
    fn head_full(&self) -> bool {
        self.pending() >= self.head_points
    }

    /// Flushes when the head is past its bound: what a writer does before
    /// it takes more (a TCP input then reads no more until it is done).
    pub fn flush_if_full(&self, now: u32) -> Result<(), StoreError> {
        if self.head_full() {
            self.flush(now)?;
        }
        Ok(())
    }

    /// Moves every pending point into RocksDB. Safe to call from any thread;
    /// flushes run one at a time.
    pub fn flush(&self, now: u32) -> Result<usize, StoreError> {
        let _account = accounts::enter(Account::Tsdb);
        let _one_at_a_time = self.flush_lock.lock().expect("flush lock poisoned");
        let (batch_points, created) = {
            let mut head = self.head.lock().expect("head lock poisoned");
            head.generation = head.generation.wrapping_add(1);
            let taken = Arc::new(std::mem::take(&mut head.pending));
            head.flushing = taken.clone();
            head.created_window_bytes = 0;
            let created: Vec<(SeriesId, Box<str>, Arc<Policy>)> = std::mem::take(&mut head.created)
                .into_iter()
                .map(|(id, name, slot)| (id, name, head.policies[usize::from(slot)].clone()))
                .collect();
            (taken, created)
        };
        // Readers overlay the shared, unsorted batch; the flusher works on
        // copies split by shard and sorted by series. The sort is stable, so
        // arrival order within a series is kept.
        let shards = self.windows.len();
        let mut parts: Vec<Vec<Pending>> = vec![Vec::with_capacity(batch_points.len() / shards + 1); shards];
        for p in batch_points.iter() {
            parts[p.id as usize % shards].push(*p);
        }
        let policies: HashMap<SeriesId, Arc<Policy>> = {
            let head = self.head.lock().expect("head lock poisoned");
            let mut policies = HashMap::new();
            for p in batch_points.iter() {
                policies.entry(p.id).or_insert_with(|| head.policies[usize::from(head.active[&p.id])].clone());
            }
            policies
        };
        let mut index_batch = WriteBatch::default();
        if let Some((last, _, _)) = created.last() {
            index_batch.put(keys::meta("next_id"), (last + 1).to_be_bytes());
        }
        // The series index first: a crash between the two writes leaves named
        // series without points, never points without a name. Written in
        // slices too: a first statsd flush creates every series at once.
        for (id, name, policy) in &created {
            index::put_series(&mut index_batch, *id, &SeriesRecord { name: name.to_string(), policy: (**policy).clone() });
            self.windows[*id as usize % shards].lock().expect("windows lock poisoned").created(*id, policy);
            if index_batch.size_in_bytes() >= WRITE_SLICE {
                self.db.write(std::mem::take(&mut index_batch))?;
            }
        }
        drop(created);
        self.db.write(index_batch)?;
        // Shards plan and write in parallel; each owns its series' windows.
        let outcomes: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = parts
                .into_iter()
                .enumerate()
                .map(|(shard, mut points)| {
                    let policies = &policies;
                    scope.spawn(move || -> Result<(), StoreError> {
                        points.sort_by_key(|p| p.id);
                        let mut windows = self.windows[shard].lock().expect("windows lock poisoned");
                        let chunks = self.chunks();
                        let mut batch = WriteBatch::default();
                        let mut written = Vec::new();
                        let mut start = 0;
                        while start < points.len() {
                            let id = points[start].id;
                            let end = start + points[start..].iter().take_while(|p| p.id == id).count();
                            let policy = &policies[&id];
                            let writes = self.plan_writes(&mut windows, id, policy, &points[start..end], now)?;
                            put_operands(&mut batch, chunks, id, policy, &writes, &mut written);
                            start = end;
                            // Written in slices: a whole flush's batch was the
                            // largest transient buffer of the process.
                            if batch.size_in_bytes() >= WRITE_SLICE {
                                self.db.write(std::mem::take(&mut batch))?;
                            }
                        }
                        self.db.write(batch)?;
                        self.cache.invalidate(&written);
                        Ok(())
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(StoreError::Io("a flush thread panicked".into())))).collect()
        });
        for outcome in outcomes {
            outcome?;
        }
        let flushed = batch_points.len();
        self.head.lock().expect("head lock poisoned").flushing = Arc::new(Vec::new());
        self.keep_series_within_share();
        self.stats.flushes.inc();
        self.stats.pending.set(self.pending() as i64);
        Ok(flushed)
    }

    /// One series' writes for a flush, in whisper's `update_many` order: the
    /// points of each archive (finest first) are written and propagated before
    /// the older points of the next archive overwrite what they must.
    fn plan_writes(
        &self,
        windows: &mut Windows,
        id: SeriesId,
        policy: &Policy,
        points: &[Pending],
        now: u32,
    ) -> Result<Writes, StoreError> {
        let mut writes = Writes::new();
        for archive in 0..policy.archives.len() {
            let step = policy.archives[archive].step;
            let mut group = Writes::new();
            for p in points {
                if archive_for_age(policy, i64::from(now) - i64::from(p.ts)) == Some(archive) {
                    group.insert((archive as u8, p.ts - p.ts % step), p.value);
                }
            }
            if group.is_empty() {
                continue;
            }
            // whisper's ring has one slot per interval modulo the retention: an
            // old point takes the slot of the interval one retention later, and
            // within one batch the later interval, written after, takes it back.
            let retention = policy.archives[archive].retention();
            let a = archive as u8;
            let retaken: Vec<(u8, u32)> = group
                .keys()
                .filter(|(_, ts)| u32::try_from(u64::from(*ts) + retention).is_ok_and(|later| group.contains_key(&(a, later))))
                .copied()
                .collect();
            for key in retaken {
                group.remove(&key);
            }
            // The slot taken from a later interval is a tombstone (NaN), over what
            // earlier archives' rollups planned there; it does not propagate, as
            // whisper re-aggregates only the intervals it wrote.
            for (_, ts) in group.keys() {
                let later = u64::from(*ts) + retention;
                if later <= u64::from(now) + u64::from(MAX_FUTURE_S) {
                    writes.insert((a, later as u32), f64::NAN);
                }
            }
            // The rollups read stored data with this flush's earlier writes on top.
            let mut stored = StoredSeries { store: self, id, policy, planned: &writes };
            windows.propagate(id, policy, &mut group, &mut stored)?;
            writes.extend(group);
        }
        Ok(writes)
    }

    /// The points of one archive in `[from, until)` as whisper's ring holds
    /// them: a point whose slot a point one retention later also claims is gone.
    fn read_ring(&self, id: SeriesId, policy: &Policy, archive: u8, from: u32, until: u32) -> Result<Vec<(u32, f64)>, StoreError> {
        let mut points = self.read_stored(id, policy, archive, from, until)?;
        let retention = policy.archives[usize::from(archive)].retention();
        let (later_from, later_until) = (u64::from(from) + retention, u64::from(until) + retention);
        if points.is_empty() || later_from > u64::from(u32::MAX) {
            return Ok(points);
        }
        let later_until = later_until.min(u64::from(u32::MAX)) as u32;
        let later = self.read_stored(id, policy, archive, later_from as u32, later_until)?;
        if !later.is_empty() {
            let taken: std::collections::HashSet<u64> = later.iter().map(|(ts, _)| u64::from(*ts)).collect();
            points.retain(|(ts, _)| !taken.contains(&(u64::from(*ts) + retention)));
        }
        Ok(points)
    }

    /// The newest stored timestamp of one archive.
    fn newest_stored(&self, id: SeriesId, policy: &Policy, archive: u8) -> Result<Option<u32>, StoreError> {
        let step = policy.archives[usize::from(archive)].step;
        let mut opts = ReadOptions::default();
        opts.set_iterate_lower_bound(keys::chunk(id, archive, 0).to_vec());
        opts.set_iterate_upper_bound(keys::chunk(id, archive, u32::MAX).to_vec());
        for item in self.db.iterator_cf_opt(self.chunks(), opts, IteratorMode::End) {
            let (k, v) = item?;
            let Some((_, _, chunk_start)) = keys::parse_chunk(&k) else { continue };
            if let Some((slot, _)) = value::points(&v).map_err(StoreError::Corrupt)?.last() {
                return Ok(Some(chunk_start + slot * step));
            }
        }
        Ok(None)
    }

    /// The stored points of one archive in `[from, until)`, as (ts, value).
    fn read_stored(&self, id: SeriesId, policy: &Policy, archive: u8, from: u32, until: u32) -> Result<Vec<(u32, f64)>, StoreError> {
        let step = policy.archives[usize::from(archive)].step;
        let mut out = Vec::new();
        self.visit_chunks(id, policy, archive, from, until, |chunk_start, points| {
            out.extend(points.iter().map(|&(slot, v)| (chunk_start + slot * step, v)).filter(|&(ts, _)| ts >= from && ts < until));
        })?;
        Ok(out)
    }

    /// Calls `visit(chunk start, points)` for each chunk of one archive that
    /// overlaps `[from, until)`, in time order (its points may reach outside
    /// the range): decoded chunks come from the cache, the others from
    /// RocksDB (one multi-get), decoded once and cached.
    fn visit_chunks(
        &self,
        id: SeriesId,
        policy: &Policy,
        archive: u8,
        from: u32,
        until: u32,
        mut visit: impl FnMut(u32, &[(u32, f64)]),
    ) -> Result<(), StoreError> {
        let step = policy.archives[usize::from(archive)].step;
        let span = step * SLOTS_PER_CHUNK;
        let starts: Vec<u32> = (u64::from(from - from % span)..u64::from(until)).step_by(span as usize).map(|s| s as u32).collect();
        let mut chunks: Vec<Option<Points>> = starts.iter().map(|&s| self.cache.get(&keys::chunk(id, archive, s))).collect();
        let missing: Vec<usize> = (0..starts.len()).filter(|&i| chunks[i].is_none()).collect();
        if !missing.is_empty() {
            // Decoded chunks stay in the cache, the tsdb's; what a read
            // returns is the reader's.
            let _account = accounts::enter(Account::Tsdb);
            let epoch = self.cache.epoch();
            let lookups: Vec<(&rocksdb::ColumnFamily, Key)> =
                missing.iter().map(|&i| (self.chunks(), keys::chunk(id, archive, starts[i]))).collect();
            for (&i, value) in missing.iter().zip(self.db.multi_get_cf(lookups)) {
                let points = match value? {
                    Some(v) => value::points(&v).map_err(StoreError::Corrupt)?,
                    None => Vec::new(),
                };
                let points = Arc::new(points);
                self.cache.insert(keys::chunk(id, archive, starts[i]), points.clone(), epoch);
                chunks[i] = Some(points);
            }
        }
        for (chunk_start, points) in starts.into_iter().zip(chunks.into_iter().flatten()) {
            visit(chunk_start, &points);
        }
        Ok(())
    }

    /// Looks a series up by canonical name.
    pub fn series(&self, name: &str) -> Result<Option<(SeriesId, Arc<Policy>)>, StoreError> {
        {
            let head = self.head.lock().expect("head lock poisoned");
            if let Some(entry) = head.ids.get(name) {
                return Ok(Some((entry.id, head.policies[usize::from(entry.slot)].clone())));
            }
        }
        match index::lookup(&self.db, name)? {
            Some(id) => Ok(index::record(&self.db, id)?.map(|r| (id, Arc::new(r.policy)))),
            None => Ok(None),
        }
    }

    /// Flushes RocksDB's memtables and compacts everything (benchmarks, tests).
    pub fn compact(&self) -> Result<(), StoreError> {
        let _account = accounts::enter(Account::Tsdb);
        self.persist()?;
        // Chunks only, no stacks: what the store's data comes to on disk.
        self.finishing.store(true, Ordering::Relaxed);
        self.db.compact_range_cf(self.chunks(), None::<&[u8]>, None::<&[u8]>);
        self.finishing.store(false, Ordering::Relaxed);
        self.db.compact_range(None::<&[u8]>, None::<&[u8]>);
        self.cache.clear();
        Ok(())
    }

    /// The last step of an orderly stop, after the last flush: the memtables
    /// to SST files (so the next open replays no WAL), then RocksDB's
    /// background work cancelled and waited for. A compaction running then
    /// gives up its output (its inputs stay) instead of finishing: one that
    /// started under a 100k-series carbon flood kept the process 21-25 s past
    /// the stop, longer than the 10 s it has. The store takes no writes after.
    pub fn close(&self) -> Result<(), StoreError> {
        self.persist()?;
        self.db.cancel_all_background_work(true);
        Ok(())
    }

    /// Writes RocksDB's memtables to SST files, so the next open has no WAL to
    /// replay.
    pub fn persist(&self) -> Result<(), StoreError> {
        let _account = accounts::enter(Account::Tsdb);
        self.db.flush()?;
        self.db.flush_cf(self.chunks())?;
        Ok(())
    }

    /// Compacts as if the time were `now`: chunks past retention then are dropped.
    pub fn compact_at(&self, now: u32) -> Result<(), StoreError> {
        let _account = accounts::enter(Account::Tsdb);
        self.clock.store(now, Ordering::Relaxed);
        let result = self.compact();
        self.clock.store(0, Ordering::Relaxed);
        result
    }

    /// Bytes of SST files (after `compact`, the on-disk size of the data).
    pub fn disk_bytes(&self) -> u64 {
        let sst = |cf: Option<&rocksdb::ColumnFamily>| match cf {
            Some(cf) => self.db.property_int_value_cf(cf, "rocksdb.total-sst-files-size").ok().flatten().unwrap_or(0),
            None => self.db.property_int_value("rocksdb.total-sst-files-size").ok().flatten().unwrap_or(0),
        };
        sst(None) + sst(Some(self.chunks()))
    }

    /// Each per-prefix series limit with what its prefix holds.
    pub fn limits(&self) -> Vec<Usage> {
        self.limits.usage()
    }

    /// Series held in the head.
    pub fn active_series(&self) -> usize {
        self.head.lock().expect("head lock poisoned").active.len()
    }
}

/// One series' stored data as the rollups read it: RocksDB, with the writes
/// this flush has planned so far on top.
struct StoredSeries<'a> {
    store: &'a Store,
    id: SeriesId,
    policy: &'a Policy,
    planned: &'a Writes,
}

impl Stored for StoredSeries<'_> {
    type Error = StoreError;
    fn points(&mut self, archive: u8, from: u32, until: u32) -> Result<Vec<(u32, f64)>, StoreError> {
        let stored = self.store.read_ring(self.id, self.policy, archive, from, until)?;
        let planned = self.planned.range((archive, from)..(archive, until));
        if planned.clone().next().is_none() {
            return Ok(stored);
        }
        let mut merged: std::collections::BTreeMap<u32, f64> = stored.into_iter().collect();
        for ((_, ts), v) in planned {
            merged.insert(*ts, *v);
        }
        Ok(merged.into_iter().filter(|(_, v)| !v.is_nan()).collect())
    }
    fn newest(&mut self, archive: u8) -> Result<Option<u32>, StoreError> {
        let stored = self.store.newest_stored(self.id, self.policy, archive)?;
        let planned = self.planned.range((archive, 0)..=(archive, u32::MAX)).next_back().map(|((_, ts), _)| *ts);
        Ok(stored.max(planned))
    }
}

fn intern(head: &mut Head, policy: &Policy) -> u16 {
    if let Some(i) = head.policies.iter().position(|p| **p == *policy) {
        return i as u16;
    }
    head.policies.push(Arc::new(policy.clone()));
    head.max_retention.push(policy.archives.iter().map(|a| a.retention()).max().unwrap_or(0));
    (head.policies.len() - 1) as u16
}

/// whisper: the finest archive whose retention covers the point's age.
fn archive_for_age(policy: &Policy, age: i64) -> Option<usize> {
    policy.archives.iter().position(|a| a.retention() as i64 >= age)
}

/// Adds a flush's writes of one series to `batch` as merge operands, one per
/// chunk, and the chunk keys to `written`.
fn put_operands(
    batch: &mut WriteBatch,
    chunks: &rocksdb::ColumnFamily,
    id: SeriesId,
    policy: &Policy,
    writes: &Writes,
    written: &mut Vec<Key>,
) {
    let mut current: Option<(u8, u32)> = None;
    let mut points: Vec<(u32, f64)> = Vec::new();
    let mut emit = |batch: &mut WriteBatch, key: Option<(u8, u32)>, points: &mut Vec<(u32, f64)>| {
        if let Some((archive, chunk_start)) = key {
            let a = policy.archives[usize::from(archive)];
            let expires = u64::from(chunk_start) + u64::from(a.step * SLOTS_PER_CHUNK) + a.retention();
            let expires = u32::try_from(expires).unwrap_or(u32::MAX);
            let key = keys::chunk(id, archive, chunk_start);
            batch.merge_cf(chunks, key, value::operand(expires, points));
            written.push(key);
        }
        points.clear();
    };
    for ((archive, ts), v) in writes {
        let step = policy.archives[usize::from(*archive)].step;
        let span = step * SLOTS_PER_CHUNK;
        let key = (*archive, ts - ts % span);
        if current != Some(key) {
            emit(batch, current, &mut points);
            current = Some(key);
        }
        points.push(((ts - key.1) / step, *v));
    }
    emit(batch, current, &mut points);
}

pub fn unix_now() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::schema::{Archive, Method};

    fn rules(retentions: &str, method: Method, xff: f64) -> Rules {
        let archives = crate::tsdb::schema::parse_retentions(retentions).expect("valid");
        Rules::new(vec![(regex::Regex::new(".*").expect("re"), archives)], vec![(regex::Regex::new(".*").expect("re"), method, xff)])
    }

    fn open(dir: &Path, rules: Rules) -> Store {
        Store::open(dir, rules, &Tuning::default(), &Registry::new()).expect("open")
    }

    // A multiple of 60, so minute windows start at NOW - 120 and NOW - 60.
    const NOW: u32 = 1_700_000_040;

    /// The catalog's tree view: names that sort between a leaf and its own
    /// branch (`web-01` between `web` and `web.x`) are still listed, tagged
    /// series are not, and unflushed and flushed names give the same answer.
    #[test]
    fn children_list_each_next_node_once() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = open(dir.path(), rules("10s:1h", Method::Average, 0.5));
        let names = ["a.web", "a.web-01", "a.web.x", "a.web.y.z", "a.web0", "a.b;t=v", "b;t=v", "c.d"];
        let pts: Vec<Incoming> = names.iter().map(|n| Incoming { name: n, ts: i64::from(NOW), value: 1.0 }).collect();
        store.ingest(&pts, NOW).expect("ingest");
        let view = |store: &Store, prefix: &str| -> Vec<(String, bool, bool)> {
            store.children(prefix).expect("children").into_iter().map(|c| (c.name, c.leaf, c.branch)).collect()
        };
        let want_a = vec![("web".to_string(), true, true), ("web-01".to_string(), true, false), ("web0".to_string(), true, false)];
        let want_top = vec![("a".to_string(), false, true), ("c".to_string(), false, true)];
        for flushed in [false, true] {
            assert_eq!(view(&store, "a."), want_a, "flushed: {flushed}");
            assert_eq!(view(&store, ""), want_top, "flushed: {flushed}");
            assert_eq!(view(&store, "a.web."), vec![("x".to_string(), true, false), ("y".to_string(), false, true)]);
            let web = store.node("a.web").expect("node");
            assert!(web.leaf && web.branch, "flushed: {flushed}");
            let missing = store.node("a.nope").expect("node");
            assert!(!missing.leaf && !missing.branch);
            store.flush(NOW).expect("flush");
        }
    }

    #[test]
    fn points_are_readable_before_and_after_flush_and_reopen() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = open(dir.path(), rules("10s:1h,1m:1d", Method::Average, 0.5));
        let pts: Vec<Incoming> = (0..12).map(|i| Incoming { name: "a.b", ts: i64::from(NOW) - 120 + i * 10, value: i as f64 }).collect();
        assert_eq!(store.ingest(&pts, NOW).expect("ingest").accepted, 12);
        let before = store.fetch("a.b", i64::from(NOW) - 130, i64::from(NOW), NOW).expect("fetch").expect("series");
        store.flush(NOW).expect("flush");
        let after = store.fetch("a.b", i64::from(NOW) - 130, i64::from(NOW), NOW).expect("fetch").expect("series");
        assert_eq!(before, after);
        assert_eq!(after.step, 10);
        assert_eq!(after.values.iter().flatten().count(), 12);
        drop(store);
        let store = open(dir.path(), rules("10s:1h,1m:1d", Method::Average, 0.5));
        let reopened = store.fetch("a.b", i64::from(NOW) - 130, i64::from(NOW), NOW).expect("fetch").expect("series");
        assert_eq!(reopened, after);
        // The 1-minute archive got the rollups: [NOW-120, NOW-60) averages 0..5.
        let old = store.fetch("a.b", i64::from(NOW) - 7200, i64::from(NOW), NOW).expect("fetch").expect("series");
        assert_eq!(old.step, 60);
        let at = |ts: i64| old.values[((ts - old.start) / 60) as usize];
        assert_eq!(at(i64::from(NOW) - 120), Some(2.5));
        assert_eq!(at(i64::from(NOW) - 60), Some(8.5));
        // New writes after reopen go to the same series and roll up with the stored points.
        store.ingest(&[Incoming { name: "a.b", ts: i64::from(NOW) - 5, value: 100.0 }], NOW).expect("ingest");
        store.flush(NOW).expect("flush");
        let old = store.fetch("a.b", i64::from(NOW) - 7200, i64::from(NOW), NOW).expect("fetch").expect("series");
        // NOW - 5 aligns to NOW - 10 and replaces 11.0 there; the window's
        // stored slots (loaded after reopen) take part in the new average.
        let expected = (6.0 + 7.0 + 8.0 + 9.0 + 10.0 + 100.0) / 6.0;
        assert_eq!(old.values[((i64::from(NOW) - 60 - old.start) / 60) as usize], Some(expected));
    }

    #[test]
    fn too_old_and_future_points_are_dropped_and_counted() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = open(dir.path(), rules("10s:1h", Method::Average, 0.5));
        let got = store
            .ingest(
                &[
                    Incoming { name: "x", ts: i64::from(NOW) - 3601, value: 1.0 },
                    Incoming { name: "x", ts: i64::from(NOW) + 601, value: 1.0 },
                    Incoming { name: "x", ts: i64::from(NOW) + 600, value: 1.0 },
                ],
                NOW,
            )
            .expect("ingest");
        assert_eq!(got, Ingested { accepted: 1, too_old: 1, future: 1, refused_limit: 0, refused_memory: 0 });
    }

    /// A store whose series share (10 kB) holds ~26 series, and 100 names.
    fn small_share(dir: &Path) -> (Store, Vec<String>) {
        let tuning = Tuning { series_bytes: 10_000, ..Tuning::default() };
        let store = Store::open(dir, rules("10s:1h,1m:1d", Method::Sum, 0.0), &tuning, &Registry::new()).expect("open");
        (store, (0..100).map(|i| format!("a.s{i:03}")).collect())
    }

    #[test]
    fn idle_series_past_the_memory_share_are_forgotten_and_read_back_whole() {
        let dir = tempfile::tempdir().expect("tmp");
        let (store, names) = small_share(dir.path());
        let at =
            |ts: u32, value: f64| -> Vec<Incoming<'_>> { names.iter().map(|name| Incoming { name, ts: i64::from(ts), value }).collect() };
        // A few new series a batch, as a flush leaves a quarter of the share
        // for them.
        for batch in at(NOW - 60, 1.0).chunks(5) {
            assert_eq!(store.ingest(batch, NOW).expect("ingest").accepted, 5);
            store.flush(NOW).expect("flush");
        }
        let held = store.active_series();
        assert!(held < 100, "100 series of ~370 bytes are over a 10 kB share, yet {held} are held");
        assert!(store.series_memory() <= 10_000);
        // Forgotten series are found again, under the same ids, with their
        // rollup windows read back: the minute's sum includes the first point.
        store.ingest(&at(NOW - 50, 2.0), NOW).expect("ingest");
        store.flush(NOW).expect("flush");
        for name in &names {
            let fine = store.fetch(name, i64::from(NOW) - 70, i64::from(NOW), NOW).expect("fetch").expect("series");
            assert_eq!(fine.values.iter().flatten().copied().collect::<Vec<_>>(), vec![1.0, 2.0], "{name}");
            let coarse = store.fetch(name, i64::from(NOW) - 7200, i64::from(NOW), NOW).expect("fetch").expect("series");
            let minute = coarse.values[((i64::from(NOW) - 60 - coarse.start) / 60) as usize];
            assert_eq!(minute, Some(3.0), "{name}: the rollup saw both points");
        }
        assert_eq!(store.count_by_prefix(1).expect("count")["a"], 100, "no series was created twice");
    }

    #[test]
    fn one_batch_creates_no_more_series_than_the_share_holds() {
        let dir = tempfile::tempdir().expect("tmp");
        let (store, names) = small_share(dir.path());
        let batch: Vec<Incoming<'_>> = names.iter().map(|name| Incoming { name, ts: i64::from(NOW), value: 1.0 }).collect();
        let outcome = store.ingest(&batch, NOW).expect("ingest");
        assert!(outcome.accepted > 0 && outcome.accepted < 100, "{outcome:?}");
        assert_eq!(outcome.accepted + outcome.refused_memory, 100, "every point is accepted or counted refused: {outcome:?}");
        store.flush(NOW).expect("flush");
        assert!(store.series_memory() <= 10_000, "{} bytes of series after one batch", store.series_memory());
        // The series it took are kept whole; the ones it refused left nothing.
        assert_eq!(store.count_by_prefix(1).expect("count")["a"], outcome.accepted);
    }

    #[test]
    fn new_series_are_refused_while_busy_series_fill_the_share() {
        let dir = tempfile::tempdir().expect("tmp");
        let tuning = Tuning { limits: vec![Limit { prefix: "noisy.".into(), max: 1 }], ..Tuning::default() };
        let store = Store::open(dir.path(), rules("10s:1h", Method::Average, 0.0), &tuning, &Registry::new()).expect("open");
        let point = |name, ts: u32| Incoming { name, ts: i64::from(ts), value: 1.0 };
        assert_eq!(store.ingest(&[point("busy.a", NOW), point("noisy.a", NOW)], NOW).expect("ingest").accepted, 2);
        // As a flush leaves it when the series held are all busy and over the share.
        store.full.store(true, Ordering::Relaxed);
        let got = store.ingest(&[point("fresh.a", NOW), point("fresh.b", NOW), point("busy.a", NOW + 10)], NOW + 10).expect("ingest");
        assert_eq!((got.accepted, got.refused_limit, got.refused_memory), (1, 0, 2), "held series still take points");
        store.full.store(false, Ordering::Relaxed);
        let got = store.ingest(&[point("fresh.a", NOW + 10), point("noisy.b", NOW + 10)], NOW + 10).expect("ingest");
        assert_eq!((got.accepted, got.refused_limit, got.refused_memory), (1, 1, 0));
    }

    #[test]
    fn a_prefix_at_its_series_limit_refuses_new_series_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let tuning = Tuning { limits: vec![Limit { prefix: "noisy.".into(), max: 2 }], ..Tuning::default() };
        let store = Store::open(dir.path(), rules("10s:1h", Method::Average, 0.5), &tuning, &Registry::new()).expect("open");
        let point = |name| Incoming { name, ts: i64::from(NOW), value: 1.0 };
        let got = store.ingest(&[point("noisy.a"), point("noisy.b"), point("noisy.c"), point("quiet.a")], NOW).expect("ingest");
        assert_eq!((got.accepted, got.refused_limit, got.refused_memory), (3, 1, 0));
        store.flush(NOW).expect("flush");
        drop(store);
        // After a restart the limit counts what is stored; the held series still take points.
        let store = Store::open(dir.path(), rules("10s:1h", Method::Average, 0.5), &tuning, &Registry::new()).expect("open");
        let got = store.ingest(&[point("noisy.a"), point("noisy.d")], NOW + 10).expect("ingest");
        assert_eq!((got.accepted, got.refused_limit, got.refused_memory), (1, 1, 0));
        assert_eq!(store.limits()[0].series, 2);
    }

    #[test]
    fn fetch_many_lays_the_head_over_each_series_as_fetch_does() {
        // Flushed points, then later writes to the same slots and new slots
        // still in the head: one pass over the head must give every series
        // (a name listed twice, a missing one) what a fetch of it alone gives.
        let dir = tempfile::tempdir().expect("tmp");
        let store = open(dir.path(), rules("10s:1h,60s:1d", Method::Average, 0.5));
        let names = ["m.a", "m.b", "m.c"];
        let points = |round: u32| -> Vec<Incoming> {
            (0..30u32)
                .flat_map(|i| names.iter().enumerate().map(move |(s, name)| (i, s, name)))
                .map(|(i, s, name)| Incoming {
                    name,
                    ts: i64::from(NOW - 300 + i * 10),
                    value: f64::from(round * 1000 + i * 10) + s as f64,
                })
                .collect()
        };
        store.ingest(&points(1), NOW).expect("ingest");
        store.flush(NOW).expect("flush");
        store.ingest(&points(2)[..45], NOW).expect("ingest");
        assert!(store.pending() > 0);
        let wanted = ["m.c", "m.a", "m.missing", "m.a", "m.b"];
        for (from, until) in [(i64::from(NOW) - 300, i64::from(NOW)), (i64::from(NOW) - 7200, i64::from(NOW))] {
            let many = store.fetch_many(&wanted, from, until, NOW, usize::MAX).expect("fetch").expect("within the budget");
            for (name, got) in wanted.iter().zip(&many) {
                let alone = store.fetch(name, from, until, NOW).expect("fetch");
                assert_eq!(
                    got.as_ref().map(|f| (f.start, f.step, &f.values)),
                    alone.as_ref().map(|f| (f.start, f.step, &f.values)),
                    "{name}"
                );
            }
            // The fine archive shows both the head's points and the flushed ones.
            let a = many[1].as_ref().expect("m.a");
            let flushed_and_head = a.values.iter().flatten().any(|v| *v >= 2000.0) && a.values.iter().flatten().any(|v| *v < 2000.0);
            assert!(a.step != 10 || flushed_and_head, "{:?}", a.values);
        }
        let one = store.fetch("m.a", i64::from(NOW) - 300, i64::from(NOW), NOW).expect("fetch").expect("m.a").values.len();
        let budget = |max| store.fetch_many(&names, i64::from(NOW) - 300, i64::from(NOW), NOW, max).expect("fetch").is_some();
        assert!(budget(3 * one) && !budget(3 * one - 1));
    }

    #[test]
    fn a_closed_store_reopens_with_every_point() {
        let dir = tempfile::tempdir().expect("tmp");
        let names = ["c.a", "c.b", "c.c"];
        {
            let store = open(dir.path(), rules("10s:1d,1m:7d", Method::Average, 0.5));
            for round in 0..300u32 {
                let now = NOW + round * 10;
                let pts: Vec<Incoming> = names.iter().map(|name| Incoming { name, ts: i64::from(now), value: f64::from(round) }).collect();
                store.ingest(&pts, now).expect("ingest");
                store.flush(now).expect("flush");
            }
            store.close().expect("close");
        }
        let store = open(dir.path(), rules("10s:1d,1m:7d", Method::Average, 0.5));
        for name in names {
            let got = store.fetch(name, i64::from(NOW) - 10, i64::from(NOW + 2990), NOW + 2990).expect("fetch").expect("series");
            assert_eq!(got.values.iter().flatten().count(), 300, "{name}");
        }
    }

    #[test]
    fn written_memtables_hold_combined_operands_compressed() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = open(dir.path(), rules("10s:1d", Method::Average, 0.5));
        let names = ["m.a", "m.b", "m.c", "m.d"];
        for round in 0..600u32 {
            let now = NOW + round * 10;
            let pts: Vec<Incoming> =
                names.iter().map(|name| Incoming { name, ts: i64::from(now), value: 20.0 + (round % 7) as f64 / 100.0 }).collect();
            store.ingest(&pts, now).expect("ingest");
            store.flush(now).expect("flush");
        }
        // No compaction: RocksDB combines each chunk's 600 operands as it
        // writes the memtable (concatenated they took 12 bytes a point,
        // 28.8 KB for these 2,400).
        store.persist().expect("memtables written");
        assert!(store.disk_bytes() < 10_000, "{} bytes on disk", store.disk_bytes());
        let got = store.fetch("m.b", i64::from(NOW) - 10, i64::from(NOW + 5990), NOW + 5990).expect("fetch").expect("series");
        assert_eq!(got.values.iter().flatten().count(), 600);
    }

    #[test]
    fn merges_stack_points_and_a_full_compaction_leaves_chunks_only() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = open(dir.path(), rules("10s:1d", Method::Average, 0.5));
        let kinds = |store: &Store| -> Vec<u8> {
            store.db.iterator_cf(store.chunks(), rocksdb::IteratorMode::Start).map(|kv| kv.expect("read").1[0]).collect()
        };
        // The last rounds stay operands: the full compaction's merges meet them.
        for round in 0..45u32 {
            let now = NOW + round * 10;
            store.ingest(&[Incoming { name: "s.a", ts: i64::from(now), value: f64::from(round) / 4.0 }], now).expect("ingest");
            store.flush(now).expect("flush");
            if round % 10 == 9 {
                // A compaction that is not the store's own: its merges stack.
                store.persist().expect("persist");
                store.clock.store(now, Ordering::Relaxed);
                store.db.compact_range_cf(store.chunks(), None::<&[u8]>, None::<&[u8]>);
            }
        }
        store.persist().expect("persist");
        assert!(kinds(&store).contains(&value::STACK), "kinds {:?}", kinds(&store));
        let read =
            |store: &Store| store.fetch("s.a", i64::from(NOW) - 10, i64::from(NOW + 440), NOW + 440).expect("fetch").expect("series");
        let before = read(&store).values;
        assert_eq!(before.iter().flatten().count(), 45);
        store.compact_at(NOW + 450).expect("compact");
        let after = kinds(&store);
        assert!(!after.is_empty() && after.iter().all(|&k| k == value::CHUNK), "kinds {after:?}");
        assert_eq!(read(&store).values, before);
    }

    #[test]
    fn compaction_merges_operands_into_small_chunks() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = open(dir.path(), rules("10s:1d", Method::Average, 0.5));
        for round in 0..100u32 {
            let now = NOW + round * 10;
            let pts: Vec<Incoming> = (0..50)
                .map(|s| Incoming {
                    name: ["g.a", "g.b", "g.c", "g.d", "g.e"][s % 5],
                    ts: i64::from(now),
                    value: 20.0 + (round % 7) as f64 / 100.0,
                })
                .collect();
            store.ingest(&pts, now).expect("ingest");
            store.flush(now).expect("flush");
        }
        store.compact().expect("compact");
        let got = store.fetch("g.c", i64::from(NOW) - 10, i64::from(NOW + 990), NOW + 990).expect("fetch").expect("series");
        assert_eq!(got.values.iter().flatten().count(), 100);
        assert!(store.disk_bytes() < 20_000, "{} bytes on disk", store.disk_bytes());
        let _ = Archive { step: 1, points: 1 };
    }

    #[test]
    fn chunks_past_retention_are_dropped_and_the_space_reclaimed() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = open(dir.path(), rules("1s:10m", Method::Average, 0.5));
        let pts: Vec<Incoming> =
            (0..500).map(|i| Incoming { name: "short.lived", ts: i64::from(NOW) - 550 + i, value: i as f64 }).collect();
        store.ingest(&pts, NOW).expect("ingest");
        store.flush(NOW).expect("flush");
        store.compact_at(NOW).expect("compact");
        let full = store.disk_bytes();
        let kept = store.fetch("short.lived", i64::from(NOW) - 600, i64::from(NOW), NOW).expect("fetch").expect("series");
        assert_eq!(kept.values.iter().flatten().count(), 500);
        // An hour later every chunk is past its 10-minute retention.
        store.compact_at(NOW + 3600).expect("compact");
        assert!(store.disk_bytes() < full, "{} bytes before, {} after", full, store.disk_bytes());
        let gone = store.fetch("short.lived", i64::from(NOW) - 600, i64::from(NOW), NOW).expect("fetch").expect("series");
        assert_eq!(gone.values.iter().flatten().count(), 0, "expired chunks are deleted, not just hidden");
    }
}
