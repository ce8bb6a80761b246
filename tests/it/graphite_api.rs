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
    assert_eq!(app.get("/render?target=lim.a&from=-10min&format=png").status, 501);
    assert_eq!(app.get("/functions/nope").status, 404);
    assert_eq!(app.get("/version").body, "1.1.8");
}
