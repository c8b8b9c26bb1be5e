//! [`Promise`]: the completing side of a [`Future`] — what an executor holds
//! while the task runs.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;

use super::error::{BrokenPool, FutureError, WorkerLost};
use super::shared::{Outcome, Shared};
use super::{Future, State};

/// The writing end of a [`Future`]: Python's executor-facing `Future` methods
/// (`set_running_or_notify_cancel`, `set_result`, `set_exception`).
///
/// An executor creates a pair with [`Promise::new`], hands the `Future` to the
/// caller and completes the `Promise` when the task ends. Completing consumes
/// the promise, so a future cannot be completed twice (Python raises
/// `InvalidStateError` at run time). A promise dropped without completing
/// fails its future with [`FutureError::BrokenPool`]: no waiter hangs forever.
///
/// # Examples
///
/// ```
/// use std::thread;
/// use spindle::futures::Promise;
///
/// let (promise, fut) = Promise::<String>::new();
/// thread::spawn(move || {
///     if promise.set_running_or_notify_cancel() {
///         promise.set_result("done".to_owned()).ok();
///     }
/// });
/// assert_eq!(fut.result().unwrap(), "done");
/// ```
pub struct Promise<T, E = std::convert::Infallible> {
    shared: Option<Arc<Shared<T, E>>>,
}

impl<T, E> Promise<T, E> {
    /// A new pending future and the promise that completes it.
    pub fn new() -> (Promise<T, E>, Future<T, E>)
    where
        T: Send,
        E: Send + Sync,
    {
        let shared = Shared::new();
        let fut = Future::from_shared(shared.clone());
        (Promise::from_shared(shared), fut)
    }

    pub(crate) fn from_shared(shared: Arc<Shared<T, E>>) -> Promise<T, E> {
        Promise {
            shared: Some(shared),
        }
    }

    fn shared(&self) -> &Arc<Shared<T, E>> {
        self.shared
            .as_ref()
            .expect("a live promise holds its state")
    }

    /// Marks the future running, unless it was cancelled: Python's
    /// `Future.set_running_or_notify_cancel()`.
    ///
    /// Returns `false` if the future was cancelled (or already finished): the
    /// executor must then skip the task. Returns `true` if the future is now
    /// running and can no longer be cancelled.
    pub fn set_running_or_notify_cancel(&self) -> bool {
        let shared = self.shared();
        let mut g = shared.inner.lock();
        match g.state {
            State::Pending => {
                shared.set_state(&mut g, State::Running);
                true
            }
            State::Running => true,
            State::Cancelled | State::Finished => false,
        }
    }

    /// Whether the future was cancelled (the task need not run).
    pub fn is_cancelled(&self) -> bool {
        self.shared().state_hint() == State::Cancelled
    }

    /// Completes the future with a value: Python's `Future.set_result()`.
    ///
    /// # Errors
    ///
    /// Hands the value back if the future was cancelled before.
    pub fn set_result(self, value: T) -> Result<(), T> {
        self.complete(Ok(value), || {}).map_err(|o| match o {
            Ok(v) => v,
            Err(_) => unreachable!("complete hands back what it was given"),
        })
    }

    /// Completes the future with the task's own error: Python's
    /// `Future.set_exception()`.
    ///
    /// # Errors
    ///
    /// Hands the error back if the future was cancelled before.
    pub fn set_error(self, error: E) -> Result<(), E> {
        self.complete(Err(FutureError::failed(error)), || {})
            .map_err(|o| match o {
                // The Arc was made just now: it has no other owner.
                Err(FutureError::Failed(e)) => {
                    Arc::try_unwrap(e).unwrap_or_else(|_| unreachable!("a fresh Arc"))
                }
                _ => unreachable!("complete hands back what it was given"),
            })
    }

    /// Completes the future as panicked, with the panic's message.
    pub fn set_panic(self, message: impl Into<String>) {
        self.complete(Err(FutureError::Panicked(message.into())), || {})
            .ok();
    }

    /// Completes the future as failed because the executor broke.
    pub fn set_broken(self, broken: BrokenPool) {
        self.complete(Err(FutureError::BrokenPool(broken)), || {})
            .ok();
    }

    /// Completes the future as failed because the worker running the task
    /// was lost ([`FutureError::WorkerLost`]): for executors whose workers
    /// live elsewhere (another process, another host), which learn of the
    /// loss and complete the future from there.
    pub fn set_worker_lost(self, lost: WorkerLost) {
        self.complete(Err(FutureError::WorkerLost(lost)), || {})
            .ok();
    }

    /// Completes the future as failed because no worker can run the task
    /// now ([`FutureError::Unavailable`]).
    pub fn set_unavailable(self) {
        self.complete(Err(FutureError::Unavailable), || {}).ok();
    }

    /// Cancels the future (Python's `work_item.future.cancel()` in
    /// `shutdown(cancel_futures=True)`): if it is still pending it becomes
    /// cancelled and this returns `true`. If it was already marked running
    /// it finishes with [`FutureError::Cancelled`] instead (never left
    /// running with nobody to complete it) and this returns `false`; a
    /// future already done is left as it is (`false`, or `true` if it was
    /// cancelled).
    pub fn cancel_pending(mut self) -> bool {
        let shared = self.shared.take().expect("a live promise holds its state");
        match shared.finish(State::Cancelled, Err(FutureError::Cancelled)) {
            Ok(mut notify) => {
                notify.wake(&shared);
                notify.run_callbacks();
                true
            }
            Err(outcome) => {
                // Running: finish it, or its waiters would wait forever.
                if let Ok(mut notify) = shared.finish(State::Finished, outcome) {
                    notify.wake(&shared);
                    notify.run_callbacks();
                    false
                } else {
                    shared.state_hint() == State::Cancelled
                }
            }
        }
    }

    /// Lets `hook` decide whether [`Future::cancel`] may cancel the pending
    /// future: `cancel` calls it (on the cancelling thread, without any lock
    /// of the future held) and cancels only if it returns `true`; on `false`
    /// the future stays pending and `cancel` returns `false`. For an
    /// executor whose queue is elsewhere (a broker): the hook asks it to
    /// drop the task, and refuses once a worker took it — Python's
    /// `Future.cancel()` returning `False` once the task runs. A second call
    /// replaces the hook; the hook is dropped once the future is done. It
    /// is not asked by [`cancel_pending`](Self::cancel_pending) (the
    /// executor itself cancelling).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicBool, Ordering};
    /// use spindle::futures::Promise;
    ///
    /// let taken = Arc::new(AtomicBool::new(false)); // a worker took it?
    /// let (promise, fut) = Promise::<u32>::new();
    /// let t = taken.clone();
    /// promise.on_cancel(move || !t.load(Ordering::SeqCst));
    /// taken.store(true, Ordering::SeqCst);
    /// assert!(!fut.cancel()); // the broker says it runs already
    /// assert!(!fut.done());
    /// promise.set_result(7).unwrap();
    /// assert_eq!(fut.result(), Ok(7));
    /// ```
    pub fn on_cancel(&self, hook: impl Fn() -> bool + Send + Sync + 'static) {
        let mut g = self.shared().inner.lock();
        if !g.state.is_done() {
            g.lists().on_cancel = Some(Arc::new(hook));
        }
    }

    /// Completes the future with `outcome`, calling `on_free` once the waiting
    /// side needs nothing more from this thread: before the outcome becomes
    /// visible if there are no done-callbacks (so a waiter that submits again
    /// finds this worker idle), after running the callbacks otherwise (so a
    /// callback that submits and waits gets a fresh worker, as in Python).
    /// `on_free` runs even if the future was already done (cancelled); then
    /// the outcome comes back.
    pub(crate) fn complete(
        mut self,
        outcome: Outcome<T, E>,
        on_free: impl FnOnce(),
    ) -> Result<(), Outcome<T, E>> {
        let shared = self.shared.take().expect("a live promise holds its state");
        let mut hook = Some(on_free);
        let result = match shared.finish_hooked(State::Finished, outcome, &mut hook) {
            Ok(mut notify) => {
                notify.wake(&shared);
                notify.run_callbacks();
                Ok(())
            }
            Err(outcome) => Err(outcome),
        };
        if let Some(on_free) = hook {
            on_free();
        }
        result
    }
}

impl<T, E> Drop for Promise<T, E> {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            let broken = BrokenPool::new("the task was dropped before it completed");
            if let Ok(mut notify) =
                shared.finish(State::Finished, Err(FutureError::BrokenPool(broken)))
            {
                notify.wake(&shared);
                notify.run_callbacks();
            }
        }
    }
}

impl<T, E> fmt::Debug for Promise<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.shared.as_ref().map(|s| s.state_hint());
        f.debug_struct("Promise")
            .field("state", &state)
            .finish_non_exhaustive()
    }
}
