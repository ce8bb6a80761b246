//! Real graphite-web (Debian's graphite-web 1.1.8) as an oracle for the
//! Graphite HTTP API: `GraphiteWeb::start` runs `tests/oracle/graphite_web.py`
//! over a whisper dir, reads its `listening graphite-web ADDR` line with a
//! deadline and kills its process group on drop (the script also exits when
//! its stdin, held here, closes). `write_whisper` writes fixtures with
//! Debian's python3-whisper command-line tools, as carbon would have.
//! graphite-web is not optional: tests/run installs it; without it the tests
//! that use it fail and say so.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Reply, repo_path, stdout_lines};

/// graphite-web starts in about a second; this allows for a busy 2-core box.
const START_DEADLINE: Duration = Duration::from_secs(60);

/// The Debian package's code; the system Python is the one that has it.
const GRAPHITE_PACKAGE: &str = "/usr/lib/python3/dist-packages/graphite/render/functions.py";

/// A running graphite-web over one whisper dir; killed (with its process group) on drop.
pub struct GraphiteWeb {
    child: Option<Child>,
    /// Held open: the script exits when it closes, i.e. when this process dies.
    _stdin: Option<ChildStdin>,
    pub addr: SocketAddr,
    work: tempfile::TempDir,
    stderr_path: PathBuf,
    agent: ureq::Agent,
}

impl GraphiteWeb {
    pub fn start(whisper_dir: &Path) -> GraphiteWeb {
        assert!(
            Path::new(GRAPHITE_PACKAGE).exists() && Path::new("/usr/bin/whisper-create").exists(),
            "graphite-web is not installed ({GRAPHITE_PACKAGE} is missing): tests/run installs it, or run \
             `apt-get install --no-install-recommends graphite-web python3-whisper`"
        );
        let work = tempfile::tempdir().expect("temp dir");
        let stderr_path = work.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = Command::new("/usr/bin/python3")
            .arg(repo_path("tests/oracle/graphite_web.py"))
            .arg("--whisper-dir")
            .arg(whisper_dir)
            .arg("--work-dir")
            .arg(work.path().join("graphite"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .process_group(0)
            .spawn()
            .expect("run /usr/bin/python3 tests/oracle/graphite_web.py");
        let rx = stdout_lines(child.stdout.take().expect("piped stdout"));
        let stdin = child.stdin.take();
        let agent = ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(Duration::from_secs(60))).build().into();
        let mut web =
            GraphiteWeb { child: Some(child), _stdin: stdin, addr: "127.0.0.1:0".parse().expect("addr"), work, stderr_path, agent };
        let deadline = Instant::now() + START_DEADLINE;
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("graphite-web did not start within {START_DEADLINE:?}\n{}", web.stderr()));
        let addr = line.strip_prefix("listening graphite-web ").unwrap_or_else(|| panic!("unexpected line {line:?}\n{}", web.stderr()));
        web.addr = addr.parse().unwrap_or_else(|_| panic!("bad address in {line:?}"));
        web
    }

    /// The script's stderr (start-up time, tracebacks of a failed start).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// graphite-web's own logs (exception.log holds the traceback of a 500).
    pub fn log(&self, file: &str) -> String {
        std::fs::read_to_string(self.work.path().join("graphite/log").join(file)).unwrap_or_default()
    }

    pub fn get(&self, path_and_query: &str) -> (u16, String) {
        let reply = self.request("GET", path_and_query, &[], None);
        (reply.status, reply.body)
    }

    /// Any method, extra headers, optional body; the answer read whole.
    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> Reply {
        let mut builder = ureq::http::Request::builder().method(method).uri(format!("http://{}{path}", self.addr));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let request = builder.body(body.unwrap_or_default().to_vec()).expect("valid request");
        let mut response = self.agent.run(request).unwrap_or_else(|e| panic!("graphite-web {method} {path}: {e}\n{}", self.stderr()));
        let status = response.status().as_u16();
        let headers: HashMap<String, String> =
            response.headers().iter().map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string())).collect();
        let body = response.body_mut().with_config().limit(256 << 20).read_to_string().unwrap_or_default();
        Reply { status, body, headers }
    }
}

impl Drop for GraphiteWeb {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // The script is its process group's leader: kill it and anything it started.
            let _ = Command::new("kill").arg("-KILL").arg("--").arg(format!("-{}", child.id())).status();
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The whisper file of a dotted series name under `dir`: `a.b.c` -> `a/b/c.wsp`.
pub fn whisper_path(dir: &Path, name: &str) -> PathBuf {
    let mut path = dir.to_path_buf();
    path.extend(name.split('.'));
    path.set_extension("wsp");
    path
}

/// Creates `name`'s whisper file under `dir` (retentions as carbon writes them,
/// `10s:1d,1m:7d`) and writes `points` in one `update_many`, with Debian's
/// `whisper-create` and `whisper-update`.
pub fn write_whisper(dir: &Path, name: &str, retentions: &str, xff: f64, method: &str, points: &[(i64, f64)]) {
    let path = whisper_path(dir, name);
    std::fs::create_dir_all(path.parent().expect("a parent dir")).expect("create whisper dirs");
    let run = |cmd: &mut Command| {
        let out = cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("run {cmd:?}: {e} (python3-whisper: tests/run installs it)"));
        assert!(out.status.success(), "{cmd:?} failed: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    };
    run(Command::new("/usr/bin/whisper-create")
        .arg(&path)
        .args(retentions.split(','))
        .arg(format!("--xFilesFactor={xff}"))
        .arg(format!("--aggregationMethod={method}")));
    if !points.is_empty() {
        // Rust's shortest round-trip float text is what Python's float() reads back.
        run(Command::new("/usr/bin/whisper-update").arg(&path).args(points.iter().map(|(t, v)| format!("{t}:{v}"))));
    }
}
