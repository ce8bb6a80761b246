//! The series catalog: name -> id, id -> record (name and the storage policy
//! fixed when the series was created, as whisper fixes a file's archives), and
//! the tag index that `seriesByTag` reads. All of it lives in RocksDB's default
//! column family under the tags of `keys.rs`.
//!
//! It does not cache: the store's head keeps the active series in memory.

use std::collections::HashMap;

use rocksdb::{DB, Direction, IteratorMode, ReadOptions, WriteBatch};

use super::StoreError;
use super::keys::{self, SeriesId};
use super::schema::{Archive, Method, Policy};

/// What the catalog knows of one series.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRecord {
    pub name: String,
    pub policy: Policy,
}

const RECORD_VERSION: u8 = 1;

/// `version u8, method u8, xff f64 LE, archives u8, (step u32 LE, points u32 LE)*, name`.
pub fn encode_record(record: &SeriesRecord) -> Vec<u8> {
    let p = &record.policy;
    let mut out = Vec::with_capacity(11 + 8 * p.archives.len() + record.name.len());
    out.push(RECORD_VERSION);
    let method = Method::ALL.iter().position(|m| *m == p.method).expect("every method is in ALL");
    out.push(method as u8);
    out.extend_from_slice(&p.x_files_factor.to_le_bytes());
    out.push(u8::try_from(p.archives.len()).expect("retention lists are validated to few archives"));
    for a in &p.archives {
        out.extend_from_slice(&a.step.to_le_bytes());
        out.extend_from_slice(&a.points.to_le_bytes());
    }
    out.extend_from_slice(record.name.as_bytes());
    out
}

pub fn decode_record(bytes: &[u8]) -> Result<SeriesRecord, StoreError> {
    let bad = |why: &str| StoreError::Corrupt(format!("series record: {why}"));
    if bytes.first() != Some(&RECORD_VERSION) {
        return Err(bad("unknown version"));
    }
    let method = *Method::ALL.get(usize::from(*bytes.get(1).ok_or_else(|| bad("truncated"))?)).ok_or_else(|| bad("unknown method"))?;
    let xff = f64::from_le_bytes(bytes.get(2..10).ok_or_else(|| bad("truncated"))?.try_into().expect("8 bytes"));
    let count = usize::from(*bytes.get(10).ok_or_else(|| bad("truncated"))?);
    let mut archives = Vec::with_capacity(count);
    let mut at = 11;
    for _ in 0..count {
        let a = bytes.get(at..at + 8).ok_or_else(|| bad("truncated archive list"))?;
        let step = u32::from_le_bytes(a[..4].try_into().expect("4 bytes"));
        let points = u32::from_le_bytes(a[4..].try_into().expect("4 bytes"));
        archives.push(Archive { step, points });
        at += 8;
    }
    let name = std::str::from_utf8(&bytes[at..]).map_err(|_| bad("name is not UTF-8"))?.to_string();
    Ok(SeriesRecord { name, policy: Policy { archives, method, x_files_factor: xff } })
}

/// The tags of a canonical tagged name (`name;a=1;b=2`), `name` first; an
/// untagged name has none (it is not in the tag index).
pub fn tags(name: &str) -> Vec<(&str, &str)> {
    let mut parts = name.split(';');
    let Some(base) = parts.next() else { return Vec::new() };
    let rest: Vec<(&str, &str)> = parts.filter_map(|kv| kv.split_once('=')).collect();
    if rest.is_empty() {
        return Vec::new();
    }
    let mut out = vec![("name", base)];
    out.extend(rest);
    out
}

/// Adds a new series to `batch`: its name, record and tag entries.
pub fn put_series(batch: &mut WriteBatch, id: SeriesId, record: &SeriesRecord) {
    batch.put(keys::name(&record.name), id.to_be_bytes());
    batch.put(keys::series(id), encode_record(record));
    for (tag, value) in tags(&record.name) {
        batch.put(keys::tag(tag, value, id), []);
    }
}

pub fn lookup(db: &DB, name: &str) -> Result<Option<SeriesId>, StoreError> {
    let Some(v) = db.get_pinned(keys::name(name))? else { return Ok(None) };
    let id: [u8; 4] = v.as_ref().try_into().map_err(|_| StoreError::Corrupt(format!("id of series {name:?}")))?;
    Ok(Some(u32::from_be_bytes(id)))
}

pub fn record(db: &DB, id: SeriesId) -> Result<Option<SeriesRecord>, StoreError> {
    db.get_pinned(keys::series(id))?.map(|v| decode_record(&v)).transpose()
}

/// The catalog entries whose keys start with `start`, in byte order (names,
/// tags: every bounded scan of the catalog).
fn keys_under<'a>(db: &'a DB, start: &[u8]) -> rocksdb::DBIteratorWithThreadMode<'a, DB> {
    let mut opts = ReadOptions::default();
    if let Some(end) = keys::prefix_end(start) {
        opts.set_iterate_upper_bound(end);
    }
    db.iterator_opt(IteratorMode::From(start, Direction::Forward), opts)
}

/// Every series name starting with `prefix`, in byte order, at most `limit`.
pub fn names_with_prefix(db: &DB, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for item in keys_under(db, &keys::name(prefix)) {
        let (k, _) = item?;
        if out.len() >= limit {
            break;
        }
        out.push(String::from_utf8_lossy(&k[1..]).into_owned());
    }
    Ok(out)
}

/// How many series names start with `prefix`.
pub fn count_with_prefix(db: &DB, prefix: &str) -> Result<u64, StoreError> {
    let mut count = 0;
    for item in keys_under(db, &keys::name(prefix)) {
        item?;
        count += 1;
    }
    Ok(count)
}

/// How many series names there are per prefix of their first `depth` nodes
/// (tagged series by their name before `;`), reading the names without
/// keeping them.
pub fn count_by_prefix(db: &DB, depth: usize) -> Result<HashMap<String, u64>, StoreError> {
    let mut out: HashMap<String, u64> = HashMap::new();
    for item in keys_under(db, &keys::name("")) {
        let (k, _) = item?;
        *out.entry(prefix_of(&String::from_utf8_lossy(&k[1..]), depth)).or_default() += 1;
    }
    Ok(out)
}

/// The first `depth` nodes of a series name.
pub fn prefix_of(name: &str, depth: usize) -> String {
    let name = name.split(';').next().unwrap_or(name);
    name.split('.').take(depth.max(1)).collect::<Vec<_>>().join(".")
}

/// One node under a path prefix: its name, and whether a series ends there
/// (a leaf) and whether series go on below it (a branch). It can be both.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Child {
    pub name: String,
    pub leaf: bool,
    pub branch: bool,
}

/// The distinct next nodes of every series name starting with `prefix` (empty,
/// or ending with a dot), sorted, with names holding `;` (tagged series) left
/// out. One seek per branch: the names below a branch are skipped, not read,
/// so listing the top of a million-series tree reads a few keys per node.
pub fn children(db: &DB, prefix: &str) -> Result<Vec<Child>, StoreError> {
    let start = keys::name(prefix);
    let mut found: std::collections::BTreeMap<String, Child> = std::collections::BTreeMap::new();
    let mut seek = start.clone();
    loop {
        let mut opts = ReadOptions::default();
        if let Some(end) = keys::prefix_end(&start) {
            opts.set_iterate_upper_bound(end);
        }
        let mut iter = db.iterator_opt(IteratorMode::From(&seek, Direction::Forward), opts);
        let mut next_seek = None;
        for item in iter.by_ref() {
            let (k, _) = item?;
            let name = String::from_utf8_lossy(&k[1..]);
            let rest = &name[prefix.len()..];
            let (child, below) = match rest.split_once('.') {
                Some((child, _)) => (child, true),
                None => (rest, false),
            };
            if child.is_empty() || child.contains(';') {
                continue;
            }
            let entry = found.entry(child.to_string()).or_insert_with(|| Child { name: child.to_string(), ..Child::default() });
            if below {
                entry.branch = true;
                // Skip the rest of this branch in one seek.
                next_seek = keys::prefix_end(&keys::name(&format!("{prefix}{child}.")));
                break;
            }
            entry.leaf = true;
        }
        match next_seek {
            Some(s) => seek = s,
            None => break,
        }
    }
    Ok(found.into_values().collect())
}

/// Whether `path` is a series (leaf) and whether series go on below it
/// (branch): one point read and one seek.
pub fn node(db: &DB, path: &str) -> Result<Child, StoreError> {
    let leaf = db.get_pinned(keys::name(path))?.is_some();
    let branch = keys_under(db, &keys::name(&format!("{path}."))).next().transpose()?.is_some();
    Ok(Child { name: path.rsplit('.').next().unwrap_or(path).to_string(), leaf, branch })
}

/// Every tag name of the tag index, sorted: one seek per tag.
pub fn tag_names(db: &DB) -> Result<Vec<String>, StoreError> {
    let all = [keys::TAG];
    let mut names = Vec::new();
    let mut seek = all.to_vec();
    loop {
        let mut opts = ReadOptions::default();
        if let Some(end) = keys::prefix_end(&all) {
            opts.set_iterate_upper_bound(end);
        }
        let Some(item) = db.iterator_opt(IteratorMode::From(&seek, Direction::Forward), opts).next() else { break };
        let (k, _) = item?;
        let Some((tag, _, _)) = keys::parse_tag(&k) else { return Err(StoreError::Corrupt(format!("tag index key {k:02x?}"))) };
        names.push(tag.to_string());
        match keys::prefix_end(&keys::tag_prefix(tag, None)) {
            Some(next) => seek = next,
            None => break,
        }
    }
    Ok(names)
}

/// The values of one tag with how many series carry each, sorted by value.
pub fn tag_values(db: &DB, tag: &str) -> Result<Vec<(String, usize)>, StoreError> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for item in keys_under(db, &keys::tag_prefix(tag, None)) {
        let (k, _) = item?;
        let Some((_, value, _)) = keys::parse_tag(&k) else { continue };
        match out.last_mut() {
            Some((v, n)) if v == value => *n += 1,
            _ => out.push((value.to_string(), 1)),
        }
    }
    Ok(out)
}

/// Ids of the series whose tag `tag` equals `value`, ascending.
pub fn series_with_tag(db: &DB, tag: &str, value: &str) -> Result<Vec<SeriesId>, StoreError> {
    let mut out = Vec::new();
    for item in keys_under(db, &keys::tag_prefix(tag, Some(value))) {
        let (k, _) = item?;
        if let Some((_, _, id)) = keys::parse_tag(&k) {
            out.push(id);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let record = SeriesRecord {
            name: "a.b;host=x".into(),
            policy: Policy {
                archives: vec![Archive { step: 10, points: 2160 }, Archive { step: 60, points: 10080 }],
                method: Method::AvgZero,
                x_files_factor: 0.25,
            },
        };
        assert_eq!(decode_record(&encode_record(&record)).expect("decodes"), record);
        assert!(decode_record(b"\x09").is_err());
        assert!(decode_record(&encode_record(&record)[..12]).is_err());
    }

    #[test]
    fn tags_of_names() {
        assert_eq!(tags("a.b"), vec![]);
        assert_eq!(tags("cpu;dc=x;host=a"), vec![("name", "cpu"), ("dc", "x"), ("host", "a")]);
    }
}
