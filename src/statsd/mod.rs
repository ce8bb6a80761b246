//! statsd / DogStatsD ingest. This module owns the `[statsd]` config section;
//! the wire parser, the flush aggregator and the listeners live beside it.

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
    pub max_series: u64,
    pub max_packet: Size,
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.flush_interval.get().as_millis() < 100 {
            problems.push(Problem::new("statsd.flush_interval", format!("{} is too short: at least 100ms", self.flush_interval)));
        }
        for pct in &self.percent_thresholds {
            // Etsy accepts negative thresholds (the lowest n%), never 0 or beyond 100.
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
        problems
    }
}
