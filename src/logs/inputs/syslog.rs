//! Syslog (compat-spec §6.1–6.4): the PRI, RFC 5424 and RFC 3164 (BSD, with the
//! variants seen in the wild) message parsers, and RFC 6587 framing of a TCP
//! stream. Pure: bytes in, fields out, no I/O, no panics on any input, and no
//! message is ever dropped (what cannot be parsed is kept as raw `message`).
//!
//! It does not own sockets, the sender's address (the listener adds it when
//! the message names no host), the time zone of BSD timestamps (always UTC
//! here), or building the event from the fields (`logs::event`).

use crate::graphite::timespec::{civil_day, civil_from_days};
use crate::logs::event::Decoded;
use crate::logs::json::{Json, Object};
use crate::logs::time::{parse_prefix, parse_rfc3339};

const DAY_MS: i64 = 86_400_000;
/// The RFC 3164 relay rule: a message without a valid PRI is user.notice.
const DEFAULT_PRI: u8 = 13;
/// Facility 23 (local7) with severity 7 (debug): the largest PRI there is.
const MAX_PRI: u8 = 191;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// RFC 3164 §4.1.3: the TAG is at most 32 characters.
const TAG_MAX: usize = 32;
/// RFC 5424's PROCID limit; also bounds the search for a BSD pid's `]`.
const PID_MAX: usize = 128;
/// RFC 5424 §6.3: SD-ID and PARAM-NAME are 1 to 32 characters.
const SD_NAME_MAX: usize = 32;
/// An RFC 3339 timestamp with a 9-digit fraction and an offset is 35 bytes;
/// anything longer cannot be one, so the prefix handed to the parser is capped.
const RFC3339_MAX: usize = 40;

const MONTHS: [&[u8; 3]; 12] = [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];

/// Facility codes 0–23 (compat-spec §6.1 table).
const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

/// Severity 0–7: the short keyword (`level`) and the label Logstash uses.
const SEVERITIES: [(&str, &str); 8] = [
    ("emerg", "Emergency"),
    ("alert", "Alert"),
    ("crit", "Critical"),
    ("err", "Error"),
    ("warning", "Warning"),
    ("notice", "Notice"),
    ("info", "Informational"),
    ("debug", "Debug"),
];

/// Parses one syslog message (RFC 5424, RFC 3164 and its variants, or anything else as raw content with PRI 13). Never fails.
///
/// A missing or invalid PRI makes the whole frame the `message`, as user.notice
/// at `now_ms`. `<PRI>1 ` selects RFC 5424; any other version, or none, the BSD
/// path. A 5424 header that does not parse keeps everything after the PRI as
/// `message`; a 5424 header that parses followed by broken STRUCTURED-DATA keeps
/// the header fields and everything from the STRUCTURED-DATA on as `message`.
/// `message` is always present, possibly empty.
pub fn parse(frame: &[u8], now_ms: i64) -> Decoded<'_> {
    let frame = trim_trailer(frame);
    let mut fields = Object::new();
    let Some((pri, rest)) = split_pri(frame) else {
        put_pri(&mut fields, DEFAULT_PRI);
        put_text(&mut fields, "message", frame);
        return Decoded { ts_ms: now_ms, fields };
    };
    put_pri(&mut fields, pri);
    let ts_ms = match rest.strip_prefix(b"1 ") {
        Some(header) => rfc5424(header, rest, now_ms, &mut fields),
        None => rfc3164(rest, now_ms, &mut fields),
    };
    Decoded { ts_ms, fields }
}

/// The frame without trailing NULs and then one `\n` or `\r\n` (UDP senders
/// and NUL-trailer TCP senders leave them on).
fn trim_trailer(frame: &[u8]) -> &[u8] {
    let end = frame.iter().rposition(|&c| c != 0).map_or(0, |i| i + 1);
    let frame = frame.get(..end).unwrap_or_default();
    match frame.strip_suffix(b"\n") {
        Some(line) => line.strip_suffix(b"\r").unwrap_or(line),
        None => frame,
    }
}

/// `<PRI>` at the start: 1 to 3 digits (leading zeros allowed), at most 191.
fn split_pri(frame: &[u8]) -> Option<(u8, &[u8])> {
    let after = frame.strip_prefix(b"<")?;
    let digits = after.iter().take(4).take_while(|c| c.is_ascii_digit()).count();
    if !(1..=3).contains(&digits) || after.get(digits) != Some(&b'>') {
        return None;
    }
    let value = after.iter().take(digits).fold(0u16, |acc, c| acc * 10 + u16::from(c - b'0'));
    let pri = u8::try_from(value).ok().filter(|&p| p <= MAX_PRI)?;
    Some((pri, after.get(digits + 1..).unwrap_or_default()))
}

fn put_pri(fields: &mut Object<'_>, pri: u8) {
    let (facility, severity) = (pri >> 3, pri & 7);
    fields.insert("priority", Json::Number(pri.into()));
    fields.insert("facility", Json::Number(facility.into()));
    fields.insert("severity", Json::Number(severity.into()));
    if let Some(label) = FACILITIES.get(usize::from(facility)) {
        fields.insert("facility_label", Json::string(*label));
    }
    if let Some((level, label)) = SEVERITIES.get(usize::from(severity)) {
        fields.insert("severity_label", Json::string(*label));
        fields.insert("level", Json::string(*level));
    }
}

/// `key` = the bytes as text, invalid UTF-8 replaced.
fn put_text<'a>(fields: &mut Object<'a>, key: &'static str, bytes: &'a [u8]) {
    fields.insert(key, Json::String(String::from_utf8_lossy(bytes)));
}

/// `logsource` and `host`, unless the sender gave none (`-`).
fn put_host<'a>(fields: &mut Object<'a>, host: &'a [u8]) {
    if host != b"-" {
        put_text(fields, "logsource", host);
        put_text(fields, "host", host);
    }
}

// ---------------------------------------------------------------- RFC 5424

/// The RFC 5424 header fields, each still NILVALUE-able, and what follows them.
struct Header<'a> {
    timestamp: &'a [u8],
    hostname: &'a [u8],
    app_name: &'a [u8],
    procid: &'a [u8],
    msgid: &'a [u8],
    /// STRUCTURED-DATA [SP MSG].
    rest: &'a [u8],
}

/// `header` is what follows `<PRI>1 `, `after_pri` what follows `<PRI>` (kept
/// as the message when the header does not parse). Returns the event time.
fn rfc5424<'a>(header: &'a [u8], after_pri: &'a [u8], now_ms: i64, fields: &mut Object<'a>) -> i64 {
    let Some(h) = split_header(header) else {
        put_text(fields, "message", after_pri);
        return now_ms;
    };
    let mut ts_ms = now_ms;
    if h.timestamp != b"-" {
        put_text(fields, "timestamp", h.timestamp);
        ts_ms = std::str::from_utf8(h.timestamp).ok().and_then(parse_rfc3339).unwrap_or(now_ms);
    }
    put_host(fields, h.hostname);
    for (key, value) in [("program", h.app_name), ("pid", h.procid), ("msgid", h.msgid)] {
        if value != b"-" {
            put_text(fields, key, value);
        }
    }
    match structured_data(h.rest) {
        Some((sd, msg)) => {
            if let Some(sd) = sd {
                fields.insert("structured_data", Json::Object(sd));
            }
            put_text(fields, "message", msg.strip_prefix(UTF8_BOM).unwrap_or(msg));
        }
        None => put_text(fields, "message", h.rest),
    }
    ts_ms
}

/// Five space-separated non-empty fields and the rest. Field length limits
/// are not enforced: rejecting a long hostname would only lose it.
fn split_header(b: &[u8]) -> Option<Header<'_>> {
    let mut parts = b.splitn(6, |&c| c == b' ');
    let mut field = || parts.next().filter(|p| !p.is_empty());
    Some(Header { timestamp: field()?, hostname: field()?, app_name: field()?, procid: field()?, msgid: field()?, rest: parts.next()? })
}

/// STRUCTURED-DATA (`-` or elements) and the MSG after it, or None when it
/// does not parse. Elements with the same SD-ID are merged, later params win.
fn structured_data(b: &[u8]) -> Option<(Option<Object<'static>>, &[u8])> {
    let (sd, after) = match b.strip_prefix(b"-") {
        Some(after) => (None, after),
        None => {
            let (sd, after) = sd_elements(b)?;
            (Some(sd), after)
        }
    };
    match after {
        [] => Some((sd, after)),
        [b' ', msg @ ..] => Some((sd, msg)),
        _ => None,
    }
}

fn sd_elements(mut b: &[u8]) -> Option<(Object<'static>, &[u8])> {
    let mut sd = Object::new();
    if !b.starts_with(b"[") {
        return None;
    }
    while let Some(inner) = b.strip_prefix(b"[") {
        let (id, params, after) = sd_element(inner)?;
        match sd.get_mut(&id) {
            Some(Json::Object(existing)) => {
                for (name, value) in params {
                    existing.insert(name, value);
                }
            }
            _ => {
                sd.insert(id, Json::Object(params));
            }
        }
        b = after;
    }
    Some((sd, b))
}

/// `SD-ID *(SP PARAM-NAME="VALUE")]`, the `[` already taken.
fn sd_element(b: &[u8]) -> Option<(String, Object<'static>, &[u8])> {
    let (id, mut b) = sd_name(b)?;
    let mut params = Object::new();
    loop {
        match b {
            [b']', after @ ..] => return Some((id, params, after)),
            [b' ', after @ ..] => {
                let (name, after) = sd_name(after)?;
                let (value, after) = sd_value(after.strip_prefix(b"=\"")?)?;
                params.insert(name, Json::string(value));
                b = after;
            }
            _ => return None,
        }
    }
}

/// An SD-ID or PARAM-NAME: 1 to 32 printable US-ASCII characters but `=`,
/// space, `]` and `"`.
fn sd_name(b: &[u8]) -> Option<(String, &[u8])> {
    let len = b.iter().take(SD_NAME_MAX + 1).take_while(|&&c| matches!(c, 33..=126) && !matches!(c, b'=' | b']' | b'"')).count();
    if len == 0 || len > SD_NAME_MAX {
        return None;
    }
    let (name, after) = b.split_at_checked(len)?;
    Some((String::from_utf8_lossy(name).into_owned(), after))
}

/// A PARAM-VALUE up to its closing `"`, unescaped: `\"`, `\\` and `\]` are
/// escapes, a backslash before anything else is kept. An unescaped `]` is an
/// error (RFC 5424 §6.3.3 says it MUST be escaped), so the message is kept raw.
fn sd_value(b: &[u8]) -> Option<(String, &[u8])> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        match c {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), b.get(i + 1..).unwrap_or_default())),
            b']' => return None,
            b'\\' => match b.get(i + 1) {
                Some(&escaped @ (b'"' | b'\\' | b']')) => {
                    out.push(escaped);
                    i += 2;
                    continue;
                }
                _ => out.push(c),
            },
            _ => out.push(c),
        }
        i += 1;
    }
    None
}

// ---------------------------------------------------------------- RFC 3164

/// `TIMESTAMP HOSTNAME TAG[PID]: CONTENT`, each part optional in practice.
/// Without a timestamp there is no hostname either. Returns the event time.
fn rfc3164<'a>(b: &'a [u8], now_ms: i64, fields: &mut Object<'a>) -> i64 {
    let Some((ts_ms, used)) = bsd_timestamp(b, now_ms).or_else(|| rfc3339_timestamp(b)) else {
        put_tagged(fields, b);
        return now_ms;
    };
    let (text, after) = b.split_at_checked(used).unwrap_or((b, &[]));
    put_text(fields, "timestamp", text);
    let after = &after[after.iter().take_while(|&&c| c == b' ').count()..];
    let content = split_hostname(after, fields);
    put_tagged(fields, content);
    ts_ms
}

/// Takes the HOSTNAME off `b` unless the first token is the tag already
/// (ends with `:` or holds a `[`: local senders omit the hostname).
fn split_hostname<'a>(b: &'a [u8], fields: &mut Object<'a>) -> &'a [u8] {
    let end = b.iter().position(|&c| c == b' ').unwrap_or(b.len());
    let (token, after) = b.split_at(end);
    if token.is_empty() || token.ends_with(b":") || token.contains(&b'[') {
        return b;
    }
    put_host(fields, token);
    after.strip_prefix(b" ").unwrap_or(after)
}

/// `program`, `pid` and `message` from `TAG[PID]: CONTENT`, or all of `b` as
/// the message when no tag pattern matches.
fn put_tagged<'a>(fields: &mut Object<'a>, b: &'a [u8]) {
    match split_tag(b) {
        Some(tag) => {
            put_text(fields, "program", tag.program);
            if let Some(pid) = tag.pid {
                put_text(fields, "pid", pid);
            }
            put_text(fields, "message", tag.content);
        }
        None => put_text(fields, "message", b),
    }
}

/// A BSD `TAG[PID]: CONTENT` taken apart.
struct Tag<'a> {
    program: &'a [u8],
    pid: Option<&'a [u8]>,
    content: &'a [u8],
}

/// Up to 32 of `[A-Za-z0-9_.\-/]`, an optional `[pid]`, then `:` and at most
/// one space. An empty `[]` is no pid.
fn split_tag(b: &[u8]) -> Option<Tag<'_>> {
    let is_tag = |c: &&u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'/');
    let len = b.iter().take(TAG_MAX + 1).take_while(is_tag).count();
    if len == 0 || len > TAG_MAX {
        return None;
    }
    let (program, mut rest) = b.split_at(len);
    let mut pid = None;
    if let Some(inner) = rest.strip_prefix(b"[") {
        let close = inner.iter().take(PID_MAX + 1).position(|&c| c == b']')?;
        let (digits, after) = inner.split_at(close);
        if digits.contains(&b' ') {
            return None;
        }
        pid = Some(digits).filter(|d| !d.is_empty());
        rest = after.get(1..).unwrap_or_default();
    }
    let content = rest.strip_prefix(b":")?;
    Some(Tag { program, pid, content: content.strip_prefix(b" ").unwrap_or(content) })
}

/// An RFC 3339 timestamp in place of the BSD one (rsyslog's forwarding
/// format), followed by a space or the end.
fn rfc3339_timestamp(b: &[u8]) -> Option<(i64, usize)> {
    let ascii = b.iter().take(RFC3339_MAX).take_while(|c| c.is_ascii()).count();
    let text = std::str::from_utf8(b.get(..ascii)?).ok()?;
    parse_prefix(text).filter(|&(_, used)| matches!(b.get(used), None | Some(b' ')))
}

/// `Mmm dd hh:mm:ss` (day space-padded or not), optionally `Mmm dd yyyy
/// hh:mm:ss`, with optional fractional seconds, followed by a space or the
/// end. The time is UTC; a missing year is the receiver's, or the one before
/// when that would put the message more than a day in the future.
fn bsd_timestamp(b: &[u8], now_ms: i64) -> Option<(i64, usize)> {
    let month = MONTHS.iter().position(|m| b.starts_with(*m))?;
    let mut c = Cursor { b, at: 3 };
    c.eat(b' ').then_some(())?;
    c.eat(b' ');
    let day = c.digits(1, 2)?;
    c.eat(b' ').then_some(())?;
    let year = c.year();
    let hour = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let minute = c.digits(2, 2)?;
    c.eat(b':').then_some(())?;
    let second = c.digits(2, 2)?;
    let frac_ms = if c.eat(b'.') { c.fraction_ms()? } else { 0 };
    if hour > 23 || minute > 59 || second > 60 || !matches!(b.get(c.at), None | Some(b' ')) {
        return None;
    }
    let clock_ms = ((hour * 60 + minute) * 60 + second) * 1000 + frac_ms;
    let month = i64::try_from(month).ok()? + 1;
    let ts_ms = bsd_epoch_ms(year, month, day, clock_ms, now_ms)?;
    Some((ts_ms, c.at))
}

/// Epoch ms of a BSD date, guessing the year when the message has none.
fn bsd_epoch_ms(year: Option<i64>, month: i64, day: i64, clock_ms: i64, now_ms: i64) -> Option<i64> {
    let at = |y: i64| civil_day(y, month, day)?.checked_mul(DAY_MS)?.checked_add(clock_ms);
    if let Some(y) = year {
        return at(y);
    }
    let (this_year, _, _) = civil_from_days(now_ms.div_euclid(DAY_MS));
    match at(this_year) {
        Some(ts) if ts <= now_ms.saturating_add(DAY_MS) => Some(ts),
        _ => at(this_year - 1),
    }
}

/// A read position in an ASCII timestamp.
struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    fn eat(&mut self, want: u8) -> bool {
        let hit = self.b.get(self.at) == Some(&want);
        self.at += usize::from(hit);
        hit
    }

    /// `min` to `max` digits as a number.
    fn digits(&mut self, min: usize, max: usize) -> Option<i64> {
        let rest = self.b.get(self.at..)?;
        let n = rest.iter().take(max).take_while(|c| c.is_ascii_digit()).count();
        if n < min {
            return None;
        }
        self.at += n;
        Some(rest.iter().take(n).fold(0, |acc, c| acc * 10 + i64::from(c - b'0')))
    }

    /// `yyyy ` when present; nothing is taken otherwise.
    fn year(&mut self) -> Option<i64> {
        let start = self.at;
        let year = self.digits(4, 4).filter(|_| self.eat(b' '));
        if year.is_none() {
            self.at = start;
        }
        year
    }

    /// One or more fraction digits, as milliseconds (truncated).
    fn fraction_ms(&mut self) -> Option<i64> {
        let rest = self.b.get(self.at..)?;
        let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        self.at += n;
        let padded = rest.iter().take(n.min(3)).chain(std::iter::repeat(&b'0')).take(3);
        Some(padded.fold(0, |acc, c| acc * 10 + i64::from(c - b'0')))
    }
}

// ---------------------------------------------------------------- RFC 6587

/// RFC 6587 framing of a syslog TCP stream: each frame chooses octet counting (first byte 1-9) or a trailer (LF, or NUL; a trailing CR is trimmed).
///
/// A frame that starts with digits not followed by a space is not a count:
/// it is trailer-framed, digits included (rsyslog does the same). Bytes are
/// scanned once: the trailer search resumes where the last one stopped, and
/// handed-out bytes are dropped from the buffer only once they are at least
/// half of it, so a stream costs O(its length) whatever the segmentation.
pub struct Framer {
    buf: Vec<u8>,
    /// The first byte not handed out yet: the start of the current frame.
    start: usize,
    /// Where the trailer search of the current frame resumes: no trailer
    /// lies in `start..scanned`.
    scanned: usize,
    max_frame: usize,
    /// Set by an error: the connection is to be closed, nothing more is framed.
    failed: bool,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FrameError {
    /// An octet count, or a trailer-framed frame, over the limit.
    #[error("syslog frame of {len} bytes is over the limit of {max}")]
    TooLong { len: usize, max: usize },
    /// No trailer within the limit.
    #[error("syslog frame has no trailer in its first {len} bytes, over the limit of {max}")]
    Unterminated { len: usize, max: usize },
}

/// How the frame at the start of the buffer is framed, as far as can be told.
enum Framing {
    /// `len` bytes of message starting `body` bytes into the frame.
    Counted {
        len: usize,
        body: usize,
    },
    Trailer,
    /// Only digits so far: a count whose space has not arrived yet.
    Pending,
}

/// What one framing step found.
enum Step {
    Frame(Vec<u8>),
    /// A blank frame was consumed; look again.
    Skip,
    /// The frame is incomplete.
    Wait,
    Fail(FrameError),
}

impl Framer {
    pub fn new(max_frame: usize) -> Framer {
        Framer { buf: Vec::new(), start: 0, scanned: 0, max_frame, failed: false }
    }

    /// Appends bytes read from the socket.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed {
            return;
        }
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// The next complete frame, if any. An error means the connection must be closed (an octet count over max_frame, or a trailer-framed frame longer than max_frame without a trailer).
    ///
    /// A trailer-framed frame longer than max_frame is an error even when its
    /// trailer has arrived, so the outcome does not depend on segmentation.
    /// After an error the buffer is dropped and this returns None.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameError>> {
        loop {
            if self.failed || self.start >= self.buf.len() {
                return None;
            }
            let step = match framing(&self.buf[self.start..]) {
                Framing::Counted { len, body } => self.counted(len, body),
                Framing::Trailer => self.trailed(),
                Framing::Pending => self.check_unterminated(),
            };
            match step {
                Step::Frame(frame) => return Some(Ok(frame)),
                Step::Skip => {}
                Step::Wait => return None,
                Step::Fail(e) => {
                    self.fail();
                    return Some(Err(e));
                }
            }
        }
    }

    /// At connection close: a trailing partial trailer-framed frame is delivered; an incomplete octet-counted frame is dropped (None).
    ///
    /// Complete frames still buffered come first, so call it until None.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if let Some(result) = self.next_frame() {
            return result.ok();
        }
        let rest = self.buf.get(self.start..).unwrap_or_default();
        let frame = match framing(rest) {
            Framing::Trailer => Some(rest.strip_suffix(b"\r").unwrap_or(rest).to_vec()).filter(|f| !f.is_empty()),
            Framing::Counted { .. } | Framing::Pending => None,
        };
        self.reset();
        frame
    }

    /// Bytes held waiting for the rest of a frame.
    pub fn buffered(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    fn counted(&mut self, len: usize, body: usize) -> Step {
        if len > self.max_frame {
            return Step::Fail(FrameError::TooLong { len, max: self.max_frame });
        }
        let from = self.start + body;
        let end = from.saturating_add(len);
        let Some(frame) = self.buf.get(from..end) else { return Step::Wait };
        let frame = frame.to_vec();
        self.advance(end);
        Step::Frame(frame)
    }

    fn trailed(&mut self) -> Step {
        let from = self.scanned.max(self.start);
        let Some(offset) = self.buf[from..].iter().position(|&c| c == b'\n' || c == 0) else {
            self.scanned = self.buf.len();
            return self.check_unterminated();
        };
        let end = from + offset;
        let len = end - self.start;
        if len > self.max_frame {
            return Step::Fail(FrameError::TooLong { len, max: self.max_frame });
        }
        let frame = &self.buf[self.start..end];
        let frame = frame.strip_suffix(b"\r").unwrap_or(frame).to_vec();
        self.advance(end + 1);
        if frame.is_empty() { Step::Skip } else { Step::Frame(frame) }
    }

    /// Waits for more of a frame with no end in sight, unless it is already
    /// over the limit.
    fn check_unterminated(&self) -> Step {
        let len = self.buffered();
        if len > self.max_frame { Step::Fail(FrameError::Unterminated { len, max: self.max_frame }) } else { Step::Wait }
    }

    fn advance(&mut self, to: usize) {
        self.start = to;
        self.scanned = to;
    }

    /// Drops handed-out bytes once they are at least half the buffer, so each
    /// byte is moved at most as often as an equal number is dropped.
    fn compact(&mut self) {
        if self.start == 0 || self.start * 2 < self.buf.len() {
            return;
        }
        self.buf.drain(..self.start);
        self.scanned -= self.start;
        self.start = 0;
    }

    fn fail(&mut self) {
        self.failed = true;
        self.reset();
    }

    fn reset(&mut self) {
        self.buf = Vec::new();
        self.start = 0;
        self.scanned = 0;
    }
}

/// Octet counting when the frame starts with 1-9 and its digits end in a
/// space; a trailer otherwise.
fn framing(b: &[u8]) -> Framing {
    if !matches!(b.first(), Some(b'1'..=b'9')) {
        return Framing::Trailer;
    }
    let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
    match b.get(digits) {
        None => Framing::Pending,
        Some(b' ') => {
            let len = b.iter().take(digits).fold(0usize, |acc, c| acc.saturating_mul(10).saturating_add(usize::from(c - b'0')));
            Framing::Counted { len, body: digits + 1 }
        }
        Some(_) => Framing::Trailer,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::time::format_ms;
    use serde_json::{Value, json};

    /// The receive time most cases use: after every BSD date they carry.
    const DEC: &str = "2024-12-01T00:00:00.000Z";

    fn ms(text: &str) -> i64 {
        parse_rfc3339(text).expect("a test timestamp")
    }

    /// Parses `frame` received at `now` and checks the time and every field:
    /// the PRI ones from `pri`, the others from `rest`.
    fn check(frame: &[u8], now: &str, ts: &str, pri: u8, rest: Value) {
        let got = parse(frame, ms(now));
        let shown = String::from_utf8_lossy(frame);
        assert_eq!(format_ms(got.ts_ms), ts, "time of {shown:?}");
        let mut pri_fields = Object::new();
        put_pri(&mut pri_fields, pri);
        let Value::Object(mut want) = serde_json::to_value(&pri_fields).unwrap() else { unreachable!() };
        let Value::Object(rest) = rest else { panic!("expected fields must be an object") };
        want.extend(rest);
        assert_eq!(serde_json::to_value(&got.fields).unwrap(), Value::Object(want), "fields of {shown:?}");
    }

    #[test]
    fn pri_boundaries() {
        let labels = |frame: &[u8]| {
            let f = serde_json::to_value(&parse(frame, 0).fields).unwrap();
            (
                f["priority"].clone(),
                f["facility"].clone(),
                f["severity"].clone(),
                f["facility_label"].clone(),
                f["severity_label"].clone(),
                f["level"].clone(),
            )
        };
        assert_eq!(
            labels(b"<0>Oct 11 22:14:15 host app: x"),
            (json!(0), json!(0), json!(0), json!("kern"), json!("Emergency"), json!("emerg"))
        );
        assert_eq!(
            labels(b"<191>Oct 11 22:14:15 host app: x"),
            (json!(191), json!(23), json!(7), json!("local7"), json!("Debug"), json!("debug"))
        );
        assert_eq!(
            labels(b"<13>Oct 11 22:14:15 host app: x"),
            (json!(13), json!(1), json!(5), json!("user"), json!("Notice"), json!("notice"))
        );
        assert_eq!(labels(b"<34>x"), (json!(34), json!(4), json!(2), json!("auth"), json!("Critical"), json!("crit")));
        assert_eq!(labels(b"<107>x"), (json!(107), json!(13), json!(3), json!("security"), json!("Error"), json!("err")));
        assert_eq!(labels(b"<123>x"), (json!(123), json!(15), json!(3), json!("solaris-cron"), json!("Error"), json!("err")));
    }

    #[test]
    fn invalid_pri_is_user_notice_with_the_raw_frame() {
        for raw in [
            "<192>Oct 11 22:14:15 host app: x",
            "<>x",
            "<1a>x",
            "no pri here",
            "<1234>x",
            "<13",
            "<-1>x",
            "Oct 11 22:14:15 host app: x",
            "",
        ] {
            check(raw.as_bytes(), DEC, DEC, 13, json!({"message": raw}));
        }
        check(b"<192>x\r\n", DEC, DEC, 13, json!({"message": "<192>x"}));
    }

    #[test]
    fn leading_zeros_in_pri_are_accepted() {
        check(
            b"<013>Oct 11 22:14:15 host app: x",
            DEC,
            "2024-10-11T22:14:15.000Z",
            13,
            json!({"timestamp": "Oct 11 22:14:15", "logsource": "host", "host": "host", "program": "app", "message": "x"}),
        );
        check(b"<000>x", DEC, DEC, 0, json!({"message": "x"}));
    }

    #[test]
    fn rfc3164() {
        let c = |frame: &[u8], ts: &str, rest: Value| check(frame, DEC, ts, 13, rest);
        check(
            b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
            DEC,
            "2024-10-11T22:14:15.000Z",
            34,
            json!({"timestamp": "Oct 11 22:14:15", "logsource": "mymachine", "host": "mymachine", "program": "su", "message": "'su root' failed for lonvick on /dev/pts/8"}),
        );
        c(
            b"<13>Feb  5 17:32:18 10.0.0.99 myapp[1234]: Use the BFG!",
            "2024-02-05T17:32:18.000Z",
            json!({"timestamp": "Feb  5 17:32:18", "logsource": "10.0.0.99", "host": "10.0.0.99", "program": "myapp", "pid": "1234", "message": "Use the BFG!"}),
        );
        let h = |ts: &str, more: Value| {
            let mut fields = json!({"timestamp": ts, "logsource": "host", "host": "host"});
            if let (Value::Object(f), Value::Object(m)) = (&mut fields, more) {
                f.extend(m);
            }
            fields
        };
        let oct = "2024-10-11T22:14:15.000Z";
        // Day forms: space-padded, zero-padded, single space.
        c(b"<13>Feb 05 17:32:18 host app: x", "2024-02-05T17:32:18.000Z", h("Feb 05 17:32:18", json!({"program": "app", "message": "x"})));
        c(b"<13>Feb 5 17:32:18 host app: x", "2024-02-05T17:32:18.000Z", h("Feb 5 17:32:18", json!({"program": "app", "message": "x"})));
        // Tag forms.
        c(b"<13>Oct 11 22:14:15 host app[123]: x", oct, h("Oct 11 22:14:15", json!({"program": "app", "pid": "123", "message": "x"})));
        c(b"<13>Oct 11 22:14:15 host app:", oct, h("Oct 11 22:14:15", json!({"program": "app", "message": ""})));
        c(b"<13>Oct 11 22:14:15 host app: ", oct, h("Oct 11 22:14:15", json!({"program": "app", "message": ""})));
        c(b"<13>Oct 11 22:14:15 host app:tight", oct, h("Oct 11 22:14:15", json!({"program": "app", "message": "tight"})));
        c(b"<13>Oct 11 22:14:15 host app:  two", oct, h("Oct 11 22:14:15", json!({"program": "app", "message": " two"})));
        c(b"<13>Oct 11 22:14:15 host app[]: x", oct, h("Oct 11 22:14:15", json!({"program": "app", "message": "x"})));
        c(
            b"<13>Oct 11 22:14:15 host my-app/worker_1.2[42]: x",
            oct,
            h("Oct 11 22:14:15", json!({"program": "my-app/worker_1.2", "pid": "42", "message": "x"})),
        );
        let tag32 = format!("<13>Oct 11 22:14:15 host {}: x", "a".repeat(32));
        c(tag32.as_bytes(), oct, h("Oct 11 22:14:15", json!({"program": "a".repeat(32), "message": "x"})));
        let tag33 = format!("{}: x", "a".repeat(33));
        c(format!("<13>Oct 11 22:14:15 host {tag33}").as_bytes(), oct, h("Oct 11 22:14:15", json!({"message": tag33})));
        // No tag pattern: everything after the hostname is the message.
        c(b"<13>Oct 11 22:14:15 host just some text", oct, h("Oct 11 22:14:15", json!({"message": "just some text"})));
        c(b"<13>Oct 11 22:14:15 host app[1 2]: x", oct, h("Oct 11 22:14:15", json!({"message": "app[1 2]: x"})));
        c(b"<13>Oct 11 22:14:15 host", oct, h("Oct 11 22:14:15", json!({"message": ""})));
        // No hostname (local sockets): the token after the timestamp is the tag.
        c(b"<13>Oct 11 22:14:15 su: msg", oct, json!({"timestamp": "Oct 11 22:14:15", "program": "su", "message": "msg"}));
        c(b"<13>Oct 11 22:14:15 app[9]: msg", oct, json!({"timestamp": "Oct 11 22:14:15", "program": "app", "pid": "9", "message": "msg"}));
        c(b"<13>Oct 11 22:14:15 - app: x", oct, json!({"timestamp": "Oct 11 22:14:15", "program": "app", "message": "x"}));
        // Year, fractions, RFC 3339 in place of the BSD timestamp.
        c(
            b"<13>Oct 11 2022 22:14:15 host app: x",
            "2022-10-11T22:14:15.000Z",
            h("Oct 11 2022 22:14:15", json!({"program": "app", "message": "x"})),
        );
        c(
            b"<13>Oct 11 22:14:15.123456 host app: x",
            "2024-10-11T22:14:15.123Z",
            h("Oct 11 22:14:15.123456", json!({"program": "app", "message": "x"})),
        );
        c(
            b"<13>Oct 11 22:14:15.5 host app: x",
            "2024-10-11T22:14:15.500Z",
            h("Oct 11 22:14:15.5", json!({"program": "app", "message": "x"})),
        );
        c(
            b"<13>2024-03-01T10:00:00.5+01:00 host app[7]: hi",
            "2024-03-01T09:00:00.500Z",
            h("2024-03-01T10:00:00.5+01:00", json!({"program": "app", "pid": "7", "message": "hi"})),
        );
        c(
            b"<13>2024-03-01T10:00:00Z su: hi",
            "2024-03-01T10:00:00.000Z",
            json!({"timestamp": "2024-03-01T10:00:00Z", "program": "su", "message": "hi"}),
        );
        // No (valid) timestamp: no hostname either; tag and content, received now.
        c(b"<13>app[1]: hi", DEC, json!({"program": "app", "pid": "1", "message": "hi"}));
        c(b"<13>hello world", DEC, json!({"message": "hello world"}));
        c(b"<13>Feb 30 22:14:15 host app: x", DEC, json!({"message": "Feb 30 22:14:15 host app: x"}));
        c(b"<13>Oct 11 25:14:15 host app: x", DEC, json!({"message": "Oct 11 25:14:15 host app: x"}));
        c(b"<13>oct 11 22:14:15 host app: x", DEC, json!({"message": "oct 11 22:14:15 host app: x"}));
        c(b"<13>Oct 11 22:14:15x host app: x", DEC, json!({"message": "Oct 11 22:14:15x host app: x"}));
        c(b"<13>", DEC, json!({"message": ""}));
        // Trailers and bytes that are not UTF-8.
        for frame in [
            &b"<13>Oct 11 22:14:15 host app: x\n"[..],
            b"<13>Oct 11 22:14:15 host app: x\r\n",
            b"<13>Oct 11 22:14:15 host app: x\0\0",
            b"<13>Oct 11 22:14:15 host app: x\n\0",
        ] {
            c(frame, oct, h("Oct 11 22:14:15", json!({"program": "app", "message": "x"})));
        }
        c(b"<13>Oct 11 22:14:15 host app: caf\xe9", oct, h("Oct 11 22:14:15", json!({"program": "app", "message": "caf\u{fffd}"})));
    }

    #[test]
    fn bsd_year_is_the_receivers_or_the_one_before() {
        let new_year = "2025-01-01T00:05:00.000Z";
        let c = |frame: &[u8], now: &str, ts: &str, stamp: &str| {
            check(frame, now, ts, 13, json!({"timestamp": stamp, "logsource": "host", "host": "host", "program": "app", "message": "x"}));
        };
        c(b"<13>Dec 31 23:59:59 host app: x", new_year, "2024-12-31T23:59:59.000Z", "Dec 31 23:59:59");
        c(b"<13>Jan  1 00:10:00 host app: x", new_year, "2025-01-01T00:10:00.000Z", "Jan  1 00:10:00");
        let june = "2024-06-15T12:00:00.000Z";
        c(b"<13>Jun 16 11:00:00 host app: x", june, "2024-06-16T11:00:00.000Z", "Jun 16 11:00:00");
        c(b"<13>Jun 17 11:00:00 host app: x", june, "2023-06-17T11:00:00.000Z", "Jun 17 11:00:00");
        // Feb 29 when this year has none: the last year that does comes first.
        c(b"<13>Feb 29 11:00:00 host app: x", "2025-03-01T00:00:00.000Z", "2024-02-29T11:00:00.000Z", "Feb 29 11:00:00");
    }

    #[test]
    fn rfc5424() {
        check(
            b"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xEF\xBB\xBF'su root' failed for lonvick on /dev/pts/8",
            DEC,
            "2003-10-11T22:14:15.003Z",
            34,
            json!({"timestamp": "2003-10-11T22:14:15.003Z", "logsource": "mymachine.example.com", "host": "mymachine.example.com", "program": "su", "msgid": "ID47", "message": "'su root' failed for lonvick on /dev/pts/8"}),
        );
        let sd = json!({"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}});
        check(
            br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] An application event log entry..."#,
            DEC,
            "2003-10-11T22:14:15.003Z",
            165,
            json!({"timestamp": "2003-10-11T22:14:15.003Z", "logsource": "mymachine.example.com", "host": "mymachine.example.com", "program": "evntslog", "msgid": "ID47", "structured_data": sd, "message": "An application event log entry..."}),
        );
        check(
            b"<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
            DEC,
            "2003-08-24T12:14:15.000Z",
            165,
            json!({"timestamp": "2003-08-24T05:14:15.000003-07:00", "logsource": "192.0.2.1", "host": "192.0.2.1", "program": "myproc", "pid": "8710", "message": "%% It's time to make the do-nuts."}),
        );
        check(
            br#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]"#,
            DEC,
            "2003-10-11T22:14:15.003Z",
            165,
            json!({"timestamp": "2003-10-11T22:14:15.003Z", "logsource": "mymachine.example.com", "host": "mymachine.example.com", "program": "evntslog", "msgid": "ID47",
                   "structured_data": {"exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"}, "examplePriority@32473": {"class": "high"}}, "message": ""}),
        );
        check(
            b"<14>1 2003-10-11T22:14:15.123456Z h a p m - x",
            DEC,
            "2003-10-11T22:14:15.123Z",
            14,
            json!({"timestamp": "2003-10-11T22:14:15.123456Z", "logsource": "h", "host": "h", "program": "a", "pid": "p", "msgid": "m", "message": "x"}),
        );
    }

    #[test]
    fn rfc5424_nil_and_odd_headers() {
        check(b"<13>1 - - - - - -", DEC, DEC, 13, json!({"message": ""}));
        check(b"<13>1 - - - - - -\n", DEC, DEC, 13, json!({"message": ""}));
        check(b"<13>1 - - - - - - \xEF\xBB\xBFhello", DEC, DEC, 13, json!({"message": "hello"}));
        check(b"<13>1 - - - - - - caf\xe9", DEC, DEC, 13, json!({"message": "caf\u{fffd}"}));
        // An unparseable timestamp is kept as text; the event is received now.
        check(
            b"<13>1 yesterday host app - - - x",
            DEC,
            DEC,
            13,
            json!({"timestamp": "yesterday", "logsource": "host", "host": "host", "program": "app", "message": "x"}),
        );
        // Another version, or a header cut short: everything after the PRI.
        check(
            b"<13>2 2003-10-11T22:14:15Z host app - - - msg",
            DEC,
            DEC,
            13,
            json!({"message": "2 2003-10-11T22:14:15Z host app - - - msg"}),
        );
        check(
            b"<13>12 2003-10-11T22:14:15Z host app - - - msg",
            DEC,
            DEC,
            13,
            json!({"message": "12 2003-10-11T22:14:15Z host app - - - msg"}),
        );
        check(b"<13>1 - host", DEC, DEC, 13, json!({"message": "1 - host"}));
        check(b"<13>1 - - - - -", DEC, DEC, 13, json!({"message": "1 - - - - -"}));
        check(b"<13>1  - - - - -", DEC, DEC, 13, json!({"message": "1  - - - - -"}));
    }

    #[test]
    fn structured_data() {
        let c = |frame: &[u8], sd: Value, message: &str| check(frame, DEC, DEC, 13, json!({"structured_data": sd, "message": message}));
        c(
            br#"<13>1 - - - - - [a@1 v="x\]y\"z\\w\n"][b@1 k="1" e=""] msg"#,
            json!({"a@1": {"v": r#"x]y"z\w\n"#}, "b@1": {"k": "1", "e": ""}}),
            "msg",
        );
        c(
            br#"<13>1 - - - - - [a@1 k="1"][a@1 k="2" j="3"][c k="1" k="2"] msg"#,
            json!({"a@1": {"k": "2", "j": "3"}, "c": {"k": "2"}}),
            "msg",
        );
        c(b"<13>1 - - - - - [timeQuality] m", json!({"timeQuality": {}}), "m");
        c("<13>1 - - - - - [origin x=\"é\"]".as_bytes(), json!({"origin": {"x": "é"}}), "");
        let raw = |frame: &[u8], message: &str| check(frame, DEC, DEC, 13, json!({"message": message}));
        // Broken STRUCTURED-DATA: the header stays, the rest is the message.
        check(
            br#"<13>1 2003-10-11T22:14:15Z host app - - [a@1 v="x]y"] msg"#,
            DEC,
            "2003-10-11T22:14:15.000Z",
            13,
            json!({"timestamp": "2003-10-11T22:14:15Z", "logsource": "host", "host": "host", "program": "app", "message": r#"[a@1 v="x]y"] msg"#}),
        );
        raw(b"<13>1 - - - - - hello world", "hello world");
        raw(b"<13>1 - - - - - -hello", "-hello");
        raw(br#"<13>1 - - - - - [a@1 v="unterminated] x"#, r#"[a@1 v="unterminated] x"#);
        raw(br#"<13>1 - - - - - [a@1 v="1"]x"#, r#"[a@1 v="1"]x"#);
        raw(br#"<13>1 - - - - - [a@1 v=1] x"#, "[a@1 v=1] x");
        raw(b"<13>1 - - - - - [] x", "[] x");
        raw(b"<13>1 - - - - - [a@1", "[a@1");
        raw(format!("<13>1 - - - - - [{}] x", "i".repeat(33)).as_bytes(), &format!("[{}] x", "i".repeat(33)));
    }

    /// Frames `chunks` pushed one after the other, then what `finish` gives,
    /// as text: errors and finished frames are marked.
    fn run(max: usize, chunks: &[&[u8]]) -> Vec<String> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        for chunk in chunks {
            framer.push(chunk);
            while let Some(frame) = framer.next_frame() {
                out.push(match frame {
                    Ok(f) => String::from_utf8_lossy(&f).into_owned(),
                    Err(e) => format!("error: {e}"),
                });
            }
        }
        while let Some(frame) = framer.finish() {
            out.push(format!("finish: {}", String::from_utf8_lossy(&frame)));
        }
        out
    }

    const BODY_30: &[u8] = b"<13>1 - - - - - - first\nsecond";
    const MIXED: &[u8] = b"30 <13>1 - - - - - - first\nsecond<13>lf frame\n9 <13>count<14>nul\0<15>crlf\r\n\n123abc\n<16>tail";
    const MIXED_FRAMES: [&str; 7] =
        ["<13>1 - - - - - - first\nsecond", "<13>lf frame", "<13>count", "<14>nul", "<15>crlf", "123abc", "finish: <16>tail"];

    #[test]
    fn octet_counting_keeps_embedded_line_feeds() {
        assert_eq!(BODY_30.len(), 30);
        assert_eq!(run(1024, &[b"30 <13>1 - - - - - - first\nsecond"]), ["<13>1 - - - - - - first\nsecond"]);
        assert_eq!(parse(BODY_30, 0).fields.get("message").and_then(Json::as_str), Some("first\nsecond"));
        assert_eq!(run(5, &[b"5 abcde"]), ["abcde"]);
    }

    #[test]
    fn mixed_framing_on_one_stream() {
        assert_eq!(run(1024, &[MIXED]), MIXED_FRAMES);
        assert_eq!(run(1024, &[b"<13>a\0<13>b\0"]), ["<13>a", "<13>b"]);
        assert_eq!(run(1024, &[b"<13>a\r\n<13>b\r\n"]), ["<13>a", "<13>b"]);
        assert_eq!(run(1024, &[b"\n\r\n\0<13>x\n\n"]), ["<13>x"]);
    }

    #[test]
    fn frames_split_across_segments() {
        let bytes: Vec<&[u8]> = MIXED.chunks(1).collect();
        assert_eq!(run(1024, &bytes), MIXED_FRAMES);
        for cut in 0..=MIXED.len() {
            let (a, b) = MIXED.split_at(cut);
            assert_eq!(run(1024, &[a, b]), MIXED_FRAMES, "cut at {cut}");
        }
    }

    #[test]
    fn over_the_limit_closes() {
        assert_eq!(FrameError::TooLong { len: 70000, max: 65536 }.to_string(), "syslog frame of 70000 bytes is over the limit of 65536");
        assert_eq!(run(100, &[b"101 <13>x", b"<13>more\n"]), ["error: syslog frame of 101 bytes is over the limit of 100"]);
        assert_eq!(
            run(100, &[b"<13>ok\n99999999999999999999999 "]),
            ["<13>ok", "error: syslog frame of 18446744073709551615 bytes is over the limit of 100"]
        );
        assert_eq!(run(10, &[b"<13>abcdef"]), ["finish: <13>abcdef"]);
        assert_eq!(run(10, &[b"<13>abcdefg"]), ["error: syslog frame has no trailer in its first 11 bytes, over the limit of 10"]);
        assert_eq!(run(10, &[b"<13>abc", b"defg"]), ["error: syslog frame has no trailer in its first 11 bytes, over the limit of 10"]);
        assert_eq!(run(10, &[b"<13>abcdefg\n"]), ["error: syslog frame of 11 bytes is over the limit of 10"]);
        assert_eq!(run(3, &[b"1234"]), ["error: syslog frame has no trailer in its first 4 bytes, over the limit of 3"]);
        let mut framer = Framer::new(3);
        framer.push(b"<13>abc\n");
        assert_eq!(framer.next_frame(), Some(Err(FrameError::TooLong { len: 7, max: 3 })));
        framer.push(b"<1>\n");
        assert_eq!((framer.next_frame(), framer.finish(), framer.buffered()), (None, None, 0));
    }

    #[test]
    fn finish_delivers_a_partial_trailer_frame_only() {
        assert_eq!(run(100, &[b"<13>tail"]), ["finish: <13>tail"]);
        assert_eq!(run(100, &[b"<13>tail\r"]), ["finish: <13>tail"]);
        assert_eq!(run(100, &[b"30 <13>abc"]), Vec::<String>::new());
        assert_eq!(run(100, &[b"12"]), Vec::<String>::new());
        assert_eq!(run(100, &[b"\r"]), Vec::<String>::new());
        let mut framer = Framer::new(100);
        framer.push(b"<13>a\n<13>b");
        assert_eq!(framer.finish(), Some(b"<13>a".to_vec()));
        assert_eq!(framer.finish(), Some(b"<13>b".to_vec()));
        assert_eq!(framer.finish(), None);
    }

    #[test]
    fn buffer_holds_only_the_unfinished_frame() {
        let mut framer = Framer::new(100);
        framer.push(b"30 <13>");
        assert_eq!((framer.next_frame(), framer.buffered()), (None, 7));
        framer.push(&BODY_30[4..]);
        assert_eq!(framer.next_frame(), Some(Ok(BODY_30.to_vec())));
        assert_eq!(framer.buffered(), 0);
        for _ in 0..10_000 {
            framer.push(b"<13>hel");
            assert_eq!(framer.next_frame(), None);
            framer.push(b"lo\n<1");
            assert_eq!(framer.next_frame(), Some(Ok(b"<13>hello".to_vec())));
            assert_eq!(framer.next_frame(), None);
            framer.push(b"4>x\n");
            assert_eq!(framer.next_frame(), Some(Ok(b"<14>x".to_vec())));
        }
        assert!(framer.buf.len() < 64, "{} bytes kept", framer.buf.len());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300), now in proptest::prelude::any::<i64>()) {
            let got = parse(&bytes, now);
            proptest::prop_assert!(got.fields.contains_key("message"));
        }

        #[test]
        fn syslog_shaped_text_parses_without_panic(line in "<[0-9a]{0,4}>?1? ?(Oct|Feb) [ 0-9]{1,3} [0-9:. ]{0,14}[a-z\\[\\]:\"=\\\\@ -]{0,40}") {
            parse(line.as_bytes(), 0);
        }

        #[test]
        fn framing_does_not_depend_on_segmentation(
            pieces in proptest::collection::vec(proptest::sample::select(vec![&b"<13>a\n"[..], b"5 <1>x", b"12", b"\0", b"\r\n", b" ", b"zz", b"9"]), 0..30),
            cuts in proptest::collection::vec(0usize..200, 0..8),
        ) {
            let stream = pieces.concat();
            let mut cuts: Vec<usize> = cuts.into_iter().filter(|&c| c <= stream.len()).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut from = 0;
            for cut in cuts.into_iter().chain([stream.len()]) {
                chunks.push(&stream[from..cut]);
                from = cut;
            }
            // Which error is seen first may differ; that one is seen may not.
            let norm = |frames: Vec<String>| frames.into_iter().map(|f| if f.starts_with("error") { "error".to_string() } else { f }).collect::<Vec<_>>();
            proptest::prop_assert_eq!(norm(run(16, &chunks)), norm(run(16, &[&stream])));
        }
    }
}
