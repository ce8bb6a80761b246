//! `instantops bench logsearch`: query latency over a large log index, side
//! by side with bare Tantivy on the same events. It builds (once per
//! directory) two indexes of `--events` application events spread evenly
//! over the last 30 hours: the appliance's (its schema, partitions rolled by
//! event day as arrivals would) and a bare Tantivy one with a minimal schema
//! (time, message, host, level, the source stored). Then it times, over
//! random windows: a term query with a 1 h range (newest 100, with the
//! total), a phrase query the same way, a sparse conjunction over 6 h (its
//! hits one or a few to a doc-store block), and 24 h histograms (60 buckets);
//! and the same term and phrase queries through bare Tantivy.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, PhraseQuery, Query as TantivyQuery, RangeQuery, TermQuery};
use tantivy::schema::{FAST, INDEXED, IndexRecordOption, STORED, STRING, Schema, TEXT};
use tantivy::{Index, Order, TantivyDocument, Term};

use super::aggs;
use super::event::{Fields, IntoEvent, Parsed};
use super::index::LogIndex;
use super::query::{Operator, parse};
use super::search::{Limits, Order as SearchOrder, Request};
use crate::splitmix::SplitMix;

const SPAN_MS: i64 = 30 * 3_600_000;
const HOUR_MS: i64 = 3_600_000;

pub struct Plan {
    pub dir: PathBuf,
    pub events: u64,
    pub queries: usize,
}

/// Latencies of one query shape, in ms.
pub struct Timing {
    pub name: &'static str,
    pub samples: Vec<f64>,
    pub hits: u64,
}

impl Timing {
    fn percentile(&self, p: f64) -> f64 {
        let mut s = self.samples.clone();
        s.sort_by(f64::total_cmp);
        s[((s.len() as f64 - 1.0) * p).round() as usize]
    }

    pub fn line(&self) -> String {
        format!(
            "{:<34} p50 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms  ({} runs, {} matches on average)",
            self.name,
            self.percentile(0.5),
            self.percentile(0.99),
            self.percentile(1.0),
            self.samples.len(),
            self.hits / self.samples.len().max(1) as u64
        )
    }
}

/// One generated event: (time, its fields).
fn event(rng: &mut SplitMix, ts_ms: i64) -> Fields {
    let level = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"][rng.below(6) as usize];
    let service = ["checkout", "search", "auth", "billing"][rng.below(4) as usize];
    let verb = ["handled request", "retried payment", "served cache miss", "timed out upstream"][rng.below(4) as usize];
    let status = [200, 200, 200, 201, 304, 404, 500, 503][rng.below(8) as usize];
    let v = json!({
        "@timestamp": super::time::format_ms(ts_ms),
        "message": format!("{service} {verb} in {} ms for cart {} user {}", rng.below(900), rng.below(100_000), rng.below(5_000_000)),
        "level": level,
        "service": service,
        "host": format!("web-{:02}", rng.below(40)),
        "request_id": format!("{:016x}{:016x}", rng.next(), rng.next()),
        "user_id": rng.below(5_000_000),
        "duration_ms": rng.below(900),
        "status": status,
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object"),
    }
}

fn bare_schema() -> Schema {
    let mut b = Schema::builder();
    b.add_i64_field("ts", INDEXED | FAST);
    b.add_text_field("message", TEXT);
    b.add_text_field("host", STRING);
    b.add_text_field("level", STRING);
    b.add_text_field("_src", STORED);
    b.build()
}

/// Builds both indexes under `dir` unless a previous run left them complete.
fn build(plan: &Plan, end_ms: i64) -> Result<(u64, f64, f64), String> {
    let ours = plan.dir.join("instantops");
    let bare = plan.dir.join("bare");
    let marker = plan.dir.join(format!("built-{}", plan.events));
    if marker.exists() {
        let raw: u64 = std::fs::read_to_string(&marker).map_err(|e| e.to_string())?.trim().parse().unwrap_or(0);
        return Ok((raw, 0.0, 0.0));
    }
    let _ = std::fs::remove_dir_all(&ours);
    let _ = std::fs::remove_dir_all(&bare);
    std::fs::create_dir_all(&bare).map_err(|e| e.to_string())?;
    let start_ms = end_ms - SPAN_MS;
    let step = SPAN_MS as f64 / plan.events as f64;
    let (index, mut writer) = LogIndex::open(&ours, 256 << 20, 2, start_ms).map_err(|e| e.to_string())?;
    let schema = bare_schema();
    let bare_index = Index::create_in_dir(&bare, schema.clone()).map_err(|e| e.to_string())?;
    let mut bare_writer = bare_index.writer_with_num_threads(2, 256 << 20).map_err(|e| e.to_string())?;
    let f = |n: &str| schema.get_field(n).map_err(|e| e.to_string());
    let (ts_f, msg_f, host_f, level_f, src_f) = (f("ts")?, f("message")?, f("host")?, f("level")?, f("_src")?);
    let mut rng = SplitMix(0x5EA2C4);
    let (mut raw, mut ours_secs, mut bare_secs) = (0u64, 0f64, 0f64);
    for i in 0..plan.events {
        let ts = start_ms + (i as f64 * step) as i64;
        let fields = event(&mut rng, ts);
        let json = serde_json::to_string(&fields).map_err(|e| e.to_string())?;
        raw += json.len() as u64 + 1;
        let mut doc = TantivyDocument::new();
        doc.add_i64(ts_f, ts);
        doc.add_text(msg_f, fields["message"].as_str().unwrap_or(""));
        doc.add_text(host_f, fields["host"].as_str().unwrap_or(""));
        doc.add_text(level_f, fields["level"].as_str().unwrap_or(""));
        doc.add_text(src_f, &json);
        let t = Instant::now();
        bare_writer.add_document(doc).map_err(|e| e.to_string())?;
        bare_secs += t.elapsed().as_secs_f64();
        let event = Parsed { ts_ms: ts, fields }.into_event("bench", None, 1000).map_err(|e| e.to_string())?;
        let t = Instant::now();
        // Arrivals as they would come: a new partition each UTC day.
        if writer.should_roll(ts, u64::MAX) {
            writer.roll(&index, ts, i).map_err(|e| e.to_string())?;
        }
        writer.add(event).map_err(|e| e.to_string())?;
        ours_secs += t.elapsed().as_secs_f64();
        if i % 1_000_000 == 999_999 {
            eprintln!("built {} events", i + 1);
        }
    }
    let t = Instant::now();
    writer.commit(plan.events).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    ours_secs += t.elapsed().as_secs_f64();
    let t = Instant::now();
    bare_writer.commit().map_err(|e| e.to_string())?;
    bare_writer.wait_merging_threads().map_err(|e| e.to_string())?;
    bare_secs += t.elapsed().as_secs_f64();
    std::fs::write(&marker, raw.to_string()).map_err(|e| e.to_string())?;
    Ok((raw, ours_secs, bare_secs))
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .filter_map(|e| e.ok())
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Runs the plan; returns the report lines.
pub fn run(plan: &Plan) -> Result<Vec<String>, String> {
    std::fs::create_dir_all(&plan.dir).map_err(|e| format!("cannot create {}: {e}", plan.dir.display()))?;
    // The build's time axis is kept in a file so that a rerun queries the same span.
    let end_file = plan.dir.join("end_ms");
    let end_ms = match std::fs::read_to_string(&end_file).ok().and_then(|s| s.trim().parse().ok()) {
        Some(e) if plan.dir.join(format!("built-{}", plan.events)).exists() => e,
        _ => {
            let now = super::time::now_ms();
            std::fs::write(&end_file, now.to_string()).map_err(|e| e.to_string())?;
            now
        }
    };
    let (raw, ours_secs, bare_secs) = build(plan, end_ms)?;
    let mut out = vec![format!(
        "{} events, {:.2} GB raw JSON; index on disk: instantops {:.2} GB, bare {:.2} GB",
        plan.events,
        raw as f64 / 1e9,
        dir_size(&plan.dir.join("instantops")) as f64 / 1e9,
        dir_size(&plan.dir.join("bare")) as f64 / 1e9
    )];
    if ours_secs > 0.0 {
        out.push(format!(
            "build (indexing calls and commit only): instantops {:.0} events/s, bare {:.0} events/s",
            plan.events as f64 / ours_secs,
            plan.events as f64 / bare_secs
        ));
    }
    let (index, writer) = LogIndex::open(&plan.dir.join("instantops"), 16 << 20, 1, end_ms).map_err(|e| e.to_string())?;
    drop(writer);
    let bare = Index::open_in_dir(plan.dir.join("bare")).map_err(|e| e.to_string())?;
    let reader = bare.reader().map_err(|e| e.to_string())?;
    let bare_searcher = reader.searcher();
    let schema = bare.schema();
    let field = |n: &str| schema.get_field(n).map_err(|e| e.to_string());
    let (ts_f, msg_f, level_f, src_f) = (field("ts")?, field("message")?, field("level")?, field("_src")?);
    let limits = Limits { timeout: Duration::from_secs(60), ..Limits::default() };
    let mut rng = SplitMix(0xBE4C);
    let start_ms = end_ms - SPAN_MS;
    let windows: Vec<i64> = (0..plan.queries).map(|_| start_ms + 6 * HOUR_MS + rng.below((SPAN_MS - 6 * HOUR_MS) as u64) as i64).collect();
    let mut timings = Vec::new();
    // The third shape's newest 100 are ~240 events apart, one or a few to a
    // doc-store block: what a block's size costs a search.
    for (name, q, hours) in [
        ("term level:ERROR, 1 h, newest 100", "level:ERROR", 1),
        ("phrase \"retried payment\", 1 h, newest 100", "\"retried payment\"", 1),
        ("sparse host:web-07 AND level:ERROR, 6 h", "host:web-07 AND level:ERROR", 6),
    ] {
        let query = parse(q, Operator::And).map_err(|e| e.to_string())?;
        let mut t = Timing { name, samples: Vec::new(), hits: 0 };
        for &until in &windows {
            let req = Request {
                query: query.clone(),
                from_ms: until - hours * HOUR_MS,
                until_ms: until,
                order: SearchOrder::NewestFirst,
                offset: 0,
                limit: 100,
                after: None,
            };
            let started = Instant::now();
            let found = index.find(&req, &limits, end_ms).map_err(|e| e.to_string())?;
            t.samples.push(started.elapsed().as_secs_f64() * 1000.0);
            t.hits += found.total;
            if found.hits.len() != 100 {
                return Err(format!("{q}: {} hits, not 100", found.hits.len()));
            }
        }
        timings.push(t);
    }
    let hist = aggs::plan(&json!({"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "24m", "min_doc_count": 0}}}), end_ms)
        .map_err(|e| e.to_string())?;
    for (name, q) in [("histogram *, 24 h, 60 buckets", "*"), ("histogram level:ERROR, 24 h, 60 buckets", "level:ERROR")] {
        let query = parse(q, Operator::And).map_err(|e| e.to_string())?;
        let mut t = Timing { name, samples: Vec::new(), hits: 0 };
        for _ in 0..plan.queries.min(50) {
            let until = end_ms - rng.below((SPAN_MS - 24 * HOUR_MS) as u64) as i64;
            let started = Instant::now();
            let (n, results, _) = index
                .aggregate(&query, until - 24 * HOUR_MS, until, Some(hist.request.clone()), &limits, end_ms)
                .map_err(|e| e.to_string())?;
            t.samples.push(started.elapsed().as_secs_f64() * 1000.0);
            t.hits += n;
            let buckets = aggs::histogram_counts(results.as_ref(), "h");
            if buckets.iter().map(|b| b.1).sum::<u64>() != n {
                return Err(format!("histogram of {q}: buckets do not add up to {n}"));
            }
        }
        timings.push(t);
    }
    // Bare Tantivy: the same term and phrase over the same windows.
    let term: Box<dyn TantivyQuery> = Box::new(TermQuery::new(Term::from_field_text(level_f, "ERROR"), IndexRecordOption::Basic));
    let phrase: Box<dyn TantivyQuery> =
        Box::new(PhraseQuery::new(vec![Term::from_field_text(msg_f, "retried"), Term::from_field_text(msg_f, "payment")]));
    for (name, q) in [("bare Tantivy term, 1 h, newest 100", term), ("bare Tantivy phrase, 1 h, newest 100", phrase)] {
        let mut t = Timing { name, samples: Vec::new(), hits: 0 };
        for &until in &windows {
            let started = Instant::now();
            let range = RangeQuery::new(
                std::ops::Bound::Included(Term::from_field_i64(ts_f, until - HOUR_MS)),
                std::ops::Bound::Included(Term::from_field_i64(ts_f, until)),
            );
            let both = BooleanQuery::new(vec![(Occur::Must, Box::new(range)), (Occur::Must, q.box_clone())]);
            let (count, top) = bare_searcher
                .search(&both, &(Count, TopDocs::with_limit(100).order_by_fast_field::<i64>("ts", Order::Desc)))
                .map_err(|e| e.to_string())?;
            let mut bytes = 0;
            for (_, addr) in top {
                let doc: TantivyDocument = bare_searcher.doc(addr).map_err(|e| e.to_string())?;
                bytes += doc.get_first(src_f).and_then(|v| tantivy::schema::Value::as_str(&v)).map_or(0, str::len);
            }
            t.samples.push(started.elapsed().as_secs_f64() * 1000.0);
            t.hits += count as u64;
            if bytes == 0 {
                return Err("bare Tantivy returned no sources".into());
            }
        }
        timings.push(t);
    }
    for t in &timings {
        out.push(t.line());
    }
    let ratio = |a: usize, b: usize| timings[a].percentile(0.5) / timings[b].percentile(0.5).max(1e-9);
    out.push(format!("median ratio instantops / bare: term {:.2}x, phrase {:.2}x", ratio(0, 5), ratio(1, 6)));
    Ok(out)
}
