//! Differential syslog parsing against rsyslog (Debian's rsyslogd, the syslog
//! daemon most boxes run): the same frames go to a real rsyslogd and to the
//! appliance, over UDP and over TCP; rsyslog writes what it parsed as JSON
//! (timestamp, hostname, app-name, procid, pri, msg) and every field must
//! agree with the stored event.

use std::collections::HashMap;
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::harness::{Appliance, Options, eventually, free_port};

/// Frames covering both RFCs and the variants in the wild; `{K}` becomes a
/// per-frame marker inside the message so the two sides can be matched.
const FRAMES: &[&str] = &[
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick {K}",
    "<13>Feb  5 17:32:18 10.0.0.99 myapp[1234]: Use the BFG! {K}",
    "<86>Nov  3 08:01:02 web-01 sshd[4721]: Accepted publickey for deploy from 10.1.2.3 port 52144 ssh2 {K}",
    "<191>Jan 15 23:59:59 host-9 cron[77]: (root) CMD (run-parts /etc/cron.hourly) {K}",
    "<0>Mar  1 00:00:00 kernel-host kernel: panic {K}",
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"] An application event log entry {K}",
    "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - It's time to make the do-nuts. {K}",
    "<14>1 2024-06-01T12:00:00.123456+02:00 app-host billing 42 ORDER - order created id=9 {K}",
    "<13>1 2024-06-01T12:00:00Z h - - - - just a message {K}",
    "<78>1 2024-06-01T12:00:00.5Z cron.example.org CRON 999 - [meta sequenceId=\"7\"][origin ip=\"10.0.0.1\"] job done {K}",
];

/// A real rsyslogd listening on free UDP and TCP ports, writing JSON lines.
struct Rsyslog {
    child: Child,
    out: std::path::PathBuf,
    udp: u16,
    tcp: u16,
    _dir: tempfile::TempDir,
}

impl Rsyslog {
    fn start() -> Rsyslog {
        let dir = tempfile::tempdir().expect("temp dir");
        let (udp, tcp) = (free_port(), free_port());
        let out = dir.path().join("out.json");
        let conf = dir.path().join("rsyslog.conf");
        std::fs::write(
            &conf,
            format!(
                r#"global(workDirectory="{work}")
module(load="imudp")
module(load="imtcp")
template(name="j" type="list") {{
  constant(value="{{\"ts\":\"") property(name="timereported" dateFormat="rfc3339" format="json")
  constant(value="\",\"host\":\"") property(name="hostname" format="json")
  constant(value="\",\"app\":\"") property(name="app-name" format="json")
  constant(value="\",\"procid\":\"") property(name="procid" format="json")
  constant(value="\",\"pri\":\"") property(name="pri")
  constant(value="\",\"msg\":\"") property(name="msg" format="json")
  constant(value="\"}}\n")
}}
ruleset(name="out") {{ action(type="omfile" file="{out}" template="j") }}
input(type="imudp" address="127.0.0.1" port="{udp}" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="{tcp}" ruleset="out")
"#,
                work = dir.path().display(),
                out = out.display(),
            ),
        )
        .expect("write rsyslog.conf");
        // Debian puts it in /usr/sbin, which a non-login PATH may lack.
        let bin = if std::path::Path::new("/usr/sbin/rsyslogd").exists() { "/usr/sbin/rsyslogd" } else { "rsyslogd" };
        let child = Command::new(bin)
            .arg("-n")
            .arg("-f")
            .arg(&conf)
            .arg("-i")
            .arg(dir.path().join("pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run rsyslogd (tests/run installs rsyslog)");
        eventually(Duration::from_secs(10), "rsyslogd listening", || std::net::TcpStream::connect(("127.0.0.1", tcp)).ok());
        Rsyslog { child, out, udp, tcp, _dir: dir }
    }

    fn parsed(&self) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }
}

impl Drop for Rsyslog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn marker(transport: &str, i: usize) -> String {
    format!("case{transport}{i}")
}

#[test]
fn syslog_frames_parse_as_rsyslog_parses_them() {
    let rsyslog = Rsyslog::start();
    let app = Appliance::start_with(Options::default().config("[logs]\ncommit_interval = \"200ms\"\nretention = \"36500d\"\n"));
    let mut tcp_ours = app.tcp("syslog_tcp");
    let mut tcp_theirs = std::net::TcpStream::connect(("127.0.0.1", rsyslog.tcp)).expect("connect rsyslog");
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp socket");
    for (i, frame) in FRAMES.iter().enumerate() {
        let u = frame.replace("{K}", &marker("u", i));
        udp.send_to(u.as_bytes(), app.addr("syslog_udp")).unwrap();
        udp.send_to(u.as_bytes(), ("127.0.0.1", rsyslog.udp)).unwrap();
        // TCP: octet counting (RFC 6587), which both take.
        let t = frame.replace("{K}", &marker("t", i));
        let framed = format!("{} {t}", t.len());
        tcp_ours.write_all(framed.as_bytes()).unwrap();
        tcp_theirs.write_all(framed.as_bytes()).unwrap();
    }
    drop(tcp_ours);
    drop(tcp_theirs);
    let n = FRAMES.len() * 2;
    let theirs = eventually(Duration::from_secs(20), "rsyslog wrote every frame", || {
        let p = rsyslog.parsed();
        (p.len() == n).then_some(p)
    });
    let ours: HashMap<String, Value> = eventually(Duration::from_secs(20), "every frame searchable", || {
        let reply = app.get("/api/logs/search?q=*&from=0&limit=1000");
        let hits = reply.json()["hits"].as_array().cloned().unwrap_or_default();
        (hits.len() == n).then_some(hits)
    })
    .into_iter()
    .map(|h| (h["message"].as_str().unwrap_or("").rsplit(' ').next().unwrap_or("").to_string(), h))
    .collect();
    let mut differences = Vec::new();
    for t in &theirs {
        let msg = t["msg"].as_str().unwrap_or("");
        let key = msg.rsplit(' ').next().unwrap_or("").to_string();
        let Some(e) = ours.get(&key) else {
            differences.push(format!("{key}: not stored"));
            continue;
        };
        let nil = |s: &str| if s == "-" || s.is_empty() { None } else { Some(s.to_string()) };
        let their_ts = instantops::logs::time::parse_rfc3339(t["ts"].as_str().unwrap_or("")).expect("rsyslog rfc3339");
        let our_ts = instantops::logs::time::parse_rfc3339(e["@timestamp"].as_str().unwrap_or("")).expect("our @timestamp");
        let checks = [
            ("timestamp", Some(their_ts.to_string()), Some(our_ts.to_string())),
            ("host", nil(t["host"].as_str().unwrap_or("")), e["logsource"].as_str().map(String::from)),
            ("app", nil(t["app"].as_str().unwrap_or("")), e["program"].as_str().map(String::from)),
            ("procid", nil(t["procid"].as_str().unwrap_or("")), e["pid"].as_str().map(String::from)),
            ("pri", nil(t["pri"].as_str().unwrap_or("")), e["priority"].as_u64().map(|p| p.to_string())),
            // rsyslog keeps the space after a 3164 tag's colon in msg.
            ("msg", Some(msg.trim_start().to_string()), e["message"].as_str().map(String::from)),
        ];
        for (field, want, got) in checks {
            if want != got {
                differences.push(format!("{key} {field}: rsyslog {want:?}, instantops {got:?}"));
            }
        }
    }
    assert!(differences.is_empty(), "{} differences:\n{}", differences.len(), differences.join("\n"));
}
