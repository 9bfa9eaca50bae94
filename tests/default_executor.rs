//! The `smol` backend's default executor: `rt::block_on` runs the tasks of
//! `SmolRuntime::global()` on the calling thread, keeps async-io's reactor
//! turning on that thread while the tasks stay busy, and hands tasks left
//! over to a background thread.
//!
//! The executor and its background thread are process-wide, so each test
//! runs its body in a fresh process: this test binary, filtered to the test.

mod common;

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, ThreadId};
use std::time::Duration;

use common::*;
use futures::future::join_all;
use p2p_grpc::client::Grpc;
use p2p_grpc::Request;

const FRESH: &str = "P2P_GRPC_FRESH_PROCESS";

/// Runs `body` in a fresh process of this test binary, filtered to `name`;
/// fails if it fails, or if it has not ended after 60 s.
fn in_fresh_process(name: &str, body: impl FnOnce()) {
    if std::env::var_os(FRESH).is_some() {
        body();
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env(FRESH, "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (done, output) = mpsc::channel();
    thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let output = match output.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
            panic!("{name} did not end within 60 s in its own process");
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{name} failed in its own process:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The filter must have matched: the child ran exactly this test.
    assert!(stdout.contains("1 passed"), "{stdout}");
}

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

#[test]
fn block_on_runs_the_default_runtimes_tasks_and_calls_on_its_own_thread() {
    in_fresh_process(
        "block_on_runs_the_default_runtimes_tasks_and_calls_on_its_own_thread",
        || {
            let caller = thread::current().id();
            p2p_grpc::rt::block_on(async {
                let (tx, rx) = futures::channel::oneshot::channel();
                runtime().spawn(Box::pin(async move {
                    let _ = tx.send(thread::current().id());
                }));
                assert_eq!(rx.await.unwrap(), caller);
                // A whole call over TCP, server and client on this thread.
                let (server, _events) = echo_server(|b| b);
                let grpc = Grpc::new(tcp_channel(&server).await);
                let reply = grpc
                    .unary::<_, Msg>(Request::new(Msg::count("here", 3)), UNARY)
                    .await
                    .unwrap();
                assert_eq!(reply.get_ref(), &Msg::count("here", 3));
                // No other thread ran them: none was started. (The server's
                // tasks are left when `block_on` returns: they go to the
                // background thread then, as the next test shows.)
                let names = thread_names();
                assert!(!names.iter().any(|n| n == "p2p-grpc"), "{names:?}");
            });
        },
    );
}

#[test]
fn tasks_left_when_block_on_returns_go_on_running_on_a_background_thread() {
    in_fresh_process(
        "tasks_left_when_block_on_returns_go_on_running_on_a_background_thread",
        || {
            let (go, wait) = futures::channel::oneshot::channel::<()>();
            let (done, finished) = mpsc::channel();
            p2p_grpc::rt::block_on(async {
                runtime().spawn(Box::pin(async move {
                    let _ = wait.await;
                    let _ = done.send(thread::current().name().map(str::to_owned));
                }));
            });
            go.send(()).unwrap();
            let ran_on = finished
                .recv_timeout(Duration::from_secs(30))
                .expect("the task left behind never ran");
            assert_eq!(ran_on.as_deref(), Some("p2p-grpc"));
        },
    );
}

#[test]
fn a_task_spawned_while_no_thread_is_in_block_on_runs() {
    in_fresh_process("a_task_spawned_while_no_thread_is_in_block_on_runs", || {
        let (done, finished) = mpsc::channel();
        runtime().spawn(Box::pin(async move {
            let _ = done.send(thread::current().name().map(str::to_owned));
        }));
        let ran_on = finished
            .recv_timeout(Duration::from_secs(30))
            .expect("the task never ran");
        assert_eq!(ran_on.as_deref(), Some("p2p-grpc"));
    });
}

/// Where a future's waker was last called from.
struct Recorder {
    inner: Waker,
    woken_on: Mutex<Option<ThreadId>>,
}

impl Wake for Recorder {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        *self.woken_on.lock().unwrap() = Some(thread::current().id());
        self.inner.wake_by_ref();
    }
}

/// Polls `inner` with a [`Recorder`]; yields the thread that woke it last.
struct WhereWoken<F> {
    inner: Pin<Box<F>>,
    recorder: Option<Arc<Recorder>>,
}

impl<F: std::future::Future> std::future::Future for WhereWoken<F> {
    type Output = Option<ThreadId>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let recorder = self
            .recorder
            .get_or_insert_with(|| {
                Arc::new(Recorder {
                    inner: cx.waker().clone(),
                    woken_on: Mutex::new(None),
                })
            })
            .clone();
        let waker = Waker::from(recorder.clone());
        match self.inner.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(_) => Poll::Ready(*recorder.woken_on.lock().unwrap()),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[test]
fn the_thread_in_block_on_polls_io_itself_while_its_tasks_stay_busy() {
    in_fresh_process(
        "the_thread_in_block_on_polls_io_itself_while_its_tasks_stay_busy",
        || {
            let caller = thread::current().id();
            p2p_grpc::rt::block_on(async {
                // Tasks that are always ready to run again.
                let stop = Arc::new(AtomicBool::new(false));
                let mut busy = Vec::new();
                for _ in 0..2 {
                    let stop = stop.clone();
                    let (tx, rx) = futures::channel::oneshot::channel::<()>();
                    runtime().spawn(Box::pin(async move {
                        while !stop.load(Ordering::Relaxed) {
                            yield_now().await;
                        }
                        let _ = tx.send(());
                    }));
                    busy.push(rx);
                }
                // Bytes arrive from another thread, one at a time; who
                // polled the reactor that found them?
                let (reader, mut writer) = UnixStream::pair().unwrap();
                let reader = async_io::Async::new(reader).unwrap();
                let (send, to_send) = mpsc::channel::<()>();
                let writer_thread = thread::spawn(move || {
                    while to_send.recv().is_ok() {
                        writer.write_all(b"x").unwrap();
                    }
                });
                let (mut by_caller, mut woken) = (0, 0);
                let mut by = Vec::new();
                for _ in 0..20 {
                    send.send(()).unwrap();
                    let woken_on = WhereWoken {
                        inner: Box::pin(reader.readable()),
                        recorder: None,
                    }
                    .await;
                    let mut byte = [0u8; 1];
                    std::io::Read::read_exact(&mut reader.get_ref(), &mut byte).unwrap();
                    // (None: the byte was there before the first poll.)
                    woken += usize::from(woken_on.is_some());
                    by_caller += usize::from(woken_on == Some(caller));
                    by.push(woken_on);
                }
                stop.store(true, Ordering::Relaxed);
                join_all(busy).await;
                drop(send);
                writer_thread.join().unwrap();
                // async-io's own thread may take a turn when this one is
                // preempted; most turns are this thread's.
                assert!(woken >= 10, "woken on {by:?}");
                assert!(
                    by_caller * 4 >= woken * 3,
                    "woken on {by:?}, caller {caller:?}"
                );
            });
        },
    );
}
