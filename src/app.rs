//! Wires the subsystems together: builds the shared handles, starts each
//! subsystem downstream-first (stores before the listeners that feed them, HTTP
//! last), announces every bound listener on stdout, waits for SIGTERM or
//! SIGINT, then stops them in reverse order, each within its own deadline.
//!
//! stdout carries only the contract's `listening NAME ADDR` and `ready` lines;
//! everything else goes to the log on stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{Config, Listen};
use crate::http;
use crate::telemetry::{Budget, LogHandle, Registry, memory};

/// Runs the appliance until a stop signal, then stops it in order.
pub async fn run(config: Config, log: LogHandle) -> Result<()> {
    let boot = Instant::now();
    // Installed before anything is announced, so a stop signal that arrives
    // right after `ready` is an orderly stop, never the default kill.
    let stop_signal = stop_signal()?;
    std::fs::create_dir_all(&config.data_dir).with_context(|| format!("cannot create data_dir {}", config.data_dir.display()))?;
    let registry = Registry::new();
    register_process_metrics(&registry);
    let budget = Budget::new(config.memory.limit.bytes());
    let mut app = Services::default();

    // HTTP starts last: everything it serves is up by then.
    if let Some(listener) = bind_tcp(&mut app, "http", &config.http.listen).await? {
        let state = http::AppState::new(registry.clone(), budget.clone(), log.clone(), config.http.token.clone(), app.listeners.clone());
        let router = http::router(state.clone(), config.http.max_body.as_usize());
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            http::serve(listener, router, shutdown).await.context("http server failed")
        });
        state.ready.store(true, std::sync::atomic::Ordering::Release);
        app.push("http", stop, task, Duration::from_secs(3));
    }

    announce("ready");
    tracing::info!(elapsed_ms = boot.elapsed().as_millis() as u64, listeners = app.listeners.len(), "ready");

    tokio::select! {
        signal = stop_signal => tracing::info!(signal, "stopping"),
        failed = app.first_failure() => {
            app.stop().await;
            return Err(failed);
        }
    }
    app.stop().await;
    Ok(())
}

/// The running subsystems, in start order.
#[derive(Default)]
struct Services {
    running: Vec<Service>,
    listeners: Vec<(&'static str, SocketAddr)>,
}

struct Service {
    name: &'static str,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<Result<()>>>,
    /// How long an orderly stop may take before the task is abandoned. The
    /// deadlines of all services add up to less than the contract's 10 s.
    deadline: Duration,
}

impl Services {
    fn push(&mut self, name: &'static str, stop: watch::Sender<bool>, task: JoinHandle<Result<()>>, deadline: Duration) {
        self.running.push(Service { name, stop, task: Some(task), deadline });
    }

    /// Resolves when any service's task ends on its own, which is a failure.
    async fn first_failure(&mut self) -> anyhow::Error {
        let tasks = self.running.iter_mut().filter_map(|s| s.task.as_mut().map(|t| (s.name, t)));
        let waits: Vec<_> = tasks.map(|(name, t)| Box::pin(async move { (name, t.await) })).collect();
        if waits.is_empty() {
            return std::future::pending().await;
        }
        let ((name, outcome), index, _) = futures_select_all(waits).await;
        let _ = index;
        match outcome {
            Ok(Ok(())) => anyhow::anyhow!("{name} stopped unexpectedly"),
            Ok(Err(e)) => e.context(format!("{name} failed")),
            Err(e) => anyhow::anyhow!("{name} panicked: {e}"),
        }
    }

    /// Stops every service, last started first, each within its deadline.
    async fn stop(&mut self) {
        for service in self.running.iter_mut().rev() {
            let started = Instant::now();
            let _ = service.stop.send(true);
            let Some(task) = service.task.take() else { continue };
            let abort = task.abort_handle();
            match tokio::time::timeout(service.deadline, task).await {
                Ok(Ok(Ok(()))) => tracing::info!(service = service.name, ms = started.elapsed().as_millis() as u64, "stopped"),
                Ok(Ok(Err(e))) => tracing::warn!(service = service.name, error = %format!("{e:#}"), "stopped with an error"),
                Ok(Err(e)) => tracing::warn!(service = service.name, error = %e, "stopped by a panic"),
                Err(_) => {
                    abort.abort();
                    tracing::warn!(
                        service = service.name,
                        deadline_ms = service.deadline.as_millis() as u64,
                        "did not stop in time; abandoned"
                    );
                }
            }
        }
    }
}

/// Awaits the first of several futures; a tiny stand-in for
/// `futures::select_all`, which would pull in a crate for one call.
async fn futures_select_all<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> (F::Output, usize, Vec<F>) {
    std::future::poll_fn(move |cx| {
        for (i, f) in futures.iter_mut().enumerate() {
            if let std::task::Poll::Ready(out) = std::pin::Pin::new(f).poll(cx) {
                return std::task::Poll::Ready((out, i, Vec::new()));
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Binds a TCP listener unless it is "off", and announces it.
async fn bind_tcp(app: &mut Services, name: &'static str, listen: &Listen) -> Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = listen.addr() else { return Ok(None) };
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot bind {name} on {addr}"))?;
    let local = listener.local_addr().with_context(|| format!("cannot read the address of {name}"))?;
    app.listeners.push((name, local));
    announce(&format!("listening {name} {local}"));
    Ok(Some(listener))
}

/// Writes one contract line to stdout and flushes it, so a supervisor or test
/// reading the pipe sees it at once.
fn announce(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn register_process_metrics(registry: &Registry) {
    let rss = registry.gauge("instantops_process_resident_memory_bytes", "Resident set size of the process.", &[]);
    let uptime = registry.gauge("instantops_process_uptime_seconds", "Seconds since the process started.", &[]);
    let started = Instant::now();
    registry.on_collect(move || {
        rss.set(memory::rss_bytes() as i64);
        uptime.set(started.elapsed().as_secs() as i64);
    });
}

fn stop_signal() -> Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}
