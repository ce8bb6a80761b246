//! Window and percentile calculations (graphite-web's "Calculate" group).

use super::{Run, list};
use crate::graphite::eval::{Args, Context, EvalError, IntOrInterval, Value, bad};
use crate::graphite::series::{Agg, py_g, xff_ok};

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("movingWindow", moving_window),
    ("movingAverage", |c, a| moving(c, a, "average")),
    ("movingSum", |c, a| moving(c, a, "sum")),
    ("movingMin", |c, a| moving(c, a, "min")),
    ("movingMax", |c, a| moving(c, a, "max")),
    ("movingMedian", |c, a| moving(c, a, "median")),
    ("nPercentile", n_percentile),
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
                let values = s.points();
                let effective = xff.unwrap_or(s.xff);
                let out = (points..values.len())
                    .map(|i| {
                        let window: Vec<Option<f64>> = values[i - points..i].to_vec();
                        let non_null = window.iter().flatten().count();
                        if non_null > 0 && xff_ok(non_null, points, effective) {
                            agg.apply(&window.iter().flatten().map(|v| Some(*v)).collect::<Vec<_>>())
                        } else {
                            None
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
