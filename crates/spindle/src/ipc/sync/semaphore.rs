//! [`Semaphore`] and [`BoundedSemaphore`]: Python's
//! `multiprocessing.Semaphore` and `multiprocessing.BoundedSemaphore`.

use std::fmt;
use std::io;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::time::{Duration, Instant};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::core::{self, Kind, Region};
use crate::sync::{OverReleaseError, Wait};

const W_VALUE: usize = 1;
const W_WAITERS: usize = 2;
const W_BOUND: usize = 3;
const WORDS: usize = 4;

/// The largest value a shared semaphore holds (Python's `SEM_VALUE_MAX`).
pub const SEM_VALUE_MAX: usize = i32::MAX as usize;

/// The counter both semaphores share: lock-free, so a process that dies in
/// the middle of an operation leaves nothing locked.
#[derive(Clone)]
struct Inner {
    region: Region,
}

impl Inner {
    fn new(value: usize, bound: usize) -> io::Result<Inner> {
        if value > SEM_VALUE_MAX {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "semaphore value exceeds SEM_VALUE_MAX",
            ));
        }
        let region = Region::new(Kind::Semaphore, WORDS)?;
        region.word(W_VALUE).store(value as u32, SeqCst);
        region.word(W_BOUND).store(bound as u32, SeqCst);
        Ok(Inner { region })
    }

    fn try_acquire(&self) -> bool {
        let w = self.region.word(W_VALUE);
        let mut v = w.load(Relaxed);
        while v > 0 {
            match w.compare_exchange_weak(v, v - 1, Acquire, Relaxed) {
                Ok(_) => return true,
                Err(now) => v = now,
            }
        }
        false
    }

    fn acquire_with(&self, wait: Wait) -> bool {
        if self.try_acquire() {
            return true;
        }
        let deadline = match wait {
            Wait::Never => return false,
            Wait::Forever => None,
            Wait::Until(t) => Some(t),
        };
        let (value, waiters) = (self.region.word(W_VALUE), self.region.word(W_WAITERS));
        loop {
            // Announce, then sleep only while the value is 0: `release` adds
            // then reads `waiters` (SeqCst), so one of us sees the other.
            waiters.fetch_add(1, SeqCst);
            if value.load(SeqCst) == 0 {
                core::wait_on(value, 0, deadline);
            }
            waiters.fetch_sub(1, SeqCst);
            if self.try_acquire() {
                return true;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return false;
            }
        }
    }

    fn release(&self, n: usize) -> Result<(), OverReleaseError> {
        let w = self.region.word(W_VALUE);
        let bound = self.region.word(W_BOUND).load(Relaxed) as usize;
        let mut v = w.load(Relaxed);
        loop {
            let next = match (v as usize).checked_add(n) {
                Some(next) if next <= bound => next as u32,
                _ => return Err(OverReleaseError),
            };
            match w.compare_exchange_weak(v, next, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if n > 0 && self.region.word(W_WAITERS).load(SeqCst) > 0 {
            core::wake(w, n as u32);
        }
        Ok(())
    }

    fn value(&self) -> usize {
        self.region.word(W_VALUE).load(SeqCst) as usize
    }
}

macro_rules! acquire_methods {
    () => {
        /// Blocks until a permit is available and takes it (`acquire()`).
        pub fn acquire(&self) {
            self.inner.acquire_with(Wait::Forever);
        }

        /// Takes a permit if one is available now (`acquire(False)`).
        #[must_use = "if true, a permit was taken and must be released"]
        pub fn try_acquire(&self) -> bool {
            self.inner.acquire_with(Wait::Never)
        }

        /// Takes a permit, waiting at most `timeout`; returns whether taken.
        #[must_use = "if true, a permit was taken and must be released"]
        pub fn acquire_timeout(&self, timeout: Duration) -> bool {
            self.inner.acquire_with(Wait::after(timeout))
        }

        /// Takes a permit, waiting at most until `deadline`.
        #[must_use = "if true, a permit was taken and must be released"]
        pub fn acquire_deadline(&self, deadline: Instant) -> bool {
            self.inner.acquire_with(Wait::Until(deadline))
        }

        /// Blocks until a permit is available and returns a guard that gives
        /// it back on drop (`with sem:`).
        pub fn permit(&self) -> SemaphoreGuard<'_> {
            self.inner.acquire_with(Wait::Forever);
            SemaphoreGuard { inner: &self.inner }
        }

        /// A guard if a permit is available now.
        pub fn try_permit(&self) -> Option<SemaphoreGuard<'_>> {
            self.inner
                .acquire_with(Wait::Never)
                .then_some(SemaphoreGuard { inner: &self.inner })
        }

        /// A guard, waiting at most `timeout` for a permit.
        pub fn permit_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_>> {
            self.inner
                .acquire_with(Wait::after(timeout))
                .then_some(SemaphoreGuard { inner: &self.inner })
        }

        /// The current value (Python's `get_value()`).
        pub fn get_value(&self) -> usize {
            self.inner.value()
        }
    };
}

/// A counter of permits shared between processes, Python's
/// `multiprocessing.Semaphore`.
///
/// It has no owner: a permit taken by a process that then dies is lost, as in
/// Python; nothing else is locked by the death.
///
/// # Examples
///
/// ```
/// use spindle::ipc::sync::Semaphore;
///
/// let sem = Semaphore::new(2)?;
/// assert!(sem.try_acquire() && sem.try_acquire());
/// assert!(!sem.try_acquire());
/// sem.release();
/// assert_eq!(sem.get_value(), 1);
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct Semaphore {
    inner: Inner,
}

impl Semaphore {
    /// Creates a semaphore holding `value` permits
    /// (`multiprocessing.Semaphore(value)`).
    ///
    /// # Errors
    /// `InvalidInput` above [`SEM_VALUE_MAX`]; the OS error if the shared
    /// memory cannot be made.
    pub fn new(value: usize) -> io::Result<Semaphore> {
        Ok(Semaphore {
            inner: Inner::new(value, SEM_VALUE_MAX)?,
        })
    }

    acquire_methods!();

    /// Adds a permit, waking one waiter (`release()`). Past
    /// [`SEM_VALUE_MAX`] the release is ignored (Python raises
    /// `OverflowError`).
    pub fn release(&self) {
        let _ = self.inner.release(1);
    }

    /// Adds `n` permits (`release(n)`), as [`release`](Self::release).
    pub fn release_n(&self, n: usize) {
        let _ = self.inner.release(n);
    }
}

/// A semaphore that refuses to go above its initial value, Python's
/// `multiprocessing.BoundedSemaphore`.
///
/// # Examples
///
/// ```
/// use spindle::ipc::sync::BoundedSemaphore;
/// use spindle::sync::OverReleaseError;
///
/// let sem = BoundedSemaphore::new(1)?;
/// assert_eq!(sem.release(), Err(OverReleaseError));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    inner: Inner,
}

impl BoundedSemaphore {
    /// Creates a bounded semaphore of `value` permits.
    ///
    /// # Errors
    /// As [`Semaphore::new`].
    pub fn new(value: usize) -> io::Result<BoundedSemaphore> {
        Ok(BoundedSemaphore {
            inner: Inner::new(value, value)?,
        })
    }

    acquire_methods!();

    /// Returns a permit (`release()`).
    ///
    /// # Errors
    /// [`OverReleaseError`] if that would exceed the initial value (Python:
    /// `ValueError`); nothing changes then.
    pub fn release(&self) -> Result<(), OverReleaseError> {
        self.inner.release(1)
    }

    /// Returns `n` permits at once, all or none.
    ///
    /// # Errors
    /// As [`release`](Self::release).
    pub fn release_n(&self, n: usize) -> Result<(), OverReleaseError> {
        self.inner.release(n)
    }
}

macro_rules! common_impls {
    ($t:ident) => {
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("value", &self.inner.value())
                    .finish()
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                self.inner.region.serialize(s)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                Ok($t {
                    inner: Inner {
                        region: Region::deserialize(d, Kind::Semaphore, WORDS)?,
                    },
                })
            }
        }
    };
}

/// Holds one permit of a [`Semaphore`] or [`BoundedSemaphore`] and gives it
/// back on drop; returned by `permit()`.
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a> {
    inner: &'a Inner,
}

impl Drop for SemaphoreGuard<'_> {
    fn drop(&mut self) {
        // Cannot exceed a bound: this permit was taken from the count.
        let _ = self.inner.release(1);
    }
}

impl fmt::Debug for SemaphoreGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreGuard").finish_non_exhaustive()
    }
}

common_impls!(Semaphore);
common_impls!(BoundedSemaphore);
