//! Where dashboards live: `<data_dir>/dashboards/<id>.json`, one file each.
//! A write is `crate::durable::replace` (`<id>.json.tmp`, fsynced, renamed
//! over the old file, the folder fsynced), so a crash (kill -9, power loss)
//! leaves the old version or the new one, never a torn file; a leftover
//! `.tmp` is removed at start.
//! Only summaries stay in memory (for the list, the ids taken, the versions);
//! a dashboard itself is read from its file, so memory does not grow with
//! `max_dashboards` × `max_bytes`. A file that cannot be read at start is
//! skipped with a warning and left in place for someone to look at.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;
use serde_json::{Value, json};

use super::model::{slug, unique_id, valid_id, validate};
use super::{Config, DashboardError};

/// A row of the dashboard list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    pub id: String,
    pub title: String,
    pub tags: Vec<String>,
    /// Epoch milliseconds of the last write.
    pub updated: i64,
    #[serde(skip)]
    pub version: u64,
}

impl Summary {
    fn of(id: &str, dashboard: &Value) -> Summary {
        let tags = dashboard["tags"].as_array().map(|t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect());
        Summary {
            id: id.to_owned(),
            title: dashboard["title"].as_str().unwrap_or_default().to_owned(),
            tags: tags.unwrap_or_default(),
            updated: dashboard["updated"].as_i64().unwrap_or(0),
            version: dashboard["version"].as_u64().unwrap_or(0),
        }
    }
}

pub struct DashboardStore {
    dir: PathBuf,
    config: Config,
    /// By id. Writers hold the lock across the file write, so the files and
    /// the index change in the same order.
    index: Mutex<HashMap<String, Summary>>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DashboardError + '_ {
    move |source| DashboardError::Io { path: path.to_owned(), source }
}

impl DashboardStore {
    /// Opens (creating) the folder and reads every dashboard's summary.
    pub fn open(dir: &Path, config: &Config) -> Result<DashboardStore, DashboardError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let mut index = HashMap::new();
        for entry in std::fs::read_dir(dir).map_err(io(dir))? {
            let path = entry.map_err(io(dir))?.path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
            if name.ends_with(".json.tmp") {
                // A write that a crash cut short; the old file is still whole.
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot remove an unfinished dashboard write");
                }
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else { continue };
            match read(&path, id) {
                Ok(dashboard) => {
                    index.insert(id.to_owned(), Summary::of(id, &dashboard));
                }
                Err(why) => tracing::warn!(file = %path.display(), error = %why, "skipping a dashboard that cannot be read"),
            }
        }
        Ok(DashboardStore { dir: dir.to_owned(), config: config.clone(), index: Mutex::new(index) })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Summary>> {
        self.index.lock().expect("dashboard index lock poisoned")
    }

    /// Every dashboard's summary, by title (case-insensitive), then id.
    pub fn list(&self) -> Vec<Summary> {
        let mut all: Vec<Summary> = self.lock().values().cloned().collect();
        all.sort_by_cached_key(|s| (s.title.to_lowercase(), s.id.clone()));
        all
    }

    pub fn get(&self, id: &str) -> Result<Value, DashboardError> {
        let index = self.lock();
        if !valid_id(id) || !index.contains_key(id) {
            return Err(DashboardError::NotFound(id.to_owned()));
        }
        let path = self.path(id);
        read(&path, id).map_err(|why| DashboardError::Io { path, source: std::io::Error::other(why) })
    }

    /// Stores a new dashboard at version 1, under its own `id` or one made
    /// from its title. Returns it as stored.
    pub fn create(&self, dashboard: Value) -> Result<Value, DashboardError> {
        validate(&dashboard, self.config.max_panels).map_err(DashboardError::Invalid)?;
        let mut index = self.lock();
        let id = match dashboard.get("id").and_then(Value::as_str) {
            Some(id) if index.contains_key(id) => return Err(DashboardError::Exists(id.to_owned())),
            Some(id) => id.to_owned(),
            None => unique_id(&slug(dashboard["title"].as_str().unwrap_or_default()), |id| index.contains_key(id)),
        };
        if index.len() >= self.config.max_dashboards {
            return Err(DashboardError::Full(self.config.max_dashboards));
        }
        self.write(&mut index, &id, dashboard, 1)
    }

    /// Creates or replaces dashboard `id`; a new one is version 1, a
    /// replacement the old one's version plus one. Returns it as stored.
    pub fn put(&self, id: &str, dashboard: Value) -> Result<Value, DashboardError> {
        if !valid_id(id) {
            return Err(DashboardError::Invalid(format!("id {id:?} must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -")));
        }
        validate(&dashboard, self.config.max_panels).map_err(DashboardError::Invalid)?;
        if let Some(body_id) = dashboard.get("id").and_then(Value::as_str).filter(|b| *b != id) {
            return Err(DashboardError::Invalid(format!("id {body_id:?} in the body is not {id:?}, the id in the path")));
        }
        let mut index = self.lock();
        let version = match index.get(id) {
            Some(old) => old.version + 1,
            None if index.len() >= self.config.max_dashboards => return Err(DashboardError::Full(self.config.max_dashboards)),
            None => 1,
        };
        self.write(&mut index, id, dashboard, version)
    }

    pub fn delete(&self, id: &str) -> Result<(), DashboardError> {
        let mut index = self.lock();
        if !valid_id(id) || !index.contains_key(id) {
            return Err(DashboardError::NotFound(id.to_owned()));
        }
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(DashboardError::Io { path, source: e }),
            _ => {}
        }
        crate::durable::sync_dir(&self.dir).map_err(io(&self.dir))?;
        index.remove(id);
        Ok(())
    }

    fn path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Sets the server's fields, checks the size and writes the file
    /// atomically; the index changes only once the file is in place.
    fn write(&self, index: &mut HashMap<String, Summary>, id: &str, mut dashboard: Value, version: u64) -> Result<Value, DashboardError> {
        let fields = dashboard.as_object_mut().expect("validated as an object");
        fields.insert("id".to_owned(), json!(id));
        fields.insert("updated".to_owned(), json!(crate::logs::time::now_ms()));
        fields.insert("version".to_owned(), json!(version));
        let bytes = serde_json::to_vec(&dashboard).expect("a JSON value serializes");
        if bytes.len() as u64 > self.config.max_bytes.bytes() {
            return Err(DashboardError::TooLarge { id: id.to_owned(), bytes: bytes.len(), max: self.config.max_bytes });
        }
        let path = self.path(id);
        crate::durable::replace(&path, &bytes).map_err(io(&path))?;
        index.insert(id.to_owned(), Summary::of(id, &dashboard));
        Ok(dashboard)
    }
}

/// A stored dashboard: a JSON object whose `id` is its file's name.
fn read(path: &Path, id: &str) -> Result<Value, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let dashboard: Value = serde_json::from_slice(&bytes).map_err(|e| format!("not JSON: {e}"))?;
    if !valid_id(id) || dashboard.get("id").and_then(Value::as_str) != Some(id) {
        return Err(format!("its \"id\" is not {id:?}, the file's name"));
    }
    Ok(dashboard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Size;

    fn config() -> Config {
        Config { max_dashboards: 3, max_bytes: Size(2048), max_panels: 4 }
    }

    fn ids(store: &DashboardStore) -> Vec<String> {
        store.list().into_iter().map(|s| s.id).collect()
    }

    #[test]
    fn dashboards_survive_a_reopen_and_unreadable_files_are_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let store = DashboardStore::open(dir.path(), &config()).expect("open");
            let web = store.create(json!({"title": "Web", "layout": {"w": 3}})).expect("create");
            assert_eq!((web["id"].as_str(), web["version"].as_u64(), web["layout"]["w"].as_u64()), (Some("web"), Some(1), Some(3)));
            assert_eq!(store.create(json!({"title": "web"})).expect("create")["id"], "web-2");
            assert!(matches!(store.create(json!({"title": "x", "id": "web"})), Err(DashboardError::Exists(_))));
            let db = store.put("db", json!({"title": "DB", "tags": ["sql"]})).expect("put");
            assert_eq!(db["version"], 1);
            assert!(matches!(store.create(json!({"title": "Full"})), Err(DashboardError::Full(3))));
            let db = store.put("db", json!({"title": "a DB", "id": "db"})).expect("replace");
            assert!(db["version"] == 2 && db.get("tags").is_none(), "{db}");
            let big = json!({"title": "Web", "note": "x".repeat(2048)});
            assert!(matches!(store.put("web", big), Err(DashboardError::TooLarge { .. })));
            assert!(matches!(store.put("web", json!({"title": "W", "id": "other"})), Err(DashboardError::Invalid(_))));
            assert!(matches!(store.put("../etc", json!({"title": "W"})), Err(DashboardError::Invalid(_))));
            store.delete("web-2").expect("delete");
            assert!(matches!(store.delete("web-2"), Err(DashboardError::NotFound(_))));
            assert!(matches!(store.get("../x"), Err(DashboardError::NotFound(_))));
        }
        std::fs::write(dir.path().join("torn.json"), b"{\"id\": \"torn\", \"ti").expect("write");
        std::fs::write(dir.path().join("renamed.json"), br#"{"id": "other", "title": "R"}"#).expect("write");
        std::fs::write(dir.path().join("web.json.tmp"), b"{").expect("write");
        let store = DashboardStore::open(dir.path(), &config()).expect("reopen");
        assert_eq!(ids(&store), ["db", "web"], "by title, case-insensitive: \"a DB\" before \"Web\"");
        assert_eq!(store.get("web").expect("get")["layout"]["w"], 3);
        assert_eq!(store.get("db").expect("get")["version"], 2);
        assert!(!dir.path().join("web.json.tmp").exists(), "a leftover temp file is removed");
        assert!(dir.path().join("torn.json").exists(), "an unreadable file is left for someone to look at");
        assert_eq!(store.put("db", json!({"title": "DB"})).expect("replace")["version"], 3);
    }
}
