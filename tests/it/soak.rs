//! The memory budget under combined load (issue 9): statsd, carbon, logs and
//! queries together for a bounded time under `memory.limit = "256MiB"`, the
//! resident set sampled every 100 ms from /proc. It never goes over the
//! limit, and every log event the appliance acknowledged is searchable
//! afterwards. The longer, heavier version is `benches/soak.sh`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use instantops::telemetry::memory::rss_of;

use crate::harness::{Appliance, Options, bin, eventually};

const LIMIT: u64 = 256 << 20;
const LOAD: Duration = Duration::from_secs(20);

#[test]
fn the_appliance_runs_without_transparent_huge_pages() {
    // mimalloc asks for huge pages on its arenas; the appliance turns them
    // off (a purged page came back as 2 MiB, resident in full).
    let app = Appliance::start();
    let status = std::fs::read_to_string(format!("/proc/{}/status", app.pid())).expect("the appliance's /proc status");
    let thp = status.lines().find_map(|l| l.strip_prefix("THP_enabled:")).map(str::trim);
    assert_eq!(thp, Some("0"), "THP_enabled in /proc/<pid>/status");
}

#[test]
fn combined_load_stays_under_the_memory_limit_and_loses_nothing_acknowledged() {
    let app = Appliance::start_with(Options::default().config("[memory]\nlimit = \"256MiB\"\n[logs]\ncommit_interval = \"500ms\"\n"));
    let secs = LOAD.as_secs().to_string();
    let load = |args: &[&str]| {
        Command::new(bin()).arg("bench").args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn a load generator")
    };
    let to = |listener: &str| app.addr(listener).to_string();
    let mut loads = vec![
        load(&["statsd", "--to", &to("statsd_udp"), "--rate", "20000", "--duration", &secs, "--per-packet", "10", "--series", "10000"]),
        load(&["carbon", "--to", &to("carbon_tcp"), "--series", "30000", "--rate", "50000", "--duration", &secs, "--connections", "1"]),
        load(&["logs", "--to", &to("json_tcp"), "--proto", "json", "--rate", "3000", "--duration", &secs, "--connections", "1"]),
    ];

    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak, pid) = (stop.clone(), peak.clone(), app.pid());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let rss = rss_of(&pid.to_string());
                if rss > 0 {
                    peak.fetch_max(rss, Ordering::Relaxed);
                    samples.push(rss >> 20);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        })
    };

    // Acknowledged writes (_bulk answers per item) and queries, from this
    // thread, for as long as the generators run.
    let token = format!("soak{}", std::process::id());
    let (mut acknowledged, mut refused, mut batch) = (0u64, 0u64, 0u64);
    let started = Instant::now();
    while started.elapsed() < LOAD {
        let mut body = String::new();
        for i in 0..200 {
            body.push_str("{\"index\":{}}\n");
            body.push_str(&format!("{{\"message\":\"soak event {batch}-{i}\",\"soak\":\"{token}\",\"level\":\"info\"}}\n"));
        }
        batch += 1;
        let reply =
            app.request_at("elasticsearch", "POST", "/soak/_bulk", &[("content-type", "application/x-ndjson")], Some(body.as_bytes()));
        match reply.status {
            200 => {
                for item in reply.json()["items"].as_array().expect("_bulk items") {
                    match item["index"]["status"].as_u64() {
                        Some(201 | 200) => acknowledged += 1,
                        Some(429) => refused += 1,
                        _ => panic!("unexpected _bulk item {item}"),
                    }
                }
            }
            429 => refused += 200,
            413 => panic!("_bulk batch too large: {}", reply.body),
            other => panic!("_bulk answered {other}: {}", reply.body),
        }
        let render = app.get("/render?target=sumSeries(bench.*.*.*)&from=-5min&format=json");
        assert!(render.status == 200 || render.status == 400 || render.status == 422, "render: {} {}", render.status, render.body);
        let search = app.get("/api/logs/search?q=level:error&limit=50&from=-5min");
        assert!(search.status == 200 || search.status == 429, "search: {} {}", search.status, search.body);
    }
    for child in &mut loads {
        let _ = child.wait();
    }
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().expect("sampler thread");
    let peak = peak.load(Ordering::Relaxed);
    assert!(samples.len() > 50, "too few RSS samples: {samples:?}");
    assert!(
        peak <= LIMIT,
        "resident set peaked at {} MiB over memory.limit = 256MiB; samples (MiB): {samples:?}\n{}",
        peak >> 20,
        app.stderr()
    );
    assert!(acknowledged > 0, "no _bulk item was acknowledged ({refused} refused)");

    // Every acknowledged event is searchable, exactly once.
    let query = format!("/api/logs/search?q=soak:{token}&limit=1&from=-1h");
    eventually(Duration::from_secs(30), "every acknowledged event searchable", || {
        let total = app.get(&query).json()["total"].as_u64()?;
        assert!(total <= acknowledged, "{total} events found, more than the {acknowledged} acknowledged");
        (total == acknowledged).then_some(())
    });
    let status = app.status();
    // The allocators' own totals: mimalloc serves the binary's Rust code,
    // glibc's malloc RocksDB's C++.
    let allocators = &status["memory"]["allocators"];
    assert!(allocators["mimalloc_committed"].as_u64().is_some_and(|b| b > 1 << 20), "{allocators}");
    assert!(allocators["malloc_in_use"].as_u64().is_some_and(|b| b > 1 << 20), "{allocators}");
    // The Rust heap by account, as the allocator counted it: every subsystem
    // that ran holds its part (series maps, statsd's keys, Tantivy's writer
    // heap), and all of them together are at most what mimalloc committed.
    let accounts = &status["memory"]["accounts"];
    for account in ["tsdb", "statsd", "logs", "other"] {
        assert!(accounts[account].as_u64().is_some_and(|b| b > 256 << 10), "account {account}: {accounts}");
    }
    let live: u64 = accounts.as_object().expect("memory.accounts").values().filter_map(serde_json::Value::as_u64).sum();
    let committed = allocators["mimalloc_committed"].as_u64().unwrap_or(0);
    assert!(live <= committed, "{live} live bytes counted, {committed} committed: {accounts}");
    eprintln!("soak: peak {} MiB of 256, {acknowledged} acknowledged, {refused} refused, memory {}", peak >> 20, status["memory"]);
}
