//! Holt-Winters triple exponential smoothing (graphite-web's
//! `holtWinters*` functions, "Calculate" group). The analysis runs over the
//! series refetched from `from - bootstrapInterval`; only the part from
//! `from` on is returned. graphite-web's analysis tags the input series
//! through one shared dict, so every result carries the tags of every step
//! (`holtWintersForecast`, `holtWintersDeviation`, ...), all `"1"`.

use super::{Run, list};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::Series;
use crate::graphite::timespec;

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("holtWintersForecast", forecast),
    ("holtWintersConfidenceBands", confidence_bands),
    ("holtWintersConfidenceArea", confidence_area),
    ("holtWintersAberration", aberration),
];

const ALPHA: f64 = 0.1;
const GAMMA: f64 = 0.1;
const BETA: f64 = 0.0035;

/// Predictions and deviations, one per point (`holtWintersAnalysis`).
struct Analysis {
    predictions: Vec<Option<f64>>,
    deviations: Vec<f64>,
}

fn analyse(values: &[Option<f64>], season: usize) -> Analysis {
    let mut intercepts: Vec<Option<f64>> = Vec::with_capacity(values.len());
    let mut slopes: Vec<f64> = Vec::with_capacity(values.len());
    let mut seasonals: Vec<f64> = Vec::with_capacity(values.len());
    let mut predictions = Vec::with_capacity(values.len());
    let mut deviations: Vec<f64> = Vec::with_capacity(values.len());
    let last_of = |list: &[f64], i: usize| i.checked_sub(season).map_or(0.0, |j| list[j]);
    let mut next_prediction: Option<f64> = None;
    for (i, actual) in values.iter().enumerate() {
        let Some(actual) = *actual else {
            // A missing value breaks the math: the next prediction is unknown.
            intercepts.push(None);
            slopes.push(0.0);
            seasonals.push(0.0);
            predictions.push(next_prediction.take());
            deviations.push(0.0);
            continue;
        };
        let (last_intercept, last_slope, prediction) =
            if i == 0 { (actual, 0.0, Some(actual)) } else { (intercepts[i - 1].unwrap_or(actual), slopes[i - 1], next_prediction) };
        let last_seasonal = last_of(&seasonals, i);
        let next_last_seasonal = last_of(&seasonals, i + 1);
        let last_deviation = last_of(&deviations, i);
        let intercept = ALPHA * (actual - last_seasonal) + (1.0 - ALPHA) * (last_intercept + last_slope);
        let slope = BETA * (intercept - last_intercept) + (1.0 - BETA) * last_slope;
        let seasonal = GAMMA * (actual - intercept) + (1.0 - GAMMA) * last_seasonal;
        next_prediction = Some(intercept + slope + next_last_seasonal);
        let deviation = GAMMA * (actual - prediction.unwrap_or(0.0)).abs() + (1.0 - GAMMA) * last_deviation;
        intercepts.push(Some(intercept));
        slopes.push(slope);
        seasonals.push(seasonal);
        predictions.push(prediction);
        deviations.push(deviation);
    }
    Analysis { predictions, deviations }
}

/// The bootstrap and seasonality arguments, in seconds.
fn intervals(a: &Args<'_>) -> Result<(i64, i64), EvalError> {
    let secs = |name: &str, default: &str| {
        let text = a.opt_string(name)?.unwrap_or_else(|| default.to_string());
        timespec::interval(&text).map_err(|e| bad(e.to_string()))
    };
    Ok((secs("bootstrapInterval", "7d")?, secs("seasonality", "1d")?))
}

/// One refetched series with its analysis, cut to start at `from`.
struct Fitted {
    series: Series,
    start: i64,
    predictions: Vec<Option<f64>>,
    deviations: Vec<f64>,
}

/// Refetches the first argument over the bootstrap and analyses each series.
fn fit(ctx: &mut Context<'_>, a: &Args<'_>) -> Result<Vec<Fitted>, EvalError> {
    let (bootstrap, seasonality) = intervals(a)?;
    let raw = a.raw("seriesList").cloned().ok_or_else(|| bad(format!("{} needs a series argument", a.function)))?;
    let previewed = ctx.refetch(&raw, ctx.from - bootstrap, ctx.until)?;
    let mut out = Vec::new();
    for mut series in previewed {
        let season = seasonality.div_euclid(series.step);
        if season < 2 {
            return Err(bad(format!("{}: the seasonality must span at least two points", a.function)));
        }
        let analysis = analyse(&series.points(), season as usize);
        let skip = bootstrap.div_euclid(series.step).max(0) as usize;
        series.tags.insert("holtWintersForecast".into(), "1".into());
        series.tags.insert("holtWintersDeviation".into(), "1".into());
        out.push(Fitted {
            start: series.start + bootstrap,
            predictions: analysis.predictions.into_iter().skip(skip).collect(),
            deviations: analysis.deviations.into_iter().skip(skip).collect(),
            series,
        });
    }
    Ok(out)
}

/// A result over a fitted series' range from `from` on.
fn derived(f: &Fitted, name: String, values: Vec<Option<f64>>) -> Series {
    let s = &f.series;
    let mut out = Series::new(name, f.start, s.end, s.step, values, s.xff);
    out.tags = s.tags.clone();
    out
}

fn forecast(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let fitted = fit(ctx, a)?;
    list(fitted.iter().map(|f| derived(f, format!("holtWintersForecast({})", f.series.name), f.predictions.clone())).collect())
}

/// Lower and upper bands of every series, in that order.
fn bands(ctx: &mut Context<'_>, a: &Args<'_>) -> Result<Vec<Series>, EvalError> {
    let delta = a.opt_int("delta")?.unwrap_or(3) as f64;
    let mut out = Vec::new();
    for mut f in fit(ctx, a)? {
        f.series.tags.insert("holtWintersConfidenceUpper".into(), "1".into());
        f.series.tags.insert("holtWintersConfidenceLower".into(), "1".into());
        let band = |sign: f64| -> Vec<Option<f64>> {
            f.predictions.iter().zip(&f.deviations).map(|(p, d)| p.map(|p| p + sign * delta * d)).collect()
        };
        for (label, sign) in [("Lower", -1.0), ("Upper", 1.0)] {
            let mut s = derived(&f, format!("holtWintersConfidence{label}({})", f.series.name), band(sign));
            s.path_expression = f.series.path_expression.clone();
            out.push(s);
        }
    }
    Ok(out)
}

fn confidence_bands(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    list(bands(ctx, a)?)
}

/// The bands as `areaBetween` leaves them, renamed `holtWintersConfidenceArea(...)`.
fn confidence_area(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let mut series = bands(ctx, a)?;
    if series.len() != 2 {
        return Err(bad("areaBetween series argument must reference *exactly* 2 series"));
    }
    let name = format!("holtWintersConfidenceArea({})", series[1].path_expression);
    for s in &mut series {
        s.tags.insert("holtWintersConfidenceArea".into(), "1".into());
        s.name = name.clone();
        s.path_expression = name.clone();
    }
    list(series)
}

fn aberration(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let bands = bands(ctx, a)?;
    let series = a.series("seriesList")?;
    let band = |label: &str, name: &str| {
        let wanted = format!("holtWintersConfidence{label}({name})");
        // graphite-web keys the bands by name: the last of a name wins.
        bands.iter().rev().find(|b| b.name == wanted).map(Series::points).ok_or_else(|| EvalError::Internal(format!("KeyError: {wanted}")))
    };
    let mut out = Vec::new();
    for mut s in series {
        let (lower, upper) = (band("Lower", &s.name)?, band("Upper", &s.name)?);
        let mut values = Vec::new();
        for (i, v) in s.points().into_iter().enumerate() {
            let (Some(l), Some(u)) = (lower.get(i), upper.get(i)) else {
                return Err(EvalError::Internal("holtWintersAberration: list index out of range".into()));
            };
            values.push(Some(match v {
                Some(v) if u.is_some_and(|u| v > u) => v - u.unwrap_or_default(),
                Some(v) if l.is_some_and(|l| v < l) => v - l.unwrap_or_default(),
                _ => 0.0,
            }));
        }
        s.tags.insert("holtWintersAberration".into(), "1".into());
        let name = format!("holtWintersAberration({})", s.name);
        let mut result = Series::new(name, s.start, s.end, s.step, values, s.xff);
        result.tags = s.tags;
        out.push(result);
    }
    list(out)
}

#[cfg(test)]
mod tests {
    use super::analyse;

    #[test]
    fn seeds_with_the_first_value_and_resets_after_a_null() {
        let a = analyse(&[Some(10.0), Some(12.0), None, Some(11.0), Some(13.0)], 2);
        assert_eq!(a.predictions[0], Some(10.0));
        assert!(a.predictions[1].is_some());
        // The point after a null has no prediction.
        assert_eq!(a.predictions[3], None);
        assert_eq!(a.deviations[2], 0.0);
        assert!(a.predictions[4].is_some());
    }
}
