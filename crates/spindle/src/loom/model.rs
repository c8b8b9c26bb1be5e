//! The loom side of the shim (`cfg(loom)` only): see the [parent](super).
//! No unsafe code: `park.rs` declares `unsafe fn`s only to keep
//! `parking_lot_core`'s signatures (each one allowed by name).
#![deny(unsafe_code)]
// A stand-in for the `std`/`parking_lot` API: not every method is used.
#![allow(dead_code)]

pub(crate) mod atomic;
pub(crate) mod park;

#[cfg(test)]
pub(crate) use park::advance;

use std::fmt;
use std::ops::{Deref, DerefMut};
use std::time::Instant;

use parking_lot_core::{DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN, ParkResult};

/// `parking_lot::Mutex` over loom's mutex.
pub(crate) struct Mutex<T> {
    inner: ::loom::sync::Mutex<T>,
}

/// `parking_lot::MutexGuard`: releasable while a condition variable sleeps
/// or inside [`MutexGuard::unlocked`].
pub(crate) struct MutexGuard<'a, T> {
    mutex: &'a Mutex<T>,
    guard: Option<::loom::sync::MutexGuard<'a, T>>,
}

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Mutex<T> {
        Mutex {
            inner: ::loom::sync::Mutex::new(value),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        MutexGuard {
            mutex: self,
            guard: Some(self.inner.lock().expect("a model thread panicked")),
        }
    }

    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        self.inner.try_lock().ok().map(|g| MutexGuard {
            mutex: self,
            guard: Some(g),
        })
    }

    pub(crate) fn get_mut(&mut self) -> &mut T {
        self.inner.get_mut().expect("a model thread panicked")
    }

    pub(crate) fn into_inner(self) -> T {
        self.inner.into_inner().expect("a model thread panicked")
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Self {
        Mutex::new(T::default())
    }
}

impl<T> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mutex { .. }")
    }
}

impl<'a, T> MutexGuard<'a, T> {
    /// Releases the lock while `f` runs (`parking_lot`'s `MutexGuard::unlocked`).
    pub(crate) fn unlocked<U>(s: &mut Self, f: impl FnOnce() -> U) -> U {
        s.release();
        let r = f();
        s.reacquire();
        r
    }

    fn release(&mut self) {
        self.guard = None;
    }

    fn reacquire(&mut self) {
        self.guard = Some(self.mutex.inner.lock().expect("a model thread panicked"));
    }
}

impl<T> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("held")
    }
}

impl<T> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("held")
    }
}

/// `parking_lot::WaitTimeoutResult`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WaitTimeoutResult(bool);

impl WaitTimeoutResult {
    pub(crate) fn timed_out(self) -> bool {
        self.0
    }
}

/// `parking_lot::Condvar` over the model's parking table, with its
/// algorithm: a waiter parks under the condition variable's address and
/// releases the mutex only once it is queued (`before_sleep`), so a
/// notification sent after the release always finds it.
#[derive(Default)]
pub(crate) struct Condvar {
    /// Gives the value a size, hence an address of its own (the key).
    _key: u8,
}

impl fmt::Debug for Condvar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Condvar { .. }")
    }
}

impl Condvar {
    pub(crate) fn new() -> Condvar {
        Condvar { _key: 0 }
    }

    fn key(&self) -> usize {
        self as *const Condvar as usize
    }

    /// Wakes one waiter; whether there was one.
    pub(crate) fn notify_one(&self) -> bool {
        park::unpark_one_safe(self.key(), |_| DEFAULT_UNPARK_TOKEN).unparked_threads != 0
    }

    /// Wakes every waiter; how many.
    pub(crate) fn notify_all(&self) -> usize {
        park::unpark_all_safe(self.key(), DEFAULT_UNPARK_TOKEN)
    }

    pub(crate) fn wait<T>(&self, guard: &mut MutexGuard<'_, T>) {
        self.wait_inner(guard, None);
    }

    pub(crate) fn wait_until<T>(
        &self,
        guard: &mut MutexGuard<'_, T>,
        deadline: Instant,
    ) -> WaitTimeoutResult {
        WaitTimeoutResult(self.wait_inner(guard, Some(deadline)))
    }

    /// Sleeps with the mutex released; whether the deadline passed.
    fn wait_inner<T>(&self, guard: &mut MutexGuard<'_, T>, deadline: Option<Instant>) -> bool {
        let result = park::park_safe(
            self.key(),
            || true,
            || guard.release(),
            |_, _| {},
            DEFAULT_PARK_TOKEN,
            deadline,
        );
        guard.reacquire();
        matches!(result, ParkResult::TimedOut)
    }
}

/// Runs a model with `preemptions` as its preemption bound (unless
/// `LOOM_MAX_PREEMPTIONS` says otherwise) and prints how long it took and
/// how many executions it explored.
#[cfg(test)]
pub(crate) fn check(name: &str, preemptions: usize, f: impl Fn() + Sync + Send + 'static) {
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let runs = std::sync::Arc::new(AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&runs);
    let mut builder = ::loom::model::Builder::new();
    builder.preemption_bound = builder.preemption_bound.or(Some(preemptions));
    // The ring and queue models take more steps than loom's default of 1000
    // switches per execution.
    builder.max_branches = builder.max_branches.max(20_000);
    let bound = builder.preemption_bound;
    let start = Instant::now();
    builder.check(move || {
        counted.fetch_add(1, Relaxed);
        f();
    });
    println!(
        "loom model {name}: {} executions, preemption bound {bound:?}, {:.2?}",
        runs.load(Relaxed),
        start.elapsed()
    );
}
