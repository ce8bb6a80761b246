//! Functions that pair, map and reduce whole series lists (graphite-web's
//! "Combine" group): `*SeriesLists`, `weightedAverage`, `mapSeries`,
//! `reduceSeries`, `applyByNode`.

use std::collections::HashMap;

use super::combine::{Total, agg_key, aggregate, as_percent_of, divide, safe_div};
use super::{Run, list};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::expr;
use crate::graphite::series::{Agg, Series};

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("aggregateSeriesLists", |c, a| series_lists(c, a, None)),
    ("sumSeriesLists", |c, a| series_lists(c, a, Some("sum"))),
    ("diffSeriesLists", |c, a| series_lists(c, a, Some("diff"))),
    ("multiplySeriesLists", |c, a| series_lists(c, a, Some("multiply"))),
    ("divideSeriesLists", divide_series_lists),
    ("weightedAverage", weighted_average),
    ("mapSeries", map_series),
    ("map", map_series),
    ("reduceSeries", reduce_series),
    ("reduce", reduce_series),
    ("applyByNode", apply_by_node),
];

/// The two lists of a `*SeriesLists` call, which must be of equal length.
fn two_lists(a: &mut Args<'_>, first: &str, second: &str) -> Result<(Vec<Series>, Vec<Series>), EvalError> {
    let (x, y) = (a.series(first)?, a.series(second)?);
    if x.len() != y.len() {
        return Err(bad(format!("{first} and {second} argument must have equal length")));
    }
    Ok((x, y))
}

/// graphite-web's `aggregateSeriesLists`: `aggregate` over each pair by
/// index, renamed `<func>Series(x,y)` (the path expression keeps the
/// aggregate's name).
fn series_lists(ctx: &mut Context<'_>, a: &mut Args<'_>, fixed: Option<&str>) -> Result<Value, EvalError> {
    let (func, xff) = match fixed {
        Some(f) => (f.to_string(), None),
        None => (a.string("func")?, a.opt_number("xFilesFactor")?),
    };
    let short = func.strip_suffix("Series").unwrap_or(&func).to_string();
    let (first, second) = two_lists(a, "seriesListFirstPos", "seriesListSecondPos")?;
    let mut out = Vec::new();
    for (x, y) in first.into_iter().zip(second) {
        let name = format!("{short}Series({},{})", x.name, y.name);
        if let Some(mut s) = aggregate(ctx, vec![x, y], &func, xff)?.pop() {
            s.name = name;
            out.push(s);
        }
    }
    list(out)
}

fn divide_series_lists(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let (dividends, divisors) = two_lists(a, "dividendSeriesList", "divisorSeriesList")?;
    let mut out = Vec::new();
    for (x, y) in dividends.into_iter().zip(divisors) {
        out.extend(divide(ctx, vec![x], vec![y])?);
    }
    list(out)
}

/// graphite-web's `weightedAverage`: per node key the product of the last
/// average and weight series of that key, summed, over the sum of all weights.
fn weighted_average(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let nodes = a.rest("nodes");
    let avgs = a.series("seriesListAvg")?;
    let weights = a.series("seriesListWeight")?;
    if avgs.len() != weights.len() {
        return Err(bad(format!(
            "weightedAverage must receive the same number of series for seriesListAvg and seriesListWeight but received respectively {} and {}",
            avgs.len(),
            weights.len()
        )));
    }
    let mut keys: Vec<String> = Vec::new();
    let mut pairs: HashMap<String, (Option<&Series>, Option<&Series>)> = HashMap::new();
    for (avg, weight) in avgs.iter().zip(&weights) {
        for (s, is_avg) in [(avg, true), (weight, false)] {
            let key = agg_key(s, &nodes);
            if !pairs.contains_key(&key) {
                keys.push(key.clone());
            }
            let entry = pairs.entry(key).or_default();
            if is_avg { entry.0 = Some(s) } else { entry.1 = Some(s) }
        }
    }
    let mut products = Vec::new();
    for key in &keys {
        let (Some(avg), Some(weight)) = pairs[key] else { continue };
        let (x, y) = (avg.points(), weight.points());
        let values = (0..x.len().max(y.len()))
            .map(|i| match (x.get(i).copied().flatten(), y.get(i).copied().flatten()) {
                (Some(p), Some(q)) => Some(p * q),
                _ => None,
            })
            .collect();
        let name = format!("product({},{})", weight.name, avg.name);
        products.push(Series::new(name, avg.start, avg.end, avg.step, values, ctx.xff));
    }
    let Some(sum_products) = aggregate(ctx, products, "sum", None)?.pop() else { return list(vec![]) };
    let sum_weights = aggregate(ctx, weights.clone(), "sum", None)?.pop();
    let (p, w) = (sum_products.points(), sum_weights.map(|s| s.points()).unwrap_or_default());
    let values = (0..p.len().max(w.len())).map(|i| safe_div(p.get(i).copied().flatten(), w.get(i).copied().flatten())).collect();
    let paths = |list: &[Series]| {
        let mut p: Vec<&str> = list.iter().map(|s| s.path_expression.as_str()).collect();
        p.sort_unstable();
        p.dedup();
        p.join(",")
    };
    let node_text: Vec<String> = nodes.iter().map(super::combine::value_text).collect();
    let name = format!("weightedAverage({}, {}, {})", paths(&avgs), paths(&weights), node_text.join(","));
    list(vec![Series::new(name, sum_products.start, sum_products.end, sum_products.step, values, ctx.xff)])
}

/// graphite-web's `mapSeries` returns a list of lists (one per node key) that
/// only `reduceSeries` consumes; here the groups come back concatenated in
/// key order, which `reduceSeries` reads the same way.
fn map_series(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let nodes = a.rest("mapNodes");
    let series = a.series("seriesList")?;
    let mut keys: Vec<String> = Vec::new();
    let mut groups: HashMap<String, Vec<Series>> = HashMap::new();
    for s in series {
        let key = agg_key(&s, &nodes);
        if !groups.contains_key(&key) {
            keys.push(key.clone());
        }
        groups.entry(key).or_default().push(s);
    }
    list(keys.iter().flat_map(|k| groups.remove(k).unwrap_or_default()).collect())
}

/// Python's `items[i]` with a negative index counting from the end.
fn py_index(len: usize, i: i64) -> Option<usize> {
    let at = if i < 0 { len as i64 + i } else { i };
    (0..len as i64).contains(&at).then_some(at as usize)
}

/// The end of Python's slice `items[:stop]`.
fn py_stop(len: usize, stop: i64) -> usize {
    if stop < 0 { (len as i64 + stop).max(0) as usize } else { (stop as usize).min(len) }
}

/// graphite-web's `reduceSeries`: series sharing the nodes before
/// `reduceNode` are passed, one list per matcher in matcher order, to
/// `reduceFunction`; each result is named `<prefix>.reduce.<function>`.
fn reduce_series(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let function = a.string("reduceFunction")?;
    let node = a.int("reduceNode")?;
    let matchers: Vec<String> = a.rest("reduceMatchers").iter().map(super::combine::value_text).collect();
    let series = a.series("seriesLists")?;
    let mut keys: Vec<String> = Vec::new();
    let mut slots: HashMap<String, Vec<Option<Series>>> = HashMap::new();
    for s in series {
        let nodes: Vec<&str> = s.name.split('.').collect();
        let at = py_index(nodes.len(), node).ok_or_else(|| EvalError::Internal("reduceSeries: list index out of range".into()))?;
        let key = format!("{}.reduce.{function}", nodes[..py_stop(nodes.len(), node)].join("."));
        let Some(slot) = matchers.iter().position(|m| m == nodes[at]) else { continue };
        if !slots.contains_key(&key) {
            keys.push(key.clone());
        }
        slots.entry(key).or_insert_with(|| vec![None; matchers.len()])[slot] = Some(s);
    }
    let mut out = Vec::new();
    for key in keys {
        let lists: Vec<Series> = slots
            .remove(&key)
            .unwrap_or_default()
            .into_iter()
            .collect::<Option<_>>()
            .ok_or_else(|| EvalError::Internal(format!("reduceSeries: {key} lacks a series for some matcher")))?;
        if let Some(mut s) = reduce_with(ctx, &function, lists)?.into_iter().next() {
            s.name = key;
            out.push(s);
        }
    }
    list(out)
}

/// Calls `function` with one single-series list per argument, as
/// `reduceSeries` does: aggregators, `divideSeries` and `asPercent`.
fn reduce_with(ctx: &Context<'_>, function: &str, mut args: Vec<Series>) -> Result<Vec<Series>, EvalError> {
    match function {
        "divideSeries" | "asPercent" | "pct" if args.len() != 2 => Err(bad(format!("{function} takes two series here"))),
        "divideSeries" => {
            let divisor = args.pop().expect("two series");
            divide(ctx, args, vec![divisor])
        }
        "asPercent" | "pct" => {
            let total = args.pop().expect("two series");
            as_percent_of(ctx, args, Total::List(vec![total]), &[])
        }
        f if f.ends_with("Series") && Agg::parse(f).is_some() => aggregate(ctx, args, f, None),
        _ => Err(bad(format!("reduceSeries: unsupported reduce function {function}"))),
    }
}

/// graphite-web's `applyByNode`: the template evaluated once per distinct
/// prefix (nodes 0..=nodeNum), in sorted order; every result spans the last
/// input series' range.
fn apply_by_node(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let node = a.int("nodeNum")?;
    let template = a.string("templateFunction")?;
    let new_name = a.opt_string("newName")?.filter(|n| !n.is_empty());
    let series = a.series("seriesList")?;
    let Some(last) = series.last() else { return list(vec![]) };
    let (start, end) = (last.start, last.end);
    let mut prefixes: Vec<String> = series
        .iter()
        .map(|s| {
            let nodes: Vec<&str> = s.name.split('.').collect();
            nodes[..py_stop(nodes.len(), node + 1)].join(".")
        })
        .collect();
    prefixes.sort();
    prefixes.dedup();
    let mut out = Vec::new();
    for prefix in prefixes {
        let target = template.replace('%', &prefix);
        let parsed = expr::parse(&target).map_err(|e| bad(e.to_string()))?;
        for mut s in ctx.target(&parsed)? {
            if let Some(n) = &new_name {
                s.name = n.replace('%', &prefix);
            }
            s.path_expression = prefix.clone();
            (s.start, s.end) = (start, end);
            out.push(s);
        }
    }
    list(out)
}

#[cfg(test)]
mod tests {
    use super::{py_index, py_stop};

    #[test]
    fn python_indexes() {
        assert_eq!(py_index(3, 0), Some(0));
        assert_eq!(py_index(3, -1), Some(2));
        assert_eq!(py_index(3, 3), None);
        assert_eq!(py_index(3, -4), None);
        assert_eq!((py_stop(3, 1), py_stop(3, -1), py_stop(3, 5), py_stop(3, -5)), (1, 2, 3, 0));
    }
}
