//! Log search end to end over a fixed corpus: real fail2ban log files sent by
//! logger(1), and generated JSON events with nested, dotted, array, numeric
//! and missing fields. Each query's expected hits come from a plain scan of
//! the corpus with a predicate written here, never from the index's answers.
//! Then the histogram and field statistics against the same scan, paging by
//! cursor, the live tail, and the Elasticsearch search API through
//! elasticsearch-py, opensearch-py and Grafana's `_msearch` bodies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Appliance, eventually, now};
use crate::logs::{es_client_path, fail2ban_logs, logs_options, python_with, sendable_lines, urlencode};

const LEVELS: [&str; 4] = ["error", "WARN", "info", "Debug"];
const HOSTS: [&str; 5] = ["web-01", "web-02", "web-03", "db-01", "Cache-01"];
const STATUSES: [i64; 7] = [200, 201, 301, 404, 500, 503, 599];
const WORDS: [&str; 12] = ["disk", "full", "timeout", "connection", "reset", "user", "login", "failed", "auth", "ok", "retry", "Error"];
const TAGS: [&str; 3] = ["blue", "green", "red"];

/// A small deterministic generator (splitmix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next() % items.len() as u64) as usize]
    }
}

/// RFC 3339 UTC with milliseconds, written out here (Howard Hinnant's
/// civil-from-days) rather than borrowed from the product.
fn iso(ms: i64) -> String {
    let (days, rest) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, min, sec, milli) = (rest / 3_600_000, rest / 60_000 % 60, rest / 1000 % 60, rest % 1000);
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{min:02}:{sec:02}.{milli:03}Z")
}

/// `n` JSON events, one a second, ending a minute ago.
fn generated(n: usize, seed: u64, t0_ms: i64) -> Vec<Value> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let ts = t0_ms + i as i64 * 1000 + (rng.next() % 1000) as i64;
            let words: Vec<&str> = (0..1 + rng.next() % 5).map(|_| *rng.pick(&WORDS)).collect();
            let mut e = json!({
                "@timestamp": iso(ts),
                "message": format!("{} #{i}", words.join(" ")),
                "host": {"name": rng.pick(&HOSTS)},
                "level": rng.pick(&LEVELS),
                "status": rng.pick(&STATUSES),
                "latency_ms": (rng.next() % 10_000) as f64 / 100.0,
                "user.id": format!("u{}", rng.next() % 20),
                "n": i,
                "kind": "generated",
            });
            let tags: Vec<&str> = (0..rng.next() % 3).map(|_| *rng.pick(&TAGS)).collect();
            if !tags.is_empty() {
                e["tags"] = json!(tags);
            }
            if rng.next().is_multiple_of(3) {
                e["region"] = json!(if rng.next().is_multiple_of(2) { "eu-west" } else { "us-east" });
            }
            e
        })
        .collect()
}

/// Tantivy's default analysis, written out independently: runs of
/// alphanumeric characters, lowercased, tokens of 40 bytes or more dropped.
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|t| !t.is_empty() && t.len() < 40).map(str::to_lowercase).collect()
}

fn message(e: &Value) -> String {
    e["message"].as_str().unwrap_or("").to_string()
}

fn has_token(e: &Value, t: &str) -> bool {
    tokens(&message(e)).iter().any(|x| x == t)
}

fn has_phrase(e: &Value, phrase: &str) -> bool {
    let want = tokens(phrase);
    tokens(&message(e)).windows(want.len()).any(|w| w == want.as_slice())
}

/// A field's value by a dotted path, nested or literal.
fn at<'a>(e: &'a Value, path: &str) -> Option<&'a Value> {
    e.get(path).or_else(|| {
        let (head, rest) = path.split_once('.')?;
        at(e.get(head)?, rest)
    })
}

fn text_eq(e: &Value, path: &str, want: &str) -> bool {
    match at(e, path) {
        Some(Value::String(s)) => s.eq_ignore_ascii_case(want),
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str().is_some_and(|s| s.eq_ignore_ascii_case(want))),
        _ => false,
    }
}

fn num(e: &Value, path: &str) -> Option<f64> {
    at(e, path).and_then(Value::as_f64)
}

/// Epoch ms of an event's `@timestamp` (as the product writes it:
/// `YYYY-MM-DDTHH:MM:SS.mmmZ`).
fn ts_ms(e: &Value) -> i64 {
    let s = e["@timestamp"].as_str().expect("@timestamp");
    let n = |r: std::ops::Range<usize>| -> i64 { s[r].parse().expect("a digit field") };
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    days * 86_400_000 + n(11..13) * 3_600_000 + n(14..16) * 60_000 + n(17..19) * 1000 + n(20..23)
}

/// Every event in the store, newest first, paged by cursor.
fn all_events(app: &Appliance, page: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    let mut totals = HashSet::new();
    loop {
        let reply = app.get(&format!("/api/logs/search?q=*&from=0&until=now%2B1d&limit={page}&cursor={cursor}"));
        assert_eq!(reply.status, 200, "{}", reply.body);
        let v = reply.json();
        totals.insert(v["total"].as_u64().expect("total"));
        out.extend(v["hits"].as_array().expect("hits").iter().cloned());
        match v["cursor"].as_str() {
            Some(c) => cursor = c.to_string(),
            None => break,
        }
    }
    assert_eq!(totals.len(), 1, "the total changed while paging: {totals:?}");
    assert_eq!(*totals.iter().next().expect("a total") as usize, out.len(), "paging by cursor saw a different number of events");
    out
}

/// A stable identity of an event: its whole JSON.
fn key(e: &Value) -> String {
    e.to_string()
}

/// The corpus in one appliance: fail2ban files over syslog TCP, generated
/// events over POST /api/logs. Returns (appliance, every event as stored).
fn corpus() -> (Appliance, Vec<Value>, i64) {
    let app = Appliance::start_with(logs_options());
    let dir = fail2ban_logs();
    // Real files with sshd's "Failed password" and "Invalid user", PAM,
    // Apache, Postfix, Dovecot, Exim: what people grep their logs for.
    let names = ["sshd", "pam-generic", "apache-auth", "postfix", "dovecot", "exim", "nginx-http-auth", "vsftpd", "dropbear"];
    let files: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    for f in &files {
        let lines = sendable_lines(f);
        assert!(!lines.is_empty() && lines.iter().all(|l| l.len() < 900 && !l.contains('\0')), "{} is not sendable", f.display());
    }
    let addr = app.addr("syslog_tcp");
    let mut sent = 0;
    for f in &files {
        let out = Command::new("logger")
            .args([
                "--rfc5424",
                "--tcp",
                "--octet-count",
                "-e",
                "-n",
                &addr.ip().to_string(),
                "-P",
                &addr.port().to_string(),
                "-t",
                "f2b",
                "-f",
            ])
            .arg(f)
            .stdin(Stdio::null())
            .output()
            .expect("run logger (bsdutils)");
        assert!(out.status.success(), "logger failed: {}", String::from_utf8_lossy(&out.stderr));
        sent += sendable_lines(f).len();
    }
    let t0 = (now() - 3600) * 1000;
    let events = generated(2400, 7, t0);
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let reply = app.request("POST", "/api/logs", &[("content-type", "application/x-ndjson")], Some(body.as_bytes()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let want = sent + events.len();
    eventually(Duration::from_secs(30), &format!("{want} events searchable"), || {
        let v = app.get("/api/logs/search?q=*&from=0&until=now%2B1d&limit=1").json();
        (v["total"].as_u64() == Some(want as u64)).then_some(())
    });
    let all = all_events(&app, 700);
    assert_eq!(all.len(), want);
    assert!(all.iter().all(|e| e["@timestamp"].as_str().is_some_and(|t| t.len() == 24 && t.ends_with('Z'))), "RFC 3339 with ms");
    for e in all.iter().take(50) {
        assert_eq!(iso(ts_ms(e)), e["@timestamp"], "the test's own time functions round-trip");
    }
    (app, all, t0)
}

type Predicate = Box<dyn Fn(&Value) -> bool>;

#[test]
fn queries_find_exactly_what_a_plain_scan_finds() {
    let (app, all, t0) = corpus();
    // Newest first, across pages.
    let stamps: Vec<&str> = all.iter().map(|e| e["@timestamp"].as_str().unwrap_or("")).collect();
    assert!(stamps.windows(2).all(|w| w[0] >= w[1]), "not newest first");
    let generated_event = |e: &Value| e["kind"] == "generated";
    let f2b = |e: &Value| e["program"] == "f2b";
    let cut_ms = t0 + 1_200_000;
    let (cut_lo, cut_hi) = (iso(cut_ms), iso(cut_ms + 600_000));
    let rows: Vec<(String, Predicate)> = vec![
        ("error".into(), Box::new(|e| has_token(e, "error"))),
        ("ERROR".into(), Box::new(|e| has_token(e, "error"))),
        ("\"disk full\"".into(), Box::new(|e| has_phrase(e, "disk full"))),
        ("\"Failed password\"".into(), Box::new(|e| has_phrase(e, "failed password"))),
        ("message:\"invalid user\"".into(), Box::new(|e| has_phrase(e, "invalid user"))),
        ("host.name:web-03".into(), Box::new(|e| text_eq(e, "host.name", "web-03"))),
        ("host.name:cache-01".into(), Box::new(|e| text_eq(e, "host.name", "Cache-01"))),
        ("level:WARN".into(), Box::new(|e| text_eq(e, "level", "warn"))),
        ("level:error AND disk".into(), Box::new(|e| text_eq(e, "level", "error") && has_token(e, "disk"))),
        ("level:error disk".into(), Box::new(|e| text_eq(e, "level", "error") && has_token(e, "disk"))),
        ("level:error OR level:debug".into(), Box::new(|e| text_eq(e, "level", "error") || text_eq(e, "level", "debug"))),
        (
            "level:(error OR debug) AND NOT host.name:web-01".into(),
            Box::new(|e| (text_eq(e, "level", "error") || text_eq(e, "level", "debug")) && !text_eq(e, "host.name", "web-01")),
        ),
        ("kind:generated -level:info".into(), Box::new(move |e| generated_event(e) && !text_eq(e, "level", "info"))),
        ("status:503".into(), Box::new(|e| num(e, "status") == Some(503.0))),
        ("status:[500 TO 599]".into(), Box::new(|e| num(e, "status").is_some_and(|s| (500.0..=599.0).contains(&s)))),
        ("status:{301 TO 599}".into(), Box::new(|e| num(e, "status").is_some_and(|s| s > 301.0 && s < 599.0))),
        ("status:>=500 AND NOT status:599".into(), Box::new(|e| num(e, "status").is_some_and(|s| s >= 500.0 && s != 599.0))),
        ("latency_ms:<12.5".into(), Box::new(|e| num(e, "latency_ms").is_some_and(|l| l < 12.5))),
        ("latency_ms:[50 TO *]".into(), Box::new(|e| num(e, "latency_ms").is_some_and(|l| l >= 50.0))),
        (
            "host.name:web-0*".into(),
            Box::new(|e| at(e, "host.name").and_then(Value::as_str).is_some_and(|h| h.to_lowercase().starts_with("web-0"))),
        ),
        (
            "host.name:*-01 AND level:info".into(),
            Box::new(|e| at(e, "host.name").and_then(Value::as_str).is_some_and(|h| h.ends_with("-01")) && text_eq(e, "level", "info")),
        ),
        ("host.name:w?b-02".into(), Box::new(|e| text_eq(e, "host.name", "web-02"))),
        ("_exists_:region".into(), Box::new(|e| e.get("region").is_some())),
        ("kind:generated AND NOT _exists_:region".into(), Box::new(move |e| generated_event(e) && e.get("region").is_none())),
        ("region:*".into(), Box::new(|e| e.get("region").is_some())),
        ("tags:blue".into(), Box::new(|e| text_eq(e, "tags", "blue"))),
        ("tags:blue OR tags:red".into(), Box::new(|e| text_eq(e, "tags", "blue") || text_eq(e, "tags", "red"))),
        ("user.id:U7".into(), Box::new(|e| text_eq(e, "user.id", "u7"))),
        ("program:f2b AND (failed OR invalid)".into(), Box::new(move |e| f2b(e) && (has_token(e, "failed") || has_token(e, "invalid")))),
        ("program:f2b AND sshd".into(), Box::new(move |e| f2b(e) && has_token(e, "sshd"))),
        ("message:auth*".into(), Box::new(|e| tokens(&message(e)).iter().any(|t| t.starts_with("auth")))),
        ("re*ry".into(), Box::new(|e| tokens(&message(e)).iter().any(|t| t.starts_with("re") && t.ends_with("ry")))),
        (
            format!("@timestamp:[\"{cut_lo}\" TO \"{cut_hi}\"}}"),
            Box::new(move |e| {
                let t = e["@timestamp"].as_str().unwrap_or("");
                t >= cut_lo.as_str() && t < cut_hi.as_str()
            }),
        ),
        ("+disk -full".into(), Box::new(|e| has_token(e, "disk") && !has_token(e, "full"))),
        ("*".into(), Box::new(|_| true)),
        ("nosuchword".into(), Box::new(|_| false)),
    ];
    let mut checked = 0;
    for (q, want) in &rows {
        let expected: HashSet<String> = all.iter().filter(|e| want(e)).map(key).collect();
        let mut got = HashSet::new();
        let mut cursor = String::new();
        let mut total = None;
        loop {
            let reply = app.get(&format!("/api/logs/search?q={}&from=0&until=now%2B1d&limit=2000&cursor={cursor}", urlencode(q)));
            assert_eq!(reply.status, 200, "{q}: {}", reply.body);
            let v = reply.json();
            total.get_or_insert(v["total"].as_u64().expect("total"));
            for h in v["hits"].as_array().expect("hits") {
                assert!(got.insert(key(h)), "{q}: a hit came twice");
            }
            match v["cursor"].as_str() {
                Some(c) => cursor = c.to_string(),
                None => break,
            }
        }
        assert_eq!(total, Some(expected.len() as u64), "{q}: total");
        let missing: Vec<&String> = expected.difference(&got).take(3).collect();
        let extra: Vec<&String> = got.difference(&expected).take(3).collect();
        assert!(missing.is_empty() && extra.is_empty(), "{q}: missing {missing:?}, extra {extra:?}");
        checked += usize::from(!expected.is_empty());
    }
    assert!(checked >= rows.len() - 2, "most rows must match something, or they test nothing");

    // The time range: only what falls in [from, until].
    let (from_s, until_s) = (t0 / 1000 + 600, t0 / 1000 + 900);
    let reply = app.get(&format!("/api/logs/search?q=kind:generated&from={from_s}&until={until_s}&limit=1000"));
    let expected = all.iter().filter(|e| generated_event(e) && (from_s * 1000..until_s * 1000 + 1000).contains(&ts_ms(e))).count();
    assert_eq!(reply.json()["total"].as_u64(), Some(expected as u64));

    // Oldest first is the reverse.
    let v = app.get("/api/logs/search?q=kind:generated&from=0&limit=5&order=asc").json();
    assert_eq!(v["hits"][0]["n"], 0);
    assert_eq!(v["hits"][4]["n"], 4);

    // A bad query: 400 with the position.
    for (q, position) in [("level:(error OR", 15), ("level:(error", 6), ("status:[1 TO", 12), ("a AND", 5), ("host:", 0)] {
        let reply = app.get(&format!("/api/logs/search?q={}", urlencode(q)));
        assert_eq!(reply.status, 400, "{q}");
        let err = reply.json()["error"].as_str().unwrap_or("").to_string();
        assert!(err.contains(&format!("at position {position}")), "{q}: {err}");
    }
    let reply = app.get("/api/logs/search?q=*&cursor=nonsense");
    assert_eq!(reply.status, 400);
    let reply = app.get("/api/logs/search?q=*&limit=20000");
    assert_eq!(reply.status, 400, "past the result window");
}

#[test]
fn histogram_and_field_statistics_agree_with_a_plain_scan() {
    let (app, all, t0) = corpus();
    let (from_s, until_s) = (t0 / 1000, t0 / 1000 + 2400);
    let v = app.get(&format!("/api/logs/histogram?q=level:error&from={from_s}&until={until_s}&buckets=40")).json();
    let step = v["interval_s"].as_i64().expect("interval_s");
    assert_eq!(step, 60, "2400 s in ~40 buckets");
    let mut want: BTreeMap<i64, u64> = BTreeMap::new();
    let first = from_s.div_euclid(step) * step;
    let mut b = first;
    while b <= until_s {
        want.insert(b, 0);
        b += step;
    }
    for e in all.iter().filter(|e| text_eq(e, "level", "error")) {
        let t = ts_ms(e);
        if (from_s * 1000..until_s * 1000 + 1000).contains(&t) {
            *want.entry(t.div_euclid(1000).div_euclid(step) * step).or_default() += 1;
        }
    }
    let got: BTreeMap<i64, u64> =
        v["buckets"].as_array().expect("buckets").iter().map(|b| (b[0].as_i64().expect("time"), b[1].as_u64().expect("count"))).collect();
    assert_eq!(got, want, "histogram buckets");
    assert_eq!(v["total"].as_u64(), Some(want.values().sum::<u64>()));

    let v = app.get("/api/logs/fields?q=kind:generated%20AND%20status:%5B500%20TO%20599%5D&from=0&field=host.name&size=3").json();
    let mut counts: HashMap<String, u64> = HashMap::new();
    for e in all.iter().filter(|e| e["kind"] == "generated" && num(e, "status").is_some_and(|s| (500.0..=599.0).contains(&s))) {
        *counts.entry(at(e, "host.name").and_then(Value::as_str).unwrap_or("").to_string()).or_default() += 1;
    }
    let mut ranked: Vec<(String, u64)> = counts.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let got: Vec<(String, u64)> = v["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|x| (x["value"].as_str().expect("value").to_string(), x["count"].as_u64().expect("count")))
        .collect();
    assert_eq!(got.len(), 3);
    for (value, count) in &got {
        let exact = ranked.iter().find(|r| &r.0 == value).map(|r| r.1);
        assert_eq!(exact, Some(*count), "{value} (values keep their case: {got:?})");
    }
    assert_eq!(got.iter().map(|g| g.1).collect::<Vec<_>>(), ranked.iter().take(3).map(|r| r.1).collect::<Vec<_>>());
    assert_eq!(v["other"].as_u64(), Some(ranked.iter().skip(3).map(|r| r.1).sum()));
    let reply = app.get("/api/logs/fields?q=*&field=message");
    assert_eq!(reply.status, 400, "message is full text");
}

/// Reads SSE `data:` lines from a tail until `n` arrive or the deadline.
fn read_tail(reader: &mut BufReader<std::net::TcpStream>, n: usize, deadline: Duration) -> Vec<Value> {
    let end = Instant::now() + deadline;
    let mut got = Vec::new();
    let mut line = String::new();
    while got.len() < n && Instant::now() < end {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                if let Some(data) = line.strip_prefix("data: ") {
                    got.push(serde_json::from_str(data.trim()).expect("tail data is JSON"));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => panic!("tail read: {e}"),
        }
    }
    got
}

#[test]
fn a_live_tail_sees_matching_events_within_the_commit_interval() {
    let app = Appliance::start_with(logs_options());
    let mut stream = std::net::TcpStream::connect(app.addr("http")).expect("connect");
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    write!(stream, "GET /api/logs/tail?q={} HTTP/1.1\r\nHost: x\r\n\r\n", urlencode("level:error AND host.name:web-0*")).expect("write");
    let mut reader = BufReader::new(stream);
    let mut status = String::new();
    eventually(Duration::from_secs(10), "the tail's status line", || reader.read_line(&mut status).ok().filter(|&n| n > 0));
    assert!(status.contains("200"), "{status}");
    // The stream has started once its first comment arrives.
    let mut line = String::new();
    eventually(Duration::from_secs(10), "the tail to start", || {
        line.clear();
        reader.read_line(&mut line).ok().filter(|_| line.contains("tail started"))
    });
    let events = generated(300, 11, (now() - 60) * 1000);
    let matching: HashSet<String> = events
        .iter()
        .filter(|e| text_eq(e, "level", "error") && at(e, "host.name").and_then(Value::as_str).is_some_and(|h| h.starts_with("web-0")))
        .map(|e| e["n"].to_string())
        .collect();
    assert!(!matching.is_empty());
    let body: String = events.iter().map(|e| format!("{e}\n")).collect();
    let sent = Instant::now();
    let reply = app.request("POST", "/api/logs", &[], Some(body.as_bytes()));
    assert_eq!(reply.status, 200);
    // commit_interval is 200 ms in these tests: within it + 1 s.
    let got = read_tail(&mut reader, matching.len(), Duration::from_millis(1200 + 5000));
    let elapsed = sent.elapsed();
    let got_ns: HashSet<String> = got.iter().map(|e| e["n"].to_string()).collect();
    assert_eq!(got_ns, matching, "the tail saw other events than the matching ones");
    eprintln!("tail: {} matching events in {elapsed:?}", got.len());
    // A bad tail query is refused up front.
    let reply = app.get(&format!("/api/logs/tail?q={}", urlencode("level:(")));
    assert_eq!(reply.status, 400);
    // An open tail does not hold up an orderly stop: the stream ends, and
    // the HTTP server stops inside its own deadline.
    let mut app = app;
    let status = app.terminate(Duration::from_secs(10)).expect("stopped within 10 s");
    assert!(status.success(), "{status:?}");
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut reader, &mut rest);
    let stderr = app.stderr();
    assert!(!stderr.contains("did not stop in time"), "{stderr}");
}

#[test]
fn a_tail_that_never_reads_does_not_hold_back_ingest() {
    let config = "[logs]\ncommit_interval = \"200ms\"\nretention = \"36500d\"\ntail_buffer = 16\n";
    let app = Appliance::start_with(crate::harness::Options::default().config(config));
    let mut stream = std::net::TcpStream::connect(app.addr("http")).expect("connect");
    write!(stream, "GET /api/logs/tail?q=* HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
    // Never read while 20k events (a few MB of SSE) go in, past the socket buffers.
    let events = generated(20_000, 5, (now() - 60) * 1000);
    for chunk in events.chunks(5000) {
        let body: String = chunk.iter().map(|e| format!("{e}\n")).collect();
        let reply = app.request("POST", "/api/logs", &[], Some(body.as_bytes()));
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    eventually(Duration::from_secs(30), "all 20k events searchable with a stalled tail open", || {
        let v = app.get("/api/logs/search?q=*&from=0&until=now%2B1d&limit=1").json();
        (v["total"].as_u64() == Some(20_000)).then_some(())
    });
    // Reading now: the reader is told it skipped events.
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // Every line the socket holds is read at once (a pause a line made the
    // test fail whenever over 800 lines sat ahead of the notice); the poll
    // pauses only when the socket has nothing to read.
    eventually(Duration::from_secs(20), "an `event: dropped` notice", || {
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) if line.starts_with("event: dropped") => return Some(()),
                Ok(_) => continue,
            }
        }
    });
}

#[test]
fn elasticsearch_py_search_count_and_grafana_msearch() {
    let app = Appliance::start_with(logs_options());
    let url = format!("http://{}", app.addr("elasticsearch"));
    let t0 = (now() - 1800) * 1000;
    let events = generated(1200, 3, t0);
    // In through elasticsearch-py's bulk helper, into two daily indices.
    let docs: Vec<Value> = events
        .iter()
        .map(|e| {
            let mut d = e.clone();
            let day = if e["n"].as_u64().unwrap_or(0) < 600 { "app-2024.01.01" } else { "app-2024.01.02" };
            d["_index"] = json!(day);
            d["_id"] = json!(format!("id-{}", e["n"]));
            d
        })
        .collect();
    let docs_path = app.dir.path().join("docs.json");
    std::fs::write(&docs_path, serde_json::to_vec(&docs).expect("json")).expect("write docs");
    let script = r#"
import sys, json
from elasticsearch import Elasticsearch, helpers
es = Elasticsearch(sys.argv[1])
docs = json.load(open(sys.argv[2]))
ok, errors = helpers.bulk(es, docs)
print(json.dumps({"ok": ok}))
"#;
    let out = python_with(&es_client_path(8), script, &[&url, &docs_path.display().to_string()]);
    assert!(out.contains("\"ok\": 1200"), "{out}");
    eventually(Duration::from_secs(30), "1200 events searchable", || {
        let v = app.get("/api/logs/search?q=*&from=0&limit=1").json();
        (v["total"].as_u64() == Some(1200)).then_some(())
    });
    let errors_ws: Vec<&Value> = events.iter().filter(|e| text_eq(e, "level", "error") && text_eq(e, "host.name", "web-01")).collect();
    let second_day: usize = events.iter().filter(|e| e["n"].as_u64().unwrap_or(0) >= 600 && text_eq(e, "level", "warn")).count();
    let lo = t0 + 300_000;
    let in_range = |e: &&Value| (lo..=t0 + 900_000).contains(&ts_ms(e));
    let ranged: Vec<&Value> = events.iter().filter(in_range).collect();
    let avg_latency = ranged.iter().filter_map(|e| num(e, "latency_ms")).sum::<f64>() / ranged.len() as f64;
    let script = r#"
import sys, json
from elasticsearch import Elasticsearch
es = Elasticsearch(sys.argv[1])
lo, hi = int(sys.argv[2]), int(sys.argv[3])
out = {}
r = es.search(index="app-*", query={"bool": {"must": [{"match": {"level": "error"}}, {"term": {"host.name": "web-01"}}]}}, size=1000, sort=[{"@timestamp": {"order": "desc"}}])
out["errors"] = [h["_source"]["n"] for h in r["hits"]["hits"]]
out["errors_total"] = r["hits"]["total"]["value"]
out["first_id"] = r["hits"]["hits"][0]["_id"]
out["first_index"] = r["hits"]["hits"][0]["_index"]
out["count"] = es.count(index="app-2024.01.02", query={"query_string": {"query": "level:warn"}})["count"]
page1 = es.search(index="app-*", query={"match_all": {}}, size=500, sort=[{"@timestamp": "asc"}])
after = page1["hits"]["hits"][-1]["sort"]
page2 = es.search(index="app-*", query={"match_all": {}}, size=1000, sort=[{"@timestamp": "asc"}], search_after=after)
out["paged"] = [h["_source"]["n"] for h in page1["hits"]["hits"]] + [h["_source"]["n"] for h in page2["hits"]["hits"]]
r = es.search(index="app-*", size=0, query={"range": {"@timestamp": {"gte": lo, "lte": hi, "format": "epoch_millis"}}},
              aggs={"lat": {"avg": {"field": "latency_ms"}}, "hosts": {"terms": {"field": "host.name.keyword", "size": 10}}})
out["range_total"] = r["hits"]["total"]["value"]
out["avg"] = r["aggregations"]["lat"]["value"]
out["hosts"] = {b["key"]: b["doc_count"] for b in r["aggregations"]["hosts"]["buckets"]}
m = es.indices.get_mapping(index="app-*")
out["mapping"] = {k: v["mappings"]["properties"] for k, v in m.body.items()}
print(json.dumps(out))
"#;
    let out = python_with(&es_client_path(8), script, &[&url, &lo.to_string(), &(t0 + 900_000).to_string()]);
    let r: Value = serde_json::from_str(out.trim()).expect("python output");
    let mut want: Vec<i64> = errors_ws.iter().map(|e| e["n"].as_i64().expect("n")).collect();
    want.reverse();
    assert_eq!(r["errors"], json!(want), "match + term, newest first");
    assert_eq!(r["errors_total"], json!(errors_ws.len()));
    assert_eq!(r["first_id"], json!(format!("id-{}", want[0])));
    assert_eq!(r["first_index"], "app-2024.01.02");
    assert_eq!(r["count"], json!(second_day));
    let paged: Vec<i64> = r["paged"].as_array().expect("paged").iter().map(|v| v.as_i64().expect("n")).collect();
    assert_eq!(paged, (0..1200).collect::<Vec<i64>>(), "search_after pages oldest first without gaps or repeats");
    assert_eq!(r["range_total"], json!(ranged.len()));
    assert!((r["avg"].as_f64().expect("avg") - avg_latency).abs() < 1e-6, "avg {} vs {avg_latency}", r["avg"]);
    let mut hosts: HashMap<String, u64> = HashMap::new();
    for e in &ranged {
        *hosts.entry(at(e, "host.name").and_then(Value::as_str).unwrap_or("").to_string()).or_default() += 1;
    }
    let got_hosts: HashMap<String, u64> = serde_json::from_value(r["hosts"].clone()).expect("hosts");
    assert_eq!(got_hosts, hosts);
    let mapping = &r["mapping"]["app-2024.01.01"];
    assert_eq!(mapping["@timestamp"]["type"], "date");
    assert_eq!(mapping["message"]["type"], "text");
    assert_eq!(mapping["host"]["properties"]["name"]["type"], "keyword");
    assert_eq!(mapping["status"]["type"], "long");
    assert_eq!(mapping["latency_ms"]["type"], "double");
    assert!(r["mapping"]["app-2024.01.02"].is_object());

    // opensearch-py's search and count against the same API.
    let out = crate::harness::python(
        r#"
import sys, json
from opensearchpy import OpenSearch
client = OpenSearch(sys.argv[1])
r = client.search(index="app-2024.01.01", body={"query": {"bool": {"filter": [{"term": {"level": "error"}}], "must_not": [{"exists": {"field": "region"}}]}}, "size": 1000})
c = client.count(index="app-*", body={"query": {"terms": {"status": [500, 503]}}})
print(json.dumps({"hits": sorted(h["_source"]["n"] for h in r["hits"]["hits"]), "total": r["hits"]["total"]["value"], "count": c["count"]}))
"#,
        &[&url],
    );
    let r: Value = serde_json::from_str(out.trim()).expect("opensearch-py output");
    let want: Vec<u64> = events
        .iter()
        .filter(|e| e["n"].as_u64().unwrap_or(0) < 600 && text_eq(e, "level", "error") && e.get("region").is_none())
        .map(|e| e["n"].as_u64().expect("n"))
        .collect();
    assert_eq!(r["hits"], json!(want));
    assert_eq!(r["total"], json!(want.len()));
    let statuses = events.iter().filter(|e| matches!(num(e, "status"), Some(s) if s == 500.0 || s == 503.0)).count();
    assert_eq!(r["count"], json!(statuses));

    // Grafana's Elasticsearch data source: a logs-volume histogram and a
    // logs query in one _msearch, as it sends them.
    let (from_ms, to_ms) = (t0, t0 + 1_200_000);
    let fixture = std::fs::read_to_string(crate::harness::repo_path("tests/fixtures/grafana_msearch.ndjson")).expect("fixture");
    let body = fixture.replace("$FROM", &from_ms.to_string()).replace("$TO", &to_ms.to_string());
    let reply = app.request_at(
        "elasticsearch",
        "POST",
        "/_msearch?max_concurrent_shard_requests=5",
        &[("content-type", "application/x-ndjson")],
        Some(body.as_bytes()),
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    let responses = v["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 3);
    let window: Vec<&Value> = events.iter().filter(|e| (from_ms..=to_ms).contains(&ts_ms(e))).collect();
    let errors: Vec<&&Value> = window.iter().filter(|e| text_eq(e, "level", "error")).collect();
    // 1: the histogram of level:error, 1 m buckets with empty ones, epoch ms keys.
    let r0 = &responses[0];
    assert_eq!(r0["status"], 200);
    let buckets = r0["aggregations"]["2"]["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 21, "extended_bounds cover the whole range");
    let mut want: BTreeMap<i64, u64> = (0..21).map(|i| (from_ms.div_euclid(60_000) * 60_000 + i * 60_000, 0)).collect();
    for e in &errors {
        *want.entry(ts_ms(e).div_euclid(60_000) * 60_000).or_default() += 1;
    }
    for b in buckets {
        let k = b["key"].as_i64().expect("integer key");
        assert_eq!(b["key_as_string"], k.to_string());
        assert_eq!(b["doc_count"].as_u64(), want.get(&k).copied(), "bucket {k}");
    }
    assert_eq!(r0["hits"]["total"]["value"].as_u64(), Some(errors.len() as u64));
    // 2: the logs query: newest 100 of the window, sort values to page with.
    let r1 = &responses[1];
    let hits = r1["hits"]["hits"].as_array().expect("hits");
    assert_eq!(hits.len(), errors.len().min(100));
    let newest = errors.iter().map(|e| ts_ms(e)).max().expect("some errors");
    assert_eq!(hits[0]["sort"][0].as_i64(), Some(newest));
    assert!(hits[0]["_source"]["message"].is_string() && hits[0]["_id"].is_string());
    // 3: a bad query fails alone, at its position.
    assert_eq!(responses[2]["status"], 400);
    assert!(responses[2]["error"]["reason"].as_str().unwrap_or("").contains("position"), "{}", responses[2]);
}
