//! The event model every input maps into (CONTRACT.md, compat-spec §6): a flat
//! JSON object with `@timestamp`, `message`, `host`, `source`, `level` where
//! known, and every other field the sender gave, bounded in count and size.
//! Also the logstash `json`/`json_lines` decoding rules (compat-spec §6.5),
//! which the JSON inputs, Redis, HTTP and `_bulk` share.

use std::borrow::Cow;
use std::sync::Arc;

use serde_json::Value;
use tantivy::TantivyDocument;

use super::json::{Json, Object};
use super::{index, time};

/// Fields an input builds one by one (syslog, GELF, DogStatsD events).
pub type Fields = serde_json::Map<String, Value>;

/// What a parser that builds its fields hands on: the event time (epoch ms)
/// and the fields it found; `@timestamp` is written from `ts_ms` when the
/// event is built.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub ts_ms: i64,
    pub fields: Fields,
}

/// What the JSON inputs hand on: the event time and the members read in
/// place from the text, in the sender's order.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded<'a> {
    pub ts_ms: i64,
    pub fields: Object<'a>,
}

/// An event ready for the log: its time, its `_id` if it has one, its JSON as
/// stored (the WAL record, `_src`, live tails), and its index document, built
/// where it arrived rather than on the one indexer thread.
pub struct Event {
    pub ts_ms: i64,
    pub id: Option<String>,
    pub json: Arc<str>,
    pub doc: TantivyDocument,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("event has {count} fields, over logs.max_fields {max}")]
    TooManyFields { count: usize, max: usize },
}

/// An input's event as stored.
pub trait IntoEvent {
    /// The event as stored: `@timestamp` (first) from `ts_ms`, `@version` "1"
    /// unless given, `source` = the input it came by (a sender's own `source`
    /// is kept as `source_field`), `host` = `peer` when the sender named none.
    fn into_event(self, source: &str, peer: Option<&str>, max_fields: usize) -> Result<Event, EventError>;
}

impl IntoEvent for Parsed {
    fn into_event(self, source: &str, peer: Option<&str>, max_fields: usize) -> Result<Event, EventError> {
        Decoded { ts_ms: self.ts_ms, fields: Object::borrowing(&self.fields) }.into_event(source, peer, max_fields)
    }
}

impl IntoEvent for Decoded<'_> {
    fn into_event(self, source: &str, peer: Option<&str>, max_fields: usize) -> Result<Event, EventError> {
        let Decoded { ts_ms, fields } = self;
        let count = fields.keys();
        if count > max_fields {
            return Err(EventError::TooManyFields { count, max: max_fields });
        }
        let mut fields: Object<'_> = fields;
        fields.insert_first("@timestamp", Json::string(time::format_ms(ts_ms)));
        if !fields.contains_key("@version") {
            fields.insert("@version", Json::string("1"));
        }
        if let Some(theirs) = fields.insert("source", Json::string(source))
            && theirs.as_str() != Some(source)
        {
            fields.insert("source_field", theirs);
        }
        if let Some(peer) = peer
            && !fields.contains_key("host")
        {
            fields.insert("host", Json::string(peer));
        }
        let json = serde_json::to_string(&fields).expect("JSON members serialize");
        let (id, doc) = indexed(&fields, ts_ms, &json);
        Ok(Event { ts_ms, id, json: json.into(), doc })
    }
}

impl Event {
    /// An event as stored before (WAL replay): its JSON is read, not changed.
    pub fn stored(ts_ms: i64, json: String) -> Result<Event, serde_json::Error> {
        let (id, doc) = indexed(&serde_json::from_str(&json)?, ts_ms, &json);
        Ok(Event { ts_ms, id, json: json.into(), doc })
    }
}

/// An event's `_id` and index document.
fn indexed(fields: &Object<'_>, ts_ms: i64, json: &str) -> (Option<String>, TantivyDocument) {
    (fields.get("_id").and_then(Json::as_str).map(str::to_owned), index::document(fields, ts_ms, json))
}

/// One `json_lines` line (or one Redis element, HTTP line): an object is one
/// event, an array one event per element, anything else (invalid JSON, a
/// scalar) one event with the raw text as `message` and tag
/// `_jsonparsefailure`. Never empty for a non-blank line.
pub fn from_json_line(line: &[u8], now_ms: i64) -> Vec<Decoded<'_>> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    match serde_json::from_slice::<Json>(line) {
        Ok(Json::Object(map)) => vec![normalize(map, now_ms)],
        Ok(Json::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Json::Object(map) => normalize(map, now_ms),
                other => failure(Cow::Owned(other.to_string()), now_ms),
            })
            .collect(),
        _ => vec![failure(String::from_utf8_lossy(line), now_ms)],
    }
}

fn failure(raw: Cow<'_, str>, now_ms: i64) -> Decoded<'_> {
    let mut fields = Object::new();
    fields.insert("message", Json::String(raw));
    fields.insert("tags", Json::Array(vec![Json::string("_jsonparsefailure")]));
    Decoded { ts_ms: now_ms, fields }
}

/// Logstash's event rules for a decoded JSON object: the v0 schema upgraded,
/// `@timestamp` parsed (ISO 8601, or a number as epoch milliseconds; anything
/// else: now, tag `_timestampparsefailure`, the original kept in
/// `_@timestamp`), `tags` made an array of strings.
pub fn normalize(mut map: Object<'_>, now_ms: i64) -> Decoded<'_> {
    upgrade_v0(&mut map);
    let mut ts_ms = now_ms;
    if let Some(given) = map.remove("@timestamp") {
        match timestamp_of(&given) {
            Some(ms) => ts_ms = ms,
            None => {
                add_tag(&mut map, "_timestampparsefailure");
                map.insert("_@timestamp", given);
            }
        }
    }
    if let Some(tags) = map.get_mut("tags") {
        match tags {
            Json::Array(items) => {
                for item in items.iter_mut() {
                    if !matches!(item, Json::String(_)) {
                        *item = Json::string(item.to_string());
                    }
                }
            }
            Json::Null => *tags = Json::Array(Vec::new()),
            Json::String(s) => *tags = Json::Array(vec![Json::String(std::mem::take(s))]),
            other => {
                let text = other.to_string();
                *other = Json::Array(vec![Json::string(text)]);
            }
        }
    }
    Decoded { ts_ms, fields: map }
}

fn timestamp_of(v: &Json<'_>) -> Option<i64> {
    match v {
        Json::String(s) => time::parse_rfc3339(s.trim()),
        Json::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 9.0e15).map(|f| f as i64)),
        _ => None,
    }
}

fn add_tag(map: &mut Object<'_>, tag: &'static str) {
    match map.get_mut("tags") {
        Some(Json::Array(items)) => items.push(Json::string(tag)),
        _ => {
            let old = map.remove("tags");
            let mut items: Vec<Json> = old.into_iter().filter(|v| !matches!(v, Json::Null)).collect();
            items.push(Json::string(tag));
            map.insert("tags", Json::Array(items));
        }
    }
}

/// The logstash v0 schema (`@message`, `@fields`, ...) to v1 (compat-spec §6.5).
fn upgrade_v0(map: &mut Object<'_>) {
    const RENAMES: [(&str, &str); 5] =
        [("@message", "message"), ("@source_host", "host"), ("@source_path", "path"), ("@tags", "tags"), ("@type", "type")];
    for (old, new) in RENAMES {
        if let Some(v) = map.remove(old)
            && !map.contains_key(new)
        {
            map.insert(new, v);
        }
    }
    if let Some(Json::Object(fields)) = map.remove("@fields") {
        for (k, v) in fields {
            if map.contains_key(&k) {
                map.insert(format!("fields.{k}"), v);
            } else {
                map.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000_000;

    fn one(line: &str) -> Decoded<'_> {
        let mut all = from_json_line(line.as_bytes(), NOW);
        assert_eq!(all.len(), 1);
        all.pop().unwrap()
    }

    /// The members as serde_json sees them.
    fn value(fields: &Object<'_>) -> Value {
        serde_json::to_value(fields).unwrap()
    }

    fn stored(e: &Event) -> Value {
        serde_json::from_str(&e.json).unwrap()
    }

    /// A number is stored as the sender wrote it: Python's `json.dumps` and
    /// JavaScript write a float's shortest round-trip digits, up to 17.
    fn float_is_stored_as_sent(f: f64) {
        let text = serde_json::to_string(&f).unwrap();
        let e = one(&format!(r#"{{"message":"m","v":{text}}}"#)).into_event("json_tcp", None, 100).unwrap();
        assert!(e.json.contains(&format!(r#""v":{text}"#)), "{text} stored as {}", e.json);
    }

    #[test]
    fn floats_keep_every_digit() {
        // Both read back one unit in the last place off before serde_json's
        // float_roundtrip (checked against str::parse).
        for f in [0.9222222222222223, 1.0715660391465826e-75] {
            float_is_stored_as_sent(f);
        }
    }

    proptest::proptest! {
        #[test]
        fn any_finite_float_is_stored_as_sent(bits in proptest::num::u64::ANY) {
            let f = f64::from_bits(bits);
            proptest::prop_assume!(f.is_finite());
            float_is_stored_as_sent(f);
        }
    }

    #[test]
    fn python_logstash_v1_keeps_everything() {
        let p = one(
            r#"{"@timestamp":"2024-01-01T00:00:00.123Z","@version":"1","message":"m","host":"h","path":"/x.py","tags":[],"type":"logstash","level":"INFO","logger_name":"app","user":7}"#,
        );
        assert_eq!(p.ts_ms, 1_704_067_200_123);
        assert_eq!(value(&p.fields)["user"], json!(7));
        let e = p.into_event("json_tcp", Some("10.0.0.1"), 100).unwrap();
        let f = stored(&e);
        assert_eq!(f["@timestamp"], json!("2024-01-01T00:00:00.123Z"));
        assert_eq!(f["host"], json!("h"));
        assert_eq!(f["source"], json!("json_tcp"));
        // The sender's order, after the time.
        assert!(
            e.json.starts_with(r#"{"@timestamp":"2024-01-01T00:00:00.123Z","@version":"1","message":"m","host":"h","path""#),
            "{}",
            e.json
        );
    }

    #[test]
    fn v0_is_upgraded_and_existing_keys_win() {
        let p = one(
            r#"{"@timestamp":"2024-01-01T00:00:00.000000Z","@message":"m","@source_host":"h","@source_path":"/p","@tags":["a"],"@type":"t","@source":"file:///p","@fields":{"levelname":"INFO","message":"inner"}}"#,
        );
        let f = value(&p.fields);
        assert_eq!((f["message"].clone(), f["host"].clone(), f["path"].clone()), (json!("m"), json!("h"), json!("/p")));
        assert_eq!((f["tags"].clone(), f["type"].clone(), f["@source"].clone()), (json!(["a"]), json!("t"), json!("file:///p")));
        assert_eq!(f["levelname"], json!("INFO"));
        assert_eq!(f["fields.message"], json!("inner"));
    }

    #[test]
    fn a_long_v0_event_is_upgraded_as_a_short_one() {
        // Past the length where keys are looked up by position.
        let top: Vec<String> = (0..100).map(|i| format!("\"k{i}\":{i}")).collect();
        let inner: Vec<String> = (50..150).map(|i| format!("\"k{i}\":\"inner {i}\"")).collect();
        let line = format!("{{{},\"@fields\":{{{}}}}}", top.join(","), inner.join(","));
        let f = value(&one(&line).fields);
        assert_eq!(f.as_object().unwrap().len(), 200);
        assert_eq!((f["k10"].clone(), f["k60"].clone(), f["fields.k60"].clone()), (json!(10), json!(60), json!("inner 60")));
        assert_eq!((f["k120"].clone(), f.get("fields.k120")), (json!("inner 120"), None));
    }

    #[test]
    fn an_unparseable_timestamp_is_tagged_and_kept() {
        let p = one(r#"{"@timestamp":"garbage","message":"m","tags":"x"}"#);
        assert_eq!(p.ts_ms, NOW);
        let f = value(&p.fields);
        assert_eq!(f["tags"], json!(["x", "_timestampparsefailure"]));
        assert_eq!(f["_@timestamp"], json!("garbage"));
        let p = one(r#"{"@timestamp":true,"tags":[1,{"a":null},"s"]}"#);
        assert_eq!(value(&p.fields)["tags"], json!(["1", "{\"a\":null}", "s", "_timestampparsefailure"]));
    }

    #[test]
    fn numeric_timestamps_are_epoch_millis_and_numeric_version_is_kept() {
        let p = one(r#"{"@timestamp":1704067200123,"@version":1,"message":"m"}"#);
        assert_eq!(p.ts_ms, 1_704_067_200_123);
        let e = p.into_event("resp", None, 100).unwrap();
        assert_eq!(stored(&e)["@version"], json!(1));
    }

    #[test]
    fn arrays_are_one_event_each_and_bad_json_is_kept_raw() {
        assert_eq!(from_json_line(br#"[{"message":"a"},{"message":"b"}]"#, NOW).len(), 2);
        let p = one("{not json");
        let f = value(&p.fields);
        assert_eq!(f["message"], json!("{not json"));
        assert_eq!(f["tags"], json!(["_jsonparsefailure"]));
        assert_eq!(p.ts_ms, NOW);
        assert_eq!(value(&one("\u{feff}{\"message\":\"bom\"}").fields)["message"], json!("bom"));
        let items = from_json_line(br#"[{"message":"a"},[1,"x"]]"#, NOW);
        assert_eq!(value(&items[1].fields)["message"], json!("[1,\"x\"]"));
    }

    #[test]
    fn field_count_is_bounded_over_the_whole_tree() {
        let p = one(r#"{"a":1,"b":{"c":1,"d":[{"e":1}]}}"#);
        assert_eq!(p.fields.keys(), 5);
        assert_eq!(p.clone().into_event("http", None, 4).err(), Some(EventError::TooManyFields { count: 5, max: 4 }));
        assert!(p.into_event("http", None, 5).is_ok());
    }

    #[test]
    fn a_senders_source_is_kept_aside() {
        let e = one(r#"{"message":"m","source":"/var/log/x"}"#).into_event("http", None, 10).unwrap();
        let f = stored(&e);
        assert_eq!(f["source"], json!("http"));
        assert_eq!(f["source_field"], json!("/var/log/x"));
    }

    #[test]
    fn a_stored_event_reads_back_to_the_same_document_and_id() {
        let line = r#"{"message":"m \u00e9","_id":"abc","n":[1,null,2.5],"o":{"k":"v"}}"#;
        let live = one(line).into_event("http", Some("peer"), 100).unwrap();
        let replayed = Event::stored(live.ts_ms, live.json.to_string()).unwrap();
        assert_eq!(replayed.id.as_deref(), Some("abc"));
        assert_eq!(live.id, replayed.id);
        assert_eq!(format!("{:?}", live.doc), format!("{:?}", replayed.doc));
        assert!(Event::stored(0, "[1]".into()).is_err());
    }
}
