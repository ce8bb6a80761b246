//! Rewrites a log partition whose term dictionary this build cannot read.
//! Partitions written before the switch from FST to sstable term
//! dictionaries (BENCHMARKS.md, issue 6) open, but every term lookup in them
//! fails. [`super::index::LogIndex::open`] sets each such partition aside,
//! and `LogIndex::upgrade`, on a thread of its own after start, indexes it
//! again from the events' stored JSON into a new directory, with each event's
//! time and arrival number and the commit payload (its WAL position) kept,
//! then swaps it in under the same name.
//!
//! The swap is two renames: `pN` to `pN.old`, then `pN.rewrite` to `pN`.
//! [`recover`] runs before partitions are opened and finishes or undoes a swap
//! that a crash interrupted, so a partition is always either the old one or
//! the complete new one. The directory names never match a partition's.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use tantivy::schema::{Field, Schema, Value as _};
use tantivy::tokenizer::TokenizerManager;
use tantivy::{DocAddress, Index, IndexWriter, Searcher, TantivyDocument};

use super::index::{Fields, IndexError, SEQ, TS, document};
use super::json::Object;

const REWRITE: &str = "rewrite";
const ASIDE: &str = "old";
/// The rewriting writer's largest heap (one thread; partitions are at most a
/// tenth of `logs.max_disk`).
const HEAP: usize = 64 << 20;
/// Documents between two looks at the stop flag.
const STOP_CHECK: u32 = 1024;

/// Finishes or undoes swaps a crash interrupted: a half-written `pN.rewrite`
/// is removed; a `pN.old` is removed once `pN` exists (the new one is in
/// place), else renamed back to `pN`.
pub(super) fn recover(dir: &Path) -> Result<(), IndexError> {
    let io = |path: &Path, source| IndexError::Io { path: path.into(), source };
    for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))?.filter_map(Result::ok) {
        let path = entry.path();
        match path.extension().and_then(|e| e.to_str()) {
            Some(REWRITE) => std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?,
            Some(ASIDE) => {
                let base = path.with_extension("");
                match base.exists() {
                    true => std::fs::remove_dir_all(&path).map_err(|e| io(&path, e))?,
                    false => std::fs::rename(&path, &base).map_err(|e| io(&path, e))?,
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether any segment the partition's `searcher` reads has a term
/// dictionary of a kind this build cannot read. The dictionaries it opens are
/// the ones that partition's searches would open (each segment keeps them).
pub(super) fn needed(searcher: &Searcher, fields: &Fields) -> Result<bool, IndexError> {
    // `ts` only in partitions of the builds that indexed it.
    let candidates: [Field; 4] = [fields.ts, fields.message, fields.attrs, fields.id];
    for segment in searcher.segment_readers() {
        let schema = segment.schema();
        for field in candidates.into_iter().filter(|f| schema.get_field_entry(*f).is_indexed()) {
            match segment.inverted_index(field) {
                Ok(_) => {}
                Err(e) if e.to_string().contains("Unsupported dictionary type") => return Ok(true),
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(false)
}

/// Indexes every live event that `searcher` (of the partition at `path`)
/// reads again, and swaps the result in. Returns the events rewritten, or
/// None when `stop` was set before the swap (the partition is as it was).
pub(super) fn rewrite(
    path: &Path,
    searcher: &Searcher,
    schema: &Schema,
    fields: &Fields,
    tokenizers: &TokenizerManager,
    heap: usize,
    stop: &AtomicBool,
) -> Result<Option<u64>, IndexError> {
    let io = |path: &Path, source| IndexError::Io { path: path.into(), source };
    let temp = path.with_extension(REWRITE);
    if temp.exists() {
        std::fs::remove_dir_all(&temp).map_err(|e| io(&temp, e))?;
    }
    std::fs::create_dir_all(&temp).map_err(|e| io(&temp, e))?;
    let mut index = Index::builder().schema(schema.clone()).settings(super::index::settings()).create_in_dir(&temp)?;
    index.set_tokenizers(tokenizers.clone());
    index.set_fast_field_tokenizers(tokenizers.clone());
    // No more than the hot writer's `heap`, and at least Tantivy's least for a thread (15 MB).
    let mut writer: IndexWriter = index.writer_with_num_threads(1, heap.clamp(16 << 20, HEAP))?;
    let mut events = 0;
    for (ord, segment) in searcher.segment_readers().iter().enumerate() {
        let times = segment.fast_fields().i64(TS)?;
        let seqs = segment.fast_fields().u64(SEQ)?;
        for doc in segment.doc_ids_alive() {
            if doc % STOP_CHECK == 0 && stop.load(Ordering::Relaxed) {
                // Dropping the writer stops its threads; nothing was committed.
                drop(writer);
                drop(index);
                std::fs::remove_dir_all(&temp).map_err(|e| io(&temp, e))?;
                return Ok(None);
            }
            let stored: TantivyDocument = searcher.doc(DocAddress::new(ord as u32, doc))?;
            let json = stored.get_first(fields.src).and_then(|v| v.as_str()).unwrap_or("{}");
            let members: Object = serde_json::from_str(json).unwrap_or_default();
            let mut rebuilt = document(&members, times.first(doc).unwrap_or(0), json);
            rebuilt.add_u64(fields.seq, seqs.first(doc).unwrap_or(0));
            writer.add_document(rebuilt)?;
            events += 1;
        }
    }
    let mut prepared = writer.prepare_commit()?;
    if let Some(payload) = searcher.index().load_metas()?.payload {
        prepared.set_payload(&payload);
    }
    prepared.commit()?;
    writer.wait_merging_threads()?;
    let aside = path.with_extension(ASIDE);
    std::fs::rename(path, &aside).map_err(|e| io(path, e))?;
    std::fs::rename(&temp, path).map_err(|e| io(&temp, e))?;
    std::fs::remove_dir_all(&aside).map_err(|e| io(&aside, e))?;
    Ok(Some(events))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each state a crash can leave a swap in ends as exactly one partition
    /// directory with the right contents.
    #[test]
    fn recover_finishes_or_undoes_an_interrupted_swap() {
        let dir = tempfile::tempdir().unwrap();
        let mark = |name: &str, text: &str| {
            std::fs::create_dir_all(dir.path().join(name)).unwrap();
            std::fs::write(dir.path().join(name).join("mark"), text).unwrap();
        };
        // Crashed while writing: the new copy is incomplete.
        mark("p0000000000001", "old");
        mark("p0000000000001.rewrite", "partial");
        // Crashed between the two renames: only the old one is complete.
        mark("p0000000000002.old", "old");
        mark("p0000000000002.rewrite", "complete");
        // Crashed before removing the old one: the new one is in place.
        mark("p0000000000003", "new");
        mark("p0000000000003.old", "old");
        recover(dir.path()).unwrap();
        let mut left: Vec<(String, String)> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name().into_string().unwrap(), std::fs::read_to_string(e.path().join("mark")).unwrap())
            })
            .collect();
        left.sort();
        let want = [("p0000000000001", "old"), ("p0000000000002", "old"), ("p0000000000003", "new")];
        assert_eq!(left, want.map(|(a, b)| (a.to_string(), b.to_string())));
    }
}
