//! [`Semaphore`] and [`BoundedSemaphore`]: Python's `threading.Semaphore`
//! and `BoundedSemaphore` (and their `multiprocessing` twins), once for
//! every scope.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::time::{Duration, Instant};

use crate::sync::contract::{BlockingBoundedSemaphore, BlockingSemaphore};
use crate::sync::error::{OverReleaseError, ReleaseNError};
use crate::sync::raw::{RawWord, Scope, take_one};
use crate::util::{deadline_after, passed};

/// The state of a semaphore in its scope's memory.
#[repr(C)]
pub(crate) struct SemState<S: Scope> {
    pub(crate) value: S::Word,
    /// Threads about to sleep or asleep on `value`: `release` wakes only
    /// when there are some.
    pub(crate) waiters: S::Word,
    /// The most permits the count may reach: the scope's maximum for a
    /// `Semaphore`, the initial value for a `BoundedSemaphore`.
    pub(crate) bound: S::Word,
}

/// Marks a [`Semaphore`] that counts up to its scope's maximum.
#[derive(Debug)]
pub enum Unbounded {}

/// Marks a [`Semaphore`] whose count never exceeds its initial value: a
/// [`BoundedSemaphore`].
#[derive(Debug)]
pub enum Bounded {}

/// A bounded semaphore of scope `S`: Python's `BoundedSemaphore`.
pub type BoundedSemaphore<S> = Semaphore<S, Bounded>;

/// A counting semaphore, Python's `threading.Semaphore`
/// ([`spindle::sync::Semaphore`](crate::sync::Semaphore)) and
/// `multiprocessing.Semaphore` ([`spindle::ipc::sync::Semaphore`](crate::ipc::sync::Semaphore)):
/// `acquire` takes a permit (blocking while there is none), `release` adds
/// one and wakes one waiter. Any thread may release.
///
/// With `K` = [`Bounded`] it is a [`BoundedSemaphore`], Python's
/// `BoundedSemaphore`, which refuses to be released above its initial value
/// (a release without a matching acquire is almost always a bug).
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
/// assert_eq!(sem.value(), 1);
/// ```
///
/// ```
/// use spindle::sync::{BoundedSemaphore, OverReleaseError};
///
/// let sem = BoundedSemaphore::new(1);
/// sem.acquire();
/// assert_eq!(sem.release(), Ok(()));
/// assert_eq!(sem.release(), Err(OverReleaseError));
/// ```
pub struct Semaphore<S: Scope, K = Unbounded> {
    pub(crate) state: S::Place<SemState<S>>,
    pub(crate) _kind: PhantomData<K>,
}

impl<S: Scope> SemState<S> {
    #[inline]
    fn try_acquire(&self) -> bool {
        take_one(&self.value, Relaxed, Acquire)
    }

    #[inline]
    fn acquire_until(&self, deadline: Option<Instant>) -> bool {
        self.try_acquire() || self.acquire_slow(deadline)
    }

    #[cold]
    fn acquire_slow(&self, deadline: Option<Instant>) -> bool {
        loop {
            // Announce ourselves, then sleep only if no permit is left. With
            // `release` (add, then read `waiters`) this is a SeqCst Dekker
            // pair: either it sees us, or we see its permit.
            self.waiters.fetch_add(1, SeqCst);
            if self.value.load(SeqCst) == 0 {
                S::wait(&self.value, 0, deadline);
            }
            self.waiters.fetch_sub(1, SeqCst);
            // Woken or not, try once more: a woken thread that loses the race
            // lost it to a thread that took the permit, so none is stranded.
            if self.try_acquire() {
                return true;
            }
            if passed(deadline) {
                return false;
            }
        }
    }

    /// `release(n)` as Python checks it: `n` = 0 is
    /// `ValueError('n must be one or more')`.
    fn release_n(&self, n: usize) -> Result<(), ReleaseNError> {
        if n == 0 {
            return Err(ReleaseNError::Zero);
        }
        Ok(self.release(n)?)
    }

    fn release(&self, n: usize) -> Result<(), OverReleaseError> {
        let bound = self.bound.load(Relaxed);
        let mut v = self.value.load(Relaxed);
        loop {
            let next = match v.checked_add(n) {
                Some(next) if next <= bound => next,
                _ => return Err(OverReleaseError),
            };
            match self.value.compare_exchange_weak(v, next, SeqCst, Relaxed) {
                Ok(_) => break,
                Err(now) => v = now,
            }
        }
        if n > 0 && self.waiters.load(SeqCst) > 0 {
            S::wake(&self.value, n);
        }
        Ok(())
    }
}

impl<S: Scope, K> Semaphore<S, K> {
    /// Takes a permit, blocking until one is free (`acquire()`).
    #[inline]
    pub fn acquire(&self) {
        self.state.acquire_until(None);
    }

    /// Takes a permit if one is free, without blocking
    /// (`acquire(blocking=False)`); returns whether it did.
    #[inline]
    #[must_use = "if true, a permit was taken and must be released"]
    pub fn try_acquire(&self) -> bool {
        self.state.try_acquire()
    }

    /// Takes a permit, waiting at most `timeout` (`acquire(timeout=t)`).
    #[must_use = "if true, a permit was taken and must be released"]
    pub fn acquire_timeout(&self, timeout: Duration) -> bool {
        self.state.acquire_until(deadline_after(timeout))
    }

    /// Takes a permit, waiting at most until `deadline`.
    #[must_use = "if true, a permit was taken and must be released"]
    pub fn acquire_deadline(&self, deadline: Instant) -> bool {
        self.state.acquire_until(Some(deadline))
    }

    /// Takes a permit and returns a guard that gives it back on drop
    /// (`with sem:`).
    #[inline]
    pub fn permit(&self) -> SemaphoreGuard<'_, S> {
        self.state.acquire_until(None);
        self.guard()
    }

    /// A guard if a permit is free now.
    pub fn try_permit(&self) -> Option<SemaphoreGuard<'_, S>> {
        self.state.try_acquire().then(|| self.guard())
    }

    /// A guard, waiting at most `timeout` for a permit.
    pub fn permit_timeout(&self, timeout: Duration) -> Option<SemaphoreGuard<'_, S>> {
        self.state
            .acquire_until(deadline_after(timeout))
            .then(|| self.guard())
    }

    /// A guard, waiting at most until `deadline` for a permit.
    pub fn permit_deadline(&self, deadline: Instant) -> Option<SemaphoreGuard<'_, S>> {
        self.state
            .acquire_until(Some(deadline))
            .then(|| self.guard())
    }

    fn guard(&self) -> SemaphoreGuard<'_, S> {
        SemaphoreGuard { state: &self.state }
    }

    /// The permits free now (`multiprocessing`'s `get_value()`; a racy
    /// snapshot, like Python's `_value`).
    pub fn value(&self) -> usize {
        self.state.value.load(Relaxed)
    }

    /// Test support, not part of the API: how many threads are blocked
    /// acquiring right now.
    #[doc(hidden)]
    pub fn __parked(&self) -> usize {
        self.state.waiters.load(SeqCst)
    }
}

impl<S: Scope> Semaphore<S, Unbounded> {
    /// Adds one permit and wakes one waiter (`release()`).
    ///
    /// # Panics
    ///
    /// If the count would exceed the scope's maximum (`usize::MAX` for
    /// threads, [`SEM_VALUE_MAX`](crate::ipc::sync::SEM_VALUE_MAX) for
    /// processes), like any counter overflow in Rust.
    #[inline]
    pub fn release(&self) {
        if self.state.release(1).is_err() {
            panic!("Semaphore count overflow");
        }
    }

    /// Adds `n` permits and wakes up to `n` waiters (`release(n)`).
    ///
    /// # Errors
    ///
    /// [`ReleaseNError::Zero`] for `n` = 0 (Python: `ValueError('n must be
    /// one or more')`), [`ReleaseNError::OverRelease`] if the count would
    /// exceed the scope's maximum; either changes nothing.
    pub fn release_n(&self, n: usize) -> Result<(), ReleaseNError> {
        self.state.release_n(n)
    }
}

impl<S: Scope> Semaphore<S, Bounded> {
    /// Adds one permit and wakes one waiter (`release()`).
    ///
    /// # Errors
    ///
    /// [`OverReleaseError`] (and nothing changes) if that would exceed the
    /// initial value (Python: `ValueError: Semaphore released too many
    /// times`).
    #[inline]
    pub fn release(&self) -> Result<(), OverReleaseError> {
        self.state.release(1)
    }

    /// Adds `n` permits and wakes up to `n` waiters (`release(n)`).
    ///
    /// # Errors
    ///
    /// [`ReleaseNError::Zero`] for `n` = 0 (Python: `ValueError('n must be
    /// one or more')`), [`ReleaseNError::OverRelease`] if the count would
    /// exceed the initial value; either changes nothing.
    pub fn release_n(&self, n: usize) -> Result<(), ReleaseNError> {
        self.state.release_n(n)
    }

    /// The initial value, which the count never exceeds.
    pub fn bound(&self) -> usize {
        self.state.bound.load(Relaxed)
    }
}

impl<S: Scope> fmt::Debug for Semaphore<S, Unbounded> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("value", &self.value())
            .finish()
    }
}

impl<S: Scope> fmt::Debug for Semaphore<S, Bounded> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("value", &self.value())
            .field("bound", &self.bound())
            .finish()
    }
}

/// A permit of a [`Semaphore`] or [`BoundedSemaphore`], given back on drop.
#[must_use = "the permit is given back as soon as the guard is dropped"]
pub struct SemaphoreGuard<'a, S: Scope> {
    state: &'a SemState<S>,
}

impl<S: Scope> Drop for SemaphoreGuard<'_, S> {
    #[inline]
    fn drop(&mut self) {
        // Fails only if a mismatched explicit release already filled the
        // bound; the count then stays at the bound.
        let _ = self.state.release(1);
    }
}

impl<S: Scope> fmt::Debug for SemaphoreGuard<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SemaphoreGuard")
    }
}

impl<S: Scope, K> BlockingSemaphore for Semaphore<S, K> {
    type Error = Infallible;
    type Guard<'a>
        = SemaphoreGuard<'a, S>
    where
        Self: 'a;

    fn acquire(&self) -> Result<(), Infallible> {
        Semaphore::acquire(self);
        Ok(())
    }
    fn try_acquire(&self) -> Result<bool, Infallible> {
        Ok(Semaphore::try_acquire(self))
    }
    fn acquire_deadline(&self, deadline: Instant) -> Result<bool, Infallible> {
        Ok(Semaphore::acquire_deadline(self, deadline))
    }
    fn permit(&self) -> Result<SemaphoreGuard<'_, S>, Infallible> {
        Ok(Semaphore::permit(self))
    }
    fn try_permit(&self) -> Result<Option<SemaphoreGuard<'_, S>>, Infallible> {
        Ok(Semaphore::try_permit(self))
    }
    fn permit_deadline(
        &self,
        deadline: Instant,
    ) -> Result<Option<SemaphoreGuard<'_, S>>, Infallible> {
        Ok(Semaphore::permit_deadline(self, deadline))
    }
    /// For a `Semaphore`, `OverRelease` means the count would pass the
    /// scope's maximum (where the inherent `release` panics).
    fn release_n(&self, n: usize) -> Result<Result<(), ReleaseNError>, Infallible> {
        Ok(self.state.release_n(n))
    }
    fn value(&self) -> Result<usize, Infallible> {
        Ok(Semaphore::value(self))
    }
}

impl<S: Scope> BlockingBoundedSemaphore for Semaphore<S, Bounded> {
    fn bound(&self) -> Result<usize, Infallible> {
        Ok(Semaphore::bound(self))
    }
}
