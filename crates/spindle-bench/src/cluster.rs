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
//! - `redis_roundtrip`, `redis_throughput_2w`: the same on `RedisBroker`
//!   (Redis Streams and Lua), a private `redis-server` on a Unix socket in a
//!   fresh directory, stopped by pid at the end (left out, with the reason,
//!   if `redis-server` is not installed).
//!
//! - `redis_queue_put_get`: `spindle_cluster::Queue<u64>` on that Redis,
//!   one client, `put(i)` then `get()` (one op = the pair; each a Lua
//!   script round trip), beside Python's `manager.py queue_put_get` (the
//!   seed's way to share a queue between hosts: a `queue.Queue` registered
//!   on a `BaseManager`, one proxy).
//!
//! The workers are processes of this binary (forked), each a
//! `spindle_cluster::Worker` of two threads.
//!
//! With the cargo feature `apalis` (off by default), the Redis cases also
//! run `apalis`: apalis-redis on the same server (`cluster/apalis.rs`, which
//! says how it is set up and why).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use spindle::futures::{Executor, MapOptions};
use spindle::manager::{BaseManager, Typeid};
use spindle::process::{self, Process, StartMethod};
use spindle::queue::BlockingQueue;
use spindle_cluster::{Broker, ClusterExecutor, EmbeddedBroker, RedisBroker, Worker};

use super::{Bench, Unit, imp, per_sec};

#[cfg(feature = "apalis")]
mod apalis;

const KEY: &[u8; 32] = b"spindle-bench-cluster-authkey-32";

#[spindle::task]
fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// Two worker processes of this binary on `broker`, killed when dropped.
struct Workers(Vec<Process>);

impl Workers {
    fn start<B: Broker + Clone + Send + 'static>(broker: &B) -> Workers {
        Workers(
            (0..2)
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
                .collect(),
        )
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for w in &mut self.0 {
            let _ = w.kill();
            let _ = w.join();
        }
    }
}

/// A private redis-server on a Unix socket, killed by pid when dropped.
struct RedisServer {
    child: std::process::Child,
    dir: std::path::PathBuf,
    #[cfg_attr(not(feature = "apalis"), allow(dead_code))]
    url: String,
}

impl RedisServer {
    fn start() -> Result<(RedisServer, RedisBroker), String> {
        let dir = std::env::temp_dir().join(format!("spindle-bench-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let child = std::process::Command::new("redis-server")
            .args(["--port", "0", "--unixsocket"])
            .arg(dir.join("redis.sock"))
            .args([
                "--unixsocketperm",
                "700",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .arg("--dir")
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        let url = format!("unix://{}", dir.join("redis.sock").display());
        let server = RedisServer {
            child,
            dir,
            url: url.clone(),
        };
        let since = std::time::Instant::now();
        loop {
            if let Ok(b) = RedisBroker::connect(&url, "bench")
                && b.counts().is_ok()
            {
                return Ok((server, b));
            }
            if since.elapsed() > std::time::Duration::from_secs(30) {
                return Err("redis-server never answered".into());
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}

impl RedisServer {
    fn url(&self) -> String {
        format!("unix://{}", self.dir.join("redis.sock").display())
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `put(i)` then `get()` on a cluster queue on Redis: one op is the pair.
fn queue_put_get(url: &str, n: u64) -> f64 {
    let q = spindle_cluster::Queue::<u64>::redis(url, "bench-queue", 0).expect("the queue");
    per_sec(n, |n| {
        for i in 0..n {
            q.put(i).expect("put");
            assert_eq!(q.get(), Ok(i));
        }
    })
}

/// One task at a time: submit, wait for its result.
fn roundtrip(ex: &ClusterExecutor, n: u64) -> f64 {
    per_sec(n, |n| {
        for i in 0..n {
            let f = ex.submit(square::call(i)).expect("submit");
            assert_eq!(f.result(), Ok(i * i));
        }
    })
}

/// `map` in chunks of 64.
fn throughput(ex: &ClusterExecutor, n: u64) -> f64 {
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
}

pub(crate) fn run(b: &mut Bench) {
    let quick = b.quick();
    let (n_rt, n_tp): (u64, u64) = if quick {
        (200, 20_000)
    } else {
        (1_000, 100_000)
    };

    // The embedded broker: a manager server in this process.
    let server = BaseManager::builder()
        .register("tasks", Typeid::broker())
        .bind("127.0.0.1:0".parse::<SocketAddr>().expect("loopback"))
        .authkey(KEY)
        .spawn()
        .expect("start the broker server");
    let embedded = EmbeddedBroker::connect(server.address().clone(), KEY, "tasks")
        .expect("connect to the broker");
    let workers = Workers::start(&embedded);
    let ex = ClusterExecutor::builder(Arc::new(embedded))
        .max_workers(4)
        .build();
    if b.wants("embedded_roundtrip") {
        let impls = vec![
            imp("spindle", || roundtrip(&ex, n_rt)),
            b.python("manager.py", "task_roundtrip"),
        ];
        b.case("embedded_roundtrip", Unit::TasksPerSec, impls);
    }
    if b.wants("embedded_throughput_2w") {
        let impls = vec![
            imp("spindle", || throughput(&ex, n_tp)),
            b.python("manager.py", "task_roundtrip"),
        ];
        b.case("embedded_throughput_2w", Unit::TasksPerSec, impls);
    }
    ex.shutdown(true, false);
    drop(workers);

    // Redis Streams, on a private redis-server.
    if b.wants("redis_roundtrip")
        || b.wants("redis_throughput_2w")
        || b.wants("redis_queue_put_get")
    {
        match RedisServer::start() {
            Ok((redis, broker)) => {
                let workers = Workers::start(&broker);
                let ex = ClusterExecutor::builder(Arc::new(broker))
                    .max_workers(4)
                    .build();
                if b.wants("redis_roundtrip") {
                    #[allow(unused_mut)]
                    let mut impls = vec![
                        imp("spindle", || roundtrip(&ex, n_rt)),
                        b.python("manager.py", "task_roundtrip"),
                    ];
                    #[cfg(feature = "apalis")]
                    impls.push(super::fallible("apalis", true, true, || {
                        apalis::roundtrip(&redis.url, n_rt)
                    }));
                    b.case("redis_roundtrip", Unit::TasksPerSec, impls);
                }
                if b.wants("redis_throughput_2w") {
                    #[allow(unused_mut)]
                    let mut impls = vec![
                        imp("spindle", || throughput(&ex, n_tp)),
                        b.python("manager.py", "task_roundtrip"),
                    ];
                    // A tenth of the tasks: apalis runs them ~500× slower
                    // here (the figure is a rate; cluster/apalis.rs).
                    #[cfg(feature = "apalis")]
                    impls.push(super::fallible("apalis", true, true, || {
                        apalis::throughput(&redis.url, n_tp / 10)
                    }));
                    b.case("redis_throughput_2w", Unit::TasksPerSec, impls);
                }
                ex.shutdown(true, false);
                drop(workers);
                if b.wants("redis_queue_put_get") {
                    let url = redis.url();
                    let n_q = if quick { 2_000 } else { 20_000 };
                    let impls = vec![
                        imp("spindle", || queue_put_get(&url, n_q)),
                        b.python("manager.py", "queue_put_get"),
                    ];
                    b.case("redis_queue_put_get", Unit::OpsPerSec, impls);
                }
                drop(redis);
            }
            Err(why) => eprintln!("bench cluster: the redis cases are left out: {why}"),
        }
    }
}
