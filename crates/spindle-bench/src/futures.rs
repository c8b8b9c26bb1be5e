//! Suite `futures`: `spindle::futures::ThreadPoolExecutor` beside rayon
//! (spawn and a channel; `par_iter` for map), the `threadpool` crate (execute
//! and a channel) and Python's `concurrent.futures.ThreadPoolExecutor`
//! (`bench/python/futures.py`).
//!
//! Every Rust pool has one worker per core and is built once, before the
//! rounds, so the figures measure task traffic, not thread start-up.

use std::hint::black_box;
use std::time::Instant;

use spindle::futures::{Executor, MapOptions, ThreadPoolExecutor};

use super::{Bench, Unit, imp, micros_per, per_sec, seconds};
use spindle_workloads::primes::{PRIMES, is_prime};

pub(crate) fn run(b: &mut Bench) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let spindle_pool = ThreadPoolExecutor::builder()
        .max_workers(cores)
        .build()
        .unwrap();
    // The same pool timing each task for `stats()` (`task_timing`): the
    // cost of the two clock reads, case `roundtrip`.
    let timed_pool = ThreadPoolExecutor::builder()
        .max_workers(cores)
        .task_timing(true)
        .build()
        .unwrap();
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build()
        .expect("a rayon pool");
    let tp = threadpool::ThreadPool::new(cores);
    let quick = b.quick();

    // submit_wait_100k: submit N no-op tasks, then wait for every result.
    let n: u64 = if quick { 20_000 } else { 100_000 };
    b.case(
        "submit_wait_100k",
        Unit::TasksPerSec,
        vec![
            imp("spindle", || {
                per_sec(n, |n| {
                    let fs: Vec<_> = (0..n)
                        .map(|i| spindle_pool.submit(move || black_box(i)).expect("open"))
                        .collect();
                    for f in fs {
                        black_box(f.into_result().expect("no failure"));
                    }
                })
            }),
            imp("rayon", || {
                per_sec(n, |n| {
                    let (tx, rx) = crossbeam_channel::unbounded();
                    for i in 0..n {
                        let tx = tx.clone();
                        rayon_pool.spawn(move || tx.send(black_box(i)).expect("receiver alive"));
                    }
                    drop(tx);
                    for v in rx.iter() {
                        black_box(v);
                    }
                })
            }),
            imp("threadpool", || {
                per_sec(n, |n| {
                    let (tx, rx) = crossbeam_channel::unbounded();
                    for i in 0..n {
                        let tx = tx.clone();
                        tp.execute(move || tx.send(black_box(i)).expect("receiver alive"));
                    }
                    drop(tx);
                    for v in rx.iter() {
                        black_box(v);
                    }
                })
            }),
            b.python("futures.py", "submit_wait_100k"),
        ],
    );

    // roundtrip: submit one task and block on its result, one at a time.
    let n: u64 = if quick { 2_000 } else { 10_000 };
    b.case(
        "roundtrip",
        Unit::Micros,
        vec![
            imp("spindle", || {
                micros_per(n, |n| {
                    for i in 0..n {
                        let f = spindle_pool.submit(move || black_box(i)).expect("open");
                        black_box(f.into_result().expect("no failure"));
                    }
                })
            }),
            imp("spindle-timed", || {
                micros_per(n, |n| {
                    for i in 0..n {
                        let f = timed_pool.submit(move || black_box(i)).expect("open");
                        black_box(f.into_result().expect("no failure"));
                    }
                })
            }),
            imp("rayon", || {
                micros_per(n, |n| {
                    for i in 0..n {
                        let (tx, rx) = crossbeam_channel::bounded(1);
                        rayon_pool.spawn(move || tx.send(black_box(i)).expect("receiver alive"));
                        black_box(rx.recv().expect("a value"));
                    }
                })
            }),
            imp("threadpool", || {
                micros_per(n, |n| {
                    for i in 0..n {
                        let (tx, rx) = crossbeam_channel::bounded(1);
                        tp.execute(move || tx.send(black_box(i)).expect("receiver alive"));
                        black_box(rx.recv().expect("a value"));
                    }
                })
            }),
            b.python("futures.py", "roundtrip"),
        ],
    );

    // map_1m: a cheap function over 1M items, results in input order. Each
    // contender in its natural form: spindle's map with chunks of 1024,
    // rayon's par_iter, threadpool with 1024-item chunks over a channel.
    let n: u64 = if quick { 200_000 } else { 1_000_000 };
    const CHUNK: u64 = 1024;
    b.case(
        "map_1m",
        Unit::ItemsPerSec,
        vec![
            imp("spindle", || {
                per_sec(n, |n| {
                    let opts = MapOptions::new().chunksize(CHUNK as usize);
                    let sum: u64 = spindle_pool
                        .map_with(|x: u64| x.wrapping_mul(x) ^ 0x5bd1, 0..n, opts)
                        .expect("open")
                        .map(|r| r.expect("no failure"))
                        .fold(0, u64::wrapping_add);
                    black_box(sum);
                })
            }),
            imp("rayon", || {
                use rayon::prelude::*;
                per_sec(n, |n| {
                    let v: Vec<u64> = rayon_pool.install(|| {
                        (0..n)
                            .into_par_iter()
                            .map(|x| x.wrapping_mul(x) ^ 0x5bd1)
                            .collect()
                    });
                    black_box(v.iter().fold(0, |a: u64, &b| a.wrapping_add(b)));
                })
            }),
            imp("threadpool", || {
                per_sec(n, |n| {
                    let (tx, rx) = crossbeam_channel::unbounded();
                    let chunks = n.div_ceil(CHUNK);
                    for c in 0..chunks {
                        let tx = tx.clone();
                        tp.execute(move || {
                            let lo = c * CHUNK;
                            let v: Vec<u64> = (lo..(lo + CHUNK).min(n))
                                .map(|x| x.wrapping_mul(x) ^ 0x5bd1)
                                .collect();
                            tx.send((c, v)).expect("receiver alive");
                        });
                    }
                    drop(tx);
                    let mut parts: Vec<(u64, Vec<u64>)> = rx.iter().collect();
                    parts.sort_by_key(|p| p.0);
                    let sum = parts
                        .iter()
                        .flat_map(|p| &p.1)
                        .fold(0, |a: u64, &b| a.wrapping_add(b));
                    black_box(sum);
                })
            }),
            b.python("futures.py", "map_1m"),
        ],
    );

    // primes: the PRIMES list of Python's concurrent.futures docs, one task per number, in seconds per
    // list. The Rust contenders check the list REPEAT times per sample (more
    // tasks than cores, and a sample long enough to time on a busy machine)
    // and divide; Python, bound by the GIL either way, checks it once.
    // `serial` is the plain loop: spindle's ratio to it is the speedup.
    const REPEAT: usize = 4;
    let numbers: Vec<u64> = PRIMES
        .iter()
        .copied()
        .cycle()
        .take(REPEAT * PRIMES.len())
        .collect();
    let per_list = |secs: f64| secs / REPEAT as f64;
    b.case(
        "primes",
        Unit::Seconds,
        vec![
            imp("spindle", || {
                per_list(seconds(|| {
                    let v: Vec<bool> = spindle_pool
                        .map(is_prime, numbers.iter().copied())
                        .expect("open")
                        .map(|r| r.expect("no failure"))
                        .collect();
                    black_box(v);
                }))
            }),
            imp("rayon", || {
                use rayon::prelude::*;
                per_list(seconds(|| {
                    let v: Vec<bool> = rayon_pool.install(|| {
                        numbers
                            .par_iter()
                            .with_max_len(1)
                            .map(|&n| is_prime(n))
                            .collect()
                    });
                    black_box(v);
                }))
            }),
            imp("threadpool", || {
                per_list(seconds(|| {
                    let (tx, rx) = crossbeam_channel::unbounded();
                    for (i, &n) in numbers.iter().enumerate() {
                        let tx = tx.clone();
                        tp.execute(move || tx.send((i, is_prime(n))).expect("receiver alive"));
                    }
                    drop(tx);
                    let mut v: Vec<(usize, bool)> = rx.iter().collect();
                    v.sort_unstable();
                    black_box(v);
                }))
            }),
            imp("serial", || {
                let t = Instant::now();
                let v: Vec<bool> = numbers.iter().map(|&n| is_prime(black_box(n))).collect();
                black_box(v);
                per_list(t.elapsed().as_secs_f64())
            }),
            b.python("futures.py", "primes"),
        ],
    );
}
