//! The command line: parse arguments, load the config, hand over to `app::run`.
//! Exit codes: 0 ok, 1 runtime failure, 2 usage or config error.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use instantops::config::{self, Config, Sources};
use instantops::{app, telemetry};

/// mimalloc, with each subsystem's blocks in a heap of its own and counted
/// (`telemetry::accounts`). Tantivy's indexing allocates and frees per token
/// and per document; glibc's allocator spent a fifth of log ingest there.
/// The `system-alloc` feature keeps glibc's, for heap profilers that hook
/// malloc (heaptrack).
#[cfg(not(feature = "system-alloc"))]
#[global_allocator]
static ALLOCATOR: telemetry::accounts::Accounted = telemetry::accounts::Accounted;

/// Makes mimalloc return freed pages to the kernel at once until the memory
/// governor finds room under the limit (it then lets them wait 100 ms): with
/// its default one-second delay, a flush's transient buffers stayed
/// resident, and the resident set ran ~40 MiB above what was live at
/// memory.limit = 256MiB.
/// RocksDB's C++ allocates through glibc's malloc, which gives each new
/// thread an arena of its own (up to 8 per core); freed memory in one arena
/// is not reused by another. With two arenas the resident set of a statsd
/// soak went from 200 to ~135 MiB at the same load.
#[cfg(not(feature = "system-alloc"))]
fn tune_allocator() {
    instantops::telemetry::alloc::set_purge_delay(0);
    no_huge_pages();
    tune_glibc_malloc();
}

#[cfg(feature = "system-alloc")]
fn tune_allocator() {
    no_huge_pages();
    tune_glibc_malloc();
}

/// Transparent huge pages off for the process. mimalloc asks for them on its
/// arenas (`MADV_HUGEPAGE`), so a page it had purged came back as a whole
/// 2 MiB page zeroed at once, and the resident set counted the rest of that
/// page: with them off the heavy 256MiB soak peaked at 207-209 MiB instead
/// of 230-250, and syslog ingest at 400-404 MiB instead of 431-434, at the
/// same rate (BENCHMARKS.md, Memory).
fn no_huge_pages() {
    // SAFETY: prctl(PR_SET_THP_DISABLE) sets a flag on this process's
    // address space that the kernel reads at each later page fault; it
    // touches no memory of ours.
    unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
}

fn tune_glibc_malloc() {
    // SAFETY: mallopt sets a tunable of glibc's allocator; called first thing
    // in main, before any thread but this one exists.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 2) };
    // A fixed mmap threshold: glibc otherwise raises it to the largest block
    // freed (up to 32 MiB), after which a memtable's arena blocks come from
    // the heap and stay resident when freed. Those blocks are an eighth of a
    // write buffer, at most 1 MiB: by that rule 983 KiB for the chunk
    // family's at memory.limit = 256MiB, above the threshold from ~170 MiB up, so
    // still mapped and unmapped whole; below that (512-640 KiB) they come
    // from the heap.
    // Below it: Tantivy's doc store makes a zstd context for every block it
    // compresses (ZSTD_sizeof_CCtx at level 1: 537 KiB for a 128 KiB block,
    // 297 KiB for 64 KiB), which with the 256 KiB threshold this had before
    // was a fresh mapping each time, faulted in and zeroed page by page: most
    // of that thread's time went to the kernel.
    // SAFETY: as above.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 640 << 10) };
    // Keeps that context's memory in the heap between blocks rather than
    // handing it back at each free (glibc's default trims past 128 KiB):
    // at most this much lies free at the top of each of the two arenas.
    // SAFETY: as above.
    unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 4 << 20) };
}

#[derive(Parser)]
#[command(name = "instantops", version, about = "statsd, carbon, graphite, logs, search and alerting in one process")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the appliance (embedded defaults unless --config is given).
    Serve {
        /// A TOML file that overrides the embedded defaults key by key.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Where everything is stored; overrides `data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Validate a config file and list every problem in it.
    CheckConfig { file: PathBuf },
    /// Print the version and build information.
    Version,
    /// Run a load generator against a listener.
    #[command(subcommand)]
    Bench(Bench),
}

#[derive(Subcommand)]
enum Bench {
    /// statsd over UDP: counters, sampled counters, timers, gauges and sets.
    Statsd {
        /// host:port of a statsd UDP listener (instantops, Etsy statsd...).
        #[arg(long)]
        to: String,
        /// Metric lines per second in total; 0 sends as fast as the senders can.
        #[arg(long, default_value_t = 100_000)]
        rate: u64,
        /// Seconds to send for.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Metric lines per datagram (30 lines make a ~1,400-byte datagram).
        #[arg(long, default_value_t = 1)]
        per_packet: u64,
        /// Distinct metric names.
        #[arg(long, default_value_t = 10_000)]
        series: u64,
        /// Sender threads.
        #[arg(long, default_value_t = 1)]
        threads: u64,
        /// First path component of every name.
        #[arg(long, default_value = "bench")]
        prefix: String,
    },
    /// Graphite plaintext over TCP: gauges, counters and timings.
    Carbon {
        /// host:port of a carbon plaintext listener (instantops, carbon-cache, VictoriaMetrics...).
        #[arg(long)]
        to: String,
        /// Distinct series.
        #[arg(long, default_value_t = 10_000)]
        series: u64,
        /// Points per second in total; 0 sends as fast as the receiver reads.
        #[arg(long, default_value_t = 100_000)]
        rate: u64,
        /// Seconds to send for.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Parallel TCP connections.
        #[arg(long, default_value_t = 4)]
        connections: u64,
        /// Seconds between a series' consecutive points.
        #[arg(long, default_value_t = 10)]
        interval: u64,
        /// First path component of every series.
        #[arg(long, default_value = "bench")]
        prefix: String,
        /// Wait until this Prometheus endpoint counts every point: URL and a
        /// metric line prefix, e.g. http://127.0.0.1:8080/metrics instantops_tsdb_points_total
        #[arg(long, num_args = 2, value_names = ["URL", "METRIC"])]
        wait_metric: Option<Vec<String>>,
        /// Send real data instead: every *.csv (`timestamp,value` rows) under DIR,
        /// cut into series of --replay-points values; --series is then ignored.
        #[arg(long, value_name = "DIR")]
        replay: Option<PathBuf>,
        /// Values per replayed series (2000 at 10 s: 5.5 h, inside a 6 h finest archive).
        #[arg(long, default_value_t = 2000)]
        replay_points: usize,
    },
    /// Logs over TCP: syslog (RFC 5424, octet-counted nginx lines), logstash
    /// json_lines app events, or Elasticsearch _bulk.
    Logs {
        /// host:port of the listener for --proto (syslog TCP, JSON TCP, or the Elasticsearch API).
        #[arg(long)]
        to: String,
        /// syslog, json or bulk.
        #[arg(long, default_value = "syslog")]
        proto: instantops::logs::bench::Proto,
        /// Events per second in total; 0 sends as fast as the receiver takes them.
        #[arg(long, default_value_t = 50_000)]
        rate: u64,
        /// Seconds to send for.
        #[arg(long, default_value_t = 10)]
        duration: u64,
        /// Parallel connections.
        #[arg(long, default_value_t = 2)]
        connections: u64,
        /// Send each line of FILE as one event's message instead of generated ones.
        #[arg(long, value_name = "FILE")]
        replay: Option<PathBuf>,
        /// Wait until this Prometheus endpoint counts every event: URL and a
        /// metric line prefix, e.g. http://127.0.0.1:8080/metrics instantops_logs_indexed_total
        #[arg(long, num_args = 2, value_names = ["URL", "METRIC"])]
        wait_metric: Option<Vec<String>>,
        /// With a bare protocol: parse each event's JSON inside the timed part,
        /// as an indexer fed JSON lines must (tantivy-cli's `index` does).
        #[arg(long)]
        timed_parse: bool,
        /// With a bare protocol: also write the events to FILE, one JSON line
        /// each as the appliance stores them.
        #[arg(long, value_name = "FILE")]
        dump: Option<PathBuf>,
    },
    /// Log query latency over a large index, beside bare Tantivy on the same
    /// events: term and phrase queries over 1 h, and 24 h histograms.
    Logsearch {
        /// Where the two indexes are built (kept, and reused by later runs
        /// with the same --events).
        #[arg(long)]
        dir: PathBuf,
        /// Events to index, spread over 30 hours (10M is about 3 GB of JSON).
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Query runs per shape.
        #[arg(long, default_value_t = 200)]
        queries: usize,
    },
}

fn main() -> ExitCode {
    tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve { config, data_dir } => serve(config, data_dir),
        Command::CheckConfig { file } => check_config(&file),
        Command::Bench(Bench::Carbon { to, series, rate, duration, connections, interval, prefix, wait_metric, replay, replay_points }) => {
            let replay = match replay.map(|dir| instantops::carbon::bench::load_replay(&dir, replay_points, &prefix)).transpose() {
                Ok(r) => r.map(std::sync::Arc::new),
                Err(e) => {
                    eprintln!("error: bench carbon: {e}");
                    return ExitCode::from(2);
                }
            };
            let plan = instantops::carbon::bench::Plan {
                to,
                series,
                rate,
                duration: std::time::Duration::from_secs(duration),
                connections,
                interval,
                prefix,
                wait_metric: wait_metric.and_then(|v| Some((v.first()?.clone(), v.get(1)?.clone()))),
                replay,
            };
            match instantops::carbon::bench::run(&plan) {
                Ok(report) => {
                    println!("{}", report.summary());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: bench carbon: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench(Bench::Statsd { to, rate, duration, per_packet, series, threads, prefix }) => {
            let plan = instantops::statsd::bench::Plan {
                to,
                rate,
                duration: std::time::Duration::from_secs(duration),
                per_packet,
                series,
                threads,
                prefix,
            };
            match instantops::statsd::bench::run(&plan) {
                Ok(report) => {
                    println!("{}", report.summary());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: bench statsd: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Bench(Bench::Logsearch { dir, events, queries }) => {
            match instantops::logs::searchbench::run(&instantops::logs::searchbench::Plan { dir, events, queries }) {
                Ok(lines) => {
                    for line in lines {
                        println!("{line}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: bench logsearch: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Bench(Bench::Logs { to, proto, rate, duration, connections, replay, wait_metric, timed_parse, dump }) => {
            let plan = instantops::logs::bench::Plan {
                to,
                proto,
                rate,
                duration: std::time::Duration::from_secs(duration),
                connections,
                replay,
                wait_metric: wait_metric.and_then(|v| Some((v.first()?.clone(), v.get(1)?.clone()))),
                timed_parse,
                dump,
            };
            match instantops::logs::bench::run(&plan) {
                Ok(report) => {
                    println!("{}", report.summary());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: bench logs: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Version => {
            println!("{}", version_line());
            ExitCode::SUCCESS
        }
    }
}

fn serve(file: Option<PathBuf>, data_dir: Option<PathBuf>) -> ExitCode {
    let mut config = match load(file.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(dir) = data_dir {
        config.data_dir = dir;
    }
    let log = telemetry::logging::init(&config.log);
    tracing::info!(version = instantops::VERSION, data_dir = %config.data_dir.display(), "starting");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("instantops").build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let outcome = runtime.block_on(app::run(config, log));
    // Tasks abandoned at their stop deadline must not hold the exit up.
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn check_config(file: &std::path::Path) -> ExitCode {
    match load(Some(file)) {
        Ok(_) => {
            println!("{}: ok", file.display());
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}

/// Loads the config or prints every problem to stderr and returns exit code 2.
fn load(file: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    let text = match file.map(std::fs::read_to_string).transpose() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: cannot read config file {}: {e}", file.map_or_else(String::new, |f| f.display().to_string()));
            return Err(ExitCode::from(2));
        }
    };
    let name = file.map(|f| f.display().to_string()).unwrap_or_default();
    let env = config::process_env();
    let sources = Sources { file: text.as_deref().map(|t| (name.as_str(), t)), env: &env };
    config::load(&sources).map_err(|problems| {
        for p in &problems {
            eprintln!("config error: {p}");
        }
        eprintln!(
            "{} problem{} in the config{}",
            problems.len(),
            if problems.len() == 1 { "" } else { "s" },
            if name.is_empty() { String::new() } else { format!(" {name}") }
        );
        ExitCode::from(2)
    })
}

fn version_line() -> String {
    let profile = if cfg!(debug_assertions) { "debug" } else { "release" };
    format!("instantops {} ({}-{}, {profile})", instantops::VERSION, std::env::consts::ARCH, std::env::consts::OS)
}

#[cfg(all(test, not(feature = "system-alloc")))]
mod tests {
    #[test]
    fn the_purge_delay_option_is_the_one_tuned() {
        // SAFETY: reads an option value; no preconditions. The test runs
        // alone in the process's test binary before anything sets it.
        let default = unsafe { libmimalloc_sys::mi_option_get(instantops::telemetry::alloc::PURGE_DELAY) };
        assert_eq!(default, 1000, "option 15 should be mimalloc v3's purge_delay (default 1000 ms)");
    }
}
