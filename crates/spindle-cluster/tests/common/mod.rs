//! What the embedded and the Redis tests share: worker threads, a whole
//! cluster for the executor conformance suite, a raw job entry, a worker
//! process to kill.
#![allow(dead_code)] // each test file uses what it needs

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;
use spindle::futures::{Executor, Future, MapFn, SubmitError, Task};
use spindle::process::{CallJob, Process, RemoteExecutor, StartMethod, WireFormat};
use spindle_cluster::{Broker, ClusterExecutor, ClusterStatus, TaskOptions, Worker, WorkerStats};
use spindle_conformance::executor::{ExecutorUnderTest, Work, tasks::run_work};

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

/// A worker in a child process (fork: it adopts its own connection and
/// references), to be killed while it runs a task.
pub(crate) fn doomed_worker<B: Broker + Clone + Send + 'static>(
    b: &B,
    options: TaskOptions,
) -> Process {
    let b = b.clone();
    Process::builder()
        .closure(move || {
            let stop = AtomicBool::new(false);
            Worker::new(&b).options(options).run(&stop).unwrap();
        })
        .start_method(StartMethod::Fork)
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
pub(crate) fn status_drops_a_killed_worker<B: Broker + Clone + Send + 'static>(b: &B) {
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
    let b2 = b.clone();
    let mut doomed = Process::builder()
        .closure(move || {
            let stop = AtomicBool::new(false);
            Worker::new(&b2)
                .id("doomed")
                .status_every(every)
                .options(options)
                .run(&stop)
                .unwrap();
        })
        .start_method(StartMethod::Fork)
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
