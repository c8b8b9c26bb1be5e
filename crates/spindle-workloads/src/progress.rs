//! Progress of a workload run, for a caller to show (the `spindle` command
//! draws a progress bar from it; this crate draws nothing and links no
//! progress-bar crate).
//!
//! A run adds to a [`Progress`] as each item finishes: a file scanned,
//! decoded or written. The counters are relaxed atomics, one add per file,
//! so the hot path pays next to nothing, and the caller polls them from
//! any thread at its own pace. In the process mode the counts are taken in
//! the parent as each result comes back (in order: `map` hands results back
//! in the order of the files, as Python's `Executor.map` does).

#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};

/// Items done and bytes handled so far by a run; see the module docs.
#[derive(Debug, Default)]
pub struct Progress {
    items: AtomicU64,
    bytes: AtomicU64,
}

impl Progress {
    /// Both counters at 0.
    pub fn new() -> Progress {
        Progress::default()
    }

    /// One more item done, having handled `bytes` bytes (decoded bytes for
    /// `robots`, 0 where a run counts no bytes).
    #[inline]
    pub fn add(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        self.items.fetch_add(1, Ordering::Relaxed);
    }

    /// Items done so far.
    pub fn items(&self) -> u64 {
        self.items.load(Ordering::Relaxed)
    }

    /// Bytes handled so far.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// The rule of the `spindle` command and `spindle-bench` for drawing
/// progress bars: never with `--no-progress` (`no_progress`), never when
/// the `CI` environment variable is set (to anything, even empty), never
/// when standard error is not a terminal. Bars only ever go to standard
/// error, so standard output is the same either way.
pub fn bars_wanted(no_progress: bool) -> bool {
    use std::io::IsTerminal;
    !no_progress && std::env::var_os("CI").is_none() && std::io::stderr().is_terminal()
}
