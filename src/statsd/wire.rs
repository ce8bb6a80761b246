//! The statsd / DogStatsD line protocol (compat-spec 1.2 and 2): a packet's
//! lines, and each line as a metric with its samples, a DogStatsD event
//! (`_e{...}`) or a service check (`_sc|...`). Pure: text in, values out, no
//! I/O, no panics, and for an untagged line with a clean key no allocation.
//!
//! Metric lines follow Etsy statsd 0.9 exactly (what is a bad line, how a key
//! is sanitized, how `|#tags` join the key, JavaScript number syntax), with
//! DogStatsD's additions where Etsy would call the line bad or misread it:
//! - fields after the type are read by their prefix (`@rate`, `T<ts>`, `c:`,
//!   `e:`, `card:`), unknown ones are ignored, but a bare number there (`a:1|c|0.5`)
//!   or an empty field is still a bad line, as in Etsy;
//! - value packing `a:1:2:3|c`: a value without a type takes the type and the
//!   fields of the next value that has them (Etsy counts such a value as a bad line);
//! - `h` and `d` are timers unless `h_as_timer` is off (Etsy: counters);
//! - a sample rate must be above 0 (Etsy turns `@0` into an infinite counter);
//! - fields after the tags (`|#a:b|c:container`) are read, not glued to the last tag;
//! - a tag without `=` is stored as `tag=true`, and a tag with an empty name
//!   is dropped and counted (Graphite's tag syntax needs both).
//!
//! Everything about aggregation (what a counter adds up to, gauge deltas on a
//! missing gauge) is `aggregate.rs`'s.

use std::borrow::Cow;

use super::jsnum;
use crate::telemetry::logging::excerpt;

/// Why a line, or one value of a line, was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("statsd line {line:?} has no type (expected name:value|type)")]
    NoType { line: String },
    #[error("cannot parse statsd value {value:?} in line {line:?}")]
    Value { value: String, line: String },
    #[error("cannot parse statsd sample rate {rate:?} in line {line:?} (expected @ and a number above 0)")]
    Rate { rate: String, line: String },
    #[error("unexpected field {field:?} in statsd line {line:?}")]
    Field { field: String, line: String },
    #[error("cannot parse DogStatsD event {line:?}: {reason}")]
    Event { reason: &'static str, line: String },
    #[error("cannot parse DogStatsD service check {line:?}: {reason}")]
    ServiceCheck { reason: &'static str, line: String },
    #[error("statsd line is not utf-8: {line:?}")]
    NotUtf8 { line: String },
}

/// The non-empty lines of a packet that is valid UTF-8 (as [`lines`]).
pub fn text_lines(packet: &str) -> impl Iterator<Item = &str> {
    packet.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l)).filter(|l| !l.is_empty())
}

/// The non-empty lines of a packet (`\n`-separated; a trailing `\r` is
/// dropped, compat-spec 1.10.16).
pub fn lines(packet: &[u8]) -> impl Iterator<Item = &[u8]> {
    packet.split(|b| *b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l)).filter(|l| !l.is_empty())
}

/// One decoded line.
#[derive(Debug, PartialEq)]
pub enum Line<'a> {
    Metric(Metric<'a>),
    Event(Event),
    ServiceCheck(ServiceCheck),
}

/// A metric line: its key and its value groups, decoded one by one with
/// [`Metric::samples`].
#[derive(Debug, PartialEq)]
pub struct Metric<'a> {
    /// The sanitized key without tags.
    pub key: Cow<'a, str>,
    /// The tags as Graphite writes them, `;k=v;k2=v2`, in the sender's order
    /// ("" when there are none).
    pub tags: Cow<'a, str>,
    /// Tags dropped for an empty name.
    pub bad_tags: u32,
    /// `value|type|fields` groups separated by `:`.
    values: &'a str,
    /// DogStatsD fields after the tags, applying to every group.
    trailing: &'a str,
    line: &'a str,
}

/// What one sample does.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind<'a> {
    /// Add `value` (already divided by the sample rate's reciprocal, as Etsy does).
    Counter(f64),
    /// One timing; the timer's count grows by `1 / rate`.
    Timer(f64),
    /// Set the gauge, or move it when `delta` (a signed value).
    Gauge { value: f64, delta: bool },
    /// Add a member.
    Set(&'a str),
}

/// One decoded value of a metric line.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub kind: Kind<'a>,
    pub rate: f64,
}

/// A DogStatsD event (compat-spec 2.2).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub title: String,
    pub text: String,
    pub timestamp: Option<i64>,
    pub host: Option<String>,
    pub aggregation_key: Option<String>,
    pub priority: String,
    pub source_type: Option<String>,
    pub alert_type: String,
    pub tags: Vec<String>,
}

/// A DogStatsD service check (compat-spec 2.3).
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCheck {
    pub name: String,
    pub status: u8,
    pub timestamp: Option<i64>,
    pub host: Option<String>,
    pub tags: Vec<String>,
    pub message: Option<String>,
}

/// Decodes one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, WireError> {
    let Ok(line) = std::str::from_utf8(line) else {
        return Err(WireError::NotUtf8 { line: excerpt(line) });
    };
    parse_text(line)
}

/// [`parse_line`] of a line already known to be text (a packet checked whole).
pub fn parse_text(line: &str) -> Result<Line<'_>, WireError> {
    if line.starts_with("_e{") {
        return parse_event(line).map(Line::Event);
    }
    if let Some(rest) = line.strip_prefix("_sc|") {
        return parse_service_check(line, rest).map(Line::ServiceCheck);
    }
    Ok(Line::Metric(parse_metric(line)))
}

fn parse_metric(line: &str) -> Metric<'_> {
    // Tags: everything after the first `|#`, up to the next `|` (DogStatsD
    // fields may follow them).
    let (head, tag_text, trailing) = match split_tags(line) {
        Some((head, rest)) => match rest.split_once('|') {
            Some((tags, trailing)) => (head, Some(tags), trailing),
            None => (head, Some(rest), ""),
        },
        None => (line, None, ""),
    };
    let (raw_key, values) = split_at_byte(head, b':').unwrap_or((head, ""));
    // Etsy appends the tags to the key (`key;t1;t2`, the first `;` of a tag
    // made `_` and its first `:` made `=`), then sanitizes the whole.
    let (key, tags, bad_tags) = match tag_text {
        None => {
            let key = sanitize(raw_key);
            match key.bytes().position(|b| b == b';') {
                // A key that carries Graphite tags itself.
                Some(i) => {
                    let (tags, bad) = graphite_tags(&key[i..]);
                    (Cow::Owned(key[..i].to_string()), Cow::Owned(tags), bad)
                }
                None => (key, Cow::Borrowed(""), 0),
            }
        }
        Some(text) => {
            let mut full = raw_key.to_string();
            for tag in text.split(',') {
                full.push(';');
                full.push_str(&tag.replacen(';', "_", 1).replacen(':', "=", 1));
            }
            let full = sanitize(&full).into_owned();
            let (base, tag_part) = full.split_at(full.find(';').unwrap_or(full.len()));
            let (tags, bad) = graphite_tags(tag_part);
            (Cow::Owned(base.to_string()), Cow::Owned(tags), bad)
        }
    };
    Metric { key, tags, bad_tags, values, trailing, line }
}

/// `s` split around the first `byte` (an ASCII byte, so both sides are
/// `str`): a plain loop, quicker than the general pattern search on the
/// 20-60 byte lines statsd sees.
fn split_at_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == byte)?;
    Some((&s[..i], &s[i + 1..]))
}

/// The line split at its first `|#` (a byte search for `#`, most lines have none).
fn split_tags(line: &str) -> Option<(&str, &str)> {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(i) = bytes[from..].iter().position(|&b| b == b'#').map(|i| i + from) {
        if i > 0 && bytes[i - 1] == b'|' {
            return Some((&line[..i - 1], &line[i + 1..]));
        }
        from = i + 1;
    }
    None
}

/// `;a=b;c;=d` as Graphite tags: `;a=b;c=true`, and one tag dropped.
fn graphite_tags(sanitized: &str) -> (String, u32) {
    let mut out = String::with_capacity(sanitized.len() + 8);
    let mut bad = 0;
    for tag in sanitized.split(';').filter(|t| !t.is_empty()) {
        match tag.split_once('=') {
            Some(("", _)) => bad += 1,
            Some((_, "")) => {
                out.push(';');
                out.push_str(tag);
                out.push_str("true");
            }
            Some(_) => {
                out.push(';');
                out.push_str(tag);
            }
            None => {
                out.push(';');
                out.push_str(tag);
                out.push_str("=true");
            }
        }
    }
    (out, bad)
}

/// Etsy's key sanitizing: runs of whitespace become `_`, `/` becomes `-`,
/// and anything outside `[A-Za-z0-9_\-.;=]` is deleted.
fn sanitize(key: &str) -> Cow<'_, str> {
    let clean = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ';' | '=');
    if key.bytes().all(|b| clean(char::from(b))) {
        return Cow::Borrowed(key);
    }
    let mut out = String::with_capacity(key.len());
    let mut in_space = false;
    for c in key.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push('_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        if c == '/' {
            out.push('-');
        } else if clean(c) {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

impl<'a> Metric<'a> {
    /// The samples of this line, one per value group, each valid or not on
    /// its own (a bad group never spoils the others).
    pub fn samples(&self, h_as_timer: bool) -> impl Iterator<Item = Result<Sample<'a>, WireError>> + '_ {
        // No `:` at all: Etsy reads the value "1", which has no type.
        let values: &'a str = if self.values.is_empty() && !self.line.contains(':') { "1" } else { self.values };
        let mut rest = Some(values);
        std::iter::from_fn(move || {
            let current = rest?;
            let end = group_end(current);
            let (group, after) = match current.get(end..) {
                Some(a) if !a.is_empty() => (&current[..end], Some(&a[1..])),
                _ => (current, None),
            };
            rest = after;
            Some(self.sample(group, after, h_as_timer))
        })
    }

    fn sample(&self, group: &'a str, after: Option<&'a str>, h_as_timer: bool) -> Result<Sample<'a>, WireError> {
        let (value, fields) = match split_at_byte(group, b'|') {
            Some((value, fields)) => (value, fields),
            // DogStatsD packing: the type and fields of the next typed group.
            None => match after.and_then(|a| a.split(':').find_map(|g| g.split_once('|').map(|(_, f)| f))) {
                Some(fields) => (group, fields),
                None => return Err(WireError::NoType { line: excerpt(self.line.as_bytes()) }),
            },
        };
        let (raw_type, more) = split_at_byte(fields, b'|').map_or((fields, None), |(t, m)| (t, Some(m)));
        let mut rate = 1.0;
        let extra = more.into_iter().flat_map(|m| m.split('|'));
        let trailing = if self.trailing.is_empty() { None } else { Some(self.trailing.split('|')) };
        for field in extra.chain(trailing.into_iter().flatten()) {
            if let Some(number) = field.strip_prefix('@') {
                rate = parse_rate(number)
                    .ok_or_else(|| WireError::Rate { rate: excerpt(field.as_bytes()), line: excerpt(self.line.as_bytes()) })?;
            } else if field.is_empty() || jsnum::is_number(field) {
                return Err(WireError::Field { field: excerpt(field.as_bytes()), line: excerpt(self.line.as_bytes()) });
            }
            // `T<ts>`, `c:`, `e:`, `card:` and unknown fields: ignored.
        }
        // Etsy validates against the type as sent, and dispatches on it trimmed.
        let number = if raw_type == "s" { 0.0 } else { jsnum::number(value) };
        // statsd's isNumber: a non-empty string that is not NaN.
        let numeric = !value.is_empty() && !number.is_nan();
        let valid = match raw_type {
            "s" => true,
            "ms" => numeric && number >= 0.0,
            _ => numeric,
        };
        if !valid {
            return Err(WireError::Value { value: excerpt(value.as_bytes()), line: excerpt(self.line.as_bytes()) });
        }
        let kind = match raw_type.trim() {
            "ms" => Kind::Timer(number),
            "h" | "d" if h_as_timer => Kind::Timer(number),
            "g" => Kind::Gauge { value: number, delta: value.starts_with(['+', '-']) },
            "s" => Kind::Set(if value.is_empty() { "0" } else { value }),
            _ => Kind::Counter(number * (1.0 / rate)),
        };
        Ok(Sample { kind, rate })
    }
}

/// Where the value group at the start of `values` ends: at the first `:`,
/// unless that `:` belongs to a DogStatsD field after the type (`c:id`,
/// `e:data`, `card:low`, or one unknown), which a sample rate or a number
/// never is (so Etsy's `a:1|c|@0.5:2|c` stays two groups).
fn group_end(values: &str) -> usize {
    let mut end = 0;
    loop {
        let Some(colon) = values.as_bytes()[end..].iter().position(|&b| b == b':').map(|i| i + end) else { return values.len() };
        let piece = &values[..colon];
        let inside_field = piece.bytes().filter(|&b| b == b'|').nth(1).is_some() && {
            let last = piece.rsplit('|').next().unwrap_or_default();
            !last.is_empty() && !last.starts_with('@') && !jsnum::is_number(last)
        };
        if !inside_field {
            return colon;
        }
        end = colon + 1;
    }
}

/// Etsy's sample rate: `@` and a JavaScript number not starting with `-`,
/// of which the leading digits and dots are read (`^@([\d.]+)`). instantops
/// also refuses a rate that is not above 0.
fn parse_rate(text: &str) -> Option<f64> {
    if text.is_empty() || text.starts_with('-') || !jsnum::is_number(text) {
        return None;
    }
    let digits = &text[..text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len())];
    let rate = jsnum::number(digits);
    (!digits.is_empty() && rate.is_finite() && rate > 0.0).then_some(rate)
}

/// `_e{title_len,text_len}:title|text|d:ts|h:host|k:key|p:priority|s:source|t:alert|#tags`,
/// lengths in UTF-8 bytes of the escaped text.
fn parse_event(line: &str) -> Result<Event, WireError> {
    let bad = |reason| WireError::Event { reason, line: excerpt(line.as_bytes()) };
    let (header, body) = line.split_once(':').ok_or(bad("no `:` after the header"))?;
    if header.len() < 7 {
        return Err(bad("the header is shorter than _e{N,N}"));
    }
    let lengths = header.strip_prefix("_e{").and_then(|h| h.strip_suffix('}')).ok_or(bad("the header is not _e{N,N}"))?;
    let (title_len, text_len) = lengths.split_once(',').ok_or(bad("the header is not _e{N,N}"))?;
    let parse_len = |s: &str| s.parse::<usize>().ok().filter(|_| s.bytes().all(|b| b.is_ascii_digit()));
    let title_len = parse_len(title_len).ok_or(bad("the title length is not a number"))?;
    let text_len = parse_len(text_len).ok_or(bad("the text length is not a number"))?;
    if title_len == 0 {
        return Err(bad("the title is empty"));
    }
    let end = title_len.checked_add(1).and_then(|n| n.checked_add(text_len)).ok_or(bad("the lengths overflow"))?;
    if body.len() < end {
        return Err(bad("the body is shorter than its declared lengths"));
    }
    let title = body.get(..title_len).ok_or(bad("the title length splits a character"))?;
    if body.as_bytes()[title_len] != b'|' {
        return Err(bad("no `|` after the title"));
    }
    let text = body.get(title_len + 1..end).ok_or(bad("the text length splits a character"))?;
    let rest = body.get(end..).ok_or(bad("the text length splits a character"))?;
    let mut event = Event {
        title: title.replace("\\n", "\n"),
        text: text.replace("\\n", "\n"),
        timestamp: None,
        host: None,
        aggregation_key: None,
        priority: "normal".into(),
        source_type: None,
        alert_type: "info".into(),
        tags: Vec::new(),
    };
    if rest.is_empty() {
        return Ok(event);
    }
    let fields = rest.strip_prefix('|').ok_or(bad("no `|` after the text"))?;
    for field in fields.split('|') {
        if let Some(ts) = field.strip_prefix("d:") {
            event.timestamp = ts.parse().ok();
        } else if let Some(host) = field.strip_prefix("h:") {
            event.host = Some(host.to_string());
        } else if let Some(key) = field.strip_prefix("k:") {
            event.aggregation_key = Some(key.to_string());
        } else if let Some(p) = field.strip_prefix("p:") {
            // An unknown priority is ignored; the event stays.
            if matches!(p, "normal" | "low") {
                event.priority = p.to_string();
            }
        } else if let Some(s) = field.strip_prefix("s:") {
            event.source_type = Some(s.to_string());
        } else if let Some(t) = field.strip_prefix("t:") {
            if matches!(t, "error" | "warning" | "info" | "success") {
                event.alert_type = t.to_string();
            }
        } else if let Some(tags) = field.strip_prefix('#') {
            event.tags.extend(tags.split(',').filter(|t| !t.is_empty()).map(str::to_string));
        }
    }
    Ok(event)
}

/// `_sc|name|status|d:ts|h:host|#tags|m:message`; `m:` runs to the end of the
/// line, with `\n` and `m\:` unescaped.
fn parse_service_check(line: &str, rest: &str) -> Result<ServiceCheck, WireError> {
    let bad = |reason| WireError::ServiceCheck { reason, line: excerpt(line.as_bytes()) };
    let (name, rest) = rest.split_once('|').ok_or(bad("no status"))?;
    if name.is_empty() {
        return Err(bad("the name is empty"));
    }
    let (status, mut fields) = match rest.split_once('|') {
        Some((s, f)) => (s, f),
        None => (rest, ""),
    };
    let status = match status {
        "0" => 0,
        "1" => 1,
        "2" => 2,
        "3" => 3,
        _ => return Err(bad("the status is not 0, 1, 2 or 3")),
    };
    let mut check = ServiceCheck { name: name.to_string(), status, timestamp: None, host: None, tags: Vec::new(), message: None };
    while !fields.is_empty() {
        if let Some(message) = fields.strip_prefix("m:") {
            check.message = Some(message.replace("\\n", "\n").replace("m\\:", "m:"));
            break;
        }
        let (field, next) = fields.split_once('|').unwrap_or((fields, ""));
        if let Some(ts) = field.strip_prefix("d:") {
            check.timestamp = ts.parse().ok();
        } else if let Some(host) = field.strip_prefix("h:") {
            check.host = Some(host.to_string());
        } else if let Some(tags) = field.strip_prefix('#') {
            check.tags.extend(tags.split(',').filter(|t| !t.is_empty()).map(str::to_string));
        }
        fields = next;
    }
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The samples of a metric line, written as `key tags: kind...` with bad
    /// groups as `bad`, or the error of a refused line.
    fn describe(line: &str, h_as_timer: bool) -> String {
        match parse_line(line.as_bytes()) {
            Ok(Line::Metric(m)) => {
                let samples: Vec<String> = m
                    .samples(h_as_timer)
                    .map(|s| match s {
                        Ok(Sample { kind: Kind::Counter(v), .. }) => format!("c {v}"),
                        Ok(Sample { kind: Kind::Timer(v), rate }) => format!("ms {v}@{rate}"),
                        Ok(Sample { kind: Kind::Gauge { value, delta }, .. }) => format!("g {}{value}", if delta { "d" } else { "" }),
                        Ok(Sample { kind: Kind::Set(v), .. }) => format!("s {v:?}"),
                        Err(_) => "bad".into(),
                    })
                    .collect();
                format!(
                    "{}{}{}: {}",
                    m.key,
                    m.tags,
                    if m.bad_tags > 0 { format!(" ({} bad tags)", m.bad_tags) } else { String::new() },
                    samples.join(", ")
                )
            }
            Ok(Line::Event(e)) => format!("event {e:?}"),
            Ok(Line::ServiceCheck(c)) => format!("check {c:?}"),
            Err(e) => format!("error {e}"),
        }
    }

    fn check(line: &str, expected: &str) {
        assert_eq!(describe(line, true), expected, "{line:?}");
    }

    #[test]
    fn metric_lines() {
        check("a:1|c", "a: c 1");
        check("a:1|c|@0.5", "a: c 2");
        check("a:-1|c", "a: c -1");
        check("a:1|c:2|c:3|ms", "a: c 1, c 2, ms 3@1");
        check("a:3|ms|@0.5", "a: ms 3@0.5");
        check("a:5|g", "a: g 5");
        check("a:+5|g", "a: g d5");
        check("a:-5|g", "a: g d-5");
        check("a:-5|g|@0.1", "a: g d-5");
        check("a:alice|s", "a: s \"alice\"");
        check("a:|s", "a: s \"0\"");
        check("a:5|h", "a: ms 5@1");
        check("a:5|d", "a: ms 5@1");
        check("a:5|x", "a: c 5");
        check("a:0x10|c", "a: c 16");
        check("a:1| ms", "a: ms 1@1");
        check("a:1|c ", "a: c 1");
        // Bad values and fields (compat-spec 1.10 items 2, 3).
        check("a", "a: bad");
        check("a:1", "a: bad");
        check("a:abc|c", "a: bad");
        check("a:|g", "a: bad");
        check("a:-1|ms", "a: bad");
        check("a:1|ms|@x", "a: bad");
        check("a:1|c|@-0.5", "a: bad");
        check("a:1|c|0.5", "a: bad");
        check("a:1|c|", "a: bad");
        check("a:1|c|@0", "a: bad");
        check("a:1|c|@", "a: bad");
        check("a:1|c|@1e-1", "a: c 1");
        check("a:abc|c:2|c", "a: bad, c 2");
        // Key sanitizing and tags (items 12, 13).
        check("fo/o;t=v:1|c", "fo-o;t=v: c 1");
        check("b ar:1|c", "b_ar: c 1");
        check("b \t ar:1|c", "b_ar: c 1");
        check("foo+bar:1|c", "foobar: c 1");
        check("a:1|c|#env:prod,solo", "a;env=prod;solo=true: c 1");
        check("a:1|c|#url:http://x", "a;url=http--x: c 1");
        check("a:1|c|#x;y:z", "a;x_y=z: c 1");
        check("a:1|c|#:v,ok:1", "a;ok=1 (1 bad tags): c 1");
        // DogStatsD (compat-spec 2.6).
        check("page.views:1:2:3|c|@0.5|#a:b", "page.views;a=b: c 2, c 4, c 6");
        check("a:1|g|T1700000000", "a: g 1");
        check("a:1|c|x:1", "a: c 1");
        check("a:1|c|c:abc", "a: c 1");
        check("a:1|c|card:low|e:it:x", "a: c 1");
        check("a:1|c|@0.5:2|c", "a: c 2, c 2");
        check("a:1|c|0.5:2|c", "a: bad, c 2");
        check("a:1|c|#a:b|c:container-1", "a;a=b: c 1");
        check("a:1|c|#a:b|@0.5", "a;a=b: c 2");
        check("users:1:2|s", "users: s \"1\", s \"2\"");
    }

    #[test]
    fn events_and_service_checks() {
        let event = |line: &str| match parse_line(line.as_bytes()) {
            Ok(Line::Event(e)) => Ok(e),
            Ok(other) => panic!("{line}: {other:?}"),
            Err(e) => Err(e.to_string()),
        };
        let e = event("_e{5,4}:title|text").expect("event");
        assert_eq!((e.title.as_str(), e.text.as_str(), e.priority.as_str(), e.alert_type.as_str()), ("title", "text", "normal", "info"));
        let e = event("_e{5,4}:tit|e|text").expect("pipes by length");
        assert_eq!((e.title.as_str(), e.text.as_str()), ("tit|e", "text"));
        assert_eq!(event("_e{6,4}:héllo|text").expect("utf-8 lengths").title, "héllo");
        assert_eq!(event("_e{1,4}:t|a\\nb").expect("escaped newline").text, "a\nb");
        let e = event("_e{5,4}:title|text|p:urgent|t:error|d:1700000000|h:web1|#env:prod,x").expect("fields");
        assert_eq!(
            (e.priority.as_str(), e.alert_type.as_str(), e.timestamp, e.host.as_deref()),
            ("normal", "error", Some(1_700_000_000), Some("web1"))
        );
        assert_eq!(e.tags, ["env:prod", "x"]);
        for bad in ["_e{0,4}:|text", "_e{5}:title", "_e{5,9}:title|text", "_e{a,4}:title|text", "_e{-1,4}:title|text", "_e{1,4}:é|text"] {
            assert!(event(bad).is_err(), "{bad}");
        }
        let sc = |line: &str| match parse_line(line.as_bytes()) {
            Ok(Line::ServiceCheck(c)) => Ok(c),
            Ok(other) => panic!("{line}: {other:?}"),
            Err(e) => Err(e.to_string()),
        };
        let c = sc("_sc|db|2|#env:prod|m:timeout|retrying").expect("check");
        assert_eq!((c.name.as_str(), c.status, c.message.as_deref()), ("db", 2, Some("timeout|retrying")));
        assert_eq!(c.tags, ["env:prod"]);
        assert_eq!(sc("_sc|db|0|h:web|m:a m\\: b\\nc").expect("escapes").message.as_deref(), Some("a m: b\nc"));
        assert!(sc("_sc|db|5").is_err());
        assert!(sc("_sc||0").is_err());
    }

    #[test]
    fn lines_of_a_packet() {
        let packet = b"a:1|c\r\n\nb:2|c\n";
        let got: Vec<&[u8]> = lines(packet).collect();
        assert_eq!(got, [&b"a:1|c"[..], b"b:2|c"]);
        assert!(matches!(parse_line(b"\xff:1|c"), Err(WireError::NotUtf8 { .. })));
        let long = format!("{}:x|c", "k".repeat(500));
        let Ok(Line::Metric(m)) = parse_line(long.as_bytes()) else { panic!("metric") };
        let err = m.samples(true).next().expect("one group").expect_err("bad value").to_string();
        assert!(err.len() < 600, "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200)) {
            for line in lines(&bytes) {
                if let Ok(Line::Metric(m)) = parse_line(line) {
                    for _ in m.samples(true) {}
                }
            }
        }

        #[test]
        fn statsd_shaped_text_never_panics(line in "[a-z_\\.#:|@,;=+\\-0-9 /{}é]{0,60}") {
            if let Ok(Line::Metric(m)) = parse_line(line.as_bytes()) {
                for _ in m.samples(true) {}
            }
        }
    }
}
