//! The seam for lock-order checking and deadlock detection
//! ([`crate::lockorder`]).
//!
//! Every acquisition and release of a [`Lock`](super::Lock) or
//! [`RLock`](super::RLock) — blocking, `try_`, `_timeout`, `_deadline`, guard,
//! and a [`Condition`](super::Condition)'s release and re-acquisition around
//! `wait` — goes through exactly two internal functions per lock type:
//! `Lock::acquire_with`/`Lock::release_inner` and `RLock::acquire_with`/
//! `RLock::release_inner` (plus `RLock::release_save`/`acquire_restore`, which
//! reuse them). Each starts with [`active()`], one relaxed load of a static
//! byte, and calls the cold functions below only when tracking is on (or not
//! decided yet: the first call reads `SPINDLE_LOCKORDER`). An `RLock` calls
//! them only for its first (outermost) acquisition and last release, never
//! for re-entry.
//!
//! When tracking is on, [`acquire`] performs the raw acquisition itself, so
//! the tracker can record "waiting for", run the order checker before the
//! thread blocks, and abort the wait for deadlock recovery. The hooks run in
//! the acquiring/releasing thread with no internal lock held, so they may
//! panic (the checker's panic mode).

use super::Wait;
use super::lock::LockId;
use super::raw::{RawLock, Taken};
use crate::lockorder::DeadlockError;
use std::panic::Location;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

/// Tracking state: not decided yet (the environment is read on first use).
pub(crate) const UNDECIDED: u8 = 0;
/// Tracking state: off; the hooks are never called.
pub(crate) const OFF: u8 = 1;
/// Tracking state: on.
pub(crate) const ON: u8 = 2;

/// Whether acquisitions are tracked. Only `lockorder` writes it.
pub(crate) static STATE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// Which kind of lock a hook is called for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LockKind {
    /// [`Lock`](super::Lock).
    Lock,
    /// [`RLock`](super::RLock) (outermost acquisition / last release only).
    RLock,
}

/// How a tracked acquisition ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The lock is held.
    Acquired,
    /// Busy (`try_`) or timed out.
    Failed,
    /// The deadlock detector chose this wait as a victim and aborted it.
    Aborted(DeadlockError),
}

/// The cheap check on every acquisition and release: true unless tracking is
/// known to be off.
#[inline(always)]
pub(crate) fn active() -> bool {
    STATE.load(Relaxed) != OFF
}

/// Takes `raw` (lock `id`) as `wait` allows, without any tracking.
#[inline]
pub(crate) fn raw_acquire(raw: &RawLock, wait: Wait) -> bool {
    match wait {
        Wait::Never => raw.try_lock(),
        Wait::Forever => raw.lock_until(None),
        Wait::Until(t) => raw.lock_until(Some(t)),
    }
}

/// Takes `raw` (lock `id`), tracked: runs the order checker, records the wait
/// for the deadlock detector and the hold on success. `site` is where the
/// caller asked for the lock.
#[cold]
pub(crate) fn acquire(
    id: LockId,
    kind: LockKind,
    wait: Wait,
    site: &'static Location<'static>,
    raw: &RawLock,
) -> Outcome {
    crate::lockorder::track::acquire(id, kind, wait, site, raw)
}

/// Maps a raw abortable acquisition to a hook outcome (the verdict comes from
/// the tracker).
pub(crate) fn outcome(taken: Taken, verdict: impl FnOnce() -> DeadlockError) -> Outcome {
    match taken {
        Taken::Acquired => Outcome::Acquired,
        Taken::TimedOut => Outcome::Failed,
        Taken::Aborted => Outcome::Aborted(verdict()),
    }
}

/// Called after lock `id` was released by the calling thread (for a `Lock`,
/// possibly not the thread that acquired it).
#[cold]
pub(crate) fn released(id: LockId, kind: LockKind) {
    crate::lockorder::track::released(id, kind);
}

/// What a plain acquisition (which has no error channel) does when the
/// deadlock detector aborts it: unwinds with the [`DeadlockError`] as payload,
/// without calling the panic hook, so guards held by the thread are released
/// and `join` (or [`crate::lockorder::recoverable`]) hands the error back.
#[cold]
pub(crate) fn unwind_deadlock(err: DeadlockError) -> ! {
    std::panic::resume_unwind(Box::new(err))
}
