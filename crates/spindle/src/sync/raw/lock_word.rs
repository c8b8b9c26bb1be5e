//! The thread scope's lock word under `Lock` and `RLock`: one byte, parked on with `parking_lot_core` (the same protocol as
//! `parking_lot::RawMutex`, minus the fairness hand-off, plus a checked unlock
//! that may come from any thread).

use crate::loom::plc::{self, DEFAULT_PARK_TOKEN, DEFAULT_UNPARK_TOKEN, ParkResult, SpinWait};
use crate::loom::sync::atomic::AtomicU8;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::time::Instant;

const LOCKED: u8 = 1;
const PARKED: u8 = 2;

/// How an abortable acquisition ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Taken {
    /// The lock is now held.
    Acquired,
    /// The deadline passed (or the lock was busy for a non-blocking try).
    TimedOut,
    /// `aborted()` turned true while waiting (deadlock recovery).
    Aborted,
}

/// A one-byte lock that any thread may unlock.
pub(crate) struct RawLock {
    state: AtomicU8,
}

impl RawLock {
    crate::loom::const_fn! {
        pub(crate) fn new() -> Self {
            RawLock {
                state: AtomicU8::new(0),
            }
        }
    }

    /// The parking key: this lock word's address, which only this lock parks on.
    pub(crate) fn key(&self) -> usize {
        &self.state as *const AtomicU8 as usize
    }

    /// Counts the threads parked on this lock without waking them (test
    /// support for "this thread is blocked now" without sleeping and hoping).
    pub(crate) fn parked(&self) -> usize {
        let mut n = 0;
        // SAFETY: `filter` and `callback` only count and unpark nobody (every
        // thread is skipped).
        unsafe {
            plc::unpark_filter(
                self.key(),
                |_| {
                    n += 1;
                    plc::FilterOp::Skip
                },
                |_| DEFAULT_UNPARK_TOKEN,
            );
        }
        n
    }

    pub(crate) fn is_locked(&self) -> bool {
        self.state.load(Relaxed) & LOCKED != 0
    }

    #[inline]
    pub(crate) fn try_lock(&self) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & LOCKED != 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Locks, waiting at most until `deadline` (`None`: forever). Returns
    /// whether the lock was taken.
    #[inline]
    pub(crate) fn lock_until(&self, deadline: Option<Instant>) -> bool {
        if self
            .state
            .compare_exchange_weak(0, LOCKED, Acquire, Relaxed)
            .is_ok()
        {
            return true;
        }
        self.lock_slow(deadline, || false) == Taken::Acquired
    }

    /// Locks like [`lock_until`](Self::lock_until), but gives up with
    /// [`Taken::Aborted`] once `aborted()` is true; whoever makes it true
    /// then calls [`wake_all`] with this lock's [`key`](Self::key). Only the
    /// `lockorder` deadlock detector's recovery uses it.
    pub(crate) fn lock_abortable(
        &self,
        deadline: Option<Instant>,
        aborted: impl Fn() -> bool,
    ) -> Taken {
        if self.try_lock() {
            return Taken::Acquired;
        }
        self.lock_slow(deadline, aborted)
    }

    #[cold]
    fn lock_slow(&self, deadline: Option<Instant>, aborted: impl Fn() -> bool) -> Taken {
        let mut spin = SpinWait::new();
        let mut s = self.state.load(Relaxed);
        loop {
            // The verdict wins even over a lock freed meanwhile (by another
            // aborted waiter of the same cycle), so aborting all is exact.
            if aborted() {
                return Taken::Aborted;
            }
            if s & LOCKED == 0 {
                match self
                    .state
                    .compare_exchange_weak(s, s | LOCKED, Acquire, Relaxed)
                {
                    Ok(_) => return Taken::Acquired,
                    Err(now) => s = now,
                }
                continue;
            }
            // Spin a little while nobody is parked: the holder may be about to
            // release.
            if s & PARKED == 0 && spin.spin() {
                s = self.state.load(Relaxed);
                continue;
            }
            if s & PARKED == 0
                && let Err(now) = self
                    .state
                    .compare_exchange_weak(s, s | PARKED, Relaxed, Relaxed)
            {
                s = now;
                continue;
            }
            // SAFETY: the key is this lock word's address, parked on only by
            // this lock. `validate` and `timed_out` only touch atomics (ours and
            // the abort flag `aborted` reads): they neither unwind nor call into
            // parking_lot; `before_sleep` is empty.
            let result = unsafe {
                plc::park(
                    self.key(),
                    || self.state.load(Relaxed) == LOCKED | PARKED && !aborted(),
                    || {},
                    |_, was_last| {
                        if was_last {
                            self.state.fetch_and(!PARKED, Relaxed);
                        }
                    },
                    DEFAULT_PARK_TOKEN,
                    deadline,
                )
            };
            if let ParkResult::TimedOut = result {
                return Taken::TimedOut;
            }
            spin.reset();
            s = self.state.load(Relaxed);
        }
    }

    /// Unlocks; `false` if it was not locked. Exactly one of several racing
    /// unlocks of one locked period succeeds.
    /// For an async waiter: sets PARKED on a held lock so that its unlock
    /// takes the slow path and wakes the async waiters; `false` if the lock
    /// is free (take it instead).
    pub(crate) fn mark_parked(&self) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & LOCKED == 0 {
                return false;
            }
            if s & PARKED != 0 {
                return true;
            }
            match self
                .state
                .compare_exchange_weak(s, s | PARKED, SeqCst, Relaxed)
            {
                Ok(_) => return true,
                Err(now) => s = now,
            }
        }
    }

    /// Whether the lock is held and marked waited on (an async waiter's
    /// registration check).
    pub(crate) fn is_parked_on(&self) -> bool {
        self.state.load(SeqCst) == LOCKED | PARKED
    }

    #[inline]
    pub(crate) fn unlock(&self) -> bool {
        if self
            .state
            .compare_exchange(LOCKED, 0, Release, Relaxed)
            .is_ok()
        {
            return true;
        }
        self.unlock_slow()
    }

    #[cold]
    fn unlock_slow(&self) -> bool {
        let mut s = self.state.load(Relaxed);
        loop {
            if s & LOCKED == 0 {
                return false;
            }
            match self
                .state
                .compare_exchange_weak(s, s & !LOCKED, Release, Relaxed)
            {
                Ok(_) => break,
                Err(now) => s = now,
            }
        }
        if s & PARKED != 0 {
            // Wake one waiter; it retries (no hand-off: a running thread may
            // barge in first, as with Python's lock). When the queue empties,
            // clear PARKED; a thread that set it but has not parked yet fails
            // its `validate` and loops.
            // SAFETY: our own key; the callback only touches our atomic.
            unsafe {
                plc::unpark_one(self.key(), |res| {
                    if !res.have_more_threads {
                        self.state.fetch_and(!PARKED, Relaxed);
                    }
                    DEFAULT_UNPARK_TOKEN
                });
            }
            // And every async waiter (each retries; PARKED may be clear now,
            // a waiter that registers later sees it so and marks it again).
            // The fence pairs with the SeqCst `live` increment and state
            // check of `ThreadScope::watch_mutex`: either we see the waiter's
            // registration, or it sees the lock unlocked / PARKED cleared.
            crate::loom::sync::atomic::fence(SeqCst);
            super::thread::wake_lock_watchers(self.key());
        }
        true
    }
}

/// Wakes every thread parked on the lock word whose [`RawLock::key`] is `key`;
/// they re-check the lock (and their abort flag) and park again if nothing
/// changed for them. Used by deadlock recovery after setting a victim's flag.
pub(crate) fn wake_all(key: usize) {
    // SAFETY: `unpark_all` never dereferences the key; every thread parked on
    // a lock word handles a wake-up without a hand-off by looping back to its
    // checks (see `lock_slow`), so a spurious wake-up is harmless.
    unsafe {
        plc::unpark_all(key, DEFAULT_UNPARK_TOKEN);
    }
}

#[cfg(all(test, loom))]
mod loom_model;
