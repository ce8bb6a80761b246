//! Series filters and sorts (graphite-web's "Filter Series", "Filter Data"
//! and "Sorting" groups).

use super::calculate::percentile;
use super::{Run, list, transform_each};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::{Agg, Series, py_g, py_sum, rows};

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("highest", |c, a| highest_lowest(c, a, None, true)),
    ("lowest", |c, a| highest_lowest(c, a, None, false)),
    ("highestCurrent", |c, a| highest_lowest(c, a, Some("current"), true)),
    ("highestMax", |c, a| highest_lowest(c, a, Some("max"), true)),
    ("highestAverage", |c, a| highest_lowest(c, a, Some("average"), true)),
    ("lowestCurrent", |c, a| highest_lowest(c, a, Some("current"), false)),
    ("lowestAverage", |c, a| highest_lowest(c, a, Some("average"), false)),
    ("currentAbove", |c, a| threshold_filter(c, a, "last", ">")),
    ("currentBelow", |c, a| threshold_filter(c, a, "last", "<=")),
    ("averageAbove", |c, a| threshold_filter(c, a, "average", ">")),
    ("averageBelow", |c, a| threshold_filter(c, a, "average", "<=")),
    ("maximumAbove", |c, a| threshold_filter(c, a, "max", ">")),
    ("maximumBelow", |c, a| threshold_filter(c, a, "max", "<=")),
    ("minimumAbove", |c, a| threshold_filter(c, a, "min", ">")),
    ("minimumBelow", |c, a| threshold_filter(c, a, "min", "<=")),
    ("filterSeries", filter_series),
    ("limit", limit),
    ("exclude", |c, a| regex_filter(c, a, false)),
    ("grep", |c, a| regex_filter(c, a, true)),
    ("removeEmptySeries", remove_empty),
    ("removeAboveValue", |c, a| remove_value(c, a, true)),
    ("removeBelowValue", |c, a| remove_value(c, a, false)),
    ("sortByName", sort_by_name),
    ("sortByMaxima", sort_by_maxima),
    ("sortByMinima", sort_by_minima),
    ("sortByTotal", |c, a| sort_by_impl(c, a, "sum", true)),
    ("sortBy", sort_by),
    ("unique", unique),
    ("removeAbovePercentile", |c, a| remove_percentile(c, a, true)),
    ("removeBelowPercentile", |c, a| remove_percentile(c, a, false)),
    ("mostDeviant", most_deviant),
    ("useSeriesAbove", use_series_above),
    ("averageOutsidePercentile", average_outside_percentile),
    ("removeBetweenPercentile", remove_between_percentile),
];

/// `keyFunc`: the aggregate, null as -infinity.
fn key(s: &Series, agg: Agg) -> f64 {
    agg.apply(&s.points()).unwrap_or(f64::NEG_INFINITY)
}

fn sort_stable(series: &mut [Series], agg: Agg, reverse: bool) {
    // Python's sort(reverse=True) keeps equal elements in their order too.
    series.sort_by(|x, y| {
        let o = key(x, agg).partial_cmp(&key(y, agg)).unwrap_or(std::cmp::Ordering::Equal);
        if reverse { o.reverse() } else { o }
    });
}

fn highest_lowest(_: &mut Context<'_>, a: &mut Args<'_>, fixed: Option<&str>, highest: bool) -> Result<Value, EvalError> {
    let func = match fixed {
        Some(f) => f.to_string(),
        None => a.opt_string("func")?.unwrap_or_else(|| "average".into()),
    };
    let agg = Agg::parse(&func).ok_or_else(|| bad(format!("unsupported aggregation function: {func}")))?;
    let n = a.opt_number("n")?.unwrap_or(1.0).max(0.0) as usize;
    let mut series = a.series("seriesList")?;
    sort_stable(&mut series, agg, highest);
    series.truncate(n);
    list(series)
}

fn compare(v: Option<f64>, op: &str, t: f64) -> Result<bool, EvalError> {
    Ok(match op {
        "=" => v.is_some_and(|v| v == t),
        "!=" => v.is_none_or(|v| v != t),
        ">" => v.is_some_and(|v| v > t),
        ">=" => v.is_some_and(|v| v >= t),
        "<" => v.is_none_or(|v| v < t),
        "<=" => v.is_none_or(|v| v <= t),
        _ => return Err(bad(format!("Unsupported operator: {op}"))),
    })
}

fn filter_by(series: Vec<Series>, agg: Agg, op: &str, t: f64) -> Result<Vec<Series>, EvalError> {
    let mut out = Vec::new();
    for s in series {
        if compare(agg.apply(&s.points()), op, t)? {
            out.push(s);
        }
    }
    Ok(out)
}

fn threshold_filter(_: &mut Context<'_>, a: &mut Args<'_>, func: &str, op: &str) -> Result<Value, EvalError> {
    let n = a.number("n")?;
    let agg = Agg::parse(func).expect("fixed aggregation names parse");
    list(filter_by(a.series("seriesList")?, agg, op, n)?)
}

fn filter_series(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let func = a.string("func")?;
    let agg = Agg::parse(&func).ok_or_else(|| bad(format!("unsupported aggregation function: {func}")))?;
    let op = a.string("operator")?;
    let t = a.number("threshold")?;
    compare(None, &op, t)?;
    list(filter_by(a.series("seriesList")?, agg, &op, t)?)
}

fn limit(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let n = a.int("n")?.max(0) as usize;
    let mut s = a.series("seriesList")?;
    s.truncate(n);
    list(s)
}

/// A Python `re` pattern for Rust's regex crate (the common subset).
pub fn regex(pattern: &str) -> Result<regex::Regex, EvalError> {
    regex::Regex::new(pattern).map_err(|e| bad(format!("bad regular expression {pattern:?}: {e}")))
}

fn regex_filter(_: &mut Context<'_>, a: &mut Args<'_>, keep: bool) -> Result<Value, EvalError> {
    let re = regex(&a.string("pattern")?)?;
    let s = a.series("seriesList")?;
    list(s.into_iter().filter(|s| re.is_match(&s.name) == keep).collect())
}

fn remove_empty(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let xff = a.opt_number("xFilesFactor")?.unwrap_or(0.0);
    let s = a.series("seriesList")?;
    list(
        s.into_iter()
            .filter(|s| {
                let p = s.points();
                let non_null = p.iter().flatten().count();
                non_null > 0 && !p.is_empty() && non_null as f64 / p.len() as f64 >= xff
            })
            .collect(),
    )
}

fn remove_value(_: &mut Context<'_>, a: &mut Args<'_>, above: bool) -> Result<Value, EvalError> {
    let n = a.number("n")?;
    let label = if above { "removeAboveValue" } else { "removeBelowValue" };
    // Kept unless strictly past n; NaN compares as neither, so it stays.
    let gone = if above { std::cmp::Ordering::Greater } else { std::cmp::Ordering::Less };
    list(transform_each(
        a.series("seriesList")?,
        None,
        |name| format!("{label}({name}, {})", py_g(n)),
        |s| s.points().into_iter().map(|v| v.filter(|v| v.partial_cmp(&n) != Some(gone))).collect(),
    ))
}

fn sort_by_name(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let natural = a.flag("natural")?;
    let reverse = a.flag("reverse")?;
    let mut s = a.series("seriesList")?;
    let digits = regex::Regex::new(r"\d+").expect("static regex");
    let key = |s: &Series| {
        if natural {
            digits.replace_all(&s.name, |c: &regex::Captures<'_>| format!("{:010}", c[0].parse::<u128>().unwrap_or(0))).into_owned()
        } else {
            s.name.clone()
        }
    };
    s.sort_by(|x, y| {
        let o = key(x).cmp(&key(y));
        if reverse { o.reverse() } else { o }
    });
    list(s)
}

fn sort_by_maxima(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let mut s = a.series("seriesList")?;
    sort_stable(&mut s, Agg::Max, true);
    list(s)
}

fn sort_by_minima(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    let mut kept: Vec<Series> = s.into_iter().filter(|s| Agg::Max.apply(&s.points()).unwrap_or(0.0) > 0.0).collect();
    sort_stable(&mut kept, Agg::Min, false);
    list(kept)
}

fn sort_by_impl(_: &mut Context<'_>, a: &mut Args<'_>, func: &str, reverse: bool) -> Result<Value, EvalError> {
    let agg = Agg::parse(func).ok_or_else(|| bad(format!("unsupported aggregation function: {func}")))?;
    let mut s = a.series("seriesList")?;
    sort_stable(&mut s, agg, reverse);
    list(s)
}

fn sort_by(c: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let func = a.opt_string("func")?.unwrap_or_else(|| "average".into());
    let reverse = a.flag("reverse")?;
    sort_by_impl(c, a, &func, reverse)
}

fn unique(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let mut seen = std::collections::HashSet::new();
    let all: Vec<Series> = a.series_lists("seriesLists")?.into_iter().flatten().collect();
    list(all.into_iter().filter(|s| seen.insert(s.name.clone())).collect())
}

/// graphite-web's `removeAbovePercentile` / `removeBelowPercentile`: values
/// past the series' own nPercentile become null (below also nulls nulls).
/// Its nPercentile call tags the series `nPercentile` through a shared dict.
fn remove_percentile(_: &mut Context<'_>, a: &mut Args<'_>, above: bool) -> Result<Value, EvalError> {
    let n = a.number("n")?;
    let tag = a.text("n").unwrap_or_default();
    let label = if above { "removeAbovePercentile" } else { "removeBelowPercentile" };
    let mut out = Vec::new();
    for mut s in a.series("seriesList")? {
        let points = s.points();
        // A series without values has no percentile and keeps its (null) points.
        let p = percentile(&points, n, false);
        if p.is_some() {
            s.tags.insert("nPercentile".into(), tag.clone());
        }
        let p = p.unwrap_or(f64::NAN);
        let gone = |x: f64| if above { x > p } else { x < p };
        out.extend(transform_each(
            vec![s],
            None,
            |name| format!("{label}({name}, {})", py_g(n)),
            |_| points.iter().map(|v| v.filter(|x| !gone(*x))).collect(),
        ));
    }
    list(out)
}

/// graphite-web's `mostDeviant`: the n series of highest variance.
fn most_deviant(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let n = a.int("n")?.max(0) as usize;
    let mut deviants: Vec<(f64, Series)> = Vec::new();
    for s in a.series("seriesList")? {
        let known: Vec<f64> = s.points().into_iter().flatten().collect();
        let Some(mean) = Agg::Average.apply(&s.points()) else { continue };
        let squares: Vec<f64> = known.iter().map(|v| (v - mean) * (v - mean)).collect();
        deviants.push((py_sum(&squares) / known.len() as f64, s));
    }
    deviants.sort_by(|x, y| y.0.partial_cmp(&x.0).unwrap_or(std::cmp::Ordering::Equal));
    list(deviants.into_iter().take(n).map(|(_, s)| s).collect())
}

/// Python's `max(series)`, which raises on an empty list or a null.
fn py_max_strict(s: &Series) -> Result<Option<f64>, EvalError> {
    let points = s.points();
    if points.is_empty() || points.iter().any(Option::is_none) {
        return Err(EvalError::Internal(format!("max() of {}: empty or with a null", s.name)));
    }
    Ok(Agg::Max.apply(&points))
}

/// graphite-web's `useSeriesAbove`: the series whose max is above `value`,
/// renamed by the regex, fetched again as `group(...)`.
fn use_series_above(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let value = a.number("value")?;
    let re = regex(&a.string("search")?)?;
    let replace = super::special::python_replacement(&a.string("replace")?);
    let mut names = Vec::new();
    for s in a.series("seriesList")? {
        if py_max_strict(&s)?.is_some_and(|m| m > value) {
            names.push(re.replace_all(&s.name, replace.as_str()).into_owned());
        }
    }
    if names.is_empty() {
        return list(vec![]);
    }
    let target = crate::graphite::expr::parse(&format!("group({})", names.join(","))).map_err(|e| bad(e.to_string()))?;
    list(ctx.target(&target)?.into_iter().filter(|s| !s.values.is_empty()).collect())
}

/// Python's `low < x < high`, which raises on a null.
fn strictly_between(low: Option<f64>, x: Option<f64>, high: Option<f64>) -> Result<bool, EvalError> {
    match (low, x, high) {
        (Some(l), Some(x), Some(h)) => Ok(l < x && x < h),
        (Some(l), Some(x), None) if l >= x => Ok(false),
        _ => Err(EvalError::Internal("a comparison with None".into())),
    }
}

fn outer_percent(n: f64) -> f64 {
    if n < 50.0 { 100.0 - n } else { n }
}

fn average_outside_percentile(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let n = outer_percent(a.number("n")?);
    let series = a.series("seriesList")?;
    let averages: Vec<Option<f64>> = series.iter().map(|s| Agg::Average.apply(&s.points())).collect();
    let (low, high) = (percentile(&averages, 100.0 - n, false), percentile(&averages, n, false));
    let mut out = Vec::new();
    for (s, avg) in series.into_iter().zip(averages) {
        if !strictly_between(low, avg, high)? {
            out.push(s);
        }
    }
    list(out)
}

fn remove_between_percentile(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let n = outer_percent(a.number("n")?);
    let series = a.series("seriesList")?;
    // zip(*seriesList): rows as long as the shortest series.
    let shortest = series.iter().map(|s| s.points().len()).min().unwrap_or(0);
    let columns: Vec<Vec<Option<f64>>> = rows(&series).into_iter().take(shortest).collect();
    let low: Vec<Option<f64>> = columns.iter().map(|c| percentile(c, 100.0 - n, false)).collect();
    let high: Vec<Option<f64>> = columns.iter().map(|c| percentile(c, n, false)).collect();
    let mut out = Vec::new();
    for s in series {
        let mut outside = false;
        for (i, v) in s.points().into_iter().enumerate() {
            let bounds = low.get(i).zip(high.get(i)).ok_or_else(|| EvalError::Internal("list index out of range".into()))?;
            outside |= !strictly_between(*bounds.0, v, *bounds.1)?;
        }
        if outside {
            out.push(s);
        }
    }
    list(out)
}
