//! The executor conformance suite: generic checks every
//! [`Executor`] must pass, whatever its scope
//! (threads, processes, an async runtime, a cluster).
//!
//! The checks port the behaviours of CPython's
//! `Lib/test/test_concurrent_futures/` (`executor.py`, `test_shutdown.py`,
//! `test_future.py`, `test_as_completed.py`, `test_wait.py`); each function
//! names the Python tests it mirrors. Each is generic over an
//! [`ExecutorUnderTest`]: the executor says how to build itself and how to
//! run a piece of [`Work`] — return a value, sleep then return it, panic, or
//! wait for a [`Gate`] the check opens. Where Python's tests sleep to keep a
//! task running, these block it on a gate, so no check depends on timing:
//! the only timed assertions are one-sided (a timeout fired no sooner than
//! asked, a task blocked on a closed gate is not done).
//!
//! An executor that runs closures makes its task `move || work.run()`; one
//! that runs calls of registered tasks submits [`tasks::run_work()`] (the
//! conformance crate registers it, so no production worker carries it); an
//! async one `async move { work.run() }`. The suite is implemented here for
//! [`ThreadPoolExecutor`] and [`ProcessPoolExecutor`]; another crate
//! implements [`ExecutorUnderTest`] for its executor and adds one line to a
//! test file:
//!
//! ```
//! mod thread_pool {
//!     spindle_conformance::executor_suite!(spindle::futures::ThreadPoolExecutor);
//! }
//! # fn main() {}
//! ```
//!
//! Or call the checks one by one:
//!
//! ```
//! use spindle::futures::ThreadPoolExecutor;
//! use spindle_conformance::executor;
//!
//! executor::map_order::<ThreadPoolExecutor>();
//! ```
//!
//! A process executor's workers are this same program: a test binary serves
//! as one with no line in `main` (spindle recognises a worker before `main`
//! runs), as `crates/spindle-conformance/tests/process_pool.rs` shows.

use std::convert::Infallible;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use spindle::futures::{Executor, MapFn, Task, ThreadPoolExecutor};
use spindle::process::ProcessPoolExecutor;

mod checks;

pub use checks::{
    as_completed_order, as_completed_timeout, done_callbacks, map_order, map_timeout,
    panicking_task, shutdown_cancel_futures, shutdown_wait, submit_after_shutdown, submit_result,
    wait_all_completed, wait_first_completed, wait_first_exception,
};

/// An executor the suite can run on: how to build one and how to run a
/// piece of [`Work`] on it.
///
/// # Examples
///
/// An executor of registered-task calls, in a crate of its own (this one
/// runs each call at once, on the submitting thread, so it would fail the
/// checks that need tasks running side by side):
///
/// ```
/// use std::convert::Infallible;
/// use spindle::futures::{Executor, Future, MapFn, SubmitError, Task};
/// use spindle::process::{CallJob, RemoteExecutor};
/// use spindle_conformance::executor::{ExecutorUnderTest, Work, tasks::run_work};
///
/// #[derive(Debug)]
/// struct Inline;
///
/// impl Executor for Inline {
///     type Job = CallJob;
///     fn submit<W: Task<Self>>(
///         &self,
///         task: W,
///     ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
///         let (job, fut) = task.into_job();
///         job.run_here();
///         Ok(fut)
///     }
///     fn shutdown(&self, _wait: bool, _cancel_futures: bool) {}
///     fn max_workers(&self) -> usize {
///         1
///     }
/// }
///
/// impl RemoteExecutor for Inline {
///     fn call_job(job: CallJob) -> CallJob {
///         job
///     }
/// }
///
/// impl ExecutorUnderTest for Inline {
///     fn with_workers(_max_workers: usize) -> Inline {
///         Inline
///     }
///     fn task(work: Work) -> impl Task<Self, Output = u64, Error = Infallible> {
///         run_work::call(work)
///     }
///     fn map_fn() -> impl MapFn<Work, Self, Output = u64, Error = Infallible> {
///         run_work::call
///     }
/// }
///
/// let task = <Inline as ExecutorUnderTest>::task(Work::Identity(7));
/// assert_eq!(Inline.submit(task).unwrap().result(), Ok(7));
/// ```
pub trait ExecutorUnderTest: Executor + Sized {
    /// A fresh executor that runs `max_workers` tasks at once (the checks
    /// ask for 1 to 3 and rely on that many running together).
    fn with_workers(max_workers: usize) -> Self;

    /// The task doing `work`: its future yields [`work.run()`](Work::run),
    /// or fails with the panic [`Work::PanicWith`] raises.
    fn task(work: Work) -> impl Task<Self, Output = u64, Error = Infallible>;

    /// The function `map` applies: each item is a [`Work`], each result its
    /// [`run`](Work::run).
    fn map_fn() -> impl MapFn<Work, Self, Output = u64, Error = Infallible>;
}

/// What a task of the suite does: serde data, so that it can travel to a
/// process or another host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Work {
    /// Returns the value at once (the `mul`/`pow` of CPython's tests).
    Identity(u64),
    /// Sleeps `ms` milliseconds, then returns `value` (`time.sleep`).
    SleepMs {
        /// How long to sleep.
        ms: u64,
        /// What to return.
        value: u64,
    },
    /// Panics with the message (a function that raises).
    PanicWith(String),
    /// Waits until the [`Gate`] at `path` opens, then returns `value` (a
    /// task blocked on an `Event`). Made by [`Gate::work`].
    WaitGate {
        /// The gate's file: the gate is open once it is gone.
        path: PathBuf,
        /// What to return.
        value: u64,
    },
}

impl Work {
    /// Does the work, in whatever thread or process runs the task.
    ///
    /// # Panics
    ///
    /// [`Work::PanicWith`] panics with its message, by design; a
    /// [`Work::WaitGate`] whose gate stays shut for [`GATE_LIMIT`] panics
    /// rather than hold a worker forever (the check that forgot to open it
    /// fails).
    pub fn run(self) -> u64 {
        match self {
            Work::Identity(value) => value,
            Work::SleepMs { ms, value } => {
                thread::sleep(Duration::from_millis(ms));
                value
            }
            Work::PanicWith(message) => panic!("{message}"),
            Work::WaitGate { path, value } => {
                let since = Instant::now();
                while path.exists() {
                    assert!(
                        since.elapsed() < GATE_LIMIT,
                        "executor conformance: gate {} never opened",
                        path.display()
                    );
                    thread::sleep(GATE_POLL);
                }
                value
            }
        }
    }
}

/// How long a task waits for a shut [`Gate`] before it gives up (panics).
pub const GATE_LIMIT: Duration = Duration::from_secs(60);

/// How often a task blocked on a [`Gate`] looks at it.
const GATE_POLL: Duration = Duration::from_millis(1);

/// A gate tasks wait on until the check opens it: Python's `threading.Event`
/// in the tasks of `test_concurrent_futures`, made of a file so that a task
/// in another process (or, on a shared file system, another host) sees it.
///
/// The gate is shut while its file (in the temporary directory) exists;
/// [`open`](Gate::open) removes it, and so does dropping the gate, so no
/// task stays blocked after a check ends, even a failed one. Create the
/// executor before its gates: locals drop in reverse order, so the gates
/// open before the executor waits for its tasks.
#[derive(Debug)]
pub struct Gate {
    path: PathBuf,
}

impl Gate {
    /// A new, shut gate.
    ///
    /// # Errors
    ///
    /// The file could not be created in [`std::env::temp_dir`].
    pub fn new() -> io::Result<Gate> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "spindle-conformance-gate-{}-{n}-{nanos}",
                std::process::id()
            ));
            match fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(_) => return Ok(Gate { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Work that waits for this gate, then returns `value`.
    pub fn work(&self, value: u64) -> Work {
        Work::WaitGate {
            path: self.path.clone(),
            value,
        }
    }

    /// Opens the gate: every task waiting on it goes on. Opening twice is
    /// harmless.
    pub fn open(&self) {
        fs::remove_file(&self.path).ok();
    }

    /// Whether the gate is open.
    pub fn is_open(&self) -> bool {
        !self.path.exists()
    }

    /// The gate's file (it exists while the gate is shut).
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.open();
    }
}

/// The tasks the suite submits to executors that run registered tasks
/// (`#[spindle::task]`). They live here, not in spindle, so that no
/// production worker exposes them.
pub mod tasks {
    use super::Work;

    /// Does `work` in the worker: [`Work::run`].
    #[spindle::task]
    pub fn run_work(work: Work) -> u64 {
        work.run()
    }
}

/// The thread pool runs closures.
impl ExecutorUnderTest for ThreadPoolExecutor {
    fn with_workers(max_workers: usize) -> ThreadPoolExecutor {
        ThreadPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
            .unwrap()
    }

    fn task(work: Work) -> impl Task<Self, Output = u64, Error = Infallible> {
        move || work.run()
    }

    fn map_fn() -> impl MapFn<Work, Self, Output = u64, Error = Infallible> {
        |work: Work| work.run()
    }
}

/// The process pool runs calls of [`tasks::run_work()`].
impl ExecutorUnderTest for ProcessPoolExecutor {
    /// # Panics
    ///
    /// If the workers cannot be started (a test failure: the executor is
    /// unusable).
    fn with_workers(max_workers: usize) -> ProcessPoolExecutor {
        ProcessPoolExecutor::builder()
            .max_workers(max_workers)
            .build()
            .expect("executor conformance: start the process pool")
    }

    fn task(work: Work) -> impl Task<Self, Output = u64, Error = Infallible> {
        tasks::run_work::call(work)
    }

    fn map_fn() -> impl MapFn<Work, Self, Output = u64, Error = Infallible> {
        tasks::run_work::call
    }
}

/// The asyncio executor runs `async` blocks (each blocks one of the
/// runtime's `max_workers` threads while its [`Work`] runs, which the checks
/// need to see tasks side by side) for `submit`, and calls of
/// [`tasks::run_work()`] (on tokio's blocking threads) for `map`: both of its
/// kinds of task.
impl ExecutorUnderTest for spindle_aio::AioExecutor {
    /// # Panics
    ///
    /// If `max_workers` is 0 (the checks never ask for it).
    fn with_workers(max_workers: usize) -> spindle_aio::AioExecutor {
        spindle_aio::AioExecutor::new(max_workers).expect("executor conformance: max_workers > 0")
    }

    fn task(work: Work) -> impl Task<Self, Output = u64, Error = Infallible> {
        async move { work.run() }
    }

    fn map_fn() -> impl MapFn<Work, Self, Output = u64, Error = Infallible> {
        tasks::run_work::call
    }
}

/// Expands to one `#[test]` per executor conformance check, for an
/// executor type implementing [`ExecutorUnderTest`](crate::executor::ExecutorUnderTest).
///
/// # Examples
///
/// ```
/// mod process_pool {
///     spindle_conformance::executor_suite!(spindle::process::ProcessPoolExecutor);
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! executor_suite {
    ($executor:ty) => {
        $crate::executor_suite!(@tests $executor;
            submit_result, map_order, map_timeout, panicking_task, shutdown_wait,
            shutdown_cancel_futures, submit_after_shutdown, done_callbacks,
            as_completed_order, as_completed_timeout, wait_first_completed,
            wait_first_exception, wait_all_completed);
    };
    (@tests $executor:ty; $($check:ident),*) => {$(
        #[test]
        fn $check() {
            $crate::executor::$check::<$executor>();
        }
    )*};
}
