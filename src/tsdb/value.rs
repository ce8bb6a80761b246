//! Values of the chunk column family and the RocksDB merge operator and
//! compaction filter that act on them.
//!
//! A NaN value is a tombstone: the slot is empty again (whisper's ring slot
//! taken by another interval). Carbon never stores NaN, so no value is lost.
//!
//! Every flush appends one *operand* per (series, archive, chunk): the raw
//! points of that flush, in arrival order. RocksDB folds operands into a
//! compressed *chunk* when it compacts or reads a key (full merge); when it
//! only combines operands (partial merge) they are concatenated, which keeps
//! "the later write wins" intact. Both carry the time after which the whole
//! chunk is past its archive's retention, so the compaction filter can drop it
//! and reclaim the space without knowing series policies.
//!
//! Layout: `kind: u8`, `expires_at: u32 LE` (epoch seconds), then for an
//! operand a list of `(slot: u32 LE, value: f64 LE)`, for a chunk `chunk::encode`.

use rocksdb::MergeOperands;
use rocksdb::compaction_filter::Decision;

use super::chunk;

const OPERAND: u8 = 1;
const CHUNK: u8 = 2;
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

/// Appends the points of one stored value (operand or chunk) to `out`, in the
/// order they take effect.
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
    let mut all = Vec::new();
    let mut expires = 0u32;
    for value in existing.into_iter().chain(operands.iter()) {
        expires = expires.max(expires_at(value).unwrap_or(0));
        if let Err(e) = decode_into(value, &mut all) {
            tracing::error!(key = ?key, error = %e, "skipping an undecodable chunk value");
        }
    }
    let mut points = last_write_wins(all);
    // A full merge sees the key's whole history, so a tombstone has done its
    // work once the value it covers is folded away.
    points.retain(|(_, v)| !v.is_nan());
    let mut out = Vec::with_capacity(HEADER + points.len() * 2);
    out.push(CHUNK);
    out.extend_from_slice(&expires.to_le_bytes());
    // RocksDB merges on its own few background threads, so one encoder per
    // thread keeps the compressor's setup off every merge.
    thread_local! {
        static ENCODER: std::cell::RefCell<chunk::Encoder> = std::cell::RefCell::new(chunk::Encoder::default());
    }
    out.extend_from_slice(&ENCODER.with(|e| e.borrow_mut().encode(&points)));
    Some(out)
}

/// RocksDB partial merge: operands only, concatenated in order.
pub fn partial_merge(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut expires = 0u32;
    let mut body = Vec::new();
    for value in existing.into_iter().chain(operands.iter()) {
        if value.first() != Some(&OPERAND) {
            return None; // Not concatenable; RocksDB then keeps the operands apart.
        }
        expires = expires.max(expires_at(value).unwrap_or(0));
        body.extend_from_slice(&value[HEADER..]);
    }
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.push(OPERAND);
    out.extend_from_slice(&expires.to_le_bytes());
    out.extend_from_slice(&body);
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
}
