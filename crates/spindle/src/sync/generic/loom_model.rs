//! Loom models of the generic objects over the thread scope's raw layer
//! (`sync/raw/thread.rs`: wait/wake on words, the condition's queue, the
//! async waker table): `Event`, `Semaphore`, `Condition`, and the async
//! faces `Lock::lock_async` and `Condition::wait_async` (below). Run them
//! as `crate::loom` says.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use ::loom::sync::Arc;
use ::loom::sync::atomic::AtomicUsize;
use ::loom::thread;

use crate::loom::{advance, check};
use crate::sync::{Condition, Event, Lock, Semaphore};

/// Any deadline: under loom only whether there is one matters; it passes
/// when the model's clock thread runs.
fn deadline() -> Instant {
    Instant::now()
}

/// Python's promise: threads already waiting when `set` runs return
/// `true` even if `clear` follows at once (no lost wake-up). The waiters'
/// deadlines never pass (no clock), so only that `set` can end their waits.
#[test]
fn loom_model_event_set_then_clear_wakes_present_waiters() {
    check("Event: set+clear wakes present waiters", 3, || {
        let ev = Arc::new(Event::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let ev = Arc::clone(&ev);
                thread::spawn(move || ev.wait_deadline(deadline()))
            })
            .collect();
        // Until both waiters have counted themselves in (past the fast
        // path: about to sleep, or asleep).
        while ev.__parked() < 2 {
            thread::yield_now();
        }
        ev.set();
        ev.clear();
        for w in waiters {
            assert!(w.join().unwrap(), "a present waiter sees the set");
        }
        assert!(!ev.is_set());
        assert_eq!(ev.__parked(), 0);
    });
}

/// `set` racing two untimed `wait`s at every point: no lost wake-up (the
/// `waiting` count and the flag are a `SeqCst` Dekker pair: either `set`
/// sees a waiter and wakes the word, or the waiter sees the flag).
#[test]
fn loom_model_event_wait_races_set() {
    check("Event: two waits vs set", 3, || {
        let ev = Arc::new(Event::new());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let ev = Arc::clone(&ev);
                thread::spawn(move || ev.wait())
            })
            .collect();
        ev.set();
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(ev.__parked(), 0);
    });
}

/// `set` racing `wait` with a timeout (the clock thread): the waiter
/// returns `true` or times out, never sleeps through the set, and leaves
/// the waiter count at 0.
#[test]
fn loom_model_event_timed_wait_races_set() {
    check("Event: timed wait vs set vs clock", 3, || {
        let ev = Arc::new(Event::new());
        let waiter = {
            let ev = Arc::clone(&ev);
            thread::spawn(move || ev.wait_deadline(deadline()))
        };
        let clock = thread::spawn(advance);
        ev.set();
        let got = waiter.join().unwrap();
        clock.join().unwrap();
        // Woken or timed out: both fine; the count is back to 0 and a wait
        // now returns at once.
        let _ = got;
        assert_eq!(ev.__parked(), 0);
        assert!(ev.wait_deadline(deadline()));
    });
}

/// `release_n(2)` lets exactly the two blocked acquirers through (no
/// stranded permit: neither sleeps forever) and leaves 0.
#[test]
fn loom_model_semaphore_release_n_lets_n_through() {
    check("Semaphore: release(2) lets two through", 3, || {
        let sem = Arc::new(Semaphore::new(0));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let sem = Arc::clone(&sem);
                thread::spawn(move || sem.acquire())
            })
            .collect();
        sem.release_n(2).unwrap();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(sem.value(), 0);
        assert_eq!(sem.__parked(), 0);
    });
}

/// One permit, two timed acquirers and the clock: the permit is taken by
/// at most one of them, and a permit nobody took is still counted — none
/// is lost or made up.
#[test]
fn loom_model_semaphore_one_permit_two_timed_acquirers() {
    check(
        "Semaphore: one permit, two timed acquirers, clock",
        3,
        || {
            let sem = Arc::new(Semaphore::new(0));
            let threads: Vec<_> = (0..2)
                .map(|_| {
                    let sem = Arc::clone(&sem);
                    thread::spawn(move || sem.acquire_deadline(deadline()))
                })
                .collect();
            sem.release();
            advance();
            let taken = threads
                .into_iter()
                .map(|t| t.join().unwrap() as usize)
                .sum::<usize>();
            assert_eq!(taken + sem.value(), 1, "the permit is conserved");
            assert_eq!(sem.__parked(), 0);
        },
    );
}

/// Two waiters each wait for a token under the condition's lock (an
/// `RLock`, the default); the notifier adds one token and notifies one
/// waiter, twice. No notification is lost: both waiters get a token.
/// Preemption bound 2: at 3 it explores 1.3 M executions in 151 s (it
/// passes; run it with `LOOM_MAX_PREEMPTIONS=3` after changing the
/// condition's queue).
#[test]
fn loom_model_condition_no_lost_notification() {
    check("Condition: two waiters, two notify_one", 2, || {
        let cond = Arc::new(Condition::new());
        let tokens = Arc::new(AtomicUsize::new(0));
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let (cond, tokens) = (Arc::clone(&cond), Arc::clone(&tokens));
                thread::spawn(move || {
                    let _held = cond.lock();
                    while tokens.load(Relaxed) == 0 {
                        cond.wait().unwrap();
                    }
                    tokens.store(tokens.load(Relaxed) - 1, Relaxed);
                })
            })
            .collect();
        for _ in 0..2 {
            let _held = cond.lock();
            tokens.store(tokens.load(Relaxed) + 1, Relaxed);
            cond.notify_one().unwrap();
        }
        for w in waiters {
            w.join().unwrap();
        }
        assert_eq!(tokens.load(Relaxed), 0);
        assert_eq!(cond.__parked(), 0);
    });
}

/// A timed wait races `notify_one` and the clock: a notification that
/// `notify_one` reports as delivered is seen by the waiter (it returns
/// `true` even if its deadline passed meanwhile), and one it reports as
/// undelivered leaves the waiter to time out.
#[test]
fn loom_model_condition_timed_wait_races_notify() {
    check("Condition: timed wait vs notify vs clock", 3, || {
        let cond = Arc::new(Condition::new());
        let waiter = {
            let cond = Arc::clone(&cond);
            thread::spawn(move || {
                let _held = cond.lock();
                cond.wait_deadline(deadline()).unwrap()
            })
        };
        let clock = thread::spawn(advance);
        let delivered = {
            let _held = cond.lock();
            cond.notify_one().unwrap()
        };
        let notified = waiter.join().unwrap();
        clock.join().unwrap();
        assert_eq!(notified, delivered);
        assert_eq!(cond.__parked(), 0);
    });
}

// The async faces over the thread scope: `Lock::lock_async` (the lock
// word's async wake path: `RawLock::mark_parked`, `unlock_slow`'s fence and
// `wake_lock_watchers`, `ThreadScope::watch_mutex`), and a `Condition`'s
// async tickets (`ThreadScope::poll_ticket` against `ThreadQueue::notify`,
// `abandon_ticket`, `pass_notification`), through the waker table
// (`raw/wakers.rs`), which is written against the loom shim. A task is run
// by `block_on` below: its waker unparks the model thread, which parks
// between polls, so a lost wake-up leaves it parked for good and loom
// reports the deadlock.

/// Wakes the model thread parked in [`block_on`].
struct Unpark(thread::Thread);

impl std::task::Wake for Unpark {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.unpark();
    }
}

/// A waker that unparks the calling model thread.
fn thread_waker() -> std::task::Waker {
    std::task::Waker::from(std::sync::Arc::new(Unpark(thread::current())))
}

/// Runs `f` to completion on this model thread, parking between polls.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let waker = thread_waker();
    let mut cx = std::task::Context::from_waker(&waker);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}

/// Polls `f` once with a waker of this model thread.
fn poll_once<F: std::future::Future>(
    f: std::pin::Pin<&mut F>,
    waker: &std::task::Waker,
) -> std::task::Poll<F::Output> {
    f.poll(&mut std::task::Context::from_waker(waker))
}

/// A task's `lock_async` races the holder's unlock at every point: it takes
/// the lock or is woken by the unlock (never parks for good). The unlock
/// that finds the lock marked waited on clears `LOCKED`, fences (`SeqCst`)
/// and reads the waker table's `live` count; the task counts itself in
/// `live` (`SeqCst`), then re-checks that the lock is still held and marked
/// (`RawLock::is_parked_on`). Checked to fail (deadlock) with that re-check
/// removed (`watch_mutex` registering unconditionally) and with the unlock's
/// wake of the watchers (`wake_lock_watchers`) removed.
#[test]
fn loom_model_lock_async_woken_by_unlock() {
    check("Lock: lock_async vs unlock", 3, || {
        let lock = Arc::new(Lock::new());
        let count = Arc::new(AtomicUsize::new(0));
        let held = lock.lock();
        let task = {
            let (lock, count) = (Arc::clone(&lock), Arc::clone(&count));
            thread::spawn(move || {
                let guard = block_on(lock.lock_async());
                // The holder's section came first.
                assert_eq!(count.load(Relaxed), 1);
                count.store(2, Relaxed);
                drop(guard);
            })
        };
        count.store(1, Relaxed);
        drop(held);
        task.join().unwrap();
        assert_eq!(count.load(Relaxed), 2);
        assert!(!lock.is_locked());
    });
}

/// Two waiters on a held lock, a task and a blocked thread: the task's
/// `lock_async` is polled once and then dropped (cancelled, maybe after an
/// unlock woke it); the thread still gets the lock, and so does a second
/// task. A thread-scope unlock wakes every async waiter and one parked
/// thread, so a cancelled waiter has nothing to pass on
/// (`pass_mutex_wake` is empty). Checked to fail (deadlock) when an unlock
/// wakes only one async waiter (`wake_lock_watchers` waking 1), and without
/// the fence of `WakerTable::watch` (a false alarm of loom's fence model,
/// see there: the run that found it is this model's).
#[test]
fn loom_model_lock_async_cancelled_waiter_loses_no_wake() {
    check(
        "Lock: cancelled lock_async vs lock_async vs unlock",
        3,
        || {
            let lock = Arc::new(Lock::new());
            let held = lock.lock();
            let cancelled = {
                let lock = Arc::clone(&lock);
                thread::spawn(move || {
                    let waker = thread_waker();
                    let mut f = std::pin::pin!(lock.lock_async());
                    // Ready: it took the lock (the guard drops with it).
                    let _ = poll_once(f.as_mut(), &waker);
                })
            };
            let task = {
                let lock = Arc::clone(&lock);
                thread::spawn(move || drop(block_on(lock.lock_async())))
            };
            drop(held);
            cancelled.join().unwrap();
            task.join().unwrap();
            assert!(!lock.is_locked());
        },
    );
}

/// A thread whose task takes the `Condition`'s lock with `lock_async`,
/// waits with `wait_for_async` until a token is there, and takes it.
fn spawn_token_taker(
    cond: &Arc<Condition<Lock>>,
    tokens: &Arc<AtomicUsize>,
) -> thread::JoinHandle<()> {
    let (cond, tokens) = (Arc::clone(cond), Arc::clone(tokens));
    thread::spawn(move || {
        block_on(async {
            let guard = cond.lock_async().await;
            let guard = cond
                .wait_for_async(guard, || tokens.load(Relaxed) > 0)
                .await
                .unwrap();
            tokens.store(tokens.load(Relaxed) - 1, Relaxed);
            drop(guard);
        })
    })
}

/// A task waits on a `Condition` over a `Lock` (`wait_for_async`) while a
/// thread adds a token and notifies one waiter: the task is woken and takes
/// the token (the ticket's `WAITING → PARKED` compare-and-swap and the waker
/// table's re-check of `PARKED` against `notify`'s `SeqCst` swap to
/// `NOTIFIED` and wake). Checked to fail (deadlock) with `notify` waking
/// the ticket's word only for a thread (`ThreadScope::wake` skipping the
/// waker table) and with `poll_ticket`'s re-check dropped.
#[test]
fn loom_model_condition_wait_async_woken_by_notify() {
    check("Condition: wait_async vs notify", 3, || {
        let cond = Arc::new(Condition::with_lock(std::sync::Arc::new(Lock::new())));
        let tokens = Arc::new(AtomicUsize::new(0));
        let task = spawn_token_taker(&cond, &tokens);
        {
            let _held = cond.lock();
            tokens.store(tokens.load(Relaxed) + 1, Relaxed);
            cond.notify_one().unwrap();
        }
        task.join().unwrap();
        assert_eq!(tokens.load(Relaxed), 0);
        assert_eq!(cond.__parked(), 0);
    });
}

/// Two async waiters on a `Condition` over a `Lock`; one notification. The
/// first waiter's `wait_async` is polled once and dropped (cancelled): if
/// the notification reached it (its ticket taken by `notify`, or it was
/// retaking the lock), it passes it on (`abandon_ticket` /
/// `pass_notification`), so the second waiter is woken and takes the token.
/// If the first one's single poll returned the guard, the notification was
/// used there, and the notifier notifies once more. Checked to fail
/// (deadlock) with `abandon_ticket` not passing the notification on, and
/// with a wait dropped while retaking the lock not passing it on
/// (`ConditionWait`'s drop in its `Relock` stage).
#[test]
fn loom_model_condition_cancelled_wait_async_passes_notification_on() {
    check(
        "Condition: cancelled wait_async vs wait_async vs notify",
        3,
        || {
            let cond = Arc::new(Condition::with_lock(std::sync::Arc::new(Lock::new())));
            let tokens = Arc::new(AtomicUsize::new(0));
            let cancelled = {
                let cond = Arc::clone(&cond);
                thread::spawn(move || {
                    let waker = thread_waker();
                    let guard = block_on(cond.lock_async());
                    let mut f = std::pin::pin!(cond.wait_async(guard));
                    // Ready: it was notified and retook the lock (used the
                    // notification); the guard drops here.
                    poll_once(f.as_mut(), &waker).is_ready()
                })
            };
            let task = spawn_token_taker(&cond, &tokens);
            {
                let _held = cond.lock();
                tokens.store(1, Relaxed);
                cond.notify_one().unwrap();
            }
            if cancelled.join().unwrap() {
                let _held = cond.lock();
                cond.notify_one().unwrap();
            }
            task.join().unwrap();
            assert_eq!(tokens.load(Relaxed), 0);
            assert_eq!(cond.__parked(), 0);
        },
    );
}
