//! The process-pool mode of the workloads: each file (or number) is one task
//! run in a worker process, as the seeds' `ProcessPoolExecutor().map` does.
//!
//! The tasks are `#[spindle::task]` functions, so a worker started by the fork
//! server finds them by name; paths travel as raw bytes (any Unix path works).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use spindle::futures::{Executor, MapFn};
use spindle::process::ProcessPoolExecutor;

use super::primes;
use super::robots::{self, Robots};

fn path_of(raw: Vec<u8>) -> PathBuf {
    PathBuf::from(OsString::from_vec(raw))
}

/// The seed's `find_robots(filename)` as a task.
#[spindle::task]
pub(crate) fn robots_file(path: Vec<u8>) -> Result<Robots, String> {
    robots::find_robots(&path_of(path)).map_err(|e| e.to_string())
}

/// Gunzip only, as a task: the decoder's limit with the same fan-out.
#[spindle::task]
pub(crate) fn decode_file(path: Vec<u8>) -> Result<u64, String> {
    robots::decode_only(&path_of(path)).map_err(|e| e.to_string())
}

/// The seed's `is_prime(n)` as a task.
#[spindle::task]
pub(crate) fn is_prime(n: u64) -> bool {
    primes::is_prime(n)
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

fn raw(p: &Path) -> Vec<u8> {
    p.as_os_str().as_bytes().to_vec()
}

/// `find_robots` per file in worker processes; one result per file, in order.
///
/// # Errors
///
/// The workers could not start or died.
pub(crate) fn find_all_robots(
    files: &[PathBuf],
    workers: usize,
) -> Result<Vec<Result<Robots, String>>, String> {
    map_all(
        workers,
        robots_file::task,
        files.iter().map(|p| raw(p)).collect(),
    )
}

/// Decode-only per file in worker processes.
///
/// # Errors
///
/// The first file that failed, or the pool's error.
pub(crate) fn decode_only(files: &[PathBuf], workers: usize) -> Result<Vec<u64>, String> {
    map_all(
        workers,
        decode_file::task,
        files.iter().map(|p| raw(p)).collect(),
    )?
    .into_iter()
    .zip(files)
    .map(|(r, p)| r.map_err(|e| format!("{}: {e}", p.display())))
    .collect()
}

/// The PRIMES check, one number per task in worker processes.
///
/// # Errors
///
/// The workers could not start or died.
pub(crate) fn check_primes(numbers: &[u64], workers: usize) -> Result<Vec<bool>, String> {
    map_all(workers, is_prime::task, numbers.to_vec())
}
