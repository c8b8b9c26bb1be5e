//! `spindle-cluster` on the embedded broker (a manager server in this
//! process): the executor conformance suite, tasks that cannot run
//! (dead-lettered at once), workers that die (redelivered), a broker that
//! is gone (unavailable).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_bytes::ByteBuf;
use spindle::futures::{Executor, Future, FutureError, MapFn, SubmitError, Task};
use spindle::manager::{BaseManager, BrokerProxy, Server, Typeid};
use spindle::process::{CallJob, Process, RemoteExecutor, StartMethod, WireFormat};
use spindle_cluster::{Broker, ClusterExecutor, EmbeddedBroker, TaskOptions, Worker, WorkerStats};
use spindle_conformance::executor::{ExecutorUnderTest, Work, tasks::run_work};

const KEY: &[u8] = b"cluster-tests-key-0123456789abcdef";
const LONG: Duration = Duration::from_secs(60);

fn server() -> Server {
    BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().unwrap())
        .authkey(KEY)
        .spawn()
        .unwrap()
}

fn broker(s: &Server) -> EmbeddedBroker {
    EmbeddedBroker::connect(s.address().clone(), KEY, "tasks").unwrap()
}

/// Worker threads of this process on `broker`, until dropped.
struct Workers {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<WorkerStats>>,
}

impl Workers {
    fn start(broker: &dyn Broker, n: usize, options: TaskOptions) -> Workers {
        let stop = Arc::new(AtomicBool::new(false));
        let w = Worker::new(broker).concurrency(n).options(options);
        let s2 = stop.clone();
        let thread = thread::spawn(move || w.run(&s2).unwrap());
        Workers {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> WorkerStats {
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

/// A whole cluster in this process, for the conformance suite: a server
/// with a broker, `max_workers` worker threads, and the executor.
struct LocalCluster {
    executor: ClusterExecutor,
    _workers: Workers,
    _server: Server,
}

impl Executor for LocalCluster {
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

impl RemoteExecutor for LocalCluster {
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

impl ExecutorUnderTest for LocalCluster {
    fn with_workers(max_workers: usize) -> LocalCluster {
        let server = server();
        let b = broker(&server);
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

mod conformance {
    spindle_conformance::executor_suite!(super::LocalCluster);
}

#[spindle::task]
fn square(x: u64) -> u64 {
    x * x
}

/// A job entry as the executor writes it (named MessagePack).
#[derive(Serialize)]
struct RawJob {
    client: String,
    job: u64,
    calls: Vec<spindle::process::EncodedCall>,
}

fn raw_put(s: &Server, bytes: Vec<u8>) {
    let m = s.connect().unwrap();
    let b: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
    b.put(&ByteBuf::from(bytes)).unwrap();
}

/// Waits for `n` dead letters; their reasons.
fn dead_reasons(s: &Server, n: usize) -> Vec<String> {
    let m = s.connect().unwrap();
    let b: BrokerProxy<ByteBuf> = m.get("tasks").unwrap();
    let since = Instant::now();
    loop {
        let dead = b.dead_letters(100).unwrap();
        if dead.len() >= n {
            return dead.into_iter().map(|d| d.reason).collect();
        }
        assert!(since.elapsed() < LONG, "{n} dead letters never came");
        thread::sleep(Duration::from_millis(10));
    }
}

fn job_of(name: &str, signature: u64, args: Vec<u8>) -> Vec<u8> {
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

#[test]
fn unknown_task_dead_lettered() {
    let s = server();
    let w = Workers::start(&broker(&s), 1, TaskOptions::default());
    raw_put(
        &s,
        job_of("no::such::task", 1, rmp_serde::to_vec(&(1u64,)).unwrap()),
    );
    let reasons = dead_reasons(&s, 1);
    assert!(reasons[0].contains("no::such::task"), "{reasons:?}");
    assert_eq!(w.stop().dead_lettered, 1);
}

#[test]
fn signature_mismatch_dead_lettered() {
    use spindle::process::Task as _;
    let s = server();
    let w = Workers::start(&broker(&s), 1, TaskOptions::default());
    let wrong = square::SIGNATURE ^ 1;
    raw_put(
        &s,
        job_of(square::NAME, wrong, rmp_serde::to_vec(&(3u64,)).unwrap()),
    );
    let reasons = dead_reasons(&s, 1);
    assert!(reasons[0].contains("signature"), "{reasons:?}");
    assert_eq!(w.stop().dead_lettered, 1);
}

#[test]
fn garbage_entry_dead_lettered() {
    let s = server();
    let w = Workers::start(&broker(&s), 1, TaskOptions::default());
    raw_put(&s, b"\xc1 not MessagePack".to_vec());
    let reasons = dead_reasons(&s, 1);
    assert!(reasons[0].contains("not a job entry"), "{reasons:?}");
    // The worker goes on: a good task after it runs.
    let ex = ClusterExecutor::builder(Arc::new(broker(&s))).build();
    assert_eq!(ex.submit(square::call(7)).unwrap().result(), Ok(49));
    let stats = w.stop();
    assert_eq!((stats.dead_lettered, stats.done), (1, 1));
}

#[test]
fn broker_down_submit_unavailable() {
    let s = server();
    let ex = ClusterExecutor::builder(Arc::new(broker(&s))).build();
    s.stop().unwrap();
    let f = ex.submit(square::call(2)).unwrap();
    let e = f.result().unwrap_err();
    assert!(e.is_unavailable(), "{e:?}");
}

/// A worker in a child process (fork: it inherits the broker connection's
/// settings and adopts its own reference), killed while it runs a task.
fn doomed_worker(b: &EmbeddedBroker, options: TaskOptions) -> Process {
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

fn wait_running<T: Clone, E: Clone>(f: &Future<T, E>) {
    let since = Instant::now();
    while !f.running() {
        assert!(since.elapsed() < LONG, "the task never started");
        thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_killed_workers_task_goes_to_another_worker() {
    let s = server();
    let b = broker(&s);
    let options = TaskOptions {
        lease: Duration::from_millis(300),
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let f = ex.submit(run_work::call(gate.work(7))).unwrap();
    let mut doomed = doomed_worker(&b, options);
    wait_running(&f);
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    gate.open();
    let w = Workers::start(&b, 1, options);
    assert_eq!(f.result_timeout(LONG), Ok(7));
    let counts = b.counts().unwrap();
    assert!(counts.expired >= 1, "{counts:?}");
    assert_eq!(w.stop().done, 1);
}

#[test]
fn a_task_whose_workers_keep_dying_fails_with_worker_lost() {
    let s = server();
    let b = broker(&s);
    let options = TaskOptions {
        lease: Duration::from_millis(300),
        max_deliveries: 1,
        ..TaskOptions::default()
    };
    let ex = ClusterExecutor::builder(Arc::new(b.clone()))
        .options(options)
        .build();
    let gate = spindle_conformance::executor::Gate::new().unwrap();
    let f = ex.submit(run_work::call(gate.work(7))).unwrap();
    let mut doomed = doomed_worker(&b, options);
    wait_running(&f);
    doomed.kill().unwrap();
    let _ = doomed.join_timeout(LONG);
    gate.open();
    let e = f.result_timeout(LONG).unwrap_err();
    assert!(matches!(e, FutureError::WorkerLost(_)), "{e:?}");
    assert_eq!(b.counts().unwrap().dead_total, 1);
}
