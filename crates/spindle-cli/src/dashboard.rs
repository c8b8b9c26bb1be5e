//! `spindle dashboard`: the web dashboard (crate spindle-dashboard) of a
//! demo process pool (`--demo`), of another program's stats socket
//! (`--socket PATH`), or of a cluster's queue (`--broker URL
//! [--authkey-file F] [--queue NAME]`), or of a manager server's counters
//! (`--manager ADDR --authkey-file F`).
//!
//! The first stdout line is exactly `dashboard on http://HOST:PORT/`.
//! Serves until SIGTERM or SIGINT, then exits 0. Exit 2: a usage error (a
//! non-loopback `--bind` without `--token`, `--allow-actions` without a
//! token, a bad token, an unreadable key file, a broker that cannot be
//! reached or has no such queue, a manager server that cannot be reached
//! or refuses the key, `--manager` without `--authkey-file`); exit 1: a runtime error (an address in
//! use).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use spindle::process::ProcessPoolExecutor;
use spindle_dashboard::{ClusterSource, Dashboard, Error, ManagerSource, TaskLog};

/// What to serve, from the command line.
#[derive(Debug)]
pub(crate) struct DashboardArgs {
    pub(crate) bind: SocketAddr,
    pub(crate) token: Option<String>,
    pub(crate) allow_actions: bool,
    pub(crate) allow_hosts: Vec<String>,
    pub(crate) demo: bool,
    pub(crate) socket: Option<PathBuf>,
    pub(crate) broker: Option<String>,
    pub(crate) manager: Option<spindle::ipc::Address>,
    pub(crate) authkey_file: Option<PathBuf>,
    pub(crate) queue: String,
    pub(crate) stats_socket: Option<PathBuf>,
    /// A rediss:// --broker's TLS settings.
    pub(crate) tls: spindle_cluster::RedisTls,
}

/// One demo task: works for `ms` milliseconds, then panics if `fail`.
#[spindle::task]
fn demo_task(i: u64, ms: u64, fail: bool) -> u64 {
    std::thread::sleep(Duration::from_millis(ms));
    if fail {
        // A worker process runs only demo tasks: its failures on purpose
        // need no message on the terminal.
        std::panic::set_hook(Box::new(|_| {}));
        panic!("demo task {i} fails on purpose");
    }
    i
}

/// The demo's task `i`: mostly 20–100 ms, every 10th 1.5 s, every 7th
/// fails.
fn demo_call(i: u64) -> (u64, bool) {
    let ms = if i % 10 == 9 {
        1500
    } else {
        20 + (i * 37) % 80
    };
    (ms, i % 7 == 6)
}

fn usage(e: &Error) -> ExitCode {
    eprintln!("spindle dashboard: {e}");
    match e {
        Error::Io(_) => ExitCode::from(1),
        _ => ExitCode::from(2),
    }
}

pub(crate) fn dashboard(args: DashboardArgs) -> ExitCode {
    // Block SIGTERM and SIGINT before any thread starts, so every thread
    // inherits the mask and the main thread takes them with sigwait.
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    if let Err(e) = signals.thread_block() {
        eprintln!("spindle dashboard: cannot block SIGTERM/SIGINT: {e}");
        return ExitCode::from(1);
    }
    let mut b = Dashboard::builder()
        .bind(args.bind)
        .allow_actions(args.allow_actions);
    if let Some(t) = &args.token {
        b = b.token(t.clone());
    }
    for h in &args.allow_hosts {
        b = b.allow_host(h.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut feeder = None;
    let mut _pool = None;
    if let Some(p) = &args.socket {
        b = b.socket(p.clone());
    } else if let Some(url) = &args.broker {
        match cluster(url, args.authkey_file.as_ref(), &args.queue, &args.tls) {
            Ok(c) => b = b.cluster(c),
            Err(why) => {
                eprintln!("spindle dashboard: {why}");
                return ExitCode::from(2);
            }
        }
    } else if let Some(address) = &args.manager {
        match manager(address, args.authkey_file.as_ref()) {
            Ok(m) => b = b.manager(m),
            Err(why) => {
                eprintln!("spindle dashboard: {why}");
                return ExitCode::from(2);
            }
        }
    } else if args.demo {
        let log = TaskLog::new(1000);
        let pool = match ProcessPoolExecutor::builder()
            .max_workers(2)
            .on_task_start(log.observer())
            .build()
        {
            Ok(p) => Arc::new(p),
            Err(e) => {
                eprintln!("spindle dashboard: cannot start the demo pool: {e}");
                return ExitCode::from(1);
            }
        };
        b = b.process_pool("demo", &pool).tasks(&log);
        if let Some(p) = &args.stats_socket {
            b = b.stats_socket(p.clone());
        }
        let (pool2, stop2) = (pool.clone(), stop.clone());
        feeder = Some(std::thread::spawn(move || feed(&pool2, &log, &stop2)));
        _pool = Some(pool);
    }
    let dash = match b.serve() {
        Ok(d) => d,
        Err(e) => {
            stop.store(true, Ordering::SeqCst);
            return usage(&e);
        }
    };
    println!("dashboard on {}", dash.url());
    let _ = std::io::stdout().flush();
    let _ = signals.wait();
    stop.store(true, Ordering::SeqCst);
    if let Some(f) = feeder {
        let _ = f.join();
    }
    drop(dash);
    ExitCode::SUCCESS
}

/// Connects to the manager server at `address`, or the line saying why
/// not.
fn manager(
    address: &spindle::ipc::Address,
    key_file: Option<&PathBuf>,
) -> Result<ManagerSource, String> {
    let Some(f) = key_file else {
        return Err("--manager needs --authkey-file".into());
    };
    let key = std::fs::read(f)
        .map_err(|e| format!("cannot read the authkey file {}: {e}", f.display()))?;
    ManagerSource::connect(address.clone(), &key).map_err(|e| format!("manager at {address}: {e}"))
}

/// Connects to queue `queue` of the broker at `url` (as `spindle status
/// --broker`), or the line saying why not (the URL's password redacted).
fn cluster(
    url: &str,
    key_file: Option<&PathBuf>,
    queue: &str,
    tls: &spindle_cluster::RedisTls,
) -> Result<ClusterSource, String> {
    let key = match key_file {
        Some(f) => Some(
            std::fs::read(f)
                .map_err(|e| format!("cannot read the authkey file {}: {e}", f.display()))?,
        ),
        None => None,
    };
    let shown = crate::status::redacted(url);
    ClusterSource::connect_with(url, key.as_deref(), queue, tls).map_err(|e| {
        let why = e.to_string().replace(url, &shown);
        format!("broker {shown} queue {queue}: {why}")
    })
}

/// Submits demo tasks, about ten a second, keeping at most 20 waiting.
fn feed(pool: &ProcessPoolExecutor, log: &Arc<TaskLog>, stop: &AtomicBool) {
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        if pool.stats().tasks_pending < 20 {
            let (ms, fail) = demo_call(i);
            let args = format!("i={i}, ms={ms}, fail={fail}");
            let call = demo_task::call(i, ms, fail);
            // The registered name: what the pool's start hook reports.
            let name = call.name();
            if log.submit(pool, name, &args, call).is_err() {
                return;
            }
            i += 1;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
