//! Host and self metrics: written into the store under Diamond's names and
//! the appliance's own, read back through `/render`, and off when switched off.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Appliance, Options, eventually};

fn options(metrics: bool) -> Options {
    Options::default().env("INSTANTOPS_HOST__METRICS", &metrics.to_string()).env("INSTANTOPS_HOST__SELF_METRICS", "true").config(&format!(
        "[host]\nmetrics = {metrics}\nself_metrics = true\ninterval = \"1s\"\nhostname = \"testbox\"\n\n\
         [[carbon.schemas]]\nname = \"fast\"\npattern = \"^(servers|instantops)\\\\.\"\nretentions = \"1s:1h\"\n"
    ))
}

/// The latest non-null value of `target` over the last minute, once there is one.
fn latest(app: &Appliance, target: &str) -> f64 {
    eventually(Duration::from_secs(30), &format!("a value for {target}"), || {
        let v = app.get(&format!("/render?target={target}&from=-1min&format=json")).json();
        v[0]["datapoints"].as_array()?.iter().rev().find_map(|p| p[0].as_f64())
    })
}

/// Waits until the latest value of `target` is above `min`.
fn above(app: &Appliance, target: &str, min: f64) -> f64 {
    eventually(Duration::from_secs(30), &format!("{target} above {min}"), || {
        let v = app.get(&format!("/render?target={target}&from=-1min&format=json")).json();
        v[0]["datapoints"].as_array()?.iter().rev().find_map(|p| p[0].as_f64()).filter(|x| *x > min)
    })
}

fn names(app: &Appliance, query: &str) -> Vec<String> {
    let v: Value = app.get(&format!("/metrics/find?query={query}&format=completer")).json();
    v["metrics"].as_array().cloned().unwrap_or_default().iter().filter_map(|m| m["path"].as_str().map(str::to_string)).collect()
}

#[test]
fn host_metrics_are_written_with_diamonds_names_and_read_back() {
    let app = Appliance::start_with(options(true));
    // Memory as the kernel reports it, read here independently.
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("meminfo");
    let total_kb: f64 =
        meminfo.lines().find_map(|l| l.strip_prefix("MemTotal:")?.split_whitespace().next()?.parse().ok()).expect("MemTotal");
    assert_eq!(latest(&app, "servers.testbox.memory.MemTotal"), total_kb * 1024.0);
    let load = latest(&app, "servers.testbox.loadavg.01");
    assert!((0.0..1000.0).contains(&load));
    assert!(latest(&app, "servers.testbox.loadavg.processes_total") >= 1.0);
    // Rates need two samples.
    let busy = latest(&app, "sumSeries(servers.testbox.cpu.total.{user,system,idle,iowait,nice,irq,softirq,steal})");
    let cores =
        std::fs::read_to_string("/proc/stat").expect("stat").lines().filter(|l| l.starts_with("cpu") && !l.starts_with("cpu ")).count()
            as f64;
    assert!(busy > 10.0 * cores && busy < 200.0 * cores, "about 100 jiffies a second per core: {busy} for {cores} cores");
    let interfaces = names(&app, "servers.testbox.network.*");
    assert!(interfaces.iter().any(|n| n.ends_with(".lo.")), "{interfaces:?}");
    assert!(latest(&app, "servers.testbox.network.lo.rx_byte") >= 0.0);
    assert!(latest(&app, "servers.testbox.proc.procs_running") >= 1.0);
    // Disk space for every real file system in /proc/mounts.
    let mounts = std::fs::read_to_string("/proc/mounts").expect("mounts");
    let real = mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 2 && f[0].contains('/') && ["ext4", "xfs", "btrfs", "ext3"].contains(&f[2]) && f[1] == "/"
    });
    if real {
        assert!(latest(&app, "servers.testbox.diskspace.root.byte_avail") > 0.0);
    } else {
        assert!(names(&app, "servers.testbox.diskspace.*").is_empty(), "no real file system at /");
    }
    // The appliance's own metrics, by the same path.
    above(&app, "instantops.testbox.process_resident_memory_bytes", 1e6);
    above(&app, "instantops.testbox.host_points_total", 0.0);
    // Labels become nodes.
    above(&app, "instantops.testbox.http_requests_total.2xx", 0.0);
}

#[test]
fn host_metrics_switch_off_and_self_metrics_stay() {
    let app = Appliance::start_with(options(false));
    above(&app, "instantops.testbox.host_points_total", 0.0);
    assert!(names(&app, "servers.*").is_empty(), "host metrics are off");
}

#[test]
fn cardinality_ranks_prefixes_by_series() {
    let app = Appliance::start();
    let now = crate::harness::now();
    let mut lines = String::new();
    for i in 0..30 {
        lines.push_str(&format!("big.app.m{i} 1 {now}\n"));
    }
    for i in 0..5 {
        lines.push_str(&format!("small.app.m{i};env=prod 1 {now}\n"));
    }
    lines.push_str(&format!("big.other.x 1 {now}\n"));
    app.send_tcp("carbon_tcp", lines.as_bytes());
    let v = eventually(Duration::from_secs(30), "36 series counted", || {
        let v = app.get("/api/cardinality?depth=2&top=2").json();
        (v["total"] == 36).then_some(v)
    });
    assert_eq!(v["prefixes"][0]["prefix"], "big.app");
    assert_eq!(v["prefixes"][0]["series"], 30);
    assert_eq!(v["prefixes"][1]["prefix"], "small.app", "tagged series count under their name");
    assert_eq!(v["prefixes"].as_array().map(Vec::len), Some(2));
    let v = app.get("/api/cardinality?depth=1").json();
    assert_eq!(v["prefixes"][0]["prefix"], "big");
    assert_eq!(v["prefixes"][0]["series"], 31);
    assert_eq!(app.get("/api/cardinality?depth=0").status, 400);
}

#[test]
fn status_shows_what_each_subsystem_holds_against_its_share() {
    let app = Appliance::start();
    let now = crate::harness::now();
    let lines: String = (0..2000).map(|i| format!("mem.s{i} {i} {now}\n")).collect();
    app.send_tcp("carbon_tcp", lines.as_bytes());
    let status = app.status();
    let memory = &status["memory"];
    for name in ["tsdb_block_cache", "tsdb_memtables", "tsdb_chunk_cache", "logs_backlog"] {
        let used = memory["used"][name].as_u64().unwrap_or_else(|| panic!("no use reported for {name}: {memory}"));
        if let Some(share) = memory["subsystems"][name].as_u64() {
            assert!(used <= share, "{name} holds {used} of a {share} share");
        }
    }
    assert!(memory["rss"].as_u64().unwrap_or(0) < memory["limit"].as_u64().unwrap_or(0));
    let metrics = app.get("/metrics").body;
    assert!(metrics.contains("instantops_memory_used_bytes{subsystem=\"tsdb_memtables\"}"), "{metrics}");
}
