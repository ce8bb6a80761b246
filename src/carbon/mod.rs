//! Carbon ingest: the Graphite plaintext and pickle protocols. This module owns
//! the `[carbon]` config section, including storage-schemas and
//! storage-aggregation rules, which it compiles into `tsdb::schema::Rules`.

pub mod bench;
pub mod listener;
pub mod pickle;
pub mod wire;

use regex::Regex;
use serde::Deserialize;

use crate::config::{Listen, Problem, Size};
use crate::tsdb::schema::{self, Method, Rules};

/// The `[carbon]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub tcp: Listen,
    pub udp: Listen,
    pub pickle: Listen,
    pub max_line: Size,
    pub max_pickle_frame: Size,
    pub schemas: Vec<SchemaRule>,
    pub aggregation: Vec<AggregationRule>,
    /// Per-prefix series limits, the cardinality guard (none by default).
    #[serde(default)]
    pub series_limits: Vec<SeriesLimit>,
}

/// At most `max_series` series whose names start with `prefix`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesLimit {
    pub prefix: String,
    pub max_series: u64,
}

/// One storage-schemas.conf section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRule {
    pub name: String,
    pub pattern: String,
    pub retentions: String,
}

/// One storage-aggregation.conf section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregationRule {
    pub name: String,
    pub pattern: String,
    pub x_files_factor: f64,
    pub method: String,
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.max_line.bytes() < 256 || self.max_line.bytes() > 16 << 20 {
            problems.push(Problem::new("carbon.max_line", format!("{} is outside 256B..16MiB", self.max_line)));
        }
        if self.max_pickle_frame.bytes() < 1024 || self.max_pickle_frame.bytes() > 256 << 20 {
            problems.push(Problem::new("carbon.max_pickle_frame", format!("{} is outside 1KiB..256MiB", self.max_pickle_frame)));
        }
        for (i, limit) in self.series_limits.iter().enumerate() {
            if limit.prefix.is_empty() {
                problems.push(Problem::new(
                    format!("carbon.series_limits[{i}].prefix"),
                    "is empty; a limit on every series is memory.limit's job",
                ));
            }
        }
        if let Err(mut more) = self.rules() {
            problems.append(&mut more);
        }
        problems
    }

    /// Compiles the schema and aggregation rules, or lists what is wrong with them.
    pub fn rules(&self) -> Result<Rules, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut schemas = Vec::new();
        for (i, rule) in self.schemas.iter().enumerate() {
            let key = |field: &str| format!("carbon.schemas[{i}].{field}");
            let re = compile(&rule.pattern).map_err(|e| problems.push(Problem::new(key("pattern"), e)));
            let archives = schema::parse_retentions(&rule.retentions).map_err(|e| problems.push(Problem::new(key("retentions"), e)));
            if let (Ok(re), Ok(archives)) = (re, archives) {
                schemas.push((re, archives));
            }
        }
        let mut aggregations = Vec::new();
        for (i, rule) in self.aggregation.iter().enumerate() {
            let key = |field: &str| format!("carbon.aggregation[{i}].{field}");
            let re = compile(&rule.pattern).map_err(|e| problems.push(Problem::new(key("pattern"), e)));
            let method = Method::parse(&rule.method).map_err(|e| problems.push(Problem::new(key("method"), e)));
            if !(0.0..=1.0).contains(&rule.x_files_factor) {
                problems.push(Problem::new(key("x_files_factor"), format!("{} is not a fraction in [0, 1]", rule.x_files_factor)));
            }
            if let (Ok(re), Ok(method)) = (re, method) {
                aggregations.push((re, method, rule.x_files_factor));
            }
        }
        if problems.is_empty() { Ok(Rules::new(schemas, aggregations)) } else { Err(problems) }
    }
}

fn compile(pattern: &str) -> Result<Regex, String> {
    Regex::new(pattern)
        .map_err(|e| format!("cannot compile pattern {pattern:?}: {}", e.to_string().lines().last().unwrap_or("invalid regex")))
}
