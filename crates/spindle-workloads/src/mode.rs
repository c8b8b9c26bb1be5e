//! A workload in a [`Mode`]: serially, on spindle's `ThreadPoolExecutor`, or
//! on its `ProcessPoolExecutor`, so the speedup is visible and comparable with
//! the Python programs.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use spindle::futures::{Executor, ThreadPoolExecutor, fallible};

use crate::processes::{PoolOptions, PoolReport};
use crate::robots::{self, Robots};
use crate::{primes, processes};

/// How a workload spreads over the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Mode {
    /// One item after the other on the calling thread (the Python program's plain `map`).
    Serial,
    /// spindle's `ThreadPoolExecutor` (in Python the GIL makes this no
    /// faster; here it scales).
    Threads,
    /// spindle's `ProcessPoolExecutor`, one file or number per task (the
    /// Python program's `ProcessPoolExecutor().map`).
    Processes,
}

/// The default worker count: the machine's cores.
pub fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// The Python Cookbook's `find_all_robots`: `find_robots` over every file in `mode`,
/// merged. A file that cannot be read or decoded is an error naming it.
///
/// # Errors
///
/// `"<file>: <reason>"` for the first file that failed, or the pool's error.
pub fn find_all_robots(files: &[PathBuf], mode: Mode, workers: usize) -> Result<Robots, String> {
    run_robots(files, mode, workers, &PoolOptions::default()).map(|run| run.all)
}

/// A [`run_robots`]: the merged answer, each file's counts, and what the
/// process pool went through.
#[derive(Debug, Clone, Default)]
pub struct RobotsRun {
    /// Every file's hosts and counts, merged.
    pub all: Robots,
    /// `(lines, skipped)` of each file, in the order of the files.
    pub per_file: Vec<(u64, u64)>,
    /// Workers lost and tasks retried (`Mode::Processes` only).
    pub pool: PoolReport,
}

/// [`find_all_robots`] with the process pool's options (retries, an
/// observer of task starts), keeping each file's counts and the pool's
/// report.
///
/// # Errors
///
/// `"<file>: <reason>"` for the first file that failed (a task that kept
/// losing its worker past `opts.retries` among them), or the pool's error.
pub fn run_robots(
    files: &[PathBuf],
    mode: Mode,
    workers: usize,
    opts: &PoolOptions,
) -> Result<RobotsRun, String> {
    let mut run = RobotsRun::default();
    let progress = opts.progress.clone();
    // One file scanned, counted where it was scanned (a relaxed add).
    let find = move |p: &Path| {
        robots::find_robots_counted(p).map(|(r, bytes)| {
            if let Some(pr) = &progress {
                pr.add(bytes);
            }
            r
        })
    };
    let per_file: Vec<Result<Robots, String>> = match mode {
        Mode::Serial => files
            .iter()
            .map(|p| find(p).map_err(|e| e.to_string()))
            .collect(),
        Mode::Threads => {
            let pool = ThreadPoolExecutor::builder()
                .max_workers(workers)
                .build()
                .map_err(|e| e.to_string())?;
            pool.map(fallible(move |p: PathBuf| find(&p)), files.to_vec())
                .map_err(|e| format!("thread pool: {e}"))?
                .map(|r| r.map_err(|e| e.to_string()))
                .collect()
        }
        Mode::Processes => {
            let (per_file, report) = processes::find_all_robots(files, workers, opts)?;
            run.pool = report;
            per_file
        }
    };
    for (p, r) in files.iter().zip(per_file) {
        let r = r.map_err(|e| format!("{}: {e}", p.display()))?;
        run.per_file.push((r.lines, r.skipped));
        run.all.merge(r);
    }
    Ok(run)
}

/// Gunzips every file in `mode` and discards the text (the decoder's speed
/// limit with the same fan-out as [`find_all_robots`]); one decoded length
/// per file, in order.
///
/// # Errors
///
/// `"<file>: <reason>"` for the first file that failed, or the pool's error.
pub fn decode_all(files: &[PathBuf], mode: Mode, workers: usize) -> Result<Vec<u64>, String> {
    decode_all_with(files, mode, workers, &PoolOptions::default()).map(|(sizes, _)| sizes)
}

/// [`decode_all`] with the process pool's options, and its report.
///
/// # Errors
///
/// As [`decode_all`].
pub fn decode_all_with(
    files: &[PathBuf],
    mode: Mode,
    workers: usize,
    opts: &PoolOptions,
) -> Result<(Vec<u64>, PoolReport), String> {
    let none = |sizes| (sizes, PoolReport::default());
    let progress = opts.progress.clone();
    // One file decoded, counted where it was decoded (a relaxed add).
    let decode = move |p: &Path| {
        let bytes = robots::decode_only(p).map_err(|e| format!("{}: {e}", p.display()))?;
        if let Some(pr) = &progress {
            pr.add(bytes);
        }
        Ok::<u64, String>(bytes)
    };
    match mode {
        Mode::Serial => files
            .iter()
            .map(|p| decode(p))
            .collect::<Result<_, _>>()
            .map(none),
        Mode::Threads => {
            let pool = ThreadPoolExecutor::builder()
                .max_workers(workers)
                .build()
                .map_err(|e| e.to_string())?;
            pool.map(fallible(move |p: PathBuf| decode(&p)), files.to_vec())
                .map_err(|e| e.to_string())
                .and_then(|m| m.map(|r| r.map_err(|e| e.to_string())).collect())
                .map(none)
        }
        Mode::Processes => processes::decode_only(files, workers, opts),
    }
}

/// The PRIMES check of `numbers` in `mode`: one verdict per number,
/// in order.
///
/// # Errors
///
/// The pool's error (processes could not start, a worker died).
pub fn check_primes(numbers: &[u64], mode: Mode, workers: usize) -> Result<Vec<bool>, String> {
    check_primes_with(numbers, mode, workers, &PoolOptions::default()).map(|(v, _)| v)
}

/// [`check_primes`] with the process pool's options, and its report.
///
/// # Errors
///
/// As [`check_primes`]; a task that kept losing its worker past
/// `opts.retries` too.
pub fn check_primes_with(
    numbers: &[u64],
    mode: Mode,
    workers: usize,
    opts: &PoolOptions,
) -> Result<(Vec<bool>, PoolReport), String> {
    let none = |v| (v, PoolReport::default());
    match mode {
        Mode::Serial => Ok(none(numbers.iter().map(|&n| primes::is_prime(n)).collect())),
        Mode::Threads => {
            let pool = ThreadPoolExecutor::builder()
                .max_workers(workers)
                .build()
                .map_err(|e| e.to_string())?;
            pool.map(primes::is_prime, numbers.to_vec())
                .map_err(|e| format!("thread pool: {e}"))?
                .map(|r| r.map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()
                .map(none)
        }
        Mode::Processes => processes::check_primes(numbers, workers, opts),
    }
}
