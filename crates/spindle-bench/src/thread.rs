//! Suite `thread`: the cost of `spindle::thread` beside std and Python's
//! `threading`.
//!
//! - `spawn_join`: start a thread running an empty closure and join it
//!   (µs each). spindle adds a registry entry and a joinable `Thread` to
//!   what std does.
//! - `local_access`: one read+write of a thread-local value (ns each):
//!   spindle's per-instance `Local<T>`, std's static `thread_local!`, and
//!   Python's `threading.local` attribute.
//! - `gil_countdown`: the classic GIL demonstration, `CountDown(N)` split
//!   over 2 threads (s);
//!   no GIL in Rust, so this is where real parallelism shows.

use std::cell::Cell;
use std::hint::black_box;

use spindle::thread::{self, Local};

use super::{Bench, Unit, imp, micros_per, seconds};

static LOCAL: Local<u64> = Local::new(|| 0);

thread_local! {
    static STD_LOCAL: Cell<u64> = const { Cell::new(0) };
}

fn count_down(mut n: u64) {
    while n > 0 {
        n = black_box(n) - 1;
    }
}

pub(crate) fn run(b: &mut Bench) {
    let quick = b.quick();

    let n = if quick { 500 } else { 2_000 };
    let python = b.python("thread.py", "spawn_join");
    b.case(
        "spawn_join",
        Unit::Micros,
        vec![
            imp("spindle", || {
                micros_per(n, |n| {
                    for _ in 0..n {
                        thread::spawn(|| black_box(1)).unwrap().join().unwrap();
                    }
                })
            }),
            imp("std", || {
                micros_per(n, |n| {
                    for _ in 0..n {
                        std::thread::spawn(|| black_box(1)).join().unwrap();
                    }
                })
            }),
            python,
        ],
    );

    let n = if quick { 2_000_000 } else { 10_000_000 };
    let python = b.python("thread.py", "local_access");
    b.case(
        "local_access",
        Unit::Nanos,
        vec![
            imp("spindle", || {
                micros_per(n, |n| {
                    for i in 0..n {
                        LOCAL.with(|x| *x = black_box(*x + i));
                    }
                }) * 1e3
            }),
            imp("std", || {
                micros_per(n, |n| {
                    for i in 0..n {
                        STD_LOCAL.with(|x| x.set(black_box(x.get() + i)));
                    }
                }) * 1e3
            }),
            python,
        ],
    );

    let n: u64 = if quick { 2_000_000 } else { 10_000_000 };
    let python = b.python("thread.py", "gil_countdown");
    b.case(
        "gil_countdown",
        Unit::Seconds,
        vec![
            imp("spindle", || {
                seconds(|| {
                    let t1 = thread::spawn(move || count_down(n / 2)).unwrap();
                    let t2 = thread::spawn(move || count_down(n / 2)).unwrap();
                    t1.join().unwrap();
                    t2.join().unwrap();
                })
            }),
            imp("std", || {
                seconds(|| {
                    std::thread::scope(|s| {
                        s.spawn(|| count_down(n / 2));
                        s.spawn(|| count_down(n / 2));
                    });
                })
            }),
            python,
        ],
    );
}
