//! Tag expressions (`seriesByTag`, `/tags/findSeries`): `tag=value`,
//! `tag!=value`, `tag=~regex`, `tag!=~regex`, all ANDed; regexes anchored at
//! the start as Python's `re.match`; a spec matching the empty string also
//! matches series without the tag.

use regex::Regex;

use serde_json::{Value, json};

use super::eval::{EvalError, bad, internal};
use super::render::{Reply, all, first};
use super::series::name_tags;
use crate::tsdb::Store;

#[derive(Debug)]
pub struct TagExpr {
    pub tag: String,
    op: Op,
    pub value: String,
    regex: Option<Regex>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Eq,
    Ne,
    Match,
    NotMatch,
}

impl TagExpr {
    pub fn parse(text: &str) -> Result<TagExpr, EvalError> {
        let pos = text.find(['=', '!']).ok_or_else(|| bad(format!("invalid tag expression {text:?}")))?;
        let (tag, rest) = text.split_at(pos);
        let (op, value) = if let Some(v) = rest.strip_prefix("!=~") {
            (Op::NotMatch, v)
        } else if let Some(v) = rest.strip_prefix("=~") {
            (Op::Match, v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            (Op::Ne, v)
        } else if let Some(v) = rest.strip_prefix('=') {
            (Op::Eq, v)
        } else {
            return Err(bad(format!("invalid tag expression {text:?}")));
        };
        if tag.is_empty() || tag.contains(';') || value.contains(';') {
            return Err(bad(format!("invalid tag expression {text:?}")));
        }
        let regex = match op {
            Op::Match | Op::NotMatch => Some(Regex::new(&format!("^(?:{value})")).map_err(|e| bad(format!("bad regex in {text:?}: {e}")))?),
            _ => None,
        };
        Ok(TagExpr { tag: tag.to_string(), op, value: value.to_string(), regex })
    }

    /// Whether a series with this tag value (or none) matches.
    pub fn matches(&self, value: Option<&str>) -> bool {
        let v = value.unwrap_or("");
        match self.op {
            Op::Eq => v == self.value,
            Op::Ne => v != self.value,
            Op::Match => self.regex.as_ref().is_some_and(|r| r.is_match(v)),
            Op::NotMatch => !self.regex.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    fn requires_value(&self) -> bool {
        !self.matches(None)
    }
}

/// Canonical names of the tagged series matching every expression, sorted.
pub fn find_series(store: &Store, exprs: &[String], limit: usize) -> Result<Vec<String>, EvalError> {
    let parsed: Vec<TagExpr> = exprs.iter().map(|e| TagExpr::parse(e)).collect::<Result<_, _>>()?;
    if !parsed.iter().any(TagExpr::requires_value) {
        return Err(bad("at least one tag expression must match only series that have a non-empty value for its tag"));
    }
    // Candidates from the tag index: an exact `tag=value` reads one value's
    // series; otherwise an expression that needs a value (`tag=~re`,
    // `tag!=x` with x empty...) reads the series of the tag's matching values.
    // Every expression is checked on each candidate below.
    let candidates = match parsed.iter().find(|e| e.op == Op::Eq && !e.value.is_empty()) {
        Some(e) => store.names_with_tag(&e.tag, &e.value).map_err(internal)?,
        None => {
            let e = parsed.iter().find(|e| e.requires_value()).expect("checked above");
            let mut names = Vec::new();
            for (value, _) in store.tag_values(&e.tag).map_err(internal)? {
                if e.matches(Some(&value)) {
                    names.extend(store.names_with_tag(&e.tag, &value).map_err(internal)?);
                }
            }
            names.sort_unstable();
            names
        }
    };
    let mut out = Vec::new();
    for name in candidates {
        if !name.contains(';') {
            continue;
        }
        let tags = name_tags(&name);
        if parsed.iter().all(|e| e.matches(tags.get(&e.tag).map(String::as_str))) {
            out.push(name);
            if out.len() > limit {
                break;
            }
        }
    }
    Ok(out)
}

/// graphite-web's default autocomplete limit.
const AUTOCOMPLETE_LIMIT: usize = 100;

fn json_reply(value: Value) -> Reply {
    Reply { status: 200, content_type: "application/json", body: value.to_string().into_bytes() }
}

/// `filter=` as graphite-web's tag DB applies it: a regex anchored at the start.
fn filter(params: &[(String, String)]) -> Result<Option<Regex>, EvalError> {
    match first(params, "filter").filter(|f| !f.is_empty()) {
        None => Ok(None),
        Some(f) => {
            let anchored = if f.starts_with('^') { f.to_string() } else { format!("^(?:{f})") };
            Regex::new(&anchored).map(Some).map_err(|e| bad(format!("bad filter {f:?}: {e}")))
        }
    }
}

fn limit(params: &[(String, String)], default: Option<usize>) -> Result<Option<usize>, EvalError> {
    match first(params, "limit").filter(|l| !l.is_empty()) {
        None => Ok(default),
        Some(l) => l.parse().map(Some).map_err(|_| bad(format!("limit must be a whole number, not {l:?}"))),
    }
}

/// `expr=` or `expr[]=` (jQuery's form).
fn exprs(params: &[(String, String)]) -> Vec<String> {
    let plain = all(params, "expr");
    let list = if plain.is_empty() { all(params, "expr[]") } else { plain };
    list.into_iter().map(str::to_string).collect()
}

fn run(work: impl FnOnce() -> Result<Value, EvalError>) -> Reply {
    match work() {
        Ok(v) => json_reply(v),
        Err(e) => e.into(),
    }
}

/// `/tags/findSeries?expr=...`: the sorted canonical names.
pub fn find_series_view(store: &Store, params: &[(String, String)], max_series: usize) -> Reply {
    run(|| Ok(json!(find_series(store, &exprs(params), max_series)?)))
}

/// `GET /tags`: `[{"tag": ...}]`, sorted, optionally filtered and limited.
pub fn list_view(store: &Store, params: &[(String, String)]) -> Reply {
    run(|| {
        let re = filter(params)?;
        let cap = limit(params, None)?.unwrap_or(usize::MAX);
        let tags = store.tag_names().map_err(internal)?;
        let tags: Vec<Value> =
            tags.into_iter().filter(|t| re.as_ref().is_none_or(|r| r.is_match(t))).take(cap).map(|t| json!({ "tag": t })).collect();
        Ok(Value::Array(tags))
    })
}

/// `GET /tags/<tag>`: the values with their series counts, or `null` for an
/// unknown tag (graphite-web answers so).
pub fn tag_view(store: &Store, tag: &str, params: &[(String, String)]) -> Reply {
    run(|| {
        let re = filter(params)?;
        let cap = limit(params, None)?.unwrap_or(usize::MAX);
        let values = store.tag_values(tag).map_err(internal)?;
        if values.is_empty() {
            return Ok(Value::Null);
        }
        let values: Vec<Value> = values
            .into_iter()
            .filter(|(v, _)| re.as_ref().is_none_or(|r| r.is_match(v)))
            .take(cap)
            .map(|(v, n)| json!({ "count": n, "value": v }))
            .collect();
        Ok(json!({ "tag": tag, "values": values }))
    })
}

/// `/tags/autoComplete/tags`: tag names (by prefix), only those of series
/// matching the expressions when some are given, minus the tags they use.
pub fn autocomplete_tags(store: &Store, params: &[(String, String)], max_series: usize) -> Reply {
    run(|| {
        let prefix = first(params, "tagPrefix").unwrap_or("");
        let cap = limit(params, Some(AUTOCOMPLETE_LIMIT))?.unwrap_or(AUTOCOMPLETE_LIMIT);
        let exprs = exprs(params);
        let mut tags: Vec<String> = if exprs.is_empty() {
            store.tag_names().map_err(internal)?
        } else {
            let searched: Vec<String> = exprs.iter().map(|e| TagExpr::parse(e).map(|t| t.tag)).collect::<Result<_, _>>()?;
            let mut found = std::collections::BTreeSet::new();
            for name in find_series(store, &exprs, max_series)? {
                found.extend(name_tags(&name).iter().map(|(k, _)| k.to_string()).filter(|k| !searched.contains(k)));
            }
            found.into_iter().collect()
        };
        tags.retain(|t| t.starts_with(prefix));
        tags.truncate(cap);
        Ok(json!(tags))
    })
}

/// `/tags/autoComplete/values`: values of `tag` (by prefix), only those of
/// series matching the expressions when some are given.
pub fn autocomplete_values(store: &Store, params: &[(String, String)], max_series: usize) -> Reply {
    run(|| {
        let tag = first(params, "tag").filter(|t| !t.is_empty()).ok_or_else(|| bad("no tag specified"))?;
        let prefix = first(params, "valuePrefix").unwrap_or("");
        let cap = limit(params, Some(AUTOCOMPLETE_LIMIT))?.unwrap_or(AUTOCOMPLETE_LIMIT);
        let mut exprs = exprs(params);
        let mut values: Vec<String> = if exprs.is_empty() {
            store.tag_values(tag).map_err(internal)?.into_iter().map(|(v, _)| v).collect()
        } else {
            exprs.push(format!("{tag}!="));
            let mut found = std::collections::BTreeSet::new();
            for name in find_series(store, &exprs, max_series)? {
                found.extend(name_tags(&name).get(tag).cloned());
            }
            found.into_iter().collect()
        };
        values.retain(|v| v.starts_with(prefix));
        values.truncate(cap);
        Ok(json!(values))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions() {
        let e = TagExpr::parse("server=~web").unwrap();
        assert!(e.matches(Some("web01")) && !e.matches(Some("db01")) && !e.matches(Some("xweb")));
        let e = TagExpr::parse("server!=web01").unwrap();
        assert!(e.matches(Some("web02")) && !e.matches(Some("web01")) && e.matches(None));
        assert!(!TagExpr::parse("t=").unwrap().requires_value());
        assert!(!TagExpr::parse("t!=x").unwrap().requires_value());
        assert!(!TagExpr::parse("t=~.*").unwrap().requires_value());
        assert!(TagExpr::parse("t=x").unwrap().requires_value());
        assert!(TagExpr::parse("novalue").is_err());
        assert!(TagExpr::parse("=x").is_err());
    }
}
