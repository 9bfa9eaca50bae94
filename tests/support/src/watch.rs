//! Watching a hostile test: the largest allocation asked for, and panics in
//! tasks (a handler, a connection, the swarm) rather than in the test body.
//!
//! A test binary that wants the allocation watch installs the allocator:
//!
//! ```ignore
//! #[global_allocator]
//! static ALLOCATOR: PeakAllocator = PeakAllocator;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, Once};

/// The system allocator, remembering the largest single allocation asked
/// for: a server that reserved a declared 4 GiB up front would show here
/// (with overcommit the reservation itself would not fail).
pub struct PeakAllocator;

static LARGEST_ALLOCATION: AtomicUsize = AtomicUsize::new(0);

/// The largest single allocation made so far in this binary (0 without the
/// [`PeakAllocator`] installed).
pub fn largest_allocation() -> usize {
    LARGEST_ALLOCATION.load(Ordering::Relaxed)
}

// SAFETY: every call is forwarded unchanged to `System`.
unsafe impl GlobalAlloc for PeakAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOCATION.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

/// The largest single allocation a hostile test may cause: a message at
/// the 4 MiB limit assembled in one buffer, and some headroom (windows of 1
/// and 2 MiB, 16 KiB frames). A declared 4 GiB length that reserved even
/// 8 MiB before being refused would exceed it.
pub const ALLOCATION_CEILING: usize = 5 * 1024 * 1024;

/// Threads that run test bodies; a panic anywhere else happened in a task.
static TEST_THREADS: Mutex<Option<HashSet<String>>> = Mutex::new(None);
static TASK_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn thread_name() -> String {
    std::thread::current()
        .name()
        .unwrap_or("<unnamed>")
        .to_owned()
}

/// Installs (once) a panic hook that records panics outside test threads,
/// and registers the calling thread as a test thread.
fn watch_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let name = thread_name();
            let in_test = TEST_THREADS
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
                .is_some_and(|threads| threads.contains(&name));
            if !in_test {
                TASK_PANICS
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!("{name}: {info}"));
            }
            previous(info);
        }));
    });
    TEST_THREADS
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get_or_insert_with(HashSet::new)
        .insert(thread_name());
}

fn assert_no_task_panicked() {
    let panics = TASK_PANICS.lock().unwrap_or_else(|p| p.into_inner());
    assert!(panics.is_empty(), "tasks panicked: {panics:?}");
}

/// Runs a test body with the panic watch on, then checks that no task
/// panicked.
pub fn run_watched<F: std::future::Future<Output = ()>>(body: F) {
    watch_panics();
    crate::run(body);
    assert_no_task_panicked();
}
