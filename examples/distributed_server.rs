//! Python's distributed processes with `multiprocessing.managers.BaseManager`:
//! a master serves a task queue and a result queue on the network, puts
//! random numbers in the one and reads the squares from the other; workers
//! on any host connect with the shared key and do the work
//! (`distributed_worker.rs`).
//!
//! The Python master:
//!
//! ```python
//! class QueueManager(BaseManager): pass
//! QueueManager.register('get_task_queue', callable=lambda: task_queue)
//! QueueManager.register('get_result_queue', callable=lambda: result_queue)
//! manager = QueueManager(address=('', 5000), authkey=b'abc')
//! manager.start()
//! task = manager.get_task_queue()
//! result = manager.get_result_queue()
//! for i in range(10):
//!     n = random.randint(0, 10000)
//!     print('Put task %d...' % n)
//!     task.put(n)
//! print('Try get results...')
//! for i in range(10):
//!     r = result.get(timeout=10)
//!     print('Result: %s' % r)
//! manager.shutdown()
//! ```
//!
//! Run the pair by hand, in two terminals:
//!
//! ```sh
//! cargo run --release --example distributed_server -- --bind 127.0.0.1:5000
//! cargo run --release --example distributed_worker -- --connect 127.0.0.1:5000
//! ```
//!
//! (`--bind 0.0.0.0:5000` serves other hosts; start as many workers as you
//! like.) With no `--bind` it runs the pair in one command: it serves on a
//! free port of 127.0.0.1 and starts the `distributed_worker` program built
//! beside it as a child process (`cargo build --release --examples` builds
//! both).
//!
//! Options: `--bind ADDR` (IP:PORT, or a Unix socket path), `--authkey KEY`
//! (default `spindle-example-key`; spindle's keys have at least 16 bytes,
//! where the Python program used `b'abc'`), `--tasks N` (default 10, at most
//! 10000), `--timeout SECS` (how long to wait for all results, default 30),
//! `--spawn-worker` (with `--bind`: start one worker anyway).
//!
//! What changed: the worker puts `(n, n * n)`, so the master checks every
//! answer; when all results are in, the master shuts the task queue down
//! (Python 3.13's `Queue.shutdown`), which tells every worker there is no
//! more work.

use std::error::Error;
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use spindle::ipc::Address;
use spindle::manager::{BaseManager, QueueProxy, Typeid};
use spindle::queue::BlockingQueue;

const DEFAULT_KEY: &str = "spindle-example-key";
const MAX_TASKS: usize = 10_000;

#[derive(Debug)]
struct Args {
    bind: Option<Address>,
    authkey: String,
    tasks: usize,
    timeout: Duration,
    spawn_worker: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        bind: None,
        authkey: DEFAULT_KEY.into(),
        tasks: 10,
        timeout: Duration::from_secs(30),
        spawn_worker: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--bind" => {
                let v = value()?;
                args.bind = Some(v.parse().map_err(|e| format!("--bind {v}: {e}"))?);
            }
            "--authkey" => args.authkey = value()?,
            "--tasks" => {
                let v = value()?;
                args.tasks = v
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_TASKS).contains(n))
                    .ok_or(format!("--tasks {v}: not a number from 1 to {MAX_TASKS}"))?;
            }
            "--timeout" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                    .ok_or(format!(
                        "--timeout {v}: not a number of seconds up to 86400"
                    ))?;
                args.timeout = Duration::from_secs_f64(secs);
            }
            "--spawn-worker" => args.spawn_worker = true,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// A random number from 0 to 10000 (std's hasher keys are random).
fn randint() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0);
    h.finish() % 10_001
}

/// Starts the worker program built beside this one.
fn start_worker(address: &Address, authkey: &str) -> Result<Child, Box<dyn Error>> {
    let exe: PathBuf = std::env::current_exe()?.with_file_name("distributed_worker");
    if !exe.is_file() {
        return Err(format!(
            "{} is not built: run `cargo build --release --examples` first \
             (`cargo run --example` builds only the example it runs), \
             or pass --bind ADDR and start a worker by hand",
            exe.display()
        )
        .into());
    }
    let child = Command::new(&exe)
        .args(["--connect", &address.to_string(), "--authkey", authkey])
        .spawn()?;
    println!("started worker process {}", child.id());
    Ok(child)
}

/// Waits up to `timeout` for `child` to exit; kills it past that.
fn wait_child(child: &mut Child, timeout: Duration) -> Result<(), Box<dyn Error>> {
    let end = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return if status.success() {
                Ok(())
            } else {
                Err(format!("the worker failed: {status}").into())
            };
        }
        if Instant::now() >= end {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("the worker did not exit within {timeout:?}").into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args().inspect_err(|e| {
        eprintln!(
            "distributed_server: {e}\nusage: distributed_server [--bind ADDR] [--authkey KEY] \
             [--tasks N] [--timeout SECS] [--spawn-worker]"
        );
    })?;
    // No --bind: the one-command run (a free port, our own worker).
    let (bind, spawn_worker) = match &args.bind {
        Some(a) => (a.clone(), args.spawn_worker),
        None => ("127.0.0.1:0".parse()?, true),
    };

    // `QueueManager.register(...)`, `QueueManager(address, authkey)`,
    // `manager.start()`: the server runs in a child process.
    let manager = BaseManager::builder()
        .register("get_task_queue", Typeid::queue())
        .register("get_result_queue", Typeid::queue())
        .bind(bind)
        .authkey(args.authkey.as_bytes())
        .start()?;
    println!("listening on {}", manager.address());
    std::io::stdout().flush()?;

    let task: QueueProxy<u64> = manager.get("get_task_queue")?;
    let result: QueueProxy<(u64, u64)> = manager.get("get_result_queue")?;

    let mut worker = if spawn_worker {
        Some(start_worker(manager.address(), &args.authkey)?)
    } else {
        println!(
            "waiting for workers: cargo run --release --example distributed_worker -- \
             --connect {} --authkey {}",
            manager.address(),
            args.authkey
        );
        None
    };

    let mut sent = Vec::with_capacity(args.tasks);
    for _ in 0..args.tasks {
        let n = randint();
        println!("Put task {n}...");
        task.put(n).map_err(|_| "the task queue is shut down")?;
        sent.push(n);
    }

    println!("Try get results...");
    let deadline = Instant::now() + args.timeout;
    let mut got = Vec::with_capacity(args.tasks);
    while got.len() < args.tasks {
        match result.get_deadline(deadline) {
            Ok((n, r)) => {
                println!("Result: {n} * {n} = {r}");
                got.push((n, r));
            }
            Err(e) => {
                if let Some(w) = &mut worker {
                    let _ = w.kill();
                    let _ = w.wait();
                }
                return Err(format!(
                    "{} of {} results after {:?} ({e}): is a worker running?",
                    got.len(),
                    args.tasks,
                    args.timeout
                )
                .into());
            }
        }
    }

    // Every task answered once, and right.
    for (n, r) in &got {
        assert_eq!(*r, n * n, "a wrong square for {n}");
    }
    let mut a: Vec<u64> = got.iter().map(|(n, _)| *n).collect();
    a.sort_unstable();
    sent.sort_unstable();
    assert_eq!(a, sent, "every task answered exactly once");

    // No more work: the workers' `get` returns ShutDown.
    task.shutdown(false);
    if let Some(w) = &mut worker {
        wait_child(w, Duration::from_secs(30))?;
    }
    manager.shutdown_server()?;
    println!(
        "ok: {} tasks, every square checked; master exit.",
        args.tasks
    );
    Ok(())
}
