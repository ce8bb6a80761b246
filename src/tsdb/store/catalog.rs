//! The store's catalog seen from the query side: names under a prefix, the
//! tree of nodes, tags and their values, events; each the index's answer
//! plus the series created since the last flush.

use super::{Store, StoreError};
use crate::tsdb::index;
use crate::tsdb::keys::{self, SeriesId};

impl Store {
    /// Series names under a prefix, sorted, at most `limit`: the index plus the
    /// series created since the last flush (for `/metrics/find` and globs).
    pub fn names_with_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let fresh = self.unflushed_names(|name| name.starts_with(prefix));
        let mut names = index::names_with_prefix(&self.db, prefix, limit)?;
        if !fresh.is_empty() {
            names.extend(fresh);
            names.sort_unstable();
            names.dedup();
            names.truncate(limit);
        }
        Ok(names)
    }

    /// Names of the series created since the last flush (not in the index
    /// yet) that pass `keep`.
    fn unflushed_names(&self, keep: impl Fn(&str) -> bool) -> Vec<String> {
        let head = self.head.lock().expect("head lock poisoned");
        head.created.iter().filter(|(_, name, _)| keep(name)).map(|(_, name, _)| name.to_string()).collect()
    }

    /// Series per prefix of their first `depth` nodes, the unflushed included.
    pub fn count_by_prefix(&self, depth: usize) -> Result<std::collections::HashMap<String, u64>, StoreError> {
        let mut counts = index::count_by_prefix(&self.db, depth)?;
        for name in self.unflushed_names(|_| true) {
            *counts.entry(index::prefix_of(&name, depth)).or_default() += 1;
        }
        Ok(counts)
    }

    /// The next nodes below a path prefix (`""` or ending with a dot), for
    /// `/metrics/find` and globs: the index's, plus the series created since
    /// the last flush.
    pub fn children(&self, prefix: &str) -> Result<Vec<index::Child>, StoreError> {
        let mut children = index::children(&self.db, prefix)?;
        let fresh = self.unflushed_names(|name| name.starts_with(prefix) && !name.contains(';'));
        if fresh.is_empty() {
            return Ok(children);
        }
        for name in fresh {
            let rest = &name[prefix.len()..];
            let (child, below) = rest.split_once('.').map_or((rest, false), |(c, _)| (c, true));
            if child.is_empty() {
                continue;
            }
            let at = match children.binary_search_by(|c| c.name.as_str().cmp(child)) {
                Ok(i) => i,
                Err(i) => {
                    children.insert(i, index::Child { name: child.to_string(), ..index::Child::default() });
                    i
                }
            };
            if below { children[at].branch = true } else { children[at].leaf = true }
        }
        Ok(children)
    }

    /// Whether `path` is a series and whether series go on below it.
    pub fn node(&self, path: &str) -> Result<index::Child, StoreError> {
        let mut node = index::node(&self.db, path)?;
        let below = format!("{path}.");
        for name in self.unflushed_names(|name| name == path || name.starts_with(&below)) {
            if name == path { node.leaf = true } else { node.branch = true }
        }
        Ok(node)
    }

    /// Every tag name of tagged series (`name` included), sorted.
    pub fn tag_names(&self) -> Result<Vec<String>, StoreError> {
        let mut names = index::tag_names(&self.db)?;
        for name in self.unflushed_names(|name| name.contains(';')) {
            names.extend(index::tags(&name).into_iter().map(|(k, _)| k.to_string()));
        }
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    /// The values of a tag and how many series carry each, sorted by value.
    pub fn tag_values(&self, tag: &str) -> Result<Vec<(String, usize)>, StoreError> {
        let mut values = index::tag_values(&self.db, tag)?;
        for name in self.unflushed_names(|name| name.contains(';')) {
            for (k, v) in index::tags(&name) {
                if k != tag {
                    continue;
                }
                match values.binary_search_by(|(x, _)| x.as_str().cmp(v)) {
                    Ok(i) => values[i].1 += 1,
                    Err(i) => values.insert(i, (v.to_string(), 1)),
                }
            }
        }
        Ok(values)
    }

    /// Stores an annotation event (graphite-web's `POST /events`, DogStatsD
    /// `_e`) and returns its id; written through RocksDB's WAL before it returns.
    pub fn add_event(&self, when: i64, body: &[u8]) -> Result<u32, StoreError> {
        let _serial = self.event_lock.lock().expect("event lock poisoned");
        let key = keys::meta("next_event");
        let id = match self.db.get_pinned(&key)? {
            Some(v) => u32::from_le_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt("next event id".into()))?),
            None => 1,
        };
        let mut batch = rocksdb::WriteBatch::default();
        batch.put(keys::event(when, id), body);
        batch.put(&key, (id + 1).to_le_bytes());
        self.db.write(batch)?;
        Ok(id)
    }

    /// Events with `from <= when <= until`, oldest first: (when, id, body).
    pub fn events(&self, from: i64, until: i64) -> Result<Vec<(i64, u32, Vec<u8>)>, StoreError> {
        let start = keys::event(from, 0);
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_iterate_upper_bound(keys::event(until.saturating_add(1), 0).to_vec());
        let mut out = Vec::new();
        for item in self.db.iterator_opt(rocksdb::IteratorMode::From(&start, rocksdb::Direction::Forward), opts) {
            let (k, v) = item?;
            if let Some((when, id)) = keys::parse_event(&k) {
                out.push((when, id, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// Names of the series with `tag=value` (tagged series only).
    pub fn names_with_tag(&self, tag: &str, value: &str) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for id in index::series_with_tag(&self.db, tag, value)? {
            if let Some(record) = index::record(&self.db, id)? {
                names.push(record.name);
            }
        }
        names.extend(self.unflushed_names(|name| index::tags(name).iter().any(|(k, v)| *k == tag && *v == value)));
        names.sort_unstable();
        names.dedup();
        Ok(names)
    }

    /// Ids of series with `tag=value`.
    pub fn series_with_tag(&self, tag: &str, value: &str) -> Result<Vec<SeriesId>, StoreError> {
        index::series_with_tag(&self.db, tag, value)
    }
}
