//! The deadlock detector (`spindle::lockorder::detector`): every deliberately
//! built deadlock (two-lock inversion, the five-philosopher ring, a three-thread
//! cycle) is found within a bounded time with the right threads and locks;
//! the fixed versions are never reported; recovery releases the program.
//!
//! The tests share the process-wide detector, so they run one at a time.

use spindle::lockorder::detector::{self, Deadlock, Recovery, Watchdog};
use spindle::lockorder::{self, AcquireError, DeadlockError, acquire};
use spindle::sync::{Barrier, Lock, LockId, RLock};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Generous: a deadlock is normally found within milliseconds.
const LIMIT: Duration = Duration::from_secs(20);

fn serial() -> MutexGuard<'static, ()> {
    static ONE: Mutex<()> = Mutex::new(());
    let g = ONE.lock().unwrap_or_else(|e| e.into_inner());
    detector::enable();
    g
}

/// Polls `detect()` until a deadlock involving `lock` shows up.
fn find(lock: LockId) -> Deadlock {
    let start = Instant::now();
    loop {
        if let Some(d) = detector::detect().into_iter().find(|d| d.involves(lock)) {
            return d;
        }
        assert!(
            start.elapsed() < LIMIT,
            "no deadlock found within {LIMIT:?}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `n` threads named `{prefix}{i}`; thread i takes `locks[i]`, meets the
/// others, then takes `locks[(i + 1) % n]`: a ring that always deadlocks.
fn ring(prefix: &str, locks: &Arc<Vec<Lock>>) -> Vec<JoinHandle<()>> {
    let n = locks.len();
    let meet = Arc::new(Barrier::new(n).unwrap());
    (0..n)
        .map(|i| {
            let (locks, meet) = (Arc::clone(locks), Arc::clone(&meet));
            std::thread::Builder::new()
                .name(format!("{prefix}{i}"))
                .spawn(move || {
                    let _left = locks[i].lock();
                    meet.wait().unwrap();
                    let _right = locks[(i + 1) % n].lock();
                })
                .unwrap()
        })
        .collect()
}

fn names(d: &Deadlock) -> BTreeSet<String> {
    d.threads().into_iter().map(str::to_owned).collect()
}

fn is_deadlock_error(r: std::thread::Result<()>) -> bool {
    matches!(r, Err(p) if p.downcast_ref::<DeadlockError>().is_some())
}

#[test]
fn two_lock_inversion_is_found_and_one_victim_frees_the_other() {
    let _s = serial();
    let locks = Arc::new(vec![Lock::new(), Lock::new()]);
    lockorder::set_name(&locks[0], "a.lock");
    lockorder::set_name(&locks[1], "b.lock");
    let threads = ring("inversion-", &locks);
    let d = find(locks[0].id());
    assert_eq!(
        names(&d),
        BTreeSet::from(["inversion-0".into(), "inversion-1".into()])
    );
    let set: BTreeSet<LockId> = d.locks().into_iter().collect();
    assert_eq!(set, BTreeSet::from([locks[0].id(), locks[1].id()]));
    for l in d.links() {
        // Each waits for the lock the other took, at the lines of `ring`.
        assert!(l.wait_site().file().ends_with("lockorder_detector.rs"));
        assert_eq!(l.wait_site().line(), l.held_site().line() + 2);
        assert_ne!(l.thread(), l.holder());
    }
    let text = d.to_string();
    assert!(
        text.contains("\"a.lock\"") && text.contains("inversion-1"),
        "{text}"
    );
    assert_eq!(d.recover(Recovery::AbortNewest), 1);
    let results: Vec<_> = threads.into_iter().map(|t| t.join()).collect();
    let aborted = results.into_iter().filter(is_deadlock_error_ref).count();
    assert_eq!(aborted, 1, "one victim; the other thread then finished");
}

fn is_deadlock_error_ref(r: &std::thread::Result<()>) -> bool {
    matches!(r, Err(p) if p.downcast_ref::<DeadlockError>().is_some())
}

#[test]
fn five_philosophers_ring_is_found() {
    let _s = serial();
    let chopsticks = Arc::new((0..5).map(|_| Lock::new()).collect::<Vec<_>>());
    let threads = ring("philosopher-", &chopsticks);
    let d = find(chopsticks[0].id());
    assert_eq!(d.links().len(), 5);
    let want: BTreeSet<String> = (0..5).map(|i| format!("philosopher-{i}")).collect();
    assert_eq!(names(&d), want);
    let set: BTreeSet<LockId> = d.locks().into_iter().collect();
    assert_eq!(set, chopsticks.iter().map(|c| c.id()).collect());
    for l in d.links() {
        // philosopher-i waits for chopstick i+1, held by philosopher-(i+1).
        let i: usize = l.thread()["philosopher-".len()..].parse().unwrap();
        assert_eq!(l.waits_for(), chopsticks[(i + 1) % 5].id());
        assert_eq!(l.holder(), format!("philosopher-{}", (i + 1) % 5));
    }
    assert_eq!(d.recover(Recovery::AbortAll), 5);
    assert!(threads.into_iter().all(|t| is_deadlock_error(t.join())));
}

#[test]
fn three_thread_cycle_is_found_and_ordered_acquire_returns_the_error() {
    let _s = serial();
    let locks = Arc::new((0..3).map(|_| Lock::new()).collect::<Vec<_>>());
    let meet = Arc::new(Barrier::new(3).unwrap());
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (locks, meet) = (Arc::clone(&locks), Arc::clone(&meet));
            std::thread::Builder::new()
                .name(format!("cycle-{i}"))
                .spawn(move || -> Result<(), DeadlockError> {
                    lockorder::recoverable(|| {
                        let _mine = locks[i].lock();
                        meet.wait().unwrap();
                        // `acquire` hands the verdict back as a value.
                        match acquire(&locks[(i + 1) % 3]) {
                            Err(AcquireError::Deadlock(e)) => Err(e),
                            Ok(_g) => Ok(()),
                            Err(other) => panic!("unexpected {other:?}"),
                        }
                    })?
                })
                .unwrap()
        })
        .collect();
    let d = find(locks[1].id());
    assert_eq!(d.links().len(), 3);
    assert_eq!(
        names(&d),
        (0..3)
            .map(|i| format!("cycle-{i}"))
            .collect::<BTreeSet<_>>()
    );
    assert_eq!(d.recover(Recovery::AbortAll), 3);
    for t in threads {
        let e = t.join().unwrap().unwrap_err();
        assert!(locks.iter().any(|l| l.id() == e.lock()));
        let broken = e.deadlock().expect("the deadlock comes with the error");
        assert_eq!(broken.links().len(), 3);
    }
    assert!(locks.iter().all(|l| !l.is_locked()));
}

/// The fixed versions (ordered acquisition) under a detector polling as fast
/// as it can: no deadlock is ever reported.
#[test]
fn no_false_positives_on_the_fixed_versions() {
    let _s = serial();
    const MEALS: u64 = if cfg!(miri) { 20 } else { 2_000 };
    let chopsticks: Vec<Lock> = (0..5).map(|_| Lock::new()).collect();
    let ids: Vec<LockId> = chopsticks.iter().map(|c| c.id()).collect();
    let (stop, eaten, scans) = (AtomicBool::new(false), AtomicU64::new(0), AtomicU64::new(0));
    std::thread::scope(|s| {
        let poller = s.spawn(|| {
            let mut false_positives = Vec::new();
            while !stop.load(SeqCst) {
                for d in detector::detect() {
                    if ids.iter().any(|&id| d.involves(id)) {
                        false_positives.push(d.to_string());
                    }
                }
                scans.fetch_add(1, SeqCst);
            }
            false_positives
        });
        let diners: Vec<_> = (0..5)
            .map(|i| {
                let (chopsticks, eaten) = (&chopsticks, &eaten);
                std::thread::Builder::new()
                    .name(format!("ordered-{i}"))
                    .spawn_scoped(s, move || {
                        for _ in 0..MEALS {
                            let (l, r) = (&chopsticks[i], &chopsticks[(i + 1) % 5]);
                            let _g = acquire((l, r)).unwrap();
                            eaten.fetch_add(1, SeqCst);
                        }
                    })
                    .unwrap()
            })
            .collect();
        for d in diners {
            d.join().unwrap();
        }
        stop.store(true, SeqCst);
        let fp = poller.join().unwrap();
        assert!(fp.is_empty(), "false positives: {fp:?}");
    });
    assert_eq!(eaten.into_inner(), 5 * MEALS);
    assert!(scans.into_inner() > 0);
}

#[test]
fn watchdog_reports_and_recovers_on_its_own() {
    let _s = serial();
    let (tx, rx) = mpsc::channel();
    let dog = Watchdog::builder()
        .interval(Duration::from_millis(10))
        .recovery(Recovery::AbortNewest)
        .on_deadlock(move |d| tx.send(d.clone()).unwrap())
        .start();
    let locks = Arc::new(vec![Lock::new(), Lock::new()]);
    let threads = ring("watched-", &locks);
    let d = rx
        .recv_timeout(LIMIT)
        .expect("the watchdog reports the deadlock");
    assert_eq!(
        names(&d),
        BTreeSet::from(["watched-0".into(), "watched-1".into()])
    );
    // The program is released: both threads end, one with the error.
    let aborted = threads
        .into_iter()
        .map(|t| t.join())
        .filter(is_deadlock_error_ref)
        .count();
    assert_eq!(aborted, 1);
    assert!(dog.found().iter().any(|f| f.involves(locks[0].id())));
    dog.stop();
    assert!(rx.try_recv().is_err(), "reported once");
}

/// The remedy "acquire with a timeout": the same inversion with timed
/// second acquisitions is blocked for a while but ends by itself, so it is
/// never reported.
#[test]
fn timed_waits_are_never_a_deadlock() {
    let _s = serial();
    let locks = Arc::new(vec![Lock::new(), Lock::new()]);
    let meet = Arc::new(Barrier::new(2).unwrap());
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (locks, meet) = (Arc::clone(&locks), Arc::clone(&meet));
            std::thread::spawn(move || {
                let _mine = locks[i].lock();
                meet.wait().unwrap();
                locks[1 - i].lock_timeout(Duration::from_secs(1)).is_some()
            })
        })
        .collect();
    // Both are parked on each other's lock now (or already timed out).
    let start = Instant::now();
    while (locks[0].__parked() == 0 || locks[1].__parked() == 0) && start.elapsed() < LIMIT {
        std::thread::yield_now();
    }
    let ids = [locks[0].id(), locks[1].id()];
    let reported = detector::detect()
        .into_iter()
        .any(|d| ids.iter().any(|&id| d.involves(id)));
    assert!(!reported);
    let got: Vec<bool> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert!(got.iter().any(|&g| !g), "at least one timed out: {got:?}");
}

#[test]
fn rlock_inversion_is_found_too() {
    let _s = serial();
    let locks = Arc::new(vec![RLock::new(), RLock::new()]);
    let meet = Arc::new(Barrier::new(2).unwrap());
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let (locks, meet) = (Arc::clone(&locks), Arc::clone(&meet));
            std::thread::Builder::new()
                .name(format!("rlock-{i}"))
                .spawn(move || {
                    let _mine = locks[i].lock();
                    let _again = locks[i].lock(); // re-entry: still one hold
                    meet.wait().unwrap();
                    let _other = locks[1 - i].lock();
                })
                .unwrap()
        })
        .collect();
    let d = find(locks[0].id());
    assert_eq!(
        names(&d),
        BTreeSet::from(["rlock-0".into(), "rlock-1".into()])
    );
    assert_eq!(d.recover(Recovery::AbortAll), 2);
    assert!(threads.into_iter().all(|t| is_deadlock_error(t.join())));
    assert!(!locks[0].is_locked() && !locks[1].is_locked());
}
