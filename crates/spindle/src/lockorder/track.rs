//! Tracking: which thread holds which spindle lock and which one it waits
//! for, fed by the sync layer's hook (`sync/raw/hook.rs`), into which this
//! module installs itself before `main`. The checker and the detector read
//! it; see README.md for the design.

use super::checker;
use super::detector::Deadlock;
use super::error::DeadlockError;
use crate::sync::LockId;
use crate::sync::raw::hook::{self, OFF, ON, STATE, Tracker, UNDECIDED};
use crate::sync::raw::{LockKind, Locked, RawLock, Taken};
use crate::util::Wait;
use parking_lot::Mutex;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Acquire, Ordering::Relaxed};
use std::time::Instant;

/// Where a lock was asked for: the caller's source location.
pub(crate) type Site = &'static Location<'static>;

/// One lock held by a thread.
#[derive(Clone, Debug)]
pub(crate) struct Held {
    pub(crate) id: LockId,
    pub(crate) site: Site,
}

/// The one lock a thread is blocked on.
#[derive(Clone, Debug)]
pub(crate) struct Waiting {
    pub(crate) id: LockId,
    pub(crate) site: Site,
    /// Numbers the thread's waits: a deadlock is the same one only while the
    /// numbers stay the same.
    pub(crate) seq: u64,
    /// The parking key of the lock word, to wake the thread for recovery.
    pub(crate) key: usize,
    pub(crate) since: Instant,
    /// Whether the wait has no deadline.
    pub(crate) forever: bool,
}

/// What the tracker knows about one thread.
#[derive(Debug, Default)]
pub(crate) struct Inner {
    pub(crate) held: Vec<Held>,
    pub(crate) waiting: Option<Waiting>,
    seq: u64,
    /// Tracking epoch the `held` list belongs to (see [`set_tracking`]).
    epoch: u64,
    /// Why the current wait was aborted, set by recovery before waking it.
    verdict: Option<Arc<Deadlock>>,
}

/// A tracked thread; shared with the registry so the detector can read it.
#[derive(Debug)]
pub(crate) struct ThreadState {
    pub(crate) tid: u64,
    pub(crate) name: Arc<str>,
    pub(crate) inner: Mutex<Inner>,
    /// The `seq` of the wait recovery aborts (0: none).
    abort: AtomicU64,
}

/// Every live tracked thread.
static THREADS: Mutex<Vec<Arc<ThreadState>>> = Mutex::new(Vec::new());
/// Bumped whenever tracking is switched on, so holds recorded before a
/// switch-off are forgotten instead of going stale.
static EPOCH: AtomicU64 = AtomicU64::new(1);
static CHECKER: AtomicBool = AtomicBool::new(false);
static DETECTOR: AtomicBool = AtomicBool::new(false);

/// Removes the thread from the registry when it exits.
struct Registration(Arc<ThreadState>);

impl Drop for Registration {
    fn drop(&mut self) {
        THREADS.lock().retain(|t| !Arc::ptr_eq(t, &self.0));
    }
}

thread_local! {
    static ME: Registration = Registration(register());
}

fn register() -> Arc<ThreadState> {
    let tid = crate::sync::raw::current_thread_id();
    let name: Arc<str> = match std::thread::current().name() {
        Some(n) => n.into(),
        None => format!("<unnamed #{tid}>").into(),
    };
    let state = Arc::new(ThreadState {
        tid,
        name,
        inner: Mutex::new(Inner::default()),
        abort: AtomicU64::new(0),
    });
    THREADS.lock().push(Arc::clone(&state));
    state
}

/// A snapshot of the registry.
pub(crate) fn threads() -> Vec<Arc<ThreadState>> {
    THREADS.lock().clone()
}

/// Turns the checker or the detector's tracking on or off; the hook runs while
/// either is on.
pub(crate) fn set_tracking(checker: Option<bool>, detector: Option<bool>) {
    decide();
    if let Some(on) = checker {
        CHECKER.store(on, Relaxed);
    }
    if let Some(on) = detector {
        DETECTOR.store(on, Relaxed);
    }
    let want = if CHECKER.load(Relaxed) || DETECTOR.load(Relaxed) {
        ON
    } else {
        OFF
    };
    if STATE.swap(want, Relaxed) != ON && want == ON {
        EPOCH.fetch_add(1, Relaxed);
    }
}

pub(crate) fn checker_on() -> bool {
    decide();
    CHECKER.load(Relaxed)
}

pub(crate) fn detector_on() -> bool {
    decide();
    DETECTOR.load(Relaxed)
}

/// Reads `SPINDLE_LOCKORDER` once, on the first tracked call.
fn decide() {
    if STATE.load(Relaxed) != UNDECIDED {
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let env = std::env::var("SPINDLE_LOCKORDER").unwrap_or_default();
        let (checker, detector) = match env.trim() {
            "" | "0" | "off" => (false, false),
            "panic" => {
                checker::set_sink(checker::Sink::Panic);
                (true, true)
            }
            _ => (true, true),
        };
        CHECKER.store(checker, Relaxed);
        DETECTOR.store(detector, Relaxed);
        let _ = STATE.compare_exchange(UNDECIDED, if checker { ON } else { OFF }, Relaxed, Relaxed);
    });
}

impl Inner {
    /// The held list, forgotten if it belongs to an older tracking epoch.
    pub(crate) fn held_now(&mut self) -> &mut Vec<Held> {
        let epoch = EPOCH.load(Relaxed);
        if self.epoch != epoch {
            self.held.clear();
            self.epoch = epoch;
        }
        &mut self.held
    }
}

/// The hook's acquisition (see `sync/hook.rs`).
pub(crate) fn acquire(
    id: LockId,
    _kind: LockKind,
    wait: Wait,
    site: Site,
    raw: &RawLock,
) -> Locked {
    decide();
    if STATE.load(Relaxed) != ON {
        return plain(raw, wait);
    }
    ME.try_with(|me| acquire_as(&me.0, id, wait, site, raw))
        .unwrap_or_else(|_| plain(raw, wait))
}

fn acquire_as(me: &ThreadState, id: LockId, wait: Wait, site: Site, raw: &RawLock) -> Locked {
    let mut inner = me.inner.lock();
    // Only an acquisition that may wait forever can be part of a deadlock.
    if matches!(wait, Wait::Forever) && CHECKER.load(Relaxed) {
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
    if ME
        .try_with(|me| remove_held(&mut me.0.inner.lock(), id))
        .unwrap_or(false)
    {
        return;
    }
    for t in threads() {
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

/// Marks `t`'s wait number `seq` (if it is still that wait) as aborted by
/// `why`; returns the parking key to [`wake`] it with, or `None` if the thread
/// no longer waits there. Recovery marks every victim first, then wakes them,
/// so a victim cannot slip into a lock another victim just gave up.
pub(crate) fn abort_wait(t: &ThreadState, seq: u64, why: &Arc<Deadlock>) -> Option<usize> {
    let inner = &mut *t.inner.lock();
    let key = inner.waiting.as_ref().filter(|w| w.seq == seq)?.key;
    inner.verdict = Some(Arc::clone(why));
    t.abort.store(seq, std::sync::atomic::Ordering::Release);
    Some(key)
}

/// Wakes the threads parked on the lock word `key` so that aborted ones see
/// their verdict (the others park again).
pub(crate) fn wake(key: usize) {
    crate::sync::raw::wake_all(key);
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
