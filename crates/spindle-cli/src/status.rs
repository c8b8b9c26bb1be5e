//! `spindle status`: what a running manager server is doing — its
//! connections, channels, objects and handshakes — or a cluster
//! (`--broker`: `spindle_cluster::ClusterStatus`, its workers with their
//! heartbeats and its queues), or, with `--socket`, what a program's stats
//! socket (`spindle::stats::serve`) reports — its pools and queues — as a
//! table or as JSON, once or every `--watch` interval.
//!
//! Exit codes: 0 after the snapshots; 2 when the source cannot be read
//! (a missing key file, a server that does not answer or refuses the key,
//! a broker that cannot be reached or has no such queue, a socket nobody
//! serves), with one line on stderr saying why.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use std::sync::Arc;

use spindle::ipc::Address;
use spindle::manager::{Manager, Stats};
use spindle_cluster::{Broker, ClusterStatus};

/// Where the snapshots come from.
#[derive(Debug)]
pub(crate) enum Source {
    /// A manager server's own counters.
    Manager(Address),
    /// A cluster: these queues of the broker at `url`.
    Broker { url: String, queues: Vec<String> },
    /// Neither was given (clap requires one).
    Missing,
}

impl Source {
    pub(crate) fn new(
        manager: Option<Address>,
        broker: Option<String>,
        queues: Vec<String>,
    ) -> Source {
        match (manager, broker) {
            (Some(m), _) => Source::Manager(m),
            (None, Some(url)) => Source::Broker { url, queues },
            (None, None) => Source::Missing,
        }
    }
}
use spindle::stats::Status;

/// What to watch, from the command line.
#[derive(Debug)]
pub(crate) struct StatusArgs {
    pub(crate) source: Source,
    pub(crate) authkey_file: Option<PathBuf>,
    /// A rediss:// --broker's TLS settings.
    pub(crate) tls: spindle_cluster::RedisTls,
    pub(crate) json: bool,
    pub(crate) watch: Option<Duration>,
    pub(crate) count: Option<u64>,
}

/// Parses `--watch`: `500ms`, `1s`, `2m`, or a number of seconds.
pub(crate) fn parse_interval(s: &str) -> Result<Duration, String> {
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not an interval (500ms, 1s, 2m)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?}: the unit is ms, s or m")),
    };
    if !(0.01..=86_400.0).contains(&secs) {
        return Err(format!("{s:?}: an interval is 10ms to 24h"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn fail(why: String) -> ExitCode {
    eprintln!("spindle status: {why}");
    ExitCode::from(2)
}

/// The key file's bytes, or the line saying why not.
fn read_key(file: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(file).map_err(|e| format!("cannot read the authkey file {}: {e}", file.display()))
}

/// `spindle status --manager ADDR --authkey-file F`, or `--broker URL`.
pub(crate) fn status(args: StatusArgs) -> ExitCode {
    match &args.source {
        Source::Manager(address) => manager_status(address, &args),
        Source::Broker { url, queues } => broker_status(url, queues, &args),
        Source::Missing => fail("--manager or --broker is required".into()),
    }
}

/// Sleeps for the next snapshot: false once the last one was shown.
fn next(args: &StatusArgs, shown: u64) -> bool {
    match args.watch {
        Some(d) if args.count.is_none_or(|n| shown < n) => {
            std::thread::sleep(d);
            true
        }
        _ => false,
    }
}

fn manager_status(address: &Address, args: &StatusArgs) -> ExitCode {
    let Some(file) = &args.authkey_file else {
        return fail("--manager needs --authkey-file".into());
    };
    let key = match read_key(file) {
        Ok(k) => k,
        Err(why) => return fail(why),
    };
    let m = match Manager::connect(address.clone(), &key) {
        Ok(m) => m,
        Err(e) => return fail(format!("manager at {address}: {e}")),
    };
    let mut shown = 0u64;
    loop {
        let stats = match m.stats() {
            Ok(s) => s,
            Err(e) => return fail(format!("manager at {address}: {e}")),
        };
        if args.json {
            println!("{}", json(address, &stats));
        } else {
            if shown > 0 {
                println!();
            }
            print!("{}", table(address, &stats));
        }
        shown += 1;
        if !next(args, shown) {
            return ExitCode::SUCCESS;
        }
    }
}

/// A broker URL with its password (`redis://:PASS@`, `?pass=PASS`)
/// replaced by `***`, to print.
pub(crate) fn redacted(url: &str) -> String {
    spindle_cluster::redacted_url(url)
}

fn broker_status(url: &str, queues: &[String], args: &StatusArgs) -> ExitCode {
    let key = match &args.authkey_file {
        Some(f) => match read_key(f) {
            Ok(k) => Some(k),
            Err(why) => return fail(why),
        },
        None => None,
    };
    let shown_url = redacted(url);
    let names: Vec<String> = if queues.is_empty() {
        vec!["tasks".to_string()]
    } else {
        queues.to_vec()
    };
    let mut brokers: Vec<(String, Arc<dyn Broker>)> = Vec::new();
    for name in names {
        match spindle_cluster::connect_broker_with(url, key.as_deref(), &name, &args.tls) {
            Ok(b) => brokers.push((name, b)),
            // The error may quote the URL (a bad one): not its password.
            Err(e) => {
                let why = e.to_string().replace(url, &shown_url);
                return fail(format!("broker {shown_url} queue {name}: {why}"));
            }
        }
    }
    let mut shown = 0u64;
    loop {
        let list: Vec<(&str, &dyn Broker)> = brokers
            .iter()
            .map(|(n, b)| (n.as_str(), &**b as &dyn Broker))
            .collect();
        let s = match ClusterStatus::collect(&list) {
            Ok(s) => s,
            Err(e) => return fail(format!("broker {shown_url}: {e}")),
        };
        if args.json {
            let snapshot = serde_json::json!({
                "source": "broker",
                "address": shown_url,
                "unix_ms": s.unix_ms,
                "cluster": s,
            });
            println!("{snapshot}");
        } else {
            if shown > 0 {
                println!();
            }
            print!("{}", cluster_table(&shown_url, &s));
        }
        shown += 1;
        if !next(args, shown) {
            return ExitCode::SUCCESS;
        }
    }
}

/// A cluster snapshot as a table: each queue, then each worker.
fn cluster_table(url: &str, s: &ClusterStatus) -> String {
    let mut out = format!("broker {url}  ({:.1} tasks/s)\n", s.done_per_sec);
    out.push_str(&format!(
        "  {:<16} {:>8} {:>9} {:>10} {:>5} {:>8} {:>8} {:>8}\n",
        "queue", "queued", "in flight", "unfinished", "dead", "workers", "done", "tasks/s"
    ));
    for q in &s.queues {
        out.push_str(&format!(
            "  {:<16} {:>8} {:>9} {:>10} {:>5} {:>8} {:>8} {:>8.1}\n",
            q.name,
            q.queued,
            q.in_flight,
            q.unfinished,
            q.dead_letters,
            q.workers,
            q.done,
            q.done_per_sec
        ));
    }
    if s.workers.is_empty() {
        out.push_str("  no workers\n");
        return out;
    }
    out.push_str(&format!(
        "  {:<28} {:<12} {:<16} {:>7} {:>7} {:>8} {:>8} {:>9}\n",
        "worker", "queue", "host", "pid", "running", "done", "tasks/s", "heartbeat"
    ));
    for w in &s.workers {
        out.push_str(&format!(
            "  {:<28} {:<12} {:<16} {:>7} {:>3}/{:<3} {:>8} {:>8.1} {:>8.1}s\n",
            w.id,
            w.queue,
            w.host,
            w.pid,
            w.running,
            w.concurrency,
            w.done,
            w.done_per_sec,
            w.heartbeat_age_ms as f64 / 1000.0
        ));
    }
    out
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// One snapshot as a JSON object: `{"source": "manager", "address",
/// "unix_ms", "manager": {the server's counters}}`.
fn json(address: &Address, stats: &Stats) -> String {
    let snapshot = serde_json::json!({
        "source": "manager",
        "address": address.to_string(),
        "unix_ms": unix_ms(),
        "manager": stats,
    });
    snapshot.to_string()
}

fn table(address: &Address, s: &Stats) -> String {
    let rows: [(&str, u64); 9] = [
        ("connections", s.connections),
        ("channels", s.channels),
        ("calls in channels", s.in_channel),
        ("objects", s.objects),
        ("owner deaths", s.owner_deaths),
        ("items returned", s.items_returned),
        ("handshakes accepted", s.handshakes_accepted),
        ("handshakes refused", s.handshakes_refused),
        ("handshakes pending", s.handshakes_pending),
    ];
    let mut out = format!("manager {address}\n");
    for (name, v) in rows {
        out.push_str(&format!("  {name:<20} {v}\n"));
    }
    out
}

/// The most a stats socket may send for one snapshot.
const SOCKET_LIMIT: u64 = 16 << 20;

/// How long to wait for a stats socket's snapshot.
const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);

/// One snapshot from the stats socket at `path`.
pub(crate) fn read_socket(path: &Path) -> Result<Status, String> {
    let why = |e: std::io::Error| format!("stats socket {}: {e}", path.display());
    let s = UnixStream::connect(path).map_err(why)?;
    s.set_read_timeout(Some(SOCKET_TIMEOUT)).map_err(why)?;
    let mut line = String::new();
    s.take(SOCKET_LIMIT + 1)
        .read_to_string(&mut line)
        .map_err(why)?;
    if line.len() as u64 > SOCKET_LIMIT {
        return Err(format!(
            "stats socket {}: a snapshot over {} MiB",
            path.display(),
            SOCKET_LIMIT >> 20
        ));
    }
    if line.is_empty() {
        return Err(format!(
            "stats socket {}: closed without a snapshot",
            path.display()
        ));
    }
    serde_json::from_str(&line)
        .map_err(|e| format!("stats socket {}: not a snapshot: {e}", path.display()))
}

/// `spindle status --socket PATH`: `--json` prints each [`Status`] as
/// the socket sent it (the schema of the dashboard's `/api/status`).
pub(crate) fn status_socket(
    path: &Path,
    json: bool,
    watch: Option<Duration>,
    count: Option<u64>,
) -> ExitCode {
    let mut shown = 0u64;
    loop {
        let status = match read_socket(path) {
            Ok(s) => s,
            Err(why) => return fail(why),
        };
        if json {
            match serde_json::to_string(&status) {
                Ok(line) => println!("{line}"),
                Err(e) => return fail(format!("stats socket {}: {e}", path.display())),
            }
        } else {
            if shown > 0 {
                println!();
            }
            print!("{}", socket_table(path, &status));
        }
        shown += 1;
        match watch {
            Some(d) if count.is_none_or(|n| shown < n) => std::thread::sleep(d),
            _ => return ExitCode::SUCCESS,
        }
    }
}

fn opt_ns(v: Option<u64>) -> String {
    v.map_or_else(
        || "-".to_string(),
        |ns| format!("{:.3} ms", ns as f64 / 1e6),
    )
}

fn socket_table(path: &Path, s: &Status) -> String {
    let mut out = format!(
        "socket {} (pid {}, up {:.1} s)\n",
        path.display(),
        s.pid,
        s.uptime_ms as f64 / 1000.0
    );
    for (name, p) in &s.pools {
        out.push_str(&format!("pool {name}\n"));
        let rows: [(&str, String); 14] = [
            ("workers alive", p.workers_alive.to_string()),
            ("workers busy", p.workers_busy.to_string()),
            ("tasks submitted", p.tasks_submitted.to_string()),
            ("tasks pending", p.tasks_pending.to_string()),
            ("tasks running", p.tasks_running.to_string()),
            ("tasks completed", p.tasks_completed.to_string()),
            ("tasks failed", p.tasks_failed.to_string()),
            ("tasks panicked", p.tasks_panicked.to_string()),
            ("tasks cancelled", p.tasks_cancelled.to_string()),
            ("workers lost", p.workers_lost.to_string()),
            ("tasks retried", p.tasks_retried.to_string()),
            ("task time mean", opt_ns(p.task_time_mean_ns)),
            ("task time p50", opt_ns(p.task_time_p50_ns)),
            ("task time p99", opt_ns(p.task_time_p99_ns)),
        ];
        for (k, v) in rows {
            out.push_str(&format!("  {k:<20} {v}\n"));
        }
    }
    for (name, q) in &s.queues {
        out.push_str(&format!("queue {name}\n"));
        for (k, v) in [
            ("qsize", q.qsize),
            ("unfinished", q.unfinished),
            ("puts", q.puts),
            ("gets", q.gets),
        ] {
            out.push_str(&format!("  {k:<20} {v}\n"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            redacted("redis://:s3cret@h:6379/0"),
            "redis://:***@h:6379/0"
        );
        assert_eq!(redacted("redis://u:s3cret@h"), "redis://u:***@h");
        assert_eq!(
            redacted("unix:///run/r.sock?db=1&pass=s3cret"),
            "unix:///run/r.sock?db=1&pass=***"
        );
        assert_eq!(redacted("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(redacted("redis://h:1/"), "redis://h:1/");
    }

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_interval("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_interval("3"), Ok(Duration::from_secs(3)));
        assert!(parse_interval("0s").is_err());
        assert!(parse_interval("1h").is_err());
        assert!(parse_interval("x").is_err());
    }
}
