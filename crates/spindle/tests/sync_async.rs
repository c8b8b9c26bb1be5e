//! The async faces of the synchronisation objects (`wait_async`,
//! `acquire_async`, ...), on both scopes: the thread objects of
//! `spindle::sync` and the process objects of `spindle::ipc::sync` (used
//! within one process here; their waits go through the futex-watching hook).
//! Futures are driven by the tests' tiny `block_on` and by hand with
//! `poll_once`, so no runtime is involved.

mod common;

use std::sync::Arc;
use std::task::Poll;
use std::thread;

use common::{block_on, counting, poll_once, until};

/// The same tests for each scope: `$new_event` etc. build the objects.
macro_rules! scope_tests {
    ($scope:ident, $event:expr, $sem:expr, $bsem:expr, $barrier:ty, $lock:expr, $cond:expr) => {
        mod $scope {
            use super::*;

            // A task awaiting an event is resolved by a `set` from a thread.
            #[test]
            fn event_wait_async_resolves_on_set() {
                let ev = Arc::new($event);
                let e2 = Arc::clone(&ev);
                let t = thread::spawn(move || {
                    until("the task to wait", || e2.__parked() == 1);
                    e2.set();
                });
                block_on(ev.wait_async());
                assert!(ev.is_set());
                t.join().unwrap();
                // Set already: ready at the first poll.
                let (_, w) = counting();
                assert_eq!(
                    poll_once(&mut Box::pin(ev.wait_async()), &w),
                    Poll::Ready(())
                );
            }

            // A set then clear between polls still resolves a waiting future
            // (as for a blocked thread: the wake-up cannot be lost).
            #[test]
            fn event_wait_async_sees_set_then_clear() {
                let ev = $event;
                let (count, w) = counting();
                let mut f = Box::pin(ev.wait_async());
                assert_eq!(poll_once(&mut f, &w), Poll::Pending);
                ev.set();
                ev.clear();
                until("the waker to be woken", || {
                    count.0.load(std::sync::atomic::Ordering::SeqCst) == 1
                });
                assert_eq!(poll_once(&mut f, &w), Poll::Ready(()));
                assert_eq!(ev.__parked(), 0);
            }

            // Issue 18 §1: a dropped wait loses nothing. It withdraws its
            // count and registration; the other waiters (a task and a
            // thread) are still woken by the next `set`.
            #[test]
            fn event_wait_async_cancel_safe() {
                let ev = Arc::new($event);
                let (count_a, wa) = counting();
                let (count_b, wb) = counting();
                let mut a = Box::pin(ev.wait_async());
                let mut b = Box::pin(ev.wait_async());
                assert_eq!(poll_once(&mut a, &wa), Poll::Pending);
                assert_eq!(poll_once(&mut b, &wb), Poll::Pending);
                assert_eq!(ev.__parked(), 2);
                drop(b);
                assert_eq!(ev.__parked(), 1);
                let e2 = Arc::clone(&ev);
                let blocked = thread::spawn(move || e2.wait());
                until("the thread to block", || ev.__parked() == 2);
                ev.set();
                blocked.join().unwrap();
                until("task a to be woken", || {
                    count_a.0.load(std::sync::atomic::Ordering::SeqCst) == 1
                });
                assert_eq!(poll_once(&mut a, &wa), Poll::Ready(()));
                assert_eq!(count_b.0.load(std::sync::atomic::Ordering::SeqCst), 0);
                drop(a);
                assert_eq!(ev.__parked(), 0);
            }

            // A task awaiting a permit is resolved by a release from a thread.
            #[test]
            fn semaphore_acquire_async_resolves_on_release() {
                let sem = Arc::new($sem);
                let s2 = Arc::clone(&sem);
                let t = thread::spawn(move || {
                    until("the task to wait", || s2.__parked() == 1);
                    s2.release();
                });
                block_on(sem.acquire_async());
                t.join().unwrap();
                assert_eq!(sem.value(), 0);
                assert_eq!(sem.__parked(), 0);
                // A free permit: ready at the first poll.
                sem.release();
                let (_, w) = counting();
                assert_eq!(
                    poll_once(&mut Box::pin(sem.acquire_async()), &w),
                    Poll::Ready(())
                );
                assert_eq!(sem.value(), 0);
            }

            // `async with bsem:` gives the permit back on drop, and only one.
            #[test]
            fn bounded_semaphore_permit_async_gives_back_one() {
                let sem = $bsem;
                let permit = block_on(sem.permit_async());
                assert_eq!(sem.value(), 0);
                let (_, w) = counting();
                let mut second = Box::pin(sem.permit_async());
                assert!(poll_once(&mut second, &w).is_pending());
                drop(second); // holds nothing
                drop(permit);
                assert_eq!(sem.value(), 1);
                assert!(sem.release().is_err()); // at the bound: nothing extra
            }

            // Issue 18 §1, cancel safety: a future dropped after a release
            // woke it passes the wake-up on, so the other waiter gets the
            // permit; one dropped before any wake holds nothing.
            #[test]
            fn semaphore_acquire_async_cancel_passes_wake_on() {
                use std::sync::atomic::Ordering::SeqCst;
                let sem = $sem;
                let (count_a, wa) = counting();
                let (count_b, wb) = counting();
                let mut a = Box::pin(sem.acquire_async());
                let mut b = Box::pin(sem.acquire_async());
                assert!(poll_once(&mut a, &wa).is_pending());
                assert!(poll_once(&mut b, &wb).is_pending());
                assert_eq!(sem.__parked(), 2);
                sem.release();
                until("a task to be woken", || {
                    count_a.0.load(SeqCst) + count_b.0.load(SeqCst) >= 1
                });
                // Drop the woken one without polling it again.
                let (mut other, count_other, w_other) = if count_a.0.load(SeqCst) >= 1 {
                    drop(a);
                    (b, count_b, wb)
                } else {
                    drop(b);
                    (a, count_a, wa)
                };
                until("the wake-up to be passed on", || {
                    count_other.0.load(SeqCst) >= 1
                });
                assert_eq!(poll_once(&mut other, &w_other), Poll::Ready(()));
                assert_eq!(sem.value(), 0);
                drop(other);
                assert_eq!(sem.__parked(), 0);
            }

            // A task and a blocked thread meet at one barrier; indices 0, 1.
            #[test]
            fn barrier_wait_async_meets_a_thread() {
                let barrier = Arc::new(<$barrier>::new(2).unwrap());
                for _ in 0..2 {
                    let b2 = Arc::clone(&barrier);
                    let t = thread::spawn(move || b2.wait().unwrap());
                    let mine = block_on(barrier.wait_async()).unwrap();
                    let theirs = t.join().unwrap();
                    assert_eq!(mine + theirs, 1);
                }
                // The task arrives first, the thread completes the round.
                let (count, w) = counting();
                let mut f = Box::pin(barrier.wait_async());
                assert!(poll_once(&mut f, &w).is_pending());
                assert_eq!(barrier.n_waiting(), 1);
                let b2 = Arc::clone(&barrier);
                assert_eq!(thread::spawn(move || b2.wait().unwrap()).join().unwrap(), 1);
                until("the task to be woken", || {
                    count.0.load(std::sync::atomic::Ordering::SeqCst) >= 1
                });
                assert_eq!(poll_once(&mut f, &w), Poll::Ready(Ok(0)));
            }

            // Issue 18 §1, cancel safety as asyncio's: a dropped wait leaves
            // the round (nothing breaks); the others still meet.
            #[test]
            fn barrier_wait_async_cancel_withdraws_arrival() {
                let barrier = Arc::new(<$barrier>::new(2).unwrap());
                let (_, w) = counting();
                let mut f = Box::pin(barrier.wait_async());
                assert!(poll_once(&mut f, &w).is_pending());
                assert_eq!(barrier.n_waiting(), 1);
                drop(f);
                assert_eq!(barrier.n_waiting(), 0);
                assert!(!barrier.is_broken());
                // Without the withdrawal this thread would pass alone.
                let b2 = Arc::clone(&barrier);
                let t = thread::spawn(move || b2.wait().unwrap());
                until("the thread to arrive", || barrier.n_waiting() == 1);
                assert_eq!(block_on(barrier.wait_async()), Ok(1));
                assert_eq!(t.join().unwrap(), 0);
            }

            // An abort wakes a waiting task with `BrokenBarrierError`.
            #[test]
            fn barrier_wait_async_broken_by_abort() {
                let barrier = <$barrier>::new(2).unwrap();
                let (count, w) = counting();
                let mut f = Box::pin(barrier.wait_async());
                assert!(poll_once(&mut f, &w).is_pending());
                barrier.abort();
                until("the task to be woken", || {
                    count.0.load(std::sync::atomic::Ordering::SeqCst) >= 1
                });
                assert_eq!(
                    poll_once(&mut f, &w),
                    Poll::Ready(Err(spindle::sync::BrokenBarrierError))
                );
                assert_eq!(
                    block_on(barrier.wait_async()),
                    Err(spindle::sync::BrokenBarrierError)
                );
            }

            // A task waiting for a lock is woken by a release from another
            // thread, and its guard releases it.
            #[test]
            fn lock_async_resolves_on_release() {
                use std::sync::atomic::Ordering::SeqCst;
                let lock = Arc::new($lock);
                lock.acquire();
                let (count, w) = counting();
                let mut f = Box::pin(lock.lock_async());
                assert!(poll_once(&mut f, &w).is_pending());
                let l2 = Arc::clone(&lock);
                thread::spawn(move || l2.release().unwrap()).join().unwrap();
                until("the task to be woken", || count.0.load(SeqCst) >= 1);
                let Poll::Ready(guard) = poll_once(&mut f, &w) else {
                    panic!("not taken after the release");
                };
                assert!(lock.is_locked());
                drop(guard);
                assert!(!lock.is_locked());
                // Free: taken at the first poll.
                drop(block_on(lock.lock_async()));
                assert!(!lock.is_locked());
            }

            // Issue 18 §1, cancel safety: a future dropped after an unlock
            // woke it passes the wake-up on; the other waiter gets the lock.
            // One dropped before holds nothing.
            #[test]
            fn lock_async_cancel_passes_wake_on() {
                use std::sync::atomic::Ordering::SeqCst;
                let lock = $lock;
                lock.acquire();
                let (count_a, wa) = counting();
                let (count_b, wb) = counting();
                let mut a = Box::pin(lock.lock_async());
                let mut b = Box::pin(lock.lock_async());
                assert!(poll_once(&mut a, &wa).is_pending());
                assert!(poll_once(&mut b, &wb).is_pending());
                lock.release().unwrap();
                until("a task to be woken", || {
                    count_a.0.load(SeqCst) + count_b.0.load(SeqCst) >= 1
                });
                let (mut other, count_other, w_other) = if count_a.0.load(SeqCst) >= 1 {
                    drop(a);
                    (b, count_b, wb)
                } else {
                    drop(b);
                    (a, count_a, wa)
                };
                assert!(!lock.is_locked());
                until("the other task to be woken", || {
                    count_other.0.load(SeqCst) >= 1
                });
                let Poll::Ready(guard) = poll_once(&mut other, &w_other) else {
                    panic!("not taken after the passed-on wake-up");
                };
                assert!(lock.is_locked());
                drop(guard);
                assert!(!lock.is_locked());
            }

            // Tasks (on their own threads, through `block_on`) and blocking
            // threads exclude each other; no wake-up is lost (a lost one
            // would hang a task).
            #[test]
            fn lock_async_excludes_threads_and_tasks() {
                let lock = Arc::new($lock);
                let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let mut ts = Vec::new();
                for i in 0..4 {
                    let (lock, inside, total) =
                        (Arc::clone(&lock), Arc::clone(&inside), Arc::clone(&total));
                    ts.push(thread::spawn(move || {
                        use std::sync::atomic::Ordering::SeqCst;
                        for _ in 0..500 {
                            let g = if i % 2 == 0 {
                                block_on(lock.lock_async())
                            } else {
                                lock.lock()
                            };
                            assert_eq!(inside.fetch_add(1, SeqCst), 0);
                            total.fetch_add(1, SeqCst);
                            std::hint::spin_loop();
                            inside.fetch_sub(1, SeqCst);
                            drop(g);
                        }
                    }));
                }
                for t in ts {
                    t.join().unwrap();
                }
                assert_eq!(total.load(std::sync::atomic::Ordering::SeqCst), 2000);
                assert!(!lock.is_locked());
            }

            // Issue 18 §1: `notify(n)` wakes exactly n async waiters (each
            // gets the guard back with the lock held), the rest wait on.
            #[test]
            fn condition_wait_async_notify_n() {
                use std::sync::atomic::Ordering::SeqCst;
                let cond = $cond;
                let mut waiters = Vec::new();
                for _ in 0..3 {
                    let (count, w) = counting();
                    let guard = block_on(cond.lock_async());
                    let mut f = Box::pin(cond.wait_async(guard));
                    assert!(poll_once(&mut f, &w).is_pending());
                    // Registered, then the lock was released.
                    assert!(!cond.get_lock().is_locked());
                    waiters.push((f, count, w));
                }
                assert_eq!(cond.__parked(), 3);
                {
                    let _g = cond.lock();
                    assert_eq!(cond.notify(2), Ok(2));
                }
                until("two tasks to be woken", || {
                    waiters
                        .iter()
                        .map(|(_, c, _)| c.0.load(SeqCst))
                        .sum::<usize>()
                        >= 2
                });
                let mut ready = 0;
                let mut pending = Vec::new();
                for (mut f, c, w) in waiters {
                    match poll_once(&mut f, &w) {
                        Poll::Ready(Ok(guard)) => {
                            assert!(cond.get_lock().is_locked());
                            drop(guard);
                            ready += 1;
                        }
                        Poll::Ready(Err(e)) => panic!("{e:?}"),
                        Poll::Pending => pending.push((f, c, w)),
                    }
                }
                assert_eq!(ready, 2);
                let (mut f, c, w) = pending.pop().unwrap();
                {
                    let _g = cond.lock();
                    assert_eq!(cond.notify(5), Ok(1));
                }
                until("the last task to be woken", || c.0.load(SeqCst) >= 1);
                let Poll::Ready(Ok(guard)) = poll_once(&mut f, &w) else {
                    panic!("not woken by the second notify");
                };
                drop(guard);
                assert!(!cond.get_lock().is_locked());
                assert_eq!(cond.__parked(), 0);
            }

            // Issue 18 §1, cancel safety (asyncio 3.13): a waiter dropped
            // after it was notified passes the notification on; one dropped
            // before leaves the queue.
            #[test]
            fn condition_wait_async_cancel_passes_notification_on() {
                use std::sync::atomic::Ordering::SeqCst;
                let cond = $cond;
                let (_, w0) = counting();
                let (_, w1) = counting();
                let (count2, w2) = counting();
                // Each first poll registers and releases the lock.
                let mut gone = Box::pin(cond.wait_async(block_on(cond.lock_async())));
                assert!(poll_once(&mut gone, &w0).is_pending());
                let mut first = Box::pin(cond.wait_async(block_on(cond.lock_async())));
                assert!(poll_once(&mut first, &w1).is_pending());
                let mut second = Box::pin(cond.wait_async(block_on(cond.lock_async())));
                assert!(poll_once(&mut second, &w2).is_pending());
                drop(gone); // not notified: leaves the queue
                assert_eq!(cond.__parked(), 2);
                {
                    let _g = cond.lock();
                    assert_eq!(cond.notify(1), Ok(1));
                }
                // The oldest waiter is notified, and goes away.
                drop(first);
                until("the notification to be passed on", || {
                    count2.0.load(SeqCst) >= 1
                });
                let Poll::Ready(Ok(guard)) = poll_once(&mut second, &w2) else {
                    panic!("the notification was lost with the dropped waiter");
                };
                drop(guard);
                assert_eq!(cond.__parked(), 0);
                assert!(!cond.get_lock().is_locked());
            }

            // `wait_for_async` checks first, then after each notification;
            // a guard of another condition is refused.
            #[test]
            fn condition_wait_for_async_and_foreign_guard() {
                let cond = Arc::new($cond);
                let ready = Arc::new(std::sync::atomic::AtomicUsize::new(0));
                let (c2, r2) = (Arc::clone(&cond), Arc::clone(&ready));
                let t = thread::spawn(move || {
                    for _ in 0..3 {
                        until("the task to wait", || c2.__parked() == 1);
                        let _g = c2.lock();
                        r2.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        c2.notify_all().unwrap();
                    }
                });
                let guard = block_on(cond.lock_async());
                let guard = block_on(cond.wait_for_async(guard, || {
                    ready.load(std::sync::atomic::Ordering::SeqCst) == 3
                }))
                .unwrap();
                assert!(cond.get_lock().is_locked());
                drop(guard);
                t.join().unwrap();
                let other = $cond;
                let foreign = block_on(other.lock_async());
                assert_eq!(
                    block_on(cond.wait_async(foreign)).err(),
                    Some(spindle::sync::NotOwnedError)
                );
                assert!(!other.get_lock().is_locked()); // the guard was dropped
            }
        }
    };
}

scope_tests!(
    threads,
    spindle::sync::Event::new(),
    spindle::sync::Semaphore::new(0),
    spindle::sync::BoundedSemaphore::new(1),
    spindle::sync::Barrier,
    spindle::sync::Lock::new(),
    spindle::sync::Condition::with_lock(Arc::new(spindle::sync::Lock::new()))
);
scope_tests!(
    procs,
    spindle::ipc::sync::Event::new().unwrap(),
    spindle::ipc::sync::Semaphore::new(0).unwrap(),
    spindle::ipc::sync::BoundedSemaphore::new(1).unwrap(),
    spindle::ipc::sync::Barrier,
    spindle::ipc::sync::Lock::new().unwrap(),
    spindle::ipc::sync::Condition::with_lock(spindle::ipc::sync::Lock::new().unwrap()).unwrap()
);

// The futures (and a `ConditionGuard` over a `Lock`) are `Send`, so a
// multi-thread runtime may move a task that awaits them.
#[test]
fn the_futures_are_send() {
    fn send<T: Send>(_: &T) {}
    let (ev, sem, lock) = (
        spindle::sync::Event::new(),
        spindle::sync::BoundedSemaphore::new(1),
        spindle::sync::Lock::new(),
    );
    let barrier = spindle::sync::Barrier::new(1).unwrap();
    let cond = spindle::sync::Condition::with_lock(Arc::new(spindle::sync::Lock::new()));
    send(&ev.wait_async());
    send(&sem.acquire_async());
    send(&sem.permit_async());
    send(&barrier.wait_async());
    send(&lock.lock_async());
    send(&cond.lock_async());
    let guard = block_on(cond.lock_async());
    send(&guard);
    let wait = cond.wait_async(guard);
    send(&wait);
    drop(wait);
    send(&cond.wait_for_async(block_on(cond.lock_async()), || true));
    let pev = spindle::ipc::sync::Event::new().unwrap();
    send(&pev.wait_async());
    let plock = spindle::ipc::sync::Lock::new().unwrap();
    send(&plock.lock_async());
}
