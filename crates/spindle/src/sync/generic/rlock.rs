//! [`RLock`]: Python's `threading.RLock` / `multiprocessing.RLock`, once for
//! every scope.
#![forbid(unsafe_code)]

use std::convert::Infallible;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{Location, resume_unwind};
use std::sync::atomic::Ordering::Relaxed;

use super::family::LockFamily;
use crate::sync::contract::BlockingRLock;
use crate::sync::error::ReleaseError;
use crate::sync::raw::{LockKind, Locked, RawMutex, RawOwner, RawWord, Scope};
use crate::util::Wait;

/// The state of an [`RLock`] in its scope's memory.
#[repr(C)]
pub(crate) struct RState<S: Scope> {
    pub(crate) mutex: S::Mutex,
    /// The owner; written only by the owner, compared by anyone with itself.
    pub(crate) owner: S::Owner,
    /// Recursion depth; touched only by the owner.
    pub(crate) depth: S::Word,
    /// Bumped (never to 0) on each outermost acquisition: tells one holding
    /// from the next (shared ctypes detect a second borrow with it).
    pub(crate) generation: S::Word,
}

/// The calling thread's owner token in scope `S`.
type Token<S> = <<S as Scope>::Owner as RawOwner>::Token;

/// A re-entrant lock, Python's `threading.RLock` ([`spindle::sync::RLock`](crate::sync::RLock))
/// and `multiprocessing.RLock` ([`spindle::ipc::sync::RLock`](crate::ipc::sync::RLock)):
/// the thread that holds it may acquire it again; it is free once released
/// as many times as acquired.
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
pub struct RLock<S: Scope> {
    pub(crate) state: S::Place<RState<S>>,
}

impl<S: Scope> RLock<S> {
    /// Test support, not part of the API: how many threads are blocked
    /// acquiring this lock right now (0 where the scope cannot tell).
    #[doc(hidden)]
    pub fn __parked(&self) -> usize {
        self.state.mutex.parked()
    }

    /// Whether any thread holds the lock.
    pub fn is_locked(&self) -> bool {
        self.state.mutex.is_locked()
    }

    /// Whether the calling thread holds the lock (Python's `_is_owned()`).
    pub fn is_owned(&self) -> bool {
        self.state.owner.is(S::Owner::me())
    }

    /// How many times the calling thread holds the lock (0 if it does not).
    pub fn recursion_depth(&self) -> usize {
        if self.is_owned() {
            self.state.depth.load(Relaxed)
        } else {
            0
        }
    }

    lock_family!(RLockGuard<'_, S>);

    /// Releases one level of the calling thread's hold (`release()`).
    ///
    /// # Errors
    ///
    /// [`ReleaseError::NotOwner`] if the calling thread does not hold the lock
    /// (Python: `RuntimeError: cannot release un-acquired lock`).
    #[inline]
    pub fn release(&self) -> Result<(), ReleaseError> {
        self.release_as(S::Owner::me())
    }

    #[inline]
    fn guard(&self, me: Token<S>) -> RLockGuard<'_, S> {
        RLockGuard {
            lock: self,
            me,
            _not_send: PhantomData,
        }
    }

    /// The one acquisition path of an `RLock`.
    #[inline]
    #[track_caller]
    pub(crate) fn acquire_with(&self, wait: Wait) -> bool {
        self.acquire_as(S::Owner::me(), wait)
    }

    #[inline]
    #[track_caller]
    fn acquire_as(&self, me: Token<S>, wait: Wait) -> bool {
        match self.locked_as(me, wait, 1, Location::caller()) {
            Locked::Acquired => true,
            Locked::Failed => false,
            Locked::Aborted(payload) => resume_unwind(payload),
        }
    }

    /// The acquisition path with the raw verdict as a value (lock-order's
    /// ordered acquisition); re-entry succeeds at once.
    pub(crate) fn acquire_locked(&self, wait: Wait, site: &'static Location<'static>) -> Locked {
        self.locked_as(S::Owner::me(), wait, 1, site)
    }

    /// Re-entry, or the first acquisition by `me`, leaving the depth at
    /// `depth`.
    #[inline]
    fn locked_as(
        &self,
        me: Token<S>,
        wait: Wait,
        depth: usize,
        site: &'static Location<'static>,
    ) -> Locked {
        let st = &*self.state;
        if st.owner.is(me) {
            st.depth.store(st.depth.load(Relaxed) + 1, Relaxed);
            return Locked::Acquired;
        }
        let out = st.mutex.lock(LockKind::RLock, wait, site);
        if let Locked::Acquired = out {
            st.owner.set(me);
            st.depth.store(depth, Relaxed);
            let g = st.generation.load(Relaxed);
            let next = if g >= S::Word::MAX { 1 } else { g + 1 };
            st.generation.store(next, Relaxed);
        }
        out
    }

    #[inline]
    fn release_as(&self, me: Token<S>) -> Result<(), ReleaseError> {
        let st = &*self.state;
        if !st.owner.is(me) {
            return Err(ReleaseError::NotOwner);
        }
        let depth = st.depth.load(Relaxed);
        if depth > 1 {
            st.depth.store(depth - 1, Relaxed);
            return Ok(());
        }
        self.release_outer();
        Ok(())
    }

    #[inline]
    fn release_outer(&self) {
        let st = &*self.state;
        st.owner.clear();
        st.depth.store(0, Relaxed);
        st.mutex.unlock(LockKind::RLock);
    }

    /// Releases the whole hold for a `Condition::wait`, returning the depth
    /// to restore (CPython `_release_save`). The caller owns the lock.
    pub(crate) fn release_save(&self) -> usize {
        let depth = self.state.depth.load(Relaxed);
        self.release_outer();
        depth
    }

    /// Re-acquires after a `Condition::wait` at the saved depth (CPython
    /// `_acquire_restore`).
    #[track_caller]
    pub(crate) fn acquire_restore(&self, depth: usize) {
        if let Locked::Aborted(payload) = self.locked_as(
            S::Owner::me(),
            Wait::Forever,
            depth.max(1),
            Location::caller(),
        ) {
            resume_unwind(payload)
        }
    }

    /// The generation of the current holding (see [`RState::generation`]).
    pub(crate) fn generation(&self) -> usize {
        self.state.generation.load(Relaxed)
    }
}

impl<S: Scope> fmt::Debug for RLock<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("locked", &self.is_locked())
            .field("owned", &self.is_owned())
            .finish()
    }
}

/// Holds one level of an [`RLock`]; returned by [`RLock::lock`]. Not `Send`:
/// the owning thread must release it.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a, S: Scope> {
    lock: &'a RLock<S>,
    me: Token<S>,
    _not_send: PhantomData<*const ()>,
}

impl<S: Scope> Drop for RLockGuard<'_, S> {
    #[inline]
    fn drop(&mut self) {
        // Fails only if the owner released explicitly under a live guard.
        let _ = self.lock.release_as(self.me);
    }
}

impl<S: Scope> fmt::Debug for RLockGuard<'_, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard").finish_non_exhaustive()
    }
}

impl<S: Scope> LockFamily for RLock<S> {
    type Guard<'a> = RLockGuard<'a, S>;

    #[inline]
    #[track_caller]
    fn acquire_with(&self, wait: Wait) -> bool {
        RLock::acquire_with(self, wait)
    }
    #[inline]
    #[track_caller]
    fn guard_forever(&self) -> RLockGuard<'_, S> {
        let me = S::Owner::me();
        self.acquire_as(me, Wait::Forever);
        self.guard(me)
    }
    #[inline]
    #[track_caller]
    fn guard_with(&self, wait: Wait) -> Option<RLockGuard<'_, S>> {
        let me = S::Owner::me();
        self.acquire_as(me, wait).then(|| self.guard(me))
    }
    fn release_one(&self) -> Result<(), ReleaseError> {
        self.release()
    }
    fn is_held(&self) -> bool {
        self.is_locked()
    }
}

impl<S: Scope> BlockingRLock for RLock<S> {
    fn is_owned(&self) -> Result<bool, Infallible> {
        Ok(RLock::is_owned(self))
    }
    fn recursion_depth(&self) -> Result<usize, Infallible> {
        Ok(RLock::recursion_depth(self))
    }
}
