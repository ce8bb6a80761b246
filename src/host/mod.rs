//! The diamond replacement, and the appliance watching itself. Owns the
//! `[host]` config section. Every `host.interval` it writes into the
//! time-series store:
//!
//! - host metrics under `servers.<host>.*` with Diamond's names: `cpu.<cpu>.<state>`
//!   (jiffies a second, so 100 is one whole core), `memory.<MemInfo name>` (bytes),
//!   `loadavg.01|05|15|processes_running|processes_total`,
//!   `diskspace.<mount>.byte_used|byte_free|byte_avail|inodes_used|inodes_free|inodes_avail`,
//!   `iostat.<device>.reads_per_second|writes_per_second|read_byte_per_second|write_byte_per_second|util_percentage|io_in_progress`,
//!   `network.<interface>.rx_byte|tx_byte|rx_packets|...` (a second), and
//!   `proc.processes|ctxt` (a second), `proc.procs_running|procs_blocked`;
//! - every counter and gauge of the telemetry registry under
//!   `instantops.<host>.<name>[.<label value>...]` (the `instantops_` prefix dropped),
//!   so the appliance graphs and alerts on itself;
//!
//! and every ten minutes it samples the series count per prefix for
//! `/api/cardinality` (`cardinality.rs`).

pub mod cardinality;
pub mod proc;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use serde::Deserialize;
use tokio::sync::watch;

use crate::config::{Problem, Span};
use crate::telemetry::{Counter, Registry};
use crate::tsdb::Store;
use crate::tsdb::store::Incoming;

/// The `[host]` section. Defaults and documentation: config/instantops.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Host metrics under `servers.<host>.*`.
    pub metrics: bool,
    /// The appliance's own metrics under `instantops.<host>.*`.
    pub self_metrics: bool,
    pub interval: Span,
    /// The `<host>` in the names; empty: the system's short hostname.
    pub hostname: String,
}

impl Config {
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.interval.get().as_secs() < 1 {
            problems.push(Problem::new("host.interval", format!("{} is too short: at least 1s", self.interval)));
        }
        if self.hostname.contains(['.', ' ', '/']) {
            problems.push(Problem::new("host.hostname", "must be one Graphite path node: no dots, spaces or slashes"));
        }
        problems
    }

    /// The `<host>` node: configured, or the kernel's short hostname.
    pub fn host(&self) -> String {
        let name = if self.hostname.is_empty() {
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into())
        } else {
            self.hostname.clone()
        };
        node(name.trim().split('.').next().unwrap_or("localhost"))
    }
}

/// A Graphite path node: anything but letters, digits, `_` and `-` becomes `_`.
fn node(s: &str) -> String {
    let n: String = s.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '-' { c } else { '_' }).collect();
    if n.is_empty() { "_".into() } else { n }
}

/// The previous raw counters, to make rates.
#[derive(Default)]
struct Previous {
    at: Option<Instant>,
    counters: HashMap<String, u64>,
}

pub struct Collector {
    store: Arc<Store>,
    cardinality: Arc<cardinality::Cardinality>,
    registry: Registry,
    config: Config,
    host: String,
    previous: Previous,
    written: Counter,
}

impl Collector {
    pub fn new(store: Arc<Store>, cardinality: Arc<cardinality::Cardinality>, registry: &Registry, config: Config) -> Collector {
        let host = config.host();
        let written = registry.counter("instantops_host_points_total", "Points of host and self metrics written to the store.", &[]);
        Collector { store, cardinality, registry: registry.clone(), config, host, previous: Previous::default(), written }
    }

    /// Collects every `host.interval` until `stop` is set.
    pub fn run(mut self, stop: &watch::Receiver<bool>) {
        let interval = self.config.interval.get();
        crate::schedule::every(interval, stop, || self.once());
    }

    /// One collection, written with the current time; and a cardinality
    /// sample when one is due.
    pub fn once(&mut self) {
        let now = crate::tsdb::store::unix_now();
        if self.cardinality.due(i64::from(now)) {
            match self.store.count_by_prefix(cardinality::DEPTH) {
                Ok(counts) => self.cardinality.record(i64::from(now), counts),
                Err(e) => tracing::warn!(error = %e, "cannot count series for the cardinality guard"),
            }
        }
        let mut points: Vec<(String, f64)> = Vec::new();
        if self.config.metrics {
            self.host_metrics(&mut points);
        }
        if self.config.self_metrics {
            for r in self.registry.snapshot() {
                let mut name = format!("instantops.{}.{}", self.host, node(r.name.strip_prefix("instantops_").unwrap_or(r.name)));
                for (_, v) in &r.labels {
                    name.push('.');
                    name.push_str(&node(v));
                }
                points.push((name, r.value));
            }
        }
        let batch: Vec<Incoming<'_>> =
            points.iter().filter(|(_, v)| v.is_finite()).map(|(n, v)| Incoming { name: n, ts: i64::from(now), value: *v }).collect();
        match self.store.ingest(&batch, now) {
            Ok(done) => {
                self.written.add(done.accepted);
                let refused = done.refused_limit + done.refused_memory;
                if refused > 0 {
                    tracing::warn!(refused, "host metrics of new series refused (series limit or memory share)");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot store host metrics"),
        }
    }

    fn host_metrics(&mut self, out: &mut Vec<(String, f64)>) {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let base = format!("servers.{}", self.host);
        let at = Instant::now();
        let elapsed = self.previous.at.map(|p| at.duration_since(p).as_secs_f64()).filter(|s| *s > 0.0);
        let mut counters: HashMap<String, u64> = HashMap::new();
        let mut rate = |name: String, value: u64, scale: f64, out: &mut Vec<(String, f64)>| {
            if let (Some(secs), Some(before)) = (elapsed, self.previous.counters.get(&name)) {
                out.push((name.clone(), value.saturating_sub(*before) as f64 * scale / secs));
            }
            counters.insert(name, value);
        };
        let stat = read("/proc/stat");
        for (cpu, states) in proc::cpu(&stat) {
            for (state, v) in states {
                rate(format!("{base}.cpu.{cpu}.{state}"), v, 1.0, out);
            }
        }
        for (key, v) in proc::proc_counts(&stat) {
            match key {
                "processes" | "ctxt" => rate(format!("{base}.proc.{key}"), v, 1.0, out),
                _ => out.push((format!("{base}.proc.{key}"), v as f64)),
            }
        }
        for (name, v) in proc::meminfo(&read("/proc/meminfo")) {
            out.push((format!("{base}.memory.{}", node(&name)), v as f64));
        }
        for (name, v) in proc::loadavg(&read("/proc/loadavg")) {
            out.push((format!("{base}.loadavg.{name}"), v));
        }
        for d in proc::diskstats(&read("/proc/diskstats")) {
            let dev = format!("{base}.iostat.{}", node(&d.name));
            rate(format!("{dev}.reads_per_second"), d.reads, 1.0, out);
            rate(format!("{dev}.writes_per_second"), d.writes, 1.0, out);
            rate(format!("{dev}.read_byte_per_second"), d.read_sectors, 512.0, out);
            rate(format!("{dev}.write_byte_per_second"), d.write_sectors, 512.0, out);
            // ms of I/O per second / 10 = percent of the time busy.
            rate(format!("{dev}.util_percentage"), d.io_ms, 0.1, out);
            out.push((format!("{dev}.io_in_progress"), d.in_progress as f64));
        }
        for (iface, values) in proc::netdev(&read("/proc/net/dev")) {
            for (name, v) in values {
                rate(format!("{base}.network.{}.{name}", node(&iface)), v, 1.0, out);
            }
        }
        for (_, mount) in proc::mounts(&read("/proc/mounts")) {
            let Ok(fs) = nix::sys::statvfs::statvfs(mount.as_str()) else { continue };
            let block = fs.fragment_size() as f64;
            let name = format!("{base}.diskspace.{}", node(&proc::mount_name(&mount)));
            out.push((format!("{name}.byte_used"), block * (fs.blocks() - fs.blocks_free()) as f64));
            out.push((format!("{name}.byte_free"), block * fs.blocks_free() as f64));
            out.push((format!("{name}.byte_avail"), block * fs.blocks_available() as f64));
            out.push((format!("{name}.inodes_used"), (fs.files() - fs.files_free()) as f64));
            out.push((format!("{name}.inodes_free"), fs.files_free() as f64));
            out.push((format!("{name}.inodes_avail"), fs.files_available() as f64));
        }
        self.previous = Previous { at: Some(at), counters };
    }
}
