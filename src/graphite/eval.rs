//! Evaluates parsed targets the way graphite-web's `evaluator.py` does: paths
//! fetch series (sorted by name), calls bind their arguments to the parameter
//! list of graphite-web's `/functions` metadata and run the function. Every
//! request carries limits on series and points, checked as data is fetched.

use std::collections::HashMap;

use super::expr::{Arg, Call, Expr};
use super::functions;
use super::glob::Glob;
use super::series::Series;
use crate::tsdb::Store;

/// Why a render failed; `Bad` and `TooLarge` are the client's (4xx).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{0}")]
    Bad(String),
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Internal(String),
}

pub fn bad(message: impl Into<String>) -> EvalError {
    EvalError::Bad(message.into())
}

/// Per-request bounds, from `[graphite]`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_series: usize,
    pub max_points: usize,
}

/// The request: time range, the store and what it has used so far.
pub struct Context<'a> {
    pub store: &'a Store,
    pub from: i64,
    pub until: i64,
    pub now: i64,
    pub xff: f64,
    pub limits: Limits,
    pub templates: HashMap<String, String>,
    series_fetched: usize,
    points_fetched: usize,
    /// `stacked`'s running totals, shared within one request by stack name.
    pub stacks: HashMap<String, Vec<f64>>,
}

/// An evaluated argument.
#[derive(Debug, Clone)]
pub enum Value {
    List(Vec<Series>),
    Int(i64),
    Float(f64),
    Str(String),
    Bool(bool),
    None,
}

impl<'a> Context<'a> {
    pub fn new(store: &'a Store, from: i64, until: i64, now: i64, xff: f64, limits: Limits) -> Context<'a> {
        Context {
            store,
            from,
            until,
            now,
            xff,
            limits,
            templates: HashMap::new(),
            series_fetched: 0,
            points_fetched: 0,
            stacks: HashMap::new(),
        }
    }

    /// Evaluates a whole target to its series.
    pub fn target(&mut self, expr: &Expr) -> Result<Vec<Series>, EvalError> {
        match self.expr(expr, None)? {
            Value::List(list) => Ok(list),
            other => Err(bad(format!("a target must evaluate to series, not {}", describe(&other)))),
        }
    }

    fn expr(&mut self, expr: &Expr, replacements: Option<&HashMap<String, String>>) -> Result<Value, EvalError> {
        match expr {
            Expr::Path(path) => {
                let mut path = path.clone();
                if let Some(map) = replacements {
                    for (name, value) in map {
                        if path == format!("${name}") {
                            return Ok(match value.parse::<f64>() {
                                Ok(v) if value.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'-') => Value::Float(v),
                                _ => Value::Str(value.clone()),
                            });
                        }
                        path = path.replace(&format!("${name}"), value);
                    }
                }
                Ok(Value::List(self.fetch(&path)?))
            }
            Expr::Call(call) if call.name == "template" => self.template(call),
            Expr::Call(call) if call.name == "seriesByTag" => {
                let exprs = call.args.iter().map(|a| match a {
                    Arg::Str(s) => Ok(s.clone()),
                    _ => Err(bad("seriesByTag takes quoted tag expressions")),
                });
                let exprs: Vec<String> = exprs.collect::<Result<_, _>>()?;
                Ok(Value::List(self.fetch_by_tags(&exprs, &call.raw)?))
            }
            Expr::Call(call) => {
                let Some(spec) = functions::lookup(&call.name) else {
                    return Err(bad(format!("unknown function {}", call.name)));
                };
                let mut args = Args::bind(self, call, spec.params, replacements)?;
                (spec.run)(self, &mut args)
            }
        }
    }

    fn template(&mut self, call: &Call) -> Result<Value, EvalError> {
        let Some(Arg::Expr(inner)) = call.args.first() else { return Err(bad("template() needs a target first")) };
        let mut map = HashMap::new();
        let literal = |a: &Arg| match a {
            Arg::Int(i) => Ok(i.to_string()),
            Arg::Float(f) => Ok(super::series::py_repr(*f)),
            Arg::Str(s) => Ok(s.clone()),
            _ => Err(bad("template() takes only string or number values")),
        };
        for (i, a) in call.args[1..].iter().enumerate() {
            map.insert((i + 1).to_string(), literal(a)?);
        }
        for (k, a) in &call.kwargs {
            map.insert(k.clone(), literal(a)?);
        }
        map.extend(self.templates.clone());
        self.expr(inner, Some(&map))
    }

    /// Evaluates an argument's raw expression again over another range (what
    /// `movingAverage`, `timeShift` and friends do with their first argument).
    pub fn refetch(&mut self, arg: &Arg, from: i64, until: i64) -> Result<Vec<Series>, EvalError> {
        let (saved_from, saved_until) = (self.from, self.until);
        (self.from, self.until) = (from, until);
        let result = match arg {
            Arg::Expr(e) => self.expr(e, None),
            _ => Err(bad("expected a series argument")),
        };
        (self.from, self.until) = (saved_from, saved_until);
        match result? {
            Value::List(l) => Ok(l),
            other => Err(bad(format!("expected series, got {}", describe(&other)))),
        }
    }

    /// The leaves a path pattern matches (untagged series), sorted.
    pub fn expand(&self, pattern: &str) -> Result<Vec<String>, EvalError> {
        if Glob::new(pattern).is_literal() {
            return Ok(match self.store.series(pattern).map_err(internal)? {
                Some(_) => vec![pattern.to_string()],
                None => vec![],
            });
        }
        let mut names: Vec<String> =
            super::find::find(self.store, pattern, self.limits.max_series)?.into_iter().filter(|n| n.is_leaf).map(|n| n.path).collect();
        names.sort();
        Ok(names)
    }

    fn fetch(&mut self, pattern: &str) -> Result<Vec<Series>, EvalError> {
        let names = self.expand(pattern)?;
        self.fetch_names(&names, pattern)
    }

    fn fetch_names(&mut self, names: &[String], path_expression: &str) -> Result<Vec<Series>, EvalError> {
        self.series_fetched += names.len();
        if self.series_fetched > self.limits.max_series {
            return Err(EvalError::TooLarge(format!(
                "the request reads more than {} series (graphite.max_series); narrow the targets",
                self.limits.max_series
            )));
        }
        // All of a pattern's series in one read: the store lays its unflushed
        // points over them in one pass rather than one a series.
        let budget = self.limits.max_points.saturating_sub(self.points_fetched);
        let Some(fetched) = self.store.fetch_many(names, self.from, self.until, self.now as u32, budget).map_err(internal)? else {
            return Err(EvalError::TooLarge(format!(
                "the request reads more than {} points (graphite.max_points); shorten the range or narrow the targets",
                self.limits.max_points
            )));
        };
        let mut out = Vec::with_capacity(names.len());
        for (name, f) in names.iter().zip(fetched) {
            let Some(f) = f else { continue };
            self.points_fetched += f.values.len();
            let end = f.start + f.step * f.values.len() as i64;
            let mut s = Series::new(name.clone(), f.start, end, f.step, f.values, self.xff);
            s.path_expression = path_expression.to_string();
            out.push(s);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    fn fetch_by_tags(&mut self, exprs: &[String], raw: &str) -> Result<Vec<Series>, EvalError> {
        let names = super::tags::find_series(self.store, exprs, self.limits.max_series)?;
        self.fetch_names(&names, raw)
    }
}

pub fn internal(e: impl std::fmt::Display) -> EvalError {
    EvalError::Internal(e.to_string())
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::List(_) => "series",
        Value::Int(_) | Value::Float(_) => "a number",
        Value::Str(_) => "a string",
        Value::Bool(_) => "a boolean",
        Value::None => "none",
    }
}

/// A function parameter: its name, and whether it takes the rest of the
/// positional arguments (`*seriesLists`).
#[derive(Debug, Clone, Copy)]
pub struct Param {
    pub name: &'static str,
    pub multiple: bool,
    /// The metadata's type: graphite-web casts `float` arguments with
    /// `float()`, so `scale(x,2)` tags `"2.0"`.
    pub kind: &'static str,
}

/// Arguments bound to parameters by position and keyword.
pub struct Args<'c> {
    pub function: &'c str,
    /// Per parameter: the values bound to it (several for `multiple`).
    values: Vec<Vec<Value>>,
    raw: Vec<Vec<Arg>>,
    names: Vec<&'static str>,
    kinds: Vec<&'static str>,
}

impl<'c> Args<'c> {
    fn bind(
        ctx: &mut Context<'_>,
        call: &'c Call,
        params: &[Param],
        replacements: Option<&HashMap<String, String>>,
    ) -> Result<Args<'c>, EvalError> {
        let mut values: Vec<Vec<Value>> = vec![Vec::new(); params.len()];
        let mut raw: Vec<Vec<Arg>> = vec![Vec::new(); params.len()];
        let mut slot = 0;
        for arg in &call.args {
            while slot < params.len() && !params[slot].multiple && !values[slot].is_empty() {
                slot += 1;
            }
            if slot >= params.len() {
                return Err(bad(format!("{}: too many arguments ({} given)", call.name, call.args.len())));
            }
            values[slot].push(eval_arg(ctx, arg, replacements)?);
            raw[slot].push(arg.clone());
            if !params[slot].multiple {
                slot += 1;
            }
        }
        for (key, arg) in &call.kwargs {
            let Some(i) = params.iter().position(|p| p.name == key) else {
                return Err(bad(format!("{}: unknown keyword argument {key}", call.name)));
            };
            if !values[i].is_empty() {
                return Err(bad(format!("{}: argument {key} given twice", call.name)));
            }
            // graphite-web prefetches only the paths of positional arguments, so a
            // series list given by keyword reads nothing: bug-compatible, it is empty.
            let value = match arg {
                Arg::Expr(_) => Value::List(Vec::new()),
                _ => eval_arg(ctx, arg, replacements)?,
            };
            values[i].push(value);
            raw[i].push(arg.clone());
        }
        Ok(Args {
            function: &call.name,
            values,
            raw,
            names: params.iter().map(|p| p.name).collect(),
            kinds: params.iter().map(|p| p.kind).collect(),
        })
    }

    fn index(&self, name: &str) -> usize {
        self.names.iter().position(|n| *n == name).unwrap_or_else(|| panic!("{} has no parameter {name}", self.function))
    }

    fn get(&self, name: &str) -> Option<&Value> {
        self.values[self.index(name)].first().filter(|v| !matches!(v, Value::None))
    }

    fn type_error(&self, name: &str, want: &str) -> EvalError {
        bad(format!("{}: argument {name} must be {want}", self.function))
    }

    /// The raw (unevaluated) argument of a parameter, for refetches.
    pub fn raw(&self, name: &str) -> Option<&Arg> {
        self.raw[self.index(name)].first()
    }

    pub fn series(&mut self, name: &str) -> Result<Vec<Series>, EvalError> {
        let i = self.index(name);
        match self.values[i].first_mut() {
            Some(Value::List(l)) => Ok(std::mem::take(l)),
            None => Err(bad(format!("{}: missing required argument {name}", self.function))),
            _ => Err(self.type_error(name, "a series list")),
        }
    }

    pub fn opt_series(&mut self, name: &str) -> Result<Option<Vec<Series>>, EvalError> {
        match self.get(name) {
            None => Ok(None),
            Some(_) => self.series(name).map(Some),
        }
    }

    /// Every list bound to a `multiple` parameter.
    pub fn series_lists(&mut self, name: &str) -> Result<Vec<Vec<Series>>, EvalError> {
        let i = self.index(name);
        let mut out = Vec::new();
        for v in self.values[i].iter_mut() {
            match v {
                Value::List(l) => out.push(std::mem::take(l)),
                _ => return Err(bad(format!("{}: argument {name} must be series", self.function))),
            }
        }
        Ok(out)
    }

    pub fn number(&self, name: &str) -> Result<f64, EvalError> {
        self.opt_number(name)?.ok_or_else(|| bad(format!("{}: missing required argument {name}", self.function)))
    }

    pub fn opt_number(&self, name: &str) -> Result<Option<f64>, EvalError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Int(i)) => Ok(Some(*i as f64)),
            Some(Value::Float(f)) => Ok(Some(*f)),
            Some(Value::Bool(b)) => Ok(Some(f64::from(u8::from(*b)))),
            Some(_) => Err(self.type_error(name, "a number")),
        }
    }

    /// Whether the number was written as an integer (names print it so).
    pub fn is_int(&self, name: &str) -> bool {
        matches!(self.get(name), Some(Value::Int(_)))
    }

    /// The argument as Python's `str()` would print it after graphite-web's
    /// parameter validation (which makes `float` parameters floats).
    pub fn text(&self, name: &str) -> Option<String> {
        let float = self.kinds[self.index(name)] == "float";
        self.get(name).map(|v| match v {
            Value::Int(i) if float => super::series::py_repr(*i as f64),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => super::series::py_repr(*f),
            Value::Str(s) => s.clone(),
            Value::Bool(b) => {
                if *b {
                    "True".into()
                } else {
                    "False".into()
                }
            }
            Value::None => "None".into(),
            Value::List(_) => "<series>".into(),
        })
    }

    pub fn int(&self, name: &str) -> Result<i64, EvalError> {
        let v = self.number(name)?;
        if v.fract() != 0.0 {
            return Err(self.type_error(name, "an integer"));
        }
        Ok(v as i64)
    }

    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, EvalError> {
        match self.opt_number(name)? {
            Some(v) if v.fract() == 0.0 => Ok(Some(v as i64)),
            Some(_) => Err(self.type_error(name, "an integer")),
            None => Ok(None),
        }
    }

    pub fn string(&self, name: &str) -> Result<String, EvalError> {
        self.opt_string(name)?.ok_or_else(|| bad(format!("{}: missing required argument {name}", self.function)))
    }

    pub fn opt_string(&self, name: &str) -> Result<Option<String>, EvalError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Str(s)) => Ok(Some(s.clone())),
            Some(_) => Err(self.type_error(name, "a string")),
        }
    }

    pub fn flag(&self, name: &str) -> Result<bool, EvalError> {
        match self.get(name) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::Int(i)) => Ok(*i != 0),
            Some(_) => Err(self.type_error(name, "a boolean")),
        }
    }

    /// Every value bound to a `multiple` parameter (nodes, tags).
    pub fn rest(&self, name: &str) -> Vec<Value> {
        self.values[self.index(name)].clone()
    }

    /// A number or an interval string (`movingAverage`'s window).
    pub fn int_or_interval(&self, name: &str) -> Result<IntOrInterval, EvalError> {
        match self.get(name) {
            Some(Value::Int(i)) => Ok(IntOrInterval::Points(*i)),
            Some(Value::Float(f)) if f.fract() == 0.0 => Ok(IntOrInterval::Points(*f as i64)),
            Some(Value::Str(s)) => {
                let secs = super::timespec::interval(s).map_err(|e| bad(e.to_string()))?;
                Ok(IntOrInterval::Interval(s.clone(), secs.abs()))
            }
            _ => Err(self.type_error(name, "an integer or an interval string")),
        }
    }
}

pub enum IntOrInterval {
    Points(i64),
    Interval(String, i64),
}

fn eval_arg(ctx: &mut Context<'_>, arg: &Arg, replacements: Option<&HashMap<String, String>>) -> Result<Value, EvalError> {
    Ok(match arg {
        Arg::Int(i) => Value::Int(*i),
        Arg::Float(f) => Value::Float(*f),
        Arg::Str(s) => Value::Str(s.clone()),
        Arg::Bool(b) => Value::Bool(*b),
        Arg::None => Value::None,
        Arg::Expr(e) => ctx.expr(e, replacements)?,
    })
}
