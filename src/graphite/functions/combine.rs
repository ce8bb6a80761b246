//! Functions that combine several series (graphite-web's "Combine" group).

use std::collections::HashMap;

use super::{Run, list};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::{Agg, Series, common_tags, normalize, path_expressions, rows};

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
];

/// graphite-web's `aggregate(seriesList, func, xFilesFactor)` over one list.
pub fn aggregate(ctx: &Context<'_>, mut series: Vec<Series>, func: &str, xff: Option<f64>) -> Result<Vec<Series>, EvalError> {
    let short = func.strip_suffix("Series").unwrap_or(func);
    let agg = Agg::parse(short).ok_or_else(|| bad(format!("unsupported aggregation function: {func}")))?;
    let Some((start, end, step)) = normalize(&mut series) else { return Ok(vec![]) };
    let xff = xff.unwrap_or(ctx.xff);
    let name = format!("{short}Series({})", path_expressions(&series));
    let values = rows(&series)
        .iter()
        .map(|row| {
            let non_null = row.iter().flatten().count();
            if non_null > 0 && non_null as f64 / row.len() as f64 >= xff { agg.apply(row) } else { None }
        })
        .collect();
    let mut tags = common_tags(&series, &name);
    tags.insert("aggregatedBy".into(), short.to_string());
    let mut out = Series::new(name, start, end, step, values, xff);
    out.tags = tags;
    Ok(vec![out])
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
    let values = rows(&series).iter().map(|row| Some(row.len() as f64)).collect();
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
    if divisors.is_empty() {
        return list(
            dividends
                .into_iter()
                .map(|mut s| {
                    s.name = format!("divideSeries({},MISSING)", s.name);
                    s.path_expression = s.name.clone();
                    s.values = vec![None; s.values.len()];
                    s
                })
                .collect(),
        );
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
        let values = rows(&pair).iter().map(|r| safe_div(r[0], r[1])).collect();
        out.push(Series::new(name, start, end, step, values, ctx.xff));
    }
    list(out)
}

fn safe_div(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => Some(a / b),
        _ => None,
    }
}

fn percent(v: Option<f64>, total: Option<f64>) -> Option<f64> {
    safe_div(v, total).map(|q| q * 100.0)
}

fn as_percent(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    if !a.rest("nodes").is_empty() {
        return Err(bad("asPercent with nodes is not implemented"));
    }
    let total_number = a.opt_number("total").ok().flatten();
    let total_text = a.text("total");
    let total_list = if total_number.is_none() { a.opt_series("total")? } else { None };
    let mut series = a.series("seriesList")?;
    normalize(&mut series);
    let xff = ctx.xff;
    let mut out = Vec::new();
    match (total_number, total_list) {
        (Some(t), _) => {
            let text = total_text.unwrap_or_default();
            for s in &series {
                let values = s.points().into_iter().map(|v| percent(v, Some(t))).collect();
                out.push(Series::new(format!("asPercent({},{text})", s.name), s.start, s.end, s.step, values, xff));
            }
        }
        (None, Some(total)) if total.len() == series.len() => {
            let mut left = series;
            let mut right = total;
            left.sort_by(|x, y| x.name.cmp(&y.name));
            right.sort_by(|x, y| x.name.cmp(&y.name));
            for (s1, s2) in left.into_iter().zip(right) {
                let name = format!("asPercent({},{})", s1.name, s2.name);
                let mut pair = vec![s1, s2];
                let Some((start, end, step)) = normalize(&mut pair) else { continue };
                let values = rows(&pair).iter().map(|r| percent(r[0], r[1])).collect();
                out.push(Series::new(name, start, end, step, values, xff));
            }
        }
        (None, Some(total)) if total.len() == 1 => {
            let mut all: Vec<Series> = series.into_iter().chain(total).collect();
            normalize(&mut all);
            let total = all.pop().expect("one total");
            let totals = total.points();
            for s in &all {
                let points = s.points();
                let len = points.len().max(totals.len());
                let values = (0..len).map(|i| percent(points.get(i).copied().flatten(), totals.get(i).copied().flatten())).collect();
                out.push(Series::new(format!("asPercent({},{})", s.name, total.name), s.start, s.end, s.step, values, xff));
            }
        }
        (None, Some(_)) => {
            return Err(bad(
                "asPercent second argument must be missing, a single digit, reference exactly 1 series or reference the same number of series as the first argument",
            ));
        }
        (None, None) => {
            let totals: Vec<Option<f64>> = rows(&series).iter().map(|r| Agg::Sum.apply(r)).collect();
            let text = format!("sumSeries({})", path_expressions(&series));
            for s in &series {
                let points = s.points();
                let len = points.len().max(totals.len());
                let values = (0..len).map(|i| percent(points.get(i).copied().flatten(), totals.get(i).copied().flatten())).collect();
                out.push(Series::new(format!("asPercent({},{text})", s.name), s.start, s.end, s.step, values, xff));
            }
        }
    }
    list(out)
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
