//! Suite `sched`: `Scheduler` (enter then run many due events) and `Timer`
//! (start, cancel, join), beside a bare std `BinaryHeap` scheduler and Python's
//! `sched.scheduler` / `threading.Timer` (`bench/python/sched.py`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use spindle::sched::{Scheduler, Timer};

use super::{Bench, Unit, imp, per_sec};

pub(crate) fn run(b: &mut Bench) {
    let n: u64 = if b.quick() { 20_000 } else { 100_000 };
    b.case(
        "enter_run",
        Unit::ItemsPerSec,
        vec![
            imp("spindle", || per_sec(n, spindle_enter_run)),
            imp("std BinaryHeap (1 thread, no lock)", || {
                per_sec(n, heap_enter_run)
            }),
            b.python("sched.py", "enter_run"),
        ],
    );

    let timers: u64 = if b.quick() { 500 } else { 2_000 };
    b.case(
        "timer_start_cancel",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || per_sec(timers, timer_start_cancel)),
            b.python("sched.py", "timer_start_cancel"),
        ],
    );
}

/// Enters `n` events due now with priorities 0..9, then runs them all.
fn spindle_enter_run(n: u64) {
    let count = Arc::new(AtomicU64::new(0));
    let sched = Scheduler::new();
    let now = sched.now();
    for i in 0..n {
        let c = count.clone();
        sched.enterabs(now, (i % 10) as i64, move || {
            c.fetch_add(1, Ordering::Relaxed);
        });
    }
    sched.run().expect("no action panics");
    assert_eq!(count.load(Ordering::Relaxed), n);
}

type Job = Box<dyn FnOnce() + Send>;

/// The floor: the same ordering with a bare binary heap, no lock, no clock.
fn heap_enter_run(n: u64) {
    let count = Arc::new(AtomicU64::new(0));
    let mut heap: BinaryHeap<Reverse<(Instant, i64, u64)>> = BinaryHeap::new();
    let mut jobs: Vec<Option<Job>> = Vec::with_capacity(n as usize);
    let now = Instant::now();
    for i in 0..n {
        let c = count.clone();
        heap.push(Reverse((now, (i % 10) as i64, i)));
        jobs.push(Some(Box::new(move || {
            c.fetch_add(1, Ordering::Relaxed);
        })));
    }
    while let Some(Reverse((at, _, seq))) = heap.pop() {
        if at <= Instant::now()
            && let Some(job) = jobs[seq as usize].take()
        {
            job();
        }
    }
    assert_eq!(count.load(Ordering::Relaxed), n);
}

/// Starts `n` one-hour timers one after the other, cancelling and joining each.
fn timer_start_cancel(n: u64) {
    for _ in 0..n {
        let t = Timer::new(Duration::from_secs(3600), || {});
        t.start().expect("spawn the timer thread");
        assert!(t.cancel());
        t.join().expect("joined");
    }
}
