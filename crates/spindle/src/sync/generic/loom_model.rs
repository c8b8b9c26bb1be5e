//! Loom models of the generic objects over the thread scope's raw layer
//! (`sync/raw/thread.rs`: wait/wake on words, the condition's queue):
//! `Event`, `Semaphore`, `Condition`. Run them as `crate::loom` says.
#![forbid(unsafe_code)]

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use ::loom::sync::Arc;
use ::loom::sync::atomic::AtomicUsize;
use ::loom::thread;

use crate::loom::{advance, check};
use crate::sync::{Condition, Event, Semaphore};

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
