//! The `spindle` command: a guided tour of every capability (`spindle tour`),
//! two CPU-bound workloads ported from Python (`spindle gen-logs`, `spindle
//! robots`, `spindle primes`), a line echo server and its load client
//! (`spindle echo serve`, `spindle echo load`, from `spindle_aio::echo`), a
//! manager server of named queues, dicts and lists (`spindle serve`), and
//! `spindle bench SUITE`, which runs the benchmark program `spindle-bench`
//! built beside it.
//!
//! This binary has no unsafe code of its own and links none of the crates the
//! benchmarks compare spindle with, except tokio, which spindle-aio is
//! built on: the workloads (and their unsafe code:
//! gzip through libdeflate, SIMD) are the `spindle-workloads` crate, the
//! benchmarks and their peers the `spindle-bench` crate.

#![forbid(unsafe_code)]

mod bench;
mod dashboard;
mod echo;
mod progress;
mod serve;
mod status;
mod tour;
mod workloads;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use spindle_workloads::logs;

/// spindle — Python's concurrency model in Rust.
#[derive(Debug, Parser)]
#[command(name = "spindle", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Draw no progress bar. Bars (on `gen-logs`, `robots`, `worker`; `bench` passes
    /// this on to spindle-bench) go to stderr only, and only when stderr is
    /// a terminal and the CI environment variable is not set; stdout is
    /// the same either way.
    #[arg(long, global = true)]
    no_progress: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a short guided demo of every capability, checking each result.
    ///
    /// Prints a ✓ or ✗ for every check; exits non-zero if any check fails.
    Tour {
        /// Run only these sections (default: all). `spindle tour --list` names them.
        sections: Vec<String>,
        /// List the sections and exit.
        #[arg(long)]
        list: bool,
    },
    /// Run a benchmark suite side by side: spindle, the best Rust crates, Python.
    ///
    /// Runs `spindle-bench ARGS..`, the benchmark program, found beside this
    /// one (build it with `cargo build --release -p spindle-bench`; `cargo
    /// run --release -p spindle-bench -- SUITE` builds and runs it).
    /// `spindle bench list` names the suites; `spindle bench SUITE [--quick]
    /// [--json] [--case NAME]` runs one; `spindle bench --help` is its help.
    #[command(disable_help_flag = true)]
    Bench {
        /// The benchmark program's arguments: `SUITE [--quick] [--json]
        /// [--case NAME]`, `list` or `all`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// A line echo server, and the load client that measures one.
    #[command(subcommand)]
    Echo(EchoCommand),
    /// Serve named queues, dicts and lists to manager clients (Python's
    /// `BaseManager.register(...)` + `get_server().serve_forever()`).
    ///
    /// Clients call `spindle::manager::Manager::connect(ADDRESS, key)` and
    /// `get::<QueueProxy<T>>(NAME)` (or `DictProxy<K, V>`, `ListProxy<T>`).
    /// The first stdout line is exactly `listening on ADDRESS` (the real
    /// port for port 0). Without `--authkey-file` a 32-byte random key is
    /// written, raw, to a new file only this user can read (0600, in a new
    /// 0700 directory of the temporary directory, removed at exit), and the
    /// second line is that file's path.
    ///
    /// Serves until SIGTERM or SIGINT (or a client's `shutdown_server`),
    /// then exits 0. Exit 2: a usage error (a bad address, a key file of
    /// fewer than 16 bytes, a name given twice); exit 1: a runtime error (a
    /// key file that cannot be read, an address in use).
    Serve {
        /// IP:PORT (port 0: any free port) or a Unix socket path (a path
        /// with a '/', e.g. ./manager.sock; removed when the server stops).
        #[arg(long, default_value = "127.0.0.1:0", value_parser = serve::parse_address)]
        bind: spindle::ipc::Address,
        /// The shared key: all the bytes of this file (a trailing newline
        /// is part of the key), at least 16. Default: a generated key.
        #[arg(long)]
        authkey_file: Option<PathBuf>,
        /// Serve an unbounded FIFO queue under this name (repeatable).
        #[arg(long = "queue", value_name = "NAME")]
        queues: Vec<String>,
        /// Serve an empty dict under this name (repeatable).
        #[arg(long = "dict", value_name = "NAME")]
        dicts: Vec<String>,
        /// Serve an empty list under this name (repeatable).
        #[arg(long = "list", value_name = "NAME")]
        lists: Vec<String>,
        /// Serve a task broker under this name (repeatable): at-least-once
        /// delivery with leases, for `BrokerProxy` clients; in memory.
        #[arg(long = "broker", value_name = "NAME")]
        brokers: Vec<String>,
    },
    /// Run a cluster worker: spindle's own tasks (the demos and the
    /// workloads), from a manager server's broker, until SIGTERM or SIGINT
    /// (then it finishes the tasks it holds and exits 0).
    Worker {
        /// The broker: a manager server's IP:PORT or socket path, or a
        /// Redis URL (redis://HOST:PORT, rediss://HOST:PORT for TLS,
        /// unix:///PATH; AUTH in the URL: redis://[USER]:PASSWORD@HOST).
        #[arg(long, required_unless_present = "list")]
        broker: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
        /// The manager server's key: all the bytes of this file (not for
        /// Redis).
        #[arg(long)]
        authkey_file: Option<PathBuf>,
        /// The broker's registered name.
        #[arg(long, default_value = "tasks")]
        queue: String,
        /// Tasks at once (default: the CPUs here).
        #[arg(long)]
        concurrency: Option<usize>,
        /// The lease on each task, in seconds (the clients' must agree).
        #[arg(long, default_value_t = 30.0)]
        lease: f64,
        /// Entries fetched ahead of free slots, 0 to 10,000 (default: the
        /// concurrency). A wider window keeps a far broker busy.
        #[arg(long)]
        prefetch: Option<usize>,
        /// Where tasks run: `threads`, or `processes` (a crash is a lost
        /// worker there, and the task runs again elsewhere).
        #[arg(long, default_value = "threads")]
        mode: String,
        /// Print each task this binary can run (name and signature) and exit.
        #[arg(long)]
        list: bool,
    },
    /// What a running manager server is doing (connections, channels,
    /// objects, handshakes), or a cluster (--broker: its workers with their
    /// heartbeats, each queue's depth, tasks in flight, dead letters,
    /// rates), or a program's stats socket (--socket: its pools and
    /// queues); a table, or one JSON object per snapshot.
    ///
    /// Exits 2 with one line on stderr when the source cannot be read.
    #[command(group(clap::ArgGroup::new("source").required(true).args(["manager", "broker", "socket"])))]
    Status {
        /// The manager's address: IP:PORT or a Unix socket path.
        #[arg(long, value_parser = serve::parse_address)]
        manager: Option<spindle::ipc::Address>,
        /// A cluster's broker, as `spindle worker --broker` takes it: a
        /// manager server's IP:PORT or socket path (with --authkey-file),
        /// or a Redis URL (redis://HOST:PORT, rediss://HOST:PORT for TLS,
        /// unix:///PATH, redis+unix:///PATH; AUTH in the URL).
        #[arg(long)]
        broker: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
        /// With --broker: a queue to show (repeatable; default `tasks`):
        /// the broker's registered name on a manager server.
        #[arg(long = "queue", value_name = "NAME", requires = "broker")]
        queues: Vec<String>,
        /// The manager's key: all the bytes of this file (not for Redis).
        #[arg(long)]
        authkey_file: Option<PathBuf>,
        /// A stats socket (`spindle::stats::serve`, or the one
        /// `spindle dashboard --socket` reads): its pools and queues.
        /// `--json` prints each snapshot as the socket sent it, the schema
        /// of the dashboard's /api/status.
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// One JSON object per snapshot, one per line.
        #[arg(long)]
        json: bool,
        /// Take a snapshot every INTERVAL (500ms, 1s, 2m) until interrupted.
        #[arg(long, value_name = "INTERVAL", value_parser = status::parse_interval)]
        watch: Option<std::time::Duration>,
        /// With --watch: stop after this many snapshots.
        #[arg(long, requires = "watch")]
        count: Option<u64>,
    },
    /// A live web dashboard: workers, queue depths, throughput, latency,
    /// failures and a task timeline, with a JSON API (/api/status,
    /// /api/workers, /api/queues, /api/tasks, /api/dead, /api/events) and
    /// Prometheus /metrics.
    ///
    /// The first stdout line is exactly `dashboard on http://HOST:PORT/`.
    /// Serves until SIGTERM or SIGINT. Loopback only unless --token is
    /// given; read-only unless --allow-actions. Exit 2: a usage error, or
    /// a --broker that cannot be reached (or has no such queue); exit 1: a
    /// runtime error (an address in use).
    #[command(group(clap::ArgGroup::new("what").required(true).args(["demo", "socket", "broker", "manager"])))]
    Dashboard {
        /// IP:PORT to listen on (port 0: any free port). A non-loopback
        /// address needs --token.
        #[arg(long, default_value = "127.0.0.1:0")]
        bind: std::net::SocketAddr,
        /// Every request must carry it (`Authorization: Bearer T` or
        /// `?token=T`): letters, digits, `-._~`. Visible to other users in
        /// the process list: prefer a loopback bind on shared hosts.
        #[arg(long)]
        token: Option<String>,
        /// Accept actions (retry or purge dead letters): POST with the
        /// token and a matching Origin only. Needs --token.
        #[arg(long)]
        allow_actions: bool,
        /// Also accept this Host header (a name this dashboard is reached
        /// by; by default the bound address and localhost only).
        #[arg(long = "allow-host", value_name = "HOST")]
        allow_hosts: Vec<String>,
        /// Serve the dashboard of a demo process pool running a steady
        /// stream of small tasks (some slow, some failing).
        #[arg(long)]
        demo: bool,
        /// Serve the dashboard of another program's stats socket
        /// (`spindle::stats::serve`).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// Serve the dashboard of a cluster's queue (its workers with their
        /// heartbeats, depth, tasks in flight, dead letters, rates), as
        /// `spindle status --broker` takes it: a manager server's IP:PORT
        /// or socket path (with --authkey-file), or a Redis URL
        /// (rediss:// for TLS).
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        #[command(flatten)]
        tls: TlsArgs,
        /// Serve the dashboard of a manager server's counters (connections,
        /// channels, objects, handshakes accepted and refused): its IP:PORT
        /// or socket path, with --authkey-file.
        #[arg(long, value_name = "ADDR", value_parser = serve::parse_address)]
        manager: Option<spindle::ipc::Address>,
        /// With --manager, or --broker at a manager server: a file holding
        /// its key.
        #[arg(long, value_name = "FILE")]
        authkey_file: Option<PathBuf>,
        /// With --broker: the queue to show (the broker's registered name on
        /// a manager server).
        #[arg(
            long,
            value_name = "NAME",
            default_value = "tasks",
            requires = "broker"
        )]
        queue: String,
        /// With --demo: also serve its stats on a socket here (mode 0600)
        /// for `spindle status --socket`.
        #[arg(long, value_name = "PATH", requires = "demo")]
        stats_socket: Option<PathBuf>,
    },
    /// Write deterministic Apache combined-log gzip files (`YYYYMMDD.log.gz`)
    /// for `spindle robots`.
    ///
    /// About 1% of requests are for /robots.txt, from 4,000 hosts; each file
    /// also holds up to 3 malformed lines on purpose (empty, cut short, junk),
    /// which `spindle robots` skips and counts. The same arguments always
    /// write the same bytes.
    ///
    /// Stops at the first file that cannot be written (a full disk, say):
    /// the files being written are removed, so only complete files remain,
    /// and the error names the file that failed.
    GenLogs {
        /// Directory to write into (created if missing; an existing path
        /// that is not a directory is an error).
        dir: PathBuf,
        /// How many files (one per day from 2012-07-10): 1 to 36500.
        #[arg(long, default_value_t = 8,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(logs::MAX_FILES)))]
        files: u32,
        /// Lines per file: 1 to 10000000.
        #[arg(long, default_value_t = 100_000,
              value_parser = clap::value_parser!(u64).range(1..=logs::MAX_LINES))]
        lines: u64,
        /// Seed: the same seed writes the same lines.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// The Python Cookbook's map-reduce (recipe 12.8): every host that
    /// requested /robots.txt in DIR/*.log.gz. Prints `hosts:`, `sha256:`, then the time with the
    /// counts of lines read and skipped.
    ///
    /// A line whose 7th whitespace-separated field is /robots.txt gives its
    /// 1st field; lines with fewer than 7 fields or non-ASCII bytes are
    /// skipped and counted.
    ///
    /// Warnings (on stderr; `--strict` makes them errors): a `*.log.gz` name
    /// that is not a regular file or a symbolic link to one (a FIFO, a
    /// directory, a device) is skipped; a file with more than 1% of its
    /// lines skipped is named (not a log file?).
    ///
    /// In the processes mode a task whose worker process dies (killed, out
    /// of memory) is run again, up to `--retries` times; the run then ends
    /// normally and says on stderr how many workers were lost and tasks
    /// retried. A task that loses its worker once more fails the run.
    Robots {
        /// Directory holding the `*.log.gz` files.
        dir: PathBuf,
        /// serial, threads (ThreadPoolExecutor) or processes
        /// (ProcessPoolExecutor, one file per task).
        #[arg(long, value_enum, default_value_t = spindle_workloads::Mode::Processes)]
        mode: spindle_workloads::Mode,
        /// Parallel workers (default: the number of cores).
        #[arg(long, default_value_t = spindle_workloads::default_workers())]
        workers: usize,
        /// Only gunzip the files (the decoder's speed limit), no parsing.
        #[arg(long)]
        decode_only: bool,
        /// Every warning is an error (exit status 1, no answer printed).
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        pool: PoolArgs,
    },
    /// The PRIMES check of Python's `concurrent.futures` documentation, by trial
    /// division; prints each verdict and the time.
    ///
    /// In the processes mode a task whose worker process dies is run again,
    /// up to `--retries` times, as in `spindle robots`.
    Primes {
        /// serial, threads (ThreadPoolExecutor, one number per task) or
        /// processes (ProcessPoolExecutor, each number's trial divisions in
        /// five tasks, so two workers share the work evenly).
        #[arg(long, value_enum, default_value_t = spindle_workloads::Mode::Processes)]
        mode: spindle_workloads::Mode,
        /// Parallel workers (default: the number of cores).
        #[arg(long, default_value_t = spindle_workloads::default_workers())]
        workers: usize,
        /// Numbers to check, comma-separated (default: the documentation's PRIMES).
        #[arg(long, value_delimiter = ',')]
        numbers: Vec<u64>,
        #[command(flatten)]
        pool: PoolArgs,
    },
}

/// `spindle echo serve` / `spindle echo load`.
#[derive(Debug, Subcommand)]
enum EchoCommand {
    /// Serve lines: each line received comes back (after `--prefix`).
    ///
    /// The first stdout line is `listening on HOST:PORT`; then it serves
    /// until killed (SIGTERM). A line over 64 KiB (its `\n` counted) closes
    /// that connection; a connection's error (a reset) ends only it.
    Serve {
        /// One tokio task per connection (the default).
        #[arg(long, conflicts_with = "threads")]
        aio: bool,
        /// One thread per connection instead.
        #[arg(long)]
        threads: bool,
        /// Put this before every line sent back (Python's classic echo server: `GOT:`).
        #[arg(long, default_value = "")]
        prefix: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Port (0: any free port, printed on the first line).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Measure an echo server: --conns connections, each doing --rounds
    /// sequential round trips of a 32-byte line (written, read back,
    /// checked). Prints `echo.throughput: N rt/s` (all connections, wall
    /// clock from after the connects), `echo.p50_us: N`, `echo.p99_us: N`.
    ///
    /// `--conns × --rounds` is at most 50,000,000 (every latency is kept
    /// for the percentiles).
    Load {
        /// The server, HOST:PORT.
        #[arg(long)]
        connect: String,
        /// Connections, all open at once: 1 to 10000.
        #[arg(long, default_value_t = 50,
              value_parser = clap::value_parser!(u32).range(1..=10_000))]
        conns: u32,
        /// Round trips per connection: 1 to 10000000.
        #[arg(long, default_value_t = 2000,
              value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        rounds: u64,
    },
}

/// The process mode's pool options of `robots` and `primes`.
#[derive(Debug, clap::Args)]
struct PoolArgs {
    /// processes mode: run a task whose worker process died again, up to
    /// this many times (its work is only reading files or computing).
    #[arg(long, default_value_t = spindle_workloads::processes::DEFAULT_RETRIES)]
    retries: u32,
    /// processes mode: print on stderr each task's start with the pid of
    /// the worker process running it.
    #[arg(long, short)]
    verbose: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tour { sections, list } => tour::main(&sections, list),
        Command::Bench { mut args } => {
            if cli.no_progress {
                args.push("--no-progress".into());
            }
            bench::main(&args)
        }
        Command::Echo(EchoCommand::Serve {
            aio: _,
            threads,
            prefix,
            host,
            port,
        }) => echo::serve(threads, &prefix, &host, port),
        Command::Echo(EchoCommand::Load {
            connect,
            conns,
            rounds,
        }) => echo::load_cmd(&connect, conns as usize, rounds),
        Command::Worker {
            broker,
            tls,
            authkey_file,
            queue,
            concurrency,
            lease,
            prefetch,
            mode,
            list,
        } => {
            let mut args = Vec::new();
            if list {
                args.push("--list".to_string());
            }
            if let Some(b) = broker {
                args.extend(["--broker".into(), b]);
            }
            if let Some(f) = authkey_file {
                args.extend(["--authkey-file".into(), f.display().to_string()]);
            }
            for (flag, file) in [
                ("--tls-ca", tls.tls_ca),
                ("--tls-cert", tls.tls_cert),
                ("--tls-key", tls.tls_key),
            ] {
                if let Some(f) = file {
                    args.extend([flag.into(), f.display().to_string()]);
                }
            }
            args.extend(["--queue".into(), queue, "--lease".into(), lease.to_string()]);
            if let Some(n) = concurrency {
                args.extend(["--concurrency".into(), n.to_string()]);
            }
            if let Some(n) = prefetch {
                args.extend(["--prefetch".into(), n.to_string()]);
            }
            args.extend(["--mode".into(), mode]);
            match spindle_cluster::parse_worker_args(&args) {
                Ok(spindle_cluster::WorkerCommand::List) => {
                    for (name, sig) in spindle::process::task_signatures() {
                        println!("{name} {sig:016x}");
                    }
                    ExitCode::SUCCESS
                }
                Ok(spindle_cluster::WorkerCommand::Run(a)) => spindle_cluster::run_worker_with(
                    &a,
                    &progress::worker_observer(spindle_workloads::bars_wanted(cli.no_progress)),
                ),
                Err(m) => {
                    eprintln!("spindle worker: {m}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Status {
            manager,
            broker,
            tls,
            queues,
            authkey_file,
            socket,
            json,
            watch,
            count,
        } => match socket {
            _ if tls.given() && broker.is_none() => {
                eprintln!("spindle status: --tls-ca, --tls-cert and --tls-key go with --broker");
                ExitCode::from(2)
            }
            Some(path) => status::status_socket(&path, json, watch, count),
            None => status::status(status::StatusArgs {
                source: status::Source::new(manager, broker, queues),
                authkey_file,
                tls: tls.settings(),
                json,
                watch,
                count,
            }),
        },
        Command::Dashboard {
            ref broker,
            ref tls,
            ..
        } if tls.given() && broker.is_none() => {
            eprintln!("spindle dashboard: --tls-ca, --tls-cert and --tls-key go with --broker");
            ExitCode::from(2)
        }
        Command::Dashboard {
            bind,
            token,
            allow_actions,
            allow_hosts,
            demo,
            socket,
            broker,
            tls,
            manager,
            authkey_file,
            queue,
            stats_socket,
        } => dashboard::dashboard(dashboard::DashboardArgs {
            bind,
            token,
            allow_actions,
            allow_hosts,
            demo,
            socket,
            broker,
            manager,
            authkey_file,
            queue,
            stats_socket,
            tls: tls.settings(),
        }),
        Command::Serve {
            bind,
            authkey_file,
            queues,
            dicts,
            lists,
            brokers,
        } => serve::serve(serve::ServeArgs {
            bind,
            authkey_file,
            queues,
            dicts,
            lists,
            brokers,
        }),
        Command::GenLogs {
            dir,
            files,
            lines,
            seed,
        } => workloads::gen_logs(&dir, files, lines, seed, cli.no_progress),
        Command::Robots {
            dir,
            mode,
            workers,
            decode_only,
            strict,
            pool,
        } => workloads::robots(
            &dir,
            mode,
            workers,
            decode_only,
            strict,
            cli.no_progress,
            &pool_options("robots", &pool),
        ),
        Command::Primes {
            mode,
            workers,
            numbers,
            pool,
        } => workloads::primes(mode, workers, &numbers, &pool_options("primes", &pool)),
    }
}

/// The TLS settings of a `rediss://` `--broker` (`spindle worker`,
/// `status`, `dashboard`).
#[derive(Debug, Clone, clap::Args)]
struct TlsArgs {
    /// With a rediss:// --broker: trust only the CA certificates of this
    /// PEM file (a private CA). Default: the system's CAs (or the files
    /// SSL_CERT_FILE / SSL_CERT_DIR name). rediss://HOST:PORT/#insecure
    /// checks no certificate at all.
    #[arg(long, value_name = "FILE")]
    tls_ca: Option<PathBuf>,
    /// With a rediss:// --broker: send this client certificate (PEM) to a
    /// server that asks for one (mutual TLS; with --tls-key).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
}

impl TlsArgs {
    /// Whether any was given.
    fn given(&self) -> bool {
        self.tls_ca.is_some() || self.tls_cert.is_some() || self.tls_key.is_some()
    }

    /// The settings (clap checked that a certificate has its key).
    fn settings(self) -> spindle_cluster::RedisTls {
        let mut t = spindle_cluster::RedisTls::new();
        if let Some(ca) = self.tls_ca {
            t = t.ca_file(ca);
        }
        if let (Some(c), Some(k)) = (self.tls_cert, self.tls_key) {
            t = t.client_cert(c, k);
        }
        t
    }
}

/// The pool options of `spindle COMMAND`: its retries, and with
/// `--verbose` a line on stderr per task start.
fn pool_options(command: &'static str, args: &PoolArgs) -> spindle_workloads::PoolOptions {
    spindle_workloads::PoolOptions {
        retries: args.retries,
        on_task_start: args.verbose.then(|| {
            let hook: spindle_workloads::processes::OnTaskStart = std::sync::Arc::new(move |s| {
                progress::eprint_line(&format!(
                    "spindle {command}: a task started on worker process {}",
                    s.pid
                ));
            });
            hook
        }),
        progress: None,
    }
}
