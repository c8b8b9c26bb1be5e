//! Suite `cluster`: `spindle_cluster` on the embedded broker (a manager
//! server in this process, TCP loopback, authenticated) beside Python's
//! seed program (`bench/python/manager.py task_roundtrip`: a `BaseManager`
//! task queue and result queue, one worker process, one proxy call per
//! item). Cases, tasks per second:
//!
//! - `embedded_roundtrip`: one task at a time — submit, wait for its result
//!   — on two worker processes: the latency of the whole path (put, fetch,
//!   started, ack with result, the result thread).
//! - `embedded_throughput_2w`: `map(process::calls(square::call), 0..N)` on
//!   two worker processes, chunks of 64 tasks (one broker entry each) and
//!   the executor's window in flight.
//!
//! The workers are processes of this binary (forked), each a
//! `spindle_cluster::Worker` of two threads.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use spindle::futures::{Executor, MapOptions};
use spindle::manager::{BaseManager, Server, Typeid};
use spindle::process::{self, Process, StartMethod};
use spindle_cluster::{ClusterExecutor, EmbeddedBroker, Worker};

use super::{Bench, Unit, imp, per_sec};

const KEY: &[u8; 32] = b"spindle-bench-cluster-authkey-32";

#[spindle::task]
fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// A broker server and two worker processes, until dropped.
struct Cluster {
    server: Server,
    workers: Vec<Process>,
}

impl Cluster {
    fn start() -> Cluster {
        let server = BaseManager::builder()
            .register("tasks", Typeid::broker())
            .bind("127.0.0.1:0".parse::<SocketAddr>().expect("loopback"))
            .authkey(KEY)
            .spawn()
            .expect("start the broker server");
        let broker = EmbeddedBroker::connect(server.address().clone(), KEY, "tasks")
            .expect("connect to the broker");
        let workers = (0..2)
            .map(|_| {
                let b = broker.clone();
                Process::builder()
                    .closure(move || {
                        let never = AtomicBool::new(false);
                        let _ = Worker::new(&b).concurrency(2).run(&never);
                    })
                    .start_method(StartMethod::Fork)
                    .start()
                    .expect("start a worker")
            })
            .collect();
        Cluster { server, workers }
    }

    fn executor(&self) -> ClusterExecutor {
        let b = EmbeddedBroker::connect(self.server.address().clone(), KEY, "tasks")
            .expect("connect to the broker");
        ClusterExecutor::builder(Arc::new(b)).max_workers(4).build()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for w in &mut self.workers {
            let _ = w.kill();
            let _ = w.join();
        }
    }
}

pub(crate) fn run(b: &mut Bench) {
    let quick = b.quick();
    let cluster = Cluster::start();
    let ex = cluster.executor();

    if b.wants("embedded_roundtrip") {
        let n: u64 = if quick { 200 } else { 1_000 };
        let mut impls = vec![imp("spindle", || {
            per_sec(n, |n| {
                for i in 0..n {
                    let f = ex.submit(square::call(i)).expect("submit");
                    assert_eq!(f.result(), Ok(i * i));
                }
            })
        })];
        impls.push(b.python("manager.py", "task_roundtrip"));
        b.case("embedded_roundtrip", Unit::TasksPerSec, impls);
    }

    if b.wants("embedded_throughput_2w") {
        let n: u64 = if quick { 20_000 } else { 100_000 };
        let mut impls = vec![imp("spindle", || {
            per_sec(n, |n| {
                let opts = MapOptions::new().chunksize(64);
                let sum = ex
                    .map_with(process::calls(square::call), 0..n, opts)
                    .expect("map")
                    .map(|r| r.expect("a result"))
                    .fold(0u64, u64::wrapping_add);
                let want = (0..n).map(|i| i * i).fold(0u64, u64::wrapping_add);
                assert_eq!(sum, want, "lost or wrong results");
            })
        })];
        impls.push(b.python("manager.py", "task_roundtrip"));
        b.case("embedded_throughput_2w", Unit::TasksPerSec, impls);
    }
    ex.shutdown(true, false);
}
