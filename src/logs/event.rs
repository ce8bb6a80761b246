//! The event model every input maps into (CONTRACT.md, compat-spec §6): a flat
//! JSON object with `@timestamp`, `message`, `host`, `source`, `level` where
//! known, and every other field the sender gave, bounded in count and size.
//! Also the logstash `json`/`json_lines` decoding rules (compat-spec §6.5),
//! which the JSON inputs, Redis, HTTP and `_bulk` share.

use serde_json::Value;

use super::time;

/// An event's fields, in the order the sender gave them.
pub type Fields = serde_json::Map<String, Value>;

/// What a protocol parser hands on: the event time (epoch ms) and the fields
/// it found; `@timestamp` is written from `ts_ms` when the event is built.
#[derive(Debug, Clone, PartialEq)]
pub struct Parsed {
    pub ts_ms: i64,
    pub fields: Fields,
}

/// An event ready for the log: its time, and its fields with `@timestamp`,
/// `@version` and `source` set.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ts_ms: i64,
    pub fields: Fields,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EventError {
    #[error("event has {count} fields, over logs.max_fields {max}")]
    TooManyFields { count: usize, max: usize },
}

impl Parsed {
    /// The event as stored: `@timestamp` from `ts_ms`, `@version` "1" unless
    /// given, `source` = the input it came by (a sender's own `source` is kept
    /// as `source_field`), `host` = `peer` when the sender named none.
    pub fn into_event(self, source: &str, peer: Option<&str>, max_fields: usize) -> Result<Event, EventError> {
        let Parsed { ts_ms, mut fields } = self;
        let count = count_fields(&fields);
        if count > max_fields {
            return Err(EventError::TooManyFields { count, max: max_fields });
        }
        fields.insert("@timestamp".into(), Value::String(time::format_ms(ts_ms)));
        if !fields.contains_key("@version") {
            fields.insert("@version".into(), Value::String("1".into()));
        }
        if let Some(theirs) = fields.insert("source".into(), Value::String(source.into()))
            && theirs.as_str() != Some(source)
        {
            fields.insert("source_field".into(), theirs);
        }
        if let Some(peer) = peer
            && !fields.contains_key("host")
        {
            fields.insert("host".into(), Value::String(peer.into()));
        }
        Ok(Event { ts_ms, fields })
    }
}

/// Keys in the whole object tree: what `logs.max_fields` bounds.
fn count_fields(fields: &Fields) -> usize {
    fn walk(v: &Value) -> usize {
        match v {
            Value::Object(m) => m.values().map(|v| 1 + walk(v)).sum(),
            Value::Array(a) => a.iter().map(walk).sum(),
            _ => 0,
        }
    }
    fields.values().map(|v| 1 + walk(v)).sum()
}

/// One `json_lines` line (or one Redis element, HTTP line): an object is one
/// event, an array one event per element, anything else (invalid JSON, a
/// scalar) one event with the raw text as `message` and tag
/// `_jsonparsefailure`. Never empty for a non-blank line.
pub fn from_json_line(line: &[u8], now_ms: i64) -> Vec<Parsed> {
    let line = line.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(line);
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(map)) => vec![normalize(map, now_ms)],
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::Object(map) => normalize(map, now_ms),
                other => failure(other.to_string(), now_ms),
            })
            .collect(),
        _ => vec![failure(String::from_utf8_lossy(line).into_owned(), now_ms)],
    }
}

fn failure(raw: String, now_ms: i64) -> Parsed {
    let mut fields = Fields::new();
    fields.insert("message".into(), Value::String(raw));
    fields.insert("tags".into(), Value::Array(vec![Value::String("_jsonparsefailure".into())]));
    Parsed { ts_ms: now_ms, fields }
}

/// Logstash's event rules for a decoded JSON object: the v0 schema upgraded,
/// `@timestamp` parsed (ISO 8601, or a number as epoch milliseconds; anything
/// else: now, tag `_timestampparsefailure`, the original kept in
/// `_@timestamp`), `tags` made an array of strings.
pub fn normalize(mut map: Fields, now_ms: i64) -> Parsed {
    upgrade_v0(&mut map);
    let mut ts_ms = now_ms;
    if let Some(given) = map.remove("@timestamp") {
        match timestamp_of(&given) {
            Some(ms) => ts_ms = ms,
            None => {
                add_tag(&mut map, "_timestampparsefailure");
                map.insert("_@timestamp".into(), given);
            }
        }
    }
    if let Some(tags) = map.get_mut("tags") {
        match tags {
            Value::Array(items) => {
                for item in items.iter_mut() {
                    if !item.is_string() {
                        *item = Value::String(item.to_string());
                    }
                }
            }
            Value::Null => *tags = Value::Array(Vec::new()),
            Value::String(s) => *tags = Value::Array(vec![Value::String(std::mem::take(s))]),
            other => {
                let text = other.to_string();
                *other = Value::Array(vec![Value::String(text)]);
            }
        }
    }
    Parsed { ts_ms, fields: map }
}

fn timestamp_of(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => time::parse_rfc3339(s.trim()),
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().filter(|f| f.is_finite() && f.abs() < 9.0e15).map(|f| f as i64)),
        _ => None,
    }
}

fn add_tag(map: &mut Fields, tag: &str) {
    match map.get_mut("tags") {
        Some(Value::Array(items)) => items.push(Value::String(tag.into())),
        _ => {
            let old = map.remove("tags");
            let mut items: Vec<Value> = old.into_iter().filter(|v| !v.is_null()).collect();
            items.push(Value::String(tag.into()));
            map.insert("tags".into(), Value::Array(items));
        }
    }
}

/// The logstash v0 schema (`@message`, `@fields`, ...) to v1 (compat-spec §6.5).
fn upgrade_v0(map: &mut Fields) {
    const RENAMES: [(&str, &str); 5] =
        [("@message", "message"), ("@source_host", "host"), ("@source_path", "path"), ("@tags", "tags"), ("@type", "type")];
    for (old, new) in RENAMES {
        if let Some(v) = map.remove(old) {
            map.entry(new).or_insert(v);
        }
    }
    if let Some(Value::Object(fields)) = map.remove("@fields") {
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

    fn one(line: &str) -> Parsed {
        let mut all = from_json_line(line.as_bytes(), NOW);
        assert_eq!(all.len(), 1);
        all.pop().unwrap()
    }

    #[test]
    fn python_logstash_v1_keeps_everything() {
        let p = one(
            r#"{"@timestamp":"2024-01-01T00:00:00.123Z","@version":"1","message":"m","host":"h","path":"/x.py","tags":[],"type":"logstash","level":"INFO","logger_name":"app","user":7}"#,
        );
        assert_eq!(p.ts_ms, 1_704_067_200_123);
        assert_eq!(p.fields["user"], json!(7));
        let e = p.into_event("json_tcp", Some("10.0.0.1"), 100).unwrap();
        assert_eq!(e.fields["@timestamp"], json!("2024-01-01T00:00:00.123Z"));
        assert_eq!(e.fields["host"], json!("h"));
        assert_eq!(e.fields["source"], json!("json_tcp"));
    }

    #[test]
    fn v0_is_upgraded_and_existing_keys_win() {
        let p = one(
            r#"{"@timestamp":"2024-01-01T00:00:00.000000Z","@message":"m","@source_host":"h","@source_path":"/p","@tags":["a"],"@type":"t","@source":"file:///p","@fields":{"levelname":"INFO","message":"inner"}}"#,
        );
        let f = &p.fields;
        assert_eq!((f["message"].clone(), f["host"].clone(), f["path"].clone()), (json!("m"), json!("h"), json!("/p")));
        assert_eq!((f["tags"].clone(), f["type"].clone(), f["@source"].clone()), (json!(["a"]), json!("t"), json!("file:///p")));
        assert_eq!(f["levelname"], json!("INFO"));
        assert_eq!(f["fields.message"], json!("inner"));
    }

    #[test]
    fn an_unparseable_timestamp_is_tagged_and_kept() {
        let p = one(r#"{"@timestamp":"garbage","message":"m","tags":"x"}"#);
        assert_eq!(p.ts_ms, NOW);
        assert_eq!(p.fields["tags"], json!(["x", "_timestampparsefailure"]));
        assert_eq!(p.fields["_@timestamp"], json!("garbage"));
    }

    #[test]
    fn numeric_timestamps_are_epoch_millis_and_numeric_version_is_kept() {
        let p = one(r#"{"@timestamp":1704067200123,"@version":1,"message":"m"}"#);
        assert_eq!(p.ts_ms, 1_704_067_200_123);
        let e = p.into_event("resp", None, 100).unwrap();
        assert_eq!(e.fields["@version"], json!(1));
    }

    #[test]
    fn arrays_are_one_event_each_and_bad_json_is_kept_raw() {
        assert_eq!(from_json_line(br#"[{"message":"a"},{"message":"b"}]"#, NOW).len(), 2);
        let p = one("{not json");
        assert_eq!(p.fields["message"], json!("{not json"));
        assert_eq!(p.fields["tags"], json!(["_jsonparsefailure"]));
        assert_eq!(p.ts_ms, NOW);
        assert_eq!(one("\u{feff}{\"message\":\"bom\"}").fields["message"], json!("bom"));
    }

    #[test]
    fn field_count_is_bounded_over_the_whole_tree() {
        let p = one(r#"{"a":1,"b":{"c":1,"d":[{"e":1}]}}"#);
        assert_eq!(count_fields(&p.fields), 5);
        assert_eq!(p.clone().into_event("http", None, 4), Err(EventError::TooManyFields { count: 5, max: 4 }));
        assert!(p.into_event("http", None, 5).is_ok());
    }

    #[test]
    fn a_senders_source_is_kept_aside() {
        let e = one(r#"{"message":"m","source":"/var/log/x"}"#).into_event("http", None, 10).unwrap();
        assert_eq!(e.fields["source"], json!("http"));
        assert_eq!(e.fields["source_field"], json!("/var/log/x"));
    }
}
