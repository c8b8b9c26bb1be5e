//! What lock-order tracking knows: which thread holds which spindle lock and
//! which one it waits for, the switches of the checker and the detector, and
//! the cycles the detector found (`Deadlock`, whose methods are in
//! `detector`). The tracker (`track.rs`) writes it; the checker and the
//! detector read it. See README.md for the design.
#![forbid(unsafe_code)]

use crate::sync::LockId;
use crate::sync::raw::hook::{OFF, ON, STATE, UNDECIDED};
use parking_lot::Mutex;
use std::panic::Location;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
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
    pub(crate) seq: u64,
    /// Tracking epoch the `held` list belongs to (see [`set_tracking`]).
    epoch: u64,
    /// Why the current wait was aborted, set by recovery before waking it.
    pub(crate) verdict: Option<Arc<Deadlock>>,
}

/// A tracked thread; shared with the registry so the detector can read it.
#[derive(Debug)]
pub(crate) struct ThreadState {
    pub(crate) tid: u64,
    pub(crate) name: Arc<str>,
    pub(crate) inner: Mutex<Inner>,
    /// The `seq` of the wait recovery aborts (0: none).
    pub(crate) abort: AtomicU64,
}

/// Every live tracked thread.
static THREADS: Mutex<Vec<Arc<ThreadState>>> = Mutex::new(Vec::new());
/// Bumped whenever tracking is switched on, so holds recorded before a
/// switch-off are forgotten instead of going stale.
static EPOCH: AtomicU64 = AtomicU64::new(1);
static CHECKER: AtomicBool = AtomicBool::new(false);
static DETECTOR: AtomicBool = AtomicBool::new(false);
/// `SPINDLE_LOCKORDER=panic`: the checker's default sink panics.
static ENV_PANIC: AtomicBool = AtomicBool::new(false);

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

/// Runs `f` on the calling thread's record (`None` while the thread is
/// being torn down).
pub(crate) fn with_me<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    ME.try_with(|me| f(&me.0)).ok()
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

/// Whether the checker runs (without reading the environment: the tracker
/// has decided by then).
pub(crate) fn checker_flag() -> bool {
    CHECKER.load(Relaxed)
}

/// Whether `SPINDLE_LOCKORDER=panic` asked the checker to panic.
pub(crate) fn env_wants_panic() -> bool {
    ENV_PANIC.load(Relaxed)
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
pub(crate) fn decide() {
    if STATE.load(Relaxed) != UNDECIDED {
        return;
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let env = std::env::var("SPINDLE_LOCKORDER").unwrap_or_default();
        let (checker, detector) = match env.trim() {
            "" | "0" | "off" => (false, false),
            "panic" => {
                ENV_PANIC.store(true, Relaxed);
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

/// One thread of a deadlock cycle and the lock it waits for.
#[derive(Clone, Debug)]
pub struct Link {
    pub(crate) thread: Arc<str>,
    pub(crate) waits_for: LockId,
    pub(crate) wait_site: Site,
    pub(crate) since: Instant,
    pub(crate) holder: Arc<str>,
    pub(crate) held_site: Site,
}

/// Threads blocked in a cycle (found by `lockorder::detector`): each [`Link`]'s thread waits for a lock held
/// by the next link's thread, and the last one's by the first one's.
#[derive(Clone)]
pub struct Deadlock {
    pub(crate) links: Vec<Link>,
    /// For recovery: each link's thread and the number of its wait.
    pub(crate) waits: Vec<(Arc<ThreadState>, u64)>,
}
