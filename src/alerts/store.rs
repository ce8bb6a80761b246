//! Where checks and their history live, under `<data_dir>/alerts/`:
//! `checks.json` (every check, rewritten whole and renamed into place on each
//! change) and `history.jsonl` (append-only, fsynced: alerts as they are
//! recorded, acknowledgements, and every action someone took). Both are read
//! back at start, so checks, their state and their history survive restarts.
//! History is bounded by `alerts.max_history` records; past twice that the
//! file is rewritten with the newest.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::model::{Action, Alert, AlertType, Check};

/// One line of `history.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
enum Record {
    Alert(Alert),
    Ack { alert_id: String, action: Action },
    Action { check_id: String, action: Action },
}

struct Inner {
    checks: BTreeMap<String, Check>,
    /// Oldest first.
    alerts: Vec<Alert>,
    actions: Vec<(String, Action)>,
    /// The last alert's `toType` per (check, target).
    last: HashMap<(String, String), AlertType>,
    lines: usize,
    next_id: u64,
}

pub struct AlertStore {
    dir: PathBuf,
    max_history: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("alert store io on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Invalid(String),
    #[error("no check {0}")]
    NoCheck(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_owned(), source }
}

impl AlertStore {
    pub fn open(dir: &Path, max_history: usize) -> Result<AlertStore, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let checks_path = dir.join("checks.json");
        let checks: BTreeMap<String, Check> = match std::fs::read(&checks_path) {
            Ok(bytes) => serde_json::from_slice::<Vec<Check>>(&bytes)
                .map_err(|e| StoreError::Invalid(format!("{}: {e}", checks_path.display())))?
                .into_iter()
                .map(|c| (c.id.clone(), c))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(StoreError::Io { path: checks_path, source: e }),
        };
        let mut inner = Inner { checks, alerts: Vec::new(), actions: Vec::new(), last: HashMap::new(), lines: 0, next_id: 0 };
        let history = dir.join("history.jsonl");
        if let Ok(file) = std::fs::File::open(&history) {
            for line in std::io::BufReader::new(file).lines() {
                let line = line.map_err(io(&history))?;
                // A torn last line (a crash mid-append) is skipped.
                let Ok(record) = serde_json::from_str::<Record>(&line) else { continue };
                inner.lines += 1;
                apply(&mut inner, record);
            }
        }
        let max_id = inner.alerts.iter().filter_map(|a| a.id.parse::<u64>().ok()).max().unwrap_or(0);
        let max_check = inner.checks.keys().filter_map(|k| k.parse::<u64>().ok()).max().unwrap_or(0);
        inner.next_id = max_id.max(max_check) + 1;
        let store = AlertStore { dir: dir.to_owned(), max_history, inner: Mutex::new(inner) };
        store.trim()?;
        Ok(store)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("alert store lock poisoned")
    }

    /// A new id, unique in this store (checks and alerts share the sequence).
    pub fn next_id(&self) -> String {
        let mut inner = self.lock();
        inner.next_id += 1;
        (inner.next_id - 1).to_string()
    }

    pub fn checks(&self) -> Vec<Check> {
        self.lock().checks.values().cloned().collect()
    }

    pub fn check(&self, id: &str) -> Option<Check> {
        self.lock().checks.get(id).cloned()
    }

    /// Inserts or replaces a check, and persists every check.
    pub fn put(&self, check: Check) -> Result<(), StoreError> {
        check.validate().map_err(StoreError::Invalid)?;
        let mut inner = self.lock();
        inner.checks.insert(check.id.clone(), check);
        self.write_checks(&inner)
    }

    /// Changes a check in place; the change is persisted.
    pub fn update(&self, id: &str, change: impl FnOnce(&mut Check)) -> Result<Check, StoreError> {
        let mut inner = self.lock();
        let check = inner.checks.get_mut(id).ok_or_else(|| StoreError::NoCheck(id.to_owned()))?;
        change(check);
        let out = check.clone();
        self.write_checks(&inner)?;
        Ok(out)
    }

    pub fn remove(&self, id: &str) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let gone = inner.checks.remove(id).is_some();
        if gone {
            self.write_checks(&inner)?;
        }
        Ok(gone)
    }

    fn write_checks(&self, inner: &Inner) -> Result<(), StoreError> {
        let path = self.dir.join("checks.json");
        let all: Vec<&Check> = inner.checks.values().collect();
        let bytes = serde_json::to_vec_pretty(&all).map_err(|e| StoreError::Invalid(e.to_string()))?;
        crate::durable::replace(&path, &bytes).map_err(io(&path))
    }

    fn append(&self, inner: &mut Inner, records: &[Record]) -> Result<(), StoreError> {
        let path = self.dir.join("history.jsonl");
        let mut text = String::new();
        for r in records {
            text.push_str(&serde_json::to_string(r).map_err(|e| StoreError::Invalid(e.to_string()))?);
            text.push('\n');
        }
        let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        f.write_all(text.as_bytes()).and_then(|_| f.sync_data()).map_err(io(&path))?;
        inner.lines += records.len();
        for r in records {
            apply(inner, r.clone());
        }
        Ok(())
    }

    /// Records alerts (made durable before this returns).
    pub fn record(&self, alerts: &[Alert]) -> Result<(), StoreError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let records: Vec<Record> = alerts.iter().cloned().map(Record::Alert).collect();
        {
            let mut inner = self.lock();
            self.append(&mut inner, &records)?;
        }
        self.trim()
    }

    /// Records what someone did to a check.
    pub fn act(&self, check_id: &str, action: Action) -> Result<(), StoreError> {
        let mut inner = self.lock();
        self.append(&mut inner, &[Record::Action { check_id: check_id.to_owned(), action }])
    }

    /// Acknowledges an alert of `check_id`; false if there is no such alert.
    pub fn acknowledge(&self, check_id: &str, alert_id: &str, action: Action) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        if !inner.alerts.iter().any(|a| a.id == alert_id && a.check_id == check_id) {
            return Ok(false);
        }
        let records = [
            Record::Ack { alert_id: alert_id.to_owned(), action: action.clone() },
            Record::Action { check_id: check_id.to_owned(), action },
        ];
        self.append(&mut inner, &records)?;
        Ok(true)
    }

    /// The last alert's `toType` per target of a check.
    pub fn last_states(&self, check_id: &str) -> HashMap<String, AlertType> {
        self.lock().last.iter().filter(|((c, _), _)| c == check_id).map(|((_, t), s)| (t.clone(), *s)).collect()
    }

    /// Alerts, newest first, of one check or all.
    pub fn alerts(&self, check_id: Option<&str>) -> Vec<Alert> {
        let inner = self.lock();
        inner.alerts.iter().rev().filter(|a| check_id.is_none_or(|c| a.check_id == c)).cloned().collect()
    }

    /// Removes a check's alerts before `before_ms` (all when None).
    pub fn forget(&self, check_id: &str, before_ms: Option<i64>) -> Result<(), StoreError> {
        {
            let mut inner = self.lock();
            inner.alerts.retain(|a| a.check_id != check_id || before_ms.is_some_and(|b| a.timestamp >= b));
        }
        self.rewrite()
    }

    /// What was done to a check, newest first.
    pub fn actions(&self, check_id: &str) -> Vec<Action> {
        self.lock().actions.iter().rev().filter(|(c, _)| c == check_id).map(|(_, a)| a.clone()).collect()
    }

    /// (check id, alerts) by how many state changes each check had since
    /// `since_ms`, most first.
    pub fn noisiest(&self, since_ms: i64) -> Vec<(String, usize)> {
        let inner = self.lock();
        let mut counts: HashMap<&str, usize> = HashMap::new();
        for a in inner.alerts.iter().filter(|a| a.timestamp >= since_ms && a.from_type != a.to_type) {
            *counts.entry(a.check_id.as_str()).or_default() += 1;
        }
        let mut out: Vec<(String, usize)> = counts.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Keeps the newest `max_history` alerts and actions; rewrites the file
    /// once it holds twice that.
    fn trim(&self) -> Result<(), StoreError> {
        let over = {
            let inner = self.lock();
            inner.lines > 2 * self.max_history.max(1)
        };
        if over { self.rewrite() } else { Ok(()) }
    }

    fn rewrite(&self) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let keep = self.max_history.max(1);
        let drop_alerts = inner.alerts.len().saturating_sub(keep);
        inner.alerts.drain(..drop_alerts);
        let drop_actions = inner.actions.len().saturating_sub(keep);
        inner.actions.drain(..drop_actions);
        let mut text = String::new();
        for a in &inner.alerts {
            text.push_str(&serde_json::to_string(&Record::Alert(a.clone())).map_err(|e| StoreError::Invalid(e.to_string()))?);
            text.push('\n');
        }
        for (c, a) in &inner.actions {
            let r = Record::Action { check_id: c.clone(), action: a.clone() };
            text.push_str(&serde_json::to_string(&r).map_err(|e| StoreError::Invalid(e.to_string()))?);
            text.push('\n');
        }
        let path = self.dir.join("history.jsonl");
        crate::durable::replace(&path, text.as_bytes()).map_err(io(&path))?;
        inner.lines = inner.alerts.len() + inner.actions.len();
        Ok(())
    }
}

fn apply(inner: &mut Inner, record: Record) {
    match record {
        Record::Alert(a) => {
            inner.last.insert((a.check_id.clone(), a.target.clone()), a.to_type);
            inner.alerts.push(a);
        }
        Record::Ack { alert_id, action } => {
            if let Some(a) = inner.alerts.iter_mut().rev().find(|a| a.id == alert_id) {
                a.acknowledged = Some(action);
            }
        }
        Record::Action { check_id, action } => inner.actions.push((check_id, action)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::model::Decimal;

    fn check(id: &str) -> Check {
        serde_json::from_value(serde_json::json!({"id": id, "name": "n", "target": "a.b", "warn": 1, "error": 2})).expect("check")
    }

    fn alert(id: &str, to: AlertType, ts: i64) -> Alert {
        Alert {
            id: id.into(),
            check_id: "c".into(),
            value: Decimal(1.0),
            target: "a.b".into(),
            warn: Decimal(1.0),
            error: Decimal(2.0),
            from_type: AlertType::Ok,
            to_type: to,
            timestamp: ts,
            target_hash: "h".into(),
            acknowledged: None,
            events: vec![],
        }
    }

    #[test]
    fn checks_history_and_acks_survive_a_reopen_and_stay_bounded() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let s = AlertStore::open(dir.path(), 5).expect("open");
            s.put(check("c")).expect("put");
            s.record(&[alert("10", AlertType::Warn, 1), alert("11", AlertType::Error, 2)]).expect("record");
            let act = Action { by: "ann".into(), at: 3, note: "on it".into(), action: "ack".into() };
            assert!(s.acknowledge("c", "11", act).expect("ack"));
            assert!(!s.acknowledge("c", "nope", Action { by: "x".into(), at: 0, note: String::new(), action: "ack".into() }).expect("ack"));
        }
        let s = AlertStore::open(dir.path(), 5).expect("reopen");
        assert_eq!(s.checks().len(), 1);
        let alerts = s.alerts(Some("c"));
        assert_eq!(alerts.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(), ["11", "10"]);
        assert_eq!(alerts[0].acknowledged.as_ref().map(|a| a.by.as_str()), Some("ann"));
        assert_eq!(s.last_states("c").get("a.b"), Some(&AlertType::Error));
        assert_eq!(s.actions("c").len(), 1);
        assert!(s.next_id().parse::<u64>().expect("numeric") > 11);
        for i in 0..20 {
            s.record(&[alert(&(100 + i).to_string(), AlertType::Warn, 10 + i)]).expect("record");
        }
        assert!(s.alerts(None).len() <= 11, "bounded near max_history");
        drop(s);
        let s = AlertStore::open(dir.path(), 5).expect("reopen");
        assert!(s.alerts(None).len() <= 11);
        assert_eq!(s.alerts(None)[0].id, "119");
    }
}
