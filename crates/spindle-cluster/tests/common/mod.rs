//! What the embedded and the Redis tests share: worker threads, a whole
//! cluster for the executor conformance suite, a raw job entry, a worker
//! process to kill.
#![allow(dead_code)] // each test file uses what it needs

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use spindle::futures::{Executor, Future, MapFn, SubmitError, Task};
use spindle::process::{CallJob, Process, RemoteExecutor, WireFormat};
use spindle_cluster::{Broker, ClusterExecutor, ClusterStatus, TaskOptions, Worker, WorkerStats};
use spindle_conformance::executor::{ExecutorUnderTest, Work, tasks::run_work};

#[cfg(feature = "redis")]
pub(crate) mod redis_server;

pub(crate) const LONG: Duration = Duration::from_secs(60);

/// Worker threads of this process on `broker`, until dropped.
pub(crate) struct Workers {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<WorkerStats>>,
}

impl Workers {
    pub(crate) fn start(broker: &dyn Broker, n: usize, options: TaskOptions) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        let w = Worker::new(broker).concurrency(n).options(options);
        let s2 = stop.clone();
        let thread = thread::spawn(move || w.run(&s2).unwrap());
        Workers {
            stop,
            thread: Some(thread),
        }
    }

    pub(crate) fn stop(mut self) -> WorkerStats {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.take().unwrap().join().unwrap()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A broker backend the conformance cluster can start: the server it
/// keeps alive, and a broker on it.
pub(crate) trait Backend: Sized {
    type Broker: Broker + 'static;
    fn start() -> (Self, Self::Broker);
}

/// A whole cluster in this process, for the conformance suite: a broker
/// server, `max_workers` worker threads, and the executor.
pub(crate) struct LocalCluster<S> {
    executor: ClusterExecutor,
    _workers: Workers,
    _server: S,
}

impl<S> Executor for LocalCluster<S> {
    type Job = CallJob;
    fn submit<W: Task<Self>>(
        &self,
        task: W,
    ) -> Result<Future<W::Output, W::Error>, SubmitError<W>> {
        if self.executor.is_shutdown() {
            return Err(SubmitError::ShutDown(task));
        }
        let (job, fut) = task.into_job();
        match self.executor.submit(Relay(job)) {
            Ok(_) => Ok(fut),
            Err(_) => panic!("the cluster executor refused a relayed job"),
        }
    }
    fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.executor.shutdown(wait, cancel_futures);
    }
    fn max_workers(&self) -> usize {
        self.executor.max_workers()
    }
}

impl<S> RemoteExecutor for LocalCluster<S> {
    const WIRE: WireFormat = WireFormat::MessagePack;
    fn call_job(job: CallJob) -> CallJob {
        job
    }
}

/// A job made for `LocalCluster`, handed to its `ClusterExecutor` as is.
struct Relay(CallJob);

impl Task<ClusterExecutor> for Relay {
    type Output = ();
    type Error = Infallible;
    fn into_job(self) -> (CallJob, Future<(), Infallible>) {
        let (promise, fut) = spindle::futures::Promise::new();
        drop(promise);
        (self.0, fut)
    }
}

impl<S: Backend> ExecutorUnderTest for LocalCluster<S> {
    fn with_workers(max_workers: usize) -> LocalCluster<S> {
        let (server, b) = S::start();
        let options = TaskOptions::default();
        let workers = Workers::start(&b, max_workers, options);
        let executor = ClusterExecutor::builder(Arc::new(b))
            .max_workers(max_workers)
            .options(options)
            .build();
        LocalCluster {
            executor,
            _workers: workers,
            _server: server,
        }
    }

    fn task(work: Work) -> impl Task<Self, Output = u64, Error = Infallible> {
        run_work::call(work)
    }

    fn map_fn() -> impl MapFn<Work, Self, Output = u64, Error = Infallible> {
        run_work::call
    }
}

/// A job entry as the executor writes it (named MessagePack).
#[derive(Serialize)]
struct RawJob {
    client: String,
    job: u64,
    calls: Vec<spindle::process::EncodedCall>,
}

/// The bytes of a job of one call of task `name`, as a client would put it.
pub(crate) fn job_of(name: &str, signature: u64, args: Vec<u8>) -> Vec<u8> {
    rmp_serde::to_vec_named(&RawJob {
        client: "nobody".into(),
        job: 1,
        calls: vec![spindle::process::EncodedCall {
            name: name.into(),
            signature,
            args,
        }],
    })
    .unwrap()
}

/// Where a worker process finds its broker: what it needs to connect on
/// its own (a process started by spawn or the fork server holds nothing of
/// its parent's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum BrokerAt {
    /// A manager server's broker: its address, key and registered name.
    Embedded {
        address: String,
        key: Vec<u8>,
        name: String,
    },
    /// A Redis server's queue.
    Redis { url: String, queue: String },
}

impl BrokerAt {
    /// A new connection to it (retried for `LONG`: a Redis server may be
    /// restarting).
    pub(crate) fn connect(&self) -> Arc<dyn Broker> {
        let since = Instant::now();
        loop {
            let got: Result<Arc<dyn Broker>, spindle_cluster::BrokerError> = match self {
                BrokerAt::Embedded { address, key, name } => {
                    let address: spindle::ipc::Address = address.parse().unwrap();
                    spindle_cluster::EmbeddedBroker::connect(address, key, name)
                        .map(|b| Arc::new(b) as Arc<dyn Broker>)
                }
                #[cfg(feature = "redis")]
                BrokerAt::Redis { url, queue } => spindle_cluster::RedisBroker::connect(url, queue)
                    .map(|b| Arc::new(b) as Arc<dyn Broker>),
                #[cfg(not(feature = "redis"))]
                BrokerAt::Redis { .. } => panic!("built without the redis feature"),
            };
            match got {
                Ok(b) => return b,
                Err(e) => assert!(since.elapsed() < LONG, "cannot reach the broker: {e}"),
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A cluster worker process: `concurrency` threads on the broker at `at`
/// with a lease of `lease_ms`, until killed.
#[spindle::task]
pub(crate) fn worker_process(at: BrokerAt, concurrency: usize, lease_ms: u64) {
    let b = at.connect();
    let options = TaskOptions {
        lease: Duration::from_millis(lease_ms),
        ..TaskOptions::default()
    };
    let stop = AtomicBool::new(false);
    Worker::new(&*b)
        .concurrency(concurrency)
        .options(options)
        .run(&stop)
        .unwrap();
}

/// A cluster worker process with heartbeat id `id`, sending one every
/// `every_ms`, a lease of `lease_ms`, until killed.
#[spindle::task]
pub(crate) fn status_worker_process(at: BrokerAt, id: String, every_ms: u64, lease_ms: u64) {
    let b = at.connect();
    let options = TaskOptions {
        lease: Duration::from_millis(lease_ms),
        ..TaskOptions::default()
    };
    let stop = AtomicBool::new(false);
    Worker::new(&*b)
        .id(id)
        .status_every(Duration::from_millis(every_ms))
        .options(options)
        .run(&stop)
        .unwrap();
}

/// A worker in a child process, to be killed while it runs a task.
///
/// Started by the default start method (the fork server), never by a
/// `fork` of this test process: a test binary runs many threads, and a
/// fork copies whatever locks they hold at that instant into the child,
/// where no thread will ever release them. parking_lot's global table of
/// parked threads is such a lock: a forked worker's first new thread
/// (`ThreadData::new` grows the table under every bucket's lock) then
/// hangs forever, and the worker never fetches its task (this test's
/// "the task never started" flake, a few runs in a hundred under load).
pub(crate) fn worker_child(at: &BrokerAt, concurrency: usize, options: TaskOptions) -> Process {
    let lease_ms = u64::try_from(options.lease.as_millis()).unwrap();
    Process::builder()
        .task(worker_process::call(at.clone(), concurrency, lease_ms))
        .daemon(true)
        .start()
        .unwrap()
}

/// Waits until a worker said it started `f`'s task.
pub(crate) fn wait_running<T: Clone, E: Clone>(f: &Future<T, E>) {
    let since = Instant::now();
    while !f.running() {
        assert!(since.elapsed() < LONG, "the task never started");
        thread::sleep(Duration::from_millis(5));
    }
}

/// A result stream's time to live in the broker-level tests.
pub(crate) const TTL: Duration = Duration::from_secs(60);

/// Puts `n` entries (`[0]`, `[1]`, ..; client "c1") and fetches them all
/// with `b`'s own consumer: their ids, in order.
pub(crate) fn put_and_fetch(b: &dyn Broker, n: u8) -> Vec<u64> {
    let ids: Vec<u64> = (0..n)
        .map(|i| b.put(&[i], 3, "c1", b"", TTL).unwrap())
        .collect();
    let mut got = Vec::new();
    let since = Instant::now();
    while got.len() < ids.len() {
        let more = b.fetch(ids.len() - got.len(), LONG, LONG).unwrap();
        got.extend(more.into_iter().map(|f| f.id));
        assert!(since.elapsed() < LONG, "not all entries came: {got:?}");
    }
    assert_eq!(got, ids);
    ids
}

/// A "started" notice for client "c1" (kept [`TTL`]).
pub(crate) fn started() -> spindle_cluster::Outgoing<'static> {
    spindle_cluster::Outgoing::Notify {
        client: "c1",
        message: b"started",
        ttl: TTL,
    }
}

/// An ack of entry `id` with `result` for client "c1" (results kept
/// [`TTL`]).
pub(crate) fn ack(id: u64, result: &[u8]) -> spindle_cluster::Outgoing<'_> {
    spindle_cluster::Outgoing::Ack {
        id,
        client: "c1",
        result,
        ttl: TTL,
    }
}

/// Fetches until one entry comes (at most `LONG`), under `lease`.
pub(crate) fn fetch_next(b: &dyn Broker, lease: Duration) -> spindle_cluster::Fetched {
    let since = Instant::now();
    loop {
        if let Some(f) = b.fetch(1, Duration::from_millis(50), lease).unwrap().pop() {
            return f;
        }
        assert!(since.elapsed() < LONG, "no entry came");
    }
}

/// `retry_dead` and `purge_dead` on any backend: a dead letter goes back
/// to the queue as a new entry (its deliveries counted from 1 again, and
/// in `unfinished` again); `purge_dead` drops the dead letters kept.
pub(crate) fn check_retry_and_purge_dead(b: &dyn Broker) {
    b.put(b"poison", 3, "c1", b"", TTL).unwrap();
    let f = fetch_next(b, LONG);
    assert!(b.dead_letter(f.id, "cannot run", None, TTL).unwrap());
    assert_eq!(b.counts().unwrap().unfinished, 0);
    assert_eq!(b.retry_dead().unwrap(), 1);
    assert_eq!(b.counts().unwrap().unfinished, 1);
    let g = fetch_next(b, LONG);
    assert_eq!((g.bytes.as_slice(), g.attempt), (&b"poison"[..], 1));
    assert!(b.dead_letter(g.id, "still cannot", None, TTL).unwrap());
    assert_eq!(b.purge_dead().unwrap(), 1);
    assert_eq!(b.retry_dead().unwrap(), 0, "nothing left to retry");
    assert_eq!(b.purge_dead().unwrap(), 0);
    assert!(b.join(Some(LONG)).unwrap());
}

/// `join` on any backend: false at its timeout while entries are
/// unfinished; a waiting `join` returns once the last one is acked,
/// dead-lettered or cancelled, not before.
pub(crate) fn check_join(b: &dyn Broker) {
    assert!(
        b.join(Some(Duration::ZERO)).unwrap(),
        "an empty broker is joined"
    );
    b.put(b"a", 3, "c1", b"", TTL).unwrap();
    b.put(b"b", 3, "c1", b"", TTL).unwrap();
    let c = b.put(b"c", 3, "c1", b"", TTL).unwrap();
    assert!(!b.join(Some(Duration::from_millis(50))).unwrap());
    let f1 = fetch_next(b, LONG);
    let f2 = fetch_next(b, LONG);
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = b.consumer();
    let joiner = thread::spawn(move || tx.send(waiter.join(None)).unwrap());
    assert!(b.ack_with_result(f1.id, "c1", b"r", TTL).unwrap());
    assert!(b.cancel(c).unwrap(), "the third is still queued");
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "join returned with an entry still leased"
    );
    assert!(b.dead_letter(f2.id, "given up", None, TTL).unwrap());
    assert!(rx.recv_timeout(LONG).expect("join returns").unwrap());
    joiner.join().unwrap();
    assert_eq!(b.counts().unwrap().unfinished, 0);
}

/// `nack(delay)` on any backend: the entry is not delivered before its
/// delay and is after, as the next attempt; meanwhile it counts as queued,
/// delayed and unfinished; acked after, nothing is left.
pub(crate) fn check_nack_delay(b: &dyn Broker) {
    let delay = Duration::from_millis(400);
    b.put(b"x", 3, "c1", b"", TTL).unwrap();
    let f = fetch_next(b, LONG);
    assert_eq!(f.attempt, 1);
    let nacked = Instant::now();
    assert!(b.nack(f.id, delay).unwrap());
    let c = b.counts().unwrap();
    assert_eq!(
        (c.queued, c.delayed, c.in_flight, c.unfinished),
        (1, 1, 0, 1),
        "{c:?}"
    );
    // A second nack of it does nothing: this consumer no longer holds it.
    assert!(!b.nack(f.id, delay).unwrap());
    let g = fetch_next(b, LONG);
    let waited = nacked.elapsed();
    assert!(
        waited >= delay,
        "delivered after {waited:?}, before its delay"
    );
    assert!(waited < delay + Duration::from_secs(5), "{waited:?}");
    assert_eq!((g.bytes.as_slice(), g.attempt), (&b"x"[..], 2));
    let c = b.counts().unwrap();
    assert_eq!(
        (c.queued, c.delayed, c.in_flight, c.unfinished),
        (0, 0, 1, 1),
        "{c:?}"
    );
    assert!(b.ack_with_result(g.id, "c1", b"r", TTL).unwrap());
    let c = b.counts().unwrap();
    assert_eq!((c.queued, c.in_flight, c.unfinished), (0, 0, 0), "{c:?}");
    assert_eq!(
        b.results("c1", 10, Duration::ZERO).unwrap(),
        vec![b"r".to_vec()]
    );
}

/// `nack(ZERO)` puts the entry at the tail; a nack at the last allowed
/// delivery dead-letters it (and counts it out of `unfinished`); a nacked
/// entry waiting for its delay can be cancelled.
pub(crate) fn check_nack_tail_dead_cancel(b: &dyn Broker) {
    b.put(b"a", 2, "c1", b"", TTL).unwrap();
    b.put(b"b", 2, "c1", b"", TTL).unwrap();
    let a = fetch_next(b, LONG);
    assert_eq!(a.bytes, b"a");
    assert!(b.nack(a.id, Duration::ZERO).unwrap());
    let next = fetch_next(b, LONG);
    assert_eq!(next.bytes, b"b", "a nack(0) goes to the tail");
    assert!(b.ack_with_result(next.id, "c1", b"", TTL).unwrap());
    let a2 = fetch_next(b, LONG);
    assert_eq!((a2.bytes.as_slice(), a2.attempt), (&b"a"[..], 2));
    // Its second delivery of 2: a nack gives it up.
    let dead_before = b.counts().unwrap().dead_total;
    assert!(b.nack(a2.id, Duration::from_millis(1)).unwrap());
    let c = b.counts().unwrap();
    assert_eq!(
        (
            c.dead_total - dead_before,
            c.queued,
            c.in_flight,
            c.unfinished
        ),
        (1, 0, 0, 0),
        "{c:?}"
    );
    // A delayed entry is still queued: cancel takes it out.
    b.put(b"c", 3, "c1", b"", TTL).unwrap();
    let c1 = fetch_next(b, LONG);
    assert!(b.nack(c1.id, LONG).unwrap());
    assert!(b.cancel(c1.id).unwrap());
    assert!(!b.cancel(c1.id).unwrap());
    let c = b.counts().unwrap();
    assert_eq!((c.queued, c.delayed, c.unfinished), (0, 0, 0), "{c:?}");
    assert!(
        b.fetch(1, Duration::from_millis(50), LONG)
            .unwrap()
            .is_empty()
    );
}

/// Calls of `flaky` so far, per key.
static FLAKY: std::sync::Mutex<Option<std::collections::HashMap<String, u32>>> =
    std::sync::Mutex::new(None);

/// Panics on its first `fails` calls with key `key`, then returns the
/// number of the call.
#[spindle::task]
pub(crate) fn flaky(key: String, fails: u32) -> u32 {
    let n = {
        let mut m = FLAKY.lock().unwrap_or_else(|e| e.into_inner());
        let n = m
            .get_or_insert_with(Default::default)
            .entry(key)
            .or_insert(0);
        *n += 1;
        *n
    };
    assert!(n > fails, "flaky call {n} fails");
    n
}

fn flaky_calls(key: &str) -> u32 {
    let m = FLAKY.lock().unwrap_or_else(|e| e.into_inner());
    m.as_ref().and_then(|m| m.get(key).copied()).unwrap_or(0)
}

/// `submit_with(.., retries(2))` of a task failing twice: Ok from its
/// third run, after both backoffs; `retries(1)` of one failing more: the
/// failure is the result. Counts are clean after.
pub(crate) fn check_retries<B: Broker + Clone + 'static>(b: &B, key: &str) {
    let w = Workers::start(b, 1, TaskOptions::default());
    let ex = ClusterExecutor::builder(Arc::new(b.clone())).build();
    let backoff = Duration::from_millis(100);
    let opts = TaskOptions::default().retries(2).retry_backoff(backoff);
    let since = Instant::now();
    let f = ex
        .submit_with(flaky::call(format!("{key}-ok"), 2), opts)
        .unwrap();
    assert_eq!(f.result_timeout(LONG), Ok(3));
    let took = since.elapsed();
    // Backoffs of 100 ms and 200 ms (each plus up to a quarter).
    assert!(took >= backoff * 3, "took {took:?}");
    assert_eq!(flaky_calls(&format!("{key}-ok")), 3);
    let f = ex
        .submit_with(flaky::call(format!("{key}-err"), 5), opts.retries(1))
        .unwrap();
    match f.result_timeout(LONG) {
        Err(spindle::futures::FutureError::Panicked(m)) => {
            assert!(m.contains("flaky call 2 fails"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(flaky_calls(&format!("{key}-err")), 2);
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.queued, c.dead_total), (0, 0, 0), "{c:?}");
    let stats = w.stop();
    assert_eq!((stats.retried, stats.done), (3, 2), "{stats:?}");
}

/// `submit_with(.., timeout(t))` of a task that runs longer: given up by
/// its worker at `t`, the future fails with `WorkerLost` whose time limit
/// is `t`, never retried; its late outcome is dropped.
pub(crate) fn check_timeout<B: Broker + Clone + 'static>(b: &B) {
    use spindle_conformance::executor::tasks::run_work;
    let w = Workers::start(b, 1, TaskOptions::default());
    let ex = ClusterExecutor::builder(Arc::new(b.clone())).build();
    let timeout = Duration::from_millis(300);
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let since = Instant::now();
    let f = ex
        .submit_with(
            run_work::call(gate.work(7)),
            TaskOptions::default().timeout(timeout).retries(3),
        )
        .unwrap();
    let e = f.result_timeout(LONG).unwrap_err();
    let took = since.elapsed();
    gate.open();
    match &e {
        spindle::futures::FutureError::WorkerLost(lost) => {
            assert_eq!(lost.time_limit(), Some(timeout), "{e:?}");
            // The worker that gave it up: a thread of this process.
            assert_eq!(lost.pid(), std::process::id(), "{e:?}");
        }
        other => panic!("{other:?}"),
    }
    assert!(took >= timeout, "gave up after {took:?}");
    // A task within its timeout is not touched.
    let quick = ex
        .submit_with(
            flaky::call("quick".into(), 0),
            TaskOptions::default().timeout(LONG),
        )
        .unwrap();
    assert_eq!(quick.result_timeout(LONG), Ok(1));
    let stats = w.stop();
    assert_eq!(
        (stats.timed_out, stats.done, stats.retried),
        (1, 1, 0),
        "{stats:?}"
    );
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.dead_total), (0, 1), "{c:?}");
}

/// Options out of range are refused at submit, naming the option.
pub(crate) fn check_bad_options<B: Broker + Clone + 'static>(b: &B) {
    let ex = ClusterExecutor::builder(Arc::new(b.clone())).build();
    for (opts, what) in [
        (TaskOptions::default().max_deliveries(0), "max_deliveries"),
        (TaskOptions::default().lease(Duration::ZERO), "lease"),
        (TaskOptions::default().timeout(Duration::ZERO), "timeout"),
    ] {
        match ex.submit_with(flaky::call("never".into(), 0), opts) {
            Err(SubmitError::InvalidArgument(_, w)) => assert_eq!(w, what),
            other => panic!("{what}: {:?}", other.map(|_| ()).map_err(|_| ())),
        }
    }
    assert_eq!(b.counts().unwrap().unfinished, 0);
}

/// A cluster queue under the conformance suite, with the server it runs
/// on (kept alive as long as the queue, stopped with it).
pub(crate) struct ServedQueue<S> {
    pub(crate) q: spindle_cluster::Queue<u64>,
    pub(crate) _server: S,
}

impl<S> spindle::queue::BlockingQueue<u64> for ServedQueue<S> {
    fn put(&self, item: u64) -> Result<(), spindle::queue::PutError<u64>> {
        self.q.put(item)
    }
    fn try_put(&self, item: u64) -> Result<(), spindle::queue::TryPutError<u64>> {
        self.q.try_put(item)
    }
    fn put_deadline(
        &self,
        item: u64,
        deadline: Instant,
    ) -> Result<(), spindle::queue::PutTimeoutError<u64>> {
        self.q.put_deadline(item, deadline)
    }
    fn get(&self) -> Result<u64, spindle::queue::ShutDown> {
        self.q.get()
    }
    fn try_get(&self) -> Result<u64, spindle::queue::TryGetError> {
        self.q.try_get()
    }
    fn get_deadline(&self, deadline: Instant) -> Result<u64, spindle::queue::GetTimeoutError> {
        self.q.get_deadline(deadline)
    }
    fn qsize(&self) -> usize {
        self.q.qsize()
    }
    fn maxsize(&self) -> usize {
        self.q.maxsize()
    }
    fn task_done(&self) -> Result<(), spindle::queue::TaskDoneError> {
        self.q.task_done()
    }
    fn join(&self) {
        self.q.join()
    }
    fn join_deadline(&self, deadline: Instant) -> Result<(), spindle::queue::JoinTimeoutError> {
        self.q.join_deadline(deadline)
    }
    fn shutdown(&self, immediate: bool) {
        self.q.shutdown(immediate)
    }
    fn is_shutdown(&self) -> bool {
        self.q.is_shutdown()
    }
}

/// A task with a timeout whose worker is killed comes back to another
/// worker once its own lease (timeout + 1 s) runs out, not the killed
/// worker's fetch lease (60 s here).
pub(crate) fn check_timed_task_of_a_dead_worker<B: Broker + Clone + Send + 'static>(
    b: &B,
    at: &BrokerAt,
) {
    let worker_options = TaskOptions::default().lease(LONG);
    let ex = ClusterExecutor::builder(Arc::new(b.clone())).build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let f = ex
        .submit_with(
            run_work::call(gate.work(9)),
            TaskOptions::default().timeout(Duration::from_millis(300)),
        )
        .unwrap();
    let mut doomed = worker_child(at, 1, worker_options);
    wait_running(&f);
    let killed = Instant::now();
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    gate.open();
    let w = Workers::start(b, 1, worker_options);
    assert_eq!(f.result_timeout(LONG), Ok(9));
    let took = killed.elapsed();
    assert!(took < Duration::from_secs(20), "came back after {took:?}");
    assert_eq!(w.stop().done, 1);
}

// ----------------------------------------------------------------------
// ClusterStatus (worker heartbeats), the same checks on both backends.

/// A status snapshot of `b` as queue "tasks".
fn status_of(b: &dyn Broker) -> ClusterStatus {
    ClusterStatus::of("tasks", b).unwrap()
}

/// Waits for a snapshot of `b` for which `ok` holds; that snapshot.
pub(crate) fn wait_status(b: &dyn Broker, ok: impl Fn(&ClusterStatus) -> bool) -> ClusterStatus {
    let since = Instant::now();
    loop {
        let s = status_of(b);
        if ok(&s) {
            return s;
        }
        assert!(since.elapsed() < LONG, "the status never came: {s:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// A worker appears with a fresh heartbeat; the counts match a known
/// workload (20 tasks done, one dead letter); it is gone once stopped.
pub(crate) fn status_counts_a_known_workload<B: Broker + Clone + 'static>(b: &B) {
    let stop = Arc::new(AtomicBool::new(false));
    let w = Worker::new(b)
        .concurrency(2)
        .id("worker-one")
        .status_every(Duration::from_millis(50));
    let s2 = stop.clone();
    let started = Instant::now();
    let thread = thread::spawn(move || w.run(&s2).unwrap());
    let s = wait_status(b, |s| s.workers.len() == 1);
    let w = &s.workers[0];
    assert_eq!(
        (w.id.as_str(), w.queue.as_str(), w.pid, w.concurrency),
        ("worker-one", "tasks", std::process::id(), 2)
    );
    assert!(!w.host.is_empty());
    assert!(w.heartbeat_age_ms < 5_000, "{w:?}");
    assert_eq!(w.heartbeat_every_ms, 50);

    let ex = ClusterExecutor::builder(Arc::new(b.clone())).build();
    let fs: Vec<_> = (0..20u64)
        .map(|i| ex.submit(status_square::call(i)).unwrap())
        .collect();
    b.put(
        &job_of("no_such_task", 0, Vec::new()),
        1,
        "",
        b"",
        Duration::from_secs(60),
    )
    .unwrap();
    for (i, f) in fs.into_iter().enumerate() {
        assert_eq!(f.result_timeout(LONG), Ok(i as u64 * i as u64));
    }
    let s = wait_status(b, |s| {
        s.workers
            .first()
            .is_some_and(|w| w.done == 20 && w.dead_lettered == 1)
    });
    let q = &s.queues[0];
    assert_eq!(
        (
            q.name.as_str(),
            q.queued,
            q.in_flight,
            q.unfinished,
            q.dead_letters
        ),
        ("tasks", 0, 0, 0, 1),
        "{q:?}"
    );
    assert_eq!((q.workers, q.done), (1, 20), "{q:?}");
    assert_eq!(s.done_per_sec, q.done_per_sec, "{s:?}");
    assert_eq!(q.done_per_sec, s.workers[0].done_per_sec, "{s:?}");
    // Its 20 tasks fall in the rate's window (10 s) unless this host
    // stalled that long.
    if started.elapsed() < spindle_cluster::status::RATE_WINDOW {
        assert!(q.done_per_sec > 0.0, "{s:?}");
    }
    assert_eq!(s.workers[0].running, 0);
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(json["queues"][0]["dead_letters"], 1);
    assert_eq!(json["workers"][0]["id"], "worker-one");

    stop.store(true, Ordering::SeqCst);
    assert_eq!(thread.join().unwrap().done, 20);
    // A worker that stops takes its heartbeat out at once.
    assert_eq!(status_of(b).workers, Vec::new());
}

#[spindle::task]
fn status_square(x: u64) -> u64 {
    x * x
}

/// A worker killed while it runs a task: listed as running it (the task
/// in flight), its heartbeat then ages, and it is dropped after
/// `HEARTBEAT_MISSES` heartbeats missed.
pub(crate) fn status_drops_a_killed_worker<B: Broker + Clone + Send + 'static>(
    b: &B,
    at: &BrokerAt,
) {
    let every = Duration::from_millis(200);
    let options = TaskOptions {
        lease: Duration::from_secs(30),
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let f = ex.submit(run_work::call(gate.work(7))).unwrap();
    // A worker process started by the fork server (see `worker_child`).
    let mut doomed = Process::builder()
        .task(status_worker_process::call(
            at.clone(),
            "doomed".into(),
            u64::try_from(every.as_millis()).unwrap(),
            u64::try_from(options.lease.as_millis()).unwrap(),
        ))
        .daemon(true)
        .start()
        .unwrap();
    wait_running(&f);
    let s = wait_status(b, |s| s.workers.first().is_some_and(|w| w.running == 1));
    assert_eq!(s.workers[0].id, "doomed");
    assert_eq!(s.workers[0].pid, doomed.pid().unwrap());
    assert_eq!(s.queues[0].in_flight, 1);
    let killed = Instant::now();
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    // Its heartbeat ages past a beat while it is still listed...
    let mut oldest = 0;
    let since = Instant::now();
    loop {
        let s = status_of(b);
        match s.workers.first() {
            Some(w) => oldest = oldest.max(w.heartbeat_age_ms),
            None => break,
        }
        assert!(
            since.elapsed() < LONG,
            "the killed worker was never dropped"
        );
        thread::sleep(Duration::from_millis(5));
    }
    // ...and then it is dropped: 5 beats (1 s) after its last one, which
    // came at most a beat before the kill; not before.
    assert!(oldest >= every.as_millis() as u64, "{oldest} ms");
    assert!(
        killed.elapsed() >= 4 * every,
        "dropped {:?} after the kill",
        killed.elapsed()
    );
    gate.open();
    ex.shutdown(false, true);
}

/// A TCP relay to `target` for one test: it passes bytes both ways, except
/// that once a client sends a chunk holding `needle`, the server's next
/// reply on that connection is thrown away and the connection cut (a
/// reply lost in the network, once per relay).
pub(crate) struct CuttingRelay {
    pub(crate) addr: std::net::SocketAddr,
    /// Whether the cut happened.
    pub(crate) cut: Arc<AtomicBool>,
}

impl CuttingRelay {
    pub(crate) fn start(target: std::net::SocketAddr, needles: &'static [&'static [u8]]) -> Self {
        use std::io::{Read, Write};
        use std::net::{Shutdown, TcpListener, TcpStream};
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let cut2 = cut.clone();
        thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                let Ok(server) = TcpStream::connect(target) else {
                    continue;
                };
                let armed = Arc::new(AtomicBool::new(false));
                let (mut c_in, mut s_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (a1, done1) = (armed.clone(), cut2.clone());
                thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = c_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        let chunk = &buf[..n];
                        if !done1.load(Ordering::SeqCst)
                            && needles
                                .iter()
                                .any(|nd| chunk.windows(nd.len()).any(|w| w == *nd))
                        {
                            a1.store(true, Ordering::SeqCst);
                        }
                        if s_out.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = s_out.shutdown(Shutdown::Both);
                });
                let (mut s_in, mut c_out) = (server, client);
                let done2 = cut2.clone();
                thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n) = s_in.read(&mut buf) {
                        if n == 0 {
                            break;
                        }
                        if armed.load(Ordering::SeqCst) && !done2.swap(true, Ordering::SeqCst) {
                            // The reply to the marked command: lost.
                            break;
                        }
                        if c_out.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = c_out.shutdown(Shutdown::Both);
                    let _ = s_in.shutdown(Shutdown::Both);
                });
            }
        });
        CuttingRelay { addr, cut }
    }
}

/// Waits until `ok` holds of the broker's counts (at most `LONG`).
fn wait_counts(b: &dyn Broker, what: &str, ok: impl Fn(&spindle::manager::BrokerCounts) -> bool) {
    let since = Instant::now();
    loop {
        let c = b.counts().unwrap();
        if ok(&c) {
            return;
        }
        assert!(since.elapsed() < LONG, "{what}: never; last counts {c:?}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// The prefetch window on any backend: a worker of one thread and a
/// window of 3 holds 4 entries (one running, blocked on a gate; 3
/// prefetched, reported running as Python's ProcessPoolExecutor reports
/// the calls in its call queue); the prefetched ones keep their leases
/// (extended by the heartbeat) while they wait far past one lease, so a
/// second worker gets only the entries still queued; when the first
/// worker stops, its prefetched entries go back at once (`returned`) and
/// the second worker runs them; every task has its one result.
pub(crate) fn check_prefetch_window<B: Broker + Clone + 'static>(b: &B) {
    let lease = Duration::from_millis(300);
    let options = TaskOptions {
        lease,
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let blocked = ex.submit(run_work::call(gate.work(100))).unwrap();
    let rest: Vec<_> = (1..=5)
        .map(|i| ex.submit(run_work::call(Work::Identity(i))).unwrap())
        .collect();
    // Every entry in the broker first (submit returns before its put):
    // a fetch that finds fewer than it asks for leaves the window to be
    // topped up only once half of it is free.
    wait_counts(b, "all 6 put", |c| c.queued == 6);
    let stop_a = Arc::new(AtomicBool::new(false));
    let a = {
        let w = Worker::new(b).concurrency(1).prefetch(3).options(options);
        assert_eq!(w.prefetch_window(), 3);
        let stop = stop_a.clone();
        thread::spawn(move || w.run(&stop).unwrap())
    };
    wait_counts(b, "1 running + 3 prefetched", |c| {
        c.in_flight == 4 && c.queued == 2
    });
    wait_running(&blocked);
    for f in &rest[..3] {
        wait_running(f); // prefetched: reported running
    }
    assert!(!rest[3].running() && !rest[4].running());
    assert!(!rest[0].cancel(), "a prefetched task cannot be cancelled");
    let b_worker = Workers::start(b, 1, options);
    for (i, f) in (4..).zip(&rest[3..]) {
        assert_eq!(f.result_timeout(LONG), Ok(i));
    }
    // The prefetched entries wait more than three leases: none is taken
    // by the other worker (it would run it at once: it is idle).
    let since = Instant::now();
    while since.elapsed() < lease * 4 {
        let c = b.counts().unwrap();
        assert_eq!((c.in_flight, c.expired), (4, 0), "{c:?}");
        thread::sleep(Duration::from_millis(20));
    }
    assert!(rest[..3].iter().all(|f| !f.done()));
    // A stops (a drain): its prefetched entries go back, B runs them.
    stop_a.store(true, Ordering::SeqCst);
    for (i, f) in (1..).zip(&rest[..3]) {
        assert_eq!(f.result_timeout(LONG), Ok(i));
    }
    gate.open();
    assert_eq!(blocked.result_timeout(LONG), Ok(100));
    let sa = a.join().unwrap();
    assert_eq!((sa.done, sa.returned, sa.stale), (1, 3, 0), "{sa:?}");
    let sb = b_worker.stop();
    assert_eq!((sb.done, sb.stale), (5, 0), "{sb:?}");
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.expired), (0, 0), "{c:?}");
}

/// A killed worker's prefetched entries come back (their leases run
/// out) and run on another worker: the worker process (one thread, the
/// default window of 1) holds a blocked task and a prefetched one.
pub(crate) fn check_killed_workers_prefetched_redelivered<B: Broker + Clone + 'static>(
    b: &B,
    at: &BrokerAt,
) {
    let options = TaskOptions {
        lease: Duration::from_millis(300),
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let first = ex.submit(run_work::call(gate.work(7))).unwrap();
    let second = ex.submit(run_work::call(Work::Identity(8))).unwrap();
    let mut doomed = worker_child(at, 1, options);
    wait_running(&first);
    wait_running(&second); // prefetched
    wait_counts(b, "both fetched", |c| c.in_flight == 2 && c.queued == 0);
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    gate.open();
    let w = Workers::start(b, 1, options);
    assert_eq!(first.result_timeout(LONG), Ok(7));
    assert_eq!(second.result_timeout(LONG), Ok(8));
    let c = b.counts().unwrap();
    assert!(c.expired >= 2, "{c:?}");
    assert_eq!(c.unfinished, 0, "{c:?}");
    assert_eq!(w.stop().done, 2);
}

/// `send_batch` on any backend: notices and acks in order, each ack
/// counting once and only for the lease holder; one result per entry.
pub(crate) fn check_send_batch(b: &dyn Broker) {
    let ids = put_and_fetch(b, 3);
    let zombie = b.consumer();
    assert_eq!(
        zombie.send_batch(&[ack(ids[2], b"zombie")]).unwrap(),
        vec![false]
    );
    let counted = b
        .send_batch(&[
            started(),
            ack(ids[0], b"r0"),
            ack(ids[1], b"r1"),
            ack(ids[0], b"again"),
            ack(ids[2], b"r2"),
        ])
        .unwrap();
    assert_eq!(counted, vec![true, true, true, false, true]);
    assert!(b.send_batch(&[]).unwrap().is_empty());
    let mut results = Vec::new();
    let since = Instant::now();
    while results.len() < 4 {
        results.extend(b.results("c1", 10, Duration::from_millis(50)).unwrap());
        assert!(since.elapsed() < LONG, "results never came: {results:?}");
    }
    assert!(
        b.results("c1", 10, Duration::from_millis(100))
            .unwrap()
            .is_empty()
    );
    let want: Vec<Vec<u8>> = [&b"started"[..], b"r0", b"r1", b"r2"]
        .iter()
        .map(|r| r.to_vec())
        .collect();
    assert_eq!(results, want);
    let c = b.counts().unwrap();
    assert_eq!((c.unfinished, c.in_flight), (0, 0), "{c:?}");
}

/// `put_batch` on any backend: the entries are put in order, each with
/// its own options (its `max_deliveries` and `on_dead`: an entry whose one
/// allowed delivery's lease runs out is dead-lettered and its client gets
/// its `on_dead` message), counted in `unfinished`; an empty batch puts
/// nothing.
pub(crate) fn check_put_batch(b: &dyn Broker) {
    use spindle_cluster::{PutEntry, PutOptions};
    assert!(b.put_batch(&[]).unwrap().is_empty());
    assert_eq!(b.counts().unwrap().unfinished, 0);
    let put = |entry: &'static [u8], max_deliveries, on_dead: &'static [u8]| PutEntry {
        entry,
        options: PutOptions {
            max_deliveries,
            client: "c1",
            on_dead,
            ttl: TTL,
            lease: None,
        },
    };
    let ids = b
        .put_batch(&[
            put(b"a", 1, b"a lost"),
            put(b"b", 3, b"b lost"),
            put(b"c", 3, b"c lost"),
        ])
        .unwrap();
    assert_eq!(ids.len(), 3);
    let c = b.counts().unwrap();
    assert_eq!((c.queued, c.unfinished), (3, 3), "{c:?}");
    // In order, each once; `a` under a short lease.
    let short = Duration::from_millis(100);
    let a = fetch_next(b, short);
    let rest: Vec<_> = [fetch_next(b, LONG), fetch_next(b, LONG)].into();
    let got: Vec<(u64, &[u8], u32)> = [&a, &rest[0], &rest[1]]
        .iter()
        .map(|f| (f.id, f.bytes.as_slice(), f.attempt))
        .collect();
    assert_eq!(
        got,
        vec![
            (ids[0], &b"a"[..], 1),
            (ids[1], &b"b"[..], 1),
            (ids[2], &b"c"[..], 1)
        ]
    );
    assert!(b.ack_with_result(ids[1], "c1", b"rb", TTL).unwrap());
    assert!(b.ack_with_result(ids[2], "c1", b"rc", TTL).unwrap());
    // `a`'s lease runs out at its last allowed delivery: a dead letter
    // (a fetch runs Redis's reclaimer), never delivered again.
    let since = Instant::now();
    while b.counts().unwrap().dead_total == 0 {
        let again = b.fetch(1, Duration::from_millis(20), short).unwrap();
        assert!(again.is_empty(), "delivered again: {again:?}");
        assert!(since.elapsed() < LONG, "a's lease never ran out");
    }
    let mut results = Vec::new();
    while results.len() < 3 {
        results.extend(b.results("c1", 10, Duration::from_millis(50)).unwrap());
        assert!(since.elapsed() < LONG, "results never came: {results:?}");
    }
    // (`a` may run out before the acks: the order is not the point.)
    results.sort();
    assert_eq!(
        results,
        vec![b"a lost".to_vec(), b"rb".to_vec(), b"rc".to_vec()]
    );
    assert_eq!(b.counts().unwrap().unfinished, 0);
}
