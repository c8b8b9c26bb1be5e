//! The process-pool mode of the workloads: each file (or number) is one task
//! run in a worker process, as the seeds' `ProcessPoolExecutor().map` does.
//!
//! The tasks are `#[spindle::task]` functions, so a worker started by the fork
//! server finds them by name; paths travel as raw bytes (any Unix path works).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use spindle::ipc::Queue;
use spindle::process::Process;

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

/// One unit of work for a worker process.
#[derive(Debug, Serialize, Deserialize)]
enum Job {
    Robots(Vec<u8>),
    Decode(Vec<u8>),
    Prime(u64),
}

/// The answer to a [`Job`].
#[derive(Debug, Serialize, Deserialize)]
enum Done {
    Robots(Result<Robots, String>),
    Decode(Result<u64, String>),
    Prime(bool),
}

/// A worker process: runs jobs from `jobs` until it reads `None`.
#[spindle::task]
fn worker(jobs: Queue<Option<(usize, Job)>>, results: Queue<(usize, Done)>) {
    while let Ok(Some((i, job))) = jobs.get() {
        let done = match job {
            Job::Robots(p) => Done::Robots(robots_file(p)),
            Job::Decode(p) => Done::Decode(decode_file(p)),
            Job::Prime(n) => Done::Prime(is_prime(n)),
        };
        if results.put((i, done)).is_err() {
            break;
        }
    }
}

/// Runs `jobs` on `workers` worker processes; results in job order.
fn fan_out(jobs: Vec<Job>, workers: usize) -> Result<Vec<Done>, String> {
    let n = jobs.len();
    let inbox: Queue<Option<(usize, Job)>> = Queue::new().map_err(|e| format!("queue: {e}"))?;
    let outbox: Queue<(usize, Done)> = Queue::new().map_err(|e| format!("queue: {e}"))?;
    let mut procs = Vec::new();
    for _ in 0..workers.clamp(1, n.max(1)) {
        let p = Process::builder()
            .task(worker::call(inbox.clone(), outbox.clone()))
            .start()
            .map_err(|e| format!("cannot start a worker process: {e}"))?;
        procs.push(p);
    }
    for (i, job) in jobs.into_iter().enumerate() {
        inbox
            .put(Some((i, job)))
            .map_err(|_| "the job queue failed".to_owned())?;
    }
    for _ in 0..procs.len() {
        inbox
            .put(None)
            .map_err(|_| "the job queue failed".to_owned())?;
    }
    let mut out: Vec<Option<Done>> = (0..n).map(|_| None).collect();
    let mut got = 0;
    while got < n {
        match outbox.get_timeout(Duration::from_millis(200)) {
            Ok((i, done)) => {
                if let Some(slot) = out.get_mut(i)
                    && slot.is_none()
                {
                    *slot = Some(done);
                    got += 1;
                }
            }
            // Nothing yet: fail rather than hang if every worker is gone.
            Err(_) if procs.iter().all(|p| !p.is_alive()) && outbox.empty() => {
                return Err(format!(
                    "worker processes exited with {} of {n} results",
                    got
                ));
            }
            Err(_) => {}
        }
    }
    for p in &mut procs {
        let _ = p.join();
    }
    Ok(out.into_iter().flatten().collect())
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
    let jobs = files.iter().map(|p| Job::Robots(raw(p))).collect();
    Ok(fan_out(jobs, workers)?
        .into_iter()
        .map(|d| match d {
            Done::Robots(r) => r,
            other => Err(format!("unexpected answer {other:?}")),
        })
        .collect())
}

/// Decode-only per file in worker processes.
///
/// # Errors
///
/// The first file that failed, or the pool's error.
pub(crate) fn decode_only(files: &[PathBuf], workers: usize) -> Result<Vec<u64>, String> {
    let jobs = files.iter().map(|p| Job::Decode(raw(p))).collect();
    fan_out(jobs, workers)?
        .into_iter()
        .zip(files)
        .map(|(d, p)| match d {
            Done::Decode(r) => r.map_err(|e| format!("{}: {e}", p.display())),
            other => Err(format!("unexpected answer {other:?}")),
        })
        .collect()
}

/// The PRIMES check, one number per task in worker processes.
///
/// # Errors
///
/// The workers could not start or died.
pub(crate) fn check_primes(workers: usize) -> Result<Vec<bool>, String> {
    let jobs = primes::PRIMES.iter().map(|&n| Job::Prime(n)).collect();
    fan_out(jobs, workers)?
        .into_iter()
        .map(|d| match d {
            Done::Prime(b) => Ok(b),
            other => Err(format!("unexpected answer {other:?}")),
        })
        .collect()
}
