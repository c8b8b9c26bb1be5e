//! [`Future`]: the handle to the result of a task (Python's
//! `concurrent.futures.Future`).
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::loom::sync::MutexGuard;

use super::error::FutureError;

/// How long a wait for a future yields the CPU in a loop before it sleeps
/// (see `Future::lock_done`).
const YIELD_SPIN: Duration = Duration::from_micros(50);
use super::shared::{Inner, Outcome, Shared, run_callback};
use crate::util::deadline_after;

/// The life cycle of a [`Future`]: pending → running → finished, or pending →
/// cancelled.
///
/// Python has a fifth, internal state (`CANCELLED_AND_NOTIFIED`); spindle tells
/// waiters of a cancellation at once, so it needs none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Submitted, not started; can still be cancelled.
    Pending = 0,
    /// Running on a worker; can no longer be cancelled.
    Running = 1,
    /// Cancelled before it started.
    Cancelled = 2,
    /// Ran to the end: holds a value or an error.
    Finished = 3,
}

impl State {
    pub(crate) fn from_u8(v: u8) -> State {
        match v {
            0 => State::Pending,
            1 => State::Running,
            2 => State::Cancelled,
            _ => State::Finished,
        }
    }

    /// Whether the state is final (cancelled or finished).
    pub fn is_done(self) -> bool {
        matches!(self, State::Cancelled | State::Finished)
    }
}

/// The result of a task that runs elsewhere: Python's
/// `concurrent.futures.Future`.
///
/// A `Future` is a cheap handle (one `Arc`): clone it freely, and any number of
/// threads may wait on it at once. `T` is the task's value, `E` the task's own
/// error type ([`Infallible`](std::convert::Infallible) unless the task was
/// submitted through [`fallible`](super::fallible)).
///
/// Several handles can read one result, so the value-returning methods
/// ([`result`](Future::result) …) clone it and need `T: Clone`; wrap a large
/// or unclonable value in an `Arc`. The task's error is shared as an `Arc`, so
/// it needs no `Clone`. The last handle
/// moves the value out without cloning ([`into_result`](Future::into_result),
/// `.await`, [`Executor::map`](super::Executor::map)).
///
/// A `Future` is also awaitable from any async runtime: see
/// [`IntoFuture`](#impl-IntoFuture-for-Future<T,+E>).
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
/// let a = pool.submit(|| (0..50).sum::<u32>()).unwrap();
/// let b = pool.submit(|| (0..100).sum::<u32>()).unwrap();
/// assert_eq!((a.result().unwrap(), b.result().unwrap()), (1225, 4950));
/// assert!(a.done());
/// ```
pub struct Future<T, E = std::convert::Infallible> {
    pub(crate) shared: Arc<Shared<T, E>>,
}

impl<T, E> Future<T, E> {
    pub(crate) fn from_shared(shared: Arc<Shared<T, E>>) -> Future<T, E> {
        shared.handles.fetch_add(1, Ordering::Relaxed);
        Future { shared }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.state_hint()
    }

    /// Cancels the task if it has not started: Python's `Future.cancel()`.
    ///
    /// Returns `true` if the future is now cancelled (also when it already
    /// was), `false` if it is running or finished. Cancelling wakes every waiter
    /// and runs the done-callbacks on this thread.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::futures::Promise;
    ///
    /// let (promise, fut) = Promise::<u32>::new();
    /// assert!(fut.cancel());
    /// assert!(fut.cancelled() && fut.done());
    /// assert!(!promise.set_running_or_notify_cancel()); // the worker skips it
    /// ```
    ///
    /// If the executor registered a hook with
    /// [`Promise::on_cancel`](super::Promise::on_cancel) (one whose task
    /// waits elsewhere, on a broker, say), a pending future asks it first,
    /// on this thread: `false` from the hook means the task may already be
    /// running there, and `cancel` returns `false` with the future still
    /// pending — as Python's `Future.cancel()` returns `False` once the
    /// task runs.
    pub fn cancel(&self) -> bool {
        match self.shared.state_hint() {
            State::Running | State::Finished => return false,
            State::Cancelled => return true,
            State::Pending => {}
        }
        let hook = self
            .shared
            .inner
            .lock()
            .lists
            .as_ref()
            .and_then(|l| l.on_cancel.clone());
        // Outside the lock: the hook may talk to a broker.
        if let Some(hook) = hook
            && !hook()
        {
            return self.cancelled();
        }
        match self
            .shared
            .finish(State::Cancelled, Err(FutureError::Cancelled))
        {
            Ok(mut notify) => {
                notify.wake(&self.shared);
                notify.run_callbacks();
                true
            }
            // Not pending any more: cancelled already (true), or the worker
            // started or finished it first (false).
            Err(_) => self.cancelled(),
        }
    }

    /// Whether the future was cancelled: Python's `Future.cancelled()`.
    pub fn cancelled(&self) -> bool {
        self.state() == State::Cancelled
    }

    /// Whether the task is running now: Python's `Future.running()`.
    pub fn running(&self) -> bool {
        self.state() == State::Running
    }

    /// Whether the future is cancelled or finished: Python's `Future.done()`.
    /// Never blocks.
    pub fn done(&self) -> bool {
        self.state().is_done()
    }

    /// Blocks until the future is done: the unbounded
    /// [`result`](Future::result) without reading the value.
    pub fn wait(&self) {
        drop(self.lock_done(None));
    }

    /// Blocks at most `timeout` until the future is done; returns whether it is.
    pub fn wait_timeout(&self, timeout: Duration) -> bool {
        self.wait_deadline_opt(deadline_after(timeout))
    }

    /// Blocks until `deadline` at the latest; returns whether the future is done.
    pub fn wait_deadline(&self, deadline: Instant) -> bool {
        self.wait_deadline_opt(Some(deadline))
    }

    fn wait_deadline_opt(&self, deadline: Option<Instant>) -> bool {
        self.lock_done(deadline).state.is_done()
    }

    /// Blocks until `deadline` (forever if `None`) or until done; returns the
    /// locked state either way. Spins briefly first: a short task's result is
    /// often there within a microsecond or two, far sooner than a park/unpark.
    /// Then, for up to [`YIELD_SPIN`], it yields the CPU in a loop instead of
    /// sleeping: a process pool's answer to a tiny task takes tens of
    /// microseconds, and waking a parked thread on an idle virtual CPU can
    /// take as long again (measured: `apply_async(..).get()` round trip 23–26
    /// µs parked, 4.7 µs yielding). Yielding leaves the CPU to any thread
    /// that can run — the worker answering, say — so the cost is at most
    /// [`YIELD_SPIN`] of an otherwise idle CPU per wait.
    pub(crate) fn lock_done(&self, deadline: Option<Instant>) -> MutexGuard<'_, Inner<T, E>> {
        if crate::loom::SPIN && !self.shared.state_hint().is_done() {
            for _ in 0..48u32 {
                std::hint::spin_loop();
                if self.shared.state_hint().is_done() {
                    break;
                }
            }
        }
        if crate::loom::SPIN && !self.shared.state_hint().is_done() {
            let start = Instant::now();
            let until = deadline.map_or(start + YIELD_SPIN, |d| d.min(start + YIELD_SPIN));
            while !self.shared.state_hint().is_done() && Instant::now() < until {
                std::thread::yield_now();
            }
        }
        let mut g = self.shared.inner.lock();
        while !g.state.is_done() {
            match deadline {
                None => self.shared.cond.wait(&mut g),
                Some(at) => {
                    if self.shared.cond.wait_until(&mut g, at).timed_out() {
                        break;
                    }
                }
            }
        }
        g
    }

    fn outcome(&self, deadline: Option<Instant>) -> Outcome<T, E>
    where
        T: Clone,
    {
        let g = self.lock_done(deadline);
        if g.state.is_done() {
            g.cloned()
        } else {
            Err(FutureError::Timeout)
        }
    }

    /// Blocks until the task is done and returns its value: Python's
    /// `Future.result()`.
    ///
    /// # Errors
    ///
    /// [`FutureError::Cancelled`] if the future was cancelled,
    /// [`FutureError::Failed`] with the task's own error,
    /// [`FutureError::Panicked`] with the message if the task panicked,
    /// [`FutureError::BrokenPool`] if the executor broke before running it.
    pub fn result(&self) -> Result<T, FutureError<E>>
    where
        T: Clone,
    {
        self.outcome(None)
    }

    /// [`result`](Future::result), waiting at most `timeout`: Python's
    /// `Future.result(timeout)`.
    ///
    /// # Errors
    ///
    /// As [`result`](Future::result), plus [`FutureError::Timeout`] if the
    /// future is not done in time (the task goes on).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use spindle::futures::Promise;
    ///
    /// let (_promise, fut) = Promise::<u32>::new();
    /// let err = fut.result_timeout(Duration::from_millis(1)).unwrap_err();
    /// assert!(err.is_timeout());
    /// ```
    pub fn result_timeout(&self, timeout: Duration) -> Result<T, FutureError<E>>
    where
        T: Clone,
    {
        self.outcome(deadline_after(timeout))
    }

    /// [`result`](Future::result), waiting until `deadline` at the latest.
    ///
    /// # Errors
    ///
    /// As [`result_timeout`](Future::result_timeout).
    pub fn result_deadline(&self, deadline: Instant) -> Result<T, FutureError<E>>
    where
        T: Clone,
    {
        self.outcome(Some(deadline))
    }

    /// Consumes the handle and returns the result, blocking until done. The
    /// last handle moves the value out (no clone); otherwise it is cloned.
    ///
    /// # Errors
    ///
    /// As [`result`](Future::result).
    pub fn into_result(self) -> Result<T, FutureError<E>>
    where
        T: Clone,
    {
        let mut g = self.lock_done(None);
        if self.shared.handles.load(Ordering::Acquire) == 1 {
            g.take()
        } else {
            g.cloned()
        }
    }

    /// Moves the outcome out if this is the only handle (used by `map`, which
    /// never shares its futures), else reports the sharing as an error.
    pub(crate) fn take_deadline(&self, deadline: Option<Instant>) -> Outcome<T, E> {
        let mut g = self.lock_done(deadline);
        if !g.state.is_done() {
            return Err(FutureError::Timeout);
        }
        if self.shared.handles.load(Ordering::Acquire) == 1 {
            g.take()
        } else {
            Err(FutureError::BrokenPool(super::BrokenPool::new(
                "a map future was shared by its executor",
            )))
        }
    }

    /// Blocks until done and returns the error, or `None` if the task
    /// succeeded: Python's `Future.exception()`.
    ///
    /// Returns `Some(FutureError::Cancelled)` for a cancelled future, where
    /// Python raises `CancelledError`.
    pub fn exception(&self) -> Option<FutureError<E>> {
        self.lock_done(None).error()
    }

    /// [`exception`](Future::exception), waiting at most `timeout`: returns
    /// `Some(FutureError::Timeout)` if the future is not done in time (a task
    /// never produces `Timeout` itself, so this is unambiguous).
    pub fn exception_timeout(&self, timeout: Duration) -> Option<FutureError<E>> {
        self.exception_deadline_opt(deadline_after(timeout))
    }

    /// [`exception`](Future::exception), waiting until `deadline` at the latest.
    pub fn exception_deadline(&self, deadline: Instant) -> Option<FutureError<E>> {
        self.exception_deadline_opt(Some(deadline))
    }

    fn exception_deadline_opt(&self, deadline: Option<Instant>) -> Option<FutureError<E>> {
        let g = self.lock_done(deadline);
        if g.state.is_done() {
            g.error()
        } else {
            Some(FutureError::Timeout)
        }
    }

    /// Calls `f(&future)` once the future is done: Python's
    /// `Future.add_done_callback(fn)`.
    ///
    /// If the future is already done, `f` runs at once on this thread;
    /// otherwise it runs on the thread that completes (or cancels) the future,
    /// after the waiters are woken, in the order the callbacks were added. A
    /// panicking callback is caught and logged to stderr; the other callbacks
    /// still run and the pool is not harmed.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::mpsc;
    /// use spindle::futures::{Executor, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::new();
    /// let (tx, rx) = mpsc::channel();
    /// let f = pool.submit(|| 6 * 7).unwrap();
    /// f.add_done_callback(move |f| tx.send(f.result().unwrap()).unwrap());
    /// assert_eq!(rx.recv().unwrap(), 42);
    /// ```
    pub fn add_done_callback(&self, f: impl FnOnce(&Future<T, E>) + Send + 'static) {
        let mut g = self.shared.inner.lock();
        if g.state.is_done() {
            drop(g);
            run_callback(Box::new(f), self);
        } else {
            g.lists().callbacks.push(Box::new(f));
        }
    }

    /// Whether `self` and `other` are handles to the same future.
    pub fn ptr_eq(&self, other: &Future<T, E>) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    pub(crate) fn key(&self) -> usize {
        Arc::as_ptr(&self.shared) as *const () as usize
    }
}

/// Handles compare by identity, like Python futures in a `set`.
impl<T, E> PartialEq for Future<T, E> {
    fn eq(&self, other: &Future<T, E>) -> bool {
        self.ptr_eq(other)
    }
}

impl<T, E> Eq for Future<T, E> {}

/// Hashes the identity, so futures can key a `HashSet`/`HashMap` (Python's
/// `to_do` dicts of future → url).
impl<T, E> std::hash::Hash for Future<T, E> {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl<T, E> Clone for Future<T, E> {
    fn clone(&self) -> Self {
        Future::from_shared(self.shared.clone())
    }
}

impl<T, E> Drop for Future<T, E> {
    fn drop(&mut self) {
        self.shared.handles.fetch_sub(1, Ordering::Release);
    }
}

impl<T, E> fmt::Debug for Future<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Future")
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}
