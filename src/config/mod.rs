//! The config loader: embedded defaults, then a TOML file, then environment
//! overrides, merged key by key and checked as a whole.
//!
//! Each subsystem owns the `Config` struct of its section and its semantic
//! checks (`validate`); this module owns only the layering, the env-var mapping
//! and turning every mistake into a [`Problem`] that names its key. It never
//! stops at the first problem: `check-config` must list them all.
//!
//! The embedded file `config/instantops.toml` is the single source of default
//! values; the structs have no serde defaults of their own, so a key missing from
//! that file is a test failure, not a silent zero.

pub mod units;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use toml::{Table, Value};

pub use units::{Listen, Size, Span};

/// The compiled-in defaults, documented key by key.
pub const DEFAULTS: &str = include_str!("../../config/instantops.toml");

/// The prefix of environment overrides: `INSTANTOPS_<SECTION>__<KEY>`.
pub const ENV_PREFIX: &str = "INSTANTOPS_";

/// The whole appliance's configuration, one field per TOML section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub http: crate::http::Config,
    pub log: crate::telemetry::LogConfig,
    pub memory: crate::telemetry::MemoryConfig,
    pub statsd: crate::statsd::Config,
    pub carbon: crate::carbon::Config,
    pub graphite: crate::graphite::Config,
    pub logs: crate::logs::Config,
    pub alerts: crate::alerts::Config,
    pub host: crate::host::Config,
    pub dashboards: crate::dashboards::Config,
}

/// One thing wrong with a config, tied to the key it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted key (`carbon.schemas[1].retentions`), or the file name for syntax errors.
    pub key: String,
    pub message: String,
}

impl Problem {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> Problem {
        Problem { key: key.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// Where the layers come from. `file` is (name for messages, text).
pub struct Sources<'a> {
    pub file: Option<(&'a str, &'a str)>,
    /// The process environment (or a test's stand-in); only `INSTANTOPS_*` is read.
    pub env: &'a [(String, String)],
}

/// Loads and checks a config. `Err` holds every problem found, in key order.
pub fn load(sources: &Sources<'_>) -> Result<Config, Vec<Problem>> {
    let defaults: Table = DEFAULTS.parse().expect("the embedded defaults are valid TOML (tested)");
    let mut problems = Vec::new();
    let mut overrides: Vec<(Vec<String>, Value)> = Vec::new();

    if let Some((name, text)) = sources.file {
        match text.parse::<Table>() {
            Ok(table) => flatten(&mut Vec::new(), table, &mut overrides),
            Err(e) => {
                let message = e.to_string().trim().replace('\n', " ");
                return Err(vec![Problem::new(name, format!("cannot parse TOML: {message}"))]);
            }
        }
    }
    overrides.extend(env_overrides(&defaults, sources.env));

    // Each override is tried alone on top of the defaults, so one bad key cannot
    // hide another: this is what lets check-config list every problem.
    let mut table = defaults.clone();
    for (path, value) in overrides {
        let mut alone = defaults.clone();
        set(&mut alone, &path, value.clone());
        match decode(&alone, &path) {
            Ok(_) => set(&mut table, &path, value),
            Err(p) => problems.push(p),
        }
    }
    // The semantic checks run on every override that decoded, so a type error
    // in one key does not hide a bad regex in another.
    match decode(&table, &[]) {
        Ok(config) => problems.extend(config.validate()),
        Err(p) => problems.push(p),
    }
    if problems.is_empty() { decode(&table, &[]).map_err(|p| vec![p]) } else { Err(problems) }
}

impl Config {
    /// Checks that go beyond types: regexes, retention syntax, ranges.
    pub fn validate(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.data_dir.as_os_str().is_empty() {
            problems.push(Problem::new("data_dir", "must not be empty"));
        }
        problems.extend(self.http.validate());
        problems.extend(self.log.validate());
        problems.extend(self.memory.validate());
        problems.extend(self.statsd.validate());
        problems.extend(self.carbon.validate());
        problems.extend(self.graphite.validate());
        problems.extend(self.logs.validate());
        problems.extend(self.alerts.validate());
        problems.extend(self.host.validate());
        problems.extend(self.dashboards.validate());
        problems
    }
}

fn decode(table: &Table, path: &[String]) -> Result<Config, Problem> {
    let value = Value::Table(table.clone());
    serde_path_to_error::deserialize::<_, Config>(value).map_err(|e| {
        let inner = e.inner().to_string();
        let found = e.path().to_string();
        // The path of an unknown field points at its parent; the override's own
        // path is the better name then. Inside arrays, serde's path is finer.
        let key = if found == "." || found.len() < dotted(path).len() { dotted(path) } else { found };
        Problem::new(if key.is_empty() { "config".to_string() } else { key }, inner)
    })
}

fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// Turns a table into (path, leaf) pairs. Arrays are leaves: they replace the
/// default whole, as a storage-schemas.conf replaces carbon's.
fn flatten(prefix: &mut Vec<String>, table: Table, out: &mut Vec<(Vec<String>, Value)>) {
    for (key, value) in table {
        prefix.push(key);
        match value {
            Value::Table(inner) => flatten(prefix, inner, out),
            leaf => out.push((prefix.clone(), leaf)),
        }
        prefix.pop();
    }
}

fn set(table: &mut Table, path: &[String], value: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut cursor = table;
    for key in parents {
        let entry = cursor.entry(key.clone()).or_insert_with(|| Value::Table(Table::new()));
        if !entry.is_table() {
            *entry = Value::Table(Table::new());
        }
        cursor = entry.as_table_mut().expect("made a table just above");
    }
    cursor.insert(last.clone(), value);
}

fn get<'t>(table: &'t Table, path: &[String]) -> Option<&'t Value> {
    let (last, parents) = path.split_last()?;
    let mut cursor = table;
    for key in parents {
        cursor = cursor.get(key)?.as_table()?;
    }
    cursor.get(last)
}

/// `INSTANTOPS_HTTP__LISTEN=0.0.0.0:8080` -> (["http", "listen"], "0.0.0.0:8080").
/// A value is taken as a string where the default is a string (or absent), and
/// as a TOML value (`true`, `90`, `[90, 99]`) otherwise.
fn env_overrides(defaults: &Table, env: &[(String, String)]) -> Vec<(Vec<String>, Value)> {
    let mut found = BTreeMap::new();
    for (name, raw) in env {
        let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
        let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
        let value = match get(defaults, &path) {
            None | Some(Value::String(_)) => Value::String(raw.clone()),
            Some(_) => parse_value(raw).unwrap_or_else(|| Value::String(raw.clone())),
        };
        found.insert(path, value);
    }
    found.into_iter().collect()
}

fn parse_value(raw: &str) -> Option<Value> {
    let table: Table = format!("v = {raw}").parse().ok()?;
    table.get("v").cloned()
}

/// Every environment variable, for `load`'s `env`.
pub fn process_env() -> Vec<(String, String)> {
    std::env::vars().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(text: &str, env: &[(&str, &str)]) -> Result<Config, Vec<Problem>> {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        load(&Sources { file: Some(("test.toml", text)), env: &env })
    }

    fn keys(problems: Vec<Problem>) -> Vec<String> {
        problems.into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn embedded_defaults_load() {
        let config = load(&Sources { file: None, env: &[] }).expect("defaults are valid");
        assert_eq!(config.http.listen, Listen::At("127.0.0.1:8080".into()));
        assert_eq!(config.memory.limit, Size(1 << 30));
        assert_eq!(config.statsd.percent_thresholds, vec![90.0]);
        assert_eq!(config.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn file_overrides_key_by_key() {
        let config = load_text("[http]\nlisten = \"0.0.0.0:9999\"\n", &[]).expect("valid");
        assert_eq!(config.http.listen, Listen::At("0.0.0.0:9999".into()));
        assert_eq!(config.http.max_body, Size(32 << 20), "untouched keys keep their defaults");
    }

    #[test]
    fn env_overrides_file() {
        let config = load_text(
            "[http]\nlisten = \"0.0.0.0:9999\"\n",
            &[
                ("INSTANTOPS_HTTP__LISTEN", "127.0.0.1:1234"),
                ("INSTANTOPS_STATSD__PERCENT_THRESHOLDS", "[90, 99.5]"),
                ("INSTANTOPS_DATA_DIR", "/tmp/x"),
                ("INSTANTOPS_STATSD__LEGACY_NAMESPACE", "false"),
                ("INSTANTOPS_HTTP__TOKEN", "12345"),
            ],
        )
        .expect("valid");
        assert_eq!(config.http.listen, Listen::At("127.0.0.1:1234".into()));
        assert_eq!(config.statsd.percent_thresholds, vec![90.0, 99.5]);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
        assert!(!config.statsd.legacy_namespace);
        assert_eq!(config.http.token.as_deref(), Some("12345"));
    }

    #[test]
    fn every_problem_is_listed_with_its_key() {
        let text = r#"
            bogus = 1
            [http]
            listen = "nowhere"
            [memory]
            limit = "12 parsecs"
            [statsd]
            flush_interval = "often"
            percent_thresholds = [150]
        "#;
        let got = keys(load_text(text, &[("INSTANTOPS_CARBON__NOPE", "1")]).expect_err("invalid"));
        for key in ["bogus", "http.listen", "memory.limit", "statsd.flush_interval", "carbon.nope"] {
            assert!(got.contains(&key.to_string()), "missing {key} in {got:?}");
        }
        // percent_thresholds is a semantic check; it runs once the types are right.
        let got = keys(load_text("[statsd]\npercent_thresholds = [150]\n", &[]).expect_err("invalid"));
        assert_eq!(got, vec!["statsd.percent_thresholds".to_string()]);
    }

    #[test]
    fn syntax_error_names_the_file() {
        let problems = load_text("[http\nlisten=", &[]).expect_err("invalid");
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].key, "test.toml");
    }
}
