//! The cardinality guard's view: which metric prefixes hold the most series,
//! and how fast they grow. The collector samples the counts per two-node
//! prefix every ten minutes and keeps a day of samples; `/api/cardinality`
//! compares now with the sample nearest an hour and a day ago.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Samples kept: a day at one per ten minutes.
const KEEP: usize = 24 * 6 + 1;
/// Minimum time between samples.
pub const EVERY_S: i64 = 600;
/// The prefix depth sampled.
pub const DEPTH: usize = 2;

#[derive(Default)]
pub struct Cardinality {
    samples: Mutex<VecDeque<(i64, HashMap<String, u64>)>>,
}

impl Cardinality {
    /// Whether a sample is due at `now_s`.
    pub fn due(&self, now_s: i64) -> bool {
        self.samples.lock().expect("cardinality lock poisoned").back().is_none_or(|(t, _)| now_s - t >= EVERY_S)
    }

    pub fn record(&self, now_s: i64, counts: HashMap<String, u64>) {
        let mut s = self.samples.lock().expect("cardinality lock poisoned");
        s.push_back((now_s, counts));
        while s.len() > KEEP {
            s.pop_front();
        }
    }

    /// The count of `prefix` in the newest sample at least `ago_s` old:
    /// (its time, the count; 0 when the prefix had no series then).
    pub fn before(&self, prefix: &str, now_s: i64, ago_s: i64) -> Option<(i64, u64)> {
        let s = self.samples.lock().expect("cardinality lock poisoned");
        s.iter().rev().find(|(t, _)| now_s - t >= ago_s).map(|(t, c)| (*t, c.get(prefix).copied().unwrap_or(0)))
    }
}
