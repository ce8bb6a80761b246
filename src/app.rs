//! Wires the subsystems together: builds the shared handles, starts each
//! subsystem downstream-first (stores before the listeners that feed them, HTTP
//! last), announces every bound listener on stdout, waits for SIGTERM or
//! SIGINT, then stops them in reverse order, each within its own deadline.
//!
//! stdout carries only the contract's `listening NAME ADDR` and `ready` lines;
//! everything else goes to the log on stderr.

use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::carbon::listener::{self, Sink};
use crate::config::{Config, Listen};
use crate::telemetry::{Budget, InputStats, LogHandle, Registry, memory, udp};
use crate::tsdb::limits::Limit;
use crate::tsdb::store::unix_now;
use crate::tsdb::{Store, Tuning};
use crate::{alerts, dashboards, http, listen, logs, statsd};

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

    // The time-series store, then the flusher that moves its head to disk.
    let store = open_store(&config, &budget, &registry).await?;
    let probe = store.clone();
    budget.track(move || probe.memory().to_vec());
    // /proc/self/maps names files by their absolute, resolved path (the
    // store made the data dir).
    if let Ok(data_dir) = std::fs::canonicalize(&config.data_dir) {
        let mapped = data_dir.join("logs");
        budget.on_pressure(move || {
            let advised = crate::telemetry::mapped::release(&mapped);
            tracing::debug!(advised, "log index pages given back under memory pressure");
        });
    }
    let relief = store.clone();
    budget.on_pressure(move || relief.relieve());
    let (stop, stopped) = watch::channel(false);
    let flusher_store = store.clone();
    let task = tokio::task::spawn_blocking(move || flush_loop(&flusher_store, &stopped));
    app.push("tsdb_flusher", stop, task, Duration::from_secs(4));

    // The backstop for what no share covers: ingest sheds near the limit.
    let (stop, stopped) = watch::channel(false);
    let (governor, governed) = (budget.clone(), registry.clone());
    let task = tokio::task::spawn_blocking(move || {
        governor.govern(&governed, &stopped);
        Ok(())
    });
    app.push("memory_governor", stop, task, Duration::from_secs(1));
    start_carbon(&mut app, &config, &store, &registry, &budget).await?;
    // Set when the HTTP server stops: long-lived responses (live tails) end then.
    let (http_stop, http_stopping) = watch::channel(false);
    let logs = start_logs(&mut app, &config, &registry, &budget, http_stopping.clone()).await?;
    let log_store = logs.as_ref().map(|api| api.http.logs.clone());
    if let Some(store) = log_store.clone() {
        budget.track(move || vec![("logs_backlog", store.backlog_bytes())]);
    }
    let used = budget.clone();
    let gauges = registry.clone();
    registry.on_collect(move || {
        for (name, bytes) in used.used() {
            gauges
                .gauge(
                    "instantops_memory_used_bytes",
                    "Bytes a subsystem holds now (of its share of memory.limit).",
                    &[("subsystem", name)],
                )
                .set(bytes as i64);
        }
    });
    start_statsd(&mut app, &config, &store, log_store, &registry, &budget).await?;
    let alerts = start_alerts(&mut app, &config, &store, logs.as_ref(), &registry).await?;
    let dashboards = open_dashboards(&config).await?;
    let samples = Arc::new(crate::host::cardinality::Cardinality::default());
    if config.host.metrics || config.host.self_metrics {
        let collector = crate::host::Collector::new(store.clone(), samples.clone(), &registry, config.host.clone());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::task::spawn_blocking(move || {
            collector.run(&stopped);
            Ok(())
        });
        app.push("host_metrics", stop, task, Duration::from_secs(2));
    }

    // The Elasticsearch API: a second HTTP server on the same log store. Each
    // server's state lists the listeners bound so far, itself included.
    let state = |logs: Option<http::logs::LogsApi>, listeners| {
        let logs_on = logs.is_some();
        let backends = http::Backends {
            store: store.clone(),
            graphite: config.graphite.clone(),
            logs,
            alerts: Some(alerts.clone()),
            cardinality: samples.clone(),
            dashboards: dashboards.clone(),
            storage: http::Storage {
                data_dir: std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone()),
                schemas: config.carbon.schemas.iter().map(|r| (r.pattern.clone(), r.retentions.clone())).collect(),
                logs_retention_s: logs_on.then(|| config.logs.retention.get().as_secs()),
                logs_max_disk: logs_on.then(|| config.logs.max_disk.bytes()),
            },
        };
        http::AppState::new(registry.clone(), budget.clone(), log.clone(), config.http.token.clone(), listeners, backends)
    };
    if let Some(api) = &logs
        && let Some(listener) = bind_tcp(&mut app, "elasticsearch", &config.logs.elasticsearch).await?
    {
        let router = http::elastic::router(state(Some(api.clone()), app.listeners.clone()), config.http.max_body.as_usize());
        serve_http(&mut app, "elasticsearch", listener, router, watch::channel(false));
    }

    // HTTP starts last: everything it serves is up by then.
    if let Some(listener) = bind_tcp(&mut app, "http", &config.http.listen).await? {
        let state = state(logs.clone(), app.listeners.clone());
        serve_http(&mut app, "http", listener, http::router(state.clone(), config.http.max_body.as_usize()), (http_stop, http_stopping));
        state.ready.store(true, std::sync::atomic::Ordering::Release);
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

/// Serves `router` on `listener` as the service `name`, until `stop` is set.
fn serve_http(
    app: &mut Services,
    name: &'static str,
    listener: tokio::net::TcpListener,
    router: http::Router,
    (stop, mut stopped): (watch::Sender<bool>, watch::Receiver<bool>),
) {
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.wait_for(|s| *s).await;
        };
        http::serve(listener, router, shutdown).await.with_context(|| format!("{name} server failed"))
    });
    app.push(name, stop, task, Duration::from_secs(3));
}

async fn open_store(config: &Config, budget: &Budget, registry: &Registry) -> Result<Arc<Store>> {
    let rules = config.carbon.rules().map_err(|problems| anyhow::anyhow!("carbon rules: {}", problems[0]))?;
    // Fixed shares of the budget (config/instantops.toml, [memory]).
    // ~2.1M points at the default 1GiB. A head that fills sooner flushes
    // more often, and each flush costs per series it touches: a 100k-series
    // flood over 60 s did 1.45M points/s with 3 %, 1.77M with 10 % (one run
    // each, BENCHMARKS.md).
    let head = budget.share("tsdb_head", 0.10) as usize;
    let tuning = Tuning {
        block_cache_bytes: budget.share("tsdb_block_cache", 0.08) as usize,
        memtable_bytes: budget.share("tsdb_memtables", 0.08) as usize,
        chunk_cache_bytes: budget.share("tsdb_chunk_cache", 0.03) as usize,
        series_bytes: budget.share("tsdb_series", 0.12) as usize,
        // A pending point is 16 bytes, held up to three times while a flush
        // sorts its copy of the batch.
        head_points: (head / 48).max(1 << 16),
        limits: config.carbon.series_limits.iter().map(|l| Limit { prefix: l.prefix.clone(), max: l.max_series }).collect(),
    };
    let dir = config.data_dir.join("tsdb");
    let registry = registry.clone();
    let opened = Instant::now();
    let store = tokio::task::spawn_blocking(move || Store::open(&dir, rules, &tuning, &registry))
        .await
        .context("the store's opening thread panicked")?
        .context("cannot open the time-series store")?;
    tracing::info!(ms = opened.elapsed().as_millis() as u64, "time-series store open");
    Ok(Arc::new(store))
}

/// The saved dashboards; every write is durable before it is answered, so
/// there is nothing to stop.
async fn open_dashboards(config: &Config) -> Result<Arc<dashboards::DashboardStore>> {
    let dir = config.data_dir.join("dashboards");
    let settings = config.dashboards.clone();
    let store = tokio::task::spawn_blocking(move || dashboards::DashboardStore::open(&dir, &settings))
        .await
        .context("the dashboard store's opening thread panicked")?
        .context("cannot open the dashboard store")?;
    tracing::info!(dashboards = store.list().len(), "dashboard store open");
    Ok(Arc::new(store))
}

/// Flushes the store's head every second, and once more on stop.
fn flush_loop(store: &Store, stop: &watch::Receiver<bool>) -> Result<()> {
    // Bounds what a kill -9 can lose (ARCHITECTURE.md, durability).
    const INTERVAL: Duration = Duration::from_secs(1);
    const POLL: Duration = Duration::from_millis(50);
    let mut last = Instant::now();
    loop {
        let stopping = *stop.borrow();
        if stopping || last.elapsed() >= INTERVAL {
            last = Instant::now();
            if let Err(e) = store.flush(unix_now()) {
                tracing::error!(error = %e, "tsdb flush failed; points stay pending and are retried");
            }
            if stopping {
                // Memtables to disk, so the next start replays no WAL, and no
                // compaction left to wait for. If the stop deadline cuts this
                // short, the WAL still has everything.
                return store.close().context("cannot close the store on stop");
            }
        }
        std::thread::sleep(POLL);
    }
}

async fn start_carbon(app: &mut Services, config: &Config, store: &Arc<Store>, registry: &Registry, budget: &Budget) -> Result<()> {
    let carbon = &config.carbon;
    let sink = |input: &'static str| Sink {
        store: store.clone(),
        stats: Arc::new(InputStats::new(registry, input)),
        max_line: carbon.max_line.as_usize(),
        max_frame: carbon.max_pickle_frame.as_usize(),
        pressure: budget.pressure_flag(),
    };
    if let Some(listener) = bind_tcp(app, "carbon_tcp", &carbon.tcp).await? {
        let (stop, stopped) = watch::channel(false);
        let sink = sink("carbon_tcp");
        let task = tokio::spawn(listen::accept(listener, sink.clone(), sink.stats.clone(), stopped, listener::serve_plaintext));
        app.push("carbon_tcp", stop, flatten(task), Duration::from_secs(2));
    }
    if let Some(socket) = bind_udp(app, registry, "carbon_udp", &carbon.udp)? {
        let (stop, stopped) = watch::channel(false);
        let sink = sink("carbon_udp");
        let task = tokio::task::spawn_blocking(move || {
            listener::serve_udp(socket, &sink, &stopped);
            Ok(())
        });
        app.push("carbon_udp", stop, task, Duration::from_secs(1));
    }
    if let Some(listener) = bind_tcp(app, "carbon_pickle", &carbon.pickle).await? {
        let (stop, stopped) = watch::channel(false);
        let sink = sink("carbon_pickle");
        let task = tokio::spawn(listen::accept(listener, sink.clone(), sink.stats.clone(), stopped, listener::serve_pickle));
        app.push("carbon_pickle", stop, flatten(task), Duration::from_secs(2));
    }
    Ok(())
}

/// statsd: the flusher first (so it stops after the listeners, flushing what
/// they took last), then UDP, TCP and the admin console. Nothing when both
/// ingest listeners are "off".
async fn start_statsd(
    app: &mut Services,
    config: &Config,
    store: &Arc<Store>,
    logs: Option<Arc<logs::pipeline::Logs>>,
    registry: &Registry,
    budget: &Budget,
) -> Result<()> {
    let cfg = &config.statsd;
    // With no ingest listener, statsd is off: no flushes of its own metrics.
    if cfg.udp.addr().is_none() && cfg.tcp.addr().is_none() {
        return Ok(());
    }
    // Half of statsd's share for exact timer samples (8 bytes each), half
    // for the keys themselves.
    let share = budget.share("statsd_aggregation", 0.06);
    let exact_pool = (share / 2 / 8) as usize;
    let max_keys = (share / 2) as usize / statsd::aggregate::KEY_BYTES;
    let started = i64::from(unix_now());
    let aggregator = statsd::aggregate::Aggregator::new(cfg.settings(exact_pool, max_keys), started);
    let shared = Arc::new(statsd::listener::Statsd::new(
        aggregator,
        store.clone(),
        cfg.max_packet.as_usize(),
        cfg.flush_interval.get(),
        started,
        registry,
        logs,
    ));
    let held = shared.clone();
    budget.track(move || vec![("statsd_aggregation", held.lock().held_bytes() as u64)]);
    let (stop, stopped) = watch::channel(false);
    let flusher = shared.clone();
    let task = tokio::task::spawn_blocking(move || {
        statsd::listener::flush_loop(&flusher, &stopped);
        Ok(())
    });
    app.push("statsd_flusher", stop, task, Duration::from_secs(3));
    let input = |name: &'static str| statsd::listener::Input { statsd: shared.clone(), stats: Arc::new(InputStats::new(registry, name)) };
    if let Some(socket) = bind_udp(app, registry, "statsd_udp", &cfg.udp)? {
        let (stop, stopped) = watch::channel(false);
        let input = input("statsd_udp");
        let task = tokio::task::spawn_blocking(move || {
            statsd::listener::serve_udp(socket, &input, &stopped);
            Ok(())
        });
        app.push("statsd_udp", stop, task, Duration::from_secs(1));
    }
    if let Some(listener) = bind_tcp(app, "statsd_tcp", &cfg.tcp).await? {
        let (stop, stopped) = watch::channel(false);
        let input = input("statsd_tcp");
        let stats = input.stats.clone();
        let task = tokio::spawn(listen::accept(listener, input, stats, stopped, statsd::listener::serve_tcp));
        app.push("statsd_tcp", stop, flatten(task), Duration::from_secs(2));
    }
    if let Some(listener) = bind_tcp(app, "statsd_admin", &cfg.admin).await? {
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(InputStats::new(registry, "statsd_admin"));
        let task = tokio::spawn(listen::accept(listener, shared.clone(), stats, stopped, statsd::admin::serve));
        app.push("statsd_admin", stop, flatten(task), Duration::from_secs(2));
    }
    Ok(())
}

/// The log store, then its inputs (so they stop first and everything they
/// took is committed). Returns the HTTP side's handle.
async fn start_logs(
    app: &mut Services,
    config: &Config,
    registry: &Registry,
    budget: &Budget,
    http_stopping: watch::Receiver<bool>,
) -> Result<Option<http::logs::LogsApi>> {
    let cfg = &config.logs;
    let heap = budget.share("logs_index_writer", 0.12) as usize;
    // Tantivy needs at least 15 MB of heap per indexing thread.
    let threads = if heap >= 64 << 20 { 2 } else { 1 };
    let settings = logs::pipeline::Settings {
        dir: config.data_dir.join("logs"),
        commit_interval: cfg.commit_interval.get(),
        retention: cfg.retention.get(),
        max_disk: cfg.max_disk.bytes(),
        writer_heap: heap.max(threads * (16 << 20)),
        writer_threads: threads,
        max_backlog: cfg.max_backlog.bytes().min(budget.share("logs_backlog", 0.04)),
        tail_buffer: cfg.tail_buffer as usize,
        pressure: budget.pressure_flag(),
    };
    let opened = Instant::now();
    let registry_for_open = registry.clone();
    let store = tokio::task::spawn_blocking(move || logs::pipeline::Logs::open(settings, &registry_for_open))
        .await
        .context("the log store's opening thread panicked")?
        .context("cannot open the log store")?;
    tracing::info!(ms = opened.elapsed().as_millis() as u64, "log store open");
    let (stop, mut stopped) = watch::channel(false);
    let closing = store.clone();
    let task = tokio::spawn(async move {
        let _ = stopped.wait_for(|s| *s).await;
        tokio::task::spawn_blocking(move || closing.close()).await.context("closing the log store panicked")
    });
    app.push("logs", stop, task, Duration::from_secs(6));

    let input = |name: &'static str| logs::listener::Input {
        logs: store.clone(),
        stats: Arc::new(InputStats::new(registry, name)),
        max_event: cfg.max_event.as_usize(),
        max_fields: cfg.max_fields as usize,
    };
    type Udp = fn(std::net::UdpSocket, &logs::listener::Input, &watch::Receiver<bool>);
    let udp: [(&'static str, &Listen, Udp); 2] =
        [("syslog_udp", &cfg.syslog_udp, logs::listener::serve_syslog_udp), ("gelf_udp", &cfg.gelf_udp, logs::listener::serve_gelf_udp)];
    for (name, listen, serve) in udp {
        if let Some(socket) = bind_udp(app, registry, name, listen)? {
            let (stop, stopped) = watch::channel(false);
            let input = input(name);
            let task = tokio::task::spawn_blocking(move || {
                serve(socket, &input, &stopped);
                Ok(())
            });
            app.push(name, stop, task, Duration::from_secs(1));
        }
    }
    type Tcp = fn(std::net::TcpStream, &logs::listener::Input, &std::sync::atomic::AtomicBool);
    let tcp: [(&'static str, &Listen, Tcp); 3] = [
        ("syslog_tcp", &cfg.syslog_tcp, logs::listener::serve_syslog_tcp),
        ("json_tcp", &cfg.json_tcp, logs::listener::serve_json_tcp),
        ("resp", &cfg.resp, logs::listener::serve_resp),
    ];
    for (name, listen, serve) in tcp {
        if let Some(listener) = bind_tcp(app, name, listen).await? {
            let (stop, stopped) = watch::channel(false);
            let input = input(name);
            let stats = input.stats.clone();
            let task = tokio::spawn(listen::accept(listener, input, stats, stopped, serve));
            app.push(name, stop, flatten(task), Duration::from_secs(2));
        }
    }
    for (i, source) in cfg.redis.iter().enumerate() {
        let (stop, stopped) = watch::channel(false);
        let input = input("redis");
        let (url, key) = (source.url.clone(), source.key.clone());
        let task = tokio::task::spawn_blocking(move || {
            logs::listener::pull_redis(&url, &key, &input, &stopped);
            Ok(())
        });
        tracing::info!(index = i, key = %source.key, "redis input started");
        app.push("redis", stop, task, Duration::from_secs(3));
    }
    let limits = logs::search::Limits {
        timeout: cfg.search_timeout.get(),
        memory: cfg.search_memory.bytes().min(budget.share("logs_search", 0.06)),
        buckets: 65_000,
        window: cfg.search_window as usize,
    };
    Ok(Some(http::logs::LogsApi {
        http: input("http"),
        elasticsearch: input("elasticsearch"),
        max_body: config.http.max_body.as_usize(),
        limits,
        stopping: http_stopping,
    }))
}

/// Alerting: the check store (checks declared in the config merged in), the
/// notifier's thread, then the evaluation loop. Stops before the stores it reads.
async fn start_alerts(
    app: &mut Services,
    config: &Config,
    store: &Arc<Store>,
    logs: Option<&http::logs::LogsApi>,
    registry: &Registry,
) -> Result<Arc<alerts::engine::Engine>> {
    let cfg = &config.alerts;
    let book = alerts::store::AlertStore::open(&config.data_dir.join("alerts"), cfg.max_history as usize)
        .context("cannot open the alert store")?;
    alerts::engine::declare(&book, &cfg.checks).context("cannot apply [[alerts.checks]]")?;
    let book = Arc::new(book);
    let notifier = alerts::notify::Notifier::new(alerts::notify::Settings::from_config(cfg), registry);
    let (stop, mut stopped) = watch::channel(false);
    let sender = notifier.clone();
    let stopper = notifier.clone();
    let task = tokio::spawn(async move {
        let worker = tokio::task::spawn_blocking(move || sender.run());
        let _ = stopped.wait_for(|s| *s).await;
        stopper.stop();
        worker.await.context("the notifier panicked")
    });
    app.push("alert_notifier", stop, task, Duration::from_secs(2));
    let sources = alerts::engine::Sources {
        tsdb: store.clone(),
        graphite: crate::graphite::eval::Limits { max_series: config.graphite.max_series, max_points: config.graphite.max_points },
        logs: logs.map(|api| api.http.logs.index.clone()),
        search: logs.map(|api| api.limits).unwrap_or_default(),
    };
    let offset = alerts::utc_offset_minutes(&cfg.time_zone).unwrap_or(0);
    let engine = Arc::new(alerts::engine::Engine::new(book, notifier, sources, offset, registry));
    let (stop, stopped) = watch::channel(false);
    let runner = engine.clone();
    let interval = cfg.interval.get();
    let task = tokio::task::spawn_blocking(move || {
        runner.run(interval, &stopped);
        Ok(())
    });
    app.push("alerts", stop, task, Duration::from_secs(3));
    tracing::info!(checks = engine.store.checks().len(), "alerting started");
    Ok(engine)
}

/// An io task as a service task.
fn flatten(task: JoinHandle<std::io::Result<()>>) -> JoinHandle<Result<()>> {
    tokio::spawn(async move {
        match task.await {
            Ok(r) => r.context("listener failed"),
            Err(e) => Err(anyhow::anyhow!("listener panicked: {e}")),
        }
    })
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
    /// How long an orderly stop may take before the task is abandoned.
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
        let (name, outcome) = first_of(waits).await;
        match outcome {
            Ok(Ok(())) => anyhow::anyhow!("{name} stopped unexpectedly"),
            Ok(Err(e)) => e.context(format!("{name} failed")),
            Err(e) => anyhow::anyhow!("{name} panicked: {e}"),
        }
    }

    /// Stops every service, last started first, each within its deadline and
    /// all within the contract's 10 s (less a margin for the process exit).
    async fn stop(&mut self) {
        const TOTAL: Duration = Duration::from_millis(9_000);
        let begun = Instant::now();
        for service in self.running.iter_mut().rev() {
            let started = Instant::now();
            let _ = service.stop.send(true);
            let Some(task) = service.task.take() else { continue };
            let abort = task.abort_handle();
            let deadline = service.deadline.min(TOTAL.saturating_sub(begun.elapsed()));
            match tokio::time::timeout(deadline, task).await {
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

/// Awaits the first of several futures to finish; a stand-in for
/// `futures::select_all`, which would pull in a crate for one call.
async fn first_of<F: std::future::Future + Unpin>(mut futures: Vec<F>) -> F::Output {
    std::future::poll_fn(move |cx| {
        futures
            .iter_mut()
            .find_map(|f| match std::pin::Pin::new(f).poll(cx) {
                std::task::Poll::Ready(out) => Some(out),
                std::task::Poll::Pending => None,
            })
            .map_or(std::task::Poll::Pending, std::task::Poll::Ready)
    })
    .await
}

/// Binds a UDP socket unless it is "off", and announces it.
fn bind_udp(app: &mut Services, registry: &Registry, name: &'static str, listen: &Listen) -> Result<Option<std::net::UdpSocket>> {
    let Some(addr) = listen.addr() else { return Ok(None) };
    let resolved = std::net::ToSocketAddrs::to_socket_addrs(addr)
        .with_context(|| format!("cannot resolve {name} address {addr}"))?
        .next()
        .with_context(|| format!("{name} address {addr} resolves to nothing"))?;
    let socket = udp::bind(resolved).with_context(|| format!("cannot bind {name} on {addr}"))?;
    let local = socket.local_addr().with_context(|| format!("cannot read the address of {name}"))?;
    udp::watch_drops(registry, name, local);
    app.listeners.push((name, local));
    announce(&format!("listening {name} {local}"));
    Ok(Some(socket))
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
    let accounts = crate::telemetry::accounts::Account::ALL.map(|account| {
        registry.gauge(
            "instantops_memory_account_bytes",
            "Live bytes of the Rust heap by the account they were allocated for, as the allocator counts them.",
            &[("account", account.name())],
        )
    });
    let started = Instant::now();
    registry.on_collect(move || {
        for ((_, bytes), gauge) in crate::telemetry::accounts::held().iter().zip(&accounts) {
            gauge.set(*bytes as i64);
        }
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
