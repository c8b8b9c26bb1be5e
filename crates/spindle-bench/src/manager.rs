//! Suite `manager`: `spindle::manager` proxies over TCP loopback beside
//! Python's `multiprocessing.managers` (`bench/python/manager.py`, as is and
//! with `TCP_NODELAY` on every manager socket: `python_nodelay`) and
//! `tcp_floor`, a bare `std::net::TcpStream` request/reply of about the
//! same sizes (no framing, no encoding, no MAC, its server in a thread of
//! this process, one thread per connection).
//!
//! Every server binds `127.0.0.1:0` (a free port) with one 32-byte authkey
//! ([`KEY`]) and is stopped at the end of its case. Cases:
//!
//! - `queue_put_get`: one client, `put(i)` then `get()` on a registered
//!   queue; one op = the pair (two round trips).
//! - `queue_put_get_8c`: 8 client threads on one proxy of one queue, each
//!   doing the same pairs; ops of all threads per second.
//! - `connect_first_call`: connect + authenticate, the registered queue's
//!   proxy, its first `qsize()`; the median latency of many, in ms.
//! - `dict_ops`: one client, `d[k] = i` then `d[k]` on a manager dict; one op
//!   = the pair. `spindle_unix` / `python_unix`: the same on `Manager::start()`
//!   / `multiprocessing.Manager()`, whose private Unix socket is every
//!   Manager's default.
//! - `task_roundtrip`: a server of two registered queues (`get_task_queue`,
//!   `get_result_queue`); a worker in another process takes N ints, squares
//!   them, puts the results; the master puts N then gets N. Tasks/s.
//!   `spindle_batch`: the same program with `put_many` / `get_many` (the
//!   master puts N in one call; the worker takes up to [`BATCH`] a round
//!   trip and puts their squares in one call; the master takes what is
//!   there) — spindle's batch calls, which Python's proxies lack.
//! - `queue_put_get_nomac`: `queue_put_get` with `frame_mac(false)` on both
//!   ends (`spindle`), interleaved with the MAC on (`spindle_mac`) so the
//!   ratio is the MAC's cost measured in one run.
//!
//! Servers of the spindle contenders run in a child process
//! ([`ManagerBuilder::start`](spindle::manager::ManagerBuilder::start)), as
//! Python's `BaseManager.start()`; `connect_first_call`'s runs in a thread
//! of this process ([`ManagerBuilder::spawn`](spindle::manager::ManagerBuilder::spawn)),
//! whose counters tell when the previous client's connection is closed
//! (see [`wait_closed`]).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use spindle::ipc::Address;
use spindle::manager::{BaseManager, DictProxy, Manager, QueueProxy, Server, Typeid};
use spindle::process::Process;
use spindle::queue::BlockingQueue;

use super::{Bench, Impl, Unit, fallible, imp, per_sec};

/// The authkey of every server and client of this suite (32 bytes; Python's
/// is the same bytes).
const KEY: &[u8; 32] = b"spindle-bench-manager-authkey-32";

/// The registered queue of the queue and connect cases.
const QUEUE: &str = "q";
/// How many tasks the worker of `task_roundtrip`'s `spindle_batch` takes
/// in one round trip at most.
const BATCH: usize = 64;

/// The registered queues of `task_roundtrip` (the names of the classic
/// `BaseManager` server/worker program).
const TASKS: &str = "get_task_queue";
const RESULTS: &str = "get_result_queue";

/// Client threads of `queue_put_get_8c`.
const CLIENTS: usize = 8;

/// `tcp_floor`'s message sizes: about those of the manager's frames for a
/// small item (measured with `strace` on the stand-in transport, header
/// included: a `put`/`get` request of 68/58 bytes, its reply 28/33).
const REQ: usize = 64;
const REP: usize = 32;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A server in a child process (`BaseManager.start()`) serving [`QUEUE`],
/// [`TASKS`] and [`RESULTS`] on a free loopback port.
fn start_server(mac: bool) -> Manager {
    BaseManager::builder()
        .register(QUEUE, Typeid::queue())
        .register(TASKS, Typeid::queue())
        .register(RESULTS, Typeid::queue())
        .bind(loopback())
        .authkey(KEY)
        .frame_mac(mac)
        .start()
        .expect("start the manager server")
}

/// `n` ops of `put(i)` then `get()` on `q` (one client, so `get` returns `i`).
fn put_get(q: &QueueProxy<u64>, n: u64) {
    for i in 0..n {
        q.put(i).expect("put");
        assert_eq!(q.get().expect("get"), i);
    }
}

/// `queue_put_get` on a fresh server with or without the frame MAC.
fn spindle_put_get<'a>(name: &str, mac: bool, n: u64) -> Impl<'a> {
    let m = start_server(mac);
    let q: QueueProxy<u64> = m.get(QUEUE).expect("the registered queue");
    imp(name, move || {
        let _keep = &m;
        per_sec(n, |n| put_get(&q, n))
    })
}

/// `threads` threads, each doing `job(thread)` after meeting the others at
/// a barrier (their set-up, `prepare(thread)`, happens before it); ops of
/// all threads per second from the barrier until the last one ends.
fn crew<S>(
    threads: usize,
    n: u64,
    prepare: impl Fn(usize) -> S + Sync,
    job: impl Fn(S) + Sync,
) -> f64
where
    S: Send,
{
    let go = Barrier::new(threads + 1);
    thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (go, prepare, job) = (&go, &prepare, &job);
                s.spawn(move || {
                    let state = prepare(t);
                    go.wait();
                    job(state);
                })
            })
            .collect();
        go.wait();
        let t = Instant::now();
        for h in hs {
            h.join().expect("client thread");
        }
        (threads as u64 * n) as f64 / t.elapsed().as_secs_f64()
    })
}

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

// ----------------------------------------------------------------------
// tcp_floor: the least any request/reply over TCP loopback costs here.

/// A request/reply server: reads [`REQ`] bytes, answers [`REP`] bytes, one
/// thread per connection; dropping it stops the accept loop and joins
/// every connection thread (each ends when its client closes).
struct Floor {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Floor {
    fn start() -> Floor {
        let listener = TcpListener::bind(loopback()).expect("bind the floor server");
        let addr = listener.local_addr().expect("its address");
        let stop = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (stop2, conns2) = (stop.clone(), conns.clone());
        let accept = thread::spawn(move || {
            for s in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut s) = s else { continue };
                let _ = s.set_nodelay(true);
                let h = thread::spawn(move || {
                    let mut req = [0u8; REQ];
                    let rep = [1u8; REP];
                    while s.read_exact(&mut req).is_ok() {
                        if s.write_all(&rep).is_err() {
                            break;
                        }
                    }
                });
                conns2.lock().expect("floor threads").push(h);
            }
        });
        Floor {
            addr,
            stop,
            accept: Some(accept),
            conns,
        }
    }

    fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).expect("connect to the floor server");
        s.set_nodelay(true).expect("TCP_NODELAY");
        s
    }
}

/// One request/reply on `s`.
fn trip(s: &mut TcpStream) {
    let mut rep = [0u8; REP];
    s.write_all(&[0u8; REQ]).expect("floor request");
    s.read_exact(&mut rep).expect("floor reply");
}

/// `n` ops of two request/replies each (a put and a get, a set and a get).
fn floor_pairs(s: &mut TcpStream, n: u64) {
    for _ in 0..n {
        trip(s);
        trip(s);
    }
}

impl Drop for Floor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees `stop`.
        drop(TcpStream::connect(self.addr));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
        for h in self.conns.lock().expect("floor threads").drain(..) {
            let _ = h.join();
        }
    }
}

// ----------------------------------------------------------------------
// connect_first_call.

/// Waits until `server` has no connection open: the previous client is
/// gone, so the next [`Manager::connect`] opens a new connection (it
/// joins a connection of this process to the same address while one is
/// open) — polled, at most 5 s.
fn wait_closed(server: &Server) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    while server.stats().connections != 0 {
        if Instant::now() > deadline {
            return Err("a client connection stayed open for 5 s".into());
        }
        thread::yield_now();
    }
    Ok(())
}

/// The median, in ms, of `k` connect + first call latencies.
fn spindle_connect(server: &Server, k: usize) -> Result<f64, String> {
    let addr = server.address().clone();
    let mut ms = Vec::with_capacity(k);
    for _ in 0..k {
        wait_closed(server)?;
        let t = Instant::now();
        let m = Manager::connect(addr.clone(), KEY).map_err(|e| e.to_string())?;
        let q: QueueProxy<u64> = m.get(QUEUE).map_err(|e| e.to_string())?;
        let size = q.qsize();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if size != 1 {
            return Err(format!("qsize() = {size}, expected the 1 item put"));
        }
    }
    Ok(median(ms))
}

fn floor_connect(floor: &Floor, k: usize) -> f64 {
    let ms = (0..k)
        .map(|_| {
            let t = Instant::now();
            let mut s = floor.connect();
            trip(&mut s);
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(ms)
}

// ----------------------------------------------------------------------
// task_roundtrip.

/// The worker of `task_roundtrip`: connects to the server at `address`,
/// says it is ready (puts `u64::MAX` as a result), then takes `n` tasks
/// and puts each one's square.
#[spindle::task]
fn manager_worker(address: String, n: u64) {
    let address: Address = address.parse().expect("the server's address");
    let m = Manager::connect(address, KEY).expect("connect to the manager");
    let tasks: QueueProxy<u64> = m.get(TASKS).expect("task queue");
    let results: QueueProxy<u64> = m.get(RESULTS).expect("result queue");
    results.put(u64::MAX).expect("ready");
    for _ in 0..n {
        let t = tasks.get().expect("task");
        results.put(t * t).expect("result");
    }
}

/// The worker of `task_roundtrip`'s `spindle_batch`: the same program with
/// `get_many` and `put_many`, up to `batch` tasks a round trip.
#[spindle::task]
fn manager_batch_worker(address: String, n: u64, batch: usize) {
    let address: Address = address.parse().expect("the server's address");
    let m = Manager::connect(address, KEY).expect("connect to the manager");
    let tasks: QueueProxy<u64> = m.get(TASKS).expect("task queue");
    let results: QueueProxy<u64> = m.get(RESULTS).expect("result queue");
    results.put(u64::MAX).expect("ready");
    let mut done = 0;
    while done < n {
        let got = tasks.get_many(batch).expect("tasks");
        done += got.len() as u64;
        results
            .put_many(got.into_iter().map(|t| t * t))
            .expect("results");
    }
}

/// One `task_roundtrip` sample of `spindle_batch`: the master puts the
/// tasks with one `put_many` and takes the results with `get_many`.
fn task_roundtrip_batch(m: &Manager, n: u64, batch: usize) -> f64 {
    let tasks: QueueProxy<u64> = m.get(TASKS).expect("task queue");
    let results: QueueProxy<u64> = m.get(RESULTS).expect("result queue");
    let call = manager_batch_worker::call(m.address().to_string(), n, batch);
    let mut worker = Process::new(call);
    worker.start().expect("start the worker");
    assert_eq!(results.get().expect("worker ready"), u64::MAX);
    let mut sum = 0u64;
    let rate = per_sec(n, |n| {
        tasks.put_many(0..n).expect("put tasks");
        let mut got = 0;
        while got < n {
            let r = results.get_many(n as usize).expect("results");
            got += r.len() as u64;
            sum += r.iter().sum::<u64>();
        }
    });
    worker.join().expect("worker");
    assert_eq!(sum, (0..n).map(|i| i * i).sum::<u64>(), "lost results");
    rate
}

/// One `task_roundtrip` sample on `m`'s server: tasks per second from the
/// first task put until the last result is taken, the worker started and
/// connected before.
fn task_roundtrip(m: &Manager, n: u64) -> f64 {
    let tasks: QueueProxy<u64> = m.get(TASKS).expect("task queue");
    let results: QueueProxy<u64> = m.get(RESULTS).expect("result queue");
    let mut worker = Process::new(manager_worker::call(m.address().to_string(), n));
    worker.start().expect("start the worker");
    assert_eq!(results.get().expect("worker ready"), u64::MAX);
    let mut sum = 0u64;
    let rate = per_sec(n, |n| {
        for i in 0..n {
            tasks.put(i).expect("put task");
        }
        for _ in 0..n {
            sum += results.get().expect("result");
        }
    });
    worker.join().expect("worker");
    assert_eq!(sum, (0..n).map(|i| i * i).sum::<u64>(), "lost results");
    rate
}

// ----------------------------------------------------------------------

pub(crate) fn run(b: &mut Bench) {
    let quick = b.quick();
    let py = |b: &Bench, case: &str| -> [Impl<'static>; 2] {
        [
            b.python("manager.py", case),
            b.python("manager.py", &format!("{case}_nodelay"))
                .named("python_nodelay"),
        ]
    };
    let floor = Floor::start();

    let n: u64 = if quick { 5_000 } else { 20_000 };
    if b.wants("queue_put_get") {
        let mut impls = vec![spindle_put_get("spindle", true, n)];
        impls.extend(py(b, "queue_put_get"));
        impls.push(imp("tcp_floor", || {
            let mut s = floor.connect();
            per_sec(n, |n| floor_pairs(&mut s, n))
        }));
        b.case("queue_put_get", Unit::OpsPerSec, impls);
    }

    let per_thread: u64 = if quick { 1_000 } else { 4_000 };
    if b.wants("queue_put_get_8c") {
        let m = start_server(true);
        let q: QueueProxy<u64> = m.get(QUEUE).expect("the registered queue");
        let mut impls = vec![imp("spindle", || {
            crew(
                CLIENTS,
                per_thread,
                |_| {
                    // As Python's threads: one call before the clock starts.
                    assert_eq!(q.qsize(), 0);
                },
                |()| {
                    for i in 0..per_thread {
                        q.put(i).expect("put");
                        q.get().expect("get");
                    }
                },
            )
        })];
        impls.extend(py(b, "queue_put_get_8c"));
        impls.push(imp("tcp_floor", || {
            crew(
                CLIENTS,
                per_thread,
                |_| floor.connect(),
                |mut s| floor_pairs(&mut s, per_thread),
            )
        }));
        b.case("queue_put_get_8c", Unit::OpsPerSec, impls);
        drop(m);
    }

    let k: usize = if quick { 50 } else { 200 };
    if b.wants("connect_first_call") {
        let server = BaseManager::builder()
            .register(QUEUE, Typeid::queue())
            .bind(loopback())
            .authkey(KEY)
            .spawn()
            .expect("spawn the manager server");
        {
            // One item, so that the first call's answer (qsize 1) shows it
            // reached the registered queue.
            let m = server.connect().expect("connect");
            let q: QueueProxy<u64> = m.get(QUEUE).expect("the registered queue");
            q.put(7).expect("put");
        }
        let mut impls = vec![fallible("spindle", true, true, || {
            spindle_connect(&server, k)
        })];
        impls.extend(py(b, "connect_first_call"));
        impls.push(imp("tcp_floor", || floor_connect(&floor, k)));
        b.case("connect_first_call", Unit::Millis, impls);
        server.stop().expect("stop the manager server");
    }

    if b.wants("dict_ops") {
        let tcp = Manager::builder()
            .bind(loopback())
            .authkey(KEY)
            .start()
            .expect("start the manager server");
        let unix = Manager::start().expect("start the Unix-socket manager");
        let dict = |m: &Manager| -> DictProxy<u64, u64> { m.dict().expect("dict") };
        let (d_tcp, d_unix) = (dict(&tcp), dict(&unix));
        let ops = |d: &DictProxy<u64, u64>, n: u64| {
            for i in 0..n {
                d.set(&(i % 128), &i).expect("set");
                assert_eq!(d.get(&(i % 128)).expect("get"), Some(i));
            }
        };
        let mut impls = vec![imp("spindle", || per_sec(n, |n| ops(&d_tcp, n)))];
        impls.extend(py(b, "dict_ops"));
        impls.push(imp("tcp_floor", || {
            let mut s = floor.connect();
            per_sec(n, |n| floor_pairs(&mut s, n))
        }));
        impls.push(imp("spindle_unix", || per_sec(n, |n| ops(&d_unix, n))));
        impls.push(b.python("manager.py", "dict_ops_unix").named("python_unix"));
        b.case("dict_ops", Unit::OpsPerSec, impls);
        drop((d_tcp, d_unix));
        drop((tcp, unix));
    }

    let tasks: u64 = if quick { 2_000 } else { 10_000 };
    if b.wants("task_roundtrip") {
        let m = start_server(true);
        let mut impls = vec![imp("spindle", || task_roundtrip(&m, tasks))];
        impls.extend(py(b, "task_roundtrip"));
        impls.push(imp("spindle_batch", || {
            task_roundtrip_batch(&m, tasks, BATCH)
        }));
        b.case("task_roundtrip", Unit::TasksPerSec, impls);
        drop(m);
    }

    if b.wants("queue_put_get_nomac") {
        let impls = vec![
            spindle_put_get("spindle", false, n),
            spindle_put_get("spindle_mac", true, n),
            imp("tcp_floor", || {
                let mut s = floor.connect();
                per_sec(n, |n| floor_pairs(&mut s, n))
            }),
        ];
        b.case("queue_put_get_nomac", Unit::OpsPerSec, impls);
    }
    drop(floor);
}
