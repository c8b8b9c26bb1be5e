//! The command's progress bars (indicatif), on standard error only.
//!
//! A bar is drawn only when [`spindle_workloads::bars_wanted`] says so:
//! standard error is a terminal, `--no-progress` was not given and `CI` is
//! not set. Standard output is never touched, so what scripts parse is the
//! same byte for byte with or without a bar.
//!
//! The workload adds to a [`Progress`] (a relaxed atomic add per file, in
//! whatever thread or, in the process mode, as each result comes back); a
//! ticker thread here copies the counts to the bar ten times a second, so
//! the workload never waits on the terminal.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use indicatif::{HumanBytes, ProgressBar, ProgressDrawTarget, ProgressStyle};
use spindle_workloads::Progress;

/// How often the ticker copies the counts to the bar.
const TICK: Duration = Duration::from_millis(100);

/// The bar being drawn, if any: lines written to stderr meanwhile (the
/// `--verbose` task starts) go through [`eprint_line`] so they do not
/// tear it.
static SHOWN: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Prints `line` on stderr, above the bar if one is drawn.
pub(crate) fn eprint_line(line: &str) {
    let shown = SHOWN.lock().unwrap_or_else(|p| p.into_inner()).clone();
    match shown {
        Some(bar) => bar.suspend(|| eprintln!("{line}")),
        None => eprintln!("{line}"),
    }
}

/// What a bar counts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Counts {
    /// Files, and the bytes they decoded to (`spindle robots`).
    FilesDecoded,
    /// Files written (`spindle gen-logs`).
    FilesWritten,
    /// Tasks done, of no known total (`spindle worker`).
    TasksDone,
}

/// A bar following a [`Progress`] until [`Watch::finish`] (or drop); does
/// nothing at all when bars are not wanted.
#[derive(Debug)]
pub(crate) struct Watch {
    progress: Arc<Progress>,
    shown: Option<Shown>,
}

#[derive(Debug)]
struct Shown {
    bar: ProgressBar,
    counts: Counts,
    stop: mpsc::Sender<()>,
    ticker: Option<JoinHandle<()>>,
}

impl Watch {
    /// Follows a run of `total` files (ignored for [`Counts::TasksDone`]);
    /// draws only if `wanted`.
    pub(crate) fn new(wanted: bool, total: u64, counts: Counts) -> Watch {
        let progress = Arc::new(Progress::new());
        if !wanted {
            return Watch {
                progress,
                shown: None,
            };
        }
        let template = match counts {
            Counts::FilesDecoded => "{spinner} [{elapsed}] {bar:30} {pos}/{len} files, {msg}",
            Counts::FilesWritten => "{spinner} [{elapsed}] {bar:30} {pos}/{len} files written",
            Counts::TasksDone => "{spinner} [{elapsed}] {pos} tasks done ({per_sec})",
        };
        let total = match counts {
            Counts::TasksDone => None,
            _ => Some(total),
        };
        let style = ProgressStyle::with_template(template)
            .expect("a valid template")
            .progress_chars("=> ");
        let bar =
            ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr()).with_style(style);
        update(&bar, &progress, counts);
        bar.force_draw();
        *SHOWN.lock().unwrap_or_else(|p| p.into_inner()) = Some(bar.clone());
        let (stop, stopped) = mpsc::channel::<()>();
        let ticker = {
            let (bar, progress) = (bar.clone(), progress.clone());
            std::thread::Builder::new()
                .name("progress".into())
                .spawn(move || {
                    while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(TICK) {
                        update(&bar, &progress, counts);
                    }
                })
                .ok()
        };
        Watch {
            progress,
            shown: Some(Shown {
                bar,
                counts,
                stop,
                ticker,
            }),
        }
    }

    /// The counters for the run to add to.
    pub(crate) fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Stops the ticker and draws the bar's final counts, left on its own
    /// line (as tqdm's default `leave=True`).
    pub(crate) fn finish(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let Some(mut shown) = self.shown.take() else {
            return;
        };
        shown.stop.send(()).ok();
        if let Some(t) = shown.ticker.take() {
            t.join().ok();
        }
        update(&shown.bar, &self.progress, shown.counts);
        *SHOWN.lock().unwrap_or_else(|p| p.into_inner()) = None;
        shown.bar.finish();
        // indicatif leaves the cursor at the end of the bar: what comes
        // next (stdout, on the same terminal) starts on a line of its own.
        eprintln!();
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `spindle worker`'s bar: tasks done, drawn from the worker's first
/// report (after its "serving" line) and finished when it stops (before
/// its last line), by the same rules as every bar.
pub(crate) fn worker_observer(wanted: bool) -> impl Fn(spindle_cluster::WorkerProgress) + Sync {
    use spindle_cluster::WorkerProgress;
    let state: Mutex<(Option<Watch>, u64)> = Mutex::new((None, 0));
    move |p| {
        if !wanted {
            return;
        }
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        let (watch, counted) = &mut *st;
        let (stats, stopped) = match p {
            WorkerProgress::Serving(s) => (s, false),
            WorkerProgress::Stopped(s) => (s, true),
        };
        let w = watch.get_or_insert_with(|| Watch::new(true, 0, Counts::TasksDone));
        let progress = w.progress();
        while *counted < stats.done {
            progress.add(0);
            *counted += 1;
        }
        if stopped && let Some(w) = watch.take() {
            w.finish();
        }
    }
}

fn update(bar: &ProgressBar, progress: &Progress, counts: Counts) {
    if let Counts::FilesDecoded = counts {
        bar.set_message(format!("{} decoded", HumanBytes(progress.bytes())));
    }
    bar.set_position(progress.items());
}
