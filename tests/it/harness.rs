//! The one integration harness: starts the real `instantops` binary in a fresh
//! temp dir with every listener on 127.0.0.1:0, reads its `listening NAME ADDR`
//! lines, and offers HTTP, TCP and UDP helpers. Every wait has a deadline; a
//! failing test prints the appliance's stderr.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every listener the contract names, as (env var, listener name).
pub const LISTENERS: [(&str, &str); 13] = [
    ("INSTANTOPS_HTTP__LISTEN", "http"),
    ("INSTANTOPS_STATSD__UDP", "statsd_udp"),
    ("INSTANTOPS_STATSD__TCP", "statsd_tcp"),
    ("INSTANTOPS_STATSD__ADMIN", "statsd_admin"),
    ("INSTANTOPS_CARBON__TCP", "carbon_tcp"),
    ("INSTANTOPS_CARBON__UDP", "carbon_udp"),
    ("INSTANTOPS_CARBON__PICKLE", "carbon_pickle"),
    ("INSTANTOPS_LOGS__SYSLOG_UDP", "syslog_udp"),
    ("INSTANTOPS_LOGS__SYSLOG_TCP", "syslog_tcp"),
    ("INSTANTOPS_LOGS__JSON_TCP", "json_tcp"),
    ("INSTANTOPS_LOGS__GELF_UDP", "gelf_udp"),
    ("INSTANTOPS_LOGS__RESP", "resp"),
    ("INSTANTOPS_LOGS__ELASTICSEARCH", "elasticsearch"),
];

/// How long a start may take: a debug binary opening stores on a busy 2-core box.
const START_DEADLINE: Duration = Duration::from_secs(60);

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_instantops")
}

/// A built appliance process and its temp dir; killed on drop.
pub struct Appliance {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    pub listeners: HashMap<String, SocketAddr>,
    stderr_path: PathBuf,
    agent: ureq::Agent,
}

/// What to start with: an optional config file text and extra env overrides.
#[derive(Default, Clone)]
pub struct Options {
    pub config: Option<String>,
    pub env: Vec<(String, String)>,
    /// Reuse this data dir instead of a fresh one (restart tests).
    pub data_dir: Option<PathBuf>,
}

impl Options {
    pub fn env(mut self, key: &str, value: &str) -> Options {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
    pub fn config(mut self, text: &str) -> Options {
        self.config = Some(text.to_string());
        self
    }
}

/// An HTTP answer, read whole.
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub headers: HashMap<String, String>,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

impl Appliance {
    pub fn start() -> Appliance {
        Appliance::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Appliance {
        let dir = tempfile::tempdir().expect("temp dir");
        let data_dir = options.data_dir.clone().unwrap_or_else(|| dir.path().join("data"));
        let stderr_path = dir.path().join("stderr.log");
        let mut cmd = Command::new(bin());
        cmd.arg("serve").arg("--data-dir").arg(&data_dir);
        if let Some(text) = &options.config {
            let path = dir.path().join("instantops.toml");
            std::fs::write(&path, text).expect("write config");
            cmd.arg("--config").arg(path);
        }
        // Scrub inherited overrides, then put every listener on a free port.
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("INSTANTOPS_")) {
            cmd.env_remove(k);
        }
        for (var, _) in LISTENERS {
            cmd.env(var, "127.0.0.1:0");
        }
        // Host and self metrics add series every few seconds; tests that
        // compare namespaces with graphite-web want only their own. host.rs
        // turns them on through its options.
        cmd.env("INSTANTOPS_HOST__METRICS", "false");
        cmd.env("INSTANTOPS_HOST__SELF_METRICS", "false");
        for (k, v) in &options.env {
            cmd.env(k, v);
        }
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        let mut child = cmd.spawn().expect("spawn instantops");
        let rx = stdout_lines(child.stdout.take().expect("piped stdout"));
        let agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(30))).build().into();
        let mut app = Appliance { child: Some(child), dir, listeners: HashMap::new(), stderr_path, agent };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line == "ready" => break,
                Ok(line) => {
                    let mut parts = line.split(' ');
                    match (parts.next(), parts.next(), parts.next(), parts.next()) {
                        (Some("listening"), Some(name), Some(addr), None) => {
                            let addr = addr.parse().unwrap_or_else(|_| panic!("bad address in {line:?}"));
                            app.listeners.insert(name.to_string(), addr);
                        }
                        _ => panic!("unexpected stdout line {line:?}\n{}", app.stderr()),
                    }
                }
                Err(_) => panic!("appliance not ready within {START_DEADLINE:?}\n{}", app.stderr()),
            }
        }
        app
    }

    pub fn addr(&self, listener: &str) -> SocketAddr {
        *self.listeners.get(listener).unwrap_or_else(|| panic!("no listener {listener} in {:?}", self.listeners))
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr("http"))
    }

    pub fn get(&self, path: &str) -> Reply {
        self.request("GET", path, &[], None)
    }

    /// Any method, optional body, extra headers.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        self.request_at("http", method, path, headers, body)
    }

    /// [`Appliance::request`] to another HTTP listener (`elasticsearch`).
    pub fn request_at(&self, listener: &str, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let url = format!("http://{}{path}", self.addr(listener));
        let mut builder = ureq::http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.unwrap_or_default().to_vec()).expect("valid request");
        let mut response = self.agent.run(request).unwrap_or_else(|e| panic!("{method} {path}: {e}\n{}", self.stderr()));
        let status = response.status().as_u16();
        let headers =
            response.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
        let body = response.body_mut().with_config().limit(256 << 20).read_to_string().unwrap_or_default();
        Reply { status, body, headers }
    }

    pub fn status(&self) -> serde_json::Value {
        let reply = self.get("/api/status");
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.json()
    }

    /// A counter or gauge from /api/status by its key (`name{labels}`), 0 if absent.
    pub fn counter(&self, key: &str) -> f64 {
        let status = self.status();
        status["counters"].get(key).or_else(|| status["gauges"].get(key)).and_then(|v| v.as_f64()).unwrap_or(0.0)
    }

    pub fn tcp(&self, listener: &str) -> TcpStream {
        let stream = TcpStream::connect(self.addr(listener)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        stream
    }

    pub fn send_tcp(&self, listener: &str, bytes: &[u8]) {
        let mut s = self.tcp(listener);
        s.write_all(bytes).expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }

    pub fn send_udp(&self, listener: &str, datagram: &[u8]) {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("udp bind");
        socket.send_to(datagram, self.addr(listener)).expect("udp send");
    }

    /// Sends SIGTERM and waits for the exit, at most `deadline`.
    pub fn terminate(&mut self, deadline: Duration) -> Option<ExitStatus> {
        signal(self.pid(), "TERM");
        self.wait_exit(deadline)
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) {
        signal(self.pid(), "KILL");
        let _ = self.wait_exit(Duration::from_secs(10));
    }

    /// Waits for the process to exit on its own, at most `deadline`.
    pub fn wait_exit(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let end = Instant::now() + deadline;
        let child = self.child.as_mut().expect("running");
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= end {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Appliance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The lines a child writes to stdout, as they come (so a reader can wait
/// on them with a deadline).
pub fn stdout_lines(stdout: ChildStdout) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill").arg(format!("-{name}")).arg(pid.to_string()).status().expect("run kill").success();
    assert!(ok, "kill -{name} {pid} failed");
}

/// Polls `probe` until it returns `Some`, or panics with `what` after `deadline`.
pub fn eventually<T>(deadline: Duration, what: &str, mut probe: impl FnMut() -> Option<T>) -> T {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = probe() {
            return v;
        }
        assert!(Instant::now() < end, "timed out after {deadline:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Runs the binary with arguments to completion (for check-config, version).
pub fn run(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("INSTANTOPS_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run instantops");
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// A TCP port that was free a moment ago, picked below the kernel's
/// ephemeral range (32768-60999 on Linux), so that no connection or `:0`
/// bind of a test running in parallel can take it before it is used.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    // Each call moves on: parallel tests in this process never share a pick.
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let seed = (std::process::id() as u16).wrapping_mul(7919);
    for _ in 0..2000 {
        let port = 20_000 + (seed.wrapping_add(NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() && std::net::UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000..32000")
}

/// Opens the store of a stopped appliance, to read what it persisted.
pub fn open_store(data_dir: &Path) -> instantops::tsdb::Store {
    let rules = instantops::tsdb::schema::Rules::new(Vec::new(), Vec::new());
    let tuning = instantops::tsdb::Tuning::default();
    instantops::tsdb::Store::open(&data_dir.join("tsdb"), rules, &tuning, &instantops::telemetry::Registry::new())
        .expect("open the stopped appliance's store")
}

/// The Python with the real client libraries (statsd, graphyte, ...), set up by
/// tests/run in a venv. Tests that use real clients need it; there is no skip.
pub fn client_python() -> PathBuf {
    let path = std::env::var_os("IOPS_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|| {
        // tests/run's default target dir.
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_default();
        let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| home.join(".cache/instantops-target"));
        target.join("py-venv/bin/python")
    });
    assert!(path.exists(), "no client Python at {} (tests/run creates it; or set IOPS_TEST_PYTHON)", path.display());
    path
}

/// Runs a Python script with the client venv; panics with its stderr on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(client_python()).arg("-c").arg(script).args(args).stdin(Stdio::null()).output().expect("run python");
    assert!(out.status.success(), "python failed: {}\n{}", String::from_utf8_lossy(&out.stderr), script);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Seconds since the epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs() as i64
}
