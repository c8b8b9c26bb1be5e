//! Snapshots of what a pool or a queue is doing: [`PoolStats`] (from
//! `ThreadPoolExecutor::stats`, `ProcessPoolExecutor::stats`, `Pool::stats`)
//! and [`QueueStats`] (from `queue::Queue::stats` and its siblings,
//! `ipc::Queue::stats`).
//!
//! Python has no equivalent (docs/PYTHON.md, "Statistics"). The counters are
//! kept all the time at the cost of a few plain stores per task (or fields
//! under a lock the pool or queue already takes); a snapshot only reads
//! them. Each field is read on its own, so a snapshot taken while tasks run
//! may mix instants (a task counted as completed and, read a moment
//! earlier, as running); one taken while nothing moves is exact.
//!
//! [`serve`] answers a Unix socket with a [`Status`] of named [`Sources`]
//! (`spindle status --socket PATH` reads it).
#![forbid(unsafe_code)]

mod json;
mod socket;

pub use socket::{BACKLOG, Sources, StatsServer, Status, WRITE_TIMEOUT, serve, status_json};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;

/// Buckets of a [`Histogram`]: bucket `i` holds durations `d` (in
/// nanoseconds) with `2^(i-1) <= d < 2^i` (bucket 0: `d == 0`); the last
/// one also holds everything longer (2^63 ns is 292 years).
pub(crate) const BUCKETS: usize = 64;

/// A snapshot of a pool: its workers, its tasks and how long they ran.
///
/// What "a task" is: one `submit` (or one `map` chunk, which runs as one
/// task: `chunksize` items count once). The counts are exact once the
/// pool is idle; `tasks_submitted == tasks_pending + tasks_running +
/// tasks_completed + tasks_failed + tasks_panicked + tasks_cancelled` then
/// holds.
///
/// Task times are kept in a histogram of 64 power-of-two buckets of
/// nanoseconds: a percentile is reported as the *upper bound* of the bucket
/// it falls in, so it is at most 2× the true value and never below it
/// (resolution: a factor of 2). The mean is exact (total time / tasks
/// timed).
///
/// # Examples
///
/// ```
/// use spindle::futures::{Executor, ThreadPoolExecutor};
///
/// let pool = ThreadPoolExecutor::builder().max_workers(2).task_timing(true).build().unwrap();
/// pool.submit(|| 1 + 1).unwrap().result().unwrap();
/// pool.shutdown(true, false);
/// let s = pool.stats();
/// assert_eq!((s.tasks_submitted, s.tasks_completed), (1, 1));
/// assert_eq!(s.task_time_samples, 1);
/// println!("{s:?}"); // or any serde format
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PoolStats {
    /// Worker threads or processes alive now.
    pub workers_alive: u64,
    /// Workers running a task now.
    pub workers_busy: u64,
    /// `workers_alive - workers_busy`.
    pub workers_idle: u64,
    /// Tasks the pool accepted (`submit` returned `Ok`; each `map` chunk).
    pub tasks_submitted: u64,
    /// Tasks accepted and not started: queued in the pool (a process pool
    /// also counts tasks sent ahead to a busy worker, not started yet). A
    /// future cancelled while queued stays here until the pool discards it.
    pub tasks_pending: u64,
    /// Tasks running on a worker now.
    pub tasks_running: u64,
    /// Tasks that returned a value (every item of a `map` chunk did).
    pub tasks_completed: u64,
    /// Tasks that ended with an error other than a panic or a cancel: an
    /// `Err` of a [`fallible`](crate::futures::fallible) task
    /// (`FutureError::Failed`), a worker lost with no retry left
    /// (`WorkerLost`, the run timed out included), a broken pool
    /// (`BrokenPool`), a payload over the limit (`TooLarge`), arguments or
    /// a result that could not be encoded or decoded.
    pub tasks_failed: u64,
    /// Tasks that panicked (`FutureError::Panicked`); a `map` chunk of which
    /// one item panicked counts here once.
    pub tasks_panicked: u64,
    /// Tasks cancelled before they ran: a `Future::cancel` that succeeded
    /// (counted when the pool discards the task: when a worker would have
    /// taken it), a shutdown with `cancel_futures`, a process pool's
    /// `terminate` (which also cancels the running tasks: counted here).
    pub tasks_cancelled: u64,
    /// Worker processes that died while running a task (a process pool's
    /// `WorkerLost`); always 0 for a thread pool.
    pub workers_lost: u64,
    /// Tasks queued again after their worker was lost (the process pools'
    /// `retries`); each re-run counts once. Always 0 for a thread pool.
    pub tasks_retried: u64,
    /// Tasks whose run time was measured (see the pool's timing switch).
    pub task_time_samples: u64,
    /// Mean task run time in nanoseconds; `None` before any timed task.
    pub task_time_mean_ns: Option<u64>,
    /// Median task run time, as its histogram bucket's upper bound
    /// (nanoseconds, at most 2× the true value).
    pub task_time_p50_ns: Option<u64>,
    /// 99th percentile of the task run time, as its bucket's upper bound.
    pub task_time_p99_ns: Option<u64>,
    /// When the pool was built: milliseconds since the Unix epoch.
    pub started_unix_ms: u64,
}

/// A snapshot of a queue's counters.
///
/// `puts` and `gets` count items since the queue was made (a put refused
/// because the queue is full or shut down is not counted); `qsize` and
/// `unfinished` are Python's `qsize()` and `unfinished_tasks`. Exact when
/// no put or get is in progress: `puts - gets - dropped == qsize` where
/// `dropped` are the items an immediate shutdown discarded.
///
/// # Examples
///
/// ```
/// use spindle::queue::Queue;
///
/// let q = Queue::new();
/// q.put(1).unwrap();
/// q.put(2).unwrap();
/// q.get().unwrap();
/// let s = q.stats();
/// assert_eq!((s.qsize, s.unfinished, s.puts, s.gets), (1, 2, 2, 1));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct QueueStats {
    /// Items in the queue now (`qsize()`).
    pub qsize: u64,
    /// Items put and not yet marked done (`unfinished_tasks`).
    pub unfinished: u64,
    /// Items put so far.
    pub puts: u64,
    /// Items taken so far.
    pub gets: u64,
}

impl QueueStats {
    pub(crate) fn new(qsize: u64, unfinished: u64, puts: u64, gets: u64) -> QueueStats {
        QueueStats {
            qsize,
            unfinished,
            puts,
            gets,
        }
    }
}

/// The bucket of `ns`: 0 for 0, else `floor(log2(ns)) + 1`, at most 63.
pub(crate) fn bucket(ns: u64) -> usize {
    ((u64::BITS - ns.leading_zeros()) as usize).min(BUCKETS - 1)
}

/// The largest duration bucket `i` holds (`2^i - 1` ns, reported rounded
/// up to `2^i`).
fn upper_bound(i: usize) -> u64 {
    if i >= 63 { u64::MAX } else { 1u64 << i }
}

/// A duration in nanoseconds, saturating.
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Task times: a count per bucket and the total, as relaxed atomics written
/// by one thread (a worker: plain load + store, no read-modify-write).
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    total_ns: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            total_ns: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Records one duration. Single writer: load + store.
    pub(crate) fn record_single_writer(&self, ns: u64) {
        let b = &self.buckets[bucket(ns)];
        b.store(b.load(Relaxed) + 1, Relaxed);
        self.total_ns
            .store(self.total_ns.load(Relaxed).saturating_add(ns), Relaxed);
    }

    /// Adds this histogram's counts into `into`.
    pub(crate) fn add_to(&self, into: &mut Times) {
        for (i, b) in self.buckets.iter().enumerate() {
            into.buckets[i] += b.load(Relaxed);
        }
        into.total_ns = into.total_ns.saturating_add(self.total_ns.load(Relaxed));
    }
}

/// Task times as plain numbers (kept under a lock, or summed for a snapshot).
#[derive(Debug, Clone)]
pub(crate) struct Times {
    pub(crate) buckets: [u64; BUCKETS],
    pub(crate) total_ns: u64,
}

impl Default for Times {
    fn default() -> Times {
        Times {
            buckets: [0; BUCKETS],
            total_ns: 0,
        }
    }
}

impl Times {
    /// Records `n` tasks that took `ns` each.
    pub(crate) fn record_n(&mut self, ns: u64, n: u64) {
        self.buckets[bucket(ns)] += n;
        self.total_ns = self.total_ns.saturating_add(ns.saturating_mul(n));
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The upper bound of the bucket holding the `q`-quantile (`0 < q <= 1`).
    fn quantile(&self, q: f64) -> Option<u64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        // The rank (1-based) of the quantile sample: ceil(q * n), at least 1.
        let rank = ((q * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, &c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(upper_bound(i));
            }
        }
        Some(u64::MAX)
    }

    /// Fills the `task_time_*` fields of `s`.
    pub(crate) fn fill(&self, s: &mut PoolStats) {
        let n = self.count();
        s.task_time_samples = n;
        s.task_time_mean_ns = (n > 0).then(|| self.total_ns / n);
        s.task_time_p50_ns = self.quantile(0.5);
        s.task_time_p99_ns = self.quantile(0.99);
    }
}

impl PoolStats {
    /// All zero, built at `started`.
    pub(crate) fn zero(started_unix_ms: u64) -> PoolStats {
        PoolStats {
            workers_alive: 0,
            workers_busy: 0,
            workers_idle: 0,
            tasks_submitted: 0,
            tasks_pending: 0,
            tasks_running: 0,
            tasks_completed: 0,
            tasks_failed: 0,
            tasks_panicked: 0,
            tasks_cancelled: 0,
            workers_lost: 0,
            tasks_retried: 0,
            task_time_samples: 0,
            task_time_mean_ns: None,
            task_time_p50_ns: None,
            task_time_p99_ns: None,
            started_unix_ms,
        }
    }
}

/// Now, in milliseconds since the Unix epoch (0 for a clock before it).
pub(crate) fn unix_ms_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(bucket(0), 0);
        assert_eq!(bucket(1), 1);
        assert_eq!(bucket(2), 2);
        assert_eq!(bucket(3), 2);
        assert_eq!(bucket(1023), 10);
        assert_eq!(bucket(1024), 11);
        assert_eq!(bucket(u64::MAX), 63);
    }

    #[test]
    fn quantiles_are_bucket_upper_bounds() {
        let mut t = Times::default();
        let mut s = PoolStats::zero(0);
        t.fill(&mut s);
        assert_eq!((s.task_time_samples, s.task_time_p50_ns), (0, None));
        t.record_n(1_000, 98); // bucket 10: [512, 1024)
        t.record_n(1_000_000, 2); // bucket 20
        t.fill(&mut s);
        assert_eq!(s.task_time_samples, 100);
        assert_eq!(s.task_time_p50_ns, Some(1024));
        assert_eq!(s.task_time_p99_ns, Some(1 << 20));
        assert_eq!(s.task_time_mean_ns, Some((98 * 1_000 + 2_000_000) / 100));
    }
}
