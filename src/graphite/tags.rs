//! Tag expressions (`seriesByTag`, `/tags/findSeries`): `tag=value`,
//! `tag!=value`, `tag=~regex`, `tag!=~regex`, all ANDed; regexes anchored at
//! the start as Python's `re.match`; a spec matching the empty string also
//! matches series without the tag.

use regex::Regex;

use super::eval::{EvalError, bad, internal};
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
    let candidates = match parsed.iter().find(|e| e.op == Op::Eq && !e.value.is_empty()) {
        Some(e) if e.tag == "name" => store.names_with_prefix(&format!("{};", e.value), usize::MAX).map_err(internal)?,
        Some(e) => store.names_with_tag(&e.tag, &e.value).map_err(internal)?,
        None => store.names_with_prefix("", usize::MAX).map_err(internal)?,
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
