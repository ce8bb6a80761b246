//! The Graphite-web API over the time-series store: target grammar, globs,
//! time specs, render functions and output formats, `/metrics/find` and
//! friends. Pure functions of (store, request parameters) -> reply; the axum
//! glue is in `http/graphite.rs`.

pub mod eval;
pub mod events;
pub mod expr;
pub mod find;
pub mod functions;
pub mod glob;
pub mod png;
pub mod pyfloat;
pub mod render;
pub mod series;
pub mod spare;
pub mod tags;
pub mod timespec;

use serde::Deserialize;

use crate::config::Problem;

/// The `[graphite]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub max_series: usize,
    pub max_points: usize,
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.max_series == 0 {
            problems.push(Problem::new("graphite.max_series", "must be at least 1"));
        }
        if self.max_points < 1000 {
            problems.push(Problem::new("graphite.max_points", "must be at least 1000"));
        }
        problems
    }

    pub fn limits(&self) -> eval::Limits {
        eval::Limits { max_series: self.max_series, max_points: self.max_points }
    }
}

/// The version graphite-web reports; Grafana reads it to enable tags and /functions.
pub const VERSION: &str = "1.1.8";
