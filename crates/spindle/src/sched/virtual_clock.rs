//! [`VirtualClock`]: time that moves only when told, for tests with no real sleep.
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::clock::{Clock, WaitOutcome, WakeToken, Wakeup};

/// A clock whose time moves only by [`advance`](VirtualClock::advance) (manual
/// mode) or by jumping to the deadline of whoever waits (auto-advance mode), so
/// that code reading a [`Clock`] runs deterministically and without real sleeping.
///
/// Its time starts at the real [`Instant`] of its creation (its *epoch*) and
/// [`elapsed`](VirtualClock::elapsed) counts virtual time from there. Clones share
/// the same time.
///
/// - [`VirtualClock::new`] — **manual**: a wait blocks (really, on a condition
///   variable) until another thread advances the time past its deadline or its
///   [`Wakeup`] rings. This is CPython's `test_sched.Timer` helper and tokio's
///   paused time without auto-advance: the test thread decides when time passes,
///   so a scheduler or timer running in another thread does exactly what the
///   test allowed, no more — deterministic even across threads.
/// - [`VirtualClock::auto_advance`] — a wait whose wakeup has not rung jumps the
///   time to its deadline and returns at once (tokio's `start_paused` with
///   auto-advance). For single-threaded drivers (`scheduler.run()` on the test
///   thread): the run takes no real time and the clock ends at the last event's
///   time. With several threads waiting concurrently the jumps race; use manual
///   mode there.
///
/// # Examples
///
/// A scheduler on manual time, run in another thread, stepped by the test:
///
/// ```
/// use spindle::sched::{Scheduler, VirtualClock};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let clock = VirtualClock::new();
/// let sched = Scheduler::with_clock(clock.clone());
/// let (tx, rx) = mpsc::channel();
/// sched.enter(Duration::from_secs(5), 1, move || tx.send("ran").unwrap());
/// let runner = { let s = sched.clone(); std::thread::spawn(move || s.run()) };
/// clock.advance(Duration::from_secs(4));
/// assert!(rx.try_recv().is_err()); // not due yet: 4 s < 5 s
/// clock.advance(Duration::from_secs(1));
/// assert_eq!(rx.recv().unwrap(), "ran");
/// runner.join().unwrap().unwrap();
/// ```
///
/// Auto-advance: a long sleep returns at once and the time jumps.
///
/// ```
/// use spindle::sched::{Clock, VirtualClock};
/// use std::time::Duration;
///
/// let clock = VirtualClock::auto_advance();
/// clock.sleep(Duration::from_secs(3600));
/// assert_eq!(clock.elapsed(), Duration::from_secs(3600));
/// ```
#[derive(Clone)]
pub struct VirtualClock {
    inner: Arc<Inner>,
}

struct Inner {
    epoch: Instant,
    auto: bool,
    state: Mutex<State>,
}

struct State {
    elapsed: Duration,
    /// The wakeups of the threads blocked in a manual wait, by waiter id.
    waiters: Vec<(u64, Wakeup)>,
    next_id: u64,
}

impl VirtualClock {
    /// A manual virtual clock: time stands still until [`advance`](Self::advance).
    pub fn new() -> Self {
        Self::with_mode(false)
    }

    /// An auto-advancing virtual clock: a wait jumps the time to its deadline.
    pub fn auto_advance() -> Self {
        Self::with_mode(true)
    }

    fn with_mode(auto: bool) -> Self {
        VirtualClock {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                auto,
                state: Mutex::new(State {
                    elapsed: Duration::ZERO,
                    waiters: Vec::new(),
                    next_id: 0,
                }),
            }),
        }
    }

    /// The current virtual time: the epoch plus [`elapsed`](Self::elapsed).
    pub fn now(&self) -> Instant {
        self.inner.epoch + self.elapsed()
    }

    /// The instant this clock's time started from.
    pub fn epoch(&self) -> Instant {
        self.inner.epoch
    }

    /// Virtual time elapsed since the epoch.
    pub fn elapsed(&self) -> Duration {
        self.inner.state.lock().elapsed
    }

    /// Whether this clock auto-advances.
    pub fn is_auto_advance(&self) -> bool {
        self.inner.auto
    }

    /// Moves the time forward by `by` and wakes the waiters whose deadline it
    /// reaches (Python test helper `Timer.advance`).
    pub fn advance(&self, by: Duration) {
        self.advance_to_elapsed(|elapsed| elapsed.saturating_add(by));
    }

    /// Moves the time forward to `at` (no effect if it is already later).
    pub fn advance_to(&self, at: Instant) {
        let target = at.saturating_duration_since(self.inner.epoch);
        self.advance_to_elapsed(|elapsed| elapsed.max(target));
    }

    /// How many threads are blocked waiting on this clock right now (manual mode).
    ///
    /// Lets a test wait until a scheduler or timer thread has gone to sleep
    /// before it checks that nothing ran.
    pub fn waiters(&self) -> usize {
        self.inner.state.lock().waiters.len()
    }

    fn advance_to_elapsed(&self, f: impl FnOnce(Duration) -> Duration) {
        let waiters: Vec<Wakeup> = {
            let mut state = self.inner.state.lock();
            state.elapsed = f(state.elapsed);
            state.waiters.iter().map(|(_, w)| w.clone()).collect()
        };
        // Lock order: a waiter holds its wakeup's lock while it reads the time, so
        // the nudges happen after the clock's lock is released.
        for w in waiters {
            w.nudge();
        }
    }
}

impl Default for VirtualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for VirtualClock {
    fn now(&self) -> Instant {
        VirtualClock::now(self)
    }

    fn wait_until(&self, wakeup: &Wakeup, token: WakeToken, deadline: Instant) -> WaitOutcome {
        if self.inner.auto {
            if wakeup.is_woken_since(token) {
                return WaitOutcome::Woken;
            }
            self.advance_to(deadline);
            return WaitOutcome::DeadlineReached;
        }
        let id = {
            let mut state = self.inner.state.lock();
            let id = state.next_id;
            state.next_id += 1;
            state.waiters.push((id, wakeup.clone()));
            id
        };
        // Registered before reading the time: an advance after this point nudges us.
        let outcome = wakeup.wait_while(token, || self.now() < deadline);
        self.inner.state.lock().waiters.retain(|(i, _)| *i != id);
        outcome
    }
}

impl std::fmt::Debug for VirtualClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state.lock();
        f.debug_struct("VirtualClock")
            .field("elapsed", &state.elapsed)
            .field("auto_advance", &self.inner.auto)
            .field("waiters", &state.waiters.len())
            .finish()
    }
}
