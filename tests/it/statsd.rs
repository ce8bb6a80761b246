//! statsd ingest end to end with the clients apps use (Python `statsd`,
//! `datadog`'s DogStatsd, npm `hot-shots`), read back through `/render`,
//! `/events/get_data` and the admin console; bad input, bounds and the stop
//! flush. Etsy's exact semantics are statsd_diff.rs's.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Appliance, Options, eventually, open_store, python};

/// One-second flushes into one-second slots, so a flush is readable at once;
/// `statsd` holds more keys of the `[statsd]` section.
fn fast(statsd: &str) -> Appliance {
    Appliance::start_with(Options::default().config(&format!(
        "[statsd]\nflush_interval = \"1s\"\n{statsd}\n[[carbon.schemas]]\nname = \"all\"\npattern = \".*\"\nretentions = \"1s:1h\"\n"
    )))
}

/// The non-null values of `target` over the last 10 minutes.
fn values(app: &Appliance, target: &str) -> Vec<f64> {
    let reply = app.get(&format!("/render?target={}&from=-10min&format=json", urlencode(target)));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply
        .json()
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["datapoints"].as_array().cloned().unwrap_or_default())
        .filter_map(|p| p[0].as_f64())
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"._-*".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// Waits until `target` has flushed a value satisfying `ok`.
fn wait_value(app: &Appliance, target: &str, ok: impl Fn(f64) -> bool) -> f64 {
    eventually(Duration::from_secs(20), &format!("a flushed value of {target}"), || values(app, target).into_iter().find(|v| ok(*v)))
}

#[test]
fn python_statsd_client_over_udp_and_tcp() {
    let app = fast("");
    let udp = app.addr("statsd_udp");
    let tcp = app.addr("statsd_tcp");
    python(
        r#"
import sys, statsd
host, port = sys.argv[1].rsplit(':', 1)
c = statsd.StatsClient(host, int(port), prefix='app')
c.incr('hits', 3)
c.incr('hits')
c.timing('db.query', 12)
c.timing('db.query', 18)
c.gauge('queue', 40)
c.gauge('queue', -5, delta=True)
c.set('visitors', 'alice')
c.set('visitors', 'bob')
host, port = sys.argv[2].rsplit(':', 1)
t = statsd.TCPStatsClient(host, int(port), prefix='tcp')
t.incr('hits', 7)
t.close()
"#,
        &[&udp.to_string(), &tcp.to_string()],
    );
    assert_eq!(wait_value(&app, "stats_counts.app.hits", |v| v > 0.0), 4.0);
    assert_eq!(wait_value(&app, "stats.timers.app.db.query.mean", |v| v > 0.0), 15.0);
    assert_eq!(wait_value(&app, "stats.timers.app.db.query.upper_90", |v| v > 0.0), 18.0);
    assert_eq!(wait_value(&app, "stats.gauges.app.queue", |_| true), 35.0);
    assert_eq!(wait_value(&app, "stats.sets.app.visitors.count", |v| v > 0.0), 2.0);
    assert_eq!(wait_value(&app, "stats_counts.tcp.hits", |v| v > 0.0), 7.0);
}

#[test]
fn datadog_dogstatsd_tags_events_and_service_checks() {
    let app = fast("");
    let udp = app.addr("statsd_udp");
    python(
        r#"
import sys
from datadog.dogstatsd import DogStatsd
host, port = sys.argv[1].rsplit(':', 1)
d = DogStatsd(host=host, port=int(port), disable_telemetry=True)
d.increment('page.views', 2, tags=['env:prod', 'canary'])
d.histogram('render.ms', 40, tags=['env:prod'])
d.histogram('render.ms', 60, tags=['env:prod'])
d.distribution('payload.bytes', 512)
d.gauge('workers', 8, tags=['pool:a'])
d.event('Deploy done', 'version 1.2 is live', alert_type='success', tags=['app:web'])
d.service_check('db.up', DogStatsd.WARNING, tags=['env:prod'], hostname='db1', message='slow: m:5')
d.flush()
"#,
        &[&udp.to_string()],
    );
    let tagged = |expr: &str| format!("seriesByTag({expr})");
    assert_eq!(wait_value(&app, &tagged("'name=stats_counts.page.views','env=prod','canary=true'"), |v| v > 0.0), 2.0);
    // `h` and `d` are timers (h_as_timer defaults to true).
    assert_eq!(wait_value(&app, &tagged("'name=stats.timers.render.ms.mean','env=prod'"), |v| v > 0.0), 50.0);
    assert_eq!(wait_value(&app, "stats.timers.payload.bytes.upper", |v| v > 0.0), 512.0);
    assert_eq!(wait_value(&app, &tagged("'name=stats.gauges.workers','pool=a'"), |_| true), 8.0);
    assert_eq!(wait_value(&app, &tagged("'name=stats.service_checks.db.up','host=db1'"), |_| true), 1.0);
    let events = eventually(Duration::from_secs(10), "the DogStatsD event", || {
        let list = app.get("/events/get_data?from=-1h").json();
        list.as_array().filter(|l| !l.is_empty()).cloned()
    });
    assert_eq!(events[0]["what"], "Deploy done");
    assert_eq!(events[0]["data"], "version 1.2 is live");
    let tags: Vec<&str> = events[0]["tags"].as_array().expect("tags").iter().filter_map(Value::as_str).collect();
    assert!(tags.contains(&"app:web") && tags.contains(&"alert_type:success"), "{tags:?}");
    // The event is in the log index too.
    let logged = eventually(Duration::from_secs(10), "the DogStatsD event in the logs", || {
        let hits = app.get("/api/logs/search?q=type:dogstatsd_event&from=-1h").json()["hits"].as_array().cloned().unwrap_or_default();
        hits.first().cloned()
    });
    assert_eq!((logged["message"].as_str(), logged["text"].as_str()), (Some("Deploy done"), Some("version 1.2 is live")));
    assert_eq!((logged["alert_type"].as_str(), logged["source"].as_str()), (Some("success"), Some("statsd")));
    // None of these are bad lines.
    assert_eq!(app.counter("instantops_bad_lines_total{input=\"statsd_udp\"}"), 0.0);
}

#[test]
fn hot_shots_client() {
    let app = fast("");
    let udp = app.addr("statsd_udp");
    let oracle = std::env::var_os("IOPS_STATSD_ORACLE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(".cache/instantops-target"))
            .join("statsd-oracle")
    });
    assert!(oracle.join("node_modules/hot-shots").exists(), "no hot-shots under {} (tests/run installs it)", oracle.display());
    let script = format!(
        "const S = require('hot-shots'); const c = new S({{ host: '127.0.0.1', port: {}, prefix: 'node.' }});
         c.increment('requests', 5); c.timing('latency', 42); c.gauge('heap', 1024, ['env:dev']);
         c.close(() => {{}});",
        udp.port()
    );
    let out = Command::new("node").arg("-e").arg(&script).current_dir(&oracle).output().expect("run node");
    assert!(out.status.success(), "hot-shots script failed: {}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(wait_value(&app, "stats_counts.node.requests", |v| v > 0.0), 5.0);
    assert_eq!(wait_value(&app, "stats.timers.node.latency.median", |v| v > 0.0), 42.0);
    assert_eq!(wait_value(&app, "seriesByTag('name=stats.gauges.node.heap','env=dev')", |_| true), 1024.0);
}

#[test]
fn bad_lines_are_counted_and_the_good_ones_kept() {
    let app = fast("max_packet = \"1KiB\"");
    let mut packet = String::new();
    for i in 0..200 {
        packet.push_str(&format!("good:1|c\nbad{i}\nworse:x|c\n"));
        if packet.len() > 800 {
            app.send_udp("statsd_udp", packet.as_bytes());
            packet.clear();
        }
    }
    app.send_udp("statsd_udp", packet.as_bytes());
    // Over max_packet: dropped whole and counted, whatever it holds.
    app.send_udp("statsd_udp", format!("huge:1|c\n{}", "x".repeat(2000)).as_bytes());
    // TCP: a partial line joins its rest; an over-long line is dropped, its neighbours kept.
    let mut s = app.tcp("statsd_tcp");
    s.write_all(b"tcp.a:1|").expect("write");
    s.flush().expect("flush");
    std::thread::sleep(Duration::from_millis(50));
    s.write_all(format!("c\n{}:1|c\ntcp.b:1|c\ntail:1|c", "k".repeat(3000)).as_bytes()).expect("write");
    drop(s);
    assert_eq!(wait_value(&app, "stats_counts.good", |v| v > 0.0), 200.0);
    assert_eq!(wait_value(&app, "stats_counts.tcp.a", |v| v > 0.0), 1.0);
    assert_eq!(wait_value(&app, "stats_counts.tcp.b", |v| v > 0.0), 1.0);
    eventually(Duration::from_secs(10), "bad lines counted", || {
        (app.counter("instantops_bad_lines_total{input=\"statsd_udp\"}") == 400.0).then_some(())
    });
    assert_eq!(app.counter("instantops_dropped_total{input=\"statsd_udp\",reason=\"too_long\"}"), 1.0);
    assert_eq!(app.counter("instantops_dropped_total{input=\"statsd_tcp\",reason=\"too_long\"}"), 1.0);
    // Etsy's own counter, flushed like any other.
    assert_eq!(wait_value(&app, "stats_counts.statsd.bad_lines_seen", |v| v > 0.0), 400.0);
    // The line left without a newline at close is dropped, as Etsy's TCP server does.
    assert!(values(&app, "stats_counts.tail").is_empty());
    assert!(app.status()["bad_lines_seen"].as_f64().unwrap_or(0.0) >= 400.0);
}

#[test]
fn max_series_refuses_new_names_and_counts_them() {
    // Three of the five are statsd's own counters.
    let app = fast("max_series = 5");
    app.send_udp("statsd_udp", b"one:1|c\ntwo:1|ms\nthree:1|g\nfour:1|s\none:1|c");
    assert_eq!(wait_value(&app, "stats_counts.one", |v| v > 0.0), 2.0);
    // one and two fill the five; three and four are refused.
    eventually(Duration::from_secs(10), "refusals counted", || {
        (app.counter("instantops_dropped_total{input=\"statsd_udp\",reason=\"series_limit\"}") == 2.0).then_some(())
    });
    assert_eq!(wait_value(&app, "stats.timers.two.count", |v| v > 0.0), 1.0);
    assert!(values(&app, "stats.gauges.three").is_empty());
    assert!(values(&app, "stats.sets.four.count").is_empty());
}

#[test]
fn admin_console_answers_like_etsy() {
    let app = fast("");
    app.send_udp("statsd_udp", b"c1:5|c\ng1:3|g");
    let stream = app.tcp("statsd_admin");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut ask = |command: &str, until: &str| {
        (&stream).write_all(format!("{command}\n").as_bytes()).expect("write");
        let mut out = String::new();
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).expect("read") > 0, "console closed after {out:?}");
            out.push_str(&line);
            if line.trim_end() == until {
                if until == "END" {
                    // Dumps end with END and a blank line.
                    let mut blank = String::new();
                    reader.read_line(&mut blank).expect("read");
                    out.push_str(&blank);
                }
                return out;
            }
        }
    };
    assert_eq!(ask("health", "health: up"), "health: up\n");
    assert_eq!(ask("health down", "health: down"), "health: down\n");
    let gauges = eventually(Duration::from_secs(10), "the gauge in the console", || {
        let g = ask("gauges", "END");
        g.contains("g1: 3").then_some(g)
    });
    assert!(gauges.ends_with("END\n\n"), "{gauges}");
    assert!(ask("stats", "END").starts_with("uptime: "));
    assert!(ask("counters", "END").contains("'statsd.packets_received'"));
    assert_eq!(ask("delgauges g1 nope", "END"), "deleted: g1\nmetric nope not found\nEND\n\n");
    assert_eq!(ask("bogus", "ERROR"), "ERROR\n");
    (&stream).write_all(b"quit\n").expect("write");
    let mut rest = String::new();
    assert_eq!(reader.read_line(&mut rest).expect("eof"), 0, "quit closes the connection");
}

#[test]
fn an_orderly_stop_flushes_the_current_interval() {
    // A long interval: only the stop can flush what was just sent.
    let mut app = Appliance::start_with(
        Options::default()
            .config("[statsd]\nflush_interval = \"1h\"\n[[carbon.schemas]]\nname = \"all\"\npattern = \".*\"\nretentions = \"1s:1h\"\n"),
    );
    app.send_udp("statsd_udp", b"late:9|c");
    eventually(Duration::from_secs(10), "the sample received", || {
        (app.counter("instantops_received_total{input=\"statsd_udp\"}") == 1.0).then_some(())
    });
    app.terminate(Duration::from_secs(10)).expect("stops");
    let store = open_store(&app.data_dir());
    let now = crate::harness::now();
    // (The stop flush is stamped with its time rounded, which may be the next second.)
    let fetched = store.fetch("stats_counts.late", now - 600, now + 2, now as u32 + 2).expect("fetch").expect("series stored");
    assert_eq!(fetched.values.iter().flatten().copied().collect::<Vec<_>>(), vec![9.0]);
}

#[test]
fn kernel_drops_are_visible() {
    let app = fast("");
    let metrics = app.get("/metrics").body;
    assert!(metrics.contains("instantops_udp_drops_total{input=\"statsd_udp\"} 0"), "{metrics}");
}
