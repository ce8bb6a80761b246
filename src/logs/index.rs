//! The log index: Tantivy, partitioned by arrival time so that retention drops
//! whole directories. Owns the schema, the partitions on disk, the one writer
//! (the hot partition's), commits, and reads across partitions.
//!
//! Schema, lean on purpose (ARCHITECTURE.md): the event is stored once, as its
//! JSON (`_src`, zstd-compressed doc store); `message` is full-text with
//! positions (phrases); every other field goes into one JSON field `f`,
//! indexed as lowercased keywords without positions (numbers as numbers), so
//! `host:web-01` and `status:[500 TO 599]` work; `ts` (epoch ms) is a fast
//! field only, for time ranges and newest-first order; `_id` is a keyword
//! for Elasticsearch `create`/`delete`.
//!
//! Each partition's commit payload records the WAL position it holds events
//! up to, and its time range; the largest position over all partitions is
//! where WAL replay starts (see `wal.rs`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use tantivy::collector::TopDocs;
use tantivy::query::TermQuery;
use tantivy::schema::{Field, IndexRecordOption, JsonObjectOptions, NumericOptions, STORED, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{LowerCaser, RawTokenizer, RemoveLongFilter, TextAnalyzer, TokenizerManager};
use tantivy::{DocAddress, Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use thiserror::Error;

use super::event::Event;
use super::json::{Json, Object, View};

#[derive(Debug, Error)]
pub enum IndexError {
    #[error("log index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    #[error("log index io on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("log query: {0}")]
    Query(String),
}

/// The schema's fields.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Fields {
    pub ts: Field,
    pub message: Field,
    pub attrs: Field,
    pub id: Field,
    pub src: Field,
    pub seq: Field,
}

/// Field names as aggregations and sorts see them: `ts`, `seq`, and
/// `f.<path>` for the JSON attributes.
pub(super) const TS: &str = "ts";
pub(super) const SEQ: &str = "seq";
pub(super) const ATTRS: &str = "f";

/// The fields as every build's schema numbers them (in the order
/// [`schema_with_ts`] adds them): what inputs build documents with.
pub(super) const FIELDS: Fields = Fields {
    ts: Field::from_field_id(0),
    message: Field::from_field_id(1),
    attrs: Field::from_field_id(2),
    id: Field::from_field_id(3),
    src: Field::from_field_id(4),
    seq: Field::from_field_id(5),
};

fn schema() -> (Schema, Fields) {
    // Columnar only: Tantivy answers a range over a fast field from the
    // column, so terms for it would only be written, never read (a term and a
    // posting an event; one a millisecond for JSON and `_bulk` events).
    // Partitions of earlier builds index it too, and are read the same way.
    schema_with_ts(NumericOptions::default().set_fast())
}

/// The schema with `ts` as `ts_options` says; the other fields are the same
/// in every build (the field ids queries use).
fn schema_with_ts(ts_options: NumericOptions) -> (Schema, Fields) {
    let mut b = Schema::builder();
    let ts = b.add_i64_field(TS, ts_options);
    let text = TextFieldIndexing::default().set_tokenizer("default").set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let message = b.add_text_field("message", TextOptions::default().set_indexing_options(text));
    let keyword = TextFieldIndexing::default().set_tokenizer("keyword").set_index_option(IndexRecordOption::Basic);
    // Columnar too, as written (up to 256 bytes, as Elasticsearch's dynamic
    // keywords): ranges, `_exists_`, terms aggregations and field statistics.
    let attrs_options = JsonObjectOptions::default().set_indexing_options(keyword).set_expand_dots_enabled().set_fast("exact");
    let attrs = b.add_json_field(ATTRS, attrs_options);
    // One term a document: a length norm would be a byte a document of
    // nothing (every event has one, `_bulk` or not).
    let id_indexing = TextFieldIndexing::default().set_tokenizer("raw").set_index_option(IndexRecordOption::Basic).set_fieldnorms(false);
    let id = b.add_text_field("_id", TextOptions::default().set_indexing_options(id_indexing));
    let src = b.add_text_field("_src", STORED);
    // Arrival order within the partition: the stable tiebreak of equal times.
    let seq = b.add_u64_field(SEQ, NumericOptions::default().set_fast());
    (b.build(), Fields { ts, message, attrs, id, src, seq })
}

/// What a partition's last commit says about it.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize)]
pub struct Meta {
    /// Events at WAL positions below this are in the partition (or an older one).
    pub wal: u64,
    pub min_ts: i64,
    pub max_ts: i64,
    pub docs: u64,
}

/// One partition: a Tantivy index in its own directory.
pub struct Partition {
    pub name: String,
    dir: PathBuf,
    index: Index,
    reader: IndexReader,
    meta: RwLock<Meta>,
    bytes: std::sync::atomic::AtomicU64,
}

impl Partition {
    /// Its creation time (the name's digits): orders partitions, and events
    /// with equal times across them.
    pub fn number(&self) -> u64 {
        self.name[1..].parse().unwrap_or(0)
    }

    pub(super) fn searcher(&self) -> tantivy::Searcher {
        self.reader.searcher()
    }

    pub fn meta(&self) -> Meta {
        *self.meta.read().expect("partition lock poisoned")
    }
    pub fn bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Every partition, oldest first; the last is the hot one.
pub struct LogIndex {
    dir: PathBuf,
    fields: Fields,
    schema: Schema,
    /// Tantivy's tokenizers plus `keyword`, shared by every partition and the query parser.
    tokenizers: TokenizerManager,
    parts: RwLock<Vec<Arc<Partition>>>,
    /// Partitions with term dictionaries this build cannot read, waiting for
    /// [`LogIndex::upgrade`] (oldest first). Not searched until rewritten,
    /// never written to, never removed by retention.
    stale: Mutex<Vec<Partition>>,
    /// The hot writer's heap: the rewriting writer takes at most this.
    heap: usize,
    /// Set by [`LogIndex::stop_upgrade`]: a rewrite in progress is abandoned.
    stopping: AtomicBool,
}

/// The hot partition's writer and what it has taken since its last commit.
pub struct Writer {
    fields: Fields,
    part: Arc<Partition>,
    writer: IndexWriter,
    pending: Meta,
    dirty: bool,
    heap: usize,
    threads: usize,
    created_day: i64,
}

const DAY_MS: i64 = 86_400_000;
/// Decompressed doc-store blocks each segment's reader keeps (Tantivy's
/// default is 100 of up to 16 KB, 1.6 MB a segment): a search reads its
/// newest hits, a few blocks a segment, and a partition has many segments.
const DOC_STORE_CACHE_BLOCKS: usize = 8;

impl LogIndex {
    /// Opens every partition under `dir`, and a writer on the newest one (or a
    /// new one when there is none, or when the newest waits for a rewrite).
    /// Partitions of an older build are only set aside here: opening stays
    /// fast however much they hold, and [`LogIndex::upgrade`] rewrites them.
    pub fn open(dir: &Path, heap: usize, threads: usize, now_ms: i64) -> Result<(Arc<LogIndex>, Writer), IndexError> {
        std::fs::create_dir_all(dir).map_err(|source| IndexError::Io { path: dir.into(), source })?;
        let (schema, fields) = schema();
        let tokenizers = tokenizers();
        super::rewrite::recover(dir)?;
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(|source| IndexError::Io { path: dir.into(), source })?
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.starts_with('p') && n.len() == 14 && n[1..].bytes().all(|c| c.is_ascii_digit()))
            .collect();
        names.sort();
        let (mut parts, mut stale) = (Vec::new(), Vec::new());
        for name in names {
            let path = dir.join(&name);
            if !path.join("meta.json").exists() {
                // Created but never committed: nothing in it.
                let _ = std::fs::remove_dir_all(&path);
                continue;
            }
            let part = open_partition(&path, name, &tokenizers)?;
            match super::rewrite::needed(&part.searcher(), &fields)? {
                true => {
                    tracing::info!(partition = %part.name, events = part.meta().docs, "log partition of an older build set aside: searchable once rewritten");
                    stale.push(part);
                }
                false => parts.push(Arc::new(part)),
            }
        }
        let newest_stale = stale.last().map(Partition::number);
        let index = Arc::new(LogIndex {
            dir: dir.to_owned(),
            fields,
            schema,
            tokenizers,
            parts: RwLock::new(parts),
            stale: Mutex::new(stale),
            heap,
            stopping: AtomicBool::new(false),
        });
        let hot = index.parts.read().expect("index lock poisoned").last().cloned();
        let writer = match (hot, newest_stale) {
            (Some(part), None) => index.writer_on(part, heap, threads)?,
            (Some(part), Some(number)) if part.number() > number => index.writer_on(part, heap, threads)?,
            // The hot partition comes after every other, and starts at the
            // WAL position every partition holds.
            _ => index.new_partition(heap, threads, now_ms, index.indexed())?,
        };
        Ok((index, writer))
    }

    /// Rewrites the partitions set aside at open, newest first (recent events
    /// are the ones looked for), each made searchable when it is done. Stops
    /// early, leaving the rest for the next start, after [`LogIndex::stop_upgrade`].
    pub fn upgrade(&self) -> Result<(), IndexError> {
        loop {
            let next = self.stale.lock().expect("index lock poisoned").last().map(|p| (p.dir.clone(), p.name.clone(), p.searcher()));
            let Some((path, name, searcher)) = next else { return Ok(()) };
            let started = std::time::Instant::now();
            let outcome =
                super::rewrite::rewrite(&path, &searcher, &self.schema, &self.fields, &self.tokenizers, self.heap, &self.stopping)?;
            drop(searcher);
            let Some(events) = outcome else { return Ok(()) };
            let part = Arc::new(open_partition(&path, name, &self.tokenizers)?);
            tracing::info!(partition = %part.name, events, ms = started.elapsed().as_millis() as u64, "log partition rewritten: its term dictionary was of an older kind");
            {
                // Both locks, so a partition is always in one list or the other.
                let mut stale = self.stale.lock().expect("index lock poisoned");
                let mut parts = self.parts.write().expect("index lock poisoned");
                stale.retain(|p| p.name != part.name);
                let at = parts.partition_point(|p| p.name < part.name);
                parts.insert(at, part.clone());
            }
        }
    }

    /// Partitions still waiting for [`LogIndex::upgrade`].
    pub fn stale(&self) -> usize {
        self.stale.lock().expect("index lock poisoned").len()
    }

    /// Makes a running [`LogIndex::upgrade`] abandon its rewrite and return.
    pub fn stop_upgrade(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The WAL position every event below is indexed to.
    pub fn indexed(&self) -> u64 {
        let stale = self.stale.lock().expect("index lock poisoned").iter().map(|p| p.meta().wal).max().unwrap_or(0);
        self.parts.read().expect("index lock poisoned").iter().map(|p| p.meta().wal).max().unwrap_or(0).max(stale)
    }

    pub fn partitions(&self) -> Vec<Arc<Partition>> {
        self.parts.read().expect("index lock poisoned").clone()
    }

    /// Bytes on disk over all partitions, as of the last [`LogIndex::refresh_sizes`],
    /// those waiting for [`LogIndex::upgrade`] included (the disk gauge).
    /// `max_disk` counts only the searched ones, which are all it can remove.
    pub fn bytes(&self) -> u64 {
        let stale: u64 = self.stale.lock().expect("index lock poisoned").iter().map(Partition::bytes).sum();
        self.partitions().iter().map(|p| p.bytes()).sum::<u64>() + stale
    }

    /// Reads every partition's size on disk (a directory listing each): for
    /// retention, rolls and the disk gauge, not on every commit.
    pub fn refresh_sizes(&self) {
        for part in self.partitions() {
            part.bytes.store(dir_bytes(&part.dir), std::sync::atomic::Ordering::Relaxed);
        }
    }

    fn writer_on(&self, part: Arc<Partition>, heap: usize, threads: usize) -> Result<Writer, IndexError> {
        let writer = part.index.writer_with_num_threads(threads, heap)?;
        writer.set_merge_policy(Box::new(merge_policy()));
        let pending = part.meta();
        let created_day = part.name[1..].parse::<i64>().unwrap_or(0) / DAY_MS;
        Ok(Writer { fields: self.fields, part, writer, pending, dirty: false, heap, threads, created_day })
    }

    /// Starts a new hot partition, committed at once so that its payload
    /// carries the WAL position even before it holds anything.
    fn new_partition(&self, heap: usize, threads: usize, now_ms: i64, wal: u64) -> Result<Writer, IndexError> {
        // After every other partition, whatever the clock says.
        let newest = {
            let parts = self.parts.read().expect("index lock poisoned").last().map(|p| p.number());
            let stale = self.stale.lock().expect("index lock poisoned").last().map(|p| p.number());
            parts.max(stale)
        };
        let mut stamp = now_ms.max(0).max(newest.map_or(0, |n| n as i64 + 1));
        let name = loop {
            let name = format!("p{stamp:013}");
            if !self.dir.join(&name).exists() {
                break name;
            }
            stamp += 1;
        };
        let path = self.dir.join(&name);
        std::fs::create_dir_all(&path).map_err(|source| IndexError::Io { path: path.clone(), source })?;
        let mut index = Index::builder().schema(self.schema.clone()).settings(settings()).create_in_dir(&path)?;
        index.set_tokenizers(self.tokenizers.clone());
        index.set_fast_field_tokenizers(self.tokenizers.clone());
        let reader =
            index.reader_builder().reload_policy(ReloadPolicy::Manual).doc_store_cache_num_blocks(DOC_STORE_CACHE_BLOCKS).try_into()?;
        let meta = Meta { wal, min_ts: i64::MAX, max_ts: i64::MIN, docs: 0 };
        let part = Arc::new(Partition { name, dir: path, index, reader, meta: RwLock::new(meta), bytes: Default::default() });
        let mut writer = self.writer_on(part.clone(), heap, threads)?;
        writer.pending = meta;
        writer.dirty = true;
        writer.commit(wal)?;
        self.parts.write().expect("index lock poisoned").push(part);
        Ok(writer)
    }

    pub(super) fn fields(&self) -> &Fields {
        &self.fields
    }

    pub(super) fn tokenizer_manager(&self) -> TokenizerManager {
        self.tokenizers.clone()
    }

    pub(super) fn source(&self, searcher: &tantivy::Searcher, addr: DocAddress) -> Result<String, IndexError> {
        let doc: TantivyDocument = searcher.doc(addr)?;
        Ok(doc.get_first(self.fields.src).and_then(|v| tantivy::schema::Value::as_str(&v)).unwrap_or("{}").to_owned())
    }

    /// The stored event with Elasticsearch id `id`, from the committed partitions.
    pub fn get(&self, id: &str) -> Result<Option<String>, IndexError> {
        let term = Term::from_field_text(self.fields.id, id);
        for part in self.partitions().iter().rev() {
            let searcher = part.reader.searcher();
            let top = searcher.search(&TermQuery::new(term.clone(), IndexRecordOption::Basic), &TopDocs::with_limit(1).order_by_score())?;
            if let Some((_, addr)) = top.first() {
                return Ok(Some(self.source(&searcher, *addr)?));
            }
        }
        Ok(None)
    }

    /// Removes the partitions (never the hot one) that retention or the disk
    /// bound no longer allows: every event older than `oldest_ms`, then the
    /// oldest while over `max_disk`. Returns the names removed.
    pub fn enforce(&self, oldest_ms: i64, max_disk: u64) -> Vec<String> {
        let mut removed = Vec::new();
        loop {
            let victim = {
                let parts = self.parts.read().expect("index lock poisoned");
                let total: u64 = parts.iter().map(|p| p.bytes()).sum();
                let sealed = &parts[..parts.len().saturating_sub(1)];
                sealed
                    .iter()
                    .find(|p| p.meta().max_ts < oldest_ms)
                    .or_else(|| if total > max_disk { sealed.first() } else { None })
                    .cloned()
            };
            let Some(victim) = victim else { break };
            self.parts.write().expect("index lock poisoned").retain(|p| !Arc::ptr_eq(p, &victim));
            // Readers still holding its files keep them open until they finish.
            if let Err(e) = std::fs::remove_dir_all(&victim.dir) {
                tracing::warn!(partition = %victim.name, error = %e, "cannot remove an expired log partition");
            }
            removed.push(victim.name.clone());
        }
        removed
    }
}

fn open_partition(path: &Path, name: String, tokenizers: &TokenizerManager) -> Result<Partition, IndexError> {
    let mut index = Index::open_in_dir(path)?;
    index.set_tokenizers(tokenizers.clone());
    index.set_fast_field_tokenizers(tokenizers.clone());
    let reader =
        index.reader_builder().reload_policy(ReloadPolicy::Manual).doc_store_cache_num_blocks(DOC_STORE_CACHE_BLOCKS).try_into()?;
    let meta = index.load_metas()?.payload.and_then(|p| serde_json::from_str::<Meta>(&p).ok()).unwrap_or_default();
    let part = Partition { name, dir: path.to_owned(), index, reader, meta: RwLock::new(meta), bytes: Default::default() };
    part.bytes.store(dir_bytes(path), std::sync::atomic::Ordering::Relaxed);
    Ok(part)
}

/// Bytes of events compressed together in the doc store (Tantivy's default
/// is 16 KiB). Tantivy's zstd makes a fresh compression context for every
/// block, so small blocks cost CPU as well as ratio: 64 KiB blocks took the
/// syslog index from 0.58 to 0.51 of the raw bytes and bare indexing from
/// ~51k to 59-73k events/s. 128 KiB took it to 0.49-0.51 (`zstd -b1`: nginx
/// lines' JSON 13.05x -> 13.86x) with no change a search could measure: a
/// search whose 100 hits lie one or a few to a block (`bench logsearch`'s
/// sparse shape) took 5.6-6.3 ms p50 with either. 256 KiB took another 3 %
/// off the store and made that search ~20 % slower (6.0 -> 7.2 ms). A
/// partition keeps the block size it was made with (BENCHMARKS.md, issue 6).
const DOC_STORE_BLOCK: usize = 128 << 10;

/// zstd's level for the doc store: on the events' JSON in 64 KiB blocks,
/// level 1 compresses as well as zstd's default 3 (10.29x against 10.26x) and
/// faster (870 against 710 MB/s); 6 would be 7 % smaller and 5x slower.
const DOC_STORE_ZSTD_LEVEL: i32 = 1;

/// How a new partition is written: events in zstd blocks of [`DOC_STORE_BLOCK`].
/// Segments of about the same size that are merged at once: 16, not
/// Tantivy's 8. A commit every second leaves a segment per indexing thread,
/// and with 8 the merge thread took 17 % of the appliance's CPU under syslog
/// ingest (`perf`); merging twice as many at once means fewer merge rounds
/// per event. With 16, syslog ingest end to end went
/// from 79.5k and 82.6k events/s to 85.4k and 94.3k in 10 s runs, and from
/// 53.0k and 67.7k to 56.9k and 82.4k in 60 s runs (interleaved, same
/// binary); a partition after 30 s of it held 20 segments instead of 14, and
/// searches over it took the same time (BENCHMARKS.md, "Log ingest").
const MERGE_MIN_SEGMENTS: usize = 16;

fn merge_policy() -> tantivy::merge_policy::LogMergePolicy {
    let mut policy = tantivy::merge_policy::LogMergePolicy::default();
    policy.set_min_num_segments(MERGE_MIN_SEGMENTS);
    policy
}

pub(super) fn settings() -> tantivy::IndexSettings {
    tantivy::IndexSettings {
        docstore_compression: tantivy::store::Compressor::Zstd(tantivy::store::ZstdCompressor {
            compression_level: Some(DOC_STORE_ZSTD_LEVEL),
        }),
        docstore_blocksize: DOC_STORE_BLOCK,
        ..Default::default()
    }
}

/// Tantivy's default tokenizers plus `keyword` (the whole value, lowercased)
/// and `exact` (the whole value as written); both drop values over 256 bytes.
pub(super) fn tokenizers() -> TokenizerManager {
    let manager = TokenizerManager::default();
    let keyword = TextAnalyzer::builder(RawTokenizer::default()).filter(RemoveLongFilter::limit(256)).filter(LowerCaser).build();
    manager.register("keyword", keyword);
    manager.register("exact", TextAnalyzer::builder(RawTokenizer::default()).filter(RemoveLongFilter::limit(256)).build());
    manager
}

fn dir_bytes(path: &Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).filter(|m| m.is_file()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

impl Writer {
    /// Adds one event, its document numbered with its arrival in the partition.
    pub fn add(&mut self, event: Event) -> Result<(), IndexError> {
        let Event { ts_ms, mut doc, .. } = event;
        doc.add_u64(self.fields.seq, self.pending.docs);
        self.writer.add_document(doc)?;
        let p = &mut self.pending;
        p.min_ts = p.min_ts.min(ts_ms);
        p.max_ts = p.max_ts.max(ts_ms);
        p.docs += 1;
        self.dirty = true;
        Ok(())
    }

    /// Deletes the events with Elasticsearch id `id` from this partition.
    pub fn delete(&mut self, id: &str) {
        self.writer.delete_term(Term::from_field_text(self.fields.id, id));
        self.dirty = true;
    }

    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Commits everything added, recording `wal` (the position just past the
    /// last record applied), and makes it searchable.
    pub fn commit(&mut self, wal: u64) -> Result<(), IndexError> {
        self.pending.wal = wal;
        let payload = serde_json::to_string(&self.pending).expect("meta serializes");
        let mut prepared = self.writer.prepare_commit()?;
        prepared.set_payload(&payload);
        prepared.commit()?;
        self.part.reader.reload()?;
        *self.part.meta.write().expect("partition lock poisoned") = self.pending;
        self.dirty = false;
        Ok(())
    }

    /// Whether the hot partition should be sealed: another UTC day, or over `max_bytes`.
    pub fn should_roll(&self, now_ms: i64, max_bytes: u64) -> bool {
        now_ms.div_euclid(DAY_MS) != self.created_day || self.part.bytes() > max_bytes
    }

    /// Seals the hot partition (commits it; its merges finish in the
    /// background) and goes on with a new one. On an error the writer stays
    /// where it was.
    pub fn roll(&mut self, index: &LogIndex, now_ms: i64, wal: u64) -> Result<(), IndexError> {
        self.dirty = true;
        self.commit(wal)?;
        let next = index.new_partition(self.heap, self.threads, now_ms, wal)?;
        let Writer { writer, part: sealed, .. } = std::mem::replace(self, next);
        std::thread::Builder::new()
            .name("logs-seal".into())
            .spawn(move || {
                if let Err(e) = writer.wait_merging_threads() {
                    tracing::warn!(partition = %sealed.name, error = %e, "merges of a sealed log partition failed");
                }
                let _ = sealed.reader.reload();
                sealed.bytes.store(dir_bytes(&sealed.dir), std::sync::atomic::Ordering::Relaxed);
            })
            .map_err(|source| IndexError::Io { path: index.dir.clone(), source })?;
        Ok(())
    }

    /// Stops the writer, letting merges finish.
    pub fn close(self) -> Result<(), IndexError> {
        self.writer.wait_merging_threads()?;
        Ok(())
    }
}

/// The Tantivy document of one event (`event` its members, `json` its text),
/// all but its arrival number, which [`Writer::add`] gives it. `message` is
/// the full-text field (a non-string one as its JSON), a string `_id` the id
/// keyword, and the other members but `@timestamp` and `@version` go into the
/// JSON field, nulls left out.
pub fn document(event: &Object<'_>, ts_ms: i64, json: &str) -> TantivyDocument {
    let f = FIELDS;
    // What the values take: the stored JSON, then the members' keys and
    // values again, with a few bytes of address each. A 274-byte stored
    // application event takes 505 bytes (Tantivy's default reserves 1 KiB).
    let mut doc = TantivyDocument::with_capacity(2 * json.len() + 128);
    doc.add_i64(f.ts, ts_ms);
    match event.get("message") {
        Some(Json::String(s)) => doc.add_text(f.message, s),
        Some(other) => doc.add_text(f.message, other.to_string()),
        None => {}
    }
    if let Some(Json::String(id)) = event.get("_id") {
        doc.add_text(f.id, id);
    }
    doc.add_field_value(f.attrs, View::Members { object: event, skip: kept_apart });
    doc.add_text(f.src, json);
    doc
}

/// Members [`document`] keeps out of the JSON field.
fn kept_apart(key: &str, value: &Json<'_>) -> bool {
    matches!(key, "@timestamp" | "@version" | "message") || (key == "_id" && matches!(value, Json::String(_)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::event::{IntoEvent, Parsed};
    use serde_json::Value;

    const DAY: i64 = 86_400_000;

    fn event(ts_ms: i64, message: &str) -> Event {
        let mut fields = crate::logs::event::Fields::new();
        fields.insert("message".into(), Value::String(message.into()));
        fields.insert("host".into(), Value::String("Web-01".into()));
        Parsed { ts_ms, fields }.into_event("test", None, 100).unwrap()
    }

    #[test]
    fn inputs_number_the_fields_as_the_schema_does() {
        assert_eq!(schema().1, FIELDS);
        assert_eq!(schema_with_ts(NumericOptions::default().set_indexed()).1, FIELDS);
    }

    #[test]
    fn search_is_newest_first_within_the_range_and_keywords_ignore_case() {
        let dir = tempfile::tempdir().unwrap();
        let now = 100 * DAY;
        let (index, mut w) = LogIndex::open(dir.path(), 16 << 20, 1, now).unwrap();
        for (i, msg) in ["disk full on sda", "user login ok", "disk quota warning"].iter().enumerate() {
            let e = event(now + i as i64 * 1000, msg);
            w.add(e).unwrap();
        }
        w.commit(42).unwrap();
        let (total, hits) = index.search("disk", 0, i64::MAX / 2, 10).unwrap();
        assert_eq!(total, 2);
        assert!(hits[0].contains("quota") && hits[1].contains("sda"), "{hits:?}");
        assert_eq!(index.search("host:web-01", 0, i64::MAX / 2, 10).unwrap().0, 3);
        assert_eq!(index.search("\"login ok\"", 0, i64::MAX / 2, 10).unwrap().0, 1);
        assert_eq!(index.search("*", now + 500, now + 1500, 10).unwrap().0, 1);
        assert_eq!(index.indexed(), 42);
        assert!(index.search("host:(", 0, i64::MAX / 2, 1).is_err());
    }

    /// A commit a second leaves small segments; fifteen of them stay apart
    /// (Tantivy's default policy would have merged eight).
    #[test]
    fn small_segments_are_merged_sixteen_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let (index, mut w) = LogIndex::open(dir.path(), 16 << 20, 1, DAY).unwrap();
        for i in 0..15 {
            let e = event(DAY + i, "a segment of its own");
            w.add(e).unwrap();
            w.commit(i as u64 + 1).unwrap();
        }
        let hot = index.partitions().last().unwrap().clone();
        w.close().unwrap();
        assert_eq!(hot.index.searchable_segment_ids().unwrap().len(), 15);
        assert_eq!(index.search("segment", 0, i64::MAX / 2, 100).unwrap().0, 15);
    }

    #[test]
    fn retention_and_max_disk_remove_whole_sealed_partitions_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let day0 = 100 * DAY;
        let (index, mut w) = LogIndex::open(dir.path(), 16 << 20, 1, day0).unwrap();
        // Three partitions, a day of arrival each, each holding that day's events.
        for d in 0..3 {
            for i in 0..50 {
                let e = event(day0 + d * DAY + i, &format!("day {d} event {i}"));
                w.add(e).unwrap();
            }
            w.commit(100 + d as u64).unwrap();
            assert!(w.should_roll(day0 + (d + 1) * DAY, u64::MAX));
            w.roll(&index, day0 + (d + 1) * DAY, 100 + d as u64).unwrap();
        }
        assert_eq!(index.partitions().len(), 4);
        // Nothing older than day 1 is kept: the day-0 partition goes, whole.
        let removed = index.enforce(day0 + DAY, u64::MAX);
        assert_eq!(removed.len(), 1);
        assert_eq!(index.search("*", 0, i64::MAX / 2, 1000).unwrap().0, 100);
        // Over max_disk: oldest first, never the hot one.
        index.refresh_sizes();
        let removed = index.enforce(0, 1);
        assert_eq!(removed.len(), 2);
        assert_eq!(index.partitions().len(), 1);
        // The WAL position survives the removals (the hot partition committed it).
        assert_eq!(index.indexed(), 102);
        drop(w);
        let (reopened, _w) = LogIndex::open(dir.path(), 16 << 20, 1, day0 + 3 * DAY).unwrap();
        assert_eq!(reopened.partitions().len(), 1);
        assert_eq!(reopened.indexed(), 102);
    }

    /// A partition of the builds that indexed `ts` as well as keeping it
    /// columnar is read as it is: not set aside, its time ranges answered,
    /// and written on while it is the hot one. Partitions made from now on
    /// keep `ts` columnar only.
    #[test]
    fn a_partition_whose_ts_is_indexed_is_searched_by_time_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let (schema, fields) = schema_with_ts(NumericOptions::default().set_indexed().set_fast());
        let path = dir.path().join(format!("p{DAY:013}"));
        std::fs::create_dir_all(&path).unwrap();
        let mut old = Index::builder().schema(schema).settings(settings()).create_in_dir(&path).unwrap();
        old.set_tokenizers(tokenizers());
        old.set_fast_field_tokenizers(tokenizers());
        let mut writer: IndexWriter = old.writer_with_num_threads(1, 16 << 20).unwrap();
        for i in 0..10 {
            let mut doc = event(DAY + i * 1000, &format!("indexed ts event {i}")).doc;
            doc.add_u64(fields.seq, i as u64);
            writer.add_document(doc).unwrap();
        }
        let meta = Meta { wal: 10, min_ts: DAY, max_ts: DAY + 9000, docs: 10 };
        let mut prepared = writer.prepare_commit().unwrap();
        prepared.set_payload(&serde_json::to_string(&meta).unwrap());
        prepared.commit().unwrap();
        writer.wait_merging_threads().unwrap();

        let (index, mut w) = LogIndex::open(dir.path(), 16 << 20, 1, DAY + 10_000).unwrap();
        assert_eq!(index.stale(), 0);
        assert_eq!(index.partitions().len(), 1);
        assert!(index.partitions()[0].index.schema().get_field_entry(index.fields.ts).is_indexed());
        assert_eq!(index.search("indexed", DAY + 2000, DAY + 4000, 100).unwrap().0, 3);
        assert_eq!(index.search("indexed", DAY + 2500, DAY + 2999, 100).unwrap().0, 0);
        let e = event(DAY + 20_000, "indexed ts partition, hot");
        w.add(e).unwrap();
        w.commit(11).unwrap();
        assert_eq!(index.search("indexed", DAY + 9000, DAY + 20_000, 100).unwrap().0, 2);
        w.roll(&index, 2 * DAY, 11).unwrap();
        let e = event(2 * DAY + 5, "columnar ts event");
        w.add(e).unwrap();
        w.commit(12).unwrap();
        let hot = index.partitions().last().unwrap().clone();
        assert!(!hot.index.schema().get_field_entry(index.fields.ts).is_indexed());
        assert_eq!(index.search("columnar", 0, 2 * DAY + 4, 100).unwrap().0, 0);
        assert_eq!(index.search("columnar", 0, 2 * DAY + 5, 100).unwrap().0, 1);
        assert_eq!(index.search("event", DAY + 1000, 2 * DAY + 5, 100).unwrap().0, 10);
    }

    /// The FST-era fixture's partitions, copied into `to`.
    fn fst_fixture(to: &Path) {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/logs-fst/index/.");
        let status = std::process::Command::new("cp").arg("-r").arg(&from).arg(to).status().unwrap();
        assert!(status.success(), "cp -r {} {}", from.display(), to.display());
    }

    /// A partition of the FST-era build (tests/fixtures/logs-fst: 40 events,
    /// WAL position 8715) does not hold up the open: it is set aside, its WAL
    /// position still counts, new events go to a new hot partition after it,
    /// and its events become searchable when `upgrade` has rewritten it.
    #[test]
    fn a_partition_of_an_older_build_is_set_aside_at_open_and_rewritten_by_upgrade() {
        let dir = tempfile::tempdir().unwrap();
        fst_fixture(dir.path());
        // The clock is behind the fixture's partition: the hot one still sorts after it.
        let (index, mut w) = LogIndex::open(dir.path(), 16 << 20, 1, DAY).unwrap();
        assert_eq!(index.stale(), 1);
        assert_eq!(index.indexed(), 8715, "replay must not start before what the set-aside partition holds");
        assert_eq!(index.partitions().len(), 1);
        assert!(index.partitions()[0].name.as_str() > "p1795904456405", "{}", index.partitions()[0].name);
        assert_eq!(index.search("fixture:fst", 0, i64::MAX / 2, 100).unwrap().0, 0);
        // The disk gauge counts it all the same.
        let hot: u64 = index.partitions().iter().map(|p| p.bytes()).sum();
        let waiting = dir_bytes(&dir.path().join("p1795904456405"));
        assert!(waiting > 0);
        assert_eq!(index.bytes(), hot + waiting);
        let e = event(DAY, "arrived during the upgrade");
        w.add(e).unwrap();
        w.commit(9000).unwrap();
        index.upgrade().unwrap();
        assert_eq!(index.stale(), 0);
        let names: Vec<String> = index.partitions().iter().map(|p| p.name.clone()).collect();
        assert_eq!(names.len(), 2);
        assert_eq!(names[0], "p1795904456405", "oldest first: {names:?}");
        assert_eq!(index.search("fixture:fst", 0, i64::MAX / 2, 100).unwrap().0, 40);
        assert_eq!(index.search("\"fst build event 7\"", 0, i64::MAX / 2, 100).unwrap().0, 1);
        assert_eq!(index.search("upgrade", 0, i64::MAX / 2, 100).unwrap().0, 1);
        assert_eq!(index.indexed(), 9000);
        // Both the new hot partition and the rewritten one store 128 KiB
        // blocks at zstd level 1, and keep no length norm for `_id`.
        for part in index.partitions() {
            let settings = part.index.settings();
            assert_eq!(settings.docstore_blocksize, DOC_STORE_BLOCK, "{}", part.name);
            let level = tantivy::store::ZstdCompressor { compression_level: Some(DOC_STORE_ZSTD_LEVEL) };
            assert_eq!(settings.docstore_compression, tantivy::store::Compressor::Zstd(level), "{}", part.name);
            assert!(!part.index.schema().get_field_entry(index.fields.id).has_fieldnorms(), "{}", part.name);
        }
        drop(w);
        let (reopened, _w) = LogIndex::open(dir.path(), 16 << 20, 1, DAY).unwrap();
        assert_eq!(reopened.stale(), 0);
        assert_eq!(reopened.search("fixture:fst", 0, i64::MAX / 2, 100).unwrap().0, 40);
    }

    /// A stop during the rewrite leaves the partition as it was, with no
    /// half-written copy, and the next start sets it aside again.
    #[test]
    fn a_stopped_upgrade_leaves_the_partition_for_the_next_start() {
        let dir = tempfile::tempdir().unwrap();
        fst_fixture(dir.path());
        let (index, w) = LogIndex::open(dir.path(), 16 << 20, 1, DAY).unwrap();
        index.stop_upgrade();
        index.upgrade().unwrap();
        assert_eq!(index.stale(), 1);
        let mut left: Vec<String> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        left.sort();
        assert_eq!(left.len(), 2, "{left:?}");
        assert_eq!(left[0], "p1795904456405");
        drop((index, w));
        let (reopened, _w) = LogIndex::open(dir.path(), 16 << 20, 1, DAY).unwrap();
        assert_eq!(reopened.stale(), 1);
        reopened.upgrade().unwrap();
        assert_eq!(reopened.search("fixture:fst", 0, i64::MAX / 2, 100).unwrap().0, 40);
    }
}
