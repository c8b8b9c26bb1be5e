//! Python Cookbook recipe 12.1: the `CountdownTask` class is a plain object
//! with a `run(n)` method, so the same code runs in a thread *or* in a
//! process:
//!
//! ```python
//! c = CountdownTask()
//! t = threading.Thread(target=c.run, args=(5,)); t.start(); t.join()
//! p = multiprocessing.Process(target=c.run, args=(5,)); p.start(); p.join()
//! ```
//!
//! spindle: `CountdownTask` is a serde struct and `run` one method. A
//! [`Thread`] calls it directly; a [`Process`] calls it through a one-line
//! `#[spindle::task]` (the arguments travel to the child as serde values where
//! Python pickles them). Both are driven by the same `start` / `join` code
//! below. The recipe's `terminate()` flag is left out: a flag set in the
//! parent is not seen by a child process (each has its own memory, as in
//! Python, where `terminate()` on the parent's object does not stop a
//! `Process` either); `thread_terminate_flag` shows it for a thread.
//!
//! The ticks are 20 ms instead of the recipe's 5 s.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spindle::process::Process;
use spindle::thread::{self, Thread};

const TICK: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CountdownTask {
    label: String,
}

impl CountdownTask {
    /// Python: `def run(self, n): while n > 0: print('T-minus', n); n -= 1; time.sleep(5)`.
    fn run(&self, mut n: u32) {
        while n > 0 {
            println!(
                "[{} in pid {}, thread {}] T-minus {n}",
                self.label,
                std::process::id(),
                thread::current_thread().name()
            );
            n -= 1;
            std::thread::sleep(TICK);
        }
    }
}

/// `c.run(n)` as a task, so a child process can run it.
#[spindle::task]
fn countdown_run(c: CountdownTask, n: u32) {
    c.run(n);
}

/// What `threading.Thread` and `multiprocessing.Process` share: `start()`
/// and `join()`.
enum Runner {
    Thread(Thread),
    Process(Box<Process>),
}

impl Runner {
    fn start(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        match self {
            Runner::Thread(t) => t.start()?,
            Runner::Process(p) => p.start()?,
        }
        Ok(())
    }

    fn join(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        match self {
            Runner::Thread(t) => t.join()?,
            Runner::Process(p) => p.join()?,
        }
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("parent: pid {}", std::process::id());
    let c = CountdownTask {
        label: "thread".into(),
    };
    let by_thread = Runner::Thread(Thread::builder().name("countdown").build(move || c.run(3)));
    let c = CountdownTask {
        label: "process".into(),
    };
    let by_process = Runner::Process(Box::new(Process::new(countdown_run::call(c, 3))));
    // The same code drives both.
    for mut r in [by_thread, by_process] {
        r.start()?;
        r.join()?;
    }
    println!("both counted down: the thread in this process, the process in its own");
    Ok(())
}
