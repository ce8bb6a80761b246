//! statsd / DogStatsD ingest (compat-spec 1 and 2): `wire.rs` decodes lines,
//! `aggregate.rs` keeps Etsy statsd's counters, timers, gauges and sets and
//! computes each flush (`timer.rs` the timer fields), `listener.rs` owns the
//! UDP, TCP and flush threads, `admin.rs` the management console, `jsnum.rs`
//! JavaScript's number syntax, `bench.rs` the load generator. This module owns
//! the `[statsd]` config section.

pub mod admin;
pub mod aggregate;
pub mod bench;
pub mod jsnum;
pub mod listener;
pub mod timer;
pub mod wire;

use serde::Deserialize;

use crate::config::{Listen, Problem, Size, Span};

/// The `[statsd]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub udp: Listen,
    pub tcp: Listen,
    pub admin: Listen,
    pub flush_interval: Span,
    pub percent_thresholds: Vec<f64>,
    pub legacy_namespace: bool,
    pub delete_idle_stats: bool,
    /// Unset: follow `delete_idle_stats` (Etsy's rule for the four switches).
    #[serde(default)]
    pub delete_counters: Option<bool>,
    #[serde(default)]
    pub delete_timers: Option<bool>,
    #[serde(default)]
    pub delete_gauges: Option<bool>,
    #[serde(default)]
    pub delete_sets: Option<bool>,
    pub gauges_max_ttl: u32,
    pub h_as_timer: bool,
    pub max_series: u64,
    pub max_packet: Size,
    pub timer_exact_samples: u64,
    pub histogram: Vec<Histogram>,
}

/// One `[[statsd.histogram]]`: timers whose key contains `metric` get bins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Histogram {
    pub metric: String,
    pub bins: Vec<Bin>,
}

/// A bin's upper bound: a number, or `"inf"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Bin {
    Bound(f64),
    Word(String),
}

impl Bin {
    fn bound(&self) -> Option<f64> {
        match self {
            Bin::Bound(b) if b.is_finite() => Some(*b),
            Bin::Word(w) if w == "inf" => Some(f64::INFINITY),
            _ => None,
        }
    }
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.flush_interval.get().as_millis() < 100 {
            problems.push(Problem::new("statsd.flush_interval", format!("{} is too short: at least 100ms", self.flush_interval)));
        }
        for pct in &self.percent_thresholds {
            // Etsy accepts negative thresholds (the top n%), never 0 or beyond 100.
            if !pct.is_finite() || *pct == 0.0 || pct.abs() > 100.0 {
                problems.push(Problem::new("statsd.percent_thresholds", format!("{pct} is not a percentage in [-100, 0) or (0, 100]")));
            }
        }
        if self.max_series == 0 {
            problems.push(Problem::new("statsd.max_series", "must be at least 1"));
        }
        if self.max_packet.bytes() < 512 || self.max_packet.bytes() > 16 << 20 {
            problems.push(Problem::new("statsd.max_packet", format!("{} is outside 512B..16MiB", self.max_packet)));
        }
        if self.gauges_max_ttl == 0 {
            problems.push(Problem::new("statsd.gauges_max_ttl", "must be at least 1 (flushes a gauge outlives its last update)"));
        }
        if self.timer_exact_samples == 0 {
            problems.push(Problem::new("statsd.timer_exact_samples", "must be at least 1"));
        }
        for (i, h) in self.histogram.iter().enumerate() {
            let bounds: Vec<Option<f64>> = h.bins.iter().map(Bin::bound).collect();
            if bounds.iter().any(Option::is_none) {
                problems.push(Problem::new(format!("statsd.histogram[{i}].bins"), "each bin is a finite number or \"inf\""));
            } else if bounds.windows(2).any(|w| w[0] >= w[1]) {
                problems.push(Problem::new(format!("statsd.histogram[{i}].bins"), "bins must ascend (\"inf\" last)"));
            }
        }
        problems
    }

    /// The aggregator's settings; `exact_pool` is how many exact timer samples
    /// the memory budget's statsd share holds.
    /// The aggregation's settings; `max_keys` is what statsd's share of the
    /// memory budget holds, and bounds `max_series` from above.
    pub fn settings(&self, exact_pool: usize, max_keys: usize) -> aggregate::Settings {
        let delete = |flag: Option<bool>| flag.unwrap_or(self.delete_idle_stats);
        aggregate::Settings {
            interval_s: self.flush_interval.get().as_secs_f64(),
            thresholds: self.percent_thresholds.iter().map(|&p| (p, aggregate::percentile_name(p))).collect(),
            legacy_namespace: self.legacy_namespace,
            delete_counters: delete(self.delete_counters),
            delete_timers: delete(self.delete_timers),
            delete_gauges: delete(self.delete_gauges),
            delete_sets: delete(self.delete_sets),
            gauges_max_ttl: self.gauges_max_ttl,
            h_as_timer: self.h_as_timer,
            max_series: usize::try_from(self.max_series).unwrap_or(usize::MAX).min(max_keys),
            timer_exact_samples: usize::try_from(self.timer_exact_samples).unwrap_or(usize::MAX),
            exact_pool,
            histograms: self
                .histogram
                .iter()
                .map(|h| (h.metric.clone(), h.bins.iter().filter_map(Bin::bound).map(|b| (b, aggregate::bin_name(b))).collect()))
                .collect(),
        }
    }
}
