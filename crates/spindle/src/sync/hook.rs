//! The seam for lock-order checking and deadlock detection (`lockorder`,
//! issue 7). Nothing is checked yet.
//!
//! Every acquisition and release of a [`Lock`](super::Lock) or
//! [`RLock`](super::RLock) — blocking, `try_`, `_timeout`, `_deadline`, guard,
//! and a [`Condition`](super::Condition)'s release and re-acquisition around
//! `wait` — goes through exactly two internal functions per lock type:
//! `Lock::acquire_with`/`Lock::release_inner` and `RLock::acquire_with`/
//! `RLock::release_inner` (plus `RLock::release_save`/`acquire_restore`, which
//! reuse them). Each starts with [`active()`], one relaxed load of a static
//! flag, and calls the cold functions below only when checking is on. An
//! `RLock` calls them only for its first (outermost) acquisition and last
//! release, never for re-entry.
//!
//! To plug in a checker: set [`ACTIVE`] and fill in the bodies (or make them
//! forward to `crate::lockorder`). The hooks run in the acquiring/releasing
//! thread with no internal lock held, so they may panic (a lock-order
//! violation) or block; a `Condition::wait` releases and re-acquires its
//! lock through the same paths.

use super::lock::LockId;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// Whether lock-order checking is on. Only `lockorder` sets it.
pub(crate) static ACTIVE: AtomicBool = AtomicBool::new(false);

/// Which kind of lock a hook is called for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// [`Lock`](super::Lock).
    Lock,
    /// [`RLock`](super::RLock) (outermost acquisition / last release only).
    RLock,
}

/// The cheap check on every acquisition and release.
#[inline(always)]
pub(crate) fn active() -> bool {
    ACTIVE.load(Relaxed)
}

/// Called before the calling thread tries to take lock `id`; `blocking` tells
/// whether it may wait (a deadlock can only involve blocking acquisitions).
#[cold]
pub(crate) fn before_acquire(_id: LockId, _kind: LockKind, _blocking: bool) {}

/// Called after the calling thread took lock `id`.
#[cold]
pub(crate) fn acquired(_id: LockId, _kind: LockKind) {}

/// Called after lock `id` was released by the calling thread (for a `Lock`,
/// possibly not the thread that acquired it).
#[cold]
pub(crate) fn released(_id: LockId, _kind: LockKind) {}
