//! Graphite events (annotations) against real graphite-web 1.1.8: the same
//! events posted to both, then /events/get_data compared byte for byte.

use crate::graphite_web::GraphiteWeb;
use crate::harness::Appliance;

#[test]
fn events_match_graphite_web() {
    let whisper = tempfile::tempdir().expect("temp dir");
    let web = GraphiteWeb::start(whisper.path());
    let app = Appliance::start();
    let events = [
        r#"{"what": "deploy", "tags": ["deploy", "web"], "when": 1700000000, "data": "v1.2 \"quoted\""}"#,
        r#"{"what": "restart", "tags": "db", "when": 1700000100}"#,
        r#"{"what": "old", "tags": "web", "when": 1600000000, "data": "é"}"#,
        r#"{"what": "untagged", "when": 1700000050}"#,
    ];
    for body in events {
        let want = web.request("POST", "/events/", &[], Some(body.as_bytes()));
        let got = app.request("POST", "/events", &[], Some(body.as_bytes()));
        assert_eq!((want.status, got.status), (200, 200), "{body}: {} / {}", want.body, got.body);
    }
    let bad = r#"{"what": "x", "tags": 7}"#;
    assert_eq!(web.request("POST", "/events/", &[], Some(bad.as_bytes())).status, 400);
    assert_eq!(app.request("POST", "/events", &[], Some(bad.as_bytes())).status, 400);
    for query in [
        "from=1699999000&until=1700001000",
        "from=1&until=1800000000",
        "from=1&until=1800000000&tags=web",
        "from=1&until=1800000000&tags=web%20deploy",
        "from=1&until=1800000000&tags=web%20db&set=union",
        "from=1&until=1800000000&tags=web%20deploy&set=intersection",
        "from=1&until=1800000000&tags=nope",
        "from=1&until=1800000000&jsonp=cb",
    ] {
        let path = format!("/events/get_data?{query}");
        let (status, want) = web.get(&path);
        assert_eq!(status, 200, "{query}: {want}");
        let got = app.get(&path);
        assert_eq!(got.body, want, "{query}");
    }
}
