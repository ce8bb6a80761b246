//! The evaluation loop: every `alerts.interval`, each enabled check reads
//! its values through the same code as `/render` (Graphite checks and
//! heartbeats) or log search (log checks), on this thread, never on an
//! ingest path; then the Seyren rules (`model::evaluate`) decide what to
//! record and whom to tell, and the notifier's queue takes it from there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::model::{Action, Alert, AlertType, Check, Kind, evaluate, latest};
use super::notify::{Job, Notifier};
use super::store::{AlertStore, StoreError};
use crate::graphite::eval::{Context, Limits as GraphiteLimits};
use crate::graphite::{expr, timespec};
use crate::logs::index::LogIndex;
use crate::logs::query::{Operator, parse};
use crate::logs::search::{Limits as SearchLimits, Order, Request};
use crate::telemetry::{Counter, Registry};
use crate::tsdb::Store;

/// Matching events a log check's alert carries.
const EVENTS_PER_ALERT: usize = 5;

/// What checks read.
#[derive(Clone)]
pub struct Sources {
    pub tsdb: Arc<Store>,
    pub graphite: GraphiteLimits,
    pub logs: Option<Arc<LogIndex>>,
    pub search: SearchLimits,
}

pub struct Engine {
    pub store: Arc<AlertStore>,
    pub notifier: Arc<Notifier>,
    sources: Sources,
    offset_minutes: i32,
    runs: Counter,
    failures: Counter,
}

/// What one check's values were: (series name, value), and per series the
/// log events behind it.
struct Read {
    values: Vec<(String, Option<f64>)>,
    events: HashMap<String, Vec<Value>>,
}

impl Engine {
    pub fn new(store: Arc<AlertStore>, notifier: Arc<Notifier>, sources: Sources, offset_minutes: i32, registry: &Registry) -> Engine {
        Engine {
            store,
            notifier,
            sources,
            offset_minutes,
            runs: registry.counter("instantops_alert_check_runs_total", "Check evaluations.", &[]),
            failures: registry.counter("instantops_alert_check_failures_total", "Check evaluations that could not read their values.", &[]),
        }
    }

    /// Evaluates every check each `interval` until `stop` is set.
    pub fn run(&self, interval: Duration, stop: &watch::Receiver<bool>) {
        crate::schedule::every(interval, stop, || self.run_once(crate::logs::time::now_ms()));
    }

    /// One round over every enabled check.
    pub fn run_once(&self, now_ms: i64) {
        for check in self.store.checks().into_iter().filter(|c| c.enabled) {
            if let Err(e) = self.run_check(&check, now_ms) {
                tracing::warn!(check = %check.name, error = %e, "check evaluation failed");
            }
        }
    }

    /// Evaluates one check now; returns its new state.
    pub fn run_check(&self, check: &Check, now_ms: i64) -> Result<AlertType, StoreError> {
        self.runs.inc();
        let read = match self.read(check, now_ms) {
            Ok(r) => r,
            Err(e) => {
                // Seyren: a failed query is an empty result: UNKNOWN (or OK), no alerts.
                self.failures.inc();
                tracing::warn!(check = %check.name, error = %e, "check target could not be read");
                Read { values: Vec::new(), events: HashMap::new() }
            }
        };
        for (name, v) in &read.values {
            if v.is_none() && !check.allow_no_data {
                tracing::debug!(check = %check.name, series = %name, "no value");
            }
        }
        let last = self.store.last_states(&check.id);
        let mut outcome = evaluate(check, &read.values, &last, now_ms, || self.store.next_id());
        for a in &mut outcome.recorded {
            if let Some(events) = read.events.get(&a.target) {
                a.events = events.clone();
            }
        }
        self.store.record(&outcome.recorded)?;
        let state = outcome.state;
        let updated = self.store.update(&check.id, |c| {
            c.state = state;
            c.last_check = Some(now_ms);
        })?;
        let interesting: Vec<Alert> = outcome.interesting.iter().map(|&i| outcome.recorded[i].clone()).collect();
        if interesting.is_empty() {
            return Ok(state);
        }
        if updated.silenced_until.is_some_and(|until| until > now_ms) {
            tracing::info!(check = %check.name, "silenced: state change recorded, not notified");
            return Ok(state);
        }
        let (weekday, minute) = self.local(now_ms);
        for s in updated.subscriptions.iter().filter(|s| s.should_notify(weekday, minute, state)) {
            self.notifier.enqueue(Job { check: updated.clone(), subscription: s.clone(), alerts: interesting.clone(), state, test: false });
        }
        Ok(state)
    }

    /// (weekday with Sunday 0, minute of the day) in `alerts.time_zone`.
    fn local(&self, now_ms: i64) -> (u32, u32) {
        let minutes = now_ms.div_euclid(60_000) + i64::from(self.offset_minutes);
        let days = minutes.div_euclid(1440);
        // 1970-01-01 was a Thursday.
        ((days + 4).rem_euclid(7) as u32, minutes.rem_euclid(1440) as u32)
    }

    fn read(&self, check: &Check, now_ms: i64) -> Result<Read, String> {
        let (from, until) = check.range();
        let now_s = now_ms.div_euclid(1000);
        let from_s = timespec::parse(from, now_s).map_err(|e| format!("from {from:?}: {e}"))?;
        let until_s = timespec::parse(until, now_s).map_err(|e| format!("until {until:?}: {e}"))?;
        match check.kind {
            Kind::Graphite | Kind::Heartbeat => {
                let parsed = expr::parse(&check.target).map_err(|e| e.to_string())?;
                let mut ctx = Context::new(&self.sources.tsdb, from_s, until_s, now_s, 0.0, self.sources.graphite);
                let series = ctx.target(&parsed).map_err(|e| format!("{e:?}"))?;
                let values = series
                    .iter()
                    .map(|s| {
                        let v = if check.kind == Kind::Heartbeat {
                            // Seconds of silence: since the last value, or the whole range.
                            let last = s.values.iter().rposition(Option::is_some);
                            Some(match last {
                                Some(i) => (now_s - (s.start + i as i64 * s.step)).max(0) as f64,
                                None => (now_s - from_s).max(0) as f64,
                            })
                        } else {
                            latest(&s.values)
                        };
                        (s.name.clone(), v)
                    })
                    .collect();
                Ok(Read { values, events: HashMap::new() })
            }
            Kind::Logs => {
                let index = self.sources.logs.as_ref().ok_or("the log store is off")?;
                let query = parse(&check.target, Operator::And).map_err(|e| format!("log query: {e}"))?;
                let (from_ms, until_ms) = (from_s * 1000, until_s * 1000 + 999);
                let (count, _, _) =
                    index.aggregate(&query, from_ms, until_ms, None, &self.sources.search, now_ms).map_err(|e| e.to_string())?;
                let req = Request { query, from_ms, until_ms, order: Order::NewestFirst, offset: 0, limit: EVENTS_PER_ALERT, after: None };
                let events: Vec<Value> = index
                    .find(&req, &self.sources.search, now_ms)
                    .map_err(|e| e.to_string())?
                    .hits
                    .iter()
                    .filter_map(|h| serde_json::from_str(&h.source).ok())
                    .collect();
                let mut by_target = HashMap::new();
                by_target.insert(check.target.clone(), events);
                Ok(Read { values: vec![(check.target.clone(), Some(count as f64))], events: by_target })
            }
        }
    }

    /// Sends a test notification to one subscription.
    pub fn test(&self, check: &Check, subscription_id: &str) -> bool {
        let Some(s) = check.subscriptions.iter().find(|s| s.id == subscription_id) else { return false };
        self.notifier.enqueue(Job { check: check.clone(), subscription: s.clone(), alerts: Vec::new(), state: check.state, test: true });
        true
    }

    /// Records an action someone took.
    pub fn act(&self, check_id: &str, by: &str, note: &str, action: &str) -> Result<(), StoreError> {
        let a = Action { by: by.to_owned(), at: crate::logs::time::now_ms(), note: note.to_owned(), action: action.to_owned() };
        self.store.act(check_id, a)
    }
}

/// Makes the store's config-declared checks exactly `declared`: each keeps
/// its id (from its name), state, last run and silence across restarts, so
/// its history stays attached; ones no longer declared are removed.
pub fn declare(store: &AlertStore, declared: &[Check]) -> Result<(), StoreError> {
    let mut ids = std::collections::HashSet::new();
    for c in declared {
        let slug: String = c.name.chars().map(|ch| if ch.is_ascii_alphanumeric() { ch.to_ascii_lowercase() } else { '-' }).collect();
        let id = format!("cfg-{slug}");
        let old = store.check(&id);
        let mut check = c.clone();
        check.id = id.clone();
        check.from_config = true;
        check.state = old.as_ref().map_or(AlertType::Unknown, |o| o.state);
        check.last_check = old.as_ref().and_then(|o| o.last_check);
        check.silenced_until = old.as_ref().and_then(|o| o.silenced_until);
        for (i, s) in check.subscriptions.iter_mut().enumerate() {
            s.id = format!("{id}-{i}");
        }
        store.put(check)?;
        ids.insert(id);
    }
    for c in store.checks() {
        if c.from_config && !ids.contains(&c.id) {
            store.remove(&c.id)?;
        }
    }
    Ok(())
}
