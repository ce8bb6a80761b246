//! Log ingest, index and search. This module owns the `[logs]` config section;
//! the event model, the inputs, the Tantivy index and retention live beside it.

pub mod aggs;
pub mod bench;
pub mod esdsl;
pub mod event;
pub mod index;
pub mod inputs;
pub mod json;
pub mod listener;
pub mod matcher;
pub mod pipeline;
pub mod query;
mod rewrite;
pub mod search;
pub mod searchbench;
pub mod time;
pub mod wal;

use serde::Deserialize;

use crate::config::{Listen, Problem, Size, Span};

/// The `[logs]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub syslog_udp: Listen,
    pub syslog_tcp: Listen,
    pub json_tcp: Listen,
    pub gelf_udp: Listen,
    pub resp: Listen,
    pub elasticsearch: Listen,
    pub retention: Span,
    pub max_disk: Size,
    pub commit_interval: Span,
    pub max_event: Size,
    pub max_fields: u64,
    /// Most bytes durable in the WAL but not yet indexed; past it inputs are pushed back.
    pub max_backlog: Size,
    /// A search or aggregation stops collecting after this and says it timed out.
    pub search_timeout: Span,
    /// Memory one aggregation may hold.
    pub search_memory: Size,
    /// Most events one page may reach into (offset + limit, `from` + `size`).
    pub search_window: u64,
    /// Events a live tail reader may fall behind before it skips ahead.
    pub tail_buffer: u64,
    /// Empty unless configured: there is no Redis to pull from by default.
    #[serde(default)]
    pub redis: Vec<RedisInput>,
}

/// One `[[logs.redis]]` entry: a Redis list to pop events from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisInput {
    pub url: String,
    pub key: String,
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.retention.get().as_secs() < 60 {
            problems.push(Problem::new("logs.retention", format!("{} is too short: at least 1m", self.retention)));
        }
        if self.max_disk.bytes() < 16 << 20 {
            problems.push(Problem::new("logs.max_disk", format!("{} is too small: at least 16MiB", self.max_disk)));
        }
        let commit = self.commit_interval.get().as_millis();
        if !(10..=60_000).contains(&commit) {
            problems.push(Problem::new("logs.commit_interval", format!("{} is outside 10ms..60s", self.commit_interval)));
        }
        if self.max_event.bytes() < 1024 || self.max_event.bytes() > 64 << 20 {
            problems.push(Problem::new("logs.max_event", format!("{} is outside 1KiB..64MiB", self.max_event)));
        }
        if self.max_backlog.bytes() < 1024 {
            problems.push(Problem::new("logs.max_backlog", format!("{} is too small: at least 1KiB", self.max_backlog)));
        }
        let timeout = self.search_timeout.get().as_millis();
        if !(100..=600_000).contains(&timeout) {
            problems.push(Problem::new("logs.search_timeout", format!("{} is outside 100ms..10m", self.search_timeout)));
        }
        if self.search_memory.bytes() < 1 << 20 {
            problems.push(Problem::new("logs.search_memory", format!("{} is too small: at least 1MiB", self.search_memory)));
        }
        if !(1..=1_000_000).contains(&self.search_window) {
            problems.push(Problem::new("logs.search_window", "must be 1..=1000000"));
        }
        if !(1..=1_000_000).contains(&self.tail_buffer) {
            problems.push(Problem::new("logs.tail_buffer", "must be 1..=1000000"));
        }
        if self.max_fields == 0 {
            problems.push(Problem::new("logs.max_fields", "must be at least 1"));
        }
        for (i, input) in self.redis.iter().enumerate() {
            if !(input.url.starts_with("redis://") || input.url.starts_with("unix://")) {
                problems.push(Problem::new(format!("logs.redis[{i}].url"), format!("{:?} is not a redis:// or unix:// URL", input.url)));
            }
            if input.key.is_empty() {
                problems.push(Problem::new(format!("logs.redis[{i}].key"), "must not be empty"));
            }
        }
        problems
    }
}
