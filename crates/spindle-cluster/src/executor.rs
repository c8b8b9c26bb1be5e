//! `ClusterExecutor`: an executor whose tasks go through a broker to
//! workers on other hosts.

use std::collections::HashMap;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use spindle::futures::{Executor, Future, SubmitError, Task, WorkerLost};
use spindle::process::{CallJob, RemoteExecutor, WireFormat};

use crate::broker::Broker;
use crate::broker::{PutEntry, PutOptions};
use crate::wire::{self, JobEntry, JobOptions, Message};

/// How a cluster runs each task: the executor's default
/// ([`ClusterExecutorBuilder::options`]) or one task's
/// ([`ClusterExecutor::submit_with`]). The options travel in the task's
/// entry, so the worker that runs it applies them.
///
/// `TaskOptions::default().retries(2).timeout(Duration::from_secs(5))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskOptions {
    /// How many deliveries a worker that dies (or loses the broker) holding
    /// the task may cost: its lease runs out and another worker gets the
    /// task, until it was delivered `max_deliveries + retries` times in
    /// all; then its future fails with `WorkerLost`. At least 1; default 3.
    pub max_deliveries: u32,
    /// How long a worker holds a task without a word before it goes to
    /// another worker; a live worker extends it every third of it while the
    /// task runs (so it limits nothing for a live worker: see
    /// [`timeout`](Self::timeout)). Not zero; default 30 s.
    pub lease: Duration,
    /// How long results wait in the client's result stream if nobody reads
    /// them. Default 1 hour.
    pub result_ttl: Duration,
    /// How many times a task that fails (panics) runs again, after a
    /// backoff: the `n`th retry waits `retry_backoff × 2^(n-1)` (at most
    /// 10 minutes) plus a random jitter of up to a quarter of that. Once
    /// they are used up the failure is the result. Default 0. A delivery
    /// lost to a dead worker counts against the retries too: a task is run
    /// again after a failure only while it was delivered at most `retries`
    /// times.
    pub retries: u32,
    /// The first retry's delay (see [`retries`](Self::retries)). Default
    /// 1 s.
    pub retry_backoff: Duration,
    /// The task's time limit, which is its lease: a worker does not extend
    /// it. A task still running `timeout` after its worker took it is given
    /// up by that worker at once (no retry): its future fails with
    /// `FutureError::WorkerLost` whose `time_limit()` is the timeout. A
    /// worker in threads mode cannot stop the call: it goes on in its
    /// thread and its result is dropped. If the worker itself is gone, the
    /// broker's lease (`timeout` + 1 s, so that a live worker always gives
    /// up first) runs out and the task is delivered again as for any dead
    /// worker ([`max_deliveries`](Self::max_deliveries)). Not zero; default
    /// `None` (no limit).
    pub timeout: Option<Duration>,
}

/// How much longer than a task's timeout the broker's lease of it is: a
/// live worker gives the task up at its timeout, before the broker would
/// hand it to another worker.
pub(crate) const TIMEOUT_GRACE: Duration = Duration::from_secs(1);

/// The longest retry backoff (before the jitter).
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(600);

impl Default for TaskOptions {
    fn default() -> Self {
        TaskOptions {
            max_deliveries: 3,
            lease: Duration::from_secs(30),
            result_ttl: Duration::from_secs(3600),
            retries: 0,
            retry_backoff: Duration::from_secs(1),
            timeout: None,
        }
    }
}

impl TaskOptions {
    /// With [`max_deliveries`](Self::max_deliveries) `n`.
    #[must_use]
    pub fn max_deliveries(mut self, n: u32) -> Self {
        self.max_deliveries = n;
        self
    }

    /// With [`lease`](Self::lease) `d`.
    #[must_use]
    pub fn lease(mut self, d: Duration) -> Self {
        self.lease = d;
        self
    }

    /// With [`result_ttl`](Self::result_ttl) `d`.
    #[must_use]
    pub fn result_ttl(mut self, d: Duration) -> Self {
        self.result_ttl = d;
        self
    }

    /// With [`retries`](Self::retries) `n`.
    #[must_use]
    pub fn retries(mut self, n: u32) -> Self {
        self.retries = n;
        self
    }

    /// With [`retry_backoff`](Self::retry_backoff) `d`.
    #[must_use]
    pub fn retry_backoff(mut self, d: Duration) -> Self {
        self.retry_backoff = d;
        self
    }

    /// With [`timeout`](Self::timeout) `d`.
    #[must_use]
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = Some(d);
        self
    }

    /// The option that is out of range, if one is.
    fn invalid(&self) -> Option<&'static str> {
        if self.max_deliveries == 0 {
            Some("max_deliveries")
        } else if self.lease.is_zero() {
            Some("lease")
        } else if self.timeout.is_some_and(|t| t.is_zero()) {
            Some("timeout")
        } else {
            None
        }
    }

    /// The lease the broker holds the task under: the timeout (plus its
    /// grace) if there is one, else the lease.
    pub(crate) fn broker_lease(&self) -> Duration {
        match self.timeout {
            Some(t) => t.saturating_add(TIMEOUT_GRACE),
            None => self.lease,
        }
    }

    pub(crate) fn to_wire(self) -> JobOptions {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        JobOptions {
            retries: self.retries,
            backoff_ms: u64::try_from(self.retry_backoff.as_millis()).unwrap_or(u64::MAX),
            timeout_ms: self.timeout.map(ms),
            lease_ms: ms(self.lease),
            result_ttl_ms: ms(self.result_ttl),
            deliveries: self.max_deliveries.saturating_add(self.retries),
        }
    }
}

impl JobOptions {
    /// The delay before retry `n` (1: the first): the backoff doubled
    /// `n - 1` times, at most [`MAX_BACKOFF`], plus up to a quarter more.
    pub(crate) fn backoff(&self, n: u32) -> Duration {
        let base = Duration::from_millis(self.backoff_ms);
        let d = base
            .checked_mul(1u32.checked_shl(n.saturating_sub(1)).unwrap_or(u32::MAX))
            .unwrap_or(MAX_BACKOFF)
            .min(MAX_BACKOFF);
        let mut r = [0u8; 4];
        let _ = getrandom::fill(&mut r);
        let frac = f64::from(u32::from_le_bytes(r)) / f64::from(u32::MAX);
        d + d.mul_f64(0.25 * frac)
    }
}

/// How a [`ClusterExecutor`] is set up.
#[derive(Debug)]
pub struct ClusterExecutorBuilder {
    broker: Arc<dyn Broker>,
    max_workers: usize,
    map_window: Option<usize>,
    options: TaskOptions,
}

/// The most entries one batch of puts holds (one round trip on Redis).
const MAX_PUT_BATCH: usize = 256;

/// The most bytes of entries one batch of puts holds (beyond its first
/// entry): large entries go in smaller batches, so that one script call
/// does not hold the server long.
const MAX_PUT_BYTES: usize = 4 << 20;

/// `map`'s default window: this many chunks per `max_workers`.
const MAP_WINDOW_PER_WORKER: usize = 64;

impl ClusterExecutorBuilder {
    /// How many tasks the cluster runs at once, as far as `map`'s window
    /// is concerned (default 4; the window is 64 chunks per worker unless
    /// [`map_window`](Self::map_window) sets it).
    pub fn max_workers(mut self, n: usize) -> Self {
        self.max_workers = n.max(1);
        self
    }

    /// How many chunks `map` keeps in flight when no `buffersize` is
    /// given (default: 64 per [`max_workers`](Self::max_workers), as a
    /// process pool: a task's round trip through the broker is long next
    /// to a tiny task, and the workers prefetch). At least 1.
    pub fn map_window(mut self, n: usize) -> Self {
        self.map_window = Some(n.max(1));
        self
    }

    /// The options of every task.
    pub fn options(mut self, options: TaskOptions) -> Self {
        self.options = options;
        self
    }

    /// The executor; its thread that reads results starts now.
    pub fn build(self) -> ClusterExecutor {
        let mut id = [0u8; 8];
        let _ = getrandom::fill(&mut id);
        let inner = Arc::new(Inner {
            broker: self.broker,
            client: format!(
                "client-{}-{:016x}",
                std::process::id(),
                u64::from_le_bytes(id)
            ),
            jobs: Mutex::new(Jobs::default()),
            changed: Condvar::new(),
            next: AtomicU64::new(1),
            closed: AtomicBool::new(false),
            cancel_unstarted: AtomicBool::new(false),
            max_workers: self.max_workers,
            map_window: self.map_window.unwrap_or_else(|| {
                self.max_workers
                    .saturating_mul(MAP_WINDOW_PER_WORKER)
                    .max(1)
            }),
            options: self.options,
            puts: Mutex::new(Puts::default()),
            puts_changed: Condvar::new(),
        });
        let mine = inner.clone();
        let collector = thread::Builder::new()
            .name("spindle-cluster-results".into())
            .spawn(move || collect(mine))
            .ok();
        let mine = inner.clone();
        let sender = thread::Builder::new()
            .name("spindle-cluster-puts".into())
            .spawn(move || send_puts(&mine));
        let sender = match sender {
            Ok(h) => Some(h),
            Err(_) => {
                // No thread: every submit puts its entry itself.
                if let Ok(mut q) = inner.puts.lock() {
                    q.ended = true;
                }
                None
            }
        };
        ClusterExecutor {
            inner,
            collector: Mutex::new(collector),
            sender: Mutex::new(sender),
        }
    }
}

/// An executor of registered tasks (`#[spindle::task]` calls) that run on
/// cluster workers ([`Worker`](crate::Worker)) through a [`Broker`]:
/// Python's `concurrent.futures.Executor` over a task queue.
///
/// `submit(task::call(..))`, `map(process::calls(task::call), items)`,
/// `as_completed`, `wait` and `shutdown` work as on the local pools. A
/// future is running once a worker said it started the task; `cancel`
/// succeeds while the task is still queued in the broker (or not yet
/// sent: `submit` hands each entry to a sending thread, which puts what
/// piled up in one [`Broker::put_batch`]). A broker that cannot be reached
/// when the entry is put fails the future with `FutureError::Unavailable`; a task whose workers kept dying
/// (`max_deliveries` leases ran out) fails with `WorkerLost`.
///
/// Dropping the executor does not wait for the tasks (a cluster may have no
/// worker now): its result thread keeps completing the futures until the
/// last one is done. `shutdown(true, _)` waits.
///
/// Every task runs with the builder's [`TaskOptions`], or its own with
/// [`submit_with`](ClusterExecutor::submit_with): retries with backoff for
/// a task that panics, a timeout (its lease), `max_deliveries`,
/// `result_ttl`.
pub struct ClusterExecutor {
    inner: Arc<Inner>,
    collector: Mutex<Option<JoinHandle<()>>>,
    sender: Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for ClusterExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterExecutor")
            .field("client", &self.inner.client)
            .field("broker", &self.inner.broker)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Inner {
    broker: Arc<dyn Broker>,
    client: String,
    jobs: Mutex<Jobs>,
    changed: Condvar,
    next: AtomicU64,
    closed: AtomicBool,
    /// `shutdown(cancel_futures)` was called: a batch whose put was on
    /// its way then has its entries cancelled once they are put.
    cancel_unstarted: AtomicBool,
    max_workers: usize,
    map_window: usize,
    options: TaskOptions,
    /// Entries submitted and not yet handed to the broker: the sending
    /// thread puts whatever piled up in one batch.
    puts: Mutex<Puts>,
    /// An entry to put, or the executor closed.
    puts_changed: Condvar,
}

/// The entries waiting for the sending thread.
#[derive(Debug, Default)]
struct Puts {
    queue: std::collections::VecDeque<ToPut>,
    /// The sending thread ended (closed with nothing left, or never
    /// started): a submit puts its entry itself.
    ended: bool,
}

/// One job's entry, waiting to be put.
#[derive(Debug)]
struct ToPut {
    /// The job's number.
    job: u64,
    entry: Vec<u8>,
    /// The message its client gets if its leases keep running out.
    lost: Vec<u8>,
    max_deliveries: u32,
    ttl: Duration,
    lease: Duration,
}

impl ToPut {
    fn as_put<'a>(&'a self, client: &'a str) -> PutEntry<'a> {
        PutEntry {
            entry: &self.entry,
            options: PutOptions {
                max_deliveries: self.max_deliveries,
                client,
                on_dead: &self.lost,
                ttl: self.ttl,
                lease: Some(self.lease),
            },
        }
    }
}

#[derive(Debug, Default)]
struct Jobs {
    pending: HashMap<u64, Pending>,
    /// Jobs whose futures a `cancel` is cancelling: dropped later.
    cancelled: Vec<CallJob>,
}

#[derive(Debug)]
struct Pending {
    job: CallJob,
    /// The broker's id of its entry (0 until its put returned).
    entry: u64,
    started: bool,
    /// Its submit's `spindle.task` span (feature `tracing`).
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl ClusterExecutor {
    /// An executor over `broker`.
    pub fn builder(broker: Arc<dyn Broker>) -> ClusterExecutorBuilder {
        ClusterExecutorBuilder {
            broker,
            max_workers: 4,
            map_window: None,
            options: TaskOptions::default(),
        }
    }

    /// This executor's client id: its result stream's name.
    pub fn client(&self) -> &str {
        &self.inner.client
    }

    /// Whether [`shutdown`](Executor::shutdown) was called (or the
    /// executor dropped): later submissions are refused.
    pub fn is_shutdown(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    /// Tasks submitted and not finished yet.
    pub fn pending(&self) -> usize {
        self.inner.jobs.lock().map(|j| j.pending.len()).unwrap_or(0)
    }

    /// [`submit`](Executor::submit) with this task's own options (retries
    /// with backoff, a timeout, `max_deliveries`, `result_ttl`) in place of
    /// the executor's: Python's `submit` has none (Celery's
    /// `apply_async(retry=.., time_limit=..)` is the nearest).
    ///
    /// # Errors
    ///
    /// [`SubmitError::ShutDown`] after `shutdown`;
    /// [`SubmitError::InvalidArgument`] naming the option out of range
    /// (`max_deliveries` 0, a zero `lease` or `timeout`): nothing was
    /// submitted.
    pub fn submit_with<W: Task<Self>>(
        &self,
        task: W,
        options: TaskOptions,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        if let Some(what) = options.invalid() {
            return Err(SubmitError::InvalidArgument(task, what));
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(SubmitError::ShutDown(task));
        }
        let (job, fut) = task.into_job();
        self.enqueue(job, options);
        Ok(fut)
    }

    fn enqueue(&self, mut job: CallJob, options: TaskOptions) {
        let inner = &self.inner;
        let id = inner.next.fetch_add(1, Ordering::Relaxed);
        let signature = match job.signature() {
            Some(sig) if job.wire_error().is_none() => sig,
            // Arguments that cannot travel: `complete` fails the future
            // with the reason the job holds.
            _ => {
                job.complete(Vec::new());
                return;
            }
        };
        // Encoded into the entry below and never needed again: freed here,
        // on the submitting thread that made them.
        let args = job.take_args();
        let wire_options = options.to_wire();
        // The submit's span; its context travels with the entry.
        #[cfg(feature = "tracing")]
        let (span, traceparent) = {
            let (span, ctx) = spindle::trace::submit_span("cluster", job.name());
            tracing::trace!(parent: &span, job = id, "submitted");
            (span, Some(ctx.traceparent()))
        };
        #[cfg(not(feature = "tracing"))]
        let traceparent = None;
        let size = args.iter().map(|a| a.len() + wire::PER_CALL).sum::<usize>();
        let entry = wire::encode_sized(
            &JobEntry::of_calls(
                inner.client.clone(),
                id,
                (job.name(), signature),
                &args,
                Some(wire_options),
                traceparent,
            ),
            size + inner.client.len() + 128,
        );
        drop(args);
        let reason = match options.timeout {
            Some(t) => format!(
                "its lease (its timeout of {t:?}) ran out {} times (max_deliveries + retries): \
                 its workers died",
                wire_options.deliveries
            ),
            None => format!(
                "its workers died {} times (max_deliveries + retries)",
                wire_options.deliveries
            ),
        };
        let lost = wire::encode(&Message::<serde_bytes::ByteBuf>::Lost {
            job: id,
            reason,
            time_limit_ms: None,
            pid: None,
        });
        // Cancelling asks the broker: only a task still queued there can be.
        let weak = Arc::downgrade(inner);
        job.on_cancel(move || cancel_queued(&weak, id));
        // Known before the put, so that an answer cannot outrun it.
        let Ok(mut jobs) = inner.jobs.lock() else {
            return;
        };
        jobs.pending.insert(
            id,
            Pending {
                job,
                entry: 0,
                started: false,
                #[cfg(feature = "tracing")]
                span,
            },
        );
        drop(jobs);
        let put = ToPut {
            job: id,
            entry,
            lost,
            max_deliveries: wire_options.deliveries,
            ttl: options.result_ttl,
            lease: options.broker_lease(),
        };
        // The sending thread puts it, with whatever else piled up while
        // its previous batch was on its way.
        let put = match inner.puts.lock() {
            Ok(mut q) if !q.ended => {
                q.queue.push_back(put);
                None
            }
            _ => Some(put),
        };
        match put {
            None => inner.puts_changed.notify_one(),
            Some(put) => put_all(inner, vec![put]),
        }
    }
}

/// Puts `batch` in one [`Broker::put_batch`]: each job's entry id is
/// recorded (a cancel may take it out from then on); if the broker cannot
/// be reached, every future of the batch fails with `Unavailable`.
fn put_all(inner: &Inner, batch: Vec<ToPut>) {
    if batch.is_empty() {
        return;
    }
    let entries: Vec<PutEntry<'_>> = batch.iter().map(|p| p.as_put(&inner.client)).collect();
    let put = inner.broker.put_batch(&entries);
    drop(entries);
    let mut failed = Vec::new();
    {
        let mut jobs = inner.jobs.lock().unwrap_or_else(|e| e.into_inner());
        match put {
            Ok(ids) if ids.len() == batch.len() => {
                for (p, entry) in batch.iter().zip(ids) {
                    if let Some(pending) = jobs.pending.get_mut(&p.job) {
                        pending.entry = entry;
                    }
                }
            }
            _ => {
                for p in &batch {
                    if let Some(pending) = jobs.pending.remove(&p.job) {
                        failed.push(pending.job);
                    }
                }
            }
        }
    }
    if !failed.is_empty() {
        for job in failed {
            // Done-callbacks run here: one that panics must not end the
            // sending thread.
            let _ = catch_unwind(AssertUnwindSafe(|| job.fail_unavailable()));
        }
        inner.changed.notify_all();
    }
    // A `shutdown(cancel_futures)` came while this batch was on its way
    // (its entries were not in the queue it drained, nor put yet for its
    // broker pass): cancel them now that they are.
    if inner.cancel_unstarted.load(Ordering::SeqCst) {
        cancel_queued_entries(inner, batch.iter().map(|p| p.job));
    }
}

/// Cancels the jobs `ids` whose entries are put and still queued in the
/// broker (no worker fetched them): their futures are cancelled.
fn cancel_queued_entries(inner: &Inner, ids: impl Iterator<Item = u64>) {
    let queued: Vec<(u64, u64)> = match inner.jobs.lock() {
        Ok(j) => ids
            .filter_map(|id| match j.pending.get(&id) {
                Some(p) if !p.started && p.entry != 0 => Some((id, p.entry)),
                _ => None,
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    for (id, entry) in queued {
        if matches!(inner.broker.cancel(entry), Ok(true)) {
            cancel_pending(inner, id);
        }
    }
    inner.changed.notify_all();
}

/// Takes job `id` off the pending ones and cancels its future (a
/// done-callback that panics is caught, as on the result thread).
fn cancel_pending(inner: &Inner, id: u64) {
    let p = inner
        .jobs
        .lock()
        .ok()
        .and_then(|mut j| j.pending.remove(&id));
    if let Some(p) = p {
        let _ = catch_unwind(AssertUnwindSafe(|| p.job.cancel()));
    }
}

/// The sending thread: puts the entries submitted, in batches of what
/// piled up while the previous batch was on its way, until the executor
/// is shut down (or dropped) with nothing left to put.
fn send_puts(inner: &Inner) {
    loop {
        let batch: Vec<ToPut> = {
            let mut q = inner.puts.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                if !q.queue.is_empty() {
                    let mut bytes = 0;
                    let n = q
                        .queue
                        .iter()
                        .take(MAX_PUT_BATCH)
                        .take_while(|p| {
                            let first = bytes == 0;
                            bytes += p.entry.len() + p.lost.len();
                            first || bytes <= MAX_PUT_BYTES
                        })
                        .count();
                    break q.queue.drain(..n).collect();
                }
                if inner.closed.load(Ordering::SeqCst) {
                    q.ended = true;
                    return;
                }
                q = inner
                    .puts_changed
                    .wait_timeout(q, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        put_all(inner, batch);
    }
}

/// A cancel of job `id`: true if its entry was still queued (taken out).
fn cancel_queued(inner: &Weak<Inner>, id: u64) -> bool {
    let Some(inner) = inner.upgrade() else {
        return false;
    };
    let entry = match inner.jobs.lock() {
        Ok(j) => match j.pending.get(&id) {
            Some(p) if !p.started => p.entry,
            _ => return false,
        },
        Err(_) => return false,
    };
    if entry == 0 {
        // Not put yet: taken out of the sending thread's queue if it is
        // still there (not if its put is on its way).
        let taken = inner.puts.lock().is_ok_and(|mut q| {
            let before = q.queue.len();
            q.queue.retain(|p| p.job != id);
            q.queue.len() < before
        });
        if !taken {
            return false;
        }
    } else if !matches!(inner.broker.cancel(entry), Ok(true)) {
        return false;
    }
    // The future is being cancelled by its own `cancel`, which holds on
    // until this returns: the job (its promise) is dropped later, by the
    // result thread, once the future is cancelled.
    if let Ok(mut j) = inner.jobs.lock()
        && let Some(p) = j.pending.remove(&id)
    {
        j.cancelled.push(p.job);
    }
    inner.changed.notify_all();
    true
}

/// The result thread: completes the futures from the client's stream
/// until the executor is shut down (or dropped) with nothing pending.
fn collect(me: Arc<Inner>) {
    loop {
        let gone: Vec<CallJob> = me
            .jobs
            .lock()
            .map(|mut j| std::mem::take(&mut j.cancelled))
            .unwrap_or_default();
        drop(gone);
        let idle = me.jobs.lock().map(|j| j.pending.is_empty()).unwrap_or(true);
        if idle && me.closed.load(Ordering::SeqCst) {
            return;
        }
        let batch = me
            .broker
            .results(&me.client, 1000, Duration::from_millis(200));
        let Ok(batch) = batch else {
            thread::sleep(Duration::from_millis(200));
            continue;
        };
        for bytes in batch {
            let owned;
            let msg = match wire::decode::<Message<&serde_bytes::Bytes>>(&bytes) {
                Ok(m) => m,
                // Results in another form serde_bytes reads (an array of
                // integers, from another writer): read them owned.
                Err(_) => match wire::decode::<Message>(&bytes) {
                    Ok(m) => {
                        owned = m;
                        owned.borrowed()
                    }
                    Err(_) => continue,
                },
            };
            let mut jobs = me.jobs.lock().unwrap_or_else(|e| e.into_inner());
            match msg {
                Message::Started { job } => {
                    if let Some(p) = jobs.pending.get_mut(&job)
                        && !p.started
                    {
                        p.started = true;
                        let job = &mut p.job;
                        let _ =
                            catch_unwind(AssertUnwindSafe(|| job.set_running_or_notify_cancel()));
                    }
                }
                Message::Done { job, outcomes } => {
                    if let Some(p) = jobs.pending.remove(&job) {
                        drop(jobs);
                        #[cfg(feature = "tracing")]
                        tracing::trace!(parent: &p.span, job, "result");
                        // Each result decoded where it lies in the message.
                        let outcomes = outcomes.into_iter().map(|o| o.map(|b| &**b)).collect();
                        // Done-callbacks run here: one that panics must not
                        // end this thread (Python logs it and goes on).
                        let _ = catch_unwind(AssertUnwindSafe(|| p.job.complete_net(outcomes)));
                    }
                }
                Message::Lost {
                    job,
                    reason,
                    time_limit_ms,
                    pid,
                } => {
                    if let Some(p) = jobs.pending.remove(&job) {
                        drop(jobs);
                        #[cfg(feature = "tracing")]
                        tracing::trace!(parent: &p.span, job, reason = %reason, "lost");
                        let lost = match time_limit_ms {
                            // Given up at its timeout by worker `pid`.
                            Some(ms) => WorkerLost::new(
                                pid.unwrap_or(0),
                                None,
                                Some(Duration::from_millis(ms)),
                            ),
                            None => {
                                WorkerLost::new(pid.unwrap_or(0), None, None).with_worker(reason)
                            }
                        };
                        let _ = catch_unwind(AssertUnwindSafe(|| p.job.fail_lost(lost)));
                    }
                }
            }
            me.changed.notify_all();
        }
    }
}

impl Executor for ClusterExecutor {
    type Job = CallJob;

    fn submit<W: Task<Self>>(
        &self,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        if let Some(what) = self.inner.options.invalid() {
            return Err(SubmitError::InvalidArgument(task, what));
        }
        if self.inner.closed.load(Ordering::SeqCst) {
            return Err(SubmitError::ShutDown(task));
        }
        let (job, fut) = task.into_job();
        self.enqueue(job, self.inner.options);
        Ok(fut)
    }

    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        let inner = &self.inner;
        inner.closed.store(true, Ordering::SeqCst);
        inner.puts_changed.notify_all();
        if cancel_futures {
            // First the flag (a batch on its way cancels its own entries
            // once put), then those not put yet (never sent), then those
            // queued in the broker.
            inner.cancel_unstarted.store(true, Ordering::SeqCst);
            let unsent: Vec<u64> = inner
                .puts
                .lock()
                .map(|mut q| q.queue.drain(..).map(|p| p.job).collect())
                .unwrap_or_default();
            for id in unsent {
                cancel_pending(inner, id);
            }
            let ids: Vec<u64> = inner
                .jobs
                .lock()
                .map(|j| j.pending.keys().copied().collect())
                .unwrap_or_default();
            cancel_queued_entries(inner, ids.into_iter());
        }
        if wait {
            let mut jobs = inner.jobs.lock().unwrap_or_else(|e| e.into_inner());
            while !jobs.pending.is_empty() {
                jobs = inner
                    .changed
                    .wait_timeout(jobs, Duration::from_millis(100))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            drop(jobs);
            for handle in [&self.sender, &self.collector] {
                if let Some(h) = handle.lock().ok().and_then(|mut h| h.take()) {
                    let _ = h.join();
                }
            }
        }
    }

    fn max_workers(&self) -> usize {
        self.inner.max_workers
    }

    /// [`ClusterExecutorBuilder::map_window`]: by default 64 chunks per
    /// `max_workers`.
    fn map_window(&self) -> usize {
        self.inner.map_window
    }
}

impl RemoteExecutor for ClusterExecutor {
    const WIRE: WireFormat = WireFormat::MessagePack;

    fn call_job(job: CallJob) -> CallJob {
        job
    }
}

impl Drop for ClusterExecutor {
    fn drop(&mut self) {
        self.inner.closed.store(true, Ordering::SeqCst);
        self.inner.puts_changed.notify_all();
    }
}
