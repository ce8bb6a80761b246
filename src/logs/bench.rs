//! `instantops bench logs`: a realistic log load generator. Three shapes, as
//! shippers send them: `syslog` (RFC 5424 frames, octet-counted, carrying
//! nginx access lines), `json` (logstash json_lines app events with
//! high-cardinality request and user ids) and `bulk` (Elasticsearch `_bulk`
//! requests of 1,000 such events over keep-alive HTTP). Or `--replay FILE`:
//! each line of a file becomes one event's message. With `--wait-metric` it
//! waits until the receiver counts every event as indexed, which makes the
//! end-to-end (durable and searchable) rate.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::logs::event::{Event, IntoEvent};
use crate::logs::json::Object;
use crate::splitmix::SplitMix;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    Syslog,
    Json,
    Bulk,
    /// No network, no WAL: the same events as `syslog` (`bare`), `json`
    /// (`bare-json`) or `bulk` (`bare-bulk`), parsed and made into documents
    /// the way that input does beforehand, indexed straight into Tantivy with
    /// the appliance's schema: the ceiling each end-to-end rate is compared
    /// with. `--to` is then a scratch directory.
    Bare,
    BareJson,
    BareBulk,
}

impl std::str::FromStr for Proto {
    type Err = String;
    fn from_str(s: &str) -> Result<Proto, String> {
        match s {
            "syslog" => Ok(Proto::Syslog),
            "json" => Ok(Proto::Json),
            "bulk" => Ok(Proto::Bulk),
            "bare" | "bare-syslog" => Ok(Proto::Bare),
            "bare-json" => Ok(Proto::BareJson),
            "bare-bulk" => Ok(Proto::BareBulk),
            other => Err(format!("unknown protocol {other:?}: syslog, json, bulk, bare, bare-json or bare-bulk")),
        }
    }
}

impl Proto {
    /// Whether this is a bare-Tantivy baseline rather than a sender.
    pub fn is_bare(self) -> bool {
        matches!(self, Proto::Bare | Proto::BareJson | Proto::BareBulk)
    }
}

#[derive(Clone, Debug)]
pub struct Plan {
    pub to: String,
    pub proto: Proto,
    /// Events per second in total; 0 sends as fast as the receiver takes them.
    pub rate: u64,
    pub duration: Duration,
    pub connections: u64,
    pub replay: Option<PathBuf>,
    pub wait_metric: Option<(String, String)>,
    /// Bare only: parse each event's JSON inside the timed part, as a bare
    /// indexer fed JSON lines must (tantivy-cli's `index` does).
    pub timed_parse: bool,
    /// Bare only: also write the events, one JSON line each as the appliance
    /// stores them, to this file (what `benches/logs_peers.sh` gives tantivy-cli).
    pub dump: Option<PathBuf>,
}

#[derive(Debug, Default)]
pub struct Report {
    pub events: u64,
    pub bytes: u64,
    pub send_secs: f64,
    pub ingest_secs: Option<f64>,
}

impl Report {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "sent {} events ({:.1} MB of events) in {:.2} s: {:.0} events/s, {:.1} MB/s",
            self.events,
            self.bytes as f64 / 1e6,
            self.send_secs,
            self.events as f64 / self.send_secs.max(1e-9),
            self.bytes as f64 / 1e6 / self.send_secs.max(1e-9)
        );
        if let Some(secs) = self.ingest_secs {
            s.push_str(&format!(
                "; all indexed after {secs:.2} s: {:.0} events/s, {:.1} MB/s end to end",
                self.events as f64 / secs.max(1e-9),
                self.bytes as f64 / 1e6 / secs.max(1e-9)
            ));
        }
        s
    }
}

const PATHS: [&str; 8] = ["/", "/api/v1/orders", "/api/v1/cart", "/static/app.js", "/login", "/api/v1/search", "/health", "/img/logo.png"];
const AGENTS: [&str; 4] = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "curl/8.4.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Go-http-client/1.1",
];

/// One nginx combined-format access line.
fn nginx_line(rng: &mut SplitMix, now_s: u64) -> String {
    let ip = rng.below(1 << 32);
    let status = [200, 200, 200, 200, 304, 404, 500, 201][rng.below(8) as usize];
    format!(
        "{}.{}.{}.{} - - [{}] \"GET {}?id={} HTTP/1.1\" {status} {} \"-\" \"{}\"",
        ip >> 24,
        (ip >> 16) & 255,
        (ip >> 8) & 255,
        ip & 255,
        now_s,
        PATHS[rng.below(8) as usize],
        rng.below(1_000_000_000),
        rng.below(50_000),
        AGENTS[rng.below(4) as usize]
    )
}

/// One application event as JSON, with high-cardinality ids.
fn app_event(rng: &mut SplitMix, message: Option<&str>) -> String {
    AppEvent::draw(rng, message).json()
}

/// One application event's values, drawn in the order the generator always
/// drew them (the same seed gives the same events as earlier builds).
struct AppEvent<'a> {
    level: &'static str,
    service: &'static str,
    message: std::borrow::Cow<'a, str>,
    host: u64,
    request_id: (u64, u64),
    user_id: u64,
    duration_ms: u64,
}

impl<'a> AppEvent<'a> {
    fn draw(rng: &mut SplitMix, message: Option<&'a str>) -> AppEvent<'a> {
        let level = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"][rng.below(6) as usize];
        let service = ["checkout", "search", "auth", "billing"][rng.below(4) as usize];
        let message = match message {
            Some(m) => m.into(),
            None => format!("{service} handled request in {} ms for cart {}", rng.below(900), rng.below(100_000)).into(),
        };
        let host = rng.below(40);
        let request_id = (rng.next(), rng.next());
        let (user_id, duration_ms) = (rng.below(5_000_000), rng.below(900));
        AppEvent { level, service, message, host, request_id, user_id, duration_ms }
    }

    /// Written straight out, keys sorted as a serde_json map writes them: the
    /// generator shares the cores with what it measures.
    fn json(&self) -> String {
        let AppEvent { level, service, host, request_id: (high, low), user_id, duration_ms, .. } = self;
        let mut out = String::with_capacity(160 + self.message.len());
        use std::fmt::Write as _;
        let _ = write!(out, r#"{{"duration_ms":{duration_ms},"host":"web-{host:02}","level":"{level}","message":"#);
        out.push_str(&serde_json::to_string(&self.message).expect("a string serializes"));
        let _ = write!(out, r#","request_id":"{high:016x}{low:016x}","service":"{service}","user_id":{user_id}}}"#);
        out
    }
}

/// Runs the plan and reports.
pub fn run(plan: &Plan) -> Result<Report, String> {
    if plan.proto.is_bare() {
        return bare(plan);
    }
    let replay: Option<std::sync::Arc<Vec<String>>> = match &plan.replay {
        Some(path) => {
            let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let lines: Vec<String> = BufReader::new(file).lines().map_while(Result::ok).filter(|l| !l.trim().is_empty()).collect();
            if lines.is_empty() {
                return Err(format!("{} has no lines", path.display()));
            }
            Some(std::sync::Arc::new(lines))
        }
        None => None,
    };
    let baseline = match &plan.wait_metric {
        Some((url, metric)) => crate::telemetry::scrape::metric_sum(url, metric)?,
        None => 0.0,
    };
    let started = Instant::now();
    let mut workers = Vec::new();
    for c in 0..plan.connections.max(1) {
        let plan = plan.clone();
        let replay = replay.clone();
        workers.push(std::thread::spawn(move || sender(&plan, c, replay.as_deref().map(Vec::as_slice))));
    }
    let (mut events, mut bytes) = (0, 0);
    for w in workers {
        let (e, b) = w.join().map_err(|_| "a sender thread panicked".to_string())??;
        events += e;
        bytes += b;
    }
    let send_secs = started.elapsed().as_secs_f64();
    let ingest_secs = match &plan.wait_metric {
        Some((url, metric)) => Some(crate::telemetry::scrape::wait_for(url, metric, baseline + events as f64, started)?),
        None => None,
    };
    Ok(Report { events, bytes, send_secs, ingest_secs })
}

/// The bare-Tantivy baseline: `rate * duration` events (default 1M) of the
/// shape's kind, generated, parsed and encoded first, as its input would
/// (`_bulk` documents get generated ids) and read back; then building the
/// Tantivy documents, indexing and the final commit are timed, with the
/// appliance's writer heap (150 MB) and 2 threads. With `timed_parse` the
/// read back (each event's JSON parsed) is timed too, as for a bare indexer
/// fed JSON lines, which must parse them (tantivy-cli's `index` times
/// `parse_json` with the indexing).
/// Bytes count as the senders count them: whole frames for syslog, lines for
/// json and bulk's document lines.
fn bare(plan: &Plan) -> Result<Report, String> {
    let n = if plan.rate == 0 { 1_000_000 } else { plan.rate * plan.duration.as_secs().max(1) };
    let mut rng = SplitMix(0x1095);
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let now_ms = now_s as i64 * 1000;
    let stamp = crate::logs::time::format_ms(now_ms);
    let mut events = Vec::with_capacity(n as usize);
    let mut bytes = 0u64;
    for seq in 0..n {
        let event = match plan.proto {
            Proto::BareJson => {
                let line = app_event(&mut rng, None);
                bytes += line.len() as u64 + 1;
                let mut parsed = crate::logs::event::from_json_line(line.as_bytes(), now_ms);
                parsed.pop().ok_or("an app event parses to one event")?.into_event("json_tcp", Some("127.0.0.1"), 1000)
            }
            Proto::BareBulk => {
                let line = app_event(&mut rng, None);
                bytes += line.len() as u64 + 1;
                let source = serde_json::from_str(&line).map_err(|e| e.to_string())?;
                let id = crate::logs::inputs::bulk::new_id(now_ms, seq, 0x1095);
                crate::logs::inputs::bulk::document(source, "bench", &id, now_ms).into_event("elasticsearch", None, 1000)
            }
            _ => {
                let frame = format!(
                    "<134>1 {stamp} web-{:02} nginx {} access - {}",
                    rng.below(40),
                    1000 + rng.below(9000),
                    nginx_line(&mut rng, now_s)
                );
                bytes += frame.len() as u64 + 1 + frame.len().to_string().len() as u64;
                crate::logs::inputs::syslog::parse(frame.as_bytes(), now_ms).into_event("syslog_tcp", Some("127.0.0.1"), 1000)
            }
        };
        let event = event.map_err(|e| e.to_string())?;
        events.push((event.ts_ms, event.json));
    }
    if let Some(path) = &plan.dump {
        let file = std::fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for (_, json) in &events {
            writeln!(out, "{json}").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        out.flush().map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    // Read back untimed, unless --timed-parse: then each event's JSON is
    // parsed in the timed part, as an indexer fed JSON lines parses them.
    let members: Vec<Object> = match plan.timed_parse {
        true => Vec::new(),
        false => events.iter().map(|(_, json)| serde_json::from_str(json)).collect::<Result<_, _>>().map_err(|e| e.to_string())?,
    };
    let dir = PathBuf::from(&plan.to).join(format!("bare-{}", std::process::id()));
    let (index, mut writer) = crate::logs::index::LogIndex::open(&dir, 150 << 20, 2, now_s as i64 * 1000).map_err(|e| e.to_string())?;
    let no_json: std::sync::Arc<str> = "".into();
    let started = Instant::now();
    for (i, (ts_ms, json)) in events.iter().enumerate() {
        let parsed: Object;
        let members = match plan.timed_parse {
            true => {
                parsed = serde_json::from_str(json).map_err(|e| e.to_string())?;
                &parsed
            }
            false => &members[i],
        };
        let doc = crate::logs::index::document(members, *ts_ms, json);
        writer.add(Event { ts_ms: *ts_ms, id: None, json: no_json.clone(), doc }).map_err(|e| e.to_string())?;
    }
    writer.commit(0).map_err(|e| e.to_string())?;
    let secs = started.elapsed().as_secs_f64();
    index.refresh_sizes();
    let disk = index.bytes();
    writer.close().map_err(|e| e.to_string())?;
    eprintln!(
        "bare: index {:.1} MB for {:.1} MB of frames ({:.2}x) in {}",
        disk as f64 / 1e6,
        bytes as f64 / 1e6,
        disk as f64 / bytes as f64,
        dir.display()
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Report { events: n, bytes, send_secs: secs, ingest_secs: None })
}

/// One connection's sending loop: (events, event bytes).
fn sender(plan: &Plan, c: u64, replay: Option<&[String]>) -> Result<(u64, u64), String> {
    let mut stream = TcpStream::connect(&plan.to).map_err(|e| format!("cannot connect to {}: {e}", plan.to))?;
    if !matches!(plan.proto, Proto::Bulk) {
        stream.set_write_timeout(Some(crate::loadgen::WRITE_WAIT)).map_err(|e| e.to_string())?;
    }
    let mut rng = SplitMix(0x1095 ^ (c << 32));
    let my_rate = plan.rate as f64 / plan.connections.max(1) as f64;
    let begun = Instant::now();
    let deadline = begun + plan.duration;
    let (mut events, mut bytes) = (0u64, 0u64);
    let mut buf: Vec<u8> = Vec::with_capacity(256 << 10);
    let mut at = c as usize;
    // Events per write (and per _bulk request).
    let batch = if plan.proto == Proto::Bulk { 1000 } else { 250 };
    while Instant::now() < deadline {
        let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let stamp = crate::logs::time::format_ms(now_s as i64 * 1000);
        buf.clear();
        for _ in 0..batch {
            let line = match replay {
                Some(lines) => {
                    at = (at + 1) % lines.len();
                    Some(lines[at].as_str())
                }
                None => None,
            };
            let before = buf.len();
            match plan.proto {
                Proto::Syslog => {
                    let msg = match line {
                        Some(l) => l.to_string(),
                        None => nginx_line(&mut rng, now_s),
                    };
                    let frame = format!("<134>1 {stamp} web-{:02} nginx {} access - {msg}", rng.below(40), 1000 + rng.below(9000));
                    write!(buf, "{} {frame}", frame.len()).map_err(|e| e.to_string())?;
                }
                Proto::Json => {
                    buf.extend_from_slice(app_event(&mut rng, line).as_bytes());
                    buf.push(b'\n');
                }
                Proto::Bare | Proto::BareJson | Proto::BareBulk => return Err("bare has no sender".into()),
                Proto::Bulk => {
                    buf.extend_from_slice(b"{\"index\":{\"_index\":\"bench\"}}\n");
                    let before_doc = buf.len();
                    buf.extend_from_slice(app_event(&mut rng, line).as_bytes());
                    buf.push(b'\n');
                    bytes += (buf.len() - before_doc) as u64;
                    events += 1;
                    continue;
                }
            }
            bytes += (buf.len() - before) as u64;
            events += 1;
        }
        match plan.proto {
            Proto::Bulk => post_bulk(&mut stream, &plan.to, &buf, deadline)?,
            _ => crate::loadgen::send(&mut stream, &buf, deadline + crate::loadgen::STALL_GRACE)?,
        }
        if plan.rate > 0 {
            let due = Duration::from_secs_f64(events as f64 / my_rate);
            if let Some(ahead) = due.checked_sub(begun.elapsed()) {
                std::thread::sleep(ahead);
            }
        }
    }
    if plan.proto != Proto::Bulk {
        stream.shutdown(std::net::Shutdown::Write).map_err(|e| e.to_string())?;
        // The receiver closes once it has read (and made durable) everything.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        let _ = stream.read(&mut [0u8; 1]);
    }
    Ok((events, bytes))
}

/// One `_bulk` request on a keep-alive connection, resent after a pause
/// while the receiver answers 429 (as Filebeat and Vector do); its answer
/// must then be 200 without item errors.
fn post_bulk(stream: &mut TcpStream, host: &str, body: &[u8], deadline: Instant) -> Result<(), String> {
    loop {
        match post_once(stream, host, body)? {
            Some(()) => return Ok(()),
            None if Instant::now() >= deadline + crate::loadgen::STALL_GRACE => {
                return Err(format!("the receiver kept answering 429 for {}s past the deadline", crate::loadgen::STALL_GRACE.as_secs()));
            }
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// `None` when the receiver asked to retry (429).
fn post_once(stream: &mut TcpStream, host: &str, body: &[u8]) -> Result<Option<()>, String> {
    write!(stream, "POST /_bulk HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n", body.len())
        .and_then(|()| stream.write_all(body))
        .map_err(|e| format!("send failed: {e}"))?;
    let mut reader = BufReader::new(&mut *stream);
    let mut status = String::new();
    reader.read_line(&mut status).map_err(|e| format!("no answer to _bulk: {e}"))?;
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut answer = vec![0u8; length];
    reader.read_exact(&mut answer).map_err(|e| e.to_string())?;
    if status.contains(" 429 ") {
        return Ok(None);
    }
    if !status.contains(" 200 ") || answer.windows(14).any(|w| w == b"\"errors\":true,") {
        return Err(format!("_bulk answered {}: {}", status.trim(), String::from_utf8_lossy(&answer[..answer.len().min(300)])));
    }
    Ok(Some(()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_events_are_the_bytes_a_serde_json_map_writes() {
        let mut rng = SplitMix(7);
        for i in 0..2000 {
            let replayed = ["a \"quoted\" line\twith é and \u{1}", "plain"][i % 2];
            let e = AppEvent::draw(&mut rng, (i % 3 == 0).then_some(replayed));
            let mut map = serde_json::Map::new();
            map.insert("message".into(), e.message.as_ref().into());
            map.insert("level".into(), e.level.into());
            map.insert("service".into(), e.service.into());
            map.insert("host".into(), format!("web-{:02}", e.host).into());
            map.insert("request_id".into(), format!("{:016x}{:016x}", e.request_id.0, e.request_id.1).into());
            map.insert("user_id".into(), e.user_id.into());
            map.insert("duration_ms".into(), e.duration_ms.into());
            assert_eq!(e.json(), serde_json::Value::Object(map).to_string());
        }
    }

    #[test]
    fn bare_dumps_the_same_events_whether_or_not_their_parse_is_timed() {
        let dir = tempfile::tempdir().unwrap();
        let mut dumps = Vec::new();
        for timed_parse in [false, true] {
            let dump = dir.path().join(format!("events-{timed_parse}"));
            let plan = Plan {
                to: dir.path().display().to_string(),
                proto: Proto::BareBulk,
                rate: 300,
                duration: Duration::from_secs(1),
                connections: 1,
                replay: None,
                wait_metric: None,
                timed_parse,
                dump: Some(dump.clone()),
            };
            let report = bare(&plan).unwrap();
            assert_eq!(report.events, 300);
            let text = std::fs::read_to_string(&dump).unwrap();
            let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            assert_eq!(events.len(), 300);
            for e in &events {
                assert!(e["@timestamp"].is_string() && e["_id"].is_string() && e["request_id"].is_string(), "{e}");
                assert_eq!(e["_index"], "bench");
            }
            // Stamps and generated ids depend on the clock: compare the rest.
            let rest = |e: &serde_json::Value| e["request_id"].clone();
            dumps.push(events.iter().map(rest).collect::<Vec<_>>());
        }
        assert_eq!(dumps[0], dumps[1], "the same events either way");
    }
}
