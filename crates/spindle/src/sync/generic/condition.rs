//! [`Condition`]: Python's `threading.Condition` /
//! `multiprocessing.Condition`, once for every scope.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::family::LockFamily;
use super::into_ok;
use super::lock::{Lock, LockAcquire};
use super::rlock::RLock;
use crate::sync::contract::BlockingCondition;
use crate::sync::error::{NotOwnedError, ReleaseError};
use crate::sync::raw::{LockKind, RawMutex, RawQueue, Scope};

type Ticket<S> = <<S as Scope>::Queue as RawQueue>::Ticket;
use crate::util::{Wait, deadline_after};

mod sealed {
    pub trait Sealed {}
    impl<S: crate::sync::raw::Scope> Sealed for super::Lock<S> {}
    impl<S: crate::sync::raw::Scope> Sealed for super::RLock<S> {}
}

/// A lock a [`Condition`] can be built on: a [`Lock`] or an [`RLock`] of
/// the condition's scope (sealed).
///
/// The methods are the internal protocol of Python's `Condition` (`_is_owned`,
/// `_release_save`, `_acquire_restore`) and are not meant to be called
/// directly.
pub trait ConditionLock: sealed::Sealed + Send + Sync + 'static {
    /// The scope the lock lives in.
    type Scope: Scope;
    /// What makes a [`ConditionGuard`] `Send` or not: `()` for a `Lock`
    /// (no owner; a task may release it on another thread), `*const ()`
    /// for an `RLock` (its owner must release it).
    #[doc(hidden)]
    type GuardMarker;
    /// Whether the calling thread may wait/notify: for a `Lock`, whether it
    /// is held (by anyone for threads, by this process for processes, as in
    /// Python); for an `RLock`, whether the calling thread owns it.
    #[doc(hidden)]
    fn cond_is_owned(&self) -> bool;
    /// Whether anyone holds the lock.
    #[doc(hidden)]
    fn cond_is_locked(&self) -> bool;
    /// Frees the lock whatever its depth; returns what to restore.
    #[doc(hidden)]
    fn cond_release_save(&self) -> usize;
    /// Re-acquires after a wait, restoring the saved depth.
    #[doc(hidden)]
    fn cond_acquire_restore(&self, saved: usize);
    /// Acquires: `None` never blocks, `Some(None)` blocks, `Some(Some(t))` until `t`.
    #[doc(hidden)]
    fn cond_acquire(&self, wait: Option<Option<Instant>>) -> bool;
    /// Releases one level.
    #[doc(hidden)]
    fn cond_release(&self) -> Result<(), ReleaseError>;
}

/// The inverse of [`to_wait`].
fn to_option(wait: Wait) -> Option<Option<Instant>> {
    match wait {
        Wait::Never => None,
        Wait::Forever => Some(None),
        Wait::Until(t) => Some(Some(t)),
    }
}

fn to_wait(wait: Option<Option<Instant>>) -> Wait {
    match wait {
        None => Wait::Never,
        Some(None) => Wait::Forever,
        Some(Some(t)) => Wait::Until(t),
    }
}

impl<S: Scope> ConditionLock for Lock<S> {
    type Scope = S;
    type GuardMarker = ();
    fn cond_is_owned(&self) -> bool {
        self.state.held_by_me(LockKind::Lock)
    }
    fn cond_is_locked(&self) -> bool {
        self.is_locked()
    }
    fn cond_release_save(&self) -> usize {
        let _ = self.release();
        0
    }
    #[track_caller]
    fn cond_acquire_restore(&self, _saved: usize) {
        self.acquire_with(Wait::Forever);
    }
    #[track_caller]
    fn cond_acquire(&self, wait: Option<Option<Instant>>) -> bool {
        self.acquire_with(to_wait(wait))
    }
    fn cond_release(&self) -> Result<(), ReleaseError> {
        self.release()
    }
}

impl<S: Scope> ConditionLock for RLock<S> {
    type Scope = S;
    type GuardMarker = *const ();
    fn cond_is_owned(&self) -> bool {
        self.is_owned()
    }
    fn cond_is_locked(&self) -> bool {
        self.is_locked()
    }
    fn cond_release_save(&self) -> usize {
        self.release_save()
    }
    #[track_caller]
    fn cond_acquire_restore(&self, saved: usize) {
        self.acquire_restore(saved);
    }
    #[track_caller]
    fn cond_acquire(&self, wait: Option<Option<Instant>>) -> bool {
        self.acquire_with(to_wait(wait))
    }
    fn cond_release(&self) -> Result<(), ReleaseError> {
        self.release()
    }
}

/// A condition variable, Python's `threading.Condition`
/// ([`spindle::sync::Condition`](crate::sync::Condition)) and
/// `multiprocessing.Condition` ([`spindle::ipc::sync::Condition`](crate::ipc::sync::Condition)):
/// threads holding its lock wait until another thread holding the lock
/// notifies them.
///
/// The lock is an [`RLock`] by default (as in Python) or any [`Lock`]/[`RLock`]
/// of the same scope, shared through an `Arc`, so several conditions can
/// share one lock (as `queue.Queue` does). Waiting or notifying without
/// holding the lock is a [`NotOwnedError`]. Waiting on an `RLock` held at
/// depth *n* frees it fully and restores depth *n* afterwards. There are no
/// spurious wake-ups: `wait` returns only when notified (or on timeout).
/// Notified waiters wake oldest first.
///
/// # Examples
///
/// ```
/// use spindle::sync::Condition;
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
///
/// let cond = Arc::new(Condition::new());
/// let ready = Arc::new(AtomicBool::new(false));
/// let (c2, r2) = (Arc::clone(&cond), Arc::clone(&ready));
/// let t = std::thread::spawn(move || {
///     let _held = c2.lock();
///     r2.store(true, Relaxed);
///     c2.notify_all().unwrap();
/// });
/// {
///     let _held = cond.lock();
///     cond.wait_for(|| ready.load(Relaxed)).unwrap();
/// }
/// t.join().unwrap();
/// ```
pub struct Condition<S: Scope, L: ConditionLock<Scope = S> = RLock<S>> {
    pub(crate) lock: Arc<L>,
    /// The waiters, oldest first. Joined while the waiter holds `lock`, so a
    /// notifier (who must hold it too) cannot miss a waiter.
    pub(crate) queue: S::Place<S::Queue>,
}

impl<S: Scope, L: ConditionLock<Scope = S>> Condition<S, L> {
    /// The underlying lock (shared with whoever else holds the `Arc`).
    pub fn get_lock(&self) -> &Arc<L> {
        &self.lock
    }

    /// Test support, not part of the API: how many threads are waiting on
    /// this condition right now.
    #[doc(hidden)]
    pub fn __parked(&self) -> usize {
        self.queue.waiting()
    }

    lock_family!(ConditionGuard<'_, S, L>);

    /// Releases the underlying lock (`release()`).
    ///
    /// # Errors
    ///
    /// The lock's [`ReleaseError`].
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.lock.cond_release()
    }

    fn guard(&self) -> ConditionGuard<'_, S, L> {
        ConditionGuard {
            cond: self,
            _not_send: PhantomData,
        }
    }

    /// Waits until notified (`wait()`). The lock is released while waiting
    /// and held again when this returns.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn wait(&self) -> Result<(), NotOwnedError> {
        self.wait_inner(None).map(|_| ())
    }

    /// Waits until notified or `timeout` passed (`wait(timeout)`); returns
    /// `false` on timeout, as Python does.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool, NotOwnedError> {
        self.wait_inner(deadline_after(timeout))
    }

    /// Waits until notified or `deadline`; returns `false` on timeout.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn wait_deadline(&self, deadline: Instant) -> Result<bool, NotOwnedError> {
        self.wait_inner(Some(deadline))
    }

    /// CPython's `wait`: join the waiters, release the lock (the whole
    /// recursion level of an `RLock`), sleep, re-acquire; a waiter that timed
    /// out leaves the queue under the lock, where a notification that raced
    /// with the timeout still counts.
    fn wait_inner(&self, deadline: Option<Instant>) -> Result<bool, NotOwnedError> {
        if !self.lock.cond_is_owned() {
            return Err(NotOwnedError);
        }
        let ticket = self.queue.enqueue();
        let saved = self.lock.cond_release_save();
        let notified = self.queue.sleep(&ticket, deadline);
        self.lock.cond_acquire_restore(saved);
        Ok(notified || self.queue.cancel(ticket))
    }

    /// Waits until `predicate()` is true (`wait_for(predicate)`); the predicate
    /// is evaluated with the lock held, first before any wait.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn wait_for(&self, predicate: impl FnMut() -> bool) -> Result<(), NotOwnedError> {
        self.check_owned()?;
        into_ok(BlockingCondition::wait_for(self, predicate))
    }

    /// Waits until `predicate()` is true or `timeout` passed; returns the
    /// predicate's last value (`wait_for(predicate, timeout)`).
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let cond = spindle::sync::Condition::new();
    /// let _held = cond.lock();
    /// assert_eq!(cond.wait_for_timeout(|| false, Duration::from_millis(1)), Ok(false));
    /// ```
    pub fn wait_for_timeout(
        &self,
        predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<bool, NotOwnedError> {
        self.check_owned()?;
        into_ok(BlockingCondition::wait_for_timeout(
            self, predicate, timeout,
        ))
    }

    /// Waits until `predicate()` is true or `deadline`; returns the
    /// predicate's last value.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn wait_for_deadline(
        &self,
        predicate: impl FnMut() -> bool,
        deadline: Instant,
    ) -> Result<bool, NotOwnedError> {
        self.check_owned()?;
        into_ok(BlockingCondition::wait_for_deadline(
            self, predicate, deadline,
        ))
    }

    fn check_owned(&self) -> Result<(), NotOwnedError> {
        if self.lock.cond_is_owned() {
            Ok(())
        } else {
            Err(NotOwnedError)
        }
    }

    /// Wakes up to `n` waiting threads, oldest first (`notify(n)`); returns
    /// how many were woken.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn notify(&self, n: usize) -> Result<usize, NotOwnedError> {
        self.check_owned()?;
        Ok(self.queue.notify(n))
    }

    /// Wakes one waiting thread (`notify()`); returns whether one was woken.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn notify_one(&self) -> Result<bool, NotOwnedError> {
        self.notify(1).map(|n| n == 1)
    }

    /// Wakes every waiting thread (`notify_all()`); returns how many.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn notify_all(&self) -> Result<usize, NotOwnedError> {
        self.notify(usize::MAX)
    }
}

/// The async faces, only over a non-reentrant [`Lock`] (asyncio's
/// `Condition` is over an `asyncio.Lock`): an `RLock` is owned by a thread,
/// and a task moves between threads, so a `Condition` over an `RLock` (the
/// default) has none.
impl<S: Scope> Condition<S, Lock<S>> {
    /// Takes the lock, waiting asynchronously: `async with cond:`. The
    /// guard is `Send`; it is what [`wait_async`](Condition::wait_async)
    /// takes.
    ///
    /// # Cancel safety
    ///
    /// As [`Lock::lock_async`]: cancel-safe.
    #[track_caller]
    pub fn lock_async(&self) -> ConditionLockAsync<'_, S> {
        ConditionLockAsync {
            cond: self,
            acquire: self.lock.lock_async(),
        }
    }

    /// Waits asynchronously until notified: `await cond.wait()` of
    /// asyncio's `Condition`. Takes the guard by value and gives it back
    /// (the lock held again) once notified.
    ///
    /// As asyncio's (and the blocking [`wait`](Condition::wait)): the
    /// waiter is registered before the lock is released, so a `notify`
    /// made under the lock after that cannot be missed; the lock is taken
    /// again with [`Lock::lock_async`]. The release happens at the first
    /// poll. No spurious wake-ups (but see cancel safety for processes).
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] (the guard dropped) if `guard` is of another
    /// condition, or its lock was released explicitly under it (for
    /// processes: by another process).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe as asyncio's (3.13): a future dropped while it waits
    /// leaves the queue, and one that had been notified passes the
    /// notification on to another waiter; the lock is then not held (the
    /// guard went with the future; asyncio re-acquires it first). For
    /// `ipc::sync::Condition`, a waiter leaving at the very moment it is
    /// notified may leave a notification that wakes a later waiter
    /// spuriously (never one lost).
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// use spindle::sync::{Condition, Lock};
    /// use std::sync::Arc;
    ///
    /// let cond = Arc::new(Condition::with_lock(Arc::new(Lock::new())));
    /// let c2 = Arc::clone(&cond);
    /// let notifier = std::thread::spawn(move || {
    ///     while c2.__parked() == 0 {
    ///         std::thread::yield_now();
    ///     }
    ///     let _g = c2.lock();
    ///     c2.notify_one().unwrap();
    /// });
    /// let guard = block_on(cond.lock_async());
    /// let guard = block_on(cond.wait_async(guard)).unwrap();
    /// drop(guard);
    /// notifier.join().unwrap();
    /// ```
    pub fn wait_async<'a>(&'a self, guard: ConditionGuard<'a, S, Lock<S>>) -> ConditionWait<'a, S> {
        ConditionWait {
            cond: self,
            stage: WaitStage::Start(guard),
        }
    }

    /// Waits asynchronously until `predicate` holds: `await
    /// cond.wait_for(predicate)`. Checks it first (with the lock held), then
    /// after each notification; gives the guard back once it holds.
    ///
    /// # Errors
    ///
    /// As [`wait_async`](Condition::wait_async).
    ///
    /// # Cancel safety
    ///
    /// As [`wait_async`](Condition::wait_async).
    pub async fn wait_for_async<'a>(
        &'a self,
        mut guard: ConditionGuard<'a, S, Lock<S>>,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<ConditionGuard<'a, S, Lock<S>>, NotOwnedError> {
        loop {
            if predicate() {
                return Ok(guard);
            }
            guard = self.wait_async(guard).await?;
        }
    }
}

/// The future of [`Condition::lock_async`]: the guard once the lock is
/// taken.
#[must_use = "futures do nothing unless polled"]
pub struct ConditionLockAsync<'a, S: Scope> {
    cond: &'a Condition<S, Lock<S>>,
    acquire: LockAcquire<'a, S>,
}

impl<'a, S: Scope> Future for ConditionLockAsync<'a, S> {
    type Output = ConditionGuard<'a, S, Lock<S>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.acquire.poll_take(cx.waker()) {
            Poll::Ready(this.cond.guard())
        } else {
            Poll::Pending
        }
    }
}

impl<S: Scope> fmt::Debug for ConditionLockAsync<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConditionLockAsync")
            .field("acquire", &self.acquire)
            .finish()
    }
}

/// Where a [`ConditionWait`] is.
enum WaitStage<'a, S: Scope> {
    /// Not polled yet: holds the guard.
    Start(ConditionGuard<'a, S, Lock<S>>),
    /// Registered, lock released, waiting for a notification.
    Waiting {
        ticket: Option<Ticket<S>>,
        watch: Option<S::Watch>,
    },
    /// Notified, taking the lock again.
    Relock(LockAcquire<'a, S>),
    /// Returned.
    Done,
}

/// The future of [`Condition::wait_async`]: the guard again once notified
/// and the lock is retaken.
#[must_use = "futures do nothing unless polled"]
pub struct ConditionWait<'a, S: Scope> {
    cond: &'a Condition<S, Lock<S>>,
    stage: WaitStage<'a, S>,
}

impl<'a, S: Scope> Future for ConditionWait<'a, S> {
    type Output = Result<ConditionGuard<'a, S, Lock<S>>, NotOwnedError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let cond = this.cond;
        loop {
            match &mut this.stage {
                WaitStage::Start(_) => {
                    let WaitStage::Start(guard) =
                        std::mem::replace(&mut this.stage, WaitStage::Done)
                    else {
                        unreachable!()
                    };
                    if !std::ptr::eq(guard.cond, cond) || !cond.lock.cond_is_owned() {
                        drop(guard);
                        return Poll::Ready(Err(NotOwnedError));
                    }
                    // Register before releasing (Python's `wait`).
                    let ticket = cond.queue.enqueue();
                    std::mem::forget(guard);
                    let _ = cond.lock.release();
                    this.stage = WaitStage::Waiting {
                        ticket: Some(ticket),
                        watch: None,
                    };
                }
                WaitStage::Waiting { ticket, watch } => {
                    if let Some(w) = watch.take() {
                        S::unwatch(w);
                    }
                    let t = ticket.as_ref().expect("a waiting stage holds its ticket");
                    match S::poll_ticket(&cond.queue, t, cx.waker()) {
                        Ok(()) => {
                            // Notified: the ticket is used up.
                            *ticket = None;
                            this.stage = WaitStage::Relock(cond.lock.lock_async());
                        }
                        Err(w) => {
                            *watch = Some(w);
                            return Poll::Pending;
                        }
                    }
                }
                WaitStage::Relock(acquire) => {
                    if !acquire.poll_take(cx.waker()) {
                        return Poll::Pending;
                    }
                    this.stage = WaitStage::Done;
                    return Poll::Ready(Ok(cond.guard()));
                }
                WaitStage::Done => panic!("`ConditionWait` polled after completion"),
            }
        }
    }
}

impl<S: Scope> Drop for ConditionWait<'_, S> {
    fn drop(&mut self) {
        match std::mem::replace(&mut self.stage, WaitStage::Done) {
            WaitStage::Waiting { ticket, watch } => {
                if let Some(w) = watch {
                    S::unwatch(w);
                }
                if let Some(t) = ticket {
                    S::abandon_ticket(&self.cond.queue, t);
                }
            }
            // Notified but going away: the notification goes to another
            // waiter (asyncio 3.13's `self._notify(1)`).
            WaitStage::Relock(acquire) => {
                drop(acquire);
                S::pass_notification(&self.cond.queue);
            }
            // The guard (if any) releases the lock as it drops.
            WaitStage::Start(_) | WaitStage::Done => {}
        }
    }
}

impl<S: Scope> fmt::Debug for ConditionWait<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stage = match self.stage {
            WaitStage::Start(_) => "start",
            WaitStage::Waiting { .. } => "waiting",
            WaitStage::Relock(_) => "relock",
            WaitStage::Done => "done",
        };
        f.debug_struct("ConditionWait")
            .field("stage", &stage)
            .finish()
    }
}

impl<S: Scope, L: ConditionLock<Scope = S> + fmt::Debug> fmt::Debug for Condition<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .field("waiting", &self.queue.waiting())
            .finish()
    }
}

/// Holds a [`Condition`]'s lock and releases it when dropped; returned by
/// [`Condition::lock`] (and, over a `Lock`, [`Condition::lock_async`]).
/// Over an `RLock` it is not `Send`: an `RLock` must be released by its
/// owner. Over a `Lock` it is `Send` (a `Lock` has no owner), so a task may
/// hold it across `.await`s.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, S: Scope, L: ConditionLock<Scope = S>> {
    cond: &'a Condition<S, L>,
    _not_send: PhantomData<L::GuardMarker>,
}

impl<'a, S: Scope, L: ConditionLock<Scope = S>> ConditionGuard<'a, S, L> {
    /// The condition whose lock this guard holds.
    pub fn condition(&self) -> &'a Condition<S, L> {
        self.cond
    }
}

impl<S: Scope, L: ConditionLock<Scope = S>> Drop for ConditionGuard<'_, S, L> {
    #[inline]
    fn drop(&mut self) {
        // Fails only if the lock was released explicitly under a live guard.
        let _ = self.cond.lock.cond_release();
    }
}

impl<S: Scope, L: ConditionLock<Scope = S>> fmt::Debug for ConditionGuard<'_, S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConditionGuard")
    }
}

impl<S: Scope, L: ConditionLock<Scope = S>> LockFamily for Condition<S, L> {
    type Guard<'a> = ConditionGuard<'a, S, L>;

    #[track_caller]
    fn acquire_with(&self, wait: Wait) -> bool {
        self.lock.cond_acquire(to_option(wait))
    }
    #[track_caller]
    fn guard_forever(&self) -> ConditionGuard<'_, S, L> {
        self.lock.cond_acquire(Some(None));
        self.guard()
    }
    #[track_caller]
    fn guard_with(&self, wait: Wait) -> Option<ConditionGuard<'_, S, L>> {
        self.lock
            .cond_acquire(to_option(wait))
            .then(|| self.guard())
    }
    fn release_one(&self) -> Result<(), ReleaseError> {
        self.release()
    }
    fn is_held(&self) -> bool {
        self.lock.cond_is_locked()
    }
}

impl<S: Scope, L: ConditionLock<Scope = S>> BlockingCondition for Condition<S, L> {
    fn wait(&self) -> Result<Result<(), NotOwnedError>, Infallible> {
        Ok(Condition::wait(self))
    }
    fn wait_deadline(&self, deadline: Instant) -> Result<Result<bool, NotOwnedError>, Infallible> {
        Ok(Condition::wait_deadline(self, deadline))
    }
    fn notify(&self, n: usize) -> Result<Result<usize, NotOwnedError>, Infallible> {
        Ok(Condition::notify(self, n))
    }
}
