//! [`Lock`]: Python's `threading.Lock` / `multiprocessing.Lock`, once for
//! every scope.
#![forbid(unsafe_code)]

use std::fmt;
use std::panic::{Location, resume_unwind};

use super::family::LockFamily;
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

    lock_family!(LockGuard<'_, S>);

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

impl<S: Scope> LockFamily for Lock<S> {
    type Guard<'a> = LockGuard<'a, S>;

    #[inline]
    #[track_caller]
    fn acquire_with(&self, wait: Wait) -> bool {
        Lock::acquire_with(self, wait)
    }
    #[inline]
    #[track_caller]
    fn guard_forever(&self) -> LockGuard<'_, S> {
        Lock::acquire_with(self, Wait::Forever);
        LockGuard { lock: self }
    }
    #[inline]
    #[track_caller]
    fn guard_with(&self, wait: Wait) -> Option<LockGuard<'_, S>> {
        Lock::acquire_with(self, wait).then(|| LockGuard { lock: self })
    }
    fn release_one(&self) -> Result<(), ReleaseError> {
        self.release()
    }
    fn is_held(&self) -> bool {
        self.is_locked()
    }
}
