//! [`Semaphore`] and [`BoundedSemaphore`]: Python's `threading.Semaphore` and
//! `threading.BoundedSemaphore`.

use super::deadline_after;
use super::error::OverReleaseError;
use parking_lot_core::{
    self as plc, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN, FilterOp, ParkResult,
};
use std::fmt;
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::time::{Duration, Instant};

/// The counter and wait queue shared by both semaphores.
struct Inner {
    value: AtomicUsize,
    /// Threads in (or about to enter) the wait queue; lets `release` skip the
    /// queue when nobody waits.
    waiters: AtomicUsize,
    /// Highest value a release may reach (`usize::MAX` when unbounded).
    bound: usize,
}

impl Inner {
    const fn new(value: usize, bound: usize) -> Self {
        Inner {
            value: AtomicUsize::new(value),
            waiters: AtomicUsize::new(0),
            bound,
        }
    }

    fn key(&self) -> usize {
        &self.value as *const AtomicUsize as usize
    }

    #[inline]
    fn try_acquire(&self) -> bool {
        let mut v = self.value.load(Relaxed);
        while v > 0 {
            match self.value.compare_exchange_weak(v, v - 1, Acquire, Relaxed) {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
        false
    }

    #[inline]
    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        self.try_acquire() || self.acquire_slow(deadline)
    }

    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>) -> bool {
        loop {
            // Announce ourselves, then park only if no permit is left. With
            // `release` (add, then read `waiters`) this is a SeqCst Dekker
            // pair: either it sees us, or our `validate` sees its permit.
            self.waiters.fetch_add(1, SeqCst);
            // SAFETY: the key is our counter's address, parked on only by
            // this semaphore; `validate` only reads it; nothing unwinds.
            let result = unsafe {
                plc::park(
                    self.key(),
                    || self.value.load(SeqCst) == 0,
                    || {},
                    |_, _| {},
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            self.waiters.fetch_sub(1, SeqCst);
            // Woken or not, try once more: a woken thread that loses the race
            // lost it to a thread that took the permit, so none is stranded.
            if self.try_acquire() {
                return true;
            }
            if let ParkResult::TimedOut = result {
                return false;
            }
        }
    }

    fn release(&self, n: usize) -> Result<(), OverReleaseError> {
        let mut v = self.value.load(Relaxed);
        loop {
            let next = match v.checked_add(n) {
                Some(next) if next <= self.bound => next,
                _ => return Err(OverReleaseError),
            };
            match self.value.compare_exchange_weak(v, next, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if n > 0 && self.waiters.load(SeqCst) > 0 {
            let mut left = n;
            // SAFETY: our own key; `filter` and `callback` only count.
            unsafe {
                plc::unpark_filter(
                    self.key(),
                    |_| {
                        if left == 0 {
                            FilterOp::Stop
                        } else {
                            left -= 1;
                            FilterOp::Unpark
                        }
                    },
                    |_| DEFAULT_UNPARK_TOKEN,
                );
            }
        }
        Ok(())
    }
}

macro_rules! acquire_methods {
    ($guard_ctor:path) => {
        /// Blocks until a permit is available and takes it (`acquire()`).
        #[inline]
        pub fn acquire(&self) {
            self.inner.acquire_until(None);
        }

        /// Takes a permit if one is available, without blocking
        /// (`acquire(blocking=False)`); returns whether one was taken.
        #[inline]
        #[must_use = "if true, a permit was taken and must be released"]
        pub fn try_acquire(&self) -> bool {
            self.inner.try_acquire()
        }

        /// Takes a permit, waiting at most `timeout` (`acquire(timeout=t)`);
        /// returns whether one was taken.
        #[must_use = "if true, a permit was taken and must be released"]
        pub fn acquire_timeout(&self, timeout: Duration) -> bool {
            self.inner.acquire_until(deadline_after(timeout))
        }

        /// Takes a permit, waiting at most until `deadline`; returns whether
        /// one was taken.
        #[must_use = "if true, a permit was taken and must be released"]
        pub fn acquire_deadline(&self, deadline: Instant) -> bool {
            self.inner.acquire_until(Some(deadline))
        }

        /// Takes a permit and returns a guard that gives it back on drop
        /// (`with sem:`).
        #[inline]
        pub fn permit(&self) -> SemaphoreGuard<'_> {
            self.inner.acquire_until(None);
            $guard_ctor(&self.inner)
        }

        /// Returns a guard if a permit is available, without blocking.
        pub fn try_permit(&self) -> Option<SemaphoreGuard<'_>> {
            self.inner.try_acquire().then(|| $guard_ctor(&self.inner))
        }

        /// Returns a guard, waiting at most `timeout` for a permit.
        pub fn permit_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
            self.inner
                .acquire_until(deadline_after(timeout))
                .then(|| $guard_ctor(&self.inner))
        }

        /// Returns a guard, waiting at most until `deadline` for a permit.
        pub fn permit_deadline(&self, deadline: Instant) -> Option<SemaphoreGuard<'_>> {
            self.inner
                .acquire_until(Some(deadline))
                .then(|| $guard_ctor(&self.inner))
        }

        /// Test support, not part of the API: how many threads are blocked
        /// in `acquire` right now.
        #[doc(hidden)]
        pub fn __parked(&self) -> usize {
            super::parked_on(self.inner.key())
        }

        /// The number of permits available now (Python's `_value`).
        pub fn available(&self) -> usize {
            self.inner.value.load(Relaxed)
        }
    };
}

fn guard(inner: &Inner) -> SemaphoreGuard<'_> {
    SemaphoreGuard { inner }
}

/// A counting semaphore, Python's `threading.Semaphore`: `acquire` takes a
/// permit (blocking while there is none), `release` adds one and wakes one
/// waiter. Any thread may release.
///
/// # Examples
///
/// ```
/// use spindle::sync::Semaphore;
///
/// let sem = Semaphore::new(2);
/// let a = sem.permit();
/// let _b = sem.permit();
/// assert!(sem.try_permit().is_none()); // both permits are out
/// drop(a);
/// assert!(sem.try_acquire());
/// sem.release();
/// assert_eq!(sem.available(), 1);
/// ```
pub struct Semaphore {
    inner: Inner,
}

impl Semaphore {
    /// Creates a semaphore with `value` permits (`threading.Semaphore(value)`).
    pub const fn new(value: usize) -> Self {
        Semaphore {
            inner: Inner::new(value, usize::MAX),
        }
    }

    acquire_methods!(guard);

    /// Adds one permit and wakes one waiter (`release()`).
    ///
    /// # Panics
    ///
    /// If the count would exceed `usize::MAX`.
    #[inline]
    pub fn release(&self) {
        self.release_n(1);
    }

    /// Adds `n` permits and wakes up to `n` waiters (`release(n)`).
    ///
    /// # Panics
    ///
    /// If the count would exceed `usize::MAX`.
    pub fn release_n(&self, n: usize) {
        if self.inner.release(n).is_err() {
            panic!("Semaphore count overflow");
        }
    }
}

impl Default for Semaphore {
    /// `threading.Semaphore()`: one permit.
    fn default() -> Self {
        Semaphore::new(1)
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .finish()
    }
}

/// A semaphore that refuses to be released above its initial value, Python's
/// `threading.BoundedSemaphore` (a release without a matching acquire is
/// almost always a bug).
///
/// # Examples
///
/// ```
/// use spindle::sync::{BoundedSemaphore, OverReleaseError};
///
/// let sem = BoundedSemaphore::new(1);
/// sem.acquire();
/// assert_eq!(sem.release(), Ok(()));
/// assert_eq!(sem.release(), Err(OverReleaseError));
/// ```
pub struct BoundedSemaphore {
    inner: Inner,
}

impl BoundedSemaphore {
    /// Creates a bounded semaphore with `value` permits, which is also its
    /// bound (`threading.BoundedSemaphore(value)`).
    pub const fn new(value: usize) -> Self {
        BoundedSemaphore {
            inner: Inner::new(value, value),
        }
    }

    acquire_methods!(guard);

    /// Adds one permit and wakes one waiter (`release()`).
    ///
    /// # Errors
    ///
    /// [`OverReleaseError`] (and nothing changes) if that would exceed the
    /// initial value.
    #[inline]
    pub fn release(&self) -> Result<(), OverReleaseError> {
        self.inner.release(1)
    }

    /// Adds `n` permits and wakes up to `n` waiters (`release(n)`).
    ///
    /// # Errors
    ///
    /// [`OverReleaseError`] (and nothing changes) if that would exceed the
    /// initial value.
    pub fn release_n(&self, n: usize) -> Result<(), OverReleaseError> {
        self.inner.release(n)
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.available())
            .field("bound", &self.inner.bound)
            .finish()
    }
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`], given back on drop.
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    inner: &'a Inner,
}

impl Drop for SemaphoreGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        // Fails only if a mismatched explicit release already filled the
        // bound; the count then stays at the bound.
        let _ = self.inner.release(1);
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}
