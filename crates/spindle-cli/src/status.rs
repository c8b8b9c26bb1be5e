//! `spindle status`: what a running manager server is doing — its
//! connections, channels, objects and handshakes — or, with `--socket`,
//! what a program's stats socket (`spindle::stats::serve`) reports — its
//! pools and queues — as a table or as JSON, once or every `--watch`
//! interval.
//!
//! Exit codes: 0 after the snapshots; 2 when the source cannot be read
//! (a missing key file, a server that does not answer or refuses the key,
//! a socket nobody serves), with one line on stderr saying why.

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use spindle::ipc::Address;
use spindle::manager::{Manager, Stats};
use spindle::stats::Status;

/// What to watch, from the command line.
#[derive(Debug)]
pub(crate) struct StatusArgs {
    pub(crate) manager: Address,
    pub(crate) authkey_file: PathBuf,
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

/// `spindle status --manager ADDR --authkey-file F`.
pub(crate) fn status(args: StatusArgs) -> ExitCode {
    let key = match std::fs::read(&args.authkey_file) {
        Ok(k) => k,
        Err(e) => {
            return fail(format!(
                "cannot read the authkey file {}: {e}",
                args.authkey_file.display()
            ));
        }
    };
    let m = match Manager::connect(args.manager.clone(), &key) {
        Ok(m) => m,
        Err(e) => return fail(format!("manager at {}: {e}", args.manager)),
    };
    let mut shown = 0u64;
    loop {
        let stats = match m.stats() {
            Ok(s) => s,
            Err(e) => return fail(format!("manager at {}: {e}", args.manager)),
        };
        if args.json {
            println!("{}", json(&args.manager, &stats));
        } else {
            if shown > 0 {
                println!();
            }
            print!("{}", table(&args.manager, &stats));
        }
        shown += 1;
        match args.watch {
            Some(d) if args.count.is_none_or(|n| shown < n) => std::thread::sleep(d),
            _ => return ExitCode::SUCCESS,
        }
    }
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
