//! [`Lock`]: Python's `threading.Lock` / `multiprocessing.Lock`, once for
//! every scope.
#![forbid(unsafe_code)]

use std::fmt;
use std::future::Future;
use std::panic::{Location, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

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
    /// Takes the lock, waiting asynchronously: the async face of
    /// [`lock`](Lock::lock), Python's `async with lock:` (`await
    /// asyncio.Lock.acquire()`). The guard releases it on drop; a task may
    /// hold it across `.await`s and release it on another thread (a `Lock`
    /// has no owner).
    ///
    /// Runtime-agnostic; tasks, blocked threads (and, for
    /// `ipc::sync::Lock`, other processes) share the lock. No fairness, as
    /// for threads: a running thread may take a just-released lock before a
    /// woken task. For processes, a holder that died is taken over, as by
    /// the blocking forms. Lock-order tracking (`SPINDLE_LOCKORDER`) sees
    /// each try as a `try_lock`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the lock is only taken in the poll that returns the
    /// guard, so a dropped future holds nothing; one dropped after an
    /// unlock woke it passes the wake-up on to another waiter.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let lock = spindle::sync::Lock::new();
    /// let guard = block_on(lock.lock_async());
    /// assert!(lock.is_locked());
    /// drop(guard);
    /// assert!(!lock.is_locked());
    /// ```
    #[track_caller]
    pub fn lock_async(&self) -> LockAcquire<'_, S> {
        LockAcquire {
            lock: self,
            watch: None,
            site: Location::caller(),
        }
    }

    #[inline]
    #[track_caller]
    pub(crate) fn acquire_with(&self, wait: Wait) -> bool {
        self.acquire_at(wait, Location::caller())
    }

    /// [`acquire_with`](Lock::acquire_with) for a caller at `site`.
    #[inline]
    pub(crate) fn acquire_at(&self, wait: Wait, site: &'static Location<'static>) -> bool {
        match self.state.lock(LockKind::Lock, wait, site) {
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

/// The future of [`Lock::lock_async`]: the lock's guard once taken.
#[must_use = "futures do nothing unless polled"]
pub struct LockAcquire<'a, S: Scope> {
    lock: &'a Lock<S>,
    watch: Option<S::Watch>,
    site: &'static Location<'static>,
}

impl<'a, S: Scope> LockAcquire<'a, S> {
    /// Takes the lock or registers `waker`; `true` once taken.
    pub(crate) fn poll_take(&mut self, waker: &std::task::Waker) -> bool {
        // A previous registration (woken or not) is replaced by one with
        // this waker; a wake-up it got is used by the try below.
        if let Some(w) = self.watch.take() {
            S::unwatch(w);
        }
        loop {
            if self.lock.acquire_at(Wait::Never, self.site) {
                return true;
            }
            match S::watch_mutex(&self.lock.state, waker) {
                // Free again: try again.
                None => continue,
                Some(w) => {
                    self.watch = Some(w);
                    return false;
                }
            }
        }
    }
}

impl<'a, S: Scope> Future for LockAcquire<'a, S> {
    type Output = LockGuard<'a, S>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<LockGuard<'a, S>> {
        let this = self.get_mut();
        if this.poll_take(cx.waker()) {
            Poll::Ready(LockGuard { lock: this.lock })
        } else {
            Poll::Pending
        }
    }
}

impl<S: Scope> Drop for LockAcquire<'_, S> {
    fn drop(&mut self) {
        if let Some(w) = self.watch.take()
            && !S::unwatch(w)
        {
            // An unlock woke us and we will not take the lock: wake
            // another waiter instead.
            S::pass_mutex_wake(&self.lock.state);
        }
    }
}

impl<S: Scope> fmt::Debug for LockAcquire<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockAcquire")
            .field("registered", &self.watch.is_some())
            .finish()
    }
}

/// Holds a [`Lock`] and releases it when dropped; returned by [`Lock::lock`]
/// and [`Lock::lock_async`].
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
