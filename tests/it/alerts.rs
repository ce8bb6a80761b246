//! Alerting end to end over real sockets: a statsd counter (the Python
//! `statsd` client) crossing a threshold and recovering, with a local
//! webhook receiver counting notifications; email through a real SMTP server
//! (aiosmtpd, with STARTTLS and AUTH); a log check; a heartbeat; silencing;
//! retries with backoff; and config-declared checks and history across a
//! restart.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Appliance, Options, client_python, eventually, free_port, now};

/// A local HTTP receiver: records each POSTed JSON body; answers 500 to the
/// first `fail_first` requests, 200 after.
struct Receiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<Value>>>,
    /// (request line, authorization header) of each recorded request.
    heads: Arc<Mutex<Vec<(String, String)>>>,
}

impl Receiver {
    fn start(fail_first: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let got = Arc::new(Mutex::new(Vec::new()));
        let seen = got.clone();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let seen_heads = heads.clone();
        std::thread::spawn(move || {
            let mut requests = 0;
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut length = 0;
                let (mut first, mut auth) = (String::new(), String::new());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        break;
                    }
                    if line == "\r\n" {
                        break;
                    }
                    if first.is_empty() {
                        first = line.trim().to_string();
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("authorization:") {
                        auth = line["authorization:".len()..].trim().to_string();
                    }
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                requests += 1;
                let status = if requests <= fail_first { "500 Internal Server Error" } else { "200 OK" };
                if requests > fail_first {
                    seen.lock().expect("lock").push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    seen_heads.lock().expect("lock").push((first, auth));
                }
                let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        Receiver { addr, got, heads }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn count(&self) -> usize {
        self.got.lock().expect("lock").len()
    }

    fn bodies(&self) -> Vec<Value> {
        self.got.lock().expect("lock").clone()
    }
}

/// Evaluates every second; 1 s series for the names the tests use.
fn options(extra: &str) -> Options {
    options_with("", extra)
}

/// [`options`] with more keys in `[alerts]`.
fn options_with(alerts: &str, extra: &str) -> Options {
    Options::default().config(&format!(
        "[statsd]\nflush_interval = \"1s\"\n\n[alerts]\ninterval = \"1s\"\nretries = 4\n{alerts}\n[logs]\ncommit_interval = \"200ms\"\n\n\
         [[carbon.schemas]]\nname = \"fast\"\npattern = \"^(stats|hb|mail|quiet)\"\nretentions = \"1s:1h\"\n{extra}"
    ))
}

fn create(app: &Appliance, check: Value) -> String {
    let reply = app.request("POST", "/api/checks", &[("content-type", "application/json")], Some(check.to_string().as_bytes()));
    assert_eq!(reply.status, 201, "{}", reply.body);
    let id = reply.json()["id"].as_str().expect("id").to_string();
    assert!(reply.headers.iter().any(|(k, v)| k == "location" && v == &format!("/api/checks/{id}")), "{:?}", reply.headers);
    id
}

fn check(app: &Appliance, id: &str) -> Value {
    let reply = app.get(&format!("/api/checks/{id}"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// Waits until the check has been evaluated `n` more times.
fn runs(app: &Appliance, id: &str, n: i64) {
    let start = check(app, id)["lastCheck"].as_i64().unwrap_or(0);
    let mut seen = start;
    let mut count = 0;
    eventually(Duration::from_secs(30), &format!("{n} more runs of check {id}"), || {
        let last = check(app, id)["lastCheck"].as_i64().unwrap_or(0);
        if last != seen {
            seen = last;
            count += 1;
        }
        (count >= n).then_some(())
    });
}

fn carbon(app: &Appliance, line: &str) {
    app.send_tcp("carbon_tcp", format!("{line} {}\n", now()).as_bytes());
}

/// The Python statsd client incrementing `name` by 10 every 0.1 s, for at most 60 s.
fn statsd_loop(app: &Appliance, name: &str) -> Child {
    let addr = app.addr("statsd_udp");
    Command::new(client_python())
        .arg("-c")
        .arg("import statsd, sys, time\nc = statsd.StatsClient(sys.argv[1], int(sys.argv[2]))\nfor _ in range(600):\n    c.incr(sys.argv[3], 10)\n    time.sleep(0.1)\n")
        .args([&addr.ip().to_string(), &addr.port().to_string(), name])
        .stdin(Stdio::null())
        .spawn()
        .expect("python statsd client")
}

#[test]
fn a_statsd_counter_crossing_the_threshold_notifies_once_and_recovery_once() {
    let app = Appliance::start_with(options(""));
    let hook = Receiver::start(0);
    let id = create(
        &app,
        json!({"name": "app errors", "target": "stats_counts.app.errors", "from": "-10s", "until": "now", "warn": "5", "error": "10",
               "subscriptions": [{"type": "HTTP", "target": hook.url()}]}),
    );
    let listed = app.get("/api/checks").json();
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["values"][0]["warn"], "5");
    let mut sender = statsd_loop(&app, "app.errors");
    eventually(Duration::from_secs(30), "the ERROR notification", || (hook.count() >= 1).then_some(()));
    let _ = sender.kill();
    let _ = sender.wait();
    eventually(Duration::from_secs(30), "the recovery notification", || (hook.count() >= 2).then_some(()));
    runs(&app, &id, 3);
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 2, "exactly one notification each way: {bodies:?}");
    let (first, second) = (&bodies[0], &bodies[1]);
    assert_eq!(first["alerts"][0]["toType"], "ERROR", "{first}");
    assert_eq!(first["alerts"][0]["target"], "stats_counts.app.errors");
    assert_eq!(first["check"]["name"], "app errors");
    assert!(first["seyrenUrl"].is_string() && first["subscription"]["type"] == "HTTP");
    assert_eq!(second["alerts"][0]["fromType"], "ERROR");
    assert_eq!(second["alerts"][0]["toType"], "OK");
    assert_eq!(check(&app, &id)["state"], "OK");
    let history = app.get(&format!("/api/checks/{id}/alerts")).json();
    let transitions: Vec<(String, String)> = history["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|a| (a["fromType"].as_str().unwrap_or("").to_string(), a["toType"].as_str().unwrap_or("").to_string()))
        .collect();
    assert_eq!(transitions.first(), Some(&("ERROR".to_string(), "OK".to_string())), "newest first: {transitions:?}");
    assert_eq!(transitions.last(), Some(&("OK".to_string(), "ERROR".to_string())));
    assert!(transitions[1..transitions.len() - 1].iter().all(|t| t.0 == "ERROR" && t.1 == "ERROR"), "{transitions:?}");
    let sent = app.counter("instantops_alert_notifications_sent_total{type=\"HTTP\"}");
    assert_eq!(sent, 2.0);
}

#[test]
fn a_failing_receiver_is_retried_with_backoff_and_counted() {
    let app = Appliance::start_with(options(""));
    let hook = Receiver::start(2);
    create(
        &app,
        json!({"name": "retry", "target": "quiet.x", "from": "-60s", "until": "now", "warn": 1, "error": 2,
                        "subscriptions": [{"type": "HTTP", "target": hook.url()}]}),
    );
    carbon(&app, "quiet.x 5");
    eventually(Duration::from_secs(30), "the notification after two failures", || (hook.count() >= 1).then_some(()));
    assert!(app.counter("instantops_alert_notifications_retried_total{type=\"HTTP\"}") >= 2.0);
    assert_eq!(app.counter("instantops_alert_notifications_sent_total{type=\"HTTP\"}"), 1.0);
}

#[test]
fn log_checks_fire_on_ingested_events_and_carry_some_of_them() {
    let app = Appliance::start_with(options(""));
    let hook = Receiver::start(0);
    let slack = Receiver::start(0);
    create(
        &app,
        json!({"name": "web errors", "kind": "logs", "target": "level:error AND app:web", "from": "-5minutes", "warn": 5, "error": 10,
               "subscriptions": [{"type": "HTTP", "target": hook.url()}, {"type": "SLACK", "target": slack.url()}]}),
    );
    let mut body = String::new();
    for i in 0..12 {
        body.push_str(&format!("{}\n", json!({"level": "error", "app": "web", "message": format!("upstream timeout {i}")})));
        body.push_str(&format!("{}\n", json!({"level": "error", "app": "api", "message": "not this one"})));
    }
    let reply = app.request("POST", "/api/logs", &[], Some(body.as_bytes()));
    assert_eq!(reply.status, 200, "{}", reply.body);
    eventually(Duration::from_secs(30), "the log check's notification", || (hook.count() >= 1 && slack.count() >= 1).then_some(()));
    let n = &hook.bodies()[0];
    let alert = &n["alerts"][0];
    assert_eq!(alert["toType"], "ERROR", "{n}");
    assert_eq!(alert["value"], "12");
    let events = alert["events"].as_array().expect("events");
    assert!(!events.is_empty() && events.len() <= 5);
    assert!(events.iter().all(|e| e["app"] == "web" && e["message"].as_str().unwrap_or("").starts_with("upstream timeout")));
    let text = slack.bodies()[0]["text"].as_str().unwrap_or("").to_string();
    assert!(text.contains("ERROR: web errors") && text.contains("upstream timeout"), "{text}");
}

#[test]
fn a_heartbeat_goes_to_error_when_a_series_stops() {
    let app = Appliance::start_with(options(""));
    let hook = Receiver::start(0);
    carbon(&app, "hb.worker 1");
    eventually(Duration::from_secs(10), "the heartbeat point readable", || {
        let v = app.get("/render?target=hb.worker&from=-1min&format=json").json();
        v[0]["datapoints"].as_array().is_some_and(|d| d.iter().any(|p| !p[0].is_null())).then_some(())
    });
    let id = create(
        &app,
        json!({"name": "worker alive", "kind": "heartbeat", "target": "hb.worker", "from": "-10min", "warn": 3, "error": 5,
                                 "subscriptions": [{"type": "HTTP", "target": hook.url()}]}),
    );
    eventually(Duration::from_secs(30), "the heartbeat ERROR", || {
        hook.bodies().iter().any(|b| b["alerts"].as_array().is_some_and(|a| a.iter().any(|x| x["toType"] == "ERROR"))).then_some(())
    });
    let silence = hook
        .bodies()
        .iter()
        .flat_map(|b| b["alerts"].as_array().cloned().unwrap_or_default())
        .find(|a| a["toType"] == "ERROR")
        .expect("error");
    assert!(silence["value"].as_str().and_then(|v| v.parse::<f64>().ok()).is_some_and(|s| s >= 5.0), "{silence}");
    carbon(&app, "hb.worker 1");
    eventually(Duration::from_secs(30), "the heartbeat recovering", || (check(&app, &id)["state"] == "OK").then_some(()));
}

#[test]
fn a_silenced_check_records_but_sends_nothing() {
    let app = Appliance::start_with(options(""));
    let hook = Receiver::start(0);
    let id = create(
        &app,
        json!({"name": "quiet", "target": "quiet.y", "from": "-60s", "until": "now", "warn": 1, "error": 2,
                                 "subscriptions": [{"type": "HTTP", "target": hook.url()}]}),
    );
    let reply =
        app.request("PUT", &format!("/api/checks/{id}/silence"), &[], Some(br#"{"until": "+1h", "by": "ann", "note": "deploying"}"#));
    assert_eq!(reply.status, 200, "{}", reply.body);
    carbon(&app, "quiet.y 9");
    eventually(Duration::from_secs(30), "the silenced check in ERROR", || (check(&app, &id)["state"] == "ERROR").then_some(()));
    runs(&app, &id, 3);
    assert_eq!(hook.count(), 0, "a silenced check sent {:?}", hook.bodies());
    let alerts = app.get(&format!("/api/checks/{id}/alerts")).json();
    assert!(alerts["total"].as_u64().unwrap_or(0) >= 1, "history is still kept");
    let actions = app.get(&format!("/api/checks/{id}/actions")).json();
    let first = &actions["values"][0];
    assert_eq!(first["by"], "ann");
    assert!(first["action"].as_str().unwrap_or("").starts_with("silence until"), "{first}");
    let noisy = app.get("/api/checks/noisiest").json();
    assert_eq!(noisy["values"][0]["checkId"], id.as_str());
    // The check's graph is /render's PNG over the check's range.
    let image = app.get(&format!("/api/checks/{id}/image"));
    assert_eq!(image.status, 200, "redirected to /render");
    assert_eq!(image.headers.iter().find(|(k, _)| *k == "content-type").map(|(_, v)| v.as_str()), Some("image/png"));
}

/// A private CA and a server certificate for `localhost` signed by it:
/// (CA file, server cert, server key), as a company mail relay has.
fn certificates(dir: &std::path::Path) -> (String, String, String) {
    let p = |name: &str| dir.join(name).display().to_string();
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n").expect("ext file");
    let steps: [Vec<String>; 3] = [
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=instantops test CA", "-keyout"]
            .iter()
            .map(|s| s.to_string())
            .chain([p("ca.key"), "-out".into(), p("ca.pem")])
            .collect(),
        ["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout"]
            .iter()
            .map(|s| s.to_string())
            .chain([p("key.pem"), "-out".into(), p("server.csr")])
            .collect(),
        ["x509", "-req", "-days", "2", "-CAcreateserial", "-in"]
            .iter()
            .map(|s| s.to_string())
            .chain([
                p("server.csr"),
                "-CA".into(),
                p("ca.pem"),
                "-CAkey".into(),
                p("ca.key"),
                "-out".into(),
                p("cert.pem"),
                "-extfile".into(),
                p("ext.cnf"),
            ])
            .collect(),
    ];
    for args in steps {
        let out = Command::new("openssl").args(&args).stdin(Stdio::null()).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (p("ca.pem"), p("cert.pem"), p("key.pem"))
}

const SMTP_SERVER: &str = r#"
import os, ssl, sys, time
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
port, cert, key, out = sys.argv[1:5]
class Handler:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(out, "%d.eml" % len(os.listdir(out)))
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.content)
        os.rename(name + ".tmp", name)
        return "250 OK"
def auth(server, session, envelope, mechanism, data):
    return AuthResult(success=(data.login == b"alerts" and data.password == b"s3cret"))
ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
ctx.load_cert_chain(cert, key)
c = Controller(Handler(), hostname="127.0.0.1", port=int(port), tls_context=ctx, require_starttls=True,
               authenticator=auth, auth_required=True, server_hostname="localhost")
c.start()
print("ready", flush=True)
time.sleep(120)
"#;

#[test]
fn email_goes_through_a_real_smtp_server_with_starttls_and_auth() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = certificates(scratch.path());
    let mail = scratch.path().join("mail");
    std::fs::create_dir_all(&mail).expect("mail dir");
    let port = free_port();
    let mut server = Command::new(client_python())
        .arg("-c")
        .arg(SMTP_SERVER)
        .args([&port.to_string(), &cert, &key, &mail.display().to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("aiosmtpd");
    let mut line = String::new();
    BufReader::new(server.stdout.take().expect("stdout")).read_line(&mut line).expect("ready line");
    assert_eq!(line.trim(), "ready");
    let smtp = format!(
        "\n[alerts.smtp]\nserver = \"localhost:{port}\"\nfrom = \"alerts@example.com\"\nhelo = \"instantops\"\nstarttls = \"always\"\n\
         username = \"alerts\"\npassword = \"s3cret\"\nca_file = \"{ca}\"\n"
    );
    let app = Appliance::start_with(options(&smtp));
    create(
        &app,
        json!({"name": "disk full", "description": "the data disk", "target": "mail.disk", "from": "-60s", "until": "now", "warn": 80, "error": 90,
                        "subscriptions": [{"type": "EMAIL", "target": "oncall@example.com"}]}),
    );
    carbon(&app, "mail.disk 97");
    let mut waited = 0;
    let message = loop {
        if let Ok(m) = std::fs::read_to_string(mail.join("0.eml")) {
            break m;
        }
        waited += 1;
        assert!(waited < 600, "no email within 30 s; the appliance said:\n{}", app.stderr());
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = server.kill();
    let _ = server.wait();
    assert!(message.contains("Subject: ERROR: disk full"), "{message}");
    assert!(message.contains("To: oncall@example.com") && message.contains("mail.disk = 97.0"), "{message}");
    assert_eq!(app.counter("instantops_alert_notifications_sent_total{type=\"EMAIL\"}"), 1.0);
}

#[test]
fn checks_declared_in_config_and_their_history_survive_a_restart() {
    let hook = Receiver::start(0);
    let declared = format!(
        "\n[[alerts.checks]]\nname = \"queue depth\"\ntarget = \"quiet.queue\"\nfrom = \"-60s\"\nuntil = \"now\"\nwarn = 10\nerror = 20\n\
         [[alerts.checks.subscriptions]]\ntype = \"HTTP\"\ntarget = \"{}\"\n",
        hook.url()
    );
    let mut app = Appliance::start_with(options(&declared));
    let listed = app.get("/api/checks").json();
    let id = listed["values"][0]["id"].as_str().expect("a declared check").to_string();
    assert_eq!(listed["values"][0]["fromConfig"], true);
    let reply = app.request("DELETE", &format!("/api/checks/{id}"), &[], None);
    assert_eq!(reply.status, 400, "declared checks change in the config file");
    carbon(&app, "quiet.queue 50");
    eventually(Duration::from_secs(30), "the ERROR notification", || (hook.count() >= 1).then_some(()));
    let alert_id = hook.bodies()[0]["alerts"][0]["id"].as_str().expect("alert id").to_string();
    let reply =
        app.request("POST", &format!("/api/checks/{id}/alerts/{alert_id}/ack"), &[], Some(br#"{"by": "bob", "note": "scaling workers"}"#));
    assert_eq!(reply.status, 204, "{}", reply.body);
    let data = app.data_dir();
    assert!(app.terminate(Duration::from_secs(10)).is_some_and(|s| s.success()));
    let app = Appliance::start_with(Options { data_dir: Some(data), ..options(&declared) });
    let after = check(&app, &id);
    assert_eq!(after["state"], "ERROR", "{after}");
    assert_eq!(after["name"], "queue depth");
    let history = app.get(&format!("/api/checks/{id}/alerts")).json();
    let acked =
        history["values"].as_array().expect("values").iter().find(|a| a["id"] == alert_id.as_str()).expect("the alert survived").clone();
    assert_eq!(acked["acknowledged"]["by"], "bob");
    assert_eq!(acked["acknowledged"]["note"], "scaling workers");
    // Still in ERROR after the restart: no second notification.
    runs(&app, &id, 3);
    assert_eq!(hook.count(), 1, "{:?}", hook.bodies());
}

#[test]
fn pagerduty_and_opsgenie_get_their_api_shapes_trigger_and_resolve() {
    let pagerduty = Receiver::start(0);
    let opsgenie = Receiver::start(0);
    let urls = format!("pagerduty_url = \"{}/v2/enqueue\"\nopsgenie_url = \"{}/v2/alerts\"\n", pagerduty.url(), opsgenie.url());
    let app = Appliance::start_with(options_with(&urls, ""));
    let id = create(
        &app,
        json!({"name": "api latency", "target": "quiet.latency", "from": "-60s", "until": "now", "warn": 100, "error": 200,
               "subscriptions": [{"type": "PAGERDUTY", "target": "routing-key-1"}, {"type": "OPSGENIE", "target": "genie-key-1"}]}),
    );
    carbon(&app, "quiet.latency 250");
    eventually(Duration::from_secs(30), "both triggers", || (pagerduty.count() >= 1 && opsgenie.count() >= 1).then_some(()));
    carbon(&app, "quiet.latency 5");
    eventually(Duration::from_secs(30), "both resolves", || (pagerduty.count() >= 2 && opsgenie.count() >= 2).then_some(()));
    let pd = pagerduty.bodies();
    assert_eq!(pd[0]["routing_key"], "routing-key-1");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    assert_eq!(pd[0]["dedup_key"], format!("instantops-{id}"));
    assert_eq!(pd[1]["event_action"], "resolve");
    assert_eq!(pd[1]["dedup_key"], pd[0]["dedup_key"]);
    let og = opsgenie.bodies();
    let heads = opsgenie.heads.lock().expect("lock").clone();
    assert_eq!(og[0]["alias"], format!("instantops-{id}"));
    assert_eq!(og[0]["priority"], "P1");
    assert!(heads[0].0.starts_with("POST /hook/v2/alerts "), "{heads:?}");
    assert_eq!(heads[0].1, "GenieKey genie-key-1");
    assert!(heads[1].0.starts_with(&format!("POST /hook/v2/alerts/instantops-{id}/close?identifierType=alias ")), "{heads:?}");
}
