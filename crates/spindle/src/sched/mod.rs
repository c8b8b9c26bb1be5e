//! Doing things later: [`Timer`] (Python's `threading.Timer`, plus a bounded
//! repeating variant) and [`Scheduler`] (Python's `sched.scheduler`), both reading
//! a pluggable [`Clock`] so that tests run on virtual time.
//!
//! # Which one should I use?
//!
//! - One function, once, after a delay, in its own thread: [`Timer::new`].
//! - The same function every `interval`, `count` times: [`Timer::repeating`].
//! - Many actions at given times or delays, in time then priority order, run by a
//!   thread you choose (`run()` blocks; `run_pending()` does what is due and says
//!   how long until the next): [`Scheduler`].
//!
//! # Time
//!
//! Both read a [`Clock`]: [`MonotonicClock`] (the default, real time) or
//! [`VirtualClock`] (time moves when a test advances it, or jumps to each
//! deadline in auto-advance mode). A sleeping scheduler or timer is woken early
//! through a [`Wakeup`] when something sooner is entered or when it is cancelled.
//!
//! # Examples
//!
//! ```
//! use spindle::sched::{Scheduler, Timer};
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! let (tx, rx) = mpsc::channel();
//! let sched = Scheduler::new();
//! for (delay_ms, priority, word) in [(2, 1, "world"), (1, 1, "hello")] {
//!     let tx = tx.clone();
//!     sched.enter(Duration::from_millis(delay_ms), priority, move || tx.send(word).unwrap());
//! }
//! sched.run().unwrap();
//! assert_eq!(rx.try_iter().collect::<Vec<_>>(), ["hello", "world"]);
//!
//! let timer = Timer::new(Duration::from_millis(1), move || tx.send("timer").unwrap());
//! timer.start().unwrap();
//! assert_eq!(rx.recv().unwrap(), "timer");
//! timer.join().unwrap();
//! ```

#![forbid(unsafe_code)]

mod clock;
mod error;
mod event;
mod scheduler;
mod timer;
mod virtual_clock;

pub use clock::{Clock, MonotonicClock, WaitOutcome, WakeToken, Wakeup};
pub use error::{ActionPanicked, CancelError, JoinError, StartError};
pub use event::ScheduledEvent;
pub use scheduler::Scheduler;
pub use timer::Timer;
pub use virtual_clock::VirtualClock;
