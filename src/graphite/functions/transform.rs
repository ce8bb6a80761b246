//! Per-series value transforms (graphite-web's "Transform" group).

use super::{Run, list, transform_each};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::{Agg, Series, py_g};
use crate::graphite::timespec;

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("scale", scale),
    ("offset", offset),
    ("absolute", absolute),
    ("invert", invert),
    ("pow", pow),
    ("squareRoot", square_root),
    ("log", logarithm),
    ("derivative", derivative),
    ("nonNegativeDerivative", non_negative_derivative),
    ("perSecond", per_second),
    ("integral", integral),
    ("keepLastValue", keep_last_value),
    ("transformNull", transform_null),
    ("isNonNull", is_non_null),
    ("changed", changed),
    ("delay", delay),
    ("timeShift", time_shift),
    ("summarize", summarize),
    ("consolidateBy", consolidate_by),
    ("cumulative", cumulative),
    ("scaleToSeconds", scale_to_seconds),
    ("minMax", min_max),
    ("interpolate", interpolate),
    ("add", add),
    ("exp", exp),
    ("sigmoid", sigmoid),
    ("logit", logit),
    ("round", round),
    ("offsetToZero", offset_to_zero),
];

/// Maps each consolidated value, renames to `name(series)` and sets a tag.
fn map_values(
    series: Vec<Series>,
    tag: Option<(&str, String)>,
    name: impl Fn(&str) -> String,
    f: impl Fn(Option<f64>) -> Option<f64>,
) -> Vec<Series> {
    transform_each(series, tag, name, |s| s.points().into_iter().map(&f).collect())
}

/// Python's `round(x, 6)`: correctly rounded to 6 decimals.
pub fn round6(x: f64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    format!("{x:.6}").parse().unwrap_or(x)
}

pub fn safe_pow(v: Option<f64>, e: f64) -> Option<f64> {
    let v = v?;
    let r = v.powf(e);
    // math.pow raises (and safePow returns None) on a domain error or overflow.
    if r.is_nan() || (r.is_infinite() && v.is_finite()) { None } else { Some(r) }
}

fn scale(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let factor = a.number("factor")?;
    let tag = a.text("factor").unwrap_or_default();
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("scale", tag)), |n| format!("scale({n},{})", py_g(factor)), |v| v.map(|v| v * factor)))
}

fn offset(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let factor = a.number("factor")?;
    let tag = a.text("factor").unwrap_or_default();
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("offset", tag)), |n| format!("offset({n},{})", py_g(factor)), |v| v.map(|v| v + factor)))
}

fn absolute(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("absolute", "1".into())), |n| format!("absolute({n})"), |v| v.map(f64::abs)))
}

fn invert(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("invert", "1".into())), |n| format!("invert({n})"), |v| if v == Some(0.0) { None } else { safe_pow(v, -1.0) }))
}

fn pow(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let factor = a.number("factor")?;
    let tag = a.text("factor").unwrap_or_default();
    let s = a.series("seriesList")?;
    list(map_values(
        s,
        Some(("pow", tag)),
        |n| format!("pow({n},{})", py_g(factor)),
        |v| if v == Some(0.0) && factor < 0.0 { None } else { safe_pow(v, factor) },
    ))
}

fn square_root(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("squareRoot", "1".into())), |n| format!("squareRoot({n})"), |v| safe_pow(v, 0.5)))
}

fn logarithm(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let base = a.opt_number("base")?.unwrap_or(10.0);
    let text = a.text("base").unwrap_or_else(|| "10".into());
    let s = a.series("seriesList")?;
    list(map_values(
        s,
        Some(("log", text.clone())),
        |n| format!("log({n}, {text})"),
        |v| v.filter(|v| *v > 0.0).map(|v| v.ln() / base.ln()),
    ))
}

/// Copies with new values, renamed, path expression = name, one tag set.
fn derivative(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        Some(("derivative", "1".into())),
        |n| format!("derivative({n})"),
        |s| {
            let mut prev: Option<f64> = None;
            s.points()
                .into_iter()
                .map(|v| {
                    let out = match (prev, v) {
                        (Some(p), Some(v)) => Some(v - p),
                        _ => None,
                    };
                    prev = v;
                    out
                })
                .collect()
        },
    ))
}

/// graphite-web's `_nonNegativeDelta`: (delta, new previous).
fn non_negative_delta(v: Option<f64>, prev: Option<f64>, max: Option<f64>, min: Option<f64>) -> (Option<f64>, Option<f64>) {
    if let (Some(m), Some(x)) = (max, v)
        && x > m
    {
        return (None, None);
    }
    if let (Some(m), Some(x)) = (min, v)
        && x < m
    {
        return (None, None);
    }
    let (Some(p), Some(x)) = (prev, v) else { return (None, v) };
    if x >= p {
        return (Some(x - p), v);
    }
    if let Some(m) = max {
        return (Some(m + 1.0 + x - p - min.unwrap_or(0.0)), v);
    }
    if let Some(m) = min {
        return (Some(x - m), v);
    }
    (None, v)
}

/// The non-negative deltas of a series' points (`_nonNegativeDelta` in turn).
fn non_negative_deltas(s: &Series, max: Option<f64>, min: Option<f64>) -> Vec<Option<f64>> {
    let mut prev = None;
    s.points()
        .into_iter()
        .map(|v| {
            let (d, p) = non_negative_delta(v, prev, max, min);
            prev = p;
            d
        })
        .collect()
}

fn non_negative_derivative(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let (max, min) = (a.opt_number("maxValue")?, a.opt_number("minValue")?);
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        Some(("nonNegativeDerivative", "1".into())),
        |n| format!("nonNegativeDerivative({n})"),
        |s| non_negative_deltas(s, max, min),
    ))
}

fn per_second(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let (max, min) = (a.opt_number("maxValue")?, a.opt_number("minValue")?);
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        Some(("perSecond", "1".into())),
        |n| format!("perSecond({n})"),
        |s| {
            let step = s.step as f64;
            non_negative_deltas(s, max, min).into_iter().map(|d| d.map(|d| round6(d / step))).collect()
        },
    ))
}

fn integral(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        Some(("integral", "1".into())),
        |n| format!("integral({n})"),
        |s| {
            let mut current = 0.0;
            s.points()
                .into_iter()
                .map(|v| {
                    v.map(|v| {
                        current += v;
                        current
                    })
                })
                .collect()
        },
    ))
}

fn keep_last_value(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let limit = a.opt_number("limit")?.unwrap_or(f64::INFINITY);
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        None,
        |n| format!("keepLastValue({n})"),
        |s| {
            let mut values = s.points();
            let (mut nones, mut last) = (0usize, None);
            for i in 0..values.len() {
                match values[i] {
                    None => nones += 1,
                    Some(v) => {
                        if nones > 0 && nones as f64 <= limit && last.is_some() {
                            values[i - nones..i].fill(last);
                        }
                        nones = 0;
                        last = Some(v);
                    }
                }
            }
            let len = values.len();
            if nones > 0 && nones as f64 <= limit && last.is_some() {
                values[len - nones..].fill(last);
            }
            values
        },
    ))
}

fn transform_null(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let default = a.opt_number("default")?.unwrap_or(0.0);
    let tag = a.text("default").unwrap_or_else(|| "0".into());
    let reference = a.opt_series("referenceSeries")?;
    let s = a.series("seriesList")?;
    let defaults: Option<Vec<Option<f64>>> = reference
        .filter(|r| !r.is_empty())
        .map(|r| crate::graphite::series::rows(&r).into_iter().map(|row| row.iter().any(Option::is_some).then_some(default)).collect());
    list(
        s.into_iter()
            .map(|mut s| {
                s.tags.insert("transformNull".into(), tag.clone());
                if defaults.is_some() {
                    s.tags.insert("referenceSeries".into(), "1".into());
                    s.name = format!("transformNull({},{},referenceSeries)", s.name, py_g(default));
                } else {
                    s.name = format!("transformNull({},{})", s.name, py_g(default));
                }
                s.path_expression = s.name.clone();
                let points = s.points();
                s.values = match &defaults {
                    Some(d) => {
                        let len = points.len().max(d.len());
                        (0..len).map(|i| points.get(i).copied().flatten().or_else(|| d.get(i).copied().flatten())).collect()
                    }
                    None => points.into_iter().map(|v| v.or(Some(default))).collect(),
                };
                s.vpp = 1;
                s
            })
            .collect(),
    )
}

fn is_non_null(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("isNonNull", "1".into())), |n| format!("isNonNull({n})"), |v| Some(if v.is_some() { 1.0 } else { 0.0 })))
}

fn changed(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        None,
        |n| format!("changed({n})"),
        |s| {
            let mut previous: Option<f64> = None;
            s.points()
                .into_iter()
                .map(|v| {
                    Some(match previous {
                        None => {
                            previous = v;
                            0.0
                        }
                        Some(p) if v.is_some_and(|v| v != p) => {
                            previous = v;
                            1.0
                        }
                        _ => 0.0,
                    })
                })
                .collect()
        },
    ))
}

fn delay(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let steps = a.int("steps")?;
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        Some(("delay", steps.to_string())),
        |n| format!("delay({n},{steps})"),
        |s| {
            let v = s.points();
            let n = v.len();
            let k = (steps.unsigned_abs() as usize).min(n);
            if steps < 0 {
                let mut out = v[k..].to_vec();
                out.extend(std::iter::repeat_n(None, k));
                out
            } else if steps == 0 {
                // Python: series[:-0] is empty, so delay(x, 0) is all gone.
                Vec::new()
            } else {
                let mut out = vec![None; k];
                out.extend_from_slice(&v[..n - k]);
                out
            }
        },
    ))
}

fn time_shift(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let mut shift = a.string("timeShift")?;
    let reset_end = if a.text("resetEnd").is_some() { a.flag("resetEnd")? } else { true };
    if shift.starts_with(|c: char| c.is_ascii_digit()) {
        shift = format!("-{shift}");
    }
    let delta = timespec::interval(&shift).map_err(|e| bad(e.to_string()))?;
    let original = a.series("seriesList")?;
    let Some(first) = original.first() else { return list(vec![]) };
    let (start, end) = (first.start, first.end);
    let raw = a.raw("seriesList").cloned().ok_or_else(|| bad("timeShift needs a series argument"))?;
    let shifted = ctx.refetch(&raw, ctx.from + delta, ctx.until + delta)?;
    list(
        shifted
            .into_iter()
            .map(|mut s| {
                s.tags.insert("timeShift".into(), shift.clone());
                s.name = format!("timeShift({}, \"{shift}\")", s.name);
                s.end = if reset_end { end } else { s.end - s.start + start };
                s.start = start;
                s
            })
            .collect(),
    )
}

fn summarize(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let interval_text = a.string("intervalString")?;
    let func_name = a.opt_string("func")?.unwrap_or_else(|| "sum".into());
    let func = Agg::parse(&func_name).ok_or_else(|| bad(format!("summarize: unsupported aggregation function {func_name}")))?;
    let align = a.flag("alignToFrom")?;
    let interval = timespec::interval(&interval_text).map_err(|e| bad(e.to_string()))?;
    if interval <= 0 {
        return Err(bad(format!("summarize: interval {interval_text:?} must be positive")));
    }
    let s = a.series("seriesList")?;
    list(
        s.into_iter()
            .map(|mut s| {
                let (new_start, mut new_end) = if align {
                    (s.start, s.end)
                } else {
                    (s.start - s.start.rem_euclid(interval), s.end - s.end.rem_euclid(interval) + interval)
                };
                let (values, t) = summarize_values(&s, func, interval, new_start, new_end);
                if align {
                    new_end = t;
                }
                s.tags.insert("summarize".into(), interval_text.clone());
                s.tags.insert("summarizeFunction".into(), func_name.clone());
                let name = format!("summarize({}, \"{interval_text}\", \"{func_name}\"{})", s.name, if align { ", true" } else { "" });
                s.path_expression = name.clone();
                s.name = name;
                (s.start, s.end, s.step, s.values, s.vpp) = (new_start, new_end, interval, values, 1);
                s
            })
            .collect(),
    )
}

/// graphite-web's `_summarizeValues`: `func` over the points of each
/// `interval` bucket from `new_start` until `new_end`, null below the
/// series' xff; returns the values and the end of the last bucket.
pub fn summarize_values(s: &Series, func: Agg, interval: i64, new_start: i64, new_end: i64) -> (Vec<Option<f64>>, i64) {
    let points = s.points();
    let step = s.step * s.vpp as i64;
    let timestamps: Vec<i64> = (0..).map(|i| s.start + i * step).take_while(|t| *t < s.end).collect();
    let n = timestamps.len().min(points.len());
    let per = interval as f64 / step as f64;
    let (mut values, mut i, mut t) = (Vec::new(), 0, new_start);
    while t < new_end {
        let (mut first, mut non_null) = (i, 0usize);
        while i < n && timestamps[i] < t + interval {
            if timestamps[i] <= t {
                first = i;
            }
            if timestamps[i] >= t && points[i].is_some() {
                non_null += 1;
            }
            i += 1;
        }
        let ok = non_null > 0 && non_null as f64 / per >= s.xff;
        values.push(if ok { func.apply(&points[first..i]) } else { None });
        t += interval;
    }
    (values, t)
}

fn consolidate_by(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let func = a.string("consolidationFunc")?;
    consolidate(a.series("seriesList")?, &func)
}

fn consolidate(series: Vec<Series>, func: &str) -> Result<Value, EvalError> {
    let agg = Agg::parse_consolidation(func).ok_or_else(|| bad(format!("invalid consolidation function {func:?}")))?;
    list(
        series
            .into_iter()
            .map(|mut s| {
                s.consolidation = agg;
                s.tags.insert("consolidateBy".into(), func.to_string());
                s.name = format!("consolidateBy({},\"{func}\")", s.name);
                s.path_expression = s.name.clone();
                s
            })
            .collect(),
    )
}

fn cumulative(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    consolidate(a.series("seriesList")?, "sum")
}

fn scale_to_seconds(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let seconds = a.number("seconds")?;
    let tag = a.text("seconds").unwrap_or_default();
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        Some(("scaleToSeconds", tag)),
        |n| format!("scaleToSeconds({n},{})", seconds.trunc() as i64),
        |s| {
            let factor = seconds / s.step as f64;
            s.points().into_iter().map(|v| v.map(|v| round6(v * factor))).collect()
        },
    ))
}

fn min_max(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        None,
        |n| format!("minMax({n})"),
        |s| {
            let points = s.points();
            let min = Agg::Min.apply(&points).unwrap_or(0.0);
            let max = Agg::Max.apply(&points).unwrap_or(0.0);
            points.into_iter().map(|v| v.map(|v| if max == min { 0.0 } else { (v - min) / (max - min) })).collect()
        },
    ))
}

fn interpolate(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let limit = a.opt_number("limit")?.unwrap_or(f64::INFINITY);
    let s = a.series("seriesList")?;
    list(transform_each(s, None, |n| format!("interpolate({n})"), |s| interpolated(s.points(), limit)))
}

/// graphite-web's `interpolate`: runs of at most `limit` nulls between two
/// values filled on the line between them; leading and trailing runs stay.
fn interpolated(mut values: Vec<Option<f64>>, limit: f64) -> Vec<Option<f64>> {
    let mut nones = 0usize;
    for i in 1..values.len() {
        let Some(v) = values[i] else {
            nones += 1;
            continue;
        };
        if nones == 0 {
            continue;
        }
        let before = i - nones - 1;
        if let Some(b) = values[before]
            && nones as f64 <= limit
        {
            for (k, slot) in values[i - nones..i].iter_mut().enumerate() {
                *slot = Some(b + (k + 1) as f64 * (v - b) / (nones + 1) as f64);
            }
        }
        nones = 0;
    }
    values
}

fn add(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let constant = a.number("constant")?;
    let tag = a.text("constant").unwrap_or_default();
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("add", tag)), |n| format!("add({n},{})", constant.trunc() as i64), |v| v.map(|v| v + constant)))
}

fn exp(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("exp", "e".into())), |n| format!("exp({n})"), |v| v.map(f64::exp)))
}

fn sigmoid(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(map_values(s, Some(("sigmoid", "sigmoid".into())), |n| format!("sigmoid({n})"), |v| v.map(|v| 1.0 / (1.0 + (-v).exp()))))
}

fn logit(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    // math.log raises (and logit gives None) at 1 (a zero division) and at or below 0.
    let f = |v: f64| (v != 1.0).then(|| v / (1.0 - v)).filter(|r| *r > 0.0).map(f64::ln);
    list(map_values(s, Some(("logit", "logit".into())), |n| format!("logit({n})"), |v| v.and_then(f)))
}

/// Python's `round(x, digits)`: correctly rounded, ties to even.
pub fn py_round(x: f64, digits: i64) -> f64 {
    if !x.is_finite() {
        return x;
    }
    if digits >= 0 {
        return format!("{x:.0$}", digits as usize).parse().unwrap_or(x);
    }
    let p = 10f64.powi(-digits as i32);
    (x / p).round_ties_even() * p
}

fn round(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let precision = a.opt_int("precision")?;
    let digits = precision.unwrap_or(0);
    let s = a.series("seriesList")?;
    let name = |n: &str| match precision {
        Some(p) => format!("round({n},{p})"),
        None => format!("round({n})"),
    };
    list(map_values(s, Some(("round", digits.to_string())), name, |v| v.map(|v| py_round(v, digits))))
}

fn offset_to_zero(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let s = a.series("seriesList")?;
    list(
        s.into_iter()
            .flat_map(|s| {
                let min = Agg::Min.apply(&s.points());
                let tag = min.map_or_else(|| "None".to_string(), crate::graphite::series::py_repr);
                map_values(vec![s], Some(("offsetToZero", tag)), |n| format!("offsetToZero({n})"), |v| Some(v? - min?))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_round() {
        assert_eq!(py_round(2.5, 0), 2.0);
        assert_eq!(py_round(3.5, 0), 4.0);
        assert_eq!(py_round(2.675, 2), 2.67);
        assert_eq!(py_round(1234.5, -2), 1200.0);
    }

    #[test]
    fn interpolates_inner_runs_only() {
        let v = |x: &[Option<f64>]| x.to_vec();
        let got = interpolated(v(&[None, Some(1.0), None, None, Some(4.0), None]), f64::INFINITY);
        assert_eq!(got, v(&[None, Some(1.0), Some(2.0), Some(3.0), Some(4.0), None]));
        let got = interpolated(v(&[Some(1.0), None, None, Some(4.0)]), 1.0);
        assert_eq!(got, v(&[Some(1.0), None, None, Some(4.0)]));
    }
}
