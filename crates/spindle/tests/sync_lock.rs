//! `Lock` and `RLock`: behaviours ported from CPython's
//! `Lib/test/lock_tests.py` (`BaseLockTests`, `LockTests`, `RLockTests`) and
//! manually rewritten in Rust. Timing assertions are one-sided.

use spindle::sync::{Lock, RLock, ReleaseError};
use std::sync::mpsc;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

/// Polls `cond` until it holds; fails after a very generous 20 s.
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

// test_acquire_release, test_with
#[test]
fn acquire_release_and_guard() {
    let lock = Lock::new();
    lock.acquire();
    assert!(lock.is_locked());
    lock.release().unwrap();
    assert!(!lock.is_locked());
    {
        let _g = lock.lock();
        assert!(lock.is_locked());
    }
    assert!(!lock.is_locked());
}

// test_try_acquire, test_try_acquire_contended
#[test]
fn try_acquire_on_a_held_lock_fails() {
    let lock = Arc::new(Lock::new());
    assert!(lock.try_acquire());
    let l2 = Arc::clone(&lock);
    let got = thread::spawn(move || (l2.try_acquire(), l2.try_lock().is_some()))
        .join()
        .unwrap();
    assert_eq!(got, (false, false));
    lock.release().unwrap();
}

// LockTests.test_reacquire: a Lock is not re-entrant; a second acquire by the
// same thread blocks until *another* thread releases it.
#[test]
fn lock_is_released_by_another_thread() {
    let lock = Arc::new(Lock::new());
    let (tx, rx) = mpsc::channel();
    let l2 = Arc::clone(&lock);
    let t = thread::spawn(move || {
        l2.acquire();
        l2.acquire(); // blocks: only another thread can free it
        tx.send(()).unwrap();
        l2.release().unwrap();
    });
    until("the thread to block on its second acquire", || {
        lock.__parked() == 1
    });
    assert!(rx.try_recv().is_err());
    lock.release().unwrap(); // release a lock this thread never acquired
    rx.recv().unwrap();
    t.join().unwrap();
    assert!(!lock.is_locked());
}

// LockTests.test_different_thread
#[test]
fn lock_acquired_in_a_thread_released_in_main() {
    let lock = Arc::new(Lock::new());
    let l2 = Arc::clone(&lock);
    thread::spawn(move || l2.acquire()).join().unwrap();
    assert!(lock.is_locked());
    lock.release().unwrap();
    assert!(!lock.is_locked());
}

// BaseLockTests.test_acquire_contended
#[test]
fn contended_acquire_waits_for_release() {
    const N: usize = 5;
    let lock = Arc::new(Lock::new());
    let (tx, rx) = mpsc::channel();
    lock.acquire();
    let ts: Vec<_> = (0..N)
        .map(|_| {
            let (l, tx) = (Arc::clone(&lock), tx.clone());
            thread::spawn(move || {
                let _g = l.lock();
                tx.send(()).unwrap();
            })
        })
        .collect();
    until("all threads to block", || lock.__parked() == N);
    assert!(rx.try_recv().is_err(), "nobody may get a held lock");
    lock.release().unwrap();
    for _ in 0..N {
        rx.recv().unwrap();
    }
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert!(!lock.is_locked());
}

// BaseLockTests.test_timeout: a timed acquire of a held lock fails, and not early.
#[test]
fn timeout_is_not_early() {
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l2 = Arc::clone(&lock);
    let (ok, waited) = thread::spawn(move || {
        let start = Instant::now();
        let ok = l2.acquire_timeout(Duration::from_millis(100));
        (ok, start.elapsed())
    })
    .join()
    .unwrap();
    assert!(!ok);
    assert!(
        waited >= Duration::from_millis(100),
        "returned after {waited:?}"
    );
    assert!(lock.lock_timeout(Duration::from_millis(5)).is_none());
    assert!(lock.lock_deadline(Instant::now()).is_none());
    // A huge timeout (TIMEOUT_MAX) on a free lock succeeds at once.
    lock.release().unwrap();
    assert!(lock.acquire_timeout(Duration::MAX));
    lock.release().unwrap();
}

// A long timed wait that is satisfied does not wait out its timeout.
#[test]
fn timed_acquire_succeeds_when_released() {
    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l2 = Arc::clone(&lock);
    let t = thread::spawn(move || l2.acquire_timeout(Duration::from_secs(60)));
    until("the waiter to block", || lock.__parked() == 1);
    lock.release().unwrap();
    assert!(t.join().unwrap());
    assert!(lock.is_locked());
}

// LockTests.test_state_after_timeout
#[test]
fn state_after_timeout() {
    let lock = Lock::new();
    lock.acquire();
    assert!(!lock.acquire_timeout(Duration::from_millis(10)));
    lock.release().unwrap();
    assert!(!lock.is_locked());
    assert!(lock.try_acquire());
}

// "release unlocked lock"
#[test]
fn releasing_an_unlocked_lock_is_an_error() {
    let lock = Lock::new();
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
    lock.acquire();
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::Unlocked));
    assert_eq!(ReleaseError::Unlocked.to_string(), "release unlocked lock");
}

// Of two racing releases of one held lock exactly one succeeds.
#[test]
fn racing_releases_one_wins() {
    const ROUNDS: usize = if cfg!(miri) { 10 } else { 2000 };
    let lock = Lock::new();
    let gate = Barrier::new(2);
    for _ in 0..ROUNDS {
        lock.acquire();
        let ok = thread::scope(|s| {
            let a = s.spawn(|| {
                gate.wait();
                lock.release().is_ok()
            });
            gate.wait();
            let mine = lock.release().is_ok();
            mine as u32 + a.join().unwrap() as u32
        });
        assert_eq!(ok, 1);
        assert!(!lock.is_locked());
    }
}

#[test]
fn ids_are_unique_and_stable() {
    let locks: Vec<Lock> = (0..100).map(|_| Lock::new()).collect();
    let mut ids: Vec<_> = locks.iter().map(Lock::id).collect();
    assert_eq!(ids, locks.iter().map(Lock::id).collect::<Vec<_>>());
    let r = RLock::new();
    ids.push(r.id());
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 101);
}

static GLOBAL: Lock = Lock::new();
static GLOBAL_R: RLock = RLock::new();

#[test]
fn locks_work_in_statics() {
    let _g = GLOBAL.lock();
    let _r = GLOBAL_R.lock();
    let _r2 = GLOBAL_R.lock();
    assert!(GLOBAL.is_locked() && GLOBAL_R.is_owned());
}

// RLockTests.test_reacquire
#[test]
fn rlock_reacquire() {
    let lock = RLock::new();
    lock.acquire();
    lock.acquire();
    assert!(lock.try_acquire());
    assert_eq!(lock.recursion_depth(), 3);
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(lock.is_locked());
    lock.release().unwrap();
    assert!(!lock.is_locked());
}

// RLockTests.test_release_unacquired
#[test]
fn rlock_release_unacquired() {
    let lock = RLock::new();
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
    lock.acquire();
    lock.acquire();
    lock.release().unwrap();
    lock.release().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
}

// RLockTests.test_different_thread: a non-owner cannot release.
#[test]
fn rlock_non_owner_release_is_an_error() {
    let lock = Arc::new(RLock::new());
    let (held_tx, held_rx) = mpsc::channel();
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let l2 = Arc::clone(&lock);
    let t = thread::spawn(move || {
        l2.acquire();
        held_tx.send(()).unwrap();
        done_rx.recv().unwrap();
        l2.release().unwrap();
    });
    held_rx.recv().unwrap();
    assert_eq!(lock.release(), Err(ReleaseError::NotOwner));
    assert!(!lock.is_owned());
    assert!(!lock.try_acquire(), "held by the other thread");
    done_tx.send(()).unwrap();
    t.join().unwrap();
    assert!(!lock.is_locked());
}

// RLockTests.test__is_owned
#[test]
fn rlock_is_owned() {
    let lock = Arc::new(RLock::new());
    assert!(!lock.is_owned());
    lock.acquire();
    assert!(lock.is_owned());
    lock.acquire();
    assert!(lock.is_owned());
    let l2 = Arc::clone(&lock);
    let other = thread::spawn(move || (l2.is_owned(), l2.try_acquire()))
        .join()
        .unwrap();
    assert_eq!(other, (false, false));
    lock.release().unwrap();
    assert!(lock.is_owned());
    lock.release().unwrap();
    assert!(!lock.is_owned());
}

#[test]
fn rlock_timeout_is_not_early() {
    let lock = Arc::new(RLock::new());
    lock.acquire();
    let l2 = Arc::clone(&lock);
    let (ok, waited) = thread::spawn(move || {
        let start = Instant::now();
        (
            l2.acquire_timeout(Duration::from_millis(50)),
            start.elapsed(),
        )
    })
    .join()
    .unwrap();
    assert!(!ok);
    assert!(waited >= Duration::from_millis(50));
    // Re-entry never waits.
    assert!(lock.acquire_deadline(Instant::now()));
    assert!(lock.lock_timeout(Duration::ZERO).is_some());
    lock.release().unwrap();
    lock.release().unwrap();
    assert!(!lock.is_locked());
}

#[test]
fn rlock_guards_nest() {
    let lock = Arc::new(RLock::new());
    let l2 = Arc::clone(&lock);
    {
        let _a = lock.lock();
        let _b = lock.try_lock().unwrap();
        let t = thread::spawn(move || l2.try_lock().is_none());
        assert!(t.join().unwrap());
    }
    assert!(!lock.is_locked());
}
