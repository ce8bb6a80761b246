//! Values of the chunk column family and the RocksDB merge operator and
//! compaction filter that act on them.
//!
//! A NaN value is a tombstone: the slot is empty again (whisper's ring slot
//! taken by another interval). Carbon never stores NaN, so no value is lost.
//!
//! Every flush appends one *operand* per (series, archive, chunk): the raw
//! points of that flush, in arrival order. RocksDB folds operands into a
//! compressed *chunk* when it compacts or reads a key (full merge). When it
//! only combines operands (partial merge: writing a memtable, or compacting
//! above the key's older value) the later write wins among them and the
//! result is a *partial*: a chunk's encoding of one point per slot,
//! tombstones kept, laid over whatever is older. Combined operands used to be
//! concatenated at 12 bytes a point, so everything newer than the last full
//! merge took whisper's room: 10M points at 10k series held 139 MB of SST
//! while they arrived (17 MB with partials), 21 MB once compacted. Under
//! [`COMPRESS_FROM`] points they still are. All of these carry the time
//! after which the whole chunk is past its archive's retention, so the
//! compaction filter can drop it and reclaim the space without knowing
//! series policies.
//!
//! A full merge does not encode the chunk again: it keeps the chunk's bytes
//! as they are and lays every newer point over it as a *stack*, the chunk
//! (the base) under a partial (the tail). The compaction filter folds a
//! stack into one chunk when a compaction finds its key quiet (no newer
//! operands, so its chunk has likely filled or its series stopped), and
//! while [`Merger::finishing`] is set (a full manual compaction) every merge
//! folds, so a compacted store holds chunks only. A chunk is thus encoded
//! thoroughly when its key goes quiet, not at every compaction that brings
//! it points: re-encoding open chunks was what throttled a sustained 100k-series carbon
//! flood, the one compaction thread ~90 % in the chunk encoder, writes
//! stalled on level-0 files and ingest down to 1.0M points/s over 60 s.
//! Whatever a later merge decodes again (partials, tails) is encoded with
//! [`chunk::Encoder::quick`]; chunks with the thorough encoder.
//!
//! Layout: `kind: u8`, `expires_at: u32 LE` (epoch seconds), then for an
//! operand a list of `(slot: u32 LE, value: f64 LE)`, for a chunk
//! `chunk::encode`, for a partial its tombstones (`count: u32 LE`, then each
//! `slot: u32 LE`) and the chunk encoding of its values, for a stack the
//! base's length (`u32 LE`), the base's chunk encoding, then a partial's body.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rocksdb::MergeOperands;
use rocksdb::compaction_filter::Decision;

use super::chunk;

const OPERAND: u8 = 1;
pub(super) const CHUNK: u8 = 2;
const PARTIAL: u8 = 3;
pub(super) const STACK: u8 = 4;
/// Combined operands of at least this many points are encoded as a partial.
/// Smaller combinations are re-encoded at every compaction pass they go
/// through. Measured while partials were encoded thoroughly (they are quick
/// now, and a lower bound was not measured since): from 32 points that cost
/// 14-21 % of carbon ingest at rate 0 over 100k series; from 256 the cost was
/// within the machine's noise, and the SST of a paced 10k-series load while
/// it ran was as small (17.2 MB against 17.1).
pub const COMPRESS_FROM: usize = 256;
const HEADER: usize = 5;
const POINT: usize = 12;

/// Encodes one flush's points for one chunk. `points` are (slot, value) in
/// arrival order; duplicates are allowed and the last one wins.
pub fn operand(expires_at: u32, points: &[(u32, f64)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + POINT * points.len());
    out.push(OPERAND);
    out.extend_from_slice(&expires_at.to_le_bytes());
    for (slot, v) in points {
        out.extend_from_slice(&slot.to_le_bytes());
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn expires_at(value: &[u8]) -> Option<u32> {
    Some(u32::from_le_bytes(value.get(1..HEADER)?.try_into().ok()?))
}

/// Appends the points of one stored value (operand, partial or chunk) to
/// `out`, in the order they take effect.
fn decode_into(value: &[u8], out: &mut Vec<(u32, f64)>) -> Result<(), String> {
    let body = value.get(HEADER..).ok_or("value shorter than its header")?;
    match value[0] {
        OPERAND => {
            if body.len() % POINT != 0 {
                return Err(format!("operand of {} bytes is not a whole number of points", body.len()));
            }
            out.extend(body.chunks_exact(POINT).map(|p| {
                let slot = u32::from_le_bytes(p[..4].try_into().expect("chunks_exact gives 12 bytes"));
                let v = f64::from_le_bytes(p[4..].try_into().expect("chunks_exact gives 12 bytes"));
                (slot, v)
            }));
            Ok(())
        }
        CHUNK => {
            out.extend(chunk::decode(body).map_err(|e| e.to_string())?);
            Ok(())
        }
        PARTIAL => decode_partial(body, out),
        STACK => {
            let (base, tail) = split_stack(body)?;
            out.extend(chunk::decode(base).map_err(|e| e.to_string())?);
            decode_partial(tail, out)
        }
        other => Err(format!("unknown chunk value kind {other}")),
    }
}

/// A partial's body: its tombstones, then its values.
fn decode_partial(body: &[u8], out: &mut Vec<(u32, f64)>) -> Result<(), String> {
    let (count, rest) = body.split_at_checked(4).ok_or("partial shorter than its tombstone count")?;
    let count = u32::from_le_bytes(count.try_into().expect("split at 4")) as usize;
    let (slots, encoded) = rest.split_at_checked(count.saturating_mul(4)).ok_or("partial shorter than its tombstones")?;
    out.extend(slots.chunks_exact(4).map(|s| (u32::from_le_bytes(s.try_into().expect("chunks of 4")), f64::NAN)));
    out.extend(chunk::decode(encoded).map_err(|e| e.to_string())?);
    Ok(())
}

/// A stack's body as (the base's chunk encoding, the tail's partial body).
fn split_stack(body: &[u8]) -> Result<(&[u8], &[u8]), String> {
    let (len, rest) = body.split_at_checked(4).ok_or("stack shorter than its base's length")?;
    let len = u32::from_le_bytes(len.try_into().expect("split at 4")) as usize;
    rest.split_at_checked(len).ok_or_else(|| "stack shorter than its base".to_string())
}

/// The chunk encoding of no points: the base of a stack built from operands alone.
static EMPTY_CHUNK: std::sync::LazyLock<Vec<u8>> = std::sync::LazyLock::new(|| chunk::encode(&[]));

/// The points of a stored value, sorted by slot, one per slot (the last write
/// wins), without tombstones.
pub fn points(value: &[u8]) -> Result<Vec<(u32, f64)>, String> {
    let mut all = Vec::new();
    decode_into(value, &mut all)?;
    let mut points = last_write_wins(all);
    points.retain(|(_, v)| !v.is_nan());
    Ok(points)
}

/// Sorts by slot keeping, for each slot, the value written last.
fn last_write_wins(mut points: Vec<(u32, f64)>) -> Vec<(u32, f64)> {
    // A stable sort keeps arrival order among equal slots; keep the last of each run.
    points.sort_by_key(|p| p.0);
    let mut out: Vec<(u32, f64)> = Vec::with_capacity(points.len());
    for p in points {
        match out.last_mut() {
            Some(last) if last.0 == p.0 => *last = p,
            _ => out.push(p),
        }
    }
    out
}

/// RocksDB's full merge for one store, and the switch that makes every merge
/// fold (set while [`Store::compact`](super::store::Store::compact) runs).
#[derive(Default)]
pub struct Merger {
    pub finishing: Arc<AtomicBool>,
}

impl Merger {
    /// RocksDB full merge: the existing value (if any) then every operand,
    /// stacked (see the module docs) or folded into one compressed chunk.
    /// Returning `None` would mark the key corrupt, so an undecodable input
    /// is logged and skipped rather than failing the merge.
    pub fn full_merge(&self, key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
        let values: Vec<&[u8]> = existing.into_iter().chain(operands.iter()).collect();
        if self.finishing.load(Ordering::Relaxed) {
            return Some(fold(key, values.into_iter()));
        }
        Some(stack(key, values.into_iter()))
    }
}

/// A stack of `values`: the first one's chunk, kept as it is, under every
/// later point (see the module docs). Undecodable or out-of-place values
/// make it a [`fold`], which logs and skips them.
fn stack<'a>(key: &[u8], values: impl Iterator<Item = &'a [u8]> + Clone) -> Vec<u8> {
    let mut rest = values.clone().peekable();
    let mut expires = 0;
    let mut tail = Vec::new();
    let mut base: &[u8] = EMPTY_CHUNK.as_slice();
    if let Some(first) = rest.next_if(|first| matches!(first.first(), Some(&CHUNK | &STACK))) {
        let Some(body) = first.get(HEADER..) else { return fold(key, values) };
        expires = expires_at(first).unwrap_or(0);
        if first[0] == CHUNK {
            base = body;
        } else {
            let Ok((chunk, partial)) = split_stack(body) else { return fold(key, values) };
            base = chunk;
            if decode_partial(partial, &mut tail).is_err() {
                return fold(key, values);
            }
        }
    }
    for value in rest {
        // Only a full merge's first value may be a chunk.
        if !matches!(value.first(), Some(&OPERAND | &PARTIAL)) || decode_into(value, &mut tail).is_err() {
            return fold(key, values);
        }
        expires = expires.max(expires_at(value).unwrap_or(0));
    }
    let tail = last_write_wins(tail);
    let mut out = header(STACK, expires, tail.len());
    out.reserve(4 + base.len());
    out.extend_from_slice(&(base.len() as u32).to_le_bytes());
    out.extend_from_slice(base);
    put_partial(&mut out, tail);
    out
}

/// Every value, oldest first, folded into one thoroughly encoded chunk.
fn fold<'a>(key: &[u8], values: impl Iterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut all = Vec::new();
    let mut expires = 0u32;
    for value in values {
        expires = expires.max(expires_at(value).unwrap_or(0));
        if let Err(e) = decode_into(value, &mut all) {
            tracing::error!(key = ?key, error = %e, "skipping an undecodable chunk value");
        }
    }
    let mut points = last_write_wins(all);
    // A full merge sees the key's whole history, so a tombstone has done its
    // work once the value it covers is folded away.
    points.retain(|(_, v)| !v.is_nan());
    let mut out = header(CHUNK, expires, points.len());
    encode_into(&mut out, &points);
    out
}

/// A value's kind and expiry, room reserved for `points` encoded.
fn header(kind: u8, expires: u32, points: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 4 + points * 2);
    out.push(kind);
    out.extend_from_slice(&expires.to_le_bytes());
    out
}

thread_local! {
    // RocksDB merges on its own few background threads, so one encoder per
    // thread keeps the compressor's setup off every merge.
    static ENCODER: std::cell::RefCell<chunk::Encoder> = std::cell::RefCell::new(chunk::Encoder::default());
}

/// Appends `points` in the chunk encoding.
fn encode_into(out: &mut Vec<u8>, points: &[(u32, f64)]) {
    out.extend_from_slice(&ENCODER.with(|e| e.borrow_mut().encode(points)));
}

/// Appends a partial's body of `points` (last write already won): the
/// tombstones, then the values, quickly encoded (a later merge folds them).
/// Tombstones stay, apart (among the values they would send the chunk to
/// float mode): the values they cover are older than the partial.
fn put_partial(out: &mut Vec<u8>, points: Vec<(u32, f64)>) {
    let (tombstones, points): (Vec<_>, Vec<_>) = points.into_iter().partition(|(_, v)| v.is_nan());
    out.extend_from_slice(&(tombstones.len() as u32).to_le_bytes());
    tombstones.iter().for_each(|(slot, _)| out.extend_from_slice(&slot.to_le_bytes()));
    out.extend_from_slice(&ENCODER.with(|e| e.borrow_mut().quick(&points)));
}

/// RocksDB partial merge: operands (and partials) only, combined into one
/// that takes effect as they did in order.
pub fn partial_merge(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    combine(existing.into_iter().chain(operands.iter()), COMPRESS_FROM)
}

/// [`partial_merge`] of `values`, oldest first; `None` (RocksDB then keeps
/// them apart) for a chunk, which only a full merge may fold, or a value that
/// does not decode.
fn combine<'a>(values: impl Iterator<Item = &'a [u8]>, compress_from: usize) -> Option<Vec<u8>> {
    let mut expires = 0u32;
    let mut all = Vec::new();
    for value in values {
        if !matches!(value.first(), Some(&OPERAND | &PARTIAL)) {
            return None;
        }
        expires = expires.max(expires_at(value)?);
        decode_into(value, &mut all).ok()?;
    }
    if all.len() < compress_from {
        return Some(operand(expires, &all));
    }
    let points = last_write_wins(all);
    let mut out = header(PARTIAL, expires, points.len());
    put_partial(&mut out, points);
    Some(out)
}

/// The compaction filter: drops a chunk once all of it is past retention,
/// and folds a stack (a key that gained no points in this compaction) into
/// one chunk.
pub fn filter(now: u32, key: &[u8], value: &[u8]) -> Decision {
    thread_local! {
        static FOLDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    match expires_at(value) {
        Some(t) if t < now => Decision::Remove,
        _ if value.first() == Some(&STACK) => FOLDED.with(|folded| {
            let mut folded = folded.borrow_mut();
            *folded = fold(key, std::iter::once(value));
            // SAFETY: RocksDB copies a changed value before the filter runs
            // again (`new_value->assign` in its C API), and only this thread
            // writes this buffer, so the bytes outlive their use.
            Decision::Change(unsafe { std::slice::from_raw_parts(folded.as_ptr(), folded.len()) })
        }),
        _ => Decision::Keep,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_writes_win_within_and_across_operands() {
        let a = operand(100, &[(3, 1.0), (1, 2.0), (3, 4.0)]);
        let got = points(&a).expect("decodes");
        assert_eq!(got, vec![(1, 2.0), (3, 4.0)]);
    }

    #[test]
    fn expiry() {
        let a = operand(100, &[(0, 1.0)]);
        assert!(matches!(filter(101, b"k", &a), Decision::Remove));
        assert!(matches!(filter(100, b"k", &a), Decision::Keep));
        assert!(matches!(filter(0, b"k", b"\x07"), Decision::Keep), "unreadable values are kept");
    }

    fn values(parts: &[Vec<u8>]) -> impl Iterator<Item = &[u8]> + Clone {
        parts.iter().map(Vec::as_slice)
    }

    #[test]
    fn a_partial_keeps_the_later_write_and_the_tombstones_over_older_values() {
        let base = fold(b"k", values(&[operand(50, &[(0, 1.0), (1, 2.0), (2, 3.0), (400, 7.0)])]));
        let many: Vec<(u32, f64)> = (0..300).map(|slot| (slot, f64::from(slot) * 0.5)).collect();
        let ops = [operand(60, &many), operand(60, &[(1, f64::NAN)]), operand(70, &[(5, 9.0), (0, 4.25)])];
        let partial = combine(values(&ops), COMPRESS_FROM).expect("operands combine");
        assert_eq!(partial[0], PARTIAL);
        assert_eq!(expires_at(&partial), Some(70));
        let concatenated: usize = ops.iter().map(|o| o.len() - HEADER).sum();
        assert!(partial.len() * 4 < concatenated, "{} bytes against {concatenated} concatenated", partial.len());
        let folded = fold(b"k", values(&[base, partial]));
        let got = points(&folded).unwrap();
        let mut want: Vec<(u32, f64)> = many.clone();
        want[0].1 = 4.25;
        want[5].1 = 9.0;
        want.remove(1);
        want.push((400, 7.0));
        assert_eq!(got, want);
        assert_eq!(expires_at(&folded), Some(70));
    }

    #[test]
    fn few_points_stay_an_operand_and_a_chunk_is_not_combined() {
        let small = combine(values(&[operand(1, &[(3, 1.0)]), operand(2, &[(3, 2.0), (4, f64::NAN)])]), 4).unwrap();
        assert_eq!(small[0], OPERAND);
        let got = points(&small).unwrap();
        assert_eq!(got, vec![(3, 2.0)], "the later write wins, the tombstone is no point");
        let chunk = fold(b"k", values(&[operand(1, &[(3, 1.0)])]));
        assert_eq!(combine(values(&[chunk, operand(1, &[(4, 1.0)])]), 0), None);
        assert_eq!(combine(values(&[vec![OPERAND, 1, 0, 0, 0, 9]]), 0), None, "a broken operand is kept apart");
    }

    /// What the compaction filter writes for `value`, if it changes it.
    fn filtered(value: &[u8]) -> Option<Vec<u8>> {
        match filter(0, b"k", value) {
            Decision::Change(bytes) => Some(bytes.to_vec()),
            _ => None,
        }
    }

    #[test]
    fn a_merge_stacks_points_on_the_chunk_as_it_is_and_the_filter_folds_them() {
        let chunk = fold(b"k", values(&[operand(50, &[(0, 1.5), (1, 2.5), (2, 3.5)])]));
        let ops = [operand(60, &[(3, 4.5), (1, f64::NAN)]), operand(70, &[(0, 9.25)])];
        let stacked = stack(b"k", values(&[chunk.clone(), ops[0].clone(), ops[1].clone()]));
        assert_eq!(stacked[0], STACK);
        let (base, _) = split_stack(&stacked[HEADER..]).expect("a stack");
        assert_eq!(base, &chunk[HEADER..], "the chunk's bytes are kept, not encoded again");
        let want = fold(b"k", values(&[chunk, ops[0].clone(), ops[1].clone()]));
        assert_eq!(points(&stacked).unwrap(), vec![(0, 9.25), (2, 3.5), (3, 4.5)]);
        assert_eq!(expires_at(&stacked), Some(70));
        // A stack gains more points as a stack; quiet, the filter folds it.
        let more = stack(b"k", values(&[stacked, operand(80, &[(4, 5.5)])]));
        assert_eq!(more[0], STACK);
        let folded = filtered(&more).expect("a stack is folded");
        assert_eq!(folded[0], CHUNK);
        assert_eq!(folded, fold(b"k", values(&[want, operand(80, &[(4, 5.5)])])), "the same chunk as folding all along");
        assert_eq!(filtered(&folded), None, "a chunk is kept");
        assert_eq!(filtered(&operand(1, &[(0, 1.0)])), None);
        // A damaged first value is skipped, as a fold skips it, not a panic.
        let over = stack(b"k", values(&[vec![STACK, 1], operand(80, &[(4, 5.5)])]));
        assert_eq!(points(&over).unwrap(), vec![(4, 5.5)]);
    }

    proptest::proptest! {
        /// Damaged values (a torn stack, a stray kind byte) never panic a
        /// merge or the filter, which run inside RocksDB.
        #[test]
        fn damaged_values_never_panic_a_merge_or_the_filter(
            kind in 0u8..6,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            let mut damaged = vec![kind];
            damaged.extend(body);
            let _ = stack(b"k", values(&[damaged.clone(), operand(1, &[(0, 1.0)])]));
            let _ = filtered(&damaged);
            let _ = points(&damaged);
        }
    }

    proptest::proptest! {
        /// Whether each full merge stacks or folds, and whether a
        /// compaction folds a stack between them, the points read are
        /// those of folding every write in order.
        #[test]
        fn stacks_and_folds_in_any_order_read_the_same_points(
            writes in proptest::collection::vec(proptest::collection::vec((0u32..200, 0u16..2100), 1..40), 1..10),
            folds in proptest::collection::vec(proptest::bool::ANY, 10),
            quiet in proptest::collection::vec(proptest::bool::ANY, 10),
            first_alone in proptest::bool::ANY,
        ) {
            let value = |v: u16| if v >= 2000 { f64::NAN } else { f64::from(v) / 4.0 + 0.01 };
            let ops: Vec<Vec<u8>> = writes.iter().enumerate()
                .map(|(i, pts)| operand(10 + i as u32, &pts.iter().map(|&(s, v)| (s, value(v))).collect::<Vec<_>>()))
                .collect();
            let want = fold(b"k", values(&ops));
            let mut current: Option<Vec<u8>> = None;
            for (i, op) in ops.iter().enumerate() {
                // A key's first merge may see operands alone.
                let mut merging: Vec<Vec<u8>> = current.take().into_iter().collect();
                merging.push(op.clone());
                if first_alone && i == 0 {
                    merging.push(op.clone());
                }
                let merged = if folds[i] { fold(b"k", values(&merging)) } else { stack(b"k", values(&merging)) };
                current = Some(if quiet[i] { filtered(&merged).unwrap_or(merged) } else { merged });
            }
            let got = current.expect("merged");
            proptest::prop_assert_eq!(points(&got).unwrap(), points(&want).unwrap());
            proptest::prop_assert_eq!(expires_at(&got), expires_at(&want));
            proptest::prop_assert_eq!(fold(b"k", values(&[got])), want, "folded, the same chunk");
        }
    }

    proptest::proptest! {
        /// However RocksDB groups operands into partials (and partials
        /// into partials) before the full merge, the chunk is the same as
        /// folding them one by one.
        #[test]
        fn partial_merges_in_any_grouping_fold_to_the_same_chunk(
            base in proptest::collection::vec((0u32..300, 0u16..2000), 0..50),
            ops in proptest::collection::vec(proptest::collection::vec((0u32..300, 0u16..2100), 1..60), 1..12),
            cuts in proptest::collection::vec(proptest::bool::ANY, 12),
            regroup in proptest::bool::ANY,
            compress_from in proptest::prop_oneof![proptest::strategy::Just(0usize), 1usize..400],
        ) {
            // Values past 2000 are tombstones.
            let value = |v: u16| if v >= 2000 { f64::NAN } else { f64::from(v) / 8.0 };
            let base = operand(10, &base.iter().map(|&(s, v)| (s, value(v.min(1999)))).collect::<Vec<_>>());
            let ops: Vec<Vec<u8>> = ops.iter().enumerate()
                .map(|(i, pts)| operand(20 + i as u32, &pts.iter().map(|&(s, v)| (s, value(v))).collect::<Vec<_>>()))
                .collect();
            let mut all = vec![base.clone()];
            all.extend(ops.iter().cloned());
            let want = fold(b"k", values(&all));
            // Consecutive runs of operands, each combined into one.
            let mut groups: Vec<Vec<u8>> = Vec::new();
            let mut run: Vec<Vec<u8>> = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                run.push(op.clone());
                if cuts[i] || i + 1 == ops.len() {
                    groups.push(combine(values(&run), compress_from).expect("operands combine"));
                    run.clear();
                }
            }
            if regroup && groups.len() > 1 {
                let rest = groups.split_off(1);
                groups.push(combine(values(&rest), compress_from).expect("partials combine"));
            }
            let mut merged = vec![base];
            merged.extend(groups);
            let got = fold(b"k", values(&merged));
            proptest::prop_assert_eq!(points(&got).unwrap(), points(&want).unwrap());
            proptest::prop_assert_eq!(expires_at(&got), expires_at(&want));
        }
    }
}
