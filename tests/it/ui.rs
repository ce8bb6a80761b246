//! The dashboard: its files as served (every file under web/, gzip, ETag,
//! the size budget) and, in a real headless Chromium, every page against an
//! appliance fed by the real statsd, graphyte and python-logstash clients
//! (tests/browser/dashboard.py). Screenshots go to <target>/screenshots/ui/.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{Appliance, Options, client_python, eventually, now, python, repo_path};

fn files_under(dir: &Path, base: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).expect("read web/") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files_under(&path, base, out);
        } else {
            out.push(path.strip_prefix(base).expect("under web/").to_string_lossy().into_owned());
        }
    }
}

#[test]
fn every_file_under_web_is_served_as_it_is() {
    let app = Appliance::start();
    let web = repo_path("web");
    let mut files = Vec::new();
    files_under(&web, &web, &mut files);
    assert!(files.len() >= 10, "{files:?}");
    let mut shipped = 0;
    for file in &files {
        let reply = app.get(&format!("/ui/assets/{file}"));
        assert_eq!(reply.status, 200, "web/{file} is not served: add it to FILES in src/http/ui.rs");
        assert_eq!(reply.body.as_bytes(), std::fs::read(web.join(file)).unwrap(), "web/{file}");
        if file.ends_with(".js") || file.ends_with(".css") {
            shipped += reply.body.len();
        }
    }
    assert!(shipped < 300_000, "{shipped} bytes of JS and CSS: the budget is 300 KB");
    // Every page answers index.html; unknown ones a JSON 404.
    let index = std::fs::read_to_string(web.join("index.html")).unwrap();
    for page in ["/", "/ui/metrics", "/ui/dashboards", "/ui/logs", "/ui/alerts", "/ui/logs?q=level:error"] {
        let reply = app.get(page);
        assert_eq!((reply.status, reply.body.as_str()), (200, index.as_str()), "{page}");
        assert!(reply.headers["content-type"].starts_with("text/html"), "{page}");
    }
    let reply = app.get("/ui/nope");
    assert_eq!(reply.status, 404);
    assert!(reply.json()["error"].as_str().unwrap().contains("nope"));
    assert_eq!(app.get("/ui/assets/js/../index.html").status, 404);
    assert_eq!(app.get("/ui/assets/missing.js").status, 404);
    // Every module an import names, and every asset index.html names, exists.
    for file in files.iter().filter(|f| f.ends_with(".js") && f.starts_with("js/")) {
        let text = std::fs::read_to_string(web.join(file)).unwrap();
        for line in text.lines().filter(|l| l.starts_with("import ")) {
            let target = line.rsplit("from '").next().unwrap().trim_end_matches("';");
            let mut path: Vec<&str> = file.split('/').collect();
            path.pop();
            for part in target.split('/') {
                match part {
                    "." => {}
                    ".." => drop(path.pop()),
                    name => path.push(name),
                }
            }
            assert!(files.contains(&path.join("/")), "{file} imports {target}, which is not under web/");
        }
    }
    for asset in index.split("\"/ui/assets/").skip(1).map(|s| s.split('"').next().unwrap()) {
        assert_eq!(app.get(&format!("/ui/assets/{asset}")).status, 200, "index.html names {asset}");
    }
}

#[test]
fn assets_are_gzipped_and_revalidated() {
    let app = Appliance::start();
    let plain = app.get("/ui/assets/vendor/uPlot.iife.min.js");
    let etag = plain.headers["etag"].clone();
    assert_eq!(plain.headers["cache-control"], "no-cache");
    let packed = app.request("GET", "/ui/assets/vendor/uPlot.iife.min.js", &[("accept-encoding", "gzip")], None);
    assert_eq!(packed.headers.get("content-encoding").map(String::as_str), Some("gzip"));
    assert!(packed.headers["content-length"].parse::<usize>().unwrap() < plain.body.len() / 2);
    let again = app.request("GET", "/ui/assets/vendor/uPlot.iife.min.js", &[("if-none-match", &etag)], None);
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    let other = app.get("/ui/assets/js/app.js");
    assert_ne!(other.headers["etag"], etag);
}

/// Where the screenshots of browser tests go: <target>/screenshots/<name>.
pub fn screenshots(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).parent().expect("target dir").join("screenshots").join(name);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

/// Feeds what the browser scenarios look for, through the real clients.
pub fn feed(app: &Appliance, run: &str) -> serde_json::Value {
    let counter = format!("stats_counts.ui.{run}.hits");
    let host = format!("uihost{run}");
    let needle = format!("ui-needle-{run}");
    let big = format!("uibench{run}");
    python(
        r#"
import sys, statsd
host, port = sys.argv[1].rsplit(':', 1)
c = statsd.StatsClient(host, int(port))
for _ in range(5):
    c.incr(sys.argv[2], 7)
"#,
        &[&app.addr("statsd_udp").to_string(), &format!("ui.{run}.hits")],
    );
    python(
        r#"
import sys, time, graphyte, logging, logstash
host, port = sys.argv[1].rsplit(':', 1)
now = int(time.time())
sender = graphyte.Sender(host, port=int(port), protocol='tcp', raise_send_errors=True)
for i in range(30):
    sender.send('servers.%s.cpu.user' % sys.argv[3], 10 + i % 7, timestamp=now - 60 * (30 - i))
sender.stop()
jhost, jport = sys.argv[2].rsplit(':', 1)
log = logging.getLogger('ui')
log.setLevel(logging.INFO)
handler = logstash.TCPLogstashHandler(jhost, int(jport), version=1)
log.addHandler(handler)
log.error('upstream timed out %s', sys.argv[4], extra={'host': sys.argv[3], 'service': 'checkout'})
handler.close()
"#,
        &[&app.addr("carbon_tcp").to_string(), &app.addr("json_tcp").to_string(), &host, &needle],
    );
    // A 12-panel dashboard's worth: 12 x 20 series, an hour at the finest
    // retention (10 s).
    let t = now() / 10 * 10;
    let mut lines = String::new();
    for p in 0..12 {
        for s in 0..20 {
            for i in 0..360 {
                lines.push_str(&format!("{big}.p{p}.s{s} {} {}\n", (p * 20 + s + i) % 50, t - 3600 + i * 10));
            }
        }
    }
    app.send_tcp("carbon_tcp", lines.as_bytes());
    eventually(Duration::from_secs(30), "the counter flushed", || {
        let r = app.get(&format!("/render?target={counter}&from=-10min&format=json")).json();
        r[0]["datapoints"].as_array()?.iter().any(|p| p[0].as_f64().is_some_and(|v| v > 0.0)).then_some(())
    });
    eventually(Duration::from_secs(30), "the log event searchable", || {
        let r = app.get(&format!("/api/logs/search?q={needle}&from=-1h")).json();
        (r["hits"][0]["host"] == host.as_str()).then_some(())
    });
    eventually(Duration::from_secs(30), "the bench series", || {
        let r = app.get(&format!("/render?target={big}.p11.*&from=-2h&format=json")).json();
        (r.as_array()?.len() == 20).then_some(())
    });
    serde_json::json!({
        "counter": counter,
        "needle": needle,
        "log_host": host,
        "host_series": format!("servers.{host}.cpu.user"),
        "big_prefix": big,
        "check_name": format!("ui check {run}"),
        "dashboard_title": format!("ui board {run}"),
    })
}

pub fn start_fed() -> (Appliance, serde_json::Value) {
    let app = Appliance::start_with(
        Options::default()
            .env("INSTANTOPS_STATSD__FLUSH_INTERVAL", "1s")
            // Etsy's deleteIdleStats: no zero after the flush that carried the
            // counter, which would overwrite it in the same 10 s slot.
            .env("INSTANTOPS_STATSD__DELETE_IDLE_STATS", "true"),
    );
    let run = format!("{:x}", std::process::id() ^ (now() as u32));
    let args = feed(&app, &run);
    (app, args)
}

/// Runs tests/browser/dashboard.py with `args`; its stdout, or a panic with all it said.
pub fn browse(args: &serde_json::Value) -> String {
    let out = Command::new(client_python())
        .arg(repo_path("tests/browser/dashboard.py"))
        .arg(args.to_string())
        .stdin(Stdio::null())
        .output()
        .expect("run the browser script");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "browser scenarios failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[test]
fn every_page_in_a_real_browser() {
    let (app, mut args) = start_fed();
    args["base"] = format!("http://{}", app.addr("http")).into();
    let shots = screenshots("ui");
    for old in std::fs::read_dir(&shots).expect("screenshot dir").flatten() {
        let _ = std::fs::remove_file(old.path());
    }
    args["shots"] = shots.to_string_lossy().into_owned().into();
    let said = browse(&args);
    eprintln!("{said}");
    for scenario in [
        "every_page_loads",
        "counter_is_drawn",
        "log_line_is_found",
        "check_from_the_form",
        "dashboard_survives_reload",
        "drag_zooms_and_opens_logs",
        "template_variable",
        "big_dashboard_draws",
    ] {
        assert!(said.contains(&format!("ok   {scenario}")), "{scenario} did not pass:\n{said}");
        assert!(shots.join(format!("{scenario}.png")).exists(), "no screenshot of {scenario}");
    }
}
