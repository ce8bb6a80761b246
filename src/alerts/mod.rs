//! Seyren-style alerting. This module owns the `[alerts]` config section; checks,
//! their evaluation, state and notifiers live beside it.

use serde::Deserialize;

use crate::config::{Problem, Span};

/// The `[alerts]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub interval: Span,
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.interval.get().as_secs() < 1 {
            problems.push(Problem::new("alerts.interval", format!("{} is too short: at least 1s", self.interval)));
        }
        problems
    }
}
