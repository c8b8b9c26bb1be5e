//! Suite `lockorder`: what deadlock prevention and detection cost.
//!
//! * `lock_unlock`: one thread takes and releases a free lock — a plain
//!   spindle `Lock` (tracking off: the fast path pays one relaxed load), the
//!   same lock with the order checker on, with the deadlock detector's
//!   tracking on, beside `parking_lot::Mutex` and `std::sync::Mutex`, and
//!   Python's `with lock:` (bench/python/lockorder.py).
//! * `nested_2`: take A then B, release both (the checker's edge lookup runs
//!   for B while A is held).
//! * `ordered_acquire_2`: `lockorder::acquire((&b, &a))` (sorted by id) beside
//!   two plain `lock()` calls, parking_lot, std and the Python Cookbook's
//!   `acquire(*locks)` context manager (recipe 12.5).
//! * `contended_2t`: two threads hammering one lock, plain and with the
//!   checker + detector on.
//!
//! All figures are nanoseconds per operation (lower is better).

use super::{Bench, Unit, imp};
use spindle::lockorder::{self, checker, detector};
use spindle::sync::Lock;
use std::hint::black_box;
use std::thread;
use std::time::Instant;

/// Runs `job(n)` once and returns nanoseconds per operation.
fn nanos_per(n: u64, job: impl FnOnce(u64)) -> f64 {
    let t = Instant::now();
    job(n);
    t.elapsed().as_secs_f64() * 1e9 / n as f64
}

/// Runs `f` with the checker (and/or the detector's tracking) on, then turns
/// them off again so the other contenders measure the plain path.
fn with_tracking(checker_on: bool, detector_on: bool, f: impl FnOnce() -> f64) -> f64 {
    if checker_on {
        checker::enable();
    }
    if detector_on {
        detector::enable();
    }
    let v = f();
    checker::disable();
    detector::disable();
    v
}

fn lock_unlock(lock: &Lock, n: u64) {
    for _ in 0..n {
        let _g = black_box(lock.lock());
    }
}

fn nested(a: &Lock, b: &Lock, n: u64) {
    for _ in 0..n {
        let ga = a.lock();
        let _gb = black_box(b.lock());
        drop(ga);
    }
}

fn contended(lock: &Lock, n: u64) {
    thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| lock_unlock(lock, n / 2));
        }
    });
}

pub(crate) fn run(b: &mut Bench) {
    checker::set_sink(checker::Sink::Silent);
    let q = b.quick();
    let ops: u64 = if q { 1_000_000 } else { 4_000_000 };
    let tracked: u64 = ops / 4;
    let contended_ops: u64 = if q { 200_000 } else { 1_000_000 };

    let (la, lb) = (Lock::new(), Lock::new());
    let (pa, pb) = (parking_lot::Mutex::new(()), parking_lot::Mutex::new(()));
    let (sa, sb) = (std::sync::Mutex::new(()), std::sync::Mutex::new(()));

    b.case(
        "lock_unlock",
        Unit::Nanos,
        vec![
            imp("spindle", || nanos_per(ops, |n| lock_unlock(&la, n))),
            imp("spindle+checker", || {
                with_tracking(true, false, || nanos_per(tracked, |n| lock_unlock(&la, n)))
            }),
            imp("spindle+detector", || {
                with_tracking(false, true, || nanos_per(tracked, |n| lock_unlock(&la, n)))
            }),
            imp("parking_lot", || {
                nanos_per(ops, |n| {
                    for _ in 0..n {
                        let _g = black_box(pa.lock());
                    }
                })
            }),
            imp("std", || {
                nanos_per(ops, |n| {
                    for _ in 0..n {
                        let _g = black_box(sa.lock().unwrap());
                    }
                })
            }),
            b.python("lockorder.py", "lock_unlock"),
        ],
    );

    b.case(
        "nested_2",
        Unit::Nanos,
        vec![
            imp("spindle", || nanos_per(ops, |n| nested(&la, &lb, n))),
            imp("spindle+checker", || {
                with_tracking(true, false, || nanos_per(tracked, |n| nested(&la, &lb, n)))
            }),
            imp("spindle+both", || {
                with_tracking(true, true, || nanos_per(tracked, |n| nested(&la, &lb, n)))
            }),
            imp("parking_lot", || {
                nanos_per(ops, |n| {
                    for _ in 0..n {
                        let ga = pa.lock();
                        let _gb = black_box(pb.lock());
                        drop(ga);
                    }
                })
            }),
        ],
    );

    b.case(
        "ordered_acquire_2",
        Unit::Nanos,
        vec![
            imp("spindle", || {
                nanos_per(ops, |n| {
                    for _ in 0..n {
                        let _g = black_box(lockorder::acquire((&lb, &la)).unwrap());
                    }
                })
            }),
            imp("spindle_2_locks", || {
                nanos_per(ops, |n| nested(&la, &lb, n))
            }),
            imp("parking_lot", || {
                nanos_per(ops, |n| {
                    for _ in 0..n {
                        let ga = pa.lock();
                        let _gb = black_box(pb.lock());
                        drop(ga);
                    }
                })
            }),
            imp("std", || {
                nanos_per(ops, |n| {
                    for _ in 0..n {
                        let ga = sa.lock().unwrap();
                        let _gb = black_box(sb.lock().unwrap());
                        drop(ga);
                    }
                })
            }),
            b.python("lockorder.py", "ordered_acquire_2"),
        ],
    );

    b.case(
        "contended_2t",
        Unit::Nanos,
        vec![
            imp("spindle", || {
                nanos_per(contended_ops, |n| contended(&la, n))
            }),
            imp("spindle+both", || {
                with_tracking(true, true, || {
                    nanos_per(contended_ops / 2, |n| contended(&la, n))
                })
            }),
            imp("parking_lot", || {
                nanos_per(contended_ops, |n| {
                    thread::scope(|s| {
                        for _ in 0..2 {
                            s.spawn(|| {
                                for _ in 0..n / 2 {
                                    let _g = black_box(pa.lock());
                                }
                            });
                        }
                    })
                })
            }),
        ],
    );
}
