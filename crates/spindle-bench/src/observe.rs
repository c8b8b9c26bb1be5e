//! Suite `observe`: what watching the work costs.
//!
//! - `progress_overhead`: `Pool::imap_unordered` of 100,000 tiny tasks
//!   (20,000 with `--quick`) on one worker process per core, tasks/s,
//!   consumed three ways:
//!   - `spindle`: with a bar drawn the way the `spindle` command draws its
//!     own (`crates/spindle-cli/src/progress.rs`): a relaxed atomic add per
//!     result, and a ticker thread that copies the count to an indicatif
//!     bar ten times a second;
//!   - `indicatif-iter`: with a bar through indicatif's `ProgressIterator`
//!     (`.progress_with(bar)`, as `examples/pool_progress.rs` and tqdm do):
//!     `ProgressBar::inc` per result, which reads the clock each time;
//!   - `none`: plainly.
//!
//!   The bars draw to [`Sink`], a terminal that renders every frame and
//!   discards it (at most 20 frames a second, indicatif's default): the
//!   bar's whole cost is paid whatever stderr is, but for the write to a
//!   real terminal. Each run with a bar checks that it drew. The pool is
//!   started once, before the rounds.
//!
//! - `stats_overhead`: `Pool::map` of 10,000 tiny tasks with `chunksize`
//!   1 (`pool/map_chunk1`; 3,000 with `--quick`), tasks/s, on a pool
//!   shown by a spindle-dashboard: `spindle` with a client polling its
//!   `/api/status` 10 times a second meanwhile ([`map_polled`]), `none`
//!   unpolled ([`map_plain`]).
//! - `dashboard_api_latency`: the p99 of 200 `GET /api/status` (50 with
//!   `--quick`), each on a new connection, in milliseconds: `spindle` with
//!   50 SSE clients reading `/api/events` (one event a second each), `none`
//!   on a second dashboard of the same pool with no SSE client.
//!
//! For callgrind, each impl's run is a function of its own
//! ([`with_counted_bar`] and its [`ticker`], [`with_iter_bar`], [`plain`]),
//! whose inclusive instruction counts `callgrind_annotate --inclusive=yes`
//! shows (docs/BENCHMARKS.md has the commands).

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressIterator, TermLike};
use spindle::process::Pool;
use spindle_dashboard::{Dashboard, TaskLog};

use super::{Bench, Unit, imp, per_sec};

/// The tiny task (`x + 1`).
#[spindle::task]
fn bump(x: u64) -> u64 {
    x + 1
}

/// A terminal 80 columns wide that counts what it is sent and drops it.
#[derive(Debug, Default)]
struct Sink {
    writes: AtomicU64,
}

impl Sink {
    fn wrote(&self) -> std::io::Result<()> {
        self.writes.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

/// Shares one [`Sink`] with the bar that owns its box.
#[derive(Debug)]
struct Shared(Arc<Sink>);

impl TermLike for Shared {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, _: usize) -> std::io::Result<()> {
        self.0.wrote()
    }
    fn move_cursor_down(&self, _: usize) -> std::io::Result<()> {
        self.0.wrote()
    }
    fn move_cursor_right(&self, _: usize) -> std::io::Result<()> {
        self.0.wrote()
    }
    fn move_cursor_left(&self, _: usize) -> std::io::Result<()> {
        self.0.wrote()
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        black_box(s);
        self.0.wrote()
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        black_box(s);
        self.0.wrote()
    }
    fn clear_line(&self) -> std::io::Result<()> {
        self.0.wrote()
    }
    fn flush(&self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A bar of `n` drawing on a fresh [`Sink`].
fn sink_bar(n: u64) -> (ProgressBar, Arc<Sink>) {
    let sink = Arc::new(Sink::default());
    let target = ProgressDrawTarget::term_like_with_hz(Box::new(Shared(sink.clone())), 20);
    (ProgressBar::with_draw_target(Some(n), target), sink)
}

/// How often [`ticker`] copies the count to the bar.
const TICK: Duration = Duration::from_millis(100);

/// Copies `done` to `bar` every [`TICK`] until `stop` says so (or its
/// sender is gone).
#[inline(never)]
fn ticker(bar: &ProgressBar, done: &AtomicU64, stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(TICK) {
        bar.set_position(done.load(Ordering::Relaxed));
    }
}

/// `imap_unordered` of `n` tiny tasks, counted by a relaxed atomic add per
/// result that a [`ticker`] thread copies to a bar drawn on a [`Sink`];
/// how many writes the bar made.
#[inline(never)]
fn with_counted_bar(pool: &Pool, n: u64) -> u64 {
    let (bar, sink) = sink_bar(n);
    let done = AtomicU64::new(0);
    let (stop, stopped) = mpsc::channel();
    let sum = std::thread::scope(|s| {
        let (bar, done) = (&bar, &done);
        s.spawn(move || ticker(bar, done, &stopped));
        let mut sum = 0u64;
        for r in pool.imap_unordered(bump::call, 0..n) {
            sum += r.expect("a tiny task");
            done.fetch_add(1, Ordering::Relaxed);
        }
        stop.send(()).ok();
        sum
    });
    assert_eq!(sum, n * (n + 1) / 2);
    bar.set_position(done.load(Ordering::Relaxed));
    bar.finish();
    sink.writes.load(Ordering::Relaxed)
}

/// `imap_unordered` of `n` tiny tasks through indicatif's
/// `ProgressIterator` on a bar drawn on a [`Sink`]; how many writes the
/// bar made.
#[inline(never)]
fn with_iter_bar(pool: &Pool, n: u64) -> u64 {
    let (bar, sink) = sink_bar(n);
    let mut sum = 0u64;
    for r in pool.imap_unordered(bump::call, 0..n).progress_with(bar) {
        sum += r.expect("a tiny task");
    }
    assert_eq!(sum, n * (n + 1) / 2);
    sink.writes.load(Ordering::Relaxed)
}

/// `imap_unordered` of `n` tiny tasks, consumed plainly.
#[inline(never)]
fn plain(pool: &Pool, n: u64) {
    let mut sum = 0u64;
    for r in pool.imap_unordered(bump::call, 0..n) {
        sum += r.expect("a tiny task");
    }
    assert_eq!(sum, n * (n + 1) / 2);
}

/// One `GET path` on a new connection; panics unless it is a 200.
fn http_get(addr: SocketAddr, path: &str) {
    let mut s = TcpStream::connect(addr).expect("connect to the dashboard");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    assert!(
        out.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&out)
    );
}

/// `Pool::map` of `n` tiny tasks, chunksize 1, while a thread polls the
/// dashboard at `addr` every 100 ms (from the start); how many polls it
/// made. The poller stops as soon as the map is done (a channel, not a
/// sleep, so its wait is not timed).
#[inline(never)]
fn map_polled(pool: &Pool, n: u64, addr: SocketAddr) -> u64 {
    let polls = AtomicU64::new(0);
    let (stop, stopped) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let polls = &polls;
        s.spawn(move || {
            loop {
                http_get(addr, "/api/status");
                polls.fetch_add(1, Ordering::Relaxed);
                if !matches!(
                    stopped.recv_timeout(TICK),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            }
        });
        map_plain(pool, n);
        stop.send(()).ok();
    });
    polls.load(Ordering::Relaxed)
}

/// `Pool::map` of `n` tiny tasks, chunksize 1.
#[inline(never)]
fn map_plain(pool: &Pool, n: u64) {
    let out = pool.map_chunked(bump::call, 0..n, 1).expect("no failure");
    assert_eq!(out.last(), Some(&n));
    black_box(out);
}

/// The p99 of `n` `GET /api/status` on new connections, in milliseconds.
fn status_p99_ms(addr: SocketAddr, n: usize) -> f64 {
    let mut ms: Vec<f64> = (0..n)
        .map(|_| {
            let t = std::time::Instant::now();
            http_get(addr, "/api/status");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    ms[(n * 99).div_ceil(100).clamp(1, n) - 1]
}

/// `clients` threads each reading `/api/events` from `addr` until `stop`.
fn sse_clients(
    addr: SocketAddr,
    clients: usize,
    stop: &Arc<AtomicBool>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..clients)
        .map(|_| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut s = TcpStream::connect(addr).expect("connect");
                s.set_read_timeout(Some(Duration::from_millis(200))).ok();
                write!(s, "GET /api/events HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("send");
                let mut buf = [0u8; 16 << 10];
                while !stop.load(Ordering::Relaxed) {
                    match s.read(&mut buf) {
                        Ok(0) => return,
                        Ok(_) => {}
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(_) => return,
                    }
                }
            })
        })
        .collect()
}

fn dashboard_cases(b: &mut Bench, cores: usize) {
    let pool = Arc::new(Pool::new(cores).expect("a process pool"));
    let log = TaskLog::new(1000);
    for i in 0..50 {
        let id = log.pending("bump", &format!("x={i}"));
        log.finished(id, None);
    }
    let serve = || {
        let p = pool.clone();
        Dashboard::builder()
            .pool("bench", move || p.stats())
            .tasks(&log)
            .serve()
            .expect("a dashboard")
    };
    if b.wants("stats_overhead") {
        let n: u64 = if b.quick() { 3_000 } else { 10_000 };
        let dash = serve();
        b.case(
            "stats_overhead",
            Unit::TasksPerSec,
            vec![
                imp("spindle", || {
                    per_sec(n, |n| {
                        let polls = map_polled(&pool, n, dash.addr());
                        assert!(polls > 0, "the dashboard was never polled");
                    })
                }),
                imp("none", || per_sec(n, |n| map_plain(&pool, n))),
            ],
        );
    }
    if b.wants("dashboard_api_latency") {
        let n = if b.quick() { 50 } else { 200 };
        let busy = serve();
        let idle = serve();
        let stop = Arc::new(AtomicBool::new(false));
        let clients = sse_clients(busy.addr(), 50, &stop);
        b.case(
            "dashboard_api_latency",
            Unit::Millis,
            vec![
                imp("spindle", || status_p99_ms(busy.addr(), n)),
                imp("none", || status_p99_ms(idle.addr(), n)),
            ],
        );
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().ok();
        }
    }
}

pub(crate) fn run(b: &mut Bench) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    dashboard_cases(b, cores);
    if !b.wants("progress_overhead") {
        return;
    }
    let n: u64 = if b.quick() { 20_000 } else { 100_000 };
    let pool = Pool::new(cores).expect("a process pool");
    b.case(
        "progress_overhead",
        Unit::TasksPerSec,
        vec![
            imp("spindle", || {
                per_sec(n, |n| {
                    let writes = with_counted_bar(&pool, n);
                    assert!(writes > 0, "the bar never drew");
                })
            }),
            imp("indicatif-iter", || {
                per_sec(n, |n| {
                    let writes = with_iter_bar(&pool, n);
                    assert!(writes > 0, "the bar never drew");
                })
            }),
            imp("none", || per_sec(n, |n| plain(&pool, n))),
        ],
    );
}
