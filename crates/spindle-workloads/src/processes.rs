//! The process-pool mode of the workloads: each file is one task run in a
//! worker process, as the Python programs' `ProcessPoolExecutor().map` does; each
//! number's trial divisions are split in five tasks (see [`check_primes`]).
//!
//! The tasks are `#[spindle::task]` functions, so a worker started by the fork
//! server finds them by name; paths travel as raw bytes (any Unix path works).

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use spindle::futures::{Executor, FutureError, MapFn};
use spindle::process::ProcessPoolExecutor;
pub use spindle::process::TaskStart;

use crate::primes;
use crate::progress::Progress;
use crate::robots::{self, Robots};

/// A path from the raw bytes [`raw`] made of it (any Unix path).
pub fn path_of(raw: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(raw))
}

/// Python's `find_robots(filename)` as a task, with the bytes the file
/// decoded to (for the parent's progress report).
#[spindle::task]
pub(crate) fn robots_file(path: Vec<u8>) -> Result<(Robots, u64), String> {
    robots::find_robots_counted(&path_of(path)).map_err(|e| e.to_string())
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

/// How many times a task whose worker process died is run again by
/// default: the tasks only read files (or compute), so running one twice is
/// harmless.
pub const DEFAULT_RETRIES: u32 = 2;

/// An observer of task starts (see [`PoolOptions::on_task_start`]).
pub type OnTaskStart = Arc<dyn Fn(&TaskStart) + Send + Sync>;

/// Each item's outcome of a `map` (an `Err` naming why a task failed in the
/// pool), and the pool's report.
type Outcomes<T> = (Vec<Result<T, String>>, PoolReport);

/// How the process mode runs its pool, and (in every mode) where a run
/// reports its progress.
#[derive(Clone)]
pub struct PoolOptions {
    /// Re-run a task whose worker died up to this many times; a task that
    /// loses its worker once more fails the run with the reason.
    pub retries: u32,
    /// Told each time a task starts on a worker process, with its pid.
    pub on_task_start: Option<OnTaskStart>,
    /// Counted as each file is done, in every mode: `run_robots` and
    /// `decode_all_with` add one item and the file's decoded bytes (in the
    /// process mode as each result comes back to this process). See
    /// [`Progress`].
    pub progress: Option<Arc<Progress>>,
}

impl Default for PoolOptions {
    fn default() -> PoolOptions {
        PoolOptions {
            retries: DEFAULT_RETRIES,
            on_task_start: None,
            progress: None,
        }
    }
}

impl fmt::Debug for PoolOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PoolOptions")
            .field("retries", &self.retries)
            .field("on_task_start", &self.on_task_start.is_some())
            .field("progress", &self.progress)
            .finish()
    }
}

/// What a run's process pool went through: worker processes lost while
/// running a task, and tasks run again because of it. Both 0 in the serial
/// and thread modes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolReport {
    pub workers_lost: u64,
    pub tasks_retried: u64,
}

/// The pool of `workers` processes (started by the fork server).
fn pool(workers: usize, opts: &PoolOptions) -> Result<ProcessPoolExecutor, String> {
    let mut b = ProcessPoolExecutor::builder()
        .max_workers(workers)
        .retries(opts.retries);
    if let Some(hook) = opts.on_task_start.clone() {
        b = b.on_task_start(move |s| hook(s));
    }
    b.build()
        .map_err(|e| format!("cannot start the process pool: {e}"))
}

fn report(pool: &ProcessPoolExecutor) -> PoolReport {
    PoolReport {
        workers_lost: pool.workers_lost(),
        tasks_retried: pool.tasks_retried(),
    }
}

/// A task's failure as the run's error: a lost worker says the task kept
/// losing its worker past the retry limit.
fn task_error<E: fmt::Display>(e: &FutureError<E>, retries: u32) -> String {
    if e.is_worker_lost() && !e.is_task_timeout() {
        let times = u64::from(retries) + 1;
        let s = if times == 1 { "" } else { "s" };
        format!("process pool: {e}; the task lost its worker {times} time{s} (retries: {retries})")
    } else {
        format!("process pool: {e}")
    }
}

/// `pool.map(task, items)`: each item's outcome in order (a task that
/// failed in the pool is an `Err` naming why), and the pool's report; a
/// pool that cannot start or take the tasks is an error. Each outcome that
/// comes back is counted in `opts.progress`, with the bytes `bytes_of` it.
fn map_all<A, F>(
    workers: usize,
    opts: &PoolOptions,
    f: F,
    items: Vec<A>,
    bytes_of: fn(&F::Output) -> u64,
) -> Result<Outcomes<F::Output>, String>
where
    F: MapFn<A, ProcessPoolExecutor>,
    F::Error: fmt::Display,
{
    let pool = pool(workers, opts)?;
    let out = pool
        .map(f, items)
        .map_err(|e| format!("process pool: {e}"))?
        .map(|r| {
            if let (Some(p), Ok(v)) = (&opts.progress, &r) {
                p.add(bytes_of(v));
            }
            r.map_err(|e| task_error(&e, opts.retries))
        })
        .collect();
    Ok((out, report(&pool)))
}

/// A path as raw bytes, to travel to a worker.
pub fn raw(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// `find_robots` per file in worker processes; one result per file, in
/// order (a file whose task kept losing its worker is an `Err` saying so),
/// and the pool's report.
///
/// # Errors
///
/// The workers could not start.
pub fn find_all_robots(
    files: &[PathBuf],
    workers: usize,
    opts: &PoolOptions,
) -> Result<(Vec<Result<Robots, String>>, PoolReport), String> {
    let (out, report) = map_all(
        workers,
        opts,
        robots_file::call,
        files.iter().map(|p| raw(p)).collect(),
        |r| r.as_ref().map_or(0, |&(_, bytes)| bytes),
    )?;
    let out = out
        .into_iter()
        .map(|r| r.and_then(|r| r).map(|(robots, _)| robots))
        .collect();
    Ok((out, report))
}

/// Decode-only per file in worker processes, and the pool's report.
///
/// # Errors
///
/// `"<file>: <reason>"` for the first file that failed, or the pool's error.
pub fn decode_only(
    files: &[PathBuf],
    workers: usize,
    opts: &PoolOptions,
) -> Result<(Vec<u64>, PoolReport), String> {
    let (out, report) = map_all(
        workers,
        opts,
        decode_file::call,
        files.iter().map(|p| raw(p)).collect(),
        |r| r.as_ref().map_or(0, |&bytes| bytes),
    )?;
    let sizes = out
        .into_iter()
        .zip(files)
        .map(|(r, p)| {
            r.and_then(|r| r)
                .map_err(|e| format!("{}: {e}", p.display()))
        })
        .collect::<Result<_, _>>()?;
    Ok((sizes, report))
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
/// The workers could not start, or a task kept losing its worker (past
/// `opts.retries`).
pub fn check_primes(
    numbers: &[u64],
    workers: usize,
    opts: &PoolOptions,
) -> Result<(Vec<bool>, PoolReport), String> {
    /// Below this many trial divisions a number is checked in this process.
    const DIRECT: u64 = 100_000;
    let pool = pool(workers, opts)?;
    let (tx, rx) = std::sync::mpsc::channel::<(usize, bool, Result<bool, String>)>();
    let submit = |i: usize, first: bool, lo: u64, hi: u64| -> Result<(), String> {
        let fut = pool
            .submit(has_odd_divisor::call(numbers[i], lo, hi))
            .map_err(|e| format!("process pool: {e}"))?;
        let (tx, retries) = (tx.clone(), opts.retries);
        fut.add_done_callback(move |f| {
            let r = f.result().map_err(|e| task_error(&e, retries));
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
    let verdicts = verdict.into_iter().map(|v| v.unwrap_or(false)).collect();
    Ok((verdicts, report(&pool)))
}
