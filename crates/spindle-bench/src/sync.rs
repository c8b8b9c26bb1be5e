//! Suite `sync`: the synchronisation objects of `spindle::sync` beside
//! `std::sync`, `parking_lot` and Python's `threading` (bench/python/sync.py).
//!
//! Where `std`/`parking_lot` lack the object, the contender is what a Rust
//! programmer would write instead: a `Mutex<usize>` + `Condvar` semaphore, a
//! `Mutex<bool>` + `Condvar` event. `event_pingpong` also runs a
//! `std::thread::park`/`unpark` ping-pong (impl `thread_park`): the bare OS
//! wake-up path, a floor for any blocking ping-pong.

use super::{Bench, Unit, imp, micros_per, per_sec};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed, Ordering::SeqCst};
use std::thread;

/// A semaphore as std or parking_lot users write it.
struct MutexSemaphore<M, C> {
    count: M,
    cond: C,
}

/// An event as std or parking_lot users write it.
struct MutexEvent<M, C> {
    flag: M,
    cond: C,
}

type StdSem = MutexSemaphore<std::sync::Mutex<usize>, std::sync::Condvar>;
type PlSem = MutexSemaphore<parking_lot::Mutex<usize>, parking_lot::Condvar>;
type StdEvent = MutexEvent<std::sync::Mutex<bool>, std::sync::Condvar>;
type PlEvent = MutexEvent<parking_lot::Mutex<bool>, parking_lot::Condvar>;

impl StdSem {
    fn new(n: usize) -> Self {
        MutexSemaphore {
            count: std::sync::Mutex::new(n),
            cond: std::sync::Condvar::new(),
        }
    }
    fn acquire(&self) {
        let mut c = self.count.lock().unwrap();
        while *c == 0 {
            c = self.cond.wait(c).unwrap();
        }
        *c -= 1;
    }
    fn release(&self) {
        *self.count.lock().unwrap() += 1;
        self.cond.notify_one();
    }
}

impl PlSem {
    fn new(n: usize) -> Self {
        MutexSemaphore {
            count: parking_lot::Mutex::new(n),
            cond: parking_lot::Condvar::new(),
        }
    }
    fn acquire(&self) {
        let mut c = self.count.lock();
        while *c == 0 {
            self.cond.wait(&mut c);
        }
        *c -= 1;
    }
    fn release(&self) {
        *self.count.lock() += 1;
        self.cond.notify_one();
    }
}

impl StdEvent {
    fn new() -> Self {
        MutexEvent {
            flag: std::sync::Mutex::new(false),
            cond: std::sync::Condvar::new(),
        }
    }
    fn set(&self) {
        *self.flag.lock().unwrap() = true;
        self.cond.notify_all();
    }
    fn clear(&self) {
        *self.flag.lock().unwrap() = false;
    }
    fn wait(&self) {
        let mut f = self.flag.lock().unwrap();
        while !*f {
            f = self.cond.wait(f).unwrap();
        }
    }
}

impl PlEvent {
    fn new() -> Self {
        MutexEvent {
            flag: parking_lot::Mutex::new(false),
            cond: parking_lot::Condvar::new(),
        }
    }
    fn set(&self) {
        *self.flag.lock() = true;
        self.cond.notify_all();
    }
    fn clear(&self) {
        *self.flag.lock() = false;
    }
    fn wait(&self) {
        let mut f = self.flag.lock();
        while !*f {
            self.cond.wait(&mut f);
        }
    }
}

/// Two threads, `n` round trips: the partner answers every ping with a pong.
/// `ping(a)`/`pong` are given as set-and-wait pairs by each contender.
fn pingpong(n: u64, side_a: impl Fn() + Sync, side_b: impl Fn() + Sync) {
    thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..n {
                side_b();
            }
        });
        for _ in 0..n {
            side_a();
        }
    });
}

pub(crate) fn run(b: &mut Bench) {
    let q = b.quick();
    let ops: u64 = if q { 1_000_000 } else { 4_000_000 };
    let contended: u64 = if q { 200_000 } else { 1_000_000 };
    let trips: u64 = if q { 5_000 } else { 20_000 };

    // One thread: acquire + release of a free lock.
    let lock = spindle::sync::Lock::new();
    let std_m = std::sync::Mutex::new(());
    let pl_m = parking_lot::Mutex::new(());
    b.case(
        "lock_uncontended",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || {
                per_sec(ops, |n| {
                    for _ in 0..n {
                        let _g = black_box(lock.lock());
                    }
                })
            }),
            imp("std", || {
                per_sec(ops, |n| {
                    for _ in 0..n {
                        let _g = black_box(std_m.lock().unwrap());
                    }
                })
            }),
            imp("parking_lot", || {
                per_sec(ops, |n| {
                    for _ in 0..n {
                        let _g = black_box(pl_m.lock());
                    }
                })
            }),
            b.python("sync.py", "lock_uncontended"),
        ],
    );

    // Two threads incrementing one counter under one lock; ops = increments.
    let counter = AtomicU64::new(0);
    let std_c = std::sync::Mutex::new(0u64);
    let pl_c = parking_lot::Mutex::new(0u64);
    b.case(
        "lock_contended_2t",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || {
                per_sec(contended * 2, |_| {
                    thread::scope(|s| {
                        for _ in 0..2 {
                            s.spawn(|| {
                                for _ in 0..contended {
                                    let _g = lock.lock();
                                    counter.store(counter.load(Relaxed) + 1, Relaxed);
                                }
                            });
                        }
                    })
                })
            }),
            imp("std", || {
                per_sec(contended * 2, |_| {
                    thread::scope(|s| {
                        for _ in 0..2 {
                            s.spawn(|| {
                                for _ in 0..contended {
                                    *std_c.lock().unwrap() += 1;
                                }
                            });
                        }
                    })
                })
            }),
            imp("parking_lot", || {
                per_sec(contended * 2, |_| {
                    thread::scope(|s| {
                        for _ in 0..2 {
                            s.spawn(|| {
                                for _ in 0..contended {
                                    *pl_c.lock() += 1;
                                }
                            });
                        }
                    })
                })
            }),
            b.python("sync.py", "lock_contended_2t"),
        ],
    );
    black_box((counter.load(Relaxed), *pl_c.lock()));

    // One op: acquire, re-acquire, release, release (std has no stable
    // re-entrant lock).
    let rlock = spindle::sync::RLock::new();
    let pl_r = parking_lot::ReentrantMutex::new(());
    b.case(
        "rlock_reentrant",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || {
                per_sec(ops, |n| {
                    for _ in 0..n {
                        let a = rlock.lock();
                        let _g = black_box(rlock.lock());
                        drop(a);
                    }
                })
            }),
            imp("parking_lot", || {
                per_sec(ops, |n| {
                    for _ in 0..n {
                        let a = pl_r.lock();
                        let _g = black_box(pl_r.lock());
                        drop(a);
                    }
                })
            }),
            b.python("sync.py", "rlock_reentrant"),
        ],
    );

    // One thread: acquire + release of a semaphore with a free permit.
    let sem = spindle::sync::Semaphore::new(1);
    let std_s = StdSem::new(1);
    let pl_s = PlSem::new(1);
    b.case(
        "semaphore_uncontended",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || {
                per_sec(ops, |n| {
                    for _ in 0..n {
                        sem.acquire();
                        sem.release();
                    }
                })
            }),
            imp("std", || {
                per_sec(ops, |n| {
                    for _ in 0..n {
                        std_s.acquire();
                        std_s.release();
                    }
                })
            }),
            imp("parking_lot", || {
                per_sec(ops, |n| {
                    for _ in 0..n {
                        pl_s.acquire();
                        pl_s.release();
                    }
                })
            }),
            b.python("sync.py", "semaphore_uncontended"),
        ],
    );

    // Round trips between two threads over two events (wait, clear, set).
    b.case(
        "event_pingpong",
        Unit::Micros,
        vec![
            imp("spindle", || {
                let (ping, pong) = (spindle::sync::Event::new(), spindle::sync::Event::new());
                micros_per(trips, |n| {
                    pingpong(
                        n,
                        || {
                            ping.set();
                            pong.wait();
                            pong.clear();
                        },
                        || {
                            ping.wait();
                            ping.clear();
                            pong.set();
                        },
                    )
                })
            }),
            imp("std", || {
                let (ping, pong) = (StdEvent::new(), StdEvent::new());
                micros_per(trips, |n| {
                    pingpong(
                        n,
                        || {
                            ping.set();
                            pong.wait();
                            pong.clear();
                        },
                        || {
                            ping.wait();
                            ping.clear();
                            pong.set();
                        },
                    )
                })
            }),
            imp("parking_lot", || {
                let (ping, pong) = (PlEvent::new(), PlEvent::new());
                micros_per(trips, |n| {
                    pingpong(
                        n,
                        || {
                            ping.set();
                            pong.wait();
                            pong.clear();
                        },
                        || {
                            ping.wait();
                            ping.clear();
                            pong.set();
                        },
                    )
                })
            }),
            imp("thread_park", || micros_per(trips, park_pingpong)),
            b.python("sync.py", "event_pingpong"),
        ],
    );

    // Round trips between two threads over one condition and a turn variable.
    b.case(
        "condition_pingpong",
        Unit::Micros,
        vec![
            imp("spindle", || {
                let cond = spindle::sync::Condition::with_lock(std::sync::Arc::new(
                    spindle::sync::Lock::new(),
                ));
                let turn = AtomicU64::new(0);
                let side = |me: u64| {
                    let _g = cond.lock();
                    while turn.load(Relaxed) != me {
                        cond.wait().unwrap();
                    }
                    turn.store(1 - me, Relaxed);
                    cond.notify_one().unwrap();
                };
                micros_per(trips, |n| pingpong(n, || side(0), || side(1)))
            }),
            imp("std", || {
                let (m, c) = (std::sync::Mutex::new(0u64), std::sync::Condvar::new());
                let side = |me: u64| {
                    let mut t = m.lock().unwrap();
                    while *t != me {
                        t = c.wait(t).unwrap();
                    }
                    *t = 1 - me;
                    c.notify_one();
                };
                micros_per(trips, |n| pingpong(n, || side(0), || side(1)))
            }),
            imp("parking_lot", || {
                let (m, c) = (parking_lot::Mutex::new(0u64), parking_lot::Condvar::new());
                let side = |me: u64| {
                    let mut t = m.lock();
                    while *t != me {
                        c.wait(&mut t);
                    }
                    *t = 1 - me;
                    c.notify_one();
                };
                micros_per(trips, |n| pingpong(n, || side(0), || side(1)))
            }),
            b.python("sync.py", "condition_pingpong"),
        ],
    );
}

/// The OS floor: `thread::park`/`unpark` hand-offs with a flag per direction.
fn park_pingpong(n: u64) {
    let (ping, pong) = (AtomicBool::new(false), AtomicBool::new(false));
    let main = thread::current();
    thread::scope(|s| {
        let partner = s.spawn(|| {
            for _ in 0..n {
                while !ping.swap(false, SeqCst) {
                    thread::park();
                }
                pong.store(true, SeqCst);
                main.unpark();
            }
        });
        let other = partner.thread().clone();
        for _ in 0..n {
            ping.store(true, SeqCst);
            other.unpark();
            while !pong.swap(false, SeqCst) {
                thread::park();
            }
        }
    });
}
