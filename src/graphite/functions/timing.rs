//! Transforms tied to wall-clock intervals and the request's range
//! (graphite-web's "Transform" group): `hitcount`, `smartSummarize`,
//! `integralByInterval`, `timeStack`, `timeSlice`.

use super::transform::summarize_values;
use super::{Run, list, transform_each, wall_date};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::{Agg, Series, py_sum};
use crate::graphite::timespec;

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("hitcount", hitcount),
    ("smartSummarize", smart_summarize),
    ("integralByInterval", integral_by_interval),
    ("timeStack", time_stack),
    ("timeSlice", time_slice),
];

const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
const DAY: i64 = 86400;

fn interval(text: &str) -> Result<i64, EvalError> {
    timespec::interval(text).map_err(|e| bad(e.to_string()))
}

/// A positive interval (graphite-web divides by it).
fn positive_interval(function: &str, text: &str) -> Result<i64, EvalError> {
    let secs = interval(text)?;
    if secs <= 0 {
        return Err(bad(format!("{function}: interval {text:?} must be positive")));
    }
    Ok(secs)
}

/// Evaluates the call's first argument again from `from` (UTC) to the
/// request's `until`.
fn refetch_from(ctx: &mut Context<'_>, a: &Args<'_>, from: i64) -> Result<Vec<Series>, EvalError> {
    let raw = a.raw("seriesList").cloned().ok_or_else(|| bad(format!("{} needs a series argument", a.function)))?;
    ctx.refetch(&raw, from, ctx.until)
}

fn hitcount(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let text = a.string("intervalString")?;
    let interval = positive_interval("hitcount", &text)?;
    let align = a.flag("alignToInterval")?;
    let mut series = a.series("seriesList")?;
    if align {
        let unit = [DAY, HOUR, MINUTE].into_iter().find(|u| interval >= *u).unwrap_or(1);
        series = refetch_from(ctx, a, ctx.from - ctx.from.rem_euclid(unit))?;
        for s in &mut series {
            s.end = s.start + (s.end - s.start).div_euclid(interval) * interval + interval;
        }
    }
    let name = |n: &str| format!("hitcount({n}, \"{text}\"{})", if align { ", true" } else { "" });
    let mut out = transform_each(series, Some(("hitcount", text.clone())), name, |s| hits(s, interval));
    for s in &mut out {
        (s.start, s.step) = (buckets(s, interval).1, interval);
    }
    list(out)
}

/// hitcount's buckets: how many cover the series, and the first one's start
/// (they end at the series' end).
fn buckets(s: &Series, interval: i64) -> (usize, i64) {
    let count = ((s.end - s.start) as f64 / interval as f64).ceil().max(0.0) as usize;
    (count, s.end - count as i64 * interval)
}

/// graphite-web's hitcount sums: each value, a rate over its step, spread
/// over the buckets its span overlaps.
fn hits(s: &Series, interval: i64) -> Vec<Option<f64>> {
    let step = s.step;
    let (count, start) = buckets(s, interval);
    let mut sums: Vec<Vec<f64>> = vec![Vec::new(); count];
    for (i, v) in s.points().into_iter().enumerate() {
        let Some(v) = v else { continue };
        let t = s.start + i as i64 * step;
        let (first, first_mod) = ((t - start).div_euclid(interval), (t - start).rem_euclid(interval));
        let (mut last, mut last_mod) = ((t + step - start).div_euclid(interval), (t + step - start).rem_euclid(interval));
        if last >= count as i64 {
            (last, last_mod) = (count as i64 - 1, interval);
        }
        if first == last {
            if first >= 0 {
                sums[first as usize].push(v * (last_mod - first_mod) as f64);
            }
            continue;
        }
        if first >= 0 {
            sums[first as usize].push(v * (interval - first_mod) as f64);
        }
        // Python's negative indexes read from the end.
        let mut add = |j: i64, hits: f64| {
            let j = if j < 0 { j + count as i64 } else { j };
            if let Some(b) = usize::try_from(j).ok().and_then(|j| sums.get_mut(j)) {
                b.push(hits);
            }
        };
        for j in (first + 1)..last {
            add(j, v * interval as f64);
        }
        if last_mod > 0 {
            add(last, v * last_mod as f64);
        }
    }
    sums.iter().map(|b| (!b.is_empty()).then(|| py_sum(b))).collect()
}

/// The start of `t`'s calendar unit (UTC) for smartSummarize's `alignTo`.
fn align_to(t: i64, unit: &str) -> Result<i64, EvalError> {
    let floor = |u: i64| t - t.rem_euclid(u);
    let (y, m, _) = timespec::civil_from_days(t.div_euclid(DAY));
    let day = |y, m, d| timespec::civil_day(y, m, d).map(|d| d * DAY).ok_or_else(|| bad("bad date"));
    Ok(if unit.starts_with('s') {
        t
    } else if unit.starts_with("min") {
        floor(MINUTE)
    } else if unit.starts_with('h') {
        floor(HOUR)
    } else if unit.starts_with('d') {
        floor(DAY)
    } else if unit.starts_with('w') {
        let iso = match unit.chars().last() {
            Some(c) if c.is_ascii_digit() => i64::from(c as u8 - b'0'),
            _ => 1,
        };
        // 1970-01-01 was a Thursday (ISO weekday 4).
        let days = t.div_euclid(DAY);
        let weekday = (days + 3).rem_euclid(7) + 1;
        (days - (weekday - iso).rem_euclid(7)) * DAY
    } else if unit.starts_with("mon") {
        day(y, m, 1)?
    } else if unit.starts_with('y') {
        day(y, 1, 1)?
    } else {
        return Err(bad(format!("Invalid offset unit '{unit}'")));
    })
}

fn smart_summarize(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let text = a.string("intervalString")?;
    let interval = positive_interval("smartSummarize", &text)?;
    let func_name = a.opt_string("func")?.unwrap_or_else(|| "sum".into());
    let func = Agg::parse(&func_name).ok_or_else(|| bad(format!("unsupported aggregation function: {func_name}")))?;
    // A boolean alignTo is the deprecated alignToFrom, ignored.
    let align = a.opt_string("alignTo").unwrap_or(None);
    let mut series = a.series("seriesList")?;
    if let Some(unit) = align {
        series = refetch_from(ctx, a, align_to(ctx.from, &unit)?)?;
    }
    list(
        series
            .into_iter()
            .map(|mut s| {
                let (values, end) = summarize_values(&s, func, interval, s.start, s.end);
                s.tags.insert("smartSummarize".into(), text.clone());
                s.tags.insert("smartSummarizeFunction".into(), func_name.clone());
                s.name = format!("smartSummarize({}, \"{text}\", \"{func_name}\")", s.name);
                s.path_expression = s.name.clone();
                (s.end, s.step, s.values, s.vpp) = (end, interval, values, 1);
                s
            })
            .collect(),
    )
}

fn integral_by_interval(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let unit = a.string("intervalUnit")?;
    let duration = interval(&unit)?.abs();
    if duration == 0 {
        return Err(bad("integralByInterval: the interval must not be zero"));
    }
    let from = ctx.from;
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        Some(("integralByInterval", unit.clone())),
        |n| format!("integralByInterval({n},'{unit}')"),
        |s| {
            let (mut t, mut current) = (s.start, 0.0);
            s.points()
                .into_iter()
                .map(|v| {
                    if (t - from).div_euclid(duration) != (t - from - s.step).div_euclid(duration) {
                        current = 0.0;
                    }
                    current += v.unwrap_or(0.0);
                    t += s.step;
                    Some(current)
                })
                .collect()
        },
    ))
}

fn time_stack(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let mut unit = a.opt_string("timeShiftUnit")?.unwrap_or_else(|| "1d".into());
    if unit.starts_with(|c: char| c.is_ascii_digit()) {
        unit = format!("-{unit}");
    }
    let delta = interval(&unit)?;
    let first = a.opt_int("timeShiftStart")?.unwrap_or(0);
    let last = a.opt_int("timeShiftEnd")?.unwrap_or(7);
    let series = a.series("seriesList")?;
    let Some(base) = series.first() else { return list(vec![]) };
    let (start, end) = (base.start, base.end);
    let raw = a.raw("seriesList").cloned().ok_or_else(|| bad("timeStack needs a series argument"))?;
    let mut out = Vec::new();
    for shift in first..last {
        for mut s in ctx.refetch(&raw, ctx.from + delta * shift, ctx.until + delta * shift)? {
            s.tags.insert("timeShiftUnit".into(), unit.clone());
            s.tags.insert("timeShift".into(), shift.to_string());
            s.name = format!("timeShift({}, {unit}, {shift})", s.name);
            s.path_expression = s.name.clone();
            (s.start, s.end) = (start, end);
            out.push(s);
        }
    }
    list(out)
}

fn time_slice(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let start = wall_date(&a.string("startSliceAt")?)?;
    let end = wall_date(&a.opt_string("endSliceAt")?.unwrap_or_else(|| "now".into()))?;
    let from = ctx.from;
    let series = a.series("seriesList")?;
    list(
        series
            .into_iter()
            .map(|mut s| {
                s.tags.insert("timeSliceStart".into(), start.to_string());
                s.tags.insert("timeSliceEnd".into(), end.to_string());
                s.name = format!("timeSlice({}, {start}, {end})", s.name);
                // graphite-web's clock starts at the request's `from`, not the series' start.
                let mut t = from;
                s.values = s
                    .points()
                    .into_iter()
                    .map(|v| {
                        let kept = v.filter(|_| (start..=end).contains(&t));
                        t += s.step;
                        kept
                    })
                    .collect();
                s.vpp = 1;
                s
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hitcount_spreads_rates_over_buckets() {
        // compat-spec 4.10 #20: step 60, rate 1 at t=0..240, "2min" buckets.
        let s = Series::new("x", 0, 300, 60, vec![Some(1.0); 5], 0.0);
        assert_eq!(buckets(&s, 120), (3, -60));
        assert_eq!(hits(&s, 120), vec![Some(60.0), Some(120.0), Some(120.0)]);
    }

    #[test]
    fn calendar_alignment() {
        let t = 1_700_000_000; // Tue 2023-11-14 22:13:20 UTC
        assert_eq!(align_to(t, "hours").unwrap(), 1_699_999_200);
        assert_eq!(align_to(t, "days").unwrap(), 1_699_920_000);
        assert_eq!(align_to(t, "weeks").unwrap(), 1_699_920_000 - DAY);
        assert_eq!(align_to(t, "months").unwrap(), 1_698_796_800);
        assert_eq!(align_to(t, "years").unwrap(), 1_672_531_200);
    }
}
