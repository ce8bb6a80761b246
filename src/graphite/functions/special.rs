//! Naming, graph options and synthetic series (graphite-web's "Alias",
//! "Graph" and "Special" groups). Graph options (color, widths, axes) do not
//! show in JSON; they keep the series unchanged unless graphite-web renames it.

use super::combine::agg_key;
use super::{Run, list, relabel_each};
use crate::graphite::eval::{Args, Context, EvalError, Value, bad};
use crate::graphite::series::{Series, py_g, py_repr};

pub const FUNCTIONS: &[(&str, Run)] = &[
    ("alias", alias),
    ("aliasByNode", alias_by_node),
    ("aliasByTags", alias_by_tags),
    ("aliasByMetric", |c, a| substr_impl(c, a, -1, 0)),
    ("substr", substr),
    ("aliasSub", alias_sub),
    ("constantLine", constant_line_fn),
    ("threshold", threshold),
    ("color", passthrough),
    ("alpha", passthrough),
    ("lineWidth", passthrough),
    ("drawAsInfinite", draw_as_infinite),
    ("dashed", dashed),
    ("secondYAxis", second_y_axis),
    ("stacked", stacked),
    ("setXFilesFactor", set_xff),
    ("xFilesFactor", set_xff),
    ("fallbackSeries", fallback_series),
    ("areaBetween", area_between),
];

fn passthrough(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    list(a.series("seriesList")?)
}

fn alias(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let name = a.string("newName")?;
    list(relabel_each(a.series("seriesList")?, None, |_| name.clone()))
}

fn alias_by_node(c: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    alias_by_key(c, a, "nodes")
}

/// graphite-web's aliasByTags is aliasByNode under another parameter name.
fn alias_by_tags(c: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    alias_by_key(c, a, "tags")
}

fn alias_by_key(_: &mut Context<'_>, a: &mut Args<'_>, param: &str) -> Result<Value, EvalError> {
    let nodes = a.rest(param);
    list(relabel_each(a.series("seriesList")?, None, |s| agg_key(s, &nodes)))
}

fn substr(c: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let start = a.opt_int("start")?.unwrap_or(0);
    let stop = a.opt_int("stop")?.unwrap_or(0);
    substr_impl(c, a, start, stop)
}

/// Python slicing of `items[start:stop]` (stop 0 meaning "to the end", as substr uses it).
fn py_slice<T: Clone>(items: &[T], start: i64, stop: Option<i64>) -> Vec<T> {
    let len = items.len() as i64;
    let norm = |i: i64| if i < 0 { (len + i).max(0) } else { i.min(len) };
    let (s, e) = (norm(start), stop.map_or(len, norm));
    if s >= e { vec![] } else { items[s as usize..e as usize].to_vec() }
}

fn substr_impl(_: &mut Context<'_>, a: &mut Args<'_>, start: i64, stop: i64) -> Result<Value, EvalError> {
    let trailing = regex::Regex::new(",.*$").expect("static regex");
    list(relabel_each(a.series("seriesList")?, None, |s| {
        let left = s.name.rfind('(').map_or(0, |i| i + 1);
        let right = s.name.find(')').unwrap_or(s.name.len());
        let clean = if left <= right { &s.name[left..right] } else { "" };
        let parts: Vec<&str> = clean.split('.').collect();
        let picked = py_slice(&parts, start, if stop == 0 { None } else { Some(stop) });
        trailing.replace(&picked.join("."), "").into_owned()
    }))
}

/// Python's `re.sub` replacement syntax (`\1`, `\g<1>`, `\g<name>`) and `$1`
/// turned into the regex crate's `${1}`.
pub fn python_replacement(python: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = python.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() && chars[i + 1].is_ascii_digit() => {
                let digits: String = chars[i + 1..].iter().take_while(|c| c.is_ascii_digit()).take(2).collect();
                out.push_str(&format!("${{{digits}}}"));
                i += 1 + digits.len();
            }
            '\\' if chars.get(i + 1) == Some(&'g') && chars.get(i + 2) == Some(&'<') => {
                let name: String = chars[i + 3..].iter().take_while(|c| **c != '>').collect();
                out.push_str(&format!("${{{name}}}"));
                i += 4 + name.chars().count();
            }
            '$' if chars.get(i + 1).is_some_and(char::is_ascii_digit) => {
                let digits: String = chars[i + 1..].iter().take_while(|c| c.is_ascii_digit()).collect();
                out.push_str(&format!("${{{digits}}}"));
                i += 1 + digits.len();
            }
            '$' => {
                out.push_str("$$");
                i += 1;
            }
            '\\' if i + 1 < chars.len() => {
                let escaped = match chars[i + 1] {
                    'n' => '\n',
                    't' => '\t',
                    c => c,
                };
                out.push(escaped);
                i += 2;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

fn alias_sub(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let re = super::filter::regex(&a.string("search")?)?;
    let rep = python_replacement(&a.string("replace")?);
    list(relabel_each(a.series("seriesList")?, None, |s| re.replace_all(&s.name, rep.as_str()).into_owned()))
}

/// `constantLine(value)`: three points over the request's range.
pub fn constant_line(ctx: &Context<'_>, value: f64, text: &str) -> Series {
    let (start, end) = (ctx.from, ctx.until);
    let step = ((end - start) as f64 / 2.0) as i64;
    let mut s = Series::new(text.to_string(), start, end, step.max(1), vec![Some(value); 3], ctx.xff);
    s.path_expression = format!("constantLine({text})");
    s
}

fn constant_line_fn(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let value = a.number("value")?;
    let text = a.text("value").unwrap_or_else(|| py_repr(value));
    list(vec![constant_line(ctx, value, &text)])
}

fn threshold(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let value = a.number("value")?;
    let text = a.text("value").unwrap_or_else(|| py_repr(value));
    let mut s = constant_line(ctx, value, &text);
    if let Some(label) = a.opt_string("label")?.filter(|l| !l.is_empty()) {
        s.name = label;
    }
    list(vec![s])
}

fn dashed(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let length = a.opt_number("dashLength")?.unwrap_or(5.0);
    let tag = a.text("dashLength").unwrap_or_else(|| "5".into());
    list(relabel_each(a.series("seriesList")?, Some(("dashed", &tag)), |s| format!("dashed({}, {})", s.name, py_g(length))))
}

fn draw_as_infinite(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    list(relabel_each(a.series("seriesList")?, Some(("drawAsInfinite", "1")), |s| format!("drawAsInfinite({})", s.name)))
}

fn second_y_axis(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    list(relabel_each(a.series("seriesList")?, Some(("secondYAxis", "1")), |s| format!("secondYAxis({})", s.name)))
}

fn stacked(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let stack = a.opt_string("stack")?.unwrap_or_else(|| "__DEFAULT__".into());
    let series = a.series("seriesList")?;
    let mut total = ctx.stacks.remove(&stack).unwrap_or_default();
    let mut out = Vec::new();
    for mut s in series {
        let points = s.points();
        let mut values = Vec::with_capacity(points.len());
        for (i, v) in points.iter().enumerate() {
            if total.len() <= i {
                total.push(0.0);
            }
            match v {
                Some(v) => {
                    total[i] += v;
                    values.push(Some(total[i]));
                }
                None => values.push(None),
            }
        }
        if stack == "__DEFAULT__" {
            s.tags.insert("stacked".into(), stack.clone());
            s.name = format!("stacked({})", s.name);
        }
        s.path_expression = s.name.clone();
        s.values = values;
        s.vpp = 1;
        out.push(s);
    }
    ctx.stacks.insert(stack, total);
    list(out)
}

/// graphite-web's `setXFilesFactor`: the series and the rest of the request
/// use the new xff.
fn set_xff(ctx: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let xff = a.number("xFilesFactor")?;
    let tag = a.text("xFilesFactor").unwrap_or_default();
    ctx.xff = xff;
    let mut series = relabel_each(a.series("seriesList")?, Some(("xFilesFactor", &tag)), |s| s.name.clone());
    for s in &mut series {
        s.xff = xff;
    }
    list(series)
}

fn fallback_series(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let series = a.series("seriesList")?;
    list(if series.is_empty() { a.series("fallback")? } else { series })
}

/// graphite-web's `areaBetween`: both series named after the upper one's
/// path expression and sharing its tags (one dict in graphite-web).
fn area_between(_: &mut Context<'_>, a: &mut Args<'_>) -> Result<Value, EvalError> {
    let mut series = a.series("seriesList")?;
    if series.len() != 2 {
        return Err(bad("areaBetween series argument must reference *exactly* 2 series"));
    }
    series[1].tags.insert("areaBetween".into(), "1".into());
    let name = format!("areaBetween({})", series[1].path_expression);
    series[0].tags = series[1].tags.clone();
    for s in &mut series {
        s.name = name.clone();
    }
    list(series)
}
