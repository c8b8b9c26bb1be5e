//! Stress tests, one per primitive: many threads, many iterations (shrunk
//! under miri). Every blocking wait is bounded by a generous timeout whose
//! expiry fails the test, so a lost wake-up shows up as a failure, not a hang.
//! Plus the `Send`/`Sync` promises.

use spindle::sync::{Barrier, BoundedSemaphore, Condition, Event, Lock, RLock, Semaphore};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::thread;
use std::time::Duration;

const THREADS: usize = if cfg!(miri) { 3 } else { 8 };
const ITERS: usize = if cfg!(miri) { 100 } else { 20_000 };
const ROUNDS: usize = if cfg!(miri) { 100 } else { 20_000 };
/// Far beyond any honest wait: expiry means a lost wake-up.
const LOST: Duration = Duration::from_secs(30);

#[test]
fn send_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    fn assert_sync<T: Sync>() {}
    assert_send_sync::<Lock>();
    assert_send_sync::<RLock>();
    assert_send_sync::<Condition>();
    assert_send_sync::<Condition<Lock>>();
    assert_send_sync::<Semaphore>();
    assert_send_sync::<BoundedSemaphore>();
    assert_send_sync::<Event>();
    assert_send_sync::<Barrier>();
    assert_send_sync::<spindle::sync::LockGuard<'static>>();
    assert_send_sync::<spindle::sync::SemaphoreGuard<'static>>();
    assert_sync::<spindle::sync::LockId>();
    assert_send_sync::<spindle::sync::ReleaseError>();
    assert_send_sync::<spindle::sync::BarrierWaitError>();
}

/// Read-then-write on an atomic loses updates unless the lock serialises it.
#[test]
fn lock_stress_counter() {
    let lock = Lock::new();
    let counter = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..THREADS {
            let (lock, counter) = (&lock, &counter);
            s.spawn(move || {
                for i in 0..ITERS {
                    // Mix every acquisition path.
                    let g = match (t + i) % 4 {
                        0 => Some(lock.lock()),
                        1 => lock.lock_timeout(LOST),
                        2 => loop {
                            if let Some(g) = lock.try_lock() {
                                break Some(g);
                            }
                            thread::yield_now();
                        },
                        _ => {
                            lock.acquire();
                            None
                        }
                    };
                    let v = counter.load(Relaxed);
                    counter.store(v + 1, Relaxed);
                    match g {
                        Some(g) => drop(g),
                        None => lock.release().unwrap(),
                    }
                }
            });
        }
    });
    assert_eq!(counter.load(Relaxed), THREADS * ITERS);
    assert!(!lock.is_locked());
}

#[test]
fn rlock_stress_reentrant_counter() {
    let lock = RLock::new();
    let counter = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..ITERS {
                    let _a = lock.lock();
                    let _b = if i % 2 == 0 { Some(lock.lock()) } else { None };
                    let v = counter.load(Relaxed);
                    counter.store(v + 1, Relaxed);
                }
            });
        }
    });
    assert_eq!(counter.load(Relaxed), THREADS * ITERS);
    assert!(!lock.is_locked());
}

/// Bounded buffer, several producers and consumers, notify(1) on two
/// conditions sharing one Lock (the shape of queue.Queue).
#[test]
fn condition_stress_bounded_buffer() {
    const CAP: usize = 4;
    let mutex = Arc::new(Lock::new());
    let not_empty = Condition::with_lock(Arc::clone(&mutex));
    let not_full = Condition::with_lock(Arc::clone(&mutex));
    let len = AtomicUsize::new(0);
    let consumed = AtomicUsize::new(0);
    let per = ITERS / 4;
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                for _ in 0..per * 2 {
                    let _g = not_full.lock();
                    while len.load(Relaxed) == CAP {
                        assert!(
                            not_full.wait_timeout(LOST).unwrap(),
                            "lost wake-up (producer)"
                        );
                    }
                    len.store(len.load(Relaxed) + 1, Relaxed);
                    not_empty.notify(1).unwrap();
                }
            });
        }
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..per {
                    let _g = not_empty.lock();
                    while len.load(Relaxed) == 0 {
                        assert!(
                            not_empty.wait_timeout(LOST).unwrap(),
                            "lost wake-up (consumer)"
                        );
                    }
                    len.store(len.load(Relaxed) - 1, Relaxed);
                    consumed.fetch_add(1, Relaxed);
                    not_full.notify(1).unwrap();
                }
            });
        }
    });
    assert_eq!(consumed.load(Relaxed), per * 4);
    assert_eq!(len.load(Relaxed), 0);
}

/// Ping-pong on one Condition over its default RLock.
#[test]
fn condition_stress_pingpong() {
    let cond = Condition::new();
    let turn = AtomicUsize::new(0);
    thread::scope(|s| {
        for me in 0..2 {
            let (cond, turn) = (&cond, &turn);
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    let _g = cond.lock();
                    while turn.load(Relaxed) != me {
                        assert!(cond.wait_timeout(LOST).unwrap(), "lost wake-up");
                    }
                    turn.store(1 - me, Relaxed);
                    cond.notify_one().unwrap();
                }
            });
        }
    });
}

/// Semaphore as a limiter (never more than 3 inside) and as a hand-off.
#[test]
fn semaphore_stress() {
    let sem = Semaphore::new(3);
    let inside = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for i in 0..ITERS / 4 {
                    let _p = if i % 2 == 0 {
                        sem.permit()
                    } else {
                        sem.permit_timeout(LOST).expect("lost wake-up")
                    };
                    let n = inside.fetch_add(1, SeqCst);
                    assert!(n < 3, "{} threads inside", n + 1);
                    inside.fetch_sub(1, SeqCst);
                }
            });
        }
    });
    assert_eq!(sem.value(), 3);
    // Hand-off: two zero-permit semaphores, strictly alternating.
    let (ping, pong) = (BoundedSemaphore::new(1), BoundedSemaphore::new(1));
    ping.acquire();
    pong.acquire();
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..ROUNDS {
                assert!(ping.acquire_timeout(LOST), "lost wake-up");
                pong.release().unwrap();
            }
        });
        for _ in 0..ROUNDS {
            ping.release().unwrap();
            assert!(pong.acquire_timeout(LOST), "lost wake-up");
        }
    });
}

/// Event ping-pong with wait + clear, and many waiters on one set.
#[test]
fn event_stress() {
    let (a, b) = (Event::new(), Event::new());
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..ROUNDS {
                assert!(a.wait_timeout(LOST), "lost wake-up");
                a.clear();
                b.set();
            }
        });
        for _ in 0..ROUNDS {
            a.set();
            assert!(b.wait_timeout(LOST), "lost wake-up");
            b.clear();
        }
    });
    // Many waiters racing one set per round.
    let rounds = ROUNDS / 100;
    let go = Event::new();
    let done = Barrier::new(THREADS + 1).unwrap();
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                loop {
                    assert!(go.wait_timeout(LOST), "lost wake-up");
                    done.wait_timeout(LOST).unwrap();
                    if stop.load(SeqCst) {
                        break;
                    }
                    done.wait_timeout(LOST).unwrap();
                }
            });
        }
        for r in 0..rounds {
            go.set();
            if r + 1 == rounds {
                stop.store(true, SeqCst);
            }
            done.wait_timeout(LOST).unwrap(); // everyone saw the set
            go.clear();
            if r + 1 < rounds {
                done.wait_timeout(LOST).unwrap(); // everyone may wait again
            }
        }
    });
}

/// Barrier: many rounds, indices distinct, action once per round.
#[test]
fn barrier_stress() {
    let rounds = ROUNDS / 10;
    let actions = Arc::new(AtomicUsize::new(0));
    let a2 = Arc::clone(&actions);
    let barrier = Barrier::with_action(THREADS, move || {
        a2.fetch_add(1, Relaxed);
    })
    .unwrap();
    let index_sum = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..THREADS {
            s.spawn(|| {
                for _ in 0..rounds {
                    let i = barrier.wait_timeout(LOST).expect("lost wake-up");
                    index_sum.fetch_add(i, Relaxed);
                }
            });
        }
    });
    assert_eq!(actions.load(Relaxed), rounds);
    assert_eq!(
        index_sum.load(Relaxed),
        rounds * THREADS * (THREADS - 1) / 2
    );
}
