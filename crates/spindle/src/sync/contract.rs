//! The contracts of the synchronisation objects, shared by every scope.
//!
//! [`BlockingLock`], [`BlockingRLock`], [`BlockingCondition`],
//! [`BlockingSemaphore`], [`BlockingBoundedSemaphore`], [`BlockingEvent`] and
//! [`BlockingBarrier`] are Python's `threading` interfaces, which
//! `multiprocessing` and its manager proxies share. The thread objects of
//! [`crate::sync`] and the process-shared ones of [`crate::ipc::sync`]
//! implement them, so code written against `impl BlockingEvent` switches
//! scope by changing one constructor; manager proxies, when they come, will
//! implement them too.
//! The conformance suite of the `spindle-conformance` crate (a port of
//! CPython's `Lib/test/lock_tests.py`) checks every implementation.
//!
//! # Two kinds of failure
//!
//! Every method returns `Result<_, Self::Error>`. `Self::Error` is the
//! scope's own failure — for a planned manager proxy, a lost connection — and
//! is [`Infallible`](std::convert::Infallible) for threads and processes:
//! there, `unwrap` on it cannot fail. What Python reports as an exception of
//! the operation itself (releasing an unlocked lock, a broken barrier, a
//! condition used without its lock) is the inner result, with the same
//! typed errors as the inherent methods:
//!
//! ```
//! use spindle::sync::{BlockingLock, Lock, ReleaseError};
//!
//! fn release_twice<L: BlockingLock>(lock: &L) -> Result<Result<(), ReleaseError>, L::Error> {
//!     lock.acquire()?; // `?`: the scope's failure
//!     assert_eq!(lock.release()?, Ok(())); // inner: Python's RuntimeError, or not
//!     lock.release()
//! }
//! assert_eq!(release_twice(&Lock::new()).unwrap(), Err(ReleaseError::Unlocked));
//! ```
//!
//! # One verb, four variants
//!
//! `verb()` blocks, `try_verb()` never blocks, `verb_timeout(Duration)` and
//! `verb_deadline(Instant)` bound the wait; `_timeout` is provided in terms
//! of `_deadline` (a duration too long to represent waits for ever). A
//! [`Condition`](crate::sync::Condition) and a [`Barrier`](crate::sync::Barrier)
//! have no `try_wait`: a wait that may not block cannot be notified or meet
//! anyone (Python's `wait(0)` is `wait_timeout(Duration::ZERO)` here).
#![forbid(unsafe_code)]

use std::time::{Duration, Instant};

use super::error::{
    BarrierWaitError, BrokenBarrierError, NotOwnedError, OverReleaseError, ReleaseError,
    ReleaseNError,
};

/// The deadline `timeout` from now, `None` when it cannot be represented
/// (the default `_timeout` methods then wait for ever).
fn deadline(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// A lock: Python's `threading.Lock` interface (`multiprocessing.Lock`, a
/// manager's `Lock` proxy).
///
/// Not owned: any thread may release it. `lock*` return an RAII guard that
/// releases on drop (`with lock:`).
pub trait BlockingLock {
    /// The scope's own failure; [`Infallible`](std::convert::Infallible) for
    /// threads and processes.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What [`lock`](BlockingLock::lock) returns: releases on drop.
    type Guard<'a>
    where
        Self: 'a;

    /// Blocks until acquired: `acquire()`.
    fn acquire(&self) -> Result<(), Self::Error>;
    /// Acquires if free, never blocking: `acquire(blocking=False)`.
    fn try_acquire(&self) -> Result<bool, Self::Error>;
    /// Acquires, waiting at most until `deadline`; whether it was acquired.
    fn acquire_deadline(&self, deadline: Instant) -> Result<bool, Self::Error>;
    /// Acquires, waiting at most `timeout`: `acquire(timeout=t)`.
    fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Self::Error> {
        match deadline(timeout) {
            Some(t) => self.acquire_deadline(t),
            None => self.acquire().map(|()| true),
        }
    }
    /// Releases: `release()`. The inner error is Python's `RuntimeError`
    /// (an unlocked lock; for an owned lock, a caller that does not own it).
    fn release(&self) -> Result<Result<(), ReleaseError>, Self::Error>;
    /// Blocks until acquired and returns a guard: `with lock:`.
    fn lock(&self) -> Result<Self::Guard<'_>, Self::Error>;
    /// A guard if the lock is free now.
    fn try_lock(&self) -> Result<Option<Self::Guard<'_>>, Self::Error>;
    /// A guard, waiting at most until `deadline`.
    fn lock_deadline(&self, deadline: Instant) -> Result<Option<Self::Guard<'_>>, Self::Error>;
    /// A guard, waiting at most `timeout`.
    fn lock_timeout(&self, timeout: Duration) -> Result<Option<Self::Guard<'_>>, Self::Error> {
        match deadline(timeout) {
            Some(t) => self.lock_deadline(t),
            None => self.lock().map(Some),
        }
    }
    /// Whether anyone holds it: `locked()`.
    fn is_locked(&self) -> Result<bool, Self::Error>;
}

/// A re-entrant lock: Python's `threading.RLock` interface. Owned by the
/// thread that acquired it, which may acquire it again; only the owner may
/// release it ([`ReleaseError::NotOwner`] otherwise).
pub trait BlockingRLock: BlockingLock {
    /// Whether the calling thread owns it (`_is_owned()`).
    fn is_owned(&self) -> Result<bool, Self::Error>;
    /// How many times the calling thread holds it (0 if it does not own it).
    fn recursion_depth(&self) -> Result<usize, Self::Error>;
}

/// A condition variable: Python's `threading.Condition` interface. The lock
/// family (`acquire`, `lock`, ...) is the one of its underlying lock; `wait`
/// and `notify` require holding it ([`NotOwnedError`] otherwise).
pub trait BlockingCondition: BlockingLock {
    /// Releases the lock, blocks until notified, re-acquires: `wait()`.
    fn wait(&self) -> Result<Result<(), NotOwnedError>, Self::Error>;
    /// As [`wait`](BlockingCondition::wait), giving up at `deadline`;
    /// `Ok(Ok(false))` on timeout (the lock is held again either way).
    fn wait_deadline(&self, deadline: Instant) -> Result<Result<bool, NotOwnedError>, Self::Error>;
    /// As [`wait`](BlockingCondition::wait), giving up after `timeout`:
    /// `wait(timeout)`.
    fn wait_timeout(&self, timeout: Duration) -> Result<Result<bool, NotOwnedError>, Self::Error> {
        match deadline(timeout) {
            Some(t) => self.wait_deadline(t),
            None => self.wait().map(|r| r.map(|()| true)),
        }
    }
    /// Waits until `predicate` holds: `wait_for(predicate)`.
    fn wait_for(
        &self,
        mut predicate: impl FnMut() -> bool,
    ) -> Result<Result<(), NotOwnedError>, Self::Error> {
        while !predicate() {
            if let Err(e) = self.wait()? {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }
    /// Waits until `predicate` holds or `deadline` passes; the predicate's
    /// last value.
    fn wait_for_deadline(
        &self,
        mut predicate: impl FnMut() -> bool,
        deadline: Instant,
    ) -> Result<Result<bool, NotOwnedError>, Self::Error> {
        loop {
            if predicate() {
                return Ok(Ok(true));
            }
            if Instant::now() >= deadline {
                return Ok(Ok(false));
            }
            if let Err(e) = self.wait_deadline(deadline)? {
                return Ok(Err(e));
            }
        }
    }
    /// `wait_for(predicate, timeout)`.
    fn wait_for_timeout(
        &self,
        predicate: impl FnMut() -> bool,
        timeout: Duration,
    ) -> Result<Result<bool, NotOwnedError>, Self::Error> {
        match deadline(timeout) {
            Some(t) => self.wait_for_deadline(predicate, t),
            None => self.wait_for(predicate).map(|r| r.map(|()| true)),
        }
    }
    /// Wakes up to `n` waiters: `notify(n)`; how many were woken.
    fn notify(&self, n: usize) -> Result<Result<usize, NotOwnedError>, Self::Error>;
    /// Wakes one waiter: `notify()`; whether there was one.
    fn notify_one(&self) -> Result<Result<bool, NotOwnedError>, Self::Error> {
        self.notify(1).map(|r| r.map(|n| n == 1))
    }
    /// Wakes every waiter: `notify_all()`; how many were woken.
    fn notify_all(&self) -> Result<Result<usize, NotOwnedError>, Self::Error> {
        self.notify(usize::MAX)
    }
}

/// A semaphore: Python's `threading.Semaphore` interface.
pub trait BlockingSemaphore {
    /// The scope's own failure; [`Infallible`](std::convert::Infallible) for
    /// threads and processes.
    type Error: std::error::Error + Send + Sync + 'static;
    /// What [`permit`](BlockingSemaphore::permit) returns: gives the permit
    /// back on drop.
    type Guard<'a>
    where
        Self: 'a;

    /// Takes a permit, blocking until one is free: `acquire()`.
    fn acquire(&self) -> Result<(), Self::Error>;
    /// Takes a permit if one is free now: `acquire(blocking=False)`.
    fn try_acquire(&self) -> Result<bool, Self::Error>;
    /// Takes a permit, waiting at most until `deadline`.
    fn acquire_deadline(&self, deadline: Instant) -> Result<bool, Self::Error>;
    /// Takes a permit, waiting at most `timeout`: `acquire(timeout=t)`.
    fn acquire_timeout(&self, timeout: Duration) -> Result<bool, Self::Error> {
        match deadline(timeout) {
            Some(t) => self.acquire_deadline(t),
            None => self.acquire().map(|()| true),
        }
    }
    /// A permit as a guard: `with sem:`.
    fn permit(&self) -> Result<Self::Guard<'_>, Self::Error>;
    /// A permit as a guard, if one is free now.
    fn try_permit(&self) -> Result<Option<Self::Guard<'_>>, Self::Error>;
    /// A permit as a guard, waiting at most until `deadline`.
    fn permit_deadline(&self, deadline: Instant) -> Result<Option<Self::Guard<'_>>, Self::Error>;
    /// A permit as a guard, waiting at most `timeout`.
    fn permit_timeout(&self, timeout: Duration) -> Result<Option<Self::Guard<'_>>, Self::Error> {
        match deadline(timeout) {
            Some(t) => self.permit_deadline(t),
            None => self.permit().map(Some),
        }
    }
    /// Gives one permit back: `release()`. The inner error is Python's
    /// `ValueError` of a bounded semaphore released past its initial value.
    fn release(&self) -> Result<Result<(), OverReleaseError>, Self::Error> {
        // `n` = 1 is never `Zero`: the only refusal left is the bound.
        Ok(self.release_n(1)?.map_err(|_| OverReleaseError))
    }
    /// Gives `n` permits back at once: `release(n)`. The inner error is
    /// [`ReleaseNError::Zero`] for `n` = 0 (Python's `ValueError('n must be
    /// one or more')`) or [`ReleaseNError::OverRelease`] past the bound;
    /// either changes nothing.
    fn release_n(&self, n: usize) -> Result<Result<(), ReleaseNError>, Self::Error>;
    /// The permits free now (`get_value()`).
    fn value(&self) -> Result<usize, Self::Error>;
}

/// A bounded semaphore: Python's `threading.BoundedSemaphore`, whose
/// [`release`](BlockingSemaphore::release) past the initial value is an
/// [`OverReleaseError`] that changes nothing.
pub trait BlockingBoundedSemaphore: BlockingSemaphore {
    /// The initial value, which the count never exceeds.
    fn bound(&self) -> Result<usize, Self::Error>;
}

/// An event: Python's `threading.Event` interface.
pub trait BlockingEvent {
    /// The scope's own failure; [`Infallible`](std::convert::Infallible) for
    /// threads and processes.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Whether the flag is set: `is_set()`.
    fn is_set(&self) -> Result<bool, Self::Error>;
    /// Sets the flag and wakes every waiter: `set()`.
    fn set(&self) -> Result<(), Self::Error>;
    /// Clears the flag: `clear()`.
    fn clear(&self) -> Result<(), Self::Error>;
    /// Blocks until the flag is set: `wait()`.
    fn wait(&self) -> Result<(), Self::Error>;
    /// The flag, never blocking: `wait(0)`.
    fn try_wait(&self) -> Result<bool, Self::Error>;
    /// Blocks until the flag is set or `deadline`; `false` on timeout.
    fn wait_deadline(&self, deadline: Instant) -> Result<bool, Self::Error>;
    /// Blocks until the flag is set or `timeout` passed: `wait(timeout)`.
    fn wait_timeout(&self, timeout: Duration) -> Result<bool, Self::Error> {
        match deadline(timeout) {
            Some(t) => self.wait_deadline(t),
            None => self.wait().map(|()| true),
        }
    }
}

/// A barrier: Python's `threading.Barrier` interface.
pub trait BlockingBarrier {
    /// The scope's own failure; [`Infallible`](std::convert::Infallible) for
    /// threads and processes.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Waits until all parties arrive: `wait()`; this party's arrival index
    /// (`0..parties`), or the barrier was broken.
    fn wait(&self) -> Result<Result<usize, BrokenBarrierError>, Self::Error>;
    /// As [`wait`](BlockingBarrier::wait), giving up at `deadline`, which
    /// breaks the barrier for everyone (Python's `wait(timeout)`).
    fn wait_deadline(
        &self,
        deadline: Instant,
    ) -> Result<Result<usize, BarrierWaitError>, Self::Error>;
    /// As [`wait`](BlockingBarrier::wait), giving up after `timeout`.
    fn wait_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Result<usize, BarrierWaitError>, Self::Error> {
        match deadline(timeout) {
            Some(t) => self.wait_deadline(t),
            None => self.wait().map(|r| r.map_err(BarrierWaitError::from)),
        }
    }
    /// How many parties must arrive: `parties`.
    fn parties(&self) -> Result<usize, Self::Error>;
    /// How many are waiting now: `n_waiting`.
    fn n_waiting(&self) -> Result<usize, Self::Error>;
    /// Whether it is broken: `broken`.
    fn is_broken(&self) -> Result<bool, Self::Error>;
    /// Breaks it: waiters and later callers get the broken error: `abort()`.
    fn abort(&self) -> Result<(), Self::Error>;
    /// Back to the empty state; current waiters get the broken error:
    /// `reset()`.
    fn reset(&self) -> Result<(), Self::Error>;
}
