//! Who holds the Rust heap, as the allocator counts it: the process's global
//! allocator is mimalloc with one heap per [`Account`], and every block is
//! counted against the account whose heap it came from until it is freed,
//! on whatever thread that happens. `/api/status` shows the totals
//! (`memory.accounts`) beside the owners' own estimates (`memory.used`) and
//! the allocators' totals (`memory.allocators`).
//!
//! Which account a block goes to is decided where it is allocated: code that
//! works for a subsystem says so with [`enter`] or [`within`] (the tsdb's
//! store calls, statsd's aggregator lock, the log pipeline, the query
//! handlers, the TCP inputs' connections), and a thread that no code marked
//! takes the account of its name (Tantivy's indexing, merging and doc-store
//! threads are the log index's). A block keeps its account when it is
//! reallocated, so a vector that grows stays with its owner.
//!
//! What is counted is the bytes asked for, not mimalloc's size classes: the
//! accounts add up to the live Rust heap, and `allocators.mimalloc_committed`
//! minus that sum is the allocator's slack. RocksDB's C++ allocates through
//! glibc's malloc and is not here (its caches and memtables report
//! themselves in `memory.used`).
//!
//! Counting costs one thread-local add per allocation and a page lookup
//! (`mi_heap_of`) per free: each thread adds into a slot of its own, and a
//! reader sums the slots.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ffi::c_void;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicPtr, Ordering};

use libmimalloc_sys as mi;

/// What a block of the Rust heap is held for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Account {
    /// Everything not marked: the runtimes, network buffers, HTTP, the
    /// config, alerting, the dashboards.
    Other = 0,
    /// The time-series store's Rust side: series maps, the head, rollup
    /// windows, the decoded-chunk cache, flush buffers.
    Tsdb = 1,
    /// statsd's aggregation: the maps of the current interval and a flush's
    /// vectors.
    Statsd = 2,
    /// Log ingest and the log index: parsed events, the WAL's buffers, the
    /// backlog, Tantivy's writer heap, merges and doc-store compression.
    Logs = 3,
    /// Graphite renders and log searches while they run.
    Queries = 4,
}

const COUNT: usize = 5;

impl Account {
    pub const ALL: [Account; COUNT] = [Account::Other, Account::Tsdb, Account::Statsd, Account::Logs, Account::Queries];

    pub fn name(self) -> &'static str {
        match self {
            Account::Other => "other",
            Account::Tsdb => "tsdb",
            Account::Statsd => "statsd",
            Account::Logs => "logs",
            Account::Queries => "queries",
        }
    }
}

/// The account a thread's allocations go to until [`enter`] says otherwise:
/// by the thread's name (as the kernel keeps it: 15 bytes), for threads that
/// libraries start on a subsystem's behalf.
fn account_of_thread_name(name: &[u8]) -> Account {
    const LOGS: [&[u8]; 5] = [b"thrd-tantivy-", b"merge_thread_", b"segment_updater", b"docstore-compre", b"logs-"];
    if LOGS.iter().any(|prefix| name.starts_with(prefix)) { Account::Logs } else { Account::Other }
}

/// The global allocator: mimalloc, with the blocks of each account in a
/// heap of their own.
pub struct Accounted;

// SAFETY: every method hands the request to mimalloc with the layout's size
// and alignment (the same calls `mimalloc::MiMalloc` makes, through a heap
// for the marked accounts: mimalloc v3's heaps allocate on any thread and
// their blocks are freed by `mi_free` on any thread), and only adds to
// counters besides.
unsafe impl GlobalAlloc for Accounted {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        allocate(layout, false)
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        allocate(layout, true)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` is a live block of this allocator (GlobalAlloc's contract).
        let account = unsafe { owner(ptr) };
        // SAFETY: as above; mimalloc frees a block of any heap from any thread.
        unsafe { mi::mi_free(ptr.cast()) };
        add(account, -(layout.size() as i64));
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` is a live block of this allocator with this layout
        // (GlobalAlloc's contract); the new block comes from the same heap.
        let (account, p) = unsafe {
            let account = owner(ptr);
            let p = match account {
                0 => mi::mi_realloc_aligned(ptr.cast(), new_size, layout.align()),
                a => mi::mi_heap_realloc_aligned(heap(a), ptr.cast(), new_size, layout.align()),
            };
            (account, p)
        };
        if !p.is_null() {
            add(account, new_size as i64 - layout.size() as i64);
        }
        p.cast()
    }
}

/// A new block for the calling thread's account, counted.
#[inline]
fn allocate(layout: Layout, zeroed: bool) -> *mut u8 {
    let account = current();
    let (size, align) = (layout.size(), layout.align());
    // SAFETY: plain mimalloc allocations; a heap from `heap` is valid for the process's life.
    let p = unsafe {
        match (account, zeroed) {
            (0, false) => mi::mi_malloc_aligned(size, align),
            (0, true) => mi::mi_zalloc_aligned(size, align),
            (a, false) => mi::mi_heap_malloc_aligned(heap(a), size, align),
            (a, true) => mi::mi_heap_zalloc_aligned(heap(a), size, align),
        }
    };
    if !p.is_null() {
        add(account, size as i64);
    }
    p.cast()
}

/// Marks the calling thread's allocations as `account`'s until the guard is
/// dropped (which restores the account before).
pub fn enter(account: Account) -> Entered {
    let before = current();
    set_current(account as usize);
    Entered { before }
}

/// Runs `f` with the calling thread's allocations marked as `account`'s.
pub fn within<R>(account: Account, f: impl FnOnce() -> R) -> R {
    let _entered = enter(account);
    f()
}

/// See [`enter`].
#[must_use = "the account is left when the guard is dropped"]
pub struct Entered {
    before: usize,
}

impl Drop for Entered {
    fn drop(&mut self) {
        set_current(self.before);
    }
}

/// Live bytes by account, as the allocator counted them; all zero in
/// processes whose global allocator is not [`Accounted`] (the library's
/// unit tests, `--features system-alloc`).
pub fn held() -> [(Account, u64); COUNT] {
    let mut sums = [0i64; COUNT];
    for slot in SLOTS.iter().chain(std::iter::once(&SHARED)) {
        for (sum, held) in sums.iter_mut().zip(&slot.held) {
            *sum += held.load(Ordering::Relaxed);
        }
    }
    // A reader can see a free before the allocation it undoes (two slots
    // read at different moments): never report less than nothing.
    std::array::from_fn(|i| (Account::ALL[i], sums[i].max(0) as u64))
}

/// Whether this process allocates through [`Accounted`] (it has counted
/// at least one block).
pub fn active() -> bool {
    ACTIVE.load(Ordering::Relaxed)
}

// --- the thread's account and counter slot -------------------------------

/// Not decided yet: the thread's name decides at its first allocation.
const UNSET: u8 = u8::MAX;

/// What the allocator keeps per thread: both in one constant-initialized
/// thread-local without a destructor, so reading it is a plain load.
struct Local {
    account: Cell<u8>,
    /// The thread's counter slot: null until its first count, [`SHARED`]
    /// when it has none (all taken, or given back at the thread's end).
    slot: Cell<*const Slot>,
}

thread_local! {
    static LOCAL: Local = const { Local { account: Cell::new(UNSET), slot: Cell::new(std::ptr::null()) } };
    // Only its destructor matters: it gives the slot back. Touched once, when
    // the slot is taken; registering the destructor goes through glibc
    // (`__cxa_thread_atexit_impl`), not this allocator.
    static RELEASE: Release = const { Release };
}

#[inline]
fn current() -> usize {
    LOCAL.with(|local| match local.account.get() {
        UNSET => {
            let account = account_of_thread_name(&thread_name()) as u8;
            local.account.set(account);
            account as usize
        }
        a => a as usize,
    })
}

fn set_current(account: usize) {
    LOCAL.with(|local| local.account.set(account as u8));
}

/// The calling thread's name as the kernel keeps it (without allocating).
fn thread_name() -> [u8; 16] {
    let mut name = [0u8; 16];
    // SAFETY: the buffer is 16 bytes, the size the call is given; the
    // kernel's names are at most 15 bytes and a NUL.
    unsafe { libc::pthread_getname_np(libc::pthread_self(), name.as_mut_ptr().cast(), name.len()) };
    name
}

// --- the heaps ----------------------------------------------------------------

/// One heap per marked account, made at its first allocation; index 0
/// (`Other`) stays null: those blocks come from mimalloc's main heap.
static HEAPS: [AtomicPtr<mi::mi_heap_t>; COUNT] = [const { AtomicPtr::new(std::ptr::null_mut()) }; COUNT];

unsafe extern "C" {
    /// mimalloc v3: the heap a block belongs to (null for a pointer it does
    /// not own). Not in libmimalloc-sys's bindings.
    fn mi_heap_of(p: *const c_void) -> *mut mi::mi_heap_t;
}

#[inline]
fn heap(account: usize) -> *mut mi::mi_heap_t {
    let heap = HEAPS[account].load(Ordering::Acquire);
    if !heap.is_null() {
        return heap;
    }
    // SAFETY: mi_heap_new has no preconditions; the loser of a race deletes
    // its heap before allocating from it.
    unsafe {
        let made = mi::mi_heap_new();
        match HEAPS[account].compare_exchange(std::ptr::null_mut(), made, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => made,
            Err(theirs) => {
                mi::mi_heap_delete(made);
                theirs
            }
        }
    }
}

/// The account of a live block: that of its heap.
///
/// # Safety
/// `ptr` is a live block of mimalloc's.
#[inline]
unsafe fn owner(ptr: *mut u8) -> usize {
    // SAFETY: the caller's; mi_heap_of only reads mimalloc's page map.
    let heap = unsafe { mi_heap_of(ptr.cast()) };
    let is = |a: usize| HEAPS[a].load(Ordering::Relaxed) == heap;
    if is(1) {
        1
    } else if is(2) {
        2
    } else if is(3) {
        3
    } else if is(4) {
        4
    } else {
        0
    }
}

// --- the counters -------------------------------------------------------------

/// One thread's counts. A slot is written by the one thread holding it
/// (a load and a store, no atomic add); a thread that ends gives it back
/// with its counts in it, and the next thread to take it adds on.
#[repr(align(64))]
struct Slot {
    held: [AtomicI64; COUNT],
    taken: AtomicBool,
}

impl Slot {
    const fn new() -> Slot {
        Slot { held: [const { AtomicI64::new(0) }; COUNT], taken: AtomicBool::new(false) }
    }
}

const SLOT_COUNT: usize = 256;
static SLOTS: [Slot; SLOT_COUNT] = [const { Slot::new() }; SLOT_COUNT];
/// For threads past [`SLOT_COUNT`], and for allocations during a thread's
/// teardown after its slot went back: atomic adds.
static SHARED: Slot = Slot::new();
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Gives the thread's slot back when the thread ends.
struct Release;

impl Drop for Release {
    fn drop(&mut self) {
        let _ = LOCAL.try_with(|local| {
            let slot = local.slot.replace(&SHARED);
            if !std::ptr::eq(slot, &SHARED) && !slot.is_null() {
                // SAFETY: a non-null slot pointer other than SHARED points into SLOTS.
                unsafe { &*slot }.taken.store(false, Ordering::Release);
            }
        });
    }
}

/// Takes a free slot for the calling thread, or [`SHARED`].
#[cold]
fn claim(local: &Local) -> &'static Slot {
    ACTIVE.store(true, Ordering::Relaxed);
    // Without a destructor to give it back (the thread is ending), no slot.
    if RELEASE.try_with(|_| ()).is_err() {
        local.slot.set(&SHARED);
        return &SHARED;
    }
    // Acquire pairs with the Release of the thread that gave it back, so
    // this thread's first load sees that thread's last store.
    let slot = SLOTS.iter().find(|s| !s.taken.swap(true, Ordering::Acquire)).unwrap_or(&SHARED);
    local.slot.set(slot);
    slot
}

#[inline]
fn add(account: usize, bytes: i64) {
    LOCAL.with(|local| {
        let slot = local.slot.get();
        // SAFETY: a non-null slot pointer points at SHARED or into SLOTS, statics.
        let slot = if slot.is_null() { claim(local) } else { unsafe { &*slot } };
        let held = &slot.held[account];
        if std::ptr::eq(slot, &SHARED) {
            held.fetch_add(bytes, Ordering::Relaxed);
        } else {
            held.store(held.load(Ordering::Relaxed) + bytes, Ordering::Relaxed);
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The library's tests allocate through the system allocator; these call
    // `Accounted` directly, each on an account no other test here uses at
    // the same time (the counts are the process's).

    fn held_by(account: Account) -> u64 {
        held()[account as usize].1
    }

    #[test]
    fn a_block_counts_for_the_account_it_was_made_in_until_any_thread_frees_it() {
        let layout = Layout::from_size_align(1000, 8).unwrap();
        let before = held_by(Account::Statsd);
        let p = within(Account::Statsd, || unsafe { Accounted.alloc(layout) });
        assert!(!p.is_null());
        assert_eq!(held_by(Account::Statsd), before + 1000);
        assert!(active());
        // Marked allocations end with the guard.
        let q = unsafe { Accounted.alloc(layout) };
        assert_eq!(held_by(Account::Statsd), before + 1000);
        unsafe { Accounted.dealloc(q, layout) };
        // Freed on another thread, marked with another account.
        let p = p as usize;
        std::thread::spawn(move || within(Account::Queries, || unsafe { Accounted.dealloc(p as *mut u8, layout) })).join().unwrap();
        assert_eq!(held_by(Account::Statsd), before);
    }

    #[test]
    fn a_reallocated_block_stays_with_its_account() {
        let layout = Layout::from_size_align(64, 16).unwrap();
        let before = held_by(Account::Tsdb);
        let p = within(Account::Tsdb, || unsafe { Accounted.alloc_zeroed(layout) });
        assert_eq!(unsafe { *p.add(63) }, 0);
        unsafe { p.write(7) };
        // Grown far enough to move, while another account is current.
        let grown = within(Account::Queries, || unsafe { Accounted.realloc(p, layout, 1 << 20) });
        assert_eq!(unsafe { *grown }, 7);
        assert_eq!(held_by(Account::Tsdb), before + (1 << 20));
        unsafe { Accounted.dealloc(grown, Layout::from_size_align(1 << 20, 16).unwrap()) };
        assert_eq!(held_by(Account::Tsdb), before);
    }

    #[test]
    fn threads_started_by_libraries_take_their_account_from_their_name() {
        let layout = Layout::from_size_align(4096, 64).unwrap();
        let before = held_by(Account::Logs);
        // Tantivy's indexing threads, as the kernel truncates their names.
        let p = std::thread::Builder::new()
            .name("thrd-tantivy-index0".into())
            .spawn(move || unsafe { Accounted.alloc(layout) } as usize)
            .unwrap()
            .join()
            .unwrap() as *mut u8;
        assert_eq!(p as usize % 64, 0);
        assert_eq!(held_by(Account::Logs), before + 4096);
        unsafe { Accounted.dealloc(p, layout) };
        assert_eq!(held_by(Account::Logs), before);
        assert_eq!(account_of_thread_name(b"instantops\0"), Account::Other);
        assert_eq!(account_of_thread_name(b"merge_thread_1\0"), Account::Logs);
    }
}
