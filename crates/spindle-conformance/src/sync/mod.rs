//! The sync conformance suite: generic checks every implementation of the
//! synchronisation contracts of [`spindle::sync::contract`] must pass,
//! whatever its scope (threads, processes, a manager's proxies).
//!
//! The checks port CPython's `Lib/test/lock_tests.py` — `BaseLockTests`,
//! `LockTests`, `RLockTests`, `EventTests`, `ConditionTests`,
//! `BaseSemaphoreTests`, `SemaphoreTests`, `BoundedSemaphoreTests` and
//! `BarrierTests` — rewritten in Rust; each function names the Python tests
//! it mirrors, and its name starts with the class: `base_lock_*`, `lock_*`,
//! `rlock_*`, `condition_*`, `base_semaphore_*`, `semaphore_*`,
//! `bounded_semaphore_*`, `event_*`, `barrier_*`. A few checks are spindle's
//! own (they say so): behaviour spindle documents beyond Python's tests, or
//! a regression.
//!
//! Each check is written against the contract traits only ([`BlockingLock`],
//! ...), generic over the object under test, which says how to make a fresh
//! one and, where it can, how many threads are blocked in it: [`LockUnderTest`] (a `Lock`, an
//! `RLock`, or a `Condition` used as its lock), [`ConditionUnderTest`],
//! [`SemaphoreUnderTest`], [`EventUnderTest`], [`BarrierUnderTest`] and
//! [`BarrierActionUnderTest`]. They are implemented here for the thread
//! objects of [`spindle::sync`] and the process-shared ones of
//! [`spindle::ipc::sync`] (exercised by threads of one process; spindle's own
//! tests cover other processes).
//!
//! # What the checks rely on
//!
//! No check sleeps and hopes. "These threads are blocked in `acquire`" is
//! observed through the object's count of blocked threads
//! ([`LockUnderTest::blocked`], ...); where an implementation cannot count
//! (`None`: the process `Lock` and `RLock`), each thread announces itself
//! just before the blocking call and the check pauses briefly: what it then
//! asserts ("none of them got through") stays true whatever the scheduler
//! did, the check only searches less. Waiters on a `Condition` announce
//! themselves under its lock, which they hold until `wait` has registered
//! them, so holding the lock afterwards proves they wait. Timing assertions
//! are one-sided: a wait nobody ends must not return before its timeout;
//! an upper bound appears only where it is at least ten times generous.
//!
//! # Where spindle differs from Python by design
//!
//! The checks test spindle's documented behaviour (`docs/PYTHON.md`, the
//! [`spindle::sync`] module docs), and say so where it differs: Python's
//! exceptions are typed errors in the inner `Result` ([`ReleaseError`](spindle::sync::ReleaseError),
//! [`NotOwnedError`](spindle::sync::NotOwnedError), ...); `with` is an RAII
//! guard, released also while unwinding; a timed-out barrier wait reports
//! [`BarrierWaitError::Timeout`](spindle::sync::BarrierWaitError::Timeout) to
//! the thread that timed out (the others get `Broken`, Python raises
//! `BrokenBarrierError` in all); a `Condition` and a `Barrier` have no
//! `try_wait`; `notify` says how many it woke; a timeout too long to
//! represent waits for ever (Python: `OverflowError` past `TIMEOUT_MAX`), and
//! negative values (timeouts, semaphore counts, parties) cannot be written.
//!
//! As CPython's `test_threading.ConditionAsRLockTests` runs `RLockTests` on
//! a `Condition`, the lock checks also run on the conditions (the
//! `LockTests` on one over a `Lock`). The `test_repr` of the semaphores and
//! the barrier check the state the `repr` shows through the accessors. Not
//! ported: the locks' `test_repr`, `test_locked_repr`, `test_repr_count` and
//! `EventTests.test_repr` (`Debug` output is not part of the contracts; the
//! state is checked by the other checks), `test_weakref_*`, `test_at_fork_reinit`,
//! `test_reset_internal_locks`, `test_release_save_unacquired` (private
//! CPython helpers), `test_constructor_noargs` and the constructors'
//! `ValueError`s (constructors belong to each scope and are tested there),
//! and `BarrierTests.test_default_timeout` (spindle's barriers have no
//! default timeout).
//!
//! # Running it
//!
//! [`sync_suite!`](crate::sync_suite) expands to one `#[test]` per check, in
//! a module per object:
//!
//! ```
//! mod thread_scope {
//!     spindle_conformance::sync_suite! {
//!         lock: spindle::sync::Lock,
//!         rlock: spindle::sync::RLock,
//!         condition: spindle::sync::Condition,
//!         condition_over_lock: spindle::sync::Condition<spindle::sync::Lock>,
//!         semaphore: spindle::sync::Semaphore,
//!         bounded_semaphore: spindle::sync::BoundedSemaphore,
//!         event: spindle::sync::Event,
//!         barrier: spindle::sync::Barrier,
//!         barrier_with_action: spindle::sync::Barrier,
//!     }
//! }
//! # fn main() {}
//! ```
//!
//! Each of those tests runs under a watchdog: the checks block threads on
//! purpose, so a broken implementation can leave a helper thread blocked
//! for ever, and the test would hang instead of failing. If a check is
//! still running two minutes after it started, or five seconds after any
//! check failed, the watchdog writes the failures to standard error and
//! ends the test process with status 101.
//!
//! Or call the checks one by one (without a watchdog):
//!
//! ```
//! use spindle_conformance::sync;
//!
//! sync::base_lock_try_acquire_contended::<spindle::ipc::sync::Lock>();
//! sync::bounded_semaphore_release_unacquired::<spindle::sync::BoundedSemaphore>();
//! ```

use std::fmt::Display;
use std::io::Write;
use std::panic::Location;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use spindle::sync::{
    BlockingBarrier, BlockingCondition, BlockingEvent, BlockingLock, BlockingSemaphore,
};

mod barrier;
mod condition;
mod event;
mod lock;
mod semaphore;

pub use barrier::{
    barrier_abort, barrier_abort_and_reset, barrier_action, barrier_action_panic,
    barrier_action_reentrant, barrier_lockstep, barrier_repr, barrier_reset, barrier_single_thread,
    barrier_timeout, barrier_wait_return,
};
pub use condition::{
    condition_acquire, condition_acquire_reentrant, condition_notify,
    condition_notify_by_non_owner, condition_timeout, condition_unacquired_notify,
    condition_unacquired_wait, condition_wait_restores_rlock_depth,
    condition_wait_timeout_notified, condition_waitfor, condition_waitfor_timeout,
};
pub use event::{event_is_set, event_notify, event_set_and_clear, event_timeout};
pub use lock::{
    base_lock_acquire_contended, base_lock_acquire_release, base_lock_thread_leak,
    base_lock_timeout, base_lock_try_acquire, base_lock_try_acquire_contended, base_lock_with,
    lock_different_thread, lock_racing_releases, lock_reacquire, lock_release_unlocked,
    lock_state_after_timeout, rlock_different_thread, rlock_is_owned, rlock_locked,
    rlock_locked_with_2threads, rlock_reacquire, rlock_recursion_count, rlock_release_unacquired,
};
pub use semaphore::{
    base_semaphore_acquire, base_semaphore_acquire_contended, base_semaphore_acquire_timeout,
    base_semaphore_default_value, base_semaphore_multirelease, base_semaphore_release_zero,
    base_semaphore_try_acquire, base_semaphore_try_acquire_contended, base_semaphore_with,
    bounded_semaphore_release_unacquired, bounded_semaphore_repr, semaphore_release_unacquired,
    semaphore_repr,
};

/// A lock the suite can run on: a `Lock`, an `RLock`, or a `Condition`
/// (whose lock family is its underlying lock's, as CPython's
/// `ConditionAsRLockTests` runs `RLockTests` on a `Condition`).
pub trait LockUnderTest: BlockingLock + Send + Sync + Sized {
    /// A fresh, unlocked lock.
    fn make() -> Self;

    /// How many threads are blocked acquiring it now, or `None` if the
    /// implementation cannot tell (the checks then fall back on a
    /// handshake; see the [module docs](self)).
    fn blocked(&self) -> Option<usize>;
}

/// A condition variable the suite can run on. Its lock family (from
/// [`LockUnderTest`]) is its underlying lock's.
pub trait ConditionUnderTest: BlockingCondition + LockUnderTest {
    /// The lock under the condition (Python's `Condition(lock)`).
    type Lock: LockUnderTest;

    /// The condition's lock, to check that acquiring the condition is
    /// acquiring it.
    fn underlying_lock(&self) -> &Self::Lock;
}

/// A semaphore (bounded or not) the suite can run on.
pub trait SemaphoreUnderTest: BlockingSemaphore + Send + Sync + Sized {
    /// A fresh semaphore holding `value` permits (for a bounded one, also
    /// its bound).
    fn make(value: usize) -> Self;

    /// How many threads are blocked taking a permit now, or `None` if the
    /// implementation cannot tell.
    fn blocked(&self) -> Option<usize>;
}

/// An event the suite can run on.
pub trait EventUnderTest: BlockingEvent + Send + Sync + Sized {
    /// A fresh, clear event.
    fn make() -> Self;

    /// How many threads are blocked waiting now, or `None` if the
    /// implementation cannot tell.
    fn blocked(&self) -> Option<usize>;
}

/// A barrier the suite can run on (its `n_waiting` counts the blocked
/// threads).
pub trait BarrierUnderTest: BlockingBarrier + Send + Sync + Sized {
    /// A fresh barrier for `parties` (at least 1) parties.
    fn make(parties: usize) -> Self;
}

/// A barrier with an action (Python's `Barrier(parties, action)`), for the
/// checks of [`barrier_action`] and friends.
pub trait BarrierActionUnderTest: BarrierUnderTest + 'static {
    /// A fresh barrier for `parties` parties whose last arrival runs
    /// `action` before anyone is released.
    fn with_action(parties: usize, action: impl Fn() + Send + Sync + 'static) -> Self;
}

/// A wait nobody ends, that must run out; not measured.
pub(crate) const SHORT: Duration = Duration::from_millis(5);

/// A wait nobody ends, measured: it must not return sooner.
pub(crate) const TIMEOUT: Duration = Duration::from_millis(50);

/// A wait that must not run out: far beyond what a correct implementation
/// needs.
pub(crate) const LONG: Duration = Duration::from_secs(60);

/// How long a check polls for state other threads change before it fails.
const PATIENCE: Duration = Duration::from_secs(20);

/// The pause after a handshake where blocked threads cannot be counted.
const SETTLE: Duration = Duration::from_millis(20);

/// How long a check may run before its watchdog ends the test process: a
/// check that hangs is a failure too.
const LIMIT: Duration = Duration::from_secs(120);

/// How long a check may go on after some check failed: a failed check
/// whose helper threads stay blocked (a `thread::scope` cannot end before
/// they do) is reported instead of hanging.
const GRACE: Duration = Duration::from_secs(5);

/// The failures [`check`] saw, with where, for the watchdog's report; and
/// when the first happened.
static FAILURES: Mutex<(Vec<String>, Option<Instant>)> = Mutex::new((Vec::new(), None));

/// Fails the calling check when `cond` does not hold.
#[track_caller]
pub(crate) fn check(cond: bool, what: impl Display) {
    if !cond {
        let msg = format!("sync conformance: {what}");
        let mut failures = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .0
            .push(format!("{msg} (at {})", Location::caller()));
        failures.1.get_or_insert_with(Instant::now);
        drop(failures);
        panic!("{msg}");
    }
}

/// Watches one check (the [`sync_suite!`](crate::sync_suite) tests start
/// one each): if the check is still running [`LIMIT`] after it started, or
/// a few seconds after any check failed, it writes the failures to the
/// process's standard error (not captured by the test harness) and ends
/// the process with status 101. Dropping it ends the watch.
#[doc(hidden)]
#[must_use = "the watch ends when the guard is dropped"]
pub fn __watchdog(name: &'static str) -> Watchdog {
    let done = Arc::new((Mutex::new(false), Condvar::new()));
    let watched = Arc::clone(&done);
    let started = Instant::now();
    thread::spawn(move || {
        let (lock, cv) = &*watched;
        let mut finished = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*finished {
            let failed_at = FAILURES.lock().unwrap_or_else(|e| e.into_inner()).1;
            let limit = match failed_at {
                Some(t) => (t + GRACE).min(started + LIMIT),
                None => started + LIMIT,
            };
            let now = Instant::now();
            if now >= limit {
                let failures = FAILURES.lock().unwrap_or_else(|e| e.into_inner());
                let mut report = format!(
                    "sync conformance: the check {name} is stuck after {:?}; ending the test process.\n",
                    now - started
                );
                for f in &failures.0 {
                    report.push_str(&format!("  {f}\n"));
                }
                let _ = std::io::stderr().write_all(report.as_bytes());
                std::process::exit(101);
            }
            let nap = (limit - now).min(Duration::from_millis(100));
            finished = cv
                .wait_timeout(finished, nap)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    });
    Watchdog(done)
}

/// Ends the watch of [`__watchdog`] when dropped.
#[doc(hidden)]
#[derive(Debug)]
pub struct Watchdog(Arc<(Mutex<bool>, Condvar)>);

impl Drop for Watchdog {
    fn drop(&mut self) {
        let (lock, cv) = &*self.0;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_one();
    }
}

/// The value of a contract call, failing the check if the scope itself
/// failed (a lost server; never for threads and processes).
pub(crate) trait ScopeOk<T> {
    fn scope_ok(self) -> T;
}

impl<T, E: std::error::Error> ScopeOk<T> for Result<T, E> {
    #[track_caller]
    fn scope_ok(self) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("sync conformance: the scope failed: {e}"),
        }
    }
}

/// Polls `cond`, about state other threads change, until it holds; fails
/// after [`PATIENCE`].
#[track_caller]
pub(crate) fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let since = Instant::now();
    let mut spins = 0u32;
    while !cond() {
        check(
            since.elapsed() < PATIENCE,
            format_args!("timed out waiting until {what}"),
        );
        if spins < 100 {
            spins += 1;
            thread::yield_now();
        } else {
            thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Waits until `n` threads, each of which bumped `entered` just before its
/// blocking call, are blocked in it: until `blocked()` counts `n` where the
/// implementation can count, else for a short pause after the last
/// announcement (what the caller asserts next must then hold whether or not
/// they are asleep yet).
#[track_caller]
pub(crate) fn until_blocked(
    what: &str,
    entered: &AtomicUsize,
    n: usize,
    blocked: impl Fn() -> Option<usize>,
) {
    until(what, || entered.load(SeqCst) >= n);
    if blocked().is_some() {
        until(what, || blocked() == Some(n));
    } else {
        thread::sleep(SETTLE);
    }
}

/// Runs `f`, returning its value and how long it took.
pub(crate) fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let start = Instant::now();
    let r = f();
    (r, start.elapsed())
}

// The thread scope.

impl LockUnderTest for spindle::sync::Lock {
    fn make() -> Self {
        spindle::sync::Lock::new()
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.__parked())
    }
}

impl LockUnderTest for spindle::sync::RLock {
    fn make() -> Self {
        spindle::sync::RLock::new()
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.__parked())
    }
}

impl LockUnderTest for spindle::sync::Condition {
    fn make() -> Self {
        spindle::sync::Condition::new()
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.get_lock().__parked())
    }
}

impl ConditionUnderTest for spindle::sync::Condition {
    type Lock = spindle::sync::RLock;
    fn underlying_lock(&self) -> &spindle::sync::RLock {
        self.get_lock()
    }
}

impl LockUnderTest for spindle::sync::Condition<spindle::sync::Lock> {
    fn make() -> Self {
        spindle::sync::Condition::with_lock(Arc::new(spindle::sync::Lock::new()))
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.get_lock().__parked())
    }
}

impl ConditionUnderTest for spindle::sync::Condition<spindle::sync::Lock> {
    type Lock = spindle::sync::Lock;
    fn underlying_lock(&self) -> &spindle::sync::Lock {
        self.get_lock()
    }
}

impl SemaphoreUnderTest for spindle::sync::Semaphore {
    fn make(value: usize) -> Self {
        spindle::sync::Semaphore::new(value)
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.__parked())
    }
}

impl SemaphoreUnderTest for spindle::sync::BoundedSemaphore {
    fn make(value: usize) -> Self {
        spindle::sync::BoundedSemaphore::new(value)
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.__parked())
    }
}

impl EventUnderTest for spindle::sync::Event {
    fn make() -> Self {
        spindle::sync::Event::new()
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.__parked())
    }
}

/// # Panics
///
/// If `parties` is 0 (a mistake of the check).
impl BarrierUnderTest for spindle::sync::Barrier {
    fn make(parties: usize) -> Self {
        spindle::sync::Barrier::new(parties).expect("sync conformance: make a barrier")
    }
}

impl BarrierActionUnderTest for spindle::sync::Barrier {
    fn with_action(parties: usize, action: impl Fn() + Send + Sync + 'static) -> Self {
        spindle::sync::Barrier::with_action(parties, action)
            .expect("sync conformance: make a barrier")
    }
}

// The process scope. The constructors fail only if the OS refuses the
// shared memory: a test failure, the implementation is unusable. The `Lock`
// and `RLock` cannot count their blocked threads (a futex word has no
// count), so they answer `None`.

/// Fails the check when the shared memory of a process object cannot be
/// made.
fn made<T, E: Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("sync conformance: make a process-shared object: {e}"))
}

impl LockUnderTest for spindle::ipc::sync::Lock {
    fn make() -> Self {
        made(spindle::ipc::sync::Lock::new())
    }
    fn blocked(&self) -> Option<usize> {
        None
    }
}

impl LockUnderTest for spindle::ipc::sync::RLock {
    fn make() -> Self {
        made(spindle::ipc::sync::RLock::new())
    }
    fn blocked(&self) -> Option<usize> {
        None
    }
}

impl LockUnderTest for spindle::ipc::sync::Condition {
    fn make() -> Self {
        made(spindle::ipc::sync::Condition::new())
    }
    fn blocked(&self) -> Option<usize> {
        None
    }
}

impl ConditionUnderTest for spindle::ipc::sync::Condition {
    type Lock = spindle::ipc::sync::RLock;
    fn underlying_lock(&self) -> &spindle::ipc::sync::RLock {
        self.get_lock()
    }
}

impl LockUnderTest for spindle::ipc::sync::Condition<spindle::ipc::sync::Lock> {
    fn make() -> Self {
        made(spindle::ipc::sync::Condition::with_lock(made(
            spindle::ipc::sync::Lock::new(),
        )))
    }
    fn blocked(&self) -> Option<usize> {
        None
    }
}

impl ConditionUnderTest for spindle::ipc::sync::Condition<spindle::ipc::sync::Lock> {
    type Lock = spindle::ipc::sync::Lock;
    fn underlying_lock(&self) -> &spindle::ipc::sync::Lock {
        self.get_lock()
    }
}

impl SemaphoreUnderTest for spindle::ipc::sync::Semaphore {
    fn make(value: usize) -> Self {
        made(spindle::ipc::sync::Semaphore::new(value))
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.__parked())
    }
}

impl SemaphoreUnderTest for spindle::ipc::sync::BoundedSemaphore {
    fn make(value: usize) -> Self {
        made(spindle::ipc::sync::BoundedSemaphore::new(value))
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.__parked())
    }
}

impl EventUnderTest for spindle::ipc::sync::Event {
    fn make() -> Self {
        made(spindle::ipc::sync::Event::new())
    }
    fn blocked(&self) -> Option<usize> {
        Some(self.__parked())
    }
}

impl BarrierUnderTest for spindle::ipc::sync::Barrier {
    fn make(parties: usize) -> Self {
        made(spindle::ipc::sync::Barrier::new(parties))
    }
}

// The manager scope: proxies of objects on one manager server, started
// (in a child process) the first time a check needs one.

/// The manager server the proxies of the checks live on.
pub fn manager() -> &'static spindle::manager::Manager {
    static M: std::sync::OnceLock<spindle::manager::Manager> = std::sync::OnceLock::new();
    M.get_or_init(|| made(spindle::manager::Manager::start()))
}

macro_rules! proxy_under_test {
    ($trait:ident, $ty:ty, $make:ident $(, $arg:ident)?) => {
        impl $trait for $ty {
            fn make($($arg: usize)?) -> Self {
                made(manager().$make($($arg)?))
            }
            // A proxy cannot count the threads blocked on the server: the
            // checks fall back on a handshake.
            fn blocked(&self) -> Option<usize> {
                None
            }
        }
    };
}

proxy_under_test!(LockUnderTest, spindle::manager::LockProxy, lock);
proxy_under_test!(LockUnderTest, spindle::manager::RLockProxy, rlock);
proxy_under_test!(LockUnderTest, spindle::manager::ConditionProxy, condition);
proxy_under_test!(
    SemaphoreUnderTest,
    spindle::manager::SemaphoreProxy,
    semaphore,
    value
);
proxy_under_test!(
    SemaphoreUnderTest,
    spindle::manager::BoundedSemaphoreProxy,
    bounded_semaphore,
    value
);
proxy_under_test!(EventUnderTest, spindle::manager::EventProxy, event);

/// A proxy's condition and its lock are one object on the server:
/// acquiring the condition is acquiring its `RLock`.
impl ConditionUnderTest for spindle::manager::ConditionProxy {
    type Lock = spindle::manager::ConditionProxy;
    fn underlying_lock(&self) -> &spindle::manager::ConditionProxy {
        self
    }
}

impl BarrierUnderTest for spindle::manager::BarrierProxy {
    fn make(parties: usize) -> Self {
        made(manager().barrier(parties))
    }
}

/// Expands to one `#[test]` per sync conformance check, in a module per
/// object kind.
///
/// Each entry is `kind: Type`; list the kinds the implementation has, in
/// any order. The kinds and the checks they run:
///
/// | kind | `Type` implements | checks |
/// |---|---|---|
/// | `lock` | [`LockUnderTest`](crate::sync::LockUnderTest) (not re-entrant) | `base_lock_*`, `lock_*` |
/// | `rlock` | `LockUnderTest` + [`BlockingRLock`](spindle::sync::BlockingRLock) | `base_lock_*`, `rlock_*` |
/// | `condition` | [`ConditionUnderTest`](crate::sync::ConditionUnderTest) over an `RLock` | `base_lock_*`, the `rlock_*` checks of `BlockingLock`, `condition_*` |
/// | `condition_over_lock` | `ConditionUnderTest` over a `Lock` | `base_lock_*`, `lock_*`, `condition_*` but those of an `RLock` |
/// | `semaphore` | [`SemaphoreUnderTest`](crate::sync::SemaphoreUnderTest) | `base_semaphore_*`, `semaphore_*` |
/// | `bounded_semaphore` | `SemaphoreUnderTest` + [`BlockingBoundedSemaphore`](spindle::sync::BlockingBoundedSemaphore) | `base_semaphore_*`, `bounded_semaphore_*` |
/// | `event` | [`EventUnderTest`](crate::sync::EventUnderTest) | `event_*` |
/// | `barrier` | [`BarrierUnderTest`](crate::sync::BarrierUnderTest) | `barrier_*` but the action's |
/// | `barrier_with_action` | [`BarrierActionUnderTest`](crate::sync::BarrierActionUnderTest) | `barrier_action*` |
///
/// The modules `use super::*`, so a type may be named as in the invoking
/// module; invoke it once per module (wrap each implementation in a module
/// of its own). Each test runs its check under a watchdog (see the
/// [module docs](crate::sync)).
///
/// # Examples
///
/// ```
/// mod process_scope {
///     use spindle::ipc::sync::{Lock, Semaphore};
///     spindle_conformance::sync_suite! {
///         lock: Lock,
///         semaphore: Semaphore,
///     }
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! sync_suite {
    ($($kind:ident : $ty:ty),* $(,)?) => {
        $($crate::sync_suite!(@kind $kind $ty);)*
    };
    (@kind lock $ty:ty) => {
        mod lock {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; base_lock_acquire_release, base_lock_try_acquire,
                base_lock_try_acquire_contended, base_lock_acquire_contended, base_lock_with,
                base_lock_thread_leak, base_lock_timeout, lock_reacquire, lock_different_thread,
                lock_state_after_timeout, lock_release_unlocked, lock_racing_releases);
        }
    };
    (@kind rlock $ty:ty) => {
        mod rlock {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; base_lock_acquire_release, base_lock_try_acquire,
                base_lock_try_acquire_contended, base_lock_acquire_contended, base_lock_with,
                base_lock_thread_leak, base_lock_timeout, rlock_reacquire,
                rlock_release_unacquired, rlock_locked, rlock_locked_with_2threads,
                rlock_different_thread, rlock_is_owned, rlock_recursion_count);
        }
    };
    (@kind condition $ty:ty) => {
        mod condition {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; base_lock_acquire_release, base_lock_try_acquire,
                base_lock_try_acquire_contended, base_lock_acquire_contended, base_lock_with,
                base_lock_thread_leak, base_lock_timeout, rlock_reacquire,
                rlock_release_unacquired, rlock_locked, rlock_locked_with_2threads,
                rlock_different_thread, condition_acquire, condition_acquire_reentrant,
                condition_unacquired_wait, condition_unacquired_notify,
                condition_notify_by_non_owner, condition_notify, condition_timeout,
                condition_wait_timeout_notified, condition_waitfor, condition_waitfor_timeout,
                condition_wait_restores_rlock_depth);
        }
    };
    (@kind condition_over_lock $ty:ty) => {
        mod condition_over_lock {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; base_lock_acquire_release, base_lock_try_acquire,
                base_lock_try_acquire_contended, base_lock_acquire_contended, base_lock_with,
                base_lock_thread_leak, base_lock_timeout, lock_reacquire, lock_different_thread,
                lock_state_after_timeout, lock_release_unlocked, lock_racing_releases,
                condition_acquire, condition_unacquired_wait, condition_unacquired_notify,
                condition_notify, condition_timeout, condition_wait_timeout_notified,
                condition_waitfor, condition_waitfor_timeout);
        }
    };
    (@kind semaphore $ty:ty) => {
        mod semaphore {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; base_semaphore_acquire,
                base_semaphore_acquire_contended, base_semaphore_multirelease,
                base_semaphore_try_acquire, base_semaphore_try_acquire_contended,
                base_semaphore_acquire_timeout, base_semaphore_default_value,
                base_semaphore_with, base_semaphore_release_zero, semaphore_release_unacquired,
                semaphore_repr);
        }
    };
    (@kind bounded_semaphore $ty:ty) => {
        mod bounded_semaphore {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; base_semaphore_acquire,
                base_semaphore_acquire_contended, base_semaphore_multirelease,
                base_semaphore_try_acquire, base_semaphore_try_acquire_contended,
                base_semaphore_acquire_timeout, base_semaphore_default_value,
                base_semaphore_with, base_semaphore_release_zero,
                bounded_semaphore_release_unacquired, bounded_semaphore_repr);
        }
    };
    (@kind event $ty:ty) => {
        mod event {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; event_is_set, event_notify, event_timeout,
                event_set_and_clear);
        }
    };
    (@kind barrier $ty:ty) => {
        mod barrier {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; barrier_lockstep, barrier_wait_return,
                barrier_abort, barrier_reset, barrier_abort_and_reset, barrier_timeout,
                barrier_single_thread, barrier_repr);
        }
    };
    (@kind barrier_with_action $ty:ty) => {
        mod barrier_with_action {
            #[allow(unused_imports)]
            use super::*;
            $crate::sync_suite!(@tests $ty; barrier_action, barrier_action_panic,
                barrier_action_reentrant);
        }
    };
    (@tests $ty:ty; $($check:ident),*) => {$(
        #[test]
        fn $check() {
            let _watch = $crate::sync::__watchdog(stringify!($check));
            $crate::sync::$check::<$ty>();
        }
    )*};
}
