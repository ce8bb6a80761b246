//! The Seyren data model (compat-spec §5.1) and its rules: checks,
//! subscriptions and alerts as their JSON names them, `classify` and
//! `should_notify`, and one evaluation step (§5.2) as a pure function of the
//! values read and the last alert per target.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A state, ordered from best to worst as Seyren orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum AlertType {
    #[default]
    Unknown,
    Ok,
    Warn,
    Error,
    Exception,
}

/// What a check reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A Graphite target; each series' latest value against the thresholds.
    #[default]
    Graphite,
    /// A log query: the count of matching events in the window (`from`).
    Logs,
    /// A Graphite target: seconds since each series' last value; `error`
    /// (and `warn`) are the silences allowed.
    Heartbeat,
}

/// A threshold: Seyren sends decimals as strings or numbers.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Decimal(pub f64);

impl Serialize for Decimal {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        // As Seyren's BigDecimal prints: `70`, `90.5`.
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            s.serialize_str(&format!("{}", self.0 as i64))
        } else {
            s.serialize_str(&self.0.to_string())
        }
    }
}

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            N(f64),
            S(String),
        }
        match Either::deserialize(d)? {
            Either::N(n) => Ok(Decimal(n)),
            Either::S(s) => s.trim().parse().map(Decimal).map_err(|_| serde::de::Error::custom(format!("{s:?} is not a decimal"))),
        }
    }
}

fn yes() -> bool {
    true
}

/// A destination for notifications (compat-spec §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Subscription {
    #[serde(default)]
    pub id: String,
    /// The destination: an email address, a webhook URL, a routing key.
    pub target: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default = "yes")]
    pub su: bool,
    #[serde(default = "yes")]
    pub mo: bool,
    #[serde(default = "yes")]
    pub tu: bool,
    #[serde(default = "yes")]
    pub we: bool,
    #[serde(default = "yes")]
    pub th: bool,
    #[serde(default = "yes")]
    pub fr: bool,
    #[serde(default = "yes")]
    pub sa: bool,
    #[serde(default, alias = "ignore_warn")]
    pub ignore_warn: bool,
    #[serde(default, alias = "ignore_error")]
    pub ignore_error: bool,
    #[serde(default, alias = "ignore_ok")]
    pub ignore_ok: bool,
    #[serde(default = "from_time", alias = "from_time")]
    pub from_time: String,
    #[serde(default = "to_time", alias = "to_time")]
    pub to_time: String,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn from_time() -> String {
    "0000".into()
}

fn to_time() -> String {
    "2359".into()
}

/// The notifier types instantops sends to.
pub const TYPES: [&str; 5] = ["HTTP", "SLACK", "EMAIL", "PAGERDUTY", "OPSGENIE"];

impl Subscription {
    pub fn validate(&self) -> Result<(), String> {
        if !TYPES.contains(&self.kind.as_str()) {
            return Err(format!("subscription type {:?} is not one of {}", self.kind, TYPES.join(", ")));
        }
        if self.target.trim().is_empty() {
            return Err("a subscription needs a target (a URL, an address or a key)".into());
        }
        for t in [&self.from_time, &self.to_time] {
            if hhmm(t).is_none() {
                return Err(format!("{t:?} is not an HHMM time"));
            }
        }
        Ok(())
    }

    /// Seyren's `shouldNotify`: enabled, the day's flag, strictly inside
    /// (fromTime, toTime), and the check's worst state not ignored.
    /// `weekday` is 0 for Sunday; `minute_of_day` in the configured zone.
    pub fn should_notify(&self, weekday: u32, minute_of_day: u32, worst: AlertType) -> bool {
        let day = [self.su, self.mo, self.tu, self.we, self.th, self.fr, self.sa][weekday as usize % 7];
        let (Some(from), Some(to)) = (hhmm(&self.from_time), hhmm(&self.to_time)) else { return false };
        let ignored = match worst {
            AlertType::Error => self.ignore_error,
            AlertType::Warn => self.ignore_warn,
            AlertType::Ok => self.ignore_ok,
            _ => false,
        };
        self.enabled && day && from < minute_of_day && minute_of_day < to && !ignored
    }
}

/// Minutes since midnight of `"HHMM"`.
fn hhmm(s: &str) -> Option<u32> {
    if s.len() != 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (h, m) = (s[..2].parse::<u32>().ok()?, s[2..].parse::<u32>().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

/// A check (compat-spec §5.1), plus instantops' kinds and silencing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    #[serde(default)]
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub kind: Kind,
    /// A Graphite target, or for `logs` a log query.
    pub target: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    pub warn: Decimal,
    pub error: Decimal,
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default)]
    pub live: bool,
    #[serde(default, alias = "allow_no_data")]
    pub allow_no_data: bool,
    #[serde(default)]
    pub state: AlertType,
    #[serde(default)]
    pub last_check: Option<i64>,
    #[serde(default)]
    pub subscriptions: Vec<Subscription>,
    /// No notifications before this (epoch ms); evaluation goes on.
    #[serde(default)]
    pub silenced_until: Option<i64>,
    /// Declared in the config file: the API cannot change or delete it.
    #[serde(default)]
    pub from_config: bool,
}

impl Check {
    pub fn validate(&self) -> Result<(), String> {
        if self.name.trim().is_empty() {
            return Err("a check needs a name".into());
        }
        if self.target.trim().is_empty() {
            return Err("a check needs a target".into());
        }
        if !self.warn.0.is_finite() || !self.error.0.is_finite() {
            return Err("warn and error must be finite numbers".into());
        }
        for s in &self.subscriptions {
            s.validate()?;
        }
        Ok(())
    }

    /// The time range read: Seyren's defaults, or for log checks the last 5
    /// minutes.
    pub fn range(&self) -> (&str, &str) {
        let (from, until) = match self.kind {
            Kind::Graphite => ("-11minutes", "-1minutes"),
            Kind::Logs => ("-5minutes", "now"),
            Kind::Heartbeat => ("-1h", "now"),
        };
        (self.from.as_deref().filter(|f| !f.is_empty()).unwrap_or(from), self.until.as_deref().filter(|u| !u.is_empty()).unwrap_or(until))
    }
}

/// One history record (compat-spec §5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub id: String,
    pub check_id: String,
    pub value: Decimal,
    pub target: String,
    pub warn: Decimal,
    pub error: Decimal,
    pub from_type: AlertType,
    pub to_type: AlertType,
    pub timestamp: i64,
    pub target_hash: String,
    /// Set when someone acknowledged it: who, when, and their note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Action>,
    /// Matching log events, for log checks (a few).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<serde_json::Value>,
}

/// Someone's action on a check or an alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub by: String,
    pub at: i64,
    #[serde(default)]
    pub note: String,
    /// `ack`, `silence`, `unsilence`, `enable`, `disable`, `create`, `update`, `delete`.
    pub action: String,
}

/// Seyren's classification; thresholds inclusive, `warn > error` means low is bad.
pub fn classify(v: f64, warn: f64, error: f64) -> AlertType {
    if warn <= error {
        if v >= error {
            AlertType::Error
        } else if v >= warn {
            AlertType::Warn
        } else {
            AlertType::Ok
        }
    } else if v <= error {
        AlertType::Error
    } else if v <= warn {
        AlertType::Warn
    } else {
        AlertType::Ok
    }
}

/// The latest non-null value, scanning from the end.
pub fn latest(values: &[Option<f64>]) -> Option<f64> {
    values.iter().rev().find_map(|v| *v)
}

/// What one evaluation decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub state: AlertType,
    /// Every alert to record (including WARN -> WARN repeats).
    pub recorded: Vec<Alert>,
    /// Indexes into `recorded` of the state changes, which are notified.
    pub interesting: Vec<usize>,
}

/// One run of a check over its series' values (compat-spec §5.2): `values`
/// is (series name, its value or None), `last` the last alert's `toType` per
/// series name.
pub fn evaluate(
    check: &Check,
    values: &[(String, Option<f64>)],
    last: &HashMap<String, AlertType>,
    now_ms: i64,
    mut next_id: impl FnMut() -> String,
) -> Outcome {
    let mut worst = if check.allow_no_data { AlertType::Ok } else { AlertType::Unknown };
    let mut recorded = Vec::new();
    let mut interesting = Vec::new();
    for (name, value) in values {
        let Some(v) = value else { continue };
        let before = last.get(name).copied().unwrap_or(AlertType::Ok);
        let now = classify(*v, check.warn.0, check.error.0);
        if now > worst {
            worst = now;
        }
        if before == AlertType::Ok && now == AlertType::Ok {
            continue;
        }
        if before != now {
            interesting.push(recorded.len());
        }
        recorded.push(Alert {
            id: next_id(),
            check_id: check.id.clone(),
            value: Decimal(*v),
            target: name.clone(),
            warn: check.warn,
            error: check.error,
            from_type: before,
            to_type: now,
            timestamp: now_ms,
            target_hash: target_hash(name),
            acknowledged: None,
            events: Vec::new(),
        });
    }
    Outcome { state: worst, recorded, interesting }
}

/// A stable hash of a series name (FNV-1a, hex), as Seyren keys alerts.
pub fn target_hash(name: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(warn: f64, error: f64) -> Check {
        serde_json::from_value(serde_json::json!({"id": "c1", "name": "n", "target": "t", "warn": warn.to_string(), "error": error}))
            .expect("a check")
    }

    #[test]
    fn classify_is_inclusive_and_follows_the_direction() {
        use AlertType::*;
        let cases = [
            (69.9, 70.0, 90.0, Ok),
            (70.0, 70.0, 90.0, Warn),
            (90.0, 70.0, 90.0, Error),
            (20.0, 20.0, 10.0, Warn),
            (10.0, 20.0, 10.0, Error),
            (20.1, 20.0, 10.0, Ok),
            (5.0, 5.0, 5.0, Error),
            (4.9, 5.0, 5.0, Ok),
        ];
        for (v, warn, error, want) in cases {
            assert_eq!(classify(v, warn, error), want, "{v} with warn {warn}, error {error}");
        }
    }

    type Transitions = Vec<(AlertType, AlertType)>;

    /// Runs a sequence of values on one target; (states, recorded, notified).
    fn run(check: &Check, seq: &[Option<f64>]) -> (Vec<AlertType>, Transitions, Transitions) {
        let mut last = HashMap::new();
        let (mut states, mut rows, mut sent) = (Vec::new(), Vec::new(), Vec::new());
        let mut n = 0;
        for v in seq {
            let out = evaluate(check, &[("a.b".into(), *v)], &last, 0, || {
                n += 1;
                n.to_string()
            });
            states.push(out.state);
            for (i, a) in out.recorded.iter().enumerate() {
                rows.push((a.from_type, a.to_type));
                if out.interesting.contains(&i) {
                    sent.push((a.from_type, a.to_type));
                }
                last.insert(a.target.clone(), a.to_type);
            }
        }
        (states, rows, sent)
    }

    #[test]
    fn the_state_machine_records_repeats_and_notifies_changes() {
        use AlertType::*;
        let c = check(70.0, 90.0);
        let (states, rows, sent) = run(&c, &[Some(50.0), Some(75.0), Some(80.0), Some(95.0), Some(10.0)]);
        assert_eq!(states, [Ok, Warn, Warn, Error, Ok]);
        assert_eq!(rows, [(Ok, Warn), (Warn, Warn), (Warn, Error), (Error, Ok)]);
        assert_eq!(sent, [(Ok, Warn), (Warn, Error), (Error, Ok)]);
        // First run healthy: nothing; only nulls: UNKNOWN (OK with allowNoData).
        assert_eq!(run(&c, &[Some(1.0)]), (vec![Ok], vec![], vec![]));
        assert_eq!(run(&c, &[None]), (vec![Unknown], vec![], vec![]));
        let mut quiet = c.clone();
        quiet.allow_no_data = true;
        assert_eq!(run(&quiet, &[None]).0, [Ok]);
    }

    #[test]
    fn a_wildcard_target_is_as_bad_as_its_worst_series() {
        let c = check(70.0, 90.0);
        let values = [("a".to_string(), Some(1.0)), ("b".to_string(), Some(80.0)), ("c".to_string(), Some(99.0))];
        let out = evaluate(&c, &values, &HashMap::new(), 0, || "x".into());
        assert_eq!(out.state, AlertType::Error);
        assert_eq!(out.recorded.len(), 2);
        assert_eq!(out.interesting, [0, 1]);
        assert_eq!(latest(&[Some(1.0), Some(5.0), None]), Some(5.0));
    }

    #[test]
    fn subscriptions_notify_strictly_inside_their_window() {
        let s: Subscription = serde_json::from_value(
            serde_json::json!({"target": "http://x", "type": "HTTP", "fromTime": "0900", "toTime": "1700", "sa": false}),
        )
        .expect("a subscription");
        let at = |h: u32, m: u32| h * 60 + m;
        assert!(!s.should_notify(1, at(9, 0), AlertType::Error));
        assert!(s.should_notify(1, at(9, 1), AlertType::Error));
        assert!(s.should_notify(1, at(16, 59), AlertType::Error));
        assert!(!s.should_notify(1, at(17, 0), AlertType::Error));
        assert!(!s.should_notify(6, at(12, 0), AlertType::Error), "Saturday is off");
        let mut quiet = s.clone();
        quiet.ignore_ok = true;
        assert!(!quiet.should_notify(1, at(12, 0), AlertType::Ok));
        quiet.ignore_warn = true;
        assert!(!quiet.should_notify(1, at(12, 0), AlertType::Warn));
        let mut off = s;
        off.enabled = false;
        assert!(!off.should_notify(1, at(12, 0), AlertType::Error));
    }

    #[test]
    fn thresholds_come_as_strings_or_numbers_and_go_out_as_strings() {
        let c = check(70.0, 90.5);
        assert_eq!(c.warn, Decimal(70.0));
        let v = serde_json::to_value(&c).expect("serializes");
        assert_eq!(v["error"], "90.5");
        assert_eq!(v["allowNoData"], false);
        assert_eq!(v["state"], "UNKNOWN");
    }
}
