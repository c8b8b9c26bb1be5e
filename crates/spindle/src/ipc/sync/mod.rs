//! Synchronisation objects shared between processes (Python's
//! `multiprocessing.Lock`, `RLock`, `Semaphore`, `BoundedSemaphore`,
//! `Event`, `Condition`, `Barrier`).
//!
//! Each object is a few words of shared memory (a `memfd` mapped
//! `MAP_SHARED`) and sleeps on futexes, which work across processes. The API
//! is the one of [`spindle::sync`](crate::sync) — same names, same
//! `verb`/`try_verb`/`verb_timeout`/`verb_deadline` family, same errors —
//! except that constructors return `io::Result` (the shared memory may fail to
//! be made). A handle crosses into a child as a `#[spindle::task]` argument
//! (its descriptor travels with the call, under every start method) or by
//! being captured by a `Fork` closure; `clone` gives another handle to the
//! same object.
//!
//! # Which one should I use?
//!
//! To share *data*, use [`Value`](crate::ipc::Value) / [`Array`](crate::ipc::Array),
//! which carry their own lock. The objects here are for the other patterns,
//! as in [`spindle::sync`](crate::sync); between threads of one process,
//! prefer `spindle::sync`, which is faster.
//!
//! # When a process dies
//!
//! * A [`Lock`] or [`RLock`] records its holder (process id, resp. thread
//!   id). A waiter that sleeps a while (2 ms, doubling up to 200 ms) without
//!   the lock changing checks whether the holder still runs
//!   (`/proc/<id>/stat`, zombies count as dead) and, if not, takes the lock
//!   over: the acquisition **succeeds** and `owner_deaths()` counts it. What
//!   the dead holder protected may be half-updated, as with a robust mutex.
//!   (Python's locks stay locked forever.)
//! * [`Semaphore`], [`BoundedSemaphore`] and [`Event`] hold no lock at all; a
//!   permit taken by a process that dies is lost, as in Python.
//! * [`Condition`] and [`Barrier`] use such a lock internally; a process
//!   that dies *waiting* still counts as a waiter (its notification goes to
//!   the next waiter; a barrier may trip one party short).
//!
//! # Examples
//!
//! ```
//! use spindle::ipc::sync::Lock;
//! use spindle::process::{Process, StartMethod};
//!
//! let lock = Lock::new()?;
//! let held = lock.clone();
//! let mut p = Process::builder()
//!     .closure(move || {
//!         held.acquire();
//!         // ...and die without releasing it.
//!         std::process::exit(3);
//!     })
//!     .start_method(StartMethod::Fork)
//!     .start()?;
//! let _ = p.join();
//! lock.acquire(); // taken over from the dead child, not a hang
//! assert_eq!(lock.owner_deaths(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod barrier;
mod condition;
pub(crate) mod core;
mod event;
mod lock;
mod rlock;
mod semaphore;

pub use barrier::Barrier;
pub use condition::{Condition, ConditionGuard, SharedLock};
pub use event::Event;
pub use lock::{Lock, LockGuard};
pub use rlock::{RLock, RLockGuard};
pub use semaphore::{BoundedSemaphore, SEM_VALUE_MAX, Semaphore, SemaphoreGuard};
