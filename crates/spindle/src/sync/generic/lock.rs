//! [`Lock`]: Python's `threading.Lock` / `multiprocessing.Lock`, once for
//! every scope.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::panic::{Location, resume_unwind};
use std::time::{Duration, Instant};

use crate::sync::contract::BlockingLock;
use crate::sync::error::ReleaseError;
use crate::sync::raw::{LockKind, Locked, RawMutex, Scope};
use crate::util::Wait;

/// A primitive lock, Python's `threading.Lock` (scope [`ThreadScope`], the
/// type [`spindle::sync::Lock`](crate::sync::Lock)) and
/// `multiprocessing.Lock` (the type
/// [`spindle::ipc::sync::Lock`](crate::ipc::sync::Lock)).
///
/// It protects code, not data (for data prefer `std::sync::Mutex<T>`), and it
/// is not owned: any thread may release it, as in Python. Use it two ways:
///
/// * RAII, Python's `with lock:` — [`lock`](Lock::lock) returns a
///   [`LockGuard`] that releases on drop;
/// * explicit, Python's `acquire()`/`release()` — [`acquire`](Lock::acquire)
///   then [`release`](Lock::release), possibly from another thread; releasing
///   an unlocked lock is [`ReleaseError::Unlocked`] instead of a crash.
///
/// Do not mix both on one acquisition: a guard always releases on drop.
///
/// [`ThreadScope`]: crate::sync::raw::ThreadScope
///
/// # Examples
///
/// ```
/// use spindle::sync::Lock;
/// use std::sync::Arc;
///
/// // Acquired here, released by another thread: legal for a Lock.
/// let lock = Arc::new(Lock::new());
/// lock.acquire();
/// let l2 = Arc::clone(&lock);
/// std::thread::spawn(move || l2.release().unwrap()).join().unwrap();
/// assert!(!lock.is_locked());
/// {
///     let _guard = lock.lock();
///     assert!(!lock.try_acquire());
/// }
/// assert!(lock.try_acquire());
/// ```
pub struct Lock<S: Scope> {
    pub(crate) state: S::Place<S::Mutex>,
}

impl<S: Scope> Lock<S> {
    /// Test support, not part of the API: how many threads are blocked
    /// acquiring this lock right now (0 where the scope cannot tell).
    #[doc(hidden)]
    pub fn __parked(&self) -> usize {
        self.state.parked()
    }

    /// Whether the lock is held by anyone (`locked()`).
    #[inline]
    pub fn is_locked(&self) -> bool {
        self.state.is_locked()
    }

    /// Blocks until the lock is acquired (`acquire()`); release it with
    /// [`release`](Lock::release), from any thread.
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::Lock::new();
    /// lock.acquire();
    /// assert!(lock.is_locked());
    /// lock.release().unwrap();
    /// ```
    #[inline]
    #[track_caller]
    pub fn acquire(&self) {
        self.acquire_with(Wait::Forever);
    }

    /// Acquires the lock if it is free, without blocking
    /// (`acquire(blocking=False)`); returns whether it was acquired.
    #[inline]
    #[must_use = "if true, the lock is held and must be released"]
    #[track_caller]
    pub fn try_acquire(&self) -> bool {
        self.acquire_with(Wait::Never)
    }

    /// Acquires the lock, waiting at most `timeout` (`acquire(timeout=t)`);
    /// returns whether it was acquired.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = spindle::sync::Lock::new();
    /// lock.acquire();
    /// assert!(!lock.acquire_timeout(Duration::from_millis(1)));
    /// ```
    #[must_use = "if true, the lock is held and must be released"]
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_with(Wait::after(timeout))
    }

    /// Acquires the lock, waiting at most until `deadline`; returns whether it
    /// was acquired.
    #[must_use = "if true, the lock is held and must be released"]
    #[track_caller]
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.acquire_with(Wait::Until(deadline))
    }

    /// Releases the lock (`release()`); any thread may release it.
    ///
    /// # Errors
    ///
    /// [`ReleaseError::Unlocked`] if the lock was not locked (Python:
    /// `RuntimeError: release unlocked lock`).
    #[inline]
    pub fn release(&self) -> Result<(), ReleaseError> {
        if self.state.unlock(LockKind::Lock) {
            Ok(())
        } else {
            Err(ReleaseError::Unlocked)
        }
    }

    /// Blocks until the lock is acquired and returns a guard that releases it
    /// on drop (`with lock:`).
    ///
    /// # Examples
    ///
    /// ```
    /// let lock = spindle::sync::Lock::new();
    /// {
    ///     let _guard = lock.lock();
    ///     assert!(lock.is_locked());
    /// }
    /// assert!(!lock.is_locked());
    /// ```
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> LockGuard<'_, S> {
        self.acquire_with(Wait::Forever);
        LockGuard { lock: self }
    }

    /// Returns a guard if the lock is free, without blocking.
    #[inline]
    #[track_caller]
    pub fn try_lock(&self) -> Option<LockGuard<'_, S>> {
        self.guard_with(Wait::Never)
    }

    /// Returns a guard, waiting at most `timeout` for the lock.
    #[track_caller]
    pub fn lock_timeout(&self, timeout: Duration) -> Option<LockGuard<'_, S>> {
        self.guard_with(Wait::after(timeout))
    }

    /// Returns a guard, waiting at most until `deadline` for the lock.
    #[track_caller]
    pub fn lock_deadline(&self, deadline: Instant) -> Option<LockGuard<'_, S>> {
        self.guard_with(Wait::Until(deadline))
    }

    #[inline]
    #[track_caller]
    fn guard_with(&self, wait: Wait) -> Option<LockGuard<'_, S>> {
        self.acquire_with(wait).then(|| LockGuard { lock: self })
    }

    /// The one acquisition path of a `Lock`. A wait the deadlock detector
    /// aborts unwinds with its `DeadlockError` (plain acquisitions have no
    /// error channel; `lockorder::recoverable` turns it back into a value).
    #[inline]
    #[track_caller]
    pub(crate) fn acquire_with(&self, wait: Wait) -> bool {
        match self.state.lock(LockKind::Lock, wait, Location::caller()) {
            Locked::Acquired => true,
            Locked::Failed => false,
            Locked::Aborted(payload) => resume_unwind(payload),
        }
    }
}

impl<S: Scope> fmt::Debug for Lock<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

/// Holds a [`Lock`] and releases it when dropped; returned by [`Lock::lock`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a, S: Scope> {
    lock: &'a Lock<S>,
}

impl<'a, S: Scope> LockGuard<'a, S> {
    /// The lock this guard holds.
    pub fn lock(&self) -> &'a Lock<S> {
        self.lock
    }
}

impl<S: Scope> Drop for LockGuard<'_, S> {
    #[inline]
    fn drop(&mut self) {
        // An error here means someone released explicitly while this guard
        // was alive (mixing the two styles); there is nothing left to undo.
        let _ = self.lock.release();
    }
}

impl<S: Scope> fmt::Debug for LockGuard<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

impl<S: Scope> BlockingLock for Lock<S> {
    type Error = Infallible;
    type Guard<'a> = LockGuard<'a, S>;

    #[track_caller]
    fn acquire(&self) -> Result<(), Infallible> {
        Lock::acquire(self);
        Ok(())
    }
    #[track_caller]
    fn try_acquire(&self) -> Result<bool, Infallible> {
        Ok(Lock::try_acquire(self))
    }
    #[track_caller]
    fn acquire_deadline(&self, deadline: Instant) -> Result<bool, Infallible> {
        Ok(Lock::acquire_deadline(self, deadline))
    }
    fn release(&self) -> Result<Result<(), ReleaseError>, Infallible> {
        Ok(Lock::release(self))
    }
    #[track_caller]
    fn lock(&self) -> Result<LockGuard<'_, S>, Infallible> {
        Ok(Lock::lock(self))
    }
    #[track_caller]
    fn try_lock(&self) -> Result<Option<LockGuard<'_, S>>, Infallible> {
        Ok(Lock::try_lock(self))
    }
    #[track_caller]
    fn lock_deadline(&self, deadline: Instant) -> Result<Option<LockGuard<'_, S>>, Infallible> {
        Ok(Lock::lock_deadline(self, deadline))
    }
    fn is_locked(&self) -> Result<bool, Infallible> {
        Ok(Lock::is_locked(self))
    }
}
