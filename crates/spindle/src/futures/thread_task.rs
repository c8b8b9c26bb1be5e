//! What a [`ThreadPoolExecutor`](super::ThreadPoolExecutor) runs:
//! [`ThreadJob`]. The [`Task`](super::Task) and `MapFn` impls that make
//! closures its tasks are in closures.rs.
#![forbid(unsafe_code)]

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use super::error::{BrokenPool, FutureError};
use super::shared::Shared;
use super::{Future, Promise};
use crate::util::panic_text;

/// What a worker tells a job to do.
pub(crate) enum Verdict<'a> {
    /// Run it; `idle` is told when the task's waiters need the worker no more.
    Run(&'a Idle),
    /// The pool shut down with `cancel_futures`: cancel the future.
    Cancel,
    /// The pool broke: fail the future.
    Broken(&'a BrokenPool),
}

/// How a job ended, for the pool's statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ran {
    /// The task returned a value.
    Completed,
    /// The task returned its own error (a `fallible` task's `Err`).
    Failed,
    /// The task panicked.
    Panicked,
    /// The future was cancelled before the task ran (or by the verdict).
    Cancelled,
    /// The pool broke: the future failed with `BrokenPool`.
    Broken,
}

/// Free-worker tokens: Python's `_idle_semaphore`, released by a worker after
/// each task, acquired by `submit` instead of spawning a thread.
#[derive(Debug, Default)]
pub(crate) struct Idle {
    tokens: AtomicUsize,
    /// All `max_workers` threads exist: nobody needs the tokens any more, so
    /// the hot path skips the shared counter.
    saturated: AtomicBool,
}

impl Idle {
    pub(crate) fn release(&self) {
        if !self.saturated.load(Ordering::Relaxed) {
            self.tokens.fetch_add(1, Ordering::Release);
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn try_acquire(&self) -> bool {
        self.tokens
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    pub(crate) fn saturate(&self) {
        self.saturated.store(true, Ordering::Relaxed);
    }
}

/// The job a [`ThreadPoolExecutor`](super::ThreadPoolExecutor) queues
/// (Python's `_WorkItem`): the task and the state of its future, in one
/// allocation.
///
/// Build one with [`ThreadJob::new`] to implement [`Task`](super::Task) for
/// your own type. A job dropped without running fails its future with
/// [`FutureError::BrokenPool`]: no waiter hangs.
pub struct ThreadJob {
    job: Option<Arc<dyn Runnable>>,
    /// The task's `spindle.task` span (feature `tracing`), opened by
    /// `submit`, entered by the worker while it runs the task.
    #[cfg(feature = "tracing")]
    pub(crate) span: tracing::Span,
}

/// A task stored in its future's state, run (or failed) exactly once.
pub(crate) trait Runnable: Send + Sync {
    fn run(self: Arc<Self>, verdict: Verdict<'_>) -> Ran;
}

/// The tail of a submitted future's [`Shared`]: the task until a worker takes it.
struct TaskCell<F> {
    f: Mutex<Option<F>>,
}

impl ThreadJob {
    pub(crate) fn run(mut self, verdict: Verdict<'_>) -> Ran {
        match self.job.take() {
            Some(job) => job.run(verdict),
            None => Ran::Cancelled, // never: only `Drop` takes it otherwise
        }
    }

    /// A job that runs `f` (unless its future was cancelled first), and the
    /// future it completes with `f`'s value, its error, or its panic.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::futures::{Executor, Future, Task, ThreadJob, ThreadPoolExecutor};
    ///
    /// /// A task type of our own: parse a number on the pool.
    /// struct Parse(String);
    ///
    /// impl Task<ThreadPoolExecutor> for Parse {
    ///     type Output = u64;
    ///     type Error = std::num::ParseIntError;
    ///     fn into_job(self) -> (ThreadJob, Future<u64, Self::Error>) {
    ///         ThreadJob::new(move || self.0.parse())
    ///     }
    /// }
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// assert_eq!(pool.submit(Parse("42".into())).unwrap().result(), Ok(42));
    /// assert!(pool.submit(Parse("x".into())).unwrap().exception().is_some());
    /// ```
    pub fn new<T, E>(f: impl FnOnce() -> Result<T, E> + Send + 'static) -> (ThreadJob, Future<T, E>)
    where
        T: Send + 'static,
        E: Send + Sync + 'static,
    {
        let shared = Arc::new(Shared::<T, E, _>::with_job(TaskCell {
            f: Mutex::new(Some(f)),
        }));
        let fut = Future::from_shared(shared.clone());
        let job = ThreadJob {
            job: Some(shared),
            #[cfg(feature = "tracing")]
            span: tracing::Span::none(),
        };
        (job, fut)
    }
}

impl<T, E, F> Runnable for Shared<T, E, TaskCell<F>>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: Send + Sync + 'static,
{
    fn run(self: Arc<Self>, verdict: Verdict<'_>) -> Ran {
        let f = self.job.f.lock().take();
        let promise = Promise::from_shared(self);
        let Some(f) = f else {
            return Ran::Cancelled; // already run: `run` takes the only job handle, so never
        };
        match verdict {
            Verdict::Run(idle) => {
                let free = || idle.release();
                if !promise.set_running_or_notify_cancel() {
                    drop(f);
                    free();
                    return Ran::Cancelled;
                }
                let (outcome, ran) = match panic::catch_unwind(AssertUnwindSafe(f)) {
                    Ok(Ok(v)) => (Ok(v), Ran::Completed),
                    Ok(Err(e)) => (Err(FutureError::Failed(Arc::new(e))), Ran::Failed),
                    Err(payload) => (
                        Err(FutureError::Panicked(panic_text(&*payload))),
                        Ran::Panicked,
                    ),
                };
                promise.complete(outcome, free).ok();
                ran
            }
            Verdict::Cancel => {
                drop(f);
                promise.cancel_pending();
                Ran::Cancelled
            }
            Verdict::Broken(b) => {
                drop(f);
                promise.set_broken(b.clone());
                Ran::Broken
            }
        }
    }
}

impl Drop for ThreadJob {
    fn drop(&mut self) {
        if let Some(job) = self.job.take() {
            let broken = BrokenPool::new("the task was dropped before it ran");
            job.run(Verdict::Broken(&broken));
        }
    }
}

impl fmt::Debug for ThreadJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ThreadJob(..)")
    }
}
