//! `Worker`: takes tasks from a broker and runs them here.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_bytes::ByteBuf;
use spindle::futures::{Executor, FutureError};
use spindle::process::{EncodedCall, ProcessPoolExecutor, TaskFault};

use crate::broker::{Broker, BrokerError, Fetched, Outgoing};
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
    /// Prefetched entries given back unstarted when the worker stopped
    /// (`nack` with no delay: at once, to another worker).
    pub returned: u64,
}

#[derive(Debug, Default)]
struct Counters {
    done: AtomicU64,
    stale: AtomicU64,
    dead: AtomicU64,
    retried: AtomicU64,
    timed_out: AtomicU64,
    crashed: AtomicU64,
    returned: AtomicU64,
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

/// How long the sending thread holds a "started" notice for its entry's
/// ack (which makes the notice needless) before it sends it.
const NOTICE_WAIT: Duration = Duration::from_millis(2);

/// The largest [`Worker::prefetch`] window.
pub const MAX_PREFETCH: usize = 10_000;

/// An entry fetched, decoded once.
struct Taken {
    f: Fetched,
    entry: Result<JobEntry, String>,
}

/// The entries fetched and not yet started, and the serving threads'
/// state, under one lock.
#[derive(Default)]
struct Local {
    buffer: VecDeque<Taken>,
    /// Entries a serving thread runs now.
    running: usize,
    /// The fetcher stopped: the serving threads end once `buffer` is empty.
    fetched_all: bool,
}

/// What the serving threads send after a run, in order: "started"
/// notices and acks, sent in batches ([`Broker::send_batch`]).
enum Out {
    Notify {
        /// The entry it is about: a notice whose entry's ack goes in the
        /// same batch is not sent (the result says more).
        id: u64,
        /// When it was posted: it waits at most [`NOTICE_WAIT`] for that
        /// ack.
        at: Instant,
        client: String,
        message: Vec<u8>,
        ttl: Duration,
    },
    Ack {
        id: u64,
        client: String,
        result: Vec<u8>,
        ttl: Duration,
        /// The run's span, closed once the ack is answered.
        #[cfg(feature = "tracing")]
        span: spindle::trace::RemoteSpan,
    },
}

#[derive(Default)]
struct Outbox {
    ops: Vec<Out>,
    /// Every serving thread ended: the sender ends once `ops` is empty.
    closed: bool,
}

/// The state `run` shares between its threads.
struct Shared<'a> {
    stop: &'a AtomicBool,
    held: HeldMap,
    counters: &'a Counters,
    local: Mutex<Local>,
    /// A change of `local`: an entry buffered, one started or finished,
    /// the fetcher stopped.
    local_changed: Condvar,
    outbox: Mutex<Outbox>,
    outbox_changed: Condvar,
}

/// A cluster worker: `concurrency` threads, each running one task at a
/// time with [`process::invoke`](spindle::process::invoke) (the tasks of
/// this binary, by name, checked by signature); a fetching thread that
/// keeps up to `concurrency + prefetch` entries here under their leases
/// ([`prefetch`](Self::prefetch)); a sending thread that sends the
/// "started" notices and the acks with results in batches
/// ([`Broker::send_batch`]); a heartbeat thread that extends the leases of
/// the entries held (waiting, running or being acked), every third of
/// each one's lease.
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
    /// Entries fetched beyond the free slots (`None`: the default, the
    /// concurrency).
    prefetch: Option<usize>,
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker")
            .field("broker", &self.broker)
            .field("concurrency", &self.concurrency)
            .field("prefetch", &self.prefetch_window())
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
            prefetch: None,
        }
    }

    /// How many entries it fetches beyond its free slots (default: its
    /// `concurrency`, so a window of twice the concurrency; at most
    /// [`MAX_PREFETCH`]). Each fetch asks for `free slots + prefetch -
    /// entries already waiting here`: the entries fetched and not yet
    /// started wait in a local buffer, under their leases, which the
    /// heartbeat extends as it does a running task's. A window hides the
    /// broker's round trip: a worker keeps about `concurrency + prefetch`
    /// entries in flight, so on a link of round trip `rtt` it moves at
    /// most that many entries per `rtt` (Little's law). 0: fetch only for
    /// free slots. A larger window takes work another worker could start
    /// sooner (long tasks: keep it small); when the worker stops, the
    /// entries still waiting are given back (see [`run`](Self::run)).
    pub fn prefetch(mut self, n: usize) -> Self {
        self.prefetch = Some(n.min(MAX_PREFETCH));
        self
    }

    /// Its prefetch window: the entries it fetches beyond its free slots.
    pub fn prefetch_window(&self) -> usize {
        self.prefetch.unwrap_or(self.concurrency).min(MAX_PREFETCH)
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
            returned: c.returned.load(Ordering::Relaxed),
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

    /// Runs until `stop` is set, then gives back the prefetched entries
    /// it has not started (`nack` with no delay, counted in
    /// [`WorkerStats::returned`]; one at its last allowed delivery, which a
    /// nack would dead-letter, is run instead), finishes and acks the
    /// tasks it runs (a drain, as on SIGTERM) and returns what it did
    /// (since it was made).
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
        let sh = Shared {
            stop,
            held: Mutex::default(),
            counters: &self.counters,
            local: Mutex::default(),
            local_changed: Condvar::new(),
            outbox: Mutex::default(),
            outbox_changed: Condvar::new(),
        };
        let sh = &sh;
        let served = AtomicBool::new(false);
        thread::scope(|s| {
            let fetcher = s.spawn(|| self.fetch_loop(sh));
            let serving: Vec<_> = (0..self.concurrency)
                .map(|_| s.spawn(|| self.serve(sh, pool)))
                .collect();
            let sender = s.spawn(|| self.send_loop(sh));
            // The status heartbeat, until every task is served.
            s.spawn(|| {
                self.status
                    .run(&*self.broker, self.concurrency, &served, || {
                        let s = self.stats();
                        crate::status::Counts {
                            done: s.done,
                            stale: s.stale,
                            dead_lettered: s.dead_lettered,
                            running: sh.local.lock().map(|l| l.running as u64).unwrap_or(0),
                        }
                    });
            });
            // Heartbeat: extend the leases of the jobs held (running,
            // waiting in the buffer, or waiting for their ack), each every
            // third of its own; give up the jobs past their timeout.
            s.spawn(|| {
                while !served.load(Ordering::SeqCst)
                    || !sh.held.lock().map(|h| h.is_empty()).unwrap_or(true)
                {
                    thread::sleep(Duration::from_millis(10));
                    self.beat(&sh.held, sh.counters);
                }
            });
            let _ = fetcher.join();
            for t in serving {
                let _ = t.join();
            }
            if let Ok(mut o) = sh.outbox.lock() {
                o.closed = true;
            }
            sh.outbox_changed.notify_all();
            let _ = sender.join();
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
            let lost = wire::encode(&Message::<ByteBuf>::Lost {
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

    /// Fetches `free slots + prefetch` entries (less those already
    /// waiting here) whenever the buffer runs low, until `stop`; then
    /// gives back the entries still waiting.
    fn fetch_loop(&self, sh: &Shared<'_>) {
        let window = self.concurrency + self.prefetch_window();
        let ms = Duration::from_millis;
        while !sh.stop.load(Ordering::SeqCst) {
            let want = {
                let Ok(mut l) = sh.local.lock() else { break };
                loop {
                    if sh.stop.load(Ordering::SeqCst) {
                        break 0;
                    }
                    let want = window.saturating_sub(l.buffer.len() + l.running);
                    // Fetch in batches (half the window), or at once when
                    // a thread has nothing to run.
                    if want > 0 && (l.buffer.is_empty() || want * 2 >= window) {
                        break want;
                    }
                    l = match sh.local_changed.wait_timeout(l, ms(50)) {
                        Ok((l, _)) => l,
                        Err(_) => return,
                    };
                }
            };
            if want == 0 {
                break;
            }
            let got = match self.broker.fetch(want, ms(200), self.options.lease) {
                Ok(g) => g,
                Err(_) => {
                    // Unavailable (the link broke, the server restarts):
                    // the next fetch reconnects.
                    let since = Instant::now();
                    while since.elapsed() < Duration::from_secs(1)
                        && !sh.stop.load(Ordering::SeqCst)
                    {
                        thread::sleep(ms(10));
                    }
                    continue;
                }
            };
            if got.is_empty() {
                continue;
            }
            let now = Instant::now();
            let mut extend: HashMap<Duration, Vec<u64>> = HashMap::new();
            let mut taken = Vec::with_capacity(got.len());
            let mut notices = Vec::with_capacity(got.len());
            if let Ok(mut h) = sh.held.lock() {
                for f in got {
                    let entry = wire::decode::<JobEntry>(&f.bytes).map_err(|e| e.to_string());
                    // Its own lease (a timeout's: the timeout + grace)
                    // from now on, while it waits and then runs.
                    let own = entry.as_ref().ok().and_then(|e| e.options).map_or(
                        self.options.lease,
                        |o| match o.timeout_ms {
                            Some(t) => ms(t).saturating_add(TIMEOUT_GRACE),
                            None => ms(o.lease_ms),
                        },
                    );
                    if own != self.options.lease {
                        extend.entry(own).or_default().push(f.id);
                    }
                    h.insert(
                        f.id,
                        Held {
                            lease: Some(own),
                            next: now + (own / 3).max(ms(10)),
                            deadline: None,
                            timed_out: false,
                        },
                    );
                    // "Started" goes out now (the future is running from
                    // here: it cannot be cancelled any more), as Python's
                    // ProcessPoolExecutor marks the calls it moved to its
                    // call queue running before a process takes them.
                    if let Ok(e) = &entry {
                        let ttl = e
                            .options
                            .map_or(self.options.result_ttl, |o| ms(o.result_ttl_ms));
                        notices.push(Out::Notify {
                            id: f.id,
                            at: now,
                            client: e.client.clone(),
                            message: wire::encode(&Message::<ByteBuf>::Started { job: e.job }),
                            ttl,
                        });
                    }
                    taken.push(Taken { f, entry });
                }
            }
            // The fetch's notices go out together (one batch).
            if let Ok(mut o) = sh.outbox.lock() {
                o.ops.append(&mut notices);
            }
            sh.outbox_changed.notify_all();
            for (lease, ids) in extend {
                let _ = self.broker.extend(&ids, lease);
            }
            if let Ok(mut l) = sh.local.lock() {
                l.buffer.extend(taken);
            }
            sh.local_changed.notify_all();
        }
        // Stopped: give back what waits unstarted, at once (nack 0: the
        // next delivery, to any worker); an entry at its last delivery
        // (a nack would dead-letter it) or without options is run here.
        let waiting: Vec<Taken> = sh
            .local
            .lock()
            .map(|mut l| l.buffer.drain(..).collect())
            .unwrap_or_default();
        let mut keep = VecDeque::new();
        for t in waiting {
            let last = match &t.entry {
                Ok(JobEntry {
                    options: Some(o), ..
                }) => t.f.attempt >= o.deliveries,
                _ => true,
            };
            if !last && matches!(self.broker.nack(t.f.id, Duration::ZERO), Ok(true)) {
                sh.counters.returned.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut h) = sh.held.lock() {
                    h.remove(&t.f.id);
                }
            } else {
                keep.push_back(t);
            }
        }
        if let Ok(mut l) = sh.local.lock() {
            l.buffer.extend(keep);
            l.fetched_all = true;
        }
        sh.local_changed.notify_all();
    }

    /// A serving thread: runs the entries buffered, one at a time, until
    /// the fetcher stopped and the buffer is empty.
    fn serve(&self, sh: &Shared<'_>, pool: Option<&ProcessPoolExecutor>) {
        loop {
            let t = {
                let Ok(mut l) = sh.local.lock() else { return };
                loop {
                    if let Some(t) = l.buffer.pop_front() {
                        l.running += 1;
                        break t;
                    }
                    if l.fetched_all {
                        return;
                    }
                    l = match sh.local_changed.wait(l) {
                        Ok(l) => l,
                        Err(_) => return,
                    };
                }
            };
            sh.local_changed.notify_all();
            self.run_one(t, sh, pool);
            if let Ok(mut l) = sh.local.lock() {
                l.running -= 1;
            }
            sh.local_changed.notify_all();
        }
    }

    /// Sends the serving threads' notices and acks in batches: whatever
    /// piled up while the previous batch was on its way.
    fn send_loop(&self, sh: &Shared<'_>) {
        loop {
            let mut ops = {
                let Ok(mut o) = sh.outbox.lock() else { return };
                loop {
                    if !o.ops.is_empty() {
                        break std::mem::take(&mut o.ops);
                    }
                    if o.closed {
                        return;
                    }
                    o = match sh.outbox_changed.wait(o) {
                        Ok(o) => o,
                        Err(_) => return,
                    };
                }
            };
            // A "started" notice waits up to NOTICE_WAIT for its entry's
            // ack: one that comes in time makes it needless (the result
            // says more), so a short task costs one message, not two.
            let mut acked: HashSet<u64> = HashSet::new();
            loop {
                acked.extend(ops.iter().filter_map(|op| match op {
                    Out::Ack { id, .. } => Some(*id),
                    Out::Notify { .. } => None,
                }));
                let oldest = ops
                    .iter()
                    .filter_map(|op| match op {
                        Out::Notify { id, at, .. } if !acked.contains(id) => Some(*at),
                        _ => None,
                    })
                    .min();
                let Some(due) = oldest.map(|at| at + NOTICE_WAIT) else {
                    break;
                };
                let Ok(mut o) = sh.outbox.lock() else { break };
                let now = Instant::now();
                if o.closed || now >= due {
                    break;
                }
                if o.ops.is_empty() {
                    o = match sh.outbox_changed.wait_timeout(o, due - now) {
                        Ok((o, _)) => o,
                        Err(_) => break,
                    };
                }
                ops.append(&mut o.ops);
            }
            if !acked.is_empty() {
                ops.retain(|op| !matches!(op, Out::Notify { id, .. } if acked.contains(id)));
            }
            let batch: Vec<Outgoing<'_>> = ops
                .iter()
                .map(|op| match op {
                    Out::Notify {
                        client,
                        message,
                        ttl,
                        ..
                    } => Outgoing::Notify {
                        client,
                        message,
                        ttl: *ttl,
                    },
                    Out::Ack {
                        id,
                        client,
                        result,
                        ttl,
                        ..
                    } => Outgoing::Ack {
                        id: *id,
                        client,
                        result,
                        ttl: *ttl,
                    },
                })
                .collect();
            let counted = self.send_retrying(&batch);
            let mut acked = Vec::new();
            for (i, op) in ops.iter().enumerate() {
                if let Out::Ack { id, .. } = op {
                    acked.push(*id);
                    // An ack that still failed after its retries counts as
                    // stale: the entry stays with this worker's lease until
                    // it runs out, then runs elsewhere.
                    let done = counted.as_ref().is_some_and(|c| c.get(i) == Some(&true));
                    if done {
                        sh.counters.done.fetch_add(1, Ordering::Relaxed);
                    } else {
                        sh.counters.stale.fetch_add(1, Ordering::Relaxed);
                    }
                    #[cfg(feature = "tracing")]
                    if let Out::Ack { span, .. } = op {
                        let _in = span.enter();
                        let outcome = if done { "done" } else { "stale" };
                        tracing::trace!(outcome, "finished");
                    }
                }
            }
            if let Ok(mut h) = sh.held.lock() {
                for id in acked {
                    h.remove(&id);
                }
            }
        }
    }

    /// Sends one batch of acks and notices. When the broker cannot be
    /// reached (the link broke, the server restarts) it tries again, with
    /// pauses of 20 ms doubling to 1 s, for up to the worker's lease: the
    /// entries stay held (their leases extended where the broker answers),
    /// an ack is idempotent, and one whose reply was lost counts 0 the
    /// second time, so each result is still recorded once. Past the lease,
    /// or for a refused call, `None`: the batch's acks count as stale and
    /// their entries may run again elsewhere.
    fn send_retrying(&self, batch: &[Outgoing<'_>]) -> Option<Vec<bool>> {
        let deadline = Instant::now() + self.options.lease;
        let mut pause = Duration::from_millis(20);
        loop {
            match self.broker.send_batch(batch) {
                Ok(counted) => return Some(counted),
                Err(BrokerError::Refused(_)) => return None,
                Err(_) if Instant::now() + pause < deadline => {
                    thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(_) => return None,
            }
        }
    }

    fn post(&self, sh: &Shared<'_>, op: Out) {
        if let Ok(mut o) = sh.outbox.lock() {
            o.ops.push(op);
        }
        sh.outbox_changed.notify_all();
    }

    fn run_one(&self, t: Taken, sh: &Shared<'_>, pool: Option<&ProcessPoolExecutor>) {
        let Taken { f, entry } = t;
        let (held, counters) = (&sh.held, sh.counters);
        let entry: JobEntry = match entry {
            Ok(e) => e,
            Err(why) => {
                let reason = format!("not a job entry: {why}");
                let ttl = self.options.result_ttl;
                if matches!(self.broker.dead_letter(f.id, &reason, None, ttl), Ok(true)) {
                    counters.dead.fetch_add(1, Ordering::Relaxed);
                }
                if let Ok(mut h) = held.lock() {
                    h.remove(&f.id);
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
        if let Some(t) = deadline {
            // Its time limit starts now: so does its lease (the timeout +
            // grace, never extended again).
            let _ = self.broker.extend(&[f.id], t.saturating_add(TIMEOUT_GRACE));
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
            entry.each_call().next().map_or("", |c| c.name),
            self.worker_id(),
            entry.traceparent.as_deref(),
        );
        #[cfg(feature = "tracing")]
        let entered = remote.enter();
        #[cfg(feature = "tracing")]
        tracing::trace!(job = entry.job, attempt = f.attempt, "started");
        // The results, one after the other in one buffer; each call's
        // outcome is where its result ends there, or its fault.
        let mut results = Vec::with_capacity(entry.len() * 16);
        let mut outcomes: Vec<Result<usize, TaskFault>> = Vec::with_capacity(entry.len());
        let mut cannot_run = None;
        for call in entry.each_call() {
            let out = match pool {
                None => spindle::process::invoke_into(
                    call.name,
                    call.signature,
                    call.args,
                    &mut results,
                ),
                Some(pool) => match pool
                    .submit(run_encoded::call(call.to_owned_call()))
                    .map_err(|_| ())
                    .and_then(|fut| fut.result().map_err(drop::<FutureError>))
                {
                    Ok(out) => out.map(|b| results.extend_from_slice(&b)),
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
            outcomes.push(out.map(|()| results.len()));
        }
        let timed_out = held.lock().ok().is_some_and(|mut h| {
            let timed_out = h.get(&f.id).is_some_and(|e| e.timed_out);
            if timed_out {
                h.remove(&f.id);
            }
            timed_out
        });
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
            if let Ok(mut h) = held.lock() {
                h.remove(&f.id);
            }
            match self.broker.nack(f.id, o.backoff(f.attempt)) {
                Ok(true) => counters.retried.fetch_add(1, Ordering::Relaxed),
                _ => counters.stale.fetch_add(1, Ordering::Relaxed),
            };
            return;
        }
        let size = results.len() + outcomes.len() * wire::PER_CALL;
        let mut start = 0;
        let outcomes: Vec<Result<&serde_bytes::Bytes, TaskFault>> = outcomes
            .into_iter()
            .map(|o| {
                o.map(|end| {
                    let b = serde_bytes::Bytes::new(&results[start..end]);
                    start = end;
                    b
                })
            })
            .collect();
        let done = wire::encode_sized(
            &Message::Done {
                job: entry.job,
                outcomes,
            },
            size + 64,
        );
        match cannot_run {
            Some(reason) => {
                let to = Some((entry.client.as_str(), done.as_slice()));
                #[cfg(feature = "tracing")]
                tracing::trace!(outcome = "dead-lettered", reason = %reason, "finished");
                if let Ok(mut h) = held.lock() {
                    h.remove(&f.id);
                }
                if matches!(self.broker.dead_letter(f.id, &reason, to, ttl), Ok(true)) {
                    counters.dead.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                // Acked in the next batch (it stays held, its lease
                // extended, until then); done or stale is counted there.
                // The span goes with the ack: its `finished` event says
                // whether the ack counted.
                #[cfg(feature = "tracing")]
                drop(entered);
                self.post(
                    sh,
                    Out::Ack {
                        id: f.id,
                        client: entry.client,
                        result: done,
                        ttl,
                        #[cfg(feature = "tracing")]
                        span: remote,
                    },
                );
            }
        }
    }
}
