//! [`Condition`]: Python's `threading.Condition` /
//! `multiprocessing.Condition`, once for every scope.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::family::LockFamily;
use super::into_ok;
use super::lock::Lock;
use super::rlock::RLock;
use crate::sync::contract::BlockingCondition;
use crate::sync::error::{NotOwnedError, ReleaseError};
use crate::sync::raw::{LockKind, RawMutex, RawQueue, Scope};
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

impl<S: Scope, L: ConditionLock<Scope = S> + fmt::Debug> fmt::Debug for Condition<S, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .field("waiting", &self.queue.waiting())
            .finish()
    }
}

/// Holds a [`Condition`]'s lock and releases it when dropped; returned by
/// [`Condition::lock`]. Not `Send`: an `RLock` must be released by its owner.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, S: Scope, L: ConditionLock<Scope = S>> {
    cond: &'a Condition<S, L>,
    _not_send: PhantomData<*const ()>,
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
