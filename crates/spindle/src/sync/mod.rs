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
//! # One implementation, every scope
//!
//! Each object is written once, in [`generic`], over a scope's raw layer
//! ([`raw`]): the types here are its thread-scope aliases (`Lock` is
//! `generic::Lock<ThreadScope>`), and [`crate::ipc::sync`] has the same
//! types for processes. Each implements its contract from [`contract`]
//! ([`BlockingLock`], [`BlockingEvent`], ...), so code generic over the
//! contract runs on either scope (manager proxies are planned).
//!
//! # Differences from Python
//!
//! * Misuse that Python reports with `RuntimeError`/`ValueError` is a typed
//!   error here ([`ReleaseError`], [`NotOwnedError`], [`OverReleaseError`],
//!   [`ReleaseNError`], [`BrokenBarrierError`], [`BarrierWaitError`]).
//! * `Barrier::new(0)` is [`CreateError::ZeroParties`] (Python:
//!   `ValueError`).
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

pub mod contract;
mod error;
pub mod generic;
mod id;
pub mod raw;
mod threads;

pub use contract::{
    BlockingBarrier, BlockingBoundedSemaphore, BlockingCondition, BlockingEvent, BlockingLock,
    BlockingRLock, BlockingSemaphore,
};
pub use error::{
    BarrierWaitError, BrokenBarrierError, CreateError, NotOwnedError, OverReleaseError,
    ReleaseError, ReleaseNError,
};
pub use generic::ConditionLock;
pub use id::LockId;
pub use raw::ThreadScope;

pub(crate) use crate::util::Wait;

/// The public names of the objects in one scope: type aliases of the generic
/// objects over `$scope`, documented with the Python module they mirror.
macro_rules! scope_aliases {
    ($scope:ty, $py:literal) => {
        #[doc = concat!("A primitive lock, Python's `", $py, ".Lock`: see [`generic::Lock`](crate::sync::generic::Lock).")]
        pub type Lock = $crate::sync::generic::Lock<$scope>;
        #[doc = "Holds a [`Lock`]; see [`generic::LockGuard`](crate::sync::generic::LockGuard)."]
        pub type LockGuard<'a> = $crate::sync::generic::LockGuard<'a, $scope>;
        #[doc = concat!("A re-entrant lock, Python's `", $py, ".RLock`: see [`generic::RLock`](crate::sync::generic::RLock).")]
        pub type RLock = $crate::sync::generic::RLock<$scope>;
        #[doc = "Holds one level of an [`RLock`]; see [`generic::RLockGuard`](crate::sync::generic::RLockGuard)."]
        pub type RLockGuard<'a> = $crate::sync::generic::RLockGuard<'a, $scope>;
        #[doc = concat!("A condition variable, Python's `", $py, ".Condition`, over an [`RLock`] by default or a [`Lock`]: see [`generic::Condition`](crate::sync::generic::Condition).")]
        pub type Condition<L = RLock> = $crate::sync::generic::Condition<$scope, L>;
        #[doc = "Holds a [`Condition`]'s lock; see [`generic::ConditionGuard`](crate::sync::generic::ConditionGuard)."]
        pub type ConditionGuard<'a, L = RLock> = $crate::sync::generic::ConditionGuard<'a, $scope, L>;
        #[doc = concat!("A counting semaphore, Python's `", $py, ".Semaphore`: see [`generic::Semaphore`](crate::sync::generic::Semaphore).")]
        pub type Semaphore = $crate::sync::generic::Semaphore<$scope>;
        #[doc = concat!("A bounded semaphore, Python's `", $py, ".BoundedSemaphore`: see [`generic::Semaphore`](crate::sync::generic::Semaphore).")]
        pub type BoundedSemaphore = $crate::sync::generic::BoundedSemaphore<$scope>;
        #[doc = "A permit of a [`Semaphore`] or [`BoundedSemaphore`]; see [`generic::SemaphoreGuard`](crate::sync::generic::SemaphoreGuard)."]
        pub type SemaphoreGuard<'a> = $crate::sync::generic::SemaphoreGuard<'a, $scope>;
        #[doc = concat!("A flag to wait on, Python's `", $py, ".Event`: see [`generic::Event`](crate::sync::generic::Event).")]
        pub type Event = $crate::sync::generic::Event<$scope>;
        #[doc = concat!("Makes a fixed number of parties meet, Python's `", $py, ".Barrier`: see [`generic::Barrier`](crate::sync::generic::Barrier).")]
        pub type Barrier = $crate::sync::generic::Barrier<$scope>;
    };
}

pub(crate) use scope_aliases;

scope_aliases!(ThreadScope, "threading");
