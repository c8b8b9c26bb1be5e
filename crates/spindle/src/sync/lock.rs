//! [`Lock`]: Python's `threading.Lock`.

use super::Wait;
use super::error::ReleaseError;
use super::hook::{self, LockKind, Outcome};
use super::raw::RawLock;
use std::fmt;
use std::num::NonZeroU64;
use std::panic::Location;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A stable, process-unique identity of a [`Lock`] or [`RLock`](super::RLock),
/// assigned on first use and never reused (Python code orders locks by
/// `id(lock)`; this is the Rust twin, and the key lock-order checking uses).
///
/// # Examples
///
/// ```
/// use spindle::sync::Lock;
///
/// let (a, b) = (Lock::new(), Lock::new());
/// assert_ne!(a.id(), b.id());
/// assert_eq!(a.id(), a.id());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LockId(NonZeroU64);

impl LockId {
    /// The id as a number.
    pub fn get(self) -> u64 {
        self.0.get()
    }

    /// Reads the id stored in `slot`, assigning the next free one on first use.
    pub(crate) fn of(slot: &AtomicU64) -> LockId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let mut id = slot.load(Relaxed);
        if id == 0 {
            let fresh = NEXT.fetch_add(1, Relaxed);
            id = match slot.compare_exchange(0, fresh, Relaxed, Relaxed) {
                Ok(_) => fresh,
                Err(won) => won,
            };
        }
        LockId(NonZeroU64::new(id).unwrap_or(NonZeroU64::MIN))
    }
}

impl fmt::Display for LockId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "lock#{}", self.0)
    }
}

/// A primitive lock, Python's `threading.Lock`.
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
pub struct Lock {
    raw: RawLock,
    id: AtomicU64,
}

impl Lock {
    /// Creates an unlocked lock (`threading.Lock()`); usable in a `static`.
    pub const fn new() -> Self {
        Lock {
            raw: RawLock::new(),
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

    /// Whether the lock is held by any thread (`locked()`).
    pub fn is_locked(&self) -> bool {
        self.raw.is_locked()
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
        self.release_inner()
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
    pub fn lock(&self) -> LockGuard<'_> {
        self.acquire_with(Wait::Forever);
        LockGuard { lock: self }
    }

    /// Returns a guard if the lock is free, without blocking.
    #[inline]
    #[track_caller]
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        self.acquire_with(Wait::Never)
            .then(|| LockGuard { lock: self })
    }

    /// Returns a guard, waiting at most `timeout` for the lock.
    #[track_caller]
    pub fn lock_timeout(&self, timeout: Duration) -> Option<LockGuard<'_>> {
        self.acquire_with(Wait::after(timeout))
            .then(|| LockGuard { lock: self })
    }

    /// Returns a guard, waiting at most until `deadline` for the lock.
    #[track_caller]
    pub fn lock_deadline(&self, deadline: Instant) -> Option<LockGuard<'_>> {
        self.acquire_with(Wait::Until(deadline))
            .then(|| LockGuard { lock: self })
    }

    /// The one acquisition path of a `Lock` (see `hook.rs`).
    #[inline]
    #[track_caller]
    pub(crate) fn acquire_with(&self, wait: Wait) -> bool {
        if hook::active() {
            return match self.acquire_tracked(wait, Location::caller()) {
                Outcome::Acquired => true,
                Outcome::Failed => false,
                Outcome::Aborted(e) => hook::unwind_deadlock(e),
            };
        }
        hook::raw_acquire(&self.raw, wait)
    }

    /// The acquisition path with the detector's verdict as a value (used by
    /// `lockorder`'s ordered acquisition); `site` is the caller's location.
    #[inline]
    pub(crate) fn acquire_tracked(&self, wait: Wait, site: &'static Location<'static>) -> Outcome {
        if hook::active() {
            return hook::acquire(self.id(), LockKind::Lock, wait, site, &self.raw);
        }
        if hook::raw_acquire(&self.raw, wait) {
            Outcome::Acquired
        } else {
            Outcome::Failed
        }
    }

    /// The one release path of a `Lock` (see `hook.rs`).
    #[inline]
    pub(crate) fn release_inner(&self) -> Result<(), ReleaseError> {
        if !self.raw.unlock() {
            return Err(ReleaseError::Unlocked);
        }
        if hook::active() {
            hook::released(self.id(), LockKind::Lock);
        }
        Ok(())
    }
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .finish()
    }
}

/// Holds a [`Lock`] and releases it when dropped; returned by [`Lock::lock`].
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl LockGuard<'_> {
    /// The lock this guard holds.
    pub fn lock(&self) -> &Lock {
        self.lock
    }
}

impl Drop for LockGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // An error here means someone released explicitly while this guard
        // was alive (mixing the two styles); there is nothing left to undo.
        let _ = self.lock.release_inner();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("lock", &self.lock.id())
            .finish()
    }
}
