//! Reading the log index: a parsed query (`query.rs`) compiled for Tantivy,
//! run over only the partitions whose time range overlaps the request,
//! newest (or oldest) first with a stable cursor, and aggregations (Tantivy's
//! Elasticsearch-style ones) merged across partitions.
//!
//! Field names: `message` is full text (the default field), `@timestamp` is
//! the event time, `_id` the Elasticsearch id, and every other name is a path
//! into the event (`host.name` finds `{"host":{"name":..}}` and
//! `{"host.name":..}` alike). A `.keyword` suffix, as Kibana and Grafana
//! write it, names the same field.
//!
//! Bounds (config `logs.search_*`): every query stops collecting at its
//! deadline and says it timed out (with what it found so far, as
//! Elasticsearch does); aggregations are held to a memory and bucket limit;
//! a page (offset + limit) is at most the result window.

use std::ops::Bound as RangeBound;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::IntermediateAggregationResults;
use tantivy::aggregation::{AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector};
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, Occur, PhraseQuery, Query as TantivyQuery, RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, DocId, Score, SegmentReader, Term};

use super::index::{ATTRS, IndexError, LogIndex, Partition, SEQ, TS};
use super::query::{Bound, Query};
use super::time::parse_date_math;

/// The `logs.search_*` bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub timeout: Duration,
    /// Memory an aggregation may hold.
    pub memory: u64,
    /// Most buckets an aggregation may return.
    pub buckets: u32,
    /// Most events a page may reach into (offset + limit).
    pub window: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { timeout: Duration::from_secs(30), memory: 256 << 20, buckets: 65_000, window: 10_000 }
    }
}

/// Where a hit sits in the total order: time, then partition, then arrival.
/// Stable across merges and restarts, so it serves as a paging cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Position {
    pub ts: i64,
    pub part: u64,
    pub seq: u64,
}

impl Position {
    /// `ts.part.seq`, what `/api/logs/search` hands out as `cursor`.
    pub fn encode(&self) -> String {
        format!("{}.{}.{}", self.ts, self.part, self.seq)
    }

    pub fn decode(text: &str) -> Option<Position> {
        let mut it = text.split('.');
        let p = Position { ts: it.next()?.parse().ok()?, part: it.next()?.parse().ok()?, seq: it.next()?.parse().ok()? };
        it.next().is_none().then_some(p)
    }

    /// The tiebreak alone, as Elasticsearch `sort` values carry it.
    pub fn tiebreak(&self) -> String {
        format!("{}.{}", self.part, self.seq)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    NewestFirst,
    OldestFirst,
}

/// What to find.
#[derive(Debug, Clone)]
pub struct Request {
    pub query: Query,
    /// Inclusive, epoch ms.
    pub from_ms: i64,
    pub until_ms: i64,
    pub order: Order,
    pub offset: usize,
    pub limit: usize,
    /// Only hits strictly after this one in `order`.
    pub after: Option<Position>,
}

pub struct Hit {
    pub position: Position,
    /// The event as stored (JSON).
    pub source: String,
}

pub struct Found {
    /// Every match in the time range, the cursor aside (as Elasticsearch counts).
    pub total: u64,
    pub hits: Vec<Hit>,
    pub timed_out: bool,
    /// Partitions read: only those whose time range overlaps the request.
    pub partitions: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The request is wrong: 400.
    #[error("{0}")]
    Bad(String),
    #[error(transparent)]
    Index(#[from] IndexError),
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        match e {
            tantivy::TantivyError::AggregationError(a) => SearchError::Bad(a.to_string()),
            tantivy::TantivyError::InvalidArgument(a) => SearchError::Bad(a),
            tantivy::TantivyError::SchemaError(a) => SearchError::Bad(a),
            other => SearchError::Index(IndexError::Tantivy(other)),
        }
    }
}

/// What a field name means to the index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Message,
    Timestamp,
    Id,
    /// A path into the event's other fields.
    Attr(String),
}

/// Resolves a field name as queries and aggregations write it.
pub fn target(field: Option<&str>) -> Target {
    let name = field.unwrap_or("message");
    let name = name.strip_suffix(".keyword").unwrap_or(name);
    match name {
        "" | "message" | "*" | "_all" => Target::Message,
        "@timestamp" | "timestamp" => Target::Timestamp,
        "_id" => Target::Id,
        other => Target::Attr(other.to_owned()),
    }
}

/// The columnar name of a field, for aggregations and statistics.
pub fn column(field: &str) -> Result<String, SearchError> {
    match target(Some(field)) {
        Target::Timestamp => Ok(TS.to_owned()),
        Target::Attr(path) => Ok(format!("{ATTRS}.{path}")),
        Target::Message => Err(SearchError::Bad(format!("{field:?} is full text: it has no per-value statistics"))),
        Target::Id => Err(SearchError::Bad("_id has no per-value statistics".into())),
    }
}

impl LogIndex {
    /// The partitions whose events may match: inside `[from_ms, until_ms]`
    /// and inside the `@timestamp` ranges the query itself requires (an
    /// Elasticsearch body's `range` filter, a Lucene `@timestamp:[..]`).
    fn overlapping(&self, query: &Query, from_ms: i64, until_ms: i64, now_ms: i64) -> Vec<Arc<Partition>> {
        let (lo, hi) = time_bounds(query, now_ms);
        let (from_ms, until_ms) = (from_ms.max(lo), until_ms.min(hi));
        self.partitions()
            .into_iter()
            .filter(|p| {
                let m = p.meta();
                m.docs > 0 && m.max_ts >= from_ms && m.min_ts <= until_ms
            })
            .collect()
    }

    /// `query` within the time range, as Tantivy runs it.
    fn compiled(&self, query: &Query, from_ms: i64, until_ms: i64, now_ms: i64) -> Result<Box<dyn TantivyQuery>, SearchError> {
        let range = ts_range(self.fields().ts, RangeBound::Included(from_ms), RangeBound::Included(until_ms));
        if *query == Query::All {
            return Ok(range);
        }
        let compiled = Compiler { index: self, now_ms }.compile(query)?;
        Ok(Box::new(BooleanQuery::new(vec![(Occur::Must, range), (Occur::Must, compiled)])))
    }

    /// The page of events `req` asks for, and how many match in all.
    pub fn find(&self, req: &Request, limits: &Limits, now_ms: i64) -> Result<Found, SearchError> {
        if req.offset.saturating_add(req.limit) > limits.window {
            return Err(SearchError::Bad(format!(
                "offset + limit ({}) is over the result window ({}): page with a cursor instead",
                req.offset.saturating_add(req.limit),
                limits.window
            )));
        }
        let query = self.compiled(&req.query, req.from_ms, req.until_ms, now_ms)?;
        let deadline = Instant::now() + limits.timeout;
        let timed_out = Arc::new(AtomicBool::new(false));
        let wanted = req.offset + req.limit;
        let mut total = 0u64;
        // Each hit keeps the searcher that found it: a reload in between (a
        // commit, a finished merge) renumbers segments, and a doc address is
        // only good in the searcher it came from.
        let mut hits: Vec<(Position, tantivy::Searcher, DocAddress)> = Vec::new();
        let mut parts = self.overlapping(&req.query, req.from_ms, req.until_ms, now_ms);
        let partitions = parts.len();
        if req.order == Order::NewestFirst {
            parts.reverse();
        }
        for part in parts {
            if Instant::now() > deadline {
                timed_out.store(true, Ordering::Relaxed);
                break;
            }
            let searcher = part.searcher();
            let part_no = part.number();
            let (order, after) = (req.order, req.after);
            let keyed = move |segment: &SegmentReader| {
                let ts = segment.fast_fields().i64(TS).ok().map(|c| c.first_or_default_col(0));
                let seq = segment.fast_fields().u64(SEQ).ok().map(|c| c.first_or_default_col(0));
                move |doc: DocId| {
                    let p = Position {
                        ts: ts.as_ref().map_or(0, |c| c.get_val(doc)),
                        part: part_no,
                        seq: seq.as_ref().map_or(0, |c| c.get_val(doc)),
                    };
                    rank(p, order, after)
                }
            };
            let top = TopDocs::with_limit(wanted.max(1)).order_by(keyed);
            let collector = Deadline { inner: (Count, top), deadline, timed_out: timed_out.clone() };
            let (count, top) = searcher.search(&*query, &collector)?;
            total += count as u64;
            for (key, addr) in top {
                if let Rank::Kept(p) = key.rank {
                    hits.push((p, searcher.clone(), addr));
                }
            }
        }
        hits.sort_by(|a, b| match req.order {
            Order::NewestFirst => b.0.cmp(&a.0),
            Order::OldestFirst => a.0.cmp(&b.0),
        });
        let page = hits.into_iter().skip(req.offset).take(req.limit);
        let mut out = Vec::with_capacity(req.limit);
        for (position, searcher, addr) in page {
            out.push(Hit { position, source: self.source(&searcher, addr)? });
        }
        Ok(Found { total, hits: out, timed_out: timed_out.load(Ordering::Relaxed), partitions })
    }

    /// How many events match, and Tantivy's aggregation results (as JSON,
    /// Elasticsearch's shape) for `aggs` over them.
    pub fn aggregate(
        &self,
        query: &Query,
        from_ms: i64,
        until_ms: i64,
        aggs: Option<Aggregations>,
        limits: &Limits,
        now_ms: i64,
    ) -> Result<(u64, Option<serde_json::Value>, bool), SearchError> {
        let compiled = self.compiled(query, from_ms, until_ms, now_ms)?;
        let deadline = Instant::now() + limits.timeout;
        let timed_out = Arc::new(AtomicBool::new(false));
        let guard = || AggregationLimitsGuard::new(Some(limits.memory), Some(limits.buckets));
        let mut total = 0u64;
        let mut merged: Option<IntermediateAggregationResults> = None;
        for part in self.overlapping(query, from_ms, until_ms, now_ms) {
            if Instant::now() > deadline {
                timed_out.store(true, Ordering::Relaxed);
                break;
            }
            let searcher = part.searcher();
            match &aggs {
                Some(aggs) => {
                    let collector =
                        DistributedAggregationCollector::from_aggs(aggs.clone(), AggContextParams::new(guard(), self.tokenizer_manager()));
                    let bounded = Deadline { inner: (Count, collector), deadline, timed_out: timed_out.clone() };
                    let (count, fruit) = searcher.search(&*compiled, &bounded)?;
                    total += count as u64;
                    match &mut merged {
                        Some(m) => m.merge_fruits(fruit)?,
                        None => merged = Some(fruit),
                    }
                }
                None => {
                    let bounded = Deadline { inner: Count, deadline, timed_out: timed_out.clone() };
                    total += searcher.search(&*compiled, &bounded)? as u64;
                }
            }
        }
        let results = match aggs {
            None => None,
            Some(aggs) => {
                let merged = merged.unwrap_or_default();
                let done = merged.into_final_result(aggs, guard())?;
                Some(serde_json::to_value(done).map_err(|e| SearchError::Bad(format!("aggregation result: {e}")))?)
            }
        };
        Ok((total, results, timed_out.load(Ordering::Relaxed)))
    }

    /// The newest `limit` events matching `query` (Lucene syntax, AND between
    /// clauses) in `[from_ms, until_ms]`: (total, events as stored).
    pub fn search(&self, query: &str, from_ms: i64, until_ms: i64, limit: usize) -> Result<(u64, Vec<String>), SearchError> {
        let query = super::query::parse(query, super::query::Operator::And).map_err(|e| SearchError::Bad(e.to_string()))?;
        let req = Request { query, from_ms, until_ms, order: Order::NewestFirst, offset: 0, limit, after: None };
        let found = self.find(&req, &Limits::default(), super::time::now_ms())?;
        Ok((found.total, found.hits.into_iter().map(|h| h.source).collect()))
    }

    /// The newest `n` events (at most the result window) matching `query`,
    /// as stored: for inferring field types (`_mapping`).
    pub fn sample(&self, query: Query, n: usize, limits: &Limits, now_ms: i64) -> Result<Vec<String>, SearchError> {
        let req = Request {
            query,
            from_ms: i64::MIN / 2,
            until_ms: i64::MAX / 2,
            order: Order::NewestFirst,
            offset: 0,
            limit: n.min(limits.window),
            after: None,
        };
        Ok(self.find(&req, limits, now_ms)?.hits.into_iter().map(|h| h.source).collect())
    }
}

/// A hit's sort key: kept (ordered so that the best is the largest), or
/// excluded because it is not after the cursor.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum Rank {
    Excluded,
    Kept(Position),
}

fn rank(p: Position, order: Order, after: Option<Position>) -> RankKey {
    let kept = match (order, after) {
        (_, None) => true,
        (Order::NewestFirst, Some(a)) => p < a,
        (Order::OldestFirst, Some(a)) => p > a,
    };
    RankKey { rank: if kept { Rank::Kept(p) } else { Rank::Excluded }, oldest_first: order == Order::OldestFirst }
}

/// [`Rank`] with the order applied: Tantivy keeps the largest keys.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RankKey {
    rank: Rank,
    oldest_first: bool,
}

impl PartialOrd for RankKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        use std::cmp::Ordering::*;
        Some(match (self.rank, other.rank) {
            (Rank::Excluded, Rank::Excluded) => Equal,
            (Rank::Excluded, Rank::Kept(_)) => Less,
            (Rank::Kept(_), Rank::Excluded) => Greater,
            (Rank::Kept(a), Rank::Kept(b)) if self.oldest_first => b.cmp(&a),
            (Rank::Kept(a), Rank::Kept(b)) => a.cmp(&b),
        })
    }
}

/// The time range every match of `q` lies in, from its required
/// `@timestamp` ranges (each end widened to the whole rounded unit, so it
/// never excludes a match); unbounded where the query says nothing.
fn time_bounds(q: &Query, now_ms: i64) -> (i64, i64) {
    match q {
        Query::Range { field, lower, upper } if target(Some(field)) == Target::Timestamp => {
            let end = |b: &Bound, up: bool, open: i64| match b {
                Bound::Included(v) | Bound::Excluded(v) => parse_date_math(v, now_ms, up).unwrap_or(open),
                Bound::Unbounded => open,
            };
            (end(lower, false, i64::MIN), end(upper, true, i64::MAX))
        }
        Query::Bool { must, .. } => must.iter().fold((i64::MIN, i64::MAX), |(lo, hi), q| {
            let (l, h) = time_bounds(q, now_ms);
            (lo.max(l), hi.min(h))
        }),
        _ => (i64::MIN, i64::MAX),
    }
}

fn ts_range(field: tantivy::schema::Field, from: RangeBound<i64>, until: RangeBound<i64>) -> Box<dyn TantivyQuery> {
    let term = |v: i64| Term::from_field_i64(field, v);
    Box::new(RangeQuery::new(map_bound(from, term), map_bound(until, term)))
}

fn map_bound<T, U>(b: RangeBound<T>, f: impl Fn(T) -> U) -> RangeBound<U> {
    match b {
        RangeBound::Included(v) => RangeBound::Included(f(v)),
        RangeBound::Excluded(v) => RangeBound::Excluded(f(v)),
        RangeBound::Unbounded => RangeBound::Unbounded,
    }
}

/// Compiles the query tree for one index's schema.
struct Compiler<'a> {
    index: &'a LogIndex,
    now_ms: i64,
}

impl Compiler<'_> {
    fn compile(&self, q: &Query) -> Result<Box<dyn TantivyQuery>, SearchError> {
        let f = self.index.fields();
        Ok(match q {
            Query::All => Box::new(AllQuery),
            Query::Term { field, value } | Query::Phrase { field, text: value, .. } => {
                let slop = if let Query::Phrase { slop, .. } = q { *slop } else { 0 };
                match target(field.as_deref()) {
                    Target::Message => self.text(value, slop),
                    Target::Timestamp => {
                        let ms = self.time(value, false)?;
                        ts_range(f.ts, RangeBound::Included(ms), RangeBound::Included(ms))
                    }
                    Target::Id => Box::new(TermQuery::new(Term::from_field_text(f.id, value), IndexRecordOption::Basic)),
                    Target::Attr(path) => self.attr_value(&path, value),
                }
            }
            Query::Wildcard { field, pattern } => {
                let (field, prefix) = match target(field.as_deref()) {
                    Target::Message => (f.message, String::new()),
                    Target::Id => (f.id, String::new()),
                    Target::Timestamp => return Err(SearchError::Bad("@timestamp takes a time or a range, not a wildcard".into())),
                    Target::Attr(path) => (f.attrs, format!("{}\\x00s", regex_escape(&json_path(&path)))),
                };
                let lowered = if field == f.id { pattern.clone() } else { pattern.to_lowercase() };
                let regex = format!("{prefix}{}", wildcard_regex(&lowered));
                Box::new(RegexQuery::from_pattern(&regex, field).map_err(|e| SearchError::Bad(format!("wildcard {pattern:?}: {e}")))?)
            }
            Query::Range { field, lower, upper } => match target(Some(field)) {
                Target::Timestamp => {
                    let lo = self.time_bound(lower, false)?;
                    let hi = self.time_bound(upper, true)?;
                    ts_range(f.ts, lo, hi)
                }
                Target::Attr(path) => self.attr_range(&path, lower, upper)?,
                Target::Message | Target::Id => {
                    return Err(SearchError::Bad(format!("{field} cannot take a range: it is not a number, time or keyword")));
                }
            },
            Query::Exists { field } => match target(Some(field)) {
                Target::Timestamp => Box::new(AllQuery),
                Target::Message => Box::new(RegexQuery::from_pattern(".*", f.message).map_err(|e| SearchError::Bad(e.to_string()))?),
                Target::Id => Box::new(RegexQuery::from_pattern(".*", f.id).map_err(|e| SearchError::Bad(e.to_string()))?),
                Target::Attr(path) => Box::new(ExistsQuery::new(format!("{ATTRS}.{path}"), true)),
            },
            Query::Bool { must, should, must_not, min_should } => {
                let mut clauses: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
                for q in must {
                    clauses.push((Occur::Must, self.compile(q)?));
                }
                let shoulds: Vec<Box<dyn TantivyQuery>> = should.iter().map(|q| self.compile(q)).collect::<Result<_, _>>()?;
                if !shoulds.is_empty() && *min_should > 0 {
                    let any = shoulds.into_iter().map(|q| (Occur::Should, q)).collect();
                    clauses.push((Occur::Must, Box::new(BooleanQuery::with_minimum_required_clauses(any, *min_should))));
                }
                if clauses.is_empty() {
                    // Only exclusions (or optional clauses): everything else.
                    clauses.push((Occur::Must, Box::new(AllQuery)));
                }
                for q in must_not {
                    clauses.push((Occur::MustNot, self.compile(q)?));
                }
                Box::new(BooleanQuery::new(clauses))
            }
        })
    }

    /// Full text: one token is a term, more are a phrase.
    fn text(&self, value: &str, slop: u32) -> Box<dyn TantivyQuery> {
        let field = self.index.fields().message;
        let mut analyzer = self.index.tokenizer_manager().get("default").expect("the default tokenizer is registered");
        let mut terms = Vec::new();
        let mut stream = analyzer.token_stream(value);
        while let Some(token) = stream.next() {
            terms.push((token.position, Term::from_field_text(field, &token.text)));
        }
        match terms.len() {
            0 => Box::new(EmptyQuery),
            1 => Box::new(TermQuery::new(terms.remove(0).1, IndexRecordOption::Basic)),
            _ => Box::new(PhraseQuery::new_with_offset_and_slop(terms, slop)),
        }
    }

    /// `path:value`: the keyword (case-insensitive), or the number or boolean it spells.
    fn attr_value(&self, path: &str, value: &str) -> Box<dyn TantivyQuery> {
        let f = self.index.fields();
        let base = Term::from_field_json_path(f.attrs, path, true);
        let mut any: Vec<(Occur, Box<dyn TantivyQuery>)> = Vec::new();
        let mut keyword = base.clone();
        keyword.append_type_and_str(&value.to_lowercase());
        any.push((Occur::Should, Box::new(TermQuery::new(keyword, IndexRecordOption::Basic))));
        if let Some(number) = number_term(&base, value) {
            any.push((Occur::Should, Box::new(TermQuery::new(number, IndexRecordOption::Basic))));
        }
        match value {
            "true" | "false" => {
                let mut b = base.clone();
                b.append_type_and_fast_value(value == "true");
                any.push((Occur::Should, Box::new(TermQuery::new(b, IndexRecordOption::Basic))));
            }
            _ => {}
        }
        if any.len() == 1 { any.pop().expect("one clause").1 } else { Box::new(BooleanQuery::new(any)) }
    }

    /// A range on a path: numeric when both ends are numbers (or open),
    /// otherwise on the values as written.
    fn attr_range(&self, path: &str, lower: &Bound, upper: &Bound) -> Result<Box<dyn TantivyQuery>, SearchError> {
        let f = self.index.fields();
        let base = Term::from_field_json_path(f.attrs, path, true);
        let numeric = [lower, upper].iter().all(|b| match b {
            Bound::Unbounded => true,
            Bound::Included(v) | Bound::Excluded(v) => v.parse::<f64>().is_ok(),
        });
        if matches!((lower, upper), (Bound::Unbounded, Bound::Unbounded)) {
            return Ok(Box::new(ExistsQuery::new(format!("{ATTRS}.{path}"), true)));
        }
        let term = |v: &String| -> Term {
            let mut t = base.clone();
            if numeric {
                match v.parse::<i64>() {
                    Ok(i) => t.append_type_and_fast_value(i),
                    Err(_) => t.append_type_and_fast_value(v.parse::<f64>().unwrap_or(0.0)),
                }
            } else {
                t.append_type_and_str(v);
            }
            t
        };
        let end = |b: &Bound| match b {
            Bound::Included(v) => RangeBound::Included(term(v)),
            Bound::Excluded(v) => RangeBound::Excluded(term(v)),
            Bound::Unbounded => RangeBound::Unbounded,
        };
        Ok(Box::new(RangeQuery::new(end(lower), end(upper))))
    }

    fn time(&self, text: &str, round_up: bool) -> Result<i64, SearchError> {
        parse_date_math(text, self.now_ms, round_up).ok_or_else(|| {
            SearchError::Bad(format!("{text:?} is not a time: use epoch ms, ISO 8601, or date math such as now-15m or now/d"))
        })
    }

    fn time_bound(&self, b: &Bound, upper: bool) -> Result<RangeBound<i64>, SearchError> {
        Ok(match b {
            Bound::Unbounded => RangeBound::Unbounded,
            Bound::Included(v) => RangeBound::Included(self.time(v, upper)?),
            // `{now/d TO ...`: past the whole rounded day when excluded below.
            Bound::Excluded(v) => RangeBound::Excluded(self.time(v, !upper)?),
        })
    }
}

/// The numeric term `value` spells at `base`, normalized as Tantivy indexes numbers.
fn number_term(base: &Term, value: &str) -> Option<Term> {
    if value.parse::<f64>().is_err() {
        return None;
    }
    let term = tantivy::json_utils::convert_to_fast_value_and_append_to_json_term(base, value, true)?;
    // Strings that read as dates stay keywords in this index.
    (term.value().json_path_type() != Some(tantivy::schema::Type::Date)).then_some(term)
}

/// A path as the JSON field stores it: segments joined by `\x01`.
fn json_path(path: &str) -> String {
    path.replace('.', "\u{1}")
}

fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{1}' => out.push_str("\\x01"),
            c if "\\.+*?()|[]{}^$#&-~".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// A Lucene wildcard (`*` any run, `?` one character, `\*` a literal) as a regex.
pub fn wildcard_regex(pattern: &str) -> String {
    let mut out = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push_str(&regex_escape(&n.to_string()));
                }
            }
            c => out.push_str(&regex_escape(&c.to_string())),
        }
    }
    out
}

/// Stops feeding the inner collector once the deadline passes (checked every
/// 1024 documents), and says so.
struct Deadline<C> {
    inner: C,
    deadline: Instant,
    timed_out: Arc<AtomicBool>,
}

struct DeadlineChild<S> {
    inner: S,
    seen: u32,
    stopped: bool,
    deadline: Instant,
    timed_out: Arc<AtomicBool>,
}

impl<C: Collector> Collector for Deadline<C> {
    type Fruit = C::Fruit;
    type Child = DeadlineChild<C::Child>;

    fn for_segment(&self, ord: u32, reader: &SegmentReader) -> tantivy::Result<Self::Child> {
        Ok(DeadlineChild {
            inner: self.inner.for_segment(ord, reader)?,
            seen: 0,
            stopped: false,
            deadline: self.deadline,
            timed_out: self.timed_out.clone(),
        })
    }

    fn requires_scoring(&self) -> bool {
        self.inner.requires_scoring()
    }

    fn merge_fruits(&self, fruits: Vec<<C::Child as SegmentCollector>::Fruit>) -> tantivy::Result<Self::Fruit> {
        self.inner.merge_fruits(fruits)
    }
}

impl<S: SegmentCollector> SegmentCollector for DeadlineChild<S> {
    type Fruit = S::Fruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.stopped {
            return;
        }
        self.seen = self.seen.wrapping_add(1);
        if self.seen.is_multiple_of(1024) && Instant::now() > self.deadline {
            self.stopped = true;
            self.timed_out.store(true, Ordering::Relaxed);
            return;
        }
        self.inner.collect(doc, score);
    }

    fn harvest(self) -> Self::Fruit {
        self.inner.harvest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::event::{Fields, IntoEvent, Parsed};
    use crate::logs::query::{Operator, parse};
    use serde_json::Value;

    const DAY: i64 = 86_400_000;

    fn add(w: &mut crate::logs::index::Writer, ts_ms: i64, message: &str, host: &str) {
        let mut fields = Fields::new();
        fields.insert("message".into(), Value::String(message.into()));
        fields.insert("host".into(), Value::String(host.into()));
        let event = Parsed { ts_ms, fields }.into_event("test", None, 100).expect("an event");
        w.add(event).expect("added");
    }

    fn request(q: &str, from_ms: i64, until_ms: i64, limit: usize) -> Request {
        let query = parse(q, Operator::And).expect("query");
        Request { query, from_ms, until_ms, order: Order::NewestFirst, offset: 0, limit, after: None }
    }

    #[test]
    fn only_overlapping_partitions_are_read_and_cursors_survive_ties() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day0 = 100 * DAY;
        let (index, mut w) = LogIndex::open(dir.path(), 16 << 20, 1, day0).expect("open");
        for d in 0..3 {
            // Ten events at the very same millisecond per day: ties to page through.
            for i in 0..10 {
                add(&mut w, day0 + d * DAY, &format!("day {d} event {i}"), "h");
            }
            w.commit(10 + d as u64).expect("commit");
            w.roll(&index, day0 + (d + 1) * DAY, 10 + d as u64).expect("roll");
        }
        let limits = Limits::default();
        let found = index.find(&request("*", day0 + DAY, day0 + DAY, 100), &limits, day0).expect("find");
        assert_eq!((found.total, found.partitions), (10, 1));
        let all = index.find(&request("*", 0, i64::MAX / 2, 100), &limits, day0).expect("find");
        assert_eq!((all.total, all.partitions), (30, 3));
        // A range inside the query prunes as the request's own range does.
        let q = format!("day AND @timestamp:[{} TO {}]", day0 + DAY, day0 + DAY);
        let found = index.find(&request(&q, 0, i64::MAX / 2, 100), &limits, day0).expect("find");
        assert_eq!((found.total, found.partitions), (10, 1));
        let q = format!("day OR @timestamp:[{} TO {}]", day0 + DAY, day0 + DAY);
        assert_eq!(
            index.find(&request(&q, 0, i64::MAX / 2, 100), &limits, day0).expect("find").partitions,
            3,
            "an optional range prunes nothing"
        );
        // Pages of 4 through 30 events with 3 distinct times: every event once, in order.
        let mut seen = Vec::new();
        let mut req = request("*", 0, i64::MAX / 2, 4);
        loop {
            let page = index.find(&req, &limits, day0).expect("page");
            seen.extend(page.hits.iter().map(|h| h.position));
            match page.hits.last() {
                Some(h) if page.hits.len() == 4 => req.after = Some(h.position),
                _ => break,
            }
        }
        assert_eq!(seen.len(), 30);
        assert!(seen.windows(2).all(|w| w[0] > w[1]), "strictly newest first: {seen:?}");
        assert_eq!(Position::decode(&seen[7].encode()), Some(seen[7]));
    }

    #[test]
    fn the_time_and_memory_bounds_hold() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day0 = 100 * DAY;
        let (index, mut w) = LogIndex::open(dir.path(), 16 << 20, 1, day0).expect("open");
        for i in 0..5000 {
            add(&mut w, day0 + i, "x", &format!("host-{i}"));
        }
        w.commit(1).expect("commit");
        let late = Limits { timeout: Duration::ZERO, ..Limits::default() };
        let found = index.find(&request("*", 0, i64::MAX / 2, 10), &late, day0).expect("find");
        assert!(found.timed_out, "a zero timeout stops at once and says so");
        assert!(found.total < 5000);
        let ok = index.find(&request("*", 0, i64::MAX / 2, 10), &Limits::default(), day0).expect("find");
        assert!(!ok.timed_out && ok.total == 5000);
        // 5000 distinct hosts in a terms aggregation held to 64 KiB.
        let plan = crate::logs::aggs::plan(&serde_json::json!({"t": {"terms": {"field": "host", "size": 5000}}}), day0).expect("plan");
        for tight in [Limits { memory: 4 << 10, ..Limits::default() }, Limits { buckets: 100, ..Limits::default() }] {
            match index.aggregate(&Query::All, 0, i64::MAX / 2, Some(plan.request.clone()), &tight, day0) {
                Err(SearchError::Bad(m)) => assert!(m.to_lowercase().contains("limit"), "{m}"),
                Err(other) => panic!("not a 400: {other}"),
                Ok(_) => panic!("{tight:?} did not hold"),
            }
        }
        let (n, results, _) = index.aggregate(&Query::All, 0, i64::MAX / 2, Some(plan.request), &Limits::default(), day0).expect("fits");
        assert_eq!(n, 5000);
        assert_eq!(results.expect("results")["t"]["buckets"].as_array().map(Vec::len), Some(5000));
        let window = Limits { window: 100, ..Limits::default() };
        assert!(matches!(index.find(&request("*", 0, i64::MAX / 2, 101), &window, day0), Err(SearchError::Bad(_))));
    }
}
