//! `worker_main()`: a cluster worker from the user's own binary (the
//! registry of tasks is per binary), with a small command line.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use spindle::ipc::Address;

use crate::broker::{Broker, BrokerError, EmbeddedBroker};
use crate::executor::TaskOptions;
use crate::tls::RedisTls;
use crate::worker::{Worker, WorkerMode, WorkerStats};

/// The usage line of [`worker_main`].
pub const WORKER_USAGE: &str = "usage: worker --broker ADDRESS --authkey-file FILE [--queue NAME] \
[--concurrency N] [--prefetch N] [--lease SECONDS] [--mode threads|processes] | worker --broker redis://HOST:PORT (or rediss://, \
unix:///PATH) [--tls-ca FILE] [--tls-cert FILE --tls-key FILE] [--queue NAME] ... | worker --list";

/// A worker's settings, from its command line.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerArgs {
    /// The broker: a manager server's `HOST:PORT` or socket path, or a
    /// Redis URL (`redis://`, `rediss://`, `unix://`; AUTH in the URL).
    pub broker: String,
    /// A `rediss://` broker's TLS settings (`--tls-ca`, `--tls-cert`,
    /// `--tls-key`).
    pub tls: RedisTls,
    /// The file whose bytes are the manager server's key (not for Redis).
    pub authkey_file: Option<PathBuf>,
    /// The broker's registered name (default `tasks`).
    pub queue: String,
    /// Tasks at once (default: the CPUs here).
    pub concurrency: usize,
    /// The lease on each fetch (default 30 s), until the worker has read
    /// the task: a task put by a `ClusterExecutor` then runs under its own
    /// `TaskOptions` lease (or timeout).
    pub lease: Duration,
    /// Where the tasks run: `threads` (default) or `processes` (a local
    /// process pool: a task that crashes its process is retried).
    pub mode: WorkerMode,
    /// Entries fetched beyond the free slots ([`Worker::prefetch`]);
    /// `None`: the default, the concurrency.
    pub prefetch: Option<usize>,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerCommand {
    /// Serve tasks.
    Run(WorkerArgs),
    /// Print each registered task's name and signature.
    List,
}

/// Parses a worker's arguments (without the program name).
///
/// # Errors
///
/// A message naming the bad or missing argument.
pub fn parse_worker_args(args: &[String]) -> Result<WorkerCommand, String> {
    let mut broker = None;
    let mut authkey_file = None;
    let mut queue = "tasks".to_string();
    let mut concurrency = std::thread::available_parallelism().map_or(1, usize::from);
    let mut lease = TaskOptions::default().lease;
    let mut mode = WorkerMode::Threads;
    let (mut tls_ca, mut tls_cert, mut tls_key) = (None, None, None);
    let mut prefetch = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--list" => return Ok(WorkerCommand::List),
            "--broker" => broker = Some(value("--broker")?),
            "--authkey-file" => authkey_file = Some(PathBuf::from(value("--authkey-file")?)),
            "--queue" => queue = value("--queue")?,
            "--tls-ca" => tls_ca = Some(PathBuf::from(value("--tls-ca")?)),
            "--tls-cert" => tls_cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => tls_key = Some(PathBuf::from(value("--tls-key")?)),
            "--concurrency" => {
                let v = value("--concurrency")?;
                concurrency = match v.parse::<usize>() {
                    Ok(n) if (1..=1024).contains(&n) => n,
                    _ => return Err(format!("--concurrency {v:?}: 1 to 1024")),
                };
            }
            "--prefetch" => {
                let v = value("--prefetch")?;
                prefetch = match v.parse::<usize>() {
                    Ok(n) if n <= crate::worker::MAX_PREFETCH => Some(n),
                    _ => {
                        return Err(format!(
                            "--prefetch {v:?}: 0 to {}",
                            crate::worker::MAX_PREFETCH
                        ));
                    }
                };
            }
            "--lease" => {
                let v = value("--lease")?;
                lease = match v.parse::<f64>() {
                    Ok(s) if (0.1..=86_400.0).contains(&s) => Duration::from_secs_f64(s),
                    _ => return Err(format!("--lease {v:?}: 0.1 to 86400 seconds")),
                };
            }
            "--mode" => {
                let v = value("--mode")?;
                mode = match v.as_str() {
                    "threads" => WorkerMode::Threads,
                    "processes" => WorkerMode::Processes,
                    _ => return Err(format!("--mode {v:?}: threads or processes")),
                };
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let broker = broker.ok_or("--broker is required")?;
    if !is_redis(&broker) && authkey_file.is_none() {
        return Err("--authkey-file is required for a manager server's broker".into());
    }
    let tls = RedisTls::from_flags(tls_ca, tls_cert, tls_key)?;
    if !tls.is_default() && !crate::tls::is_tls_url(&broker) {
        return Err("--tls-ca, --tls-cert and --tls-key are for a rediss:// broker".into());
    }
    Ok(WorkerCommand::Run(WorkerArgs {
        broker,
        tls,
        authkey_file,
        queue,
        concurrency,
        lease,
        mode,
        prefetch,
    }))
}

/// Whether `--broker` names a Redis server.
fn is_redis(broker: &str) -> bool {
    ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|p| broker.starts_with(p))
}

/// Runs a cluster worker with this process's command line: the tasks of
/// this binary (`#[spindle::task]`), from the broker named on it, until
/// SIGTERM or SIGINT, after which it finishes the tasks it holds (a
/// drain) and exits 0. `--list` prints each registered task's name and
/// signature. A bad command line exits 2, a broker that cannot be reached
/// at start 1, each with one line on stderr; a broker lost later is tried
/// again every second.
///
/// A worker refuses to start when two tasks of this binary share a name
/// (`process::check_tasks`): a call by that name could run either.
pub fn worker_main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse_worker_args(&args) {
        Ok(WorkerCommand::List) => {
            for (name, sig) in spindle::process::task_signatures() {
                println!("{name} {sig:016x}");
            }
            ExitCode::SUCCESS
        }
        Ok(WorkerCommand::Run(a)) => run(&a),
        Err(m) => {
            eprintln!("worker: {m}\n{WORKER_USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Runs a worker with `args` until SIGTERM or SIGINT (see [`worker_main`]).
pub fn run(args: &WorkerArgs) -> ExitCode {
    run_with(args, &|_| {})
}

/// What [`run_with`] tells its observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerProgress {
    /// The worker's counts so far, every 100 ms while it serves.
    Serving(WorkerStats),
    /// Its final counts, once it stopped (before its last line on stderr).
    Stopped(WorkerStats),
}

/// How often [`run_with`] tells its observer.
const PROGRESS_TICK: Duration = Duration::from_millis(100);

/// [`run`], telling `observe` the worker's counts every 100 ms while it
/// serves, and once when it stops (a progress bar: `spindle worker`'s).
pub fn run_with(args: &WorkerArgs, observe: &(dyn Fn(WorkerProgress) + Sync)) -> ExitCode {
    if let Err(d) = spindle::process::check_tasks() {
        eprintln!("worker: {d}");
        return ExitCode::FAILURE;
    }
    let manager = if is_redis(&args.broker) {
        None
    } else {
        let Some(file) = &args.authkey_file else {
            eprintln!("worker: --authkey-file is required for a manager server's broker");
            return ExitCode::from(2);
        };
        let key = match std::fs::read(file) {
            Ok(k) => k,
            Err(e) => {
                eprintln!(
                    "worker: cannot read the authkey file {}: {e}",
                    file.display()
                );
                return ExitCode::FAILURE;
            }
        };
        let address: Address = match args.broker.parse() {
            Ok(a) => a,
            Err(e) => {
                eprintln!("worker: --broker {:?}: {e}", args.broker);
                return ExitCode::from(2);
            }
        };
        Some((address, key))
    };
    // SIGTERM and SIGINT go to the thread below only (blocked before any
    // other thread starts, so every thread inherits the mask).
    let mut signals = SigSet::empty();
    signals.add(Signal::SIGTERM);
    signals.add(Signal::SIGINT);
    if let Err(e) = signals.thread_block() {
        eprintln!("worker: cannot block SIGTERM/SIGINT: {e}");
        return ExitCode::FAILURE;
    }
    // The URL as printed: its password hidden.
    let shown = redacted_url(&args.broker);
    let broker: Arc<dyn Broker> = match connect(&args.broker, manager, &args.queue, &args.tls) {
        Ok(b) => b,
        Err(e) => {
            let why = e.to_string().replace(&args.broker, &shown);
            eprintln!("worker: {shown}: {why}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let _ = std::thread::Builder::new()
        .name("spindle-worker-signals".into())
        .spawn(move || {
            let _ = signals.wait();
            s2.store(true, Ordering::SeqCst);
        });
    let options = TaskOptions {
        lease: args.lease,
        ..TaskOptions::default()
    };
    let mut worker = Worker::new(&*broker)
        .concurrency(args.concurrency)
        .options(options)
        .mode(args.mode);
    if let Some(n) = args.prefetch {
        worker = worker.prefetch(n);
    }
    let on = match args.mode {
        WorkerMode::Threads => "threads",
        WorkerMode::Processes => "processes",
    };
    eprintln!(
        "worker: serving {} on {shown} with {} {on}, prefetch {}",
        args.queue,
        args.concurrency,
        worker.prefetch_window()
    );
    let stopped = AtomicBool::new(false);
    let ran = std::thread::scope(|s| {
        let ticker = s.spawn(|| {
            while !stopped.load(Ordering::SeqCst) {
                observe(WorkerProgress::Serving(worker.stats()));
                std::thread::park_timeout(PROGRESS_TICK);
            }
        });
        let ran = worker.run(&stop);
        stopped.store(true, Ordering::SeqCst);
        ticker.thread().unpark();
        ran
    });
    observe(WorkerProgress::Stopped(worker.stats()));
    match ran {
        Ok(s) => {
            eprintln!(
                "worker: stopped: {} done, {} stale, {} dead-lettered, {} crashed, {} \
                 prefetched given back",
                s.done, s.stale, s.dead_lettered, s.crashed, s.returned
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("worker: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The broker of queue `queue` at `url`, as `spindle worker --broker`
/// takes it: a Redis URL (`redis://`, `rediss://`, `unix://`,
/// `redis+unix://`; AUTH in the URL), or a manager server's `HOST:PORT` or
/// socket path with its key `authkey` (then `queue` is the broker's
/// registered name). Connecting to a Redis queue makes its stream and
/// consumer group if they do not exist.
///
/// # Errors
///
/// [`BrokerError::Refused`] for a manager address without a key or one
/// that does not parse, or a bad Redis URL; [`BrokerError::Unavailable`]
/// when the broker cannot be reached, refuses the key, or (a manager) has
/// no broker named `queue`.
pub fn connect_broker(
    url: &str,
    authkey: Option<&[u8]>,
    queue: &str,
) -> Result<Arc<dyn Broker>, BrokerError> {
    connect_broker_with(url, authkey, queue, &RedisTls::default())
}

/// [`connect_broker`] with TLS settings for a `rediss://` URL (a private
/// CA, a client certificate: [`RedisTls`]; `--tls-ca`, `--tls-cert`,
/// `--tls-key`).
///
/// # Errors
///
/// As `connect_broker`; [`BrokerError::Auth`] if a Redis server refuses the
/// password or user; [`BrokerError::Tls`] if TLS fails, its files cannot be
/// used, or settings other than the default are given for a broker
/// without TLS.
pub fn connect_broker_with(
    url: &str,
    authkey: Option<&[u8]>,
    queue: &str,
    tls: &RedisTls,
) -> Result<Arc<dyn Broker>, BrokerError> {
    let manager = if is_redis(url) {
        None
    } else {
        let key = authkey.ok_or_else(|| {
            BrokerError::Refused(format!(
                "{url} is a manager server's address: it needs the server's key"
            ))
        })?;
        let address: spindle::ipc::Address = url
            .parse()
            .map_err(|e| BrokerError::Refused(format!("{url:?}: {e}")))?;
        Some((address, key.to_vec()))
    };
    if manager.is_some() && !tls.is_default() {
        return Err(BrokerError::Tls(format!(
            "{url} is a manager server's address: TLS settings are for a rediss:// URL"
        )));
    }
    connect(url, manager, queue, tls)
}

/// A broker URL with its password (`redis://USER:PASS@`, `?pass=PASS`,
/// `?password=PASS`) replaced by `***`, to print (`worker_main`,
/// `spindle status`, `spindle dashboard`).
pub fn redacted_url(url: &str) -> String {
    let mut out = url.to_string();
    if let Some(scheme) = out.find("://") {
        let rest = scheme + 3;
        let host_end = out[rest..].find('/').map_or(out.len(), |i| rest + i);
        if let Some(at) = out[rest..host_end].rfind('@') {
            let userinfo = &out[rest..rest + at];
            let user = userinfo.split_once(':').map_or("", |(u, _)| u);
            out = format!("{}{user}:***{}", &out[..rest], &out[rest + at..]);
        }
    }
    if let Some(q) = out.find('?') {
        let (base, query) = out.split_at(q + 1);
        let query: Vec<String> = query
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some((k, _)) if k == "pass" || k == "password" => format!("{k}=***"),
                _ => kv.to_string(),
            })
            .collect();
        out = format!("{base}{}", query.join("&"));
    }
    out
}

/// The broker `--broker` names.
fn connect(
    broker: &str,
    manager: Option<(Address, Vec<u8>)>,
    queue: &str,
    tls: &RedisTls,
) -> Result<Arc<dyn Broker>, crate::BrokerError> {
    match manager {
        Some((address, key)) => Ok(Arc::new(EmbeddedBroker::connect(address, &key, queue)?)),
        None => redis_broker(broker, queue, tls),
    }
}

#[cfg(feature = "redis")]
fn redis_broker(
    url: &str,
    queue: &str,
    tls: &RedisTls,
) -> Result<Arc<dyn Broker>, crate::BrokerError> {
    Ok(Arc::new(crate::RedisBroker::connect_with(url, queue, tls)?))
}

#[cfg(not(feature = "redis"))]
fn redis_broker(
    url: &str,
    _queue: &str,
    _tls: &RedisTls,
) -> Result<Arc<dyn Broker>, crate::BrokerError> {
    Err(crate::BrokerError::Refused(format!(
        "{url}: this build of spindle-cluster has no Redis backend (feature `redis`)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn printed_urls_hide_the_password() {
        for (url, shown) in [
            ("rediss://:s3cret@h:6380/0", "rediss://:***@h:6380/0"),
            ("redis://alice:s3cret@h", "redis://alice:***@h"),
            ("unix:///r.sock?pass=s3cret", "unix:///r.sock?pass=***"),
            ("redis://h:1/", "redis://h:1/"),
            ("127.0.0.1:5", "127.0.0.1:5"),
        ] {
            assert_eq!(redacted_url(url), shown);
        }
    }

    #[test]
    fn the_command_line() {
        assert_eq!(parse_worker_args(&args("--list")), Ok(WorkerCommand::List));
        let Ok(WorkerCommand::Run(a)) = parse_worker_args(&args(
            "--broker 127.0.0.1:5 --authkey-file k --queue q --concurrency 3 --lease 2 \
             --mode processes --prefetch 16",
        )) else {
            panic!("not parsed");
        };
        assert_eq!(
            (a.broker.as_str(), a.queue.as_str(), a.concurrency, a.lease),
            ("127.0.0.1:5", "q", 3, Duration::from_secs(2))
        );
        assert_eq!((a.mode, a.prefetch), (WorkerMode::Processes, Some(16)));
        assert!(a.tls.is_default());
        let Ok(WorkerCommand::Run(a)) = parse_worker_args(&args(
            "--broker rediss://h:1 --tls-ca ca.pem --tls-cert c.pem --tls-key k.pem",
        )) else {
            panic!("not parsed");
        };
        assert_eq!(
            a.tls,
            RedisTls::new()
                .ca_file("ca.pem")
                .client_cert("c.pem", "k.pem")
        );
        let Ok(WorkerCommand::Run(d)) = parse_worker_args(&args("--broker redis://h:1")) else {
            panic!("not parsed");
        };
        assert_eq!(d.prefetch, None);
        for (bad, says) in [
            ("--authkey-file k", "--broker"),
            ("--broker x", "--authkey-file"),
            ("--broker redis://h:1 --lease 0", "--lease"),
            (
                "--broker x --authkey-file k --concurrency 0",
                "--concurrency",
            ),
            ("--broker x --authkey-file k --lease -1", "--lease"),
            ("--broker", "needs a value"),
            ("--bogus", "unknown argument"),
            ("--broker redis://h:1 --mode fibers", "--mode"),
            ("--broker rediss://h:1 --tls-cert c", "--tls-key"),
            ("--broker rediss://h:1 --tls-key k", "--tls-cert"),
            ("--broker redis://h:1 --tls-ca ca.pem", "rediss://"),
            ("--broker x --authkey-file k --tls-ca ca.pem", "rediss://"),
            ("--broker redis://h:1 --prefetch -1", "--prefetch"),
            ("--broker redis://h:1 --prefetch 10001", "--prefetch"),
        ] {
            let e = parse_worker_args(&args(bad)).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
