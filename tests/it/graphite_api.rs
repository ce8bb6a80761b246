//! The Graphite API's own contract, beyond graphite-web parity (render_diff.rs):
//! per-request limits from `[graphite]` and instantops' JSON errors.

use std::time::Duration;

use crate::harness::{Appliance, Options, eventually, now};

#[test]
fn requests_past_the_limits_get_a_clear_422_and_smaller_ones_still_work() {
    let app = Appliance::start_with(
        Options::default().env("INSTANTOPS_GRAPHITE__MAX_SERIES", "2").env("INSTANTOPS_GRAPHITE__MAX_POINTS", "1000"),
    );
    let t = now();
    app.send_tcp("carbon_tcp", format!("lim.a 1 {t}\nlim.b 2 {t}\nlim.c 3 {t}\n").as_bytes());
    for name in ["lim.a", "lim.b", "lim.c"] {
        eventually(Duration::from_secs(20), name, || {
            let r = app.get(&format!("/render?target={name}&from=-10min&format=json"));
            (r.status == 200 && r.body.contains(".0, ")).then_some(())
        });
    }
    // Finding all three reads more names than the limit too.
    assert_eq!(app.get("/metrics/expand?query=lim.*").status, 422);

    let wide = app.get("/render?target=sumSeries(lim.*)&from=-10min&format=json");
    assert_eq!(wide.status, 422, "{}", wide.body);
    assert!(wide.json()["error"].as_str().unwrap_or("").contains("graphite.max_series"), "{}", wide.body);

    let two = app.get("/render?target=sumSeries(lim.{a,b})&from=-10min&format=json");
    assert_eq!(two.status, 200, "{}", two.body);
    assert_eq!(two.json()[0]["target"], "sumSeries(lim.{a,b})");

    // One series over 1000 points at 10 s: a 3 h range reads 1080.
    let long = app.get("/render?target=lim.a&from=-3h&format=json");
    assert_eq!(long.status, 422, "{}", long.body);
    assert!(long.json()["error"].as_str().unwrap_or("").contains("graphite.max_points"), "{}", long.body);

    let bad = app.get("/render?target=sumSeries(lim.a&format=json");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.json()["error"].as_str().unwrap_or("").contains("position"), "{}", bad.body);
    let unknown = app.get("/render?target=noSuchFunction(lim.a)&format=json");
    assert_eq!(unknown.status, 400);
    assert!(unknown.body.contains("unknown function noSuchFunction"), "{}", unknown.body);
    let png = app.request("GET", "/render?target=lim.a&from=-10min", &[], None);
    assert_eq!(png.status, 200, "png is the default format");
    assert_eq!(png.headers.get("content-type").map(String::as_str), Some("image/png"));
    assert_eq!(app.get("/render?target=lim.a&from=-10min&width=99999").status, 400);
    assert_eq!(app.get("/render?target=lim.a&from=-10min&format=svg").status, 501);
    assert_eq!(app.get("/functions/nope").status, 404);
    assert_eq!(app.get("/version").body, "1.1.8");
}

/// The tag API over tagged carbon series: listing, details with counts,
/// autocomplete with and without expressions, and findSeries.
#[test]
fn tags_are_listed_and_completed() {
    let app = Appliance::start();
    let t = now();
    let lines = [
        "disk.used;datacenter=dc1;rack=a1;server=web01",
        "disk.used;datacenter=dc1;rack=a2;server=web02",
        "disk.used;datacenter=dc2;rack=b1;server=db01",
        "cpu.load;datacenter=dc1;server=web01",
        "plain.metric",
    ];
    let text: String = lines.iter().map(|l| format!("{l} 1 {t}\n")).collect();
    app.send_tcp("carbon_tcp", text.as_bytes());
    eventually(Duration::from_secs(20), "tagged series", || {
        let r = app.get("/tags/findSeries?expr=name=~.%2B");
        (r.json().as_array().is_some_and(|a| a.len() == 4)).then_some(())
    });

    let tags = app.get("/tags").json();
    assert_eq!(tags, serde_json::json!([{"tag": "datacenter"}, {"tag": "name"}, {"tag": "rack"}, {"tag": "server"}]));
    assert_eq!(app.get("/tags?filter=r&limit=1").json(), serde_json::json!([{"tag": "rack"}]));
    assert_eq!(
        app.get("/tags/datacenter").json(),
        serde_json::json!({"tag": "datacenter", "values": [{"count": 3, "value": "dc1"}, {"count": 1, "value": "dc2"}]})
    );
    assert_eq!(app.get("/tags/nope").json(), serde_json::Value::Null);

    assert_eq!(app.get("/tags/autoComplete/tags?tagPrefix=s").json(), serde_json::json!(["server"]));
    assert_eq!(app.get("/tags/autoComplete/tags?expr=name=cpu.load").json(), serde_json::json!(["datacenter", "server"]));
    assert_eq!(app.get("/tags/autoComplete/values?tag=server").json(), serde_json::json!(["db01", "web01", "web02"]));
    assert_eq!(
        app.get("/tags/autoComplete/values?tag=server&expr=datacenter=dc1&valuePrefix=web").json(),
        serde_json::json!(["web01", "web02"])
    );
    assert_eq!(app.get("/tags/autoComplete/values").status, 400);

    assert_eq!(
        app.get("/tags/findSeries?expr=name=disk.used&expr=server!=web01").json(),
        serde_json::json!(["disk.used;datacenter=dc1;rack=a2;server=web02", "disk.used;datacenter=dc2;rack=b1;server=db01"])
    );
    let r = app.get("/tags/findSeries?expr=server!=web01");
    assert_eq!(r.status, 400, "an expression list that only excludes is refused: {}", r.body);
    // seriesByTag renders those series under their tagged names.
    let r = app.get("/render?target=seriesByTag('name=disk.used','server=~web')&from=-10min&format=json");
    let body = r.json();
    let names: Vec<&str> = body.as_array().expect("list").iter().map(|s| s["target"].as_str().unwrap_or("")).collect();
    assert_eq!(names, ["disk.used;datacenter=dc1;rack=a1;server=web01", "disk.used;datacenter=dc1;rack=a2;server=web02"]);
    assert_eq!(r.json()[0]["tags"]["rack"], "a1");
}

/// Annotations: POST /events (behind the token when one is set), then
/// /events/get_data by time and tags.
#[test]
fn events_are_stored_and_queried_by_time_and_tags() {
    let app = Appliance::start_with(Options::default().env("INSTANTOPS_HTTP__TOKEN", "s3cret"));
    let post = |body: &str, token: Option<&str>| {
        let auth = token.map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
        app.request("POST", "/events", &headers, Some(body.as_bytes()))
    };
    assert_eq!(post(r#"{"what": "deploy", "tags": ["deploy", "web"], "when": 1700000000}"#, None).status, 401);
    assert_eq!(post(r#"{"what": "deploy", "tags": ["deploy", "web"], "when": 1700000000, "data": "v1.2"}"#, Some("s3cret")).status, 200);
    assert_eq!(post(r#"{"what": "restart", "tags": "db", "when": 1700000100}"#, Some("s3cret")).status, 200);
    assert_eq!(post(r#"{"what": "old", "tags": "web", "when": 1600000000}"#, Some("s3cret")).status, 200);
    assert_eq!(post(r#"{"what": "x", "tags": 7}"#, Some("s3cret")).status, 400);
    assert_eq!(post("not json", Some("s3cret")).status, 400);

    let got = app.get("/events/get_data?from=1699999000&until=1700001000").json();
    assert_eq!(
        got,
        serde_json::json!([
            {"when": 1700000000, "what": "deploy", "data": "v1.2", "tags": ["deploy", "web"], "id": 1},
            {"when": 1700000100, "what": "restart", "data": "", "tags": ["db"], "id": 2}
        ])
    );
    let whats = |q: &str| -> Vec<String> {
        app.get(&format!("/events/get_data?{q}"))
            .json()
            .as_array()
            .expect("list")
            .iter()
            .map(|e| e["what"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(whats("from=1&tags=web"), ["old", "deploy"]);
    assert_eq!(whats("from=1&tags=web%20deploy"), ["deploy"]);
    assert_eq!(whats("from=1&tags=web%20db&set=union"), ["old", "deploy", "restart"]);
    assert_eq!(whats("from=1&tags=web%20db&set=intersection"), Vec::<String>::new());
}

/// Every function with odd arguments: whatever graphite-web would say, the
/// appliance answers (4xx, or 200, or a 500 it chose) and never panics.
#[test]
fn every_function_survives_odd_arguments() {
    let app = Appliance::start();
    let t = now();
    let text: String = (0..30)
        .map(|i| format!("odd.a.x {i} {}\nodd.b.x {} {}\nodd.c.y -{i} {}\n", t - 300 + i * 10, i * i, t - 300 + i * 10, t - 300 + i * 10))
        .collect();
    app.send_tcp("carbon_tcp", text.as_bytes());
    eventually(Duration::from_secs(20), "odd series", || {
        (app.get("/metrics/expand?query=odd.*.*").json()["results"].as_array().is_some_and(|a| a.len() == 3)).then_some(())
    });
    let functions: serde_json::Value = serde_json::from_str(&app.get("/functions").body.replace("1e9999", "0")).expect("JSON");
    let shapes = [
        "",
        "odd.*.*",
        "odd.*.*,2",
        "odd.*.*,-1",
        "odd.*.*,0",
        "odd.*.*,'x'",
        "odd.*.*,'5min'",
        "odd.*.*,odd.a.x",
        "odd.*.*,1e308,'sum'",
        "odd.nope.*",
        "odd.nope.*,odd.nope.*,3",
        "'odd.a.x','x=y'",
        "odd.*.*,'average',1,2,3",
        "odd.*.*,none,true",
    ];
    let mut panics = Vec::new();
    for name in functions.as_object().expect("object").keys() {
        for args in shapes {
            let target = format!("{name}({args})");
            let path = format!(
                "/render?format=json&from=-10min&target={}",
                target.replace('%', "%25").replace(' ', "%20").replace('\'', "%27").replace(',', "%2C")
            );
            let r = app.get(&path);
            if r.body.contains("panicked") || r.status == 0 {
                panics.push(format!("{target}: {} {}", r.status, r.body));
            }
        }
    }
    assert!(panics.is_empty(), "{} panics:\n{}", panics.len(), panics.join("\n"));
}
