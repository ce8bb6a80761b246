//! The path every log event takes after its input parsed it: encode, WAL
//! (acknowledged once durable), then the indexer thread, which applies events
//! to the hot partition, commits every `logs.commit_interval`, rolls
//! partitions, enforces retention and drops WAL segments the index holds.
//!
//! Backpressure: the bytes handed to the WAL but not yet indexed are bounded
//! by a share of the memory budget. Past it, [`Logs::ingest`] refuses with
//! [`IngestError::Overloaded`] and each input does what its protocol allows:
//! TCP stops reading (waits and retries), HTTP answers 429, RESP an error, UDP
//! drops and counts.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use foldhash::HashMap;
use thiserror::Error;
use tokio::sync::broadcast;

use super::event::Event;
use super::index::{IndexError, LogIndex, Writer};
use super::time::now_ms;
use super::wal::{self, Durable, Kind, Wal, WalError};
use crate::telemetry::{Counter, Gauge, Registry};

#[derive(Debug, Error)]
pub enum IngestError {
    #[error("log indexing is behind ({queued} bytes waiting); retry")]
    Overloaded { queued: u64 },
    #[error("the appliance is at the pressure mark of memory.limit; retry")]
    Memory,
    #[error(transparent)]
    Wal(#[from] WalError),
}

/// One change to the log.
pub enum Op {
    Add {
        event: Event,
        /// The event's `_id` was generated here (a `_bulk` index or create
        /// without one), so no older event has it and indexing it deletes
        /// nothing first: Elasticsearch's append-only path for auto ids.
        /// False for every other event, with or without an `_id`.
        fresh: bool,
    },
    Delete {
        id: String,
    },
}

impl Op {
    /// `event` to be added.
    pub fn add(event: Event) -> Op {
        Op::Add { event, fresh: false }
    }
}

/// Settings the pipeline runs with.
pub struct Settings {
    pub dir: PathBuf,
    pub commit_interval: Duration,
    pub retention: Duration,
    pub max_disk: u64,
    /// The Tantivy writer's heap, and its indexing threads.
    pub writer_heap: usize,
    pub writer_threads: usize,
    /// Most bytes accepted but not yet indexed.
    pub max_backlog: u64,
    /// Events a live tail reader may fall behind before it skips ahead.
    pub tail_buffer: usize,
    /// The memory budget's pressure flag: set, no batch is admitted.
    pub pressure: Arc<AtomicBool>,
}

/// Events with an Elasticsearch id accepted since the last commit, by id:
/// the WAL position past each and its JSON, or None once deleted (what
/// `create` and `update` must see before the index does). The indexer drops
/// what a commit made searchable.
type Recent = Mutex<HashMap<String, (u64, Option<Arc<str>>)>>;

/// The log store's front door, shared by every input.
pub struct Logs {
    wal: Arc<Wal<Vec<Op>>>,
    pub index: Arc<LogIndex>,
    backlog: Arc<AtomicU64>,
    max_backlog: u64,
    pressure: Arc<AtomicBool>,
    recent: Arc<Recent>,
    /// Held across a `_bulk` request's reads of ids and its submission.
    pub id_lock: Mutex<()>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    events: Counter,
    wal_bytes: Counter,
    /// Every event as it is indexed, for live tails; never waits for them.
    tail: broadcast::Sender<Arc<str>>,
}

/// Counters and gauges of the log store.
struct Metrics {
    indexed: Counter,
    commits: Counter,
    backlog: Gauge,
    disk: Gauge,
    partitions: Gauge,
    removed: Counter,
    stale: Gauge,
}

impl Logs {
    /// Opens the WAL and the index, replays what the index lacks, and starts
    /// the WAL writer and the indexer.
    /// Bytes durable in the WAL and not yet indexed.
    pub fn backlog_bytes(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed)
    }

    /// Events from now on, as they are indexed (their stored JSON). A reader
    /// more than `tail_buffer` behind gets `Lagged` and goes on from there.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<str>> {
        self.tail.subscribe()
    }

    pub fn open(settings: Settings, registry: &Registry) -> Result<Arc<Logs>, OpenError> {
        let _account = crate::telemetry::accounts::enter(crate::telemetry::accounts::Account::Logs);
        let now = now_ms();
        let (index, mut writer) = LogIndex::open(&settings.dir.join("index"), settings.writer_heap, settings.writer_threads, now)?;
        let from = index.indexed();
        let wal_dir = settings.dir.join("wal");
        let (records, wal_writer) = wal::open(&wal_dir, from)?;
        let replayed = records.len();
        let mut last = from;
        for record in records {
            match decode(record.kind, &record.payload) {
                Some(op) => apply(&mut writer, op)?,
                None => tracing::warn!(position = record.end, "undecodable wal record skipped"),
            }
            last = record.end;
        }
        if replayed > 0 {
            writer.commit(last)?;
            tracing::info!(records = replayed, "log wal replayed into the index");
        }
        let metrics = Metrics {
            indexed: registry.counter("instantops_logs_indexed_total", "Log events committed to the index (searchable).", &[]),
            commits: registry.counter("instantops_logs_commits_total", "Log index commits.", &[]),
            backlog: registry.gauge("instantops_logs_backlog_bytes", "Log bytes durable in the WAL but not yet indexed.", &[]),
            disk: registry.gauge("instantops_logs_disk_bytes", "Bytes of the log index on disk.", &[]),
            partitions: registry.gauge("instantops_logs_partitions", "Log index partitions.", &[]),
            removed: registry.counter("instantops_logs_partitions_removed_total", "Log partitions removed by retention or max_disk.", &[]),
            stale: registry.gauge(
                "instantops_logs_partitions_rewriting",
                "Log partitions of an older build waiting to be indexed again (searchable once done).",
                &[],
            ),
        };
        metrics.stale.set(index.stale() as i64);
        let backlog = Arc::new(AtomicU64::new(0));
        let recent = Arc::new(Recent::default());
        let (tail, _) = broadcast::channel(settings.tail_buffer.max(1));
        // Batches in flight between the WAL writer and the indexer; bytes are
        // bounded by max_backlog, this only bounds the count.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Durable<Vec<Op>>>(1024);
        let (wal, wal_thread) = wal::spawn(wal_writer, move |batch| {
            let _ = tx.send(batch);
        });
        let logs = Arc::new(Logs {
            wal,
            index: index.clone(),
            backlog: backlog.clone(),
            max_backlog: settings.max_backlog,
            pressure: settings.pressure.clone(),
            recent: recent.clone(),
            id_lock: Mutex::new(()),
            threads: Mutex::new(vec![wal_thread]),
            events: registry.counter("instantops_logs_accepted_total", "Log events made durable in the WAL.", &[]),
            wal_bytes: registry.counter("instantops_logs_wal_bytes_total", "Bytes appended to the log WAL.", &[]),
            tail: tail.clone(),
        });
        let indexer =
            Indexer { index: index.clone(), writer: Some(writer), rx, settings, backlog, metrics, wal_dir, recent, tail, uncommitted: 0 };
        let thread = std::thread::Builder::new()
            .name("logs-indexer".into())
            .spawn(move || indexer.run())
            .map_err(|e| OpenError::Io(e.to_string()))?;
        logs.threads.lock().expect("logs lock poisoned").push(thread);
        if index.stale() > 0 {
            // The gauge follows at the indexer's housekeeping.
            let index = logs.index.clone();
            let thread = std::thread::Builder::new()
                .name("logs-rewrite".into())
                .spawn(move || {
                    if let Err(e) = index.upgrade() {
                        tracing::error!(error = %e, "rewriting a log partition of an older build failed; it is retried at the next start");
                    }
                })
                .map_err(|e| OpenError::Io(e.to_string()))?;
            logs.threads.lock().expect("logs lock poisoned").push(thread);
        }
        Ok(logs)
    }

    /// Whether a new batch may come in: refused while indexing is too far
    /// behind, or the process is near its memory limit. Inputs that can
    /// wait wait for this; the others drop.
    pub fn admit(&self) -> Result<(), IngestError> {
        if self.pressure.load(Ordering::Relaxed) {
            return Err(IngestError::Memory);
        }
        let queued = self.backlog.load(Ordering::Relaxed);
        if queued > self.max_backlog {
            return Err(IngestError::Overloaded { queued });
        }
        Ok(())
    }

    /// Waits (up to `patience`) for [`Logs::admit`].
    pub fn admit_within(&self, patience: Duration) -> Result<(), IngestError> {
        let deadline = Instant::now() + patience;
        loop {
            match self.admit() {
                Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
                other => return other,
            }
        }
    }

    /// Queues `ops` in the WAL; returns the position to [`Logs::wait`] for
    /// before acknowledging. Callers check [`Logs::admit`] first.
    pub fn submit(&self, ops: Vec<Op>) -> Result<u64, IngestError> {
        let mut buf =
            Vec::with_capacity(ops.iter().map(|op| if let Op::Add { event, .. } = op { event.json.len() + 17 } else { 64 }).sum());
        for op in &ops {
            encode(&mut buf, op);
        }
        let events = ops.iter().filter(|op| matches!(op, Op::Add { .. })).count() as u64;
        self.backlog.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let ids: Vec<(String, Option<Arc<str>>)> = ops
            .iter()
            .filter_map(|op| match op {
                Op::Add { event, .. } => event.id.as_ref().map(|id| (id.clone(), Some(event.json.clone()))),
                Op::Delete { id } => Some((id.clone(), None)),
            })
            .collect();
        let len = buf.len() as u64;
        let end = self.wal.submit(&buf, ops).inspect_err(|_| {
            self.backlog.fetch_sub(len, Ordering::Relaxed);
        })?;
        if !ids.is_empty() {
            let mut recent = self.recent.lock().expect("logs lock poisoned");
            for (id, json) in ids {
                recent.insert(id, (end, json));
            }
        }
        self.events.add(events);
        self.wal_bytes.add(len);
        Ok(end)
    }

    /// Blocks until everything before `end` is durable.
    pub fn wait(&self, end: u64) -> Result<(), IngestError> {
        Ok(self.wal.wait(end)?)
    }

    /// [`Logs::admit`], [`Logs::submit`] and [`Logs::wait`]: returns once the
    /// events are durable.
    pub fn ingest(&self, ops: Vec<Op>) -> Result<(), IngestError> {
        self.admit()?;
        let end = self.submit(ops)?;
        self.wait(end)
    }

    /// The current JSON of the event with Elasticsearch id `id`, if any.
    pub fn get(&self, id: &str) -> Result<Option<String>, IndexError> {
        if let Some((_, json)) = self.recent.lock().expect("logs lock poisoned").get(id) {
            return Ok(json.as_deref().map(String::from));
        }
        self.index.get(id)
    }

    /// The WAL position the index holds everything below.
    pub fn indexed(&self) -> u64 {
        self.index.indexed()
    }

    /// Stops taking events, indexes and commits everything taken, and waits.
    pub fn close(&self) {
        self.index.stop_upgrade();
        self.wal.close();
        let threads: Vec<_> = self.threads.lock().expect("logs lock poisoned").drain(..).collect();
        for t in threads {
            let _ = t.join();
        }
    }
}

#[derive(Debug, Error)]
pub enum OpenError {
    #[error(transparent)]
    Index(#[from] IndexError),
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("cannot start the log indexer: {0}")]
    Io(String),
}

/// Appends `op` as one WAL record; [`decode`] reads it back.
fn encode(buf: &mut Vec<u8>, op: &Op) {
    match op {
        Op::Add { event, fresh } => {
            let kind = if *fresh { Kind::FreshEvent } else { Kind::Event };
            wal::encode(buf, kind, &event.ts_ms.to_le_bytes(), event.json.as_bytes());
        }
        Op::Delete { id } => wal::encode(buf, Kind::Delete, &[], id.as_bytes()),
    }
}

/// An [`Op`] as encoded in a WAL record, decoded for replay.
fn decode(kind: Kind, payload: &[u8]) -> Option<Op> {
    match kind {
        Kind::Event | Kind::FreshEvent => {
            let ts_ms = i64::from_le_bytes(payload.get(..8)?.try_into().ok()?);
            let json = std::str::from_utf8(payload.get(8..)?).ok()?.to_owned();
            Some(Op::Add { event: Event::stored(ts_ms, json).ok()?, fresh: kind == Kind::FreshEvent })
        }
        Kind::Delete => Some(Op::Delete { id: String::from_utf8(payload.to_vec()).ok()? }),
    }
}

fn apply(writer: &mut Writer, op: Op) -> Result<(), IndexError> {
    match op {
        Op::Add { event, fresh } => {
            if !fresh && let Some(id) = &event.id {
                // `index` of an existing id replaces it.
                writer.delete(id);
            }
            writer.add(event)
        }
        Op::Delete { id } => {
            writer.delete(&id);
            Ok(())
        }
    }
}

struct Indexer {
    index: Arc<LogIndex>,
    writer: Option<Writer>,
    rx: Receiver<Durable<Vec<Op>>>,
    settings: Settings,
    backlog: Arc<AtomicU64>,
    metrics: Metrics,
    wal_dir: PathBuf,
    recent: Arc<Recent>,
    tail: broadcast::Sender<Arc<str>>,
    /// Events applied since the last commit.
    uncommitted: u64,
}

impl Indexer {
    fn run(mut self) {
        let mut last_commit = Instant::now();
        let mut last_retention = Instant::now() - Duration::from_secs(3600);
        let mut applied = self.index.indexed();
        loop {
            let wait = self.settings.commit_interval.saturating_sub(last_commit.elapsed()).max(Duration::from_millis(1));
            let disconnected = match self.rx.recv_timeout(wait) {
                Ok(batch) => {
                    self.apply(batch, &mut applied);
                    // Take whatever else is queued, until a commit is due.
                    while last_commit.elapsed() < self.settings.commit_interval
                        && let Ok(batch) = self.rx.try_recv()
                    {
                        self.apply(batch, &mut applied);
                    }
                    false
                }
                Err(RecvTimeoutError::Timeout) => false,
                Err(RecvTimeoutError::Disconnected) => true,
            };
            if disconnected || last_commit.elapsed() >= self.settings.commit_interval {
                self.commit(applied);
                last_commit = Instant::now();
            }
            if last_retention.elapsed() >= Duration::from_secs(10) {
                self.housekeeping(applied);
                last_retention = Instant::now();
            }
            if disconnected {
                if let Some(writer) = self.writer.take()
                    && let Err(e) = writer.close()
                {
                    tracing::warn!(error = %e, "closing the log index writer failed");
                }
                return;
            }
        }
    }

    fn apply(&mut self, batch: Durable<Vec<Op>>, applied: &mut u64) {
        let Some(writer) = self.writer.as_mut() else { return };
        let tailed = self.tail.receiver_count() > 0;
        for op in batch.item {
            if let Op::Add { event, .. } = &op {
                self.uncommitted += 1;
                if tailed {
                    // Fails only when every reader has gone.
                    let _ = self.tail.send(event.json.clone());
                }
            }
            if let Err(e) = apply(writer, op) {
                tracing::error!(error = %e, "indexing a log event failed; it stays in the wal and is retried after a restart");
            }
        }
        // Submit added exactly the batch's encoded bytes.
        let left = self.backlog.fetch_sub(batch.len, Ordering::Relaxed) - batch.len;
        self.metrics.backlog.set(left as i64);
        *applied = batch.end;
    }

    fn commit(&mut self, applied: u64) {
        let Some(writer) = self.writer.as_mut() else { return };
        if !writer.is_dirty() {
            return;
        }
        match writer.commit(applied) {
            Ok(()) => {
                self.metrics.commits.inc();
                self.metrics.indexed.add(std::mem::take(&mut self.uncommitted));
                self.recent.lock().expect("logs lock poisoned").retain(|_, (end, _)| *end > applied);
            }
            Err(e) => tracing::error!(error = %e, "log index commit failed; retried at the next interval"),
        }
    }

    /// Rolls the hot partition, removes what retention and max_disk no longer
    /// allow, and drops WAL segments the index holds.
    fn housekeeping(&mut self, applied: u64) {
        let now = now_ms();
        // A partition holds at most a tenth of max_disk, so the bound can be
        // kept by removing whole partitions.
        let max_part = (self.settings.max_disk / 10).max(8 << 20);
        self.index.refresh_sizes();
        if let Some(writer) = self.writer.as_mut()
            && writer.should_roll(now, max_part)
        {
            match writer.roll(&self.index, now, applied) {
                Ok(()) => {
                    self.metrics.indexed.add(std::mem::take(&mut self.uncommitted));
                    self.recent.lock().expect("logs lock poisoned").retain(|_, (end, _)| *end > applied);
                }
                // The writer stays on the hot partition; the next round retries.
                Err(e) => tracing::error!(error = %e, "rolling the log partition failed"),
            }
        }
        let oldest = now - self.settings.retention.as_millis() as i64;
        let removed = self.index.enforce(oldest, self.settings.max_disk);
        if !removed.is_empty() {
            tracing::info!(partitions = ?removed, "log partitions removed by retention");
            self.metrics.removed.add(removed.len() as u64);
        }
        self.metrics.disk.set(self.index.bytes() as i64);
        self.metrics.partitions.set(self.index.partitions().len() as i64);
        self.metrics.stale.set(self.index.stale() as i64);
        if let Err(e) = wal::truncate_before(&self.wal_dir, self.index.indexed()) {
            tracing::warn!(error = %e, "cannot remove indexed wal segments");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::event::{IntoEvent, Parsed};

    fn ops(n: usize) -> Vec<Op> {
        (0..n)
            .map(|i| {
                let mut fields = crate::logs::event::Fields::new();
                fields.insert("message".into(), serde_json::Value::String(format!("event {i}")));
                Op::add(Parsed { ts_ms: 1_700_000_000_000 + i as i64, fields }.into_event("test", None, 10).unwrap())
            })
            .collect()
    }

    fn open(dir: &std::path::Path, max_backlog: u64) -> Arc<Logs> {
        let settings = Settings {
            dir: dir.to_owned(),
            commit_interval: Duration::from_millis(50),
            retention: Duration::from_secs(3650 * 86_400),
            max_disk: 1 << 30,
            writer_heap: 16 << 20,
            writer_threads: 1,
            max_backlog,
            tail_buffer: 16,
            pressure: Arc::default(),
        };
        Logs::open(settings, &Registry::new()).unwrap()
    }

    fn wait_searchable(logs: &Logs, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while logs.index.search("*", 0, i64::MAX / 2, 1).unwrap().0 != n {
            assert!(Instant::now() < deadline, "{n} events never became searchable");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_batch_past_the_backlog_bound_refuses_the_next_until_it_is_indexed() {
        let dir = tempfile::tempdir().unwrap();
        let logs = open(dir.path(), 1024);
        assert!(logs.admit().is_ok());
        // The backlog counts a batch's bytes from its submission until the
        // indexer has applied all of it (20k events: far longer than the next
        // line takes), so the next admission is refused meanwhile.
        let end = logs.submit(ops(20_000)).unwrap();
        assert!(matches!(logs.admit(), Err(IngestError::Overloaded { .. })));
        logs.wait(end).unwrap();
        wait_searchable(&logs, 20_000);
        assert!(logs.admit_within(Duration::from_secs(10)).is_ok());
        logs.close();
    }

    #[test]
    fn ops_replay_from_the_wal_as_they_were_submitted() {
        let dir = tempfile::tempdir().unwrap();
        let (_, mut writer) = wal::open(dir.path(), 0).unwrap();
        let mut sent = ops(3);
        if let Op::Add { fresh, .. } = &mut sent[1] {
            *fresh = true;
        }
        sent.push(Op::Delete { id: "gone".into() });
        let mut buf = Vec::new();
        for op in &sent {
            encode(&mut buf, op);
        }
        writer.append(&buf).unwrap();
        drop(writer);
        let (records, _) = wal::open(dir.path(), 0).unwrap();
        let shape = |op: &Op| match op {
            Op::Add { event, fresh } => format!("add {} {} fresh={fresh}", event.ts_ms, event.json),
            Op::Delete { id } => format!("delete {id}"),
        };
        let replayed: Vec<String> = records.iter().map(|r| shape(&decode(r.kind, &r.payload).expect("decodes"))).collect();
        assert_eq!(replayed, sent.iter().map(shape).collect::<Vec<_>>());
        assert!(replayed[1].ends_with("fresh=true"), "{replayed:?}");
    }

    #[test]
    fn a_reopen_replays_only_what_the_index_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let logs = open(dir.path(), 64 << 20);
        logs.ingest(ops(300)).unwrap();
        wait_searchable(&logs, 300);
        logs.ingest(ops(200)).unwrap();
        // Closed at once: the second batch is in the WAL, and in the index
        // only if the closing commit took it; either way it is there once.
        logs.close();
        drop(logs);
        let logs = open(dir.path(), 64 << 20);
        wait_searchable(&logs, 500);
        logs.close();
        drop(logs);
        let logs = open(dir.path(), 64 << 20);
        assert_eq!(logs.index.search("*", 0, i64::MAX / 2, 1).unwrap().0, 500, "nothing replayed twice");
        logs.close();
    }
}
