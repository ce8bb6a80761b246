//! Differential test of statsd ingest against real Etsy statsd 0.9.0 (node,
//! installed by tests/run): the same datagrams go to Etsy statsd, whose
//! graphite backend writes to a line capture here, and to instantops, whose
//! flushes are read back from its store after it stops. For every flush
//! interval that carried a batch, every flushed name and value must match,
//! bit for bit: counters and rates, every timer field with percentiles
//! `[90, 99.9, -10]` and histogram bins, gauges with deltas, sets, tags, key
//! sanitizing, bad lines, idle intervals, statsd's own counters and numStats,
//! in both namespaces and with deleteIdleStats.
//!
//! Left out of the comparison: the timing-dependent internal metrics
//! (`graphiteStats.*`, `processing_time`, `timestamp_lag`). Left out of the
//! input: what instantops reads differently on purpose (DogStatsD packing,
//! `@0`, events and service checks, `h` as a timer; wire.rs lists them);
//! instantops runs with `h_as_timer = false` here so `h` stays a counter.
//!
//! Flushes of the two processes are not in phase, so each batch is sent at a
//! moment at least 0.6 s away from either one's next flush, and belongs to the
//! first flush of each after it.

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::harness::{Appliance, Options, eventually, open_store};

/// Both processes flush this often; long enough for a batch to fit well
/// inside one interval, short enough for the test to take ~20 s.
const INTERVAL_S: f64 = 3.0;
/// A batch is sent at least this far from either process's next flush.
const MARGIN_S: f64 = 0.6;

fn epoch() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs_f64()
}

/// Where tests/run installed `npm install statsd@0.9.0`.
fn oracle_dir() -> PathBuf {
    let dir = std::env::var_os("IOPS_STATSD_ORACLE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| home.join(".cache/instantops-target"));
        target.join("statsd-oracle")
    });
    let stats_js = dir.join("node_modules/statsd/stats.js");
    assert!(stats_js.exists(), "no Etsy statsd at {} (tests/run installs it; or set IOPS_STATSD_ORACLE)", stats_js.display());
    dir
}

/// One flush as a graphite backend sent it: when it arrived, and its lines.
type Flush = (f64, Vec<(String, f64, i64)>);

/// Etsy statsd with a graphite line capture.
struct Etsy {
    child: Child,
    udp: std::net::SocketAddr,
    flushes: Arc<Mutex<Vec<Flush>>>,
}

impl Drop for Etsy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_etsy(legacy: bool, delete_idle: bool, dir: &std::path::Path) -> Etsy {
    let capture = TcpListener::bind("127.0.0.1:0").expect("capture bind");
    let capture_port = capture.local_addr().expect("addr").port();
    let flushes: Arc<Mutex<Vec<Flush>>> = Arc::default();
    let sink = flushes.clone();
    std::thread::spawn(move || {
        for stream in capture.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut text = String::new();
            let _ = stream.read_to_string(&mut text);
            let lines = text
                .lines()
                .filter_map(|l| {
                    let mut f = l.split(' ');
                    Some((f.next()?.to_string(), f.next()?.parse().ok()?, f.next()?.parse().ok()?))
                })
                .collect();
            sink.lock().expect("capture lock").push((epoch(), lines));
        }
    });
    let udp_port = UdpSocket::bind("127.0.0.1:0").expect("udp").local_addr().expect("addr").port();
    let mgmt_port = crate::harness::free_port();
    let config = format!(
        "{{ graphitePort: {capture_port}, graphiteHost: '127.0.0.1', address: '127.0.0.1', port: {udp_port},
           mgmt_address: '127.0.0.1', mgmt_port: {mgmt_port}, flushInterval: {}, backends: ['./backends/graphite'],
           percentThreshold: [90, 99.9, -10], histogram: [{{ metric: 'hist', bins: [100, 250, 'inf'] }}],
           deleteIdleStats: {delete_idle}, graphite: {{ legacyNamespace: {legacy} }} }}",
        (INTERVAL_S * 1000.0) as u64
    );
    let path = dir.join(format!("etsy-{legacy}-{delete_idle}.js"));
    std::fs::write(&path, config).expect("write etsy config");
    let statsd = oracle_dir().join("node_modules/statsd");
    let child = Command::new("node")
        .arg("stats.js")
        .arg(&path)
        .current_dir(&statsd)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start node stats.js (is node installed?)");
    Etsy { child, udp: format!("127.0.0.1:{udp_port}").parse().expect("addr"), flushes }
}

fn instantops(legacy: bool, delete_idle: bool) -> Appliance {
    Appliance::start_with(Options::default().config(&format!(
        "[statsd]\nflush_interval = \"{}ms\"\npercent_thresholds = [90, 99.9, -10]\nlegacy_namespace = {legacy}\n\
         delete_idle_stats = {delete_idle}\nh_as_timer = false\n\
         [[statsd.histogram]]\nmetric = \"hist\"\nbins = [100, 250, \"inf\"]\n\
         [[carbon.schemas]]\nname = \"all\"\npattern = \".*\"\nretentions = \"1s:1h\"\n",
        (INTERVAL_S * 1000.0) as u64
    )))
}

/// The epoch seconds of instantops' flushes, watched through its flush counter.
fn watch_flushes(app: &Appliance, times: &Arc<Mutex<Vec<f64>>>, stop: &AtomicBool) {
    let mut seen = 0.0;
    while !stop.load(Ordering::Relaxed) {
        let n = app.counter("instantops_statsd_flushes_total");
        if n > seen {
            seen = n;
            times.lock().expect("lock").push(epoch());
        }
        std::thread::sleep(Duration::from_millis(15));
    }
}

/// The batches of one scenario: each is a list of datagrams.
fn batches() -> Vec<Vec<String>> {
    let mut first: Vec<String> = [
        "api.hits:1|c",
        "api.hits:2|c|@0.5",
        "multi:1|c:2|c:3|ms",
        "neg:-1|c",
        "hexc:0x10|c",
        "expo:1e2|c",
        "lat:100|ms\nlat:200|ms\nlat:300|ms|@0.5",
        "temp:50|g\ntemp:+5|g\ntemp:-15|g",
        "g2:0|g\ng2:-10|g",
        "g3:-10|g",
        "grate:7|g|@0.5",
        "users:alice|s\nusers:bob|s\nusers:alice|s",
        "empty:|s",
        "fo/o;t=v:1|c",
        "b ar:1|c",
        "foo+bar:1|c",
        "tagged:1|c|#env:prod,region:eu,solo",
        "tagged.timer:5|ms|#env:prod",
        "hist.latency:50|ms\nhist.latency:100|ms\nhist.latency:249.5|ms\nhist.latency:999|ms",
        "samp:10|ms|@0.1",
        "h.type:5|h\nx.type:5|x",
        "a\na:1\na:abc|c\na:|g\na:-1|ms\na:1|ms|@x\na:1|c|@-0.5\na:1|c|0.5\na:1|c|",
        "one.timer:7|ms",
        "two.timer:1|ms\ntwo.timer:2|ms",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    // A timer with enough values for every percentile to differ.
    let values: Vec<String> = (0..37).map(|i| format!("resp:{}|ms", (i * 7919) % 401 + i)).collect();
    first.push(values[..20].join("\n"));
    first.push(values[20..].join("\n"));
    let third = ["temp:+1|g", "api.hits:3|c", "lat:42|ms", "users:carol|s", "g3:+5|g", "resp:1.5|ms\nresp:0.25|ms"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    vec![first, Vec::new(), third]
}

/// Etsy's name as instantops stores it: a bare tag as `tag=true`, tags in
/// carbon's order.
fn canonical(name: &str) -> String {
    let mut parts = name.split(';');
    let base = parts.next().unwrap_or_default();
    let tags: Vec<String> = parts.map(|t| if t.contains('=') { t.to_string() } else { format!("{t}=true") }).collect();
    let joined = std::iter::once(base.to_string()).chain(tags).collect::<Vec<_>>().join(";");
    instantops::carbon::wire::canonical_name(&joined).map(|c| c.into_owned()).unwrap_or(joined)
}

fn compared(name: &str) -> bool {
    !name.contains("graphiteStats") && !name.contains("processing_time") && !name.contains("timestamp_lag")
}

fn scenario(legacy: bool, delete_idle: bool) {
    let dir = tempfile::tempdir().expect("temp dir");
    let etsy = start_etsy(legacy, delete_idle, dir.path());
    let mut app = instantops(legacy, delete_idle);
    let ours = app.addr("statsd_udp");
    let flush_times: Arc<Mutex<Vec<f64>>> = Arc::default();
    let stop_watching = AtomicBool::new(false);
    let sent_at = std::thread::scope(|scope| {
        scope.spawn(|| watch_flushes(&app, &flush_times, &stop_watching));
        // Two flushes of each, so both phases are known.
        eventually(Duration::from_secs(30), "two Etsy statsd flushes", || (etsy.flushes.lock().expect("lock").len() >= 2).then_some(()));
        eventually(Duration::from_secs(30), "two instantops flushes", || (flush_times.lock().expect("lock").len() >= 2).then_some(()));
        let socket = UdpSocket::bind("127.0.0.1:0").expect("udp");
        let mut sent_at = Vec::new();
        for batch in batches() {
            // The next moment at least MARGIN_S past the latest flush of each
            // and MARGIN_S before the next one.
            let last = |times: &[f64]| times.last().copied().unwrap_or(0.0);
            let when = eventually(Duration::from_secs(30), "a send window", || {
                let now = epoch();
                let e = last(&etsy.flushes.lock().expect("lock").iter().map(|f| f.0).collect::<Vec<_>>());
                let i = last(&flush_times.lock().expect("lock"));
                let ok = |t: f64| {
                    let phase = (now - t).rem_euclid(INTERVAL_S);
                    phase > MARGIN_S && phase < INTERVAL_S - MARGIN_S
                };
                (ok(e) && ok(i)).then_some(now)
            });
            for datagram in &batch {
                socket.send_to(datagram.as_bytes(), etsy.udp).expect("send to etsy");
                socket.send_to(datagram.as_bytes(), ours).expect("send to instantops");
            }
            sent_at.push(when);
            // Until both have flushed after it.
            eventually(Duration::from_secs(30), "both flushes after a batch", || {
                let e = etsy.flushes.lock().expect("lock").iter().any(|f| f.0 > when + 0.05);
                let i = flush_times.lock().expect("lock").iter().any(|&t| t > when + 0.05);
                (e && i).then_some(())
            });
        }
        stop_watching.store(true, Ordering::Relaxed);
        sent_at
    });
    app.terminate(Duration::from_secs(10)).expect("instantops stops");
    let etsy_flushes = etsy.flushes.lock().expect("lock").clone();
    drop(etsy);

    let store = open_store(&app.data_dir());
    let names = store.names_with_prefix("", 100_000).expect("names");
    let now = crate::harness::now() as u32;
    let mut report = Vec::new();
    for (k, when) in sent_at.iter().enumerate() {
        let (_, lines) = etsy_flushes.iter().find(|f| f.0 > when + 0.05).expect("an Etsy flush after the batch");
        let want: BTreeMap<String, f64> = lines.iter().filter(|l| compared(&l.0)).map(|(n, v, _)| (canonical(n), *v)).collect();
        // Our flush after the batch: the stored flush timestamp nearest to
        // the first flush seen after it (a flush is stamped with its time, rounded).
        let seen = flush_times.lock().expect("lock").iter().copied().find(|&t| t > when + 0.05).expect("a flush seen after the batch");
        let ts = names
            .iter()
            .filter(|n| n.ends_with("numStats"))
            .filter_map(|n| {
                store.fetch(n, *when as i64 - 2 * INTERVAL_S as i64, *when as i64 + 2 * INTERVAL_S as i64 + 2, now).ok().flatten()
            })
            .flat_map(|f| {
                f.values.iter().enumerate().filter(|(_, v)| v.is_some()).map(move |(i, _)| f.start + f.step * i as i64).collect::<Vec<_>>()
            })
            .min_by(|a, b| (*a as f64 - seen).abs().total_cmp(&(*b as f64 - seen).abs()))
            .expect("an instantops flush after the batch");
        let got: BTreeMap<String, f64> = names
            .iter()
            .filter(|n| compared(n))
            .filter_map(|n| {
                let f = store.fetch(n, ts - 1, ts, now).ok().flatten()?;
                Some((n.clone(), f.values.first().copied().flatten()?))
            })
            .collect();
        for (name, v) in &want {
            match got.get(name) {
                Some(g) if g.to_bits() == v.to_bits() || (g - v).abs() <= 1e-12 * v.abs() => {}
                Some(g) => report.push(format!("batch {k}: {name}: Etsy {v}, instantops {g}")),
                None => report.push(format!("batch {k}: {name}: Etsy {v}, instantops nothing")),
            }
        }
        for (name, g) in &got {
            if !want.contains_key(name) {
                report.push(format!("batch {k}: {name}: instantops {g}, Etsy nothing"));
            }
        }
        if k == 0 {
            assert!(want.len() > 100, "batch {k}: Etsy flushed only {want:?}");
        }
    }
    assert!(report.is_empty(), "legacy={legacy} delete_idle={delete_idle}: {} divergences:\n{}", report.len(), report.join("\n"));
}

#[test]
fn legacy_namespace_matches_etsy_statsd() {
    scenario(true, false);
}

#[test]
fn new_namespace_with_delete_idle_stats_matches_etsy_statsd() {
    scenario(false, true);
}
