//! The requests Grafana's Graphite data source sends (compat-spec Appendix B),
//! as fixtures with the exact methods, content types and parameters, and the
//! parts of each answer Grafana reads.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Appliance, eventually, now};

const FORM: &str = "application/x-www-form-urlencoded";

fn feed(app: &Appliance, t: i64) {
    let mut text = String::new();
    for host in ["web01", "web02", "db01"] {
        for i in 0..360 {
            let ts = t - 3600 + i * 10;
            text.push_str(&format!("servers.{host}.cpu {} {ts}\n", (i % 50) as f64 / 2.0));
            text.push_str(&format!("disk.used;server={host};dc=dc1 {} {ts}\n", i * 3));
        }
    }
    app.send_tcp("carbon_tcp", text.as_bytes());
    eventually(Duration::from_secs(20), "fixtures stored", || {
        let r = app.get("/render?target=servers.db01.cpu&from=-70min&format=json");
        let points = r.json()[0]["datapoints"].as_array().map_or(0, |d| d.iter().filter(|p| !p[0].is_null()).count());
        (points >= 359 && app.get("/tags/findSeries?expr=name=disk.used").json().as_array().is_some_and(|a| a.len() == 3)).then_some(())
    });
}

/// `[value|null, epoch seconds]` pairs, at most `max` of them.
fn check_datapoints(series: &Value, max: usize) {
    let points = series["datapoints"].as_array().expect("datapoints is a list");
    assert!(!points.is_empty() && points.len() <= max, "{} points, max {max}", points.len());
    for p in points {
        let pair = p.as_array().expect("a datapoint is a pair");
        assert_eq!(pair.len(), 2);
        assert!(pair[0].is_null() || pair[0].is_f64(), "value {:?}", pair[0]);
        assert!(pair[1].is_i64(), "timestamp {:?} must be integer seconds", pair[1]);
    }
    assert!(series["target"].is_string() && series["tags"].is_object(), "{series}");
    assert!(series["tags"].as_object().expect("tags").values().all(Value::is_string), "tag values are strings: {series}");
}

#[test]
fn grafana_graphite_datasource_requests() {
    let app = Appliance::start();
    let t = now();
    feed(&app, t);
    let post = |path: &str, body: &str| app.request("POST", path, &[("content-type", FORM)], Some(body.as_bytes()));

    // Panels: a form POST per query, relative and absolute ranges, maxDataPoints.
    for body in [
        "target=aliasByNode(servers.*.cpu%2C1)&from=-1h&until=now&format=json&maxDataPoints=150".to_string(),
        format!("target=servers.web01.cpu&target=sumSeries(servers.*.cpu)&from={}&until={t}&format=json&maxDataPoints=1200", t - 3600),
        "target=seriesByTag('name%3Ddisk.used'%2C'server%3D~web.*')&from=-30min&until=now&format=json&maxDataPoints=50".to_string(),
    ] {
        let r = post("/render", &body);
        assert_eq!(r.status, 200, "{body}: {}", r.body);
        assert_eq!(r.headers.get("content-type").map(String::as_str), Some("application/json"));
        let max: usize = body.rsplit("maxDataPoints=").next().and_then(|m| m.parse().ok()).expect("max");
        let list = r.json();
        let list = list.as_array().expect("a list of series");
        assert!(!list.is_empty(), "{body}");
        for s in list {
            check_datapoints(s, max);
        }
    }
    let names: Vec<String> = post("/render", "target=aliasByNode(servers.*.cpu%2C1)&from=-1h&until=now&format=json&maxDataPoints=150")
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|s| s["target"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["db01", "web01", "web02"]);
    let tagged = post("/render", "target=seriesByTag('name%3Ddisk.used'%2C'server%3D~web.*')&from=-30min&until=now&format=json");
    assert_eq!(tagged.json()[0]["tags"]["server"], "web01");

    // The query editor: the metric tree (treejson), expansion, tags.
    let tree = app.get(&format!("/metrics/find?query=servers.*&from={}&until={t}", t - 3600)).json();
    let tree = tree.as_array().expect("treejson is a list");
    assert_eq!(tree.len(), 3);
    for node in tree {
        assert_eq!(node["leaf"], 0, "{node}");
        assert_eq!(node["expandable"], 1);
        assert_eq!(node["allowChildren"], 1);
        assert!(node["id"].as_str().is_some_and(|id| id.starts_with("servers.")) && node["text"].is_string());
    }
    let leaf = app.get("/metrics/find?query=servers.web01.*").json();
    assert_eq!(leaf, serde_json::json!([{"text": "cpu", "id": "servers.web01.cpu", "allowChildren": 0, "expandable": 0, "leaf": 1}]));
    assert_eq!(
        app.get("/metrics/expand?query=servers.*.cpu").json(),
        serde_json::json!({"results": ["servers.db01.cpu", "servers.web01.cpu", "servers.web02.cpu"]})
    );
    assert_eq!(app.get("/tags/autoComplete/tags?expr=name%3Ddisk.used&tagPrefix=&limit=100").json(), serde_json::json!(["dc", "server"]));
    assert_eq!(
        app.get("/tags/autoComplete/values?expr=name%3Ddisk.used&tag=server&valuePrefix=&limit=100").json(),
        serde_json::json!(["db01", "web01", "web02"])
    );
    assert_eq!(
        app.get("/tags/findSeries?expr=name%3Ddisk.used&expr=server%3Ddb01").json(),
        serde_json::json!(["disk.used;dc=dc1;server=db01"])
    );

    // Start-up probes: the version decides which features Grafana uses, and
    // /functions drives its function editor.
    let version = app.get("/version").body;
    let parts: Vec<u32> = version.trim().split('.').map(|p| p.parse().expect("numeric version")).collect();
    assert!(parts >= vec![1, 1], "{version}");
    // Defaults of infinity are written 1e9999, as graphite-web writes them
    // (JavaScript's JSON.parse reads Infinity; serde_json refuses it).
    let text = app.get("/functions").body;
    assert!(text.contains(r#""default":1e9999"#), "keepLastValue's limit defaults to infinity");
    let functions: Value = serde_json::from_str(&text.replace("1e9999", "\"inf\"")).expect("JSON");
    let by_node = &functions["aliasByNode"];
    assert_eq!(by_node["name"], "aliasByNode");
    assert_eq!(by_node["group"], "Alias");
    assert_eq!(by_node["params"][0]["type"], "seriesList");
    assert_eq!(by_node["params"][1]["type"], "nodeOrTag");
    assert!(functions.as_object().expect("object").len() >= 151, "every function has metadata");
    let grouped: Value = serde_json::from_str(&app.get("/functions?grouped=1").body.replace("1e9999", "\"inf\"")).expect("JSON");
    assert!(grouped["Combine"]["sumSeries"].is_object());

    // Annotations.
    let event = format!(r#"{{"what": "deploy web", "tags": ["deploy"], "when": {}, "data": "v2"}}"#, t - 600);
    assert_eq!(app.request("POST", "/events", &[], Some(event.as_bytes())).status, 200);
    let annotations = app.get(&format!("/events/get_data?from={}&until={t}&tags=deploy", t - 3600)).json();
    assert_eq!(annotations[0]["what"], "deploy web");
    assert_eq!(annotations[0]["when"], t - 600);
    assert_eq!(annotations[0]["tags"], serde_json::json!(["deploy"]));
}
