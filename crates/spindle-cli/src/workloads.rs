//! The workloads as commands: `gen-logs`, `robots` (the map-reduce over web
//! logs of the Python Cookbook, recipe 12.8) and `primes` (the PRIMES check of
//! the `ProcessPoolExecutor` example in Python's `concurrent.futures`
//! documentation), each in a serial, a thread-pool and a process-pool mode,
//! so the speedup is visible and comparable with the Python programs.
//! This module is the commands' text (arguments in, lines out); the
//! workloads themselves are the `spindle-workloads` crate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use spindle_workloads::{Mode, check_primes, decode_all, find_all_robots, logs, primes, robots};

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
        let total: u64 = match decode_all(&files, mode, workers) {
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

/// `spindle primes [--mode M] [--workers N] [--numbers N,..]`; no numbers
/// means the PRIMES list of Python's `concurrent.futures` documentation.
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
