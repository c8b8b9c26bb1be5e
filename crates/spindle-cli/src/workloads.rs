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

use spindle_workloads::{
    Mode, PoolOptions, PoolReport, bars_wanted, check_primes_with, decode_all_with, logs, primes,
    robots, run_robots,
};

use crate::progress::{Counts, Watch};

/// `spindle gen-logs DIR --files N --lines M --seed S`, with a bar of the
/// files written on stderr (see [`crate::progress`]).
pub(crate) fn gen_logs(
    dir: &Path,
    files: u32,
    lines: u64,
    seed: u64,
    no_progress: bool,
) -> ExitCode {
    let t = Instant::now();
    let watch = Watch::new(
        bars_wanted(no_progress),
        u64::from(files),
        Counts::FilesWritten,
    );
    let written = logs::generate_with(dir, files, lines, seed, Some(&watch.progress()));
    watch.finish();
    match written {
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
            // `e` names the file that failed (or the directory).
            eprintln!("spindle gen-logs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `what` on stderr as a warning, or, with `strict`, as an error;
/// returns whether it was an error.
fn warn(strict: bool, what: &str) -> bool {
    if strict {
        eprintln!("spindle robots: {what}");
    } else {
        eprintln!("spindle robots: warning: {what}");
    }
    strict
}

/// The files to read: the regular `*.log.gz` files of `dir`; the other
/// `*.log.gz` names are warned about (errors with `strict`).
fn robots_files(dir: &Path, strict: bool) -> Result<Vec<PathBuf>, String> {
    let found = robots::scan_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut failed = false;
    for (p, what) in &found.skipped {
        failed |= warn(
            strict,
            &format!("{}: skipped, not a regular file: {what}", p.display()),
        );
    }
    if failed {
        return Err("skipped files are errors with --strict".into());
    }
    if found.files.is_empty() {
        return Err(format!("no *.log.gz files in {}", dir.display()));
    }
    Ok(found.files)
}

/// Says on stderr what the process pool went through, if anything.
fn report_pool(command: &str, r: PoolReport) {
    if r != PoolReport::default() {
        eprintln!(
            "spindle {command}: {} worker process{} lost, {} task{} retried",
            r.workers_lost,
            if r.workers_lost == 1 { "" } else { "es" },
            r.tasks_retried,
            if r.tasks_retried == 1 { "" } else { "s" },
        );
    }
}

/// More than this share of a file's lines skipped is worth a warning: a
/// generated log has at most 3 malformed lines, a real one a handful.
const SKIPPED_WARN_PERCENT: u64 = 1;

/// `spindle robots DIR [--mode M] [--workers N] [--decode-only] [--strict]
/// [--retries N] [--verbose]`, with a bar of the files done and the bytes
/// decoded on stderr (see [`crate::progress`]).
pub(crate) fn robots(
    dir: &Path,
    mode: Mode,
    workers: usize,
    decode_only: bool,
    strict: bool,
    no_progress: bool,
    opts: &PoolOptions,
) -> ExitCode {
    let files = match robots_files(dir, strict) {
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
    let watch = Watch::new(
        bars_wanted(no_progress),
        files.len() as u64,
        Counts::FilesDecoded,
    );
    let opts = &PoolOptions {
        progress: Some(watch.progress()),
        ..opts.clone()
    };
    let t = Instant::now();
    if decode_only {
        let decoded = decode_all_with(&files, mode, workers, opts);
        watch.finish();
        let total: u64 = match decoded {
            Ok((v, report)) => {
                report_pool("robots", report);
                v.iter().sum()
            }
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
    let run = run_robots(&files, mode, workers, opts);
    watch.finish();
    let run = match run {
        Ok(run) => run,
        Err(e) => {
            eprintln!("spindle robots: {e}");
            return ExitCode::FAILURE;
        }
    };
    let secs = t.elapsed().as_secs_f64();
    report_pool("robots", run.pool);
    let mut failed = false;
    for (p, &(lines, skipped)) in files.iter().zip(&run.per_file) {
        if skipped * 100 > lines * SKIPPED_WARN_PERCENT {
            failed |= warn(
                strict,
                &format!(
                    "{}: {skipped} of {lines} lines skipped ({:.1}%, more than \
                     {SKIPPED_WARN_PERCENT}%): not a web log?",
                    p.display(),
                    skipped as f64 * 100.0 / lines as f64
                ),
            );
        }
    }
    if failed {
        eprintln!("spindle robots: files with too many skipped lines are errors with --strict");
        return ExitCode::FAILURE;
    }
    let (count, sha) = robots::fingerprint(&run.all.hosts);
    println!("hosts: {count}");
    println!("sha256: {sha}");
    // Exactly two answer lines (as the Python program prints), then
    // the timing with the line counts.
    println!(
        "time: {secs:.3} s ({mode:?}, {workers} workers, {} files, {} lines, {} skipped)",
        files.len(),
        run.all.lines,
        run.all.skipped
    );
    ExitCode::SUCCESS
}

/// `spindle primes [--mode M] [--workers N] [--numbers N,..] [--retries N]
/// [--verbose]`; no numbers means the PRIMES list of Python's
/// `concurrent.futures` documentation.
pub(crate) fn primes(mode: Mode, workers: usize, numbers: &[u64], opts: &PoolOptions) -> ExitCode {
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
    let verdicts = match check_primes_with(numbers, mode, workers, opts) {
        Ok((v, report)) => {
            report_pool("primes", report);
            v
        }
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
