//! Differential tests of the series store against real whisper (compat-spec
//! 3.5, 3.6): the same writes and reads go to a whisper file, through Debian's
//! python3-whisper and `tests/oracle/whisper_oracle.py`, and to a fresh
//! `Store`; every fetch must agree on start, step, length and each value's
//! bits. One `ingest` + `flush` at `now` is one `whisper.update_many(path,
//! points, now=now)`.
//!
//! Named cases pin the edge cases of compat-spec 3.6 and each disagreement
//! found so far. Seeded random scenarios cover the rest: random valid archive
//! lists, all eight methods, xff values that do and do not survive the
//! header's 32-bit float, in-order and out-of-order batches, rewrites of
//! earlier points, fetches at archive boundaries and at random. One random
//! test keeps points away from the archives' retention edges, where whisper's
//! ring (an archive of P slots accepts P+1 aligned intervals) and its write
//! order (finest archive first) show; the other goes to the edges and adds
//! -0.0 values; its two known divergences are listed in `KNOWN_DIVERGENT` and
//! must keep diverging until fixed. A failing scenario is printed as the JSON
//! the oracle reads, so it replays with `/usr/bin/python3
//! tests/oracle/whisper_oracle.py < scenario.json`.
//!
//! Within one batch no two points share an aligned timestamp: whisper then
//! keeps the one with the latest raw timestamp, the store the last one to
//! arrive (its documented semantics). Across batches the later batch wins in
//! both, and that is tested. No point is in the future: the store keeps at most
//! 10 minutes of future (an instantops decision), whisper's batch path all.

use std::collections::HashSet;
use std::io::Write;
use std::process::{Command, Stdio};

use instantops::splitmix::SplitMix as Rng;
use instantops::telemetry::Registry;
use instantops::tsdb::schema::{Archive, Method, Rules};
use instantops::tsdb::{Fetched, Incoming, Store, Tuning};
use regex::Regex;
use serde::Serialize;

use crate::harness::repo_path;

/// A multiple of 3600, so every step used below aligns on it. It lies in
/// 2033: the store's compaction filter expires chunks by the wall clock, and
/// data "older" than today could vanish under a test that reopens or compacts.
const N: i64 = 2_000_001_600;

const SERIES: &str = "whisper.diff";

#[derive(Clone, Debug, Serialize)]
struct Scenario {
    /// What the scenario pins, or its seed; not read by the oracle.
    name: String,
    archives: Vec<(u32, u32)>,
    xff: f64,
    method: &'static str,
    ops: Vec<Op>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
enum Op {
    Update { update: Vec<(i64, f64)>, now: u32 },
    Fetch { fetch: (i64, i64), now: u32 },
}

impl Scenario {
    fn new(name: &str, archives: &[(u32, u32)], method: &'static str, xff: f64) -> Scenario {
        Scenario { name: name.into(), archives: archives.to_vec(), xff, method, ops: Vec::new() }
    }

    fn update(mut self, now: i64, points: &[(i64, f64)]) -> Scenario {
        self.ops.push(Op::Update { update: points.to_vec(), now: now as u32 });
        self
    }

    fn fetch(mut self, now: i64, from: i64, until: i64) -> Scenario {
        self.ops.push(Op::Fetch { fetch: (from, until), now: now as u32 });
        self
    }

    fn json(&self) -> String {
        serde_json::to_string(self).expect("a scenario serializes")
    }

    fn rules(&self) -> Rules {
        let archives = self.archives.iter().map(|&(step, points)| Archive { step, points }).collect();
        let method = Method::parse(self.method).expect("a whisper method");
        Rules::new(vec![(Regex::new(".*").expect("regex"), archives)], vec![(Regex::new(".*").expect("regex"), method, self.xff)])
    }
}

/// Runs the scenarios' operations on a fresh store each (under `name`, with
/// `rules`), returning every fetch's result in order.
fn run_store(scenario: &Scenario, name: &str, rules: Rules) -> Vec<Option<Fetched>> {
    let dir = tempfile::tempdir().expect("temp dir");
    let tuning = Tuning::default();
    let store = Store::open(dir.path(), rules, &tuning, &Registry::new()).expect("open store");
    let mut out = Vec::new();
    for op in &scenario.ops {
        match op {
            Op::Update { update, now } => {
                let points: Vec<Incoming> = update.iter().map(|&(ts, value)| Incoming { name, ts, value }).collect();
                store.ingest(&points, *now).expect("ingest");
                store.flush(*now).expect("flush");
            }
            Op::Fetch { fetch: (from, until), now } => out.push(store.fetch(name, *from, *until, *now).expect("fetch")),
        }
    }
    out
}

/// One oracle run for all scenarios: their fetch results, in order.
fn run_whisper(scenarios: &[Scenario]) -> Vec<Vec<Option<Fetched>>> {
    let script = repo_path("tests/oracle/whisper_oracle.py");
    let mut child = Command::new("/usr/bin/python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run /usr/bin/python3 (Debian's, with python3-whisper: tests/run installs it)");
    let input = serde_json::to_vec(scenarios).expect("scenarios serialize");
    // The oracle reads all of stdin before it writes, so this cannot deadlock.
    child.stdin.take().expect("stdin").write_all(&input).expect("write scenarios");
    let output = child.wait_with_output().expect("oracle output");
    let stdout = String::from_utf8(output.stdout).expect("utf-8 output");
    assert!(output.status.success(), "whisper oracle failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    let mut lines = stdout.lines();
    scenarios
        .iter()
        .map(|s| {
            let fetches = s.ops.iter().filter(|op| matches!(op, Op::Fetch { .. })).count();
            (0..fetches).map(|_| parse_fetch(lines.next().expect("one line per fetch"))).collect()
        })
        .collect()
}

/// Parses the oracle's `[[start, end, step], [v, null, ...]]` or `null`. By
/// hand, not with serde_json, whose default float parsing may be 1 ulp off.
fn parse_fetch(line: &str) -> Option<Fetched> {
    if line == "null" {
        return None;
    }
    let inner = line.strip_prefix("[[").and_then(|l| l.strip_suffix("]]")).unwrap_or_else(|| panic!("oracle line {line:?}"));
    let (head, values) = inner.split_once("], [").unwrap_or_else(|| panic!("oracle line {line:?}"));
    let head: Vec<i64> = head.split(", ").map(|n| n.parse().expect("integer")).collect();
    let values: Vec<Option<f64>> = if values.is_empty() {
        Vec::new()
    } else {
        values.split(", ").map(|v| if v == "null" { None } else { Some(v.parse().expect("float")) }).collect()
    };
    let (start, end, step) = (head[0], head[1], head[2]);
    assert_eq!(end, start + step * values.len() as i64, "oracle line {line:?}");
    Some(Fetched { start, step, values })
}

fn same(a: &Option<Fetched>, b: &Option<Fetched>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a.start == b.start
                && a.step == b.step
                && a.values.len() == b.values.len()
                && a.values.iter().zip(&b.values).all(|(x, y)| x.map(f64::to_bits) == y.map(f64::to_bits))
        }
        _ => false,
    }
}

fn show(f: &Option<Fetched>) -> String {
    match f {
        None => "None".into(),
        Some(f) => format!("start {} step {} values {:?}", f.start, f.step, f.values),
    }
}

/// The first fetch where the store and whisper disagree, described with the
/// scenario to replay it.
fn disagreement(scenario: &Scenario, whisper: &[Option<Fetched>], store: &[Option<Fetched>]) -> Option<String> {
    let i = whisper.iter().zip(store).position(|(w, s)| !same(w, s))?;
    let (mut seen, mut op) = (0, 0);
    for (j, o) in scenario.ops.iter().enumerate() {
        if matches!(o, Op::Fetch { .. }) {
            if seen == i {
                op = j;
                break;
            }
            seen += 1;
        }
    }
    Some(format!(
        "scenario {}: fetch #{i} (op #{op}) differs\n  whisper: {}\n  store:   {}\n  replay:  {}",
        scenario.name,
        show(&whisper[i]),
        show(&store[i]),
        scenario.json()
    ))
}

/// Runs every scenario on both sides and fails listing each disagreement.
fn check_all(scenarios: &[Scenario]) {
    let whisper = run_whisper(scenarios);
    let store: Vec<Vec<Option<Fetched>>> = std::thread::scope(|scope| {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).min(8);
        let chunk = scenarios.len().div_ceil(threads).max(1);
        let handles: Vec<_> = scenarios
            .chunks(chunk)
            .map(|part| scope.spawn(move || part.iter().map(|s| run_store(s, SERIES, s.rules())).collect::<Vec<_>>()))
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("store thread")).collect()
    });
    let mut failures: Vec<(&str, String)> = scenarios
        .iter()
        .zip(whisper.iter().zip(&store))
        .filter_map(|(s, (w, st))| Some((s.name.as_str(), disagreement(s, w, st)?)))
        .collect();
    // The shortest replays first: they are the easiest to read and to shrink.
    failures.sort_by_key(|(_, text)| text.len());
    let names: Vec<&str> = failures.iter().map(|(name, _)| *name).collect();
    let shown: Vec<&str> = failures.iter().take(3).map(|(_, text)| text.as_str()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios disagree with whisper: {}\nthe shortest:\n{}",
        failures.len(),
        scenarios.len(),
        names.join(", "),
        shown.join("\n")
    );
}

/// The value at `ts` of a fetch, for the assertions that say what a case pins.
fn at(fetched: &Option<Fetched>, ts: i64) -> Option<f64> {
    let f = fetched.as_ref().expect("a fetched series");
    f.values[usize::try_from((ts - f.start) / f.step).expect("ts inside the range")]
}

/// Checks a scenario against whisper, then returns whisper's fetches so the
/// case can also assert what it is named after.
fn check_and_fetch(scenario: Scenario) -> Vec<Option<Fetched>> {
    let whisper = run_whisper(std::slice::from_ref(&scenario)).remove(0);
    let store = run_store(&scenario, SERIES, scenario.rules());
    if let Some(failure) = disagreement(&scenario, &whisper, &store) {
        panic!("{failure}");
    }
    whisper
}

// ---- compat-spec 3.6 item 7: xFilesFactor and propagation ----

#[test]
fn rollup_three_of_six_known_writes_the_aggregate() {
    let s = Scenario::new("rollup_three_of_six_known_writes_the_aggregate", &[(10, 60), (60, 60)], "average", 0.5)
        .update(N, &[(N - 120, 1.0), (N - 110, 2.0), (N - 100, 3.0)])
        .fetch(N, N - 1000, N);
    let got = check_and_fetch(s);
    assert_eq!((got[0].as_ref().map(|f| f.step), at(&got[0], N - 120)), (Some(60), Some(2.0)));
}

#[test]
fn rollup_two_of_six_known_writes_nothing_and_stops() {
    // 10 s x 6, 60 s x 6, 360 s x 10. The 360 s window X = [N-360, N) first
    // gets 25.0 from four direct 60 s points, then 99.0 from a direct write
    // (a point older than the 60 s archive). Two of six 10 s slots in
    // [N-60, N) write no 60 s value and must not recompute X, which keeps
    // 99.0; a third slot passes the factor and X is recomputed.
    let s = Scenario::new("rollup_two_of_six_known_writes_nothing_and_stops", &[(10, 6), (60, 6), (360, 10)], "average", 0.5)
        .update(N, &[(N - 360, 10.0), (N - 300, 20.0), (N - 240, 30.0), (N - 180, 40.0)])
        .update(N + 30, &[(N - 340, 99.0)])
        .update(N + 30, &[(N - 30, 1.0), (N - 20, 2.0)])
        .fetch(N + 30, N - 2000, N + 30)
        .fetch(N + 30, N - 300, N + 30)
        .update(N + 30, &[(N - 10, 3.0)])
        .fetch(N + 30, N - 2000, N + 30)
        .fetch(N + 30, N - 300, N + 30);
    let got = check_and_fetch(s);
    assert_eq!((got[0].as_ref().map(|f| f.step), at(&got[0], N - 360)), (Some(360), Some(99.0)));
    assert_eq!((got[1].as_ref().map(|f| f.step), at(&got[1], N - 60)), (Some(60), None));
    assert_eq!(at(&got[3], N - 60), Some(2.0));
    assert_eq!(at(&got[2], N - 360), Some((10.0 + 20.0 + 30.0 + 40.0 + 2.0) / 5.0));
}

#[test]
fn avg_zero_counts_unknown_slots() {
    let s = Scenario::new("avg_zero_counts_unknown_slots", &[(10, 60), (60, 60)], "avg_zero", 0.5)
        .update(N, &[(N - 120, 1.0), (N - 110, 2.0), (N - 100, 3.0)])
        .fetch(N, N - 1000, N);
    let got = check_and_fetch(s);
    assert_eq!(at(&got[0], N - 120), Some(1.0));
}

// ---- compat-spec 3.6 item 8 ----

#[test]
fn last_takes_the_latest_slot_in_time() {
    // The later slot arrives first (its own batch, then inside one batch),
    // and the earlier slot's later write does not make it "last".
    let s = Scenario::new("last_takes_the_latest_slot_in_time", &[(10, 60), (60, 60)], "last", 0.0)
        .update(N, &[(N - 70, 9.0)])
        .update(N, &[(N - 120, 1.0)])
        .update(N, &[(N - 10, 5.0), (N - 60, 6.0)])
        .fetch(N, N - 1000, N);
    let got = check_and_fetch(s);
    assert_eq!((at(&got[0], N - 120), at(&got[0], N - 60)), (Some(9.0), Some(5.0)));
}

// ---- compat-spec 3.6 item 9 ----

#[test]
fn fetch_across_archive_boundary_uses_the_coarser_archive() {
    // 10 s x 60 covers 600 s: from = N-600 still reads it, N-601 reads the
    // 60 s archive for the whole range, recent points only as rollups.
    let s = Scenario::new("fetch_across_archive_boundary_uses_the_coarser_archive", &[(10, 60), (60, 60)], "average", 0.0)
        .update(N, &[(N - 900, 7.0), (N - 60, 1.0), (N - 50, 2.0), (N - 20, 6.0)])
        .fetch(N, N - 600, N)
        .fetch(N, N - 601, N)
        .fetch(N, N - 601, N - 30)
        .fetch(N, N - 3600, N - 600);
    let got = check_and_fetch(s);
    let steps: Vec<Option<i64>> = got.iter().map(|f| f.as_ref().map(|f| f.step)).collect();
    assert_eq!(steps, [Some(10), Some(60), Some(60), Some(60)]);
    assert_eq!((at(&got[0], N - 50), at(&got[1], N - 60), at(&got[3], N - 900)), (Some(2.0), Some(3.0), Some(7.0)));
}

// ---- xFilesFactor is a 32-bit float in whisper's header ----

#[test]
fn xff_point_one_compares_as_a_32_bit_float() {
    // 1 of 10 known is 0.1, less than 0.1f32 (0.10000000149...): no rollup.
    // 2 of 10 pass. In 64 bits 0.1 >= 0.1 would have passed.
    let s = Scenario::new("xff_point_one_compares_as_a_32_bit_float", &[(1, 100), (10, 100)], "sum", 0.1)
        .update(N, &[(N - 50, 5.0)])
        .update(N, &[(N - 25, 1.0), (N - 28, 2.0)])
        .fetch(N, N - 200, N);
    let got = check_and_fetch(s);
    assert_eq!((at(&got[0], N - 50), at(&got[0], N - 30)), (None, Some(3.0)));
}

#[test]
fn xff_one_needs_every_slot() {
    let s = Scenario::new("xff_one_needs_every_slot", &[(10, 60), (60, 60)], "max", 1.0)
        .update(N, &[(N - 120, 1.0), (N - 110, 2.0), (N - 100, 3.0), (N - 90, 4.0), (N - 80, 5.0)])
        .fetch(N, N - 1000, N)
        .update(N, &[(N - 70, -1.0)])
        .fetch(N, N - 1000, N);
    let got = check_and_fetch(s);
    assert_eq!((at(&got[0], N - 120), at(&got[1], N - 120)), (None, Some(5.0)));
}

// ---- compat-spec 3.6 item 10 ----

#[test]
fn ring_wrap_old_slots_read_as_null() {
    // 10 s x 6: six slots written at N, then one more a ring length later in
    // the slot of N-50's point. Whisper's other slots still hold the old
    // intervals, which must read as gaps, not data.
    let s = Scenario::new("ring_wrap_old_slots_read_as_null", &[(10, 6), (60, 10)], "average", 0.5)
        .update(N, &[(N - 50, 1.0), (N - 40, 2.0), (N - 30, 3.0), (N - 20, 4.0), (N - 10, 5.0), (N, 6.0)])
        .update(N + 60, &[(N + 10, 7.0)])
        .fetch(N + 60, N, N + 60)
        .fetch(N + 130, N + 70, N + 130);
    let got = check_and_fetch(s);
    let first = got[0].as_ref().expect("data");
    assert_eq!(first.values, [Some(7.0), None, None, None, None, None]);
    assert!(got[1].as_ref().expect("data").values.iter().all(Option::is_none));
}

// ---- duplicates and the clamps of fetch ----

#[test]
fn a_later_update_of_the_same_slot_wins() {
    let s = Scenario::new("a_later_update_of_the_same_slot_wins", &[(10, 60), (60, 60)], "sum", 0.0)
        .update(N, &[(N - 35, 1.0), (N - 25, 2.0)])
        .update(N, &[(N - 31, 10.0)])
        .update(N + 5, &[(N - 2000, 4.0)])
        .update(N + 5, &[(N - 1990, 8.0)])
        .fetch(N + 5, N - 100, N + 5)
        .fetch(N + 5, N - 3000, N + 5);
    let got = check_and_fetch(s);
    assert_eq!(at(&got[0], N - 40), Some(10.0));
    assert_eq!((at(&got[1], N - 60), at(&got[1], N - 2040)), (Some(12.0), Some(8.0)));
}

#[test]
fn fetch_clamps_to_retention_and_now() {
    let s = Scenario::new("fetch_clamps_to_retention_and_now", &[(10, 60), (60, 60)], "average", 0.5)
        .update(N, &[(N - 3600, 1.0), (N - 3601, 2.0), (N - 10, 3.0)])
        .fetch(N, N - 5000, N + 100)
        .fetch(N, N + 1, N + 100)
        .fetch(N, N - 5000, N - 3601)
        .fetch(N, N - 5000, N - 3600)
        .fetch(N, N - 20, N - 20)
        .fetch(N, N, N)
        .fetch(N, N - 3600, N - 3600);
    let got = check_and_fetch(s);
    assert!(got[1].is_none() && got[2].is_none());
    assert_eq!(got[5].as_ref().map(|f| f.values.len()), Some(1));
}

// ---- whisper's ring and batch order ----

#[test]
fn writing_the_oldest_accepted_slot_erases_the_newest() {
    // 10 s x 6 accepts ages up to 60 s. At now = N+5 that is N-55, aligned to
    // N-60: seven intervals (N-60 ... N) for six ring slots, so N-60 and N
    // share one. Written last, N-60 takes the slot and N reads as a gap.
    let s = Scenario::new("writing_the_oldest_accepted_slot_erases_the_newest", &[(10, 6), (60, 10)], "average", 0.5)
        .update(N + 5, &[(N, 1.0)])
        .update(N + 5, &[(N - 55, 2.0)])
        .fetch(N + 5, N - 50, N + 5);
    let got = check_and_fetch(s);
    assert_eq!(at(&got[0], N), None);
}

#[test]
fn a_rollup_reads_a_ring_slot_that_a_newer_interval_took() {
    // One batch writes N-60 then N into the same slot of 10 s x 6 (see above).
    // The 60 s rollup of [N-60, N) then finds no known slot and writes
    // nothing; the store still knows N-60's value and rolls it up.
    let s = Scenario::new("a_rollup_reads_a_ring_slot_that_a_newer_interval_took", &[(10, 6), (60, 10)], "min", 0.1)
        .update(N + 5, &[(N - 55, -6.0), (N, -11.0)])
        .fetch(N + 5, N - 595, N + 5);
    let got = check_and_fetch(s);
    assert_eq!((at(&got[0], N - 60), at(&got[0], N)), (None, Some(-11.0)));
}

#[test]
fn a_direct_write_to_a_coarser_archive_beats_the_rollup_of_the_same_batch() {
    // At now = N+30, N-20 (age 50) goes to the 10 s archive and N-31 (age 61)
    // straight to the 60 s one, both in the minute [N-60, N). update_many
    // writes the finest archive first and rolls it up, then the older point
    // over that rollup: whisper keeps 5.0, not the rollup 1.0.
    let s = Scenario::new("a_direct_write_to_a_coarser_archive_beats_the_rollup_of_the_same_batch", &[(10, 6), (60, 10)], "average", 0.0)
        .update(N + 30, &[(N - 20, 1.0), (N - 31, 5.0)])
        .fetch(N + 30, N - 570, N + 30);
    let got = check_and_fetch(s);
    assert_eq!(at(&got[0], N - 60), Some(5.0));
}

#[test]
fn signed_zeros_aggregate_as_in_python() {
    // whisper sums with Python's sum(), which starts from the integer 0, so
    // 0 + -0.0 is 0.0; avg_zero maps every falsy value to 0; max and min keep
    // the first of equal values.
    let case = |method: &'static str, values: &[f64]| {
        let points: Vec<(i64, f64)> = values.iter().enumerate().map(|(i, v)| (N - 120 + 10 * i as i64, *v)).collect();
        Scenario::new(&format!("signed_zeros_aggregate_as_in_python {method} {values:?}"), &[(10, 60), (60, 60)], method, 0.0)
            .update(N, &points)
            .fetch(N, N - 1000, N)
    };
    check_all(&[
        case("sum", &[-0.0]),
        case("average", &[-0.0, -0.0]),
        case("avg_zero", &[-0.0]),
        case("max", &[0.0, -0.0]),
        case("max", &[-0.0, 0.0]),
        case("min", &[0.0, -0.0]),
        case("min", &[-0.0, 0.0]),
        case("last", &[0.0, -0.0]),
        case("absmax", &[-0.0, 0.0]),
        case("absmin", &[0.0, -0.0]),
    ]);
}

// ---- compat-spec 3.6 item 6: the store picks the policy, whisper gets it ----

#[test]
fn first_matching_schema_wins_and_patterns_are_unanchored() {
    let re = |p: &str| Regex::new(p).expect("regex");
    let rules = || {
        Rules::new(
            vec![
                (re(r"^stats\."), vec![Archive { step: 10, points: 6 }, Archive { step: 60, points: 10 }]),
                (re("count"), vec![Archive { step: 1, points: 60 }, Archive { step: 5, points: 60 }]),
            ],
            vec![(re(r"^stats\."), Method::Sum, 0.0), (re("count"), Method::Max, 0.5)],
        )
    };
    let ops =
        |s: Scenario| s.update(N, &[(N - 200, 4.0), (N - 50, 1.0), (N - 40, 2.0), (N - 3, 3.0)]).fetch(N, N - 100, N).fetch(N, N - 1000, N);
    let stats = ops(Scenario::new("stats.a.count", &[(10, 6), (60, 10)], "sum", 0.0));
    let count = ops(Scenario::new("a.count.b", &[(1, 60), (5, 60)], "max", 0.5));
    let whisper = run_whisper(&[stats.clone(), count.clone()]);
    for (s, w) in [stats, count].iter().zip(&whisper) {
        let store = run_store(s, &s.name, rules());
        if let Some(failure) = disagreement(s, w, &store) {
            panic!("{failure}");
        }
    }
}

// ---- seeded random scenarios ----

const METHODS: [&str; 8] = ["average", "sum", "last", "max", "min", "avg_zero", "absmax", "absmin"];

/// An archive list valid by whisper's rules: steps that divide each other,
/// each archive longer than the last and with enough points for one rollup.
fn random_archives(rng: &mut Rng) -> Vec<(u32, u32)> {
    let count = rng.range(1, 4) as usize;
    let mut steps = vec![rng.pick(&[1u32, 2, 5, 10, 60])];
    for _ in 1..count {
        let last = *steps.last().expect("one step");
        steps.push(last * rng.pick(&[2u32, 3, 4, 5, 6, 10]));
    }
    let mut archives: Vec<(u32, u32)> = Vec::new();
    for (i, &step) in steps.iter().enumerate() {
        let for_rollup = steps.get(i + 1).map_or(1, |next| next / step);
        let longer = archives.last().map_or(1, |&(s, p)| s * p / step + 1);
        // Small rings, often exactly as small as the rules allow, to wrap a lot.
        let points = for_rollup.max(longer) + if rng.chance(30) { 0 } else { rng.below(40) as u32 };
        archives.push((step, points));
    }
    archives
}

fn random_value(rng: &mut Rng, edges: bool) -> f64 {
    match rng.below(4) {
        // -0.0 only at the edges: whisper's sums start from the integer 0.
        0 if edges && rng.chance(30) => -0.0,
        0 => rng.pick(&[0.0, 1.0, -1.0, 2.5, -3.25, 100.0, 0.1, 1.0 / 3.0, 1e16, -7.0, 42.0, 1e-300]),
        1 => rng.range(-20, 20) as f64,
        // Any finite double with a reasonable exponent: sums and means round.
        _ => (rng.next() as f64 / u64::MAX as f64 - 0.5) * 10f64.powi(rng.range(-3, 6) as i32),
    }
}

/// The ages a point may have to land in each archive. With `edges`, every
/// age the archive accepts. Without, only ages where whisper's ring and its
/// batch order cannot show (the module comment; the named cases pin them): at
/// least one own step past the finer archive's retention, and far enough
/// inside every retention that each rollup window holding the point lies
/// inside the retention of the archive it is read from.
fn age_ranges(archives: &[(u32, u32)], edges: bool) -> Vec<(i64, i64)> {
    let steps: Vec<i64> = archives.iter().map(|&(s, _)| i64::from(s)).collect();
    let retentions: Vec<i64> = archives.iter().map(|&(s, p)| i64::from(s) * i64::from(p)).collect();
    (0..archives.len())
        .map(|i| {
            let finer = if i == 0 { None } else { Some(retentions[i - 1]) };
            if edges {
                return (finer.map_or(0, |r| r + 1), retentions[i]);
            }
            let lo = finer.map_or(0, |r| r + steps[i]);
            let hi = (i + 1..archives.len()).map(|j| retentions[j - 1] - steps[j]).fold(retentions[i] - steps[i], i64::min);
            (lo, hi)
        })
        .collect()
}

fn random_scenario(seed: u64, edges: bool) -> Scenario {
    let mut rng = Rng(seed);
    let archives = random_archives(&mut rng);
    let method = rng.pick(&METHODS);
    let xff = match rng.below(6) {
        0 => 0.0,
        1 => 0.1,
        2 => 0.5,
        3 => 1.0,
        4 => rng.pick(&[1.0 / 3.0, 0.2, 0.7, 0.9, 0.25]),
        _ => rng.below(1001) as f64 / 1000.0,
    };
    let retentions: Vec<i64> = archives.iter().map(|&(s, p)| i64::from(s) * i64::from(p)).collect();
    let max_retention = *retentions.last().expect("an archive");
    let ages = age_ranges(&archives, edges);
    let mut s = Scenario::new(&format!("seed {seed}{}", if edges { " at the edges" } else { "" }), &archives, method, xff);
    let mut now = N + rng.below(3600) as i64;
    let mut written: Vec<i64> = Vec::new();
    let ops = rng.range(2, 10);
    for i in 0..ops {
        if i > 0 {
            now += match rng.below(6) {
                0 | 1 => 0,
                2 | 3 => rng.range(1, i64::from(archives[0].0) * 3),
                4 => rng.range(1, max_retention / 3),
                _ => rng.range(max_retention / 2, max_retention * 2),
            };
        }
        if i == 0 || rng.chance(60) {
            let batch = random_batch(&mut rng, &archives, &ages, now, &written, edges);
            written.extend(batch.iter().map(|p| p.0));
            s = s.update(now, &batch);
        } else {
            let (from, until) = random_range(&mut rng, &retentions, now);
            s = s.fetch(now, from, until);
        }
    }
    // End with a read of every archive, and of each boundary between them.
    for &r in &retentions {
        s = s.fetch(now, now - r, now);
        s = s.fetch(now, now - r - 1, now - rng.range(0, r / 2));
    }
    s
}

/// 1 to 15 points at ages spread over every archive (and a few too old),
/// in time order or not, never two with one aligned timestamp. Never empty:
/// a store series exists once a point for it arrived, a whisper file at once.
fn random_batch(rng: &mut Rng, archives: &[(u32, u32)], ages: &[(i64, i64)], now: i64, written: &[i64], edges: bool) -> Vec<(i64, f64)> {
    let retentions: Vec<i64> = archives.iter().map(|&(s, p)| i64::from(s) * i64::from(p)).collect();
    let max_retention = *retentions.last().expect("an archive");
    let mut seen = HashSet::new();
    let mut batch = Vec::new();
    while batch.is_empty() {
        for _ in 0..rng.range(1, 15) {
            let (lo, hi) = ages[rng.below(archives.len() as u64) as usize];
            let age = match rng.below(10) {
                0 => max_retention + rng.range(1, 100),
                _ if lo > hi => continue,
                1 => rng.pick(&[lo, hi, lo + 1, hi - 1]).clamp(lo, hi),
                _ => rng.range(lo, hi),
            };
            // Sometimes rewrite an earlier point: a later batch wins.
            let ts = if !written.is_empty() && rng.chance(15) { rng.pick(written) } else { now - age };
            let age = now - ts;
            let Some(archive) = retentions.iter().position(|&r| r >= age) else {
                batch.push((ts, random_value(rng, edges))); // too old for either side
                continue;
            };
            let step = i64::from(archives[archive].0);
            let (lo, hi) = ages[archive];
            if (lo..=hi).contains(&age) && seen.insert((archive, ts - ts.rem_euclid(step))) {
                batch.push((ts, random_value(rng, edges)));
            }
        }
    }
    if rng.chance(50) {
        batch.sort_by_key(|p| p.0);
    }
    batch
}

/// A fetch range around the archive boundaries, the retention limit and now.
fn random_range(rng: &mut Rng, retentions: &[i64], now: i64) -> (i64, i64) {
    let max_retention = *retentions.last().expect("an archive");
    let r = rng.pick(retentions);
    let from = match rng.below(5) {
        0 => now - r + rng.range(-1, 1),
        1 => now - max_retention - rng.range(0, 100),
        2 => now - rng.range(0, 3),
        _ => now - rng.range(0, max_retention + 10),
    };
    let until = match rng.below(4) {
        0 => now,
        1 => now + rng.range(1, 100),
        2 => from,
        _ => from + rng.range(0, max_retention),
    };
    (from, until.max(from))
}

/// How many random scenarios one run checks; each is a whisper file and a store.
const RANDOM_SCENARIOS: u64 = 300;

/// Points away from every retention edge (`age_ranges`), no -0.0.
#[test]
fn random_scenarios_agree_with_whisper() {
    let scenarios: Vec<Scenario> = (1..=RANDOM_SCENARIOS).map(|seed| random_scenario(seed, false)).collect();
    check_all(&scenarios);
}

/// Points at every age an archive accepts, -0.0 among the values.
#[test]
fn random_scenarios_at_the_archive_edges_agree_with_whisper() {
    let (known, rest): (Vec<Scenario>, Vec<Scenario>) = (1..=RANDOM_SCENARIOS)
        .map(|seed| random_scenario(seed, true))
        .partition(|s| KNOWN_DIVERGENT.iter().any(|(name, _)| s.name == *name));
    check_all(&rest);
    // The known divergences still diverge: when the store is fixed, this
    // fails, and the scenario moves back into the checked set.
    let whisper = run_whisper(&known);
    for (scenario, w) in known.iter().zip(&whisper) {
        let store = run_store(scenario, SERIES, scenario.rules());
        assert!(disagreement(scenario, w, &store).is_some(), "{} agrees with whisper now: drop it from KNOWN_DIVERGENT", scenario.name);
    }
}

/// Scenarios the store does not yet reproduce, each with why. Both are rings
/// of 2 and 7 points that wrap on nearly every write: a rollup window the
/// store keeps in memory across flushes still holds a finer slot that a later
/// flush's write to the interval one retention away took in whisper's ring.
/// Real retentions have far longer rings; ARCHITECTURE.md lists this.
const KNOWN_DIVERGENT: [(&str, &str); 2] = [
    ("seed 135 at the edges", "1 s x 7 ring, absmin: stale in-memory rollup slot across flushes"),
    ("seed 232 at the edges", "2 s x 2 ring, absmin: stale in-memory rollup slot across flushes"),
];
