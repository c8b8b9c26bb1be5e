//! Errors of [`spindle::futures`](crate::futures).
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Why a [`Future`](super::Future) has no value: it was cancelled, the wait timed
/// out, the task returned its own error, the task panicked, or the pool broke.
///
/// Mirrors the exceptions Python's `Future.result()` raises:
/// `CancelledError`, `TimeoutError`, the task's own exception, and
/// `BrokenExecutor`. A Rust task raises in two ways, so there are two variants
/// for Python's one: [`Failed`](FutureError::Failed) carries the `Err(e)` a
/// fallible task returned (see [`fallible`](super::fallible)), and
/// [`Panicked`](FutureError::Panicked) the message of a panic, which is caught
/// on the worker and never takes the pool down.
///
/// `E` is the task's own error type; it is [`Infallible`] for tasks that return
/// a plain value.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, FutureError, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// let f = pool.submit(|| -> u32 { panic!("boom") }).unwrap();
/// match f.result() {
///     Err(FutureError::Panicked(msg)) => assert_eq!(msg, "boom"),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
// `#[non_exhaustive]`: executors in other crates may fail a task in new
// ways (a cluster's lost host, say); adding a variant must not break the
// `match`es of code written against this one.
#[derive(PartialEq, Eq)]
#[non_exhaustive]
pub enum FutureError<E = Infallible> {
    /// The future was cancelled before it started (Python's `CancelledError`).
    Cancelled,
    /// The bounded wait ended before the future was done (Python's
    /// `TimeoutError`); the task itself goes on.
    Timeout,
    /// The task returned its own error (Python: the exception the function
    /// raised). Shared, because every waiter on the future receives it (as
    /// every Python waiter gets the same exception object); so `E` need not be
    /// `Clone` (e.g. `std::io::Error`).
    Failed(Arc<E>),
    /// The task panicked; the panic's message (Python: the exception the function raised).
    Panicked(String),
    /// The executor broke before the task could run (Python's `BrokenExecutor`).
    BrokenPool(BrokenPool),
    /// The worker process running the task died (killed, aborted, crashed)
    /// or was killed because the task overran its time limit. Python's
    /// `Pool` hangs forever and `ProcessPoolExecutor` breaks for good in
    /// this case; spindle fails just this task and replaces the worker.
    WorkerLost(WorkerLost),
    /// The pool was closed (or shut down) before the task could be given to
    /// it, so it never ran: Python's `ValueError: Pool not running` from
    /// `Pool.apply` / `Pool.map` on a closed pool. A closed pool is not
    /// broken ([`BrokenPool`](FutureError::BrokenPool)): it finishes the work
    /// it had.
    Closed,
    /// The task's encoded argument or result is larger than the pool's
    /// payload limit (`max_payload` of the pool's builder): nothing was
    /// sent, and the worker goes on. Python has no such limit (its pickles
    /// are bounded by memory only).
    TooLarge(TooLarge),
    /// No worker can run the task now (a cluster executor whose broker is
    /// unreachable or has no worker for it): the task did not run. Python
    /// has no equivalent (its executors are local).
    Unavailable,
}

impl<E> FutureError<E> {
    /// Whether the future was cancelled.
    pub fn is_cancelled(&self) -> bool {
        matches!(self, FutureError::Cancelled)
    }

    /// Whether the wait timed out (the future may still complete later).
    pub fn is_timeout(&self) -> bool {
        matches!(self, FutureError::Timeout)
    }

    /// Whether the task panicked.
    pub fn is_panic(&self) -> bool {
        matches!(self, FutureError::Panicked(_))
    }

    /// Whether the executor broke before the task ran.
    pub fn is_broken(&self) -> bool {
        matches!(self, FutureError::BrokenPool(_))
    }

    /// Whether the pool was closed before the task was given to it
    /// ([`Closed`](FutureError::Closed)).
    pub fn is_closed(&self) -> bool {
        matches!(self, FutureError::Closed)
    }

    /// Whether the worker process running the task died, or was killed
    /// because the task overran its time limit ([`WorkerLost`]).
    pub fn is_worker_lost(&self) -> bool {
        matches!(self, FutureError::WorkerLost(_))
    }

    /// Whether the task overran the pool's per-task time limit (its worker
    /// was killed and replaced). Not the same as [`is_timeout`](Self::is_timeout),
    /// which is a bounded wait that ended while the task goes on.
    pub fn is_task_timeout(&self) -> bool {
        matches!(self, FutureError::WorkerLost(w) if w.is_task_timeout())
    }

    /// Whether the task's encoded argument or result exceeded the pool's
    /// payload limit ([`TooLarge`]).
    pub fn is_too_large(&self) -> bool {
        matches!(self, FutureError::TooLarge(_))
    }

    /// Whether no worker could run the task
    /// ([`Unavailable`](FutureError::Unavailable)).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, FutureError::Unavailable)
    }

    /// The size and limit, if the argument or result was too large.
    pub fn too_large(&self) -> Option<&TooLarge> {
        match self {
            FutureError::TooLarge(t) => Some(t),
            _ => None,
        }
    }

    /// The panic message, if the task panicked.
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            FutureError::Panicked(m) => Some(m),
            _ => None,
        }
    }

    /// The task's own error, if it returned one.
    pub fn task_error(&self) -> Option<&E> {
        match self {
            FutureError::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// The task's own error, if it returned one, as the shared handle.
    pub fn into_task_error(self) -> Option<Arc<E>> {
        match self {
            FutureError::Failed(e) => Some(e),
            _ => None,
        }
    }

    /// A `Failed` error holding `error`.
    pub fn failed(error: E) -> FutureError<E> {
        FutureError::Failed(Arc::new(error))
    }

    /// Whether this counts as "the task raised" for
    /// [`ReturnWhen::FirstException`](super::ReturnWhen::FirstException): a task
    /// error, a panic, a broken pool, a lost worker, a payload over the limit
    /// or no worker available, but not a cancellation, a timeout or a closed
    /// pool.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            FutureError::Failed(_)
                | FutureError::Panicked(_)
                | FutureError::BrokenPool(_)
                | FutureError::WorkerLost(_)
                | FutureError::TooLarge(_)
                | FutureError::Unavailable
        )
    }

    /// Converts the task's own error with `op`, keeping every other variant.
    pub fn map_err<F>(self, op: impl FnOnce(&E) -> F) -> FutureError<F> {
        match self {
            FutureError::Cancelled => FutureError::Cancelled,
            FutureError::Timeout => FutureError::Timeout,
            FutureError::Failed(e) => FutureError::Failed(Arc::new(op(&e))),
            FutureError::Panicked(m) => FutureError::Panicked(m),
            FutureError::BrokenPool(b) => FutureError::BrokenPool(b),
            FutureError::WorkerLost(w) => FutureError::WorkerLost(w),
            FutureError::Closed => FutureError::Closed,
            FutureError::TooLarge(t) => FutureError::TooLarge(t),
            FutureError::Unavailable => FutureError::Unavailable,
        }
    }
}

impl<E> Clone for FutureError<E> {
    fn clone(&self) -> Self {
        match self {
            FutureError::Cancelled => FutureError::Cancelled,
            FutureError::Timeout => FutureError::Timeout,
            FutureError::Failed(e) => FutureError::Failed(e.clone()),
            FutureError::Panicked(m) => FutureError::Panicked(m.clone()),
            FutureError::BrokenPool(b) => FutureError::BrokenPool(b.clone()),
            FutureError::WorkerLost(w) => FutureError::WorkerLost(w.clone()),
            FutureError::Closed => FutureError::Closed,
            FutureError::TooLarge(t) => FutureError::TooLarge(*t),
            FutureError::Unavailable => FutureError::Unavailable,
        }
    }
}

impl<E: fmt::Debug> fmt::Debug for FutureError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled => f.write_str("Cancelled"),
            FutureError::Timeout => f.write_str("Timeout"),
            FutureError::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
            FutureError::Panicked(m) => f.debug_tuple("Panicked").field(m).finish(),
            FutureError::BrokenPool(b) => f.debug_tuple("BrokenPool").field(b).finish(),
            FutureError::WorkerLost(w) => f.debug_tuple("WorkerLost").field(w).finish(),
            FutureError::Closed => f.write_str("Closed"),
            FutureError::Unavailable => f.write_str("Unavailable"),
            FutureError::TooLarge(t) => f.debug_tuple("TooLarge").field(t).finish(),
        }
    }
}

impl<E: fmt::Display> fmt::Display for FutureError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FutureError::Cancelled => f.write_str("the future was cancelled"),
            FutureError::Timeout => f.write_str("timed out waiting for the future"),
            FutureError::Failed(e) => write!(f, "the task failed: {e}"),
            FutureError::Panicked(m) => write!(f, "the task panicked: {m}"),
            FutureError::BrokenPool(b) => fmt::Display::fmt(b, f),
            FutureError::WorkerLost(w) => fmt::Display::fmt(w, f),
            FutureError::Closed => f.write_str("the pool is closed: it takes no more tasks"),
            FutureError::TooLarge(t) => fmt::Display::fmt(t, f),
            FutureError::Unavailable => f.write_str("no worker is available to run the task"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for FutureError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FutureError::Failed(e) => Some(&**e),
            FutureError::BrokenPool(b) => Some(b),
            FutureError::WorkerLost(w) => Some(w),
            FutureError::TooLarge(t) => Some(t),
            _ => None,
        }
    }
}

/// A pool builder was given a value Python rejects with `ValueError`: a count
/// of 0 where at least 1 is needed (`max_workers(0)`: Python's
/// `ValueError: max_workers must be greater than 0`). Leaving the value
/// unset gives the default.
///
/// # Examples
///
/// ```
/// use spindle::futures::ThreadPoolExecutor;
///
/// let err = ThreadPoolExecutor::builder().max_workers(0).build().unwrap_err();
/// assert_eq!(err.argument(), "max_workers");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    argument: &'static str,
    rule: &'static str,
}

impl BuildError {
    /// `argument` broke `rule` (e.g. `"must be at least 1"`).
    pub(crate) fn new(argument: &'static str, rule: &'static str) -> BuildError {
        BuildError { argument, rule }
    }

    /// The builder method whose value was refused (`"max_workers"`, ...).
    pub fn argument(&self) -> &'static str {
        self.argument
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.argument, self.rule)
    }
}

impl std::error::Error for BuildError {}

/// The executor is broken and runs no more work: for a thread pool, a worker's
/// initializer failed. Mirrors Python's `BrokenExecutor` / `BrokenThreadPool`.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::builder()
///     .initializer(|| panic!("no database"))
///     .build().unwrap();
/// let err = pool.submit(|| 1).unwrap().result().unwrap_err();
/// assert!(err.is_broken());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BrokenPool {
    reason: Arc<str>,
}

impl BrokenPool {
    /// A broken-pool error with the given reason.
    pub fn new(reason: impl Into<String>) -> BrokenPool {
        BrokenPool {
            reason: Arc::from(reason.into()),
        }
    }

    /// Why the pool broke.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Debug for BrokenPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BrokenPool").field(&&*self.reason).finish()
    }
}

impl fmt::Display for BrokenPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the pool is broken: {}", self.reason)
    }
}

impl std::error::Error for BrokenPool {}

/// The worker process running a task was lost: it died (killed, aborted,
/// crashed, out of memory), or the pool killed it because the task overran
/// its time limit. The pool replaces the worker and goes on; only this task
/// fails (or is retried, if the pool was told to retry).
///
/// Python has no equivalent: its `Pool` hangs forever and its
/// `ProcessPoolExecutor` raises `BrokenProcessPool` for every task, for good.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkerLost {
    pid: u32,
    exitcode: Option<i32>,
    time_limit: Option<Duration>,
    /// The executor's name for the worker, if it names its workers (a
    /// cluster worker's id).
    worker: Option<Arc<str>>,
    /// The host the worker ran on, if not this one.
    host: Option<Arc<str>>,
}

impl WorkerLost {
    /// A worker-lost error: process `pid` ended with `exitcode` (Python's
    /// convention: minus the signal number if a signal killed it), or was
    /// killed after the task overran `time_limit`.
    pub fn new(pid: u32, exitcode: Option<i32>, time_limit: Option<Duration>) -> WorkerLost {
        WorkerLost {
            pid,
            exitcode,
            time_limit,
            worker: None,
            host: None,
        }
    }

    /// The same error naming the lost worker as its executor knows it (a
    /// cluster worker's id).
    pub fn with_worker(mut self, worker: impl Into<String>) -> WorkerLost {
        self.worker = Some(Arc::from(worker.into()));
        self
    }

    /// The same error naming the host the worker ran on (for a worker on
    /// another machine; [`pid`](Self::pid) is then that host's process id,
    /// 0 if unknown).
    pub fn with_host(mut self, host: impl Into<String>) -> WorkerLost {
        self.host = Some(Arc::from(host.into()));
        self
    }

    /// The lost worker's id, if its executor names its workers (`None` for
    /// the process pools of this crate, whose workers are known by pid).
    pub fn worker(&self) -> Option<&str> {
        self.worker.as_deref()
    }

    /// The host the worker ran on, if it was another one (`None`: this
    /// host).
    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// The lost worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// How the worker ended, if known: its exit code, or minus the number of
    /// the signal that killed it (as `Process::exitcode`).
    pub fn exitcode(&self) -> Option<i32> {
        self.exitcode
    }

    /// Whether the pool killed the worker because the task overran its time
    /// limit.
    pub fn is_task_timeout(&self) -> bool {
        self.time_limit.is_some()
    }

    /// The per-task time limit the task overran, if that is why it was lost.
    pub fn time_limit(&self) -> Option<Duration> {
        self.time_limit
    }
}

impl fmt::Debug for WorkerLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerLost")
            .field("pid", &self.pid)
            .field("exitcode", &self.exitcode)
            .field("time_limit", &self.time_limit)
            .field("worker", &self.worker)
            .field("host", &self.host)
            .finish()
    }
}

impl fmt::Display for WorkerLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut who = match &self.worker {
            Some(w) => format!("worker {w} (process {})", self.pid),
            None => format!("worker process {}", self.pid),
        };
        if let Some(h) = &self.host {
            who.push_str(&format!(" on host {h}"));
        }
        if let Some(limit) = self.time_limit {
            return write!(
                f,
                "the task overran its time limit of {limit:?}; {who} was killed"
            );
        }
        write!(f, "{who} died while running the task")?;
        match self.exitcode {
            Some(c) if c < 0 => write!(f, " (killed by signal {})", -c),
            Some(c) => write!(f, " (exit code {c})"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for WorkerLost {}

/// A task could not be submitted; the task is handed back.
///
/// Mirrors what Python's `Executor.submit` raises: `RuntimeError('cannot schedule
/// new futures after shutdown')` and `BrokenExecutor`.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, SubmitError, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::new();
/// pool.shutdown(true, false);
/// let err = pool.submit(|| 1).unwrap_err();
/// assert!(err.is_shut_down());
/// let task = err.into_inner(); // the closure comes back
/// assert_eq!(task(), 1);
/// ```
// `#[non_exhaustive]`, as `FutureError`: executors in other crates (an
// async one, a cluster one) may need new ways to refuse a task, and adding a
// variant must not break the `match`es of code written against this one.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError<W> {
    /// The executor was shut down.
    ShutDown(W),
    /// The executor is broken.
    BrokenPool(W, BrokenPool),
    /// The task's encoded arguments are larger than the executor's payload
    /// limit (a process pool's `max_payload`): nothing was queued or sent.
    TooLarge(W, TooLarge),
    /// An argument of the call was 0 where Python raises `ValueError`
    /// (`map_with`'s `chunksize` or `buffersize`, named here): nothing was
    /// submitted. Leave the option unset for its default.
    InvalidArgument(W, &'static str),
    /// No worker can take the task now (a cluster executor whose broker is
    /// unreachable): nothing was queued.
    Unavailable(W),
    /// The task's arguments cannot travel to the executor's workers (a
    /// file descriptor among them, for an executor of other hosts; see
    /// [`Task::check_wire`](super::Task::check_wire)): nothing was queued.
    Unsendable(W, crate::process::WireError),
}

impl<W> SubmitError<W> {
    /// The task that was not submitted.
    pub fn into_inner(self) -> W {
        match self {
            SubmitError::ShutDown(w)
            | SubmitError::BrokenPool(w, _)
            | SubmitError::TooLarge(w, _)
            | SubmitError::InvalidArgument(w, _)
            | SubmitError::Unavailable(w)
            | SubmitError::Unsendable(w, _) => w,
        }
    }

    /// Whether the executor was shut down.
    pub fn is_shut_down(&self) -> bool {
        matches!(self, SubmitError::ShutDown(_))
    }

    /// Whether the executor is broken.
    pub fn is_broken(&self) -> bool {
        matches!(self, SubmitError::BrokenPool(..))
    }

    /// Whether the task's arguments exceeded the payload limit.
    pub fn is_too_large(&self) -> bool {
        matches!(self, SubmitError::TooLarge(..))
    }

    /// Whether no worker could take the task
    /// ([`Unavailable`](SubmitError::Unavailable)).
    pub fn is_unavailable(&self) -> bool {
        matches!(self, SubmitError::Unavailable(_))
    }

    /// Why the task's arguments cannot travel to the executor's workers
    /// ([`Unsendable`](SubmitError::Unsendable)).
    pub fn wire_error(&self) -> Option<&crate::process::WireError> {
        match self {
            SubmitError::Unsendable(_, e) => Some(e),
            _ => None,
        }
    }

    /// Whether an argument was 0 where Python raises `ValueError`;
    /// [`invalid_argument`](Self::invalid_argument) names it.
    pub fn is_invalid_argument(&self) -> bool {
        matches!(self, SubmitError::InvalidArgument(..))
    }

    /// The argument behind [`is_invalid_argument`](Self::is_invalid_argument)
    /// (`"chunksize"`, `"buffersize"`).
    pub fn invalid_argument(&self) -> Option<&'static str> {
        match self {
            SubmitError::InvalidArgument(_, name) => Some(name),
            _ => None,
        }
    }

    /// The size and limit, if the arguments were too large.
    pub fn too_large(&self) -> Option<&TooLarge> {
        match self {
            SubmitError::TooLarge(_, t) => Some(t),
            _ => None,
        }
    }

    /// The same error with the task dropped (or replaced, e.g. by `()`).
    pub fn map_task<V>(self, op: impl FnOnce(W) -> V) -> SubmitError<V> {
        match self {
            SubmitError::ShutDown(w) => SubmitError::ShutDown(op(w)),
            SubmitError::BrokenPool(w, b) => SubmitError::BrokenPool(op(w), b),
            SubmitError::TooLarge(w, t) => SubmitError::TooLarge(op(w), t),
            SubmitError::InvalidArgument(w, name) => SubmitError::InvalidArgument(op(w), name),
            SubmitError::Unavailable(w) => SubmitError::Unavailable(op(w)),
            SubmitError::Unsendable(w, e) => SubmitError::Unsendable(op(w), e),
        }
    }
}

impl<W> fmt::Debug for SubmitError<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::ShutDown(_) => f.write_str("ShutDown(..)"),
            SubmitError::BrokenPool(_, b) => write!(f, "BrokenPool(.., {b:?})"),
            SubmitError::TooLarge(_, t) => write!(f, "TooLarge(.., {t:?})"),
            SubmitError::InvalidArgument(_, name) => write!(f, "InvalidArgument(.., {name:?})"),
            SubmitError::Unavailable(_) => f.write_str("Unavailable(..)"),
            SubmitError::Unsendable(_, e) => write!(f, "Unsendable(.., {e:?})"),
        }
    }
}

impl<W> fmt::Display for SubmitError<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SubmitError::ShutDown(_) => f.write_str("cannot schedule new futures after shutdown"),
            SubmitError::BrokenPool(_, b) => fmt::Display::fmt(b, f),
            SubmitError::TooLarge(_, t) => fmt::Display::fmt(t, f),
            // Python: `ValueError: chunksize must be >= 1.`
            SubmitError::InvalidArgument(_, name) => {
                write!(f, "{name} must be >= 1 (leave it unset for the default)")
            }
            SubmitError::Unavailable(_) => f.write_str("no worker is available to take the task"),
            SubmitError::Unsendable(_, e) => fmt::Display::fmt(e, f),
        }
    }
}

impl<W> std::error::Error for SubmitError<W> {}

/// What was too large: a task's arguments or its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Payload {
    /// The encoded arguments of a call (refused at submit or start).
    Argument,
    /// The encoded result of a call (refused by the worker, which goes on).
    Result,
}

/// A payload larger than its channel's limit: the encoded `size` in bytes
/// and the `limit` it exceeds (the `max_payload` setting of a
/// [`ProcessPoolExecutor`](crate::process::ProcessPoolExecutor),
/// [`Pool`](crate::process::Pool) or [`Process`](crate::process::Process)
/// builder). Checked by the sender before anything is written, so the
/// receiver never sees it and no worker is lost. Python has no such limit:
/// its pickles are bounded by memory (and, before 3.8, a pipe message of
/// 2 GiB or more failed with a `struct.error` / `OverflowError`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TooLarge {
    what: Payload,
    size: u64,
    limit: u64,
}

impl TooLarge {
    /// A too-large error: `what` encodes to `size` bytes, over `limit`.
    pub fn new(what: Payload, size: u64, limit: u64) -> TooLarge {
        TooLarge { what, size, limit }
    }

    /// The argument or the result.
    pub fn payload(&self) -> Payload {
        self.what
    }

    /// The encoded size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The limit in bytes it exceeds.
    pub fn limit(&self) -> u64 {
        self.limit
    }
}

impl fmt::Debug for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TooLarge")
            .field("payload", &self.what)
            .field("size", &self.size)
            .field("limit", &self.limit)
            .finish()
    }
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.what {
            Payload::Argument => "arguments",
            Payload::Result => "result",
        };
        write!(
            f,
            "the task's encoded {what} of {} bytes exceed the payload limit of {} bytes (max_payload)",
            self.size, self.limit
        )
    }
}

impl std::error::Error for TooLarge {}

/// A bounded wait ([`as_completed_timeout`](super::as_completed_timeout))
/// ended before every future was done. Mirrors Python's `TimeoutError`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// How many futures were still not done.
    pub not_done: usize,
    /// How many (distinct) futures were waited on.
    pub total: usize,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (of {}) futures unfinished",
            self.not_done, self.total
        )
    }
}

impl std::error::Error for Timeout {}
