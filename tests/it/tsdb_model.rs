//! A model-based test of the series store that reopens it (STYLE.md; sled's
//! fuzz_model): random ingests, flushes, reopens, compactions, clock advances
//! and fetches on two series with random policies, each fetch compared with
//! an in-memory model.
//!
//! The model is whisper's rules written down plainly, not the store's code:
//! per archive a `BTreeMap` of aligned timestamp -> value; a flush is one
//! `update_many` at the flush's `now` (each point to the finest archive that
//! covers its age, finest archive first, each followed by its propagation,
//! which goes one archive further only while some window passed the
//! xFilesFactor); a fetch is whisper's `fetch`, with the points not yet flushed
//! laid over it as the store documents (each in the archive its age picks).
//! Within one flush the later of two writes to a slot wins (the store's
//! documented semantics).
//!
//! Points stay in the past and away from every retention edge, where whisper's
//! ring and its write order show (tests/it/whisper.rs pins those): at least
//! one own step past the finer archive and, for each rollup window holding the
//! point, inside the retention of the archive the window is read from. Clock
//! advances shrink so that no point waiting for a flush ages into such an edge.
//! No value is -0.0 (whisper.rs pins how it aggregates).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use instantops::telemetry::Registry;
use instantops::tsdb::schema::{Archive, Method, Rules};
use instantops::tsdb::{Fetched, Incoming, Store, Tuning};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use regex::Regex;

/// A multiple of 3600 in 2033: the store's compaction filter expires chunks by
/// the wall clock, and data "older" than today could vanish under a reopen.
const T0: i64 = 2_000_001_600;

const SERIES: [&str; 2] = ["model.a", "model.b"];

const METHODS: [&str; 8] = ["average", "sum", "last", "max", "min", "avg_zero", "absmax", "absmin"];

#[derive(Clone, Debug)]
struct Policy {
    /// (step, points), finest first.
    archives: Vec<(i64, i64)>,
    method: &'static str,
    xff: f64,
}

impl Policy {
    fn retention(&self, i: usize) -> i64 {
        self.archives[i].0 * self.archives[i].1
    }

    fn max_retention(&self) -> i64 {
        self.retention(self.archives.len() - 1)
    }

    /// whisper: the finest archive whose retention covers `age`.
    fn archive_for(&self, age: i64) -> Option<usize> {
        (0..self.archives.len()).find(|&i| self.retention(i) >= age)
    }

    /// The ages a point may have to land in each archive away from its edges
    /// (see the module comment); a range may be empty (`lo > hi`).
    fn safe_ages(&self) -> Vec<(i64, i64)> {
        let n = self.archives.len();
        (0..n)
            .map(|i| {
                let lo = if i == 0 { 0 } else { self.retention(i - 1) + self.archives[i].0 };
                let hi =
                    (i + 1..n).map(|j| self.retention(j - 1) - self.archives[j].0).fold(self.retention(i) - self.archives[i].0, i64::min);
                (lo, hi)
            })
            .collect()
    }

    /// Safe to flush at this age: inside a safe range, or too old to be kept.
    fn is_safe(&self, age: i64) -> bool {
        age > self.max_retention() || self.safe_ages().iter().any(|&(lo, hi)| (lo..=hi).contains(&age))
    }

    fn store_archives(&self) -> Vec<Archive> {
        self.archives.iter().map(|&(step, points)| Archive { step: step as u32, points: points as u32 }).collect()
    }
}

/// Valid by whisper's rules: steps that divide each other, each archive
/// longer than the finer one and with enough points for one rollup.
fn policy() -> impl Strategy<Value = Policy> {
    (
        prop::sample::select(vec![1i64, 2, 5, 10, 60]),
        0i64..40,
        prop::collection::vec((prop::sample::select(vec![2i64, 3, 4, 5, 6, 10]), 0i64..40), 0..3),
        prop::sample::select(METHODS.to_vec()),
        prop::sample::select(vec![0.0, 0.1, 0.5, 1.0, 0.3, 1.0 / 3.0, 0.75]),
    )
        .prop_map(|(step0, extra0, coarser, method, xff)| {
            let mut steps = vec![(step0, extra0)];
            for (factor, extra) in coarser {
                steps.push((steps.last().expect("one step").0 * factor, extra));
            }
            let mut archives: Vec<(i64, i64)> = Vec::new();
            for (i, &(step, extra)) in steps.iter().enumerate() {
                let for_rollup = steps.get(i + 1).map_or(1, |next| next.0 / step);
                let longer = archives.last().map_or(1, |&(s, p)| s * p / step + 1);
                archives.push((step, for_rollup.max(longer) + extra));
            }
            Policy { archives, method, xff }
        })
}

/// One point to ingest, in terms the run maps onto the current clock.
#[derive(Clone, Debug)]
struct PointSpec {
    series: usize,
    /// 0: too old to keep; 1: an earlier point's timestamp again; else fresh.
    kind: u8,
    archive: usize,
    offset: i64,
    value: f64,
}

#[derive(Clone, Debug)]
enum Op {
    Ingest(Vec<PointSpec>),
    Flush,
    Reopen,
    Compact,
    /// `scale` 0: a few finest steps; 1: up to a third of the longest
    /// retention; 2: half to twice of it.
    Advance {
        scale: u8,
        amount: i64,
    },
    Fetch {
        series: usize,
        from_kind: u8,
        from: i64,
        until_kind: u8,
        until: i64,
    },
}

fn value() -> impl Strategy<Value = f64> {
    // `+ 0.0` turns a -0.0 that shrinking might reach into 0.0.
    prop_oneof![prop::sample::select(vec![0.0, 1.0, -1.0, 2.5, 0.1, 1.0 / 3.0, 1e16, -7.0]), -1e6f64..1e6].prop_map(|v| v + 0.0)
}

fn op() -> impl Strategy<Value = Op> {
    let point = (0usize..2, 0u8..10, 0usize..4, 0i64..100_000, value()).prop_map(|(series, kind, archive, offset, value)| PointSpec {
        series,
        kind,
        archive,
        offset,
        value,
    });
    prop_oneof![
        4 => prop::collection::vec(point, 1..12).prop_map(Op::Ingest),
        2 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
        2 => (0u8..3, 0i64..100_000).prop_map(|(scale, amount)| Op::Advance { scale, amount }),
        4 => (0usize..2, 0u8..4, 0i64..100_000, 0u8..4, 0i64..100_000)
            .prop_map(|(series, from_kind, from, until_kind, until)| Op::Fetch { series, from_kind, from, until_kind, until }),
    ]
}

// ---- the model ----

#[derive(Default)]
struct ModelSeries {
    exists: bool,
    archives: Vec<BTreeMap<i64, f64>>,
    pending: Vec<(i64, f64)>,
}

struct Model {
    policies: [Policy; 2],
    series: [ModelSeries; 2],
}

fn align(ts: i64, step: i64) -> i64 {
    ts - ts.rem_euclid(step)
}

/// whisper's `aggregate` over one window's slots (None = unknown).
fn aggregate(method: &str, slots: &[Option<f64>]) -> f64 {
    let known: Vec<f64> = slots.iter().flatten().copied().collect();
    let sum = |values: &[f64]| values.iter().fold(0.0, |acc, v| acc + v);
    match method {
        "average" => sum(&known) / known.len() as f64,
        "sum" => sum(&known),
        "last" => known[known.len() - 1],
        // Python's max/min keep the first of equal values.
        "max" => known.iter().copied().fold(known[0], |best, v| if v > best { v } else { best }),
        "min" => known.iter().copied().fold(known[0], |best, v| if v < best { v } else { best }),
        "avg_zero" => sum(&slots.iter().map(|v| v.unwrap_or(0.0)).collect::<Vec<_>>()) / slots.len() as f64,
        "absmax" => known.iter().copied().fold(known[0], |best, v| if v.abs() > best.abs() { v } else { best }),
        "absmin" => known.iter().copied().fold(known[0], |best, v| if v.abs() < best.abs() { v } else { best }),
        other => unreachable!("method {other}"),
    }
}

impl Model {
    fn new(policies: [Policy; 2]) -> Model {
        let series = [0, 1].map(|i| ModelSeries { archives: vec![BTreeMap::new(); policies[i].archives.len()], ..ModelSeries::default() });
        Model { policies, series }
    }

    fn ingest(&mut self, s: usize, ts: i64, value: f64, now: i64) {
        let series = &mut self.series[s];
        series.exists = true;
        if now - ts <= self.policies[s].max_retention() {
            series.pending.push((ts, value));
        }
    }

    fn flush(&mut self, now: i64) {
        for s in 0..2 {
            let batch = std::mem::take(&mut self.series[s].pending);
            self.update_many(s, &batch, now);
        }
    }

    fn update_many(&mut self, s: usize, points: &[(i64, f64)], now: i64) {
        let policy = &self.policies[s];
        let n = policy.archives.len();
        // Per archive, aligned timestamp -> value; the later write wins.
        let mut per_archive = vec![BTreeMap::new(); n];
        for &(ts, v) in points {
            if let Some(i) = policy.archive_for(now - ts) {
                per_archive[i].insert(align(ts, policy.archives[i].0), v);
            }
        }
        let series = &mut self.series[s];
        for (i, written) in per_archive.into_iter().enumerate() {
            if written.is_empty() {
                continue;
            }
            series.archives[i].extend(written.iter().map(|(t, v)| (*t, *v)));
            let mut higher = i;
            for lower in i + 1..n {
                let windows: BTreeSet<i64> = written.keys().map(|t| align(*t, policy.archives[lower].0)).collect();
                let mut any = false;
                for start in windows {
                    any |= propagate(policy, &mut series.archives, higher, lower, start);
                }
                if !any {
                    break;
                }
                higher = lower;
            }
        }
    }

    fn fetch(&self, s: usize, from: i64, until: i64, now: i64) -> Option<Fetched> {
        let (policy, series) = (&self.policies[s], &self.series[s]);
        if !series.exists {
            return None;
        }
        let oldest = now - policy.max_retention();
        if from > now || until < oldest {
            return None;
        }
        let (from, until) = (from.max(oldest), until.min(now));
        let i = policy.archive_for(now - from).expect("clamped to the longest retention");
        let step = policy.archives[i].0;
        let start = align(from, step) + step;
        let mut end = align(until, step) + step;
        if start == end {
            end += step;
        }
        let mut values: Vec<Option<f64>> = (start..end).step_by(step as usize).map(|t| series.archives[i].get(&t).copied()).collect();
        for &(ts, v) in &series.pending {
            let t = align(ts, step);
            if policy.archive_for(now - ts) == Some(i) && (start..end).contains(&t) {
                values[((t - start) / step) as usize] = Some(v);
            }
        }
        Some(Fetched { start, step, values })
    }
}

/// whisper's `__propagate`: the `lower` window at `start` from the `higher`
/// archive's slots, written only with enough of them known.
fn propagate(policy: &Policy, archives: &mut [BTreeMap<i64, f64>], higher: usize, lower: usize, start: i64) -> bool {
    let step = policy.archives[higher].0;
    let slots: Vec<Option<f64>> =
        (0..policy.archives[lower].0 / step).map(|k| archives[higher].get(&(start + k * step)).copied()).collect();
    let known = slots.iter().flatten().count();
    // The header keeps xFilesFactor as a 32-bit float.
    if known == 0 || (known as f64 / slots.len() as f64) < f64::from(policy.xff as f32) {
        return false;
    }
    archives[lower].insert(start, aggregate(policy.method, &slots));
    true
}

// ---- running ops on the store and the model ----

struct Run {
    dir: tempfile::TempDir,
    store: Option<Store>,
    model: Model,
    now: i64,
    /// Every earlier point's timestamp per series, for rewrites.
    written: [Vec<i64>; 2],
    /// The concrete operations so far, printed when a fetch disagrees.
    trace: Vec<String>,
}

fn rules(policies: &[Policy; 2]) -> Rules {
    let re = |p: &str| Regex::new(p).expect("regex");
    let method = |p: &Policy| Method::parse(p.method).expect("a whisper method");
    Rules::new(
        vec![(re(r"^model\.a$"), policies[0].store_archives()), (re(".*"), policies[1].store_archives())],
        vec![(re(r"^model\.a$"), method(&policies[0]), policies[0].xff), (re(".*"), method(&policies[1]), policies[1].xff)],
    )
}

fn open(dir: &Path, policies: &[Policy; 2]) -> Store {
    let tuning = Tuning::default();
    Store::open(dir, rules(policies), &tuning, &Registry::new()).expect("open store")
}

impl Run {
    fn new(policies: [Policy; 2]) -> Run {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Some(open(dir.path(), &policies));
        let trace = vec![format!("policies {policies:?}")];
        Run { dir, store, model: Model::new(policies), now: T0 + 7, written: [Vec::new(), Vec::new()], trace }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().expect("the store is open")
    }

    fn apply(&mut self, op: &Op) -> Result<(), String> {
        match op {
            Op::Ingest(specs) => self.ingest(specs),
            Op::Flush => {
                self.trace.push(format!("flush now={}", self.now));
                self.store().flush(self.now as u32).expect("flush");
                self.model.flush(self.now);
            }
            Op::Reopen => {
                self.trace.push(format!("reopen now={}", self.now));
                self.store().flush(self.now as u32).expect("flush");
                self.model.flush(self.now);
                drop(self.store.take());
                self.store = Some(open(self.dir.path(), &self.model.policies));
            }
            Op::Compact => {
                self.trace.push("compact".into());
                self.store().compact().expect("compact");
            }
            Op::Advance { scale, amount } => self.advance(*scale, *amount),
            Op::Fetch { series, from_kind, from, until_kind, until } => return self.fetch(*series, *from_kind, *from, *until_kind, *until),
        }
        Ok(())
    }

    fn ingest(&mut self, specs: &[PointSpec]) {
        let mut points: Vec<(usize, i64, f64)> = Vec::new();
        for spec in specs {
            let policy = &self.model.policies[spec.series];
            let rewrite = match self.written[spec.series].as_slice() {
                [] => None,
                earlier => Some(earlier[spec.offset as usize % earlier.len()]),
            };
            let ts = match (spec.kind, rewrite) {
                (0, _) => self.now - policy.max_retention() - 1 - spec.offset % 100,
                (1, Some(ts)) if policy.is_safe(self.now - ts) => ts,
                _ => {
                    let ranges = policy.safe_ages();
                    let usable: Vec<(i64, i64)> = ranges.into_iter().filter(|(lo, hi)| lo <= hi).collect();
                    let Some(&(lo, hi)) = usable.get(spec.archive % usable.len().max(1)) else { continue };
                    self.now - lo - spec.offset % (hi - lo + 1)
                }
            };
            points.push((spec.series, ts, spec.value));
        }
        self.ingest_points(&points);
    }

    /// Ingests (series, timestamp, value) into the store and the model.
    fn ingest_points(&mut self, points: &[(usize, i64, f64)]) {
        self.trace.push(format!("ingest now={} {points:?}", self.now));
        let incoming: Vec<Incoming> = points.iter().map(|&(s, ts, value)| Incoming { name: SERIES[s], ts, value }).collect();
        self.store().ingest(&incoming, self.now as u32).expect("ingest");
        for &(s, ts, value) in points {
            self.model.ingest(s, ts, value, self.now);
            self.written[s].push(ts);
        }
    }

    /// Moves the clock by `amount` scaled to the policies, or less: never so
    /// far that a point waiting for a flush ages into an edge.
    fn advance(&mut self, scale: u8, amount: i64) {
        let longest = self.model.policies.iter().map(Policy::max_retention).max().expect("two policies");
        let finest = self.model.policies.iter().map(|p| p.archives[0].0).min().expect("two policies");
        let wanted = match scale {
            0 => amount % (3 * finest + 1),
            1 => amount % (longest / 3 + 1),
            _ => longest / 2 + amount % (3 * longest / 2 + 1),
        };
        let pending: Vec<(usize, i64)> = (0..2).flat_map(|s| self.model.series[s].pending.iter().map(move |&(ts, _)| (s, ts))).collect();
        let safe = |d: i64| pending.iter().all(|&(s, ts)| self.model.policies[s].is_safe(self.now + d - ts));
        // The safe advances are a union of ranges; the largest one up to `wanted`
        // is `wanted` itself or the upper end of a range for some point.
        let mut candidates = vec![wanted, 0];
        for &(s, ts) in &pending {
            let age = self.now - ts;
            candidates.extend(self.model.policies[s].safe_ages().iter().map(|&(_, hi)| hi - age).filter(|d| (0..wanted).contains(d)));
        }
        let d = candidates.into_iter().filter(|&d| safe(d)).max().expect("0 is safe: pending points are");
        self.now += d;
        self.trace.push(format!("advance {d} -> now={}", self.now));
    }

    fn fetch(&mut self, s: usize, from_kind: u8, from: i64, until_kind: u8, until: i64) -> Result<(), String> {
        let policy = &self.model.policies[s];
        let n = policy.archives.len();
        let longest = policy.max_retention();
        let from = match from_kind {
            0 => self.now - policy.retention(from as usize % n) + from % 3 - 1,
            1 => self.now - from % (longest + 50),
            2 => self.now - from % 4,
            _ => self.now - longest - from % 100,
        };
        let until = match until_kind {
            0 => self.now,
            1 => self.now + until % 100,
            2 => from,
            _ => from + until % longest,
        }
        .max(from);
        self.check_fetch(s, from, until).map(drop)
    }

    /// Fetches from the store and the model; the model's answer if they agree.
    fn check_fetch(&mut self, s: usize, from: i64, until: i64) -> Result<Option<Fetched>, String> {
        let got = self.store().fetch(SERIES[s], from, until, self.now as u32).expect("fetch");
        let want = self.model.fetch(s, from, until, self.now);
        self.trace.push(format!("fetch {} from={from} until={until} now={}", SERIES[s], self.now));
        if !same(&got, &want) {
            return Err(format!(
                "the store disagrees with the model\n  store: {got:?}\n  model: {want:?}\nafter:\n  {}",
                self.trace.join("\n  ")
            ));
        }
        Ok(want)
    }
}

fn same(a: &Option<Fetched>, b: &Option<Fetched>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            (a.start, a.step, a.values.len()) == (b.start, b.step, b.values.len())
                && a.values.iter().zip(&b.values).all(|(x, y)| x.map(f64::to_bits) == y.map(f64::to_bits))
        }
        _ => false,
    }
}

#[test]
fn the_store_matches_the_model_across_reopens() {
    // 64 cases keep this at a few seconds; every reopen is a RocksDB open.
    // No persistence file: a failure prints its concrete operations instead.
    let config = Config { cases: 64, failure_persistence: None, max_shrink_iters: 2_000, ..Config::default() };
    let strategy = ((policy(), policy()), prop::collection::vec(op(), 1..40));
    TestRunner::new(config)
        .run(&strategy, |((a, b), ops)| {
            let mut run = Run::new([a, b]);
            let fail = |e: String| TestCaseError::fail(e);
            for op in &ops {
                run.apply(op).map_err(fail)?;
            }
            // Everything flushed and reopened reads back the same at the end.
            run.apply(&Op::Reopen).map_err(fail)?;
            for s in 0..2 {
                for from_kind in 0..4 {
                    run.apply(&Op::Fetch { series: s, from_kind, from: 0, until_kind: 0, until: 0 }).map_err(fail)?;
                }
            }
            Ok(())
        })
        .expect("the store matches the model");
}

#[test]
fn a_rollup_after_reopen_reads_the_stored_slots_of_every_window_it_touches() {
    // 1 s x 14, 3 s x 5, average. Before the reopen T0+8 is stored; after it
    // one flush touches [T0+3, T0+6) first, then [T0+6, T0+9), whose stored
    // slot T0+8 must count: (3 + 1) / 2, not 3.
    let policy = Policy { archives: vec![(1, 14), (3, 5)], method: "average", xff: 0.0 };
    let mut run = Run::new([policy.clone(), policy]);
    run.now = T0 + 10;
    run.ingest_points(&[(0, T0 + 8, 1.0)]);
    run.apply(&Op::Reopen).expect("no fetch");
    run.ingest_points(&[(0, T0 + 3, 5.0), (0, T0 + 7, 3.0)]);
    run.apply(&Op::Flush).expect("no fetch");
    let got = run.check_fetch(0, T0 - 5, T0 + 10).unwrap_or_else(|e| panic!("{e}")).expect("a series");
    assert_eq!((got.step, got.values[((T0 + 6 - got.start) / 3) as usize]), (3, Some(2.0)));
}
