//! The render path's formatting cost, without HTTP: `cargo bench --bench render_json`.
//!
//! A 24 h series at 10 s (8,640 points), as `graphite_peers.py` loads it
//! (two-decimal values) and as an average gives it (full 17-digit values):
//! Python's float repr alone, then graphite-web's JSON for the series
//! (`render::json`, which hands a long series' second half to the spare
//! thread when it is idle). Best of 2,000 passes each; no assertions.

use std::hint::black_box;
use std::time::Instant;

use instantops::graphite::pyfloat::{Repr, repr_into};
use instantops::graphite::render;
use instantops::graphite::series::Series;

const POINTS: usize = 8640;
const PASSES: usize = 2000;

fn best_ns_per_point(mut pass: impl FnMut() -> usize) -> f64 {
    let mut best = f64::MAX;
    let mut sink = 0;
    for _ in 0..PASSES {
        let t = Instant::now();
        sink += pass();
        best = best.min(t.elapsed().as_secs_f64());
    }
    black_box(sink);
    best * 1e9 / POINTS as f64
}

fn main() {
    let short: Vec<f64> = (0..POINTS).map(|i| (5000.0 + 4000.0 * ((i * 7 + 42 * 13) % 97) as f64 / 97.0).round() / 100.0).collect();
    let long: Vec<f64> = (0..POINTS).map(|i| 50.0 + 40.0 * ((i * 7 + 42 * 13) % 97) as f64 / 97.0 / 3.0).collect();
    for (shape, values) in [("two decimals", &short), ("17 digits", &long)] {
        let repr = best_ns_per_point(|| {
            let mut buf = [0u8; Repr::CAP];
            values.iter().map(|&v| repr_into(&mut buf, black_box(v)) + usize::from(buf[1])).sum()
        });
        let series = Series::new(
            "render.s42",
            1_764_000_000,
            1_764_000_000 + 10 * POINTS as i64,
            10,
            values.iter().map(|&v| Some(v)).collect(),
            0.0,
        );
        let json = best_ns_per_point(|| render::json(&mut [series.clone()], None, false, false).len());
        println!("{shape:>12}: repr {repr:.1} ns/value, render::json {json:.1} ns/point ({:.0} us a series)", json * POINTS as f64 / 1e3);
    }
}
