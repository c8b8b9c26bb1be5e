//! The state a [`Future`] and its [`Promise`](super::Promise) share: the
//! Python `Future`'s `_condition`, `_state`, `_result`, `_done_callbacks` and
//! `_waiters`, behind one `parking_lot` mutex.
#![forbid(unsafe_code)]

use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;

use crate::loom::sync::atomic::{AtomicU8, AtomicUsize};
use crate::loom::sync::{Condvar, Mutex};

use super::error::{BrokenPool, FutureError};
use super::waiter::WaitSet;
use super::{Future, State};
use crate::util::panic_text;

/// What a finished future holds.
pub(crate) type Outcome<T, E> = Result<T, FutureError<E>>;

/// A done-callback: Python's `fn(future)`.
pub(crate) type Callback<T, E> = Box<dyn FnOnce(&Future<T, E>) + Send>;

/// The shared state, with room for the task itself at the end (`job`), so a
/// submitted task and its future are one allocation. Futures see the tail as
/// `dyn Send + Sync` (the default); an executor's job sees its own type.
pub(crate) struct Shared<T, E, J: ?Sized = dyn Send + Sync> {
    pub(crate) inner: Mutex<Inner<T, E>>,
    pub(crate) cond: Condvar,
    /// `State as u8`, readable without the lock (written under it).
    pub(crate) state: AtomicU8,
    /// Live `Future` handles; lets a sole handle move its value out.
    pub(crate) handles: AtomicUsize,
    pub(crate) job: J,
}

pub(crate) enum Slot<T, E> {
    Empty,
    Full(Outcome<T, E>),
    Taken,
}

pub(crate) struct Inner<T, E> {
    pub(crate) state: State,
    pub(crate) slot: Slot<T, E>,
    /// Who to tell when done; boxed because most futures have nobody but
    /// the `result()` callers, who use the condvar.
    pub(crate) lists: Option<Box<Lists<T, E>>>,
}

/// Asked by `Future::cancel` whether a pending task may be cancelled
/// (`Promise::on_cancel`).
pub(crate) type CancelHook = Arc<dyn Fn() -> bool + Send + Sync>;

/// The done-callbacks, `wait`/`as_completed` registrations and async wakers.
pub(crate) struct Lists<T, E> {
    pub(crate) callbacks: Vec<Callback<T, E>>,
    pub(crate) waiters: Vec<(Arc<WaitSet>, usize)>,
    pub(crate) wakers: Vec<Waker>,
    /// The executor's say on a cancel, if it wants one.
    pub(crate) on_cancel: Option<CancelHook>,
}

/// Everyone to tell once a future is done; built under the lock, used after it.
pub(crate) struct Notify<T, E> {
    callbacks: Vec<Callback<T, E>>,
    /// A handle for the callbacks, created before the state became done so a
    /// sole handle never moves the value out from under a callback.
    handle: Option<Future<T, E>>,
    waiters: Vec<(Arc<WaitSet>, usize)>,
    wakers: Vec<Waker>,
    exception: bool,
}

impl<T, E, J> Shared<T, E, J> {
    /// A pending future's state carrying `job`.
    pub(crate) fn with_job(job: J) -> Shared<T, E, J> {
        Shared {
            inner: Mutex::new(Inner {
                state: State::Pending,
                slot: Slot::Empty,
                lists: None,
            }),
            cond: Condvar::new(),
            state: AtomicU8::new(State::Pending as u8),
            handles: AtomicUsize::new(0),
            job,
        }
    }
}

impl<T, E> Shared<T, E> {
    pub(crate) fn new() -> Arc<Shared<T, E>>
    where
        T: Send,
        E: Send + Sync,
    {
        Arc::new(Shared::with_job(()))
    }

    pub(crate) fn state_hint(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    pub(crate) fn set_state(&self, inner: &mut Inner<T, E>, state: State) {
        inner.state = state;
        self.state.store(state as u8, Ordering::Release);
    }

    /// Stores `outcome` and moves the future to `state`: `Finished` unless it is
    /// already done, `Cancelled` only from `Pending`. Otherwise the outcome
    /// comes back.
    pub(crate) fn finish(
        self: &Arc<Self>,
        state: State,
        outcome: Outcome<T, E>,
    ) -> Result<Notify<T, E>, Outcome<T, E>> {
        self.finish_hooked(state, outcome, &mut None::<fn()>)
    }

    /// [`finish`](Shared::finish), calling `hook` (taking it) before the new
    /// state becomes visible if there are no callbacks to run.
    pub(crate) fn finish_hooked(
        self: &Arc<Self>,
        state: State,
        outcome: Outcome<T, E>,
        hook: &mut Option<impl FnOnce()>,
    ) -> Result<Notify<T, E>, Outcome<T, E>> {
        let mut g = self.inner.lock();
        let allowed = match state {
            // Python: only a pending future can be cancelled.
            State::Cancelled => g.state == State::Pending,
            _ => !g.state.is_done(),
        };
        if !allowed {
            return Err(outcome);
        }
        let exception = matches!(&outcome, Err(e) if e.is_exception());
        let Lists {
            callbacks,
            waiters,
            wakers,
            on_cancel: _,
        } = g.lists.take().map_or_else(Lists::new, |l| *l);
        let handle = (!callbacks.is_empty()).then(|| Future::from_shared(self.clone()));
        if let (true, Some(hook)) = (callbacks.is_empty(), hook.take()) {
            hook();
        }
        g.slot = Slot::Full(outcome);
        self.set_state(&mut g, state);
        Ok(Notify {
            callbacks,
            handle,
            waiters,
            wakers,
            exception,
        })
    }
}

impl<T, E> Lists<T, E> {
    fn new() -> Lists<T, E> {
        Lists {
            callbacks: Vec::new(),
            waiters: Vec::new(),
            wakers: Vec::new(),
            on_cancel: None,
        }
    }
}

impl<T, E> Inner<T, E> {
    /// The lists, created on first use.
    pub(crate) fn lists(&mut self) -> &mut Lists<T, E> {
        self.lists.get_or_insert_with(|| Box::new(Lists::new()))
    }

    /// The outcome, cloned.
    pub(crate) fn cloned(&self) -> Outcome<T, E>
    where
        T: Clone,
    {
        match &self.slot {
            Slot::Full(o) => o.clone(),
            Slot::Empty => Err(FutureError::Timeout),
            Slot::Taken => Err(taken()),
        }
    }

    /// The outcome, moved out (the caller holds the only handle).
    pub(crate) fn take(&mut self) -> Outcome<T, E> {
        match std::mem::replace(&mut self.slot, Slot::Taken) {
            Slot::Full(o) => o,
            Slot::Empty => {
                self.slot = Slot::Empty;
                Err(FutureError::Timeout)
            }
            Slot::Taken => Err(taken()),
        }
    }

    /// The error, if the future is done and failed.
    pub(crate) fn error(&self) -> Option<FutureError<E>> {
        match &self.slot {
            Slot::Full(Ok(_)) => None,
            Slot::Full(Err(e)) => Some(e.clone()),
            Slot::Empty => Some(FutureError::Timeout),
            Slot::Taken => Some(taken()),
        }
    }

    pub(crate) fn is_exception(&self) -> bool {
        matches!(&self.slot, Slot::Full(Err(e)) if e.is_exception())
    }
}

/// Unreachable through the public API (a value is only moved out through the
/// last handle); reported as an error rather than a panic all the same.
fn taken<E>() -> FutureError<E> {
    FutureError::BrokenPool(BrokenPool::new("the result was already moved out"))
}

impl<T, E> Notify<T, E> {
    /// Wakes blocked `result()` callers, `wait`/`as_completed` sets and async
    /// tasks (Python: `notify_all()` and `waiter.add_result(self)`).
    pub(crate) fn wake(&mut self, shared: &Shared<T, E>) {
        shared.cond.notify_all();
        for (set, index) in self.waiters.drain(..) {
            set.push(index, self.exception);
        }
        for w in self.wakers.drain(..) {
            w.wake();
        }
    }

    /// Runs the done-callbacks in order; a panicking callback is contained and
    /// logged, like Python's `LOGGER.exception('exception calling callback ...')`.
    pub(crate) fn run_callbacks(self) {
        if let Some(fut) = self.handle {
            for cb in self.callbacks {
                run_callback(cb, &fut);
            }
        }
    }
}

/// Runs one callback, containing a panic.
pub(crate) fn run_callback<T, E>(cb: Callback<T, E>, fut: &Future<T, E>) {
    if let Err(payload) = panic::catch_unwind(AssertUnwindSafe(|| cb(fut))) {
        eprintln!(
            "spindle::futures: exception calling callback for future: {}",
            panic_text(&*payload)
        );
    }
}

#[cfg(all(test, loom))]
mod loom_model;
