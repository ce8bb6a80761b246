//! Seyren-style alerting. This module owns the `[alerts]` config section;
//! the check model and its rules (`model.rs`), where checks and history are
//! kept (`store.rs`), the evaluation loop (`engine.rs`) and the notifiers
//! (`notify.rs`, `smtp.rs`) live beside it.

pub mod engine;
pub mod model;
pub mod notify;
pub mod smtp;
pub mod store;

use serde::Deserialize;

use crate::config::{Problem, Span};

/// The `[alerts]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub interval: Span,
    /// The UTC offset subscriptions' days and hours are read in: `+02:00`, `-0500`, `UTC`.
    pub time_zone: String,
    /// This appliance's URL as people reach it, for links in notifications.
    pub base_url: String,
    /// When set, every `HTTP` subscription posts here instead of its target.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// When set, `SLACK` subscriptions whose target is not a URL post here
    /// with the target as the channel.
    #[serde(default)]
    pub slack_url: Option<String>,
    pub pagerduty_url: String,
    pub opsgenie_url: String,
    /// Attempts per notification (the first and the retries, 1 s, 2 s, 4 s apart ...).
    pub retries: u32,
    pub send_timeout: Span,
    /// Alerts and actions kept in the history (the newest).
    pub max_history: u64,
    pub smtp: SmtpConfig,
    /// Checks declared here live in version control; the API shows them and
    /// may silence or acknowledge them, but not change or delete them.
    #[serde(default)]
    pub checks: Vec<model::Check>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// `host:port` of the mail server.
    pub server: String,
    pub from: String,
    pub helo: String,
    pub starttls: Starttls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    /// A PEM file of extra CA certificates to trust (a private mail server's).
    #[serde(default)]
    pub ca_file: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Starttls {
    /// When the server offers it.
    Auto,
    Always,
    Never,
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.interval.get().as_secs() < 1 {
            problems.push(Problem::new("alerts.interval", format!("{} is too short: at least 1s", self.interval)));
        }
        if utc_offset_minutes(&self.time_zone).is_none() {
            problems.push(Problem::new("alerts.time_zone", format!("{:?} is not UTC or an offset such as +02:00", self.time_zone)));
        }
        if self.retries == 0 || self.retries > 20 {
            problems.push(Problem::new("alerts.retries", "must be 1..=20"));
        }
        if self.max_history == 0 {
            problems.push(Problem::new("alerts.max_history", "must be at least 1"));
        }
        for (key, url) in [("alerts.pagerduty_url", &self.pagerduty_url), ("alerts.opsgenie_url", &self.opsgenie_url)] {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push(Problem::new(key, format!("{url:?} is not an http(s) URL")));
            }
        }
        let mut names = std::collections::HashSet::new();
        for (i, c) in self.checks.iter().enumerate() {
            if let Err(e) = c.validate() {
                problems.push(Problem::new(format!("alerts.checks[{i}]"), e));
            }
            if !names.insert(c.name.clone()) {
                problems.push(Problem::new(format!("alerts.checks[{i}].name"), format!("{:?} is declared twice", c.name)));
            }
        }
        problems
    }
}

/// Minutes east of UTC of `UTC`, `Z`, `+HH:MM`, `+HHMM` or `+HH`.
pub fn utc_offset_minutes(tz: &str) -> Option<i32> {
    let tz = tz.trim();
    if tz.eq_ignore_ascii_case("utc") || tz == "Z" || tz.is_empty() {
        return Some(0);
    }
    let (sign, rest) = match tz.as_bytes().first()? {
        b'+' => (1, &tz[1..]),
        b'-' => (-1, &tz[1..]),
        _ => return None,
    };
    let digits: String = rest.chars().filter(|c| *c != ':').collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !(digits.len() == 2 || digits.len() == 4) {
        return None;
    }
    let h: i32 = digits[..2].parse().ok()?;
    let m: i32 = if digits.len() == 4 { digits[2..].parse().ok()? } else { 0 };
    (h <= 14 && m < 60).then_some(sign * (h * 60 + m))
}
