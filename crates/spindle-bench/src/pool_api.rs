//! Suite `pool` (per-task overhead of the process pools): `spindle::process::Pool`
//! and `ProcessPoolExecutor` beside Python's `multiprocessing.Pool` (impl
//! `python`) and `concurrent.futures.ProcessPoolExecutor` (impl `python-ppe`),
//! `bench/python/pool_api.py`, and procspawn's `Pool` (impl `procspawn`, the
//! Rust crate for running closures in a pool of processes: one `spawn` per
//! task, as its documentation shows, joined in order with at most
//! [`PROCSPAWN_WINDOW`] in flight — every handle holds two IPC channels, so
//! spawning 10,000 at once would run out of file descriptors; for
//! `map_chunk100` each spawn takes a chunk of 100, since procspawn has no
//! chunking of its own).
//!
//! Every pool has one worker per core and is started once, before the
//! rounds, so the figures measure task traffic, not process start-up.
//! `spindle` uses the default automatic prefetch; `spindle-prefetch` is the
//! same pool with a fixed `prefetch(4)` (see `ProcessPoolBuilder::prefetch`).

use std::hint::black_box;

use spindle::futures::{Executor, MapOptions};
use spindle::process::{Pool, ProcessPoolExecutor};

use super::{Bench, Unit, imp, micros_per, per_sec};

/// The tiny task of every case (Python's `tiny`).
#[spindle::task]
fn tiny(n: u64) -> u64 {
    n + 1
}

/// A task returning `n` bytes (Python's `big`: `b'\x07' * n`).
#[spindle::task]
fn big(n: u64) -> serde_bytes::ByteBuf {
    serde_bytes::ByteBuf::from(vec![7u8; n as usize])
}

/// `big` returning `SharedBytes`: the same bytes on the wire, read in place
/// from the result's sealed mapping by the parent instead of copied out.
#[spindle::task]
fn big_shared(n: u64) -> spindle::ipc::SharedBytes {
    spindle::ipc::SharedBytes::from(vec![7u8; n as usize])
}

/// `big` filling a `SharedBytesMut` in place (already shared memory) and
/// returning it frozen: handed to the parent by descriptor, never copied.
#[spindle::task]
fn big_mut(n: u64) -> spindle::ipc::SharedBytes {
    let mut b = spindle::ipc::SharedBytesMut::zeroed(n as usize).expect("shared memory");
    b.fill(7);
    b.freeze().expect("shared memory")
}

/// Size of each result of `large_result_256mib`.
const LARGE: u64 = 256 << 20;

/// At most this many procspawn tasks in flight (each holds 4 descriptors).
const PROCSPAWN_WINDOW: usize = 64;

/// procspawn's `map`: `f` over `items` on `pool`, in order.
pub(super) fn procspawn_map<A, R>(pool: &procspawn::Pool, items: Vec<A>, f: fn(A) -> R) -> Vec<R>
where
    A: serde::Serialize + serde::de::DeserializeOwned,
    R: serde::Serialize + serde::de::DeserializeOwned + Send + 'static,
{
    let mut out = Vec::with_capacity(items.len());
    let mut flight = std::collections::VecDeque::with_capacity(PROCSPAWN_WINDOW);
    for item in items {
        if flight.len() == PROCSPAWN_WINDOW {
            let h: procspawn::JoinHandle<R> = flight.pop_front().expect("in flight");
            out.push(h.join().expect("procspawn task"));
        }
        flight.push_back(pool.spawn(item, f));
    }
    for h in flight {
        out.push(h.join().expect("procspawn task"));
    }
    out
}

pub(crate) fn run(b: &mut Bench) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let quick = b.quick();
    let pool = Pool::new(cores).expect("a process pool");
    let fast = Pool::builder()
        .processes(cores)
        .prefetch(4)
        .build()
        .expect("a process pool");
    let ppe = ProcessPoolExecutor::builder()
        .max_workers(cores)
        .build()
        .expect("a process pool");
    let ps = procspawn::Pool::new(cores).expect("a procspawn pool");
    let n_map: u64 = if quick { 3_000 } else { 10_000 };

    let map = |p: &Pool, n: u64, chunksize: usize| {
        per_sec(n, |n| {
            let out = p
                .map_chunked(tiny::call, 0..n, chunksize)
                .expect("no failure");
            assert_eq!(out.last(), Some(&n));
            black_box(out);
        })
    };

    // map_chunk1: Pool.map of 10k tiny tasks, one per message.
    b.case(
        "map_chunk1",
        Unit::TasksPerSec,
        vec![
            imp("spindle", || map(&pool, n_map, 1)),
            imp("spindle-prefetch", || map(&fast, n_map, 1)),
            imp("spindle-ppe", || {
                per_sec(n_map, |n| {
                    let s: u64 = ppe
                        .map_with(tiny::call, 0..n, MapOptions::new().chunksize(1))
                        .expect("running")
                        .map(|r| r.expect("no failure"))
                        .sum();
                    black_box(s);
                })
            }),
            imp("procspawn", || {
                per_sec(n_map, |n| {
                    let out = procspawn_map(&ps, (0..n).collect(), |n: u64| n + 1);
                    assert_eq!(out.last(), Some(&n));
                    black_box(out);
                })
            }),
            b.python("pool_api.py", "map_chunk1"),
            b.python("pool_api.py", "map_chunk1_ppe")
                .named("python-ppe"),
        ],
    );

    // map_chunk100: the same with 100 items per message (ten times the items).
    b.case(
        "map_chunk100",
        Unit::TasksPerSec,
        vec![
            imp("spindle", || map(&pool, n_map * 10, 100)),
            imp("procspawn", || {
                per_sec(n_map * 10, |n| {
                    let chunks: Vec<Vec<u64>> = (0..n)
                        .collect::<Vec<u64>>()
                        .chunks(100)
                        .map(<[u64]>::to_vec)
                        .collect();
                    let out: Vec<Vec<u64>> = procspawn_map(&ps, chunks, |c: Vec<u64>| {
                        c.into_iter().map(|n| n + 1).collect()
                    });
                    assert_eq!(out.last().and_then(|c| c.last()), Some(&n));
                    black_box(out);
                })
            }),
            b.python("pool_api.py", "map_chunk100"),
        ],
    );

    // apply_async_roundtrip: apply_async(f, (i,)).get(), one at a time.
    let n_rt: u64 = if quick { 300 } else { 2_000 };
    b.case(
        "apply_async_roundtrip",
        Unit::Micros,
        vec![
            imp("spindle", || {
                micros_per(n_rt, |n| {
                    for i in 0..n {
                        let r = pool.apply_async(tiny::call(i)).expect("running");
                        assert_eq!(r.get(), Ok(i + 1));
                    }
                })
            }),
            imp("spindle-ppe", || {
                micros_per(n_rt, |n| {
                    for i in 0..n {
                        let f = ppe.submit(tiny::call(i)).expect("running");
                        assert_eq!(f.result(), Ok(i + 1));
                    }
                })
            }),
            imp("procspawn", || {
                micros_per(n_rt, |n| {
                    for i in 0..n {
                        let h = ps.spawn(i, |i: u64| i + 1);
                        assert_eq!(h.join().expect("procspawn task"), i + 1);
                    }
                })
            }),
            b.python("pool_api.py", "apply_async_roundtrip"),
            b.python("pool_api.py", "apply_async_roundtrip_ppe")
                .named("python-ppe"),
        ],
    );

    // large_result_256mib: Pool.apply of a task returning 256 MiB of bytes,
    // a few times per sample; bytes per second received. The result travels
    // in a sealed memfd (spindle) or pickled through the pipe (Python).
    // `spindle` decodes it into a `ByteBuf` (a copy out of the mapping, as
    // Python's unpickling copies), `spindle_shared` into an
    // `ipc::SharedBytes` read in place from the mapping, `spindle_mut`
    // fills an `ipc::SharedBytesMut` (already the shared memory) that goes
    // to the parent by descriptor: no copy on either side.
    let reps: u64 = if quick { 2 } else { 4 };
    b.case(
        "large_result_256mib",
        Unit::BytesPerSec,
        vec![
            imp("spindle", || large_results(&pool, reps, big::call)),
            imp("spindle_shared", || {
                large_results(&pool, reps, big_shared::call)
            }),
            imp("spindle_mut", || large_results(&pool, reps, big_mut::call)),
            b.python("pool_api.py", "large_result_256mib"),
        ],
    );
}

/// `reps` calls of `call(LARGE)` on `pool`, each result checked for its
/// length: bytes per second.
fn large_results<T>(pool: &Pool, reps: u64, call: fn(u64) -> spindle::process::Call<T>) -> f64
where
    T: spindle::process::Task,
    T::Output: AsRef<[u8]> + Clone + Send + 'static,
{
    per_sec(reps * LARGE, |_| {
        for _ in 0..reps {
            let out = pool.apply(call(LARGE)).expect("no failure");
            assert_eq!(out.as_ref().len() as u64, LARGE);
            black_box(out);
        }
    })
}
