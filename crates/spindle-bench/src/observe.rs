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
//! For callgrind, each impl's run is a function of its own
//! ([`with_counted_bar`] and its [`ticker`], [`with_iter_bar`], [`plain`]),
//! whose inclusive instruction counts `callgrind_annotate --inclusive=yes`
//! shows (docs/BENCHMARKS.md has the commands).

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressIterator, TermLike};
use spindle::process::Pool;

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

pub(crate) fn run(b: &mut Bench) {
    if !b.wants("progress_overhead") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
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
