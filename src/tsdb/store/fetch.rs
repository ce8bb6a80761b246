//! Reads: whisper's `fetch` over the stored chunks, with the head's unflushed
//! points laid over them, for one series or all of a render's at once.

use std::sync::Arc;

use super::{FastMap, Pending, Store, archive_for_age};
use crate::tsdb::keys::SeriesId;
use crate::tsdb::schema::Policy;
use crate::tsdb::{Fetched, StoreError};

/// One series as [`Store::fetch_many`] read it from RocksDB, before the head's
/// points are laid over it.
struct Read {
    id: SeriesId,
    policy: Arc<Policy>,
    archive: usize,
    fetched: Fetched,
}

impl Store {
    /// whisper's `fetch`: `from` exclusive, `until` inclusive, the archive the
    /// finest one covering `now - from`. `None` when the range is outside the
    /// series' retention or the series does not exist.
    pub fn fetch(&self, name: &str, from: i64, until: i64, now: u32) -> Result<Option<Fetched>, StoreError> {
        Ok(self.fetch_many(&[name], from, until, now, usize::MAX)?.and_then(|mut all| all.pop().flatten()))
    }

    /// [`Store::fetch`] of each of `names`, the head's unflushed points laid
    /// over all in one pass (one a series made a 100-series sumSeries under
    /// full carbon ingest 5x slower). `None` once they pass `max_points`.
    pub fn fetch_many<N: AsRef<str>>(
        &self,
        names: &[N],
        from: i64,
        until: i64,
        now: u32,
        max_points: usize,
    ) -> Result<Option<Vec<Option<Fetched>>>, StoreError> {
        let now_i = i64::from(now);
        let (mut reads, mut points) = (Vec::with_capacity(names.len()), 0);
        for name in names {
            let read = self.read_series(name.as_ref(), from, until, now_i)?;
            points += read.as_ref().map_or(0, |r| r.fetched.values.len());
            reads.push(read);
            if points > max_points {
                return Ok(None);
            }
        }
        // The reads of each id, and a bitmap of the ids from the lowest: most
        // head points are other series' and cost one bit test.
        let mut slots: FastMap<SeriesId, Vec<usize>> = FastMap::default();
        for (i, read) in reads.iter().enumerate() {
            if let Some(read) = read {
                slots.entry(read.id).or_default().push(i);
            }
        }
        let base = slots.keys().min().copied().unwrap_or(0);
        let mut wanted = vec![0u64; slots.keys().max().map_or(0, |&id| (id - base) as usize / 64 + 1)];
        slots.keys().for_each(|&id| wanted[(id - base) as usize / 64] |= 1 << ((id - base) % 64));
        let is_wanted = |id: SeriesId| {
            id.checked_sub(base).and_then(|o| wanted.get(o as usize / 64).map(|w| w & (1 << (o % 64)) != 0)).unwrap_or(false)
        };
        // Points not yet flushed, oldest first so the later write wins.
        let (flushing, pending): (Arc<Vec<Pending>>, Vec<Pending>) = {
            let head = self.head.lock().expect("head lock poisoned");
            (head.flushing.clone(), head.pending.iter().filter(|p| is_wanted(p.id)).copied().collect())
        };
        for p in flushing.iter().filter(|p| is_wanted(p.id)).chain(pending.iter()) {
            for &i in slots.get(&p.id).into_iter().flatten() {
                let Some(Read { policy, archive, fetched: f, .. }) = &mut reads[i] else { continue };
                if archive_for_age(policy, now_i - i64::from(p.ts)) != Some(*archive) {
                    continue;
                }
                let slot = (i64::from(p.ts) - i64::from(p.ts).rem_euclid(f.step) - f.start) / f.step;
                if let Some(value) = usize::try_from(slot).ok().and_then(|slot| f.values.get_mut(slot)) {
                    *value = Some(p.value);
                }
            }
        }
        Ok(Some(reads.into_iter().map(|r| r.map(|r| r.fetched)).collect()))
    }

    /// One series' stored points for [`Store::fetch_many`], without the head.
    fn read_series(&self, name: &str, from: i64, until: i64, now_i: i64) -> Result<Option<Read>, StoreError> {
        let Some((id, policy)) = self.series(name)? else { return Ok(None) };
        let max_retention = policy.archives.iter().map(|a| a.retention() as i64).max().unwrap_or(0);
        let oldest = now_i - max_retention;
        if from > now_i || until < oldest || from > until {
            return Ok(None);
        }
        let from = from.max(oldest);
        let until = until.min(now_i);
        let Some(archive) = archive_for_age(&policy, now_i - from) else { return Ok(None) };
        let step = i64::from(policy.archives[archive].step);
        let start = from - from.rem_euclid(step) + step;
        let mut end = until - until.rem_euclid(step) + step;
        if start == end {
            end += step;
        }
        let count = ((end - start) / step) as usize;
        let mut values = vec![None; count];
        let (lo, hi) = (u32::try_from(start).unwrap_or(0), u32::try_from(end).unwrap_or(u32::MAX));
        // A chunk's slots are steps from its start, so a point's index is the
        // chunk's offset plus its slot: no division per point. `values` covers
        // exactly [lo, hi), so the index check is the range check.
        let mut fill = |offset: i64, points: &[(u32, f64)], hide: bool| {
            for &(slot, v) in points {
                if let Some(value) = usize::try_from(offset + i64::from(slot)).ok().and_then(|i| values.get_mut(i)) {
                    *value = if hide { None } else { Some(v) };
                }
            }
        };
        self.visit_chunks(id, &policy, archive as u8, lo, hi, |chunk_start, points| {
            fill((i64::from(chunk_start) - start) / step, points, false);
        })?;
        // Whisper's ring, as `read_ring` keeps it: a point whose slot a point one
        // retention later also claims is gone.
        let retention = policy.archives[archive].retention();
        let (later_lo, later_hi) = (u64::from(lo) + retention, u64::from(hi) + retention);
        if later_lo <= u64::from(u32::MAX) {
            let later_hi = later_hi.min(u64::from(u32::MAX)) as u32;
            self.visit_chunks(id, &policy, archive as u8, later_lo as u32, later_hi, |chunk_start, points| {
                fill((i64::from(chunk_start) - retention as i64 - start) / step, points, true);
            })?;
        }
        Ok(Some(Read { id, policy, archive, fetched: Fetched { start, step, values } }))
    }
}
