//! The naming rule's acquisitions of a lock-like object, written once for
//! [`Lock`](super::Lock), [`RLock`](super::RLock) and
//! [`Condition`](super::Condition): the inherent methods ([`lock_family!`])
//! and the [`BlockingLock`] contract, over each type's one acquisition path.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::time::Instant;

use crate::sync::contract::BlockingLock;
use crate::sync::error::ReleaseError;
use crate::util::Wait;

/// A lock-like object's one acquisition path, its guard and its release.
/// Public only in name (this module is private), so the contract's blanket
/// implementation below stays the crate's own.
pub trait LockFamily {
    /// What `lock` returns.
    type Guard<'a>
    where
        Self: 'a;
    /// Acquires as `wait` allows; whether the lock is held now.
    #[track_caller]
    fn acquire_with(&self, wait: Wait) -> bool;
    /// Acquires, blocking, and returns the guard.
    #[track_caller]
    fn guard_forever(&self) -> Self::Guard<'_>;
    /// Acquires as `wait` allows and returns the guard, if it did.
    #[track_caller]
    fn guard_with(&self, wait: Wait) -> Option<Self::Guard<'_>>;
    /// Releases one level.
    fn release_one(&self) -> Result<(), ReleaseError>;
    /// Whether anyone holds it.
    fn is_held(&self) -> bool;
}

/// The eight acquisitions of the naming rule as inherent methods, for a type
/// implementing [`LockFamily`] with guard type `$guard`.
macro_rules! lock_family {
    ($guard:ty) => {
        /// Blocks until the calling thread holds the lock (`acquire()`); an
        /// `RLock`'s owner re-enters at once. Release it with `release`.
        #[inline]
        #[track_caller]
        pub fn acquire(&self) {
            $crate::sync::generic::family::LockFamily::acquire_with(
                self,
                $crate::util::Wait::Forever,
            );
        }

        /// Acquires the lock if that needs no wait
        /// (`acquire(blocking=False)`); returns whether the calling thread
        /// holds it now.
        #[inline]
        #[must_use = "if true, the lock is held and must be released"]
        #[track_caller]
        pub fn try_acquire(&self) -> bool {
            $crate::sync::generic::family::LockFamily::acquire_with(self, $crate::util::Wait::Never)
        }

        /// Acquires the lock, waiting at most `timeout`
        /// (`acquire(timeout=t)`); returns whether it was acquired.
        #[must_use = "if true, the lock is held and must be released"]
        #[track_caller]
        pub fn acquire_timeout(&self, timeout: ::std::time::Duration) -> bool {
            $crate::sync::generic::family::LockFamily::acquire_with(
                self,
                $crate::util::Wait::after(timeout),
            )
        }

        /// Acquires the lock, waiting at most until `deadline`; returns
        /// whether it was acquired.
        #[must_use = "if true, the lock is held and must be released"]
        #[track_caller]
        pub fn acquire_deadline(&self, deadline: ::std::time::Instant) -> bool {
            $crate::sync::generic::family::LockFamily::acquire_with(
                self,
                $crate::util::Wait::Until(deadline),
            )
        }

        /// Blocks until the lock is held and returns a guard that releases
        /// it on drop (`with lock:`).
        #[inline]
        #[track_caller]
        pub fn lock(&self) -> $guard {
            $crate::sync::generic::family::LockFamily::guard_forever(self)
        }

        /// A guard if the lock can be held without a wait.
        #[inline]
        #[track_caller]
        pub fn try_lock(&self) -> Option<$guard> {
            $crate::sync::generic::family::LockFamily::guard_with(self, $crate::util::Wait::Never)
        }

        /// A guard, waiting at most `timeout` for the lock.
        #[track_caller]
        pub fn lock_timeout(&self, timeout: ::std::time::Duration) -> Option<$guard> {
            $crate::sync::generic::family::LockFamily::guard_with(
                self,
                $crate::util::Wait::after(timeout),
            )
        }

        /// A guard, waiting at most until `deadline` for the lock.
        #[track_caller]
        pub fn lock_deadline(&self, deadline: ::std::time::Instant) -> Option<$guard> {
            $crate::sync::generic::family::LockFamily::guard_with(
                self,
                $crate::util::Wait::Until(deadline),
            )
        }
    };
}

impl<T: LockFamily> BlockingLock for T {
    type Error = Infallible;
    type Guard<'a>
        = <T as LockFamily>::Guard<'a>
    where
        T: 'a;

    #[track_caller]
    fn acquire(&self) -> Result<(), Infallible> {
        self.acquire_with(Wait::Forever);
        Ok(())
    }
    #[track_caller]
    fn try_acquire(&self) -> Result<bool, Infallible> {
        Ok(self.acquire_with(Wait::Never))
    }
    #[track_caller]
    fn acquire_deadline(&self, deadline: Instant) -> Result<bool, Infallible> {
        Ok(self.acquire_with(Wait::Until(deadline)))
    }
    fn release(&self) -> Result<Result<(), ReleaseError>, Infallible> {
        Ok(self.release_one())
    }
    #[track_caller]
    fn lock(&self) -> Result<Self::Guard<'_>, Infallible> {
        Ok(self.guard_forever())
    }
    #[track_caller]
    fn try_lock(&self) -> Result<Option<Self::Guard<'_>>, Infallible> {
        Ok(self.guard_with(Wait::Never))
    }
    #[track_caller]
    fn lock_deadline(&self, deadline: Instant) -> Result<Option<Self::Guard<'_>>, Infallible> {
        Ok(self.guard_with(Wait::Until(deadline)))
    }
    fn is_locked(&self) -> Result<bool, Infallible> {
        Ok(self.is_held())
    }
}
