//! Integration tests: one binary, so the appliance and its stores link once.
//! Every test starts its own appliance (see harness.rs) and runs in parallel.

mod alerts;
mod carbon;
mod dashboards;
mod events_diff;
mod grafana_requests;
mod graphite_api;
mod graphite_web;
mod harness;
mod host;
mod image;
mod log_search;
mod logs;
mod python_repr;
mod render_diff;
mod skeleton;
mod soak;
mod statsd;
mod statsd_diff;
mod syslog_diff;
mod tidy;
mod tsdb_model;
mod ui;
mod whisper;
