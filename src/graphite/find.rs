//! `/metrics/find`, `/metrics/expand` and `/metrics/index.json` over the
//! series catalog, in graphite-web's output shapes.

use serde_json::{Value, json};

use super::eval::{EvalError, internal};
use super::glob::Glob;
use super::render::{Reply, all, first};
use crate::tsdb::Store;

/// One match: a branch (has children) or a leaf (a series), or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub path: String,
    pub name: String,
    pub is_leaf: bool,
}

/// The nodes a pattern matches, sorted by name (a path that is both a branch
/// and a leaf gives both, branch first). The pattern is walked node by node
/// down the catalog: literal nodes are looked up, wildcard nodes list their
/// siblings (`Store::children`), so the cost follows the nodes visited, not
/// the size of the namespace. More than `limit` matches (or branches to walk
/// at one depth) is refused.
pub fn find(store: &Store, pattern: &str, limit: usize) -> Result<Vec<Node>, EvalError> {
    let glob = Glob::new(pattern);
    let depth = glob.depth();
    let mut prefixes = vec![String::new()];
    let mut nodes = Vec::new();
    let too_many = || EvalError::TooLarge(format!("the query matches more than {limit} nodes (graphite.max_series); narrow it"));
    for i in 0..depth {
        let mut next = Vec::new();
        for prefix in &prefixes {
            let candidates = match glob.literal_variants(i) {
                Some(names) => {
                    names.iter().map(|n| store.node(&format!("{prefix}{n}"))).collect::<Result<Vec<_>, _>>().map_err(internal)?
                }
                None => store.children(prefix).map_err(internal)?.into_iter().filter(|c| glob.matches_node(i, &c.name)).collect(),
            };
            for child in candidates.into_iter().filter(|c| c.leaf || c.branch) {
                if next.len() >= limit || nodes.len() >= limit {
                    return Err(too_many());
                }
                let path = format!("{prefix}{}", child.name);
                if i + 1 < depth {
                    if child.branch {
                        next.push(format!("{path}."));
                    }
                    continue;
                }
                if child.branch {
                    nodes.push(Node { path: path.clone(), name: child.name.clone(), is_leaf: false });
                }
                if child.leaf {
                    nodes.push(Node { path, name: child.name, is_leaf: true });
                }
            }
        }
        prefixes = next;
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(nodes)
}

fn json_reply(value: &Value, jsonp: Option<&str>) -> Reply {
    let text = value.to_string();
    match jsonp {
        Some(cb) => Reply { status: 200, content_type: "text/javascript", body: format!("{cb}({text})").into_bytes() },
        None => Reply { status: 200, content_type: "application/json", body: text.into_bytes() },
    }
}

fn flag(params: &[(String, String)], key: &str) -> bool {
    first(params, key).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0) != 0
}

/// `/metrics/find`.
pub fn find_view(store: &Store, params: &[(String, String)], limit: usize) -> Reply {
    let Some(mut query) = first(params, "query").map(str::to_string) else {
        return Reply::error(400, "Missing required parameter 'query'".into());
    };
    if query.is_empty() {
        return Reply::error(400, "Required parameter 'query' is empty".into());
    }
    let format = first(params, "format").unwrap_or("treejson");
    let wildcards = flag(params, "wildcards");
    let leaves_only = flag(params, "leavesOnly");
    let jsonp = first(params, "jsonp").filter(|j| !j.is_empty());
    let base = match query.rsplit_once('.') {
        Some((head, _)) => format!("{head}."),
        None => String::new(),
    };
    if format == "completer" {
        query = query.replace("..", "*.");
        if !query.ends_with('*') {
            query.push('*');
        }
    }
    let mut nodes = match find(store, &query, limit) {
        Ok(n) => n,
        Err(e) => return e.into(),
    };
    if leaves_only {
        nodes.retain(|n| n.is_leaf);
    }
    let value = match format {
        "treejson" => {
            let mut out = Vec::new();
            if nodes.len() > 1 && wildcards {
                let any_branch = nodes.iter().any(|n| !n.is_leaf);
                out.push(tree_node("*", &format!("{base}*"), !any_branch));
            }
            let mut seen = std::collections::HashSet::new();
            let (mut branches, mut leaves) = (Vec::new(), Vec::new());
            for n in &nodes {
                if !seen.insert(n.name.clone()) {
                    continue;
                }
                let node = tree_node(&n.name, &format!("{base}{}", n.name), n.is_leaf);
                if n.is_leaf { leaves.push(node) } else { branches.push(node) }
            }
            out.extend(branches);
            out.extend(leaves);
            Value::Array(out)
        }
        "completer" => {
            let mut metrics: Vec<Value> = nodes
                .iter()
                .map(|n| {
                    let path = if n.is_leaf { n.path.clone() } else { format!("{}.", n.path) };
                    json!({ "path": path, "name": n.name, "is_leaf": if n.is_leaf { "1" } else { "0" } })
                })
                .collect();
            if metrics.len() > 1 && wildcards {
                metrics.push(json!({ "name": "*" }));
            }
            json!({ "metrics": metrics })
        }
        "json" => {
            let mut items: Vec<Value> = nodes
                .iter()
                .map(|n| {
                    if n.is_leaf {
                        json!({ "path": n.path, "is_leaf": true, "intervals": [] })
                    } else {
                        json!({ "path": n.path, "is_leaf": false })
                    }
                })
                .collect();
            items.sort_by(|a, b| a["path"].as_str().cmp(&b["path"].as_str()));
            Value::Array(items)
        }
        "nodelist" => {
            let position = first(params, "position").and_then(|p| p.parse::<i64>().ok()).unwrap_or(-1);
            let mut found: Vec<String> = nodes
                .iter()
                .filter_map(|n| {
                    let parts: Vec<&str> = n.path.split('.').collect();
                    let i = if position < 0 { parts.len() as i64 + position } else { position };
                    usize::try_from(i).ok().and_then(|i| parts.get(i)).map(|s| s.to_string())
                })
                .collect();
            found.sort();
            found.dedup();
            json!({ "nodes": found })
        }
        _ => return Reply::error(400, "Invalid value for 'format' parameter".into()),
    };
    json_reply(&value, jsonp)
}

fn tree_node(text: &str, id: &str, leaf: bool) -> Value {
    let flags = if leaf { (0, 0, 1) } else { (1, 1, 0) };
    json!({ "text": text, "id": id, "allowChildren": flags.0, "expandable": flags.1, "leaf": flags.2 })
}

/// `/metrics/expand`.
pub fn expand_view(store: &Store, params: &[(String, String)], limit: usize) -> Reply {
    let leaves_only = flag(params, "leavesOnly");
    let group = flag(params, "groupByExpr");
    let mut grouped = serde_json::Map::new();
    let mut union = std::collections::BTreeSet::new();
    for query in all(params, "query") {
        let nodes = match find(store, query, limit) {
            Ok(n) => n,
            Err(e) => return e.into(),
        };
        let mut paths: Vec<String> = nodes.into_iter().filter(|n| n.is_leaf || !leaves_only).map(|n| n.path).collect();
        paths.sort();
        paths.dedup();
        union.extend(paths.iter().cloned());
        grouped.insert(query.to_string(), json!(paths));
    }
    let results = if group { Value::Object(grouped) } else { json!(union.into_iter().collect::<Vec<_>>()) };
    json_reply(&json!({ "results": results }), first(params, "jsonp").filter(|j| !j.is_empty()))
}

/// `/metrics/index.json`: every series name, sorted.
pub fn index_view(store: &Store, params: &[(String, String)], limit: usize) -> Reply {
    match store.names_with_prefix("", limit.saturating_add(1)) {
        Ok(names) if names.len() > limit => Reply::error(422, format!("more than {limit} series (graphite.max_series)")),
        Ok(names) => json_reply(&json!(names), first(params, "jsonp").filter(|j| !j.is_empty())),
        Err(e) => {
            tracing::warn!(error = %e, "metrics/index.json failed");
            Reply { status: 500, content_type: "application/json", body: b"[]".to_vec() }
        }
    }
}
