//! Suite `pool`, its first cases (see `pool_suite` in main.rs): two CPU-bound
//! workloads on spindle's `ProcessPoolExecutor`, beside the Python programs
//! they port, on the same data in the same run.
//!
//! - `robots` (the Python Cookbook's map-reduce, recipe 12.8): which hosts
//!   asked for `/robots.txt` in gzip logs that `spindle gen-logs` writes once
//!   into a temporary directory.
//! - `primes` (the `ProcessPoolExecutor` example of Python's
//!   `concurrent.futures` documentation): trial division of its PRIMES list.
//!
//! Contenders: `spindle` (process mode, one file per task, each number's
//! trial divisions in five tasks (see `spindle_workloads::processes::check_primes`),
//! the pool started inside the timing as the Python program's `with
//! ProcessPoolExecutor()` is),
//! `spindle-serial` (the same work on one thread: the base of the parallel
//! efficiency), `rayon` (the Rust peer for the same job: a work-stealing
//! thread pool running the same per-file function), `procspawn` (the Rust
//! crate's process `Pool`, started inside the timing too, one task per file
//! or number) and `python`
//! (`bench/python/robots.py DIR processes`, `bench/python/primes.py
//! processes`). `robots` also times two references rather than contenders,
//! both on one core, interleaved with the others so that they see the same
//! machine: `gzip-decode-only`, the same files gunzipped by the decoder
//! spindle uses (libdeflate: decode, then its CRC-32 pass) and the text
//! discarded — the "decode-only limit" — and `inflate-only`, the
//! DEFLATE data alone with no CRC check, the floor under any reading.
//! Every answer is checked against the serial one, so a fast wrong answer
//! cannot win. After each case a note on stderr gives
//! the parallel efficiency (speedup over `spindle-serial` / cores) and, for
//! `robots`, how close it comes to cores × the gzip decoder's own speed.

use std::cell::RefCell;
use std::path::PathBuf;
use std::process::Command;

use rayon::prelude::*;

use super::{Bench, Impl, Unit, imp, median, python_dir, seconds};
use spindle_workloads::{self as workloads, Mode, logs, primes, processes, robots};

/// A Python program run as is: `python3 bench/python/SCRIPT
/// ARGS..`; its last line is its own timing in seconds, and the lines before
/// must contain every line of `expect` (the answer, checked).
fn python_program<'a>(b: &Bench, script: &str, args: Vec<String>, expect: Vec<String>) -> Impl<'a> {
    let python = b.python.clone().unwrap_or_default();
    let path = python_dir().join(script);
    Impl {
        name: "python".to_owned(),
        warm_up: false,
        available: b.python.is_some(),
        sample: Box::new(move || {
            let out = Command::new(&python)
                .arg(&path)
                .args(&args)
                .output()
                .map_err(|e| format!("cannot run {python:?}: {e}"))?;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                return Err(format!(
                    "{} failed: {}",
                    path.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            for want in &expect {
                if !stdout.lines().any(|l| l.trim() == want) {
                    return Err(format!("{} did not print {want:?}", path.display()));
                }
            }
            let last = stdout
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            last.trim()
                .parse::<f64>()
                .map_err(|_| format!("{} printed {last:?}, not seconds", path.display()))
        }),
    }
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Parallel efficiency and (for robots) the share of the decoder limit.
fn note(
    case: &str,
    serial: &RefCell<Vec<f64>>,
    parallel: &RefCell<Vec<f64>>,
    cores: usize,
) -> Option<f64> {
    // The closures also recorded the untimed warm-up sample, first: skipped,
    // so these are the medians the table shows.
    let s = median(serial.borrow_mut().get_mut(1..)?)?;
    let p = median(parallel.borrow_mut().get_mut(1..)?)?;
    let eff = s / p / cores as f64;
    eprintln!(
        "note {case}: parallel efficiency {eff:.2} (spindle-serial {s:.3} s / spindle {p:.3} s / {cores} cores)"
    );
    Some(p)
}

pub(crate) fn run(b: &mut Bench) {
    let cores = workloads::default_workers();
    // A month of daily logs in a full run: a fresh worker process pays once
    // for faulting in its ~40 MB of decode buffers, which 8 files do not
    // amortise (efficiency ~0.82 on 8 files, ~0.87 on 32; see BENCHMARKS).
    let (files, lines) = if b.quick() {
        (8, 50_000)
    } else {
        (32, 200_000)
    };
    let rayon_pool = rayon::ThreadPoolBuilder::new()
        .num_threads(cores)
        .build()
        .expect("a rayon pool");
    // The logs are written only when the robots case runs.
    if b.only.is_empty() || b.only.iter().any(|c| c == "robots") {
        let dir = TempDir(
            std::env::temp_dir().join(format!("spindle-bench-logs-{}", std::process::id())),
        );
        let paths = logs::generate(&dir.0, files, lines, 2012).expect("generate the bench logs");
        let truth = workloads::find_all_robots(&paths, Mode::Serial, 1).expect("serial robots");
        let (count, sha) = robots::fingerprint(&truth.hosts);
        let check =
            |r: robots::Robots| assert_eq!(robots::fingerprint(&r.hosts), (count, sha.clone()));
        let decoded: u64 = paths
            .iter()
            .map(|p| robots::decode_only(p).expect("decode"))
            .sum();

        let serial = RefCell::new(Vec::new());
        let parallel = RefCell::new(Vec::new());
        let limit = RefCell::new(Vec::new());
        let floor = RefCell::new(Vec::new());
        b.case(
            "robots",
            Unit::Seconds,
            vec![
                imp("spindle", || {
                    let s = seconds(|| {
                        check(
                            workloads::find_all_robots(&paths, Mode::Processes, cores)
                                .expect("robots"),
                        )
                    });
                    parallel.borrow_mut().push(s);
                    s
                }),
                imp("spindle-serial", || {
                    // In a fresh thread, so its decode buffers start cold and
                    // are freed at the end, as in a `spindle robots --mode
                    // serial` process and in every pool worker (the bench
                    // thread's own buffers would stay warm across rounds).
                    let s = seconds(|| {
                        let r = std::thread::scope(|t| {
                            t.spawn(|| workloads::find_all_robots(&paths, Mode::Serial, 1))
                                .join()
                                .expect("serial robots thread")
                        });
                        check(r.expect("robots"))
                    });
                    serial.borrow_mut().push(s);
                    s
                }),
                imp("rayon", || {
                    seconds(|| {
                        let parts: Vec<robots::Robots> = rayon_pool.install(|| {
                            paths
                                .par_iter()
                                .map(|p| robots::find_robots(p).expect("robots"))
                                .collect()
                        });
                        let mut all = robots::Robots::default();
                        parts.into_iter().for_each(|r| all.merge(r));
                        check(all);
                    })
                }),
                imp("procspawn", || {
                    // procspawn's `Pool`, started inside the timing as
                    // spindle's is: one task per file, all 32 in flight
                    // (procspawn has no map: `procspawn_map` keeps at most
                    // 64 handles, each holding IPC channels).
                    seconds(|| {
                        let pool = procspawn::Pool::new(cores).expect("a procspawn pool");
                        let raw: Vec<Vec<u8>> = paths.iter().map(|p| processes::raw(p)).collect();
                        let parts = super::pool_api::procspawn_map(&pool, raw, |path: Vec<u8>| {
                            robots::find_robots(&processes::path_of(path))
                                .map_err(|e| e.to_string())
                        });
                        let mut all = robots::Robots::default();
                        parts
                            .into_iter()
                            .for_each(|r| all.merge(r.expect("procspawn robots")));
                        check(all);
                        pool.shutdown();
                    })
                }),
                imp("gzip-decode-only", || {
                    // The decoder's own limit: libdeflate's gzip decode (with
                    // its CRC check) of the same files on one core, the text
                    // discarded; a reference, not a contender. Interleaved
                    // with the rest so that it sees the same machine.
                    let s = seconds(|| {
                        let n: u64 = paths
                            .iter()
                            .map(|f| robots::decode_only(f).expect("decode"))
                            .sum();
                        assert_eq!(n, decoded);
                    });
                    limit.borrow_mut().push(s);
                    s
                }),
                imp("inflate-only", || {
                    // The floor under the decode-only limit: the DEFLATE data
                    // alone, no CRC check (which `robots` does, in pieces).
                    let s = seconds(|| {
                        let n: u64 = paths
                            .iter()
                            .map(|f| {
                                robots::inflate_only(f)
                                    .expect("inflate")
                                    .expect("in memory")
                            })
                            .sum();
                        assert_eq!(n, decoded);
                    });
                    floor.borrow_mut().push(s);
                    s
                }),
                python_program(
                    b,
                    "robots.py",
                    vec![dir.0.display().to_string(), "processes".to_owned()],
                    vec![format!("hosts: {count}"), format!("sha256: {sha}")],
                ),
            ],
        );
        if let Some(p) = note("robots", &serial, &parallel, cores)
            && let Some(d) = limit.borrow_mut().get_mut(1..).and_then(median)
        {
            let per_core = decoded as f64 / d;
            let got = decoded as f64 / p;
            eprintln!(
                "note robots: gzip decode-only {:.0} MB/s per core; spindle {:.0} MB/s = {:.0}% of {cores} × that",
                per_core / 1e6,
                got / 1e6,
                100.0 * got / (per_core * cores as f64)
            );
            if let Some(f) = floor.borrow_mut().get_mut(1..).and_then(median) {
                let floor_core = decoded as f64 / f;
                eprintln!(
                    "note robots: inflate-only (no CRC) {:.0} MB/s per core; spindle = {:.0}% of {cores} × that",
                    floor_core / 1e6,
                    100.0 * got / (floor_core * cores as f64)
                );
            }
        }
    }

    let serial = RefCell::new(Vec::new());
    let parallel = RefCell::new(Vec::new());
    let want: Vec<bool> = primes::PRIMES
        .iter()
        .map(|&n| primes::is_prime(n))
        .collect();
    b.case(
        "primes",
        Unit::Seconds,
        vec![
            imp("spindle", || {
                let s = seconds(|| {
                    assert_eq!(
                        workloads::check_primes(&primes::PRIMES, Mode::Processes, cores)
                            .expect("primes"),
                        want
                    )
                });
                parallel.borrow_mut().push(s);
                s
            }),
            imp("spindle-serial", || {
                let s = seconds(|| {
                    assert_eq!(
                        workloads::check_primes(&primes::PRIMES, Mode::Serial, 1).expect("primes"),
                        want
                    )
                });
                serial.borrow_mut().push(s);
                s
            }),
            imp("rayon", || {
                seconds(|| {
                    let got: Vec<bool> = rayon_pool.install(|| {
                        primes::PRIMES
                            .par_iter()
                            .map(|&n| primes::is_prime(n))
                            .collect()
                    });
                    assert_eq!(got, want);
                })
            }),
            imp("procspawn", || {
                // procspawn's `Pool`, started inside the timing; one task
                // per number, as the Python program's `executor.map` and rayon.
                seconds(|| {
                    let pool = procspawn::Pool::new(cores).expect("a procspawn pool");
                    let got = super::pool_api::procspawn_map(
                        &pool,
                        primes::PRIMES.to_vec(),
                        primes::is_prime,
                    );
                    assert_eq!(got, want);
                    pool.shutdown();
                })
            }),
            python_program(
                b,
                "primes.py",
                vec!["processes".to_owned()],
                primes::PRIMES
                    .iter()
                    .zip(&want)
                    .map(|(n, p)| format!("{n} is prime? {}", if *p { "True" } else { "False" }))
                    .collect(),
            ),
        ],
    );
    note("primes", &serial, &parallel, cores);
}
