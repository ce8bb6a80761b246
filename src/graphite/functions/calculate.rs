//! Window and percentile calculations (graphite-web's "Calculate" group).

use super::transform::round6;
use super::{Run, list, transform_each, wall_date};
use crate::graphite::eval::{Args, Context, EvalError, IntOrInterval, Value, bad};
use crate::graphite::series::{Agg, Series, py_g, py_repr, py_sum, xff_ok};

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("movingWindow", moving_window),
    ("movingAverage", |c, a| moving(c, a, "average")),
    ("movingSum", |c, a| moving(c, a, "sum")),
    ("movingMin", |c, a| moving(c, a, "min")),
    ("movingMax", |c, a| moving(c, a, "max")),
    ("movingMedian", |c, a| moving(c, a, "median")),
    ("nPercentile", n_percentile),
    ("exponentialMovingAverage", exponential_moving_average),
    ("linearRegression", linear_regression),
    ("stdev", stdev),
    ("aggregateLine", aggregate_line),
    ("identity", identity),
];

fn moving_window(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let func = a.opt_string("func")?.unwrap_or_else(|| "average".into());
    moving(ctx, a, &func)
}

/// graphite-web's `movingWindow`: refetch from `from - window`, then each
/// output point aggregates the `windowPoints` values before it.
fn moving(ctx: &mut Context<'_>, a: &mut Args<'_>, func: &str) -> Result<Value, EvalError> {
    let agg = Agg::parse(func).ok_or_else(|| bad(format!("unsupported aggregation function: {func}")))?;
    let window = a.int_or_interval("windowSize")?;
    let xff = a.opt_number("xFilesFactor")?;
    let original = a.series("seriesList")?;
    if original.is_empty() {
        return list(vec![]);
    }
    let preview = match &window {
        IntOrInterval::Interval(_, secs) => *secs,
        IntOrInterval::Points(n) => original.iter().map(|s| s.step).max().unwrap_or(1) * n,
    };
    let raw = a.raw("seriesList").cloned().ok_or_else(|| bad("a moving function needs a series argument"))?;
    let previewed = ctx.refetch(&raw, ctx.from - preview, ctx.until)?;
    let mut chars = func.chars();
    let tag_name = format!("moving{}{}", chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or_default(), chars.as_str().to_lowercase());
    list(
        previewed
            .into_iter()
            .map(|mut s| {
                let (name, points, tag) = match &window {
                    IntOrInterval::Interval(text, secs) => {
                        (format!("{tag_name}({},\"{text}\")", s.name), (secs / s.step) as usize, text.clone())
                    }
                    IntOrInterval::Points(n) => (format!("{tag_name}({},{n})", s.name), *n as usize, n.to_string()),
                };
                s.tags.insert(tag_name.clone(), tag);
                let values = s.consolidated();
                let effective = xff.unwrap_or(s.xff);
                let out = (points..values.len())
                    .map(|i| {
                        let window = &values[i - points..i];
                        let non_null = window.iter().flatten().count();
                        if !(non_null > 0 && xff_ok(non_null, points, effective)) {
                            None
                        } else if matches!(agg, Agg::AvgZero | Agg::Multiply) {
                            // graphite-web hands the aggregate only the window's
                            // known values; these two would read its nulls.
                            agg.apply(&window.iter().flatten().map(|v| Some(*v)).collect::<Vec<_>>())
                        } else {
                            agg.apply(window)
                        }
                    })
                    .collect();
                s.start += preview;
                s.path_expression = name.clone();
                s.name = name;
                s.values = out;
                s.vpp = 1;
                s
            })
            .collect(),
    )
}

/// graphite-web's `_getPercentile`.
pub fn percentile(points: &[Option<f64>], n: f64, interpolate: bool) -> Option<f64> {
    let mut sorted: Vec<f64> = points.iter().flatten().copied().collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let fractional = (n / 100.0) * (sorted.len() as f64 + 1.0);
    let mut rank = fractional.trunc() as usize;
    let fraction = fractional - rank as f64;
    if !interpolate {
        rank += fraction.ceil() as usize;
    }
    let mut value = if rank == 0 {
        sorted[0]
    } else if rank > sorted.len() {
        sorted[sorted.len() - 1]
    } else {
        sorted[rank - 1]
    };
    if interpolate && rank < sorted.len() {
        value += fraction * (sorted[rank] - value);
    }
    Some(value)
}

fn n_percentile(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let n = a.number("n")?;
    if n == 0.0 {
        return Err(bad("nPercentile: the requested percent is required to be greater than 0"));
    }
    let tag = a.text("n").unwrap_or_default();
    let series = a.series("seriesList")?;
    let mut out = Vec::new();
    for mut s in series {
        let points = s.points();
        if points.iter().all(Option::is_none) {
            continue;
        }
        let Some(p) = percentile(&points, n, false) else { continue };
        let count = ((s.end - s.start) / s.step).max(0) as usize;
        s.tags.insert("nPercentile".into(), tag.clone());
        s.name = format!("nPercentile({}, {})", s.name, py_g(n));
        s.path_expression = s.name.clone();
        s.values = vec![Some(p); count];
        s.vpp = 1;
        out.push(s);
    }
    list(out)
}

/// graphite-web's `exponentialMovingAverage`: refetched from `from - window`,
/// seeded with the mean of the first window, rounded to 6 decimals.
fn exponential_moving_average(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let window = a.int_or_interval("windowSize")?;
    let original = a.series("seriesList")?;
    if original.is_empty() {
        return list(vec![]);
    }
    let (preview, constant, text) = match &window {
        IntOrInterval::Interval(text, secs) => (*secs, 2.0 / (*secs as f64 + 1.0), format!("\"{text}\"")),
        IntOrInterval::Points(n) => (original.iter().map(|s| s.step).max().unwrap_or(1) * n, 2.0 / (*n as f64 + 1.0), n.to_string()),
    };
    let tag = match &window {
        IntOrInterval::Interval(text, _) => text.clone(),
        IntOrInterval::Points(n) => n.to_string(),
    };
    let raw = a.raw("seriesList").cloned().ok_or_else(|| bad("exponentialMovingAverage needs a series argument"))?;
    let previewed = ctx.refetch(&raw, ctx.from - preview, ctx.until)?;
    let mut out = transform_each(
        previewed,
        Some(("exponentialMovingAverage", tag)),
        |n| format!("exponentialMovingAverage({n},{text})"),
        |s| {
            let points = match window {
                IntOrInterval::Interval(_, secs) => (secs / s.step) as usize,
                IntOrInterval::Points(n) => n as usize,
            };
            let mut ema = Agg::Average.apply(&s.values[..points.min(s.values.len())]).unwrap_or(0.0);
            let mut out = vec![Some(round6(ema))];
            for v in s.values.iter().skip(points) {
                out.push(v.map(|v| {
                    ema = constant * v + (1.0 - constant) * ema;
                    round6(ema)
                }));
            }
            out
        },
    );
    for s in &mut out {
        s.start += preview;
    }
    list(out)
}

/// graphite-web's `_linearRegressionAnalysis`: (factor, offset) of the least
/// squares line through the non-null points, or None.
fn regression(s: &Series) -> Option<(f64, f64)> {
    let known: Vec<(i128, f64)> = s.points().into_iter().enumerate().filter_map(|(i, v)| Some((i as i128, v?))).collect();
    let n = known.len() as i128;
    let sum_i: i128 = known.iter().map(|(i, _)| i).sum();
    let sum_ii: i128 = known.iter().map(|(i, _)| i * i).sum();
    let sum_v = py_sum(&known.iter().map(|(_, v)| *v).collect::<Vec<_>>());
    let sum_iv = py_sum(&known.iter().map(|(i, v)| *i as f64 * v).collect::<Vec<_>>());
    let denominator = (n * sum_ii - sum_i * sum_i) as f64;
    if denominator == 0.0 {
        return None;
    }
    let factor = (n as f64 * sum_iv - sum_i as f64 * sum_v) / denominator / s.step as f64;
    let offset = (sum_ii as f64 * sum_v - sum_iv * sum_i as f64) / denominator - factor * s.start as f64;
    Some((factor, offset))
}

fn linear_regression(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let at = |spec: Option<String>, default: i64| match spec {
        Some(spec) => wall_date(&spec),
        None => Ok(default),
    };
    let from = at(a.opt_string("startSourceAt")?, ctx.from)?;
    let until = at(a.opt_string("endSourceAt")?, ctx.until)?;
    let raw = a.raw("seriesList").cloned().ok_or_else(|| bad("linearRegression needs a series argument"))?;
    let series = a.series("seriesList")?;
    let sources = ctx.refetch(&raw, from, until)?;
    let mut out = Vec::new();
    for (source, mut s) in sources.iter().zip(series) {
        s.tags.insert("linearRegressions".into(), format!("{from}, {until}"));
        let Some((factor, offset)) = regression(source) else { continue };
        s.values = (0..s.values.len()).map(|i| Some(offset + (s.start + i as i64 * s.step) as f64 * factor)).collect();
        s.vpp = 1;
        s.name = format!("linearRegression({}, {from}, {until})", s.name);
        s.path_expression = s.name.clone();
        out.push(s);
    }
    list(out)
}

/// graphite-web's `stdev`: the population deviation over a sliding window
/// of `points`, kept as running sums.
fn stdev(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let points = a.int("points")?;
    if points <= 0 {
        return Err(bad("stdev: points must be positive"));
    }
    let tolerance = a.opt_number("windowTolerance")?.unwrap_or(0.1);
    let s = a.series("seriesList")?;
    list(transform_each(
        s,
        Some(("stdev", points.to_string())),
        |n| format!("stdev({n},{points})"),
        |s| {
            let values = s.points();
            let points = points as usize;
            let (mut valid, mut sum, mut squares) = (0i64, 0.0, 0.0);
            let mut out = Vec::with_capacity(values.len());
            for (i, v) in values.iter().enumerate() {
                if let Some(dropped) = i.checked_sub(points).and_then(|j| values[j]) {
                    valid -= 1;
                    sum -= dropped;
                    squares -= dropped * dropped;
                }
                if let Some(v) = v {
                    valid += 1;
                    sum += v;
                    squares += v * v;
                }
                let ok = valid > 0 && valid as f64 / points as f64 >= tolerance;
                out.push(if ok {
                    Some(((valid as f64 * squares - sum * sum).sqrt()) / valid as f64).filter(|d| !d.is_nan())
                } else {
                    None
                });
            }
            out
        },
    ))
}

fn aggregate_line(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let func = a.opt_string("func")?.unwrap_or_else(|| "average".into());
    let agg = Agg::parse(&func).ok_or_else(|| bad(format!("Unsupported aggregation function: {func}")))?;
    let keep_step = a.flag("keepStep")?;
    let series = a.series("seriesList")?;
    let mut out = Vec::new();
    for s in series {
        let value = agg.apply(&s.points());
        let name = format!("aggregateLine({}, {})", s.name, value.map_or_else(|| "None".into(), py_g));
        let mut line = if keep_step {
            let mut line = s.clone();
            line.values = vec![value; s.values.len()];
            line.vpp = 1;
            line
        } else {
            let text = value.map_or_else(|| "None".into(), py_repr);
            let mut line = super::special::constant_line(ctx, value.unwrap_or(f64::NAN), &text);
            line.values = vec![value; 3];
            line
        };
        line.path_expression = name.clone();
        line.name = name;
        out.push(line);
    }
    list(out)
}

fn identity(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let name = a.string("name")?;
    let values = (ctx.from..ctx.until).step_by(60).map(|t| Some(t as f64)).collect();
    let mut s = Series::new(name.clone(), ctx.from, ctx.until, 60, values, ctx.xff);
    s.path_expression = format!("identity(\"{name}\")");
    list(vec![s])
}
