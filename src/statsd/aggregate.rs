//! Etsy statsd's aggregation and flush (compat-spec 1.2 step 8 to 1.8): the
//! counters, timers, gauges and sets of one flush interval, the names and
//! values one flush produces in either namespace, and what is reset or
//! deleted after it. Plus statsd's own `statsd.*` metrics and DogStatsD
//! service checks as gauges (compat-spec 2.5).
//!
//! Memory is bounded: at most `max_series` keys are held (a sample for a new
//! key past it is refused and counted), and timers keep exact samples only up
//! to a per-timer bound and a pool shared by all timers (`timer.rs`).
//!
//! This is pure state: no clock (times are passed in), no I/O, no locks; the
//! listener serializes access and the flusher writes what `flush` returns.

use std::collections::HashMap;

use super::jsnum;
use super::timer::Timer;
use super::wire::{Kind, Metric, ServiceCheck};

/// statsd's own counters, there from the start so they always flush (Etsy order).
pub const BAD_LINES: &str = "statsd.bad_lines_seen";
pub const PACKETS: &str = "statsd.packets_received";
pub const METRICS: &str = "statsd.metrics_received";
const OWN: [&str; 3] = [BAD_LINES, PACKETS, METRICS];
/// Tags instantops dropped (compat-spec 2.5); a counter like the three above.
pub const BAD_TAGS: &str = "statsd.bad_tags";
const TIMESTAMP_LAG: &str = "statsd.timestamp_lag";

/// How to aggregate and name; see `statsd::Config` for each knob.
#[derive(Debug, Clone)]
pub struct Settings {
    pub interval_s: f64,
    /// Each percentile with its name suffix (`99.9` -> `99_9`, `-10` -> `top10`).
    pub thresholds: Vec<(f64, String)>,
    pub legacy_namespace: bool,
    pub delete_counters: bool,
    pub delete_timers: bool,
    pub delete_gauges: bool,
    pub delete_sets: bool,
    pub gauges_max_ttl: u32,
    pub h_as_timer: bool,
    pub max_series: usize,
    /// Exact samples one timer keeps per interval.
    pub timer_exact_samples: usize,
    /// Exact samples all timers together keep per interval.
    pub exact_pool: usize,
    /// `(metric substring, [(bound, bin name)])`, the first match wins.
    pub histograms: Vec<(String, Vec<(f64, String)>)>,
}

/// The name suffix of a percentile, as Etsy builds it from the number's
/// JavaScript string: the first `.` becomes `_`, the first `-` becomes `top`.
pub fn percentile_name(pct: f64) -> String {
    jsnum::to_string(pct).replacen('.', "_", 1).replacen('-', "top", 1)
}

/// A histogram bin's name: `bin_` and the bound's JavaScript string with its
/// first `.` made `_` (`0.01` -> `bin_0_01`, `inf` -> `bin_inf`).
pub fn bin_name(bound: f64) -> String {
    if bound.is_infinite() { "bin_inf".into() } else { format!("bin_{}", jsnum::to_string(bound)).replacen('.', "_", 1) }
}

/// What one key costs held, estimated: its map entry, its name, and its
/// aggregate (a timer's exact samples come from `exact_pool`, not this).
pub const KEY_BYTES: usize = 256;

/// foldhash with a per-process seed: several times faster than std's SipHash
/// on short keys, and still keyed against collision flooding.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
type FastSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

#[derive(Debug, Clone, Copy)]
struct Gauge {
    value: f64,
    ttl: u32,
}

/// What applying input did, for the listener's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Applied {
    pub samples: u64,
    pub bad: u64,
    /// Samples refused because `max_series` keys are held.
    pub over_limit: u64,
}

/// The previous flush's bookkeeping (Etsy's graphiteStats).
#[derive(Debug, Clone, Copy)]
pub struct Status {
    pub last_flush: i64,
    pub last_exception: i64,
    pub flush_ms: f64,
    pub flush_length: usize,
}

/// One flush: every name with its value, all at `timestamp`, and its byte
/// length as Etsy's graphite backend would send it (`name value ts\n` lines).
#[derive(Debug, Clone)]
pub struct Flushed {
    pub timestamp: i64,
    pub points: Vec<(String, f64)>,
    pub length: usize,
}

/// One interval's aggregates, out of the aggregator (see [`Aggregator::take`]).
pub struct Snapshot {
    settings: Settings,
    timestamp: i64,
    counters: Vec<(Box<str>, f64)>,
    timers: Vec<(Box<str>, Timer)>,
    gauges: Vec<(Box<str>, f64)>,
    sets: Vec<(Box<str>, usize)>,
    checks: Vec<(Box<str>, f64)>,
    last_exception: i64,
    last_flush: i64,
    flush_ms: f64,
    flush_length: usize,
}

impl Snapshot {
    /// Etsy's names and values for this interval (compat-spec 1.4, 1.5).
    pub fn flushed(mut self) -> Flushed {
        let started = std::time::Instant::now();
        let s = &self.settings;
        let mut points = Vec::with_capacity(self.counters.len() * 2 + self.timers.len() * 14 + self.gauges.len() + self.sets.len() + 16);
        let mut num_stats = 0.0;
        for (key, count) in &self.counters {
            let (base, tags) = split_tags(key);
            let rate = count / s.interval_s;
            if s.legacy_namespace {
                points.push((format!("stats.{base}{tags}"), rate));
                points.push((format!("stats_counts.{base}{tags}"), *count));
            } else {
                points.push((format!("stats.counters.{base}.rate{tags}"), rate));
                points.push((format!("stats.counters.{base}.count{tags}"), *count));
            }
            num_stats += 1.0;
        }
        for (key, timer) in &mut self.timers {
            let (base, tags) = split_tags(key);
            let bins = s.histograms.iter().find(|(metric, _)| key.contains(metric.as_str())).map_or(&[][..], |(_, b)| b.as_slice());
            for (field, value) in timer.fields(&s.thresholds, s.interval_s, bins) {
                points.push((format!("stats.timers.{base}.{field}{tags}"), value));
            }
            num_stats += 1.0;
        }
        for (key, value) in &self.gauges {
            let (base, tags) = split_tags(key);
            points.push((format!("stats.gauges.{base}{tags}"), *value));
            num_stats += 1.0;
        }
        for (key, members) in &self.sets {
            let (base, tags) = split_tags(key);
            points.push((format!("stats.sets.{base}.count{tags}"), *members as f64));
            num_stats += 1.0;
        }
        for (key, status) in &self.checks {
            let (base, tags) = split_tags(key);
            points.push((format!("stats.service_checks.{base}{tags}"), *status));
        }
        let calculation_ms = started.elapsed().as_secs_f64() * 1000.0;
        let own = |name: &str| {
            if s.legacy_namespace && name == "numStats" { "statsd.numStats".to_string() } else { format!("stats.statsd.{name}") }
        };
        points.push((own("numStats"), num_stats));
        points.push((own("graphiteStats.calculationtime"), calculation_ms.round()));
        points.push((own("processing_time"), calculation_ms.round()));
        points.push((own("graphiteStats.last_exception"), self.last_exception as f64));
        points.push((own("graphiteStats.last_flush"), self.last_flush as f64));
        points.push((own("graphiteStats.flush_time"), self.flush_ms.round()));
        points.push((own("graphiteStats.flush_length"), self.flush_length as f64));
        let ts_len = self.timestamp.to_string().len() + 3;
        let length = points.iter().map(|(n, v)| n.len() + jsnum::to_string(*v).len() + ts_len).sum();
        Flushed { timestamp: self.timestamp, points, length }
    }
}

/// The state between flushes.
pub struct Aggregator {
    settings: Settings,
    counters: FastMap<Box<str>, f64>,
    /// statsd's own bad_lines_seen, packets_received, metrics_received (in
    /// that order, as [`OWN`]): fields, not map entries, as they move on
    /// every line.
    own: [f64; 3],
    timers: FastMap<Box<str>, Timer>,
    gauges: FastMap<Box<str>, Gauge>,
    sets: FastMap<Box<str>, FastSet<Box<str>>>,
    checks: FastMap<Box<str>, f64>,
    exact_held: usize,
    old_timestamp: Option<i64>,
    /// graphiteStats: the previous flush's time and what writing it cost.
    last_flush: i64,
    flush_ms: f64,
    flush_length: usize,
    last_exception: i64,
    /// For the admin console: when input last arrived, bad lines since start.
    pub last_message: i64,
    pub bad_lines_total: u64,
}

impl Aggregator {
    /// `started` is the process start in epoch seconds (graphiteStats.last_flush
    /// before the first flush).
    pub fn new(settings: Settings, started: i64) -> Aggregator {
        Aggregator {
            settings,
            counters: FastMap::default(),
            own: [0.0; 3],
            timers: FastMap::default(),
            gauges: FastMap::default(),
            sets: FastMap::default(),
            checks: FastMap::default(),
            exact_held: 0,
            old_timestamp: None,
            last_flush: started,
            flush_ms: 0.0,
            flush_length: 0,
            last_exception: 0,
            last_message: started,
            bad_lines_total: 0,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn bump(&mut self, key: &str, by: f64) {
        match self.counters.get_mut(key) {
            Some(v) => *v += by,
            None => {
                self.counters.insert(Box::from(key), by);
            }
        }
    }

    /// One packet arrived (a datagram, or a TCP read's complete lines).
    pub fn packet(&mut self, now: i64) {
        self.own[1] += 1.0;
        self.last_message = now;
    }

    /// One non-empty line arrived (counted before it is validated).
    pub fn line(&mut self) {
        self.own[2] += 1.0;
    }

    /// One bad line (or value group).
    pub fn bad_line(&mut self) {
        self.own[0] += 1.0;
        self.bad_lines_total += 1;
    }

    fn held(&self) -> usize {
        OWN.len() + self.counters.len() + self.timers.len() + self.gauges.len() + self.sets.len() + self.checks.len()
    }

    /// Applies a metric line's samples; bad groups are counted as bad lines
    /// and handed to `on_bad`.
    pub fn apply(&mut self, metric: &Metric<'_>, mut on_bad: impl FnMut(&dyn std::fmt::Display)) -> Applied {
        let mut applied = Applied::default();
        if metric.bad_tags > 0 {
            self.bump(BAD_TAGS, f64::from(metric.bad_tags));
        }
        let full: std::borrow::Cow<'_, str> =
            if metric.tags.is_empty() { std::borrow::Cow::Borrowed(&metric.key) } else { format!("{}{}", metric.key, metric.tags).into() };
        for sample in metric.samples(self.settings.h_as_timer) {
            let sample = match sample {
                Ok(s) => s,
                Err(e) => {
                    self.bad_line();
                    on_bad(&e);
                    applied.bad += 1;
                    continue;
                }
            };
            // One lookup for a known key; a new key is checked against the bound.
            let full = &*full;
            let held = self.held();
            let room = held < self.settings.max_series;
            let stored = match sample.kind {
                Kind::Counter(v) => match self.counters.get_mut(full) {
                    Some(c) => {
                        *c += v;
                        true
                    }
                    None => room && self.counters.insert(Box::from(full), v).is_none(),
                },
                Kind::Timer(v) => {
                    let pool_left = self.exact_held < self.settings.exact_pool;
                    let per_timer = self.settings.timer_exact_samples;
                    let timer = match self.timers.get_mut(full) {
                        Some(t) => Some(t),
                        None if room => Some(self.timers.entry(Box::from(full)).or_default()),
                        None => None,
                    };
                    match timer {
                        Some(timer) => {
                            let may_keep = timer.exact_len() < per_timer && pool_left;
                            let released = timer.add(v, sample.rate, may_keep);
                            self.exact_held = self.exact_held - released + usize::from(may_keep && !timer.approximate());
                            true
                        }
                        None => false,
                    }
                }
                Kind::Gauge { value, delta } => {
                    let ttl = self.settings.gauges_max_ttl;
                    match self.gauges.get_mut(full) {
                        Some(gauge) => {
                            // A delta moves an existing, truthy (non-zero, non-NaN)
                            // gauge; anything else sets it (so a first `-5` sets -5).
                            let truthy = gauge.value != 0.0 && !gauge.value.is_nan();
                            gauge.value = if delta && truthy { gauge.value + value } else { value };
                            gauge.ttl = ttl;
                            true
                        }
                        None => room && self.gauges.insert(Box::from(full), Gauge { value, ttl }).is_none(),
                    }
                }
                Kind::Set(member) => match self.sets.get_mut(full) {
                    Some(members) => {
                        if !members.contains(member) {
                            members.insert(Box::from(member));
                        }
                        true
                    }
                    None => {
                        room && {
                            let mut members = FastSet::default();
                            members.insert(Box::from(member));
                            self.sets.insert(Box::from(full), members).is_none()
                        }
                    }
                },
            };
            if stored {
                applied.samples += 1;
            } else {
                applied.over_limit += 1;
            }
        }
        applied
    }

    /// The latest status of a DogStatsD service check, flushed as the gauge
    /// `stats.service_checks.<name>` with its host and tags as Graphite tags.
    /// False when `max_series` keys are already held.
    pub fn service_check(&mut self, check: &ServiceCheck) -> bool {
        let mut key = sanitize_path(&check.name);
        let mut tags: Vec<String> = check.host.iter().map(|h| format!("host={}", sanitize_path(h))).collect();
        for tag in &check.tags {
            let (name, value) = tag.split_once(':').unwrap_or((tag, "true"));
            let (name, value) = (sanitize_path(name), sanitize_path(value));
            if !name.is_empty() && !value.is_empty() {
                tags.push(format!("{name}={value}"));
            }
        }
        for tag in tags {
            key.push(';');
            key.push_str(&tag);
        }
        if !self.checks.contains_key(key.as_str()) && self.held() >= self.settings.max_series {
            return false;
        }
        self.checks.insert(key.into_boxed_str(), f64::from(check.status));
        true
    }

    /// Records what writing the last flush cost (graphiteStats.flush_time,
    /// flush_length) or that it failed (last_exception), for the next flush.
    pub fn record_write(&mut self, ms: f64, length: usize, ok: bool, now: i64) {
        self.flush_ms = ms;
        self.flush_length = length;
        if !ok {
            self.last_exception = now;
        }
    }

    /// One flush at `now_ms` (epoch milliseconds): [`Aggregator::take`],
    /// then [`Snapshot::flushed`], its length recorded for the next flush.
    pub fn flush(&mut self, now_ms: i64) -> Flushed {
        let flushed = self.take(now_ms).flushed();
        self.flush_length = flushed.length;
        flushed
    }

    /// What one flush at `now_ms` holds, taken out so that naming and the
    /// timer fields are computed without the lock that ingest needs; the
    /// aggregate is reset for the next interval (compat-spec 1.6).
    pub fn take(&mut self, now_ms: i64) -> Snapshot {
        let ts = (now_ms as f64 / 1000.0).round() as i64;
        if let Some(old) = self.old_timestamp {
            self.gauges.insert(Box::from(TIMESTAMP_LAG), Gauge { value: (ts - old) as f64 - self.settings.interval_s, ttl: 0 });
        }
        self.old_timestamp = Some(ts);
        let counters =
            OWN.iter().zip(self.own).map(|(k, c)| (Box::from(*k), c)).chain(self.counters.iter().map(|(k, c)| (k.clone(), *c))).collect();
        let timers = self.timers.iter_mut().map(|(k, t)| (k.clone(), std::mem::take(t))).collect();
        let snapshot = Snapshot {
            settings: self.settings.clone(),
            timestamp: ts,
            counters,
            timers,
            gauges: self.gauges.iter().map(|(k, g)| (k.clone(), g.value)).collect(),
            sets: self.sets.iter().map(|(k, m)| (k.clone(), m.len())).collect(),
            checks: self.checks.iter().map(|(k, c)| (k.clone(), *c)).collect(),
            last_exception: self.last_exception,
            last_flush: self.last_flush,
            flush_ms: self.flush_ms,
            flush_length: self.flush_length,
        };
        self.last_flush = ts;
        self.reset();
        snapshot
    }

    /// compat-spec 1.6: what survives a flush.
    fn reset(&mut self) {
        let s = &self.settings;
        if s.delete_counters {
            self.counters.retain(|k, _| [PACKETS, METRICS, BAD_LINES].iter().any(|own| k.contains(own.trim_start_matches("statsd."))));
        }
        self.counters.values_mut().for_each(|v| *v = 0.0);
        self.own = [0.0; 3];
        if s.delete_timers {
            self.timers.clear();
        } else {
            self.timers.values_mut().for_each(Timer::reset);
        }
        self.exact_held = 0;
        if s.delete_sets {
            self.sets.clear();
        } else {
            self.sets.values_mut().for_each(FastSet::clear);
        }
        if s.delete_gauges {
            self.gauges.retain(|k, g| {
                if &**k == TIMESTAMP_LAG {
                    return true;
                }
                g.ttl = g.ttl.saturating_sub(1);
                g.ttl >= 1
            });
        }
    }

    /// graphiteStats, for the admin console's `stats`.
    pub fn status(&self) -> Status {
        Status {
            last_flush: self.last_flush,
            last_exception: self.last_exception,
            flush_ms: self.flush_ms,
            flush_length: self.flush_length,
        }
    }

    /// `(key, value)` of every counter, for the admin console.
    pub fn counters(&self) -> impl Iterator<Item = (&str, f64)> {
        OWN.iter().zip(self.own).map(|(k, v)| (*k, v)).chain(self.counters.iter().map(|(k, v)| (&**k, *v)))
    }

    pub fn gauges(&self) -> impl Iterator<Item = (&str, f64)> {
        self.gauges.iter().map(|(k, g)| (&**k, g.value))
    }

    pub fn timers(&self) -> impl Iterator<Item = (&str, &Timer)> {
        self.timers.iter().map(|(k, t)| (&**k, t))
    }

    /// Deletes one key of a kind (`delcounters` and friends); false when absent.
    pub fn delete(&mut self, kind: &str, key: &str) -> bool {
        match kind {
            "counters" => self.counters.remove(key).is_some(),
            "timers" => self.timers.remove(key).is_some(),
            "gauges" => self.gauges.remove(key).is_some(),
            _ => false,
        }
    }

    /// Whether any packet arrived since the last flush.
    pub fn has_input(&self) -> bool {
        self.own[1] > 0.0
    }

    /// What the maps hold, as the memory budget's statsd share counts it:
    /// [`KEY_BYTES`] a key and 8 bytes an exact timer sample.
    pub fn held_bytes(&self) -> usize {
        self.held() * KEY_BYTES + self.exact_held * std::mem::size_of::<f64>()
    }

    /// Keys held now (counted against `max_series`).
    pub fn series(&self) -> usize {
        self.held()
    }
}

/// `base;t=v` as (`base`, `;t=v`).
fn split_tags(key: &str) -> (&str, &str) {
    key.split_at(key.find(';').unwrap_or(key.len()))
}

/// A service check name or tag made a Graphite path node: the characters
/// Etsy keeps in keys, whitespace as `_`.
fn sanitize_path(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.') => Some(c),
            c if c.is_whitespace() => Some('_'),
            '/' => Some('-'),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statsd::wire::{Line, lines, parse_line};

    pub fn settings(legacy: bool) -> Settings {
        Settings {
            interval_s: 10.0,
            thresholds: vec![(90.0, percentile_name(90.0))],
            legacy_namespace: legacy,
            delete_counters: false,
            delete_timers: false,
            delete_gauges: false,
            delete_sets: false,
            gauges_max_ttl: 1,
            h_as_timer: true,
            max_series: 1000,
            timer_exact_samples: 10_000,
            exact_pool: 1_000_000,
            histograms: Vec::new(),
        }
    }

    fn send(agg: &mut Aggregator, packet: &str) {
        agg.packet(0);
        for line in lines(packet.as_bytes()) {
            agg.line();
            match parse_line(line) {
                Ok(Line::Metric(m)) => {
                    agg.apply(&m, |_| {});
                }
                Ok(Line::ServiceCheck(c)) => {
                    agg.service_check(&c);
                }
                Ok(Line::Event(_)) => {}
                Err(_) => agg.bad_line(),
            }
        }
    }

    fn flushed(agg: &mut Aggregator, now_ms: i64) -> Vec<(String, f64)> {
        let mut points = agg.flush(now_ms).points;
        points.retain(|(n, _)| !n.contains("graphiteStats") && !n.contains("processing_time"));
        points.sort_by(|a, b| a.0.cmp(&b.0));
        points
    }

    fn text(points: &[(String, f64)]) -> String {
        points.iter().map(|(n, v)| format!("{n} {}\n", jsnum::to_string(*v))).collect()
    }

    /// compat-spec 1.9, the real Etsy output for the three packets.
    #[test]
    fn worked_example_in_both_namespaces() {
        let packets = [
            "api.hits:1|c\napi.hits:2|c|@0.5\nlatency:100|ms\nlatency:200|ms\nlatency:300|ms|@0.5",
            "temp:50|g\ntemp:+5|g\ntemp:-15|g\nusers:alice|s\nusers:bob|s\nusers:alice|s",
            "bad_line_no_type\nfoo:abc|c",
        ];
        let mut s = settings(false);
        s.histograms = vec![("latency".into(), [150.0, 250.0, f64::INFINITY].iter().map(|&b| (b, bin_name(b))).collect())];
        let mut agg = Aggregator::new(s, 1_000);
        for p in packets {
            send(&mut agg, p);
        }
        let first = text(&flushed(&mut agg, 1_010_000));
        let expected = "\
stats.counters.api.hits.count 5
stats.counters.api.hits.rate 0.5
stats.counters.statsd.bad_lines_seen.count 2
stats.counters.statsd.bad_lines_seen.rate 0.2
stats.counters.statsd.metrics_received.count 13
stats.counters.statsd.metrics_received.rate 1.3
stats.counters.statsd.packets_received.count 3
stats.counters.statsd.packets_received.rate 0.3
stats.gauges.temp 40
stats.sets.users.count 2
stats.statsd.numStats 7
stats.timers.latency.count 4
stats.timers.latency.count_90 3
stats.timers.latency.count_ps 0.4
stats.timers.latency.histogram.bin_150 1
stats.timers.latency.histogram.bin_250 1
stats.timers.latency.histogram.bin_inf 1
stats.timers.latency.lower 100
stats.timers.latency.mean 200
stats.timers.latency.mean_90 200
stats.timers.latency.median 200
stats.timers.latency.std 81.64965809277261
stats.timers.latency.sum 600
stats.timers.latency.sum_90 600
stats.timers.latency.sum_squares 140000
stats.timers.latency.sum_squares_90 140000
stats.timers.latency.upper 300
stats.timers.latency.upper_90 300
";
        assert_eq!(first, expected);
        let second = text(&flushed(&mut agg, 1_020_000));
        let expected = "\
stats.counters.api.hits.count 0
stats.counters.api.hits.rate 0
stats.counters.statsd.bad_lines_seen.count 0
stats.counters.statsd.bad_lines_seen.rate 0
stats.counters.statsd.metrics_received.count 0
stats.counters.statsd.metrics_received.rate 0
stats.counters.statsd.packets_received.count 0
stats.counters.statsd.packets_received.rate 0
stats.gauges.statsd.timestamp_lag 0
stats.gauges.temp 40
stats.sets.users.count 0
stats.statsd.numStats 8
stats.timers.latency.count 0
stats.timers.latency.count_ps 0
";
        assert_eq!(second, expected);

        let mut agg = Aggregator::new(settings(true), 1_000);
        for p in packets {
            send(&mut agg, p);
        }
        let legacy = text(&flushed(&mut agg, 1_010_000));
        for line in [
            "stats.statsd.bad_lines_seen 0.2\n",
            "stats_counts.statsd.bad_lines_seen 2\n",
            "stats.api.hits 0.5\n",
            "stats_counts.api.hits 5\n",
            "statsd.numStats 7\n",
            "stats.timers.latency.upper_90 300\n",
            "stats.gauges.temp 40\n",
        ] {
            assert!(legacy.contains(line), "{line} missing from\n{legacy}");
        }
        assert!(!legacy.contains("histogram"));
    }

    #[test]
    fn idle_stats_and_numstats() {
        // numStats is 3 on the first idle flush, 4 from the second on (1.10 item 17).
        let mut agg = Aggregator::new(settings(true), 0);
        let num = |p: &[(String, f64)]| p.iter().find(|(n, _)| n == "statsd.numStats").map(|(_, v)| *v);
        assert_eq!(num(&flushed(&mut agg, 10_000)), Some(3.0));
        assert_eq!(num(&flushed(&mut agg, 20_000)), Some(4.0));

        // deleteIdleStats: idle counters, timers and sets disappear, internal counters stay,
        // a gauge goes after gaugesMaxTTL idle flushes (1.10 item 14).
        let mut s = settings(true);
        (s.delete_counters, s.delete_timers, s.delete_gauges, s.delete_sets, s.gauges_max_ttl) = (true, true, true, true, 2);
        let mut agg = Aggregator::new(s, 0);
        send(&mut agg, "c:1|c\nt:1|ms\ng:1|g\ns:a|s");
        let names = |p: Vec<(String, f64)>| p.into_iter().map(|(n, _)| n).collect::<Vec<_>>().join(" ");
        let first = names(flushed(&mut agg, 10_000));
        assert!(
            first.contains("stats.c ")
                && first.contains("stats.timers.t.count")
                && first.contains("stats.gauges.g")
                && first.contains("stats.sets.s.count"),
            "{first}"
        );
        let second = names(flushed(&mut agg, 20_000));
        assert!(!second.contains("stats.c ") && !second.contains("stats.timers.t") && !second.contains("stats.sets.s"), "{second}");
        assert!(second.contains("stats.gauges.g") && second.contains("stats_counts.statsd.packets_received"), "{second}");
        let third = names(flushed(&mut agg, 30_000));
        assert!(!third.contains("stats.gauges.g ") && third.contains("stats.gauges.statsd.timestamp_lag"), "{third}");
    }

    #[test]
    fn gauges_deltas_and_edge_lines() {
        let mut agg = Aggregator::new(settings(true), 0);
        // 1.10 item 7.
        send(&mut agg, "g1:5|g\ng1:-10|g\ng2:0|g\ng2:-10|g\ng3:-10|g\ng4:7|g\ng4:+0|g");
        // item 4 and 6; item 1 (trailing newline); a sample rate on a gauge is ignored (item 8).
        send(&mut agg, "s:|s\nneg:-1|c\nm:1|c:2|c:3|ms\nr:9|g|@0.1\n");
        let p = flushed(&mut agg, 10_000);
        let get = |name: &str| p.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        assert_eq!(
            (get("stats.gauges.g1"), get("stats.gauges.g2"), get("stats.gauges.g3"), get("stats.gauges.g4"), get("stats.gauges.r")),
            (Some(-5.0), Some(-10.0), Some(-10.0), Some(7.0), Some(9.0))
        );
        assert_eq!(
            (get("stats.sets.s.count"), get("stats_counts.neg"), get("stats_counts.m"), get("stats.timers.m.count")),
            (Some(1.0), Some(-1.0), Some(3.0), Some(1.0))
        );
        assert_eq!(get("stats_counts.statsd.metrics_received"), Some(11.0));
    }

    #[test]
    fn tags_names_and_limits() {
        let mut s = settings(false);
        s.max_series = 5; // 3 internal counters + 2
        let mut agg = Aggregator::new(s, 0);
        send(&mut agg, "fo/o;t=v:1|c\na:1|c|#env:prod,solo\nb:1|c");
        let names: Vec<String> = flushed(&mut agg, 10_000).into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"stats.counters.fo-o.count;t=v".to_string()), "{names:?}");
        assert!(names.contains(&"stats.counters.a.rate;env=prod;solo=true".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains(".b.")), "b is past max_series: {names:?}");
        assert_eq!(percentile_name(99.9), "99_9");
        assert_eq!(percentile_name(-10.0), "top10");
        assert_eq!(bin_name(0.01), "bin_0_01");
        assert_eq!(bin_name(f64::INFINITY), "bin_inf");
    }

    #[test]
    fn service_checks_flush_as_gauges() {
        let mut agg = Aggregator::new(settings(true), 0);
        send(&mut agg, "_sc|db.primary|2|h:web 1|#env:prod|m:down\n_sc|db.primary|0|h:web 1|#env:prod");
        let p = flushed(&mut agg, 10_000);
        assert!(p.contains(&("stats.service_checks.db.primary;host=web_1;env=prod".to_string(), 0.0)), "{p:?}");
    }
}
