//! Typed counters and gauges that every subsystem registers once and bumps on
//! its hot path with one relaxed atomic add. `/api/status` and `/metrics` read
//! them through [`Registry::snapshot`].
//!
//! Registration takes a lock and is meant for start-up; registering the same
//! name and labels twice returns the same cell, so handles can be re-derived.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down (bytes in use, series held, connections).
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

#[derive(Clone, Debug)]
enum Cell {
    Counter(Counter),
    Gauge(Gauge),
}

struct Family {
    help: &'static str,
    kind: Kind,
    series: BTreeMap<Labels, Cell>,
}

/// Label pairs, sorted by name, as Prometheus prints them.
pub type Labels = Vec<(&'static str, String)>;

type Collector = Box<dyn Fn() + Send + Sync>;

/// One value as read at snapshot time.
#[derive(Clone, Debug, PartialEq)]
pub struct Reading {
    pub name: &'static str,
    pub labels: Labels,
    pub kind: Kind,
    pub value: f64,
}

impl Reading {
    /// `name{a="x",b="y"}`, the key `/api/status` uses.
    pub fn key(&self) -> String {
        let mut out = self.name.to_string();
        write_labels(&mut out, &self.labels);
        out
    }
}

/// The appliance's metric registry. Cheap to clone; all clones share cells.
#[derive(Clone, Default)]
pub struct Registry {
    families: Arc<Mutex<BTreeMap<&'static str, Family>>>,
    collectors: Arc<Mutex<Vec<Collector>>>,
}

impl Registry {
    pub fn new() -> Registry {
        Registry::default()
    }

    pub fn counter(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)]) -> Counter {
        match self.cell(name, help, Kind::Counter, labels) {
            Cell::Counter(c) => c,
            Cell::Gauge(_) => unreachable!("cell() checks the kind"),
        }
    }

    pub fn gauge(&self, name: &'static str, help: &'static str, labels: &[(&'static str, &str)]) -> Gauge {
        match self.cell(name, help, Kind::Gauge, labels) {
            Cell::Gauge(g) => g,
            Cell::Counter(_) => unreachable!("cell() checks the kind"),
        }
    }

    /// Runs `f` before every snapshot, to refresh gauges that are cheaper to
    /// read on demand than to keep current (RSS, disk usage).
    pub fn on_collect(&self, f: impl Fn() + Send + Sync + 'static) {
        self.collectors.lock().expect("registry lock poisoned").push(Box::new(f));
    }

    fn cell(&self, name: &'static str, help: &'static str, kind: Kind, labels: &[(&'static str, &str)]) -> Cell {
        let mut labels: Labels = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        labels.sort();
        let mut families = self.families.lock().expect("registry lock poisoned");
        let family = families.entry(name).or_insert_with(|| Family { help, kind, series: BTreeMap::new() });
        assert_eq!(family.kind, kind, "metric {name} registered as both counter and gauge");
        family
            .series
            .entry(labels)
            .or_insert_with(|| match kind {
                Kind::Counter => Cell::Counter(Counter::default()),
                Kind::Gauge => Cell::Gauge(Gauge::default()),
            })
            .clone()
    }

    /// Every value, sorted by name then labels.
    pub fn snapshot(&self) -> Vec<Reading> {
        for collect in self.collectors.lock().expect("registry lock poisoned").iter() {
            collect();
        }
        let families = self.families.lock().expect("registry lock poisoned");
        let mut out = Vec::new();
        for (name, family) in families.iter() {
            for (labels, cell) in &family.series {
                let value = match cell {
                    Cell::Counter(c) => c.get() as f64,
                    Cell::Gauge(g) => g.get() as f64,
                };
                out.push(Reading { name, labels: labels.clone(), kind: family.kind, value });
            }
        }
        out
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn prometheus(&self) -> String {
        let readings = self.snapshot();
        let families = self.families.lock().expect("registry lock poisoned");
        let mut out = String::new();
        let mut last = "";
        for r in &readings {
            if r.name != last {
                let help = families.get(r.name).map_or("", |f| f.help);
                let _ = writeln!(out, "# HELP {} {}", r.name, help.replace('\\', "\\\\").replace('\n', "\\n"));
                let _ = writeln!(out, "# TYPE {} {}", r.name, r.kind.name());
                last = r.name;
            }
            out.push_str(r.name);
            write_labels(&mut out, &r.labels);
            let _ = writeln!(out, " {}", r.value);
        }
        out
    }
}

fn write_labels(out: &mut String, labels: &Labels) {
    if labels.is_empty() {
        return;
    }
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let escaped = v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
        let _ = write!(out, "{k}=\"{escaped}\"");
    }
    out.push('}');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_name_and_labels_share_a_cell() {
        let r = Registry::new();
        let a = r.counter("x_total", "x", &[("input", "tcp")]);
        let b = r.counter("x_total", "x", &[("input", "tcp")]);
        let c = r.counter("x_total", "x", &[("input", "udp")]);
        a.inc();
        b.add(2);
        c.inc();
        assert_eq!(a.get(), 3);
        assert_eq!(c.get(), 1);
    }

    #[test]
    fn prometheus_text() {
        let r = Registry::new();
        r.counter("b_total", "bees", &[("k", "a\"b")]).add(5);
        r.gauge("a_bytes", "size", &[]).set(-2);
        let gauge = r.gauge("c_live", "refreshed", &[]);
        r.on_collect(move || gauge.set(7));
        assert_eq!(
            r.prometheus(),
            "# HELP a_bytes size\n# TYPE a_bytes gauge\na_bytes -2\n\
             # HELP b_total bees\n# TYPE b_total counter\nb_total{k=\"a\\\"b\"} 5\n\
             # HELP c_live refreshed\n# TYPE c_live gauge\nc_live 7\n"
        );
    }
}
