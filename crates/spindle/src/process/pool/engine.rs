//! The pool engine shared by [`Pool`](super::Pool) and
//! [`ProcessPoolExecutor`](super::ProcessPoolExecutor): the queue of jobs,
//! one slot per worker process, dispatch, close / terminate / join.
#![forbid(unsafe_code)]

use std::collections::VecDeque;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Weak};
use std::thread::{self, ThreadId};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::job::{Failure, Job};
use super::link::{self, Tx};
use super::wire::{ToWorkerRef, WireArgRef};
use crate::futures::BrokenPool;
use crate::ipc::sealed::Sealed;
use crate::process::StartMethod;
use crate::stats::{PoolStats, Times, unix_ms_now};

/// At most this many bytes of arguments are queued to a busy worker (and at
/// most half its pipe), so a write to a busy worker never blocks: only a
/// write to an idle worker, which is reading, may wait (for it to read).
const PIPELINE_MAX_BYTES: usize = 32 * 1024;

/// In the automatic prefetch mode, jobs are sent ahead only while the
/// average job takes less than this...
const AUTO_PREFETCH_BELOW: Duration = Duration::from_millis(1);

/// ...and at most this many per busy worker.
const AUTO_PREFETCH: usize = 4;

/// How long [`Engine::terminate`] waits after SIGTERM before it SIGKILLs the
/// workers still alive (a task that ignores, blocks or handles SIGTERM).
pub(crate) const TERMINATE_GRACE: Duration = Duration::from_secs(1);

/// How a pool is set up (filled by the builders).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) processes: usize,
    pub(crate) method: StartMethod,
    pub(crate) initializer: Option<(String, Vec<u8>)>,
    pub(crate) max_tasks: u64,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) retries: u32,
    /// Jobs sent ahead to a busy worker: `Some(n)` fixed, `None` automatic.
    pub(crate) prefetch: Option<usize>,
    /// SIGTERM → SIGKILL delay of `terminate` ([`TERMINATE_GRACE`] by default).
    pub(crate) terminate_grace: Duration,
    /// Largest encoded argument set or result of one call.
    pub(crate) max_payload: usize,
    pub(crate) name: &'static str,
    /// Told each time a task starts on a worker (see [`TaskStart`]).
    pub(crate) on_task_start: Option<TaskStartHook>,
    /// Start workers as tasks need them, up to `processes`, reusing an idle
    /// one first (CPython 3.9+ `ProcessPoolExecutor._adjust_process_count`);
    /// false: start them all at once (Python's `Pool`, and the executor with
    /// the fork start method).
    pub(crate) on_demand: bool,
}

/// A task has started on a worker process: passed to the observer set with
/// [`ProcessPoolBuilder::on_task_start`](super::ProcessPoolBuilder::on_task_start).
///
/// "Started" means the task is its worker's oldest unanswered one and has
/// been handed to the worker (it may not have read it yet): from this moment
/// on, if that worker dies before answering, this task is the one lost (failed
/// with `WorkerLost`, or re-run if it has [`retries`](super::ProcessPoolBuilder::retries)
/// left) — a task merely sent ahead to a busy worker is not reported until the
/// worker's earlier tasks are answered, and would be requeued, not lost.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct TaskStart {
    /// The worker process running the task.
    pub pid: u32,
    /// The task's registered name (`#[spindle::task]`); a `map` chunk of
    /// several calls is one task.
    pub task: &'static str,
}

/// The observer of [`TaskStart`]s.
#[derive(Clone)]
pub(crate) struct TaskStartHook(pub(crate) Arc<dyn Fn(&TaskStart) + Send + Sync>);

impl std::fmt::Debug for TaskStartHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TaskStartHook")
    }
}

/// A live worker process as the engine sees it.
pub(crate) struct Worker {
    pub(crate) pid: u32,
    pub(crate) tx: Arc<Tx>,
    /// Bytes the worker's pipe holds.
    pub(crate) pipe_cap: usize,
    /// Sent (or in `outbox`) and unanswered, oldest (the running one) first.
    pub(crate) outstanding: VecDeque<Job>,
    /// Encoded frames not handed to a writer yet: the last `outbox_jobs`
    /// jobs of `outstanding` (never seen by the worker), and maybe `Stop`.
    pub(crate) outbox: Vec<u8>,
    /// The memfds the frames of `outbox` announce, in order: sent on the
    /// link's socket before the frames.
    pub(crate) outbox_fds: Vec<Arc<Sealed>>,
    pub(crate) outbox_jobs: usize,
    /// A thread is writing this worker's frames (outside the lock); frames
    /// queued meanwhile wait in `outbox`, so they go out in order.
    pub(crate) writing: bool,
    /// Bytes of arguments of `outstanding`.
    pub(crate) queued_bytes: usize,
    pub(crate) assigned: u64,
    pub(crate) front_since: Instant,
    pub(crate) stop_sent: bool,
    pub(crate) timed_out: Option<Duration>,
    pub(crate) completed: u64,
}

pub(crate) struct State {
    pub(crate) pending: VecDeque<Job>,
    pub(crate) workers: Vec<Option<Worker>>,
    /// Slot threads still running.
    pub(crate) live: usize,
    /// Slot threads started so far (slots `0..spawned` are in use).
    pub(crate) spawned: usize,
    /// Worker processes being started (first or replacement) and not listed
    /// in `workers` yet: the pending jobs they will take need no new slot.
    pub(crate) starting: usize,
    pub(crate) closed: bool,
    pub(crate) terminated: bool,
    pub(crate) broken: Option<BrokenPool>,
    pub(crate) threads: Vec<ThreadId>,
    pub(crate) lost: u64,
    /// Tasks re-run after losing their worker (`retries`).
    pub(crate) retried: u64,
    /// Moving average of how long a job runs on a worker.
    pub(crate) ewma_job: Option<Duration>,
    /// Jobs to fail once the lock is released (see [`Engine::release`]).
    pub(crate) failed: Vec<(Job, Failure)>,
    /// Jobs accepted (`submit`, each job of `submit_all`).
    pub(crate) submitted: u64,
    /// Jobs answered by a worker, by outcome (see [`Engine::stats`]).
    pub(crate) completed: u64,
    pub(crate) answered_failed: u64,
    pub(crate) panicked: u64,
    /// Run times of the answered jobs (the figure `ewma_job` averages).
    pub(crate) times: Times,
}

/// Starts the slot thread of a slot (slot.rs), counted under the lock: given
/// to [`Engine::new`] so that the engine does not import the slots, which
/// import it.
pub(crate) type SpawnSlot = fn(&Arc<Engine>, &mut State, usize) -> std::io::Result<()>;

pub(crate) struct Engine {
    /// This engine, for the slot threads started on demand by `dispatch`.
    me: Weak<Engine>,
    spawn_slot: SpawnSlot,
    pub(crate) cfg: Config,
    pub(crate) state: Mutex<State>,
    pub(crate) changed: Condvar,
    /// Jobs failed without an answer (lost, broken, refused, too large),
    /// counted where they fail, often outside the lock.
    failed_jobs: AtomicU64,
    /// Jobs cancelled: a future cancelled while queued, `cancel_futures`,
    /// `terminate`.
    cancelled_jobs: AtomicU64,
    /// When the pool was built, in ms since the Unix epoch.
    started_ms: u64,
}

/// Why `submit` refused a task (handed back as it was given).
pub(crate) enum Refused<T> {
    ShutDown(T),
    Broken(T, BrokenPool),
}

impl Engine {
    pub(crate) fn new(cfg: Config, spawn_slot: SpawnSlot) -> Arc<Engine> {
        let n = cfg.processes;
        Arc::new_cyclic(|me| Engine {
            me: me.clone(),
            spawn_slot,
            cfg,
            state: Mutex::new(State {
                pending: VecDeque::new(),
                workers: (0..n).map(|_| None).collect(),
                live: 0,
                spawned: 0,
                starting: 0,
                closed: false,
                terminated: false,
                broken: None,
                threads: Vec::new(),
                lost: 0,
                retried: 0,
                ewma_job: None,
                failed: Vec::new(),
                submitted: 0,
                completed: 0,
                answered_failed: 0,
                panicked: 0,
                times: Times::default(),
            }),
            changed: Condvar::new(),
            failed_jobs: AtomicU64::new(0),
            cancelled_jobs: AtomicU64::new(0),
            started_ms: unix_ms_now(),
        })
    }

    /// Queues the job `into_job` makes of `task` and hands it to a worker if
    /// one has room; returns what `into_job` returned beside the job (the
    /// future of an executor's task). `into_job` runs (under the lock) only
    /// once the pool has accepted the task, so a refused task comes back
    /// untouched: the one submit path of both front ends (a job already
    /// built goes in as `submit(job, |job| (job, ()))`).
    pub(crate) fn submit<T, R>(
        &self,
        task: T,
        into_job: impl FnOnce(T) -> (Job, R),
    ) -> Result<R, Refused<T>> {
        let mut st = self.state.lock();
        if let Some(b) = &st.broken {
            return Err(Refused::Broken(task, b.clone()));
        }
        if st.closed {
            return Err(Refused::ShutDown(task));
        }
        let (mut job, out) = into_job(task);
        #[cfg(feature = "tracing")]
        job.open_trace();
        st.submitted += 1;
        if let Some(m) = job.refused.take() {
            drop(st);
            self.fail_job(job, Failure::Refused(m));
            return Ok(out);
        }
        if let Some(t) = job.too_large(self.cfg.max_payload) {
            // Checked before anything is written: the worker never sees it.
            drop(st);
            self.fail_job(job, Failure::TooLarge(t));
            return Ok(out);
        }
        if job.needs_sealing() {
            // Large arguments go to memfds without the lock held.
            drop(st);
            if let Err(e) = job.seal() {
                let m = format!("the task's arguments could not be placed in shared memory: {e}");
                self.fail_job(job, Failure::Refused(m));
                return Ok(out);
            }
            st = self.state.lock();
            let refused = match (&st.broken, st.closed) {
                (Some(b), _) => Some(Failure::Broken(b.clone())),
                (None, true) => Some(Failure::Cancelled),
                (None, false) => None,
            };
            if let Some(f) = refused {
                drop(st);
                self.fail_job(job, f);
                return Ok(out);
            }
        }
        st.pending.push_back(job);
        self.dispatch(&mut st);
        self.release(st);
        Ok(out)
    }

    /// Queues many jobs under one lock (a `map`): fewer wake-ups, and the
    /// first writes carry several jobs each. If the pool is shut down
    /// (`Err(None)`) or broken (`Err(Some(reason))`), the jobs fail with
    /// `Cancelled` / `BrokenPool`, the first one first.
    pub(crate) fn submit_all(&self, jobs: Vec<Job>) -> Result<(), Option<BrokenPool>> {
        let mut st = self.state.lock();
        st.submitted += jobs.len() as u64;
        let refused = match (&st.broken, st.closed) {
            (Some(b), _) => Some((Failure::Broken(b.clone()), Some(b.clone()))),
            (None, true) => Some((Failure::Cancelled, None)),
            (None, false) => None,
        };
        if let Some((failure, err)) = refused {
            drop(st);
            self.fail_all(jobs, &failure);
            return Err(err);
        }
        for mut job in jobs {
            #[cfg(feature = "tracing")]
            job.open_trace();
            match job.refused.take() {
                Some(m) => st.failed.push((job, Failure::Refused(m))),
                None => st.pending.push_back(job),
            }
        }
        self.dispatch(&mut st);
        self.release(st);
        Ok(())
    }

    /// Unlocks `st`, then writes the frames that `dispatch` queued (each
    /// worker's by one thread at a time, so in order) and fails the jobs it
    /// set aside. No write ever happens under the lock: a worker slow to read
    /// holds up only the thread writing to it, never the pool (or
    /// `terminate`).
    pub(crate) fn release<'a>(&'a self, mut st: MutexGuard<'a, State>) {
        loop {
            let failed = std::mem::take(&mut st.failed);
            let mut writes = Vec::new();
            let mut started = Vec::new();
            let observed = self.cfg.on_task_start.is_some();
            for (slot, w) in st.workers.iter_mut().enumerate() {
                let Some(w) = w.as_mut() else { continue };
                if w.writing || w.outbox.is_empty() {
                    continue;
                }
                // Every unanswered job was still in the outbox: the oldest
                // one starts now (see `TaskStart`).
                if observed && w.outbox_jobs > 0 && w.outbox_jobs == w.outstanding.len() {
                    let task = w.outstanding.front().map_or("", |j| j.name);
                    started.push(TaskStart { pid: w.pid, task });
                }
                w.writing = true;
                w.outbox_jobs = 0;
                let fds = std::mem::take(&mut w.outbox_fds);
                let buf = std::mem::take(&mut w.outbox);
                writes.push((slot, w.tx.clone(), buf, fds, false));
            }
            if writes.is_empty() && failed.is_empty() {
                return;
            }
            drop(st);
            self.report_started(&started);
            for (job, f) in failed {
                self.fail_job(job, f);
            }
            if writes.is_empty() {
                return;
            }
            for (_, tx, buf, fds, unsent) in &mut writes {
                // A failed write means the worker is gone: its slot thread
                // reads end-of-file and settles its jobs. The memfds go
                // first: the frames announcing them follow.
                if !fds.is_empty() {
                    let fds: Vec<_> = fds.iter().map(|s| s.fd()).collect();
                    if tx.send_fds(&fds).is_err() {
                        // Without its memfd the frame cannot be sent, and a
                        // job never sent would wait forever: the worker is
                        // killed below, and its slot settles the job.
                        *unsent = true;
                        continue;
                    }
                }
                tx.write_all(buf).ok();
            }
            st = self.state.lock();
            for (slot, tx, mut buf, _, unsent) in writes {
                // Still the worker written to (not a replacement in its slot:
                // the `Arc` held here keeps its address unique).
                if let Some(w) = st.workers[slot]
                    .as_mut()
                    .filter(|w| Arc::ptr_eq(&w.tx, &tx))
                {
                    if unsent {
                        // Listed, so the pid is still its own.
                        kill(Pid::from_raw(w.pid as i32), Signal::SIGKILL).ok();
                    }
                    w.writing = false;
                    if w.outbox.is_empty() && buf.capacity() <= 1 << 20 {
                        buf.clear();
                        w.outbox = buf; // keep the allocation
                    }
                }
            }
        }
    }

    /// Sends pending jobs to workers: first to idle workers, then (prefetch)
    /// to the busy worker least likely to hold them up; tells idle workers to
    /// stop once closed and drained.
    pub(crate) fn dispatch(&self, st: &mut State) {
        let now = Instant::now();
        // Idle workers first, in slot order.
        for slot in 0..st.workers.len() {
            if st.pending.is_empty() {
                break;
            }
            if st.workers[slot]
                .as_ref()
                .is_some_and(|w| w.outstanding.is_empty() && self.has_room(w))
            {
                self.send_one(st, slot, now);
            }
        }
        // No idle worker took them: start workers for them, up to the limit
        // (on demand only; each worker being started will take one).
        if self.cfg.on_demand {
            self.spawn_for_pending(st);
        }
        // Then jobs sent ahead to busy workers.
        while !st.pending.is_empty() {
            let Some(slot) = self.prefetch_target(st, now) else {
                break;
            };
            if !self.send_one(st, slot, now) {
                break;
            }
        }
        if st.closed && st.pending.is_empty() {
            for w in st.workers.iter_mut().flatten() {
                if w.outstanding.is_empty() && !w.stop_sent {
                    w.stop_sent = true;
                    link::push_frame(&mut w.outbox, &ToWorkerRef::Stop).ok();
                }
            }
        }
    }

    /// Starts a slot thread (a new worker) for each pending job that no
    /// worker being started will take, while fewer than `processes` slots
    /// are in use: CPython's `_adjust_process_count` starts a process only
    /// when no worker is idle. A slot thread that cannot be started breaks
    /// the pool (its jobs fail once the lock is released).
    fn spawn_for_pending(&self, st: &mut State) {
        if st.terminated || st.broken.is_some() {
            return;
        }
        while st.pending.len() > st.starting && st.spawned < self.cfg.processes {
            let Some(engine) = self.me.upgrade() else {
                return;
            };
            let slot = st.spawned;
            if let Err(e) = (self.spawn_slot)(&engine, st, slot) {
                let b = BrokenPool::new(format!("a pool thread could not be started: {e}"));
                st.broken = Some(b.clone());
                st.closed = true;
                let failed: Vec<_> = st
                    .pending
                    .drain(..)
                    .map(|j| (j, Failure::Broken(b.clone())))
                    .collect();
                st.failed.extend(failed);
                self.changed.notify_all();
                return;
            }
        }
    }

    fn has_room(&self, w: &Worker) -> bool {
        !w.stop_sent && (self.cfg.max_tasks == 0 || w.assigned < self.cfg.max_tasks)
    }

    /// The busy worker to send the next job ahead to, if any: with an
    /// explicit `prefetch(n)`, any worker with fewer than `n` queued; in the
    /// automatic mode, only while jobs are short on average (then a job
    /// queued behind another waits little), and never to a worker whose job
    /// has run much longer than that average. Among candidates, the fewest
    /// queued, then the youngest running job.
    fn prefetch_target(&self, st: &State, now: Instant) -> Option<usize> {
        let (extra, max_age) = match self.cfg.prefetch {
            Some(n) => (n, None),
            None => match st.ewma_job {
                Some(avg) if avg < AUTO_PREFETCH_BELOW => {
                    (AUTO_PREFETCH, Some(avg * 4 + Duration::from_micros(200)))
                }
                _ => return None,
            },
        };
        let weight = st.pending.front().map_or(0, Job::weight);
        if extra == 0 || weight > PIPELINE_MAX_BYTES {
            return None;
        }
        st.workers
            .iter()
            .enumerate()
            .filter_map(|(i, w)| w.as_ref().map(|w| (i, w)))
            .filter(|(_, w)| {
                self.has_room(w)
                    && w.outstanding.len() <= extra
                    && w.queued_bytes + weight <= PIPELINE_MAX_BYTES.min(w.pipe_cap / 2)
                    && max_age.is_none_or(|m| now.duration_since(w.front_since) < m)
            })
            .min_by_key(|(_, w)| (w.outstanding.len(), std::cmp::Reverse(w.front_since)))
            .map(|(i, _)| i)
    }

    /// Queues the first pending job that is not cancelled for the worker of
    /// `slot` (into its outbox: [`release`](Self::release) writes it); false
    /// if the worker is gone.
    fn send_one(&self, st: &mut State, slot: usize, now: Instant) -> bool {
        let State {
            pending,
            workers,
            failed,
            ..
        } = st;
        let Some(w) = workers[slot].as_mut() else {
            return false;
        };
        while let Some(mut job) = pending.pop_front() {
            if !job.sink.start() {
                self.cancelled_jobs.fetch_add(1, Relaxed);
                continue; // cancelled while queued
            }
            let at = w.outbox.len();
            let pushed = if let Some(bulk) = &job.bulk {
                let (sealed, mut moved) = (&bulk.sealed, bulk.moved.iter().peekable());
                let args = (job.args.iter().enumerate())
                    .map(|(i, a)| match moved.next_if(|(j, _, _)| *j == i) {
                        Some(&(_, at, len)) => WireArgRef::Bulk(at as u64, len as u64),
                        None => WireArgRef::Inline(a),
                    })
                    .collect();
                let msg = ToWorkerRef::RunBulk {
                    name: job.name,
                    bulk: sealed.len() as u64,
                    args,
                    #[cfg(feature = "tracing")]
                    trace: job.trace.as_ref().map(|t| t.1.as_str()),
                };
                let r = link::push_frame(&mut w.outbox, &msg);
                if r.is_ok() {
                    w.outbox_fds.push(sealed.clone());
                }
                r
            } else {
                let msg = ToWorkerRef::Run {
                    name: job.name,
                    args: &job.args,
                    #[cfg(feature = "tracing")]
                    trace: job.trace.as_ref().map(|t| t.1.as_str()),
                };
                link::push_frame(&mut w.outbox, &msg)
            };
            if let Err(m) = pushed {
                w.outbox.truncate(at);
                failed.push((job, Failure::Refused(m)));
                continue;
            }
            if w.outstanding.is_empty() {
                w.front_since = now;
            }
            w.queued_bytes += job.weight();
            w.outstanding.push_back(job);
            w.outbox_jobs += 1;
            w.assigned += 1;
            return true;
        }
        true
    }

    /// Sends `sig` to every live worker (they are not reaped while listed, so
    /// the pid is theirs).
    pub(crate) fn signal_all(st: &State, sig: Signal) {
        for w in st.workers.iter().flatten() {
            kill(Pid::from_raw(w.pid as i32), sig).ok();
        }
    }

    /// No more jobs; workers exit once the queue is drained (Python's
    /// `Pool.close()`, `Executor.shutdown(wait=False)`).
    pub(crate) fn close(&self, cancel_pending: bool) {
        let drained = {
            let mut st = self.state.lock();
            st.closed = true;
            // `wait_for_workers` and the watchdog look at `closed`.
            self.changed.notify_all();
            let drained: Vec<Job> = if cancel_pending {
                st.pending.drain(..).collect()
            } else {
                Vec::new()
            };
            self.dispatch(&mut st);
            self.release(st);
            drained
        };
        self.fail_all(drained, &Failure::Cancelled);
    }

    /// Stops the workers at once and cancels every queued and running job
    /// (Python's `Pool.terminate()`), then waits for the workers to end:
    /// SIGTERM first, SIGKILL to those still alive after the grace period
    /// (a task may ignore or block SIGTERM), so this always returns.
    pub(crate) fn terminate(&self) {
        let drained: Vec<Job> = {
            let mut st = self.state.lock();
            st.closed = true;
            st.terminated = true;
            Engine::signal_all(&st, Signal::SIGTERM);
            self.changed.notify_all();
            st.pending.drain(..).collect()
        };
        self.fail_all(drained, &Failure::Cancelled);
        // A grace too long to represent means: never escalate.
        let grace = Instant::now().checked_add(self.cfg.terminate_grace);
        if grace.is_none() || self.wait_workers(grace) {
            self.wait_workers(None);
            return;
        }
        {
            // A worker listed now is not reaped yet (its slot thread unlists
            // it first), so the pid is still its own. A worker started after
            // this point is killed by its slot thread (see `slot_main`).
            let st = self.state.lock();
            Engine::signal_all(&st, Signal::SIGKILL);
        }
        self.wait_workers(None);
    }

    /// Python 3.14's `terminate_workers()` / `kill_workers()`: shuts the
    /// pool down cancelling the queued jobs (`shutdown(wait=False,
    /// cancel_futures=True)`), breaks it, and sends `sig` to every worker
    /// alive; their running jobs fail with `BrokenPool` (Python's
    /// `BrokenProcessPool`). Does not wait.
    pub(crate) fn signal_workers(&self, sig: Signal, reason: &str) {
        self.close(true);
        let drained = {
            let mut st = self.state.lock();
            if st.broken.is_none() {
                st.broken = Some(BrokenPool::new(reason));
            }
            Engine::signal_all(&st, sig);
            self.changed.notify_all();
            // Anything queued since (a worker's requeued prefetch) is cancelled.
            st.pending.drain(..).collect::<Vec<_>>()
        };
        self.fail_all(drained, &Failure::Cancelled);
    }

    /// Breaks the pool: fails every queued job and stops the workers
    /// (Python's `BrokenProcessPool`, but with the reason kept).
    pub(crate) fn break_pool(&self, reason: String) {
        let (drained, b) = {
            let mut st = self.state.lock();
            if st.broken.is_none() {
                st.broken = Some(BrokenPool::new(reason));
            }
            st.closed = true;
            Engine::signal_all(&st, Signal::SIGTERM);
            self.changed.notify_all();
            let b = st.broken.clone().expect("set above");
            (st.pending.drain(..).collect::<Vec<_>>(), b)
        };
        self.fail_all(drained, &Failure::Broken(b));
    }

    /// Waits until every slot thread has ended (or `deadline`); returns
    /// whether they have. Never waits on the calling thread itself (a
    /// callback that closes its own pool).
    pub(crate) fn wait_workers(&self, deadline: Option<Instant>) -> bool {
        let me = thread::current().id();
        let mut st = self.state.lock();
        let own = usize::from(st.threads.contains(&me));
        while st.live > own {
            match deadline {
                None => self.changed.wait(&mut st),
                Some(at) => {
                    if self.changed.wait_until(&mut st, at).timed_out() {
                        return st.live <= own;
                    }
                }
            }
        }
        true
    }

    /// Tells the observer, if any, of `started` (outside the lock).
    pub(crate) fn report_started(&self, started: &[TaskStart]) {
        if let Some(hook) = &self.cfg.on_task_start {
            for s in started {
                (hook.0)(s);
            }
        }
    }

    /// Fails `job` with `failure`, counting it for [`stats`](Self::stats):
    /// `Cancelled` as cancelled, anything else as failed.
    pub(crate) fn fail_job(&self, job: Job, failure: Failure) {
        let count = match failure {
            Failure::Cancelled => &self.cancelled_jobs,
            _ => &self.failed_jobs,
        };
        count.fetch_add(1, Relaxed);
        #[cfg(feature = "tracing")]
        if let Some(t) = &job.trace {
            tracing::trace!(parent: &t.0, failure = ?failure, "result");
        }
        job.sink.fail(failure);
    }

    /// Fails each job with `failure` ([`fail_job`](Self::fail_job)).
    pub(crate) fn fail_all(&self, jobs: impl IntoIterator<Item = Job>, failure: &Failure) {
        for job in jobs {
            self.fail_job(job, failure.clone());
        }
    }

    /// The snapshot behind `ProcessPoolExecutor::stats` and `Pool::stats`,
    /// taken under the lock. A worker runs its oldest unanswered job once
    /// that job was handed to a writer (see [`TaskStart`]); the jobs behind
    /// it (sent ahead) and those in the queue are pending.
    pub(crate) fn stats(&self) -> PoolStats {
        let st = self.state.lock();
        let mut s = PoolStats::zero(self.started_ms);
        let mut pending = st.pending.len() as u64;
        for w in st.workers.iter().flatten() {
            s.workers_alive += 1;
            let running = u64::from(w.outstanding.len() > w.outbox_jobs);
            s.workers_busy += running;
            pending += w.outstanding.len() as u64 - running;
        }
        s.workers_idle = s.workers_alive - s.workers_busy;
        s.tasks_running = s.workers_busy;
        s.tasks_pending = pending;
        s.tasks_submitted = st.submitted;
        s.tasks_completed = st.completed;
        s.tasks_panicked = st.panicked;
        s.tasks_failed = st.answered_failed + self.failed_jobs.load(Relaxed);
        s.tasks_cancelled = self.cancelled_jobs.load(Relaxed);
        s.workers_lost = st.lost;
        s.tasks_retried = st.retried;
        st.times.fill(&mut s);
        s
    }

    /// The pids of the live workers, by slot.
    pub(crate) fn pids(&self) -> Vec<u32> {
        let st = self.state.lock();
        st.workers.iter().flatten().map(|w| w.pid).collect()
    }
}
