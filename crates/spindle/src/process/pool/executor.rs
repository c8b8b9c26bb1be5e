//! [`ProcessPoolExecutor`]: Python's `concurrent.futures.ProcessPoolExecutor`
//! on spindle's pool engine.
#![forbid(unsafe_code)]

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::call::{Call, CallJob, ProcessJob, RemoteExecutor};
use super::engine::{Config, Engine, Refused, TERMINATE_GRACE, TaskStart, TaskStartHook};
use super::error::PoolError;
use super::job::Job;
use super::slot;
use crate::futures::{Executor, Future, Payload, SubmitError, Task, TooLarge};
use crate::process::error::Kind;
use crate::process::{self, ProcessError, StartMethod, cpu_count};
use nix::sys::signal::Signal;

/// A pool of worker processes running [`Call`]s of registered tasks and
/// handing back [`Future`]s: Python's `concurrent.futures.ProcessPoolExecutor`.
///
/// It implements the same [`Executor`] trait as
/// [`ThreadPoolExecutor`](crate::futures::ThreadPoolExecutor) — `submit`,
/// `map` (with `timeout` and `chunksize`), `shutdown(wait, cancel_futures)` —
/// and its futures work with `as_completed`, `wait` and done-callbacks (run
/// in this process). Code written against the trait with calls
/// (`my_task::call(args..)`) switches from threads to processes by changing
/// the constructor.
///
/// Never hangs, never breaks for good: a worker that dies while running a
/// task (killed, aborted, crashed) fails just that task with
/// [`FutureError::WorkerLost`](crate::futures::FutureError::WorkerLost) (or
/// re-runs it, see [`retries`](ProcessPoolBuilder::retries)) and is replaced;
/// tasks it had been sent but not started go to another worker. Python
/// instead marks the whole pool broken (`BrokenProcessPool`). A task may be
/// given a time limit ([`task_timeout`](ProcessPoolBuilder::task_timeout)).
/// A failing initializer breaks the pool with the initializer's panic message
/// (Python's `BrokenProcessPool`).
///
/// Workers start on demand (CPython 3.9+): a task that finds no idle worker
/// starts one, up to `max_workers`; [`Pool`](super::Pool) starts them all at
/// once, as Python's `Pool` does.
///
/// Dropping the executor is `shutdown(wait=true)`: leaving Python's `with`.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, as_completed};
/// use spindle::process::ProcessPoolExecutor;
///
/// #[spindle::task]
/// fn is_prime(n: u64) -> bool {
///     n > 1 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
/// }
///
/// let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
/// let f = pool.submit(is_prime::call(112_272_535_095_293)).unwrap();
/// f.add_done_callback(|f| println!("done: {:?}", f.result()));
/// assert_eq!(f.result(), Ok(true));
/// let primes: Vec<bool> = pool
///     .map(is_prime::call, [2u64, 4, 7])
///     .unwrap()
///     .map(Result::unwrap)
///     .collect();
/// assert_eq!(primes, [true, false, true]);
/// # Ok::<(), spindle::process::PoolError>(())
/// ```
pub struct ProcessPoolExecutor {
    pub(crate) engine: Arc<Engine>,
}

impl ProcessPoolExecutor {
    /// A pool with the default settings (one worker per CPU).
    ///
    /// # Errors
    /// As [`ProcessPoolBuilder::build`].
    pub fn new() -> Result<ProcessPoolExecutor, PoolError> {
        ProcessPoolExecutor::builder().build()
    }

    /// A builder: Python's `ProcessPoolExecutor(max_workers, mp_context,
    /// initializer, initargs, max_tasks_per_child)` arguments, plus
    /// spindle's per-task time limit and retries.
    pub fn builder() -> ProcessPoolBuilder {
        ProcessPoolBuilder {
            cfg: Config {
                processes: 0,
                method: StartMethod::ForkServer,
                initializer: None,
                max_tasks: 0,
                task_timeout: None,
                retries: 0,
                prefetch: None,
                terminate_grace: TERMINATE_GRACE,
                max_payload: process::DEFAULT_MAX_PAYLOAD,
                name: "SpindlePoolWorker",
                on_task_start: None,
                on_demand: true,
            },
            init_error: None,
            zero: None,
        }
    }

    /// The process ids of the workers alive now (a replacement may still be
    /// starting just after a worker died).
    pub fn worker_pids(&self) -> Vec<u32> {
        self.engine.pids()
    }

    /// A snapshot of the pool's workers and tasks (spindle only; see
    /// [`PoolStats`](crate::stats::PoolStats) for what each count means),
    /// read under the pool's lock.
    ///
    /// Always on: the counts are fields the engine updates under the lock
    /// it already takes for each batch of answers, and the task time is the
    /// one it already measures for prefetch (its moving average): from the
    /// task becoming its worker's running one to its answer being read in
    /// this process, the pipe round trip included; tasks answered together
    /// share the batch's time evenly. A `map` chunk is one task. A worker
    /// killed while running a task counts in `workers_lost`, and its task
    /// in `tasks_retried` if it is run again (else in `tasks_failed`).
    pub fn stats(&self) -> crate::stats::PoolStats {
        self.engine.stats()
    }

    /// How many workers were lost while running a task so far.
    pub fn workers_lost(&self) -> u64 {
        self.engine.state.lock().lost
    }

    /// How many times a task whose worker was lost was queued to run again
    /// (see [`retries`](ProcessPoolBuilder::retries)) so far.
    pub fn tasks_retried(&self) -> u64 {
        self.engine.state.lock().retried
    }

    /// Waits until at least `n` workers are alive; returns whether they are
    /// (spindle only: Python's pools have no such wait). Useful after a
    /// worker died, to see the pool back to size. Returns
    /// false without waiting for what cannot happen: `n` above the workers
    /// started so far (an executor starts them on demand, up to
    /// [`max_workers`](Executor::max_workers); a `Pool` starts all), or a
    /// pool closed, terminated or broken (no worker will start any more)
    /// with fewer alive. The non-blocking check is
    /// [`worker_pids`](Self::worker_pids)`().len()`.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use spindle::futures::Executor;
    /// use spindle::process::ProcessPoolExecutor;
    ///
    /// #[spindle::task]
    /// fn nap() {
    ///     std::thread::sleep(Duration::from_millis(100));
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(2).build()?;
    /// assert!(!pool.wait_for_workers(1), "no task yet: no worker");
    /// let naps = [pool.submit(nap::call()).unwrap(), pool.submit(nap::call()).unwrap()];
    /// assert!(pool.wait_for_workers(2));
    /// assert!(!pool.wait_for_workers_timeout(3, Duration::from_secs(60)), "only 2");
    /// # Ok::<(), spindle::process::PoolError>(())
    /// ```
    pub fn wait_for_workers(&self, n: usize) -> bool {
        self.wait_for_workers_until(n, None)
    }

    /// [`wait_for_workers`](Self::wait_for_workers), waiting at most
    /// `timeout` (forever if it cannot be represented); false if fewer than
    /// `n` are alive then.
    pub fn wait_for_workers_timeout(&self, n: usize, timeout: Duration) -> bool {
        match Instant::now().checked_add(timeout) {
            Some(deadline) => self.wait_for_workers_deadline(n, deadline),
            None => self.wait_for_workers(n),
        }
    }

    /// [`wait_for_workers`](Self::wait_for_workers), waiting until
    /// `deadline` at the latest; false if fewer than `n` are alive then.
    pub fn wait_for_workers_deadline(&self, n: usize, deadline: Instant) -> bool {
        self.wait_for_workers_until(n, Some(deadline))
    }

    fn wait_for_workers_until(&self, n: usize, deadline: Option<Instant>) -> bool {
        let engine = &self.engine;
        let alive = |st: &super::engine::State| st.workers.iter().flatten().count();
        let mut st = engine.state.lock();
        loop {
            if alive(&st) >= n {
                return true;
            }
            if n > st.spawned || st.closed || st.broken.is_some() {
                return false;
            }
            // Slot threads notify `changed` when a worker starts or ends.
            match deadline {
                None => engine.changed.wait(&mut st),
                Some(at) => {
                    if engine.changed.wait_until(&mut st, at).timed_out() {
                        return alive(&st) >= n;
                    }
                }
            }
        }
    }

    /// Sends SIGTERM to every worker at once (Python 3.14's
    /// `terminate_workers()`): the executor shuts down with the queued
    /// tasks cancelled ([`FutureError::Cancelled`](crate::futures::FutureError::Cancelled)),
    /// the tasks running fail with
    /// [`FutureError::BrokenPool`](crate::futures::FutureError::BrokenPool)
    /// (Python's `BrokenProcessPool`), no worker is replaced, and later
    /// submissions fail with [`SubmitError::BrokenPool`]. Returns without
    /// waiting; `shutdown(true, _)` or dropping the executor then waits for
    /// the workers (a worker that ignores SIGTERM: use
    /// [`kill_workers`](Self::kill_workers)).
    ///
    /// # Examples
    /// ```
    /// use spindle::futures::Executor;
    /// use spindle::process::ProcessPoolExecutor;
    ///
    /// #[spindle::task]
    /// fn forever() {
    ///     loop {
    ///         std::thread::park();
    ///     }
    /// }
    ///
    /// let pool = ProcessPoolExecutor::builder().max_workers(1).build()?;
    /// let stuck = pool.submit(forever::call()).unwrap();
    /// let queued = pool.submit(forever::call()).unwrap();
    /// while !stuck.running() {
    ///     std::thread::yield_now();
    /// }
    /// pool.terminate_workers();
    /// assert!(stuck.result().unwrap_err().is_broken());
    /// assert!(queued.result().unwrap_err().is_cancelled());
    /// # Ok::<(), spindle::process::PoolError>(())
    /// ```
    pub fn terminate_workers(&self) {
        self.engine.signal_workers(
            Signal::SIGTERM,
            "the workers were terminated (terminate_workers)",
        );
    }

    /// Sends SIGKILL to every worker at once (Python 3.14's
    /// `kill_workers()`); otherwise as
    /// [`terminate_workers`](Self::terminate_workers).
    pub fn kill_workers(&self) {
        self.engine
            .signal_workers(Signal::SIGKILL, "the workers were killed (kill_workers)");
    }

    /// `job`, its large arguments moved to memfds (without the pool's
    /// lock), or the error if one is over the payload limit. A job whose
    /// arguments could not be encoded, or placed in a memfd, is returned
    /// as is: it fails its future when submitted.
    pub(crate) fn checked(&self, mut job: Job) -> Result<Job, TooLarge> {
        if job.refused.is_some() {
            return Ok(job);
        }
        if let Some(t) = job.too_large(self.engine.cfg.max_payload) {
            return Err(t);
        }
        if job.needs_sealing()
            && let Err(e) = job.seal()
        {
            job.refused = Some(format!(
                "the task's arguments could not be placed in shared memory: {e}"
            ));
        }
        Ok(job)
    }

    /// Queues a job built by the `Pool` front end.
    // With `tracing`, a `Job` holds one more pointer (its span), which
    // tips `Refused<Job>` over the lint's 128 bytes; a refusal is rare and
    // moved once.
    #[cfg_attr(feature = "tracing", allow(clippy::result_large_err))]
    pub(crate) fn submit_job(&self, job: Job) -> Result<(), Refused<Job>> {
        self.engine.submit(job, |job| (job, ()))
    }
}

impl Executor for ProcessPoolExecutor {
    type Job = ProcessJob;

    fn submit<W: Task<Self>>(
        &self,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        let limit = self.engine.cfg.max_payload;
        if let Some(n) = task.payload_size()
            && n > limit
        {
            // Refused before anything is encoded or queued; the task comes
            // back.
            let t = TooLarge::new(Payload::Argument, n as u64, limit as u64);
            return Err(SubmitError::TooLarge(task, t));
        }
        let into_job = |task: W| {
            let (ProcessJob(job), fut) = task.into_job();
            (job, fut)
        };
        self.engine
            .submit(task, into_job)
            .map_err(|refused| match refused {
                Refused::ShutDown(task) => SubmitError::ShutDown(task),
                Refused::Broken(task, b) => SubmitError::BrokenPool(task, b),
            })
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.engine.close(cancel_futures);
        if wait {
            self.engine.wait_workers(None);
        }
    }

    fn max_workers(&self) -> usize {
        self.engine.cfg.processes
    }

    /// 64 chunks per worker: a round trip to a worker process costs several
    /// microseconds, so four per worker left tiny tasks waiting on the
    /// parent (map of 10k tasks, chunksize 1: 93 k tasks/s with 4, see
    /// docs/BENCHMARKS.md for 64).
    fn map_window(&self) -> usize {
        self.engine.cfg.processes.saturating_mul(64).max(1)
    }
}

/// Calls of registered tasks ([`Call`], `map` with `my_task::call`) run on
/// the workers through the blanket impls of [`RemoteExecutor`].
impl RemoteExecutor for ProcessPoolExecutor {
    fn call_job(job: CallJob) -> ProcessJob {
        ProcessJob(job.0)
    }
}

impl Drop for ProcessPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl fmt::Debug for ProcessPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.engine.state.lock();
        f.debug_struct("ProcessPoolExecutor")
            .field("max_workers", &self.engine.cfg.processes)
            .field("pending", &st.pending.len())
            .field("closed", &st.closed)
            .field("broken", &st.broken)
            .finish_non_exhaustive()
    }
}

/// Configures a [`ProcessPoolExecutor`] (or, through
/// [`Pool::builder`](super::Pool::builder), a [`Pool`](super::Pool)).
pub struct ProcessPoolBuilder {
    pub(crate) cfg: Config,
    init_error: Option<String>,
    /// The builder argument last given 0 where at least 1 is needed.
    zero: Option<&'static str>,
}

impl ProcessPoolBuilder {
    /// How many worker processes at most (Python's `max_workers`); default
    /// (left unset) [`cpu_count`]. Workers start on demand, as in CPython
    /// 3.9+: a task that finds no idle worker starts one, up to this limit,
    /// so sequential tasks reuse one worker (with
    /// [`StartMethod::Fork`], all start at once, as in CPython). 0 makes [`build`](Self::build) fail with
    /// [`PoolError::is_invalid_argument`] (Python's `ValueError:
    /// max_workers must be greater than 0`).
    pub fn max_workers(self, n: usize) -> ProcessPoolBuilder {
        self.workers(n, "max_workers")
    }

    /// Sets the worker count, `name` being the builder argument (for the
    /// error on 0).
    pub(crate) fn workers(mut self, n: usize, name: &'static str) -> ProcessPoolBuilder {
        self.cfg.processes = n;
        self.zero_check(n == 0, name)
    }

    fn zero_check(mut self, zero: bool, name: &'static str) -> ProcessPoolBuilder {
        if zero {
            self.zero = Some(name);
        } else if self.zero == Some(name) {
            self.zero = None;
        }
        self
    }

    /// How workers are started (Python's `mp_context`); default
    /// [`StartMethod::ForkServer`].
    pub fn start_method(mut self, method: StartMethod) -> ProcessPoolBuilder {
        self.cfg.method = method;
        self
    }

    /// A task each worker runs once when it starts (Python's `initializer`
    /// and `initargs`). If it panics, the pool breaks: queued and later
    /// tasks fail with [`FutureError::BrokenPool`](crate::futures::FutureError::BrokenPool)
    /// carrying the panic message (Python's `BrokenProcessPool`).
    pub fn initializer<T: process::Task>(mut self, call: Call<T>) -> ProcessPoolBuilder {
        match call.encode() {
            Ok(args) => self.cfg.initializer = Some((T::NAME.to_string(), args)),
            Err(m) => self.init_error = Some(m),
        }
        self
    }

    /// Replace each worker after it has run `n` tasks (Python's
    /// `max_tasks_per_child` / `maxtasksperchild`; a `map` chunk counts as
    /// one task). Left unset (the default), never. 0 makes
    /// [`build`](Self::build) fail with
    /// [`PoolError::is_invalid_argument`] (Python's `ValueError:
    /// max_tasks_per_child must be >= 1`).
    pub fn max_tasks_per_child(self, n: u64) -> ProcessPoolBuilder {
        self.tasks_per_child(n, "max_tasks_per_child")
    }

    pub(crate) fn tasks_per_child(mut self, n: u64, name: &'static str) -> ProcessPoolBuilder {
        self.cfg.max_tasks = n;
        self.zero_check(n == 0, name)
    }

    /// Per-task time limit: a task running longer fails with
    /// [`FutureError::WorkerLost`](crate::futures::FutureError::WorkerLost)
    /// ([`is_task_timeout`](crate::futures::FutureError::is_task_timeout))
    /// and its worker is killed and replaced. Python has none.
    /// `Duration::ZERO` makes [`build`](Self::build) fail with
    /// [`PoolError::is_invalid_argument`] (no task could ever finish).
    pub fn task_timeout(mut self, limit: Duration) -> ProcessPoolBuilder {
        self.cfg.task_timeout = Some(limit);
        self.zero_check(limit.is_zero(), "task_timeout")
    }

    /// Re-run a task whose worker died up to `n` times before failing it
    /// with `WorkerLost` (default 0). A task that overran its time limit is
    /// not retried. Only for tasks that are safe to run twice.
    pub fn retries(mut self, n: u32) -> ProcessPoolBuilder {
        self.cfg.retries = n;
        self
    }

    /// Calls `observer` each time a task starts on a worker process, with
    /// the worker's pid (see [`TaskStart`] for what "starts" means): to log
    /// progress, or to know which process runs what (spindle only; Python's
    /// pools have no such hook). It runs on a pool thread in this process,
    /// never under the pool's lock: before the task is written to an idle
    /// worker (the task waits for it: keep it short), or, for a task sent
    /// ahead to a busy worker, once that worker's earlier tasks are
    /// answered.
    pub fn on_task_start(
        mut self,
        observer: impl Fn(&TaskStart) + Send + Sync + 'static,
    ) -> ProcessPoolBuilder {
        self.cfg.on_task_start = Some(TaskStartHook(Arc::new(observer)));
        self
    }

    /// How many tasks to send ahead to a busy worker, fixed. By default it
    /// is automatic: tasks are sent ahead (up to 4 per worker) only while
    /// tasks take under 1 ms on average and only to a worker whose current
    /// task has not run much longer than that — so the next task is already
    /// there when a tiny one ends, and a task rarely waits behind a slow one.
    /// `prefetch(0)` never sends ahead: a task then waits in the parent until
    /// a worker is free (Python's `Pool`). A task sent ahead to a worker
    /// that dies never started: it goes back to the queue, it is not lost.
    pub fn prefetch(mut self, n: usize) -> ProcessPoolBuilder {
        self.cfg.prefetch = Some(n);
        self
    }

    /// How long `terminate` (and dropping a [`Pool`](super::Pool)) lets
    /// workers react to SIGTERM before it SIGKILLs those still alive (a
    /// task that ignores or blocks SIGTERM); default 1 s. `Duration::ZERO`
    /// kills at once. Python's `terminate` sends SIGTERM only, and waits
    /// forever for a worker that ignores it.
    pub fn terminate_grace(mut self, grace: Duration) -> ProcessPoolBuilder {
        self.cfg.terminate_grace = grace;
        self
    }

    /// The largest encoded argument set, and the largest encoded result,
    /// of one call, in bytes (spindle only; default
    /// [`DEFAULT_MAX_PAYLOAD`](process::DEFAULT_MAX_PAYLOAD), 2 GiB).
    /// Checked by the sender before anything is written: arguments over it
    /// are refused at submit ([`SubmitError::TooLarge`], the call handed
    /// back, from [`Executor::submit`],
    /// [`Pool::apply_async`](super::Pool::apply_async) and `map_async`;
    /// [`FutureError::TooLarge`](crate::futures::FutureError::TooLarge)
    /// from `apply`, `map` and `Executor::map`),
    /// and a result over it fails its future with `FutureError::TooLarge`
    /// while the worker goes on. Payloads from 256 KiB on travel in a
    /// sealed memfd rather than through the worker's pipe. Python has no
    /// such limit (memory only).
    pub fn max_payload(mut self, bytes: usize) -> ProcessPoolBuilder {
        self.cfg.max_payload = bytes;
        self
    }

    /// Starts the workers and returns the pool.
    ///
    /// # Errors
    /// [`PoolError::is_start_failed`] if a worker process cannot be started
    /// or the initializer's arguments cannot be encoded;
    /// [`PoolError::is_invalid_argument`] for a 0 given to `max_workers`,
    /// `max_tasks_per_child` or `task_timeout`.
    pub fn build(self) -> Result<ProcessPoolExecutor, PoolError> {
        let engine = self.start()?;
        Ok(ProcessPoolExecutor { engine })
    }

    pub(crate) fn start(mut self) -> Result<Arc<Engine>, PoolError> {
        if let Some(name) = self.zero {
            return Err(PoolError::invalid(name));
        }
        if let Some(m) = self.init_error {
            return Err(PoolError::start(ProcessError::new(Kind::Encode(m))));
        }
        if self.cfg.processes == 0 {
            self.cfg.processes = cpu_count().max(1);
        }
        // CPython starts every worker at once under fork (a child forked
        // later would copy whatever threads hold then).
        if self.cfg.method == StartMethod::Fork {
            self.cfg.on_demand = false;
        }
        let engine = Engine::new(self.cfg, slot::spawn_on_demand);
        if let Err(e) = slot::start_slots(&engine) {
            engine.terminate();
            return Err(PoolError::start(e));
        }
        Ok(engine)
    }
}

impl fmt::Debug for ProcessPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessPoolBuilder")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}
