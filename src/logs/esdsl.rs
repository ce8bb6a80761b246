//! The Elasticsearch query DSL (the subset clients send, compat-spec §6.8)
//! as a `logs::query` tree: `match_all`, `bool`, `query_string`,
//! `simple_query_string`, `match`, `match_phrase`, `term`, `terms`, `range`,
//! `exists`, `prefix`, `wildcard` and `ids`. Index patterns become a filter on
//! the `_index` each `_bulk` event carries.

use serde_json::{Map, Value};

use super::query::{self, Bound, Operator, Query};
use super::search::SearchError;

fn bad(message: impl Into<String>) -> SearchError {
    SearchError::Bad(message.into())
}

/// The deepest `bool` nesting accepted.
const MAX_DEPTH: usize = 32;

/// A DSL query object.
pub fn query(v: &Value) -> Result<Query, SearchError> {
    clause(v, 0)
}

fn clause(v: &Value, depth: usize) -> Result<Query, SearchError> {
    if depth > MAX_DEPTH {
        return Err(bad(format!("the query nests deeper than {MAX_DEPTH} levels")));
    }
    let Some(obj) = v.as_object() else { return Err(bad(format!("a query must be an object, not {v}"))) };
    let mut it = obj.iter();
    let Some((kind, body)) = it.next() else { return Ok(Query::All) };
    if it.next().is_some() {
        return Err(bad(format!("a query object holds one query type, not {}", obj.len())));
    }
    match kind.as_str() {
        "match_all" => Ok(Query::All),
        "match_none" => Ok(none()),
        "bool" => boolean(body, depth),
        "query_string" | "simple_query_string" => query_string(body),
        "match" => {
            let (field, spec) = field_spec(kind, body)?;
            let text = scalar(spec.get("query").unwrap_or(spec))?;
            let words: Vec<Query> =
                text.split_whitespace().map(|w| Query::Term { field: Some(field.clone()), value: w.to_owned() }).collect();
            let and = spec.get("operator").and_then(Value::as_str).is_some_and(|o| o.eq_ignore_ascii_case("and"));
            Ok(match (words.len(), and) {
                (0, _) => none(),
                (1, _) => words.into_iter().next().expect("one word"),
                (_, true) => Query::Bool { must: words, should: vec![], must_not: vec![], min_should: 0 },
                (_, false) => Query::Bool { must: vec![], should: words, must_not: vec![], min_should: 1 },
            })
        }
        "match_phrase" => {
            let (field, spec) = field_spec(kind, body)?;
            let text = scalar(spec.get("query").unwrap_or(spec))?;
            let slop = spec.get("slop").and_then(Value::as_u64).unwrap_or(0) as u32;
            Ok(Query::Phrase { field: Some(field), text, slop })
        }
        "term" => {
            let (field, spec) = field_spec(kind, body)?;
            Ok(Query::Term { field: Some(field), value: scalar(spec.get("value").unwrap_or(spec))? })
        }
        "terms" => {
            let Some((field, values)) = body.as_object().and_then(|o| o.iter().find(|(k, _)| *k != "boost")) else {
                return Err(bad("terms needs {\"field\": [values]}"));
            };
            let values = values.as_array().ok_or_else(|| bad("terms takes an array of values"))?;
            let should = values
                .iter()
                .map(|v| Ok(Query::Term { field: Some(field.clone()), value: scalar(v)? }))
                .collect::<Result<_, SearchError>>()?;
            Ok(Query::Bool { must: vec![], should, must_not: vec![], min_should: 1 })
        }
        "range" => range(body),
        "exists" => {
            let field = body.get("field").and_then(Value::as_str).ok_or_else(|| bad("exists needs a field"))?;
            Ok(Query::Exists { field: field.to_owned() })
        }
        "prefix" => {
            let (field, spec) = field_spec(kind, body)?;
            let value = scalar(spec.get("value").unwrap_or(spec))?;
            Ok(Query::Wildcard { field: Some(field), pattern: format!("{}*", escape_wildcards(&value)) })
        }
        "wildcard" => {
            let (field, spec) = field_spec(kind, body)?;
            let value = scalar(spec.get("value").or_else(|| spec.get("wildcard")).unwrap_or(spec))?;
            Ok(Query::Wildcard { field: Some(field), pattern: value })
        }
        "ids" => {
            let values = body.get("values").and_then(Value::as_array).ok_or_else(|| bad("ids needs values"))?;
            let should = values
                .iter()
                .map(|v| Ok(Query::Term { field: Some("_id".into()), value: scalar(v)? }))
                .collect::<Result<_, SearchError>>()?;
            Ok(Query::Bool { must: vec![], should, must_not: vec![], min_should: 1 })
        }
        other => Err(bad(format!("query type [{other}] is not supported"))),
    }
}

fn none() -> Query {
    Query::Bool { must: vec![], should: vec![], must_not: vec![Query::All], min_should: 0 }
}

/// `{"field": spec}` with an optional `boost` beside it.
fn field_spec<'a>(kind: &str, body: &'a Value) -> Result<(String, &'a Value), SearchError> {
    body.as_object()
        .and_then(|o| o.iter().find(|(k, _)| *k != "boost"))
        .map(|(k, v)| (k.clone(), v))
        .ok_or_else(|| bad(format!("{kind} needs {{\"field\": ...}}")))
}

/// A string, number or boolean as the text the query tree takes.
fn scalar(v: &Value) -> Result<String, SearchError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(bad(format!("expected a value, not {other}"))),
    }
}

fn list(v: Option<&Value>, depth: usize) -> Result<Vec<Query>, SearchError> {
    match v {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items.iter().map(|q| clause(q, depth + 1)).collect(),
        Some(one) => Ok(vec![clause(one, depth + 1)?]),
    }
}

fn boolean(body: &Value, depth: usize) -> Result<Query, SearchError> {
    let mut must = list(body.get("must"), depth)?;
    must.extend(list(body.get("filter"), depth)?);
    let should = list(body.get("should"), depth)?;
    let must_not = list(body.get("must_not"), depth)?;
    let default = usize::from(must.is_empty() && !should.is_empty());
    let min_should = match body.get("minimum_should_match") {
        None => default,
        Some(Value::Number(n)) => n.as_i64().map_or(default, |n| resolve_min(n, should.len())),
        Some(Value::String(s)) => match s.strip_suffix('%') {
            Some(p) => p.parse::<i64>().map_or(default, |p| resolve_min(should.len() as i64 * p / 100, should.len())),
            None => s.parse::<i64>().map_or(default, |n| resolve_min(n, should.len())),
        },
        Some(_) => default,
    };
    if !should.is_empty() && min_should > should.len() {
        return Ok(none());
    }
    Ok(Query::Bool { must, should, must_not, min_should })
}

/// A negative minimum means "all but n".
fn resolve_min(n: i64, of: usize) -> usize {
    if n < 0 { of.saturating_sub(n.unsigned_abs() as usize) } else { n as usize }
}

fn query_string(body: &Value) -> Result<Query, SearchError> {
    let text = match body {
        Value::String(s) => s.as_str(),
        _ => body.get("query").and_then(Value::as_str).ok_or_else(|| bad("query_string needs a query"))?,
    };
    let op = match body.get("default_operator").and_then(Value::as_str) {
        Some(o) if o.eq_ignore_ascii_case("and") => Operator::And,
        _ => Operator::Or,
    };
    let parsed = query::parse(text, op).map_err(|e| bad(format!("Failed to parse query [{text}]: {e}")))?;
    let field = body
        .get("default_field")
        .and_then(Value::as_str)
        .or_else(|| body.get("fields").and_then(Value::as_array).filter(|f| f.len() == 1).and_then(|f| f[0].as_str()));
    Ok(match field {
        Some(f) if f != "*" && f != "_all" => with_default_field(parsed, f),
        _ => parsed,
    })
}

/// Gives the clauses without a field `field`.
fn with_default_field(q: Query, field: &str) -> Query {
    let f = |x: Option<String>| x.or_else(|| Some(field.to_owned()));
    match q {
        Query::Term { field: x, value } => Query::Term { field: f(x), value },
        Query::Phrase { field: x, text, slop } => Query::Phrase { field: f(x), text, slop },
        Query::Wildcard { field: x, pattern } => Query::Wildcard { field: f(x), pattern },
        Query::Bool { must, should, must_not, min_should } => {
            let map = |v: Vec<Query>| v.into_iter().map(|q| with_default_field(q, field)).collect();
            Query::Bool { must: map(must), should: map(should), must_not: map(must_not), min_should }
        }
        other => other,
    }
}

fn range(body: &Value) -> Result<Query, SearchError> {
    let (field, spec) = field_spec("range", body)?;
    let Some(spec) = spec.as_object() else { return Err(bad("range needs {\"field\": {\"gte\": ...}}")) };
    let seconds = spec.get("format").and_then(Value::as_str).is_some_and(|f| f.contains("epoch_second"));
    let value = |v: &Value| -> Result<String, SearchError> {
        let s = scalar(v)?;
        Ok(match (seconds, s.parse::<f64>()) {
            (true, Ok(secs)) => ((secs * 1000.0) as i64).to_string(),
            _ => s,
        })
    };
    let mut lower = Bound::Unbounded;
    let mut upper = Bound::Unbounded;
    for (k, v) in spec {
        if v.is_null() {
            continue;
        }
        match k.as_str() {
            "gte" => lower = Bound::Included(value(v)?),
            "gt" => lower = Bound::Excluded(value(v)?),
            "from" => lower = Bound::Included(value(v)?),
            "lte" | "to" => upper = Bound::Included(value(v)?),
            "lt" => upper = Bound::Excluded(value(v)?),
            "format" | "time_zone" | "boost" | "relation" | "include_lower" | "include_upper" => {}
            other => return Err(bad(format!("range does not take [{other}]"))),
        }
    }
    Ok(Query::Range { field, lower, upper })
}

fn escape_wildcards(s: &str) -> String {
    s.replace('\\', "\\\\").replace('*', "\\*").replace('?', "\\?")
}

/// The `_index` filter an index expression (`logs-*,-logs-old`, `_all`)
/// means, or None for every event.
pub fn indices(expr: &str) -> Option<Query> {
    let (mut should, mut must_not) = (Vec::new(), Vec::new());
    for part in expr.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "*" || part == "_all" {
            return None;
        }
        let (negated, name) = match part.strip_prefix('-') {
            Some(n) => (true, n),
            None => (false, part),
        };
        let q = if name.contains('*') || name.contains('?') {
            Query::Wildcard { field: Some("_index".into()), pattern: name.to_owned() }
        } else {
            Query::Term { field: Some("_index".into()), value: name.to_owned() }
        };
        if negated { must_not.push(q) } else { should.push(q) }
    }
    if should.is_empty() && must_not.is_empty() {
        return None;
    }
    let min_should = usize::from(!should.is_empty());
    Some(Query::Bool { must: vec![], should, must_not, min_should })
}

/// Both, as one query.
pub fn and(a: Query, b: Option<Query>) -> Query {
    match b {
        None => a,
        Some(b) if a == Query::All => b,
        Some(b) => Query::Bool { must: vec![a, b], should: vec![], must_not: vec![], min_should: 0 },
    }
}

/// Keeps the `_source` fields `filter` asks for: `false`, `true`, a pattern
/// or a list of them, or `{"includes": [...], "excludes": [...]}`.
pub fn source_filter(source: Map<String, Value>, filter: Option<&Value>) -> Option<Map<String, Value>> {
    let patterns = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
            _ => vec![],
        }
    };
    let (includes, excludes) = match filter {
        None | Some(Value::Bool(true)) | Some(Value::Null) => return Some(source),
        Some(Value::Bool(false)) => return None,
        Some(Value::Object(o)) => {
            (patterns(o.get("includes").or_else(|| o.get("include"))), patterns(o.get("excludes").or_else(|| o.get("exclude"))))
        }
        other => (patterns(other), vec![]),
    };
    let hit = |key: &str, pats: &[String]| pats.iter().any(|p| super::matcher::glob(p, key) || key.starts_with(&format!("{p}.")));
    Some(source.into_iter().filter(|(k, _)| (includes.is_empty() || hit(k, &includes)) && !hit(k, &excludes)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn term(field: &str, value: &str) -> Query {
        Query::Term { field: Some(field.into()), value: value.into() }
    }

    #[test]
    fn grafana_and_kibana_bodies() {
        let q = query(&json!({"bool": {"filter": [
            {"range": {"@timestamp": {"gte": 1_704_067_200_000i64, "lte": 1_704_070_800_000i64, "format": "epoch_millis"}}},
            {"query_string": {"analyze_wildcard": true, "query": "level:error OR level:warn"}}
        ]}}))
        .expect("parses");
        let Query::Bool { must, .. } = q else { panic!("bool") };
        assert_eq!(
            must[0],
            Query::Range {
                field: "@timestamp".into(),
                lower: Bound::Included("1704067200000".into()),
                upper: Bound::Included("1704070800000".into())
            }
        );
        assert_eq!(
            must[1],
            Query::Bool { must: vec![], should: vec![term("level", "error"), term("level", "warn")], must_not: vec![], min_should: 1 }
        );
        let q = query(&json!({"range": {"@timestamp": {"gte": 1_704_067_200, "format": "epoch_second"}}})).expect("parses");
        assert_eq!(q, Query::Range { field: "@timestamp".into(), lower: Bound::Included("1704067200000".into()), upper: Bound::Unbounded });
        let q = query(&json!({"match": {"message": {"query": "disk full", "operator": "and"}}})).expect("parses");
        assert_eq!(
            q,
            Query::Bool { must: vec![term("message", "disk"), term("message", "full")], should: vec![], must_not: vec![], min_should: 0 }
        );
        let q = query(&json!({"query_string": {"query": "error", "default_field": "host"}})).expect("parses");
        assert_eq!(q, term("host", "error"));
        let q = query(
            &json!({"bool": {"must": {"match_all": {}}, "should": [{"term": {"a": 1}}, {"term": {"b": 2}}], "minimum_should_match": 1}}),
        );
        assert!(matches!(q, Ok(Query::Bool { min_should: 1, .. })));
    }

    #[test]
    fn errors_name_the_problem() {
        for (body, words) in [
            (json!({"geo_shape": {}}), "not supported"),
            (json!({"query_string": {"query": "a AND"}}), "Failed to parse"),
            (json!({"range": {"x": {"near": 1}}}), "does not take"),
            (json!({"term": {"a": 1}, "match": {"b": 2}}), "one query type"),
        ] {
            let e = query(&body).expect_err(&body.to_string());
            assert!(e.to_string().contains(words), "{body}: {e}");
        }
    }

    #[test]
    fn index_expressions() {
        assert_eq!(indices("_all"), None);
        assert_eq!(indices("logs-*,*"), None);
        let q = indices("logs-*,-logs-old").expect("a filter");
        assert_eq!(
            q,
            Query::Bool {
                must: vec![],
                should: vec![Query::Wildcard { field: Some("_index".into()), pattern: "logs-*".into() }],
                must_not: vec![term("_index", "logs-old")],
                min_should: 1
            }
        );
    }

    #[test]
    fn source_filters() {
        let src: Map<String, Value> = serde_json::from_value(json!({"a": 1, "b": {"c": 2}, "d": 3})).expect("map");
        assert_eq!(source_filter(src.clone(), Some(&json!(false))), None);
        let kept = source_filter(src.clone(), Some(&json!(["a", "b*"]))).expect("kept");
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["a", "b"]);
        let kept = source_filter(src, Some(&json!({"excludes": ["d"]}))).expect("kept");
        assert_eq!(kept.keys().collect::<Vec<_>>(), ["a", "b"]);
    }
}
