//! Suite `aio`: spindle-aio beside plain tokio (and flume), and Python's
//! asyncio (`bench/python/aio.py`, `bench/python/echo.py`).
//!
//! Cases:
//! - `spawn_gather_100k`: spawn 100,000 trivial tasks, then `gather` them
//!   (tokio: a `JoinSet`), on a multi-thread runtime built once per
//!   contender; tasks/s.
//! - `async_queue_spsc`: one producer task puts N ints into a bounded
//!   (1024) queue, one consumer gets them: spindle's `Queue` through
//!   `put_async` / `get_async`, tokio's `mpsc`, flume's
//!   `send_async`/`recv_async`; all on a `current_thread` runtime (one
//!   thread, as asyncio); items/s.
//! - `scheduler_switches`: 100 tasks yielding S times each, round-robin:
//!   `TaskScheduler` with `yield_now`, tokio `current_thread` with
//!   `tokio::task::yield_now`, Python's generator scheduler; switches/s.
//! - `actor_ping`: request/reply round trips to one actor, each awaited
//!   before the next is sent, from a `block_on` on the main thread, the
//!   actor on the runtime's workers: spindle's `ActorRef::ask_async`,
//!   ractor's `call!` (its RPC), kameo's `ask`, and plain tokio (a task
//!   answering an mpsc of requests through oneshots); round trips/s.
//! - `actor_ping_task`: the same asks from a task spawned on the actor's
//!   runtime (an actor asking an actor): no thread has to be woken, so
//!   this is each library's own cost per request and reply.
//! - `echo_50conns` and `echo_50conns_p99`: `spindle_aio::echo::load` (the
//!   client of `spindle echo load`) with 50 connections against each server:
//!   spindle's `EchoServer::bind_aio` (what `spindle echo serve --aio` runs),
//!   a plain tokio echo server, Python's asyncio server and its
//!   `ThreadingTCPServer` (`python-threading`). The Rust servers run in this
//!   process on runtimes of their own; the Python ones are processes started
//!   once per case. Each run's round trips/s go to the first case, its p99
//!   latency (µs) to the second: the two figures come from the same runs.
//! - `echo_50conns_server_cpu`: from the same runs again, the CPU time
//!   (user + system, from /proc) the server spent per round trip, in µs:
//!   the server's own cost, whatever share of the 2 cores the client and
//!   other programs left it (the throughput depends on that share).
//! - `echo_50conns_client_cpu`: the same for the load client (this
//!   process's CPU time less the in-process server's threads): with the
//!   server's figure, what bounds the throughput on a small host.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::rc::Rc;

use spindle::queue::Queue;
use spindle_aio::actor::{self, Actor, Reply};
use spindle_aio::echo::{EchoServer, load};
use spindle_aio::sched::{TaskScheduler, yield_now};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::runtime::Runtime;

use super::{Bench, Impl, Unit, fallible, imp, per_sec, python_dir};

fn multi() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn single() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub(crate) fn run(b: &mut Bench) {
    spawn_gather(b);
    queue_spsc(b);
    switches(b);
    actor_ping(b);
    echo(b);
}

fn spawn_gather(b: &mut Bench) {
    let n: u64 = 100_000;
    let (rt1, rt2) = (multi(), multi());
    b.case(
        "spawn_gather_100k",
        Unit::TasksPerSec,
        vec![
            imp("spindle", || {
                per_sec(n, |n| {
                    rt1.block_on(async {
                        let tasks: Vec<_> = (0..n)
                            .map(|i| spindle_aio::spawn(async move { i }))
                            .collect();
                        let out = spindle_aio::gather(tasks).await;
                        assert_eq!(*out.last().unwrap().as_ref().unwrap(), n - 1);
                    });
                })
            }),
            imp("tokio", || {
                per_sec(n, |n| {
                    rt2.block_on(async {
                        let mut set = tokio::task::JoinSet::new();
                        for i in 0..n {
                            set.spawn(async move { i });
                        }
                        let mut sum = 0;
                        while let Some(r) = set.join_next().await {
                            sum += r.unwrap();
                        }
                        assert_eq!(sum, n * (n - 1) / 2);
                    });
                })
            }),
            b.python("aio.py", "spawn_gather_100k"),
        ],
    );
}

fn queue_spsc(b: &mut Bench) {
    let n: u64 = if b.quick() { 100_000 } else { 500_000 };
    let (rt1, rt2, rt3) = (single(), single(), single());
    b.case(
        "async_queue_spsc",
        Unit::ItemsPerSec,
        vec![
            imp("spindle", || {
                per_sec(n, |n| {
                    rt1.block_on(async {
                        let q = Queue::with_maxsize(1024);
                        let tx = q.clone();
                        let p = tokio::spawn(async move {
                            for i in 0..n {
                                tx.put_async(i).await.unwrap();
                            }
                        });
                        let mut sum = 0;
                        for _ in 0..n {
                            sum += q.get_async().await.unwrap();
                        }
                        p.await.unwrap();
                        assert_eq!(sum, n * (n - 1) / 2);
                    });
                })
            }),
            imp("tokio", || {
                per_sec(n, |n| {
                    rt2.block_on(async {
                        let (tx, mut rx) = tokio::sync::mpsc::channel(1024);
                        let p = tokio::spawn(async move {
                            for i in 0..n {
                                tx.send(i).await.unwrap();
                            }
                        });
                        let mut sum = 0;
                        for _ in 0..n {
                            sum += rx.recv().await.unwrap();
                        }
                        p.await.unwrap();
                        assert_eq!(sum, n * (n - 1) / 2);
                    });
                })
            }),
            imp("flume", || {
                per_sec(n, |n| {
                    rt3.block_on(async {
                        let (tx, rx) = flume::bounded(1024);
                        let p = tokio::spawn(async move {
                            for i in 0..n {
                                tx.send_async(i).await.unwrap();
                            }
                        });
                        let mut sum = 0;
                        for _ in 0..n {
                            sum += rx.recv_async().await.unwrap();
                        }
                        p.await.unwrap();
                        assert_eq!(sum, n * (n - 1) / 2);
                    });
                })
            }),
            b.python("aio.py", "async_queue_spsc"),
        ],
    );
}

const TASKS: u64 = 100;

fn switches(b: &mut Bench) {
    let steps: u64 = if b.quick() { 2_000 } else { 10_000 };
    let rt = single();
    b.case(
        "scheduler_switches",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || {
                per_sec(TASKS * steps, |_| {
                    let mut s = TaskScheduler::new();
                    for _ in 0..TASKS {
                        s.new_task(async move {
                            for _ in 0..steps {
                                yield_now().await;
                            }
                        });
                    }
                    s.run().unwrap();
                })
            }),
            imp("tokio", || {
                per_sec(TASKS * steps, |_| {
                    rt.block_on(async {
                        let mut set = tokio::task::JoinSet::new();
                        for _ in 0..TASKS {
                            set.spawn(async move {
                                for _ in 0..steps {
                                    tokio::task::yield_now().await;
                                }
                            });
                        }
                        while let Some(r) = set.join_next().await {
                            r.unwrap();
                        }
                    });
                })
            }),
            b.python("aio.py", "scheduler_switches"),
        ],
    );
}

/// The `actor_ping` actor: answers `Ping(x)` with `x + 1`.
struct Pong;

enum Ping {
    Ping(u64, Reply<u64>),
}

impl Actor for Pong {
    type Msg = Ping;
    async fn handle(&mut self, msg: Ping) {
        let Ping::Ping(x, reply) = msg;
        reply.send(x + 1);
    }
}

/// The same actor in ractor: the request carries an `RpcReplyPort`, the
/// shape its `call!` macro builds.
struct RactorPong;

enum RactorPing {
    Ping(u64, ractor::RpcReplyPort<u64>),
}

impl ractor::Actor for RactorPong {
    type Msg = RactorPing;
    type State = ();
    type Arguments = ();

    async fn pre_start(
        &self,
        _myself: ractor::ActorRef<RactorPing>,
        _args: (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ractor::ActorRef<RactorPing>,
        msg: RactorPing,
        _state: &mut (),
    ) -> Result<(), ractor::ActorProcessingErr> {
        let RactorPing::Ping(x, reply) = msg;
        reply.send(x + 1).ok();
        Ok(())
    }
}

/// The same actor in kameo: a `Message` impl whose reply is the answer
/// (what `#[derive(Actor)]` would write for the `Actor` impl; the crate's
/// `macros` feature is left off).
struct KameoPong;

impl kameo::Actor for KameoPong {
    type Args = Self;
    type Error = std::convert::Infallible;

    async fn on_start(
        args: Self,
        _actor_ref: kameo::actor::ActorRef<Self>,
    ) -> Result<Self, Self::Error> {
        Ok(args)
    }
}

struct KameoPing(u64);

impl kameo::message::Message<KameoPing> for KameoPong {
    type Reply = u64;

    async fn handle(
        &mut self,
        msg: KameoPing,
        _ctx: &mut kameo::message::Context<Self, u64>,
    ) -> u64 {
        msg.0 + 1
    }
}

fn actor_ping(b: &mut Bench) {
    let n: u64 = if b.quick() { 20_000 } else { 100_000 };
    let (rt1, rt2, rt3, rt4) = (multi(), multi(), multi(), multi());
    let pong = {
        let _enter = rt1.enter();
        actor::spawn(|| Pong, 64)
    };
    type Req = (u64, tokio::sync::oneshot::Sender<u64>);
    let (req_tx, mut req_rx) = tokio::sync::mpsc::channel::<Req>(64);
    rt2.spawn(async move {
        while let Some((x, reply)) = req_rx.recv().await {
            reply.send(x + 1).ok();
        }
    });
    let (ractor_pong, ractor_join) = rt3
        .block_on(ractor::Actor::spawn(None, RactorPong, ()))
        .expect("spawn the ractor actor");
    let kameo_pong = {
        use kameo::actor::Spawn;
        let _enter = rt4.enter();
        KameoPong::spawn(KameoPong)
    };
    b.case(
        "actor_ping",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || {
                per_sec(n, |n| {
                    rt1.block_on(async {
                        for i in 0..n {
                            let got = pong.ask_async(|r| Ping::Ping(i, r)).await.unwrap();
                            assert_eq!(got, i + 1);
                        }
                    });
                })
            }),
            imp("tokio", || {
                per_sec(n, |n| {
                    rt2.block_on(async {
                        for i in 0..n {
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            req_tx.send((i, tx)).await.unwrap();
                            assert_eq!(rx.await.unwrap(), i + 1);
                        }
                    });
                })
            }),
            imp("ractor", || {
                per_sec(n, |n| {
                    rt3.block_on(async {
                        for i in 0..n {
                            let got = ractor::call!(ractor_pong, RactorPing::Ping, i).unwrap();
                            assert_eq!(got, i + 1);
                        }
                    });
                })
            }),
            imp("kameo", || {
                per_sec(n, |n| {
                    rt4.block_on(async {
                        for i in 0..n {
                            let got = kameo_pong.ask(KameoPing(i)).await.unwrap();
                            assert_eq!(got, i + 1);
                        }
                    });
                })
            }),
        ],
    );
    // The asking loop as a task on the actor's runtime.
    fn in_task<F>(rt: &Runtime, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        rt.block_on(rt.spawn(fut))
            .expect("the asking task panicked");
    }
    b.case(
        "actor_ping_task",
        Unit::OpsPerSec,
        vec![
            imp("spindle", || {
                per_sec(n, |n| {
                    let pong = pong.clone();
                    in_task(&rt1, async move {
                        for i in 0..n {
                            let got = pong.ask_async(|r| Ping::Ping(i, r)).await.unwrap();
                            assert_eq!(got, i + 1);
                        }
                    });
                })
            }),
            imp("tokio", || {
                per_sec(n, |n| {
                    let req_tx = req_tx.clone();
                    in_task(&rt2, async move {
                        for i in 0..n {
                            let (tx, rx) = tokio::sync::oneshot::channel();
                            req_tx.send((i, tx)).await.unwrap();
                            assert_eq!(rx.await.unwrap(), i + 1);
                        }
                    });
                })
            }),
            imp("ractor", || {
                per_sec(n, |n| {
                    let ractor_pong = ractor_pong.clone();
                    in_task(&rt3, async move {
                        for i in 0..n {
                            let got = ractor::call!(ractor_pong, RactorPing::Ping, i).unwrap();
                            assert_eq!(got, i + 1);
                        }
                    });
                })
            }),
            imp("kameo", || {
                per_sec(n, |n| {
                    let kameo_pong = kameo_pong.clone();
                    in_task(&rt4, async move {
                        for i in 0..n {
                            let got = kameo_pong.ask(KameoPing(i)).await.unwrap();
                            assert_eq!(got, i + 1);
                        }
                    });
                })
            }),
        ],
    );
    pong.shutdown(true);
    ractor_pong.stop(None);
    rt3.block_on(ractor_join).ok();
    rt4.block_on(async {
        kameo_pong.stop_gracefully().await.ok();
        kameo_pong.wait_for_shutdown().await;
    });
}

/// A plain tokio echo server (no line limit): the `tokio` contender of
/// `echo_50conns`.
fn tokio_echo() -> (Runtime, SocketAddr) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .thread_name(TOKIO_ECHO_THREADS)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                sock.set_nodelay(true).ok();
                let (rd, mut wr) = sock.into_split();
                let mut rd = tokio::io::BufReader::new(rd);
                let mut line = Vec::new();
                loop {
                    line.clear();
                    match rd.read_until(b'\n', &mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if wr.write_all(&line).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (rt, addr)
}

/// The thread name of the plain tokio echo server's runtime (for its CPU
/// time); [`EchoServer::bind_aio`] names its threads
/// [`SPINDLE_ECHO_THREADS`].
const TOKIO_ECHO_THREADS: &str = "tokio-echo";
const SPINDLE_ECHO_THREADS: &str = "spindle-echo";

/// CPU time (user + system) used so far by the threads of this process
/// whose name starts with a prefix, or by a process: from /proc, in
/// seconds (10 ms resolution: a case's runs last seconds).
fn cpu_seconds(who: Cpu) -> Result<f64, String> {
    // Fields after the `(comm)` field of /proc/.../stat: utime is the
    // 12th, stime the 13th (man 5 proc, fields 14 and 15).
    fn ticks(stat: &str) -> Option<(String, u64)> {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat[open + 1..close].to_owned();
        let mut rest = stat[close + 1..].split_whitespace().skip(11);
        let utime: u64 = rest.next()?.parse().ok()?;
        let stime: u64 = rest.next()?.parse().ok()?;
        Some((comm, utime + stime))
    }
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))
    };
    let total: u64 = match who {
        Cpu::Threads(name) => {
            let mut sum = 0;
            let dir = std::fs::read_dir("/proc/self/task").map_err(|e| e.to_string())?;
            for task in dir.flatten() {
                // A thread may end between the listing and the read.
                if let Ok(stat) = read(task.path().join("stat"))
                    && let Some((comm, t)) = ticks(&stat)
                    && comm.starts_with(name)
                {
                    sum += t;
                }
            }
            sum
        }
        Cpu::Process(pid) => {
            let stat = read(format!("/proc/{pid}/stat").into())?;
            ticks(&stat).ok_or("unreadable /proc stat")?.1
        }
    };
    // Clock ticks: USER_HZ, which Linux fixes at 100 for user space on
    // every architecture spindle builds on.
    Ok(total as f64 / 100.0)
}

/// An echo contender: name, warmed up, available, address, whose CPU time.
type Contender = (
    &'static str,
    bool,
    bool,
    Result<SocketAddr, String>,
    Option<Cpu>,
);

/// Whose CPU time [`cpu_seconds`] reads.
#[derive(Clone, Copy)]
enum Cpu {
    Threads(&'static str),
    Process(u32),
}

/// A Python echo server process (`echo.py --serve KIND --port 0`), killed
/// on drop.
struct PyServer(Child, SocketAddr);

impl PyServer {
    fn start(python: &std::path::Path, kind: &str) -> Result<PyServer, String> {
        let script = python_dir().join("echo.py");
        let mut child = Command::new(python)
            .env("PYTHONSAFEPATH", "1")
            .arg(&script)
            .args(["--serve", kind, "--port", "0"])
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let addr = line
            .trim_end()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok());
        match addr {
            Some(a) => Ok(PyServer(child, a)),
            None => {
                child.kill().ok();
                child.wait().ok();
                Err(format!(
                    "{} --serve {kind} printed {line:?}",
                    script.display()
                ))
            }
        }
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn echo(b: &mut Bench) {
    const CONNS: usize = 50;
    let rounds: u64 = if b.quick() { 200 } else { 1_000 };
    if ![
        "echo_50conns",
        "echo_50conns_p99",
        "echo_50conns_server_cpu",
        "echo_50conns_client_cpu",
    ]
    .iter()
    .any(|c| b.wants(c))
    {
        return;
    }
    let spindle = EchoServer::bind_aio("127.0.0.1:0", b"", 0).expect("bind the spindle server");
    let (_tokio_rt, tokio_addr) = tokio_echo();
    let py = b.python_exe();
    let start_py = |kind: &str| -> Result<PyServer, String> {
        PyServer::start(py.as_deref().expect("checked available"), kind)
    };
    let (asyncio, threading) = if py.is_some() {
        (start_py("asyncio"), start_py("threading"))
    } else {
        (Err("no python3".into()), Err("no python3".into()))
    };
    // Each run's p99 and the server's CPU time per round trip, per
    // contender, for the second and third cases.
    type Runs = Rc<RefCell<HashMap<&'static str, Vec<f64>>>>;
    let (p99s, cpus, client_cpus): (Runs, Runs, Runs) =
        (Rc::default(), Rc::default(), Rc::default());
    let runner = |name: &'static str, addr: Result<SocketAddr, String>, cpu: Option<Cpu>| {
        let (p99s, cpus, client_cpus) = (p99s.clone(), cpus.clone(), client_cpus.clone());
        move || -> Result<f64, String> {
            let addr = addr.clone()?;
            let before = cpu.map(cpu_seconds).transpose()?;
            let me_before = cpu_seconds(Cpu::Process(std::process::id()))?;
            let r = load(addr, CONNS, rounds).map_err(|e| e.to_string())?;
            // The client runs on this thread: the process's CPU time less
            // the in-process server's (Python's servers are processes).
            let mut client = cpu_seconds(Cpu::Process(std::process::id()))? - me_before;
            if let (Some(cpu), Some(before)) = (cpu, before) {
                let used = cpu_seconds(cpu)? - before;
                if matches!(cpu, Cpu::Threads(_)) {
                    client -= used;
                }
                let per_rt = used * 1e6 / r.round_trips as f64;
                cpus.borrow_mut().entry(name).or_default().push(per_rt);
            }
            client_cpus
                .borrow_mut()
                .entry(name)
                .or_default()
                .push(client * 1e6 / r.round_trips as f64);
            p99s.borrow_mut().entry(name).or_default().push(r.p99_us);
            Ok(r.throughput())
        }
    };
    let py_addr = |s: &Result<PyServer, String>| s.as_ref().map(|s| s.1).map_err(Clone::clone);
    let py_cpu = |s: &Result<PyServer, String>| s.as_ref().ok().map(|s| Cpu::Process(s.0.id()));
    let has_py = py.is_some();
    let contenders: [Contender; 4] = [
        (
            "spindle",
            true,
            true,
            Ok(spindle.local_addr()),
            Some(Cpu::Threads(SPINDLE_ECHO_THREADS)),
        ),
        (
            "tokio",
            true,
            true,
            Ok(tokio_addr),
            Some(Cpu::Threads(TOKIO_ECHO_THREADS)),
        ),
        ("python", false, has_py, py_addr(&asyncio), py_cpu(&asyncio)),
        (
            "python-threading",
            false,
            has_py,
            py_addr(&threading),
            py_cpu(&threading),
        ),
    ];
    let impls: Vec<Impl<'_>> = contenders
        .iter()
        .map(|(name, warm, avail, addr, cpu)| {
            fallible(name, *warm, *avail, runner(name, addr.clone(), *cpu))
        })
        .collect();
    b.case("echo_50conns", Unit::OpsPerSec, impls);
    // The other two cases replay the figures of those runs, in order.
    let replay = |runs: &Runs, case: &'static str| -> Vec<Impl<'_>> {
        contenders
            .iter()
            .map(|(name, warm, avail, _, _)| {
                let runs = runs.clone();
                let name: &'static str = name;
                let mut next = 0;
                fallible(name, *warm, *avail, move || {
                    let v = runs.borrow().get(name).and_then(|v| v.get(next).copied());
                    next += 1;
                    v.ok_or_else(|| format!("no run of echo_50conns to take its {case} from"))
                })
            })
            .collect()
    };
    b.case("echo_50conns_p99", Unit::Micros, replay(&p99s, "p99"));
    b.case(
        "echo_50conns_server_cpu",
        Unit::Micros,
        replay(&cpus, "server CPU time"),
    );
    b.case(
        "echo_50conns_client_cpu",
        Unit::Micros,
        replay(&client_cpus, "client CPU time"),
    );
    drop((asyncio, threading));
    spindle.shutdown();
}
