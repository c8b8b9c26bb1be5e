//! Ordered acquisition (`spindle::lockorder::acquire`), the Rust form of the
//! `acquire(*locks)` context manager of Python Cookbook recipe 12.5: locks
//! sorted by id, a "Lock Order Violation" for a thread that asks
//! for a lock sorting before one it holds.

use spindle::lockorder::{self, AcquireError, acquire, acquire_timeout, try_acquire};
use spindle::sync::{Lock, RLock};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::Duration;

const ROUNDS: u64 = if cfg!(miri) { 50 } else { 3_000 };

/// Two locks, the first with the smaller id.
fn pair() -> (Lock, Lock) {
    let (a, b) = (Lock::new(), Lock::new());
    if a.id() < b.id() { (a, b) } else { (b, a) }
}

#[test]
fn random_orders_from_many_threads_never_deadlock() {
    const LOCKS: usize = 6;
    const THREADS: u64 = 8;
    let locks: Vec<Lock> = (0..LOCKS).map(|_| Lock::new()).collect();
    let inside: Vec<AtomicBool> = (0..LOCKS).map(|_| AtomicBool::new(false)).collect();
    let done = AtomicU64::new(0);
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (locks, inside, done) = (&locks, &inside, &done);
            s.spawn(move || {
                let mut x = 0x9E37_79B9_7F4A_7C15u64 ^ (t + 1);
                for _ in 0..ROUNDS {
                    // xorshift: a random non-empty subset in a random order.
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let mut pick: Vec<usize> = (0..LOCKS).filter(|i| x >> i & 1 == 1).collect();
                    if pick.is_empty() {
                        pick.push((x % LOCKS as u64) as usize);
                    }
                    let turn = (x >> 8) as usize % pick.len();
                    pick.rotate_left(turn);
                    let set: Vec<&Lock> = pick.iter().map(|&i| &locks[i]).collect();
                    let g = acquire(set).expect("no violation: nothing else held");
                    for &i in &pick {
                        assert!(!inside[i].swap(true, SeqCst), "two holders of lock {i}");
                    }
                    for &i in &pick {
                        inside[i].store(false, SeqCst);
                    }
                    drop(g);
                    done.fetch_add(1, SeqCst);
                }
            });
        }
    });
    assert_eq!(done.into_inner(), THREADS * ROUNDS);
    assert!(locks.iter().all(|l| !l.is_locked()));
}

#[test]
fn guard_takes_in_id_order_and_releases_all() {
    let (a, b) = pair();
    let c = RLock::new();
    {
        let g = acquire((&b, &c, &a)).unwrap();
        let mut ids = vec![a.id(), b.id(), c.id()];
        ids.sort();
        assert_eq!(g.locks(), ids);
        assert!(a.is_locked() && b.is_locked() && c.is_owned());
    }
    assert!(!a.is_locked() && !b.is_locked() && !c.is_locked());
    // Slices, arrays and a single lock work too.
    drop(acquire(&a).unwrap());
    drop(acquire([&b, &a]).unwrap());
    drop(acquire(&[&a, &b][..]).unwrap());
    assert!(!a.is_locked() && !b.is_locked());
}

#[test]
fn lower_lock_while_holding_higher_is_a_violation() {
    let (low, high) = pair();
    lockorder::set_name(&low, "x_lock");
    lockorder::set_name(&high, "y_lock");
    let outer = acquire(&high).unwrap();
    let err = acquire((&low,)).unwrap_err();
    match &err {
        AcquireError::Violation(v) => {
            assert_eq!((v.held(), v.requested()), (high.id(), low.id()));
        }
        other => panic!("expected a violation, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(msg.contains("Lock Order Violation"), "{msg}");
    assert!(msg.contains("x_lock") && msg.contains("y_lock"), "{msg}");
    assert!(!low.is_locked(), "nothing taken on a violation");
    // The same lock again sorts "equal": also a violation (Python: `>=`).
    assert!(acquire(&high).unwrap_err().is_violation());
    drop(outer);
    // Once released, the lower one is fine, and so is higher-after-lower.
    let g = acquire(&low).unwrap();
    let g2 = acquire(&high).unwrap();
    drop(g);
    drop(g2); // out of order: the record forgets exactly each guard's ids
    assert!(acquire((&low, &high)).is_ok());
}

#[test]
fn a_lock_listed_twice_is_a_violation() {
    let (a, b) = pair();
    let err = acquire((&a, &b, &a)).unwrap_err();
    assert!(err.is_violation());
    assert!(!a.is_locked() && !b.is_locked());
}

#[test]
fn timeout_gives_back_what_it_took() {
    let (a, b) = pair();
    let held = b.lock();
    let err = acquire_timeout((&b, &a), Duration::from_millis(10)).unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    assert!(!a.is_locked(), "a was taken first and must be given back");
    assert!(try_acquire((&a, &b)).unwrap_err().is_timeout());
    drop(held);
    assert!(acquire_timeout((&a, &b), Duration::from_secs(60)).is_ok());
}

#[test]
fn timeout_waits_when_another_thread_holds() {
    let (a, b) = pair();
    let g = acquire((&a, &b)).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| {
            let start = std::time::Instant::now();
            let r = acquire_timeout((&b, &a), Duration::from_millis(20));
            (r.map(drop), start.elapsed())
        });
        let (r, waited) = t.join().unwrap();
        assert!(r.unwrap_err().is_timeout());
        assert!(waited >= Duration::from_millis(20));
    });
    drop(g);
}
