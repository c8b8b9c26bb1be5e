//! The lock checks: `BaseLockTests`, `LockTests` and `RLockTests` of
//! CPython's `Lib/test/lock_tests.py`.

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use spindle::sync::{BlockingRLock, ReleaseError};

use super::{LONG, LockUnderTest, SHORT, ScopeOk, TIMEOUT, check, timed, until, until_blocked};

/// Acquires `lock` in another thread and releases it there (CPython's
/// `Bunch(f, 1)` with `f` = acquire + release): proves the lock is free.
fn acquire_release_elsewhere<L: LockUnderTest>(lock: &L, what: &str) {
    thread::scope(|s| {
        s.spawn(|| {
            check(
                lock.acquire_timeout(LONG).scope_ok(),
                format_args!("{what}: another thread acquires the lock"),
            );
            check(
                lock.release().scope_ok() == Ok(()),
                format_args!("{what}: and releases it"),
            );
        });
    });
}

// BaseLockTests: every lock (Lock, RLock, a Condition as its lock).

/// `BaseLockTests.test_constructor`, `test_acquire_destroy` and
/// `test_acquire_release`: a new lock is free; acquire and release; a lock
/// dropped while held is no error.
pub fn base_lock_acquire_release<L: LockUnderTest>() {
    drop(L::make());
    let held = L::make();
    held.acquire().scope_ok();
    drop(held);

    let lock = L::make();
    check(!lock.is_locked().scope_ok(), "a new lock is free");
    lock.acquire().scope_ok();
    check(lock.is_locked().scope_ok(), "locked after acquire");
    check(
        lock.release().scope_ok() == Ok(()),
        "releasing a held lock succeeds",
    );
    check(!lock.is_locked().scope_ok(), "free after release");
}

/// `BaseLockTests.test_try_acquire`: a free lock is taken without blocking,
/// by every non-blocking and bounded form (a deadline already passed still
/// takes a free lock, like Python's `acquire(timeout=0)`).
pub fn base_lock_try_acquire<L: LockUnderTest>() {
    let lock = L::make();
    check(lock.try_acquire().scope_ok(), "try_acquire of a free lock");
    check(lock.is_locked().scope_ok(), "held after try_acquire");
    check(
        lock.release().scope_ok() == Ok(()),
        "release after try_acquire",
    );
    check(
        lock.acquire_deadline(Instant::now()).scope_ok(),
        "acquire_deadline(now) of a free lock",
    );
    check(lock.release().scope_ok() == Ok(()), "release");
    check(
        lock.acquire_timeout(Duration::ZERO).scope_ok(),
        "acquire_timeout(0) of a free lock",
    );
    check(lock.release().scope_ok() == Ok(()), "release");
    for form in ["try_lock", "lock_timeout(0)", "lock_deadline(now)"] {
        let guard = match form {
            "try_lock" => lock.try_lock(),
            "lock_timeout(0)" => lock.lock_timeout(Duration::ZERO),
            _ => lock.lock_deadline(Instant::now()),
        }
        .scope_ok();
        check(guard.is_some(), format_args!("{form} of a free lock"));
        check(lock.is_locked().scope_ok(), format_args!("{form} holds it"));
        drop(guard);
        check(
            !lock.is_locked().scope_ok(),
            format_args!("the guard of {form} releases on drop"),
        );
    }
}

/// `BaseLockTests.test_try_acquire_contended`: another thread's
/// non-blocking and bounded attempts on a held lock fail. Regression: a
/// failed `try_lock`/`lock_timeout`/`lock_deadline` returns `None` and leaves
/// the lock held (the old process-scope guards released a lock they had not
/// taken).
pub fn base_lock_try_acquire_contended<L: LockUnderTest>() {
    let lock = L::make();
    lock.acquire().scope_ok();
    thread::scope(|s| {
        s.spawn(|| {
            check(
                !lock.try_acquire().scope_ok(),
                "try_acquire of a lock held by another thread fails",
            );
            check(
                !lock.acquire_deadline(Instant::now()).scope_ok(),
                "acquire_deadline(now) of a held lock fails",
            );
            check(
                !lock.acquire_timeout(SHORT).scope_ok(),
                "acquire_timeout of a held lock fails",
            );
            check(
                lock.try_lock().scope_ok().is_none(),
                "try_lock of a held lock is None",
            );
            check(
                lock.is_locked().scope_ok(),
                "a failed try_lock leaves it held",
            );
            check(
                lock.lock_timeout(SHORT).scope_ok().is_none(),
                "lock_timeout of a held lock is None",
            );
            check(
                lock.is_locked().scope_ok(),
                "a failed lock_timeout leaves it held",
            );
            check(
                lock.lock_deadline(Instant::now()).scope_ok().is_none(),
                "lock_deadline(now) of a held lock is None",
            );
            check(
                lock.is_locked().scope_ok(),
                "a failed lock_deadline leaves it held",
            );
        });
    });
    check(
        lock.is_locked().scope_ok(),
        "still held by its holder after the failed attempts",
    );
    check(
        lock.release().scope_ok() == Ok(()),
        "the holder's release succeeds: the failed attempts released nothing",
    );
    check(!lock.is_locked().scope_ok(), "free after one release");
}

/// `BaseLockTests.test_acquire_contended`: 5 threads block acquiring a held
/// lock; none gets it before the holder releases; then all do, one after
/// the other (each by another acquisition form, the bounded ones with a
/// long timeout that a release must end).
pub fn base_lock_acquire_contended<L: LockUnderTest>() {
    const N: usize = 5;
    let lock = L::make();
    lock.acquire().scope_ok();
    let entered = AtomicUsize::new(0);
    let finished = AtomicUsize::new(0);
    thread::scope(|s| {
        for i in 0..N {
            let (lock, entered, finished) = (&lock, &entered, &finished);
            s.spawn(move || {
                entered.fetch_add(1, SeqCst);
                match i % 4 {
                    0 => lock.acquire().scope_ok(),
                    1 => check(
                        lock.acquire_timeout(LONG).scope_ok(),
                        "a long acquire_timeout ends when the lock is released",
                    ),
                    2 => {
                        let g = lock.lock().scope_ok();
                        finished.fetch_add(1, SeqCst);
                        drop(g);
                        return;
                    }
                    _ => {
                        let g = lock.lock_timeout(LONG).scope_ok();
                        check(
                            g.is_some(),
                            "a long lock_timeout ends when the lock is released",
                        );
                        finished.fetch_add(1, SeqCst);
                        drop(g);
                        return;
                    }
                }
                finished.fetch_add(1, SeqCst);
                check(
                    lock.release().scope_ok() == Ok(()),
                    "each thread releases what it acquired",
                );
            });
        }
        until_blocked("5 threads block acquiring a held lock", &entered, N, || {
            lock.blocked()
        });
        check(finished.load(SeqCst) == 0, "no thread acquires a held lock");
        check(lock.is_locked().scope_ok(), "held while they wait");
        check(lock.release().scope_ok() == Ok(()), "the holder releases");
    });
    check(
        finished.load(SeqCst) == N,
        "every thread acquired it in turn",
    );
    check(!lock.is_locked().scope_ok(), "free at the end");
}

/// `BaseLockTests.test_with`: `with lock:` is the guard of `lock()`,
/// released when it drops, also while unwinding (Python: on an exception).
pub fn base_lock_with<L: LockUnderTest>() {
    let lock = L::make();
    {
        let _held = lock.lock().scope_ok();
        check(lock.is_locked().scope_ok(), "held inside the guard's scope");
    }
    check(!lock.is_locked().scope_ok(), "the guard releases on drop");
    acquire_release_elsewhere(&lock, "after a guard");

    let unwound = catch_unwind(AssertUnwindSafe(|| {
        let _held = lock.lock().scope_ok();
        // Python raises TypeError inside `with lock:`; no panic message.
        resume_unwind(Box::new("raised inside with lock:"));
    }));
    check(unwound.is_err(), "the panic went on");
    check(
        !lock.is_locked().scope_ok(),
        "the guard releases while unwinding",
    );
    acquire_release_elsewhere(&lock, "after a panic under a guard");
}

/// `BaseLockTests.test_thread_leak`: 15 fresh threads, each new to the
/// implementation, acquire and release the lock; it ends free.
pub fn base_lock_thread_leak<L: LockUnderTest>() {
    let lock = L::make();
    thread::scope(|s| {
        for _ in 0..15 {
            s.spawn(|| {
                lock.acquire().scope_ok();
                check(lock.release().scope_ok() == Ok(()), "release");
            });
        }
    });
    check(!lock.is_locked().scope_ok(), "free after 15 threads");
}

/// `BaseLockTests.test_timeout`: `TIMEOUT_MAX` is fine (here a timeout too
/// long for a deadline waits for ever: a free lock is taken at once,
/// where Python raises `OverflowError` past `TIMEOUT_MAX`); a long timeout on
/// a free lock does not wait it out; a bounded acquire of a held lock by
/// another thread fails, and not before its timeout.
pub fn base_lock_timeout<L: LockUnderTest>() {
    let lock = L::make();
    check(
        lock.acquire_timeout(Duration::MAX).scope_ok(),
        "acquire_timeout(Duration::MAX) of a free lock",
    );
    check(lock.release().scope_ok() == Ok(()), "release");
    let (ok, took) = timed(|| lock.acquire_timeout(LONG).scope_ok());
    check(ok, "acquire_timeout of a free lock");
    check(
        took < LONG / 10,
        format_args!("acquire_timeout of a free lock waited {took:?}"),
    );
    thread::scope(|s| {
        s.spawn(|| {
            let (ok, took) = timed(|| lock.acquire_timeout(TIMEOUT).scope_ok());
            check(!ok, "acquire_timeout of a held lock fails");
            check(
                took >= TIMEOUT,
                format_args!("acquire_timeout({TIMEOUT:?}) gave up after {took:?}"),
            );
            let (g, took) = timed(|| lock.lock_timeout(TIMEOUT).scope_ok());
            check(g.is_none(), "lock_timeout of a held lock is None");
            check(
                took >= TIMEOUT,
                format_args!("lock_timeout({TIMEOUT:?}) gave up after {took:?}"),
            );
            let deadline = Instant::now() + TIMEOUT;
            check(
                !lock.acquire_deadline(deadline).scope_ok(),
                "acquire_deadline of a held lock fails",
            );
            check(
                Instant::now() >= deadline,
                "acquire_deadline gave up before its deadline",
            );
        });
    });
    check(lock.release().scope_ok() == Ok(()), "the holder releases");
    check(!lock.is_locked().scope_ok(), "free at the end");
}

// LockTests: a lock that is not re-entrant and not owned (a Lock, a
// Condition over one).

/// `LockTests.test_reacquire`: a second acquire by the holding thread
/// blocks until *another* thread releases the lock.
pub fn lock_reacquire<L: LockUnderTest>() {
    let lock = L::make();
    let phase = AtomicUsize::new(0);
    let entered = AtomicUsize::new(0);
    thread::scope(|s| {
        s.spawn(|| {
            lock.acquire().scope_ok();
            phase.store(1, SeqCst);
            entered.store(1, SeqCst);
            lock.acquire().scope_ok(); // blocks: only another thread frees it
            phase.store(2, SeqCst);
            check(lock.release().scope_ok() == Ok(()), "release");
        });
        until_blocked(
            "the thread blocks on its second acquire",
            &entered,
            1,
            || lock.blocked(),
        );
        check(
            phase.load(SeqCst) == 1,
            "a Lock is not re-entrant: the second acquire blocks",
        );
        check(
            lock.release().scope_ok() == Ok(()),
            "a thread that never acquired the lock releases it",
        );
        until("the second acquire returns", || phase.load(SeqCst) == 2);
    });
    check(!lock.is_locked().scope_ok(), "free at the end");
}

/// `LockTests.test_different_thread`: a lock acquired in one thread is
/// released by another, both ways round.
pub fn lock_different_thread<L: LockUnderTest>() {
    let lock = L::make();
    lock.acquire().scope_ok();
    thread::scope(|s| {
        s.spawn(|| {
            check(
                lock.release().scope_ok() == Ok(()),
                "another thread releases the lock",
            );
        });
    });
    check(
        !lock.is_locked().scope_ok(),
        "free after the other's release",
    );
    lock.acquire().scope_ok();
    check(lock.release().scope_ok() == Ok(()), "release");

    thread::scope(|s| {
        s.spawn(|| lock.acquire().scope_ok());
    });
    check(
        lock.is_locked().scope_ok(),
        "held after the acquiring thread ended",
    );
    check(
        lock.release().scope_ok() == Ok(()),
        "released by a thread that did not acquire it",
    );
    check(!lock.is_locked().scope_ok(), "free at the end");
}

/// `LockTests.test_state_after_timeout` (issue #11618): after a timed-out
/// acquire the lock is in a proper state. Regression: the holding thread's
/// own failed `try_lock`/`lock_timeout`/`lock_deadline` leave it held.
pub fn lock_state_after_timeout<L: LockUnderTest>() {
    let lock = L::make();
    lock.acquire().scope_ok();
    check(
        !lock.acquire_timeout(Duration::from_millis(10)).scope_ok(),
        "acquire_timeout by the holder of a Lock fails",
    );
    check(
        !lock.try_acquire().scope_ok(),
        "try_acquire by the holder fails",
    );
    check(
        lock.try_lock().scope_ok().is_none(),
        "try_lock by the holder is None",
    );
    check(
        lock.lock_timeout(SHORT).scope_ok().is_none(),
        "lock_timeout by the holder is None",
    );
    check(
        lock.lock_deadline(Instant::now()).scope_ok().is_none(),
        "lock_deadline by the holder is None",
    );
    check(
        lock.is_locked().scope_ok(),
        "failed attempts leave the lock held",
    );
    check(
        lock.release().scope_ok() == Ok(()),
        "release after the timeouts",
    );
    check(!lock.is_locked().scope_ok(), "free after release");
    check(
        lock.try_acquire().scope_ok(),
        "acquire(blocking=False) succeeds",
    );
    check(lock.release().scope_ok() == Ok(()), "release");
}

/// The `Lock` side of `RLockTests.test_release_unacquired`: releasing an
/// unlocked `Lock` is [`ReleaseError::Unlocked`] (Python: `RuntimeError:
/// release unlocked lock`), before any acquisition and after the last.
pub fn lock_release_unlocked<L: LockUnderTest>() {
    let lock = L::make();
    let err = lock.release().scope_ok();
    check(
        err == Err(ReleaseError::Unlocked),
        format_args!("releasing a new lock: {err:?}"),
    );
    check(
        err.unwrap_err().to_string() == "release unlocked lock",
        "the error is Python's message",
    );
    lock.acquire().scope_ok();
    check(lock.release().scope_ok() == Ok(()), "release");
    check(
        lock.release().scope_ok() == Err(ReleaseError::Unlocked),
        "releasing twice",
    );
    check(
        !lock.is_locked().scope_ok(),
        "a failed release changes nothing",
    );
}

/// Not in `lock_tests.py` (spindle's): of two threads racing to release
/// one held lock, exactly one succeeds, 2000 times over.
pub fn lock_racing_releases<L: LockUnderTest>() {
    let lock = L::make();
    let gate = std::sync::Barrier::new(2);
    for _ in 0..2000 {
        lock.acquire().scope_ok();
        let ok = thread::scope(|s| {
            let other = s.spawn(|| {
                gate.wait();
                lock.release().scope_ok().is_ok()
            });
            gate.wait();
            let mine = lock.release().scope_ok().is_ok();
            let theirs = other.join().unwrap_or_else(|p| resume_unwind(p));
            usize::from(mine) + usize::from(theirs)
        });
        check(
            ok == 1,
            format_args!("{ok} of two racing releases succeeded"),
        );
        check(!lock.is_locked().scope_ok(), "free after the race");
    }
}

// RLockTests: a re-entrant lock owned by a thread (an RLock, a Condition
// over one). The checks of `BlockingRLock` take an RLock only.

/// `RLockTests.test_reacquire`: the owner acquires again without blocking,
/// by every form (a bounded one never waits), and the lock is free once
/// released as many times as acquired; meanwhile other threads cannot take
/// it.
pub fn rlock_reacquire<L: LockUnderTest>() {
    let lock = L::make();
    lock.acquire().scope_ok();
    lock.acquire().scope_ok();
    check(lock.release().scope_ok() == Ok(()), "release");
    lock.acquire().scope_ok();
    check(lock.release().scope_ok() == Ok(()), "release");
    check(lock.release().scope_ok() == Ok(()), "release");
    check(
        !lock.is_locked().scope_ok(),
        "free once released as often as acquired",
    );

    lock.acquire().scope_ok();
    check(lock.try_acquire().scope_ok(), "re-entrant try_acquire");
    check(
        lock.acquire_deadline(Instant::now()).scope_ok(),
        "re-entrant acquire_deadline(now): re-entry never waits",
    );
    check(
        lock.acquire_timeout(Duration::ZERO).scope_ok(),
        "re-entrant acquire_timeout(0)",
    );
    {
        let _a = lock.lock().scope_ok();
        let b = lock.try_lock().scope_ok();
        check(b.is_some(), "re-entrant try_lock");
        let c = lock.lock_timeout(Duration::ZERO).scope_ok();
        check(c.is_some(), "re-entrant lock_timeout(0)");
        let d = lock.lock_deadline(Instant::now()).scope_ok();
        check(d.is_some(), "re-entrant lock_deadline(now)");
        thread::scope(|s| {
            s.spawn(|| {
                check(
                    lock.try_lock().scope_ok().is_none(),
                    "another thread cannot take a held RLock",
                );
                check(!lock.try_acquire().scope_ok(), "nor try_acquire it");
            });
        });
    }
    for level in (1..=4).rev() {
        check(
            lock.is_locked().scope_ok(),
            format_args!("held with {level} levels left"),
        );
        check(lock.release().scope_ok() == Ok(()), "release one level");
    }
    check(!lock.is_locked().scope_ok(), "free after the last release");
}

/// `RLockTests.test_release_unacquired`: releasing an `RLock` the calling
/// thread does not hold is [`ReleaseError::NotOwner`] (Python:
/// `RuntimeError: cannot release un-acquired lock`).
pub fn rlock_release_unacquired<L: LockUnderTest>() {
    let lock = L::make();
    let err = lock.release().scope_ok();
    check(
        err == Err(ReleaseError::NotOwner),
        format_args!("releasing a new RLock: {err:?}"),
    );
    check(
        err.unwrap_err().to_string() == "cannot release un-acquired lock",
        "the error is Python's message",
    );
    lock.acquire().scope_ok();
    lock.acquire().scope_ok();
    check(lock.release().scope_ok() == Ok(()), "release");
    lock.acquire().scope_ok();
    check(lock.release().scope_ok() == Ok(()), "release");
    check(lock.release().scope_ok() == Ok(()), "release");
    check(
        lock.release().scope_ok() == Err(ReleaseError::NotOwner),
        "one release too many",
    );
}

/// `RLockTests.test_locked`: `locked()` through the recursion levels.
pub fn rlock_locked<L: LockUnderTest>() {
    let lock = L::make();
    check(!lock.is_locked().scope_ok(), "a new RLock is free");
    lock.acquire().scope_ok();
    check(lock.is_locked().scope_ok(), "locked at depth 1");
    lock.acquire().scope_ok();
    check(lock.is_locked().scope_ok(), "locked at depth 2");
    check(lock.release().scope_ok() == Ok(()), "release");
    check(lock.is_locked().scope_ok(), "still locked at depth 1");
    check(lock.release().scope_ok() == Ok(()), "release");
    check(!lock.is_locked().scope_ok(), "free at depth 0");
}

/// `RLockTests.test_locked_with_2threads` (gh-134323): an `RLock` held by
/// another thread is locked in this one.
pub fn rlock_locked_with_2threads<L: LockUnderTest>() {
    let lock = L::make();
    let held = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            check(
                !lock.is_locked().scope_ok(),
                "free before the thread takes it",
            );
            lock.acquire().scope_ok();
            check(lock.is_locked().scope_ok(), "locked in the holding thread");
            held.store(true, SeqCst);
            until("the main thread has looked", || done.load(SeqCst));
            check(lock.release().scope_ok() == Ok(()), "the holder releases");
        });
        until("the other thread holds the RLock", || held.load(SeqCst));
        check(
            lock.is_locked().scope_ok(),
            "an RLock held by another thread is locked here",
        );
        done.store(true, SeqCst);
    });
    check(!lock.is_locked().scope_ok(), "free at the end");
}

/// `RLockTests.test_different_thread`: a thread that does not own the
/// `RLock` cannot release it, nor take it; its failed attempts leave the
/// owner's hold as it was (the owner's single release frees it).
pub fn rlock_different_thread<L: LockUnderTest>() {
    let lock = L::make();
    let held = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            lock.acquire().scope_ok();
            held.store(true, SeqCst);
            until("the main thread has tried", || done.load(SeqCst));
            check(
                lock.is_locked().scope_ok(),
                "the owner still holds it after the others' attempts",
            );
            check(lock.release().scope_ok() == Ok(()), "the owner releases");
        });
        until("the other thread holds the RLock", || held.load(SeqCst));
        check(
            lock.release().scope_ok() == Err(ReleaseError::NotOwner),
            "a non-owner cannot release an RLock",
        );
        check(!lock.try_acquire().scope_ok(), "nor try_acquire it");
        check(
            lock.try_lock().scope_ok().is_none(),
            "nor take it with try_lock",
        );
        check(
            lock.lock_timeout(SHORT).scope_ok().is_none(),
            "nor with lock_timeout",
        );
        check(
            !lock.acquire_deadline(Instant::now()).scope_ok(),
            "nor with acquire_deadline",
        );
        check(lock.is_locked().scope_ok(), "still held");
        done.store(true, SeqCst);
    });
    check(
        !lock.is_locked().scope_ok(),
        "the owner's single release frees it: failed attempts change no depth",
    );
}

/// `RLockTests.test__is_owned`: only the acquiring thread owns the lock,
/// at every depth.
pub fn rlock_is_owned<L: LockUnderTest + BlockingRLock>() {
    let lock = L::make();
    check(!lock.is_owned().scope_ok(), "a new RLock is not owned");
    lock.acquire().scope_ok();
    check(lock.is_owned().scope_ok(), "owned at depth 1");
    lock.acquire().scope_ok();
    check(lock.is_owned().scope_ok(), "owned at depth 2");
    thread::scope(|s| {
        s.spawn(|| {
            check(
                !lock.is_owned().scope_ok(),
                "another thread does not own it",
            );
            check(!lock.try_acquire().scope_ok(), "nor can it take it");
        });
    });
    check(lock.release().scope_ok() == Ok(()), "release");
    check(lock.is_owned().scope_ok(), "still owned at depth 1");
    check(lock.release().scope_ok() == Ok(()), "release");
    check(!lock.is_owned().scope_ok(), "not owned once free");
}

/// `RLockTests.test_recursion_count`: the depth (CPython's
/// `_recursion_count()`) counts the calling thread's levels; it is 0 in a
/// thread that does not hold the lock, also while another does.
pub fn rlock_recursion_count<L: LockUnderTest + BlockingRLock>() {
    let lock = L::make();
    check(lock.recursion_depth().scope_ok() == 0, "depth 0 when new");
    lock.acquire().scope_ok();
    check(lock.recursion_depth().scope_ok() == 1, "depth 1");
    lock.acquire().scope_ok();
    lock.acquire().scope_ok();
    check(lock.recursion_depth().scope_ok() == 3, "depth 3");
    check(lock.release().scope_ok() == Ok(()), "release");
    check(lock.recursion_depth().scope_ok() == 2, "depth 2");
    check(lock.release().scope_ok() == Ok(()), "release");
    check(lock.release().scope_ok() == Ok(()), "release");
    check(lock.recursion_depth().scope_ok() == 0, "depth 0 when free");

    let held = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        s.spawn(|| {
            lock.acquire().scope_ok();
            check(
                lock.recursion_depth().scope_ok() == 1,
                "depth 1 in the holder",
            );
            held.store(true, SeqCst);
            until("the main thread has looked", || done.load(SeqCst));
            check(lock.release().scope_ok() == Ok(()), "release");
        });
        until("the other thread holds the RLock", || held.load(SeqCst));
        check(
            lock.recursion_depth().scope_ok() == 0,
            "depth 0 here while another thread holds it",
        );
        check(!lock.is_owned().scope_ok(), "and not owned here");
        done.store(true, SeqCst);
    });
    check(
        lock.recursion_depth().scope_ok() == 0,
        "depth 0 after the other released",
    );
}
