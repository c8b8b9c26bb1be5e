//! Tour section `sync`: Python's `threading` synchronisation objects, each
//! shown doing its job and checked.

use super::Tour;
use spindle::sync::{
    Barrier, BoundedSemaphore, Condition, Event, Lock, OverReleaseError, RLock, ReleaseError,
    Semaphore,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::thread;
use std::time::{Duration, Instant};

pub(crate) fn run(t: &mut Tour) {
    lock(t);
    rlock(t);
    semaphore(t);
    event(t);
    condition(t);
    barrier(t);
}

fn lock(t: &mut Tour) {
    t.say("Lock — `with lock: n += 1` from 20 threads x 1000 (a read-then-write that loses updates unguarded)");
    let lock = Lock::new();
    let n = AtomicUsize::new(0);
    thread::scope(|s| {
        for _ in 0..20 {
            s.spawn(|| {
                for _ in 0..1000 {
                    let _held = lock.lock();
                    n.store(n.load(Relaxed) + 1, Relaxed);
                }
            });
        }
    });
    let n = n.into_inner();
    t.check(
        "20 threads x 1000 increments under a Lock reach 20000",
        n == 20_000,
        format!("n = {n}"),
    );

    let lock = Arc::new(Lock::new());
    lock.acquire();
    let l2 = Arc::clone(&lock);
    let other = thread::spawn(move || l2.release())
        .join()
        .unwrap_or(Err(ReleaseError::Unlocked));
    t.check(
        "a Lock acquired here can be released by another thread",
        other.is_ok() && !lock.is_locked(),
        "as Python allows",
    );
    let again = lock.release();
    t.check(
        "releasing an unlocked Lock is a typed error",
        again == Err(ReleaseError::Unlocked),
        format!("{again:?}"),
    );
}

fn rlock(t: &mut Tour) {
    t.say("RLock — the owner may re-enter; only the owner may release");
    let rlock = Arc::new(RLock::new());
    let depth = {
        let _a = rlock.lock();
        let _b = rlock.lock();
        let _c = rlock.lock();
        rlock.recursion_depth()
    };
    t.check(
        "the owner re-enters 3 levels without deadlock",
        depth == 3 && !rlock.is_locked(),
        format!("depth {depth}"),
    );
    let _held = rlock.lock();
    let r2 = Arc::clone(&rlock);
    let other = thread::spawn(move || r2.release()).join().unwrap_or(Ok(()));
    t.check(
        "a non-owner's release is refused",
        other == Err(ReleaseError::NotOwner),
        format!("{other:?}"),
    );
}

fn semaphore(t: &mut Tour) {
    t.say("Semaphore(3) — 10 threads, never more than 3 inside at once");
    let sem = Semaphore::new(3);
    let (inside, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
    thread::scope(|s| {
        for _ in 0..10 {
            s.spawn(|| {
                for _ in 0..200 {
                    let _permit = sem.permit();
                    let now = inside.fetch_add(1, SeqCst) + 1;
                    most.fetch_max(now, SeqCst);
                    thread::yield_now();
                    inside.fetch_sub(1, SeqCst);
                }
            });
        }
    });
    let most = most.into_inner();
    t.check(
        "a Semaphore(3) bounds concurrency to 3",
        most <= 3 && sem.value() == 3,
        format!("at most {most} inside"),
    );
    let bounded = BoundedSemaphore::new(2);
    let over = bounded.release();
    t.check(
        "a BoundedSemaphore refuses an over-release",
        over == Err(OverReleaseError),
        format!("{over:?}"),
    );
}

fn event(t: &mut Tour) {
    t.say("Event — 5 threads wait for one set(); a set() followed at once by clear() still wakes them");
    let evt = Arc::new(Event::new());
    let waiters: Vec<_> = (0..5)
        .map(|_| {
            let e = Arc::clone(&evt);
            thread::spawn(move || e.wait_timeout(Duration::from_secs(10)))
        })
        .collect();
    let start = Instant::now();
    while evt.__parked() < 5 && start.elapsed() < Duration::from_secs(10) {
        thread::yield_now();
    }
    evt.set();
    evt.clear();
    let woken = waiters
        .into_iter()
        .map(|w| w.join())
        .filter(|r| matches!(r, Ok(true)))
        .count();
    t.check(
        "every waiter blocked before set() returns true",
        woken == 5,
        format!("{woken}/5 woke"),
    );
    let start = Instant::now();
    let timed_out = !evt.wait_timeout(Duration::from_millis(20));
    t.check(
        "wait(timeout) on a clear Event times out, not early",
        timed_out && start.elapsed() >= Duration::from_millis(20),
        format!("{:.1} ms", start.elapsed().as_secs_f64() * 1e3),
    );
}

fn condition(t: &mut Tour) {
    t.say("Condition — producer/consumer over a buffer of 4, 1000 items, wait_for + notify");
    let cond = Condition::new();
    let (len, taken) = (AtomicUsize::new(0), AtomicUsize::new(0));
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..1000 {
                let _held = cond.lock();
                let _ = cond.wait_for(|| len.load(Relaxed) < 4);
                len.store(len.load(Relaxed) + 1, Relaxed);
                let _ = cond.notify_all();
            }
        });
        s.spawn(|| {
            for _ in 0..1000 {
                let _held = cond.lock();
                let _ = cond.wait_for(|| len.load(Relaxed) > 0);
                len.store(len.load(Relaxed) - 1, Relaxed);
                taken.fetch_add(1, Relaxed);
                let _ = cond.notify_all();
            }
        });
    });
    let taken = taken.into_inner();
    t.check(
        "1000 items passed through, none lost",
        taken == 1000 && len.into_inner() == 0,
        format!("{taken} taken"),
    );
    let _held = cond.lock();
    let r = cond.wait_for_timeout(|| false, Duration::from_millis(10));
    t.check(
        "wait_for(predicate, timeout) returns the predicate's last value",
        r == Ok(false),
        format!("{r:?}"),
    );
}

fn barrier(t: &mut Tour) {
    t.say("Barrier(5) with an action — 5 threads meet 3 times");
    let actions = Arc::new(AtomicUsize::new(0));
    let a2 = Arc::clone(&actions);
    let barrier = Barrier::with_action(5, move || {
        a2.fetch_add(1, SeqCst);
    })
    .expect("5 parties");
    let rounds: Vec<Vec<usize>> = thread::scope(|s| {
        let hs: Vec<_> = (0..5)
            .map(|_| s.spawn(|| (0..3).filter_map(|_| barrier.wait().ok()).collect()))
            .collect();
        hs.into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let ok = (0..3).all(|r| {
        let mut idx: Vec<usize> = rounds.iter().filter_map(|v| v.get(r).copied()).collect();
        idx.sort();
        idx == [0, 1, 2, 3, 4]
    });
    t.check(
        "each round hands out arrival indices 0..5 exactly once",
        ok,
        "",
    );
    let runs = actions.load(SeqCst);
    t.check(
        "the action ran once per round",
        runs == 3,
        format!("{runs} runs"),
    );
    barrier.abort();
    t.check(
        "after abort() waits fail as broken",
        barrier.wait().is_err() && barrier.is_broken(),
        "until reset()",
    );
}
