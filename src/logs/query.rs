//! The Lucene query syntax (Elasticsearch `query_string`, Kibana's Lucene
//! mode), parsed into a small tree that `search.rs` compiles for the index and
//! that tests can evaluate against plain events.
//!
//! Grammar, loosest binding first:
//!
//! ```text
//! or      := and (("OR" | "||" | <juxtaposition when the default is OR>) and)*
//! and     := unary (("AND" | "&&" | <juxtaposition when the default is AND>) unary)*
//! unary   := ("NOT" | "!" | "-" | "+") unary | atom ("^" boost)?
//! atom    := "(" or ")" | "*" | "_exists_:" name | (name ":")? value
//! value   := "(" or ")" | "\"phrase\"" ("~" slop)? | "[" lo "TO" hi "]" (either bracket "{" "}")
//!          | (">" | ">=" | "<" | "<=") word | word (with "*" and "?" wildcards, "\" escapes)
//! ```
//!
//! As in Lucene, `+a b -c` with the default operator OR means: `a` required,
//! `c` excluded, `b` optional. A bare `*` matches everything, and `field:*`
//! means the field exists. Every error carries the character position it was
//! found at.

use std::fmt;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    All,
    /// `field:word`, or a bare word on the default field (`field` is `None`).
    Term {
        field: Option<String>,
        value: String,
    },
    Phrase {
        field: Option<String>,
        text: String,
        slop: u32,
    },
    /// A word with `*` or `?` in it.
    Wildcard {
        field: Option<String>,
        pattern: String,
    },
    Range {
        field: String,
        lower: Bound,
        upper: Bound,
    },
    Exists {
        field: String,
    },
    /// Every `must`, no `must_not`, and, when there is no `must`, at least
    /// `min_should` of `should` (0 means the shoulds only rank).
    Bool {
        must: Vec<Query>,
        should: Vec<Query>,
        must_not: Vec<Query>,
        min_should: usize,
    },
}

/// One end of a range: the value as written (a number, a time, a word) or open.
#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    Included(String),
    Excluded(String),
    Unbounded,
}

/// How juxtaposed clauses combine: `/api/logs/search` uses AND, Elasticsearch
/// `query_string` OR unless its `default_operator` says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    And,
    Or,
}

/// A syntax error, at `position` (in characters from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at position {}", self.message, self.position)
    }
}

impl std::error::Error for SyntaxError {}

/// The deepest nesting of parentheses and prefixes accepted: bounds the
/// parser's recursion on hostile input.
const MAX_DEPTH: usize = 64;

/// Parses `text`; an empty (or all-blank) query matches everything.
pub fn parse(text: &str, default: Operator) -> Result<Query, SyntaxError> {
    let mut p = Parser { chars: text.chars().collect(), pos: 0, default, depth: 0 };
    p.skip_blanks();
    if p.at_end() {
        return Ok(Query::All);
    }
    let q = p.or(None)?;
    p.skip_blanks();
    if !p.at_end() {
        let c = p.chars[p.pos];
        return Err(p.error_here(if c == ')' { "unbalanced ')'".into() } else { format!("unexpected {c:?}") }));
    }
    Ok(q)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Prefix {
    None,
    Must,
    MustNot,
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
    default: Operator,
    depth: usize,
}

/// Characters that end a bare word (unless escaped).
fn ends_word(c: char) -> bool {
    c.is_whitespace() || matches!(c, '(' | ')' | '"' | '[' | ']' | '{' | '}' | '^' | '~')
}

impl Parser {
    fn at_end(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_blanks(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn error_at(&self, position: usize, message: impl Into<String>) -> SyntaxError {
        SyntaxError { position, message: message.into() }
    }

    fn error_here(&self, message: impl Into<String>) -> SyntaxError {
        self.error_at(self.pos, message)
    }

    /// Whether the keyword `word` (followed by a blank, a parenthesis or the
    /// end) starts here.
    fn keyword(&self, word: &str) -> bool {
        let n = word.chars().count();
        if self.pos + n > self.chars.len() || !self.chars[self.pos..self.pos + n].iter().copied().eq(word.chars()) {
            return false;
        }
        match self.chars.get(self.pos + n) {
            None => true,
            Some(&c) => c.is_whitespace() || c == '(' || (word.len() <= 2 && !word.chars().all(char::is_alphabetic)),
        }
    }

    fn take_keyword(&mut self, words: &[&str]) -> bool {
        self.skip_blanks();
        for w in words {
            if self.keyword(w) {
                self.pos += w.chars().count();
                return true;
            }
        }
        false
    }

    /// Whether another clause starts here (for juxtaposition).
    fn clause_starts(&mut self) -> bool {
        self.skip_blanks();
        match self.peek() {
            None | Some(')') => false,
            Some(_) => !(self.keyword("AND") || self.keyword("OR") || self.keyword("&&") || self.keyword("||")),
        }
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or(&mut self, field: Option<&str>) -> Result<Query, SyntaxError> {
        self.enter()?;
        let mut groups = vec![self.and(field)?];
        loop {
            if self.take_keyword(&["OR", "||"]) {
                self.skip_blanks();
                if self.at_end() || self.peek() == Some(')') {
                    return Err(self.error_here("a clause must follow OR"));
                }
                groups.push(self.and(field)?);
            } else if self.default == Operator::Or && self.clause_starts() {
                groups.push(self.and(field)?);
            } else {
                break;
            }
        }
        self.depth -= 1;
        Ok(combine_or(groups))
    }

    fn and(&mut self, field: Option<&str>) -> Result<Vec<(Prefix, Query)>, SyntaxError> {
        let mut clauses = vec![self.unary(field)?];
        loop {
            if self.take_keyword(&["AND", "&&"]) {
                self.skip_blanks();
                if self.at_end() || self.peek() == Some(')') {
                    return Err(self.error_here("a clause must follow AND"));
                }
                clauses.push(self.unary(field)?);
            } else if self.default == Operator::And && self.clause_starts() {
                clauses.push(self.unary(field)?);
            } else {
                break;
            }
        }
        Ok(clauses)
    }

    fn unary(&mut self, field: Option<&str>) -> Result<(Prefix, Query), SyntaxError> {
        self.skip_blanks();
        let start = self.pos;
        let prefix = if self.take_keyword(&["NOT"]) {
            Prefix::MustNot
        } else {
            match self.peek() {
                Some('!') | Some('-') => {
                    self.pos += 1;
                    Prefix::MustNot
                }
                Some('+') => {
                    self.pos += 1;
                    Prefix::Must
                }
                _ => Prefix::None,
            }
        };
        if prefix != Prefix::None {
            self.enter()?;
            self.skip_blanks();
            if self.at_end() || self.peek() == Some(')') {
                return Err(self.error_at(start, "an operator has nothing to apply to"));
            }
            let (inner, q) = self.unary(field)?;
            self.depth -= 1;
            // `NOT -a` and `- NOT a` are `a`; `+` keeps what is inside.
            let q = if inner == Prefix::MustNot { negate(q) } else { q };
            return Ok((prefix, q));
        }
        let q = self.atom(field)?;
        self.boost()?;
        Ok((Prefix::None, q))
    }

    /// `^2`, `^0.5`: ranking only, so accepted and ignored.
    fn boost(&mut self) -> Result<(), SyntaxError> {
        if self.peek() != Some('^') {
            return Ok(());
        }
        let at = self.pos;
        self.pos += 1;
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        if start == self.pos {
            return Err(self.error_at(at, "'^' needs a number (a boost)"));
        }
        Ok(())
    }

    fn atom(&mut self, field: Option<&str>) -> Result<Query, SyntaxError> {
        self.skip_blanks();
        let start = self.pos;
        match self.peek() {
            None => Err(self.error_here("the query ends where a clause was expected")),
            Some('(') => self.group(field),
            Some(')') => Err(self.error_here("unbalanced ')'")),
            Some('"') => self.phrase(field.map(str::to_owned)),
            Some('[') | Some('{') => match field {
                Some(f) => self.range(f.to_owned()),
                None => Err(self.error_here("a range needs a field: field:[a TO b]")),
            },
            Some(_) => {
                let (word, wild) = self.word(field.is_none())?;
                if word.is_empty() {
                    return Err(self.error_at(start, format!("unexpected {:?}", self.chars[start])));
                }
                // `name:` makes the word a field name, unless a field is set already.
                if field.is_none() && self.peek() == Some(':') && !wild {
                    self.pos += 1;
                    return self.field_value(word, start);
                }
                if self.peek() == Some('~') {
                    return Err(self.error_here("fuzzy terms (word~) are not supported"));
                }
                Ok(leaf(field.map(str::to_owned), word, wild))
            }
        }
    }

    fn group(&mut self, field: Option<&str>) -> Result<Query, SyntaxError> {
        let open = self.pos;
        self.pos += 1;
        self.skip_blanks();
        if self.peek() == Some(')') {
            return Err(self.error_here("empty parentheses"));
        }
        let q = self.or(field)?;
        self.skip_blanks();
        if self.peek() != Some(')') {
            return Err(self.error_at(open, "'(' is never closed"));
        }
        self.pos += 1;
        Ok(q)
    }

    /// What follows `name:`.
    fn field_value(&mut self, name: String, start: usize) -> Result<Query, SyntaxError> {
        if name == "_exists_" {
            let at = self.pos;
            let (word, wild) = self.word(false)?;
            if word.is_empty() || wild {
                return Err(self.error_at(at, "_exists_: needs a field name"));
            }
            return Ok(Query::Exists { field: word });
        }
        match self.peek() {
            None => Err(self.error_at(start, format!("'{name}:' has no value"))),
            Some(c) if c.is_whitespace() => Err(self.error_at(start, format!("'{name}:' has no value"))),
            Some('(') => self.group(Some(&name)),
            Some('"') => self.phrase(Some(name)),
            Some('[') | Some('{') => self.range(name),
            Some('>') | Some('<') => {
                let at = self.pos;
                let op = self.chars[self.pos];
                self.pos += 1;
                let inclusive = self.peek() == Some('=');
                if inclusive {
                    self.pos += 1;
                }
                let (word, _) = self.word(false)?;
                if word.is_empty() {
                    return Err(self.error_at(at, format!("'{op}' needs a value")));
                }
                let end = if inclusive { Bound::Included(word) } else { Bound::Excluded(word) };
                Ok(if op == '>' {
                    Query::Range { field: name, lower: end, upper: Bound::Unbounded }
                } else {
                    Query::Range { field: name, lower: Bound::Unbounded, upper: end }
                })
            }
            Some(_) => {
                let at = self.pos;
                let (word, wild) = self.word(false)?;
                if word.is_empty() {
                    return Err(self.error_at(at, format!("'{name}:' has no value")));
                }
                if word == "*" {
                    return Ok(Query::Exists { field: name });
                }
                if self.peek() == Some('~') {
                    return Err(self.error_here("fuzzy terms (word~) are not supported"));
                }
                Ok(leaf(Some(name), word, wild))
            }
        }
    }

    /// A bare word: up to a blank or a special character, with `\` escapes.
    /// A ':' ends it when `colon_ends` and the word so far is not empty (it may
    /// be a field name). Returns the word and whether it has unescaped wildcards.
    fn word(&mut self, colon_ends: bool) -> Result<(String, bool), SyntaxError> {
        let mut out = String::new();
        let mut wild = false;
        while let Some(c) = self.peek() {
            if c == '\\' {
                let Some(&next) = self.chars.get(self.pos + 1) else {
                    return Err(self.error_here("a '\\' at the end escapes nothing"));
                };
                // An escaped wildcard is kept escaped for the wildcard compiler.
                if wild_char(next) {
                    out.push('\\');
                }
                out.push(next);
                self.pos += 2;
                continue;
            }
            if ends_word(c) || (colon_ends && c == ':' && !out.is_empty()) {
                break;
            }
            if wild_char(c) {
                wild = true;
            }
            out.push(c);
            self.pos += 1;
        }
        if !wild {
            out = out.replace("\\*", "*").replace("\\?", "?");
        }
        Ok((out, wild))
    }

    fn phrase(&mut self, field: Option<String>) -> Result<Query, SyntaxError> {
        let open = self.pos;
        self.pos += 1;
        let mut text = String::new();
        loop {
            match self.peek() {
                None => return Err(self.error_at(open, "'\"' is never closed")),
                Some('"') => break,
                Some('\\') if self.pos + 1 < self.chars.len() => {
                    text.push(self.chars[self.pos + 1]);
                    self.pos += 2;
                }
                Some(c) => {
                    text.push(c);
                    self.pos += 1;
                }
            }
        }
        self.pos += 1;
        let mut slop = 0;
        if self.peek() == Some('~') {
            self.pos += 1;
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            let digits: String = self.chars[start..self.pos].iter().collect();
            slop = if digits.is_empty() { 2 } else { digits.parse().map_err(|_| self.error_at(start, "the phrase slop is too large"))? };
        }
        Ok(Query::Phrase { field, text, slop })
    }

    fn range(&mut self, field: String) -> Result<Query, SyntaxError> {
        let open = self.pos;
        let lower_inclusive = self.chars[self.pos] == '[';
        self.pos += 1;
        self.skip_blanks();
        let lo = self.range_end()?;
        self.skip_blanks();
        if !self.keyword("TO") {
            return Err(self.error_here("a range is written [a TO b]"));
        }
        self.pos += 2;
        self.skip_blanks();
        let hi = self.range_end()?;
        self.skip_blanks();
        let upper_inclusive = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => return Err(self.error_at(open, "the range is never closed with ']' or '}'")),
        };
        self.pos += 1;
        let bound = |v: Option<String>, inclusive: bool| match v {
            None => Bound::Unbounded,
            Some(v) if inclusive => Bound::Included(v),
            Some(v) => Bound::Excluded(v),
        };
        Ok(Query::Range { field, lower: bound(lo, lower_inclusive), upper: bound(hi, upper_inclusive) })
    }

    /// One end of a range: a word, a quoted string, or `*` (open).
    fn range_end(&mut self) -> Result<Option<String>, SyntaxError> {
        let at = self.pos;
        let value = if self.peek() == Some('"') {
            match self.phrase(None)? {
                Query::Phrase { text, .. } => text,
                _ => unreachable!("phrase() returns a phrase"),
            }
        } else {
            let (word, _) = self.word(false)?;
            word
        };
        if value.is_empty() {
            return Err(self.error_at(at, "a range end is missing"));
        }
        Ok(if value == "*" { None } else { Some(value) })
    }
}

fn wild_char(c: char) -> bool {
    c == '*' || c == '?'
}

fn leaf(field: Option<String>, word: String, wild: bool) -> Query {
    if word == "*" && field.is_none() {
        Query::All
    } else if wild {
        Query::Wildcard { field, pattern: word }
    } else {
        Query::Term { field, value: word }
    }
}

fn negate(q: Query) -> Query {
    Query::Bool { must: vec![], should: vec![], must_not: vec![q], min_should: 0 }
}

/// One AND-joined run of clauses.
fn conjunction(clauses: Vec<(Prefix, Query)>) -> Query {
    if clauses.len() == 1 && clauses[0].0 != Prefix::MustNot {
        return clauses.into_iter().next().expect("one clause").1;
    }
    let (mut must, mut must_not) = (Vec::new(), Vec::new());
    for (prefix, q) in clauses {
        match prefix {
            Prefix::MustNot => must_not.push(q),
            _ => must.push(q),
        }
    }
    Query::Bool { must, should: vec![], must_not, min_should: 0 }
}

/// OR-joined runs. A run that is one `+x` or `-x` clause is required or
/// excluded for the whole disjunction, as in Lucene.
fn combine_or(groups: Vec<Vec<(Prefix, Query)>>) -> Query {
    if groups.len() == 1 {
        return conjunction(groups.into_iter().next().expect("one group"));
    }
    let (mut must, mut should, mut must_not) = (Vec::new(), Vec::new(), Vec::new());
    for mut group in groups {
        if group.len() == 1 && group[0].0 != Prefix::None {
            let (prefix, q) = group.pop().expect("one clause");
            if prefix == Prefix::Must { must.push(q) } else { must_not.push(q) }
        } else {
            should.push(conjunction(group));
        }
    }
    let min_should = usize::from(must.is_empty() && !should.is_empty());
    if must.is_empty() && must_not.is_empty() && should.len() == 1 {
        return should.pop().expect("one should");
    }
    Query::Bool { must, should, must_not, min_should }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn term(field: Option<&str>, value: &str) -> Query {
        Query::Term { field: field.map(str::to_owned), value: value.to_owned() }
    }

    fn and(v: Vec<Query>) -> Query {
        Query::Bool { must: v, should: vec![], must_not: vec![], min_should: 0 }
    }

    fn or(v: Vec<Query>) -> Query {
        Query::Bool { must: vec![], should: v, must_not: vec![], min_should: 1 }
    }

    #[test]
    fn fields_words_phrases_and_the_default_operator() {
        assert_eq!(parse("", Operator::And).unwrap(), Query::All);
        assert_eq!(parse("  * ", Operator::And).unwrap(), Query::All);
        assert_eq!(parse("error", Operator::And).unwrap(), term(None, "error"));
        assert_eq!(parse("host:web-01", Operator::And).unwrap(), term(Some("host"), "web-01"));
        assert_eq!(parse("a b", Operator::And).unwrap(), and(vec![term(None, "a"), term(None, "b")]));
        assert_eq!(parse("a b", Operator::Or).unwrap(), or(vec![term(None, "a"), term(None, "b")]));
        assert_eq!(
            parse("log.file.path:\"/var/log/a b\"~3", Operator::And).unwrap(),
            Query::Phrase { field: Some("log.file.path".into()), text: "/var/log/a b".into(), slop: 3 }
        );
        assert_eq!(parse(r"path:C\:\\x", Operator::And).unwrap(), term(Some("path"), r"C:\x"));
        assert_eq!(parse("url:http://x/y", Operator::And).unwrap(), term(Some("url"), "http://x/y"));
        assert_eq!(parse("@timestamp:*", Operator::And).unwrap(), Query::Exists { field: "@timestamp".into() });
        assert_eq!(parse("_exists_:user.id", Operator::And).unwrap(), Query::Exists { field: "user.id".into() });
        assert_eq!(parse("host:web*", Operator::And).unwrap(), Query::Wildcard { field: Some("host".into()), pattern: "web*".into() });
        assert_eq!(parse(r"a\*b", Operator::And).unwrap(), term(None, "a*b"));
        assert_eq!(parse("error^2", Operator::And).unwrap(), term(None, "error"));
    }

    #[test]
    fn precedence_prefixes_and_groups() {
        // AND binds tighter than OR.
        let q = parse("a OR b AND c", Operator::Or).unwrap();
        assert_eq!(q, or(vec![term(None, "a"), and(vec![term(None, "b"), term(None, "c")])]));
        // Lucene: +required, -excluded, the rest optional.
        let q = parse("+a b -c", Operator::Or).unwrap();
        assert_eq!(
            q,
            Query::Bool { must: vec![term(None, "a")], should: vec![term(None, "b")], must_not: vec![term(None, "c")], min_should: 0 }
        );
        let q = parse("a AND NOT b", Operator::Or).unwrap();
        assert_eq!(q, Query::Bool { must: vec![term(None, "a")], should: vec![], must_not: vec![term(None, "b")], min_should: 0 });
        let q = parse("NOT b", Operator::And).unwrap();
        assert_eq!(q, Query::Bool { must: vec![], should: vec![], must_not: vec![term(None, "b")], min_should: 0 });
        let q = parse("level:(error OR warn) && !host:x", Operator::Or).unwrap();
        assert_eq!(
            q,
            Query::Bool {
                must: vec![or(vec![term(Some("level"), "error"), term(Some("level"), "warn")])],
                should: vec![],
                must_not: vec![term(Some("host"), "x")],
                min_should: 0
            }
        );
        assert_eq!(parse("a || b", Operator::And).unwrap(), or(vec![term(None, "a"), term(None, "b")]));
        // Lowercase operators are words.
        assert_eq!(parse("a and b", Operator::Or).unwrap(), or(vec![term(None, "a"), term(None, "and"), term(None, "b")]));
    }

    #[test]
    fn ranges() {
        let r = |lower, upper| Query::Range { field: "status".into(), lower, upper };
        assert_eq!(parse("status:[500 TO 599]", Operator::And).unwrap(), r(Bound::Included("500".into()), Bound::Included("599".into())));
        assert_eq!(parse("status:{500 TO *]", Operator::And).unwrap(), r(Bound::Excluded("500".into()), Bound::Unbounded));
        assert_eq!(parse("status:>=500", Operator::And).unwrap(), r(Bound::Included("500".into()), Bound::Unbounded));
        assert_eq!(parse("status:<400", Operator::And).unwrap(), r(Bound::Unbounded, Bound::Excluded("400".into())));
        let q = parse("@timestamp:[\"2024-01-01T00:00:00Z\" TO now]", Operator::And).unwrap();
        assert_eq!(
            q,
            Query::Range {
                field: "@timestamp".into(),
                lower: Bound::Included("2024-01-01T00:00:00Z".into()),
                upper: Bound::Included("now".into())
            }
        );
    }

    #[test]
    fn errors_point_at_the_problem() {
        let cases = [
            ("(a OR b", 0, "never closed"),
            ("a OR", 4, "must follow OR"),
            ("a AND )", 6, "must follow AND"),
            ("a )", 2, "unbalanced"),
            ("host:", 0, "has no value"),
            ("status:[1 TO 2", 7, "never closed"),
            ("status:[1 2]", 10, "[a TO b]"),
            ("msg:\"abc", 4, "never closed"),
            ("a -", 2, "nothing to apply"),
            ("x:y~", 3, "fuzzy"),
            ("()", 1, "empty parentheses"),
            ("a^", 1, "boost"),
            ("[1 TO 2]", 0, "needs a field"),
        ];
        for (text, position, words) in cases {
            let e = parse(text, Operator::And).expect_err(text);
            assert_eq!(e.position, position, "{text}: {e}");
            assert!(e.message.contains(words), "{text}: {e}");
        }
        let deep = "(".repeat(200) + "a" + &")".repeat(200);
        assert!(parse(&deep, Operator::And).unwrap_err().message.contains("nested"));
        let negs = "-".repeat(200) + "a";
        assert!(parse(&negs, Operator::And).unwrap_err().message.contains("nested"));
    }
}
