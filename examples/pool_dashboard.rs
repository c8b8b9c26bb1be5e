//! A Flower-style dashboard of a process pool, embedded in the program: the
//! spindle counterpart of watching a Celery worker pool in Flower (Python's
//! own pools have no dashboard).
//!
//! ```python
//! # celery -A tasks flower      # then open http://localhost:5555/
//! ```
//!
//! spindle: `spindle_dashboard::Dashboard` serves the pool's stats, its
//! workers and a log of its tasks on 127.0.0.1 (a free port); a
//! `stats::serve` socket serves the same numbers to `spindle status
//! --socket`. To stay an example that ends by itself, it runs 40 tasks,
//! reads its own `/api/status` and `/api/tasks` once over plain HTTP and
//! stops; `spindle dashboard --demo` is the one to open in a browser.

use std::io::{Read, Write};
use std::sync::Arc;

use spindle::process::ProcessPoolExecutor;
use spindle::stats;
use spindle_dashboard::{Dashboard, TaskLog, TaskState};

#[spindle::task]
fn square(x: u64) -> u64 {
    x * x
}

/// One GET over a plain TCP connection; the body.
fn get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect(addr)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let log = TaskLog::new(1000);
    let pool = Arc::new(
        ProcessPoolExecutor::builder()
            .max_workers(2)
            .on_task_start(log.observer())
            .build()?,
    );
    let dash = Dashboard::builder()
        .process_pool("squares", &pool)
        .tasks(&log)
        .serve()?;
    println!("dashboard on {}", dash.url());

    let futures: Vec<_> = (0..40u64)
        .map(|x| log.submit(&*pool, "square", &format!("x={x}"), square::call(x)))
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let total: u64 = futures.iter().map(|f| f.result().unwrap_or(0)).sum();
    println!("sum of squares: {total}");

    let status: stats::Status = serde_json::from_str(&get(dash.addr(), "/api/status")?)?;
    let p = &status.pools["squares"];
    println!(
        "/api/status: {} submitted, {} completed, {} workers",
        p.tasks_submitted, p.tasks_completed, p.workers_alive
    );
    // A future's done-callbacks (which update the log) run just after its
    // result is set: wait for the last of them.
    let start = std::time::Instant::now();
    while log.recent(Some(TaskState::Done), 1000).len() < futures.len() {
        if start.elapsed() > std::time::Duration::from_secs(30) {
            return Err("the task log missed a task".into());
        }
        std::thread::yield_now();
    }
    println!("task log: {} done", futures.len());
    Ok(())
}
