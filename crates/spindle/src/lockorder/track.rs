//! The tracker: the sync layer's hook (`sync/raw/hook.rs`) calls it on every
//! acquisition and release of a spindle lock while tracking is on; it runs
//! the order checker, records holds and waits in `state`, and lets the
//! detector abort a wait. It installs itself into the hook before `main`.

use super::checker;
use super::error::DeadlockError;
use super::state::{self, Held, Inner, Site, ThreadState, Waiting};
use crate::sync::LockId;
use crate::sync::raw::hook::{self, ON, STATE, Tracker};
use crate::sync::raw::{LockKind, Locked, RawLock, Taken};
use crate::util::Wait;
use std::sync::atomic::{Ordering::Acquire, Ordering::Relaxed};
use std::time::Instant;

/// The hook's acquisition (see `sync/hook.rs`).
pub(crate) fn acquire(
    id: LockId,
    _kind: LockKind,
    wait: Wait,
    site: Site,
    raw: &RawLock,
) -> Locked {
    state::decide();
    if STATE.load(Relaxed) != ON {
        return plain(raw, wait);
    }
    state::with_me(|me| acquire_as(me, id, wait, site, raw)).unwrap_or_else(|| plain(raw, wait))
}

fn acquire_as(me: &ThreadState, id: LockId, wait: Wait, site: Site, raw: &RawLock) -> Locked {
    let mut inner = me.inner.lock();
    // Only an acquisition that may wait forever can be part of a deadlock.
    if matches!(wait, Wait::Forever) && state::checker_flag() {
        let found = checker::on_acquire(me, inner.held_now(), id, site);
        if found.is_some() {
            // The sink may panic or take locks: call it with nothing held.
            drop(inner);
            checker::emit(found);
            inner = me.inner.lock();
        }
    }
    if raw.try_lock() {
        inner.held_now().push(Held { id, site });
        return Locked::Acquired;
    }
    let deadline = match wait {
        Wait::Never => return Locked::Failed,
        Wait::Forever => None,
        Wait::Until(t) => Some(t),
    };
    inner.seq += 1;
    let seq = inner.seq;
    inner.waiting = Some(Waiting {
        id,
        site,
        seq,
        key: raw.key(),
        since: Instant::now(),
        forever: deadline.is_none(),
    });
    drop(inner);
    let taken = raw.lock_abortable(deadline, || me.abort.load(Acquire) == seq);
    let mut inner = me.inner.lock();
    inner.waiting = None;
    let verdict = inner.verdict.take();
    me.abort.store(0, Relaxed);
    let out = match taken {
        Taken::Acquired => Locked::Acquired,
        Taken::TimedOut => Locked::Failed,
        Taken::Aborted => Locked::Aborted(Box::new(DeadlockError::new(verdict, me.tid, id))),
    };
    if let Locked::Acquired = out {
        inner.held_now().push(Held { id, site });
    }
    out
}

fn plain(raw: &RawLock, wait: Wait) -> Locked {
    if hook::raw_acquire(raw, wait) {
        Locked::Acquired
    } else {
        Locked::Failed
    }
}

/// The hook's release: forgets the hold, in the releasing thread or, for a
/// `Lock` released by another thread, wherever it was recorded.
pub(crate) fn released(id: LockId, _kind: LockKind) {
    if STATE.load(Relaxed) != ON {
        return;
    }
    if state::with_me(|me| remove_held(&mut me.inner.lock(), id)).unwrap_or(false) {
        return;
    }
    for t in state::threads() {
        if remove_held(&mut t.inner.lock(), id) {
            return;
        }
    }
}

fn remove_held(inner: &mut Inner, id: LockId) -> bool {
    let held = inner.held_now();
    match held.iter().rposition(|h| h.id == id) {
        Some(i) => {
            held.remove(i);
            true
        }
        None => false,
    }
}

/// The tracker this module installs into the sync layer's hook.
struct Track;

impl Tracker for Track {
    fn acquire(
        &self,
        id: LockId,
        kind: LockKind,
        wait: Wait,
        site: &'static std::panic::Location<'static>,
        raw: &RawLock,
    ) -> Locked {
        acquire(id, kind, wait, site, raw)
    }
    fn released(&self, id: LockId, kind: LockKind) {
        released(id, kind)
    }
}

static TRACK: Track = Track;

extern "C" fn install() {
    hook::install(&TRACK);
}

/// Installs the tracker before `main` (an `.init_array` entry, run by the
/// loader), so `SPINDLE_LOCKORDER` works without a line of code; the sync
/// layer holds the slot and knows nothing of this module.
#[used]
#[unsafe(link_section = ".init_array")]
static INSTALL: extern "C" fn() = install;
