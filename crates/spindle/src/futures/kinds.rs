//! Kinds of executors other crates implement to inherit spindle's blanket
//! [`Task`]/[`MapFn`](super::MapFn) impls: [`FutureExecutor`] (runs Rust
//! futures) here, and [`RemoteExecutor`](crate::process::RemoteExecutor)
//! (runs calls of registered tasks) beside the calls in `process/pool/call.rs`.
//!
//! A crate outside spindle cannot write `impl<T> Task<MyExecutor> for
//! Call<T>` for every `T`, nor `impl<F: Future> Task<MyExecutor> for F`, nor
//! the `MapFn` impl for `F: Fn(A) -> Call<T>`: the type parameter would be
//! uncovered (E0210, the orphan rule). So spindle writes those impls once,
//! here and in `process/pool/call.rs`, over these traits; an executor gets
//! them by implementing one trait that says how the common job becomes its
//! own [`Executor::Job`].
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use super::error::{BrokenPool, FutureError};
use super::executor::{Executor, Fallible, Task};
use super::{Future, Promise};
use crate::util::panic_text;

/// An executor that runs Rust futures (`async` blocks and functions) on a
/// runtime of its own: the form an async executor takes.
///
/// Implementing it makes every `F: std::future::Future + Send + 'static` a
/// [`Task<Self>`](Task) yielding `F::Output`, and every [`fallible`](super::fallible)
/// future (output `Result<T, E>`) one whose `Err(e)` is the spindle future's
/// [`FutureError::Failed`]. Each becomes a [`FutureJob`], itself a
/// `std::future::Future<Output = ()>` the executor polls to completion (spawns
/// on its runtime, say); the job marks the spindle [`Future`] running on its
/// first poll (or skips a cancelled one), catches a panic as
/// [`FutureError::Panicked`] and completes it.
///
/// # Examples
///
/// An executor of our own that polls each future to completion on the
/// submitting thread:
///
/// ```
/// use std::future::Future as _;
/// use std::pin::pin;
/// use std::task::{Context, Poll, Waker};
///
/// use spindle::futures::{Executor, Future, FutureExecutor, FutureJob, SubmitError, Task};
///
/// #[derive(Debug)]
/// struct BlockOn;
///
/// impl Executor for BlockOn {
///     type Job = FutureJob;
///     fn submit<W: Task<Self>>(
///         &self,
///         task: W,
///     ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
///         let (job, fut) = task.into_job();
///         let mut job = pin!(job);
///         let mut cx = Context::from_waker(Waker::noop());
///         while job.as_mut().poll(&mut cx).is_pending() {
///             std::thread::yield_now();
///         }
///         Ok(fut)
///     }
///     fn shutdown(&self, _wait: bool, _cancel_futures: bool) {}
///     fn max_workers(&self) -> usize {
///         1
///     }
/// }
///
/// impl FutureExecutor for BlockOn {
///     fn future_job(job: FutureJob) -> FutureJob {
///         job
///     }
/// }
///
/// let f = BlockOn.submit(async { 6 * 7 }).unwrap();
/// assert_eq!(f.result(), Ok(42));
/// let f = BlockOn.submit(async { panic!("boom") as u32 }).unwrap();
/// assert_eq!(f.result().unwrap_err().panic_message(), Some("boom"));
/// ```
pub trait FutureExecutor: Executor {
    /// This executor's job for `job`, a future that completes a spindle
    /// [`Future`] when polled to the end.
    fn future_job(job: FutureJob) -> Self::Job;
}

impl<F, X> Task<X> for F
where
    X: FutureExecutor + ?Sized,
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    type Output = F::Output;
    type Error = Infallible;

    fn into_job(self) -> (X::Job, Future<F::Output>) {
        let (job, fut) = FutureJob::new(self);
        (X::future_job(job), fut)
    }
}

impl<F, T, E, X> Task<X> for Fallible<F>
where
    X: FutureExecutor + ?Sized,
    F: std::future::Future<Output = Result<T, E>> + Send + 'static,
    T: Send + 'static,
    E: Send + Sync + 'static,
{
    type Output = T;
    type Error = E;

    fn into_job(self) -> (X::Job, Future<T, E>) {
        let (job, fut) = FutureJob::fallible(self.0);
        (X::future_job(job), fut)
    }
}

/// The job of a [`FutureExecutor`]: a submitted Rust future and the promise of
/// the spindle [`Future`] it completes, type-erased.
///
/// It is itself a `std::future::Future<Output = ()>`: poll it to completion
/// (spawn it on a runtime). On the first poll it marks the spindle future
/// running — or, if that future was cancelled meanwhile, completes at once
/// without polling the task (Python's `set_running_or_notify_cancel`). A
/// panic in the task is caught and becomes [`FutureError::Panicked`]. Dropped
/// unfinished (a runtime shut down), it fails its future with
/// [`FutureError::BrokenPool`]: no waiter hangs.
pub struct FutureJob(Box<dyn Runnable>);

impl FutureJob {
    /// A job polling `task`, and the future its output completes.
    pub fn new<F>(task: F) -> (FutureJob, Future<F::Output>)
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        FutureJob::with(task, Ok)
    }

    /// A job polling `task`, whose `Err(e)` becomes the future's
    /// [`FutureError::Failed`] (see [`fallible`](super::fallible)).
    pub fn fallible<F, T, E>(task: F) -> (FutureJob, Future<T, E>)
    where
        F: std::future::Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: Send + Sync + 'static,
    {
        FutureJob::with(task, |r| r)
    }

    fn with<F, T, E>(task: F, finish: fn(F::Output) -> Result<T, E>) -> (FutureJob, Future<T, E>)
    where
        F: std::future::Future + Send + 'static,
        T: Send + 'static,
        E: Send + Sync + 'static,
    {
        let (promise, fut) = Promise::new();
        let cell = Cell {
            task: Box::pin(task),
            finish,
            promise: Some(promise),
            started: false,
        };
        (FutureJob(Box::new(cell)), fut)
    }

    /// Cancels the job instead of running it: its future becomes cancelled
    /// if it had not started (Python's `shutdown(cancel_futures=True)`), or
    /// fails with [`FutureError::Cancelled`] if it had.
    pub fn cancel(self) {
        self.0.cancel();
    }

    /// Fails the job's future with [`FutureError::BrokenPool`]: the executor
    /// broke before it could run the task.
    pub fn fail_broken(self, broken: BrokenPool) {
        self.0.fail(broken);
    }
}

impl std::future::Future for FutureJob {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_job(cx)
    }
}

impl fmt::Debug for FutureJob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FutureJob(..)")
    }
}

/// A [`FutureJob`]'s task, whatever its output type.
trait Runnable: Send {
    fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<()>;
    fn cancel(self: Box<Self>);
    fn fail(self: Box<Self>, broken: BrokenPool);
}

struct Cell<F: std::future::Future, T, E> {
    /// Boxed, so the cell is `Unpin` and needs no pin projection.
    task: Pin<Box<F>>,
    finish: fn(F::Output) -> Result<T, E>,
    /// `None` once the future is complete (or was cancelled).
    promise: Option<Promise<T, E>>,
    started: bool,
}

impl<F, T, E> Runnable for Cell<F, T, E>
where
    F: std::future::Future + Send + 'static,
    T: Send + 'static,
    E: Send + Sync + 'static,
{
    fn poll_job(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(promise) = &self.promise else {
            return Poll::Ready(());
        };
        if !self.started {
            if !promise.set_running_or_notify_cancel() {
                self.promise = None; // cancelled: skip the task
                return Poll::Ready(());
            }
            self.started = true;
        }
        let task = &mut self.task;
        let outcome = match panic::catch_unwind(AssertUnwindSafe(|| task.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(out)) => {
                (self.finish)(out).map_err(|e| FutureError::Failed(Arc::new(e)))
            }
            Err(payload) => Err(FutureError::Panicked(panic_text(&*payload))),
        };
        if let Some(promise) = self.promise.take() {
            promise.complete(outcome, || {}).ok();
        }
        Poll::Ready(())
    }

    fn cancel(mut self: Box<Self>) {
        if let Some(promise) = self.promise.take() {
            if self.started {
                promise.complete(Err(FutureError::Cancelled), || {}).ok();
            } else {
                promise.cancel_pending();
            }
        }
    }

    fn fail(mut self: Box<Self>, broken: BrokenPool) {
        if let Some(promise) = self.promise.take() {
            promise.set_broken(broken);
        }
    }
}
