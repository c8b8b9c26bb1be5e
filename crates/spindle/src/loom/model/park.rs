//! The model's parking table: `parking_lot_core`'s `park`/`unpark_*` and
//! the futex calls over one table of sleepers guarded by a loom `Mutex`,
//! each sleeper blocked in loom's `thread::park` until a waker marks it
//! woken and unparks it; plus the model's clock ([`advance`]).
//!
//! Like the real table (and the kernel's futex hash), the table is keyed by
//! an address, its check-then-sleep (`validate`, the futex's "word still
//! holds `expected`") runs under the table's lock, and wakers take sleepers
//! out under the same lock, so a wake-up that follows a change of the word
//! is never lost — exactly the guarantee the code relies on, and nothing
//! more (no spurious wake-ups are invented: the code tolerates them, and
//! leaving them out keeps a lost wake-up visible as a deadlock).
//!
//! The functions keep `parking_lot_core`'s signatures, `unsafe` included, so
//! the call sites are the same in both builds; nothing here relies on the
//! callers' promises (keys are only compared).

use std::sync::Arc;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::time::Instant;

use ::loom::sync::Mutex;
use ::loom::sync::atomic::AtomicBool;
use ::loom::thread::{self, Thread};
use parking_lot_core::{FilterOp, ParkResult, ParkToken, UnparkResult, UnparkToken};

/// A sleeper.
struct Sleeper {
    key: usize,
    token: ParkToken,
    /// Whether it sleeps with a deadline (the clock wakes it).
    timed: bool,
    thread: Thread,
    /// Set (under the table's lock) once a waker took it out of the table.
    woken: AtomicBool,
    /// The waker's token; written before `woken`.
    unpark_token: std::sync::atomic::AtomicUsize,
}

struct Table {
    sleepers: Mutex<Vec<Arc<Sleeper>>>,
    /// The model's clock: every deadline has passed once it is set.
    expired: AtomicBool,
}

::loom::lazy_static! {
    static ref TABLE: Table = Table {
        sleepers: Mutex::new(Vec::new()),
        expired: AtomicBool::new(false),
    };
}

fn table() -> &'static Table {
    &TABLE
}

/// The clock thread's step: every deadline passes now, and every timed
/// sleeper wakes up to time itself out. A model spawns one thread that
/// calls this to explore "the deadline passes" at every point.
pub(crate) fn advance() {
    let t = table();
    t.expired.store(true, SeqCst);
    let sleepers = t.sleepers.lock().expect("model table");
    for s in sleepers.iter().filter(|s| s.timed) {
        s.thread.unpark();
    }
}

/// Whether the clock has passed every deadline.
pub(crate) fn expired() -> bool {
    table().expired.load(SeqCst)
}

/// The model's `parking_lot_core::park`.
pub(crate) fn park_safe(
    key: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    timed_out: impl FnOnce(usize, bool),
    park_token: ParkToken,
    deadline: Option<Instant>,
) -> ParkResult {
    let t = table();
    let me = {
        let mut sleepers = t.sleepers.lock().expect("model table");
        if !validate() {
            return ParkResult::Invalid;
        }
        let me = Arc::new(Sleeper {
            key,
            token: park_token,
            timed: deadline.is_some(),
            thread: thread::current(),
            woken: AtomicBool::new(false),
            unpark_token: std::sync::atomic::AtomicUsize::new(0),
        });
        sleepers.push(Arc::clone(&me));
        me
    };
    before_sleep();
    loop {
        if me.woken.load(Acquire) {
            return ParkResult::Unparked(UnparkToken(me.unpark_token.load(Relaxed)));
        }
        if me.timed && t.expired.load(SeqCst) {
            let mut sleepers = t.sleepers.lock().expect("model table");
            if let Some(i) = sleepers.iter().position(|s| Arc::ptr_eq(s, &me)) {
                sleepers.remove(i);
                let was_last = !sleepers.iter().any(|s| s.key == key);
                timed_out(key, was_last);
                return ParkResult::TimedOut;
            }
            // A waker took us out meanwhile (under the lock we hold now):
            // `woken` is set; the next round returns it.
            continue;
        }
        thread::park();
    }
}

/// Takes the sleepers `pick` chooses (in queue order) out of the table,
/// calls `callback` with the result under the table's lock, then wakes them
/// with the token it returns.
fn unpark_with(
    key: usize,
    mut pick: impl FnMut(ParkToken) -> FilterOp,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    let t = table();
    let mut sleepers = t.sleepers.lock().expect("model table");
    let mut woken = Vec::new();
    let mut i = 0;
    while i < sleepers.len() {
        if sleepers[i].key != key {
            i += 1;
            continue;
        }
        match pick(sleepers[i].token) {
            FilterOp::Unpark => woken.push(sleepers.remove(i)),
            FilterOp::Skip => i += 1,
            FilterOp::Stop => break,
        }
    }
    let mut result = UnparkResult::default();
    result.unparked_threads = woken.len();
    result.have_more_threads = sleepers.iter().any(|s| s.key == key);
    let token = callback(result);
    for s in &woken {
        s.unpark_token.store(token.0, Relaxed);
        s.woken.store(true, Release);
    }
    drop(sleepers);
    for s in woken {
        s.thread.unpark();
    }
    result
}

/// The model's `parking_lot_core::park`.
///
/// # Safety
///
/// None needed (the signature is `parking_lot_core`'s).
#[allow(unsafe_code)]
pub(crate) unsafe fn park(
    key: usize,
    validate: impl FnOnce() -> bool,
    before_sleep: impl FnOnce(),
    timed_out: impl FnOnce(usize, bool),
    park_token: ParkToken,
    deadline: Option<Instant>,
) -> ParkResult {
    park_safe(key, validate, before_sleep, timed_out, park_token, deadline)
}

/// Wakes the oldest sleeper on `key` (safe, for the model's `Condvar`).
pub(crate) fn unpark_one_safe(
    key: usize,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    let mut left = 1;
    unpark_with(
        key,
        |_| {
            if left == 0 {
                FilterOp::Stop
            } else {
                left -= 1;
                FilterOp::Unpark
            }
        },
        callback,
    )
}

/// Wakes every sleeper on `key` (safe, for the model's `Condvar`).
pub(crate) fn unpark_all_safe(key: usize, token: UnparkToken) -> usize {
    unpark_with(key, |_| FilterOp::Unpark, |_| token).unparked_threads
}

/// The model's `parking_lot_core::unpark_one`.
///
/// # Safety
///
/// None needed (the signature is `parking_lot_core`'s).
#[allow(unsafe_code)]
pub(crate) unsafe fn unpark_one(
    key: usize,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    unpark_one_safe(key, callback)
}

/// The model's `parking_lot_core::unpark_all`.
///
/// # Safety
///
/// None needed (the signature is `parking_lot_core`'s).
#[allow(unsafe_code)]
pub(crate) unsafe fn unpark_all(key: usize, token: UnparkToken) -> usize {
    unpark_all_safe(key, token)
}

/// The model's `parking_lot_core::unpark_filter`.
///
/// # Safety
///
/// None needed (the signature is `parking_lot_core`'s).
#[allow(unsafe_code)]
pub(crate) unsafe fn unpark_filter(
    key: usize,
    filter: impl FnMut(ParkToken) -> FilterOp,
    callback: impl FnOnce(UnparkResult) -> UnparkToken,
) -> UnparkResult {
    unpark_with(key, filter, callback)
}

/// A futex wait on `word` (the model's `ipc::shm::futex_wait`): sleeps if
/// the word holds `expected`, until woken or the clock passes `deadline`.
pub(crate) fn futex_wait(
    word: &crate::loom::sync::atomic::AtomicU32,
    expected: u32,
    deadline: Option<Instant>,
) {
    park_safe(
        word as *const _ as usize,
        // The kernel reads the word atomically under its hash bucket lock.
        || word.load(SeqCst) == expected,
        || {},
        |_, _| {},
        parking_lot_core::DEFAULT_PARK_TOKEN,
        deadline,
    );
}

/// A futex wake of up to `n` sleepers on `word`.
pub(crate) fn futex_wake(word: &crate::loom::sync::atomic::AtomicU32, n: i32) {
    let mut left = n.max(0) as usize;
    unpark_with(
        word as *const _ as usize,
        |_| {
            if left == 0 {
                FilterOp::Stop
            } else {
                left -= 1;
                FilterOp::Unpark
            }
        },
        |_| parking_lot_core::DEFAULT_UNPARK_TOKEN,
    );
}

/// `parking_lot_core::SpinWait` with spinning off: `spin` says "park now".
#[derive(Debug, Default)]
pub(crate) struct SpinWait;

impl SpinWait {
    pub(crate) fn new() -> SpinWait {
        SpinWait
    }

    pub(crate) fn spin(&mut self) -> bool {
        false
    }

    pub(crate) fn reset(&mut self) {}
}
