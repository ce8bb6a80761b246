//! GELF 1.1 over UDP (compat-spec 6.6): chunk reassembly, the gzip / zlib /
//! plain codecs picked by a payload's first bytes, and a GELF JSON document
//! mapped to event fields. Pure: bytes and instants in, fields or a small
//! error out; no I/O, no clock, no panics on any input, every output bounded.
//!
//! It deliberately does not own the socket, the clock, the counters or the
//! warnings (`logs::listener` does), nor GELF over TCP / HTTP, whose framing
//! (NUL-delimited plain JSON, `Content-Encoding`) belongs to those listeners;
//! they hand each message to [`decompress`] / [`to_fields`].

use std::borrow::Cow;
use std::collections::VecDeque;
use std::io::Read;
use std::time::{Duration, Instant};

use foldhash::{HashMap, HashMapExt};
use serde_json::Value;

use crate::logs::event::{Fields, Parsed};
use crate::telemetry::logging::excerpt;

/// The first two bytes of a chunk (compat-spec 6.6).
const CHUNK_MAGIC: [u8; 2] = [0x1e, 0x0f];

/// A chunk header: the magic, an 8-byte message id, the sequence number and
/// the sequence count, one byte each.
const CHUNK_HEADER: usize = 12;

/// The most chunks a message may have: GELF 1.1 caps the sequence count at 128
/// (Graylog rejects more), so a sender cannot make us hold 255 parts.
const MAX_CHUNKS: u8 = 128;

/// The first epoch second we refuse, 10000-01-01: events are stored with a
/// four-digit year, and anything past it is a sender bug, not a date.
const MAX_SECONDS: f64 = 253_402_300_800.0;

/// The level of a message that gives none: GELF 1.1 says 1 (ALERT), not 6
/// (compat-spec 6.6 and 10.12).
const DEFAULT_LEVEL: u64 = 1;

/// Why a datagram, a chunk or a GELF document was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GelfError {
    #[error("gelf payload is empty")]
    Empty,
    #[error("unknown gelf payload magic {magic:02x?} in {payload:?} (expected gzip, zlib, a chunk or json)")]
    UnknownMagic { magic: Vec<u8>, payload: String },
    #[error("gelf message is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("cannot decompress gelf {codec} payload: {reason}")]
    Decompress { codec: &'static str, reason: String },
    #[error("bad gelf chunk {chunk:?}: {reason}")]
    BadChunk { reason: &'static str, chunk: String },
    #[error("cannot parse gelf json {payload:?}: {reason}")]
    Json { reason: String, payload: String },
    #[error("gelf message {payload:?} is not a json object")]
    NotAnObject { payload: String },
    #[error("gelf message {payload:?} has no short_message (a non-empty string)")]
    MissingShortMessage { payload: String },
    #[error("gelf message {payload:?} has no host (a non-empty string)")]
    MissingHost { payload: String },
    #[error("cannot parse gelf timestamp {timestamp:?} (expected epoch seconds)")]
    BadTimestamp { timestamp: String },
    #[error("gelf message {payload:?} has more than {max} fields")]
    TooManyFields { max: usize, payload: String },
}

/// Decompresses one complete GELF payload by its first bytes: gzip `1f 8b`,
/// zlib `78 01/5e/9c/da`, plain `{` (leading whitespace allowed); anything else
/// is an error. The output is bounded by `max` bytes (error past it), so a
/// zip bomb costs at most `max + 1` bytes of memory.
pub fn decompress(payload: &[u8], max: usize) -> Result<Cow<'_, [u8]>, GelfError> {
    match payload {
        [0x1f, 0x8b, ..] => inflate(flate2::read::GzDecoder::new(payload), "gzip", max).map(Cow::Owned),
        [0x78, 0x01 | 0x5e | 0x9c | 0xda, ..] => inflate(flate2::read::ZlibDecoder::new(payload), "zlib", max).map(Cow::Owned),
        _ => match payload.iter().find(|b| !is_json_space(**b)) {
            None => Err(GelfError::Empty),
            Some(b'{') if payload.len() > max => Err(GelfError::TooLarge { max }),
            Some(b'{') => Ok(Cow::Borrowed(payload)),
            Some(_) => Err(GelfError::UnknownMagic { magic: payload.iter().take(2).copied().collect(), payload: excerpt(payload) }),
        },
    }
}

/// Reads a decoder to its end, but never more than `max + 1` bytes: one past
/// the limit is enough to know the payload is too large.
fn inflate(reader: impl Read, codec: &'static str, max: usize) -> Result<Vec<u8>, GelfError> {
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    let mut out = Vec::new();
    reader.take(limit).read_to_end(&mut out).map_err(|e| GelfError::Decompress { codec, reason: e.to_string() })?;
    if out.len() > max {
        return Err(GelfError::TooLarge { max });
    }
    Ok(out)
}

/// JSON's four whitespace bytes (RFC 8259); serde_json refuses any other.
fn is_json_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// A GELF JSON document to event fields (compat-spec 6.6 mapping):
/// - `message` = `short_message` (required, a non-empty string), `host`
///   (required, a non-empty string), `full_message`;
/// - `ts_ms` from `timestamp` (epoch seconds, a number or a numeric string,
///   decimals truncated to milliseconds; absent or null -> `now_ms`);
/// - `level` as given, absent or null -> 1; `facility`, `line`, `file` kept;
/// - `_name` -> `name`, skipped unless the name matches `^[\w.\-]+$`, and
///   `_id` dropped; other keys (`version` among them, whatever its value) kept
///   under the same name rule; the standard fields win over an additional
///   field of the same name;
/// - values: strings and numbers as given, booleans as `"true"` / `"false"`,
///   arrays and objects as their JSON text (events are flat), nulls dropped.
///
/// More than `max_fields` fields is an error.
pub fn to_fields(json: &[u8], now_ms: i64, max_fields: usize) -> Result<Parsed, GelfError> {
    let doc: Value = serde_json::from_slice(json).map_err(|e| GelfError::Json { reason: e.to_string(), payload: excerpt(json) })?;
    let Value::Object(mut doc) = doc else {
        return Err(GelfError::NotAnObject { payload: excerpt(json) });
    };
    let mut fields = Fields::new();
    let put = |fields: &mut Fields, name: String, value: Value| {
        if fields.len() >= max_fields && !fields.contains_key(&name) {
            return Err(GelfError::TooManyFields { max: max_fields, payload: excerpt(json) });
        }
        fields.insert(name, value);
        Ok(())
    };

    match doc.remove("short_message") {
        Some(Value::String(s)) if !s.is_empty() => put(&mut fields, "message".into(), Value::String(s))?,
        _ => return Err(GelfError::MissingShortMessage { payload: excerpt(json) }),
    }
    match doc.remove("host") {
        Some(Value::String(s)) if !s.is_empty() => put(&mut fields, "host".into(), Value::String(s))?,
        _ => return Err(GelfError::MissingHost { payload: excerpt(json) }),
    }
    let ts_ms = match doc.remove("timestamp") {
        None | Some(Value::Null) => now_ms,
        Some(ts) => timestamp_ms(&ts).ok_or_else(|| GelfError::BadTimestamp { timestamp: excerpt(ts.to_string().as_bytes()) })?,
    };
    let level = doc.remove("level").and_then(flat).unwrap_or_else(|| Value::from(DEFAULT_LEVEL));
    put(&mut fields, "level".into(), level)?;
    for name in ["full_message", "facility", "line", "file"] {
        if let Some(value) = doc.remove(name).and_then(flat) {
            put(&mut fields, name.into(), value)?;
        }
    }

    for (key, value) in doc {
        let name = match key.strip_prefix('_') {
            Some("id") => continue,
            Some(name) => name,
            None => key.as_str(),
        };
        if !is_field_name(name) || fields.contains_key(name) {
            continue;
        }
        if let Some(value) = flat(value) {
            put(&mut fields, name.to_owned(), value)?;
        }
    }
    Ok(Parsed { ts_ms, fields })
}

/// Graylog's rule for an additional field's name, `^[\w.\-]*$` with Java's
/// ASCII `\w`, minus the empty name (a bare `_` would become a field "").
fn is_field_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// A value as an event stores it: flat, with booleans as strings (Graylog drops
/// them; compat-spec 6.6 keeps them) and nothing for null.
fn flat(value: Value) -> Option<Value> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(Value::String(b.to_string())),
        Value::String(_) | Value::Number(_) => Some(value),
        Value::Array(_) | Value::Object(_) => Some(Value::String(value.to_string())),
    }
}

/// Epoch milliseconds of a GELF `timestamp`: seconds as a number or a numeric
/// string, at or after the epoch and before year 10000.
fn timestamp_ms(ts: &Value) -> Option<i64> {
    let secs = match ts {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if !(0.0..MAX_SECONDS).contains(&secs) {
        return None;
    }
    // `secs * 1000.0` would turn 1.001 into 1000.999..., so read the digits of
    // the shortest decimal that round-trips (what the sender wrote, for any
    // sender that wrote at most 17 significant digits); Display never uses an
    // exponent.
    let text = secs.to_string();
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let whole: i64 = whole.parse().ok()?;
    let ms = frac
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(3)
        .try_fold(0i64, |acc, d| d.is_ascii_digit().then(|| acc * 10 + i64::from(d - b'0')))?;
    whole.checked_mul(1000)?.checked_add(ms)
}

/// Reassembles chunked GELF (compat-spec 6.6): magic `1e 0f`, an 8-byte message
/// id, a sequence number and a sequence count of 1..=128. Holds at most
/// `max_pending` incomplete messages of at most `max_message` bytes each.
pub struct Chunks {
    max_message: usize,
    max_pending: usize,
    timeout: Duration,
    messages: HashMap<[u8; 8], Pending>,
    /// Message ids in the order of their first chunk, with the generation of
    /// the entry they were queued for; entries whose message has since
    /// completed or gone are stale and skipped (and compacted away).
    order: VecDeque<([u8; 8], u64)>,
    next_generation: u64,
    /// The body bytes held by all of `messages`.
    bytes: usize,
    /// Messages evicted or timed out inside `accept`, reported by the next
    /// `expire`.
    discarded: usize,
}

/// One incomplete message.
struct Pending {
    generation: u64,
    first: Instant,
    /// One slot per sequence number.
    parts: Vec<Option<Vec<u8>>>,
    received: usize,
    bytes: usize,
}

impl Chunks {
    /// `max_message`: the largest reassembled payload; `max_pending`: most
    /// incomplete messages held (oldest evicted, counted; at least 1);
    /// `timeout`: incomplete messages are discarded this long after their first
    /// chunk (5 s per compat-spec 6.6).
    pub fn new(max_message: usize, max_pending: usize, timeout: Duration) -> Chunks {
        Chunks {
            max_message,
            max_pending: max_pending.max(1),
            timeout,
            messages: HashMap::new(),
            order: VecDeque::new(),
            next_generation: 0,
            bytes: 0,
            discarded: 0,
        }
    }

    /// One datagram. Not a chunk -> `Ok(Some(datagram bytes as-is))`. A chunk
    /// that completes its message -> `Ok(Some(the concatenated payload, in seq
    /// order))`. A chunk that doesn't -> `Ok(None)`. Bad header (short, count 0
    /// or > 128, seq >= count, count mismatch with earlier chunks) -> `Err`, the
    /// earlier chunks kept. Duplicate chunk -> ignored (`Ok(None)`). A message
    /// growing past `max_message` -> `Err`, and the message is discarded.
    pub fn accept(&mut self, datagram: &[u8], now: Instant) -> Result<Option<Vec<u8>>, GelfError> {
        if !datagram.starts_with(&CHUNK_MAGIC) {
            return Ok(Some(datagram.to_vec()));
        }
        let bad = |reason| Err(GelfError::BadChunk { reason, chunk: excerpt(datagram) });
        let Some((header, body)) = datagram.split_first_chunk::<CHUNK_HEADER>() else {
            return bad("shorter than the 12-byte chunk header");
        };
        let &[_, _, ref id @ .., seq, count] = header;
        if count == 0 || count > MAX_CHUNKS {
            return bad("sequence count is not 1..=128");
        }
        if seq >= count {
            return bad("sequence number is not below the sequence count");
        }
        let (seq, count) = (usize::from(seq), usize::from(count));

        if self.messages.get(id).is_some_and(|p| now.saturating_duration_since(p.first) >= self.timeout) {
            self.remove(id);
            self.discarded += 1;
        }
        let Some(pending) = self.messages.get_mut(id) else {
            if body.len() > self.max_message {
                return Err(GelfError::TooLarge { max: self.max_message });
            }
            if count == 1 {
                return Ok(Some(body.to_vec()));
            }
            self.start(*id, seq, count, body, now);
            return Ok(None);
        };
        if pending.parts.len() != count {
            return bad("sequence count differs from the earlier chunks of its message");
        }
        let Some(slot) = pending.parts.get_mut(seq) else {
            return bad("sequence number is not below the sequence count");
        };
        if slot.is_some() {
            return Ok(None);
        }
        if pending.bytes.saturating_add(body.len()) > self.max_message {
            self.remove(id);
            return Err(GelfError::TooLarge { max: self.max_message });
        }
        *slot = Some(body.to_vec());
        pending.received += 1;
        pending.bytes += body.len();
        self.bytes += body.len();
        if pending.received < count {
            return Ok(None);
        }
        let Some(done) = self.remove(id) else {
            return Ok(None);
        };
        let mut payload = Vec::with_capacity(done.bytes);
        for part in done.parts.into_iter().flatten() {
            payload.extend_from_slice(&part);
        }
        Ok(Some(payload))
    }

    /// Discards messages incomplete for longer than the timeout; returns how
    /// many were discarded (the caller counts them as dropped), including those
    /// evicted for `max_pending` or found timed out by `accept` since the last
    /// call, so that every discarded message is counted once, here.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.messages.len();
        let timeout = self.timeout;
        let mut freed = 0;
        self.messages.retain(|_, p| {
            let keep = now.saturating_duration_since(p.first) < timeout;
            if !keep {
                freed += p.bytes;
            }
            keep
        });
        self.bytes -= freed;
        self.compact();
        before - self.messages.len() + std::mem::take(&mut self.discarded)
    }

    /// Incomplete messages held, and the bytes they hold.
    pub fn pending(&self) -> (usize, usize) {
        (self.messages.len(), self.bytes)
    }

    /// Holds the first chunk of a new message, evicting the oldest messages to
    /// stay within `max_pending`.
    fn start(&mut self, id: [u8; 8], seq: usize, count: usize, body: &[u8], now: Instant) {
        while self.messages.len() >= self.max_pending {
            let Some((old, generation)) = self.order.pop_front() else {
                break;
            };
            if self.messages.get(&old).is_some_and(|p| p.generation == generation) {
                self.remove(&old);
                self.discarded += 1;
            }
        }
        let mut parts = vec![None; count];
        if let Some(slot) = parts.get_mut(seq) {
            *slot = Some(body.to_vec());
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.messages.insert(id, Pending { generation, first: now, parts, received: 1, bytes: body.len() });
        self.bytes += body.len();
        self.order.push_back((id, generation));
        // Completed messages leave stale ids behind; keep the queue within a
        // constant factor of the live messages.
        if self.order.len() > 2 * self.messages.len() + 64 {
            self.compact();
        }
    }

    fn remove(&mut self, id: &[u8; 8]) -> Option<Pending> {
        let pending = self.messages.remove(id)?;
        self.bytes -= pending.bytes;
        Some(pending)
    }

    /// Drops the stale entries of `order`.
    fn compact(&mut self) {
        let messages = &self.messages;
        self.order.retain(|(id, generation)| messages.get(id).is_some_and(|p| p.generation == *generation));
    }
}

/// One UDP datagram end to end: chunks, decompress, [`to_fields`].
/// `Ok(None)` while a chunked message is incomplete.
pub fn datagram(
    chunks: &mut Chunks,
    datagram: &[u8],
    now: Instant,
    now_ms: i64,
    max_message: usize,
    max_fields: usize,
) -> Result<Option<Parsed>, GelfError> {
    // Only chunks need a copy: a whole datagram is decoded where it lies.
    let reassembled;
    let payload = if datagram.starts_with(&CHUNK_MAGIC) {
        match chunks.accept(datagram, now)? {
            Some(payload) => {
                reassembled = payload;
                &reassembled[..]
            }
            None => return Ok(None),
        }
    } else {
        datagram
    };
    let json = decompress(payload, max_message)?;
    to_fields(&json, now_ms, max_fields).map(Some)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::{GzEncoder, ZlibEncoder};
    use serde_json::json;

    use super::*;

    const NOW_MS: i64 = 1_700_000_000_000;
    const MAX: usize = 1 << 20;
    const FIVE_S: Duration = Duration::from_secs(5);

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zlib(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = ZlibEncoder::new(Vec::new(), Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn chunk(id: u64, seq: u8, count: u8, body: &[u8]) -> Vec<u8> {
        let mut d = CHUNK_MAGIC.to_vec();
        d.extend_from_slice(&id.to_be_bytes());
        d.extend_from_slice(&[seq, count]);
        d.extend_from_slice(body);
        d
    }

    /// A GELF document to its fields (as JSON) and its timestamp.
    fn check(doc: &str, expected: serde_json::Value, ts_ms: i64) {
        let parsed = to_fields(doc.as_bytes(), NOW_MS, 64).unwrap_or_else(|e| panic!("{doc}: {e}"));
        assert_eq!(Value::Object(parsed.fields), expected, "{doc}");
        assert_eq!(parsed.ts_ms, ts_ms, "{doc}");
    }

    fn check_err(doc: &str, expected: &str) {
        let err = to_fields(doc.as_bytes(), NOW_MS, 64).unwrap_err().to_string();
        assert!(err.contains(expected), "{doc}: {err}");
    }

    #[test]
    fn mapping() {
        check(r#"{"version":"1.1","host":"h","short_message":"hi"}"#, json!({"message":"hi","host":"h","level":1,"version":"1.1"}), NOW_MS);
        check(r#"{"host":"h","short_message":"hi"}"#, json!({"message":"hi","host":"h","level":1}), NOW_MS);
        check(r#"{"version":"1.0","host":"h","short_message":"hi"}"#, json!({"message":"hi","host":"h","level":1,"version":"1.0"}), NOW_MS);
        check(r#"{"host":"h","short_message":"hi","level":6}"#, json!({"message":"hi","host":"h","level":6}), NOW_MS);
        check(r#"{"host":"h","short_message":"hi","level":null}"#, json!({"message":"hi","host":"h","level":1}), NOW_MS);
        check(
            r#"{"host":"h","short_message":"hi","full_message":"hi\nthere","facility":"app","line":12,"file":"/x.py"}"#,
            json!({"message":"hi","host":"h","level":1,"full_message":"hi\nthere","facility":"app","line":12,"file":"/x.py"}),
            NOW_MS,
        );
        check(
            r#"{"host":"h","short_message":"hi","timestamp":1385053862.3072}"#,
            json!({"message":"hi","host":"h","level":1}),
            1385053862307,
        );
        check(r#"{"host":"h","short_message":"hi","timestamp":1385053862}"#, json!({"message":"hi","host":"h","level":1}), 1385053862000);
        check(r#"{"host":"h","short_message":"hi","timestamp":1.001}"#, json!({"message":"hi","host":"h","level":1}), 1001);
        check(
            r#"{"host":"h","short_message":"hi","timestamp":"1385053862.5"}"#,
            json!({"message":"hi","host":"h","level":1}),
            1385053862500,
        );
        check(r#"{"host":"h","short_message":"hi","timestamp":null}"#, json!({"message":"hi","host":"h","level":1}), NOW_MS);
        check(
            r#"{"host":"h","short_message":"hi","_user_id":9001,"_some.info":"foo","_a-b":1.5,"_id":"x","_ok":true,"_no":false,"_nil":null}"#,
            json!({"message":"hi","host":"h","level":1,"user_id":9001,"some.info":"foo","a-b":1.5,"ok":"true","no":"false"}),
            NOW_MS,
        );
        check(r#"{"host":"h","short_message":"hi","_na me":1,"_":2,"_é":3,"@x":4}"#, json!({"message":"hi","host":"h","level":1}), NOW_MS);
        check(
            r#"{"host":"h","short_message":"hi","_list":[1,"a"],"_obj":{"k":true}}"#,
            json!({"message":"hi","host":"h","level":1,"list":"[1,\"a\"]","obj":"{\"k\":true}"}),
            NOW_MS,
        );
        check(
            r#"{"host":"h","short_message":"hi","_host":"other","_message":"m","_level":3}"#,
            json!({"message":"hi","host":"h","level":1}),
            NOW_MS,
        );
        check(
            " \n{\"host\":\"h\",\"short_message\":\"hi\",\"plain\":\"kept\"}",
            json!({"message":"hi","host":"h","level":1,"plain":"kept"}),
            NOW_MS,
        );
    }

    #[test]
    fn bad_documents() {
        check_err(r#"{"host":"h"}"#, "no short_message");
        check_err(r#"{"host":"h","short_message":""}"#, "no short_message");
        check_err(r#"{"host":"h","short_message":12}"#, "no short_message");
        check_err(r#"{"short_message":"hi"}"#, "no host");
        check_err(r#"{"short_message":"hi","host":""}"#, "no host");
        check_err(r#"{"host":"h","short_message":"hi","timestamp":"yesterday"}"#, "cannot parse gelf timestamp \"\\\"yesterday\\\"\"");
        check_err(r#"{"host":"h","short_message":"hi","timestamp":-1}"#, "cannot parse gelf timestamp");
        check_err(r#"{"host":"h","short_message":"hi","timestamp":1e300}"#, "cannot parse gelf timestamp");
        check_err(r#"{"host":"h","short_message":"hi","timestamp":true}"#, "cannot parse gelf timestamp");
        check_err(r#"[1,2]"#, "is not a json object");
        check_err(r#"{"host":"#, "cannot parse gelf json \"{\\\"host\\\":\"");
        check_err("", "cannot parse gelf json");
        check_err(&format!("{{\"x\":\"{}", "a".repeat(1000)), "…");
    }

    #[test]
    fn max_fields() {
        let doc = br#"{"host":"h","short_message":"hi","_a":1,"_b":2}"#;
        assert_eq!(to_fields(doc, NOW_MS, 5).unwrap().fields.len(), 5);
        assert!(matches!(to_fields(doc, NOW_MS, 4), Err(GelfError::TooManyFields { max: 4, .. })));
        assert!(matches!(to_fields(doc, NOW_MS, 0), Err(GelfError::TooManyFields { max: 0, .. })));
    }

    #[test]
    fn codecs() {
        let doc = br#"{"version":"1.1","host":"h","short_message":"hi","level":3}"#;
        let plain = [b" \t\r\n".as_slice(), doc].concat();
        let mut payloads = vec![doc.to_vec(), plain, gzip(doc)];
        for (level, magic) in [(1, 0x01), (3, 0x5e), (6, 0x9c), (9, 0xda)] {
            let z = zlib(doc, level);
            assert_eq!(z[..2], [0x78, magic]);
            payloads.push(z);
        }
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        for p in payloads {
            // Plain JSON comes back as-is, leading whitespace and all.
            assert_eq!(decompress(&p, MAX).unwrap().trim_ascii_start(), &doc[..], "{p:02x?}");
            let parsed = datagram(&mut chunks, &p, Instant::now(), NOW_MS, MAX, 64).unwrap().unwrap();
            assert_eq!(Value::Object(parsed.fields), json!({"message":"hi","host":"h","level":3,"version":"1.1"}));
        }
        assert!(matches!(decompress(doc, MAX), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn bad_payloads() {
        let doc = br#"{"host":"h","short_message":"hi"}"#;
        assert_eq!(decompress(b"", MAX), Err(GelfError::Empty));
        assert_eq!(decompress(b" \n", MAX), Err(GelfError::Empty));
        assert!(matches!(decompress(b"hello", MAX), Err(GelfError::UnknownMagic { .. })));
        assert!(matches!(decompress(&[0x78, 0x00, 1, 2], MAX), Err(GelfError::UnknownMagic { .. })));
        assert!(matches!(decompress(b"\x0c{}", MAX), Err(GelfError::UnknownMagic { .. })));
        assert!(matches!(decompress(doc, doc.len() - 1), Err(GelfError::TooLarge { .. })));
        let gz = gzip(doc);
        assert!(matches!(decompress(&gz[..gz.len() / 2], MAX), Err(GelfError::Decompress { codec: "gzip", .. })));
        assert!(matches!(decompress(&[0x1f, 0x8b], MAX), Err(GelfError::Decompress { .. })));
        assert!(matches!(decompress(&[0x78, 0x9c, 0xff, 0xff], MAX), Err(GelfError::Decompress { codec: "zlib", .. })));
        let msg = decompress(b"hello", MAX).unwrap_err().to_string();
        assert_eq!(msg, "unknown gelf payload magic [68, 65] in \"hello\" (expected gzip, zlib, a chunk or json)");
    }

    #[test]
    fn zip_bomb_is_refused() {
        let zeros = vec![0u8; 10 << 20];
        let bombs = [gzip(&zeros), zlib(&zeros, 9)];
        for bomb in &bombs {
            assert!(bomb.len() < 64 << 10, "{}", bomb.len());
            assert_eq!(decompress(bomb, 1 << 20), Err(GelfError::TooLarge { max: 1 << 20 }));
            assert_eq!(decompress(bomb, 10 << 20).unwrap().len(), 10 << 20);
        }
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        assert_eq!(datagram(&mut chunks, &bombs[0], Instant::now(), NOW_MS, 1 << 20, 64), Err(GelfError::TooLarge { max: 1 << 20 }));
    }

    #[test]
    fn chunks_out_of_order() {
        let doc = br#"{"host":"h","short_message":"chunked"}"#;
        let parts = [&doc[..10], &doc[10..20], &doc[20..]];
        let t = Instant::now();
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        assert_eq!(chunks.accept(&chunk(7, 2, 3, parts[2]), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(7, 0, 3, parts[0]), t), Ok(None));
        assert_eq!(chunks.pending(), (1, parts[0].len() + parts[2].len()));
        assert_eq!(chunks.accept(&chunk(7, 1, 3, parts[1]), t), Ok(Some(doc.to_vec())));
        assert_eq!(chunks.pending(), (0, 0));
        assert_eq!(chunks.expire(t + FIVE_S), 0);
    }

    #[test]
    fn duplicate_chunk_is_ignored() {
        let t = Instant::now();
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        assert_eq!(chunks.accept(&chunk(1, 0, 2, b"ab"), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(1, 0, 2, b"XX"), t), Ok(None));
        assert_eq!(chunks.pending(), (1, 2));
        assert_eq!(chunks.accept(&chunk(1, 1, 2, b"cd"), t), Ok(Some(b"abcd".to_vec())));
    }

    #[test]
    fn missing_chunk_expires_after_five_seconds() {
        let t = Instant::now();
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        assert_eq!(chunks.accept(&chunk(1, 0, 3, b"ab"), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(1, 2, 3, b"ef"), t + Duration::from_secs(1)), Ok(None));
        assert_eq!(chunks.expire(t + Duration::from_millis(4999)), 0);
        assert_eq!(chunks.pending(), (1, 4));
        assert_eq!(chunks.expire(t + FIVE_S), 1);
        assert_eq!(chunks.pending(), (0, 0));
        assert_eq!(chunks.expire(t + FIVE_S * 2), 0);
        // The late chunk starts a new message rather than completing the old one.
        assert_eq!(chunks.accept(&chunk(1, 1, 3, b"cd"), t + FIVE_S), Ok(None));
        assert_eq!(chunks.pending(), (1, 2));
    }

    #[test]
    fn timed_out_message_is_restarted_by_accept() {
        let t = Instant::now();
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        assert_eq!(chunks.accept(&chunk(1, 0, 2, b"ab"), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(1, 1, 2, b"cd"), t + FIVE_S), Ok(None));
        assert_eq!(chunks.pending(), (1, 2));
        assert_eq!(chunks.expire(t + FIVE_S), 1);
        assert_eq!(chunks.accept(&chunk(1, 0, 2, b"ab"), t + FIVE_S), Ok(Some(b"abcd".to_vec())));
    }

    #[test]
    fn bad_chunk_headers() {
        let t = Instant::now();
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        let bad = |r: Result<Option<Vec<u8>>, GelfError>, why: &str| match r {
            Err(GelfError::BadChunk { reason, .. }) => assert!(reason.contains(why), "{reason}"),
            other => panic!("{other:?}"),
        };
        bad(chunks.accept(&chunk(1, 0, 129, b"x"), t), "1..=128");
        bad(chunks.accept(&chunk(1, 0, 0, b"x"), t), "1..=128");
        bad(chunks.accept(&chunk(1, 3, 3, b"x"), t), "below");
        bad(chunks.accept(&chunk(1, 200, 3, b"x"), t), "below");
        bad(chunks.accept(&[0x1e, 0x0f, 1, 2, 3], t), "shorter");
        assert_eq!(chunks.accept(&chunk(1, 0, 128, b"x"), t), Ok(None));
        bad(chunks.accept(&chunk(1, 1, 3, b"y"), t), "differs");
        assert_eq!(chunks.pending(), (1, 1));
        let msg = chunks.accept(&chunk(1, 0, 129, b"x"), t).unwrap_err().to_string();
        assert!(msg.starts_with("bad gelf chunk \"\\u{1e}\\u{f}"), "{msg}");
    }

    #[test]
    fn single_chunk_and_non_chunks_pass_through() {
        let t = Instant::now();
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        assert_eq!(chunks.accept(&chunk(1, 0, 1, b"{}"), t), Ok(Some(b"{}".to_vec())));
        assert_eq!(chunks.accept(b"{\"a\":1}", t), Ok(Some(b"{\"a\":1}".to_vec())));
        assert_eq!(chunks.accept(&chunk(2, 0, 1, b""), t), Ok(Some(Vec::new())));
        assert_eq!(chunks.pending(), (0, 0));
    }

    #[test]
    fn reassembled_message_is_bounded() {
        let t = Instant::now();
        let mut chunks = Chunks::new(5, 16, FIVE_S);
        assert_eq!(chunks.accept(&chunk(1, 0, 1, b"123456"), t), Err(GelfError::TooLarge { max: 5 }));
        assert_eq!(chunks.accept(&chunk(1, 0, 3, b"123"), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(1, 1, 3, b"456"), t), Err(GelfError::TooLarge { max: 5 }));
        assert_eq!(chunks.pending(), (0, 0));
        assert_eq!(chunks.accept(&chunk(1, 2, 3, b"78"), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(1, 0, 3, b"12"), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(1, 1, 3, b"3"), t), Ok(Some(b"12378".to_vec())));
    }

    #[test]
    fn oldest_pending_is_evicted() {
        let t = Instant::now();
        let ms = Duration::from_millis;
        let mut chunks = Chunks::new(MAX, 2, FIVE_S);
        assert_eq!(chunks.accept(&chunk(1, 0, 2, b"a"), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(2, 0, 2, b"bb"), t + ms(1)), Ok(None));
        assert_eq!(chunks.accept(&chunk(1, 0, 2, b"a"), t + ms(2)), Ok(None)); // duplicate: 1 stays the oldest
        assert_eq!(chunks.accept(&chunk(3, 0, 2, b"ccc"), t + ms(3)), Ok(None));
        assert_eq!(chunks.pending(), (2, 5));
        // 1 is gone: its second chunk starts a new message, evicting 2.
        assert_eq!(chunks.accept(&chunk(1, 1, 2, b"A"), t + ms(4)), Ok(None));
        assert_eq!(chunks.pending(), (2, 4));
        assert_eq!(chunks.accept(&chunk(3, 1, 2, b"C"), t + ms(5)), Ok(Some(b"cccC".to_vec())));
        assert_eq!(chunks.pending(), (1, 1));
        assert_eq!(chunks.expire(t + ms(6)), 2, "two evictions");
        assert_eq!(chunks.expire(t + ms(7)), 0);
        // Many completed messages do not grow the queue without bound.
        for id in 10..1000 {
            assert_eq!(chunks.accept(&chunk(id, 0, 2, b"x"), t), Ok(None));
            assert!(chunks.accept(&chunk(id, 1, 2, b"y"), t).unwrap().is_some());
        }
        assert!(chunks.order.len() <= 2 * chunks.messages.len() + 65, "{}", chunks.order.len());
        // max_pending 0 still reassembles.
        let mut chunks = Chunks::new(MAX, 0, FIVE_S);
        assert_eq!(chunks.accept(&chunk(1, 0, 2, b"a"), t), Ok(None));
        assert_eq!(chunks.accept(&chunk(1, 1, 2, b"b"), t), Ok(Some(b"ab".to_vec())));
    }

    #[test]
    fn compressed_payload_in_chunks() {
        let doc = br#"{"version":"1.1","host":"h","short_message":"zipped","timestamp":1385053862.3072,"_id":"drop","_k":"v"}"#;
        let expected = json!({"message":"zipped","host":"h","level":1,"version":"1.1","k":"v"});
        let t = Instant::now();
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        for payload in [gzip(doc), zlib(doc, 6), doc.to_vec()] {
            let third = payload.len() / 3;
            let parts = [&payload[..third], &payload[third..2 * third], &payload[2 * third..]];
            assert_eq!(datagram(&mut chunks, &chunk(9, 1, 3, parts[1]), t, NOW_MS, MAX, 64), Ok(None));
            assert_eq!(datagram(&mut chunks, &chunk(9, 2, 3, parts[2]), t, NOW_MS, MAX, 64), Ok(None));
            let parsed = datagram(&mut chunks, &chunk(9, 0, 3, parts[0]), t, NOW_MS, MAX, 64).unwrap().unwrap();
            assert_eq!(Value::Object(parsed.fields), expected);
            assert_eq!(parsed.ts_ms, 1385053862307);
        }
        // A chunk inside a chunk is not a codec.
        let inner = chunk(5, 0, 1, doc);
        assert!(matches!(datagram(&mut chunks, &chunk(6, 0, 1, &inner), t, NOW_MS, MAX, 64), Err(GelfError::UnknownMagic { .. })));
    }

    #[test]
    fn datagram_errors() {
        let t = Instant::now();
        let mut chunks = Chunks::new(MAX, 16, FIVE_S);
        let run = |chunks: &mut Chunks, d: &[u8]| datagram(chunks, d, t, NOW_MS, MAX, 64);
        assert!(matches!(run(&mut chunks, br#"{"host":"h"}"#), Err(GelfError::MissingShortMessage { .. })));
        assert!(matches!(run(&mut chunks, &gzip(br#"{"host":"h"}"#)), Err(GelfError::MissingShortMessage { .. })));
        assert!(matches!(run(&mut chunks, b"garbage"), Err(GelfError::UnknownMagic { .. })));
        assert!(matches!(run(&mut chunks, &chunk(1, 0, 129, b"{}")), Err(GelfError::BadChunk { .. })));
    }

    #[test]
    fn no_panic_on_garbage() {
        // Every prefix and single-byte corruption of each codec's payload.
        let doc = br#"{"version":"1.1","host":"h","short_message":"hi","timestamp":1.5,"_a":[1,{"b":null}]}"#;
        let t = Instant::now();
        let mut chunks = Chunks::new(256, 4, FIVE_S);
        for payload in [doc.to_vec(), gzip(doc), zlib(doc, 9), chunk(3, 0, 2, doc), chunk(3, 1, 2, &gzip(doc))] {
            for cut in 0..=payload.len() {
                let _ = datagram(&mut chunks, &payload[..cut], t, NOW_MS, 256, 8);
            }
            for i in 0..payload.len() {
                for flip in [0x01, 0x80, 0xff] {
                    let mut p = payload.clone();
                    p[i] ^= flip;
                    let _ = datagram(&mut chunks, &p, t, NOW_MS, 256, 8);
                }
            }
        }
        let _ = chunks.expire(t + FIVE_S);
        assert_eq!(chunks.pending(), (0, 0));
    }
}
