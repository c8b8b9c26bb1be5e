//! `spindle tour`: a short guided demo of every capability, each section
//! narrating what it shows and printing a ✓/✗ verdict for what it really checked.
//!
//! A section is a file beside this one exposing `pub(crate) fn run(t: &mut Tour)`,
//! registered in [`SECTIONS`]. Inside, `t.say(..)` narrates and
//! `t.check(what, ok, detail)` records one verdict. A section that panics counts
//! as a failed check; the tour goes on with the next section.

use std::panic::{self, AssertUnwindSafe};
use std::process::ExitCode;
use std::time::Instant;

mod aio;
mod futures;
mod lockorder;
mod manager;
mod pool;
mod process;
mod queue;
mod sched;
mod sync;
mod thread;

/// One tour section: its key (for `spindle tour KEY`), its title, its body.
struct Section {
    key: &'static str,
    title: &'static str,
    run: fn(&mut Tour),
}

/// Every section, in the order the tour shows them.
const SECTIONS: &[Section] = &[
    Section {
        key: "thread",
        title: "threads: threading.Thread, join with timeout, daemon, StopToken, Local",
        run: thread::run,
    },
    Section {
        key: "sync",
        title: "Synchronisation objects: Lock, RLock, Semaphore, Event, Condition, Barrier",
        run: sync::run,
    },
    Section {
        key: "sched",
        title: "Timer and Scheduler (threading.Timer, sched.scheduler)",
        run: sched::run,
    },
    Section {
        key: "lockorder",
        title: "Deadlocks: ordered acquire, lock-order checker, deadlock detector and recovery",
        run: lockorder::run,
    },
    Section {
        key: "queue",
        title: "queue: Queue, LifoQueue, PriorityQueue, task_done/join, shutdown, async",
        run: queue::run,
    },
    Section {
        key: "futures",
        title: "concurrent.futures: Future, ThreadPoolExecutor, as_completed, map",
        run: futures::run,
    },
    Section {
        key: "process",
        title: "multiprocessing: Process per start method, Pipe, ipc::Queue, shared Value",
        run: process::run,
    },
    Section {
        key: "pool",
        title: "Process pools that never hang: Pool, ProcessPoolExecutor, a worker killed mid-task",
        run: pool::run,
    },
    Section {
        key: "manager",
        title: "multiprocessing.managers: Manager() dict and Queue shared with a child process and a thread",
        run: manager::run,
    },
    Section {
        key: "aio",
        title: "asyncio, actors, an echo server (spindle-aio): gather, TaskGroup, ask, echo",
        run: aio::run,
    },
];

/// The running tour: counts verdicts and prints them.
#[derive(Debug, Default)]
pub(crate) struct Tour {
    passed: usize,
    failed: Vec<String>,
    section: &'static str,
}

impl Tour {
    /// Narrates one line of the section.
    pub(crate) fn say(&mut self, line: impl AsRef<str>) {
        println!("    {}", line.as_ref());
    }

    /// Records a verdict that the section actually checked: `ok` is the result of
    /// the check, `detail` the evidence (e.g. the value reached).
    ///
    /// Returns `ok`, so a section can stop early when a check fails.
    pub(crate) fn check(&mut self, what: &str, ok: bool, detail: impl AsRef<str>) -> bool {
        let detail = detail.as_ref();
        let sep = if detail.is_empty() { "" } else { " — " };
        if ok {
            self.passed += 1;
            println!("  ✓ {what}{sep}{detail}");
        } else {
            self.failed
                .push(format!("[{}] {what}{sep}{detail}", self.section));
            println!("  ✗ {what}{sep}{detail}");
        }
        ok
    }
}

/// Runs the tour (all sections, or the named ones); exit status 1 if any check
/// failed, 2 for an unknown section name.
pub(crate) fn main(only: &[String], list: bool) -> ExitCode {
    if list {
        for s in SECTIONS {
            println!("{:<12} {}", s.key, s.title);
        }
        return ExitCode::SUCCESS;
    }
    if let Some(bad) = only.iter().find(|k| !SECTIONS.iter().any(|s| s.key == *k)) {
        let keys: Vec<_> = SECTIONS.iter().map(|s| s.key).collect();
        eprintln!(
            "spindle tour: no section {bad:?} (sections: {})",
            keys.join(", ")
        );
        return ExitCode::from(2);
    }
    let started = Instant::now();
    let mut tour = Tour::default();
    println!("spindle tour — Python's concurrency model in Rust, every result checked\n");
    for s in SECTIONS
        .iter()
        .filter(|s| only.is_empty() || only.iter().any(|k| k == s.key))
    {
        println!("── {} ──", s.title);
        tour.section = s.key;
        let t0 = Instant::now();
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| (s.run)(&mut tour)));
        if let Err(payload) = outcome {
            let msg = panic_message(&*payload);
            tour.check("section ran to the end", false, format!("panicked: {msg}"));
        }
        println!("  ({:.2} s)\n", t0.elapsed().as_secs_f64());
    }
    println!(
        "{} checks passed, {} failed in {:.1} s",
        tour.passed,
        tour.failed.len(),
        started.elapsed().as_secs_f64()
    );
    if tour.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &tour.failed {
            println!("  ✗ {f}");
        }
        ExitCode::FAILURE
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_owned()
    }
}
