//! The render functions, each as graphite-web 1.1.8's `render/functions.py`
//! defines it: the same values, names, tags and quirks. Parameters (names,
//! order, `*args`) come from graphite-web's own `/functions` metadata
//! (`functions.json`), which `/functions` serves for the implemented ones.

mod calculate;
mod combine;
mod filter;
mod holt_winters;
mod labels;
mod lists;
mod special;
mod synthetic;
mod timing;
mod transform;

use std::collections::HashMap;
use std::sync::OnceLock;

use super::eval::{Args, Context, EvalError, Param, Value};
use super::series::Series;

pub type Run = fn(&mut Context<'_>, &mut Args<'_>) -> Result<Value, EvalError>;

/// An implemented function.
pub struct Spec {
    pub params: &'static [Param],
    pub run: Run,
}

/// graphite-web's `/functions` output for all 151 functions of 1.1.8.
pub const METADATA: &str = include_str!("../functions.json");

/// The metadata parsed; graphite-web writes `Infinity` (not JSON) for a few
/// defaults, kept here as the string "Infinity".
pub fn metadata_json() -> serde_json::Value {
    serde_json::from_str(&METADATA.replace(": Infinity", ": \"Infinity\"")).expect("embedded functions.json parses")
}

/// Every implemented function, by name.
fn implemented() -> Vec<(&'static str, Run)> {
    let mut all = Vec::new();
    all.extend_from_slice(combine::FUNCTIONS);
    all.extend_from_slice(transform::FUNCTIONS);
    all.extend_from_slice(calculate::FUNCTIONS);
    all.extend_from_slice(filter::FUNCTIONS);
    all.extend_from_slice(special::FUNCTIONS);
    all.extend_from_slice(lists::FUNCTIONS);
    all.extend_from_slice(timing::FUNCTIONS);
    all.extend_from_slice(labels::FUNCTIONS);
    all.extend_from_slice(synthetic::FUNCTIONS);
    all.extend_from_slice(holt_winters::FUNCTIONS);
    all
}

fn registry() -> &'static HashMap<&'static str, Spec> {
    static REGISTRY: OnceLock<HashMap<&'static str, Spec>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let meta = metadata_json();
        implemented()
            .into_iter()
            .map(|(name, run)| {
                let params: Vec<Param> = meta[name]["params"]
                    .as_array()
                    .unwrap_or_else(|| panic!("functions.json has no params for {name}"))
                    .iter()
                    .map(|p| Param {
                        name: Box::leak(p["name"].as_str().unwrap_or_default().to_string().into_boxed_str()),
                        multiple: p["multiple"].as_bool().unwrap_or(false),
                        kind: Box::leak(p["type"].as_str().unwrap_or_default().to_string().into_boxed_str()),
                    })
                    .collect();
                (name, Spec { params: Box::leak(params.into_boxed_slice()), run })
            })
            .collect()
    })
}

pub fn lookup(name: &str) -> Option<&'static Spec> {
    registry().get(name)
}

/// Functions the evaluator runs itself (it fetches by their call text), so
/// they have no `Run` here but are implemented all the same.
const EVALUATOR_FUNCTIONS: [&str; 1] = ["seriesByTag"];

/// Names of the implemented functions (what `/functions` lists), sorted.
pub fn names() -> Vec<&'static str> {
    let mut names: Vec<&str> = registry().keys().copied().chain(EVALUATOR_FUNCTIONS).collect();
    names.sort_unstable();
    names
}

/// Every series renamed by `name` (its path expression too, as graphite-web
/// sets it), tagged when `tag` is given, and its consolidated points replaced
/// by `values`: the shape of most transforms.
fn transform_each(
    series: Vec<Series>,
    tag: Option<(&str, String)>,
    name: impl Fn(&str) -> String,
    mut values: impl FnMut(&Series) -> Vec<Option<f64>>,
) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            if let Some((k, v)) = &tag {
                s.tags.insert(k.to_string(), v.clone());
            }
            s.values = values(&s);
            s.vpp = 1;
            s.name = name(&s.name);
            s.path_expression = s.name.clone();
            s
        })
        .collect()
}

/// Every series renamed from itself, tagged when `tag` is given; values and
/// path expression unchanged (aliases and graph options).
fn relabel_each(series: Vec<Series>, tag: Option<(&str, &str)>, name: impl Fn(&Series) -> String) -> Vec<Series> {
    series
        .into_iter()
        .map(|mut s| {
            if let Some((k, v)) = tag {
                s.tags.insert(k.to_string(), v.to_string());
            }
            s.name = name(&s);
            s
        })
        .collect()
}

/// A `date` argument as graphite-web's functions read it: `parseATTime`
/// without the request's `now`, so relative specs count from the wall clock.
fn wall_date(spec: &str) -> Result<i64, EvalError> {
    let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    super::timespec::parse(spec, wall).map_err(|e| super::eval::bad(e.to_string()))
}

/// Shorthand for a series-list result.
fn list(series: Vec<Series>) -> Result<Value, EvalError> {
    Ok(Value::List(series))
}
