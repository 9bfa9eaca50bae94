//! The executors every contender runs on, built explicitly so that each can
//! be handed to p2p-grpc's builders (and, for tokio, to tonic).

use std::future::Future;
use std::sync::Arc;
use std::thread::JoinHandle;

use p2p_grpc::rt::{AsyncStdRuntime, SharedRuntime, SmolRuntime, TokioRuntime};

/// One executor configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecKind {
    /// p2p-grpc's default under `smol`: `p2p_grpc::rt::block_on` on the
    /// calling thread, spawning with `SmolRuntime::global()` (what the
    /// README's `main` gets).
    Smol1,
    /// An `Arc<smol::Executor>` run on two threads
    /// (`SmolRuntime::with_executor`).
    Smol2,
    /// async-std's global executor (its default thread count: one per core).
    AsyncStd,
    /// A multi-thread tokio runtime with two workers.
    TokioMt,
    /// A current-thread tokio runtime.
    TokioCt,
}

impl ExecKind {
    pub fn label(self) -> &'static str {
        match self {
            ExecKind::Smol1 => "smol 1 thread",
            ExecKind::Smol2 => "smol 2 threads",
            ExecKind::AsyncStd => "async-std",
            ExecKind::TokioMt => "tokio multi-thread",
            ExecKind::TokioCt => "tokio current-thread",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            ExecKind::Smol1 => "smol1",
            ExecKind::Smol2 => "smol2",
            ExecKind::AsyncStd => "async-std",
            ExecKind::TokioMt => "tokio-mt",
            ExecKind::TokioCt => "tokio-ct",
        }
    }

    pub fn from_id(id: &str) -> Option<ExecKind> {
        [
            ExecKind::Smol1,
            ExecKind::Smol2,
            ExecKind::AsyncStd,
            ExecKind::TokioMt,
            ExecKind::TokioCt,
        ]
        .into_iter()
        .find(|kind| kind.id() == id)
    }
}

enum Inner {
    Smol {
        executor: Arc<smol::Executor<'static>>,
        stop: Option<smol::channel::Sender<()>>,
        threads: Vec<JoinHandle<()>>,
    },
    Tokio(Option<tokio::runtime::Runtime>),
    AsyncStd,
    /// `rt::block_on` and `SmolRuntime::global()`.
    Default,
}

/// A running executor: spawn on it through [`Exec::runtime`], and run a
/// future to completion on it with [`Exec::run`].
pub struct Exec {
    pub kind: ExecKind,
    inner: Inner,
}

impl Exec {
    pub fn new(kind: ExecKind) -> Exec {
        let inner = match kind {
            // `BENCH_SMOL1=executor`: a `smol::Executor` of the bench's own
            // on the calling thread instead (how "smol 1 thread" ran before
            // finding 14).
            ExecKind::Smol1 if std::env::var("BENCH_SMOL1").as_deref() != Ok("executor") => {
                Inner::Default
            }
            ExecKind::Smol1 | ExecKind::Smol2 => {
                let executor = Arc::new(smol::Executor::new());
                let (stop, stopped) = smol::channel::bounded::<()>(1);
                // The calling thread runs the executor in `run`, and one more.
                let threads = (0..usize::from(kind == ExecKind::Smol2))
                    .map(|i| {
                        let executor = executor.clone();
                        let stopped = stopped.clone();
                        std::thread::Builder::new()
                            .name(format!("smol-{i}"))
                            .spawn(move || {
                                let _ = smol::block_on(executor.run(stopped.recv()));
                            })
                            .expect("spawning an executor thread")
                    })
                    .collect();
                Inner::Smol {
                    executor,
                    stop: Some(stop),
                    threads,
                }
            }
            ExecKind::TokioMt => Inner::Tokio(Some(
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime"),
            )),
            ExecKind::TokioCt => Inner::Tokio(Some(
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime"),
            )),
            ExecKind::AsyncStd => Inner::AsyncStd,
        };
        Exec { kind, inner }
    }

    /// The p2p-grpc runtime spawning on this executor.
    pub fn runtime(&self) -> SharedRuntime {
        match &self.inner {
            Inner::Smol { executor, .. } => Arc::new(SmolRuntime::with_executor(executor.clone())),
            Inner::Tokio(rt) => Arc::new(TokioRuntime::from_handle(
                rt.as_ref().expect("runtime").handle().clone(),
            )),
            Inner::AsyncStd => Arc::new(AsyncStdRuntime::new()),
            Inner::Default => Arc::new(SmolRuntime::global()),
        }
    }

    /// Runs `future` on this executor (and, for smol and current-thread
    /// tokio, drives the executor from the calling thread meanwhile).
    pub fn run<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.inner {
            Inner::Smol { executor, .. } => smol::block_on(executor.run(future)),
            Inner::Tokio(rt) => {
                let rt = rt.as_ref().expect("runtime");
                match self.kind {
                    ExecKind::TokioCt => rt.block_on(future),
                    _ => rt.block_on(rt.spawn(future)).expect("bench task panicked"),
                }
            }
            Inner::AsyncStd => async_std::task::block_on(async_std::task::spawn(future)),
            Inner::Default => p2p_grpc::rt::block_on(future),
        }
    }
}

impl Drop for Exec {
    fn drop(&mut self) {
        match &mut self.inner {
            Inner::Smol { stop, threads, .. } => {
                drop(stop.take());
                for thread in threads.drain(..) {
                    let _ = thread.join();
                }
            }
            Inner::Tokio(rt) => {
                if let Some(rt) = rt.take() {
                    rt.shutdown_background();
                }
            }
            Inner::AsyncStd | Inner::Default => {}
        }
    }
}
