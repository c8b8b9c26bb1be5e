//! [`Condition`]: Python's `threading.Condition`.

use super::error::{NotOwnedError, ReleaseError};
use super::event::Event;
use super::lock::Lock;
use super::rlock::RLock;
use super::{Wait, deadline_after};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Lock {}
    impl Sealed for super::RLock {}
}

/// A lock a [`Condition`] can be built on: [`Lock`] or [`RLock`] (sealed).
///
/// The methods are the internal protocol of Python's `Condition` (`_is_owned`,
/// `_release_save`, `_acquire_restore`) and are not meant to be called
/// directly.
pub trait ConditionLock: sealed::Sealed + Send + Sync {
    /// Whether the calling thread may wait/notify: for a `Lock`, whether it
    /// is held by anyone (as in Python); for an `RLock`, whether the calling
    /// thread owns it.
    #[doc(hidden)]
    fn cond_is_owned(&self) -> bool;
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

fn to_wait(wait: Option<Option<Instant>>) -> Wait {
    match wait {
        None => Wait::Never,
        Some(None) => Wait::Forever,
        Some(Some(t)) => Wait::Until(t),
    }
}

impl ConditionLock for Lock {
    fn cond_is_owned(&self) -> bool {
        self.is_locked()
    }
    fn cond_release_save(&self) -> usize {
        let _ = self.release_inner();
        0
    }
    fn cond_acquire_restore(&self, _saved: usize) {
        self.acquire_with(Wait::Forever);
    }
    fn cond_acquire(&self, wait: Option<Option<Instant>>) -> bool {
        self.acquire_with(to_wait(wait))
    }
    fn cond_release(&self) -> Result<(), ReleaseError> {
        self.release_inner()
    }
}

impl ConditionLock for RLock {
    fn cond_is_owned(&self) -> bool {
        self.is_owned()
    }
    fn cond_release_save(&self) -> usize {
        self.release_save()
    }
    fn cond_acquire_restore(&self, saved: usize) {
        self.acquire_restore(saved);
    }
    fn cond_acquire(&self, wait: Option<Option<Instant>>) -> bool {
        self.acquire_with(to_wait(wait))
    }
    fn cond_release(&self) -> Result<(), ReleaseError> {
        self.release_inner()
    }
}

/// A condition variable, Python's `threading.Condition`: threads holding its
/// lock wait until another thread holding the lock notifies them.
///
/// The lock is an [`RLock`] by default (as in Python) or any [`Lock`]/[`RLock`]
/// shared through an `Arc`, so several conditions can share one lock (as
/// `queue.Queue` does). Waiting or notifying without holding the lock is a
/// [`NotOwnedError`]. Waiting on an `RLock` held at depth *n* frees it fully
/// and restores depth *n* afterwards. There are no spurious wake-ups: `wait`
/// returns only when notified (or on timeout).
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
pub struct Condition<L: ConditionLock = RLock> {
    lock: Arc<L>,
    /// CPython's `_waiters`: one one-shot event per waiting thread, oldest
    /// first. Pushed while the waiter holds `lock`, so a notifier (who must
    /// hold it too) cannot miss a waiter.
    waiters: Mutex<VecDeque<Arc<Event>>>,
}

impl Condition<RLock> {
    /// Creates a condition over a fresh [`RLock`] (`threading.Condition()`).
    pub fn new() -> Self {
        Condition::with_lock(Arc::new(RLock::new()))
    }
}

impl Default for Condition<RLock> {
    fn default() -> Self {
        Condition::new()
    }
}

impl<L: ConditionLock> Condition<L> {
    /// Creates a condition over an existing lock (`threading.Condition(lock)`).
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::sync::{Condition, Lock};
    /// use std::sync::Arc;
    ///
    /// let mutex = Arc::new(Lock::new());
    /// let not_empty = Condition::with_lock(Arc::clone(&mutex));
    /// let not_full = Condition::with_lock(Arc::clone(&mutex));
    /// let _held = not_empty.lock();
    /// assert!(mutex.is_locked());
    /// not_full.notify_all().unwrap(); // same lock, so this is allowed
    /// ```
    pub fn with_lock(lock: Arc<L>) -> Self {
        Condition {
            lock,
            waiters: Mutex::new(VecDeque::new()),
        }
    }

    /// The underlying lock.
    pub fn get_lock(&self) -> &Arc<L> {
        &self.lock
    }

    /// Test support, not part of the API: how many threads are waiting on
    /// this condition right now.
    #[doc(hidden)]
    pub fn __parked(&self) -> usize {
        self.waiters.lock().len()
    }

    /// Acquires the underlying lock, blocking (`acquire()`).
    pub fn acquire(&self) {
        self.lock.cond_acquire(Some(None));
    }

    /// Acquires the underlying lock without blocking; returns whether acquired.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn try_acquire(&self) -> bool {
        self.lock.cond_acquire(None)
    }

    /// Acquires the underlying lock, waiting at most `timeout`.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.lock.cond_acquire(Some(deadline_after(timeout)))
    }

    /// Acquires the underlying lock, waiting at most until `deadline`.
    #[must_use = "if true, the lock is held and must be released"]
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.lock.cond_acquire(Some(Some(deadline)))
    }

    /// Releases the underlying lock (`release()`).
    ///
    /// # Errors
    ///
    /// The lock's [`ReleaseError`].
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.lock.cond_release()
    }

    /// Acquires the underlying lock and returns a guard releasing it on drop
    /// (`with cond:`).
    pub fn lock(&self) -> ConditionGuard<'_, L> {
        self.lock.cond_acquire(Some(None));
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

    fn wait_inner(&self, deadline: Option<Instant>) -> Result<bool, NotOwnedError> {
        if !self.lock.cond_is_owned() {
            return Err(NotOwnedError);
        }
        // CPython: allocate a waiter lock, append it, release the lock (the
        // whole recursion level of an RLock), wait on the waiter, re-acquire.
        let me = Arc::new(Event::new());
        self.waiters.lock().push_back(Arc::clone(&me));
        let saved = self.lock.cond_release_save();
        let mut notified = match deadline {
            None => {
                me.wait();
                true
            }
            Some(t) => me.wait_deadline(t),
        };
        if !notified {
            // Timed out: leave the queue, unless a notifier already took us
            // out, in which case its `set` is on its way and counts.
            let mut waiters = self.waiters.lock();
            match waiters.iter().position(|w| Arc::ptr_eq(w, &me)) {
                Some(i) => {
                    waiters.remove(i);
                }
                None => {
                    drop(waiters);
                    me.wait();
                    notified = true;
                }
            }
        }
        self.lock.cond_acquire_restore(saved);
        Ok(notified)
    }

    /// Waits until `predicate()` is true (`wait_for(predicate)`); the predicate
    /// is evaluated with the lock held, first before any wait.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn wait_for(&self, predicate: impl FnMut() -> bool) -> Result<(), NotOwnedError> {
        self.wait_for_inner(predicate, None).map(|_| ())
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
        self.wait_for_inner(predicate, deadline_after(timeout))
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
        self.wait_for_inner(predicate, Some(deadline))
    }

    fn wait_for_inner(
        &self,
        mut predicate: impl FnMut() -> bool,
        deadline: Option<Instant>,
    ) -> Result<bool, NotOwnedError> {
        if !self.lock.cond_is_owned() {
            return Err(NotOwnedError);
        }
        let mut result = predicate();
        while !result {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
            self.wait_inner(deadline)?;
            result = predicate();
        }
        Ok(result)
    }

    /// Wakes up to `n` waiting threads, oldest first (`notify(n)`); returns
    /// how many were woken.
    ///
    /// # Errors
    ///
    /// [`NotOwnedError`] if the calling thread does not hold the lock.
    pub fn notify(&self, n: usize) -> Result<usize, NotOwnedError> {
        if !self.lock.cond_is_owned() {
            return Err(NotOwnedError);
        }
        let mut woken = 0;
        let mut waiters = self.waiters.lock();
        while woken < n {
            let Some(w) = waiters.pop_front() else { break };
            w.set();
            woken += 1;
        }
        Ok(woken)
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

impl<L: ConditionLock + fmt::Debug> fmt::Debug for Condition<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Condition")
            .field("lock", &self.lock)
            .field("waiting", &self.waiters.lock().len())
            .finish()
    }
}

/// Holds a [`Condition`]'s lock; returned by [`Condition::lock`]. It stays on
/// the thread that took it (not `Send`), since an `RLock` has an owner.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct ConditionGuard<'a, L: ConditionLock> {
    cond: &'a Condition<L>,
    _not_send: PhantomData<*const ()>,
}

impl<L: ConditionLock> ConditionGuard<'_, L> {
    /// The condition whose lock this guard holds.
    pub fn condition(&self) -> &Condition<L> {
        self.cond
    }
}

impl<L: ConditionLock> Drop for ConditionGuard<'_, L> {
    #[inline]
    fn drop(&mut self) {
        // Fails only if the lock was released explicitly under a live guard.
        let _ = self.cond.lock.cond_release();
    }
}

impl<L: ConditionLock> fmt::Debug for ConditionGuard<'_, L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConditionGuard")
    }
}
