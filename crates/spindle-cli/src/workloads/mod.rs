//! The seeds' workloads as commands: `gen-logs`, `robots`, `primes`, each in a
//! serial and a parallel mode so the speedup is visible.

pub(crate) mod logs;
pub(crate) mod primes;

use std::collections::HashSet;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use clap::ValueEnum;

/// How a workload spreads over the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// One item after the other on the calling thread (the seed's plain `map`).
    Serial,
    /// A pool of threads (in Python the GIL makes this no faster; here it scales).
    Threads,
}

/// The default worker count: the machine's cores.
pub(crate) fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Applies `f` to every item with `workers` threads taking items in order;
/// results come back in input order.
pub(crate) fn par_map<T: Sync, R: Send>(
    items: &[T],
    workers: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let mut out: Vec<(usize, R)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else {
                            return mine;
                        };
                        mine.push((i, f(item)));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("worker panicked"))
            .collect()
    });
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
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

/// `spindle robots DIR [--mode M] [--workers N] [--decode-only]`.
pub(crate) fn robots(dir: &Path, mode: Mode, workers: usize, decode_only: bool) -> ExitCode {
    let files = match logs::log_files(dir) {
        Ok(f) if !f.is_empty() => f,
        Ok(_) => {
            eprintln!("spindle robots: no *.log.gz files in {}", dir.display());
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("spindle robots: {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
    };
    let workers = if mode == Mode::Serial { 1 } else { workers };
    let t = Instant::now();
    if decode_only {
        let sizes = par_map(&files, workers, |p| logs::decode_only(p));
        let mut total = 0u64;
        for (p, r) in files.iter().zip(sizes) {
            match r {
                Ok(n) => total += n,
                Err(e) => {
                    eprintln!("spindle robots: {}: {e}", p.display());
                    return ExitCode::FAILURE;
                }
            }
        }
        let secs = t.elapsed().as_secs_f64();
        println!("decoded: {total} bytes");
        println!(
            "time: {secs:.3} s ({:.1} MB/s, {mode:?}, {workers} workers)",
            total as f64 / secs / 1e6
        );
        return ExitCode::SUCCESS;
    }
    let results = par_map(&files, workers, |p| logs::find_robots(p));
    let (mut all, mut lines, mut skipped) = (HashSet::new(), 0u64, 0u64);
    for (p, r) in files.iter().zip(results) {
        match r {
            Ok(fh) => {
                all.extend(fh.hosts);
                lines += fh.lines;
                skipped += fh.skipped;
            }
            Err(e) => {
                eprintln!("spindle robots: {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let (count, sha) = logs::fingerprint(&all);
    println!("hosts: {count}");
    println!("sha256: {sha}");
    println!(
        "time: {secs:.3} s ({mode:?}, {workers} workers, {} files, {lines} lines, {skipped} skipped)",
        files.len()
    );
    ExitCode::SUCCESS
}

/// `spindle primes [--mode M] [--workers N]`.
pub(crate) fn primes(mode: Mode, workers: usize) -> ExitCode {
    let workers = if mode == Mode::Serial { 1 } else { workers };
    let t = Instant::now();
    let verdicts = par_map(&primes::PRIMES, workers, |&n| primes::is_prime(n));
    let secs = t.elapsed().as_secs_f64();
    for (n, p) in primes::PRIMES.iter().zip(verdicts) {
        println!("{n} is prime? {p}");
    }
    println!("time: {secs:.3} s ({mode:?}, {workers} workers)");
    ExitCode::SUCCESS
}
