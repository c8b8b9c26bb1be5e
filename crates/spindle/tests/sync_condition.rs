//! `Condition`: behaviours ported from CPython's `Lib/test/lock_tests.py`
//! (`ConditionTests`) and manually rewritten in Rust. Timing assertions are
//! one-sided; "thread X is blocked" is observed, never guessed with a sleep.

use spindle::sync::{Condition, Lock, NotOwnedError, RLock};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

fn until(what: &str, cond: impl Fn() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        thread::yield_now();
    }
}

// test_acquire: the default lock is an RLock.
#[test]
fn acquire_is_reentrant_by_default() {
    let cond = Condition::new();
    cond.acquire();
    cond.acquire();
    cond.release().unwrap();
    let _g = cond.lock();
    assert!(cond.get_lock().is_owned());
    assert_eq!(cond.get_lock().recursion_depth(), 2);
    cond.release().unwrap();
}

// test_unacquired_wait, test_unacquired_notify
#[test]
fn wait_and_notify_need_the_lock() {
    let cond = Condition::new();
    assert_eq!(
        cond.wait_timeout(Duration::from_millis(1)),
        Err(NotOwnedError)
    );
    assert_eq!(
        cond.wait_for_timeout(|| true, Duration::ZERO),
        Err(NotOwnedError)
    );
    assert_eq!(cond.notify(1), Err(NotOwnedError));
    assert_eq!(cond.notify_all(), Err(NotOwnedError));
    // Held by another thread is not held by us (RLock).
    let cond = Arc::new(Condition::new());
    let (tx, rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel();
    let c2 = Arc::clone(&cond);
    let t = thread::spawn(move || {
        let _g = c2.lock();
        held_tx.send(()).unwrap();
        rx.recv().unwrap();
    });
    held_rx.recv().unwrap();
    assert_eq!(cond.notify_one(), Err(NotOwnedError));
    tx.send(()).unwrap();
    t.join().unwrap();
}

// test_notify / _check_notify: notify(n) wakes exactly n, oldest first.
fn check_notify<L: spindle::sync::ConditionLock<Scope = spindle::sync::ThreadScope>>(
    cond: Arc<Condition<L>>,
) {
    const N: usize = 5;
    let woken = Arc::new(AtomicUsize::new(0));
    let spawn_waiters = |n: usize| -> Vec<thread::JoinHandle<()>> {
        (0..n)
            .map(|_| {
                let (c, w) = (Arc::clone(&cond), Arc::clone(&woken));
                thread::spawn(move || {
                    let _g = c.lock();
                    c.wait().unwrap();
                    w.fetch_add(1, SeqCst);
                })
            })
            .collect()
    };
    let mut ts = spawn_waiters(N);
    until("5 waiters", || cond.__parked() == N);
    {
        let _g = cond.lock();
        assert_eq!(cond.notify(3), Ok(3));
    }
    until("3 woken", || woken.load(SeqCst) == 3);
    assert_eq!(cond.__parked(), 2, "exactly 3 were woken");
    {
        let _g = cond.lock();
        assert_eq!(cond.notify(5), Ok(2));
        assert_eq!(cond.notify(5), Ok(0));
    }
    until("5 woken", || woken.load(SeqCst) == 5);
    // A second batch, woken by notify_all.
    ts.extend(spawn_waiters(N));
    until("5 more waiters", || cond.__parked() == N);
    {
        let _g = cond.lock();
        assert_eq!(cond.notify_all(), Ok(N));
    }
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(woken.load(SeqCst), 2 * N);
}

#[test]
fn notify_n_wakes_exactly_n_rlock() {
    check_notify(Arc::new(Condition::new()));
}

#[test]
fn notify_n_wakes_exactly_n_lock() {
    check_notify(Arc::new(Condition::with_lock(Arc::new(Lock::new()))));
}

// test_timeout: a wait nobody notifies returns false, not early.
#[test]
fn wait_timeout_returns_false_not_early() {
    let cond = Condition::new();
    let _g = cond.lock();
    let start = Instant::now();
    assert_eq!(cond.wait_timeout(Duration::from_millis(50)), Ok(false));
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(cond.wait_deadline(Instant::now()), Ok(false));
    // The lock is held again after the timeout.
    assert!(cond.get_lock().is_owned());
}

// A very long wait that is notified returns true.
#[test]
fn long_wait_notified_returns_true() {
    let cond = Arc::new(Condition::new());
    let c2 = Arc::clone(&cond);
    let t = thread::spawn(move || {
        let _g = c2.lock();
        c2.wait_timeout(Duration::from_secs(60)).unwrap()
    });
    until("the waiter", || cond.__parked() == 1);
    cond.acquire();
    assert_eq!(cond.notify_one(), Ok(true));
    cond.release().unwrap();
    assert!(t.join().unwrap());
}

// test_waitfor
#[test]
fn wait_for_sees_the_predicate() {
    let cond = Arc::new(Condition::new());
    let state = Arc::new(AtomicUsize::new(0));
    let (c2, s2) = (Arc::clone(&cond), Arc::clone(&state));
    let t = thread::spawn(move || {
        let _g = c2.lock();
        c2.wait_for(|| s2.load(SeqCst) == 4).unwrap();
        s2.load(SeqCst)
    });
    for _ in 0..4 {
        let _g = cond.lock();
        state.fetch_add(1, SeqCst);
        cond.notify_all().unwrap();
    }
    assert_eq!(t.join().unwrap(), 4);
}

// test_waitfor_timeout: returns the predicate's last value (false), not early.
#[test]
fn wait_for_timeout_returns_predicate_value() {
    let cond = Arc::new(Condition::new());
    let state = Arc::new(AtomicUsize::new(0));
    let (c2, s2) = (Arc::clone(&cond), Arc::clone(&state));
    let t = thread::spawn(move || {
        let _g = c2.lock();
        let start = Instant::now();
        let r = c2
            .wait_for_timeout(|| s2.load(SeqCst) == 4, Duration::from_millis(100))
            .unwrap();
        (r, start.elapsed())
    });
    // Notifications that do not make the predicate true do not end the wait.
    for _ in 0..3 {
        let _g = cond.lock();
        state.fetch_add(1, SeqCst);
        cond.notify_all().unwrap();
    }
    let (r, waited) = t.join().unwrap();
    assert!(!r);
    assert!(waited >= Duration::from_millis(100), "{waited:?}");
    let _g = cond.lock();
    assert_eq!(cond.wait_for_timeout(|| true, Duration::ZERO), Ok(true));
}

// Waiting on an RLock held at depth 3 frees it fully (another thread gets it)
// and restores depth 3 (Python's _release_save / _acquire_restore).
#[test]
fn wait_restores_rlock_depth() {
    let lock = Arc::new(RLock::new());
    let cond = Arc::new(Condition::with_lock(Arc::clone(&lock)));
    let (c2, l2) = (Arc::clone(&cond), Arc::clone(&lock));
    let t = thread::spawn(move || {
        let _a = c2.lock();
        let _b = l2.lock();
        let _c = l2.lock();
        assert_eq!(l2.recursion_depth(), 3);
        c2.wait().unwrap();
        l2.recursion_depth()
    });
    until("the waiter", || cond.__parked() == 1);
    {
        let _g = cond.lock(); // possible only if the waiter freed all 3 levels
        assert_eq!(lock.recursion_depth(), 1);
        cond.notify_one().unwrap();
    }
    assert_eq!(t.join().unwrap(), 3);
    assert!(!lock.is_locked());
}

// Several conditions share one Lock (as queue.Queue does).
#[test]
fn conditions_share_a_lock() {
    let mutex = Arc::new(Lock::new());
    let not_empty = Arc::new(Condition::with_lock(Arc::clone(&mutex)));
    let not_full = Condition::with_lock(Arc::clone(&mutex));
    let items = Arc::new(AtomicUsize::new(0));
    let (ne, it) = (Arc::clone(&not_empty), Arc::clone(&items));
    let t = thread::spawn(move || {
        let _g = ne.lock();
        ne.wait_for(|| it.load(SeqCst) > 0).unwrap();
        it.fetch_sub(1, SeqCst);
    });
    until("the consumer", || not_empty.__parked() == 1);
    {
        let _g = not_full.lock();
        items.fetch_add(1, SeqCst);
        assert_eq!(not_full.notify_all(), Ok(0), "nobody waits on not_full");
        assert_eq!(not_empty.notify_one(), Ok(true));
    }
    t.join().unwrap();
    assert_eq!(items.load(SeqCst), 0);
    assert!(!mutex.is_locked());
}
