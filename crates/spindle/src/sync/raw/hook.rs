//! The seam for lock-order checking and deadlock detection.
//!
//! Every acquisition and release of a thread-scope `Lock` or `RLock` —
//! blocking, `try_`, `_timeout`, `_deadline`, guard, and a `Condition`'s
//! release and re-acquisition around `wait` — goes through the thread lock
//! word ([`ThreadMutex`](super::raw::ThreadMutex)), which starts with
//! [`active()`], one relaxed load of a static byte, and calls the cold
//! functions below only when tracking is on (or not decided yet). An `RLock`
//! calls them only for its first (outermost) acquisition and last release.
//!
//! The tracker is not this module's: `crate::lockorder` installs it into
//! [`TRACKER`] before `main` (a static constructor) and decides [`STATE`],
//! reading `SPINDLE_LOCKORDER` on the first tracked call. So `sync` knows
//! nothing of `lockorder`; `lockorder` builds on `sync`.
//!
//! When tracking is on, the tracker performs the raw acquisition itself, so
//! it can record "waiting for", run the order checker before the thread
//! blocks, and abort the wait for deadlock recovery. The hooks run in the
//! acquiring/releasing thread with no internal lock held, so they may panic
//! (the checker's panic mode).
#![forbid(unsafe_code)]

use std::panic::Location;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};

use super::{LockKind, Locked, RawLock};
use crate::sync::id::LockId;
use crate::util::Wait;

/// Tracking state: not decided yet (the tracker decides on first use).
pub(crate) const UNDECIDED: u8 = 0;
/// Tracking state: off; the hooks are never called.
pub(crate) const OFF: u8 = 1;
/// Tracking state: on.
pub(crate) const ON: u8 = 2;

/// Whether acquisitions are tracked. Only the tracker writes it (and this
/// module, to `OFF`, if no tracker was installed).
pub(crate) static STATE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// What tracks acquisitions: installed by `crate::lockorder`.
pub(crate) trait Tracker: Sync {
    /// Takes `raw` (lock `id`) as `wait` allows, tracked; `site` is where
    /// the caller asked for the lock.
    fn acquire(
        &self,
        id: LockId,
        kind: LockKind,
        wait: Wait,
        site: &'static Location<'static>,
        raw: &RawLock,
    ) -> Locked;
    /// Lock `id` was released by the calling thread (for a `Lock`, maybe
    /// not the thread that acquired it).
    fn released(&self, id: LockId, kind: LockKind);
}

/// The installed tracker.
pub(crate) static TRACKER: OnceLock<&'static dyn Tracker> = OnceLock::new();

/// Installs `tracker`; the first installation wins.
pub(crate) fn install(tracker: &'static dyn Tracker) {
    let _ = TRACKER.set(tracker);
}

/// The cheap check on every acquisition and release: true unless tracking is
/// known to be off.
#[inline(always)]
pub(crate) fn active() -> bool {
    STATE.load(Relaxed) != OFF
}

/// Takes `raw` as `wait` allows, without any tracking.
#[inline]
pub(crate) fn raw_acquire(raw: &RawLock, wait: Wait) -> bool {
    match wait {
        Wait::Never => raw.try_lock(),
        Wait::Forever => raw.lock_until(None),
        Wait::Until(t) => raw.lock_until(Some(t)),
    }
}

/// Takes `raw` (lock `id`), tracked.
#[cold]
pub(crate) fn acquire(
    id: LockId,
    kind: LockKind,
    wait: Wait,
    site: &'static Location<'static>,
    raw: &RawLock,
) -> Locked {
    match TRACKER.get() {
        Some(t) => t.acquire(id, kind, wait, site, raw),
        None => {
            // Nothing to track with: stop asking.
            let _ = STATE.compare_exchange(UNDECIDED, OFF, Relaxed, Relaxed);
            if raw_acquire(raw, wait) {
                Locked::Acquired
            } else {
                Locked::Failed
            }
        }
    }
}

/// Called after lock `id` was released.
#[cold]
pub(crate) fn released(id: LockId, kind: LockKind) {
    if let Some(t) = TRACKER.get() {
        t.released(id, kind);
    }
}
