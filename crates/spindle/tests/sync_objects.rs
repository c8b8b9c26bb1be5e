//! `Semaphore`, `BoundedSemaphore`, `Event` and `Barrier`: behaviours ported
//! from CPython's `Lib/test/lock_tests.py` (`SemaphoreTests`,
//! `BoundedSemaphoreTests`, `EventTests`, `BarrierTests`) and manually
//! rewritten in Rust. Timing assertions are one-sided; "thread X is blocked"
//! is observed, never guessed with a sleep.

use spindle::sync::{
    BarrierWaitError, BoundedSemaphore, BrokenBarrierError, Event, OverReleaseError, Semaphore,
};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

type SBarrier = spindle::sync::Barrier;

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

// SemaphoreTests.test_acquire, test_default_value, test_with
#[test]
fn semaphore_counts() {
    let sem = Semaphore::default();
    assert_eq!(sem.value(), 1);
    sem.acquire();
    assert!(!sem.try_acquire());
    sem.release();
    {
        let _p = sem.permit();
        assert!(sem.try_permit().is_none());
    }
    assert_eq!(sem.value(), 1);
    sem.release_n(3);
    assert_eq!(sem.value(), 4);
}

// SemaphoreTests.test_acquire_contended / test_multirelease: release(n) lets
// exactly n blocked threads through.
#[test]
fn semaphore_release_n_lets_exactly_n_through() {
    const N: usize = 10;
    let sem = Arc::new(Semaphore::new(7));
    for _ in 0..7 {
        sem.acquire();
    }
    let passed = Arc::new(AtomicUsize::new(0));
    let ts: Vec<_> = (0..N)
        .map(|_| {
            let (s, p) = (Arc::clone(&sem), Arc::clone(&passed));
            thread::spawn(move || {
                s.acquire();
                p.fetch_add(1, SeqCst);
            })
        })
        .collect();
    until("10 blocked", || sem.__parked() == N);
    sem.release_n(3);
    until("3 through", || passed.load(SeqCst) == 3);
    until("7 still blocked", || sem.__parked() == 7);
    assert_eq!(passed.load(SeqCst), 3);
    assert_eq!(sem.value(), 0);
    sem.release_n(7);
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(passed.load(SeqCst), N);
    assert_eq!(sem.value(), 0);
}

// SemaphoreTests.test_try_acquire_contended, test_acquire_timeout
#[test]
fn semaphore_timeouts_are_not_early() {
    let sem = Arc::new(Semaphore::new(2));
    assert!(sem.try_acquire() && sem.try_acquire());
    let s2 = Arc::clone(&sem);
    assert!(!thread::spawn(move || s2.try_acquire()).join().unwrap());
    let start = Instant::now();
    assert!(!sem.acquire_timeout(Duration::from_millis(20)));
    assert!(start.elapsed() >= Duration::from_millis(20));
    assert!(sem.permit_deadline(Instant::now()).is_none());
    assert!(sem.permit_timeout(Duration::ZERO).is_none());
    sem.release();
    assert!(sem.acquire_timeout(Duration::from_secs(60)));
}

// BoundedSemaphoreTests.test_release_unacquired
#[test]
fn bounded_semaphore_over_release_is_an_error() {
    let sem = BoundedSemaphore::new(2);
    assert_eq!(sem.release(), Err(OverReleaseError));
    sem.acquire();
    sem.acquire();
    assert_eq!(sem.release_n(3), Err(OverReleaseError));
    assert_eq!(sem.value(), 0, "a refused release changes nothing");
    assert_eq!(sem.release_n(2), Ok(()));
    assert_eq!(sem.release(), Err(OverReleaseError));
    {
        let _p = sem.permit();
        assert_eq!(sem.value(), 1);
    }
    assert_eq!(sem.value(), 2);
}

// EventTests.test_is_set
#[test]
fn event_flag() {
    let evt = Event::new();
    assert!(!evt.is_set());
    evt.set();
    assert!(evt.is_set());
    evt.set();
    assert!(evt.is_set());
    evt.clear();
    assert!(!evt.is_set());
    evt.clear();
    assert!(!evt.try_wait());
}

// EventTests.test_notify: set wakes every waiter.
#[test]
fn event_set_wakes_all() {
    const N: usize = 5;
    let evt = Arc::new(Event::new());
    let ts: Vec<_> = (0..N)
        .map(|_| {
            let e = Arc::clone(&evt);
            thread::spawn(move || {
                e.wait();
                e.wait_timeout(Duration::from_secs(60))
            })
        })
        .collect();
    until("5 waiters", || evt.__parked() == N);
    evt.set();
    assert!(ts.into_iter().all(|t| t.join().unwrap()));
}

// EventTests.test_timeout
#[test]
fn event_timeout_is_not_early() {
    let evt = Event::new();
    assert!(!evt.wait_timeout(Duration::ZERO));
    let start = Instant::now();
    assert!(!evt.wait_timeout(Duration::from_millis(50)));
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert!(!evt.wait_deadline(Instant::now()));
    evt.set();
    assert!(evt.wait_timeout(Duration::ZERO));
}

// EventTests.test_set_and_clear (bpo-13502): threads blocked before set()
// return true even though clear() follows immediately.
#[test]
fn event_set_then_clear_loses_no_wake_up() {
    const N: usize = 5;
    let rounds = if cfg!(miri) { 2 } else { 50 };
    for _ in 0..rounds {
        let evt = Arc::new(Event::new());
        let ts: Vec<_> = (0..N)
            .map(|_| {
                let e = Arc::clone(&evt);
                thread::spawn(move || e.wait_timeout(Duration::from_secs(60)))
            })
            .collect();
        until("5 blocked waiters", || evt.__parked() == N);
        evt.set();
        evt.clear();
        assert!(ts.into_iter().all(|t| t.join().unwrap()));
        assert!(!evt.is_set());
    }
}

// BarrierTests.test_barrier + test_wait_return: several passes, each thread
// gets a distinct index, exactly one gets parties - 1.
#[test]
fn barrier_indices_per_pass() {
    const N: usize = 5;
    const PASSES: usize = 3;
    let barrier = Arc::new(SBarrier::new(N).unwrap());
    let ts: Vec<_> = (0..N)
        .map(|_| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || (0..PASSES).map(|_| b.wait().unwrap()).collect::<Vec<_>>())
        })
        .collect();
    let all: Vec<Vec<usize>> = ts.into_iter().map(|t| t.join().unwrap()).collect();
    for pass in 0..PASSES {
        let mut idx: Vec<usize> = all.iter().map(|v| v[pass]).collect();
        idx.sort();
        assert_eq!(idx, (0..N).collect::<Vec<_>>());
    }
    assert_eq!(barrier.n_waiting(), 0);
    assert_eq!(barrier.parties(), N);
    assert!(!barrier.is_broken());
}

// BarrierTests.test_action: run once per pass, by the last arriving thread
// (index parties - 1), before anyone is released.
#[test]
fn barrier_action_runs_once_per_pass() {
    const N: usize = 4;
    let runs = Arc::new(AtomicUsize::new(0));
    let r2 = Arc::clone(&runs);
    let barrier = Arc::new(
        SBarrier::with_action(N, move || {
            r2.fetch_add(1, SeqCst);
        })
        .unwrap(),
    );
    let ts: Vec<_> = (0..N)
        .map(|_| {
            let (b, r) = (Arc::clone(&barrier), Arc::clone(&runs));
            thread::spawn(move || {
                for pass in 1..=2 {
                    b.wait().unwrap();
                    assert_eq!(r.load(SeqCst), 2 * pass - 1, "action ran before release");
                    b.wait().unwrap(); // keep passes apart
                }
            })
        })
        .collect();
    ts.into_iter().for_each(|t| t.join().unwrap());
    assert_eq!(runs.load(SeqCst), 4);
}

// BarrierTests.test_abort: waiting threads and later waits see it broken
// until reset (test_abort_and_reset).
#[test]
fn barrier_abort_breaks_until_reset() {
    const N: usize = 3;
    let barrier = Arc::new(SBarrier::new(N).unwrap());
    let ts: Vec<_> = (0..N - 1)
        .map(|_| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || b.wait())
        })
        .collect();
    until("2 waiting", || barrier.n_waiting() == N - 1);
    barrier.abort();
    for t in ts {
        assert_eq!(t.join().unwrap(), Err(BrokenBarrierError));
    }
    assert!(barrier.is_broken());
    assert_eq!(barrier.wait(), Err(BrokenBarrierError));
    barrier.reset();
    assert!(!barrier.is_broken());
    let ts: Vec<_> = (0..N)
        .map(|_| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || b.wait())
        })
        .collect();
    assert!(ts.into_iter().all(|t| t.join().unwrap().is_ok()));
}

// BarrierTests.test_reset: reset while threads wait breaks their wait, then
// the barrier is usable again.
#[test]
fn barrier_reset_while_waiting() {
    const N: usize = 3;
    let barrier = Arc::new(SBarrier::new(N).unwrap());
    let ts: Vec<_> = (0..N - 1)
        .map(|_| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || b.wait())
        })
        .collect();
    until("2 waiting", || barrier.n_waiting() == N - 1);
    barrier.reset();
    for t in ts {
        assert_eq!(t.join().unwrap(), Err(BrokenBarrierError));
    }
    assert!(!barrier.is_broken(), "reset leaves it usable");
    let ts: Vec<_> = (0..N)
        .map(|_| {
            let b = Arc::clone(&barrier);
            thread::spawn(move || b.wait())
        })
        .collect();
    assert!(ts.into_iter().all(|t| t.join().unwrap().is_ok()));
}

// BarrierTests.test_timeout: a timed-out wait breaks the barrier for all.
#[test]
fn barrier_timeout_breaks_it() {
    let barrier = Arc::new(SBarrier::new(3).unwrap());
    let b2 = Arc::clone(&barrier);
    let other = thread::spawn(move || b2.wait());
    until("1 waiting", || barrier.n_waiting() == 1);
    let start = Instant::now();
    assert_eq!(
        barrier.wait_timeout(Duration::from_millis(50)),
        Err(BarrierWaitError::Timeout)
    );
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert_eq!(other.join().unwrap(), Err(BrokenBarrierError));
    assert!(barrier.is_broken());
    assert_eq!(
        barrier.wait_deadline(Instant::now()),
        Err(BarrierWaitError::Broken)
    );
}

// A panicking action breaks the barrier; the panic goes on in its thread.
#[test]
fn barrier_action_panic_breaks_it() {
    let barrier = Arc::new(SBarrier::with_action(2, || panic!("action failed")).unwrap());
    let b2 = Arc::clone(&barrier);
    let other = thread::spawn(move || b2.wait());
    until("1 waiting", || barrier.n_waiting() == 1);
    let b3 = Arc::clone(&barrier);
    let last = thread::spawn(move || b3.wait());
    assert!(
        last.join().is_err(),
        "the action's panic resumes in the last thread"
    );
    assert_eq!(other.join().unwrap(), Err(BrokenBarrierError));
    assert!(barrier.is_broken());
}

// The action may call back into the barrier (CPython's Condition uses an RLock).
#[test]
fn barrier_action_may_use_the_barrier() {
    let (tx, rx) = mpsc::channel();
    let slot: Arc<std::sync::OnceLock<Arc<SBarrier>>> = Arc::new(std::sync::OnceLock::new());
    let s2 = Arc::clone(&slot);
    let barrier = Arc::new(
        SBarrier::with_action(1, move || {
            let b = s2.get().unwrap();
            tx.send((b.n_waiting(), b.is_broken())).unwrap();
        })
        .unwrap(),
    );
    slot.set(Arc::clone(&barrier)).unwrap();
    assert_eq!(barrier.wait(), Ok(0));
    assert_eq!(rx.recv().unwrap(), (0, false));
}

// BarrierTests.test_single_thread
#[test]
fn barrier_of_one() {
    let b = SBarrier::new(1).unwrap();
    assert_eq!(b.wait(), Ok(0));
    assert_eq!(b.wait(), Ok(0));
}
