//! Log ingest end to end with the senders people run: logger(1) replaying the
//! real log files of Debian's fail2ban over every syslog transport, the
//! python-logstash TCP handler, redis-py into the Redis-protocol listener, a
//! real redis-server feeding `[[logs.redis]]`, elasticsearch-py 8.x and 9.x
//! and opensearch-py `helpers.bulk`, graypy's chunked zlib GELF; then
//! durability across `kill -9`, and bad input next to good.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Appliance, Options, client_python, eventually, free_port, python, repo_path};

/// Fast commits so tests wait little; retention long enough for old log files.
fn start() -> Appliance {
    Appliance::start_with(logs_options())
}

pub(crate) fn logs_options() -> Options {
    Options::default().config("[logs]\ncommit_interval = \"200ms\"\nretention = \"36500d\"\n")
}

/// (total, hits) of a search over all time.
fn search(app: &Appliance, q: &str) -> (u64, Vec<Value>) {
    let reply = app.get(&format!("/api/logs/search?q={}&from=0&limit=10000", urlencode(q)));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let v = reply.json();
    (v["total"].as_u64().expect("total"), v["hits"].as_array().cloned().unwrap_or_default())
}

pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"._-*".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Waits until `q` matches exactly `n` events, and returns them.
fn wait_total(app: &Appliance, q: &str, n: u64) -> Vec<Value> {
    let mut last = 0;
    eventually(Duration::from_secs(30), &format!("{n} events for {q:?} (last saw {last})"), || {
        let (total, hits) = search(app, q);
        last = total;
        (total == n).then_some(hits)
    })
}

pub(crate) fn fail2ban_logs() -> PathBuf {
    let dir = std::env::var_os("IOPS_FAIL2BAN_LOGS").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        home.join(".cache/instantops-target/fail2ban/logs")
    });
    assert!(dir.is_dir(), "no fail2ban log files at {} (tests/run unpacks them)", dir.display());
    dir
}

/// The lines logger(1) sends of `file`: non-empty after its own trimming.
pub(crate) fn sendable_lines(file: &std::path::Path) -> Vec<String> {
    let text = String::from_utf8_lossy(&std::fs::read(file).expect("read log file")).into_owned();
    text.lines().map(|l| l.trim_end_matches(['\r', ' ', '\t']).to_string()).filter(|l| !l.trim().is_empty()).collect()
}

#[test]
fn fail2ban_log_files_through_logger_over_every_syslog_transport_are_all_searchable() {
    let app = start();
    let dir = fail2ban_logs();
    // A spread of real files (sshd, apache, postfix, ...), lines short enough
    // for one syslog message each.
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().filter_map(|e| Some(e.ok()?.path())).filter(|p| p.is_file()).collect();
    files.sort();
    let files: Vec<PathBuf> = files
        .into_iter()
        .filter(|f| {
            let lines = sendable_lines(f);
            !lines.is_empty() && lines.len() <= 400 && lines.iter().all(|l| l.len() < 900 && !l.contains('\0'))
        })
        .take(12)
        .collect();
    assert!(files.len() >= 5, "too few fail2ban log files in {}", dir.display());
    let modes: [(&str, &[&str]); 4] = [
        ("f2b_3164_udp", &["--rfc3164", "--udp"]),
        ("f2b_3164_tcp", &["--rfc3164", "--tcp"]),
        ("f2b_5424_tcp_octet", &["--rfc5424", "--tcp", "--octet-count"]),
        ("f2b_5424_udp", &["--rfc5424", "--udp"]),
    ];
    let mut expected: Vec<String> = Vec::new();
    for f in &files {
        expected.extend(sendable_lines(f));
    }
    for (tag, flags) in modes {
        let listener = if flags.contains(&"--udp") { "syslog_udp" } else { "syslog_tcp" };
        let addr = app.addr(listener);
        for f in &files {
            let out = Command::new("logger")
                .args(flags)
                .args(["-e", "-n", &addr.ip().to_string(), "-P", &addr.port().to_string(), "-t", tag, "-f"])
                .arg(f)
                .stdin(Stdio::null())
                .output()
                .expect("run logger (bsdutils)");
            assert!(out.status.success(), "logger failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let hits = wait_total(&app, &format!("program:{tag}"), expected.len() as u64);
        let mut got: Vec<String> = hits.iter().map(|h| h["message"].as_str().unwrap_or("").trim_end().to_string()).collect();
        let mut want: Vec<String> = expected.iter().map(|l| l.trim_start().to_string()).collect();
        got.iter_mut().for_each(|g| *g = g.trim_start().to_string());
        got.sort();
        want.sort();
        assert_eq!(got, want, "{tag}: messages differ from the files' lines");
        let h = &hits[0];
        assert_eq!(h["source"], listener);
        assert_eq!(h["facility_label"], "user", "{h}");
        assert!(h["host"].is_string() && h["@timestamp"].is_string(), "{h}");
    }
    let bad = app.counter("instantops_bad_lines_total{input=\"syslog_tcp\"}");
    assert_eq!(bad, 0.0);
}

#[test]
fn python_logstash_tcp_handler_events_keep_their_fields() {
    let app = start();
    let addr = app.addr("json_tcp");
    python(
        r#"
import logging, sys, logstash
host, port = sys.argv[1].rsplit(':', 1)
log = logging.getLogger('shop')
log.setLevel(logging.INFO)
log.addHandler(logstash.TCPLogstashHandler(host, int(port), version=1))
log.info('order placed', extra={'order_id': 'A-1001', 'amount': 42.5})
try:
    1 / 0
except ZeroDivisionError:
    log.exception('payment failed')
for h in log.handlers: h.close()
"#,
        &[&addr.to_string()],
    );
    let hits = wait_total(&app, "logger_name:shop", 2);
    let placed = hits.iter().find(|h| h["message"] == "order placed").expect("order placed event");
    assert_eq!(placed["order_id"], "A-1001");
    assert_eq!(placed["amount"], 42.5);
    assert_eq!(placed["level"], "INFO");
    assert_eq!(placed["source"], "json_tcp");
    let failed = hits.iter().find(|h| h["message"] == "payment failed").expect("payment failed event");
    assert!(failed["stack_trace"].as_str().unwrap_or("").contains("ZeroDivisionError"), "{failed}");
    assert_eq!(search(&app, "order_id:a-1001").0, 1, "keyword fields match case-insensitively");
    assert_eq!(search(&app, "amount:42.5").0, 1, "numbers are indexed as numbers");
}

#[test]
fn redis_py_pipelined_rpush_and_publish_into_the_resp_listener() {
    let app = start();
    let addr = app.addr("resp");
    let out = python(
        r#"
import json, sys, redis
host, port = sys.argv[1].rsplit(':', 1)
r = redis.Redis(host=host, port=int(port))
assert r.ping()
p = r.pipeline(transaction=False)
for i in range(300):
    p.rpush('logstash:beaver', json.dumps({'@version': 1, 'message': 'beaver line %d' % i, 'file': '/var/log/app.log', 'type': 'app'}))
replies = p.execute()
r.publish('logstash:beaver', json.dumps({'message': 'published one', 'type': 'app'}))
r.rpush('other', '{broken json')
print(json.dumps(replies))
"#,
        &[&addr.to_string()],
    );
    let replies: Vec<i64> = serde_json::from_str(out.trim()).expect("replies");
    assert_eq!(replies.len(), 300);
    assert!(replies.iter().all(|r| *r >= 1), "{replies:?}");
    let hits = wait_total(&app, "type:app", 301);
    assert!(hits.iter().any(|h| h["@version"] == 1), "Beaver's integer @version is kept");
    let broken = wait_total(&app, "tags:_jsonparsefailure", 1);
    assert_eq!(broken[0]["message"], "{broken json");
}

/// A real redis-server on a free port, stopped on drop.
struct RedisServer(std::process::Child, u16);

impl RedisServer {
    fn start() -> RedisServer {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run redis-server (tests/run installs it)");
        let server = RedisServer(child, port);
        eventually(Duration::from_secs(10), "redis-server up", || std::net::TcpStream::connect(("127.0.0.1", port)).ok());
        server
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_real_redis_list_is_drained_into_the_log_at_least_once() {
    let redis = RedisServer::start();
    let url = format!("redis://127.0.0.1:{}/0", redis.1);
    let push = r#"
import json, sys, redis
r = redis.Redis.from_url(sys.argv[1])
r.rpush('logstash', *[json.dumps({'message': 'queued %d' % i, 'app': 'billing'}) for i in range(int(sys.argv[2]))])
"#;
    python(push, &[&url, "700"]);
    let app = Appliance::start_with(
        Options::default().config(&format!("[logs]\ncommit_interval = \"200ms\"\n[[logs.redis]]\nurl = \"{url}\"\nkey = \"logstash\"\n")),
    );
    wait_total(&app, "app:billing", 700);
    python(push, &[&url, "300"]);
    wait_total(&app, "app:billing", 1000);
    let left = python("import sys, redis\nprint(redis.Redis.from_url(sys.argv[1]).llen('logstash'))", &[&url]);
    assert_eq!(left.trim(), "0", "events leave Redis once durable here");
}

/// Runs `script` with the Python client venv plus one Elasticsearch client major on the path.
pub(crate) fn python_with(path: &str, script: &str, args: &[&str]) -> String {
    let out = Command::new(client_python())
        .env("PYTHONPATH", path)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run python");
    assert!(out.status.success(), "python failed: {}\n{}", String::from_utf8_lossy(&out.stderr), script);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn es_client_path(major: u32) -> String {
    let venv = std::env::var_os("IOPS_ES_CLIENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| client_python().parent().unwrap().parent().unwrap().to_path_buf());
    let path = venv.join(format!("es{major}"));
    assert!(path.join("elasticsearch").is_dir(), "no elasticsearch {major}.x client at {} (tests/run installs it)", path.display());
    path.display().to_string()
}

#[test]
fn elasticsearch_py_8_and_9_and_opensearch_py_bulk() {
    let app = start();
    let url = format!("http://{}", app.addr("elasticsearch"));
    for major in [8, 9] {
        let out = python_with(
            &es_client_path(major),
            r#"
import sys
from elasticsearch import Elasticsearch, helpers
es = Elasticsearch(sys.argv[1])
info = es.info()
assert info['version']['number'].startswith('8.'), info
tag = sys.argv[2]
ok, errors = helpers.bulk(es, ({'_index': 'app-' + tag, '_id': '%s-%d' % (tag, i), 'message': 'doc %d' % i, 'client': tag} for i in range(500)))
print(ok, len(errors))
"#,
            &[&url, &format!("es{major}")],
        );
        assert_eq!(out.trim(), "500 0", "elasticsearch-py {major}.x");
        let hits = wait_total(&app, &format!("client:es{major}"), 500);
        assert!(hits.iter().all(|h| h["_index"] == format!("app-es{major}")));
    }
    let out = python(
        r#"
import sys
from opensearchpy import OpenSearch, helpers
os_ = OpenSearch(sys.argv[1])
ok, errors = helpers.bulk(os_, ({'_index': 'os', 'message': 'os doc %d' % i, 'client': 'opensearch'} for i in range(200)))
print(ok, len(errors))
"#,
        &[&url],
    );
    assert_eq!(out.trim(), "200 0");
    wait_total(&app, "client:opensearch", 200);
}

#[test]
fn bulk_semantics_per_item_with_gzip_crlf_and_whole_request_errors() {
    let app = start();
    let es = |path: &str, headers: &[(&str, &str)], body: &[u8]| {
        let reply = app.request_at("elasticsearch", "POST", path, headers, Some(body));
        assert_eq!(reply.headers.get("x-elastic-product").map(String::as_str), Some("Elasticsearch"), "every answer names the product");
        (reply.status, reply.body)
    };
    let body = "{\"index\":{\"_index\":\"b\",\"_id\":\"1\"}}\r\n{\"message\":\"one\"}\r\n\n{\"create\":{\"_index\":\"b\",\"_id\":\"1\"}}\n{\"message\":\"dup\"}\n{\"create\":{\"_index\":\"b\",\"_id\":\"2\"}}\n{\"message\": broken}\n{\"update\":{\"_index\":\"b\",\"_id\":\"1\"}}\n{\"doc\":{\"extra\":\"x\"}}\n{\"delete\":{\"_index\":\"b\",\"_id\":\"9\"}}\n{\"index\":{\"_id\":\"3\"}}\n{\"message\":\"no index\"}";
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, body.as_bytes()).unwrap();
    let (status, text) = es("/_bulk", &[("content-encoding", "gzip"), ("content-type", "application/x-ndjson")], &gz.finish().unwrap());
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["errors"], true);
    let statuses: Vec<u64> = v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_object().unwrap().values().next().unwrap()["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, vec![201, 409, 400, 200, 404, 400], "{text}");
    let hits = wait_total(&app, "_index:b", 1);
    assert_eq!((hits[0]["message"].clone(), hits[0]["extra"].clone()), (Value::from("one"), Value::from("x")));
    // `index` of an id that exists replaces it, in a later commit too; an
    // index without an id adds an event with a new one.
    let (status, text) =
        es("/_bulk", &[], b"{\"index\":{\"_index\":\"b\",\"_id\":\"1\"}}\n{\"message\":\"one again\"}\n{\"index\":{\"_index\":\"b\"}}\n{\"message\":\"auto\"}\n");
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (v["items"][0]["index"]["result"].clone(), v["items"][1]["index"]["result"].clone()),
        ("updated".into(), "created".into()),
        "{text}"
    );
    let hits = wait_total(&app, "_index:b", 2);
    let mut messages: Vec<&str> = hits.iter().filter_map(|h| h["message"].as_str()).collect();
    messages.sort();
    assert_eq!(messages, ["auto", "one again"]);
    // Whole-request errors.
    let (status, text) = es("/_bulk", &[], b"{\"frobnicate\":{}}\n{}\n");
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("illegal_argument_exception"), "{text}");
    let (status, _) = es("/_bulk", &[], b"");
    assert_eq!(status, 400);
    // The URL's index is the default.
    let (status, text) = es("/logs-x/_bulk", &[], b"{\"index\":{}}\n{\"message\":\"url index\"}\n");
    assert_eq!(status, 200, "{text}");
    wait_total(&app, "_index:logs-x", 1);
}

#[test]
fn graypy_chunked_zlib_gelf_over_udp() {
    let app = start();
    let addr = app.addr("gelf_udp");
    python(
        r#"
import logging, sys, graypy
host, port = sys.argv[1].rsplit(':', 1)
log = logging.getLogger('gelf-test')
log.setLevel(logging.INFO)
h = graypy.GELFUDPHandler(host, int(port), gelf_chunker=graypy.handler.GELFWarningChunker(chunk_size=400), compress=True, extra_fields=True)
log.addHandler(h)
log.info('short gelf message', extra={'request_id': 'r-77'})
log.warning('long gelf message ' + 'x' * 6000, extra={'request_id': 'r-78'})
"#,
        &[&addr.to_string()],
    );
    let hits = wait_total(&app, "request_id:r-77 OR request_id:r-78", 2);
    let long = hits.iter().find(|h| h["request_id"] == "r-78").expect("the chunked message");
    assert!(long["full_message"].as_str().or(long["message"].as_str()).unwrap_or("").contains(&"x".repeat(6000)), "{long}");
    assert_eq!(long["source"], "gelf_udp");
}

#[test]
fn kill_9_during_a_bulk_load_loses_no_acknowledged_event_and_duplicates_none() {
    let mut app = start();
    let url = format!("http://{}/crash/_bulk", app.addr("elasticsearch"));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let acked = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let loader = {
        let (stop, acked) = (stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let agent: ureq::Agent =
                ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(5))).build().into();
            for batch in 0..100_000u64 {
                if stop.load(std::sync::atomic::Ordering::Acquire) {
                    break;
                }
                // Odd batches leave the ids to the appliance (its append-only
                // path, replayed from its own WAL record kind).
                let given = batch % 2 == 0;
                let body: String = (0..200)
                    .map(|i| match given {
                        true => format!(
                            "{{\"index\":{{\"_id\":\"c{batch}-{i}\"}}}}\n{{\"message\":\"crash test {batch} {i}\",\"kind\":\"crash\"}}\n"
                        ),
                        false => format!("{{\"index\":{{}}}}\n{{\"message\":\"crash test {batch} {i}\",\"kind\":\"crash\"}}\n"),
                    })
                    .collect();
                match agent.post(&url).send(body.as_bytes()) {
                    Ok(mut r) if r.status() == 200 => {
                        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap_or_default()).unwrap_or(Value::Null);
                        if v["errors"] == false {
                            let items = v["items"].as_array().cloned().unwrap_or_default();
                            let ids = items.iter().filter_map(|item| item["index"]["_id"].as_str().map(String::from));
                            acked.lock().unwrap().extend(ids);
                        }
                    }
                    _ => break,
                }
            }
        })
    };
    eventually(Duration::from_secs(30), "some acknowledged batches", || (acked.lock().unwrap().len() >= 4000).then_some(()));
    app.kill9();
    stop.store(true, std::sync::atomic::Ordering::Release);
    loader.join().unwrap();
    let acked: HashSet<String> = acked.lock().unwrap().iter().cloned().collect();
    let data = app.data_dir();
    let app = Appliance::start_with(Options { data_dir: Some(data), ..logs_options() });
    let hits = eventually(Duration::from_secs(30), "every acknowledged event searchable", || {
        let (_, hits) = search_all(&app, "kind:crash");
        let ids: HashSet<String> = hits.iter().filter_map(|h| h["_id"].as_str().map(String::from)).collect();
        acked.is_subset(&ids).then_some(hits)
    });
    let mut seen: HashMap<String, u32> = HashMap::new();
    for h in &hits {
        *seen.entry(h["_id"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicated after replay: {:?}", &dups[..dups.len().min(5)]);
    assert!(hits.len() >= acked.len());
}

/// All hits of `q` (at most the API's limit, 10k, which the tests stay under).
fn search_all(app: &Appliance, q: &str) -> (u64, Vec<Value>) {
    let (total, hits) = search(app, q);
    assert!(total <= 10_000, "more than one page of hits for {q}: {total}");
    (total, hits)
}

#[test]
fn bad_input_is_counted_and_the_good_input_beside_it_is_kept() {
    let app =
        Appliance::start_with(Options::default().config("[logs]\ncommit_interval = \"200ms\"\nmax_event = \"1KiB\"\nmax_fields = 10\n"));
    let long = "y".repeat(3000);
    app.send_tcp("json_tcp", format!("{{\"message\":\"good 1\",\"t\":\"b\"}}\n{{\"message\":\"{long}\"}}\n{{\"message\":\"good 2\",\"t\":\"b\"}}\n{{\"a\":1,\"b\":2,\"c\":3,\"d\":4,\"e\":5,\"f\":6,\"g\":7,\"h\":8,\"i\":9,\"j\":10,\"t\":\"b\"}}\n").as_bytes());
    wait_total(&app, "t:b", 2);
    eventually(Duration::from_secs(10), "bad json lines counted", || {
        (app.counter("instantops_bad_lines_total{input=\"json_tcp\"}") == 2.0).then_some(())
    });
    // An octet count over the bound closes the connection; frames before it are kept.
    app.send_tcp("syslog_tcp", b"25 <13>1 - - app - - - kept!\n99999 <13>1 - - app - - - dropped\n");
    wait_total(&app, "program:app", 1);
    // HTTP: bad JSON is a failure event, an over-large body a 413.
    let reply = app.request("POST", "/api/logs", &[], Some(b"[{\"message\":\"arr 1\",\"t\":\"h\"},{\"message\":\"arr 2\",\"t\":\"h\"}]"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    wait_total(&app, "t:h", 2);
    let reply = app.request("POST", "/api/logs", &[], Some(b""));
    assert_eq!(reply.status, 400, "{}", reply.body);
}

/// A log store written by a build whose Tantivy used FST term dictionaries
/// (before the switch to sstable ones, tests/fixtures/logs-fst: 40 `_bulk`
/// events of 2026-11-20, the first five with ids `fst-0`..`fst-4`). Its
/// partition is set aside at start and indexed again from the stored events
/// after `ready`, once; every event is then found by word, phrase, field and
/// id, exactly once.
#[test]
fn a_partition_written_with_fst_term_dictionaries_is_rewritten_and_searchable() {
    fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            match entry.file_type().unwrap().is_dir() {
                true => copy_tree(&entry.path(), &to.join(entry.file_name())),
                false => drop(std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap()),
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    copy_tree(&repo_path("tests/fixtures/logs-fst"), &data.join("logs"));
    let options = || Options { data_dir: Some(data.clone()), ..logs_options() };
    let mut app = Appliance::start_with(options());
    assert!(app.stderr().contains("log partition of an older build set aside"), "{}", app.stderr());
    // Rewritten after `ready`, on a thread of its own.
    let hits = wait_total(&app, "fixture:fst", 40);
    assert!(app.stderr().contains("log partition rewritten"), "{}", app.stderr());
    let mut statuses: Vec<i64> = hits.iter().filter_map(|h| h["status"].as_i64()).collect();
    statuses.sort();
    assert_eq!(statuses, (200..240).collect::<Vec<_>>());
    wait_total(&app, "\"fst build event 7\"", 1);
    wait_total(&app, "status:[230 TO 239]", 10);
    // Ids: `create` of one that exists conflicts, of a new one does not.
    let reply = app.request_at(
        "elasticsearch",
        "POST",
        "/legacy/_bulk",
        &[],
        Some(b"{\"create\":{\"_id\":\"fst-3\"}}\n{\"message\":\"again\"}\n{\"create\":{\"_id\":\"fst-9\"}}\n{\"message\":\"new\",\"fixture\":\"fst\"}\n"),
    );
    let statuses: Vec<u64> = reply.json()["items"].as_array().unwrap().iter().map(|i| i["create"]["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [409, 201], "{}", reply.body);
    wait_total(&app, "fixture:fst", 41);
    app.terminate(Duration::from_secs(20)).expect("stops");
    let app = Appliance::start_with(options());
    wait_total(&app, "fixture:fst", 41);
    assert!(!app.stderr().contains("log partition rewritten"), "rewritten twice: {}", app.stderr());
}
