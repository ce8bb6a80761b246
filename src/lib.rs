//! instantops: one process that replaces the ops box of statsd, carbon,
//! whisper, graphite-web, Logstash, Elasticsearch, Kibana and Seyren.
//!
//! `main.rs` parses the command line and calls [`app::run`]; everything else is
//! a subsystem folder named after the service it replaces. ARCHITECTURE.md has
//! the data flow and each folder's contract.

pub mod alerts;
pub mod app;
pub mod carbon;
pub mod config;
pub mod dashboards;
pub mod durable;
pub mod graphite;
pub mod host;
pub mod http;
pub mod listen;
pub mod loadgen;
pub mod logs;
pub mod schedule;
pub mod splitmix;
pub mod statsd;
pub mod telemetry;
pub mod tsdb;

/// The crate version, as `instantops version` and `/api/status` report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
