//! A counting global allocator, for the test and benchmark binaries that
//! install it:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: p2p_grpc_test_support::alloc::Counting =
//!     p2p_grpc_test_support::alloc::Counting;
//! ```
//!
//! Every call goes to the system allocator unchanged. On the way it counts
//! the allocations made, the bytes live, the live allocations of
//! [`LARGE`] bytes or more, and the largest single allocation asked for:
//! a server that reserved a declared 4 GiB up front shows in the last
//! (with overcommit the reservation itself would not fail), a leak in the
//! live bytes more clearly than in RSS, which also moves with the
//! allocator's pools.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

/// The system allocator, counting (see the [module](self)).
pub struct Counting;

/// An allocation this large is a message's worth, not bookkeeping.
pub const LARGE: usize = 256 * 1024;

static COUNTING: AtomicBool = AtomicBool::new(true);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static LIVE_BYTES: AtomicUsize = AtomicUsize::new(0);
static LIVE_LARGE: AtomicUsize = AtomicUsize::new(0);
static LARGEST: AtomicUsize = AtomicUsize::new(0);

/// Turns the counters on (the default) or off. A benchmark turns them off
/// where it measures time: each allocation then costs one load more than
/// the system's, not four shared counters. What is freed while they are
/// off is not counted either, so the live figures hold only in a binary
/// that leaves them on.
pub fn set_counting(on: bool) {
    COUNTING.store(on, Ordering::Relaxed);
}

/// Allocations made so far (`alloc` and `alloc_zeroed`, not `realloc`).
pub fn allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// Bytes allocated and not yet freed.
pub fn live_bytes() -> usize {
    LIVE_BYTES.load(Ordering::Relaxed)
}

/// Live allocations of [`LARGE`] bytes or more.
pub fn live_large() -> usize {
    LIVE_LARGE.load(Ordering::Relaxed)
}

/// The largest single allocation asked for so far.
pub fn largest_allocation() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

/// Counts `size` bytes allocated; `fresh` for an allocation rather than a
/// `realloc`.
fn counted(size: usize, fresh: bool) {
    if !COUNTING.load(Ordering::Relaxed) {
        return;
    }
    if fresh {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
    LIVE_BYTES.fetch_add(size, Ordering::Relaxed);
    LARGEST.fetch_max(size, Ordering::Relaxed);
    if size >= LARGE {
        LIVE_LARGE.fetch_add(1, Ordering::Relaxed);
    }
}

fn freed(size: usize) {
    if !COUNTING.load(Ordering::Relaxed) {
        return;
    }
    LIVE_BYTES.fetch_sub(size, Ordering::Relaxed);
    if size >= LARGE {
        LIVE_LARGE.fetch_sub(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`, and its result
// returned unchanged; the counters are updated only for what `System`
// allocated (a null result is not counted) and touch no allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc(layout);
        if !ptr.is_null() {
            counted(layout.size(), true);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = System.alloc_zeroed(layout);
        if !ptr.is_null() {
            counted(layout.size(), true);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        freed(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new = System.realloc(ptr, layout, new_size);
        if !new.is_null() {
            freed(layout.size());
            counted(new_size, false);
        }
        new
    }
}
