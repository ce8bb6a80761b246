//! The process's memory budget: the configured limit, the fixed shares handed
//! to subsystems (RocksDB caches, the log indexer's heap, statsd's maps), and
//! the resident set size as the kernel reports it.
//!
//! Shares are decided once at start; this module records them so `/api/status`
//! can show where the budget went. Enforcement lives with each share's owner.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Reads what one owner's subsystems hold now: (subsystem, bytes).
type Probe = Box<dyn Fn() -> Vec<(&'static str, u64)> + Send + Sync>;

/// The budget, shared by clone.
#[derive(Clone)]
pub struct Budget {
    limit: u64,
    shares: Arc<Mutex<BTreeMap<&'static str, u64>>>,
    probes: Arc<Mutex<Vec<Probe>>>,
}

impl std::fmt::Debug for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Budget").field("limit", &self.limit).field("shares", &self.shares()).finish()
    }
}

impl Budget {
    pub fn new(limit: u64) -> Budget {
        Budget { limit, shares: Arc::default(), probes: Arc::default() }
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Grants `subsystem` a fixed `fraction` of the limit and records it.
    pub fn share(&self, subsystem: &'static str, fraction: f64) -> u64 {
        let bytes = (self.limit as f64 * fraction.clamp(0.0, 1.0)) as u64;
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

/// The resident set size in bytes, from /proc/self/status (0 where unavailable).
pub fn rss_bytes() -> u64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else { return 0 };
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
    fn shares_are_recorded() {
        let b = Budget::new(1000);
        assert_eq!(b.share("tsdb", 0.25), 250);
        assert_eq!(b.shares().get("tsdb"), Some(&250));
    }
}
