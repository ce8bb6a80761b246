//! One timer's samples for one flush interval, and the fields Etsy statsd
//! derives from them (compat-spec 1.5): exactly, from every sample, up to a
//! bound on the samples kept; past it, from a bounded-error histogram.
//!
//! Exact mode reproduces Etsy's `process_metrics.js` arithmetic step by step
//! (sorted values, running sums for the percentile sums, a two-pass standard
//! deviation), so its numbers are Etsy's bit for bit. When a timer has more
//! samples than it may keep, they move into a [`Sketch`]: logarithmic buckets
//! of relative width 2 * [`ACCURACY`]. Then `count`, `count_ps`, `sum`,
//! `sum_squares`, `mean`, `upper` and `lower` stay exact, `std` is computed from
//! the exact sums (one pass, so it may differ from the two-pass value in the
//! last digits), and every order statistic (`median`, `upper_P`, `lower_P`)
//! and the percentile sums (`sum_P`, `sum_squares_P`, `mean_P`) are within
//! [`ACCURACY`] (0.1 %) relative of the exact value. `count_P` stays exact.
//! Histogram bins count from the sketch's buckets, so a value within 0.1 % of
//! a bin bound may land in the neighbouring bin.

use std::collections::BTreeMap;

/// Relative error bound of the sketch's order statistics.
pub const ACCURACY: f64 = 0.001;
/// Buckets one sketch keeps: with 0.1 % accuracy, 4096 buckets span values
/// from 1 to about 3.6 million times it (a 1 µs to 3.6 s range of timings
/// at full accuracy). Past it the lowest buckets are merged, which keeps the
/// high percentiles, the ones people alert on, exact to 0.1 %.
const MAX_BUCKETS: usize = 4096;

/// One timer's interval.
#[derive(Debug, Default, Clone)]
pub struct Timer {
    /// Samples, while there are no more than the bound allows.
    exact: Vec<f64>,
    /// Everything, once the bound was passed.
    sketch: Option<Sketch>,
    /// Etsy's `timer_counters`: samples divided by their sample rates.
    pub count: f64,
}

/// The derived fields of one flush, in Etsy's output order.
pub type Fields = Vec<(String, f64)>;

impl Timer {
    /// Adds a sample. `may_keep` says whether one more exact sample fits the
    /// timer's and the pool's bounds; when it does not, the timer switches
    /// to its sketch for the rest of the interval. Returns the exact samples
    /// released to the pool (when it switched).
    pub fn add(&mut self, value: f64, rate: f64, may_keep: bool) -> usize {
        self.count += 1.0 / rate;
        if let Some(sketch) = &mut self.sketch {
            sketch.add(value);
            return 0;
        }
        if may_keep {
            self.exact.push(value);
            return 0;
        }
        let mut sketch = Sketch::default();
        for &v in &self.exact {
            sketch.add(v);
        }
        sketch.add(value);
        self.sketch = Some(sketch);
        let released = self.exact.len();
        self.exact = Vec::new();
        released
    }

    /// Samples held exactly (counted against the pool).
    pub fn exact_len(&self) -> usize {
        self.exact.len()
    }

    pub fn samples(&self) -> usize {
        self.sketch.as_ref().map_or(self.exact.len(), |s| s.n as usize)
    }

    /// Whether its order statistics are approximate this interval.
    pub fn approximate(&self) -> bool {
        self.sketch.is_some()
    }

    /// The exact samples (for the admin console's `timers` dump).
    pub fn exact_samples(&self) -> &[f64] {
        &self.exact
    }

    /// Empties it for the next interval.
    pub fn reset(&mut self) {
        self.exact.clear();
        self.sketch = None;
        self.count = 0.0;
    }

    /// Etsy's fields for this interval: `thresholds` are the percentiles,
    /// `interval_s` the flush interval, `bins` the histogram bounds that apply
    /// (f64::INFINITY for `inf`) with their names.
    pub fn fields(&mut self, thresholds: &[(f64, String)], interval_s: f64, bins: &[(f64, String)]) -> Fields {
        let mut out = Fields::new();
        if self.samples() == 0 {
            out.push(("count_ps".into(), 0.0));
            out.push(("count".into(), 0.0));
            return out;
        }
        match &self.sketch {
            None => {
                self.exact.sort_by(f64::total_cmp);
                exact_fields(&self.exact, self.count, thresholds, interval_s, bins, &mut out);
            }
            Some(sketch) => sketch_fields(sketch, self.count, thresholds, interval_s, bins, &mut out),
        }
        out
    }
}

/// `process_metrics.js` for one timer, on sorted values.
fn exact_fields(values: &[f64], counter: f64, thresholds: &[(f64, String)], interval_s: f64, bins: &[(f64, String)], out: &mut Fields) {
    let count = values.len();
    let (min, max) = (values[0], values[count - 1]);
    let mut cumulative = Vec::with_capacity(count);
    let mut cumulative_squares = Vec::with_capacity(count);
    cumulative.push(min);
    cumulative_squares.push(min * min);
    for i in 1..count {
        cumulative.push(values[i] + cumulative[i - 1]);
        cumulative_squares.push(values[i] * values[i] + cumulative_squares[i - 1]);
    }
    let (mut sum, mut sum_squares, mut mean, mut boundary) = (min, min * min, min, max);
    for (pct, name) in thresholds {
        let mut in_threshold = count;
        if count > 1 {
            in_threshold = js_round(pct.abs() / 100.0 * count as f64) as usize;
            if in_threshold == 0 {
                continue;
            }
            if *pct > 0.0 {
                boundary = values[in_threshold - 1];
                sum = cumulative[in_threshold - 1];
                sum_squares = cumulative_squares[in_threshold - 1];
            } else {
                boundary = values[count - in_threshold];
                // The whole list's running sum less the part below the top k
                // (Etsy indexes element -1 as undefined, which gives NaN, when
                // the top k is everything).
                let below = |c: &[f64]| if count > in_threshold { c[count - in_threshold - 1] } else { f64::NAN };
                sum = cumulative[count - 1] - below(&cumulative);
                sum_squares = cumulative_squares[count - 1] - below(&cumulative_squares);
            }
            mean = sum / in_threshold as f64;
        }
        push_percentile(out, *pct, name, in_threshold as f64, mean, boundary, sum, sum_squares);
    }
    let sum = cumulative[count - 1];
    let sum_squares = cumulative_squares[count - 1];
    let mean = sum / count as f64;
    let mut sum_of_diffs = 0.0;
    for v in values {
        sum_of_diffs += (v - mean) * (v - mean);
    }
    let mid = count / 2;
    let median = if count % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 };
    push_totals(out, (sum_of_diffs / count as f64).sqrt(), max, min, counter, interval_s, sum, sum_squares, mean, median);
    // Bins count the sorted values below each bound in turn; values past the
    // last finite bound without `inf` are not counted.
    let mut i = 0;
    for (bound, name) in bins {
        let mut freq = 0.0;
        while i < count && (bound.is_infinite() || values[i] < *bound) {
            freq += 1.0;
            i += 1;
        }
        out.push((format!("histogram.{name}"), freq));
    }
}

#[allow(clippy::too_many_arguments)]
fn push_percentile(out: &mut Fields, pct: f64, name: &str, k: f64, mean: f64, boundary: f64, sum: f64, sum_squares: f64) {
    out.push((format!("count_{name}"), k));
    out.push((format!("mean_{name}"), mean));
    out.push((format!("{}_{name}", if pct > 0.0 { "upper" } else { "lower" }), boundary));
    out.push((format!("sum_{name}"), sum));
    out.push((format!("sum_squares_{name}"), sum_squares));
}

#[allow(clippy::too_many_arguments)]
fn push_totals(
    out: &mut Fields,
    std: f64,
    max: f64,
    min: f64,
    counter: f64,
    interval_s: f64,
    sum: f64,
    sum_squares: f64,
    mean: f64,
    median: f64,
) {
    out.push(("std".into(), std));
    out.push(("upper".into(), max));
    out.push(("lower".into(), min));
    out.push(("count".into(), counter));
    out.push(("count_ps".into(), counter / interval_s));
    out.push(("sum".into(), sum));
    out.push(("sum_squares".into(), sum_squares));
    out.push(("mean".into(), mean));
    out.push(("median".into(), median));
}

/// JavaScript's `Math.round`: halves round up (toward +infinity).
fn js_round(x: f64) -> f64 {
    (x + 0.5).floor()
}

fn sketch_fields(s: &Sketch, counter: f64, thresholds: &[(f64, String)], interval_s: f64, bins: &[(f64, String)], out: &mut Fields) {
    let count = s.n as usize;
    for (pct, name) in thresholds {
        let k = if count > 1 { js_round(pct.abs() / 100.0 * count as f64) as usize } else { count };
        if k == 0 {
            continue;
        }
        let (boundary, sum, sum_squares) = if *pct > 0.0 { s.lowest(k) } else { s.highest(k) };
        push_percentile(out, *pct, name, k as f64, sum / k as f64, boundary, sum, sum_squares);
    }
    let mean = s.sum / count as f64;
    let variance = (s.sum_squares / count as f64 - mean * mean).max(0.0);
    let median = if count % 2 == 1 { s.rank(count / 2) } else { (s.rank(count / 2 - 1) + s.rank(count / 2)) / 2.0 };
    push_totals(out, variance.sqrt(), s.max, s.min, counter, interval_s, s.sum, s.sum_squares, mean, median);
    let mut counted = 0u64;
    for (bound, name) in bins {
        let below = if bound.is_infinite() { s.n } else { s.count_below(*bound) };
        out.push((format!("histogram.{name}"), below.saturating_sub(counted) as f64));
        counted = counted.max(below);
    }
}

/// A logarithmic histogram (as DDSketch): bucket i of a sign holds values in
/// (g^(i-1), g^i] with g = (1 + a) / (1 - a), represented by 2 g^i / (g + 1),
/// which is within a relative a of every value in it. Works for any finite
/// value, negative ones included, which HDR histograms (integers over a fixed
/// range) do not.
#[derive(Debug, Default, Clone)]
pub struct Sketch {
    positive: BTreeMap<i32, u64>,
    negative: BTreeMap<i32, u64>,
    zeros: u64,
    n: u64,
    sum: f64,
    sum_squares: f64,
    min: f64,
    max: f64,
}

fn gamma() -> f64 {
    (1.0 + ACCURACY) / (1.0 - ACCURACY)
}

impl Sketch {
    pub fn add(&mut self, v: f64) {
        if self.n == 0 {
            (self.min, self.max) = (v, v);
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.n += 1;
        self.sum += v;
        self.sum_squares += v * v;
        // Below this magnitude a value counts as zero (timings are never this small).
        if v.abs() < 1e-12 || !v.is_finite() {
            self.zeros += 1;
            return;
        }
        let index = (v.abs().ln() / gamma().ln()).ceil() as i32;
        let side = if v > 0.0 { &mut self.positive } else { &mut self.negative };
        *side.entry(index).or_insert(0) += 1;
        if side.len() > MAX_BUCKETS {
            // Merge the two buckets nearest zero.
            let mut lowest = side.keys().copied();
            if let (Some(a), Some(b)) = (lowest.next(), lowest.next()) {
                let moved = side.remove(&a).unwrap_or(0);
                *side.entry(b).or_insert(0) += moved;
            }
        }
    }

    /// Every value's stand-in in ascending order, as (value, count).
    fn ascending(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        let g = gamma();
        let value = move |i: i32| 2.0 * g.powi(i) / (g + 1.0);
        self.negative
            .iter()
            .rev()
            .map(move |(&i, &c)| (-value(i), c))
            .chain((self.zeros > 0).then_some((0.0, self.zeros)))
            .chain(self.positive.iter().map(move |(&i, &c)| (value(i), c)))
    }

    /// The value of rank r (0-based) in ascending order, clamped to [min, max].
    fn rank(&self, r: usize) -> f64 {
        let mut seen = 0u64;
        for (v, c) in self.ascending() {
            seen += c;
            if seen > r as u64 {
                return v.clamp(self.min, self.max);
            }
        }
        self.max
    }

    /// (the k-th lowest value, sum, sum of squares) of the lowest k.
    fn lowest(&self, k: usize) -> (f64, f64, f64) {
        let (mut left, mut sum, mut squares, mut last) = (k as u64, 0.0, 0.0, self.min);
        for (v, c) in self.ascending() {
            let take = c.min(left);
            let v = v.clamp(self.min, self.max);
            sum += v * take as f64;
            squares += v * v * take as f64;
            left -= take;
            last = v;
            if left == 0 {
                break;
            }
        }
        (last, sum, squares)
    }

    /// (the k-th highest value, sum, sum of squares) of the highest k.
    fn highest(&self, k: usize) -> (f64, f64, f64) {
        let all: Vec<(f64, u64)> = self.ascending().collect();
        let (mut left, mut sum, mut squares, mut last) = (k as u64, 0.0, 0.0, self.max);
        for &(v, c) in all.iter().rev() {
            let take = c.min(left);
            let v = v.clamp(self.min, self.max);
            sum += v * take as f64;
            squares += v * v * take as f64;
            left -= take;
            last = v;
            if left == 0 {
                break;
            }
        }
        (last, sum, squares)
    }

    /// Values whose stand-in is below `bound`.
    fn count_below(&self, bound: f64) -> u64 {
        self.ascending().take_while(|(v, _)| *v < bound).map(|(_, c)| c).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(values: &[f64], thresholds: &[f64], bins: &[(f64, String)], exact_cap: usize) -> Vec<(String, f64)> {
        let names: Vec<(f64, String)> = thresholds.iter().map(|&p| (p, super::super::aggregate::percentile_name(p))).collect();
        let mut t = Timer::default();
        for (i, &v) in values.iter().enumerate() {
            t.add(v, 1.0, i < exact_cap);
        }
        t.fields(&names, 10.0, bins)
    }

    fn get(f: &[(String, f64)], name: &str) -> Option<f64> {
        f.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }

    #[test]
    fn etsy_worked_example() {
        // compat-spec 1.9: latency 100, 200, 300 (one at @0.5 counts twice).
        let names = vec![(90.0, "90".to_string())];
        let mut t = Timer::default();
        t.add(100.0, 1.0, true);
        t.add(200.0, 1.0, true);
        t.add(300.0, 0.5, true);
        let bins = vec![(150.0, "bin_150".to_string()), (250.0, "bin_250".to_string()), (f64::INFINITY, "bin_inf".to_string())];
        let f = t.fields(&names, 10.0, &bins);
        let expected = [
            ("count_90", 3.0),
            ("mean_90", 200.0),
            ("upper_90", 300.0),
            ("sum_90", 600.0),
            ("sum_squares_90", 140000.0),
            ("std", 81.64965809277261),
            ("upper", 300.0),
            ("lower", 100.0),
            ("count", 4.0),
            ("count_ps", 0.4),
            ("sum", 600.0),
            ("sum_squares", 140000.0),
            ("mean", 200.0),
            ("median", 200.0),
            ("histogram.bin_150", 1.0),
            ("histogram.bin_250", 1.0),
            ("histogram.bin_inf", 1.0),
        ];
        let got: Vec<(&str, f64)> = f.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn percentile_edges() {
        // n = 2, P = 10: k = round(0.2) = 0, the P fields are absent (1.10 item 9).
        let f = fields(&[1.0, 2.0], &[10.0, 90.0], &[], usize::MAX);
        assert_eq!(get(&f, "count_10"), None);
        assert_eq!(get(&f, "upper_90"), Some(2.0));
        // n = 1: every percentile equals the value.
        let f = fields(&[7.0], &[10.0, -10.0, 99.9], &[], usize::MAX);
        assert_eq!((get(&f, "upper_10"), get(&f, "lower_top10"), get(&f, "mean_99_9")), (Some(7.0), Some(7.0), Some(7.0)));
        // Top 20% of 1..=10: the highest two.
        let f = fields(&(1..=10).map(f64::from).collect::<Vec<_>>(), &[-20.0], &[], usize::MAX);
        assert_eq!((get(&f, "lower_top20"), get(&f, "sum_top20"), get(&f, "mean_top20")), (Some(9.0), Some(19.0), Some(9.5)));
        // An empty interval: count_ps then count.
        let mut t = Timer::default();
        assert_eq!(t.fields(&[], 10.0, &[]), vec![("count_ps".to_string(), 0.0), ("count".to_string(), 0.0)]);
        // A value on a bin bound goes to the next bin; past the last bound without inf, nowhere.
        let bins = vec![(1.0, "bin_1".to_string()), (2.0, "bin_2".to_string())];
        let f = fields(&[0.5, 1.0, 1.5, 2.0, 3.0], &[], &bins, usize::MAX);
        assert_eq!((get(&f, "histogram.bin_1"), get(&f, "histogram.bin_2")), (Some(1.0), Some(2.0)));
    }

    #[test]
    fn past_the_bound_the_sketch_keeps_its_error_bound() {
        let mut r = crate::splitmix::SplitMix(3);
        let values: Vec<f64> = (0..50_000).map(|_| (1 + r.below(2_000_000)) as f64 / 1000.0).collect();
        let thresholds = [50.0, 90.0, 99.0, 99.9, -10.0];
        let exact = fields(&values, &thresholds, &[], usize::MAX);
        let approx = fields(&values, &thresholds, &[], 1000);
        for (name, want) in &exact {
            let got = get(&approx, name).unwrap_or_else(|| panic!("{name} missing"));
            let exact_field = name.starts_with("count") || ["sum", "sum_squares", "mean", "upper", "lower"].contains(&name.as_str());
            let bound = if exact_field {
                1e-12
            } else if name == "std" {
                1e-9
            } else {
                ACCURACY
            };
            let error = ((got - want) / want).abs();
            assert!(error <= bound, "{name}: {got} against {want}, relative error {error:e} over {bound:e}");
        }
        // Negative values and zeros too.
        let mixed: Vec<f64> = (0..5000).map(|i| f64::from(i % 200 - 100) * 1.5).collect();
        let exact = fields(&mixed, &[90.0], &[], usize::MAX);
        let approx = fields(&mixed, &[90.0], &[], 10);
        for name in ["upper_90", "median", "lower", "upper"] {
            let (want, got) = (get(&exact, name).expect("exact"), get(&approx, name).expect("approx"));
            assert!((got - want).abs() <= ACCURACY * want.abs() + 1e-9, "{name}: {got} against {want}");
        }
    }

    #[test]
    fn a_sketch_stays_bounded() {
        let mut s = Sketch::default();
        for i in 0..200_000 {
            s.add(1.0001f64.powi(i % 100_000) * 1e-6);
        }
        assert!(s.positive.len() <= MAX_BUCKETS, "{} buckets", s.positive.len());
        assert_eq!(s.n, 200_000);
    }
}
