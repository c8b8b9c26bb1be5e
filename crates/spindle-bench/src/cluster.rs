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
//! The workers are processes of this binary (started by the fork server),
//! each a `spindle_cluster::Worker` of two threads (on Redis with a
//! prefetch window of [`REDIS_PREFETCH`] entries). Contender `redis_floor`
//! (in `redis_throughput_2w`): the same Redis commands by bare redis-rs,
//! pipelined, no scripts, no work.
//!
//! - `throughput_2w_rtt20ms`: `redis_throughput_2w`'s map through a link
//!   of 20 ms round trip — a delaying TCP relay (`cluster/relay.rs`, 10 ms
//!   each way) between the two workers and Redis (here also on a TCP
//!   port) — with a prefetch window of [`RTT_PREFETCH`] a worker, over
//!   [`RTT_TASKS`] tasks (`--quick`: as `redis_throughput_2w`); contender
//!   `loopback`: the same workers on Redis's TCP port directly.
//!
//! With the cargo feature `apalis` (off by default), the Redis cases also
//! run `apalis`: apalis-redis on the same server (`cluster/apalis.rs`, which
//! says how it is set up and why).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use spindle::futures::{Executor, MapOptions};
use spindle::manager::{BaseManager, Typeid};
use spindle::process::{self, Process};
use spindle::queue::BlockingQueue;
use spindle_cluster::{Broker, ClusterExecutor, EmbeddedBroker, RedisBroker, Worker};

use super::{Bench, Unit, imp, per_sec};

#[cfg(feature = "apalis")]
mod apalis;
mod relay;

const KEY: &[u8; 32] = b"spindle-bench-cluster-authkey-32";

#[spindle::task]
fn square(x: u64) -> u64 {
    x.wrapping_mul(x)
}

/// Where a worker process finds its broker (it connects on its own).
#[derive(serde::Serialize, serde::Deserialize)]
enum BrokerAt {
    Embedded { address: String },
    Redis { url: String },
    RedisQueue { url: String, queue: String },
}

/// A worker process of this binary: two threads on the broker at `at`,
/// with a prefetch window of `prefetch` (`None`: the default), until
/// killed.
#[spindle::task]
fn worker(at: BrokerAt, prefetch: Option<usize>) {
    let b: Arc<dyn Broker> = match at {
        BrokerAt::Embedded { address } => Arc::new(
            EmbeddedBroker::connect(
                address
                    .parse::<spindle::ipc::Address>()
                    .expect("an address"),
                KEY,
                "tasks",
            )
            .expect("connect to the broker"),
        ),
        BrokerAt::Redis { url } => {
            Arc::new(RedisBroker::connect(&url, "bench").expect("connect to redis"))
        }
        BrokerAt::RedisQueue { url, queue } => {
            Arc::new(RedisBroker::connect(&url, &queue).expect("connect to redis"))
        }
    };
    let never = AtomicBool::new(false);
    let mut w = Worker::new(&*b).concurrency(2);
    if let Some(n) = prefetch {
        w = w.prefetch(n);
    }
    let _ = w.run(&never);
}

/// Two worker processes of this binary on `broker`, killed when dropped.
///
/// Started by the fork server (a registered task), not by a `fork` of this
/// multi-threaded process: a forked child can inherit a lock another
/// thread held (parking_lot's table of parked threads) and hang forever
/// (docs/NOTES.md, "A flaky cluster test").
struct Workers(Vec<Process>);

impl Workers {
    fn start(at: impl Fn() -> BrokerAt) -> Workers {
        Workers::start_with(at, None)
    }

    fn start_with(at: impl Fn() -> BrokerAt, prefetch: Option<usize>) -> Workers {
        Workers(
            (0..2)
                .map(|_| {
                    Process::builder()
                        .task(worker::call(at(), prefetch))
                        .daemon(true)
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
    /// Its TCP port on 127.0.0.1, if it listens on one.
    port: Option<u16>,
}

impl RedisServer {
    fn start() -> Result<(RedisServer, RedisBroker), String> {
        RedisServer::start_on(None)
    }

    /// Also on a free TCP port of 127.0.0.1.
    fn start_tcp() -> Result<(RedisServer, RedisBroker), String> {
        let free = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        let port = free.local_addr().map_err(|e| e.to_string())?.port();
        drop(free);
        RedisServer::start_on(Some(port))
    }

    fn start_on(port: Option<u16>) -> Result<(RedisServer, RedisBroker), String> {
        let dir = std::env::temp_dir().join(format!("spindle-bench-redis-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.unwrap_or(0).to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .arg("--unixsocket")
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
        let server = RedisServer { child, dir, port };
        let url = server.url();
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

/// `redis_floor`: the Redis commands of `redis_throughput_2w` sent by
/// bare redis-rs, pipelined, with no work and no scripts: per entry of 64
/// tasks, `INCR` + `XADD` (put), `XREADGROUP` (fetch), `XACK` + `XADD` of
/// the result + `XDEL` + `DECR` (ack), `XREAD` of the results; 64 entries
/// per pipeline. The server's cost of the same traffic: what the Redis
/// backend is measured against (the issue's target: at least 50%).
fn redis_floor(url: &str, n: u64) -> f64 {
    use redis::streams::StreamReadReply;
    const CHUNK: u64 = 64;
    const WINDOW: u64 = 64;
    let mut c = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect to redis");
    let (stream, group, results) = ("{floor}:stream", "workers", "{floor}:results");
    let _: Result<(), _> = redis::cmd("DEL").arg(stream).arg(results).query(&mut c);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut c)
        .expect("XGROUP");
    let entry = vec![7u8; 64 * 12];
    let result = vec![9u8; 64 * 10];
    per_sec(n, |n| {
        let entries = n.div_ceil(CHUNK);
        let mut last = "0-0".to_string();
        let mut done = 0;
        while done < entries {
            let k = WINDOW.min(entries - done);
            let mut put = redis::pipe();
            for _ in 0..k {
                put.cmd("INCR").arg("{floor}:unfinished").ignore();
                put.cmd("XADD")
                    .arg(stream)
                    .arg("*")
                    .arg("entry")
                    .arg(&entry)
                    .ignore();
            }
            let () = put.query(&mut c).expect("put");
            let got: StreamReadReply = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(group)
                .arg("w")
                .arg("COUNT")
                .arg(k)
                .arg("STREAMS")
                .arg(stream)
                .arg(">")
                .query(&mut c)
                .expect("fetch");
            let mut ack = redis::pipe();
            for key in &got.keys {
                for e in &key.ids {
                    ack.cmd("XACK").arg(stream).arg(group).arg(&e.id).ignore();
                    ack.cmd("XADD")
                        .arg(results)
                        .arg("*")
                        .arg("r")
                        .arg(&result)
                        .ignore();
                    ack.cmd("XDEL").arg(stream).arg(&e.id).ignore();
                    ack.cmd("DECR").arg("{floor}:unfinished").ignore();
                }
            }
            let () = ack.query(&mut c).expect("ack");
            let read: StreamReadReply = redis::cmd("XREAD")
                .arg("COUNT")
                .arg(k)
                .arg("STREAMS")
                .arg(results)
                .arg(&last)
                .query(&mut c)
                .expect("results");
            let ids: Vec<&str> = read
                .keys
                .iter()
                .flat_map(|key| key.ids.iter().map(|e| e.id.as_str()))
                .collect();
            assert_eq!(ids.len() as u64, k, "redis_floor: results lost");
            last = ids.last().map(|s| (*s).to_string()).unwrap_or(last);
            done += k;
        }
    })
}

/// One task of `soak_10k`: notes that it ran (one line in `log`, before
/// its work, so that a run killed midway counts), works 5 ms (so that the
/// kills land while work remains), and says
/// which worker process ran it.
#[spindle::task]
fn soak_task(n: u64, log: std::path::PathBuf) -> (u64, u32) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(&log)
    {
        let _ = f.write_all(format!("{n}\n").as_bytes());
    }
    std::thread::sleep(std::time::Duration::from_millis(5));
    (n, std::process::id())
}

/// A worker process of two threads with a lease of 1 s (`soak_10k`).
#[spindle::task]
fn soak_worker(url: String) {
    let b = RedisBroker::connect(&url, "soak").expect("connect to redis");
    let never = AtomicBool::new(false);
    let _ = Worker::new(&b)
        .concurrency(2)
        .options(soak_options())
        .run(&never);
}

fn soak_options() -> spindle_cluster::TaskOptions {
    spindle_cluster::TaskOptions {
        lease: std::time::Duration::from_secs(1),
        max_deliveries: 50,
        ..spindle_cluster::TaskOptions::default()
    }
}

/// `soak_10k`: `n` one-task submissions on 3 worker processes (Redis,
/// queue `soak`), `kills` SIGKILLs of the worker that reported the latest
/// result at evenly spaced points of progress (a new worker replaces each).
/// Seconds to the last result; prints the lost tasks (must be 0: it panics
/// otherwise) and the runs past the first.
fn soak(url: &str, n: u64, kills: u64) -> f64 {
    use std::collections::HashMap;
    let started = std::time::Instant::now();
    let log = std::env::temp_dir().join(format!(
        "spindle-bench-soak-{}-{:?}",
        std::process::id(),
        started
    ));
    let start = || {
        Process::builder()
            .task(soak_worker::call(url.to_string()))
            .daemon(true)
            .start()
            .expect("start a worker")
    };
    let mut workers: Vec<Process> = (0..3).map(|_| start()).collect();
    let broker = RedisBroker::connect(url, "soak").expect("connect to redis");
    let ex = ClusterExecutor::builder(Arc::new(broker))
        .max_workers(6)
        .options(soak_options())
        .build();
    let futures: Vec<_> = (0..n)
        .map(|i| ex.submit(soak_task::call(i, log.clone())).expect("submit"))
        .collect();
    let mut kill_at: Vec<u64> = (1..=kills).rev().map(|k| n * k / (kills + 1)).collect();
    let (mut done, mut killed) = (0u64, 0u64);
    let mut seen: HashMap<u64, u32> = HashMap::new();
    for f in spindle::futures::as_completed(&futures) {
        done += 1;
        if let Ok((i, pid)) = f.result() {
            *seen.entry(i).or_default() += 1;
            if kill_at.last().is_some_and(|&k| done >= k)
                && let Some(at) = workers.iter().position(|w| w.pid() == Some(pid))
            {
                kill_at.pop();
                let mut w = workers.swap_remove(at);
                let _ = w.kill();
                let _ = w.join();
                killed += 1;
                workers.push(start());
            }
        }
    }
    let secs = started.elapsed().as_secs_f64();
    ex.shutdown(true, false);
    for mut w in workers {
        let _ = w.kill();
        let _ = w.join();
    }
    let runs = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let lost = n - seen.len() as u64;
    let duplicates = runs.lines().count() as u64 - (n - lost);
    eprintln!(
        "soak_10k: {n} tasks, 3 workers, {killed} kills: {lost} lost, {duplicates} duplicate \
         runs, {secs:.1} s"
    );
    assert_eq!(lost, 0, "soak_10k lost tasks");
    secs
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
    let address = server.address().to_string();
    let workers = Workers::start(|| BrokerAt::Embedded {
        address: address.clone(),
    });
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

    // The soak: 10,000 tasks, 20 kills (quick: 1,000 and 4).
    if b.wants("soak_10k") {
        match RedisServer::start() {
            Ok((redis, _)) => {
                let (n, kills) = if quick { (1_000, 4) } else { (10_000, 20) };
                let url = redis.url();
                let impls = vec![imp("spindle", || soak(&url, n, kills))];
                b.case("soak_10k", Unit::Seconds, impls);
                drop(redis);
            }
            Err(why) => eprintln!("bench cluster: soak_10k is left out: {why}"),
        }
    }

    // Redis Streams, on a private redis-server.
    if b.wants("redis_roundtrip")
        || b.wants("redis_throughput_2w")
        || b.wants("redis_queue_put_get")
    {
        match RedisServer::start() {
            Ok((redis, broker)) => {
                let workers = Workers::start_with(
                    || BrokerAt::Redis { url: redis.url() },
                    Some(REDIS_PREFETCH),
                );
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
                        apalis::roundtrip(&redis.url(), n_rt)
                    }));
                    b.case("redis_roundtrip", Unit::TasksPerSec, impls);
                }
                if b.wants("redis_throughput_2w") {
                    #[allow(unused_mut)]
                    let mut impls = vec![
                        imp("spindle", || throughput(&ex, n_tp)),
                        imp("redis_floor", || redis_floor(&redis.url(), n_tp)),
                        b.python("manager.py", "task_roundtrip"),
                    ];
                    // A tenth of the tasks: apalis runs them ~500× slower
                    // here (the figure is a rate; cluster/apalis.rs).
                    #[cfg(feature = "apalis")]
                    impls.push(super::fallible("apalis", true, true, || {
                        apalis::throughput(&redis.url(), n_tp / 10)
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

    // The same map through a link of 20 ms round trip (a delaying relay
    // between the workers and Redis), beside the same workers on loopback.
    if b.wants("throughput_2w_rtt20ms") {
        match RedisServer::start_tcp() {
            Ok((redis, _)) => {
                let n = if quick { n_tp } else { RTT_TASKS };
                rtt_case(b, &redis, n);
                drop(redis);
            }
            Err(why) => eprintln!("bench cluster: throughput_2w_rtt20ms is left out: {why}"),
        }
    }
}

/// Each worker's prefetch window in the `redis_*` cases (64 entries of
/// 64 tasks beyond its 2 threads, as the floor keeps 64 entries in
/// flight: the default window, 2, left Redis waiting for fetches; 16
/// fetched in smaller batches and cost ~10% more CPU a task than 32–64 —
/// see docs/BENCHMARKS.md, cluster suite, 2026-12-07).
const REDIS_PREFETCH: usize = 64;

/// Each worker's prefetch window in `throughput_2w_rtt20ms` (512: with
/// the loopback figure near 1 M tasks/s since the batched puts and acks
/// of 2026-12-07, a window of 64 held the relayed workers to ~0.3× of it;
/// docs/BENCHMARKS.md).
const RTT_PREFETCH: usize = 512;
/// Tasks a sample in `throughput_2w_rtt20ms` (full runs): long enough
/// for the relayed workers' steady state. A run pays about two round trips
/// before its bulk arrives (the first fetch brings only the first put
/// batch, the next one the rest) and half a round trip for its last ack:
/// ~50 ms, as long as 100,000 tasks take on loopback, so at 100,000 the
/// case measured that ramp (0.43–0.55× on 2026-12-07), not the throughput
/// the window sustains (docs/BENCHMARKS.md).
const RTT_TASKS: u64 = 500_000;
/// The executor's `max_workers` in `throughput_2w_rtt20ms`.
const RTT_MAX_WORKERS: usize = 64;
/// The executor's `map` window there, in entries of 64 tasks: more than
/// the two workers' windows, so that they stay full.
const RTT_MAP_WINDOW: usize = 2048;

/// `throughput_2w_rtt20ms`: `map` in chunks of 64 on two worker processes
/// (two threads, prefetch [`RTT_PREFETCH`] each) that reach Redis through
/// [`relay::Relay`] (10 ms each way; the executor on the Unix socket),
/// contender `loopback`: the same on workers connected straight to
/// Redis's TCP port. By Little's law the relayed workers move at most
/// `entries in flight ÷ round trip`: the window is what keeps enough in
/// flight.
fn rtt_case(b: &mut Bench, redis: &RedisServer, n: u64) {
    let port = redis.port.expect("a TCP port");
    let target = SocketAddr::from(([127, 0, 0, 1], port));
    let relay =
        relay::Relay::start(target, std::time::Duration::from_millis(10)).expect("start the relay");
    let direct = format!("redis://127.0.0.1:{port}");
    let relayed = format!("redis://{}", relay.addr);
    let at = |url: &str, queue: &str| BrokerAt::RedisQueue {
        url: url.to_string(),
        queue: queue.to_string(),
    };
    let w_rtt = Workers::start_with(|| at(&relayed, "rtt"), Some(RTT_PREFETCH));
    let w_lo = Workers::start_with(|| at(&direct, "loopback"), Some(RTT_PREFETCH));
    let executor = |queue: &str| {
        let broker = RedisBroker::connect(&redis.url(), queue).expect("connect to redis");
        ClusterExecutor::builder(Arc::new(broker))
            .max_workers(RTT_MAX_WORKERS)
            .map_window(RTT_MAP_WINDOW)
            .build()
    };
    let (ex_rtt, ex_lo) = (executor("rtt"), executor("loopback"));
    eprintln!(
        "bench cluster: throughput_2w_rtt20ms: 2 workers x 2 threads, prefetch {RTT_PREFETCH} \
         each (window {} entries of 64 tasks a worker), executor window {} entries",
        2 + RTT_PREFETCH,
        RTT_MAP_WINDOW
    );
    let impls = vec![
        imp("spindle", || throughput(&ex_rtt, n)),
        imp("loopback", || throughput(&ex_lo, n)),
    ];
    b.case("throughput_2w_rtt20ms", Unit::TasksPerSec, impls);
    ex_rtt.shutdown(true, false);
    ex_lo.shutdown(true, false);
    drop((w_rtt, w_lo));
}
