//! The concurrency primitives the crate's lock-free and blocking code is
//! written against, so that it can be model-checked with
//! [loom](https://docs.rs/loom) (tokio's `src/loom/` pattern).
//!
//! In a normal build every item here *is* the `std` / `parking_lot` /
//! `parking_lot_core` item (`pub(crate) use`), so the shim costs nothing.
//! Built with `RUSTFLAGS="--cfg loom"`, the items come from `model.rs`:
//!
//! * the atomics are loom's, each made with a `SeqCst` initial store so
//!   that loom's partial `SeqCst` rule orders the crate's Dekker pairs
//!   (`Event`, `Semaphore`, the ring) as `SeqCst` does, without hiding a
//!   weaker ordering (see `model/atomic.rs`); their `new` is not `const`,
//!   so the thread objects' `const fn` constructors are written with
//!   [`const_fn!`];
//! * `parking_lot_core`'s `park`/`unpark_one`/`unpark_all`/`unpark_filter`
//!   and the futex `futex_wait`/`futex_wake` become one parking table over
//!   loom's `Mutex` and `thread::park`/`unpark`, keyed by address like the
//!   real ones;
//! * `parking_lot`'s `Mutex`/`MutexGuard`/`Condvar` become loom's mutex with
//!   a condition variable over that table (with `parking_lot`'s API:
//!   `notify_one` says whether it woke a thread, `MutexGuard::unlocked`);
//! * busy-wait phases ([`SPIN`], `SpinWait`) are off: they only poll the
//!   condition the blocking path checks again, and would multiply the
//!   interleavings (and read the real clock) without adding behaviour.
//!
//! # Time
//!
//! Loom has no clock. A model that exercises timeouts spawns a *clock
//! thread* that calls [`advance`]: from then on every deadline has passed
//! (`util::passed` is true for any `Some` deadline) and every timed sleeper
//! wakes up and times out. Loom runs the clock thread's step at every
//! possible point of the other threads, so "the deadline passes here" is
//! explored everywhere — the sound abstraction of a timeout, with one
//! restriction: all deadlines of a model pass at once (models use one).
//! Without a clock thread no deadline ever passes, so a timed wait is an
//! untimed one: a lost wake-up shows up as a deadlock instead of being
//! hidden by a retry slice (the ring's 500 ms `SLEEP_SLICE`, the process
//! mutex's 2–200 ms take-over slices).
//!
//! # Running the models
//!
//! The models are `loom_model` modules beside the code they check
//! (`sync/raw/lock_word/`, `sync/generic/`, `futures/shared/`,
//! `queue/core/`, `ipc/queue/ring/`), run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test --release -p spindle --lib loom_model -- --test-threads=1 --nocapture
//! ```
//!
//! Each prints how long it took. `LOOM_MAX_PREEMPTIONS`, `LOOM_LOG=1` and
//! `LOOM_CHECKPOINT_FILE` work as loom documents; a failing model prints
//! the interleaving that broke it.
// Under loom, `model/park.rs` declares `unsafe fn`s (allowed by name).
#![cfg_attr(not(loom), forbid(unsafe_code))]

#[cfg(loom)]
mod model;

#[cfg(all(loom, test))]
pub(crate) use model::{advance, check};

/// Defines a `const fn` that is a plain `fn` under loom, whose atomics
/// cannot be made in a constant (they belong to a model execution). The
/// constructors of the thread-scope objects use it, so they stay usable in
/// statics.
macro_rules! const_fn {
    ($(#[$attr:meta])* $vis:vis fn $($rest:tt)*) => {
        #[cfg(not(loom))]
        $(#[$attr])*
        $vis const fn $($rest)*
        #[cfg(loom)]
        $(#[$attr])*
        $vis fn $($rest)*
    };
}
pub(crate) use const_fn;

/// Whether busy-wait phases run (spinning, yielding, polling the clock
/// before parking): always, except under loom (see the module docs).
pub(crate) const SPIN: bool = !cfg!(loom);

/// `Mutex`, `MutexGuard`, `Condvar` (parking_lot's API) and the atomics.
pub(crate) mod sync {
    #[cfg(loom)]
    pub(crate) use super::model::{Condvar, Mutex, MutexGuard};
    #[cfg(not(loom))]
    pub(crate) use parking_lot::{Condvar, Mutex, MutexGuard};

    /// The atomic types (loom's under `cfg(loom)`).
    pub(crate) mod atomic {
        #[cfg(loom)]
        pub(crate) use super::super::model::atomic::{
            AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize,
        };
        #[cfg(loom)]
        pub(crate) use ::loom::sync::atomic::fence;
        #[cfg(not(loom))]
        pub(crate) use std::sync::atomic::{
            AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, fence,
        };
    }
}

/// `parking_lot_core`'s parking table: the real one, or the model's.
pub(crate) mod plc {
    #[cfg(loom)]
    pub(crate) use super::model::park::{SpinWait, park, unpark_all, unpark_filter, unpark_one};
    pub(crate) use parking_lot_core::{
        DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN, FilterOp, ParkResult,
    };
    #[cfg(not(loom))]
    pub(crate) use parking_lot_core::{SpinWait, park, unpark_all, unpark_filter, unpark_one};
}

/// Futex wait/wake on a shared word, for the model (the real ones are
/// system calls in `ipc/shm.rs`).
#[cfg(loom)]
pub(crate) mod futex {
    pub(crate) use super::model::park::{futex_wait, futex_wake};
}

/// Whether the model's clock has passed every deadline (see [`advance`]).
#[cfg(loom)]
pub(crate) use model::park::expired;
