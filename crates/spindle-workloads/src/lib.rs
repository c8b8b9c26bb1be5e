//! Two CPU-bound workloads ported from Python, shared by the `spindle` command (`spindle
//! gen-logs`, `spindle robots`, `spindle primes`) and the benchmarks
//! (`spindle-bench pool`):
//!
//! - [`logs`]: deterministic Apache combined-log gzip files;
//! - [`robots`]: the Python Cookbook's `find_robots` (recipe 12.8) over them, byte for byte as Python
//!   reads them, on [`gz`] (whole-file gzip decoding with libdeflate) and a
//!   SIMD line scan;
//! - [`primes`]: the PRIMES check by trial division of Python's
//!   `concurrent.futures` documentation;
//! - [`processes`]: both as `#[spindle::task]`s for a process pool;
//! - [`Mode`], [`find_all_robots`], [`decode_all`], [`check_primes`]: a
//!   workload run serially, on a thread pool or on a process pool;
//! - [`progress`]: counters a run adds to as each file is done, for a
//!   caller's progress bar.
//!
//! All of the unsafe code of the workloads is here, in two modules: [`gz`]
//! (libdeflate's C API, `madvise`) and the private `fastscan` (SIMD
//! intrinsics). Every other module forbids unsafe code.

// Unsafe code only where a module allows it (`gz`, `fastscan`); the other
// modules forbid it outright.
#![deny(unsafe_code)]

mod exact;
mod fastscan;
pub mod gz;
pub mod logs;
mod mode;
pub mod primes;
pub mod processes;
pub mod progress;
pub mod robots;
#[cfg(test)]
mod testing;

pub use mode::{
    Mode, RobotsRun, check_primes, check_primes_with, decode_all, decode_all_with, default_workers,
    find_all_robots, run_robots,
};
pub use processes::{PoolOptions, PoolReport};
pub use progress::{Progress, bars_wanted};
