//! Key encodings of the store. Every key starts with a one-byte tag naming its
//! kind, followed by big-endian integers, so RocksDB's byte order equals the
//! logical order: chunks sort by (series, archive, chunk start), names sort
//! lexically (which `/metrics/find` walks), tags by (tag, value, series).
//!
//! Values are not encoded here: chunks are `chunk.rs`, series records are in
//! `index.rs`.

/// Series ids are dense, allocated from 1; 0 is never a series.
pub type SeriesId = u32;

/// Chunk keys live in their own column family; no tag needed there.
pub const CHUNK_KEY_LEN: usize = 9;

/// (series, archive, chunk start) -> chunk key.
pub fn chunk(series: SeriesId, archive: u8, start: u32) -> [u8; CHUNK_KEY_LEN] {
    let mut k = [0u8; CHUNK_KEY_LEN];
    k[..4].copy_from_slice(&series.to_be_bytes());
    k[4] = archive;
    k[5..].copy_from_slice(&start.to_be_bytes());
    k
}

/// The inverse of [`chunk`]; `None` for a key of another length.
pub fn parse_chunk(key: &[u8]) -> Option<(SeriesId, u8, u32)> {
    let k: &[u8; CHUNK_KEY_LEN] = key.try_into().ok()?;
    let series = u32::from_be_bytes([k[0], k[1], k[2], k[3]]);
    let start = u32::from_be_bytes([k[5], k[6], k[7], k[8]]);
    Some((series, k[4], start))
}

/// Tag of a name -> series id record.
pub const NAME: u8 = b'n';
/// Tag of a series id -> series record.
pub const SERIES: u8 = b's';
/// Tag of a tag index entry: (tag, value, series) -> empty.
pub const TAG: u8 = b't';
/// Tag of an annotation event: (when, id) -> JSON body.
pub const EVENT: u8 = b'e';
/// Tag of a store-wide metadata entry (format version, next id).
pub const META: u8 = b'm';

pub fn name(name: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + name.len());
    k.push(NAME);
    k.extend_from_slice(name.as_bytes());
    k
}

pub fn series(id: SeriesId) -> [u8; 5] {
    let mut k = [SERIES; 5];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

/// Tag names and values never contain `\0` (canonical names reject control
/// bytes), so `\0` separates them and keeps (tag, value) order intact.
pub fn tag(tag: &str, value: &str, id: SeriesId) -> Vec<u8> {
    let mut k = tag_prefix(tag, Some(value));
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The prefix of every entry for `tag` (and `value`, when given).
pub fn tag_prefix(tag: &str, value: Option<&str>) -> Vec<u8> {
    let mut k = Vec::with_capacity(3 + tag.len() + value.map_or(0, str::len));
    k.push(TAG);
    k.extend_from_slice(tag.as_bytes());
    k.push(0);
    if let Some(v) = value {
        k.extend_from_slice(v.as_bytes());
        k.push(0);
    }
    k
}

/// (tag, value, series) from a tag index key.
pub fn parse_tag(key: &[u8]) -> Option<(&str, &str, SeriesId)> {
    let rest = key.strip_prefix(&[TAG])?;
    let (body, id) = rest.split_at(rest.len().checked_sub(4)?);
    let id = u32::from_be_bytes(id.try_into().ok()?);
    let body = body.strip_suffix(&[0])?;
    let sep = body.iter().position(|b| *b == 0)?;
    let tag = std::str::from_utf8(&body[..sep]).ok()?;
    let value = std::str::from_utf8(&body[sep + 1..]).ok()?;
    Some((tag, value, id))
}

/// Events sort by time: the epoch second with its sign bit flipped (so
/// negative times sort first), then the id.
pub fn event(when: i64, id: u32) -> [u8; 13] {
    let mut k = [EVENT; 13];
    k[1..9].copy_from_slice(&((when as u64) ^ (1 << 63)).to_be_bytes());
    k[9..].copy_from_slice(&id.to_be_bytes());
    k
}

/// (when, id) of an event key.
pub fn parse_event(key: &[u8]) -> Option<(i64, u32)> {
    let k: &[u8; 13] = key.try_into().ok()?;
    if k[0] != EVENT {
        return None;
    }
    let when = (u64::from_be_bytes(k[1..9].try_into().ok()?) ^ (1 << 63)) as i64;
    Some((when, u32::from_be_bytes(k[9..].try_into().ok()?)))
}

pub fn meta(what: &str) -> Vec<u8> {
    let mut k = vec![META];
    k.extend_from_slice(what.as_bytes());
    k
}

/// The smallest key greater than every key starting with `prefix`, for
/// iterator upper bounds. `None` when no such key exists (all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn chunk_key_order_is_logical_order(a in any::<(u32, u8, u32)>(), b in any::<(u32, u8, u32)>()) {
            let ka = chunk(a.0, a.1, a.2);
            let kb = chunk(b.0, b.1, b.2);
            prop_assert_eq!(ka.cmp(&kb), a.cmp(&b));
            prop_assert_eq!(parse_chunk(&ka), Some(a));
        }

        #[test]
        fn tag_key_order_is_logical_order(
            a in ("[a-z]{1,6}", "[a-z0-9.]{1,6}", any::<u32>()),
            b in ("[a-z]{1,6}", "[a-z0-9.]{1,6}", any::<u32>()),
        ) {
            let ka = tag(&a.0, &a.1, a.2);
            let kb = tag(&b.0, &b.1, b.2);
            prop_assert_eq!(ka.cmp(&kb), (a.0.as_str(), a.1.as_str(), a.2).cmp(&(b.0.as_str(), b.1.as_str(), b.2)));
            prop_assert_eq!(parse_tag(&ka), Some((a.0.as_str(), a.1.as_str(), a.2)));
        }
    }

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
