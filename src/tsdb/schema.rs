//! Retention schemas and rollup aggregation, with carbon's and whisper's rules:
//! storage-schemas.conf's `precision:duration` syntax, the archive-list checks
//! whisper applies at create time, first-match-wins pattern lookup, and the
//! aggregation methods of storage-aggregation.conf.
//!
//! It knows nothing of keys or chunks; the store asks it which archives a series
//! gets and how to fold finer points into a coarser one.

use std::fmt;

use regex::Regex;

/// One archive: a value every `step` seconds, `points` of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Archive {
    pub step: u32,
    pub points: u32,
}

impl Archive {
    /// Seconds of history this archive holds.
    pub fn retention(self) -> u64 {
        u64::from(self.step) * u64::from(self.points)
    }
}

/// Carbon's fallback when no schema matches: one archive of 60 s for 7 days
/// (carbon's code; its docs wrongly say 2 hours).
pub const FALLBACK: [Archive; 1] = [Archive { step: 60, points: 10_080 }];

/// Parses a retention list such as `10s:6h,1m:7d,10m:5y` and checks it as whisper
/// does at create time. The result is sorted finest first.
pub fn parse_retentions(text: &str) -> Result<Vec<Archive>, String> {
    let mut archives = Vec::new();
    for element in text.split(',') {
        let element = element.trim();
        let Some((precision, duration)) = element.split_once(':') else {
            return Err(format!("cannot parse retention {element:?}: expected \"precision:duration\", like \"10s:6h\""));
        };
        let step = parse_unit(precision.trim(), element)?;
        if step == 0 {
            return Err(format!("cannot parse retention {element:?}: the precision must be at least 1 second"));
        }
        let duration = duration.trim();
        // A bare duration is a point count (`60:1440`); with a unit it is a span.
        let points = if !duration.is_empty() && duration.bytes().all(|b| b.is_ascii_digit()) {
            duration.parse::<u64>().map_err(|_| format!("cannot parse retention {element:?}: point count out of range"))?
        } else {
            parse_unit(duration, element)? / step
        };
        let step = u32::try_from(step).map_err(|_| format!("retention {element:?}: precision out of range"))?;
        let points = u32::try_from(points).map_err(|_| format!("retention {element:?}: too many points"))?;
        if points == 0 {
            return Err(format!("retention {element:?} holds no points: the duration is shorter than the precision"));
        }
        archives.push(Archive { step, points });
    }
    validate_archives(&mut archives)?;
    Ok(archives)
}

/// `10`, `10s`, `5m`, `5min`, `2h`, `30d`, `1w`, `5y` in seconds. Carbon accepts
/// single-letter units only; `min` is accepted too (whisper does).
fn parse_unit(text: &str, element: &str) -> Result<u64, String> {
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (num, unit) = text.split_at(split);
    let value: u64 = num.parse().map_err(|_| format!("cannot parse retention {element:?}: {text:?} is not a number with a unit"))?;
    let scale = match unit {
        "" | "s" => 1,
        "m" | "min" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        "y" => 31_536_000,
        other => return Err(format!("cannot parse retention {element:?}: unknown unit {other:?} (use s, m, min, h, d, w, y)")),
    };
    value.checked_mul(scale).ok_or_else(|| format!("cannot parse retention {element:?}: out of range"))
}

/// whisper's `validateArchiveList`, after sorting finest first.
fn validate_archives(archives: &mut [Archive]) -> Result<(), String> {
    if archives.is_empty() {
        return Err("a retention list needs at least one archive".into());
    }
    archives.sort_by_key(|a| a.step);
    for pair in archives.windows(2) {
        let (fine, coarse) = (pair[0], pair[1]);
        if fine.step == coarse.step {
            return Err(format!("two archives have the same precision {}s", fine.step));
        }
        if coarse.step % fine.step != 0 {
            return Err(format!("precision {}s is not a multiple of the finer {}s", coarse.step, fine.step));
        }
        if coarse.retention() <= fine.retention() {
            return Err(format!(
                "the {}s archive ({}s of history) must cover more time than the {}s archive ({}s)",
                coarse.step,
                coarse.retention(),
                fine.step,
                fine.retention()
            ));
        }
        if fine.points < coarse.step / fine.step {
            return Err(format!(
                "the {}s archive has {} points, fewer than one {}s rollup needs ({})",
                fine.step,
                fine.points,
                coarse.step,
                coarse.step / fine.step
            ));
        }
    }
    Ok(())
}

/// How finer points fold into one coarser point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Method {
    Average,
    Sum,
    Min,
    Max,
    Last,
    Count,
    /// Mean with unknown slots counted as 0 (divisor: all slots).
    AvgZero,
    /// The value of largest magnitude, sign kept.
    AbsMax,
    AbsMin,
}

impl Method {
    pub const ALL: [Method; 9] = [
        Method::Average,
        Method::Sum,
        Method::Min,
        Method::Max,
        Method::Last,
        Method::Count,
        Method::AvgZero,
        Method::AbsMax,
        Method::AbsMin,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Average => "average",
            Method::Sum => "sum",
            Method::Min => "min",
            Method::Max => "max",
            Method::Last => "last",
            Method::Count => "count",
            Method::AvgZero => "avg_zero",
            Method::AbsMax => "absmax",
            Method::AbsMin => "absmin",
        }
    }

    pub fn parse(text: &str) -> Result<Method, String> {
        let wanted = if text == "avg" { "average" } else { text };
        Method::ALL.into_iter().find(|m| m.name() == wanted).ok_or_else(|| {
            format!("unknown aggregation method {text:?} (use average, sum, min, max, last, count, avg_zero, absmax, absmin)")
        })
    }

    /// Folds the known values of one window, oldest first. `slots` is the
    /// window's total slot count (for `avg_zero`). `known` is never empty.
    pub fn fold(self, known: &[f64], slots: usize) -> f64 {
        debug_assert!(!known.is_empty());
        // Python's sum() starts from the integer 0, so a sum of -0.0s is 0.0;
        // Rust's f64 Sum starts from -0.0. whisper's avg_zero maps zeros to 0.
        let sum = || known.iter().fold(0.0, |acc, v| acc + v);
        match self {
            Method::Average => sum() / known.len() as f64,
            Method::Sum => sum(),
            Method::Min => known.iter().copied().fold(f64::INFINITY, f64::min),
            Method::Max => known.iter().copied().fold(f64::NEG_INFINITY, f64::max),
            Method::Last => known[known.len() - 1],
            Method::Count => known.len() as f64,
            Method::AvgZero => sum() / slots.max(1) as f64,
            // whisper: max(values, key=abs); the first of equal magnitudes wins.
            Method::AbsMax => known.iter().copied().fold(known[0], |best, v| if v.abs() > best.abs() { v } else { best }),
            Method::AbsMin => known.iter().copied().fold(known[0], |best, v| if v.abs() < best.abs() { v } else { best }),
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A series' storage policy: its archives and how they roll up.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    pub archives: Vec<Archive>,
    pub method: Method,
    pub x_files_factor: f64,
}

/// The ordered schema and aggregation rules; the first match wins in each.
#[derive(Clone, Debug)]
pub struct Rules {
    schemas: Vec<(Regex, Vec<Archive>)>,
    aggregations: Vec<(Regex, Method, f64)>,
}

impl Rules {
    pub fn new(schemas: Vec<(Regex, Vec<Archive>)>, aggregations: Vec<(Regex, Method, f64)>) -> Rules {
        Rules { schemas, aggregations }
    }

    /// The policy for a new series, as carbon decides when it creates a whisper file.
    pub fn policy(&self, name: &str) -> Policy {
        let archives = self.schemas.iter().find(|(re, _)| re.is_match(name)).map(|(_, a)| a.clone()).unwrap_or_else(|| FALLBACK.to_vec());
        // carbon's default when no aggregation rule matches: average, xff 0.5.
        let (method, x_files_factor) =
            self.aggregations.iter().find(|(re, _, _)| re.is_match(name)).map(|(_, m, x)| (*m, *x)).unwrap_or((Method::Average, 0.5));
        Policy { archives, method, x_files_factor }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<&[(u32, u32)], &str>) {
        let got = parse_retentions(input).map(|v| v.iter().map(|a| (a.step, a.points)).collect::<Vec<_>>());
        match expected {
            Ok(archives) => assert_eq!(got, Ok(archives.to_vec()), "{input}"),
            Err(fragment) => {
                let err = got.expect_err(input);
                assert!(err.contains(fragment), "{input}: {err}");
            }
        }
    }

    #[test]
    fn retentions() {
        check("10s:6h,1m:7d,10m:5y", Ok(&[(10, 2160), (60, 10080), (600, 262800)]));
        check("60:1440", Ok(&[(60, 1440)]));
        check("1m:1d", Ok(&[(60, 1440)]));
        check("1min:1d", Ok(&[(60, 1440)]));
        check(" 10s:6h , 1h:1y ", Ok(&[(10, 2160), (3600, 8760)]));
        check("1m:7d,10s:6h", Ok(&[(10, 2160), (60, 10080)]));
        check("1mon:1y", Err("unknown unit \"mon\""));
        check("7s:1d,10s:2d", Err("not a multiple"));
        check("60s:1d,60s:2d", Err("same precision"));
        check("1m:1d,5m:1d", Err("must cover more time"));
        check("10s", Err("expected \"precision:duration\""));
        check("10s:5s", Err("holds no points"));
        check("1s:3,10s:1d", Err("fewer than one 10s rollup needs"));
    }

    #[test]
    fn folds() {
        let v = [1.0, -3.0, 2.0];
        assert_eq!(Method::Average.fold(&v, 6), 0.0);
        assert_eq!(Method::Sum.fold(&v, 6), 0.0);
        assert_eq!(Method::Min.fold(&v, 6), -3.0);
        assert_eq!(Method::Max.fold(&v, 6), 2.0);
        assert_eq!(Method::Last.fold(&v, 6), 2.0);
        assert_eq!(Method::Count.fold(&v, 6), 3.0);
        assert_eq!(Method::AvgZero.fold(&[1.0, 2.0, 3.0], 6), 1.0);
        assert_eq!(Method::AbsMax.fold(&v, 6), -3.0);
        assert_eq!(Method::AbsMin.fold(&v, 6), 1.0);
    }

    #[test]
    fn first_rule_wins_and_patterns_are_unanchored() {
        let re = |s: &str| Regex::new(s).expect("test regex");
        let rules = Rules::new(
            vec![(re(r"^stats\."), vec![Archive { step: 10, points: 8640 }]), (re("count"), vec![Archive { step: 1, points: 60 }])],
            vec![(re(r"\.count$"), Method::Sum, 0.0)],
        );
        assert_eq!(rules.policy("stats.a.count").archives, vec![Archive { step: 10, points: 8640 }]);
        assert_eq!(rules.policy("a.count.b").archives, vec![Archive { step: 1, points: 60 }]);
        assert_eq!(rules.policy("other").archives, FALLBACK.to_vec());
        assert_eq!(rules.policy("x.count").method, Method::Sum);
        assert_eq!((rules.policy("x.mean").method, rules.policy("x.mean").x_files_factor), (Method::Average, 0.5));
    }
}
