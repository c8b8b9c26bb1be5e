//! [`ThreadPoolExecutor`]: Python's `concurrent.futures.ThreadPoolExecutor`.
//! The worker life cycle is described in `README.md` beside this file.
#![forbid(unsafe_code)]

use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;

use super::Future;
use super::error::{BrokenPool, BuildError, SubmitError};
use super::executor::{Executor, Task};
use super::thread_task::{Idle, Ran, ThreadJob, Verdict};
use crate::stats::{Histogram, PoolStats, Times, nanos, unix_ms_now};
use crate::util::panic_text;

/// Numbers pools for their default thread names (`ThreadPoolExecutor-N_M`).
static POOL_COUNTER: AtomicUsize = AtomicUsize::new(0);

type Initializer = Arc<dyn Fn() + Send + Sync>;

/// A pool of threads running submitted closures: Python's
/// `concurrent.futures.ThreadPoolExecutor`.
///
/// Workers start lazily, one per submission while no worker is idle, up to
/// `max_workers`, and are reused. Unlike Python's threads, they run Rust code
/// in parallel: CPU-bound work scales with the cores.
///
/// Dropping the pool is leaving Python's `with` block: it shuts down and waits
/// for every submitted task.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, ThreadPoolExecutor};
///
/// fn action(max: u64) -> u64 {
///     (0..max).sum()
/// }
///
/// let pool = ThreadPoolExecutor::builder().max_workers(2).build().unwrap();
/// let f1 = pool.submit(|| action(50)).unwrap();
/// let f2 = pool.submit(|| action(100)).unwrap();
/// println!("{} {}", f1.result().unwrap(), f2.result().unwrap()); // 1225 4950
/// pool.shutdown(true, false);
/// ```
pub struct ThreadPoolExecutor {
    pool: Arc<Pool>,
    max_workers: usize,
}

/// What the workers and the pool handle share.
struct Pool {
    control: Mutex<Control>,
    /// Serialises `shutdown(wait=true)` callers so each one waits.
    joining: Mutex<()>,
    /// Finished tasks' "I am free" tokens (Python's `_idle_semaphore`).
    idle: Idle,
    broken: OnceLock<BrokenPool>,
    rx: Receiver<ThreadJob>,
    initializer: Option<Initializer>,
    prefix: String,
    /// Time each task (two clock reads): [`ThreadPoolBuilder::task_timing`].
    timing: bool,
    /// Worker threads started and not ended.
    alive: AtomicUsize,
    /// When the pool was built, in ms since the Unix epoch.
    started_ms: u64,
}

struct Control {
    shutdown: bool,
    tx: Option<Sender<ThreadJob>>,
    threads: Vec<JoinHandle<()>>,
    spawned: usize,
    /// Each worker's counters (it alone writes them).
    counters: Vec<Arc<WorkerCounters>>,
    /// Tasks accepted by `submit`.
    submitted: u64,
    /// Queued tasks cancelled by `shutdown(cancel_futures)`.
    cancelled: u64,
    /// Queued tasks failed by a broken pool.
    broken: u64,
}

/// One worker's task counts and times, written by that worker alone (a
/// relaxed load and a store, no read-modify-write), read by `stats`. The
/// finishing counts are stored with `Release` after `started` and read with
/// `Acquire` before it, so a snapshot never sees more tasks finished than
/// started.
#[derive(Debug, Default)]
#[repr(align(64))]
struct WorkerCounters {
    started: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    panicked: AtomicU64,
    cancelled: AtomicU64,
    times: Histogram,
}

/// Adds one to a counter that only the calling thread writes.
fn bump(c: &AtomicU64) {
    c.store(c.load(Relaxed) + 1, Release);
}

impl WorkerCounters {
    fn finished(&self, ran: Ran) {
        bump(match ran {
            Ran::Completed => &self.completed,
            Ran::Failed | Ran::Broken => &self.failed,
            Ran::Panicked => &self.panicked,
            Ran::Cancelled => &self.cancelled,
        });
    }
}

impl ThreadPoolExecutor {
    /// A pool with the default settings (see [`ThreadPoolBuilder`]).
    pub fn new() -> ThreadPoolExecutor {
        ThreadPoolExecutor::builder()
            .build()
            .expect("the default max_workers is at least 1")
    }

    /// A builder: Python's `ThreadPoolExecutor(max_workers, thread_name_prefix,
    /// initializer)` arguments.
    pub fn builder() -> ThreadPoolBuilder {
        ThreadPoolBuilder::default()
    }

    /// How many worker threads exist now (Python's private `len(_threads)`).
    pub fn num_threads(&self) -> usize {
        self.pool.control.lock().spawned
    }

    /// A snapshot of the pool's workers and tasks (spindle only; see
    /// [`PoolStats`] for what each count means).
    ///
    /// Counts are kept always (a few plain stores per task, in the
    /// worker's own cache line); task times only with
    /// [`ThreadPoolBuilder::task_timing`] (two clock reads per task, around
    /// the task and the completion of its future). `workers_lost` and
    /// `tasks_retried` are always 0: a thread that panics in a task goes
    /// on (the panic is the task's outcome). A task the pool discards
    /// because its future was cancelled counts once a worker reaches it.
    ///
    /// # Examples
    ///
    /// ```
    /// use spindle::futures::{fallible, Executor, ThreadPoolExecutor};
    ///
    /// let pool = ThreadPoolExecutor::builder().max_workers(1).build().unwrap();
    /// pool.submit(|| 1).unwrap().result().unwrap();
    /// pool.submit(fallible(|| "x".parse::<u8>())).unwrap().exception();
    /// let s = pool.stats();
    /// assert_eq!((s.tasks_completed, s.tasks_failed, s.tasks_pending), (1, 1, 0));
    /// ```
    pub fn stats(&self) -> PoolStats {
        let control = self.pool.control.lock();
        let mut s = PoolStats::zero(self.pool.started_ms);
        let mut times = Times::default();
        for c in &control.counters {
            let completed = c.completed.load(Acquire);
            let failed = c.failed.load(Acquire);
            let panicked = c.panicked.load(Acquire);
            let cancelled = c.cancelled.load(Acquire);
            let started = c.started.load(Acquire);
            let running = started.saturating_sub(completed + failed + panicked + cancelled);
            s.tasks_running += running;
            s.workers_busy += u64::from(running > 0);
            s.tasks_completed += completed;
            s.tasks_failed += failed;
            s.tasks_panicked += panicked;
            s.tasks_cancelled += cancelled;
            c.times.add_to(&mut times);
        }
        s.tasks_failed += control.broken;
        s.tasks_cancelled += control.cancelled;
        s.tasks_submitted = control.submitted;
        s.tasks_pending = self.pool.rx.len() as u64;
        s.workers_alive = self.pool.alive.load(Relaxed) as u64;
        s.workers_idle = s.workers_alive.saturating_sub(s.workers_busy);
        times.fill(&mut s);
        s
    }

    /// Whether the pool is broken (a worker's initializer failed).
    pub fn broken(&self) -> Option<BrokenPool> {
        self.pool.broken.get().cloned()
    }

    fn spawn_worker(&self, control: &mut Control) {
        let n = control.spawned;
        let pool = self.pool.clone();
        let name = format!("{}_{n}", self.pool.prefix);
        let counters = Arc::new(WorkerCounters::default());
        let mine = counters.clone();
        self.pool.alive.fetch_add(1, Relaxed);
        match thread::Builder::new()
            .name(name)
            .spawn(move || worker(&pool, &mine))
        {
            Ok(handle) => {
                control.threads.push(handle);
                control.counters.push(counters);
                control.spawned += 1;
            }
            Err(e) => {
                self.pool.alive.fetch_sub(1, Relaxed);
                // No thread at all: nobody would ever run the queued work.
                if control.spawned == 0 {
                    let broken = BrokenPool::new(format!("cannot spawn a worker thread: {e}"));
                    self.pool.break_pool(control, broken);
                }
            }
        }
    }
}

impl Default for ThreadPoolExecutor {
    fn default() -> ThreadPoolExecutor {
        ThreadPoolExecutor::new()
    }
}

impl Pool {
    /// Marks the pool broken and fails every queued job (Python's
    /// `_initializer_failed`). Called with the control lock held, so no
    /// submission slips in between.
    fn break_pool(&self, control: &mut Control, broken: BrokenPool) {
        let broken = self.broken.get_or_init(|| broken).clone();
        control.tx = None;
        while let Ok(job) = self.rx.try_recv() {
            job.run(Verdict::Broken(&broken));
            control.broken += 1;
        }
    }
}

/// Counts a worker out of `alive` when it ends, however it ends.
struct Alive<'a>(&'a AtomicUsize);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// A worker: run the initializer, then jobs until the queue is closed and empty.
fn worker(pool: &Pool, counters: &WorkerCounters) {
    let _alive = Alive(&pool.alive);
    let init_failed = pool
        .initializer
        .as_ref()
        .and_then(|init| panic::catch_unwind(AssertUnwindSafe(|| init())).err());
    if let Some(payload) = init_failed {
        let msg = panic_text(&*payload);
        eprintln!("spindle::futures: exception in initializer: {msg}");
        let broken = BrokenPool::new(format!(
            "a thread initializer failed ({msg}), the thread pool is not usable anymore"
        ));
        let mut control = pool.control.lock();
        pool.break_pool(&mut control, broken);
        return;
    }
    while let Ok(job) = pool.rx.recv() {
        bump(&counters.started);
        #[cfg(feature = "tracing")]
        let _entered = {
            let entered = job.span.clone().entered();
            tracing::trace!("started");
            entered
        };
        if pool.timing {
            let t0 = Instant::now();
            let ran = job.run(Verdict::Run(&pool.idle));
            if ran != Ran::Cancelled {
                counters.times.record_single_writer(nanos(t0.elapsed()));
            }
            counters.finished(ran);
            #[cfg(feature = "tracing")]
            tracing::trace!(outcome = ?ran, "finished");
        } else {
            let ran = job.run(Verdict::Run(&pool.idle));
            counters.finished(ran);
            #[cfg(feature = "tracing")]
            tracing::trace!(outcome = ?ran, "finished");
        }
    }
}

impl Executor for ThreadPoolExecutor {
    type Job = ThreadJob;

    fn submit<W: Task<Self>>(
        &self,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        let mut control = self.pool.control.lock();
        if let Some(b) = self.pool.broken.get() {
            return Err(SubmitError::BrokenPool(task, b.clone()));
        }
        if control.shutdown {
            return Err(SubmitError::ShutDown(task));
        }
        let Some(tx) = &control.tx else {
            return Err(SubmitError::ShutDown(task));
        };
        #[allow(unused_mut)]
        let (mut job, fut) = task.into_job();
        #[cfg(feature = "tracing")]
        {
            job.span = tracing::debug_span!(
                "spindle.task",
                pool = %self.pool.prefix,
                task = control.submitted
            );
            tracing::trace!(parent: &job.span, "submitted");
        }
        // The receiver lives in `self.pool`, so the channel is open.
        tx.send(job).ok();
        control.submitted += 1;
        // Python's `_adjust_thread_count`: reuse an idle worker if there is
        // one, else start one, up to max_workers.
        if control.spawned < self.max_workers && !self.pool.idle.try_acquire() {
            self.spawn_worker(&mut control);
            if control.spawned == self.max_workers {
                self.pool.idle.saturate();
            }
        }
        Ok(fut)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let _joining = wait.then(|| self.pool.joining.lock());
        let threads = {
            let mut control = self.pool.control.lock();
            control.shutdown = true;
            if cancel_futures {
                while let Ok(job) = self.pool.rx.try_recv() {
                    job.run(Verdict::Cancel);
                    control.cancelled += 1;
                }
            }
            // Closing the channel: workers finish the queue, then exit.
            control.tx = None;
            if wait {
                std::mem::take(&mut control.threads)
            } else {
                Vec::new()
            }
        };
        let me = thread::current().id();
        for t in threads {
            // A task that drops the last handle of its own pool must not join itself.
            if t.thread().id() != me {
                t.join().ok();
            }
        }
    }

    fn max_workers(&self) -> usize {
        self.max_workers
    }
}

impl Drop for ThreadPoolExecutor {
    fn drop(&mut self) {
        self.shutdown(true, false);
    }
}

impl fmt::Debug for ThreadPoolExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let control = self.pool.control.lock();
        f.debug_struct("ThreadPoolExecutor")
            .field("max_workers", &self.max_workers)
            .field("threads", &control.spawned)
            .field("shutdown", &control.shutdown)
            .field("broken", &self.pool.broken.get())
            .finish_non_exhaustive()
    }
}

/// Builds a [`ThreadPoolExecutor`]: Python's constructor arguments.
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::builder()
///     .max_workers(2)
///     .thread_name_prefix("fetch")
///     .initializer(|| println!("worker ready"))
///     .build().unwrap();
/// let name = pool.submit(|| std::thread::current().name().unwrap().to_owned()).unwrap();
/// assert_eq!(name.result().unwrap(), "fetch_0");
/// ```
#[derive(Default)]
pub struct ThreadPoolBuilder {
    max_workers: Option<usize>,
    prefix: Option<String>,
    initializer: Option<Initializer>,
    task_timing: bool,
}

impl ThreadPoolBuilder {
    /// The most threads the pool starts. Default (left unset), as Python:
    /// `min(32, cpus + 4)`. 0 makes [`build`](Self::build) fail with a
    /// [`BuildError`] (Python's `ValueError: max_workers must be greater
    /// than 0`).
    pub fn max_workers(mut self, n: usize) -> ThreadPoolBuilder {
        self.max_workers = Some(n);
        self
    }

    /// Worker names are `{prefix}_{n}`; default `ThreadPoolExecutor-{pool}`.
    pub fn thread_name_prefix(mut self, prefix: impl Into<String>) -> ThreadPoolBuilder {
        self.prefix = Some(prefix.into());
        self
    }

    /// Runs at the start of each worker thread. If it panics, the pool breaks:
    /// pending and later tasks fail with [`BrokenPool`] (Python's
    /// `BrokenThreadPool`).
    pub fn initializer(mut self, f: impl Fn() + Send + Sync + 'static) -> ThreadPoolBuilder {
        self.initializer = Some(Arc::new(f));
        self
    }

    /// Whether [`stats`](ThreadPoolExecutor::stats) reports task run times
    /// (default: no). On, each task costs two more clock reads
    /// (`Instant::now`: 37–63 ns each on the project's 2-core VM, about
    /// 20 ns on bare metal) and a histogram update in the worker's own
    /// memory (about 120 instructions in all, docs/BENCHMARKS.md
    /// "Statistics cost"); off, the `task_time_*` fields stay empty. The time
    /// measured is the worker's: from taking the task to having completed
    /// its future (the done-callbacks included).
    pub fn task_timing(mut self, on: bool) -> ThreadPoolBuilder {
        self.task_timing = on;
        self
    }

    /// The pool. No thread starts until the first submission.
    ///
    /// # Errors
    /// [`BuildError`] (`argument() == "max_workers"`) for `max_workers(0)`.
    pub fn build(self) -> Result<ThreadPoolExecutor, BuildError> {
        let max_workers = match self.max_workers {
            Some(0) => return Err(BuildError::new("max_workers", "must be greater than 0")),
            Some(n) => n,
            None => default_max_workers(),
        };
        let prefix = self.prefix.unwrap_or_else(|| {
            format!(
                "ThreadPoolExecutor-{}",
                POOL_COUNTER.fetch_add(1, Ordering::Relaxed)
            )
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        Ok(ThreadPoolExecutor {
            pool: Arc::new(Pool {
                control: Mutex::new(Control {
                    shutdown: false,
                    tx: Some(tx),
                    threads: Vec::new(),
                    spawned: 0,
                    counters: Vec::new(),
                    submitted: 0,
                    cancelled: 0,
                    broken: 0,
                }),
                joining: Mutex::new(()),
                idle: Idle::default(),
                broken: OnceLock::new(),
                rx,
                initializer: self.initializer,
                prefix,
                timing: self.task_timing,
                alive: AtomicUsize::new(0),
                started_ms: unix_ms_now(),
            }),
            max_workers,
        })
    }
}

impl fmt::Debug for ThreadPoolBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPoolBuilder")
            .field("max_workers", &self.max_workers)
            .field("thread_name_prefix", &self.prefix)
            .field("initializer", &self.initializer.is_some())
            .field("task_timing", &self.task_timing)
            .finish()
    }
}

/// Python's default: `min(32, (os.process_cpu_count() or 1) + 4)`.
pub fn default_max_workers() -> usize {
    let cpus = thread::available_parallelism().map_or(1, |n| n.get());
    (cpus + 4).min(32)
}
