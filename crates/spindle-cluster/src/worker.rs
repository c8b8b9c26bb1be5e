//! `Worker`: takes tasks from a broker and runs them here.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use spindle::futures::{Executor, FutureError};
use spindle::process::{EncodedCall, ProcessPoolExecutor, TaskFault};

use crate::broker::{Broker, BrokerError, Fetched};
use crate::executor::{TIMEOUT_GRACE, TaskOptions};
use crate::wire::{self, JobEntry, JobOptions, Message};

/// What a worker did, for its log and its tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerStats {
    /// Jobs run and acknowledged (their result recorded).
    pub done: u64,
    /// Jobs whose ack did not count: this worker's lease had run out and
    /// another worker had the job (its result was dropped).
    pub stale: u64,
    /// Entries given up at once: not a job, an unknown task, a task of
    /// another signature, arguments that do not decode.
    pub dead_lettered: u64,
    /// Jobs that failed (panicked) and were given back to run again after
    /// their backoff (`TaskOptions::retries`).
    pub retried: u64,
    /// Jobs given up at their timeout (`TaskOptions::timeout`).
    pub timed_out: u64,
    /// Jobs whose task process died ([`WorkerMode::Processes`]: a crash,
    /// an abort, a SIGKILL): left unacknowledged, so the broker delivers
    /// them again once their lease runs out (or gives them up past
    /// `max_deliveries`, and their callers get `WorkerLost`).
    pub crashed: u64,
}

#[derive(Debug, Default)]
struct Counters {
    done: AtomicU64,
    stale: AtomicU64,
    dead: AtomicU64,
    retried: AtomicU64,
    timed_out: AtomicU64,
    crashed: AtomicU64,
}

/// Where a worker runs its tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkerMode {
    /// On its own threads (`concurrency` of them): a task that crashes
    /// the process (abort, segfault) takes the worker down with it.
    #[default]
    Threads,
    /// On a local `ProcessPoolExecutor` of `concurrency` processes (the
    /// same binary, so the same tasks): a task that crashes its process
    /// is `WorkerLost` on the local pool, which starts a new process; the
    /// worker lives on and leaves the entry unacknowledged, so it is
    /// delivered again once its lease runs out — retried, up to its
    /// `max_deliveries`, then given up and `WorkerLost` for its caller.
    Processes,
}

/// Runs one encoded call in a process of the worker's local pool (the
/// registry of tasks is the same binary's).
#[spindle::task]
fn run_encoded(call: EncodedCall) -> Result<ByteBuf, TaskFault> {
    call.invoke().map(ByteBuf::from)
}

/// A job this worker runs.
#[derive(Debug)]
struct Held {
    /// The lease the heartbeat extends it by; `None` for a job with a
    /// timeout (its lease is its time limit).
    lease: Option<Duration>,
    /// When the heartbeat extends it next.
    next: Instant,
    /// A job with a timeout: when it is given up, and whom to tell.
    deadline: Option<Deadline>,
    /// Given up at its timeout: its outcome is dropped.
    timed_out: bool,
}

#[derive(Debug, Clone)]
struct Deadline {
    at: Instant,
    timeout: Duration,
    client: String,
    job: u64,
    ttl: Duration,
}

type HeldMap = Mutex<HashMap<u64, Held>>;

/// A cluster worker: `concurrency` threads, each taking one task at a time
/// from the broker under a lease, running it with
/// [`process::invoke`](spindle::process::invoke) (the tasks of this
/// binary, by name, checked by signature) and sending the outcome back; a
/// heartbeat thread extends the leases of the tasks running, every third
/// of the lease.
///
/// A task that cannot run here — not a job at all, an unknown task, a task
/// of another signature, arguments that do not decode — is dead-lettered
/// at once with its reason (no other worker of this program could run it
/// either) and its caller's future fails with that reason.
pub struct Worker {
    broker: Arc<dyn Broker>,
    concurrency: usize,
    options: TaskOptions,
    /// Its id in the broker's heartbeats, and how often it sends one.
    status: crate::status::Beat,
    counters: Arc<Counters>,
    mode: WorkerMode,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("broker", &self.broker)
            .field("concurrency", &self.concurrency)
            .finish_non_exhaustive()
    }
}

impl Worker {
    /// A worker of one thread on `broker`, as its own consumer.
    pub fn new(broker: &dyn Broker) -> Worker {
        Worker {
            broker: broker.consumer(),
            concurrency: 1,
            options: TaskOptions::default(),
            status: crate::status::Beat::default(),
            counters: Arc::default(),
            mode: WorkerMode::Threads,
        }
    }

    /// Its id in the broker's worker heartbeats (default
    /// `HOST:PID:RANDOM`, unique); reuse one only for the same worker.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.status.id = id.into();
        self
    }

    /// Its id in the broker's worker heartbeats.
    pub fn worker_id(&self) -> &str {
        &self.status.id
    }

    /// How often it sends the broker a heartbeat with its status (default
    /// 2 s; at least 10 ms): the broker drops it from
    /// [`ClusterStatus`](crate::ClusterStatus) after
    /// [`HEARTBEAT_MISSES`](crate::status::HEARTBEAT_MISSES) of them
    /// missed.
    pub fn status_every(mut self, every: Duration) -> Self {
        self.status.every = every.max(Duration::from_millis(10));
        self
    }

    /// What it did so far (while it runs, from another thread: a
    /// progress bar's count).
    pub fn stats(&self) -> WorkerStats {
        let c = &self.counters;
        WorkerStats {
            done: c.done.load(Ordering::Relaxed),
            stale: c.stale.load(Ordering::Relaxed),
            dead_lettered: c.dead.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            timed_out: c.timed_out.load(Ordering::Relaxed),
            crashed: c.crashed.load(Ordering::Relaxed),
        }
    }

    /// Where the tasks run (default [`WorkerMode::Threads`]).
    pub fn mode(mut self, mode: WorkerMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many tasks it runs at once (threads; default 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Its lease on each fetch and the results' time to live, for entries
    /// that carry no options of their own; a job put by a
    /// [`ClusterExecutor`](crate::ClusterExecutor) carries its
    /// [`TaskOptions`] (lease, timeout, retries, result ttl), which the
    /// worker applies once it has read the entry.
    pub fn options(mut self, options: TaskOptions) -> Self {
        self.options = options;
        self
    }

    /// Runs until `stop` is set, then finishes the tasks it holds (a
    /// drain, as on SIGTERM) and returns what it did (since it was made).
    /// While it runs it sends the broker a heartbeat with its status every
    /// [`status_every`](Self::status_every), and takes it out when it
    /// stops.
    ///
    /// # Errors
    ///
    /// In [`WorkerMode::Processes`], [`BrokerError::Refused`] naming the
    /// cause if the local process pool cannot start. A broker that cannot
    /// be reached is not an error: it is tried again every second.
    pub fn run(&self, stop: &AtomicBool) -> Result<WorkerStats, BrokerError> {
        let pool = match self.mode {
            WorkerMode::Threads => None,
            WorkerMode::Processes => Some(
                ProcessPoolExecutor::builder()
                    .max_workers(self.concurrency)
                    .build()
                    .map_err(|e| {
                        BrokerError::Refused(format!(
                            "processes mode: the local process pool did not start: {e}"
                        ))
                    })?,
            ),
        };
        let pool = pool.as_ref();
        let held: HeldMap = Mutex::default();
        let counters = &*self.counters;
        let served = AtomicBool::new(false);
        thread::scope(|s| {
            let serving: Vec<_> = (0..self.concurrency)
                .map(|_| s.spawn(|| self.serve(stop, &held, counters, pool)))
                .collect();
            // The status heartbeat, until every task is served.
            s.spawn(|| {
                self.status
                    .run(&*self.broker, self.concurrency, &served, || {
                        let s = self.stats();
                        crate::status::Counts {
                            done: s.done,
                            stale: s.stale,
                            dead_lettered: s.dead_lettered,
                            running: held.lock().map(|h| h.len() as u64).unwrap_or(0),
                        }
                    });
            });
            // Heartbeat: extend the running jobs' leases (each every third
            // of its own), give up the jobs past their timeout.
            s.spawn(|| {
                while !stop.load(Ordering::SeqCst)
                    || !held.lock().map(|h| h.is_empty()).unwrap_or(true)
                {
                    thread::sleep(Duration::from_millis(10));
                    self.beat(&held, counters);
                }
            });
            for t in serving {
                let _ = t.join();
            }
            served.store(true, Ordering::SeqCst);
        });
        Ok(self.stats())
    }

    /// One heartbeat: extends the leases due, gives up the jobs past their
    /// timeout (telling their clients; their calls go on, their outcome is
    /// dropped).
    fn beat(&self, held: &HeldMap, counters: &Counters) {
        let now = Instant::now();
        let mut extend: HashMap<Duration, Vec<u64>> = HashMap::new();
        let mut overdue = Vec::new();
        if let Ok(mut h) = held.lock() {
            for (id, e) in h.iter_mut() {
                if let Some(lease) = e.lease
                    && e.next <= now
                {
                    e.next = now + (lease / 3).max(Duration::from_millis(10));
                    extend.entry(lease).or_default().push(*id);
                }
                if let Some(d) = &e.deadline
                    && !e.timed_out
                    && d.at <= now
                {
                    e.timed_out = true;
                    overdue.push((*id, d.clone()));
                }
            }
        }
        for (lease, ids) in extend {
            let _ = self.broker.extend(&ids, lease);
        }
        for (id, d) in overdue {
            let reason = format!("ran past its timeout of {:?}", d.timeout);
            let lost = wire::encode(&Message::Lost {
                job: d.job,
                reason: reason.clone(),
                time_limit_ms: Some(u64::try_from(d.timeout.as_millis()).unwrap_or(u64::MAX)),
                pid: Some(std::process::id()),
            });
            let to = Some((d.client.as_str(), lost.as_slice()));
            if matches!(self.broker.dead_letter(id, &reason, to, d.ttl), Ok(true)) {
                counters.timed_out.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn serve(
        &self,
        stop: &AtomicBool,
        held: &HeldMap,
        counters: &Counters,
        pool: Option<&ProcessPoolExecutor>,
    ) {
        while !stop.load(Ordering::SeqCst) {
            let got = match self
                .broker
                .fetch(1, Duration::from_millis(200), self.options.lease)
            {
                Ok(g) => g,
                Err(_) => {
                    thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            for f in got {
                self.run_one(&f, held, counters, pool);
            }
        }
    }

    fn run_one(
        &self,
        f: &Fetched,
        held: &HeldMap,
        counters: &Counters,
        pool: Option<&ProcessPoolExecutor>,
    ) {
        let entry: JobEntry = match wire::decode(&f.bytes) {
            Ok(e) => e,
            Err(why) => {
                let reason = format!("not a job entry: {why}");
                let ttl = self.options.result_ttl;
                if matches!(self.broker.dead_letter(f.id, &reason, None, ttl), Ok(true)) {
                    counters.dead.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        let opts = entry.options;
        let ms = Duration::from_millis;
        let ttl = opts.map_or(self.options.result_ttl, |o| ms(o.result_ttl_ms));
        let now = Instant::now();
        let (lease, deadline) = match opts {
            Some(JobOptions {
                timeout_ms: Some(t),
                ..
            }) => (None, Some(ms(t))),
            Some(o) => (Some(ms(o.lease_ms)), None),
            None => (Some(self.options.lease), None),
        };
        if let Some(o) = opts {
            // The job's own lease, in place of this fetch's.
            let own = match deadline {
                Some(t) => t.saturating_add(TIMEOUT_GRACE),
                None => ms(o.lease_ms),
            };
            if own != self.options.lease {
                let _ = self.broker.extend(&[f.id], own);
            }
        }
        if let Ok(mut h) = held.lock() {
            let next = now + lease.map_or(Duration::ZERO, |l| (l / 3).max(ms(10)));
            h.insert(
                f.id,
                Held {
                    lease,
                    next,
                    deadline: deadline.map(|timeout| Deadline {
                        at: now + timeout,
                        timeout,
                        client: entry.client.clone(),
                        job: entry.job,
                        ttl,
                    }),
                    timed_out: false,
                },
            );
        }
        // The run's span, a child of the submit's (feature `tracing`).
        #[cfg(feature = "tracing")]
        let remote = spindle::trace::RemoteSpan::new(
            "cluster",
            entry.calls.first().map_or("", |c| c.name.as_str()),
            self.worker_id(),
            entry.traceparent.as_deref(),
        );
        #[cfg(feature = "tracing")]
        let _entered = remote.enter();
        #[cfg(feature = "tracing")]
        tracing::trace!(job = entry.job, attempt = f.attempt, "started");
        let _ = self.broker.notify(
            &entry.client,
            &wire::encode(&Message::Started { job: entry.job }),
            ttl,
        );
        let mut outcomes = Vec::with_capacity(entry.calls.len());
        let mut cannot_run = None;
        for call in &entry.calls {
            let out = match pool {
                None => call.invoke(),
                Some(pool) => match pool
                    .submit(run_encoded::call(call.clone()))
                    .map_err(|_| ())
                    .and_then(|fut| fut.result().map_err(drop::<FutureError>))
                {
                    Ok(out) => out.map(ByteBuf::into_vec),
                    Err(()) => {
                        // The task's process died (or the pool is gone):
                        // no ack, and no more lease extensions; the lease
                        // runs out and the broker delivers the entry
                        // again, or gives it up.
                        if let Ok(mut h) = held.lock() {
                            h.remove(&f.id);
                        }
                        counters.crashed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                },
            };
            if let Err(
                fault @ (TaskFault::UnknownTask { .. }
                | TaskFault::SignatureMismatch { .. }
                | TaskFault::ArgDecode { .. }),
            ) = &out
            {
                cannot_run.get_or_insert_with(|| fault.to_string());
            }
            outcomes.push(out.map(ByteBuf::from));
        }
        let timed_out = held
            .lock()
            .ok()
            .and_then(|mut h| h.remove(&f.id))
            .is_some_and(|h| h.timed_out);
        if timed_out {
            // Given up at its timeout, its client told: the outcome is late.
            return;
        }
        let failed = outcomes
            .iter()
            .any(|o| matches!(o, Err(TaskFault::Panicked { .. })));
        if cannot_run.is_none()
            && failed
            && let Some(o) = opts
            && f.attempt <= o.retries
            && f.attempt < o.deliveries
        {
            // Run it again after its backoff (a nack before the last
            // delivery never dead-letters it).
            match self.broker.nack(f.id, o.backoff(f.attempt)) {
                Ok(true) => counters.retried.fetch_add(1, Ordering::Relaxed),
                _ => counters.stale.fetch_add(1, Ordering::Relaxed),
            };
            return;
        }
        let done = wire::encode(&Message::Done {
            job: entry.job,
            outcomes,
        });
        match cannot_run {
            Some(reason) => {
                let to = Some((entry.client.as_str(), done.as_slice()));
                #[cfg(feature = "tracing")]
                tracing::trace!(outcome = "dead-lettered", reason = %reason, "finished");
                if matches!(self.broker.dead_letter(f.id, &reason, to, ttl), Ok(true)) {
                    counters.dead.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => match self.broker.ack_with_result(f.id, &entry.client, &done, ttl) {
                Ok(true) => {
                    counters.done.fetch_add(1, Ordering::Relaxed);
                    #[cfg(feature = "tracing")]
                    tracing::trace!(outcome = "done", "finished");
                }
                _ => {
                    counters.stale.fetch_add(1, Ordering::Relaxed);
                    #[cfg(feature = "tracing")]
                    tracing::trace!(outcome = "stale", "finished");
                }
            },
        }
    }
}
