//! The seeds' workloads as commands: `gen-logs`, `robots` (seed 000 §7) and
//! `primes` (seed 002), each in a serial, a thread-pool and a process-pool
//! mode, so the speedup is visible and comparable with the seeds' Python.

mod fastscan;
pub(crate) mod gz;
pub(crate) mod logs;
pub(crate) mod primes;
pub(crate) mod processes;
pub(crate) mod robots;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::ValueEnum;
use spindle::futures::{Executor, ThreadPoolExecutor, fallible};

use robots::Robots;

/// How a workload spreads over the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// One item after the other on the calling thread (the seed's plain `map`).
    Serial,
    /// spindle's `ThreadPoolExecutor` (in Python the GIL makes this no
    /// faster; here it scales).
    Threads,
    /// spindle's `ProcessPoolExecutor`, one file or number per task (the
    /// seed's `ProcessPoolExecutor().map`).
    Processes,
}

/// The default worker count: the machine's cores.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// `spindle gen-logs DIR --files N --lines M --seed S`.
pub(crate) fn gen_logs(dir: &Path, files: u32, lines: u64, seed: u64) -> ExitCode {
    let t = Instant::now();
    match logs::generate(dir, files, lines, seed) {
        Ok(paths) => {
            println!(
                "wrote {} files of {lines} lines to {} in {:.2} s",
                paths.len(),
                dir.display(),
                t.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spindle gen-logs: {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// The seed's `find_all_robots`: `find_robots` over every file in `mode`,
/// merged. A file that cannot be read or decoded is an error naming it.
///
/// # Errors
///
/// `"<file>: <reason>"` for the first file that failed, or the pool's error.
pub(crate) fn find_all_robots(
    files: &[PathBuf],
    mode: Mode,
    workers: usize,
) -> Result<Robots, String> {
    let mut all = Robots::default();
    let per_file: Vec<Result<Robots, String>> = match mode {
        Mode::Serial => files
            .iter()
            .map(|p| robots::find_robots(p).map_err(|e| e.to_string()))
            .collect(),
        Mode::Threads => {
            let pool = ThreadPoolExecutor::builder().max_workers(workers).build();
            pool.map(
                fallible(|p: PathBuf| robots::find_robots(&p)),
                files.to_vec(),
            )
            .map_err(|e| format!("thread pool: {e}"))?
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
        }
        Mode::Processes => processes::find_all_robots(files, workers)?,
    };
    for (p, r) in files.iter().zip(per_file) {
        all.merge(r.map_err(|e| format!("{}: {e}", p.display()))?);
    }
    Ok(all)
}

fn robots_files(dir: &Path) -> Result<Vec<PathBuf>, String> {
    match robots::log_files(dir) {
        Ok(f) if !f.is_empty() => Ok(f),
        Ok(_) => Err(format!("no *.log.gz files in {}", dir.display())),
        Err(e) => Err(format!("{}: {e}", dir.display())),
    }
}

/// `spindle robots DIR [--mode M] [--workers N] [--decode-only]`.
pub(crate) fn robots(dir: &Path, mode: Mode, workers: usize, decode_only: bool) -> ExitCode {
    let files = match robots_files(dir) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("spindle robots: {e}");
            return ExitCode::FAILURE;
        }
    };
    let workers = if mode == Mode::Serial {
        1
    } else {
        workers.max(1)
    };
    let t = Instant::now();
    if decode_only {
        let total: Result<Vec<u64>, String> = match mode {
            Mode::Serial => files
                .iter()
                .map(|p| robots::decode_only(p).map_err(|e| format!("{}: {e}", p.display())))
                .collect(),
            Mode::Threads => {
                let pool = ThreadPoolExecutor::builder().max_workers(workers).build();
                pool.map(
                    fallible(|p: PathBuf| {
                        robots::decode_only(&p).map_err(|e| format!("{}: {e}", p.display()))
                    }),
                    files.clone(),
                )
                .map_err(|e| e.to_string())
                .and_then(|m| m.map(|r| r.map_err(|e| e.to_string())).collect())
            }
            Mode::Processes => processes::decode_only(&files, workers),
        };
        let total: u64 = match total {
            Ok(v) => v.iter().sum(),
            Err(e) => {
                eprintln!("spindle robots: {e}");
                return ExitCode::FAILURE;
            }
        };
        let secs = t.elapsed().as_secs_f64();
        println!("decoded: {total} bytes");
        println!(
            "time: {secs:.3} s ({:.1} MB/s, {mode:?}, {workers} workers)",
            total as f64 / secs / 1e6
        );
        return ExitCode::SUCCESS;
    }
    match find_all_robots(&files, mode, workers) {
        Ok(all) => {
            let secs = t.elapsed().as_secs_f64();
            let (count, sha) = robots::fingerprint(&all.hosts);
            println!("hosts: {count}");
            println!("sha256: {sha}");
            // Exactly two answer lines (as the Python program prints), then
            // the timing with the line counts.
            println!(
                "time: {secs:.3} s ({mode:?}, {workers} workers, {} files, {} lines, {} skipped)",
                files.len(),
                all.lines,
                all.skipped
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spindle robots: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The seed's PRIMES check of `numbers` in `mode`: one verdict per number,
/// in order.
///
/// # Errors
///
/// The pool's error (processes could not start, a worker died).
pub(crate) fn check_primes(
    numbers: &[u64],
    mode: Mode,
    workers: usize,
) -> Result<Vec<bool>, String> {
    match mode {
        Mode::Serial => Ok(numbers.iter().map(|&n| primes::is_prime(n)).collect()),
        Mode::Threads => {
            let pool = ThreadPoolExecutor::builder().max_workers(workers).build();
            pool.map(primes::is_prime, numbers.to_vec())
                .map_err(|e| format!("thread pool: {e}"))?
                .map(|r| r.map_err(|e| e.to_string()))
                .collect()
        }
        Mode::Processes => processes::check_primes(numbers, workers),
    }
}

/// `spindle primes [--mode M] [--workers N] [--numbers N,..]`; no numbers
/// means the seed's PRIMES.
pub(crate) fn primes(mode: Mode, workers: usize, numbers: &[u64]) -> ExitCode {
    let numbers = if numbers.is_empty() {
        &primes::PRIMES[..]
    } else {
        numbers
    };
    let workers = if mode == Mode::Serial {
        1
    } else {
        workers.max(1)
    };
    let t = Instant::now();
    let verdicts = match check_primes(numbers, mode, workers) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("spindle primes: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs = t.elapsed().as_secs_f64();
    for (n, p) in numbers.iter().zip(verdicts) {
        println!("{n} is prime? {p}");
    }
    println!("time: {secs:.3} s ({mode:?}, {workers} workers)");
    ExitCode::SUCCESS
}
