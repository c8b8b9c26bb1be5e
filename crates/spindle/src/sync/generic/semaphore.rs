//! [`Semaphore`] and [`BoundedSemaphore`]: Python's `threading.Semaphore`
//! and `BoundedSemaphore` (and their `multiprocessing` twins), once for
//! every scope.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed, SeqCst};
use std::task::{Context, Poll};
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

    /// Takes a permit, waiting asynchronously: the async face of
    /// [`acquire`](Semaphore::acquire), Python's `await
    /// asyncio.Semaphore.acquire()`. The permit is not given back by
    /// itself: call `release`, or use [`permit_async`](Semaphore::permit_async).
    ///
    /// Runtime-agnostic; tasks and blocked threads share the permits (a
    /// release wakes either).
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe: the permit is only taken in the poll that returns
    /// `Ready`, so a dropped future holds none; a future dropped after a
    /// release woke it passes that wake-up on to the next waiter, so no
    /// permit is left with nobody woken to take it.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let sem = spindle::sync::Semaphore::new(1);
    /// block_on(sem.acquire_async());
    /// assert_eq!(sem.value(), 0);
    /// sem.release();
    /// ```
    pub fn acquire_async(&self) -> SemaphoreAcquire<'_, S> {
        SemaphoreAcquire {
            state: &self.state,
            watch: None,
            counted: false,
            done: false,
        }
    }

    /// A guard, waiting asynchronously for a permit: the async face of
    /// [`permit`](Semaphore::permit), Python's `async with sem:`.
    ///
    /// # Cancel safety
    ///
    /// Cancel-safe, as [`acquire_async`](Semaphore::acquire_async): a
    /// dropped future holds no permit and passes on a wake-up it got.
    ///
    /// # Examples
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let mut f = std::pin::pin!(f);
    /// #     let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
    /// # }
    /// let sem = spindle::sync::BoundedSemaphore::new(1);
    /// let permit = block_on(sem.permit_async());
    /// assert_eq!(sem.value(), 0);
    /// drop(permit);
    /// assert_eq!(sem.value(), 1);
    /// ```
    pub fn permit_async(&self) -> SemaphorePermit<'_, S> {
        SemaphorePermit {
            acquire: self.acquire_async(),
        }
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

/// The future of [`Semaphore::acquire_async`]: resolves once it took a
/// permit.
#[must_use = "futures do nothing unless polled"]
pub struct SemaphoreAcquire<'a, S: Scope> {
    state: &'a S::Place<SemState<S>>,
    watch: Option<S::Watch>,
    /// Whether this future counts itself in `waiters` (so `release` wakes).
    counted: bool,
    /// Took its permit (then a drop passes nothing on).
    done: bool,
}

impl<S: Scope> SemaphoreAcquire<'_, S> {
    /// Withdraws the registration and the count; whether a wake-up had
    /// reached the registration.
    fn withdraw(&mut self) -> bool {
        let woken = match self.watch.take() {
            Some(w) => !S::unwatch(w),
            None => false,
        };
        if std::mem::take(&mut self.counted) {
            self.state.waiters.fetch_sub(1, SeqCst);
        }
        woken
    }
}

impl<S: Scope> Future for SemaphoreAcquire<'_, S> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        assert!(!this.done, "`SemaphoreAcquire` polled after completion");
        let st: &SemState<S> = this.state;
        // A previous registration (woken or not) is replaced by one with
        // this poll's waker; a wake-up it got is used by the tries below.
        if let Some(w) = this.watch.take() {
            S::unwatch(w);
        }
        loop {
            if st.try_acquire() {
                this.withdraw();
                this.done = true;
                return Poll::Ready(());
            }
            if !this.counted {
                // As in `acquire_slow`: count (SeqCst), then look at the
                // permits; with `release` (add, then read `waiters`) either
                // it sees us, or we see its permit.
                st.waiters.fetch_add(1, SeqCst);
                this.counted = true;
            }
            if st.value.load(SeqCst) != 0 {
                continue;
            }
            match S::watch(this.state, &st.value, 0, cx.waker()) {
                // A permit arrived meanwhile: try again.
                None => continue,
                Some(w) => {
                    this.watch = Some(w);
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<S: Scope> Drop for SemaphoreAcquire<'_, S> {
    fn drop(&mut self) {
        if self.withdraw() && !self.done {
            // A release woke us and we will not take its permit: wake the
            // next waiter instead (if any is left and a permit is free).
            let st: &SemState<S> = self.state;
            if st.waiters.load(SeqCst) > 0 && st.value.load(SeqCst) > 0 {
                S::wake(&st.value, 1);
            }
        }
    }
}

impl<S: Scope> fmt::Debug for SemaphoreAcquire<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphoreAcquire")
            .field("registered", &self.watch.is_some())
            .field("done", &self.done)
            .finish()
    }
}

/// The future of [`Semaphore::permit_async`]: a [`SemaphoreGuard`] once it
/// took a permit.
#[must_use = "futures do nothing unless polled"]
pub struct SemaphorePermit<'a, S: Scope> {
    acquire: SemaphoreAcquire<'a, S>,
}

impl<'a, S: Scope> Future for SemaphorePermit<'a, S> {
    type Output = SemaphoreGuard<'a, S>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<SemaphoreGuard<'a, S>> {
        let this = self.get_mut();
        match Pin::new(&mut this.acquire).poll(cx) {
            Poll::Ready(()) => Poll::Ready(SemaphoreGuard {
                state: &**this.acquire.state,
            }),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: Scope> fmt::Debug for SemaphorePermit<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SemaphorePermit")
            .field("acquire", &self.acquire)
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
