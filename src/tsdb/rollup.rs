//! Rollups with whisper's semantics, computed at flush time: for every finer
//! point a flush writes, the coarser window that contains it is re-aggregated
//! from the finer archive's slots, written if enough of them are known
//! (`x_files_factor`), and propagated further down only then.
//!
//! Whisper does this on every write by reading its file; here each series
//! keeps the slots of its open window per archive in memory, so in-order
//! ingest never reads the store. A window is loaded from the store only the
//! first time a series is touched after start, or for a late point.
//!
//! This module plans writes; it does not know RocksDB. The store supplies the
//! loader.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::keys::SeriesId;
use super::schema::Policy;

/// One flush's writes for one series: (archive, aligned timestamp) -> value.
pub type Writes = BTreeMap<(u8, u32), f64>;

/// What the rollups need to know of one series' stored data.
pub trait Stored {
    type Error;
    /// The stored points of `archive` in `[from, until)`, as (timestamp,
    /// value), as whisper's ring would read them (overwritten slots absent).
    fn points(&mut self, archive: u8, from: u32, until: u32) -> Result<Vec<(u32, f64)>, Self::Error>;
    /// The newest timestamp stored in `archive`, if any.
    fn newest(&mut self, archive: u8) -> Result<Option<u32>, Self::Error>;
}

/// The open rollup window of one series at one archive level.
struct Window {
    /// Start of the coarser interval these slots cover.
    start: u32,
    /// The finer archive's values in that interval; NaN = unknown (carbon
    /// drops NaN on ingest, so no stored value is NaN).
    slots: Box<[f64]>,
    /// The newest finer timestamp ever written in this process, or `None`
    /// until the store's history is known. A window starting after it cannot
    /// have stored data, so it needs no read.
    finer_high_water: Option<u32>,
}

/// Every series' open windows, owned by the flusher.
#[derive(Default)]
pub struct Windows {
    open: HashMap<(SeriesId, u8), Window>,
    /// What `open` holds, estimated.
    bytes: usize,
}

/// A window's cost beyond its slots: the map entry and the slots' allocation.
const WINDOW_BYTES: usize = 64;

fn window_bytes(slots: usize) -> usize {
    WINDOW_BYTES + slots * std::mem::size_of::<f64>()
}

impl Windows {
    /// What a newly created series' windows will hold, estimated.
    pub fn cost(policy: &Policy) -> usize {
        (1..policy.archives.len()).map(|level| window_bytes(slot_count(policy, level))).sum()
    }

    /// What the open windows hold, estimated.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops the windows of the series `forget` picks; a later write to one
    /// reads its window back from the stored points.
    pub fn forget(&mut self, forget: impl Fn(SeriesId) -> bool) {
        let bytes = &mut self.bytes;
        self.open.retain(|(id, _), window| {
            let keep = !forget(*id);
            if !keep {
                *bytes -= window_bytes(window.slots.len());
            }
            keep
        });
    }

    /// Marks a series as created in this process: nothing of it is stored yet.
    pub fn created(&mut self, id: SeriesId, policy: &Policy) {
        for level in 1..policy.archives.len() {
            let slots = slot_count(policy, level);
            let window = Window { start: 0, slots: vec![f64::NAN; slots].into(), finer_high_water: Some(0) };
            if let Some(old) = self.open.insert((id, level as u8), window) {
                self.bytes -= window_bytes(old.slots.len());
            }
            self.bytes += window_bytes(slots);
        }
    }

    /// Adds to `writes` the rollups its finer writes cause, level by level.
    pub fn propagate<S: Stored>(&mut self, id: SeriesId, policy: &Policy, writes: &mut Writes, stored: &mut S) -> Result<(), S::Error> {
        // whisper keeps xFilesFactor as a 32-bit float in its header and
        // compares the known fraction with that value.
        let xff = f64::from(policy.x_files_factor as f32);
        for level in 1..policy.archives.len() {
            let finer = (level - 1) as u8;
            let step = policy.archives[level].step;
            let finer_step = policy.archives[level - 1].step;
            let touched: BTreeSet<u32> = writes.range((finer, 0)..=(finer, u32::MAX)).map(|((_, ts), _)| ts - ts % step).collect();
            for start in touched {
                let slots = slot_count(policy, level);
                let bytes = &mut self.bytes;
                let window = self.open.entry((id, level as u8)).or_insert_with(|| {
                    *bytes += window_bytes(slots);
                    Window { start: u32::MAX, slots: vec![f64::NAN; slots].into(), finer_high_water: None }
                });
                if window.finer_high_water.is_none() {
                    // First touch since start: learn how far the stored data goes.
                    window.finer_high_water = Some(stored.newest(finer)?.unwrap_or(0));
                }
                if window.start != start {
                    window.slots.fill(f64::NAN);
                    let stored_may_exist = window.finer_high_water.is_none_or(|hw| start <= hw);
                    if stored_may_exist {
                        for (ts, v) in stored.points(finer, start, start + step)? {
                            if let Some(slot) = window.slots.get_mut(((ts - start) / finer_step) as usize) {
                                *slot = v;
                            }
                        }
                    }
                    window.start = start;
                }
                let mut newest = 0;
                for ((_, ts), v) in writes.range((finer, start)..(finer, start + step)) {
                    window.slots[((ts - start) / finer_step) as usize] = *v;
                    newest = newest.max(*ts);
                }
                // whisper's ring: a slot this batch gave to the interval one
                // retention earlier or later no longer holds this interval.
                let ring = policy.archives[level - 1].retention();
                for (i, slot) in window.slots.iter_mut().enumerate() {
                    let ts = u64::from(start) + i as u64 * u64::from(finer_step);
                    let retaken = |t: u64| u32::try_from(t).is_ok_and(|t| writes.contains_key(&(finer, t)));
                    if !slot.is_nan()
                        && !writes.contains_key(&(finer, ts as u32))
                        && (retaken(ts + ring) || ts.checked_sub(ring).is_some_and(retaken))
                    {
                        *slot = f64::NAN;
                    }
                }
                window.finer_high_water = Some(window.finer_high_water.map_or(newest, |hw| hw.max(newest)));
                let known: Vec<f64> = window.slots.iter().copied().filter(|v| !v.is_nan()).collect();
                if !known.is_empty() && known.len() as f64 / window.slots.len() as f64 >= xff {
                    writes.insert((level as u8, start), policy.method.fold(&known, window.slots.len()));
                }
            }
        }
        Ok(())
    }
}

fn slot_count(policy: &Policy, level: usize) -> usize {
    (policy.archives[level].step / policy.archives[level - 1].step) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::schema::{Archive, Method};

    fn policy(method: Method, xff: f64) -> Policy {
        Policy {
            archives: vec![Archive { step: 10, points: 60 }, Archive { step: 60, points: 60 }, Archive { step: 600, points: 60 }],
            method,
            x_files_factor: xff,
        }
    }

    /// Stored data for the tests: a list of (archive, ts, value), and a log of reads.
    #[derive(Default)]
    struct Fake {
        points: Vec<(u8, u32, f64)>,
        reads: Vec<(u8, u32, u32)>,
        forbid: bool,
    }

    impl Stored for Fake {
        type Error = ();
        fn points(&mut self, archive: u8, from: u32, until: u32) -> Result<Vec<(u32, f64)>, ()> {
            assert!(!self.forbid, "no read expected, got {archive} {from}..{until}");
            self.reads.push((archive, from, until));
            Ok(self.points.iter().filter(|(a, ts, _)| *a == archive && (from..until).contains(ts)).map(|(_, ts, v)| (*ts, *v)).collect())
        }
        fn newest(&mut self, archive: u8) -> Result<Option<u32>, ()> {
            Ok(self.points.iter().filter(|(a, _, _)| *a == archive).map(|(_, ts, _)| *ts).max())
        }
    }

    fn run(policy: &Policy, points: &[(u32, f64)]) -> Writes {
        let mut windows = Windows::default();
        windows.created(1, policy);
        let mut writes: Writes = points.iter().map(|(ts, v)| ((0, *ts), *v)).collect();
        windows.propagate(1, policy, &mut writes, &mut Fake { forbid: true, ..Fake::default() }).expect("no errors");
        writes
    }

    #[test]
    fn three_of_six_known_passes_half_xff() {
        let w = run(&policy(Method::Average, 0.5), &[(600, 1.0), (610, 2.0), (620, 3.0)]);
        assert_eq!(w.get(&(1, 600)), Some(&2.0));
        // One 60 s value of ten is below 0.5: no 600 s rollup, and nothing further.
        assert_eq!(w.get(&(2, 600)), None);
    }

    #[test]
    fn two_of_six_stops_propagation() {
        let w = run(&policy(Method::Average, 0.5), &[(600, 1.0), (610, 2.0)]);
        assert_eq!(w.get(&(1, 600)), None);
    }

    #[test]
    fn avg_zero_counts_unknown_as_zero() {
        let w = run(&policy(Method::AvgZero, 0.5), &[(600, 1.0), (610, 2.0), (620, 3.0)]);
        assert_eq!(w.get(&(1, 600)), Some(&1.0));
    }

    #[test]
    fn last_is_latest_in_time_not_in_arrival() {
        let p = policy(Method::Last, 0.0);
        let mut windows = Windows::default();
        windows.created(1, &p);
        let mut writes: Writes = [((0, 650), 9.0), ((0, 600), 1.0)].into_iter().collect();
        windows.propagate(1, &p, &mut writes, &mut Fake::default()).expect("ok");
        assert_eq!(writes.get(&(1, 600)), Some(&9.0));
    }

    #[test]
    fn xff_compares_like_whisper_with_a_32_bit_factor() {
        // 1 of 10 known is 0.1, below 0.1 as a 32-bit float (0.10000000149...).
        let p = Policy {
            archives: vec![Archive { step: 1, points: 100 }, Archive { step: 10, points: 100 }],
            method: Method::Sum,
            x_files_factor: 0.1,
        };
        let mut windows = Windows::default();
        windows.created(1, &p);
        let mut writes: Writes = [((0, 100), 5.0)].into_iter().collect();
        windows.propagate(1, &p, &mut writes, &mut Fake::default()).expect("ok");
        assert_eq!(writes.get(&(1, 100)), None);
    }

    #[test]
    fn a_series_seen_first_after_restart_loads_its_window_once() {
        let p = policy(Method::Sum, 0.0);
        let mut windows = Windows::default();
        let mut stored = Fake { points: vec![(0, 600, 5.0)], ..Fake::default() };
        let mut writes: Writes = [((0, 620), 1.0)].into_iter().collect();
        windows.propagate(1, &p, &mut writes, &mut stored).expect("ok");
        assert_eq!(writes.get(&(1, 600)), Some(&6.0), "stored 5 + new 1");
        // The 10-minute window needs no read: nothing is stored in the minute archive.
        assert_eq!(stored.reads, vec![(0, 600, 660)]);
        // The next window of the same series is newer than anything stored.
        let mut writes: Writes = [((0, 660), 2.0)].into_iter().collect();
        windows.propagate(1, &p, &mut writes, &mut Fake { forbid: true, ..Fake::default() }).expect("ok");
        assert_eq!(writes.get(&(1, 660)), Some(&2.0));
    }

    #[test]
    fn a_late_point_after_restart_does_not_hide_stored_newer_windows() {
        // Regression: the high-water mark came from the first (late) window
        // touched, so a newer window with stored points skipped its read.
        let p = policy(Method::Average, 0.0);
        let mut windows = Windows::default();
        let mut stored = Fake { points: vec![(0, 700, 1.0)], ..Fake::default() };
        let mut writes: Writes = [((0, 610), 5.0), ((0, 710), 3.0)].into_iter().collect();
        windows.propagate(1, &p, &mut writes, &mut stored).expect("ok");
        assert_eq!(writes.get(&(1, 660)), Some(&2.0), "(3 + stored 1) / 2");
    }
}
