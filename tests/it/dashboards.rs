//! Saved dashboards over HTTP against the real binary: create, list, read,
//! replace and delete; bad input answered with a 4xx JSON error naming the
//! field; the `[dashboards]` bounds; the token on writes; and every
//! dashboard still there after a kill -9 and a restart on the same data dir.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::harness::{Appliance, Options, Reply};

/// Small bounds, so the tests reach them with small requests.
const LIMITS: &str = "[dashboards]\nmax_dashboards = 4\nmax_bytes = \"4KiB\"\nmax_panels = 3\n";

fn options() -> Options {
    Options::default().config(LIMITS)
}

fn send(app: &Appliance, method: &str, path: &str, body: &Value) -> Reply {
    app.request(method, path, &[("content-type", "application/json")], Some(body.to_string().as_bytes()))
}

/// `reply` is a JSON error with `status` whose message contains `needle`.
fn refused(reply: &Reply, status: u16, needle: &str) {
    assert_eq!(reply.status, status, "{}", reply.body);
    assert!(reply.headers.get("content-type").is_some_and(|c| c.starts_with("application/json")), "{:?}", reply.headers);
    let error = reply.json()["error"].as_str().unwrap_or_default().to_string();
    assert!(error.contains(needle), "{needle:?} is not in the error {error:?}");
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_millis() as i64
}

fn titles(app: &Appliance) -> Vec<(String, String)> {
    let list = app.get("/api/dashboards");
    assert_eq!(list.status, 200, "{}", list.body);
    let list = list.json();
    list.as_array()
        .expect("a JSON array")
        .iter()
        .map(|s| (s["id"].as_str().expect("id").to_string(), s["title"].as_str().expect("title").to_string()))
        .collect()
}

#[test]
fn dashboards_are_created_listed_replaced_and_deleted() {
    let app = Appliance::start_with(options());
    assert_eq!(app.get("/api/dashboards").json(), json!([]));

    // No id: one is made from the title; fields the appliance does not read are kept.
    let before = now_ms();
    let web = json!({
        "title": "Web Servers!", "tags": ["web", "prod"], "from": "-6h", "refresh": "30s",
        "panels": [{"title": "5xx", "targets": ["sumSeries(nginx.*.5xx)"], "gridPos": {"x": 0, "w": 6}}],
        "variables": [{"name": "host", "query": "servers.*"}], "layout": {"columns": 12},
        "version": 77, "updated": 1,
    });
    let reply = send(&app, "POST", "/api/dashboards", &web);
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.headers.get("location").map(String::as_str), Some("/api/dashboards/web-servers"));
    let created = reply.json();
    assert_eq!((created["id"].as_str(), created["version"].as_u64()), (Some("web-servers"), Some(1)), "{created}");
    let updated = created["updated"].as_i64().expect("updated");
    assert!((before..=now_ms()).contains(&updated), "updated {updated} is epoch ms");
    assert_eq!(created["panels"][0]["gridPos"], json!({"x": 0, "w": 6}));
    assert_eq!(created["layout"], json!({"columns": 12}));
    assert_eq!(created["variables"], web["variables"]);
    assert_eq!(app.get("/api/dashboards/web-servers").json(), created);

    // The same title again takes a numeric suffix; a given id is kept, once.
    let reply = send(&app, "POST", "/api/dashboards", &json!({"title": "web servers"}));
    assert_eq!((reply.status, reply.json()["id"].as_str().map(String::from)), (201, Some("web-servers-2".into())), "{}", reply.body);
    let reply = send(&app, "POST", "/api/dashboards", &json!({"title": "api gateway", "id": "API_gw"}));
    assert_eq!(reply.status, 201, "{}", reply.body);
    refused(&send(&app, "POST", "/api/dashboards", &json!({"title": "again", "id": "API_gw"})), 409, "\"API_gw\" already exists");

    // Summaries, by title without regard to case.
    let list = app.get("/api/dashboards").json();
    assert_eq!(
        list[0],
        json!({"id": "API_gw", "title": "api gateway", "tags": [], "updated": list[0]["updated"]}),
        "exactly id, title, tags, updated"
    );
    assert_eq!(list[2], json!({"id": "web-servers", "title": "Web Servers!", "tags": ["web", "prod"], "updated": updated}));
    let order: Vec<&str> = list.as_array().expect("array").iter().map(|s| s["id"].as_str().expect("id")).collect();
    assert_eq!(order, ["API_gw", "web-servers-2", "web-servers"], "\"web servers\" < \"web servers!\"");

    // PUT replaces the whole dashboard and bumps the version; PUT of a new id creates it.
    let replaced = json!({"title": "Web", "id": "web-servers", "panels": [{"targets": []}], "theme": "dark"});
    let reply = send(&app, "PUT", "/api/dashboards/web-servers", &replaced);
    assert_eq!(reply.status, 200, "{}", reply.body);
    let stored = reply.json();
    assert_eq!((stored["version"].as_u64(), stored["theme"].as_str()), (Some(2), Some("dark")), "{stored}");
    assert!(stored.get("layout").is_none() && stored.get("tags").is_none(), "a replacement, not a merge: {stored}");
    assert!(stored["updated"].as_i64().expect("updated") >= updated);
    assert_eq!(send(&app, "PUT", "/api/dashboards/web-servers", &replaced).json()["version"], 3);
    assert_eq!(app.get("/api/dashboards/web-servers").json()["version"], 3);
    let reply = send(&app, "PUT", "/api/dashboards/ops", &json!({"title": "Ops"}));
    assert_eq!((reply.status, reply.json()["version"].as_u64()), (200, Some(1)), "{}", reply.body);
    refused(&send(&app, "PUT", "/api/dashboards/ops", &json!({"title": "Ops", "id": "dev"})), 400, "\"dev\" in the body");

    // Four stored: the fifth is refused, by POST and by a PUT that would create.
    refused(&send(&app, "POST", "/api/dashboards", &json!({"title": "Fifth"})), 409, "dashboards.max_dashboards (4)");
    refused(&send(&app, "PUT", "/api/dashboards/fifth", &json!({"title": "Fifth"})), 409, "dashboards.max_dashboards (4)");
    assert_eq!(send(&app, "PUT", "/api/dashboards/ops", &json!({"title": "Ops 2"})).status, 200, "replacing is not creating");

    // Delete, then it is gone.
    assert_eq!(app.request("DELETE", "/api/dashboards/web-servers-2", &[], None).status, 204);
    refused(&app.get("/api/dashboards/web-servers-2"), 404, "no dashboard \"web-servers-2\"");
    refused(&app.request("DELETE", "/api/dashboards/web-servers-2", &[], None), 404, "no dashboard");
    refused(&app.get("/api/dashboards/nothing-here"), 404, "no dashboard");
    assert_eq!(titles(&app).len(), 3);
    assert!(!app.data_dir().join("dashboards/web-servers-2.json").exists());
}

#[test]
fn bad_dashboards_get_4xx_json_errors_naming_the_field() {
    let app = Appliance::start_with(options());
    let post = |body: &Value| send(&app, "POST", "/api/dashboards", body);
    refused(&post(&json!({"panels": []})), 400, "title is required");
    refused(&post(&json!({"title": ""})), 400, "title \"\" must be a non-empty string");
    refused(&post(&json!({"title": "t".repeat(201)})), 400, "at most 200 characters");
    refused(&post(&json!({"title": "T", "id": "a b"})), 400, "id \"a b\" must be 1 to 64 characters");
    refused(&post(&json!({"title": "T", "id": "x".repeat(65)})), 400, "id \"");
    refused(&post(&json!({"title": "T", "panels": [{}, {}, {}, {"targets": ["a"]}]})), 400, "over dashboards.max_panels (3)");
    refused(&post(&json!({"title": "T", "panels": [{}, {"targets": ["a", 2]}]})), 400, "panels[1].targets must be an array of strings");
    refused(&post(&json!({"title": "T", "panels": [{}, {}, "a.b"]})), 400, "panels[2] \"a.b\" must be an object");
    refused(&post(&json!({"title": "T", "panels": "a.b"})), 400, "panels must be an array");
    refused(&post(&json!({"title": "T", "variables": [{"name": "$x", "query": "a.*"}]})), 400, "variables[0].name \"$x\"");
    refused(&post(&json!({"title": "T", "variables": [{"name": "x"}]})), 400, "variables[0].query must be a string");
    refused(&post(&json!({"title": "T", "from": -3600})), 400, "from -3600 must be a string");
    refused(&post(&json!({"title": "T", "until": false})), 400, "until false must be a string");
    refused(&post(&json!({"title": "T", "refresh": 30})), 400, "refresh 30 must be a string");
    refused(&post(&json!({"title": "T", "tags": "web"})), 400, "tags must be an array of strings");
    refused(&post(&json!(["T"])), 400, "must be a JSON object");
    let reply = app.request("POST", "/api/dashboards", &[], Some(b"{\"title\": "));
    refused(&reply, 400, "not valid JSON");
    refused(&send(&app, "PUT", "/api/dashboards/a.b", &json!({"title": "T"})), 400, "id \"a.b\" must be");

    // Over max_bytes (4 KiB, as stored): 413, and what was stored stays.
    let big = json!({"title": "Big", "notes": "n".repeat(5000)});
    refused(&post(&big), 413, "over dashboards.max_bytes (4KiB)");
    let reply = post(&json!({"title": "Small"}));
    assert_eq!(reply.status, 201, "{}", reply.body);
    refused(&send(&app, "PUT", "/api/dashboards/small", &big), 413, "dashboard \"small\" is");
    let small = app.get("/api/dashboards/small").json();
    assert_eq!((small["title"].as_str(), small["version"].as_u64()), (Some("Small"), Some(1)));
    assert_eq!(titles(&app), [("small".to_string(), "Small".to_string())], "nothing bad was stored");
}

#[test]
fn dashboard_writes_need_the_token_and_reads_do_not() {
    let app = Appliance::start_with(options().config(&format!("{LIMITS}[http]\ntoken = \"s3cret\"\n")));
    let body = json!({"title": "Secret"}).to_string();
    let json = ("content-type", "application/json");
    assert_eq!(app.request("POST", "/api/dashboards", &[json], Some(body.as_bytes())).status, 401);
    assert_eq!(app.request("PUT", "/api/dashboards/secret", &[json], Some(body.as_bytes())).status, 401);
    let auth = ("authorization", "Bearer s3cret");
    assert_eq!(app.request("POST", "/api/dashboards", &[json, auth], Some(body.as_bytes())).status, 201);
    assert_eq!(app.get("/api/dashboards/secret").status, 200);
    assert_eq!(app.get("/api/dashboards").json()[0]["id"], "secret");
    assert_eq!(app.request("DELETE", "/api/dashboards/secret", &[], None).status, 401);
    assert_eq!(app.request("DELETE", "/api/dashboards/secret", &[auth], None).status, 204);
}

#[test]
fn dashboards_survive_kill_9_and_a_restart() {
    let mut first = Appliance::start_with(options());
    let mut stored = Vec::new();
    for title in ["Alpha", "beta", "Gamma"] {
        let body = json!({"title": title, "panels": [{"targets": [format!("{title}.count")], "span": 4}], "extra": {"k": [1, 2]}});
        let reply = send(&first, "POST", "/api/dashboards", &body);
        assert_eq!(reply.status, 201, "{}", reply.body);
        stored.push(reply.json());
    }
    let reply = send(&first, "PUT", "/api/dashboards/beta", &json!({"title": "beta", "note": "second"}));
    assert_eq!(reply.status, 200, "{}", reply.body);
    stored[1] = reply.json();
    let list = first.get("/api/dashboards").json();
    // The answer came after the write was durable: no clean stop needed.
    first.kill9();
    let again = Appliance::start_with(Options { data_dir: Some(first.data_dir()), ..options() });
    assert_eq!(again.get("/api/dashboards").json(), list);
    for dashboard in &stored {
        let id = dashboard["id"].as_str().expect("id");
        assert_eq!(&again.get(&format!("/api/dashboards/{id}")).json(), dashboard, "{id}");
    }
    assert_eq!(stored[1]["version"], 2);
    let reply = send(&again, "PUT", "/api/dashboards/beta", &json!({"title": "beta"}));
    assert_eq!(reply.json()["version"], 3, "versions carry on after a restart");
    let names: Vec<_> =
        std::fs::read_dir(first.data_dir().join("dashboards")).expect("dir").map(|e| e.expect("entry").file_name()).collect();
    assert_eq!(names.len(), 3, "one file per dashboard, no temp files: {names:?}");
}
