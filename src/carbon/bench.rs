//! `instantops bench carbon`: a real Graphite plaintext load generator. It
//! sends realistic series (2-decimal random-walk gauges, integer counters with
//! occasional resets, noisy 3-decimal timings) over several TCP connections at a
//! target rate, then reports what it sent and the achieved rate. With
//! `--wait-metric`, it also polls a Prometheus endpoint until the receiver has
//! counted every point, which measures ingest rather than send throughput.
//!
//! Timestamps advance one `--interval` per round up to the current time, so a
//! run writes a dense history as a backfill would; later rounds carry the wall
//! clock, as live senders do.
//!
//! With `--replay DIR` it sends real data instead: every `*.csv` under DIR
//! (`timestamp,value` rows, such as the Numenta Anomaly Benchmark's AWS
//! CloudWatch and server metrics), cut into series of `--replay-points`
//! consecutive values, each value sent as the file spells it. The history ends
//! at now, one `--interval` apart, and the run ends when the data does.

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::splitmix::SplitMix;

/// What to send and where.
#[derive(Clone, Debug)]
pub struct Plan {
    pub to: String,
    pub series: u64,
    /// Points per second in total; 0 means as fast as the receiver takes them.
    pub rate: u64,
    pub duration: Duration,
    pub connections: u64,
    pub interval: u64,
    pub prefix: String,
    /// (URL of a Prometheus text endpoint, metric line prefix) to wait on.
    pub wait_metric: Option<(String, String)>,
    /// Real series to send instead of generated ones (see [`load_replay`]).
    pub replay: Option<Arc<Vec<Replayed>>>,
}

/// One replayed series: its name and its values as the source file spells them.
#[derive(Debug)]
pub struct Replayed {
    pub name: String,
    pub values: Vec<String>,
}

/// Reads every `*.csv` under `dir` (sorted by path, so runs send the same
/// load) and cuts each file's values into series of `points` values; the last,
/// shorter piece of a file is a series too. Rows are `...,value`; a header or a
/// row whose last field is not a finite number is skipped.
pub fn load_replay(dir: &Path, points: usize, prefix: &str) -> Result<Vec<Replayed>, String> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in std::fs::read_dir(&d).map_err(|e| format!("cannot read {}: {e}", d.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "csv") {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut out = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        let values: Vec<String> = text
            .lines()
            .filter_map(|row| row.rsplit(',').next().map(str::trim))
            .filter(|v| v.parse::<f64>().is_ok_and(f64::is_finite))
            .map(str::to_string)
            .collect();
        let relative = file.strip_prefix(dir).unwrap_or(file).with_extension("");
        let stem: String =
            relative.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect();
        for (k, piece) in values.chunks(points.max(1)).enumerate() {
            out.push(Replayed { name: format!("{prefix}.replay.{stem}.w{k}"), values: piece.to_vec() });
        }
    }
    if out.is_empty() {
        return Err(format!("no csv rows with numeric values under {}", dir.display()));
    }
    Ok(out)
}

/// What was sent.
#[derive(Debug)]
pub struct Report {
    pub points: u64,
    pub bytes: u64,
    pub send_secs: f64,
    /// Until the receiver counted every point (with `wait_metric`).
    pub ingest_secs: Option<f64>,
}

impl Report {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "sent {} points ({:.1} MB) in {:.2} s: {:.0} points/s",
            self.points,
            self.bytes as f64 / 1e6,
            self.send_secs,
            self.points as f64 / self.send_secs.max(1e-9)
        );
        if let Some(t) = self.ingest_secs {
            s.push_str(&format!("; ingested in {t:.2} s: {:.0} points/s", self.points as f64 / t.max(1e-9)));
        }
        s
    }
}

/// One series' state: its name and how its next value is made.
struct Series {
    name: String,
    kind: Kind,
    value: i64,
}

enum Kind {
    Gauge,
    Counter,
    Timing,
    /// The `index`th replayed series.
    Replay(Arc<Vec<Replayed>>, usize),
}

impl Series {
    /// Appends `name value ts\n` for the point of `round`; false when the
    /// series has no point there (a replayed series that ended).
    fn line(&mut self, rng: &mut SplitMix, round: u64, ts: u64, out: &mut Vec<u8>) -> bool {
        if let Kind::Replay(data, index) = &self.kind
            && usize::try_from(round).map_or(true, |r| r >= data[*index].values.len())
        {
            return false;
        }
        out.extend_from_slice(self.name.as_bytes());
        out.push(b' ');
        match &self.kind {
            // Gauge: a random walk in hundredths (a temperature, a load average).
            Kind::Gauge => {
                self.value += rng.below(11) as i64 - 5;
                let _ = write!(out, "{}.{:02}", self.value.div_euclid(100), self.value.rem_euclid(100));
            }
            // Counter: increases by 0..100, resets now and then (a restart).
            Kind::Counter => {
                self.value = if rng.below(5000) == 0 { 0 } else { self.value + rng.below(100) as i64 };
                let _ = write!(out, "{}", self.value);
            }
            // Timing: noisy milliseconds with 3 decimals.
            Kind::Timing => {
                let v = 50_000 + rng.below(450_000) as i64;
                let _ = write!(out, "{}.{:03}", v / 1000, v % 1000);
            }
            // Checked above: the round is within the series.
            Kind::Replay(data, index) => out.extend_from_slice(data[*index].values[round as usize].as_bytes()),
        }
        let _ = writeln!(out, " {ts}");
        true
    }
}

/// Runs the plan and reports.
pub fn run(plan: &Plan) -> Result<Report, String> {
    let series_count = plan.replay.as_ref().map_or(plan.series, |r| r.len() as u64);
    let connections = plan.connections.clamp(1, series_count.max(1));
    let total = if plan.rate == 0 { u64::MAX } else { plan.rate.saturating_mul(plan.duration.as_secs().max(1)) };
    let mut rounds = if plan.rate == 0 { u64::MAX } else { total.div_ceil(series_count.max(1)) };
    // A backfill that ends at now and starts 15 minutes inside the 6 h of the
    // default finest archive (not at the edge of retention, where every point
    // would also be a whisper ring overwrite). Rounds past it carry the wall
    // clock, as live senders do: time never runs backwards in the load. A
    // replay is all history: its last values are sent as of now.
    let mut history = rounds.min((6 * 3600 - 900) / plan.interval.max(1)).max(1);
    if let Some(replay) = &plan.replay {
        rounds = replay.iter().map(|r| r.values.len() as u64).max().unwrap_or(0);
        history = rounds;
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_err(|e| e.to_string())?.as_secs();
    let base = now - history * plan.interval;
    // The receiver's count before the run, so a reused receiver measures right.
    let baseline = match &plan.wait_metric {
        Some((url, metric)) => crate::telemetry::scrape::metric_sum(url, metric)?,
        None => 0.0,
    };
    let started = Instant::now();
    let deadline = started + plan.duration;
    let mut workers = Vec::new();
    for c in 0..connections {
        let plan = plan.clone();
        workers.push(std::thread::spawn(move || -> Result<(u64, u64), String> {
            let mut stream = TcpStream::connect(&plan.to).map_err(|e| format!("cannot connect to {}: {e}", plan.to))?;
            stream.set_nodelay(false).map_err(|e| e.to_string())?;
            stream.set_write_timeout(Some(crate::loadgen::WRITE_WAIT)).map_err(|e| e.to_string())?;
            let mut rng = SplitMix(0x5EED ^ c);
            let mut series: Vec<Series> = (c..series_count)
                .step_by(connections as usize)
                .map(|i| match &plan.replay {
                    Some(data) => Series { name: data[i as usize].name.clone(), kind: Kind::Replay(data.clone(), i as usize), value: 0 },
                    None => Series {
                        name: format!(
                            "{}.host{:04}.{}.m{}",
                            plan.prefix,
                            i / 100,
                            ["gauge", "counter", "timing"][(i % 3) as usize],
                            i % 100
                        ),
                        kind: match i % 3 {
                            0 => Kind::Gauge,
                            1 => Kind::Counter,
                            _ => Kind::Timing,
                        },
                        value: 2000 + (i % 1000) as i64,
                    },
                })
                .collect();
            let my_rate = plan.rate as f64 / connections as f64;
            let (mut sent, mut bytes) = (0u64, 0u64);
            let mut buf = Vec::with_capacity(128 << 10);
            let begun = Instant::now();
            'rounds: for round in 0..rounds {
                let ts = if round < history { base + round * plan.interval } else { wall_clock() };
                for s in series.iter_mut() {
                    if !s.line(&mut rng, round, ts, &mut buf) {
                        continue;
                    }
                    sent += 1;
                    if buf.len() >= 64 << 10 {
                        crate::loadgen::send(&mut stream, &buf, deadline + crate::loadgen::STALL_GRACE)?;
                        bytes += buf.len() as u64;
                        buf.clear();
                        if Instant::now() >= deadline || (plan.rate > 0 && sent as f64 >= my_rate * plan.duration.as_secs_f64()) {
                            break 'rounds;
                        }
                        if plan.rate > 0 {
                            // Pace: sleep while ahead of schedule.
                            let due = Duration::from_secs_f64(sent as f64 / my_rate);
                            if let Some(ahead) = due.checked_sub(begun.elapsed()) {
                                std::thread::sleep(ahead);
                            }
                        }
                    }
                }
            }
            crate::loadgen::send(&mut stream, &buf, deadline + crate::loadgen::STALL_GRACE)?;
            bytes += buf.len() as u64;
            stream.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
            Ok((sent, bytes))
        }));
    }
    let (mut points, mut bytes) = (0, 0);
    for w in workers {
        let (p, b) = w.join().map_err(|_| "a sender thread panicked".to_string())??;
        points += p;
        bytes += b;
    }
    let send_secs = started.elapsed().as_secs_f64();
    let ingest_secs = match &plan.wait_metric {
        Some((url, metric)) => Some(crate::telemetry::scrape::wait_for(url, metric, baseline + points as f64, started)?),
        None => None,
    };
    Ok(Report { points, bytes, send_secs, ingest_secs })
}

fn wall_clock() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
