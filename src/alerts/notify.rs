//! Sending notifications: a queue drained by one thread, so that a slow or
//! dead receiver never holds up evaluation, with retries and exponential
//! backoff (1 s, 2 s, 4 s, ... up to `alerts.retries` attempts), counted in
//! `/api/status` and `/metrics`. One sender per subscription type: `HTTP`
//! (Seyren's webhook JSON), `SLACK` (incoming webhooks: Slack, Mattermost,
//! Rocket.Chat), `EMAIL` (SMTP, `smtp.rs`), `PAGERDUTY` (Events API v2) and
//! `OPSGENIE` (Alert API). Every URL is configurable, so tests use local
//! receivers.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::model::{Alert, AlertType, Check, Subscription};
use super::smtp;
use super::{Config, SmtpConfig};
use crate::telemetry::{Counter, Gauge, Registry};

/// One notification to send: a subscription and the alerts that changed.
#[derive(Debug, Clone)]
pub struct Job {
    pub check: Check,
    pub subscription: Subscription,
    pub alerts: Vec<Alert>,
    /// The check's worst state now.
    pub state: AlertType,
    pub test: bool,
}

struct Pending {
    job: Job,
    attempt: u32,
    due: Instant,
}

struct Counters {
    sent: Counter,
    failed: Counter,
    retried: Counter,
    queued: Gauge,
}

pub struct Notifier {
    settings: Settings,
    queue: Mutex<VecDeque<Pending>>,
    wake: Condvar,
    stopping: AtomicBool,
    counters: Vec<(&'static str, Counters)>,
    agent: ureq::Agent,
}

/// The notifier part of `[alerts]`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub base_url: String,
    pub webhook_url: Option<String>,
    pub slack_url: Option<String>,
    pub pagerduty_url: String,
    pub opsgenie_url: String,
    pub smtp: SmtpConfig,
    pub retries: u32,
    pub timeout: Duration,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        Settings {
            base_url: c.base_url.clone(),
            webhook_url: c.webhook_url.clone().filter(|u| !u.is_empty()),
            slack_url: c.slack_url.clone().filter(|u| !u.is_empty()),
            pagerduty_url: c.pagerduty_url.clone(),
            opsgenie_url: c.opsgenie_url.clone(),
            smtp: c.smtp.clone(),
            retries: c.retries,
            timeout: c.send_timeout.get(),
        }
    }
}

/// Most jobs waiting; past it the oldest is dropped and counted as failed.
const MAX_QUEUED: usize = 10_000;

impl Notifier {
    pub fn new(settings: Settings, registry: &Registry) -> Arc<Notifier> {
        let counters = super::model::TYPES
            .iter()
            .map(|&t| {
                let labels = [("type", t)];
                (
                    t,
                    Counters {
                        sent: registry.counter("instantops_alert_notifications_sent_total", "Alert notifications delivered.", &labels),
                        failed: registry.counter(
                            "instantops_alert_notifications_failed_total",
                            "Alert notifications given up after every retry.",
                            &labels,
                        ),
                        retried: registry.counter(
                            "instantops_alert_notifications_retried_total",
                            "Alert notification attempts that failed and were retried.",
                            &labels,
                        ),
                        queued: registry.gauge(
                            "instantops_alert_notifications_queued",
                            "Alert notifications waiting to be sent or retried.",
                            &labels,
                        ),
                    },
                )
            })
            .collect();
        let config = ureq::Agent::config_builder().timeout_global(Some(settings.timeout)).http_status_as_error(false).build();
        Arc::new(Notifier {
            settings,
            queue: Mutex::new(VecDeque::new()),
            wake: Condvar::new(),
            stopping: AtomicBool::new(false),
            counters,
            agent: ureq::Agent::new_with_config(config),
        })
    }

    fn counters(&self, kind: &str) -> Option<&Counters> {
        self.counters.iter().find(|(t, _)| *t == kind).map(|(_, c)| c)
    }

    pub fn enqueue(&self, job: Job) {
        let mut q = self.queue.lock().expect("notifier lock poisoned");
        if q.len() >= MAX_QUEUED
            && let Some(dropped) = q.pop_front()
        {
            if let Some(c) = self.counters(&dropped.job.subscription.kind) {
                c.failed.inc();
                c.queued.add(-1);
            }
            tracing::warn!(check = %dropped.job.check.name, "notification queue full; the oldest notification is dropped");
        }
        if let Some(c) = self.counters(&job.subscription.kind) {
            c.queued.add(1);
        }
        q.push_back(Pending { job, attempt: 0, due: Instant::now() });
        self.wake.notify_one();
    }

    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.wake.notify_all();
    }

    /// Sends until stopped; what is still queued then is logged and dropped.
    pub fn run(&self) {
        loop {
            let next = {
                let mut q = self.queue.lock().expect("notifier lock poisoned");
                loop {
                    if self.stopping.load(Ordering::Acquire) {
                        if !q.is_empty() {
                            tracing::warn!(pending = q.len(), "stopping with alert notifications unsent");
                        }
                        return;
                    }
                    let now = Instant::now();
                    if let Some(i) = q.iter().position(|p| p.due <= now) {
                        break q.remove(i).expect("a due job");
                    }
                    let wait = q.iter().map(|p| p.due - now).min().unwrap_or(Duration::from_secs(3600));
                    q = self.wake.wait_timeout(q, wait).expect("notifier lock poisoned").0;
                }
            };
            let kind = next.job.subscription.kind.clone();
            match self.send(&next.job) {
                Ok(()) => {
                    if let Some(c) = self.counters(&kind) {
                        c.sent.inc();
                        c.queued.add(-1);
                    }
                }
                Err(e) if next.attempt + 1 < self.settings.retries.max(1) => {
                    let backoff = Duration::from_secs(1 << next.attempt.min(10));
                    tracing::warn!(check = %next.job.check.name, kind = %kind, error = %e, retry_in_s = backoff.as_secs(), "notification failed; retrying");
                    if let Some(c) = self.counters(&kind) {
                        c.retried.inc();
                    }
                    let mut q = self.queue.lock().expect("notifier lock poisoned");
                    q.push_back(Pending { job: next.job, attempt: next.attempt + 1, due: Instant::now() + backoff });
                }
                Err(e) => {
                    tracing::error!(check = %next.job.check.name, kind = %kind, error = %e, "notification failed; given up");
                    if let Some(c) = self.counters(&kind) {
                        c.failed.inc();
                        c.queued.add(-1);
                    }
                }
            }
        }
    }

    fn send(&self, job: &Job) -> Result<(), String> {
        let s = &job.subscription;
        match s.kind.as_str() {
            "HTTP" => {
                let url = self.settings.webhook_url.as_deref().unwrap_or(&s.target);
                self.post(url, &[], &webhook_body(job, &self.settings.base_url))
            }
            "SLACK" => {
                let (url, channel) = match &self.settings.slack_url {
                    Some(u) if !s.target.starts_with("http") => (u.as_str(), Some(s.target.as_str())),
                    _ => (s.target.as_str(), None),
                };
                let mut body = json!({"text": text(job, &self.settings.base_url), "username": "instantops"});
                if let Some(ch) = channel {
                    body["channel"] = json!(ch);
                }
                self.post(url, &[], &body)
            }
            "PAGERDUTY" => self.post(&self.settings.pagerduty_url, &[], &pagerduty_body(job, &self.settings.base_url)),
            "OPSGENIE" => {
                let alias = format!("instantops-{}", job.check.id);
                let auth = format!("GenieKey {}", s.target);
                let headers = [("authorization", auth.as_str())];
                if job.state == AlertType::Ok {
                    let url = format!("{}/{alias}/close?identifierType=alias", self.settings.opsgenie_url.trim_end_matches('/'));
                    self.post(&url, &headers, &json!({"source": "instantops", "note": text(job, &self.settings.base_url)}))
                } else {
                    let priority = if job.state == AlertType::Error { "P1" } else { "P3" };
                    let body = json!({
                        "message": subject(job),
                        "alias": alias,
                        "description": text(job, &self.settings.base_url),
                        "priority": priority,
                        "source": "instantops",
                        "details": {"state": job.state, "check": job.check.name},
                    });
                    self.post(&self.settings.opsgenie_url, &headers, &body)
                }
            }
            "EMAIL" => {
                smtp::send(&self.settings.smtp, &s.target, &subject(job), &text(job, &self.settings.base_url), self.settings.timeout)
            }
            other => Err(format!("unknown subscription type {other}")),
        }
    }

    fn post(&self, url: &str, headers: &[(&str, &str)], body: &Value) -> Result<(), String> {
        let mut req = self.agent.post(url).header("content-type", "application/json");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let response = req.send(body.to_string().as_bytes()).map_err(|e| format!("POST {url}: {e}"))?;
        let status = response.status().as_u16();
        if (200..300).contains(&status) { Ok(()) } else { Err(format!("POST {url}: HTTP {status}")) }
    }
}

fn subject(job: &Job) -> String {
    let prefix = if job.test { "[test] " } else { "" };
    format!("{prefix}{}: {}", name(job.state), job.check.name)
}

/// The human-readable body shared by email, Slack and OpsGenie.
fn text(job: &Job, base_url: &str) -> String {
    let mut out = format!("{}\n", subject(job));
    if !job.check.description.is_empty() {
        out.push_str(&format!("{}\n", job.check.description));
    }
    for a in &job.alerts {
        out.push_str(&format!(
            "{} = {} ({} -> {}; warn {}, error {})\n",
            a.target,
            crate::graphite::pyfloat::py_repr(a.value.0),
            name(a.from_type),
            name(a.to_type),
            crate::graphite::pyfloat::py_repr(a.warn.0),
            crate::graphite::pyfloat::py_repr(a.error.0)
        ));
        for e in a.events.iter().take(5) {
            out.push_str(&format!("  {}\n", e.get("message").and_then(Value::as_str).unwrap_or("")));
        }
    }
    out.push_str(&format!("{}/ui/alerts?check={}\n", base_url.trim_end_matches('/'), job.check.id));
    out
}

fn name(t: AlertType) -> &'static str {
    match t {
        AlertType::Unknown => "UNKNOWN",
        AlertType::Ok => "OK",
        AlertType::Warn => "WARN",
        AlertType::Error => "ERROR",
        AlertType::Exception => "EXCEPTION",
    }
}

/// Seyren's webhook body (compat-spec §5.3).
pub fn webhook_body(job: &Job, base_url: &str) -> Value {
    json!({
        "seyrenUrl": base_url,
        "check": job.check,
        "subscription": job.subscription,
        "alerts": job.alerts,
        "preview": Value::Null,
        "test": job.test,
    })
}

fn pagerduty_body(job: &Job, base_url: &str) -> Value {
    let (action, severity) = match job.state {
        AlertType::Ok => ("resolve", "info"),
        AlertType::Warn => ("trigger", "warning"),
        _ => ("trigger", "critical"),
    };
    json!({
        "routing_key": job.subscription.target,
        "event_action": action,
        "dedup_key": format!("instantops-{}", job.check.id),
        "payload": {
            "summary": subject(job),
            "source": "instantops",
            "severity": severity,
            "custom_details": {"alerts": job.alerts, "check": job.check.name},
        },
        "links": [{"href": format!("{}/ui/alerts?check={}", base_url.trim_end_matches('/'), job.check.id), "text": "instantops"}],
    })
}
