//! Elasticsearch aggregations (the subset Grafana and Kibana send) turned
//! into Tantivy's, which follow the same JSON shape, and the results turned
//! back: field names mapped onto the index (`@timestamp` is `ts`, other fields
//! live under `f.`), `date_histogram` run as a histogram over epoch ms with
//! its keys and `key_as_string` restored.

use serde_json::{Map, Value, json};
use tantivy::aggregation::agg_req::Aggregations;

use super::search::{SearchError, column};
use super::time::{format_ms, parse_date_math};

/// An aggregation request ready for the index, with what is needed to give
/// its results Elasticsearch's shape.
#[derive(Debug, Clone)]
pub struct Plan {
    pub request: Aggregations,
    shapes: Map<String, Value>,
}

fn bad(message: String) -> SearchError {
    SearchError::Bad(message)
}

/// Translates an `aggs` object. `now_ms` anchors date math in bounds.
pub fn plan(es: &Value, now_ms: i64) -> Result<Plan, SearchError> {
    let (tantivy, shapes) = translate(es, now_ms, 0)?;
    let request: Aggregations = serde_json::from_value(Value::Object(tantivy)).map_err(|e| bad(format!("aggregations: {e}")))?;
    Ok(Plan { request, shapes })
}

/// Tantivy's request, and per name the shape notes for the results.
type Translated = (Map<String, Value>, Map<String, Value>);

fn translate(es: &Value, now_ms: i64, depth: usize) -> Result<Translated, SearchError> {
    if depth > 8 {
        return Err(bad("aggregations nest deeper than 8 levels".into()));
    }
    let Some(aggs) = es.as_object() else { return Err(bad("aggs must be an object".into())) };
    let (mut out, mut shapes) = (Map::new(), Map::new());
    for (name, body) in aggs {
        let Some(body) = body.as_object() else { return Err(bad(format!("aggregation {name:?} must be an object"))) };
        let mut translated = Map::new();
        let mut shape = Map::new();
        for (kind, spec) in body {
            match kind.as_str() {
                "aggs" | "aggregations" => {
                    let (sub, sub_shapes) = translate(spec, now_ms, depth + 1)?;
                    translated.insert("aggs".into(), Value::Object(sub));
                    shape.insert("aggs".into(), Value::Object(sub_shapes));
                }
                "meta" => {}
                _ => {
                    let (t, note) = one(name, kind, spec, now_ms)?;
                    translated.insert(t.0, t.1);
                    shape.insert("kind".into(), note);
                }
            }
        }
        if !shape.contains_key("kind") {
            return Err(bad(format!("aggregation {name:?} names no aggregation type")));
        }
        out.insert(name.clone(), Value::Object(translated));
        shapes.insert(name.clone(), Value::Object(shape));
    }
    Ok((out, shapes))
}

/// One aggregation: ((Tantivy type, body), shape note).
fn one(name: &str, kind: &str, spec: &Value, now_ms: i64) -> Result<((String, Value), Value), SearchError> {
    let Some(spec) = spec.as_object() else { return Err(bad(format!("{kind} in {name:?} must be an object"))) };
    let field = || -> Result<String, SearchError> {
        let f = spec.get("field").and_then(Value::as_str).ok_or_else(|| bad(format!("{kind} in {name:?} needs a field")))?;
        column(f)
    };
    match kind {
        "date_histogram" => {
            let f = field()?;
            if f != super::index::TS {
                return Err(bad(format!("date_histogram in {name:?} works on @timestamp only")));
            }
            let interval = ["fixed_interval", "calendar_interval", "interval"]
                .iter()
                .find_map(|k| spec.get(*k))
                .ok_or_else(|| bad(format!("date_histogram in {name:?} needs fixed_interval")))?;
            let interval = interval_ms(interval).ok_or_else(|| {
                bad(format!("date_histogram interval {interval} is not a fixed length (ms, s, m, h, d, w; months and years are not)"))
            })?;
            let mut t =
                json!({"field": f, "interval": interval, "min_doc_count": spec.get("min_doc_count").and_then(Value::as_u64).unwrap_or(0)});
            if let Some(offset) = spec.get("offset") {
                let ms = offset_ms(offset).ok_or_else(|| bad(format!("date_histogram offset {offset} is not a duration")))?;
                t["offset"] = json!(ms.rem_euclid(interval));
            }
            for bounds in ["extended_bounds", "hard_bounds"] {
                if let Some(b) = spec.get(bounds) {
                    let end = |k: &str| b.get(k).and_then(|v| time_value(v, now_ms));
                    match (end("min"), end("max")) {
                        (Some(min), Some(max)) if min <= max => t[bounds] = json!({"min": min, "max": max}),
                        _ => return Err(bad(format!("date_histogram {bounds} needs min <= max, as times"))),
                    }
                }
            }
            let format = spec.get("format").and_then(Value::as_str).unwrap_or("").to_owned();
            Ok((("histogram".into(), t), json!({"date_histogram": format})))
        }
        "histogram" | "range" => {
            let mut t = spec.clone();
            t.insert("field".into(), json!(field()?));
            Ok(((kind.into(), Value::Object(t)), json!(kind)))
        }
        "terms" => {
            let mut t = Map::new();
            t.insert("field".into(), json!(field()?));
            for key in ["size", "shard_size", "min_doc_count", "missing", "show_term_doc_count_error"] {
                if let Some(v) = spec.get(key) {
                    t.insert(key.into(), v.clone());
                }
            }
            if let Some(order) = spec.get("order") {
                t.insert("order".into(), terms_order(order)?);
            }
            Ok((("terms".into(), Value::Object(t)), json!("terms")))
        }
        "avg" | "sum" | "min" | "max" | "value_count" | "cardinality" | "stats" | "extended_stats" | "percentiles" => {
            let mut t = Map::new();
            t.insert("field".into(), json!(field()?));
            for key in ["missing", "percents", "keyed", "sigma"] {
                if let Some(v) = spec.get(key) {
                    t.insert(key.into(), v.clone());
                }
            }
            Ok(((kind.into(), Value::Object(t)), json!(kind)))
        }
        other => Err(bad(format!("aggregation type {other:?} (in {name:?}) is not supported"))),
    }
}

/// `{"_count":"desc"}`, `{"_key":"asc"}`, `{"_term":"asc"}` (older clients),
/// or a sub-aggregation's name.
fn terms_order(order: &Value) -> Result<Value, SearchError> {
    let one = |o: &Value| -> Result<Value, SearchError> {
        let Some((k, v)) = o.as_object().and_then(|m| m.iter().next()) else {
            return Err(bad("terms order must be {\"key\": \"asc|desc\"}".into()));
        };
        let k = if k == "_term" { "_key" } else { k.as_str() };
        Ok(json!({ k: v }))
    };
    match order {
        Value::Array(items) => items.first().map(one).unwrap_or_else(|| Ok(json!({"_count": "desc"}))),
        other => one(other),
    }
}

/// `30s`, `5m`, `1h`, `1d`, `1w`, `250ms`, or a bare number of ms.
pub fn interval_ms(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return (n > 0).then_some(n);
    }
    let s = v.as_str()?.trim();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: i64 = if digits == 0 { 1 } else { s[..digits].parse().ok()? };
    let unit = match &s[digits..] {
        "ms" | "" => 1,
        "s" | "second" => 1000,
        "m" | "minute" => 60_000,
        "h" | "hour" => 3_600_000,
        "d" | "day" => 86_400_000,
        "w" | "week" => 604_800_000,
        _ => return None,
    };
    n.checked_mul(unit).filter(|&ms| ms > 0)
}

/// `+1h`, `-30m`, `2h`: a signed duration.
fn offset_ms(v: &Value) -> Option<i64> {
    if let Some(n) = v.as_i64() {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    match s.strip_prefix('-') {
        Some(rest) => interval_ms(&json!(rest)).map(|ms| -ms),
        None => interval_ms(&json!(s.strip_prefix('+').unwrap_or(s))),
    }
}

/// Epoch ms as a number or numeric string, or date math.
fn time_value(v: &Value, now_ms: i64) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => parse_date_math(s, now_ms, false),
        _ => None,
    }
}

/// Tantivy's results (as JSON) in Elasticsearch's shape.
pub fn finish(plan: &Plan, results: Value) -> Value {
    let mut results = results;
    reshape(&plan.shapes, &mut results);
    results
}

fn reshape(shapes: &Map<String, Value>, results: &mut Value) {
    let Some(results) = results.as_object_mut() else { return };
    for (name, shape) in shapes {
        let Some(result) = results.get_mut(name) else { continue };
        let sub = shape.get("aggs").and_then(Value::as_object);
        let date_format = shape.get("kind").and_then(|k| k.get("date_histogram")).and_then(Value::as_str);
        let Some(buckets) = result.get_mut("buckets") else { continue };
        let list: Vec<&mut Value> = match buckets {
            Value::Array(items) => items.iter_mut().collect(),
            Value::Object(map) => map.values_mut().collect(),
            _ => continue,
        };
        for bucket in list {
            if let Some(format) = date_format
                && let Some(key) = bucket.get("key").and_then(Value::as_f64)
            {
                let ms = key as i64;
                bucket["key"] = json!(ms);
                bucket["key_as_string"] = json!(if format == "epoch_millis" { ms.to_string() } else { format_ms(ms) });
            }
            if let Some(sub) = sub {
                reshape(sub, bucket);
            }
        }
    }
}

/// `(key ms, count)` of the histogram named `name` in results.
pub fn histogram_counts(results: Option<&Value>, name: &str) -> Vec<(i64, u64)> {
    let buckets = results.and_then(|r| r.get(name)).and_then(|h| h.get("buckets")).and_then(Value::as_array);
    buckets
        .map(|b| b.iter().filter_map(|b| Some((b.get("key")?.as_f64()? as i64, b.get("doc_count")?.as_u64()?))).collect())
        .unwrap_or_default()
}

/// `((value, count)..., others)` of the terms aggregation named `name`.
pub fn terms_counts(results: Option<&Value>, name: &str) -> (Vec<(Value, u64)>, u64) {
    let Some(t) = results.and_then(|r| r.get(name)) else { return (Vec::new(), 0) };
    let values = t
        .get("buckets")
        .and_then(Value::as_array)
        .map(|b| b.iter().filter_map(|b| Some((b.get("key")?.clone(), b.get("doc_count")?.as_u64()?))).collect())
        .unwrap_or_default();
    (values, t.get("sum_other_doc_count").and_then(Value::as_u64).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grafana_date_histogram_becomes_a_histogram_over_ms() {
        let es = json!({"2": {"date_histogram": {"field": "@timestamp", "fixed_interval": "30s", "min_doc_count": 0,
            "extended_bounds": {"min": 1_704_067_200_000i64, "max": "1704067500000"}, "format": "epoch_millis"},
            "aggs": {"3": {"avg": {"field": "latency_ms"}}, "4": {"terms": {"field": "host.keyword", "size": 5, "order": {"_term": "asc"}}}}}});
        let p = plan(&es, 0).expect("plan");
        let tantivy = serde_json::to_value(&p.request).expect("serializes");
        assert_eq!(tantivy["2"]["histogram"]["field"], "ts");
        assert_eq!(tantivy["2"]["histogram"]["interval"], 30_000.0);
        assert_eq!(tantivy["2"]["aggs"]["3"]["avg"]["field"], "f.latency_ms");
        assert_eq!(tantivy["2"]["aggs"]["4"]["terms"]["field"], "f.host");
        let raw = json!({"2": {"buckets": [{"key": 1_704_067_200_000.0, "doc_count": 2, "3": {"value": 1.5}}]}});
        let done = finish(&p, raw);
        assert_eq!(done["2"]["buckets"][0]["key"], json!(1_704_067_200_000i64));
        assert_eq!(done["2"]["buckets"][0]["key_as_string"], "1704067200000");
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        for es in [
            json!({"a": {"date_histogram": {"field": "@timestamp", "calendar_interval": "1M"}}}),
            json!({"a": {"geohash_grid": {"field": "loc"}}}),
            json!({"a": {"terms": {"field": "message"}}}),
            json!({"a": {"avg": {}}}),
            json!({"a": {"date_histogram": {"field": "host", "fixed_interval": "1m"}}}),
        ] {
            assert!(plan(&es, 0).is_err(), "{es}");
        }
        assert_eq!(interval_ms(&json!("1d")), Some(86_400_000));
        assert_eq!(interval_ms(&json!("250ms")), Some(250));
        assert_eq!(interval_ms(&json!("1M")), None);
    }
}
