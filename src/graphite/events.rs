//! Graphite-web's events (annotations): `POST /events` stores
//! `{"what", "tags", "when", "data"}`, `GET /events/get_data` lists them by
//! time and tags, the shape Grafana's annotation queries read.

use serde_json::{Value, json};

use super::render::{Reply, first, json_str};
use super::timespec;
use crate::tsdb::Store;

/// `POST /events`: 200 with an empty body once stored, as graphite-web.
pub fn post(store: &Store, body: &[u8], wall: i64) -> Reply {
    let event: Value = match serde_json::from_slice(body) {
        Ok(Value::Object(o)) => Value::Object(o),
        Ok(_) => return Reply::error(400, "an event is a JSON object".into()),
        Err(e) => return Reply::error(400, format!("the event is not JSON: {e}")),
    };
    let tags = match &event["tags"] {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let words: Option<Vec<&str>> = items.iter().map(Value::as_str).collect();
            match words {
                Some(w) => w.join(" "),
                None => return Reply::error(400, "\"tags\" must be an array or space-separated string".into()),
            }
        }
        _ => return Reply::error(400, "\"tags\" must be an array or space-separated string".into()),
    };
    let when = match &event["when"] {
        Value::Null => wall,
        v => match v.as_f64() {
            Some(t) if t.is_finite() => t as i64,
            _ => return Reply::error(400, "\"when\" must be epoch seconds".into()),
        },
    };
    let what = match &event["what"] {
        Value::Null => Value::Null,
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    };
    let data = match &event["data"] {
        Value::Null => Value::String(String::new()),
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    };
    let stored = json!({ "what": what, "data": data, "tags": tags });
    match store.add_event(when, stored.to_string().as_bytes()) {
        Ok(_) => Reply { status: 200, content_type: "text/html", body: Vec::new() },
        Err(e) => Reply::error(500, format!("cannot store the event: {e}")),
    }
}

/// `GET /events/get_data?from=&until=&tags=a b&set=union|intersection`:
/// `[{"when", "what", "data", "tags", "id"}]`, oldest first. Without `set`,
/// an event must carry every tag asked for.
pub fn get_data(store: &Store, params: &[(String, String)], wall: i64) -> Reply {
    let time = |key: &str, default: i64| match first(params, key) {
        Some(spec) => timespec::parse(spec, wall).map_err(|e| e.to_string()),
        None => Ok(default),
    };
    let (from, until) = match (time("from", 0), time("until", wall)) {
        (Ok(f), Ok(u)) => (f, u),
        (Err(e), _) | (_, Err(e)) => return Reply::error(400, e),
    };
    let wanted: Option<Vec<&str>> = first(params, "tags").map(|t| t.split(' ').filter(|w| !w.is_empty()).collect());
    let union = first(params, "set") == Some("union");
    let events = match store.events(from, until) {
        Ok(e) => e,
        Err(e) => return Reply::error(500, format!("cannot read events: {e}")),
    };
    let mut out = Vec::new();
    for (when, id, body) in events {
        let Ok(stored) = serde_json::from_slice::<Value>(&body) else { continue };
        let tags: Vec<&str> = stored["tags"].as_str().unwrap_or("").split_whitespace().collect();
        let keep = match &wanted {
            None => true,
            Some(w) if union => w.iter().any(|t| tags.contains(t)),
            Some(w) => w.iter().all(|t| tags.contains(t)),
        };
        if keep {
            // graphite-web's key order and json.dumps separators, byte for byte.
            let text = |v: &Value| v.as_str().map_or_else(|| "null".to_string(), json_str);
            let tags: Vec<String> = tags.iter().map(|t| json_str(t)).collect();
            out.push(format!(
                "{{\"when\": {when}, \"what\": {}, \"data\": {}, \"tags\": [{}], \"id\": {id}}}",
                text(&stored["what"]),
                text(&stored["data"]),
                tags.join(", ")
            ));
        }
    }
    let text = format!("[{}]", out.join(", "));
    match first(params, "jsonp").filter(|j| !j.is_empty()) {
        Some(cb) => Reply { status: 200, content_type: "text/javascript", body: format!("{cb}({text})").into_bytes() },
        None => Reply { status: 200, content_type: "application/json", body: text.into_bytes() },
    }
}
