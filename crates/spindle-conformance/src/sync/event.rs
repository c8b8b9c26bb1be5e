//! The event checks: `EventTests` of CPython's `Lib/test/lock_tests.py`.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

use super::{EventUnderTest, LONG, ScopeOk, TIMEOUT, check, timed, until_blocked};

/// `EventTests.test_is_set`: `set` and `clear` are idempotent; `try_wait`
/// (Python's `wait(0)`) reads the flag.
pub fn event_is_set<E: EventUnderTest>() {
    let evt = E::make();
    check(!evt.is_set().scope_ok(), "a new event is clear");
    check(!evt.try_wait().scope_ok(), "try_wait of a clear event");
    evt.set().scope_ok();
    check(evt.is_set().scope_ok(), "set after set()");
    check(evt.try_wait().scope_ok(), "try_wait of a set event");
    evt.set().scope_ok();
    check(evt.is_set().scope_ok(), "still set after a second set()");
    evt.clear().scope_ok();
    check(!evt.is_set().scope_ok(), "clear after clear()");
    evt.clear().scope_ok();
    check(
        !evt.is_set().scope_ok(),
        "still clear after a second clear()",
    );
    check(!evt.try_wait().scope_ok(), "try_wait after clear");
}

/// `EventTests._check_notify`: 5 threads block in `wait`; none returns
/// before `set`, which wakes them all; a second wait returns at once
/// (Python's `wait()` returns `True`; spindle's returns `()`, so the second
/// wait is a bounded one, which returns `true`).
fn check_notify<E: EventUnderTest>(evt: &E) {
    const N: usize = 5;
    let entered = AtomicUsize::new(0);
    let woken = AtomicUsize::new(0);
    thread::scope(|s| {
        let waiters: Vec<_> = (0..N)
            .map(|_| {
                s.spawn(|| {
                    entered.fetch_add(1, SeqCst);
                    evt.wait().scope_ok();
                    woken.fetch_add(1, SeqCst);
                    evt.wait_timeout(LONG).scope_ok()
                })
            })
            .collect();
        until_blocked("5 threads block in wait", &entered, N, || evt.blocked());
        check(
            woken.load(SeqCst) == 0,
            "nobody returns from wait before set",
        );
        evt.set().scope_ok();
        for w in waiters {
            check(
                w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                "a wait on a set event returns true",
            );
        }
    });
    check(woken.load(SeqCst) == N, "set wakes every waiter");
}

/// `EventTests.test_notify`: `_check_notify`, then again after an explicit
/// `set` + `clear`.
pub fn event_notify<E: EventUnderTest>() {
    let evt = E::make();
    check_notify(&evt);
    evt.set().scope_ok();
    evt.clear().scope_ok();
    check_notify(&evt);
}

/// `EventTests.test_timeout`: on a clear event, a zero wait and
/// `try_wait` return `false` and a bounded wait returns `false`, not before
/// its timeout, in 5 threads at once; once set, `wait` returns at once and
/// the others return `true`.
pub fn event_timeout<E: EventUnderTest>() {
    const N: usize = 5;
    let evt = E::make();
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                check(
                    !evt.wait_timeout(Duration::ZERO).scope_ok(),
                    "wait(0) of a clear event",
                );
                check(!evt.try_wait().scope_ok(), "try_wait of a clear event");
                let (r, took) = timed(|| evt.wait_timeout(TIMEOUT).scope_ok());
                check(!r, "an unset wait_timeout returns false");
                check(
                    took >= TIMEOUT,
                    format_args!("wait_timeout({TIMEOUT:?}) returned after {took:?}"),
                );
                let deadline = Instant::now() + TIMEOUT;
                check(
                    !evt.wait_deadline(deadline).scope_ok(),
                    "an unset wait_deadline returns false",
                );
                check(
                    Instant::now() >= deadline,
                    "wait_deadline returned before its deadline",
                );
            });
        }
    });
    evt.set().scope_ok();
    thread::scope(|s| {
        for _ in 0..N {
            s.spawn(|| {
                evt.wait().scope_ok(); // returns at once
                check(
                    evt.wait_timeout(Duration::ZERO).scope_ok(),
                    "wait(0) of a set event",
                );
                check(
                    evt.wait_timeout(TIMEOUT).scope_ok(),
                    "wait_timeout of a set event",
                );
                check(
                    evt.wait_deadline(Instant::now()).scope_ok(),
                    "wait_deadline(now) of a set event",
                );
            });
        }
    });
}

/// `EventTests.test_set_and_clear` (gh-57711): threads blocked in `wait`
/// when `set` runs return `true` even though `clear` follows at once;
/// 50 rounds of 5 waiters.
pub fn event_set_and_clear<E: EventUnderTest>() {
    const N: usize = 5;
    for _ in 0..50 {
        let evt = E::make();
        let entered = AtomicUsize::new(0);
        thread::scope(|s| {
            let waiters: Vec<_> = (0..N)
                .map(|_| {
                    s.spawn(|| {
                        entered.fetch_add(1, SeqCst);
                        evt.wait_timeout(LONG).scope_ok()
                    })
                })
                .collect();
            until_blocked("5 threads block in wait", &entered, N, || evt.blocked());
            evt.set().scope_ok();
            evt.clear().scope_ok();
            for w in waiters {
                check(
                    w.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                    "a waiter blocked before set returns true though clear followed",
                );
            }
        });
        check(!evt.is_set().scope_ok(), "clear at the end");
    }
}
