//! Names built from values (graphite-web's `cactiStyle`, `legendValue`,
//! `aliasQuery`), with Python's `%` formatting and `format_units`.

use super::{Run, list};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::{Agg, Series, py_g, py_repr};

pub const FUNCTIONS: &[(&str, Run)] = &[("cactiStyle", cacti_style), ("legendValue", legend_value), ("aliasQuery", alias_query)];

/// graphite-web's `format_units(v, system=...)` (glyph.py): the value scaled
/// to the largest prefix it reaches, and that prefix.
fn format_units(v: f64, system: &str) -> (f64, &'static str) {
    const SI: &[(&str, f64)] = &[("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)];
    const BINARY: &[(&str, f64)] =
        &[("Pi", 1125899906842624.0), ("Ti", 1099511627776.0), ("Gi", 1073741824.0), ("Mi", 1048576.0), ("Ki", 1024.0)];
    let whole = |x: f64| if x - x.floor() < 1e-11 && v > 1.0 { x.floor() } else { x };
    let units = if system == "binary" { BINARY } else { SI };
    match units.iter().find(|(_, size)| v.abs() >= *size) {
        Some((prefix, size)) => (whole(v / size), prefix),
        None => (whole(v), ""),
    }
}

/// Python's `"%.2f"`.
fn fixed2(v: f64) -> String {
    py_fixed(v, 2)
}

fn py_fixed(v: f64, digits: usize) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    format!("{v:.digits$}")
}

/// graphite-web's `cactiStyle`: `name Current:x Max:y Min:z`, columns padded.
fn cacti_style(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let system = a.opt_string("system")?.filter(|s| !s.is_empty());
    let units = a.opt_string("units")?.filter(|s| !s.is_empty());
    let mut series = a.series("seriesList")?;
    let fmt = |x: f64| match (&system, &units) {
        (Some(sys), Some(u)) => {
            let (v, prefix) = format_units(x, sys);
            format!("{} {prefix}{u}", fixed2(v))
        }
        (Some(sys), None) => {
            let (v, prefix) = format_units(x, sys);
            format!("{}{prefix}", fixed2(v))
        }
        (None, Some(u)) => format!("{} {u}", fixed2(x)),
        (None, None) => fixed2(x),
    };
    let stats: Vec<[Option<f64>; 3]> = series
        .iter()
        .map(|s| {
            let p = s.points();
            [Agg::Last.apply(&p), Agg::Max.apply(&p), Agg::Min.apply(&p)]
        })
        .collect();
    // Widths use `int(value or 3)`, as graphite-web does.
    let width =
        |k: usize| stats.iter().map(|st| fmt(st[k].filter(|v| *v != 0.0).unwrap_or(3.0).trunc()).chars().count()).max().unwrap_or(0) + 3;
    let widths = [width(0), width(1), width(2)];
    let name_width = series.iter().map(|s| s.name.chars().count()).max().unwrap_or(0);
    for (s, st) in series.iter_mut().zip(&stats) {
        let cell = |k: usize| st[k].map_or_else(|| "nan".to_string(), &fmt);
        s.name = format!(
            "{:<name_width$} Current:{:<w0$} Max:{:<w1$} Min:{:<w2$} ",
            s.name,
            cell(0),
            cell(1),
            cell(2),
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    list(series)
}

/// An aggregation as `legendValue` prints it: Python's `str()` of the result.
fn legend_text(agg: Agg, s: &Series) -> Option<String> {
    let v = agg.apply(&s.points())?;
    Some(if agg == Agg::Count { format!("{}", v as i64) } else { py_repr(v) })
}

fn legend_value(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let mut types: Vec<String> =
        a.rest("valuesTypes").into_iter().filter_map(|v| if let Value::Str(s) = v { Some(s) } else { None }).collect();
    let system = types.last().filter(|t| *t == "si" || *t == "binary").cloned();
    if system.is_some() {
        types.pop();
    }
    let mut series = a.series("seriesList")?;
    for t in &types {
        // getAggFunc knows no `...Series` names.
        let agg = Agg::parse(t).filter(|_| !t.ends_with("Series"));
        for s in &mut series {
            let text = match agg {
                Some(agg) => legend_text(agg, s),
                None => Some("(?)".into()),
            };
            s.name = match &system {
                None => format!("{} ({t}: {})", s.name, text.unwrap_or_else(|| "None".into())),
                Some(sys) => {
                    let formatted = match (agg, text) {
                        (None, _) => "(?)".to_string(),
                        (Some(_), None) => "None".to_string(),
                        (Some(agg), Some(_)) => {
                            let (v, prefix) = format_units(agg.apply(&s.points()).unwrap_or_default(), sys);
                            format!("{}{prefix}", fixed2(v))
                        }
                    };
                    format!("{:<20}{t:<5}{formatted:<10}", s.name)
                }
            };
        }
    }
    list(series)
}

/// Python's `template % value` for one number: `%s`, `%d`/`%i`, `%f`/`%.Nf`,
/// `%g`, `%%`.
fn py_percent(template: &str, v: f64) -> Result<String, EvalError> {
    let re = regex::Regex::new(r"%(\.(\d+))?([sdifgr%])").expect("static regex");
    let mut used = 0;
    let out = re.replace_all(template, |c: &regex::Captures<'_>| {
        let digits = c.get(2).and_then(|d| d.as_str().parse().ok());
        match &c[3] {
            "%" => "%".to_string(),
            conversion => {
                used += 1;
                match conversion {
                    "s" | "r" => py_repr(v),
                    "d" | "i" => format!("{}", v.trunc() as i64),
                    "f" => py_fixed(v, digits.unwrap_or(6)),
                    _ => py_g(v),
                }
            }
        }
    });
    if used != 1 {
        return Err(bad(format!("aliasQuery: {template:?} must format exactly one value")));
    }
    Ok(out.into_owned())
}

/// graphite-web's `aliasQuery`: per series, the regex turns its name into a
/// target whose last value fills `newName`.
fn alias_query(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let re = super::filter::regex(&a.string("search")?)?;
    let replace = super::special::python_replacement(&a.string("replace")?);
    let template = a.string("newName")?;
    let mut series = a.series("seriesList")?;
    for s in &mut series {
        let query = re.replace_all(&s.name, replace.as_str()).into_owned();
        let parsed = crate::graphite::expr::parse(&query).map_err(|e| bad(e.to_string()))?;
        let found = ctx.target(&parsed)?;
        let first = found.first().ok_or_else(|| bad(format!("No series found with query: {query}")))?;
        let current = Agg::Last.apply(&first.points()).ok_or_else(|| bad(format!("Cannot get last value of series: {}", first.name)))?;
        s.name = py_percent(&template, current)?;
    }
    list(series)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_percent_formats() {
        assert_eq!(format_units(1500.0, "si"), (1.5, "k"));
        assert_eq!(format_units(2048.0, "binary"), (2.0, "Ki"));
        assert_eq!(format_units(12.5, "si"), (12.5, ""));
        assert_eq!(py_percent("%d cpus", 3.7).unwrap(), "3 cpus");
        assert_eq!(py_percent("at %.1f%%", 2.25).unwrap(), "at 2.2%");
        assert_eq!(py_percent("%s", 2.0).unwrap(), "2.0");
        assert!(py_percent("none", 1.0).is_err());
    }
}
