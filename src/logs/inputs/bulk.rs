//! The Elasticsearch `_bulk` API, its pure half (compat-spec 6.8): an NDJSON
//! body (already decompressed) in, the list of actions out; per-item outcomes
//! in, the response body out. No I/O, no panics on any input.
//!
//! What is a whole-request error and what is one item's error follows
//! Elasticsearch: a body whose action lines cannot be read (not JSON, an
//! unknown action, a missing source line) fails as a whole with HTTP 400,
//! while a source line that is not a JSON object, or an action with no index,
//! fails that item alone and the others go on. Where ES is stricter than its
//! clients need, instantops accepts: a missing final newline, blank lines,
//! unknown metadata keys (`_type`, `pipeline`, `routing`, `require_alias`,
//! `if_seq_no`, ...), which are ignored.
//!
//! Deliberately not here: indexing, id conflicts, back-pressure (the HTTP
//! handler decides each item's [`Outcome`]), decompression and headers.

use crate::logs::event::{Decoded, normalize};
use crate::logs::json::{Json, Object};
use crate::splitmix::SplitMix;
use crate::telemetry::logging::excerpt;

/// A bulk action, the key of its action line and of its response item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Index,
    Create,
    Update,
    Delete,
}

impl Op {
    /// The action's name on the wire: `index`, `create`, `update`, `delete`.
    pub fn name(self) -> &'static str {
        match self {
            Op::Index => "index",
            Op::Create => "create",
            Op::Update => "update",
            Op::Delete => "delete",
        }
    }

    fn from_name(name: &str) -> Option<Op> {
        match name {
            "index" => Some(Op::Index),
            "create" => Some(Op::Create),
            "update" => Some(Op::Update),
            "delete" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// One action of a bulk body, its source read in place.
#[derive(Debug, PartialEq)]
pub struct Action<'a> {
    pub op: Op,
    /// `_index` from the action line, else the URL's index; None when neither
    /// (that item fails with 400). An empty name counts as none.
    pub index: Option<String>,
    /// `_id` from the action line (a number is taken as its text), or None:
    /// the caller generates one for index/create, and fails an update or a
    /// delete without one (ES: 400 `action_request_validation_exception`).
    /// An empty `_id` counts as none.
    pub id: Option<String>,
    /// The source line: for index/create the document; for update the
    /// `{"doc":..,"doc_as_upsert":..}` body; None for delete.
    /// Err(reason) when the source line is not a JSON object (that item alone
    /// fails with 400 document_parsing_exception; the others go on).
    pub source: Option<Result<Object<'a>, String>>,
}

/// Why a whole bulk request is refused (HTTP 400 illegal_argument_exception,
/// see [`request_error`]). Messages about an action line keep Elasticsearch's
/// wording (`Malformed action/metadata line [n], ...`, lines counted from 1,
/// blank ones included) because that is what users of ES clients search for.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum BulkError {
    #[error("bulk request has no actions (the body is empty or blank)")]
    Empty,
    #[error("Malformed action/metadata line [{line}], {reason} in {text:?}")]
    Malformed { line: usize, text: String, reason: String },
    #[error("Malformed action/metadata line [{line}], expected one of [create, delete, index, update] but found [{action}]")]
    UnknownAction { line: usize, action: String },
    #[error("bulk {op} action on line [{line}] has no source line")]
    MissingSource { line: usize, op: &'static str },
    #[error("bulk request has more than {max} actions")]
    TooManyActions { max: usize },
}

/// Parses a bulk body. Lines end with \n, optionally \r\n; blank lines are
/// skipped; a missing final newline is accepted. `url_index` is the `{index}`
/// of `/{index}/_bulk`. `_type`, `pipeline`, `routing`, `require_alias`,
/// `if_seq_no`, etc. are ignored.
pub fn parse<'a>(body: &'a [u8], url_index: Option<&str>, max_actions: usize) -> Result<Vec<Action<'a>>, BulkError> {
    // A UTF-8 byte order mark is not JSON; some Windows shippers write one.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let url_index = url_index.filter(|i| !i.is_empty());
    let mut lines = body
        .split(|b| *b == b'\n')
        .enumerate()
        .map(|(n, l)| (n + 1, l.strip_suffix(b"\r").unwrap_or(l)))
        .filter(|(_, l)| !l.iter().all(u8::is_ascii_whitespace));
    // Two lines an action at most; counted first so the list is not regrown
    // (a `_bulk` request is hundreds to thousands of actions).
    let mut actions = Vec::with_capacity((body.iter().filter(|&&b| b == b'\n').count() / 2 + 1).min(max_actions));
    while let Some((line, text)) = lines.next() {
        if actions.len() == max_actions {
            return Err(BulkError::TooManyActions { max: max_actions });
        }
        let meta = action_line(line, text)?;
        let source = match meta.op {
            Op::Delete => None,
            op => match lines.next() {
                Some((source_line, source)) => Some(source_object(source_line, source)),
                None => return Err(BulkError::MissingSource { line, op: op.name() }),
            },
        };
        actions.push(Action { op: meta.op, index: meta.index.or_else(|| url_index.map(str::to_string)), id: meta.id, source });
    }
    if actions.is_empty() {
        return Err(BulkError::Empty);
    }
    Ok(actions)
}

/// What an action line says.
struct Meta {
    op: Op,
    index: Option<String>,
    id: Option<String>,
}

/// Reads `{"<op>":{"_index":..,"_id":..,...}}`.
fn action_line(line: usize, text: &[u8]) -> Result<Meta, BulkError> {
    let malformed = |reason: String| BulkError::Malformed { line, text: excerpt(text), reason };
    let object: Object =
        serde_json::from_slice(text).map_err(|e| malformed(format!("expected a JSON object like {{\"index\":{{}}}}: {e}")))?;
    let mut entries = object.into_iter();
    let (name, metadata) = match (entries.next(), entries.next()) {
        (Some(entry), None) => entry,
        (None, _) => return Err(malformed("expected an action but found an empty object".into())),
        (Some(_), Some(_)) => return Err(malformed("expected exactly one action but found several keys".into())),
    };
    let Some(op) = Op::from_name(&name) else {
        return Err(BulkError::UnknownAction { line, action: excerpt(name.as_bytes()) });
    };
    let Json::Object(metadata) = metadata else {
        return Err(malformed(format!("expected an object of metadata after [{name}]")));
    };
    let field = |key: &str| match metadata.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::String(s)) if s.is_empty() => Ok(None),
        Some(Json::String(s)) => Ok(Some(s.to_string())),
        Some(Json::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(malformed(format!("expected a simple value for field [{key}]"))),
    };
    Ok(Meta { op, index: field("_index")?, id: field("_id")? })
}

/// A source line as a JSON object, or why it is not one.
fn source_object(line: usize, text: &[u8]) -> Result<Object<'_>, String> {
    serde_json::from_slice(text).map_err(|e| format!("failed to parse source line [{line}] {:?}: {e}", excerpt(text)))
}

/// An index or create action's document as the event it becomes: a
/// `timestamp` (Vector's and Fluent Bit's default name) is taken as
/// `@timestamp` when there is none, logstash's event rules apply
/// ([`normalize`]), and `_index` and `_id` become fields.
pub fn document<'a>(mut source: Object<'a>, index: &'a str, id: &'a str, now_ms: i64) -> Decoded<'a> {
    if !source.contains_key("@timestamp")
        && let Some(ts) = source.get("timestamp").filter(|v| v.as_str().is_some()).cloned()
    {
        source.insert("@timestamp", ts);
    }
    let mut parsed = normalize(source, now_ms);
    parsed.fields.insert("_index", Json::string(index));
    parsed.fields.insert("_id", Json::string(id));
    parsed
}

/// The outcome of one item, decided by the caller.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// 201 "created".
    Created,
    /// 200 "updated".
    Updated,
    /// 200 "deleted".
    Deleted,
    /// 404 "not_found": a delete of a missing id. Not an error, as in ES. An
    /// update of a missing id without doc_as_upsert is a `Failed` 404
    /// document_missing_exception instead.
    NotFound,
    /// An item error, e.g. 409 version_conflict_engine_exception, 400
    /// document_parsing_exception, 429 es_rejected_execution_exception.
    Failed { status: u16, kind: String, reason: String },
}

/// Renders `{"took":..,"errors":..,"items":[{"<op>":{"_index":..,"_id":..,"_version":1,"result":..,"_shards":{"total":1,"successful":1,"failed":0},"_seq_no":n,"_primary_term":1,"status":..}}, ...]}`
/// (errors items carry `"status"` and `"error":{"type":..,"reason":..,"index":..}`,
/// no result). `errors` is true iff any item failed. Items are in request order.
///
/// Each item that did not fail takes the next `_seq_no` counting from
/// `first_seq` (as in ES, a failed operation gets none), so a caller keeping a
/// counter advances it by the number of items that are not `Failed`.
///
/// Written by hand rather than through `serde_json::Map` to keep ES's key
/// order and compact form: some shippers (older Fluent Bit) look for the
/// literal `"errors":true` in the body.
pub fn response(took_ms: u64, items: &[(Op, String, String, Outcome)], first_seq: u64) -> String {
    let errors = items.iter().any(|(.., outcome)| matches!(outcome, Outcome::Failed { .. }));
    let mut out = String::with_capacity(64 + items.len() * 200);
    out.push_str("{\"took\":");
    out.push_str(&took_ms.to_string());
    out.push_str(",\"errors\":");
    out.push_str(if errors { "true" } else { "false" });
    out.push_str(",\"items\":[");
    let mut seq = first_seq;
    for (n, (op, index, id, outcome)) in items.iter().enumerate() {
        if n > 0 {
            out.push(',');
        }
        out.push_str("{\"");
        out.push_str(op.name());
        out.push_str("\":{\"_index\":");
        push_json_string(&mut out, index);
        out.push_str(",\"_id\":");
        push_json_string(&mut out, id);
        let (result, status) = match outcome {
            Outcome::Created => ("created", 201),
            Outcome::Updated => ("updated", 200),
            Outcome::Deleted => ("deleted", 200),
            Outcome::NotFound => ("not_found", 404),
            Outcome::Failed { status, kind, reason } => {
                out.push_str(",\"status\":");
                out.push_str(&status.to_string());
                out.push_str(",\"error\":{\"type\":");
                push_json_string(&mut out, kind);
                out.push_str(",\"reason\":");
                push_json_string(&mut out, reason);
                out.push_str(",\"index\":");
                push_json_string(&mut out, index);
                out.push_str("}}}");
                continue;
            }
        };
        out.push_str(",\"_version\":1,\"result\":\"");
        out.push_str(result);
        out.push_str("\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"_seq_no\":");
        out.push_str(&seq.to_string());
        out.push_str(",\"_primary_term\":1,\"status\":");
        out.push_str(&status.to_string());
        out.push_str("}}");
        seq = seq.wrapping_add(1);
    }
    out.push_str("]}");
    out
}

/// The body of a whole-request 400: `{"error":{"root_cause":[{"type":"illegal_argument_exception","reason":..}],"type":"illegal_argument_exception","reason":..},"status":400}`.
pub fn request_error(reason: &str) -> String {
    let mut quoted = String::with_capacity(reason.len() + 2);
    push_json_string(&mut quoted, reason);
    format!(
        "{{\"error\":{{\"root_cause\":[{{\"type\":\"illegal_argument_exception\",\"reason\":{quoted}}}],\"type\":\"illegal_argument_exception\",\"reason\":{quoted}}},\"status\":400}}"
    )
}

/// URL-safe base64 alphabet (RFC 4648 section 5), as ES's auto ids use.
const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A new document id: 20 characters of URL-safe base64 (no padding) from a
/// time-ordered 15-byte value: 6 bytes of milliseconds (big-endian, good until
/// the year 10889), 3 bytes of the per-process sequence, 6 bytes mixed from
/// `seed` and the sequence's higher bits, like ES's auto ids. 15 bytes are
/// exactly 20 base64 characters, so there is no padding to drop.
pub fn new_id(now_ms: i64, seq: u64, seed: u64) -> String {
    let ms = u64::try_from(now_ms).unwrap_or(0).to_be_bytes();
    let seq_bytes = seq.to_be_bytes();
    // The sequence's bits above the 3 bytes kept go into the random part, so
    // ids stay distinct when it wraps within one millisecond.
    let noise = SplitMix(seed ^ SplitMix(seq >> 24).next()).next().to_be_bytes();
    let mut raw = [0u8; 15];
    raw[..6].copy_from_slice(&ms[2..]);
    raw[6..9].copy_from_slice(&seq_bytes[5..]);
    raw[9..].copy_from_slice(&noise[..6]);
    let mut id = String::with_capacity(20);
    for chunk in raw.chunks_exact(3) {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            id.push(char::from(BASE64URL[(n >> shift & 63) as usize]));
        }
    }
    id
}

/// Appends `s` as a JSON string literal.
fn push_json_string(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).expect("a string serializes"));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// The actions of a body as `op index/id source`, `;`-separated, with `-`
    /// for none and `ERR` for a source that is not an object; or `error: ...`.
    fn describe(body: &str, url_index: Option<&str>) -> String {
        match parse(body.as_bytes(), url_index, 1000) {
            Ok(actions) => actions
                .iter()
                .map(|a| {
                    let source = match &a.source {
                        None => "-".to_string(),
                        Some(Ok(map)) => Json::Object(map.clone()).to_string(),
                        Some(Err(_)) => "ERR".to_string(),
                    };
                    format!("{} {}/{} {source}", a.op.name(), a.index.as_deref().unwrap_or("-"), a.id.as_deref().unwrap_or("-"))
                })
                .collect::<Vec<_>>()
                .join("; "),
            Err(e) => format!("error: {e}"),
        }
    }

    fn check(body: &str, expected: &str) {
        assert_eq!(describe(body, None), expected, "{body:?}");
    }

    fn check_url(body: &str, url_index: &str, expected: &str) {
        assert_eq!(describe(body, Some(url_index)), expected, "{body:?} at /{url_index}/_bulk");
    }

    #[test]
    fn actions() {
        // Mixed index, create, delete and update in one body.
        check(
            concat!(
                "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"m\":1}\n",
                "{\"create\":{\"_index\":\"b\"}}\n{\"m\":2}\n",
                "{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n",
                "{\"update\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"doc\":{\"m\":3},\"doc_as_upsert\":true}\n",
            ),
            concat!("index a/1 {\"m\":1}; create b/- {\"m\":2}; delete a/1 -; ", "update a/2 {\"doc\":{\"m\":3},\"doc_as_upsert\":true}"),
        );
        // A missing final newline, CRLF, blank lines (also whitespace-only ones).
        check("{\"index\":{\"_index\":\"a\"}}\n{\"m\":1}", "index a/- {\"m\":1}");
        check("{\"delete\":{\"_index\":\"a\",\"_id\":\"x\"}}", "delete a/x -");
        check(
            "{\"index\":{\"_index\":\"a\"}}\r\n{\"m\":1}\r\n{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\r\n",
            "index a/- {\"m\":1}; delete a/1 -",
        );
        check("\n\n{\"index\":{\"_index\":\"a\"}}\n\n\r\n  \n{\"m\":1}\n\n", "index a/- {\"m\":1}");
        // No `_index` and no URL index: the item has none (it fails alone, with 400).
        check("{\"index\":{}}\n{\"m\":1}\n{\"index\":{\"_index\":\"a\"}}\n{\"m\":2}\n", "index -/- {\"m\":1}; index a/- {\"m\":2}");
        check("{\"index\":{\"_index\":\"\"}}\n{}\n", "index -/- {}");
        // `_type` (ES 6) and the other metadata are ignored; a numeric `_id` is its text.
        check(
            "{\"index\":{\"_index\":\"fluent-bit\",\"_type\":\"_doc\",\"pipeline\":\"p\",\"routing\":\"r\",\"require_alias\":false,\"if_seq_no\":3}}\n{}\n",
            "index fluent-bit/- {}",
        );
        check("{\"delete\":{\"_index\":\"a\",\"_id\":42}}\n", "delete a/42 -");
        check("{\"delete\":{\"_index\":null,\"_id\":null}}\n", "delete -/- -");
        // A source line that is not a JSON object fails that item alone.
        check(
            "{\"index\":{\"_index\":\"a\"}}\n{\"m\":\n{\"index\":{\"_index\":\"a\"}}\n[1,2]\n{\"create\":{\"_index\":\"a\"}}\n{\"ok\":true}\n",
            "index a/- ERR; index a/- ERR; create a/- {\"ok\":true}",
        );
        check("{\"index\":{\"_index\":\"a\"}}\n\"text\"\n", "index a/- ERR");
        check("{\"index\":{\"_index\":\"a\"}}\n{\"a\":1}{\"b\":2}\n", "index a/- ERR");
        let not_utf8 = parse(b"{\"update\":{\"_id\":\"1\"}}\n{\"m\":\"\xff\"}\n", None, 5);
        assert!(matches!(not_utf8.as_deref(), Ok([Action { source: Some(Err(_)), .. }])), "{not_utf8:?}");
        // A byte order mark at the start is dropped.
        check("\u{feff}{\"index\":{\"_index\":\"a\"}}\n{}\n", "index a/- {}");
    }

    #[test]
    fn url_index() {
        check_url("{\"index\":{}}\n{}\n{\"index\":{\"_index\":\"b\"}}\n{}\n", "a", "index a/- {}; index b/- {}");
        check_url("{\"delete\":{\"_id\":\"1\"}}\n", "logs", "delete logs/1 -");
        check_url("{\"index\":{}}\n{}\n", "", "index -/- {}");
    }

    #[test]
    fn request_errors() {
        check("", "error: bulk request has no actions (the body is empty or blank)");
        check("\n\r\n \n", "error: bulk request has no actions (the body is empty or blank)");
        check(
            "{\"frobnicate\":{}}\n{}\n",
            "error: Malformed action/metadata line [1], expected one of [create, delete, index, update] but found [frobnicate]",
        );
        check(
            "{\"index\":{}}\n{}\n\n{\"Index\":{}}\n{}\n",
            "error: Malformed action/metadata line [4], expected one of [create, delete, index, update] but found [Index]",
        );
        check(
            "not json\n{}\n",
            "error: Malformed action/metadata line [1], expected a JSON object like {\"index\":{}}: expected ident at line 1 column 2 in \"not json\"",
        );
        check(
            "[\"index\"]\n",
            "error: Malformed action/metadata line [1], expected a JSON object like {\"index\":{}}: invalid type: sequence, expected a map at line 1 column 0 in \"[\\\"index\\\"]\"",
        );
        check("{}\n", "error: Malformed action/metadata line [1], expected an action but found an empty object in \"{}\"");
        check(
            "{\"index\":{},\"delete\":{}}\n{}\n",
            "error: Malformed action/metadata line [1], expected exactly one action but found several keys in \"{\\\"index\\\":{},\\\"delete\\\":{}}\"",
        );
        check(
            "{\"index\":\"a\"}\n{}\n",
            "error: Malformed action/metadata line [1], expected an object of metadata after [index] in \"{\\\"index\\\":\\\"a\\\"}\"",
        );
        check(
            "{\"index\":{\"_index\":[\"a\"]}}\n{}\n",
            "error: Malformed action/metadata line [1], expected a simple value for field [_index] in \"{\\\"index\\\":{\\\"_index\\\":[\\\"a\\\"]}}\"",
        );
        // A missing source line at the end.
        check("{\"index\":{}}\n{}\n{\"create\":{}}\n", "error: bulk create action on line [3] has no source line");
        check("{\"update\":{\"_id\":\"1\"}}\n\n\n", "error: bulk update action on line [1] has no source line");
        // An action line after index is its source (as in ES), so the one after
        // that must be an action.
        check(
            "{\"index\":{}}\n{\"delete\":{\"_id\":\"1\"}}\n{\"m\":1}\n",
            "error: Malformed action/metadata line [3], expected one of [create, delete, index, update] but found [m]",
        );
    }

    #[test]
    fn malformed_input_is_quoted_short() {
        let long = format!("{{\"index\":{}", "x".repeat(10_000));
        let Err(e) = parse(long.as_bytes(), None, 10) else { panic!("{long:?} parsed") };
        assert!(e.to_string().len() < 400, "{e}");
        let name = "é".repeat(500);
        let Err(e) = parse(format!("{{\"{name}\":{{}}}}\n").as_bytes(), None, 10) else { panic!("parsed") };
        assert!(e.to_string().len() < 400, "{e}");
        let body = format!("{{\"index\":{{}}}}\n{{\"m\":\"{}\n", "y".repeat(10_000));
        let Ok(actions) = parse(body.as_bytes(), None, 10) else { panic!("{body:?} refused") };
        let Some(Err(reason)) = &actions[0].source else { panic!("{actions:?}") };
        assert!(reason.len() < 400 && reason.starts_with("failed to parse source line [2] \"{\\\"m\\\""), "{reason}");
    }

    #[test]
    fn max_actions() {
        let body = "{\"delete\":{\"_id\":\"1\"}}\n".repeat(3);
        assert_eq!(parse(body.as_bytes(), Some("a"), 3).map(|a| a.len()), Ok(3));
        assert_eq!(parse(body.as_bytes(), Some("a"), 2), Err(BulkError::TooManyActions { max: 2 }));
        assert_eq!(parse(b"", Some("a"), 0), Err(BulkError::Empty));
    }

    #[test]
    fn ten_megabytes() {
        let pair = "{\"index\":{\"_index\":\"filebeat-7.17.0-2024.01.01\"}}\n{\"@timestamp\":\"2024-01-01T00:00:00.000Z\",\"message\":\"GET /index.html 200 1234\",\"host\":{\"name\":\"web01\"}}\n";
        let count = 10_000_000 / pair.len() + 1;
        let body = pair.repeat(count);
        let actions = parse(body.as_bytes(), None, 1_000_000).expect("a valid 10 MB body parses");
        assert_eq!(actions.len(), count);
        assert!(actions.iter().all(|a| matches!(&a.source, Some(Ok(m)) if m.len() == 3)));
    }

    #[test]
    fn no_panic_on_odd_bytes() {
        for body in [&b"\r"[..], b"\n\r\n", b"{", b"}\n{", b"{\"index\":{}}\r", b"\xff\xfe\n\x00", b"{\"delete\":{}}\n\r\r\n"] {
            let _ = parse(body, None, 5);
            let _ = parse(body, Some("x"), 0);
        }
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(deep.as_bytes(), None, 5).is_err());
        let body = format!("{{\"index\":{{}}}}\n{deep}\n");
        assert!(matches!(parse(body.as_bytes(), None, 5).as_deref(), Ok([Action { source: Some(Err(_)), .. }])));
    }

    fn failed(status: u16, kind: &str, reason: &str) -> Outcome {
        Outcome::Failed { status, kind: kind.into(), reason: reason.into() }
    }

    #[test]
    fn response_shape() {
        let items = vec![
            (Op::Index, "logs".to_string(), "a\"b\\c\n".to_string(), Outcome::Created),
            (
                Op::Create,
                "logs".into(),
                "x".into(),
                failed(409, "version_conflict_engine_exception", "[x]: version conflict, document already exists (current version [1])"),
            ),
            (Op::Update, "logs".into(), "u".into(), Outcome::Updated),
            (Op::Delete, "logs".into(), "d".into(), Outcome::Deleted),
            (Op::Delete, "logs".into(), "gone".into(), Outcome::NotFound),
            (Op::Index, "".into(), "n".into(), failed(400, "document_parsing_exception", "failed to parse \"{\u{1}")),
            (Op::Create, "é".into(), "r".into(), failed(429, "es_rejected_execution_exception", "rejected")),
        ];
        let body = response(12, &items, 7);
        let v: Value = serde_json::from_str(&body).expect("the response is JSON");
        assert_eq!(v["took"], 12);
        assert_eq!(v["errors"], true);
        let rendered = v["items"].as_array().expect("items");
        assert_eq!(rendered.len(), items.len());
        let summary: Vec<String> = rendered
            .iter()
            .map(|item| {
                let object = item.as_object().expect("item object");
                assert_eq!(object.len(), 1);
                let (op, r) = object.iter().next().expect("one key");
                let keys: Vec<&str> = r.as_object().expect("item body").keys().map(String::as_str).collect();
                format!(
                    "{op} {} {} {} {} {} {}",
                    r["_index"].as_str().unwrap_or("?"),
                    r["_id"].as_str().unwrap_or("?"),
                    r["status"],
                    r.get("result").or_else(|| r["error"].get("type")).unwrap_or(&Value::Null),
                    r["_seq_no"],
                    keys.len(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                "index logs a\"b\\c\n 201 \"created\" 7 8",
                "create logs x 409 \"version_conflict_engine_exception\" null 4",
                "update logs u 200 \"updated\" 8 8",
                "delete logs d 200 \"deleted\" 9 8",
                "delete logs gone 404 \"not_found\" 10 8",
                "index  n 400 \"document_parsing_exception\" null 4",
                "create é r 429 \"es_rejected_execution_exception\" null 4",
            ]
        );
        assert_eq!(rendered[1]["create"]["error"]["reason"], "[x]: version conflict, document already exists (current version [1])");
        assert_eq!(rendered[1]["create"]["error"]["index"], "logs");
        assert_eq!(rendered[5]["index"]["error"]["reason"], "failed to parse \"{\u{1}");
        assert_eq!(rendered[0]["index"]["_shards"], serde_json::json!({"total":1,"successful":1,"failed":0}));
        assert_eq!(rendered[0]["index"]["_version"], 1);
        assert_eq!(rendered[0]["index"]["_primary_term"], 1);
    }

    #[test]
    fn response_exact_text() {
        // ES's key order and compact form, which shippers may match literally.
        assert_eq!(
            response(3, &[(Op::Index, "logstash-2024.01.01".into(), "AbC".into(), Outcome::Created)], 0),
            "{\"took\":3,\"errors\":false,\"items\":[{\"index\":{\"_index\":\"logstash-2024.01.01\",\"_id\":\"AbC\",\"_version\":1,\"result\":\"created\",\"_shards\":{\"total\":1,\"successful\":1,\"failed\":0},\"_seq_no\":0,\"_primary_term\":1,\"status\":201}}]}"
        );
        assert_eq!(
            response(0, &[(Op::Create, "a".into(), "1".into(), failed(409, "version_conflict_engine_exception", "r"))], 0),
            "{\"took\":0,\"errors\":true,\"items\":[{\"create\":{\"_index\":\"a\",\"_id\":\"1\",\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\",\"reason\":\"r\",\"index\":\"a\"}}}]}"
        );
        assert_eq!(response(1, &[], 0), "{\"took\":1,\"errors\":false,\"items\":[]}");
        // A delete of a missing document is not an error.
        let body = response(1, &[(Op::Delete, "a".into(), "1".into(), Outcome::NotFound)], 0);
        assert!(body.contains("\"errors\":false") && body.contains("\"status\":404"), "{body}");
    }

    #[test]
    fn request_error_shape() {
        let reason = BulkError::UnknownAction { line: 1, action: "frob\"nicate".into() }.to_string();
        let v: Value = serde_json::from_str(&request_error(&reason)).expect("JSON");
        assert_eq!(v["status"], 400);
        assert_eq!(v["error"]["type"], "illegal_argument_exception");
        assert_eq!(v["error"]["reason"], reason.as_str());
        assert_eq!(v["error"]["root_cause"][0]["type"], "illegal_argument_exception");
        assert_eq!(v["error"]["root_cause"][0]["reason"], reason.as_str());
        assert_eq!(
            request_error("x"),
            "{\"error\":{\"root_cause\":[{\"type\":\"illegal_argument_exception\",\"reason\":\"x\"}],\"type\":\"illegal_argument_exception\",\"reason\":\"x\"},\"status\":400}"
        );
    }

    #[test]
    fn ids() {
        let valid = |id: &str| id.len() == 20 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let now = 1_704_067_200_123;
        let mut seen = std::collections::HashSet::new();
        for seq in 0..10_000u64 {
            let id = new_id(now, seq, 99);
            assert!(valid(&id), "{id:?}");
            assert!(seen.insert(id), "duplicate at seq {seq}");
        }
        // Past the 3 sequence bytes, and with other seeds and times.
        assert!(seen.insert(new_id(now, 1 << 24, 99)));
        assert!(seen.insert(new_id(now, 0, 100)));
        assert!(seen.insert(new_id(now + 1, 0, 99)));
        for (ms, seq, seed) in [(0, 0, 0), (-5, u64::MAX, u64::MAX), (i64::MAX, 1, 2), (i64::MIN, 0, 0)] {
            assert!(valid(&new_id(ms, seq, seed)), "{ms} {seq} {seed}");
        }
        // Deterministic, and the time leads: same millisecond, same first 8 characters.
        assert_eq!(new_id(now, 5, 7), new_id(now, 5, 7));
        assert_eq!(new_id(now, 5, 7)[..8], new_id(now, 6, 8)[..8]);
        assert_ne!(new_id(now, 5, 7)[..8], new_id(now + 1000, 5, 7)[..8]);
    }
}
