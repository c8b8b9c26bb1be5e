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
use spindle_cluster::{Broker, ClusterExecutor, TaskOptions, Worker, WorkerStats};
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
