//! The appliance's shell: start, listeners, config, status, metrics, auth, stop.

use std::time::Duration;

use crate::harness::{Appliance, Options, free_port, repo_path, run};

#[test]
fn starts_on_defaults_and_answers_healthz() {
    let app = Appliance::start();
    let reply = app.get("/healthz");
    assert_eq!((reply.status, reply.body.as_str()), (200, "ok\n"));
    let status = app.status();
    assert_eq!(status["version"], env!("CARGO_PKG_VERSION"));
    // Every bound listener is in /api/status, with the address it announced.
    let listed = status["listeners"].as_object().expect("listeners object");
    assert!(!listed.is_empty());
    for (name, addr) in &app.listeners {
        assert_eq!(listed.get(name).and_then(|v| v.as_str()), Some(addr.to_string().as_str()), "{name}");
    }
    assert_eq!(listed.len(), app.listeners.len());
    assert_eq!(status["memory"]["limit"], 1u64 << 30);
    assert!(status["memory"]["rss"].as_u64().expect("rss") > 1 << 20);
    assert!(status["uptime_s"].as_f64().is_some());
    // Where data lives and how long it stays: the embedded defaults.
    let storage = &status["storage"];
    assert_eq!(storage["data_dir"], app.data_dir().to_string_lossy().as_ref());
    assert_eq!(storage["tsdb"]["retentions"][0], serde_json::json!({"pattern": ".*", "retentions": "10s:6h,1m:7d,10m:5y"}));
    assert!(storage["tsdb"]["disk_bytes"].as_u64().is_some());
    assert_eq!(storage["logs"]["retention_s"], 30 * 86400);
    assert_eq!(storage["logs"]["max_disk"], 100u64 << 30);
    assert!(storage["logs"]["disk_bytes"].as_u64().is_some());
}

#[test]
fn env_override_moves_a_port() {
    let port = free_port();
    let app = Appliance::start_with(Options::default().env("INSTANTOPS_HTTP__LISTEN", &format!("127.0.0.1:{port}")));
    assert_eq!(app.addr("http").port(), port);
    assert_eq!(app.get("/healthz").status, 200);
}

#[test]
fn config_file_overrides_defaults_and_env_overrides_the_file() {
    let app = Appliance::start_with(
        Options::default().config("[memory]\nlimit = \"512MiB\"\n[http]\nmax_body = \"4KiB\"\n").env("INSTANTOPS_MEMORY__LIMIT", "768MiB"),
    );
    assert_eq!(app.status()["memory"]["limit"], 768u64 << 20);
    // max_body came from the file: a 5 KiB write is refused with a JSON error.
    let reply = app.request("PUT", "/api/config/log_level", &[("content-type", "application/json")], Some(&[b' '; 5 << 10]));
    assert_eq!(reply.status, 413, "{}", reply.body);
    assert!(reply.json()["error"].as_str().is_some_and(|e| !e.is_empty()));
}

#[test]
fn broken_config_lists_all_its_problems() {
    let fixture = repo_path("tests/fixtures/broken.toml");
    let fixture = fixture.to_str().expect("utf-8 path");
    let (code, _, stderr) = run(&["check-config", fixture], &[]);
    assert_eq!(code, 2, "{stderr}");
    for key in [
        "colour",
        "http.listen",
        "http.max_body",
        "memory.limit",
        "statsd.flush_interval",
        "carbon.schemas[0].retentions",
        "carbon.schemas[1].pattern",
        "logs.retention",
        "alerts.intervall",
        "dashboards.max_bytes",
    ] {
        assert!(stderr.contains(&format!("config error: {key}: ")), "no problem named {key} in:\n{stderr}");
    }
    // serve refuses the same file with the same exit code, before binding anything.
    let (code, stdout, stderr2) = run(&["serve", "--config", fixture], &[]);
    assert_eq!(code, 2);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr2.contains("config error: colour: "), "{stderr2}");
}

#[test]
fn semantic_problems_are_listed_once_types_are_right() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[statsd]\npercent_thresholds = [90, 250]\n[[carbon.schemas]]\nname = \"x\"\npattern = \".*\"\nretentions = \"7s:1d,10s:2d\"\n",
    )
    .expect("write");
    let (code, _, stderr) = run(&["check-config", path.to_str().expect("utf-8")], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("config error: statsd.percent_thresholds: 250"), "{stderr}");
    assert!(stderr.contains("config error: carbon.schemas[0].retentions: precision 10s is not a multiple of the finer 7s"), "{stderr}");
}

#[test]
fn bad_env_value_is_a_config_error_naming_the_key() {
    let (code, _, stderr) =
        run(&["check-config", repo_path("config/instantops.toml").to_str().expect("utf-8")], &[("INSTANTOPS_STATSD__MAX_SERIES", "many")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("config error: statsd.max_series: "), "{stderr}");
    let (code, _, stderr) =
        run(&["check-config", repo_path("config/instantops.toml").to_str().expect("utf-8")], &[("INSTANTOPS_NOPE__X", "1")]);
    assert_eq!(code, 2);
    assert!(stderr.contains("config error: nope"), "{stderr}");
}

#[test]
fn every_shipped_config_is_valid() {
    let mut checked = 0;
    for entry in std::fs::read_dir(repo_path("config")).expect("config dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (code, stdout, stderr) = run(&["check-config", path.to_str().expect("utf-8")], &[]);
            assert_eq!(code, 0, "{}: {stderr}", path.display());
            assert!(stdout.ends_with(": ok\n"), "{stdout}");
            checked += 1;
        }
    }
    assert!(checked >= 2, "instantops.toml and appliance.toml at least");
}

#[test]
fn sigterm_exits_zero_in_time() {
    let mut app = Appliance::start();
    assert_eq!(app.get("/healthz").status, 200);
    let status = app.terminate(Duration::from_secs(10)).expect("exited within the contract's 10 s");
    assert!(status.success(), "{status:?}\n{}", app.stderr());
    assert!(app.stderr().contains("stopped"), "orderly stop is logged:\n{}", app.stderr());
}

#[test]
fn sigint_exits_zero_too() {
    let mut app = Appliance::start();
    crate::harness::signal(app.pid(), "INT");
    let status = app.wait_exit(Duration::from_secs(10)).expect("exited within 10 s of SIGINT");
    assert!(status.success(), "{status:?}");
}

#[test]
fn metrics_parse_as_prometheus_text() {
    let app = Appliance::start();
    app.get("/healthz");
    let reply = app.get("/metrics");
    assert_eq!(reply.status, 200);
    assert!(reply.headers.get("content-type").is_some_and(|c| c.starts_with("text/plain; version=0.0.4")));
    let families = parse_prometheus(&reply.body);
    assert!(families.iter().any(|(name, kind, _)| name == "instantops_http_requests_total" && kind == "counter"));
    let rss = families.iter().find(|(name, _, _)| name == "instantops_process_resident_memory_bytes").expect("rss gauge");
    assert!(rss.2.iter().all(|v| *v > 1e6));
    let ok_requests: f64 = reply
        .body
        .lines()
        .find(|l| l.starts_with("instantops_http_requests_total{code=\"2xx\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("2xx counter");
    assert!(ok_requests >= 1.0, "the /healthz call was counted");
}

/// A strict reader of the text format: every sample belongs to the family whose
/// HELP and TYPE came just before it. Returns (name, type, values).
fn parse_prometheus(text: &str) -> Vec<(String, String, Vec<f64>)> {
    let sample =
        regex::Regex::new(r#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (\S+)$"#).expect("regex");
    let mut families: Vec<(String, String, Vec<f64>)> = Vec::new();
    let mut help_for = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            help_for = rest.split(' ').next().expect("name").to_string();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE name kind");
            assert_eq!(name, help_for, "TYPE follows its HELP");
            assert!(["counter", "gauge", "histogram", "summary", "untyped"].contains(&kind), "{line}");
            families.push((name.to_string(), kind.to_string(), Vec::new()));
        } else {
            let caps = sample.captures(line).unwrap_or_else(|| panic!("not a sample line: {line:?}"));
            let family = families.last_mut().expect("a sample after a TYPE");
            assert_eq!(&caps[1], family.0, "sample outside its family");
            family.2.push(caps[5].parse().unwrap_or_else(|_| panic!("bad value in {line:?}")));
        }
    }
    assert!(!families.is_empty());
    families
}

#[test]
fn mutating_route_refuses_a_missing_or_wrong_token() {
    let app = Appliance::start_with(Options::default().env("INSTANTOPS_HTTP__TOKEN", "s3cret"));
    let body = br#"{"level":"debug"}"#;
    let json = ("content-type", "application/json");
    let missing = app.request("PUT", "/api/config/log_level", &[json], Some(body));
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert!(missing.json()["error"].as_str().expect("error").contains("Authorization: Bearer"));
    let wrong = app.request("PUT", "/api/config/log_level", &[json, ("authorization", "Bearer nope")], Some(body));
    assert_eq!(wrong.status, 401);
    assert_eq!(app.get("/api/config/log_level").json()["level"], "info", "refused writes change nothing");
    let right = app.request("PUT", "/api/config/log_level", &[json, ("authorization", "Bearer s3cret")], Some(body));
    assert_eq!(right.status, 200, "{}", right.body);
    assert_eq!(app.get("/api/config/log_level").json()["level"], "debug");
    assert_eq!(app.counter("instantops_http_auth_failures_total"), 2.0);
}

#[test]
fn writes_are_open_without_a_token() {
    let app = Appliance::start();
    let reply = app.request("PUT", "/api/config/log_level", &[("content-type", "application/json")], Some(br#"{"level":"warn"}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let bad = app.request("PUT", "/api/config/log_level", &[("content-type", "application/json")], Some(br#"{"level":"loud"}"#));
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().expect("error").contains("unknown log level \"loud\""));
}

#[test]
fn errors_are_json() {
    let app = Appliance::start();
    let missing = app.get("/no/such/route");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "no route for GET /no/such/route");
    let bad_json = app.request("PUT", "/api/config/log_level", &[("content-type", "application/json")], Some(b"{not json"));
    assert_eq!(bad_json.status, 400);
    assert!(bad_json.json()["error"].is_string());
    let wrong_method = app.request("DELETE", "/healthz", &[], None);
    assert_eq!(wrong_method.status, 405);
    assert!(wrong_method.json()["error"].is_string());
}

#[test]
fn json_log_format_writes_one_object_per_line() {
    let mut app = Appliance::start_with(Options::default().env("INSTANTOPS_LOG__FORMAT", "json"));
    app.terminate(Duration::from_secs(10)).expect("exit");
    let stderr = app.stderr();
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(lines.len() >= 2, "{stderr}");
    for line in lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        assert!(v["level"].is_string() && v["fields"].is_object(), "{line}");
    }
}

#[test]
fn version_command_prints_the_version() {
    let (code, stdout, _) = run(&["version"], &[]);
    assert_eq!(code, 0);
    assert!(stdout.starts_with(&format!("instantops {} (", env!("CARGO_PKG_VERSION"))), "{stdout}");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, stderr) = run(&["serve", "--bogus"], &[]);
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(&["check-config", "/no/such/file.toml"], &[]);
    assert_eq!(code, 2);
    assert!(stderr.contains("/no/such/file.toml"), "{stderr}");
}
