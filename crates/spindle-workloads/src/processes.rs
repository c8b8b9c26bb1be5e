//! The process-pool mode of the workloads: each file is one task run in a
//! worker process, as the Python programs' `ProcessPoolExecutor().map` does; each
//! number's trial divisions are split in five tasks (see [`check_primes`]).
//!
//! The tasks are `#[spindle::task]` functions, so a worker started by the fork
//! server finds them by name; paths travel as raw bytes (any Unix path works).

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use spindle::futures::{Executor, MapFn};
use spindle::process::ProcessPoolExecutor;

use crate::primes;
use crate::robots::{self, Robots};

/// A path from the raw bytes [`raw`] made of it (any Unix path).
pub fn path_of(raw: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(raw))
}

/// Python's `find_robots(filename)` as a task.
#[spindle::task]
pub(crate) fn robots_file(path: Vec<u8>) -> Result<Robots, String> {
    robots::find_robots(&path_of(path)).map_err(|e| e.to_string())
}

/// Gunzip only, as a task: the decoder's limit with the same fan-out.
#[spindle::task]
pub(crate) fn decode_file(path: Vec<u8>) -> Result<u64, String> {
    robots::decode_only(&path_of(path)).map_err(|e| e.to_string())
}

/// Part of Python's `is_prime(n)` as a task: trial division of `n` by the
/// odd numbers in `lo..=hi`.
#[spindle::task]
pub(crate) fn has_odd_divisor(n: u64, lo: u64, hi: u64) -> bool {
    primes::has_odd_divisor(n, lo, hi)
}

/// The pool of `workers` processes (started by the fork server).
fn pool(workers: usize) -> Result<ProcessPoolExecutor, String> {
    ProcessPoolExecutor::builder()
        .max_workers(workers)
        .build()
        .map_err(|e| format!("cannot start the process pool: {e}"))
}

/// `pool.map(task, items)` collected in order; a lost worker or a failed
/// submission is an error.
fn map_all<A, F>(workers: usize, f: F, items: Vec<A>) -> Result<Vec<F::Output>, String>
where
    F: MapFn<A, ProcessPoolExecutor>,
    F::Error: std::fmt::Display,
{
    let pool = pool(workers)?;
    pool.map(f, items)
        .map_err(|e| format!("process pool: {e}"))?
        .map(|r| r.map_err(|e| format!("process pool: {e}")))
        .collect()
}

/// A path as raw bytes, to travel to a worker.
pub fn raw(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// `find_robots` per file in worker processes; one result per file, in order.
///
/// # Errors
///
/// The workers could not start or died.
pub fn find_all_robots(
    files: &[PathBuf],
    workers: usize,
) -> Result<Vec<Result<Robots, String>>, String> {
    map_all(
        workers,
        robots_file::call,
        files.iter().map(|p| raw(p)).collect(),
    )
}

/// Decode-only per file in worker processes.
///
/// # Errors
///
/// The first file that failed, or the pool's error.
pub fn decode_only(files: &[PathBuf], workers: usize) -> Result<Vec<u64>, String> {
    map_all(
        workers,
        decode_file::call,
        files.iter().map(|p| raw(p)).collect(),
    )?
    .into_iter()
    .zip(files)
    .map(|(r, p)| r.map_err(|e| format!("{}: {e}", p.display())))
    .collect()
}

/// The PRIMES check in worker processes, each number's trial divisions in
/// five tasks: the first eighth of the divisors, then — only if it found no
/// divisor — the rest in four parts of decreasing size (4:3:2:1).
///
/// Why not one task per number, as the Python program's `executor.map(is_prime,
/// PRIMES)`: its list is five primes of almost equal cost and one
/// composite, so on 2 workers one worker runs three primes while the other
/// runs two and the composite — a bound of 0.88 on the parallel efficiency
/// before any overhead (and 5 equal tasks leave one worker idle for the
/// last fifth of any run on an even number of cores). With a number's work
/// in pieces, the tail is short; with the pieces decreasing, the last
/// tasks in the queue are the smallest, so the workers end close together
/// whatever the first tasks left uneven (the composite's first part runs
/// longer than a prime's: four equal parts left one worker idle for a
/// whole part, ~2.5 ms, at the end of every run; measured 0.88–0.90 →
/// 0.90–0.93 efficiency in interleaved runs). The first eighth runs alone
/// so that a composite with a small factor (the list's 1099726899285419 =
/// 3306091 × 332636609, found in its first 10%) costs no more than in the
/// Python program: the rest of its range is never submitted. Numbers too small to be
/// worth a task are checked here.
///
/// # Errors
///
/// The workers could not start or died.
pub fn check_primes(numbers: &[u64], workers: usize) -> Result<Vec<bool>, String> {
    /// Below this many trial divisions a number is checked in this process.
    const DIRECT: u64 = 100_000;
    let pool = pool(workers)?;
    let (tx, rx) = std::sync::mpsc::channel::<(usize, bool, Result<bool, String>)>();
    let submit = |i: usize, first: bool, lo: u64, hi: u64| -> Result<(), String> {
        let fut = pool
            .submit(has_odd_divisor::call(numbers[i], lo, hi))
            .map_err(|e| format!("process pool: {e}"))?;
        let tx = tx.clone();
        fut.add_done_callback(move |f| {
            let r = f.result().map_err(|e| format!("process pool: {e}"));
            tx.send((i, first, r)).ok();
        });
        Ok(())
    };
    /// The rest of a number's range after its first eighth goes out in
    /// parts of these relative sizes.
    const REST: [u64; 4] = [4, 3, 2, 1];
    // Each number's first part is 3..=a; the rest, a+1..=r, is cut in REST.
    let split = |n: u64| {
        let r = n.isqrt();
        ((3 + r.saturating_sub(3) / 8).min(r), r)
    };
    let mut verdict: Vec<Option<bool>> = vec![None; numbers.len()];
    let mut parts_left = vec![0u64; numbers.len()];
    let mut running = 0usize;
    for (i, &n) in numbers.iter().enumerate() {
        if n < 3 || n.is_multiple_of(2) || n.isqrt() / 2 < DIRECT {
            verdict[i] = Some(primes::is_prime(n));
        } else {
            submit(i, true, 3, split(n).0)?;
            running += 1;
        }
    }
    while running > 0 {
        let (i, first, found) = rx
            .recv()
            .map_err(|_| "process pool: a result was lost".to_string())?;
        running -= 1;
        let found = found?;
        if found {
            verdict[i] = Some(false);
        } else if first {
            let (a, r) = split(numbers[i]);
            // Parts of decreasing size, so the last tasks in the queue are
            // the smallest and the workers finish close together.
            let (rest, total) = (r - a, REST.iter().sum::<u64>());
            let mut lo = a + 1;
            let mut share = 0;
            for w in REST {
                share += w;
                let hi = a + rest * share / total;
                if hi >= lo {
                    submit(i, false, lo, hi)?;
                    running += 1;
                    parts_left[i] += 1;
                    lo = hi + 1;
                }
            }
            if parts_left[i] == 0 {
                verdict[i] = Some(true);
            }
        } else {
            parts_left[i] -= 1;
            if parts_left[i] == 0 && verdict[i].is_none() {
                verdict[i] = Some(true);
            }
        }
    }
    Ok(verdict.into_iter().map(|v| v.unwrap_or(false)).collect())
}
