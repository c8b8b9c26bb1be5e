//! Synchronisation objects with the meaning of Python's `threading` module:
//! [`Lock`], [`RLock`], [`Condition`], [`Semaphore`], [`BoundedSemaphore`],
//! [`Event`] and [`Barrier`].
//!
//! # Which one should I use?
//!
//! * To protect **data**, prefer `std::sync::Mutex<T>` (or `parking_lot::Mutex<T>`):
//!   the type system then proves that the data is only touched under the lock.
//!   The objects here are Python's *bare* locks that protect code by convention,
//!   for the patterns that need them: a [`Lock`] released by another thread
//!   than the one that acquired it, an [`RLock`] re-entered by its owner, a
//!   [`Condition`] sharing one lock with other conditions, lock-order checking.
//! * To wait until "something happened" once, use an [`Event`]; to wait for a
//!   predicate over shared state, a [`Condition`]; to bound how many threads do
//!   something at once, a [`Semaphore`] (or a [`BoundedSemaphore`], which also
//!   catches the bug of releasing more than was acquired); to make a fixed
//!   number of threads meet, a [`Barrier`].
//!
//! # One verb, four variants
//!
//! Every blocking operation comes as `verb()` (blocks), `try_verb()` (never
//! blocks), `verb_timeout(Duration)` and `verb_deadline(Instant)`, e.g.
//! [`Lock::acquire`], [`Lock::try_acquire`], [`Lock::acquire_timeout`],
//! [`Lock::acquire_deadline`]. Where Python's `with lock:` is meant, the RAII
//! form returns a guard that releases on drop: [`Lock::lock`], [`Lock::try_lock`],
//! [`Lock::lock_timeout`], [`Lock::lock_deadline`].
//!
//! # Differences from Python
//!
//! * Misuse that Python reports with `RuntimeError`/`ValueError` is a typed
//!   error here ([`ReleaseError`], [`NotOwnedError`], [`OverReleaseError`],
//!   [`BrokenBarrierError`], [`BarrierWaitError`]).
//! * A timed-out [`Barrier::wait_timeout`] breaks the barrier as in Python, but
//!   reports [`BarrierWaitError::Timeout`] to the thread that timed out.
//! * [`Condition::wait_for`] takes a `bool` predicate.
//!
//! # Examples
//!
//! ```
//! use spindle::sync::Lock;
//! use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
//!
//! let lock = Lock::new();
//! let counter = AtomicU64::new(0);
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             for _ in 0..1000 {
//!                 let _held = lock.lock(); // `with lock:`
//!                 // A read-then-write that would lose updates without the lock.
//!                 let v = counter.load(Relaxed);
//!                 counter.store(v + 1, Relaxed);
//!             }
//!         });
//!     }
//! });
//! assert_eq!(counter.into_inner(), 4000);
//! ```

mod barrier;
mod condition;
mod error;
mod event;
pub(crate) mod hook;
mod lock;
pub(crate) mod raw;
mod rlock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard, ConditionLock};
pub use error::{
    BarrierWaitError, BrokenBarrierError, NotOwnedError, OverReleaseError, ReleaseError,
};
pub use event::Event;
pub use lock::{Lock, LockGuard, LockId};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, Semaphore, SemaphoreGuard};

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// How long an acquisition may wait: the one argument of every internal
/// acquisition path (see `hook.rs`).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Wait {
    /// `try_*`: never block.
    Never,
    /// Block until acquired.
    Forever,
    /// Block until acquired or until the instant has passed.
    Until(Instant),
}

impl Wait {
    /// The deadline for a wait of `d` from now; a duration too long to
    /// represent waits forever.
    pub(crate) fn after(d: Duration) -> Wait {
        match Instant::now().checked_add(d) {
            Some(t) => Wait::Until(t),
            None => Wait::Forever,
        }
    }
}

/// A deadline `d` from now, or `None` (forever) if it cannot be represented.
pub(crate) fn deadline_after(d: Duration) -> Option<Instant> {
    Instant::now().checked_add(d)
}

/// A small, never-reused, non-zero number for the calling thread (the owner
/// of an [`RLock`]). Unlike the address of a thread-local, it is never handed
/// to a later thread, so a dead owner can never be mistaken for a live one.
#[inline]
pub(crate) fn current_thread_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    thread_local!(static ID: Cell<u64> = const { Cell::new(0) });
    ID.with(|id| {
        let v = id.get();
        if v != 0 {
            v
        } else {
            let v = NEXT.fetch_add(1, Relaxed);
            id.set(v);
            v
        }
    })
}

/// Counts the threads parked on `key` without waking them (test support for
/// "this thread is blocked now" without sleeping and hoping).
pub(crate) fn parked_on(key: usize) -> usize {
    let mut n = 0;
    // SAFETY: callers pass the key of one of their own objects; `filter` and
    // `callback` only count and unpark nobody (every thread is skipped).
    unsafe {
        parking_lot_core::unpark_filter(
            key,
            |_| {
                n += 1;
                parking_lot_core::FilterOp::Skip
            },
            |_| parking_lot_core::DEFAULT_UNPARK_TOKEN,
        );
    }
    n
}
