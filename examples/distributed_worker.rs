//! The worker of Python's `BaseManager` distributed-processes program
//! (`distributed_server.rs` is the master): it connects to the master's
//! manager with the shared key, takes numbers from the task queue and puts
//! their squares in the result queue.
//!
//! The Python worker:
//!
//! ```python
//! class QueueManager(BaseManager): pass
//! QueueManager.register('get_task_queue')
//! QueueManager.register('get_result_queue')
//! m = QueueManager(address=('127.0.0.1', 5000), authkey=b'abc')
//! m.connect()
//! task = m.get_task_queue()
//! result = m.get_result_queue()
//! for i in range(10):
//!     try:
//!         n = task.get(timeout=1)
//!         print('run task %d * %d...' % (n, n))
//!         result.put('%d * %d = %d' % (n, n, n * n))
//!     except queue.Empty:
//!         print('task queue is empty.')
//! print('worker exit.')
//! ```
//!
//! Run the pair by hand, in two terminals:
//!
//! ```sh
//! cargo run --release --example distributed_server -- --bind 127.0.0.1:5000
//! cargo run --release --example distributed_worker -- --connect 127.0.0.1:5000
//! ```
//!
//! With no `--connect` it runs the pair in one command: it starts the
//! `distributed_server` program built beside it (`cargo build --release
//! --examples` builds both) on a free port of 127.0.0.1, reads the address
//! from its first line, works, and checks that the master ends well.
//!
//! Options: `--connect ADDR`, `--authkey KEY` (default
//! `spindle-example-key`, as the master's), `--idle SECS` (stop after this
//! long without a task, default 10).
//!
//! What changed: the worker takes tasks until the master shuts the task
//! queue down (`get` returns `ShutDown`) rather than exactly ten, so any
//! number of workers share any number of tasks; it puts `(n, n * n)`.

use std::error::Error;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use spindle::ipc::Address;
use spindle::manager::{Manager, QueueProxy};
use spindle::queue::{BlockingQueue, GetTimeoutError};

const DEFAULT_KEY: &str = "spindle-example-key";

#[derive(Debug)]
struct Args {
    connect: Option<Address>,
    authkey: String,
    idle: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        connect: None,
        authkey: DEFAULT_KEY.into(),
        idle: Duration::from_secs(10),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--connect" => {
                let v = value()?;
                args.connect = Some(v.parse().map_err(|e| format!("--connect {v}: {e}"))?);
            }
            "--authkey" => args.authkey = value()?,
            "--idle" => {
                let v = value()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
                    .ok_or(format!("--idle {v}: not a number of seconds up to 86400"))?;
                args.idle = Duration::from_secs_f64(secs);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(args)
}

/// The worker itself: what the Python program does.
fn work(address: Address, authkey: &str, idle: Duration) -> Result<usize, Box<dyn Error>> {
    println!("Connect to server {address}...");
    let m = Manager::connect(address, authkey.as_bytes())?;
    let task: QueueProxy<u64> = m.get("get_task_queue")?;
    let result: QueueProxy<(u64, u64)> = m.get("get_result_queue")?;
    let mut done = 0;
    loop {
        match task.get_timeout(idle) {
            Ok(n) => {
                println!("run task {n} * {n}...");
                result
                    .put((n, n * n))
                    .map_err(|_| "the result queue is shut down")?;
                done += 1;
            }
            Err(GetTimeoutError::ShutDown) => {
                println!("the master has no more tasks.");
                break;
            }
            Err(GetTimeoutError::Timeout) => {
                println!("task queue is empty for {idle:?}.");
                break;
            }
        }
    }
    println!("worker exit ({done} tasks done).");
    Ok(done)
}

/// Starts the master program built beside this one on a free port and
/// returns it with the address it printed first.
fn start_master(authkey: &str) -> Result<(Child, Address, JoinHandle<()>), Box<dyn Error>> {
    let exe = std::env::current_exe()?.with_file_name("distributed_server");
    if !exe.is_file() {
        return Err(format!(
            "{} is not built: run `cargo build --release --examples` first \
             (`cargo run --example` builds only the example it runs), \
             or pass --connect ADDR to a master started by hand",
            exe.display()
        )
        .into());
    }
    let mut child = Command::new(&exe)
        .args(["--bind", "127.0.0.1:0", "--authkey", authkey])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?);
    let mut first = String::new();
    lines.read_line(&mut first)?;
    let Some(address) = first.trim_end().strip_prefix("listening on ") else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(format!("the master's first line is {first:?}").into());
    };
    let address: Address = address.parse()?;
    // Pass the master's output on, line by line, until it exits.
    let forward = std::thread::spawn(move || {
        for line in lines.lines().map_while(Result::ok) {
            println!("  master | {line}");
        }
    });
    Ok((child, address, forward))
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = parse_args().inspect_err(|e| {
        eprintln!(
            "distributed_worker: {e}\nusage: distributed_worker [--connect ADDR] \
             [--authkey KEY] [--idle SECS]"
        );
    })?;
    let Some(address) = args.connect else {
        // The one-command run: our own master.
        let (mut master, address, forward) = start_master(&args.authkey)?;
        let done = work(address, &args.authkey, args.idle);
        let end = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(s) = master.try_wait()? {
                break s;
            }
            if Instant::now() >= end {
                let _ = master.kill();
                let _ = master.wait();
                return Err("the master did not exit within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let _ = forward.join();
        let done = done?;
        std::io::stdout().flush()?;
        if !status.success() {
            return Err(format!("the master failed: {status}").into());
        }
        assert!(done > 0, "this worker did no task");
        println!("ok: the master checked all {done} results");
        return Ok(());
    };
    work(address, &args.authkey, args.idle)?;
    Ok(())
}
