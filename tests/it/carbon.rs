//! Carbon ingest end to end: real sockets, real clients (graphyte, Python's
//! pickle), then the stopped appliance's store read back from disk.

use std::io::Write;
use std::time::Duration;

use crate::harness::{Appliance, Options, eventually, now, open_store, python};

/// Polls /api/status until `key` reaches `want`.
fn wait_counter(app: &Appliance, key: &str, want: f64) {
    eventually(Duration::from_secs(20), key, || (app.counter(key) >= want).then_some(()));
}

/// Stops the appliance in order and returns its store.
fn stop(mut app: Appliance) -> (Appliance, instantops::tsdb::Store) {
    let status = app.terminate(Duration::from_secs(10)).expect("exits within 10 s");
    assert!(status.success(), "{}", app.stderr());
    let store = open_store(&app.data_dir());
    (app, store)
}

/// The value stored in the slot holding `ts`, from the finest archive.
fn value_at(store: &instantops::tsdb::Store, name: &str, ts: i64) -> Option<f64> {
    let now = now();
    // `from` is exclusive; a minute back still selects the finest archive.
    let f = store.fetch(name, ts - 60, ts, now as u32).expect("fetch")?;
    let i = (ts - f.start).div_euclid(f.step);
    f.values.get(usize::try_from(i).ok()?).copied().flatten()
}

#[test]
fn plaintext_tcp_keeps_good_lines_around_bad_ones() {
    let app = Appliance::start();
    let t = now() - 60;
    let text = format!(
        "good.one 1 {t}\nbad line\ngood.two\t2.5\t{t}\r\na.b x {t}\ngood.three  -3e1  {t}\na.b nan {t}\n;b=1 1 {t}\ngood.tagged;z=1;b=2 4 {t}\ngood.last 5 {t}"
    );
    app.send_tcp("carbon_tcp", text.as_bytes());
    wait_counter(&app, "instantops_received_total{input=\"carbon_tcp\"}", 5.0);
    assert_eq!(app.counter("instantops_bad_lines_total{input=\"carbon_tcp\"}"), 3.0, "bad line, x value, bad tag");
    assert_eq!(app.status()["bad_lines_seen"], 3.0);
    let (_app, store) = stop(app);
    assert_eq!(value_at(&store, "good.one", t), Some(1.0));
    assert_eq!(value_at(&store, "good.two", t), Some(2.5));
    assert_eq!(value_at(&store, "good.three", t), Some(-30.0));
    assert_eq!(value_at(&store, "good.tagged;b=2;z=1", t), Some(4.0), "tags are sorted into one canonical series");
    assert_eq!(value_at(&store, "good.last", t), Some(5.0), "a final line without a newline counts");
    assert_eq!(store.series_with_tag("z", "1").expect("tag index").len(), 1);
}

#[test]
fn udp_datagram_with_three_crlf_lines() {
    let app = Appliance::start();
    let t = now() - 30;
    app.send_udp("carbon_udp", format!("u.a 1 {t}\r\nu.b 2 {t}\r\nu.c 3 {t}\r\n").as_bytes());
    wait_counter(&app, "instantops_received_total{input=\"carbon_udp\"}", 3.0);
    let (_app, store) = stop(app);
    for (name, v) in [("u.a", 1.0), ("u.b", 2.0), ("u.c", 3.0)] {
        assert_eq!(value_at(&store, name, t), Some(v), "{name}");
    }
}

#[test]
fn graphyte_client_points_are_stored() {
    let app = Appliance::start();
    let addr = app.addr("carbon_tcp");
    let t = now() - 20;
    python(
        "import sys, graphyte\n\
         s = graphyte.Sender(sys.argv[1], port=int(sys.argv[2]), prefix='app')\n\
         for i in range(50): s.send('requests.%d' % i, i * 1.5, timestamp=int(sys.argv[3]))\n\
         s.send('latency', 12.25, timestamp=int(sys.argv[3]), tags={'host': 'web1', 'dc': 'x'})\n",
        &[&addr.ip().to_string(), &addr.port().to_string(), &t.to_string()],
    );
    wait_counter(&app, "instantops_received_total{input=\"carbon_tcp\"}", 51.0);
    let (_app, store) = stop(app);
    assert_eq!(value_at(&store, "app.requests.7", t), Some(10.5));
    assert_eq!(value_at(&store, "app.latency;dc=x;host=web1", t), Some(12.25));
}

/// Frames a pickled payload as carbon's pickle receiver expects.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = (payload.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(payload);
    out
}

fn pickle(expr: &str, protocol: u8) -> Vec<u8> {
    let hex = python(&format!("import pickle, os, sys; sys.stdout.write(pickle.dumps({expr}, protocol={protocol}).hex())"), &[]);
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn pickle_frames_of_every_protocol_with_a_bad_one_between() {
    let app = Appliance::start();
    let t = now() - 40;
    let mut conn = app.tcp("carbon_pickle");
    conn.write_all(&frame(&pickle(&format!("[('p.zero', ({t}, '1.5')), ('p.skip', 1)]"), 0))).expect("write");
    // A payload with a global is refused, and the connection stays usable.
    conn.write_all(&frame(&pickle(&format!("[('p.evil', ({t}, os.getpid))]"), 2))).expect("write");
    conn.write_all(&frame(&pickle(&format!("[('p.two', ({t}, 2.0))]"), 2))).expect("write");
    conn.write_all(&frame(&pickle(&format!("[('p.five', ({t}, 5))]"), 5))).expect("write");
    drop(conn);
    wait_counter(&app, "instantops_received_total{input=\"carbon_pickle\"}", 3.0);
    assert_eq!(app.counter("instantops_bad_lines_total{input=\"carbon_pickle\"}"), 2.0, "one skipped element, one refused payload");
    let (_app, store) = stop(app);
    assert_eq!(value_at(&store, "p.zero", t), Some(1.5));
    assert_eq!(value_at(&store, "p.two", t), Some(2.0));
    assert_eq!(value_at(&store, "p.five", t), Some(5.0));
    assert_eq!(value_at(&store, "p.evil", t), None);
}

#[test]
fn oversized_pickle_frame_closes_only_that_connection() {
    let app = Appliance::start_with(crate::harness::Options::default().env("INSTANTOPS_CARBON__MAX_PICKLE_FRAME", "4KiB"));
    let mut conn = app.tcp("carbon_pickle");
    conn.write_all(&(1u32 << 20).to_be_bytes()).expect("write");
    let mut buf = [0u8; 1];
    // EOF or a reset means closed; a read timeout (the harness sets 10 s)
    // would mean the server kept the connection open.
    match std::io::Read::read(&mut conn, &mut buf) {
        Ok(0) => {}
        Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted) => {}
        other => panic!("the server should have closed the connection, got {other:?}"),
    }
    wait_counter(&app, "instantops_bad_lines_total{input=\"carbon_pickle\"}", 1.0);
    let t = now() - 10;
    app.send_tcp("carbon_pickle", &frame(&pickle(&format!("[('p.after', ({t}, 7))]"), 2)));
    wait_counter(&app, "instantops_received_total{input=\"carbon_pickle\"}", 1.0);
}

#[test]
fn a_flood_of_bad_lines_neither_loses_good_lines_nor_blocks_other_clients() {
    let app = Appliance::start_with(crate::harness::Options::default().env("INSTANTOPS_CARBON__MAX_LINE", "1KiB"));
    let t = now() - 50;
    let mut flood = String::new();
    for i in 0..20_000 {
        match i % 200 {
            0 => flood.push_str(&format!("flood.good.{} {} {t}\n", i / 200, i)),
            1 => flood.push_str(&format!("too.long {} {t}\n", "9".repeat(2000))),
            _ => flood.push_str("this is not a carbon line at all\n"),
        }
    }
    let flooder = {
        let addr = app.addr("carbon_tcp");
        std::thread::spawn(move || {
            let mut s = std::net::TcpStream::connect(addr).expect("connect");
            s.write_all(flood.as_bytes()).expect("write");
        })
    };
    // Another client is served while the flood goes on.
    app.send_tcp("carbon_tcp", format!("other.client 42 {t}\n").as_bytes());
    flooder.join().expect("flooder");
    wait_counter(&app, "instantops_received_total{input=\"carbon_tcp\"}", 101.0);
    wait_counter(&app, "instantops_bad_lines_total{input=\"carbon_tcp\"}", 19_800.0);
    assert_eq!(app.counter("instantops_dropped_total{input=\"carbon_tcp\",reason=\"too_long\"}"), 100.0);
    let (app, store) = stop(app);
    assert_eq!(value_at(&store, "other.client", t), Some(42.0));
    for k in 0..100 {
        assert_eq!(value_at(&store, &format!("flood.good.{k}"), t), Some((k * 200) as f64), "flood.good.{k}");
    }
    let warnings = app.stderr().matches("bad input skipped").count();
    assert!(warnings <= 30, "bad lines are logged at most once a second, got {warnings}");
}

#[test]
fn flushed_points_survive_kill_9() {
    let mut app = Appliance::start();
    let t = now() - 100;
    let mut text = String::new();
    for i in 0..1000 {
        text.push_str(&format!("k9.s{} {i} {}\n", i % 10, t + (i / 10) * 10 - 1000));
    }
    app.send_tcp("carbon_tcp", text.as_bytes());
    wait_counter(&app, "instantops_received_total{input=\"carbon_tcp\"}", 1000.0);
    // Once a flush has run after the points arrived, they are in RocksDB's WAL.
    let flushes = app.counter("instantops_tsdb_flushes_total");
    wait_counter(&app, "instantops_tsdb_flushes_total", flushes + 2.0);
    app.kill9();
    let store = open_store(&app.data_dir());
    for i in (0..1000).step_by(37) {
        let ts = t + (i / 10) * 10 - 1000;
        assert_eq!(value_at(&store, &format!("k9.s{}", i % 10), ts), Some(i as f64), "point {i}");
    }
}

#[test]
fn an_orderly_stop_right_after_receipt_loses_nothing() {
    let app = Appliance::start();
    let t = now() - 10;
    let text: String = (0..500).map(|i| format!("stop.s{i} {i} {t}\n")).collect();
    app.send_tcp("carbon_tcp", text.as_bytes());
    wait_counter(&app, "instantops_received_total{input=\"carbon_tcp\"}", 500.0);
    let (_app, store) = stop(app);
    for i in 0..500 {
        assert_eq!(value_at(&store, &format!("stop.s{i}"), t), Some(i as f64));
    }
}

#[test]
fn a_prefix_series_limit_refuses_and_counts_new_series_and_keeps_the_rest() {
    let config = "[[carbon.series_limits]]\nprefix = \"noisy.\"\nmax_series = 3\n";
    let app = Appliance::start_with(Options::default().config(config));
    let t = now() - 60;
    let lines: String = (0..10).map(|i| format!("noisy.s{i} {i} {t}\nquiet.s{i} {i} {t}\n")).collect();
    app.send_tcp("carbon_tcp", lines.as_bytes());
    wait_counter(&app, "instantops_received_total{input=\"carbon_tcp\"}", 13.0);
    assert_eq!(app.counter("instantops_dropped_total{input=\"carbon_tcp\",reason=\"series_limit\"}"), 7.0);
    let cardinality = app.get("/api/cardinality").json();
    assert_eq!(cardinality["limits"][0]["prefix"], "noisy.");
    assert_eq!(cardinality["limits"][0]["series"], 3);
    assert_eq!(cardinality["limits"][0]["refused_points"], 7);
    let (_app, store) = stop(app);
    assert_eq!(value_at(&store, "noisy.s2", t), Some(2.0));
    assert_eq!(value_at(&store, "noisy.s3", t), None, "refused");
    assert_eq!(value_at(&store, "quiet.s9", t), Some(9.0), "other prefixes are not limited");
}
