//! graphite-web's `TimeSeries` and the arithmetic its functions share: nulls,
//! aggregation functions (`functions/safe.py`, `aggfuncs.py`), consolidation by
//! values-per-point, and `normalize` (a common step for several series).

use std::borrow::Cow;

pub use super::pyfloat::{push_u64, py_g, py_repr, write_py_repr};

/// A series' tags in insertion order (graphite-web's dict order), values as strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tags(Vec<(String, String)>);

impl Tags {
    pub fn insert(&mut self, key: String, value: String) {
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn get(&self, key: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&str, &str) -> bool) {
        self.0.retain(|(k, v)| keep(k, v));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One series of a render: values at `start + i * step * vpp` once consolidated.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub start: i64,
    pub end: i64,
    pub step: i64,
    pub values: Vec<Option<f64>>,
    /// Consolidation function for `vpp > 1` (`average`, `sum`, `min`, `max`,
    /// `first`, `last`, `avg_zero`).
    pub consolidation: Agg,
    pub vpp: usize,
    pub xff: f64,
    pub path_expression: String,
    pub tags: Tags,
}

impl Series {
    /// A series as graphite-web's `TimeSeries(name, start, end, step, values)`:
    /// tags parsed from the name, unless it looks like a function call.
    pub fn new(name: impl Into<String>, start: i64, end: i64, step: i64, values: Vec<Option<f64>>, xff: f64) -> Series {
        let name = name.into();
        let tags = name_tags(&name);
        Series { path_expression: name.clone(), name, start, end, step, values, consolidation: Agg::Average, vpp: 1, xff, tags }
    }

    /// The values after consolidation by `vpp`, as graphite-web iterates a series.
    /// [`Series::points`], borrowed when there is nothing to consolidate.
    pub fn consolidated(&self) -> Cow<'_, [Option<f64>]> {
        if self.vpp <= 1 { Cow::Borrowed(&self.values) } else { Cow::Owned(self.points()) }
    }

    pub fn points(&self) -> Vec<Option<f64>> {
        if self.vpp <= 1 {
            return self.values.clone();
        }
        self.values
            .chunks(self.vpp)
            .map(|group| {
                let non_null = group.iter().flatten().count();
                if non_null > 0 && non_null as f64 / self.vpp as f64 >= self.xff {
                    let usable: Vec<f64> = if self.consolidation == Agg::AvgZero {
                        group.iter().map(|v| v.unwrap_or(0.0)).collect()
                    } else {
                        group.iter().flatten().copied().collect()
                    };
                    match self.consolidation {
                        Agg::Sum => Some(py_sum(&usable)),
                        Agg::Max => usable.iter().copied().reduce(py_max),
                        Agg::Min => usable.iter().copied().reduce(py_min),
                        Agg::First => usable.first().copied(),
                        Agg::Last => usable.last().copied(),
                        _ => Some(py_sum(&usable) / usable.len() as f64),
                    }
                } else {
                    None
                }
            })
            .collect()
    }
}

/// Tags of a series name: `name;k=v` parsed, else `{"name": name}`.
pub fn name_tags(name: &str) -> Tags {
    let mut tags = Tags::default();
    let looks_called = {
        let b = name.as_bytes();
        let letters = b.iter().take_while(|c| c.is_ascii_alphabetic()).count();
        letters > 0 && b.get(letters) == Some(&b'(') && name.ends_with(')') && name.len() > letters + 2
    };
    if !looks_called && name.contains(';') {
        let mut parts = name.split(';');
        tags.insert("name".to_string(), parts.next().unwrap_or("").to_string());
        for part in parts {
            if let Some((k, v)) = part.split_once('=') {
                tags.insert(k.to_string(), v.to_string());
            }
        }
    } else {
        tags.insert("name".to_string(), name.to_string());
    }
    tags
}

/// An aggregation function (`getAggFunc`), also used for consolidation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agg {
    Average,
    AvgZero,
    Median,
    Sum,
    Min,
    Max,
    Diff,
    Stddev,
    Count,
    Range,
    Multiply,
    Last,
    First,
}

impl Agg {
    /// Accepts the names and aliases of graphite-web's `aggFuncs`, with a
    /// trailing `Series` stripped.
    pub fn parse(name: &str) -> Option<Agg> {
        let name = name.strip_suffix("Series").unwrap_or(name);
        Some(match name {
            "average" | "avg" => Agg::Average,
            "avg_zero" => Agg::AvgZero,
            "median" => Agg::Median,
            "sum" | "total" => Agg::Sum,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "diff" => Agg::Diff,
            "stddev" => Agg::Stddev,
            "count" => Agg::Count,
            "range" | "rangeOf" => Agg::Range,
            "multiply" => Agg::Multiply,
            "last" | "current" => Agg::Last,
            _ => return None,
        })
    }

    /// Names for consolidation (`consolidateBy`): only these five and avg_zero.
    pub fn parse_consolidation(name: &str) -> Option<Agg> {
        Some(match name {
            "average" | "avg" => Agg::Average,
            "avg_zero" => Agg::AvgZero,
            "sum" => Agg::Sum,
            "min" => Agg::Min,
            "max" => Agg::Max,
            "first" => Agg::First,
            "last" => Agg::Last,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Agg::Average => "average",
            Agg::AvgZero => "avg_zero",
            Agg::Median => "median",
            Agg::Sum => "sum",
            Agg::Min => "min",
            Agg::Max => "max",
            Agg::Diff => "diff",
            Agg::Stddev => "stddev",
            Agg::Count => "count",
            Agg::Range => "range",
            Agg::Multiply => "multiply",
            Agg::Last => "last",
            Agg::First => "first",
        }
    }

    /// The function over a row or window, nulls included as `None` (safe.py).
    pub fn apply(self, row: &[Option<f64>]) -> Option<f64> {
        // The aggregates of every dashboard (sum, average, min, max, count)
        // run once per row: no allocation for them.
        let mut known = row.iter().flatten().copied();
        match self {
            Agg::Sum => return known.next().map(|first| known.fold(0.0 + first, |a, b| a + b)),
            Agg::Average => {
                let (n, sum) = known.fold((0usize, 0.0), |(n, sum), v| (n + 1, sum + v));
                return (n > 0).then(|| sum / n as f64);
            }
            Agg::Min => return known.reduce(py_min),
            Agg::Max => return known.reduce(py_max),
            Agg::Count => return Some(known.count() as f64),
            _ => {}
        }
        let safe: Vec<f64> = row.iter().flatten().copied().collect();
        match self {
            Agg::Average => (!safe.is_empty()).then(|| py_sum(&safe) / safe.len() as f64),
            Agg::AvgZero => (!row.is_empty()).then(|| py_sum(&row.iter().map(|v| v.unwrap_or(0.0)).collect::<Vec<_>>()) / row.len() as f64),
            Agg::Median => {
                if safe.is_empty() {
                    return None;
                }
                let mut sorted = safe;
                sorted.sort_by(f64::total_cmp);
                let mid = sorted.len() / 2;
                Some(if sorted.len().is_multiple_of(2) { (sorted[mid - 1] + sorted[mid]) / 2.0 } else { sorted[mid] })
            }
            Agg::Sum => (!safe.is_empty()).then(|| py_sum(&safe)),
            Agg::Min => safe.iter().copied().reduce(py_min),
            Agg::Max => safe.iter().copied().reduce(py_max),
            Agg::Diff => (!safe.is_empty()).then(|| {
                let mut terms = vec![safe[0]];
                terms.extend(safe[1..].iter().map(|x| -x));
                py_sum(&terms)
            }),
            Agg::Stddev => {
                if safe.is_empty() {
                    return None;
                }
                let n = safe.len() as f64;
                let avg = py_sum(&safe) / n;
                let mut sum = 0.0;
                for v in &safe {
                    sum += (v - avg) * (v - avg);
                }
                Some((sum / n).sqrt())
            }
            Agg::Count => Some(safe.len() as f64),
            Agg::Range => Some(safe.iter().copied().reduce(py_max)? - safe.iter().copied().reduce(py_min)?),
            Agg::Multiply => {
                if row.iter().any(Option::is_none) || row.is_empty() {
                    return None;
                }
                safe.iter().copied().reduce(|a, b| a * b)
            }
            Agg::Last => safe.last().copied(),
            Agg::First => safe.first().copied(),
        }
    }
}

/// Python's `sum()` of floats: left to right from 0.
pub fn py_sum(values: &[f64]) -> f64 {
    values.iter().fold(0.0, |a, b| a + b)
}

/// Python's `max` keeps the first of equals and never picks NaN over a number
/// that came first; these follow `max(a, b)` = `b if b > a else a`.
pub fn py_max(a: f64, b: f64) -> f64 {
    if b > a { b } else { a }
}

pub fn py_min(a: f64, b: f64) -> f64 {
    if b < a { b } else { a }
}

/// graphite-web's `xff(nonNull, total, xFilesFactor)`.
pub fn xff_ok(non_null: usize, total: usize, xff: f64) -> bool {
    non_null > 0 && total > 0 && non_null as f64 / total as f64 >= xff
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a.abs() } else { gcd(b, a % b) }
}

pub fn lcm(a: i64, b: i64) -> i64 {
    if a == 0 || b == 0 { a.max(b) } else { a / gcd(a, b) * b }
}

/// graphite-web's `normalize`: consolidates every series to the lcm of the
/// steps; returns (start, end, step) or `None` for no series.
pub fn normalize(series: &mut [Series]) -> Option<(i64, i64, i64)> {
    if series.is_empty() {
        return None;
    }
    let step = series.iter().map(|s| s.step).fold(series[0].step, lcm);
    for s in series.iter_mut() {
        s.vpp = (step / s.step).max(1) as usize;
    }
    let start = series.iter().map(|s| s.start).min().unwrap_or(0);
    let mut end = series.iter().map(|s| s.end).max().unwrap_or(0);
    end -= (end - start).rem_euclid(step);
    Some((start, end, step))
}

/// Rows of the consolidated values, zipped index by index and padded with
/// nulls (Python's `zip_longest`).
pub fn rows(series: &[Series]) -> Vec<Vec<Option<f64>>> {
    map_rows(series, <[Option<f64>]>::to_vec)
}

/// `f` of each row of [`rows`], without building them: one row buffer is
/// refilled for each index (an aggregate over 100 series x 8,640 points would
/// otherwise allocate 8,640 rows).
pub fn map_rows<T>(series: &[Series], mut f: impl FnMut(&[Option<f64>]) -> T) -> Vec<T> {
    let columns: Vec<Cow<'_, [Option<f64>]>> = series.iter().map(Series::consolidated).collect();
    let len = columns.iter().map(|c| c.len()).max().unwrap_or(0);
    let mut row = Vec::with_capacity(columns.len());
    (0..len)
        .map(|i| {
            row.clear();
            row.extend(columns.iter().map(|c| c.get(i).copied().flatten()));
            f(&row)
        })
        .collect()
}

/// Unique path expressions joined by commas (`formatPathExpressions`).
pub fn path_expressions(series: &[Series]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for s in series {
        if !seen.contains(&s.path_expression.as_str()) {
            seen.push(&s.path_expression);
        }
    }
    seen.join(",")
}

/// The tags every series shares, with `name` set to `name` when they differ.
pub fn common_tags(series: &[Series], name: &str) -> Tags {
    let mut tags = series.first().map(|s| s.tags.clone()).unwrap_or_default();
    for s in series {
        tags.retain(|k, v| s.tags.get(k).is_some_and(|x| x == v));
    }
    if tags.get("name").is_none() {
        tags.insert("name".to_string(), name.to_string());
    }
    tags
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aggregates() {
        let row = [Some(5.0), None, Some(2.0), Some(1.0)];
        assert_eq!(Agg::Sum.apply(&row), Some(8.0));
        assert_eq!(Agg::Average.apply(&row), Some(8.0 / 3.0));
        assert_eq!(Agg::AvgZero.apply(&row), Some(2.0));
        assert_eq!(Agg::Median.apply(&row), Some(2.0));
        assert_eq!(Agg::Diff.apply(&row), Some(2.0));
        assert_eq!(Agg::Diff.apply(&[None, Some(2.0)]), Some(2.0));
        assert_eq!(Agg::Count.apply(&row), Some(3.0));
        assert_eq!(Agg::Range.apply(&row), Some(4.0));
        assert_eq!(Agg::Multiply.apply(&row), None);
        assert_eq!(Agg::Multiply.apply(&[Some(2.0), Some(3.0)]), Some(6.0));
        assert_eq!(Agg::Last.apply(&row), Some(1.0));
        assert_eq!(Agg::Sum.apply(&[None, None]), None);
        assert_eq!(Agg::parse("sumSeries"), Some(Agg::Sum));
        assert_eq!(Agg::parse("bogus"), None);
    }

    #[test]
    fn normalize_zips_without_realigning() {
        // compat-spec 4.4: A step 10 from 1010, B step 20 from 1020.
        let a = Series::new("a", 1010, 1070, 10, (1..=6).map(|v| Some(f64::from(v))).collect(), 0.0);
        let b = Series::new("b", 1020, 1080, 20, vec![Some(10.0), Some(20.0), Some(30.0)], 0.0);
        let mut list = vec![a, b];
        let (start, _, step) = normalize(&mut list).unwrap();
        assert_eq!((start, step), (1010, 20));
        let sums: Vec<Option<f64>> = rows(&list).iter().map(|r| Agg::Sum.apply(r)).collect();
        assert_eq!(sums, vec![Some(11.5), Some(23.5), Some(35.5)]);
    }

    #[test]
    fn tags_from_names() {
        assert_eq!(name_tags("a.b").get("name").map(String::as_str), Some("a.b"));
        let t = name_tags("cpu;dc=x;host=a");
        assert_eq!(t.iter().collect::<Vec<_>>(), vec![("name", "cpu"), ("dc", "x"), ("host", "a")]);
        assert_eq!(name_tags("sumSeries(a;b=c)").len(), 1);
    }
}
