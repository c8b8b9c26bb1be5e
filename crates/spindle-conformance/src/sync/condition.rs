//! The condition checks: `ConditionTests` of CPython's
//! `Lib/test/lock_tests.py`. A condition's lock family is checked by the
//! lock checks ([`super::lock`]), as CPython's `ConditionAsRLockTests` does.
//!
//! A waiter announces itself while holding the condition's lock, which
//! `wait` releases only once the waiter is registered: so once the
//! announcing thread sees the announcement and takes the lock, the waiter
//! is waiting. No count of sleeping threads is needed.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use spindle::sync::{BlockingLock, BlockingRLock, NotOwnedError};

use super::{ConditionUnderTest, LONG, SHORT, ScopeOk, TIMEOUT, check, timed, until};

/// A thread's record of one wait: whether it was notified, and the phase
/// the notifying thread had reached.
type Woken = Vec<(bool, usize)>;

fn snapshot(v: &Mutex<Woken>) -> Woken {
    v.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn push(v: &Mutex<Woken>, entry: (bool, usize)) {
    v.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
}

/// `ConditionTests.test_acquire`, the part about `Condition(lock)`:
/// acquiring and releasing the condition is acquiring and releasing its
/// lock (checked from another thread, so that it also holds for an
/// `RLock`).
pub fn condition_acquire<C: ConditionUnderTest>() {
    let cond = C::make();
    let lock = cond.underlying_lock();
    cond.acquire().scope_ok();
    check(
        lock.is_locked().scope_ok() && cond.is_locked().scope_ok(),
        "acquiring the condition acquires its lock",
    );
    thread::scope(|s| {
        s.spawn(|| {
            check(
                !lock.try_acquire().scope_ok(),
                "the lock is taken while the condition is held",
            );
            check(
                !cond.try_acquire().scope_ok() && cond.try_lock().scope_ok().is_none(),
                "the condition is taken",
            );
        });
    });
    check(cond.release().scope_ok() == Ok(()), "release the condition");
    check(
        !lock.is_locked().scope_ok() && !cond.is_locked().scope_ok(),
        "releasing the condition releases its lock",
    );

    let held = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            lock.acquire().scope_ok();
            held.store(true, SeqCst);
            until("the main thread has tried", || done.load(SeqCst));
            check(lock.release().scope_ok() == Ok(()), "release the lock");
        });
        until("the other thread holds the lock", || held.load(SeqCst));
        check(cond.is_locked().scope_ok(), "the condition is locked");
        check(
            !cond.try_acquire().scope_ok(),
            "cond.acquire(False) fails while its lock is held",
        );
        check(
            cond.lock_timeout(SHORT).scope_ok().is_none(),
            "cond.lock_timeout fails while its lock is held",
        );
        done.store(true, SeqCst);
    });

    {
        let _held = cond.lock().scope_ok();
        thread::scope(|s| {
            s.spawn(|| {
                check(
                    !lock.try_acquire().scope_ok(),
                    "the lock is taken inside `with cond:`",
                );
            });
        });
    }
    check(!lock.is_locked().scope_ok(), "free at the end");
}

/// `ConditionTests.test_acquire`, the default lock: a condition over an
/// `RLock` (Python's default) can be acquired several times by its owner.
pub fn condition_acquire_reentrant<C>()
where
    C: ConditionUnderTest,
    C::Lock: BlockingRLock,
{
    let cond = C::make();
    let lock = cond.underlying_lock();
    cond.acquire().scope_ok();
    cond.acquire().scope_ok();
    check(
        lock.is_owned().scope_ok() && lock.recursion_depth().scope_ok() == 2,
        "the condition's RLock is owned at depth 2",
    );
    check(cond.release().scope_ok() == Ok(()), "release");
    check(cond.release().scope_ok() == Ok(()), "release");
    check(!lock.is_locked().scope_ok(), "free after two releases");
    {
        let _held = cond.lock().scope_ok();
        check(cond.try_acquire().scope_ok(), "re-entrant try_acquire");
        check(
            lock.recursion_depth().scope_ok() == 2,
            "a guard and an acquire: depth 2",
        );
        check(cond.release().scope_ok() == Ok(()), "release");
    }
    check(!lock.is_locked().scope_ok(), "free at the end");
}

/// `ConditionTests.test_unacquired_wait`: waiting without holding the lock
/// is a [`NotOwnedError`] (Python: `RuntimeError: cannot wait on
/// un-acquired lock`), returned at once by every form. (A `wait_for` whose
/// predicate already holds returns without waiting, hence without the
/// error, as in Python.)
pub fn condition_unacquired_wait<C: ConditionUnderTest>() {
    let cond = C::make();
    check(
        cond.wait().scope_ok() == Err(NotOwnedError),
        "wait without the lock",
    );
    check(
        cond.wait_timeout(SHORT).scope_ok() == Err(NotOwnedError),
        "wait_timeout without the lock",
    );
    check(
        cond.wait_deadline(Instant::now()).scope_ok() == Err(NotOwnedError),
        "wait_deadline without the lock",
    );
    check(
        cond.wait_for(|| false).scope_ok() == Err(NotOwnedError),
        "wait_for without the lock",
    );
    check(
        cond.wait_for_timeout(|| false, TIMEOUT).scope_ok() == Err(NotOwnedError),
        "wait_for_timeout without the lock",
    );
    check(
        !cond.is_locked().scope_ok(),
        "a refused wait leaves the lock alone",
    );
}

/// `ConditionTests.test_unacquired_notify`: notifying without holding the
/// lock is a [`NotOwnedError`].
pub fn condition_unacquired_notify<C: ConditionUnderTest>() {
    let cond = C::make();
    check(
        cond.notify(1).scope_ok() == Err(NotOwnedError),
        "notify without the lock",
    );
    check(
        cond.notify_one().scope_ok() == Err(NotOwnedError),
        "notify_one without the lock",
    );
    check(
        cond.notify_all().scope_ok() == Err(NotOwnedError),
        "notify_all without the lock",
    );
}

/// `ConditionTests.test_unacquired_wait`/`test_unacquired_notify` with the
/// condition's `RLock` held by another thread: held by someone else is not
/// held (the `RLock` has an owner; over a `Lock`, Python counts any holder).
pub fn condition_notify_by_non_owner<C>()
where
    C: ConditionUnderTest,
    C::Lock: BlockingRLock,
{
    let cond = C::make();
    let held = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let _held = cond.lock().scope_ok();
            held.store(true, SeqCst);
            until("the main thread has tried", || done.load(SeqCst));
        });
        until("the other thread holds the condition", || held.load(SeqCst));
        check(
            cond.notify_one().scope_ok() == Err(NotOwnedError),
            "notify_one while another thread holds the RLock",
        );
        check(
            cond.notify_all().scope_ok() == Err(NotOwnedError),
            "notify_all while another thread holds the RLock",
        );
        check(
            cond.wait_timeout(SHORT).scope_ok() == Err(NotOwnedError),
            "wait_timeout while another thread holds the RLock",
        );
        done.store(true, SeqCst);
    });
}

/// `ConditionTests._check_notify`, once: 5 waiters, each waiting twice;
/// `notify(3)` wakes exactly 3, `notify(5)` the 2 still in their first wait
/// and the 3 in their second, `notify_all` the last 2. Each woken waiter
/// records the phase the notifier set before releasing the lock, so the
/// records prove who was woken by which notification (no spurious
/// wake-ups, as in CPython). `notify` says how many it woke (Python returns
/// `None`).
fn check_notify<C: ConditionUnderTest>(cond: &C) {
    const N: usize = 5;
    let ready = AtomicUsize::new(0);
    let phase = AtomicUsize::new(0);
    let results1 = Mutex::new(Woken::new());
    let results2 = Mutex::new(Woken::new());
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                cond.acquire().scope_ok();
                ready.fetch_add(1, SeqCst);
                let r = cond.wait().scope_ok();
                check(r.is_ok(), "wait with the lock held");
                push(&results1, (r.is_ok(), phase.load(SeqCst)));
                check(cond.release().scope_ok() == Ok(()), "release");

                cond.acquire().scope_ok();
                ready.fetch_add(1, SeqCst);
                let r = cond.wait_timeout(LONG).scope_ok();
                check(r.is_ok(), "wait_timeout with the lock held");
                push(&results2, (r == Ok(true), phase.load(SeqCst)));
                check(cond.release().scope_ok() == Ok(()), "release");
            });
        }
        until("5 threads wait", || ready.load(SeqCst) == N);
        {
            let _held = cond.lock().scope_ok();
            ready.store(0, SeqCst);
            check(
                snapshot(&results1).is_empty(),
                "nobody woke before a notify",
            );
            check(
                cond.notify(3).scope_ok() == Ok(3),
                "notify(3) with 5 waiting wakes 3",
            );
            phase.store(1, SeqCst);
        }
        until("the 3 woken wait again", || {
            snapshot(&results1).len() >= 3 && ready.load(SeqCst) >= 3
        });
        {
            let _held = cond.lock().scope_ok();
            check(
                snapshot(&results1) == [(true, 1); 3],
                format_args!("after notify(3): {:?}", snapshot(&results1)),
            );
            check(snapshot(&results2).is_empty(), "nobody left a second wait");
            ready.store(0, SeqCst);
            check(
                cond.notify(5).scope_ok() == Ok(5),
                "notify(5) with 5 waiting (2 in a first wait, 3 in a second) wakes 5",
            );
            phase.store(2, SeqCst);
        }
        until("the 2 woken from their first wait wait again", || {
            snapshot(&results1).len() + snapshot(&results2).len() >= N + 3
                && ready.load(SeqCst) >= 2
        });
        {
            let _held = cond.lock().scope_ok();
            let (r1, r2) = (snapshot(&results1), snapshot(&results2));
            check(
                r1 == [(true, 1), (true, 1), (true, 1), (true, 2), (true, 2)],
                format_args!("first waits after notify(5): {r1:?}"),
            );
            check(
                r2 == [(true, 2); 3],
                format_args!("second waits after notify(5): {r2:?}"),
            );
            check(
                cond.notify_all().scope_ok() == Ok(2),
                "notify_all wakes the 2 left",
            );
            phase.store(3, SeqCst);
        }
    });
    let r2 = snapshot(&results2);
    check(
        r2 == [(true, 2), (true, 2), (true, 2), (true, 3), (true, 3)],
        format_args!("second waits after notify_all: {r2:?}"),
    );
    let _held = cond.lock().scope_ok();
    check(
        cond.notify_all().scope_ok() == Ok(0),
        "notify_all with nobody waiting wakes 0",
    );
}

/// `ConditionTests.test_notify`: `_check_notify` twice on one condition,
/// to check that its state is still sound.
pub fn condition_notify<C: ConditionUnderTest>() {
    let cond = C::make();
    check_notify(&cond);
    check_notify(&cond);
}

/// `ConditionTests.test_timeout`: 5 threads' bounded waits that nobody
/// notifies return `false`, not before their timeout, with the lock held
/// again; the timed-out waiters have left (a later `notify_all` wakes
/// nobody).
pub fn condition_timeout<C: ConditionUnderTest>() {
    const N: usize = 5;
    let cond = C::make();
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                cond.acquire().scope_ok();
                let (r, took) = timed(|| cond.wait_timeout(TIMEOUT).scope_ok());
                check(r == Ok(false), "an unnotified wait_timeout returns false");
                check(
                    took >= TIMEOUT,
                    format_args!("wait_timeout({TIMEOUT:?}) returned after {took:?}"),
                );
                check(
                    cond.is_locked().scope_ok(),
                    "the lock is held again after a timed-out wait",
                );
                check(
                    cond.release().scope_ok() == Ok(()),
                    "the waiter releases the lock it holds again",
                );
            });
        }
    });
    let _held = cond.lock().scope_ok();
    let deadline = Instant::now() + TIMEOUT;
    check(
        cond.wait_deadline(deadline).scope_ok() == Ok(false),
        "an unnotified wait_deadline returns false",
    );
    check(
        Instant::now() >= deadline,
        "wait_deadline returned before its deadline",
    );
    check(
        cond.notify_all().scope_ok() == Ok(0),
        "timed-out waiters have left the condition",
    );
}

/// Python's `wait(timeout)` returns `True` when notified (the docs of
/// `Condition.wait`; not in `lock_tests.py`): a long bounded wait ends at
/// the notification.
pub fn condition_wait_timeout_notified<C: ConditionUnderTest>() {
    let cond = C::make();
    let ready = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let _held = cond.lock().scope_ok();
            ready.store(true, SeqCst);
            check(
                cond.wait_timeout(LONG).scope_ok() == Ok(true),
                "a notified wait_timeout returns true",
            );
        });
        until("the waiter waits", || ready.load(SeqCst));
        let _held = cond.lock().scope_ok();
        check(
            cond.notify_one().scope_ok() == Ok(true),
            "notify_one wakes the waiter",
        );
    });
}

/// `ConditionTests.test_waitfor`: `wait_for` returns once the predicate
/// holds, seeing the state the notifier set; notifications that leave it
/// false do not end the wait.
pub fn condition_waitfor<C: ConditionUnderTest>() {
    let cond = C::make();
    let state = AtomicUsize::new(0);
    let ready = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let _held = cond.lock().scope_ok();
            ready.store(true, SeqCst);
            let r = cond.wait_for(|| state.load(SeqCst) == 4).scope_ok();
            check(r == Ok(()), "wait_for with the lock held");
            check(
                state.load(SeqCst) == 4,
                "wait_for returned with the predicate true",
            );
        });
        until("the waiter waits", || ready.load(SeqCst));
        for _ in 0..4 {
            let _held = cond.lock().scope_ok();
            state.fetch_add(1, SeqCst);
            check(cond.notify_one().scope_ok().is_ok(), "notify");
        }
    });
}

/// `ConditionTests.test_waitfor_timeout`: a predicate that never holds
/// makes `wait_for` with a timeout return `false` (its last value), not
/// before the timeout, through 3 notifications; a predicate that holds
/// returns `true` without waiting.
pub fn condition_waitfor_timeout<C: ConditionUnderTest>() {
    let cond = C::make();
    let state = AtomicUsize::new(0);
    let ready = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let _held = cond.lock().scope_ok();
            ready.store(true, SeqCst);
            let (r, took) = timed(|| {
                cond.wait_for_timeout(|| state.load(SeqCst) == 4, TIMEOUT)
                    .scope_ok()
            });
            check(r == Ok(false), "wait_for_timeout of a false predicate");
            check(
                took >= TIMEOUT,
                format_args!("wait_for_timeout({TIMEOUT:?}) returned after {took:?}"),
            );
        });
        until("the waiter waits", || ready.load(SeqCst));
        for _ in 0..3 {
            let _held = cond.lock().scope_ok();
            state.fetch_add(1, SeqCst);
            check(cond.notify_one().scope_ok().is_ok(), "notify");
        }
    });
    let _held = cond.lock().scope_ok();
    check(
        cond.wait_for_timeout(|| true, Duration::ZERO).scope_ok() == Ok(true),
        "a true predicate: wait_for_timeout returns true",
    );
    check(
        cond.wait_for_timeout(|| false, Duration::ZERO).scope_ok() == Ok(false),
        "a zero timeout: the predicate's value",
    );
}

/// CPython's `Condition.wait` over an `RLock` (`_release_save`,
/// `_acquire_restore`; not in `lock_tests.py`): waiting frees the lock at
/// every depth, so another thread can take it, and restores the depth
/// afterwards.
pub fn condition_wait_restores_rlock_depth<C>()
where
    C: ConditionUnderTest,
    C::Lock: BlockingRLock,
{
    let cond = C::make();
    let lock = cond.underlying_lock();
    let ready = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            let _a = cond.lock().scope_ok();
            lock.acquire().scope_ok();
            lock.acquire().scope_ok();
            check(
                lock.recursion_depth().scope_ok() == 3,
                "depth 3 before wait",
            );
            ready.store(true, SeqCst);
            check(cond.wait().scope_ok().is_ok(), "wait");
            check(
                lock.recursion_depth().scope_ok() == 3,
                "the depth is restored after wait",
            );
            check(lock.release().scope_ok() == Ok(()), "release");
            check(lock.release().scope_ok() == Ok(()), "release");
        });
        until("the waiter waits", || ready.load(SeqCst));
        // Possible only if the waiter freed all 3 levels.
        let _held = cond.lock().scope_ok();
        check(
            lock.recursion_depth().scope_ok() == 1,
            "the notifier holds the RLock at its own depth",
        );
        check(cond.notify_one().scope_ok() == Ok(true), "notify_one");
    });
    check(!lock.is_locked().scope_ok(), "free at the end");
}
