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
//! Layout: `kind: u8`, `expires_at: u32 LE` (epoch seconds), then for an
//! operand a list of `(slot: u32 LE, value: f64 LE)`, for a chunk
//! `chunk::encode`, for a partial its tombstones (`count: u32 LE`, then each
//! `slot: u32 LE`) and `chunk::encode` of its values.

use rocksdb::MergeOperands;
use rocksdb::compaction_filter::Decision;

use super::chunk;

const OPERAND: u8 = 1;
const CHUNK: u8 = 2;
const PARTIAL: u8 = 3;
/// Combined operands of at least this many points are encoded as a partial.
/// Smaller combinations are re-encoded at every compaction pass they go
/// through: from 32 points that cost 14-21 % of carbon ingest at rate 0 over
/// 100k series; from 256 the cost was within the machine's noise, and the SST
/// of a paced 10k-series load while it ran was as small (17.2 MB against 17.1).
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
        PARTIAL => {
            let (count, rest) = body.split_at_checked(4).ok_or("partial shorter than its tombstone count")?;
            let count = u32::from_le_bytes(count.try_into().expect("split at 4")) as usize;
            let (slots, encoded) = rest.split_at_checked(count.saturating_mul(4)).ok_or("partial shorter than its tombstones")?;
            out.extend(slots.chunks_exact(4).map(|s| (u32::from_le_bytes(s.try_into().expect("chunks of 4")), f64::NAN)));
            out.extend(chunk::decode(encoded).map_err(|e| e.to_string())?);
            Ok(())
        }
        other => Err(format!("unknown chunk value kind {other}")),
    }
}

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

/// RocksDB full merge: the existing value (if any) then every operand, folded
/// into one compressed chunk. Returning `None` would mark the key corrupt, so
/// an undecodable input is logged and skipped rather than failing the merge.
pub fn full_merge(key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    Some(fold(key, existing.into_iter().chain(operands.iter())))
}

/// [`full_merge`] of `values`, oldest first.
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

/// Appends `points` in the chunk encoding.
fn encode_into(out: &mut Vec<u8>, points: &[(u32, f64)]) {
    // RocksDB merges on its own few background threads, so one encoder per
    // thread keeps the compressor's setup off every merge.
    thread_local! {
        static ENCODER: std::cell::RefCell<chunk::Encoder> = std::cell::RefCell::new(chunk::Encoder::default());
    }
    out.extend_from_slice(&ENCODER.with(|e| e.borrow_mut().encode(points)));
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
    // Tombstones stay, apart (among the values they would send the chunk
    // to float mode): the values they cover are older than this.
    let (tombstones, points): (Vec<_>, Vec<_>) = last_write_wins(all).into_iter().partition(|(_, v)| v.is_nan());
    let mut out = header(PARTIAL, expires, points.len());
    out.extend_from_slice(&(tombstones.len() as u32).to_le_bytes());
    tombstones.iter().for_each(|(slot, _)| out.extend_from_slice(&slot.to_le_bytes()));
    encode_into(&mut out, &points);
    Some(out)
}

/// The compaction filter: drops a chunk once all of it is past retention.
pub fn expired(now: u32, value: &[u8]) -> Decision {
    match expires_at(value) {
        Some(t) if t < now => Decision::Remove,
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
        assert!(matches!(expired(101, &a), Decision::Remove));
        assert!(matches!(expired(100, &a), Decision::Keep));
        assert!(matches!(expired(0, b"\x07"), Decision::Keep), "unreadable values are kept");
    }

    fn values(parts: &[Vec<u8>]) -> impl Iterator<Item = &[u8]> {
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
