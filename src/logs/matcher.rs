//! One event against a parsed query, without the index: the live tail
//! filters new events with it. It gives a query the meaning `search.rs` gives
//! it in the index: `message` by its tokens (the index's own analyzer),
//! other fields as case-insensitive keywords or numbers, ranges numeric when
//! both ends are numbers, times by date math.

use serde_json::{Map, Value};
use tantivy::tokenizer::TextAnalyzer;

use super::index::tokenizers;
use super::query::{Bound, Query};
use super::search::{SearchError, Target, target};
use super::time::{parse_date_math, parse_rfc3339};

pub struct Matcher {
    query: Query,
    analyzer: TextAnalyzer,
    now_ms: i64,
}

impl Matcher {
    /// Checks the query's times now, so that a bad one is an error up front.
    pub fn new(query: Query, now_ms: i64) -> Result<Matcher, SearchError> {
        let analyzer = tokenizers().get("default").expect("the default tokenizer is registered");
        let m = Matcher { query, analyzer, now_ms };
        m.check(&m.query)?;
        Ok(m)
    }

    fn check(&self, q: &Query) -> Result<(), SearchError> {
        let time =
            |v: &str| parse_date_math(v, self.now_ms, false).map(|_| ()).ok_or_else(|| SearchError::Bad(format!("{v:?} is not a time")));
        match q {
            Query::Term { field, value } if target(field.as_deref()) == Target::Timestamp => time(value),
            Query::Range { field, lower, upper } if target(Some(field)) == Target::Timestamp => {
                for b in [lower, upper] {
                    if let Bound::Included(v) | Bound::Excluded(v) = b {
                        time(v)?;
                    }
                }
                Ok(())
            }
            Query::Bool { must, should, must_not, .. } => must.iter().chain(should).chain(must_not).try_for_each(|q| self.check(q)),
            _ => Ok(()),
        }
    }

    pub fn matches(&mut self, event: &Map<String, Value>) -> bool {
        let query = std::mem::replace(&mut self.query, Query::All);
        let yes = self.eval(&query, event);
        self.query = query;
        yes
    }

    fn tokens(&mut self, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut stream = self.analyzer.token_stream(text);
        while let Some(t) = stream.next() {
            out.push(t.text.clone());
        }
        out
    }

    fn eval(&mut self, q: &Query, event: &Map<String, Value>) -> bool {
        match q {
            Query::All => true,
            Query::Term { field, value } | Query::Phrase { field, text: value, .. } => match target(field.as_deref()) {
                Target::Message => {
                    let wanted = self.tokens(value);
                    let have = self.tokens(&message(event));
                    !wanted.is_empty() && have.windows(wanted.len()).any(|w| w == wanted.as_slice())
                }
                Target::Timestamp => time_of(event) == parse_date_math(value, self.now_ms, false),
                Target::Id => event.get("_id").and_then(Value::as_str) == Some(value.as_str()),
                Target::Attr(path) => values(event, &path).iter().any(|v| keyword_eq(v, value)),
            },
            Query::Wildcard { field, pattern } => match target(field.as_deref()) {
                Target::Message => {
                    let pattern = pattern.to_lowercase();
                    self.tokens(&message(event)).iter().any(|t| glob(&pattern, t))
                }
                Target::Timestamp => false,
                Target::Id => event.get("_id").and_then(Value::as_str).is_some_and(|id| glob(pattern, id)),
                Target::Attr(path) => {
                    let pattern = pattern.to_lowercase();
                    values(event, &path).iter().any(|v| keyword(v).is_some_and(|k| glob(&pattern, &k.to_lowercase())))
                }
            },
            Query::Range { field, lower, upper } => match target(Some(field)) {
                Target::Timestamp => {
                    let Some(t) = time_of(event) else { return false };
                    let lo = bound_time(lower, self.now_ms, false);
                    let hi = bound_time(upper, self.now_ms, true);
                    within(t, &lo, &hi)
                }
                Target::Attr(path) => values(event, &path).iter().any(|v| in_range(v, lower, upper)),
                Target::Message | Target::Id => false,
            },
            Query::Exists { field } => match target(Some(field)) {
                Target::Timestamp => true,
                Target::Message => !self.tokens(&message(event)).is_empty(),
                Target::Id => event.contains_key("_id"),
                Target::Attr(path) => !values(event, &path).is_empty(),
            },
            Query::Bool { must, should, must_not, min_should } => {
                must.iter().all(|q| self.eval(q, event))
                    && !must_not.iter().any(|q| self.eval(q, event))
                    && (*min_should == 0 || should.iter().filter(|q| self.eval(q, event)).count() >= *min_should)
            }
        }
    }
}

fn message(event: &Map<String, Value>) -> String {
    match event.get("message") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn time_of(event: &Map<String, Value>) -> Option<i64> {
    event.get("@timestamp").and_then(Value::as_str).and_then(parse_rfc3339)
}

/// Every non-null value at `path`, where any dot may be a nesting or part of
/// a key (`host.name` finds both forms), arrays flattened.
fn values<'a>(event: &'a Map<String, Value>, path: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    collect(event, path, &mut out);
    out
}

fn collect<'a>(obj: &'a Map<String, Value>, path: &str, out: &mut Vec<&'a Value>) {
    for (key, value) in obj {
        if key == path {
            flatten(value, out);
        } else if let Some(rest) = path.strip_prefix(key.as_str()).and_then(|r| r.strip_prefix('.')) {
            match value {
                Value::Object(inner) => collect(inner, rest, out),
                Value::Array(items) => {
                    for item in items {
                        if let Value::Object(inner) = item {
                            collect(inner, rest, out);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

fn flatten<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Null | Value::Object(_) => {}
        Value::Array(items) => items.iter().for_each(|i| flatten(i, out)),
        other => out.push(other),
    }
}

/// A string value as the index keeps it as a keyword (up to 256 bytes).
fn keyword(v: &Value) -> Option<&str> {
    v.as_str().filter(|s| s.len() <= 256)
}

fn keyword_eq(v: &Value, wanted: &str) -> bool {
    match v {
        Value::String(_) => keyword(v).is_some_and(|s| s.to_lowercase() == wanted.to_lowercase()),
        Value::Number(n) => wanted.parse::<f64>().ok().zip(n.as_f64()).is_some_and(|(w, n)| w == n),
        Value::Bool(b) => wanted == if *b { "true" } else { "false" },
        _ => false,
    }
}

fn in_range(v: &Value, lower: &Bound, upper: &Bound) -> bool {
    let numeric = [lower, upper].iter().all(|b| match b {
        Bound::Unbounded => true,
        Bound::Included(s) | Bound::Excluded(s) => s.parse::<f64>().is_ok(),
    });
    if numeric {
        let Some(x) = v.as_f64() else { return false };
        let f = |s: &String| s.parse::<f64>().unwrap_or(f64::NAN);
        let above = match lower {
            Bound::Unbounded => true,
            Bound::Included(s) => x >= f(s),
            Bound::Excluded(s) => x > f(s),
        };
        let below = match upper {
            Bound::Unbounded => true,
            Bound::Included(s) => x <= f(s),
            Bound::Excluded(s) => x < f(s),
        };
        return above && below;
    }
    let Some(s) = keyword(v) else { return false };
    let above = match lower {
        Bound::Unbounded => true,
        Bound::Included(b) => s >= b.as_str(),
        Bound::Excluded(b) => s > b.as_str(),
    };
    let below = match upper {
        Bound::Unbounded => true,
        Bound::Included(b) => s <= b.as_str(),
        Bound::Excluded(b) => s < b.as_str(),
    };
    above && below
}

fn bound_time(b: &Bound, now_ms: i64, upper: bool) -> std::ops::Bound<i64> {
    match b {
        Bound::Unbounded => std::ops::Bound::Unbounded,
        Bound::Included(v) => parse_date_math(v, now_ms, upper).map_or(std::ops::Bound::Unbounded, std::ops::Bound::Included),
        Bound::Excluded(v) => parse_date_math(v, now_ms, !upper).map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
    }
}

fn within(t: i64, lo: &std::ops::Bound<i64>, hi: &std::ops::Bound<i64>) -> bool {
    use std::ops::RangeBounds;
    (*lo, *hi).contains(&t)
}

/// Lucene wildcards: `*` any run, `?` one character, `\` escapes the next.
pub fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matching with one backtrack point (the last `*`).
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        let (c, escaped, width) = match p.get(pi) {
            Some('\\') if pi + 1 < p.len() => (Some(p[pi + 1]), true, 2),
            Some(&c) => (Some(c), false, 1),
            None => (None, false, 0),
        };
        match c {
            Some('*') if !escaped => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if (c == '?' && !escaped) || c == t[ti] => {
                pi += width;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::query::{Operator, parse};

    fn event(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).expect("test event")
    }

    #[test]
    fn globs() {
        assert!(glob("web*", "web-01"));
        assert!(glob("*01", "web-01"));
        assert!(glob("w?b*", "web-01"));
        assert!(!glob("w?b", "web-01"));
        assert!(glob(r"a\*b", "a*b"));
        assert!(!glob(r"a\*b", "axb"));
        assert!(glob("*", ""));
    }

    #[test]
    fn means_what_the_index_means() {
        let e = event(
            r#"{"@timestamp":"2024-01-01T00:00:00.000Z","message":"Failed password for root from 10.0.0.1",
                "host":{"name":"Web-01"},"status":503,"tags":["a","b"],"user.id":"u1"}"#,
        );
        let now = 1_704_067_200_000 + 60_000;
        let yes = [
            "failed",
            "\"password for root\"",
            "host.name:web-01",
            "host.name:WEB*",
            "status:503",
            "status:[500 TO 599]",
            "status:>=503",
            "tags:b",
            "user.id:U1",
            "_exists_:user.id",
            "@timestamp:[now-5m TO now]",
            "failed AND NOT status:404",
            "nothing OR root",
            "message:pass*",
        ];
        let no = ["\"root password\"", "status:{503 TO *]", "host.name:web", "_exists_:missing", "@timestamp:>now", "failed -root"];
        for q in yes {
            let mut m = Matcher::new(parse(q, Operator::And).expect(q), now).expect(q);
            assert!(m.matches(&e), "{q} should match");
        }
        for q in no {
            let mut m = Matcher::new(parse(q, Operator::And).expect(q), now).expect(q);
            assert!(!m.matches(&e), "{q} should not match");
        }
        assert!(Matcher::new(parse("@timestamp:>tomorrow", Operator::And).expect("parses"), now).is_err());
    }
}
