//! `Worker`: takes tasks from a broker and runs them here.

use std::collections::HashSet;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use spindle::futures::{Executor, FutureError};
use spindle::process::{EncodedCall, ProcessPoolExecutor, TaskFault};

use crate::broker::{Broker, BrokerError, Fetched};
use crate::executor::TaskOptions;
use crate::wire::{self, JobEntry, Message};

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
            mode: WorkerMode::Threads,
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

    /// Its lease on each task (the executor's [`TaskOptions::lease`]); the
    /// results' time to live.
    pub fn options(mut self, options: TaskOptions) -> Self {
        self.options = options;
        self
    }

    /// Runs until `stop` is set, then finishes the tasks it holds (a
    /// drain, as on SIGTERM) and returns what it did.
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
        let held: Arc<Mutex<HashSet<u64>>> = Arc::default();
        let counters = Counters::default();
        let lease = self.options.lease;
        thread::scope(|s| {
            for _ in 0..self.concurrency {
                s.spawn(|| self.serve(stop, &held, &counters, pool));
            }
            // Heartbeat: extend the running tasks' leases.
            s.spawn(|| {
                let every = (lease / 3).max(Duration::from_millis(10));
                let mut next = Instant::now() + every;
                while !stop.load(Ordering::SeqCst)
                    || !held.lock().map(|h| h.is_empty()).unwrap_or(true)
                {
                    thread::sleep(Duration::from_millis(10).min(every));
                    if Instant::now() < next {
                        continue;
                    }
                    next = Instant::now() + every;
                    let ids: Vec<u64> = held
                        .lock()
                        .map(|h| h.iter().copied().collect())
                        .unwrap_or_default();
                    if !ids.is_empty() {
                        let _ = self.broker.extend(&ids, lease);
                    }
                }
            });
        });
        Ok(WorkerStats {
            done: counters.done.load(Ordering::Relaxed),
            stale: counters.stale.load(Ordering::Relaxed),
            dead_lettered: counters.dead.load(Ordering::Relaxed),
            crashed: counters.crashed.load(Ordering::Relaxed),
        })
    }

    fn serve(
        &self,
        stop: &AtomicBool,
        held: &Mutex<HashSet<u64>>,
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
                if let Ok(mut h) = held.lock() {
                    h.insert(f.id);
                }
                self.run_one(&f, counters, pool);
                if let Ok(mut h) = held.lock() {
                    h.remove(&f.id);
                }
            }
        }
    }

    fn run_one(&self, f: &Fetched, counters: &Counters, pool: Option<&ProcessPoolExecutor>) {
        let ttl = self.options.result_ttl;
        let entry: JobEntry = match wire::decode(&f.bytes) {
            Ok(e) => e,
            Err(why) => {
                let reason = format!("not a job entry: {why}");
                if matches!(self.broker.dead_letter(f.id, &reason, None, ttl), Ok(true)) {
                    counters.dead.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
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
                        // no ack; the lease runs out and the broker
                        // delivers the entry again, or gives it up.
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
        let done = wire::encode(&Message::Done {
            job: entry.job,
            outcomes,
        });
        match cannot_run {
            Some(reason) => {
                let to = Some((entry.client.as_str(), done.as_slice()));
                if matches!(self.broker.dead_letter(f.id, &reason, to, ttl), Ok(true)) {
                    counters.dead.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => match self.broker.ack_with_result(f.id, &entry.client, &done, ttl) {
                Ok(true) => {
                    counters.done.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    counters.stale.fetch_add(1, Ordering::Relaxed);
                }
            },
        }
    }
}
