//! The process's memory budget: the configured limit, the fixed shares handed
//! to subsystems (RocksDB caches, the log indexer's heap, statsd's maps), and
//! the resident set size as the kernel reports it.
//!
//! Shares are decided once at start; this module records them so `/api/status`
//! can show where the budget went. Each share's owner keeps within it (the
//! stores evict or refuse, the queues push back). The governor is the
//! backstop for what no share covers (allocator slack, thread stacks, mapped
//! index files): it samples the resident set every 100 ms, and above
//! [`PRESSURE`] of the limit it raises the pressure flag, under which every
//! ingest path sheds load as it would when its own queue is full (TCP stops
//! reading, HTTP answers 429, RESP an error, carbon and log UDP drop and
//! count; statsd's maps are bounded by their share and it is not shed), until
//! the resident set is back under [`RELIEF`]. It also sets how long the
//! allocator keeps freed pages: [`SLACK_DELAY_MS`] while the resident set is
//! under [`ROOMY`] of the limit (taking pages back costs page faults: 8 %
//! of the CPU under syslog ingest), none from [`TIGHT`] on.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use super::registry::{Counter, Registry};

/// The fraction of the limit above which ingest is shed.
pub const PRESSURE: f64 = 0.80;
/// The fraction of the limit below which shedding stops.
pub const RELIEF: f64 = 0.75;
/// The fraction of the limit under which mimalloc may keep freed pages for
/// [`SLACK_DELAY_MS`] before returning them...
pub const ROOMY: f64 = 0.45;
/// ...and above which it returns them at once.
pub const TIGHT: f64 = 0.55;
/// How long freed pages wait while there is room: syslog ingest ran 9 %
/// faster than at 0 with a peak resident set ~30 MiB higher (430-443
/// against 404-411 MiB; 1000 ms: the same speed, 470-496 MiB). Measured
/// with transparent huge pages still on.
pub const SLACK_DELAY_MS: i64 = 100;
/// Taken off the limit before it is shared out: what the process holds at
/// any load (code and data pages of the binary, thread stacks, the
/// runtimes, the log index's mapped files a search touches). Measured idle
/// at 50 MiB resident, and 25-35 MiB of mapped index under a search load.
pub const RESERVE: u64 = 64 << 20;
/// How often the governor samples the resident set.
const SAMPLE: Duration = Duration::from_millis(100);

/// Reads what one owner's subsystems hold now: (subsystem, bytes).
type Probe = Box<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;
/// Gives back what an owner can spare (caches, idle state) under pressure,
/// with whether it is running now.
struct Reliever {
    relieve: Arc<dyn Fn() + Send + Sync>,
    running: Arc<AtomicBool>,
}

/// The budget, shared by clone.
#[derive(Clone)]
pub struct Budget {
    limit: u64,
    shares: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    probes: Arc<Mutex<Vec<Probe>>>,
    relievers: Arc<Mutex<Vec<Reliever>>>,
    pressure: Arc<AtomicBool>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").field("limit", &self.limit).field("shares", &self.shares()).finish()
    }
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget { limit, shares: Arc::default(), probes: Arc::default(), relievers: Arc::default(), pressure: Arc::default() }
    }

    /// True while the resident set is near the limit: ingest sheds load.
    pub fn under_pressure(&self) -> bool {
        self.pressure.load(Ordering::Relaxed)
    }

    /// The flag the ingest paths read, for owners that outlive a borrow.
    pub fn pressure_flag(&self) -> Arc<AtomicBool> {
        self.pressure.clone()
    }

    /// Registers what an owner gives back under pressure: called when the
    /// pressure flag rises and every second while it stays up, on a thread
    /// of its own, and not again while a call is still running.
    pub fn on_pressure(&self, relieve: impl Fn() + Send + Sync + 'static) {
        let reliever = Reliever { relieve: Arc::new(relieve), running: Arc::default() };
        self.relievers.lock().expect("budget lock poisoned").push(reliever);
    }

    /// Starts every reliever not already running. Each runs apart, so one
    /// that waits (the tsdb's waits for a running flush) holds back neither
    /// the others nor the governor's sampling.
    fn relieve(&self) {
        for reliever in self.relievers.lock().expect("budget lock poisoned").iter() {
            if reliever.running.swap(true, Ordering::AcqRel) {
                continue;
            }
            let (relieve, running) = (reliever.relieve.clone(), reliever.running.clone());
            let spawned = std::thread::Builder::new().name("memory-relief".into()).spawn(move || {
                relieve();
                running.store(false, Ordering::Release);
            });
            if spawned.is_err() {
                reliever.running.store(false, Ordering::Release);
                tracing::warn!("cannot start a memory reliever's thread");
            }
        }
    }

    /// Samples the resident set until `stop`, raising and lowering the
    /// pressure flag, and asking the owners to give back what they can
    /// spare while it is up.
    pub fn govern(&self, registry: &Registry, stop: &watch::Receiver<bool>) {
        let episodes: Counter = registry.counter(
            "instantops_memory_pressure_total",
            "Times the resident set reached the pressure mark of memory.limit and ingest began to shed.",
            &[],
        );
        let (high, low) = ((self.limit as f64 * PRESSURE) as u64, (self.limit as f64 * RELIEF) as u64);
        let mut relieved = std::time::Instant::now();
        // The process starts returning freed pages at once (main's tuning).
        let mut roomy = false;
        crate::schedule::every(SAMPLE, stop, || {
            let rss = rss_bytes();
            let room = has_room(rss, self.limit, roomy);
            if room != roomy {
                roomy = room;
                super::alloc::set_purge_delay(if room { SLACK_DELAY_MS } else { 0 });
            }
            let pressed = self.under_pressure();
            if !pressed && rss > high {
                self.pressure.store(true, Ordering::Relaxed);
                episodes.inc();
                tracing::warn!(rss, limit = self.limit, "memory pressure: shedding ingest");
                self.relieve();
                relieved = std::time::Instant::now();
            } else if pressed && rss >= low && relieved.elapsed() >= Duration::from_secs(1) {
                self.relieve();
                relieved = std::time::Instant::now();
            } else if pressed && rss < low {
                self.pressure.store(false, Ordering::Relaxed);
                tracing::info!(rss, limit = self.limit, "memory pressure over");
            }
        });
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// What the shares are fractions of: the limit less [`RESERVE`] (a
    /// quarter of limits under 256 MiB) for what no share covers.
    pub fn shareable(&self) -> u64 {
        self.limit - RESERVE.min(self.limit / 4)
    }

    /// Grants `subsystem` a fixed `fraction` of [`Budget::shareable`] and
    /// records it.
    pub fn share(&self, subsystem: &'static str, fraction: f64) -> u64 {
        let bytes = (self.shareable() as f64 * fraction.clamp(0.0, 1.0)) as u64;
        self.shares.lock().expect("budget lock poisoned").insert(subsystem, bytes);
        bytes
    }

    /// Registers how to read what an owner's subsystems use now; one probe
    /// per owner, so that one read serves all its subsystems.
    pub fn track(&self, probe: impl Fn() -> Vec<(&'static str, u64)> + Send + Sync + 'static) {
        self.probes.lock().expect("budget lock poisoned").push(Box::new(probe));
    }

    /// What every tracked subsystem uses now, by subsystem.
    pub fn used(&self) -> BTreeMap<&'static str, u64> {
        self.probes.lock().expect("budget lock poisoned").iter().flat_map(|probe| probe()).collect()
    }

    /// Every share granted so far, by subsystem.
    pub fn shares(&self) -> BTreeMap<&'static str, u64> {
        self.shares.lock().expect("budget lock poisoned").clone()
    }
}

/// Whether the allocator may keep freed pages a while: under [`ROOMY`] of the
/// limit it may, from [`TIGHT`] on it may not, and in between it keeps what
/// it had (`roomy`), so a resident set near one mark does not flip it each
/// sample.
fn has_room(rss: u64, limit: u64, roomy: bool) -> bool {
    let share = rss as f64 / limit.max(1) as f64;
    if roomy { share < TIGHT } else { share < ROOMY }
}

/// The resident set size in bytes, from /proc/self/status (0 where unavailable).
pub fn rss_bytes() -> u64 {
    rss_of("self")
}

/// The resident set size of process `pid` ("self" for this one), from
/// /proc/<pid>/status (0 where unavailable).
pub fn rss_of(pid: &str) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else { return 0 };
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rss_is_read() {
        assert!(rss_bytes() > 1 << 20, "a test process has more than 1 MiB resident");
    }

    #[test]
    fn a_reliever_that_waits_holds_back_neither_the_others_nor_itself_twice() {
        let b = Budget::new(1000);
        let gate = Arc::new(Mutex::new(()));
        let held = gate.lock().expect("gate");
        let (started, first) = std::sync::mpsc::channel();
        let (ran, second) = std::sync::mpsc::channel();
        let (waiting, started) = (gate.clone(), Mutex::new(started));
        b.on_pressure(move || {
            started.lock().expect("tx").send(()).expect("send");
            drop(waiting.lock().expect("gate"));
        });
        let ran = Mutex::new(ran);
        b.on_pressure(move || ran.lock().expect("tx").send(()).expect("send"));
        b.relieve();
        first.recv_timeout(Duration::from_secs(10)).expect("the first reliever started");
        second.recv_timeout(Duration::from_secs(10)).expect("the second ran while the first waits");
        // Called again (as the governor does every second) until the second
        // has run once more: the first, still waiting, is not started again.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            b.relieve();
            if second.recv_timeout(Duration::from_millis(20)).is_ok() {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the second reliever did not run again");
        }
        assert!(first.try_recv().is_err(), "the waiting reliever was started twice");
        drop(held);
    }

    #[test]
    fn freed_pages_wait_only_while_there_is_room() {
        let limit = 1000;
        assert!(has_room(100, limit, false), "far under the limit");
        assert!(!has_room(500, limit, false), "between the marks: stays tight");
        assert!(has_room(500, limit, true), "between the marks: stays roomy");
        assert!(!has_room(600, limit, true), "past the tight mark");
        assert!(has_room(0, 0, false), "a zero limit does not divide by zero");
    }

    #[test]
    fn shares_are_recorded() {
        let b = Budget::new(1000);
        assert_eq!(b.share("tsdb", 0.25), 187, "a quarter of a small limit is reserved");
        assert_eq!(b.shares().get("tsdb"), Some(&187));
        let b = Budget::new(1 << 30);
        assert_eq!(b.share("tsdb", 0.5), (1 << 29) - (32 << 20), "64 MiB of a large limit is reserved");
    }
}
