//! Saved dashboards: JSON documents the web UI stores and reads back. This
//! module owns the `[dashboards]` config section and the error type;
//! `model.rs` checks a dashboard's shape and makes ids from titles, and
//! `store.rs` keeps one file per dashboard under `<data_dir>/dashboards/`.
//!
//! A dashboard is whatever JSON object the UI sends, checked only where the
//! appliance reads it (title, id, panel targets, variables, time range, tags)
//! and kept whole otherwise, so layout fields need no change here. It does not
//! evaluate targets or know HTTP; `http/dashboards.rs` is the API.

pub mod model;
pub mod store;

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::{Problem, Size};

pub use store::DashboardStore;

/// The `[dashboards]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Dashboards kept; creating one more is refused.
    pub max_dashboards: usize,
    /// Largest dashboard, serialized as compact JSON.
    pub max_bytes: Size,
    /// Most panels one dashboard may have.
    pub max_panels: usize,
}

/// Upper bounds of the settings: past them a dashboard stops being something a
/// browser page renders, and the store's worst case (every dashboard at
/// `max_bytes`, read at start) stops fitting a small box.
const MAX_DASHBOARDS: usize = 100_000;
const MAX_BYTES: u64 = 64 << 20;
const MAX_PANELS: usize = 10_000;
/// A dashboard with a title and one panel is about 100 bytes; a limit below
/// 1 KiB would refuse ordinary ones.
const MIN_BYTES: u64 = 1 << 10;

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(1..=MAX_DASHBOARDS).contains(&self.max_dashboards) {
            problems.push(Problem::new("dashboards.max_dashboards", format!("{} is outside 1..{MAX_DASHBOARDS}", self.max_dashboards)));
        }
        if !(MIN_BYTES..=MAX_BYTES).contains(&self.max_bytes.bytes()) {
            problems.push(Problem::new("dashboards.max_bytes", format!("{} is outside 1KiB..64MiB", self.max_bytes)));
        }
        if !(1..=MAX_PANELS).contains(&self.max_panels) {
            problems.push(Problem::new("dashboards.max_panels", format!("{} is outside 1..{MAX_PANELS}", self.max_panels)));
        }
        problems
    }
}

/// Why a dashboard was not stored or found.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    /// The dashboard's shape is wrong; the message names the field.
    #[error("{0}")]
    Invalid(String),
    #[error("dashboard {id:?} is {bytes} bytes as JSON, over dashboards.max_bytes ({max})")]
    TooLarge { id: String, bytes: usize, max: Size },
    #[error("no dashboard {0:?}")]
    NotFound(String),
    #[error("dashboard {0:?} already exists: PUT /api/dashboards/{0} replaces it")]
    Exists(String),
    #[error("dashboards.max_dashboards ({0}) reached: delete a dashboard first")]
    Full(usize),
    #[error("dashboard store io on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(max_dashboards: usize, max_bytes: u64, max_panels: usize) -> Vec<String> {
        Config { max_dashboards, max_bytes: Size(max_bytes), max_panels }.validate().into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn bounds_are_checked_by_key() {
        assert!(problems(1000, 1 << 20, 100).is_empty());
        assert_eq!(problems(0, 1 << 20, 100), ["dashboards.max_dashboards"]);
        assert_eq!(problems(1000, 100, 100), ["dashboards.max_bytes"]);
        assert_eq!(problems(1000, 1 << 30, 0), ["dashboards.max_bytes", "dashboards.max_panels"]);
    }
}
