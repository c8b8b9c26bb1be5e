//! Suite `observe`: what watching the work costs.
//!
//! - `progress_overhead`: `Pool::imap_unordered` of 100,000 tiny tasks
//!   (20,000 with `--quick`) on one worker process per core, consumed
//!   plainly (impl `none`) and through an indicatif progress bar (impl
//!   `spindle`: `.progress_with(bar)`, as `examples/pool_progress.rs` does
//!   and tqdm does in Python), tasks/s. The bar draws to [`Sink`], a
//!   terminal that renders every frame and discards it, at indicatif's
//!   default 20 frames a second: the bar's whole cost is paid whatever
//!   stderr is, but for the write to a real terminal. The run with the bar
//!   checks that it drew. The pool is started once, before the rounds.
//!
//! For callgrind, each impl's run is a function of its own ([`with_bar`],
//! [`plain`]), so `--toggle-collect` counts one impl's instructions in this
//! process (docs/BENCHMARKS.md has the command).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

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

/// `imap_unordered` of `n` tiny tasks through a bar drawn on a [`Sink`];
/// how many writes the bar made.
#[inline(never)]
fn with_bar(pool: &Pool, n: u64) -> u64 {
    let sink = Arc::new(Sink::default());
    let target = ProgressDrawTarget::term_like_with_hz(Box::new(Shared(sink.clone())), 20);
    let bar = ProgressBar::with_draw_target(Some(n), target);
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
                    let writes = with_bar(&pool, n);
                    assert!(writes > 0, "the bar never drew");
                })
            }),
            imp("none", || per_sec(n, |n| plain(&pool, n))),
        ],
    );
}
