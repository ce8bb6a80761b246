//! Per-prefix series limits (`[[carbon.series_limits]]`), the cardinality
//! guard: a new series under a limited prefix is refused once the prefix holds
//! its limit, and the refusal is counted per prefix. Series already stored
//! keep being written; only creation is refused.

use std::sync::atomic::{AtomicU64, Ordering};

use rocksdb::DB;

use super::StoreError;
use super::index;
use crate::telemetry::{Counter, Registry};

/// One limit: series whose names start with `prefix`, at most `max`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limit {
    pub prefix: String,
    pub max: u64,
}

struct Held {
    limit: Limit,
    count: AtomicU64,
    refused: Counter,
}

/// Every configured limit with the series its prefix holds.
pub struct Limits {
    held: Vec<Held>,
}

/// What a prefix holds, for `/api/cardinality`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Usage {
    pub prefix: String,
    pub max_series: u64,
    pub series: u64,
    pub refused_points: u64,
}

impl Limits {
    /// Counts what each prefix holds in the catalog now.
    pub fn open(db: &DB, limits: &[Limit], registry: &Registry) -> Result<Limits, StoreError> {
        let mut held = Vec::with_capacity(limits.len());
        for limit in limits {
            let count = index::count_with_prefix(db, &limit.prefix)?;
            let refused = registry.counter(
                "instantops_tsdb_series_limit_refused_total",
                "Points of new series refused because their prefix holds its [[carbon.series_limits]] bound.",
                &[("prefix", &limit.prefix)],
            );
            held.push(Held { limit: limit.clone(), count: AtomicU64::new(count), refused });
        }
        Ok(Limits { held })
    }

    /// Whether a new series `name` may be created; if so, it is counted
    /// against every limit whose prefix it has. A refusal is counted on the
    /// first limit that refuses.
    pub fn admit(&self, name: &str) -> bool {
        let applies = |h: &&Held| name.starts_with(h.limit.prefix.as_str());
        if let Some(full) = self.held.iter().filter(applies).find(|h| h.count.load(Ordering::Relaxed) >= h.limit.max) {
            full.refused.inc();
            return false;
        }
        for h in self.held.iter().filter(applies) {
            h.count.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    pub fn usage(&self) -> Vec<Usage> {
        self.held
            .iter()
            .map(|h| Usage {
                prefix: h.limit.prefix.clone(),
                max_series: h.limit.max,
                series: h.count.load(Ordering::Relaxed),
                refused_points: h.refused.get(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_prefix_refuses_new_series_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = DB::open_default(dir.path()).unwrap();
        let registry = Registry::new();
        let limits = Limits::open(&db, &[Limit { prefix: "a.".into(), max: 2 }], &registry).unwrap();
        assert!(limits.admit("a.1"));
        assert!(limits.admit("b.1"), "other prefixes are not limited");
        assert!(limits.admit("a.2"));
        assert!(!limits.admit("a.3"));
        assert!(!limits.admit("a.4"));
        let usage = &limits.usage()[0];
        assert_eq!((usage.series, usage.refused_points), (2, 2));
    }
}
