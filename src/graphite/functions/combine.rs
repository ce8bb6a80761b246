//! Functions that combine several series (graphite-web's "Combine" group).

use std::collections::HashMap;

use super::calculate::percentile;
use super::transform::safe_pow;
use super::{Run, list};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::{Agg, Series, common_tags, map_rows, normalize, path_expressions, py_g, py_max, py_min};

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("aggregate", aggregate_fn),
    ("sumSeries", |c, a| by_name(c, a, "sum")),
    ("sum", |c, a| by_name(c, a, "sum")),
    ("averageSeries", |c, a| by_name(c, a, "average")),
    ("avg", |c, a| by_name(c, a, "average")),
    ("minSeries", |c, a| by_name(c, a, "min")),
    ("maxSeries", |c, a| by_name(c, a, "max")),
    ("diffSeries", |c, a| by_name(c, a, "diff")),
    ("stddevSeries", |c, a| by_name(c, a, "stddev")),
    ("rangeOfSeries", |c, a| by_name(c, a, "rangeOf")),
    ("multiplySeries", multiply_series),
    ("countSeries", count_series),
    ("group", group),
    ("divideSeries", divide_series),
    ("asPercent", as_percent),
    ("groupByNode", group_by_node),
    ("groupByNodes", group_by_nodes),
    ("sumSeriesWithWildcards", |c, a| with_wildcards(c, a, "sum")),
    ("averageSeriesWithWildcards", |c, a| with_wildcards(c, a, "average")),
    ("multiplySeriesWithWildcards", |c, a| with_wildcards(c, a, "multiply")),
    ("aggregateWithWildcards", aggregate_with_wildcards),
    ("percentileOfSeries", percentile_of_series),
    ("groupByTags", group_by_tags),
    ("powSeries", pow_series),
    ("pct", as_percent),
];

/// graphite-web's `aggregate(seriesList, func, xFilesFactor)` over one list.
pub fn aggregate(ctx: &Context<'_>, mut series: Vec<Series>, func: &str, xff: Option<f64>) -> Result<Vec<Series>, EvalError> {
    let short = func.strip_suffix("Series").unwrap_or(func);
    let agg = Agg::parse(short).ok_or_else(|| bad(format!("unsupported aggregation function: {func}")))?;
    let Some((start, end, step)) = normalize(&mut series) else { return Ok(vec![]) };
    let xff = xff.unwrap_or(ctx.xff);
    let name = format!("{short}Series({})", path_expressions(&series));
    let values = columnar(&series, agg, xff).unwrap_or_else(|| {
        map_rows(&series, |row| {
            let non_null = row.iter().flatten().count();
            if non_null > 0 && non_null as f64 / row.len() as f64 >= xff { agg.apply(row) } else { None }
        })
    });
    let mut tags = common_tags(&series, &name);
    tags.insert("aggregatedBy".into(), short.to_string());
    let mut out = Series::new(name, start, end, step, values, xff);
    out.tags = tags;
    Ok(vec![out])
}

/// [`aggregate`]'s rows for the aggregates that fold left to right (sum,
/// average, min, max, count), computed series by series into one accumulator
/// per row instead of row by row: the same operations in the same order, so the
/// same bits, but each series is read straight through once. `None` for the
/// other aggregates.
fn columnar(series: &[Series], agg: Agg, xff: f64) -> Option<Vec<Option<f64>>> {
    let fold: fn(f64, f64) -> f64 = match agg {
        Agg::Sum | Agg::Average | Agg::Count => |a, b| a + b,
        Agg::Min => py_min,
        Agg::Max => py_max,
        _ => return None,
    };
    let columns: Vec<_> = series.iter().map(Series::consolidated).collect();
    let len = columns.iter().map(|c| c.len()).max().unwrap_or(0);
    // Per row: the known values seen and the fold so far (a sum starts from 0,
    // as Python's sum() does; min and max from the first known value).
    let mut known = vec![0usize; len];
    let mut acc = vec![0.0f64; len];
    for column in &columns {
        for ((v, n), a) in column.iter().zip(known.iter_mut()).zip(acc.iter_mut()) {
            if let Some(v) = *v {
                *a = if *n == 0 && matches!(agg, Agg::Min | Agg::Max) { v } else { fold(*a, v) };
                *n += 1;
            }
        }
    }
    let rows = series.len() as f64;
    Some(
        known
            .into_iter()
            .zip(acc)
            .map(|(n, a)| {
                (n > 0 && n as f64 / rows >= xff).then(|| match agg {
                    Agg::Average => a / n as f64,
                    Agg::Count => n as f64,
                    _ => a,
                })
            })
            .collect(),
    )
}

fn flatten(lists: Vec<Vec<Series>>) -> Vec<Series> {
    lists.into_iter().flatten().collect()
}

fn by_name(ctx: &mut Context<'_>, a: &mut Args<'_>, func: &str) -> Result<Value, EvalError> {
    let series = flatten(a.series_lists("seriesLists")?);
    list(aggregate(ctx, series, func, None)?)
}

fn aggregate_fn(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let func = a.string("func")?;
    let xff = a.opt_number("xFilesFactor")?;
    let series = a.series("seriesList")?;
    list(aggregate(ctx, series, &func, xff)?)
}

fn multiply_series(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let lists = a.series_lists("seriesLists")?;
    if lists.len() == 1 && lists[0].len() == 1 {
        return list(flatten(lists));
    }
    list(aggregate(ctx, flatten(lists), "multiply", None)?)
}

fn count_series(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let lists = a.series_lists("seriesLists")?;
    if lists.is_empty() {
        let mut line = super::special::constant_line(ctx, 0.0, "0");
        line.path_expression = "countSeries()".into();
        return list(vec![line]);
    }
    let mut series = flatten(lists);
    let Some((start, end, step)) = normalize(&mut series) else { return list(vec![]) };
    let name = format!("countSeries({})", path_expressions(&series));
    let values = map_rows(&series, |row| Some(row.len() as f64));
    let mut out = Series::new(name.clone(), start, end, step, values, ctx.xff);
    out.path_expression = name;
    list(vec![out])
}

fn group(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    list(flatten(a.series_lists("seriesLists")?))
}

fn divide_series(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let divisors = a.series("divisorSeries")?;
    let dividends = a.series("dividendSeriesList")?;
    list(divide(ctx, dividends, divisors)?)
}

/// graphite-web's `divideSeries` over evaluated lists.
pub fn divide(ctx: &Context<'_>, dividends: Vec<Series>, divisors: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    if divisors.is_empty() {
        return Ok(dividends
            .into_iter()
            .map(|mut s| {
                s.name = format!("divideSeries({},MISSING)", s.name);
                s.path_expression = s.name.clone();
                s.values = vec![None; s.values.len()];
                s
            })
            .collect());
    }
    if divisors.len() > 1 {
        return Err(bad(format!("divideSeries second argument must reference exactly 1 series (got {})", divisors.len())));
    }
    let divisor = &divisors[0];
    let mut out = Vec::new();
    for dividend in dividends {
        let name = format!("divideSeries({},{})", dividend.name, divisor.name);
        let mut pair = vec![dividend, divisor.clone()];
        let Some((start, end, step)) = normalize(&mut pair) else { continue };
        let values = map_rows(&pair, |r| safe_div(r[0], r[1]));
        out.push(Series::new(name, start, end, step, values, ctx.xff));
    }
    Ok(out)
}

pub fn safe_div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

fn percent(v: Option<f64>, total: Option<f64>) -> Option<f64> {
    safe_div(v, total).map(|q| q * 100.0)
}

/// `asPercent`'s `total`: none, a number (with its text), or series.
pub enum Total {
    None,
    Number(f64, String),
    List(Vec<Series>),
}

fn as_percent(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let nodes = a.rest("nodes");
    let total = match (a.opt_number("total").ok().flatten(), a.text("total")) {
        (Some(t), Some(text)) => Total::Number(t, text),
        _ => a.opt_series("total")?.map_or(Total::None, Total::List),
    };
    let series = a.series("seriesList")?;
    list(as_percent_of(ctx, series, total, &nodes)?)
}

/// graphite-web's `asPercent` over evaluated arguments.
pub fn as_percent_of(ctx: &Context<'_>, mut series: Vec<Series>, total: Total, nodes: &[Value]) -> Result<Vec<Series>, EvalError> {
    normalize(&mut series);
    if !nodes.is_empty() {
        return as_percent_by_nodes(ctx, series, total, nodes);
    }
    let xff = ctx.xff;
    let mut out = Vec::new();
    match total {
        Total::Number(t, text) => {
            for s in &series {
                let values = s.points().into_iter().map(|v| percent(v, Some(t))).collect();
                out.push(Series::new(format!("asPercent({},{text})", s.name), s.start, s.end, s.step, values, xff));
            }
        }
        Total::List(total) if total.len() == series.len() => {
            let mut left = series;
            let mut right = total;
            left.sort_by(|x, y| x.name.cmp(&y.name));
            right.sort_by(|x, y| x.name.cmp(&y.name));
            for (s1, s2) in left.into_iter().zip(right) {
                out.extend(percent_pair(s1, s2, xff));
            }
        }
        Total::List(total) if total.len() == 1 => {
            let mut all: Vec<Series> = series.into_iter().chain(total).collect();
            normalize(&mut all);
            let total = all.pop().expect("one total");
            let totals = total.points();
            for s in &all {
                out.push(percent_of_values(s, &totals, &total.name, xff));
            }
        }
        Total::List(_) => {
            return Err(bad(
                "asPercent second argument must be missing, a single digit, reference exactly 1 series or reference the same number of series as the first argument",
            ));
        }
        Total::None => {
            let totals: Vec<Option<f64>> = map_rows(&series, |r| Agg::Sum.apply(r));
            let text = format!("sumSeries({})", path_expressions(&series));
            for s in &series {
                out.push(percent_of_values(s, &totals, &text, xff));
            }
        }
    }
    Ok(out)
}

/// `asPercent(s,<text>)` against a row of totals, zipped longest.
fn percent_of_values(s: &Series, totals: &[Option<f64>], text: &str, xff: f64) -> Series {
    let points = s.points();
    let len = points.len().max(totals.len());
    let values = (0..len).map(|i| percent(points.get(i).copied().flatten(), totals.get(i).copied().flatten())).collect();
    Series::new(format!("asPercent({},{text})", s.name), s.start, s.end, s.step, values, xff)
}

/// `asPercent(s1,s2)` over the two normalized together.
fn percent_pair(s1: Series, s2: Series, xff: f64) -> Option<Series> {
    let name = format!("asPercent({},{})", s1.name, s2.name);
    let mut pair = vec![s1, s2];
    let (start, end, step) = normalize(&mut pair)?;
    let values = map_rows(&pair, |r| percent(r[0], r[1]));
    Some(Series::new(name, start, end, step, values, xff))
}

/// The sum of a group (`sumSeries(...)`), or its only member; records the
/// range of the normalize it ran.
fn group_total(members: Vec<Series>, xff: f64, last: &mut Option<(i64, i64, i64)>) -> Series {
    if members.len() == 1 {
        return members.into_iter().next().expect("one member");
    }
    let name = format!("sumSeries({})", path_expressions(&members));
    let mut members = members;
    let range = normalize(&mut members).expect("a non-empty group");
    *last = Some(range);
    let values = map_rows(&members, |r| Agg::Sum.apply(r));
    Series::new(name, range.0, range.1, range.2, values, xff)
}

/// graphite-web's `asPercent` nodes branch: series and totals grouped by
/// node key; a key missing on one side gives an all-null `MISSING` series
/// spanning the range of the last normalize graphite-web happened to run.
fn as_percent_by_nodes(ctx: &Context<'_>, series: Vec<Series>, total: Total, nodes: &[Value]) -> Result<Vec<Series>, EvalError> {
    let xff = ctx.xff;
    let groups = group_by(series, |s| agg_key(s, nodes));
    let mut keys: Vec<String> = groups.iter().map(|(k, _)| k.clone()).collect();
    let mut last = None;
    let mut totals: HashMap<String, Series> = HashMap::new();
    match total {
        Total::None => {
            for (key, members) in &groups {
                totals.insert(key.clone(), group_total(members.clone(), xff, &mut last));
            }
        }
        Total::List(list) => {
            for (key, members) in group_by(list, |s| agg_key(s, nodes)) {
                if !keys.contains(&key) {
                    keys.push(key.clone());
                }
                totals.insert(key, group_total(members, xff, &mut last));
            }
        }
        Total::Number(..) => return Err(bad("total must be None or a seriesList")),
    }
    let groups: HashMap<String, Vec<Series>> = groups.into_iter().collect();
    let missing = |name: String, len: usize, last: Option<(i64, i64, i64)>| {
        let (start, end, step) = last.ok_or_else(|| EvalError::Internal("asPercent: no range for a MISSING series".into()))?;
        Ok::<_, EvalError>(Series::new(name, start, end, step, vec![None; len], xff))
    };
    let mut out = Vec::new();
    for key in keys {
        let total = totals.get(&key);
        let Some(members) = groups.get(&key) else {
            let t = total.expect("a key is a series key or a total key");
            out.push(missing(format!("asPercent(MISSING,{})", t.name), t.points().len(), last)?);
            continue;
        };
        for s1 in members {
            match total {
                None => out.push(missing(format!("asPercent({},MISSING)", s1.name), s1.points().len(), last)?),
                Some(t) => {
                    let s = percent_pair(s1.clone(), t.clone(), xff).expect("a pair normalizes");
                    last = Some((s.start, s.end, s.step));
                    out.push(s);
                }
            }
        }
    }
    Ok(out)
}

/// graphite-web's `getNodeOrTag` over `aggKey`'s path.
pub fn node_or_tag(series: &Series, node: &Value) -> String {
    let path = if series.name.ends_with(')') {
        first_path_expression(&series.name).unwrap_or_else(|| series.name.clone())
    } else {
        series.name.clone()
    };
    let index = match node {
        Value::Int(i) => Some(*i),
        Value::Float(f) if f.fract() == 0.0 => Some(*f as i64),
        _ => None,
    };
    if let Some(i) = index {
        let bare = path.split(';').next().unwrap_or("");
        let nodes: Vec<&str> = bare.split('.').collect();
        let at = if i < 0 { nodes.len() as i64 + i } else { i };
        if at >= 0 && (at as usize) < nodes.len() {
            return nodes[at as usize].to_string();
        }
    }
    let key = match node {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => crate::graphite::series::py_repr(*f),
        _ => String::new(),
    };
    series.tags.get(&key).cloned().unwrap_or_default()
}

/// The first path expression inside a function-call name.
pub fn first_path_expression(name: &str) -> Option<String> {
    let mut expr = crate::graphite::expr::parse(name).ok()?;
    loop {
        match expr {
            crate::graphite::expr::Expr::Path(p) => return Some(p),
            crate::graphite::expr::Expr::Call(c) => match c.args.into_iter().next() {
                Some(crate::graphite::expr::Arg::Expr(e)) => expr = e,
                _ => return None,
            },
        }
    }
}

pub fn agg_key(series: &Series, nodes: &[Value]) -> String {
    nodes.iter().map(|n| node_or_tag(series, n)).collect::<Vec<_>>().join(".")
}

/// Groups by key in first-seen order.
fn group_by(series: Vec<Series>, key: impl Fn(&Series) -> String) -> Vec<(String, Vec<Series>)> {
    let mut order: Vec<(String, Vec<Series>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for s in series {
        let k = key(&s);
        match index.get(&k) {
            Some(&i) => order[i].1.push(s),
            None => {
                index.insert(k.clone(), order.len());
                order.push((k, vec![s]));
            }
        }
    }
    order
}

fn group_by_nodes_impl(ctx: &mut Context<'_>, series: Vec<Series>, callback: &str, nodes: &[Value]) -> Result<Value, EvalError> {
    let mut out = Vec::new();
    for (key, members) in group_by(series, |s| agg_key(s, nodes)) {
        // A series function name (`sumSeries`) and an aggregation name (`sum`)
        // reach the same aggregate; the result is renamed to the key either way.
        let mut result = aggregate(ctx, members, callback, None)?;
        if let Some(mut s) = result.pop() {
            s.name = key;
            out.push(s);
        }
    }
    list(out)
}

fn group_by_node(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let node = a.rest("nodeNum").into_iter().next().ok_or_else(|| bad("groupByNode needs a node"))?;
    let callback = a.opt_string("callback")?.unwrap_or_else(|| "average".into());
    let series = a.series("seriesList")?;
    group_by_nodes_impl(ctx, series, &callback, &[node])
}

fn group_by_nodes(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let callback = a.string("callback")?;
    let nodes = a.rest("nodes");
    let series = a.series("seriesList")?;
    group_by_nodes_impl(ctx, series, &callback, &nodes)
}

fn aggregate_with_wildcards(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let func = a.string("func")?;
    with_wildcards(ctx, a, &func)
}

fn with_wildcards(ctx: &mut Context<'_>, a: &mut Args<'_>, func: &str) -> Result<Value, EvalError> {
    let positions: Vec<i64> = a
        .rest("position")
        .iter()
        .filter_map(|v| match v {
            Value::Int(i) => Some(*i),
            Value::Float(f) => Some(*f as i64),
            _ => None,
        })
        .collect();
    let series = a.series("seriesList")?;
    let key = |s: &Series| {
        s.name.split('.').enumerate().filter(|(i, _)| !positions.contains(&(*i as i64))).map(|(_, n)| n).collect::<Vec<_>>().join(".")
    };
    let mut out = Vec::new();
    for (k, members) in group_by(series, key) {
        if let Some(mut s) = aggregate(ctx, members, func, None)?.pop() {
            s.name = k;
            out.push(s);
        }
    }
    list(out)
}

fn percentile_of_series(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let n = a.number("n")?;
    if n <= 0.0 {
        return Err(bad("The requested percent is required to be greater than 0"));
    }
    let interpolate = a.flag("interpolate")?;
    let mut series = a.series("seriesList")?;
    let Some(first) = series.first() else { return list(vec![]) };
    let name = format!("percentileOfSeries({},{})", first.path_expression, py_g(n));
    let (start, end, step) = normalize(&mut series).expect("a non-empty list");
    let values = map_rows(&series, |r| percentile(r, n, interpolate));
    list(vec![Series::new(name, start, end, step, values, ctx.xff)])
}

/// graphite-web's `groupByTags`: the key is the common name (or the
/// callback) then the sorted `tag=value` pairs; the result is named and
/// tagged by its key.
fn group_by_tags(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let callback = a.string("callback")?;
    let tags: Vec<String> = a.rest("tags").iter().map(value_text).collect();
    if tags.is_empty() {
        return Err(bad("groupByTags(): no tags specified"));
    }
    let series = a.series("seriesList")?;
    let by_name = tags.iter().any(|t| t == "name");
    let mut names: Vec<&str> = series.iter().map(|s| s.tags.get("name").map_or("", String::as_str)).collect();
    names.sort_unstable();
    names.dedup();
    let common = if names.len() == 1 { names[0].to_string() } else { callback.clone() };
    let key = |s: &Series| {
        let mut pairs: Vec<String> =
            tags.iter().filter(|t| !by_name || *t != "name").map(|t| format!("{t}={}", s.tags.get(t).map_or("", String::as_str))).collect();
        pairs.sort();
        let head = if by_name { s.tags.get("name").cloned().unwrap_or_default() } else { common.clone() };
        std::iter::once(head).chain(pairs).collect::<Vec<_>>().join(";")
    };
    let mut out = Vec::new();
    for (key, members) in group_by(series, key) {
        if key.split(';').skip(1).any(|pair| pair.ends_with('=')) {
            return Err(EvalError::Internal(format!("Cannot parse path {key}: a tag value is empty")));
        }
        if let Some(mut s) = aggregate(ctx, members, &callback, None)?.pop() {
            s.tags = crate::graphite::series::name_tags(&key);
            s.path_expression = key.clone();
            s.name = key;
            out.push(s);
        }
    }
    list(out)
}

/// A node or tag argument as Python's `str()` prints it.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => crate::graphite::series::py_repr(*f),
        Value::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Value::None => "None".into(),
        Value::List(_) => String::new(),
    }
}

fn pow_series(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let mut series = flatten(a.series_lists("seriesList")?);
    let Some((start, end, step)) = normalize(&mut series) else { return list(vec![]) };
    let name = format!("powSeries({})", series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(","));
    let values = map_rows(&series, |row| row.iter().skip(1).fold(row[0], |acc, e| e.and_then(|e| safe_pow(acc, e))));
    list(vec![Series::new(name, start, end, step, values, ctx.xff)])
}
