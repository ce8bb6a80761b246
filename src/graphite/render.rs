//! `/render`: parameters (query string and form body merged), evaluation and
//! the output formats json, csv, raw and pickle, byte-for-byte as graphite-web
//! writes them.

use super::eval::{Context, EvalError, Limits};
use super::pyfloat::{self, Repr};
use super::series::{Series, py_repr};
use super::spare;
use super::{expr, timespec};
use crate::tsdb::Store;

/// A finished answer: status, content type and body.
pub struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn error(status: u16, message: String) -> Reply {
        let body = serde_json::json!({ "error": message }).to_string().into_bytes();
        Reply { status, content_type: "application/json", body }
    }
}

/// The status each kind of evaluation error gets: the client's fault (400),
/// a request past the `[graphite]` limits (422), or ours (500).
impl From<EvalError> for Reply {
    fn from(e: EvalError) -> Reply {
        match e {
            EvalError::Bad(m) => Reply::error(400, m),
            EvalError::TooLarge(m) => Reply::error(422, m),
            EvalError::Internal(m) => Reply::error(500, m),
        }
    }
}

/// All values of a repeated parameter.
pub fn all<'p>(params: &'p [(String, String)], key: &str) -> Vec<&'p str> {
    params.iter().filter(|(k, _)| k == key).map(|(_, v)| v.as_str()).collect()
}

pub fn first<'p>(params: &'p [(String, String)], key: &str) -> Option<&'p str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// The request's (from, until, now), graphite-web's defaults and swap.
pub fn time_range(params: &[(String, String)], wall: i64) -> Result<(i64, i64, i64), String> {
    let now = match first(params, "now") {
        Some(n) => timespec::parse(n, wall).map_err(|e| e.to_string())?,
        None => wall,
    };
    let from = timespec::parse(first(params, "from").unwrap_or("-1d"), now).map_err(|e| e.to_string())?;
    let until = timespec::parse(first(params, "until").unwrap_or("now"), now).map_err(|e| e.to_string())?;
    if from == until {
        return Err("Invalid empty time range".into());
    }
    Ok(if from > until { (until, from, now) } else { (from, until, now) })
}

pub fn render(store: &Store, params: &[(String, String)], limits: Limits, wall: i64) -> Reply {
    let (from, until, now) = match time_range(params, wall) {
        Ok(t) => t,
        Err(e) => return Reply::error(400, e),
    };
    let xff = match first(params, "xFilesFactor").map(str::parse::<f64>) {
        None => 0.0,
        Some(Ok(x)) if (0.0..=1.0).contains(&x) => x,
        Some(_) => return Reply::error(400, "xFilesFactor must be a number from 0 to 1".into()),
    };
    let mut targets: Vec<&str> = all(params, "target");
    if targets.is_empty() {
        targets = all(params, "target[]");
    }
    let mut ctx = Context::new(store, from, until, now, xff, limits);
    for (k, v) in params {
        if let Some(name) = k.strip_prefix("template[").and_then(|r| r.strip_suffix(']')) {
            ctx.templates.insert(name.to_string(), v.clone());
        }
    }
    let mut data: Vec<Series> = Vec::new();
    for target in targets.iter().filter(|t| !t.trim().is_empty()) {
        let parsed = match expr::parse(target) {
            Ok(p) => p,
            Err(e) => return Reply::error(400, e.to_string()),
        };
        match ctx.target(&parsed) {
            Ok(series) => data.extend(series),
            Err(EvalError::Bad(m)) => return Reply::error(400, format!("target {target:?}: {m}")),
            Err(e) => return e.into(),
        }
    }
    let format = first(params, "format").unwrap_or(if first(params, "rawData").is_some() { "raw" } else { "png" });
    let jsonp = first(params, "jsonp").filter(|j| !j.is_empty());
    match format {
        "json" => {
            let max_points = first(params, "maxDataPoints")
                .filter(|m| !m.is_empty() && m.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|m| m.parse::<usize>().ok())
                .filter(|m| *m > 0);
            let body =
                json(&mut data, max_points, first(params, "noNullPoints").is_some(), first(params, "pretty").is_some_and(|p| p != "0"));
            match jsonp {
                Some(cb) => Reply { status: 200, content_type: "text/javascript", body: [cb.as_bytes(), b"(", &body, b")"].concat() },
                None => Reply { status: 200, content_type: "application/json", body },
            }
        }
        "csv" => Reply { status: 200, content_type: "text/csv", body: csv(&data).into_bytes() },
        "raw" => Reply { status: 200, content_type: "text/plain", body: raw(&data).into_bytes() },
        "pickle" => Reply { status: 200, content_type: "application/pickle", body: pickle(&data) },
        "png" => match super::png::Options::from_params(params) {
            Ok(mut options) => {
                // graphite-web hides the legend past 10 series unless asked.
                if first(params, "hideLegend").is_none() && data.len() > 10 {
                    options.hide_legend = true;
                }
                Reply { status: 200, content_type: "image/png", body: super::png::render(&data, from, until, &options) }
            }
            Err(e) => Reply::error(400, e),
        },
        "svg" | "pdf" => Reply::error(501, format!("format={format} is not implemented; use format=png, json, csv, raw or pickle")),
        other => Reply::error(400, format!("unknown format {other:?}; use json, csv, raw or pickle")),
    }
}

/// graphite-web's `renderViewJson`, written straight into the response body:
/// this is the hot path of every dashboard refresh (a 24 h series at 10 s is
/// 8,640 points), so values are not collected or copied on the way.
pub fn json(data: &mut [Series], max_points: Option<usize>, no_nulls: bool, pretty: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + data.iter().map(|s| 64 + s.name.len() * 2 + s.values.len() * 24).sum::<usize>());
    out.push(b'[');
    let mut first_series = true;
    if data.iter().any(|s| !s.values.is_empty()) {
        let start = data.iter().map(|s| s.start).min().unwrap_or(0);
        let end = data.iter().map(|s| s.end).max().unwrap_or(0);
        let range = end - start;
        for s in data.iter_mut() {
            if let Some(max) = max_points {
                if max == 1 {
                    s.vpp = s.values.len().max(1);
                } else {
                    let n = range as f64 / s.step as f64;
                    if (max as f64) < n {
                        let vpp = (n / max as f64).ceil() as usize;
                        let spp = vpp as i64 * s.step;
                        let nudge = spp + s.start.rem_euclid(s.step) - s.start.rem_euclid(spp);
                        s.start += nudge;
                        let lose = (nudge / s.step) as usize;
                        let drop = lose.saturating_sub(1).min(s.values.len());
                        s.values.drain(..drop);
                        s.vpp = vpp;
                    }
                }
            }
            // graphite-web's `datapoints()`: the consolidated values zipped with
            // timestamps `start, start + step * vpp, ...` up to `end` inclusive.
            let values = s.consolidated();
            let stride = (s.step * s.vpp.max(1) as i64).max(1);
            let stamps = if s.end >= s.start { ((s.end - s.start) / stride) as usize + 1 } else { 0 };
            let values = &values[..values.len().min(stamps)];
            if no_nulls && !values.iter().any(|v| kept(*v, no_nulls)) {
                continue;
            }
            if !first_series {
                out.extend_from_slice(b", ");
            }
            first_series = false;
            out.extend_from_slice(b"{\"target\": ");
            out.extend_from_slice(json_str(&s.name).as_bytes());
            out.extend_from_slice(b", \"tags\": {");
            for (i, (k, v)) in s.tags.iter().enumerate() {
                if i > 0 {
                    out.extend_from_slice(b", ");
                }
                out.extend_from_slice(json_str(k).as_bytes());
                out.extend_from_slice(b": ");
                out.extend_from_slice(json_str(v).as_bytes());
            }
            out.extend_from_slice(b"}, \"datapoints\": [");
            datapoints(&mut out, values, s.start, stride, no_nulls);
            out.extend_from_slice(b"]}");
        }
    }
    out.push(b']');
    if pretty {
        // Re-indent through serde (pretty output is for people, not byte-compatibility).
        let text = String::from_utf8_lossy(&out).replace("1e9999", "\"Infinity\"");
        if let Some(p) = serde_json::from_str::<serde_json::Value>(&text).ok().and_then(|v| serde_json::to_string_pretty(&v).ok()) {
            return p.into_bytes();
        }
    }
    out
}

/// Whether `noNullPoints` keeps a value.
fn kept(v: Option<f64>, no_nulls: bool) -> bool {
    !no_nulls || v.is_some_and(|v| !v.is_nan())
}

/// A series of this many points or more is written in two halves at once
/// when the spare thread is idle: a 24 h series at 10 s (8,640 points) took
/// 0.38-0.45 ms to format on one thread here. A new thread per render
/// (34-41 us to start and join) measured slower than none, so the spare
/// thread waits for work instead.
const PARALLEL_POINTS: usize = 4096;

/// The `[value, timestamp], ...` list of one series (timestamps `start`,
/// `start + stride`, ...), appended to `out`. A long series' second half
/// goes to the spare thread if it is idle; otherwise it is all written here.
fn datapoints(out: &mut Vec<u8>, values: &[Option<f64>], start: i64, stride: i64, no_nulls: bool) {
    if values.len() < PARALLEL_POINTS {
        write_points(out, values, start, stride, no_nulls, true);
        return;
    }
    let Some(spare) = spare::claim() else {
        write_points(out, values, start, stride, no_nulls, true);
        return;
    };
    let (head, tail) = values.split_at(values.len() / 2);
    let tail_start = start + head.len() as i64 * stride;
    let owned = tail.to_vec();
    let answer = spare.run(move || {
        let mut text = Vec::with_capacity(owned.len() * 24);
        write_points(&mut text, &owned, tail_start, stride, no_nulls, false);
        text
    });
    let head_written = write_points(out, head, start, stride, no_nulls, true);
    match answer.recv() {
        Ok(text) => append_tail(out, head_written, &text),
        Err(_) => {
            write_points(out, tail, tail_start, stride, no_nulls, !head_written);
        }
    }
}

/// Appends a second half written apart (each of its points after a `, `);
/// the list's first point has none.
fn append_tail(out: &mut Vec<u8>, head_written: bool, text: &[u8]) {
    out.extend_from_slice(if head_written { text } else { text.get(2..).unwrap_or_default() });
}

/// Appends `[value, timestamp]` points, separated by `, ` (and preceded by
/// one unless `first`); returns whether any was written.
fn write_points(out: &mut Vec<u8>, values: &[Option<f64>], start: i64, stride: i64, no_nulls: bool, mut first: bool) -> bool {
    // Each point is written in place at the end of `out`, which grows in
    // zeroed blocks and is cut to length after the last point: most of a big
    // render's time is here, and a point assembled elsewhere and copied would
    // be read back right after its bytes were written (a store-forwarding
    // stall on every point).
    let mut end = out.len();
    let mut any = false;
    let mut stamps = Stamps::new(start, stride);
    for v in values {
        if !kept(*v, no_nulls) {
            stamps.advance();
            continue;
        }
        if end + LINE > out.len() {
            out.resize(end + LINE + (64 << 10), 0);
        }
        let line = &mut out[end..end + LINE];
        let mut n = 0;
        if !first {
            line[..2].copy_from_slice(b", ");
            n = 2;
        }
        first = false;
        any = true;
        line[n] = b'[';
        n += 1;
        let value: &mut [u8; Repr::CAP] = (&mut line[n..n + Repr::CAP]).try_into().expect("LINE has room for a value");
        n += json_float(value, *v);
        line[n..n + 2].copy_from_slice(b", ");
        n += 2;
        n += stamps.write(&mut line[n..]);
        stamps.advance();
        line[n] = b']';
        end += n + 1;
    }
    out.truncate(end);
    any
}

/// One JSON point at most: `, [` value `, ` timestamp `]`.
const LINE: usize = 3 + Repr::CAP + 2 + TIMESTAMP + 1;

/// A timestamp's digits, and its sign, at the start of `out` (which has room
/// for `TIMESTAMP` bytes); returns how many.
fn timestamp_into(out: &mut [u8], t: i64) -> usize {
    let sign = usize::from(t < 0);
    out[0] = b'-';
    let digits: &mut [u8; 24] = (&mut out[sign..sign + 24]).try_into().expect("TIMESTAMP has room for the digits");
    sign + pyfloat::digits_at_start(digits, t.unsigned_abs())
}

/// A sign, then room for `digits_at_start`'s 24 bytes.
const TIMESTAMP: usize = 25;

/// The timestamps `start, start + stride, ...` written one after another.
/// All but the last four digits are kept as text and rebuilt only when they
/// change (every 10,000 s: 9 times in a 24 h series at 10 s); the last four
/// are made in a register. Timestamps below 10,000 or a stride of 10,000 s
/// or more take `timestamp_into` for each point.
struct Stamps {
    /// The timestamp `write` writes next.
    t: i64,
    stride: i64,
    /// `t % 10_000`, and `t / 10_000`'s digits (when `incremental`).
    low: i64,
    high: [u8; 24],
    high_len: usize,
    incremental: bool,
}

impl Stamps {
    fn new(start: i64, stride: i64) -> Stamps {
        let mut stamps =
            Stamps { t: start, stride, low: 0, high: [0; 24], high_len: 0, incremental: start >= 10_000 && (1..10_000).contains(&stride) };
        if stamps.incremental {
            stamps.rebuild();
        }
        stamps
    }

    fn rebuild(&mut self) {
        self.low = self.t % 10_000;
        self.high_len = pyfloat::digits_at_start(&mut self.high, (self.t / 10_000) as u64);
    }

    /// The current timestamp at the start of `out` (`TIMESTAMP` bytes of
    /// room); returns its length.
    #[inline(always)]
    fn write(&self, out: &mut [u8]) -> usize {
        if !self.incremental {
            return timestamp_into(out, self.t);
        }
        out[..24].copy_from_slice(&self.high);
        // high_len is at most 15 (t / 10^4 < 2^63 / 10^4 < 10^15).
        let at = self.high_len.min(20);
        out[at..at + 4].copy_from_slice(&pyfloat::four_digits(self.low as u32).to_le_bytes());
        at + 4
    }

    #[inline(always)]
    fn advance(&mut self) {
        self.t = self.t.saturating_add(self.stride);
        self.low += self.stride;
        if self.incremental && self.low >= 10_000 {
            self.rebuild();
        }
    }
}

/// A JSON string literal (Python's json.dumps with ensure_ascii).
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A value as graphite-web's JSON spells it: Python's repr, null for NaN and
/// gaps, 1e9999 for infinities.
/// Written at the start of `out`; returns its length.
fn json_float(out: &mut [u8; Repr::CAP], v: Option<f64>) -> usize {
    let literal = match v {
        Some(v) if v.is_finite() => return pyfloat::repr_into(out, v),
        Some(v) if v == f64::INFINITY => Repr::literal(b"1e9999"),
        Some(v) if v == f64::NEG_INFINITY => Repr::literal(b"-1e9999"),
        // None or NaN
        _ => Repr::literal(b"null"),
    };
    let (bytes, len) = literal.padded();
    *out = *bytes;
    len
}

/// graphite-web's CSV: `name,YYYY-MM-DD HH:MM:SS,value` rows, `\r\n` endings.
pub fn csv(data: &[Series]) -> String {
    let mut out = String::new();
    for s in data {
        let step = s.step * s.vpp.max(1) as i64;
        for (i, v) in s.points().into_iter().enumerate() {
            let name =
                if s.name.contains([',', '"', '\r', '\n']) { format!("\"{}\"", s.name.replace('"', "\"\"")) } else { s.name.clone() };
            let value = v.map(py_repr).unwrap_or_default();
            out.push_str(&format!("{name},{},{value}\r\n", timespec::format_utc(s.start + i as i64 * step)));
        }
    }
    out
}

/// graphite-web's raw format: `name,start,end,step|v1,v2,...` per series.
pub fn raw(data: &[Series]) -> String {
    let mut out = String::new();
    for s in data {
        let values: Vec<String> = s.points().into_iter().map(|v| v.map(py_repr).unwrap_or_else(|| "None".into())).collect();
        out.push_str(&format!("{},{},{},{}|{}\n", s.name, s.start, s.end, s.step, values.join(",")));
    }
    out
}

/// Pickle protocol 2: a list of graphite-web's `getInfo()` dicts.
pub fn pickle(data: &[Series]) -> Vec<u8> {
    let mut p = vec![0x80, 2, b']', b'('];
    for s in data {
        p.extend_from_slice(b"}(");
        let text = |p: &mut Vec<u8>, t: &str| {
            p.push(b'X');
            p.extend_from_slice(&(t.len() as u32).to_le_bytes());
            p.extend_from_slice(t.as_bytes());
        };
        let int = |p: &mut Vec<u8>, v: i64| match i32::try_from(v) {
            Ok(v) => {
                p.push(b'J');
                p.extend_from_slice(&v.to_le_bytes());
            }
            Err(_) => {
                p.push(b'G');
                p.extend_from_slice(&(v as f64).to_be_bytes());
            }
        };
        let float = |p: &mut Vec<u8>, v: f64| {
            p.push(b'G');
            p.extend_from_slice(&v.to_be_bytes());
        };
        text(&mut p, "name");
        text(&mut p, &s.name);
        text(&mut p, "start");
        int(&mut p, s.start);
        text(&mut p, "end");
        int(&mut p, s.end);
        text(&mut p, "step");
        int(&mut p, s.step);
        text(&mut p, "values");
        p.extend_from_slice(b"](");
        for v in s.points() {
            match v {
                Some(v) => float(&mut p, v),
                None => p.push(b'N'),
            }
        }
        p.push(b'e');
        text(&mut p, "pathExpression");
        text(&mut p, &s.path_expression);
        text(&mut p, "valuesPerPoint");
        int(&mut p, s.vpp as i64);
        text(&mut p, "consolidationFunc");
        text(&mut p, s.consolidation.name());
        text(&mut p, "xFilesFactor");
        float(&mut p, s.xff);
        p.push(b'u');
    }
    p.extend_from_slice(b"e.");
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(values: Vec<Option<f64>>) -> Series {
        let n = values.len() as i64;
        Series::new("a.b", 1000, 1000 + 10 * n, 10, values, 0.0)
    }

    fn json_text(data: &mut [Series], max_points: Option<usize>, no_nulls: bool, pretty: bool) -> String {
        String::from_utf8(json(data, max_points, no_nulls, pretty)).expect("json is utf-8")
    }

    #[test]
    fn timestamps_are_written_whole() {
        let mut out = [0u8; TIMESTAMP];
        for t in
            [990, 1000, 9990, 10000, 99_999_999_990, 100_000_000_000, 5, 123_456_789_012, -7, 0, 9, 10, 1_700_000_007, i64::MAX, i64::MIN]
        {
            let len = timestamp_into(&mut out, t);
            assert_eq!(std::str::from_utf8(&out[..len]).expect("ascii"), t.to_string());
        }
        // Every digit count, around each power of ten.
        let powers = (0..20).map(|d| 10u64.pow(d));
        for n in powers.flat_map(|p| [p - 1, p, p + 7, p.saturating_mul(9)]).chain([u64::MAX]) {
            let mut out = [0u8; 24];
            let len = pyfloat::digits_at_start(&mut out, n);
            assert_eq!(std::str::from_utf8(&out[..len]).expect("ascii"), n.to_string());
        }
    }

    #[test]
    fn timestamps_written_one_after_another_match_each_written_alone() {
        // Stamps keeps all but the last four digits as text: every carry into
        // them, strides up to and past its limit, starts below 10,000 and
        // points skipped by noNullPoints must give what `timestamp_into` does.
        let starts = [9_990, 10_000, 19_995, 99_990, 1_764_009_990, 99_999_999_999_990, -50, 0, 3];
        for start in starts {
            for stride in [1, 7, 10, 60, 3_600, 9_999, 10_000, 86_400] {
                let values: Vec<Option<f64>> = (0..3_000).map(|i| if i % 5 == 3 { None } else { Some(1.0) }).collect();
                for no_nulls in [false, true] {
                    let mut out = Vec::new();
                    write_points(&mut out, &values, start, stride, no_nulls, true);
                    let mut expected = Vec::new();
                    for (i, v) in values.iter().enumerate().filter(|(_, v)| kept(**v, no_nulls)) {
                        let t = start + i as i64 * stride;
                        let value = if v.is_some() { "1.0" } else { "null" };
                        expected.push(format!("[{value}, {t}]"));
                    }
                    assert_eq!(String::from_utf8(out).expect("ascii"), expected.join(", "), "start {start}, stride {stride}");
                }
            }
        }
        for n in 0..10_000 {
            assert_eq!(pyfloat::four_digits(n).to_le_bytes(), *format!("{n:04}").as_bytes(), "{n}");
        }
    }

    #[test]
    fn json_shape() {
        let mut data = vec![series(vec![Some(1.0), None, Some(0.1), Some(f64::INFINITY), Some(f64::NAN)])];
        assert_eq!(
            json_text(&mut data, None, false, false),
            r#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1.0, 1000], [null, 1010], [0.1, 1020], [1e9999, 1030], [null, 1040]]}]"#
        );
        let mut data = vec![series(vec![Some(1.0), None])];
        assert_eq!(json_text(&mut data, None, true, false), r#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[1.0, 1000]]}]"#);
        let mut data = vec![series(vec![None, None])];
        assert_eq!(json_text(&mut data, None, true, false), "[]");
        let mut data = vec![series((1..=10).map(|v| Some(f64::from(v))).collect())];
        let one = json_text(&mut data, Some(1), false, false);
        assert_eq!(one, r#"[{"target": "a.b", "tags": {"name": "a.b"}, "datapoints": [[5.5, 1000]]}]"#);
    }

    #[test]
    fn halves_written_apart_join_as_one_writer_writes() {
        // A long series' two halves are written apart (one on the spare
        // thread) and joined: the text must be what one writer gives, nulls
        // and noNullPoints at the seam included, wherever the seam falls.
        let n = PARALLEL_POINTS * 2 + 3;
        let shapes: [Box<dyn Fn(usize) -> Option<f64>>; 3] = [
            Box::new(|i| Some(i as f64 * 0.25 - 7.0)),
            Box::new(move |i| if i < n / 2 + 1 { None } else { Some(i as f64) }),
            Box::new(|i| if i % 3 == 0 { None } else { Some(1e-3 * i as f64) }),
        ];
        for shape in &shapes {
            let values: Vec<Option<f64>> = (0..n).map(shape).collect();
            for no_nulls in [false, true] {
                let plain: Vec<String> = values
                    .iter()
                    .enumerate()
                    .filter(|(_, v)| !no_nulls || v.is_some())
                    .map(|(i, v)| format!("[{}, {}]", v.map(py_repr).unwrap_or_else(|| "null".into()), 1000 + 10 * i))
                    .collect();
                let plain = plain.join(", ");
                for seam in [0, 1, n / 2, n / 2 + 1, n - 1, n] {
                    let mut out = Vec::new();
                    let head_written = write_points(&mut out, &values[..seam], 1000, 10, no_nulls, true);
                    let mut tail = Vec::new();
                    write_points(&mut tail, &values[seam..], 1000 + 10 * seam as i64, 10, no_nulls, false);
                    append_tail(&mut out, head_written, &tail);
                    assert_eq!(String::from_utf8(out).expect("utf-8"), plain, "seam {seam}, noNullPoints {no_nulls}");
                }
                // And through json(), on the spare thread or not.
                let expected = format!(r#"[{{"target": "a.b", "tags": {{"name": "a.b"}}, "datapoints": [{plain}]}}]"#);
                assert_eq!(json_text(&mut [series(values.clone())], None, no_nulls, false), expected);
            }
        }
    }

    #[test]
    fn text_formats() {
        let data = vec![series(vec![Some(1.0), None])];
        assert_eq!(raw(&data), "a.b,1000,1020,10|1.0,None\n");
        assert_eq!(csv(&data), "a.b,1970-01-01 00:16:40,1.0\r\na.b,1970-01-01 00:16:50,\r\n");
        let p = pickle(&data);
        assert!(p.starts_with(&[0x80, 2, b']']) && p.ends_with(b"e."));
    }

    #[test]
    fn ranges() {
        let p = |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<Vec<_>>();
        assert_eq!(time_range(&p(&[]), 100_000), Ok((100_000 - 86_400, 100_000, 100_000)));
        assert_eq!(time_range(&p(&[("from", "2000"), ("until", "1000")]), 5000), Ok((1000, 2000, 5000)));
        assert!(time_range(&p(&[("from", "1000"), ("until", "1000")]), 5000).unwrap_err().contains("empty time range"));
        assert!(time_range(&p(&[("from", "-5m")]), 5000).is_err());
    }
}
