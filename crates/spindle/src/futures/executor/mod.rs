//! The [`Executor`] contract (Python's `concurrent.futures.Executor`) and what
//! an executor runs: [`Task`] for `submit`, [`MapFn`] for `map`.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use super::Future;
use super::error::SubmitError;

mod map;

pub use map::Map;

/// Runs tasks and hands back [`Future`]s: Python's `concurrent.futures.Executor`.
///
/// Implemented by [`ThreadPoolExecutor`](super::ThreadPoolExecutor) and
/// [`ProcessPoolExecutor`](crate::process::ProcessPoolExecutor) (a cluster executor is
/// planned): code written against this trait switches scope by changing one
/// constructor.
///
/// What a task *is* depends on the executor, so `submit` is generic over
/// [`Task<Self>`](Task): a thread pool runs any `FnOnce() -> T + Send` closure;
/// an executor whose tasks cross a process or host boundary accepts only calls
/// of registered, serde-serialisable functions. Each executor names the job
/// type it queues ([`Executor::Job`]) and each task type says how it becomes
/// one ([`Task::into_job`]). The contract — submit, map in input order,
/// shutdown, the future's states and errors — is the same for all.
///
/// Dropping an executor shuts it down and waits for the submitted work, like
/// leaving Python's `with ThreadPoolExecutor() as pool:` block.
///
/// An executor written in another crate also implements
/// [`RemoteExecutor`](crate::process::RemoteExecutor) (it runs calls of
/// registered tasks) or [`FutureExecutor`](super::FutureExecutor) (it runs Rust
/// futures), which brings the `Task` and `MapFn` impls it cannot write
/// itself; the workspace's `spindle-conformance` crate checks any executor
/// against a port of CPython's `test_concurrent_futures`.
pub trait Executor {
    /// The unit of work this executor queues; built by [`Task::into_job`].
    type Job;

    /// Schedules `task` and returns the future of its result: Python's
    /// `Executor.submit(fn, *args)` (capture the arguments in the closure).
    ///
    /// # Errors
    ///
    /// [`SubmitError::ShutDown`] after [`shutdown`](Executor::shutdown),
    /// [`SubmitError::BrokenPool`] if the executor broke; the task comes back
    /// inside the error.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let f = pool.submit(|| "hello".len()).unwrap();
    /// assert_eq!(f.result().unwrap(), 5);
    /// ```
    fn submit<W: Task<Self>>(&self, task: W)
    -> Result<Future<W::Output, W::Error>, SubmitError<W>>;

    /// Signals the executor to free its resources: Python's
    /// `Executor.shutdown(wait=True, *, cancel_futures=False)`.
    ///
    /// Later submissions fail. With `cancel_futures`, tasks not yet started are
    /// cancelled. With `wait`, returns once all running (and, without
    /// `cancel_futures`, all queued) tasks are done and the workers have
    /// exited. Calling it again is harmless.
    fn shutdown(&self, wait: bool, cancel_futures: bool);

    /// How many tasks can run at once (Python's private `_max_workers`); `map`
    /// sizes its default window from it.
    fn max_workers(&self) -> usize;

    /// How many chunks `map` keeps in flight when no `buffersize` is given:
    /// four per worker by default. An executor whose per-task round trip is
    /// long next to a tiny task (a process pool) keeps more, so its workers
    /// do not starve between results.
    fn map_window(&self) -> usize {
        self.max_workers().saturating_mul(4).max(1)
    }

    /// Applies `f` to each item on the executor, yielding the results lazily
    /// in input order: Python's `Executor.map(fn, iterable)`.
    ///
    /// At most [`MapOptions::buffersize`] chunks are in flight (by default
    /// [`map_window`](Executor::map_window): four per worker for threads, 64
    /// per worker for processes): the iterator is consumed as results are taken, so an
    /// endless or huge input does not fill memory. The first window is
    /// submitted by this call.
    ///
    /// A closure's argument type must be written out (`|n: u64| n * n`): the
    /// executor decides which functions it can map, so Rust cannot infer it
    /// from the items.
    ///
    /// # Errors
    ///
    /// [`SubmitError`] (holding `()`) if the executor is shut down or broken
    /// now; a failure to submit later shows up as an error item.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::builder().max_workers(4).build().unwrap();
    /// let squares: Vec<u64> = pool
    ///     .map(|n: u64| n * n, 1..=5)
    ///     .unwrap()
    ///     .map(Result::unwrap)
    ///     .collect();
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// ```
    fn map<F, I>(&self, f: F, items: I) -> Result<Map<'_, Self, F, I::IntoIter>, SubmitError<()>>
    where
        I: IntoIterator,
        F: MapFn<I::Item, Self>,
    {
        self.map_with(f, items, MapOptions::new())
    }

    /// [`map`](Executor::map) with options: Python's `Executor.map(fn,
    /// iterable, timeout=, chunksize=, buffersize=)`.
    ///
    /// # Errors
    ///
    /// As [`map`](Executor::map);
    /// [`SubmitError::InvalidArgument`](super::SubmitError::InvalidArgument)
    /// for a `chunksize` or `buffersize` of 0 (Python's `ValueError`),
    /// before any item is taken.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::futures::{Executor, MapOptions, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let opts = MapOptions::new().chunksize(100).buffersize(8);
    /// let sum: u64 = pool
    ///     .map_with(|n: u64| n, 0..10_000, opts)
    ///     .unwrap()
    ///     .map(Result::unwrap)
    ///     .sum();
    /// assert_eq!(sum, 49_995_000);
    /// ```
    fn map_with<F, I>(
        &self,
        f: F,
        items: I,
        options: MapOptions,
    ) -> Result<Map<'_, Self, F, I::IntoIter>, SubmitError<()>>
    where
        I: IntoIterator,
        F: MapFn<I::Item, Self>,
    {
        Map::new(self, f, items.into_iter(), options)
    }
}

/// Something executor `X` can run (Python: the `fn, *args` given to
/// `submit`): for a thread pool any `FnOnce() -> T` closure (or [`fallible`]
/// closure); for a process or cluster executor a call of a registered
/// function with serde arguments.
///
/// Implement it for your own types to make them submittable: `into_job`
/// turns the task into the executor's job and the [`Future`] the job
/// completes (an executor whose jobs travel elsewhere keeps a
/// [`Promise`](super::Promise) from [`Promise::new`](super::Promise::new) to
/// complete when the result comes back).
pub trait Task<X: Executor + ?Sized>: Sized {
    /// The value the task produces.
    type Output;
    /// The task's own error ([`Infallible`](std::convert::Infallible) if it
    /// cannot fail).
    type Error;

    /// Turns the task into a job of `X` and the future the job completes.
    fn into_job(self) -> (X::Job, Future<Self::Output, Self::Error>);

    /// The largest size in bytes one call's arguments encode to, for a
    /// task that travels to another process (a process pool refuses it
    /// with [`SubmitError::TooLarge`](super::SubmitError::TooLarge) over
    /// its payload limit, handing the task back); `None`, the default, for
    /// a task that runs in this process or cannot tell.
    fn payload_size(&self) -> Option<usize> {
        None
    }

    /// Whether the task can be sent to `X`'s workers in `X`'s wire form:
    /// for calls on a [`RemoteExecutor`](crate::process::RemoteExecutor)
    /// whose [`WIRE`](crate::process::RemoteExecutor::WIRE) is
    /// [`MessagePack`](crate::process::WireFormat::MessagePack), a counting
    /// encoding pass that refuses arguments carrying file descriptors
    /// ([`WireError::CarriesDescriptors`](crate::process::WireError::CarriesDescriptors)).
    /// Such an executor calls it in `submit` and refuses with
    /// [`SubmitError::Unsendable`](super::SubmitError::Unsendable),
    /// handing the task back. `Ok` by default.
    ///
    /// # Errors
    ///
    /// The [`WireError`](crate::process::WireError) naming why not.
    fn check_wire(&self) -> Result<(), crate::process::WireError> {
        Ok(())
    }
}

/// A function `map` can apply to items of type `A` on executor `X` (Python:
/// the `fn` given to `Executor.map`).
///
/// For a thread pool: any `Fn(A) -> T + Send + Sync` (or [`fallible`] one).
/// `map` groups the items in chunks ([`MapOptions::chunksize`]); `bind` makes
/// the task that applies the function to one chunk.
pub trait MapFn<A, X: Executor + ?Sized>: Sized {
    /// The value produced per item.
    type Output;
    /// The function's own error.
    type Error;
    /// The task for one chunk.
    type Task: Task<X, Output = Vec<Self::Output>, Error = Self::Error>;

    /// The task applying `this` to each item of `chunk`, in order.
    fn bind(this: &Arc<Self>, chunk: Vec<A>) -> Self::Task;
}

/// Marks a closure returning `Result<T, E>` as *fallible*: its `Err(e)` becomes
/// the future's [`FutureError::Failed(e)`](super::FutureError::Failed) (Python:
/// the task raised) instead of an `Ok(Err(e))` value.
///
/// Works for [`Executor::submit`] (`FnOnce() -> Result<T, E>`) and
/// [`Executor::map`] (`Fn(A) -> Result<T, E>`).
///
/// # Examples
///
/// ```
/// use spindle::futures::{fallible, Executor, FutureError, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let f = pool.submit(fallible(|| "x1".parse::<u32>())).unwrap();
/// assert!(matches!(f.result(), Err(FutureError::Failed(_))));
/// ```
pub fn fallible<F>(f: F) -> Fallible<F> {
    Fallible(f)
}

/// A closure whose `Err` is the task's own error; see [`fallible`].
#[derive(Debug, Clone, Copy)]
pub struct Fallible<F>(pub F);

/// Options of [`Executor::map_with`]: Python's `timeout`, `chunksize` and
/// `buffersize` arguments of `Executor.map`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MapOptions {
    pub(crate) timeout: Option<Duration>,
    /// `None`: unset (1); `Some(0)` is refused by `map_with`.
    pub(crate) chunksize: Option<usize>,
    /// `None`: unset (the executor's `map_window`); `Some(0)` is refused.
    pub(crate) buffersize: Option<usize>,
}

impl MapOptions {
    /// No timeout, one item per task, a window of four tasks per worker.
    pub fn new() -> MapOptions {
        MapOptions {
            timeout: None,
            chunksize: None,
            buffersize: None,
        }
    }

    /// Total time allowed from the `map` call. When it passes before a result
    /// is ready, the iterator yields [`FutureError::Timeout`](super::FutureError::Timeout)
    /// once, cancels the calls not yet started and ends (Python raises
    /// `TimeoutError` from `__next__` and cancels the rest).
    pub fn timeout(mut self, timeout: Duration) -> MapOptions {
        self.timeout = Some(timeout);
        self
    }

    /// Items per task (default 1, when unset). Larger chunks cut the
    /// per-task overhead for cheap functions. If a function fails, the whole
    /// chunk yields one error (as Python's `ProcessPoolExecutor.map`); Python's
    /// thread pool ignores `chunksize`, spindle's uses it.
    ///
    /// 0 makes [`Executor::map_with`] fail with
    /// [`SubmitError::InvalidArgument`](super::SubmitError::InvalidArgument)
    /// (`"chunksize"`), as Python's `map` raises `ValueError: chunksize must
    /// be >= 1.`
    pub fn chunksize(mut self, chunksize: usize) -> MapOptions {
        self.chunksize = Some(chunksize);
        self
    }

    /// The most chunks in flight at once (Python 3.14's `buffersize`); unset
    /// (the default), the executor's [`Executor::map_window`]. Use
    /// `usize::MAX` for Python's eager submit-everything behaviour.
    ///
    /// 0 makes [`Executor::map_with`] fail with
    /// [`SubmitError::InvalidArgument`](super::SubmitError::InvalidArgument)
    /// (`"buffersize"`), as Python 3.14 raises `ValueError: buffersize must
    /// be None or > 0`.
    pub fn buffersize(mut self, buffersize: usize) -> MapOptions {
        self.buffersize = Some(buffersize);
        self
    }
}
