//! Watching a hostile test: the largest allocation asked for, and panics in
//! tasks (a handler, a connection, the swarm) rather than in the test body.
//!
//! A test binary that wants the allocation watch installs the counting
//! allocator ([`crate::alloc::Counting`]) and compares
//! [`crate::alloc::largest_allocation`] with [`ALLOCATION_CEILING`].

use std::collections::HashSet;
use std::sync::{Mutex, Once};

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
