//! [`AioExecutor`]: spindle's [`Executor`] contract on a tokio runtime, so
//! coroutines are a third scope beside threads and processes.
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

use spindle::futures::{Executor, Future, FutureExecutor, FutureJob, SubmitError, Task};
use spindle::process::{CallJob, RemoteExecutor};
use tokio::runtime::{Handle, Runtime};
use tokio::sync::Semaphore;

use crate::pool::InvalidSize;

/// The job of an [`AioExecutor`]: a Rust future, polled on the runtime, or
/// a call of a registered task (`process::Call`), run on tokio's blocking
/// threads (`spawn_blocking`).
#[derive(Debug)]
pub enum AioJob {
    /// An `async` block or function ([`FutureExecutor`]).
    Future(FutureJob),
    /// A `my_task::call(args)` or a `map` chunk of them ([`RemoteExecutor`]).
    Call(CallJob),
}

impl AioJob {
    fn cancel(self) {
        match self {
            AioJob::Future(j) => j.cancel(),
            AioJob::Call(j) => j.cancel(),
        }
    }
}

struct State {
    shutdown: bool,
    /// Jobs submitted and not yet started, in submission order.
    queue: VecDeque<AioJob>,
    /// Runner tasks not yet finished.
    outstanding: usize,
}

struct Inner {
    state: Mutex<State>,
    /// Signalled when `outstanding` drops to 0.
    idle: Condvar,
    /// `max_workers` slots: a job starts once it holds one.
    slots: Semaphore,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ids of executors that own their runtime (0: none).
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);

thread_local! {
    /// The id of the executor whose runtime this thread belongs to (its
    /// worker and blocking threads), 0 elsewhere.
    static OWNER: Cell<usize> = const { Cell::new(0) };
}

/// Counts a runner out however it ends: finished, or dropped with its
/// runtime before it took a job, in which case it drops one queued job
/// (which fails that job's future with `BrokenPool`: no waiter hangs).
struct Outstanding {
    inner: Arc<Inner>,
    took: bool,
}

impl Drop for Outstanding {
    fn drop(&mut self) {
        let mut st = self.inner.lock();
        let orphan = if self.took {
            None
        } else {
            st.queue.pop_front()
        };
        st.outstanding -= 1;
        if st.outstanding == 0 {
            self.inner.idle.notify_all();
        }
        drop(st);
        drop(orphan);
    }
}

/// A [`spindle::futures::Executor`] on a tokio runtime: `submit` an `async`
/// block (any `F: Future + Send + 'static`, through core's
/// [`FutureExecutor`]) or a call of a registered task (`my_task::call(x)`,
/// through [`RemoteExecutor`], run with `spawn_blocking`), get a spindle
/// [`Future`] — the same contract as `ThreadPoolExecutor` and
/// `ProcessPoolExecutor`, so code written against [`Executor`] runs on
/// coroutines by changing one constructor (`examples/executor_switch.rs`).
///
/// At most `max_workers` jobs run at once (a semaphore; later ones queue in
/// submission order, and `shutdown(cancel_futures=true)` cancels those).
/// [`new`](AioExecutor::new) owns a multi-thread runtime with `max_workers`
/// threads; [`on`](AioExecutor::on) uses a runtime of the caller's. A future
/// that blocks its thread holds one of the runtime's threads: give blocking
/// work to `spawn_blocking` or submit a registered call instead.
///
/// Dropping the executor is `shutdown(wait=true)`, then (if it owns one) its
/// runtime stops in the background. On a thread of the executor's own
/// runtime (a job shutting down its own executor), `shutdown(wait=true)`
/// does not wait, which would deadlock; with [`on`](AioExecutor::on) the
/// executor cannot tell its threads, so do not wait from a job there.
///
/// # Examples
///
/// ```
/// use spindle::futures::Executor;
/// use spindle_aio::AioExecutor;
///
/// let pool = AioExecutor::new(4).unwrap();
/// let f = pool.submit(async { 6 * 7 }).unwrap();
/// assert_eq!(f.result(), Ok(42));
/// ```
pub struct AioExecutor {
    inner: Arc<Inner>,
    handle: Handle,
    runtime: Option<Runtime>,
    max_workers: usize,
    /// Marks the threads of an owned runtime (0 for [`AioExecutor::on`]).
    id: usize,
}

impl fmt::Debug for AioExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.inner.lock();
        f.debug_struct("AioExecutor")
            .field("max_workers", &self.max_workers)
            .field("shutdown", &st.shutdown)
            .field("queued", &st.queue.len())
            .finish()
    }
}

impl AioExecutor {
    /// An executor with a runtime of its own: `max_workers` threads, running
    /// at most `max_workers` jobs at once.
    ///
    /// # Errors
    ///
    /// [`InvalidSize`] for 0 (Python: `ValueError: max_workers must be
    /// greater than 0`) or more than tokio's semaphore allows.
    pub fn new(max_workers: usize) -> Result<AioExecutor, InvalidSize> {
        check(max_workers)?;
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(max_workers)
            .thread_name("spindle-aio-executor")
            .on_thread_start(move || OWNER.with(|o| o.set(id)))
            .enable_all()
            .build()
            .expect("spindle-aio: cannot start a tokio runtime (out of threads?)");
        let handle = runtime.handle().clone();
        Ok(AioExecutor::with(handle, Some(runtime), max_workers, id))
    }

    /// An executor spawning on the runtime of `handle` (e.g.
    /// `Handle::current()`), running at most `max_workers` jobs at once.
    ///
    /// # Errors
    ///
    /// As [`new`](AioExecutor::new).
    pub fn on(handle: Handle, max_workers: usize) -> Result<AioExecutor, InvalidSize> {
        check(max_workers)?;
        Ok(AioExecutor::with(handle, None, max_workers, 0))
    }

    fn with(
        handle: Handle,
        runtime: Option<Runtime>,
        max_workers: usize,
        id: usize,
    ) -> AioExecutor {
        AioExecutor {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    shutdown: false,
                    queue: VecDeque::new(),
                    outstanding: 0,
                }),
                idle: Condvar::new(),
                slots: Semaphore::new(max_workers),
            }),
            handle,
            runtime,
            max_workers,
            id,
        }
    }
}

fn check(max_workers: usize) -> Result<(), InvalidSize> {
    if max_workers == 0 || max_workers > Semaphore::MAX_PERMITS {
        return Err(InvalidSize(max_workers));
    }
    Ok(())
}

/// Waits for a slot, then runs the oldest queued job (if `shutdown` has not
/// cancelled it).
async fn runner(inner: Arc<Inner>) {
    let mut out = Outstanding {
        inner: inner.clone(),
        took: false,
    };
    let Ok(_slot) = inner.slots.acquire().await else {
        return;
    };
    let job = inner.lock().queue.pop_front();
    out.took = true;
    match job {
        None => {}
        Some(AioJob::Future(job)) => job.await,
        Some(AioJob::Call(job)) => {
            // A panic is caught inside `run_here`; a runtime shutting down
            // drops the closure unrun, which fails the future (BrokenPool).
            tokio::task::spawn_blocking(move || job.run_here())
                .await
                .ok();
        }
    }
}

impl Executor for AioExecutor {
    type Job = AioJob;

    fn submit<W: Task<Self>>(
        &self,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        let fut = {
            let mut st = self.inner.lock();
            if st.shutdown {
                return Err(SubmitError::ShutDown(task));
            }
            let (job, fut) = task.into_job();
            st.queue.push_back(job);
            st.outstanding += 1;
            fut
        };
        self.handle.spawn(runner(self.inner.clone()));
        Ok(fut)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let cancelled: Vec<AioJob> = {
            let mut st = self.inner.lock();
            st.shutdown = true;
            if cancel_futures {
                st.queue.drain(..).collect()
            } else {
                Vec::new()
            }
        };
        // Outside the lock: cancelling runs the futures' done-callbacks.
        cancelled.into_iter().for_each(AioJob::cancel);
        // A job shutting down (or dropping) its own executor would wait for
        // itself: on the executor's own threads, `wait` is skipped (as the
        // thread pool skips joining the current thread).
        let own_thread = self.id != 0 && OWNER.with(Cell::get) == self.id;
        if wait && !own_thread {
            let mut st = self.inner.lock();
            while st.outstanding > 0 {
                st = self
                    .inner
                    .idle
                    .wait(st)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
    }

    fn max_workers(&self) -> usize {
        self.max_workers
    }
}

impl FutureExecutor for AioExecutor {
    fn future_job(job: FutureJob) -> AioJob {
        AioJob::Future(job)
    }
}

impl RemoteExecutor for AioExecutor {
    fn call_job(job: CallJob) -> AioJob {
        AioJob::Call(job)
    }
}

impl Drop for AioExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
        if let Some(rt) = self.runtime.take() {
            // Every job is done; never blocks, even inside another runtime.
            rt.shutdown_background();
        }
    }
}
