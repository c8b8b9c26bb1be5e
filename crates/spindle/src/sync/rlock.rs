//! [`RLock`]: Python's `threading.RLock`.

use super::error::ReleaseError;
use super::hook::{self, LockKind, Outcome};
use super::lock::LockId;
use super::raw::RawLock;
use super::{Wait, current_thread_id};
use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A re-entrant lock, Python's `threading.RLock`: the thread that holds it may
/// acquire it again; it is free once released as many times as acquired.
///
/// Unlike a [`Lock`](super::Lock) it has an owner: only the owning thread may
/// release it ([`ReleaseError::NotOwner`] otherwise).
///
/// # Examples
///
/// ```
/// use spindle::sync::{RLock, ReleaseError};
///
/// let rlock = RLock::new();
/// let outer = rlock.lock();
/// let inner = rlock.lock(); // re-entry by the owner does not deadlock
/// assert_eq!(rlock.recursion_depth(), 2);
/// drop(inner);
/// drop(outer);
/// assert!(!rlock.is_locked());
/// assert_eq!(rlock.release(), Err(ReleaseError::NotOwner));
/// ```
pub struct RLock {
    raw: RawLock,
    /// `current_thread_id()` of the owner, 0 when free. Written only by the
    /// owner; another thread only compares it with its own id.
    owner: AtomicU64,
    /// Recursion depth; touched only by the owner.
    count: AtomicUsize,
    id: AtomicU64,
}

impl RLock {
    /// Creates an unlocked re-entrant lock (`threading.RLock()`); usable in a
    /// `static`.
    pub const fn new() -> Self {
        RLock {
            raw: RawLock::new(),
            owner: AtomicU64::new(0),
            count: AtomicUsize::new(0),
            id: AtomicU64::new(0),
        }
    }

    /// Test support, not part of the API: how many threads are blocked
    /// acquiring this lock right now.
    #[doc(hidden)]
    pub fn __parked(&self) -> usize {
        self.raw.parked()
    }

    /// This lock's stable unique id.
    pub fn id(&self) -> LockId {
        LockId::of(&self.id)
    }

    /// Whether any thread holds the lock.
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
    }

    /// Whether the calling thread holds the lock (Python's `_is_owned()`).
    pub fn is_owned(&self) -> bool {
        self.owner.load(Relaxed) == current_thread_id()
    }

    /// How many times the calling thread holds the lock (0 if it does not).
    pub fn recursion_depth(&self) -> usize {
        if self.is_owned() {
            self.count.load(Relaxed)
        } else {
            0
        }
    }

    /// Blocks until the calling thread holds the lock; re-entry returns at once.
    #[inline]
    #[track_caller]
    pub fn acquire(&self) {
        self.acquire_with(Wait::Forever);
    }

    /// Acquires without blocking; returns whether the calling thread now holds
    /// the lock (always true on re-entry).
    #[inline]
    #[must_use = "if true, the lock is held and must be released"]
    #[track_caller]
    pub fn try_acquire(&self) -> bool {
        self.acquire_with(Wait::Never)
    }

    /// Acquires, waiting at most `timeout`; returns whether acquired.
    #[must_use = "if true, the lock is held and must be released"]
    #[track_caller]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.acquire_with(Wait::after(timeout))
    }

    /// Acquires, waiting at most until `deadline`; returns whether acquired.
    #[must_use = "if true, the lock is held and must be released"]
    #[track_caller]
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.acquire_with(Wait::Until(deadline))
    }

    /// Releases one level of the calling thread's hold (`release()`).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotOwner`] if the calling thread does not hold the lock
    /// (Python: `RuntimeError: cannot release un-acquired lock`).
    #[inline]
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.release_inner()
    }

    /// Blocks until acquired and returns a guard releasing one level on drop
    /// (`with rlock:`).
    #[inline]
    #[track_caller]
    pub fn lock(&self) -> RLockGuard<'_> {
        let me = current_thread_id();
        self.acquire_as(me, Wait::Forever);
        RLockGuard {
            lock: self,
            me,
            _not_send: PhantomData,
        }
    }

    /// Returns a guard if the lock is free or already ours, without blocking.
    #[inline]
    #[track_caller]
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        self.guard_with(Wait::Never)
    }

    /// Returns a guard, waiting at most `timeout`.
    #[track_caller]
    pub fn lock_timeout(&self, timeout: Duration) -> Option<RLockGuard<'_>> {
        self.guard_with(Wait::after(timeout))
    }

    /// Returns a guard, waiting at most until `deadline`.
    #[track_caller]
    pub fn lock_deadline(&self, deadline: Instant) -> Option<RLockGuard<'_>> {
        self.guard_with(Wait::Until(deadline))
    }

    #[inline]
    #[track_caller]
    fn guard_with(&self, wait: Wait) -> Option<RLockGuard<'_>> {
        let me = current_thread_id();
        self.acquire_as(me, wait).then(|| RLockGuard {
            lock: self,
            me,
            _not_send: PhantomData,
        })
    }

    /// The one acquisition path of an `RLock` (see `hook.rs`).
    #[inline]
    #[track_caller]
    pub(crate) fn acquire_with(&self, wait: Wait) -> bool {
        self.acquire_as(current_thread_id(), wait)
    }

    #[inline]
    #[track_caller]
    fn acquire_as(&self, me: u64, wait: Wait) -> bool {
        if self.owner.load(Relaxed) == me {
            let depth = self.count.load(Relaxed);
            self.count.store(depth + 1, Relaxed);
            return true;
        }
        self.acquire_outer(me, wait, 1)
    }

    /// First acquisition by `me`, leaving the depth at `depth`.
    #[inline]
    #[track_caller]
    fn acquire_outer(&self, me: u64, wait: Wait, depth: usize) -> bool {
        if hook::active() {
            return match self.acquire_outer_tracked(me, wait, depth, Location::caller()) {
                Outcome::Acquired => true,
                Outcome::Failed => false,
                Outcome::Aborted(e) => hook::unwind_deadlock(e),
            };
        }
        let ok = hook::raw_acquire(&self.raw, wait);
        if ok {
            self.owner.store(me, Relaxed);
            self.count.store(depth, Relaxed);
        }
        ok
    }

    /// [`acquire_outer`](Self::acquire_outer) through the tracker when it is on.
    fn acquire_outer_tracked(
        &self,
        me: u64,
        wait: Wait,
        depth: usize,
        site: &'static Location<'static>,
    ) -> Outcome {
        let out = if hook::active() {
            hook::acquire(self.id(), LockKind::RLock, wait, site, &self.raw)
        } else if hook::raw_acquire(&self.raw, wait) {
            Outcome::Acquired
        } else {
            Outcome::Failed
        };
        if let Outcome::Acquired = out {
            self.owner.store(me, Relaxed);
            self.count.store(depth, Relaxed);
        }
        out
    }

    /// The acquisition path with the detector's verdict as a value (used by
    /// `lockorder`'s ordered acquisition); re-entry succeeds at once.
    pub(crate) fn acquire_tracked(&self, wait: Wait, site: &'static Location<'static>) -> Outcome {
        let me = current_thread_id();
        if self.owner.load(Relaxed) == me {
            let depth = self.count.load(Relaxed);
            self.count.store(depth + 1, Relaxed);
            return Outcome::Acquired;
        }
        self.acquire_outer_tracked(me, wait, 1, site)
    }

    /// The one release path of an `RLock` (see `hook.rs`).
    #[inline]
    pub(crate) fn release_inner(&self) -> Result<(), ReleaseError> {
        self.release_as(current_thread_id())
    }

    /// [`release_inner`](Self::release_inner) for a caller that knows its
    /// thread id (a guard remembers it, saving a thread-local lookup).
    #[inline]
    fn release_as(&self, me: u64) -> Result<(), ReleaseError> {
        if self.owner.load(Relaxed) != me {
            return Err(ReleaseError::NotOwner);
        }
        let depth = self.count.load(Relaxed);
        if depth > 1 {
            self.count.store(depth - 1, Relaxed);
            return Ok(());
        }
        self.release_outer();
        Ok(())
    }

    /// Frees the lock held by the calling thread at any depth.
    #[inline]
    fn release_outer(&self) {
        self.owner.store(0, Relaxed);
        self.count.store(0, Relaxed);
        self.raw.unlock();
        if hook::active() {
            hook::released(self.id(), LockKind::RLock);
        }
    }

    /// Python's `_release_save`: frees the lock whatever the depth and returns
    /// the depth to restore. The caller must own it.
    pub(crate) fn release_save(&self) -> usize {
        let depth = self.count.load(Relaxed);
        self.release_outer();
        depth
    }

    /// Python's `_acquire_restore`: blocks until acquired, at `depth`.
    #[track_caller]
    pub(crate) fn acquire_restore(&self, depth: usize) {
        self.acquire_outer(current_thread_id(), Wait::Forever, depth);
    }
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.is_locked())
            .field("owned", &self.is_owned())
            .finish()
    }
}

/// Holds one level of an [`RLock`]; returned by [`RLock::lock`]. It stays on
/// the owning thread (it is not `Send`), since only the owner may release.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
    me: u64,
    _not_send: PhantomData<*const ()>,
}

impl Drop for RLockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Fails only if the owner released explicitly under a live guard.
        let _ = self.lock.release_as(self.me);
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("lock", &self.lock.id())
            .finish()
    }
}
