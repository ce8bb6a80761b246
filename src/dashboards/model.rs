//! What a dashboard must look like, and ids made from titles. Pure functions
//! of JSON values: no I/O, no store. Only the fields the appliance or the UI
//! reads are checked; everything else in the object is left as it is.

use std::collections::HashMap;

use serde_json::Value;

/// Longest id: it is both a file name and a URL segment, and 64 keeps both short.
pub const MAX_ID: usize = 64;
/// Longest title, in characters: what a list row or a browser tab shows.
pub const MAX_TITLE: usize = 200;
/// Problems reported at once: enough to fix a form in one go, few enough that
/// a dashboard with a thousand bad panels gets a readable error.
const MAX_PROBLEMS: usize = 5;
/// Bad input quoted in a message is cut to this many characters.
const QUOTE_CHARS: usize = 80;

/// An id: 1 to 64 of `A-Z a-z 0-9 _ -`, so it is safe as a file name.
pub fn valid_id(id: &str) -> bool {
    (1..=MAX_ID).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A template variable's name, as `$name` appears in targets.
fn valid_variable(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Checks the fields the appliance reads. `null` counts as absent for every
/// optional field. Err holds the first few problems, each naming its field
/// (`panels[3].targets must be an array of strings`).
pub fn validate(dashboard: &Value, max_panels: usize) -> Result<(), String> {
    let Some(d) = dashboard.as_object() else {
        return Err(format!("a dashboard must be a JSON object, not {}", quote(dashboard)));
    };
    let mut problems = Vec::new();
    match d.get("title") {
        Some(Value::String(t)) if !t.trim().is_empty() && t.chars().count() <= MAX_TITLE => {}
        None | Some(Value::Null) => problems.push("title is required".to_string()),
        Some(other) => problems.push(format!("title {} must be a non-empty string of at most {MAX_TITLE} characters", quote(other))),
    }
    match d.get("id") {
        None | Some(Value::Null) => {}
        Some(Value::String(id)) if valid_id(id) => {}
        Some(other) => problems.push(format!("id {} must be 1 to {MAX_ID} characters of A-Z, a-z, 0-9, _ and -", quote(other))),
    }
    for field in ["from", "until", "refresh"] {
        if let Some(v) = d.get(field).filter(|v| !v.is_null() && !v.is_string()) {
            problems.push(format!("{field} {} must be a string", quote(v)));
        }
    }
    if !is_array_of_strings(d.get("tags")) {
        problems.push("tags must be an array of strings".to_string());
    }
    panels(d.get("panels"), max_panels, &mut problems);
    variables(d.get("variables"), &mut problems);
    if problems.is_empty() {
        return Ok(());
    }
    let more = problems.len().saturating_sub(MAX_PROBLEMS);
    problems.truncate(MAX_PROBLEMS);
    let mut message = problems.join("; ");
    if more > 0 {
        message.push_str(&format!("; and {more} more"));
    }
    Err(message)
}

fn panels(value: Option<&Value>, max_panels: usize, problems: &mut Vec<String>) {
    let panels = match value {
        None | Some(Value::Null) => return,
        Some(Value::Array(panels)) => panels,
        Some(_) => return problems.push("panels must be an array of objects".to_string()),
    };
    if panels.len() > max_panels {
        problems.push(format!("panels has {} panels, over dashboards.max_panels ({max_panels})", panels.len()));
    }
    for (i, panel) in panels.iter().enumerate() {
        match panel {
            Value::Object(p) if is_array_of_strings(p.get("targets")) => {}
            Value::Object(_) => problems.push(format!("panels[{i}].targets must be an array of strings")),
            other => problems.push(format!("panels[{i}] {} must be an object", quote(other))),
        }
    }
}

fn variables(value: Option<&Value>, problems: &mut Vec<String>) {
    let variables = match value {
        None | Some(Value::Null) => return,
        Some(Value::Array(variables)) => variables,
        Some(_) => return problems.push("variables must be an array of objects".to_string()),
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, variable) in variables.iter().enumerate() {
        let Some(v) = variable.as_object() else {
            problems.push(format!("variables[{i}] {} must be an object with a name and a query", quote(variable)));
            continue;
        };
        match v.get("name") {
            Some(Value::String(name)) if valid_variable(name) => {
                if let Some(first) = seen.insert(name, i) {
                    problems.push(format!("variables[{i}].name {name:?} repeats variables[{first}].name"));
                }
            }
            other => problems.push(format!(
                "variables[{i}].name {} must be a string of A-Z, a-z, 0-9 and _",
                other.map_or("(missing)".to_string(), quote)
            )),
        }
        if !v.get("query").is_some_and(Value::is_string) {
            problems.push(format!("variables[{i}].query must be a string"));
        }
    }
}

/// Absent, `null`, or an array of strings.
fn is_array_of_strings(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::Array(items)) => items.iter().all(Value::is_string),
        Some(_) => false,
    }
}

/// A value as JSON, cut for an error message.
fn quote(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// An id made from a title: lowercase ASCII letters and digits, every other
/// run of characters one `-`, at most [`MAX_ID`] long; `dashboard` when the
/// title has no letter or digit to keep.
pub fn slug(title: &str) -> String {
    let mut out = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
        if out.len() >= MAX_ID {
            break;
        }
    }
    out.truncate(MAX_ID);
    let out = out.trim_end_matches('-');
    if out.is_empty() { "dashboard".to_string() } else { out.to_string() }
}

/// `base`, or the first of `base-2`, `base-3`, ... that is not `taken`, each
/// cut to fit [`MAX_ID`]. `base` is a [`slug`].
pub fn unique_id(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2u64..)
        .map(|n| {
            let suffix = format!("-{n}");
            let stem = &base[..base.len().min(MAX_ID - suffix.len())];
            format!("{}{suffix}", stem.trim_end_matches('-'))
        })
        .find(|id| !taken(id))
        .expect("finitely many ids are taken")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(dashboard: Value, expected: Result<(), &str>) {
        assert_eq!(validate(&dashboard, 3).as_ref().map(|_| ()).map_err(String::as_str), expected, "{dashboard}");
    }

    #[test]
    fn validation_names_the_field() {
        check(json!({"title": "Web"}), Ok(()));
        check(json!({"title": "Web", "id": "web_1-A", "from": "-1h", "until": "now", "refresh": "30s", "tags": ["a"]}), Ok(()));
        check(json!({"title": "Web", "panels": [{"targets": ["a.b", "sum(c.*)"], "w": 6}, {}], "layout": {"cols": 12}}), Ok(()));
        check(json!({"title": "Web", "variables": [{"name": "host_1", "query": "servers.*"}]}), Ok(()));
        check(json!({"title": "Web", "id": null, "panels": null, "tags": null, "from": null}), Ok(()));
        check(json!([1]), Err("a dashboard must be a JSON object, not [1]"));
        check(json!({}), Err("title is required"));
        check(json!({"title": " "}), Err("title \" \" must be a non-empty string of at most 200 characters"));
        check(
            json!({"title": "x".repeat(201)}),
            Err(&format!("title \"{}... must be a non-empty string of at most 200 characters", "x".repeat(79))),
        );
        check(json!({"title": "é".repeat(200)}), Ok(()));
        check(json!({"title": 5}), Err("title 5 must be a non-empty string of at most 200 characters"));
        check(json!({"title": "W", "id": "a/b"}), Err("id \"a/b\" must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"));
        check(json!({"title": "W", "id": ""}), Err("id \"\" must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -"));
        check(
            json!({"title": "W", "id": "a".repeat(65)}),
            Err(&format!("id \"{}\" must be 1 to 64 characters of A-Z, a-z, 0-9, _ and -", "a".repeat(65))),
        );
        check(json!({"title": "W", "from": 3600}), Err("from 3600 must be a string"));
        check(json!({"title": "W", "tags": ["a", 1]}), Err("tags must be an array of strings"));
        check(json!({"title": "W", "panels": {}}), Err("panels must be an array of objects"));
        check(
            json!({"title": "W", "panels": [{}, {}, {}, {"targets": "a.b"}]}),
            Err("panels has 4 panels, over dashboards.max_panels (3); panels[3].targets must be an array of strings"),
        );
        check(json!({"title": "W", "panels": [{"targets": [1]}]}), Err("panels[0].targets must be an array of strings"));
        check(json!({"title": "W", "panels": ["a.b"]}), Err("panels[0] \"a.b\" must be an object"));
        check(
            json!({"title": "W", "variables": [{"name": "a b", "query": "x"}]}),
            Err("variables[0].name \"a b\" must be a string of A-Z, a-z, 0-9 and _"),
        );
        check(
            json!({"title": "W", "variables": [{"query": "x"}]}),
            Err("variables[0].name (missing) must be a string of A-Z, a-z, 0-9 and _"),
        );
        check(json!({"title": "W", "variables": [{"name": "a"}]}), Err("variables[0].query must be a string"));
        check(
            json!({"title": "W", "variables": [{"name": "a", "query": "x"}, {"name": "a", "query": "y"}]}),
            Err("variables[1].name \"a\" repeats variables[0].name"),
        );
        check(json!({"title": "W", "variables": [7]}), Err("variables[0] 7 must be an object with a name and a query"));
        check(json!({"title": "W", "variables": "host"}), Err("variables must be an array of objects"));
        check(
            json!({"title": "W", "panels": [{"targets": 1}, {"targets": 2}, {"targets": 3}, {"targets": 4}, {"targets": 5}, {"targets": 6}]}),
            Err("panels has 6 panels, over dashboards.max_panels (3); panels[0].targets must be an array of strings; \
                 panels[1].targets must be an array of strings; panels[2].targets must be an array of strings; \
                 panels[3].targets must be an array of strings; and 2 more"),
        );
    }

    #[test]
    fn slugs() {
        let check = |title: &str, expected: &str| assert_eq!(slug(title), expected, "{title:?}");
        check("Web Servers", "web-servers");
        check("  API: 5xx / latency (p99)  ", "api-5xx-latency-p99");
        check("already-a-slug_with_underscore", "already-a-slug-with-underscore");
        check("Café Überblick", "caf-berblick");
        check("日本語", "dashboard");
        check("", "dashboard");
        check("---", "dashboard");
        check(&"a".repeat(100), &"a".repeat(64));
        check(&format!("{} b", "a".repeat(63)), &"a".repeat(63));
        for title in ["Web Servers", &"ab ".repeat(50), "日本語"] {
            assert!(valid_id(&slug(title)), "{title:?}");
        }
    }

    #[test]
    fn unique_ids_take_a_numeric_suffix_within_the_length() {
        let taken = ["web", "web-2", &"a".repeat(64), &format!("{}-2", "a".repeat(62))];
        let is_taken = |id: &str| taken.contains(&id);
        assert_eq!(unique_id("db", is_taken), "db");
        assert_eq!(unique_id("web", is_taken), "web-3");
        assert_eq!(unique_id(&"a".repeat(64), is_taken), format!("{}-3", "a".repeat(62)));
        let hyphen = format!("{}-b", "a".repeat(61));
        let is_hyphen = |id: &str| id == hyphen;
        assert_eq!(unique_id(&hyphen, is_hyphen), format!("{}-2", "a".repeat(61)), "no double hyphen where the cut falls");
    }
}
