//! What the process's two allocators hold, as they count it: mimalloc (every
//! Rust allocation of the appliance binary) and glibc's malloc (RocksDB's
//! C++). The owners' probes (`memory.rs`) estimate what each subsystem keeps;
//! these are the allocators' own totals, live data and slack together, read
//! for `/api/status` (`memory.allocators`). It also sets how long mimalloc
//! keeps freed pages before it gives them back to the kernel, which the
//! memory governor moves with the room left under the limit.

use serde::Serialize;

/// Bytes by allocator.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Allocators {
    /// mimalloc's own count of the read/write memory it has mapped (live
    /// blocks, free blocks, and purged pages it keeps mapped, so it can exceed
    /// the resident set). Near 0 in builds without it (tests,
    /// `--features system-alloc`).
    pub mimalloc_committed: u64,
    /// What glibc's malloc has handed out and not had back.
    pub malloc_in_use: u64,
    /// What glibc's malloc holds free in its arenas (resident or not).
    pub malloc_free: u64,
    /// How long mimalloc keeps freed pages before it returns them (ms).
    pub mimalloc_purge_delay_ms: i64,
}

/// `mi_option_purge_delay` in mimalloc v3's mimalloc.h (the crate does not
/// name it); the binary's tests check it is the option whose default is
/// 1000 ms.
pub const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets how long mimalloc keeps freed pages before returning them to the
/// kernel: 0 gives them back at once (the resident set follows what is
/// live), longer saves the page faults of taking them back (8 % of the
/// CPU under syslog ingest at 0, in `perf`).
pub fn set_purge_delay(ms: i64) {
    // SAFETY: mi_option_set stores an option value (a word, read anew at
    // each purge); it has no preconditions.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, ms as std::os::raw::c_long) }
}

// c_long is i64 only on 64-bit targets.
#[allow(clippy::useless_conversion)]
pub fn purge_delay() -> i64 {
    // SAFETY: reads an option value; no preconditions.
    i64::from(unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) })
}

pub fn read() -> Allocators {
    let (mut elapsed, mut user, mut system, mut rss, mut peak_rss, mut commit, mut peak_commit, mut faults) = (0, 0, 0, 0, 0, 0, 0, 0);
    // SAFETY: mi_process_info only writes through the pointers it is given,
    // each a valid, exclusive local.
    unsafe {
        libmimalloc_sys::mi_process_info(
            &mut elapsed,
            &mut user,
            &mut system,
            &mut rss,
            &mut peak_rss,
            &mut commit,
            &mut peak_commit,
            &mut faults,
        );
    }
    // SAFETY: mallinfo2 takes no arguments and returns glibc's counters by value.
    let info = unsafe { libc::mallinfo2() };
    Allocators {
        mimalloc_committed: commit as u64,
        malloc_in_use: info.uordblks as u64,
        malloc_free: info.fordblks as u64,
        mimalloc_purge_delay_ms: purge_delay(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn glibc_counts_what_it_hands_out() {
        // The test binary's Rust allocations go through glibc's malloc; small
        // blocks come from its arenas (large ones would be mmapped apart).
        let before = super::read().malloc_in_use;
        let held: Vec<Vec<u8>> = (0..10_000).map(|i| vec![i as u8; 1024]).collect();
        let after = super::read().malloc_in_use;
        assert!(after.saturating_sub(before) >= 5 << 20, "10 MB of 1 KB blocks held, malloc_in_use {before} -> {after}");
        drop(held);
    }
}
