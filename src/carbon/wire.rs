//! Carbon wire formats: the plaintext line protocol (`path value timestamp`), the
//! pickle protocol (a list of `(path, (timestamp, value))`), and the canonical form of
//! series names, including Graphite 1.1 tags (compat-spec 3.1, 3.2).
//!
//! Owns: splitting and decoding one plaintext line, Python `float()` number syntax,
//! tag validation and canonical tag order, and a restricted unpickler that builds no
//! Python objects beyond lists, tuples, strings and numbers and allows no globals.
//!
//! Does not own: splitting a stream or datagram into lines, the 16 KiB line limit, the
//! 4-byte pickle length prefix and its 1 MiB limit (the listener); replacing
//! [`Stamp::Now`] by the receive time, `MIN_TIMESTAMP_RESOLUTION` flooring and the
//! future / old timestamp policy (the writer). Everything here is pure: bytes in,
//! `Result` out, no I/O, no panics, and no allocation for a plaintext line whose path
//! is already canonical.

use std::borrow::Cow;
use std::cmp::Ordering;

/// When a point was taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stamp {
    /// The sender wrote `-1`: use the receive time.
    Now,
    /// Seconds since the epoch, truncated toward zero as Python's `int()` does.
    At(i64),
}

/// One decoded carbon datapoint. `name` is canonical (see [`canonical_name`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Point<'a> {
    pub name: Cow<'a, str>,
    pub value: f64,
    pub stamp: Stamp,
}

/// Why a line, a path or a pickle payload was refused. Quoted inputs are cut to 200
/// bytes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WireError {
    #[error("cannot parse carbon line {line:?}: expected 3 fields (path value timestamp), found {found}")]
    FieldCount { found: usize, line: String },
    #[error("cannot parse carbon value {value:?} in line {line:?}")]
    Value { value: String, line: String },
    #[error("cannot parse carbon timestamp {timestamp:?} in line {line:?}")]
    Timestamp { timestamp: String, line: String },
    #[error("cannot decode carbon line {line:?} as utf-8")]
    NotUtf8 { line: String },
    #[error("cannot parse carbon path {path:?}: {reason}")]
    Name { path: String, reason: &'static str },
    #[error("cannot unpickle carbon payload: opcode {name} ({opcode:#04x}) at byte {offset} is not allowed")]
    PickleOpcode { opcode: u8, name: &'static str, offset: usize },
    #[error("cannot unpickle carbon payload: protocol {version} at byte {offset} is not supported")]
    PickleProtocol { version: u8, offset: usize },
    #[error("cannot unpickle carbon payload: data ends inside the opcode at byte {offset}")]
    PickleTruncated { offset: usize },
    #[error("cannot unpickle carbon payload: {reason} at byte {offset}")]
    PickleMalformed { reason: &'static str, offset: usize },
    #[error("cannot unpickle carbon payload: the top-level object is {found}, not a list")]
    PickleNotList { found: &'static str },
}

/// Longest excerpt of a bad input kept in an error: the contract logs offending bytes
/// cut to 200 (CONTRACT.md, bad input), so a 16 KiB line cannot swamp the log.
const QUOTE_LIMIT: usize = 200;

// ---------------------------------------------------------------------------------
// Plaintext

/// One plaintext line (without its line ending; surrounding whitespace allowed).
/// Ok(None) for a line to drop silently: a NaN value, or an empty/blank line.
pub fn parse_line(line: &[u8]) -> Result<Option<Point<'_>>, WireError> {
    let line = trim(line);
    if line.is_empty() {
        return Ok(None);
    }
    // Validate once; fields are then cut at ASCII bytes, which are char boundaries.
    let Ok(text) = std::str::from_utf8(line) else {
        return Err(WireError::NotUtf8 { line: quote(&String::from_utf8_lossy(line)) });
    };
    let fields = || text.split(|c| u8::try_from(c).is_ok_and(is_space)).filter(|field| !field.is_empty());
    let mut iter = fields();
    let (Some(path), Some(value), Some(timestamp), None) = (iter.next(), iter.next(), iter.next(), iter.next()) else {
        return Err(WireError::FieldCount { found: fields().count(), line: quote(text) });
    };
    // Carbon's order: both float()s, then drop NaN, then int() the timestamp, then the path.
    let bad_timestamp = || WireError::Timestamp { timestamp: quote(timestamp), line: quote(text) };
    let Some(value) = parse_float(value) else {
        return Err(WireError::Value { value: quote(value), line: quote(text) });
    };
    let ts = parse_float(timestamp).ok_or_else(bad_timestamp)?;
    if value.is_nan() {
        return Ok(None);
    }
    let stamp = stamp(ts).ok_or_else(bad_timestamp)?;
    let name = canonical_name(path)?;
    Ok(Some(Point { name, value, stamp }))
}

/// The ASCII characters Python's `str.split()` and `str.strip()` treat as whitespace.
const fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r' | b'\x1c'..=b'\x1f')
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| !is_space(b)).unwrap_or(bytes.len());
    let end = bytes.iter().rposition(|&b| !is_space(b)).map_or(start, |last| last + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Seconds from a float timestamp: `-1` means now, the rest is truncated toward zero.
/// None for NaN, infinities and values outside i64.
pub(super) fn stamp(ts: f64) -> Option<Stamp> {
    if ts == -1.0 {
        return Some(Stamp::Now);
    }
    let whole = ts.trunc();
    // -2^63 is exactly representable; 2^63 is the first f64 above i64::MAX.
    if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&whole) { Some(Stamp::At(whole as i64)) } else { None }
}

/// Python `float(text)`. Rust's grammar is a subset of Python's, so it runs first;
/// whitespace and `_` digit separators are only handled when it refuses.
pub(super) fn parse_float(text: &str) -> Option<f64> {
    text.parse().ok().or_else(|| parse_float_python(text))
}

fn parse_float_python(text: &str) -> Option<f64> {
    let text = text.trim_matches(char::is_whitespace);
    // Python accepts `_` only between two digits: `1_000`, `1e1_0`, not `1_`, `_1`, `1__0`.
    let b = text.as_bytes();
    let between_digits = |w: &[u8]| !matches!(w, [a, b'_', c] if !(a.is_ascii_digit() && c.is_ascii_digit()));
    if b.first() == Some(&b'_') || b.last() == Some(&b'_') || !b.windows(3).all(between_digits) {
        return None;
    }
    text.replace('_', "").parse().ok()
}

/// The bad input as it goes into an error message, cut at a char boundary.
fn quote(text: &str) -> String {
    let end = (0..=QUOTE_LIMIT.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
    if end == text.len() { text.to_owned() } else { format!("{}...", &text[..end]) }
}

// ---------------------------------------------------------------------------------
// Series names

/// Byte classes for the one-pass scan of a name; bits, so the scan just ORs them.
const TAGGED: u8 = 1;
const FORBIDDEN: u8 = 2;
const NON_ASCII: u8 = 4;

const fn name_class(b: u8) -> u8 {
    match b {
        b';' => TAGGED,
        0x80.. => NON_ASCII,
        _ if b == 0 || is_space(b) => FORBIDDEN,
        _ => 0,
    }
}

/// Canonical series name: plain dotted names pass through unchanged (borrowed, no allocation);
/// Graphite 1.1 tagged names `name;k=v;...` are validated and returned with tags sorted by tag name
/// (duplicate tag names: the last one wins, as carbon's dict does); OpenMetrics-style `name{k="v",...}` is
/// accepted and converted to the `name;k=v` canonical form. Validation rules in compat-spec 3.1 (name non-empty,
/// each segment has '=', tag name non-empty and free of `; ! ^ =`, value non-empty, no ';', not starting with '~';
/// leading '~' stripped from the name...). Untagged names: reject empty names and names containing whitespace or NUL.
///
/// Tag order is carbon's: it sorts the `;tag=value` strings, so `a0` sorts before `a`.
/// Whitespace and NUL are refused anywhere in the path, tags included, so that every
/// canonical name can be written back as a plaintext line.
pub fn canonical_name(name: &str) -> Result<Cow<'_, str>, WireError> {
    if name.is_empty() {
        return Err(bad_name(name, "the path is empty"));
    }
    let class = name.bytes().fold(0, |class, b| class | name_class(b));
    if class & FORBIDDEN != 0 || (class & NON_ASCII != 0 && name.chars().any(char::is_whitespace)) {
        return Err(bad_name(name, "the path contains whitespace or NUL"));
    }
    // Carbon tries the OpenMetrics form first, whatever else the path holds.
    if name.ends_with("\"}") && name.contains('{') {
        return openmetrics(name);
    }
    if class & TAGGED == 0 {
        return Ok(Cow::Borrowed(name));
    }
    tagged(name)
}

fn bad_name(path: &str, reason: &'static str) -> WireError {
    WireError::Name { path: quote(path), reason }
}

/// `name;tag=value;...`, borrowed when already canonical.
fn tagged(path: &str) -> Result<Cow<'_, str>, WireError> {
    let (metric, rest) = path.split_once(';').unwrap_or((path, ""));
    if metric.is_empty() {
        return Err(bad_name(path, "the series name before ';' is empty"));
    }
    let name = series_name(path, metric)?;
    let mut canonical = name.len() == metric.len();
    let mut previous: Option<&str> = None;
    for segment in rest.split(';') {
        let Some((tag, value)) = segment.split_once('=') else {
            return Err(bad_name(path, "a tag has no '='"));
        };
        check_tag(path, tag, value)?;
        if tag == "name" || previous.is_some_and(|p| tag_order(p, tag) != Ordering::Less) {
            canonical = false;
        }
        previous = Some(tag);
    }
    if canonical {
        return Ok(Cow::Borrowed(path));
    }
    let tags = rest.split(';').filter_map(|s| s.split_once('=')).map(|(t, v)| (t, Cow::Borrowed(v))).collect();
    let out = format_tags(name, tags);
    // Reordering can move a `"}` to the end; that text would read back as OpenMetrics.
    if out.ends_with("\"}") && out.contains('{') {
        return Err(bad_name(path, "the sorted tags would read as an openmetrics path"));
    }
    Ok(Cow::Owned(out))
}

/// `name{tag="value",...}`, matched the way carbon's regex
/// `([^=]+)="((?:[\\]["\\]|[^"\\])+)"(:?,|$)` does, including the `:,` separator
/// that its typo allows.
fn openmetrics(path: &str) -> Result<Cow<'_, str>, WireError> {
    let body = path.strip_suffix('}').unwrap_or(path);
    let Some((metric, mut raw)) = body.split_once('{') else {
        return Err(bad_name(path, "an openmetrics path has no '{'"));
    };
    if raw.contains('{') {
        return Err(bad_name(path, "an openmetrics path has more than one '{'"));
    }
    if metric.is_empty() {
        return Err(bad_name(path, "the series name before '{' is empty"));
    }
    // Carbon lets `;` through here and then cannot read its own output back.
    if metric.contains(';') {
        return Err(bad_name(path, "the series name before '{' contains ';'"));
    }
    let name = series_name(path, metric)?;
    let mut tags = Vec::new();
    while !raw.is_empty() {
        let Some((tag, rest)) = raw.split_once('=') else {
            return Err(bad_name(path, "an openmetrics tag has no '='"));
        };
        let Some(rest) = rest.strip_prefix('"') else {
            return Err(bad_name(path, "an openmetrics tag value is not quoted"));
        };
        let bytes = rest.as_bytes();
        let mut end = 0;
        let mut escaped = false;
        loop {
            match bytes.get(end) {
                Some(b'"') => break,
                Some(b'\\') if matches!(bytes.get(end + 1), Some(b'"' | b'\\')) => {
                    escaped = true;
                    end += 2;
                }
                Some(b'\\') | None => return Err(bad_name(path, "an openmetrics tag value is not terminated")),
                Some(_) => end += 1,
            }
        }
        let (quoted, after) = (&rest[..end], &rest[end + 1..]);
        raw = if after.is_empty() {
            after
        } else if let Some(next) = after.strip_prefix(',').or_else(|| after.strip_prefix(":,")) {
            next
        } else {
            return Err(bad_name(path, "openmetrics tags are not separated by ','"));
        };
        let value = if escaped { Cow::Owned(unescape_openmetrics(quoted)) } else { Cow::Borrowed(quoted) };
        check_tag(path, tag, &value)?;
        tags.push((tag, value));
    }
    Ok(Cow::Owned(format_tags(name, tags)))
}

fn unescape_openmetrics(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    out
}

/// The `name` tag: the series name without leading `~`.
fn series_name<'a>(path: &str, metric: &'a str) -> Result<&'a str, WireError> {
    let name = metric.trim_start_matches('~');
    if name.is_empty() {
        return Err(bad_name(path, "the series name is only '~'"));
    }
    Ok(name)
}

/// carbon `TaggedSeries.validateTagAndValue`.
fn check_tag(path: &str, tag: &str, value: &str) -> Result<(), WireError> {
    let reason = if tag.is_empty() {
        "a tag name is empty"
    } else if value.is_empty() {
        "a tag value is empty"
    } else if tag.contains([';', '!', '^', '=']) {
        "a tag name contains one of ; ! ^ ="
    } else if value.contains(';') {
        "a tag value contains ';'"
    } else if value.starts_with('~') {
        "a tag value starts with '~'"
    } else {
        return Ok(());
    };
    Err(bad_name(path, reason))
}

/// Carbon sorts the `;tag=value` strings; tags being unique, that is the order of `tag=`.
fn tag_order(a: &str, b: &str) -> Ordering {
    let eq = std::iter::once(b'=');
    a.bytes().chain(eq.clone()).cmp(b.bytes().chain(eq))
}

/// carbon `TaggedSeries.format`: the name, then the tags in order, the last of
/// duplicates winning, and an explicit `name` tag dropped for the series name.
fn format_tags(name: &str, mut tags: Vec<(&str, Cow<'_, str>)>) -> String {
    tags.retain(|(tag, _)| *tag != "name");
    // Stable, so duplicates stay in input order and the last is the one kept.
    tags.sort_by(|a, b| tag_order(a.0, b.0));
    let mut out = String::with_capacity(name.len() + tags.iter().map(|(t, v)| t.len() + v.len() + 2).sum::<usize>());
    out.push_str(name);
    for (i, (tag, value)) in tags.iter().enumerate() {
        if tags.get(i + 1).is_some_and(|next| next.0 == *tag) {
            continue;
        }
        out.push(';');
        out.push_str(tag);
        out.push('=');
        out.push_str(value);
    }
    out
}

pub use super::pickle::{PickleBatch, parse_pickle};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// One-line rendering of a result: `name value stamp` per point, or the error text.
    fn render(point: &Point<'_>) -> String {
        let stamp = match point.stamp {
            Stamp::Now => "now".to_owned(),
            Stamp::At(ts) => ts.to_string(),
        };
        format!("{} {} {stamp}", point.name, point.value)
    }

    fn check_line(input: impl AsRef<[u8]>, expected: &str) {
        let actual = match parse_line(input.as_ref()) {
            Ok(Some(point)) => render(&point),
            Ok(None) => "dropped".to_owned(),
            Err(e) => e.to_string(),
        };
        assert_eq!(actual, expected, "line {:?}", String::from_utf8_lossy(input.as_ref()));
    }

    /// Also checks that a canonical name is its own canonical form, without a copy.
    fn check_name(input: &str, expected: &str) {
        let actual = match canonical_name(input) {
            Ok(name) => {
                let again = canonical_name(&name);
                assert!(matches!(again, Ok(Cow::Borrowed(n)) if n == name), "not idempotent: {input:?} -> {name:?} -> {again:?}");
                name.into_owned()
            }
            Err(e) => e.to_string(),
        };
        assert_eq!(actual, expected, "path {input:?}");
    }

    fn check_pickle(payload: impl AsRef<[u8]>, expected: &str) {
        let actual = match parse_pickle(payload.as_ref()) {
            Ok(batch) => {
                let points: Vec<_> = batch.points.iter().map(render).collect();
                format!("[{}] skipped {}", points.join(", "), batch.skipped)
            }
            Err(e) => e.to_string(),
        };
        assert_eq!(actual, expected);
    }

    #[test]
    fn plaintext() {
        // compat-spec 3.6 item 1
        check_line("a.b 1 1700000000", "a.b 1 1700000000");
        check_line("a.b 1", r#"cannot parse carbon line "a.b 1": expected 3 fields (path value timestamp), found 2"#);
        check_line("a.b 1 2 3", r#"cannot parse carbon line "a.b 1 2 3": expected 3 fields (path value timestamp), found 4"#);
        check_line("a.b x 1700000000", r#"cannot parse carbon value "x" in line "a.b x 1700000000""#);
        check_line("a.b nan 1700000000", "dropped");
        check_line("a.b 1 -1", "a.b 1 now");
        check_line("a.b 1.5 1700000000.9", "a.b 1.5 1700000000");
        check_line("a.b   1    1700000000", "a.b 1 1700000000");
        check_line("a.b\t1\t\t1700000000", "a.b 1 1700000000");
        check_line("a.b \t 1\t 1700000000", "a.b 1 1700000000");

        // Surrounding whitespace, a left-over `\r`, and the rest of Python's ASCII whitespace.
        check_line("  a.b 1 1700000000 \t", "a.b 1 1700000000");
        check_line("a.b 1 1700000000\r", "a.b 1 1700000000");
        check_line("a.b\x0b1\x0c1700000000\x1f", "a.b 1 1700000000");
        check_line("", "dropped");
        check_line(" \t\r", "dropped");
        check_line("a.b", r#"cannot parse carbon line "a.b": expected 3 fields (path value timestamp), found 1"#);

        // Values: Python float() syntax.
        check_line("a.b 1e3 1", "a.b 1000 1");
        check_line("a.b +4 1", "a.b 4 1");
        check_line("a.b -2.5 1", "a.b -2.5 1");
        check_line("a.b .5 1", "a.b 0.5 1");
        check_line("a.b 5. 1", "a.b 5 1");
        check_line("a.b 1E-2 1", "a.b 0.01 1");
        check_line("a.b inf 1", "a.b inf 1");
        check_line("a.b -inf 1", "a.b -inf 1");
        check_line("a.b Infinity 1", "a.b inf 1");
        check_line("a.b -INFINITY 1", "a.b -inf 1");
        check_line("a.b NaN 1", "dropped");
        check_line("a.b -nan 1", "dropped");
        check_line("a.b 1_000 1", "a.b 1000 1");
        check_line("a.b 1_000.2_5e1_0 1", "a.b 10002500000000 1");
        check_line("a.b 1,5 1", r#"cannot parse carbon value "1,5" in line "a.b 1,5 1""#);
        check_line("a.b 0x10 1", r#"cannot parse carbon value "0x10" in line "a.b 0x10 1""#);
        check_line("a.b 1__0 1", r#"cannot parse carbon value "1__0" in line "a.b 1__0 1""#);
        check_line("a.b _1 1", r#"cannot parse carbon value "_1" in line "a.b _1 1""#);
        check_line("a.b 1_ 1", r#"cannot parse carbon value "1_" in line "a.b 1_ 1""#);
        check_line("a.b 1_.5 1", r#"cannot parse carbon value "1_.5" in line "a.b 1_.5 1""#);
        check_line("a.b 1e 1", r#"cannot parse carbon value "1e" in line "a.b 1e 1""#);
        check_line("a.b . 1", r#"cannot parse carbon value "." in line "a.b . 1""#);
        check_line("a.b infinit 1", r#"cannot parse carbon value "infinit" in line "a.b infinit 1""#);

        // Timestamps: float, then int() toward zero; exactly -1 is now.
        check_line("a.b 1 -1.0", "a.b 1 now");
        check_line("a.b 1 -1e0", "a.b 1 now");
        check_line("a.b 1 -1.5", "a.b 1 -1");
        check_line("a.b 1 -0.5", "a.b 1 0");
        check_line("a.b 1 0", "a.b 1 0");
        check_line("a.b 1 1e9", "a.b 1 1000000000");
        check_line("a.b 1 1_700_000_000", "a.b 1 1700000000");
        check_line("a.b 1 -9223372036854775808", "a.b 1 -9223372036854775808");
        check_line(
            "a.b 1 9223372036854775808",
            r#"cannot parse carbon timestamp "9223372036854775808" in line "a.b 1 9223372036854775808""#,
        );
        check_line("a.b 1 inf", r#"cannot parse carbon timestamp "inf" in line "a.b 1 inf""#);
        check_line("a.b 1 nan", r#"cannot parse carbon timestamp "nan" in line "a.b 1 nan""#);
        check_line("a.b 1 x", r#"cannot parse carbon timestamp "x" in line "a.b 1 x""#);
        // Carbon reads both numbers, then drops NaN, then reads the timestamp and the path.
        check_line("a.b nan x", r#"cannot parse carbon timestamp "x" in line "a.b nan x""#);
        check_line("a.b nan inf", "dropped");
        check_line("a;b nan 1", "dropped");

        // Paths.
        check_line("a;z=1;b=2 1 1", "a;b=2;z=1 1 1");
        check_line(r#"a{b="1"} 1 1"#, "a;b=1 1 1");
        check_line("a;b 1 1", r#"cannot parse carbon path "a;b": a tag has no '='"#);
        check_line("café.ü 1 1", "café.ü 1 1");
        check_line(
            b"a.\xff 1 1",
            "cannot parse carbon line \"a.\u{fffd} 1 1\" as utf-8".replace("parse carbon line", "decode carbon line").as_str(),
        );
        check_line(b"a.b\x00 1 1", r#"cannot parse carbon path "a.b\0": the path contains whitespace or NUL"#);
    }

    #[test]
    fn plaintext_error_quotes_at_most_200_bytes() {
        let line = format!("a.b {} 1", "x".repeat(1000));
        let Err(WireError::Value { value, line: quoted }) = parse_line(line.as_bytes()) else {
            panic!("expected a value error");
        };
        assert_eq!(value, format!("{}...", "x".repeat(200)));
        assert_eq!(quoted.len(), 203);
    }

    #[test]
    fn udp_datagram_with_crlf_lines() {
        // compat-spec 3.6 item 2, as the listener splits it: on `\n`, `\r` left to parse_line.
        let datagram = b"a.b 1 1700000000\r\nc.d 2 1700000000\r\ne.f 3 1700000000\r\n";
        let points: Vec<_> = datagram.split(|&b| b == b'\n').filter_map(|line| parse_line(line).ok().flatten()).collect();
        let names: Vec<_> = points.iter().map(|p| &*p.name).collect();
        assert_eq!(names, ["a.b", "c.d", "e.f"]);
    }

    #[test]
    fn plain_name_is_borrowed() {
        let point = parse_line(b"a.b.c 12.5 1700000000");
        assert!(matches!(point, Ok(Some(Point { name: Cow::Borrowed("a.b.c"), .. }))), "{point:?}");
        let point = parse_line(b"a.b;k=v;z=1 12.5 1700000000");
        assert!(matches!(point, Ok(Some(Point { name: Cow::Borrowed(_), .. }))), "sorted tags need no copy: {point:?}");
    }

    #[test]
    fn names() {
        check_name("a.b", "a.b");
        check_name("~a.b", "~a.b");
        check_name("a{b=1}", "a{b=1}");
        check_name("é.ü;ß=ø", "é.ü;ß=ø");
        check_name("", r#"cannot parse carbon path "": the path is empty"#);
        check_name("a b", r#"cannot parse carbon path "a b": the path contains whitespace or NUL"#);
        check_name("a\tb", r#"cannot parse carbon path "a\tb": the path contains whitespace or NUL"#);
        check_name("a\0b", r#"cannot parse carbon path "a\0b": the path contains whitespace or NUL"#);
        check_name("a\u{a0}b", r#"cannot parse carbon path "a\u{a0}b": the path contains whitespace or NUL"#);
        check_name("a;b=1 x", r#"cannot parse carbon path "a;b=1 x": the path contains whitespace or NUL"#);

        // compat-spec 3.6 item 3
        check_name("a;z=1;b=2", "a;b=2;z=1");
        check_name("a;b=2;z=1", "a;b=2;z=1");
        check_name("a;b", r#"cannot parse carbon path "a;b": a tag has no '='"#);
        check_name("a;=1", r#"cannot parse carbon path "a;=1": a tag name is empty"#);
        check_name("a;b=", r#"cannot parse carbon path "a;b=": a tag value is empty"#);
        check_name("a;b=~x", r#"cannot parse carbon path "a;b=~x": a tag value starts with '~'"#);
        check_name(";b=1", r#"cannot parse carbon path ";b=1": the series name before ';' is empty"#);

        // More of carbon's TaggedSeries.
        check_name("~a;b=1", "a;b=1");
        check_name("~~;b=1", r#"cannot parse carbon path "~~;b=1": the series name is only '~'"#);
        check_name("a;b=1;b=2", "a;b=2");
        check_name("a;b=2;c=3;b=1", "a;b=1;c=3");
        check_name("a;name=x;b=1", "a;b=1");
        check_name("a;b=c=d", "a;b=c=d");
        check_name("a;b=x~", "a;b=x~");
        check_name("a;b!c=1", r#"cannot parse carbon path "a;b!c=1": a tag name contains one of ; ! ^ ="#);
        check_name("a;b^c=1", r#"cannot parse carbon path "a;b^c=1": a tag name contains one of ; ! ^ ="#);
        check_name("a;b=1;", r#"cannot parse carbon path "a;b=1;": a tag has no '='"#);
        check_name("a;;b=1", r#"cannot parse carbon path "a;;b=1": a tag has no '='"#);
        // Carbon sorts `;tag=value` strings, so `a0=` comes before `a=` ('0' < '=').
        check_name("a;a=2;a0=1", "a;a0=1;a=2");
        check_name("a;a0=1;a=2", "a;a0=1;a=2");
        check_name(r#"a;z=1"};b={"#, r#"cannot parse carbon path "a;z=1\"};b={": the sorted tags would read as an openmetrics path"#);

        // OpenMetrics.
        check_name(r#"a{b="1",c="2"}"#, "a;b=1;c=2");
        check_name(r#"a{c="2",b="1"}"#, "a;b=1;c=2");
        check_name(r#"~a.b{c="x"}"#, "a.b;c=x");
        check_name(r#"a{b="x\"y\\z"}"#, r#"a;b=x"y\z"#);
        // Only a path ending in `"}` is OpenMetrics; anything else is a plain name.
        check_name(r#"a{b="1",}"#, r#"a{b="1",}"#);
        check_name(r#"a{b="1":,c="2"}"#, "a;b=1;c=2");
        check_name(r#"a{b="1",b="2"}"#, "a;b=2");
        check_name(r#"a{name="x",b="1"}"#, "a;b=1");
        check_name(r#"a{b="1,2=3"}"#, "a;b=1,2=3");
        check_name(r#"{b="1"}"#, r#"cannot parse carbon path "{b=\"1\"}": the series name before '{' is empty"#);
        check_name(r#"a{b=""}"#, r#"cannot parse carbon path "a{b=\"\"}": a tag value is empty"#);
        check_name(r#"a{="1"}"#, r#"cannot parse carbon path "a{=\"1\"}": a tag name is empty"#);
        check_name(r#"a{b="~x"}"#, r#"cannot parse carbon path "a{b=\"~x\"}": a tag value starts with '~'"#);
        check_name(r#"a{b="1;2"}"#, r#"cannot parse carbon path "a{b=\"1;2\"}": a tag value contains ';'"#);
        check_name(r#"a{b!="1"}"#, r#"cannot parse carbon path "a{b!=\"1\"}": a tag name contains one of ; ! ^ ="#);
        check_name(r#"a{b=1"}"#, r#"cannot parse carbon path "a{b=1\"}": an openmetrics tag value is not quoted"#);
        check_name(r#"a{b"}"#, r#"cannot parse carbon path "a{b\"}": an openmetrics tag has no '='"#);
        check_name(r#"a{b="1"c="2"}"#, r#"cannot parse carbon path "a{b=\"1\"c=\"2\"}": openmetrics tags are not separated by ','"#);
        check_name(r#"a{b="x\q"}"#, r#"cannot parse carbon path "a{b=\"x\\q\"}": an openmetrics tag value is not terminated"#);
        check_name(r#"a{{b="1"}"#, r#"cannot parse carbon path "a{{b=\"1\"}": an openmetrics path has more than one '{'"#);
        check_name(r#"a;x=1{b="1"}"#, r#"cannot parse carbon path "a;x=1{b=\"1\"}": the series name before '{' contains ';'"#);
    }

    /// StatsD's pickle backend (backends/graphite.js): protocol 0, `L...L` timestamps, values as strings.
    const P0_STATSD: &[u8] = b"(l(S'stats.gauges.temp'\n(L1700000000L\nS'40'\ntta(S'stats.timers.api.mean_90'\n(L1700000000L\nS'12.5'\ntta(S'stats.counters.hits.rate;env=prod'\n(L1700000000L\nS'0.1'\ntta.";
    /// `[('a.b.c', (1700000000, 1.5)), ('x.y', (1700000010.0, -2.25)), ('café;z=1;b=2', (1700000020, 7))]`
    /// pickled by Python 3.11 with protocol 0, 2, 4 and 5.
    const P0: &[u8] = b"(lp0\n(Va.b.c\np1\n(I1700000000\nF1.5\ntp2\ntp3\na(Vx.y\np4\n(F1700000010.0\nF-2.25\ntp5\ntp6\na(Vcaf\xe9;z=1;b=2\np7\n(I1700000020\nI7\ntp8\ntp9\na.";
    const P2: &[u8] = b"\x80\x02]q\x00(X\x05\x00\x00\x00a.b.cq\x01J\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86q\x02\x86q\x03X\x03\x00\x00\x00x.yq\x04GA\xd9T\xfcB\x80\x00\x00G\xc0\x02\x00\x00\x00\x00\x00\x00\x86q\x05\x86q\x06X\x0d\x00\x00\x00caf\xc3\xa9;z=1;b=2q\x07J\x14\xf1SeK\x07\x86q\x08\x86q\x09e.";
    const P4: &[u8] = b"\x80\x04\x95V\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x05a.b.c\x94J\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86\x94\x86\x94\x8c\x03x.y\x94GA\xd9T\xfcB\x80\x00\x00G\xc0\x02\x00\x00\x00\x00\x00\x00\x86\x94\x86\x94\x8c\x0dcaf\xc3\xa9;z=1;b=2\x94J\x14\xf1SeK\x07\x86\x94\x86\x94e.";
    const P5: &[u8] = b"\x80\x05\x95V\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x05a.b.c\x94J\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86\x94\x86\x94\x8c\x03x.y\x94GA\xd9T\xfcB\x80\x00\x00G\xc0\x02\x00\x00\x00\x00\x00\x00\x86\x94\x86\x94\x8c\x0dcaf\xc3\xa9;z=1;b=2\x94J\x14\xf1SeK\x07\x86\x94\x86\x94e.";
    /// What Python 2 senders write: `S'...'` with escapes, `I01` / `I00` booleans (protocol 0);
    /// SHORT_BINSTRING / BINSTRING paths and LONG1 (protocol 2).
    const PY2_P0: &[u8] = b"(lp0\n(S'a.b.c'\np1\n(I1700000000\nF1.5\ntp2\ntp3\na(S'it\\'s\\x2eok'\np4\n(I01\nI00\ntp5\ntp6\na.";
    const PY2_P2: &[u8] = b"\x80\x02]q\x00(U\x05a.b.cq\x01J\x00\xf1SeG?\xf8\x00\x00\x00\x00\x00\x00\x86q\x02\x86q\x03T\x03\x00\x00\x00x.yq\x04\x8a\x05\x00\xf1Se\x00K\x02\x86q\x05\x86q\x06e.";
    /// `[(b'a.b', (1700000000, 2))]`, protocol 3 (SHORT_BINBYTES).
    const P3_BYTES: &[u8] = b"\x80\x03]q\x00C\x03a.bq\x01J\x00\xf1SeK\x02\x86q\x02\x86q\x03a.";
    /// `[('a', (1, os.system))]`, protocols 0, 2 (GLOBAL) and 4 (STACK_GLOBAL).
    const P0_GLOBAL: &[u8] = b"(lp0\n(Va\np1\n(I1\ncposix\nsystem\np2\ntp3\ntp4\na.";
    const P2_GLOBAL: &[u8] = b"\x80\x02]q\x00X\x01\x00\x00\x00aq\x01K\x01cposix\nsystem\nq\x02\x86q\x03\x86q\x04a.";
    const P4_STACK_GLOBAL: &[u8] =
        b"\x80\x04\x95!\x00\x00\x00\x00\x00\x00\x00]\x94\x8c\x01a\x94K\x01\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x86\x94\x86\x94a.";
    /// Hand-made `c__builtin__\neval` with REDUCE (never loaded in Python: it would run code).
    const P0_EVAL: &[u8] = b"(lp0\n(S'a'\n(I1\nc__builtin__\neval\n(S'1+1'\ntRtta.";
    /// `[('a', (1, 2)), ('a', 1), ('b', [3, 4.5])]`, protocols 2 and 0.
    const P2_SHAPES: &[u8] = b"\x80\x02]q\x00(X\x01\x00\x00\x00aq\x01K\x01K\x02\x86q\x02\x86q\x03h\x01K\x01\x86q\x04X\x01\x00\x00\x00bq\x05]q\x06(K\x03G@\x12\x00\x00\x00\x00\x00\x00e\x86q\x07e.";
    const P0_SHAPES: &[u8] = b"(lp0\n(Va\np1\n(I1\nI2\ntp2\ntp3\na(g1\nI1\ntp4\na(Vb\np5\n(lp6\nI3\naF4.5\natp7\na.";
    /// Protocol 4: `[('a', (-1, True)), ('nan', (1, nan)), ('inf', (inf, 1)), ('none', (1, None)),
    /// ('s', ('1_700_000_000.9', b' 2.5 ')), ('bad;x', (1, 2)), (b'tag;z=1;b=2', (1, 2)),
    /// ['list', [5, 6]], ('three', (1, 2, 3)), (1, (1, 2)), ('x', (1, '1,5'))]`
    const P4_ODD: &[u8] = b"\x80\x04\x95\xca\x00\x00\x00\x00\x00\x00\x00]\x94(\x8c\x01a\x94J\xff\xff\xff\xff\x88\x86\x94\x86\x94\x8c\x03nan\x94K\x01G\x7f\xf8\x00\x00\x00\x00\x00\x00\x86\x94\x86\x94\x8c\x03inf\x94G\x7f\xf0\x00\x00\x00\x00\x00\x00K\x01\x86\x94\x86\x94\x8c\x04none\x94K\x01N\x86\x94\x86\x94\x8c\x01s\x94\x8c\x0f1_700_000_000.9\x94C\x05 2.5 \x94\x86\x94\x86\x94\x8c\x05bad;x\x94K\x01K\x02\x86\x94\x86\x94C\x0btag;z=1;b=2\x94h\x13\x86\x94]\x94(\x8c\x04list\x94]\x94(K\x05K\x06ee\x8c\x05three\x94K\x01K\x02K\x03\x87\x94\x86\x94K\x01h\x13\x86\x94\x8c\x01x\x94K\x01\x8c\x031,5\x94\x86\x94\x86\x94e.";
    /// Protocol 2, LONG1 values 2**53+1, 2**64+2**11+1, -(2**100)-1, 2**64+2**11, 1700000000123, -2**63;
    /// Python's float() of each: 9007199254740992.0, 1.8446744073709556e+19, -1.2676506002282294e+30,
    /// 1.8446744073709552e+19, 1700000000123.0, -9.223372036854776e+18.
    const P2_LONGS: &[u8] = b"\x80\x02]q\x00(X\x03\x00\x00\x00bigq\x01J\x00\xf1Se\x8a\x07\x01\x00\x00\x00\x00\x00 \x86q\x02\x86q\x03h\x01J\x00\xf1Se\x8a\x09\x01\x08\x00\x00\x00\x00\x00\x00\x01\x86q\x04\x86q\x05h\x01J\x00\xf1Se\x8a\x0d\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xef\x86q\x06\x86q\x07h\x01J\x00\xf1Se\x8a\x09\x00\x08\x00\x00\x00\x00\x00\x00\x01\x86q\x08\x86q\x09h\x01J\x00\xf1Se\x8a\x06{h\xe5\xcf\x8b\x01\x86q\n\x86q\x0bh\x01J\x00\xf1Se\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x80\x86q\x0c\x86q\x0de.";
    /// Protocol 0: `[('big', (1700000000, 2**64+2**11+1)), ('neg', (-2**63, 1))]`.
    const P0_LONGS: &[u8] =
        b"(lp0\n(Vbig\np1\n(I1700000000\nL18446744073709553665L\ntp2\ntp3\na(Vneg\np4\n(L-9223372036854775808L\nI1\ntp5\ntp6\na.";
    /// `x = [1700000000, 5]; [('a', x), ('b', x)]`, protocol 2: x is memoized while still
    /// empty and fetched again (BINGET) after APPENDS filled it.
    const P2_SHARED: &[u8] =
        b"\x80\x02]q\x00(X\x01\x00\x00\x00aq\x01]q\x02(J\x00\xf1SeK\x05e\x86q\x03X\x01\x00\x00\x00bq\x04h\x02\x86q\x05e.";
    /// `(('a', (1, 2)),)`, `42`, `'abc'`, `{'a': 1}` and `None`, protocol 2.
    const P2_TUPLE: &[u8] = b"\x80\x02X\x01\x00\x00\x00aq\x00K\x01K\x02\x86q\x01\x86q\x02\x85q\x03.";
    const P2_INT: &[u8] = b"\x80\x02K*.";
    const P2_STR: &[u8] = b"\x80\x02X\x03\x00\x00\x00abcq\x00.";
    const P2_DICT: &[u8] = b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01K\x01s.";
    const P2_NONE: &[u8] = b"\x80\x02N.";
    /// `[('café.n\\x', (1, 2)), ('😀', (1, 3))]`, protocol 0 (raw-unicode-escape).
    const P0_UNICODE: &[u8] = b"(lp0\n(Vcaf\xe9.n\\u005cx\np1\n(I1\nI2\ntp2\ntp3\na(V\\U0001f600\np4\n(I1\nI3\ntp5\ntp6\na.";

    const SAMPLES: &[&[u8]] = &[
        P0_STATSD,
        P0,
        P2,
        P4,
        P5,
        PY2_P0,
        PY2_P2,
        P3_BYTES,
        P0_GLOBAL,
        P2_GLOBAL,
        P4_STACK_GLOBAL,
        P0_EVAL,
        P2_SHAPES,
        P0_SHAPES,
        P4_ODD,
        P2_LONGS,
        P0_LONGS,
        P2_SHARED,
        P2_TUPLE,
        P0_UNICODE,
    ];

    #[test]
    fn pickle() {
        // compat-spec 3.6 item 4
        check_pickle(
            P0_STATSD,
            "[stats.gauges.temp 40 1700000000, stats.timers.api.mean_90 12.5 1700000000, stats.counters.hits.rate;env=prod 0.1 1700000000] skipped 0",
        );
        let three = "[a.b.c 1.5 1700000000, x.y -2.25 1700000010, café;b=2;z=1 7 1700000020] skipped 0";
        check_pickle(P0, three);
        check_pickle(P2, three);
        check_pickle(P4, three);
        check_pickle(P5, three);
        check_pickle(P0_GLOBAL, "cannot unpickle carbon payload: opcode GLOBAL (0x63) at byte 16 is not allowed");
        check_pickle(P2_GLOBAL, "cannot unpickle carbon payload: opcode GLOBAL (0x63) at byte 15 is not allowed");
        check_pickle(P4_STACK_GLOBAL, "cannot unpickle carbon payload: opcode STACK_GLOBAL (0x93) at byte 36 is not allowed");
        check_pickle(P0_EVAL, "cannot unpickle carbon payload: opcode GLOBAL (0x63) at byte 15 is not allowed");
        check_pickle(P2_SHAPES, "[a 2 1, b 4.5 3] skipped 1");
        check_pickle(P0_SHAPES, "[a 2 1, b 4.5 3] skipped 1");

        // Other senders and shapes.
        check_pickle(PY2_P0, "[a.b.c 1.5 1700000000, it's.ok 0 1] skipped 0");
        check_pickle(PY2_P2, "[a.b.c 1.5 1700000000, x.y 2 1700000000] skipped 0");
        check_pickle(P3_BYTES, "[a.b 2 1700000000] skipped 0");
        check_pickle(P0_UNICODE, r"[café.n\x 2 1, 😀 3 1] skipped 0");
        // NaN is dropped uncounted; inf ts, None, a 3-tuple, an int path, '1,5' and a bad tag are skipped.
        check_pickle(P4_ODD, "[a 1 now, s 2.5 1700000000, tag;b=2;z=1 2 1, list 6 5] skipped 6");
        check_pickle(
            P2_LONGS,
            "[big 9007199254740992 1700000000, big 18446744073709556000 1700000000, big -1267650600228229400000000000000 1700000000, big 18446744073709552000 1700000000, big 1700000000123 1700000000, big -9223372036854776000 1700000000] skipped 0",
        );
        check_pickle(P0_LONGS, "[big 18446744073709556000 1700000000, neg 1 -9223372036854775808] skipped 0");
        check_pickle(P2_SHARED, "[a 5 1700000000, b 5 1700000000] skipped 0");
        check_pickle(P2_TUPLE, "[a 2 1] skipped 0");
        check_pickle(b"].", "[] skipped 0");
        check_pickle(b"].trailing bytes", "[] skipped 0");
        check_pickle(b"(l(S'a\\x41\\101\\\\\\q'\n(I1\nI2\ntta.", r"[aAA\\q 2 1] skipped 0");
        check_pickle(b"(l(V\\ud800\n(I1\nI2\ntta.", "[] skipped 1");
        check_pickle(b"(l(X\x01\x00\x00\x00\xc3(I1\nI2\ntta.", "[] skipped 1");
        check_pickle(b"(l(S'a'\n(I1\nS'x'\ntta.", "[] skipped 1");

        // Not a list.
        check_pickle(P2_INT, "cannot unpickle carbon payload: the top-level object is a number, not a list");
        check_pickle(P2_STR, "cannot unpickle carbon payload: the top-level object is a str, not a list");
        check_pickle(P2_NONE, "cannot unpickle carbon payload: the top-level object is None, not a list");
        check_pickle(P2_DICT, "cannot unpickle carbon payload: opcode EMPTY_DICT (0x7d) at byte 2 is not allowed");

        // Broken and hostile input: every length is checked against what is left.
        check_pickle(b"", "cannot unpickle carbon payload: no STOP opcode before the end at byte 0");
        check_pickle(&P2[..P2.len() - 1], "cannot unpickle carbon payload: no STOP opcode before the end at byte 106");
        check_pickle(&P2[..8], "cannot unpickle carbon payload: data ends inside the opcode at byte 6");
        check_pickle(b"\x80\x06].", "cannot unpickle carbon payload: protocol 6 at byte 0 is not supported");
        check_pickle(b"\x80\x02\x8b\xff\xff\xff\x7f.", "cannot unpickle carbon payload: data ends inside the opcode at byte 2");
        check_pickle(b"\x8b\xff\xff\xff\xff.", "cannot unpickle carbon payload: a length is negative at byte 0");
        check_pickle(b"T\xff\xff\xff\xff.", "cannot unpickle carbon payload: a length is negative at byte 0");
        check_pickle(
            b"\x80\x04\x8d\xff\xff\xff\xff\xff\xff\xff\xff.",
            "cannot unpickle carbon payload: data ends inside the opcode at byte 2",
        );
        check_pickle(b"X\xff\xff\xff\xff.", "cannot unpickle carbon payload: data ends inside the opcode at byte 0");
        check_pickle(
            b"\x80\x04\x95\xff\xff\xff\xff\xff\xff\xff\xff].",
            "cannot unpickle carbon payload: data ends inside the opcode at byte 2",
        );
        check_pickle(b"]r\xff\xff\xff\x7f.", "cannot unpickle carbon payload: a memo key is larger than the payload at byte 1");
        check_pickle(b"]p99999999999999999999\n.", "cannot unpickle carbon payload: cannot parse a memo key at byte 1");
        check_pickle(b"]h\x05.", "cannot unpickle carbon payload: a memo key is not set at byte 1");
        check_pickle(b"]q\x00(h\x00h\x00e.", "[] skipped 2");
        check_pickle(b".", "cannot unpickle carbon payload: the stack is empty at byte 0");
        check_pickle(b"a.", "cannot unpickle carbon payload: the stack is empty at byte 0");
        check_pickle(b"](.", "cannot unpickle carbon payload: the stack is empty at byte 2");
        check_pickle(b"](I1\na.", "cannot unpickle carbon payload: the stack is empty at byte 5");
        check_pickle(b"]\x86.", "cannot unpickle carbon payload: the stack is empty at byte 1");
        check_pickle(b"t.", "cannot unpickle carbon payload: there is no MARK at byte 0");
        check_pickle(b")I1\na.", "cannot unpickle carbon payload: the APPEND target is not a list at byte 4");
        check_pickle(b"I12x\n.", "cannot unpickle carbon payload: cannot parse an INT or LONG argument at byte 0");
        check_pickle(b"I12", "cannot unpickle carbon payload: data ends inside the opcode at byte 0");
        check_pickle(b"Fabc\n.", "cannot unpickle carbon payload: cannot parse a FLOAT argument at byte 0");
        check_pickle(b"S'abc\n.", "cannot unpickle carbon payload: the STRING argument is not quoted at byte 0");
        check_pickle(b"S'\\x4'\n.", "cannot unpickle carbon payload: bad escape in a STRING argument at byte 0");
        check_pickle(b"S'a\\'\n.", "cannot unpickle carbon payload: bad escape in a STRING argument at byte 0");
        check_pickle(b"V\\u00\n.", "cannot unpickle carbon payload: bad escape in a UNICODE argument at byte 0");
        check_pickle(b"V\\U00110000\n.", "cannot unpickle carbon payload: bad escape in a UNICODE argument at byte 0");
        check_pickle(b"\x80\x02]q\x00cos\nsystem\n.", "cannot unpickle carbon payload: opcode GLOBAL (0x63) at byte 5 is not allowed");
        check_pickle(b"]R.", "cannot unpickle carbon payload: opcode REDUCE (0x52) at byte 1 is not allowed");
        check_pickle(b"]b.", "cannot unpickle carbon payload: opcode BUILD (0x62) at byte 1 is not allowed");
        check_pickle(b"(i__main__\nX\n.", "cannot unpickle carbon payload: opcode INST (0x69) at byte 1 is not allowed");
        check_pickle(b"(o.", "cannot unpickle carbon payload: opcode OBJ (0x6f) at byte 1 is not allowed");
        check_pickle(b"])\x81.", "cannot unpickle carbon payload: opcode NEWOBJ (0x81) at byte 2 is not allowed");
        check_pickle(b"]0.", "cannot unpickle carbon payload: opcode POP (0x30) at byte 1 is not allowed");
        check_pickle(b"]\xff.", "cannot unpickle carbon payload: opcode unknown (0xff) at byte 1 is not allowed");
    }

    /// A protocol 2 list of `(name, (1, n))` where each n is a 1024-bit non-negative
    /// int (LONG1, 129 bytes) whose set bits `bit` picks.
    fn long1_payload(values: &[(&str, &dyn Fn(usize) -> bool)]) -> Vec<u8> {
        let mut out = b"\x80\x02](".to_vec();
        for (name, bit) in values {
            out.push(0x8c); // SHORT_BINUNICODE
            out.push(name.len() as u8);
            out.extend(name.as_bytes());
            out.extend(b"K\x01\x8a\x81");
            out.extend((0..128).map(|byte| (0..8).fold(0u8, |acc, i| acc | u8::from(bit(byte * 8 + i)) << i)));
            out.extend(b"\x00\x86\x86");
        }
        out.extend(b"e.");
        out
    }

    #[test]
    fn pickle_long_ints_round_like_python() {
        // Python: float(2**1023 - 1) == 8.98846567431158e+307; f64::MAX is 2**1024 - 2**971;
        // adding 2**970 - 1 still rounds down to it, adding 2**970 (a tie, odd mantissa)
        // rounds up to 2**1024: OverflowError, skipped.
        let payload = long1_payload(&[
            ("below", &|b| b < 1023),
            ("max", &|b| (971..1024).contains(&b)),
            ("down", &|b| b != 970),
            ("tie", &|b| b >= 970),
        ]);
        let batch = parse_pickle(&payload).unwrap();
        let values: Vec<_> = batch.points.iter().map(|p| (&*p.name, p.value)).collect();
        assert_eq!(values, [("below", 8.98846567431158e307), ("max", f64::MAX), ("down", f64::MAX)]);
        assert_eq!(batch.skipped, 1);
        let text = format!("(l(Vhuge\n(I1\nL1{}L\ntta(Vneg\n(I1\nI-{}\ntta.", "0".repeat(400), "9".repeat(400));
        check_pickle(text, "[] skipped 2");
    }

    #[test]
    fn pickle_work_is_bounded_by_the_input() {
        // 100 000 nested lists, each memoized: objects and memo grow with the bytes, and
        // nothing recurses.
        let mut nested = b"\x80\x04]".to_vec();
        nested.extend(b"(]\x94".repeat(100_000));
        nested.extend(b"e".repeat(100_000));
        nested.push(b'.');
        check_pickle(nested, "[] skipped 1");
    }

    fn tagged_path() -> impl Strategy<Value = String> {
        // Mostly valid alphabets, plus the characters every rule is about.
        let name = "~{0,2}[a-z.]{0,4}[a-z.{}\"~;=]{0,2}";
        let tag = "[a-z0-9]{0,3}[a-z!^=~{}\",:;\\\\]{0,1}";
        let value = "[a-z0-9.]{0,3}[a-z~=;{}\",:\\\\]{0,2}";
        (name, prop::collection::vec((tag, value), 0..5), any::<bool>()).prop_map(|(name, tags, openmetrics)| {
            if openmetrics {
                let tags: Vec<_> = tags.iter().map(|(t, v)| format!("{t}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))).collect();
                format!("{name}{{{}}}", tags.join(","))
            } else {
                tags.iter().fold(name, |path, (t, v)| format!("{path};{t}={v}"))
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn plain_lines_round_trip(
            name in "[a-zA-Z0-9_-]{1,10}(\\.[a-zA-Z0-9_:-]{1,10}){0,4}",
            value in any::<f64>().prop_filter("finite", |v| v.is_finite()),
            ts in -(1i64 << 53)..=(1i64 << 53),
            (lead, sep1, sep2, trail) in ("[ \t]{0,2}", "[ \t]{1,3}", "[ \t]{1,3}", "[ \t\r]{0,2}"),
        ) {
            let line = format!("{lead}{name}{sep1}{value}{sep2}{ts}{trail}");
            let point = parse_line(line.as_bytes()).unwrap().unwrap();
            prop_assert!(matches!(point.name, Cow::Borrowed(n) if n == name));
            prop_assert_eq!(point.value.to_bits(), value.to_bits());
            prop_assert_eq!(point.stamp, if ts == -1 { Stamp::Now } else { Stamp::At(ts) });
        }

        #[test]
        fn float_timestamps_truncate(ts in -1e15f64..1e15) {
            let line = format!("a.b 1 {ts}");
            let point = parse_line(line.as_bytes()).unwrap().unwrap();
            prop_assert_eq!(point.stamp, if ts == -1.0 { Stamp::Now } else { Stamp::At(ts.trunc() as i64) });
        }

        #[test]
        fn canonical_name_is_idempotent(path in tagged_path()) {
            if let Ok(once) = canonical_name(&path) {
                let twice = canonical_name(&once);
                prop_assert!(matches!(&twice, Ok(Cow::Borrowed(n)) if *n == once), "{:?} -> {:?} -> {:?}", path, once, twice);
            }
        }

        #[test]
        fn tag_order_does_not_matter(
            name in "[a-z.]{1,6}",
            tags in prop::collection::btree_map("[a-z0-9_]{1,4}", "[a-z0-9.]{1,4}", 1..6),
        ) {
            let forward = tags.iter().fold(name.clone(), |path, (t, v)| format!("{path};{t}={v}"));
            let backward = tags.iter().rev().fold(name.clone(), |path, (t, v)| format!("{path};{t}={v}"));
            let forward = canonical_name(&forward).unwrap();
            prop_assert_eq!(&forward, &canonical_name(&backward).unwrap());
            let openmetrics: Vec<_> = tags.iter().map(|(t, v)| format!("{t}=\"{v}\"")).collect();
            let openmetrics = format!("{name}{{{}}}", openmetrics.join(","));
            prop_assert_eq!(&forward, &canonical_name(&openmetrics).unwrap());
        }

        #[test]
        fn parse_line_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_line(&bytes);
        }

        #[test]
        fn parse_line_never_panics_on_near_lines(line in "[a-z.;=~{}\" \t\r0-9eE+_,x-]{0,40}") {
            let _ = parse_line(line.as_bytes());
        }

        #[test]
        fn canonical_name_never_panics(path in any::<String>()) {
            let _ = canonical_name(&path);
        }

        #[test]
        fn parse_pickle_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            let _ = parse_pickle(&bytes);
        }

        #[test]
        fn parse_pickle_never_panics_on_opcode_soup(
            bytes in prop::collection::vec(prop::sample::select(&b"()]lateItJKLMNGFSTUVXBCpqrghj.\n\x80\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x94\x95\x00\x01\x02\x05\xff'1"[..]), 0..128),
        ) {
            let _ = parse_pickle(&bytes);
        }

        #[test]
        fn parse_pickle_never_panics_on_mutated_payloads(
            sample in prop::sample::select(SAMPLES),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..4u8), 1..6),
        ) {
            let mut bytes = sample.to_vec();
            for (at, byte, kind) in edits {
                let i = at.index(bytes.len() + 1);
                match kind {
                    0 if i < bytes.len() => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    2 if i < bytes.len() => { bytes.remove(i); }
                    _ => bytes.truncate(i),
                }
            }
            let _ = parse_pickle(&bytes);
        }
    }
}
