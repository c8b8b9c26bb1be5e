//! `spindle-bench SUITE`: side-by-side benchmarks — spindle, the best Rust
//! crates for the same job, and the equivalent Python program. The peer
//! crates (rayon, flume, crossbeam-channel, threadpool, parking_lot,
//! ipc-channel, procspawn, tokio) are linked into this program only, not into
//! `spindle` (whose `spindle bench ARGS..` runs this program).
//!
//! ```text
//! cargo run --release -p spindle-bench -- list
//! cargo run --release -p spindle-bench -- SUITE [--quick] [--json] [--case NAME].. [--impl NAME]..
//! cargo run --release -p spindle-bench -- all
//! ```
//!
//! A suite is a module of this crate exposing `pub(crate) fn run(b: &mut
//! Bench)`, registered in [`SUITES`]. For each case it calls [`Bench::case`]
//! with one [`Impl`] per contender: [`imp`] wraps a closure that takes ONE
//! sample and returns it in the case's [`Unit`]; [`Bench::python`] runs
//! `bench/python/<script> CASE [--quick]`, which measures itself and prints one
//! number in the same unit.
//!
//! Method (the machine is noisy): every contender takes one untimed warm-up
//! sample (not Python, whose every sample is a fresh interpreter), then the
//! contenders are interleaved — round 1 runs each once, round 2 runs each once,
//! and so on — and each contender's figure is the median of its rounds. Ratios
//! are spindle's speedup over each contender (> 1 means spindle is faster),
//! whether the unit is higher- or lower-is-better.
//!
//! Progress: on a terminal, each case draws a bar on stderr (`SUITE case I
//! of N: NAME`, its samples done; N from [`Suite::cases`]), cleared before its figures are printed; never
//! with `--no-progress`, with `CI` set, or when stderr is not a terminal.
//! stdout is the same either way.
//!
//! With `--json`, each figure is one line, `{"case":..,"higher_is_better":..,
//! "impl":..,"suite":..,"unit":..,"value":..}` (keys in this order): tooling
//! compares runs across versions, so the schema does not change.
//!
//! Child processes: spindle's `Spawn` and `ForkServer` start methods re-execute
//! this program, and spindle runs the child before `main` (its task registry
//! holds this program's `#[spindle::task]`s); procspawn re-executes it too and
//! takes its children over in [`procspawn::init`], the first line of `main`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use clap::Parser;
use std::time::{Duration, Instant};

mod aio;
mod cluster;
mod futures;
mod lockorder;
mod manager;
mod observe;
mod pool_api;
mod pool_workloads;
mod process;
mod queue;
mod sched;
mod sync;
mod thread;

/// One suite: its name, what it measures, its body.
struct Suite {
    name: &'static str,
    about: &'static str,
    run: fn(&mut Bench),
    /// Its cases, in the order it runs them (for the bar's `case I of N`;
    /// the test `every_case_is_declared` checks the list against the
    /// suite's source).
    cases: &'static [&'static str],
}

/// Every suite, in the order `spindle-bench all` runs them.
const SUITES: &[Suite] = &[
    Suite {
        name: "thread",
        about: "spindle::thread beside std::thread and Python's threading",
        run: thread::run,
        cases: &["spawn_join", "local_access", "gil_countdown"],
    },
    Suite {
        name: "sync",
        about: "Lock, RLock, Semaphore, Event and Condition vs std, parking_lot, Python threading",
        run: sync::run,
        cases: &[
            "lock_uncontended",
            "lock_contended_2t",
            "rlock_reentrant",
            "semaphore_uncontended",
            "event_pingpong",
            "condition_pingpong",
        ],
    },
    Suite {
        name: "sched",
        about: "Scheduler enter+run of due events, Timer start/cancel/join",
        run: sched::run,
        cases: &["enter_run", "timer_start_cancel"],
    },
    Suite {
        name: "lockorder",
        about: "lock/unlock with the order checker and deadlock detector off/on, ordered acquire",
        run: lockorder::run,
        cases: &[
            "lock_unlock",
            "nested_2",
            "ordered_acquire_2",
            "contended_2t",
        ],
    },
    Suite {
        name: "queue",
        about: "Queue put/get beside crossbeam-channel, flume, std mpsc and Python's queue.Queue",
        run: queue::run,
        cases: &[
            "st_put_get",
            "spsc_unbounded",
            "spsc_bounded1000",
            "mpmc_4x4_bounded1000",
            "pingpong",
        ],
    },
    Suite {
        name: "futures",
        about: "ThreadPoolExecutor: submit/wait, round trip, map, PRIMES",
        run: futures::run,
        cases: &["submit_wait_100k", "roundtrip", "map_1m", "primes"],
    },
    Suite {
        name: "process",
        about: "Process start per method, Pipe round trip and throughput, ipc::Queue",
        run: process::run,
        cases: &[
            "start_fork",
            "start_spawn",
            "start_forkserver",
            "pipe_roundtrip",
            "pipe_1mib",
            "queue_small",
            "queue_64kib",
            "value_incr",
        ],
    },
    Suite {
        name: "pool",
        about: "Process pools: the robots and primes workloads, map of tiny tasks, apply_async round trip",
        run: pool_suite,
        cases: &[
            "robots",
            "primes",
            "map_chunk1",
            "map_chunk100",
            "apply_async_roundtrip",
            "large_result_256mib",
        ],
    },
    Suite {
        name: "aio",
        about: "spindle-aio: spawn+gather, async Queue, TaskScheduler switches, actor ask vs tokio, ractor and kameo, echo server vs tokio, asyncio",
        run: aio::run,
        cases: &[
            "spawn_gather_100k",
            "async_queue_spsc",
            "scheduler_switches",
            "actor_ping",
            "actor_ping_task",
            "echo_50conns",
            "echo_50conns_p99",
            "echo_50conns_server_cpu",
            "echo_50conns_client_cpu",
        ],
    },
    Suite {
        name: "manager",
        about: "spindle::manager proxies over TCP: queue put/get (1 and 8 clients), connect + first call, dict set/get, task round trip vs Python's managers and a bare TCP request/reply",
        run: manager::run,
        cases: &[
            "queue_put_get",
            "queue_put_get_8c",
            "connect_first_call",
            "dict_ops",
            "task_roundtrip",
            "queue_put_get_nomac",
        ],
    },
    Suite {
        name: "cluster",
        about: "spindle-cluster on the embedded broker and Redis: one task's round trip, map throughput on two worker processes, the cluster Queue's put/get, vs Python's BaseManager task queue and queue",
        run: cluster::run,
        cases: &[
            "embedded_roundtrip",
            "embedded_throughput_2w",
            "redis_roundtrip",
            "redis_throughput_2w",
            "redis_queue_put_get",
            "soak_10k",
            "throughput_2w_rtt20ms",
        ],
    },
    Suite {
        name: "observe",
        about: "what watching the work costs: a progress bar on imap_unordered, a dashboard polling a pool, the dashboard API's latency under 50 SSE clients",
        run: observe::run,
        cases: &[
            "progress_overhead",
            "stats_overhead",
            "dashboard_api_latency",
        ],
    },
];

/// Suite `pool`: the workloads (`robots`, `primes`), then the pools'
/// per-task overhead (`map_chunk1`, `map_chunk100`, `apply_async_roundtrip`).
fn pool_suite(b: &mut Bench) {
    pool_workloads::run(b);
    pool_api::run(b);
}

/// The unit of a case's figures; decides whether higher is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(dead_code)] // each suite uses the units it needs
pub(crate) enum Unit {
    /// Operations per second (higher is better).
    OpsPerSec,
    /// Items per second (higher is better).
    ItemsPerSec,
    /// Tasks per second (higher is better).
    TasksPerSec,
    /// Bytes per second (higher is better).
    BytesPerSec,
    /// Seconds for the whole job (lower is better).
    Seconds,
    /// Milliseconds per operation, e.g. a connection's set-up (lower is
    /// better).
    Millis,
    /// Microseconds per operation, e.g. a round trip (lower is better).
    Micros,
    /// Nanoseconds per operation (lower is better).
    Nanos,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Unit::OpsPerSec => "ops/s",
            Unit::ItemsPerSec => "items/s",
            Unit::TasksPerSec => "tasks/s",
            Unit::BytesPerSec => "B/s",
            Unit::Seconds => "s",
            Unit::Millis => "ms",
            Unit::Micros => "µs",
            Unit::Nanos => "ns",
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(
            self,
            Unit::OpsPerSec | Unit::ItemsPerSec | Unit::TasksPerSec | Unit::BytesPerSec
        )
    }
}

/// One contender of a case: a name (`spindle`, a crate name, `python`) and a
/// closure taking one sample.
pub(crate) struct Impl<'a> {
    name: String,
    sample: Box<dyn FnMut() -> Result<f64, String> + 'a>,
    warm_up: bool,
    available: bool,
}

impl Impl<'_> {
    /// The same contender under another name (e.g. `python-ppe` for a
    /// second Python implementation of a case).
    pub(crate) fn named(mut self, name: &str) -> Self {
        name.clone_into(&mut self.name);
        self
    }
}

impl std::fmt::Debug for Impl<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Impl")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// A Rust contender: `sample` runs the job once and returns the figure in the
/// case's unit (see [`per_sec`], [`micros_per`]).
pub(crate) fn imp<'a>(name: &str, mut sample: impl FnMut() -> f64 + 'a) -> Impl<'a> {
    Impl {
        name: name.to_owned(),
        sample: Box::new(move || Ok(sample())),
        warm_up: true,
        available: true,
    }
}

/// A contender whose sample may fail (a server that did not start, say):
/// `warm_up` whether it takes an untimed first sample, `available` whether
/// it runs at all (false: silently left out, as Python without `python3`).
pub(crate) fn fallible<'a>(
    name: &str,
    warm_up: bool,
    available: bool,
    sample: impl FnMut() -> Result<f64, String> + 'a,
) -> Impl<'a> {
    Impl {
        name: name.to_owned(),
        sample: Box::new(sample),
        warm_up,
        available,
    }
}

/// Runs `job(n)` once and returns `n` per second.
#[allow(dead_code)]
pub(crate) fn per_sec(n: u64, job: impl FnOnce(u64)) -> f64 {
    let t = Instant::now();
    job(n);
    n as f64 / t.elapsed().as_secs_f64()
}

/// Runs `job(n)` once and returns the microseconds per one of the `n` operations.
#[allow(dead_code)]
pub(crate) fn micros_per(n: u64, job: impl FnOnce(u64)) -> f64 {
    let t = Instant::now();
    job(n);
    t.elapsed().as_secs_f64() * 1e6 / n as f64
}

/// Runs `job()` once and returns its duration in seconds.
#[allow(dead_code)]
pub(crate) fn seconds(job: impl FnOnce()) -> f64 {
    let t = Instant::now();
    job();
    t.elapsed().as_secs_f64()
}

/// The running suite: its options and the figures taken so far.
#[derive(Debug)]
pub(crate) struct Bench {
    suite: &'static str,
    quick: bool,
    json: bool,
    only: Vec<String>,
    /// `--impl`: the contenders that run (empty: all).
    contenders: Vec<String>,
    python: Option<PathBuf>,
    figures: usize,
    /// Whether to draw a bar per case on stderr (see [`progress_bar`]).
    bars: bool,
    /// Cases started so far in this suite.
    cases_started: usize,
    /// The suite's cases ([`Suite::cases`]).
    declared: &'static [&'static str],
}

impl Bench {
    /// Whether `--quick` was given: keep the whole suite under about a minute.
    pub(crate) fn quick(&self) -> bool {
        self.quick
    }

    /// Whether `case` runs (no `--case`, or named by one): lets a suite
    /// skip the set-up of a case that does not.
    pub(crate) fn wants(&self, case: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|c| c == case)
    }

    /// `python3`, if it is on PATH.
    pub(crate) fn python_exe(&self) -> Option<PathBuf> {
        self.python.clone()
    }

    /// How many interleaved rounds each case takes.
    pub(crate) fn rounds(&self) -> usize {
        if self.quick { 3 } else { 7 }
    }

    /// The Python contender for `case`: `python3 bench/python/<script> CASE
    /// [--quick]`, which prints one number in the case's unit. Silently left out
    /// of the case when `python3` is not on PATH (a note says so once).
    pub(crate) fn python(&self, script: &str, case: &str) -> Impl<'static> {
        let python = self.python.clone().unwrap_or_default();
        let path = python_dir().join(script);
        let case = case.to_owned();
        let quick = self.quick;
        Impl {
            name: "python".to_owned(),
            warm_up: false,
            available: self.python.is_some(),
            sample: Box::new(move || {
                let mut cmd = Command::new(&python);
                // Python >= 3.11: keep the script's directory off sys.path,
                // so a script can never shadow a standard module.
                cmd.env("PYTHONSAFEPATH", "1");
                cmd.arg(&path).arg(&case);
                if quick {
                    cmd.arg("--quick");
                }
                let out = cmd
                    .output()
                    .map_err(|e| format!("cannot run {python:?}: {e}"))?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                if !out.status.success() {
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    return Err(format!(
                        "{} {case} failed: {}",
                        path.display(),
                        stderr.trim()
                    ));
                }
                let last = stdout
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                last.trim().parse::<f64>().map_err(|_| {
                    format!("{} {case} printed {last:?}, not a number", path.display())
                })
            }),
        }
    }

    /// Measures one case: interleaves the contenders over [`Bench::rounds`]
    /// rounds, then prints (or emits as JSON) each one's median and its ratio to
    /// spindle. A contender that fails (returns an error, e.g. the Python script
    /// crashed) is reported on stderr and left out; the others still run.
    pub(crate) fn case<'a>(&mut self, case: &str, unit: Unit, impls: Vec<Impl<'a>>) {
        if !self.only.is_empty() && !self.only.iter().any(|c| c == case) {
            return;
        }
        let mut impls: Vec<Impl<'a>> = impls
            .into_iter()
            .filter(|i| i.available)
            .filter(|i| self.contenders.is_empty() || self.contenders.contains(&i.name))
            .collect();
        let mut samples: Vec<Vec<f64>> = vec![Vec::new(); impls.len()];
        let mut broken: Vec<Option<String>> = vec![None; impls.len()];
        self.cases_started += 1;
        let warm_ups = impls.iter().filter(|im| im.warm_up).count();
        let bar = progress_bar(
            self.bars,
            &self.case_label(case),
            (warm_ups + impls.len() * self.rounds()) as u64,
        );
        // The bar moves between samples, never inside one: each sample
        // times itself.
        for (i, im) in impls.iter_mut().enumerate() {
            if im.warm_up {
                if let Err(e) = (im.sample)() {
                    broken[i] = Some(e);
                }
                bar.inc(1);
            }
        }
        for _ in 0..self.rounds() {
            for (i, im) in impls.iter_mut().enumerate() {
                if broken[i].is_none() {
                    match (im.sample)() {
                        Ok(v) if v.is_finite() => samples[i].push(v),
                        Ok(v) => broken[i] = Some(format!("non-finite sample {v}")),
                        Err(e) => broken[i] = Some(e),
                    }
                }
                bar.inc(1);
            }
        }
        bar.finish_and_clear();
        let medians: Vec<Option<f64>> = samples.iter_mut().map(|s| median(s)).collect();
        let spindle = impls
            .iter()
            .position(|im| im.name == "spindle")
            .and_then(|i| medians[i]);
        for (i, im) in impls.iter().enumerate() {
            if let Some(err) = &broken[i] {
                eprintln!("bench {}/{case}: {} skipped: {err}", self.suite, im.name);
                continue;
            }
            let Some(value) = medians[i] else { continue };
            self.figures += 1;
            if self.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "suite": self.suite,
                        "case": case,
                        "impl": im.name,
                        "value": value,
                        "unit": unit.label(),
                        "higher_is_better": unit.higher_is_better(),
                    })
                );
            } else {
                let ratio = match spindle {
                    Some(s) if unit.higher_is_better() => format!("{:.2}×", s / value),
                    Some(s) => format!("{:.2}×", value / s),
                    None => "-".to_owned(),
                };
                let first = if i == 0 { case } else { "" };
                println!(
                    "{first:<24} {:<12} {:>14} {:<8} {ratio:>9}",
                    im.name,
                    human(value),
                    unit.label()
                );
            }
        }
    }
}

impl Bench {
    /// `SUITE case I of N: NAME`: N the suite's declared cases that run
    /// (all, or those `--case` names); `SUITE case I: NAME` past them (a
    /// case the list misses).
    fn case_label(&self, case: &str) -> String {
        let i = self.cases_started;
        let n = self.declared.iter().filter(|c| self.wants(c)).count();
        if i <= n {
            format!("{} case {i} of {n}: {case}", self.suite)
        } else {
            format!("{} case {i}: {case}", self.suite)
        }
    }
}

/// A case's bar on stderr, of its `samples` (warm-ups and rounds), or a
/// hidden one when `shown` is false ([`spindle_workloads::bars_wanted`]: not
/// with `--no-progress`, `CI` set, or stderr not a terminal). It is cleared
/// when the case ends, before its figures are printed: stdout is the same
/// with or without it.
fn progress_bar(shown: bool, label: &str, samples: u64) -> indicatif::ProgressBar {
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    if !shown {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{prefix} {bar:30} sample {pos}/{len} [{elapsed}]")
        .expect("a valid template")
        .progress_chars("=> ");
    let bar = ProgressBar::with_draw_target(Some(samples), ProgressDrawTarget::stderr())
        .with_style(style)
        .with_prefix(label.to_owned());
    bar.force_draw();
    bar
}

fn median(s: &mut [f64]) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    s.sort_by(f64::total_cmp);
    let m = s.len() / 2;
    Some(if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    })
}

/// A figure with an SI suffix, e.g. `12.3 M`.
fn human(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{:.2} G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.2} M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1} k", v / 1e3)
    } else if a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

/// Where the Python contenders live: `$SPINDLE_BENCH_PYTHON_DIR`, else the
/// repository's `bench/python/`.
fn python_dir() -> PathBuf {
    std::env::var_os("SPINDLE_BENCH_PYTHON_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/python"))
        })
}

/// `python3` if it is on PATH and runs.
fn find_python() -> Option<PathBuf> {
    let ok = Command::new("python3")
        .arg("-c")
        .arg("pass")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    ok.then(|| PathBuf::from("python3"))
}

/// Run a benchmark suite side by side: spindle, the best Rust crates, Python.
///
/// Contenders are interleaved over several rounds; medians and ratios are
/// reported. `spindle-bench list` names the suites.
#[derive(Debug, Parser)]
#[command(name = "spindle-bench", version, about)]
struct Args {
    /// The suite to run (`list` to name them, `all` for every suite).
    suite: String,
    /// Fewer, shorter rounds: a suite stays under about a minute.
    #[arg(long)]
    quick: bool,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    json: bool,
    /// Run only these cases of the suite (default: all).
    #[arg(long = "case")]
    cases: Vec<String>,
    /// Run only these contenders (`spindle`, `python`, a crate's name as
    /// the table prints it; default: all): to profile one of them alone.
    /// A ratio needs `spindle` among them.
    #[arg(long = "impl")]
    contenders: Vec<String>,
    /// Draw no progress bar. A bar per case (case I of N, its samples) goes to
    /// stderr only, and only when stderr is a terminal and the CI
    /// environment variable is not set; stdout is the same either way.
    #[arg(long)]
    no_progress: bool,
}

fn main() -> ExitCode {
    // procspawn (a peer in the `process` and `pool` suites) re-executes this
    // program for its children and takes them over here; in any other run
    // this only checks one environment variable. It must come first: code
    // before it would run again in every procspawn child. spindle's own
    // children never get here (spindle's boot runs them before `main`).
    procspawn::init();
    let args = Args::parse();
    let bars = spindle_workloads::bars_wanted(args.no_progress);
    let opts = RunOptions {
        quick: args.quick,
        json: args.json,
        only: args.cases,
        contenders: args.contenders,
        bars,
    };
    run(&args.suite, &opts)
}

/// What the command line chose besides the suite.
struct RunOptions {
    quick: bool,
    json: bool,
    only: Vec<String>,
    contenders: Vec<String>,
    bars: bool,
}

/// Runs one suite (or `all`, or `list`); exit status 2 for an unknown suite.
fn run(suite: &str, opts: &RunOptions) -> ExitCode {
    let RunOptions {
        quick,
        json,
        ref only,
        ref contenders,
        bars,
    } = *opts;
    if suite == "list" {
        for s in SUITES {
            println!("{:<12} {}", s.name, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<&Suite> = if suite == "all" {
        SUITES.iter().collect()
    } else if let Some(s) = SUITES.iter().find(|s| s.name == suite) {
        vec![s]
    } else {
        let names: Vec<_> = SUITES.iter().map(|s| s.name).collect();
        eprintln!(
            "spindle-bench: no suite {suite:?} (suites: {}, all)",
            names.join(", ")
        );
        return ExitCode::from(2);
    };
    let python = find_python();
    if python.is_none() && !json {
        eprintln!("note: python3 not found on PATH; the Python contenders are skipped");
    }
    for s in chosen {
        let mut b = Bench {
            suite: s.name,
            quick,
            json,
            only: only.clone(),
            contenders: contenders.clone(),
            python: python.clone(),
            figures: 0,
            bars,
            cases_started: 0,
            declared: s.cases,
        };
        let started = Instant::now();
        if !json {
            println!(
                "suite {} — {}; median of {} interleaved rounds; ratio = spindle's speedup",
                s.name,
                s.about,
                b.rounds()
            );
            println!(
                "{:<24} {:<12} {:>14} {:<8} {:>9}",
                "case", "impl", "median", "unit", "ratio"
            );
        }
        (s.run)(&mut b);
        if !json {
            println!("({} figures in {:.1} s)\n", b.figures, elapsed(started));
        }
    }
    ExitCode::SUCCESS
}

fn elapsed(t: Instant) -> f64 {
    Duration::as_secs_f64(&t.elapsed())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each suite's sources.
    fn sources(suite: &str) -> Vec<&'static str> {
        match suite {
            "thread" => vec![include_str!("thread.rs")],
            "sync" => vec![include_str!("sync.rs")],
            "sched" => vec![include_str!("sched.rs")],
            "lockorder" => vec![include_str!("lockorder.rs")],
            "queue" => vec![include_str!("queue.rs")],
            "futures" => vec![include_str!("futures.rs")],
            "process" => vec![include_str!("process.rs")],
            "pool" => vec![
                include_str!("pool_workloads.rs"),
                include_str!("pool_api.rs"),
            ],
            "aio" => vec![include_str!("aio.rs")],
            "manager" => vec![include_str!("manager.rs")],
            "cluster" => vec![include_str!("cluster.rs")],
            "observe" => vec![include_str!("observe.rs")],
            other => panic!("suite {other} has no sources listed in this test"),
        }
    }

    /// The string literals that follow `.case(` in `src`.
    fn literal_cases(src: &str) -> Vec<&str> {
        src.match_indices(".case(")
            .filter_map(|(i, m)| {
                let rest = src[i + m.len()..].trim_start();
                let rest = rest.strip_prefix('"')?;
                rest.find('"').map(|end| &rest[..end])
            })
            .collect()
    }

    #[test]
    fn every_case_is_declared() {
        for s in SUITES {
            let src = sources(s.name);
            for case in src.iter().flat_map(|f| literal_cases(f)) {
                assert!(
                    s.cases.contains(&case),
                    "suite {}: case {case:?} is not in its Suite::cases",
                    s.name
                );
            }
            for case in s.cases {
                let lit = format!("\"{case}\"");
                assert!(
                    src.iter().any(|f| f.contains(&lit)),
                    "suite {}: declared case {case:?} is not in its source",
                    s.name
                );
            }
        }
    }

    /// `--impl` runs the named contenders only; the others take no sample.
    #[test]
    fn impl_filter_runs_only_the_named_contenders() {
        use std::cell::Cell;
        let mut b = Bench {
            suite: "queue",
            quick: true,
            json: true,
            only: Vec::new(),
            contenders: vec!["spindle".into()],
            python: None,
            figures: 0,
            bars: false,
            cases_started: 0,
            declared: &["c"],
        };
        let (ours, theirs) = (Cell::new(0), Cell::new(0));
        let impls = vec![
            imp("spindle", || {
                ours.set(ours.get() + 1);
                1.0
            }),
            imp("crossbeam", || {
                theirs.set(theirs.get() + 1);
                1.0
            }),
        ];
        b.case("c", Unit::OpsPerSec, impls);
        // A warm-up and one sample a round.
        assert_eq!((ours.get(), theirs.get()), (1 + b.rounds(), 0));
        assert_eq!(b.figures, 1);
    }

    #[test]
    fn labels_say_case_i_of_n() {
        let mut b = Bench {
            suite: "queue",
            quick: true,
            json: false,
            only: Vec::new(),
            contenders: Vec::new(),
            python: None,
            figures: 0,
            bars: false,
            cases_started: 1,
            declared: &["a", "b", "c"],
        };
        assert_eq!(b.case_label("a"), "queue case 1 of 3: a");
        b.only = vec!["b".into(), "zzz".into()];
        assert_eq!(b.case_label("b"), "queue case 1 of 1: b");
        b.cases_started = 2;
        assert_eq!(b.case_label("x"), "queue case 2: x");
    }
}
